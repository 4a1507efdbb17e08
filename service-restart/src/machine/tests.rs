//! The restart's transition function, case by case.

use super::*;
use crate::services::{Deployment, ServiceDeploymentState, ServiceEvent, CODE_DEPLOY};

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
        controller: Some("ECS".into()),
        ..ServiceState::default()
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
    // The same PRIMARY as before: DescribeServices may not show the new one yet (it is
    // eventually consistent), so it is looked for again ...
    let (waiting, next) = step(&r, Event::Looked(Ok(Some(before()))), T0 + 6.0);
    assert_eq!((next, waiting.sent_at), (Next::Wait(6.0), Some(T0)));
    // ... and only once the lookup window is over, nothing was started: sent (once) now.
    let end = T0 + LOOKUP_WINDOW_SECONDS;
    let (resent, next) = step(&r, Event::Looked(Ok(Some(before()))), end);
    assert_eq!((next, resent.sent_at), (Next::Update, Some(end)));
    // A look nearer the window's end than the shortest pause waits only until that end
    // (this once panicked: a clamp whose lower bound was above its upper).
    let (_, next) = step(&r, Event::Looked(Ok(Some(before()))), end - 0.4);
    assert!(
        matches!(next, Next::Wait(d) if (d - 0.4).abs() < 1e-9),
        "{next:?}"
    );
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
    // ... with a backoff: full jitter, at least 1 s, at most 4 s after one throttle.
    assert!(
        matches!(next, Next::Wait(d) if (1.0..=4.0).contains(&d)),
        "{next:?}"
    );
    assert_eq!((r.sent_at, r.throttled), (None, 1));
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

fn no_rollout(id: &str, status: &str, running: i32) -> Deployment {
    Deployment {
        rollout_state: None,
        rollout_reason: None,
        ..deployment(id, status, "IN_PROGRESS", running)
    }
}

/// Following `new` (sent at T0, followed from T0 + 1).
fn following(wait_for: WaitFor) -> Restart {
    step(
        &sent(wait_for),
        Event::Updated(Ok(with_new("IN_PROGRESS", 0))),
        T0 + 1.0,
    )
    .0
}

#[test]
fn a_code_deploy_or_external_service_is_refused_before_any_update() {
    for controller in [CODE_DEPLOY, crate::services::EXTERNAL] {
        let service = ServiceState {
            controller: Some(controller.into()),
            ..before()
        };
        let (r, next) = step(
            &restart(WaitFor::SteadyState),
            Event::Looked(Ok(Some(service))),
            T0,
        );
        assert_eq!(next, Next::Done, "{controller}: no UpdateService");
        assert_eq!(r.sent_at, None);
        assert_eq!(
            r.ending,
            Some(Ending::Rejected {
                fault: FaultKind::BadRequest
            })
        );
        let reason = r.reason.unwrap_or_default();
        assert!(
            reason.contains(controller) && reason.contains("Nothing was changed"),
            "{reason}"
        );
    }
    // ECS, or no controller shown (ECS is the default): restarted.
    for controller in [Some("ECS"), None] {
        let service = ServiceState {
            controller: controller.map(str::to_string),
            ..before()
        };
        let (_, next) = step(
            &restart(WaitFor::SteadyState),
            Event::Looked(Ok(Some(service))),
            T0,
        );
        assert_eq!(next, Next::Update, "{controller:?}");
    }
}

#[test]
fn without_rollout_state_done_is_what_the_services_stable_waiter_says() {
    let following = following(WaitFor::SteadyState);
    let clb = |deployments| ServiceState {
        classic_load_balancers: vec!["api-clb".into()],
        ..service(deployments)
    };
    struct Case {
        name: &'static str,
        service: ServiceState,
        now: f64,
        ending: Option<Ending>,
        reason_has: &'static str,
    }
    let cases = [
        Case { name: "the only deployment, all running", service: clb(vec![no_rollout("new", "PRIMARY", 2)]), now: T0 + 60.0, ending: Some(Ending::Succeeded), reason_has: "" },
        Case { name: "the old one still listed", service: clb(vec![no_rollout("new", "PRIMARY", 2), no_rollout("old", "ACTIVE", 1)]), now: T0 + 60.0, ending: None, reason_has: "" },
        Case { name: "not all running", service: clb(vec![no_rollout("new", "PRIMARY", 1)]), now: T0 + 60.0, ending: None, reason_has: "" },
        Case {
            name: "rolled back: no longer PRIMARY",
            service: clb(vec![no_rollout("new", "ACTIVE", 0), no_rollout("back", "PRIMARY", 2)]),
            now: T0 + 60.0,
            ending: Some(Ending::Failed),
            reason_has: "is no longer the PRIMARY deployment: ECS rolled it back or another deployment replaced it; the service is back on deployment back",
        },
        Case {
            name: "timeout: says by what rule",
            service: clb(vec![no_rollout("new", "PRIMARY", 2), no_rollout("old", "ACTIVE", 1)]),
            now: T0 + 600.0,
            ending: Some(Ending::TimedOut),
            reason_has: "was left unsettled (ECS shows no rolloutState for it, as for any service behind a Classic Load Balancer (api-clb): it counts as done once it is the only deployment listed, running its desired count, as `aws ecs wait services-stable` judges; 2 deployments are listed)",
        },
    ];
    for case in cases {
        let (r, next) = step(&following, Event::Looked(Ok(Some(case.service))), case.now);
        assert_eq!(r.ending, case.ending, "{}", case.name);
        assert_eq!(
            next == Next::Done,
            case.ending.is_some(),
            "{}: {next:?}",
            case.name
        );
        let reason = r.reason.unwrap_or_default();
        assert!(reason.contains(case.reason_has), "{}: {reason}", case.name);
    }
}

