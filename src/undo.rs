//! Undo on rollback (`OnRollback`): which run a rollback undoes, and what it launches.
//!
//! A stack update runs a migration with the new task definition (which knows the new
//! migration); a later resource fails and CloudFormation rolls the stack back, sending an
//! UPDATE with `rollback: true`, the old properties as desired and the failed new ones as
//! previous. The old task definition cannot know the new migration, so the undo runs with
//! the task definition revision of the run being undone, from its record, and the
//! overrides its properties gave under `OnRollback`.
//!
//! Undone is only what the rolled-back update itself ran, and only when it succeeded: the
//! record's run, started by an update whose properties had `OnRollback` ([`Undoable`],
//! set when the run starts and cleared by any update that runs nothing), ended
//! SUCCEEDED having run tasks, and the rollback's previous properties are the ones that run
//! was started with. Anything else (the update skipped its run, its run failed or was
//! stopped, an older run) has nothing of this update's to undo, and the rollback is an
//! update like any other (`RunOnRollback`).

use serde_json::{Map, Value};

use crate::machine::{Ending, Phase};
use crate::model::WRITE_ONLY;
use crate::record::{without_read_only, IfUndoFails, RunRecord, UndoRun, Undoable};
use crate::update_policy::digest;

/// The digest a rollback's previous properties are matched with: without the read-only
/// outputs, and without the write-only properties (`Overrides`, `OnRollback`), which
/// CloudFormation is not documented to send back in `previousResourceProperties`.
pub fn properties_digest(properties: &Value) -> String {
    let mut kept = without_read_only(properties);
    if let Some(map) = kept.as_object_mut() {
        for key in WRITE_ONLY {
            map.remove(key);
        }
    }
    digest(&kept)
}

/// What a new run started with `properties` (prepared, with write-only ones) and token
/// `token` leaves for a rollback of its update to undo: something only when the properties
/// have `OnRollback`.
pub fn undoable(properties: &Value, token: &str) -> Option<Undoable> {
    properties.get("OnRollback")?;
    Some(Undoable {
        run: token.to_string(),
        properties: properties_digest(properties),
    })
}

