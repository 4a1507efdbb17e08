//! Time, behind a trait: the engine reads the clock and sleeps through it, so that the
//! property tests can run hours of simulated deploys in milliseconds.
//!
//! For the twins: [`VirtualClock`], immediate (one operation at a time) or scheduled (many
//! operations interleaved by [`run_concurrently`], a discrete-event executor), and
//! [`throttle`], AWS's request throttling on that clock.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub mod throttle;

pub trait Clock: Sync {
    /// Seconds since the Unix epoch.
    fn now(&self) -> f64;
    fn sleep(&self, seconds: f64) -> impl Future<Output = ()> + Send;
}

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

pub fn epoch_seconds(time: SystemTime) -> f64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

impl Clock for SystemClock {
    fn now(&self) -> f64 {
        epoch_seconds(SystemTime::now())
    }

    fn sleep(&self, seconds: f64) -> impl Future<Output = ()> + Send {
        tokio::time::sleep(Duration::from_secs_f64(seconds.clamp(0.0, 3600.0)))
    }
}

/// ISO 8601 in UTC with milliseconds dropped when zero, e.g. `2023-11-14T22:13:20Z`.
pub fn iso8601(epoch_seconds: f64) -> String {
    let total_ms = (epoch_seconds * 1000.0).round() as i64;
    let ms = total_ms.rem_euclid(1000);
    let secs = total_ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (h, m, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let fraction = if ms == 0 {
        String::new()
    } else {
        format!(".{ms:03}").trim_end_matches('0').to_string()
    };
    format!("{year:04}-{month:02}-{d:02}T{h:02}:{m:02}:{s:02}{fraction}Z")
}

/// A clock that only moves when told to, or when something sleeps on it.
///
/// Two modes:
/// - **immediate** ([`VirtualClock::starting_at`], the default): a sleep moves the clock at
///   once and is ready at its first poll. One operation at a time, as the property tests
///   play them: hours of simulated deploys in milliseconds.
/// - **scheduled** ([`VirtualClock::scheduled`]): a sleep registers its wake time and stays
///   pending; only [`run_concurrently`] moves the clock, to the earliest wake time once no
///   future can make progress. Many operations interleaved on one clock: a discrete-event
///   simulation, in which the twins' calls take virtual time too.
#[derive(Debug, Default)]
pub struct VirtualClock {
    now: Mutex<f64>,
    /// `Some` in scheduled mode: the sleepers waiting for the clock to reach their time.
    timers: Mutex<Option<Timers>>,
}

#[derive(Debug, Default)]
struct Timers {
    queue: BinaryHeap<Reverse<Timer>>,
    /// Registration order: timers due at the same time fire in the order they were set.
    next: u64,
}

#[derive(Debug)]
struct Timer {
    at: f64,
    seq: u64,
    waker: Waker,
}

impl PartialEq for Timer {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == std::cmp::Ordering::Equal
    }
}

impl Eq for Timer {}

impl PartialOrd for Timer {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Timer {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.at.total_cmp(&other.at).then(self.seq.cmp(&other.seq))
    }
}

impl VirtualClock {
    /// An immediate clock: sleeps move it at once.
    pub fn starting_at(now: f64) -> Self {
        Self {
            now: Mutex::new(now),
            timers: Mutex::new(None),
        }
    }

    /// A scheduled clock: sleeps wait for [`run_concurrently`] to move it.
    pub fn scheduled(now: f64) -> Self {
        Self {
            now: Mutex::new(now),
            timers: Mutex::new(Some(Timers::default())),
        }
    }

    /// Whether sleeps wait for the executor (scheduled mode).
    pub fn is_scheduled(&self) -> bool {
        self.timers.lock().map(|t| t.is_some()).unwrap_or_default()
    }

    pub fn advance(&self, seconds: f64) {
        if let Ok(mut now) = self.now.lock() {
            *now += seconds.max(0.0);
        }
    }

    pub fn set(&self, to: f64) {
        if let Ok(mut now) = self.now.lock() {
            *now = now.max(to);
        }
    }

