//! The run's state machine: the one place where a run changes state.
//!
//! ```text
//!              plan recorded
//!                   │
//!                   ▼
//!   ┌────────── Launching ──── every batch answered ───▶ Running ─── all stopped ──▶ Ended
//!   │  (batches started with          │                    │   (Succeeded / TasksFailed)
//!   │   idempotency tokens;           │ deadline, refused, │ deadline, unreadable,
//!   │   a lost StartTask answer       │ superseded         │ superseded
//!   │   is looked up, not retried)    ▼                    ▼
//!   │                              Stopping ◀──────────────┘
//!   │                  (outcome fixed and recorded first; StopTask;
//!   │                   confirmed when every task is STOPPED)
//!   │                                 │
//!   └── no task placed ──▶ Ended ◀────┘  (TimedOut / Rejected / Superseded / TasksFailed)
//! ```
//!
//! [`step`] takes the run, what just happened ([`Event`]) and the time, and returns the
//! run as it is now and what to do next ([`Next`]). It does no I/O: the engine carries
//! out `Next`, persists the run whenever `step` changed it (before acting on it), and
//! feeds the result back as the next event. Because the outcome of a run is fixed and
//! recorded before its tasks are stopped, a run is never decided from our own StopTask.

use serde::{Deserialize, Serialize};

use crate::ecs::{Described, Fault, FaultKind, Launched};
use crate::outcome::{
    decide, failing_containers, failure_line, failure_message, message_with_tails, retries,
    task_id, ContainerTail, Tail, TaskState, Verdict,
};
use crate::record::TaskResult;
use crate::update_policy::Fingerprint;

/// RunTask starts at most this many tasks a call.
pub const RUN_TASK_BATCH: u32 = 10;
/// Batches started at once: bounded, so that a burst stays under ECS's rate limits.
pub const LAUNCH_CONCURRENCY: usize = 5;
/// ECS is eventually consistent: a task may not be described for a while after its start.
pub const MISSING_GRACE_SECONDS: f64 = 60.0;
/// How long after a StartTask whose answer was lost to look for what it started
/// (ListTasks is eventually consistent too).
pub const LOOKUP_DELAY_SECONDS: f64 = 15.0;
/// Pause after a passing fault before trying again.
pub const RETRY_DELAY_SECONDS: f64 = 2.0;
/// Pause between two looks at tasks being stopped.
pub const STOP_CHECK_SECONDS: f64 = 2.0;
/// StopTask is sent again to a task still running this long after the last request.
pub const STOP_RESEND_SECONDS: f64 = 30.0;
/// How long to try to confirm that stopped tasks stopped, before the operation gives up
/// (the run stays Stopping in its record, for the next operation to finish).
pub const STOP_CONFIRM_LIMIT_SECONDS: f64 = 600.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Phase {
    /// The plan is recorded; batches are being started.
    Launching,
    /// Every batch was answered; the tasks are followed.
    Running,
    /// The outcome is fixed; the tasks that may still run are being stopped.
    Stopping,
    /// Every task stopped and the outcome is fixed; the logs that explain it (the failing
    /// containers' last lines) or that carry the run's output are being read.
    Collecting,
    /// Nothing of this run runs any more.
    Ended,
}

/// How a run ended (or will end, once stopping is confirmed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Ending {
    Succeeded,
    /// At least one task ended abnormally or could not be placed.
    TasksFailed,
    /// ECS refused to start or to show the tasks (a bad parameter, a missing permission).
    Rejected {
        fault: FaultKind,
    },
    TimedOut,
    /// Another operation (an update, a delete) took over before the run ended.
    Superseded,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum LaunchMode {
    RunTask,
    /// StartTask on the plan's container instances (one batch).
    StartTask,
}

/// What the run starts. Fixed when the run is created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub mode: LaunchMode,
    pub count: u32,
    /// The resolved task definition revision.
    pub task_definition: String,
    /// The containers whose exit codes decide.
    pub deciding: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instances: Vec<String>,
    /// Lines of each failing container's log to quote (0: none).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub log_tail: u32,
    /// Where the deciding containers log (awslogs with a stream prefix).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub logs: Vec<ContainerLog>,
    #[serde(default, skip_serializing_if = "Retry::is_off")]
    pub retry: Retry,
}

/// A container's awslogs configuration: its stream for a task is
/// `<prefix>/<container>/<task id>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerLog {
    pub container: String,
    pub group: String,
    pub prefix: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

/// Which failed tasks are started again, how often, and how.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Retry {
    pub attempts: u8,
    pub on: Vec<String>,
    #[serde(default)]
    pub spot_fallback: bool,
}

impl Retry {
    pub fn is_off(&self) -> bool {
        self.attempts == 0
    }
}

/// One log to read: the last `lines` of a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogQuery {
    pub group: String,
    pub stream: String,
    pub region: Option<String>,
    pub lines: u32,
}

