//! End-to-end harness: a real emulator process (moto plus our ECS task lifecycle, see
//! emulator/), and a driver that invokes the handler the way CloudFormation does:
//! string-typed scalars, re-invocation with the returned callbackContext after
//! callbackDelaySeconds (scaled down), the same bearer token for one operation.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aws_credential_types::Credentials;
use serde_json::{json, Value};

pub const REGION: &str = "us-east-1";
pub const ACCESS_KEY: &str = "AKIAIOSFODNN7EXAMPLE";
pub const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
/// callbackDelaySeconds are slept for this fraction of their value.
const DELAY_SCALE: f64 = 0.05;

pub struct Emulator {
    pub url: String,
    child: Child,
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("TASKRUN_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(
        venv.exists(),
        "{} is missing: run `make test` (or scripts/venv.sh) to create the emulator's virtualenv",
        venv.display()
    );
    venv
}

impl Emulator {
    /// Starts an emulator on a free loopback port. It exits by itself when this test
    /// process dies (--parent-pid), so a failing or aborted test leaves nothing behind.
    pub fn start() -> Emulator {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("emulator/taskrun_emulator.py");
        let mut child = Command::new(python())
            .arg(script)
            .args([
                "--port",
                "0",
                "--parent-pid",
                &std::process::id().to_string(),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the emulator");
        let stdout = child.stdout.take().expect("emulator stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read READY line");
        let url = line
            .trim()
            .strip_prefix("READY ")
            .unwrap_or_else(|| panic!("emulator did not start: {line:?}"))
            .to_string();
        Emulator { url, child }
    }

    /// The emulator all tests of this process share. The handler's AWS clients reach it
    /// through the standard AWS_ENDPOINT_URL setting, exactly as a deployed binary would
    /// reach AWS: nothing in the handler knows it is under test.
    pub fn shared() -> &'static Emulator {
        static SHARED: OnceLock<Emulator> = OnceLock::new();
        SHARED.get_or_init(|| {
            let emulator = Emulator::start();
            // SAFETY of intent: set once, before any handler call builds its clients.
            std::env::set_var("AWS_ENDPOINT_URL", &emulator.url);
            std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
            std::env::set_var("AWS_REGION", REGION);
            std::env::set_var("AWS_ACCESS_KEY_ID", ACCESS_KEY);
            std::env::set_var("AWS_SECRET_ACCESS_KEY", SECRET_KEY);
            emulator
        })
    }

    /// A control request to the emulator (`/_taskrun/...`), plain HTTP/1.1 on loopback.
    pub fn control(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let address = self.url.trim_start_matches("http://");
        let mut stream = TcpStream::connect(address).expect("connect to the emulator");
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .expect("send control request");
        let mut response = String::new();
        stream
            .read_to_string(&mut response)
            .expect("read control response");
        let (head, payload) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
        assert!(
            head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200"),
            "{method} {path}: {head}\n{payload}"
        );
        serde_json::from_str(payload).unwrap_or(Value::Null)
    }

    pub fn queue_outcome(&self, family: &str, outcome: Value, count: u32) {
        self.control(
            "POST",
            "/_taskrun/outcomes",
            Some(json!({"family": family, "outcome": outcome, "count": count})),
        );
    }

    pub fn family_default(&self, family: &str, outcome: Value) {
        self.control(
            "POST",
            "/_taskrun/outcomes",
            Some(json!({"family": family, "default": outcome})),
        );
    }

    /// Request bodies the emulator received for one ECS operation, for one cluster.
    pub fn calls(&self, api: &str, cluster: &str) -> Vec<Value> {
        let all = self.control("GET", &format!("/_taskrun/calls?api={api}"), None);
        all.as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|body| body.get("cluster").and_then(Value::as_str) == Some(cluster))
            .collect()
    }

