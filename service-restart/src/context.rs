//! What one invocation hands the next: the record's Id and the restart it follows (the
//! restart itself while following: a poll then costs one DescribeServices).

use handler_kit::context::Carried;
use serde::{Deserialize, Serialize};

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
    #[serde(default, skip_serializing_if = "handler_kit::context::is_zero")]
    pub throttled: u8,
}

impl Carried for CallbackContext {}
