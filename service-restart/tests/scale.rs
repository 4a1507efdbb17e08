//! Issue 16: many ServiceRestarts at once, against ONE ECS and ONE SSM that throttle as AWS
//! does.
//!
//! K ServiceRestarts (distinct logical ids in one stack, each restarting its own service of
//! one cluster; deployments that reach steady state 20 s after UpdateService; default
//! WaitFor STEADY_STATE, PollInterval 15, Timeout 1800) are created within one second, each
//! played to its end as CloudFormation plays it (callbacks after `callbackDelaySeconds`
//! plus CloudFormation's own latency, see `test_support::scale`), then
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

use std::sync::Arc;
use std::time::Instant;

use handler_kit::clock::throttle::{self, Throttling};
use handler_kit::clock::{Clock, VirtualClock};
use serde_json::{json, Value};
use service_restart::record::PARAMETER_PATH;
use service_restart::resource::ServiceRestart;
use service_restart::sim::{DeploymentScript, SimBackend};
use test_support::cfn::{Call, Template};
use test_support::scale::{
    bucket_service_times, lag_floor, puts_on, seconds, share, Operation, Report, RunFigures,
    Scenario, Stage, Twins, CALL_LATENCY, START,
};

const CLUSTER: &str = "c";
const STACK: &str = "arn:aws:cloudformation:us-east-1:123456789012:stack/scale/1";
/// How long every deployment takes to reach steady state.
const DEPLOYMENT_SECONDS: f64 = 20.0;

struct World {
    backend: SimBackend,
    resource: ServiceRestart<SimBackend>,
    stage: Stage,
}

impl World {
    fn violation(&self, message: String) {
        self.stage.violation(message);
    }

    /// One operation to its end, as CloudFormation plays it; its last answer.
    async fn operate(
        &self,
        rng: &mut test_support::scale::Rng,
        figures: &mut RunFigures,
        action: &str,
        token: &str,
        logical: &str,
        properties: Value,
    ) -> Option<Value> {
        let template = Template {
            head: json!({"region": "us-east-1", "awsAccountId": "123456789012", "stackId": STACK,
                "resourceType": "Org::ECS::ServiceRestart"}),
            request_data: json!({"callerCredentials": {"accessKeyId": "AKIAEXAMPLE", "secretAccessKey": "s"},
                "logicalResourceId": logical}),
            strings: false,
        };
        let envelope = |properties: &Value, context: Option<&Value>| {
            template.envelope(&Call {
                action,
                token,
                properties: Some(properties),
                context,
                ..Call::default()
            })
        };
        let untraced = || -> Box<dyn FnOnce() -> String> { Box::new(String::new) };
        let traced = std::env::var_os("SERVICERESTART_SCALE_TRACE").is_some();
        let operation = Operation {
            action,
            logical,
            envelope: &envelope,
            trace: traced.then_some(&untraced as _),
        };
        self.stage
            .operate(&self.resource, rng, figures, &operation, properties)
            .await
    }

    /// The deployments UpdateService started on `service`: (id, steady at).
    fn deployments_of(&self, service: &str) -> Vec<(String, Option<f64>)> {
        let state = self.backend.gateway.lock();
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
        let mut rng = self.stage.rng(index);
        let clock = &*self.stage.clock;
        let mut figures = RunFigures::default();
        self.stage.arrive(&mut rng, &mut figures).await;
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
        figures.done_at = deployments.first().and_then(|(_, at)| *at);
        figures.puts_in_create = puts_on(&self.backend.store, &format!("{PARAMETER_PATH}/{id}"));
        let mut model = properties;
        if let Some(answer) = &created {
            let why = "every deployment is steady within its Timeout";
            let succeeded = |answer: &Value, figures: &mut RunFigures| {
                let returned = &answer["resourceModel"];
                if returned["Status"] != "SUCCEEDED" {
                    return None;
                }
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
                Some(returned.clone())
            };
            if let Some(returned) =
                self.stage
                    .created(&logical, answer, why, &mut figures, succeeded)
            {
                model = returned;
            }
        }
        model["Id"] = json!(id);
        self.stage.latency(&mut rng).await;
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
            self.stage
                .deleted(&logical, created.as_ref(), answer, &mut figures);
        }
        figures
    }
}

fn play(scenario: &Scenario) -> Report {
    let began = Instant::now();
    let clock = Arc::new(VirtualClock::scheduled(START));
    let backend = SimBackend::on(clock.clone());
    for i in 0..scenario.k {
        backend
            .gateway
            .clone()
            .with_service(CLUSTER, &format!("svc-{i}"));
    }
    backend.gateway.lock().scripts = vec![
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
        resource: ServiceRestart::new(backend.clone()),
        stage: Stage::new(clock, scenario.seed),
    };
    let lives: Vec<_> = (0..scenario.k).map(|i| world.life(i)).collect();
    let runs = world.stage.play(lives, "Restart");
    let state = backend.gateway.lock();
    Report::new(
        scenario,
        runs,
        world.stage,
        Twins {
            ecs_log: &state.plan.call_log,
            ecs_throttle: &state.plan.throttle,
            store: &backend.store,
        },
        began,
    )
}

/// The floor the buckets set, whatever the handler: the best lag if every restart sent
/// UpdateService as soon as it arrived (through the service-modify bucket, 50 at once then
/// 3.75 a second), its deployment was steady 20 s later, and it then made one
/// DescribeServices; the best lag given when the deployments really were steady here (one
/// DescribeServices, then the end record write); and the least time to all done at 2
/// PutParameter per CREATE.
fn floor_line(report: &Report) -> String {
    let background = report.scenario.background;
    let k = report.scenario.k as f64;
    let read = share(throttle::ECS_SERVICE_READ, background);
    let modify = share(throttle::ECS_SERVICE_MODIFY, background);
    let put = share(throttle::SSM_PUT_PARAMETER, background);
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
    let actual: Vec<f64> = report.runs.iter().filter_map(|r| r.done_at).collect();
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
    let k = report.scenario.k as f64;
    let calls = |op: &str| report.ecs_calls.get(op).copied().unwrap_or(0) as f64 / k;
    let per_run = format!(
        "DescribeServices {:.1}, DescribeServiceDeployments {:.1}, UpdateService {:.2}",
        calls("ecs:DescribeServices"),
        calls("ecs:DescribeServiceDeployments"),
        calls("ecs:UpdateService"),
    );
    report.lines(&per_run, 100, floor_line(report))
}

#[test]
fn many_service_restarts_at_once_under_aws_throttling() {
    let heading = |background: f64, sdk_retries: bool| {
        format!(
            "ServiceRestart at scale: one service each in one cluster, deployments steady {DEPLOYMENT_SECONDS} s after UpdateService, WaitFor STEADY_STATE, PollInterval 15, Timeout 1800; ECS and SSM token buckets at AWS's rates, background {:.0} % of every refill, SDK retries {}; CloudFormation calls back ~1 s (0.5-2 s) after callbackDelaySeconds",
            background * 100.0,
            if sdk_retries {
                "on (3 attempts, UpdateService 1)"
            } else {
                "off"
            }
        )
    };
    test_support::scale::run(
        "SERVICERESTART_SCALE",
        &[1, 50, 100, 200],
        heading,
        play,
        lines,
    );
}