    /// The emulator's view of the tasks of one cluster.
    pub fn tasks(&self, cluster: &str) -> Vec<Value> {
        let all = self.control("GET", "/_taskrun/tasks", None);
        all.as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|t| {
                t.get("clusterArn")
                    .and_then(Value::as_str)
                    .is_some_and(|arn| arn.ends_with(&format!("/{cluster}")))
            })
            .collect()
    }

    pub fn ecs(&self) -> aws_sdk_ecs::Client {
        let config = aws_sdk_ecs::Config::builder()
            .behavior_version_latest()
            .endpoint_url(&self.url)
            .region(aws_sdk_ecs::config::Region::new(REGION))
            .credentials_provider(Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "test"))
            .http_client(taskrun::aws::https_client())
            .build();
        aws_sdk_ecs::Client::from_conf(config)
    }
}

/// One test's ECS world: its own cluster and task definition family on the shared emulator.
pub struct World {
    pub emulator: &'static Emulator,
    pub cluster: String,
    pub family: String,
    pub stack_id: String,
}

static SEQUENCE: AtomicU64 = AtomicU64::new(0);

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        SEQUENCE.fetch_add(1, Ordering::SeqCst)
    )
}

impl World {
    /// A cluster and a task definition with an essential `app` (DB_HOST in its environment)
    /// and a non-essential `log-router` sidecar.
    pub async fn new(name: &str) -> World {
        let emulator = Emulator::shared();
        let world = World {
            emulator,
            cluster: unique(&format!("c-{name}")),
            family: unique(name),
            stack_id: format!(
                "arn:aws:cloudformation:{REGION}:123456789012:stack/{}/0a1b2c3d",
                unique("stack")
            ),
        };
        let ecs = emulator.ecs();
        ecs.create_cluster()
            .cluster_name(&world.cluster)
            .send()
            .await
            .expect("create cluster");
        world.register("db.internal").await;
        world
    }

    /// Registers a new revision whose `app` container has the given DB_HOST; returns its ARN.
    pub async fn register(&self, db_host: &str) -> String {
        use aws_sdk_ecs::types::{ContainerDefinition, KeyValuePair};
        let out = self
            .emulator
            .ecs()
            .register_task_definition()
            .family(&self.family)
            .container_definitions(
                ContainerDefinition::builder()
                    .name("app")
                    .image("example/migrate:1")
                    .memory(256)
                    .essential(true)
                    .environment(
                        KeyValuePair::builder()
                            .name("DB_HOST")
                            .value(db_host)
                            .build(),
                    )
                    .build(),
            )
            .container_definitions(
                ContainerDefinition::builder()
                    .name("log-router")
                    .image("amazon/aws-for-fluent-bit:stable")
                    .memory(64)
                    .essential(false)
                    .build(),
            )
            .send()
            .await
            .expect("register task definition");
        out.task_definition()
            .and_then(|d| d.task_definition_arn())
            .expect("task definition ARN")
            .to_string()
    }

    /// Registers `family` whose `app` logs to CloudWatch Logs (awslogs, group and stream
    /// prefix as given; `None` for no log configuration at all).
    pub async fn register_logging(&self, family: &str, group: Option<&str>) {
        use aws_sdk_ecs::types::{ContainerDefinition, LogConfiguration, LogDriver};
        let mut app = ContainerDefinition::builder()
            .name("app")
            .image("example/migrate:1")
            .memory(256)
            .essential(true);
        if let Some(group) = group {
            app = app.log_configuration(
                LogConfiguration::builder()
                    .log_driver(LogDriver::Awslogs)
                    .options("awslogs-group", group)
                    .options("awslogs-stream-prefix", "migrate")
                    .options("awslogs-region", REGION)
                    .build()
                    .expect("log configuration"),
            );
        }
        self.emulator
            .ecs()
            .register_task_definition()
            .family(family)
            .container_definitions(app.build())
            .send()
            .await
            .expect("register task definition");
    }

    pub fn properties(&self, extra: Value) -> Value {
        let mut props =
            json!({"Cluster": self.cluster, "TaskDefinition": self.family, "PollInterval": 1});
        if let (Some(map), Value::Object(extra)) = (props.as_object_mut(), extra) {
            map.extend(extra);
        }
        props
    }

