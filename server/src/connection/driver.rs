//! The socket driver: one task per WebSocket that reads frames, hands them to the channel
//! runtime, and encodes and writes what comes out, until the socket closes.

use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use alight_protocol::{Direction, EncodeError, Serializer, Wire};
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::{SinkExt, StreamExt};
use tokio::time::Instant;
use tracing::{Instrument, debug, info_span, warn};

use super::alarm::{Deadline, fired};
use super::poll_when_woken::PollWhenWoken;
use super::runtime::{ChannelRuntime, Delivery};
use crate::backpressure::Backpressure;
use crate::channel::{Queued, Terminate};
use crate::close_code;
use crate::metrics::Metrics;
use crate::presence::Presence;
use crate::registry::{ConnHandle, Inbox, Outbound};
use crate::socket::Socket;
use crate::state::ServerState;

/// Outbound messages handled per step at most (and so written per flush).
const BATCH: usize = 64;
/// How long a closing socket may take to accept its close frame.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);
/// Close reasons are limited to 123 bytes by the WebSocket protocol.
const MAX_CLOSE_REASON: usize = 123;

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

impl Step {
    fn shutting_down() -> Step {
        Step::Close(close_code::SERVICE_RESTART, "server shutting down".into())
    }

    fn slow_consumer() -> Step {
        Step::Close(
            close_code::SLOW_CONSUMER,
            "slow consumer: outbound queue full".into(),
        )
    }
}

/// One connection: its channels, and its output on the way from them to the socket.
struct Connection {
    /// The channels; holds the output's first stage, what the current step queued.
    runtime: ChannelRuntime,
    /// The output's second stage: the step's messages, encoded, then what backpressure releases.
    encoded: Vec<Message>,
    /// The third stage: output waiting for the fan-out of this socket's broadcasts.
    backpressure: Backpressure<Message>,
}

/// Runs a connection to its end. `places` hold its places under the connection limits (a
/// semaphore permit, a per-address slot); they are given back, dropped, once it ended.
///
/// Not an `async fn`: the socket is boxed here, before the future is built, so that the future
/// neither keeps a second copy of its arguments nor the room of the `WebSocket` itself, for the
/// whole life of the connection. The caller spawns this future as it is, for the same reason.
///
/// The socket is not split into a sink and a stream: this task alone reads and writes it, never
/// both at once, and a split costs a lock on every read and every message written.
pub(crate) fn run<P: Send + 'static>(
    state: Arc<ServerState>,
    ws: WebSocket,
    socket: Socket,
    places: P,
) -> impl Future<Output = ()> + Send {
    let span = info_span!(
        "socket",
        conn = socket.conn_id,
        id = socket.id.as_deref().unwrap_or("")
    );
    let mut ws = PollWhenWoken::new(Box::new(ws));
    // Set up here rather than in the future: what is only needed to build the connection then
    // takes no room in it. The future is polled as soon as it is built, so nothing changes order.
    let limits = state.config.limits();
    let idle_timeout = limits.idle_timeout;
    let (handle, mut rx) = ConnHandle::new(socket.conn_id, limits.outbound_queue);
    if let Some(id) = &socket.id {
        state.registry.register_socket(id, &handle);
    }
    state.metrics.connections.inc();
    state.memory.opened();
    span.in_scope(|| debug!("connected"));
    let mut conn = Connection {
        runtime: ChannelRuntime::new(state.clone(), socket, handle.clone()),
        encoded: Vec::new(),
        backpressure: Backpressure::default(),
    };
    async move {
        // The inbox is lent, not moved: the future would otherwise keep room for it twice.
        let step = conn.drive(&mut ws, &mut rx, &handle, idle_timeout).await;
        // Closes the queue: nothing more is queued for a socket that is closing.
        drop(rx);
        let reason = match step {
            Step::Close(code, reason) => {
                debug!(code, %reason, "closing");
                let frame = CloseFrame {
                    code,
                    reason: Utf8Bytes::from(truncate(&reason, MAX_CLOSE_REASON)),
                };
                let _ = tokio::time::timeout(
                    CLOSE_TIMEOUT,
                    ws.get_mut().send(Message::Close(Some(frame))),
                )
                .await;
                if code == close_code::SERVICE_RESTART {
                    Terminate::Shutdown
                } else {
                    Terminate::Closed
                }
            }
            Step::PeerClosed => {
                // Flushing sends the close reply tungstenite queued when the client's close arrived.
                let _ = tokio::time::timeout(CLOSE_TIMEOUT, ws.get_mut().close()).await;
                Terminate::Closed
            }
            Step::Gone | Step::Continue => Terminate::Closed,
        };
        // Boxed, as the callbacks in `drive`: only a closing connection needs the room.
        Box::pin(conn.runtime.terminate_all(reason)).await;
        if let Some(id) = &conn.runtime.socket.id {
            state
                .registry
                .unregister_socket(id, conn.runtime.socket.conn_id);
        }
        state.metrics.connections.dec();
        state.memory.closed();
        debug!("disconnected");
        drop(places);
    }
    .instrument(span)
}

