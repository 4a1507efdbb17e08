//! What must always hold for a ServiceRestart, checked over random scenarios played as
//! CloudFormation plays them (the real handlers over the in-memory ECS and store, on a
//! virtual clock), with faults before and after ECS acted, slow calls, the process dying
//! after any call (the invocation then delivered again) and answers lost (delivered twice):
//!
//! - an operation starts at most one deployment (UpdateService has no idempotency token),
//!   and the deployment it reports is one it started;
//! - SUCCESS only for a deployment that COMPLETED with every task running (STEADY_STATE),
//!   or that exists (STARTED), by the simulation's ground truth; where ECS shows no
//!   `rolloutState` (Classic Load Balancer), only once it is the PRIMARY and only deployment
//!   listed, running its desired count;
//! - in a world without faults, a deployment that is steady well before the Timeout ends
//!   in SUCCESS (not TIMED_OUT);
//! - never an UpdateService on a CODE_DEPLOY or EXTERNAL service: refused before, with
//!   a reason naming the controller;
//! - a service named by a short (pre-2021) ARN without `Cluster` is refused before any ECS
//!   call, with a reason that asks for `Cluster`;
//! - a TIMED_OUT while the deployment waits at a lifecycle hook names the stage and what
//!   to do;
//! - CREATE and UPDATE never answer a retriable code (CloudFormation would start the
//!   operation over, restarting the service again), even past the give-up time;
//! - every answer a valid progress event, CREATE/UPDATE ones with the model and its Id;
//! - no invocation past its 60 s;
//! - a record exists exactly when the resource does (unless the store could not be reached
//!   until the operation gave up, which its reason says).
//!
//! The world is chosen at random per scenario (see `service_restart::sim`, each behaviour
//! citing its AWS page): CODE_DEPLOY and EXTERNAL services, services behind a Classic Load
//! Balancer, short service ARNs, deployments waiting at a lifecycle hook, DescribeServices
//! lagging behind UpdateService, and long store outages, besides the faults. The run
//! prints how often each was hit.
//!
//! `SERVICERESTART_SCENARIOS` sets how many scenarios run (default 3,000).
//!
//! `requests_conform_to_aws_rules` plays the same scenarios with every ECS and SSM call
//! also made through the real SDK gateways (see `wire`), and checks each request as AWS
//! would (`emulator/check_requests.py`); `SERVICERESTART_CONFORMANCE_SCENARIOS` sets how
//! many (default 600).

mod wire;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use handler_kit::clock::Clock;
use handler_kit::fault::FaultKind;
use handler_kit::store::Injected;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::{json, Value};
use service_restart::resource::ServiceRestart;
use service_restart::sim::{
    Controller, DeploymentScript, HookScript, ServiceSetup, SimBackend, SimServices,
};
use test_support::cfn::{called_back, next_token, null_at, poll_to_end, Call, Polled, Template};
use test_support::props;
use wire::{Wire, WireBackend};

const START: f64 = 1_700_000_000.0;
const STACK: &str = "arn:aws:cloudformation:us-east-1:123456789012:stack/s/1";

#[derive(Debug, Clone)]
struct Update {
    trigger: u8,
    rollback: bool,
    run_on_rollback: bool,
    restart_on_update: bool,
    /// This invocation's answer is lost: CloudFormation delivers it again.
    lose: Option<u8>,
    /// Seconds before the update arrives.
    gap: f64,
}

#[derive(Debug, Clone)]
struct Scenario {
    wait_started: bool,
    timeout: u32,
    /// The service is named by its ARN (the cluster then comes from it when the ARN is
    /// a long one).
    by_arn: bool,
    /// `Cluster` is given although the service is named by its ARN.
    arn_with_cluster: bool,
    /// The service does not exist.
    missing: bool,
    /// What kind of service it is (controller, load balancer, ARN, hooks, lag).
    setup: ServiceSetup,
    /// The store fails every call from the first to the second number (excluded).
    store_outage: Option<(u64, u64)>,
    scripts: Vec<DeploymentScript>,
    ecs_faults: Vec<(u64, Injected)>,
    store_faults: Vec<(u64, Injected)>,
    lose: Option<u8>,
    updates: Vec<Update>,
    delete_lose: Option<u8>,
}

fn kind() -> impl Strategy<Value = FaultKind> {
    prop_oneof![
        Just(FaultKind::Throttled),
        Just(FaultKind::ServerSide),
        Just(FaultKind::Network)
    ]
}

fn injected() -> impl Strategy<Value = Injected> {
    let mix = props::FaultMix {
        before: 3,
        after: 3,
        slow: 1,
        crash: 2,
    };
    props::injected(kind(), 0.5f64..70.0, mix)
}

fn lose() -> impl Strategy<Value = Option<u8>> {
    prop_oneof![3 => Just(None), 1 => (0u8..4).prop_map(Some)]
}

fn update() -> impl Strategy<Value = Update> {
    (
        0u8..3,
        prop::bool::weighted(0.3),
        any::<bool>(),
        prop::bool::weighted(0.85),
        lose(),
        prop_oneof![0.0f64..5.0, 0.0f64..600.0],
    )
        .prop_map(
            |(trigger, rollback, run_on_rollback, restart_on_update, lose, gap)| Update {
                trigger,
                rollback,
                run_on_rollback,
                restart_on_update,
                lose,
                gap,
            },
        )
}

