//! One module per Registry action, over the engine and the record store.

mod create;
mod delete;
mod list;
mod read;
mod resume;
mod update;

use cfn_protocol::{HandlerRequest, ProgressEvent};
use handler_kit::budget::Budget;
use handler_kit::clock::Clock;
use handler_kit::driver::Outcome;
use handler_kit::records::Stored;
use handler_kit::store::ParameterStore;
use serde_json::Value;

use crate::context::CallbackContext;
use crate::engine::{records, Engine, Held};
use crate::error::{ending_code, RestartError};
use crate::machine::{Ending, Phase};
use crate::model::Properties;
use crate::record::RestartRecord;
use crate::services::Services;

/// How long a callback that cannot reach the record goes on before it gives up: past the
/// restart's deadline, or, for an operation's first step, past its first try.
const GIVE_UP_AFTER_SECONDS: f64 = 600.0;

pub struct Env<'a, G, S, C> {
    pub request: &'a HandlerRequest,
    pub services: &'a G,
    pub store: &'a S,
    pub clock: &'a C,
    pub budget: Budget,
}

impl<G: Services, S: ParameterStore, C: Clock> Env<'_, G, S, C> {
    fn engine(&self) -> Engine<'_, G, S, C> {
        Engine {
            services: self.services,
            store: self.store,
            clock: self.clock,
            budget: self.budget,
        }
    }

    fn context(&self) -> Result<Option<CallbackContext>, RestartError> {
        self.request
            .callback_context
            .as_ref()
            .map(|value| {
                CallbackContext::from_value(value).ok_or_else(|| {
                    RestartError::InvalidRequest(
                        "callbackContext was not written by this handler".into(),
                    )
                })
            })
            .transpose()
    }

    fn operation_token(&self) -> String {
        match self
            .request
            .bearer_token
            .as_deref()
            .filter(|t| !t.is_empty())
        {
            Some(token) => token.to_string(),
            None => format!("local-{}-{}", self.budget.started, std::process::id()),
        }
    }

    fn new_id(&self) -> String {
        handler_kit::ids::resource_id(
            "ServiceRestart",
            self.request.stack_id.as_deref(),
            self.request.request_data.logical_resource_id.as_deref(),
            Some(&self.operation_token()),
        )
    }

    fn requested_id(&self) -> Result<String, RestartError> {
        let id_of = |v: &Value| v.get("Id").and_then(Value::as_str).map(str::to_string);
        id_of(&self.request.desired_properties())
            .or_else(|| self.request.previous_properties().as_ref().and_then(id_of))
            .ok_or_else(|| RestartError::NotFound("(no Id given)".into()))
    }

    fn desired(&self) -> Result<(Value, Properties), RestartError> {
        let properties = crate::schema::prepare(self.request.desired_properties())?;
        let typed = crate::model::typed(&properties)?;
        Ok((properties, typed))
    }

    async fn load(&self, id: &str) -> Result<RestartRecord, RestartError> {
        match records(self.store)
            .load(id, self.budget.persist_deadline())
            .await?
        {
            Stored::Record(record) => Ok(*record),
            Stored::Absent => Err(RestartError::NotFound(id.to_string())),
            Stored::Unreadable(why) => Err(RestartError::CorruptRecord {
                id: id.to_string(),
                why,
            }),
        }
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
                        if let Err(fault) = records(self.store)
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
            delay.ceil().clamp(1.0, 600.0) as u32,
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
        match result {
            Err(RestartError::Aws(fault)) if fault.is_transient() => {
                let throttled = fault.kind == handler_kit::fault::FaultKind::Throttled;
                if self.clock.now() >= context.give_up_at && !throttled {
                    tracing::error!(id = %context.id, error = %fault, "passing fault until the give-up time; giving up");
                    return Err(RestartError::GaveUp(format!(
                        "ServiceRestart {}: the restart's record could not be reached until well past the deadline ({fault}); a deployment it may have started goes on as ECS runs it, and the record {}/{} may remain",
                        context.id,
                        crate::record::PARAMETER_PATH,
                        context.id
                    )));
                }
                tracing::warn!(id = %context.id, error = %fault, "passing fault; trying again at the next callback");
                let model = (self.request.action != cfn_protocol::Action::Delete).then(|| {
                    let mut model = self.request.desired_properties();
                    if let Some(map) = model.as_object_mut() {
                        map.insert("Id".into(), Value::String(context.id.clone()));
                    }
                    model
                });
                // Throttled: back off (with every other restart of the account); else a
                // short jittered pause.
                let mut context = context;
                let delay = handler_kit::pace::retry_delay(
                    &mut context.throttled,
                    throttled,
                    &context.id,
                    self.clock.now(),
                );
                if throttled {
                    // Throttled time does not count toward giving up.
                    context.give_up_at += f64::from(delay);
                }
                Ok(ProgressEvent::in_progress(model, context.to_value(), delay)
                    .with_message(format!("will try again: {fault}")))
            }
            other => other,
        }
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