/// Cuts `text` to at most `max` bytes on a char boundary.
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
    /// The select loop: each turn is one step (a client message, a batch from the queue, a
    /// timer), whose output is then encoded, paced and written.
    async fn drive(
        &mut self,
        ws: &mut PollWhenWoken<Box<WebSocket>>,
        rx: &mut Inbox,
        handle: &ConnHandle,
        idle_timeout: Duration,
    ) -> Step {
        let state = self.runtime.state.clone();
        // The idle timer is set once and moved on only when it fires: a message records when it
        // was read, which costs a clock read but no timer update.
        let idle = tokio::time::sleep(idle_timeout);
        tokio::pin!(idle);
        let mut idle = Deadline::new(idle);
        let mut last_read = Instant::now();
        // Registered once for the connection's life, not once per wake-up: each of these
        // futures takes a lock to join its waiter list and another to leave it.
        let shutting_down = state.shutdown.started();
        tokio::pin!(shutting_down);
        let overflowed = handle.overflow.notified();
        tokio::pin!(overflowed);
        // Both are polled once to register, then only after their flag is set (see `alarm`).
        let (mut shutdown_armed, mut overflow_armed) = (false, false);
        let is_shutting_down = || state.shutdown.is_started();
        let is_overflowed = || handle.overflowed();
        let queue = state.config.limits().outbound_queue;
        let write_timeout = state.config.limits().write_timeout;
        // The socket's JWT expiry, if JWT auth is on; moved by a refresh. Boxed: a socket without
        // a token holds a pointer rather than a `Sleep`.
        let mut expiry = self
            .runtime
            .token_expiry()
            .map(|remaining| Box::pin(tokio::time::sleep(remaining)));
        loop {
            let mut from_client = false;
            let paused = self.backpressure.reading_paused(queue);
            let step = tokio::select! {
                biased;
                () = fired(shutting_down.as_mut(), &mut shutdown_armed, is_shutting_down) => Step::shutting_down(),
                () = fired(overflowed.as_mut(), &mut overflow_armed, is_overflowed) => Step::slow_consumer(),
                incoming = ws.next(), if !paused => {
                    from_client = true;
                    last_read = Instant::now();
                    self.runtime.received_at = last_read;
                    match incoming {
                        // Boxed: the futures of the channel callbacks are large, and an idle
                        // connection's task would otherwise hold room for them.
                        Some(Ok(message)) => Box::pin(self.on_message(message)).await,
                        Some(Err(err)) => read_error(err),
                        None => Step::Gone,
                    }
                }
                first = std::future::poll_fn(|cx| rx.poll_recv(cx, BATCH)) => self.on_outbound_batch(first, rx).await,
                // Polled in place: a future of its own would take room in every connection.
                () = std::future::poll_fn(|cx| self.backpressure.poll_progress(cx, paused)), if self.backpressure.waits(paused) => Step::Continue,
                () = &mut idle => {
                    let deadline = last_read + idle_timeout;
                    if deadline > Instant::now() {
                        idle.reset(deadline);
                        Step::Continue
                    } else {
                        Step::Close(close_code::GOING_AWAY, "idle timeout".into())
                    }
                }
                () = std::future::poll_fn(|cx| expiry.as_mut().map_or(Poll::Pending, |at| at.as_mut().poll(cx))), if expiry.is_some() => {
                    Step::Close(close_code::TOKEN_EXPIRED, "token expired".into())
                }
            };
            if std::mem::take(&mut self.runtime.token_refreshed)
                && let Some(remaining) = self.runtime.token_expiry()
            {
                let at = Instant::now() + remaining;
                match &mut expiry {
                    Some(expiry) => expiry.as_mut().reset(at),
                    None => expiry = Some(Box::pin(tokio::time::sleep_until(at))),
                }
            }
            let runtime = &mut self.runtime;
            encode(
                &mut runtime.queued,
                runtime.socket.serializer,
                &state.presence,
                &state.metrics,
                &mut self.encoded,
            );
            // Read once the step's own copies are encoded: only subscriber queues hold it now.
            if let Some(latest) = runtime.published.take() {
                self.backpressure.published(latest);
            }
            // Closing: what waits goes out before the close frame.
            let closing = !matches!(step, Step::Continue);
            self.backpressure.end_step(&mut self.encoded, closing);
            if !self.encoded.is_empty() {
                let write = write_all(ws.get_mut(), &mut self.encoded);
                tokio::pin!(write);
                // Most writes complete at once; only one that waits sets its deadline (a clock
                // read, and a boxed timer: the task keeps no room for one) and watches the signals.
                let first = std::future::poll_fn(|cx| Poll::Ready(write.as_mut().poll(cx))).await;
                let written = match first {
                    Poll::Ready(written) => Ok(written),
                    Poll::Pending => tokio::select! {
                        biased;
                        () = fired(shutting_down.as_mut(), &mut shutdown_armed, is_shutting_down) => return Step::shutting_down(),
                        () = fired(overflowed.as_mut(), &mut overflow_armed, is_overflowed) => return Step::slow_consumer(),
                        written = Box::pin(tokio::time::timeout(write_timeout, write)) => written,
                    },
                };
                match written {
                    Ok(Ok(count)) => {
                        state.metrics.frames_out.inc_by(count as u64);
                    }
                    Ok(Err(_)) => return Step::Gone,
                    Err(_) => {
                        state.metrics.write_timeouts.inc();
                        return Step::Close(
                            close_code::SLOW_CONSUMER,
                            "slow consumer: write timed out".into(),
                        );
                    }
                }
            }
            // The buffers are empty now. A socket that receives broadcasts keeps their room (and
            // its queue's) from one to the next: freeing it whenever the queue drains would cost
            // an allocation and a free per delivery. Steps the client started (a push, a
            // heartbeat at least every 30 s) give it back once the queue is empty, so that an
            // idle socket holds none.
            if from_client && rx.release_if_empty() {
                self.release_room();
            }
            if closing {
                return step;
            }
        }
    }

    /// Frees the room of the step buffers (empty between steps).
    fn release_room(&mut self) {
        self.backpressure.forget_taken();
        if self.runtime.queued.capacity() > 0 {
            self.runtime.queued = Vec::new();
        }
        if self.encoded.capacity() > 0 {
            self.encoded = Vec::new();
        }
    }

    /// A message from the client: decoded and handed to the channel runtime. A text message
    /// is read in place: the frame borrows from it.
    async fn on_message(&mut self, message: Message) -> Step {
        let serializer = self.runtime.socket.serializer;
        let binary;
        let decoded = match &message {
            Message::Text(text) => {
                serializer.decode_text_in_place(Direction::ToServer, text.as_str())
            }
            Message::Binary(bytes) => {
                match serializer.decode_binary(Direction::ToServer, bytes.clone()) {
                    Ok(frame) => {
                        binary = frame;
                        Ok(binary.to_ref())
                    }
                    Err(err) => Err(err),
                }
            }
            Message::Ping(_) | Message::Pong(_) => return Step::Continue,
            Message::Close(_) => return Step::PeerClosed,
        };
        let metrics = &self.runtime.state.metrics;
        metrics.frames_in.inc();
        match decoded {
            Ok(frame) => {
                if let Some(reason) = self.runtime.state.config.limits().oversized_field(&frame) {
                    metrics.decode_errors.inc();
                    warn!(%reason, "frame field over its limit");
                    return Step::Close(close_code::MESSAGE_TOO_BIG, reason);
                }
                self.runtime.dispatch(frame).await;
                if self.runtime.rate_abused() {
                    return Step::Close(close_code::POLICY_VIOLATION, "rate limit exceeded".into());
                }
                Step::Continue
            }
            Err(err) => {
                metrics.decode_errors.inc();
                warn!(error = %err, "undecodable frame");
                Step::Close(close_code::INVALID_FRAME, format!("invalid frame: {err}"))
            }
        }
    }

    /// A batch of messages from the registry: `first`, and those [`Inbox::poll_recv`] took with it
    /// (up to [`BATCH`] in all, taken under one lock). What arrives meanwhile is for the next step.
    ///
    /// The direct path: a broadcast that needs no channel callback goes straight onto the step's
    /// encoded output as its shared bytes, with no runtime call and no encode stage, while
    /// nothing the runtime queued is ahead of it; everything else goes through the runtime, in
    /// order behind it.
    async fn on_outbound_batch(&mut self, first: Outbound, rx: &mut Inbox) -> Step {
        let serializer = self.runtime.socket.serializer;
        let mut next = Some(first);
        while let Some(message) = next.take() {
            match message {
                Outbound::Broadcast(broadcast) if self.runtime.queued.is_empty() => {
                    match self.runtime.delivery(&broadcast) {
                        Delivery::Shared => push_encoded(
                            broadcast.encoded().wire_as(serializer, to_message),
                            &self.runtime.state.metrics,
                            &mut self.encoded,
                        ),
                        Delivery::HandleOut => self.runtime.deliver(broadcast).await,
                        Delivery::Dropped => {}
                    }
                }
                message => {
                    if let Some(close) = self.runtime.receive(message).await {
                        return Step::Close(close.code, close.reason.to_owned());
                    }
                }
            }
            next = rx.next_taken();
        }
        Step::Continue
    }
}