    /// Sleeps until the clock reads `at` (at once when it already does). Immediate mode:
    /// the clock is set there now, as [`VirtualClock::set`] does.
    pub fn sleep_until(&self, at: f64) -> VirtualSleep<'_> {
        if !self.is_scheduled() {
            self.set(at);
        }
        VirtualSleep {
            clock: self,
            until: at,
            registered: None,
        }
    }

    fn register(&self, at: f64, waker: Waker) -> bool {
        let Ok(mut timers) = self.timers.lock() else {
            return false;
        };
        let Some(timers) = timers.as_mut() else {
            return false;
        };
        let seq = timers.next;
        timers.next += 1;
        timers.queue.push(Reverse(Timer { at, seq, waker }));
        true
    }

    /// Moves the clock to the earliest wake time (if it is not past `horizon`) and wakes
    /// every sleeper due by then. `false` when nobody sleeps, or only past `horizon`.
    fn fire_next(&self, horizon: f64) -> bool {
        let due: Vec<Waker> = {
            let Ok(mut guard) = self.timers.lock() else {
                return false;
            };
            let Some(timers) = guard.as_mut() else {
                return false;
            };
            let Some(Reverse(first)) = timers.queue.peek() else {
                return false;
            };
            if first.at > horizon {
                return false;
            }
            let at = first.at;
            self.set(at);
            let mut due = Vec::new();
            while timers.queue.peek().is_some_and(|Reverse(t)| t.at <= at) {
                if let Some(Reverse(timer)) = timers.queue.pop() {
                    due.push(timer.waker);
                }
            }
            due
        };
        for waker in due {
            waker.wake();
        }
        true
    }
}

impl Clock for VirtualClock {
    fn now(&self) -> f64 {
        self.now.lock().map(|n| *n).unwrap_or_default()
    }

    fn sleep(&self, seconds: f64) -> impl Future<Output = ()> + Send {
        let until = if self.is_scheduled() {
            self.now() + seconds.max(0.0)
        } else {
            // Immediate: the clock moves now, and the sleep is over.
            self.advance(seconds);
            self.now()
        };
        VirtualSleep {
            clock: self,
            until,
            registered: None,
        }
    }
}

/// A sleep on a [`VirtualClock`]: ready once the clock reads `until`. In scheduled mode a
/// pending poll registers the wake time with the clock (once per waker).
#[derive(Debug)]
pub struct VirtualSleep<'a> {
    clock: &'a VirtualClock,
    until: f64,
    registered: Option<Waker>,
}

impl Future for VirtualSleep<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.clock.now() >= self.until {
            return Poll::Ready(());
        }
        if self
            .registered
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()))
        {
            return Poll::Pending;
        }
        let (clock, until) = (self.clock, self.until);
        if clock.register(until, cx.waker().clone()) {
            self.registered = Some(cx.waker().clone());
            Poll::Pending
        } else {
            // Immediate mode: nobody would move the clock; move it.
            clock.set(until);
            Poll::Ready(())
        }
    }
}

/// Wakes one future of [`run_concurrently`]: queues it to be polled (once).
struct Wakeup {
    id: usize,
    ready: Arc<Mutex<VecDeque<usize>>>,
    queued: AtomicBool,
}

impl Wake for Wakeup {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.queued.swap(true, Ordering::SeqCst) {
            if let Ok(mut ready) = self.ready.lock() {
                ready.push_back(self.id);
            }
        }
    }
}

