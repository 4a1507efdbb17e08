//! Every request the ServiceRestart handlers send, as AWS receives it. The property
//! scenarios run over the in-memory ECS and store (`service_restart::sim`); with a [`Wire`]
//! on, each call is also made through the real SDK gateways (`SdkServices`, `SsmStore`)
//! against an HTTP client that answers `{}` and keeps the serialized request: the very
//! bytes the SDK would send to AWS. They are then checked, all at once, by the emulator's
//! validator (`emulator/check_requests.py`: the services' published models and the
//! documented limits), so that a request AWS would refuse fails the test even where the
//! twin is kinder.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use aws_credential_types::Credentials;
use aws_smithy_types::body::SdkBody;
use cfn_protocol::HandlerRequest;
use handler_kit::clock::{Clock, SystemClock, VirtualClock};
use handler_kit::ssm::SsmStore;
use handler_kit::store::{MemoryStore, ParameterStore};
use serde_json::{json, Value};
use service_restart::error::RestartError;
use service_restart::resource::Backend;
use service_restart::services::{Fault, ServiceDeploymentState, ServiceState, Services};
use service_restart::services_sdk::SdkServices;
use service_restart::sim::{SimBackend, SimServices};

/// The serialized requests, and the SDK clients that make them.
pub struct Wire {
    ecs: SdkServices,
    ssm: SsmStore,
    /// The SDK calls run here: the property scenarios poll the handlers by hand, with no
    /// runtime of their own.
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
                if let Ok(mut sink) = sink.lock() {
                    sink.push(json!({"target": target, "body": body}));
                }
                let mut answer = http::Response::new(SdkBody::from("{}"));
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
        let ssm = aws_sdk_ssm::Config::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(region)
            .credentials_provider(credentials)
            .http_client(http)
            .build();
        Self {
            ecs: SdkServices {
                client: aws_sdk_ecs::Client::from_conf(ecs),
            },
            // What the production backend builds (`services_sdk::AwsBackend::connect`).
            ssm: SsmStore {
                client: aws_sdk_ssm::Client::from_conf(ssm),
                description: "Org::ECS::ServiceRestart record",
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

impl Services for Recorded<SimServices> {
    async fn describe_service(
        &self,
        cluster: &str,
        service: &str,
        by: f64,
    ) -> Result<Option<ServiceState>, Fault> {
        if let Some(w) = &self.wire {
            w.send(w.ecs.describe_service(cluster, service, Wire::by()));
        }
        self.inner.describe_service(cluster, service, by).await
    }

    async fn force_new_deployment(
        &self,
        cluster: &str,
        service: &str,
        by: f64,
    ) -> Result<ServiceState, Fault> {
        if let Some(w) = &self.wire {
            w.send(w.ecs.force_new_deployment(cluster, service, Wire::by()));
        }
        self.inner.force_new_deployment(cluster, service, by).await
    }

    async fn describe_service_deployment(
        &self,
        arn: &str,
        by: f64,
    ) -> Result<Option<ServiceDeploymentState>, Fault> {
        if let Some(w) = &self.wire {
            w.send(w.ecs.describe_service_deployment(arn, Wire::by()));
        }
        self.inner.describe_service_deployment(arn, by).await
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
    type Services = Recorded<SimServices>;
    type Store = Recorded<Arc<MemoryStore>>;
    type Clock = VirtualClock;

    async fn connect(
        &self,
        request: &HandlerRequest,
    ) -> Result<(Self::Services, Self::Store), RestartError> {
        let (services, store) = self.sim.connect(request).await?;
        Ok((
            Recorded {
                inner: services,
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
