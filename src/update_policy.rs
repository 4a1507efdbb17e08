//! Whether an UPDATE runs the tasks again.
//!
//! A run keeps a [`Fingerprint`] of what its tasks were given: a digest per property
//! that shapes the tasks, a digest of `Triggers`, and, for `UpdateCriteria`, a digest of
//! each listed environment value (never the value, never the unlisted ones). An update
//! compares the desired fingerprint with that of the last run that succeeded: an update
//! that skipped its run, or a run that failed, cannot hide a change.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::ecs::TaskDefinitionInfo;
use crate::model::ResourceModel;

/// The properties that shape what the tasks do. A change of any other property (Tags,
/// Timeout, PollInterval, RunOnUpdate, UpdateCriteria, ...) updates the TaskRun without
/// running its tasks.
pub const SHAPING: [&str; 11] = [
    "Cluster",
    "TaskDefinition",
    "Overrides",
    "Count",
    "Instances",
    "LaunchType",
    "CapacityProviderStrategy",
    "PlatformVersion",
    "NetworkConfiguration",
    "PlacementConstraints",
    "PlacementStrategy",
];

/// Container -> environment key -> digest of its value (`None`: not set).
pub type CriteriaDigests = BTreeMap<String, BTreeMap<String, Option<String>>>;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Fingerprint {
    /// Property name -> digest of its value, for the properties in [`SHAPING`].
    pub shape: BTreeMap<String, String>,
    pub triggers: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub criteria: CriteriaDigests,
}

/// A short digest: enough to tell values apart, too short to be worth storing secrets in.
pub fn digest(value: &Value) -> String {
    let mut hasher = Sha256::new();
    canonical(value, &mut hasher);
    hasher.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn digest_text(text: &str) -> String {
    digest(&Value::String(text.to_string()))
}

/// Feeds `value` with object keys sorted, whatever the map's own order.
fn canonical(value: &Value, hasher: &mut Sha256) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            hasher.update(b"{");
            for key in keys {
                hasher.update(Value::String(key.clone()).to_string().as_bytes());
                hasher.update(b":");
                canonical(&map[key], hasher);
                hasher.update(b",");
            }
            hasher.update(b"}");
        }
        Value::Array(items) => {
            hasher.update(b"[");
            for item in items {
                canonical(item, hasher);
                hasher.update(b",");
            }
            hasher.update(b"]");
        }
        other => hasher.update(other.to_string().as_bytes()),
    }
}

impl Fingerprint {
    /// The fingerprint of a run of `properties` (typed scalars) with `definition` the
    /// task definition revision it runs (needed only when UpdateCriteria are set).
    pub fn of(
        properties: &Value,
        model: &ResourceModel,
        definition: Option<&TaskDefinitionInfo>,
    ) -> Self {
        let empty = Map::new();
        let props = properties.as_object().unwrap_or(&empty);
        let mut shape = BTreeMap::new();
        for name in SHAPING {
            let value = match (name, props.get(name)) {
                // An absent Count is the default: the same tasks as Count 1.
                ("Count", None) => Value::from(crate::model::DEFAULT_COUNT),
                (_, Some(v)) => v.clone(),
                (_, None) => Value::Null,
            };
            shape.insert(name.to_string(), digest(&value));
        }
        let triggers = match props.get("Triggers") {
            Some(Value::Array(items)) if !items.is_empty() => digest(&Value::Array(items.clone())),
            _ => digest(&Value::Null),
        };
        let criteria = definition
            .map(|d| criteria_digests(d, model))
            .unwrap_or_default();
        Self {
            shape,
            triggers,
            criteria,
        }
    }

    /// Keys listed now that the baseline never saw are taken at their desired value:
    /// they are compared from the next update on (adding a key runs nothing by itself).
    pub fn adopt_new_criteria(&mut self, desired: &Fingerprint) {
        for (container, keys) in &desired.criteria {
            let known = self.criteria.entry(container.clone()).or_default();
            for (key, value) in keys {
                known.entry(key.clone()).or_insert_with(|| value.clone());
            }
        }
    }
}

/// The digests of the environment values UpdateCriteria lists, as a task of `definition`
/// with the model's overrides would see them.
pub fn criteria_digests(definition: &TaskDefinitionInfo, model: &ResourceModel) -> CriteriaDigests {
    let mut digests = CriteriaDigests::new();
    for criterion in model.update_criteria.iter().flatten() {
        let container = definition
            .containers
            .iter()
            .find(|c| c.name == criterion.container);
        let overrides = model.environment_overrides(&criterion.container);
        let keys = digests.entry(criterion.container.clone()).or_default();
        for key in &criterion.environment_keys {
            let from_definition = container.and_then(|c| {
                c.environment
                    .iter()
                    .rev()
                    .find(|(name, _)| name == key)
                    .map(|(_, value)| value.clone())
            });
            let overridden = overrides
                .iter()
                .rev()
                .find(|(name, _)| name == key)
                .map(|(_, value)| value.clone().unwrap_or_default());
            let value = overridden.or(from_definition);
            keys.insert(key.clone(), value.as_deref().map(digest_text));
        }
    }
    digests
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Run the tasks; why, for the event message.
    Run(String),
    /// Update the TaskRun without running; why.
    Skip(String),
}

