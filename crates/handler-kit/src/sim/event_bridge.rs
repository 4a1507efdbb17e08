//! The in-memory twin of Amazon EventBridge's PutEvents, for a type's simulation: as
//! strict as AWS about what it accepts (`events::check_entry` and the request limits),
//! with faults to inject. Part of `sim`, apart from `events`, so that the port knows
//! nothing of the simulation.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::{FaultPlan, Twin, TwinState};
use crate::clock::VirtualClock;
use crate::events::*;
use crate::fault::Fault;

/// An event EventBridge took, as the twin keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct PutEvent {
    pub event_id: String,
    pub bus: String,
    pub entry: EventEntry,
    /// When it was taken (the twin's clock).
    pub at: f64,
}

/// The state of [`SimEvents`]: the buses, the events taken, and what to inject.
#[derive(Debug, Default)]
pub struct EventBridgeState {
    /// Buses other than `default` (which every account has).
    pub buses: BTreeSet<String>,
    /// Events taken onto an existing bus, in order.
    pub events: Vec<PutEvent>,
    /// Events taken for a bus that does not exist: EventBridge answers them with an
    /// EventId and delivers them nowhere (aws/aws-cli issue 9186, "Putting an event on an
    /// nonexistent EventBridge event bus returns a success"; moto 5.2.5 refuses the whole
    /// call with ResourceNotFoundException instead).
    pub lost: Vec<PutEvent>,
    /// Entries to fail, by entry number across calls (from 0): the ErrorCode to answer.
    pub entry_faults: BTreeMap<u64, String>,
    /// Entries seen so far (valid calls only).
    pub entries_seen: u64,
    pub plan: FaultPlan,
}

impl TwinState for EventBridgeState {
    fn plan(&mut self) -> &mut FaultPlan {
        &mut self.plan
    }
}

impl EventBridgeState {
    fn bus_exists(&self, name: &str) -> bool {
        // A bus may be named by its ARN, `arn:aws:events:<region>:<account>:event-bus/<name>`.
        let name = name.rsplit_once(":event-bus/").map_or(name, |(_, n)| n);
        name == DEFAULT_BUS || self.buses.contains(name)
    }

    /// PutEvents as EventBridge answers it.
    fn put(&mut self, entries: &[EventEntry], now: f64) -> Result<Vec<EntryResult>, Fault> {
        let refuse = |message: String| {
            Err(Fault::from_service(
                "events:PutEvents",
                Some("ValidationException"),
                Some(&message),
                Some(400),
            ))
        };
        // "Amazon EventBridge API Reference, PutEvents": Entries, "Minimum number of 1
        // item. Maximum number of 10 items."
        if entries.is_empty() || entries.len() > MAX_ENTRIES {
            return refuse(format!(
                "1 validation error detected: Value '[PutEventsRequestEntry]' at 'entries' failed to satisfy constraint: Member must have length between 1 and {MAX_ENTRIES} (it has {})",
                entries.len()
            ));
        }
        // "Amazon EventBridge User Guide, Calculating PutEvents event entry size": "The
        // total entry size must be less than 256KB".
        let total: usize = entries.iter().map(EventEntry::size).sum();
        if total >= MAX_REQUEST_BYTES {
            return refuse(format!(
                "Total size of the entries in the request is over the limit ({total} bytes)"
            ));
        }
        let mut results = Vec::with_capacity(entries.len());
        for entry in entries {
            let number = self.entries_seen;
            self.entries_seen += 1;
            if let Some(code) = self.entry_faults.remove(&number) {
                results.push(EntryResult::Failed {
                    message: format!("{code} (injected)"),
                    code,
                });
                continue;
            }
            if let Err(message) = check_entry(entry) {
                // "Amazon EventBridge API Reference, PutEventsResultEntry": MalformedDetail,
                // "The JSON provided is not valid"; InvalidArgument, "A specified parameter
                // is not valid".
                let code = if message.starts_with("Detail") {
                    "MalformedDetail"
                } else {
                    "InvalidArgument"
                };
                results.push(EntryResult::Failed {
                    code: code.into(),
                    message,
                });
                continue;
            }
            let event_id = format!("sim-event-{number:08}");
            let event = PutEvent {
                event_id: event_id.clone(),
                bus: entry.event_bus_name.clone(),
                entry: entry.clone(),
                at: now,
            };
            if self.bus_exists(&entry.event_bus_name) {
                self.events.push(event);
            } else {
                self.lost.push(event);
            }
            results.push(EntryResult::Accepted { event_id });
        }
        Ok(results)
    }
}

