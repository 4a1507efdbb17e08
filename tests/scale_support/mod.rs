//! What the scale tests of both types share (`tests/scale.rs`,
//! `service-restart/tests/scale.rs`): CloudFormation's timing, seeded draws, figures, the
//! theoretical floors of a token bucket, and running scenarios on the machine's cores.

#![allow(dead_code)]

use std::collections::BTreeMap;

use handler_kit::clock::throttle::Counted;

/// The Registry's per-invocation limit.
pub const INVOCATION_LIMIT: f64 = 60.0;
/// How long a twin's call takes (both twins answer in 50 ms).
pub const CALL_LATENCY: f64 = 0.05;

/// CloudFormation's own latency between an answer and its next invocation: it calls back
/// after `callbackDelaySeconds`, and then some. Not documented; **assumed** about a second,
/// uniform between 0.5 and 2 s (the emulator benchmark's callbacks, and CloudFormation's
/// stack events, show a second or two between a handler's answer and its next request).
pub fn cloudformation_latency(rng: &mut Rng) -> f64 {
    rng.uniform(0.5, 2.0)
}

/// Seeded draws (splitmix64), reproducible per scenario.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0xD1B5_4A32_D192_ED03)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [low, high).
    pub fn uniform(&mut self, low: f64, high: f64) -> f64 {
        let unit = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        low + unit * (high - low)
    }
}

/// The `p`-th percentile (0 to 100, nearest rank) of `values`; `None` when empty.
pub fn percentile(values: &[f64], p: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// `name`'s comma-separated list of numbers (set but without numbers: none), or `default`.
pub fn env_list(name: &str, default: &[usize]) -> Vec<usize> {
    match std::env::var(name) {
        Ok(v) => v
            .split(',')
            .filter_map(|x| x.trim().parse().ok())
            .filter(|&k| k > 0)
            .collect(),
        Err(_) => default.to_vec(),
    }
}

pub fn env_number(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// Runs `job` over `inputs` on the machine's cores (each scenario on one thread: its
/// futures never leave it), answers in input order.
pub fn on_cores<I: Sync, O: Send>(inputs: &[I], job: impl Fn(&I) -> O + Sync) -> Vec<O> {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(inputs.len().max(1));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: std::sync::Mutex<Vec<Option<O>>> =
        std::sync::Mutex::new((0..inputs.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..cores {
            scope.spawn(|| loop {
                let index = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let Some(input) = inputs.get(index) else {
                    break;
                };
                let output = job(input);
                if let Ok(mut results) = results.lock() {
                    results[index] = Some(output);
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_default()
        .into_iter()
        .flatten()
        .collect()
}

/// A token bucket as AWS's (burst, refill per second), for the floors: when each of the
/// requests arriving at `arrivals` (sorted) gets its token, served in order of arrival,
/// starting full.
pub fn bucket_service_times(arrivals: &[f64], burst: f64, refill: f64) -> Vec<f64> {
    let mut level = burst;
    let mut last = arrivals.first().copied().unwrap_or_default();
    let mut served = Vec::with_capacity(arrivals.len());
    for &arrival in arrivals {
        let mut at = arrival.max(last);
        level = (level + (at - last) * refill).min(burst);
        if level < 1.0 {
            at += (1.0 - level) / refill;
            level = 1.0;
        }
        level -= 1.0;
        last = at;
        served.push(at);
    }
    served
}

/// The least lag from each event at `events` (any order) to its answer, if each needed
/// one call through each of `stages` (buckets as (burst, refill per second), one after the
/// other, each call taking [`CALL_LATENCY`]), served in order of the events, every bucket
/// full at the first event and used by nothing else: the floor the buckets set. Returns
/// (p50, p99).
pub fn lag_floor(events: &[f64], stages: &[(f64, f64)]) -> (Option<f64>, Option<f64>) {
    let mut start: Vec<f64> = events.to_vec();
    start.sort_by(f64::total_cmp);
    let mut at = start.clone();
    for &(burst, refill) in stages {
        at = bucket_service_times(&at, burst, refill)
            .into_iter()
            .map(|t| t + CALL_LATENCY)
            .collect();
    }
    let lags: Vec<f64> = at.iter().zip(&start).map(|(a, s)| a - s).collect();
    (percentile(&lags, 50.0), percentile(&lags, 99.0))
}

/// "12/3400" figures of buckets: throttled of all attempts, the busy ones only.
pub fn bucket_figures(counts: &[(&'static str, Counted)]) -> String {
    let shown: Vec<String> = counts
        .iter()
        .filter(|(_, c)| c.throttled > 0)
        .map(|(name, c)| {
            if *name == "random" {
                format!("random {}", c.throttled)
            } else {
                format!("{name} {}/{}", c.throttled, c.allowed + c.throttled)
            }
        })
        .collect();
    if shown.is_empty() {
        "none".into()
    } else {
        shown.join(", ")
    }
}

/// "Code xN" of failures, or "0".
pub fn failure_figures(codes: &BTreeMap<String, usize>) -> String {
    let total: usize = codes.values().sum();
    if total == 0 {
        return "0".into();
    }
    let parts: Vec<String> = codes.iter().map(|(c, n)| format!("{c} x{n}")).collect();
    format!("{total} ({})", parts.join(", "))
}

pub fn seconds(value: Option<f64>) -> String {
    value.map_or("-".into(), |v| format!("{v:.1} s"))
}

/// A goal's verdict: "met" or "NOT met".
pub fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "NOT met"
    }
}
