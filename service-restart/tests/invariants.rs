//! What must always hold for a ServiceRestart, checked over random scenarios played as
//! CloudFormation plays them (the real handlers over the in-memory ECS and store, on a
//! virtual clock), with faults before and after ECS acted, slow calls, the process dying
//! after any call (the invocation then delivered again) and answers lost (delivered twice):
//!
//! - an operation starts at most one deployment (UpdateService has no idempotency token);
//! - SUCCESS only for a deployment that COMPLETED with every task running (STEADY_STATE),
//!   or that exists (STARTED), by the simulation's ground truth;
//! - every answer a valid progress event, CREATE/UPDATE ones with the model and its Id;
//! - no invocation past its 60 s;
//! - a record exists exactly when the resource does.
//!
//! `SERVICERESTART_SCENARIOS` sets how many scenarios run (default 3,000).

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, UNIX_EPOCH};

use handler_kit::clock::Clock;
use handler_kit::fault::FaultKind;
use handler_kit::store::Injected;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{json, Value};
use service_restart::resource::ServiceRestart;
use service_restart::sim::{DeploymentScript, SimBackend};

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
    /// The service is named by its ARN (the cluster then comes from it).
    by_arn: bool,
    /// The service does not exist.
    missing: bool,
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
    prop_oneof![
        3 => kind().prop_map(Injected::Before),
        3 => prop_oneof![Just(FaultKind::ServerSide), Just(FaultKind::Network)].prop_map(Injected::After),
        1 => (0.5f64..70.0).prop_map(Injected::Slow),
        2 => Just(Injected::Crash),
    ]
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