/// The marker of the line that carries a run's output.
pub const OUTPUT_MARKER: &str = "TASKRUN_OUTPUT";
/// The most of an output kept (it goes into the record and the model).
pub const MAX_OUTPUT_BYTES: usize = 4096;
/// Lines read from the end of the log to find the output.
pub const OUTPUT_SEARCH_LINES: u32 = 200;
/// Tails read for at most this many failing tasks.
pub const TAILED_TASKS: usize = 10;
/// Tries to read logs before the run ends without them.
pub const LOG_TRIES: u8 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "camelCase")]
pub enum BatchState {
    /// Not started, or started by RunTask whose idempotent answer can be asked again.
    Pending,
    /// A StartTask call was made and its answer is unknown (the process may have died,
    /// or the call failed after ECS acted). Never sent again blindly.
    InFlight {
        since: f64,
    },
    Started,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Batch {
    pub size: u32,
    /// StartTask attempts made: each tags its tasks with its own attempt number.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attempts: u32,
    #[serde(flatten)]
    pub state: BatchState,
    /// A retry of a failed task: its attempt number and whether it falls back from
    /// FARGATE_SPOT to FARGATE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryOf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetryOf {
    pub attempt: u8,
    #[serde(default)]
    pub fallback: bool,
}

/// A task a retry replaced, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Retried {
    /// Its position in the run's task list.
    pub task: u32,
    pub cause: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Purpose {
    /// The failing containers' last lines, for the FAILED message.
    Tails,
    /// The output line of the first task.
    Output,
}

/// Logs being read once the outcome is fixed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Collect {
    pub purpose: Purpose,
    /// (task id, container) for each log to read.
    pub reads: Vec<(String, String)>,
    #[serde(default)]
    pub tries: u8,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Task ARNs of one run share everything up to the last `/`: stored once, so that a
/// run of 100 tasks fits a record and a callback context.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskArns {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub prefix: String,
    #[serde(default)]
    pub ids: Vec<String>,
}

impl TaskArns {
    pub fn push(&mut self, arn: &str) {
        if self.ids.is_empty() && self.prefix.is_empty() {
            if let Some(cut) = arn.rfind('/') {
                self.prefix = arn[..=cut].to_string();
            }
        }
        if !self.prefix.is_empty() && !arn.starts_with(&self.prefix) {
            // ARNs of another shape: keep every one whole.
            let prefix = std::mem::take(&mut self.prefix);
            for id in &mut self.ids {
                *id = format!("{prefix}{id}");
            }
        }
        let id = arn.strip_prefix(self.prefix.as_str()).unwrap_or(arn);
        if !self.ids.iter().any(|known| known == id) {
            self.ids.push(id.to_string());
        }
    }

    pub fn arns(&self) -> Vec<String> {
        self.ids
            .iter()
            .map(|id| format!("{}{id}", self.prefix))
            .collect()
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub fn contains(&self, arn: &str) -> bool {
        let id = arn.strip_prefix(self.prefix.as_str()).unwrap_or(arn);
        self.ids.iter().any(|known| known == id)
    }
}

/// Tasks a stopping run still has to stop and confirm.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StopState {
    /// When the operation driving the stop began to: it has [`STOP_CONFIRM_LIMIT_SECONDS`]
    /// from then to see every task stopped.
    pub since: f64,
    /// The request token of the operation that took the stop over from another (an
    /// update or delete); each one that does gets its own time to confirm the stop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    /// StopTask still to be sent: positions in [`Run::watched_arns`] (compact: a run of
    /// 100 tasks must fit its record).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub to_send: Vec<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<f64>,
    /// Whether to look for tasks of this TaskRun that the run did not record (a batch
    /// whose answer was never read): ListTasks by `startedBy`, once ECS can show them
    /// ([`LOOKUP_DELAY_SECONDS`] after stopping began). The run does not end before.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sweep: bool,
    /// Tasks found by the sweep, to stop and confirm along with the run's own.
    #[serde(default, skip_serializing_if = "TaskArns::is_empty")]
    pub found: TaskArns,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Run {
    /// The request token of the operation that started the run: a redelivered
    /// invocation with the same token resumes the run instead of starting another.
    pub token: String,
    /// Bumped by the engine at each write of the run: a callback that finds another
    /// revision in the record knows the run moved on without it.
    #[serde(default)]
    pub revision: u32,
    /// Each run keeps its own cluster: an update may move the TaskRun to another one.
    pub cluster: String,
    pub phase: Phase,
    pub started_at: f64,
    pub deadline: f64,
    pub timeout: u32,
    pub poll_interval: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ending: Option<Ending>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub plan: Plan,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub batches: Vec<Batch>,
    #[serde(default)]
    pub tasks: TaskArns,
    /// Lines for tasks that could not be placed (at most [`MAX_PLACEMENT_LINES`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_placed: Vec<String>,
    #[serde(default, skip_serializing_if = "is_zero_usize")]
    pub not_placed_count: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopping: Option<StopState>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub results: Vec<TaskResult>,
    /// What the run's tasks were given, for the next update to compare with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<Fingerprint>,
    /// The attempt number of each task, by position (empty while none is a retry).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attempts: Vec<u8>,
    /// Tasks replaced by a retry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retried: Vec<Retried>,
    /// The attempt number of each task not placed that still counts (with retries on).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_placed_attempts: Vec<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collect: Option<Collect>,
    /// The output the first task printed (see [`OUTPUT_MARKER`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// When a batch was last started (a retry, say), if after the run's start: a task
    /// that ECS does not show yet may be that recent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launched_at: Option<f64>,
}

fn is_zero_usize(n: &usize) -> bool {
    *n == 0
}

pub const MAX_PLACEMENT_LINES: usize = 10;
/// Above this many tasks, only failing tasks keep their per-container detail.
pub const DETAILED_TASKS: usize = 10;

/// What just happened to the run.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// An invocation began, or a wait ended: nothing new was observed.
    Resumed,
    /// Answers of the batches just started, by batch index.
    Launched(Vec<(usize, Result<Launched, Fault>)>),
    /// What the lookup of a StartTask attempt found.
    Found {
        batch: usize,
        result: Result<Vec<String>, Fault>,
    },
    /// DescribeTasks of every task of the run (and of the tasks a sweep found).
    Described(Result<Described, Fault>),
    /// StopTask answers, by ARN.
    StopsSent(Vec<(String, Result<(), Fault>)>),
    /// ListTasks by `startedBy`: the tasks of this TaskRun still running.
    Swept(Result<Vec<String>, Fault>),
    /// Another operation takes over: stop the run (unless it already ended).
    Abandon { reason: String, by: String },
    /// The logs asked for, in the order asked: their last lines, or `None` when there is
    /// no such stream.
    LogsRead(Vec<Result<Option<Vec<String>>, Fault>>),
}

