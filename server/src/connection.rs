//! One WebSocket connection: reads frames, runs its channels, writes what they and the PubSub send.
//!
//! Everything about a socket happens on its own task, in order: decoding a frame, running the
//! channel callback it addresses, and writing the replies and pushes that result. Broadcasts arrive
//! through the bounded outbound queue the registry fills; the task drains it in batches, feeding
//! the sink and flushing once per batch.
//!
//! The task ends when the client goes away, sends a frame that does not decode, stays silent past
//! the idle timeout, overflows its queue, is disconnected by socket id, or the server shuts down;
//! each ends with the close code listed in [`close_code`](crate::close_code).

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Weak};
use std::time::Duration;

use alight_protocol::{Body, Direction, Frame, Payload, SharedBroadcast, Wire, event};
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;
use tracing::{Instrument, debug, debug_span, info_span, warn};

use crate::channel::{
    BoxFuture, Context, HandleIn, Joined, Outgoing, Queued, Terminate, reason_payload,
};
use crate::close_code;
use crate::endpoint::Hub;
use crate::gate::Gated;
use crate::held::HeldOutput;
use crate::history::{Position, Resume, skips};
use crate::pacing::Pacing;
use crate::registry::{ConnHandle, Inbox, Outbound, Push};
use crate::socket::Socket;

/// Outbound messages written per flush at most.
const BATCH: usize = 64;
/// How long a closing socket may take to accept its close frame.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// A joined channel on this socket.
struct ChannelSlot {
    join_ref: Option<String>,
    joined: Box<dyn Joined>,
    /// On a history topic just joined: the position its join read. Queued broadcasts up to it
    /// are ones the client has (from the replay, or from before it subscribed).
    through: Option<Position>,
}

/// The channels joined on this socket, by topic.
///
/// A `Vec` rather than a `HashMap`: a socket joins one to a few topics (at most
/// [`max_channels_per_socket`](crate::Limits::max_channels_per_socket)), and an idle socket's
/// single channel then costs one slot instead of a hash table's four.
#[derive(Default)]
struct Channels(Vec<(String, ChannelSlot)>);

impl Channels {
    fn get(&self, topic: &str) -> Option<&ChannelSlot> {
        self.0
            .iter()
            .find(|(t, _)| t == topic)
            .map(|(_, slot)| slot)
    }

    fn get_mut(&mut self, topic: &str) -> Option<&mut ChannelSlot> {
        self.0
            .iter_mut()
            .find(|(t, _)| t == topic)
            .map(|(_, slot)| slot)
    }

    fn remove(&mut self, topic: &str) -> Option<ChannelSlot> {
        let index = self.0.iter().position(|(t, _)| t == topic)?;
        let (_, slot) = self.0.swap_remove(index);
        if self.0.is_empty() {
            self.0 = Vec::new();
        }
        Some(slot)
    }

    fn insert(&mut self, topic: String, slot: ChannelSlot) {
        if let Some(existing) = self.get_mut(&topic) {
            *existing = slot;
            return;
        }
        // Grow one slot at a time while small: most sockets join one to three channels.
        if self.0.len() == self.0.capacity() && self.0.len() < 4 {
            self.0.reserve_exact(1);
        }
        self.0.push((topic, slot));
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    fn topics(&self) -> Vec<String> {
        self.0.iter().map(|(topic, _)| topic.clone()).collect()
    }
}

/// How a step of the loop ended.
enum Step {
    Continue,
    /// Close the socket with this code and reason.
    Close(u16, String),
    /// The client is gone; nothing more to send.
    Gone,
    /// The client sent a close frame: answer it (tungstenite queued the echo) and stop.
    PeerClosed,
}

/// Token bucket for joins per second.
struct JoinBudget {
    tokens: f64,
    rate: f64,
    last: Instant,
}

impl JoinBudget {
    fn new(per_second: u32) -> Self {
        let rate = f64::from(per_second.max(1));
        JoinBudget {
            tokens: rate,
            rate,
            last: Instant::now(),
        }
    }