/// EventBridge in memory, on a virtual clock: the whole call's faults are planned as any
/// twin's ([`FaultPlan`]: throttled, slow, failing before or after acting), an entry's by
/// [`SimEvents::fail_entry`].
#[derive(Clone)]
pub struct SimEvents(pub Twin<EventBridgeState>);

impl std::ops::Deref for SimEvents {
    type Target = Twin<EventBridgeState>;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl SimEvents {
    /// An EventBridge with only the default bus, on `clock`.
    pub fn on(clock: Arc<VirtualClock>) -> Self {
        Self(Twin::new(clock))
    }

    /// Creates the bus `name`.
    pub fn create_bus(&self, name: &str) {
        self.lock().buses.insert(name.to_string());
    }

    /// The `entry`-th entry sent from now on (from 0) fails with `code` (e.g.
    /// "ThrottlingException", "AccessDeniedException").
    pub fn fail_entry(&self, entry: u64, code: &str) {
        let mut state = self.lock();
        let number = state.entries_seen + entry;
        state.entry_faults.insert(number, code.to_string());
    }

    /// The events taken onto existing buses, in order.
    pub fn events(&self) -> Vec<PutEvent> {
        self.lock().events.clone()
    }
}

impl EventSink for SimEvents {
    fn put_events<'a>(&'a self, entries: &'a [EventEntry], by: f64) -> SinkFuture<'a> {
        Box::pin(self.0.call("events:PutEvents", &[], by, move |state, now| {
            state.put(entries, now)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::budget::Budget;
    use crate::clock::Clock;
    use crate::fault::FaultKind;
    use crate::store::Injected;
    use std::future::Future;

    const START: f64 = 1_700_000_000.0;

    fn entry(n: usize) -> EventEntry {
        EventEntry {
            event_bus_name: DEFAULT_BUS.into(),
            source: "org.test".into(),
            detail_type: "Test".into(),
            detail: format!(r#"{{"n":{n}}}"#),
            resources: vec![],
            key: format!("e{n}"),
        }
    }

    fn twin() -> (SimEvents, Arc<VirtualClock>, Budget) {
        let clock = Arc::new(VirtualClock::starting_at(START));
        let budget = Budget::new(clock.now(), None);
        (SimEvents::on(clock.clone()), clock, budget)
    }

    fn block_on<F: Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .map(|rt| rt.block_on(future))
            .unwrap_or_else(|e| panic!("runtime: {e}"))
    }

    #[test]
    fn the_work_before_a_send_leaves_it_its_time() {
        for deadline in [None, Some(START + 20.0)] {
            let whole = Budget::new(START, deadline);
            let before = budget_before_send(START, deadline);
            assert_eq!(before.answer_by, whole.answer_by - SEND_SECONDS);
            assert_eq!(before.call_deadline(), whole.call_deadline() - SEND_SECONDS);
        }
        let before = budget_before_send(START, None);
        assert!(before.may_wait(START, 26.0));
        assert!(
            !before.may_wait(START, 26.5),
            "waits end {SEND_SECONDS} s earlier"
        );
    }

    #[test]
    fn the_twin_refuses_what_eventbridge_refuses() {
        let (sim, clock, _) = twin();
        block_on(async {
            let eleven: Vec<EventEntry> = (0..11).map(entry).collect();
            let refused = sim.put_events(&eleven, clock.now() + 5.0).await;
            assert!(
                matches!(refused, Err(ref f) if f.kind == FaultKind::BadRequest),
                "{refused:?}"
            );
            assert!(sim.put_events(&[], clock.now() + 5.0).await.is_err());
            let mut big = entry(0);
            big.detail = format!(r#"{{"x":"{}"}}"#, "x".repeat(MAX_REQUEST_BYTES));
            assert!(sim.put_events(&[big], clock.now() + 5.0).await.is_err());
            let mut array = entry(1);
            array.detail = "[1]".into();
            let mut sourceless = entry(2);
            sourceless.source.clear();
            let results = sim
                .put_events(&[array, sourceless, entry(3)], clock.now() + 5.0)
                .await
                .unwrap_or_default();
            assert!(
                matches!(&results[0], EntryResult::Failed { code, .. } if code == "MalformedDetail")
            );
            assert!(
                matches!(&results[1], EntryResult::Failed { code, .. } if code == "InvalidArgument")
            );
            assert!(matches!(&results[2], EntryResult::Accepted { .. }));
        });
        assert_eq!(sim.events().len(), 1);
    }

    #[test]
    fn a_missing_bus_takes_the_event_and_delivers_it_nowhere() {
        let (sim, clock, _) = twin();
        let mut lost = entry(0);
        lost.event_bus_name = "nope".into();
        let mut kept = entry(1);
        kept.event_bus_name = "arn:aws:events:us-east-1:123456789012:event-bus/ours".into();
        sim.create_bus("ours");
        let results =
            block_on(sim.put_events(&[lost, kept], clock.now() + 5.0)).unwrap_or_default();
        assert!(results
            .iter()
            .all(|r| matches!(r, EntryResult::Accepted { .. })));
        assert_eq!(sim.events().len(), 1);
        assert_eq!(sim.lock().lost.len(), 1);
    }

    #[test]
    fn send_settles_what_was_taken_or_refused_for_good_and_keeps_what_may_pass() {
        let (sim, clock, budget) = twin();
        sim.fail_entry(1, "ThrottlingException");
        sim.fail_entry(2, "AccessDeniedException");
        let entries: Vec<EventEntry> = (0..4).map(entry).collect();
        let delivery = block_on(send(&sim, &entries, &*clock, &budget));
        assert_eq!(delivery.settled, vec![true, false, true, true]);
        assert_eq!(delivery.settled_prefix(), 1);
        assert_eq!(sim.events().len(), 2);
    }

    #[test]
    fn send_makes_one_call_of_ten_at_most_and_sends_no_invalid_entry() {
        let (sim, clock, budget) = twin();
        let mut entries: Vec<EventEntry> = (0..12).map(entry).collect();
        entries[0].detail = "not json".into();
        let delivery = block_on(send(&sim, &entries, &*clock, &budget));
        assert_eq!(sim.lock().plan.calls, 1);
        assert_eq!(sim.events().len(), 10);
        assert_eq!(
            delivery.settled_prefix(),
            11,
            "the invalid one is dropped, ten sent"
        );
        assert!(!delivery.settled[11]);
    }

    #[test]
    fn a_throttled_or_slow_call_never_fails_and_never_overruns() {
        let (sim, clock, budget) = twin();
        sim.lock()
            .plan
            .faults
            .insert(0, Injected::Before(FaultKind::Throttled));
        sim.lock().plan.faults.insert(1, Injected::Slow(30.0));
        sim.lock()
            .plan
            .faults
            .insert(2, Injected::Before(FaultKind::AccessDenied));
        let entries = [entry(0)];
        let throttled = block_on(send(&sim, &entries, &*clock, &budget));
        assert_eq!(throttled.settled, vec![false], "sent again later");
        let before = clock.now();
        let slow = block_on(send(&sim, &entries, &*clock, &budget));
        assert_eq!(
            slow.settled,
            vec![false],
            "no answer in time: sent again later"
        );
        assert!(
            clock.now() - before <= SEND_SECONDS + 1e-9,
            "{}",
            clock.now() - before
        );
        let denied = block_on(send(&sim, &entries, &*clock, &budget));
        assert_eq!(denied.settled, vec![true], "refused for good: dropped");
        let late = Budget::new(START - 60.0, None);
        let skipped = block_on(send(&sim, &entries, &*clock, &late));
        assert_eq!(skipped.settled, vec![false]);
        assert_eq!(sim.lock().plan.calls, 3, "no call without the time for it");
    }
}
