//! CloudFormation sends every scalar of a resource's properties as a string
//! (`"Count": "5"`, `"RunOnUpdate": "true"`), whereas `cfn test` and hand-written events
//! send native JSON. [`coerce_to_schema`] walks the properties alongside the resource
//! schema and turns such strings into the integer, number or boolean the schema declares,
//! so that validation and typed decoding see one shape whatever the sender.

use serde_json::{Map, Number, Value};

/// Rewrites, in place, string scalars of `value` into the types `schema` declares.
/// `root` is the whole resource schema, against which `#/definitions/...` references resolve.
/// Values that do not parse are left alone, for validation to name.
pub fn coerce_to_schema(value: &mut Value, schema: &Value, root: &Value) {
    coerce(value, schema, root, 0)
}

// Recursive `$ref` chains in a schema are legal; the depth bound keeps a cyclic one finite.
const MAX_DEPTH: usize = 64;

fn coerce(value: &mut Value, schema: &Value, root: &Value, depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    let Some(schema) = resolve(schema, root) else {
        return;
    };
    match value {
        Value::String(text) => {
            if let Some(converted) = convert_scalar(text, &declared_types(schema)) {
                *value = converted;
            }
        }
        // JSON Schema counts 1.0 as an integer; typed readers do not. An integral
        // float where the schema wants an integer becomes that integer.
        Value::Number(number) if number.is_f64() => {
            if let Some(integer) = integral(number.as_f64(), &declared_types(schema)) {
                *value = Value::Number(integer.into());
            }
        }
        Value::Object(map) => coerce_object(map, schema, root, depth),
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for item in items {
                    coerce(item, item_schema, root, depth + 1);
                }
            }
        }
        _ => {}
    }
}

fn coerce_object(map: &mut Map<String, Value>, schema: &Value, root: &Value, depth: usize) {
    let properties = schema.get("properties").and_then(Value::as_object);
    let additional = schema.get("additionalProperties").filter(|a| a.is_object());
    for (key, child) in map.iter_mut() {
        let child_schema = properties.and_then(|p| p.get(key)).or(additional);
        if let Some(child_schema) = child_schema {
            coerce(child, child_schema, root, depth + 1);
        }
    }
}

fn resolve<'a>(schema: &'a Value, root: &'a Value) -> Option<&'a Value> {
    let mut current = schema;
    for _ in 0..MAX_DEPTH {
        match current.get("$ref").and_then(Value::as_str) {
            Some(reference) => {
                let pointer = reference.strip_prefix('#')?;
                current = root.pointer(pointer)?;
            }
            None => return Some(current),
        }
    }
    None
}

fn declared_types(schema: &Value) -> Vec<&str> {
    match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

fn integral(number: Option<f64>, types: &[&str]) -> Option<i64> {
    let n = number?;
    // The bound keeps the cast exact: beyond 2^53 a float no longer names one integer.
    let exact = n.fract() == 0.0 && n.abs() <= 9_007_199_254_740_992.0;
    (types.contains(&"integer") && exact).then_some(n as i64)
}

fn convert_scalar(text: &str, types: &[&str]) -> Option<Value> {
    // A string the schema allows as a string stays a string.
    if types.is_empty() || types.contains(&"string") {
        return None;
    }
    let trimmed = text.trim();
    if types.contains(&"integer") {
        if let Ok(i) = trimmed.parse::<i64>() {
            return Some(Value::Number(i.into()));
        }
    }
    if types.contains(&"number") {
        if let Ok(i) = trimmed.parse::<i64>() {
            return Some(Value::Number(i.into()));
        }
        if let Some(n) = trimmed.parse::<f64>().ok().and_then(Number::from_f64) {
            return Some(Value::Number(n));
        }
    }
    if types.contains(&"boolean") {
        if trimmed.eq_ignore_ascii_case("true") {
            return Some(Value::Bool(true));
        }
        if trimmed.eq_ignore_ascii_case("false") {
            return Some(Value::Bool(false));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({
            "definitions": {
                "Override": {"type": "object", "properties": {
                    "Cpu": {"type": "integer"},
                    "Name": {"type": "string"},
                    "Items": {"type": "array", "items": {"$ref": "#/definitions/Item"}}
                }},
                "Item": {"type": "object", "properties": {"Weight": {"type": "number"}, "On": {"type": "boolean"}}}
            },
            "properties": {
                "Count": {"type": "integer"},
                "Flag": {"type": "boolean"},
                "Ratio": {"type": "number"},
                "Name": {"type": "string"},
                "Either": {"type": ["string", "integer"]},
                "Override": {"$ref": "#/definitions/Override"},
                "Loop": {"$ref": "#/definitions/Loop"}
            }
        })
    }

    #[test]
    fn coerces_scalars_to_declared_types() {
        let cases = [
            (json!({"Count": "5"}), json!({"Count": 5})),
            (json!({"Count": 5}), json!({"Count": 5})),
            (json!({"Count": " 7 "}), json!({"Count": 7})),
            (json!({"Count": "five"}), json!({"Count": "five"})),
            (json!({"Count": "5.5"}), json!({"Count": "5.5"})),
            (json!({"Flag": "true"}), json!({"Flag": true})),
            (json!({"Flag": "False"}), json!({"Flag": false})),
            (json!({"Flag": "yes"}), json!({"Flag": "yes"})),
            (json!({"Ratio": "0.5"}), json!({"Ratio": 0.5})),
            (json!({"Ratio": "2"}), json!({"Ratio": 2})),
            (json!({"Name": "5"}), json!({"Name": "5"})),
            (json!({"Either": "5"}), json!({"Either": "5"})),
            (json!({"Unknown": "5"}), json!({"Unknown": "5"})),
            (
                json!({"Override": {"Cpu": "256", "Name": "1", "Items": [{"Weight": "1.5", "On": "TRUE"}]}}),
                json!({"Override": {"Cpu": 256, "Name": "1", "Items": [{"Weight": 1.5, "On": true}]}}),
            ),
            (json!({"Loop": "5"}), json!({"Loop": "5"})),
            (json!({"Count": 1.0}), json!({"Count": 1})),
            (json!({"Count": 1.5}), json!({"Count": 1.5})),
            (json!({"Count": 1e300}), json!({"Count": 1e300})),
            (json!({"Ratio": 2.0}), json!({"Ratio": 2.0})),
        ];
        let root = schema();
        for (input, want) in cases {
            let mut got = input.clone();
            coerce_to_schema(&mut got, &root, &root);
            assert_eq!(got, want, "input {input}");
        }
    }

    #[test]
    fn survives_a_cyclic_reference() {
        let root = json!({"definitions": {"A": {"$ref": "#/definitions/A"}}, "properties": {"X": {"$ref": "#/definitions/A"}}});
        let mut value = json!({"X": "1"});
        coerce_to_schema(&mut value, &root, &root);
        assert_eq!(value, json!({"X": "1"}));
    }
}
