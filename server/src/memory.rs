//! Giving freed memory back to the operating system after connections close.
//!
//! glibc's malloc keeps what a process frees for reuse, and returns only the free space at the
//! very top of each arena. A connection's buffers are freed in whatever order its neighbours
//! leave them, so after a wave of connections closes the process stays near its peak resident
//! size although nothing holds that memory. `malloc_trim(0)` walks the arenas and hands every
//! whole free page back (`madvise`), which is what brings the resident size down.
//!
//! It is process-wide policy, so it is off unless the binary asks
//! ([`Config::memory_trim`](crate::Config::memory_trim); `alight-demo` does). [`MemoryTrim`] then
//! calls it once the open connections have fallen to half of their peak since the last trim,
//! [`Limits::memory_trim`](crate::Limits::memory_trim) later, so that one trim follows a wave of
//! closes rather than each close. It runs on a blocking thread, not on a runtime worker, but
//! glibc holds each arena's lock while it walks that arena, so a worker that allocates meanwhile
//! can wait (docs/ARCHITECTURE.md has the figures). On other allocators (musl, macOS, Windows)
//! there is no such call and nothing is done.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use prometheus_client::metrics::gauge::Gauge;
use tracing::debug;

/// Decides when to trim, and trims.
#[derive(Debug)]
pub(crate) struct MemoryTrim {
    /// How long after the open connections fall to half their peak the trim runs; `None`: never.
    delay: Option<Duration>,
    /// The open connections: the metrics' gauge, which the connections count themselves in.
    open: Gauge,
    /// The most connections open at once since the last trim.
    peak: AtomicUsize,
    /// A trim is scheduled and has not run yet.
    scheduled: AtomicBool,
    /// What trimming does: [`release_free_memory`] outside tests.
    trim: fn() -> bool,
}

impl MemoryTrim {
    pub(crate) fn new(delay: Option<Duration>, open: Gauge) -> Self {
        Self::with(delay, open, release_free_memory)
    }

    fn with(delay: Option<Duration>, open: Gauge, trim: fn() -> bool) -> Self {
        MemoryTrim {
            delay,
            open,
            peak: AtomicUsize::new(0),
            scheduled: AtomicBool::new(false),
            trim,
        }
    }

    fn open(&self) -> usize {
        usize::try_from(self.open.get()).unwrap_or(0)
    }

    /// A connection opened (and is counted in the gauge).
    pub(crate) fn opened(&self) {
        self.peak.fetch_max(self.open(), Ordering::Relaxed);
    }

    /// A connection closed (and is no longer counted). Schedules a trim (on the current tokio
    /// runtime) if the open ones are half the peak or fewer and none is scheduled; what is open
    /// when it runs is the next peak to compare with.
    pub(crate) fn closed(self: &Arc<Self>) {
        let Some(delay) = self.delay else { return };
        if self.open() > self.peak.load(Ordering::Relaxed) / 2
            || self.scheduled.swap(true, Ordering::AcqRel)
        {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            this.peak.store(this.open(), Ordering::Relaxed);
            let trim = this.trim;
            let started = std::time::Instant::now();
            match tokio::task::spawn_blocking(trim).await {
                Ok(released) => debug!(
                    released,
                    took_ms = started.elapsed().as_secs_f64() * 1e3,
                    "freed memory returned to the system"
                ),
                Err(err) => debug!(error = %err, "memory trim did not run"),
            }
            this.scheduled.store(false, Ordering::Release);
        });
    }
}

/// Asks glibc to return the whole free pages of every arena to the system; whether any were.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[expect(unsafe_code, reason = "malloc_trim is a C function")]
fn release_free_memory() -> bool {
    // SAFETY: malloc_trim takes no pointer and has no precondition; glibc serialises it with
    // every other allocator call.
    unsafe { libc::malloc_trim(0) == 1 }
}

/// Other allocators return memory themselves or have no such call.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn release_free_memory() -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    // One counter per test: tests run in parallel.
    static TRIMS_WAVE: AtomicU32 = AtomicU32::new(0);
    static TRIMS_OFF: AtomicU32 = AtomicU32::new(0);

    fn count_wave() -> bool {
        TRIMS_WAVE.fetch_add(1, Ordering::SeqCst);
        true
    }

    fn count_off() -> bool {
        TRIMS_OFF.fetch_add(1, Ordering::SeqCst);
        true
    }

    /// Lets the spawned trim task and its blocking call finish after a clock advance.
    async fn settle() {
        for _ in 0..20 {
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// `trim` and the gauge it reads, at `opened` open connections.
    fn counting(trim: MemoryTrim, open: &Gauge, opened: usize) -> Arc<MemoryTrim> {
        let trim = Arc::new(trim);
        for _ in 0..opened {
            open.inc();
            trim.opened();
        }
        trim
    }

    fn close(trim: &Arc<MemoryTrim>, open: &Gauge, count: usize) {
        for _ in 0..count {
            open.dec();
            trim.closed();
        }
    }

    #[tokio::test(start_paused = true)]
    async fn one_trim_after_a_wave_of_closes_and_none_while_connections_hold() {
        let open = Gauge::default();
        let delay = Some(Duration::from_secs(1));
        let trim = counting(MemoryTrim::with(delay, open.clone(), count_wave), &open, 10);
        // Down to 6 of a peak of 10: more than half still open, nothing to do.
        close(&trim, &open, 4);
        tokio::time::sleep(Duration::from_secs(5)).await;
        settle().await;
        assert_eq!(TRIMS_WAVE.load(Ordering::SeqCst), 0);

        // Down to 0: one trim, a second after the first close at half the peak.
        close(&trim, &open, 6);
        tokio::time::sleep(Duration::from_millis(999)).await;
        assert_eq!(TRIMS_WAVE.load(Ordering::SeqCst), 0);
        tokio::time::sleep(Duration::from_millis(1)).await;
        settle().await;
        assert_eq!(TRIMS_WAVE.load(Ordering::SeqCst), 1);

        // The peak starts again from what was open at the trim: a new wave trims again.
        for _ in 0..2 {
            open.inc();
            trim.opened();
        }
        close(&trim, &open, 2);
        tokio::time::sleep(Duration::from_secs(2)).await;
        settle().await;
        assert_eq!(TRIMS_WAVE.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn no_trim_when_turned_off() {
        let open = Gauge::default();
        let trim = counting(MemoryTrim::with(None, open.clone(), count_off), &open, 4);
        close(&trim, &open, 4);
        tokio::time::sleep(Duration::from_secs(5)).await;
        settle().await;
        assert_eq!(TRIMS_OFF.load(Ordering::SeqCst), 0);
    }

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn freed_pages_below_a_live_allocation_are_returned() {
        // 8 MB in small blocks (below glibc's mmap threshold, so they come from the arena), then
        // one block above them that stays: freeing the others leaves free pages that only a trim
        // returns.
        let blocks: Vec<Vec<u8>> = (0..80_000).map(|i| vec![i as u8; 100]).collect();
        let above: Box<[u8]> = Box::new([1_u8; 100]);
        drop(blocks);
        assert!(release_free_memory(), "nothing was returned");
        assert_eq!(above[0], 1);
    }
}
