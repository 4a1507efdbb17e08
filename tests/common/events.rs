//! Reading back the events a run sent: an EventBridge bus, a rule matching TaskRun's
//! events on it and an SQS queue as the rule's target, all in the emulator's moto (its
//! `events` and `sqs` backends; moto delivers to an SQS target at PutEvents, and needs
//! the `jsonpath_ng` package for it, in moto's `events` extra). Plain AWS JSON-protocol
//! requests over loopback, with no SDK: moto picks the service from the credential
//! scope of the Authorization header and does not check the signature.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{Emulator, ACCESS_KEY, REGION};

/// The account moto answers as.
pub const ACCOUNT: &str = "123456789012";

/// One AWS JSON-protocol call to the emulator: `service` (the credential scope's), the
/// `X-Amz-Target` and the JSON version; the answer, or the error body.
pub fn aws_json(
    emulator: &Emulator,
    service: &str,
    target: &str,
    json_version: &str,
    body: &Value,
) -> Result<Value, String> {
    let address = emulator.url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).map_err(|e| e.to_string())?;
    let body = body.to_string();
    let date = "20261207";
    write!(
        stream,
        "POST / HTTP/1.1\r\nHost: {address}\r\nX-Amz-Target: {target}\r\nContent-Type: application/x-amz-json-{json_version}\r\nAuthorization: AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/{date}/{REGION}/{service}/aws4_request, SignedHeaders=host;x-amz-target, Signature=0\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .map_err(|e| e.to_string())?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .map_err(|e| e.to_string())?;
    let (head, payload) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        return Err(format!("{target}: {head}\n{payload}"));
    }
    Ok(serde_json::from_str(payload).unwrap_or(Value::Null))
}

fn events_call(emulator: &Emulator, target: &str, body: Value) -> Value {
    aws_json(
        emulator,
        "events",
        &format!("AWSEvents.{target}"),
        "1.1",
        &body,
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

fn sqs_call(emulator: &Emulator, target: &str, body: Value) -> Value {
    aws_json(
        emulator,
        "sqs",
        &format!("AmazonSQS.{target}"),
        "1.0",
        &body,
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

/// A bus whose TaskRun events (Source `org.taskrun`) a rule sends to a queue.
pub struct EventTap {
    pub emulator: &'static Emulator,
    pub bus: String,
    pub queue_url: String,
}

impl EventTap {
    /// The bus, queue and rule named `name` (unique per test).
    pub fn new(emulator: &'static Emulator, name: &str) -> EventTap {
        let created = events_call(emulator, "CreateEventBus", json!({"Name": name}));
        assert!(created["EventBusArn"].is_string(), "{created}");
        let queue = sqs_call(emulator, "CreateQueue", json!({"QueueName": name}));
        let queue_url = queue["QueueUrl"]
            .as_str()
            .unwrap_or_else(|| panic!("CreateQueue: {queue}"))
            .to_string();
        events_call(
            emulator,
            "PutRule",
            json!({
                "Name": name,
                "EventBusName": name,
                "EventPattern": json!({"source": ["org.taskrun"]}).to_string(),
            }),
        );
        events_call(
            emulator,
            "PutTargets",
            json!({
                "Rule": name,
                "EventBusName": name,
                "Targets": [{"Id": "queue", "Arn": format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{name}")}],
            }),
        );
        EventTap {
            emulator,
            bus: name.to_string(),
            queue_url,
        }
    }

    /// The events the queue received (as EventBridge delivers them: `id`, `source`,
    /// `detail-type`, `detail`, ...), in order, until `count` arrived or `within` passed.
    pub fn received(&self, count: usize, within: Duration) -> Vec<Value> {
        let started = Instant::now();
        let mut events = Vec::new();
        while events.len() < count && started.elapsed() < within {
            let answer = sqs_call(
                self.emulator,
                "ReceiveMessage",
                json!({"QueueUrl": self.queue_url, "MaxNumberOfMessages": 10}),
            );
            let messages = answer["Messages"].as_array().cloned().unwrap_or_default();
            if messages.is_empty() {
                std::thread::sleep(Duration::from_millis(100));
            }
            for message in messages {
                let body = message["Body"].as_str().unwrap_or_default();
                events.push(serde_json::from_str(body).unwrap_or(Value::Null));
                sqs_call(
                    self.emulator,
                    "DeleteMessage",
                    json!({"QueueUrl": self.queue_url, "ReceiptHandle": message["ReceiptHandle"]}),
                );
            }
        }
        events
    }

    /// The DetailTypes of `events`, in order.
    pub fn kinds(events: &[Value]) -> Vec<String> {
        events
            .iter()
            .map(|e| e["detail-type"].as_str().unwrap_or_default().to_string())
            .collect()
    }
}
