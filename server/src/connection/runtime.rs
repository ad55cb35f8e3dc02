//! The channel runtime: the channels one socket has joined, and the callbacks that run them.
//!
//! It receives decoded frames from the client ([`dispatch`](ChannelRuntime::dispatch)) and
//! messages from the registry ([`receive`](ChannelRuntime::receive)), runs `join`, `handle_in`,
//! `handle_out` and `terminate` one at a time, as a Phoenix channel process does, and queues what
//! results for the client ([`queued`](ChannelRuntime::queued), the first stage of the output).
//! It never touches the socket.

use std::borrow::Cow;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use alight_protocol::{BodyRef, Direction, Frame, FrameRef, Payload, PayloadRef, event};
use futures_util::FutureExt;
use tokio::time::Instant;
use tracing::{Instrument, debug, debug_span, warn};

use super::joined::{ChannelSlot, Channels, JoinBudget};
use crate::broadcast::Broadcast;
use crate::channel::{BoxFuture, Context, HandleIn, Outgoing, Queued, Terminate, reason_payload};
use crate::history::{Resume, skips};
use crate::jwt::Claims;
use crate::presence::Owner;
use crate::registry::{Close, ConnHandle, Outbound, Push};
use crate::socket::Socket;
use crate::state::ServerState;

/// The rate budgets of a socket.
#[derive(Clone, Copy)]
enum Budget {
    Joins,
    Pushes,
}

/// The event that refreshes a socket's JWT in band, as Supabase realtime-js sends it.
const ACCESS_TOKEN: &str = "access_token";

/// The reason of the join error sent instead of a reply over
/// [`Limits::max_join_reply_size`](crate::Limits::max_join_reply_size).
const JOIN_REPLY_TOO_LARGE: &str = "join reply too large";

/// The size of a payload as sent: its JSON text or its bytes.
fn payload_len(payload: &Payload) -> usize {
    payload
        .as_json()
        .map(str::len)
        .or_else(|| payload.as_binary().map(bytes::Bytes::len))
        .unwrap_or(0)
}

/// A panic caught in a channel callback.
type Panic = Box<dyn std::any::Any + Send>;

/// The addressing of an incoming message, borrowed from it for its reply.
#[derive(Clone, Copy)]
struct Addressed<'m> {
    join_ref: Option<&'m str>,
    msg_ref: Option<&'m str>,
    topic: &'m str,
}

/// Where in its life a channel is when a callback runs: what its [`Context`] allows.
#[derive(Clone, Copy)]
enum Phase {
    /// `join`: not subscribed yet (no copy of its own broadcasts), may track presence.
    Joining,
    /// `handle_in`, `handle_out`: subscribed, may track presence.
    Joined,
    /// `terminate`: unsubscribed, may not track presence.
    Ending,
}

/// How a broadcast reaches the client, as [`ChannelRuntime::delivery`] decides.
pub(super) enum Delivery {
    /// As its shared bytes, with no callback to run.
    Shared,
    /// Through its channel's `handle_out` ([`ChannelRuntime::receive`] runs it).
    HandleOut,
    /// Not at all: the socket has no channel on its topic any more, or the client of a history
    /// topic already has it.
    Dropped,
}

/// The channels of one socket and everything they send it.
pub(super) struct ChannelRuntime {
    pub(super) state: Arc<ServerState>,
    pub(super) socket: Socket,
    /// This socket's queue in the registry, to subscribe it to the topics it joins.
    handle: Arc<ConnHandle>,
    channels: Channels,
    joins: JoinBudget,
    pushes: JoinBudget,
    /// Joins and pushes refused for their rate since the last one allowed.
    rate_strikes: u32,
    /// What the current step sends the client, in order: the output's first stage.
    pub(super) queued: Vec<Queued>,
    /// The latest broadcast the current step published, which backpressure paces this socket on.
    pub(super) published: Option<Weak<Broadcast>>,
    /// Set when an `access_token` event replaced the socket's claims; the driver moves its
    /// expiry deadline and clears it.
    pub(super) token_refreshed: bool,
    /// When the message being dispatched was read (set by the driver, which reads the clock
    /// once per message): the rate budgets count from it.
    pub(super) received_at: Instant,
    /// The routes the last callback subscribed, until they are recorded in its channel's slot
    /// (or unsubscribed, when the channel did not join or has ended).
    new_routes: Vec<String>,
}

