use cfn_protocol::ProgressEvent;
use handler_kit::clock::Clock;
use handler_kit::records::{Hold, Stored};
use handler_kit::store::ParameterStore;

use super::Env;
use crate::engine::{records, Held};
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
        match records(self.store)
            .load(&id, self.budget.persist_deadline())
            .await?
        {
            // The same first invocation delivered again: carry on with its restart.
            Stored::Record(record) if record.restart.token == token => {
                let properties = record.properties.clone();
                return self
                    .run_and_answer(
                        Held {
                            hold: Hold::stored(*record),
                            properties,
                        },
                        Event::Resumed,
                        None,
                    )
                    .await;
            }
            Stored::Record(_) | Stored::Unreadable(_) => {
                return Err(RestartError::AlreadyExists(id))
            }
            Stored::Absent => {}
        }
        let mut restart = self.plan(token, &typed)?;
        restart.fingerprint = Some(policy::fingerprint(&typed));
        let record = RestartRecord::new(id, &properties, restart.clone());
        let properties = record.properties.clone();
        self.run_and_answer(
            Held {
                hold: Hold::new_run(record, restart),
                properties,
            },
            Event::Resumed,
            None,
        )
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
