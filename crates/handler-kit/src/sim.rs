//! The backend of a resource type's simulation: the type's in-memory gateway, an
//! in-memory store and a virtual clock, shared by every request, for property tests and
//! fuzzers that run the real handlers as over AWS; and what every in-memory gateway (a
//! [`Twin`]) does around its answers: faults planned per call ([`FaultPlan`]), a slow
//! answer or none by the caller's deadline, the process dying right after AWS acted, and
//! AWS's request throttling.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use cfn_protocol::{CredentialsProblem, HandlerRequest};

use crate::clock::throttle::{self, BucketRule, Throttle, Throttling};
use crate::clock::{Clock, VirtualClock};
use crate::events::EventSink;

mod event_bridge;
use crate::fault::{Fault, FaultKind};
use crate::resource::Backend;
use crate::store::{Injected, MemoryStore};
pub use event_bridge::{EventBridgeState, PutEvent, SimEvents};

/// A call answered without a planned latency takes this long.
pub const CALL_SECONDS: f64 = 0.05;

/// What a twin plans and remembers of its calls.
#[derive(Debug, Default)]
pub struct FaultPlan {
    /// The fault to answer a call with, by call number (from 0).
    pub faults: BTreeMap<u64, Injected>,
    /// The calls made so far.
    pub calls: u64,
    /// Each call's operation, in order.
    pub call_log: Vec<&'static str>,
    /// A call was planned to crash the caller: it acted and never answered.
    pub crashed: bool,
    /// The account's buckets, when the twin throttles as AWS does.
    pub throttle: Throttle,
}

/// The state of a twin: whatever it models, and its [`FaultPlan`].
pub trait TwinState: Default + Send {
    /// The plan of the twin's calls.
    fn plan(&mut self) -> &mut FaultPlan;
}

/// How a call goes, decided before it is made.
enum Planned {
    Go { latency: f64 },
    FailFirst(FaultKind),
    FailAfter(FaultKind),
    Crash,
}

/// An in-memory AWS service on a virtual clock: its state, shared by every clone.
pub struct Twin<St> {
    /// What the twin models (and its fault plan).
    pub state: Arc<Mutex<St>>,
    /// The virtual time its calls take.
    pub clock: Arc<VirtualClock>,
}

impl<St> Clone for Twin<St> {
    fn clone(&self) -> Self {
        Self {
            state: self.state.clone(),
            clock: self.clock.clone(),
        }
    }
}

impl<St: TwinState> Twin<St> {
    /// An empty twin on `clock`.
    pub fn new(clock: Arc<VirtualClock>) -> Self {
        Self {
            state: Arc::new(Mutex::new(St::default())),
            clock,
        }
    }

    /// The twin's state.
    pub fn lock(&self) -> MutexGuard<'_, St> {
        // A poisoned lock only means a test panicked; its state is still the truth.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Throttles calls as AWS would (see [`throttle`]): the account's `rules` buckets.
    pub fn throttle_with(&self, rules: &[BucketRule], config: Throttling) {
        let now = self.clock.now();
        self.lock().plan().throttle = Throttle::new(rules, config, now);
    }

    fn planned(&self, operation: &'static str) -> Planned {
        let mut state = self.lock();
        let plan = state.plan();
        let call = plan.calls;
        plan.calls += 1;
        plan.call_log.push(operation);
        match plan.faults.remove(&call) {
            None => Planned::Go {
                latency: CALL_SECONDS,
            },
            Some(Injected::Slow(seconds)) => Planned::Go { latency: seconds },
            Some(Injected::Before(kind)) => Planned::FailFirst(kind),
            Some(Injected::After(kind)) => Planned::FailAfter(kind),
            Some(Injected::Crash) => Planned::Crash,
        }
    }

