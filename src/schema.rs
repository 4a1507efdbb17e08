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
            let validator = jsonschema::draft7::options()
                .build(&schema)
                .map_err(|e| format!("the embedded schema does not compile: {e}"))?;
            Ok(Compiled { schema, validator })
        })
        .as_ref()
        .map_err(|e| TaskRunError::Internal(e.clone()))
}

/// The parsed resource schema.
pub fn schema() -> Result<&'static Value, TaskRunError> {
    compiled().map(|c| &c.schema)
}

/// Turns CloudFormation's string scalars into the schema's types, then validates.
/// Every violation is named by its property path, in one error.
pub fn prepare(mut properties: Value) -> Result<Value, TaskRunError> {
    let compiled = compiled()?;
    cfn_protocol::lenient::coerce_to_schema(&mut properties, &compiled.schema, &compiled.schema);
    let mut violations: Vec<String> = compiled
        .validator
        .iter_errors(&properties)
        .map(|error| {
            let path = error.instance_path().as_str().to_string();
            let path = if path.is_empty() {
                "/".to_string()
            } else {
                path
            };
            // Masked: the offending value may be a secret (an environment override).
            format!("{path}: {}", error.masked())
        })
        .collect();
    if violations.is_empty() {
        Ok(properties)
    } else {
        violations.sort();
        violations.dedup();
        Err(TaskRunError::InvalidModel(violations))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
