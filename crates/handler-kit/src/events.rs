//! Events for Amazon EventBridge: the port a resource type announces its state changes
//! through ([`EventSink`]), a sink that sends nothing ([`NoEvents`], what a type or a
//! backend without events gets), the rules PutEvents holds entries to ([`check_entry`];
//! the in-memory twin, `sim_events::SimEvents`, applies them), the SDK sink (feature `aws`: [`SdkEvents`]), and [`send`]: one PutEvents call, best effort.
//!
//! Best effort means: sending never fails the operation that sends, and never makes the
//! invocation overrun its time budget. [`send`] makes one call at most, with a deadline of
//! [`SEND_SECONDS`] (less when the budget has less), and says of every entry whether it is
//! settled (accepted, or refused for good: logged and dropped) or worth sending again at
//! a later invocation (throttled, a server error, no answer in time).

use std::future::Future;
use std::pin::Pin;

use crate::budget::Budget;
use crate::clock::Clock;
use crate::fault::Fault;

/// PutEvents takes at most this many entries a call ("Amazon EventBridge API Reference,
/// PutEvents": Entries, "Maximum number of 10 items").
pub const MAX_ENTRIES: usize = 10;
/// The most a PutEvents request's entries may add up to, as EventBridge counts them
/// ("Amazon EventBridge User Guide, Calculating PutEvents event entry size": "The total
/// entry size must be less than 256KB").
pub const MAX_REQUEST_BYTES: usize = 256 * 1024;
/// The most Source may be ("Amazon EventBridge API Reference, PutEventsRequestEntry":
/// Source, no length given there; EventBridge Scheduler's EventBridgeParameters gives
/// 256, and a longer source is refused by rules' patterns anyway).
pub const MAX_SOURCE_BYTES: usize = 256;
/// The most DetailType may be (as for Source: "EventBridgeParameters", DetailType,
/// "Maximum length of 128").
pub const MAX_DETAIL_TYPE_BYTES: usize = 128;
/// The time one send may take at most: the events ride on an invocation that has other
/// things to do (answer, and before the Registry's limit).
pub const SEND_SECONDS: f64 = 2.0;
/// A send is not started with less than this left: it would only be cut off.
pub const MIN_SEND_SECONDS: f64 = 0.5;
/// The event bus of an account that every account has ("Amazon EventBridge User Guide,
/// Event buses").
pub const DEFAULT_BUS: &str = "default";

/// One PutEvents entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventEntry {
    /// The bus's name or ARN.
    pub event_bus_name: String,
    pub source: String,
    pub detail_type: String,
    /// A JSON object, as text.
    pub detail: String,
    /// ARNs the event is about (EventBridge counts them into the entry's size).
    pub resources: Vec<String>,
    /// What logs name the entry by (never sent): the event's own id, say.
    pub key: String,
}

impl EventEntry {
    /// The entry's size as EventBridge counts it ("Amazon EventBridge User Guide,
    /// Calculating PutEvents event entry size": the UTF-8 bytes of Source, DetailType,
    /// Detail and each of Resources; 14 for Time, which these entries leave to
    /// EventBridge).
    pub fn size(&self) -> usize {
        self.source.len()
            + self.detail_type.len()
            + self.detail.len()
            + self.resources.iter().map(String::len).sum::<usize>()
    }
}

/// What EventBridge answered for one entry ("Amazon EventBridge API Reference,
/// PutEventsResultEntry": an EventId, or an ErrorCode and ErrorMessage).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryResult {
    Accepted { event_id: String },
    Failed { code: String, message: String },
}

impl EntryResult {
    /// Whether the same entry may be taken later ("Amazon EventBridge API Reference,
    /// PutEventsResultEntry", ErrorCode: "Retryable errors include InternalFailure,
    /// ThrottlingException"; the others are not).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Failed { code, .. } if code == "InternalFailure" || code == "ThrottlingException")
    }
}

/// A boxed future, so that the sink is usable as `dyn EventSink` (an invocation holds one
/// whatever the backend).
pub type SinkFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Vec<EntryResult>, Fault>> + Send + 'a>>;

/// Where events go: EventBridge's PutEvents.
pub trait EventSink: Send + Sync {
    /// One PutEvents call of `entries`, which must have returned by `by` (epoch seconds):
    /// one result per entry, in order, or the fault of the whole call.
    fn put_events<'a>(&'a self, entries: &'a [EventEntry], by: f64) -> SinkFuture<'a>;
}

