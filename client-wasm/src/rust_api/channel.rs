//! [`ClientChannel`]: one topic on a socket, with futures for its replies and streams for its events.

use std::sync::Arc;
use std::time::Duration;

use alight_protocol::Payload;
use alight_protocol::client::{ChannelState, StateCause};

use super::error::{ClientJoinError, LeaveError, PushError};
use super::reply::ReplyFuture;
use super::shared::{EntryKey, Shared};
use super::socket::SocketHandle;
use super::stream::Subscription;

/// An event the server pushed or broadcast on a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The event name.
    pub event: String,
    /// Its payload (JSON, or bytes from a V2 binary frame).
    pub payload: Payload,
    /// Its position in the topic's history, on a topic with history (see
    /// [`Channel::position`]).
    pub position: Option<String>,
}

/// Whether a rejoin of a history channel resumed (see [`Channel::recoveries`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recovery {
    /// Every broadcast since the channel's position follows the rejoin, in order; when `false`
    /// the server could not replay them, and the application reloads its state.
    pub recovered: bool,
}

/// A channel changed state (joining, joined, errored, closed) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateChange {
    /// The new state.
    pub state: ChannelState,
    /// Why: a join, a rejoin after a reconnect, a crash (`phx_error`), a lost connection, …
    pub cause: StateCause,
}

/// A channel of a [`ClientSocket`](super::ClientSocket): join it, push to it, read its events.
///
/// Cheap to clone; clones are the same channel. When the last clone is dropped the channel is
/// left (if joined) and forgotten, and its event streams end. A channel keeps its socket alive.
///
/// Once joined, it rejoins by itself after a reconnect or a server-side crash (phoenix.js
/// semantics), and pushes made meanwhile wait for the rejoin. A *first* join that fails, though,
/// leaves it closed; see [`ClientJoinError`].
#[derive(Debug, Clone)]
pub struct ClientChannel {
    inner: Arc<ChannelHandle>,
}

/// Shared by a channel's clones; the last one dropped removes the channel.
#[derive(Debug)]
struct ChannelHandle {
    socket: Arc<SocketHandle>,
    key: EntryKey,
    topic: String,
}

impl Drop for ChannelHandle {
    fn drop(&mut self) {
        let key = self.key;
        self.socket
            .shared
            .user(|state, now| state.remove_entry(key, now));
    }
}

impl ClientChannel {
    pub(crate) fn new(socket: Arc<SocketHandle>, topic: String, params: Payload) -> Self {
        let key = socket
            .shared
            .call(|state, _| state.add_entry(topic.clone(), params));
        ClientChannel {
            inner: Arc::new(ChannelHandle { socket, key, topic }),
        }
    }

    fn shared(&self) -> &Shared {
        &self.inner.socket.shared
    }

    /// The topic.
    pub fn topic(&self) -> &str {
        &self.inner.topic
    }

    /// The channel's state now.
    pub fn state(&self) -> ChannelState {
        let key = self.inner.key;
        self.shared().read(|state| state.channel_state(key))
    }

    /// Joins, with the config's timeout. Resolves with the server's join response.
    ///
    /// The join is sent when the connection is open (at once, or when it opens). Awaiting is
    /// optional: the join goes ahead either way.
    pub fn join(&self) -> ReplyFuture<Payload, ClientJoinError> {
        self.join_with(None, None)
    }

    /// As [`join`](Self::join), with `timeout` for this join, its rejoins, and as the default
    /// timeout of the channel's pushes.
    pub fn join_with_timeout(&self, timeout: Duration) -> ReplyFuture<Payload, ClientJoinError> {
        self.join_with(None, Some(timeout))
    }

    /// Joins with `params` replacing the channel's params (for this and later joins).
    pub(crate) fn join_with(
        &self,
        params: Option<Payload>,
        timeout: Option<Duration>,
    ) -> ReplyFuture<Payload, ClientJoinError> {
        let key = self.inner.key;
        let result = self
            .shared()
            .user(|state, now| state.join(key, params, timeout, now));
        match result {
            Ok(receiver) => ReplyFuture::waiting(receiver),
            Err(error) => ReplyFuture::ready(Err(error)),
        }
    }