/// What the engine does next.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// Start these batches (RunTask with their tokens, or StartTask).
    Launch(Vec<usize>),
    /// Look for what a StartTask attempt started.
    Find(usize),
    /// DescribeTasks for every task of the run.
    Describe,
    /// StopTask for these ARNs.
    Stop(Vec<String>),
    /// ListTasks by `startedBy` for tasks the run did not record.
    Sweep,
    /// Read these logs (GetLogEvents, from the end).
    ReadLogs(Vec<LogQuery>),
    /// Nothing to do before this many seconds have passed.
    Wait(f64),
    /// The run ended.
    Done,
    /// The run is stopping but its tasks could not be confirmed stopped in time: the
    /// operation ends, and the record keeps the run Stopping for the next one.
    GiveUp,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub run: Run,
    pub next: Next,
}

impl Run {
    /// A new run, nothing started yet.
    pub fn new(
        token: String,
        cluster: String,
        plan: Plan,
        now: f64,
        timeout: u32,
        poll_interval: u32,
    ) -> Self {
        let batches = match plan.mode {
            LaunchMode::StartTask if plan.count > 0 => vec![Batch {
                size: plan.count,
                attempts: 0,
                state: BatchState::Pending,
                retry: None,
            }],
            LaunchMode::StartTask => Vec::new(),
            LaunchMode::RunTask => {
                let mut left = plan.count;
                let mut batches = Vec::new();
                while left > 0 {
                    let size = left.min(RUN_TASK_BATCH);
                    batches.push(Batch {
                        size,
                        attempts: 0,
                        state: BatchState::Pending,
                        retry: None,
                    });
                    left -= size;
                }
                batches
            }
        };
        Self {
            token,
            revision: 0,
            cluster,
            phase: Phase::Launching,
            started_at: now,
            deadline: now + f64::from(timeout),
            timeout,
            poll_interval: poll_interval.max(1),
            finished_at: None,
            ending: None,
            reason: None,
            plan,
            batches,
            tasks: TaskArns::default(),
            not_placed: Vec::new(),
            not_placed_count: 0,
            stopping: None,
            results: Vec::new(),
            fingerprint: None,
            attempts: Vec::new(),
            retried: Vec::new(),
            not_placed_attempts: Vec::new(),
            collect: None,
            output: None,
            launched_at: None,
        }
    }

    /// When the run last started a batch.
    pub fn last_launch(&self) -> f64 {
        self.launched_at.unwrap_or(self.started_at)
    }

    /// Every task the run asked for: started or not placed.
    pub fn total_tasks(&self) -> usize {
        (self.tasks.len() + self.not_placed_count).max(self.plan.count as usize)
    }

    /// The pause before the next look at running tasks: a tenth of the time the run has
    /// been going, at least 1 s and at most PollInterval. A short task is seen finished
    /// within a second or two; a long one costs a look every PollInterval.
    pub fn poll_delay(&self, now: f64) -> f64 {
        ((now - self.started_at) / 10.0).clamp(1.0, f64::from(self.poll_interval.max(1)))
    }

    pub fn is_ended(&self) -> bool {
        self.phase == Phase::Ended
    }

    /// ARNs of every task to describe: the run's own and any a sweep found.
    pub fn watched_arns(&self) -> Vec<String> {
        let mut arns = self.tasks.arns();
        if let Some(stopping) = &self.stopping {
            for arn in stopping.found.arns() {
                if !self.tasks.contains(&arn) {
                    arns.push(arn);
                }
            }
        }
        arns
    }

    /// Positions of `arns` among the watched tasks (unknown ARNs are left out).
    pub fn positions(&self, arns: &[String]) -> Vec<u32> {
        let watched = self.watched_arns();
        let mut positions: Vec<u32> = arns
            .iter()
            .filter_map(|arn| watched.iter().position(|w| w == arn))
            .map(|p| p as u32)
            .collect();
        positions.sort_unstable();
        positions.dedup();
        positions
    }

