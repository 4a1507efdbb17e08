//! What must ALWAYS hold, checked by machine over scenarios nobody listed.
//!
//! Each scenario plays a TaskRun's life as CloudFormation would: a CREATE, updates
//! (rollbacks among them) and deletes, each operation re-invoked with the callback
//! context and the model the handler returned, after the delay it asked for. The handler
//! is the real one (`cfn_protocol::dispatch` over `TaskRun`), over the in-memory ECS and
//! store on a virtual clock (`taskrun::sim`). Scenarios are random: Count 0-100, RunTask
//! or StartTask, every stop code and exit code per container, tasks ECS shows late or
//! forgets, faults before or after ECS acted on any call, slow calls, the process dying
//! right after any call (then the same invocation delivered again), answers lost (the
//! same invocation delivered twice), operations abandoned mid-way (a CloudFormation
//! timeout) and the next one arriving at any point.
//!
//! After every invocation and every scenario:
//! - every answer is a valid progress event; CREATE/UPDATE IN_PROGRESS and SUCCESS events
//!   carry the model with its Id; no InternalFailure (no panic);
//! - no invocation takes longer than its budget (60 s, by the virtual clock);
//! - no SUCCESS with a SUCCEEDED run unless every task of it ended with an
//!   essential-container exit and its deciding container exited 0 (by the simulation's
//!   ground truth), and a run started by the operation started exactly Count tasks;
//! - never more tasks started for a run than it asked for;
//! - no task running that no record follows (after every finished operation);
//! - a record exists exactly when the resource does;
//! - an UPDATE starts no task when RunOnUpdate is false, when it is a rollback without
//!   RunOnRollback, or when nothing that counts changed since the last run that succeeded
//!   (Triggers, and the shaping properties or the UpdateCriteria values); one that answers
//!   SUCCESS after such a change started its tasks;
//! - an undo (OnRollback) runs only for a rollback from properties with OnRollback, as
//!   one task (with its retries) of the undone run, at most once whatever is delivered
//!   again; OnRollback's overrides are launched by no other operation;
//! - after the final DELETE, nothing of the TaskRun runs and no record is left.
//!
//! `TASKRUN_SCENARIOS` sets how many scenarios run (default 10,000); the count is printed.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, UNIX_EPOCH};

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::{json, Value};
use taskrun::clock::Clock;
use taskrun::ecs::FaultKind;
use taskrun::ids;
use taskrun::machine::Phase;
use taskrun::outcome::NORMAL_STOP_CODE;
use taskrun::record::{self, RunRecord};
use taskrun::resource::TaskRun;
use taskrun::sim::{Adversity, Hits, Injected, SimBackend, SimEcs, TaskScript};
use taskrun::store::parameter_name;
use test_support::cfn::{as_cloudformation_sends, called_back, next_token, null_at, poll_to_end};
use test_support::cfn::{Call, Polled, Template};
use test_support::props;

mod wire;
use wire::{Wire, WireBackend};

const START: f64 = 1_700_000_000.0;
const CLUSTER: &str = "c";
const FAMILY: &str = "migrate";
const STACK: &str = "arn:aws:cloudformation:us-east-1:123456789012:stack/s/1";
const LOGICAL: &str = "Migrate";
/// The Registry's per-invocation limit.
const INVOCATION_LIMIT: f64 = 60.0;
/// The command of OnRollback's overrides: how an undo's launch is told from a run's.
const UNDO_COMMAND: [&str; 2] = ["bin/rails", "db:rollback"];

#[derive(Debug, Clone)]
struct Props {
    count: u32,
    instances: u32,
    timeout: u32,
    poll: u32,
    run_on_update: Option<bool>,
    run_on_rollback: bool,
    criteria: bool,
    triggers: u8,
    tag: u8,
    db_host: u8,
    as_strings: bool,
    /// Retry attempts (0: no Retry), and whether non-zero exits are retried too.
    retry: u8,
    retry_exits: bool,
    log_tail: u32,
    /// The TaskRun's own tags beyond the first: none, 24 or 48 more.
    more_tags: u8,
    /// CapacityProviderStrategy: none, a FARGATE base with Spot weight, Spot alone, or
    /// (rarely) one ECS refuses (no weight above 0), which the handler must refuse first.
    capacity: u8,
    /// AdoptExisting (only a CREATE reads it).
    adopt: bool,
    /// OnRollback: none (0), with IfUndoFails REPORT (1) or FAIL (2).
    undo: u8,
    /// Lock {Name: db}: the run takes it before it starts anything and frees it at its end.
    lock: bool,
    /// Events: none (0), the default bus (1), a bus by name (2) or by ARN (3): each change
    /// of a run announced, best effort; or (rarely, 4) a partner event bus, which PutEvents
    /// refuses and the handler must refuse first.
    events: u8,
}

impl Props {
    fn to_json(&self) -> Value {
        let mut p = json!({
            "Cluster": CLUSTER, "TaskDefinition": FAMILY, "Count": self.count,
            "Timeout": self.timeout, "PollInterval": self.poll,
            "Triggers": [format!("t{}", self.triggers)],
            "Tags": std::iter::once(json!({"Key": "k", "Value": format!("v{}", self.tag)}))
                .chain((0..u32::from(self.more_tags) * 24).map(|i| json!({"Key": format!("own-{i}"), "Value": "o"})))
                .collect::<Vec<_>>(),
            "Overrides": {"ContainerOverrides": [{"Name": "app",
                "Environment": [{"Name": "DB_HOST", "Value": format!("db-{}", self.db_host)}]}]},
        });
        if self.instances > 0 {
            p["Instances"] = json!((0..self.instances)
                .map(|i| format!("arn:aws:ecs:us-east-1:123456789012:container-instance/c/{i}"))
                .collect::<Vec<_>>());
        }
        if let Some(run) = self.run_on_update {
            p["RunOnUpdate"] = json!(run);
        }
        if self.run_on_rollback {
            p["RunOnRollback"] = json!(true);
        }
        if self.criteria {
            p["UpdateCriteria"] = json!([{"Container": "app", "EnvironmentKeys": ["DB_HOST"]}]);
        }
        if self.retry > 0 {
            p["Retry"] = json!({"Attempts": self.retry, "SpotFallback": true});
            if self.retry_exits {
                p["Retry"]["On"] = json!([
                    "SpotInterruption",
                    "TaskFailedToStart",
                    "PlacementFailure",
                    "NonZeroExit"
                ]);
            }
        }
        p["LogTail"] = json!(self.log_tail);
        if self.adopt {
            p["AdoptExisting"] = json!(true);
        }
        if self.lock {
            p["Lock"] = json!({"Name": "db"});
        }
        match self.events {
            1 => p["Events"] = json!({}),
            2 => p["Events"] = json!({"EventBusName": "ops"}),
            3 => {
                p["Events"] =
                    json!({"EventBusName": "arn:aws:events:us-east-1:123456789012:event-bus/ops"})
            }
            4 => p["Events"] = json!({"EventBusName": "aws.partner/example.com/123/ops"}),
            _ => {}
        }
        if self.undo > 0 {
            p["OnRollback"] = json!({
                "Overrides": {"ContainerOverrides": [{"Name": "app", "Command": UNDO_COMMAND}]},
                "IfUndoFails": if self.undo == 1 { "REPORT" } else { "FAIL" },
            });
        }
        match self.capacity {
            1 => {
                p["CapacityProviderStrategy"] = json!([
                    {"CapacityProvider": "FARGATE", "Base": 1, "Weight": 0},
                    {"CapacityProvider": "FARGATE_SPOT", "Weight": 1}
                ])
            }
            2 => {
                p["CapacityProviderStrategy"] =
                    json!([{"CapacityProvider": "FARGATE_SPOT", "Weight": 2}])
            }
            3 => p["CapacityProviderStrategy"] = json!([{"CapacityProvider": "FARGATE_SPOT"}]),
            _ => {}
        }
        if self.as_strings {
            as_cloudformation_sends(&p)
        } else {
            p
        }
    }

    /// The run a rollback from these properties undoes, when their update's run
    /// succeeded: one task of its task definition, the rest as given (README, *Undo on
    /// rollback*).
    fn undo_run(&self) -> Props {
        Props {
            count: 1,
            instances: 0,
            ..self.clone()
        }
    }

    /// Whether ECS or EventBridge would refuse these properties and the handler must
    /// refuse them first (a capacity provider strategy with no weight above 0; a partner
    /// event bus: Amazon EventBridge API Reference, "PutEventsRequestEntry", EventBusName
    /// is a NonPartnerEventBusNameOrArn).
    fn refused(&self) -> bool {
        self.capacity == 3 || self.events == 4
    }

