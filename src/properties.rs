//! The properties CloudFormation sends, made into the typed [`ResourceModel`], and the
//! rules of ECS's that the schema cannot express, checked before anything starts so that
//! a deploy fails at once with a message naming the property.

use serde_json::Value;

use crate::ecs::TaskDefinitionInfo;
use crate::error::TaskRunError;
use crate::model::ResourceModel;
use crate::task_tags::MAX_TASK_TAGS;

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
    // The undo's overrides go to ECS the same way, later: refused now, not mid-rollback.
    let undo_overrides = properties
        .get("OnRollback")
        .and_then(|o| o.get("Overrides"));
    if let Some(overrides) = &model.on_rollback.as_ref().map(|o| &o.overrides) {
        let commands = overrides
            .container_overrides
            .iter()
            .flatten()
            .any(|c| c.command.as_ref().is_some_and(|c| !c.is_empty()));
        if !commands {
            problems.push("/OnRollback/Overrides: give the undo's Command in ContainerOverrides: without one, the task definition's own command (the migration itself) would run".to_string());
        }
    }
    for (path, overrides) in [
        ("/Overrides", properties.get("Overrides")),
        ("/OnRollback/Overrides", undo_overrides),
    ] {
        let Some(overrides) = overrides else { continue };
        let size = override_json(overrides).chars().count();
        if size > MAX_OVERRIDE_CHARACTERS {
            problems.push(format!(
                "{path}: {size} characters of JSON as ECS receives them, more than the {MAX_OVERRIDE_CHARACTERS} ECS allows"
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
    definition: &TaskDefinitionInfo,
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
