//! CloudFormation sends every scalar of a resource's properties as a string
//! (`"Count": "5"`, `"RunOnUpdate": "true"`), whereas `cfn test` and hand-written events
//! send native JSON. [`coerce_to_schema`] walks the properties alongside the resource
//! schema and turns such strings into the integer, number or boolean the schema declares,
//! so that validation and typed decoding see one shape whatever the sender.
//!
//! Typed models can also take such strings directly: a field read with [`deserialize`]
//! (`#[serde(deserialize_with = "cfn_protocol::lenient::deserialize")]`) accepts a
//! boolean, integer or number either native or as a string, alone or inside `Option`,
//! `Vec` and string-keyed maps, by the same rules as [`coerce_to_schema`].

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::BuildHasher;
use std::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, Unexpected, Visitor};
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

/// Deserializes a value whose scalars CloudFormation may have sent as strings (`"5"`,
/// `"true"`): booleans, integers and numbers are taken native or as such a string,
/// alone or inside `Option`, `Vec`, `BTreeMap<String, _>` and `HashMap<String, _>`.
/// A failure says what was expected and what kind of value came, never the value.
pub fn deserialize<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Lenient,
{
    T::deserialize_lenient(deserializer)
}

/// A type [`deserialize`] can read: a scalar CloudFormation may send as a string, or a
/// container of such values.
pub trait Lenient: Sized {
    /// Reads `Self`, taking its scalars native or as strings.
    fn deserialize_lenient<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error>;
}

/// Lets serde's own container impls read lenient items.
struct Item<T>(T);

impl<'de, T: Lenient> Deserialize<'de> for Item<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize_lenient(deserializer).map(Item)
    }
}

impl<T: Lenient> Lenient for Option<T> {
    fn deserialize_lenient<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Option::<Item<T>>::deserialize(deserializer).map(|item| item.map(|Item(value)| value))
    }
}

impl<T: Lenient> Lenient for Vec<T> {
    fn deserialize_lenient<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Vec::<Item<T>>::deserialize(deserializer)
            .map(|items| items.into_iter().map(|Item(value)| value).collect())
    }
}

impl<T: Lenient> Lenient for BTreeMap<String, T> {
    fn deserialize_lenient<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        BTreeMap::<String, Item<T>>::deserialize(deserializer)
            .map(|map| map.into_iter().map(|(k, Item(v))| (k, v)).collect())
    }
}

impl<T: Lenient, S: BuildHasher + Default> Lenient for HashMap<String, T, S> {
    fn deserialize_lenient<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        HashMap::<String, Item<T>, S>::deserialize(deserializer)
            .map(|map| map.into_iter().map(|(k, Item(v))| (k, v)).collect())
    }
}

/// A scalar as JSON or CloudFormation's string may carry it; `None` when the value is
/// not one (or out of its range).
trait Scalar: Sized {
    const EXPECTING: &'static str;
    fn from_bool(_: bool) -> Option<Self> {
        None
    }
    fn from_i64(_: i64) -> Option<Self> {
        None
    }
    fn from_u64(_: u64) -> Option<Self> {
        None
    }
    fn from_f64(_: f64) -> Option<Self> {
        None
    }
    fn from_text(text: &str) -> Option<Self>;
}

impl Scalar for bool {
    const EXPECTING: &'static str = "a boolean, or true or false as a string";
    fn from_bool(value: bool) -> Option<Self> {
        Some(value)
    }
    fn from_text(text: &str) -> Option<Self> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("true") {
            Some(true)
        } else if text.eq_ignore_ascii_case("false") {
            Some(false)
        } else {
            None
        }
    }
}

macro_rules! integer_scalar {
    ($($integer:ty),*) => {$(
        impl Scalar for $integer {
            const EXPECTING: &'static str = concat!(
                "an integer (", stringify!($integer), "), native or as a string"
            );
            fn from_i64(value: i64) -> Option<Self> {
                Self::try_from(value).ok()
            }
            fn from_u64(value: u64) -> Option<Self> {
                Self::try_from(value).ok()
            }
            fn from_f64(value: f64) -> Option<Self> {
                integral(Some(value), &["integer"]).and_then(|i| Self::try_from(i).ok())
            }
            fn from_text(text: &str) -> Option<Self> {
                text.trim().parse().ok()
            }
        }

        impl Lenient for $integer {
            fn deserialize_lenient<'de, D: Deserializer<'de>>(
                deserializer: D,
            ) -> Result<Self, D::Error> {
                deserializer.deserialize_any(ScalarVisitor(PhantomData))
            }
        }
    )*};
}

integer_scalar!(i8, i16, i32, i64, u8, u16, u32, u64);

