use cfn_protocol::ProgressEvent;

use super::{requested_id, run, Env};
use crate::error::TaskRunError;
use crate::record::RunStatus;
use crate::store::Stored;

/// Stops what still runs and deletes the record. Never validates the properties: a
/// stack must always be able to delete a TaskRun, whatever it was given.
pub async fn handle(env: &Env<'_>) -> Result<ProgressEvent, TaskRunError> {
    let id = requested_id(env)?;
    match env.store.load(&id).await? {
        Stored::Absent => return Err(TaskRunError::NotFound(id)),
        Stored::Unreadable(why) => {
            tracing::warn!(id = %id, why = %why, "deleting an unreadable run record");
        }
        Stored::Record(record) => {
            if record.run.status == RunStatus::Running {
                let cluster = run::cluster_of(&record);
                let reason = format!("Org::ECS::TaskRun {id} deleted");
                run::stop_tasks(env, &cluster, &record.run.task_arns(), &reason).await;
            }
        }
    }
    if env.store.delete(&id).await? {
        Ok(ProgressEvent::deleted())
    } else {
        Err(TaskRunError::NotFound(id))
    }
}
