//! The engine loop every resource type of this repository runs its lifecycle on: a pure
//! transition function ([`Machine::step`]) and the I/O around it ([`Hands`]), driven
//! for one invocation:
//!
//! 1. step the run with what just happened;
//! 2. if the run changed in a way that must be durable before the next action (or was
//!    never stored), write it first: nothing is done about such a change before the
//!    record has it (a record that moved on without this invocation is adopted, and
//!    stepping starts again from it). Other changes (what a look saw, a task's ARN a
//!    replayable call returned) are held and written with the next durable one, or when
//!    the invocation ends if the callback context does not carry the run: one record
//!    write where there would be several (SSM takes about 3 writes a second per account);
//! 3. then do what the step asked, and feed the result back in, until the run is over,
//!    must wait longer than this invocation may, or the invocation's budget is spent.

use std::future::Future;

use crate::budget::Budget;
use crate::clock::Clock;

/// What the driver does with a step's next thing to do.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Flow {
    /// The run is over.
    Done,
    /// The run cannot be finished by this operation (it stays recorded as it is).
    GiveUp,
    /// Nothing to do before this many seconds.
    Wait(f64),
    /// Nothing to do before this many seconds, and the operation says so now: the
    /// invocation answers IN_PROGRESS at once and is called back then (a run waiting for
    /// someone else: each look is an answer that says who it waits for).
    Pause(f64),
    /// An action for the hands.
    Act,
}

/// A lifecycle as a pure state machine.
pub trait Machine {
    type Run: Clone + PartialEq + Send + Sync;
    type Event: Send;
    type Next: Send;

    fn step(run: &Self::Run, event: Self::Event, now: f64) -> (Self::Run, Self::Next);
    fn flow(next: &Self::Next) -> Flow;
    /// The event of an invocation that begins, or of a wait that ended.
    fn resumed() -> Self::Event;
    /// Whether the change from `before` to `after` must be in the record before `next`
    /// is done. By default every change is.
    fn must_record(_before: &Self::Run, _after: &Self::Run, _next: &Self::Next) -> bool {
        true
    }
    /// Whether the callback context carries `run` to the next invocation, so that a
    /// change not yet recorded need not be written when this invocation ends.
    fn carried(_run: &Self::Run) -> bool {
        false
    }
}

/// What a write of the run found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Persisted {
    Written,
    /// The record held a newer revision of the run: the hands now hold it.
    Adopted,
}

/// How one invocation's drive ended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Outcome {
    Ended,
    /// Not over: call again after this many seconds.
    Pending {
        delay: f64,
    },
    GaveUp,
}

/// The I/O of a lifecycle: where its run is kept, and how its actions are carried out.
pub trait Hands<M: Machine>: Send {
    type Error: Send;

    /// The run as the store has it (or will have it once written).
    fn run(&self) -> &M::Run;
    /// Whether the store has [`Hands::run`].
    fn stored(&self) -> bool;
    /// Writes `run` into the record, or adopts the record's newer run.
    fn persist(
        &mut self,
        run: M::Run,
    ) -> impl Future<Output = Result<Persisted, Self::Error>> + Send;
    /// Holds `run` without writing it: the record keeps the run as last written.
    fn hold(&mut self, run: M::Run);
    /// How long to wait before writing again after `error`, the `attempt`-th failure in a
    /// row, when it is worth trying again within this invocation (throttling: the store's
    /// bucket refills in a moment, and a new invocation would only read the record again
    /// first); `None` to hand the error to [`Hands::persist_failed`]. `ending`: the write
    /// records the run's end, the one an operation's answer waits for.
    fn retry_write_after(&self, _error: &Self::Error, _attempt: u8, _ending: bool) -> Option<f64> {
        None
    }
    /// The record could not be written: what the invocation answers (and does) then.
    /// `unrecorded` is the run as it would have been written.
    fn persist_failed(
        &mut self,
        unrecorded: &M::Run,
        error: Self::Error,
    ) -> impl Future<Output = Result<Outcome, Self::Error>> + Send;
    /// Carries out `next` (whose flow is [`Flow::Act`]) and says what happened.
    fn act(
        &mut self,
        next: M::Next,
        by: f64,
    ) -> impl Future<Output = Result<M::Event, Self::Error>> + Send;
}

/// Drives a run from `event` for one invocation.
pub async fn drive<M, H, C>(
    hands: &mut H,
    clock: &C,
    budget: &Budget,
    mut event: M::Event,
) -> Result<Outcome, H::Error>
where
    M: Machine,
    H: Hands<M>,
    C: Clock,
{
    // A change held, not written yet (a run never stored is one).
    let mut unwritten = !hands.stored();
    loop {
        let now = clock.now();
        let (run, next) = M::step(hands.run(), event, now);
        let changed = run != *hands.run();
        let ending = matches!(M::flow(&next), Flow::Done | Flow::GiveUp);
        if (changed || unwritten) && (ending || M::must_record(hands.run(), &run, &next)) {
            // Record first.
            match write(hands, clock, budget, run, ending).await? {
                Written::Done => unwritten = false,
                Written::Adopted => {
                    unwritten = false;
                    event = M::resumed();
                    continue;
                }
                Written::Failed(outcome) => return Ok(outcome),
            }
        } else if changed {
            hands.hold(run);
            unwritten = true;
        }
        // The invocation answers IN_PROGRESS: what it holds unwritten goes into the record
        // unless the callback context carries it.
        let pending = match M::flow(&next) {
            Flow::Done => return Ok(Outcome::Ended),
            Flow::GiveUp => return Ok(Outcome::GaveUp),
            Flow::Wait(seconds) if !budget.may_wait(now, seconds) => Some(seconds),
            Flow::Pause(seconds) => Some(seconds),
            Flow::Act if !budget.may_act(now) => Some(1.0),
            _ => None,
        };
        if let Some(delay) = pending {
            if unwritten && !M::carried(hands.run()) {
                let run = hands.run().clone();
                if let Written::Failed(outcome) = write(hands, clock, budget, run, false).await? {
                    return Ok(outcome);
                }
            }
            return Ok(Outcome::Pending { delay });
        }
        event = match M::flow(&next) {
            Flow::Wait(seconds) => {
                clock.sleep(seconds).await;
                M::resumed()
            }
            _ => hands.act(next, budget.call_deadline()).await?,
        };
    }
}

/// How a write went.
enum Written {
    Done,
    Adopted,
    /// The record could not be written: what the invocation answers.
    Failed(Outcome),
}

/// Writes `run`, trying again within the invocation while the hands say it is worth it
/// and the budget has room; else what [`Hands::persist_failed`] makes of the error.
async fn write<M, H, C>(
    hands: &mut H,
    clock: &C,
    budget: &Budget,
    run: M::Run,
    ending: bool,
) -> Result<Written, H::Error>
where
    M: Machine,
    H: Hands<M>,
    C: Clock,
{
    let mut attempt: u8 = 0;
    loop {
        match hands.persist(run.clone()).await {
            Ok(Persisted::Written) => return Ok(Written::Done),
            Ok(Persisted::Adopted) => return Ok(Written::Adopted),
            Err(error) => {
                attempt = attempt.saturating_add(1);
                match hands.retry_write_after(&error, attempt, ending) {
                    Some(delay) if budget.may_wait(clock.now(), delay) => clock.sleep(delay).await,
                    _ => return hands.persist_failed(&run, error).await.map(Written::Failed),
                }
            }
        }
    }
}
