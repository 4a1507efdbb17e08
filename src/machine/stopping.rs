//! Stopping: the outcome is fixed (and recorded) before any StopTask is sent, so that a
//! run is never decided from its own stop. The tasks are sent StopTask (again, while they
//! run, every `STOP_RESEND_SECONDS`), tasks the run never recorded are looked for
//! (ListTasks by `startedBy`) when a launch's answer was lost, and the run ends once every
//! task is seen stopped; past `STOP_CONFIRM_LIMIT_SECONDS` the operation gives up and the
//! record keeps the run Stopping for the next one.

use super::{
    BatchState, Ending, Event, Next, Phase, Run, StopState, TaskArns, RETRY_DELAY_SECONDS,
    STOP_CHECK_SECONDS, STOP_CONFIRM_LIMIT_SECONDS, STOP_RESEND_SECONDS, SWEEP_DELAYS,
};
use crate::ecs::FaultKind;
use crate::outcome::{TaskState, UNSEEN_GRACE_SECONDS};

impl Run {
    /// Fixes the outcome and starts stopping: recorded before any StopTask is sent.
    pub(super) fn begin_stopping(
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

/// Stops the run because another operation takes over.
pub(super) fn abandon(run: &mut Run, reason: String, operation: String, now: f64) -> Next {
    // Batches not all answered: a task may exist that the run never recorded.
    let sweep = run.batches.iter().any(|b| b.state != BatchState::Started);
    let to_stop = run.tasks.arns();
    run.begin_stopping(Ending::Superseded, reason, to_stop, sweep, now);
    if let Some(state) = run.stopping.as_mut() {
        state.driver = Some(operation);
    }
    next(run, now)
}

/// The transition of a run in Stopping.
pub(super) fn step(run: &mut Run, event: Event, now: f64) -> Next {
    let Some(mut state) = run.stopping.clone() else {
        // A stopping run always has its stop state; rebuild it if a record lost it.
        let all = (0..run.watched_arns().len() as u32).collect();
        run.stopping = Some(StopState {
            since: now,
            to_send: all,
            ..Default::default()
        });
        return next(run, now);
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
            next(run, now)
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
                return next(run, now);
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
            next(run, now)
        }
        // The same operation again: nothing changes.
        _ => next(run, now),
    }
}

pub(super) fn next(run: &Run, now: f64) -> Next {
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
