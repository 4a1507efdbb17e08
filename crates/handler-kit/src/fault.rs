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

    /// A fault from what an AWS service answered: its error code, message and HTTP status.
    /// The one reading of AWS's answers, shared by the SDK gateways and the in-memory twins
    /// (which answer with AWS's codes and messages), so both are classified alike.
    pub fn from_service(
        operation: &'static str,
        code: Option<&str>,
        message: Option<&str>,
        status: Option<u16>,
    ) -> Self {
        let text = message.unwrap_or_default();
        let (kind, acted) = match code.unwrap_or_default() {
            // Any 5xx is the service's fault, whatever its body (a load balancer's HTML
            // page included); it may come after the work was done.
            _ if status.is_some_and(|s| (500..600).contains(&s)) => (FaultKind::ServerSide, true),
            // ECS reports missing permissions (iam:PassRole, say) as a ClientException.
            "ClientException" if text.contains("not authorized") => {
                (FaultKind::AccessDenied, false)
            }
            // ECS API Reference, RunTask, Errors: "If you get a ClientException error, the
            // RunTask could not be processed because you use managed scaling and there is a
            // capacity error because the quota of tasks in the PROVISIONING per cluster has
            // been reached." A passing condition: nothing was started, and the same call
            // (same client token) succeeds once tasks leave PROVISIONING. The exact wording
            // of the message is not documented (unverified): any ClientException naming
            // PROVISIONING is taken as this one.
            "ClientException" if text.to_ascii_uppercase().contains("PROVISIONING") => {
                (FaultKind::Throttled, false)
            }
            other => (kind_of_code(other), false),
        };
        let readable = match (code, message) {
            (Some(code), Some(message)) => format!("{code}: {message}"),
            (Some(code), None) => code.to_string(),
            (None, Some(message)) => message.to_string(),
            (None, None) => match status {
                Some(status) => format!("HTTP {status}"),
                None => "no error code".to_string(),
            },
        };
        let mut fault = Fault::new(operation, kind, readable);
        fault.may_have_acted = acted;
        fault
    }
}

/// What an AWS error code means for the caller.
pub fn kind_of_code(code: &str) -> FaultKind {
    match code {
        "ThrottlingException"
        | "Throttling"
        | "ThrottledException"
        | "TooManyRequestsException"
        | "RequestLimitExceeded"
        // SSM PutParameter: "There are concurrent updates for a resource that supports one
        // update at a time" (SSM API Reference, PutParameter, Errors): passing.
        | "TooManyUpdates" => FaultKind::Throttled,
        "AccessDeniedException" | "AccessDenied" | "UnauthorizedOperation" => {
            FaultKind::AccessDenied
        }
        "UnrecognizedClientException"
        | "InvalidClientTokenId"
        | "ExpiredTokenException"
        | "ExpiredToken"
        | "InvalidSignatureException"
        | "IncompleteSignature" => FaultKind::BadCredentials,
        "ClusterNotFoundException" => FaultKind::ClusterNotFound,
        "InvalidParameterException"
        | "ClientException"
        | "PlatformUnknownException"
        | "PlatformTaskDefinitionIncompatibilityException"
        | "UnsupportedFeatureException"
        | "ValidationException"
        | "BlockedException"
        | "ConflictException"
        | "InvalidNextToken" => FaultKind::BadRequest,
        "ParameterNotFound" | "ResourceNotFoundException" => FaultKind::NotFound,
        "ParameterLimitExceeded" | "LimitExceededException" | "TooManyTagsException" => {
            FaultKind::LimitExceeded
        }
        "ServerException"
        | "InternalServerError"
        | "InternalFailure"
        | "InternalError"
        | "ServiceUnavailable"
        | "ServiceUnavailableException" => FaultKind::ServerSide,
        _ => FaultKind::Other,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_aws_answered() {
        let cases = [
            // (code, message, status, kind, may have acted)
            (
                Some("ThrottlingException"),
                Some("Rate exceeded"),
                Some(400),
                FaultKind::Throttled,
                false,
            ),
            (
                Some("TooManyUpdates"),
                None,
                Some(400),
                FaultKind::Throttled,
                false,
            ),
            (
                Some("ClientException"),
                Some("User: x is not authorized to perform: iam:PassRole"),
                Some(400),
                FaultKind::AccessDenied,
                false,
            ),
            // RunTask under managed scaling: the PROVISIONING quota passes.
            (
                Some("ClientException"),
                Some("The quota of tasks in the PROVISIONING state per cluster has been reached."),
                Some(400),
                FaultKind::Throttled,
                false,
            ),
            (
                Some("ClientException"),
                Some("Unable to describe task definition."),
                Some(400),
                FaultKind::BadRequest,
                false,
            ),
            (
                Some("InvalidParameterException"),
                Some("Some tags contain invalid characters."),
                Some(400),
                FaultKind::BadRequest,
                false,
            ),
            (
                Some("ClusterNotFoundException"),
                None,
                Some(400),
                FaultKind::ClusterNotFound,
                false,
            ),
            (None, None, Some(503), FaultKind::ServerSide, true),
            (
                Some("InvalidParameterException"),
                None,
                Some(500),
                FaultKind::ServerSide,
                true,
            ),
        ];
        for (code, message, status, kind, acted) in cases {
            let fault = Fault::from_service("ecs:RunTask", code, message, status);
            assert_eq!(
                (fault.kind, fault.may_have_acted),
                (kind, acted),
                "{code:?} {message:?}"
            );
        }
    }
}