    fn take(&mut self) -> bool {
        let now = Instant::now();
        let elapsed = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.rate);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

struct Connection {
    hub: Arc<Hub>,
    socket: Socket,
    handle: Arc<ConnHandle>,
    channels: Channels,
    joins: JoinBudget,
    /// What the current step sends, in order; encoded and written at its end.
    pending: Vec<Queued>,
    /// Encoded messages waiting for the sink.
    out: Vec<Message>,
    /// The latest broadcast a callback of this step made.
    published: Option<Weak<SharedBroadcast>>,
    /// This socket's recent broadcasts, to pace it to its subscribers.
    pacing: Pacing,
    /// Output waiting for this socket's broadcasts to reach their subscribers.
    held: HeldOutput,
}

/// Runs a connection to its end. `permit` holds its place under the connection limit.
///
/// Not an `async fn`: the socket is split here, before the future is built, so that the future
/// neither keeps a second copy of its arguments nor the room of the unsplit `WebSocket`, for the
/// whole life of the connection.
pub(crate) fn run(
    hub: Arc<Hub>,
    ws: WebSocket,
    socket: Socket,
    permit: OwnedSemaphorePermit,
) -> impl Future<Output = ()> + Send {
    let span = info_span!(
        "socket",
        conn = socket.conn_id,
        id = socket.id.as_deref().unwrap_or("")
    );
    let (mut sink, stream) = ws.split();
    // Set up here rather than in the future: what is only needed to build the connection then
    // takes no room in it. The future is polled as soon as it is built, so nothing changes order.
    let limits = hub.config.limits();
    let idle_timeout = limits.idle_timeout;
    let (handle, rx) = ConnHandle::new(socket.conn_id, limits.outbound_queue);
    if let Some(id) = &socket.id {
        hub.registry.register_socket(id, &handle);
    }
    hub.metrics.connections.inc();
    hub.memory.opened();
    span.in_scope(|| debug!("connected"));
    let mut conn = Connection {
        hub: hub.clone(),
        socket,
        handle,
        channels: Channels::default(),
        joins: JoinBudget::new(limits.joins_per_second),
        pending: Vec::new(),
        out: Vec::new(),
        published: None,
        pacing: Pacing::default(),
        held: HeldOutput::default(),
    };
    async move {
        let step = conn.drive(&mut sink, stream, rx, idle_timeout).await;
        let reason = match step {
            Step::Close(code, reason) => {
                debug!(code, %reason, "closing");
                let frame = CloseFrame {
                    code,
                    reason: Utf8Bytes::from(truncate(&reason, 123)),
                };
                let _ = tokio::time::timeout(CLOSE_TIMEOUT, sink.send(Message::Close(Some(frame))))
                    .await;
                if code == close_code::SERVICE_RESTART {
                    Terminate::Shutdown
                } else {
                    Terminate::Closed
                }
            }
            Step::PeerClosed => {
                // Flushing sends the close reply tungstenite queued when the client's close arrived.
                let _ = tokio::time::timeout(CLOSE_TIMEOUT, sink.close()).await;
                Terminate::Closed
            }
            Step::Gone | Step::Continue => Terminate::Closed,
        };
        // Boxed, as the callbacks in `drive`: only a closing connection needs the room.
        Box::pin(conn.terminate_all(reason)).await;
        if let Some(id) = &conn.socket.id {
            hub.registry.unregister_socket(id, conn.socket.conn_id);
        }
        hub.metrics.connections.dec();
        hub.memory.closed();
        debug!("disconnected");
        drop(permit);
    }
    .instrument(span)
}

/// Cuts `text` to at most `max` bytes on a char boundary (close reasons are limited to 123).
fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

impl Connection {
    async fn drive(
        &mut self,
        sink: &mut SplitSink<WebSocket, Message>,
        stream: SplitStream<WebSocket>,
        mut rx: Inbox,
        idle_timeout: Duration,
    ) -> Step {
        let shutdown = self.hub.shutdown.clone();
        let handle = self.handle.clone();
        let mut stream = Gated::new(stream);
        let idle = tokio::time::sleep(idle_timeout);
        tokio::pin!(idle);
        // Registered once for the connection's life, not once per wake-up: each of these
        // futures takes a lock to join its waiter list and another to leave it.
        let shutting_down = shutdown.cancelled();
        tokio::pin!(shutting_down);
        let overflowed = handle.overflow.notified();
        tokio::pin!(overflowed);
        let queue = self.hub.config.limits().outbound_queue;
        loop {
            let mut from_client = false;
            let paused = self.pacing.paused(self.pacing.window(queue));
            let step = tokio::select! {
                biased;
                () = &mut shutting_down => Step::Close(close_code::SERVICE_RESTART, "server shutting down".into()),
                () = &mut overflowed => Step::Close(close_code::SLOW_CONSUMER, "slow consumer: outbound queue full".into()),
                incoming = stream.next(), if !paused => {
                    from_client = true;
                    idle.as_mut().reset(Instant::now() + idle_timeout);
                    match incoming {
                        // Boxed: the futures of the channel callbacks are large, and an idle
                        // connection's task would otherwise hold room for them.
                        Some(Ok(message)) => Box::pin(self.on_message(message)).await,
                        Some(Err(err)) => read_error(err),
                        None => Step::Gone,
                    }
                }
                first = rx.recv() => self.on_outbound_batch(first, &mut rx).await,
                () = self.pacing.resume(), if paused => Step::Continue,
                () = self.held.released(), if !self.held.is_empty() => Step::Continue,
                () = &mut idle => Step::Close(close_code::GOING_AWAY, "idle timeout".into()),
            };
            self.encode_pending();
            let hold_until = self.published.take().and_then(|latest| {
                self.pacing.published(latest);
                self.pacing.hold_until()
            });
            self.held.hold(&mut self.out, hold_until.as_ref());
            if matches!(step, Step::Continue) {
                self.held.release(&mut self.out);
            } else {
                // Closing: what was held goes out before the close frame.
                self.held.release_all(&mut self.out);
            }
            if !self.out.is_empty() {
                let written = tokio::select! {
                    biased;
                    () = &mut shutting_down => return Step::Close(close_code::SERVICE_RESTART, "server shutting down".into()),
                    () = &mut overflowed => return Step::Close(close_code::SLOW_CONSUMER, "slow consumer: outbound queue full".into()),
                    written = write_all(sink, &mut self.out) => written,
                };
                if written.is_err() {
                    return Step::Gone;
                }
                self.hub
                    .metrics
                    .frames_out
                    .inc_by(written.unwrap_or(0) as u64);
            }
            // Both buffers are empty now. A socket that receives broadcasts keeps their capacity
            // (and its queue's) from one broadcast to the next: freeing them whenever the queue
            // drains would cost an allocation and a free per delivery. Steps that the client
            // started (a push, a heartbeat at least every 30 s) give the room back once the queue
            // is empty, so that an idle socket holds none.
            if from_client && rx.release_if_empty() {
                self.release_buffers();
            }
            match step {
                Step::Continue => {}
                other => return other,
            }
        }
    }

