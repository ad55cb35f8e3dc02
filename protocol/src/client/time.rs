//! Time as a parameter: the session reads no clock, the driver tells it what time it is.

use std::ops::Add;
use std::time::Duration;

/// A point in time, to the microsecond, since an origin the driver picks (page load, process
/// start, zero in a test).
///
/// `std::time::Instant` does not exist on `wasm32-unknown-unknown`, so the session takes time as a
/// value: a browser driver passes `performance.now()`, a native one `start.elapsed()`, a test a
/// virtual clock. Only differences between timestamps matter; they must never go backwards.
/// Kept as a count of microseconds, whose comparisons and sums are one integer operation each
/// (a `Duration`'s are two, with a carry, in every timer of the browser package).
///
/// ```
/// use std::time::Duration;
/// use alight_protocol::client::Timestamp;
///
/// let t = Timestamp::from_millis(1_500);
/// assert_eq!(t + Duration::from_millis(500), Timestamp::from_millis(2_000));
/// assert_eq!(t.saturating_duration_since(Timestamp::ZERO), Duration::from_millis(1_500));
/// assert_eq!(Timestamp::from_micros(1_500_000), t);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The origin.
    pub const ZERO: Timestamp = Timestamp(0);

    /// The timestamp `since` after the origin (saturating, past half a million years).
    pub const fn from_duration(since: Duration) -> Self {
        Timestamp(micros(since))
    }

    /// The timestamp `millis` milliseconds after the origin.
    pub const fn from_millis(millis: u64) -> Self {
        Timestamp(millis.saturating_mul(1000))
    }

    /// The timestamp `micros` microseconds after the origin.
    pub const fn from_micros(micros: u64) -> Self {
        Timestamp(micros)
    }

    /// Time since the origin.
    pub const fn as_duration(self) -> Duration {
        Duration::from_micros(self.0)
    }

    /// Microseconds since the origin.
    pub const fn as_micros(self) -> u64 {
        self.0
    }

    /// The deadline `micros` microseconds later (the core's timings,
    /// [`CoreConfig`](super::CoreConfig), are microseconds), saturating as `+ Duration` does,
    /// and at least one microsecond later: a timer that fires at `self` and sets a deadline with
    /// no delay comes due at the next `handle_timeout`, never again in the one firing it.
    pub(crate) const fn deadline(self, micros: u64) -> Timestamp {
        Timestamp(self.0.saturating_add(if micros == 0 { 1 } else { micros }))
    }

    /// Time from `earlier` to `self`, or zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Timestamp) -> Duration {
        Duration::from_micros(self.0.saturating_sub(earlier.0))
    }
}

impl Add<Duration> for Timestamp {
    type Output = Timestamp;

    /// Saturates at the largest representable time instead of overflowing: a deadline that far
    /// away never fires, which is what an absurdly long timeout means.
    fn add(self, rhs: Duration) -> Timestamp {
        Timestamp(self.0.saturating_add(micros(rhs)))
    }
}

/// Whole microseconds of `d`, saturating, in `u64` arithmetic (`Duration::as_micros` is `u128`).
/// The seconds are compared with the largest that fit rather than multiplied by
/// `saturating_mul`, whose overflow check is a 128-bit multiplication on wasm32 (a function of
/// its own in the browser package).
pub(crate) const fn micros(d: Duration) -> u64 {
    let secs = d.as_secs();
    if secs > u64::MAX / 1_000_000 {
        return u64::MAX;
    }
    (secs * 1_000_000).saturating_add(d.subsec_micros() as u64)
}
