//! The resource schema, embedded at build time and compiled once: the one place where
//! incoming models are checked. Nothing it can express is checked again by hand.

use std::sync::OnceLock;

use serde_json::Value;

use crate::error::TaskRunError;

pub const SCHEMA_JSON: &str = include_str!("../schema.json");

struct Compiled {
    schema: Value,
    validator: jsonschema::Validator,
}

fn compiled() -> Result<&'static Compiled, TaskRunError> {
    static COMPILED: OnceLock<Result<Compiled, String>> = OnceLock::new();
    COMPILED
        .get_or_init(|| {
            let schema: Value = serde_json::from_str(SCHEMA_JSON)
                .map_err(|e| format!("the embedded schema is not JSON: {e}"))?;
            // CloudFormation resource schemas are draft-07; its `$schema` URL is not one
            // the crate knows, so the draft is named rather than detected.
            let validator = jsonschema::draft7::options().build(&schema).map_err(|e| {
                format!(
                    "the embedded schema does not compile (at {}): {}",
                    e.instance_path().as_str(),
                    e.masked()
                )
            })?;
            Ok(Compiled { schema, validator })
        })
        .as_ref()
        .map_err(|e| TaskRunError::Internal(e.clone()))
}

/// The parsed resource schema.
pub fn schema() -> Result<&'static Value, TaskRunError> {
    compiled().map(|c| &c.schema)
}

/// At most this many violations are listed; the rest are counted. A request with
/// 100,000 invalid list items must still get a short answer.
pub const MAX_VIOLATIONS: usize = 50;

/// Turns CloudFormation's string scalars into the schema's types, then validates.
/// Every violation is named by its property path, in one error.
pub fn prepare(mut properties: Value) -> Result<Value, TaskRunError> {
    let compiled = compiled()?;
    cfn_protocol::lenient::coerce_to_schema(&mut properties, &compiled.schema, &compiled.schema);
    let mut violations: Vec<String> = Vec::new();
    let mut more = 0usize;
    for error in compiled.validator.iter_errors(&properties) {
        if violations.len() >= MAX_VIOLATIONS {
            more += 1;
            continue;
        }
        let path = error.instance_path().as_str().to_string();
        let path = if path.is_empty() {
            "/".to_string()
        } else {
            path
        };
        let explained = explanation(&compiled.schema, error.schema_path().as_str());
        // Masked: the offending value may be a secret (an environment override).
        violations.push(format!(
            "{path}: {}",
            explained.unwrap_or_else(|| error.masked().to_string())
        ));
    }
    if violations.is_empty() {
        return Ok(properties);
    }
    violations.sort();
    violations.dedup();
    if more > 0 {
        violations.push(format!("and {more} more"));
    }
    Err(TaskRunError::InvalidModel(violations))
}

/// A failed `anyOf`/`oneOf` says nothing of use by itself; the schema's own description
/// of the rule does.
fn explanation(schema: &Value, schema_path: &str) -> Option<String> {
    let keyword = schema_path.rsplit('/').next()?;
    if !matches!(keyword, "anyOf" | "oneOf") {
        return None;
    }
    schema
        .pointer(schema_path)?
        .as_array()?
        .iter()
        .find_map(|item| item.get("description").and_then(Value::as_str))
        .map(str::to_string)
}

/// Whether schema.json is usable, or what is wrong with it, where, and what to do.
pub fn check_embedded() -> Result<(), String> {
    let schema: Value = serde_json::from_str(SCHEMA_JSON).map_err(|e| {
        format!("schema.json is not valid JSON: {e} (fix it, then run `.venv/bin/cfn validate`)")
    })?;
    jsonschema::draft7::options().build(&schema).map_err(|e| {
        format!(
            "schema.json does not compile as JSON Schema draft 7: at {}: {} (fix it, then run `.venv/bin/cfn validate`)",
            if e.instance_path().as_str().is_empty() { "/" } else { e.instance_path().as_str() },
            e.masked()
        )
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// First: a broken schema.json says what is wrong and where, not a panic elsewhere.
    #[test]
    fn the_embedded_schema_compiles() -> Result<(), String> {
        check_embedded()
    }

    #[test]
    fn a_typo_in_a_keyword_is_reported_with_its_location() {
        let typo = json!({"properties": {"Count": {"type": "intger"}}});
        let error = jsonschema::draft7::options().build(&typo).unwrap_err();
        assert_eq!(error.instance_path().as_str(), "/properties/Count/type");
    }

    #[test]
    fn answers_stay_short_whatever_the_number_of_violations() {
        let items: Vec<Value> = (0..100_000).map(|_| json!({"Key": 1})).collect();
        let Err(TaskRunError::InvalidModel(v)) =
            prepare(json!({"Cluster": "c", "TaskDefinition": "t", "Tags": items}))
        else {
            panic!("accepted");
        };
        assert!(v.len() <= MAX_VIOLATIONS + 1, "{}", v.len());
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
        let typed = crate::model::typed(
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
