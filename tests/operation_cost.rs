//! What waiting costs (`make bench`, figure 9): one CREATE of a TaskRun whose task runs
//! 1 minute, 1 hour and 35 hours (the longest Timeout is 35 h 30 min: the Registry's 36 h
//! for the whole operation, less room to stop and confirm), at the default PollInterval
//! and at the largest, played as CloudFormation plays it over the in-memory ECS and store
//! on a virtual clock (a 35-hour run takes a second). An invocation's length is the
//! virtual time from its request to its answer; the pause CloudFormation takes before the
//! callback it was asked for runs no handler.
//!
//! The Registry bills types outside `AWS::`, `Alexa::` and `Custom::` $0.0009 per handler
//! operation plus $0.00008 per second beyond 30 s per operation ("AWS CloudFormation
//! pricing"). What one operation is, with callbacks, is not documented, so three readings
//! are priced:
//! - **per invocation**: every invocation is an operation, billed for its own seconds
//!   beyond 30;
//! - **per operation, handler time**: the CREATE is one operation, billed for the seconds
//!   its invocations ran beyond 30 in all;
//! - **per operation, wall time**: the CREATE is one operation, billed for every second
//!   from its first request to its last answer beyond 30 (the pauses between callbacks
//!   included): the upper bound, the same whatever the handler does.
//!
//! Self-contained on purpose (only `taskrun`'s sim, resource and clock, and
//! `cfn_protocol::dispatch`): `scripts/bench.sh` runs this same file against the previous
//! handler's tree too, so both figures come from one measurement (with the two names that
//! tree spelled otherwise, `backend.ecs` and `TaskRun { backend }`, put back by the bench).
//!
//! Ignored by `cargo test` (a measurement; its one check is that every CREATE succeeds).
//! `COST_OUT=<file> cargo test --test operation_cost -- --ignored` writes one JSON line
//! per row; with `COST_PREVIOUS=<file>` (the previous tree's lines) it prints the table of
//! both, each figure beside its goal.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, UNIX_EPOCH};

use serde_json::{json, Value};
use taskrun::clock::Clock;
use taskrun::resource::TaskRun;
use taskrun::sim::{SimBackend, TaskScript};

const START: f64 = 1_700_000_000.0;
/// "AWS CloudFormation pricing": third-party and private resource types.
const PER_OPERATION_USD: f64 = 0.0009;
const PER_SECOND_BEYOND_30_USD: f64 = 0.000_08;
const UNBILLED_SECONDS: f64 = 30.0;
/// The Timeout of every row: the longest the current model allows (35 h 30 min).
const TIMEOUT_SECONDS: u32 = 127_800;

/// (label, the task's length in seconds).
const RUNS: [(&str, f64); 3] = [("1 min", 60.0), ("1 h", 3600.0), ("35 h", 126_000.0)];
const POLL_INTERVALS: [u32; 2] = [15, 600];

/// One CREATE played to its end.
struct Played {
    /// Each invocation's length, in seconds.
    lengths: Vec<f64>,
    /// From the first request to the last answer.
    wall: f64,
    /// From the task's end to the SUCCESS answer: what a longer PollInterval costs.
    lag: f64,
    status: String,
}

impl Played {
    fn figures(&self, run: &str, poll_interval: u32) -> Value {
        let handler: f64 = self.lengths.iter().sum();
        let beyond_each: f64 = self
            .lengths
            .iter()
            .map(|l| (l - UNBILLED_SECONDS).max(0.0))
            .sum();
        let invocations = self.lengths.len() as f64;
        json!({
            "run": run,
            "poll_interval": poll_interval,
            "status": self.status,
            "invocations": self.lengths.len(),
            "longest": self.lengths.iter().copied().fold(0.0, f64::max),
            "handler_seconds": handler,
            "wall_seconds": self.wall,
            "lag": self.lag,
            "usd_per_invocation": invocations * PER_OPERATION_USD
                + beyond_each * PER_SECOND_BEYOND_30_USD,
            "usd_handler_time": PER_OPERATION_USD
                + (handler - UNBILLED_SECONDS).max(0.0) * PER_SECOND_BEYOND_30_USD,
            "usd_wall_time": PER_OPERATION_USD
                + (self.wall - UNBILLED_SECONDS).max(0.0) * PER_SECOND_BEYOND_30_USD,
        })
    }
}

/// Polls `invocation` to its end on this thread: the twins answer at once on a virtual
/// clock, so it needs no runtime.
fn poll_to_end<F: Future>(invocation: F) -> Option<F::Output> {
    let mut future = pin!(invocation);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..100_000 {
        if let Poll::Ready(answer) = future.as_mut().poll(&mut cx) {
            return Some(answer);
        }
    }
    None
}

