//! Every request the handlers send, as AWS receives it. The property scenarios run over
//! the in-memory ECS and store; with a [`Wire`] on, each call is also made through the
//! real SDK gateways (`SdkEcs`, `SsmStore`) against an HTTP client that answers `{}` and
//! keeps the serialized request: the very bytes the SDK would send to AWS. They are then
//! checked, all at once, by the emulator's validator (`emulator/check_requests.py`, the
//! services' published models and the documented limits), so that a request AWS would
//! refuse fails the test even where the twin is kinder.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use aws_credential_types::Credentials;
use aws_smithy_types::body::SdkBody;
use cfn_protocol::HandlerRequest;
use serde_json::{json, Value};
use taskrun::clock::{Clock, SystemClock};
use taskrun::ecs::{
    Described, Ecs, Fault, LaunchSpec, Launched, LogPage, LogPageQuery, StartedTask,
    TaskDefinitionInfo,
};
use taskrun::ecs_sdk::SdkEcs;
use taskrun::error::TaskRunError;
use taskrun::resource::Backend;
use taskrun::sim::{SimBackend, SimEcs, VirtualClock};
use taskrun::store::ParameterStore;

/// The serialized requests, and the SDK clients that make them.
pub struct Wire {
    ecs: SdkEcs,
    ssm: handler_kit::ssm::SsmStore,
    runtime: tokio::runtime::Runtime,
    pub requests: Arc<Mutex<Vec<Value>>>,
}

impl Wire {
    pub fn new() -> Self {
        let requests: Arc<Mutex<Vec<Value>>> = Arc::default();
        let sink = requests.clone();
        let http = aws_smithy_http_client::test_util::infallible_client_fn(
            move |request: http::Request<SdkBody>| {
                let target = request
                    .headers()
                    .get("x-amz-target")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                let body = request
                    .body()
                    .bytes()
                    .and_then(|b| serde_json::from_slice::<Value>(b).ok())
                    .unwrap_or(Value::Null);
                // JSON-protocol calls (ECS, CloudWatch Logs, SSM) only: the validator has
                // their models. CloudFormation's DescribeStacks (query protocol, one
                // parameter: the stack's ARN) is not checked.
                if !target.is_empty() {
                    if let Ok(mut sink) = sink.lock() {
                        sink.push(json!({"target": target, "body": body}));
                    }
                }
                let answer = if target.is_empty() {
                    // An empty DescribeStacks answer, in its XML.
                    "<DescribeStacksResponse><DescribeStacksResult><Stacks/></DescribeStacksResult></DescribeStacksResponse>"
                } else {
                    "{}"
                };
                let mut answer = http::Response::new(SdkBody::from(answer));
                *answer.status_mut() = http::StatusCode::OK;
                answer
            },
        );
        let credentials = Credentials::new("AKIAEXAMPLE", "secret", None, None, "wire");
        let region = aws_config::Region::new("us-east-1");
        let ecs = aws_sdk_ecs::Config::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(region.clone())
            .credentials_provider(credentials.clone())
            .http_client(http.clone())
            .build();
        let logs = aws_sdk_cloudwatchlogs::Config::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(region.clone())
            .credentials_provider(credentials.clone())
            .http_client(http.clone())
            .build();
        let stacks = aws_sdk_cloudformation::Config::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(region.clone())
            .credentials_provider(credentials.clone())
            .http_client(http.clone())
            .build();
        let ssm = aws_sdk_ssm::Config::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(region)
            .credentials_provider(credentials)
            .http_client(http)
            .build();
        Self {
            ecs: SdkEcs {
                client: aws_sdk_ecs::Client::from_conf(ecs),
                logs: aws_sdk_cloudwatchlogs::Client::from_conf(logs),
                stacks: aws_sdk_cloudformation::Client::from_conf(stacks),
            },
            ssm: handler_kit::ssm::SsmStore {
                client: aws_sdk_ssm::Client::from_conf(ssm),
                description: "Org::ECS::TaskRun run record",
            },
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the SDK"),
            requests,
        }
    }

