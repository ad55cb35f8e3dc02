//! The bare baseline: the least a server of the room contract does per message, on the same
//! stack as Alight (axum's WebSocket over tungstenite, tokio).
//!
//! It speaks just enough V2 JSON for the generator (and for phoenix.js, for the contract below).
//! What it leaves out is what Alight adds: channel processes and their callbacks, routing by topic
//! pattern, presence, limits beyond the queue, metrics, tracing, shutdown.
//!
//! | client sends | server does |
//! |---|---|
//! | `phx_join` | adds the socket to the topic's members; ok `{}` (a second join replaces the first) |
//! | `shout` (joined) | `[null,null,topic,"shout",payload]` to every member of the topic, sender included, then ok `{}` |
//! | `ping` (joined) | ok with the payload |
//! | `phx_leave` | removes the membership; ok `{}`, then `phx_close` |
//! | `heartbeat` on `phoenix` | ok `{}` |
//! | any other event, or a topic not joined | error `{"reason":"unmatched topic"}` or `{"reason":"unknown event"}` |
//! | a frame that is not JSON of that shape | close 1007 |
//!
//! Per message it does this and no more:
//! - **One task per socket** reads frames and writes what the socket is sent, so a ping costs one
//!   wake-up of one task and its reply is written in the same turn, with no hand-over to a writer
//!   task. The read side is polled only after it woke the task ([`mailbox`]).
//! - **The frame is read in place** ([`frame`]): one pass checks the JSON and slices it; the reply
//!   repeats the refs, topic and payload as sent. The only allocation is the reply's own buffer,
//!   at its exact length, which becomes the message without a copy.
//! - **A broadcast is encoded once**; each member's queue gets a reference-counted clone of its
//!   bytes, found by one hash of the topic and one pass over that topic's members.
//!
//! Like Alight, each socket has a bounded queue of [`QUEUE`] messages; a socket whose queue is
//! full is closed with 1013 (try again later) and counted. Its WebSocket buffers are Alight's
//! sizes (4 KiB read, 16 KiB write), it writes up to 64 queued messages per flush, and it sets
//! `TCP_NODELAY`. Like Alight, and with Alight's budget, it holds back a publisher that outruns
//! the fan-out rather than overflow the queues of subscribers that keep up:
//! - a shout's own copy and its reply go through the publisher's queue;
//! - while the fullest subscriber queue of its last broadcast holds more than [`HOLD`] (16)
//!   messages, the publisher's own queue waits (its replies with it: Alight answers a push once
//!   the broadcast of 16 steps before is taken everywhere); while it holds more than Alight's
//!   pacing window (64 messages into up to 5,120 subscribers, up to 128), it is not read;
//! - either hold ends after [`STALL`] without that queue getting shorter: a subscriber that does
//!   not read at all must not hold the publisher, its queue overflows and it is closed;
//! - a socket whose own queue is over half full is not read.

mod frame;
mod mailbox;

use std::collections::{HashMap, VecDeque};
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use axum::routing::get;
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio::time::{Instant, Sleep};

pub use frame::{Frame, FrameError};
use mailbox::{Mailbox, Offered};

/// Messages queued for one socket, as Alight's default `outbound_queue`.
pub const QUEUE: usize = 1024;
/// Queued messages written per flush at most, and frames read per turn at most, as Alight's
/// connection task.
const BATCH: usize = 64;
/// Largest message accepted.
const MAX_MESSAGE: usize = 1024 * 1024;
/// Per-socket read buffer, as Alight's: small, so idle sockets stay cheap.
const READ_BUFFER: usize = 4096;
/// Per-socket write buffer target, as Alight's: a batch is fed, then flushed once.
const WRITE_BUFFER: usize = 16 * 1024;
/// Close code for a socket whose queue overflowed (as Alight's `SLOW_CONSUMER`).
const SLOW_CONSUMER: u16 = 1013;
/// Close code for a frame that does not decode.
const INVALID_FRAME: u16 = 1007;
/// A publisher's own queue (its shouts' copies and replies) waits while a subscriber's queue
/// holds more than this many messages, as Alight answers a push once the broadcast of 16 steps
/// before is taken everywhere.
const HOLD: usize = 16;
/// Pacing ends after this long without the fullest subscriber taking anything.
pub const STALL: Duration = Duration::from_millis(100);
/// How often a held publisher looks at its fullest subscriber's queue.
const RECHECK: Duration = Duration::from_millis(1);
/// Longest wait for a close frame to go out.
const CLOSE_LIMIT: Duration = Duration::from_secs(1);

