//! CloudFormation's side of the resource handler protocol, as the tests play it: the
//! request it sends (every scalar property a string), what it sends next after an
//! IN_PROGRESS answer, one invocation polled to its end on a virtual clock, and the names
//! and tokens of one test run.

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, UNIX_EPOCH};

use cfn_protocol::{dispatch, Resource};
use handler_kit::clock::{Clock, VirtualClock};
use serde_json::{json, Value};

/// CloudFormation sends every scalar property as a string.
pub fn as_cloudformation_sends(value: &Value) -> Value {
    match value {
        Value::Number(n) => Value::String(n.to_string()),
        Value::Bool(b) => Value::String(b.to_string()),
        Value::Array(items) => Value::Array(items.iter().map(as_cloudformation_sends).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), as_cloudformation_sends(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Where `value` holds its first null, as a JSON pointer (`""`: `value` itself); `None`
/// without any. `cfn test` rejects explicit nulls in a progress event, at any depth.
pub fn null_at(value: &Value) -> Option<String> {
    match value {
        Value::Null => Some(String::new()),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, v)| null_at(v).map(|p| format!("/{i}{p}"))),
        Value::Object(map) => map
            .iter()
            .find_map(|(k, v)| null_at(v).map(|p| format!("/{k}{p}"))),
        _ => None,
    }
}

/// Panics when a progress event holds a null, at any depth.
pub fn assert_no_nulls(value: &Value) {
    if null_at(value).is_some() {
        panic!("a progress event holds null");
    }
}

/// What is the same in every request CloudFormation sends about one resource: the
/// envelope's fields (`head`: region, account, stack, type...) and `requestData`'s
/// (credentials, logical id, tags...); [`Template::envelope`] adds one invocation's own.
#[derive(Debug, Clone)]
pub struct Template {
    pub head: Value,
    pub request_data: Value,
    /// Properties sent as CloudFormation sends them, every scalar a string
    /// ([`as_cloudformation_sends`]); as given otherwise.
    pub strings: bool,
}

/// One invocation's own parts of the request.
#[derive(Debug, Clone, Copy, Default)]
pub struct Call<'a> {
    pub action: &'a str,
    /// The bearer token: the same for every invocation of one operation.
    pub token: &'a str,
    pub properties: Option<&'a Value>,
    pub previous: Option<&'a Value>,
    pub context: Option<&'a Value>,
    pub rollback: bool,
}

impl Template {
    /// What the tests over the in-memory twins send about `logical` of `stack`: a
    /// request in us-east-1 of account 123456789012, with example caller credentials, and
    /// the properties as given.
    pub fn in_memory(resource_type: &str, stack: &str, logical: &str) -> Template {
        Template {
            head: json!({"region": "us-east-1", "awsAccountId": "123456789012", "stackId": stack,
                "resourceType": resource_type}),
            request_data: json!({
                "callerCredentials": {"accessKeyId": "AKIAEXAMPLE", "secretAccessKey": "secret", "sessionToken": "session"},
                "logicalResourceId": logical,
            }),
            strings: false,
        }
    }

    /// The request of `call`.
    pub fn envelope(&self, call: &Call) -> Value {
        let sent = |p: &Value| {
            if self.strings {
                as_cloudformation_sends(p)
            } else {
                p.clone()
            }
        };
        let mut request_data = self.request_data.clone();
        if let Some(p) = call.properties {
            request_data["resourceProperties"] = sent(p);
        }
        if let Some(p) = call.previous {
            request_data["previousResourceProperties"] = sent(p);
        }
        let mut event = self.head.clone();
        event["action"] = json!(call.action);
        event["bearerToken"] = json!(call.token);
        event["requestData"] = request_data;
        if let Some(c) = call.context {
            event["callbackContext"] = c.clone();
        }
        if call.rollback {
            event["rollback"] = json!(true);
        }
        event
    }
}