impl ChannelRuntime {
    pub(super) fn new(state: Arc<ServerState>, socket: Socket, handle: Arc<ConnHandle>) -> Self {
        let joins = JoinBudget::new(state.config.limits().joins_per_second);
        let pushes = JoinBudget::new(state.config.limits().pushes_per_second);
        ChannelRuntime {
            state,
            socket,
            handle,
            channels: Channels::default(),
            joins,
            pushes,
            rate_strikes: 0,
            queued: Vec::new(),
            published: None,
            token_refreshed: false,
            received_at: Instant::now(),
            new_routes: Vec::new(),
        }
    }

    /// Handles a frame from the client, borrowed from its message: only what a channel keeps
    /// (the payload it is handed, a joined topic) is copied.
    pub(super) async fn dispatch(&mut self, frame: FrameRef<'_>) {
        let BodyRef::Event { event, payload } = &frame.body else {
            debug!(topic = %frame.topic, "ignoring a reply sent by the client");
            return;
        };
        let msg = Addressed {
            join_ref: frame.join_ref.as_deref(),
            msg_ref: frame.msg_ref.as_deref(),
            topic: &frame.topic,
        };
        match &**event {
            event::HEARTBEAT if msg.topic == event::PHOENIX_TOPIC => {
                self.reply(msg, "ok", PayloadRef::EMPTY);
            }
            event::JOIN => self.join(msg, payload.to_payload()).await,
            ACCESS_TOKEN if self.state.config.jwt_auth().is_some() => {
                self.refresh_token(msg, payload.to_payload()).await;
            }
            event::LEAVE => self.leave(msg).await,
            other => self.handle_in(msg, other, payload.to_payload()).await,
        }
    }

    /// Handles a message the registry queued for this socket; a close request is given back.
    pub(super) async fn receive(&mut self, message: Outbound) -> Option<Box<Close>> {
        match message {
            Outbound::Broadcast(broadcast) => {
                if let Some(intercepted) = self.queue_broadcast(broadcast) {
                    self.deliver(intercepted).await;
                }
            }
            Outbound::Push(push) => {
                let Push {
                    topic,
                    event,
                    payload,
                } = *push;
                if let Some(slot) = self.channels.get(&topic) {
                    let join_ref = slot.join_ref.clone();
                    self.queued.push(Queued::frame(Frame::message(
                        join_ref, None, topic, event, payload,
                    )));
                }
            }
            Outbound::Close(close) => return Some(close),
        }
        None
    }

    /// Ends every channel, for `reason`.
    pub(super) async fn terminate_all(&mut self, reason: Terminate) {
        let topics = self.channels.topics();
        for topic in topics {
            if let Some(slot) = self.channels.remove(&topic) {
                self.unsubscribe(&topic, &slot.routes);
                self.run_terminate(&topic, slot, reason).await;
            }
        }
    }

