//! The events of a TaskRun run, for Amazon EventBridge (the `Events` property): one per
//! change of state of a run, sent to the bus `Events.EventBusName` (the account's
//! `default` bus when not given) when the TaskRun has `Events`, else none.
//!
//! Every event has Source [`SOURCE`] (`org.taskrun`) and one of these DetailTypes:
//!
//! | DetailType | when | detail beyond the common fields |
//! |---|---|---|
//! | `TaskRun Started` | the run's first tasks started | `startedAt` |
//! | `TaskRun Retrying` | a failed task is started again (one event per retry) | `retry`: `taskArn` (the task replaced), `cause`, `attempt` (1: the first retry) |
//! | `TaskRun Succeeded` | the run ended and succeeded | `output` (the line the task printed, when it did), `finishedAt` |
//! | `TaskRun Failed` | the run ended: a task failed, or ECS refused it | `reason` (the FAILED stack event's), `logTail`, `finishedAt` |
//! | `TaskRun Timed Out` | the run ended: its Timeout passed | `reason`, `logTail`, `finishedAt` |
//! | `TaskRun Superseded` | the run was stopped by an update or a delete | `reason`, `finishedAt` |
//! | `TaskRun Undone` | an undo run (OnRollback) ended, whatever its outcome | `outcome` (`SUCCEEDED`, `FAILED`, `TIMED_OUT`, `SUPERSEDED`), and what that outcome carries |
//!
//! The common fields of `detail`: `eventId` (`<Id>/<run token>/<kind>` and, for a retry,
//! `/<n>`: the same for the same change, however often it is sent), `stackId`,
//! `logicalResourceId`, `id` (the TaskRun's Id), `runToken`, `status` (the model's Status
//! then), `cluster`, `taskArns` (the tasks deciding the run; at most as many as fit),
//! `taskCount`, `consoleUrl` (the cluster's tasks in the ECS console) and, for the events
//! of an undo run, `undo: true`.
//!
//! Delivery: at least once, with stable ids, best effort. An event is due once the
//! invocation holds the run with the change, recorded as the engine records it (an end
//! and a retry are written before anything follows them; the ARNs a RunTask answered are
//! answered again for its client token, so a process that dies before writing them loses
//! nothing); the events due and not yet announced go out in one PutEvents call at the end
//! of the invocation that sees them, within its time (see [`Announced`] for where
//! "already announced" is kept). A redelivered invocation may send an event again: a subscriber
//! that must not act twice de-duplicates by `eventId`. Sending never fails an operation.
//!
//! Here is the pure part: which events a run has due ([`due`]), the entries that announce
//! them ([`entry`]), and what was announced once they were sent ([`Announced::after`]).

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use handler_kit::events::{EventEntry, DEFAULT_BUS, MAX_ENTRIES, MAX_REQUEST_BYTES};

use crate::machine::{Ending, Phase, Run};

/// The Source of every TaskRun event. Not `aws.*` (EventBridge refuses that prefix for
/// custom events), and not a domain of ours to suggest: a short, stable name rules match.
pub const SOURCE: &str = "org.taskrun";
/// The most one entry may take (EventBridge's count: Source, DetailType, Detail): a tenth
/// of a PutEvents request, less some room, so that ten entries always fit one request
/// ("Amazon EventBridge User Guide, Calculating PutEvents event entry size": less than
/// 256 KB in all).
pub const MAX_ENTRY_BYTES: usize = MAX_REQUEST_BYTES / MAX_ENTRIES - 1024;
/// A log line in an event is cut to this many bytes (a line may be a whole stack trace).
const MAX_LINE_BYTES: usize = 1024;

