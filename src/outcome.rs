//! "Did this run succeed, and if not, why?" A pure function over what ECS said of the
//! tasks, so every rule is tested table-driven without any AWS call.
//!
//! A task ended normally only when ECS stopped it because an essential container exited
//! (stop code `EssentialContainerExited`). Any other stop code (a Spot interruption, a
//! user's or a scheduler's stop, a termination notice, a task that failed to start)
//! fails the task whatever its exit codes say: an app that exits 0 on SIGTERM must not
//! pass an interrupted migration.

/// The one stop code of a task that ended by itself.
pub const NORMAL_STOP_CODE: &str = "EssentialContainerExited";

/// One container of a task, as DescribeTasks reports it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContainerState {
    pub name: String,
    pub exit_code: Option<i32>,
    pub reason: Option<String>,
}

/// One task, as DescribeTasks reports it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TaskState {
    pub arn: String,
    pub last_status: String,
    pub stop_code: Option<String>,
    pub stopped_reason: Option<String>,
    /// Whether ECS ever reported the task as started (`startedAt`).
    pub started: bool,
    /// When its containers stopped (`executionStoppedAt`, else `stoppedAt`; epoch
    /// seconds): what its log lines can be late after.
    pub stopped_at: Option<f64>,
    pub containers: Vec<ContainerState>,
}