    /// Pushes `event` with `payload`, with the channel's timeout. Resolves with the response of
    /// an `ok` reply; an `error` reply is [`PushError::Reply`].
    ///
    /// Sent at once if the channel is joined and connected, else when it (re)joins; the timeout
    /// runs from now either way. A binary payload goes out as a V2 binary frame.
    pub fn push(
        &self,
        event: impl Into<String>,
        payload: Payload,
    ) -> ReplyFuture<Payload, PushError> {
        self.push_inner(event.into(), payload, None)
    }

    /// As [`push`](Self::push), with its own `timeout`.
    pub fn push_with_timeout(
        &self,
        event: impl Into<String>,
        payload: Payload,
        timeout: Duration,
    ) -> ReplyFuture<Payload, PushError> {
        self.push_inner(event.into(), payload, Some(timeout))
    }

    fn push_inner(
        &self,
        event: String,
        payload: Payload,
        timeout: Option<Duration>,
    ) -> ReplyFuture<Payload, PushError> {
        let key = self.inner.key;
        let result = self
            .shared()
            .user(|state, now| state.push(key, event, payload, timeout, now));
        match result {
            Ok(receiver) => ReplyFuture::waiting(receiver),
            Err(error) => ReplyFuture::ready(Err(error)),
        }
    }

    /// Leaves: sends `phx_leave` (if connected) and closes the channel at once, as phoenix.js
    /// does; it can be joined again. A join still waiting fails with [`ClientJoinError::Closed`];
    /// pushes already sent still get their replies.
    pub fn leave(&self) -> ReplyFuture<(), LeaveError> {
        let key = self.inner.key;
        ReplyFuture::ready(self.shared().user(|state, now| state.leave(key, now)))
    }

    /// The events the server pushes or broadcasts on this channel from now on, with the socket's
    /// default capacity ([`SocketOptions::event_capacity`](super::SocketOptions::event_capacity)).
    ///
    /// Every subscriber gets every event. One that falls behind by more than the capacity loses
    /// the oldest events and is told how many with an `Err(Lagged)` item; see
    /// [`Subscription`].
    pub fn events(&self) -> Subscription<Message> {
        self.subscribe_messages(None)
    }

    /// As [`events`](Self::events), holding up to `capacity` events.
    pub fn events_with_capacity(&self, capacity: usize) -> Subscription<Message> {
        self.subscribe_messages(Some(capacity))
    }

    pub(crate) fn subscribe_messages(&self, capacity: Option<usize>) -> Subscription<Message> {
        let key = self.inner.key;
        let subscription = self
            .shared()
            .call(|state, _| state.subscribe_messages(key, capacity));
        // The entry lives as long as this handle does.
        subscription.unwrap_or_else(Subscription::ended)
    }

    /// The channel's last position in its topic's history (from its join reply, then from every
    /// broadcast); `None` on a topic without history.
    ///
    /// The channel resumes by itself: every rejoin carries `since: <position>` merged into its
    /// params (a JSON object), broadcasts it already had are dropped, and each rejoin reply that
    /// says whether it resumed is reported on [`recoveries`](Self::recoveries).
    pub fn position(&self) -> Option<String> {
        let key = self.inner.key;
        self.shared().read(|state| state.position(key))
    }

    /// Whether each rejoin of a history channel resumed, from now on, bounded as
    /// [`events`](Self::events).
    ///
    /// ```
    /// # async fn resume(room: alight_client::rust_api::ClientChannel) {
    /// use futures_util::StreamExt;
    ///
    /// let mut recoveries = room.recoveries();
    /// while let Some(Ok(recovery)) = recoveries.next().await {
    ///     if !recovery.recovered {
    ///         // Too much was missed: reload the state.
    ///     }
    /// }
    /// # }
    /// ```
    pub fn recoveries(&self) -> Subscription<Recovery> {
        let key = self.inner.key;
        let subscription = self
            .shared()
            .call(|state, _| state.subscribe_recoveries(key, None));
        subscription.unwrap_or_else(Subscription::ended)
    }

    /// The channel's state changes from now on (joined, errored after a crash or a lost
    /// connection, rejoined, closed), bounded as [`events`](Self::events).
    pub fn states(&self) -> Subscription<StateChange> {
        let key = self.inner.key;
        let subscription = self
            .shared()
            .call(|state, _| state.subscribe_states(key, None));
        subscription.unwrap_or_else(Subscription::ended)
    }
}
