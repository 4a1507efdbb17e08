//! What a CloudFormation Registry resource handler written in Rust needs around its own
//! logic, shared by the resource types of this repository and knowing none of them:
//!
//! - `clock`, `budget`: time behind a trait, and the time one invocation may take;
//! - `driver`: the engine loop of a lifecycle (a pure `step`, record first, then act);
//! - `fault`: a failed AWS call as plain data; `failure`: the ways every handler fails,
//!   with one table of their Registry codes and a slot for a type's own;
//! - `resource`: a resource type as a `cfn_protocol::Resource` (the `Backend` a request's
//!   gateway and store come from, the `Invocation` its handlers work with, the default
//!   READ, LIST and DELETE); `context`: the callback context carried between invocations;
//!   `sim`: the backend of a type's simulation (its in-memory twin, store and clock);
//! - `store`, `records`: the parameter store port (where records live), its in-memory twin,
//!   and typed records in it;
//! - `events`: the EventBridge port (`EventSink`), the SDK sink (with `aws`), and `send`,
//!   one best-effort PutEvents (its in-memory twin is `sim::SimEvents`); `lock`: a named lock shared by every
//!   handler of an account and Region, over create-only parameters of the store;
//! - `schema`: a resource schema compiled once (`EmbeddedSchema`), and properties checked
//!   against it;
//! - `ids`: identifiers derived from the request (the same for a redelivered invocation);
//! - `pace`: pauses jittered without a random source, and backed off when AWS throttles;
//! - with feature `aws`: `aws` (clients acting with the caller's credentials, error
//!   classification, call deadlines), `ssm` (the store over SSM Parameter Store),
//!   `logging` (structured logs, captured per invocation), `provider_log` (the handler's
//!   logs and metrics shipped to the log group CloudFormation names), `aws_backend` (the
//!   production backend: a type's gateway over the SDK, its records in SSM), and `lambda`
//!   (the entry point: Lambda runtime → `cfn_protocol::dispatch` → logs and metrics).
//!
//! Records of a resource type in the in-memory store (with feature `aws`, `ssm::SsmStore`
//! puts the same records in SSM Parameter Store):
//!
//! ```
//! use handler_kit::records::{Record, Records, Stored};
//! use handler_kit::store::MemoryStore;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Debug, PartialEq, Serialize, Deserialize)]
//! struct Job {
//!     id: String,
//!     status: String,
//! }
//!
//! impl Record for Job {
//!     fn id(&self) -> &str {
//!         &self.id
//!     }
//!     fn to_text(&self) -> Result<String, String> {
//!         serde_json::to_string(self).map_err(|e| e.to_string())
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let store = MemoryStore::new();
//! // One parameter per record, `<path>/<id>`; `by` is the deadline of each call, in
//! // seconds since the epoch (an in-memory store ignores it unless given a clock).
//! let jobs: Records<'_, _, Job> = Records::new(&store, "/demo/jobs", 10);
//! let by = f64::MAX;
//!
//! let job = Job { id: "job-1".into(), status: "RUNNING".into() };
//! jobs.put(&job, by).await.unwrap();
//! assert_eq!(store.snapshot()["/demo/jobs/job-1"], r#"{"id":"job-1","status":"RUNNING"}"#);
//!
//! match jobs.load("job-1", by).await.unwrap() {
//!     Stored::Record(found) => assert_eq!(*found, job),
//!     other => panic!("expected the record, got {other:?}"),
//! }
//! let (listed, next) = jobs.list(None, by).await.unwrap();
//! assert_eq!((listed.len(), next), (1, None));
//!
//! assert!(jobs.delete("job-1", by).await.unwrap());
//! assert!(matches!(jobs.load("job-1", by).await.unwrap(), Stored::Absent));
//! # });
//! ```

pub mod budget;
pub mod clock;
pub mod context;
pub mod driver;
pub mod events;
pub mod failure;
pub mod fault;
pub mod ids;
pub mod lock;
pub mod pace;
pub mod records;
pub mod resource;
pub mod schema;
pub mod sim;
pub mod store;

#[cfg(feature = "aws")]
pub mod aws_backend;

#[cfg(feature = "aws")]
pub mod aws;
#[cfg(feature = "aws")]
pub mod lambda;
#[cfg(feature = "aws")]
pub mod logging;
#[cfg(feature = "aws")]
pub mod provider_log;
#[cfg(feature = "aws")]
pub mod ssm;

// For `action_span!`, which expands in the resource types' crates.
#[doc(hidden)]
pub use tracing;
