//! Waiting: a run with a Lock takes it before it starts anything, and frees it once it
//! ended, whatever the ending.
//!
//! While another run holds the lock, this one looks again every poll (a tenth of the time
//! it has waited, at least [`MIN_LOOK_SECONDS`], at most PollInterval), within its own
//! Timeout: the Timeout bounds the whole operation, waiting included. A run superseded or
//! deleted while waiting ends without starting anything. The lease a run takes the lock
//! with outlasts everything the run may legitimately still do (its deadline, then the time
//! an operation has to confirm its tasks stopped, and a margin): a lock is taken from a
//! holder only once that has passed (see `handler_kit::lock`).
//!
//! A run frees its lock once Ended (`Next::ReleaseLock`): an answer lost after the lock was
//! taken leaves the run a holder it does not know of, so every run that asked for the lock
//! frees it, which is nothing when it does not hold it.

use handler_kit::lock::Taken;

use super::{Ending, Event, Next, Phase, Run, RETRY_DELAY_SECONDS, STOP_CONFIRM_LIMIT_SECONDS};
use crate::ecs::FaultKind;

/// The shortest pause between two looks at a lock another run holds.
pub const MIN_LOOK_SECONDS: f64 = 2.0;
/// A lease outlasts its run's deadline and stop confirmation by this much.
pub const LEASE_MARGIN_SECONDS: f64 = 60.0;
/// Failed attempts to free a lock before the run leaves it to its lease.
pub const RELEASE_TRIES: u8 = 5;

/// Whether `run` asked for a lock and has not freed it.
pub(super) fn holds_lock(run: &Run) -> bool {
    run.lock.as_ref().is_some_and(|lock| !lock.released)
}

/// The time until which a lock taken by `run` is its own.
pub fn lease_until(run: &Run) -> f64 {
    run.deadline + STOP_CONFIRM_LIMIT_SECONDS + LEASE_MARGIN_SECONDS
}

/// The transition of a run waiting for its lock.
pub(super) fn step(run: &mut Run, event: Event, now: f64) -> Next {
    match event {
        Event::Abandon { reason, .. } => {
            let reason = format!("{reason} while it waited for {}", lock_phrase(run));
            run.end(Ending::Superseded, Some(reason), now);
            Next::Done
        }
        Event::LockTaken(Ok(Taken::Holds { generation, broke })) => {
            if let Some(lock) = run.lock.as_mut() {
                lock.generation = Some(generation);
                lock.seen = None;
                lock.broke = broke;
            }
            run.throttled = 0;
            run.phase = Phase::Launching;
            // The tasks' time starts now; the deadline stays (the Timeout bounds waiting too).
            run.started_at = now;
            super::launching::step(run, Event::Resumed, now)
        }
        Event::LockTaken(Ok(Taken::Busy(held))) => {
            if let Some(lock) = run.lock.as_mut() {
                lock.seen = Some(held);
            }
            run.throttled = 0;
            // Answered IN_PROGRESS with who holds the lock (provider log and message),
            // rather than waited out within the invocation.
            let look = run.poll_delay(now).max(MIN_LOOK_SECONDS);
            match wait_within_deadline(run, look, now) {
                Next::Wait(seconds) => Next::Pause(seconds),
                next => next,
            }
        }
        Event::LockTaken(Ok(Taken::FreedAlready)) => {
            // Only a stale copy of this run gets here: the run ended elsewhere, and its
            // record says how. Nothing was started by this copy.
            if let Some(lock) = run.lock.as_mut() {
                lock.released = true;
            }
            let reason = format!(
                "{} was taken and freed already by this run",
                lock_phrase(run)
            );
            run.end(Ending::Superseded, Some(reason), now);
            Next::Done
        }
        Event::LockTaken(Ok(Taken::Contended)) => {
            run.throttled = 0;
            wait_within_deadline(run, MIN_LOOK_SECONDS, now)
        }
        Event::LockTaken(Err(fault)) => {
            let throttled = fault.kind == FaultKind::Throttled;
            if throttled || fault.is_transient() {
                let pause = run.pause_after(throttled, RETRY_DELAY_SECONDS, now);
                wait_within_deadline(run, pause, now)
            } else {
                let reason = format!(
                    "could not take {}: {fault} (the type's execution role needs ssm:GetParametersByPath and ssm:PutParameter on its parameters)",
                    lock_phrase(run)
                );
                run.end(Ending::Rejected { fault: fault.kind }, Some(reason), now);
                Next::Done
            }
        }
        _ if now >= run.deadline => {
            let reason = format!(
                "timed out after {} s waiting for {}{}: nothing was started",
                run.timeout,
                lock_phrase(run),
                held_by(run)
            );
            run.end(Ending::TimedOut, Some(reason), now);
            Next::Done
        }
        _ => Next::TakeLock {
            lease_until: lease_until(run),
        },
    }
}

/// The transition of an ended run: it frees its lock, if it asked for one.
pub(super) fn after_end(run: &mut Run, event: Event, now: f64) -> Next {
    let Some(lock) = run.lock.as_mut() else {
        return Next::Done;
    };
    match event {
        Event::LockReleased(Ok(_)) => {
            lock.released = true;
            Next::Done
        }
        Event::LockReleased(Err(fault)) => {
            lock.release_faults = lock.release_faults.saturating_add(1);
            let throttled = fault.kind == FaultKind::Throttled;
            if (throttled || fault.is_transient()) && lock.release_faults < RELEASE_TRIES {
                let pause = run.pause_after(throttled, RETRY_DELAY_SECONDS, now);
                Next::Wait(pause)
            } else {
                // Left to its lease: a holder that cannot free its lock is one that died.
                tracing::warn!(lock = %lock.name, error = %fault, "could not free the lock; it frees itself when its lease ends");
                lock.released = true;
                Next::Done
            }
        }
        _ => Next::Done,
    }
}

fn wait_within_deadline(run: &Run, pause: f64, now: f64) -> Next {
    // Woken at the deadline at the latest, to end the run there.
    Next::Wait(pause.min((run.deadline - now).max(0.0)).max(0.0))
}

fn lock_phrase(run: &Run) -> String {
    match &run.lock {
        Some(lock) => format!("lock '{}'", lock.name),
        None => "its lock".into(),
    }
}

/// ", held by TaskRun <id> (<logical id> in stack <stack>) since <time>", as last seen.
pub fn held_by(run: &Run) -> String {
    match run.lock.as_ref().and_then(|l| l.seen.as_ref()) {
        Some(held) => format!(
            ", held by {} since {}",
            held.holder.describe("TaskRun"),
            handler_kit::clock::iso8601(held.since)
        ),
        None => String::new(),
    }
}
