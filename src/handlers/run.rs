//! A run's lifecycle, shared by CREATE and UPDATE: start the tasks, follow them on each
//! callback, decide, and stop them at the deadline.

use aws_sdk_ecs::types::{LaunchType, PropagateTags, TaskDefinition};
use cfn_protocol::{Action, HandlerErrorCode, ProgressEvent};
use serde_json::Value;

use super::{typed, Env};
use crate::context::CallbackContext;
use crate::error::TaskRunError;
use crate::ids;
use crate::model::{ResourceModel, DEFAULT_POLL_INTERVAL_SECONDS};
use crate::outcome::{decide, failure_message, task_id, TaskState, Verdict};
use crate::record::{Run, RunRecord, RunStatus};
use crate::translator;
use crate::update_criteria;

/// ECS's limits per call.
const RUN_TASK_BATCH: u32 = 10;
const DESCRIBE_TASKS_BATCH: usize = 100;
const STOP_REASON_MAX: usize = 255;
const STOP_CONCURRENCY: usize = 10;
/// How long after the start a task ECS does not describe yet is taken as not yet visible.
const MISSING_GRACE_SECONDS: f64 = 60.0;

pub fn cluster_of(record: &RunRecord) -> String {
    record
        .properties
        .get("Cluster")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn poll_interval(record: &RunRecord) -> u32 {
    typed(&record.properties)
        .map(|m| m.poll_interval_seconds())
        .unwrap_or(DEFAULT_POLL_INTERVAL_SECONDS)
}

pub async fn describe_task_definition(
    env: &Env<'_>,
    reference: &str,
) -> Result<TaskDefinition, TaskRunError> {
    env.ecs
        .describe_task_definition()
        .task_definition(reference)
        .send()
        .await
        .map_err(|e| TaskRunError::aws("ecs:DescribeTaskDefinition", e))?
        .task_definition
        .ok_or_else(|| {
            TaskRunError::InvalidRequest(format!("task definition {reference} not found"))
        })
}

/// Starts a new run and answers IN_PROGRESS (or at once, when there is nothing to run).
pub async fn start(
    env: &Env<'_>,
    id: &str,
    properties: &Value,
    model: &ResourceModel,
    token: String,
) -> Result<ProgressEvent, TaskRunError> {
    let mut run = Run::new(token, env.now, model.timeout_seconds());
    let count = model.task_count();
    if count == 0 {
        run.finish(
            RunStatus::Succeeded,
            Some("Count is 0: no task was run".into()),
            &[],
            env.now,
        );
        let record = RunRecord::new(id.to_string(), properties, run);
        env.store.put(&record).await?;
        return Ok(final_event(&record));
    }
    let definition = describe_task_definition(env, &model.task_definition).await?;
    run.deciding = translator::deciding_containers(model, &definition)?;
    run.task_definition_arn = definition.task_definition_arn().map(str::to_string);
    if model
        .update_criteria
        .as_ref()
        .is_some_and(|c| !c.is_empty())
    {
        run.criteria_env = Some(update_criteria::snapshot(&definition, model));
    }
    let mut record = RunRecord::new(id.to_string(), properties, run);
    // The record is written once the tasks run: make sure now that it will fit.
    let mut sized = record.clone();
    sized
        .run
        .set_task_arns(&vec![format!("{:032x}", 0); count as usize]);
    sized
        .to_parameter_value()
        .map_err(TaskRunError::InvalidRequest)?;
    let (arns, failures) = match launch(env, &record, model, count).await {
        Ok(started) => started,
        Err((started, error)) => {
            // Tasks of earlier batches would otherwise run unobserved.
            let reason = format!("Org::ECS::TaskRun {id}: could not start every task");
            stop_tasks(env, &model.cluster, &started, &reason).await;
            return Err(error);
        }
    };
    tracing::info!(
        id,
        started = arns.len(),
        not_placed = failures.len(),
        "tasks started"
    );
    record.run.set_task_arns(&arns);
    record.run.set_placement_failures(failures);
    if arns.is_empty() {
        let lines = record.run.placement_failures.clone();
        record.run.finish(
            RunStatus::Failed,
            Some(failure_message(&lines, record.run.total_tasks())),
            &[],
            env.now,
        );
        return conclude(env, record).await;
    }
    if let Err(error) = env.store.put(&record).await {
        // Without a record nothing would ever watch or stop these tasks.
        let reason = format!("Org::ECS::TaskRun {id}: the run could not be recorded");
        stop_tasks(env, &model.cluster, &arns, &reason).await;
        return Err(error);
    }
    Ok(in_progress(&record, 0))
}

type Started = (Vec<String>, Vec<String>);

/// RunTask in batches of 10 with an idempotency token each, or StartTask on the given
/// instances. On an error, the tasks already started come back with it.
async fn launch(
    env: &Env<'_>,
    record: &RunRecord,
    model: &ResourceModel,
    count: u32,
) -> Result<Started, (Vec<String>, TaskRunError)> {
    let prepared = (|| {
        Ok::<_, TaskRunError>((
            translator::task_override(model)?,
            translator::network_configuration(model)?,
            translator::capacity_provider_strategy(model)?,
        ))
    })();
    let (overrides, network, strategy) = prepared.map_err(|e| (Vec::new(), e))?;
    let tags = translator::tags(model, env.request.request_data.stack_tags.as_ref());
    let task_definition = record
        .run
        .task_definition_arn
        .clone()
        .unwrap_or_else(|| model.task_definition.clone());
    let mut arns = Vec::new();
    let mut failures = Vec::new();
    if let Some(instances) = model.instances.as_ref().filter(|i| !i.is_empty()) {
        let out = env
            .ecs
            .start_task()
            .cluster(&model.cluster)
            .task_definition(&task_definition)
            .set_container_instances(Some(instances.clone()))
            .started_by(&record.id)
            .set_overrides(overrides)
            .set_network_configuration(network)
            .set_group(model.group.clone())
            .set_enable_execute_command(model.enable_execute_command)
            .set_enable_ecs_managed_tags(model.enable_ecs_managed_tags)
            .set_propagate_tags(model.propagate_tags.as_deref().map(PropagateTags::from))
            .set_tags(tags)
            .send()
            .await
            .map_err(|e| (Vec::new(), TaskRunError::aws("ecs:StartTask", e)))?;
        arns.extend(
            out.tasks()
                .iter()
                .filter_map(|t| t.task_arn())
                .map(str::to_string),
        );
        failures.extend(out.failures().iter().map(translator::placement_failure));
        return Ok((arns, failures));
    }
    let mut remaining = count;
    let mut batch = 0;
    while remaining > 0 {
        let size = remaining.min(RUN_TASK_BATCH);
        let out = env
            .ecs
            .run_task()
            .cluster(&model.cluster)
            .task_definition(&task_definition)
            .count(size as i32)
            .client_token(ids::client_token(&record.id, &record.run.token, batch))
            .started_by(&record.id)
            .set_overrides(overrides.clone())
            .set_launch_type(model.launch_type.as_deref().map(LaunchType::from))
            .set_capacity_provider_strategy(strategy.clone())
            .set_platform_version(model.platform_version.clone())
            .set_network_configuration(network.clone())
            .set_placement_constraints(translator::placement_constraints(model))
            .set_placement_strategy(translator::placement_strategy(model))
            .set_group(model.group.clone())
            .set_enable_execute_command(model.enable_execute_command)
            .set_enable_ecs_managed_tags(model.enable_ecs_managed_tags)
            .set_propagate_tags(model.propagate_tags.as_deref().map(PropagateTags::from))
            .set_tags(tags.clone())
            .send()
            .await;
        let out = match out {
            Ok(out) => out,
            // The token was used before with other parameters (a redelivered invocation
            // whose family now resolves to another revision): ECS names the tasks it
            // started then, and they are this batch.
            Err(e) if conflict_task_arns(&e).is_some() => {
                arns.extend(conflict_task_arns(&e).unwrap_or_default());
                remaining -= size;
                batch += 1;
                continue;
            }
            Err(e) => return Err((arns, TaskRunError::aws("ecs:RunTask", e))),
        };
        arns.extend(
            out.tasks()
                .iter()
                .filter_map(|t| t.task_arn())
                .map(str::to_string),
        );
        failures.extend(out.failures().iter().map(translator::placement_failure));
        remaining -= size;
        batch += 1;
    }
    Ok((arns, failures))
}

fn conflict_task_arns(
    error: &aws_sdk_ecs::error::SdkError<aws_sdk_ecs::operation::run_task::RunTaskError>,
) -> Option<Vec<String>> {
    match error.as_service_error() {
        Some(aws_sdk_ecs::operation::run_task::RunTaskError::ConflictException(conflict))
            if !conflict.resource_ids().is_empty() =>
        {
            Some(conflict.resource_ids().to_vec())
        }
        _ => None,
    }
}

/// A callback: look at the tasks, decide, or wait some more. A passing fault (throttling,
/// network, a 5xx) must not fail a deploy: the next callback looks again.
pub async fn resume(
    env: &Env<'_>,
    context: &CallbackContext,
) -> Result<ProgressEvent, TaskRunError> {
    match follow(env, context).await {
        Err(e) if e.code().is_transient() => {
            tracing::warn!(error = %e, "passing fault; looking again at the next callback");
            let next = CallbackContext {
                polls: context.polls.saturating_add(1),
                ..context.clone()
            };
            Ok(
                ProgressEvent::in_progress(None, next.to_value(), DEFAULT_POLL_INTERVAL_SECONDS)
                    .with_message(format!("will look again: {e}")),
            )
        }
        other => other,
    }
}

async fn follow(env: &Env<'_>, context: &CallbackContext) -> Result<ProgressEvent, TaskRunError> {
    let polls = context.polls.saturating_add(1);
    let Some(mut record) = env.store.get(&context.id).await? else {
        return Err(TaskRunError::NotFound(context.id.clone()));
    };
    if record.run.token != context.run_token {
        return Err(TaskRunError::Conflict(format!(
            "TaskRun {} has started another run since this operation began",
            context.id
        )));
    }
    if record.run.status != RunStatus::Running {
        return Ok(final_event(&record));
    }
    let cluster = cluster_of(&record);
    let arns = record.run.task_arns();
    let (tasks, missing) = match describe_tasks(env, &cluster, &arns).await {
        Ok(found) => found,
        Err(e) if e.code().is_transient() && env.now < record.run.deadline => {
            return Err(e);
        }
        // Past the deadline nothing may keep running unobserved: stop every task.
        Err(e) if e.code().is_transient() => {
            let detail = format!("the tasks unreadable ({e}); stopped them all");
            return time_out(env, record, &cluster, &arns, &[], detail).await;
        }
        // The tasks cannot be followed (the cluster is gone, access was revoked):
        // stop them rather than leave them running unobserved, and say why.
        Err(e) => {
            let reason = format!("Org::ECS::TaskRun {}: tasks cannot be followed", record.id);
            stop_tasks(env, &cluster, &arns, &reason).await;
            let message = format!("the tasks could not be read, so they were stopped: {e}");
            record
                .run
                .finish(RunStatus::Failed, Some(message.clone()), &[], env.now);
            conclude(env, record).await?;
            return Ok(ProgressEvent::failed(e.code(), message));
        }
    };
    // ECS is eventually consistent: a task just started may not be described yet.
    if !missing.is_empty()
        && env.now - record.run.started_at < MISSING_GRACE_SECONDS
        && env.now < record.run.deadline
    {
        return Ok(in_progress(&record, polls).with_message(format!(
            "waiting for ECS to report {} new task(s)",
            missing.len()
        )));
    }
    let total = record.run.total_tasks();
    match decide(
        &tasks,
        &missing,
        &record.run.placement_failures,
        &record.run.deciding,
    ) {
        Verdict::Pending { unfinished } if env.now >= record.run.deadline => {
            let ids: Vec<&str> = unfinished.iter().map(|a| task_id(a)).collect();
            let detail = format!(
                "{} of {total} tasks still running; stopped them: {}",
                unfinished.len(),
                ids.join(", ")
            );
            time_out(env, record, &cluster, &unfinished, &tasks, detail).await
        }
        Verdict::Pending { unfinished } => Ok(in_progress(&record, polls).with_message(format!(
            "{} of {total} tasks still running",
            unfinished.len()
        ))),
        Verdict::Succeeded => {
            record
                .run
                .finish(RunStatus::Succeeded, None, &tasks, env.now);
            conclude(env, record).await
        }
        Verdict::Failed { lines } => {
            if !missing.is_empty() {
                // ECS lost sight of them; if they still run somewhere, they must stop.
                let reason = format!("Org::ECS::TaskRun {}: task not described", record.id);
                stop_tasks(env, &cluster, &missing, &reason).await;
            }
            record.run.finish(
                RunStatus::Failed,
                Some(failure_message(&lines, total)),
                &tasks,
                env.now,
            );
            conclude(env, record).await
        }
    }
}

/// The deadline passed: stop what may still run, and end the run as TIMED_OUT.
async fn time_out(
    env: &Env<'_>,
    mut record: RunRecord,
    cluster: &str,
    unfinished: &[String],
    tasks: &[TaskState],
    detail: String,
) -> Result<ProgressEvent, TaskRunError> {
    let timeout = typed(&record.properties)
        .map(|m| m.timeout_seconds())
        .unwrap_or_default();
    let reason = format!(
        "Org::ECS::TaskRun {}: Timeout of {timeout} s passed",
        record.id
    );
    stop_tasks(env, cluster, unfinished, &reason).await;
    let message = format!("timed out after {timeout} s with {detail}");
    record
        .run
        .finish(RunStatus::TimedOut, Some(message), tasks, env.now);
    conclude(env, record).await
}

/// The answer for a record as it stands (a redelivered first invocation).
pub async fn report(env: &Env<'_>, record: RunRecord) -> Result<ProgressEvent, TaskRunError> {
    if record.run.status == RunStatus::Running {
        Ok(in_progress(&record, 0))
    } else {
        conclude(env, record).await
    }
}

/// Keeps a finished run, except a failed CREATE: that resource never came to exist.
async fn conclude(env: &Env<'_>, record: RunRecord) -> Result<ProgressEvent, TaskRunError> {
    let failed = record.run.status != RunStatus::Succeeded;
    if failed && env.request.action == Action::Create {
        env.store.delete(&record.id).await?;
    } else {
        env.store.put(&record).await?;
    }
    tracing::info!(id = %record.id, status = record.run.status.as_str(), "run finished");
    Ok(final_event(&record))
}

fn final_event(record: &RunRecord) -> ProgressEvent {
    let reason = record.run.reason.clone().unwrap_or_default();
    match record.run.status {
        RunStatus::Succeeded | RunStatus::Running => {
            let event = ProgressEvent::success(record.model());
            if reason.is_empty() {
                event
            } else {
                event.with_message(reason)
            }
        }
        RunStatus::Failed => {
            ProgressEvent::failed(HandlerErrorCode::GeneralServiceException, reason)
        }
        RunStatus::TimedOut => ProgressEvent::failed(HandlerErrorCode::NotStabilized, reason),
    }
}

fn in_progress(record: &RunRecord, polls: u32) -> ProgressEvent {
    let context = CallbackContext {
        id: record.id.clone(),
        run_token: record.run.token.clone(),
        polls,
    };
    ProgressEvent::in_progress(
        Some(record.model()),
        context.to_value(),
        poll_interval(record),
    )
}

/// DescribeTasks in batches of 100: the tasks ECS knows, and the ARNs it does not.
async fn describe_tasks(
    env: &Env<'_>,
    cluster: &str,
    arns: &[String],
) -> Result<(Vec<TaskState>, Vec<String>), TaskRunError> {
    let mut tasks = Vec::with_capacity(arns.len());
    let mut missing = Vec::new();
    for chunk in arns.chunks(DESCRIBE_TASKS_BATCH) {
        let out = env
            .ecs
            .describe_tasks()
            .cluster(cluster)
            .set_tasks(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(|e| TaskRunError::aws("ecs:DescribeTasks", e))?;
        tasks.extend(out.tasks().iter().map(translator::observe));
        missing.extend(
            out.failures()
                .iter()
                .filter_map(|f| f.arn())
                .map(str::to_string),
        );
    }
    Ok((tasks, missing))
}

/// Asks ECS to stop each task. Best effort: a task that cannot be stopped (already gone)
/// must not keep a stack from deleting or a deadline from failing the operation.
pub async fn stop_tasks(env: &Env<'_>, cluster: &str, arns: &[String], reason: &str) {
    let mut reason = reason.to_string();
    if reason.len() > STOP_REASON_MAX {
        let mut cut = STOP_REASON_MAX;
        while !reason.is_char_boundary(cut) {
            cut -= 1;
        }
        reason.truncate(cut);
    }
    // Concurrently, ten at a time: a hundred sequential calls would not fit an invocation.
    for chunk in arns.chunks(STOP_CONCURRENCY) {
        let mut calls = tokio::task::JoinSet::new();
        for arn in chunk {
            let call = env
                .ecs
                .stop_task()
                .cluster(cluster)
                .task(arn)
                .reason(&reason);
            let arn = arn.clone();
            calls.spawn(async move { (arn, call.send().await) });
        }
        while let Some(joined) = calls.join_next().await {
            match joined {
                Ok((arn, Ok(_))) => tracing::info!(task = task_id(&arn), "stop requested"),
                Ok((arn, Err(e))) => {
                    let error = TaskRunError::aws("ecs:StopTask", e);
                    tracing::warn!(task = task_id(&arn), error = %error, "could not stop task");
                }
                Err(e) => tracing::warn!(error = %e, "a StopTask call did not complete"),
            }
        }
    }
}
