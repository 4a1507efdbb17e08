//! Issue 16: many TaskRuns at once, against ONE ECS and ONE SSM that throttle as AWS does.
//!
//! K TaskRuns (distinct logical ids, in stacks of 100; Count 1, Fargate; tasks that run
//! 20 s; default PollInterval 15 and Timeout 3600) are created within one second, each
//! played to its end as CloudFormation plays it (the first invocation, then callbacks after
//! `callbackDelaySeconds` plus CloudFormation's own latency, see
//! `scale_support::cloudformation_latency`), then deleted the same way. The handler is the
//! real one (`cfn_protocol::dispatch` over `TaskRun`), over the in-memory twins
//! (`taskrun::sim`) on one scheduled virtual clock: every invocation is a future, and
//! `clock::run_concurrently` interleaves them, moving the clock only when none can go on
//! (each twin call takes 50 ms of virtual time). ECS and SSM throttle with the account's
//! token buckets at AWS's rates (`handler_kit::clock::throttle`, each rule citing its AWS
//! page), a background consumer taking 25 % of every bucket's refill, and the SDK
//! gateways' retries of a throttled call (standard mode, 3 attempts; StartTask none).
//!
//! Fails only on what must hold at every K (correctness):
//! - no task of a TaskRun runs once its DELETE answered SUCCESS, and none at the end;
//! - no invocation takes more than 60 s (virtual);
//! - every SUCCESS is a true one by the twin's ground truth (the task it names is the run's
//!   own, stopped, `EssentialContainerExited`, exit 0), and no run started more than Count;
//! - no operation FAILED (NotStabilized, Throttling or any other code) or left unfinished:
//!   every task here succeeds well within its Timeout, so any failure is throttling's alone.
//!
//! Prints one line per K: completed, failed (by code), throttled attempts by bucket (and
//! how many throttled answers reached the handler), detection lag (task stopped → SUCCESS
//! answered) p50/p99, the longest invocation, calls per run, virtual time to all done and
//! wall time; then the goals as met / NOT met (lag p50 ≤ 3 s and p99 ≤ 30 s up to
//! K = 500, ≤ 2 s at K = 1; PutParameter ≤ 2 per CREATE), which do not fail the test, and
//! the floor the buckets set (see `Floor`).
//!
//! `TASKRUN_SCALE_K` (default `1,50,100,250,500`, the range; K = 1000 on request,
//! e.g. `TASKRUN_SCALE_K=1,50,100,250,500,1000`: its wall time depends on how many calls
//! the handler makes, from 1.5 to 5 minutes so far) and `TASKRUN_SCALE_RANDOM_K` (default
//! `50`: those K again with 20 % of all calls throttled at random) choose the scenarios;
//! `TASKRUN_SCALE_BACKGROUND` (0.25), `TASKRUN_SCALE_RANDOM` (0.2),
//! `TASKRUN_SCALE_SDK_RETRIES` (1; 0: every throttled attempt reaches the handler) and
//! `TASKRUN_SCALE_SEED` change the world; `TASKRUN_SCALE_TRACE=1` prints every invocation
//! (`=Migrate7`: that run's only) with its calls on its record, and the calls every run
//! made meanwhile (read those with K = 1).

mod scale_support;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};

use scale_support::{
    bucket_figures, cloudformation_latency, env_list, env_number, failure_figures, lag_floor,
    on_cores, percentile, seconds, verdict, Rng, CALL_LATENCY, INVOCATION_LIMIT,
};
use serde_json::{json, Value};
use taskrun::clock::throttle::{self, Counted, Throttling};
use taskrun::clock::{run_concurrently, Clock, VirtualClock};
use taskrun::ids;
use taskrun::outcome::NORMAL_STOP_CODE;
use taskrun::resource::TaskRun;
use taskrun::sim::SimBackend;
use taskrun::store::parameter_name;

