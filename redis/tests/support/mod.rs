//! What the cluster tests need: a throwaway `redis-server`, Alight nodes on loopback with the
//! fixture's channels, and a few HTTP and client helpers.

#![allow(dead_code, reason = "each test file uses part of the support")]

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use alight_protocol::Frame;
use alight_protocol::Payload;
use alight_protocol::presence::{PresenceDiff, PresenceState, PresenceSync};
use alight_redis::{RedisConfig, RedisPubSub};
use alight_server::{Alight, Channel, Config, Connected, Context, HandleIn, History, JoinError};
use alight_tests::client::TestClient;
use alight_tests::fixture::{self, PresenceRoom, Room};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;

/// How long any one step of a test may take.
pub const STEP: Duration = Duration::from_secs(10);

/// Runs `future`, failing the test if it takes longer than [`STEP`].
pub async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    match tokio::time::timeout(STEP, future).await {
        Ok(value) => value,
        Err(_) => panic!("timed out: {what}"),
    }
}

/// A `redis-server` on a free loopback port, in its own temporary directory, persisting nothing;
/// killed when dropped.
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
    /// Whether it keeps its data across a kill (an append-only file synced on every write).
    persistent: bool,
}

impl RedisServer {
    /// Starts one and waits until it answers PING. `None` (with a message) if `redis-server` is
    /// not installed, unless `CI` is set: there it must be (scripts/setup installs it).
    pub async fn start() -> Option<RedisServer> {
        Self::start_with(false).await
    }

    /// As [`start`](Self::start), keeping every write in an append-only file synced at once, so
    /// that it keeps its data when killed and started again.
    pub async fn start_persistent() -> Option<RedisServer> {
        Self::start_with(true).await
    }

