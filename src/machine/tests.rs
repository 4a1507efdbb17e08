//! The transition function, table by table: for a run in a given state, an event at a
//! given time gives this run and this next step.

use super::*;
use crate::outcome::{ContainerState, UNSEEN_GRACE_SECONDS};

const T0: f64 = 1_000.0;
const PREFIX: &str = "arn:aws:ecs:us-east-1:123456789012:task/c/";

/// The plan of `count` tasks of `arn:td/1`, `app` deciding (also the fixture of the
/// events' and the record's tests).
pub(crate) fn plan(mode: LaunchMode, count: u32) -> Plan {
    Plan {
        mode,
        count,
        task_definition: "arn:td/1".into(),
        deciding: vec!["app".into()],
        instances: match mode {
            LaunchMode::StartTask => (0..count).map(|i| format!("ci-{i}")).collect(),
            LaunchMode::RunTask => vec![],
        },
        log_tail: 0,
        logs: vec![],
        retry: Retry::default(),
    }
}

fn launching(mode: LaunchMode, count: u32) -> Run {
    Run::new("tok".into(), "c".into(), plan(mode, count), T0, 600, 15)
}

fn arn(i: u32) -> String {
    format!("{PREFIX}{i:032x}")
}

/// A run of `count` tasks, every batch started.
fn running(count: u32) -> Run {
    let mut run = launching(LaunchMode::RunTask, count);
    for b in &mut run.batches {
        b.state = BatchState::Started;
    }
    for i in 0..count {
        run.tasks.push(&arn(i));
    }
    run.phase = Phase::Running;
    run
}

fn task(i: u32, status: &str, stop_code: Option<&str>, exit: Option<i32>) -> TaskState {
    TaskState {
        arn: arn(i),
        last_status: status.into(),
        stop_code: stop_code.map(Into::into),
        stopped_reason: stop_code.map(|c| format!("{c} reason")),
        started: true,
        stopped_at: None,
        containers: vec![ContainerState {
            name: "app".into(),
            exit_code: exit,
            reason: None,
        }],
    }
}

fn started(i: u32, attempt: Option<&str>) -> crate::ecs::StartedTask {
    crate::ecs::StartedTask {
        arn: arn(i),
        created_at: Some(T0),
        attempt: attempt.map(Into::into),
    }
}

fn done(i: u32, exit: i32) -> TaskState {
    task(i, "STOPPED", Some("EssentialContainerExited"), Some(exit))
}

fn live(i: u32) -> TaskState {
    task(i, "RUNNING", None, None)
}

fn described(tasks: Vec<TaskState>) -> Event {
    Event::Described(Ok(Described {
        tasks,
        missing: vec![],
    }))
}

fn launched(arns: Vec<String>, not_placed: Vec<&str>) -> Result<Launched, Fault> {
    Ok(Launched {
        task_arns: arns,
        not_placed: not_placed.into_iter().map(Into::into).collect(),
    })
}

fn throttled() -> Fault {
    Fault::new("ecs:X", FaultKind::Throttled, "Rate exceeded")
}

fn server_error() -> Fault {
    Fault::new("ecs:X", FaultKind::ServerSide, "HTTP 503")
}

fn refused() -> Fault {
    Fault::new(
        "ecs:X",
        FaultKind::BadRequest,
        "InvalidParameterException: bad",
    )
}

fn driven_by(mut run: Run, token: &str) -> Run {
    if let Some(state) = run.stopping.as_mut() {
        state.driver = Some(token.into());
    }
    run
}

fn stopping(mut run: Run, ending: Ending, sent_at: Option<f64>, since: f64) -> Run {
    run.phase = Phase::Stopping;
    run.ending = Some(ending);
    run.reason = Some("why".into());
    run.stopping = Some(StopState {
        since,
        driver: None,
        to_send: vec![],
        sent_at,
        sweep: false,
        found: TaskArns::default(),
        sweep_for: 0,
        sweeps: 0,
    });
    run
}

struct Case {
    name: &'static str,
    run: Run,
    event: Event,
    now: f64,
    phase: Phase,
    ending: Option<Ending>,
    next: Next,
}

fn check(cases: Vec<Case>) {
    for case in cases {
        let before = case.run.clone();
        let Step { run, next } = step(&case.run, case.event.clone(), case.now);
        assert_eq!(run.phase, case.phase, "{}: phase", case.name);
        assert_eq!(run.ending, case.ending, "{}: ending", case.name);
        match (&next, &case.next) {
            // Waits are jittered (±25 %, or full jitter after throttling, at least 1 s):
            // the table gives the pause without jitter.
            (Next::Wait(got), Next::Wait(want)) => assert!(
                *got >= (want * 0.5).min(1.0) && *got <= (want * 2.0).max(1.25),
                "{}: next: waits {got} s, about {want} s expected",
                case.name
            ),
            _ => assert_eq!(next, case.next, "{}: next", case.name),
        }
        // Waiting and polling change nothing but the count of throttled looks (which
        // travels in the callback context, never written for itself).
        if matches!(next, Next::Wait(_))
            && case.phase == Phase::Running
            && before.phase == Phase::Running
        {
            let mut polled = run.clone();
            polled.throttled = before.throttled;
            assert_eq!(polled, before, "{}: a poll changed the run", case.name);
        }
    }
}

