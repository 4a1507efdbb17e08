//! The engine: the I/O of one invocation around the state machine. It observes (ECS),
//! steps the run ([`machine::step`]), writes the record whenever the run changed (before
//! acting on the change), acts (RunTask, StartTask, StopTask, ListTasks), and stops when
//! the run ended, when it must wait longer than the invocation may, or when the
//! invocation's time budget is spent.

use std::collections::BTreeMap;

use futures_util::future::join_all;
use futures_util::stream::{self, StreamExt};
use serde_json::Value;

use crate::budget::Budget;
use crate::clock::Clock;
use crate::ecs::{Described, Ecs, Fault, LaunchSpec, ATTEMPT_TAG};
use crate::error::{RunFailure, TaskRunError};
use crate::ids;
use crate::machine::{self, Event, LaunchMode, Next, Run, Step, STOP_CONFIRM_LIMIT_SECONDS};
use crate::model::ResourceModel;
use crate::outcome::task_id;
use crate::record::{self, RunRecord};
use crate::store::{ParameterStore, Records, LOCK_PATH};
use handler_kit::driver::{self, Flow, Persisted};
use handler_kit::lock::{Lock, Taken};
use handler_kit::records::Held;

/// DescribeTasks takes at most this many ARNs.
pub const DESCRIBE_BATCH: usize = 100;
/// StopTask calls in flight at once.
pub const STOP_CONCURRENCY: usize = 10;
/// StopTask calls one invocation sends per second at most: a DELETE of a Count-100 run
/// takes 5 s rather than draining the account's "cluster resource modify" bucket (burst
/// 100, 40 a second, shared with every RunTask and StopTask of the account: ECS API
/// Reference, "Request throttling"), so that five such DELETEs at once do not throttle
/// each other (and everyone else) for seconds.
pub const STOPS_PER_SECOND: f64 = 20.0;
/// ECS's limit for a stop reason.
const STOP_REASON_MAX: usize = 255;

/// A run as one invocation holds it (see [`Held`]).
pub type HeldRun = Held<RunRecord>;

/// The model of an answer about a held run.
pub trait Answer {
    /// The model an answer carries.
    fn model(&self) -> Value;
}

impl Answer for HeldRun {
    /// The model an answer carries: the one its record keeps (trimmed to fit), so that a
    /// READ later answers the same, and no answer outgrows Lambda's 6 MB response limit
    /// however long the tasks' log lines.
    fn model(&self) -> Value {
        let mut record = match &self.hold.record {
            Some(record) => record.clone(),
            None => RunRecord::new(self.id.clone(), &self.properties, self.run.clone()),
        };
        record.run = self.run.clone();
        record.properties = record::without_read_only(&self.properties);
        match record.fitted() {
            Ok(fitted) => fitted.model(),
            Err(_) => {
                let mut run = self.run.clone();
                run.results.clear();
                record::model(&self.properties, &self.id, &run)
            }
        }
    }
}

/// How an invocation's drive of a run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The run ended (its record says so).
    Ended,
    /// Not over: call again after this many seconds.
    Pending { delay: f64 },
    /// Its tasks were stopped but not confirmed stopped in time.
    GaveUp,
}

pub struct Engine<'a, E, S, C> {
    pub ecs: &'a E,
    pub store: &'a S,
    pub clock: &'a C,
    pub budget: Budget,
    /// The stack's tags, applied to the tasks with the TaskRun's own.
    pub stack_tags: Option<&'a BTreeMap<String, String>>,
}

/// The TaskRun lifecycle, for the shared driver.
pub struct RunMachine;

impl driver::Machine for RunMachine {
    type Run = Run;
    type Event = Event;
    type Next = Next;

    fn step(run: &Run, event: Event, now: f64) -> (Run, Next) {
        let Step { run, next } = machine::step(run, event, now);
        (run, next)
    }

    fn flow(next: &Next) -> Flow {
        match next {
            Next::Done => Flow::Done,
            Next::GiveUp => Flow::GiveUp,
            Next::Wait(seconds) => Flow::Wait(*seconds),
            Next::Pause(seconds) => Flow::Pause(*seconds),
            _ => Flow::Act,
        }
    }

