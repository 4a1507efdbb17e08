use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// The five handler operations of a resource type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Create,
    Read,
    Update,
    Delete,
    List,
}

impl Action {
    pub fn parse(text: &str) -> Option<Self> {
        [
            ("CREATE", Self::Create),
            ("READ", Self::Read),
            ("UPDATE", Self::Update),
            ("DELETE", Self::Delete),
            ("LIST", Self::List),
        ]
        .into_iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(text.trim()))
        .map(|(_, action)| action)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "CREATE",
            Self::Read => "READ",
            Self::Update => "UPDATE",
            Self::Delete => "DELETE",
            Self::List => "LIST",
        }
    }
}

/// Why an event could not be read as a handler request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    NotAnObject,
    Malformed(String),
    MissingAction,
    UnknownAction(String),
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotAnObject => f.write_str("the request is not a JSON object"),
            Self::Malformed(why) => write!(f, "the request envelope is malformed: {why}"),
            Self::MissingAction => f.write_str("the request has no action"),
            Self::UnknownAction(action) => write!(
                f,
                "unknown action {action:?}: expected CREATE, READ, UPDATE, DELETE or LIST"
            ),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Temporary credentials CloudFormation passes for calls made on the caller's behalf.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", default)]
pub struct Credentials {
    #[serde(deserialize_with = "lenient_string")]
    pub access_key_id: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub secret_access_key: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub session_token: Option<String>,
}

// Credentials must never reach a log line, whatever derives Debug around them.
impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials(**redacted**)")
    }
}

/// `requestData` of the envelope. Every field is optional: `cfn test` sends few of them.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RequestData {
    pub caller_credentials: Option<Credentials>,
    pub provider_credentials: Option<Credentials>,
    #[serde(deserialize_with = "lenient_string")]
    pub provider_log_group_name: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub logical_resource_id: Option<String>,
    pub resource_properties: Option<Value>,
    pub previous_resource_properties: Option<Value>,
    pub type_configuration: Option<Value>,
    #[serde(deserialize_with = "lenient_tags")]
    pub system_tags: Option<BTreeMap<String, String>>,
    #[serde(deserialize_with = "lenient_tags")]
    pub previous_system_tags: Option<BTreeMap<String, String>>,
    #[serde(deserialize_with = "lenient_tags")]
    pub stack_tags: Option<BTreeMap<String, String>>,
    #[serde(deserialize_with = "lenient_tags")]
    pub previous_stack_tags: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Envelope {
    #[serde(deserialize_with = "lenient_string")]
    action: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    aws_account_id: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    bearer_token: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    region: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    resource_type: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    resource_type_version: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    stack_id: Option<String>,
    callback_context: Option<Value>,
    #[serde(deserialize_with = "lenient_string")]
    next_token: Option<String>,
    request_data: Option<RequestData>,
}

/// A decoded handler request: the envelope with its action known.
#[derive(Debug, Clone)]
pub struct HandlerRequest {
    pub action: Action,
    pub aws_account_id: Option<String>,
    /// Stays the same when CloudFormation delivers the same operation again.
    pub bearer_token: Option<String>,
    pub region: Option<String>,
    pub resource_type: Option<String>,
    pub resource_type_version: Option<String>,
    pub stack_id: Option<String>,
    /// `None` on the first invocation of an operation; an empty object counts as none.
    pub callback_context: Option<Value>,
    pub next_token: Option<String>,
    pub request_data: RequestData,
}

impl HandlerRequest {
    pub fn decode(event: Value) -> Result<Self, DecodeError> {
        if !event.is_object() {
            return Err(DecodeError::NotAnObject);
        }
        let envelope: Envelope =
            serde_json::from_value(event).map_err(|e| DecodeError::Malformed(e.to_string()))?;
        let action_text = envelope.action.ok_or(DecodeError::MissingAction)?;
        let action =
            Action::parse(&action_text).ok_or(DecodeError::UnknownAction(action_text.clone()))?;
        let callback_context = envelope.callback_context.filter(|c| match c {
            Value::Null => false,
            Value::Object(map) => !map.is_empty(),
            _ => true,
        });
        Ok(Self {
            action,
            aws_account_id: envelope.aws_account_id,
            bearer_token: envelope.bearer_token,
            region: envelope.region,
            resource_type: envelope.resource_type,
            resource_type_version: envelope.resource_type_version,
            stack_id: envelope.stack_id,
            callback_context,
            next_token: envelope.next_token.filter(|t| !t.is_empty()),
            request_data: envelope.request_data.unwrap_or_default(),
        })
    }

    /// The desired properties, or an empty object when none were sent.
    pub fn desired_properties(&self) -> Value {
        object_or_empty(self.request_data.resource_properties.as_ref())
    }

    pub fn previous_properties(&self) -> Option<Value> {
        self.request_data
            .previous_resource_properties
            .as_ref()
            .filter(|v| v.is_object())
            .cloned()
    }
}