#[test]
fn starting_the_tasks() {
    let mut all_started = launching(LaunchMode::RunTask, 12);
    all_started.batches[0].state = BatchState::Started;
    for i in 0..10 {
        all_started.tasks.push(&arn(i));
    }
    let mut in_flight = launching(LaunchMode::StartTask, 2);
    in_flight.batches[0] = Batch {
        size: 2,
        attempts: 1,
        state: BatchState::InFlight {
            since: T0,
            lookups: 0,
        },
        unanswered: false,
        lost: false,
        retry: None,
    };
    check(vec![
        Case {
            name: "a plan of 25 starts its batches, at most 5 at once",
            run: launching(LaunchMode::RunTask, 25),
            event: Event::Resumed,
            now: T0,
            phase: Phase::Launching,
            ending: None,
            next: Next::Launch(vec![0, 1, 2]),
        },
        Case {
            name: "every batch answered: follow the tasks",
            run: launching(LaunchMode::RunTask, 2),
            event: Event::Launched(vec![(0, launched(vec![arn(0), arn(1)], vec![]))]),
            now: T0,
            phase: Phase::Running,
            ending: None,
            next: Next::Wait(1.0),
        },
        Case {
            name: "a throttled RunTask is asked again (same token) after a pause",
            run: launching(LaunchMode::RunTask, 2),
            event: Event::Launched(vec![(0, Err(throttled()))]),
            now: T0,
            phase: Phase::Launching,
            ending: None,
            next: Next::Wait(RETRY_DELAY_SECONDS),
        },
        Case {
            name: "a 5xx on RunTask is asked again too: the token makes it safe",
            run: launching(LaunchMode::RunTask, 2),
            event: Event::Launched(vec![(0, Err(server_error()))]),
            now: T0 + 1.0,
            phase: Phase::Launching,
            ending: None,
            next: Next::Wait(RETRY_DELAY_SECONDS),
        },
        Case {
            name:
                "a refused batch stops the tasks of the batches that started, and looks for strays",
            run: all_started.clone(),
            event: Event::Launched(vec![(1, Err(refused()))]),
            now: T0,
            phase: Phase::Stopping,
            ending: Some(Ending::Rejected {
                fault: FaultKind::BadRequest,
            }),
            next: Next::Stop((0..10).map(arn).collect()),
        },
        Case {
            name: "an answer naming fewer tasks than asked fails the run once the others end",
            run: launching(LaunchMode::RunTask, 2),
            event: Event::Launched(vec![(0, launched(vec![arn(0)], vec![]))]),
            now: T0,
            phase: Phase::Running,
            ending: None,
            next: Next::Wait(1.0),
        },
        Case {
            name: "no task could be placed",
            run: launching(LaunchMode::RunTask, 2),
            event: Event::Launched(vec![(
                0,
                launched(
                    vec![],
                    vec![
                        "task not placed: RESOURCE:MEMORY",
                        "task not placed: RESOURCE:MEMORY",
                    ],
                ),
            )]),
            now: T0,
            phase: Phase::Ended,
            ending: Some(Ending::TasksFailed),
            next: Next::Done,
        },
        Case {
            name: "Count 0 succeeds at once",
            run: launching(LaunchMode::RunTask, 0),
            event: Event::Resumed,
            now: T0,
            phase: Phase::Ended,
            ending: Some(Ending::Succeeded),
            next: Next::Done,
        },
        Case {
            name: "the deadline passes while starting",
            run: all_started.clone(),
            event: Event::Launched(vec![(1, Err(throttled()))]),
            now: T0 + 600.0,
            phase: Phase::Stopping,
            ending: Some(Ending::TimedOut),
            next: Next::Stop((0..10).map(arn).collect()),
        },
        Case {
            name: "a StartTask whose answer was lost is looked up once ECS can show it",
            run: in_flight.clone(),
            event: Event::Resumed,
            now: T0 + LOOKUP_DELAYS[0],
            phase: Phase::Launching,
            ending: None,
            next: Next::Find(0),
        },
        Case {
            name: "... not before",
            run: in_flight.clone(),
            event: Event::Resumed,
            now: T0 + 2.0,
            phase: Phase::Launching,
            ending: None,
            next: Next::Wait(LOOKUP_DELAYS[0] - 2.0),
        },
        Case {
            name: "a StartTask that failed after ECS may have acted is never sent again",
            run: in_flight.clone(),
            event: Event::Launched(vec![(0, Err(server_error()))]),
            now: T0,
            phase: Phase::Launching,
            ending: None,
            next: Next::Wait(RETRY_DELAY_SECONDS),
        },
        Case {
            name: "the lookup finds the tasks: follow them",
            run: in_flight.clone(),
            event: Event::Found {
                batch: 0,
                attempt: "tag-1".into(),
                result: Ok(vec![started(0, Some("tag-1")), started(1, Some("tag-1"))]),
            },
            now: T0 + 20.0,
            phase: Phase::Running,
            ending: None,
            next: Next::Wait(2.0),
        },
        Case {
            name: "abandoned while launching: stop, and look for tasks of unanswered batches",
            run: all_started.clone(),
            event: Event::Abandon {
                reason: "deleted".into(),
                operation: "op-2".into(),
            },
            now: T0,
            phase: Phase::Stopping,
            ending: Some(Ending::Superseded),
            next: Next::Stop((0..10).map(arn).collect()),
        },
    ]);
}

