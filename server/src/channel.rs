//! Channels: what an application implements for a topic family.
//!
//! A [`Channel`] is registered for a topic pattern (`room:*` or an exact topic). Each join creates a
//! per-channel state through [`Channel::join`]; events the client pushes arrive in
//! [`Channel::handle_in`]; broadcasts whose event the channel [intercepts](Channel::intercepts) pass
//! through [`Channel::handle_out`] before they are sent; [`Channel::terminate`] runs when the
//! channel ends for any reason.
//!
//! Handlers run on the connection's task, one message at a time, as a Phoenix channel process does.
//! A handler that panics crashes only its channel: the client gets `phx_error` for it and the socket
//! stays up.
//!
//! ```
//! use alight_server::{Channel, Context, HandleIn, JoinError};
//! use alight_protocol::Payload;
//!
//! struct Room;
//!
//! impl Channel for Room {
//!     type State = u32; // messages seen by this channel
//!
//!     async fn join(&self, _params: Payload, ctx: &mut Context<'_>) -> Result<(u32, Payload), JoinError> {
//!         if ctx.topic() == "room:secret" {
//!             return Err(JoinError::reason("unauthorized"));
//!         }
//!         Ok((0, Payload::empty()))
//!     }
//!
//!     async fn handle_in(&self, event: &str, payload: Payload, seen: &mut u32, ctx: &mut Context<'_>) -> HandleIn {
//!         *seen += 1;
//!         match event {
//!             "shout" => {
//!                 ctx.broadcast("shout", payload);
//!                 HandleIn::ok(Payload::empty())
//!             }
//!             _ => HandleIn::error_reason("unknown event"),
//!         }
//!     }
//! }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Weak};

use alight_protocol::{Frame, Payload};

use crate::broadcast::Broadcast;

use crate::presence::{Owner, Presence, TrackError};
use crate::pubsub::PubSub;
use crate::socket::Socket;

/// A boxed future that lives as long as `'a`.
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A refused join: the reply's response, e.g. `{"reason":"unauthorized"}`.
#[derive(Debug, Clone)]
pub struct JoinError {
    response: Payload,
}

impl JoinError {
    /// Refuses with `{"reason": reason}`, the shape phoenix.js apps expect.
    pub fn reason(reason: &str) -> Self {
        JoinError {
            response: reason_payload(reason),
        }
    }

    /// Refuses with any response payload.
    pub fn with_response(response: Payload) -> Self {
        JoinError { response }
    }

    /// The response sent with the error reply.
    pub fn response(&self) -> &Payload {
        &self.response
    }
}

/// A join that could not track its presence (`ctx.track(..)?` in `join`) is refused with
/// `{"reason": "presence not tracked: <why>"}`, and the cause is logged.
impl From<TrackError> for JoinError {
    fn from(error: TrackError) -> Self {
        tracing::warn!(error = %error, "join refused: presence not tracked");
        JoinError::reason(&format!("presence not tracked: {error}"))
    }
}

/// `{"reason": reason}`.
pub(crate) fn reason_payload(reason: &str) -> Payload {
    Payload::json(&ReasonBody { reason }).expect("a struct of one string serializes to JSON")
}

#[derive(serde::Serialize)]
struct ReasonBody<'a> {
    reason: &'a str,
}

/// What [`Channel::handle_in`] decided.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum HandleIn {
    /// Reply with a status (`ok`, `error`, …) and a response.
    Reply {
        /// The reply status.
        status: String,
        /// The response payload.
        response: Payload,
    },
    /// Send no reply (the client's push times out unless something else answers).
    NoReply,
    /// Optionally reply, then close the channel (the client receives `phx_close`).
    Stop {
        /// A reply to send first.
        reply: Option<(String, Payload)>,
    },
}

impl HandleIn {
    /// Reply `ok` with `response`.
    pub fn ok(response: Payload) -> Self {
        HandleIn::Reply {
            status: "ok".to_owned(),
            response,
        }
    }

    /// Reply `error` with `response`.
    pub fn error(response: Payload) -> Self {
        HandleIn::Reply {
            status: "error".to_owned(),
            response,
        }
    }

