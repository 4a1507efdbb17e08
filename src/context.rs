//! What one invocation hands the next through CloudFormation: just enough to find the run.
//! Everything else lives in the durable run record.

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallbackContext {
    pub id: String,
    /// Which run this context follows: a context from a superseded run is stale.
    pub run_token: String,
    #[serde(default)]
    pub polls: u32,
}

impl CallbackContext {
    pub fn to_value(&self) -> Value {
        serde_json::json!({"id": self.id, "runToken": self.run_token, "polls": self.polls})
    }

    pub fn from_value(value: &Value) -> Option<Self> {
        serde_json::from_value(value.clone()).ok()
    }
}