    /// Tasks a run of these properties starts (first attempts).
    fn task_count(&self) -> u32 {
        if self.refused() {
            return 0;
        }
        match (self.count, self.instances) {
            (0, _) => 0,
            (_, 0) => self.count,
            (_, n) => n,
        }
    }

    /// What an UPDATE to these properties must do, by the update rules (README, *Updates and
    /// rollbacks*), given the properties of the last run that succeeded: `Some(true)` run,
    /// `Some(false)` not run, `None` when this model of the rules does not say (UpdateCriteria
    /// turned on or off since that run, where the handler adopts values it had not kept).
    fn update_runs(&self, baseline: Option<&Props>, rollback: bool) -> Option<bool> {
        if self.run_on_update == Some(false) || (rollback && !self.run_on_rollback) {
            return Some(false);
        }
        let Some(base) = baseline else {
            return Some(true);
        };
        if base.triggers != self.triggers {
            return Some(true);
        }
        match (base.criteria, self.criteria) {
            (true, true) => Some(base.db_host != self.db_host),
            (false, false) => Some(
                (base.count, base.instances, base.db_host, base.capacity)
                    != (self.count, self.instances, self.db_host, self.capacity),
            ),
            _ => None,
        }
    }

    /// The most tasks a run may start, retries included (StartTask runs are not retried).
    fn most_tasks(&self) -> u32 {
        let retries = if self.instances == 0 {
            u32::from(self.retry)
        } else {
            0
        };
        self.task_count() * (1 + retries)
    }
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Update { rollback: bool },
    Delete,
}

#[derive(Debug, Clone)]
struct Op {
    kind: Kind,
    props: Props,
    /// Stop calling back after this many invocations (a CloudFormation timeout).
    abandon_after: Option<u8>,
    /// Deliver the invocation with this number twice (its first answer is lost).
    lose_answer: Option<u8>,
    /// Seconds before the operation arrives.
    gap: f64,
    /// An update as a template edit that changes only what does not shape the tasks: it
    /// keeps Count, Instances, DB_HOST, Triggers and UpdateCriteria of the properties
    /// before it.
    same_shape: bool,
}

#[derive(Debug, Clone)]
struct Scenario {
    /// The stack's tags: CloudFormation's own rules, not ECS's.
    stack_tags: BTreeMap<String, String>,
    /// How the simulated AWS answers beyond the basics.
    world: Adversity,
    /// Whether CloudFormation shows the stack being updated (else being created): a
    /// CREATE with AdoptExisting then adopts instead of running.
    stack_updating: bool,
    create: Props,
    create_abandon: Option<u8>,
    create_lose: Option<u8>,
    ops: Vec<Op>,
    scripts: Vec<TaskScript>,
    ecs_faults: Vec<(u64, Injected)>,
    store_faults: Vec<(u64, Injected)>,
    not_placed: Vec<u32>,
}

fn count() -> impl Strategy<Value = u32> {
    prop_oneof![6 => 0u32..=3, 2 => 4u32..=25, 1 => Just(100u32)]
}

fn props() -> impl Strategy<Value = Props> {
    (
        count(),
        prop_oneof![5 => Just(0u32), 1 => 1u32..=10],
        30u32..=900,
        prop_oneof![1u32..=5, 15u32..=60],
        prop_oneof![Just(None), Just(Some(true)), Just(Some(false))],
        any::<bool>(),
        any::<bool>(),
        (0u8..3, 0u8..3, 0u8..3),
        any::<bool>(),
        (
            prop_oneof![3 => Just(0u8), 1 => 1u8..=5],
            any::<bool>(),
            prop_oneof![Just(0u32), Just(5u32), Just(20u32)],
        ),
        (
            prop_oneof![6 => Just(0u8), 1 => 1u8..=2],
            prop_oneof![12 => Just(0u8), 3 => 1u8..=2, 1 => Just(3u8)],
            prop::bool::weighted(0.15),
            prop_oneof![2 => Just(0u8), 1 => 1u8..=2],
            prop::bool::weighted(0.3),
            prop_oneof![70 => Just(0u8), 10 => Just(1u8), 9 => Just(2u8), 9 => Just(3u8), 2 => Just(4u8)],
        ),
    )
        .prop_map(
            |(
                count,
                instances,
                timeout,
                poll,
                run_on_update,
                run_on_rollback,
                criteria,
                (triggers, tag, db_host),
                as_strings,
                (retry, retry_exits, log_tail),
                (more_tags, capacity, adopt, undo, lock, events),
            )| Props {
                lock,
                events,
                undo,
                more_tags,
                capacity,
                adopt,
                retry,
                retry_exits,
                log_tail,
                count,
                instances,
                timeout,
                poll,
                run_on_update,
                run_on_rollback,
                criteria,
                triggers,
                tag,
                db_host,
                as_strings,
            },
        )
}

fn exit_code() -> impl Strategy<Value = Option<i32>> {
    prop_oneof![6 => Just(Some(0)), 1 => Just(Some(1)), 1 => Just(Some(137)), 1 => Just(None)]
}

fn script() -> impl Strategy<Value = TaskScript> {
    (
        prop_oneof![0.0f64..30.0, 30.0f64..1200.0],
        prop::bool::weighted(0.08),
        prop_oneof![
            8 => Just(NORMAL_STOP_CODE),
            1 => Just("SpotInterruption"),
            1 => Just("UserInitiated"),
            1 => Just("TerminationNotice"),
            1 => Just("ServiceSchedulerInitiated"),
        ],
        (exit_code(), exit_code()),
        prop_oneof![Just(Some(143)), Just(Some(0))],
        0.0f64..40.0,
        prop_oneof![4 => Just(0.0f64), 1 => 0.0f64..10.0],
        prop_oneof![8 => Just(None), 1 => (0.0f64..600.0).prop_map(Some)],
        prop_oneof![
            3 => Just(Vec::<String>::new()),
            1 => (0u32..3).prop_map(|n| vec!["working".to_string(), format!("TASKRUN_OUTPUT {{\"n\": {n}}}"), "bye".into()]),
            1 => (0u32..3).prop_map(|n| vec!["working".to_string(), format!("TASKRUN_OUTPUT last {n}")]),
            1 => Just(vec![format!("TASKRUN_OUTPUT {}", "x".repeat(5000))]),
        ],
    )
        .prop_map(
            |(
                runs_for,
                never_starts,
                stop_code,
                (app, sidecar),
                exit_on_stop,
                stop_takes,
                invisible_for,
                forgotten_after,
                logs,
            )| TaskScript {
                runs_for,
                never_starts,
                stop_code: stop_code.into(),
                exits: vec![("app".into(), app), ("sidecar".into(), sidecar)],
                exit_on_stop,
                stop_takes,
                invisible_for,
                forgotten_after,
                logs,
            },
        )
}

fn fault_kind() -> impl Strategy<Value = FaultKind> {
    prop_oneof![
        3 => Just(FaultKind::Throttled),
        3 => Just(FaultKind::ServerSide),
        2 => Just(FaultKind::Network),
        1 => Just(FaultKind::AccessDenied),
        1 => Just(FaultKind::BadRequest),
        1 => Just(FaultKind::LimitExceeded),
    ]
}

fn injected() -> impl Strategy<Value = Injected> {
    let mix = props::FaultMix {
        before: 3,
        after: 3,
        slow: 2,
        crash: 2,
    };
    props::injected(fault_kind(), prop_oneof![0.5f64..5.0, 20.0f64..80.0], mix)
}

fn faults(calls: u64, most: usize) -> impl Strategy<Value = Vec<(u64, Injected)>> {
    prop::collection::vec((0..calls, injected()), 0..=most)
}

/// The record store fails only in passing: a store that refuses for good (a broken
/// role) is its own case, `a_store_that_refuses_from_the_start_starts_nothing`.
fn store_faults(calls: u64, most: usize) -> impl Strategy<Value = Vec<(u64, Injected)>> {
    let transient = prop_oneof![
        Just(FaultKind::Throttled),
        Just(FaultKind::ServerSide),
        Just(FaultKind::Network)
    ];
    let injected = prop_oneof![
        3 => transient.clone().prop_map(Injected::Before),
        3 => transient.prop_map(Injected::After),
        1 => (0.5f64..70.0).prop_map(Injected::Slow),
        2 => Just(Injected::Crash),
    ];
    prop::collection::vec((0..calls, injected), 0..=most)
}

