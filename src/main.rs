use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::value::RawValue;
use serde_json::Value;

fn main() -> ExitCode {
    // Outside Lambda there is no Runtime API to ask for events: say what this is.
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_none() {
        eprintln!(
            "bootstrap is the Org::ECS::TaskRun resource handler: it runs in AWS Lambda, \
             started by the CloudFormation registry. To watch it work locally run `make demo`; \
             to test it, `make test` (see README.md)."
        );
        return ExitCode::from(2);
    }
    taskrun::logging::init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The payload stays raw: any JSON reaches the handler, however deep or large its
    // numbers, and the handler answers it with a progress event.
    let handler = service_fn(|event: LambdaEvent<Box<RawValue>>| async move {
        let deadline = UNIX_EPOCH.checked_add(Duration::from_millis(event.context.deadline));
        let deadline = deadline
            .filter(|d| *d > UNIX_EPOCH && *d > SystemTime::now() - Duration::from_secs(3600));
        Ok::<Value, Error>(
            Box::pin(taskrun::handle(event.payload.get().as_bytes(), deadline)).await,
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
