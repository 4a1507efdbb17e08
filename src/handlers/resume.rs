use cfn_protocol::ProgressEvent;

use super::Invocation;
use crate::clock::Clock;
use crate::context::{CallbackContext, Stage};
use crate::ecs::Ecs;
use crate::engine::HeldRun;
use crate::error::TaskRunError;
use crate::machine::Event;
use crate::store::ParameterStore;

impl<E: Ecs, S: ParameterStore, C: Clock> Invocation<'_, E, S, C> {
    /// A callback of a CREATE or UPDATE.
    pub(super) async fn resume(
        &self,
        context: CallbackContext,
    ) -> Result<ProgressEvent, TaskRunError> {
        match context.stage {
            Stage::Supersede => return self.supersede_resume(&context.id).await,
            Stage::Start => {
                return Err(TaskRunError::Internal(
                    "a Start context reached resume".into(),
                ))
            }
            Stage::Delete => {
                return Err(TaskRunError::InvalidRequest(
                    "a delete's callbackContext sent to another action".into(),
                ))
            }
            Stage::Run => {}
        }
        let held = match context.run {
            // Tasks followed (or their logs read): the context has all a poll needs; the
            // record is read only if the run changes state.
            Some(run) if crate::engine::travels_in_context(&run) && run.token == context.token => {
                HeldRun::carried(context.id, run, self.request.desired_properties())
            }
            _ => HeldRun::stored(self.followed_record(&context.id, &context.token).await?),
        };
        self.run_and_answer(held, Event::Resumed, None).await
    }
}
