//! `Org::ECS::ServiceRestart`: restarts an ECS service's tasks at deploy time
//! (UpdateService with forceNewDeployment) and waits until the new deployment is healthy,
//! failing the deploy with a reason when it is not.
//!
//! It runs on the same engine as `Org::ECS::TaskRun`: the protocol and dispatch of
//! `cfn-protocol`, the drive loop, record store, budget and AWS plumbing of `handler-kit`;
//! its own parts are its state machine (`machine`), its ECS gateway (`services`), its
//! update policy (`policy`) and its handlers.

pub mod context;
pub mod engine;
pub mod error;
pub mod fingerprint;
pub mod handlers;
pub mod machine;
pub mod model;
pub mod policy;
pub mod record;
pub mod resource;
pub mod schema;
pub mod services;
pub mod sim;

#[cfg(feature = "aws")]
pub mod services_sdk;

pub const TYPE_NAME: &str = "Org::ECS::ServiceRestart";
