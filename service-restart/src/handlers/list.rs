use cfn_protocol::ProgressEvent;
use handler_kit::clock::Clock;
use handler_kit::store::ParameterStore;

use super::Env;
use crate::engine::records;
use crate::error::RestartError;
use crate::services::Services;

impl<G: Services, S: ParameterStore, C: Clock> Env<'_, G, S, C> {
    pub async fn list(&self) -> Result<ProgressEvent, RestartError> {
        let (found, next_token) = records(self.store)
            .list(
                self.request.next_token.as_deref(),
                self.budget.persist_deadline(),
            )
            .await?;
        Ok(ProgressEvent::listed(
            found.iter().map(|r| r.model()).collect(),
            next_token,
        ))
    }
}