    async fn join(&mut self, msg: Addressed<'_>, params: Payload) {
        let limits = *self.state.config.limits();
        // A second join of a joined topic replaces the first (its phx_close follows our reply).
        let replaced_ref = match self.channels.remove(msg.topic) {
            Some(old) => {
                debug!(topic = %msg.topic, "duplicate join: closing the previous channel");
                self.unsubscribe(msg.topic, &old.routes);
                let old_ref = old.join_ref.clone();
                self.run_terminate(msg.topic, old, Terminate::Rejoin).await;
                Some(old_ref)
            }
            None => None,
        };

        // As Phoenix: the topic is looked up first, the limits apply to known topics only.
        let handler = self.state.channels.route(msg.topic).cloned();
        let refusal = if handler.is_none() {
            None
        } else if self.channels.len() >= limits.max_channels_per_socket {
            Some("too many channels joined")
        } else if !self.rate_allows(Budget::Joins) {
            Some("too many joins")
        } else if !self.token_allows(msg.topic) {
            Some("unauthorized")
        } else {
            None
        };
        match (handler, refusal) {
            (None, _) => {
                debug!(topic = %msg.topic, "unmatched topic");
                self.reply_unmatched(msg);
            }
            (Some(_), Some(reason)) => self.reply(msg, "error", reason_payload(reason).to_ref()),
            (Some(handler), None) => {
                // Subscribe before `join` runs, so nothing broadcast after the join reads its
                // snapshot is missed: those broadcasts wait in this socket's queue, which is only
                // read after the reply below, and are dropped if the join fails.
                self.state.registry.subscribe(msg.topic, &self.handle);
                // A history topic's position is read now, subscribed and before `join` runs.
                let mut resume = match self.state.histories.family(msg.topic) {
                    Some(family) => Some(
                        Resume::read(&**self.state.histories.store(), family, msg.topic, &params)
                            .await,
                    ),
                    None => None,
                };
                let (joined, pushes) = self
                    .with_context(msg.topic, msg.join_ref, Phase::Joining, |_, ctx| {
                        handler.join(params, ctx)
                    })
                    .await;
                match joined {
                    Ok(Ok((joined, response)))
                        if payload_len(&response) > limits.max_join_reply_size =>
                    {
                        // Joined, but the reply cannot go out: end the channel as refused.
                        warn!(topic = %msg.topic, bytes = payload_len(&response), "join reply over its limit");
                        self.state.metrics.channels.inc();
                        let routes = std::mem::take(&mut self.new_routes);
                        self.unsubscribe(msg.topic, &routes);
                        let slot = ChannelSlot {
                            join_ref: msg.join_ref.map(str::to_owned),
                            joined,
                            through: None,
                            routes: Vec::new(),
                        };
                        self.run_terminate(msg.topic, slot, Terminate::Stop).await;
                        self.reply(msg, "error", reason_payload(JOIN_REPLY_TOO_LARGE).to_ref());
                    }
                    Ok(Ok((joined, response))) => {
                        self.state.metrics.channels.inc();
                        self.channels.insert(
                            msg.topic.to_owned(),
                            ChannelSlot {
                                join_ref: msg.join_ref.map(str::to_owned),
                                joined,
                                through: None,
                                routes: std::mem::take(&mut self.new_routes),
                            },
                        );
                        match &mut resume {
                            Some(resume) => {
                                self.reply(msg, "ok", resume.response(response).to_ref());
                                let metrics = &self.state.metrics;
                                match resume.recovered() {
                                    Some(true) => metrics.resumes_recovered.inc(),
                                    Some(false) => metrics.resumes_not_recovered.inc(),
                                    None => 0,
                                };
                                // What the client missed, as ordinary broadcasts, before anything
                                // queued since the join subscribed.
                                let replay = resume.take_replay();
                                self.state.metrics.replayed.inc_by(replay.len() as u64);
                                for missed in replay {
                                    if let Some(intercepted) = self.queue_broadcast(missed) {
                                        self.deliver(intercepted).await;
                                    }
                                }
                                if let Some(slot) = self.channels.get_mut(msg.topic) {
                                    slot.through = resume.through();
                                }
                            }
                            None => self.reply(msg, "ok", response.to_ref()),
                        }
                        // Pushes made while joining follow the ok reply.
                        self.queue_pushes(pushes).await;
                    }
                    Ok(Err(refused)) => {
                        let routes = std::mem::take(&mut self.new_routes);
                        self.leave_topic(msg.topic, &routes);
                        self.reply(msg, "error", refused.response().to_ref());
                    }
                    Err(_) => {
                        let routes = std::mem::take(&mut self.new_routes);
                        self.leave_topic(msg.topic, &routes);
                        warn!(topic = %msg.topic, "join crashed");
                        self.reply(msg, "error", reason_payload("join crashed").to_ref());
                    }
                }
            }
        }
        if let Some(old_ref) = replaced_ref {
            self.channel_event(msg.topic, old_ref, event::CLOSE, Payload::empty());
        }
    }

