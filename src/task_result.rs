//! How each task of a run ended, as the run keeps it: in its record (which outlives ECS's
//! one-hour memory of stopped tasks) and in the `Tasks` output.

use serde::{Deserialize, Serialize};

use crate::outcome::{ContainerState, TaskState};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerResult {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The last lines of its log, for a failing container.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub log_tail: Vec<String>,
}

/// How one task ended; the ARN is kept as the suffix after the run's ARN prefix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskResult {
    pub task: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attempt: u8,
    /// Set when a retry replaced this task: why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retried_because: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_reason: Option<String>,
    #[serde(default)]
    pub containers: Vec<ContainerResult>,
    /// ECS never reported it started (`startedAt`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub never_started: bool,
    /// When it stopped (epoch seconds); kept only for the ends a run remembers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<f64>,
}

fn is_zero(n: &u8) -> bool {
    *n == 0
}

impl TaskResult {
    pub fn from_state(task: &TaskState, prefix: &str) -> Self {
        Self {
            task: task
                .arn
                .strip_prefix(prefix)
                .unwrap_or(&task.arn)
                .to_string(),
            attempt: 0,
            retried_because: None,
            stop_code: task.stop_code.clone(),
            stopped_reason: task.stopped_reason.clone(),
            containers: task
                .containers
                .iter()
                .map(|c| ContainerResult {
                    name: c.name.clone(),
                    exit_code: c.exit_code,
                    reason: c.reason.clone(),
                    log_tail: Vec::new(),
                })
                .collect(),
            never_started: !task.started,
            stopped_at: None,
        }
    }

    /// The task as DescribeTasks showed it when it stopped (for a remembered end).
    pub fn to_state(&self, prefix: &str) -> TaskState {
        TaskState {
            arn: format!("{prefix}{}", self.task),
            last_status: "STOPPED".into(),
            stop_code: self.stop_code.clone(),
            stopped_reason: self.stopped_reason.clone(),
            started: !self.never_started,
            stopped_at: self.stopped_at,
            containers: self
                .containers
                .iter()
                .map(|c| ContainerState {
                    name: c.name.clone(),
                    exit_code: c.exit_code,
                    reason: c.reason.clone(),
                })
                .collect(),
        }
    }
}
