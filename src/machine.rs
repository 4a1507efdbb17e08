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

use handler_kit::pace;
use serde::{Deserialize, Serialize};

use crate::ecs::{Described, Fault, FaultKind, Launched, StartedTask};
use crate::outcome::{
    cut_chars, decide, failing_containers, failure_line, failure_message, message_with_tails,
    retries, task_id, ContainerTail, Tail, TaskState, Verdict, TAIL_LINE_MAX, UNSEEN_GRACE_SECONDS,
};
use crate::record::TaskResult;
use crate::update_policy::Fingerprint;

/// RunTask starts at most this many tasks a call.
pub const RUN_TASK_BATCH: u32 = 10;
/// Batches started at once: bounded, so that a burst stays under ECS's rate limits.
pub const LAUNCH_CONCURRENCY: usize = 5;
/// When to look for what a StartTask whose answer was lost started, in seconds after it
/// was sent: ECS is eventually consistent, and AWS advises to look again "starting with a
/// couple of seconds of wait time and increasing gradually up to five minutes of wait
/// time" (ECS API Reference, RunTask and StartTask). Only when the last look finds
/// nothing is StartTask sent again.
pub const LOOKUP_DELAYS: [f64; 6] = [5.0, 15.0, 35.0, 75.0, 155.0, 315.0];
/// A task's `createdAt` (ECS's clock) may be this much earlier than our record of when
/// its StartTask was sent (our clock).
pub const CLOCK_SKEW_SECONDS: f64 = 5.0;
/// When to look for tasks of this TaskRun the run did not record, in seconds after
/// stopping began: ListTasks is eventually consistent too, so the looks go on (as AWS
/// advises, "increasing gradually up to five minutes") until they found as many tasks as
/// the unanswered launches may have started.
pub const SWEEP_DELAYS: [f64; 5] = [15.0, 35.0, 75.0, 155.0, 315.0];
/// A task's last log lines may reach CloudWatch Logs after ECS shows it stopped (the
/// awslogs driver sends in batches; ingestion takes a moment; unverified how long): a log
/// without the line looked for is read again until this long after the containers
/// stopped (`executionStoppedAt`). On Fargate, deprovisioning usually outlasts it; else a
/// run whose task prints no output line answers this much later.
pub const LATE_LOG_SECONDS: f64 = 1.5;
/// ECS shows stopped tasks "for at least one hour" (ECS API Reference, DescribeTasks):
/// the end of a task stopped this long while others still run is kept in the run.
pub const REMEMBER_AFTER_SECONDS: f64 = 1800.0;
/// Pause after a passing fault before trying again.
pub const RETRY_DELAY_SECONDS: f64 = 2.0;
/// A run whose looks are throttled when its Timeout passes goes on trying to see its
/// tasks this much longer before it takes them as timed out: throttling alone does not
/// time a run out whose tasks ended within their Timeout.
pub const THROTTLED_GRACE_SECONDS: f64 = 300.0;
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

