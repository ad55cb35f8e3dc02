//! Clocks, latency histograms and their summaries.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// The generator's one time base: payloads carry nanoseconds since it, so the publisher's stamp
/// and the subscriber's reading come from the same monotonic clock in the same process.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    base: Instant,
}

impl Clock {
    /// A clock starting now.
    pub fn start() -> Self {
        Clock {
            base: Instant::now(),
        }
    }

    /// Nanoseconds since the clock started.
    pub fn now_ns(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

/// Largest latency the histogram holds; longer ones are clamped to it and still counted.
const MAX_LATENCY_US: u64 = 120_000_000;

/// A latency histogram in microseconds, three significant digits, shared by the tasks of a run.
///
/// A `std` mutex is right here: the generator runs on one thread, so the lock is never contended
/// and costs an uncontended atomic pair per record, less than the frame parse around it.
#[derive(Debug)]
pub struct Latency {
    histogram: Mutex<Histogram<u64>>,
}

impl Default for Latency {
    fn default() -> Self {
        Latency::new()
    }
}

impl Latency {
    /// An empty histogram.
    pub fn new() -> Self {
        // Constant, valid bounds (low ≥ 1, high ≥ 2 × low, sigfig ≤ 5): construction cannot fail.
        let histogram = Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)
            .expect("constant histogram bounds are valid");
        Latency {
            histogram: Mutex::new(histogram),
        }
    }

    /// Records one latency given in nanoseconds.
    pub fn record_ns(&self, ns: u64) {
        let us = (ns / 1_000).clamp(1, MAX_LATENCY_US);
        let mut h = self
            .histogram
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        h.saturating_record(us);
    }

    /// Records one latency.
    pub fn record(&self, latency: Duration) {
        self.record_ns(u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX));
    }

    /// p50, p99 and max so far.
    pub fn summary(&self) -> LatencySummary {
        let h = self
            .histogram
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        LatencySummary {
            count: h.len(),
            p50_us: h.value_at_quantile(0.50),
            p99_us: h.value_at_quantile(0.99),
            max_us: h.max(),
        }
    }
}

/// Percentiles of a latency histogram, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LatencySummary {
    /// Samples recorded.
    pub count: u64,
    /// Median.
    pub p50_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// Largest sample.
    pub max_us: u64,
}

/// `count` events over `elapsed`, per second (0 for an empty interval).
pub fn per_second(count: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 { count as f64 / secs } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let l = Latency::new();
        for us in 1..=100u64 {
            l.record_ns(us * 1_000);
        }
        let s = l.summary();
        assert_eq!(s.count, 100);
        assert_eq!(s.p50_us, 50);
        assert_eq!(s.p99_us, 99);
        assert_eq!(s.max_us, 100);
    }

    #[test]
    fn rates() {
        assert_eq!(per_second(10, Duration::from_millis(500)), 20.0);
        assert_eq!(per_second(10, Duration::ZERO), 0.0);
    }
}
