//! Running: the tasks are followed (DescribeTasks) until every one stopped, then the run
//! is decided by `outcome::decide`. A task that failed for a cause the retry policy names
//! is started again first (back to Launching); the ends of tasks that stopped long ago are
//! kept, before ECS forgets them. A decided run reads its logs (Collecting) or ends; the
//! deadline, unreadable tasks or another operation send it to Stopping.

use super::{
    collecting, launching, stopping, Batch, BatchState, Ending, Event, Next, Phase, Purpose,
    Retried, RetryOf, Run, LATE_LOG_SECONDS, REMEMBER_AFTER_SECONDS, TAILED_TASKS,
    THROTTLED_GRACE_SECONDS,
};
use crate::ecs::{Described, FaultKind};
use crate::outcome::{
    decide, failing_containers, failure_line, failure_message, retries, task_id, TaskState,
    Verdict, UNSEEN_GRACE_SECONDS,
};
use crate::task_result::TaskResult;

impl Run {
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

    fn is_current(&self, arn: &str) -> bool {
        self.position_of(arn).is_none_or(|p| !self.is_replaced(p))
    }
}

/// The transition of a run in Running.
pub(super) fn step(run: &mut Run, event: Event, now: f64) -> Next {
    match event {
        Event::Abandon { reason, operation } => stopping::abandon(run, reason, operation, now),
        Event::Described(Ok(observed)) => {
            run.throttled = 0;
            let observed = run.with_remembered(&observed);
            run.remember(&observed, now);
            // A task that failed for a cause the retry policy names is started again
            // (the run goes back to launching for it) before anything is decided.
            if schedule_retries(run, &observed, now) {
                run.phase = Phase::Launching;
                return launching::step(run, Event::Resumed, now);
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
                    stopping::next(run, now)
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
                        Some(read) => collecting::begin(
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
                        return stopping::next(run, now);
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
                        collecting::begin(
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
                stopping::next(run, now)
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
            stopping::next(run, now)
        }
        _ => Next::Describe,
    }
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

/// Until when the logs of these (stopped) tasks may still be receiving their last lines.
fn settle_at<'a>(tasks: impl Iterator<Item = &'a TaskState>) -> Option<f64> {
    tasks
        .filter_map(|t| t.stopped_at)
        .reduce(f64::max)
        .map(|at| at + LATE_LOG_SECONDS)
}
