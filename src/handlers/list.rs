use cfn_protocol::ProgressEvent;

use super::Env;
use crate::error::TaskRunError;

pub async fn handle(env: &Env<'_>) -> Result<ProgressEvent, TaskRunError> {
    let (records, next_token) = env.store.list(env.request.next_token.as_deref()).await?;
    Ok(ProgressEvent::listed(
        records.iter().map(|r| r.model()).collect(),
        next_token,
    ))
}