impl TaskState {
    /// Whether the task has stopped for good. `DELETED` comes after `STOPPED`: "DELETED —
    /// This is a transition state when a task stops. This state is not displayed in the
    /// console, but is displayed in describe-tasks." (Amazon ECS Developer Guide, "Amazon ECS
    /// task lifecycle"). `DEPROVISIONING` (awsvpc tasks, while the network interface is
    /// detached) is not yet stopped: the task counts as stopped once ECS says so.
    pub fn is_stopped(&self) -> bool {
        matches!(self.last_status.as_str(), "STOPPED" | "DELETED")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Some tasks have not stopped yet.
    Pending {
        unfinished: Vec<String>,
    },
    Succeeded,
    /// One readable line per failing task (or placement failure).
    Failed {
        lines: Vec<String>,
    },
}

/// The short task ID at the end of a task ARN.
pub fn task_id(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// Decides a run.
/// - `placement_failures`: lines made from RunTask/StartTask `failures[]`: these tasks never existed.
/// - `missing`: task ARNs DescribeTasks does not show (`failures[]`, reason MISSING). ECS
///   does not tell "not visible yet" from "forgotten" (ECS API Reference, "API failure
///   reasons"); the run remembers the ends of tasks that stopped long ago, so a task
///   missing here has not been seen stopped: it may appear, or run unseen.
/// - `missing_may_appear`: whether a missing task may still show up (its start is recent,
///   see [`UNSEEN_GRACE_SECONDS`]); then it counts as unfinished, else it fails the run
///   (and the run stops it, in case it runs).
/// - `deciding`: the containers whose exit codes count; empty means every container.
///
/// A run is decided only once every task that exists has stopped: a migration that is
/// running is never cut short because a sibling task could not be placed.
pub fn decide(
    tasks: &[TaskState],
    missing: &[String],
    missing_may_appear: bool,
    placement_failures: &[String],
    deciding: &[String],
) -> Verdict {
    let mut unfinished: Vec<String> = tasks
        .iter()
        .filter(|t| !t.is_stopped())
        .map(|t| t.arn.clone())
        .collect();
    if missing_may_appear {
        unfinished.extend(missing.iter().cloned());
    }
    if !unfinished.is_empty() {
        return Verdict::Pending { unfinished };
    }
    let mut lines: Vec<String> = placement_failures.to_vec();
    lines.extend(missing.iter().map(|arn| {
        format!(
            "task {}: ECS does not show this task (not seen stopped; stopped in case it runs)",
            task_id(arn)
        )
    }));
    lines.extend(tasks.iter().filter_map(|t| failure_line(t, deciding)));
    if lines.is_empty() {
        Verdict::Succeeded
    } else {
        Verdict::Failed { lines }
    }
}

/// How long a task ECS has never shown may still appear: "run the DescribeTasks command
/// repeatedly, starting with a couple of seconds of wait time and increasing gradually up
/// to five minutes of wait time" (ECS API Reference, RunTask, on eventual consistency).
pub const UNSEEN_GRACE_SECONDS: f64 = 300.0;

fn stop_summary(task: &TaskState) -> String {
    match (&task.stop_code, &task.stopped_reason) {
        (Some(code), Some(reason)) => format!("{code}: {reason}"),
        (Some(code), None) => code.clone(),
        (None, Some(reason)) => reason.clone(),
        (None, None) => "no stop reason given".to_string(),
    }
}

/// Why a stopped task failed, or `None` when it succeeded.
pub fn failure_line(task: &TaskState, deciding: &[String]) -> Option<String> {
    let id = task_id(&task.arn);
    let never_ran = task.containers.iter().all(|c| c.exit_code.is_none());
    let normal_stop = task.stop_code.as_deref() == Some(NORMAL_STOP_CODE);
    if task.stop_code.as_deref() == Some("TaskFailedToStart") || (!task.started && never_ran) {
        let reasons: Vec<String> = task
            .containers
            .iter()
            .filter_map(|c| {
                c.reason
                    .as_ref()
                    .map(|r| format!("container {}: {r}", c.name))
            })
            .collect();
        let mut line = format!("task {id} never started ({})", stop_summary(task));
        if !reasons.is_empty() {
            line.push_str("; ");
            line.push_str(&reasons.join("; "));
        }
        return Some(line);
    }
    let counts = |c: &&ContainerState| deciding.is_empty() || deciding.contains(&c.name);
    let mut problems: Vec<String> = Vec::new();
    for name in deciding {
        if !task.containers.iter().any(|c| &c.name == name) {
            problems.push(format!("container {name} is not in the task"));
        }
    }
    for container in task.containers.iter().filter(counts) {
        let reason = container
            .reason
            .as_ref()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default();
        match container.exit_code {
            Some(0) => {}
            Some(code) => problems.push(format!(
                "container {} exited with code {code}{reason}",
                container.name
            )),
            None => problems.push(format!(
                "container {} has no exit code{reason}",
                container.name
            )),
        }
    }
    if problems.is_empty() && normal_stop {
        None
    } else if problems.is_empty() {
        // Every exit code may be 0 (an app that exits cleanly on SIGTERM): the task was
        // still stopped from outside, so its work cannot be taken as done.
        Some(format!(
            "task {id} was stopped before it finished ({})",
            stop_summary(task)
        ))
    } else {
        Some(format!(
            "task {id}: {} (stopped: {})",
            problems.join("; "),
            stop_summary(task)
        ))
    }
}

/// Why a stopped task failed, as a retry policy names causes (`None`: it did not fail).
/// A task that never started is named by its start error when ECS gives a known one.
pub fn cause(task: &TaskState, deciding: &[String]) -> Option<&'static str> {
    failure_line(task, deciding)?;
    let never_ran = task.containers.iter().all(|c| c.exit_code.is_none());
    if task.stop_code.as_deref() == Some("TaskFailedToStart") || (!task.started && never_ran) {
        let reasons = task
            .containers
            .iter()
            .filter_map(|c| c.reason.as_deref())
            .chain(task.stopped_reason.as_deref());
        for reason in reasons {
            for known in [
                "CannotPullContainerError",
                "ResourceInitializationError",
                "CannotStartContainerError",
            ] {
                if reason.contains(known) {
                    return Some(known);
                }
            }
        }
        return Some("TaskFailedToStart");
    }
    // The stop codes of the ECS API Reference, "Task" (`stopCode`): seven of them.
    Some(match task.stop_code.as_deref() {
        Some(NORMAL_STOP_CODE) => "NonZeroExit",
        Some("SpotInterruption") => "SpotInterruption",
        Some("TerminationNotice") => "TerminationNotice",
        Some("ServiceSchedulerInitiated") => "ServiceSchedulerInitiated",
        Some("UserInitiated") => "UserInitiated",
        // ECS stopped the task because the infrastructure under it was unhealthy: a
        // passing cause, like a termination notice.
        Some("InfrastructureHealth") => "InfrastructureHealth",
        Some("TaskFailedToStart") => "TaskFailedToStart",
        // A stop code ECS added since: retried only by a policy that names it.
        _ => "OtherStopCode",
    })
}

/// Whether a retry policy that lists `on` retries a task that failed for `cause`.
pub fn retries(on: &[String], cause: &str) -> bool {
    let start_error = matches!(
        cause,
        "CannotPullContainerError" | "ResourceInitializationError" | "CannotStartContainerError"
    );
    on.iter()
        .any(|c| c == cause || (start_error && c == "TaskFailedToStart"))
}

/// The containers of a failed task whose log tells why: the deciding ones that did not
/// exit 0 (all deciding ones when the task was stopped from outside).
pub fn failing_containers(task: &TaskState, deciding: &[String]) -> Vec<String> {
    let deciding_here: Vec<&ContainerState> = task
        .containers
        .iter()
        .filter(|c| deciding.is_empty() || deciding.contains(&c.name))
        .collect();
    let failed: Vec<String> = deciding_here
        .iter()
        .filter(|c| c.exit_code != Some(0))
        .map(|c| c.name.clone())
        .collect();
    if failed.is_empty() {
        deciding_here.iter().map(|c| c.name.clone()).collect()
    } else {
        failed
    }
}

/// What the log of one failing container gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tail {
    Lines(Vec<String>),
    /// Another log driver, no stream prefix, or no stream (the task never ran).
    NoStream,
    Unavailable(String),
}

