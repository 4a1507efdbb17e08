//! An in-memory ECS on a virtual clock, for the property tests and the fuzzer: the real
//! handlers and engine run over it exactly as over AWS, only faster and with every fault
//! under the test's control. It keeps the ground truth (which task was started by which
//! call, how each really ended) that the tests check the handler's answers against.
//!
//! What it models: RunTask with idempotency tokens and placement failures, StartTask on
//! instances (no token), DescribeTasks (with tasks not yet visible and tasks forgotten
//! after they stopped), StopTask, ListTasks by `startedBy`, and per call: a fault before
//! or after acting, a slow answer, or the calling process dying right after ECS acted.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use cfn_protocol::HandlerRequest;

use crate::clock::Clock;
use crate::ecs::{
    ContainerInfo, Described, Ecs, Fault, FaultKind, LaunchSpec, Launched, TaskDefinitionInfo,
    ATTEMPT_TAG,
};
use crate::error::TaskRunError;
use crate::outcome::{ContainerState, TaskState};
use crate::resource::Backend;
pub use crate::store::Injected;
use crate::store::MemoryStore;

/// The log group of the simulated `app` containers.
pub const SIM_LOG_GROUP: &str = "/ecs/sim";

pub use handler_kit::clock::VirtualClock;

/// How a task started in the simulation will behave.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskScript {
    /// Seconds from its start until it stops by itself.
    pub runs_for: f64,
    /// It never starts: it stops with `TaskFailedToStart` after `runs_for`.
    pub never_starts: bool,
    /// The stop code of its own end (`EssentialContainerExited` for a normal end;
    /// `SpotInterruption` and the like for an end from outside).
    pub stop_code: String,
    /// Exit code per container at its own end.
    pub exits: Vec<(String, Option<i32>)>,
    /// Exit code of every container when StopTask stops it (143 for most, 0 for an app
    /// that exits cleanly on SIGTERM).
    pub exit_on_stop: Option<i32>,
    /// Seconds after StopTask until it is STOPPED.
    pub stop_takes: f64,
    /// ECS does not know it (DescribeTasks, ListTasks, StopTask) for this long after its
    /// start: ECS is eventually consistent, for seconds.
    pub invisible_for: f64,
    /// DescribeTasks forgets it this long after it stopped.
    pub forgotten_after: Option<f64>,
    /// What its `app` container logs (empty: one default line).
    pub logs: Vec<String>,
}

impl Default for TaskScript {
    fn default() -> Self {
        Self {
            runs_for: 5.0,
            never_starts: false,
            stop_code: crate::outcome::NORMAL_STOP_CODE.into(),
            exits: vec![("app".into(), Some(0))],
            exit_on_stop: Some(143),
            stop_takes: 1.0,
            invisible_for: 0.0,
            forgotten_after: None,
            logs: Vec::new(),
        }
    }
}

/// A task as the simulation knows it.
#[derive(Debug, Clone)]
pub struct SimTask {
    pub arn: String,
    pub cluster: String,
    pub started_by: String,
    /// The client token or StartTask attempt tag of the call that started it.
    pub launched_by: String,
    pub created_at: f64,
    pub script: TaskScript,
    pub stop_requested_at: Option<f64>,
}

/// How a task ended (or is ending), as the ground truth.
#[derive(Debug, Clone, PartialEq)]
pub struct Ended {
    pub at: f64,
    pub stop_code: String,
    pub exits: Vec<(String, Option<i32>)>,
    pub started: bool,
}

impl SimTask {
    /// When and how it ends, given what happened to it so far.
    pub fn end(&self) -> Ended {
        let own = self.created_at + self.script.runs_for;
        match self.stop_requested_at {
            Some(asked) if asked + self.script.stop_takes < own => Ended {
                at: asked + self.script.stop_takes,
                stop_code: "UserInitiated".into(),
                exits: self
                    .script
                    .exits
                    .iter()
                    .map(|(name, _)| {
                        (
                            name.clone(),
                            if self.script.never_starts {
                                None
                            } else {
                                self.script.exit_on_stop
                            },
                        )
                    })
                    .collect(),
                started: !self.script.never_starts,
            },
            _ if self.script.never_starts => Ended {
                at: own,
                stop_code: "TaskFailedToStart".into(),
                exits: self
                    .script
                    .exits
                    .iter()
                    .map(|(n, _)| (n.clone(), None))
                    .collect(),
                started: false,
            },
            _ => Ended {
                at: own,
                stop_code: self.script.stop_code.clone(),
                exits: self.script.exits.clone(),
                started: true,
            },
        }
    }

    /// ECS is eventually consistent: a task just started may be unknown for a while.
    pub fn is_visible_at(&self, now: f64) -> bool {
        now >= self.created_at + self.script.invisible_for
    }

