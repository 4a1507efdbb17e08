//! The resource schema, embedded at build time and compiled once: the one place where
//! incoming models are checked. Nothing it can express is checked again by hand.

use std::sync::OnceLock;

use handler_kit::schema::EmbeddedSchema;
use serde_json::Value;

use crate::error::TaskRunError;

pub const SCHEMA_JSON: &str = include_str!("../schema.json");

static SCHEMA: EmbeddedSchema = EmbeddedSchema::new(SCHEMA_JSON);

/// The parsed resource schema.
pub fn schema() -> Result<&'static Value, TaskRunError> {
    SCHEMA.compiled().map(|c| &c.schema)
}

/// Turns CloudFormation's string scalars into the schema's types, then validates.
/// Every violation is named by its property path, in one error.
pub fn prepare(properties: Value) -> Result<Value, TaskRunError> {
    SCHEMA.prepare(properties)
}

/// Whether ECS takes `key`/`value` as a tag: the schema's own `Tag` rules (ECS's lengths,
/// its pattern and the reserved `aws:` prefix), so that stack tags, which CloudFormation
/// does not hold to ECS's rules, are checked by the one rule the TaskRun's `Tags` are.
pub fn ecs_accepts_tag(key: &str, value: &str) -> bool {
    static TAG: OnceLock<Option<jsonschema::Validator>> = OnceLock::new();
    let validator = TAG.get_or_init(|| {
        let schema = schema().ok()?;
        let tag = serde_json::json!({
            "definitions": schema.get("definitions")?,
            "$ref": "#/definitions/Tag",
        });
        jsonschema::draft7::options().build(&tag).ok()
    });
    validator
        .as_ref()
        .is_some_and(|v| v.is_valid(&serde_json::json!({"Key": key, "Value": value})))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// First: a broken schema.json says what is wrong and where, not a panic elsewhere.
    #[test]
    fn the_embedded_schema_is_publishable() -> Result<(), String> {
        SCHEMA.check_publishable()
    }

    #[test]
    fn answers_stay_short_whatever_the_number_of_violations() {
        let items: Vec<Value> = (0..100_000).map(|_| json!({"Key": 1})).collect();
        let Err(TaskRunError::InvalidModel(v)) =
            prepare(json!({"Cluster": "c", "TaskDefinition": "t", "Tags": items}))
        else {
            panic!("accepted");
        };
        assert!(
            v.len() <= handler_kit::schema::MAX_VIOLATIONS + 1,
            "{}",
            v.len()
        );
        assert!(
            v.last()
                .is_some_and(|l| l.starts_with("and ") && l.ends_with(" more")),
            "{v:?}"
        );
    }

    #[test]
    fn launch_type_and_capacity_providers_exclude_each_other() {
        let Err(TaskRunError::InvalidModel(v)) = prepare(
            json!({"Cluster": "c", "TaskDefinition": "t", "LaunchType": "FARGATE",
            "CapacityProviderStrategy": [{"CapacityProvider": "FARGATE_SPOT"}]}),
        ) else {
            panic!("accepted");
        };
        assert_eq!(v, ["/: LaunchType and CapacityProviderStrategy exclude each other (ECS refuses both in one call): give one or the other."]);
        for ok in [
            json!({"LaunchType": "FARGATE"}),
            json!({"CapacityProviderStrategy": [{"CapacityProvider": "FARGATE"}]}),
            json!({}),
        ] {
            let mut props = json!({"Cluster": "c", "TaskDefinition": "t"});
            props
                .as_object_mut()
                .unwrap()
                .extend(ok.as_object().unwrap().clone());
            assert!(prepare(props.clone()).is_ok(), "{props}");
        }
        let typed = crate::properties::typed(
            &prepare(json!({"Cluster": "c", "TaskDefinition": "t", "Count": 1.0})).unwrap(),
        )
        .unwrap();
        assert_eq!(typed.count, Some(1), "Count 1.0 is the integer 1");
    }

    #[test]
    fn names_every_violation_by_path() {
        struct Case {
            name: &'static str,
            properties: Value,
            want: &'static [&'static str],
        }
        let cases = [
            Case {
                name: "valid minimal",
                properties: json!({"Cluster": "c", "TaskDefinition": "migrate"}),
                want: &[],
            },
            Case {
                name: "strings from CloudFormation",
                properties: json!({"Cluster": "c", "TaskDefinition": "t", "Count": "25", "RunOnUpdate": "false", "Timeout": "60",
                    "Overrides": {"ContainerOverrides": [{"Name": "app", "Cpu": "256"}]}}),
                want: &[],
            },
            Case {
                name: "missing required",
                properties: json!({"Count": 1}),
                want: &["/: \"Cluster\" is a required property", "/: \"TaskDefinition\" is a required property"],
            },
            Case {
                name: "count too large",
                properties: json!({"Cluster": "c", "TaskDefinition": "t", "Count": 101}),
                want: &["/Count: value is greater than the maximum of 100"],
            },
            Case {
                name: "unknown property",
                properties: json!({"Cluster": "c", "TaskDefinition": "t", "Bogus": 1}),
                want: &["/: Additional properties are not allowed ('Bogus' was unexpected)"],
            },
            Case {
                name: "nested violations",
                properties: json!({"Cluster": "c", "TaskDefinition": "t",
                    "Overrides": {"ContainerOverrides": [{"Command": ["x"]}]},
                    "NetworkConfiguration": {"AwsvpcConfiguration": {"Subnets": ["vpc-1"], "AssignPublicIp": "MAYBE"}}}),
                want: &[
                    "/NetworkConfiguration/AwsvpcConfiguration/AssignPublicIp: value is not one of \"ENABLED\" or \"DISABLED\"",
                    "/NetworkConfiguration/AwsvpcConfiguration/Subnets/0: value does not match \"^subnet-[0-9a-zA-Z]+$\"",
                    "/Overrides/ContainerOverrides/0: \"Name\" is a required property",
                ],
            },
            Case {
                name: "non-numeric string count",
                properties: json!({"Cluster": "c", "TaskDefinition": "t", "Count": "lots"}),
                want: &["/Count: value is not of type \"integer\""],
            },
        ];
        let secret = json!({"Cluster": "c", "TaskDefinition": "t",
            "Overrides": {"ContainerOverrides": [{"Name": "app", "Command": "s3cr3t-password"}]}});
        match prepare(secret) {
            Err(TaskRunError::InvalidModel(v)) => {
                assert_eq!(
                    v,
                    ["/Overrides/ContainerOverrides/0/Command: value is not of type \"array\""]
                );
            }
            other => panic!("unexpected {other:?}"),
        }
        for case in cases {
            let got = match prepare(case.properties) {
                Ok(_) => vec![],
                Err(TaskRunError::InvalidModel(v)) => v,
                Err(other) => panic!("{}: unexpected {other}", case.name),
            };
            let want: Vec<String> = case.want.iter().map(|s| s.to_string()).collect();
            assert_eq!(got, want, "{}", case.name);
        }
    }
}
