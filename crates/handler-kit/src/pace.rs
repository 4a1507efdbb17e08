//! How often to call AWS: the pauses of a lifecycle, jittered without a random source
//! (the machines stay pure functions: a run replayed with the same inputs waits the
//! same), and backed off when AWS throttles. AWS's buckets are the account's and Region's,
//! shared by every caller (ECS API Reference, "Request throttling"), so runs that back
//! off leave the tokens to the calls that pay.

/// Backoff after throttled calls: full jitter over 2 s × 2^n, at most a minute (AWS
/// Architecture Blog, "Exponential Backoff And Jitter").
pub const THROTTLE_BACKOFF_SECONDS: f64 = 2.0;
pub const THROTTLE_BACKOFF_CAP_SECONDS: f64 = 60.0;

/// A number in [0, 1) from `key` (a run's token, say) and the time: runs started in the
/// same second, whose keys differ, spread their calls.
pub fn jitter(key: &str, now: f64, salt: u8) -> f64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in key.bytes().chain(now.to_bits().to_le_bytes()).chain([salt]) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // splitmix64's finaliser: every bit of the hash in the top 53.
    hash ^= hash >> 30;
    hash = hash.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    hash ^= hash >> 27;
    hash = hash.wrapping_mul(0x94d0_49bb_1331_11eb);
    hash ^= hash >> 31;
    (hash >> 11) as f64 / (1u64 << 53) as f64
}

/// `base` jittered by ±25 %, at least 1 s.
pub fn spread(base: f64, jitter: f64) -> f64 {
    (base * (0.75 + 0.5 * jitter)).max(1.0)
}

/// The pause after `throttled` throttled calls in a row: full jitter, at least 1 s.
pub fn backoff(throttled: u8, jitter: f64) -> f64 {
    let exponent = i32::from(throttled.min(16));
    let ceiling =
        (THROTTLE_BACKOFF_SECONDS * 2f64.powi(exponent)).min(THROTTLE_BACKOFF_CAP_SECONDS);
    (ceiling * jitter).max(1.0)
}

/// The callback delay after a passing fault in a first step or a callback: a backoff
/// when it was throttling (`throttled` counts them in a row, carried in the callback
/// context), else 2 s jittered. Whole seconds, as `callbackDelaySeconds` is.
pub fn retry_delay(throttled: &mut u8, was_throttled: bool, key: &str, now: f64) -> u32 {
    let delay = if was_throttled {
        *throttled = throttled.saturating_add(1);
        backoff(*throttled, jitter(key, now, *throttled))
    } else {
        *throttled = 0;
        spread(2.0, jitter(key, now, 0))
    };
    callback_seconds(delay)
}

/// `delay` as `callbackDelaySeconds`, which holds whole seconds: the nearest, at least 1 s
/// and at most 10 minutes. Nearest, not up: a look due every second, jittered to 1.0–1.25
/// s, would otherwise be made every 2 s half the time (a second of lag for nothing).
pub fn callback_seconds(delay: f64) -> u32 {
    if delay.is_nan() {
        return 1;
    }
    delay.round().clamp(1.0, 600.0) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_spreads_and_backoff_grows_within_its_cap() {
        let values: Vec<f64> = (0..1000)
            .map(|i| jitter(&format!("token-{i}"), 1_700_000_000.0, 0))
            .collect();
        assert!(values.iter().all(|v| (0.0..1.0).contains(v)));
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        assert!((0.45..0.55).contains(&mean), "{mean}");
        assert_eq!(jitter("a", 1.0, 0), jitter("a", 1.0, 0), "a pure function");
        assert_ne!(jitter("a", 1.0, 0), jitter("a", 1.0, 1));
        assert_eq!(backoff(1, 0.999), 4.0 * 0.999);
        assert_eq!(backoff(10, 0.5), 30.0);
        assert_eq!(backoff(3, 0.0), 1.0);
        assert!((1.0..=1.25).contains(&spread(1.0, 0.99)));
        assert_eq!(spread(10.0, 0.0), 7.5);
    }

    #[test]
    fn callback_seconds_are_the_nearest_whole_second_within_bounds() {
        assert_eq!(
            callback_seconds(spread(1.0, 0.999)),
            1,
            "PollInterval 1 looks every second"
        );
        assert_eq!(callback_seconds(1.49), 1);
        assert_eq!(callback_seconds(1.5), 2);
        assert_eq!(callback_seconds(0.2), 1);
        assert_eq!(callback_seconds(-3.0), 1);
        assert_eq!(callback_seconds(f64::NAN), 1);
        assert_eq!(callback_seconds(1e9), 600);
        assert_eq!(callback_seconds(f64::INFINITY), 600);
    }
}