    fn resumed() -> Event {
        Event::Resumed
    }

    /// What must be in the record before the next thing is done (issue 16: one write
    /// where several were, SSM taking about 3 writes a second per account):
    /// - before a call that acts on ECS (RunTask, StartTask, StopTask): their sends, and a
    ///   stop's fixed outcome, are recorded first;
    /// - a run that begins stopping (its outcome is fixed, whatever comes next);
    /// - every change of a StartTask run (StartTask has no idempotency token).
    ///
    /// Not before a look (DescribeTasks, ListTasks, GetLogEvents): what a RunTask answered
    /// is answered again for its client token, what DescribeTasks showed is shown again,
    /// and a run that is taken over sweeps for the tasks of unanswered batches. Such
    /// changes are written with the next durable one, or at the end of the invocation
    /// unless the callback context carries the run (see [`driver::Machine::carried`]).
    fn must_record(before: &Run, after: &Run, next: &Next) -> bool {
        after.plan.mode == LaunchMode::StartTask
            || matches!(next, Next::Launch(_) | Next::Stop(_))
            || (after.phase == machine::Phase::Stopping && before.phase != machine::Phase::Stopping)
            // Tasks not placed: nothing else would tell an operation taking over that
            // the batch started fewer tasks than it asked for (its sweep would look for
            // them five minutes).
            || after.not_placed_count != before.not_placed_count
            // The first try for the lock: a run that may hold it is in the record, so that
            // whatever comes next (a redelivery, an update, a DELETE) frees it. Later
            // looks, while another run holds it, are not written.
            || (matches!(next, Next::TakeLock { .. })
                && before.lock.as_ref().is_some_and(|l| l.seen.is_none())
                && after.lock.as_ref().is_some_and(|l| l.seen.is_none()))
    }

    fn carried(run: &Run) -> bool {
        travels_in_context(run)
    }
}

/// Whether `run` travels in the callback context (see `handlers::in_progress`), so that
/// pausing it needs no record write: a run whose tasks are followed, or whose stopped
/// tasks' logs are being read. Not a run waiting for its lock: taking it acts, and an
/// invocation delivered twice must not take it from a stale copy of a run that already
/// ended and freed it (each callback reads the record instead; a look that finds the
/// same holder changes nothing, so waiting writes nothing). Either is derived again from the record's last write (the
/// tasks, described once more) if the context is lost, so neither must be written first.
pub(crate) fn travels_in_context(run: &Run) -> bool {
    matches!(
        run.phase,
        machine::Phase::Running | machine::Phase::Collecting
    )
}

/// An invocation's hold on a run: the engine's I/O for the driver.
struct RunHands<'e, 'h, E, S, C> {
    engine: &'e Engine<'e, E, S, C>,
    held: &'h mut HeldRun,
}

impl<E: Ecs, S: ParameterStore, C: Clock> driver::Hands<RunMachine> for RunHands<'_, '_, E, S, C> {
    type Error = TaskRunError;

    fn run(&self) -> &Run {
        &self.held.run
    }

    fn stored(&self) -> bool {
        self.held.stored.is_some()
    }

    fn hold(&mut self, run: Run) {
        self.held.hold.run = run;
    }

    fn retry_write_after(&self, error: &TaskRunError, attempt: u8, ending: bool) -> Option<f64> {
        error.rewrite_after(&self.held.id, self.engine.clock.now(), attempt, ending)
    }

    async fn persist(&mut self, run: Run) -> Result<Persisted, TaskRunError> {
        self.engine.persist(self.held, run).await
    }

    async fn persist_failed(
        &mut self,
        unrecorded: &Run,
        error: TaskRunError,
    ) -> Result<driver::Outcome, TaskRunError> {
        self.engine
            .persist_failed(self.held, unrecorded, error)
            .await
            .map(|outcome| match outcome {
                Outcome::Ended => driver::Outcome::Ended,
                Outcome::Pending { delay } => driver::Outcome::Pending { delay },
                Outcome::GaveUp => driver::Outcome::GaveUp,
            })
    }