    pub fn cfn(&self, logical_id: &str) -> Cfn {
        Cfn {
            stack_id: self.stack_id.clone(),
            logical_id: logical_id.to_string(),
        }
    }

    /// A fault on this world's calls only (their bodies name its cluster): see
    /// [`Emulator::fault`].
    pub fn fault(&self, api: &str, times: u32, mut extra: Value) {
        extra["bodyContains"] = json!(self.cluster);
        self.emulator.fault(api, times, extra);
    }

    pub fn run_task_calls(&self) -> Vec<Value> {
        self.emulator.calls("RunTask", &self.cluster)
    }

    pub fn tasks(&self) -> Vec<Value> {
        self.emulator.tasks(&self.cluster)
    }
}

/// CloudFormation sends every scalar property as a string.
pub fn as_cloudformation_sends(value: &Value) -> Value {
    match value {
        Value::Number(n) => Value::String(n.to_string()),
        Value::Bool(b) => Value::String(b.to_string()),
        Value::Array(items) => Value::Array(items.iter().map(as_cloudformation_sends).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), as_cloudformation_sends(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// What one operation produced: every progress event, in order.
#[derive(Debug)]
pub struct Operation {
    pub events: Vec<Value>,
    pub elapsed: Duration,
}

impl Operation {
    pub fn last(&self) -> &Value {
        self.events.last().expect("at least one event")
    }
    pub fn status(&self) -> &str {
        self.last()["status"].as_str().unwrap_or_default()
    }
    pub fn error_code(&self) -> &str {
        self.last()["errorCode"].as_str().unwrap_or_default()
    }
    pub fn message(&self) -> &str {
        self.last()["message"].as_str().unwrap_or_default()
    }
    pub fn model(&self) -> &Value {
        &self.last()["resourceModel"]
    }
    pub fn id(&self) -> String {
        self.events
            .iter()
            .find_map(|e| e["resourceModel"]["Id"].as_str())
            .expect("an event with the Id")
            .to_string()
    }
}

/// Plays CloudFormation for one logical resource of one stack.
pub struct Cfn {
    pub stack_id: String,
    pub logical_id: String,
}

static TOKENS: AtomicU64 = AtomicU64::new(0);

pub fn new_token() -> String {
    format!(
        "token-{}-{}",
        std::process::id(),
        TOKENS.fetch_add(1, Ordering::SeqCst)
    )
}

impl Cfn {
    pub fn envelope(
        &self,
        action: &str,
        token: &str,
        properties: Option<&Value>,
        previous: Option<&Value>,
        context: Option<&Value>,
    ) -> Value {
        let mut request_data = json!({
            "callerCredentials": {"accessKeyId": ACCESS_KEY, "secretAccessKey": SECRET_KEY, "sessionToken": "session"},
            "providerCredentials": {"accessKeyId": ACCESS_KEY, "secretAccessKey": SECRET_KEY, "sessionToken": "session"},
            "providerLogGroupName": "taskrun-provider-logs",
            "logicalResourceId": self.logical_id,
            "systemTags": {"aws:cloudformation:stack-id": self.stack_id, "aws:cloudformation:logical-id": self.logical_id},
            "stackTags": {"team": "platform"},
        });
        if let Some(p) = properties {
            request_data["resourceProperties"] = as_cloudformation_sends(p);
        }
        if let Some(p) = previous {
            request_data["previousResourceProperties"] = as_cloudformation_sends(p);
        }
        let mut event = json!({
            "action": action,
            "awsAccountId": "123456789012",
            "bearerToken": token,
            "region": REGION,
            "resourceType": "Org::ECS::TaskRun",
            "resourceTypeVersion": "00000001",
            "stackId": self.stack_id,
            "requestData": request_data,
        });
        if let Some(c) = context {
            event["callbackContext"] = c.clone();
        }
        event
    }

    /// One invocation of the handler with this resource's envelope.
    pub async fn invoke(
        &self,
        action: &str,
        token: &str,
        properties: Option<&Value>,
        previous: Option<&Value>,
        context: Option<&Value>,
    ) -> Value {
        invoke_handler(self.envelope(action, token, properties, previous, context)).await
    }

    /// One operation to its end: invoke, then re-invoke with the callbackContext after the
    /// (scaled) callbackDelaySeconds while the answer is IN_PROGRESS.
    pub async fn operate(
        &self,
        action: &str,
        properties: Option<&Value>,
        previous: Option<&Value>,
    ) -> Operation {
        self.operate_with_token(action, &new_token(), properties, previous)
            .await
    }

    pub async fn operate_with_token(
        &self,
        action: &str,
        token: &str,
        properties: Option<&Value>,
        previous: Option<&Value>,
    ) -> Operation {
        let started = Instant::now();
        let mut events = Vec::new();
        let mut context: Option<Value> = None;
        let mut properties = properties.cloned();
        loop {
            let event = self.envelope(
                action,
                token,
                properties.as_ref(),
                previous,
                context.as_ref(),
            );
            let answer = invoke_handler(event).await;
            assert_no_nulls(&answer);
            let status = answer["status"].as_str().unwrap_or_default().to_string();
            events.push(answer.clone());
            if status != "IN_PROGRESS" {
                break;
            }
            assert!(events.len() < 400, "operation never ended: {answer}");
            let delay = answer["callbackDelaySeconds"]
                .as_f64()
                .expect("callbackDelaySeconds");
            context = Some(answer["callbackContext"].clone());
            // As CloudFormation does: the next invocation gets the model the handler
            // returned (without the write-only Overrides), not the original properties.
            if action != "DELETE" {
                if let Some(model) = answer.get("resourceModel") {
                    properties = Some(model.clone());
                }
            }
            tokio::time::sleep(Duration::from_secs_f64((delay * DELAY_SCALE).max(0.02))).await;
        }
        Operation {
            events,
            elapsed: started.elapsed(),
        }
    }

    pub async fn create(&self, properties: &Value) -> Operation {
        self.operate("CREATE", Some(properties), None).await
    }

    pub async fn update(&self, id: &str, properties: &Value, previous: &Value) -> Operation {
        let mut desired = properties.clone();
        desired["Id"] = json!(id);
        let mut before = previous.clone();
        before["Id"] = json!(id);
        self.operate("UPDATE", Some(&desired), Some(&before)).await
    }

    pub async fn read(&self, id: &str) -> Operation {
        self.operate("READ", Some(&json!({"Id": id})), None).await
    }

    pub async fn delete(&self, id: &str, properties: &Value) -> Operation {
        let mut desired = properties.clone();
        desired["Id"] = json!(id);
        self.operate("DELETE", Some(&desired), None).await
    }
}

/// The Lambda timeout these tests give the handler: short, so that an invocation waits
/// for running tasks about 8 s before it answers IN_PROGRESS (the budget honours the
/// Lambda deadline as it would in AWS).
pub const LAMBDA_TIMEOUT: Duration = Duration::from_secs(20);

/// One invocation of the real handler, as the Lambda runtime makes it.
pub async fn invoke_handler(event: Value) -> Value {
    let deadline = std::time::SystemTime::now() + LAMBDA_TIMEOUT;
    taskrun::handle(event.to_string().as_bytes(), Some(deadline)).await
}

/// `cfn test` rejects explicit nulls: no event may carry one, at any depth.
pub fn assert_no_nulls(value: &Value) {
    match value {
        Value::Null => panic!("a progress event holds null"),
        Value::Array(items) => items.iter().for_each(assert_no_nulls),
        Value::Object(map) => map.values().for_each(assert_no_nulls),
        _ => {}
    }
}

/// One runtime for every test of the process: the handler keeps its AWS configuration
/// (and its connection pool) for the life of the process, as in Lambda, and pooled
/// connections must not outlive the runtime that opened them.
pub fn run<F: std::future::Future>(future: F) -> F::Output {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("tokio runtime")
        })
        .block_on(future)
}

impl Emulator {
    /// Makes the next `times` calls of `api` fail (see the emulator's throttle endpoint:
    /// `after` carries the call out first; `html` answers a load balancer's page).
    pub fn fault(&self, api: &str, times: u32, extra: Value) {
        let mut body = json!({"api": api, "times": times});
        if let (Some(map), Value::Object(extra)) = (body.as_object_mut(), extra) {
            map.extend(extra);
        }
        self.control("POST", "/_taskrun/throttle", Some(body));
    }

    /// Every call the emulator received, in order: `{"api", "body", "throttled", "acted", ...}`.
    pub fn call_log(&self) -> Vec<Value> {
        self.control("GET", "/_taskrun/calls", None)
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

/// The real handler binary behind `scripts/local_lambda.py` (Lambda Invoke API and
/// Runtime API), talking to the shared emulator.
pub struct LocalLambda {
    pub url: String,
    child: Child,
}

impl Drop for LocalLambda {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl LocalLambda {
    pub fn start(emulator: &Emulator) -> LocalLambda {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let dir = root.join(".tmp/tests");
        std::fs::create_dir_all(&dir).expect("test scratch dir");
        let port_file = dir.join(format!(
            "lambda-{}-{}.port",
            std::process::id(),
            SEQUENCE.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_file(&port_file);
        let log = std::fs::File::create(port_file.with_extension("log")).expect("lambda log");
        let mut child = Command::new(python())
            .arg(root.join("scripts/local_lambda.py"))
            .args([
                "--binary",
                env!("CARGO_BIN_EXE_bootstrap"),
                "--port",
                "0",
                "--timeout",
                "60",
            ])
            .arg("--port-file")
            .arg(&port_file)
            .args(["--parent-pid", &std::process::id().to_string()])
            .env("AWS_ENDPOINT_URL", &emulator.url)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_REGION", REGION)
            .env("AWS_LAMBDA_LOG_LEVEL", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start local_lambda.py");
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(60) {
            if let Ok(port) = std::fs::read_to_string(&port_file) {
                if !port.trim().is_empty() {
                    return LocalLambda {
                        url: format!("127.0.0.1:{}", port.trim()),
                        child,
                    };
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("local_lambda.py did not get ready");
    }

    fn http(&self, method: &str, path: &str, body: &str) -> (String, String) {
        let mut stream = TcpStream::connect(&self.url).expect("connect to local_lambda");
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.url,
            body.len()
        )
        .expect("send");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("read");
        let (head, payload) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
        (head.to_string(), payload.to_string())
    }

    /// Invokes the binary with `body` as it is (any bytes).
    pub fn invoke_raw(&self, body: &str) -> Result<Value, String> {
        let (head, payload) = self.http("POST", "/2015-03-31/functions/TaskRun/invocations", body);
        if head.contains("X-Amz-Function-Error") || head.contains("x-amz-function-error") {
            return Err(payload);
        }
        serde_json::from_str(&payload).map_err(|e| format!("{e}: {payload}"))
    }

    /// Invokes the binary; `Err` with the Lambda error body when the invocation failed
    /// (the process died, say).
    pub fn invoke(&self, event: &Value) -> Result<Value, String> {
        let (head, payload) = self.http(
            "POST",
            "/2015-03-31/functions/TaskRun/invocations",
            &event.to_string(),
        );
        if head.contains("X-Amz-Function-Error") || head.contains("x-amz-function-error") {
            return Err(payload);
        }
        serde_json::from_str(&payload).map_err(|e| format!("{e}: {payload}"))
    }

    pub fn handler_pid(&self) -> Option<u64> {
        let (_, payload) = self.http("GET", "/_local/handler-pid", "");
        serde_json::from_str::<Value>(&payload).ok()?["pid"].as_u64()
    }
}