/// Runs `futures` together over one scheduled `clock`, as a discrete-event simulation, on
/// this thread: every future that was woken is polled (in the order it was woken), and
/// when none can make progress the clock moves to the earliest wake time registered by a
/// sleep (see [`VirtualSleep`]), which wakes the futures due then. Nothing runs in real
/// time: a future's virtual time passes only in its sleeps (the twins' calls sleep their
/// latency), so K operations interleave exactly as their sleeps and calls order them.
///
/// Returns each future's output in order; `None` for one still pending when nothing was
/// left to wake it (it waits on something other than the clock, e.g. a simulated crash)
/// or when the next wake time is past `horizon` (epoch seconds).
pub fn run_concurrently<F: Future>(
    clock: &VirtualClock,
    futures: Vec<F>,
    horizon: f64,
) -> Vec<Option<F::Output>> {
    let count = futures.len();
    let ready = Arc::new(Mutex::new((0..count).collect::<VecDeque<usize>>()));
    let wakeups: Vec<Arc<Wakeup>> = (0..count)
        .map(|id| {
            Arc::new(Wakeup {
                id,
                ready: ready.clone(),
                queued: AtomicBool::new(true),
            })
        })
        .collect();
    let wakers: Vec<Waker> = wakeups.iter().map(|w| Waker::from(w.clone())).collect();
    let mut slots: Vec<Option<Pin<Box<F>>>> =
        futures.into_iter().map(|f| Some(Box::pin(f))).collect();
    let mut outputs: Vec<Option<F::Output>> = (0..count).map(|_| None).collect();
    let mut live = count;
    loop {
        let next = ready.lock().ok().and_then(|mut r| r.pop_front());
        match next {
            Some(id) => {
                wakeups[id].queued.store(false, Ordering::SeqCst);
                let Some(future) = slots[id].as_mut() else {
                    continue;
                };
                let mut cx = Context::from_waker(&wakers[id]);
                if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
                    outputs[id] = Some(output);
                    slots[id] = None;
                    live -= 1;
                }
            }
            None if live == 0 => break,
            None => {
                if !clock.fire_next(horizon) {
                    break;
                }
            }
        }
    }
    outputs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_immediate_clock_moves_at_once() {
        let clock = VirtualClock::starting_at(100.0);
        assert!(!clock.is_scheduled());
        let sleep = clock.sleep(5.0);
        assert_eq!(clock.now(), 105.0, "moved when the sleep was made");
        let mut sleep = std::pin::pin!(sleep);
        let mut cx = Context::from_waker(Waker::noop());
        assert_eq!(sleep.as_mut().poll(&mut cx), Poll::Ready(()));
        let until = clock.sleep_until(110.0);
        assert_eq!(clock.now(), 110.0);
        drop(until);
    }

    #[test]
    fn scheduled_futures_interleave_on_one_clock() {
        let clock = VirtualClock::scheduled(0.0);
        let log = Mutex::new(Vec::new());
        let work = |name: &'static str, steps: Vec<f64>| {
            let (clock, log) = (&clock, &log);
            async move {
                for step in steps {
                    clock.sleep(step).await;
                    log.lock().unwrap().push((clock.now(), name));
                }
                clock.now()
            }
        };
        let ends = run_concurrently(
            &clock,
            vec![
                work("a", vec![1.0, 1.0, 1.0]),
                work("b", vec![0.5, 2.0]),
                work("c", vec![0.0, 10.0]),
            ],
            f64::INFINITY,
        );
        assert_eq!(ends, vec![Some(3.0), Some(2.5), Some(10.0)]);
        assert_eq!(
            log.into_inner().unwrap(),
            vec![
                (0.0, "c"),
                (0.5, "b"),
                (1.0, "a"),
                (2.0, "a"),
                (2.5, "b"),
                (3.0, "a"),
                (10.0, "c")
            ]
        );
        assert_eq!(clock.now(), 10.0);
    }

    #[test]
    fn futures_past_the_horizon_or_never_woken_are_left_pending() {
        let clock = VirtualClock::scheduled(0.0);
        let futures: Vec<std::pin::Pin<Box<dyn Future<Output = u8> + '_>>> = vec![
            Box::pin(async {
                clock.sleep(100.0).await;
                1
            }),
            Box::pin(async {
                std::future::pending::<()>().await;
                2
            }),
            Box::pin(async {
                clock.sleep(1.0).await;
                3
            }),
        ];
        let ends = run_concurrently(&clock, futures, 50.0);
        assert_eq!(ends, vec![None, None, Some(3)]);
        assert_eq!(clock.now(), 1.0);
    }
}