#[test]
fn every_task_of_a_batch_is_accounted_for() {
    let run = launching(LaunchMode::RunTask, 3);
    let Step { run, .. } = step(
        &run,
        Event::Launched(vec![(
            0,
            launched(vec![arn(0)], vec!["task not placed: X"]),
        )]),
        T0,
    );
    assert_eq!(run.total_tasks(), 3);
    assert_eq!(run.not_placed_count, 2);
    let Step { run, next } = step(&run, described(vec![done(0, 0)]), T0 + 10.0);
    assert_eq!((run.ending, next), (Some(Ending::TasksFailed), Next::Done));
}

#[test]
fn start_task_attempts_are_recorded_before_the_call_and_never_repeated_blindly() {
    let run = launching(LaunchMode::StartTask, 2);
    let Step { run, next } = step(&run, Event::Resumed, T0);
    assert_eq!(next, Next::Launch(vec![0]));
    assert_eq!(run.batches[0].attempts, 1);
    assert_eq!(
        run.batches[0].state,
        BatchState::InFlight {
            since: T0,
            lookups: 0
        }
    );
    // The answer was lost: nothing is started before the lookup said there is nothing.
    let Step { run, next } = step(
        &run,
        Event::Launched(vec![(0, Err(server_error()))]),
        T0 + 1.0,
    );
    assert_eq!(next, Next::Wait(RETRY_DELAY_SECONDS));
    let Step { run, next } = step(&run, Event::Resumed, T0 + 3.0);
    assert!(matches!(next, Next::Wait(_)), "{next:?}");
    // Looked for with backoff over five minutes: nothing found until the last look
    // says nothing was started.
    let mut run = run;
    for (look, delay) in LOOKUP_DELAYS.iter().enumerate() {
        let Step { run: r, next } = step(&run, Event::Resumed, T0 + delay - 0.5);
        assert!(matches!(next, Next::Wait(_)), "look {look}: {next:?}");
        let Step { run: r, next } = step(&r, Event::Resumed, T0 + delay);
        assert_eq!(next, Next::Find(0), "look {look}");
        let Step { run: r, next } = step(
            &r,
            Event::Found {
                batch: 0,
                attempt: "tag-1".into(),
                result: Ok(vec![]),
            },
            T0 + delay + 0.5,
        );
        if look + 1 < LOOKUP_DELAYS.len() {
            assert!(matches!(next, Next::Wait(_)), "look {look}: {next:?}");
        } else {
            assert_eq!(next, Next::Launch(vec![0]));
        }
        run = r;
    }
    assert_eq!(run.batches[0].attempts, 2, "a new attempt, with a new tag");
    // A throttled StartTask certainly did nothing: it may go again at once.
    let Step { run, .. } = step(
        &run,
        Event::Launched(vec![(0, Err(throttled()))]),
        T0 + 400.0,
    );
    assert_eq!(run.batches[0].state, BatchState::Pending);
}

