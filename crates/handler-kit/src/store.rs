//! A parameter store, as a port: the records of a resource type live in one (SSM
//! Parameter Store in production, see `ssm.rs`; [`MemoryStore`] in tests).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};

use crate::clock::throttle::{self, Throttle, Throttling};
use crate::clock::{Clock, VirtualClock};
use crate::fault::{Fault, FaultKind};

/// What a standard SSM parameter holds: "Standard parameters: 4 KB" (AWS Systems Manager
/// API Reference, PutParameter, `Value`). A larger value makes the parameter advanced, and
/// "you can't revert an advanced parameter to a standard parameter" (PutParameter, `Tier`);
/// advanced parameters are billed per parameter and month (Systems Manager pricing).
pub const STANDARD_VALUE_BYTES: usize = 4096;
/// What an advanced SSM parameter holds: "Advanced parameters: 8 KB" (PutParameter, `Value`).
pub const ADVANCED_VALUE_BYTES: usize = 8192;

/// How long a call to the store takes on a scheduled clock (none on an immediate one, as
/// before clocks could be scheduled).
pub const STORE_LATENCY_SECONDS: f64 = 0.05;

/// A fault to answer one call with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Injected {
    /// Fail without acting (throttling, or a refusal).
    Before(FaultKind),
    /// Act, then fail (a 5xx after ECS did the work).
    After(FaultKind),
    /// Take this many seconds to answer (a hung call is cut at its deadline).
    Slow(f64),
    /// Act, then the calling process dies: the call never returns.
    Crash,
}

/// A key-value store of text parameters under paths.
pub trait ParameterStore: Sync {
    fn get(
        &self,
        name: &str,
        by: f64,
    ) -> impl Future<Output = Result<Option<String>, Fault>> + Send;
    fn put(
        &self,
        name: &str,
        value: &str,
        by: f64,
    ) -> impl Future<Output = Result<(), Fault>> + Send;
    /// Creates `name` only if no parameter of that name exists: `false` (and nothing
    /// written) when one does. SSM's `PutParameter` with `Overwrite` false fails with
    /// `ParameterAlreadyExists` ("The parameter already exists. You can't create duplicate
    /// parameters.", AWS Systems Manager API Reference, PutParameter, Errors): of racers
    /// creating one name, exactly one succeeds. Plain text (`String`, standard tier): what
    /// is created this way holds no secret.
    fn create(
        &self,
        name: &str,
        value: &str,
        by: f64,
    ) -> impl Future<Output = Result<bool, Fault>> + Send;
    /// `false` when there was nothing to delete.
    fn delete(&self, name: &str, by: f64) -> impl Future<Output = Result<bool, Fault>> + Send;
    /// One page of the values directly under `path`, and the token of the next page.
    fn list(
        &self,
        path: &str,
        next_token: Option<&str>,
        page_size: u32,
        by: f64,
    ) -> impl Future<Output = Result<(Vec<String>, Option<String>), Fault>> + Send;
}

/// The in-memory twin of the parameter store, for tests: same contract, and faults
/// injected by call number, as the simulated ECS does (see `sim::Injected`).
#[derive(Default)]
pub struct MemoryStore {
    values: Mutex<BTreeMap<String, String>>,
    /// Faults by the number of the store call they answer (0-based).
    pub faults: Mutex<BTreeMap<u64, Injected>>,
    /// Operations (IAM action names) refused before acting, for good, from the call of
    /// this number on: an execution role whose policy changed under a run, say.
    pub refused: Mutex<BTreeMap<&'static str, (u64, FaultKind)>>,
    calls: Mutex<u64>,
    /// Operations called, in order (IAM action names), for tests to read.
    pub call_log: Mutex<Vec<&'static str>>,
    /// Set when an injected crash fired: the invocation is to be dropped.
    pub crashed: std::sync::atomic::AtomicBool,
    /// Parameters that became advanced: a value over 4 KB makes a parameter advanced, and
    /// it stays so until deleted (SSM API Reference, PutParameter, `Tier`: "you can't revert
    /// an advanced parameter to a standard parameter"; Intelligent-Tiering picks the tier).
    pub advanced: Mutex<std::collections::BTreeSet<String>>,
    /// Every parameter that was ever advanced (a figure for the tests: each one was billed).
    pub ever_advanced: std::sync::atomic::AtomicU64,
    /// The clock calls take time on, once [`MemoryStore::on_clock`] gave one: on a
    /// scheduled clock every call takes [`STORE_LATENCY_SECONDS`]; the throttle reads it.
    clock: OnceLock<Arc<VirtualClock>>,
    /// SSM's request throttling (off unless [`MemoryStore::throttle_with`]).
    pub throttle: Mutex<Throttle>,
    /// Calls by parameter name (or path) and operation, once the store is on a clock: a
    /// figure for the scale tests (which record's writes a CREATE made): `allowed` the
    /// calls that reached the store, `throttled` those answered ThrottlingException (or cut
    /// at their deadline while the modelled SDK backed off).
    pub calls_by_name: Mutex<BTreeMap<String, BTreeMap<&'static str, throttle::Counted>>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Calls take time on `clock` (when it is scheduled). A store keeps its first clock.
    pub fn on_clock(&self, clock: Arc<VirtualClock>) {
        let _ = self.clock.set(clock);
    }

