//! What the end-to-end tests of both resource types share: the emulator process (moto plus
//! our ECS task and deployment lifecycles, see emulator/), the real handler binary behind
//! scripts/local_lambda.py, and one tokio runtime per test process. Included by path from
//! each crate's tests; it finds the repository root from the crate's manifest directory.
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

static LAMBDAS: AtomicU64 = AtomicU64::new(0);

/// The repository root: the first ancestor of the crate's directory with the emulator.
pub fn repo_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .find(|dir| dir.join("emulator/taskrun_emulator.py").exists())
        .map(PathBuf::from)
        .unwrap_or(manifest)
}

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

pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("TASKRUN_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = repo_root().join(".venv/bin/python");
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
        let script = repo_root().join("emulator/taskrun_emulator.py");
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
            .http_client(handler_kit::aws::https_client())
            .build();
        aws_sdk_ecs::Client::from_conf(config)
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
                // The handler runs on the workers (see `invoke_handler`): a debug build's
                // futures want more than the 2 MiB a thread gets by default.
                .thread_stack_size(16 << 20)
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
    /// Where the local Lambda and the handler write their output.
    pub log: PathBuf,
    child: Child,
}

impl Drop for LocalLambda {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl LocalLambda {
    /// Starts `binary` (a handler built by cargo) behind a local Lambda.
    pub fn with_binary(emulator: &Emulator, binary: &str) -> LocalLambda {
        Self::with_log_level(emulator, binary, "info")
    }

    /// As [`LocalLambda::with_binary`], with `AWS_LAMBDA_LOG_LEVEL` set to `level`.
    pub fn with_log_level(emulator: &Emulator, binary: &str, level: &str) -> LocalLambda {
        let root = repo_root();
        let dir = root.join(".tmp/tests");
        std::fs::create_dir_all(&dir).expect("test scratch dir");
        let port_file = dir.join(format!(
            "lambda-{}-{}.port",
            std::process::id(),
            LAMBDAS.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_file(&port_file);
        let log_path = port_file.with_extension("log");
        let log = std::fs::File::create(&log_path).expect("lambda log");
        let mut child = Command::new(python())
            .arg(root.join("scripts/local_lambda.py"))
            .args(["--binary", binary, "--port", "0", "--timeout", "60"])
            .arg("--port-file")
            .arg(&port_file)
            .args(["--parent-pid", &std::process::id().to_string()])
            .env("AWS_ENDPOINT_URL", &emulator.url)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_REGION", REGION)
            .env("AWS_LAMBDA_LOG_LEVEL", level)
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
                        log: log_path,
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
