//! Why a user intent (join, push, leave) was refused.
//!
//! Only the calls themselves fail; what happens later on the network (a refused join, a lost
//! connection, a timeout) arrives as [`Event`](super::Event)s.

use thiserror::Error;

use crate::EncodeError;

/// Why [`Session::join`](super::Session::join) refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum JoinError {
    /// The channel was removed with `remove_channel` (or never existed in this session).
    #[error("no such channel in this session; create it with `channel(topic, params)`")]
    UnknownChannel,
    /// The channel is joined, joining or errored (and will rejoin by itself).
    #[error("the channel is already joined or joining; leave it before joining again")]
    AlreadyJoined,
    /// The join params cannot be sent with this serializer (binary params over V1, or a topic
    /// too long for a binary frame).
    #[error("the join params cannot be encoded")]
    Encode(#[source] EncodeError),
}

/// Why [`Session::push`](super::Session::push) refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PushError {
    /// The channel was removed with `remove_channel` (or never existed in this session).
    #[error("no such channel in this session; create it with `channel(topic, params)`")]
    UnknownChannel,
    /// The channel was never joined, or it was left or closed by the server.
    #[error("the channel is not joined; call `join` before pushing")]
    NotJoined,
    /// The payload cannot be sent with this serializer (binary over V1, or a topic or event
    /// longer than a binary frame allows).
    #[error("the push cannot be encoded")]
    Encode(#[source] EncodeError),
}

/// Why [`Session::leave`](super::Session::leave) refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LeaveError {
    /// The channel was removed with `remove_channel` (or never existed in this session).
    #[error("no such channel in this session")]
    UnknownChannel,
    /// The channel is already closed (never joined, left, or closed by the server).
    #[error("the channel is not joined, so there is nothing to leave")]
    NotJoined,
}