/// What of a run has been announced: the events sent (or refused for good) so far. It
/// travels in the callback context (free: every IN_PROGRESS answer carries it) and rides
/// along in the record with the writes the engine makes anyway (never a write of its
/// own), so that a later operation that takes the run over (a delete, a superseding
/// update, a redelivered first invocation) knows what was announced up to the record's
/// last write. What neither knows is announced again, with the same `eventId`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Announced {
    /// The token of the run the rest is about.
    pub run: String,
    /// The run is an undo (OnRollback): its events say so, and its end is `Undone`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub undo: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub started: bool,
    /// The retries announced: the first this many of `Run::retried`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub retries: u32,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ended: bool,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl Announced {
    /// Nothing announced yet of the run `token`.
    pub fn none(token: &str) -> Self {
        Self {
            run: token.to_string(),
            ..Self::default()
        }
    }

    /// What `known` says of the run `token`: nothing when it is about another run.
    pub fn of(known: Option<&Announced>, token: &str) -> Self {
        match known {
            Some(known) if known.run == token => known.clone(),
            _ => Self::none(token),
        }
    }

    /// What either says was announced (both about the same run).
    pub fn merge(&self, other: &Announced) -> Self {
        if other.run != self.run {
            return self.clone();
        }
        Self {
            run: self.run.clone(),
            undo: self.undo || other.undo,
            started: self.started || other.started,
            retries: self.retries.max(other.retries),
            ended: self.ended || other.ended,
        }
    }

    /// What is announced once `sent` (the events of one send, in order) were, each
    /// `settled` or not. Retries are counted as a prefix: only those before the first
    /// unsettled one count.
    pub fn after(&self, sent: &[Kind], settled: &[bool]) -> Self {
        let mut next = self.clone();
        let mut retries_in_order = true;
        for (kind, settled) in sent.iter().zip(settled) {
            match kind {
                Kind::Started => next.started |= *settled,
                Kind::Retrying(n) => {
                    if *settled && retries_in_order && *n == next.retries {
                        next.retries += 1;
                    } else {
                        retries_in_order = false;
                    }
                }
                Kind::Ended(_) => next.ended |= *settled,
            }
        }
        next
    }
}

/// How a run ended, as its terminal event says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Succeeded,
    Failed,
    TimedOut,
    Superseded,
    /// An undo run ended (its outcome is in the detail).
    Undone,
}

/// One change of a run to announce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Started,
    /// The `n`-th retry (from 0) of `Run::retried`.
    Retrying(u32),
    Ended(End),
}

impl Kind {
    /// The DetailType of its event.
    pub fn detail_type(self) -> &'static str {
        match self {
            Kind::Started => "TaskRun Started",
            Kind::Retrying(_) => "TaskRun Retrying",
            Kind::Ended(End::Succeeded) => "TaskRun Succeeded",
            Kind::Ended(End::Failed) => "TaskRun Failed",
            Kind::Ended(End::TimedOut) => "TaskRun Timed Out",
            Kind::Ended(End::Superseded) => "TaskRun Superseded",
            Kind::Ended(End::Undone) => "TaskRun Undone",
        }
    }

    /// Its part of the `eventId`.
    fn id_part(self) -> String {
        match self {
            Kind::Started => "started".into(),
            Kind::Retrying(n) => format!("retrying/{n}"),
            Kind::Ended(End::Succeeded) => "succeeded".into(),
            Kind::Ended(End::Failed) => "failed".into(),
            Kind::Ended(End::TimedOut) => "timedOut".into(),
            Kind::Ended(End::Superseded) => "superseded".into(),
            Kind::Ended(End::Undone) => "undone".into(),
        }
    }
}

/// How the ended `run` ended, for its terminal event (`undo`: the run is an undo).
pub fn end_of(run: &Run, undo: bool) -> Option<End> {
    if run.phase != Phase::Ended {
        return None;
    }
    Some(match (undo, run.ending?) {
        (true, _) => End::Undone,
        (false, Ending::Succeeded) => End::Succeeded,
        (false, Ending::TimedOut) => End::TimedOut,
        (false, Ending::Superseded) => End::Superseded,
        (false, Ending::TasksFailed | Ending::Rejected { .. }) => End::Failed,
    })
}