    /// Runs `act` as AWS would for this call of `operation`, with whatever fault is
    /// planned for it, drawing on the operation's bucket and on `extra` ones when the twin
    /// throttles; `by` is the caller's deadline.
    pub async fn call<T>(
        &self,
        operation: &'static str,
        extra: &[&'static str],
        by: f64,
        act: impl FnOnce(&mut St, f64) -> Result<T, Fault>,
    ) -> Result<T, Fault> {
        let planned = self.planned(operation);
        let throttling = self.lock().plan().throttle.is_on();
        if let (Planned::Go { latency }, true) = (&planned, throttling) {
            // Throttling comes first: a throttled call does nothing (and the SDK may send
            // it again after a backoff).
            let buckets: Vec<&'static str> = throttle::bucket_of(operation)
                .into_iter()
                .chain(extra.iter().copied())
                .collect();
            throttle::admit(&self.clock, operation, by, *latency, |now, attempt| {
                self.lock()
                    .plan()
                    .throttle
                    .attempt(operation, &buckets, now, attempt)
            })
            .await?;
        }
        let now = self.clock.now();
        match planned {
            Planned::FailFirst(kind) => {
                self.clock.sleep(CALL_SECONDS).await;
                let mut fault = Fault::new(operation, kind, "injected before acting");
                fault.may_have_acted = false;
                Err(fault)
            }
            Planned::FailAfter(kind) => {
                let _ = act(&mut self.lock(), now);
                self.clock.sleep(CALL_SECONDS).await;
                let mut fault = Fault::new(operation, kind, "injected after acting");
                fault.may_have_acted = true;
                Err(fault)
            }
            Planned::Crash => {
                let _ = act(&mut self.lock(), now);
                self.lock().plan().crashed = true;
                std::future::pending::<()>().await;
                Err(Fault::new(operation, FaultKind::Other, "unreachable"))
            }
            Planned::Go { latency } => {
                if now + latency > by {
                    // The caller gives up at its deadline; AWS may or may not have acted.
                    let _ = act(&mut self.lock(), now);
                    self.clock.sleep_until(by.max(now)).await;
                    return Err(Fault::new(
                        operation,
                        FaultKind::Network,
                        "no answer in time (simulated)",
                    ));
                }
                let answer = act(&mut self.lock(), now);
                self.clock.sleep(latency).await;
                answer
            }
        }
    }
}

/// A resource type's in-memory twin of its gateway.
pub trait SimGateway: Clone + Send + Sync {
    /// A twin on `clock`, with nothing in it.
    fn on(clock: Arc<VirtualClock>) -> Self;

    /// Throttles as AWS does (see [`throttle`](crate::clock::throttle)).
    fn throttle_with(&self, config: Throttling);
}

/// Declares a twin of a gateway: a newtype over [`Twin`] of the state given (which
/// derefs to the twin), that is a [`SimGateway`] throttled by the bucket rules given.
///
/// ```ignore
/// handler_kit::sim_gateway! {
///     /// The in-memory widget service.
///     pub struct SimWidgets(WidgetState), throttled by handler_kit::clock::throttle::ECS_SERVICE_RULES
/// }
/// ```
#[macro_export]
macro_rules! sim_gateway {
    ($(#[$meta:meta])* $vis:vis struct $name:ident($state:ty), throttled by $rules:expr) => {
        $(#[$meta])*
        #[derive(Clone)]
        $vis struct $name(pub $crate::sim::Twin<$state>);

        impl ::std::ops::Deref for $name {
            type Target = $crate::sim::Twin<$state>;

            fn deref(&self) -> &Self::Target {
                &self.0
            }
        }

        impl $crate::sim::SimGateway for $name {
            fn on(clock: ::std::sync::Arc<$crate::clock::VirtualClock>) -> Self {
                Self($crate::sim::Twin::new(clock))
            }

            fn throttle_with(&self, config: $crate::clock::throttle::Throttling) {
                self.0.throttle_with(&$rules, config);
            }
        }
    };
}

/// The backend of a simulation: one shared gateway, store and clock for every request.
#[derive(Clone)]
pub struct SimBackend<G> {
    /// The type's in-memory AWS.
    pub gateway: G,
    /// Where the records live.
    pub store: Arc<MemoryStore>,
    /// The virtual time every request goes by.
    pub clock: Arc<VirtualClock>,
    /// The in-memory EventBridge the type's events go to.
    pub events: SimEvents,
}

impl<G: SimGateway> SimBackend<G> {
    /// A backend whose clock starts at `start` (seconds since the epoch).
    pub fn new(start: f64) -> Self {
        Self::on(Arc::new(VirtualClock::starting_at(start)))
    }

    /// A backend on `clock` (a scheduled one: many operations at once; the store's calls
    /// take time on it too).
    pub fn on(clock: Arc<VirtualClock>) -> Self {
        let store = Arc::new(MemoryStore::new());
        if clock.is_scheduled() {
            store.on_clock(clock.clone());
        }
        Self {
            gateway: G::on(clock.clone()),
            store,
            events: SimEvents::on(clock.clone()),
            clock,
        }
    }

    /// The gateway and SSM throttle as AWS does (see `clock::throttle`), each with its own
    /// draws.
    pub fn throttle_with(&self, config: Throttling) {
        self.gateway.throttle_with(config.clone());
        self.store.throttle_with(
            self.clock.clone(),
            Throttling {
                seed: config.seed.wrapping_add(1),
                ..config
            },
        );
    }
}

impl<G: SimGateway> Backend for SimBackend<G> {
    type Gateway = G;
    type Store = Arc<MemoryStore>;
    type Clock = VirtualClock;

    async fn connect(
        &self,
        request: &HandlerRequest,
    ) -> Result<(G, Arc<MemoryStore>), CredentialsProblem> {
        request.caller_credentials()?;
        Ok((self.gateway.clone(), self.store.clone()))
    }

    fn clock(&self) -> &VirtualClock {
        &self.clock
    }

    async fn events(&self, _request: &HandlerRequest) -> Box<dyn EventSink> {
        Box::new(self.events.clone())
    }
}