    /// Makes the call through the SDK, for its request only (the answer is `{}`).
    fn send<T>(&self, call: impl std::future::Future<Output = T>) {
        let _ = self.runtime.block_on(call);
    }

    /// The SDK's own deadline: the scenarios run on a virtual clock.
    fn by() -> f64 {
        SystemClock.now() + 30.0
    }

    /// Writes the requests (deduplicated) to `path`, and checks them with the emulator's
    /// validator; `Err` with its report when AWS would refuse any.
    pub fn check(&self, path: &Path) -> Result<String, String> {
        let requests = self.requests.lock().map(|r| r.clone()).unwrap_or_default();
        let mut lines: Vec<String> = requests.iter().map(Value::to_string).collect();
        lines.sort();
        lines.dedup();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        }
        std::fs::write(path, lines.join("\n") + "\n").map_err(|e| e.to_string())?;
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let root = root
            .ancestors()
            .find(|d| d.join("emulator/check_requests.py").exists())
            .ok_or("emulator/check_requests.py not found")?;
        let python = root.join(".venv/bin/python");
        let out = std::process::Command::new(&python)
            .arg(root.join("emulator/check_requests.py"))
            .arg(path)
            .output()
            .map_err(|e| {
                format!(
                    "{}: {e} (run `bash scripts/venv.sh` first)",
                    python.display()
                )
            })?;
        let report = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if out.status.success() {
            Ok(format!(
                "{} requests sent ({} distinct): {}",
                requests.len(),
                lines.len(),
                report.lines().last().unwrap_or_default()
            ))
        } else {
            Err(report)
        }
    }
}

/// The twin, with every call also made on the wire when a [`Wire`] is on.
#[derive(Clone)]
pub struct Recorded<T> {
    pub inner: T,
    pub wire: Option<Arc<Wire>>,
}

impl Ecs for Recorded<SimEcs> {
    async fn describe_task_definition(
        &self,
        reference: &str,
        by: f64,
    ) -> Result<TaskDefinitionInfo, Fault> {
        if let Some(w) = &self.wire {
            w.send(w.ecs.describe_task_definition(reference, Wire::by()));
        }
        self.inner.describe_task_definition(reference, by).await
    }

    async fn run_task(
        &self,
        spec: &LaunchSpec,
        count: u32,
        client_token: &str,
        by: f64,
    ) -> Result<Launched, Fault> {
        if let Some(w) = &self.wire {
            w.send(w.ecs.run_task(spec, count, client_token, Wire::by()));
        }
        self.inner.run_task(spec, count, client_token, by).await
    }

    async fn start_task(
        &self,
        spec: &LaunchSpec,
        instances: &[String],
        attempt: &str,
        by: f64,
    ) -> Result<Launched, Fault> {
        if let Some(w) = &self.wire {
            w.send(w.ecs.start_task(spec, instances, attempt, Wire::by()));
        }
        self.inner.start_task(spec, instances, attempt, by).await
    }

    async fn find_started(
        &self,
        cluster: &str,
        started_by: &str,
        by: f64,
    ) -> Result<Vec<StartedTask>, Fault> {
        let answer = self.inner.find_started(cluster, started_by, by).await;
        if let Some(w) = &self.wire {
            w.send(w.ecs.find_started(cluster, started_by, Wire::by()));
            // The DescribeTasks (include TAGS) the SDK makes of what ListTasks found:
            // the answer `{}` found nothing, so make it for the twin's tasks.
            if let Ok(found) = &answer {
                let arns: Vec<String> = found.iter().map(|t| t.arn.clone()).collect();
                for chunk in arns.chunks(100) {
                    w.send(
                        w.ecs
                            .client
                            .describe_tasks()
                            .cluster(cluster)
                            .set_tasks(Some(chunk.to_vec()))
                            .include(aws_sdk_ecs::types::TaskField::Tags)
                            .send(),
                    );
                }
            }
        }
        answer
    }

