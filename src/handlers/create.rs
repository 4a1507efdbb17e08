use cfn_protocol::ProgressEvent;

use super::Invocation;
use crate::clock::Clock;
use crate::context::CallbackContext;
use crate::ecs::Ecs;
use crate::ecs::Launched;
use crate::engine::HeldRun;
use crate::error::TaskRunError;
use crate::machine::{self, Event, LaunchMode};
use crate::model::ResourceModel;
use crate::record::RunRecord;
use crate::store::ParameterStore;
use handler_kit::lock::Holder;

impl<E: Ecs, S: ParameterStore, C: Clock> Invocation<'_, E, S, C> {
    /// The first step of a CREATE (`start`: its context, should it be done again).
    pub(super) async fn create_first(
        &self,
        start: &CallbackContext,
    ) -> Result<ProgressEvent, TaskRunError> {
        let (properties, model) = self.desired()?;
        let token = self.operation_token();
        let id = self.new_id();
        let earlier = match self.earlier_delivery(&id, &token).await {
            Err(TaskRunError::Aws(fault)) => {
                return self
                    .record_unreadable(&id, &model.cluster, start, fault)
                    .await;
            }
            earlier => earlier?,
        };
        if let Some(record) = earlier {
            // The same first invocation delivered again: carry on with the run it started.
            tracing::info!(id = %id, "redelivered CREATE: resuming the run it started");
            return self
                .run_and_answer(HeldRun::stored(record), Event::Resumed, None)
                .await;
        }
        let definition = if model.task_count() > 0 {
            Some(
                self.describe_task_definition(&model.task_definition)
                    .await?,
            )
        } else {
            None
        };
        let mut run = self.plan_run(token, &properties, &model, definition.as_ref())?;
        if model.adopt_existing == Some(true) {
            if let Some(status) = self.stack_update(&id).await? {
                run.adopt(
                    format!(
                        "not run: adopted (AdoptExisting is true and stack {} is {status}, so this TaskRun replaces a resource that ran these tasks already); a later change runs them as any update does",
                        self.request.stack_id.as_deref().unwrap_or("(unknown)")
                    ),
                    self.clock.now(),
                );
                let record = RunRecord::new(id, &properties, run.clone());
                return self
                    .run_and_answer(HeldRun::new_run(record, run), Event::Resumed, None)
                    .await;
            }
        }
        if run.plan.mode == LaunchMode::StartTask {
            // StartTask has no idempotency token. The Id is unique to this CREATE's
            // request token, so a task started by it came from an earlier delivery of
            // this same CREATE, whose run ended and whose record is gone: follow those
            // tasks again rather than start more.
            let earlier = self
                .gateway
                .find_started(&run.cluster, &id, self.budget.call_deadline())
                .await?
                .into_iter()
                .map(|t| t.arn)
                .collect::<Vec<_>>();
            if !earlier.is_empty() {
                tracing::warn!(id = %id, tasks = earlier.len(), "redelivered CREATE whose run already ended: following its tasks again");
                // As the answer of the one StartTask batch: the instances without a task
                // count as not started.
                let launched = Launched {
                    task_arns: earlier,
                    not_placed: Vec::new(),
                };
                run = machine::step(
                    &run,
                    Event::Launched(vec![(0, Ok(launched))]),
                    self.clock.now(),
                )
                .run;
            }
        }
        if !run.tasks.is_empty() {
            // Tasks of an earlier delivery, found: they run, so the lock is this run's.
        } else {
            self.lock_run(&mut run, &model, &id);
        }
        let record = RunRecord::new(id, &properties, run.clone());
        super::check_fits(&record)?;
        self.run_and_answer(HeldRun::new_run(record, run), Event::Resumed, None)
            .await
    }

    /// Makes `run` wait for the model's Lock, if it names one and the run starts tasks: the
    /// holder is this resource under this operation (a redelivery is the same holder).
    pub(super) fn lock_run(&self, run: &mut machine::Run, model: &ResourceModel, id: &str) {
        let Some(lock) = &model.lock else {
            return;
        };
        if run.plan.count == 0 || run.is_ended() {
            return;
        }
        let holder = Holder {
            key: format!("{id}#{}", run.token),
            id: id.to_string(),
            stack: self.request.stack_id.clone(),
            logical_id: self.request.request_data.logical_resource_id.clone(),
        };
        run.wait_for_lock(lock.name.clone(), holder, self.clock.now());
    }

    /// The stack's status when it is being updated (a status beginning `UPDATE_`, rollbacks
    /// included: a TaskRun created then replaces a resource of the live stack), `None` when
    /// it is being created (or CloudFormation does not know it: then nothing is adopted).
    /// A refusal fails the CREATE: whether these tasks already ran cannot be told, and
    /// running them again is what AdoptExisting is there to prevent.
    async fn stack_update(&self, id: &str) -> Result<Option<String>, TaskRunError> {
        let Some(stack) = self.request.stack_id.as_deref() else {
            return Ok(None);
        };
        match self
            .gateway
            .stack_status(stack, self.budget.call_deadline())
            .await
        {
            Ok(Some(status)) if status.starts_with("UPDATE_") => {
                tracing::info!(id = %id, status = %status, "AdoptExisting: the stack is being updated; adopting, not running");
                Ok(Some(status))
            }
            Ok(status) => {
                tracing::info!(id = %id, status = ?status, "AdoptExisting: the stack is not being updated; running as usual");
                Ok(None)
            }
            Err(fault) if fault.is_transient() => Err(TaskRunError::Aws(fault)),
            Err(fault) => Err(TaskRunError::InvalidRequest(format!(
                "AdoptExisting needs to know whether stack {stack} is being created or updated, and CloudFormation's DescribeStacks answered: {fault} (the type's execution role needs cloudformation:DescribeStacks)"
            ))),
        }
    }
}
