//! An in-memory ECS on a virtual clock, for the property tests and the fuzzer: the real
//! handlers and engine run over it exactly as over AWS, only faster and with every fault
//! under the test's control. It keeps the ground truth (which task was started by which
//! call, how each really ended) that the tests check the handler's answers against.
//!
//! What it models: RunTask with idempotency tokens and placement failures, StartTask on
//! instances (no token), DescribeTasks (with tasks not yet visible and tasks forgotten
//! after they stopped), StopTask, ListTasks by `startedBy`, GetLogEvents, and per call: a
//! fault before or after acting, a slow answer, or the calling process dying right after
//! ECS acted. Beyond that, AWS as it answers ([`Adversity`], switched on per scenario; each
//! names the AWS page it comes from): DEPROVISIONING and DELETED states, ListTasks later
//! than DescribeTasks, tags gone after StopTask, partial and empty GetLogEvents pages and
//! late log lines, RunTask refused for the PROVISIONING quota, a client token reused with
//! other parameters refused.
//!
//! Off unless a test turns them on: ECS's request throttling
//! ([`SimGateway::throttle_with`](handler_kit::sim::SimGateway::throttle_with): the
//! account's token buckets, a background consumer, random throttling, the SDK's retries;
//! see `handler_kit::clock::throttle`), and a scheduled clock (`VirtualClock::scheduled`) on
//! which many operations run at once, every call taking its latency in virtual time.

use std::collections::{BTreeMap, VecDeque};

use handler_kit::sim::{FaultPlan, TwinState};

use crate::clock::throttle;
use crate::clock::Clock;
use crate::ecs::{
    ContainerInfo, Described, Ecs, Fault, FaultKind, LaunchSpec, Launched, LogPage, LogPageQuery,
    StartedTask, TaskDefinitionInfo,
};
use crate::outcome::{ContainerState, TaskState};
pub use crate::store::Injected;

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

/// AWS as it answers, beyond the basics: each behaviour can be switched on per scenario
/// (the property tests pick them at random) and is counted in [`Hits`] when it changes
/// an answer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Adversity {
    /// Seconds a stopped task shows `DEPROVISIONING` before `STOPPED`: awsvpc tasks go
    /// STOPPING → DEPROVISIONING → STOPPED while their network interface is detached
    /// (Amazon ECS Developer Guide, "Amazon ECS task lifecycle").
    pub deprovisioning: f64,
    /// Seconds after `STOPPED` from which DescribeTasks shows `DELETED`: "DELETED — This is
    /// a transition state when a task stops. This state is not displayed in the console,
    /// but is displayed in describe-tasks." (same page).
    pub deleted_after: Option<f64>,
    /// Seconds ListTasks lags behind DescribeTasks in showing a new task: "The Amazon ECS
    /// API follows an eventual consistency model" (ECS API Reference, RunTask).
    pub list_lag: f64,
    /// GetLogEvents pages hold at most this many events: "A returned page might only be
    /// partially full, or even empty" (CloudWatch Logs API Reference, GetLogEvents).
    pub log_page: Option<usize>,
    /// Empty pages GetLogEvents answers before each one with events (same page).
    pub empty_pages: u32,
    /// Seconds after a task stopped before its last log line can be read (CloudWatch
    /// Logs ingests asynchronously; unverified how long, so random in the tests).
    pub late_lines: f64,
    /// RunTask calls to refuse with the managed-scaling PROVISIONING quota's
    /// ClientException (ECS API Reference, RunTask, Errors).
    pub provisioning_refusals: u32,
}

/// How often each behaviour of [`Adversity`] (and the ones always on) changed an answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hits {
    pub deprovisioning: u64,
    pub deleted: u64,
    pub list_lag: u64,
    pub partial_pages: u64,
    pub empty_pages: u64,
    pub late_lines: u64,
    pub provisioning_refusals: u64,
    /// A task that lost its tags to StopTask was seen without them.
    pub tags_gone: u64,
    /// A client token reused with other parameters (ConflictException).
    pub token_conflicts: u64,
    /// A task ECS does not show yet (DescribeTasks MISSING, StopTask not found).
    pub not_visible: u64,
}

