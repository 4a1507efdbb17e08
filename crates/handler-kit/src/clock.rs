//! Time, behind a trait: the engine reads the clock and sleeps through it, so that the
//! property tests can run hours of simulated deploys in milliseconds.

use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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
#[derive(Debug, Default)]
pub struct VirtualClock {
    now: Mutex<f64>,
}

impl VirtualClock {
    pub fn starting_at(now: f64) -> Self {
        Self {
            now: Mutex::new(now),
        }
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
}

impl Clock for VirtualClock {
    fn now(&self) -> f64 {
        self.now.lock().map(|n| *n).unwrap_or_default()
    }

    fn sleep(&self, seconds: f64) -> impl Future<Output = ()> + Send {
        self.advance(seconds);
        std::future::ready(())
    }
}