    /// Reply `error` with `{"reason": reason}`.
    pub fn error_reason(reason: &str) -> Self {
        HandleIn::error(reason_payload(reason))
    }
}

/// What [`Channel::handle_out`] decided for an intercepted broadcast.
#[derive(Debug, Clone)]
pub enum Outgoing {
    /// Send it to this client with this payload (changed or not); a position the broadcast has
    /// stays in the frame's `ref` slot. The frame is encoded for this client alone.
    Push(Payload),
    /// Send it to this client unchanged: the broadcast's own bytes, encoded once and shared with
    /// every other subscriber, as if the event were not intercepted. Prefer it to
    /// `Push(payload.clone())` when the payload does not change.
    Forward,
    /// Do not send it to this client.
    Skip,
}

/// Why a channel ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Terminate {
    /// The client sent `phx_leave`.
    Leave,
    /// The client joined the same topic again; this instance is replaced.
    Rejoin,
    /// `handle_in` returned [`HandleIn::Stop`].
    Stop,
    /// The socket closed or was closed.
    Closed,
    /// The server is shutting down.
    Shutdown,
}

/// The channel's view of its socket and the world, passed to every callback.
pub struct Context<'a> {
    pub(crate) topic: &'a str,
    /// The join_ref of the join that opened this channel (phoenix.js always sends one).
    pub(crate) join_ref: Option<&'a str>,
    pub(crate) socket: &'a Socket,
    pub(crate) pubsub: &'a Arc<dyn PubSub>,
    /// What to send to this client once the callback returns, in order.
    pub(crate) pushes: &'a mut Vec<Queued>,
    /// Whether this socket is subscribed to the topic (not yet during `join`).
    pub(crate) subscribed: bool,
    /// This node's presence.
    pub(crate) presence: &'a Presence,
    /// Whether the channel may track presence: while joining and joined, not in `terminate`.
    pub(crate) tracking: bool,
    /// The latest broadcast of [`broadcast`](Context::broadcast) or
    /// [`broadcast_from`](Context::broadcast_from) in this callback, which the connection watches
    /// to pace itself (see the `backpressure` module).
    pub(crate) published: Option<Weak<Broadcast>>,
    /// The server's limits (presence key and meta sizes).
    pub(crate) limits: &'a crate::config::Limits,
}

/// Something a callback sends to its own client, kept in call order.
///
/// Kept to three words, the frame boxed: a step's queue grows to a batch of these under a
/// fan-out, and every busy connection keeps that room while broadcasts flow.
#[derive(Debug)]
pub(crate) enum Queued {
    /// A frame for this client (a push or a reply).
    Frame(Box<Frame>),
    /// A frame already encoded as text in the socket's serializer: a reply, written from the
    /// borrowed request while it is at hand rather than copied into a [`Frame`] first.
    Text(String),
    /// This client's copy of a broadcast it made: sent before the reply, as from Phoenix.
    Broadcast(Arc<Broadcast>),
    /// `presence_state` for this channel's topic, read when it is written (after the join
    /// subscribed); the frame every joiner of the topic shares until its next diff.
    PresenceState { topic: Box<str> },
}

impl Queued {
    /// A frame for this client.
    pub(crate) fn frame(frame: Frame) -> Self {
        Queued::Frame(Box::new(frame))
    }
}

impl std::fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("topic", &self.topic)
            .field("join_ref", &self.join_ref)
            .finish_non_exhaustive()
    }
}

