use cfn_protocol::ProgressEvent;

use super::Invocation;
use crate::clock::Clock;
use crate::context::{CallbackContext, Stage};
use crate::ecs::Ecs;
use crate::engine::{HeldRun, Outcome};
use crate::error::{RunFailure, TaskRunError};
use crate::events::Announced;
use crate::machine::Event;
use crate::store::{ParameterStore, Stored};

impl<E: Ecs, S: ParameterStore, C: Clock> Invocation<'_, E, S, C> {
    /// Stops what still runs, and deletes the record once every task is confirmed
    /// stopped. Never validates the properties: a stack must always be able to delete a
    /// TaskRun, whatever it was given.
    pub(super) async fn delete_first(&self) -> Result<ProgressEvent, TaskRunError> {
        let id = self.requested_id()?;
        match self
            .records()
            .load(&id, self.budget.persist_deadline())
            .await?
        {
            Stored::Absent => Err(TaskRunError::NotFound(id)),
            Stored::Unreadable(why) => {
                tracing::warn!(id = %id, why = %why, "deleting an unreadable run record");
                self.delete_record(&id).await
            }
            Stored::Record(record) if record.run.is_ended() => self.delete_record(&id).await,
            Stored::Record(record) => {
                let mut held = HeldRun::stored(*record);
                let known = self.announced_for_drive(&mut held);
                let reason = format!("TaskRun {id} deleted");
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
                self.after_stop(held, outcome, known).await
            }
        }
    }

    pub(super) async fn delete_resume(
        &self,
        context: CallbackContext,
    ) -> Result<ProgressEvent, TaskRunError> {
        match self
            .records()
            .load(&context.id, self.budget.persist_deadline())
            .await?
        {
            // This delete already deleted it (a redelivered callback).
            Stored::Absent => Ok(ProgressEvent::deleted()),
            Stored::Unreadable(_) => self.delete_record(&context.id).await,
            Stored::Record(record) if record.run.is_ended() => {
                self.delete_record(&context.id).await
            }
            Stored::Record(record) => {
                // Abandon again: changes nothing once recorded, and records it if the
                // first invocation could not.
                let mut held = HeldRun::stored(*record);
                let known = self.announced_for_drive(&mut held);
                let reason = format!("TaskRun {} deleted", context.id);
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
                self.after_stop(held, outcome, known).await
            }
        }
    }

    /// What a delete answers once it drove the run it stops (announcing, when the TaskRun
    /// has `Events`, the run's end: superseded by the delete).
    async fn after_stop(
        &self,
        held: HeldRun,
        outcome: Outcome,
        known: Announced,
    ) -> Result<ProgressEvent, TaskRunError> {
        let announced = self.announce(&held, known).await;
        match outcome {
            Outcome::Ended => match self.delete_record(&held.id).await {
                // Everything is stopped; only the record is left: come back for it.
                Err(TaskRunError::Aws(fault)) if fault.is_transient() => {
                    tracing::warn!(id = %held.id, error = %fault, "could not delete the record yet");
                    Ok(self.in_progress_announced(&held, Stage::Delete, 1.0, announced))
                }
                other => other,
            },
            Outcome::Pending { delay } => {
                Ok(self.in_progress_announced(&held, Stage::Delete, delay, announced))
            }
            Outcome::GaveUp => Err(TaskRunError::Own(RunFailure::StopUnconfirmed(format!(
                "TaskRun {}'s tasks could not be confirmed stopped; it was not deleted (try again)",
                held.id
            )))),
        }
    }
}