    /// Throttles calls as SSM would (see `clock::throttle`), on `clock`.
    pub fn throttle_with(&self, clock: Arc<VirtualClock>, config: Throttling) {
        let now = clock.now();
        self.on_clock(clock);
        if let Ok(mut throttle) = self.throttle.lock() {
            *throttle = Throttle::new(&throttle::SSM_RULES, config, now);
        }
    }

    pub fn inject(&self, call: u64, fault: Injected) {
        if let Ok(mut faults) = self.faults.lock() {
            faults.insert(call, fault);
        }
    }

    /// Store calls made so far.
    pub fn calls(&self) -> u64 {
        self.calls.lock().map(|c| *c).unwrap_or_default()
    }

    /// Every stored value, by name.
    pub fn snapshot(&self) -> BTreeMap<String, String> {
        self.values.lock().map(|v| v.clone()).unwrap_or_default()
    }

    fn count(&self, name: &str, operation: &'static str, throttled: bool) {
        if let Ok(mut calls) = self.calls_by_name.lock() {
            let counted = calls
                .entry(name.to_string())
                .or_default()
                .entry(operation)
                .or_default();
            if throttled {
                counted.throttled += 1;
            } else {
                counted.allowed += 1;
            }
        }
    }

    async fn call<T>(
        &self,
        operation: &'static str,
        name: &str,
        by: f64,
        act: impl FnOnce(&mut BTreeMap<String, String>) -> T,
    ) -> Result<T, Fault> {
        if let Ok(mut log) = self.call_log.lock() {
            log.push(operation);
        }
        let injected = {
            let mut calls = self
                .calls
                .lock()
                .map_err(|_| Fault::new(operation, FaultKind::Other, "poisoned"))?;
            let call = *calls;
            *calls += 1;
            let refused = self.refused.lock().ok().and_then(|r| {
                r.get(operation)
                    .filter(|(from, _)| call >= *from)
                    .map(|(_, kind)| Injected::Before(*kind))
            });
            let injected = self.faults.lock().ok().and_then(|mut f| f.remove(&call));
            refused.or(injected)
        };
        let mut act = Some(act);
        let mut run = |values: &Mutex<BTreeMap<String, String>>| -> Result<T, Fault> {
            let mut values = values
                .lock()
                .map_err(|_| Fault::new(operation, FaultKind::Other, "poisoned"))?;
            match act.take() {
                Some(act) => Ok(act(&mut values)),
                None => Err(Fault::new(operation, FaultKind::Other, "acted twice")),
            }
        };
        let clock = self.clock.get().filter(|c| c.is_scheduled());
        let latency = if clock.is_some() {
            STORE_LATENCY_SECONDS
        } else {
            0.0
        };
        match injected {
            None | Some(Injected::Slow(_)) => {
                if let Some(clock) = self.clock.get() {
                    let bucket = throttle::bucket_of(operation);
                    let admitted =
                        throttle::admit(clock, operation, by, latency, |now, attempt| {
                            match self.throttle.lock() {
                                Ok(mut throttle) => {
                                    throttle.attempt(operation, bucket.as_slice(), now, attempt)
                                }
                                Err(_) => throttle::Attempt::Allowed,
                            }
                        })
                        .await;
                    self.count(name, operation, admitted.is_err());
                    admitted?;
                }
                let answer = run(&self.values);
                if let Some(clock) = clock {
                    clock.sleep(latency).await;
                }
                answer
            }
            Some(Injected::Before(kind)) => {
                let mut fault = Fault::new(operation, kind, "injected before acting");
                fault.may_have_acted = false;
                Err(fault)
            }
            Some(Injected::After(kind)) => {
                run(&self.values)?;
                let mut fault = Fault::new(operation, kind, "injected after acting");
                fault.may_have_acted = true;
                Err(fault)
            }
            Some(Injected::Crash) => {
                run(&self.values)?;
                self.crashed
                    .store(true, std::sync::atomic::Ordering::SeqCst);
                std::future::pending::<()>().await;
                Err(Fault::new(operation, FaultKind::Other, "unreachable"))
            }
        }
    }
}