    async fn describe_tasks(
        &self,
        cluster: &str,
        arns: &[String],
        by: f64,
    ) -> Result<Described, Fault> {
        if let Some(w) = &self.wire {
            w.send(w.ecs.describe_tasks(cluster, arns, Wire::by()));
        }
        self.inner.describe_tasks(cluster, arns, by).await
    }

    async fn stop_task(
        &self,
        cluster: &str,
        arn: &str,
        reason: &str,
        by: f64,
    ) -> Result<(), Fault> {
        if let Some(w) = &self.wire {
            w.send(w.ecs.stop_task(cluster, arn, reason, Wire::by()));
        }
        self.inner.stop_task(cluster, arn, reason, by).await
    }

    async fn log_page(&self, query: &LogPageQuery, by: f64) -> Result<Option<LogPage>, Fault> {
        if let Some(w) = &self.wire {
            w.send(w.ecs.log_page(query, Wire::by()));
        }
        self.inner.log_page(query, by).await
    }

    async fn stack_status(&self, stack_id: &str, by: f64) -> Result<Option<String>, Fault> {
        if let Some(w) = &self.wire {
            w.send(w.ecs.stack_status(stack_id, Wire::by()));
        }
        self.inner.stack_status(stack_id, by).await
    }

    async fn list_running(
        &self,
        cluster: &str,
        started_by: &str,
        by: f64,
    ) -> Result<Vec<String>, Fault> {
        if let Some(w) = &self.wire {
            w.send(w.ecs.list_running(cluster, started_by, Wire::by()));
        }
        self.inner.list_running(cluster, started_by, by).await
    }
}

impl<S: ParameterStore + Send + Sync> ParameterStore for Recorded<S> {
    async fn get(&self, name: &str, by: f64) -> Result<Option<String>, Fault> {
        if let Some(w) = &self.wire {
            w.send(w.ssm.get(name, Wire::by()));
        }
        self.inner.get(name, by).await
    }

    async fn put(&self, name: &str, value: &str, by: f64) -> Result<(), Fault> {
        if let Some(w) = &self.wire {
            w.send(w.ssm.put(name, value, Wire::by()));
        }
        self.inner.put(name, value, by).await
    }

    async fn delete(&self, name: &str, by: f64) -> Result<bool, Fault> {
        if let Some(w) = &self.wire {
            w.send(w.ssm.delete(name, Wire::by()));
        }
        self.inner.delete(name, by).await
    }

    async fn list(
        &self,
        path: &str,
        next_token: Option<&str>,
        page_size: u32,
        by: f64,
    ) -> Result<(Vec<String>, Option<String>), Fault> {
        if let Some(w) = &self.wire {
            w.send(w.ssm.list(path, next_token, page_size, Wire::by()));
        }
        self.inner.list(path, next_token, page_size, by).await
    }
}

/// The simulation's backend, each call also on the wire when a [`Wire`] is on.
#[derive(Clone)]
pub struct WireBackend {
    pub sim: SimBackend,
    pub wire: Option<Arc<Wire>>,
}

impl Backend for WireBackend {
    type Ecs = Recorded<SimEcs>;
    type Store = Recorded<Arc<taskrun::store::MemoryStore>>;
    type Clock = VirtualClock;

    async fn connect(
        &self,
        request: &HandlerRequest,
    ) -> Result<(Self::Ecs, Self::Store), TaskRunError> {
        let (ecs, store) = self.sim.connect(request).await?;
        Ok((
            Recorded {
                inner: ecs,
                wire: self.wire.clone(),
            },
            Recorded {
                inner: store,
                wire: self.wire.clone(),
            },
        ))
    }

    fn clock(&self) -> &VirtualClock {
        self.sim.clock()
    }
}
