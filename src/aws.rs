//! AWS clients for one request: a base configuration loaded once per process (it reads
//! `AWS_ENDPOINT_URL`, so the same binary runs against a local emulator), then per request
//! the caller's credentials and region on top of it.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use cfn_protocol::HandlerRequest;
use tokio::sync::OnceCell;

const FALLBACK_REGION: &str = "us-east-1";

#[derive(Clone, Debug)]
pub struct Clients {
    pub ecs: aws_sdk_ecs::Client,
    pub ssm: aws_sdk_ssm::Client,
}

impl Clients {
    pub fn from_config(config: &SdkConfig) -> Self {
        Self {
            ecs: aws_sdk_ecs::Client::new(config),
            ssm: aws_sdk_ssm::Client::new(config),
        }
    }
}

/// The HTTP client every AWS client of this crate uses (rustls with ring).
pub fn https_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
    // ring instead of aws-lc: the same TLS, a fraction of the cold-start cost.
    aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

async fn base_config() -> &'static SdkConfig {
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
            .retry_config(RetryConfig::standard().with_max_attempts(4))
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

/// Clients that act with the request's caller credentials in the request's region.
/// Without caller credentials (a local test event) the process's own chain is used.
pub async fn clients_for(request: &HandlerRequest) -> Clients {
    let base = base_config().await;
    let mut builder = base.to_builder();
    if let Some(region) = request.region.as_deref().filter(|r| !r.is_empty()) {
        builder = builder.region(Region::new(region.to_string()));
    }
    let caller = request.request_data.caller_credentials.as_ref();
    if let Some((key, secret)) = caller.and_then(|c| {
        c.access_key_id
            .as_deref()
            .filter(|k| !k.is_empty())
            .zip(c.secret_access_key.as_deref())
    }) {
        let token = caller.and_then(|c| c.session_token.clone());
        builder = builder.credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            key,
            secret,
            token,
            None,
            "cloudformation-caller",
        )));
    }
    Clients::from_config(&builder.build())
}
