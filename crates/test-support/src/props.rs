//! The property runs: how many scenarios, the runner that plays them, the progress line,
//! the calls each handler made (against the schema's permissions), and the conformance
//! run on the wire.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use handler_kit::fault::FaultKind;
use handler_kit::store::{Injected, MemoryStore};
use proptest::prelude::{prop_oneof, Just};
use proptest::strategy::Strategy;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::Value;

use crate::wire::{repository_root, Wire};

/// The number in the environment variable `name`, or `default`.
pub fn cases(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

/// A runner of `cases` scenarios that keeps no failure file; a failure is shrunk up to
/// 2,000 times when `shrink`, proptest's default otherwise.
pub fn runner(cases: u32, shrink: bool) -> TestRunner {
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    TestRunner::new(if shrink {
        Config {
            max_shrink_iters: 2000,
            ..config
        }
    } else {
        config
    })
}

/// Counts one more scenario played; every 1,000 says so on stderr (`{label}: n of cases
/// scenarios so far`).
pub fn played_one(played: &AtomicU64, cases: u32, label: &str) {
    let so_far = played.fetch_add(1, Ordering::SeqCst) + 1;
    if so_far.is_multiple_of(1000) {
        eprintln!("{label}: {so_far} of {cases} scenarios so far");
    }
}

/// Every operation (IAM action name) each handler made, over every scenario played.
pub struct CallsByAction(Mutex<BTreeMap<String, BTreeSet<&'static str>>>);

impl CallsByAction {
    pub const fn new() -> Self {
        Self(Mutex::new(BTreeMap::new()))
    }

    /// The calls `event`'s invocation made: `twin`'s, then the store's (see [`taken`]).
    pub fn record(&self, event: &Value, twin: Vec<&'static str>, store: Vec<&'static str>) {
        let action = event["action"].as_str().unwrap_or_default().to_lowercase();
        if let Ok(mut seen) = self.0.lock() {
            seen.entry(action)
                .or_default()
                .extend(twin.into_iter().chain(store));
        }
    }

    /// The schema's permissions per handler (`schema`: the type's schema document) are
    /// exactly the calls its code made over the scenarios (with what `implied` adds: the
    /// permissions a call needs besides its own), so the two cannot drift apart.
    pub fn match_permissions(&self, schema: &str, implied: impl Fn(&mut BTreeSet<&'static str>)) {
        let schema: Value = serde_json::from_str(schema).expect("schema");
        let seen = self.0.lock().expect("calls").clone();
        for action in ["create", "read", "update", "delete", "list"] {
            let mut made: BTreeSet<&str> = seen.get(action).cloned().unwrap_or_default();
            implied(&mut made);
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
}

impl Default for CallsByAction {
    fn default() -> Self {
        Self::new()
    }
}

/// The calls the store logged since last taken, taken from its log.
pub fn taken(store: &MemoryStore) -> Vec<&'static str> {
    store
        .call_log
        .lock()
        .map(|mut l| std::mem::take(&mut *l))
        .unwrap_or_default()
}

/// Plays `cases` scenarios of `scenarios` with `play` (each on `wire`), then checks every
/// request they sent as AWS would, kept in `.tmp/conformance/{file}` of the repository:
/// the check's summary; a panic with the first failing scenario, or what AWS would refuse.
pub fn conform<S: Strategy, E>(
    wire: &Wire<E>,
    scenarios: S,
    cases: u32,
    file: &str,
    play: impl Fn(S::Value) -> Result<(), TestCaseError>,
) -> String {
    let mut runner = runner(cases, false);
    if let Err(e) = runner.run(&scenarios, play) {
        panic!("{e}");
    }
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let path = repository_root()
        .unwrap_or_else(|| manifest.to_path_buf())
        .join(".tmp/conformance")
        .join(file);
    match wire.check(&path) {
        Ok(summary) => summary,
        Err(report) => panic!("requests AWS would refuse ({}):\n{report}", path.display()),
    }
}

/// How often each kind of fault is drawn by [`injected`] (relative weights).
#[derive(Debug, Clone, Copy)]
pub struct FaultMix {
    /// Refused or throttled before AWS acts.
    pub before: u32,
    /// AWS acted, then a 5xx or the answer was lost.
    pub after: u32,
    /// The answer comes late.
    pub slow: u32,
    /// The process dies in the call.
    pub crash: u32,
}

/// A fault for one call to AWS, drawn by `mix`: one of `refusals` before AWS acts; a 5xx
/// or a lost answer after it acted, never a 4xx (AWS refuses before acting; a generator
/// that drew "acted, then AccessDenied" once made a test fail on what AWS never does); an
/// answer `slow` seconds late; or the process dying in the call. One rule for every
/// property test of both types: only the mix and the ranges differ between them.
pub fn injected(
    refusals: impl Strategy<Value = FaultKind> + 'static,
    slow: impl Strategy<Value = f64> + 'static,
    mix: FaultMix,
) -> impl Strategy<Value = Injected> {
    prop_oneof![
        mix.before => refusals.prop_map(Injected::Before),
        mix.after => prop_oneof![Just(FaultKind::ServerSide), Just(FaultKind::Network)]
            .prop_map(Injected::After),
        mix.slow => slow.prop_map(Injected::Slow),
        mix.crash => Just(Injected::Crash),
    ]
}
