//! The resource model as the handlers read it. Only deserialised: what the handlers
//! answer is the user's own property document plus the outputs (see `outputs`), so the
//! model a user gave comes back exactly as given, with no defaults filled in.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::error::TaskRunError;

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

/// The properties as typed data. They were validated against the schema first, so a
/// failure here names the path only (serde's own message would quote the value).
pub fn typed(properties: &Value) -> Result<ResourceModel, TaskRunError> {
    serde_path_to_error::deserialize(properties).map_err(|e| {
        use serde_path_to_error::Segment;
        let path: String = e
            .path()
            .iter()
            .map(|segment| match segment {
                Segment::Seq { index } => format!("/{index}"),
                Segment::Map { key } => format!("/{}", key.replace('~', "~0").replace('/', "~1")),
                Segment::Enum { variant } => format!("/{variant}"),
                Segment::Unknown => "/?".to_string(),
            })
            .collect();
        let path = if path.is_empty() {
            "/".to_string()
        } else {
            path
        };
        TaskRunError::InvalidModel(vec![format!("{path}: not of the expected type")])
    })
}

/// ECS's limit of tags per task: "Maximum number of tags per resource - 50" (ECS API
/// Reference, RunTask, `tags`). Tags ECS adds itself (`aws:ecs:*`, with
/// EnableECSManagedTags) do not count.
pub const MAX_TASK_TAGS: usize = 50;

/// The tags of a run's tasks, and the stack tags left off them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskTags {
    pub tags: Vec<(String, String)>,
    /// Stack tags ECS would refuse or that did not fit, each with why (keys only: a value
    /// could be anything).
    pub left_off: Vec<String>,
}

/// The tags of every task: the TaskRun's own `Tags`, then as many of the stack's as ECS
/// takes. CloudFormation stack tags have no character rule of ECS's ("Key: 1-128, Value:
/// 1-256", CloudFormation API Reference, "Tag"), so a stack tag ECS would refuse (another
/// character, a key or value beginning with `aws:`, too long) is left off rather than fail
/// every RunTask; so are the stack tags beyond ECS's 50 tags per task, less `reserved`
/// (StartTask's attempt tag), the TaskRun's own tags first. The stack's come in key order,
/// so the same stack tags are kept every time.
pub fn task_tags(
    model: &ResourceModel,
    stack_tags: Option<&BTreeMap<String, String>>,
    reserved: usize,
) -> TaskTags {
    let own: BTreeMap<String, String> = model
        .tags
        .iter()
        .flatten()
        .filter(|t| !is_reserved(&t.key))
        .map(|t| (t.key.clone(), t.value.clone()))
        .collect();
    let mut tags: Vec<(String, String)> = own.clone().into_iter().collect();
    let room = MAX_TASK_TAGS.saturating_sub(reserved);
    let mut left_off = Vec::new();
    for (key, value) in stack_tags.into_iter().flatten() {
        if own.contains_key(key) {
            continue;
        }
        // CloudFormation passes its own aws:cloudformation:* tags along: ECS reserves them.
        if is_reserved(key) {
            continue;
        }
        if !crate::schema::ecs_accepts_tag(key, value) {
            left_off.push(format!(
                "{}: ECS does not accept it (tag keys 1-128 and values 0-256 characters of letters, digits, spaces and _ . : / = + - @, not beginning with aws:)",
                printable(key)
            ));
            continue;
        }
        if tags.len() >= room {
            left_off.push(format!(
                "{}: a task takes at most {MAX_TASK_TAGS} tags",
                printable(key)
            ));
            continue;
        }
        tags.push((key.clone(), value.clone()));
    }
    TaskTags { tags, left_off }
}

/// ECS API Reference, RunTask, `tags`: "Do not use aws:, AWS:, or any upper or lowercase
/// combination of such as a prefix for either keys or values as it is reserved for AWS use."
pub fn is_reserved(text: &str) -> bool {
    text.get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case("aws:"))
}

