//! The production backend: ECS and SSM through the AWS SDK, with the caller's
//! credentials, on the system clock; and the entry point the Lambda runtime calls.

use std::time::SystemTime;

use handler_kit::aws_backend::{AwsBackend, FromSdkConfig, SdkConfig};
use serde_json::Value;

use crate::ecs_sdk::SdkEcs;
use crate::resource::TaskRun;

impl FromSdkConfig for SdkEcs {
    fn from_config(config: &SdkConfig) -> Self {
        SdkEcs {
            client: aws_sdk_ecs::Client::new(config),
            logs: aws_sdk_cloudwatchlogs::Client::new(config),
            stacks: aws_sdk_cloudformation::Client::new(config),
        }
    }
}

/// TaskRun in production.
pub const TASK_RUN: TaskRun<AwsBackend<SdkEcs>> =
    TaskRun::new(AwsBackend::new("Org::ECS::TaskRun run record"));

/// One invocation: raw event bytes in, a progress event out, whatever the bytes (and the
/// invocation's logs and metrics to the provider log group, when the request names one).
pub async fn handle(payload: &[u8], deadline: Option<SystemTime>) -> Value {
    handler_kit::lambda::invoke(&TASK_RUN, crate::TYPE_NAME, payload, deadline).await
}

/// [`handle`] for an event already parsed (tests, local tools).
pub async fn handle_value(event: Value) -> Value {
    handle(event.to_string().as_bytes(), None).await
}