fn hook() -> impl Strategy<Value = Option<HookScript>> {
    let stage = prop_oneof![
        Just("PRE_SCALE_UP"),
        Just("POST_SCALE_UP"),
        Just("POST_TEST_TRAFFIC_SHIFT"),
        Just("PRE_PRODUCTION_TRAFFIC_SHIFT"),
    ];
    prop_oneof![
        1 => Just(None),
        1 => (
            any::<bool>(),
            stage,
            prop_oneof![2 => (1.0f64..300.0).prop_map(Some), 1 => Just(None)],
        )
            .prop_map(|(pause, stage, holds_for)| Some(HookScript {
                pause,
                stage: stage.to_string(),
                holds_for,
            })),
    ]
}

fn setup() -> impl Strategy<Value = ServiceSetup> {
    (
        prop_oneof![
            8 => Just(Controller::Ecs),
            1 => Just(Controller::CodeDeploy),
            1 => Just(Controller::External),
        ],
        prop::bool::weighted(0.2),
        prop::bool::weighted(0.2),
        prop::bool::weighted(0.35),
        prop_oneof![Just(0.0), 0.0f64..15.0],
    )
        .prop_map(
            |(controller, classic_load_balancer, short_arn, hooks, describe_lag)| ServiceSetup {
                controller,
                classic_load_balancer,
                short_arn,
                // Lifecycle hooks are a deployment configuration of the ECS controller.
                lifecycle_hooks: hooks && controller == Controller::Ecs,
                describe_lag,
            },
        )
}

fn scenario() -> impl Strategy<Value = Scenario> {
    let script = (
        prop_oneof![3 => (0.0f64..200.0).prop_map(Some), 1 => Just(None)],
        prop::bool::weighted(0.25),
        0.0f64..20.0,
        hook(),
    )
        .prop_map(|(ends_after, fails, steady_after, hook)| DeploymentScript {
            ends_after,
            fails,
            steady_after,
            hook,
        });
    (
        (
            any::<bool>(),
            30u32..400,
            any::<bool>(),
            prop::bool::weighted(0.05),
            any::<bool>(),
            setup(),
            prop_oneof![19 => Just(None), 1 => (0u64..20, 250u64..420).prop_map(|(from, n)| Some((from, from + n)))],
        ),
        prop::collection::vec(script, 0..4),
        prop::collection::vec((0u64..40, injected()), 0..5),
        prop::collection::vec((0u64..30, injected()), 0..4),
        lose(),
        prop::collection::vec(update(), 0..4),
        lose(),
    )
        .prop_map(
            |(
                (wait_started, timeout, by_arn, missing, arn_with_cluster, setup, store_outage),
                scripts,
                ecs_faults,
                store_faults,
                lose,
                updates,
                delete_lose,
            )| Scenario {
                wait_started,
                timeout,
                by_arn,
                arn_with_cluster,
                missing,
                setup,
                store_outage,
                scripts,
                ecs_faults,
                store_faults,
                lose,
                updates,
                delete_lose,
            },
        )
}

struct Play {
    backend: SimBackend,
    /// The handlers, over the simulation (and on the wire when a [`Wire`] is on).
    resource: ServiceRestart<WireBackend>,
    id: Option<String>,
    invocations: u64,
    /// When the last operation began.
    op_started: f64,
    /// ECS calls the last operation made.
    op_ecs_calls: u64,
}

/// Every operation each handler made, over every scenario played.
static CALLS_BY_ACTION: props::CallsByAction = props::CallsByAction::new();

fn fail(message: String) -> TestCaseError {
    TestCaseError::fail(message)
}

/// Codes CloudFormation answers by starting the operation over ("Resource type handler
/// error codes", Type: Retriable).
const RETRIABLE: [&str; 3] = ["Throttling", "NetworkFailure", "ServiceInternalError"];

/// What the reason of an operation that gave up on an unreachable store says.
const GAVE_UP: &str = "could not be reached";

impl Play {
    /// The scenario's world; with `wire`, every call is also made through the SDK.
    fn on_the_wire(s: &Scenario, wire: Option<Arc<Wire>>) -> Self {
        let backend = SimBackend::new(START);
        if !s.missing {
            backend
                .gateway
                .clone()
                .with_service_setup("c", "api", s.setup.clone());
        }
        {
            let mut state = backend.gateway.lock();
            state.scripts = s.scripts.clone();
            state.plan.faults = s.ecs_faults.iter().cloned().collect();
        }
        for (call, fault) in &s.store_faults {
            backend.store.inject(*call, *fault);
        }
        if let Some((from, to)) = s.store_outage {
            for call in from..to {
                let kind = if call % 2 == 0 {
                    FaultKind::Throttled
                } else {
                    FaultKind::ServerSide
                };
                backend.store.inject(call, Injected::Before(kind));
            }
        }
        Self {
            resource: ServiceRestart::new(WireBackend {
                sim: backend.clone(),
                wire,
            }),
            backend,
            id: None,
            invocations: 0,
            op_started: START,
            op_ecs_calls: 0,
        }
    }

    /// Ids of the deployments UpdateService started so far.
    fn started_ids(&self) -> BTreeSet<String> {
        self.backend
            .gateway
            .lock()
            .services
            .values()
            .flat_map(|s| &s.deployments)
            .filter(|d| d.by_update)
            .map(|d| d.id.clone())
            .collect()
    }