const START: f64 = 1_700_000_000.0;
const CLUSTER: &str = "c";
const FAMILY: &str = "migrate";
/// How long every task runs.
const TASK_SECONDS: f64 = 20.0;
/// TaskRuns per stack.
const STACK_SIZE: usize = 100;
/// Invocations one operation may take before it counts as never ending.
const MOST_INVOCATIONS: usize = 2000;
/// Virtual time after which whatever still runs counts as never ending.
const HORIZON_SECONDS: f64 = 6.0 * 3600.0;

#[derive(Debug, Clone)]
struct Scenario {
    k: usize,
    background: f64,
    random: f64,
    sdk_retries: bool,
    seed: u64,
}

impl Scenario {
    fn label(&self) -> String {
        let mut label = format!("K={}", self.k);
        if self.random > 0.0 {
            label.push_str(&format!(" +{:.0}% random", self.random * 100.0));
        }
        label
    }
}

/// One TaskRun's life, as the test saw it.
#[derive(Debug, Default)]
struct RunFigures {
    /// Final status and error code of each operation.
    create: Option<(String, Option<String>)>,
    delete: Option<(String, Option<String>)>,
    /// Task stopped → SUCCESS answered.
    lag: Option<f64>,
    longest_invocation: f64,
    invocations: u32,
    /// PutParameter calls of the CREATE on its record: answered, throttled.
    puts_in_create: Counted,
    /// When its CREATE arrived.
    arrived_at: f64,
    /// When its task stopped (ground truth).
    stopped_at: Option<f64>,
}

/// Everything one operation needs, shared by the K lives of a scenario (one thread).
struct World {
    backend: SimBackend,
    resource: TaskRun<SimBackend>,
    violations: RefCell<Vec<String>>,
    seed: u64,
}

impl World {
    fn clock(&self) -> &VirtualClock {
        &self.backend.clock
    }

    fn violation(&self, message: String) {
        self.violations.borrow_mut().push(message);
    }

    fn envelope(
        &self,
        action: &str,
        token: &str,
        stack: &str,
        logical: &str,
        properties: &Value,
        context: Option<&Value>,
    ) -> Value {
        let mut event = json!({
            "action": action, "bearerToken": token, "region": "us-east-1",
            "awsAccountId": "123456789012", "stackId": stack, "resourceType": "Org::ECS::TaskRun",
            "requestData": {
                "callerCredentials": {"accessKeyId": "AKIAEXAMPLE", "secretAccessKey": "secret", "sessionToken": "session"},
                "logicalResourceId": logical,
                "resourceProperties": properties,
                "stackTags": {"team": "platform"},
            },
        });
        if let Some(context) = context {
            event["callbackContext"] = context.clone();
        }
        event
    }