fn op() -> impl Strategy<Value = Op> {
    (
        prop_oneof![6 => any::<bool>().prop_map(|rollback| Kind::Update { rollback }), 1 => Just(Kind::Delete)],
        props(),
        prop_oneof![4 => Just(None), 1 => (1u8..6).prop_map(Some)],
        prop_oneof![4 => Just(None), 1 => (0u8..4).prop_map(Some)],
        prop_oneof![0.0f64..5.0, 0.0f64..2000.0],
        prop_oneof![2 => Just(false), 1 => Just(true)],
    )
        .prop_map(
            |(kind, props, abandon_after, lose_answer, gap, same_shape)| Op {
                kind,
                props,
                abandon_after,
                lose_answer,
                gap,
                same_shape,
            },
        )
}

/// Stack tags as organisations set them: CloudFormation allows characters ECS does not,
/// and a stack may have 50 tags of its own (CloudFormation API Reference, "Tag").
fn stack_tags() -> impl Strategy<Value = BTreeMap<String, String>> {
    prop_oneof![
        4 => Just(BTreeMap::from([("team".to_string(), "platform".to_string())])),
        1 => Just(BTreeMap::from([
            ("Owner (team)".to_string(), "data, eng".to_string()),
            ("cost-center".to_string(), "aws:internal".to_string()),
            ("aws:cloudformation:stack-name".to_string(), "s".to_string()),
            ("team".to_string(), "platform".to_string()),
        ])),
        1 => Just((0..50).map(|i| (format!("stack-{i:02}"), format!("v{i}"))).collect()),
    ]
}

/// AWS as it answers: off in about half the scenarios, else any mix.
fn world() -> impl Strategy<Value = Adversity> {
    let on = (
        prop_oneof![Just(0.0f64), 0.5f64..25.0],
        prop_oneof![Just(None), (0.0f64..60.0).prop_map(Some)],
        prop_oneof![Just(0.0f64), 0.5f64..30.0],
        prop_oneof![Just(None), (1usize..5).prop_map(Some)],
        prop_oneof![Just(0u32), 1u32..3],
        prop_oneof![Just(0.0f64), 0.5f64..4.0, 4.0f64..12.0],
        prop_oneof![3 => Just(0u32), 1 => 1u32..4],
    )
        .prop_map(
            |(
                deprovisioning,
                deleted_after,
                list_lag,
                log_page,
                empty_pages,
                late_lines,
                provisioning_refusals,
            )| Adversity {
                deprovisioning,
                deleted_after,
                list_lag,
                log_page,
                empty_pages,
                late_lines,
                provisioning_refusals,
            },
        );
    prop_oneof![1 => Just(Adversity::default()), 1 => on]
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        (stack_tags(), world(), any::<bool>()),
        props(),
        prop_oneof![5 => Just(None), 1 => (1u8..6).prop_map(Some)],
        prop_oneof![5 => Just(None), 1 => (0u8..4).prop_map(Some)],
        prop::collection::vec(op(), 0..4),
        prop::collection::vec(script(), 0..12),
        faults(120, 6),
        store_faults(60, 4),
        prop::collection::vec(prop_oneof![8 => Just(0u32), 1 => 1u32..4], 0..4),
    )
        .prop_map(
            |(
                (stack_tags, world, stack_updating),
                create,
                create_abandon,
                create_lose,
                ops,
                scripts,
                ecs_faults,
                store_faults,
                not_placed,
            )| Scenario {
                stack_tags,
                world,
                stack_updating,
                create,
                create_abandon,
                create_lose,
                ops,
                scripts,
                ecs_faults,
                store_faults,
                not_placed,
            },
        )
}

/// How an operation ended.
enum End {
    Answered(Value),
    Abandoned,
}

struct Play {
    backend: SimBackend,
    stack_tags: BTreeMap<String, String>,
    resource: TaskRun<WireBackend>,
    /// The TaskRun's Id, once an event named it.
    id: Option<String>,
    /// Operation tokens and the properties each asked for.
    runs: Vec<(String, Props)>,
    invocations: u64,
    /// Launches so far, and those with OnRollback's overrides (by the simulation's log).
    launched: (usize, usize),
    /// Rollbacks that undid a run.
    undos: u64,
}

/// Every operation each handler made, over every scenario played.
static CALLS_BY_ACTION: props::CallsByAction = props::CallsByAction::new();

fn fail(message: String) -> TestCaseError {
    TestCaseError::fail(message)
}

impl Play {
    fn new(scenario: &Scenario) -> Self {
        Self::on_the_wire(scenario, None)
    }

    /// A play whose every request is also serialized by the SDK, when `wire` is given.
    fn on_the_wire(scenario: &Scenario, wire: Option<std::sync::Arc<Wire>>) -> Self {
        let backend = SimBackend::new(START);
        backend.gateway.clone().with_world(CLUSTER, FAMILY);
        {
            let mut state = backend.gateway.lock();
            state.scripts = scenario.scripts.iter().cloned().collect();
            state.plan.faults = scenario.ecs_faults.iter().cloned().collect();
            state.not_placed = scenario.not_placed.iter().cloned().collect();
            state.world = scenario.world.clone();
            let status = if scenario.stack_updating {
                "UPDATE_IN_PROGRESS"
            } else {
                "CREATE_IN_PROGRESS"
            };
            state.stacks.insert(STACK.to_string(), status.to_string());
        }
        for (call, fault) in &scenario.store_faults {
            backend.store.inject(*call, *fault);
        }
        Self {
            resource: TaskRun::new(WireBackend {
                sim: backend.clone(),
                wire,
            }),
            backend,
            stack_tags: scenario.stack_tags.clone(),
            id: None,
            runs: Vec::new(),
            invocations: 0,
            launched: (0, 0),
            undos: 0,
        }
    }

    fn ecs(&self) -> &SimEcs {
        &self.backend.gateway
    }

    fn now(&self) -> f64 {
        self.backend.clock.now()
    }

    /// One invocation, polled to its end; `None` when the process "died" in it.
    fn invoke(&mut self, event: &Value) -> Result<Option<Value>, TestCaseError> {
        let answer = self.invoke_inner(event);
        // Which operations each action made: compared with the schema's permissions.
        let mut calls = std::mem::take(&mut self.ecs().lock().plan.call_log);
        calls.extend(std::mem::take(
            &mut self.backend.events.lock().plan.call_log,
        ));
        CALLS_BY_ACTION.record(event, calls, props::taken(&self.backend.store));
        answer
    }

    fn invoke_inner(&mut self, event: &Value) -> Result<Option<Value>, TestCaseError> {
        self.invocations += 1;
        let bytes = event.to_string();
        let began = self.now();
        let deadline = UNIX_EPOCH + Duration::from_secs_f64(began + INVOCATION_LIMIT);
        let invocation = cfn_protocol::dispatch(&self.resource, bytes.as_bytes(), Some(deadline));
        let polled = poll_to_end(invocation, || {
            std::mem::take(&mut self.ecs().lock().plan.crashed)
                | self.backend.store.crashed.swap(false, Ordering::SeqCst)
        });
        match polled {
            Polled::Answered(answer) => {
                let took = self.now() - began;
                if took > INVOCATION_LIMIT {
                    return Err(fail(format!(
                        "an invocation took {took:.1} s: {event}\n-> {answer}"
                    )));
                }
                Ok(Some(answer))
            }
            Polled::Died => {
                // The process died: nothing more of this invocation happens.
                self.backend.clock.advance(1.0);
                Ok(None)
            }
            Polled::Stuck => Err(fail(format!("an invocation never finished: {event}"))),
        }
    }

    fn envelope(
        &self,
        action: &str,
        token: &str,
        props: &Value,
        previous: Option<&Value>,
        context: Option<&Value>,
        rollback: bool,
    ) -> Value {
        let mut template = Template::in_memory("Org::ECS::TaskRun", STACK, LOGICAL);
        template.request_data["stackTags"] = json!(self.stack_tags);
        template.envelope(&Call {
            action,
            token,
            properties: Some(props),
            previous,
            context,
            rollback,
        })
    }

