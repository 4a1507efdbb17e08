//! Many operations at once, against ONE ECS and ONE SSM that throttle as AWS does: K
//! lives (a CREATE to its end, then a DELETE to its end), each played as CloudFormation
//! plays it (the first invocation, then callbacks after `callbackDelaySeconds` plus
//! CloudFormation's own latency, see [`cloudformation_latency`]) through the type's real
//! dispatch over its in-memory twins on one scheduled virtual clock, interleaved by
//! `clock::run_concurrently`. What a type's `tests/scale.rs` keeps is its own: its
//! backend, its lives' properties and checks, its floor and its calls per run.
//!
//! Also: seeded draws, figures, the theoretical floors of a token bucket, and running
//! scenarios on the machine's cores.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};

use handler_kit::clock::throttle::{BucketRule, Counted, Throttle};
use handler_kit::clock::{run_concurrently, Clock, VirtualClock};
use handler_kit::store::MemoryStore;
use serde_json::Value;

/// When every scenario's clock starts.
pub const START: f64 = 1_700_000_000.0;
/// The Registry's per-invocation limit.
pub const INVOCATION_LIMIT: f64 = 60.0;
/// How long a twin's call takes (both twins answer in 50 ms).
pub const CALL_LATENCY: f64 = 0.05;
/// Invocations one operation may take before it counts as never ending.
pub const MOST_INVOCATIONS: usize = 2000;
/// Virtual time after which whatever still runs counts as never ending.
pub const HORIZON_SECONDS: f64 = 6.0 * 3600.0;

/// CloudFormation's own latency between an answer and its next invocation: it calls back
/// after `callbackDelaySeconds`, and then some. Not documented; **assumed** about a second,
/// uniform between 0.5 and 2 s (the emulator benchmark's callbacks, and CloudFormation's
/// stack events, show a second or two between a handler's answer and its next request).
pub fn cloudformation_latency(rng: &mut Rng) -> f64 {
    rng.uniform(0.5, 2.0)
}

/// Seeded draws (splitmix64), reproducible per scenario.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0xD1B5_4A32_D192_ED03)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [low, high).
    pub fn uniform(&mut self, low: f64, high: f64) -> f64 {
        let unit = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        low + unit * (high - low)
    }
}

