//! The whole path from raw event bytes to the progress event: `cfn_protocol::dispatch`
//! over `TaskRun`, with ECS and the record store in memory (`taskrun::sim`), on a virtual
//! clock. Any panic is a crash (the fuzz build aborts on panic, so the dispatch's own
//! catch cannot hide one), and so is any answer that is not a valid progress event.

#![no_main]

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, UNIX_EPOCH};

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use taskrun::resource::TaskRun;
use taskrun::sim::SimBackend;

const START: f64 = 1_700_000_000.0;
const CODES: [&str; 19] = [
    "NotUpdatable", "InvalidRequest", "AccessDenied", "UnauthorizedTaggingOperation",
    "InvalidCredentials", "AlreadyExists", "NotFound", "ResourceConflict", "Throttling",
    "ServiceLimitExceeded", "NotStabilized", "GeneralServiceException", "ServiceInternalError",
    "NetworkFailure", "InternalFailure", "InvalidTypeConfiguration", "HandlerInternalFailure",
    "NonCompliant", "Unknown",
];

fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        // The in-memory ECS, store and clock never wait.
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
    }
}

fn no_nulls(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Array(items) => items.iter().all(no_nulls),
        Value::Object(map) => map.values().all(no_nulls),
        _ => true,
    }
}

/// A valid progress event, or a description of what is wrong with it.
fn check(answer: &Value) -> Result<(), String> {
    if !no_nulls(answer) {
        return Err("an explicit null".into());
    }
    let status = answer["status"].as_str().unwrap_or_default();
    let code = answer["errorCode"].as_str();
    match status {
        "SUCCESS" | "IN_PROGRESS" if code.is_some() => Err(format!("{status} with an error code")),
        "IN_PROGRESS" if answer["callbackDelaySeconds"].as_u64().unwrap_or(0) == 0 => Err("IN_PROGRESS without a delay".into()),
        "SUCCESS" | "IN_PROGRESS" => Ok(()),
        "FAILED" => match code {
            Some("InternalFailure") => Err("InternalFailure (a panic or a bug)".into()),
            Some(c) if CODES.contains(&c) && answer["message"].is_string() => Ok(()),
            _ => Err("FAILED without a known code and a message".into()),
        },
        _ => Err("no valid status".into()),
    }
}

fuzz_target!(|data: &[u8]| {
    let backend = SimBackend::new(START);
    backend.gateway.clone().with_world("c", "migrate");
    let resource = TaskRun::new(backend.clone());
    let deadline = UNIX_EPOCH + Duration::from_secs_f64(START + 60.0);
    let answer = block_on(cfn_protocol::dispatch(&resource, data, Some(deadline)));
    if let Err(why) = check(&answer) {
        panic!("invalid progress event ({why}): {answer}");
    }
});
