//! Every way a handler can fail, and the one place where each becomes a Registry error
//! code: the codes of failed calls, and those of runs that ended without success.

use cfn_protocol::HandlerErrorCode;

use crate::machine::Ending;

use handler_kit::failure::{Failure, OwnFailure, Unsuccessful};

/// Every way a TaskRun handler can fail: the failures every type shares, and
/// [`RunFailure`].
pub type TaskRunError = Failure<RunFailure>;

/// The failures that are TaskRun's own.
#[derive(Debug, thiserror::Error)]
pub enum RunFailure {
    /// The operation's run ended without success.
    #[error("{reason}")]
    RunEnded { ending: Ending, reason: String },
    /// Tasks were stopped but could not be confirmed stopped in time; the record keeps
    /// following them.
    #[error("{0}")]
    StopUnconfirmed(String),
}

impl OwnFailure for RunFailure {
    const NOUN: &'static str = "TaskRun";
    const RECORD: &'static str = "the run record";

    fn code(&self) -> HandlerErrorCode {
        match self {
            Self::RunEnded { ending, .. } => ending_code(*ending),
            Self::StopUnconfirmed(_) => HandlerErrorCode::NotStabilized,
        }
    }
}

pub use handler_kit::fault::fault_code;

/// The Registry code for a run that ended as `ending`. Never a code CloudFormation
/// retries: the run is over, and a retry would only find its stopped tasks again.
pub fn ending_code(ending: Ending) -> HandlerErrorCode {
    handler_kit::failure::ending_code(match ending {
        Ending::TimedOut => Unsuccessful::TimedOut,
        Ending::Rejected { fault } => Unsuccessful::Rejected(fault),
        Ending::Succeeded | Ending::TasksFailed | Ending::Superseded => Unsuccessful::Failed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ecs::{Fault, FaultKind};
    use cfn_protocol::{CredentialsProblem, HandlerError};

    #[test]
    fn maps_errors_to_registry_codes() {
        let aws = |kind| TaskRunError::Aws(Fault::new("ecs:RunTask", kind, "x"));
        let ended = |ending| {
            TaskRunError::Own(RunFailure::RunEnded {
                ending,
                reason: String::new(),
            })
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
                TaskRunError::Own(RunFailure::StopUnconfirmed(String::new())),
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
