use cfn_protocol::ProgressEvent;

use super::Invocation;
use crate::clock::Clock;
use crate::ecs::Ecs;
use crate::error::TaskRunError;
use crate::store::ParameterStore;

impl<E: Ecs, S: ParameterStore, C: Clock> Invocation<'_, E, S, C> {
    pub async fn read(&self) -> Result<ProgressEvent, TaskRunError> {
        let id = self.requested_id()?;
        Ok(ProgressEvent::success(self.load(&id).await?.model()))
    }
}
