//! The resource model as the handlers read it: the types `cfn generate` writes from
//! schema.json into `model/generated.rs` (with the read-only and write-only property names;
//! `model/codegen.json` sets the Rust types of its integers), and here their defaults.
//! What the handlers answer is the user's own property document plus the outputs (see
//! `record::model`), so the model a user gave comes back exactly as given, with no
//! defaults filled in. Turning the properties into this model, and the checks the schema
//! cannot express, are in `properties.rs`; the tasks' tags in `task_tags.rs`.

mod generated;

pub use generated::*;

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

// Environment values may be secrets: Debug shows names only.
impl std::fmt::Debug for KeyValuePair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}=**redacted**", self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_model_takes_scalars_as_cloudformation_sends_them() {
        let native = json!({
            "Cluster": "c", "TaskDefinition": "t", "Count": 3, "RunOnUpdate": false,
            "Retry": {"Attempts": 2},
            "Overrides": {"ContainerOverrides": [{"Name": "app", "Cpu": 256}]}
        });
        let strings = json!({
            "Cluster": "c", "TaskDefinition": "t", "Count": "3", "RunOnUpdate": "false",
            "Retry": {"Attempts": "2"},
            "Overrides": {"ContainerOverrides": [{"Name": "app", "Cpu": "256"}]}
        });
        let model: ResourceModel = serde_json::from_value(strings).expect("strings as scalars");
        assert_eq!(model.task_count(), 3);
        assert!(!model.run_on_update());
        assert_eq!(model.retry.as_ref().and_then(|r| r.attempts), Some(2));
        assert_eq!(serde_json::to_value(&model).expect("serialisable"), native);
    }

    #[test]
    fn debug_never_shows_environment_values() {
        let model: ResourceModel = serde_json::from_value(json!({
            "Cluster": "c", "TaskDefinition": "t",
            "Overrides": {"ContainerOverrides": [{"Name": "app", "Environment": [
                {"Name": "DB_PASSWORD", "Value": "hunter2"}
            ]}]}
        }))
        .expect("a model");
        let shown = format!("{model:?}");
        assert!(shown.contains("DB_PASSWORD=**redacted**"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
