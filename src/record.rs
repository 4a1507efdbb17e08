//! The durable record of a TaskRun: the properties it was given, its latest run, and
//! the fingerprint of the last run that succeeded. It outlives ECS's one-hour memory of
//! stopped tasks, so Read and List answer from it, and it is written before every
//! action on the tasks, so that a crash or a redelivery resumes from it.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::machine::{Ending, Phase, Run};
use crate::model::{READ_ONLY, WRITE_ONLY};
use crate::update_policy::Fingerprint;

pub const RECORD_VERSION: u32 = 2;
/// SSM's limit for an advanced parameter value, less some headroom, for the record as
/// stored (deflated when over 4 KB: see `handler_kit::records::encode`).
pub const MAX_RECORD_BYTES: usize = 8000;

/// An update that had to wait for an earlier run to stop: what it was asked, kept here
/// because its callbacks carry the model without the write-only Overrides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingUpdate {
    pub token: String,
    pub properties: Value,
    #[serde(default)]
    pub rollback: bool,
}

/// A run that a rollback of the update that started it may undo (its properties have
/// `OnRollback`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Undoable {
    /// The token of the run it undoes: the record's run, or nothing is undone.
    pub run: String,
    /// A digest of the properties that run was started with (`undo::properties_digest`):
    /// a rollback undoes the run only when the properties it rolls back from (the
    /// request's previous ones) are these.
    pub properties: String,
}

/// How a failed undo is answered (`OnRollback.IfUndoFails`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum IfUndoFails {
    /// SUCCESS, the failure in Status, StatusReason and the message: the rollback goes on.
    Report,
    /// FAILED: the stack stays UPDATE_ROLLBACK_FAILED.
    Fail,
}

/// While the record's run is an undo: what its tasks are launched with, and how its
/// failure is answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UndoRun {
    /// The token of the undo's run: what the record's run is while it is this undo.
    pub run: String,
    /// The digest of the undone run's properties: a later rollback from them (a
    /// continue-update-rollback after a failed undo) runs the undo again.
    pub undoes: String,
    /// The undone run's properties with OnRollback's overrides, its resolved task
    /// definition and Count 1 (the record's `properties` are the rollback's desired ones:
    /// the model CloudFormation gets back).
    pub launch: Value,
    pub if_fails: IfUndoFails,
}

