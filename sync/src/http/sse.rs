//! The Server-Sent Events variant of a live request (`live=true&live_sse=true`).
//!
//! Each message is one `data:` event; each batch ends with an up-to-date control message that
//! carries `global_last_seen_lsn`, from which the client takes its next offset (`<lsn>_0`). An
//! idle stream sends `: keep-alive` comments. The stream ends after [`Config::sse_timeout`], when
//! the shape is rotated or expired, or when the feed no longer holds the client's offset; the
//! client reconnects and, in the last two cases, gets a 409.
//!
//! [`Config::sse_timeout`]: crate::Config::sse_timeout

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;

use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::db::SyncDb;
use crate::message;
use crate::registry::{Shape, Subscription};

struct State {
    db: SyncDb,
    shape: Arc<Shape>,
    at: i64,
    wakeups: watch::Receiver<u64>,
    rotations: watch::Receiver<u64>,
    deadline: Instant,
    pending: VecDeque<Event>,
    first: bool,
    _subscription: Subscription,
}

/// The SSE response for `shape` from offset `after`, with `headers` (Electric's).
pub fn stream(
    db: SyncDb,
    shape: Arc<Shape>,
    after: i64,
    subscription: Subscription,
    headers: HeaderMap,
) -> Response {
    let config = db.config().clone();
    let state = State {
        wakeups: shape.wakeups(),
        rotations: db.registry().rotations(),
        deadline: Instant::now() + config.sse_timeout,
        db,
        shape,
        at: after,
        pending: VecDeque::new(),
        first: true,
        _subscription: subscription,
    };
    let events = stream::unfold(state, |mut state| async move {
        let event = next(&mut state).await?;
        Some((Ok::<Event, Infallible>(event), state))
    });
    let sse = Sse::new(events).keep_alive(
        KeepAlive::new()
            .interval(config.sse_keep_alive)
            .text("keep-alive"),
    );
    (headers, sse).into_response()
}

async fn next(state: &mut State) -> Option<Event> {
    loop {
        if let Some(event) = state.pending.pop_front() {
            return Some(event);
        }
        state.wakeups.borrow_and_update();
        state.rotations.borrow_and_update();
        if !state.db.registry().is_live(&state.shape.handle) {
            return None;
        }
        let (messages, next) = state.db.changes_since(&state.shape, state.at)?;
        state.at = next;
        if !messages.is_empty() || state.first {
            state.first = false;
            for message in messages {
                state
                    .pending
                    .push_back(Event::default().data(message.to_string()));
            }
            let done = message::up_to_date(Some(next));
            state
                .pending
                .push_back(Event::default().data(done.to_string()));
            continue;
        }
        if next < state.db.feed().head() {
            // A chunk cut at its size bound, with nothing for this shape: read on.
            continue;
        }
        tokio::select! {
            _ = state.wakeups.changed() => {}
            _ = state.rotations.changed() => {}
            () = tokio::time::sleep_until(state.deadline) => return None,
        }
    }
}
