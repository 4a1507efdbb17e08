//! What a CloudFormation Registry resource handler written in Rust needs around its own
//! logic, shared by the resource types of this repository and knowing none of them:
//!
//! - `clock`, `budget`: time behind a trait, and the time one invocation may take;
//! - `driver`: the engine loop of a lifecycle (a pure `step`, record first, then act);
//! - `fault`: a failed AWS call as plain data;
//! - `store`, `records`: the parameter store port (where records live), its in-memory twin,
//!   and typed records in it;
//! - `schema`: a resource schema compiled once, and properties checked against it;
//! - `ids`: identifiers derived from the request (the same for a redelivered invocation);
//! - `pace`: pauses jittered without a random source, and backed off when AWS throttles;
//! - with feature `aws`: `aws` (clients acting with the caller's credentials, error
//!   classification, call deadlines), `ssm` (the store over SSM Parameter Store),
//!   `logging` (structured logs, captured per invocation), `provider_log` (the handler's
//!   logs and metrics shipped to the log group CloudFormation names), and `lambda` (the
//!   entry point: Lambda runtime → `cfn_protocol::dispatch` → logs and metrics).

pub mod budget;
pub mod clock;
pub mod driver;
pub mod fault;
pub mod ids;
pub mod pace;
pub mod records;
pub mod schema;
pub mod store;

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
