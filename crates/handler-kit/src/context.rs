//! What one invocation hands the next through CloudFormation's callback context: a type's
//! own context struct, carried as JSON.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

/// A callback context: written by one invocation, read back by the next.
pub trait Carried: Serialize + DeserializeOwned {
    /// The context as CloudFormation carries it.
    fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// The context in `value`, or `None` when this handler did not write it.
    fn from_value(value: &Value) -> Option<Self> {
        serde_json::from_value(value.clone()).ok()
    }
}

/// For `skip_serializing_if`: a count of zero (e.g. throttled faults in a row) is left out.
pub fn is_zero(n: &u8) -> bool {
    *n == 0
}
