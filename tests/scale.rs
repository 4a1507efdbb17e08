//! Issue 16: many TaskRuns at once, against ONE ECS and ONE SSM that throttle as AWS does.
//!
//! K TaskRuns (distinct logical ids, in stacks of 100; Count 1, Fargate; tasks that run
//! 20 s; default PollInterval 15 and Timeout 3600) are created within one second, each
//! played to its end as CloudFormation plays it (the first invocation, then callbacks after
//! `callbackDelaySeconds` plus CloudFormation's own latency, see
//! `test_support::scale::cloudformation_latency`), then deleted the same way. The handler is the
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

use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Value};
use taskrun::clock::throttle::{self, Throttling};
use taskrun::clock::{run_concurrently, Clock, VirtualClock};
use taskrun::ids;
use taskrun::outcome::NORMAL_STOP_CODE;
use taskrun::resource::TaskRun;
use taskrun::sim::SimBackend;
use taskrun::store::parameter_name;
use test_support::cfn::{Call, Template};
use test_support::scale::{
    lag_floor, puts_on, seconds, share, Operation, Report, Rng, RunFigures, Scenario, Stage, Twins,
    CALL_LATENCY, START,
};

const CLUSTER: &str = "c";
const FAMILY: &str = "migrate";
/// How long every task runs.
const TASK_SECONDS: f64 = 20.0;
/// TaskRuns per stack.
const STACK_SIZE: usize = 100;

/// Everything one operation needs, shared by the K lives of a scenario (one thread).
struct World {
    backend: SimBackend,
    resource: TaskRun<SimBackend>,
    stage: Stage,
}

impl World {
    fn clock(&self) -> &VirtualClock {
        &self.stage.clock
    }

    fn violation(&self, message: String) {
        self.stage.violation(message);
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
        properties: Value,
    ) -> Option<Value> {
        let mut template = Template::in_memory("Org::ECS::TaskRun", stack, logical);
        template.request_data["stackTags"] = json!({"team": "platform"});
        let envelope = |properties: &Value, context: Option<&Value>| {
            template.envelope(&Call {
                action,
                token,
                properties: Some(properties),
                context,
                ..Call::default()
            })
        };
        let traced = std::env::var("TASKRUN_SCALE_TRACE")
            .is_ok_and(|t| t == "1" || t == "all" || t == logical);
        let record = parameter_name(
            &properties["Id"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| {
                    ids::resource_id("TaskRun", Some(stack), Some(logical), Some(token))
                }),
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
        // The calls every run made meanwhile (read them with K = 1), and this run's calls
        // on its record (answered/throttled).
        let trace = || -> Box<dyn FnOnce() -> String + '_> {
            let logged = (
                self.backend.gateway.lock().plan.call_log.len(),
                self.backend.store.call_log.lock().map_or(0, |l| l.len()),
                record_calls(),
            );
            Box::new(move || {
                let ecs = self.backend.gateway.lock().plan.call_log[logged.0..].join(" ");
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
                format!(
                    " | record: {} | all ECS: [{ecs}] | all SSM: [{store}]",
                    mine.join(", ")
                )
            })
        };
        let operation = Operation {
            action,
            logical,
            envelope: &envelope,
            trace: traced.then_some(&trace as _),
        };
        self.stage
            .operate(&self.resource, rng, figures, &operation, properties)
            .await
    }

