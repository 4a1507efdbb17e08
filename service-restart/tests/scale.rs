//! Issue 16: many ServiceRestarts at once, against ONE ECS and ONE SSM that throttle as AWS
//! does.
//!
//! K ServiceRestarts (distinct logical ids in one stack, each restarting its own service of
//! one cluster; deployments that reach steady state 20 s after UpdateService; default
//! WaitFor STEADY_STATE, PollInterval 15, Timeout 1800) are created within one second, each
//! played to its end as CloudFormation plays it (callbacks after `callbackDelaySeconds`
//! plus CloudFormation's own latency, see `scale_support::cloudformation_latency`), then
//! deleted. The handler is the real one, over the in-memory twins
//! (`service_restart::sim`) on one scheduled virtual clock: every invocation is a future,
//! and `clock::run_concurrently` interleaves them, moving the clock only when none can go
//! on (each twin call takes 50 ms of virtual time). ECS and SSM throttle with the account's
//! token buckets at AWS's rates (`handler_kit::clock::throttle`: DescribeServices and
//! DescribeServiceDeployments on the service-read bucket, UpdateService on service-modify,
//! 50 / 5 per second), a background consumer taking 25 % of every bucket's refill, and the
//! SDK gateways' retries of a throttled call (UpdateService is never retried).
//!
//! Fails only on what must hold at every K (correctness):
//! - an operation starts at most one deployment, and only of its own service;
//! - every SUCCESS is a true one by the twin's ground truth (the deployment it names is the
//!   one the restart started, and it reached steady state);
//! - no invocation takes more than 60 s (virtual);
//! - no operation FAILED or left unfinished: every deployment here reaches steady state well
//!   within the Timeout, so any failure is throttling's alone.
//!
//! Prints one line per K, as `tests/scale.rs` of TaskRun does: completed, failed (by code),
//! throttled attempts by bucket, detection lag (deployment steady → SUCCESS answered)
//! p50/p99, the longest invocation, calls per run, virtual time to all done, wall time;
//! the goals (lag p50 ≤ 3 s and p99 ≤ 30 s, ≤ 2 s at K = 1; PutParameter ≤ 2 per
//! CREATE) as met / NOT met, without failing the test; and the floor the buckets set.
//!
//! `SERVICERESTART_SCALE_K` (default `1,50,100,200`), `SERVICERESTART_SCALE_RANDOM_K`
//! (default `50`: with 20 % of all calls throttled at random), and
//! `SERVICERESTART_SCALE_BACKGROUND`, `_RANDOM`, `_SDK_RETRIES`, `_SEED`, `_TRACE` as for
//! TaskRun.

#[path = "../../tests/scale_support/mod.rs"]
mod scale_support;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};

use handler_kit::clock::throttle::{self, Counted, Throttling};
use handler_kit::clock::{run_concurrently, Clock, VirtualClock};
use scale_support::{
    bucket_figures, bucket_service_times, cloudformation_latency, env_list, env_number,
    failure_figures, lag_floor, on_cores, percentile, seconds, verdict, Rng, CALL_LATENCY,
    INVOCATION_LIMIT,
};
use serde_json::{json, Value};
use service_restart::record::PARAMETER_PATH;
use service_restart::resource::ServiceRestart;
use service_restart::sim::{DeploymentScript, SimBackend};

const START: f64 = 1_700_000_000.0;
const CLUSTER: &str = "c";
const STACK: &str = "arn:aws:cloudformation:us-east-1:123456789012:stack/scale/1";
/// How long every deployment takes to reach steady state.
const DEPLOYMENT_SECONDS: f64 = 20.0;
const MOST_INVOCATIONS: usize = 2000;
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

#[derive(Debug, Default)]
struct RunFigures {
    create: Option<(String, Option<String>)>,
    delete: Option<(String, Option<String>)>,
    /// Deployment steady → SUCCESS answered.
    lag: Option<f64>,
    longest_invocation: f64,
    invocations: u32,
    puts_in_create: Counted,
    arrived_at: f64,
    /// When the deployment it started reached steady state (ground truth).
    steady_at: Option<f64>,
}

