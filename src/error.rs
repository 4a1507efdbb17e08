//! Every way a handler can fail, and the one place where each becomes a Registry error
//! code: the codes of failed calls, and those of runs that ended without success.

use cfn_protocol::{CredentialsProblem, HandlerError, HandlerErrorCode};

use crate::ecs::Fault;
use crate::machine::Ending;

#[derive(Debug, thiserror::Error)]
pub enum TaskRunError {
    #[error("invalid properties: {}", .0.join("; "))]
    InvalidModel(Vec<String>),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("invalid credentials: {0}")]
    Credentials(CredentialsProblem),
    #[error("TaskRun {0} not found")]
    NotFound(String),
    #[error("TaskRun {0} already exists")]
    AlreadyExists(String),
    /// A call failed before anything of the operation's run existed (safe to retry).
    #[error("{0}")]
    Aws(Fault),
    #[error("the run record of {id} cannot be read: {why}")]
    CorruptRecord { id: String, why: String },
    /// The operation's run ended without success.
    #[error("{reason}")]
    RunEnded { ending: Ending, reason: String },
    /// Tasks were stopped but could not be confirmed stopped in time; the record keeps
    /// following them.
    #[error("{0}")]
    StopUnconfirmed(String),
    /// A callback of an operation whose run another operation has since replaced.
    #[error("{0}")]
    Superseded(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<Fault> for TaskRunError {
    fn from(fault: Fault) -> Self {
        Self::Aws(fault)
    }
}

pub use handler_kit::fault::fault_code;

/// The Registry code for a run that ended as `ending`. Never a code CloudFormation
/// retries: the run is over, and a retry would only find its stopped tasks again.
pub fn ending_code(ending: Ending) -> HandlerErrorCode {
    match ending {
        Ending::TimedOut => HandlerErrorCode::NotStabilized,
        Ending::Rejected { fault } if !fault.is_transient() => fault_code(fault),
        Ending::Succeeded | Ending::TasksFailed | Ending::Rejected { .. } | Ending::Superseded => {
            HandlerErrorCode::GeneralServiceException
        }
    }
}

impl HandlerError for TaskRunError {
    fn code(&self) -> HandlerErrorCode {
        match self {
            Self::InvalidModel(_) | Self::InvalidRequest(_) => HandlerErrorCode::InvalidRequest,
            Self::Credentials(_) => HandlerErrorCode::InvalidCredentials,
            Self::NotFound(_) => HandlerErrorCode::NotFound,
            Self::AlreadyExists(_) => HandlerErrorCode::AlreadyExists,
            Self::Aws(fault) => fault_code(fault.kind),
            Self::CorruptRecord { .. } | Self::Internal(_) => HandlerErrorCode::InternalFailure,
            Self::RunEnded { ending, .. } => ending_code(*ending),
            Self::StopUnconfirmed(_) => HandlerErrorCode::NotStabilized,
            Self::Superseded(_) => HandlerErrorCode::GeneralServiceException,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ecs::FaultKind;

    #[test]
    fn maps_errors_to_registry_codes() {
        let aws = |kind| TaskRunError::Aws(Fault::new("ecs:RunTask", kind, "x"));
        let ended = |ending| TaskRunError::RunEnded {
            ending,
            reason: String::new(),
        };
        let cases = [
            (
                TaskRunError::InvalidModel(vec![]),
                HandlerErrorCode::InvalidRequest,
            ),
            (
                TaskRunError::Credentials(CredentialsProblem::Missing),
                HandlerErrorCode::InvalidCredentials,
            ),
            (
                TaskRunError::NotFound("x".into()),
                HandlerErrorCode::NotFound,
            ),
            (aws(FaultKind::Throttled), HandlerErrorCode::Throttling),
            (aws(FaultKind::AccessDenied), HandlerErrorCode::AccessDenied),
            (
                aws(FaultKind::ClusterNotFound),
                HandlerErrorCode::InvalidRequest,
            ),
            (
                aws(FaultKind::ServerSide),
                HandlerErrorCode::ServiceInternalError,
            ),
            (aws(FaultKind::NotFound), HandlerErrorCode::NotFound),
            (
                aws(FaultKind::BadCredentials),
                HandlerErrorCode::InvalidCredentials,
            ),
            (
                aws(FaultKind::Other),
                HandlerErrorCode::GeneralServiceException,
            ),
            (aws(FaultKind::Network), HandlerErrorCode::NetworkFailure),
            (ended(Ending::TimedOut), HandlerErrorCode::NotStabilized),
            (
                ended(Ending::TasksFailed),
                HandlerErrorCode::GeneralServiceException,
            ),
            (
                ended(Ending::Superseded),
                HandlerErrorCode::GeneralServiceException,
            ),
            (
                ended(Ending::Rejected {
                    fault: FaultKind::BadRequest,
                }),
                HandlerErrorCode::InvalidRequest,
            ),
            (
                ended(Ending::Rejected {
                    fault: FaultKind::AccessDenied,
                }),
                HandlerErrorCode::AccessDenied,
            ),
            (
                TaskRunError::StopUnconfirmed(String::new()),
                HandlerErrorCode::NotStabilized,
            ),
            (
                TaskRunError::Superseded(String::new()),
                HandlerErrorCode::GeneralServiceException,
            ),
        ];
        for (error, want) in cases {
            assert_eq!(error.code(), want, "{error:?}");
        }
    }

    #[test]
    fn a_dead_run_never_answers_a_retriable_code() {
        for fault in [
            FaultKind::Throttled,
            FaultKind::ServerSide,
            FaultKind::Network,
        ] {
            for ending in [
                Ending::Rejected { fault },
                Ending::TasksFailed,
                Ending::Superseded,
                Ending::TimedOut,
            ] {
                assert!(!ending_code(ending).is_transient(), "{ending:?}");
            }
        }
    }
}
