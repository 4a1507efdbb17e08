//! Every request the handlers send, as AWS receives it. The property scenarios run over
//! the in-memory twins; with a [`Wire`] on, each call is also made through the real SDK
//! gateways (the type's own for ECS, [`SsmStore`] for its records, [`SdkEvents`] for
//! EventBridge's PutEvents) against an HTTP client that answers `{}` and keeps the
//! serialized request: the very bytes the SDK would send to AWS. They are then checked,
//! all at once, by the emulator's validator (`emulator/check_requests.py`: the services'
//! published models and the documented limits), so that a request AWS would refuse fails
//! the test even where the twin is kinder.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use aws_credential_types::Credentials;
use aws_smithy_http_client::test_util::infallible_client_fn;
use aws_smithy_types::body::SdkBody;
use handler_kit::clock::{Clock, SystemClock};
use handler_kit::events::{EventEntry, EventSink, SdkEvents, SinkFuture};
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
/// gateway, `ssm` and `events`.
pub struct Wire<E> {
    pub ecs: E,
    pub ssm: SsmStore,
    /// EventBridge's PutEvents, as the production backend sends it.
    pub events: SdkEvents,
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
            // JSON-protocol calls (ECS, CloudWatch Logs, SSM, EventBridge:
            // `AWSEvents.PutEvents`) only: the validator has their models.
            // CloudFormation's DescribeStacks (query protocol, one parameter: the stack's
            // ARN) is not checked.
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
            events: SdkEvents {
                client: aws_sdk_eventbridge::Client::from_conf(crate::sdk_config!(
                    aws_sdk_eventbridge,
                    &parts
                )),
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

/// An event sink (the twin's), with every PutEvents also made on the wire when a [`Wire`]
/// is on. The wire's own answer (`{}`: no result entries, which [`SdkEvents`] takes for a
/// fault of the call) is dropped; the handler gets the inner sink's.
pub struct RecordedEvents<E> {
    pub inner: Box<dyn EventSink>,
    pub wire: Option<Arc<Wire<E>>>,
}

impl<E: Send + Sync> EventSink for RecordedEvents<E> {
    fn put_events<'a>(&'a self, entries: &'a [EventEntry], by: f64) -> SinkFuture<'a> {
        Box::pin(async move {
            if let Some(w) = &self.wire {
                w.send(w.events.put_events(entries, w.by()));
            }
            self.inner.put_events(entries, by).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use handler_kit::events::{EntryResult, NoEvents};

    fn entry(bus: &str) -> EventEntry {
        EventEntry {
            event_bus_name: bus.to_string(),
            source: "org.taskrun".to_string(),
            detail_type: "TaskRun Started".to_string(),
            detail: r#"{"Count":1}"#.to_string(),
            resources: vec!["arn:aws:ecs:us-east-1:123456789012:task/apps/0123".to_string()],
            key: "k".to_string(),
        }
    }

    /// PutEvents goes on the wire as `AWSEvents.PutEvents` (JSON 1.1) with the entries as
    /// the SDK serializes them; the answer `{}` reads as an empty PutEvents answer (no
    /// entries, no FailedEntryCount), a fault of the call rather than a panic; the handler
    /// is answered by the inner sink.
    #[test]
    fn put_events_goes_on_the_wire() {
        let wire = Arc::new(Wire::new("test record", |_| ()));
        let entries = vec![
            entry("default"),
            entry("arn:aws:events:us-east-1:123456789012:event-bus/b"),
        ];
        let direct = wire
            .runtime
            .block_on(wire.events.put_events(&entries, wire.by()));
        let fault = direct.expect_err("no result entries in `{}`");
        assert!(
            fault.to_string().contains("0 results for 2 entries"),
            "{fault}"
        );

        let sink = RecordedEvents {
            inner: Box::new(NoEvents),
            wire: Some(wire.clone()),
        };
        // Polled by hand, as the property scenarios do (the wire's runtime runs the SDK).
        let mut call = sink.put_events(&entries, 0.0);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        let std::task::Poll::Ready(answer) = call.as_mut().poll(&mut cx) else {
            panic!("the sink answers at once");
        };
        assert_eq!(
            answer.expect("the inner sink's answer"),
            vec![
                EntryResult::Accepted {
                    event_id: String::new()
                };
                2
            ]
        );

        let requests = wire.requests.lock().expect("requests").clone();
        assert_eq!(requests.len(), 2, "{requests:?}");
        for request in &requests {
            assert_eq!(request["target"], "AWSEvents.PutEvents");
            let sent = request["body"]["Entries"].as_array().expect("Entries");
            assert_eq!(sent.len(), 2);
            assert_eq!(sent[0]["EventBusName"], "default");
            assert_eq!(sent[0]["Source"], "org.taskrun");
            assert_eq!(sent[0]["DetailType"], "TaskRun Started");
            assert_eq!(sent[0]["Detail"], r#"{"Count":1}"#);
            assert_eq!(
                sent[0]["Resources"],
                json!(["arn:aws:ecs:us-east-1:123456789012:task/apps/0123"])
            );
            assert!(sent[0].get("Key").is_none());
        }
    }
}