impl Context<'_> {
    /// The channel's topic.
    pub fn topic(&self) -> &str {
        self.topic
    }

    /// The socket this channel belongs to.
    pub fn socket(&self) -> &Socket {
        self.socket
    }

    /// Pushes an event to this client on this channel (sent before the reply, if any).
    pub fn push(&mut self, event: impl Into<String>, payload: Payload) {
        self.pushes.push(Queued::frame(Frame::message(
            self.join_ref.map(str::to_owned),
            None,
            self.topic,
            event,
            payload,
        )));
    }

    /// Broadcasts to every subscriber of this topic, this socket included.
    ///
    /// This socket's copy is sent in order with its other pushes, before the reply (a channel
    /// still joining is not subscribed yet and gets no copy, as in Phoenix). On a topic that keeps
    /// [history](crate::History) the copy comes through the socket's queue instead, in position
    /// order with everyone else's broadcasts, so it may follow the reply.
    ///
    /// A client that broadcasts faster than its subscribers are written to is paced by the
    /// fan-out it causes: while many of its broadcasts still wait in subscriber queues, its
    /// replies are delayed and then its messages are no longer read, until the subscribers catch
    /// up. Order is kept throughout; a subscriber that stops reading delays nobody for long.
    pub fn broadcast(&mut self, event: impl Into<String>, payload: Payload) {
        let message = Arc::new(Broadcast::new(self.topic, event, payload));
        self.published = Some(Arc::downgrade(&message));
        if self.subscribed && self.pubsub.keeps_history(self.topic) {
            // Through this socket's queue like every other copy: a copy sent ahead would overtake
            // earlier positions still queued, and the client would resume from the wrong one.
            self.pubsub.broadcast(message, None);
            return;
        }
        self.pubsub
            .broadcast(message.clone(), Some(self.socket.conn_id));
        if self.subscribed {
            self.pushes.push(Queued::Broadcast(message));
        }
    }

    /// [`broadcast`](Self::broadcast), telling whether the broadcast was accepted: on a topic
    /// that keeps [history](crate::History), its store may refuse it (a Redis store while Redis
    /// is unreachable), and then it was delivered nowhere; the channel can reply with an error.
    /// Other broadcasts are accepted at once.
    ///
    /// ```
    /// # use alight_protocol::Payload;
    /// # use alight_server::{Context, HandleIn};
    /// async fn shout(ctx: &mut Context<'_>, payload: Payload) -> HandleIn {
    ///     match ctx.try_broadcast("shout", payload).await {
    ///         Ok(()) => HandleIn::ok(Payload::empty()),
    ///         Err(_) => HandleIn::error_reason("unavailable, try again"),
    ///     }
    /// }
    /// ```
    pub async fn try_broadcast(
        &mut self,
        event: impl Into<String>,
        payload: Payload,
    ) -> Result<(), crate::BroadcastError> {
        if !(self.subscribed && self.pubsub.keeps_history(self.topic)) {
            self.broadcast(event, payload);
            return Ok(());
        }
        let message = Arc::new(Broadcast::new(self.topic, event, payload));
        self.published = Some(Arc::downgrade(&message));
        self.pubsub.try_broadcast(message, None).await
    }

    /// Broadcasts to every subscriber of this topic except this socket.
    pub fn broadcast_from(&mut self, event: impl Into<String>, payload: Payload) {
        let message = Arc::new(Broadcast::new(self.topic, event, payload));
        self.published = Some(Arc::downgrade(&message));
        self.pubsub.broadcast(message, Some(self.socket.conn_id));
    }

    /// The PubSub, to publish on other topics.
    pub fn pubsub(&self) -> &Arc<dyn PubSub> {
        self.pubsub
    }

    /// Tracks `key` with `meta` (a JSON object) on this channel's topic; returns its `phx_ref`.
    ///
    /// The entry belongs to this channel: it leaves when the channel ends, whatever the reason.
    /// The other subscribers of the topic learn of it in the next `presence_diff`. Tracking works
    /// from `join` on (a refused or crashed join drops what it tracked), not from `terminate`.
    pub fn track<M: serde::Serialize + ?Sized>(
        &mut self,
        key: &str,
        meta: &M,
    ) -> Result<String, TrackError> {
        let topic = self.topic;
        self.track_on(topic, key, meta)
    }

    /// Tracks `key` with `meta` on another `topic`, owned by this channel all the same (Phoenix's
    /// `track(pid, topic, key, meta)`): a user's channel can show them in a lobby it never joined.
    pub fn track_on<M: serde::Serialize + ?Sized>(
        &mut self,
        topic: &str,
        key: &str,
        meta: &M,
    ) -> Result<String, TrackError> {
        let meta = self.checked_meta(key, meta)?;
        let owner = self.presence_owner()?;
        self.presence.track(owner, topic, key, meta)
    }

    /// Replaces the meta of `key`, tracked by this channel on its topic; returns the new
    /// `phx_ref`. Clients receive a leave of the old meta and a join of the new one, which carries
    /// `phx_ref_prev`.
    pub fn update<M: serde::Serialize + ?Sized>(
        &mut self,
        key: &str,
        meta: &M,
    ) -> Result<String, TrackError> {
        let topic = self.topic;
        self.update_on(topic, key, meta)
    }

    /// [`Context::update`] for an entry tracked with [`Context::track_on`].
    pub fn update_on<M: serde::Serialize + ?Sized>(
        &mut self,
        topic: &str,
        key: &str,
        meta: &M,
    ) -> Result<String, TrackError> {
        let meta = self.checked_meta(key, meta)?;
        let owner = self.presence_owner()?;
        self.presence.update(owner, topic, key, meta)
    }

    /// The meta's JSON, once `key` and it are found within the presence limits.
    fn checked_meta<M: serde::Serialize + ?Sized>(
        &self,
        key: &str,
        meta: &M,
    ) -> Result<std::sync::Arc<str>, TrackError> {
        let max = self.limits.max_presence_key_len;
        if key.len() > max {
            return Err(TrackError::KeyTooLong { max });
        }
        let meta = crate::presence::meta_text(meta)?;
        let max = self.limits.max_presence_meta_size;
        if meta.len() > max {
            return Err(TrackError::MetaTooLarge { max });
        }
        Ok(meta)
    }

    /// Stops tracking `key` on this channel's topic; returns whether this channel tracked it.
    pub fn untrack(&mut self, key: &str) -> bool {
        let topic = self.topic;
        self.untrack_on(topic, key)
    }

    /// [`Context::untrack`] for an entry tracked with [`Context::track_on`].
    pub fn untrack_on(&mut self, topic: &str, key: &str) -> bool {
        self.presence.untrack(self.owner(), topic, key)
    }

    /// Everyone on this channel's topic, as `presence_state` lists them.
    pub fn presence_list(&self) -> alight_protocol::presence::PresenceState {
        self.presence.list(self.topic)
    }

    /// Pushes `presence_state` with this topic's list to this client (phoenix.js's `Presence`
    /// waits for it before applying diffs).
    ///
    /// Call it once per join, typically right after [`Context::track`] in `join`. The list is
    /// read when the push is written, after the join has subscribed this socket to the topic, and
    /// is the topic's list as of its last `presence_diff`: changes still pending in the current
    /// batch window, this channel's own track included, reach the client in the next diff. Every
    /// joiner of a window gets the same frame, encoded once, in broadcast form (without a
    /// join_ref, which phoenix.js accepts); see [`Presence`](crate::Presence). A diff repeating
    /// what the list holds is harmless (phoenix.js matches metas by `phx_ref`).
    pub fn push_presence_state(&mut self) {
        self.pushes.push(Queued::PresenceState {
            topic: self.topic.into(),
        });
    }

    /// This node's presence (any topic's list, replication).
    pub fn presence(&self) -> &Presence {
        self.presence
    }

    fn owner(&self) -> Owner<'_> {
        Owner {
            conn: self.socket.conn_id,
            channel: self.topic,
        }
    }

    fn presence_owner(&self) -> Result<Owner<'_>, TrackError> {
        if self.tracking {
            Ok(self.owner())
        } else {
            Err(TrackError::ChannelEnding)
        }
    }
}

