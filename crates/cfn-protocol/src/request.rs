//! The request envelope CloudFormation (or `cfn test`) sends, read field by field so
//! that a field of the wrong shape is named by its path and its JSON type, never by its
//! value: the envelope carries credentials, and a malformed one must not echo them into
//! a stack event or a log line.

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde_json::{Map, Value};

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

/// Why an event could not be read as a handler request. No variant holds a value taken
/// from the event: only paths, JSON type names and positions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// Not JSON at all; serde_json's own description (position, not content).
    NotJson(String),
    /// Nested deeper than the JSON reader allows (128 levels).
    TooDeep,
    /// A number literal too large for a 64-bit float.
    NumberOutOfRange,
    NotAnObject,
    /// A field of the wrong JSON type.
    Malformed {
        path: String,
        expected: &'static str,
        found: &'static str,
    },
    MissingAction,
    UnknownAction,
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotJson(why) => write!(f, "the request is not valid JSON: {why}"),
            Self::TooDeep => f.write_str("the request nests deeper than 128 levels"),
            Self::NumberOutOfRange => f.write_str("the request holds a number too large to read"),
            Self::NotAnObject => f.write_str("the request is not a JSON object"),
            Self::Malformed {
                path,
                expected,
                found,
            } => write!(
                f,
                "the request envelope is malformed: {path}: expected {expected}, found {found}"
            ),
            Self::MissingAction => f.write_str("the request has no action"),
            Self::UnknownAction => {
                f.write_str("unknown action: expected CREATE, READ, UPDATE, DELETE or LIST")
            }
        }
    }
}

impl std::error::Error for DecodeError {}

/// Temporary credentials CloudFormation passes for calls made on the caller's behalf.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
}

// Credentials must never reach a log line, whatever derives Debug around them.
impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials(**redacted**)")
    }
}

/// Credentials fit to sign requests with.
#[derive(Clone, PartialEq, Eq)]
pub struct UsableCredentials<'a> {
    pub access_key_id: &'a str,
    pub secret_access_key: &'a str,
    pub session_token: Option<&'a str>,
}

impl std::fmt::Debug for UsableCredentials<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UsableCredentials(**redacted**)")
    }
}

/// What is wrong with a set of credentials (never what they hold).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialsProblem {
    Missing,
    MissingField(&'static str),
    /// A character that cannot go into an HTTP header (a control character, say): the
    /// SDK's request signing would reject it, or worse, panic.
    BadCharacter(&'static str),
}

impl std::fmt::Display for CredentialsProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Missing => f.write_str("no credentials were given"),
            Self::MissingField(field) => write!(f, "the credentials have no {field}"),
            Self::BadCharacter(field) => {
                write!(
                    f,
                    "the credentials' {field} holds a character that is not printable ASCII"
                )
            }
        }
    }
}

impl Credentials {
    /// The credentials, if every part is present and made of printable ASCII.
    pub fn usable(&self) -> Result<UsableCredentials<'_>, CredentialsProblem> {
        fn field<'a>(
            value: &'a Option<String>,
            name: &'static str,
        ) -> Result<&'a str, CredentialsProblem> {
            let text = value
                .as_deref()
                .filter(|v| !v.is_empty())
                .ok_or(CredentialsProblem::MissingField(name))?;
            printable(text, name)
        }
        fn printable<'a>(text: &'a str, name: &'static str) -> Result<&'a str, CredentialsProblem> {
            if text.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
                Ok(text)
            } else {
                Err(CredentialsProblem::BadCharacter(name))
            }
        }
        Ok(UsableCredentials {
            access_key_id: field(&self.access_key_id, "accessKeyId")?,
            secret_access_key: field(&self.secret_access_key, "secretAccessKey")?,
            session_token: match self.session_token.as_deref().filter(|t| !t.is_empty()) {
                Some(token) => Some(printable(token, "sessionToken")?),
                None => None,
            },
        })
    }
}