    /// One operation to its end, as CloudFormation plays it.
    #[allow(clippy::too_many_arguments)]
    fn operate(
        &mut self,
        action: &str,
        props: Option<&Props>,
        previous: Option<&Value>,
        rollback: bool,
        abandon_after: Option<u8>,
        lose_answer: Option<u8>,
    ) -> Result<End, TestCaseError> {
        let token = next_token("token-");
        let mut properties = match props {
            Some(p) => p.to_json(),
            None => json!({"Id": self.id.clone().unwrap_or_default()}),
        };
        if let (Some(id), Some(_)) = (&self.id, props) {
            if action != "CREATE" {
                properties["Id"] = json!(id);
            }
        }
        if let Some(p) = props {
            self.runs.push((token.clone(), p.clone()));
        }
        if action == "CREATE" {
            // The Id a CREATE gives: known to the test even if no event ever names it.
            self.id = Some(ids::resource_id(
                "TaskRun",
                Some(STACK),
                Some(LOGICAL),
                Some(&token),
            ));
        }
        let mut context: Option<Value> = None;
        let mut count = 0u8;
        for _ in 0..3000 {
            let event = self.envelope(
                action,
                &token,
                &properties,
                previous,
                context.as_ref(),
                rollback,
            );
            if lose_answer == Some(count) {
                // CloudFormation never got this answer: it delivers the invocation again.
                self.invoke(&event)?;
            }
            count = count.saturating_add(1);
            let answer = self.invoke(&event)?;
            if std::env::var_os("TASKRUN_TRACE").is_some() {
                let calls = std::mem::take(&mut self.ecs().lock().plan.call_log);
                let brief = |v: &Value| {
                    let mut v = v.clone();
                    if let Some(m) = v.get_mut("resourceModel") {
                        *m = json!({"Status": m["Status"], "TaskArns": m["TaskArns"].as_array().map(Vec::len)});
                    }
                    if let Some(c) = v.get_mut("callbackContext") {
                        *c = json!({"stage": c["stage"], "phase": c["run"]["phase"]});
                    }
                    v
                };
                eprintln!(
                    "t={:.1} {action} {} -> {}   [{calls:?}]",
                    self.now() - START,
                    if context.is_some() {
                        "callback"
                    } else {
                        "first"
                    },
                    answer
                        .as_ref()
                        .map_or("(process died)".to_string(), |a| brief(a).to_string())
                );
            }
            let Some(answer) = answer else {
                continue;
            };
            self.check_event(action, &answer)?;
            if let Some(id) = answer["resourceModel"]["Id"].as_str() {
                if self.id.as_deref() != Some(id) {
                    return Err(fail(format!("an event names another Id: {answer}")));
                }
            }
            if answer["status"] != "IN_PROGRESS" {
                return Ok(End::Answered(answer));
            }
            if abandon_after.is_some_and(|n| count >= n) {
                return Ok(End::Abandoned);
            }
            let delay = answer["callbackDelaySeconds"].as_f64().unwrap_or(0.0);
            self.backend.clock.advance(delay);
            called_back(action, &answer, &mut context, &mut properties);
        }
        Err(fail(format!("{action} never ended")))
    }

    fn check_event(&self, action: &str, answer: &Value) -> Result<(), TestCaseError> {
        if null_at(answer).is_some() {
            return Err(fail(format!("an event holds null: {answer}")));
        }
        let status = answer["status"].as_str().unwrap_or_default();
        let code = answer["errorCode"].as_str();
        match status {
            "IN_PROGRESS" | "SUCCESS" => {
                if code.is_some() {
                    return Err(fail(format!("{status} with an error code: {answer}")));
                }
            }
            "FAILED" => {
                if matches!(
                    code,
                    None | Some("InternalFailure" | "HandlerInternalFailure")
                ) {
                    return Err(fail(format!(
                        "a FAILED event without a proper code (a panic?): {answer}"
                    )));
                }
            }
            _ => return Err(fail(format!("not a progress event: {answer}"))),
        }
        if status == "IN_PROGRESS" && answer["callbackDelaySeconds"].as_u64().unwrap_or(0) == 0 {
            return Err(fail(format!("IN_PROGRESS without a delay: {answer}")));
        }
        let carries_model = matches!(action, "CREATE" | "UPDATE") && status != "FAILED";
        if carries_model
            && answer["resourceModel"]["Id"]
                .as_str()
                .is_none_or(str::is_empty)
        {
            return Err(fail(format!(
                "a {action} {status} event without the model's Id: {answer}"
            )));
        }
        if action == "DELETE" && status == "SUCCESS" && answer.get("resourceModel").is_some() {
            return Err(fail(format!("a DELETE SUCCESS with a model: {answer}")));
        }
        if status == "SUCCESS" && answer["resourceModel"]["Status"] == "SUCCEEDED" {
            self.check_succeeded(&answer["resourceModel"])?;
        }
        Ok(())
    }

    /// A SUCCEEDED run: every task of it really ended normally, with exit 0 in `app`.
    fn check_succeeded(&self, model: &Value) -> Result<(), TestCaseError> {
        let now = self.now();
        let state = self.ecs().lock();
        // An Output is what the first task printed after the marker, on its last such line.
        if let Some(output) = model["Output"].as_str() {
            let first = model["TaskArns"][0].as_str().unwrap_or_default();
            let printed = state.tasks.iter().find(|t| t.arn == first).and_then(|t| {
                t.script
                    .logs
                    .iter()
                    .rev()
                    .find_map(|l| l.strip_prefix("TASKRUN_OUTPUT ").map(str::trim))
            });
            if printed != Some(output) {
                return Err(fail(format!(
                    "Output {output:?} is not what the first task printed ({printed:?})"
                )));
            }
        } else if model["Status"] == "SUCCEEDED" {
            // No Output: the StatusReason says why (a template's !GetAtt of it fails).
            let first = model["TaskArns"][0].as_str().unwrap_or_default();
            let printed = state
                .tasks
                .iter()
                .find(|t| t.arn == first)
                .is_some_and(|t| {
                    t.script
                        .logs
                        .iter()
                        .any(|l| l.starts_with("TASKRUN_OUTPUT "))
                });
            let said = model["StatusReason"]
                .as_str()
                .is_some_and(|r| r.starts_with("Output not"));
            if printed && !said {
                return Err(fail(format!(
                    "the first task printed an output line, and the SUCCEEDED model has no Output and no reason why: {model}"
                )));
            }
        }
        for arn in model["TaskArns"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            let Some(task) = state.tasks.iter().find(|t| t.arn == arn) else {
                return Err(fail(format!(
                    "SUCCEEDED names a task ECS never started: {arn}"
                )));
            };
            let end = task.end();
            let app = end
                .exits
                .iter()
                .find(|(n, _)| n == "app")
                .and_then(|(_, e)| *e);
            if end.at > now || end.stop_code != NORMAL_STOP_CODE || app != Some(0) {
                return Err(fail(format!(
                    "wrong SUCCESS: task {arn} ended {end:?} (now {now})"
                )));
            }
        }
        Ok(())
    }

    /// Whether the record's run is the one the operation with `token` started, SUCCEEDED.
    /// Launches in the simulation's log: all, and those with OnRollback's overrides.
    fn launches(&self) -> (usize, usize) {
        let state = self.ecs().lock();
        let undo = state
            .launches
            .iter()
            .filter(|l| {
                l.model.overrides.as_ref().is_some_and(|o| {
                    o.container_overrides.iter().flatten().any(|c| {
                        c.command
                            .as_ref()
                            .is_some_and(|c| c.iter().eq(UNDO_COMMAND.iter()))
                    })
                })
            })
            .count();
        (state.launches.len(), undo)
    }

    fn succeeded(&self, token: &str) -> bool {
        self.record()
            .is_some_and(|r| r.run.token == token && record::status(&r.run) == "SUCCEEDED")
    }

    fn record(&self) -> Option<RunRecord> {
        let id = self.id.as_ref()?;
        let text = self
            .backend
            .store
            .snapshot()
            .get(&parameter_name(id))?
            .clone();
        serde_json::from_str(&handler_kit::records::decode(&text).ok()?).ok()
    }

    /// Tasks launched for the run the operation with `token` started.
    fn tasks_of(&self, token: &str) -> Vec<String> {
        let Some(id) = &self.id else { return vec![] };
        let keys: BTreeSet<String> = (0..700)
            .map(|b| ids::client_token(id, token, b))
            .chain((0..60).map(|a| ids::attempt_tag(id, token, a)))
            .collect();
        self.ecs()
            .lock()
            .tasks
            .iter()
            .filter(|t| keys.contains(&t.launched_by))
            .map(|t| t.arn.clone())
            .collect()
    }

