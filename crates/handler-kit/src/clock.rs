//! Time, behind a trait: the engine reads the clock and sleeps through it, so that the
//! property tests can run hours of simulated deploys in milliseconds.

use std::future::Future;
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