/// The sink of a type, or a backend, that sends no events: every entry is taken and
/// dropped.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoEvents;

/// A [`NoEvents`] to lend (an invocation without a sink of its own holds this one).
pub static NO_EVENTS: NoEvents = NoEvents;

impl EventSink for NoEvents {
    fn put_events<'a>(&'a self, entries: &'a [EventEntry], _by: f64) -> SinkFuture<'a> {
        let taken = entries
            .iter()
            .map(|_| EntryResult::Accepted {
                event_id: String::new(),
            })
            .collect();
        Box::pin(async move { Ok(taken) })
    }
}

/// What became of the entries of a [`send`], by position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// For each entry: settled (accepted, or refused for good and dropped), or not (to be
    /// sent again later, if there is a later).
    pub settled: Vec<bool>,
}

impl Delivery {
    /// How many entries, from the first, are settled: what a sender that announces in
    /// order may count as announced.
    pub fn settled_prefix(&self) -> usize {
        self.settled.iter().take_while(|s| **s).count()
    }
}

/// Sends `entries` in one PutEvents call (the first [`MAX_ENTRIES`]; any beyond are left
/// unsettled), best effort: never an error, never past the invocation's budget. An entry
/// that EventBridge would refuse (see [`check_entry`]) is not sent: logged and settled.
/// A whole call that fails (throttled, no answer in time) leaves its entries unsettled if
/// the fault is passing, else settled (logged and dropped: AccessDenied, a refused
/// request). No call is made when the budget has less than [`MIN_SEND_SECONDS`] left
/// before its call deadline: the entries stay unsettled.
pub async fn send<C: Clock>(
    sink: &dyn EventSink,
    entries: &[EventEntry],
    clock: &C,
    budget: &Budget,
) -> Delivery {
    let mut settled = vec![false; entries.len()];
    let mut batch: Vec<EventEntry> = Vec::new();
    let mut positions: Vec<usize> = Vec::new();
    let mut bytes = 0;
    for (position, entry) in entries.iter().enumerate() {
        if let Err(why) = check_entry(entry) {
            tracing::warn!(event = %entry.key, detail_type = %entry.detail_type, why = %why, "event not sent: EventBridge would refuse it");
            settled[position] = true;
            continue;
        }
        if batch.len() == MAX_ENTRIES || bytes + entry.size() > MAX_REQUEST_BYTES {
            // Left for a later send: one call per send.
            continue;
        }
        bytes += entry.size();
        batch.push(entry.clone());
        positions.push(position);
    }
    if batch.is_empty() {
        return Delivery { settled };
    }
    let now = clock.now();
    let by = (now + SEND_SECONDS).min(budget.call_deadline());
    if by - now < MIN_SEND_SECONDS {
        tracing::warn!(
            events = batch.len(),
            "events not sent: no time left in this invocation; sent at the next one, if any"
        );
        return Delivery { settled };
    }
    match sink.put_events(&batch, by).await {
        Ok(results) => {
            for (index, position) in positions.iter().enumerate() {
                let entry = &batch[index];
                match results.get(index) {
                    Some(EntryResult::Accepted { event_id }) => {
                        tracing::info!(event = %entry.key, detail_type = %entry.detail_type, event_id = %event_id, "event sent");
                        settled[*position] = true;
                    }
                    Some(result @ EntryResult::Failed { code, message }) => {
                        let retryable = result.is_retryable();
                        tracing::warn!(event = %entry.key, detail_type = %entry.detail_type, code = %code, message = %message, retryable, "event refused by EventBridge");
                        settled[*position] = !retryable;
                    }
                    None => {
                        // The answer must have one result per entry; without one, whether
                        // it was taken cannot be told: sent again later (its id is stable).
                        tracing::warn!(event = %entry.key, "event without a result in PutEvents' answer");
                    }
                }
            }
        }
        Err(fault) => {
            let passing = fault.is_transient();
            tracing::warn!(events = batch.len(), error = %fault, passing, "PutEvents failed; the events are {}", if passing { "sent again at the next invocation, if any" } else { "dropped" });
            for position in positions {
                settled[position] = !passing;
            }
        }
    }
    Delivery { settled }
}

