//! The properties as the handlers read them (validated against schema.json first).

use serde::Deserialize;
use serde_json::Value;

use crate::error::RestartError;
use crate::machine::WaitFor;

pub const DEFAULT_CLUSTER: &str = "default";
pub const DEFAULT_TIMEOUT_SECONDS: u32 = 1800;
pub const DEFAULT_POLL_INTERVAL_SECONDS: u32 = 15;
/// Never taken from input, always recomputed.
pub const READ_ONLY: [&str; 6] = [
    "Id",
    "DeploymentId",
    "Status",
    "StatusReason",
    "StartedAt",
    "FinishedAt",
];

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Properties {
    pub cluster: Option<String>,
    pub service: String,
    pub triggers: Option<Vec<Value>>,
    pub wait_for: Option<WaitFor>,
    pub timeout: Option<u32>,
    pub poll_interval: Option<u32>,
    pub restart_on_update: Option<bool>,
    pub run_on_rollback: Option<bool>,
}

impl Properties {
    /// The cluster given, else the one a service ARN names (`Ref` of an
    /// `AWS::ECS::Service` is its ARN, `.../service/<cluster>/<name>`), else `default`.
    pub fn cluster(&self) -> &str {
        if let Some(cluster) = self.cluster.as_deref().filter(|c| !c.is_empty()) {
            return cluster;
        }
        self.service
            .strip_prefix("arn:")
            .and_then(|arn| arn.split_once(":service/"))
            .and_then(|(_, path)| path.split_once('/'))
            .map(|(cluster, _)| cluster)
            .filter(|cluster| !cluster.is_empty())
            .unwrap_or(DEFAULT_CLUSTER)
    }

    pub fn wait_for(&self) -> WaitFor {
        self.wait_for.unwrap_or(WaitFor::SteadyState)
    }

    pub fn timeout_seconds(&self) -> u32 {
        self.timeout.unwrap_or(DEFAULT_TIMEOUT_SECONDS)
    }

    pub fn poll_interval_seconds(&self) -> u32 {
        self.poll_interval.unwrap_or(DEFAULT_POLL_INTERVAL_SECONDS)
    }

    pub fn restart_on_update(&self) -> bool {
        self.restart_on_update.unwrap_or(true)
    }

    pub fn run_on_rollback(&self) -> bool {
        self.run_on_rollback.unwrap_or(false)
    }
}

/// The properties as typed data; a failure names the path only (serde's message would
/// quote the value).
pub fn typed(properties: &Value) -> Result<Properties, RestartError> {
    serde_path_to_error::deserialize(properties).map_err(|e| {
        RestartError::InvalidModel(vec![format!(
            "/{}: not of the expected type",
            e.path().to_string().replace('.', "/")
        )])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(cluster: Option<&str>, service: &str) -> Properties {
        Properties {
            cluster: cluster.map(str::to_string),
            service: service.to_string(),
            ..Properties::default()
        }
    }

    #[test]
    fn the_cluster_comes_from_the_property_then_the_service_arn_then_default() {
        let arn = "arn:aws:ecs:us-east-1:123456789012:service/prod/api";
        let cases = [
            (Some("given"), arn, "given"),
            (None, arn, "prod"),
            (Some(""), arn, "prod"),
            (None, "api", "default"),
            // An old-style ARN (no cluster in it) names the default cluster.
            (
                None,
                "arn:aws:ecs:us-east-1:123456789012:service/api",
                "default",
            ),
            (
                None,
                "arn:aws:ecs:us-east-1:123456789012:service//api",
                "default",
            ),
        ];
        for (cluster, service, want) in cases {
            assert_eq!(
                of(cluster, service).cluster(),
                want,
                "{cluster:?} {service}"
            );
        }
    }
}