/// One log to read: the last `lines` of a stream, from `since` (epoch seconds) on.
#[derive(Debug, Clone, PartialEq)]
pub struct LogQuery {
    pub group: String,
    pub stream: String,
    pub region: Option<String>,
    pub lines: u32,
    pub since: Option<f64>,
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
/// Throttled log reads in a row before the run ends without the logs (about five minutes
/// of backoff): CloudWatch Logs' GetLogEvents quota is the account's, shared.
pub const THROTTLED_LOG_READS: u8 = 8;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "camelCase")]
pub enum BatchState {
    /// Not started, or started by RunTask whose idempotent answer can be asked again.
    Pending,
    /// A StartTask call was made and its answer is unknown (the process may have died,
    /// or the call failed after ECS acted). Never sent again blindly: looked for at each
    /// of [`LOOKUP_DELAYS`] first.
    InFlight {
        since: f64,
        /// Looks made so far.
        #[serde(default, skip_serializing_if = "is_zero_u8")]
        lookups: u8,
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
    /// A RunTask was sent (recorded before the call) and its answer is not in yet: the
    /// process may die waiting, and the call have started tasks nobody recorded.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unanswered: bool,
    /// An earlier RunTask of this batch went unanswered (a 5xx, a timeout, a process that
    /// died): it may have started tasks the run has not seen. Asked again with the same
    /// client token, ECS names them; a run that ends before that looks for them
    /// (ListTasks) before it ends. A refusal of a later call says nothing of them.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub lost: bool,
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
    /// Until when a log without the lines looked for is read again (see
    /// [`LATE_LOG_SECONDS`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settle_at: Option<f64>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn is_zero_u8(n: &u8) -> bool {
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
    /// (from [`SWEEP_DELAYS`] after stopping began). The run does not end before.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sweep: bool,
    /// Tasks found by the sweep, to stop and confirm along with the run's own.
    #[serde(default, skip_serializing_if = "TaskArns::is_empty")]
    pub found: TaskArns,
    /// How many tasks the launches whose answers were not recorded may have started: the
    /// sweep goes on until it found them, or until the last of [`SWEEP_DELAYS`].
    #[serde(default, skip_serializing_if = "is_zero")]
    pub sweep_for: u32,
    /// Sweeps made so far.
    #[serde(default, skip_serializing_if = "is_zero_u8")]
    pub sweeps: u8,
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
    /// The ends of tasks that stopped long before the run's last task (see
    /// [`REMEMBER_AFTER_SECONDS`]): ECS may forget them before the run is decided.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remembered: Vec<TaskResult>,
    /// Calls throttled in a row: the next pause backs off (see [`Run::backoff`]).
    #[serde(default, skip_serializing_if = "is_zero_u8")]
    pub throttled: u8,
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
    /// What the lookup of a StartTask attempt found: the tasks of this TaskRun, and the
    /// attempt tag of the batch's attempt.
    Found {
        batch: usize,
        attempt: String,
        result: Result<Vec<StartedTask>, Fault>,
    },
    /// DescribeTasks of every task of the run (and of the tasks a sweep found).
    Described(Result<Described, Fault>),
    /// StopTask answers, by ARN.
    StopsSent(Vec<(String, Result<(), Fault>)>),
    /// ListTasks by `startedBy`: the tasks of this TaskRun still running.
    Swept(Result<Vec<String>, Fault>),
    /// Another operation takes over: stop the run (unless it already ended). `operation`
    /// is the request token of the operation taking over.
    Abandon { reason: String, operation: String },
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
                unanswered: false,
                lost: false,
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
                        unanswered: false,
                        lost: false,
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
            remembered: Vec::new(),
            throttled: 0,
        }
    }

    /// The run of a TaskRun that adopts what an earlier resource ran (`AdoptExisting`): it
    /// starts nothing, ends Succeeded at once, and so becomes the baseline later updates
    /// compare with.
    pub fn adopt(&mut self, reason: String, now: f64) {
        self.batches.clear();
        self.end(Ending::Succeeded, Some(reason), now);
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
    /// within a second or two; a long one costs a look every PollInterval. Jittered by
    /// ±25 % (at least 1 s), so that runs started together do not look in the same second.
    pub fn poll_delay(&self, now: f64) -> f64 {
        let poll = f64::from(self.poll_interval.max(1));
        let base = ((now - self.started_at) / 10.0).clamp(1.0, poll);
        pace::spread(base, self.jitter(now))
    }

    /// The pause after the latest of [`Run::throttled`] throttled calls in a row.
    pub fn backoff(&self, now: f64) -> f64 {
        pace::backoff(self.throttled, self.jitter(now))
    }

    /// This run's jitter at `now` (see `handler_kit::pace::jitter`).
    pub fn jitter(&self, now: f64) -> f64 {
        pace::jitter(&self.token, now, self.throttled)
    }

    /// Counts a throttled call (`throttled`) or an answered one, and says how long to
    /// pause: the backoff when throttled, else `otherwise`.
    fn pause_after(&mut self, throttled: bool, otherwise: f64, now: f64) -> f64 {
        if throttled {
            self.throttled = self.throttled.saturating_add(1);
            self.backoff(now)
        } else {
            self.throttled = 0;
            otherwise
        }
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

    /// Keeps a failing container's last lines in the Tasks output, each cut as the
    /// message cuts it: a log event can be 1 MB, and the answer must stay small.
    fn add_tail(&mut self, task_id: &str, container: &str, lines: &[String]) {
        for result in self
            .results
            .iter_mut()
            .filter(|r| crate::outcome::task_id(&r.task) == task_id)
        {
            for c in result.containers.iter_mut().filter(|c| c.name == container) {
                c.log_tail = lines.iter().map(|l| cut_chars(l, TAIL_LINE_MAX)).collect();
            }
        }
    }

    /// Whether a task may have been started unseen: a StartTask whose answer is unknown,
    /// or a RunTask sent with no answer read since.
    fn may_have_unseen_tasks(&self) -> bool {
        self.batches.iter().any(|b| {
            matches!(b.state, BatchState::InFlight { .. })
                || (b.state == BatchState::Pending && (b.unanswered || b.lost))
        })
    }

    /// The observed tasks with the remembered ends of those ECS no longer shows.
    fn with_remembered(&self, observed: &Described) -> Described {
        if self.remembered.is_empty() {
            return observed.clone();
        }
        let mut described = observed.clone();
        described.missing.retain(|arn| {
            match self
                .remembered
                .iter()
                .find(|r| format!("{}{}", self.tasks.prefix, r.task) == *arn)
            {
                Some(result) => {
                    described.tasks.push(result.to_state(&self.tasks.prefix));
                    false
                }
                None => true,
            }
        });
        described
    }

    /// Keeps the ends of the tasks that stopped long ago, before ECS forgets them.
    fn remember(&mut self, observed: &Described, now: f64) {
        for task in &observed.tasks {
            let long_ago = task
                .stopped_at
                .is_some_and(|at| now - at >= REMEMBER_AFTER_SECONDS);
            if !long_ago || !task.is_stopped() {
                continue;
            }
            let mut result = TaskResult::from_state(task, &self.tasks.prefix);
            result.stopped_at = task.stopped_at;
            if !self.remembered.iter().any(|r| r.task == result.task) {
                self.remembered.push(result);
            }
        }
    }

    fn push_retry(&mut self, attempt: u8) {
        self.batches.push(Batch {
            size: 1,
            attempts: 0,
            state: BatchState::Pending,
            unanswered: false,
            lost: false,
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
        let sweep_for = if sweep {
            self.batches
                .iter()
                .filter(|b| b.state != BatchState::Started)
                .map(|b| b.size)
                .sum()
        } else {
            0
        };
        self.stopping = Some(StopState {
            since: now,
            driver: None,
            to_send,
            sent_at: None,
            sweep,
            found: TaskArns::default(),
            sweep_for,
            sweeps: 0,
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
fn abandon(run: &mut Run, reason: String, operation: String, now: f64) -> Next {
    // Batches not all answered: a task may exist that the run never recorded.
    let sweep = run.batches.iter().any(|b| b.state != BatchState::Started);
    let to_stop = run.tasks.arns();
    run.begin_stopping(Ending::Superseded, reason, to_stop, sweep, now);
    if let Some(state) = run.stopping.as_mut() {
        state.driver = Some(operation);
    }
    stopping_next(run, now)
}

fn launching(run: &mut Run, event: Event, now: f64) -> Next {
    let mut faulted = false;
    // Whether every passing fault of this round was throttling (then: back off).
    let mut only_throttled = true;
    match event {
        Event::Abandon { reason, operation } => return abandon(run, reason, operation, now),
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
                        // A task ECS does not show yet may be as recent as this launch (a
                        // retry, a StartTask sent again after its lookups found nothing).
                        if attempt > 0 || now - run.started_at >= 1.0 {
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
                        run.batches[index].unanswered = false;
                        run.batches[index].lost = false;
                    }
                    Err(fault) if fault.is_transient() => {
                        faulted = true;
                        only_throttled &= fault.kind == FaultKind::Throttled;
                        // A StartTask that may have acted is looked up, never repeated;
                        // a RunTask is asked again with the same token.
                        let state = match (run.plan.mode, fault.may_have_acted) {
                            (LaunchMode::StartTask, true) => batch.state,
                            _ => BatchState::Pending,
                        };
                        run.batches[index].state = state;
                        run.batches[index].unanswered = false;
                        run.batches[index].lost |=
                            run.plan.mode == LaunchMode::RunTask && fault.may_have_acted;
                    }
                    Err(fault) => {
                        run.batches[index].state = BatchState::Pending;
                        run.batches[index].unanswered = false;
                        refused.get_or_insert(fault);
                    }
                }
            }
            if let Some(fault) = refused {
                // Every answer of this round is in: stop whatever did start. A batch whose
                // answer is unknown may have started tasks: look for them too (only then:
                // a refusal started nothing, and the deploy hears of it at once).
                let sweep = run.may_have_unseen_tasks();
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
        Event::Found {
            batch,
            attempt,
            result,
        } => {
            let Some(BatchState::InFlight { since, lookups }) =
                run.batches.get(batch).map(|b| b.state)
            else {
                return launching(run, Event::Resumed, now);
            };
            match result {
                Ok(candidates) => {
                    // The attempt's tasks: tagged with its attempt tag, or without tags (a
                    // task StopTask stopped has none left) and created since it was sent.
                    let arns: Vec<String> = candidates
                        .into_iter()
                        .filter(|t| match &t.attempt {
                            Some(tag) => *tag == attempt,
                            None => {
                                t.created_at
                                    .is_some_and(|at| at >= since - CLOCK_SKEW_SECONDS)
                                    && !run.tasks.contains(&t.arn)
                            }
                        })
                        .map(|t| t.arn)
                        .collect();
                    if !arns.is_empty() {
                        // Started when that attempt was sent: as recent as that.
                        run.launched_at = Some(run.launched_at.unwrap_or(since).max(since));
                    }
                    // Every task found is the run's from now on (followed, or stopped). A
                    // StartTask run has one batch, and an attempt is only made once the one
                    // before it was found to have started nothing: every task of the run
                    // is this attempt's.
                    for arn in &arns {
                        run.tasks.push(arn);
                    }
                    let size = run.batches.get(batch).map_or(0, |b| b.size) as usize;
                    let found = run.tasks.len();
                    let last_look = usize::from(lookups) + 1 >= LOOKUP_DELAYS.len();
                    if found >= size {
                        if let Some(b) = run.batches.get_mut(batch) {
                            b.state = BatchState::Started;
                        }
                    } else if !last_look {
                        // Not all of them (or none) yet: ECS may not show them yet. Look
                        // again later; the ones found are followed meanwhile.
                        if let Some(b) = run.batches.get_mut(batch) {
                            b.state = BatchState::InFlight {
                                since,
                                lookups: lookups + 1,
                            };
                        }
                    } else if found > 0 {
                        // Five minutes: the rest were not started.
                        run.add_not_placed(
                            vec![format!(
                                "{} of {size} tasks not started: StartTask's answer was lost and ECS showed no task for them in five minutes",
                                size - found
                            )],
                            0,
                        );
                        if let Some(b) = run.batches.get_mut(batch) {
                            b.state = BatchState::Started;
                        }
                    } else if let Some(b) = run.batches.get_mut(batch) {
                        // Nothing in five minutes: the attempt started nothing; the next
                        // one may go (with a new attempt tag).
                        b.state = BatchState::Pending;
                    }
                }
                Err(fault) => {
                    faulted = true;
                    only_throttled &= fault.kind == FaultKind::Throttled;
                }
            }
        }
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
        let delay = run.pause_after(only_throttled, RETRY_DELAY_SECONDS, now);
        return Next::Wait(delay);
    }
    run.throttled = 0;
    // A StartTask attempt whose answer was lost: look for its tasks once ECS can show them.
    if let Some((index, since, lookups)) = run.batches.iter().enumerate().find_map(|(i, b)| match b
        .state
    {
        BatchState::InFlight { since, lookups } => Some((i, since, lookups)),
        _ => None,
    }) {
        let delay = LOOKUP_DELAYS
            .get(usize::from(lookups))
            .or(LOOKUP_DELAYS.last())
            .copied()
            .unwrap_or_default();
        let wait = since + delay - now;
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
        if run.plan.mode == LaunchMode::RunTask {
            // Recorded before the call (with the plan, for the first batches: no write of
            // its own): a send whose answer never comes is known to have been made.
            for &i in &pending {
                let batch = &mut run.batches[i];
                batch.lost |= batch.unanswered;
                batch.unanswered = true;
            }
        }
        if run.plan.mode == LaunchMode::StartTask {
            // Recorded before the call: if its answer is lost, the attempt is looked up.
            for &i in &pending {
                run.batches[i].attempts += 1;
                run.batches[i].state = BatchState::InFlight {
                    since: now,
                    lookups: 0,
                };
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
        Event::Abandon { reason, operation } => abandon(run, reason, operation, now),
        Event::Described(Ok(observed)) => {
            run.throttled = 0;
            let observed = run.with_remembered(&observed);
            run.remember(&observed, now);
            // A task that failed for a cause the retry policy names is started again
            // (the run goes back to launching for it) before anything is decided.
            if schedule_retries(run, &observed, now) {
                run.phase = Phase::Launching;
                return launching(run, Event::Resumed, now);
            }
            let may_appear = now - run.last_launch() < UNSEEN_GRACE_SECONDS;
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
                    let settle_at = settle_at(current.iter().take(1));
                    match read {
                        Some(read) => collect(
                            run,
                            Ending::Succeeded,
                            None,
                            Purpose::Output,
                            vec![read],
                            settle_at,
                        ),
                        None => {
                            run.end(Ending::Succeeded, None, now);
                            Next::Done
                        }
                    }
                }
                Verdict::Failed { lines } => {
                    run.set_results(&observed.tasks);
                    let reason = failure_message(&lines, run.total_tasks());
                    if !missing.is_empty() {
                        // ECS does not show these tasks: they may run unseen. Stop them
                        // (in case) before the run ends.
                        run.begin_stopping(Ending::TasksFailed, reason, missing, false, now);
                        return stopping_next(run, now);
                    }
                    // The failing containers' last lines go under each task's line.
                    let mut reads = Vec::new();
                    let failing: Vec<&TaskState> = current
                        .iter()
                        .filter(|t| failure_line(t, &run.plan.deciding).is_some())
                        .collect();
                    let settle_at = settle_at(failing.iter().take(TAILED_TASKS).copied());
                    if run.plan.log_tail > 0 {
                        for task in failing.iter().take(TAILED_TASKS) {
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
                            settle_at,
                        )
                    }
                }
            }
        }
        Event::Described(Err(fault)) if fault.is_transient() => {
            let throttled = fault.kind == FaultKind::Throttled;
            let delay = run.pause_after(throttled, run.poll_delay(now), now);
            // Throttled when Timeout passes: the tasks may well have ended in time; go on
            // trying to see them a while before taking them as timed out.
            let grace = if throttled {
                THROTTLED_GRACE_SECONDS
            } else {
                0.0
            };
            if now < run.deadline + grace {
                Next::Wait(delay)
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
            for arn in &arns {
                if !run.tasks.contains(arn) {
                    state.found.push(arn);
                }
            }
            // Found them all, or looked long enough (a launch whose answer was lost may
            // have started nothing): stop looking.
            let last = usize::from(state.sweeps) + 1 >= SWEEP_DELAYS.len();
            if state.found.len() >= state.sweep_for as usize || last {
                state.sweep = false;
            } else {
                state.sweeps += 1;
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
            let throttled = fault.kind == FaultKind::Throttled;
            let delay = run.pause_after(throttled, RETRY_DELAY_SECONDS, now);
            if throttled {
                // Only time in which ECS answers counts toward giving up.
                state.since += delay;
            }
            run.stopping = Some(state);
            Next::Wait(delay)
        }
        Event::Swept(Err(_)) => {
            // ListTasks is refused (or failed too long): a task the record never named may
            // run, so the run cannot be called stopped. The recorded tasks were sent their
            // StopTask first; the sweep stays due, and the next operation looks again.
            run.stopping = Some(state);
            Next::GiveUp
        }
        Event::StopsSent(answers) => {
            let throttled = answers
                .iter()
                .filter(|(_, a)| matches!(a, Err(f) if f.kind == FaultKind::Throttled))
                .count();
            let all_throttled = throttled > 0 && throttled == answers.len();
            let again: Vec<String> = answers
                .into_iter()
                .filter(|(_, answer)| matches!(answer, Err(fault) if fault.is_transient()))
                .map(|(arn, _)| arn)
                .collect();
            state.to_send = run.positions(&again);
            state.sent_at = Some(now);
            let retry = !state.to_send.is_empty();
            let delay = if retry {
                run.pause_after(throttled > 0, RETRY_DELAY_SECONDS, now)
            } else {
                run.throttled = 0;
                STOP_CHECK_SECONDS
            };
            if all_throttled {
                // Only time in which ECS answers counts toward giving up.
                state.since += delay;
            }
            run.stopping = Some(state);
            Next::Wait(delay)
        }
        Event::Described(Ok(observed)) => {
            run.throttled = 0;
            let mut running: Vec<String> = observed
                .tasks
                .iter()
                .filter(|t| !t.is_stopped())
                .map(|t| t.arn.clone())
                .collect();
            // Just after the start, a task ECS does not show may yet appear (and run).
            if now - run.last_launch() < UNSEEN_GRACE_SECONDS {
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
            let throttled = fault.kind == FaultKind::Throttled;
            let delay = run.pause_after(throttled, STOP_CHECK_SECONDS, now);
            if throttled {
                // Only time in which ECS answers counts toward giving up.
                state.since += delay;
                run.stopping = Some(state.clone());
            }
            if now - state.since >= STOP_CONFIRM_LIMIT_SECONDS {
                Next::GiveUp
            } else {
                Next::Wait(delay)
            }
        }
        // Another operation takes the stop over (the one that began it was given up on):
        // the outcome stays, but the newcomer sends StopTask again at once and has its own
        // time to confirm, however long ago the stop began.
        Event::Abandon { operation, .. } if state.driver.as_deref() != Some(operation.as_str()) => {
            state.driver = Some(operation);
            state.since = now;
            state.sent_at = None;
            run.stopping = Some(state);
            stopping_next(run, now)
        }
        // The same operation again: nothing changes.
        _ => stopping_next(run, now),
    }
}

/// Until when the logs of these (stopped) tasks may still be receiving their last lines.
fn settle_at<'a>(tasks: impl Iterator<Item = &'a TaskState>) -> Option<f64> {
    tasks
        .filter_map(|t| t.stopped_at)
        .reduce(f64::max)
        .map(|at| at + LATE_LOG_SECONDS)
}

/// Fixes the outcome and goes to read logs.
fn collect(
    run: &mut Run,
    ending: Ending,
    reason: Option<String>,
    purpose: Purpose,
    reads: Vec<(String, String)>,
    settle_at: Option<f64>,
) -> Next {
    run.phase = Phase::Collecting;
    run.ending = Some(ending);
    run.reason = reason;
    run.collect = Some(Collect {
        purpose,
        reads,
        tries: 0,
        settle_at,
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
    let throttled = answers
        .iter()
        .any(|a| matches!(a, Err(f) if f.kind == FaultKind::Throttled));
    if answers
        .iter()
        .any(|a| matches!(a, Err(f) if f.is_transient()))
        && (collect.tries + 1 < LOG_TRIES || (throttled && run.throttled < THROTTLED_LOG_READS))
    {
        // Throttling does not use up the tries: only passing faults of other kinds do.
        if !throttled {
            collect.tries += 1;
        }
        run.collect = Some(collect);
        let delay = run.pause_after(throttled, RETRY_DELAY_SECONDS, now);
        return Next::Wait(delay);
    }
    run.throttled = 0;
    // Read too early: the lines looked for may not be in CloudWatch Logs yet.
    if let Some(settle_at) = collect.settle_at.filter(|at| now < *at) {
        if !has_what_was_looked_for(run, &collect, &answers) {
            collect.tries = 0;
            run.collect = Some(collect);
            return Next::Wait(settle_at - now);
        }
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
            let stream = collect
                .reads
                .first()
                .map(|(task, container)| format!("{container}/{task}"))
                .unwrap_or_default();
            let reason = match found {
                Some(output) if output.len() > MAX_OUTPUT_BYTES => Some(format!(
                    "Output not kept: the {OUTPUT_MARKER} line holds {} bytes, more than the {MAX_OUTPUT_BYTES} an Output may",
                    output.len()
                )),
                Some(output) => {
                    run.output = Some(output);
                    None
                }
                // Said, so that a template's !GetAtt of Output fails with a reason to read.
                None => Some(match tails.first().map(|t| &t.tail) {
                    Some(Tail::Lines(_)) => format!(
                        "Output not set: no {OUTPUT_MARKER} line among the last {OUTPUT_SEARCH_LINES} lines of the log of {stream}"
                    ),
                    Some(Tail::Unavailable(why)) => {
                        format!("Output not set: the log of {stream} could not be read ({why})")
                    }
                    _ => format!("Output not set: no CloudWatch log stream for {stream}"),
                }),
            };
            run.end(ending, reason, now);
        }
    }
    Next::Done
}

/// Whether the logs read hold what they were read for: the output line, or every
/// failing container's lines.
fn has_what_was_looked_for(
    run: &Run,
    collect: &Collect,
    answers: &[Result<Option<Vec<String>>, Fault>],
) -> bool {
    let readable = collect
        .reads
        .iter()
        .filter(|(_, container)| run.log_of(container).is_some())
        .count();
    match collect.purpose {
        Purpose::Output => answers.iter().any(
            |a| matches!(a, Ok(Some(lines)) if lines.iter().any(|l| l.contains(OUTPUT_MARKER))),
        ),
        // A tail cannot tell it is whole: its last lines (the ones saying why) may be
        // the late ones. Read again once they are in.
        Purpose::Tails => answers.len() < readable,
    }
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
                // A minute before the run began (clocks differ), to spare CloudWatch
                // Logs the pages before it.
                since: Some(run.started_at - 60.0),
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
        let delay = SWEEP_DELAYS
            .get(usize::from(state.sweeps))
            .or(SWEEP_DELAYS.last())
            .copied()
            .unwrap_or_default();
        let wait = state.since + delay - now;
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
