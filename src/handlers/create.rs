use cfn_protocol::ProgressEvent;

use super::Env;
use crate::clock::Clock;
use crate::ecs::Ecs;
use crate::ecs::Launched;
use crate::engine::Held;
use crate::error::TaskRunError;
use crate::ids;
use crate::machine::{self, Event, LaunchMode};
use crate::record::RunRecord;
use crate::store::{ParameterStore, Stored};

impl<E: Ecs, S: ParameterStore, C: Clock> Env<'_, E, S, C> {
    pub(super) async fn create_first(&self) -> Result<ProgressEvent, TaskRunError> {
        let (properties, model) = self.desired()?;
        let token = self.operation_token();
        let id = ids::run_id(
            self.request.stack_id.as_deref(),
            self.request.request_data.logical_resource_id.as_deref(),
            Some(&token),
        );
        match self
            .records()
            .load(&id, self.budget.persist_deadline())
            .await?
        {
            // The same first invocation delivered again: carry on with the run it started.
            Stored::Record(record) if record.run.token == token => {
                tracing::info!(id = %id, "redelivered CREATE: resuming the run it started");
                return self
                    .run_and_answer(Held::from_record(*record), Event::Resumed, None)
                    .await;
            }
            Stored::Record(_) | Stored::Unreadable(_) => {
                return Err(TaskRunError::AlreadyExists(id))
            }
            Stored::Absent => {}
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
        if run.plan.mode == LaunchMode::StartTask {
            // StartTask has no idempotency token. The Id is unique to this CREATE's
            // request token, so a task started by it came from an earlier delivery of
            // this same CREATE, whose run ended and whose record is gone: follow those
            // tasks again rather than start more.
            let earlier = self
                .ecs
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
        let record = RunRecord::new(id, &properties, run.clone());
        super::check_fits(&record)?;
        self.run_and_answer(Held::new_run(record, run), Event::Resumed, None)
            .await
    }
}