fn object_or_empty(value: Option<&Value>) -> Value {
    match value {
        Some(v @ Value::Object(_)) => v.clone(),
        _ => Value::Object(Default::default()),
    }
}

/// A string that CloudFormation may also send as a number or a boolean.
fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(Value::Bool(b)) => Some(b.to_string()),
        Some(other) => {
            return Err(serde::de::Error::custom(format!(
                "expected a string, found {other}"
            )))
        }
    })
}

/// Tags as a map of strings; scalar values of other types are turned into strings.
fn lenient_tags<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<BTreeMap<String, String>>, D::Error> {
    let Some(value) = Option::<Value>::deserialize(d)? else {
        return Ok(None);
    };
    match value {
        Value::Null => Ok(None),
        Value::Object(map) => Ok(Some(
            map.into_iter()
                .map(|(k, v)| {
                    let v = match v {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    (k, v)
                })
                .collect(),
        )),
        other => Err(serde::de::Error::custom(format!(
            "expected a map of tags, found {other}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decodes_envelopes() {
        struct Case {
            name: &'static str,
            event: Value,
            want: Result<Action, DecodeError>,
        }
        let cases = [
            Case {
                name: "full CloudFormation envelope",
                event: json!({
                    "action": "CREATE", "awsAccountId": "123456789012", "bearerToken": "tok",
                    "region": "eu-west-1", "resourceType": "Org::ECS::TaskRun", "stackId": "arn:stack",
                    "callbackContext": null,
                    "requestData": {
                        "callerCredentials": {"accessKeyId": "a", "secretAccessKey": "b", "sessionToken": "c"},
                        "logicalResourceId": "Migrate", "resourceProperties": {"Count": "2"},
                        "systemTags": {"aws:cloudformation:stack-name": "s"}, "stackTags": {"team": 7}
                    }
                }),
                want: Ok(Action::Create),
            },
            Case {
                name: "minimal cfn test envelope",
                event: json!({"action": "READ", "requestData": {"resourceProperties": {"Id": "x"}}}),
                want: Ok(Action::Read),
            },
            Case {
                name: "lower-case action",
                event: json!({"action": "list"}),
                want: Ok(Action::List),
            },
            Case {
                name: "account id as a number",
                event: json!({"action": "DELETE", "awsAccountId": 123456789012u64}),
                want: Ok(Action::Delete),
            },
            Case {
                name: "not an object",
                event: json!([1, 2]),
                want: Err(DecodeError::NotAnObject),
            },
            Case {
                name: "no action",
                event: json!({"requestData": {}}),
                want: Err(DecodeError::MissingAction),
            },
            Case {
                name: "unknown action",
                event: json!({"action": "EXPLODE"}),
                want: Err(DecodeError::UnknownAction("EXPLODE".into())),
            },
        ];
        for case in cases {
            let got = HandlerRequest::decode(case.event).map(|r| r.action);
            assert_eq!(got, case.want, "{}", case.name);
        }
    }

    #[test]
    fn malformed_fields_are_errors_not_panics() {
        for event in [
            json!({"action": "CREATE", "requestData": "nope"}),
            json!({"action": "CREATE", "region": {"x": 1}}),
            json!({"action": "CREATE", "requestData": {"callerCredentials": 5}}),
            json!({"action": ["CREATE"]}),
        ] {
            assert!(
                matches!(
                    HandlerRequest::decode(event.clone()),
                    Err(DecodeError::Malformed(_))
                ),
                "{event}"
            );
        }
    }

    #[test]
    fn keeps_what_handlers_need() {
        let request = HandlerRequest::decode(json!({
            "action": "UPDATE", "bearerToken": 42, "callbackContext": {},
            "nextToken": "",
            "requestData": {
                "stackTags": {"team": 7, "env": "prod"},
                "resourceProperties": {"Cluster": "c"},
                "previousResourceProperties": {"Cluster": "b"},
                "callerCredentials": {"accessKeyId": "AKIA", "secretAccessKey": "s"}
            }
        }))
        .unwrap();
        assert_eq!(request.bearer_token.as_deref(), Some("42"));
        assert_eq!(
            request.callback_context, None,
            "an empty context is no context"
        );
        assert_eq!(request.next_token, None);
        assert_eq!(request.desired_properties(), json!({"Cluster": "c"}));
        assert_eq!(request.previous_properties(), Some(json!({"Cluster": "b"})));
        let tags = request.request_data.stack_tags.clone().unwrap();
        assert_eq!(tags.get("team").map(String::as_str), Some("7"));
        let creds = request.request_data.caller_credentials.clone().unwrap();
        assert_eq!(creds.session_token, None);
        assert!(
            !format!("{request:?}").contains("AKIA"),
            "credentials leak into Debug"
        );
    }
}
