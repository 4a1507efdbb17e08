//! Control, not just data: a resource type implements [`Resource`] (one method per
//! action), and [`dispatch`] owns everything around it, as `cfn.Start(h)` does in the Go
//! plugin: decoding the raw event, routing by action, turning an error or even a panic
//! into a FAILED event, capping the message, and encoding the answer. Whatever bytes
//! arrive, a progress event leaves.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant, SystemTime};

use futures_util::FutureExt;
use serde_json::Value;

use crate::{Action, HandlerErrorCode, HandlerRequest, ProgressEvent};

/// An error a handler may end with: its Registry code and a message for the stack event.
pub trait HandlerError: std::fmt::Display {
    fn code(&self) -> HandlerErrorCode;
}

/// A resource type's handlers. Each receives the decoded request; what it returns (or
/// the error it fails with) is turned into the progress event by [`dispatch`].
pub trait Resource: Sync {
    type Error: HandlerError + Send;

    fn create(
        &self,
        request: &HandlerRequest,
    ) -> impl Future<Output = Result<ProgressEvent, Self::Error>> + Send;
    fn read(
        &self,
        request: &HandlerRequest,
    ) -> impl Future<Output = Result<ProgressEvent, Self::Error>> + Send;
    fn update(
        &self,
        request: &HandlerRequest,
    ) -> impl Future<Output = Result<ProgressEvent, Self::Error>> + Send;
    fn delete(
        &self,
        request: &HandlerRequest,
    ) -> impl Future<Output = Result<ProgressEvent, Self::Error>> + Send;
    fn list(
        &self,
        request: &HandlerRequest,
    ) -> impl Future<Output = Result<ProgressEvent, Self::Error>> + Send;
}

/// What one invocation did, for whoever records metrics or ships logs.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// `None` when the event could not be decoded.
    pub action: Option<Action>,
    pub event: ProgressEvent,
    pub duration: Duration,
    /// Whether the handler panicked (a bug, reported as InternalFailure).
    pub panicked: bool,
}

/// Decodes `payload`, runs the action and answers with the progress event as JSON.
/// `deadline` is when the invocation must have answered (the Lambda context's).
pub async fn dispatch<R: Resource>(
    resource: &R,
    payload: &[u8],
    deadline: Option<SystemTime>,
) -> Value {
    run(resource, payload, deadline).await.1.event.to_value()
}

/// As [`dispatch`], also returning the decoded request (when it decoded) and what
/// happened, so that a caller can publish metrics and logs about it.
pub async fn run<R: Resource>(
    resource: &R,
    payload: &[u8],
    deadline: Option<SystemTime>,
) -> (Option<HandlerRequest>, Invocation) {
    let started = Instant::now();
    let mut request = match HandlerRequest::from_slice(payload) {
        Ok(request) => request,
        Err(e) => {
            tracing::warn!(error = %e, "rejected an undecodable request");
            let event = ProgressEvent::failed(HandlerErrorCode::InvalidRequest, e.to_string());
            return (
                None,
                Invocation {
                    action: None,
                    event: event.capped(),
                    duration: started.elapsed(),
                    panicked: false,
                },
            );
        }
    };
    request.deadline = deadline;
    let action = request.action;
    // Boxed: a resource's future can be deep, too deep to lay out inline in every caller.
    let outcome = AssertUnwindSafe(Box::pin(route(resource, &request)))
        .catch_unwind()
        .await;
    let (event, panicked) = match outcome {
        Ok(Ok(event)) => (event, false),
        Ok(Err(error)) => {
            let code = error.code();
            tracing::warn!(error_code = %code, error = %error, "failed");
            (ProgressEvent::failed(code, error.to_string()), false)
        }
        Err(_) => {
            // The panic message went to stderr through the panic hook; the event says only
            // that it happened, since a panic message may quote data it should not.
            tracing::error!(action = action.as_str(), "the handler panicked");
            (
                ProgressEvent::failed(
                    HandlerErrorCode::InternalFailure,
                    "the handler failed unexpectedly (a bug in the resource type; see the handler's log)",
                ),
                true,
            )
        }
    };
    (
        Some(request),
        Invocation {
            action: Some(action),
            event: event.capped(),
            duration: started.elapsed(),
            panicked,
        },
    )
}