/// Encodes what a step queued, in `serializer`, onto `out`.
fn encode(
    queued: &mut Vec<Queued>,
    serializer: Serializer,
    presence: &Presence,
    metrics: &Metrics,
    out: &mut Vec<Message>,
) {
    for queued in queued.drain(..) {
        let encoded = match queued {
            // Encoded as it was queued: a `String` becomes the message's text without a check.
            Queued::Text(text) => Ok(Message::Text(Utf8Bytes::from(text))),
            Queued::Frame(frame) => serializer
                .encode(Direction::ToClient, &frame)
                .map(to_message),
            // Converted once per broadcast: every subscriber clones the checked text.
            Queued::Broadcast(broadcast) => broadcast.encoded().wire_as(serializer, to_message),
            // Read now, after the join subscribed: shared by every joiner of the window.
            Queued::PresenceState { topic } => presence
                .joiner_state(&topic)
                .wire_as(serializer, to_message),
        };
        push_encoded(encoded, metrics, out);
    }
}

/// Puts an encoded message onto `out`; one the serializer cannot carry is counted and dropped.
fn push_encoded(encoded: Result<Message, EncodeError>, metrics: &Metrics, out: &mut Vec<Message>) {
    match encoded {
        Ok(message) => out.push(message),
        Err(err) => {
            // Counted always, logged once per window: a binary broadcast reaches every V1
            // subscriber, and one line each would let one publisher flood the log.
            metrics.not_encodable.inc();
            if NOT_ENCODABLE_LOG.ready() {
                warn!(error = %err, "frame not sent (counted in alight_frames_not_encodable_total; logged once per 10 s)");
            }
        }
    }
}

