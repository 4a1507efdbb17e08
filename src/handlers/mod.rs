//! The Registry actions' handlers, as methods of [`Invocation`]: one request with its ECS
//! gateway, record store, clock and time budget. Here are the entry points of CREATE,
//! UPDATE and DELETE, which pick the step to take by the callback context's stage, and
//! what the actions share: the desired properties validated, a record loaded, a run
//! planned, driven by the engine and answered as a progress event, and passing faults
//! ridden out. Each action's own steps are in its module (`create`, `update`, `delete`,
//! `read`, `list`; `resume` for the callbacks of a CREATE or UPDATE). Handlers never call
//! ECS themselves beyond resolving the task definition: runs are the engine's.

mod create;
mod delete;
mod resume;
mod update;

use std::ops::Deref;

use cfn_protocol::{HandlerError, ProgressEvent};
use handler_kit::context::Carried;
use handler_kit::resource::Handlers;
use serde_json::Value;

use crate::clock::Clock;
use crate::context::{CallbackContext, Stage};
use crate::ecs::{Ecs, Fault, TaskDefinitionInfo};
use crate::engine::{Answer, Engine, HeldRun, Outcome};
use crate::error::{RunFailure, TaskRunError};
use crate::events::Announced;
use crate::machine::{
    ContainerLog, Ending, LaunchMode, Plan, Retry, Run, STOP_CONFIRM_LIMIT_SECONDS,
};
use crate::model::ResourceModel;
use crate::record::RunRecord;
use crate::resource::TaskRunType;
use crate::store::ParameterStore;
use crate::update_policy::Fingerprint;

/// One invocation of a TaskRun handler: the kit's invocation (the request, the ECS
/// gateway, the record store, the clock and the time budget, and what every type's
/// handlers share), with TaskRun's handlers as methods.
pub struct Invocation<'a, E, S, C>(pub handler_kit::resource::Invocation<'a, TaskRunType, E, S, C>);

impl<'a, E, S, C> Deref for Invocation<'a, E, S, C> {
    type Target = handler_kit::resource::Invocation<'a, TaskRunType, E, S, C>;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl<E: Ecs, S: ParameterStore, C: Clock> Handlers<E, S, C> for TaskRunType {
    async fn create(
        invocation: handler_kit::resource::Invocation<'_, Self, E, S, C>,
    ) -> Result<ProgressEvent, TaskRunError> {
        Invocation(invocation).create().await
    }

    async fn update(
        invocation: handler_kit::resource::Invocation<'_, Self, E, S, C>,
    ) -> Result<ProgressEvent, TaskRunError> {
        Invocation(invocation).update().await
    }

    async fn delete(
        invocation: handler_kit::resource::Invocation<'_, Self, E, S, C>,
    ) -> Result<ProgressEvent, TaskRunError> {
        Invocation(invocation).delete().await
    }
}

