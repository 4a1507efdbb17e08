//! The production backend: ECS and SSM through the AWS SDK, with the caller's
//! credentials, on the system clock; and the entry point the Lambda runtime calls.

use std::time::SystemTime;

use cfn_protocol::HandlerRequest;
use serde_json::Value;

use handler_kit::clock::SystemClock;
use handler_kit::ssm::SsmStore;

use crate::ecs_sdk::SdkEcs;
use crate::error::TaskRunError;
use crate::resource::{Backend, TaskRun};

pub struct AwsBackend;

impl Backend for AwsBackend {
    type Ecs = SdkEcs;
    type Store = SsmStore;
    type Clock = SystemClock;

    async fn connect(&self, request: &HandlerRequest) -> Result<(SdkEcs, SsmStore), TaskRunError> {
        let config = handler_kit::aws::config_for(request)
            .await
            .map_err(TaskRunError::Credentials)?;
        Ok((
            SdkEcs {
                client: aws_sdk_ecs::Client::new(&config),
                logs: aws_sdk_cloudwatchlogs::Client::new(&config),
                stacks: aws_sdk_cloudformation::Client::new(&config),
            },
            SsmStore {
                client: handler_kit::aws::ssm_client(&config),
                description: "Org::ECS::TaskRun run record",
            },
        ))
    }

    fn clock(&self) -> &SystemClock {
        &SystemClock
    }
}

static TASK_RUN: TaskRun<AwsBackend> = TaskRun {
    backend: AwsBackend,
};

/// One invocation: raw event bytes in, a progress event out, whatever the bytes (and the
/// invocation's logs and metrics to the provider log group, when the request names one).
pub async fn handle(payload: &[u8], deadline: Option<SystemTime>) -> Value {
    handler_kit::lambda::invoke(&TASK_RUN, crate::TYPE_NAME, payload, deadline).await
}

/// [`handle`] for an event already parsed (tests, local tools).
pub async fn handle_value(event: Value) -> Value {
    handle(event.to_string().as_bytes(), None).await
}
