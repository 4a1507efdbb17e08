//! What one invocation hands the next: the record's Id and the restart it follows (the
//! restart itself while following: a poll then costs one DescribeServices).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::machine::Restart;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallbackContext {
    pub id: String,
    /// The token of the restart followed; an operation whose first step is to be done
    /// again (a passing fault) carries its own.
    pub token: String,
    /// `true`: the first step is to be done again.
    #[serde(default)]
    pub start: bool,
    #[serde(default)]
    pub give_up_at: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart: Option<Restart>,
    /// Passing faults that were throttling, in a row: the callback backs off.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub throttled: u8,
}

fn is_zero(n: &u8) -> bool {
    *n == 0
}

impl CallbackContext {
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    pub fn from_value(value: &Value) -> Option<Self> {
        serde_json::from_value(value.clone()).ok()
    }
}
