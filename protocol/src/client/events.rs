//! What a session asks of its driver ([`Action`]) and tells its application ([`Event`]), and the
//! states it reports.

use crate::Payload;

/// Names a channel of a session (returned by [`Session::channel`](super::Session::channel)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChannelId(pub(super) u64);

impl ChannelId {
    /// The number behind the id, unique within its session (for maps on the JS side).
    pub fn as_u64(self) -> u64 {
        self.0
    }

    /// The id behind a number [`as_u64`](Self::as_u64) gave, for a host that names channels by
    /// number across a boundary (the browser package's JavaScript). A number the session never
    /// gave names no channel: every call with it answers as for a removed channel.
    pub fn from_u64(n: u64) -> Self {
        ChannelId(n)
    }
}

/// Names a join, push or leave, so that its [`Event::Reply`] or [`Event::Timeout`] can be matched
/// with the call that made it. Not the wire `ref`: a push buffered and sent later, or a join
/// resent on every rejoin, keeps its id while its `ref` changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PushId(pub(super) u64);

impl PushId {
    /// The number behind the id, unique within its session.
    pub fn as_u64(self) -> u64 {
        self.0
    }
}

/// Something only the driver can do: open or close a transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Open a new transport and report it with `handle_open`, or `handle_error`/`handle_close`.
    ///
    /// Emitted on `connect` and on every reconnect, so the driver evaluates the connect params and
    /// auth token afresh each time (phoenix.js's `params` and `authToken` functions); the URL carries
    /// `vsn=` [`Serializer::vsn`](crate::Serializer::vsn).
    Connect,
    /// Close the current transport with this code and reason (`None`: the transport's default),
    /// after sending what `poll_transmit` still holds, and stop reporting anything about it: the
    /// session has already let go of it.
    Close {
        /// The WebSocket close code.
        code: Option<u16>,
        /// The close reason (may be empty).
        reason: String,
    },
}

/// Something the application should hear about.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The transport opened (phoenix.js `onOpen`).
    Open,
    /// The transport closed, or the session closed it (phoenix.js `onClose`). Every
    /// [`Action::Connect`] ends in exactly one `Close`.
    Close {
        /// The close code the transport reported, or the session closed it with.
        code: Option<u16>,
    },
    /// The transport reported an error (phoenix.js `onError`); a `Close` normally follows.
    Error,
    /// The server refused the connection by closing it with `code`: 4003 (forbidden), or 4001
    /// (unauthorized) twice in a row, the second time with a freshly evaluated token. The
    /// session stopped reconnecting until [`connect`](super::Session::connect); the `Close`
    /// follows.
    Refused {
        /// The close code.
        code: u16,
    },
    /// The server answered a join, push or leave.
    Reply {
        /// The join, push or leave answered.
        push: PushId,
        /// Its channel.
        channel: ChannelId,
        /// `ok`, `error`, or another status the server chose.
        status: String,
        /// The response (JSON, or bytes for a V2 binary reply).
        response: Payload,
    },
    /// A join or push got no reply in time. A join times out on every attempt that does (its
    /// channel rejoins); a push times out once, and is not sent if it was still buffered.
    Timeout {
        /// The join or push.
        push: PushId,
        /// Its channel.
        channel: ChannelId,
    },
    /// The server pushed or broadcast an event on a channel.
    Message {
        /// The channel (every channel of the topic whose join it concerns).
        channel: ChannelId,
        /// The event name.
        event: String,
        /// The payload (JSON, or bytes for a V2 binary frame).
        payload: Payload,
        /// The broadcast's position in its topic's history (what its ref slot carried, on a
        /// topic with history), as the channel's [`since`](super::Session::position) will
        /// carry it.
        position: Option<String>,
    },
    /// A join reply of a history topic said whether it resumed: with `recovered: false` the
    /// server could not replay what the channel missed since its position, and the application
    /// reloads its state. Follows the join's [`Event::Reply`].
    Recovered {
        /// The channel.
        channel: ChannelId,
        /// Every broadcast since the channel's position follows, in order.
        recovered: bool,
    },
    /// A channel changed state.
    ChannelState {
        /// The channel.
        channel: ChannelId,
        /// Its new state.
        state: ChannelState,
        /// Why.
        cause: StateCause,
    },
}

/// The state of the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConnectionState {
    /// No transport, and none coming: never connected, disconnected by the user, or waiting for
    /// the page to become visible again before reconnecting.
    Closed,
    /// The connection was lost and a reconnect is scheduled, due at
    /// [`Session::poll_timeout`](super::Session::poll_timeout) or earlier.
    Reconnecting,
    /// [`Action::Connect`] was emitted; waiting for `handle_open`.
    Connecting,
    /// The transport is open.
    Open,
}

/// The state of a channel, as phoenix.js names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ChannelState {
    /// Not joined: never joined, left, or closed by the server.
    Closed,
    /// A join is on its way (possibly buffered until the connection opens).
    Joining,
    /// The server accepted the join.
    Joined,
    /// The join failed, timed out, the channel crashed or the connection was lost; the channel
    /// rejoins by itself (after the rejoin backoff, or as soon as the connection reopens).
    Errored,
}

/// Why a channel changed state. `P` is what the server's `phx_error` and `phx_close` carry: the
/// payload for a [`Session`](super::Session), the host's message for a [`Core`](super::Core).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StateCause<P = Payload> {
    /// `join` was called.
    Join,
    /// The channel rejoined: the connection reopened, or its rejoin backoff elapsed.
    Rejoin,
    /// The server accepted the join (the join's [`Event::Reply`] follows).
    JoinOk,
    /// The server refused the join (the join's [`Event::Reply`] follows with its response).
    JoinRefused,
    /// The join got no reply in time (the join's [`Event::Timeout`] follows).
    JoinTimeout,
    /// The server reported the channel crashed (`phx_error`), with its payload.
    ServerError(P),
    /// The connection closed, failed, or missed a heartbeat.
    ConnectionLost,
    /// `leave` was called.
    Leave,
    /// Another channel of the same topic joined, which leaves this one (as in phoenix.js).
    Replaced,
    /// The server closed the channel (`phx_close`), with its payload.
    ServerClose(P),
}
impl<M> StateCause<M> {
    /// The same cause with its message mapped (the server's `phx_error`/`phx_close` payloads).
    pub fn map<N>(self, f: impl FnOnce(M) -> N) -> StateCause<N> {
        match self {
            StateCause::Join => StateCause::Join,
            StateCause::Rejoin => StateCause::Rejoin,
            StateCause::JoinOk => StateCause::JoinOk,
            StateCause::JoinRefused => StateCause::JoinRefused,
            StateCause::JoinTimeout => StateCause::JoinTimeout,
            StateCause::ServerError(m) => StateCause::ServerError(f(m)),
            StateCause::ConnectionLost => StateCause::ConnectionLost,
            StateCause::Leave => StateCause::Leave,
            StateCause::Replaced => StateCause::Replaced,
            StateCause::ServerClose(m) => StateCause::ServerClose(f(m)),
        }
    }
}