/// After an IN_PROGRESS `answer`, what CloudFormation sends with the next invocation: its
/// callbackContext, and (but for a DELETE) the model the handler returned as the
/// properties.
pub fn called_back(
    action: &str,
    answer: &Value,
    context: &mut Option<Value>,
    properties: &mut Value,
) {
    *context = Some(answer["callbackContext"].clone());
    if action != "DELETE" {
        // CloudFormation calls back with the model the handler returned.
        *properties = answer["resourceModel"].clone();
    }
}

/// The wall-clock tests sleep a callbackDelaySeconds for this fraction of its value.
pub const DELAY_SCALE: f64 = 0.05;

/// How long a wall-clock test waits before the callback `delay` asks for: scaled down by
/// [`DELAY_SCALE`], at least 20 ms.
pub fn scaled(delay: f64) -> Duration {
    Duration::from_secs_f64((delay * DELAY_SCALE).max(0.02))
}

/// How a polled invocation ended.
#[derive(Debug)]
pub enum Polled<T> {
    Answered(T),
    /// The process died in it (a crash the twins injected): nothing more of it happens.
    Died,
    /// Still pending after 100,000 polls.
    Stuck,
}

/// Polls `invocation` to its end on this thread (the twins answer at once on a virtual
/// clock, so it needs no runtime); after each pending poll, `died` says whether the
/// process died in it.
pub fn poll_to_end<F: Future>(invocation: F, mut died: impl FnMut() -> bool) -> Polled<F::Output> {
    let mut future = pin!(invocation);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..100_000 {
        if let Poll::Ready(answer) = future.as_mut().poll(&mut cx) {
            return Polled::Answered(answer);
        }
        if died() {
            return Polled::Died;
        }
    }
    Polled::Stuck
}

/// What one operation played over the twins did: each invocation's answer, and how long
/// each took on the virtual clock.
#[derive(Debug, Default)]
pub struct Played {
    pub answers: Vec<Value>,
    pub lengths: Vec<f64>,
}

impl Played {
    /// The last answer (`null` before any).
    pub fn last(&self) -> &Value {
        self.answers.last().unwrap_or(&Value::Null)
    }
}

/// Plays one operation as CloudFormation does, over twins on the virtual `clock`: sends
/// `call`'s request, waits each IN_PROGRESS answer's callbackDelaySeconds, and calls back
/// with its context and model ([`called_back`]), until an answer that is not IN_PROGRESS
/// or `most` invocations (CloudFormation giving up on the operation). Every invocation
/// has the 60 s Lambda deadline. Panics when an invocation never finishes.
pub fn play_operation<R: Resource>(
    resource: &R,
    clock: &VirtualClock,
    template: &Template,
    call: Call,
    most: usize,
) -> Played {
    let mut played = Played::default();
    // A call without properties (a DELETE of nothing, say) sends none, never `null`; a
    // callback sends the model the handler returned.
    let mut properties = call.properties.cloned();
    let mut context: Option<Value> = None;
    for _ in 0..most {
        let event = template.envelope(&Call {
            properties: properties.as_ref(),
            context: context.as_ref(),
            ..call
        });
        let asked = clock.now();
        let bytes = event.to_string();
        let deadline = UNIX_EPOCH + Duration::from_secs_f64(asked + 60.0);
        let answer = match poll_to_end(dispatch(resource, bytes.as_bytes(), Some(deadline)), || {
            false
        }) {
            Polled::Answered(answer) => answer,
            Polled::Died | Polled::Stuck => {
                panic!("an invocation of the simulation never finished")
            }
        };
        played.lengths.push(clock.now() - asked);
        played.answers.push(answer.clone());
        if answer["status"] != "IN_PROGRESS" {
            break;
        }
        clock.advance(answer["callbackDelaySeconds"].as_f64().unwrap_or(1.0));
        let mut model = properties.take().unwrap_or(Value::Null);
        called_back(call.action, &answer, &mut context, &mut model);
        properties = (!model.is_null()).then_some(model);
    }
    played
}

static SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// A name no other test of this run has: `{prefix}-{process}-{n}`.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        SEQUENCE.fetch_add(1, Ordering::SeqCst)
    )
}

static TOKENS: AtomicU64 = AtomicU64::new(0);

/// A bearer token no other operation of this run has: `token-{process}-{n}`.
pub fn new_token() -> String {
    format!(
        "token-{}-{}",
        std::process::id(),
        TOKENS.fetch_add(1, Ordering::SeqCst)
    )
}

/// A bearer token no other operation of this test binary has: `{prefix}{n}`.
pub fn next_token(prefix: &str) -> String {
    format!("{prefix}{}", TOKENS.fetch_add(1, Ordering::SeqCst))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_are_sent_as_strings_at_any_depth() {
        let sent = as_cloudformation_sends(
            &json!({"Count": 2, "On": true, "Tags": [{"N": 1.5}], "Name": "x"}),
        );
        assert_eq!(
            sent,
            json!({"Count": "2", "On": "true", "Tags": [{"N": "1.5"}], "Name": "x"})
        );
    }

    #[test]
    fn the_first_null_is_named_by_its_pointer() {
        assert_eq!(
            null_at(&json!({"a": [1, {"b": null}]})),
            Some("/a/1/b".into())
        );
        assert_eq!(null_at(&Value::Null), Some(String::new()));
        assert_eq!(null_at(&json!({"a": [1, "x"]})), None);
    }

    #[test]
    fn an_envelope_holds_the_template_and_the_call() {
        let template = Template {
            head: json!({"region": "us-east-1", "stackId": "s"}),
            request_data: json!({"logicalResourceId": "R"}),
            strings: true,
        };
        let event = template.envelope(&Call {
            action: "UPDATE",
            token: "t",
            properties: Some(&json!({"Count": 1})),
            previous: Some(&json!({"Count": 2})),
            context: Some(&json!({"stage": 1})),
            rollback: true,
        });
        assert_eq!(
            event,
            json!({"action": "UPDATE", "bearerToken": "t", "region": "us-east-1", "stackId": "s",
                "requestData": {"logicalResourceId": "R", "resourceProperties": {"Count": "1"},
                    "previousResourceProperties": {"Count": "2"}},
                "callbackContext": {"stage": 1}, "rollback": true})
        );
        let first = template.envelope(&Call {
            action: "CREATE",
            token: "t",
            ..Call::default()
        });
        assert!(first.get("callbackContext").is_none() && first.get("rollback").is_none());
        assert!(first["requestData"].get("resourceProperties").is_none());
    }

    #[test]
    fn a_callback_carries_the_context_and_but_for_delete_the_model() {
        let answer = json!({"status": "IN_PROGRESS", "callbackContext": {"n": 1}, "resourceModel": {"Id": "i"}});
        let (mut context, mut properties) = (None, json!({"Id": "old"}));
        called_back("UPDATE", &answer, &mut context, &mut properties);
        assert_eq!(
            (context, properties),
            (Some(json!({"n": 1})), json!({"Id": "i"}))
        );
        let (mut context, mut properties) = (None, json!({"Id": "old"}));
        called_back("DELETE", &answer, &mut context, &mut properties);
        assert_eq!(
            (context, properties),
            (Some(json!({"n": 1})), json!({"Id": "old"}))
        );
    }

    #[test]
    fn a_ready_future_is_answered_and_a_dead_one_died() {
        assert!(matches!(
            poll_to_end(async { 7 }, || false),
            Polled::Answered(7)
        ));
        let never = std::future::pending::<()>();
        assert!(matches!(poll_to_end(never, || true), Polled::Died));
        assert!(matches!(
            poll_to_end(std::future::pending::<()>(), || false),
            Polled::Stuck
        ));
    }
}
