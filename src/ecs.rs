//! The ECS gateway: every ECS call the engine makes, as plain data in and out. The SDK
//! implementation lives in `ecs_sdk.rs`; an in-memory ECS for tests in `sim.rs`.
//!
//! Every call takes the moment (epoch seconds, by the engine's clock) by which it must
//! have returned, so that no invocation makes a call it cannot finish in its budget.

use std::future::Future;

use crate::model::ResourceModel;
use crate::outcome::TaskState;

pub use handler_kit::fault::{Fault, FaultKind};

/// One container of a task definition, as far as a run cares.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerInfo {
    pub name: String,
    pub essential: bool,
    pub environment: Vec<(String, String)>,
    /// The `awslogs` configuration: group, stream prefix, region.
    pub awslogs: Option<AwsLogs>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AwsLogs {
    pub group: String,
    pub stream_prefix: Option<String>,
    pub region: Option<String>,
}

/// A task definition revision, resolved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskDefinitionInfo {
    pub arn: String,
    pub containers: Vec<ContainerInfo>,
}

/// Everything RunTask or StartTask needs to start the tasks of one run.
#[derive(Debug, Clone, Default)]
pub struct LaunchSpec {
    /// The user's properties (launch settings, overrides, placement ...).
    pub model: ResourceModel,
    pub cluster: String,
    /// The resolved task definition revision.
    pub task_definition: String,
    /// The TaskRun's Id: `aws ecs list-tasks --started-by <Id>` finds its tasks.
    pub started_by: String,
    pub tags: Vec<(String, String)>,
}

/// What RunTask or StartTask answered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Launched {
    pub task_arns: Vec<String>,
    /// One readable line per task that could not be placed (`failures[]`).
    pub not_placed: Vec<String>,
}

/// What DescribeTasks answered for a batch of ARNs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Described {
    pub tasks: Vec<TaskState>,
    /// ARNs ECS does not know (never seen, or forgotten about an hour after they stopped).
    pub missing: Vec<String>,
}

/// A task ListTasks found for a `startedBy`, as DescribeTasks shows it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StartedTask {
    pub arn: String,
    /// `createdAt`, epoch seconds.
    pub created_at: Option<f64>,
    /// The value of its [`ATTEMPT_TAG`]; `None` when it has none: a task StopTask stopped
    /// has no tags left ("Any tags associated with the task will be deleted", ECS API
    /// Reference, StopTask).
    pub attempt: Option<String>,
}

/// One GetLogEvents call: the stream, and where in it to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogPageQuery {
    pub group: String,
    pub stream: String,
    pub region: Option<String>,
    /// Events from this time on (epoch milliseconds): "Set startTime explicitly to
    /// reduce the chances of empty pages" (CloudWatch Logs API Reference, GetLogEvents).
    pub start_time_ms: Option<i64>,
    /// At most this many events (1 to 10,000).
    pub limit: u32,
    /// The backward token of the page read before (`None`: from the end).
    pub token: Option<String>,
}

/// One page of events, oldest first, and the token of the page before it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogPage {
    pub messages: Vec<String>,
    pub backward_token: Option<String>,
}

/// The tag that marks the tasks of one StartTask attempt: StartTask has no idempotency
/// token, so this is how an attempt whose answer was lost finds what it started.
pub const ATTEMPT_TAG: &str = "org-ecs-taskrun:attempt";

/// The ECS calls of a run.
pub trait Ecs: Sync {
    fn describe_task_definition(
        &self,
        reference: &str,
        by: f64,
    ) -> impl Future<Output = Result<TaskDefinitionInfo, Fault>> + Send;

    /// RunTask for `count` tasks (at most 10) with an idempotency token.
    fn run_task(
        &self,
        spec: &LaunchSpec,
        count: u32,
        client_token: &str,
        by: f64,
    ) -> impl Future<Output = Result<Launched, Fault>> + Send;

    /// StartTask on these container instances, the tasks tagged with `attempt`.
    /// Never retried by the gateway: a retry could start the tasks twice.
    fn start_task(
        &self,
        spec: &LaunchSpec,
        instances: &[String],
        attempt: &str,
        by: f64,
    ) -> impl Future<Output = Result<Launched, Fault>> + Send;

    /// The tasks (running or stopped) started by `started_by`, with when each was created
    /// and the value of its attempt tag ([`ATTEMPT_TAG`]).
    fn find_started(
        &self,
        cluster: &str,
        started_by: &str,
        by: f64,
    ) -> impl Future<Output = Result<Vec<StartedTask>, Fault>> + Send;

    /// DescribeTasks for at most 100 ARNs.
    fn describe_tasks(
        &self,
        cluster: &str,
        arns: &[String],
        by: f64,
    ) -> impl Future<Output = Result<Described, Fault>> + Send;

    fn stop_task(
        &self,
        cluster: &str,
        arn: &str,
        reason: &str,
        by: f64,
    ) -> impl Future<Output = Result<(), Fault>> + Send;

    /// One page of a CloudWatch Logs stream (GetLogEvents), read backward from the end;
    /// `None` when there is no such stream (or group). See `logs.rs` for the reading.
    fn log_page(
        &self,
        query: &LogPageQuery,
        by: f64,
    ) -> impl Future<Output = Result<Option<LogPage>, Fault>> + Send;

    /// The status of the stack `stack_id` (CloudFormation DescribeStacks), `None` when
    /// CloudFormation does not know it: whether a TaskRun with `AdoptExisting` is being
    /// created by an update of a live stack.
    fn stack_status(
        &self,
        stack_id: &str,
        by: f64,
    ) -> impl Future<Output = Result<Option<String>, Fault>> + Send;

    /// The tasks started by `started_by` that ECS still wants running.
    fn list_running(
        &self,
        cluster: &str,
        started_by: &str,
        by: f64,
    ) -> impl Future<Output = Result<Vec<String>, Fault>> + Send;
}
