//! The events of a TaskRun (issue 19, `Events`) over the in-memory ECS, store and
//! EventBridge on a virtual clock, played as CloudFormation plays an operation: which
//! events go out, once each across callbacks, with stable ids; and that sending is best
//! effort: a throttled, slow or refused PutEvents never fails the operation nor makes an
//! invocation overrun its time.

use handler_kit::sim::PutEvent;
use handler_kit::store::Injected;
use serde_json::{json, Value};
use taskrun::ecs::FaultKind;
use taskrun::resource::TaskRun;
use taskrun::sim::{SimBackend, TaskScript};
use test_support::cfn::{play_operation, Call, Played, Template};

const START: f64 = 1_700_000_000.0;

fn backend(task_seconds: f64, exit: i32) -> SimBackend {
    let backend = SimBackend::new(START);
    backend.gateway.clone().with_world("c", "migrate");
    backend.gateway.lock().scripts = vec![TaskScript {
        runs_for: task_seconds,
        exits: vec![("app".into(), Some(exit)), ("sidecar".into(), Some(0))],
        ..TaskScript::default()
    }]
    .into();
    backend.events.create_bus("ops");
    backend
}

fn create(backend: &SimBackend, token: &str, properties: Value) -> Played {
    operate(backend, "CREATE", token, properties, None, false, None)
}

/// One operation as CloudFormation plays it (at most `invocations` of it, when given).
fn operate(
    backend: &SimBackend,
    action: &str,
    token: &str,
    properties: Value,
    previous: Option<&Value>,
    rollback: bool,
    invocations: Option<usize>,
) -> Played {
    let mut template = Template::in_memory(
        "Org::ECS::TaskRun",
        "arn:aws:cloudformation:eu-west-1:123456789012:stack/app/1",
        "Migrate",
    );
    template.head["region"] = json!("eu-west-1");
    let call = Call {
        action,
        token,
        properties: Some(&properties),
        previous,
        rollback,
        context: None,
    };
    let resource = TaskRun::new(backend.clone());
    let played = play_operation(
        &resource,
        &backend.clock,
        &template,
        call,
        invocations.unwrap_or(1000),
    );
    if invocations.is_none() && played.last()["status"] == "IN_PROGRESS" {
        panic!("the {action} never ended");
    }
    played
}

fn detail(event: &PutEvent) -> Value {
    serde_json::from_str(&event.entry.detail).unwrap_or(Value::Null)
}

fn kinds(events: &[PutEvent]) -> Vec<String> {
    events.iter().map(|e| e.entry.detail_type.clone()).collect()
}

fn properties(extra: Value) -> Value {
    let mut properties = json!({"Cluster": "c", "TaskDefinition": "migrate", "Timeout": "3600"});
    if let (Some(map), Value::Object(extra)) = (properties.as_object_mut(), extra) {
        map.extend(extra);
    }
    properties
}

