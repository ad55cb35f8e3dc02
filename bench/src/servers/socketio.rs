//! The socketioxide baseline: the demo's room contract with socket.io semantics.
//!
//! | client emits (with an ack) | server does |
//! |---|---|
//! | `join`, room | joins the room; acks `{}` |
//! | `leave`, room | leaves the room; acks `{}` |
//! | `shout`, room, payload | emits `shout` with the payload to everyone in the room, sender included; acks `{}` |
//! | `ping`, payload | acks with the payload |
//!
//! WebSocket transport only, at `/socket.io/`. Each socket's buffer holds [`QUEUE`] packets, as
//! Alight's outbound queue; socketioxide drops a packet for a socket whose buffer is full (the
//! socket stays connected). Those drops are counted and logged, and the generator sees them as
//! missing deliveries.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use serde_json::{Map, Value};
use socketioxide::extract::{AckSender, Data, SocketRef};
use socketioxide::{SocketIo, TransportType};
use tokio::net::TcpListener;

/// Packets buffered per socket (socketioxide's default is 128).
pub const QUEUE: usize = 1024;

/// Sends socketioxide refused because a socket's buffer was full or the socket was closing:
/// counted and logged (at powers of two) so they are never silent.
static DROPPED: AtomicU64 = AtomicU64::new(0);

fn dropped(what: &str, err: &dyn std::fmt::Display) {
    let n = DROPPED.fetch_add(1, Ordering::Relaxed) + 1;
    if n.is_power_of_two() {
        eprintln!("bench-socketioxide: {n} refused sends so far; latest, {what}: {err}");
    }
}

fn ack_or_count<T: serde::Serialize + ?Sized>(ack: AckSender, value: &T) {
    if let Err(err) = ack.send(value) {
        dropped("an ack", &err);
    }
}

/// The baseline's router: socket.io at `/socket.io/`.
pub fn router() -> Router {
    let (layer, io) = SocketIo::builder()
        .max_buffer_size(QUEUE)
        .transports([TransportType::Websocket])
        .build_layer();
    io.ns("/", async |socket: SocketRef| on_connect(&socket));
    Router::new().layer(layer)
}

/// Serves [`router`] on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    super::serve_router(listener, router(), shutdown).await
}

fn on_connect(socket: &SocketRef) {
    socket.on(
        "join",
        async |socket: SocketRef, Data(room): Data<String>, ack: AckSender| {
            socket.join(room);
            ack_or_count(ack, &Map::new());
        },
    );
    socket.on(
        "leave",
        async |socket: SocketRef, Data(room): Data<String>, ack: AckSender| {
            socket.leave(room);
            ack_or_count(ack, &Map::new());
        },
    );
    socket.on(
        "shout",
        async |socket: SocketRef, Data((room, payload)): Data<(String, Value)>, ack: AckSender| {
            if let Err(err) = socket.within(room).emit("shout", &payload).await {
                dropped("a broadcast", &err);
            }
            ack_or_count(ack, &Map::new());
        },
    );
    socket.on(
        "ping",
        async |Data(payload): Data<Value>, ack: AckSender| {
            ack_or_count(ack, &payload);
        },
    );
}
