//! The production backend of a resource type: its gateway over the AWS SDK, its records in
//! SSM Parameter Store and its events to EventBridge, all with the caller's credentials, on
//! the system clock.

use std::marker::PhantomData;

/// The AWS configuration a gateway is built from (with the caller's credentials).
pub use aws_config::SdkConfig;
use cfn_protocol::{CredentialsProblem, HandlerRequest};

use crate::clock::SystemClock;
use crate::events::{EventSink, NoEvents, SdkEvents};
use crate::resource::Backend;
use crate::ssm::SsmStore;

/// A resource type's gateway, made from the caller's AWS configuration.
pub trait FromSdkConfig {
    /// The gateway's clients, built from `config`.
    fn from_config(config: &SdkConfig) -> Self;
}

/// The production backend of a type whose gateway is `G`.
pub struct AwsBackend<G> {
    /// The description of the record parameters, e.g. "Org::Widget::Thing record".
    pub record_description: &'static str,
    gateway: PhantomData<fn() -> G>,
}

impl<G> AwsBackend<G> {
    /// The backend whose record parameters are described as `record_description`.
    pub const fn new(record_description: &'static str) -> Self {
        Self {
            record_description,
            gateway: PhantomData,
        }
    }
}

impl<G: FromSdkConfig + Send + Sync> Backend for AwsBackend<G> {
    type Gateway = G;
    type Store = SsmStore;
    type Clock = SystemClock;

    async fn connect(&self, request: &HandlerRequest) -> Result<(G, SsmStore), CredentialsProblem> {
        let config = crate::aws::config_for(request).await?;
        Ok((
            G::from_config(&config),
            SsmStore {
                client: crate::aws::ssm_client(&config),
                description: self.record_description,
            },
        ))
    }

    fn clock(&self) -> &SystemClock {
        &SystemClock
    }

    async fn events(&self, request: &HandlerRequest) -> Box<dyn EventSink> {
        // Built per request, with the caller's credentials: the events are the caller's
        // (its account's bus, its events:PutEvents permission). Without usable credentials
        // `connect` has refused the request already.
        match crate::aws::config_for(request).await {
            Ok(config) => Box::new(SdkEvents::new(&config)),
            Err(_) => Box::new(NoEvents),
        }
    }
}
