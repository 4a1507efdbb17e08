//! The entry point of a handler binary: the Lambda runtime hands each event, raw, to
//! `cfn_protocol`'s dispatch over the resource type, and the invocation's logs and
//! metrics go to the provider log before the answer goes back.

use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cfn_protocol::Resource;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::value::RawValue;
use serde_json::Value;

use crate::clock::epoch_seconds;

/// The provider log gets at most this long after the answer is ready.
const SHIP_SECONDS: f64 = 3.0;
/// ... and never closer than this to the Lambda deadline.
const SHIP_MARGIN_SECONDS: f64 = 1.0;

/// Runs `resource` as a Lambda function until the runtime stops. Outside Lambda (no
/// Runtime API to ask for events) it prints `usage` and exits with status 2.
pub fn main<R: Resource + Send + Sync + 'static>(
    resource: R,
    type_name: &'static str,
    usage: &str,
) -> ExitCode {
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_none() {
        eprintln!("{usage}");
        return ExitCode::from(2);
    }
    crate::logging::init();
    // One thread: a handler waits on the network, never on the CPU, and a Registry handler
    // gets a fraction of a vCPU; worker threads would only add memory and code size.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let resource: &'static R = Box::leak(Box::new(resource));
    // The payload stays raw: any JSON reaches the dispatch, however deep or large its
    // numbers, and gets a progress event back.
    let handler = service_fn(move |event: LambdaEvent<Box<RawValue>>| async move {
        let deadline = UNIX_EPOCH
            .checked_add(Duration::from_millis(event.context.deadline))
            .filter(|d| *d > SystemTime::now() - Duration::from_secs(3600));
        Ok::<Value, Error>(
            invoke(
                resource,
                type_name,
                event.payload.get().as_bytes(),
                deadline,
            )
            .await,
        )
    });
    match runtime.block_on(lambda_runtime::run(handler)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("the Lambda runtime stopped: {e}");
            ExitCode::FAILURE
        }
    }
}

/// One invocation: dispatch, then the provider log, within the invocation's time.
pub async fn invoke<R: Resource>(
    resource: &R,
    type_name: &str,
    payload: &[u8],
    deadline: Option<SystemTime>,
) -> Value {
    crate::logging::start_invocation();
    let (request, invocation) =
        Box::pin(cfn_protocol::resource::run(resource, payload, deadline)).await;
    let answer = invocation.event.to_value();
    if let Some(request) = &request {
        let (lines, dropped) = crate::logging::take_invocation();
        if dropped > 0 {
            tracing::warn!(dropped, "log lines left out of the provider log (too many)");
        }
        let now = epoch_seconds(SystemTime::now());
        let by = match deadline {
            Some(d) => (epoch_seconds(d) - SHIP_MARGIN_SECONDS).min(now + SHIP_SECONDS),
            None => now + SHIP_SECONDS,
        };
        if by > now {
            crate::provider_log::ship(type_name, request, &invocation, lines, by).await;
        }
    }
    answer
}