    /// One operation to its end, as CloudFormation plays it; its last answer.
    #[allow(clippy::too_many_arguments)]
    async fn operate(
        &self,
        rng: &mut Rng,
        figures: &mut RunFigures,
        action: &str,
        token: &str,
        stack: &str,
        logical: &str,
        mut properties: Value,
    ) -> Option<Value> {
        let clock = self.clock();
        let mut context: Option<Value> = None;
        let traced = std::env::var("TASKRUN_SCALE_TRACE")
            .is_ok_and(|t| t == "1" || t == "all" || t == logical);
        let record = parameter_name(
            &properties["Id"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| ids::run_id(Some(stack), Some(logical), Some(token))),
        );
        let record_calls = || {
            self.backend
                .store
                .calls_by_name
                .lock()
                .ok()
                .and_then(|c| c.get(&record).cloned())
                .unwrap_or_default()
        };
        for _ in 0..MOST_INVOCATIONS {
            let event = self.envelope(action, token, stack, logical, &properties, context.as_ref());
            let bytes = event.to_string();
            let began = clock.now();
            let logged = (
                self.backend.ecs.lock().call_log.len(),
                self.backend.store.call_log.lock().map_or(0, |l| l.len()),
                record_calls(),
            );
            let deadline = UNIX_EPOCH + Duration::from_secs_f64(began + INVOCATION_LIMIT);
            let answer =
                cfn_protocol::dispatch(&self.resource, bytes.as_bytes(), Some(deadline)).await;
            let took = clock.now() - began;
            if traced {
                // The calls every run made meanwhile (read them with K = 1), and this run's
                // calls on its record (answered/throttled).
                let ecs = self.backend.ecs.lock().call_log[logged.0..].join(" ");
                let store = self
                    .backend
                    .store
                    .call_log
                    .lock()
                    .map(|l| l[logged.1..].join(" "))
                    .unwrap_or_default();
                let mine: Vec<String> = record_calls()
                    .into_iter()
                    .filter_map(|(op, c)| {
                        let before = logged.2.get(op).copied().unwrap_or_default();
                        let (ok, throttled) =
                            (c.allowed - before.allowed, c.throttled - before.throttled);
                        (ok + throttled > 0).then(|| format!("{op} {ok}/{throttled}"))
                    })
                    .collect();
                eprintln!(
                    "t={:.2} {logical} {action} {} -> {} after {took:.2} s: delay {} {} | record: {} | all ECS: [{ecs}] | all SSM: [{store}]",
                    began - START,
                    if context.is_some() {
                        "callback"
                    } else {
                        "first"
                    },
                    answer["status"].as_str().unwrap_or_default(),
                    answer["callbackDelaySeconds"],
                    answer["message"].as_str().unwrap_or_default(),
                    mine.join(", ")
                );
            }
            figures.invocations += 1;
            figures.longest_invocation = figures.longest_invocation.max(took);
            if took > INVOCATION_LIMIT {
                self.violation(format!(
                    "{logical} {action}: an invocation took {took:.1} s: {answer}"
                ));
            }
            match answer["status"].as_str() {
                Some("IN_PROGRESS") => {}
                Some("SUCCESS" | "FAILED") => return Some(answer),
                _ => {
                    self.violation(format!(
                        "{logical} {action}: not a progress event: {answer}"
                    ));
                    return None;
                }
            }
            let delay = answer["callbackDelaySeconds"].as_f64().unwrap_or(0.0);
            if delay <= 0.0 {
                self.violation(format!(
                    "{logical} {action}: IN_PROGRESS without a delay: {answer}"
                ));
            }
            clock.sleep(delay + cloudformation_latency(rng)).await;
            context = Some(answer["callbackContext"].clone());
            if action != "DELETE" {
                // CloudFormation calls back with the model the handler returned.
                properties = answer["resourceModel"].clone();
            }
        }
        self.violation(format!(
            "{logical} {action}: no end after {MOST_INVOCATIONS} invocations"
        ));
        None
    }