    /// No run started more tasks than it asked for; a run that succeeded started all.
    fn check_counts(
        &self,
        answer: Option<&Value>,
        token: &str,
        props: &Props,
    ) -> Result<(), TestCaseError> {
        let started = self.tasks_of(token);
        if started.len() as u32 > props.most_tasks() {
            return Err(fail(format!(
                "{} tasks started for a run of {} (at most {} with retries)",
                started.len(),
                props.task_count(),
                props.most_tasks()
            )));
        }
        if let Some(answer) = answer {
            let model = &answer["resourceModel"];
            if props.refused()
                && (answer["status"] != "FAILED" || answer["errorCode"] != "InvalidRequest")
            {
                return Err(fail(format!(
                    "properties ECS refuses were not refused first: {answer}"
                )));
            }
            if answer["status"] == "SUCCESS"
                && model["Status"] == "SUCCEEDED"
                && !started.is_empty()
            {
                let named: BTreeSet<&str> = model["TaskArns"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                let ours: BTreeSet<&str> = started.iter().map(String::as_str).collect();
                // The tasks named are the run's own, one per task asked for (retries
                // replaced the others, which only the Tasks output lists).
                if !named.is_subset(&ours) || named.len() as u32 != props.task_count() {
                    return Err(fail(format!(
                        "SUCCESS for {} of {} tasks: {answer}",
                        named.len(),
                        props.task_count()
                    )));
                }
            }
        }
        Ok(())
    }

    /// Every running task of this TaskRun is followed by its record's unfinished run.
    fn check_followed(&self, when: &str) -> Result<(), TestCaseError> {
        let now = self.now();
        let record = self.record();
        for task in self.ecs().running() {
            if task.stop_requested_at.is_some() && record.is_none() {
                // Stopping on ECS's side; it was confirmed stopping before the record went.
                continue;
            }
            // Followed: the record's unfinished run names it, or will learn of it: a run
            // still launching asks RunTask again with the same token (ECS names the tasks
            // it started), and a stopping run that sweeps lists the TaskRun's tasks by
            // `startedBy` (a run records RunTask's answers with its next durable change, so
            // an operation given up on may leave tasks only a sweep finds).
            let followed = record.as_ref().is_some_and(|r| {
                r.run.phase != Phase::Ended
                    && (r.run.watched_arns().contains(&task.arn)
                        || (r.run.phase == Phase::Launching
                            && self.tasks_of(&r.run.token).contains(&task.arn))
                        || (r.run.phase == Phase::Stopping
                            && r.run.stopping.as_ref().is_some_and(|s| s.sweep)
                            && Some(&task.started_by) == self.id.as_ref()))
            });
            if !followed && task.stop_requested_at.is_none() {
                return Err(fail(format!(
                    "{when}: task {} runs (until {:.0}, now {now:.0}) and no record follows it; record: {:?}",
                    task.arn,
                    task.end().at,
                    record.as_ref().map(|r| (&r.run.phase, &r.run.token))
                )));
            }
        }
        Ok(())
    }

    fn play(&mut self, scenario: &Scenario) -> Result<(), TestCaseError> {
        let created = self.operate(
            "CREATE",
            Some(&scenario.create),
            None,
            false,
            scenario.create_abandon,
            scenario.create_lose,
        )?;
        let token = self.runs[0].0.clone();
        let mut exists;
        let mut last_props = scenario.create.clone();
        // The last operation was an update whose run succeeded with OnRollback: a rollback
        // now must undo it.
        let mut undo_due = false;
        // The properties of the last run that ran tasks and succeeded (ground truth: the
        // record's run of the operation, seen when the operation ended).
        let mut baseline = (self.succeeded(&token) && scenario.create.task_count() > 0)
            .then(|| scenario.create.clone());
        // A CREATE that adopts (AdoptExisting, the stack being updated) starts nothing.
        let adopts = scenario.create.adopt && scenario.stack_updating;
        let create_props = if adopts {
            if !self.tasks_of(&token).is_empty() {
                return Err(fail(
                    "a CREATE with AdoptExisting in a stack being updated started tasks".into(),
                ));
            }
            Props {
                count: 0,
                ..scenario.create.clone()
            }
        } else {
            scenario.create.clone()
        };
        match &created {
            End::Answered(answer) => {
                self.check_counts(Some(answer), &token, &create_props)?;
                exists = answer["status"] == "SUCCESS";
                let kept = self.record().is_some();
                let gave_up = answer["errorCode"] == "NotStabilized"
                    && self
                        .record()
                        .is_some_and(|r| r.run.phase == Phase::Stopping);
                if kept != exists && !gave_up {
                    return Err(fail(format!(
                        "after CREATE {}: record kept = {kept}",
                        answer["status"]
                    )));
                }
                self.check_followed("after CREATE")?;
            }
            End::Abandoned => {
                self.check_counts(None, &token, &create_props)?;
                // CloudFormation gave up on the CREATE: the rollback deletes it.
                exists = self.record().is_some();
            }
        }
        for op in &scenario.ops {
            if !exists {
                break;
            }
            self.backend.clock.advance(op.gap);
            match op.kind {
                Kind::Update { rollback } => {
                    let previous = last_props.to_json();
                    let props = if op.same_shape {
                        Props {
                            count: last_props.count,
                            instances: last_props.instances,
                            db_host: last_props.db_host,
                            triggers: last_props.triggers,
                            criteria: last_props.criteria,
                            capacity: last_props.capacity,
                            ..op.props.clone()
                        }
                    } else {
                        op.props.clone()
                    };
                    let expected = props.update_runs(baseline.as_ref(), rollback);
                    let end = self.operate(
                        "UPDATE",
                        Some(&props),
                        Some(&previous),
                        rollback,
                        op.abandon_after,
                        op.lose_answer,
                    )?;
                    let token = self.runs.last().map(|r| r.0.clone()).unwrap_or_default();
                    let started = self.tasks_of(&token).len();
                    // Whether this update undid the run of the update it rolls back: its
                    // record's run is an undo of this operation's.
                    let undid = self
                        .record()
                        .is_some_and(|r| r.undo_run().is_some() && r.run.token == token);
                    let not_started = matches!(&end, End::Answered(a)
                        if a["message"].as_str().is_some_and(|m| m.contains("the undo could not start")));
                    if (undid || not_started) && !(rollback && last_props.undo > 0) {
                        return Err(fail(format!(
                            "an undo ran for an UPDATE that is not a rollback from properties with OnRollback (rollback {rollback}, previous {:?})",
                            last_props
                        )));
                    }
                    // The rollback of an update whose run succeeded with OnRollback undoes it
                    // (or says why it could not start, or fails).
                    if let End::Answered(answer) = &end {
                        if rollback
                            && undo_due
                            && answer["status"] == "SUCCESS"
                            && !undid
                            && !not_started
                        {
                            return Err(fail(format!(
                                "a rollback of an update whose run succeeded with OnRollback undid nothing ({:?}): {answer}",
                                last_props
                            )));
                        }
                    }
                    let (launches, undo_launches) = self.launches();
                    let (launches_before, undo_launches_before) = self.launched;
                    if undid && launches - launches_before != undo_launches - undo_launches_before {
                        return Err(fail(
                            "an undo launched something else than OnRollback's overrides".into(),
                        ));
                    }
                    if !undid && undo_launches != undo_launches_before {
                        return Err(fail(format!(
                            "OnRollback's overrides were launched by an UPDATE that undid nothing (rollback {rollback})"
                        )));
                    }
                    self.launched = (launches, undo_launches);
                    self.undos += u64::from(undid);
                    // An undo's tasks are counted against the run it undoes (one task).
                    let counted = if undid {
                        last_props.undo_run()
                    } else {
                        props.clone()
                    };
                    if expected == Some(false) && started > 0 && !undid {
                        return Err(fail(format!(
                            "an UPDATE that must not run (rollback {rollback}, {:?}, last success {:?}) started {started} tasks",
                            props, baseline
                        )));
                    }
                    if let End::Answered(answer) = &end {
                        if expected == Some(true)
                            && answer["status"] == "SUCCESS"
                            && props.task_count() > 0
                            && started == 0
                            && !undid
                            && !not_started
                        {
                            return Err(fail(format!(
                                "an UPDATE that had to run answered SUCCESS without starting a task (rollback {rollback}, {:?}, last success {:?}): {answer}",
                                props, baseline
                            )));
                        }
                    }
                    // A succeeded undo leaves the state the rollback's properties describe.
                    if self.succeeded(&token) && (undid || props.task_count() > 0) {
                        baseline = Some(props.clone());
                    }
                    undo_due = false;
                    match &end {
                        End::Answered(answer) => {
                            self.check_counts(Some(answer), &token, &counted)?;
                            if answer["status"] == "SUCCESS" {
                                undo_due = !rollback
                                    && props.undo > 0
                                    && started > 0
                                    && self.succeeded(&token);
                                last_props = props.clone();
                            }
                            if self.record().is_none() {
                                return Err(fail(format!("an UPDATE lost the record: {answer}")));
                            }
                            self.check_followed("after UPDATE")?;
                        }
                        End::Abandoned => self.check_counts(None, &token, &counted)?,
                    }
                }
                Kind::Delete => {
                    undo_due = false;
                    match self.operate(
                        "DELETE",
                        None,
                        None,
                        false,
                        op.abandon_after,
                        op.lose_answer,
                    )? {
                        // CloudFormation takes NotFound on a DELETE as done.
                        End::Answered(answer)
                            if answer["status"] == "SUCCESS"
                                || answer["errorCode"] == "NotFound" =>
                        {
                            exists = false;
                            if self.record().is_some() {
                                return Err(fail(
                                    "DELETE answered SUCCESS and kept the record".into(),
                                ));
                            }
                        }
                        End::Answered(_) => {}
                        // Given up on mid-way: it may have got as far as deleting the record.
                        End::Abandoned => exists = self.record().is_some(),
                    }
                }
            }
        }
        self.finish()
    }

    /// READ answers from the record (NotFound without one); LIST names the TaskRun
    /// exactly when it has a record.
    fn check_read_and_list(&mut self) -> Result<(), TestCaseError> {
        let Some(id) = self.id.clone() else {
            return Ok(());
        };
        let recorded = self.record().is_some();
        let read = self.envelope("READ", "read", &json!({"Id": id}), None, None, false);
        if let Some(answer) = self.invoke(&read)? {
            let found = answer["status"] == "SUCCESS" && answer["resourceModel"]["Id"] == json!(id);
            let missing = answer["errorCode"] == "NotFound";
            // A passing store fault may answer a retriable code; anything else must agree.
            let passing = matches!(
                answer["errorCode"].as_str(),
                Some("Throttling" | "ServiceInternalError" | "NetworkFailure")
            );
            let agrees = (found && recorded) || (missing && !recorded);
            if !(passing || agrees) {
                return Err(fail(format!(
                    "READ disagrees with the record (recorded: {recorded}): {answer}"
                )));
            }
        }
        let list = self.envelope("LIST", "list", &json!({}), None, None, false);
        if let Some(answer) = self.invoke(&list)? {
            if answer["status"] == "SUCCESS" {
                let listed = answer["resourceModels"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|m| m["Id"] == json!(id));
                if listed != recorded {
                    return Err(fail(format!(
                        "LIST disagrees with the record (recorded: {recorded}): {answer}"
                    )));
                }
            }
        }
        Ok(())
    }

    /// The stack goes away: DELETE until it succeeds (faults only come early), then
    /// nothing of the TaskRun may run or be recorded.
    fn finish(&mut self) -> Result<(), TestCaseError> {
        self.check_read_and_list()?;
        if self.id.is_none() {
            return self.check_nothing_left();
        }
        for attempt in 0..5 {
            match self.operate("DELETE", None, None, false, None, None)? {
                End::Answered(answer)
                    if answer["status"] == "SUCCESS" || answer["errorCode"] == "NotFound" =>
                {
                    return self.check_nothing_left();
                }
                End::Answered(answer) => {
                    if attempt == 4 {
                        return Err(fail(format!("DELETE keeps failing: {answer}")));
                    }
                    self.backend.clock.advance(60.0);
                }
                End::Abandoned => {}
            }
        }
        self.check_nothing_left()
    }

    fn check_nothing_left(&self) -> Result<(), TestCaseError> {
        if self.record().is_some() {
            return Err(fail(
                "a record is left after the TaskRun was deleted".into(),
            ));
        }
        let orphans: Vec<String> = self
            .ecs()
            .running()
            .into_iter()
            .filter(|t| t.stop_requested_at.is_none())
            .map(|t| t.arn)
            .collect();
        if !orphans.is_empty() {
            return Err(fail(format!(
                "tasks run on with nothing to stop them: {orphans:?}"
            )));
        }
        Ok(())
    }
}

/// Plays one scenario (a shrunk failure kept as a regression case).
fn replay(scenario: Scenario) {
    let mut play = Play::new(&scenario);
    if let Err(e) = play.play(&scenario) {
        panic!("{e}");
    }
}

fn plain(count: u32, timeout: u32) -> Props {
    Props {
        retry: 0,
        retry_exits: false,
        log_tail: 20,
        count,
        instances: 0,
        timeout,
        poll: 1,
        run_on_update: None,
        run_on_rollback: false,
        criteria: false,
        triggers: 0,
        tag: 0,
        db_host: 0,
        as_strings: false,
        more_tags: 0,
        capacity: 0,
        adopt: false,
        undo: 0,
        lock: false,
        events: 0,
    }
}

fn quiet(create: Props) -> Scenario {
    Scenario {
        stack_tags: BTreeMap::from([("team".to_string(), "platform".to_string())]),
        world: Adversity::default(),
        stack_updating: false,
        create,
        create_abandon: None,
        create_lose: None,
        ops: vec![],
        scripts: vec![],
        ecs_faults: vec![],
        store_faults: vec![],
        not_placed: vec![],
    }
}

#[test]
fn regression_process_dies_before_anything_then_times_out() {
    replay(Scenario {
        scripts: vec![TaskScript {
            runs_for: 1147.0,
            stop_takes: 39.8,
            ..TaskScript::default()
        }],
        ecs_faults: vec![(0, Injected::Crash)],
        store_faults: vec![(11, Injected::Before(FaultKind::Throttled))],
        ..quiet(plain(1, 34))
    });
}

#[test]
fn regression_start_task_after_a_crash_times_out_with_a_slow_stop() {
    replay(Scenario {
        scripts: vec![TaskScript {
            runs_for: 1117.0,
            stop_takes: 33.3,
            ..TaskScript::default()
        }],
        ecs_faults: vec![(0, Injected::Crash)],
        store_faults: vec![(7, Injected::Before(FaultKind::Throttled))],
        ..quiet(Props {
            instances: 3,
            ..plain(1, 30)
        })
    });
}

#[test]
fn regression_record_refused_after_launch_then_throttled() {
    replay(Scenario {
        scripts: vec![TaskScript {
            runs_for: 18.5,
            ..TaskScript::default()
        }],
        ecs_faults: vec![(2, Injected::Slow(40.6))],
        store_faults: vec![
            (5, Injected::Before(FaultKind::Throttled)),
            (6, Injected::Before(FaultKind::Throttled)),
        ],
        ..quiet(plain(4, 30))
    });
}

#[test]
fn regression_a_delete_whose_record_delete_acted_then_failed() {
    replay(Scenario {
        ops: vec![Op {
            kind: Kind::Delete,
            props: plain(0, 30),
            abandon_after: None,
            lose_answer: None,
            gap: 0.0,
            same_shape: false,
        }],
        scripts: vec![TaskScript {
            runs_for: 0.0,
            ..TaskScript::default()
        }],
        store_faults: vec![(5, Injected::After(FaultKind::Throttled))],
        ..quiet(plain(1, 30))
    });
}

#[test]
fn regression_start_task_create_redelivered_after_its_run_failed() {
    replay(Scenario {
        create_lose: Some(0),
        scripts: vec![TaskScript {
            runs_for: 0.0,
            stop_code: "SpotInterruption".into(),
            stop_takes: 0.0,
            ..TaskScript::default()
        }],
        ..quiet(Props {
            instances: 1,
            ..plain(1, 30)
        })
    });
}

#[test]
fn regression_crash_after_a_record_write_then_a_throttled_read() {
    replay(Scenario {
        store_faults: vec![
            (3, Injected::Before(FaultKind::Throttled)),
            (2, Injected::Crash),
        ],
        ..quiet(plain(1, 30))
    });
}

#[test]
fn regression_create_abandoned_with_late_visible_tasks_and_a_write_that_failed_after_acting() {
    replay(Scenario {
        create_abandon: Some(1),
        scripts: vec![TaskScript {
            runs_for: 10.4,
            stop_takes: 0.0,
            invisible_for: 9.5,
            ..TaskScript::default()
        }],
        store_faults: vec![(2, Injected::After(FaultKind::Throttled))],
        ..quiet(plain(2, 30))
    });
}

#[test]
fn regression_start_task_redelivered_after_a_failed_run_with_an_instance_not_placed() {
    replay(Scenario {
        create_lose: Some(0),
        not_placed: vec![1],
        ..quiet(Props {
            instances: 4,
            ..plain(1, 30)
        })
    });
}

#[test]
fn a_store_that_refuses_from_the_start_starts_nothing() {
    // The refusal could be a redelivery's whose earlier delivery started tasks: the
    // CREATE tries again for ten minutes, then fails (README, "When AWS refuses").
    let scenario = quiet(plain(3, 60));
    let mut play = Play::new(&scenario);
    let began = play.backend.clock.now();
    for call in 0..5_000 {
        play.backend
            .store
            .inject(call, Injected::Before(FaultKind::AccessDenied));
    }
    let End::Answered(answer) = play
        .operate("CREATE", Some(&scenario.create), None, false, None, None)
        .expect("plays")
    else {
        panic!("not answered");
    };
    assert_eq!(answer["status"], "FAILED", "{answer}");
    assert_eq!(answer["errorCode"], "AccessDenied", "{answer}");
    assert!(
        play.ecs().lock().tasks.is_empty(),
        "no task starts before its run is recorded"
    );
    let took = play.backend.clock.now() - began;
    assert!((600.0..700.0).contains(&took), "failed after {took} s");
}

/// The first invocation of a CREATE records its run, starts its tasks and dies; every
/// delivery since is refused the record (access denied, for good). The CREATE reads again
/// for ten minutes, then fails; but first it stops the tasks the first delivery started,
/// which nothing would follow after a failed CREATE (README, "A record that cannot be
/// read when a CREATE or an UPDATE begins").
#[test]
fn a_create_that_can_never_read_its_record_again_stops_its_tasks_before_failing() {
    let mut scenario = quiet(plain(2, 3000));
    scenario.scripts = vec![
        TaskScript {
            runs_for: 2000.0,
            ..TaskScript::default()
        };
        2
    ];
    // ECS calls: DescribeTaskDefinition, then RunTask, after which the process dies.
    scenario.ecs_faults = vec![(1, Injected::Crash)];
    let mut play = Play::new(&scenario);
    // Store calls of the first delivery: the look for an earlier record, the record.
    for call in 2..5_000 {
        play.backend
            .store
            .inject(call, Injected::Before(FaultKind::AccessDenied));
    }
    let began = play.backend.clock.now();
    let End::Answered(answer) = play
        .operate("CREATE", Some(&scenario.create), None, false, None, None)
        .expect("plays")
    else {
        panic!("not answered");
    };
    assert_eq!(answer["status"], "FAILED", "{answer}");
    assert_eq!(answer["errorCode"], "AccessDenied", "{answer}");
    let took = play.backend.clock.now() - began;
    assert!((600.0..700.0).contains(&took), "failed after {took} s");
    let state = play.ecs().lock();
    assert_eq!(
        state.tasks.len(),
        2,
        "the first delivery started both tasks"
    );
    assert!(
        state.tasks.iter().all(|t| t.stop_requested_at.is_some()),
        "a task of the failed CREATE was left running"
    );
}

/// The first invocation of a CREATE records its run, sends RunTask and dies before it
/// records the answer; from then on the store refuses every write (access denied), reads
/// still answered. The run is given the patience of a store that keeps failing (until 10
/// minutes past its deadline), then stops what it runs, the tasks of the launch it never
/// recorded included (found by their startedBy), and fails (README, "A parameter store that
/// keeps failing").
#[test]
fn a_run_that_can_never_write_its_record_again_stops_the_tasks_it_never_recorded() {
    let mut scenario = quiet(plain(2, 300));
    scenario.scripts = vec![
        TaskScript {
            runs_for: 2000.0,
            ..TaskScript::default()
        };
        2
    ];
    // ECS calls: DescribeTaskDefinition, then RunTask, after which the process dies.
    scenario.ecs_faults = vec![(1, Injected::Crash)];
    let mut play = Play::new(&scenario);
    // Store calls of the first delivery: the look for an earlier record, the record.
    play.backend
        .store
        .refused
        .lock()
        .expect("refusals")
        .insert("ssm:PutParameter", (2, FaultKind::AccessDenied));
    let began = play.backend.clock.now();
    let End::Answered(answer) = play
        .operate("CREATE", Some(&scenario.create), None, false, None, None)
        .expect("plays")
    else {
        panic!("not answered");
    };
    assert_eq!(answer["status"], "FAILED", "{answer}");
    let took = play.backend.clock.now() - began;
    assert!((900.0..1000.0).contains(&took), "failed after {took} s");
    let state = play.ecs().lock();
    assert_eq!(
        state.tasks.len(),
        2,
        "the first delivery started both tasks, and no delivery since started more"
    );
    assert!(
        state.tasks.iter().all(|t| t.stop_requested_at.is_some()),
        "a task of the failed CREATE was left running: {answer}"
    );
}

#[test]
fn invariants_hold_over_random_scenarios() {
    let cases = props::cases("TASKRUN_SCENARIOS", 10_000);
    let mut runner = props::runner(cases, true);
    let played = AtomicU64::new(0);
    let invocations = AtomicU64::new(0);
    let hits = std::sync::Mutex::new(Hits::default());
    let advanced = AtomicU64::new(0);
    // Rollbacks that undid a run (OnRollback): the undo checks are only as good as the
    // undos the scenarios reach.
    let undos = AtomicU64::new(0);
    let result = runner.run(&scenario(), |scenario| {
        let mut play = Play::new(&scenario);
        let mut outcome = play.play(&scenario);
        // ECS refuses a client token reused with other parameters (ConflictException):
        // the handler never sends one.
        let conflicts = play.ecs().lock().hits.token_conflicts;
        if outcome.is_ok() && conflicts > 0 {
            outcome = Err(fail(format!(
                "{conflicts} RunTask calls reused a client token with other parameters"
            )));
        }
        props::played_one(&played, cases, "invariants");
        invocations.fetch_add(play.invocations, Ordering::SeqCst);
        undos.fetch_add(play.undos, Ordering::SeqCst);
        if let Ok(mut total) = hits.lock() {
            total.add(&play.ecs().lock().hits);
        }
        advanced.fetch_add(
            play.backend.store.ever_advanced.load(Ordering::SeqCst),
            Ordering::SeqCst,
        );
        outcome
    });
    // Which of AWS's ways the scenarios met, and how often (a behaviour never met is a
    // world that does not exist in the test either).
    let total = hits.lock().map(|h| h.clone()).unwrap_or_default();
    let behaviours: Vec<(&str, u64)> = total
        .named()
        .into_iter()
        .filter(|(name, _)| !name.starts_with("client token"))
        .collect();
    let met = behaviours.iter().filter(|(_, n)| *n > 0).count();
    println!(
        "invariants: {} scenarios played ({} invocations of the real handler); AWS as it is: {met} of {} behaviours met",
        played.load(Ordering::SeqCst),
        invocations.load(Ordering::SeqCst),
        behaviours.len()
    );
    for (name, count) in total.named() {
        println!("  AWS as it is: {name}: {count}");
    }
    let undos = undos.load(Ordering::SeqCst);
    println!("  rollbacks that undid a run (OnRollback): {undos}");
    // About 6 in 1,000 scenarios: a run of many thousand that reached none has lost them.
    assert!(
        cases < 5000 || undos > 0,
        "{cases} scenarios and no undo: the undo checks checked nothing"
    );
    println!(
        "  records that became advanced SSM parameters (billed): {}",
        advanced.load(Ordering::SeqCst)
    );
    if let Err(e) = result {
        panic!("{e}");
    }
    if cases >= 2000 {
        permissions_match_the_calls_made();
    }
}

/// Every request the handler sends over the property scenarios is one AWS accepts: the
/// SDK's serialized requests, checked by the emulator's validator (the services'
/// published models and the documented limits; `emulator/check_requests.py`).
/// `TASKRUN_CONFORMANCE_SCENARIOS` sets how many scenarios (default 1,500).
#[test]
fn requests_conform_to_aws_rules() {
    let cases = props::cases("TASKRUN_CONFORMANCE_SCENARIOS", 1500);
    let wire = std::sync::Arc::new(wire::new());
    let summary = props::conform(
        &wire,
        scenario(),
        cases,
        "taskrun-requests.jsonl",
        |scenario| {
            let mut play = Play::on_the_wire(&scenario, Some(wire.clone()));
            play.play(&scenario)
        },
    );
    println!("conformance: {cases} scenarios: {summary}");
}

/// The schema's permissions per handler are exactly the calls its code made over the
/// scenarios (RunTask and StartTask with tags and roles need ecs:TagResource and
/// iam:PassRole too), so the two cannot drift apart.
fn permissions_match_the_calls_made() {
    // Rare paths random scenarios may miss: a DELETE that has to look for the tasks of a
    // StartTask whose answer never came (cut at its deadline) before CloudFormation gave up.
    replay(Scenario {
        create_abandon: Some(1),
        ecs_faults: vec![(2, Injected::Slow(70.0))],
        scripts: vec![
            TaskScript {
                runs_for: 1000.0,
                ..TaskScript::default()
            };
            3
        ],
        ops: vec![Op {
            kind: Kind::Delete,
            props: plain(1, 30),
            abandon_after: None,
            lose_answer: None,
            gap: 1.0,
            same_shape: false,
        }],
        ..quiet(Props {
            instances: 2,
            ..plain(1, 30)
        })
    });
    CALLS_BY_ACTION.match_permissions(taskrun::schema::SCHEMA_JSON, |made| {
        if made.contains("ecs:RunTask") || made.contains("ecs:StartTask") {
            made.insert("ecs:TagResource");
            made.insert("iam:PassRole");
        }
    });
}

#[test]
fn regression_delete_after_a_denied_launch_and_an_update_to_count_0() {
    // The CREATE began stopping (DescribeTasks denied) and was given up on with a task
    // ECS did not show yet; 14 minutes later each operation that took over gave up at once
    // (the 10 minutes to confirm counted from the first stop), so DELETE never succeeded
    // and the task ran on.
    let quick = TaskScript {
        runs_for: 0.0,
        exits: vec![("app".into(), Some(0)), ("sidecar".into(), Some(0))],
        stop_takes: 0.0,
        ..TaskScript::default()
    };
    let mut create = plain(8, 30);
    create.log_tail = 0;
    let mut update = plain(0, 30);
    update.log_tail = 0;
    replay(Scenario {
        create_abandon: Some(1),
        ops: vec![Op {
            kind: Kind::Update { rollback: false },
            props: update,
            abandon_after: None,
            lose_answer: None,
            gap: 852.385_740_490_016_1,
            same_shape: false,
        }],
        scripts: vec![
            quick.clone(),
            quick.clone(),
            quick.clone(),
            TaskScript {
                runs_for: 1_130.885_325_815_146_2,
                invisible_for: 8.512_141_604_358_343,
                ..quick
            },
        ],
        ecs_faults: vec![(2, Injected::Before(FaultKind::AccessDenied))],
        ..quiet(create)
    });
}

/// Found by the property test once ListTasks could lag behind DescribeTasks (AWS as it
/// is): a StartTask CREATE whose run failed in its first invocation (an instance without
/// room) answered FAILED and deleted its record; that answer was lost, and the CREATE
/// delivered again found no record, asked ListTasks (which did not show the earlier
/// tasks yet) and started the tasks a second time.
#[test]
fn regression_start_task_create_failed_answer_lost_while_list_tasks_lags() {
    let mut create = plain(1, 30);
    create.instances = 3;
    create.log_tail = 0;
    replay(Scenario {
        world: Adversity {
            list_lag: 7.1,
            ..Adversity::default()
        },
        create_lose: Some(0),
        not_placed: vec![1],
        ..quiet(create)
    });
}

/// Found by the property test: a StartTask whose answer was lost (the process died) was
/// looked up once; ECS showed one of its two tasks, so the other was taken as "not
/// started", the run failed, its record went, and that task ran on unobserved once ECS
/// showed it. The lookup now goes on for five minutes until every task is found.
#[test]
fn regression_start_task_lookup_finds_only_some_tasks_at_first() {
    let mut create = plain(1, 30);
    create.instances = 2;
    create.log_tail = 0;
    replay(Scenario {
        scripts: vec![
            TaskScript {
                runs_for: 276.0,
                invisible_for: 9.7,
                stop_takes: 0.0,
                ..TaskScript::default()
            },
            TaskScript {
                runs_for: 0.0,
                stop_takes: 0.0,
                ..TaskScript::default()
            },
        ],
        ecs_faults: vec![(2, Injected::Crash)],
        not_placed: vec![0],
        ..quiet(create)
    });
}

/// Found by the property test once a refusal that started nothing stopped sweeping for
/// strays (issue 15, row 20): the process died right after a RunTask that started the
/// task; the CREATE delivered again sent RunTask again (same token) and was refused
/// (AccessDenied). That refusal says nothing of the first call: the run must look for
/// what it started. Sends are now recorded before the call.
#[test]
fn regression_run_task_refused_after_an_unanswered_send() {
    let mut create = plain(1, 30);
    create.log_tail = 0;
    replay(Scenario {
        scripts: vec![TaskScript {
            runs_for: 3.6,
            stop_takes: 0.0,
            ..TaskScript::default()
        }],
        ecs_faults: vec![
            (1, Injected::Crash),
            (2, Injected::Before(FaultKind::AccessDenied)),
        ],
        ..quiet(create)
    });
}

/// Found by the conformance run once a run recorded RunTask's answers only with its next
/// durable change (issue 16): a CREATE given up on while its tasks ran left a record
/// without their ARNs; the UPDATE that took over swept for them once, 15 s after it began
/// stopping, while ListTasks (behind by more than that) did not show them yet, and they
/// ran on. The sweep now looks until it found as many tasks as the unrecorded launches may
/// have started, up to five minutes.
#[test]
fn regression_a_sweep_outlasts_list_tasks_lag() {
    let mut create = plain(2, 600);
    create.log_tail = 0;
    let mut update = plain(1, 600);
    update.triggers = 1;
    update.log_tail = 0;
    replay(Scenario {
        world: Adversity {
            list_lag: 60.0,
            ..Adversity::default()
        },
        scripts: vec![
            TaskScript {
                runs_for: 900.0,
                ..TaskScript::default()
            };
            2
        ],
        create_abandon: Some(1),
        ops: vec![Op {
            kind: Kind::Update { rollback: false },
            props: update,
            abandon_after: None,
            lose_answer: None,
            gap: 1.0,
            same_shape: false,
        }],
        ..quiet(create)
    });
}

/// Found by the property test (issue 16 work): a StartTask CREATE whose first record
/// write was carried out but answered as throttled.
#[test]
fn regression_start_task_first_write_acted_then_throttled() {
    let mut create = plain(4, 316);
    create.instances = 1;
    create.log_tail = 0;
    replay(Scenario {
        scripts: vec![TaskScript {
            runs_for: 15.55,
            invisible_for: 9.67,
            stop_takes: 0.0,
            ..TaskScript::default()
        }],
        store_faults: vec![(1, Injected::After(FaultKind::Throttled))],
        ..quiet(create)
    });
}

/// Found by the property run: a CREATE given up on while a task is still provisioning,
/// then an UPDATE that does not run; the leftover task must still be followed or stopped.
#[test]
fn regression_update_after_an_abandoned_create_with_a_provisioning_task() {
    let create = Props {
        count: 2,
        timeout: 681,
        poll: 2,
        run_on_update: Some(true),
        criteria: true,
        triggers: 1,
        tag: 1,
        db_host: 2,
        as_strings: true,
        retry: 5,
        retry_exits: true,
        log_tail: 0,
        ..plain(2, 681)
    };
    let update = Props {
        count: 1,
        timeout: 673,
        poll: 40,
        triggers: 2,
        log_tail: 0,
        adopt: true,
        ..plain(1, 673)
    };
    replay(Scenario {
        stack_updating: true,
        create_abandon: Some(3),
        ops: vec![Op {
            kind: Kind::Update { rollback: false },
            props: update,
            abandon_after: None,
            lose_answer: None,
            gap: 106.62,
            same_shape: false,
        }],
        scripts: vec![
            TaskScript {
                runs_for: 1127.71,
                never_starts: true,
                exits: vec![("app".into(), Some(0)), ("sidecar".into(), Some(0))],
                exit_on_stop: Some(143),
                stop_takes: 16.0,
                logs: vec!["working".into(), "TASKRUN_OUTPUT last 0".into()],
                ..TaskScript::default()
            },
            TaskScript {
                runs_for: 364.43,
                exits: vec![("app".into(), Some(137)), ("sidecar".into(), Some(0))],
                exit_on_stop: Some(0),
                stop_takes: 20.5,
                invisible_for: 6.31,
                ..TaskScript::default()
            },
        ],
        ecs_faults: vec![
            (68, Injected::Crash),
            (49, Injected::Before(FaultKind::BadRequest)),
            (37, Injected::Before(FaultKind::AccessDenied)),
            (98, Injected::Crash),
        ],
        store_faults: vec![
            (56, Injected::Before(FaultKind::Throttled)),
            (1, Injected::Crash),
            (24, Injected::Before(FaultKind::Throttled)),
            (10, Injected::After(FaultKind::ServerSide)),
        ],
        ..quiet(create)
    });
}

/// Undo on rollback, played: an update with OnRollback runs and succeeds, then
/// CloudFormation rolls it back; the rollback's answer is lost once (delivered again).
#[test]
fn an_update_rolled_back_is_undone_once() {
    let update = |undo: u8, triggers: u8, rollback: bool, lose_answer: Option<u8>| Op {
        kind: Kind::Update { rollback },
        props: Props {
            undo,
            triggers,
            as_strings: true,
            ..plain(1, 600)
        },
        abandon_after: None,
        lose_answer,
        gap: 5.0,
        same_shape: false,
    };
    let scenario = Scenario {
        ops: vec![
            update(1, 1, false, None),
            update(0, 0, true, Some(1)),
            update(0, 0, true, None),
        ],
        ..quiet(plain(1, 600))
    };
    let mut play = Play::new(&scenario);
    if let Err(e) = play.play(&scenario) {
        panic!("{e}");
    }
    assert_eq!(play.undos, 1, "one undo");
}