/// One container's log tail, for the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerTail {
    pub task_id: String,
    pub container: String,
    pub tail: Tail,
}

/// Longest log line quoted in a message (and kept in the Tasks output).
pub const TAIL_LINE_MAX: usize = 300;
/// Longest line of one failing task in a message.
const FAILURE_LINE_MAX: usize = 320;
/// Failing tasks a message names one by one; the rest are counted.
const SHOWN: usize = 10;
/// Said when a tail (or part of one) did not fit the message.
const MORE_IN_TASKS: &str = "(more log lines in the Tasks output)";

/// `line` cut to at most `max` characters (ending with " …" when cut).
pub fn cut_chars(line: &str, max: usize) -> String {
    if line.chars().count() <= max {
        return line.to_string();
    }
    let mut cut: String = line.chars().take(max.saturating_sub(2)).collect();
    cut.push_str(" …");
    cut
}

/// `base` (a failed run's message, one line per task, see [`failure_message`]) with the
/// log tails of its failing containers under each task's line, within `budget`
/// characters. The parts are fitted, not cut from the end: every line of `base` stays
/// whole; tails go in the order of their tasks (the first failing task's first), each
/// with as many of its *last* lines as fit, since the last lines say why a program
/// stopped; what did not fit is in the Tasks output, and the message says so.
pub fn message_with_tails(base: &str, tails: &[ContainerTail], budget: usize) -> String {
    if tails.is_empty() {
        return base.to_string();
    }
    let reserve = MORE_IN_TASKS.chars().count() + 1;
    let mut used = base.chars().count() + reserve;
    let mut left_out = false;
    let mut out = String::new();
    for line in base.lines() {
        push_line(&mut out, line);
        let id = line
            .strip_prefix("task ")
            .and_then(|rest| rest.split([':', ' ']).next())
            .unwrap_or_default();
        if id.is_empty() {
            continue;
        }
        for tail in tails.iter().filter(|t| t.task_id == id) {
            let room = budget.saturating_sub(used);
            match fit_block(tail, room) {
                Some((block, whole)) => {
                    used += block.chars().count();
                    out.push_str(&block);
                    left_out |= !whole;
                }
                None => left_out = true,
            }
        }
    }
    if left_out {
        push_line(&mut out, MORE_IN_TASKS);
    }
    let mut message = out.trim_end().to_string();
    // Only when `base` alone is over the budget (it never is: see failure_message).
    cfn_protocol::progress::cap_message(&mut message, budget);
    message
}