    async fn act(&mut self, next: Next, _by: f64) -> Result<Event, TaskRunError> {
        // Boxed: the calls of one action (up to ten log reads of up to 20 pages each, or
        // ten RunTask batches) make a large future, kept off the stack.
        Box::pin(self.engine.act(self.held, next)).await
    }
}

impl<E: Ecs, S: ParameterStore, C: Clock> Engine<'_, E, S, C> {
    fn records(&self) -> Records<'_, S> {
        crate::store::records(self.store)
    }

    /// Drives the run from `event` until it ends, waits beyond the budget, or the budget
    /// is spent. `held` is left as the store has it.
    pub async fn drive(&self, held: &mut HeldRun, event: Event) -> Result<Outcome, TaskRunError> {
        // Boxed: the loop's future holds every call's; callers stay small.
        Box::pin(self.drive_inner(held, event)).await
    }

    async fn drive_inner(&self, held: &mut HeldRun, event: Event) -> Result<Outcome, TaskRunError> {
        let mut hands = RunHands { engine: self, held };
        let outcome =
            driver::drive::<RunMachine, _, _>(&mut hands, self.clock, &self.budget, event).await?;
        Ok(match outcome {
            driver::Outcome::Ended => Outcome::Ended,
            driver::Outcome::Pending { delay } => Outcome::Pending { delay },
            driver::Outcome::GaveUp => Outcome::GaveUp,
        })
    }

    /// Carries out one step's action.
    async fn act(&self, held: &mut HeldRun, next: Next) -> Result<Event, TaskRunError> {
        Ok(match next {
            Next::Launch(batches) => Event::Launched(self.launch(held, &batches).await?),
            Next::Find(batch) => {
                let attempts = held.run.batches.get(batch).map_or(0, |b| b.attempts);
                Event::Found {
                    batch,
                    attempt: ids::attempt_tag(&held.id, &held.run.token, attempts),
                    result: self.find(held).await,
                }
            }
            Next::Describe => {
                let described = self.describe(&held.run).await;
                held.note = Some(note(&held.run, &described));
                Event::Described(described)
            }
            Next::Stop(arns) => Event::StopsSent(self.stop(held, &arns).await),
            Next::ReadLogs(queries) => {
                let by = self.budget.call_deadline();
                let reads = queries
                    .iter()
                    .map(|q| crate::logs::read_tail(self.ecs, q, self.clock, by));
                Event::LogsRead(join_all(reads).await)
            }
            Next::Sweep => Event::Swept(
                self.ecs
                    .list_running(&held.run.cluster, &held.id, self.budget.call_deadline())
                    .await,
            ),
            Next::TakeLock { lease_until } => {
                let Some(lock) = &held.run.lock else {
                    return Err(TaskRunError::Internal("a lock to take, and none".into()));
                };
                let taken = Lock::new(self.store, LOCK_PATH, &lock.name)
                    .take(
                        &lock.holder,
                        lease_until,
                        self.clock.now(),
                        self.budget.call_deadline(),
                    )
                    .await;
                match &taken {
                    Ok(Taken::Busy(other)) => {
                        let waited = self.clock.now() - lock.waiting_since;
                        tracing::info!(
                            id = %held.id,
                            lock = %lock.name,
                            holder = %other.holder.id,
                            holder_stack = other.holder.stack.as_deref().unwrap_or(""),
                            holder_resource = other.holder.logical_id.as_deref().unwrap_or(""),
                            since = %handler_kit::clock::iso8601(other.since),
                            lease_until = %handler_kit::clock::iso8601(other.lease_until),
                            waited_seconds = waited.round(),
                            "waiting for the lock"
                        );
                        held.note = Some(format!(
                            "waiting for lock '{}' ({} s so far), held by {} since {}",
                            lock.name,
                            waited.round(),
                            other.holder.describe("TaskRun"),
                            handler_kit::clock::iso8601(other.since)
                        ));
                    }
                    Ok(Taken::Holds { generation, broke }) => {
                        if let Some(broke) = broke {
                            tracing::warn!(id = %held.id, lock = %lock.name, holder = %broke.holder.id, lease_until = %handler_kit::clock::iso8601(broke.lease_until), "took the lock from a holder whose lease had ended");
                        }
                        tracing::info!(id = %held.id, lock = %lock.name, generation, "took the lock");
                        held.note = None;
                    }
                    Ok(Taken::Contended | Taken::FreedAlready) | Err(_) => {}
                }
                Event::LockTaken(taken)
            }
            Next::ReleaseLock => {
                let Some(lock) = &held.run.lock else {
                    return Err(TaskRunError::Internal("a lock to free, and none".into()));
                };
                let released = Lock::new(self.store, LOCK_PATH, &lock.name)
                    .release(&lock.holder, self.clock.now(), self.budget.call_deadline())
                    .await;
                tracing::info!(id = %held.id, lock = %lock.name, freed = ?released.as_ref().ok(), "freeing the lock");
                Event::LockReleased(released)
            }
            // The driver hands over actions only.
            Next::Wait(_) | Next::Pause(_) | Next::Done | Next::GiveUp => Event::Resumed,
        })
    }

    /// Writes `run` into the record, unless the record moved on without this invocation.
    async fn persist(&self, held: &mut HeldRun, run: Run) -> Result<Persisted, TaskRunError> {
        let kept = self
            .records()
            .keep(&mut held.hold, run, self.budget.persist_deadline())
            .await;
        if let Some(record) = &held.hold.record {
            held.properties = record.properties.clone();
        }
        kept.map_err(|e| TaskRunError::not_kept(&held.id, e))
    }

    /// The record could not be written. Nothing was done about the change, so the next
    /// invocation can take it up again, unless nothing can be recorded at all or for
    /// too long: then whatever runs is stopped (best effort) rather than left unobserved.
    /// `unrecorded` is the run as it would have been written: it knows tasks that
    /// `held` (the run as recorded) may not.
    ///
    /// Any refusal of AWS's (access denied included), not only a passing fault, gets that
    /// patience once the run is recorded: a run that gave up at once could not know the
    /// tasks of a launch whose answer an earlier invocation never recorded (it died), and
    /// would leave them running, unfollowed, and its Lock's lease ending under them. Asked
    /// again at the next callback, RunTask's idempotent answer names them.
    async fn persist_failed(
        &self,
        held: &HeldRun,
        unrecorded: &Run,
        error: TaskRunError,
    ) -> Result<Outcome, TaskRunError> {
        let now = self.clock.now();
        let from_aws = matches!(&error, TaskRunError::Aws(_));
        let lost = now >= held.run.deadline + STOP_CONFIRM_LIMIT_SECONDS;
        if matches!(error, TaskRunError::Superseded(_)) {
            return Err(error);
        }
        if held.stored.is_none() || (from_aws && !lost) {
            if held.stored.is_some() {
                tracing::warn!(id = %held.id, error = %error, "could not record the run; trying again at the next callback");
                return Ok(Outcome::Pending { delay: 1.0 });
            }
            // Never recorded: nothing of it started.
            return Err(error);
        }
        let mut arns = held.run.watched_arns();
        for arn in unrecorded.watched_arns() {
            if !arns.contains(&arn) {
                arns.push(arn);
            }
        }
        if held
            .run
            .batches
            .iter()
            .any(|b| b.state != machine::BatchState::Started)
        {
            // A launch whose answer was never recorded may have started tasks the run
            // does not know: ECS knows them by the Id (long since visible, this late).
            match self
                .ecs
                .find_started(&held.run.cluster, &held.id, self.budget.call_deadline())
                .await
            {
                Ok(found) => {
                    for task in found {
                        if !arns.contains(&task.arn) {
                            arns.push(task.arn);
                        }
                    }
                }
                Err(fault) => {
                    tracing::error!(id = %held.id, error = %fault, "cannot list the tasks a launch of this run may have started")
                }
            }
        }
        tracing::error!(id = %held.id, error = %error, tasks = arns.len(), "the run cannot be recorded: stopping its tasks");
        let reason = format!(
            "Org::ECS::TaskRun {}: the run could not be recorded",
            held.id
        );
        self.stop_all(&held.run.cluster, &arns, &reason).await;
        Err(TaskRunError::Own(RunFailure::RunEnded {
            ending: machine::Ending::Rejected {
                fault: match &error {
                    TaskRunError::Aws(f) => f.kind,
                    _ => crate::ecs::FaultKind::Other,
                },
            },
            reason: format!("the run could not be recorded ({error}); its tasks were stopped"),
        }))
    }

    fn launch_spec(&self, held: &HeldRun) -> Result<LaunchSpec, TaskRunError> {
        // An undo's tasks are launched with the undone run's properties, not the model's.
        let properties = held
            .record
            .as_ref()
            .map(|r| r.undo_run().map_or(&r.properties, |undo| &undo.launch))
            .unwrap_or(&held.properties);
        let model: ResourceModel = crate::properties::typed(properties)?;
        // StartTask adds its attempt tag to the others.
        let reserved = usize::from(held.run.plan.mode == LaunchMode::StartTask);
        let crate::task_tags::TaskTags { tags, left_off } =
            crate::task_tags::task_tags(&model, self.stack_tags, reserved);
        if !left_off.is_empty() {
            tracing::warn!(id = %held.id, left_off = ?left_off, "stack tags left off the tasks");
        }
        Ok(LaunchSpec {
            cluster: held.run.cluster.clone(),
            task_definition: held.run.plan.task_definition.clone(),
            started_by: held.id.clone(),
            tags,
            model,
        })
    }

    async fn launch(
        &self,
        held: &HeldRun,
        batches: &[usize],
    ) -> Result<Vec<(usize, Result<crate::ecs::Launched, Fault>)>, TaskRunError> {
        let spec = self.launch_spec(held)?;
        let by = self.budget.call_deadline();
        let run = &held.run;
        let calls = batches.iter().map(|&index| {
            let spec = &spec;
            async move {
                let Some(batch) = run.batches.get(index) else {
                    return (
                        index,
                        Err(Fault::new(
                            "ecs:RunTask",
                            crate::ecs::FaultKind::Other,
                            "no such batch",
                        )),
                    );
                };
                let answer = match run.plan.mode {
                    LaunchMode::RunTask => {
                        let token = ids::client_token(&held.id, &run.token, index);
                        match batch.retry {
                            // A retry that falls back from FARGATE_SPOT to FARGATE.
                            Some(retry) if retry.fallback => {
                                let fallback = spot_fallback(spec);
                                self.ecs.run_task(&fallback, batch.size, &token, by).await
                            }
                            _ => self.ecs.run_task(spec, batch.size, &token, by).await,
                        }
                    }
                    LaunchMode::StartTask => {
                        let tag = ids::attempt_tag(&held.id, &run.token, batch.attempts);
                        self.ecs
                            .start_task(spec, &run.plan.instances, &tag, by)
                            .await
                    }
                };
                (index, answer)
            }
        });
        let answers = join_all(calls).await;
        for (index, answer) in &answers {
            match answer {
                Ok(launched) => {
                    tracing::info!(id = %held.id, batch = index, started = launched.task_arns.len(), not_placed = launched.not_placed.len(), "batch started")
                }
                Err(fault) => {
                    tracing::warn!(id = %held.id, batch = index, error = %fault, "batch not started")
                }
            }
        }
        Ok(answers)
    }

    async fn find(&self, held: &HeldRun) -> Result<Vec<crate::ecs::StartedTask>, Fault> {
        tracing::info!(id = %held.id, tag = ATTEMPT_TAG, "looking for what a StartTask attempt started");
        self.ecs
            .find_started(&held.run.cluster, &held.id, self.budget.call_deadline())
            .await
    }

    /// DescribeTasks for every task the run watches, in batches of 100 at once.
    async fn describe(&self, run: &Run) -> Result<Described, Fault> {
        let arns = run.watched_arns();
        let by = self.budget.call_deadline();
        let answers = join_all(
            arns.chunks(DESCRIBE_BATCH)
                .map(|chunk| self.ecs.describe_tasks(&run.cluster, chunk, by)),
        )
        .await;
        let mut described = Described::default();
        for answer in answers {
            let part = answer?;
            described.tasks.extend(part.tasks);
            described.missing.extend(part.missing);
        }
        Ok(described)
    }

    async fn stop(&self, held: &HeldRun, arns: &[String]) -> Vec<(String, Result<(), Fault>)> {
        let why = held
            .run
            .reason
            .as_deref()
            .and_then(|r| r.lines().next())
            .unwrap_or("stopped");
        let reason = format!("Org::ECS::TaskRun {}: {why}", held.id);
        self.stop_all(&held.run.cluster, arns, &reason).await
    }

    /// StopTask for each ARN, ten at a time.
    pub(crate) async fn stop_all(
        &self,
        cluster: &str,
        arns: &[String],
        reason: &str,
    ) -> Vec<(String, Result<(), Fault>)> {
        let mut reason = reason.to_string();
        if reason.len() > STOP_REASON_MAX {
            let mut cut = STOP_REASON_MAX;
            while !reason.is_char_boundary(cut) {
                cut -= 1;
            }
            reason.truncate(cut);
        }
        let by = self.budget.call_deadline();
        let reason = &reason;
        let began = self.clock.now();
        stream::iter(arns.iter().cloned().enumerate())
            .map(|(i, arn)| async move {
                let due = began + i as f64 / STOPS_PER_SECOND;
                let wait = due - self.clock.now();
                if wait > 0.0 {
                    self.clock.sleep(wait).await;
                }
                if !self.budget.may_act(self.clock.now()) {
                    // No time left in this invocation: sent at the next one.
                    let mut fault = Fault::new(
                        "ecs:StopTask",
                        crate::ecs::FaultKind::Network,
                        "not sent: no time left in this invocation",
                    );
                    fault.may_have_acted = false;
                    return (arn, Err(fault));
                }
                let answer = self.ecs.stop_task(cluster, &arn, reason, by).await;
                match &answer {
                    Ok(()) => tracing::info!(task = task_id(&arn), "stop requested"),
                    Err(e) => {
                        tracing::warn!(task = task_id(&arn), error = %e, "could not stop task")
                    }
                }
                (arn, answer)
            })
            .buffer_unordered(STOP_CONCURRENCY)
            .collect()
            .await
    }
}