#[test]
fn a_long_run_announces_started_once_and_its_success_once() {
    let backend = backend(300.0, 0);
    let played = create(
        &backend,
        "tok-long",
        properties(json!({"Events": {"EventBusName": "ops"}})),
    );
    assert_eq!(played.last()["status"], "SUCCESS", "{:?}", played.last());
    assert!(played.answers.len() > 3, "several callbacks");
    let events = backend.events.events();
    assert_eq!(
        kinds(&events),
        ["TaskRun Started", "TaskRun Succeeded"],
        "once each, across {} invocations",
        played.answers.len()
    );
    let id = played.last()["resourceModel"]["Id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let started = detail(&events[0]);
    assert_eq!(started["eventId"], format!("{id}/tok-long/started"));
    assert_eq!(started["logicalResourceId"], "Migrate");
    assert_eq!(
        started["stackId"],
        "arn:aws:cloudformation:eu-west-1:123456789012:stack/app/1"
    );
    assert_eq!(started["runToken"], "tok-long");
    assert_eq!(started["taskArns"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        started["consoleUrl"],
        "https://eu-west-1.console.aws.amazon.com/ecs/v2/clusters/c/tasks"
    );
    let succeeded = detail(&events[1]);
    assert_eq!(succeeded["eventId"], format!("{id}/tok-long/succeeded"));
    assert_eq!(succeeded["status"], "SUCCEEDED");
    assert!(events.iter().all(|e| e.entry.source == "org.taskrun"));
}

#[test]
fn a_failure_is_announced_with_the_stack_event_s_reason() {
    let backend = backend(5.0, 3);
    let played = create(&backend, "tok-fail", properties(json!({"Events": {}})));
    assert_eq!(played.last()["status"], "FAILED");
    // No bus named: the default bus, which every account has.
    let events = backend.events.events();
    assert_eq!(kinds(&events), ["TaskRun Started", "TaskRun Failed"]);
    assert_eq!(events[1].bus, "default");
    assert_eq!(
        detail(&events[1])["reason"].as_str(),
        played.last()["message"].as_str()
    );
}

#[test]
fn without_events_nothing_is_sent() {
    let backend = backend(5.0, 0);
    let played = create(&backend, "tok-none", properties(json!({})));
    assert_eq!(played.last()["status"], "SUCCESS");
    assert_eq!(backend.events.lock().plan.calls, 0, "not even a call");
}

#[test]
fn a_throttled_send_goes_again_at_the_next_callback_with_the_same_ids() {
    let backend = backend(300.0, 0);
    backend
        .events
        .lock()
        .plan
        .faults
        .insert(0, Injected::Before(FaultKind::Throttled));
    let played = create(
        &backend,
        "tok-throttled",
        properties(json!({"Events": {"EventBusName": "ops"}})),
    );
    assert_eq!(played.last()["status"], "SUCCESS");
    let events = backend.events.events();
    assert_eq!(kinds(&events), ["TaskRun Started", "TaskRun Succeeded"]);
}

/// The send's time is taken from the invocation's: its waits end earlier, so that no
/// invocation outlasts the 30 seconds the Registry does not bill, however slow the send.
#[test]
fn a_refused_or_slow_send_never_fails_the_operation_nor_overruns_it() {
    for fault in [
        Injected::Before(FaultKind::AccessDenied),
        Injected::Slow(60.0),
        Injected::After(FaultKind::ServerSide),
    ] {
        let backend = backend(100.0, 0);
        backend.events.lock().plan.faults.insert(0, fault);
        let played = create(
            &backend,
            "tok-refused",
            properties(json!({"Events": {"EventBusName": "ops"}})),
        );
        assert_eq!(played.last()["status"], "SUCCESS", "{fault:?}");
        let longest = played.lengths.iter().copied().fold(0.0, f64::max);
        assert!(
            longest <= handler_kit::budget::WAIT_WINDOW_SECONDS,
            "{fault:?}: an invocation took {longest} s"
        );
    }
}

#[test]
fn refused_entries_are_dropped_and_the_rest_still_go() {
    let backend = backend(5.0, 0);
    backend.events.fail_entry(0, "AccessDeniedException");
    let played = create(
        &backend,
        "tok-entry",
        properties(json!({"Events": {"EventBusName": "ops"}})),
    );
    assert_eq!(played.last()["status"], "SUCCESS");
    assert_eq!(kinds(&backend.events.events()), ["TaskRun Succeeded"]);
}

#[test]
fn a_delete_that_stops_a_run_announces_it_superseded() {
    let backend = backend(3000.0, 0);
    let props = properties(json!({"Events": {"EventBusName": "ops"}}));
    // CloudFormation gives up on the CREATE after its first answer (the stack's create
    // is cancelled) and deletes the resource.
    let created = operate(
        &backend,
        "CREATE",
        "tok-gone",
        props.clone(),
        None,
        false,
        Some(1),
    );
    assert_eq!(created.last()["status"], "IN_PROGRESS");
    let id = created.last()["resourceModel"]["Id"].clone();
    let mut desired = props;
    desired["Id"] = id.clone();
    let deleted = operate(&backend, "DELETE", "tok-delete", desired, None, false, None);
    assert_eq!(deleted.last()["status"], "SUCCESS", "{:?}", deleted.last());
    let events = backend.events.events();
    assert_eq!(kinds(&events), ["TaskRun Started", "TaskRun Superseded"]);
    let superseded = detail(&events[1]);
    assert_eq!(
        superseded["eventId"],
        format!("{}/tok-gone/superseded", id.as_str().unwrap_or_default())
    );
    assert_eq!(superseded["status"], "SUPERSEDED");
    assert!(
        superseded["reason"]
            .as_str()
            .is_some_and(|r| r.contains("deleted")),
        "{superseded}"
    );
}

#[test]
fn an_undo_announces_its_end_as_undone() {
    let backend = backend(5.0, 0);
    let before = properties(json!({"Events": {"EventBusName": "ops"}, "Triggers": ["1"]}));
    let created = create(&backend, "tok-create", before.clone());
    assert_eq!(created.last()["status"], "SUCCESS");
    let id = created.last()["resourceModel"]["Id"].clone();
    let mut after = before.clone();
    after["Triggers"] = json!(["2"]);
    after["OnRollback"] =
        json!({"Overrides": {"ContainerOverrides": [{"Name": "app", "Command": ["undo"]}]}});
    after["Id"] = id.clone();
    let mut previous = before.clone();
    previous["Id"] = id.clone();
    let updated = operate(
        &backend,
        "UPDATE",
        "tok-update",
        after.clone(),
        Some(&previous),
        false,
        None,
    );
    assert_eq!(updated.last()["status"], "SUCCESS", "{:?}", updated.last());
    let rolled_back = operate(
        &backend,
        "UPDATE",
        "tok-rollback",
        previous,
        Some(&after),
        true,
        None,
    );
    assert_eq!(
        rolled_back.last()["status"],
        "SUCCESS",
        "{:?}",
        rolled_back.last()
    );
    let events = backend.events.events();
    assert_eq!(
        kinds(&events),
        [
            "TaskRun Started",
            "TaskRun Succeeded",
            "TaskRun Started",
            "TaskRun Succeeded",
            "TaskRun Started",
            "TaskRun Undone"
        ]
    );
    let undone = detail(&events[5]);
    assert_eq!(
        undone["eventId"],
        format!("{}/tok-rollback/undone", id.as_str().unwrap_or_default())
    );
    assert_eq!(undone["undo"], true);
    assert_eq!(undone["outcome"], "SUCCEEDED");
    assert_eq!(
        detail(&events[4])["undo"],
        true,
        "the undo's start says so too"
    );
}

/// An update that stops a run still going announces that run's end (`after_supersede`).
#[test]
fn an_update_that_stops_a_run_announces_it_superseded() {
    let backend = backend(3000.0, 0);
    let props = properties(json!({"Events": {"EventBusName": "ops"}}));
    let created = operate(
        &backend,
        "CREATE",
        "tok-old",
        props.clone(),
        None,
        false,
        Some(1),
    );
    assert_eq!(created.last()["status"], "IN_PROGRESS");
    let id = created.last()["resourceModel"]["Id"].clone();
    backend.gateway.lock().scripts = vec![TaskScript {
        runs_for: 5.0,
        exits: vec![("app".into(), Some(0)), ("sidecar".into(), Some(0))],
        ..TaskScript::default()
    }]
    .into();
    let mut previous = props.clone();
    previous["Id"] = id.clone();
    let mut next = previous.clone();
    next["Triggers"] = json!(["again"]);
    let updated = operate(
        &backend,
        "UPDATE",
        "tok-new",
        next,
        Some(&previous),
        false,
        None,
    );
    assert_eq!(updated.last()["status"], "SUCCESS", "{:?}", updated.last());
    let events = backend.events.events();
    let ids: Vec<String> = events
        .iter()
        .map(|e| {
            detail(e)["eventId"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    let id = id.as_str().unwrap_or_default();
    assert_eq!(
        ids,
        [
            format!("{id}/tok-old/started"),
            format!("{id}/tok-old/superseded"),
            format!("{id}/tok-new/started"),
            format!("{id}/tok-new/succeeded"),
        ]
    );
}
