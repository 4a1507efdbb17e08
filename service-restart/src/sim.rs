//! An in-memory ECS of services and deployments on a virtual clock, for the property
//! tests: the real handlers run over it as over AWS, with faults, slow answers and the
//! process dying after any call under the test's control. It keeps the ground truth:
//! every deployment UpdateService started, and how each ends.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use cfn_protocol::HandlerRequest;
use handler_kit::clock::{Clock, VirtualClock};
use handler_kit::store::{Injected, MemoryStore};

use crate::error::RestartError;
use crate::resource::Backend;
use crate::services::{Deployment, Fault, FaultKind, ServiceEvent, ServiceState, Services};

/// How a deployment started in the simulation goes.
#[derive(Debug, Clone, PartialEq)]
pub struct DeploymentScript {
    /// Seconds until it ends by itself (`None`: it never does).
    pub ends_after: Option<f64>,
    /// It fails (the circuit breaker rolls it back) instead of completing.
    pub fails: bool,
    /// Seconds after COMPLETED until all its tasks run.
    pub steady_after: f64,
}

impl Default for DeploymentScript {
    fn default() -> Self {
        Self {
            ends_after: Some(30.0),
            fails: false,
            steady_after: 0.0,
        }
    }
}

#[derive(Debug, Clone)]
pub struct SimDeployment {
    pub id: String,
    pub created_at: f64,
    pub script: DeploymentScript,
    /// Started by UpdateService (not there from the start).
    pub by_update: bool,
}

#[derive(Debug, Default)]
pub struct SimState {
    /// (cluster, service) -> deployments, oldest first.
    pub services: BTreeMap<(String, String), Vec<SimDeployment>>,
    pub scripts: Vec<DeploymentScript>,
    pub faults: BTreeMap<u64, Injected>,
    pub calls: u64,
    pub call_log: Vec<&'static str>,
    pub crashed: bool,
    next_id: u64,
}

impl SimDeployment {
    fn state(&self, now: f64, desired: i32) -> (String, i32) {
        match self.script.ends_after {
            Some(after) if now >= self.created_at + after => {
                if self.script.fails {
                    ("FAILED".into(), 0)
                } else if now >= self.created_at + after + self.script.steady_after {
                    ("COMPLETED".into(), desired)
                } else {
                    ("COMPLETED".into(), desired - 1)
                }
            }
            _ => ("IN_PROGRESS".into(), 0),
        }
    }
}

#[derive(Clone)]
pub struct SimServices {
    pub state: Arc<Mutex<SimState>>,
    pub clock: Arc<VirtualClock>,
}

const DESIRED: i32 = 2;

