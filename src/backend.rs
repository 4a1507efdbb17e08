//! The production backend: ECS and SSM through the AWS SDK, with the caller's
//! credentials, on the system clock; and the entry point the Lambda runtime calls.

use std::time::SystemTime;

use cfn_protocol::HandlerRequest;
use serde_json::Value;

use crate::clock::SystemClock;
use crate::ecs_sdk::SdkEcs;
use crate::error::TaskRunError;
use crate::resource::{Backend, TaskRun};
use crate::store_ssm::SsmStore;

pub struct AwsBackend;

impl Backend for AwsBackend {
    type Ecs = SdkEcs;
    type Store = SsmStore;
    type Clock = SystemClock;

    async fn connect(&self, request: &HandlerRequest) -> Result<(SdkEcs, SsmStore), TaskRunError> {
        let config = crate::aws::config_for(request).await?;
        Ok((
            SdkEcs {
                client: aws_sdk_ecs::Client::new(&config),
            },
            SsmStore {
                client: aws_sdk_ssm::Client::new(&config),
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

/// One invocation: raw event bytes in, a progress event out, whatever the bytes.
pub async fn handle(payload: &[u8], deadline: Option<SystemTime>) -> Value {
    cfn_protocol::dispatch(&TASK_RUN, payload, deadline).await
}

/// [`handle`] for an event already parsed (tests, local tools).
pub async fn handle_value(event: Value) -> Value {
    handle(event.to_string().as_bytes(), None).await
}
