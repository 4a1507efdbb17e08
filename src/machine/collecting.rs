//! Collecting: every task stopped and the outcome is fixed; the logs that explain it (the
//! failing containers' last lines) or that carry the run's output are read (read again
//! while they may still be receiving their last lines), then the run ends.

use super::{
    Collect, Ending, Event, LogQuery, Next, Phase, Purpose, Run, LOG_TRIES, MAX_OUTPUT_BYTES,
    OUTPUT_MARKER, OUTPUT_SEARCH_LINES, RETRY_DELAY_SECONDS, THROTTLED_LOG_READS,
};
use crate::ecs::{Fault, FaultKind};
use crate::outcome::{cut_chars, message_with_tails, ContainerTail, Tail, TAIL_LINE_MAX};

impl Run {
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
}

/// Fixes the outcome and goes to read logs.
pub(super) fn begin(
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
    next(run)
}

/// The transition of a run in Collecting.
pub(super) fn step(run: &mut Run, event: Event, now: f64) -> Next {
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
        _ => return next(run),
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

fn next(run: &Run) -> Next {
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
