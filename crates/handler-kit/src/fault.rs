//! A failed call to an AWS service, as plain data: what kind of failure, and whether the
//! service may have acted before it failed.

use cfn_protocol::HandlerErrorCode;

/// What an AWS error means for the caller, read from its error code and HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum FaultKind {
    Throttled,
    AccessDenied,
    BadCredentials,
    BadRequest,
    ClusterNotFound,
    NotFound,
    LimitExceeded,
    ServerSide,
    Network,
    Other,
}

impl FaultKind {
    /// A passing condition: the same call may well succeed later.
    pub fn is_transient(self) -> bool {
        matches!(self, Self::Throttled | Self::ServerSide | Self::Network)
    }
}

/// A failed call: what kind of failure, whether the service may have carried the call out
/// before failing (a 5xx or a timeout after the request left), and a readable message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub operation: &'static str,
    pub kind: FaultKind,
    pub may_have_acted: bool,
    pub message: String,
}

impl Fault {
    pub fn new(operation: &'static str, kind: FaultKind, message: impl Into<String>) -> Self {
        Self {
            operation,
            kind,
            // Only a throttling answer or a refused request say for sure that nothing
            // happened; a server error or a timeout may come after the work was done.
            may_have_acted: matches!(kind, FaultKind::ServerSide | FaultKind::Network),
            message: message.into(),
        }
    }

    pub fn is_transient(&self) -> bool {
        self.kind.is_transient()
    }
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} failed: {}", self.operation, self.message)
    }
}

/// The Registry code for a failed call.
pub fn fault_code(kind: FaultKind) -> HandlerErrorCode {
    match kind {
        FaultKind::Throttled => HandlerErrorCode::Throttling,
        FaultKind::AccessDenied => HandlerErrorCode::AccessDenied,
        FaultKind::BadCredentials => HandlerErrorCode::InvalidCredentials,
        // An unknown cluster or task definition is a mistake in the properties.
        FaultKind::BadRequest | FaultKind::ClusterNotFound => HandlerErrorCode::InvalidRequest,
        FaultKind::NotFound => HandlerErrorCode::NotFound,
        FaultKind::LimitExceeded => HandlerErrorCode::ServiceLimitExceeded,
        FaultKind::ServerSide => HandlerErrorCode::ServiceInternalError,
        FaultKind::Network => HandlerErrorCode::NetworkFailure,
        FaultKind::Other => HandlerErrorCode::GeneralServiceException,
    }
}
