//! The resource model as the handlers read it: plain data, with its defaults. Only
//! deserialised: what the handlers answer is the user's own property document plus the
//! outputs (see `record::model`), so the model a user gave comes back exactly as given,
//! with no defaults filled in. Turning the properties into this model, and the checks
//! the schema cannot express, are in `properties.rs`; the tasks' tags in `task_tags.rs`.

use serde::Deserialize;
use serde_json::Value;

pub const DEFAULT_COUNT: u32 = 1;
pub const DEFAULT_TIMEOUT_SECONDS: u32 = 3600;
/// The longest Timeout: what the Registry allows an operation (timeoutInMinutes 2160, 36 h,
/// for the whole operation, callbacks included), less what an operation may spend outside
/// the run's Timeout: an update first stops the run it replaces (up to
/// `STOP_CONFIRM_LIMIT_SECONDS`, 10 min), the tasks still running when Timeout passes are
/// stopped and confirmed (10 min more), and 10 min for DescribeTaskDefinition, the launch,
/// the log reads and the callbacks' own latency.
pub const MAX_TIMEOUT_SECONDS: u32 = 2160 * 60 - 3 * 600;
pub const DEFAULT_POLL_INTERVAL_SECONDS: u32 = 15;
/// The names of the read-only properties: never taken from input, always recomputed.
pub const READ_ONLY: [&str; 8] = [
    "Id",
    "TaskArns",
    "Status",
    "StatusReason",
    "Tasks",
    "StartedAt",
    "FinishedAt",
    "Output",
];
pub const DEFAULT_LOG_TAIL: u32 = 20;
/// What a retry policy retries when it does not say: the passing causes. A non-zero exit
/// is not among them: a failed migration must not run twice unless the user says so.
pub const DEFAULT_RETRY_ON: [&str; 7] = [
    "SpotInterruption",
    "TerminationNotice",
    "InfrastructureHealth",
    "ServiceSchedulerInitiated",
    "CannotPullContainerError",
    "ResourceInitializationError",
    "PlacementFailure",
];

/// Properties kept in the run record but never answered (schema `writeOnlyProperties`).
pub const WRITE_ONLY: [&str; 1] = ["Overrides"];

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ResourceModel {
    pub id: Option<String>,
    pub cluster: String,
    pub task_definition: String,
    pub count: Option<u32>,
    pub timeout: Option<u32>,
    pub run_on_update: Option<bool>,
    pub run_on_rollback: Option<bool>,
    pub adopt_existing: Option<bool>,
    pub update_criteria: Option<Vec<UpdateCriterion>>,
    pub poll_interval: Option<u32>,
    pub overrides: Option<TaskOverride>,
    pub instances: Option<Vec<String>>,
    pub triggers: Option<Vec<Value>>,
    pub launch_type: Option<String>,
    pub capacity_provider_strategy: Option<Vec<CapacityProviderStrategyItem>>,
    pub platform_version: Option<String>,
    pub network_configuration: Option<NetworkConfiguration>,
    pub placement_constraints: Option<Vec<PlacementConstraint>>,
    pub placement_strategy: Option<Vec<PlacementStrategy>>,
    pub group: Option<String>,
    pub enable_execute_command: Option<bool>,
    #[serde(rename = "EnableECSManagedTags")]
    pub enable_ecs_managed_tags: Option<bool>,
    pub propagate_tags: Option<String>,
    pub tags: Option<Vec<Tag>>,
    pub deciding_containers: Option<Vec<String>>,
    pub log_tail: Option<u32>,
    pub retry: Option<RetryPolicy>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RetryPolicy {
    pub attempts: Option<u8>,
    pub on: Option<Vec<String>>,
    pub spot_fallback: Option<bool>,
}

impl ResourceModel {
    /// How many tasks a run starts: one per instance with `Instances`, and none at all
    /// when `Count` is 0, even with `Instances` (the seed's rule).
    pub fn task_count(&self) -> u32 {
        let count = self.count.unwrap_or(DEFAULT_COUNT);
        match &self.instances {
            _ if count == 0 => 0,
            Some(instances) if !instances.is_empty() => instances.len() as u32,
            _ => count,
        }
    }

    pub fn timeout_seconds(&self) -> u32 {
        self.timeout.unwrap_or(DEFAULT_TIMEOUT_SECONDS)
    }

    pub fn poll_interval_seconds(&self) -> u32 {
        self.poll_interval.unwrap_or(DEFAULT_POLL_INTERVAL_SECONDS)
    }

    pub fn run_on_update(&self) -> bool {
        self.run_on_update.unwrap_or(true)
    }

    pub fn log_tail_lines(&self) -> u32 {
        self.log_tail.unwrap_or(DEFAULT_LOG_TAIL)
    }

    pub fn run_on_rollback(&self) -> bool {
        self.run_on_rollback.unwrap_or(false)
    }

    /// Environment overrides of one container, in order.
    pub fn environment_overrides(&self, container: &str) -> Vec<(String, Option<String>)> {
        self.overrides
            .iter()
            .flat_map(|o| o.container_overrides.iter().flatten())
            .filter(|c| c.name == container)
            .flat_map(|c| c.environment.iter().flatten())
            .map(|kv| (kv.name.clone(), kv.value.clone()))
            .collect()
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateCriterion {
    pub container: String,
    pub environment_keys: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TaskOverride {
    pub container_overrides: Option<Vec<ContainerOverride>>,
    pub cpu: Option<String>,
    pub memory: Option<String>,
    pub task_role_arn: Option<String>,
    pub execution_role_arn: Option<String>,
    pub ephemeral_storage: Option<EphemeralStorage>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerOverride {
    pub name: String,
    pub command: Option<Vec<String>>,
    pub environment: Option<Vec<KeyValuePair>>,
    pub environment_files: Option<Vec<EnvironmentFile>>,
    pub cpu: Option<i32>,
    pub memory: Option<i32>,
    pub memory_reservation: Option<i32>,
    pub resource_requirements: Option<Vec<ResourceRequirement>>,
}

#[derive(Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyValuePair {
    pub name: String,
    pub value: Option<String>,
}

// Environment values may be secrets: Debug shows names only.
impl std::fmt::Debug for KeyValuePair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}=**redacted**", self.name)
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EnvironmentFile {
    pub r#type: String,
    pub value: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ResourceRequirement {
    pub r#type: String,
    pub value: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EphemeralStorage {
    #[serde(rename = "SizeInGiB")]
    pub size_in_gib: i32,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CapacityProviderStrategyItem {
    pub capacity_provider: String,
    pub weight: Option<i32>,
    pub base: Option<i32>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkConfiguration {
    pub awsvpc_configuration: AwsVpcConfiguration,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AwsVpcConfiguration {
    pub subnets: Vec<String>,
    pub security_groups: Option<Vec<String>>,
    pub assign_public_ip: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PlacementConstraint {
    pub r#type: String,
    pub expression: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PlacementStrategy {
    pub r#type: String,
    pub field: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Tag {
    pub key: String,
    pub value: String,
}