    async fn on_message(&mut self, message: Message) -> Step {
        let serializer = self.socket.serializer;
        let decoded = match message {
            Message::Text(text) => serializer.decode_text(Direction::ToServer, text.as_str()),
            Message::Binary(bytes) => serializer.decode_binary(Direction::ToServer, bytes),
            Message::Ping(_) | Message::Pong(_) => return Step::Continue,
            Message::Close(_) => return Step::PeerClosed,
        };
        self.hub.metrics.frames_in.inc();
        match decoded {
            Ok(frame) => {
                self.dispatch(frame).await;
                Step::Continue
            }
            Err(err) => {
                self.hub.metrics.decode_errors.inc();
                warn!(error = %err, "undecodable frame");
                Step::Close(close_code::INVALID_FRAME, format!("invalid frame: {err}"))
            }
        }
    }

    async fn dispatch(&mut self, frame: Frame) {
        let Body::Event { event, payload } = frame.body else {
            debug!(topic = %frame.topic, "ignoring a reply sent by the client");
            return;
        };
        let Frame {
            join_ref,
            msg_ref,
            topic,
            ..
        } = frame;
        let msg = Addressed {
            join_ref,
            msg_ref,
            topic,
        };
        match event.as_str() {
            event::HEARTBEAT if msg.topic == event::PHOENIX_TOPIC => {
                self.reply(&msg, "ok", Payload::empty());
            }
            event::JOIN => self.join(msg, payload).await,
            event::LEAVE => self.leave(msg).await,
            _ => self.handle_in(msg, event, payload).await,
        }
    }

    fn reply(&mut self, to: &Addressed, status: &str, response: Payload) {
        self.reply_with_join_ref(to.join_ref.clone(), to, status, response);
    }

    /// The reply to a message for a topic this socket has not joined: Phoenix sends it without a
    /// join_ref.
    fn reply_unmatched(&mut self, to: &Addressed) {
        self.reply_with_join_ref(None, to, "error", reason_payload("unmatched topic"));
    }

