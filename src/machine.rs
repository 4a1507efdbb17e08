//! The run's state machine: the one place where a run changes state.
//!
//! ```text
//!              plan recorded
//!                   │
//!                   ▼
//!               Waiting ─── Timeout, superseded ───▶ Ended
//!   (only with a Lock: its lock taken,   │
//!    looked at again while another holds it)
//!                   │ lock taken
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

//!
//! A run with a Lock frees it once Ended (`Next::ReleaseLock`, whatever the ending),
//! before the operation answers: see `waiting`.
//!
//! Each phase's transition is in a module of its own (`waiting`, `launching`, `running`,
//! `stopping`, `collecting`), with the helpers only that phase uses and the way into it
//! from the others (`stopping::abandon`, `Run::begin_stopping`, `collecting::begin`);
//! here are the run's types, `step` dispatching on the phase, and what more than one
//! phase uses.

mod collecting;
mod launching;
mod running;
mod stopping;
mod task_arns;
mod waiting;

pub use waiting::{held_by, lease_until};

use handler_kit::lock::{Held, Holder, Taken};
use handler_kit::pace;
use serde::{Deserialize, Serialize};

use crate::ecs::{Described, Fault, FaultKind, Launched, StartedTask};
use crate::outcome::TaskState;
use crate::task_result::TaskResult;
use crate::update_policy::Fingerprint;

pub use task_arns::TaskArns;

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
    /// The plan is recorded; the run waits for its lock (only a run with a Lock).
    Waiting,
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
    /// The lock the run takes before it starts anything, and frees once it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// Boxed: most runs have none, and a run is held by value in every frame of the engine.
    pub lock: Option<Box<RunLock>>,
}

/// A run's lock (see `waiting`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunLock {
    pub name: String,
    /// This run, as the lock names its holder.
    pub holder: Holder,
    /// When the run began to wait for it.
    pub waiting_since: f64,
    /// The generation that made this run the holder, once it took the lock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<u64>,
    /// Who held the lock at the last look, while the run waited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seen: Option<Held>,
    /// The lock was taken from a holder whose lease had ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broke: Option<Held>,
    /// The run ended and the lock is free of it (freed, or never taken).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub released: bool,
    /// Attempts to free it that failed.
    #[serde(default, skip_serializing_if = "is_zero_u8")]
    pub release_faults: u8,
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
    /// What an attempt to take the run's lock found.
    LockTaken(Result<Taken, Fault>),
    /// Whether the run's lock was freed of it (`false`: it no longer held it).
    LockReleased(Result<bool, Fault>),
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
    /// Take the run's lock, with a lease until this time.
    TakeLock { lease_until: f64 },
    /// Free the run's lock (the run ended).
    ReleaseLock,
    /// Nothing to do before this many seconds have passed.
    Wait(f64),
    /// Nothing to do before this many seconds have passed, and the operation answers
    /// IN_PROGRESS now, saying why (waiting for another run's lock).
    Pause(f64),
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
            lock: None,
        }
    }

    /// The run waits for lock `name` before it starts anything (see `waiting`).
    pub fn wait_for_lock(&mut self, name: String, holder: Holder, now: f64) {
        if self.phase == Phase::Launching && self.batches.iter().all(|b| b.attempts == 0) {
            self.phase = Phase::Waiting;
        }
        self.lock = Some(Box::new(RunLock {
            name,
            holder,
            waiting_since: now,
            generation: None,
            seen: None,
            broke: None,
            released: false,
            release_faults: 0,
        }));
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

    /// Nothing of this run runs, or holds its lock, any more.
    pub fn is_ended(&self) -> bool {
        self.phase == Phase::Ended && !waiting::holds_lock(self)
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

    /// The awslogs configuration of a container, if it has one.
    pub fn log_of(&self, container: &str) -> Option<&ContainerLog> {
        self.plan.logs.iter().find(|l| l.container == container)
    }

    /// The attempt number of the task at `position` (0: a first attempt).
    pub fn attempt_of(&self, position: usize) -> u8 {
        self.attempts.get(position).copied().unwrap_or(0)
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
}

/// The `Status` output of a run.
pub fn status(run: &Run) -> &'static str {
    match (run.phase, run.ending) {
        // Nothing started: the run waits for its lock.
        (Phase::Waiting, _) => "WAITING",
        (Phase::Launching | Phase::Running, _) => "RUNNING",
        // The tasks are all stopped; only the logs are being read.
        (Phase::Collecting, Some(Ending::Succeeded)) => "SUCCEEDED",
        (Phase::Collecting, _) => "FAILED",
        (Phase::Stopping, _) => "STOPPING",
        (Phase::Ended, Some(Ending::Succeeded)) => "SUCCEEDED",
        (Phase::Ended, Some(Ending::TimedOut)) => "TIMED_OUT",
        (Phase::Ended, Some(Ending::Superseded)) => "SUPERSEDED",
        (Phase::Ended, _) => "FAILED",
    }
}

/// The transition function.
pub fn step(run: &Run, event: Event, now: f64) -> Step {
    let mut run = run.clone();
    let next = match run.phase {
        Phase::Ended => waiting::after_end(&mut run, event, now),
        Phase::Waiting => waiting::step(&mut run, event, now),
        Phase::Launching => launching::step(&mut run, event, now),
        Phase::Running => running::step(&mut run, event, now),
        Phase::Stopping => stopping::step(&mut run, event, now),
        Phase::Collecting => collecting::step(&mut run, event, now),
    };
    // A run that ended frees its lock before the operation answers.
    let next = match next {
        Next::Done if run.phase == Phase::Ended && waiting::holds_lock(&run) => Next::ReleaseLock,
        next => next,
    };
    Step { run, next }
}

#[cfg(test)]
pub(crate) mod tests;
