use cfn_protocol::ProgressEvent;

use super::{desired_model, run, Env};
use crate::error::TaskRunError;
use crate::ids;

pub async fn handle(env: &Env<'_>) -> Result<ProgressEvent, TaskRunError> {
    let (properties, model) = desired_model(env)?;
    let token = env.operation_token();
    let id = ids::run_id(
        env.request.stack_id.as_deref(),
        env.request.request_data.logical_resource_id.as_deref(),
        Some(&token),
    );
    // The same first invocation delivered again: follow the run it started.
    if let Some(existing) = env.store.get(&id).await? {
        if existing.run.token == token {
            tracing::info!(id = %id, "redelivered CREATE: resuming the run it started");
            return run::report(env, existing).await;
        }
    }
    run::start(env, &id, &properties, &model, token).await
}