impl Hits {
    /// Each counter with its name, for a test's report.
    pub fn named(&self) -> [(&'static str, u64); 10] {
        [
            ("DEPROVISIONING shown", self.deprovisioning),
            ("DELETED shown", self.deleted),
            ("ListTasks behind DescribeTasks", self.list_lag),
            ("partial GetLogEvents pages", self.partial_pages),
            ("empty GetLogEvents pages", self.empty_pages),
            ("late log lines", self.late_lines),
            (
                "RunTask refused: PROVISIONING quota",
                self.provisioning_refusals,
            ),
            ("tags gone after StopTask", self.tags_gone),
            (
                "client token reused with other parameters",
                self.token_conflicts,
            ),
            ("task not visible yet", self.not_visible),
        ]
    }

    pub fn add(&mut self, other: &Hits) {
        self.deprovisioning += other.deprovisioning;
        self.deleted += other.deleted;
        self.list_lag += other.list_lag;
        self.partial_pages += other.partial_pages;
        self.empty_pages += other.empty_pages;
        self.late_lines += other.late_lines;
        self.provisioning_refusals += other.provisioning_refusals;
        self.tags_gone += other.tags_gone;
        self.token_conflicts += other.token_conflicts;
        self.not_visible += other.not_visible;
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
    /// Its attempt tag (StartTask), until StopTask deletes its tags.
    pub attempt_tag: Option<String>,
    /// Whether it was started with an attempt tag.
    pub tagged_at_start: bool,
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

    /// Its `app` container's log as GetLogEvents shows it at `now`: (time, line), oldest
    /// first, and whether lines were held back (late). The lines but the last are logged
    /// just after the start; the last one and the exit line when it ends, readable only
    /// `late_lines` seconds later.
    fn log_events(&self, now: f64, world: &Adversity) -> (Vec<(f64, String)>, bool) {
        let end = self.end();
        let mut lines = if self.script.logs.is_empty() {
            vec!["app starting".to_string()]
        } else {
            self.script.logs.clone()
        };
        let code = end
            .exits
            .iter()
            .find(|(n, _)| n == "app")
            .and_then(|(_, e)| *e);
        lines.push(format!("app exited with code {code:?}"));
        let last = lines.len() - 1;
        let mut events = Vec::new();
        let mut late = false;
        for (i, line) in lines.into_iter().enumerate() {
            let at = if i + 1 >= last && (i == last || world.late_lines > 0.0) {
                end.at
            } else {
                self.created_at + 0.001 * (i as f64 + 1.0)
            };
            let readable = if at >= end.at {
                at + world.late_lines
            } else {
                at
            };
            if now >= readable {
                events.push((at, line));
            } else if now >= end.at {
                late = true;
            }
        }
        (events, late)
    }

    /// DescribeTasks' view at `now`; `None` when it does not know the task.
    fn observe(&self, now: f64, world: &Adversity, hits: &mut Hits) -> Option<TaskState> {
        if !self.is_visible_at(now) {
            hits.not_visible += 1;
            return None;
        }
        let end = self.end();
        // ECS's own STOPPED comes after deprovisioning; the containers stopped at end.at.
        let stopped_at = end.at + world.deprovisioning;
        if let Some(forget) = self.script.forgotten_after {
            if now >= stopped_at + forget {
                return None;
            }
        }
        let ended = now >= end.at;
        let status = if now >= stopped_at {
            match world.deleted_after {
                Some(after) if now >= stopped_at + after => {
                    hits.deleted += 1;
                    "DELETED"
                }
                _ => "STOPPED",
            }
        } else if ended {
            hits.deprovisioning += 1;
            "DEPROVISIONING"
        } else if self.script.never_starts {
            "PENDING"
        } else {
            "RUNNING"
        };
        // While deprovisioning, the stop code and exit codes are already known (shown as
        // for STOPPED: unverified whether ECS shows them before STOPPED).
        let stopped = ended;
        Some(TaskState {
            arn: self.arn.clone(),
            last_status: status.into(),
            stop_code: stopped.then(|| end.stop_code.clone()),
            stopped_reason: stopped.then(|| format!("{} (simulated)", end.stop_code)),
            started: end.started,
            stopped_at: ended.then_some(end.at),
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
    /// The tasks each client token started, and a digest of the parameters it came with.
    tokens: BTreeMap<String, (Vec<String>, String)>,
    pub world: Adversity,
    pub hits: Hits,
    /// Every launch request (RunTask and StartTask), as sent.
    pub launches: Vec<LaunchSpec>,
    /// CloudFormation's status of each stack (DescribeStacks); a stack not listed is
    /// unknown to it.
    pub stacks: BTreeMap<String, String>,
    /// Scripts for the next tasks started, in order; then `default_script`.
    pub scripts: VecDeque<TaskScript>,
    pub default_script: TaskScript,
    /// Tasks to answer as not placed, for the next RunTask/StartTask calls.
    pub not_placed: VecDeque<u32>,
    /// Faults by the number of the ECS call they answer (0-based, every operation), the
    /// calls by operation name (for the tests' figures), whether an injected crash fired
    /// (the invocation is to be dropped), and ECS's request throttling for this account
    /// (off by default).
    pub plan: FaultPlan,
    next_id: u64,
}

impl TwinState for SimState {
    fn plan(&mut self) -> &mut FaultPlan {
        &mut self.plan
    }
}

handler_kit::sim_gateway! {
    /// The in-memory ECS. Cheap to clone: clones share one state.
    pub struct SimEcs(SimState), throttled by throttle::ECS_TASK_RULES
}

impl SimEcs {
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

    fn start(
        state: &mut SimState,
        spec: &LaunchSpec,
        count: u32,
        launched_by: &str,
        attempt_tag: Option<&str>,
        now: f64,
    ) -> Result<Launched, Fault> {
        state.launches.push(spec.clone());
        if !state.clusters.contains(&spec.cluster) {
            return Err(Fault::from_service(
                "ecs:RunTask",
                Some("ClusterNotFoundException"),
                Some("Cluster not found."),
                Some(400),
            ));
        }
        let tags = match attempt_tag {
            Some(tag) => {
                let mut tags = spec.tags.clone();
                tags.push((crate::ecs::ATTEMPT_TAG.to_string(), tag.to_string()));
                tags
            }
            None => spec.tags.clone(),
        };
        if let Some(why) = refusal(spec, &tags, count) {
            return Err(Fault::from_service(
                "ecs:RunTask",
                Some("InvalidParameterException"),
                Some(&why),
                Some(400),
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
                attempt_tag: attempt_tag.map(str::to_string),
                tagged_at_start: attempt_tag.is_some(),
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
        self.0
            .call("ecs:DescribeTaskDefinition", &[], by, |state, _| {
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
        // Amazon ECS Developer Guide, "AWS Fargate throttling quotas": RunTask on Fargate
        // draws on a bucket of its own too (as far as the request says: a cluster's
        // default strategy is not looked at, as in `emulator/buckets.py`).
        let fargate = spec.model.launch_type.as_deref() == Some("FARGATE")
            || spec
                .model
                .capacity_provider_strategy
                .iter()
                .flatten()
                .any(|i| matches!(i.capacity_provider.as_str(), "FARGATE" | "FARGATE_SPOT"));
        let extra: &[&'static str] = if fargate {
            &[throttle::FARGATE_RUN_TASK.name]
        } else {
            &[]
        };
        self.0.call("ecs:RunTask", extra, by, |state, now| {
            let parameters = parameters_digest(spec, count);
            if let Some((arns, digest)) = state.tokens.get(client_token) {
                if *digest != parameters {
                    // ECS API Reference, RunTask, Errors, ConflictException: "The RunTask
                    // request could not be processed due to conflicts. The provided
                    // clientToken is already in use with a different RunTask request. The
                    // resourceIds are the existing task ARNs which are already associated
                    // with the clientToken." The SDK gateway reads the ARNs of such an
                    // answer as the tasks the token started; so does this twin.
                    state.hits.token_conflicts += 1;
                }
                return Ok(Launched {
                    task_arns: arns.clone(),
                    not_placed: Vec::new(),
                });
            }
            if state.world.provisioning_refusals > 0 {
                state.world.provisioning_refusals -= 1;
                state.hits.provisioning_refusals += 1;
                // ECS API Reference, RunTask, Errors: "If you get a ClientException error,
                // the RunTask could not be processed because you use managed scaling and
                // there is a capacity error because the quota of tasks in the PROVISIONING
                // per cluster has been reached." (The message's wording is unverified.)
                return Err(Fault::from_service(
                    "ecs:RunTask",
                    Some("ClientException"),
                    Some("The quota of tasks in the PROVISIONING state per cluster has been reached."),
                    Some(400),
                ));
            }
            let launched = Self::start(state, spec, count, client_token, None, now)?;
            state.tokens.insert(
                client_token.to_string(),
                (launched.task_arns.clone(), parameters),
            );
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
        self.0
            .call("ecs:StartTask", &[], by, |state, now| {
                Self::start(
                    state,
                    spec,
                    instances.len() as u32,
                    attempt,
                    Some(attempt),
                    now,
                )
            })
            .await
    }

    async fn find_started(
        &self,
        cluster: &str,
        started_by: &str,
        by: f64,
    ) -> Result<Vec<StartedTask>, Fault> {
        self.0
            .call("ecs:ListTasks", &[], by, |state, now| {
                let lag = state.world.list_lag;
                let mut found = Vec::new();
                for task in state
                    .tasks
                    .iter()
                    .filter(|t| t.cluster == cluster && t.started_by == started_by)
                    .filter(|t| t.is_visible_at(now))
                {
                    if !task.is_visible_at(now - lag) {
                        state.hits.list_lag += 1;
                        continue;
                    }
                    if task.attempt_tag.is_none() && task.tagged_at_start {
                        state.hits.tags_gone += 1;
                    }
                    found.push(StartedTask {
                        arn: task.arn.clone(),
                        created_at: Some(task.created_at),
                        attempt: task.attempt_tag.clone(),
                    });
                }
                Ok(found)
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
        self.0
            .call("ecs:DescribeTasks", &[], by, |state, now| {
                if !state.clusters.iter().any(|c| c == cluster) {
                    return Err(Fault::new(
                        "ecs:DescribeTasks",
                        FaultKind::ClusterNotFound,
                        "ClusterNotFoundException",
                    ));
                }
                let mut described = Described::default();
                let SimState {
                    tasks, world, hits, ..
                } = state;
                for arn in arns {
                    match tasks
                        .iter()
                        .find(|t| &t.arn == arn)
                        .and_then(|t| t.observe(now, world, hits))
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
        reason: &str,
        by: f64,
    ) -> Result<(), Fault> {
        self.0
            .call("ecs:StopTask", &[], by, |state, now| {
                // ECS API Reference, StopTask, `reason`: "Up to 255 characters are allowed in
                // this message."
                if reason.chars().count() > 255 {
                    return Err(Fault::from_service(
                        "ecs:StopTask",
                        Some("InvalidParameterException"),
                        Some("reason: at most 255 characters"),
                        Some(400),
                    ));
                }
                let Some(task) = state
                    .tasks
                    .iter_mut()
                    .find(|t| t.arn == arn && t.is_visible_at(now))
                else {
                    state.hits.not_visible += 1;
                    return Err(Fault::from_service(
                        "ecs:StopTask",
                        Some("InvalidParameterException"),
                        Some("The referenced task was not found."),
                        Some(400),
                    ));
                };
                if task.is_running_at(now) && task.stop_requested_at.is_none() {
                    task.stop_requested_at = Some(now);
                }
                // ECS API Reference, StopTask: "Any tags associated with the task will be
                // deleted."
                task.attempt_tag = None;
                Ok(())
            })
            .await
    }

    async fn log_page(&self, query: &LogPageQuery, by: f64) -> Result<Option<LogPage>, Fault> {
        self.0
            .call("logs:GetLogEvents", &[], by, |state, now| {
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
                let world = state.world.clone();
                let (events, late) = task.log_events(now, &world);
                if late {
                    state.hits.late_lines += 1;
                }
                let since = query
                    .start_time_ms
                    .map_or(f64::MIN, |ms| ms as f64 / 1000.0);
                let events: Vec<String> = events
                    .into_iter()
                    .filter(|(at, _)| *at >= since)
                    .map(|(_, line)| line)
                    .collect();
                Ok(Some(read_page(&events, query, &world, &mut state.hits)))
            })
            .await
    }

    async fn stack_status(&self, stack_id: &str, by: f64) -> Result<Option<String>, Fault> {
        self.0
            .call("cloudformation:DescribeStacks", &[], by, |state, _| {
                Ok(state.stacks.get(stack_id).cloned())
            })
            .await
    }

    async fn list_running(
        &self,
        cluster: &str,
        started_by: &str,
        by: f64,
    ) -> Result<Vec<String>, Fault> {
        self.0
            .call("ecs:ListTasks", &[], by, |state, now| {
                Ok(state
                    .tasks
                    .iter()
                    .filter(|t| t.cluster == cluster && t.started_by == started_by)
                    .filter(|t| {
                        t.is_visible_at(now - state.world.list_lag)
                            && t.is_running_at(now)
                            && t.stop_requested_at.is_none()
                    })
                    .map(|t| t.arn.clone())
                    .collect())
            })
            .await
    }
}

/// Why ECS would refuse this launch, if it would: the rules of ECS's own that a handler
/// must respect (the same the emulator's validator enforces on the wire, from the ECS
/// service model and the API reference; see `emulator/aws_rules.py`).
fn refusal(spec: &LaunchSpec, tags: &[(String, String)], count: u32) -> Option<String> {
    // ECS API Reference, RunTask, `count`: "You can specify up to 10 tasks for each call";
    // StartTask, `containerInstances`: "You can specify up to 10 container instances."
    if !(1..=10).contains(&count) {
        return Some(format!("count {count} is not within 1 to 10"));
    }
    // ECS API Reference, RunTask, `tags`: "Maximum number of tags per resource - 50";
    // "Maximum key length - 128 Unicode characters"; "Maximum value length - 256 Unicode
    // characters"; "Do not use aws:, AWS:, or any upper or lowercase combination of such
    // as a prefix for either keys or values"; the ECS service model's TagKey/TagValue
    // pattern `^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$`.
    if tags.len() > 50 {
        return Some(format!("{} tags: at most 50 per resource", tags.len()));
    }
    static PATTERN: std::sync::OnceLock<Option<regex::Regex>> = std::sync::OnceLock::new();
    let pattern =
        PATTERN.get_or_init(|| regex::Regex::new(r"^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$").ok());
    let allowed = |text: &str| pattern.as_ref().is_some_and(|p| p.is_match(text));
    for (key, value) in tags {
        let reserved = |t: &str| t.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("aws:"));
        let length = key.chars().count();
        if !(1..=128).contains(&length) || value.chars().count() > 256 {
            return Some("a tag key or value is too long".into());
        }
        if !allowed(key) || !allowed(value) || reserved(key) || reserved(value) {
            return Some(
                "a tag key or value has characters ECS does not allow, or the aws: prefix".into(),
            );
        }
    }
    // ECS API Reference, CapacityProviderStrategyItem: "If no weight value is specified,
    // the default value of 0 is used ... at least one of the capacity providers must have
    // a weight value greater than zero"; "Only one capacity provider in a capacity
    // provider strategy can have a base defined"; RunTask: "If a capacityProviderStrategy
    // is specified, the launchType parameter must be omitted."
    if let Some(items) = &spec.model.capacity_provider_strategy {
        if !items.is_empty() && items.iter().all(|i| i.weight.unwrap_or(0) == 0) {
            return Some(
                "at least one capacity provider must have a weight greater than zero".into(),
            );
        }
        if items
            .iter()
            .filter(|i| i.base.is_some_and(|b| b > 0))
            .count()
            > 1
        {
            return Some("only one capacity provider can have a base".into());
        }
        let mut names: Vec<&str> = items.iter().map(|i| i.capacity_provider.as_str()).collect();
        names.sort_unstable();
        if names.windows(2).any(|w| w[0] == w[1]) {
            return Some("a capacity provider is named twice".into());
        }
        if !items.is_empty() && spec.model.launch_type.is_some() {
            return Some("launchType and capacityProviderStrategy exclude each other".into());
        }
    }
    None
}

/// A digest of what a RunTask asked for, to tell a client token reused with other
/// parameters.
fn parameters_digest(spec: &LaunchSpec, count: u32) -> String {
    use sha2::Digest;
    let text = format!(
        "{}|{}|{}|{}|{:?}|{:?}",
        spec.cluster, spec.task_definition, spec.started_by, count, spec.tags, spec.model
    );
    format!("{:x}", sha2::Sha256::digest(text.as_bytes()))
}

/// One GetLogEvents page of `events` (oldest first), read backward as `query` asks, with
/// the partial and empty pages `world` asks for. Tokens are `b<end>-<empties>`: the page
/// ends before event `end`, and `empties` empty pages were answered there already. At the
/// beginning the token comes back unchanged, as AWS says it does.
fn read_page(
    events: &[String],
    query: &LogPageQuery,
    world: &Adversity,
    hits: &mut Hits,
) -> LogPage {
    let (end, empties) = query
        .token
        .as_deref()
        .and_then(|t| t.strip_prefix('b'))
        .and_then(|t| t.split_once('-'))
        .and_then(|(e, n)| Some((e.parse::<usize>().ok()?, n.parse::<u32>().ok()?)))
        .unwrap_or((events.len(), 0));
    let end = end.min(events.len());
    if end == 0 {
        return LogPage {
            messages: Vec::new(),
            backward_token: Some(query.token.clone().unwrap_or_else(|| "b0-0".into())),
        };
    }
    if empties < world.empty_pages {
        hits.empty_pages += 1;
        return LogPage {
            messages: Vec::new(),
            backward_token: Some(format!("b{end}-{}", empties + 1)),
        };
    }
    let wanted = query.limit.clamp(1, 10_000) as usize;
    let size = world.log_page.map_or(wanted, |p| p.clamp(1, wanted));
    if size < wanted && end > size {
        hits.partial_pages += 1;
    }
    let start = end.saturating_sub(size);
    LogPage {
        messages: events[start..end].to_vec(),
        backward_token: Some(format!("b{start}-0")),
    }
}

/// The backend of the simulation: one shared ECS, store and clock for every request.
pub type SimBackend = handler_kit::sim::SimBackend<SimEcs>;