/// A topic's members: each socket's mailbox in a slot, freed slots reused.
#[derive(Debug, Default)]
struct Room {
    slots: Vec<Option<Arc<Mailbox>>>,
    free: Vec<usize>,
}

/// What every connection shares.
#[derive(Debug, Default)]
struct Hub {
    /// Members by topic. Joins and leaves write it; a broadcast holds the lock for one pass of
    /// pushes, which never wait, so a `std` mutex is right and no `.await` happens under it.
    rooms: Mutex<HashMap<Box<str>, Room>>,
    slow_consumers: AtomicU64,
}

impl Hub {
    fn rooms(&self) -> MutexGuard<'_, HashMap<Box<str>, Room>> {
        self.rooms.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds `mailbox` to `topic`'s members; returns its slot.
    fn join(&self, topic: &str, mailbox: &Arc<Mailbox>) -> usize {
        let mut rooms = self.rooms();
        let room = rooms.entry(topic.into()).or_default();
        match room.free.pop() {
            Some(slot) => {
                room.slots[slot] = Some(mailbox.clone());
                slot
            }
            None => {
                room.slots.push(Some(mailbox.clone()));
                room.slots.len() - 1
            }
        }
    }

    fn leave(&self, topic: &str, slot: usize) {
        let mut rooms = self.rooms();
        let Some(room) = rooms.get_mut(topic) else {
            return;
        };
        if room.slots.get_mut(slot).and_then(Option::take).is_some() {
            room.free.push(slot);
        }
        if room.free.len() == room.slots.len() {
            rooms.remove(topic);
        }
    }

    /// Queues `text` for every member of `topic`; returns the fullest member's mailbox if that
    /// now holds more than [`HOLD`] messages, with the topic's pacing window.
    fn broadcast(&self, topic: &str, text: &Utf8Bytes) -> Option<Pause> {
        let rooms = self.rooms();
        let room = rooms.get(topic)?;
        let mut fullest: Option<(usize, &Arc<Mailbox>)> = None;
        for mailbox in room.slots.iter().flatten() {
            match mailbox.offer(text.clone()) {
                Offered::Queued(len) if len > HOLD => {
                    if fullest.is_none_or(|(most, _)| len > most) {
                        fullest = Some((len, mailbox));
                    }
                }
                Offered::Queued(_) | Offered::Refused => {}
                Offered::Kicked => self.slow_consumer(),
            }
        }
        let members = room.slots.len() - room.free.len();
        fullest.map(|(_, mailbox)| Pause::new(mailbox.clone(), window(members)))
    }

    fn slow_consumer(&self) {
        let n = self.slow_consumers.fetch_add(1, Ordering::Relaxed) + 1;
        if n.is_power_of_two() {
            eprintln!("bench-bare: {n} slow consumers disconnected so far");
        }
    }
}

/// The baseline's router: the WebSocket at `/socket/websocket`.
pub fn router() -> Router {
    Router::new()
        .route("/socket/websocket", get(upgrade))
        .with_state(Arc::new(Hub::default()))
}

/// Serves [`router`] on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    super::serve_router(listener, router(), shutdown).await
}

async fn upgrade(ws: WebSocketUpgrade, State(hub): State<Arc<Hub>>) -> Response {
    ws.max_message_size(MAX_MESSAGE)
        .max_frame_size(MAX_MESSAGE)
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .on_upgrade(move |socket| connection(socket, hub))
}

/// Why a connection ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The client closed it, or the socket failed.
    Closed,
    /// Its queue overflowed.
    Kicked,
    /// It sent a frame that does not decode.
    Invalid,
}

/// One joined topic of a socket.
#[derive(Debug)]
struct Joined {
    topic: Box<str>,
    /// The topic as the join sent it, for `phx_close`.
    topic_raw: Box<str>,
    /// The join's `join_ref`, raw JSON.
    join_ref: Box<str>,
    slot: usize,
}

/// How many messages a subscriber's queue may hold before its publisher stops reading: Alight's
/// pacing window (64 broadcasts into up to 5,120 subscribers, then one more per 80, at most
/// 128), so that the two servers are compared at the same pacing budget.
fn window(members: usize) -> usize {
    (members / 80).clamp(64, 128)
}

/// A publisher held back until its fullest subscriber catches up: its own queue waits while that
/// subscriber holds more than [`HOLD`] messages, its reads while it holds more than the window.
#[derive(Debug)]
struct Pause {
    fullest: Arc<Mailbox>,
    window: usize,
    /// Its queue's length when last seen shorter, and when.
    last: usize,
    since: Instant,
    recheck: Pin<Box<Sleep>>,
}

