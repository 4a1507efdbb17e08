//! What a CloudFormation Registry resource handler written in Rust needs around its own
//! logic, shared by the resource types of this repository and knowing none of them:
//!
//! - `clock`, `budget`: time behind a trait, and the time one invocation may take;
//! - `fault`: a failed AWS call as plain data;
//! - `store`: the parameter store port (where records live) and its in-memory twin;
//! - with feature `aws`: `aws` (clients acting with the caller's credentials, error
//!   classification, call deadlines), `ssm` (the store over SSM Parameter Store),
//!   `logging` (structured logs, captured per invocation), `provider_log` (the handler's
//!   logs and metrics shipped to the log group CloudFormation names), and `lambda` (the
//!   entry point: Lambda runtime → `cfn_protocol::dispatch` → logs and metrics).

pub mod budget;
pub mod clock;
pub mod fault;
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
