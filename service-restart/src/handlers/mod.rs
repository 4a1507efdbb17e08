//! One module per Registry action, over the engine and the record store.

mod create;
mod resume;
mod update;

use std::ops::Deref;

use cfn_protocol::ProgressEvent;
use handler_kit::clock::Clock;
use handler_kit::context::Carried;
use handler_kit::driver::Outcome;
use handler_kit::resource::{Handlers, Invocation};
use handler_kit::store::ParameterStore;
use serde_json::Value;

use crate::context::CallbackContext;
use crate::engine::{Answer, Engine, Held};
use crate::error::{ending_code, GaveUp, RestartError};
use crate::machine::{Ending, Phase};
use crate::model::Properties;
use crate::resource::ServiceRestartType;
use crate::services::{Fault, Services};

/// How long a callback that cannot reach the record goes on before it gives up: past the
/// restart's deadline, or, for an operation's first step, past its first try.
const GIVE_UP_AFTER_SECONDS: f64 = 600.0;

/// One invocation of a ServiceRestart handler: the kit's invocation (the request, the
/// ECS gateway, the record store, the clock and the time budget, and what every type's
/// handlers share), with ServiceRestart's handlers as methods. READ, LIST and DELETE (the
/// record removed: the service is not the resource's to touch, and a deployment in
/// progress goes on as ECS runs it) are the kit's.
pub struct Env<'a, G, S, C>(pub Invocation<'a, ServiceRestartType, G, S, C>);

impl<'a, G, S, C> Deref for Env<'a, G, S, C> {
    type Target = Invocation<'a, ServiceRestartType, G, S, C>;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl<G: Services, S: ParameterStore, C: Clock> Handlers<G, S, C> for ServiceRestartType {
    async fn create(
        invocation: Invocation<'_, Self, G, S, C>,
    ) -> Result<ProgressEvent, RestartError> {
        Env(invocation).create().await
    }

    async fn update(
        invocation: Invocation<'_, Self, G, S, C>,
    ) -> Result<ProgressEvent, RestartError> {
        Env(invocation).update().await
    }
}