/// The undo a rollback from `previous` (the request's previous properties, prepared)
/// runs on `record`, if any: the undone run's properties with OnRollback's overrides, its
/// resolved task definition revision and one task (a rollback command runs once; with
/// RunTask, not on the run's Instances). Also the same undo again when the record's run is
/// an undo from these properties that did not succeed (the rollback failed, IfUndoFails
/// FAIL, or was given up on, and CloudFormation continues it). The caller sets the undo's
/// run token.
pub fn undo_of(record: &RunRecord, previous: &Value) -> Option<UndoRun> {
    let previous = properties_digest(previous);
    if let Some(undo) = record.undo_run() {
        let failed =
            record.run.phase == Phase::Ended && record.run.ending != Some(Ending::Succeeded);
        return (failed && undo.undoes == previous).then(|| undo.clone());
    }
    let undoable = record.undoable.as_ref()?;
    let run = &record.run;
    let undone_succeeded = run.ending == Some(Ending::Succeeded)
        && run.plan.count > 0
        && !run.tasks.is_empty()
        && undoable.run == run.token;
    if !undone_succeeded || previous != undoable.properties {
        return None;
    }
    let on_rollback = record.properties.get("OnRollback")?;
    let mut launch: Map<String, Value> = record.properties.as_object()?.clone();
    launch.remove("OnRollback");
    launch.remove("Instances");
    launch.insert(
        "TaskDefinition".into(),
        Value::String(run.plan.task_definition.clone()),
    );
    launch.insert("Count".into(), Value::from(1));
    match on_rollback.get("Overrides") {
        Some(overrides) => launch.insert("Overrides".into(), overrides.clone()),
        None => launch.remove("Overrides"),
    };
    let if_fails = match on_rollback.get("IfUndoFails").and_then(Value::as_str) {
        Some("FAIL") => IfUndoFails::Fail,
        _ => IfUndoFails::Report,
    };
    Some(UndoRun {
        run: String::new(),
        undoes: previous,
        launch: Value::Object(launch),
        if_fails,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::{LaunchMode, Phase, Plan, Run};
    use serde_json::json;

    const ARN: &str = "arn:aws:ecs:us-east-1:123456789012:task-definition/migrate:42";

    fn new_properties() -> Value {
        json!({"Cluster": "c", "TaskDefinition": "migrate", "Count": 3,
               "Overrides": {"ContainerOverrides": [{"Name": "app", "Command": ["migrate"]}]},
               "OnRollback": {"Overrides": {"ContainerOverrides": [{"Name": "app", "Command": ["rollback"]}]}}})
    }

    /// The record after the update with `properties` ran and its run ended `ending`.
    fn record_after(properties: &Value, ending: Ending, ran: bool) -> RunRecord {
        let plan = Plan {
            mode: LaunchMode::RunTask,
            count: 3,
            task_definition: ARN.into(),
            deciding: vec!["app".into()],
            instances: Vec::new(),
            log_tail: 0,
            logs: Vec::new(),
            retry: Default::default(),
        };
        let mut run = Run::new("update-token".into(), "c".into(), plan, 1000.0, 600, 15);
        if ran {
            run.tasks
                .push("arn:aws:ecs:us-east-1:123456789012:task/c/1");
        }
        run.phase = Phase::Ended;
        run.ending = Some(ending);
        let mut record = RunRecord::new("Migrate-1".into(), properties, run);
        record.undoable = undoable(properties, "update-token");
        record
    }

    #[test]
    fn a_succeeded_run_is_undone_with_its_own_task_definition_and_the_undo_overrides() {
        let properties = new_properties();
        let record = record_after(&properties, Ending::Succeeded, true);
        let undo = undo_of(&record, &properties).expect("an undo");
        assert_eq!(undo.if_fails, IfUndoFails::Report);
        assert_eq!(undo.launch["TaskDefinition"], ARN);
        assert_eq!(undo.launch["Count"], 1);
        assert_eq!(
            undo.launch["Overrides"]["ContainerOverrides"][0]["Command"],
            json!(["rollback"])
        );
        assert!(undo.launch.get("OnRollback").is_none());
    }

    #[test]
    fn nothing_is_undone_but_a_succeeded_run_of_the_update_rolled_back() {
        let properties = new_properties();
        for (ending, ran) in [
            (Ending::TasksFailed, true),
            (Ending::TimedOut, true),
            (Ending::Superseded, true),
            (Ending::Succeeded, false),
        ] {
            let record = record_after(&properties, ending, ran);
            assert!(
                undo_of(&record, &properties).is_none(),
                "{ending:?}, ran {ran}"
            );
        }
        // A rollback from other properties than the run's (an update that failed before
        // it ran anything): the run is an older update's.
        let record = record_after(&properties, Ending::Succeeded, true);
        let mut other = properties.clone();
        other["Count"] = json!(2);
        assert!(undo_of(&record, &other).is_none());
        // A run started without OnRollback leaves nothing to undo.
        let mut plain = properties.clone();
        plain.as_object_mut().map(|p| p.remove("OnRollback"));
        assert!(undoable(&plain, "t").is_none());
        // Read-only outputs in the previous properties do not matter.
        let mut with_outputs = properties.clone();
        with_outputs["Status"] = json!("SUCCEEDED");
        assert!(undo_of(&record, &with_outputs).is_some());
    }

    #[test]
    fn a_failed_undo_is_run_again_by_a_rollback_continued_and_a_succeeded_one_is_not() {
        let properties = new_properties();
        let record = record_after(&properties, Ending::Succeeded, true);
        let mut undo = undo_of(&record, &properties).expect("an undo");
        undo.run = "rollback-token".into();
        let undo_plan = record.run.plan.clone();
        let mut undo_run = Run::new(
            "rollback-token".into(),
            "c".into(),
            undo_plan,
            2000.0,
            600,
            15,
        );
        undo_run.phase = Phase::Ended;
        undo_run.ending = Some(Ending::TasksFailed);
        let mut after = record.clone();
        after.undoable = None;
        after.undo = Some(undo.clone());
        after.run = undo_run;
        let again = undo_of(&after, &properties).expect("the undo again");
        assert_eq!(again.launch, undo.launch);
        // From other properties, or once it succeeded: nothing.
        let mut other = properties.clone();
        other["Count"] = json!(2);
        assert!(undo_of(&after, &other).is_none());
        after.run.ending = Some(Ending::Succeeded);
        assert!(undo_of(&after, &properties).is_none());
    }

    #[test]
    fn a_rollback_matches_without_the_write_only_properties() {
        let properties = new_properties();
        let record = record_after(&properties, Ending::Succeeded, true);
        let mut sent = properties.clone();
        if let Some(map) = sent.as_object_mut() {
            map.remove("Overrides");
            map.remove("OnRollback");
        }
        assert!(undo_of(&record, &sent).is_some());
    }

    #[test]
    fn if_undo_fails_fail_is_kept() {
        let mut properties = new_properties();
        properties["OnRollback"]["IfUndoFails"] = json!("FAIL");
        let record = record_after(&properties, Ending::Succeeded, true);
        assert_eq!(
            undo_of(&record, &properties).map(|u| u.if_fails),
            Some(IfUndoFails::Fail)
        );
    }
}
