use serde::Serialize;

/// The error codes the Registry understands in a FAILED progress event.
///
/// CloudFormation reacts to some of them (it treats `NotFound` on DELETE as done,
/// retries `Throttling`), so a handler must pick them with care.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum HandlerErrorCode {
    NotUpdatable,
    InvalidRequest,
    AccessDenied,
    UnauthorizedTaggingOperation,
    InvalidCredentials,
    AlreadyExists,
    NotFound,
    ResourceConflict,
    Throttling,
    ServiceLimitExceeded,
    NotStabilized,
    GeneralServiceException,
    ServiceInternalError,
    NetworkFailure,
    InternalFailure,
    InvalidTypeConfiguration,
    HandlerInternalFailure,
    NonCompliant,
    Unknown,
}

impl HandlerErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotUpdatable => "NotUpdatable",
            Self::InvalidRequest => "InvalidRequest",
            Self::AccessDenied => "AccessDenied",
            Self::UnauthorizedTaggingOperation => "UnauthorizedTaggingOperation",
            Self::InvalidCredentials => "InvalidCredentials",
            Self::AlreadyExists => "AlreadyExists",
            Self::NotFound => "NotFound",
            Self::ResourceConflict => "ResourceConflict",
            Self::Throttling => "Throttling",
            Self::ServiceLimitExceeded => "ServiceLimitExceeded",
            Self::NotStabilized => "NotStabilized",
            Self::GeneralServiceException => "GeneralServiceException",
            Self::ServiceInternalError => "ServiceInternalError",
            Self::NetworkFailure => "NetworkFailure",
            Self::InternalFailure => "InternalFailure",
            Self::InvalidTypeConfiguration => "InvalidTypeConfiguration",
            Self::HandlerInternalFailure => "HandlerInternalFailure",
            Self::NonCompliant => "NonCompliant",
            Self::Unknown => "Unknown",
        }
    }

    /// Codes that describe a passing condition: the same call may well succeed later.
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            Self::Throttling | Self::NetworkFailure | Self::ServiceInternalError
        )
    }
}

impl std::fmt::Display for HandlerErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