#[test]
fn following_the_tasks() {
    let spot = task(0, "STOPPED", Some("SpotInterruption"), Some(0));
    check(vec![
        Case {
            name: "every task exited 0",
            run: running(2),
            event: described(vec![done(0, 0), done(1, 0)]),
            now: T0 + 30.0,
            phase: Phase::Ended,
            ending: Some(Ending::Succeeded),
            next: Next::Done,
        },
        Case {
            name: "a Spot interruption with exit 0 fails the run",
            run: running(1),
            event: described(vec![spot]),
            now: T0 + 30.0,
            phase: Phase::Ended,
            ending: Some(Ending::TasksFailed),
            next: Next::Done,
        },
        Case {
            name: "one failed, one still running: wait for it",
            run: running(2),
            event: described(vec![done(0, 2), live(1)]),
            now: T0 + 30.0,
            phase: Phase::Running,
            ending: None,
            next: Next::Wait(3.0),
        },
        Case {
            name: "still running at the deadline: the outcome is fixed, then the tasks are stopped",
            run: running(2),
            event: described(vec![done(0, 0), live(1)]),
            now: T0 + 600.0,
            phase: Phase::Stopping,
            ending: Some(Ending::TimedOut),
            next: Next::Stop(vec![arn(1)]),
        },
        Case {
            name: "unreadable for a while: look again",
            run: running(1),
            event: Event::Described(Err(throttled())),
            now: T0 + 100.0,
            phase: Phase::Running,
            ending: None,
            next: Next::Wait(10.0),
        },
        Case {
            name: "unreadable at the deadline: stop them all",
            run: running(2),
            event: Event::Described(Err(server_error())),
            now: T0 + 601.0,
            phase: Phase::Stopping,
            ending: Some(Ending::TimedOut),
            next: Next::Stop(vec![arn(0), arn(1)]),
        },
        Case {
            name: "cannot be followed at all: stop them, fail with the cause",
            run: running(1),
            event: Event::Described(Err(Fault::new(
                "ecs:DescribeTasks",
                FaultKind::AccessDenied,
                "denied",
            ))),
            now: T0 + 10.0,
            phase: Phase::Stopping,
            ending: Some(Ending::Rejected {
                fault: FaultKind::AccessDenied,
            }),
            next: Next::Stop(vec![arn(0)]),
        },
        Case {
            name: "not described yet just after the start: wait",
            run: running(1),
            event: Event::Described(Ok(Described {
                tasks: vec![],
                missing: vec![arn(0)],
            })),
            now: T0 + 5.0,
            phase: Phase::Running,
            ending: None,
            next: Next::Wait(1.0),
        },
        Case {
            name:
                "not shown by ECS five minutes after the start: failed, and stopped in case it runs",
            run: running(1),
            event: Event::Described(Ok(Described {
                tasks: vec![],
                missing: vec![arn(0)],
            })),
            now: T0 + UNSEEN_GRACE_SECONDS,
            phase: Phase::Stopping,
            ending: Some(Ending::TasksFailed),
            next: Next::Stop(vec![arn(0)]),
        },
        Case {
            name: "superseded while running",
            run: running(2),
            event: Event::Abandon {
                reason: "superseded by an update".into(),
                operation: "op-2".into(),
            },
            now: T0 + 5.0,
            phase: Phase::Stopping,
            ending: Some(Ending::Superseded),
            next: Next::Stop(vec![arn(0), arn(1)]),
        },
        Case {
            name: "an invocation begins: look at the tasks",
            run: running(1),
            event: Event::Resumed,
            now: T0 + 5.0,
            phase: Phase::Running,
            ending: None,
            next: Next::Describe,
        },
    ]);
}

#[test]
fn stopping_never_redecides_from_our_own_stop() {
    let timed_out = stopping(running(1), Ending::TimedOut, Some(T0 + 600.0), T0 + 600.0);
    // The app exits 0 on SIGTERM: the run still timed out.
    let stopped_clean = task(0, "STOPPED", Some("UserInitiated"), Some(0));
    check(vec![
        Case {
            name: "confirmed stopped: the fixed outcome stands",
            run: timed_out.clone(),
            event: described(vec![stopped_clean]),
            now: T0 + 605.0,
            phase: Phase::Ended,
            ending: Some(Ending::TimedOut),
            next: Next::Done,
        },
        Case {
            name: "still stopping: look again shortly",
            run: timed_out.clone(),
            event: described(vec![live(0)]),
            now: T0 + 605.0,
            phase: Phase::Stopping,
            ending: Some(Ending::TimedOut),
            next: Next::Wait(STOP_CHECK_SECONDS),
        },
        Case {
            name: "still running long after the stop: ask again",
            run: timed_out.clone(),
            event: described(vec![live(0)]),
            now: T0 + 600.0 + STOP_RESEND_SECONDS,
            phase: Phase::Stopping,
            ending: Some(Ending::TimedOut),
            next: Next::Stop(vec![arn(0)]),
        },
        Case {
            name: "cannot confirm in time: give up, the record keeps following",
            run: timed_out.clone(),
            event: Event::Described(Err(server_error())),
            now: T0 + 600.0 + STOP_CONFIRM_LIMIT_SECONDS,
            phase: Phase::Stopping,
            ending: Some(Ending::TimedOut),
            next: Next::GiveUp,
        },
        Case {
            name: "only throttled: throttled time does not count toward giving up",
            run: timed_out.clone(),
            event: Event::Described(Err(throttled())),
            now: T0 + 600.0 + STOP_CONFIRM_LIMIT_SECONDS,
            phase: Phase::Stopping,
            ending: Some(Ending::TimedOut),
            next: Next::Wait(2.0),
        },
        Case {
            name: "the cluster is gone: nothing runs",
            run: timed_out.clone(),
            event: Event::Described(Err(Fault::new(
                "ecs:DescribeTasks",
                FaultKind::ClusterNotFound,
                "gone",
            ))),
            now: T0 + 601.0,
            phase: Phase::Ended,
            ending: Some(Ending::TimedOut),
            next: Next::Done,
        },
        Case {
            name: "another operation taking a stop over keeps its outcome and looks at once",
            run: timed_out.clone(),
            event: Event::Abandon {
                reason: "deleted".into(),
                operation: "op-2".into(),
            },
            now: T0 + 601.0,
            phase: Phase::Stopping,
            ending: Some(Ending::TimedOut),
            next: Next::Describe,
        },
        Case {
            name: "the operation driving a stop abandoning again changes nothing",
            run: driven_by(timed_out.clone(), "op-2"),
            event: Event::Abandon {
                reason: "deleted".into(),
                operation: "op-2".into(),
            },
            now: T0 + 601.0,
            phase: Phase::Stopping,
            ending: Some(Ending::TimedOut),
            next: Next::Wait(STOP_CHECK_SECONDS - 1.0),
        },
        Case {
            name: "stops sent: check shortly",
            run: stopping(running(1), Ending::Superseded, None, T0),
            event: Event::StopsSent(vec![(arn(0), Ok(()))]),
            now: T0 + 1.0,
            phase: Phase::Stopping,
            ending: Some(Ending::Superseded),
            next: Next::Wait(STOP_CHECK_SECONDS),
        },
    ]);
}

