//! Every request the handlers send, as AWS receives it. The property scenarios run over
//! the in-memory twins; with a [`Wire`] on, each call is also made through the real SDK
//! gateways (the type's own for ECS, [`SsmStore`] for its records) against an HTTP client
//! that answers `{}` and keeps the serialized request: the very bytes the SDK would send
//! to AWS. They are then checked, all at once, by the emulator's validator
//! (`emulator/check_requests.py`: the services' published models and the documented
//! limits), so that a request AWS would refuse fails the test even where the twin is
//! kinder.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use aws_credential_types::Credentials;
use aws_smithy_http_client::test_util::infallible_client_fn;
use aws_smithy_types::body::SdkBody;
use handler_kit::clock::{Clock, SystemClock};
use handler_kit::fault::Fault;
use handler_kit::ssm::SsmStore;
use handler_kit::store::ParameterStore;
use serde_json::{json, Value};

/// What an SDK client of the wire is built with: the HTTP client that keeps the requests,
/// credentials, the Region. See [`sdk_config!`](crate::sdk_config).
pub struct SdkParts {
    pub http: aws_smithy_runtime_api::client::http::SharedHttpClient,
    pub credentials: Credentials,
    pub region: aws_config::Region,
}

/// The `Config` of the SDK crate `$sdk` (e.g. `aws_sdk_ecs`) on the wire's [`SdkParts`].
#[macro_export]
macro_rules! sdk_config {
    ($sdk:ident, $parts:expr) => {{
        let parts: &$crate::wire::SdkParts = $parts;
        $sdk::Config::builder()
            .behavior_version($sdk::config::BehaviorVersion::latest())
            .region(parts.region.clone())
            .credentials_provider(parts.credentials.clone())
            .http_client(parts.http.clone())
            .build()
    }};
}

/// The serialized requests, and the SDK clients that make them: `ecs`, the type's own
/// gateway, and `ssm`.
pub struct Wire<E> {
    pub ecs: E,
    pub ssm: SsmStore,
    /// The SDK calls run here: the property scenarios poll the handlers by hand, with no
    /// runtime of their own.
    runtime: tokio::runtime::Runtime,
    pub requests: Arc<Mutex<Vec<Value>>>,
}

impl<E> Wire<E> {
    /// A wire whose records are described as `description` (what the type's production
    /// backend gives its `SsmStore`), and whose ECS gateway `gateway` builds.
    pub fn new(description: &'static str, gateway: impl FnOnce(&SdkParts) -> E) -> Self {
        let requests: Arc<Mutex<Vec<Value>>> = Arc::default();
        let sink = requests.clone();
        let http = infallible_client_fn(move |request: http::Request<SdkBody>| {
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
        });
        let parts = SdkParts {
            http,
            credentials: Credentials::new("AKIAEXAMPLE", "secret", None, None, "wire"),
            region: aws_config::Region::new("us-east-1"),
        };
        Self {
            ecs: gateway(&parts),
            ssm: SsmStore {
                client: aws_sdk_ssm::Client::from_conf(crate::sdk_config!(aws_sdk_ssm, &parts)),
                description,
            },
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the SDK"),
            requests,
        }
    }

    /// Makes the call through the SDK, for its request only (the answer is `{}`).
    pub fn send<T>(&self, call: impl std::future::Future<Output = T>) {
        let _ = self.runtime.block_on(call);
    }

    /// The SDK's own deadline: the scenarios run on a virtual clock.
    pub fn by(&self) -> f64 {
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
        let root = repository_root().ok_or("emulator/check_requests.py not found")?;
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

/// The repository's root: the folder that holds `emulator/check_requests.py`.
pub fn repository_root() -> Option<PathBuf> {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .find(|d| d.join("emulator/check_requests.py").exists())
        .map(Path::to_path_buf)
}

/// A twin, with every call also made on the wire when a [`Wire`] is on (the type's own
/// wrapper does so for its ECS port; this one for the parameter store).
#[derive(Clone)]
pub struct Recorded<T, E> {
    pub inner: T,
    pub wire: Option<Arc<Wire<E>>>,
}

impl<S: ParameterStore + Send + Sync, E: Send + Sync> ParameterStore for Recorded<S, E> {
    async fn get(&self, name: &str, by: f64) -> Result<Option<String>, Fault> {
        if let Some(w) = &self.wire {
            w.send(w.ssm.get(name, w.by()));
        }
        self.inner.get(name, by).await
    }

    async fn put(&self, name: &str, value: &str, by: f64) -> Result<(), Fault> {
        if let Some(w) = &self.wire {
            w.send(w.ssm.put(name, value, w.by()));
        }
        self.inner.put(name, value, by).await
    }

    async fn create(&self, name: &str, value: &str, by: f64) -> Result<bool, Fault> {
        if let Some(w) = &self.wire {
            w.send(w.ssm.create(name, value, w.by()));
        }
        self.inner.create(name, value, by).await
    }

    async fn delete(&self, name: &str, by: f64) -> Result<bool, Fault> {
        if let Some(w) = &self.wire {
            w.send(w.ssm.delete(name, w.by()));
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
            w.send(w.ssm.list(path, next_token, page_size, w.by()));
        }
        self.inner.list(path, next_token, page_size, by).await
    }
}