    /// The ARNs at these positions among the watched tasks.
    pub fn arns_at(&self, positions: &[u32]) -> Vec<String> {
        let watched = self.watched_arns();
        positions
            .iter()
            .filter_map(|&p| watched.get(p as usize).cloned())
            .collect()
    }

    fn add_not_placed(&mut self, lines: Vec<String>, attempt: u8) {
        for line in lines {
            self.not_placed_count += 1;
            if self.not_placed.len() < MAX_PLACEMENT_LINES {
                self.not_placed.push(line);
            }
            if !self.plan.retry.is_off() {
                self.not_placed_attempts.push(attempt);
            }
        }
    }

    /// The awslogs configuration of a container, if it has one.
    pub fn log_of(&self, container: &str) -> Option<&ContainerLog> {
        self.plan.logs.iter().find(|l| l.container == container)
    }

    fn add_tail(&mut self, task_id: &str, container: &str, lines: &[String]) {
        for result in self
            .results
            .iter_mut()
            .filter(|r| crate::outcome::task_id(&r.task) == task_id)
        {
            for c in result.containers.iter_mut().filter(|c| c.name == container) {
                c.log_tail = lines.to_vec();
            }
        }
    }

    fn push_retry(&mut self, attempt: u8) {
        self.batches.push(Batch {
            size: 1,
            attempts: 0,
            state: BatchState::Pending,
            retry: Some(RetryOf {
                attempt,
                fallback: self.plan.retry.spot_fallback,
            }),
        });
    }

    /// The attempt number of the task at `position` (0: a first attempt).
    pub fn attempt_of(&self, position: usize) -> u8 {
        self.attempts.get(position).copied().unwrap_or(0)
    }

    fn set_attempt(&mut self, position: usize, attempt: u8) {
        if attempt > 0 {
            if self.attempts.len() <= position {
                self.attempts.resize(position + 1, 0);
            }
            self.attempts[position] = attempt;
        }
    }

    fn is_replaced(&self, position: usize) -> bool {
        self.retried.iter().any(|r| r.task as usize == position)
    }

    fn position_of(&self, arn: &str) -> Option<usize> {
        self.tasks.arns().iter().position(|a| a == arn)
    }

    /// The tasks that decide the run: all but those a retry replaced.
    pub fn current_arns(&self) -> Vec<String> {
        self.tasks
            .arns()
            .into_iter()
            .enumerate()
            .filter(|(i, _)| !self.is_replaced(*i))
            .map(|(_, arn)| arn)
            .collect()
    }

    fn is_current(&self, arn: &str) -> bool {
        self.position_of(arn).is_none_or(|p| !self.is_replaced(p))
    }

    /// Placement lines as the decision shows them, with a count of those left out.
    fn placement_lines(&self) -> Vec<String> {
        let mut lines = self.not_placed.clone();
        if self.not_placed_count > self.not_placed.len() {
            lines.push(format!(
                "... and {} more tasks not placed",
                self.not_placed_count - self.not_placed.len()
            ));
        }
        lines
    }

    fn set_results(&mut self, tasks: &[TaskState]) {
        let detailed = tasks.len() <= DETAILED_TASKS;
        let deciding = self.plan.deciding.clone();
        let results: Vec<TaskResult> = tasks
            .iter()
            .filter(|t| detailed || crate::outcome::failure_line(t, &deciding).is_some())
            .map(|t| {
                let mut result = TaskResult::from_state(t, &self.tasks.prefix);
                if let Some(position) = self.position_of(&t.arn) {
                    result.attempt = self.attempt_of(position);
                    result.retried_because = self
                        .retried
                        .iter()
                        .find(|r| r.task as usize == position)
                        .map(|r| r.cause.clone());
                }
                result
            })
            .collect();
        self.results = results;
    }

    fn end(&mut self, ending: Ending, reason: Option<String>, now: f64) {
        self.phase = Phase::Ended;
        self.ending = Some(ending);
        self.reason = reason;
        self.finished_at = Some(now);
        self.stopping = None;
    }

    /// Fixes the outcome and starts stopping: recorded before any StopTask is sent.
    fn begin_stopping(
        &mut self,
        ending: Ending,
        reason: String,
        to_stop: Vec<String>,
        sweep: bool,
        now: f64,
    ) {
        self.phase = Phase::Stopping;
        self.ending = Some(ending);
        self.reason = Some(reason);
        let to_send = self.positions(&to_stop);
        self.stopping = Some(StopState {
            since: now,
            driver: None,
            to_send,
            sent_at: None,
            sweep,
            found: TaskArns::default(),
        });
    }
}

/// The transition function.
pub fn step(run: &Run, event: Event, now: f64) -> Step {
    let mut run = run.clone();
    let next = match run.phase {
        Phase::Ended => Next::Done,
        Phase::Launching => launching(&mut run, event, now),
        Phase::Running => running(&mut run, event, now),
        Phase::Stopping => stopping(&mut run, event, now),
        Phase::Collecting => collecting(&mut run, event, now),
    };
    Step { run, next }
}

/// Stops the run because another operation takes over.
fn abandon(run: &mut Run, reason: String, by: String, now: f64) -> Next {
    // Batches not all answered: a task may exist that the run never recorded.
    let sweep = run.batches.iter().any(|b| b.state != BatchState::Started);
    let to_stop = run.tasks.arns();
    run.begin_stopping(Ending::Superseded, reason, to_stop, sweep, now);
    if let Some(state) = run.stopping.as_mut() {
        state.driver = Some(by);
    }
    stopping_next(run, now)
}

