use cfn_protocol::ProgressEvent;

use super::Invocation;
use crate::clock::Clock;
use crate::ecs::Ecs;
use crate::error::TaskRunError;
use crate::store::ParameterStore;

impl<E: Ecs, S: ParameterStore, C: Clock> Invocation<'_, E, S, C> {
    pub async fn list(&self) -> Result<ProgressEvent, TaskRunError> {
        let (records, next_token) = self
            .records()
            .list(
                self.request.next_token.as_deref(),
                self.budget.persist_deadline(),
            )
            .await?;
        Ok(ProgressEvent::listed(
            records.iter().map(|r| r.model()).collect(),
            next_token,
        ))
    }
}