impl RunRecord {
    /// The undo the record's run is, if it is one.
    pub fn undo_run(&self) -> Option<&UndoRun> {
        self.undo.as_ref().filter(|undo| undo.run == self.run.token)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunRecord {
    pub version: u32,
    pub id: String,
    /// The properties as the user gave them (scalars typed), without read-only ones.
    pub properties: Value,
    /// The fingerprint of the last run that succeeded: what an update compares with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<Fingerprint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_update: Option<PendingUpdate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undoable: Option<Undoable>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undo: Option<UndoRun>,
    /// What of the run has been announced to EventBridge (`Events`), as of the record's
    /// last write: it rides along with the writes the engine makes, never a write of its
    /// own (see `crate::events::Announced`). Absent in records written before events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub announced: Option<crate::events::Announced>,
    pub run: Run,
}

/// The `Status` output of a run (kept with the run: the events say it too).
pub use crate::machine::status;

impl RunRecord {
    pub fn new(id: String, properties: &Value, run: Run) -> Self {
        Self {
            version: RECORD_VERSION,
            id,
            properties: without_read_only(properties),
            baseline: None,
            pending_update: None,
            undoable: None,
            undo: None,
            announced: None,
            run,
        }
    }

    /// Takes `run` as the record's run; a run that succeeded becomes the baseline. A run of
    /// no task (Count 0) does not: it gave no task any value to compare with, so the next
    /// update compares with the run before it (or runs, when none succeeded).
    pub fn absorb(&mut self, run: Run) {
        if run.phase == Phase::Ended && run.ending == Some(Ending::Succeeded) && run.plan.count > 0
        {
            if let Some(fingerprint) = &run.fingerprint {
                self.baseline = Some(fingerprint.clone());
            }
        }
        self.run = run;
    }

    /// The resource model CloudFormation sees.
    pub fn model(&self) -> Value {
        model(&self.properties, &self.id, &self.run)
    }

    /// The parameter value, trimmed to fit SSM's size limit (see [`RunRecord::fitted`]).
    pub fn to_parameter_value(&self) -> Result<String, String> {
        let record = self.fitted()?;
        serde_json::to_string(&record).map_err(|e| e.to_string())
    }

    /// The record as it is kept: trimmed until it fits SSM's size limit once stored —
    /// log tails go first (the last task's first), then task detail, then the length of
    /// the reason; when the properties and task ARNs alone are too large the record
    /// cannot be kept. What CREATE and UPDATE answer is this record's model too, so a
    /// READ answers what they did, and no answer grows with the size of log lines.
    pub fn fitted(&self) -> Result<RunRecord, String> {
        let mut record = self.clone();
        loop {
            let text = serde_json::to_string(&record).map_err(|e| e.to_string())?;
            let stored = handler_kit::records::encode(&text).len();
            if stored <= MAX_RECORD_BYTES {
                return Ok(record);
            }
            if let Some(container) = record
                .run
                .results
                .iter_mut()
                .rev()
                .flat_map(|r| r.containers.iter_mut().rev())
                .find(|c| !c.log_tail.is_empty())
            {
                container.log_tail.clear();
                continue;
            }
            if record.run.results.pop().is_some() {
                continue;
            }
            if !record
                .run
                .reason
                .as_mut()
                .is_some_and(handler_kit::records::halve)
            {
                return Err(format!(
                    "the run record of {} would take {stored} bytes, more than the {MAX_RECORD_BYTES} SSM keeps: the properties are too large",
                    record.id,
                ));
            }
        }
    }
}

/// The resource model: `properties` less the write-only ones (overrides may hold
/// secrets) and less any stale outputs, plus the run's outputs.
pub fn model(properties: &Value, id: &str, run: &Run) -> Value {
    let mut model = match without_read_only(properties) {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    for key in WRITE_ONLY {
        model.remove(key);
    }
    model.insert("Id".into(), Value::String(id.to_string()));
    // The tasks that decided the run; tasks a retry replaced are in Tasks only.
    model.insert(
        "TaskArns".into(),
        Value::Array(run.current_arns().into_iter().map(Value::String).collect()),
    );
    model.insert("Status".into(), Value::String(status(run).into()));
    if let Some(reason) = &run.reason {
        model.insert("StatusReason".into(), Value::String(reason.clone()));
    }
    if !run.results.is_empty() {
        let tasks = run.results.iter().map(|r| {
            let mut task = Map::new();
            task.insert(
                "TaskArn".into(),
                Value::String(format!("{}{}", run.tasks.prefix, r.task)),
            );
            if r.attempt > 0 {
                task.insert("Attempt".into(), Value::from(r.attempt));
            }
            if let Some(cause) = &r.retried_because {
                task.insert("RetriedBecause".into(), Value::String(cause.clone()));
            }
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
                if !c.log_tail.is_empty() {
                    let lines = c.log_tail.iter().cloned().map(Value::String).collect();
                    container.insert("LogTail".into(), Value::Array(lines));
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
    if let Some(output) = &run.output {
        model.insert("Output".into(), Value::String(output.clone()));
    }
    Value::Object(model)
}

pub fn without_read_only(properties: &Value) -> Value {
    handler_kit::records::without_keys(properties, &READ_ONLY)
}

pub use handler_kit::clock::iso8601;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::LaunchMode;
    use crate::outcome::{ContainerState, TaskState};
    use crate::task_result::TaskResult;
    use serde_json::json;

    fn task(i: usize, exit: i32) -> TaskState {
        TaskState {
            arn: format!("arn:aws:ecs:us-east-1:123456789012:task/cluster/{i:032x}"),
            last_status: "STOPPED".into(),
            stop_code: Some("EssentialContainerExited".into()),
            stopped_reason: Some("Essential container in task exited".into()),
            started: true,
            stopped_at: None,
            containers: vec![ContainerState {
                name: "app".into(),
                exit_code: Some(exit),
                reason: None,
            }],
        }
    }

    fn run(count: u32) -> Run {
        let plan = crate::machine::tests::plan(LaunchMode::RunTask, count);
        Run::new(
            "tok".into(),
            "cluster".into(),
            plan,
            1_700_000_000.0,
            60,
            15,
        )
    }

    #[test]
    fn only_a_run_that_ran_tasks_and_succeeded_becomes_the_baseline() {
        let print = |triggers: &str| Fingerprint {
            triggers: triggers.into(),
            ..Fingerprint::default()
        };
        let ended = |count: u32, ending: Ending, triggers: &str| {
            let mut run = run(count);
            run.phase = Phase::Ended;
            run.ending = Some(ending);
            run.fingerprint = Some(print(triggers));
            run
        };
        let mut record = RunRecord::new("Id".into(), &json!({}), run(1));
        record.absorb(ended(1, Ending::Succeeded, "a"));
        assert_eq!(record.baseline, Some(print("a")));
        for (count, ending, why) in [
            (0, Ending::Succeeded, "Count 0 ran nothing"),
            (1, Ending::TasksFailed, "it failed"),
            (1, Ending::TimedOut, "it timed out"),
        ] {
            record.absorb(ended(count, ending, "b"));
            assert_eq!(record.baseline, Some(print("a")), "{why}");
        }
        let mut running = ended(1, Ending::Succeeded, "b");
        running.phase = Phase::Running;
        record.absorb(running);
        assert_eq!(record.baseline, Some(print("a")), "still running");
    }

    #[test]
    fn a_record_written_before_events_still_loads_and_is_written_as_it_was() {
        let record = RunRecord::new("Id".into(), &json!({"Cluster": "c"}), run(1));
        let text = record.to_parameter_value().unwrap();
        assert!(!text.contains("announced"), "{text}");
        let back: RunRecord = serde_json::from_str(&text).unwrap();
        assert_eq!(back.announced, None);
        let mut announcing = record.clone();
        announcing.announced = Some(crate::events::Announced {
            started: true,
            ..crate::events::Announced::none("tok")
        });
        let text = announcing.to_parameter_value().unwrap();
        assert!(
            text.contains(r#""announced":{"run":"tok","started":true}"#),
            "{text}"
        );
        let back: RunRecord = serde_json::from_str(&text).unwrap();
        assert_eq!(back, announcing);
    }

    #[test]
    fn formats_timestamps() {
        assert_eq!(iso8601(1_700_000_000.0), "2023-11-14T22:13:20Z");
        assert_eq!(iso8601(1_700_000_030.5), "2023-11-14T22:13:50.5Z");
        assert_eq!(iso8601(0.0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601(951_782_400.0), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn model_carries_properties_and_outputs_never_overrides() {
        let mut run = run(1);
        let t = task(1, 0);
        run.tasks.push(&t.arn);
        run.phase = Phase::Ended;
        run.ending = Some(Ending::Succeeded);
        run.finished_at = Some(1_700_000_030.5);
        run.results = vec![TaskResult::from_state(&t, &run.tasks.prefix)];
        let record = RunRecord::new(
            "Migrate-0123".into(),
            &json!({"Cluster": "c", "TaskDefinition": "t", "Status": "bogus", "Id": "other",
                    "Overrides": {"Cpu": "256"}}),
            run,
        );
        assert_eq!(
            record.model(),
            json!({
                "Cluster": "c", "TaskDefinition": "t", "Id": "Migrate-0123",
                "TaskArns": [t.arn], "Status": "SUCCEEDED",
                "Tasks": [{"TaskArn": t.arn, "StopCode": "EssentialContainerExited",
                           "StoppedReason": "Essential container in task exited",
                           "Containers": [{"Name": "app", "ExitCode": 0}]}],
                "StartedAt": "2023-11-14T22:13:20Z", "FinishedAt": "2023-11-14T22:13:50.5Z"
            })
        );
        let text = record.to_parameter_value().unwrap();
        assert!(text.contains("Overrides"), "the record keeps the overrides");
        let back: RunRecord = serde_json::from_str(&text).unwrap();
        assert_eq!(back, record);
    }

    #[test]
    fn a_hundred_task_run_fits_one_parameter() {
        let tasks: Vec<TaskState> = (0..100).map(|i| task(i, i32::from(i % 3 == 0))).collect();
        let mut run = run(100);
        for t in &tasks {
            run.tasks.push(&t.arn);
        }
        run.results = tasks
            .iter()
            .map(|t| TaskResult::from_state(t, &run.tasks.prefix))
            .collect();
        run.reason = Some("x".repeat(20_000));
        let record = RunRecord::new("id".into(), &json!({"Cluster": "c"}), run);
        let text = record.to_parameter_value().unwrap();
        let stored = handler_kit::records::encode(&text);
        assert!(stored.len() <= MAX_RECORD_BYTES, "{}", stored.len());
        let back: RunRecord =
            serde_json::from_str(&handler_kit::records::decode(&stored).unwrap()).unwrap();
        assert_eq!(back.run.tasks.arns().len(), 100);
        assert_eq!(back.run.tasks.arns()[5], tasks[5].arn);
    }

    /// A record over 4 KB makes its SSM parameter advanced for good, billed per month
    /// (SSM API Reference, PutParameter, `Tier`): deflated, a hundred-task run stays a
    /// standard parameter.
    #[test]
    fn a_hundred_task_run_stays_a_standard_parameter() {
        let tasks: Vec<TaskState> = (0..100).map(|i| task(i, i32::from(i % 3 == 0))).collect();
        let mut run = run(100);
        for t in &tasks {
            run.tasks.push(&t.arn);
        }
        run.results = tasks
            .iter()
            .filter(|t| t.containers[0].exit_code != Some(0))
            .map(|t| TaskResult::from_state(t, &run.tasks.prefix))
            .collect();
        run.reason = Some(crate::outcome::failure_message(
            &tasks
                .iter()
                .filter_map(|t| crate::outcome::failure_line(t, &["app".to_string()]))
                .collect::<Vec<_>>(),
            100,
        ));
        let record = RunRecord::new(
            "Migrate-0123456789abcdef".into(),
            &json!({"Cluster": "production", "TaskDefinition": "migrate", "Count": 100}),
            run,
        );
        let text = record.to_parameter_value().unwrap();
        assert!(
            text.len() > handler_kit::records::STANDARD_VALUE_BYTES,
            "{}",
            text.len()
        );
        let stored = handler_kit::records::encode(&text);
        assert!(
            stored.len() <= handler_kit::records::STANDARD_VALUE_BYTES,
            "{} bytes deflated ({} as JSON)",
            stored.len(),
            text.len()
        );
    }
}