/// When the last "frame not sent" line was logged.
static NOT_ENCODABLE_LOG: LogWindow = LogWindow::new(Duration::from_secs(10));

/// Lets one log line through per window, across every connection task.
struct LogWindow {
    window: Duration,
    /// Milliseconds since `START` at the last line let through, plus one (0: never).
    last: std::sync::atomic::AtomicU64,
}

static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

impl LogWindow {
    const fn new(window: Duration) -> Self {
        LogWindow {
            window,
            last: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Whether a line may be logged now; at most once per window returns true.
    fn ready(&self) -> bool {
        use std::sync::atomic::Ordering;
        let start = START.get_or_init(std::time::Instant::now);
        let now = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX - 1) + 1;
        let last = self.last.load(Ordering::Relaxed);
        let window = u64::try_from(self.window.as_millis()).unwrap_or(u64::MAX);
        if last != 0 && now.saturating_sub(last) < window {
            return false;
        }
        self.last
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    }
}

/// The WebSocket message of an encoded frame.
fn to_message(wire: Wire) -> Message {
    match wire {
        Wire::Text(text) => Message::Text(
            Utf8Bytes::try_from(text.into_bytes()).expect("`SharedText` is UTF-8 by construction"),
        ),
        Wire::Binary(bytes) => Message::Binary(bytes),
    }
}

/// Writes every queued message and flushes once; returns how many were written.
async fn write_all(ws: &mut WebSocket, out: &mut Vec<Message>) -> Result<usize, axum::Error> {
    let count = out.len();
    for message in out.drain(..) {
        ws.feed(message).await?;
    }
    ws.flush().await?;
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

    #[test]
    fn a_log_window_lets_one_line_through() {
        let window = LogWindow::new(Duration::from_secs(3600));
        assert!(window.ready());
        assert!(!window.ready());
        assert!(!window.ready());
    }

    /// Under a fan-out a socket's registry queue grows by slots of `Outbound` (two words, the rare
    /// variants boxed), and its step buffers keep a batch's room of `Queued` (three words, the
    /// frame boxed; see [`Connection::release_room`]): every busy connection holds that room.
    #[test]
    fn queued_messages_stay_a_few_words() {
        let word = std::mem::size_of::<usize>();
        assert_eq!(std::mem::size_of::<Outbound>(), 2 * word);
        assert_eq!(std::mem::size_of::<Queued>(), 3 * word);
    }
}

#[cfg(test)]
mod size_tests {
    use std::sync::Mutex;