    /// A SUCCEEDED model: it names the run's one task, which really ended well.
    fn check_succeeded(&self, logical: &str, id: &str, model: &Value) {
        let now = self.clock().now();
        let state = self.backend.ecs.lock();
        let named: Vec<&str> = model["TaskArns"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        if named.len() != 1 {
            self.violation(format!(
                "{logical}: SUCCEEDED names {} tasks for Count 1: {model}",
                named.len()
            ));
        }
        for arn in named {
            let Some(task) = state.tasks.iter().find(|t| t.arn == arn) else {
                self.violation(format!(
                    "{logical}: SUCCEEDED names a task ECS never started: {arn}"
                ));
                continue;
            };
            let end = task.end();
            let app = end
                .exits
                .iter()
                .find(|(n, _)| n == "app")
                .and_then(|(_, e)| *e);
            if task.started_by != id
                || end.at > now
                || end.stop_code != NORMAL_STOP_CODE
                || app != Some(0)
            {
                self.violation(format!(
                    "{logical}: wrong SUCCESS: task {arn} of {} ended {end:?} (now {now})",
                    task.started_by
                ));
            }
        }
    }

    /// The run's tasks (ground truth): how many, when the last stopped, how many run now.
    fn tasks_of(&self, id: &str) -> (usize, Option<f64>, usize) {
        let now = self.clock().now();
        let state = self.backend.ecs.lock();
        let ours: Vec<_> = state.tasks.iter().filter(|t| t.started_by == id).collect();
        let stopped = ours
            .iter()
            .map(|t| t.end().at)
            .fold(None, |m: Option<f64>, at| Some(m.map_or(at, |m| m.max(at))));
        let running = ours.iter().filter(|t| t.is_running_at(now)).count();
        (ours.len(), stopped, running)
    }

    /// One TaskRun's life: CREATE to its end, then DELETE to its end.
    async fn life(&self, index: usize) -> RunFigures {
        let mut rng = Rng::new(self.seed.wrapping_mul(1_000_003).wrapping_add(index as u64));
        let clock = self.clock();
        let mut figures = RunFigures::default();
        // Created within one second.
        clock.sleep(rng.uniform(0.0, 1.0)).await;
        figures.arrived_at = clock.now();
        let stack = format!(
            "arn:aws:cloudformation:us-east-1:123456789012:stack/scale-{}/1",
            index / STACK_SIZE
        );
        let logical = format!("Migrate{index}");
        let token = format!("create-{index}");
        let id = ids::run_id(Some(&stack), Some(&logical), Some(&token));
        let properties = json!({
            "Cluster": CLUSTER, "TaskDefinition": FAMILY, "Count": 1, "LaunchType": "FARGATE",
            "NetworkConfiguration": {"AwsvpcConfiguration": {"Subnets": ["subnet-0123456789abcdef0"]}},
        });
        let created = self
            .operate(
                &mut rng,
                &mut figures,
                "CREATE",
                &token,
                &stack,
                &logical,
                properties.clone(),
            )
            .await;
        let (started, stopped_at, _) = self.tasks_of(&id);
        figures.stopped_at = stopped_at;
        if started > 1 {
            self.violation(format!("{logical}: {started} tasks started for Count 1"));
        }
        figures.puts_in_create = self
            .backend
            .store
            .calls_by_name
            .lock()
            .ok()
            .and_then(|c| {
                c.get(&parameter_name(&id))
                    .and_then(|ops| ops.get("ssm:PutParameter").copied())
            })
            .unwrap_or_default();
        let mut model = properties;
        if let Some(answer) = &created {
            let status = answer["status"].as_str().unwrap_or_default().to_string();
            let code = answer["errorCode"].as_str().map(str::to_string);
            if status == "SUCCESS" {
                let returned = &answer["resourceModel"];
                if returned["Id"].as_str() != Some(id.as_str()) {
                    self.violation(format!("{logical}: CREATE answered another Id: {answer}"));
                }
                if returned["Status"] == "SUCCEEDED" {
                    self.check_succeeded(&logical, &id, returned);
                    figures.lag = stopped_at.map(|at| clock.now() - at);
                } else {
                    self.violation(format!(
                        "{logical}: CREATE SUCCESS without a SUCCEEDED run: {answer}"
                    ));
                }
                model = returned.clone();
            } else {
                self.violation(format!(
                    "{logical}: CREATE {status} {} (throttling alone: every task succeeds within its Timeout): {}",
                    code.as_deref().unwrap_or("-"),
                    answer["message"].as_str().unwrap_or_default()
                ));
            }
            figures.create = Some((status, code));
        }
        model["Id"] = json!(id);
        // CloudFormation deletes it (a stack delete, or the rollback of a failed CREATE).
        clock.sleep(cloudformation_latency(&mut rng)).await;
        let deleted = self
            .operate(
                &mut rng,
                &mut figures,
                "DELETE",
                &format!("delete-{index}"),
                &stack,
                &logical,
                model,
            )
            .await;
        if let Some(answer) = &deleted {
            let status = answer["status"].as_str().unwrap_or_default().to_string();
            let code = answer["errorCode"].as_str().map(str::to_string);
            let (_, _, running) = self.tasks_of(&id);
            if status == "SUCCESS" && running > 0 {
                self.violation(format!(
                    "{logical}: {running} task(s) still running after DELETE answered SUCCESS"
                ));
            }
            // A DELETE of a TaskRun that never came to be may answer NotFound: CloudFormation
            // takes that as deleted.
            let not_found = code.as_deref() == Some("NotFound")
                && !created.as_ref().is_some_and(|a| a["status"] == "SUCCESS");
            if status != "SUCCESS" && !not_found {
                self.violation(format!(
                    "{logical}: DELETE {status} {}: {}",
                    code.as_deref().unwrap_or("-"),
                    answer["message"].as_str().unwrap_or_default()
                ));
            }
            figures.delete = Some((status, code));
        }
        figures
    }
}

/// What a scenario showed.
struct Report {
    scenario: Scenario,
    runs: Vec<RunFigures>,
    violations: Vec<String>,
    ecs_calls: BTreeMap<&'static str, u64>,
    store_calls: BTreeMap<&'static str, u64>,
    counts: Vec<(&'static str, Counted)>,
    /// Throttled answers that reached the handler (after the SDK's retries).
    surfaced: u64,
    sdk_retries: u64,
    virtual_seconds: f64,
    wall: Duration,
}

fn play(scenario: &Scenario) -> Report {
    let began = Instant::now();
    let clock = Arc::new(VirtualClock::scheduled(START));
    let backend = SimBackend::on(clock.clone());
    backend.ecs.clone().with_world(CLUSTER, FAMILY);
    backend.ecs.lock().default_script.runs_for = TASK_SECONDS;
    backend.throttle_with(Throttling {
        buckets: true,
        background: scenario.background,
        random: scenario.random,
        seed: scenario.seed,
        sdk_retries: scenario.sdk_retries,
    });
    let world = World {
        backend: backend.clone(),
        resource: TaskRun {
            backend: backend.clone(),
        },
        violations: RefCell::new(Vec::new()),
        seed: scenario.seed,
    };
    let lives: Vec<_> = (0..scenario.k).map(|i| world.life(i)).collect();
    let ends = run_concurrently(&clock, lives, START + HORIZON_SECONDS);
    let mut runs = Vec::new();
    for (index, end) in ends.into_iter().enumerate() {
        match end {
            Some(figures) => runs.push(figures),
            None => {
                world.violation(format!(
                    "Migrate{index}: its operations had not ended after {HORIZON_SECONDS} s"
                ));
                runs.push(RunFigures::default());
            }
        }
    }
    let still = backend.ecs.running();
    if !still.is_empty() {
        world.violation(format!(
            "{} task(s) still running at the end, e.g. {} of {}",
            still.len(),
            still[0].arn,
            still[0].started_by
        ));
    }
    let mut ecs_calls = BTreeMap::new();
    let (counts, surfaced, sdk_retries) = {
        let state = backend.ecs.lock();
        for op in &state.call_log {
            *ecs_calls.entry(*op).or_default() += 1;
        }
        let store = backend
            .store
            .throttle
            .lock()
            .map(|t| t.clone())
            .unwrap_or_default();
        let mut counts = state.throttle.counts();
        counts.extend(store.counts());
        let surfaced =
            state.throttle.surfaced.values().sum::<u64>() + store.surfaced.values().sum::<u64>();
        (
            counts,
            surfaced,
            state.throttle.sdk_retries + store.sdk_retries,
        )
    };
    let mut store_calls = BTreeMap::new();
    for op in backend
        .store
        .call_log
        .lock()
        .map(|l| l.clone())
        .unwrap_or_default()
    {
        *store_calls.entry(op).or_default() += 1;
    }
    Report {
        scenario: scenario.clone(),
        runs,
        violations: world.violations.into_inner(),
        ecs_calls,
        store_calls,
        counts,
        surfaced,
        sdk_retries,
        virtual_seconds: clock.now() - START,
        wall: began.elapsed(),
    }
}

/// The floor the buckets set, whatever the handler (see `scale_support::lag_floor`).
struct Floor {
    /// DescribeTasks the cluster-read bucket allows each run per second, all running.
    describes_per_run_second: f64,
    /// Best lag if every task stopped 20 s after its CREATE arrived (all within a second,
    /// as if nothing held the launches back) and each run then made one DescribeTasks.
    together: (Option<f64>, Option<f64>),
    /// Best lag given when the tasks really stopped in this play, with one DescribeTasks
    /// and then the one record write that must precede SUCCESS (the run is recorded Ended
    /// first), each through its bucket.
    as_stopped: (Option<f64>, Option<f64>),
    /// The least time to all done if each CREATE wrote its record twice (the goal), all
    /// through PutParameter's bucket.
    all_done: f64,
}

fn floor(report: &Report) -> Floor {
    let share = 1.0 - report.scenario.background;
    let k = report.scenario.k as f64;
    let read = (
        throttle::ECS_CLUSTER_READ.burst,
        throttle::ECS_CLUSTER_READ.refill * share,
    );
    let put = (
        throttle::SSM_PUT_PARAMETER.burst,
        throttle::SSM_PUT_PARAMETER.refill * share,
    );
    // Arrival, then GetParameter, DescribeTaskDefinition, PutParameter, RunTask: the task
    // starts 0.2 s after its CREATE arrived at best.
    let together: Vec<f64> = report
        .runs
        .iter()
        .map(|r| r.arrived_at + 4.0 * CALL_LATENCY + TASK_SECONDS)
        .collect();
    let stops: Vec<f64> = report.runs.iter().filter_map(|r| r.stopped_at).collect();
    Floor {
        describes_per_run_second: read.1 / k,
        together: lag_floor(&together, &[read]),
        as_stopped: lag_floor(&stops, &[read, put]),
        all_done: (2.0 * k - put.0).max(0.0) / put.1 + TASK_SECONDS,
    }
}

/// The report's line, its goals, and its floor.
fn lines(report: &Report) -> Vec<String> {
    let s = &report.scenario;
    let k = s.k as f64;
    let completed = report
        .runs
        .iter()
        .filter(|r| {
            matches!(&r.create, Some((st, _)) if st == "SUCCESS")
                && matches!(&r.delete, Some((st, _)) if st == "SUCCESS")
        })
        .count();
    let mut failures: BTreeMap<String, usize> = BTreeMap::new();
    for run in &report.runs {
        for (action, op) in [("CREATE", &run.create), ("DELETE", &run.delete)] {
            match op {
                Some((status, code)) if status != "SUCCESS" => {
                    *failures
                        .entry(format!("{action} {}", code.as_deref().unwrap_or(status)))
                        .or_default() += 1;
                }
                None => *failures.entry(format!("{action} unfinished")).or_default() += 1,
                _ => {}
            }
        }
    }
    let lags: Vec<f64> = report.runs.iter().filter_map(|r| r.lag).collect();
    let (p50, p99) = (percentile(&lags, 50.0), percentile(&lags, 99.0));
    let longest = report
        .runs
        .iter()
        .map(|r| r.longest_invocation)
        .fold(0.0, f64::max);
    let describes = report
        .ecs_calls
        .get("ecs:DescribeTasks")
        .copied()
        .unwrap_or(0);
    let other_ecs: u64 = report.ecs_calls.values().sum::<u64>() - describes;
    // PutParameter calls a CREATE made on its record (each one up to 3 SDK attempts), and
    // those that wrote.
    let creates: Vec<&RunFigures> = report.runs.iter().filter(|r| r.create.is_some()).collect();
    let per_create = |n: u64| n as f64 / creates.len().max(1) as f64;
    let puts_mean = per_create(
        creates
            .iter()
            .map(|r| r.puts_in_create.allowed + r.puts_in_create.throttled)
            .sum(),
    );
    let written_mean = per_create(creates.iter().map(|r| r.puts_in_create.allowed).sum());
    let puts_max = creates
        .iter()
        .map(|r| r.puts_in_create.allowed + r.puts_in_create.throttled)
        .max()
        .unwrap_or(0);
    let written_max = creates
        .iter()
        .map(|r| r.puts_in_create.allowed)
        .max()
        .unwrap_or(0);
    let gets = report
        .store_calls
        .get("ssm:GetParameter")
        .copied()
        .unwrap_or(0);
    let invocations: u32 = report.runs.iter().map(|r| r.invocations).sum();
    let main = format!(
        "{:<16} completed {}/{} | failed {} | throttled (attempts) {}; reached the handler {}, SDK retries {} | lag p50 {} p99 {} | longest invocation {:.1} s | per run: {:.1} invocations, DescribeTasks {:.1}, other ECS {:.1}, PutParameter/CREATE {:.2} (max {}; {:.2} written, max {}), GetParameter {:.1} | virtual {:.0} s | wall {:.1} s",
        s.label(),
        completed,
        s.k,
        failure_figures(&failures),
        bucket_figures(&report.counts),
        report.surfaced,
        report.sdk_retries,
        seconds(p50),
        seconds(p99),
        longest,
        f64::from(invocations) / k,
        describes as f64 / k,
        other_ecs as f64 / k,
        puts_mean,
        puts_max,
        written_mean,
        written_max,
        gets as f64 / k,
        report.virtual_seconds,
        report.wall.as_secs_f64(),
    );
    let mut goals = Vec::new();
    if s.k == 1 {
        goals.push(format!(
            "lag <= 2 s: {}",
            verdict(p99.is_some_and(|v| v <= 2.0))
        ));
    } else if s.k <= 500 {
        goals.push(format!(
            "lag p50 <= 3 s: {}",
            verdict(p50.is_some_and(|v| v <= 3.0))
        ));
        goals.push(format!(
            "lag p99 <= 30 s: {}",
            verdict(p99.is_some_and(|v| v <= 30.0))
        ));
    } else {
        goals.push("lag: no goal beyond K = 500".into());
    }
    goals.push(format!(
        "PutParameter <= 2 per CREATE: {} by calls (max {puts_max}), {} by writes (max {written_max})",
        verdict(puts_max <= 2),
        verdict(written_max <= 2)
    ));
    goals.push(format!("none failed: {}", verdict(failures.is_empty())));
    goals.push(format!(
        "no invocation past 60 s: {}",
        verdict(longest <= INVOCATION_LIMIT)
    ));
    let f = floor(report);
    vec![
        main,
        format!("{:<16} goals: {}", "", goals.join("; ")),
        format!(
            "{:<16} floor: the read bucket allows {:.3} DescribeTasks per run per second; best lag with one look per run after its task stopped: p50 {} p99 {} if all tasks stopped 20 s after their CREATE arrived, p50 {} p99 {} as they stopped here (look, then the end record write); all done >= {:.0} s at 2 PutParameter per CREATE",
            "",
            f.describes_per_run_second,
            seconds(f.together.0),
            seconds(f.together.1),
            seconds(f.as_stopped.0),
            seconds(f.as_stopped.1),
            f.all_done,
        ),
    ]
}

#[test]
fn many_task_runs_at_once_under_aws_throttling() {
    let background = env_number("TASKRUN_SCALE_BACKGROUND", 0.25);
    let random = env_number("TASKRUN_SCALE_RANDOM", 0.2);
    let sdk_retries = env_number("TASKRUN_SCALE_SDK_RETRIES", 1.0) != 0.0;
    let seed = env_number("TASKRUN_SCALE_SEED", 16.0) as u64;
    let mut scenarios: Vec<Scenario> = env_list("TASKRUN_SCALE_K", &[1, 50, 100, 250, 500])
        .into_iter()
        .map(|k| Scenario {
            k,
            background,
            random: 0.0,
            sdk_retries,
            seed,
        })
        .collect();
    scenarios.extend(
        env_list("TASKRUN_SCALE_RANDOM_K", &[50])
            .into_iter()
            .map(|k| Scenario {
                k,
                background,
                random,
                sdk_retries,
                seed,
            }),
    );
    // The largest first, so that the cores finish together.
    let mut order: Vec<usize> = (0..scenarios.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(scenarios[i].k));
    let ordered: Vec<Scenario> = order.iter().map(|&i| scenarios[i].clone()).collect();
    let began = Instant::now();
    let mut reports = on_cores(&ordered, play);
    reports.sort_by_key(|r| {
        scenarios
            .iter()
            .position(|s| s.k == r.scenario.k && s.random == r.scenario.random)
    });
    println!(
        "TaskRun at scale: Count 1, {TASK_SECONDS} s Fargate tasks, PollInterval 15, Timeout 3600; ECS and SSM token buckets at AWS's rates, background {:.0} % of every refill, SDK retries {}; CloudFormation calls back ~1 s (0.5-2 s) after callbackDelaySeconds",
        background * 100.0,
        if sdk_retries { "on (3 attempts, StartTask 1)" } else { "off" }
    );
    for report in &reports {
        for line in lines(report) {
            println!("{line}");
        }
    }
    println!("total wall time {:.1} s", began.elapsed().as_secs_f64());
    let violations: Vec<String> = reports
        .iter()
        .flat_map(|r| {
            r.violations
                .iter()
                .map(move |v| format!("{}: {v}", r.scenario.label()))
        })
        .collect();
    if !violations.is_empty() {
        let shown: Vec<&String> = violations.iter().take(30).collect();
        panic!(
            "{} invariant violation(s), the first {}:\n{}",
            violations.len(),
            shown.len(),
            shown
                .iter()
                .map(|v| v.as_str())
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

/// The twins on a scheduled clock, throttling: calls made at the same instant overlap (each
/// takes its 50 ms, together), a bucket lets its burst through and answers the rest as AWS
/// does (ThrottlingException "Rate exceeded", read as a throttle), RunTask on Fargate draws
/// on the Fargate bucket too, and SSM's PutParameter lets 3 through.
#[test]
fn the_twins_throttle_concurrent_calls_as_aws_answers() {
    use taskrun::ecs::{Ecs, FaultKind, LaunchSpec};
    use taskrun::store::ParameterStore;

    let clock = Arc::new(VirtualClock::scheduled(START));
    let backend = SimBackend::on(clock.clone());
    backend.ecs.clone().with_world(CLUSTER, FAMILY);
    backend.throttle_with(Throttling::default());
    let by = START + 50.0;
    let arn = vec!["arn:aws:ecs:us-east-1:123456789012:task/c/1".to_string()];
    let describes: Vec<_> = (0..150)
        .map(|_| backend.ecs.describe_tasks(CLUSTER, &arn, by))
        .collect();
    let answers = run_concurrently(&clock, describes, f64::INFINITY);
    assert_eq!(clock.now(), START + CALL_LATENCY, "150 calls overlap");
    let allowed = answers.iter().filter(|a| matches!(a, Some(Ok(_)))).count();
    assert_eq!(allowed, 100, "the burst of the cluster-read bucket");
    for answer in answers.iter().flatten() {
        if let Err(fault) = answer {
            assert_eq!(fault.kind, FaultKind::Throttled);
            assert!(!fault.may_have_acted);
            assert_eq!(fault.message, "ThrottlingException: Rate exceeded");
        }
    }
    let spec = LaunchSpec {
        model: taskrun::model::ResourceModel {
            launch_type: Some("FARGATE".into()),
            ..Default::default()
        },
        cluster: CLUSTER.into(),
        task_definition: FAMILY.into(),
        started_by: "scale".into(),
        tags: Vec::new(),
    };
    let tokens: Vec<String> = (0..30).map(|i| format!("token-{i}")).collect();
    let runs: Vec<_> = tokens
        .iter()
        .map(|t| backend.ecs.run_task(&spec, 1, t, by))
        .collect();
    let answers = run_concurrently(&clock, runs, f64::INFINITY);
    let started = answers.iter().filter(|a| matches!(a, Some(Ok(_)))).count();
    assert_eq!(started, 20, "the Fargate bucket's burst");
    let names: Vec<String> = (0..10).map(|i| format!("/p/{i}")).collect();
    let puts: Vec<_> = names
        .iter()
        .map(|name| backend.store.put(name, "v", by))
        .collect();
    let answers = run_concurrently(&clock, puts, f64::INFINITY);
    let written = answers.iter().filter(|a| matches!(a, Some(Ok(())))).count();
    assert_eq!(written, 3, "PutParameter's burst");
    let counts = backend.ecs.lock().throttle.counts();
    let read = counts.iter().find(|(n, _)| *n == "ecs-cluster-read");
    assert_eq!(read.map(|(_, c)| (c.allowed, c.throttled)), Some((100, 50)));
}