impl ParameterStore for MemoryStore {
    async fn get(&self, name: &str, by: f64) -> Result<Option<String>, Fault> {
        self.call("ssm:GetParameter", name, by, |v| v.get(name).cloned())
            .await
    }

    async fn put(&self, name: &str, value: &str, by: f64) -> Result<(), Fault> {
        // SSM API Reference, PutParameter, `Value`: "Standard parameters have a value limit
        // of 4 KB. Advanced parameters have a value limit of 8 KB."
        if value.len() > ADVANCED_VALUE_BYTES {
            return Err(Fault::from_service(
                "ssm:PutParameter",
                Some("ValidationException"),
                Some("Parameter value is too large: the limit of an advanced parameter is 8 KB"),
                Some(400),
            ));
        }
        self.call("ssm:PutParameter", name, by, |v| {
            v.insert(name.to_string(), value.to_string());
        })
        .await?;
        if value.len() > STANDARD_VALUE_BYTES {
            if let Ok(mut advanced) = self.advanced.lock() {
                if advanced.insert(name.to_string()) {
                    self.ever_advanced
                        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
            }
        }
        Ok(())
    }

    async fn create(&self, name: &str, value: &str, by: f64) -> Result<bool, Fault> {
        // SSM API Reference, PutParameter, `Value`: "Standard parameters have a value limit
        // of 4 KB"; a create-only write is a standard `String` parameter.
        if value.len() > STANDARD_VALUE_BYTES {
            return Err(Fault::from_service(
                "ssm:PutParameter",
                Some("ValidationException"),
                Some("Parameter value is too large: the limit of a standard parameter is 4 KB"),
                Some(400),
            ));
        }
        // One lock of the map is the check and the write: of racers creating one name,
        // exactly one gets `true` (SSM API Reference, PutParameter, ParameterAlreadyExists).
        self.call("ssm:PutParameter", name, by, |v| {
            if v.contains_key(name) {
                false
            } else {
                v.insert(name.to_string(), value.to_string());
                true
            }
        })
        .await
    }

    async fn delete(&self, name: &str, by: f64) -> Result<bool, Fault> {
        let deleted = self
            .call("ssm:DeleteParameter", name, by, |v| {
                v.remove(name).is_some()
            })
            .await?;
        if deleted {
            if let Ok(mut advanced) = self.advanced.lock() {
                advanced.remove(name);
            }
        }
        Ok(deleted)
    }

    async fn list(
        &self,
        path: &str,
        next_token: Option<&str>,
        page_size: u32,
        by: f64,
    ) -> Result<(Vec<String>, Option<String>), Fault> {
        let prefix = format!("{}/", path.trim_end_matches('/'));
        let start: usize = match next_token {
            None => 0,
            Some(token) => token.parse().map_err(|_| {
                Fault::new(
                    "ssm:GetParametersByPath",
                    FaultKind::BadRequest,
                    "invalid next token",
                )
            })?,
        };
        self.call("ssm:GetParametersByPath", path, by, |v| {
            let names: Vec<&String> = v
                .keys()
                .filter(|k| k.starts_with(&prefix) && !k[prefix.len()..].contains('/'))
                .collect();
            let page: Vec<String> = names
                .iter()
                .skip(start)
                .take(page_size as usize)
                .map(|k| v[*k].clone())
                .collect();
            let end = start + page.len();
            let next = (end < names.len()).then(|| end.to_string());
            (page, next)
        })
        .await
    }
}

impl<T: ParameterStore + Send + Sync> ParameterStore for Arc<T> {
    fn get(
        &self,
        name: &str,
        by: f64,
    ) -> impl Future<Output = Result<Option<String>, Fault>> + Send {
        (**self).get(name, by)
    }
    fn put(
        &self,
        name: &str,
        value: &str,
        by: f64,
    ) -> impl Future<Output = Result<(), Fault>> + Send {
        (**self).put(name, value, by)
    }
    fn create(
        &self,
        name: &str,
        value: &str,
        by: f64,
    ) -> impl Future<Output = Result<bool, Fault>> + Send {
        (**self).create(name, value, by)
    }
    fn delete(&self, name: &str, by: f64) -> impl Future<Output = Result<bool, Fault>> + Send {
        (**self).delete(name, by)
    }
    fn list(
        &self,
        path: &str,
        next_token: Option<&str>,
        page_size: u32,
        by: f64,
    ) -> impl Future<Output = Result<(Vec<String>, Option<String>), Fault>> + Send {
        (**self).list(path, next_token, page_size, by)
    }
}
