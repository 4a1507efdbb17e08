use serde::Serialize;
use serde_json::Value;

use crate::HandlerErrorCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OperationStatus {
    InProgress,
    Success,
    Failed,
}

/// What a handler answers. Absent fields are left out of the JSON entirely:
/// `cfn test` rejects an explicit `null` where it expects a value.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProgressEvent {
    pub status: OperationStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<HandlerErrorCode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub callback_context: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub callback_delay_seconds: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_model: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_models: Option<Vec<Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

impl ProgressEvent {
    fn new(status: OperationStatus) -> Self {
        Self {
            status,
            error_code: None,
            message: None,
            callback_context: None,
            callback_delay_seconds: None,
            resource_model: None,
            resource_models: None,
            next_token: None,
        }
    }

    /// SUCCESS with the resource's current model (CREATE, READ, UPDATE).
    pub fn success(model: Value) -> Self {
        Self {
            resource_model: Some(model),
            ..Self::new(OperationStatus::Success)
        }
    }

    /// SUCCESS without a model: what a completed DELETE must answer.
    pub fn deleted() -> Self {
        Self::new(OperationStatus::Success)
    }

    /// SUCCESS for LIST: `resourceModels` is always present, possibly empty.
    pub fn listed(models: Vec<Value>, next_token: Option<String>) -> Self {
        Self {
            resource_models: Some(models),
            next_token,
            ..Self::new(OperationStatus::Success)
        }
    }

    /// IN_PROGRESS: CloudFormation calls again after `delay_seconds` with `context`.
    pub fn in_progress(model: Option<Value>, context: Value, delay_seconds: u32) -> Self {
        Self {
            resource_model: model,
            callback_context: Some(context),
            callback_delay_seconds: Some(delay_seconds),
            ..Self::new(OperationStatus::InProgress)
        }
    }

    pub fn failed(code: HandlerErrorCode, message: impl Into<String>) -> Self {
        Self {
            error_code: Some(code),
            message: Some(message.into()),
            ..Self::new(OperationStatus::Failed)
        }
    }

    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = Some(message.into());
        self
    }

    pub fn with_model(mut self, model: Value) -> Self {
        self.resource_model = Some(model);
        self
    }

    pub fn to_value(&self) -> Value {
        // Serialising this struct cannot fail: every field is a plain JSON value.
        serde_json::to_value(self).unwrap_or_else(|e| {
            serde_json::json!({
                "status": "FAILED",
                "errorCode": "InternalFailure",
                "message": format!("could not encode the progress event: {e}"),
            })
        })
    }
}
