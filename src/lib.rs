//! `Org::ECS::TaskRun`: a CloudFormation Registry resource type that runs one-off ECS
//! tasks during a deploy and fails the deploy, with a readable reason, when they fail.
//!
//! The wire format and the dispatch live in the `cfn-protocol` crate. Here: the run's
//! state machine (`machine`), the engine that does one invocation's I/O around it
//! (`engine`), the handlers per action (`handlers`), and the ports they speak through:
//! the ECS gateway (`ecs`) and the record store (`store`), each with an AWS SDK
//! implementation (feature `aws`, on by default) and an in-memory one (`sim`, `store`).

pub mod context;
pub mod ecs;
pub mod engine;
pub mod error;
pub mod events;
pub mod handlers;
pub mod logs;
pub mod machine;
pub mod model;
pub mod outcome;
pub mod properties;
pub mod record;
pub mod resource;
pub mod schema;
pub mod sim;
pub mod store;
pub mod task_result;
pub mod task_tags;
pub mod undo;
pub mod update_policy;

#[cfg(feature = "aws")]
pub mod backend;
#[cfg(feature = "aws")]
pub mod ecs_sdk;
#[cfg(feature = "aws")]
pub mod translator;

#[cfg(feature = "aws")]
pub use handler_kit::aws;
pub use handler_kit::{budget, clock, ids};

/// The resource type's name, as the Registry knows it.
pub const TYPE_NAME: &str = "Org::ECS::TaskRun";

#[cfg(feature = "aws")]
pub use backend::{handle, handle_value};
