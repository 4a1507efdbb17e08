//! The engine loop every resource type of this repository runs its lifecycle on: a pure
//! transition function ([`Machine::step`]) and the I/O around it ([`Hands`]), driven
//! for one invocation:
//!
//! 1. step the run with what just happened;
//! 2. if the run changed (or was never stored), write it first: nothing is done about a
//!    change before the record has it (a record that moved on without this invocation
//!    is adopted, and stepping starts again from it);
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
    loop {
        let now = clock.now();
        let (run, next) = M::step(hands.run(), event, now);
        if run != *hands.run() || !hands.stored() {
            // Record first.
            match hands.persist(run.clone()).await {
                Ok(Persisted::Written) => {}
                Ok(Persisted::Adopted) => {
                    event = M::resumed();
                    continue;
                }
                Err(error) => return hands.persist_failed(&run, error).await,
            }
        }
        event = match M::flow(&next) {
            Flow::Done => return Ok(Outcome::Ended),
            Flow::GiveUp => return Ok(Outcome::GaveUp),
            Flow::Wait(seconds) => {
                if !budget.may_wait(now, seconds) {
                    return Ok(Outcome::Pending { delay: seconds });
                }
                clock.sleep(seconds).await;
                M::resumed()
            }
            Flow::Act if !budget.may_act(now) => return Ok(Outcome::Pending { delay: 1.0 }),
            Flow::Act => hands.act(next, budget.call_deadline()).await?,
        };
    }
}