/// The events `run` has due beyond `announced`, in the order they happened: started (once
/// any task started), each retry, and the end (once the run ended).
pub fn due(run: &Run, announced: &Announced) -> Vec<Kind> {
    let mut due = Vec::new();
    if !announced.started && !run.tasks.is_empty() {
        due.push(Kind::Started);
    }
    let retried = u32::try_from(run.retried.len()).unwrap_or(u32::MAX);
    due.extend((announced.retries..retried).map(Kind::Retrying));
    if !announced.ended {
        if let Some(end) = end_of(run, announced.undo) {
            due.push(Kind::Ended(end));
        }
    }
    due
}

/// The events of one send: at most [`MAX_ENTRIES`] (one PutEvents call), in order. Started
/// and the end always go; retries fill what is left, oldest first (the rest go with the
/// next send, if there is one).
pub fn batch(due: &[Kind]) -> Vec<Kind> {
    let fixed = due
        .iter()
        .filter(|k| !matches!(k, Kind::Retrying(_)))
        .count();
    let mut retries_left = MAX_ENTRIES.saturating_sub(fixed);
    due.iter()
        .copied()
        .filter(|k| match k {
            Kind::Retrying(_) if retries_left == 0 => false,
            Kind::Retrying(_) => {
                retries_left -= 1;
                true
            }
            _ => true,
        })
        .collect()
}

/// Where a run's events go and what they say of its resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The TaskRun's Id.
    pub id: String,
    pub stack_id: Option<String>,
    pub logical_resource_id: Option<String>,
    pub region: Option<String>,
    pub bus: String,
}

/// The bus the TaskRun with `properties` sends to, or `None` when it has no `Events`.
pub fn bus_of(properties: &Value) -> Option<String> {
    let events = properties.get("Events")?;
    Some(
        events
            .get("EventBusName")
            .and_then(Value::as_str)
            .filter(|name| !name.is_empty())
            .unwrap_or(DEFAULT_BUS)
            .to_string(),
    )
}

/// The stable id of the event of `kind` of the run `token` of TaskRun `id`.
pub fn event_id(id: &str, token: &str, kind: Kind) -> String {
    format!("{id}/{token}/{}", kind.id_part())
}