    fn invoke(&mut self, event: &Value) -> Result<Option<Value>, TestCaseError> {
        self.invocations += 1;
        let answer = self.invoke_inner(event);
        let ecs = std::mem::take(&mut self.backend.gateway.lock().plan.call_log);
        let store = props::taken(&self.backend.store);
        if std::env::var_os("TRACE").is_some() {
            let action = event["action"].as_str().unwrap_or_default().to_lowercase();
            eprintln!(
                "t={:.1} {action} ctx={} -> {} {ecs:?} {store:?}",
                self.backend.clock.now() - START,
                event.get("callbackContext").is_some(),
                match &answer {
                    Ok(Some(a)) => a.to_string(),
                    Ok(None) => "(died)".into(),
                    Err(e) => e.to_string(),
                }
            );
        }
        CALLS_BY_ACTION.record(event, ecs, store);
        answer
    }

    fn invoke_inner(&mut self, event: &Value) -> Result<Option<Value>, TestCaseError> {
        let began = self.backend.clock.now();
        let deadline = UNIX_EPOCH + Duration::from_secs_f64(began + 60.0);
        let bytes = event.to_string();
        let invocation = cfn_protocol::dispatch(&self.resource, bytes.as_bytes(), Some(deadline));
        let polled = poll_to_end(invocation, || {
            std::mem::take(&mut self.backend.gateway.lock().plan.crashed)
                | self.backend.store.crashed.swap(false, Ordering::SeqCst)
        });
        match polled {
            Polled::Answered(answer) => {
                let took = self.backend.clock.now() - began;
                if took > 60.0 {
                    return Err(fail(format!("an invocation took {took:.1} s")));
                }
                Ok(Some(answer))
            }
            Polled::Died => {
                self.backend.clock.advance(1.0);
                Ok(None)
            }
            Polled::Stuck => Err(fail("an invocation never finished".into())),
        }
    }

    fn envelope(
        &self,
        action: &str,
        token: &str,
        props: &Value,
        context: Option<&Value>,
        rollback: bool,
    ) -> Value {
        let template = Template {
            head: json!({"region": "us-east-1", "stackId": STACK}),
            request_data: json!({"callerCredentials": {"accessKeyId": "AKIAEXAMPLE", "secretAccessKey": "s"},
                "logicalResourceId": "Restart"}),
            strings: false,
        };
        template.envelope(&Call {
            action,
            token,
            properties: Some(props),
            context,
            rollback,
            ..Call::default()
        })
    }

    /// One operation to its end: its answer and the deployments started during it.
    fn operate(
        &mut self,
        action: &str,
        props: Value,
        lose: Option<u8>,
        rollback: bool,
    ) -> Result<(Value, usize), TestCaseError> {
        let token = next_token("t");
        if action == "CREATE" {
            self.id = Some(handler_kit::ids::resource_id(
                "ServiceRestart",
                Some(STACK),
                Some("Restart"),
                Some(&token),
            ));
        }
        let before = self.backend.gateway.started();
        let ids_before = self.started_ids();
        let calls_before = self.backend.gateway.lock().plan.calls;
        self.op_started = self.backend.clock.now();
        let mut properties = props;
        let mut context: Option<Value> = None;
        for n in 0..2000u32 {
            let event = self.envelope(action, &token, &properties, context.as_ref(), rollback);
            if lose == Some(n as u8) {
                if let Some(answer) = self.invoke(&event)? {
                    self.check_event(action, &answer)?;
                }
            }
            let Some(answer) = self.invoke(&event)? else {
                continue;
            };
            self.check_event(action, &answer)?;
            let status = answer["status"].as_str().unwrap_or_default();
            if status != "IN_PROGRESS" {
                let started = self.backend.gateway.started() - before;
                self.op_ecs_calls = self.backend.gateway.lock().plan.calls - calls_before;
                if started > 1 {
                    return Err(fail(format!("{action} started {started} deployments")));
                }
                let foreign = self.backend.gateway.lock().updates_of_foreign_controllers;
                if foreign > 0 {
                    return Err(fail(format!(
                        "{action} sent UpdateService to a CODE_DEPLOY or EXTERNAL service ({foreign} times): {answer}"
                    )));
                }
                let model = &answer["resourceModel"];
                if status == "SUCCESS" && model["Status"] == "SUCCEEDED" {
                    self.check_succeeded(model)?;
                    let ours: BTreeSet<String> = self
                        .started_ids()
                        .difference(&ids_before)
                        .cloned()
                        .collect();
                    let reported = model["DeploymentId"].as_str().unwrap_or_default();
                    if started == 1 && !ours.contains(reported) {
                        return Err(fail(format!(
                            "{action} reports deployment {reported}, not the one it started ({ours:?}): {answer}"
                        )));
                    }
                }
                return Ok((answer, started));
            }
            self.backend
                .clock
                .advance(answer["callbackDelaySeconds"].as_f64().unwrap_or(1.0));
            called_back(action, &answer, &mut context, &mut properties);
        }
        Err(fail(format!("{action} never ended")))
    }

