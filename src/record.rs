//! The durable record of a TaskRun: the properties it was given and its latest run.
//! It outlives ECS's one-hour memory of stopped tasks, so Read and List answer from it.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::model::{READ_ONLY, WRITE_ONLY};
use crate::outcome::{failure_line, TaskState};
use crate::update_criteria::EnvSnapshot;

pub const RECORD_VERSION: u32 = 1;
/// SSM's limit for an advanced (Intelligent-Tiering) parameter value, less some headroom.
pub const MAX_RECORD_BYTES: usize = 8000;
/// Above this many tasks, only failing tasks keep their per-container detail.
const DETAILED_TASKS: usize = 10;
pub const MAX_PLACEMENT_LINES: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RunStatus {
    Running,
    Succeeded,
    Failed,
    TimedOut,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "RUNNING",
            Self::Succeeded => "SUCCEEDED",
            Self::Failed => "FAILED",
            Self::TimedOut => "TIMED_OUT",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerResult {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// How one task ended; the ARN is kept as the suffix after the run's ARN prefix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskResult {
    pub task: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_reason: Option<String>,
    #[serde(default)]
    pub containers: Vec<ContainerResult>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Run {
    /// The request token of the operation that started this run: a redelivered
    /// invocation with the same token resumes the run instead of starting another.
    pub token: String,
    pub status: RunStatus,
    pub started_at: f64,
    pub deadline: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The task definition revision the run used, for UpdateCriteria on the next update.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_definition_arn: Option<String>,
    /// Task ARNs share everything up to the last `/`: stored once, so that a run of
    /// 100 tasks fits one parameter.
    #[serde(default)]
    pub arn_prefix: String,
    #[serde(default)]
    pub task_ids: Vec<String>,
    #[serde(default)]
    pub deciding: Vec<String>,
    /// Lines for tasks that could not be placed (at most [`MAX_PLACEMENT_LINES`]).
    #[serde(default)]
    pub placement_failures: Vec<String>,
    /// How many tasks could not be placed, all told.
    #[serde(default)]
    pub not_placed: usize,
    /// The environment values UpdateCriteria name, as this run's tasks saw them
    /// (task definition revision with Overrides applied): the next update compares with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub criteria_env: Option<EnvSnapshot>,
    #[serde(default)]
    pub results: Vec<TaskResult>,
}

impl Run {
    pub fn new(token: String, now: f64, timeout_seconds: u32) -> Self {
        Self {
            token,
            status: RunStatus::Running,
            started_at: now,
            deadline: now + f64::from(timeout_seconds),
            finished_at: None,
            reason: None,
            task_definition_arn: None,
            arn_prefix: String::new(),
            task_ids: Vec::new(),
            deciding: Vec::new(),
            placement_failures: Vec::new(),
            not_placed: 0,
            criteria_env: None,
            results: Vec::new(),
        }
    }

    /// Keeps the first placement failure lines and the count of them all.
    pub fn set_placement_failures(&mut self, mut lines: Vec<String>) {
        self.not_placed = lines.len();
        if lines.len() > MAX_PLACEMENT_LINES {
            let more = lines.len() - MAX_PLACEMENT_LINES;
            lines.truncate(MAX_PLACEMENT_LINES);
            lines.push(format!("... and {more} more tasks not placed"));
        }
        self.placement_failures = lines;
    }

    /// Every task the run asked for: started or not placed.
    pub fn total_tasks(&self) -> usize {
        self.task_ids.len() + self.not_placed
    }

    pub fn set_task_arns(&mut self, arns: &[String]) {
        let prefix = match arns.first().and_then(|a| a.rfind('/')) {
            Some(cut) => &arns[0][..=cut],
            None => "",
        };
        if arns.iter().all(|a| a.starts_with(prefix)) {
            self.arn_prefix = prefix.to_string();
            self.task_ids = arns.iter().map(|a| a[prefix.len()..].to_string()).collect();
        } else {
            self.arn_prefix = String::new();
            self.task_ids = arns.to_vec();
        }
    }

    pub fn task_arns(&self) -> Vec<String> {
        self.task_ids
            .iter()
            .map(|id| format!("{}{id}", self.arn_prefix))
            .collect()
    }

    fn short(&self, arn: &str) -> String {
        arn.strip_prefix(self.arn_prefix.as_str())
            .unwrap_or(arn)
            .to_string()
    }

    /// Ends the run and keeps how each task ended (every task for small runs, the
    /// failing ones for large runs).
    pub fn finish(
        &mut self,
        status: RunStatus,
        reason: Option<String>,
        tasks: &[TaskState],
        now: f64,
    ) {
        self.status = status;
        self.reason = reason;
        self.finished_at = Some(now);
        let detailed = tasks.len() <= DETAILED_TASKS;
        self.results = tasks
            .iter()
            .filter(|t| detailed || failure_line(t, &self.deciding).is_some())
            .map(|t| TaskResult {
                task: self.short(&t.arn),
                stop_code: t.stop_code.clone(),
                stopped_reason: t.stopped_reason.clone(),
                containers: t
                    .containers
                    .iter()
                    .map(|c| ContainerResult {
                        name: c.name.clone(),
                        exit_code: c.exit_code,
                        reason: c.reason.clone(),
                    })
                    .collect(),
            })
            .collect();
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunRecord {
    pub version: u32,
    pub id: String,
    /// The properties as the user gave them (scalars typed), without read-only ones.
    pub properties: Value,
    pub run: Run,
}

impl RunRecord {
    pub fn new(id: String, properties: &Value, run: Run) -> Self {
        Self {
            version: RECORD_VERSION,
            id,
            properties: without_read_only(properties),
            run,
        }
    }

    /// The resource model CloudFormation sees: the properties, less the write-only ones
    /// (overrides may hold secrets), plus the outputs.
    pub fn model(&self) -> Value {
        let mut model = match &self.properties {
            Value::Object(map) => map.clone(),
            _ => Map::new(),
        };
        for key in WRITE_ONLY {
            model.remove(key);
        }
        let run = &self.run;
        model.insert("Id".into(), Value::String(self.id.clone()));
        model.insert(
            "TaskArns".into(),
            Value::Array(run.task_arns().into_iter().map(Value::String).collect()),
        );
        model.insert("Status".into(), Value::String(run.status.as_str().into()));
        if let Some(reason) = &run.reason {
            model.insert("StatusReason".into(), Value::String(reason.clone()));
        }
        if !run.results.is_empty() {
            let tasks = run.results.iter().map(|r| {
                let mut task = Map::new();
                task.insert(
                    "TaskArn".into(),
                    Value::String(format!("{}{}", run.arn_prefix, r.task)),
                );
                if let Some(code) = &r.stop_code {
                    task.insert("StopCode".into(), Value::String(code.clone()));
                }
                if let Some(reason) = &r.stopped_reason {
                    task.insert("StoppedReason".into(), Value::String(reason.clone()));
                }
                let containers = r.containers.iter().map(|c| {
                    let mut container = Map::new();
                    container.insert("Name".into(), Value::String(c.name.clone()));
                    if let Some(code) = c.exit_code {
                        container.insert("ExitCode".into(), Value::from(code));
                    }
                    if let Some(reason) = &c.reason {
                        container.insert("Reason".into(), Value::String(reason.clone()));
                    }
                    Value::Object(container)
                });
                task.insert("Containers".into(), Value::Array(containers.collect()));
                Value::Object(task)
            });
            model.insert("Tasks".into(), Value::Array(tasks.collect()));
        }
        model.insert("StartedAt".into(), Value::String(iso8601(run.started_at)));
        if let Some(finished) = run.finished_at {
            model.insert("FinishedAt".into(), Value::String(iso8601(finished)));
        }
        Value::Object(model)
    }

    /// The parameter value, trimmed to fit SSM's size limit: detail goes first,
    /// then the length of the reason; the task ARNs and properties always stay, and when
    /// they alone are too large the record cannot be kept.
    pub fn to_parameter_value(&self) -> Result<String, String> {
        let mut record = self.clone();
        loop {
            let text = serde_json::to_string(&record).map_err(|e| e.to_string())?;
            if text.len() <= MAX_RECORD_BYTES {
                return Ok(text);
            }
            if record.run.results.pop().is_some() {
                continue;
            }
            match &mut record.run.reason {
                Some(reason) if reason.len() > 200 => {
                    let mut cut = reason.len() / 2;
                    while !reason.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    reason.truncate(cut);
                    reason.push_str(" …");
                }
                _ => {
                    return Err(format!(
                        "the run record of {} would take {} bytes, more than the {MAX_RECORD_BYTES} SSM keeps: the properties are too large",
                        record.id,
                        text.len()
                    ))
                }
            }
        }
    }
}

pub fn without_read_only(properties: &Value) -> Value {
    match properties {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| !READ_ONLY.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        _ => Value::Object(Map::new()),
    }
}

fn iso8601(epoch_seconds: f64) -> String {
    use aws_smithy_types::date_time::{DateTime, Format};
    DateTime::from_secs_f64(epoch_seconds)
        .fmt(Format::DateTime)
        .unwrap_or_else(|_| format!("{epoch_seconds}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::ContainerState;
    use serde_json::json;

    fn task(i: usize, exit: i32) -> TaskState {
        TaskState {
            arn: format!("arn:aws:ecs:us-east-1:123456789012:task/cluster/{i:032x}"),
            last_status: "STOPPED".into(),
            stop_code: Some("EssentialContainerExited".into()),
            stopped_reason: Some("Essential container in task exited".into()),
            started: true,
            containers: vec![ContainerState {
                name: "app".into(),
                exit_code: Some(exit),
                reason: None,
            }],
        }
    }

    #[test]
    fn model_carries_properties_and_outputs() {
        let mut run = Run::new("tok".into(), 1_700_000_000.0, 60);
        let tasks = vec![task(1, 0)];
        run.set_task_arns(&[tasks[0].arn.clone()]);
        run.deciding = vec!["app".into()];
        run.finish(RunStatus::Succeeded, None, &tasks, 1_700_000_030.5);
        let record = RunRecord::new(
            "Migrate-0123".into(),
            &json!({"Cluster": "c", "TaskDefinition": "t", "Status": "bogus", "Id": "other"}),
            run,
        );
        assert_eq!(
            record.model(),
            json!({
                "Cluster": "c", "TaskDefinition": "t", "Id": "Migrate-0123",
                "TaskArns": [tasks[0].arn], "Status": "SUCCEEDED",
                "Tasks": [{"TaskArn": tasks[0].arn, "StopCode": "EssentialContainerExited",
                           "StoppedReason": "Essential container in task exited",
                           "Containers": [{"Name": "app", "ExitCode": 0}]}],
                "StartedAt": "2023-11-14T22:13:20Z", "FinishedAt": "2023-11-14T22:13:50.5Z"
            })
        );
        let text = record.to_parameter_value().unwrap();
        let back: RunRecord = serde_json::from_str(&text).unwrap();
        assert_eq!(back, record);
    }

    #[test]
    fn a_hundred_task_run_fits_one_parameter() {
        let tasks: Vec<TaskState> = (0..100)
            .map(|i| task(i, if i % 3 == 0 { 1 } else { 0 }))
            .collect();
        let mut run = Run::new("tok".into(), 0.0, 60);
        run.set_task_arns(&tasks.iter().map(|t| t.arn.clone()).collect::<Vec<_>>());
        run.deciding = vec!["app".into()];
        run.finish(RunStatus::Failed, Some("x".repeat(20_000)), &tasks, 1.0);
        assert_eq!(run.results.len(), 34, "only failing tasks keep detail");
        let record = RunRecord::new("id".into(), &json!({"Cluster": "c"}), run);
        let text = record.to_parameter_value().unwrap();
        assert!(text.len() <= MAX_RECORD_BYTES, "{}", text.len());
        let back: RunRecord = serde_json::from_str(&text).unwrap();
        assert_eq!(back.run.task_arns().len(), 100);
        assert_eq!(back.run.task_arns()[5], tasks[5].arn);
    }
}