    pub fn is_running_at(&self, now: f64) -> bool {
        now < self.end().at
    }

    /// DescribeTasks' view at `now`; `None` when it does not know the task.
    fn observe(&self, now: f64) -> Option<TaskState> {
        if !self.is_visible_at(now) {
            return None;
        }
        let end = self.end();
        if let Some(forget) = self.script.forgotten_after {
            if now >= end.at + forget {
                return None;
            }
        }
        let stopped = now >= end.at;
        Some(TaskState {
            arn: self.arn.clone(),
            last_status: if stopped {
                "STOPPED"
            } else if self.script.never_starts {
                "PENDING"
            } else {
                "RUNNING"
            }
            .into(),
            stop_code: stopped.then(|| end.stop_code.clone()),
            stopped_reason: stopped.then(|| format!("{} (simulated)", end.stop_code)),
            started: end.started,
            containers: end
                .exits
                .iter()
                .map(|(name, exit)| ContainerState {
                    name: name.clone(),
                    exit_code: if stopped { *exit } else { None },
                    reason: (stopped && !end.started)
                        .then(|| "CannotPullContainerError (simulated)".to_string()),
                })
                .collect(),
        })
    }
}

#[derive(Debug, Default)]
pub struct SimState {
    pub tasks: Vec<SimTask>,
    pub clusters: Vec<String>,
    pub definitions: BTreeMap<String, TaskDefinitionInfo>,
    tokens: BTreeMap<String, Vec<String>>,
    /// Scripts for the next tasks started, in order; then `default_script`.
    pub scripts: VecDeque<TaskScript>,
    pub default_script: TaskScript,
    /// Tasks to answer as not placed, for the next RunTask/StartTask calls.
    pub not_placed: VecDeque<u32>,
    /// Faults by the number of the ECS call they answer (0-based, every operation).
    pub faults: BTreeMap<u64, Injected>,
    pub calls: u64,
    /// Calls by operation name, for the tests' figures.
    pub call_log: Vec<&'static str>,
    /// Set when an injected crash fired: the invocation is to be dropped.
    pub crashed: bool,
    next_id: u64,
}

/// The in-memory ECS. Cheap to clone: clones share one state.
#[derive(Clone)]
pub struct SimEcs {
    pub state: Arc<Mutex<SimState>>,
    pub clock: Arc<VirtualClock>,
}

/// How a call goes, decided before it is made.
enum Plan {
    Go { latency: f64 },
    FailFirst(FaultKind),
    FailAfter(FaultKind),
    Crash,
}