/// The `p`-th percentile (0 to 100, nearest rank) of `values`; `None` when empty.
pub fn percentile(values: &[f64], p: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// `name`'s comma-separated list of numbers (set but without numbers: none), or `default`.
pub fn env_list(name: &str, default: &[usize]) -> Vec<usize> {
    match std::env::var(name) {
        Ok(v) => v
            .split(',')
            .filter_map(|x| x.trim().parse().ok())
            .filter(|&k| k > 0)
            .collect(),
        Err(_) => default.to_vec(),
    }
}

pub fn env_number(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// Runs `job` over `inputs` on the machine's cores (each scenario on one thread: its
/// futures never leave it), answers in input order.
pub fn on_cores<I: Sync, O: Send>(inputs: &[I], job: impl Fn(&I) -> O + Sync) -> Vec<O> {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(inputs.len().max(1));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: std::sync::Mutex<Vec<Option<O>>> =
        std::sync::Mutex::new((0..inputs.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..cores {
            scope.spawn(|| loop {
                let index = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let Some(input) = inputs.get(index) else {
                    break;
                };
                let output = job(input);
                if let Ok(mut results) = results.lock() {
                    results[index] = Some(output);
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_default()
        .into_iter()
        .flatten()
        .collect()
}

/// A token bucket as AWS's (burst, refill per second), for the floors: when each of the
/// requests arriving at `arrivals` (sorted) gets its token, served in order of arrival,
/// starting full.
pub fn bucket_service_times(arrivals: &[f64], burst: f64, refill: f64) -> Vec<f64> {
    let mut level = burst;
    let mut last = arrivals.first().copied().unwrap_or_default();
    let mut served = Vec::with_capacity(arrivals.len());
    for &arrival in arrivals {
        let mut at = arrival.max(last);
        level = (level + (at - last) * refill).min(burst);
        if level < 1.0 {
            at += (1.0 - level) / refill;
            level = 1.0;
        }
        level -= 1.0;
        last = at;
        served.push(at);
    }
    served
}

/// The least lag from each event at `events` (any order) to its answer, if each needed
/// one call through each of `stages` (buckets as (burst, refill per second), one after the
/// other, each call taking [`CALL_LATENCY`]), served in order of the events, every bucket
/// full at the first event and used by nothing else: the floor the buckets set. Returns
/// (p50, p99).
pub fn lag_floor(events: &[f64], stages: &[(f64, f64)]) -> (Option<f64>, Option<f64>) {
    let mut start: Vec<f64> = events.to_vec();
    start.sort_by(f64::total_cmp);
    let mut at = start.clone();
    for &(burst, refill) in stages {
        at = bucket_service_times(&at, burst, refill)
            .into_iter()
            .map(|t| t + CALL_LATENCY)
            .collect();
    }
    let lags: Vec<f64> = at.iter().zip(&start).map(|(a, s)| a - s).collect();
    (percentile(&lags, 50.0), percentile(&lags, 99.0))
}

/// "12/3400" figures of buckets: throttled of all attempts, the busy ones only.
pub fn bucket_figures(counts: &[(&'static str, Counted)]) -> String {
    let shown: Vec<String> = counts
        .iter()
        .filter(|(_, c)| c.throttled > 0)
        .map(|(name, c)| {
            if *name == "random" {
                format!("random {}", c.throttled)
            } else {
                format!("{name} {}/{}", c.throttled, c.allowed + c.throttled)
            }
        })
        .collect();
    if shown.is_empty() {
        "none".into()
    } else {
        shown.join(", ")
    }
}

/// "Code xN" of failures, or "0".
pub fn failure_figures(codes: &BTreeMap<String, usize>) -> String {
    let total: usize = codes.values().sum();
    if total == 0 {
        return "0".into();
    }
    let parts: Vec<String> = codes.iter().map(|(c, n)| format!("{c} x{n}")).collect();
    format!("{total} ({})", parts.join(", "))
}

pub fn seconds(value: Option<f64>) -> String {
    value.map_or("-".into(), |v| format!("{v:.1} s"))
}

/// A goal's verdict: "met" or "NOT met".
pub fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "NOT met"
    }
}

/// A bucket's (burst, refill per second) left to the handler when a background consumer
/// takes `background` of every refill.
pub fn share(rule: BucketRule, background: f64) -> (f64, f64) {
    (rule.burst, rule.refill * (1.0 - background))
}

/// One scenario: K operations at once in one world.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub k: usize,
    /// The share of every bucket's refill a background consumer takes.
    pub background: f64,
    /// The share of all calls throttled at random.
    pub random: f64,
    /// Whether the SDK gateways retry a throttled call.
    pub sdk_retries: bool,
    pub seed: u64,
}

impl Scenario {
    pub fn label(&self) -> String {
        let mut label = format!("K={}", self.k);
        if self.random > 0.0 {
            label.push_str(&format!(" +{:.0}% random", self.random * 100.0));
        }
        label
    }
}

/// One life (CREATE, then DELETE), as the test saw it.
#[derive(Debug, Default)]
pub struct RunFigures {
    /// Final status and error code of each operation.
    pub create: Option<(String, Option<String>)>,
    pub delete: Option<(String, Option<String>)>,
    /// What the CREATE waited for done (ground truth) → SUCCESS answered.
    pub lag: Option<f64>,
    pub longest_invocation: f64,
    pub invocations: u32,
    /// PutParameter calls of the CREATE on its record: answered, throttled.
    pub puts_in_create: Counted,
    /// When its CREATE arrived.
    pub arrived_at: f64,
    /// When what the CREATE waited for was done, by the twins' ground truth (its task
    /// stopped, its deployment reached steady state).
    pub done_at: Option<f64>,
}

/// A final answer's status and error code.
pub fn outcome(answer: &Value) -> (String, Option<String>) {
    (
        answer["status"].as_str().unwrap_or_default().to_string(),
        answer["errorCode"].as_str().map(str::to_string),
    )
}

/// PutParameter calls made on the parameter `name`: answered, throttled.
pub fn puts_on(store: &MemoryStore, name: &str) -> Counted {
    store
        .calls_by_name
        .lock()
        .ok()
        .and_then(|c| {
            c.get(name)
                .and_then(|ops| ops.get("ssm:PutParameter").copied())
        })
        .unwrap_or_default()
}

/// One operation as CloudFormation plays it, and how the test watches it.
pub struct Operation<'a> {
    pub action: &'a str,
    pub logical: &'a str,
    /// The request with these properties and callbackContext.
    pub envelope: &'a dyn Fn(&Value, Option<&Value>) -> Value,
    /// With a trace on: called before each invocation, and what it returns after it, for
    /// the end of the invocation's line (`""` for none).
    pub trace: Option<&'a dyn Fn() -> Box<dyn FnOnce() -> String + 'a>>,
}

/// What the K lives of a scenario share (one thread): the clock, the violations seen, the
/// seed.
pub struct Stage {
    pub clock: Arc<VirtualClock>,
    pub seed: u64,
    violations: RefCell<Vec<String>>,
}

impl Stage {
    pub fn new(clock: Arc<VirtualClock>, seed: u64) -> Self {
        Self {
            clock,
            seed,
            violations: RefCell::new(Vec::new()),
        }
    }

    pub fn violation(&self, message: String) {
        self.violations.borrow_mut().push(message);
    }

    pub fn violations(self) -> Vec<String> {
        self.violations.into_inner()
    }

    /// The draws of life `index`.
    pub fn rng(&self, index: usize) -> Rng {
        Rng::new(self.seed.wrapping_mul(1_000_003).wrapping_add(index as u64))
    }

    /// A life's CREATE arrives within the scenario's first second.
    pub async fn arrive(&self, rng: &mut Rng, figures: &mut RunFigures) {
        self.clock.sleep(rng.uniform(0.0, 1.0)).await;
        figures.arrived_at = self.clock.now();
    }

    /// CloudFormation's own latency before its next request.
    pub async fn latency(&self, rng: &mut Rng) {
        self.clock.sleep(cloudformation_latency(rng)).await;
    }

    /// One operation to its end, as CloudFormation plays it, through `resource`'s
    /// dispatch; its last answer. Every invocation within its 60 s, every answer a
    /// progress event, every IN_PROGRESS with a delay, or a violation.
    pub async fn operate<R: cfn_protocol::Resource>(
        &self,
        resource: &R,
        rng: &mut Rng,
        figures: &mut RunFigures,
        operation: &Operation<'_>,
        mut properties: Value,
    ) -> Option<Value> {
        let (action, logical) = (operation.action, operation.logical);
        let clock = &*self.clock;
        let mut context: Option<Value> = None;
        for _ in 0..MOST_INVOCATIONS {
            let event = (operation.envelope)(&properties, context.as_ref());
            let bytes = event.to_string();
            let began = clock.now();
            let traced = operation.trace.map(|mark| mark());
            let deadline = UNIX_EPOCH + Duration::from_secs_f64(began + INVOCATION_LIMIT);
            let answer = cfn_protocol::dispatch(resource, bytes.as_bytes(), Some(deadline)).await;
            let took = clock.now() - began;
            if let Some(detail) = traced {
                eprintln!(
                    "t={:.2} {logical} {action} {} -> {} after {took:.2} s: delay {} {}{}",
                    began - START,
                    if context.is_some() {
                        "callback"
                    } else {
                        "first"
                    },
                    answer["status"].as_str().unwrap_or_default(),
                    answer["callbackDelaySeconds"],
                    answer["message"].as_str().unwrap_or_default(),
                    detail()
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
            crate::cfn::called_back(action, &answer, &mut context, &mut properties);
        }
        self.violation(format!(
            "{logical} {action}: no end after {MOST_INVOCATIONS} invocations"
        ));
        None
    }

    /// The CREATE's end: a SUCCESS goes to `succeeded`, which checks it (and may set the
    /// lag) and gives the model to delete with (`None`: no success after all); any other end is a violation,
    /// as nothing but throttling could fail it (`why`: why not). The model, if any.
    pub fn created(
        &self,
        logical: &str,
        answer: &Value,
        why: &str,
        figures: &mut RunFigures,
        succeeded: impl FnOnce(&Value, &mut RunFigures) -> Option<Value>,
    ) -> Option<Value> {
        let (status, code) = outcome(answer);
        let model = if status == "SUCCESS" {
            succeeded(answer, figures)
        } else {
            None
        };
        if model.is_none() {
            self.violation(format!(
                "{logical}: CREATE {status} {} (throttling alone: {why}): {}",
                code.as_deref().unwrap_or("-"),
                answer["message"].as_str().unwrap_or_default()
            ));
        }
        figures.create = Some((status, code));
        model
    }

    /// The DELETE's end: SUCCESS, or NotFound for a resource whose CREATE never
    /// succeeded (CloudFormation takes that as deleted); a violation otherwise.
    pub fn deleted(
        &self,
        logical: &str,
        created: Option<&Value>,
        deleted: &Value,
        figures: &mut RunFigures,
    ) {
        let (status, code) = outcome(deleted);
        let not_found = code.as_deref() == Some("NotFound")
            && !created.is_some_and(|a| a["status"] == "SUCCESS");
        if status != "SUCCESS" && !not_found {
            self.violation(format!(
                "{logical}: DELETE {status} {}: {}",
                code.as_deref().unwrap_or("-"),
                deleted["message"].as_str().unwrap_or_default()
            ));
        }
        figures.delete = Some((status, code));
    }

    /// Plays the lives together to their ends (or the horizon: a violation, naming the
    /// life `{name}{index}`).
    pub fn play<F: Future<Output = RunFigures>>(
        &self,
        lives: Vec<F>,
        name: &str,
    ) -> Vec<RunFigures> {
        let ends = run_concurrently(&self.clock, lives, START + HORIZON_SECONDS);
        let mut runs = Vec::new();
        for (index, end) in ends.into_iter().enumerate() {
            match end {
                Some(figures) => runs.push(figures),
                None => {
                    self.violation(format!(
                        "{name}{index}: its operations had not ended after {HORIZON_SECONDS} s"
                    ));
                    runs.push(RunFigures::default());
                }
            }
        }
        runs
    }
}

/// What a scenario showed.
pub struct Report {
    pub scenario: Scenario,
    pub runs: Vec<RunFigures>,
    pub violations: Vec<String>,
    pub ecs_calls: BTreeMap<&'static str, u64>,
    pub store_calls: BTreeMap<&'static str, u64>,
    pub counts: Vec<(&'static str, Counted)>,
    /// Throttled answers that reached the handler (after the SDK's retries).
    pub surfaced: u64,
    pub sdk_retries: u64,
    pub virtual_seconds: f64,
    pub wall: Duration,
}

/// The twins' side of a scenario: ECS's call log and throttle, the store.
pub struct Twins<'a> {
    pub ecs_log: &'a [&'static str],
    pub ecs_throttle: &'a Throttle,
    pub store: &'a MemoryStore,
}

impl Report {
    /// The report of `scenario` that began at `began`, its lives' `runs`, the stage's
    /// violations, and what the twins counted.
    pub fn new(
        scenario: &Scenario,
        runs: Vec<RunFigures>,
        stage: Stage,
        twins: Twins,
        began: Instant,
    ) -> Self {
        let mut ecs_calls = BTreeMap::new();
        for op in twins.ecs_log {
            *ecs_calls.entry(*op).or_default() += 1;
        }
        let store = twins
            .store
            .throttle
            .lock()
            .map(|t| t.clone())
            .unwrap_or_default();
        let mut counts = twins.ecs_throttle.counts();
        counts.extend(store.counts());
        let surfaced = twins.ecs_throttle.surfaced.values().sum::<u64>()
            + store.surfaced.values().sum::<u64>();
        let mut store_calls = BTreeMap::new();
        for op in twins
            .store
            .call_log
            .lock()
            .map(|l| l.clone())
            .unwrap_or_default()
        {
            *store_calls.entry(op).or_default() += 1;
        }
        let virtual_seconds = stage.clock.now() - START;
        Report {
            scenario: scenario.clone(),
            runs,
            violations: stage.violations(),
            ecs_calls,
            store_calls,
            counts,
            surfaced,
            sdk_retries: twins.ecs_throttle.sdk_retries + store.sdk_retries,
            virtual_seconds,
            wall: began.elapsed(),
        }
    }

    /// The report's lines: the main one (`per_run`: the type's own ECS calls per run,
    /// between the invocations and PutParameter), its goals (lag goals up to K =
    /// `lag_goals_up_to`), and `floor`.
    pub fn lines(&self, per_run: &str, lag_goals_up_to: usize, floor: String) -> Vec<String> {
        let s = &self.scenario;
        let k = s.k as f64;
        let completed = self
            .runs
            .iter()
            .filter(|r| {
                matches!(&r.create, Some((st, _)) if st == "SUCCESS")
                    && matches!(&r.delete, Some((st, _)) if st == "SUCCESS")
            })
            .count();
        let mut failures: BTreeMap<String, usize> = BTreeMap::new();
        for run in &self.runs {
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
        let lags: Vec<f64> = self.runs.iter().filter_map(|r| r.lag).collect();
        let (p50, p99) = (percentile(&lags, 50.0), percentile(&lags, 99.0));
        let longest = self
            .runs
            .iter()
            .map(|r| r.longest_invocation)
            .fold(0.0, f64::max);
        // PutParameter calls a CREATE made on its record (each one up to 3 SDK attempts),
        // and those that wrote.
        let creates: Vec<&RunFigures> = self.runs.iter().filter(|r| r.create.is_some()).collect();
        let per_create = |n: u64| n as f64 / creates.len().max(1) as f64;
        let puts = |r: &&RunFigures| r.puts_in_create.allowed + r.puts_in_create.throttled;
        let puts_mean = per_create(creates.iter().map(puts).sum());
        let written_mean = per_create(creates.iter().map(|r| r.puts_in_create.allowed).sum());
        let puts_max = creates.iter().map(puts).max().unwrap_or(0);
        let written_max = creates
            .iter()
            .map(|r| r.puts_in_create.allowed)
            .max()
            .unwrap_or(0);
        let gets = self
            .store_calls
            .get("ssm:GetParameter")
            .copied()
            .unwrap_or(0) as f64
            / k;
        let invocations: u32 = self.runs.iter().map(|r| r.invocations).sum();
        let main = format!(
            "{:<16} completed {}/{} | failed {} | throttled (attempts) {}; reached the handler {}, SDK retries {} | lag p50 {} p99 {} | longest invocation {:.1} s | per run: {:.1} invocations, {per_run}, PutParameter/CREATE {:.2} (max {}; {:.2} written, max {}), GetParameter {:.1} | virtual {:.0} s | wall {:.1} s",
            s.label(),
            completed,
            s.k,
            failure_figures(&failures),
            bucket_figures(&self.counts),
            self.surfaced,
            self.sdk_retries,
            seconds(p50),
            seconds(p99),
            longest,
            f64::from(invocations) / k,
            puts_mean,
            puts_max,
            written_mean,
            written_max,
            gets,
            self.virtual_seconds,
            self.wall.as_secs_f64(),
        );
        let mut goals = Vec::new();
        if s.k == 1 {
            goals.push(format!(
                "lag <= 2 s: {}",
                verdict(p99.is_some_and(|v| v <= 2.0))
            ));
        } else if s.k <= lag_goals_up_to {
            goals.push(format!(
                "lag p50 <= 3 s: {}",
                verdict(p50.is_some_and(|v| v <= 3.0))
            ));
            goals.push(format!(
                "lag p99 <= 30 s: {}",
                verdict(p99.is_some_and(|v| v <= 30.0))
            ));
        } else {
            goals.push(format!("lag: no goal beyond K = {lag_goals_up_to}"));
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
        vec![
            main,
            format!("{:<16} goals: {}", "", goals.join("; ")),
            floor,
        ]
    }
}

/// A scale test's run: the scenarios `{prefix}_K` (default `ks`) and, with `{prefix}_RANDOM`
/// (0.2) of all calls throttled at random, `{prefix}_RANDOM_K` (default 50), in the world
/// `{prefix}_BACKGROUND` (0.25), `{prefix}_SDK_RETRIES` (1), `{prefix}_SEED` (16) sets;
/// played by `play` on the machine's cores, the largest first; then `heading` (given the
/// background and whether the SDK retries), each report's `lines`, the wall time. Fails
/// with the first 30 violations, if any.
pub fn run(
    prefix: &str,
    ks: &[usize],
    heading: impl Fn(f64, bool) -> String,
    play: impl Fn(&Scenario) -> Report + Sync,
    lines: impl Fn(&Report) -> Vec<String>,
) {
    let background = env_number(&format!("{prefix}_BACKGROUND"), 0.25);
    let random = env_number(&format!("{prefix}_RANDOM"), 0.2);
    let sdk_retries = env_number(&format!("{prefix}_SDK_RETRIES"), 1.0) != 0.0;
    let seed = env_number(&format!("{prefix}_SEED"), 16.0) as u64;
    let mut scenarios: Vec<Scenario> = env_list(&format!("{prefix}_K"), ks)
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
        env_list(&format!("{prefix}_RANDOM_K"), &[50])
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
    println!("{}", heading(background, sdk_retries));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_by_nearest_rank() {
        let values = [3.0, 1.0, 2.0, 4.0];
        assert_eq!(percentile(&values, 50.0), Some(2.0));
        assert_eq!(percentile(&values, 99.0), Some(4.0));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn a_bucket_lets_its_burst_through_then_refills() {
        let served = bucket_service_times(&[0.0, 0.0, 0.0], 2.0, 1.0);
        assert_eq!(served, vec![0.0, 0.0, 1.0]);
    }

    #[test]
    fn labels_and_figures_read_as_the_reports_print_them() {
        let scenario = Scenario {
            k: 50,
            background: 0.25,
            random: 0.2,
            sdk_retries: true,
            seed: 16,
        };
        assert_eq!(scenario.label(), "K=50 +20% random");
        assert_eq!(failure_figures(&BTreeMap::new()), "0");
        let codes = BTreeMap::from([("CREATE Throttling".to_string(), 2)]);
        assert_eq!(failure_figures(&codes), "2 (CREATE Throttling x2)");
        assert_eq!(seconds(Some(1.25)), "1.2 s");
        assert_eq!(
            share(handler_kit::clock::throttle::SSM_PUT_PARAMETER, 0.25).0,
            3.0
        );
    }
}