fn launching(run: &mut Run, event: Event, now: f64) -> Next {
    let mut faulted = false;
    match event {
        Event::Abandon { reason, by } => return abandon(run, reason, by, now),
        Event::Launched(answers) => {
            let mut refused: Option<Fault> = None;
            for (index, answer) in answers {
                let Some(batch) = run.batches.get(index).cloned() else {
                    continue;
                };
                match answer {
                    Ok(launched) => {
                        let answered = launched.task_arns.len() + launched.not_placed.len();
                        for arn in &launched.task_arns {
                            run.tasks.push(arn);
                        }
                        let attempt = batch.retry.map_or(0, |r| r.attempt);
                        if attempt > 0 {
                            run.launched_at = Some(now);
                        }
                        for arn in &launched.task_arns {
                            if let Some(position) = run.position_of(arn) {
                                run.set_attempt(position, attempt);
                            }
                        }
                        run.add_not_placed(launched.not_placed, attempt);
                        // Every task of the batch is accounted for: an answer replayed
                        // for an idempotency token may name the tasks without the
                        // failures.
                        let size = batch.size as usize;
                        if answered < size {
                            let lines = (answered..size)
                                .map(|_| {
                                    "task not started: ECS's answer named no task or failure for it"
                                        .to_string()
                                })
                                .collect();
                            run.add_not_placed(lines, attempt);
                        }
                        run.batches[index].state = BatchState::Started;
                    }
                    Err(fault) if fault.is_transient() => {
                        faulted = true;
                        // A StartTask that may have acted is looked up, never repeated;
                        // a RunTask is asked again with the same token.
                        let state = match (run.plan.mode, fault.may_have_acted) {
                            (LaunchMode::StartTask, true) => batch.state,
                            _ => BatchState::Pending,
                        };
                        run.batches[index].state = state;
                    }
                    Err(fault) => {
                        run.batches[index].state = BatchState::Pending;
                        refused.get_or_insert(fault);
                    }
                }
            }
            if let Some(fault) = refused {
                // Every answer of this round is in: stop whatever did start. A batch that
                // never answered may still have started tasks: look for them too.
                let sweep = run.batches.iter().any(|b| b.state != BatchState::Started);
                let to_stop = run.tasks.arns();
                let reason = if to_stop.is_empty() {
                    format!("the tasks could not be started: {fault}")
                } else {
                    format!(
                        "the tasks could not all be started ({fault}); stopped the {} that had started",
                        to_stop.len()
                    )
                };
                run.begin_stopping(
                    Ending::Rejected { fault: fault.kind },
                    reason,
                    to_stop,
                    sweep,
                    now,
                );
                return stopping_next(run, now);
            }
        }
        Event::Found { batch, result } => match result {
            Ok(arns) if !arns.is_empty() => {
                for arn in &arns {
                    run.tasks.push(arn);
                }
                let size = run.batches.get(batch).map_or(0, |b| b.size) as usize;
                if arns.len() < size {
                    run.add_not_placed(
                        vec![format!(
                        "{} of {size} tasks not started: StartTask's answer was lost and ECS shows no task for them",
                        size - arns.len()
                    )],
                        0,
                    );
                }
                if let Some(b) = run.batches.get_mut(batch) {
                    b.state = BatchState::Started;
                }
            }
            // Nothing was started: the next attempt may go (with a new attempt tag).
            Ok(_) => {
                if let Some(b) = run.batches.get_mut(batch) {
                    b.state = BatchState::Pending;
                }
            }
            Err(_) => faulted = true,
        },
        _ => {}
    }
    if run.plan.count == 0 {
        run.end(
            Ending::Succeeded,
            Some("Count is 0: no task was run".into()),
            now,
        );
        return Next::Done;
    }
    if now >= run.deadline {
        let reason = format!(
            "timed out after {} s while starting the tasks ({} of {} started)",
            run.timeout,
            run.tasks.len(),
            run.plan.count
        );
        let to_stop = run.tasks.arns();
        let sweep = run.batches.iter().any(|b| b.state != BatchState::Started);
        run.begin_stopping(Ending::TimedOut, reason, to_stop, sweep, now);
        return stopping_next(run, now);
    }
    if faulted {
        return Next::Wait(RETRY_DELAY_SECONDS);
    }
    // A StartTask attempt whose answer was lost: look for its tasks once ECS can show them.
    if let Some((index, since)) = run
        .batches
        .iter()
        .enumerate()
        .find_map(|(i, b)| match b.state {
            BatchState::InFlight { since } => Some((i, since)),
            _ => None,
        })
    {
        let wait = since + LOOKUP_DELAY_SECONDS - now;
        return if wait > 0.0 {
            Next::Wait(wait)
        } else {
            Next::Find(index)
        };
    }
    let pending: Vec<usize> = run
        .batches
        .iter()
        .enumerate()
        .filter(|(_, b)| b.state == BatchState::Pending)
        .map(|(i, _)| i)
        .take(LAUNCH_CONCURRENCY)
        .collect();
    if !pending.is_empty() {
        if run.plan.mode == LaunchMode::StartTask {
            // Recorded before the call: if its answer is lost, the attempt is looked up.
            for &i in &pending {
                run.batches[i].attempts += 1;
                run.batches[i].state = BatchState::InFlight { since: now };
            }
        }
        return Next::Launch(pending);
    }
    // Every batch answered.
    if run.tasks.is_empty() {
        let lines = run.placement_lines();
        let reason = if lines.is_empty() {
            "no task was started".to_string()
        } else {
            failure_message(&lines, run.total_tasks())
        };
        run.end(Ending::TasksFailed, Some(reason), now);
        return Next::Done;
    }
    run.phase = Phase::Running;
    Next::Wait(run.poll_delay(now))
}