    fn reply_with_join_ref(
        &mut self,
        join_ref: Option<String>,
        to: &Addressed,
        status: &str,
        response: Payload,
    ) {
        // Messages without a ref expect no reply.
        if to.msg_ref.is_none() {
            return;
        }
        self.pending.push(Queued::frame(Frame {
            join_ref,
            msg_ref: to.msg_ref.clone(),
            topic: to.topic.clone(),
            body: Body::Reply {
                status: status.to_owned(),
                response,
            },
        }));
    }

    /// `phx_close` or `phx_error` for a channel: `ref` is the join_ref, as Phoenix sends them.
    fn channel_event(
        &mut self,
        topic: &str,
        join_ref: Option<String>,
        event: &str,
        payload: Payload,
    ) {
        self.pending.push(Queued::frame(Frame::message(
            join_ref.clone(),
            join_ref,
            topic,
            event,
            payload,
        )));
    }

    /// Runs `call` with a [`Context`] for `topic`, catching a panic, and queues what it pushed in
    /// order (this socket's copies of its own broadcasts included, through their intercepts).
    async fn with_context<T>(
        &mut self,
        topic: &str,
        join_ref: Option<&str>,
        subscribed: bool,
        call: impl for<'c> FnOnce(&'c mut Channels, &'c mut Context<'_>) -> BoxFuture<'c, T>,
    ) -> Result<T, Box<dyn std::any::Any + Send>> {
        let mut pushes = Vec::new();
        let join_ref = join_ref.unwrap_or_default();
        let mut ctx = Context {
            topic,
            join_ref,
            socket: &self.socket,
            pubsub: &self.hub.pubsub,
            pushes: &mut pushes,
            subscribed,
            presence: &self.hub.presence,
            tracking: subscribed,
            published: None,
        };
        let span = debug_span!("channel", %topic);
        let result = AssertUnwindSafe(call(&mut self.channels, &mut ctx))
            .catch_unwind()
            .instrument(span)
            .await;
        if let Some(latest) = ctx.published.take() {
            self.published = Some(latest);
        }
        for queued in pushes {
            match queued {
                queued @ (Queued::Frame(_) | Queued::PresenceState { .. }) => {
                    self.pending.push(queued);
                }
                Queued::Broadcast(broadcast) => {
                    self.hub.metrics.deliveries.inc();
                    if let Some(intercepted) = self.queue_broadcast(broadcast) {
                        self.deliver(intercepted).await;
                    }
                }
            }
        }
        result
    }