#[test]
fn a_sweep_adds_stray_tasks_to_stop_and_confirm() {
    let mut run = stopping(running(1), Ending::Superseded, None, T0);
    if let Some(s) = run.stopping.as_mut() {
        s.sweep = true;
    }
    let Step { run, next } = step(&run, Event::Resumed, T0);
    assert_eq!(
        next,
        Next::Wait(SWEEP_DELAYS[0]),
        "a task started just before may not be listed yet"
    );
    let Step { run, next } = step(&run, described(vec![done(0, 0)]), T0 + 2.0);
    assert_ne!(next, Next::Done, "no end before the sweep");
    let Step { run, next } = step(&run, Event::Resumed, T0 + SWEEP_DELAYS[0]);
    assert_eq!(next, Next::Sweep);
    let Step { run, next } = step(&run, Event::Swept(Ok(vec![arn(0), arn(7)])), T0 + 16.0);
    assert_eq!(next, Next::Stop(vec![arn(0), arn(7)]));
    assert_eq!(run.watched_arns(), vec![arn(0), arn(7)]);
    let Step { run, .. } = step(
        &run,
        Event::StopsSent(vec![(arn(0), Ok(())), (arn(7), Err(throttled()))]),
        T0 + 17.0,
    );
    assert_eq!(
        run.stopping.as_ref().map(|s| run.arns_at(&s.to_send)),
        Some(vec![arn(7)]),
        "only the throttled one is sent again"
    );
}

#[test]
fn an_ended_run_never_changes() {
    let mut ended = running(1);
    ended.phase = Phase::Ended;
    ended.ending = Some(Ending::Succeeded);
    for event in [
        Event::Resumed,
        Event::Abandon {
            reason: "x".into(),
            operation: "op-2".into(),
        },
        described(vec![live(0)]),
    ] {
        let Step { run, next } = step(&ended, event, T0 + 9999.0);
        assert_eq!(run, ended);
        assert_eq!(next, Next::Done);
    }
}

#[test]
fn polls_get_rarer_as_a_run_goes_on() {
    let run = running(1);
    for (elapsed, want) in [
        (0.0, 1.0),
        (5.0, 1.0),
        (20.0, 2.0),
        (60.0, 6.0),
        (150.0, 15.0),
        (3000.0, 15.0),
    ] {
        let (got, want): (f64, f64) = (run.poll_delay(T0 + elapsed), want);
        assert!(
            got >= (want * 0.75).max(1.0) && got <= want * 1.25,
            "after {elapsed} s: {got} s, {want} s ± 25 % expected"
        );
    }
}

#[test]
fn task_arns_are_stored_once_with_their_prefix() {
    let mut arns = TaskArns::default();
    arns.push(&arn(1));
    arns.push(&arn(2));
    arns.push(&arn(1));
    assert_eq!(arns.prefix, PREFIX);
    assert_eq!(arns.arns(), vec![arn(1), arn(2)]);
    arns.push("arn:aws:ecs:eu-west-1:1:task/other/x");
    assert_eq!(
        arns.arns(),
        vec![
            arn(1),
            arn(2),
            "arn:aws:ecs:eu-west-1:1:task/other/x".to_string()
        ]
    );
}

fn with_retries(mut run: Run, attempts: u8, on: &[&str], fallback: bool) -> Run {
    run.plan.retry = Retry {
        attempts,
        on: on.iter().map(|c| c.to_string()).collect(),
        spot_fallback: fallback,
    };
    run
}

