//! TaskRun's events (issue 19, `Events`) end to end: the real handler against the
//! emulator (moto's EventBridge and SQS behind it), a rule on a bus of the test's own
//! sending TaskRun's events to a queue; a run that succeeds and one that fails, their
//! events read back from the queue in order, with the documented detail.
//!
//! Needs moto's `events` extra (the `jsonpath_ng` package): without it moto answers
//! PutEvents with a 500 once a rule matches, and these tests see no event.

mod common;

use std::time::Duration;

use common::events::EventTap;
use common::{run, World};
use serde_json::{json, Value};
use test_support::cfn::unique;

fn exits_with(code: i32, lines: &[&str]) -> Value {
    json!({"kind": "exit", "afterDescribes": 1, "containers": {"app": {"exitCode": code}}, "logs": {"app": lines}})
}

/// The detail every TaskRun event carries, checked against the operation's answer.
fn assert_common_detail(detail: &Value, world: &World, id: &str, kind: &str) {
    let token = detail["runToken"].as_str().unwrap_or_default();
    assert!(!token.is_empty(), "{detail}");
    assert_eq!(
        detail["eventId"],
        format!("{id}/{token}/{kind}"),
        "{detail}"
    );
    assert_eq!(detail["stackId"], world.stack_id.as_str());
    assert_eq!(detail["logicalResourceId"], "Migrate");
    assert_eq!(detail["id"], id);
    assert_eq!(detail["cluster"], world.cluster.as_str());
    assert_eq!(
        detail["consoleUrl"],
        format!(
            "https://us-east-1.console.aws.amazon.com/ecs/v2/clusters/{}/tasks",
            world.cluster
        )
    );
    assert_eq!(
        detail["taskArns"].as_array().map(Vec::len),
        Some(1),
        "{detail}"
    );
    assert_eq!(detail["taskCount"], 1);
}

#[test]
fn a_run_that_succeeds_announces_its_start_and_its_output() {
    run(async {
        let world = World::new("ev-ok").await;
        let tap = EventTap::new(world.emulator, &unique("bus-ok"));
        let family = format!("{}-out", world.family);
        world
            .register_logging(&family, Some(&format!("/ecs/{family}")))
            .await;
        world.emulator.queue_outcome(
            &family,
            exits_with(0, &["migrating", "TASKRUN_OUTPUT {\"schemaVersion\": 42}"]),
            1,
        );
        let props = world.properties(json!({
            "TaskDefinition": family,
            "Events": {"EventBusName": tap.bus},
        }));
        let op = world.cfn("Migrate").create(&props).await;
        assert_eq!(op.status(), "SUCCESS", "{:?}", op.events);
        let id = op.id();

        let events = tap.received(2, Duration::from_secs(10));
        assert_eq!(
            EventTap::kinds(&events),
            ["TaskRun Started", "TaskRun Succeeded"],
            "{events:#?}"
        );
        assert!(events.iter().all(|e| e["source"] == "org.taskrun"));
        let started = &events[0]["detail"];
        assert_common_detail(started, &world, &id, "started");
        assert_eq!(started["status"], "RUNNING");
        assert_eq!(started["taskArns"], op.model()["TaskArns"]);
        let succeeded = &events[1]["detail"];
        assert_common_detail(succeeded, &world, &id, "succeeded");
        assert_eq!(succeeded["status"], "SUCCEEDED");
        assert_eq!(succeeded["output"], "{\"schemaVersion\": 42}");
        assert_eq!(succeeded["runToken"], started["runToken"]);
        assert!(succeeded["finishedAt"].is_string(), "{succeeded}");
        // Nothing more: each change once.
        assert!(tap.received(1, Duration::from_millis(500)).is_empty());
    });
}

#[test]
fn a_run_that_fails_announces_the_stack_event_s_reason_and_the_log_tail() {
    run(async {
        let world = World::new("ev-fail").await;
        let tap = EventTap::new(world.emulator, &unique("bus-fail"));
        let family = format!("{}-logs", world.family);
        world
            .register_logging(&family, Some(&format!("/ecs/{family}")))
            .await;
        world.emulator.queue_outcome(
            &family,
            exits_with(
                3,
                &[
                    "step 1",
                    "step 2",
                    "ERROR: relation \"users\" already exists",
                ],
            ),
            1,
        );
        let props = world.properties(json!({
            "TaskDefinition": family,
            "LogTail": 2,
            "Events": {"EventBusName": tap.bus},
        }));
        let op = world.cfn("Migrate").create(&props).await;
        assert_eq!(op.status(), "FAILED", "{:?}", op.events);
        let id = op.id();

        let events = tap.received(2, Duration::from_secs(10));
        assert_eq!(
            EventTap::kinds(&events),
            ["TaskRun Started", "TaskRun Failed"],
            "{events:#?}"
        );
        assert_common_detail(&events[0]["detail"], &world, &id, "started");
        let failed = &events[1]["detail"];
        assert_common_detail(failed, &world, &id, "failed");
        assert_eq!(failed["status"], "FAILED");
        assert_eq!(
            failed["reason"],
            op.message(),
            "the FAILED stack event's reason"
        );
        assert_eq!(
            failed["logTail"][0]["lines"],
            json!(["step 2", "ERROR: relation \"users\" already exists"]),
            "{failed}"
        );
        assert_eq!(failed["logTail"][0]["container"], "app");
    });
}

#[test]
fn a_bus_that_does_not_exist_fails_nothing() {
    run(async {
        let world = World::new("ev-nobus").await;
        let props = world.properties(json!({"Events": {"EventBusName": unique("no-such-bus")}}));
        let op = world.cfn("Migrate").create(&props).await;
        // moto refuses the whole PutEvents (ResourceNotFoundException; EventBridge itself
        // takes the events and delivers them nowhere): logged and dropped either way.
        assert_eq!(op.status(), "SUCCESS", "{:?}", op.events);
    });
}