    /// Every answer: a progress event as the Registry reads it.
    fn check_event(&self, action: &str, answer: &Value) -> Result<(), TestCaseError> {
        let status = answer["status"].as_str().unwrap_or_default();
        if !matches!(status, "SUCCESS" | "FAILED" | "IN_PROGRESS") {
            return Err(fail(format!("an answer without a status: {answer}")));
        }
        if let Some(path) = null_at(answer) {
            return Err(fail(format!("a null at {path}: {answer}")));
        }
        if matches!(action, "CREATE" | "UPDATE")
            && status != "FAILED"
            && answer["resourceModel"]["Id"].as_str() != self.id.as_deref()
        {
            return Err(fail(format!(
                "a {action} {status} event without the model's Id: {answer}"
            )));
        }
        if action == "DELETE" && status == "SUCCESS" && answer.get("resourceModel").is_some() {
            return Err(fail(format!("a DELETE SUCCESS with a model: {answer}")));
        }
        if status == "FAILED"
            && matches!(answer["errorCode"].as_str(), None | Some("InternalFailure"))
        {
            return Err(fail(format!(
                "a FAILED event without a proper code: {answer}"
            )));
        }
        if matches!(action, "CREATE" | "UPDATE")
            && RETRIABLE.contains(&answer["errorCode"].as_str().unwrap_or_default())
        {
            return Err(fail(format!(
                "a {action} answered a retriable code: CloudFormation would start it over (restart the service again): {answer}"
            )));
        }
        // A deployment seen waiting at a lifecycle hook: the IN_PROGRESS answer says where.
        if let Some(stage) = answer["callbackContext"]["restart"]["waiting"]["stage"].as_str() {
            let message = answer["message"].as_str().unwrap_or_default();
            // (Unless it says something more pressing: why an update restarts, or a
            // passing fault.)
            let other = message.starts_with("restarted: ") || message.starts_with("will try again");
            if !message.contains(stage) && !other {
                return Err(fail(format!(
                    "an IN_PROGRESS of a deployment waiting at {stage} does not say so: {answer}"
                )));
            }
        }
        if status == "IN_PROGRESS" && answer.get("callbackContext").is_none() {
            return Err(fail(format!("IN_PROGRESS without a context: {answer}")));
        }
        Ok(())
    }

    /// The deployment named really completed, with every task running unless STARTED;
    /// where ECS shows no rolloutState, it is also the PRIMARY and only deployment listed,
    /// running its desired count (as ECS's services-stable waiter judges).
    fn check_succeeded(&self, model: &Value) -> Result<(), TestCaseError> {
        let id = model["DeploymentId"].as_str().unwrap_or_default();
        let now = self.backend.clock.now();
        let Some((key, _, d)) = self.backend.gateway.deployment(id) else {
            return Err(fail(format!(
                "SUCCEEDED names a deployment ECS never had: {model}"
            )));
        };
        if !d.by_update {
            return Err(fail(format!(
                "SUCCEEDED names a deployment no restart started: {model}"
            )));
        }
        if model["WaitFor"] == "STARTED" {
            return Ok(());
        }
        if d.steady_at().is_none_or(|at| at > now) {
            return Err(fail(format!(
                "wrong SUCCESS: deployment {id} {:?} (now {now})",
                d.script
            )));
        }
        let state = self.backend.gateway.lock();
        let Some(truth) = SimServices::shown(&state, &key, now, false) else {
            return Err(fail(format!(
                "SUCCEEDED for a service that is gone: {model}"
            )));
        };
        let Some(ours) = truth.deployments.iter().find(|x| x.id == id) else {
            return Err(fail(format!(
                "SUCCEEDED for an unlisted deployment: {model}"
            )));
        };
        let alone = truth.deployments.len() == 1;
        if ours.status != "PRIMARY"
            || ours.running != ours.desired
            || (ours.rollout_state.is_none() && !alone)
        {
            return Err(fail(format!(
                "wrong SUCCESS: deployment {id} is not the only PRIMARY running its desired count: {truth:?}"
            )));
        }
        Ok(())
    }

    fn recorded(&self) -> bool {
        let Some(id) = &self.id else { return false };
        self.backend
            .store
            .snapshot()
            .contains_key(&format!("/org-ecs-servicerestart/runs/{id}"))
    }

    /// READ and LIST agree with whether the resource exists (a passing store fault may
    /// make them fail with a retriable code, never answer wrongly).
    fn check_read_and_list(&mut self, exists: bool) -> Result<(), TestCaseError> {
        let Some(id) = self.id.clone() else {
            return Ok(());
        };
        let transient = |a: &Value| {
            matches!(
                a["errorCode"].as_str(),
                Some("Throttling" | "ServiceInternalError" | "NetworkFailure")
            )
        };
        let read = self.envelope("READ", "r", &json!({"Id": id}), None, false);
        if let Some(answer) = self.invoke(&read)? {
            let found = answer["status"] == "SUCCESS" && answer["resourceModel"]["Id"] == id;
            let not_found = answer["errorCode"] == "NotFound";
            if !(transient(&answer) || (exists && found) || (!exists && not_found)) {
                return Err(fail(format!("READ (exists = {exists}) answered {answer}")));
            }
        }
        let list = self.envelope("LIST", "l", &json!({}), None, false);
        if let Some(answer) = self.invoke(&list)? {
            if !transient(&answer) {
                let listed = answer["resourceModels"]
                    .as_array()
                    .is_some_and(|models| models.iter().any(|m| m["Id"] == id));
                if answer["status"] != "SUCCESS" || listed != exists {
                    return Err(fail(format!("LIST (exists = {exists}) answered {answer}")));
                }
            }
        }
        Ok(())
    }
}

/// Which behaviours of the world a scenario met (printed at the end of the run).
#[derive(Debug, Default, Clone, Copy)]
struct Hits {
    code_deploy: bool,
    external: bool,
    without_rollout_state: bool,
    short_arn_with_cluster: bool,
    short_arn_without_cluster: bool,
    hook_wait_seen: bool,
    hook_wait_timed_out: bool,
    describe_lagged: bool,
    gave_up_on_the_store: bool,
}

