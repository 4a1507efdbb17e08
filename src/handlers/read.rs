use cfn_protocol::ProgressEvent;

use super::{requested_id, Env};
use crate::error::TaskRunError;

pub async fn handle(env: &Env<'_>) -> Result<ProgressEvent, TaskRunError> {
    let id = requested_id(env)?;
    match env.store.get(&id).await? {
        Some(record) => Ok(ProgressEvent::success(record.model())),
        None => Err(TaskRunError::NotFound(id)),
    }
}