    /// Takes one from a rate budget, counting a refusal as a strike.
    fn rate_allows(&mut self, budget: Budget) -> bool {
        let allowed = match budget {
            Budget::Joins => self.joins.take(self.received_at),
            Budget::Pushes => self.pushes.take(self.received_at),
        };
        if allowed {
            self.rate_strikes = 0;
        } else {
            self.rate_strikes = self.rate_strikes.saturating_add(1);
        }
        allowed
    }

    /// Whether the client kept sending past its rate limits long enough to be cut off.
    pub(super) fn rate_abused(&self) -> bool {
        self.rate_strikes >= self.state.config.limits().max_rate_strikes.max(1)
    }

    /// Whether the socket's token (if JWT auth is on) allows `topic`.
    fn token_allows(&self, topic: &str) -> bool {
        match (self.state.config.jwt_auth(), self.socket.assign::<Claims>()) {
            (Some(auth), Some(claims)) => auth.allows(claims, topic),
            _ => true,
        }
    }

    /// When the socket's token expires, if JWT auth is on.
    pub(super) fn token_expiry(&self) -> Option<Duration> {
        self.state.config.jwt_auth()?;
        let claims = self.socket.assign::<Claims>()?;
        Some(claims.remaining(SystemTime::now()))
    }

    /// `access_token {"access_token": t}`: verifies `t`; if valid, its claims replace the socket's
    /// and the channels they no longer allow are closed (see the `jwt` module).
    async fn refresh_token(&mut self, msg: Addressed<'_>, payload: Payload) {
        #[derive(serde::Deserialize)]
        struct Refresh {
            access_token: String,
        }
        let Some(auth) = self.state.config.jwt_auth().cloned() else {
            return;
        };
        let verified = payload
            .deserialize::<Refresh>()
            .map_err(|_| "access_token payload must be {\"access_token\": string}".to_owned())
            .and_then(|refresh| {
                auth.verify(&refresh.access_token)
                    .map_err(|err| err.to_string())
            });
        let claims = match verified {
            Ok(claims) => claims,
            Err(reason) => {
                debug!(%reason, "token refresh refused");
                self.reply(msg, "error", reason_payload(&reason).to_ref());
                return;
            }
        };
        self.socket.assigns.insert(claims);
        self.token_refreshed = true;
        let revoked: Vec<String> = self
            .channels
            .topics()
            .into_iter()
            .filter(|topic| !self.token_allows(topic))
            .collect();
        // The reply first: its channel may be one of those closed.
        self.reply(msg, "ok", PayloadRef::EMPTY);
        for topic in revoked {
            if let Some(slot) = self.channels.remove(&topic) {
                debug!(%topic, "no longer allowed by the refreshed token");
                self.unsubscribe(&topic, &slot.routes);
                let join_ref = slot.join_ref.clone();
                self.run_terminate(&topic, slot, Terminate::Leave).await;
                self.channel_event(&topic, join_ref, event::CLOSE, Payload::empty());
            }
        }
    }

    async fn leave(&mut self, msg: Addressed<'_>) {
        let Some(slot) = self.channels.get(msg.topic) else {
            // Nothing to leave: say ok, as Phoenix does.
            self.reply(msg, "ok", PayloadRef::EMPTY);
            return;
        };
        if slot.join_ref.as_deref() != msg.join_ref {
            debug!(topic = %msg.topic, "ignoring a leave with a stale join_ref");
            return;
        }
        if let Some(slot) = self.channels.remove(msg.topic) {
            self.unsubscribe(msg.topic, &slot.routes);
            let join_ref = slot.join_ref.clone();
            self.run_terminate(msg.topic, slot, Terminate::Leave).await;
            self.reply(msg, "ok", PayloadRef::EMPTY);
            self.channel_event(msg.topic, join_ref, event::CLOSE, Payload::empty());
        }
    }

