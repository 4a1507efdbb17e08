//! What a restart's inputs were, as digests: the restart carries its own, and the record
//! keeps the one of the last restart that succeeded as the baseline an UPDATE compares
//! with (`policy` makes them from the properties and compares them).
//!
//! A module of its own, depending on nothing in the crate: the state machine's `Restart`
//! carries a fingerprint without knowing the properties it is made of.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Fingerprint {
    /// Digest of the cluster and the service.
    pub target: String,
    pub triggers: String,
}