    async fn start_with(persistent: bool) -> Option<RedisServer> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free loopback port")
            .port();
        let dir = std::env::temp_dir().join(format!(
            "alight-redis-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        let mut server = RedisServer {
            port,
            dir,
            child: None,
            persistent,
        };
        match server.spawn().await {
            Ok(()) => Some(server),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                assert!(
                    std::env::var_os("CI").is_none(),
                    "redis-server is not installed (run scripts/setup)"
                );
                eprintln!("SKIPPED: redis-server is not installed (scripts/setup installs it)");
                None
            }
            Err(err) => panic!("redis-server did not start: {err}"),
        }
    }

    async fn spawn(&mut self) -> std::io::Result<()> {
        let mut child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--daemonize", "no"])
            .args(if self.persistent {
                ["--appendonly", "yes", "--appendfsync", "always"]
            } else {
                ["--appendonly", "no", "--appendfsync", "no"]
            })
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        let stdout = child.stdout.take().expect("stdout is piped");
        self.child = Some(child);
        // Its log says when it listens; then the log is drained so that it never blocks on it.
        let mut lines = BufReader::new(stdout).lines();
        within("redis-server to be ready", async {
            while let Some(line) = lines.next_line().await? {
                if line.contains("Ready to accept connections") {
                    return Ok(());
                }
            }
            Err(std::io::Error::other(
                "redis-server exited before it was ready",
            ))
        })
        .await?;
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).await?;
        stream.write_all(b"PING\r\n").await?;
        let mut pong = [0; 7];
        stream.read_exact(&mut pong).await?;
        assert_eq!(&pong, b"+PONG\r\n", "redis-server answers PING");
        Ok(())
    }

    /// `redis://127.0.0.1:<port>/`
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A connection of its own, to look at what the nodes stored.
    pub async fn connection(&self) -> redis::aio::MultiplexedConnection {
        let client = redis::Client::open(self.url()).expect("a valid URL");
        within(
            "a Redis connection",
            client.get_multiplexed_async_connection(),
        )
        .await
        .expect("connects")
    }

    /// Kills the server (SIGKILL) and waits until it is gone.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.expect("redis-server killed");
        }
    }

    /// Starts it again on the same port.
    pub async fn restart(&mut self) {
        self.kill().await;
        self.spawn().await.expect("redis-server restarts");
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A TCP proxy to a Redis that can be cut: one node's way to Redis, so that it alone loses it.
#[derive(Debug)]
pub struct Proxy {
    addr: SocketAddr,
    open: Arc<tokio::sync::watch::Sender<bool>>,
    task: JoinHandle<()>,
}

impl Proxy {
    /// A proxy to the Redis on `port`, open.
    pub async fn start(port: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local address");
        let open = Arc::new(tokio::sync::watch::Sender::new(true));
        let state = open.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !*state.borrow() {
                    continue;
                }
                let mut closed = state.subscribe();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(("127.0.0.1", port)).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = closed.wait_for(|open| !open) => {}
                    }
                });
            }
        });
        Proxy { addr, open, task }
    }

    /// `redis://<the proxy>/`
    pub fn url(&self) -> String {
        format!("redis://{}/", self.addr)
    }

    /// Drops every connection through it and refuses new ones.
    pub fn cut(&self) {
        self.open.send_replace(false);
    }

    /// Lets connections through again.
    pub fn restore(&self) {
        self.open.send_replace(true);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One Alight node: the fixture's `room:*` and `presence:*` channels, `history:*` (the fixture's
/// room keeping the last 10,000 broadcasts), [`Strict`]'s `strict:*` (keeping the last 100),
/// `bytes:*` (the room keeping at most [`BYTE_BUDGET`] bytes a topic) and `few:*` (the room
/// keeping the last 3 broadcasts, for at least a minute), on the Redis adapter with its history
/// store. A socket connecting with token `t` gets socket
/// id `user_socket:t`.
#[derive(Debug)]
pub struct Node {
    pub alight: Alight,
    pub redis: RedisPubSub,
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

/// What a `bytes:*` topic keeps at most: a few dozen-byte broadcasts.
pub const BYTE_BUDGET: usize = 200;

/// Short periods so that the tests run in seconds.
pub fn quick(config: RedisConfig) -> RedisConfig {
    config
        .presence_period(Duration::from_millis(50))
        .heartbeat(Duration::from_millis(100))
        .down_period(Duration::from_secs(1))
        .reconnect_backoff(Duration::from_millis(20), Duration::from_millis(200))
        .timeout(Duration::from_millis(500))
}

impl Node {
    /// Starts a node named `name` on `redis` with channel prefix `prefix`.
    pub async fn start(redis: &RedisServer, prefix: &str, name: &str) -> Node {
        Self::start_at(&redis.url(), prefix, name).await
    }

    /// Starts a node named `name` on the Redis at `url` (a [`Proxy`]'s, say).
    pub async fn start_at(url: &str, prefix: &str, name: &str) -> Node {
        let config = quick(RedisConfig::new(url).prefix(prefix).node_name(name));
        let adapter = RedisPubSub::new(config).expect("a valid URL");
        let alight = Alight::builder()
            .config(Config::default().shutdown_timeout(Duration::from_secs(2)))
            .on_connect(|info| async move {
                Ok(match info.token {
                    Some(token) => Connected::new().id(format!("user_socket:{token}")),
                    None => Connected::new(),
                })
            })
            .channel("room:*", Room { private: false })
            .channel("presence:*", PresenceRoom)
            .channel("history:*", Room { private: false })
            .history(History::last(10_000).for_at_least(Duration::from_secs(300)))
            .channel("strict:*", Strict)
            .history(History::last(100))
            .channel("bytes:*", Room { private: false })
            .history(History::last(10_000).max_bytes(BYTE_BUDGET))
            .channel("few:*", Room { private: false })
            .history(History::last(3).for_at_least(Duration::from_secs(60)))
            .history_store(adapter.history())
            .pubsub(adapter.install())
            .build();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local address");
        let app = fixture::app(&alight, Arc::new(Notify::new()));
        let (stop, stopped) = oneshot::channel::<()>();
        let server = alight.clone();
        let task = tokio::spawn(async move {
            server
                .serve(listener, app, async {
                    let _ = stopped.await;
                })
                .await
        });
        Node {
            alight,
            redis: adapter,
            addr,
            stop: Some(stop),
            task,
        }
    }

    /// A client connected to this node (with `token`, if any).
    pub async fn client(&self, token: Option<&str>) -> TestClient {
        let url = format!("ws://{}/socket/websocket?vsn=2.0.0", self.addr);
        within("connect", TestClient::connect(&url, token))
            .await
            .expect("connects")
    }

    /// Stops serving and waits until the sockets are closed.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

/// `strict:*`: any event is broadcast with [`Context::try_broadcast`] and answered ok `{}`, or
/// error `{"reason": "unavailable"}` when the history could not keep it.
#[derive(Debug)]
pub struct Strict;

impl Channel for Strict {
    type State = ();

    async fn join(&self, _: Payload, _: &mut Context<'_>) -> Result<((), Payload), JoinError> {
        Ok(((), Payload::empty()))
    }

    async fn handle_in(
        &self,
        event: &str,
        payload: Payload,
        _: &mut (),
        ctx: &mut Context<'_>,
    ) -> HandleIn {
        match ctx.try_broadcast(event.to_owned(), payload).await {
            Ok(()) => HandleIn::ok(Payload::empty()),
            Err(_) => HandleIn::error_reason("unavailable"),
        }
    }
}

/// `POST /api/broadcast` of `{"n": n}` as `event` on `topic`, with the fixture's key: the status.
pub async fn api_broadcast(addr: SocketAddr, topic: &str, event: &str, n: i64) -> u16 {
    let auth = format!("Bearer {}", fixture::API_KEY);
    let body = serde_json::json!({"topic": topic, "event": event, "payload": {"n": n}}).to_string();
    let (status, _) = http(
        addr,
        "POST",
        "/api/broadcast",
        &[
            ("authorization", auth.as_str()),
            ("content-type", "application/json"),
        ],
        &body,
    )
    .await;
    status
}

/// Waits until every node hears from all the others and reaches Redis.
pub async fn until_clustered(nodes: &[&Node]) {
    let others = nodes.len() - 1;
    for node in nodes {
        within(
            "the nodes to hear from each other",
            node.redis
                .wait_until(|redis| redis.is_connected() && redis.nodes_up() == others),
        )
        .await;
    }
}

/// An HTTP/1.1 request to `addr`: the status and the body.
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream
        .write_all(request.as_bytes())
        .await
        .expect("request sent");
    let mut response = String::new();
    within("an HTTP response", stream.read_to_string(&mut response))
        .await
        .expect("response read");
    let status = response
        .get(9..12)
        .and_then(|code| code.parse().ok())
        .expect("a status line");
    let body = response
        .split_once("\r\n\r\n")
        .map_or("", |(_, body)| body)
        .to_owned();
    (status, body)
}

/// The next event frame named `event` on `topic` (other frames skipped).
pub async fn next_event(client: &mut TestClient, topic: &str, event: &str) -> Frame {
    within(
        event,
        client.recv_until(|frame| frame.topic == topic && frame.event() == event),
    )
    .await
    .unwrap_or_else(|err| panic!("waiting for {event} on {topic}: {err}"))
}

/// The `n` of a `{"n": ...}` payload.
pub fn n_of(frame: &Frame) -> Option<i64> {
    frame
        .payload()
        .deserialize::<serde_json::Value>()
        .ok()?
        .get("n")?
        .as_i64()
}

/// A client's presence list on `topic`, as phoenix.js keeps it.
#[derive(Debug)]
pub struct Watch {
    pub join_ref: String,
    pub sync: PresenceSync,
}

impl Watch {
    /// Applies the topic's presence frames until the listed keys are `keys`.
    pub async fn until_keys(&mut self, client: &mut TestClient, topic: &str, keys: &[&str]) {
        within("the presence list", async {
            loop {
                if self
                    .sync
                    .state()
                    .keys()
                    .map(String::as_str)
                    .eq(keys.iter().copied())
                {
                    return;
                }
                let frame = client
                    .recv_until(|frame| {
                        frame.topic == topic
                            && matches!(frame.event(), "presence_state" | "presence_diff")
                    })
                    .await
                    .expect("the socket stays open");
                if frame.event() == "presence_state" {
                    let state: PresenceState = frame.payload().deserialize().expect("a state");
                    self.sync.handle_state(&self.join_ref, state);
                } else {
                    let diff: PresenceDiff = frame.payload().deserialize().expect("a diff");
                    self.sync.handle_diff(&self.join_ref, diff);
                }
            }
        })
        .await;
    }
}

/// Joins `topic` (tracking `name` if given) and returns the client's presence list.
pub async fn join_presence(client: &mut TestClient, topic: &str, name: Option<&str>) -> Watch {
    let params = match name {
        Some(name) => serde_json::json!({ "name": name }),
        None => serde_json::json!({}),
    };
    let (join_ref, reply) = within("join", client.join(topic, params))
        .await
        .expect("joins");
    assert_eq!(reply.status, "ok", "join of {topic}");
    Watch {
        join_ref,
        sync: PresenceSync::new(),
    }
}