#[test]
fn a_spot_interrupted_task_is_retried_and_the_retry_decides() {
    let run = with_retries(running(2), 1, &["SpotInterruption"], true);
    let spot = task(0, "STOPPED", Some("SpotInterruption"), Some(0));
    let Step { run, next } = step(&run, described(vec![spot.clone(), live(1)]), T0 + 30.0);
    assert_eq!(run.phase, Phase::Launching);
    assert_eq!(
        next,
        Next::Launch(vec![1]),
        "a new batch of one, with its own token"
    );
    assert_eq!(
        run.batches[1].retry,
        Some(RetryOf {
            attempt: 1,
            fallback: true
        })
    );
    assert_eq!(
        run.retried,
        vec![Retried {
            task: 0,
            cause: "SpotInterruption".into()
        }]
    );
    let Step { run, next } = step(
        &run,
        Event::Launched(vec![(1, launched(vec![arn(9)], vec![]))]),
        T0 + 31.0,
    );
    assert_eq!((run.phase, run.attempt_of(2)), (Phase::Running, 1));
    assert!(matches!(next, Next::Wait(_)));
    // The interrupted task no longer counts; its retry and the other task decide.
    let retry_done = TaskState {
        arn: arn(9),
        ..done(9, 0)
    };
    let Step { run, next } = step(
        &run,
        described(vec![spot, done(1, 0), retry_done]),
        T0 + 60.0,
    );
    assert_eq!((run.ending, next), (Some(Ending::Succeeded), Next::Done));
    assert_eq!(run.current_arns(), vec![arn(1), arn(9)]);
    assert!(run
        .results
        .iter()
        .any(|r| r.retried_because.as_deref() == Some("SpotInterruption")));
    assert!(run.results.iter().any(|r| r.attempt == 1));
}

#[test]
fn retries_are_bounded_and_never_for_a_non_zero_exit_unless_asked() {
    let failed_exit = done(0, 2);
    let run = with_retries(running(1), 3, &crate::model::DEFAULT_RETRY_ON, false);
    let Step { run, .. } = step(&run, described(vec![failed_exit.clone()]), T0 + 10.0);
    assert_eq!(
        run.ending,
        Some(Ending::TasksFailed),
        "a failed migration is not run twice by default"
    );
    let run = with_retries(running(1), 1, &["NonZeroExit"], false);
    let Step { run, next } = step(&run, described(vec![failed_exit.clone()]), T0 + 10.0);
    assert_eq!(next, Next::Launch(vec![1]));
    let Step { run, .. } = step(
        &run,
        Event::Launched(vec![(1, launched(vec![arn(5)], vec![]))]),
        T0 + 11.0,
    );
    let again = TaskState {
        arn: arn(5),
        ..done(5, 2)
    };
    let Step { run, next } = step(&run, described(vec![failed_exit, again]), T0 + 20.0);
    assert_eq!(
        (run.ending, next),
        (Some(Ending::TasksFailed), Next::Done),
        "attempts used up"
    );
    // No retry once the deadline passed.
    let run = with_retries(running(1), 5, &["SpotInterruption"], false);
    let Step { run, .. } = step(
        &run,
        described(vec![task(0, "STOPPED", Some("SpotInterruption"), Some(0))]),
        T0 + 600.0,
    );
    assert_eq!(run.ending, Some(Ending::TasksFailed));
}

#[test]
fn a_task_not_placed_is_retried_when_the_policy_says_so() {
    let run = with_retries(
        launching(LaunchMode::RunTask, 2),
        2,
        &["PlacementFailure"],
        false,
    );
    let Step { run, .. } = step(
        &run,
        Event::Launched(vec![(
            0,
            launched(vec![arn(0)], vec!["task not placed: RESOURCE:CPU"]),
        )]),
        T0,
    );
    assert_eq!(run.not_placed_attempts, vec![0]);
    let Step { run, next } = step(&run, described(vec![live(0)]), T0 + 5.0);
    assert_eq!(next, Next::Launch(vec![1]));
    assert_eq!(run.not_placed_count, 0, "it no longer counts as a failure");
}

fn with_logs(mut run: Run, lines: u32) -> Run {
    run.plan.log_tail = lines;
    run.plan.logs = vec![ContainerLog {
        container: "app".into(),
        group: "/ecs/m".into(),
        prefix: "m".into(),
        region: None,
    }];
    run
}