impl SimEcs {
    pub fn new(clock: Arc<VirtualClock>) -> Self {
        Self {
            state: Arc::new(Mutex::new(SimState::default())),
            clock,
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, SimState> {
        // A poisoned lock only means a test panicked; its state is still the truth.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A cluster, and a task definition `family` with an essential `app` and a
    /// non-essential `sidecar`.
    pub fn with_world(self, cluster: &str, family: &str) -> Self {
        {
            let mut state = self.lock();
            state.clusters.push(cluster.to_string());
            let definition = TaskDefinitionInfo {
                arn: format!("arn:aws:ecs:us-east-1:123456789012:task-definition/{family}:1"),
                containers: vec![
                    ContainerInfo {
                        name: "app".into(),
                        essential: true,
                        environment: vec![("DB_HOST".into(), "db-1".into())],
                        awslogs: Some(crate::ecs::AwsLogs {
                            group: SIM_LOG_GROUP.into(),
                            stream_prefix: Some(family.into()),
                            region: None,
                        }),
                    },
                    ContainerInfo {
                        name: "sidecar".into(),
                        essential: false,
                        ..Default::default()
                    },
                ],
            };
            state
                .definitions
                .insert(family.to_string(), definition.clone());
            state.definitions.insert(definition.arn.clone(), definition);
            state.default_script.exits = vec![("app".into(), Some(0)), ("sidecar".into(), Some(0))];
        }
        self
    }

    fn plan(&self, operation: &'static str) -> Plan {
        let mut state = self.lock();
        let call = state.calls;
        state.calls += 1;
        state.call_log.push(operation);
        match state.faults.remove(&call) {
            None => Plan::Go { latency: 0.05 },
            Some(Injected::Slow(seconds)) => Plan::Go { latency: seconds },
            Some(Injected::Before(kind)) => Plan::FailFirst(kind),
            Some(Injected::After(kind)) => Plan::FailAfter(kind),
            Some(Injected::Crash) => Plan::Crash,
        }
    }

    /// Runs `act` as ECS would for this call, with whatever fault is planned for it.
    async fn call<T>(
        &self,
        operation: &'static str,
        by: f64,
        act: impl FnOnce(&mut SimState, f64) -> Result<T, Fault>,
    ) -> Result<T, Fault> {
        let plan = self.plan(operation);
        let now = self.clock.now();
        match plan {
            Plan::FailFirst(kind) => {
                self.clock.advance(0.05);
                let mut fault = Fault::new(operation, kind, "injected before acting");
                fault.may_have_acted = false;
                Err(fault)
            }
            Plan::FailAfter(kind) => {
                let _ = act(&mut self.lock(), now);
                self.clock.advance(0.05);
                let mut fault = Fault::new(operation, kind, "injected after acting");
                fault.may_have_acted = true;
                Err(fault)
            }
            Plan::Crash => {
                let _ = act(&mut self.lock(), now);
                self.lock().crashed = true;
                std::future::pending::<()>().await;
                Err(Fault::new(operation, FaultKind::Other, "unreachable"))
            }
            Plan::Go { latency } => {
                if now + latency > by {
                    // The caller gives up at its deadline; ECS may or may not have acted.
                    let _ = act(&mut self.lock(), now);
                    self.clock.set(by.max(now));
                    return Err(Fault::new(
                        operation,
                        FaultKind::Network,
                        "no answer in time (simulated)",
                    ));
                }
                let answer = act(&mut self.lock(), now);
                self.clock.advance(latency);
                answer
            }
        }
    }

    fn start(
        state: &mut SimState,
        spec: &LaunchSpec,
        count: u32,
        launched_by: &str,
        now: f64,
    ) -> Result<Launched, Fault> {
        if !state.clusters.contains(&spec.cluster) {
            return Err(Fault::new(
                "ecs:RunTask",
                FaultKind::ClusterNotFound,
                "ClusterNotFoundException: Cluster not found.",
            ));
        }
        let skip = state.not_placed.pop_front().unwrap_or(0).min(count);
        let mut launched = Launched::default();
        for _ in 0..skip {
            launched
                .not_placed
                .push("task not placed: RESOURCE:MEMORY (simulated)".into());
        }
        for _ in skip..count {
            state.next_id += 1;
            let arn = format!(
                "arn:aws:ecs:us-east-1:123456789012:task/{}/{:032x}",
                spec.cluster, state.next_id
            );
            let script = state
                .scripts
                .pop_front()
                .unwrap_or_else(|| state.default_script.clone());
            state.tasks.push(SimTask {
                arn: arn.clone(),
                cluster: spec.cluster.clone(),
                started_by: spec.started_by.clone(),
                launched_by: launched_by.to_string(),
                created_at: now,
                script,
                stop_requested_at: None,
            });
            launched.task_arns.push(arn);
        }
        Ok(launched)
    }

    /// Tasks not stopped at the current time.
    pub fn running(&self) -> Vec<SimTask> {
        let now = self.clock.now();
        self.lock()
            .tasks
            .iter()
            .filter(|t| t.is_running_at(now))
            .cloned()
            .collect()
    }
}

impl Ecs for SimEcs {
    async fn describe_task_definition(
        &self,
        reference: &str,
        by: f64,
    ) -> Result<TaskDefinitionInfo, Fault> {
        self.call("ecs:DescribeTaskDefinition", by, |state, _| {
            state.definitions.get(reference).cloned().ok_or_else(|| {
                Fault::new(
                    "ecs:DescribeTaskDefinition",
                    FaultKind::BadRequest,
                    "ClientException: Unable to describe task definition.",
                )
            })
        })
        .await
    }

    async fn run_task(
        &self,
        spec: &LaunchSpec,
        count: u32,
        client_token: &str,
        by: f64,
    ) -> Result<Launched, Fault> {
        self.call("ecs:RunTask", by, |state, now| {
            if let Some(arns) = state.tokens.get(client_token) {
                return Ok(Launched {
                    task_arns: arns.clone(),
                    not_placed: Vec::new(),
                });
            }
            let launched = Self::start(state, spec, count, client_token, now)?;
            state
                .tokens
                .insert(client_token.to_string(), launched.task_arns.clone());
            Ok(launched)
        })
        .await
    }

    async fn start_task(
        &self,
        spec: &LaunchSpec,
        instances: &[String],
        attempt: &str,
        by: f64,
    ) -> Result<Launched, Fault> {
        self.call("ecs:StartTask", by, |state, now| {
            Self::start(state, spec, instances.len() as u32, attempt, now)
        })
        .await
    }

    async fn find_started(
        &self,
        cluster: &str,
        started_by: &str,
        attempt: Option<&str>,
        by: f64,
    ) -> Result<Vec<String>, Fault> {
        let _ = ATTEMPT_TAG;
        self.call("ecs:ListTasks", by, |state, now| {
            Ok(state
                .tasks
                .iter()
                .filter(|t| t.cluster == cluster && t.started_by == started_by)
                .filter(|t| attempt.is_none_or(|a| t.launched_by == a))
                .filter(|t| t.is_visible_at(now))
                .map(|t| t.arn.clone())
                .collect())
        })
        .await
    }

    async fn describe_tasks(
        &self,
        cluster: &str,
        arns: &[String],
        by: f64,
    ) -> Result<Described, Fault> {
        if arns.is_empty() {
            return Ok(Described::default());
        }
        self.call("ecs:DescribeTasks", by, |state, now| {
            if !state.clusters.iter().any(|c| c == cluster) {
                return Err(Fault::new(
                    "ecs:DescribeTasks",
                    FaultKind::ClusterNotFound,
                    "ClusterNotFoundException",
                ));
            }
            let mut described = Described::default();
            for arn in arns {
                match state
                    .tasks
                    .iter()
                    .find(|t| &t.arn == arn)
                    .and_then(|t| t.observe(now))
                {
                    Some(task) => described.tasks.push(task),
                    None => described.missing.push(arn.clone()),
                }
            }
            Ok(described)
        })
        .await
    }

    async fn stop_task(
        &self,
        _cluster: &str,
        arn: &str,
        _reason: &str,
        by: f64,
    ) -> Result<(), Fault> {
        self.call("ecs:StopTask", by, |state, now| {
            let task = state
                .tasks
                .iter_mut()
                .find(|t| t.arn == arn && t.is_visible_at(now))
                .ok_or_else(|| {
                    Fault::new(
                        "ecs:StopTask",
                        FaultKind::BadRequest,
                        "InvalidParameterException: The referenced task was not found.",
                    )
                })?;
            if task.is_running_at(now) && task.stop_requested_at.is_none() {
                task.stop_requested_at = Some(now);
            }
            Ok(())
        })
        .await
    }

    async fn log_tail(
        &self,
        query: &crate::machine::LogQuery,
        by: f64,
    ) -> Result<Option<Vec<String>>, Fault> {
        self.call("logs:GetLogEvents", by, |state, now| {
            // <prefix>/<container>/<task id>, as awslogs names streams.
            let mut parts = query.stream.rsplitn(3, '/');
            let (task_id, container) = (
                parts.next().unwrap_or_default(),
                parts.next().unwrap_or_default(),
            );
            let Some(task) = state
                .tasks
                .iter()
                .find(|t| t.arn.ends_with(&format!("/{task_id}")))
            else {
                return Ok(None);
            };
            if query.group != SIM_LOG_GROUP
                || container != "app"
                || task.script.never_starts
                || !task.is_visible_at(now)
            {
                return Ok(None);
            }
            let end = task.end();
            let mut lines = if task.script.logs.is_empty() {
                vec!["app starting".to_string()]
            } else {
                task.script.logs.clone()
            };
            if now >= end.at {
                let code = end
                    .exits
                    .iter()
                    .find(|(n, _)| n == "app")
                    .and_then(|(_, e)| *e);
                lines.push(format!("app exited with code {code:?}"));
            }
            let keep = (query.lines as usize).min(lines.len());
            Ok(Some(lines.split_off(lines.len() - keep)))
        })
        .await
    }

    async fn list_running(
        &self,
        cluster: &str,
        started_by: &str,
        by: f64,
    ) -> Result<Vec<String>, Fault> {
        self.call("ecs:ListTasks", by, |state, now| {
            Ok(state
                .tasks
                .iter()
                .filter(|t| t.cluster == cluster && t.started_by == started_by)
                .filter(|t| {
                    t.is_visible_at(now) && t.is_running_at(now) && t.stop_requested_at.is_none()
                })
                .map(|t| t.arn.clone())
                .collect())
        })
        .await
    }
}

/// The backend of the simulation: one shared ECS, store and clock for every request.
#[derive(Clone)]
pub struct SimBackend {
    pub ecs: SimEcs,
    pub store: Arc<MemoryStore>,
    pub clock: Arc<VirtualClock>,
}

impl SimBackend {
    pub fn new(start: f64) -> Self {
        let clock = Arc::new(VirtualClock::starting_at(start));
        Self {
            ecs: SimEcs::new(clock.clone()),
            store: Arc::new(MemoryStore::new()),
            clock,
        }
    }
}

impl Backend for SimBackend {
    type Ecs = SimEcs;
    type Store = Arc<MemoryStore>;
    type Clock = VirtualClock;

    async fn connect(
        &self,
        request: &HandlerRequest,
    ) -> Result<(SimEcs, Arc<MemoryStore>), TaskRunError> {
        request
            .caller_credentials()
            .map_err(TaskRunError::Credentials)?;
        Ok((self.ecs.clone(), self.store.clone()))
    }

    fn clock(&self) -> &VirtualClock {
        &self.clock
    }
}