/// A key as a log line may show it: at most 64 characters, control characters dropped.
fn printable(text: &str) -> String {
    let shown: String = text.chars().filter(|c| !c.is_control()).take(64).collect();
    format!("{shown:?}")
}

/// The JSON of the task override as ECS receives it (camelCase), for its size limit.
fn override_json(overrides: &Value) -> String {
    fn camel(value: &Value) -> Value {
        match value {
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| {
                        let mut key = k.clone();
                        if let Some(first) = key.get(..1) {
                            key.replace_range(..1, &first.to_ascii_lowercase());
                        }
                        (key, camel(v))
                    })
                    .collect(),
            ),
            Value::Array(items) => Value::Array(items.iter().map(camel).collect()),
            other => other.clone(),
        }
    }
    camel(overrides).to_string()
}

/// ECS API Reference, RunTask and StartTask, `overrides`: "A total of 8192 characters are
/// allowed for overrides. This limit includes the JSON formatting characters of the
/// override structure."
pub const MAX_OVERRIDE_CHARACTERS: usize = 8192;

/// The rules ECS applies that the schema cannot express (JSON Schema draft 7 has no
/// "at most one item such that"), checked before anything starts so that a deploy fails
/// at once with a message naming the property, not later with ECS's.
pub fn check(properties: &Value, model: &ResourceModel) -> Result<(), TaskRunError> {
    let mut problems = Vec::new();
    if let Some(items) = &model.capacity_provider_strategy {
        // ECS API Reference, CapacityProviderStrategyItem: "If no weight value is
        // specified, the default value of 0 is used. ... at least one of the capacity
        // providers must have a weight value greater than zero"; "Only one capacity
        // provider in a capacity provider strategy can have a base defined."
        if !items.is_empty() && items.iter().all(|i| i.weight.unwrap_or(0) == 0) {
            problems.push("/CapacityProviderStrategy: at least one capacity provider needs a Weight greater than 0 (an omitted Weight is 0)".to_string());
        }
        if items.iter().filter(|i| i.base.unwrap_or(0) > 0).count() > 1 {
            problems.push(
                "/CapacityProviderStrategy: only one capacity provider may have a Base".to_string(),
            );
        }
    }
    if let Some(overrides) = properties.get("Overrides") {
        let size = override_json(overrides).chars().count();
        if size > MAX_OVERRIDE_CHARACTERS {
            problems.push(format!(
                "/Overrides: {size} characters of JSON as ECS receives them, more than the {MAX_OVERRIDE_CHARACTERS} ECS allows"
            ));
        }
    }
    let own_tags = model.tags.as_ref().map_or(0, Vec::len);
    if model.task_count() > 0
        && model.instances.as_ref().is_some_and(|i| !i.is_empty())
        && own_tags >= MAX_TASK_TAGS
    {
        problems.push(format!(
            "/Tags: with Instances at most {} tags: StartTask adds one of its own to find its tasks",
            MAX_TASK_TAGS - 1
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(TaskRunError::InvalidModel(problems))
    }
}

/// The containers whose exit codes decide: the model's `DecidingContainers` (each must be
/// in the task definition, checked before anything starts), else every essential one.
pub fn deciding_containers(
    model: &ResourceModel,
    definition: &crate::ecs::TaskDefinitionInfo,
) -> Result<Vec<String>, TaskRunError> {
    let containers = &definition.containers;
    match &model.deciding_containers {
        Some(names) => {
            let unknown: Vec<&str> = names
                .iter()
                .filter(|n| !containers.iter().any(|c| &c.name == *n))
                .map(String::as_str)
                .collect();
            if unknown.is_empty() {
                Ok(names.clone())
            } else {
                Err(TaskRunError::InvalidRequest(format!(
                    "DecidingContainers names containers that task definition {} does not have: {}",
                    definition.arn,
                    unknown.join(", ")
                )))
            }
        }
        None => Ok(containers
            .iter()
            .filter(|c| c.essential)
            .map(|c| c.name.clone())
            .collect()),
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
