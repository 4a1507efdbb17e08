//! Whether an update runs the tasks again.

use std::collections::BTreeMap;

use aws_sdk_ecs::types::TaskDefinition;
use serde_json::Value;

use crate::model::{ResourceModel, UpdateCriterion};

/// Container name -> environment name -> value, as a task would see it: the task
/// definition's environment with the model's overrides on top.
pub type EnvSnapshot = BTreeMap<String, BTreeMap<String, String>>;

pub fn snapshot(definition: &TaskDefinition, model: &ResourceModel) -> EnvSnapshot {
    definition
        .container_definitions()
        .iter()
        .filter_map(|c| c.name().map(|name| (name, c)))
        .map(|(name, c)| {
            let mut env: BTreeMap<String, String> = c
                .environment()
                .iter()
                .filter_map(|kv| {
                    kv.name()
                        .map(|n| (n.to_string(), kv.value().unwrap_or_default().to_string()))
                })
                .collect();
            for (key, value) in model.environment_overrides(name) {
                env.insert(key, value.unwrap_or_default());
            }
            (name.to_string(), env)
        })
        .collect()
}

/// The `container: KEY` names whose value differs between the two snapshots
/// (a key present on one side only counts as a change). Values are never returned.
pub fn changed_keys(
    criteria: &[UpdateCriterion],
    old: &EnvSnapshot,
    new: &EnvSnapshot,
) -> Vec<String> {
    let mut changed = Vec::new();
    for criterion in criteria {
        let before = old.get(&criterion.container);
        let after = new.get(&criterion.container);
        for key in &criterion.environment_keys {
            if before.and_then(|e| e.get(key)) != after.and_then(|e| e.get(key)) {
                changed.push(format!("{}: {key}", criterion.container));
            }
        }
    }
    changed
}

/// Whether `Triggers` changed between the previous and the new properties.
pub fn triggers_changed(previous: &Value, desired: &Value) -> bool {
    let none = Value::Null;
    let norm = |v: &Value| match v.get("Triggers") {
        Some(Value::Array(items)) if items.is_empty() => none.clone(),
        Some(t) => t.clone(),
        None => none.clone(),
    };
    norm(previous) != norm(desired)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn env(pairs: &[(&str, &[(&str, &str)])]) -> EnvSnapshot {
        pairs
            .iter()
            .map(|(c, kvs)| {
                (
                    c.to_string(),
                    kvs.iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                )
            })
            .collect()
    }

    fn criterion(container: &str, keys: &[&str]) -> UpdateCriterion {
        UpdateCriterion {
            container: container.into(),
            environment_keys: keys.iter().map(|k| k.to_string()).collect(),
        }
    }

    #[test]
    fn compares_listed_keys_only() {
        let old = env(&[
            ("app", &[("DB_HOST", "a"), ("LOG", "1")]),
            ("sidecar", &[("X", "1")]),
        ]);
        let cases = [
            (
                "nothing changed",
                env(&[
                    ("app", &[("DB_HOST", "a"), ("LOG", "1")]),
                    ("sidecar", &[("X", "1")]),
                ]),
                vec![],
            ),
            (
                "unlisted key changed",
                env(&[
                    ("app", &[("DB_HOST", "a"), ("LOG", "2")]),
                    ("sidecar", &[("X", "2")]),
                ]),
                vec![],
            ),
            (
                "listed key changed",
                env(&[("app", &[("DB_HOST", "b"), ("LOG", "1")])]),
                vec!["app: DB_HOST"],
            ),
            (
                "listed key removed",
                env(&[("app", &[("LOG", "1")])]),
                vec!["app: DB_HOST"],
            ),
            ("container removed", env(&[]), vec!["app: DB_HOST"]),
        ];
        for (name, new, want) in cases {
            assert_eq!(
                changed_keys(&[criterion("app", &["DB_HOST"])], &old, &new),
                want,
                "{name}"
            );
        }
        let added = env(&[("app", &[("DB_HOST", "a"), ("NEW", "x")])]);
        assert_eq!(
            changed_keys(&[criterion("app", &["NEW", "DB_HOST"])], &old, &added),
            vec!["app: NEW"]
        );
    }

    #[test]
    fn overrides_take_precedence_over_the_task_definition() {
        use aws_sdk_ecs::types::{ContainerDefinition, KeyValuePair};
        let definition = TaskDefinition::builder()
            .container_definitions(
                ContainerDefinition::builder()
                    .name("app")
                    .environment(
                        KeyValuePair::builder()
                            .name("DB_HOST")
                            .value("td-host")
                            .build(),
                    )
                    .environment(KeyValuePair::builder().name("MODE").value("x").build())
                    .build(),
            )
            .build();
        let model: ResourceModel = serde_json::from_value(json!({
            "Cluster": "c", "TaskDefinition": "t",
            "Overrides": {"ContainerOverrides": [{"Name": "app", "Environment": [{"Name": "DB_HOST", "Value": "override-host"}]}]}
        }))
        .unwrap();
        let snap = snapshot(&definition, &model);
        assert_eq!(snap["app"]["DB_HOST"], "override-host");
        assert_eq!(snap["app"]["MODE"], "x");
    }

    #[test]
    fn detects_trigger_changes() {
        assert!(!triggers_changed(&json!({}), &json!({"Triggers": []})));
        assert!(!triggers_changed(
            &json!({"Triggers": ["a"]}),
            &json!({"Triggers": ["a"]})
        ));
        assert!(triggers_changed(
            &json!({"Triggers": ["a"]}),
            &json!({"Triggers": ["b"]})
        ));
        assert!(triggers_changed(&json!({}), &json!({"Triggers": ["b"]})));
    }
}
