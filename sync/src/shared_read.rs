//! A shape's last read of the feed, built once and shared: when a commit wakes a thousand
//! long-polls of one shape at the same offset, the first builds the messages and the response
//! body, and the others answer with the same bytes.
//!
//! # When a read is reused
//! A read at offset `after` holds the feed's changes after it, up to the feed's head at the time
//! (at most [`Config::max_chunk_changes`](crate::Config::max_chunk_changes), cut at a
//! transaction's end). The feed only grows at its head and drops at its floor, and both happen in
//! the same publish that moves the head, so while the head is the one a read saw, reading at
//! `after` again gives the same changes: the read is reused. Once the head moves, the next read at
//! `after` builds anew and replaces it. One read is kept per shape, the latest: the long-polls of
//! a shape that keep up ask at the same offset. A read the feed can no longer serve (its changes
//! were dropped) is never stored.
//!
//! # Bounded
//! A shape keeps one read, and only while it has live requests: the last [`Subscription`] to
//! leave drops it. So the reads held are at most one response's worth (one chunk of changes) per
//! shape with a request open, and those requests' responses share its bytes instead of holding a
//! copy each.
//!
//! [`Subscription`]: crate::live_shapes::Subscription
//!
//! # Why a mutex held while building
//! The slot is locked for the build, so the long-polls woken together wait for the first one's
//! build instead of each doing the same work; the build is synchronous (no `.await` under the
//! lock), and the lock is per shape, so reads of other shapes never wait on it. A `std` mutex is
//! right for that: tokio's would only add an await point where nothing needs one.

use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use serde_json::Value;

use crate::SyncDb;
use crate::live_shapes::Shape;
use crate::message;

/// One read of a shape's changes after an offset, with its JSON body as `GET /v1/shape` sends
/// it.
#[derive(Debug)]
pub struct SharedRead {
    /// The offset read after.
    after: i64,
    /// The feed's head when the read was made; the read is reused while the head is the same.
    seen_head: i64,
    /// The offset the client continues from.
    pub next: i64,
    /// Whether the read reached the feed's head (the body then ends with `up-to-date`).
    pub up_to_date: bool,
    /// Whether the shape had changes in the read.
    pub has_messages: bool,
    /// The messages as a JSON array, closed by the `up-to-date` control message when
    /// `up_to_date`.
    pub body: Bytes,
}

/// The latest [`SharedRead`] of one shape. Who touches it: [`SyncDb::shared_read`], under its
/// lock, from any request task.
#[derive(Debug, Default)]
pub struct LastRead(Mutex<Option<Arc<SharedRead>>>);

impl LastRead {
    /// Forgets the read (the shape's last live request left).
    pub(crate) fn clear(&self) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }
}

/// `messages` as a JSON array body, closed by `up-to-date` if `up_to_date`.
pub(crate) fn json_body(mut messages: Vec<Value>, up_to_date: bool) -> String {
    if up_to_date {
        messages.push(message::up_to_date(None));
    }
    Value::Array(messages).to_string()
}

impl SyncDb {
    /// The changes of `shape` after `after`, built once for every request that asks at the same
    /// offset while the feed's head stays put (see the [module docs](self)); `None` if the feed
    /// no longer holds them (the client must refetch).
    pub fn shared_read(&self, shape: &Shape, after: i64) -> Option<Arc<SharedRead>> {
        let mut last = shape
            .last_read
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Read before the feed is: a read that then sees a later head is only fresher.
        let head = self.feed().head();
        if let Some(read) = last.as_ref()
            && read.after == after
            && read.seen_head == head
        {
            return Some(read.clone());
        }
        let (messages, next) = self.changes_since(shape, after)?;
        let up_to_date = next >= self.feed().head();
        let read = Arc::new(SharedRead {
            after,
            seen_head: head,
            next,
            up_to_date,
            has_messages: !messages.is_empty(),
            body: Bytes::from(json_body(messages, up_to_date)),
        });
        *last = Some(read.clone());
        Some(read)
    }
}