impl Pause {
    fn new(fullest: Arc<Mailbox>, window: usize) -> Pause {
        let now = Instant::now();
        Pause {
            last: fullest.len(),
            fullest,
            window,
            since: now,
            recheck: Box::pin(tokio::time::sleep_until(now + RECHECK)),
        }
    }

    /// The fullest subscriber's queue length while the pause holds (the task is then woken to
    /// look again); `None` once it is down to [`HOLD`], closed, or stalled for [`STALL`].
    fn poll_len(&mut self, cx: &mut Context<'_>) -> Option<usize> {
        let len = self.fullest.len();
        if len <= HOLD || self.fullest.is_kicked() {
            return None;
        }
        let now = Instant::now();
        if len < self.last {
            (self.last, self.since) = (len, now);
        } else if now >= self.since + STALL {
            return None;
        }
        self.recheck.as_mut().reset(now + RECHECK);
        // Registers the wake-up; a deadline in the future is never ready yet.
        let _ = self.recheck.as_mut().poll(cx);
        Some(len)
    }
}

/// A socket's own state, owned by its task.
struct Conn<'h> {
    hub: &'h Hub,
    mailbox: Arc<Mailbox>,
    /// The waker the WebSocket's read side is polled with: the mailbox, which marks it readable.
    read_waker: Waker,
    joined: Vec<Joined>,
    /// To write this turn, in order.
    out: VecDeque<Utf8Bytes>,
    /// Whether something fed has not been flushed.
    unflushed: bool,
    /// Something of this socket's waits in its queue (a shout's own copy, say): replies queue
    /// behind it, so they keep their order.
    behind: bool,
    pause: Option<Pause>,
}

async fn connection(mut socket: WebSocket, hub: Arc<Hub>) {
    let mailbox = Mailbox::new(QUEUE);
    let mut conn = Conn {
        hub: &hub,
        read_waker: Waker::from(mailbox.clone()),
        mailbox,
        joined: Vec::new(),
        out: VecDeque::new(),
        unflushed: false,
        behind: false,
        pause: None,
    };
    let end = loop {
        if let Err(end) = poll_fn(|cx| conn.poll_turn(&mut socket, cx)).await {
            break end;
        }
        if let Err(end) = poll_fn(|cx| conn.poll_write(&mut socket, cx)).await {
            break end;
        }
    };
    for joined in conn.joined.drain(..) {
        hub.leave(&joined.topic, joined.slot);
    }
    let (code, reason) = match end {
        End::Closed => {
            // Sends tungstenite's answer to a client's close frame, if that is what ended it.
            let _ = tokio::time::timeout(CLOSE_LIMIT, socket.flush()).await;
            return;
        }
        End::Kicked => (SLOW_CONSUMER, "outbound queue full"),
        End::Invalid => (INVALID_FRAME, "frame does not decode"),
    };
    let close = Message::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }));
    let _ = tokio::time::timeout(CLOSE_LIMIT, socket.send(close)).await;
}

