//! The ways every resource type's handlers fail, with one table of their Registry codes,
//! and a slot for the failures that are a type's own (with the codes it gives them).

use cfn_protocol::{CredentialsProblem, HandlerError, HandlerErrorCode};

use crate::fault::{fault_code, Fault, FaultKind};
use crate::records::{KeepError, PutError};

/// A resource type's own failures, and how its messages name it.
pub trait OwnFailure: std::fmt::Debug + std::fmt::Display {
    /// The type's name in messages: "`NOUN` 7 not found".
    const NOUN: &'static str;
    /// What a record of the type is called: "`RECORD` of 7 cannot be read".
    const RECORD: &'static str;

    /// The Registry code of this failure.
    fn code(&self) -> HandlerErrorCode;
}

/// Every way a handler of a resource type with own failures `O` can fail.
#[derive(Debug, thiserror::Error)]
pub enum Failure<O: OwnFailure> {
    /// The properties break the schema: every violation, by path.
    #[error("invalid properties: {}", .0.join("; "))]
    InvalidModel(Vec<String>),
    /// The request cannot be done as it stands.
    #[error("{0}")]
    InvalidRequest(String),
    /// The caller's credentials are missing or unusable.
    #[error("invalid credentials: {0}")]
    Credentials(CredentialsProblem),
    /// No resource of this primary identifier.
    #[error("{noun} {0} not found", noun = O::NOUN)]
    NotFound(String),
    /// A resource of this primary identifier exists already.
    #[error("{noun} {0} already exists", noun = O::NOUN)]
    AlreadyExists(String),
    /// A call failed before anything of the operation's own work existed.
    #[error("{0}")]
    Aws(Fault),
    /// The stored record is there but cannot be read.
    #[error("{record} of {id} cannot be read: {why}", record = O::RECORD)]
    CorruptRecord {
        /// The resource's primary identifier.
        id: String,
        /// What is wrong with it (never its content).
        why: String,
    },
    /// A callback of an operation that another operation has since replaced.
    #[error("{0}")]
    Superseded(String),
    /// A bug: what should not happen did.
    #[error("internal error: {0}")]
    Internal(String),
    /// A failure of the type's own.
    #[error("{0}")]
    Own(O),
}

impl<O: OwnFailure> Failure<O> {
    /// What a record of `id` that could not be kept (`Records::keep`) is to its handler.
    pub fn not_kept(id: &str, error: KeepError) -> Self {
        match error {
            KeepError::Superseded(why) => Self::Superseded(format!("{} {why}", O::NOUN)),
            KeepError::Unreadable(why) => Self::CorruptRecord {
                id: id.to_string(),
                why,
            },
            KeepError::TooLarge(why) => Self::InvalidRequest(why),
            KeepError::Store(fault) => Self::Aws(fault),
        }
    }
}

impl<O: OwnFailure> Failure<O> {
    /// How long the driver waits before writing the record of `id` again after this
    /// failure, the `attempt`-th in a row (see `driver::Hands::retry_write_after`). The
    /// write of a run's end (`ending`), throttled (SSM's PutParameter is reportedly about 3
    /// a second for the whole account), is tried again within the invocation after a
    /// short jittered pause: the operation's answer waits for it. Other writes (a run's
    /// plan) are not: their invocation answers IN_PROGRESS and backs off, leaving the
    /// store's tokens to the runs that are ending.
    pub fn rewrite_after(&self, id: &str, now: f64, attempt: u8, ending: bool) -> Option<f64> {
        match self {
            Self::Aws(fault) if ending && fault.kind == FaultKind::Throttled => {
                let jitter = crate::pace::jitter(id, now, attempt);
                Some(crate::pace::spread(1.0, jitter))
            }
            _ => None,
        }
    }
}

impl<O: OwnFailure> From<Fault> for Failure<O> {
    fn from(fault: Fault) -> Self {
        Self::Aws(fault)
    }
}

