use cfn_protocol::ProgressEvent;
use handler_kit::clock::Clock;
use handler_kit::store::ParameterStore;

use super::Env;
use crate::engine::Held;
use crate::error::RestartError;
use crate::machine::{self, Event};
use crate::policy::{self, Decision};
use crate::record::without_read_only;
use crate::services::Services;

impl<G: Services, S: ParameterStore, C: Clock> Env<'_, G, S, C> {
    pub(super) async fn update_first(&self) -> Result<ProgressEvent, RestartError> {
        let (properties, typed) = self.desired()?;
        let id = self.requested_id()?;
        let mut record = self.load(&id).await?;
        let token = self.operation_token();
        if record.restart.token == token {
            return self
                .run_and_answer(Held::stored(record), Event::Resumed, None)
                .await;
        }
        if !record.restart.is_ended() {
            // A restart that is not this update's is still followed: nothing to stop
            // (the deployment is the service's), it is recorded superseded.
            let reason = format!("superseded by an update of ServiceRestart {id}");
            let (ended, _) =
                machine::step(&record.restart, Event::Abandon { reason }, self.clock.now());
            record.restart = ended;
        }
        let desired = policy::fingerprint(&typed);
        let decision = policy::decide(
            &typed,
            &desired,
            record.baseline.as_ref(),
            self.request.rollback,
        );
        record.properties = without_read_only(&properties);
        match decision {
            Decision::Skip(why) => {
                tracing::info!(id = %id, why = %why, "update does not restart the service");
                self.records()
                    .put(&record, self.budget.persist_deadline())
                    .await?;
                Ok(ProgressEvent::success(record.model()).with_message(why))
            }
            Decision::Restart(why) => {
                tracing::info!(id = %id, why = %why, "update restarts the service");
                let mut restart = self.plan(token, &typed)?;
                restart.fingerprint = Some(desired);
                // The previous restarts' deployments are not this one's, even when
                // DescribeServices does not show them yet (it is eventually consistent)
                // and would let them pass for new once it does.
                restart.known = machine::known_after(&record.restart);
                self.run_and_answer(Held::new_run(record, restart), Event::Resumed, Some(why))
                    .await
            }
        }
    }
}
