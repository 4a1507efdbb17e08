use cfn_protocol::ProgressEvent;
use handler_kit::clock::Clock;
use handler_kit::store::ParameterStore;

use super::Env;
use crate::context::CallbackContext;
use crate::engine::Held;
use crate::error::RestartError;
use crate::machine::{Event, Phase};
use crate::services::Services;

impl<G: Services, S: ParameterStore, C: Clock> Env<'_, G, S, C> {
    /// A callback of a CREATE or UPDATE.
    pub(super) async fn resume(
        &self,
        context: CallbackContext,
    ) -> Result<ProgressEvent, RestartError> {
        let held = match context.restart {
            // Following: the context has all a poll needs; the record is read only when
            // the restart changes state. Ended: the answer is made from it alone.
            Some(restart) if restart.phase != Phase::Starting && restart.token == context.token => {
                Held::carried(context.id, restart, self.request.desired_properties())
            }
            _ => {
                let record = self.followed_record(&context.id, &context.token).await?;
                Held::stored(record)
            }
        };
        self.run_and_answer(held, Event::Resumed, None).await
    }
}