/// Whether an update with `model` (fingerprint `desired`) runs, given the fingerprint
/// of the last run that succeeded.
pub fn decide(
    model: &ResourceModel,
    desired: &Fingerprint,
    baseline: Option<&Fingerprint>,
    rollback: bool,
) -> Decision {
    if !model.run_on_update() {
        return Decision::Skip("not run: RunOnUpdate is false".into());
    }
    if rollback && !model.run_on_rollback() {
        return Decision::Skip(
            "not run: this update is a rollback and RunOnRollback is false".into(),
        );
    }
    let Some(baseline) = baseline else {
        return Decision::Run("run: no earlier run succeeded".into());
    };
    if baseline.triggers != desired.triggers {
        return Decision::Run("run: Triggers changed".into());
    }
    if model
        .update_criteria
        .as_ref()
        .is_some_and(|c| !c.is_empty())
    {
        let changed = changed_criteria(&baseline.criteria, &desired.criteria);
        return if changed.is_empty() {
            Decision::Skip("not run: no UpdateCriteria environment value changed".into())
        } else {
            Decision::Run(format!("run: changed {}", changed.join(", ")))
        };
    }
    let changed: Vec<&str> = SHAPING
        .iter()
        .copied()
        .filter(|name| baseline.shape.get(*name) != desired.shape.get(*name))
        .collect();
    if changed.is_empty() {
        Decision::Skip("not run: no property that shapes the tasks changed".into())
    } else {
        Decision::Run(format!("run: {} changed", changed.join(", ")))
    }
}