const HIT_NAMES: [&str; 9] = [
    "CODE_DEPLOY service, refused before any UpdateService",
    "EXTERNAL service, refused before any UpdateService",
    "DescribeServices without rolloutState (Classic Load Balancer)",
    "short service ARN with Cluster",
    "short service ARN without Cluster, refused",
    "deployment seen waiting at a lifecycle hook",
    "TIMED_OUT at a lifecycle hook, reported",
    "DescribeServices not yet showing a new deployment",
    "store unreachable until the give-up time",
];

impl Hits {
    fn flags(&self) -> [bool; 9] {
        [
            self.code_deploy,
            self.external,
            self.without_rollout_state,
            self.short_arn_with_cluster,
            self.short_arn_without_cluster,
            self.hook_wait_seen,
            self.hook_wait_timed_out,
            self.describe_lagged,
            self.gave_up_on_the_store,
        ]
    }
}

/// No fault of any kind: every delay is the world's own.
fn without_faults(s: &Scenario) -> bool {
    s.ecs_faults.is_empty()
        && s.store_faults.is_empty()
        && s.store_outage.is_none()
        && s.lose.is_none()
}

/// The invariants of one CREATE or UPDATE that ended, about the kind of service it met.
fn check_world(
    p: &Play,
    s: &Scenario,
    action: &str,
    answer: &Value,
    hits: &mut Hits,
) -> Result<(), TestCaseError> {
    let status = answer["status"].as_str().unwrap_or_default();
    let code = answer["errorCode"].as_str().unwrap_or_default();
    let message = answer["message"].as_str().unwrap_or_default();
    let short_arn_alone = s.by_arn && s.setup.short_arn && !s.arn_with_cluster;
    if short_arn_alone && !s.missing {
        hits.short_arn_without_cluster = true;
        if status != "FAILED"
            || code != "InvalidRequest"
            || !message.contains("Cluster")
            || p.op_ecs_calls > 0
        {
            return Err(fail(format!(
                "a short service ARN without Cluster must be refused before any ECS call ({} calls), asking for Cluster: {answer}",
                p.op_ecs_calls
            )));
        }
        return Ok(());
    }
    if s.by_arn && s.setup.short_arn && !s.missing {
        hits.short_arn_with_cluster = true;
    }
    let controller = s.setup.controller;
    if controller != Controller::Ecs && !s.missing && status != "IN_PROGRESS" {
        match controller {
            Controller::CodeDeploy => hits.code_deploy = true,
            _ => hits.external = true,
        }
        // A passing fault may end it before the service was read (TIMED_OUT).
        if status == "SUCCESS" || (code == "InvalidRequest" && !message.contains(controller.name()))
        {
            return Err(fail(format!(
                "a {} service must be refused with a reason naming its controller: {answer}",
                controller.name()
            )));
        }
    }
    let model = &answer["resourceModel"];
    let deployment = model["DeploymentId"].as_str().unwrap_or_default();
    let now = p.backend.clock.now();
    let truth = p.backend.gateway.deployment(deployment);
    // Waiting at a hook when the Timeout came: the reason says where, and what to do.
    if code == "NotStabilized" && !message.contains(GAVE_UP) {
        if let Some((_, _, d)) = &truth {
            let seen = p.backend.gateway.lock().hook_waits_shown.contains(&d.id);
            if d.held_at(now) && (seen || without_faults(s)) {
                hits.hook_wait_timed_out = true;
                let hook = d.script.hook.as_ref().map(|h| (h.stage.clone(), h.pause));
                let (stage, pause) = hook.unwrap_or_default();
                let todo = if pause {
                    "continue-service-deployment"
                } else {
                    "Lambda"
                };
                if !message.contains(&stage) || !message.contains(todo) {
                    return Err(fail(format!(
                        "{action} timed out while deployment {deployment} waits at a hook ({stage}): the reason must name the stage and {todo:?}: {message}"
                    )));
                }
            }
        }
    }
    // Without faults, a deployment steady well before the Timeout is a SUCCESS.
    if without_faults(s) && !s.wait_started && controller == Controller::Ecs && status == "FAILED" {
        if let Some((_, _, d)) = &truth {
            let deadline = p.op_started + f64::from(s.timeout);
            let margin = 5.0 + s.setup.describe_lag + 2.0;
            if d.by_update && d.steady_at().is_some_and(|at| at + margin < deadline) {
                return Err(fail(format!(
                    "{action}: deployment {deployment} was steady at {:?} (deadline {deadline}) but the restart ended {code}: {message}",
                    d.steady_at()
                )));
            }
        }
    }
    Ok(())
}

fn play(s: &Scenario) -> Result<(u64, Hits), TestCaseError> {
    play_on(s, None)
}