#[test]
fn a_lost_answer_is_looked_up_for_the_lookup_window_before_sending_again() {
    // UpdateService sent at T0, its answer lost; DescribeServices shows nothing new yet.
    let r = sent(WaitFor::SteadyState);
    let mut now = T0 + LOOKUP_DELAY_SECONDS;
    let mut waits = Vec::new();
    let mut r = r;
    loop {
        let (next_r, next) = step(&r, Event::Looked(Ok(Some(before()))), now);
        r = next_r;
        match next {
            Next::Wait(seconds) => {
                waits.push(seconds);
                now += seconds;
            }
            other => {
                assert_eq!(other, Next::Update, "sent again once the window is over");
                break;
            }
        }
    }
    // The waits double, and all of them fit in the window.
    assert_eq!(waits, [5.0, 10.0, 20.0, 40.0, 80.0, 140.0]);
    assert_eq!(now, T0 + LOOKUP_WINDOW_SECONDS);
    assert_eq!(r.sent_at, Some(now), "recorded as sent (again)");
    // Found on the way: followed, never sent again.
    let (found, next) = step(
        &sent(WaitFor::SteadyState),
        Event::Looked(Ok(Some(with_new("IN_PROGRESS", 0)))),
        T0 + 40.0,
    );
    assert_eq!(found.deployment.as_deref(), Some("new"));
    assert!(matches!(next, Next::Wait(_)));
    // The Timeout comes first: it says the lost UpdateService may have acted.
    let mut short = sent(WaitFor::SteadyState);
    short.deadline = T0 + 30.0;
    let (r, _) = step(&short, Event::Looked(Ok(Some(before()))), T0 + 31.0);
    assert_eq!(r.ending, Some(Ending::TimedOut));
    assert!(r
        .reason
        .unwrap_or_default()
        .contains("may have started one"));
}

#[test]
fn a_deployment_not_shown_yet_is_waited_for_a_replaced_one_is_not() {
    let following = following(WaitFor::SteadyState);
    // Just followed, DescribeServices not showing it yet: wait.
    let (r, next) = step(&following, Event::Looked(Ok(Some(before()))), T0 + 10.0);
    assert_eq!((r.ending, matches!(next, Next::Wait(_))), (None, true));
    // Still not shown once the lookup window is over: gone.
    let (r, _) = step(
        &following,
        Event::Looked(Ok(Some(before()))),
        T0 + 1.0 + LOOKUP_WINDOW_SECONDS,
    );
    assert_eq!(r.ending, Some(Ending::Failed));
    // A PRIMARY the restart did not know replaced it: failed at once.
    let newer = service(vec![deployment("newer", "PRIMARY", "IN_PROGRESS", 0)]);
    let (r, _) = step(&following, Event::Looked(Ok(Some(newer))), T0 + 10.0);
    assert_eq!(r.ending, Some(Ending::Failed));
    assert!(r
        .reason
        .unwrap_or_default()
        .contains("the PRIMARY deployment is newer"));
}

fn paused_at(stage: &str) -> ServiceDeploymentState {
    ServiceDeploymentState {
        arn: "arn:sd/new".into(),
        status: "IN_PROGRESS".into(),
        lifecycle_stage: Some(stage.into()),
        hooks: vec![crate::services::LifecycleHook {
            id: "ecs-pause-1".into(),
            target_type: "PAUSE".into(),
            target_arn: None,
            status: "AWAITING_ACTION".into(),
            expires_at: Some(T0 + 3600.0),
            timeout_action: Some("ROLLBACK".into()),
        }],
    }
}