/// A line on what was seen, for the IN_PROGRESS event.
fn note(run: &Run, described: &Result<Described, Fault>) -> String {
    match described {
        Ok(d) => {
            let running = d.tasks.iter().filter(|t| !t.is_stopped()).count() + d.missing.len();
            format!("{running} of {} tasks still running", run.tasks.len())
        }
        Err(fault) => format!("will look again: {fault}"),
    }
}

/// The launch spec with FARGATE in place of FARGATE_SPOT in its capacity provider
/// strategy. Two FARGATE items would be refused, so they become one, with the weights added
/// (at least one weight must be above 0: ECS API Reference, CapacityProviderStrategyItem)
/// and the one base kept.
pub fn spot_fallback(spec: &LaunchSpec) -> LaunchSpec {
    let mut spec = spec.clone();
    if let Some(strategy) = spec.model.capacity_provider_strategy.as_mut() {
        let mut merged: Vec<crate::model::CapacityProviderStrategyItem> = Vec::new();
        for mut item in strategy.drain(..) {
            if item.capacity_provider == "FARGATE_SPOT" {
                item.capacity_provider = "FARGATE".into();
            }
            match merged
                .iter_mut()
                .find(|m| m.capacity_provider == item.capacity_provider)
            {
                Some(m) => {
                    let weight = m.weight.unwrap_or(0) + item.weight.unwrap_or(0);
                    m.weight = (weight > 0).then_some(weight.min(1000));
                    m.base = match (m.base, item.base) {
                        (Some(a), Some(b)) => Some(a.max(b)),
                        (a, b) => a.or(b),
                    };
                }
                None => merged.push(item),
            }
        }
        *strategy = merged;
    }
    spec
}