/// `requestData` of the envelope. Every field is optional: `cfn test` sends few of them.
#[derive(Debug, Clone, Default)]
pub struct RequestData {
    pub caller_credentials: Option<Credentials>,
    pub provider_credentials: Option<Credentials>,
    pub provider_log_group_name: Option<String>,
    pub logical_resource_id: Option<String>,
    pub resource_properties: Option<Value>,
    pub previous_resource_properties: Option<Value>,
    pub type_configuration: Option<Value>,
    pub system_tags: Option<BTreeMap<String, String>>,
    pub previous_system_tags: Option<BTreeMap<String, String>>,
    pub stack_tags: Option<BTreeMap<String, String>>,
    pub previous_stack_tags: Option<BTreeMap<String, String>>,
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
    /// Whether CloudFormation sends this request while rolling a stack back.
    pub rollback: bool,
    pub request_data: RequestData,
    /// When the invocation must have answered (the Lambda context's deadline); not part
    /// of the envelope.
    pub deadline: Option<SystemTime>,
}

type Fields<'a> = &'a Map<String, Value>;

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn malformed(path: String, expected: &'static str, found: &Value) -> DecodeError {
    DecodeError::Malformed {
        path,
        expected,
        found: type_name(found),
    }
}

/// A string that CloudFormation may also send as a number or a boolean.
fn string(fields: Fields<'_>, base: &str, key: &str) -> Result<Option<String>, DecodeError> {
    match fields.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(Value::Bool(b)) => Ok(Some(b.to_string())),
        Some(other) => Err(malformed(format!("{base}/{key}"), "a string", other)),
    }
}

fn boolean(fields: Fields<'_>, base: &str, key: &str) -> Result<bool, DecodeError> {
    match fields.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::String(s)) if s.trim().eq_ignore_ascii_case("true") => Ok(true),
        Some(Value::String(s)) if s.trim().eq_ignore_ascii_case("false") => Ok(false),
        Some(other) => Err(malformed(format!("{base}/{key}"), "a boolean", other)),
    }
}

fn object<'a>(
    fields: Fields<'a>,
    base: &str,
    key: &str,
) -> Result<Option<Fields<'a>>, DecodeError> {
    match fields.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) => Ok(Some(map)),
        Some(other) => Err(malformed(format!("{base}/{key}"), "an object", other)),
    }
}

/// Resource properties: an object, or absent.
fn properties(fields: Fields<'_>, base: &str, key: &str) -> Result<Option<Value>, DecodeError> {
    Ok(object(fields, base, key)?.map(|map| Value::Object(map.clone())))
}

fn credentials(
    fields: Fields<'_>,
    base: &str,
    key: &str,
) -> Result<Option<Credentials>, DecodeError> {
    let Some(map) = object(fields, base, key)? else {
        return Ok(None);
    };
    let path = format!("{base}/{key}");
    Ok(Some(Credentials {
        access_key_id: string(map, &path, "accessKeyId")?,
        secret_access_key: string(map, &path, "secretAccessKey")?,
        session_token: string(map, &path, "sessionToken")?,
    }))
}

/// Tags as a map of strings; scalar values of other types are turned into strings.
fn tags(
    fields: Fields<'_>,
    base: &str,
    key: &str,
) -> Result<Option<BTreeMap<String, String>>, DecodeError> {
    let Some(map) = object(fields, base, key)? else {
        return Ok(None);
    };
    let mut tags = BTreeMap::new();
    for (name, value) in map {
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Null => String::new(),
            other => {
                return Err(malformed(
                    format!("{base}/{key}/{}", escape_pointer(name)),
                    "a string",
                    other,
                ))
            }
        };
        tags.insert(name.clone(), text);
    }
    Ok(Some(tags))
}