#[test]
fn a_failed_run_reads_the_failing_containers_last_lines() {
    let run = with_logs(running(1), 20);
    let Step { run, next } = step(&run, described(vec![done(0, 2)]), T0 + 10.0);
    assert_eq!(
        (run.phase, run.ending),
        (Phase::Collecting, Some(Ending::TasksFailed))
    );
    let Next::ReadLogs(queries) = next else {
        panic!("{next:?}")
    };
    assert_eq!(
        queries,
        vec![LogQuery {
            group: "/ecs/m".into(),
            stream: format!("m/app/{:032x}", 0),
            region: None,
            lines: 20,
            since: Some(T0 - 60.0),
        }]
    );
    let Step { run, next } = step(
        &run,
        Event::LogsRead(vec![Ok(Some(vec![
            "migrating".into(),
            "ERROR: column exists".into(),
        ]))]),
        T0 + 11.0,
    );
    assert_eq!((run.phase, next), (Phase::Ended, Next::Done));
    let reason = run.reason.clone().unwrap_or_default();
    assert!(
        reason.contains("exited with code 2") && reason.contains("  | ERROR: column exists"),
        "{reason}"
    );
    assert_eq!(
        run.results[0].containers[0].log_tail,
        vec!["migrating".to_string(), "ERROR: column exists".into()]
    );
    // Unreadable logs do not keep the run from ending: a note takes their place.
    let run = with_logs(running(1), 20);
    let Step { run, .. } = step(&run, described(vec![done(0, 2)]), T0 + 10.0);
    let Step { run, next } = step(&run, Event::LogsRead(vec![Err(server_error())]), T0 + 11.0);
    assert_eq!(next, Next::Wait(RETRY_DELAY_SECONDS));
    let Step { run, .. } = step(&run, Event::LogsRead(vec![Err(server_error())]), T0 + 13.0);
    let Step { run, .. } = step(&run, Event::LogsRead(vec![Err(server_error())]), T0 + 15.0);
    assert_eq!(run.phase, Phase::Ended);
    assert!(run
        .reason
        .unwrap_or_default()
        .contains("log of container app not read"));
}

#[test]
fn a_successful_run_reads_its_output_line() {
    for (lines, want, note) in [
        (
            vec![
                "TASKRUN_OUTPUT {\"schemaVersion\": 42}".to_string(),
                "bye".into(),
            ],
            Some("{\"schemaVersion\": 42}".to_string()),
            None,
        ),
        (
            vec!["no marker here".to_string()],
            None,
            Some("Output not set"),
        ),
        (
            vec![format!("TASKRUN_OUTPUT {}", "x".repeat(5000))],
            None,
            Some("Output not kept"),
        ),
    ] {
        let run = with_logs(running(1), 20);
        let Step { run, next } = step(&run, described(vec![done(0, 0)]), T0 + 10.0);
        assert_eq!(
            (run.phase, run.ending),
            (Phase::Collecting, Some(Ending::Succeeded))
        );
        assert!(matches!(next, Next::ReadLogs(ref q) if q[0].lines == OUTPUT_SEARCH_LINES));
        let Step { run, .. } = step(&run, Event::LogsRead(vec![Ok(Some(lines))]), T0 + 11.0);
        assert_eq!(
            (run.phase, run.ending),
            (Phase::Ended, Some(Ending::Succeeded))
        );
        assert_eq!(run.output, want);
        assert_eq!(
            run.reason
                .as_deref()
                .and_then(|r| note.map(|n| r.starts_with(n))),
            note.map(|_| true),
            "{:?}",
            run.reason
        );
    }
}

#[test]
fn collecting_ends_when_another_operation_takes_over() {
    let run = with_logs(running(1), 20);
    let Step { run, .. } = step(&run, described(vec![done(0, 2)]), T0 + 10.0);
    let Step { run, next } = step(
        &run,
        Event::Abandon {
            reason: "deleted".into(),
            operation: "op-2".into(),
        },
        T0 + 11.0,
    );
    assert_eq!(
        (run.phase, run.ending, next),
        (Phase::Ended, Some(Ending::TasksFailed), Next::Done)
    );
}

#[test]
fn each_operation_that_takes_a_stop_over_gets_its_own_time_to_confirm_it() {
    // A stop began at T0 and whoever drove it was given up on; 15 minutes later a DELETE
    // takes over. It must send StopTask again and wait, not give up at once.
    let old = stopping(running(1), Ending::Superseded, Some(T0), T0);
    let late = T0 + STOP_CONFIRM_LIMIT_SECONDS + 300.0;
    let Step { run, next } = step(
        &old,
        Event::Abandon {
            reason: "deleted".into(),
            operation: "delete".into(),
        },
        late,
    );
    assert_eq!(next, Next::Describe);
    let Step { run, next } = step(&run, described(vec![live(0)]), late + 1.0);
    assert_eq!(next, Next::Stop(vec![arn(0)]), "StopTask again, not GiveUp");
    // Its own window then runs out like any other.
    let Step { next, .. } = step(
        &run,
        described(vec![live(0)]),
        late + STOP_CONFIRM_LIMIT_SECONDS + 1.0,
    );
    assert_eq!(next, Next::GiveUp);
}

/// A run of `count` tasks waiting for lock `db`.
fn waiting(count: u32) -> Run {
    let mut run = launching(LaunchMode::RunTask, count);
    let holder = Holder {
        key: "r1#tok".into(),
        id: "r1".into(),
        stack: None,
        logical_id: None,
    };
    run.wait_for_lock("db".into(), holder, T0);
    run
}