impl Conn<'_> {
    /// Takes what is queued and reads what arrived (each up to [`BATCH`]); ready once there is
    /// something to write or a frame was handled.
    fn poll_turn(&mut self, socket: &mut WebSocket, cx: &mut Context<'_>) -> Poll<Result<(), End>> {
        self.mailbox.register(cx);
        if self.mailbox.is_kicked() {
            return Poll::Ready(Err(End::Kicked));
        }
        let held = self.poll_pause(cx);
        // A held publisher's own queue waits, unless it fills up (others' broadcasts to it).
        let left = match held {
            Some(_) if self.mailbox.len() <= QUEUE / 2 => self.mailbox.len(),
            _ => self.mailbox.take(&mut self.out, BATCH),
        };
        self.behind = left > 0;
        let mut busy = !self.out.is_empty();
        let may_read = held.is_none_or(|(len, window)| len <= window);
        if left <= QUEUE / 2 && may_read {
            let mut frames = 0;
            while frames < BATCH && self.mailbox.take_readable() {
                let mut read_cx = Context::from_waker(&self.read_waker);
                match socket.poll_next_unpin(&mut read_cx) {
                    Poll::Pending => break,
                    Poll::Ready(Some(Ok(message))) => {
                        self.mailbox.set_readable();
                        frames += 1;
                        busy = true;
                        match message {
                            Message::Text(text) => {
                                if self.handle(&text).is_err() {
                                    return Poll::Ready(Err(End::Invalid));
                                }
                            }
                            Message::Close(_) => return Poll::Ready(Err(End::Closed)),
                            Message::Binary(_) | Message::Ping(_) | Message::Pong(_) => {}
                        }
                    }
                    Poll::Ready(Some(Err(_)) | None) => return Poll::Ready(Err(End::Closed)),
                }
            }
        }
        if busy {
            Poll::Ready(Ok(()))
        } else {
            Poll::Pending
        }
    }

    /// The fullest subscriber's queue length and the window, while this publisher is held.
    fn poll_pause(&mut self, cx: &mut Context<'_>) -> Option<(usize, usize)> {
        let pause = self.pause.as_mut()?;
        let held = pause.poll_len(cx).map(|len| (len, pause.window));
        if held.is_none() {
            self.pause = None;
        }
        held
    }

    /// Writes `out` and flushes; a kick ends a write that the client does not take.
    fn poll_write(
        &mut self,
        socket: &mut WebSocket,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), End>> {
        while !self.out.is_empty() {
            match socket.poll_ready_unpin(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(_)) => return Poll::Ready(Err(End::Closed)),
                Poll::Pending => return self.blocked(cx),
            }
            let text = self.out.pop_front().expect("the queue is not empty");
            if socket.start_send_unpin(Message::Text(text)).is_err() {
                return Poll::Ready(Err(End::Closed));
            }
            self.unflushed = true;
        }
        if self.unflushed {
            match socket.poll_flush_unpin(cx) {
                Poll::Ready(Ok(())) => self.unflushed = false,
                Poll::Ready(Err(_)) => return Poll::Ready(Err(End::Closed)),
                Poll::Pending => return self.blocked(cx),
            }
        }
        Poll::Ready(Ok(()))
    }

    /// The client is not taking what is written: wait, unless the queue overflows meanwhile.
    fn blocked(&self, cx: &mut Context<'_>) -> Poll<Result<(), End>> {
        self.mailbox.register(cx);
        if self.mailbox.is_kicked() {
            Poll::Ready(Err(End::Kicked))
        } else {
            Poll::Pending
        }
    }

    /// Sends `text` to this socket: written this turn, or queued behind what waits in its queue.
    fn send(&mut self, text: Utf8Bytes) {
        if !self.behind {
            self.out.push_back(text);
        } else if self.mailbox.offer(text) == Offered::Kicked {
            self.hub.slow_consumer();
        }
    }

    fn position(&self, topic: &str) -> Option<usize> {
        self.joined.iter().position(|j| &*j.topic == topic)
    }

    /// Handles one frame.
    fn handle(&mut self, text: &str) -> Result<(), FrameError> {
        let f = Frame::parse(text)?;
        let topic = &*f.topic.value;
        let joined = self.position(topic);
        match (&*f.event.value, joined) {
            ("heartbeat", _) if topic == "phoenix" => self.send(f.reply(true, "{}")),
            ("phx_join", _) => {
                if let Some(at) = joined {
                    let old = self.joined.swap_remove(at);
                    self.hub.leave(&old.topic, old.slot);
                }
                let slot = self.hub.join(topic, &self.mailbox);
                self.joined.push(Joined {
                    topic: topic.into(),
                    topic_raw: f.topic.raw.into(),
                    join_ref: f.join_ref.into(),
                    slot,
                });
                self.send(f.reply(true, "{}"));
            }
            (_, None) => self.send(f.reply(false, r#"{"reason":"unmatched topic"}"#)),
            ("phx_leave", Some(at)) => {
                let old = self.joined.swap_remove(at);
                self.hub.leave(&old.topic, old.slot);
                self.send(f.reply(true, "{}"));
                self.send(frame::phx_close(&old.join_ref, &old.topic_raw));
            }
            ("shout", Some(_)) => {
                if let Some(pause) = self.hub.broadcast(topic, &f.broadcast()) {
                    self.pause = Some(pause);
                }
                // Its own copy is in its queue now.
                self.behind = true;
                self.send(f.reply(true, "{}"));
            }
            ("ping", Some(_)) => self.send(f.reply(true, f.payload)),
            (_, Some(_)) => self.send(f.reply(false, r#"{"reason":"unknown event"}"#)),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pacing_window_is_alights() {
        let windows: Vec<usize> = [1, 1_000, 5_120, 8_000, 10_240, 20_000]
            .into_iter()
            .map(window)
            .collect();
        assert_eq!(windows, [64, 64, 64, 100, 128, 128]);
        assert!(window(usize::MAX) <= QUEUE / 4);
    }
}