fn push_line(out: &mut String, line: &str) {
    out.push_str(line);
    out.push('\n');
}

/// The block of one tail within `room` characters, and whether it is whole; `None` when
/// not even its first line fits.
fn fit_block(tail: &ContainerTail, room: usize) -> Option<(String, bool)> {
    let fits = |block: String| (block.chars().count() <= room).then_some(block);
    match &tail.tail {
        Tail::NoStream => fits(format!(
            "  no CloudWatch log stream for container {}\n",
            tail.container
        ))
        .map(|b| (b, true)),
        Tail::Unavailable(why) => fits(format!(
            "  log of container {} not read: {}\n",
            tail.container,
            cut_chars(why, TAIL_LINE_MAX)
        ))
        .map(|b| (b, true)),
        Tail::Lines(lines) if lines.is_empty() => {
            fits(format!("  container {} logged nothing\n", tail.container)).map(|b| (b, true))
        }
        Tail::Lines(lines) => {
            let quoted: Vec<String> = lines
                .iter()
                .map(|l| format!("  | {}\n", cut_chars(l, TAIL_LINE_MAX)))
                .collect();
            // The most lines, counted from the last, that fit with their heading.
            let mut kept = 0;
            let mut size = 0;
            for line in quoted.iter().rev() {
                let heading = heading(&tail.container, kept + 1).chars().count();
                let next = size + line.chars().count();
                if heading + next > room {
                    break;
                }
                size = next;
                kept += 1;
            }
            if kept == 0 {
                return None;
            }
            let mut block = heading(&tail.container, kept);
            for line in &quoted[quoted.len() - kept..] {
                block.push_str(line);
            }
            Some((block, kept == quoted.len()))
        }
    }
}

fn heading(container: &str, lines: usize) -> String {
    format!("  {container} log, last {lines} lines:\n")
}

