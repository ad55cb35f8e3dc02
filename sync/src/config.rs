//! [`Config`]: the bounds of the sync engine, and what a client gets when one is reached.
//!
//! | limit | reached | reply |
//! |---|---|---|
//! | [`Config::max_shapes`] | a new shape definition while that many are live and each has a subscriber | 503 `{"message": ...}` with `retry-after` (shapes without subscribers are evicted first) |
//! | [`Config::max_subscribers_per_shape`] | one more live request (long-poll or SSE) on a shape | 503 with `retry-after` |
//! | [`Config::feed_capacity`] | a client's offset is older than the oldest change held | 409 must-refetch with a new handle |
//! | [`Config::max_chunk_changes`] | more changes than that after an offset | the response stops at a transaction boundary, without up-to-date; the client asks again |

use std::time::Duration;

/// The sync engine's limits and timings.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// Distinct shapes (table, where, params, columns, replica and authorization filter) held at
    /// once.
    pub max_shapes: usize,
    /// Concurrent live requests on one shape.
    pub max_subscribers_per_shape: usize,
    /// Changes held in memory for clients to catch up from; older offsets must refetch.
    pub feed_capacity: usize,
    /// Changes a response carries at most (it may exceed it to keep a transaction whole).
    pub max_chunk_changes: usize,
    /// Rows a snapshot response sends per write to the connection.
    pub snapshot_chunk_rows: usize,
    /// How long a snapshot waits for its reader to take the next chunk before it gives up (and
    /// ends its read transaction): a stalled HTTP response is cut, a channel that stops pulling
    /// `more` must join again.
    pub snapshot_stall_timeout: Duration,
    /// How long a long-poll is held before it answers up-to-date.
    pub long_poll_timeout: Duration,
    /// How long an SSE response stays open before the server ends it (the client reconnects).
    pub sse_timeout: Duration,
    /// How often an idle SSE response sends a keep-alive comment.
    pub sse_keep_alive: Duration,
    /// How often the capture looks at `PRAGMA data_version`.
    pub poll_interval: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_shapes: 10_000,
            max_subscribers_per_shape: 10_000,
            feed_capacity: 100_000,
            max_chunk_changes: 1_000,
            snapshot_chunk_rows: 500,
            snapshot_stall_timeout: Duration::from_secs(30),
            long_poll_timeout: Duration::from_secs(20),
            sse_timeout: Duration::from_secs(60),
            sse_keep_alive: Duration::from_secs(21),
            poll_interval: Duration::from_millis(10),
        }
    }
}
