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

/// The longest message an event carries. CloudFormation shows a handler's message as the
/// stack event's status reason; longer text is of no use there and, at worst (a message
/// built from 100,000 invalid list items), would not even fit Lambda's 6 MB response.
pub const MAX_MESSAGE_CHARS: usize = 4000;

/// Cuts `message` to at most `max` characters, ending with how many were left out.
pub fn cap_message(message: &mut String, max: usize) {
    let total = message.chars().count();
    if total <= max {
        return;
    }
    // Room for the suffix, so that the result itself stays within `max`.
    let suffix_room = 40.min(max);
    let keep = max - suffix_room;
    let cut = message
        .char_indices()
        .nth(keep)
        .map(|(i, _)| i)
        .unwrap_or(message.len());
    message.truncate(cut);
    message.push_str(&format!(" … ({} more characters)", total - keep));
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

    /// The event with its message cut to what a stack event shows: the first
    /// [`MAX_MESSAGE_CHARS`] characters, then how many more there were.
    pub fn capped(mut self) -> Self {
        if let Some(message) = self.message.as_mut() {
            cap_message(message, MAX_MESSAGE_CHARS);
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_capped_on_character_boundaries() {
        let mut short = "é".repeat(10);
        cap_message(&mut short, 20);
        assert_eq!(short, "é".repeat(10));
        let mut long = "é".repeat(10_000);
        cap_message(&mut long, 100);
        assert!(long.chars().count() <= 100, "{}", long.chars().count());
        assert!(long.ends_with("(9940 more characters)"), "{long}");
        let event =
            ProgressEvent::failed(HandlerErrorCode::InvalidRequest, "x".repeat(7_000_000)).capped();
        assert!(event.message.unwrap().len() <= MAX_MESSAGE_CHARS);
    }
}