    async fn join(&mut self, msg: Addressed, params: Payload) {
        let limits = *self.hub.config.limits();
        // A second join of a joined topic replaces the first (its phx_close follows our reply).
        let replaced_ref = match self.channels.remove(&msg.topic) {
            Some(old) => {
                debug!(topic = %msg.topic, "duplicate join: closing the previous channel");
                self.unsubscribe(&msg.topic);
                let old_ref = old.join_ref.clone();
                self.run_terminate(&msg.topic, old, Terminate::Rejoin).await;
                Some(old_ref)
            }
            None => None,
        };

        // As Phoenix: the topic is looked up first, the limits apply to known topics only.
        let handler = self.hub.channels.route(&msg.topic).cloned();
        let refusal = if handler.is_none() {
            None
        } else if self.channels.len() >= limits.max_channels_per_socket {
            Some("too many channels joined")
        } else if !self.joins.take() {
            Some("too many joins")
        } else {
            None
        };
        match (handler, refusal) {
            (None, _) => {
                debug!(topic = %msg.topic, "unmatched topic");
                self.reply_unmatched(&msg);
            }
            (Some(_), Some(reason)) => self.reply(&msg, "error", reason_payload(reason)),
            (Some(handler), None) => {
                let mut joined_pushes = Vec::new();
                let join_ref = msg.join_ref.clone().unwrap_or_default();
                let mut ctx = Context {
                    topic: &msg.topic,
                    join_ref: &join_ref,
                    socket: &self.socket,
                    pubsub: &self.hub.pubsub,
                    pushes: &mut joined_pushes,
                    subscribed: false,
                    presence: &self.hub.presence,
                    tracking: true,
                    published: None,
                };
                // Subscribe before `join` runs, so nothing broadcast after the join reads its
                // snapshot is missed: those broadcasts wait in this socket's queue, which is only
                // read after the reply below, and are dropped if the join fails.
                self.hub.registry.subscribe(&msg.topic, &self.handle);
                // A history topic's position is read now, subscribed and before `join` runs.
                let mut resume = match self.hub.histories.family(&msg.topic) {
                    Some(family) => Some(
                        Resume::read(&**self.hub.histories.store(), family, &msg.topic, &params)
                            .await,
                    ),
                    None => None,
                };
                let span = debug_span!("channel", topic = %msg.topic);
                let joined = AssertUnwindSafe(handler.join(params, &mut ctx))
                    .catch_unwind()
                    .instrument(span)
                    .await;
                if let Some(latest) = ctx.published.take() {
                    self.published = Some(latest);
                }
                match joined {
                    Ok(Ok((joined, response))) => {
                        self.hub.metrics.channels.inc();
                        self.channels.insert(
                            msg.topic.clone(),
                            ChannelSlot {
                                join_ref: msg.join_ref.clone(),
                                joined,
                                through: None,
                            },
                        );
                        match &mut resume {
                            Some(resume) => {
                                self.reply(&msg, "ok", resume.response(response));
                                // What the client missed, as ordinary broadcasts, before anything
                                // queued since the join subscribed.
                                for missed in resume.take_replay() {
                                    if let Some(intercepted) = self.queue_broadcast(missed) {
                                        self.deliver(intercepted).await;
                                    }
                                }
                                if let Some(slot) = self.channels.get_mut(&msg.topic) {
                                    slot.through = resume.through();
                                }
                            }
                            None => self.reply(&msg, "ok", response),
                        }
                        // Pushes made while joining follow the ok reply.
                        self.pending.append(&mut joined_pushes);
                    }
                    Ok(Err(refused)) => {
                        self.hub
                            .registry
                            .unsubscribe(&msg.topic, self.socket.conn_id);
                        self.untrack_presence(&msg.topic);
                        self.reply(&msg, "error", refused.response().clone());
                    }
                    Err(_) => {
                        self.hub
                            .registry
                            .unsubscribe(&msg.topic, self.socket.conn_id);
                        self.untrack_presence(&msg.topic);
                        warn!(topic = %msg.topic, "join crashed");
                        self.reply(&msg, "error", reason_payload("join crashed"));
                    }
                }
            }
        }
        if let Some(old_ref) = replaced_ref {
            self.channel_event(&msg.topic, old_ref, event::CLOSE, Payload::empty());
        }
    }

    async fn leave(&mut self, msg: Addressed) {
        let Some(slot) = self.channels.get(&msg.topic) else {
            // Nothing to leave: say ok, as Phoenix does.
            self.reply(&msg, "ok", Payload::empty());
            return;
        };
        if slot.join_ref != msg.join_ref {
            debug!(topic = %msg.topic, "ignoring a leave with a stale join_ref");
            return;
        }
        if let Some(slot) = self.channels.remove(&msg.topic) {
            self.unsubscribe(&msg.topic);
            let join_ref = slot.join_ref.clone();
            self.run_terminate(&msg.topic, slot, Terminate::Leave).await;
            self.reply(&msg, "ok", Payload::empty());
            self.channel_event(&msg.topic, join_ref, event::CLOSE, Payload::empty());
        }
    }

    async fn handle_in(&mut self, msg: Addressed, event: String, payload: Payload) {
        let Some(slot) = self.channels.get(&msg.topic) else {
            debug!(topic = %msg.topic, %event, "push to a topic this socket has not joined");
            self.reply_unmatched(&msg);
            return;
        };
        if slot.join_ref != msg.join_ref {
            debug!(topic = %msg.topic, %event, "ignoring a message with a stale join_ref");
            return;
        }
        let topic = msg.topic.clone();
        let join_ref = slot.join_ref.clone();
        let result = self
            .with_context(&msg.topic, join_ref.as_deref(), true, |channels, ctx| {
                Box::pin(async move {
                    match channels.get_mut(&topic) {
                        Some(slot) => Some(slot.joined.handle_in(&event, payload, ctx).await),
                        None => None,
                    }
                })
            })
            .await;
        match result {
            Ok(Some(HandleIn::Reply { status, response })) => self.reply(&msg, &status, response),
            Ok(Some(HandleIn::NoReply) | None) => {}
            Ok(Some(HandleIn::Stop { reply })) => {
                if let Some((status, response)) = reply {
                    self.reply(&msg, &status, response);
                }
                if let Some(slot) = self.channels.remove(&msg.topic) {
                    self.unsubscribe(&msg.topic);
                    let join_ref = slot.join_ref.clone();
                    self.run_terminate(&msg.topic, slot, Terminate::Stop).await;
                    self.channel_event(&msg.topic, join_ref, event::CLOSE, Payload::empty());
                }
            }
            Err(_) => self.crash(&msg.topic),
        }
    }

