use cfn_protocol::ProgressEvent;
use handler_kit::clock::Clock;
use handler_kit::store::ParameterStore;

use super::Env;
use crate::engine::Held;
use crate::error::RestartError;
use crate::machine::{Event, Restart};
use crate::policy;
use crate::record::RestartRecord;
use crate::services::Services;

impl<G: Services, S: ParameterStore, C: Clock> Env<'_, G, S, C> {
    pub(super) async fn create_first(&self) -> Result<ProgressEvent, RestartError> {
        let (properties, typed) = self.desired()?;
        // Refused before anything is recorded or asked of ECS.
        typed.cluster()?;
        let token = self.operation_token();
        let id = self.new_id();
        if let Some(record) = self.earlier_delivery(&id, &token).await? {
            // The same first invocation delivered again: carry on with its restart.
            return self
                .run_and_answer(Held::stored(record), Event::Resumed, None)
                .await;
        }
        let mut restart = self.plan(token, &typed)?;
        restart.fingerprint = Some(policy::fingerprint(&typed));
        let record = RestartRecord::new(id, &properties, restart.clone());
        self.run_and_answer(Held::new_run(record, restart), Event::Resumed, None)
            .await
    }

    pub(super) fn plan(
        &self,
        token: String,
        typed: &crate::model::Properties,
    ) -> Result<Restart, RestartError> {
        Ok(Restart::new(
            token,
            typed.cluster()?.to_string(),
            typed.service.clone(),
            typed.wait_for(),
            self.clock.now(),
            typed.timeout_seconds(),
            typed.poll_interval_seconds(),
        ))
    }
}
