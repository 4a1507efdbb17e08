//! Every request the ServiceRestart handlers send, as AWS receives it (see
//! `test_support::wire`): the property scenarios run over the in-memory ECS and store
//! (`service_restart::sim`); with a [`Wire`] on, each call is also made through the real
//! SDK gateways (`SdkServices`, `SsmStore`) and checked as AWS would.

use std::sync::Arc;

use cfn_protocol::{CredentialsProblem, HandlerRequest};
use handler_kit::clock::VirtualClock;
use handler_kit::resource::Backend;
use handler_kit::store::MemoryStore;
use service_restart::services::{Fault, ServiceDeploymentState, ServiceState, Services};
use service_restart::services_sdk::SdkServices;
use service_restart::sim::{SimBackend, SimServices};
use test_support::wire::Recorded;

/// The serialized requests, and the SDK clients that make them.
pub type Wire = test_support::wire::Wire<SdkServices>;

/// A wire with what the production backend builds (`services_sdk::AwsBackend::connect`).
pub fn new() -> Wire {
    Wire::new("Org::ECS::ServiceRestart record", |parts| SdkServices {
        client: aws_sdk_ecs::Client::from_conf(test_support::sdk_config!(aws_sdk_ecs, parts)),
    })
}

/// The ECS twin, with every call also made on the wire when a [`Wire`] is on.
#[derive(Clone)]
pub struct RecordedServices {
    pub inner: SimServices,
    pub wire: Option<Arc<Wire>>,
}

impl Services for RecordedServices {
    async fn describe_service(
        &self,
        cluster: &str,
        service: &str,
        by: f64,
    ) -> Result<Option<ServiceState>, Fault> {
        if let Some(w) = &self.wire {
            w.send(w.ecs.describe_service(cluster, service, w.by()));
        }
        self.inner.describe_service(cluster, service, by).await
    }

    async fn force_new_deployment(
        &self,
        cluster: &str,
        service: &str,
        by: f64,
    ) -> Result<ServiceState, Fault> {
        if let Some(w) = &self.wire {
            w.send(w.ecs.force_new_deployment(cluster, service, w.by()));
        }
        self.inner.force_new_deployment(cluster, service, by).await
    }

    async fn describe_service_deployment(
        &self,
        arn: &str,
        by: f64,
    ) -> Result<Option<ServiceDeploymentState>, Fault> {
        if let Some(w) = &self.wire {
            w.send(w.ecs.describe_service_deployment(arn, w.by()));
        }
        self.inner.describe_service_deployment(arn, by).await
    }
}

/// The simulation's backend, each call also on the wire when a [`Wire`] is on.
#[derive(Clone)]
pub struct WireBackend {
    pub sim: SimBackend,
    pub wire: Option<Arc<Wire>>,
}

impl Backend for WireBackend {
    type Gateway = RecordedServices;
    type Store = Recorded<Arc<MemoryStore>, SdkServices>;
    type Clock = VirtualClock;

    async fn connect(
        &self,
        request: &HandlerRequest,
    ) -> Result<(Self::Gateway, Self::Store), CredentialsProblem> {
        let (services, store) = self.sim.connect(request).await?;
        Ok((
            RecordedServices {
                inner: services,
                wire: self.wire.clone(),
            },
            Recorded {
                inner: store,
                wire: self.wire.clone(),
            },
        ))
    }

    fn clock(&self) -> &VirtualClock {
        self.sim.clock()
    }
}
