//! Every way a ServiceRestart handler can fail, and its Registry code, in one place.

use cfn_protocol::{CredentialsProblem, HandlerError, HandlerErrorCode};
use handler_kit::fault::{fault_code, Fault};
use handler_kit::records::PutError;

use crate::machine::Ending;

#[derive(Debug, thiserror::Error)]
pub enum RestartError {
    #[error("invalid properties: {}", .0.join("; "))]
    InvalidModel(Vec<String>),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("invalid credentials: {0}")]
    Credentials(CredentialsProblem),
    #[error("ServiceRestart {0} not found")]
    NotFound(String),
    #[error("ServiceRestart {0} already exists")]
    AlreadyExists(String),
    #[error("{0}")]
    Aws(Fault),
    #[error("the record of {id} cannot be read: {why}")]
    CorruptRecord { id: String, why: String },
    #[error("{0}")]
    Superseded(String),
    /// A passing fault went on until the operation's give-up time.
    #[error("{0}")]
    GaveUp(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<Fault> for RestartError {
    fn from(fault: Fault) -> Self {
        Self::Aws(fault)
    }
}

/// A record too large to keep is the request's (its properties make it so).
impl From<PutError> for RestartError {
    fn from(error: PutError) -> Self {
        match error {
            PutError::TooLarge(why) => Self::InvalidRequest(why),
            PutError::Store(fault) => Self::Aws(fault),
        }
    }
}

/// The code of a restart that ended without success: never one CloudFormation retries.
pub fn ending_code(ending: Ending) -> HandlerErrorCode {
    match ending {
        Ending::TimedOut => HandlerErrorCode::NotStabilized,
        Ending::Rejected { fault } if !fault.is_transient() => fault_code(fault),
        _ => HandlerErrorCode::GeneralServiceException,
    }
}

impl HandlerError for RestartError {
    fn code(&self) -> HandlerErrorCode {
        match self {
            Self::InvalidModel(_) | Self::InvalidRequest(_) => HandlerErrorCode::InvalidRequest,
            Self::Credentials(_) => HandlerErrorCode::InvalidCredentials,
            Self::NotFound(_) => HandlerErrorCode::NotFound,
            Self::AlreadyExists(_) => HandlerErrorCode::AlreadyExists,
            Self::Aws(fault) => fault_code(fault.kind),
            Self::CorruptRecord { .. } | Self::Internal(_) => HandlerErrorCode::InternalFailure,
            Self::Superseded(_) => HandlerErrorCode::GeneralServiceException,
            // Never a retriable code: CloudFormation answers one by starting the operation
            // over ("Resource type handler error codes": NetworkFailure, Throttling and
            // ServiceInternalError are "Type: Retriable"), which here is restarting the
            // service again.
            Self::GaveUp(_) => HandlerErrorCode::NotStabilized,
        }
    }
}
