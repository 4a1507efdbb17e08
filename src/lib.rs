//! `Org::ECS::TaskRun`: a CloudFormation Registry resource type that runs one-off ECS
//! tasks during a deploy and fails the deploy, with a readable reason, when they fail.
//!
//! The wire format lives in the `cfn-protocol` crate; this crate holds the TaskRun logic.

pub mod aws;
pub mod context;
pub mod error;
pub mod handlers;
pub mod ids;
pub mod logging;
pub mod model;
pub mod outcome;
pub mod record;
pub mod schema;
pub mod store;
pub mod translator;
pub mod update_criteria;

pub use handlers::{handle, handle_request};