impl<E: Ecs, S: ParameterStore, C: Clock> Invocation<'_, E, S, C> {
    pub async fn create(&self) -> Result<ProgressEvent, TaskRunError> {
        match self.context()? {
            Some(context) if context.stage == Stage::Start => {
                self.ride_out(&context, self.create_first(&context).await)
            }
            Some(context) => self.ride_out(&context, self.resume(context.clone()).await),
            None => {
                let context = self.start_context(self.new_id(), Stage::Start);
                self.ride_out(&context, self.create_first(&context).await)
            }
        }
    }

    pub async fn update(&self) -> Result<ProgressEvent, TaskRunError> {
        match self.context()? {
            Some(context) if context.stage == Stage::Start => {
                self.ride_out(&context, self.update_first(&context).await)
            }
            Some(context) => self.ride_out(&context, self.resume(context.clone()).await),
            None => {
                let id = self.requested_id().unwrap_or_default();
                let context = self.start_context(id, Stage::Start);
                self.ride_out(&context, self.update_first(&context).await)
            }
        }
    }

    pub async fn delete(&self) -> Result<ProgressEvent, TaskRunError> {
        match self.context()? {
            Some(context) if context.stage == Stage::Delete => {
                self.ride_out(&context, self.delete_resume(context.clone()).await)
            }
            _ => {
                let result = self.delete_first().await;
                let id = self.requested_id().unwrap_or_default();
                self.ride_out(&self.start_context(id, Stage::Delete), result)
            }
        }
    }

    /// The context of an operation whose first step is to be done again.
    fn start_context(&self, id: String, stage: Stage) -> CallbackContext {
        CallbackContext {
            id,
            stage,
            token: self.operation_token(),
            revision: 0,
            give_up_at: self.clock.now() + STOP_CONFIRM_LIMIT_SECONDS,
            run: None,
            throttled: 0,
            // A first step done again: whatever it announced before is announced again
            // (the same event ids).
            announced: None,
        }
    }

    /// A callback that met a passing fault (the record could not be read or written)
    /// answers IN_PROGRESS with the same context, to try again: a retriable FAILED would
    /// have CloudFormation start the operation over. Not for ever: past the context's
    /// give-up time the operation fails.
    fn ride_out(
        &self,
        context: &CallbackContext,
        result: Result<ProgressEvent, TaskRunError>,
    ) -> Result<ProgressEvent, TaskRunError> {
        self.0.ride_out(
            &context.id,
            context,
            |c| (&mut c.give_up_at, &mut c.throttled),
            result,
            |fault| record_out_of_reach(context, fault),
        )
    }

    /// As [`Self::ride_out`] for `fault`, whatever its kind.
    fn try_again(
        &self,
        context: &CallbackContext,
        fault: &Fault,
    ) -> Result<ProgressEvent, TaskRunError> {
        self.0.try_again(
            &context.id,
            context,
            |c| (&mut c.give_up_at, &mut c.throttled),
            fault,
            |fault| record_out_of_reach(context, fault),
        )
    }

    /// The first step of a CREATE or an UPDATE could not read the record (`fault`). This
    /// may be a delivery again of a first invocation that recorded its run and started
    /// tasks before it died: so even a fault that will not pass (access denied) is tried
    /// again at the next callback, as a passing one is, rather than failing the operation
    /// at once. At the first step's give-up time the operation fails; but first every task
    /// started by this Id in `cluster` is stopped: nothing would follow those tasks once
    /// the operation has failed (a stack created without rollback never deletes the
    /// resource), and their Lock's lease would end under them, letting the next holder run
    /// beside them. By then (ten minutes on) ECS shows every task it started. The Id is
    /// this resource's own: an UPDATE stops its earlier run's tasks too, as it would have
    /// (a run still going is superseded).
    pub(super) async fn record_unreadable(
        &self,
        id: &str,
        cluster: &str,
        start: &CallbackContext,
        fault: Fault,
    ) -> Result<ProgressEvent, TaskRunError> {
        if !self.gives_up(start.give_up_at, &fault) {
            return self.try_again(start, &fault);
        }
        self.stop_unfollowed(id, cluster, &fault).await;
        Err(TaskRunError::Aws(fault))
    }

    /// Stops every task started by `id` (the record cannot be read: `fault`).
    async fn stop_unfollowed(&self, id: &str, cluster: &str, fault: &Fault) {
        let found = self
            .gateway
            .find_started(cluster, id, self.budget.call_deadline())
            .await;
        match found {
            Ok(tasks) if tasks.is_empty() => {}
            Ok(tasks) => {
                let arns: Vec<String> = tasks.into_iter().map(|t| t.arn).collect();
                tracing::warn!(id = %id, tasks = arns.len(), error = %fault, "the record cannot be read: stopping the tasks started by this Id before failing");
                let reason = format!(
                    "Org::ECS::TaskRun {id}: its operation failed (its record could not be read)"
                );
                let stopped = self.engine().stop_all(cluster, &arns, &reason).await;
                let refused = stopped.iter().filter(|(_, r)| r.is_err()).count();
                if refused > 0 {
                    tracing::error!(id = %id, tasks = refused, "could not stop every task started by this Id");
                }
            }
            Err(lookup) => {
                tracing::error!(id = %id, error = %lookup, "the record cannot be read and the tasks started by this Id cannot be listed");
            }
        }
    }

    fn context(&self) -> Result<Option<CallbackContext>, TaskRunError> {
        self.0.context()
    }

    fn engine(&self) -> Engine<'_, E, S, C> {
        Engine {
            ecs: self.gateway,
            store: self.store,
            clock: self.clock,
            budget: self.engine_budget(),
            stack_tags: self.request.request_data.stack_tags.as_ref(),
        }
    }

    /// The budget the engine drives a run with: the invocation's, less the time of the
    /// send of its events at the end when the TaskRun has `Events` (as the request gives
    /// its properties), so that sending makes no invocation longer than it would be.
    fn engine_budget(&self) -> crate::budget::Budget {
        let events = crate::events::bus_of(&self.request.desired_properties()).is_some()
            || self
                .request
                .previous_properties()
                .is_some_and(|p| crate::events::bus_of(&p).is_some());
        if !events {
            return self.budget;
        }
        handler_kit::events::budget_before_send(
            self.budget.started,
            self.request.deadline.map(handler_kit::clock::epoch_seconds),
        )
    }

    /// The desired properties, coerced and validated against the schema.
    fn desired(&self) -> Result<(Value, ResourceModel), TaskRunError> {
        let properties = crate::schema::prepare(self.request.desired_properties())?;
        let model = crate::properties::typed(&properties)?;
        crate::properties::check(&properties, &model)?;
        Ok((properties, model))
    }

    async fn describe_task_definition(
        &self,
        reference: &str,
    ) -> Result<TaskDefinitionInfo, TaskRunError> {
        self.gateway
            .describe_task_definition(reference, self.budget.call_deadline())
            .await
            .map_err(TaskRunError::Aws)
    }

    /// A new run of `model`, planned against the resolved task definition.
    fn plan_run(
        &self,
        token: String,
        properties: &Value,
        model: &ResourceModel,
        definition: Option<&TaskDefinitionInfo>,
    ) -> Result<Run, TaskRunError> {
        let count = model.task_count();
        let instances = model.instances.clone().unwrap_or_default();
        let (task_definition, deciding) = match definition {
            Some(d) => (
                d.arn.clone(),
                crate::properties::deciding_containers(model, d)?,
            ),
            None => (model.task_definition.clone(), Vec::new()),
        };
        // The logs a run may read: the deciding containers' awslogs streams.
        let logs = definition
            .map(|d| {
                d.containers
                    .iter()
                    .filter(|c| deciding.contains(&c.name))
                    .filter_map(|c| {
                        let awslogs = c.awslogs.as_ref()?;
                        Some(ContainerLog {
                            container: c.name.clone(),
                            group: awslogs.group.clone(),
                            prefix: awslogs.stream_prefix.clone()?,
                            region: awslogs.region.clone(),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        // Retries start a new task with RunTask; StartTask's tasks are not retried.
        let retry = match &model.retry {
            Some(policy) if instances.is_empty() => Retry {
                attempts: policy.attempts.unwrap_or(0),
                on: policy.on.clone().unwrap_or_else(|| {
                    crate::model::DEFAULT_RETRY_ON
                        .iter()
                        .map(|c| c.to_string())
                        .collect()
                }),
                spot_fallback: policy.spot_fallback.unwrap_or(false),
            },
            _ => Retry::default(),
        };
        let plan = Plan {
            mode: if instances.is_empty() {
                LaunchMode::RunTask
            } else {
                LaunchMode::StartTask
            },
            count,
            task_definition,
            deciding,
            instances,
            log_tail: model.log_tail_lines(),
            logs,
            retry,
        };
        let mut run = Run::new(
            token,
            model.cluster.clone(),
            plan,
            self.clock.now(),
            model.timeout_seconds(),
            model.poll_interval_seconds(),
        );
        run.fingerprint = Some(Fingerprint::of(properties, model, definition));
        Ok(run)
    }

    /// Drives `held` from `event` and answers for a CREATE or UPDATE: SUCCESS when the run
    /// succeeded, FAILED with the reason when it ended otherwise (a failed CREATE's record
    /// is deleted: that resource never came to exist), IN_PROGRESS while it goes on.
    async fn run_and_answer(
        &self,
        mut held: HeldRun,
        event: crate::machine::Event,
        message: Option<String>,
    ) -> Result<ProgressEvent, TaskRunError> {
        let known = self.announced_for_drive(&mut held);
        match self.engine().drive(&mut held, event).await {
            Ok(outcome) => {
                let announced = self.announce(&held, known).await;
                self.answer(held, outcome, message, announced).await
            }
            Err(error @ TaskRunError::Own(RunFailure::RunEnded { .. })) => {
                // The run could not be recorded and its tasks were stopped: a CREATE
                // leaves nothing behind (best effort: the store may refuse this too).
                if self.request.action == cfn_protocol::Action::Create {
                    if let Err(fault) = self
                        .records()
                        .delete(&held.id, self.budget.persist_deadline())
                        .await
                    {
                        tracing::warn!(id = %held.id, error = %fault, "could not delete the record of a failed create");
                    }
                }
                Err(error)
            }
            Err(error) => Err(error),
        }
    }

    async fn answer(
        &self,
        held: HeldRun,
        outcome: Outcome,
        message: Option<String>,
        announced: Announced,
    ) -> Result<ProgressEvent, TaskRunError> {
        let with_message = |event: ProgressEvent| match &message {
            Some(m) => event.with_message(m.clone()),
            None => event,
        };
        match outcome {
            Outcome::Pending { delay } => {
                let event = self.in_progress_announced(&held, Stage::Run, delay, announced);
                Ok(match (&message, &held.note) {
                    (None, Some(note)) => event.with_message(note.clone()),
                    _ => with_message(event),
                })
            }
            Outcome::GaveUp => {
                let error = TaskRunError::Own(RunFailure::StopUnconfirmed(format!(
                    "{}; but its tasks could not be confirmed stopped: the record keeps following them",
                    held.run.reason.clone().unwrap_or_default()
                )));
                Ok(ProgressEvent::failed(error.code(), error.to_string()).with_model(held.model()))
            }
            Outcome::Ended => match held.run.ending {
                Some(Ending::Succeeded) => {
                    tracing::info!(id = %held.id, "run succeeded");
                    Ok(with_message(ProgressEvent::success(held.model())))
                }
                Some(ending) => {
                    let reason = held
                        .run
                        .reason
                        .clone()
                        .unwrap_or_else(|| "the run failed".into());
                    tracing::info!(id = %held.id, ?ending, reason = %reason, "run ended without success");
                    let undo_reported = held
                        .record
                        .as_ref()
                        .and_then(|r| r.undo_run())
                        .is_some_and(|u| u.if_fails == crate::record::IfUndoFails::Report);
                    if undo_reported && self.request.action == cfn_protocol::Action::Update {
                        // OnRollback.IfUndoFails REPORT: the rollback goes on; the model's
                        // Status and StatusReason say the undo failed.
                        tracing::warn!(id = %held.id, reason = %reason, "the undo failed; IfUndoFails is REPORT: the rollback goes on");
                        return Ok(ProgressEvent::success(held.model()).with_message(format!(
                            "the undo failed ({reason}); IfUndoFails is REPORT: the rollback goes on"
                        )));
                    }
                    if self.request.action == cfn_protocol::Action::Create
                        && self.request.callback_context.is_none()
                        && held.run.plan.mode == LaunchMode::StartTask
                        && held.stored.is_some()
                        && !held.run.tasks.is_empty()
                    {
                        // StartTask has no idempotency token: were this answer lost, the
                        // CREATE delivered again would find no record and start the tasks
                        // again (ListTasks, which it asks first, may not show the earlier
                        // ones yet: ECS is eventually consistent). The FAILED answer, and
                        // the record's removal, wait for a callback: CloudFormation only
                        // calls back once it has this answer.
                        return Ok(self.in_progress_announced(&held, Stage::Run, 1.0, announced));
                    }
                    if self.request.action == cfn_protocol::Action::Create {
                        if let Err(fault) = self
                            .records()
                            .delete(&held.id, self.budget.persist_deadline())
                            .await
                        {
                            // The run is over; only its record is left to remove. A
                            // retriable code would have CloudFormation start over: come
                            // back instead, and remove it then.
                            tracing::warn!(id = %held.id, error = %fault, "could not delete the record of a failed create; trying again");
                            return Ok(self.in_progress_announced(
                                &held,
                                Stage::Run,
                                1.0,
                                announced,
                            ));
                        }
                    }
                    // The model (with its Id) goes along: CloudFormation knows what failed.
                    Ok(
                        ProgressEvent::failed(crate::error::ending_code(ending), reason)
                            .with_model(held.model()),
                    )
                }
                None => Err(TaskRunError::Internal(
                    "a run ended without an outcome".into(),
                )),
            },
        }
    }

    /// What of `held`'s run was announced before this invocation: what the callback
    /// context carried, and what the record says (an undo's events say they are one).
    fn announced_before(&self, held: &HeldRun) -> Announced {
        let token = &held.run.token;
        let carried = self.context().ok().flatten().and_then(|c| c.announced);
        let mut known = Announced::of(carried.as_ref(), token);
        if let Some(record) = &held.hold.record {
            known = known.merge(&Announced::of(record.announced.as_ref(), token));
            known.undo |= record.undo_run().is_some();
        }
        known
    }

    /// [`Self::announced_before`], also put in the held record, so that the engine's
    /// next write of it carries it along (never a write of its own).
    fn announced_for_drive(&self, held: &mut HeldRun) -> Announced {
        let known = self.announced_before(held);
        if let Some(record) = held.hold.record.as_mut() {
            if crate::events::bus_of(&record.properties).is_some() {
                record.announced = Some(known.clone());
            }
        }
        known
    }

    /// Sends the events `held`'s run has due beyond `known` (`crate::events::due`), when
    /// the TaskRun has `Events`: one PutEvents call, best effort, within the time the
    /// engine's budget left (`handler_kit::events::send`); what is announced then.
    async fn announce(&self, held: &HeldRun, known: Announced) -> Announced {
        let Some(bus) = crate::events::bus_of(&held.properties) else {
            return known;
        };
        let due = crate::events::due(&held.run, &known);
        if due.is_empty() {
            return known;
        }
        let batch = crate::events::batch(&due);
        let source = crate::events::Source {
            id: held.id.clone(),
            stack_id: self.request.stack_id.clone(),
            logical_resource_id: self.request.request_data.logical_resource_id.clone(),
            region: self.request.region.clone(),
            bus,
        };
        let entries: Vec<_> = batch
            .iter()
            .map(|kind| crate::events::entry(&source, &held.run, *kind, known.undo))
            .collect();
        let delivery =
            handler_kit::events::send(self.events, &entries, self.clock, &self.budget).await;
        known.after(&batch, &delivery.settled)
    }

    /// IN_PROGRESS with the model and a context to carry on from, which carries
    /// `announced`.
    fn in_progress_announced(
        &self,
        held: &HeldRun,
        stage: Stage,
        delay: f64,
        announced: Announced,
    ) -> ProgressEvent {
        let give_up_at = match &held.run.stopping {
            Some(stopping) => stopping.since,
            None => held.run.deadline,
        } + STOP_CONFIRM_LIMIT_SECONDS;
        let context = CallbackContext {
            id: held.id.clone(),
            stage,
            token: held.run.token.clone(),
            revision: held.stored.unwrap_or_default(),
            give_up_at,
            run: (stage == Stage::Run && crate::engine::travels_in_context(&held.run))
                .then(|| held.run.clone()),
            throttled: 0,
            announced: (crate::events::bus_of(&held.properties).is_some()
                && announced != Announced::none(&held.run.token))
            .then_some(announced),
        };
        let model = (self.request.action != cfn_protocol::Action::Delete).then(|| held.model());
        ProgressEvent::in_progress(
            model,
            context.to_value(),
            handler_kit::pace::callback_seconds(delay),
        )
    }
}

/// The failure of an operation whose record stayed out of reach (`fault`) past its
/// context's give-up time.
fn record_out_of_reach(context: &CallbackContext, fault: &Fault) -> TaskRunError {
    TaskRunError::Own(RunFailure::StopUnconfirmed(format!(
        "TaskRun {}: the run's record could not be reached until well past the deadline ({fault})",
        context.id
    )))
}

/// Whether the record of `record`'s run can be kept once all its tasks have started:
/// checked before any task starts.
fn check_fits(record: &RunRecord) -> Result<(), TaskRunError> {
    let mut sized = record.clone();
    let prefix = "arn:aws-us-gov:ecs:us-gov-west-1:123456789012:task/";
    let cluster: String = sized.run.cluster.chars().take(255).collect();
    for i in 0..sized.run.plan.count {
        sized.run.tasks.push(&format!("{prefix}{cluster}/{i:032x}"));
    }
    sized.run.reason = Some("x".repeat(400));
    sized
        .to_parameter_value()
        .map(|_| ())
        .map_err(TaskRunError::InvalidRequest)
}
