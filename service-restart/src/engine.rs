//! A restart's I/O for one invocation, on the shared driver (`handler_kit::driver`):
//! the record first, then DescribeServices or UpdateService.

use handler_kit::budget::Budget;
use handler_kit::clock::Clock;
use handler_kit::driver::{self, Flow, Outcome, Persisted};
use handler_kit::resource::records;
use handler_kit::store::ParameterStore;
use serde_json::Value;

use crate::error::RestartError;
use crate::machine::{self, Event, Next, Restart};
use crate::record::RestartRecord;
use crate::resource::ServiceRestartType;
use crate::services::Services;

/// The restart lifecycle, for the shared driver.
pub struct RestartMachine;

impl driver::Machine for RestartMachine {
    type Run = Restart;
    type Event = Event;
    type Next = Next;

    fn step(run: &Restart, event: Event, now: f64) -> (Restart, Next) {
        machine::step(run, event, now)
    }

    fn flow(next: &Next) -> Flow {
        match next {
            Next::Done => Flow::Done,
            Next::Wait(seconds) => Flow::Wait(*seconds),
            Next::Look | Next::Update | Next::Inspect(_) => Flow::Act,
        }
    }

    fn resumed() -> Event {
        Event::Resumed
    }

    /// Recorded first: UpdateService's send (it has no idempotency token: a send whose
    /// answer is lost is looked for, never repeated blindly), and a lifecycle hook the
    /// deployment is newly seen waiting at: a redelivered invocation whose look at the
    /// Timeout fails can then still name it (found by the property test: the first answer
    /// lost, the last look 53 s slow, and the TIMED_OUT reason said nothing of the hook).
    /// Any other look changes nothing a redelivered invocation cannot learn again by
    /// looking; a deployment followed travels in the callback context (see
    /// `handlers::in_progress`).
    fn must_record(before: &Restart, after: &Restart, next: &Next) -> bool {
        matches!(next, Next::Update) || (after.waiting.is_some() && after.waiting != before.waiting)
    }

    fn carried(restart: &Restart) -> bool {
        restart.phase != machine::Phase::Starting
    }
}

/// What an invocation holds of a restart (see [`handler_kit::records::Held`]).
pub type Held = handler_kit::records::Held<RestartRecord>;

/// The model of an answer about a held restart.
pub trait Answer {
    /// The properties, the Id and the restart's outputs.
    fn model(&self) -> Value;
}

impl Answer for Held {
    fn model(&self) -> Value {
        crate::record::model(&self.properties, &self.hold.id, &self.hold.run)
    }
}

pub struct Engine<'a, G, S, C> {
    pub services: &'a G,
    pub store: &'a S,
    pub clock: &'a C,
    pub budget: Budget,
}

struct RestartHands<'e, 'h, G, S, C> {
    engine: &'e Engine<'e, G, S, C>,
    held: &'h mut Held,
}

impl<G: Services, S: ParameterStore, C: Clock> driver::Hands<RestartMachine>
    for RestartHands<'_, '_, G, S, C>
{
    type Error = RestartError;

    fn run(&self) -> &Restart {
        &self.held.hold.run
    }

    fn stored(&self) -> bool {
        self.held.hold.stored.is_some()
    }

    fn hold(&mut self, run: Restart) {
        self.held.hold.run = run;
    }

    fn retry_write_after(&self, error: &RestartError, attempt: u8, ending: bool) -> Option<f64> {
        error.rewrite_after(&self.held.hold.id, self.engine.clock.now(), attempt, ending)
    }

    async fn persist(&mut self, run: Restart) -> Result<Persisted, RestartError> {
        let kept = records::<ServiceRestartType, _>(self.engine.store)
            .keep(
                &mut self.held.hold,
                run,
                self.engine.budget.persist_deadline(),
            )
            .await;
        if let Some(record) = &self.held.hold.record {
            self.held.properties = record.properties.clone();
        }
        kept.map_err(|e| RestartError::not_kept(&self.held.hold.id, e))
    }

    /// Nothing is done about a change before the record has it: a passing store fault
    /// leaves it to the next invocation; a run never recorded started nothing.
    async fn persist_failed(
        &mut self,
        _unrecorded: &Restart,
        error: RestartError,
    ) -> Result<Outcome, RestartError> {
        match &error {
            RestartError::Aws(f) if f.is_transient() && self.held.hold.stored.is_some() => {
                tracing::warn!(id = %self.held.hold.id, error = %error, "could not record the restart; trying again");
                Ok(Outcome::Pending { delay: 1.0 })
            }
            _ => Err(error),
        }
    }

    async fn act(&mut self, next: Next, by: f64) -> Result<Event, RestartError> {
        let run = &self.held.hold.run;
        let services = self.engine.services;
        Ok(match next {
            Next::Look => Event::Looked(
                services
                    .describe_service(&run.cluster, &run.service, by)
                    .await,
            ),
            Next::Update => {
                tracing::info!(id = %self.held.hold.id, service = %run.service, "restarting the service (forceNewDeployment)");
                Event::Updated(
                    services
                        .force_new_deployment(&run.cluster, &run.service, by)
                        .await,
                )
            }
            Next::Inspect(arn) => {
                let found = services.describe_service_deployment(&arn, by).await;
                let id = &self.held.hold.id;
                match &found {
                    Ok(deployment) => {
                        let waiting = deployment.as_ref().and_then(machine::HookWait::of);
                        // Said once per hook it waits at, not at every poll.
                        if let Some(w) = waiting
                            .as_ref()
                            .filter(|w| run.waiting.as_ref() != Some(*w))
                        {
                            tracing::warn!(
                                id = %id,
                                service = %run.service,
                                service_deployment = %w.service_deployment,
                                stage = %w.stage,
                                hook_id = %w.hook_id,
                                hook_type = %w.kind,
                                hook_status = %w.status,
                                "{}",
                                w.describe()
                            );
                        }
                    }
                    Err(fault) if !fault.is_transient() => {
                        tracing::warn!(id = %id, service = %run.service, error = %fault, "the deployment's lifecycle hooks cannot be read (ecs:DescribeServiceDeployments); a wait at a hook will not be reported");
                    }
                    Err(_) => {}
                }
                Event::Inspected(found)
            }
            Next::Wait(_) | Next::Done => Event::Resumed,
        })
    }
}

impl<G: Services, S: ParameterStore, C: Clock> Engine<'_, G, S, C> {
    pub async fn drive(&self, held: &mut Held, event: Event) -> Result<Outcome, RestartError> {
        let mut hands = RestartHands { engine: self, held };
        Box::pin(driver::drive::<RestartMachine, _, _>(
            &mut hands,
            self.clock,
            &self.budget,
            event,
        ))
        .await
    }
}