    /// A handler panicked: drop the channel without `terminate` and tell the client.
    fn crash(&mut self, topic: &str) {
        warn!(%topic, "channel crashed");
        if let Some(slot) = self.channels.remove(topic) {
            self.unsubscribe(topic);
            self.channel_event(
                topic,
                slot.join_ref,
                event::ERROR,
                reason_payload("channel_crash"),
            );
        }
    }

    fn unsubscribe(&self, topic: &str) {
        self.hub.registry.unsubscribe(topic, self.socket.conn_id);
        self.hub.metrics.channels.dec();
        self.untrack_presence(topic);
    }

    /// The channel on `topic` ended (or its join failed): what it tracked leaves.
    fn untrack_presence(&self, topic: &str) {
        self.hub.presence.untrack_owner(crate::presence::Owner {
            conn: self.socket.conn_id,
            channel: topic,
        });
    }

    async fn run_terminate(&mut self, topic: &str, slot: ChannelSlot, reason: Terminate) {
        let join_ref = slot.join_ref.clone();
        let result = self
            .with_context(topic, join_ref.as_deref(), false, |_, ctx| {
                slot.joined.terminate(reason, ctx)
            })
            .await;
        if result.is_err() {
            warn!(%topic, "terminate panicked");
        }
    }

    async fn terminate_all(&mut self, reason: Terminate) {
        let topics = self.channels.topics();
        for topic in topics {
            if let Some(slot) = self.channels.remove(&topic) {
                self.unsubscribe(&topic);
                self.run_terminate(&topic, slot, reason).await;
            }
        }
    }

    async fn on_outbound_batch(&mut self, first: Outbound, rx: &mut Inbox) -> Step {
        let mut next = Some(first);
        let mut handled = 0;
        while let Some(message) = next.take() {
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
                        self.pending.push(Queued::frame(Frame::message(
                            join_ref, None, topic, event, payload,
                        )));
                    }
                }
                Outbound::Close(close) => {
                    return Step::Close(close.code, close.reason.to_owned());
                }
            }
            handled += 1;
            if handled < BATCH {
                next = rx.try_recv();
            }
        }
        Step::Continue
    }

    /// Queues a broadcast for this client as the shared bytes, unless its channel intercepts the
    /// event: then it is given back for [`deliver`](Self::deliver). The common case thus costs no
    /// boxed future.
    fn queue_broadcast(&mut self, broadcast: Arc<SharedBroadcast>) -> Option<Arc<SharedBroadcast>> {
        let frame = broadcast.frame();
        let slot = self.channels.get_mut(&frame.topic)?;
        if slot.through.is_some() && skips(&mut slot.through, &broadcast) {
            return None;
        }
        if slot.joined.intercepts(frame.event()) {
            return Some(broadcast);
        }
        self.pending.push(Queued::Broadcast(broadcast));
        None
    }

    /// Queues a broadcast for this client: the shared bytes, or what the channel's `handle_out`
    /// makes of it when it intercepts the event.
    ///
    /// Boxed because `handle_out` may broadcast again, which comes back here.
    fn deliver(&mut self, broadcast: Arc<SharedBroadcast>) -> BoxFuture<'_, ()> {
        Box::pin(self.deliver_inner(broadcast))
    }

    async fn deliver_inner(&mut self, broadcast: Arc<SharedBroadcast>) {
        let frame = broadcast.frame();
        let Some(slot) = self.channels.get(&frame.topic) else {
            // Left (or crashed) after this was queued.
            return;
        };
        if !slot.joined.intercepts(frame.event()) {
            self.pending.push(Queued::Broadcast(broadcast));
            return;
        }
        let join_ref = slot.join_ref.clone();
        let topic = frame.topic.clone();
        let event = frame.event().to_owned();
        let shared = broadcast.clone();
        let decided = self
            .with_context(&topic, join_ref.as_deref(), true, |channels, ctx| {
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
            })
            .await;
        match decided {
            Ok(Some(Outgoing::Push(payload))) => {
                self.pending.push(Queued::frame(Frame::message(
                    join_ref, None, topic, event, payload,
                )));
            }
            Ok(Some(Outgoing::Skip) | None) => {}
            Err(_) => self.crash(&topic),
        }
    }

    /// Frees the capacity of the step buffers (both empty between steps).
    fn release_buffers(&mut self) {
        self.pacing.forget_sent();
        if self.pending.capacity() > 0 {
            self.pending = Vec::new();
        }
        if self.out.capacity() > 0 {
            self.out = Vec::new();
        }
    }

    /// Encodes what this step queued into messages for the sink.
    fn encode_pending(&mut self) {
        let serializer = self.socket.serializer;
        for queued in self.pending.drain(..) {
            let encoded = match &queued {
                Queued::Frame(frame) => serializer
                    .encode(Direction::ToClient, frame)
                    .map(to_message),
                // Converted once per broadcast: every subscriber clones the checked text.
                Queued::Broadcast(broadcast) => broadcast.wire_as(serializer, to_message),
                // Read now, after the join subscribed: shared by every joiner of the window.
                Queued::PresenceState { topic } => self
                    .hub
                    .presence
                    .joiner_state(topic)
                    .wire_as(serializer, to_message),
            };
            match encoded {
                Ok(message) => self.out.push(message),
                Err(err) => warn!(error = %err, "frame not sent"),
            }
        }
    }
}

