//! [`Config`]: the bounds of the sync engine, and what a client gets when one is reached.
//!
//! | limit | reached | HTTP reply | channel reply (`shape:<table>`) |
//! |---|---|---|---|
//! | [`Config::max_shapes`] | a new shape definition while that many are live and each has a subscriber | 503 `{"message": ...}` with `retry-after` (shapes without subscribers are evicted first) | join error `{reason: "unavailable", message}` |
//! | [`Config::max_subscribers_per_shape`] | one more live request (long-poll or SSE) or joined channel on a shape | 503 with `retry-after` | join error `{reason: "unavailable", message}` |
//! | [`Config::feed_capacity`], [`Config::feed_max_bytes`] | a client's offset is older than the oldest change held (the log of every shape is a view of this one bounded feed) | 409 must-refetch with a new handle | a rejoin's `since`: `recovered: false` and a fresh snapshot; a live subscriber left behind: `refetch` |
//! | [`Config::max_chunk_changes`] | more changes than that after an offset | the response stops at a transaction boundary, without up-to-date; the client asks again | the reply says `more: true`; the client pulls with `more` |
//! | [`Config::snapshot_chunk_rows`], [`Config::snapshot_chunk_bytes`] | a snapshot larger than that | streamed in pieces of that size | one piece per reply (`more: true`) |

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
    /// About how many bytes the held changes may take; past it the oldest are dropped.
    pub feed_max_bytes: usize,
    /// Changes a response carries at most (it may exceed it to keep a transaction whole).
    pub max_chunk_changes: usize,
    /// Rows a snapshot response sends per write to the connection (or per channel reply).
    pub snapshot_chunk_rows: usize,
    /// Bytes of messages after which a snapshot piece is sent even with fewer rows.
    pub snapshot_chunk_bytes: usize,
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
    /// How often the capture looks at `PRAGMA data_version` while changes come.
    pub poll_interval: Duration,
    /// How often it looks once nothing has changed for a second. Every look wakes a thread and
    /// takes the file's locks, so an idle server wakes ten times a second rather than a hundred.
    /// The first change another process commits after a quiet second waits up to this long; a
    /// write made through this process is seen at once, and any change brings the capture back
    /// to `poll_interval`.
    pub idle_poll_interval: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_shapes: 10_000,
            max_subscribers_per_shape: 10_000,
            feed_capacity: 100_000,
            feed_max_bytes: 64 * 1024 * 1024,
            max_chunk_changes: 1_000,
            snapshot_chunk_rows: 500,
            snapshot_chunk_bytes: 256 * 1024,
            snapshot_stall_timeout: Duration::from_secs(30),
            long_poll_timeout: Duration::from_secs(20),
            sse_timeout: Duration::from_secs(60),
            sse_keep_alive: Duration::from_secs(21),
            poll_interval: Duration::from_millis(10),
            idle_poll_interval: Duration::from_millis(100),
        }
    }
}
