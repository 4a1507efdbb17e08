//! The ECS gateway of a restart over the AWS SDK, and the production backend.

use std::time::SystemTime;

use handler_kit::aws::{by_deadline, fault};
use handler_kit::aws_backend::{AwsBackend, FromSdkConfig, SdkConfig};
use serde_json::Value;

use crate::resource::ServiceRestart;
use crate::services::{
    Deployment, Fault, FaultKind, LifecycleHook, ServiceDeploymentState, ServiceEvent,
    ServiceState, Services,
};

#[derive(Clone, Debug)]
pub struct SdkServices {
    pub client: aws_sdk_ecs::Client,
}

fn seconds(time: Option<&aws_sdk_ecs::primitives::DateTime>) -> Option<f64> {
    time.map(|t| t.as_secs_f64())
}

fn state(service: &aws_sdk_ecs::types::Service) -> ServiceState {
    ServiceState {
        arn: service.service_arn().unwrap_or_default().to_string(),
        deployments: service
            .deployments()
            .iter()
            .map(|d| Deployment {
                id: d.id().unwrap_or_default().to_string(),
                status: d.status().unwrap_or_default().to_string(),
                rollout_state: d.rollout_state().map(|s| s.as_str().to_string()),
                rollout_reason: d.rollout_state_reason().map(str::to_string),
                desired: d.desired_count(),
                running: d.running_count(),
                pending: d.pending_count(),
                failed_tasks: d.failed_tasks(),
                created_at: seconds(d.created_at()),
            })
            .collect(),
        events: service
            .events()
            .iter()
            .map(|e| ServiceEvent {
                at: seconds(e.created_at()).unwrap_or_default(),
                message: e.message().unwrap_or_default().to_string(),
            })
            .collect(),
        controller: service
            .deployment_controller()
            .map(|c| c.r#type().as_str().to_string()),
        classic_load_balancers: service
            .load_balancers()
            .iter()
            .filter_map(|lb| lb.load_balancer_name())
            .map(str::to_string)
            .collect(),
        lifecycle_hooks: service
            .deployment_configuration()
            .is_some_and(|c| !c.lifecycle_hooks().is_empty()),
        current_service_deployment: service.current_service_deployment().map(str::to_string),
    }
}

fn service_deployment(d: &aws_sdk_ecs::types::ServiceDeployment) -> ServiceDeploymentState {
    ServiceDeploymentState {
        arn: d.service_deployment_arn().unwrap_or_default().to_string(),
        status: d
            .status()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        lifecycle_stage: d.lifecycle_stage().map(|s| s.as_str().to_string()),
        hooks: d
            .lifecycle_hook_details()
            .iter()
            .map(|h| LifecycleHook {
                id: h.hook_id().unwrap_or_default().to_string(),
                target_type: h
                    .target_type()
                    .map(|t| t.as_str().to_string())
                    .unwrap_or_default(),
                target_arn: h.target_arn().map(str::to_string),
                status: h
                    .status()
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
                expires_at: seconds(h.expires_at()),
                timeout_action: h.timeout_action().map(|a| a.as_str().to_string()),
            })
            .collect(),
    }
}

impl Services for SdkServices {
    async fn describe_service(
        &self,
        cluster: &str,
        service: &str,
        by: f64,
    ) -> Result<Option<ServiceState>, Fault> {
        const OP: &str = "ecs:DescribeServices";
        by_deadline(OP, by, async {
            let out = self
                .client
                .describe_services()
                .cluster(cluster)
                .services(service)
                .send()
                .await
                .map_err(|e| fault(OP, e))?;
            // A deleted service stays described a while as INACTIVE: it runs nothing.
            Ok(out
                .services()
                .iter()
                .find(|s| s.status() == Some("ACTIVE"))
                .map(state))
        })
        .await
    }

    async fn force_new_deployment(
        &self,
        cluster: &str,
        service: &str,
        by: f64,
    ) -> Result<ServiceState, Fault> {
        const OP: &str = "ecs:UpdateService";
        let call = self
            .client
            .update_service()
            .cluster(cluster)
            .service(service)
            .force_new_deployment(true)
            .customize()
            // No SDK retry: a second send could start a second deployment.
            .config_override(
                aws_sdk_ecs::config::Builder::default()
                    .retry_config(aws_sdk_ecs::config::retry::RetryConfig::disabled()),
            );
        by_deadline(OP, by, async {
            let out = call.send().await.map_err(|e| fault(OP, e))?;
            out.service().map(state).ok_or_else(|| {
                Fault::new(
                    OP,
                    FaultKind::Other,
                    "UpdateService answered without the service",
                )
            })
        })
        .await
    }

    async fn describe_service_deployment(
        &self,
        arn: &str,
        by: f64,
    ) -> Result<Option<ServiceDeploymentState>, Fault> {
        const OP: &str = "ecs:DescribeServiceDeployments";
        by_deadline(OP, by, async {
            let out = self
                .client
                .describe_service_deployments()
                .service_deployment_arns(arn)
                .send()
                .await
                .map_err(|e| fault(OP, e))?;
            // One it does not know comes back in `failures` (reason MISSING).
            Ok(out
                .service_deployments()
                .iter()
                .find(|d| d.service_deployment_arn() == Some(arn))
                .map(service_deployment))
        })
        .await
    }
}

impl FromSdkConfig for SdkServices {
    fn from_config(config: &SdkConfig) -> Self {
        SdkServices {
            client: aws_sdk_ecs::Client::new(config),
        }
    }
}

/// ServiceRestart in production.
pub const SERVICE_RESTART: ServiceRestart<AwsBackend<SdkServices>> =
    ServiceRestart::new(AwsBackend::new("Org::ECS::ServiceRestart record"));

/// One invocation: raw event bytes in, a progress event out (logs and metrics to the
/// provider log group when the request names one).
pub async fn handle(payload: &[u8], deadline: Option<SystemTime>) -> Value {
    handler_kit::lambda::invoke(&SERVICE_RESTART, crate::TYPE_NAME, payload, deadline).await
}