    async fn handle_in(&mut self, msg: Addressed<'_>, event: &str, payload: Payload) {
        let Some(slot) = self.channels.get(msg.topic) else {
            debug!(topic = %msg.topic, %event, "push to a topic this socket has not joined");
            self.reply_unmatched(msg);
            return;
        };
        if slot.join_ref.as_deref() != msg.join_ref {
            debug!(topic = %msg.topic, %event, "ignoring a message with a stale join_ref");
            return;
        }
        if !self.rate_allows(Budget::Pushes) {
            self.reply(msg, "error", reason_payload("too many pushes").to_ref());
            return;
        }
        // The callback runs on its slot directly, beside the context's borrows of the other
        // fields: no copy of the topic and no boxed closure per push.
        let mut pushes = Vec::new();
        let ChannelRuntime {
            state,
            socket,
            handle,
            channels,
            ..
        } = &mut *self;
        let Some(slot) = channels.get_mut(msg.topic) else {
            return;
        };
        let mut ctx = context(
            state,
            socket,
            handle,
            msg.topic,
            msg.join_ref,
            Phase::Joined,
            &mut pushes,
        );
        let result = catch_panic(msg.topic, slot.joined.handle_in(event, payload, &mut ctx)).await;
        let published = ctx.published.take();
        slot.routes.append(&mut ctx.routes);
        if let Some(latest) = published {
            self.published = Some(latest);
        }
        self.queue_pushes(pushes).await;
        match result {
            Ok(HandleIn::Reply { status, response }) => {
                self.reply(msg, &status, response.to_ref());
            }
            Ok(HandleIn::NoReply) => {}
            Ok(HandleIn::Stop { reply }) => {
                if let Some((status, response)) = reply {
                    self.reply(msg, &status, response.to_ref());
                }
                if let Some(slot) = self.channels.remove(msg.topic) {
                    self.unsubscribe(msg.topic, &slot.routes);
                    let join_ref = slot.join_ref.clone();
                    self.run_terminate(msg.topic, slot, Terminate::Stop).await;
                    self.channel_event(msg.topic, join_ref, event::CLOSE, Payload::empty());
                }
            }
            Err(_) => self.crash(msg.topic),
        }
    }

    /// A handler panicked: drop the channel without `terminate` and tell the client.
    fn crash(&mut self, topic: &str) {
        warn!(%topic, "channel crashed");
        if let Some(slot) = self.channels.remove(topic) {
            self.unsubscribe(topic, &slot.routes);
            self.channel_event(
                topic,
                slot.join_ref,
                event::ERROR,
                reason_payload("channel_crash"),
            );
        }
    }

    /// The channel on `topic` ended: no more broadcasts (on its topic or its `routes`), and what
    /// it tracked leaves.
    fn unsubscribe(&self, topic: &str, routes: &[String]) {
        self.leave_topic(topic, routes);
        self.state.metrics.channels.dec();
    }

    /// Undoes a join's subscriptions (its topic and `routes`) and presence, for a channel that
    /// ended or never joined.
    fn leave_topic(&self, topic: &str, routes: &[String]) {
        self.state.registry.unsubscribe(topic, self.socket.conn_id);
        for route in routes {
            self.state.registry.unsubscribe(route, self.socket.conn_id);
        }
        self.state.presence.untrack_owner(Owner {
            conn: self.socket.conn_id,
            channel: topic,
        });
    }

    async fn run_terminate(&mut self, topic: &str, slot: ChannelSlot, reason: Terminate) {
        let join_ref = slot.join_ref.clone();
        let (result, pushes) = self
            .with_context(topic, join_ref.as_deref(), Phase::Ending, |_, ctx| {
                slot.joined.terminate(reason, ctx)
            })
            .await;
        self.queue_pushes(pushes).await;
        if result.is_err() {
            warn!(%topic, "terminate panicked");
        }
    }

    /// How a broadcast for this socket reaches its client. A history topic's mark is checked
    /// (and cleared once passed) here, so ask once per broadcast, in the order they came.
    pub(super) fn delivery(&mut self, broadcast: &Broadcast) -> Delivery {
        let frame = broadcast.frame();
        let Some(slot) = self.channels.get_mut(&frame.topic) else {
            // Left (or crashed) after it was queued.
            return Delivery::Dropped;
        };
        if slot.through.is_some() && skips(&mut slot.through, broadcast) {
            return Delivery::Dropped;
        }
        if slot.joined.intercepts(frame.event()) {
            return Delivery::HandleOut;
        }
        Delivery::Shared
    }

