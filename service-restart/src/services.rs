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
    /// IN_PROGRESS, COMPLETED or FAILED; `None` for the services ECS gives none for
    /// (ECS API Reference, "Deployment": "The rolloutState of a service is only returned
    /// for services that use the rolling update (ECS) deployment type that aren't behind
    /// a Classic Load Balancer.").
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

/// The deployment controller types UpdateService cannot force a new deployment of: for
/// them the ECS API Reference ("UpdateService") lists what UpdateService may change, and
/// `forceNewDeployment` is not in either list (CODE_DEPLOY: "create a new CodeDeploy
/// deployment"; EXTERNAL: "create a new task set").
pub const CODE_DEPLOY: &str = "CODE_DEPLOY";
pub const EXTERNAL: &str = "EXTERNAL";

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServiceState {
    pub arn: String,
    pub deployments: Vec<Deployment>,
    pub events: Vec<ServiceEvent>,
    /// `deploymentController.type`: ECS, CODE_DEPLOY or EXTERNAL (`None`: not shown,
    /// which is ECS, the default of CreateService).
    pub controller: Option<String>,
    /// The `loadBalancerName` of each Classic Load Balancer the service is behind (ECS
    /// API Reference, "LoadBalancer": an Application or Network Load Balancer is named
    /// by `targetGroupArn`, and "the load balancer name parameter should be omitted").
    pub classic_load_balancers: Vec<String>,
    /// `deploymentConfiguration.lifecycleHooks` is not empty: a deployment may wait at a
    /// hook (ECS Developer Guide, "Lifecycle hooks for Amazon ECS service deployments").
    pub lifecycle_hooks: bool,
    /// `currentServiceDeployment`: the ARN of the service deployment that
    /// DescribeServiceDeployments tells the lifecycle stage and hooks of.
    pub current_service_deployment: Option<String>,
}

impl ServiceState {
    pub fn primary(&self) -> Option<&Deployment> {
        self.deployments.iter().find(|d| d.status == "PRIMARY")
    }

    /// CODE_DEPLOY or EXTERNAL: a controller whose deployments UpdateService cannot start.
    pub fn foreign_controller(&self) -> Option<&str> {
        self.controller
            .as_deref()
            .filter(|c| *c == CODE_DEPLOY || *c == EXTERNAL)
    }
}

/// One lifecycle hook of a service deployment, as DescribeServiceDeployments shows it in
/// `lifecycleHookDetails` (ECS Developer Guide, "Lifecycle hooks for Amazon ECS service
/// deployments", "Lifecycle hook details").
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LifecycleHook {
    /// What ContinueServiceDeployment takes to continue or roll back a PAUSE hook.
    pub id: String,
    /// AWS_LAMBDA or PAUSE.
    pub target_type: String,
    /// The Lambda function of an AWS_LAMBDA hook.
    pub target_arn: Option<String>,
    /// AWAITING_ACTION, IN_PROGRESS, SUCCEEDED, FAILED or TIMED_OUT.
    pub status: String,
    /// When ECS takes `timeout_action` if the hook has not finished.
    pub expires_at: Option<f64>,
    /// CONTINUE or ROLLBACK.
    pub timeout_action: Option<String>,
}

/// A service deployment (DescribeServiceDeployments): where it is in its lifecycle.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServiceDeploymentState {
    pub arn: String,
    /// PENDING, IN_PROGRESS, SUCCESSFUL, STOPPED, ROLLBACK_..., ...
    pub status: String,
    /// RECONCILE_SERVICE, PRE_SCALE_UP, ..., BAKE_TIME, CLEAN_UP.
    pub lifecycle_stage: Option<String>,
    pub hooks: Vec<LifecycleHook>,
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

    /// DescribeServiceDeployments of one service deployment, or `None` when ECS does not
    /// know it.
    fn describe_service_deployment(
        &self,
        arn: &str,
        by: f64,
    ) -> impl Future<Output = Result<Option<ServiceDeploymentState>, Fault>> + Send;
}
