use cfn_protocol::ProgressEvent;
use handler_kit::clock::Clock;
use handler_kit::store::ParameterStore;

use super::Env;
use crate::engine::records;
use crate::error::RestartError;
use crate::services::Services;

impl<G: Services, S: ParameterStore, C: Clock> Env<'_, G, S, C> {
    /// Removes the record only: the service is not the resource's to touch (a deployment
    /// in progress goes on as ECS runs it). Never validates the properties.
    pub async fn delete(&self) -> Result<ProgressEvent, RestartError> {
        let id = self.requested_id()?;
        if records(self.store)
            .delete(&id, self.budget.persist_deadline())
            .await?
        {
            Ok(ProgressEvent::deleted())
        } else {
            Err(RestartError::NotFound(id))
        }
    }
}
