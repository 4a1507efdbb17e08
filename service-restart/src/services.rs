//! The ECS gateway of a restart, as plain data in and out: the SDK implementation lives
//! in `services_sdk.rs`, an in-memory one in `sim.rs`.

use std::future::Future;

pub use handler_kit::fault::{Fault, FaultKind};

/// One deployment of a service, as DescribeServices shows it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Deployment {
    pub id: String,
    /// PRIMARY, ACTIVE or INACTIVE.
    pub status: String,
    /// IN_PROGRESS, COMPLETED or FAILED.
    pub rollout_state: Option<String>,
    pub rollout_reason: Option<String>,
    pub desired: i32,
    pub running: i32,
    pub pending: i32,
    pub failed_tasks: i32,
    /// Seconds since the epoch.
    pub created_at: Option<f64>,
}

/// One service event (newest first, as ECS lists them).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServiceEvent {
    pub at: f64,
    pub message: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServiceState {
    pub arn: String,
    pub deployments: Vec<Deployment>,
    pub events: Vec<ServiceEvent>,
}

impl ServiceState {
    pub fn primary(&self) -> Option<&Deployment> {
        self.deployments.iter().find(|d| d.status == "PRIMARY")
    }
}

pub trait Services: Sync {
    /// The service, or `None` when the cluster has no active service of that name.
    fn describe_service(
        &self,
        cluster: &str,
        service: &str,
        by: f64,
    ) -> impl Future<Output = Result<Option<ServiceState>, Fault>> + Send;

    /// UpdateService with forceNewDeployment. Never retried by the gateway: a retry could
    /// start a second deployment.
    fn force_new_deployment(
        &self,
        cluster: &str,
        service: &str,
        by: f64,
    ) -> impl Future<Output = Result<ServiceState, Fault>> + Send;
}