    /// A SUCCEEDED model: it names the run's one task, which really ended well.
    fn check_succeeded(&self, logical: &str, id: &str, model: &Value) {
        let now = self.clock().now();
        let state = self.backend.gateway.lock();
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
        let state = self.backend.gateway.lock();
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
        let mut rng = self.stage.rng(index);
        let clock = self.clock();
        let mut figures = RunFigures::default();
        // Created within one second.
        self.stage.arrive(&mut rng, &mut figures).await;
        let stack = format!(
            "arn:aws:cloudformation:us-east-1:123456789012:stack/scale-{}/1",
            index / STACK_SIZE
        );
        let logical = format!("Migrate{index}");
        let token = format!("create-{index}");
        let id = ids::resource_id("TaskRun", Some(&stack), Some(&logical), Some(&token));
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
        figures.done_at = stopped_at;
        if started > 1 {
            self.violation(format!("{logical}: {started} tasks started for Count 1"));
        }
        figures.puts_in_create = puts_on(&self.backend.store, &parameter_name(&id));
        let mut model = properties;
        if let Some(answer) = &created {
            let why = "every task succeeds within its Timeout";
            let succeeded = |answer: &Value, figures: &mut RunFigures| {
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
        // CloudFormation deletes it (a stack delete, or the rollback of a failed CREATE).
        self.stage.latency(&mut rng).await;
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
            let (_, _, running) = self.tasks_of(&id);
            if answer["status"] == "SUCCESS" && running > 0 {
                self.violation(format!(
                    "{logical}: {running} task(s) still running after DELETE answered SUCCESS"
                ));
            }
            // A DELETE of a TaskRun that never came to be may answer NotFound: CloudFormation
            // takes that as deleted.
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
    backend.gateway.clone().with_world(CLUSTER, FAMILY);
    backend.gateway.lock().default_script.runs_for = TASK_SECONDS;
    backend.throttle_with(Throttling {
        buckets: true,
        background: scenario.background,
        random: scenario.random,
        seed: scenario.seed,
        sdk_retries: scenario.sdk_retries,
    });
    let world = World {
        backend: backend.clone(),
        resource: TaskRun::new(backend.clone()),
        stage: Stage::new(clock, scenario.seed),
    };
    let lives: Vec<_> = (0..scenario.k).map(|i| world.life(i)).collect();
    let runs = world.stage.play(lives, "Migrate");
    let still = backend.gateway.running();
    if !still.is_empty() {
        world.violation(format!(
            "{} task(s) still running at the end, e.g. {} of {}",
            still.len(),
            still[0].arn,
            still[0].started_by
        ));
    }
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

/// The floor the buckets set, whatever the handler (see `test_support::scale::lag_floor`).
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
    let background = report.scenario.background;
    let k = report.scenario.k as f64;
    let read = share(throttle::ECS_CLUSTER_READ, background);
    let put = share(throttle::SSM_PUT_PARAMETER, background);
    // Arrival, then GetParameter, DescribeTaskDefinition, PutParameter, RunTask: the task
    // starts 0.2 s after its CREATE arrived at best.
    let together: Vec<f64> = report
        .runs
        .iter()
        .map(|r| r.arrived_at + 4.0 * CALL_LATENCY + TASK_SECONDS)
        .collect();
    let stops: Vec<f64> = report.runs.iter().filter_map(|r| r.done_at).collect();
    Floor {
        describes_per_run_second: read.1 / k,
        together: lag_floor(&together, &[read]),
        as_stopped: lag_floor(&stops, &[read, put]),
        all_done: (2.0 * k - put.0).max(0.0) / put.1 + TASK_SECONDS,
    }
}

/// The report's line, its goals, and its floor.
fn lines(report: &Report) -> Vec<String> {
    let k = report.scenario.k as f64;
    let describes = report
        .ecs_calls
        .get("ecs:DescribeTasks")
        .copied()
        .unwrap_or(0);
    let other_ecs: u64 = report.ecs_calls.values().sum::<u64>() - describes;
    let per_run = format!(
        "DescribeTasks {:.1}, other ECS {:.1}",
        describes as f64 / k,
        other_ecs as f64 / k
    );
    let f = floor(report);
    let floor = format!(
        "{:<16} floor: the read bucket allows {:.3} DescribeTasks per run per second; best lag with one look per run after its task stopped: p50 {} p99 {} if all tasks stopped 20 s after their CREATE arrived, p50 {} p99 {} as they stopped here (look, then the end record write); all done >= {:.0} s at 2 PutParameter per CREATE",
        "",
        f.describes_per_run_second,
        seconds(f.together.0),
        seconds(f.together.1),
        seconds(f.as_stopped.0),
        seconds(f.as_stopped.1),
        f.all_done,
    );
    report.lines(&per_run, 500, floor)
}

#[test]
fn many_task_runs_at_once_under_aws_throttling() {
    let heading = |background: f64, sdk_retries: bool| {
        format!(
            "TaskRun at scale: Count 1, {TASK_SECONDS} s Fargate tasks, PollInterval 15, Timeout 3600; ECS and SSM token buckets at AWS's rates, background {:.0} % of every refill, SDK retries {}; CloudFormation calls back ~1 s (0.5-2 s) after callbackDelaySeconds",
            background * 100.0,
            if sdk_retries { "on (3 attempts, StartTask 1)" } else { "off" }
        )
    };
    test_support::scale::run(
        "TASKRUN_SCALE",
        &[1, 50, 100, 250, 500],
        heading,
        play,
        lines,
    );
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
    backend.gateway.clone().with_world(CLUSTER, FAMILY);
    backend.throttle_with(Throttling::default());
    let by = START + 50.0;
    let arn = vec!["arn:aws:ecs:us-east-1:123456789012:task/c/1".to_string()];
    let describes: Vec<_> = (0..150)
        .map(|_| backend.gateway.describe_tasks(CLUSTER, &arn, by))
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
        .map(|t| backend.gateway.run_task(&spec, 1, t, by))
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
    let counts = backend.gateway.lock().plan.throttle.counts();
    let read = counts.iter().find(|(n, _)| *n == "ecs-cluster-read");
    assert_eq!(read.map(|(_, c)| (c.allowed, c.throttled)), Some((100, 50)));
}