fn other_holder() -> Held {
    Held {
        holder: Holder {
            key: "r2#x".into(),
            id: "r2".into(),
            stack: Some("s2".into()),
            logical_id: Some("Migrate".into()),
        },
        since: T0 - 30.0,
        lease_until: T0 + 3000.0,
    }
}

#[test]
fn a_run_with_a_lock_starts_nothing_before_it_holds_it() {
    let run = waiting(3);
    assert_eq!(run.phase, Phase::Waiting);
    let s = step(&run, Event::Resumed, T0);
    assert_eq!(
        s.next,
        Next::TakeLock {
            lease_until: T0 + 600.0 + STOP_CONFIRM_LIMIT_SECONDS + waiting::LEASE_MARGIN_SECONDS
        }
    );
    let s = step(
        &s.run,
        Event::LockTaken(Ok(Taken::Busy(other_holder()))),
        T0 + 1.0,
    );
    assert_eq!(s.run.phase, Phase::Waiting);
    assert!(matches!(s.next, Next::Pause(d) if d >= waiting::MIN_LOOK_SECONDS));
    assert!(waiting::held_by(&s.run).contains("r2 (Migrate in stack s2)"));
    let s = step(
        &s.run,
        Event::LockTaken(Ok(Taken::Holds {
            generation: 4,
            broke: None,
        })),
        T0 + 50.0,
    );
    assert_eq!(s.run.phase, Phase::Launching);
    assert_eq!(s.run.started_at, T0 + 50.0);
    assert_eq!(s.run.deadline, T0 + 600.0, "the Timeout bounds waiting too");
    assert!(matches!(s.next, Next::Launch(_)));
}

#[test]
fn a_run_that_waited_past_its_timeout_ends_naming_the_holder_and_frees_the_lock() {
    let run = waiting(1);
    let s = step(
        &run,
        Event::LockTaken(Ok(Taken::Busy(other_holder()))),
        T0 + 590.0,
    );
    // Woken at the deadline at the latest.
    assert!(
        matches!(s.next, Next::Pause(d) if d <= 10.0),
        "{:?}",
        s.next
    );
    let s = step(&s.run, Event::Resumed, T0 + 600.0);
    assert_eq!(s.run.phase, Phase::Ended);
    assert_eq!(s.run.ending, Some(Ending::TimedOut));
    let reason = s.run.reason.clone().unwrap_or_default();
    assert!(
        reason.contains("waiting for lock 'db'") && reason.contains("r2"),
        "{reason}"
    );
    // Ended, it frees the lock (it may hold it unknowingly: an answer lost) before it is done.
    assert_eq!(s.next, Next::ReleaseLock);
    assert!(!s.run.is_ended());
    let s = step(&s.run, Event::LockReleased(Ok(false)), T0 + 601.0);
    assert_eq!(s.next, Next::Done);
    assert!(s.run.is_ended());
}

#[test]
fn a_run_superseded_while_waiting_ends_and_frees_the_lock() {
    let run = waiting(1);
    let s = step(
        &run,
        Event::Abandon {
            reason: "superseded by an update".into(),
            operation: "u".into(),
        },
        T0 + 5.0,
    );
    assert_eq!(s.run.ending, Some(Ending::Superseded));
    assert!(s.run.tasks.is_empty());
    assert_eq!(s.next, Next::ReleaseLock);
}

#[test]
fn a_run_that_cannot_free_its_lock_tries_again_then_leaves_it_to_its_lease() {
    let mut run = running(1);
    run.lock = waiting(1).lock;
    run.end(Ending::Succeeded, None, T0 + 10.0);
    let throttled = Fault::new("ssm:GetParametersByPath", FaultKind::Throttled, "slow down");
    let mut s = step(&run, Event::Resumed, T0 + 10.0);
    assert_eq!(s.next, Next::ReleaseLock);
    for _ in 1..waiting::RELEASE_TRIES {
        s = step(
            &s.run,
            Event::LockReleased(Err(throttled.clone())),
            T0 + 11.0,
        );
        assert!(matches!(s.next, Next::Wait(_)), "{:?}", s.next);
        s = step(&s.run, Event::Resumed, T0 + 12.0);
        assert_eq!(s.next, Next::ReleaseLock);
    }
    s = step(&s.run, Event::LockReleased(Err(throttled)), T0 + 13.0);
    assert_eq!(s.next, Next::Done);
    assert!(s.run.is_ended());
    assert_eq!(
        s.run.ending,
        Some(Ending::Succeeded),
        "the run's ending stands"
    );
}

#[test]
fn a_stale_copy_of_a_run_that_freed_its_lock_does_not_take_it_again() {
    let run = waiting(1);
    let s = step(&run, Event::LockTaken(Ok(Taken::FreedAlready)), T0 + 1.0);
    assert!(s.run.tasks.is_empty());
    assert_eq!(s.next, Next::Done);
    assert!(s.run.is_ended());
}
