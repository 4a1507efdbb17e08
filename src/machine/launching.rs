//! Launching: the batches are started, at most `LAUNCH_CONCURRENCY` at once. A RunTask
//! whose answer is lost is asked again with the same client token (ECS answers it again
//! rather than start more tasks); a StartTask, which has no such token, is recorded before
//! the call and, its answer lost, looked up at each of `LOOKUP_DELAYS` by its attempt tag,
//! never sent again blindly. Once every batch is answered the run is Running; a refusal,
//! the deadline or another operation taking over sends it to Stopping.

use super::{
    stopping, BatchState, Ending, Event, LaunchMode, Next, Phase, Run, CLOCK_SKEW_SECONDS,
    LAUNCH_CONCURRENCY, LOOKUP_DELAYS, MAX_PLACEMENT_LINES, RETRY_DELAY_SECONDS,
};
use crate::ecs::{Fault, FaultKind};
use crate::outcome::failure_message;

impl Run {
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

    /// Whether a task may have been started unseen: a StartTask whose answer is unknown,
    /// or a RunTask sent with no answer read since.
    fn may_have_unseen_tasks(&self) -> bool {
        self.batches.iter().any(|b| {
            matches!(b.state, BatchState::InFlight { .. })
                || (b.state == BatchState::Pending && (b.unanswered || b.lost))
        })
    }

    fn set_attempt(&mut self, position: usize, attempt: u8) {
        if attempt > 0 {
            if self.attempts.len() <= position {
                self.attempts.resize(position + 1, 0);
            }
            self.attempts[position] = attempt;
        }
    }
}

/// The transition of a run in Launching.
pub(super) fn step(run: &mut Run, event: Event, now: f64) -> Next {
    let mut faulted = false;
    // Whether every passing fault of this round was throttling (then: back off).
    let mut only_throttled = true;
    match event {
        Event::Abandon { reason, operation } => {
            return stopping::abandon(run, reason, operation, now)
        }
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
                return stopping::next(run, now);
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
                return step(run, Event::Resumed, now);
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
        return stopping::next(run, now);
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