/// The addressing of an incoming message, kept for its reply.
struct Addressed {
    join_ref: Option<String>,
    msg_ref: Option<String>,
    topic: String,
}

fn to_message(wire: Wire) -> Message {
    match wire {
        Wire::Text(text) => match Utf8Bytes::try_from(text.into_bytes()) {
            Ok(text) => Message::Text(text),
            // SharedText is UTF-8 by construction; an empty text frame is the harmless fallback.
            Err(_) => Message::Text(Utf8Bytes::from_static("")),
        },
        Wire::Binary(bytes) => Message::Binary(bytes),
    }
}

/// Writes every queued message and flushes once; returns how many were written.
async fn write_all(
    sink: &mut SplitSink<WebSocket, Message>,
    out: &mut Vec<Message>,
) -> Result<usize, axum::Error> {
    let count = out.len();
    for message in out.drain(..) {
        sink.feed(message).await?;
    }
    sink.flush().await?;
    Ok(count)
}

/// A read error: an oversized message closes with 1009, invalid UTF-8 with 1007, a WebSocket protocol
/// violation with 1002; anything else means the client is gone.
fn read_error(err: axum::Error) -> Step {
    let inner = err.into_inner();
    match inner.downcast_ref::<tungstenite::Error>() {
        Some(tungstenite::Error::Capacity(capacity)) => {
            Step::Close(close_code::MESSAGE_TOO_BIG, capacity.to_string())
        }
        Some(tungstenite::Error::Utf8(_)) => Step::Close(
            close_code::INVALID_FRAME,
            "invalid frame: text is not valid UTF-8".to_owned(),
        ),
        Some(tungstenite::Error::Protocol(protocol)) => {
            Step::Close(close_code::PROTOCOL_ERROR, protocol.to_string())
        }
        _ => {
            debug!(error = %inner, "read failed");
            Step::Gone
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size of the future a function of four arguments returns.
    fn future_size<A, B, C, D, F, Fut>(_: F) -> usize
    where
        F: FnOnce(A, B, C, D) -> Fut,
    {
        std::mem::size_of::<Fut>()
    }

    /// Every idle connection holds its task's future for its whole life: keep the callbacks boxed
    /// out of it (about 1 KiB today, 3.4 KiB with them inline), and a queued message two words.
    #[test]
    fn idle_connection_state_stays_small() {
        let run_size = future_size(run);
        assert!(
            run_size <= 1536,
            "connection future grew to {run_size} bytes"
        );
        assert_eq!(
            std::mem::size_of::<Outbound>(),
            2 * std::mem::size_of::<usize>()
        );
    }

    /// A connection under a fan-out keeps a batch's room in its step buffers (see
    /// [`Connection::release_buffers`]): 64 entries of three words, not of a whole frame. With the
    /// frame inline (136 bytes) 10,000 subscribers held 70 MiB more.
    #[test]
    fn a_queued_message_is_three_words() {
        assert_eq!(
            std::mem::size_of::<Queued>(),
            3 * std::mem::size_of::<usize>()
        );
    }
}