fn play_on(s: &Scenario, wire: Option<Arc<Wire>>) -> Result<(u64, Hits), TestCaseError> {
    let mut hits = Hits::default();
    let mut p = Play::on_the_wire(s, wire);
    let arn = SimServices::arn("c", "api", &s.setup);
    let service = if s.by_arn { arn.as_str() } else { "api" };
    let props = |trigger: u8, update: Option<&Update>| {
        let mut props = json!({"Service": service, "Triggers": [format!("v{trigger}")],
            "Timeout": s.timeout, "PollInterval": 5,
            "WaitFor": if s.wait_started { "STARTED" } else { "STEADY_STATE" }});
        if !s.by_arn || s.arn_with_cluster {
            props["Cluster"] = json!("c");
        }
        if let Some(u) = update {
            props["RunOnRollback"] = json!(u.run_on_rollback);
            props["RestartOnUpdate"] = json!(u.restart_on_update);
        }
        props
    };
    let result = play_operations(&mut p, s, &props, &mut hits);
    {
        let state = p.backend.gateway.lock();
        hits.describe_lagged = state.lagged_answers > 0;
        hits.without_rollout_state =
            state.answers_without_rollout_state > 0 && s.setup.controller == Controller::Ecs;
        hits.hook_wait_seen = !state.hook_waits_shown.is_empty();
    }
    result.map(|()| (p.invocations, hits))
}

/// Whether an answer is an operation that gave up on an unreachable store (the record may
/// then be left as it was).
fn gave_up(answer: &Value) -> bool {
    answer["errorCode"] == "NotStabilized"
        && answer["message"]
            .as_str()
            .is_some_and(|m| m.contains(GAVE_UP))
}

fn play_operations(
    p: &mut Play,
    s: &Scenario,
    props: &dyn Fn(u8, Option<&Update>) -> Value,
    hits: &mut Hits,
) -> Result<(), TestCaseError> {
    let (created, started) = p.operate("CREATE", props(0, None), s.lose, false)?;
    check_world(p, s, "CREATE", &created, hits)?;
    hits.gave_up_on_the_store |= gave_up(&created);
    let exists = created["status"] == "SUCCESS";
    if p.recorded() != exists && !gave_up(&created) {
        return Err(fail(format!(
            "after CREATE {}: recorded = {}",
            created["status"],
            p.recorded()
        )));
    }
    if s.missing && (exists || started > 0) {
        return Err(fail(format!("a service that does not exist: {created}")));
    }
    if !gave_up(&created) {
        p.check_read_and_list(exists)?;
    }
    if !exists {
        return Ok(());
    }
    // The triggers of the last restart that succeeded (`None`: not known, after an
    // operation that gave up on the store: its restart may have succeeded, and been
    // recorded so, before the store went away).
    let mut baseline = Some(0u8);
    for u in &s.updates {
        p.backend.clock.advance(u.gap);
        let mut desired = props(u.trigger, Some(u));
        desired["Id"] = json!(p.id);
        let (answer, started) = p.operate("UPDATE", desired, u.lose, u.rollback)?;
        check_world(p, s, "UPDATE", &answer, hits)?;
        hits.gave_up_on_the_store |= gave_up(&answer);
        let skip = !u.restart_on_update || (u.rollback && !u.run_on_rollback);
        if skip && started > 0 {
            return Err(fail(format!(
                "an update that must not restart did ({u:?}): {answer}"
            )));
        }
        if baseline == Some(u.trigger) && started > 0 {
            return Err(fail(format!(
                "an unchanged update restarted the service: {answer}"
            )));
        }
        let changed = baseline.is_some_and(|b| b != u.trigger);
        if !skip && changed && answer["status"] == "SUCCESS" && started != 1 {
            return Err(fail(format!(
                "a changed update answered SUCCESS having started {started} deployments: {answer}"
            )));
        }
        // The baseline is the last restart that succeeded: one that failed leaves the
        // service on the deployment before it (the circuit breaker rolled it back). An
        // update that may restart and did not says the baseline is its triggers.
        if answer["status"] == "SUCCESS" && (started == 1 || !skip) {
            baseline = Some(u.trigger);
        }
        if gave_up(&answer) {
            baseline = None;
        }
        if !p.recorded() {
            return Err(fail("an UPDATE lost the record".into()));
        }
        p.check_read_and_list(true)?;
    }
    let (deleted, started) = p.operate("DELETE", json!({"Id": p.id}), s.delete_lose, false)?;
    if started > 0 {
        return Err(fail("DELETE restarted the service".into()));
    }
    if deleted["status"] == "SUCCESS" {
        if p.recorded() {
            return Err(fail("DELETE answered SUCCESS and kept the record".into()));
        }
        p.check_read_and_list(false)?;
    }
    Ok(())
}

#[test]
fn invariants_hold_over_random_scenarios() {
    let cases = props::cases("SERVICERESTART_SCENARIOS", 3000);
    let mut runner = props::runner(cases, true);
    let played = AtomicU64::new(0);
    let invocations = AtomicU64::new(0);
    let hit: [AtomicU64; 9] = Default::default();
    let result = runner.run(&scenario(), |s| {
        let (n, hits) = play(&s)?;
        props::played_one(&played, cases, "servicerestart invariants");
        invocations.fetch_add(n, Ordering::SeqCst);
        for (count, met) in hit.iter().zip(hits.flags()) {
            count.fetch_add(u64::from(met), Ordering::SeqCst);
        }
        Ok(())
    });
    println!(
        "servicerestart invariants: {} scenarios played ({} invocations of the real handler)",
        played.load(Ordering::SeqCst),
        invocations.load(Ordering::SeqCst)
    );
    for (name, count) in HIT_NAMES.iter().zip(&hit) {
        println!("  {name}: {} scenarios", count.load(Ordering::SeqCst));
    }
    if let Err(e) = result {
        panic!("{e}");
    }
    if cases >= 1000 {
        permissions_match_the_calls_made();
    }
}

