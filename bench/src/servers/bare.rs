//! The bare fan-out baseline: an axum WebSocket server with no channel logic.
//!
//! It speaks just enough V2 JSON for the generator (and for phoenix.js, for the contract below):
//! one member list for the whole server, each broadcast serialized once and its bytes shared by
//! every member's queue. What it leaves out is what Alight adds: channel processes and their
//! callbacks, routing by topic pattern, the registry, limits beyond the queue, metrics, shutdown.
//!
//! | client sends | server does |
//! |---|---|
//! | `phx_join` | adds (socket, topic) to the member list; ok `{}` (a second join replaces the first) |
//! | `shout` (joined) | `[null,null,topic,"shout",payload]` to every member of the topic, then ok `{}` |
//! | `ping` (joined) | ok with the payload |
//! | `phx_leave` | removes the membership; ok `{}`, then `phx_close` |
//! | `heartbeat` on `phoenix` | ok `{}` |
//! | any other event, or a topic not joined | error `{"reason":"unmatched topic"}` or `{"reason":"unknown event"}` |
//!
//! Like Alight, each socket has a bounded outbound queue ([`QUEUE`] messages); a socket whose queue
//! is full is closed with 1013 (try again later) and counted, not silently skipped. A socket whose
//! own queue is over half full is not read until it drains, so a publisher that outruns the
//! fan-out is slowed rather than disconnected (Alight paces its publishers too). Its WebSocket
//! buffers are Alight's sizes too (4 KiB read, 16 KiB write), and it sets `TCP_NODELAY`.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use axum::routing::get;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Messages queued for one socket, as Alight's default `outbound_queue`.
pub const QUEUE: usize = 1024;
/// Queued messages written per flush at most, as Alight's connection task.
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

/// One membership: a socket joined to a topic.
#[derive(Debug)]
struct Member {
    topic: Arc<str>,
    queue: mpsc::Sender<Utf8Bytes>,
    /// Cancelled when the queue overflows; the socket's task then closes it.
    kick: CancellationToken,
}

/// What every connection shares.
#[derive(Debug, Default)]
struct Room {
    /// The member list, by membership id. Joins and leaves write it; a broadcast holds the lock for
    /// one pass of `try_send`s, which never wait, so a `std` mutex is right and no `.await` ever
    /// happens under it.
    members: Mutex<HashMap<u64, Member>>,
    next_id: AtomicU64,
    slow_consumers: AtomicU64,
}

impl Room {
    fn add(&self, member: Member) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(id, member);
        id
    }

    fn remove(&self, id: u64) {
        self.lock().remove(&id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Member>> {
        self.members.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `text` (encoded once) for every member of `topic`.
    fn broadcast(&self, topic: &str, text: &Utf8Bytes) {
        let members = self.lock();
        for member in members.values() {
            if &*member.topic != topic {
                continue;
            }
            if let Err(mpsc::error::TrySendError::Full(_)) = member.queue.try_send(text.clone()) {
                self.kicked(&member.kick);
            }
        }
    }

    fn kicked(&self, kick: &CancellationToken) {
        if !kick.is_cancelled() {
            kick.cancel();
            let n = self.slow_consumers.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_power_of_two() {
                eprintln!("bench-bare: {n} slow consumers disconnected so far");
            }
        }
    }
}

/// The baseline's router: the WebSocket at `/socket/websocket`.
pub fn router() -> Router {
    Router::new()
        .route("/socket/websocket", get(upgrade))
        .with_state(Arc::new(Room::default()))
}

/// Serves [`router`] on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    super::serve_router(listener, router(), shutdown).await
}

async fn upgrade(ws: WebSocketUpgrade, State(room): State<Arc<Room>>) -> Response {
    ws.max_message_size(MAX_MESSAGE)
        .max_frame_size(MAX_MESSAGE)
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .on_upgrade(move |socket| connection(socket, room))
}

/// A client frame, borrowed from its text where it has no escapes.
#[derive(Debug, Deserialize)]
struct In<'a>(
    #[serde(borrow)] Option<Cow<'a, str>>,
    #[serde(borrow)] Option<Cow<'a, str>>,
    #[serde(borrow)] Cow<'a, str>,
    #[serde(borrow)] Cow<'a, str>,
    #[serde(borrow)] &'a RawValue,
);

