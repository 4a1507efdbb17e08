//! The wire format of the CloudFormation Registry resource handler protocol (2.0.0).
//!
//! Nothing in here knows about any particular resource type: it decodes the request
//! envelope CloudFormation (or `cfn test`) sends, encodes the progress event a handler
//! answers with, names the Registry's error codes, and turns CloudFormation's
//! string-typed scalars back into the types a resource schema declares.

pub mod error_code;
pub mod lenient;
pub mod progress;
pub mod request;

pub use error_code::HandlerErrorCode;
pub use progress::{OperationStatus, ProgressEvent};
pub use request::{Action, Credentials, DecodeError, HandlerRequest, RequestData};