fn play(task_seconds: f64, poll_interval: u32) -> Played {
    let backend = SimBackend::new(START);
    backend.gateway.clone().with_world("c", "migrate");
    backend.gateway.lock().scripts = vec![TaskScript {
        runs_for: task_seconds,
        exits: vec![("app".into(), Some(0)), ("sidecar".into(), Some(0))],
        ..TaskScript::default()
    }]
    .into();
    let resource = TaskRun::new(backend.clone());
    let mut properties = json!({
        "Cluster": "c",
        "TaskDefinition": "migrate",
        "PollInterval": poll_interval.to_string(),
        "Timeout": TIMEOUT_SECONDS.to_string(),
    });
    let mut context: Option<Value> = None;
    let mut lengths = Vec::new();
    let started = backend.clock.now();
    // More callbacks than the longest run at a 1 s pace would take.
    for _ in 0..200_000 {
        let mut event = json!({
            "action": "CREATE",
            "bearerToken": format!("cost-{task_seconds}-{poll_interval}"),
            "region": "us-east-1",
            "awsAccountId": "123456789012",
            "stackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/cost/1",
            "resourceType": "Org::ECS::TaskRun",
            "requestData": {
                "callerCredentials": {"accessKeyId": "AKIAEXAMPLE", "secretAccessKey": "secret", "sessionToken": "session"},
                "logicalResourceId": "Migrate",
                "resourceProperties": properties,
            },
        });
        if let Some(context) = &context {
            event["callbackContext"] = context.clone();
        }
        let asked = backend.clock.now();
        let bytes = event.to_string();
        let deadline = UNIX_EPOCH + Duration::from_secs_f64(asked + 60.0);
        let answer = poll_to_end(cfn_protocol::dispatch(
            &resource,
            bytes.as_bytes(),
            Some(deadline),
        ))
        .expect("an invocation of the simulation never finished");
        lengths.push(backend.clock.now() - asked);
        if answer["status"] != "IN_PROGRESS" {
            let now = backend.clock.now();
            return Played {
                lengths,
                wall: now - started,
                lag: now - (started + task_seconds),
                status: answer["status"].as_str().unwrap_or("?").to_string(),
            };
        }
        backend
            .clock
            .advance(answer["callbackDelaySeconds"].as_f64().unwrap_or(1.0));
        context = Some(answer["callbackContext"].clone());
        properties = answer["resourceModel"].clone();
    }
    panic!("a CREATE of a {task_seconds} s task never ended");
}

fn usd(value: f64) -> String {
    if value < 1.0 {
        format!("${value:.4}")
    } else {
        format!("${value:.2}")
    }
}

/// `previous / current` of one figure, formatted by `show`.
fn both(previous: Option<&Value>, current: &Value, key: &str, show: fn(f64) -> String) -> String {
    let one = |row: Option<&Value>| {
        row.and_then(|r| r[key].as_f64())
            .map_or_else(|| "n/a".to_string(), show)
    };
    format!("{} / {}", one(previous), one(Some(current)))
}

fn print_table(current: &[Value], previous: &[Value]) {
    println!("9. What waiting costs: one CREATE, its task running for the time given (previous / current)");
    println!(
        "{:<6} {:>5} {:>13} {:>13} {:>17} {:>21} {:>21} {:>21} {:>13}",
        "run",
        "poll",
        "invocations",
        "longest (s)",
        "handler s in all",
        "$ per invocation",
        "$ per op, handler s",
        "$ per op, wall s",
        "lag (s)"
    );
    for row in current {
        let earlier = previous
            .iter()
            .find(|p| p["run"] == row["run"] && p["poll_interval"] == row["poll_interval"]);
        println!(
            "{:<6} {:>5} {:>13} {:>13} {:>17} {:>21} {:>21} {:>21} {:>13}",
            row["run"].as_str().unwrap_or("?"),
            format!("{} s", row["poll_interval"]),
            both(earlier, row, "invocations", |v| format!("{v:.0}")),
            both(earlier, row, "longest", |v| format!("{v:.1}")),
            both(earlier, row, "handler_seconds", |v| format!("{v:.0}")),
            both(earlier, row, "usd_per_invocation", usd),
            both(earlier, row, "usd_handler_time", usd),
            both(earlier, row, "usd_wall_time", usd),
            both(earlier, row, "lag", |v| format!("{v:.0}")),
        );
    }
    println!(
        "{:<6} {:>5} {:>13} {:>13} {:>17} {:>21} {:>21} {:>21} {:>13}",
        "goal", "", "report", "<= 30", "report", "report", "report", "report", "report"
    );
    let longest = |rows: &[Value]| {
        rows.iter()
            .filter_map(|r| r["longest"].as_f64())
            .fold(f64::NAN, f64::max)
    };
    let met = |rows: &[Value]| {
        if rows.is_empty() {
            "n/a"
        } else if longest(rows) <= UNBILLED_SECONDS {
            "met"
        } else {
            "MISSED"
        }
    };
    println!(
        "   longest invocation <= 30 s (per invocation, no second is billed): previous {} / current {}",
        met(previous),
        met(current)
    );
}

#[test]
#[ignore = "a measurement: scripts/bench.sh runs it (make bench, figure 9)"]
fn what_waiting_costs() {
    let mut rows = Vec::new();
    for (run, task_seconds) in RUNS {
        for poll_interval in POLL_INTERVALS {
            rows.push(play(task_seconds, poll_interval).figures(run, poll_interval));
        }
    }
    if let Ok(path) = std::env::var("COST_OUT") {
        let lines: Vec<String> = rows.iter().map(Value::to_string).collect();
        std::fs::write(&path, lines.join("\n") + "\n").expect("COST_OUT is writable");
    }
    let previous: Vec<Value> = std::env::var("COST_PREVIOUS")
        .ok()
        .and_then(|path| std::fs::read_to_string(path).ok())
        .map(|text| {
            text.lines()
                .filter_map(|line| serde_json::from_str(line).ok())
                .collect()
        })
        .unwrap_or_default();
    print_table(&rows, &previous);
    let failed: Vec<&Value> = rows.iter().filter(|r| r["status"] != "SUCCESS").collect();
    assert!(
        failed.is_empty(),
        "CREATEs that did not succeed: {failed:?}"
    );
}