/// The budget of the work an invocation does before it sends its events: the
/// invocation's (begun at `started`, its Lambda ending at `lambda_deadline`) with every
/// deadline [`SEND_SECONDS`] earlier, so that the send at its end still ends within the
/// invocation's own: its waits inside the 30 unbilled seconds, its answer before the
/// Registry's limit.
pub fn budget_before_send(started: f64, lambda_deadline: Option<f64>) -> Budget {
    Budget::new(
        started - SEND_SECONDS,
        lambda_deadline.map(|deadline| deadline - SEND_SECONDS),
    )
}

/// Why EventBridge would refuse `entry`, if it would.
pub fn check_entry(entry: &EventEntry) -> Result<(), String> {
    // "Amazon EventBridge API Reference, PutEventsRequestEntry": Source and DetailType
    // are required for an event to be taken (moto and EventBridge answer InvalidArgument
    // per entry without them).
    if entry.source.is_empty() {
        return Err("Parameter Source is not valid. Reason: Source is a required argument.".into());
    }
    if entry.detail_type.is_empty() {
        return Err(
            "Parameter DetailType is not valid. Reason: DetailType is a required argument.".into(),
        );
    }
    if entry.source.len() > MAX_SOURCE_BYTES || entry.detail_type.len() > MAX_DETAIL_TYPE_BYTES {
        return Err("Source or DetailType too long".into());
    }
    // "Amazon EventBridge API Reference, PutEventsRequestEntry", Detail: "A valid JSON
    // object. There is no other schema imposed."
    match serde_json::from_str::<serde_json::Value>(&entry.detail) {
        Ok(serde_json::Value::Object(_)) => {}
        _ => return Err("Detail is malformed.".into()),
    }
    // "Amazon EventBridge API Reference, PutEvents": "The maximum size for a PutEvents
    // event entry is 256 KB."
    if entry.size() >= MAX_REQUEST_BYTES {
        return Err(format!(
            "the entry takes {} bytes, more than the {MAX_REQUEST_BYTES} of a PutEvents request",
            entry.size()
        ));
    }
    Ok(())
}

#[cfg(feature = "aws")]
pub use sdk::SdkEvents;

#[cfg(feature = "aws")]
mod sdk {
    use aws_sdk_eventbridge::types::PutEventsRequestEntry;

    use super::{EntryResult, EventEntry, EventSink, SinkFuture};
    use crate::fault::{Fault, FaultKind};

    /// EventBridge through the SDK, with the caller's credentials.
    #[derive(Clone)]
    pub struct SdkEvents {
        pub client: aws_sdk_eventbridge::Client,
    }

    impl SdkEvents {
        /// The sink of `config` (the request's, built by `aws::config_for`).
        pub fn new(config: &aws_config::SdkConfig) -> Self {
            Self {
                client: aws_sdk_eventbridge::Client::new(config),
            }
        }
    }

    impl EventSink for SdkEvents {
        fn put_events<'a>(&'a self, entries: &'a [EventEntry], by: f64) -> SinkFuture<'a> {
            const OPERATION: &str = "events:PutEvents";
            Box::pin(crate::aws::by_deadline(OPERATION, by, async move {
                let mut request = self.client.put_events();
                for entry in entries {
                    request = request.entries(
                        PutEventsRequestEntry::builder()
                            .event_bus_name(&entry.event_bus_name)
                            .source(&entry.source)
                            .detail_type(&entry.detail_type)
                            .detail(&entry.detail)
                            .set_resources(
                                (!entry.resources.is_empty()).then(|| entry.resources.clone()),
                            )
                            .build(),
                    );
                }
                let answer = request
                    .send()
                    .await
                    .map_err(|e| crate::aws::fault(OPERATION, e))?;
                let results = answer.entries();
                if results.len() != entries.len() {
                    // "The response Entries array always includes the same number of
                    // entries as the request array" (Amazon EventBridge User Guide,
                    // Sending events with PutEvents).
                    return Err(Fault::new(
                        OPERATION,
                        FaultKind::Other,
                        format!("{} results for {} entries", results.len(), entries.len()),
                    ));
                }
                Ok(results
                    .iter()
                    .map(|r| match (r.event_id(), r.error_code()) {
                        (_, Some(code)) => EntryResult::Failed {
                            code: code.to_string(),
                            message: r.error_message().unwrap_or_default().to_string(),
                        },
                        (Some(id), None) => EntryResult::Accepted {
                            event_id: id.to_string(),
                        },
                        (None, None) => EntryResult::Failed {
                            code: "InternalFailure".into(),
                            message: "neither an EventId nor an ErrorCode".into(),
                        },
                    })
                    .collect())
            }))
        }
    }
}
