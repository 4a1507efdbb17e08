//! schema.json, embedded and compiled once: the only validation.

use std::sync::OnceLock;

use handler_kit::schema::Schema;
use serde_json::Value;

use crate::error::RestartError;

pub const SCHEMA_JSON: &str = include_str!("../schema.json");

fn compiled() -> Result<&'static Schema, RestartError> {
    static COMPILED: OnceLock<Result<Schema, String>> = OnceLock::new();
    COMPILED
        .get_or_init(|| Schema::compile(SCHEMA_JSON))
        .as_ref()
        .map_err(|e| RestartError::Internal(e.clone()))
}

pub fn prepare(properties: Value) -> Result<Value, RestartError> {
    compiled()?
        .prepare(properties)
        .map_err(RestartError::InvalidModel)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// No placeholder sourceUrl/documentationUrl (or any other made-up link): the Registry
    /// console shows them as the type's home.
    #[test]
    fn the_schema_links_only_to_documentation_that_exists() {
        assert_eq!(
            handler_kit::schema::unknown_links(SCHEMA_JSON),
            Vec::<String>::new()
        );
    }

    #[test]
    fn the_embedded_schema_compiles() -> Result<(), String> {
        Schema::compile(SCHEMA_JSON).map(|_| ())
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