#[test]
fn a_deployment_waiting_at_a_lifecycle_hook_is_reported() {
    let following = following(WaitFor::SteadyState);
    let hooked = ServiceState {
        lifecycle_hooks: true,
        current_service_deployment: Some("arn:sd/new".into()),
        ..with_new("IN_PROGRESS", 0)
    };
    // A service with hooks: its current service deployment is looked at.
    let (r, next) = step(
        &following,
        Event::Looked(Ok(Some(hooked.clone()))),
        T0 + 30.0,
    );
    assert_eq!(next, Next::Inspect("arn:sd/new".into()));
    // Paused: recorded, and waited for.
    let (r, next) = step(
        &r,
        Event::Inspected(Ok(Some(paused_at("POST_TEST_TRAFFIC_SHIFT")))),
        T0 + 30.0,
    );
    assert!(matches!(next, Next::Wait(_)));
    let waiting = r.waiting.clone().expect("the hook it waits at");
    assert_eq!(
        (waiting.stage.as_str(), waiting.hook_id.as_str()),
        ("POST_TEST_TRAFFIC_SHIFT", "ecs-pause-1")
    );
    // At the Timeout the hooks are looked at once more (the reason so far recorded
    // first), and the reason names the stage and how to go on.
    let (closing, next) = step(&r, Event::Looked(Ok(Some(hooked.clone()))), T0 + 600.0);
    assert_eq!(next, Next::Inspect("arn:sd/new".into()));
    assert!(closing.ending.is_none() && closing.closing.is_some());
    let (ended, next) = step(
        &closing,
        Event::Inspected(Ok(Some(paused_at("POST_TEST_TRAFFIC_SHIFT")))),
        T0 + 600.0,
    );
    assert_eq!((ended.ending, next), (Some(Ending::TimedOut), Next::Done));
    let reason = ended.reason.unwrap_or_default();
    assert!(
        reason.starts_with(
            "timed out after 600 s: deployment new of service api was left IN_PROGRESS"
        ),
        "{reason}"
    );
    // That last look failing, the hook as last seen.
    let (stale, _) = step(&closing, Event::Inspected(Err(server_error())), T0 + 601.0);
    let stale = stale.reason.unwrap_or_default();
    assert!(
        stale.contains(
            "; when last seen, the deployment waits at lifecycle stage POST_TEST_TRAFFIC_SHIFT"
        ),
        "{stale}"
    );
    for part in [
        "the deployment waits at lifecycle stage POST_TEST_TRAFFIC_SHIFT on PAUSE hook ecs-pause-1 (AWAITING_ACTION, until",
        "when ECS takes its timeout action ROLLBACK",
        "aws ecs continue-service-deployment --service-deployment-arn arn:sd/new --hook-id ecs-pause-1 --action CONTINUE",
    ] {
        assert!(reason.contains(part), "{part:?} in {reason}");
    }
    // The hook let it go on: no longer reported.
    let (r, _) = step(
        &r,
        Event::Inspected(Ok(Some(ServiceDeploymentState {
            hooks: Vec::new(),
            ..paused_at("SCALE_UP")
        }))),
        T0 + 40.0,
    );
    assert_eq!(r.waiting, None);
    // A Lambda hook answering IN_PROGRESS names its function.
    let mut lambda = paused_at("PRE_SCALE_UP");
    lambda.hooks[0].target_type = "AWS_LAMBDA".into();
    lambda.hooks[0].status = "IN_PROGRESS".into();
    lambda.hooks[0].target_arn = Some("arn:aws:lambda:fn".into());
    let (r, _) = step(&r, Event::Inspected(Ok(Some(lambda))), T0 + 50.0);
    let text = r.waiting.map(|w| w.describe()).unwrap_or_default();
    assert!(text.contains("Lambda function arn:aws:lambda:fn"), "{text}");
    // DescribeServiceDeployments refused: the restart goes on, without asking again.
    let denied = Fault::new(
        "ecs:DescribeServiceDeployments",
        FaultKind::AccessDenied,
        "denied",
    );
    let (r, next) = step(&following, Event::Inspected(Err(denied)), T0 + 30.0);
    assert!(matches!(next, Next::Wait(_)) && r.hooks_unreadable && r.ending.is_none());
    let (_, next) = step(&r, Event::Looked(Ok(Some(hooked))), T0 + 40.0);
    assert!(matches!(next, Next::Wait(_)), "{next:?}");
    // A passing fault: asked again at the next poll.
    let (r, _) = step(&following, Event::Inspected(Err(server_error())), T0 + 30.0);
    assert!(!r.hooks_unreadable);
}

#[test]
fn a_new_restart_knows_the_deployments_of_the_one_before() {
    let mut previous = following(WaitFor::SteadyState);
    previous.known = (0..20).map(|n| format!("d{n}")).collect();
    let known = known_after(&previous);
    assert_eq!(known.len(), KNOWN_KEPT);
    assert_eq!(known.last().map(String::as_str), Some("new"));
    assert_eq!(known.first().map(String::as_str), Some("d9"));
    // Its first look adds what ECS lists, still within the bound.
    let mut r = restart(WaitFor::SteadyState);
    r.known = known;
    let (r, _) = step(&r, Event::Looked(Ok(Some(before()))), T0);
    assert_eq!(r.known.len(), KNOWN_KEPT);
    assert!(r.known.contains(&"old".to_string()) && r.known.contains(&"new".to_string()));
}