/// Every request the handlers send over the scenarios, serialized by the real SDK
/// gateways, is one AWS accepts (the services' models and documented limits, as
/// `emulator/check_requests.py` checks them): the twin may be kinder than AWS.
#[test]
fn requests_conform_to_aws_rules() {
    let cases = props::cases("SERVICERESTART_CONFORMANCE_SCENARIOS", 600);
    let wire = Arc::new(wire::new());
    let began = std::time::Instant::now();
    // Next to TaskRun's (`.tmp/conformance/` of the repository).
    let file = "servicerestart-requests.jsonl";
    let summary = props::conform(&wire, scenario(), cases, file, |s| {
        play_on(&s, Some(wire.clone())).map(|_| ())
    });
    println!(
        "conformance: {cases} scenarios in {:.1} s: {summary}",
        began.elapsed().as_secs_f64()
    );
}

/// The schema's permissions per handler are exactly the calls its code made over the
/// scenarios, so the two cannot drift apart.
fn permissions_match_the_calls_made() {
    CALLS_BY_ACTION.match_permissions(service_restart::schema::SCHEMA_JSON, |_| {});
}

fn quiet(timeout: u32) -> Scenario {
    Scenario {
        wait_started: false,
        timeout,
        by_arn: false,
        arn_with_cluster: false,
        missing: false,
        setup: ServiceSetup::default(),
        store_outage: None,
        scripts: vec![],
        ecs_faults: vec![],
        store_faults: vec![],
        lose: None,
        updates: vec![],
        delete_lose: None,
    }
}

fn replay(s: &Scenario) {
    if let Err(e) = play(s) {
        panic!("{e}");
    }
}

#[test]
fn regression_slow_look_with_a_lost_first_answer() {
    replay(&Scenario {
        ecs_faults: vec![(2, Injected::Slow(40.3))],
        lose: Some(0),
        ..quiet(30)
    });
}

/// Issue 15 row 4: a blue/green (CODE_DEPLOY) or EXTERNAL service is refused before any
/// UpdateService, with a reason naming its controller and what to do instead.
#[test]
fn regression_4_code_deploy_and_external_services_are_refused_before_any_update() {
    for controller in [Controller::CodeDeploy, Controller::External] {
        replay(&Scenario {
            setup: ServiceSetup {
                controller,
                ..ServiceSetup::default()
            },
            ..quiet(400)
        });
    }
}

/// Issue 15 row 4: behind a Classic Load Balancer ECS shows no rolloutState; the restart
/// ends SUCCESS once its deployment is the only one and runs its desired count (as ECS's
/// services-stable waiter judges), not TIMED_OUT at the Timeout.
#[test]
fn regression_4_a_service_behind_a_classic_load_balancer_succeeds() {
    replay(&Scenario {
        setup: ServiceSetup {
            classic_load_balancer: true,
            ..ServiceSetup::default()
        },
        scripts: vec![DeploymentScript {
            steady_after: 10.0,
            ..DeploymentScript::default()
        }],
        ..quiet(400)
    });
}

/// Issue 15 row 4: a deployment paused at a lifecycle hook that nobody continues ends
/// TIMED_OUT with a reason that names the stage and how to continue it.
#[test]
fn regression_4_a_deployment_waiting_at_a_hook_is_reported() {
    for pause in [true, false] {
        replay(&Scenario {
            setup: ServiceSetup {
                lifecycle_hooks: true,
                ..ServiceSetup::default()
            },
            scripts: vec![DeploymentScript {
                hook: Some(HookScript {
                    pause,
                    stage: "POST_TEST_TRAFFIC_SHIFT".into(),
                    holds_for: None,
                }),
                ..DeploymentScript::default()
            }],
            ..quiet(120)
        });
    }
}

/// Issue 15 row 6: `Ref` of a service created before 2021 is its short ARN, which names no
/// cluster; without `Cluster` the restart is refused at once, asking for it (it used to
/// look in the cluster named default).
#[test]
fn regression_6_a_short_service_arn_without_cluster_is_refused() {
    replay(&Scenario {
        by_arn: true,
        setup: ServiceSetup {
            short_arn: true,
            ..ServiceSetup::default()
        },
        ..quiet(400)
    });
    // With Cluster, a short ARN restarts the service.
    replay(&Scenario {
        by_arn: true,
        arn_with_cluster: true,
        setup: ServiceSetup {
            short_arn: true,
            ..ServiceSetup::default()
        },
        ..quiet(400)
    });
}

/// Issue 15 row 17: the store unreachable until past the give-up time: the CREATE ends
/// FAILED with NotStabilized, never a retriable code (CloudFormation would start the
/// operation over: restart the service again).
#[test]
fn regression_17_no_retriable_code_past_the_give_up_time() {
    replay(&Scenario {
        store_outage: Some((0, 400)),
        ..quiet(30)
    });
}

/// Found by the property run once DescribeServices lagged behind UpdateService: an UPDATE
/// a second after a CREATE (WaitFor STARTED), whose UpdateService answer was lost, looked
/// the deployment up and took the CREATE's (shown only then, so "new") for its own.
#[test]
fn regression_eventual_consistency_an_update_does_not_adopt_the_previous_deployment() {
    replay(&Scenario {
        wait_started: true,
        setup: ServiceSetup {
            describe_lag: 10.29,
            ..ServiceSetup::default()
        },
        ecs_faults: vec![(3, Injected::After(FaultKind::ServerSide))],
        updates: vec![Update {
            trigger: 1,
            rollback: false,
            run_on_rollback: false,
            restart_on_update: true,
            lose: None,
            gap: 1.42,
        }],
        ..quiet(30)
    });
}