/// The ECS console's page of the tasks of `cluster` (a name or an ARN) in `region`.
pub fn console_url(region: Option<&str>, cluster: &str) -> String {
    let region = region
        // A region goes into the host name: letters, digits and dashes only.
        .filter(|r| {
            !r.is_empty()
                && r.len() <= 32
                && r.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
        .unwrap_or("us-east-1");
    let name = cluster.rsplit_once(":cluster/").map_or(cluster, |(_, n)| n);
    // The console's host per partition (unverified beyond the commercial one).
    let host = if region.starts_with("cn-") {
        format!("{region}.console.amazonaws.cn")
    } else if region.starts_with("us-gov-") {
        format!("{region}.console.amazonaws-us-gov.com")
    } else {
        format!("{region}.console.aws.amazon.com")
    };
    format!("https://{host}/ecs/v2/clusters/{name}/tasks")
}

/// The PutEvents entry that announces `kind` of `run` (`undo`: the run is an undo), its
/// detail trimmed to [`MAX_ENTRY_BYTES`]: log tails go first, then the length of long
/// texts, then task ARNs.
pub fn entry(source: &Source, run: &Run, kind: Kind, undo: bool) -> EventEntry {
    let event_id = event_id(&source.id, &run.token, kind);
    let mut detail = Map::new();
    detail.insert("eventId".into(), json!(event_id));
    if let Some(stack) = &source.stack_id {
        detail.insert("stackId".into(), json!(stack));
    }
    if let Some(logical) = &source.logical_resource_id {
        detail.insert("logicalResourceId".into(), json!(logical));
    }
    detail.insert("id".into(), json!(source.id));
    detail.insert("runToken".into(), json!(run.token));
    let status = match kind {
        Kind::Started | Kind::Retrying(_) => "RUNNING",
        Kind::Ended(_) => crate::machine::status(run),
    };
    detail.insert("status".into(), json!(status));
    detail.insert("cluster".into(), json!(run.cluster));
    let arns = run.current_arns();
    detail.insert("taskCount".into(), json!(arns.len()));
    detail.insert("taskArns".into(), json!(arns));
    detail.insert(
        "consoleUrl".into(),
        json!(console_url(source.region.as_deref(), &run.cluster)),
    );
    if undo {
        detail.insert("undo".into(), json!(true));
    }
    match kind {
        Kind::Started => {
            detail.insert(
                "startedAt".into(),
                json!(handler_kit::clock::iso8601(run.started_at)),
            );
        }
        Kind::Retrying(n) => {
            if let Some(retried) = run.retried.get(n as usize) {
                let replaced = run.tasks.arns().get(retried.task as usize).cloned();
                detail.insert(
                    "retry".into(),
                    json!({
                        "taskArn": replaced,
                        "cause": retried.cause,
                        "attempt": u32::from(run.attempt_of(retried.task as usize)) + 1,
                    }),
                );
            }
        }
        Kind::Ended(end) => {
            if end == End::Undone {
                detail.insert("outcome".into(), json!(crate::machine::status(run)));
            }
            if let Some(finished) = run.finished_at {
                detail.insert(
                    "finishedAt".into(),
                    json!(handler_kit::clock::iso8601(finished)),
                );
            }
            if run.ending == Some(Ending::Succeeded) {
                if let Some(output) = &run.output {
                    detail.insert("output".into(), json!(output));
                }
            } else {
                // The FAILED stack event's message (see `handlers::answer`).
                let reason = run
                    .reason
                    .clone()
                    .unwrap_or_else(|| "the run failed".into());
                detail.insert("reason".into(), json!(reason));
                let tails = log_tails(run);
                if !tails.is_empty() {
                    detail.insert("logTail".into(), Value::Array(tails));
                }
            }
        }
    }
    EventEntry {
        event_bus_name: source.bus.clone(),
        source: SOURCE.into(),
        detail_type: kind.detail_type().into(),
        detail: fitted(detail, kind.detail_type().len()),
        resources: Vec::new(),
        key: event_id,
    }
}

/// The failing containers' last lines: `{taskArn, container, lines}` each.
fn log_tails(run: &Run) -> Vec<Value> {
    run.results
        .iter()
        .flat_map(|result| {
            result
                .containers
                .iter()
                .filter(|c| !c.log_tail.is_empty())
                .map(move |c| {
                    let lines: Vec<String> =
                        c.log_tail.iter().map(|l| cut(l, MAX_LINE_BYTES)).collect();
                    json!({
                        "taskArn": format!("{}{}", run.tasks.prefix, result.task),
                        "container": c.name,
                        "lines": lines,
                    })
                })
        })
        .collect()
}

/// `text` cut to at most `max` bytes, at a character boundary, marked as cut.
fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max.saturating_sub(4);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{} …", &text[..end])
}

/// The detail as text, trimmed until the entry (with `fixed` bytes of DetailType and
/// Source) is at most [`MAX_ENTRY_BYTES`].
fn fitted(mut detail: Map<String, Value>, fixed: usize) -> String {
    let fixed = fixed + SOURCE.len();
    loop {
        let text = Value::Object(detail.clone()).to_string();
        if fixed + text.len() <= MAX_ENTRY_BYTES {
            return text;
        }
        if trim_once(&mut detail) {
            continue;
        }
        // Nothing left to trim (cannot happen with the fields above, each bounded): the
        // detail says what it is without the rest.
        let mut minimal = Map::new();
        for key in ["eventId", "id", "runToken", "status"] {
            if let Some(value) = detail.get(key) {
                minimal.insert(key.into(), value.clone());
            }
        }
        minimal.insert("trimmed".into(), json!(true));
        return Value::Object(minimal).to_string();
    }
}

/// One step of trimming a detail that is too large; `false` when nothing is left to trim.
fn trim_once(detail: &mut Map<String, Value>) -> bool {
    // Log tails first: the last one, then the older half of the first one's lines.
    if let Some(Value::Array(tails)) = detail.get_mut("logTail") {
        if tails.len() > 1 {
            tails.pop();
            return true;
        }
        if let Some(Value::Array(lines)) = tails.first_mut().and_then(|t| t.get_mut("lines")) {
            if lines.len() > 1 {
                let keep = lines.len() / 2;
                lines.drain(..lines.len() - keep);
                return true;
            }
        }
        detail.remove("logTail");
        return true;
    }
    for key in ["reason", "output"] {
        if let Some(Value::String(text)) = detail.get_mut(key) {
            if handler_kit::records::halve(text) {
                return true;
            }
        }
    }
    if let Some(Value::Array(arns)) = detail.get_mut("taskArns") {
        if !arns.is_empty() {
            let keep = arns.len() / 2;
            arns.truncate(keep);
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::{LaunchMode, Plan, Retried};
    use crate::task_result::{ContainerResult, TaskResult};
    use proptest::prelude::*;

    const PREFIX: &str = "arn:aws:ecs:eu-west-1:123456789012:task/prod/";

    fn run(count: u32) -> Run {
        let plan = Plan {
            log_tail: 5,
            ..crate::machine::tests::plan(LaunchMode::RunTask, count)
        };
        Run::new(
            "tok-1".into(),
            "arn:aws:ecs:eu-west-1:123456789012:cluster/prod".into(),
            plan,
            1_700_000_000.0,
            60,
            15,
        )
    }

    fn started(count: u32) -> Run {
        let mut run = run(count);
        for i in 0..count {
            run.tasks.push(&format!("{PREFIX}{i:032x}"));
        }
        run.phase = Phase::Running;
        run
    }

    fn ended(mut run: Run, ending: Ending, reason: Option<&str>) -> Run {
        run.phase = Phase::Ended;
        run.ending = Some(ending);
        run.reason = reason.map(str::to_string);
        run.finished_at = Some(run.started_at + 30.0);
        run
    }

    fn source() -> Source {
        Source {
            id: "Migrate-0123".into(),
            stack_id: Some("arn:aws:cloudformation:eu-west-1:123456789012:stack/s/1".into()),
            logical_resource_id: Some("Migrate".into()),
            region: Some("eu-west-1".into()),
            bus: "ops".into(),
        }
    }

    fn detail(entry: &EventEntry) -> Value {
        serde_json::from_str(&entry.detail).unwrap_or(Value::Null)
    }

    #[test]
    fn a_run_announces_start_retries_and_end_once_each() {
        let none = Announced::none("tok-1");
        assert_eq!(due(&run(1), &none), vec![], "nothing started yet");
        let mut going = started(2);
        assert_eq!(due(&going, &none), vec![Kind::Started]);
        let sent = Announced::none("tok-1").after(&[Kind::Started], &[true]);
        assert_eq!(due(&going, &sent), vec![]);
        going.retried.push(Retried {
            task: 0,
            cause: "SpotInterruption".into(),
        });
        going.tasks.push(&format!("{PREFIX}{:032x}", 9));
        assert_eq!(due(&going, &sent), vec![Kind::Retrying(0)]);
        let done = ended(going, Ending::Succeeded, None);
        assert_eq!(
            due(&done, &sent),
            vec![Kind::Retrying(0), Kind::Ended(End::Succeeded)]
        );
        let all = sent.after(
            &[Kind::Retrying(0), Kind::Ended(End::Succeeded)],
            &[true, true],
        );
        assert_eq!(due(&done, &all), vec![]);
        // A retry that did not go stays due; the end that went does not.
        let partly = sent.after(
            &[Kind::Retrying(0), Kind::Ended(End::Succeeded)],
            &[false, true],
        );
        assert_eq!(due(&done, &partly), vec![Kind::Retrying(0)]);
    }

    #[test]
    fn endings_map_to_their_events_and_an_undo_ends_undone() {
        for (ending, end) in [
            (Ending::Succeeded, End::Succeeded),
            (Ending::TasksFailed, End::Failed),
            (
                Ending::Rejected {
                    fault: crate::ecs::FaultKind::AccessDenied,
                },
                End::Failed,
            ),
            (Ending::TimedOut, End::TimedOut),
            (Ending::Superseded, End::Superseded),
        ] {
            let done = ended(run(0), ending, Some("why"));
            assert_eq!(
                due(&done, &Announced::none("tok-1")),
                vec![Kind::Ended(end)]
            );
            let undo = Announced {
                undo: true,
                ..Announced::none("tok-1")
            };
            assert_eq!(due(&done, &undo), vec![Kind::Ended(End::Undone)]);
        }
    }

    #[test]
    fn what_another_run_announced_counts_for_nothing() {
        let other = Announced {
            ended: true,
            started: true,
            ..Announced::none("old")
        };
        let known = Announced::of(Some(&other), "tok-1");
        assert_eq!(known, Announced::none("tok-1"));
        assert_eq!(known.merge(&other), known);
        let more = Announced {
            retries: 2,
            ..Announced::none("tok-1")
        };
        assert_eq!(known.merge(&more).retries, 2);
    }

    #[test]
    fn the_failed_event_carries_the_reason_the_tail_and_a_console_link() {
        let mut failed = ended(
            started(1),
            Ending::TasksFailed,
            Some("container app exited with code 3"),
        );
        failed.results.push(TaskResult {
            task: format!("{:032x}", 0),
            attempt: 0,
            retried_because: None,
            stop_code: Some("EssentialContainerExited".into()),
            stopped_reason: None,
            containers: vec![ContainerResult {
                name: "app".into(),
                exit_code: Some(3),
                reason: None,
                log_tail: vec!["step 1".into(), "ERROR: boom".into()],
            }],
            never_started: false,
            stopped_at: None,
        });
        let entry = entry(&source(), &failed, Kind::Ended(End::Failed), false);
        assert_eq!(entry.source, "org.taskrun");
        assert_eq!(entry.detail_type, "TaskRun Failed");
        assert_eq!(entry.event_bus_name, "ops");
        let detail = detail(&entry);
        assert_eq!(detail["eventId"], "Migrate-0123/tok-1/failed");
        assert_eq!(detail["reason"], "container app exited with code 3");
        assert_eq!(detail["status"], "FAILED");
        assert_eq!(detail["logicalResourceId"], "Migrate");
        assert_eq!(detail["logTail"][0]["lines"][1], "ERROR: boom");
        assert_eq!(detail["taskArns"][0], format!("{PREFIX}{:032x}", 0));
        assert_eq!(
            detail["consoleUrl"],
            "https://eu-west-1.console.aws.amazon.com/ecs/v2/clusters/prod/tasks"
        );
        assert!(handler_kit::events::check_entry(&entry).is_ok());
    }

    #[test]
    fn a_huge_tail_and_reason_are_trimmed_to_fit_ten_to_a_request() {
        let mut failed = ended(started(100), Ending::TasksFailed, None);
        failed.reason = Some("r".repeat(100_000));
        for i in 0..10 {
            failed.results.push(TaskResult {
                task: format!("{i:032x}"),
                attempt: 0,
                retried_because: None,
                stop_code: None,
                stopped_reason: None,
                containers: vec![ContainerResult {
                    name: "app".into(),
                    exit_code: Some(1),
                    reason: None,
                    log_tail: (0..200)
                        .map(|n| format!("{n} {}", "é".repeat(3000)))
                        .collect(),
                }],
                never_started: false,
                stopped_at: None,
            });
        }
        let entry = entry(&source(), &failed, Kind::Ended(End::Failed), false);
        assert!(entry.size() <= MAX_ENTRY_BYTES, "{}", entry.size());
        assert!(entry.size() * MAX_ENTRIES < MAX_REQUEST_BYTES);
        let detail = detail(&entry);
        assert_eq!(detail["eventId"], "Migrate-0123/tok-1/failed");
        assert!(detail["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("rrr")));
        assert_eq!(detail["taskCount"], 100);
    }

    #[test]
    fn a_batch_is_one_call_and_keeps_start_and_end() {
        let mut due: Vec<Kind> = vec![Kind::Started];
        due.extend((0..20).map(Kind::Retrying));
        due.push(Kind::Ended(End::Failed));
        let batch = batch(&due);
        assert_eq!(batch.len(), MAX_ENTRIES);
        assert_eq!(batch[0], Kind::Started);
        assert_eq!(batch[1], Kind::Retrying(0));
        assert_eq!(batch[MAX_ENTRIES - 1], Kind::Ended(End::Failed));
    }

    #[test]
    fn no_events_without_the_events_property() {
        assert_eq!(bus_of(&json!({"Cluster": "c"})), None);
        assert_eq!(bus_of(&json!({"Events": {}})).as_deref(), Some("default"));
        assert_eq!(
            bus_of(&json!({"Events": {"EventBusName": "ops"}})).as_deref(),
            Some("ops")
        );
    }

    fn arb_ending() -> impl Strategy<Value = Ending> {
        prop_oneof![
            Just(Ending::Succeeded),
            Just(Ending::TasksFailed),
            Just(Ending::TimedOut),
            Just(Ending::Superseded),
        ]
    }

    proptest! {
        /// However the sends go (any entries lost, any order of invocations), a run that
        /// ended announces exactly one end, each retry once, started once, with the same
        /// ids whenever an event is sent again.
        #[test]
        fn every_ended_run_announces_one_end_and_ids_are_stable(
            count in 1u32..5,
            retries in 0usize..14,
            ending in arb_ending(),
            undo in any::<bool>(),
            outcomes in proptest::collection::vec(any::<bool>(), 1..64),
        ) {
            let mut done = started(count);
            for i in 0..retries {
                done.retried.push(Retried { task: (i % count as usize) as u32, cause: "x".into() });
            }
            let done = ended(done, ending, Some("why"));
            let mut announced = Announced { undo, ..Announced::none("tok-1") };
            let mut settled_ids: Vec<String> = Vec::new();
            // The sends fail as drawn, then go: a later invocation sends what is left.
            let mut outcomes = outcomes.into_iter();
            for _ in 0..200 {
                let due = due(&done, &announced);
                if due.is_empty() {
                    break;
                }
                let sent = batch(&due);
                prop_assert!(sent.len() <= MAX_ENTRIES);
                let settled: Vec<bool> = sent.iter().map(|_| outcomes.next().unwrap_or(true)).collect();
                for (kind, ok) in sent.iter().zip(&settled) {
                    let entry = entry(&source(), &done, *kind, undo);
                    prop_assert_eq!(&entry.key, &event_id("Migrate-0123", "tok-1", *kind));
                    if *ok {
                        settled_ids.push(entry.key.clone());
                    }
                }
                announced = announced.after(&sent, &settled);
            }
            prop_assert!(due(&done, &announced).is_empty(), "all announced in the end");
            let ends: Vec<&String> = settled_ids.iter().filter(|id| {
                !id.ends_with("/started") && !id.contains("/retrying/")
            }).collect();
            prop_assert_eq!(ends.len(), 1, "{:?}", settled_ids);
            prop_assert_eq!(settled_ids.iter().filter(|id| id.ends_with("/started")).count(), 1);
            for n in 0..retries {
                let id = format!("Migrate-0123/tok-1/retrying/{n}");
                prop_assert!(settled_ids.contains(&id), "{}", id);
            }
        }
    }
}