fn scenario() -> impl Strategy<Value = Scenario> {
    let script = (
        prop_oneof![3 => (0.0f64..200.0).prop_map(Some), 1 => Just(None)],
        prop::bool::weighted(0.25),
        0.0f64..20.0,
    )
        .prop_map(|(ends_after, fails, steady_after)| DeploymentScript {
            ends_after,
            fails,
            steady_after,
        });
    (
        (
            any::<bool>(),
            30u32..400,
            any::<bool>(),
            prop::bool::weighted(0.05),
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
                (wait_started, timeout, by_arn, missing),
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
                missing,
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
    resource: ServiceRestart<SimBackend>,
    id: Option<String>,
    invocations: u64,
}

static TOKENS: AtomicU64 = AtomicU64::new(0);

/// Every operation each handler made, over every scenario played.
static CALLS_BY_ACTION: Mutex<BTreeMap<String, BTreeSet<&'static str>>> =
    Mutex::new(BTreeMap::new());

fn fail(message: String) -> TestCaseError {
    TestCaseError::fail(message)
}

const SERVICE_ARN: &str = "arn:aws:ecs:us-east-1:123456789012:service/c/api";

impl Play {
    fn new(s: &Scenario) -> Self {
        let backend = SimBackend::new(START);
        if !s.missing {
            backend.services.clone().with_service("c", "api");
        }
        {
            let mut state = backend.services.lock();
            state.scripts = s.scripts.clone();
            state.faults = s.ecs_faults.iter().cloned().collect();
        }
        for (call, fault) in &s.store_faults {
            backend.store.inject(*call, *fault);
        }
        Self {
            resource: ServiceRestart {
                backend: backend.clone(),
            },
            backend,
            id: None,
            invocations: 0,
        }
    }

    fn invoke(&mut self, event: &Value) -> Result<Option<Value>, TestCaseError> {
        self.invocations += 1;
        let answer = self.invoke_inner(event);
        let ecs = std::mem::take(&mut self.backend.services.lock().call_log);
        let store = self
            .backend
            .store
            .call_log
            .lock()
            .map(|mut log| std::mem::take(&mut *log))
            .unwrap_or_default();
        let action = event["action"].as_str().unwrap_or_default().to_lowercase();
        if std::env::var_os("TRACE").is_some() {
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
        if let Ok(mut seen) = CALLS_BY_ACTION.lock() {
            seen.entry(action)
                .or_default()
                .extend(ecs.into_iter().chain(store));
        }
        answer
    }

    fn invoke_inner(&mut self, event: &Value) -> Result<Option<Value>, TestCaseError> {
        let began = self.backend.clock.now();
        let deadline = UNIX_EPOCH + Duration::from_secs_f64(began + 60.0);
        let bytes = event.to_string();
        let mut future = pin!(cfn_protocol::dispatch(
            &self.resource,
            bytes.as_bytes(),
            Some(deadline)
        ));
        let mut cx = Context::from_waker(Waker::noop());
        for _ in 0..100_000 {
            if let Poll::Ready(answer) = future.as_mut().poll(&mut cx) {
                let took = self.backend.clock.now() - began;
                if took > 60.0 {
                    return Err(fail(format!("an invocation took {took:.1} s")));
                }
                return Ok(Some(answer));
            }
            let crashed = std::mem::take(&mut self.backend.services.lock().crashed)
                | self.backend.store.crashed.swap(false, Ordering::SeqCst);
            if crashed {
                self.backend.clock.advance(1.0);
                return Ok(None);
            }
        }
        Err(fail("an invocation never finished".into()))
    }

    fn envelope(
        &self,
        action: &str,
        token: &str,
        props: &Value,
        context: Option<&Value>,
        rollback: bool,
    ) -> Value {
        let mut event = json!({"action": action, "bearerToken": token, "region": "us-east-1", "stackId": STACK,
            "requestData": {"callerCredentials": {"accessKeyId": "AKIAEXAMPLE", "secretAccessKey": "s"},
                "logicalResourceId": "Restart", "resourceProperties": props}});
        if let Some(context) = context {
            event["callbackContext"] = context.clone();
        }
        if rollback {
            event["rollback"] = json!(true);
        }
        event
    }

    /// One operation to its end: its answer and the deployments started during it.
    fn operate(
        &mut self,
        action: &str,
        props: Value,
        lose: Option<u8>,
        rollback: bool,
    ) -> Result<(Value, usize), TestCaseError> {
        let token = format!("t{}", TOKENS.fetch_add(1, Ordering::SeqCst));
        if action == "CREATE" {
            self.id = Some(handler_kit::ids::resource_id(
                "ServiceRestart",
                Some(STACK),
                Some("Restart"),
                Some(&token),
            ));
        }
        let before = self.backend.services.started();
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
                let started = self.backend.services.started() - before;
                if started > 1 {
                    return Err(fail(format!("{action} started {started} deployments")));
                }
                if status == "SUCCESS" && answer["resourceModel"]["Status"] == "SUCCEEDED" {
                    self.check_succeeded(&answer["resourceModel"])?;
                }
                return Ok((answer, started));
            }
            self.backend
                .clock
                .advance(answer["callbackDelaySeconds"].as_f64().unwrap_or(1.0));
            context = Some(answer["callbackContext"].clone());
            if action != "DELETE" {
                properties = answer["resourceModel"].clone();
            }
        }
        Err(fail(format!("{action} never ended")))
    }

    /// Every answer: a progress event as the Registry reads it.
    fn check_event(&self, action: &str, answer: &Value) -> Result<(), TestCaseError> {
        let status = answer["status"].as_str().unwrap_or_default();
        if !matches!(status, "SUCCESS" | "FAILED" | "IN_PROGRESS") {
            return Err(fail(format!("an answer without a status: {answer}")));
        }
        if let Err(path) = no_nulls(answer) {
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
        if status == "IN_PROGRESS" && answer.get("callbackContext").is_none() {
            return Err(fail(format!("IN_PROGRESS without a context: {answer}")));
        }
        Ok(())
    }

    /// The deployment named really completed, with every task running unless STARTED.
    fn check_succeeded(&self, model: &Value) -> Result<(), TestCaseError> {
        let id = model["DeploymentId"].as_str().unwrap_or_default();
        let now = self.backend.clock.now();
        let state = self.backend.services.lock();
        let Some(d) = state.services.values().flatten().find(|d| d.id == id) else {
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
        let ended = d
            .script
            .ends_after
            .map(|after| d.created_at + after + d.script.steady_after);
        if d.script.fails || ended.is_none_or(|at| at > now) {
            return Err(fail(format!(
                "wrong SUCCESS: deployment {id} {:?} (now {now})",
                d.script
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

fn no_nulls(value: &Value) -> Result<(), String> {
    match value {
        Value::Null => Err(String::new()),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, v)| no_nulls(v).map_err(|p| format!("/{i}{p}"))),
        Value::Object(map) => map
            .iter()
            .try_for_each(|(k, v)| no_nulls(v).map_err(|p| format!("/{k}{p}"))),
        _ => Ok(()),
    }
}

fn play(s: &Scenario) -> Result<u64, TestCaseError> {
    let mut p = Play::new(s);
    let service = if s.by_arn { SERVICE_ARN } else { "api" };
    let props = |trigger: u8, update: Option<&Update>| {
        let mut props = json!({"Service": service, "Triggers": [format!("v{trigger}")],
            "Timeout": s.timeout, "PollInterval": 5,
            "WaitFor": if s.wait_started { "STARTED" } else { "STEADY_STATE" }});
        if !s.by_arn {
            props["Cluster"] = json!("c");
        }
        if let Some(u) = update {
            props["RunOnRollback"] = json!(u.run_on_rollback);
            props["RestartOnUpdate"] = json!(u.restart_on_update);
        }
        props
    };
    let (created, started) = p.operate("CREATE", props(0, None), s.lose, false)?;
    let exists = created["status"] == "SUCCESS";
    if p.recorded() != exists {
        return Err(fail(format!(
            "after CREATE {}: recorded = {}",
            created["status"],
            p.recorded()
        )));
    }
    if s.missing && (exists || started > 0) {
        return Err(fail(format!("a service that does not exist: {created}")));
    }
    p.check_read_and_list(exists)?;
    if !exists {
        return Ok(p.invocations);
    }
    // The triggers of the last restart that succeeded.
    let mut baseline = 0u8;
    for u in &s.updates {
        p.backend.clock.advance(u.gap);
        let mut desired = props(u.trigger, Some(u));
        desired["Id"] = json!(p.id);
        let (answer, started) = p.operate("UPDATE", desired, u.lose, u.rollback)?;
        let skip = !u.restart_on_update || (u.rollback && !u.run_on_rollback);
        if skip && started > 0 {
            return Err(fail(format!(
                "an update that must not restart did ({u:?}): {answer}"
            )));
        }
        if baseline == u.trigger && started > 0 {
            return Err(fail(format!(
                "an unchanged update restarted the service: {answer}"
            )));
        }
        if !skip && baseline != u.trigger && answer["status"] == "SUCCESS" && started != 1 {
            return Err(fail(format!(
                "a changed update answered SUCCESS having started {started} deployments: {answer}"
            )));
        }
        // The baseline is the last restart that succeeded: one that failed leaves the
        // service on the deployment before it (the circuit breaker rolled it back).
        if answer["status"] == "SUCCESS" && started == 1 {
            baseline = u.trigger;
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
    Ok(p.invocations)
}

#[test]
fn invariants_hold_over_random_scenarios() {
    let cases: u32 = std::env::var("SERVICERESTART_SCENARIOS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(3000);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 2000,
        ..Config::default()
    });
    let played = AtomicU64::new(0);
    let invocations = AtomicU64::new(0);
    let result = runner.run(&scenario(), |s| {
        let n = play(&s)?;
        played.fetch_add(1, Ordering::SeqCst);
        invocations.fetch_add(n, Ordering::SeqCst);
        Ok(())
    });
    println!(
        "servicerestart invariants: {} scenarios played ({} invocations of the real handler)",
        played.load(Ordering::SeqCst),
        invocations.load(Ordering::SeqCst)
    );
    if let Err(e) = result {
        panic!("{e}");
    }
    if cases >= 1000 {
        permissions_match_the_calls_made();
    }
}

/// The schema's permissions per handler are exactly the calls its code made over the
/// scenarios, so the two cannot drift apart.
fn permissions_match_the_calls_made() {
    let schema: Value = serde_json::from_str(service_restart::schema::SCHEMA_JSON).expect("schema");
    let seen = CALLS_BY_ACTION.lock().expect("calls").clone();
    for action in ["create", "read", "update", "delete", "list"] {
        let made: BTreeSet<&str> = seen.get(action).cloned().unwrap_or_default();
        let granted: BTreeSet<&str> = schema["handlers"][action]["permissions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(
            granted, made,
            "{action}: the schema's permissions (left) against the calls the handler made (right)"
        );
    }
    println!("permissions: every handler's schema permissions are exactly the calls it made");
}

fn quiet(timeout: u32) -> Scenario {
    Scenario {
        wait_started: false,
        timeout,
        by_arn: false,
        missing: false,
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
