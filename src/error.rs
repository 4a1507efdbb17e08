//! Every way a handler can fail, and the one place where each becomes a Registry error code.

use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use cfn_protocol::HandlerErrorCode;

#[derive(Debug, thiserror::Error)]
pub enum TaskRunError {
    #[error("{0}")]
    BadEnvelope(String),
    #[error("invalid properties: {}", .0.join("; "))]
    InvalidModel(Vec<String>),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("TaskRun {0} not found")]
    NotFound(String),
    #[error("{operation} failed: {message}")]
    Aws {
        operation: &'static str,
        kind: AwsErrorKind,
        message: String,
    },
    #[error("the run record of {id} cannot be read: {why}")]
    CorruptRecord { id: String, why: String },
    #[error("{0}")]
    TaskFailed(String),
    #[error("{0}")]
    TimedOut(String),
    #[error("{0}")]
    Conflict(String),
    #[error("internal error: {0}")]
    Internal(String),
}

/// What an AWS error means for CloudFormation, read from its error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AwsErrorKind {
    Throttled,
    AccessDenied,
    BadCredentials,
    BadRequest,
    NotFound,
    LimitExceeded,
    ServerSide,
    Network,
    Other,
}

impl AwsErrorKind {
    pub fn from_code(code: Option<&str>) -> Self {
        match code.unwrap_or_default() {
            "ThrottlingException"
            | "Throttling"
            | "ThrottledException"
            | "TooManyRequestsException"
            | "RequestLimitExceeded"
            | "TooManyUpdates" => Self::Throttled,
            "AccessDeniedException" | "AccessDenied" | "UnauthorizedOperation" => {
                Self::AccessDenied
            }
            "UnrecognizedClientException"
            | "InvalidClientTokenId"
            | "ExpiredTokenException"
            | "ExpiredToken"
            | "InvalidSignatureException"
            | "IncompleteSignature" => Self::BadCredentials,
            "ClusterNotFoundException"
            | "InvalidParameterException"
            | "ClientException"
            | "PlatformUnknownException"
            | "PlatformTaskDefinitionIncompatibilityException"
            | "UnsupportedFeatureException"
            | "ValidationException"
            | "BlockedException"
            | "ConflictException"
            | "InvalidNextToken" => Self::BadRequest,
            "ParameterNotFound" => Self::NotFound,
            "ParameterLimitExceeded" | "LimitExceededException" | "TooManyTagsException" => {
                Self::LimitExceeded
            }
            "ServerException"
            | "InternalServerError"
            | "InternalFailure"
            | "InternalError"
            | "ServiceUnavailable"
            | "ServiceUnavailableException" => Self::ServerSide,
            _ => Self::Other,
        }
    }
}

impl TaskRunError {
    /// Classifies an SDK error of any AWS operation.
    pub fn aws<E, R>(
        operation: &'static str,
        err: aws_smithy_runtime_api::client::result::SdkError<E, R>,
    ) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        use aws_smithy_runtime_api::client::result::SdkError;
        let kind = match &err {
            SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => AwsErrorKind::Network,
            // ECS reports missing permissions (iam:PassRole, say) as a ClientException.
            _ if err.code() == Some("ClientException")
                && err.message().is_some_and(|m| m.contains("not authorized")) =>
            {
                AwsErrorKind::AccessDenied
            }
            _ => AwsErrorKind::from_code(err.code()),
        };
        let message = match (err.code(), err.message()) {
            (Some(code), Some(message)) => format!("{code}: {message}"),
            (Some(code), None) => code.to_string(),
            _ => DisplayErrorContext(&err).to_string(),
        };
        Self::Aws {
            operation,
            kind,
            message,
        }
    }

    /// The Registry error code CloudFormation gets for this error.
    pub fn code(&self) -> HandlerErrorCode {
        match self {
            Self::BadEnvelope(_) | Self::InvalidModel(_) | Self::InvalidRequest(_) => {
                HandlerErrorCode::InvalidRequest
            }
            Self::NotFound(_) => HandlerErrorCode::NotFound,
            Self::Aws { kind, .. } => match kind {
                AwsErrorKind::Throttled => HandlerErrorCode::Throttling,
                AwsErrorKind::AccessDenied => HandlerErrorCode::AccessDenied,
                AwsErrorKind::BadCredentials => HandlerErrorCode::InvalidCredentials,
                AwsErrorKind::BadRequest => HandlerErrorCode::InvalidRequest,
                AwsErrorKind::NotFound => HandlerErrorCode::NotFound,
                AwsErrorKind::LimitExceeded => HandlerErrorCode::ServiceLimitExceeded,
                AwsErrorKind::ServerSide => HandlerErrorCode::ServiceInternalError,
                AwsErrorKind::Network => HandlerErrorCode::NetworkFailure,
                AwsErrorKind::Other => HandlerErrorCode::GeneralServiceException,
            },
            Self::CorruptRecord { .. } | Self::Internal(_) => HandlerErrorCode::InternalFailure,
            Self::TaskFailed(_) => HandlerErrorCode::GeneralServiceException,
            Self::TimedOut(_) => HandlerErrorCode::NotStabilized,
            Self::Conflict(_) => HandlerErrorCode::ResourceConflict,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_errors_to_registry_codes() {
        let aws = |kind| TaskRunError::Aws {
            operation: "RunTask",
            kind,
            message: String::new(),
        };
        let cases = [
            (
                TaskRunError::InvalidModel(vec![]),
                HandlerErrorCode::InvalidRequest,
            ),
            (
                TaskRunError::BadEnvelope(String::new()),
                HandlerErrorCode::InvalidRequest,
            ),
            (
                TaskRunError::NotFound("x".into()),
                HandlerErrorCode::NotFound,
            ),
            (
                aws(AwsErrorKind::from_code(Some("ThrottlingException"))),
                HandlerErrorCode::Throttling,
            ),
            (
                aws(AwsErrorKind::from_code(Some("AccessDeniedException"))),
                HandlerErrorCode::AccessDenied,
            ),
            (
                aws(AwsErrorKind::from_code(Some("ClusterNotFoundException"))),
                HandlerErrorCode::InvalidRequest,
            ),
            (
                aws(AwsErrorKind::from_code(Some("ServerException"))),
                HandlerErrorCode::ServiceInternalError,
            ),
            (
                aws(AwsErrorKind::from_code(Some("ParameterNotFound"))),
                HandlerErrorCode::NotFound,
            ),
            (
                aws(AwsErrorKind::from_code(Some("ExpiredTokenException"))),
                HandlerErrorCode::InvalidCredentials,
            ),
            (
                aws(AwsErrorKind::from_code(Some("Mystery"))),
                HandlerErrorCode::GeneralServiceException,
            ),
            (
                aws(AwsErrorKind::from_code(None)),
                HandlerErrorCode::GeneralServiceException,
            ),
            (aws(AwsErrorKind::Network), HandlerErrorCode::NetworkFailure),
            (
                TaskRunError::TimedOut(String::new()),
                HandlerErrorCode::NotStabilized,
            ),
            (
                TaskRunError::TaskFailed(String::new()),
                HandlerErrorCode::GeneralServiceException,
            ),
        ];
        for (error, want) in cases {
            assert_eq!(error.code(), want, "{error:?}");
        }
    }
}
