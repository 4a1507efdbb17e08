//! A named lock shared by every handler of an account and Region, over create-only
//! parameters: no table to create, no new service, nothing but the parameter store the
//! records already live in.
//!
//! The lock is a log of generations, each a parameter `<path>/<generation>` created once
//! and never changed: the latest says who holds the lock (or that nobody does). Taking or
//! freeing the lock is creating the generation after the latest one read. SSM's
//! `PutParameter` with `Overwrite` false fails with `ParameterAlreadyExists` when the name
//! exists ("You can't create duplicate parameters": AWS Systems Manager API Reference,
//! PutParameter, Errors), so of any racers that read the same latest generation exactly
//! one creates the next: a compare-and-swap on the generation number.
//!
//! Why it is safe:
//! - **Two handlers racing.** Both read generation `n` free and both try to create `n + 1`:
//!   one succeeds, the other is told the name exists and reads again. A racer whose read
//!   was stale (a generation it did not see yet) tries to create one that exists, and
//!   fails the same way: a stale read can make a racer wait longer, never take a held lock.
//! - **A handler killed while holding.** Its generation names its lease: the holder's own
//!   deadline (its Timeout), plus the time it may take to stop its tasks, plus a margin.
//!   Until then nobody takes the lock from it (its operation may yet come back and finish
//!   its run); after it, the next racer breaks it by creating the next generation, with the
//!   same compare-and-swap. A holder that comes back after its lease finds another
//!   generation on top of its own and, its run long timed out, only frees what is its own.
//! - **Clock skew.** The lease is written in the holder's clock and read in the racer's;
//!   a lease is broken only [`SKEW_SECONDS`] after it ended. Lambda's clocks are kept by
//!   the Amazon Time Sync Service (skew in milliseconds), far inside that margin.
//! - **Old generations.** Deleted only when at least two newer ones exist and they were
//!   written [`KEEP_SECONDS`] ago: a racer acts within one invocation (at most 60 s) of
//!   its read, so none can still hold a read old enough to recreate a deleted one.

use serde::{Deserialize, Serialize};

use crate::fault::Fault;
use crate::store::ParameterStore;

/// A lease is broken only this long after it ended, in the breaker's clock.
pub const SKEW_SECONDS: f64 = 60.0;
/// Generations older than this (with two newer) are deleted.
pub const KEEP_SECONDS: f64 = 600.0;
/// GetParametersByPath's largest page (AWS Systems Manager API Reference,
/// GetParametersByPath, `MaxResults`: "Valid Range: Minimum value of 1. Maximum value of 10").
const PAGE_SIZE: u32 = 10;
/// Pages read at most to find the latest generation (old ones are deleted as they age,
/// so a lock keeps only a few).
const MAX_PAGES: u32 = 20;
/// Digits of a generation's name, so that names sort as numbers.
const DIGITS: usize = 12;
/// Generations deleted at most on each release.
const DELETES_PER_RELEASE: usize = 5;

/// Who holds (or wants) a lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Holder {
    /// What makes two holders the same: a resource and the operation that runs it.
    pub key: String,
    /// The resource's primary identifier.
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logical_id: Option<String>,
}

impl Holder {
    /// The holder in a sentence ("TaskRun <id> (Migrate in stack <stack>)").
    pub fn describe(&self, kind: &str) -> String {
        match (&self.logical_id, &self.stack) {
            (Some(logical), Some(stack)) => {
                format!("{kind} {} ({logical} in stack {stack})", self.id)
            }
            (Some(logical), None) => format!("{kind} {} ({logical})", self.id),
            _ => format!("{kind} {}", self.id),
        }
    }
}

/// One generation of a lock, as its parameter holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Generation {
    generation: u64,
    /// When it was written (the writer's clock).
    at: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    held: Option<Held>,
    /// The key of the holder that freed the lock (a free generation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    freed_by: Option<String>,
}

/// A generation that holds the lock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Held {
    pub holder: Holder,
    /// When its holder took the lock.
    pub since: f64,
    /// Until when nobody may take the lock from it (its holder's clock).
    pub lease_until: f64,
}

/// What an attempt to take the lock found.
#[derive(Debug, Clone, PartialEq)]
pub enum Taken {
    /// The caller holds the lock: this generation says so. `broke` is the holder whose
    /// lease had ended, if the lock was taken from one.
    Holds {
        generation: u64,
        broke: Option<Held>,
    },
    /// Someone else holds it.
    Busy(Held),
    /// This holder took the lock and freed it already: what asks again is a stale copy of
    /// a run that is over (an invocation delivered twice), which must not take it again.
    FreedAlready,
    /// Another racer created the generation this one tried to: look again soon.
    Contended,
}

/// A lock by name, under a path of the store.
pub struct Lock<'a, S> {
    store: &'a S,
    path: String,
}

impl<'a, S: ParameterStore> Lock<'a, S> {
    /// The lock `name` under `root` (its generations are `<root>/<name>/<generation>`).
    pub fn new(store: &'a S, root: &str, name: &str) -> Self {
        Self {
            store,
            path: format!("{}/{name}", root.trim_end_matches('/')),
        }
    }

