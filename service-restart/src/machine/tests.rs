//! The restart's transition function, case by case.

use super::*;
use crate::services::ServiceEvent;

const T0: f64 = 1_000.0;

fn restart(wait_for: WaitFor) -> Restart {
    Restart::new(
        "tok".into(),
        "c".into(),
        "api".into(),
        wait_for,
        T0,
        600,
        15,
    )
}

fn deployment(id: &str, status: &str, rollout: &str, running: i32) -> Deployment {
    Deployment {
        id: id.into(),
        status: status.into(),
        rollout_state: Some(rollout.into()),
        rollout_reason: (rollout == "FAILED")
            .then(|| "ECS deployment circuit breaker: tasks failed to start.".into()),
        desired: 2,
        running,
        pending: 2 - running,
        failed_tasks: if rollout == "FAILED" { 4 } else { 0 },
        created_at: Some(T0 + 1.0),
    }
}

fn service(deployments: Vec<Deployment>) -> ServiceState {
    ServiceState {
        arn: "arn:svc".into(),
        deployments,
        events: vec![
            ServiceEvent {
                at: T0 + 30.0,
                message: "(service api) has started 2 tasks".into(),
            },
            ServiceEvent {
                at: T0 - 500.0,
                message: "an event from before".into(),
            },
        ],
    }
}

fn before() -> ServiceState {
    service(vec![deployment("old", "PRIMARY", "COMPLETED", 2)])
}

fn with_new(rollout: &str, running: i32) -> ServiceState {
    service(vec![
        deployment("new", "PRIMARY", rollout, running),
        deployment("old", "ACTIVE", "COMPLETED", 2),
    ])
}

fn server_error() -> Fault {
    Fault::new("ecs:UpdateService", FaultKind::ServerSide, "HTTP 503")
}

/// Looked at, UpdateService recorded as sent.
fn sent(wait_for: WaitFor) -> Restart {
    let (r, _) = step(&restart(wait_for), Event::Looked(Ok(Some(before()))), T0);
    r
}

#[test]
fn a_restart_looks_first_then_records_the_send_before_sending() {
    let (r, next) = step(&restart(WaitFor::SteadyState), Event::Resumed, T0);
    assert_eq!(next, Next::Look);
    let (r, next) = step(&r, Event::Looked(Ok(Some(before()))), T0);
    assert_eq!(next, Next::Update);
    assert_eq!(
        (r.known.clone(), r.sent_at),
        (vec!["old".to_string()], Some(T0)),
        "recorded before the call"
    );
    let (r, next) = step(&r, Event::Updated(Ok(with_new("IN_PROGRESS", 0))), T0 + 1.0);
    assert_eq!(
        (r.phase, r.deployment.as_deref(), r.sent_at),
        (Phase::Following, Some("new"), None)
    );
    assert!(matches!(next, Next::Wait(_)));
}

#[test]
fn a_lost_answer_is_looked_up_never_sent_again_blindly() {
    // The process died after UpdateService: the next invocation finds `sent_at`.
    let r = sent(WaitFor::SteadyState);
    let (r, next) = step(&r, Event::Resumed, T0 + 1.0);
    assert_eq!(next, Next::Wait(LOOKUP_DELAY_SECONDS - 1.0));
    let (r, next) = step(&r, Event::Resumed, T0 + LOOKUP_DELAY_SECONDS);
    assert_eq!(next, Next::Look);
    // A PRIMARY other than the one before: the deployment the lost call started.
    let (adopted, _) = step(
        &r,
        Event::Looked(Ok(Some(with_new("IN_PROGRESS", 0)))),
        T0 + 6.0,
    );
    assert_eq!(
        (adopted.phase, adopted.deployment.as_deref()),
        (Phase::Following, Some("new"))
    );
    // A deployment that failed and was rolled back at once is still the restart's.
    let rolled_back = service(vec![
        deployment("new", "ACTIVE", "FAILED", 0),
        deployment("old", "PRIMARY", "COMPLETED", 2),
    ]);
    let (adopted, _) = step(&r, Event::Looked(Ok(Some(rolled_back))), T0 + 6.0);
    assert_eq!(adopted.deployment.as_deref(), Some("new"));
    // The same PRIMARY as before: nothing was started, so it is sent (once) now.
    let (resent, next) = step(&r, Event::Looked(Ok(Some(before()))), T0 + 6.0);
    assert_eq!((next, resent.sent_at), (Next::Update, Some(T0 + 6.0)));
    // A 5xx after UpdateService may have acted: looked up too.
    let (r, next) = step(
        &sent(WaitFor::SteadyState),
        Event::Updated(Err(server_error())),
        T0 + 1.0,
    );
    assert_eq!(
        (next, r.sent_at),
        (Next::Wait(LOOKUP_DELAY_SECONDS), Some(T0))
    );
    // A throttled UpdateService did not act: sent again after a pause.
    let throttled = Fault::new("ecs:UpdateService", FaultKind::Throttled, "Rate exceeded");
    let (r, next) = step(
        &sent(WaitFor::SteadyState),
        Event::Updated(Err(throttled)),
        T0 + 1.0,
    );
    assert_eq!((next, r.sent_at), (Next::Wait(RETRY_DELAY_SECONDS), None));
}

