//! schema.json, embedded and compiled once: the only validation.

use handler_kit::schema::EmbeddedSchema;
use serde_json::Value;

use crate::error::RestartError;

pub const SCHEMA_JSON: &str = include_str!("../schema.json");

static SCHEMA: EmbeddedSchema = EmbeddedSchema::new(SCHEMA_JSON);

/// CloudFormation's string scalars in the schema's types, validated: every violation by
/// path, in one error.
pub fn prepare(properties: Value) -> Result<Value, RestartError> {
    SCHEMA.prepare(properties)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_embedded_schema_can_go_to_the_registry() -> Result<(), String> {
        SCHEMA.check_publishable()
    }

    #[test]
    fn names_violations_by_path() {
        let Err(RestartError::InvalidModel(v)) =
            prepare(json!({"Timeout": "0", "WaitFor": "SOON"}))
        else {
            panic!("accepted");
        };
        assert_eq!(
            v,
            [
                "/: \"Service\" is a required property",
                "/Timeout: value is less than the minimum of 1",
                "/WaitFor: value is not one of \"STEADY_STATE\" or \"STARTED\"",
            ]
        );
        assert!(prepare(json!({"Service": "api", "Triggers": ["v1"], "Timeout": "60"})).is_ok());
    }
}
