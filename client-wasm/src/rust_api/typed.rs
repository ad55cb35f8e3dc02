//! [`TypedClientChannel`]: a channel whose joins, pushes, replies and events are the types of a
//! [`Schema`].

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use alight_protocol::Payload;
use alight_protocol::client::ChannelState;
use alight_protocol::schema::{Events, Schema};
use futures_util::{FutureExt, Stream};
use thiserror::Error;

use super::channel::{ClientChannel, Message, Recovery, StateChange};
use super::error::{ClientJoinError, EventError, LeaveError, PushError};
use super::reply::ReplyFuture;
use super::stream::Subscription;

/// A channel of the schema `S`: joins with `S::JoinParams` and resolves with `S::JoinReply`,
/// pushes `S::In` and resolves with `S::Reply`, and streams `S::Out`.
///
/// A thin layer over [`ClientChannel`] (reachable with [`untyped`](Self::untyped)): the same
/// semantics, the same errors, plus the (de)serialization ones.
pub struct TypedClientChannel<S> {
    channel: ClientChannel,
    schema: PhantomData<fn() -> S>,
}

impl<S> std::fmt::Debug for TypedClientChannel<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypedClientChannel")
            .field("channel", &self.channel)
            .field("schema", &std::any::type_name::<S>())
            .finish()
    }
}

impl<S> Clone for TypedClientChannel<S> {
    fn clone(&self) -> Self {
        TypedClientChannel {
            channel: self.channel.clone(),
            schema: PhantomData,
        }
    }
}

/// The topic given to [`ClientSocket::typed_channel`](super::ClientSocket::typed_channel) is not in the
/// schema's topic family.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("topic `{topic}` does not match the schema's topic pattern `{pattern}`")]
pub struct WrongTopic {
    /// The topic asked for.
    pub topic: String,
    /// The schema's [`Schema::TOPIC`].
    pub pattern: &'static str,
}

impl<S: Schema> TypedClientChannel<S> {
    pub(crate) fn new(channel: ClientChannel) -> Self {
        TypedClientChannel {
            channel,
            schema: PhantomData,
        }
    }

    /// The untyped channel underneath.
    pub fn untyped(&self) -> &ClientChannel {
        &self.channel
    }

    /// The topic.
    pub fn topic(&self) -> &str {
        self.channel.topic()
    }

    /// The channel's state now.
    pub fn state(&self) -> ChannelState {
        self.channel.state()
    }

    /// Joins with `params` (kept for rejoins) and decodes the reply. See [`ClientChannel::join`].
    pub fn join(
        &self,
        params: &S::JoinParams,
    ) -> impl Future<Output = Result<S::JoinReply, ClientJoinError>> + Send + 'static {
        let joined = match Payload::json(params) {
            Ok(params) => self.channel.join_with(Some(params), None),
            Err(error) => ReplyFuture::ready(Err(ClientJoinError::Params(error))),
        };
        joined.map(|result| {
            result.and_then(|response| response.deserialize().map_err(ClientJoinError::DecodeReply))
        })
    }

    /// Pushes `event` and decodes the `ok` reply. See [`ClientChannel::push`].
    pub fn push(
        &self,
        event: &S::In,
    ) -> impl Future<Output = Result<S::Reply, PushError>> + Send + 'static {
        let pushed = match event.to_parts() {
            Ok((name, payload)) => self.channel.push(name, payload),
            Err(error) => ReplyFuture::ready(Err(PushError::Encode(error))),
        };
        pushed.map(|result| {
            result.and_then(|response| response.deserialize().map_err(PushError::DecodeReply))
        })
    }

    /// Leaves. See [`ClientChannel::leave`].
    pub fn leave(&self) -> ReplyFuture<(), LeaveError> {
        self.channel.leave()
    }

    /// The server's events decoded as `S::Out`, from now on, bounded as [`ClientChannel::events`]. An
    /// event the schema does not accept is an `Err(EventError::Schema)` item, and lost events an
    /// `Err(EventError::Lagged)` item; the stream goes on after either.
    pub fn events(&self) -> TypedEvents<S> {
        TypedEvents {
            messages: self.channel.events(),
            schema: PhantomData,
        }
    }

    /// As [`events`](Self::events), holding up to `capacity` events.
    pub fn events_with_capacity(&self, capacity: usize) -> TypedEvents<S> {
        TypedEvents {
            messages: self.channel.events_with_capacity(capacity),
            schema: PhantomData,
        }
    }

    /// The channel's state changes. See [`ClientChannel::states`].
    pub fn states(&self) -> Subscription<StateChange> {
        self.channel.states()
    }

    /// The channel's last position on a topic with history. See [`ClientChannel::position`].
    pub fn position(&self) -> Option<String> {
        self.channel.position()
    }

    /// Whether each rejoin of a history channel resumed. See [`ClientChannel::recoveries`].
    pub fn recoveries(&self) -> Subscription<Recovery> {
        self.channel.recoveries()
    }
}

/// The stream of [`TypedClientChannel::events`].
pub struct TypedEvents<S> {
    messages: Subscription<Message>,
    schema: PhantomData<fn() -> S>,
}

impl<S> std::fmt::Debug for TypedEvents<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypedEvents")
            .field("messages", &self.messages)
            .finish()
    }
}

impl<S> TypedEvents<S> {
    /// How many events this subscriber has missed in all. See [`Subscription::missed_total`].
    pub fn missed_total(&self) -> u64 {
        self.messages.missed_total()
    }
}

impl<S: Schema> Stream for TypedEvents<S> {
    type Item = Result<S::Out, EventError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.messages).poll_next(cx).map(|item| {
            item.map(|received| match received {
                Ok(Message { event, payload, .. }) => {
                    S::Out::from_parts(&event, &payload).map_err(EventError::Schema)
                }
                Err(lagged) => Err(EventError::Lagged(lagged)),
            })
        })
    }
}
