//! One handler per Registry action, and the dispatch between them.

mod create;
mod delete;
mod list;
mod read;
pub(crate) mod run;
mod update;

use std::time::{SystemTime, UNIX_EPOCH};

use cfn_protocol::{Action, HandlerErrorCode, HandlerRequest, ProgressEvent};
use serde_json::Value;

use crate::aws::Clients;
use crate::context::CallbackContext;
use crate::error::TaskRunError;
use crate::model::ResourceModel;
use crate::store::RunStore;

/// What every handler works with.
pub struct Env<'a> {
    pub request: &'a HandlerRequest,
    pub ecs: &'a aws_sdk_ecs::Client,
    pub store: RunStore,
    /// Seconds since the epoch, read once per invocation.
    pub now: f64,
}

impl Env<'_> {
    /// The token that identifies this operation across redeliveries.
    pub fn operation_token(&self) -> String {
        match self
            .request
            .bearer_token
            .as_deref()
            .filter(|t| !t.is_empty())
        {
            Some(token) => token.to_string(),
            // A hand-made event without a token: every invocation is its own operation.
            None => format!("local-{}-{}", self.now, std::process::id()),
        }
    }
}

pub fn epoch_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

/// Decodes the event, builds the caller's clients and runs the action. Always answers
/// with a progress event: a bad event is FAILED / InvalidRequest, never an error.
pub async fn handle(event: Value) -> Value {
    let request = match HandlerRequest::decode(event) {
        Ok(request) => request,
        Err(e) => {
            tracing::warn!(error = %e, "rejected a malformed request");
            return ProgressEvent::failed(HandlerErrorCode::InvalidRequest, e.to_string())
                .to_value();
        }
    };
    let clients = crate::aws::clients_for(&request).await;
    handle_request(&request, &clients).await.to_value()
}

/// The action itself, with clients given (the tests give mocked ones).
pub async fn handle_request(request: &HandlerRequest, clients: &Clients) -> ProgressEvent {
    let env = Env {
        request,
        ecs: &clients.ecs,
        store: RunStore::new(clients.ssm.clone()),
        now: epoch_seconds(),
    };
    let action = request.action;
    let resumed = request.callback_context.is_some();
    let span = tracing::info_span!("taskrun", action = action.as_str(), resumed);
    let _guard = span.enter();
    let result = match (action, &request.callback_context) {
        (Action::Create | Action::Update, Some(context)) => {
            match CallbackContext::from_value(context) {
                Some(context) => run::resume(&env, &context).await,
                None => Err(TaskRunError::BadEnvelope(
                    "callbackContext was not written by this handler".into(),
                )),
            }
        }
        (Action::Create, None) => create::handle(&env).await,
        (Action::Update, None) => update::handle(&env).await,
        (Action::Read, _) => read::handle(&env).await,
        (Action::Delete, _) => delete::handle(&env).await,
        (Action::List, _) => list::handle(&env).await,
    };
    match result {
        Ok(event) => {
            tracing::info!(status = ?event.status, message = event.message.as_deref().unwrap_or(""), "answered");
            event
        }
        Err(error) => {
            let code = error.code();
            tracing::warn!(error_code = %code, error = %error, "failed");
            ProgressEvent::failed(code, error.to_string())
        }
    }
}

/// The desired properties, coerced and validated against the schema.
pub(crate) fn desired_model(env: &Env<'_>) -> Result<(Value, ResourceModel), TaskRunError> {
    let properties = crate::schema::prepare(env.request.desired_properties())?;
    let model = typed(&properties)?;
    Ok((properties, model))
}

pub(crate) fn typed(properties: &Value) -> Result<ResourceModel, TaskRunError> {
    serde_json::from_value(properties.clone())
        .map_err(|e| TaskRunError::InvalidModel(vec![e.to_string()]))
}

/// The primary identifier a READ, UPDATE or DELETE names, without validating the rest.
pub(crate) fn requested_id(env: &Env<'_>) -> Result<String, TaskRunError> {
    let id_of = |v: &Value| v.get("Id").and_then(Value::as_str).map(str::to_string);
    id_of(&env.request.desired_properties())
        .or_else(|| env.request.previous_properties().as_ref().and_then(id_of))
        .ok_or_else(|| TaskRunError::NotFound("(no Id given)".into()))
}