macro_rules! float_scalar {
    ($($float:ty),*) => {$(
        impl Scalar for $float {
            const EXPECTING: &'static str = "a number, native or as a string";
            fn from_i64(value: i64) -> Option<Self> {
                Some(value as $float)
            }
            fn from_u64(value: u64) -> Option<Self> {
                Some(value as $float)
            }
            fn from_f64(value: f64) -> Option<Self> {
                Some(value as $float)
            }
            fn from_text(text: &str) -> Option<Self> {
                text.trim().parse::<$float>().ok().filter(|n| n.is_finite())
            }
        }

        impl Lenient for $float {
            fn deserialize_lenient<'de, D: Deserializer<'de>>(
                deserializer: D,
            ) -> Result<Self, D::Error> {
                deserializer.deserialize_any(ScalarVisitor(PhantomData))
            }
        }
    )*};
}

float_scalar!(f32, f64);

impl Lenient for bool {
    fn deserialize_lenient<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ScalarVisitor(PhantomData))
    }
}

struct ScalarVisitor<T>(PhantomData<T>);

impl<T: Scalar> ScalarVisitor<T> {
    // The kind of value only: what failed to parse is never repeated.
    fn refuse<E: de::Error>(&self, kind: &'static str, parsed: Option<T>) -> Result<T, E> {
        parsed.ok_or_else(|| E::invalid_value(Unexpected::Other(kind), self))
    }
}

impl<T: Scalar> Visitor<'_> for ScalarVisitor<T> {
    type Value = T;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(T::EXPECTING)
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<T, E> {
        self.refuse("a boolean", T::from_bool(value))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<T, E> {
        self.refuse("an integer out of range", T::from_i64(value))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<T, E> {
        self.refuse("an integer out of range", T::from_u64(value))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<T, E> {
        self.refuse("a number", T::from_f64(value))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<T, E> {
        self.refuse("a string that is not one", T::from_text(value))
    }
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
    #[derive(Debug, PartialEq, serde::Deserialize)]
    struct Typed {
        #[serde(deserialize_with = "super::deserialize")]
        count: u32,
        #[serde(default, deserialize_with = "super::deserialize")]
        flag: Option<bool>,
        #[serde(default, deserialize_with = "super::deserialize")]
        ratio: Option<f64>,
        #[serde(default, deserialize_with = "super::deserialize")]
        sizes: Option<Vec<i32>>,
        #[serde(default, deserialize_with = "super::deserialize")]
        limits: BTreeMap<String, u8>,
    }

    fn typed(value: Value) -> Result<Typed, String> {
        serde_json::from_value(value).map_err(|e| e.to_string())
    }

    #[test]
    fn typed_fields_take_scalars_native_or_as_strings() {
        let native = typed(json!({
            "count": 5, "flag": true, "ratio": 0.5, "sizes": [1, -2], "limits": {"a": 3}
        }));
        let strings = typed(json!({
            "count": " 5 ", "flag": "TRUE", "ratio": "0.5", "sizes": ["1", "-2"], "limits": {"a": "3"}
        }));
        let want = Typed {
            count: 5,
            flag: Some(true),
            ratio: Some(0.5),
            sizes: Some(vec![1, -2]),
            limits: BTreeMap::from([("a".to_string(), 3)]),
        };
        assert_eq!(native, Ok(want));
        assert_eq!(strings, native);
        let absent = typed(json!({"count": 1.0, "flag": null}));
        assert_eq!(
            absent,
            Ok(Typed {
                count: 1,
                flag: None,
                ratio: None,
                sizes: None,
                limits: BTreeMap::new(),
            })
        );
        assert_eq!(
            typed(json!({"count": "2", "ratio": 3})).map(|t| t.ratio),
            Ok(Some(3.0))
        );
    }

    #[test]
    fn typed_fields_refuse_other_values_without_quoting_them() {
        let cases = [
            json!({"count": "secret-5"}),
            json!({"count": -1}),
            json!({"count": 1.5}),
            json!({"count": 4_294_967_296_u64}),
            json!({"count": true}),
            json!({"count": 1, "flag": "secret-yes"}),
            json!({"count": 1, "flag": 1}),
            json!({"count": 1, "ratio": "secret-NaN"}),
            json!({"count": 1, "sizes": ["secret-1"]}),
            json!({"count": 1, "limits": {"a": "300"}}),
            json!({"count": [1]}),
            json!({}),
        ];
        for input in cases {
            let error = typed(input.clone()).expect_err("refused");
            assert!(!error.contains("secret"), "{input}: {error}");
            assert!(!error.contains("300"), "{input}: {error}");
        }
    }
}