impl<G: Services, S: ParameterStore, C: Clock> Env<'_, G, S, C> {
    fn engine(&self) -> Engine<'_, G, S, C> {
        Engine {
            services: self.gateway,
            store: self.store,
            clock: self.clock,
            budget: self.budget,
        }
    }

    fn context(&self) -> Result<Option<CallbackContext>, RestartError> {
        self.0.context()
    }

    fn desired(&self) -> Result<(Value, Properties), RestartError> {
        let properties = crate::schema::prepare(self.request.desired_properties())?;
        let typed = crate::model::typed(&properties)?;
        Ok((properties, typed))
    }

    /// Drives the held restart and answers: SUCCESS when it succeeded, FAILED with the
    /// reason otherwise (a failed CREATE's record is deleted), IN_PROGRESS while it goes on.
    async fn run_and_answer(
        &self,
        mut held: Held,
        event: crate::machine::Event,
        message: Option<String>,
    ) -> Result<ProgressEvent, RestartError> {
        let outcome = self.engine().drive(&mut held, event).await?;
        let with_message = |event: ProgressEvent| match &message {
            Some(m) => event.with_message(m.clone()),
            None => event,
        };
        match outcome {
            Outcome::Pending { delay } => Ok(with_message(self.in_progress(&held, delay))),
            Outcome::Ended | Outcome::GaveUp => match held.hold.run.ending {
                Some(Ending::Succeeded) => Ok(with_message(ProgressEvent::success(held.model()))),
                Some(ending) => {
                    let reason = held
                        .hold
                        .run
                        .reason
                        .clone()
                        .unwrap_or_else(|| "the restart failed".into());
                    if self.request.action == cfn_protocol::Action::Create {
                        if self.is_first_step() && held.hold.stored.is_some() {
                            // UpdateService has no idempotency token: were this answer
                            // lost, the CREATE delivered again would find no record and
                            // restart the service a second time. The FAILED answer (and the
                            // record's removal) waits for a callback, which carries the
                            // ended restart.
                            return Ok(self.in_progress(&held, 1.0));
                        }
                        if let Err(fault) = self
                            .records()
                            .delete(&held.hold.id, self.budget.persist_deadline())
                            .await
                        {
                            tracing::warn!(id = %held.hold.id, error = %fault, "could not delete the record of a failed create; trying again");
                            return Ok(self.in_progress(&held, 1.0));
                        }
                    }
                    Ok(ProgressEvent::failed(ending_code(ending), reason).with_model(held.model()))
                }
                None => Err(RestartError::Internal(
                    "a restart ended without an outcome".into(),
                )),
            },
        }
    }

    fn in_progress(&self, held: &Held, delay: f64) -> ProgressEvent {
        let context = CallbackContext {
            id: held.hold.id.clone(),
            token: held.hold.run.token.clone(),
            start: false,
            give_up_at: held.hold.run.deadline + GIVE_UP_AFTER_SECONDS,
            // Following: a poll needs nothing else. Ended: the answer of a redelivered
            // callback is the same, even once a failed CREATE's record is gone.
            restart: (held.hold.run.phase != Phase::Starting).then(|| held.hold.run.clone()),
            throttled: 0,
        };
        let event = ProgressEvent::in_progress(
            Some(held.model()),
            context.to_value(),
            handler_kit::pace::callback_seconds(delay),
        );
        match &held.hold.run.waiting {
            Some(waiting) => event.with_message(waiting.describe()),
            None => event,
        }
    }

    /// A passing fault answers IN_PROGRESS with a context to try again (the first step
    /// is idempotent by the request token), until the give-up time; then NotStabilized,
    /// never the fault's retriable code (as TaskRun's `ride_out`): CloudFormation would
    /// start the operation over, restarting the service again.
    fn ride_out(
        &self,
        context: CallbackContext,
        result: Result<ProgressEvent, RestartError>,
    ) -> Result<ProgressEvent, RestartError> {
        let give_up = |fault: &Fault| {
            tracing::error!(id = %context.id, error = %fault, "passing fault until the give-up time; giving up");
            RestartError::Own(GaveUp(format!(
                "ServiceRestart {}: the restart's record could not be reached until well past the deadline ({fault}); a deployment it may have started goes on as ECS runs it, and the record {}/{} may remain",
                context.id,
                crate::record::PARAMETER_PATH,
                context.id
            )))
        };
        self.0.ride_out(
            &context.id,
            &context,
            |c| (&mut c.give_up_at, &mut c.throttled),
            result,
            give_up,
        )
    }

    /// Whether this invocation does an operation's first step (its first delivery, or a
    /// try again after a passing fault), which CloudFormation delivers again when its
    /// answer is lost.
    fn is_first_step(&self) -> bool {
        self.context().ok().flatten().is_none_or(|c| c.start)
    }

    fn start_context(&self, id: String) -> CallbackContext {
        CallbackContext {
            id,
            token: self.operation_token(),
            start: true,
            give_up_at: self.clock.now() + GIVE_UP_AFTER_SECONDS,
            restart: None,
            throttled: 0,
        }
    }

    pub async fn create(&self) -> Result<ProgressEvent, RestartError> {
        match self.context()? {
            Some(context) if context.start => self.ride_out(context, self.create_first().await),
            Some(context) => self.ride_out(context.clone(), self.resume(context).await),
            None => {
                let result = self.create_first().await;
                self.ride_out(self.start_context(self.new_id()), result)
            }
        }
    }

    pub async fn update(&self) -> Result<ProgressEvent, RestartError> {
        match self.context()? {
            Some(context) if context.start => self.ride_out(context, self.update_first().await),
            Some(context) => self.ride_out(context.clone(), self.resume(context).await),
            None => {
                let result = self.update_first().await;
                let id = self.requested_id().unwrap_or_default();
                self.ride_out(self.start_context(id), result)
            }
        }
    }
}