/// A channel implementation for a topic family.
///
/// One value serves every join of the family (share configuration, pools and handles in it); the
/// per-join state is [`Channel::State`].
pub trait Channel: Send + Sync + 'static {
    /// State of one joined channel.
    type State: Send + 'static;

    /// Accepts a join with `(state, reply response)` or refuses it.
    ///
    /// Pushes made through `ctx` here are sent right after the join's ok reply.
    fn join(
        &self,
        params: Payload,
        ctx: &mut Context<'_>,
    ) -> impl Future<Output = Result<(Self::State, Payload), JoinError>> + Send;

    /// Handles an event the client pushed.
    fn handle_in(
        &self,
        event: &str,
        payload: Payload,
        state: &mut Self::State,
        ctx: &mut Context<'_>,
    ) -> impl Future<Output = HandleIn> + Send;

    /// Events whose broadcasts go through [`Channel::handle_out`] for each subscriber.
    fn intercepts(&self) -> &[&str] {
        &[]
    }

    /// Decides what one subscriber receives of an intercepted broadcast.
    fn handle_out(
        &self,
        event: &str,
        payload: &Payload,
        state: &mut Self::State,
        ctx: &mut Context<'_>,
    ) -> impl Future<Output = Outgoing> + Send {
        let _ = (event, state, ctx);
        let _ = payload;
        std::future::ready(Outgoing::Forward)
    }

    /// Runs once when the channel ends, whatever the reason (not after a crash of this channel).
    fn terminate(
        &self,
        reason: Terminate,
        state: Self::State,
        ctx: &mut Context<'_>,
    ) -> impl Future<Output = ()> + Send {
        let _ = (reason, state, ctx);
        std::future::ready(())
    }
}