    /// Queues a broadcast for this client as the shared bytes, unless its channel intercepts the
    /// event: then it is given back for [`deliver`](Self::deliver). The common case thus costs no
    /// boxed future.
    fn queue_broadcast(&mut self, broadcast: Arc<Broadcast>) -> Option<Arc<Broadcast>> {
        match self.delivery(&broadcast) {
            Delivery::Shared => self.queued.push(Queued::Broadcast(broadcast)),
            Delivery::HandleOut => return Some(broadcast),
            Delivery::Dropped => {}
        }
        None
    }

    /// Queues a broadcast for this client: the shared bytes, or what the channel's `handle_out`
    /// makes of it when it intercepts the event.
    ///
    /// Boxed because `handle_out` may broadcast again, which comes back here.
    pub(super) fn deliver(&mut self, broadcast: Arc<Broadcast>) -> BoxFuture<'_, ()> {
        Box::pin(self.deliver_inner(broadcast))
    }

    async fn deliver_inner(&mut self, broadcast: Arc<Broadcast>) {
        let frame = broadcast.frame();
        let Some(slot) = self.channels.get(&frame.topic) else {
            // Left (or crashed) after this was queued.
            return;
        };
        if !slot.joined.intercepts(frame.event()) {
            self.queued.push(Queued::Broadcast(broadcast));
            return;
        }
        let join_ref = slot.join_ref.clone();
        let topic = frame.topic.clone();
        let event = frame.event().to_owned();
        let shared = broadcast.clone();
        let (decided, pushes) = self
            .with_context(
                &topic,
                join_ref.as_deref(),
                Phase::Joined,
                |channels, ctx| {
                    Box::pin(async move {
                        let frame = shared.frame();
                        match channels.get_mut(&frame.topic) {
                            Some(slot) => Some(
                                slot.joined
                                    .handle_out(frame.event(), frame.payload(), ctx)
                                    .await,
                            ),
                            None => None,
                        }
                    })
                },
            )
            .await;
        self.queue_pushes(pushes).await;
        match decided {
            Ok(Some(Outgoing::Push(payload))) => {
                // The pushed-on broadcast keeps its position (a history topic's, or one a
                // channel set), so the client can still resume from it.
                let position = broadcast.encoded().position().map(str::to_owned);
                self.queued.push(Queued::frame(Frame::message(
                    join_ref, position, topic, event, payload,
                )));
            }
            Ok(Some(Outgoing::Forward)) => self.queued.push(Queued::Broadcast(broadcast)),
            Ok(Some(Outgoing::Skip) | None) => {}
            Err(_) => self.crash(&topic),
        }
    }

    /// Queues what a callback pushed, in order: this socket's copies of its own broadcasts go
    /// through their intercepts.
    async fn queue_pushes(&mut self, pushes: Vec<Queued>) {
        for queued in pushes {
            match queued {
                queued @ (Queued::Frame(_) | Queued::Text(_) | Queued::PresenceState { .. }) => {
                    self.queued.push(queued);
                }
                Queued::Broadcast(broadcast) => {
                    self.state.metrics.deliveries.inc();
                    if let Some(intercepted) = self.queue_broadcast(broadcast) {
                        self.deliver(intercepted).await;
                    }
                }
            }
        }
    }

    /// Runs `call` with a [`Context`] for `topic` in `phase`, catching a panic: its result and
    /// what it pushed, in order, for [`queue_pushes`](Self::queue_pushes). Records its latest
    /// broadcast for backpressure.
    async fn with_context<T>(
        &mut self,
        topic: &str,
        join_ref: Option<&str>,
        phase: Phase,
        call: impl for<'c> FnOnce(&'c mut Channels, &'c mut Context<'_>) -> BoxFuture<'c, T>,
    ) -> (Result<T, Panic>, Vec<Queued>) {
        let mut pushes = Vec::new();
        let mut ctx = context(
            &self.state,
            &self.socket,
            &self.handle,
            topic,
            join_ref,
            phase,
            &mut pushes,
        );
        let result = catch_panic(topic, call(&mut self.channels, &mut ctx)).await;
        if let Some(latest) = ctx.published.take() {
            self.published = Some(latest);
        }
        let mut routes = std::mem::take(&mut ctx.routes);
        drop(ctx);
        if matches!(phase, Phase::Joining) {
            // Recorded in the slot once the join succeeds, unsubscribed if it does not.
            self.new_routes.append(&mut routes);
        } else if let Some(slot) = self.channels.get_mut(topic) {
            slot.routes.append(&mut routes);
        } else {
            for route in &routes {
                self.state.registry.unsubscribe(route, self.socket.conn_id);
            }
        }
        (result, pushes)
    }

    fn reply(&mut self, to: Addressed<'_>, status: &str, response: PayloadRef<'_>) {
        self.reply_with_join_ref(to.join_ref, to, status, response);
    }

    /// The reply to a message for a topic this socket has not joined: Phoenix sends it without a
    /// join_ref.
    fn reply_unmatched(&mut self, to: Addressed<'_>) {
        let reason = reason_payload("unmatched topic");
        self.reply_with_join_ref(None, to, "error", reason.to_ref());
    }

    /// Queues a reply, encoded at once from the borrowed request: a text frame is written
    /// straight into its message's buffer. A binary response (a binary frame on V2), or one the
    /// serializer cannot carry, is queued as a frame like any push, for the driver to encode and
    /// count.
    fn reply_with_join_ref(
        &mut self,
        join_ref: Option<&str>,
        to: Addressed<'_>,
        status: &str,
        response: PayloadRef<'_>,
    ) {
        // Messages without a ref expect no reply.
        let Some(msg_ref) = to.msg_ref else {
            return;
        };
        let reply = FrameRef {
            join_ref: join_ref.map(Cow::Borrowed),
            msg_ref: Some(Cow::Borrowed(msg_ref)),
            topic: Cow::Borrowed(to.topic),
            body: BodyRef::Reply {
                status: Cow::Borrowed(status),
                response,
            },
        };
        match self
            .socket
            .serializer
            .encode_text(Direction::ToClient, &reply)
        {
            Ok(Some(text)) => self.queued.push(Queued::Text(text)),
            Ok(None) | Err(_) => self.queued.push(Queued::frame(reply.into_owned())),
        }
    }

    /// `phx_close` or `phx_error` for a channel: `ref` is the join_ref, as Phoenix sends them.
    fn channel_event(
        &mut self,
        topic: &str,
        join_ref: Option<String>,
        event: &str,
        payload: Payload,
    ) {
        self.queued.push(Queued::frame(Frame::message(
            join_ref.clone(),
            join_ref,
            topic,
            event,
            payload,
        )));
    }
}

/// A [`Context`] for a callback on `topic` in `phase`, from the runtime's fields it borrows.
fn context<'a>(
    state: &'a ServerState,
    socket: &'a Socket,
    handle: &'a Arc<ConnHandle>,
    topic: &'a str,
    join_ref: Option<&'a str>,
    phase: Phase,
    pushes: &'a mut Vec<Queued>,
) -> Context<'a> {
    Context {
        topic,
        join_ref,
        socket,
        pubsub: &state.pubsub,
        pushes,
        subscribed: matches!(phase, Phase::Joined),
        presence: &state.presence,
        tracking: !matches!(phase, Phase::Ending),
        published: None,
        limits: state.config.limits(),
        registry: &state.registry,
        handle,
        routes: Vec::new(),
    }
}

/// Runs a channel callback in a span for its topic, catching a panic.
async fn catch_panic<T>(topic: &str, call: impl Future<Output = T>) -> Result<T, Panic> {
    let span = debug_span!("channel", %topic);
    AssertUnwindSafe(call).catch_unwind().instrument(span).await
}