struct World {
    backend: SimBackend,
    resource: ServiceRestart<SimBackend>,
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
        logical: &str,
        properties: &Value,
        context: Option<&Value>,
    ) -> Value {
        let mut event = json!({"action": action, "bearerToken": token, "region": "us-east-1",
            "awsAccountId": "123456789012", "stackId": STACK,
            "resourceType": "Org::ECS::ServiceRestart",
            "requestData": {"callerCredentials": {"accessKeyId": "AKIAEXAMPLE", "secretAccessKey": "s"},
                "logicalResourceId": logical, "resourceProperties": properties}});
        if let Some(context) = context {
            event["callbackContext"] = context.clone();
        }
        event
    }

    /// One operation to its end, as CloudFormation plays it; its last answer.
    async fn operate(
        &self,
        rng: &mut Rng,
        figures: &mut RunFigures,
        action: &str,
        token: &str,
        logical: &str,
        mut properties: Value,
    ) -> Option<Value> {
        let clock = self.clock();
        let mut context: Option<Value> = None;
        for _ in 0..MOST_INVOCATIONS {
            let event = self.envelope(action, token, logical, &properties, context.as_ref());
            let bytes = event.to_string();
            let began = clock.now();
            let deadline = UNIX_EPOCH + Duration::from_secs_f64(began + INVOCATION_LIMIT);
            let answer =
                cfn_protocol::dispatch(&self.resource, bytes.as_bytes(), Some(deadline)).await;
            let took = clock.now() - began;
            if std::env::var_os("SERVICERESTART_SCALE_TRACE").is_some() {
                eprintln!(
                    "t={:.2} {logical} {action} {} -> {} after {took:.2} s: delay {} {}",
                    began - START,
                    if context.is_some() {
                        "callback"
                    } else {
                        "first"
                    },
                    answer["status"].as_str().unwrap_or_default(),
                    answer["callbackDelaySeconds"],
                    answer["message"].as_str().unwrap_or_default()
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
                properties = answer["resourceModel"].clone();
            }
        }
        self.violation(format!(
            "{logical} {action}: no end after {MOST_INVOCATIONS} invocations"
        ));
        None
    }

    /// The deployments UpdateService started on `service`: (id, steady at).
    fn deployments_of(&self, service: &str) -> Vec<(String, Option<f64>)> {
        let state = self.backend.services.lock();
        state
            .services
            .get(&(CLUSTER.to_string(), service.to_string()))
            .map(|s| {
                s.deployments
                    .iter()
                    .filter(|d| d.by_update)
                    .map(|d| (d.id.clone(), d.steady_at()))
                    .collect()
            })
            .unwrap_or_default()
    }

    async fn life(&self, index: usize) -> RunFigures {
        let mut rng = Rng::new(self.seed.wrapping_mul(1_000_003).wrapping_add(index as u64));
        let clock = self.clock();
        let mut figures = RunFigures::default();
        clock.sleep(rng.uniform(0.0, 1.0)).await;
        figures.arrived_at = clock.now();
        let logical = format!("Restart{index}");
        let service = format!("svc-{index}");
        let token = format!("create-{index}");
        let id = handler_kit::ids::resource_id(
            "ServiceRestart",
            Some(STACK),
            Some(&logical),
            Some(&token),
        );
        let properties = json!({"Service": service, "Cluster": CLUSTER});
        let created = self
            .operate(
                &mut rng,
                &mut figures,
                "CREATE",
                &token,
                &logical,
                properties.clone(),
            )
            .await;
        let deployments = self.deployments_of(&service);
        if deployments.len() > 1 {
            self.violation(format!(
                "{logical}: CREATE started {} deployments",
                deployments.len()
            ));
        }
        figures.steady_at = deployments.first().and_then(|(_, at)| *at);
        figures.puts_in_create = self
            .backend
            .store
            .calls_by_name
            .lock()
            .ok()
            .and_then(|c| {
                c.get(&format!("{PARAMETER_PATH}/{id}"))
                    .and_then(|ops| ops.get("ssm:PutParameter").copied())
            })
            .unwrap_or_default();
        let mut model = properties;
        if let Some(answer) = &created {
            let status = answer["status"].as_str().unwrap_or_default().to_string();
            let code = answer["errorCode"].as_str().map(str::to_string);
            let returned = &answer["resourceModel"];
            if status == "SUCCESS" && returned["Status"] == "SUCCEEDED" {
                let named = returned["DeploymentId"].as_str().unwrap_or_default();
                let ours = deployments.iter().find(|(d, _)| d == named);
                match ours {
                    Some((_, Some(at))) if *at <= clock.now() => {
                        figures.lag = Some(clock.now() - at);
                    }
                    _ => self.violation(format!(
                        "{logical}: wrong SUCCESS: {named} is not a deployment of {service} that reached steady state (started: {deployments:?}, now {})",
                        clock.now()
                    )),
                }
                model = returned.clone();
            } else {
                self.violation(format!(
                    "{logical}: CREATE {status} {} (throttling alone: every deployment is steady within its Timeout): {}",
                    code.as_deref().unwrap_or("-"),
                    answer["message"].as_str().unwrap_or_default()
                ));
            }
            figures.create = Some((status, code));
        }
        model["Id"] = json!(id);
        clock.sleep(cloudformation_latency(&mut rng)).await;
        let deleted = self
            .operate(
                &mut rng,
                &mut figures,
                "DELETE",
                &format!("delete-{index}"),
                &logical,
                model,
            )
            .await;
        if self.deployments_of(&service).len() != deployments.len() {
            self.violation(format!("{logical}: DELETE started a deployment"));
        }
        if let Some(answer) = &deleted {
            let status = answer["status"].as_str().unwrap_or_default().to_string();
            let code = answer["errorCode"].as_str().map(str::to_string);
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

struct Report {
    scenario: Scenario,
    runs: Vec<RunFigures>,
    violations: Vec<String>,
    ecs_calls: BTreeMap<&'static str, u64>,
    store_calls: BTreeMap<&'static str, u64>,
    counts: Vec<(&'static str, Counted)>,
    surfaced: u64,
    sdk_retries: u64,
    virtual_seconds: f64,
    wall: Duration,
}

fn play(scenario: &Scenario) -> Report {
    let began = Instant::now();
    let clock = Arc::new(VirtualClock::scheduled(START));
    let backend = SimBackend::on(clock.clone());
    for i in 0..scenario.k {
        backend
            .services
            .clone()
            .with_service(CLUSTER, &format!("svc-{i}"));
    }
    backend.services.lock().scripts = vec![
        DeploymentScript {
            ends_after: Some(DEPLOYMENT_SECONDS),
            ..DeploymentScript::default()
        };
        2 * scenario.k
    ];
    backend.throttle_with(Throttling {
        buckets: true,
        background: scenario.background,
        random: scenario.random,
        seed: scenario.seed,
        sdk_retries: scenario.sdk_retries,
    });
    let world = World {
        backend: backend.clone(),
        resource: ServiceRestart {
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
                    "Restart{index}: its operations had not ended after {HORIZON_SECONDS} s"
                ));
                runs.push(RunFigures::default());
            }
        }
    }
    let mut ecs_calls = BTreeMap::new();
    let (counts, surfaced, sdk_retries) = {
        let state = backend.services.lock();
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

/// The floor the buckets set, whatever the handler: the best lag if every restart sent
/// UpdateService as soon as it arrived (through the service-modify bucket, 50 at once then
/// 3.75 a second), its deployment was steady 20 s later, and it then made one
/// DescribeServices; the best lag given when the deployments really were steady here (one
/// DescribeServices, then the end record write); and the least time to all done at 2
/// PutParameter per CREATE.
fn floor_line(report: &Report) -> String {
    let share = 1.0 - report.scenario.background;
    let k = report.scenario.k as f64;
    let read = (
        throttle::ECS_SERVICE_READ.burst,
        throttle::ECS_SERVICE_READ.refill * share,
    );
    let modify = (
        throttle::ECS_SERVICE_MODIFY.burst,
        throttle::ECS_SERVICE_MODIFY.refill * share,
    );
    let put = (
        throttle::SSM_PUT_PARAMETER.burst,
        throttle::SSM_PUT_PARAMETER.refill * share,
    );
    let mut arrivals: Vec<f64> = report
        .runs
        .iter()
        .map(|r| r.arrived_at + 3.0 * CALL_LATENCY)
        .collect();
    arrivals.sort_by(f64::total_cmp);
    let steady: Vec<f64> = bucket_service_times(&arrivals, modify.0, modify.1)
        .into_iter()
        .map(|t| t + CALL_LATENCY + DEPLOYMENT_SECONDS)
        .collect();
    let together = lag_floor(&steady, &[read]);
    let actual: Vec<f64> = report.runs.iter().filter_map(|r| r.steady_at).collect();
    let as_steady = lag_floor(&actual, &[read, put]);
    format!(
        "{:<16} floor: the read bucket allows {:.3} DescribeServices per run per second; UpdateService for all by {:.1} s; best lag with one look per run after steady state: p50 {} p99 {} with every UpdateService sent on arrival, p50 {} p99 {} as they were steady here (look, then the end record write); all done >= {:.0} s at 2 PutParameter per CREATE",
        "",
        read.1 / k,
        steady.last().map_or(0.0, |t| t - DEPLOYMENT_SECONDS - START),
        seconds(together.0),
        seconds(together.1),
        seconds(as_steady.0),
        seconds(as_steady.1),
        (2.0 * k - put.0).max(0.0) / put.1 + DEPLOYMENT_SECONDS,
    )
}

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
    let calls = |op: &str| report.ecs_calls.get(op).copied().unwrap_or(0) as f64 / k;
    let creates: Vec<&RunFigures> = report.runs.iter().filter(|r| r.create.is_some()).collect();
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
    let gets = report
        .store_calls
        .get("ssm:GetParameter")
        .copied()
        .unwrap_or(0) as f64
        / k;
    let invocations: u32 = report.runs.iter().map(|r| r.invocations).sum();
    let main = format!(
        "{:<16} completed {}/{} | failed {} | throttled (attempts) {}; reached the handler {}, SDK retries {} | lag p50 {} p99 {} | longest invocation {:.1} s | per run: {:.1} invocations, DescribeServices {:.1}, DescribeServiceDeployments {:.1}, UpdateService {:.2}, PutParameter/CREATE {:.2} (max {}; {:.2} written, max {}), GetParameter {:.1} | virtual {:.0} s | wall {:.1} s",
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
        calls("ecs:DescribeServices"),
        calls("ecs:DescribeServiceDeployments"),
        calls("ecs:UpdateService"),
        puts_mean,
        puts_max,
        written_mean,
        written_max,
        gets,
        report.virtual_seconds,
        report.wall.as_secs_f64(),
    );
    let mut goals = Vec::new();
    if s.k == 1 {
        goals.push(format!(
            "lag <= 2 s: {}",
            verdict(p99.is_some_and(|v| v <= 2.0))
        ));
    } else if s.k <= 100 {
        goals.push(format!(
            "lag p50 <= 3 s: {}",
            verdict(p50.is_some_and(|v| v <= 3.0))
        ));
        goals.push(format!(
            "lag p99 <= 30 s: {}",
            verdict(p99.is_some_and(|v| v <= 30.0))
        ));
    } else {
        goals.push("lag: no goal beyond K = 100".into());
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
        floor_line(report),
    ]
}

#[test]
fn many_service_restarts_at_once_under_aws_throttling() {
    let background = env_number("SERVICERESTART_SCALE_BACKGROUND", 0.25);
    let random = env_number("SERVICERESTART_SCALE_RANDOM", 0.2);
    let sdk_retries = env_number("SERVICERESTART_SCALE_SDK_RETRIES", 1.0) != 0.0;
    let seed = env_number("SERVICERESTART_SCALE_SEED", 16.0) as u64;
    let mut scenarios: Vec<Scenario> = env_list("SERVICERESTART_SCALE_K", &[1, 50, 100, 200])
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
        env_list("SERVICERESTART_SCALE_RANDOM_K", &[50])
            .into_iter()
            .map(|k| Scenario {
                k,
                background,
                random,
                sdk_retries,
                seed,
            }),
    );
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
        "ServiceRestart at scale: one service each in one cluster, deployments steady {DEPLOYMENT_SECONDS} s after UpdateService, WaitFor STEADY_STATE, PollInterval 15, Timeout 1800; ECS and SSM token buckets at AWS's rates, background {:.0} % of every refill, SDK retries {}; CloudFormation calls back ~1 s (0.5-2 s) after callbackDelaySeconds",
        background * 100.0,
        if sdk_retries {
            "on (3 attempts, UpdateService 1)"
        } else {
            "off"
        }
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