impl<O: OwnFailure> From<CredentialsProblem> for Failure<O> {
    fn from(problem: CredentialsProblem) -> Self {
        Self::Credentials(problem)
    }
}

/// A record too large to keep is the request's (its properties make it so).
impl<O: OwnFailure> From<PutError> for Failure<O> {
    fn from(error: PutError) -> Self {
        match error {
            PutError::TooLarge(why) => Self::InvalidRequest(why),
            PutError::Store(fault) => Self::Aws(fault),
        }
    }
}

impl<O: OwnFailure> HandlerError for Failure<O> {
    fn code(&self) -> HandlerErrorCode {
        match self {
            Self::InvalidModel(_) | Self::InvalidRequest(_) => HandlerErrorCode::InvalidRequest,
            Self::Credentials(_) => HandlerErrorCode::InvalidCredentials,
            Self::NotFound(_) => HandlerErrorCode::NotFound,
            Self::AlreadyExists(_) => HandlerErrorCode::AlreadyExists,
            Self::Aws(fault) => fault_code(fault.kind),
            Self::CorruptRecord { .. } | Self::Internal(_) => HandlerErrorCode::InternalFailure,
            Self::Superseded(_) => HandlerErrorCode::GeneralServiceException,
            Self::Own(own) => own.code(),
        }
    }
}

/// How a resource's work ended without success, as far as its Registry code goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unsuccessful {
    /// It did not finish in the time it was given.
    TimedOut,
    /// AWS refused a call the work could not go on without.
    Rejected(FaultKind),
    /// Any other end: it failed, or another operation replaced it.
    Failed,
}

/// The Registry code of work that ended without success. Never a code CloudFormation
/// retries: the work is over, and a retry would only find it ended again.
pub fn ending_code(ending: Unsuccessful) -> HandlerErrorCode {
    match ending {
        Unsuccessful::TimedOut => HandlerErrorCode::NotStabilized,
        Unsuccessful::Rejected(fault) if !fault.is_transient() => fault_code(fault),
        Unsuccessful::Rejected(_) | Unsuccessful::Failed => {
            HandlerErrorCode::GeneralServiceException
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("gave up")]
    struct GaveUp;

    impl OwnFailure for GaveUp {
        const NOUN: &'static str = "Widget";
        const RECORD: &'static str = "the widget record";
        fn code(&self) -> HandlerErrorCode {
            HandlerErrorCode::NotStabilized
        }
    }

    #[test]
    fn messages_name_the_type_and_codes_come_from_one_table() {
        let not_found = Failure::<GaveUp>::NotFound("7".into());
        assert_eq!(not_found.to_string(), "Widget 7 not found");
        assert_eq!(not_found.code(), HandlerErrorCode::NotFound);
        let corrupt = Failure::<GaveUp>::CorruptRecord {
            id: "7".into(),
            why: "not JSON".into(),
        };
        assert_eq!(
            corrupt.to_string(),
            "the widget record of 7 cannot be read: not JSON"
        );
        assert_eq!(Failure::Own(GaveUp).code(), HandlerErrorCode::NotStabilized);
        let throttled = Failure::<GaveUp>::from(Fault::new("x:Y", FaultKind::Throttled, "slow"));
        assert_eq!(throttled.code(), HandlerErrorCode::Throttling);
    }

    #[test]
    fn ended_work_never_answers_a_retriable_code() {
        for fault in [
            FaultKind::Throttled,
            FaultKind::ServerSide,
            FaultKind::Network,
        ] {
            for ending in [
                Unsuccessful::Rejected(fault),
                Unsuccessful::Failed,
                Unsuccessful::TimedOut,
            ] {
                assert!(!ending_code(ending).is_transient(), "{ending:?}");
            }
        }
        assert_eq!(
            ending_code(Unsuccessful::Rejected(FaultKind::AccessDenied)),
            HandlerErrorCode::AccessDenied
        );
    }
}
