//! The task ARNs of a run, with the prefix they share stored once.

use serde::{Deserialize, Serialize};

/// Task ARNs of one run share everything up to the last `/`: stored once, so that a
/// run of 100 tasks fits a record and a callback context.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskArns {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub prefix: String,
    #[serde(default)]
    pub ids: Vec<String>,
}

impl TaskArns {
    pub fn push(&mut self, arn: &str) {
        if self.ids.is_empty() && self.prefix.is_empty() {
            if let Some(cut) = arn.rfind('/') {
                self.prefix = arn[..=cut].to_string();
            }
        }
        if !self.prefix.is_empty() && !arn.starts_with(&self.prefix) {
            // ARNs of another shape: keep every one whole.
            let prefix = std::mem::take(&mut self.prefix);
            for id in &mut self.ids {
                *id = format!("{prefix}{id}");
            }
        }
        let id = arn.strip_prefix(self.prefix.as_str()).unwrap_or(arn);
        if !self.ids.iter().any(|known| known == id) {
            self.ids.push(id.to_string());
        }
    }

    pub fn arns(&self) -> Vec<String> {
        self.ids
            .iter()
            .map(|id| format!("{}{id}", self.prefix))
            .collect()
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub fn contains(&self, arn: &str) -> bool {
        let id = arn.strip_prefix(self.prefix.as_str()).unwrap_or(arn);
        self.ids.iter().any(|known| known == id)
    }
}
