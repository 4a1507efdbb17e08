use cfn_protocol::ProgressEvent;
use handler_kit::clock::Clock;
use handler_kit::store::ParameterStore;

use super::Env;
use crate::error::RestartError;
use crate::services::Services;

impl<G: Services, S: ParameterStore, C: Clock> Env<'_, G, S, C> {
    pub async fn read(&self) -> Result<ProgressEvent, RestartError> {
        let id = self.requested_id()?;
        Ok(ProgressEvent::success(self.load(&id).await?.model()))
    }
}
