//! The CloudFormation Registry resource handler protocol (2.0.0).
//!
//! Nothing in here knows about any particular resource type: it decodes the request
//! envelope CloudFormation (or `cfn test`) sends, encodes the progress event a handler
//! answers with, names the Registry's error codes, turns CloudFormation's string-typed
//! scalars back into the types a resource schema declares, and owns the control flow
//! from raw event bytes to the answer ([`dispatch`], over a [`Resource`]).

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