/// One socket: this task reads and dispatches; a writer task drains the queue into the socket.
async fn connection(socket: WebSocket, room: Arc<Room>) {
    let (mut sink, mut stream) = socket.split();
    let (queue, mut outbound) = mpsc::channel::<Utf8Bytes>(QUEUE);
    let kick = CancellationToken::new();
    let close_code = Arc::new(AtomicU64::new(u64::from(SLOW_CONSUMER)));

    let writer = {
        let (kick, close_code) = (kick.clone(), close_code.clone());
        tokio::spawn(async move {
            loop {
                let first = tokio::select! {
                    () = kick.cancelled() => break,
                    next = outbound.recv() => match next {
                        Some(text) => text,
                        None => return,
                    },
                };
                if sink.feed(Message::Text(first)).await.is_err() {
                    return;
                }
                for _ in 1..BATCH {
                    match outbound.try_recv() {
                        Ok(text) => {
                            if sink.feed(Message::Text(text)).await.is_err() {
                                return;
                            }
                        }
                        Err(_) => break,
                    }
                }
                if sink.flush().await.is_err() {
                    return;
                }
            }
            let code = u16::try_from(close_code.load(Ordering::Relaxed)).unwrap_or(SLOW_CONSUMER);
            let reason = if code == SLOW_CONSUMER {
                "outbound queue full"
            } else {
                "frame does not decode"
            };
            let _ = sink
                .send(Message::Close(Some(CloseFrame {
                    code,
                    reason: reason.into(),
                })))
                .await;
        })
    };

    let mut conn = Conn {
        room: &room,
        queue,
        kick: kick.clone(),
        joined: HashMap::new(),
    };
    loop {
        // A client whose own queue is over half full is not read until its writer catches up: a
        // publisher receives its own copy of every shout and a reply, so without this a
        // publisher that outruns the fan-out fills its own queue first and is disconnected as a
        // slow consumer, and everything it would have sent is lost.
        if conn.queue.capacity() < QUEUE / 2 {
            tokio::select! {
                () = kick.cancelled() => break,
                reserved = conn.queue.reserve_many(QUEUE / 2) => if reserved.is_err() { break },
            }
        }
        let message = tokio::select! {
            () = kick.cancelled() => break,
            message = stream.next() => message,
        };
        match message {
            Some(Ok(Message::Text(text))) => {
                if conn.handle(&text).is_err() {
                    close_code.store(u64::from(INVALID_FRAME), Ordering::Relaxed);
                    kick.cancel();
                    break;
                }
            }
            Some(Ok(Message::Binary(_) | Message::Ping(_) | Message::Pong(_))) => {}
            Some(Ok(Message::Close(_)) | Err(_)) | None => break,
        }
    }
    for (id, _) in conn.joined.into_values() {
        room.remove(id);
    }
    drop(conn.queue);
    let _ = writer.await;
}

/// A socket's own state, owned by its reading task.
struct Conn<'h> {
    room: &'h Room,
    /// This socket's queue: replies and broadcasts alike, so a shout's own copy precedes its reply.
    queue: mpsc::Sender<Utf8Bytes>,
    kick: CancellationToken,
    /// Topic → (membership id, join_ref).
    joined: HashMap<String, (u64, Option<String>)>,
}

impl Conn<'_> {
    fn push(&self, text: String) {
        if let Err(mpsc::error::TrySendError::Full(_)) = self.queue.try_send(Utf8Bytes::from(text))
        {
            self.room.kicked(&self.kick);
        }
    }

    fn reply(&self, f: &In<'_>, status: &str, response: &str) {
        self.push(format!(
            "[{},{},{},\"phx_reply\",{{\"status\":{},\"response\":{response}}}]",
            json(f.0.as_deref()),
            json(f.1.as_deref()),
            json(Some(&f.2)),
            json(Some(status)),
        ));
    }

    /// Handles one frame; `Err` if it does not decode.
    fn handle(&mut self, text: &str) -> Result<(), serde_json::Error> {
        let f: In<'_> = serde_json::from_str(text)?;
        let (topic, event) = (&*f.2, &*f.3);
        match event {
            "heartbeat" if topic == "phoenix" => self.reply(&f, "ok", "{}"),
            "phx_join" => {
                if let Some((old, _)) = self.joined.remove(topic) {
                    self.room.remove(old);
                }
                let id = self.room.add(Member {
                    topic: Arc::from(topic),
                    queue: self.queue.clone(),
                    kick: self.kick.clone(),
                });
                self.joined
                    .insert(topic.to_owned(), (id, f.1.as_deref().map(str::to_owned)));
                self.reply(&f, "ok", "{}");
            }
            _ if !self.joined.contains_key(topic) => {
                self.reply(&f, "error", r#"{"reason":"unmatched topic"}"#);
            }
            "phx_leave" => {
                if let Some((id, join_ref)) = self.joined.remove(topic) {
                    self.room.remove(id);
                    self.reply(&f, "ok", "{}");
                    let join_ref = json(join_ref.as_deref());
                    self.push(format!(
                        "[{join_ref},{join_ref},{},\"phx_close\",{{}}]",
                        json(Some(topic))
                    ));
                }
            }
            "shout" => {
                let text = format!("[null,null,{},\"shout\",{}]", json(Some(topic)), f.4.get());
                self.room.broadcast(topic, &Utf8Bytes::from(text));
                self.reply(&f, "ok", "{}");
            }
            "ping" => self.reply(&f, "ok", f.4.get()),
            _ => self.reply(&f, "error", r#"{"reason":"unknown event"}"#),
        }
        Ok(())
    }
}

/// `null` or a JSON string literal.
fn json(s: Option<&str>) -> Cow<'static, str> {
    match s {
        None => Cow::Borrowed("null"),
        Some(s) => Cow::Owned(crate::wire::json_string(s)),
    }
}