/// A joined channel with its state, behind a trait object.
pub(crate) trait Joined: Send {
    fn handle_in<'a>(
        &'a mut self,
        event: &'a str,
        payload: Payload,
        ctx: &'a mut Context<'_>,
    ) -> BoxFuture<'a, HandleIn>;

    fn intercepts(&self, event: &str) -> bool;

    fn handle_out<'a>(
        &'a mut self,
        event: &'a str,
        payload: &'a Payload,
        ctx: &'a mut Context<'_>,
    ) -> BoxFuture<'a, Outgoing>;

    fn terminate<'a>(
        self: Box<Self>,
        reason: Terminate,
        ctx: &'a mut Context<'_>,
    ) -> BoxFuture<'a, ()>;
}

struct JoinedChannel<C: Channel> {
    channel: Arc<C>,
    state: C::State,
}

impl<C: Channel> Joined for JoinedChannel<C> {
    fn handle_in<'a>(
        &'a mut self,
        event: &'a str,
        payload: Payload,
        ctx: &'a mut Context<'_>,
    ) -> BoxFuture<'a, HandleIn> {
        Box::pin(self.channel.handle_in(event, payload, &mut self.state, ctx))
    }

    fn intercepts(&self, event: &str) -> bool {
        self.channel.intercepts().contains(&event)
    }

    fn handle_out<'a>(
        &'a mut self,
        event: &'a str,
        payload: &'a Payload,
        ctx: &'a mut Context<'_>,
    ) -> BoxFuture<'a, Outgoing> {
        Box::pin(
            self.channel
                .handle_out(event, payload, &mut self.state, ctx),
        )
    }

    fn terminate<'a>(
        self: Box<Self>,
        reason: Terminate,
        ctx: &'a mut Context<'_>,
    ) -> BoxFuture<'a, ()> {
        let JoinedChannel { channel, state } = *self;
        tracing::debug!(topic = ctx.topic, ?reason, "left");
        Box::pin(async move { channel.terminate(reason, state, ctx).await })
    }
}

/// A join's outcome: the joined channel and the reply response, or the refusal.
pub(crate) type JoinResult = Result<(Box<dyn Joined>, Payload), JoinError>;

/// A registered channel implementation, behind a trait object.
pub(crate) trait DynChannel: Send + Sync {
    fn join<'a>(
        self: Arc<Self>,
        params: Payload,
        ctx: &'a mut Context<'_>,
    ) -> BoxFuture<'a, JoinResult>;
}

/// A [`Channel`] as a [`DynChannel`].
pub(crate) struct Erased<C: Channel>(pub(crate) Arc<C>);

impl<C: Channel> DynChannel for Erased<C> {
    fn join<'a>(
        self: Arc<Self>,
        params: Payload,
        ctx: &'a mut Context<'_>,
    ) -> BoxFuture<'a, JoinResult> {
        Box::pin(async move {
            let (state, reply) = match self.0.join(params, ctx).await {
                Ok(joined) => joined,
                Err(refused) => {
                    tracing::debug!(topic = ctx.topic, response = ?refused.response.as_json(), "join refused");
                    return Err(refused);
                }
            };
            tracing::debug!(topic = ctx.topic, "joined");
            let joined: Box<dyn Joined> = Box::new(JoinedChannel {
                channel: self.0.clone(),
                state,
            });
            Ok((joined, reply))
        })
    }
}
