//! Whether an UPDATE restarts the service: when Triggers changed, or the service the
//! resource restarts changed, since the last restart that succeeded. Anything else
//! (Timeout, PollInterval, WaitFor, ...) updates the resource without restarting.

use serde_json::{json, Value};

use crate::fingerprint::Fingerprint;
use crate::model::Properties;

fn digest(value: &Value) -> String {
    handler_kit::ids::digest_hex(&[&value.to_string()], 16)
}

/// The fingerprint of the restart these properties ask for.
pub fn fingerprint(properties: &Properties) -> Fingerprint {
    let triggers = match &properties.triggers {
        Some(t) if !t.is_empty() => json!(t),
        _ => Value::Null,
    };
    Fingerprint {
        target: digest(&json!([
            properties.cluster_for_comparison(),
            properties.service
        ])),
        triggers: digest(&triggers),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Restart(String),
    Skip(String),
}

pub fn decide(
    properties: &Properties,
    desired: &Fingerprint,
    baseline: Option<&Fingerprint>,
    rollback: bool,
) -> Decision {
    if !properties.restart_on_update() {
        return Decision::Skip("not restarted: RestartOnUpdate is false".into());
    }
    if rollback && !properties.run_on_rollback() {
        return Decision::Skip(
            "not restarted: this update is a rollback and RunOnRollback is false".into(),
        );
    }
    let Some(baseline) = baseline else {
        return Decision::Restart("restarted: no earlier restart succeeded".into());
    };
    if baseline.target != desired.target {
        Decision::Restart("restarted: Cluster or Service changed".into())
    } else if baseline.triggers != desired.triggers {
        Decision::Restart("restarted: Triggers changed".into())
    } else {
        Decision::Skip("not restarted: neither Triggers nor the service changed".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(value: Value) -> Properties {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn decides_when_an_update_restarts() {
        let base = props(json!({"Service": "api", "Triggers": ["v1"], "Timeout": 60}));
        let baseline = fingerprint(&base);
        let cases = [
            (
                json!({"Service": "api", "Triggers": ["v1"], "Timeout": 90, "WaitFor": "STARTED"}),
                false,
                "not restarted: neither Triggers nor the service changed",
            ),
            (
                json!({"Service": "api", "Triggers": ["v2"]}),
                false,
                "restarted: Triggers changed",
            ),
            (
                json!({"Service": "web", "Triggers": ["v1"]}),
                false,
                "restarted: Cluster or Service changed",
            ),
            (
                json!({"Service": "api", "Cluster": "default", "Triggers": ["v1"]}),
                false,
                "not restarted: neither Triggers nor the service changed",
            ),
            (
                json!({"Service": "api", "Triggers": ["v2"], "RestartOnUpdate": false}),
                false,
                "not restarted: RestartOnUpdate is false",
            ),
            (
                json!({"Service": "api", "Triggers": ["v2"]}),
                true,
                "not restarted: this update is a rollback and RunOnRollback is false",
            ),
            (
                json!({"Service": "api", "Triggers": ["v2"], "RunOnRollback": true}),
                true,
                "restarted: Triggers changed",
            ),
        ];
        for (desired, rollback, want) in cases {
            let p = props(desired.clone());
            let got = match decide(&p, &fingerprint(&p), Some(&baseline), rollback) {
                Decision::Restart(why) | Decision::Skip(why) => why,
            };
            assert_eq!(got, want, "{desired}");
        }
    }
}