/// The message of a failed run: one line per failure (each at most 320 characters, so
/// that ten of them and the count of the rest always fit a stack event), the first ten
/// named, the rest counted.
pub fn failure_message(lines: &[String], total_tasks: usize) -> String {
    let mut message = if lines.len() == 1 && total_tasks <= 1 {
        cut_chars(&lines[0], FAILURE_LINE_MAX)
    } else {
        let mut head = format!(
            "{} of {} tasks failed:",
            lines.len(),
            total_tasks.max(lines.len())
        );
        for line in lines.iter().take(SHOWN) {
            head.push('\n');
            head.push_str(&cut_chars(line, FAILURE_LINE_MAX));
        }
        head
    };
    if lines.len() > SHOWN {
        message.push_str(&format!("\n... and {} more", lines.len() - SHOWN));
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(name: &str, exit_code: Option<i32>, reason: Option<&str>) -> ContainerState {
        ContainerState {
            name: name.into(),
            exit_code,
            reason: reason.map(Into::into),
        }
    }

    fn stopped(id: &str, stop_code: &str, containers: Vec<ContainerState>) -> TaskState {
        TaskState {
            arn: format!("arn:aws:ecs:us-east-1:123456789012:task/c/{id}"),
            last_status: "STOPPED".into(),
            stop_code: Some(stop_code.into()),
            stopped_reason: Some("Essential container in task exited".into()),
            started: true,
            stopped_at: None,
            containers,
        }
    }

    fn running(id: &str) -> TaskState {
        TaskState {
            arn: format!("arn:aws:ecs:us-east-1:123456789012:task/c/{id}"),
            last_status: "RUNNING".into(),
            started: true,
            stopped_at: None,
            containers: vec![container("app", None, None)],
            ..Default::default()
        }
    }

    fn never_started(id: &str) -> TaskState {
        TaskState {
            arn: format!("arn:aws:ecs:us-east-1:123456789012:task/c/{id}"),
            last_status: "STOPPED".into(),
            stop_code: Some("TaskFailedToStart".into()),
            stopped_reason: Some("CannotPullContainerError: pull access denied".into()),
            started: false,
            stopped_at: None,
            containers: vec![container(
                "app",
                None,
                Some("CannotPullContainerError: pull access denied"),
            )],
        }
    }

    #[test]
    fn decides_runs() {
        let app = || vec!["app".to_string()];
        let none: Vec<String> = vec![];
        struct Case {
            name: &'static str,
            tasks: Vec<TaskState>,
            missing: Vec<String>,
            placement: Vec<String>,
            deciding: Vec<String>,
            want: Verdict,
        }
        let cases = vec![
            Case {
                name: "one task exits 0",
                tasks: vec![stopped("t1", "EssentialContainerExited", vec![container("app", Some(0), None)])],
                missing: vec![], placement: vec![], deciding: app(),
                want: Verdict::Succeeded,
            },
            Case {
                name: "no tasks at all (Count 0)",
                tasks: vec![], missing: vec![], placement: vec![], deciding: none.clone(),
                want: Verdict::Succeeded,
            },
            Case {
                name: "still running",
                tasks: vec![running("t1"), stopped("t2", "EssentialContainerExited", vec![container("app", Some(1), None)])],
                missing: vec![], placement: vec![], deciding: app(),
                want: Verdict::Pending { unfinished: vec!["arn:aws:ecs:us-east-1:123456789012:task/c/t1".into()] },
            },
            Case {
                name: "non-zero exit",
                tasks: vec![stopped("t1", "EssentialContainerExited", vec![container("app", Some(2), None)])],
                missing: vec![], placement: vec![], deciding: app(),
                want: Verdict::Failed { lines: vec!["task t1: container app exited with code 2 (stopped: EssentialContainerExited: Essential container in task exited)".into()] },
            },
            Case {
                name: "sidecar fails, deciding container succeeds",
                tasks: vec![stopped("t1", "EssentialContainerExited", vec![container("app", Some(0), None), container("log-router", Some(1), None)])],
                missing: vec![], placement: vec![], deciding: app(),
                want: Verdict::Succeeded,
            },
            Case {
                name: "sidecar fails and every container decides",
                tasks: vec![stopped("t1", "EssentialContainerExited", vec![container("app", Some(0), None), container("log-router", Some(1), None)])],
                missing: vec![], placement: vec![], deciding: none.clone(),
                want: Verdict::Failed { lines: vec!["task t1: container log-router exited with code 1 (stopped: EssentialContainerExited: Essential container in task exited)".into()] },
            },
            Case {
                name: "deciding container without exit code",
                tasks: vec![stopped("t1", "EssentialContainerExited", vec![container("app", None, Some("OutOfMemoryError: Container killed due to memory usage")), container("sidecar", Some(0), None)])],
                missing: vec![], placement: vec![], deciding: app(),
                want: Verdict::Failed { lines: vec!["task t1: container app has no exit code (OutOfMemoryError: Container killed due to memory usage) (stopped: EssentialContainerExited: Essential container in task exited)".into()] },
            },
            Case {
                name: "task never started",
                tasks: vec![never_started("t1")],
                missing: vec![], placement: vec![], deciding: app(),
                want: Verdict::Failed { lines: vec!["task t1 never started (TaskFailedToStart: CannotPullContainerError: pull access denied); container app: CannotPullContainerError: pull access denied".into()] },
            },
            Case {
                name: "stopped by the user while running",
                tasks: vec![TaskState { stop_code: Some("UserInitiated".into()), stopped_reason: Some("Timeout".into()), ..stopped("t1", "x", vec![container("app", Some(143), None)]) }],
                missing: vec![], placement: vec![], deciding: app(),
                want: Verdict::Failed { lines: vec!["task t1: container app exited with code 143 (stopped: UserInitiated: Timeout)".into()] },
            },
            Case {
                name: "placement failure and a successful sibling",
                tasks: vec![stopped("t1", "EssentialContainerExited", vec![container("app", Some(0), None)])],
                missing: vec![], placement: vec!["placement failure: RESOURCE:MEMORY".into()], deciding: app(),
                want: Verdict::Failed { lines: vec!["placement failure: RESOURCE:MEMORY".into()] },
            },
            Case {
                name: "placement failure waits for the running sibling",
                tasks: vec![running("t1")],
                missing: vec![], placement: vec!["placement failure: RESOURCE:MEMORY".into()], deciding: app(),
                want: Verdict::Pending { unfinished: vec!["arn:aws:ecs:us-east-1:123456789012:task/c/t1".into()] },
            },
            Case {
                name: "task forgotten by ECS",
                tasks: vec![], missing: vec!["arn:aws:ecs:us-east-1:1:task/c/gone".into()], placement: vec![], deciding: app(),
                want: Verdict::Failed { lines: vec!["task gone: ECS does not show this task (not seen stopped; stopped in case it runs)".into()] },
            },
            Case {
                name: "deciding container named but absent",
                tasks: vec![stopped("t1", "EssentialContainerExited", vec![container("app", Some(0), None)])],
                missing: vec![], placement: vec![], deciding: vec!["migrator".into()],
                want: Verdict::Failed { lines: vec!["task t1: container migrator is not in the task (stopped: EssentialContainerExited: Essential container in task exited)".into()] },
            },
            Case {
                name: "Spot interruption with exit code 0 fails",
                tasks: vec![TaskState {
                    stopped_reason: Some("Your Spot Task was interrupted.".into()),
                    ..stopped("t1", "SpotInterruption", vec![container("app", Some(0), None)])
                }],
                missing: vec![], placement: vec![], deciding: app(),
                want: Verdict::Failed { lines: vec!["task t1 was stopped before it finished (SpotInterruption: Your Spot Task was interrupted.)".into()] },
            },
            Case {
                name: "user stop with exit code 143 names the exit and the stop",
                tasks: vec![TaskState {
                    stopped_reason: Some("Task stopped by user".into()),
                    ..stopped("t1", "UserInitiated", vec![container("app", Some(143), None)])
                }],
                missing: vec![], placement: vec![], deciding: app(),
                want: Verdict::Failed { lines: vec!["task t1: container app exited with code 143 (stopped: UserInitiated: Task stopped by user)".into()] },
            },
            Case {
                name: "a stopped task without a stop code is not a normal end",
                tasks: vec![TaskState { stop_code: None, stopped_reason: None, ..stopped("t1", "x", vec![container("app", Some(0), None)]) }],
                missing: vec![], placement: vec![], deciding: app(),
                want: Verdict::Failed { lines: vec!["task t1 was stopped before it finished (no stop reason given)".into()] },
            },
            Case {
                name: "two failing tasks, one line each",
                tasks: vec![
                    stopped("t1", "EssentialContainerExited", vec![container("app", Some(1), None)]),
                    stopped("t2", "EssentialContainerExited", vec![container("app", Some(0), None)]),
                    never_started("t3"),
                ],
                missing: vec![], placement: vec![], deciding: app(),
                want: Verdict::Failed { lines: vec![
                    "task t1: container app exited with code 1 (stopped: EssentialContainerExited: Essential container in task exited)".into(),
                    "task t3 never started (TaskFailedToStart: CannotPullContainerError: pull access denied); container app: CannotPullContainerError: pull access denied".into(),
                ] },
            },
        ];
        for case in cases {
            let got = decide(
                &case.tasks,
                &case.missing,
                false,
                &case.placement,
                &case.deciding,
            );
            assert_eq!(got, case.want, "{}", case.name);
        }
    }

    #[test]
    fn missing_tasks_wait_while_they_may_still_appear() {
        let arn = "arn:aws:ecs:us-east-1:1:task/c/new".to_string();
        assert_eq!(
            decide(&[], std::slice::from_ref(&arn), true, &[], &[]),
            Verdict::Pending {
                unfinished: vec![arn.clone()]
            }
        );
        assert!(matches!(
            decide(&[], &[arn], false, &[], &[]),
            Verdict::Failed { .. }
        ));
    }

    #[test]
    fn no_success_unless_every_task_ended_normally_with_zero_exits() {
        // Every combination of stop code and exit code, for one deciding container.
        let codes = [
            "EssentialContainerExited",
            "SpotInterruption",
            "UserInitiated",
            "TerminationNotice",
            "ServiceSchedulerInitiated",
            "TaskFailedToStart",
        ];
        for code in codes {
            for exit in [None, Some(0), Some(1), Some(137), Some(143)] {
                let task = stopped("t", code, vec![container("app", exit, None)]);
                let verdict = decide(&[task], &[], false, &[], &["app".into()]);
                let should_pass = code == NORMAL_STOP_CODE && exit == Some(0);
                assert_eq!(
                    verdict == Verdict::Succeeded,
                    should_pass,
                    "{code} {exit:?}: {verdict:?}"
                );
            }
        }
    }

    #[test]
    fn names_causes_as_retry_policies_do() {
        let app = vec!["app".to_string()];
        assert_eq!(
            cause(
                &stopped(
                    "t",
                    "SpotInterruption",
                    vec![container("app", Some(0), None)]
                ),
                &app
            ),
            Some("SpotInterruption")
        );
        assert_eq!(
            cause(
                &stopped("t", NORMAL_STOP_CODE, vec![container("app", Some(3), None)]),
                &app
            ),
            Some("NonZeroExit")
        );
        assert_eq!(
            cause(
                &stopped("t", NORMAL_STOP_CODE, vec![container("app", Some(0), None)]),
                &app
            ),
            None
        );
        assert_eq!(
            cause(&never_started("t"), &app),
            Some("CannotPullContainerError")
        );
        let on: Vec<String> = vec!["TaskFailedToStart".into()];
        assert!(
            retries(&on, "CannotPullContainerError"),
            "a start error is a failure to start"
        );
        assert!(!retries(&on, "NonZeroExit"));
    }

    #[test]
    fn tails_go_under_their_task_and_the_first_is_kept_whole() {
        let lines: Vec<String> = (1..=3)
            .map(|i| format!("task t{i}: container app exited with code 1"))
            .collect();
        let tail = |i: usize, n: usize| ContainerTail {
            task_id: format!("t{i}"),
            container: "app".into(),
            tail: Tail::Lines(
                (0..n)
                    .map(|l| format!("t{i} line {l} {}", "x".repeat(100)))
                    .collect(),
            ),
        };
        let message = message_with_tails(
            &failure_message(&lines, 3),
            &[tail(1, 20), tail(2, 20), tail(3, 20)],
            4000,
        );
        assert!(
            message.chars().count() <= 4000,
            "{}",
            message.chars().count()
        );
        assert!(
            message.contains("t1 line 19"),
            "the first task's tail is whole"
        );
        let first_task = message.find("task t1").unwrap();
        let first_tail = message.find("t1 line 0").unwrap();
        let second_task = message.find("task t2").unwrap();
        assert!(
            first_task < first_tail && first_tail < second_task,
            "{message}"
        );
        assert!(
            message.contains("(more log lines in the Tasks output)"),
            "{message}"
        );
        let none = ContainerTail {
            task_id: "t1".into(),
            container: "app".into(),
            tail: Tail::NoStream,
        };
        let message = message_with_tails(&failure_message(&lines[..1], 1), &[none], 4000);
        assert_eq!(message, "task t1: container app exited with code 1\n  no CloudWatch log stream for container app");
        let huge = ContainerTail {
            task_id: "t1".into(),
            container: "app".into(),
            tail: Tail::Lines(vec!["y".repeat(1_000_000)]),
        };
        let message = message_with_tails(&failure_message(&lines[..1], 1), &[huge], 4000);
        assert!(
            message.len() < 1000,
            "a huge line is cut: {}",
            message.len()
        );
    }

    #[test]
    fn failure_messages_are_readable_and_bounded() {
        assert_eq!(
            failure_message(&["task t1: boom".into()], 1),
            "task t1: boom"
        );
        assert_eq!(
            failure_message(&["a".into(), "b".into()], 25),
            "2 of 25 tasks failed:\na\nb"
        );
        let many: Vec<String> = (0..30).map(|i| format!("task {i}")).collect();
        let message = failure_message(&many, 30);
        assert_eq!(message.lines().count(), 12, "{message}");
        assert!(message.ends_with("... and 20 more"));
    }

    /// Row 18 (issue 15): a failing task with 40 log lines of ~280 characters showed lines
    /// 21-33 under "last 20 lines" and dropped `rails aborted!`; with 12 failing tasks the
    /// 9th was cut mid-ID and "and 2 more" was gone. The parts are fitted, last lines first.
    #[test]
    fn messages_keep_the_last_lines_and_every_task_line_whole() {
        let mut log: Vec<String> = (1..40)
            .map(|i| format!("line {i:02} {}", "y".repeat(272)))
            .collect();
        log.push("rails aborted!".into());
        let base = failure_message(&["task t1: container app exited with code 1".into()], 1);
        let tail = ContainerTail {
            task_id: "t1".into(),
            container: "app".into(),
            tail: Tail::Lines(log.clone()),
        };
        let message = message_with_tails(&base, &[tail], 3904);
        assert!(message.chars().count() <= 3904);
        assert!(
            message.ends_with("(more log lines in the Tasks output)"),
            "{message}"
        );
        assert!(message.contains("rails aborted!"), "the last line is kept");
        let shown: Vec<&str> = message.lines().filter(|l| l.starts_with("  | ")).collect();
        let heading = format!("last {} lines", shown.len());
        assert!(
            message.contains(&heading),
            "the heading counts what is shown: {message}"
        );
        assert!(shown.len() < 40 && shown.len() > 5);
        let lines: Vec<String> = (0..12)
            .map(|i| format!("task {i:032x}: container app exited with code 1 (stopped: EssentialContainerExited: {})", "z".repeat(400)))
            .collect();
        let message = failure_message(&lines, 12);
        assert!(message.chars().count() < 3904);
        assert!(message.ends_with("... and 2 more"), "{message}");
        for i in 0..10 {
            assert!(
                message.contains(&format!("task {i:032x}: container app")),
                "task {i} whole"
            );
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 64,
            failure_persistence: None,
            ..proptest::prelude::ProptestConfig::default()
        })]
        /// Whatever the lines and tails: within the budget; every line of the base whole
        /// and in order; each tail shown is the end of its log, under a heading that
        /// counts it; what was left out is said.
        #[test]
        fn messages_fit_their_budget(
            lines in proptest::collection::vec("[a-z ]{0,500}", 1..30),
            tails in proptest::collection::vec((0usize..30, proptest::collection::vec("[a-z]{0,400}", 0..60)), 0..12),
            budget in 3600usize..4000,
        ) {
            let lines: Vec<String> = lines.iter().enumerate().map(|(i, l)| format!("task t{i}: {l}")).collect();
            let base = failure_message(&lines, lines.len());
            proptest::prop_assert!(base.chars().count() <= 3600, "base {}", base.chars().count());
            let tails: Vec<ContainerTail> = tails
                .into_iter()
                .map(|(task, log)| ContainerTail { task_id: format!("t{task}"), container: "app".into(), tail: Tail::Lines(log) })
                .collect();
            let message = message_with_tails(&base, &tails, budget);
            proptest::prop_assert!(message.chars().count() <= budget);
            let mut at = 0;
            for line in base.lines().map(str::trim_end) {
                let found = message[at..].find(line);
                proptest::prop_assert!(found.is_some(), "{line:?} missing or out of order");
                at += found.unwrap_or_default() + line.len();
            }
            for block in message.split("  app log, last ").skip(1) {
                let (count, rest) = block.split_once(" lines:\n").unwrap_or_default();
                let shown: Vec<&str> = rest.lines().take_while(|l| l.starts_with("  | ")).collect();
                proptest::prop_assert_eq!(count.parse::<usize>().ok(), Some(shown.len()));
            }
        }
    }
}