/// Found by the property run: the second of two quick UPDATEs, its "sent" record written
/// but reported failed (so UpdateService not sent), looked the deployment up and took the
/// CREATE's, hidden at its first look and shown only then, for its own. A restart now
/// starts knowing what the previous one knew.
#[test]
fn regression_eventual_consistency_an_older_deployment_is_not_adopted_either() {
    let update = |trigger, gap| Update {
        trigger,
        rollback: false,
        run_on_rollback: false,
        restart_on_update: true,
        lose: None,
        gap,
    };
    replay(&Scenario {
        wait_started: true,
        setup: ServiceSetup {
            describe_lag: 14.66,
            ..ServiceSetup::default()
        },
        store_faults: vec![(14, Injected::After(FaultKind::ServerSide))],
        updates: vec![update(1, 0.0), update(0, 2.64)],
        ..quiet(30)
    });
}

/// Found by a 30,000-scenario run: the look at the Timeout timed out itself, and the
/// TIMED_OUT reason left out the Lambda hook the deployment had been seen waiting at.
#[test]
fn regression_4_a_hook_wait_is_reported_when_the_last_look_fails() {
    replay(&Scenario {
        setup: ServiceSetup {
            lifecycle_hooks: true,
            ..ServiceSetup::default()
        },
        scripts: vec![DeploymentScript {
            ends_after: Some(0.0),
            hook: Some(HookScript {
                pause: false,
                stage: "PRE_SCALE_UP".into(),
                holds_for: Some(116.26),
            }),
            ..DeploymentScript::default()
        }],
        ecs_faults: vec![(10, Injected::Slow(44.86))],
        ..quiet(30)
    });
}

/// Found by a 30,000-scenario run: the store down across the Timeout, the hook the restart
/// saw was never recorded (nothing changes before the record has it), and the TIMED_OUT
/// reason missed it. The hooks are now looked at once more at the Timeout, the reason so
/// far recorded first.
#[test]
fn regression_4_a_hook_wait_is_reported_after_a_store_outage() {
    replay(&Scenario {
        setup: ServiceSetup {
            lifecycle_hooks: true,
            ..ServiceSetup::default()
        },
        store_outage: Some((4, 254)),
        scripts: vec![DeploymentScript {
            ends_after: Some(0.0),
            hook: Some(HookScript {
                pause: false,
                stage: "PRE_SCALE_UP".into(),
                holds_for: None,
            }),
            ..DeploymentScript::default()
        }],
        ..quiet(30)
    });
}

/// Found by a 30,000-scenario run (a test-model fix, not a handler one): an UPDATE whose
/// restart succeeded and was recorded so, just before the store went away until the
/// give-up time, answers NotStabilized; the next update compares with the restart that
/// succeeded (the record's), which the test now allows.
#[test]
fn regression_17_after_a_give_up_the_baseline_is_the_record_s() {
    let update = |trigger| Update {
        trigger,
        rollback: false,
        run_on_rollback: false,
        restart_on_update: true,
        lose: None,
        gap: 0.0,
    };
    replay(&Scenario {
        wait_started: true,
        store_outage: Some((12, 313)),
        ecs_faults: vec![(1, Injected::Before(FaultKind::Throttled))],
        store_faults: vec![(11, Injected::Crash)],
        updates: vec![update(1), update(0)],
        ..quiet(30)
    });
}

/// Found by a clean-clone `make test` (1 of 3,000 scenarios): Timeout 30, the first answer
/// lost, a deployment waiting at a Lambda hook, and the look at the Timeout 53 s slow.
#[test]
fn regression_19_a_hook_wait_with_a_lost_first_answer_and_a_slow_last_look() {
    let update = |trigger, rollback, run_on_rollback, restart_on_update, gap| Update {
        trigger,
        rollback,
        run_on_rollback,
        restart_on_update,
        lose: None,
        gap,
    };
    replay(&Scenario {
        wait_started: false,
        timeout: 30,
        by_arn: false,
        arn_with_cluster: false,
        missing: false,
        setup: ServiceSetup {
            controller: Controller::Ecs,
            classic_load_balancer: false,
            short_arn: false,
            lifecycle_hooks: true,
            describe_lag: 6.885795669791504,
        },
        store_outage: None,
        scripts: vec![
            DeploymentScript {
                ends_after: Some(169.9051706738897),
                fails: false,
                steady_after: 0.04773131349844573,
                hook: Some(HookScript {
                    pause: false,
                    stage: "PRE_SCALE_UP".into(),
                    holds_for: Some(95.439773663069),
                }),
            },
            DeploymentScript {
                ends_after: Some(34.53315250499468),
                fails: true,
                steady_after: 5.352444805393273,
                hook: None,
            },
        ],
        ecs_faults: vec![
            (19, Injected::Before(FaultKind::ServerSide)),
            (23, Injected::Slow(6.444701209034353)),
            (25, Injected::After(FaultKind::Network)),
            (27, Injected::Slow(53.3902588646813)),
        ],
        store_faults: vec![],
        lose: Some(0),
        updates: vec![
            update(0, false, true, true, 452.7525363938346),
            update(1, true, false, false, 2.0360555142351586),
        ],
        delete_lose: None,
    });
}
