//! AWS clients for one request: a base configuration loaded once per process (it reads
//! `AWS_ENDPOINT_URL`, so the same binary runs against a local emulator), then per request
//! the caller's credentials and region on top of it. Never the environment's credentials:
//! a request without usable caller credentials is refused before any client is built.
//!
//! Also the classification of SDK errors into the plain [`Fault`] the engine reads.

use std::future::Future;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use cfn_protocol::HandlerRequest;
use tokio::sync::OnceCell;

use cfn_protocol::CredentialsProblem;

use crate::clock::{Clock, SystemClock};
use crate::fault::{Fault, FaultKind};

const FALLBACK_REGION: &str = "us-east-1";

/// The HTTP client every AWS client of this crate uses (rustls with ring).
pub fn https_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
    // ring instead of aws-lc: the same TLS, a fraction of the cold-start cost.
    aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

pub async fn base_config() -> &'static SdkConfig {
    static BASE: OnceCell<SdkConfig> = OnceCell::const_new();
    BASE.get_or_init(|| async {
        // Lambda always sets AWS_REGION; the SDK's own region chain would also ask the
        // instance metadata service, which is never wanted here.
        let region = ["AWS_REGION", "AWS_DEFAULT_REGION"]
            .iter()
            .find_map(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
            .unwrap_or_else(|| FALLBACK_REGION.to_string());
        aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(region))
            .http_client(https_client())
            // No credentials chain: every request brings its caller's.
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                "unset", "unset", None, None, "unset",
            )))
            // Standard, not adaptive: the adaptive mode's client-side limiter, once it has
            // met throttling, holds calls back for longer than an invocation has (seen:
            // DescribeTasks cut at the invocation's deadline). Throttling beyond the SDK's
            // three attempts is backed off by the lifecycles themselves, with full jitter
            // across callbacks (`handler_kit::pace`).
            .retry_config(RetryConfig::standard().with_max_attempts(3))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(5))
                    .operation_attempt_timeout(Duration::from_secs(8))
                    .operation_timeout(Duration::from_secs(20))
                    .build(),
            )
            .load()
            .await
    })
    .await
}

/// A configuration that acts with the request's caller credentials in its region.
pub async fn config_for(request: &HandlerRequest) -> Result<SdkConfig, CredentialsProblem> {
    let caller = request.caller_credentials()?;
    let base = base_config().await;
    let mut builder = base.to_builder();
    if let Some(region) = request.region.as_deref().filter(|r| valid_region(r)) {
        builder = builder.region(Region::new(region.to_string()));
    }
    builder = builder.credentials_provider(SharedCredentialsProvider::new(Credentials::new(
        caller.access_key_id,
        caller.secret_access_key,
        caller.session_token.map(str::to_string),
        None,
        "cloudformation-caller",
    )));
    Ok(builder.build())
}

/// An SSM client for `config` (the kit's SDK, so that users need not depend on it).
pub fn ssm_client(config: &SdkConfig) -> aws_sdk_ssm::Client {
    aws_sdk_ssm::Client::new(config)
}

/// A region name goes into the endpoint's host name: letters, digits and dashes only.
pub fn valid_region(region: &str) -> bool {
    !region.is_empty()
        && region.len() <= 32
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Classifies an SDK error: a call that never got an answer (no connection, a timeout)
/// may have acted; an answer is read by [`Fault::from_service`], as the twins' are.
pub fn fault<E>(operation: &'static str, err: SdkError<E, HttpResponse>) -> Fault
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = err.raw_response().map(|r| r.status().as_u16());
    let unanswered = |kind: FaultKind, acted: bool| {
        let mut fault = Fault::new(operation, kind, DisplayErrorContext(&err).to_string());
        fault.may_have_acted = acted;
        fault
    };
    match &err {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => {
            unanswered(FaultKind::Network, true)
        }
        SdkError::ConstructionFailure(_) => unanswered(FaultKind::Other, false),
        // An answer that could not be read (not the service's error format) may follow
        // an action; a 5xx is classified by its status below.
        SdkError::ResponseError(_) if !status.is_some_and(|s| (500..600).contains(&s)) => {
            let mut fault = Fault::from_service(operation, err.code(), err.message(), status);
            fault.kind = FaultKind::Other;
            fault.may_have_acted = true;
            fault
        }
        _ => Fault::from_service(operation, err.code(), err.message(), status),
    }
}

/// Runs `call`, which must return by `by` (epoch seconds): a call that does not is
/// abandoned as a network fault that may have acted.
pub async fn by_deadline<T>(
    operation: &'static str,
    by: f64,
    call: impl Future<Output = Result<T, Fault>>,
) -> Result<T, Fault> {
    let left = (by - SystemClock.now()).max(0.0);
    match tokio::time::timeout(Duration::from_secs_f64(left), call).await {
        Ok(answer) => answer,
        Err(_) => Err(Fault::new(
            operation,
            FaultKind::Network,
            format!("no answer within the {left:.0} s this invocation had left"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_error_codes() {
        for (code, want) in [
            (Some("ThrottlingException"), FaultKind::Throttled),
            (Some("ClusterNotFoundException"), FaultKind::ClusterNotFound),
            (Some("ParameterNotFound"), FaultKind::NotFound),
            (Some("InvalidParameterException"), FaultKind::BadRequest),
            (Some("ExpiredTokenException"), FaultKind::BadCredentials),
            (Some("Mystery"), FaultKind::Other),
            (None, FaultKind::Other),
        ] {
            assert_eq!(
                crate::fault::kind_of_code(code.unwrap_or_default()),
                want,
                "{code:?}"
            );
        }
    }

    #[test]
    fn regions_must_be_host_name_safe() {
        assert!(valid_region("eu-west-1"));
        assert!(!valid_region("eu-west-1.evil.example"));
        assert!(!valid_region(""));
    }
}