fn running(run: &mut Run, event: Event, now: f64) -> Next {
    match event {
        Event::Abandon { reason, by } => abandon(run, reason, by, now),
        Event::Described(Ok(observed)) => {
            // A task that failed for a cause the retry policy names is started again
            // (the run goes back to launching for it) before anything is decided.
            if schedule_retries(run, &observed, now) {
                run.phase = Phase::Launching;
                return launching(run, Event::Resumed, now);
            }
            let may_appear = now - run.last_launch() < MISSING_GRACE_SECONDS;
            let current: Vec<TaskState> = observed
                .tasks
                .iter()
                .filter(|t| run.is_current(&t.arn))
                .cloned()
                .collect();
            let missing: Vec<String> = observed
                .missing
                .iter()
                .filter(|a| run.is_current(a))
                .cloned()
                .collect();
            let verdict = decide(
                &current,
                &missing,
                may_appear,
                &run.placement_lines(),
                &run.plan.deciding,
            );
            match verdict {
                Verdict::Pending { unfinished } if now >= run.deadline => {
                    let ids: Vec<&str> = unfinished.iter().map(|a| task_id(a)).collect();
                    let reason = format!(
                        "timed out after {} s with {} of {} tasks still running; stopped them: {}",
                        run.timeout,
                        unfinished.len(),
                        run.total_tasks(),
                        ids.join(", ")
                    );
                    run.set_results(&observed.tasks);
                    run.begin_stopping(Ending::TimedOut, reason, unfinished, false, now);
                    stopping_next(run, now)
                }
                Verdict::Pending { .. } => Next::Wait(run.poll_delay(now)),
                Verdict::Succeeded => {
                    run.set_results(&observed.tasks);
                    // The output is in the first task's deciding container log.
                    let read = current.first().and_then(|t| {
                        let id = task_id(&t.arn).to_string();
                        run.plan
                            .deciding
                            .iter()
                            .find(|c| run.log_of(c).is_some())
                            .map(|c| (id, c.clone()))
                    });
                    match read {
                        Some(read) => {
                            collect(run, Ending::Succeeded, None, Purpose::Output, vec![read])
                        }
                        None => {
                            run.end(Ending::Succeeded, None, now);
                            Next::Done
                        }
                    }
                }
                Verdict::Failed { lines } => {
                    run.set_results(&observed.tasks);
                    let reason = failure_message(&lines, run.total_tasks());
                    // The failing containers' last lines go under each task's line.
                    let mut reads = Vec::new();
                    if run.plan.log_tail > 0 {
                        for task in current
                            .iter()
                            .filter(|t| failure_line(t, &run.plan.deciding).is_some())
                            .take(TAILED_TASKS)
                        {
                            for container in failing_containers(task, &run.plan.deciding) {
                                reads.push((task_id(&task.arn).to_string(), container));
                            }
                        }
                    }
                    if reads.is_empty() {
                        run.end(Ending::TasksFailed, Some(reason), now);
                        Next::Done
                    } else {
                        collect(
                            run,
                            Ending::TasksFailed,
                            Some(reason),
                            Purpose::Tails,
                            reads,
                        )
                    }
                }
            }
        }
        Event::Described(Err(fault)) if fault.is_transient() => {
            if now < run.deadline {
                Next::Wait(run.poll_delay(now))
            } else {
                let reason = format!(
                    "timed out after {} s: the tasks could not be read ({fault}); stopped them all",
                    run.timeout
                );
                let all = run.tasks.arns();
                run.begin_stopping(Ending::TimedOut, reason, all, false, now);
                stopping_next(run, now)
            }
        }
        Event::Described(Err(fault)) => {
            // The tasks cannot be followed (the cluster is gone, access was revoked): stop
            // them rather than leave them running unobserved, and say why.
            let reason = format!("the tasks could not be followed, so they were stopped: {fault}");
            let all = run.tasks.arns();
            run.begin_stopping(
                Ending::Rejected { fault: fault.kind },
                reason,
                all,
                false,
                now,
            );
            stopping_next(run, now)
        }
        _ => Next::Describe,
    }
}

