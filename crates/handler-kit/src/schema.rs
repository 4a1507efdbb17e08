//! A resource schema, compiled once: the one place where incoming properties are checked.
//! CloudFormation's string scalars are first turned into the schema's types; every
//! violation is then named by its property path, values masked (an environment override
//! may be a secret), at most [`MAX_VIOLATIONS`] of them and a count of the rest.

use std::sync::OnceLock;

use serde_json::Value;

use crate::failure::{Failure, OwnFailure};

/// At most this many violations are listed; the rest are counted. A request with
/// 100,000 invalid list items must still get a short answer.
pub const MAX_VIOLATIONS: usize = 50;

pub struct Schema {
    pub schema: Value,
    validator: jsonschema::Validator,
}

impl Schema {
    /// Compiles `text` (a CloudFormation resource schema: JSON Schema draft 7); the error
    /// says what is wrong, where, and what to run.
    pub fn compile(text: &str) -> Result<Self, String> {
        let schema: Value = serde_json::from_str(text).map_err(|e| {
            format!(
                "schema.json is not valid JSON: {e} (fix it, then run `.venv/bin/cfn validate`)"
            )
        })?;
        // Draft 7: the CloudFormation `$schema` URL is not one the crate knows, so the
        // draft is named rather than detected.
        let validator = jsonschema::draft7::options().build(&schema).map_err(|e| {
            let at = e.instance_path().as_str();
            format!(
                "schema.json does not compile as JSON Schema draft 7: at {}: {} (fix it, then run `.venv/bin/cfn validate`)",
                if at.is_empty() { "/" } else { at },
                e.masked()
            )
        })?;
        Ok(Self { schema, validator })
    }

    /// The properties in the schema's types, or every violation by path.
    pub fn prepare(&self, mut properties: Value) -> Result<Value, Vec<String>> {
        cfn_protocol::lenient::coerce_to_schema(&mut properties, &self.schema, &self.schema);
        let mut violations: Vec<String> = Vec::new();
        let mut more = 0usize;
        for error in self.validator.iter_errors(&properties) {
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
            let explained = explanation(&self.schema, error.schema_path().as_str());
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
        Err(violations)
    }

    /// Reads `properties` as the schema's types would, coercing only (no validation):
    /// for properties recorded earlier.
    pub fn coerce(&self, properties: &mut Value) {
        cfn_protocol::lenient::coerce_to_schema(properties, &self.schema, &self.schema);
    }
}

/// A type's schema.json, embedded at build time and compiled on first use, once.
pub struct EmbeddedSchema {
    /// The schema's text.
    pub text: &'static str,
    compiled: OnceLock<Result<Schema, String>>,
}

impl EmbeddedSchema {
    /// The schema `text` (compiled when first used).
    pub const fn new(text: &'static str) -> Self {
        Self {
            text,
            compiled: OnceLock::new(),
        }
    }

    /// The compiled schema; an unusable one is an internal failure.
    pub fn compiled<O: OwnFailure>(&self) -> Result<&Schema, Failure<O>> {
        self.compiled
            .get_or_init(|| Schema::compile(self.text))
            .as_ref()
            .map_err(|e| Failure::Internal(e.clone()))
    }

    /// Turns CloudFormation's string scalars into the schema's types, then validates.
    /// Every violation is named by its property path, in one error.
    pub fn prepare<O: OwnFailure>(&self, properties: Value) -> Result<Value, Failure<O>> {
        self.compiled()?
            .prepare(properties)
            .map_err(Failure::InvalidModel)
    }

    /// Whether the schema is usable, or what is wrong with it, where, and what to do.
    pub fn check(&self) -> Result<(), String> {
        Schema::compile(self.text).map(|_| ())
    }

    /// Whether the schema can go to the Registry: it compiles, and it links only to
    /// documentation that exists (no placeholder `sourceUrl` or `documentationUrl`: the
    /// Registry console shows them as the type's home).
    pub fn check_publishable(&self) -> Result<(), String> {
        self.check()?;
        match unknown_links(self.text) {
            unknown if unknown.is_empty() => Ok(()),
            unknown => Err(format!(
                "schema.json links to hosts not known to exist: {}",
                unknown.join(", ")
            )),
        }
    }
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

/// Hosts a schema may link to: documentation that exists for anyone who reads the type in
/// the Registry.
const KNOWN_HOSTS: [&str; 3] = ["docs.aws.amazon.com", "aws.amazon.com", "json-schema.org"];

/// Links in a schema (any string value starting with `http`) to a host not known to exist
/// for this project's users: a placeholder `sourceUrl` or `documentationUrl` shows in the
/// Registry console as if it were the type's home.
pub fn unknown_links(schema_json: &str) -> Vec<String> {
    fn walk(value: &Value, found: &mut Vec<String>) {
        match value {
            Value::String(s) if s.starts_with("http://") || s.starts_with("https://") => {
                let host = s
                    .split("://")
                    .nth(1)
                    .and_then(|rest| rest.split(['/', '#', '?']).next())
                    .unwrap_or_default();
                if !KNOWN_HOSTS.contains(&host) {
                    found.push(s.clone());
                }
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, found)),
            Value::Object(map) => map.values().for_each(|v| walk(v, found)),
            _ => {}
        }
    }
    let mut found = Vec::new();
    match serde_json::from_str::<Value>(schema_json) {
        Ok(value) => walk(&value, &mut found),
        Err(e) => found.push(format!("(not JSON: {e})")),
    }
    // In text order or key order, as serde_json's features have it: sorted either way.
    found.sort();
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_typo_in_a_keyword_is_reported_with_its_location() {
        let error = Schema::compile(r#"{"properties": {"Count": {"type": "intger"}}}"#)
            .err()
            .unwrap_or_default();
        assert!(
            error.contains("at /properties/Count/type") && error.contains("cfn validate"),
            "{error}"
        );
        let error = Schema::compile("{\"properties\": ")
            .err()
            .unwrap_or_default();
        assert!(
            error.contains("not valid JSON") && error.contains("line 1"),
            "{error}"
        );
    }

    #[test]
    fn answers_stay_short_whatever_the_number_of_violations() {
        let schema = Schema::compile(
            r#"{"properties": {"Tags": {"type": "array", "items": {"type": "string"}}}}"#,
        )
        .unwrap();
        let items: Vec<Value> = (0..100_000).map(|_| json!({"Key": 1})).collect();
        let violations = schema.prepare(json!({"Tags": items})).unwrap_err();
        assert_eq!(violations.len(), MAX_VIOLATIONS + 1);
        assert_eq!(
            violations.last().map(String::as_str),
            Some("and 99950 more")
        );
    }

    #[test]
    fn links_to_unknown_hosts_are_found() {
        let schema = r#"{"sourceUrl": "https://github.com/org/taskrun",
            "a": ["https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_RunTask.html"],
            "b": {"c": "https://example.com/x", "d": "not a link"}}"#;
        assert_eq!(
            unknown_links(schema),
            ["https://example.com/x", "https://github.com/org/taskrun"]
        );
        assert!(unknown_links("{}").is_empty());
    }
}
