//! What one invocation hands the next through CloudFormation. For a run whose tasks are
//! running, the run itself travels (a few KB at most: task ids share one prefix), so a
//! poll costs a DescribeTasks and nothing else; the record is read again only when the
//! run changes state, and then the token and revision tell a stale callback apart.

use handler_kit::context::Carried;
use serde::{Deserialize, Serialize};

use crate::machine::Run;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Stage {
    /// The first step (validate, plan, record) met a passing fault: do it again. Safe,
    /// since it is idempotent by the request token.
    Start,
    /// Following the operation's own run.
    Run,
    /// An update stopping the run it found, before deciding whether to run its own.
    Supersede,
    /// A delete stopping the run it found, before deleting the record.
    Delete,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallbackContext {
    pub id: String,
    pub stage: Stage,
    /// The token of the run this operation follows or stops.
    pub token: String,
    /// The revision of that run in the record when this context was made.
    pub revision: u32,
    /// Past this moment a callback that cannot read the record stops trying: the
    /// operation fails rather than answer IN_PROGRESS for ever.
    #[serde(default)]
    pub give_up_at: f64,
    /// The run, while its tasks run (nothing else needs it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<Run>,
    /// Passing faults that were throttling, in a row: the callback backs off.
    #[serde(default, skip_serializing_if = "handler_kit::context::is_zero")]
    pub throttled: u8,
    /// What of the run `token` has been announced to EventBridge (`Events`): carried to
    /// the next invocation at no cost (see `crate::events::Announced`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub announced: Option<crate::events::Announced>,
}

impl Carried for CallbackContext {}