fn stopping(run: &mut Run, event: Event, now: f64) -> Next {
    let Some(mut state) = run.stopping.clone() else {
        // A stopping run always has its stop state; rebuild it if a record lost it.
        let all = (0..run.watched_arns().len() as u32).collect();
        run.stopping = Some(StopState {
            since: now,
            to_send: all,
            ..Default::default()
        });
        return stopping_next(run, now);
    };
    match event {
        Event::Swept(Ok(arns)) => {
            state.sweep = false;
            for arn in &arns {
                if !run.tasks.contains(arn) {
                    state.found.push(arn);
                }
            }
            run.stopping = Some(state.clone());
            let mut to_send = state.to_send.clone();
            to_send.extend(run.positions(&arns));
            to_send.sort_unstable();
            to_send.dedup();
            state.to_send = to_send;
            run.stopping = Some(state);
            stopping_next(run, now)
        }
        Event::Swept(Err(fault))
            if fault.is_transient() && now - state.since < STOP_CONFIRM_LIMIT_SECONDS =>
        {
            Next::Wait(RETRY_DELAY_SECONDS)
        }
        Event::Swept(Err(_)) => {
            // Nothing more can be learnt that way; the recorded tasks are still stopped.
            state.sweep = false;
            run.stopping = Some(state);
            stopping_next(run, now)
        }
        Event::StopsSent(answers) => {
            let again: Vec<String> = answers
                .into_iter()
                .filter(|(_, answer)| matches!(answer, Err(fault) if fault.is_transient()))
                .map(|(arn, _)| arn)
                .collect();
            state.to_send = run.positions(&again);
            state.sent_at = Some(now);
            let retry = !state.to_send.is_empty();
            run.stopping = Some(state);
            Next::Wait(if retry {
                RETRY_DELAY_SECONDS
            } else {
                STOP_CHECK_SECONDS
            })
        }
        Event::Described(Ok(observed)) => {
            let mut running: Vec<String> = observed
                .tasks
                .iter()
                .filter(|t| !t.is_stopped())
                .map(|t| t.arn.clone())
                .collect();
            // Just after the start, a task ECS does not show may yet appear (and run).
            if now - run.last_launch() < MISSING_GRACE_SECONDS {
                running.extend(observed.missing.iter().cloned());
            }
            if running.is_empty() && !state.sweep {
                // Every task is stopped (or ECS no longer knows it): the run is over.
                // The outcome was fixed before the stop; only the task detail is updated.
                let own: Vec<TaskState> = observed
                    .tasks
                    .iter()
                    .filter(|t| run.tasks.contains(&t.arn))
                    .cloned()
                    .collect();
                if !own.is_empty() {
                    run.set_results(&own);
                }
                let ending = run.ending.unwrap_or(Ending::Superseded);
                let reason = run.reason.take();
                run.end(ending, reason, now);
                return Next::Done;
            }
            if now - state.since >= STOP_CONFIRM_LIMIT_SECONDS {
                return Next::GiveUp;
            }
            let resend = state
                .sent_at
                .is_none_or(|at| now - at >= STOP_RESEND_SECONDS);
            if resend {
                state.to_send = run.positions(&running);
                run.stopping = Some(state);
                return stopping_next(run, now);
            }
            Next::Wait(STOP_CHECK_SECONDS)
        }
        Event::Described(Err(fault)) => {
            // A cluster that no longer exists runs no task.
            if fault.kind == FaultKind::ClusterNotFound {
                let ending = run.ending.unwrap_or(Ending::Superseded);
                let reason = run.reason.take();
                run.end(ending, reason, now);
                return Next::Done;
            }
            if now - state.since >= STOP_CONFIRM_LIMIT_SECONDS {
                Next::GiveUp
            } else {
                Next::Wait(STOP_CHECK_SECONDS)
            }
        }
        // Another operation takes the stop over (the one that began it was given up on):
        // the outcome stays, but the newcomer sends StopTask again at once and has its own
        // time to confirm, however long ago the stop began.
        Event::Abandon { by, .. } if state.driver.as_deref() != Some(by.as_str()) => {
            state.driver = Some(by);
            state.since = now;
            state.sent_at = None;
            run.stopping = Some(state);
            stopping_next(run, now)
        }
        // The same operation again: nothing changes.
        _ => stopping_next(run, now),
    }
}

/// Fixes the outcome and goes to read logs.
fn collect(
    run: &mut Run,
    ending: Ending,
    reason: Option<String>,
    purpose: Purpose,
    reads: Vec<(String, String)>,
) -> Next {
    run.phase = Phase::Collecting;
    run.ending = Some(ending);
    run.reason = reason;
    run.collect = Some(Collect {
        purpose,
        reads,
        tries: 0,
    });
    collecting_next(run)
}

