//! Why a join, push or leave failed, as the futures of [`ClientChannel`](super::ClientChannel) and
//! [`TypedClientChannel`](super::TypedClientChannel) report it.

use std::sync::Arc;

use alight_protocol::client;
use alight_protocol::schema::SchemaError;
use alight_protocol::{DecodeError, Payload};
use thiserror::Error;

/// The cause of a transport failure, as the driver reported it (a tungstenite error natively, a
/// wrapped JS error in the browser).
pub type Cause = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// Why [`ClientChannel::join`](super::ClientChannel::join) failed.
///
/// A failed join leaves the channel closed: it does not retry by itself (phoenix.js would rejoin
/// forever), and `join` may be called again. Once a join has succeeded, later rejoins (after a
/// reconnect or a crash) are automatic and their outcome shows in
/// [`ClientChannel::states`](super::ClientChannel::states).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ClientJoinError {
    /// The server refused the join (status `error` or any other non-`ok` status).
    #[error("the server refused the join with status `{status}`; see the response for its reason")]
    Refused {
        /// The reply status.
        status: String,
        /// The server's response, e.g. `{"reason":"unauthorized"}`.
        response: Payload,
    },
    /// No reply came within the join timeout. It runs from the `join` call and restarts each
    /// time the join is sent again after a lost connection, so a join waiting for a connection
    /// whose attempts keep failing does not time out.
    #[error("the server did not answer the join in time; check the connection and join again")]
    Timeout,
    /// The channel was left or closed by the server (or replaced by another join of its topic)
    /// before the join was answered, or the socket shut down.
    #[error("the channel was closed before the join was answered")]
    Closed,
    /// The session refused the call: the channel is already joined or joining, or its params
    /// cannot be encoded.
    #[error("the join was refused before it was sent")]
    Rejected(#[source] client::JoinError),
    /// The typed join params could not be serialized to JSON.
    #[error("the join params cannot be serialized to JSON")]
    Params(#[source] serde_json::Error),
    /// The join succeeded (the channel **is** joined) but its response does not match the
    /// schema's `JoinReply`; leave the channel if it is of no use.
    #[error("the join reply does not match the schema's JoinReply type")]
    DecodeReply(#[source] serde_json::Error),
}

/// Why [`ClientChannel::push`](super::ClientChannel::push) failed.
///
/// Dropping a push's future does not cancel the push: it was already handed to the session.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum PushError {
    /// The server answered with status `error` (or any other non-`ok` status).
    #[error("the server answered the push with status `{status}`; see the response for its reason")]
    Reply {
        /// The reply status.
        status: String,
        /// The server's response, e.g. `{"reason":"failed"}`.
        response: Payload,
    },
    /// No reply within the push timeout. It runs from the `push` call, and restarts when a push
    /// that waited for the channel to (re)join is sent.
    #[error("the server did not answer the push in time; it may or may not have been handled")]
    Timeout,
    /// The channel's last handle was dropped, or its failed join closed it, or the socket shut
    /// down, before the push was answered.
    #[error("the channel or socket closed before the push was answered")]
    Closed,
    /// The session refused the call: the channel is not joined, or the payload cannot be encoded.
    #[error("the push was refused before it was sent")]
    Rejected(#[source] client::PushError),
    /// The typed event could not be turned into an event name and payload.
    #[error("the event cannot be encoded")]
    Encode(#[source] SchemaError),
    /// The server answered `ok`, but its response does not match the schema's `Reply` type.
    #[error("the push reply does not match the schema's Reply type")]
    DecodeReply(#[source] serde_json::Error),
}

/// Why [`ClientChannel::leave`](super::ClientChannel::leave) failed.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LeaveError {
    /// The channel is not joined (never joined, already left, or closed by the server).
    #[error("the channel is not joined, so there is nothing to leave")]
    NotJoined,
    /// The socket's driver is gone; there is no connection to leave on.
    #[error("the socket is shut down")]
    Closed,
}

/// Why an event of a typed stream could not be delivered.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum EventError {
    /// The subscriber fell behind and events were dropped (the stream continues).
    #[error(transparent)]
    Lagged(#[from] super::Lagged),
    /// The server sent an event that the schema's `Out` type does not accept (the stream
    /// continues).
    #[error("an event from the server does not match the schema")]
    Schema(#[source] SchemaError),
}

/// Something went wrong on the socket, as reported on [`ClientSocket::events`](super::ClientSocket::events).
#[derive(Debug, Clone, Error)]
#[non_exhaustive]
pub enum SocketError {
    /// The transport failed (connect refused, handshake rejected, I/O error); the session closes
    /// it and reconnects after the backoff.
    #[error("the transport failed")]
    Transport(#[source] Cause),
    /// The transport failed and the driver gave no cause.
    #[error("the transport failed (no cause reported)")]
    Unknown,
    /// A frame from the server did not decode and was dropped; the connection stays up.
    #[error("a frame from the server could not be decoded and was dropped")]
    BadFrame(#[source] Arc<DecodeError>),
    /// The server refused the connection (close code 4001 unauthorized, twice in a row, or
    /// 4003 forbidden): the socket stopped reconnecting. Get new credentials and call
    /// `connect` again.
    #[error("the server refused the connection (close code {code})")]
    Refused {
        /// The close code.
        code: u16,
    },
}

/// Builds the error a future resolves with when its answer can never come (the session let go of
/// it, or the socket is gone). Public in a private module: a sealed bound of [`ReplyFuture`]'s
/// `Future` impl.
///
/// [`ReplyFuture`]: super::ReplyFuture
pub trait Closed {
    /// The "closed before it was answered" error.
    fn closed() -> Self;
}

impl Closed for ClientJoinError {
    fn closed() -> Self {
        ClientJoinError::Closed
    }
}

impl Closed for PushError {
    fn closed() -> Self {
        PushError::Closed
    }
}

impl Closed for LeaveError {
    fn closed() -> Self {
        LeaveError::Closed
    }
}
