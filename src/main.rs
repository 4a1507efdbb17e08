use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    taskrun::logging::init();
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
        // Boxed: the handler's future is large, and deep to lay out inline.
        Ok::<Value, Error>(Box::pin(taskrun::handle(event.payload)).await)
    }))
    .await
}