fn collecting(run: &mut Run, event: Event, now: f64) -> Next {
    let Some(mut collect) = run.collect.clone() else {
        let ending = run.ending.unwrap_or(Ending::Succeeded);
        let reason = run.reason.take();
        run.end(ending, reason, now);
        return Next::Done;
    };
    let answers = match event {
        Event::LogsRead(answers) => answers,
        // The tasks are all stopped: whoever takes over finds the outcome fixed.
        Event::Abandon { .. } => {
            let ending = run.ending.unwrap_or(Ending::Succeeded);
            let reason = run.reason.take();
            run.collect = None;
            run.end(ending, reason, now);
            return Next::Done;
        }
        _ => return collecting_next(run),
    };
    if answers
        .iter()
        .any(|a| matches!(a, Err(f) if f.is_transient()))
        && collect.tries + 1 < LOG_TRIES
    {
        collect.tries += 1;
        run.collect = Some(collect);
        return Next::Wait(RETRY_DELAY_SECONDS);
    }
    let mut answers = answers.into_iter();
    let mut tails = Vec::new();
    for (task, container) in &collect.reads {
        let tail = if run.log_of(container).is_none() {
            Tail::NoStream
        } else {
            match answers.next() {
                Some(Ok(Some(lines))) => Tail::Lines(lines),
                Some(Ok(None)) => Tail::NoStream,
                Some(Err(fault)) => Tail::Unavailable(fault.to_string()),
                None => Tail::Unavailable("not read".into()),
            }
        };
        tails.push(ContainerTail {
            task_id: task.clone(),
            container: container.clone(),
            tail,
        });
    }
    run.collect = None;
    let ending = run.ending.unwrap_or(Ending::Succeeded);
    match collect.purpose {
        Purpose::Tails => {
            for tail in &tails {
                if let Tail::Lines(lines) = &tail.tail {
                    run.add_tail(&tail.task_id, &tail.container, lines);
                }
            }
            let base = run.reason.take().unwrap_or_default();
            let reason = message_with_tails(
                &base,
                &tails,
                cfn_protocol::progress::MAX_MESSAGE_CHARS - 96,
            );
            run.end(ending, Some(reason), now);
        }
        Purpose::Output => {
            let lines = match tails.first().map(|t| &t.tail) {
                Some(Tail::Lines(lines)) => lines.clone(),
                _ => Vec::new(),
            };
            let found = lines.iter().rev().find_map(|l| {
                l.find(OUTPUT_MARKER)
                    .map(|at| l[at + OUTPUT_MARKER.len()..].trim().to_string())
            });
            let reason = match found {
                Some(output) if output.len() > MAX_OUTPUT_BYTES => Some(format!(
                    "Output not kept: the {OUTPUT_MARKER} line holds {} bytes, more than the {MAX_OUTPUT_BYTES} an Output may",
                    output.len()
                )),
                Some(output) => {
                    run.output = Some(output);
                    None
                }
                None => None,
            };
            run.end(ending, reason, now);
        }
    }
    Next::Done
}

fn collecting_next(run: &Run) -> Next {
    let Some(collect) = &run.collect else {
        return Next::Done;
    };
    let lines = match collect.purpose {
        Purpose::Tails => run.plan.log_tail,
        Purpose::Output => OUTPUT_SEARCH_LINES,
    };
    let queries: Vec<LogQuery> = collect
        .reads
        .iter()
        .filter_map(|(task, container)| {
            let log = run.log_of(container)?;
            Some(LogQuery {
                group: log.group.clone(),
                stream: format!("{}/{container}/{task}", log.prefix),
                region: log.region.clone(),
                lines,
            })
        })
        .collect();
    Next::ReadLogs(queries)
}

/// Schedules a retry for each failed task (and task not placed) whose cause the policy
/// names and whose attempts are not used up; `true` when one was.
fn schedule_retries(run: &mut Run, observed: &Described, now: f64) -> bool {
    let policy = run.plan.retry.clone();
    if policy.is_off() || now >= run.deadline {
        return false;
    }
    let mut scheduled = false;
    let deciding = run.plan.deciding.clone();
    for task in observed.tasks.iter().filter(|t| t.is_stopped()) {
        let Some(position) = run.position_of(&task.arn) else {
            continue;
        };
        if run.is_replaced(position) {
            continue;
        }
        let Some(cause) = crate::outcome::cause(task, &deciding) else {
            continue;
        };
        let attempt = run.attempt_of(position);
        if retries(&policy.on, cause) && attempt < policy.attempts {
            run.retried.push(Retried {
                task: position as u32,
                cause: cause.to_string(),
            });
            run.push_retry(attempt + 1);
            scheduled = true;
        }
    }
    if retries(&policy.on, "PlacementFailure") {
        let mut kept = Vec::new();
        for attempt in std::mem::take(&mut run.not_placed_attempts) {
            if attempt < policy.attempts {
                run.not_placed_count = run.not_placed_count.saturating_sub(1);
                if run.not_placed.len() > run.not_placed_count {
                    run.not_placed.pop();
                }
                run.push_retry(attempt + 1);
                scheduled = true;
            } else {
                kept.push(attempt);
            }
        }
        run.not_placed_attempts = kept;
    }
    scheduled
}

fn stopping_next(run: &Run, now: f64) -> Next {
    let Some(state) = &run.stopping else {
        return Next::Describe;
    };
    if !state.to_send.is_empty() {
        return Next::Stop(run.arns_at(&state.to_send));
    }
    if state.sweep {
        // ListTasks may not show a task started just before: look once ECS can show it.
        let wait = state.since + LOOKUP_DELAY_SECONDS - now;
        return if wait > 0.0 {
            Next::Wait(wait)
        } else {
            Next::Sweep
        };
    }
    if run.watched_arns().is_empty() {
        // Nothing was ever started: nothing to confirm.
        return Next::Describe;
    }
    if state
        .sent_at
        .is_some_and(|at| now - at < STOP_CHECK_SECONDS)
    {
        return Next::Wait(STOP_CHECK_SECONDS - (now - state.sent_at.unwrap_or(now)));
    }
    Next::Describe
}

#[cfg(test)]
mod tests;
