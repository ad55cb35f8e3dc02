//! Retry schedules (reconnect, rejoin) and the deterministic jitter applied to them.

use std::time::Duration;

/// How long to wait before retry number `tries` (1 for the first retry).
///
/// The defaults are phoenix.js's: [`Backoff::reconnect`] and [`Backoff::rejoin`]. A schedule is
/// either a list of steps with a tail used once the list runs out, or a plain function, as
/// phoenix.js's `reconnectAfterMs` / `rejoinAfterMs` options are.
///
/// ```
/// use std::time::Duration;
/// use alight_protocol::client::Backoff;
///
/// let backoff = Backoff::reconnect();
/// assert_eq!(backoff.delay(1), Duration::from_millis(10));
/// assert_eq!(backoff.delay(9), Duration::from_millis(2000));
/// assert_eq!(backoff.delay(10), Duration::from_secs(5));
///
/// fn linear(tries: u32) -> Duration { Duration::from_secs(u64::from(tries)) }
/// assert_eq!(Backoff::Custom(linear).delay(3), Duration::from_secs(3));
/// ```
#[derive(Debug, Clone)]
pub enum Backoff {
    /// `steps[tries - 1]`, then `then` once the steps run out.
    Steps {
        /// The first delays, in order.
        steps: Vec<Duration>,
        /// The delay for every retry after the steps.
        then: Duration,
    },
    /// A function of the retry number (1 for the first retry).
    Custom(fn(tries: u32) -> Duration),
}

impl Backoff {
    /// phoenix.js's socket reconnect schedule: `[10, 50, 100, 150, 200, 250, 500, 1000, 2000]` ms,
    /// then 5 s.
    pub fn reconnect() -> Self {
        // Arrays mapped and copied: an iterator collected into the `Vec` is a function of its own
        // in the browser package.
        Backoff::Steps {
            steps: [10, 50, 100, 150, 200, 250, 500, 1000, 2000]
                .map(Duration::from_millis)
                .to_vec(),
            then: Duration::from_millis(5000),
        }
    }

    /// phoenix.js's channel rejoin schedule: `[1000, 2000, 5000]` ms, then 10 s.
    pub fn rejoin() -> Self {
        Backoff::Steps {
            steps: [1000, 2000, 5000].map(Duration::from_millis).to_vec(),
            then: Duration::from_millis(10_000),
        }
    }

    /// A step schedule: `steps` in order, then `then` forever.
    pub fn steps(steps: impl IntoIterator<Item = Duration>, then: Duration) -> Self {
        Backoff::Steps {
            steps: steps.into_iter().collect(),
            then,
        }
    }

    /// The delay before retry number `tries`, counting from 1 (0 is treated as 1).
    pub fn delay(&self, tries: u32) -> Duration {
        match self {
            Backoff::Steps { steps, then } => {
                let index = usize::try_from(tries.max(1) - 1).unwrap_or(usize::MAX);
                steps.get(index).copied().unwrap_or(*then)
            }
            Backoff::Custom(delay) => delay(tries.max(1)),
        }
    }
}

/// A small deterministic generator (SplitMix64) for jitter.
///
/// The session has no randomness source of its own: the seed comes from the config, so a test
/// or a load generator replays exactly, and a browser passes a random seed per client so that
/// clients dropped together do not retry in lockstep.
#[derive(Debug, Clone)]
pub(crate) struct Jitter {
    state: u64,
}

impl Jitter {
    pub(crate) fn new(seed: u64) -> Self {
        Jitter { state: seed }
    }

    /// The next value, uniform in `[0, 1)`.
    fn next_unit(&mut self) -> f64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        // The top 53 bits fill an f64 mantissa exactly.
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    /// `base` scaled by a factor drawn uniformly from `[1 - fraction, 1 + fraction)`.
    ///
    /// `fraction` is clamped to `[0, 1]`; with 0 the delay is exactly `base` and no value is drawn,
    /// so a session without jitter consumes nothing from the generator.
    pub(crate) fn apply(&mut self, base: u64, fraction: f64) -> u64 {
        let fraction = if fraction.is_nan() {
            0.0
        } else {
            fraction.clamp(0.0, 1.0)
        };
        if fraction == 0.0 {
            return base;
        }
        let factor = 1.0 - fraction + 2.0 * fraction * self.next_unit();
        // A saturating cast.
        (base as f64 * factor) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phoenix_schedules() {
        let reconnect: Vec<u64> = (1..=11)
            .map(|t| Backoff::reconnect().delay(t).as_millis() as u64)
            .collect();
        assert_eq!(
            reconnect,
            [10, 50, 100, 150, 200, 250, 500, 1000, 2000, 5000, 5000]
        );
        let rejoin: Vec<u64> = (1..=5)
            .map(|t| Backoff::rejoin().delay(t).as_millis() as u64)
            .collect();
        assert_eq!(rejoin, [1000, 2000, 5000, 10_000, 10_000]);
        assert_eq!(Backoff::rejoin().delay(0), Duration::from_secs(1));
    }

    #[test]
    fn jitter_stays_in_bounds_and_replays_from_the_seed() {
        let base = 1_000_000;
        let mut a = Jitter::new(42);
        let mut b = Jitter::new(42);
        let mut c = Jitter::new(43);
        let mut differs = false;
        for _ in 0..1000 {
            let x = a.apply(base, 0.2);
            assert!((800_000..1_200_000).contains(&x));
            assert_eq!(x, b.apply(base, 0.2));
            differs |= x != c.apply(base, 0.2);
        }
        assert!(differs, "another seed gives another sequence");
        assert_eq!(a.apply(base, 0.0), base);
        assert_eq!(a.apply(base, f64::NAN), base);
        assert!(a.apply(base, 7.0) < 2_000_000);
    }
}