    fn name_of(&self, generation: u64) -> String {
        format!("{}/{generation:0DIGITS$}", self.path)
    }

    /// Every generation the store shows, oldest first (values that are not generations,
    /// which nobody but this module writes, are left out).
    async fn generations(&self, by: f64) -> Result<Vec<Generation>, Fault> {
        let mut found = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let (values, next) = self
                .store
                .list(&self.path, token.as_deref(), PAGE_SIZE, by)
                .await?;
            found.extend(
                values
                    .iter()
                    .filter_map(|v| serde_json::from_str::<Generation>(v).ok()),
            );
            match next {
                Some(next) => token = Some(next),
                None => break,
            }
        }
        found.sort_by_key(|g| g.generation);
        Ok(found)
    }

    /// Takes the lock for `holder` until `lease_until` (in `now`'s clock), unless someone
    /// else holds it. Taking a lock the same holder already holds answers that generation
    /// (a redelivered invocation, or an answer lost after the write); one held by the same
    /// resource (`Holder::id`) under another key is taken over: callers run one run of a
    /// resource at a time.
    pub async fn take(
        &self,
        holder: &Holder,
        lease_until: f64,
        now: f64,
        by: f64,
    ) -> Result<Taken, Fault> {
        let generations = self.generations(by).await?;
        if generations
            .iter()
            .any(|g| g.freed_by.as_deref() == Some(holder.key.as_str()))
        {
            return Ok(Taken::FreedAlready);
        }
        let latest = generations.last();
        let mut broke = None;
        if let Some(Generation {
            generation,
            held: Some(held),
            ..
        }) = latest
        {
            if held.holder.key == holder.key {
                return Ok(Taken::Holds {
                    generation: *generation,
                    broke: None,
                });
            }
            // The same resource under another operation: its earlier run, which ended
            // (a resource runs one run at a time: a new one is planned only once the
            // one before it ended) without freeing the lock.
            let own_earlier_run = held.holder.id == holder.id;
            if !own_earlier_run && now <= held.lease_until + SKEW_SECONDS {
                return Ok(Taken::Busy(held.clone()));
            }
            if !own_earlier_run {
                broke = Some(held.clone());
            }
        }
        let next = latest.map_or(1, |g| g.generation + 1);
        let written = Generation {
            generation: next,
            at: now,
            held: Some(Held {
                holder: holder.clone(),
                since: now,
                lease_until,
            }),
            freed_by: None,
        };
        if self.create(&written, by).await? {
            Ok(Taken::Holds {
                generation: next,
                broke,
            })
        } else {
            Ok(Taken::Contended)
        }
    }

    /// Frees the lock if `holder` holds it; `false` when it did not (it was freed, or
    /// taken from it after its lease). Also deletes generations too old to matter (best
    /// effort).
    pub async fn release(&self, holder: &Holder, now: f64, by: f64) -> Result<bool, Fault> {
        let generations = self.generations(by).await?;
        let Some(latest) = generations.last() else {
            return Ok(false);
        };
        let ours = latest
            .held
            .as_ref()
            .is_some_and(|h| h.holder.key == holder.key);
        let mut released = false;
        if ours {
            let free = Generation {
                generation: latest.generation + 1,
                at: now,
                held: None,
                freed_by: Some(holder.key.clone()),
            };
            // Not created: someone took the lock from this holder after its lease, and
            // what is on top is theirs.
            released = self.create(&free, by).await?;
        }
        self.forget_old(&generations, now, by).await;
        Ok(released)
    }

    async fn create(&self, generation: &Generation, by: f64) -> Result<bool, Fault> {
        let value = serde_json::to_string(generation).map_err(|e| {
            Fault::new(
                "ssm:PutParameter",
                crate::fault::FaultKind::Other,
                e.to_string(),
            )
        })?;
        self.store
            .create(&self.name_of(generation.generation), &value, by)
            .await
    }

    /// Deletes generations with two newer ones, written [`KEEP_SECONDS`] ago.
    async fn forget_old(&self, generations: &[Generation], now: f64, by: f64) {
        let keep_from = generations.len().saturating_sub(2);
        let old = generations[..keep_from]
            .iter()
            .filter(|g| now - g.at > KEEP_SECONDS)
            .take(DELETES_PER_RELEASE);
        for generation in old {
            if let Err(fault) = self
                .store
                .delete(&self.name_of(generation.generation), by)
                .await
            {
                tracing::debug!(lock = %self.path, error = %fault, "could not delete an old generation of the lock");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    fn holder(key: &str) -> Holder {
        Holder {
            key: key.into(),
            id: key.into(),
            stack: None,
            logical_id: None,
        }
    }

    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime")
            .block_on(future)
    }

    #[test]
    fn one_holder_at_a_time_and_freed_by_its_holder_only() {
        block_on(async {
            let store = MemoryStore::new();
            let lock = Lock::new(&store, "/t/locks", "db");
            let (a, b) = (holder("a"), holder("b"));
            let by = f64::MAX;
            assert!(matches!(
                lock.take(&a, 1000.0, 0.0, by).await,
                Ok(Taken::Holds {
                    generation: 1,
                    broke: None
                })
            ));
            // The same holder again: the same generation.
            assert!(matches!(
                lock.take(&a, 1000.0, 1.0, by).await,
                Ok(Taken::Holds { generation: 1, .. })
            ));
            assert!(
                matches!(lock.take(&b, 1000.0, 2.0, by).await, Ok(Taken::Busy(h)) if h.holder.key == "a")
            );
            assert_eq!(lock.release(&b, 3.0, by).await, Ok(false));
            assert_eq!(lock.release(&a, 4.0, by).await, Ok(true));
            assert_eq!(lock.release(&a, 5.0, by).await, Ok(false));
            // A stale copy of a's run, that already freed it, does not take it again.
            assert_eq!(
                lock.take(&a, 1000.0, 5.5, by).await,
                Ok(Taken::FreedAlready)
            );
            assert!(matches!(
                lock.take(&b, 1000.0, 6.0, by).await,
                Ok(Taken::Holds { generation: 3, .. })
            ));
        });
    }

    #[test]
    fn a_lease_is_broken_only_after_it_ended_and_the_skew_margin() {
        block_on(async {
            let store = MemoryStore::new();
            let lock = Lock::new(&store, "/t/locks", "db");
            let (a, b) = (holder("a"), holder("b"));
            let by = f64::MAX;
            lock.take(&a, 100.0, 0.0, by).await.expect("taken");
            assert!(matches!(
                lock.take(&b, 500.0, 100.0 + SKEW_SECONDS, by).await,
                Ok(Taken::Busy(_))
            ));
            assert!(matches!(
                lock.take(&b, 500.0, 101.0 + SKEW_SECONDS, by).await,
                Ok(Taken::Holds { generation: 2, broke: Some(h) }) if h.holder.key == "a"
            ));
            // The dead holder, back: frees nothing of b's.
            assert_eq!(lock.release(&a, 200.0, by).await, Ok(false));
            assert!(
                matches!(lock.take(&a, 900.0, 201.0, by).await, Ok(Taken::Busy(h)) if h.holder.key == "b")
            );
        });
    }

    #[test]
    fn the_same_resource_takes_over_from_its_earlier_run() {
        block_on(async {
            let store = MemoryStore::new();
            let lock = Lock::new(&store, "/t/locks", "db");
            let by = f64::MAX;
            let mut earlier = holder("r1#op1");
            earlier.id = "r1".into();
            let mut later = holder("r1#op2");
            later.id = "r1".into();
            lock.take(&earlier, 1000.0, 0.0, by).await.expect("taken");
            assert!(matches!(
                lock.take(&later, 1000.0, 1.0, by).await,
                Ok(Taken::Holds {
                    generation: 2,
                    broke: None
                })
            ));
            assert!(
                matches!(lock.take(&holder("r2"), 1000.0, 2.0, by).await, Ok(Taken::Busy(h)) if h.holder.key == "r1#op2")
            );
        });
    }

    #[test]
    fn racers_that_read_the_same_generation_make_one_holder() {
        block_on(async {
            let store = MemoryStore::new();
            let lock = Lock::new(&store, "/t/locks", "db");
            let by = f64::MAX;
            // Both read "free" (nothing); the second's create finds the name taken.
            let first = Generation {
                generation: 1,
                at: 0.0,
                held: Some(Held {
                    holder: holder("a"),
                    since: 0.0,
                    lease_until: 100.0,
                }),
                freed_by: None,
            };
            let mut second = first.clone();
            second.held = Some(Held {
                holder: holder("b"),
                since: 0.0,
                lease_until: 100.0,
            });
            assert_eq!(lock.create(&first, by).await, Ok(true));
            assert_eq!(lock.create(&second, by).await, Ok(false));
            assert!(
                matches!(lock.take(&holder("b"), 100.0, 1.0, by).await, Ok(Taken::Busy(h)) if h.holder.key == "a")
            );
        });
    }

    #[test]
    fn old_generations_are_forgotten_but_the_latest_two_kept() {
        block_on(async {
            let store = MemoryStore::new();
            let lock = Lock::new(&store, "/t/locks", "db");
            let by = f64::MAX;
            for i in 0..6 {
                let h = holder(&format!("h{i}"));
                let t = f64::from(i) * 10.0;
                lock.take(&h, t + 5.0, t, by).await.expect("taken");
                lock.release(&h, t + 1.0, by).await.expect("released");
            }
            assert_eq!(store.snapshot().len(), 12);
            let h = holder("late");
            lock.take(&h, 2000.0, 1000.0, by).await.expect("taken");
            lock.release(&h, 1001.0, by).await.expect("released");
            let left: Vec<String> = store.snapshot().into_keys().collect();
            assert!(left.len() < 14 && left.len() >= 2, "{left:?}");
            assert!(left.iter().any(|n| n.ends_with("000000000014")));
            assert!(left.iter().any(|n| n.ends_with("000000000013")));
        });
    }
}