/// A JSON pointer token (RFC 6901), so a key with `/` in it cannot fake a path.
fn escape_pointer(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

impl RequestData {
    fn decode(fields: Fields<'_>) -> Result<Self, DecodeError> {
        let base = "/requestData";
        Ok(Self {
            caller_credentials: credentials(fields, base, "callerCredentials")?,
            provider_credentials: credentials(fields, base, "providerCredentials")?,
            provider_log_group_name: string(fields, base, "providerLogGroupName")?,
            logical_resource_id: string(fields, base, "logicalResourceId")?,
            resource_properties: properties(fields, base, "resourceProperties")?,
            previous_resource_properties: properties(fields, base, "previousResourceProperties")?,
            type_configuration: properties(fields, base, "typeConfiguration")?,
            system_tags: tags(fields, base, "systemTags")?,
            previous_system_tags: tags(fields, base, "previousSystemTags")?,
            stack_tags: tags(fields, base, "stackTags")?,
            previous_stack_tags: tags(fields, base, "previousStackTags")?,
        })
    }
}

/// Reads raw event bytes as JSON. Rejections say what kind of problem it is and where,
/// never what the bytes hold.
pub fn parse_json(bytes: &[u8]) -> Result<Value, DecodeError> {
    serde_json::from_slice(bytes).map_err(|e| {
        let text = e.to_string();
        if text.starts_with("recursion limit exceeded") {
            DecodeError::TooDeep
        } else if text.starts_with("number out of range") {
            DecodeError::NumberOutOfRange
        } else {
            // serde_json's syntax messages name a position and the kind of token expected,
            // never the content (the event is parsed into an untyped value).
            DecodeError::NotJson(text)
        }
    })
}

impl HandlerRequest {
    /// Decodes raw event bytes (what the Lambda runtime received).
    pub fn from_slice(bytes: &[u8]) -> Result<Self, DecodeError> {
        Self::decode(&parse_json(bytes)?)
    }

    pub fn decode(event: &Value) -> Result<Self, DecodeError> {
        let Value::Object(fields) = event else {
            return Err(DecodeError::NotAnObject);
        };
        let action_text = string(fields, "", "action")?.ok_or(DecodeError::MissingAction)?;
        let action = Action::parse(&action_text).ok_or(DecodeError::UnknownAction)?;
        let callback_context = fields.get("callbackContext").cloned().filter(|c| match c {
            Value::Null => false,
            Value::Object(map) => !map.is_empty(),
            _ => true,
        });
        let request_data = match object(fields, "", "requestData")? {
            Some(data) => RequestData::decode(data)?,
            None => RequestData::default(),
        };
        Ok(Self {
            action,
            aws_account_id: string(fields, "", "awsAccountId")?,
            bearer_token: string(fields, "", "bearerToken")?,
            region: string(fields, "", "region")?,
            resource_type: string(fields, "", "resourceType")?,
            resource_type_version: string(fields, "", "resourceTypeVersion")?,
            stack_id: string(fields, "", "stackId")?,
            callback_context,
            next_token: string(fields, "", "nextToken")?.filter(|t| !t.is_empty()),
            rollback: boolean(fields, "", "rollback")?,
            request_data,
            deadline: None,
        })
    }

    /// The desired properties, or an empty object when none were sent.
    pub fn desired_properties(&self) -> Value {
        self.request_data
            .resource_properties
            .clone()
            .unwrap_or_else(|| Value::Object(Map::new()))
    }

    pub fn previous_properties(&self) -> Option<Value> {
        self.request_data.previous_resource_properties.clone()
    }

    /// The caller's credentials, fit for signing, or why not.
    pub fn caller_credentials(&self) -> Result<UsableCredentials<'_>, CredentialsProblem> {
        self.request_data
            .caller_credentials
            .as_ref()
            .ok_or(CredentialsProblem::Missing)?
            .usable()
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
                    "callbackContext": null, "rollback": false,
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
                want: Err(DecodeError::UnknownAction),
            },
            Case {
                name: "requestData not an object",
                event: json!({"action": "CREATE", "requestData": "nope"}),
                want: Err(DecodeError::Malformed {
                    path: "/requestData".into(),
                    expected: "an object",
                    found: "a string",
                }),
            },
            Case {
                name: "a session token sent as a list",
                event: json!({"action": "CREATE", "requestData": {"callerCredentials": {"sessionToken": ["SECRET"]}}}),
                want: Err(DecodeError::Malformed {
                    path: "/requestData/callerCredentials/sessionToken".into(),
                    expected: "a string",
                    found: "a list",
                }),
            },
            Case {
                name: "properties as a list",
                event: json!({"action": "CREATE", "requestData": {"resourceProperties": [1]}}),
                want: Err(DecodeError::Malformed {
                    path: "/requestData/resourceProperties".into(),
                    expected: "an object",
                    found: "a list",
                }),
            },
            Case {
                name: "a tag key with a slash is escaped in the path",
                event: json!({"action": "CREATE", "requestData": {"stackTags": {"a/b": {}}}}),
                want: Err(DecodeError::Malformed {
                    path: "/requestData/stackTags/a~1b".into(),
                    expected: "a string",
                    found: "an object",
                }),
            },
            Case {
                name: "rollback as a string",
                event: json!({"action": "UPDATE", "rollback": "TRUE"}),
                want: Ok(Action::Update),
            },
        ];
        for case in cases {
            let got = HandlerRequest::decode(&case.event).map(|r| r.action);
            assert_eq!(got, case.want, "{}", case.name);
        }
    }

    #[test]
    fn messages_never_hold_values() {
        for event in [
            json!({"action": "CREATE", "region": {"SECRET": 1}}),
            json!({"action": "CREATE", "requestData": {"callerCredentials": {"accessKeyId": {"SECRET": 1}}}}),
            json!({"action": "SECRET"}),
            json!({"action": ["SECRET"]}),
        ] {
            let message = HandlerRequest::decode(&event).unwrap_err().to_string();
            assert!(!message.contains("SECRET"), "{message}");
        }
    }

    #[test]
    fn raw_bytes_problems_are_named() {
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert_eq!(
            HandlerRequest::from_slice(deep.as_bytes()).unwrap_err(),
            DecodeError::TooDeep
        );
        let big = format!("{{\"action\": \"CREATE\", \"x\": 1{}}}", "0".repeat(400));
        assert_eq!(
            HandlerRequest::from_slice(big.as_bytes()).unwrap_err(),
            DecodeError::NumberOutOfRange
        );
        let broken = HandlerRequest::from_slice(b"{\"action\": \"SECRET").unwrap_err();
        assert!(matches!(broken, DecodeError::NotJson(_)));
        assert!(!broken.to_string().contains("SECRET"), "{broken}");
    }

    #[test]
    fn keeps_what_handlers_need() {
        let request = HandlerRequest::decode(&json!({
            "action": "UPDATE", "bearerToken": 42, "callbackContext": {},
            "nextToken": "", "rollback": true,
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
        assert!(request.rollback);
        assert_eq!(request.next_token, None);
        assert_eq!(request.desired_properties(), json!({"Cluster": "c"}));
        assert_eq!(request.previous_properties(), Some(json!({"Cluster": "b"})));
        let tags = request.request_data.stack_tags.clone().unwrap();
        assert_eq!(tags.get("team").map(String::as_str), Some("7"));
        let creds = request.caller_credentials().unwrap();
        assert_eq!(creds.session_token, None);
        assert!(
            !format!("{request:?}").contains("AKIA"),
            "credentials leak into Debug"
        );
    }

    #[test]
    fn credentials_are_checked_before_use() {
        let creds = |k: &str, s: &str, t: Option<&str>| Credentials {
            access_key_id: Some(k.into()),
            secret_access_key: Some(s.into()),
            session_token: t.map(Into::into),
        };
        assert!(creds("AKIA", "secret", Some("tok")).usable().is_ok());
        assert_eq!(
            creds("AK\0IA", "s", None).usable().unwrap_err(),
            CredentialsProblem::BadCharacter("accessKeyId")
        );
        assert_eq!(
            creds("AKIA", "s", Some("t\r\nX-Evil: 1"))
                .usable()
                .unwrap_err(),
            CredentialsProblem::BadCharacter("sessionToken")
        );
        assert_eq!(
            creds("AKIA", "sé", None).usable().unwrap_err(),
            CredentialsProblem::BadCharacter("secretAccessKey")
        );
        assert_eq!(
            creds("", "s", None).usable().unwrap_err(),
            CredentialsProblem::MissingField("accessKeyId")
        );
        let request = HandlerRequest::decode(&json!({"action": "READ"})).unwrap();
        assert_eq!(
            request.caller_credentials().unwrap_err(),
            CredentialsProblem::Missing
        );
    }
}