async fn route<R: Resource>(
    resource: &R,
    request: &HandlerRequest,
) -> Result<ProgressEvent, R::Error> {
    match request.action {
        Action::Create => resource.create(request).await,
        Action::Read => resource.read(request).await,
        Action::Update => resource.update(request).await,
        Action::Delete => resource.delete(request).await,
        Action::List => resource.list(request).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::OperationStatus;
    use serde_json::json;

    struct Echo;

    #[derive(Debug)]
    struct Oops;

    impl std::fmt::Display for Oops {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("it went wrong")
        }
    }

    impl HandlerError for Oops {
        fn code(&self) -> HandlerErrorCode {
            HandlerErrorCode::NotFound
        }
    }

    impl Resource for Echo {
        type Error = Oops;
        async fn create(&self, r: &HandlerRequest) -> Result<ProgressEvent, Oops> {
            Ok(ProgressEvent::success(r.desired_properties()))
        }
        async fn read(&self, _: &HandlerRequest) -> Result<ProgressEvent, Oops> {
            Err(Oops)
        }
        async fn update(&self, _: &HandlerRequest) -> Result<ProgressEvent, Oops> {
            panic!("a bug")
        }
        async fn delete(&self, _: &HandlerRequest) -> Result<ProgressEvent, Oops> {
            Ok(ProgressEvent::failed(
                HandlerErrorCode::InvalidRequest,
                "x".repeat(1_000_000),
            ))
        }
        async fn list(&self, _: &HandlerRequest) -> Result<ProgressEvent, Oops> {
            Ok(ProgressEvent::listed(vec![], None))
        }
    }

    fn answer(payload: Value) -> Value {
        let bytes = payload.to_string();
        futures_executor(dispatch(&Echo, bytes.as_bytes(), None))
    }

    // A tiny executor: these futures never wait on I/O.
    fn futures_executor<F: Future>(f: F) -> F::Output {
        use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};
        fn noop(_: *const ()) {}
        fn clone(p: *const ()) -> RawWaker {
            RawWaker::new(p, &VTABLE)
        }
        static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, noop, noop, noop);
        let waker = unsafe { Waker::from_raw(RawWaker::new(std::ptr::null(), &VTABLE)) };
        let mut cx = Context::from_waker(&waker);
        let mut f = std::pin::pin!(f);
        loop {
            if let Poll::Ready(out) = f.as_mut().poll(&mut cx) {
                return out;
            }
        }
    }

    #[test]
    fn routes_and_maps_every_outcome_to_an_event() {
        let created =
            answer(json!({"action": "CREATE", "requestData": {"resourceProperties": {"A": 1}}}));
        assert_eq!(
            created,
            json!({"status": "SUCCESS", "resourceModel": {"A": 1}})
        );
        let read = answer(json!({"action": "READ"}));
        assert_eq!(
            read,
            json!({"status": "FAILED", "errorCode": "NotFound", "message": "it went wrong"})
        );
        let panicked = answer(json!({"action": "UPDATE"}));
        assert_eq!(panicked["errorCode"], "InternalFailure");
        let capped = answer(json!({"action": "DELETE"}));
        assert!(capped["message"].as_str().unwrap().len() <= crate::progress::MAX_MESSAGE_CHARS);
        let bad = futures_executor(dispatch(&Echo, b"[[[", None));
        assert_eq!(bad["status"], "FAILED");
        assert_eq!(bad["errorCode"], "InvalidRequest");
        let listed = answer(json!({"action": "LIST"}));
        assert_eq!(listed["status"], json!(OperationStatus::Success));
    }
}
