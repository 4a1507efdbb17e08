//! The CloudFormation Registry resource handler protocol (2.0.0).
//!
//! Nothing in here knows about any particular resource type: it decodes the request
//! envelope CloudFormation (or `cfn test`) sends, encodes the progress event a handler
//! answers with, names the Registry's error codes, turns CloudFormation's string-typed
//! scalars back into the types a resource schema declares, and owns the control flow
//! from raw event bytes to the answer ([`dispatch`], over a [`Resource`]).
//!
//! A resource type implements [`Resource`], one async method per action; [`dispatch`]
//! turns the raw event (the bytes Lambda hands over) into the progress event to answer
//! with, whatever the bytes, the handler's error or even a panic:
//!
//! ```
//! use cfn_protocol::{
//!     dispatch, HandlerError, HandlerErrorCode, HandlerRequest, ProgressEvent, Resource,
//! };
//! use futures_util::FutureExt; // `now_or_never`: these handlers never wait
//! use serde_json::json;
//!
//! /// A resource type whose resources exist only in the answer.
//! struct Echo;
//!
//! #[derive(Debug)]
//! struct NotHere;
//!
//! impl std::fmt::Display for NotHere {
//!     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
//!         f.write_str("no such resource")
//!     }
//! }
//!
//! impl HandlerError for NotHere {
//!     fn code(&self) -> HandlerErrorCode {
//!         HandlerErrorCode::NotFound
//!     }
//! }
//!
//! impl Resource for Echo {
//!     type Error = NotHere;
//!     async fn create(&self, request: &HandlerRequest) -> Result<ProgressEvent, NotHere> {
//!         Ok(ProgressEvent::success(request.desired_properties()))
//!     }
//!     async fn read(&self, _: &HandlerRequest) -> Result<ProgressEvent, NotHere> {
//!         Err(NotHere)
//!     }
//!     async fn update(&self, request: &HandlerRequest) -> Result<ProgressEvent, NotHere> {
//!         Ok(ProgressEvent::success(request.desired_properties()))
//!     }
//!     async fn delete(&self, _: &HandlerRequest) -> Result<ProgressEvent, NotHere> {
//!         Ok(ProgressEvent::deleted())
//!     }
//!     async fn list(&self, _: &HandlerRequest) -> Result<ProgressEvent, NotHere> {
//!         Ok(ProgressEvent::listed(vec![], None))
//!     }
//! }
//!
//! // In a Lambda function, `payload` is the event and the deadline the context's.
//! let payload = json!({
//!     "action": "CREATE",
//!     "requestData": {"resourceProperties": {"Name": "demo"}}
//! })
//! .to_string();
//! let answer = dispatch(&Echo, payload.as_bytes(), None).now_or_never().unwrap();
//! assert_eq!(answer, json!({"status": "SUCCESS", "resourceModel": {"Name": "demo"}}));
//!
//! let read = dispatch(&Echo, br#"{"action": "READ"}"#, None).now_or_never().unwrap();
//! assert_eq!(
//!     read,
//!     json!({"status": "FAILED", "errorCode": "NotFound", "message": "no such resource"})
//! );
//!
//! // Bytes that are not a request still get an answer CloudFormation understands.
//! let garbage = dispatch(&Echo, b"[[[", None).now_or_never().unwrap();
//! assert_eq!(garbage["errorCode"], "InvalidRequest");
//! ```

pub mod error_code;
pub mod lenient;
pub mod progress;
pub mod request;
pub mod resource;

pub use error_code::HandlerErrorCode;
pub use progress::{OperationStatus, ProgressEvent};
pub use request::{
    Action, Credentials, CredentialsProblem, DecodeError, HandlerRequest, RequestData,
    UsableCredentials,
};
pub use resource::{dispatch, HandlerError, Invocation, Resource};
