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
//!
//! [`router`] is one process on its own. [`router_on_redis`] puts it on socketioxide's own Redis
//! adapter (`socketioxide-redis`, the `redis` driver): a `shout` reaches the room's sockets on
//! every process on the same Redis, so that the fan-out can publish on one node and count the
//! deliveries on another, as it does for Alight's adapter.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use serde_json::{Map, Value};
use socketioxide::adapter::{Adapter, Emitter, LocalAdapter};
use socketioxide::extract::{AckSender, Data, SocketRef};
use socketioxide::{SocketIo, SocketIoBuilder, TransportType};
use socketioxide_redis::drivers::redis::{RedisDriver, redis_client};
use socketioxide_redis::{InitError, RedisAdapter, RedisAdapterCtr};
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

fn ack_or_count<A: Adapter, T: serde::Serialize + ?Sized>(ack: AckSender<A>, value: &T) {
    if let Err(err) = ack.send(value) {
        dropped("an ack", &err);
    }
}

fn builder() -> SocketIoBuilder {
    SocketIo::builder()
        .max_buffer_size(QUEUE)
        .transports([TransportType::Websocket])
}

/// The baseline's router: socket.io at `/socket.io/`, one process on its own.
pub fn router() -> Router {
    let (layer, io) = builder().build_layer();
    io.ns("/", connected::<LocalAdapter>);
    Router::new().layer(layer)
}

/// Why the baseline could not start on Redis.
#[derive(Debug, thiserror::Error)]
pub enum RedisSetupError {
    /// The URL is not a Redis URL, or Redis could not be reached.
    #[error("cannot connect to Redis at {url}")]
    Connect {
        /// The URL, with the RESP3 parameter the adapter needs.
        url: String,
        /// Why.
        #[source]
        source: redis_client::RedisError,
    },
    /// The adapter could not subscribe to its channels.
    #[error("socketioxide's Redis adapter could not subscribe to its channels")]
    Subscribe(#[source] InitError<RedisDriver>),
}

/// [`router`] on socketioxide's Redis adapter, connected to the Redis at `url` and subscribed
/// when it returns. The adapter's drivers speak RESP3 (Redis 7 or later): `protocol=resp3` is
/// added to the URL unless it names a protocol.
pub async fn router_on_redis(url: &str) -> Result<Router, RedisSetupError> {
    let url = if url.contains("protocol=") {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&protocol=resp3")
    } else {
        format!("{url}?protocol=resp3")
    };
    let connect = async {
        let client = redis_client::Client::open(url.as_str())?;
        RedisAdapterCtr::new_with_redis(&client).await
    };
    let adapter = connect
        .await
        .map_err(|source| RedisSetupError::Connect { url, source })?;
    let (layer, io) = builder()
        .with_adapter::<RedisAdapter<Emitter>>(adapter)
        .build_layer();
    io.ns("/", connected::<RedisAdapter<Emitter>>)
        .await
        .map_err(RedisSetupError::Subscribe)?;
    Ok(Router::new().layer(layer))
}

/// Serves [`router`] on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    super::serve_router(listener, router(), shutdown).await
}

async fn connected<A: Adapter>(socket: SocketRef<A>) {
    on_connect(&socket);
}

fn on_connect<A: Adapter>(socket: &SocketRef<A>) {
    socket.on(
        "join",
        async |socket: SocketRef<A>, Data(room): Data<String>, ack: AckSender<A>| {
            socket.join(room);
            ack_or_count(ack, &Map::new());
        },
    );
    socket.on(
        "leave",
        async |socket: SocketRef<A>, Data(room): Data<String>, ack: AckSender<A>| {
            socket.leave(room);
            ack_or_count(ack, &Map::new());
        },
    );
    socket.on(
        "shout",
        async |socket: SocketRef<A>,
               Data((room, payload)): Data<(String, Value)>,
               ack: AckSender<A>| {
            if let Err(err) = socket.within(room).emit("shout", &payload).await {
                dropped("a broadcast", &err);
            }
            ack_or_count(ack, &Map::new());
        },
    );
    socket.on(
        "ping",
        async |Data(payload): Data<Value>, ack: AckSender<A>| {
            ack_or_count(ack, &payload);
        },
    );
}
