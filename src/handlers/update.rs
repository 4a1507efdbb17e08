use cfn_protocol::ProgressEvent;
use serde_json::Value;

use super::Invocation;
use crate::clock::Clock;
use crate::context::{CallbackContext, Stage};
use crate::ecs::Ecs;
use crate::engine::{HeldRun, Outcome};
use crate::error::{RunFailure, TaskRunError};
use crate::machine::Event;
use crate::model::ResourceModel;
use crate::record::{without_read_only, IfUndoFails, PendingUpdate, RunRecord};
use crate::store::ParameterStore;
use crate::update_policy::{self, Decision, Fingerprint};

impl<E: Ecs, S: ParameterStore, C: Clock> Invocation<'_, E, S, C> {
    /// The first step of an UPDATE (`start`: its context, should it be done again).
    pub(super) async fn update_first(
        &self,
        start: &CallbackContext,
    ) -> Result<ProgressEvent, TaskRunError> {
        let (properties, model) = self.desired()?;
        let id = self.requested_id()?;
        let mut record = match self.load(&id).await {
            Err(TaskRunError::Aws(fault)) => {
                return self
                    .record_unreadable(&id, &model.cluster, start, fault)
                    .await;
            }
            record => record?,
        };
        let token = self.operation_token();
        if record.run.token == token {
            tracing::info!(id = %id, "redelivered UPDATE: resuming the run it started");
            return self
                .run_and_answer(HeldRun::stored(record), Event::Resumed, None)
                .await;
        }
        let rollback = self.request.rollback;
        if !record.run.is_ended() {
            // A run that is not this update's is still going: it is stopped (and recorded
            // superseded) before this update decides anything. What the update asks is
            // kept in the record: its callbacks carry the model without Overrides.
            record.pending_update = Some(PendingUpdate {
                token,
                properties: without_read_only(&properties),
                rollback,
            });
            self.records()
                .put(&record, self.budget.persist_deadline())
                .await?;
            tracing::info!(id = %id, "stopping the run still going before this update");
            let mut held = HeldRun::stored(record);
            let reason = format!("superseded by an update of TaskRun {id}");
            let outcome = self
                .engine()
                .drive(
                    &mut held,
                    Event::Abandon {
                        reason,
                        operation: self.operation_token(),
                    },
                )
                .await?;
            return self.after_supersede(held, outcome).await;
        }
        self.decide_update(record, properties, model, token, rollback)
            .await
    }

    /// A callback of an update that is stopping an earlier run.
    pub(super) async fn supersede_resume(&self, id: &str) -> Result<ProgressEvent, TaskRunError> {
        let record = self.load(id).await?;
        let token = self.operation_token();
        if record.run.token == token {
            // The earlier run is over and this update's own run has started.
            return self
                .run_and_answer(HeldRun::stored(record), Event::Resumed, None)
                .await;
        }
        if record
            .pending_update
            .as_ref()
            .is_none_or(|p| p.token != token)
        {
            return Err(TaskRunError::Superseded(format!(
                "TaskRun {id} was changed by another operation since this update began"
            )));
        }
        let mut held = HeldRun::stored(record);
        let reason = format!("superseded by an update of TaskRun {id}");
        let outcome = self
            .engine()
            .drive(
                &mut held,
                Event::Abandon {
                    reason,
                    operation: self.operation_token(),
                },
            )
            .await?;
        self.after_supersede(held, outcome).await
    }

    async fn after_supersede(
        &self,
        held: HeldRun,
        outcome: Outcome,
    ) -> Result<ProgressEvent, TaskRunError> {
        // The run this update stops: its end (Superseded) announced, when it has Events.
        let announced = self.announce(&held, self.announced_before(&held)).await;
        match outcome {
            Outcome::Pending { delay } => {
                Ok(self.in_progress_announced(&held, Stage::Supersede, delay, announced))
            }
            Outcome::GaveUp => Err(TaskRunError::Own(RunFailure::StopUnconfirmed(format!(
                "the earlier run of TaskRun {} could not be confirmed stopped; the update did not go ahead",
                held.id
            )))),
            Outcome::Ended => {
                let mut record = held
                    .hold
                    .record
                    .ok_or_else(|| TaskRunError::Internal("the record is not held".into()))?;
                let pending = record
                    .pending_update
                    .clone()
                    .ok_or_else(|| TaskRunError::Internal("the update's properties are not recorded".into()))?;
                record.pending_update = None;
                // Validated when the update began; read them as then.
                let properties = crate::schema::prepare(pending.properties)?;
                let model = crate::properties::typed(&properties)?;
                self.decide_update(record, properties, model, pending.token, pending.rollback)
                    .await
            }
        }
    }

    /// Runs the tasks or not, by the update policy, once no other run is going.
    async fn decide_update(
        &self,
        mut record: RunRecord,
        properties: Value,
        model: ResourceModel,
        token: String,
        rollback: bool,
    ) -> Result<ProgressEvent, TaskRunError> {
        let criteria = model
            .update_criteria
            .as_ref()
            .is_some_and(|c| !c.is_empty());
        let mut definition = if criteria && model.task_count() > 0 {
            Some(
                self.describe_task_definition(&model.task_definition)
                    .await?,
            )
        } else {
            None
        };
        let desired = Fingerprint::of(&properties, &model, definition.as_ref());
        if rollback {
            if let Some(undo) = self.undo_of(&record) {
                return self.undo(record, properties, desired, token, undo).await;
            }
        }
        let decision = update_policy::decide(&model, &desired, record.baseline.as_ref(), rollback);
        if let Some(baseline) = record.baseline.as_mut() {
            baseline.adopt_new_criteria(&desired);
        }
        record.pending_update = None;
        record.properties = without_read_only(&properties);
        record.undo = None;
        match decision {
            Decision::Skip(why) => {
                tracing::info!(id = %record.id, why = %why, "update does not run the tasks");
                // A rollback of this update has nothing of it to undo.
                record.undoable = None;
                self.records()
                    .put(&record, self.budget.persist_deadline())
                    .await?;
                Ok(ProgressEvent::success(record.model()).with_message(why))
            }
            Decision::Run(why) => {
                tracing::info!(id = %record.id, why = %why, "update runs the tasks");
                if definition.is_none() && model.task_count() > 0 {
                    definition = Some(
                        self.describe_task_definition(&model.task_definition)
                            .await?,
                    );
                }
                let mut run = self.plan_run(token, &properties, &model, definition.as_ref())?;
                self.lock_run(&mut run, &model, &record.id);
                // A run of a rollback (RunOnRollback) is not itself rolled back.
                record.undoable =
                    crate::undo::undoable(&properties, &run.token).filter(|_| !rollback);
                let mut sized = record.clone();
                sized.run = run.clone();
                if record.undoable.is_some() {
                    // Its undo's record holds these properties twice (the model and the
                    // undo's launch): refused now if that cannot be kept, not mid-rollback.
                    sized.undo = Some(crate::record::UndoRun {
                        run: String::new(),
                        undoes: String::new(),
                        launch: properties.clone(),
                        if_fails: crate::record::IfUndoFails::Report,
                    });
                }
                super::check_fits(&sized)?;
                self.run_and_answer(HeldRun::new_run(record, run), Event::Resumed, Some(why))
                    .await
            }
        }
    }

    /// The undo a rollback runs, if the update it rolls back ran tasks that succeeded and
    /// said what undoes them (`crate::undo`).
    fn undo_of(&self, record: &RunRecord) -> Option<crate::record::UndoRun> {
        let previous = self.request.previous_properties()?;
        match crate::schema::prepare(previous) {
            Ok(previous) => crate::undo::undo_of(record, &previous),
            Err(error) => {
                // Then they cannot be the properties the run was started with.
                tracing::warn!(id = %record.id, error = %error, "previous properties unreadable: nothing undone");
                None
            }
        }
    }

    /// Runs `undo` in place of the rolled-back update's run: one task of that run's task
    /// definition revision with OnRollback's overrides, under its Timeout, LogTail and
    /// Retry. The record then holds the rollback's properties (the model answered) and the
    /// undo; a redelivered rollback finds the undo's token and follows it. Once it
    /// succeeds, the state is the rollback's: its fingerprint becomes the baseline.
    async fn undo(
        &self,
        mut record: RunRecord,
        properties: Value,
        desired: Fingerprint,
        token: String,
        mut undo: crate::record::UndoRun,
    ) -> Result<ProgressEvent, TaskRunError> {
        undo.run = token.clone();
        let if_fails = undo.if_fails;
        record.pending_update = None;
        record.properties = without_read_only(&properties);
        record.undoable = None;
        let planned = async {
            let model = crate::properties::typed(&undo.launch)?;
            crate::properties::check(&undo.launch, &model)?;
            let definition = self
                .describe_task_definition(&model.task_definition)
                .await?;
            let mut run = self.plan_run(token, &undo.launch, &model, Some(&definition))?;
            // The undo takes the lock the undone run took.
            self.lock_run(&mut run, &model, &record.id);
            run.fingerprint = Some(desired);
            let mut sized = record.clone();
            sized.run = run.clone();
            sized.undo = Some(undo.clone());
            super::check_fits(&sized)?;
            Ok::<_, TaskRunError>((run, definition.arn))
        };
        let (run, task_definition) = match planned.await {
            Ok(planned) => planned,
            // Refused for good (the revision deregistered and deleted, a permission
            // missing, a record too large): with REPORT the rollback goes on without it.
            Err(error) if if_fails == IfUndoFails::Report && reportable(&error) => {
                tracing::warn!(id = %record.id, error = %error, "the undo could not start; IfUndoFails is REPORT: the rollback goes on");
                record.undo = None;
                self.records()
                    .put(&record, self.budget.persist_deadline())
                    .await?;
                return Ok(ProgressEvent::success(record.model()).with_message(format!(
                    "the undo could not start ({error}); IfUndoFails is REPORT: the rollback goes on"
                )));
            }
            Err(error) => return Err(error),
        };
        let why = format!(
            "undoing the rolled-back update's run: OnRollback's overrides with {task_definition}"
        );
        tracing::info!(id = %record.id, task_definition = %task_definition, "rollback: undoing the run of the update rolled back");
        record.undo = Some(undo);
        self.run_and_answer(HeldRun::new_run(record, run), Event::Resumed, Some(why))
            .await
    }
}

/// Whether an undo that could not start is reported (IfUndoFails REPORT) rather than
/// answered: not when CloudFormation would try the invocation again and it may then start.
fn reportable(error: &TaskRunError) -> bool {
    use cfn_protocol::{HandlerError, HandlerErrorCode as Code};
    matches!(
        error.code(),
        Code::InvalidRequest | Code::AccessDenied | Code::NotFound | Code::GeneralServiceException
    )
}