impl SimServices {
    pub fn new(clock: Arc<VirtualClock>) -> Self {
        Self {
            state: Arc::new(Mutex::new(SimState::default())),
            clock,
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, SimState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A service with one completed deployment.
    pub fn with_service(self, cluster: &str, service: &str) -> Self {
        {
            let mut state = self.lock();
            state.next_id += 1;
            let first = SimDeployment {
                id: format!("ecs-svc/{:019}", state.next_id),
                created_at: 0.0,
                script: DeploymentScript {
                    ends_after: Some(0.0),
                    fails: false,
                    steady_after: 0.0,
                },
                by_update: false,
            };
            state
                .services
                .insert((cluster.to_string(), service.to_string()), vec![first]);
        }
        self
    }

    /// The service as DescribeServices shows it at `now`: the newest deployment that did
    /// not fail is PRIMARY (a failed one is rolled back and listed ACTIVE).
    fn describe(state: &SimState, cluster: &str, service: &str, now: f64) -> Option<ServiceState> {
        let deployments = state
            .services
            .get(&(cluster.to_string(), service.to_string()))?;
        let shown: Vec<(SimDeployment, String, i32)> = deployments
            .iter()
            .map(|d| {
                let (rollout, running) = d.state(now, DESIRED);
                (d.clone(), rollout, running)
            })
            .collect();
        let primary = shown
            .iter()
            .rev()
            .find(|(_, rollout, _)| rollout != "FAILED")
            .map(|(d, _, _)| d.id.clone());
        // ECS drops older deployments once one completed; the last ones stay listed.
        let listed = shown.iter().skip(shown.len().saturating_sub(3));
        Some(ServiceState {
            arn: format!("arn:aws:ecs:us-east-1:123456789012:service/{cluster}/{service}"),
            deployments: listed
                .map(|(d, rollout, running)| Deployment {
                    id: d.id.clone(),
                    status: if Some(&d.id) == primary.as_ref() {
                        "PRIMARY"
                    } else {
                        "ACTIVE"
                    }
                    .into(),
                    rollout_state: Some(rollout.clone()),
                    rollout_reason: (rollout == "FAILED").then(|| {
                        "ECS deployment circuit breaker: tasks failed to start.".to_string()
                    }),
                    desired: DESIRED,
                    running: *running,
                    pending: DESIRED - running,
                    failed_tasks: if rollout == "FAILED" { 3 } else { 0 },
                    created_at: Some(d.created_at),
                })
                .collect(),
            events: vec![ServiceEvent {
                at: now,
                message: format!("(service {service}) simulated event"),
            }],
        })
    }

    async fn call<T>(
        &self,
        operation: &'static str,
        by: f64,
        act: impl FnOnce(&mut SimState, f64) -> Result<T, Fault>,
    ) -> Result<T, Fault> {
        let injected = {
            let mut state = self.lock();
            let call = state.calls;
            state.calls += 1;
            state.call_log.push(operation);
            state.faults.remove(&call)
        };
        let now = self.clock.now();
        match injected {
            Some(Injected::Before(kind)) => {
                let mut fault = Fault::new(operation, kind, "injected before acting");
                fault.may_have_acted = false;
                Err(fault)
            }
            Some(Injected::After(kind)) => {
                let _ = act(&mut self.lock(), now);
                let mut fault = Fault::new(operation, kind, "injected after acting");
                fault.may_have_acted = true;
                Err(fault)
            }
            Some(Injected::Crash) => {
                let _ = act(&mut self.lock(), now);
                self.lock().crashed = true;
                std::future::pending::<()>().await;
                Err(Fault::new(operation, FaultKind::Other, "unreachable"))
            }
            Some(Injected::Slow(seconds)) if now + seconds > by => {
                let _ = act(&mut self.lock(), now);
                self.clock.set(by);
                Err(Fault::new(
                    operation,
                    FaultKind::Network,
                    "no answer in time (simulated)",
                ))
            }
            Some(Injected::Slow(seconds)) => {
                let answer = act(&mut self.lock(), now);
                self.clock.advance(seconds);
                answer
            }
            None => {
                let answer = act(&mut self.lock(), now);
                self.clock.advance(0.05);
                answer
            }
        }
    }

    /// Deployments UpdateService started, by service.
    pub fn started(&self) -> usize {
        self.lock()
            .services
            .values()
            .flatten()
            .filter(|d| d.by_update)
            .count()
    }
}

impl Services for SimServices {
    async fn describe_service(
        &self,
        cluster: &str,
        service: &str,
        by: f64,
    ) -> Result<Option<ServiceState>, Fault> {
        self.call("ecs:DescribeServices", by, |state, now| {
            Ok(Self::describe(state, cluster, service, now))
        })
        .await
    }

    async fn force_new_deployment(
        &self,
        cluster: &str,
        service: &str,
        by: f64,
    ) -> Result<ServiceState, Fault> {
        self.call("ecs:UpdateService", by, |state, now| {
            let key = (cluster.to_string(), service.to_string());
            if !state.services.contains_key(&key) {
                return Err(Fault::new(
                    "ecs:UpdateService",
                    FaultKind::BadRequest,
                    "ServiceNotFoundException: Service not found.",
                ));
            }
            state.next_id += 1;
            let script = if state.scripts.is_empty() {
                DeploymentScript::default()
            } else {
                state.scripts.remove(0)
            };
            let deployment = SimDeployment {
                id: format!("ecs-svc/{:019}", state.next_id),
                created_at: now,
                script,
                by_update: true,
            };
            if let Some(deployments) = state.services.get_mut(&key) {
                deployments.push(deployment);
            }
            Self::describe(state, cluster, service, now)
                .ok_or_else(|| Fault::new("ecs:UpdateService", FaultKind::Other, "gone"))
        })
        .await
    }
}

/// The backend of the simulation: one shared ECS, store and clock.
#[derive(Clone)]
pub struct SimBackend {
    pub services: SimServices,
    pub store: Arc<MemoryStore>,
    pub clock: Arc<VirtualClock>,
}

impl SimBackend {
    pub fn new(start: f64) -> Self {
        let clock = Arc::new(VirtualClock::starting_at(start));
        Self {
            services: SimServices::new(clock.clone()),
            store: Arc::new(MemoryStore::new()),
            clock,
        }
    }
}

impl Backend for SimBackend {
    type Services = SimServices;
    type Store = Arc<MemoryStore>;
    type Clock = VirtualClock;

    async fn connect(
        &self,
        request: &HandlerRequest,
    ) -> Result<(SimServices, Arc<MemoryStore>), RestartError> {
        request
            .caller_credentials()
            .map_err(RestartError::Credentials)?;
        Ok((self.services.clone(), self.store.clone()))
    }

    fn clock(&self) -> &VirtualClock {
        &self.clock
    }
}