    use axum::extract::ws::WebSocketUpgrade;
    use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

    use super::*;
    use crate::endpoint::PeerSlot;

    /// The size of the future an upgraded socket's task runs, built on a real upgrade (its type
    /// needs a `WebSocket`).
    async fn connection_future_size() -> usize {
        let alight = crate::Alight::builder().build();
        let state = alight.state().clone();
        let (tx, rx) = oneshot::channel();
        let tx = Arc::new(Mutex::new(Some(tx)));
        let route = axum::routing::get(move |ws: WebSocketUpgrade| {
            let (state, tx) = (state.clone(), tx.clone());
            async move {
                ws.on_upgrade(move |ws| async move {
                    let socket = Socket {
                        conn_id: 1,
                        id: None,
                        assigns: axum::http::Extensions::default(),
                        serializer: Serializer::V2,
                    };
                    let permits = Arc::new(Semaphore::new(1));
                    let permit = permits.try_acquire_owned().expect("a fresh permit");
                    // What the upgrade route spawns: `run` with the same places.
                    let places: (OwnedSemaphorePermit, Option<PeerSlot>) = (permit, None);
                    let future = tokio_util::task::TaskTracker::new()
                        .track_future(run(state, ws, socket, places));
                    let size = std::mem::size_of_val(&future);
                    let sender = tx.lock().expect("not poisoned").take();
                    if let Some(sender) = sender {
                        let _ = sender.send(size);
                    }
                })
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("local address");
        let app = axum::Router::new().route("/ws", route);
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        let (_client, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
            .await
            .expect("upgrade");
        let size = rx.await.expect("the upgrade measured the future");
        server.abort();
        size
    }

    /// Every connection's task holds its future for the connection's whole life, so an idle
    /// connection pays for the largest state the future can be in (bench/README.md, "Idle
    /// memory"). Wrapping `run` in an `async` block that awaits it doubles that, and a wait built
    /// as a future in the `select!` (as the backpressure's was) adds its size.
    #[tokio::test]
    async fn a_connections_future_stays_small() {
        let size = connection_future_size().await;
        assert!(size <= 1600, "the connection future takes {size} bytes");
    }
}