/// `container: KEY` for each listed key whose value differs. A key the baseline never
/// saw is not a change (see [`Fingerprint::adopt_new_criteria`]).
fn changed_criteria(old: &CriteriaDigests, new: &CriteriaDigests) -> Vec<String> {
    let mut changed = Vec::new();
    for (container, keys) in new {
        let Some(before) = old.get(container) else {
            continue;
        };
        for (key, value) in keys {
            if let Some(previous) = before.get(key) {
                if previous != value {
                    changed.push(format!("{container}: {key}"));
                }
            }
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ecs::ContainerInfo;
    use serde_json::json;

    fn model(props: &Value) -> ResourceModel {
        serde_json::from_value(props.clone()).unwrap()
    }

    fn definition(db_host: &str) -> TaskDefinitionInfo {
        TaskDefinitionInfo {
            arn: "arn:td/1".into(),
            containers: vec![ContainerInfo {
                name: "app".into(),
                essential: true,
                environment: (0..110)
                    .map(|i| (format!("VAR_{i:03}"), "x".repeat(100)))
                    .chain([("DB_HOST".to_string(), db_host.to_string())])
                    .collect(),
                awslogs: None,
            }],
        }
    }

    fn fp(props: &Value, db_host: &str) -> Fingerprint {
        Fingerprint::of(props, &model(props), Some(&definition(db_host)))
    }

    #[test]
    fn decides_when_an_update_runs() {
        let base = json!({"Cluster": "c", "TaskDefinition": "t", "Timeout": 60, "Tags": [{"Key": "a", "Value": "1"}]});
        let with = |extra: Value| {
            let mut p = base.clone();
            p.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            p
        };
        let criteria =
            json!({"UpdateCriteria": [{"Container": "app", "EnvironmentKeys": ["DB_HOST"]}]});
        let baseline = fp(&base, "db-1");
        let crit_baseline = fp(&with(criteria.clone()), "db-1");
        struct Case {
            name: &'static str,
            desired: Value,
            db_host: &'static str,
            baseline: Option<Fingerprint>,
            rollback: bool,
            want: Decision,
        }
        let cases = vec![
            Case {
                name: "only Tags, Timeout, PollInterval changed",
                desired: with(json!({"Tags": [], "Timeout": 99, "PollInterval": 3})),
                db_host: "db-1",
                baseline: Some(baseline.clone()),
                rollback: false,
                want: Decision::Skip("not run: no property that shapes the tasks changed".into()),
            },
            Case {
                name: "Count 1 written out is the default",
                desired: with(json!({"Count": 1})),
                db_host: "db-1",
                baseline: Some(baseline.clone()),
                rollback: false,
                want: Decision::Skip("not run: no property that shapes the tasks changed".into()),
            },
            Case {
                name: "task definition changed",
                desired: with(json!({"TaskDefinition": "t:2"})),
                db_host: "db-1",
                baseline: Some(baseline.clone()),
                rollback: false,
                want: Decision::Run("run: TaskDefinition changed".into()),
            },
            Case {
                name: "overrides and count changed",
                desired: with(json!({"Count": 2, "Overrides": {"Cpu": "256"}})),
                db_host: "db-1",
                baseline: Some(baseline.clone()),
                rollback: false,
                want: Decision::Run("run: Overrides, Count changed".into()),
            },
            Case {
                name: "triggers changed",
                desired: with(json!({"Triggers": ["v2"]})),
                db_host: "db-1",
                baseline: Some(baseline.clone()),
                rollback: false,
                want: Decision::Run("run: Triggers changed".into()),
            },
            Case {
                name: "RunOnUpdate false",
                desired: with(json!({"RunOnUpdate": false, "Count": 5})),
                db_host: "db-1",
                baseline: Some(baseline.clone()),
                rollback: false,
                want: Decision::Skip("not run: RunOnUpdate is false".into()),
            },
            Case {
                name: "no baseline",
                desired: base.clone(),
                db_host: "db-1",
                baseline: None,
                rollback: false,
                want: Decision::Run("run: no earlier run succeeded".into()),
            },
            Case {
                name: "criteria: value unchanged although the definition changed",
                desired: with(
                    json!({"TaskDefinition": "t:2", "UpdateCriteria": criteria["UpdateCriteria"]}),
                ),
                db_host: "db-1",
                baseline: Some(crit_baseline.clone()),
                rollback: false,
                want: Decision::Skip("not run: no UpdateCriteria environment value changed".into()),
            },
            Case {
                name: "criteria: value changed",
                desired: with(criteria.clone()),
                db_host: "db-2",
                baseline: Some(crit_baseline.clone()),
                rollback: false,
                want: Decision::Run("run: changed app: DB_HOST".into()),
            },
            Case {
                name: "criteria: an override changes the value",
                desired: with(
                    json!({"UpdateCriteria": criteria["UpdateCriteria"], "Overrides": {"ContainerOverrides": [{"Name": "app", "Environment": [{"Name": "DB_HOST", "Value": "db-9"}]}]}}),
                ),
                db_host: "db-1",
                baseline: Some(crit_baseline.clone()),
                rollback: false,
                want: Decision::Run("run: changed app: DB_HOST".into()),
            },
            Case {
                name: "criteria: a newly listed key is no change by itself",
                desired: with(
                    json!({"UpdateCriteria": [{"Container": "app", "EnvironmentKeys": ["DB_HOST", "VAR_001"]}]}),
                ),
                db_host: "db-1",
                baseline: Some(crit_baseline.clone()),
                rollback: false,
                want: Decision::Skip("not run: no UpdateCriteria environment value changed".into()),
            },
            Case {
                name: "rollback without RunOnRollback",
                desired: with(json!({"Count": 3})),
                db_host: "db-1",
                baseline: Some(baseline.clone()),
                rollback: true,
                want: Decision::Skip(
                    "not run: this update is a rollback and RunOnRollback is false".into(),
                ),
            },
            Case {
                name: "rollback with RunOnRollback",
                desired: with(json!({"Count": 3, "RunOnRollback": true})),
                db_host: "db-1",
                baseline: Some(baseline.clone()),
                rollback: true,
                want: Decision::Run("run: Count changed".into()),
            },
        ];
        for case in cases {
            let desired = fp(&case.desired, case.db_host);
            let got = decide(
                &model(&case.desired),
                &desired,
                case.baseline.as_ref(),
                case.rollback,
            );
            assert_eq!(got, case.want, "{}", case.name);
        }
    }

    #[test]
    fn the_fingerprint_keeps_listed_keys_only_and_no_values() {
        let props = json!({"Cluster": "c", "TaskDefinition": "t",
            "UpdateCriteria": [{"Container": "app", "EnvironmentKeys": ["VAR_001"]}]});
        let fingerprint = fp(&props, "s3cr3t-host");
        let text = serde_json::to_string(&fingerprint).unwrap();
        assert!(text.len() < 1000, "{} bytes", text.len());
        assert!(!text.contains("s3cr3t") && !text.contains("xxxx"), "{text}");
        assert_eq!(fingerprint.criteria["app"].len(), 1);
    }

    #[test]
    fn digests_ignore_key_order() {
        assert_eq!(
            digest(&json!({"a": 1, "b": [1, {"c": 2, "d": 3}]})),
            digest(&json!({"b": [1, {"d": 3, "c": 2}], "a": 1}))
        );
        assert_ne!(digest(&json!([1, 2])), digest(&json!([2, 1])));
    }
}