#[test]
fn following_the_deployment_to_its_end() {
    let following = step(
        &sent(WaitFor::SteadyState),
        Event::Updated(Ok(with_new("IN_PROGRESS", 0))),
        T0 + 1.0,
    )
    .0;
    struct Case {
        name: &'static str,
        event: Event,
        now: f64,
        ending: Option<Ending>,
        reason_has: &'static str,
    }
    let cases = [
        Case { name: "completed, all running", event: Event::Looked(Ok(Some(with_new("COMPLETED", 2)))), now: T0 + 60.0, ending: Some(Ending::Succeeded), reason_has: "" },
        Case { name: "completed, not all running yet", event: Event::Looked(Ok(Some(with_new("COMPLETED", 1)))), now: T0 + 60.0, ending: None, reason_has: "" },
        Case { name: "in progress", event: Event::Looked(Ok(Some(with_new("IN_PROGRESS", 1)))), now: T0 + 60.0, ending: None, reason_has: "" },
        Case {
            name: "failed: the circuit breaker rolled back",
            event: Event::Looked(Ok(Some(service(vec![deployment("new", "ACTIVE", "FAILED", 0), deployment("old", "PRIMARY", "COMPLETED", 2)])))),
            now: T0 + 60.0,
            ending: Some(Ending::Failed),
            reason_has: "deployment new of service api failed: ECS deployment circuit breaker: tasks failed to start.; 4 tasks failed to start or stay running; the service is back on deployment old\nlast service events:\n  (service api) has started 2 tasks",
        },
        Case { name: "timeout: left as it is", event: Event::Looked(Ok(Some(with_new("IN_PROGRESS", 1)))), now: T0 + 600.0, ending: Some(Ending::TimedOut), reason_has: "was left IN_PROGRESS (1 running, 1 pending of 2 desired, 0 failed tasks); nothing was stopped" },
        Case { name: "replaced by another deployment", event: Event::Looked(Ok(Some(service(vec![deployment("newer", "PRIMARY", "IN_PROGRESS", 0)])))), now: T0 + 60.0, ending: Some(Ending::Failed), reason_has: "no longer listed (the PRIMARY deployment is newer)" },
        Case { name: "the service is gone", event: Event::Looked(Ok(None)), now: T0 + 60.0, ending: Some(Ending::Failed), reason_has: "no longer exists" },
        Case { name: "unreadable for now", event: Event::Looked(Err(server_error())), now: T0 + 60.0, ending: None, reason_has: "" },
        Case { name: "access revoked", event: Event::Looked(Err(Fault::new("ecs:DescribeServices", FaultKind::AccessDenied, "denied"))), now: T0 + 60.0, ending: Some(Ending::Rejected { fault: FaultKind::AccessDenied }), reason_has: "could not be followed" },
        Case { name: "superseded", event: Event::Abandon { reason: "superseded by an update".into() }, now: T0 + 60.0, ending: Some(Ending::Superseded), reason_has: "deployment new goes on as ECS runs it" },
    ];
    for case in cases {
        let (r, next) = step(&following, case.event, case.now);
        assert_eq!(r.ending, case.ending, "{}", case.name);
        assert_eq!(
            next == Next::Done,
            case.ending.is_some(),
            "{}: {next:?}",
            case.name
        );
        if !case.reason_has.is_empty() {
            let reason = r.reason.unwrap_or_default();
            assert!(reason.contains(case.reason_has), "{}: {reason}", case.name);
        }
    }
}

#[test]
fn started_succeeds_once_the_deployment_exists() {
    let (r, next) = step(
        &sent(WaitFor::Started),
        Event::Updated(Ok(with_new("IN_PROGRESS", 0))),
        T0 + 1.0,
    );
    assert_eq!((r.ending, next), (Some(Ending::Succeeded), Next::Done));
    assert_eq!(r.deployment.as_deref(), Some("new"));
}

#[test]
fn a_missing_service_or_a_refusal_ends_the_restart_at_once() {
    let (r, _) = step(&restart(WaitFor::SteadyState), Event::Looked(Ok(None)), T0);
    assert_eq!(
        r.ending,
        Some(Ending::Rejected {
            fault: FaultKind::BadRequest
        })
    );
    assert!(r
        .reason
        .unwrap_or_default()
        .contains("not an active service"));
    let refused = Fault::new(
        "ecs:UpdateService",
        FaultKind::AccessDenied,
        "not authorized",
    );
    let (r, _) = step(
        &sent(WaitFor::SteadyState),
        Event::Updated(Err(refused)),
        T0 + 1.0,
    );
    assert_eq!(
        r.ending,
        Some(Ending::Rejected {
            fault: FaultKind::AccessDenied
        })
    );
}

#[test]
fn an_ended_restart_never_changes() {
    let ended = step(
        &sent(WaitFor::Started),
        Event::Updated(Ok(with_new("IN_PROGRESS", 0))),
        T0 + 1.0,
    )
    .0;
    for event in [
        Event::Resumed,
        Event::Abandon { reason: "x".into() },
        Event::Looked(Ok(None)),
    ] {
        let (r, next) = step(&ended, event, T0 + 5000.0);
        assert_eq!((r, next), (ended.clone(), Next::Done));
    }
}
