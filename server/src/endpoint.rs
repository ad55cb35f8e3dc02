//! The endpoint: the [`Alight`] handle, its builder, the WebSocket route and serving.
//!
//! ```no_run
//! use alight_server::{Alight, Channel, Context, HandleIn, JoinError};
//! use alight_protocol::Payload;
//!
//! struct Room;
//! impl Channel for Room {
//!     type State = ();
//!     async fn join(&self, _: Payload, _: &mut Context<'_>) -> Result<((), Payload), JoinError> {
//!         Ok(((), Payload::empty()))
//!     }
//!     async fn handle_in(&self, event: &str, payload: Payload, _: &mut (), ctx: &mut Context<'_>) -> HandleIn {
//!         ctx.broadcast(event.to_owned(), payload);
//!         HandleIn::ok(Payload::empty())
//!     }
//! }
//!
//! # async fn run() -> std::io::Result<()> {
//! let alight = Alight::builder().channel("room:*", Room).build();
//! let app = axum::Router::new().merge(alight.router());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:4000").await?;
//! alight.serve(listener, app, async { let _ = tokio::signal::ctrl_c().await; }).await
//! # }
//! ```

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use alight_protocol::Serializer;
use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{Extension, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use crate::channel::{BoxFuture, Channel, Erased};
use crate::config::Config;
use crate::connection;
use crate::history::{Histories, History, HistoryStore, InMemoryHistory, Sequenced};
use crate::memory::MemoryTrim;
use crate::metrics::Metrics;
use crate::presence::Presence;
use crate::pubsub::PubSub;
use crate::refusal::close_at_once;
use crate::registry::{LocalPubSub, Registry};
use crate::router::ChannelRouter;
use crate::socket::{ConnectError, ConnectInfo, Connected, Socket};
use crate::state::{ServerState, Shutdown};

/// Per-socket read buffer, and the most tungstenite reads per system call. It is allocated when
/// the socket is built and kept for its life, so every idle connection holds it: 2 KiB reads a
/// join, a heartbeat or a chat-sized push at once, at half the room of 4 KiB. A frame larger
/// than the buffer still arrives whole (the buffer grows to hold it), in one read per 2 KiB:
/// large pushes pay a little more CPU so that every idle connection holds less (the figures
/// are in bench/README.md, "Idle memory").
const READ_BUFFER: usize = 2048;
/// Per-socket write buffer target before tungstenite writes to the TCP stream.
const WRITE_BUFFER: usize = 16 * 1024;

/// The prefix of the auth token inside `Sec-WebSocket-Protocol` (phoenix.js `authToken`).
const AUTH_TOKEN_PREFIX: &str = "base64url.bearer.phx.";

type ConnectFn =
    dyn Fn(ConnectInfo) -> BoxFuture<'static, Result<Connected, ConnectError>> + Send + Sync;
type PubSubFactory = Box<dyn FnOnce(Arc<Registry>) -> Arc<dyn PubSub> + Send>;

/// What the upgrade route needs besides the connections' shared state.
struct Endpoint {
    state: Arc<ServerState>,
    connect: Option<Arc<ConnectFn>>,
    /// Tracks connection tasks so shutdown can wait for them.
    tracker: TaskTracker,
    /// One permit per open connection.
    permits: Arc<Semaphore>,
    /// Open sockets per peer IP address, when [`Limits::max_connections_per_ip`] is set. Taken by
    /// the upgrade handler, released by the connection task's [`PeerSlot`] when it ends.
    ///
    /// [`Limits::max_connections_per_ip`]: crate::Limits::max_connections_per_ip
    per_ip: Arc<Mutex<HashMap<IpAddr, usize>>>,
    next_conn: AtomicU64,
}

/// A running Alight endpoint: channels, PubSub and limits. Cheap to clone.
///
/// Build it with [`Alight::builder`], mount [`Alight::router`] (and [`Alight::api_router`]) into an
/// axum app, and run it with [`Alight::serve`].
#[derive(Clone)]
pub struct Alight {
    endpoint: Arc<Endpoint>,
}

impl std::fmt::Debug for Alight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Alight")
            .field("config", &self.state().config)
            .field("channels", &self.state().channels)
            .finish_non_exhaustive()
    }
}

/// Configures an [`Alight`] endpoint.
pub struct AlightBuilder {
    config: Config,
    channels: ChannelRouter,
    connect: Option<Arc<ConnectFn>>,
    pubsub: Option<PubSubFactory>,
    /// Every channel's pattern, in routing order, with the history it keeps.
    histories: Vec<(String, Option<History>)>,
    history_store: Option<Arc<dyn HistoryStore>>,
}

impl std::fmt::Debug for AlightBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlightBuilder")
            .field("config", &self.config)
            .field("channels", &self.channels)
            .finish_non_exhaustive()
    }
}

impl AlightBuilder {
    /// Routes topics matching `pattern` (`room:*` or an exact topic) to `channel`.
    pub fn channel<C: Channel>(self, pattern: impl Into<String>, channel: C) -> Self {
        self.route(pattern.into(), channel, None)
    }

    fn route<C: Channel>(
        mut self,
        pattern: String,
        channel: C,
        check: Option<crate::router::OutCheck>,
    ) -> Self {
        self.histories.push((pattern.clone(), None));
        self.channels
            .add(pattern, Arc::new(Erased(Arc::new(channel))), check);
        self
    }

    /// Keeps `history` for the topics of the channel added just before, so that clients resume
    /// where they left off (see [`History`](crate::History)).
    ///
    /// ```
    /// use std::time::Duration;
    /// use alight_server::Alight;
    /// use alight_server::History;
    /// # use alight_protocol::Payload;
    /// # use alight_server::{Channel, Context, HandleIn, JoinError};
    /// # struct Room;
    /// # impl Channel for Room {
    /// #     type State = ();
    /// #     async fn join(&self, _: Payload, _: &mut Context<'_>) -> Result<((), Payload), JoinError> { Ok(((), Payload::empty())) }
    /// #     async fn handle_in(&self, _: &str, _: Payload, _: &mut (), _: &mut Context<'_>) -> HandleIn { HandleIn::NoReply }
    /// # }
    ///
    /// let alight = Alight::builder()
    ///     .channel("room:*", Room)
    ///     .history(History::last(1_000).for_at_least(Duration::from_secs(300)))
    ///     .build();
    /// # let _ = alight;
    /// ```
    ///
    /// # Panics
    /// When no channel was added before it: the history would belong to no topics.
    pub fn history(mut self, history: History) -> Self {
        let (_, kept) = self
            .histories
            .last_mut()
            .expect("`history` follows the `channel` whose topics keep it");
        *kept = Some(history);
        self
    }

    /// Where histories are kept (default: an [`InMemoryHistory`] on this node).
    pub fn history_store(mut self, store: impl HistoryStore) -> Self {
        self.history_store = Some(Arc::new(store));
        self
    }

    /// Routes the topics of `C::Schema::TOPIC` to a [`TypedChannel`](crate::TypedChannel).
    ///
    /// `POST /api/broadcast` on those topics then only accepts the schema's `Out` events (422
    /// with the reason otherwise), so typed clients never receive what they cannot decode.
    pub fn typed_channel<C>(self, channel: C) -> Self
    where
        C: crate::typed::TypedChannel,
        crate::typed::Typed<C>: Channel,
    {
        let pattern = <C::Schema as alight_protocol::schema::Schema>::TOPIC;
        let check = crate::router::out_check::<C::Schema>;
        self.route(
            pattern.to_owned(),
            crate::typed::Typed(channel),
            Some(check),
        )
    }

    /// Decides whether a socket may connect (default: everyone, anonymously).
    ///
    /// ```
    /// use alight_server::{Alight, ConnectError, Connected};
    ///
    /// let alight = Alight::builder()
    ///     .on_connect(|info| async move {
    ///         match info.token.as_deref() {
    ///             Some("secret") => Ok(Connected::new().id("user_socket:1")),
    ///             _ => Err(ConnectError::new("bad token")),
    ///         }
    ///     })
    ///     .build();
    /// # let _ = alight;
    /// ```
    pub fn on_connect<F, Fut>(mut self, connect: F) -> Self
    where
        F: Fn(ConnectInfo) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Connected, ConnectError>> + Send + 'static,
    {
        self.connect = Some(Arc::new(move |info| Box::pin(connect(info))));
        self
    }

    /// Limits and timeouts.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Replaces the in-process PubSub (e.g. with a Redis adapter) given the local registry.
    pub fn pubsub<F>(mut self, make: F) -> Self
    where
        F: FnOnce(Arc<Registry>) -> Arc<dyn PubSub> + Send + 'static,
    {
        self.pubsub = Some(Box::new(make));
        self
    }

    /// Builds the endpoint.
    pub fn build(self) -> Alight {
        let metrics = Arc::new(Metrics::new());
        let registry = Arc::new(Registry::new(metrics.clone()));
        let pubsub: Arc<dyn PubSub> = match self.pubsub {
            Some(make) => make(registry.clone()),
            None => Arc::new(LocalPubSub::new(registry.clone(), metrics.clone())),
        };
        let store = self
            .history_store
            .unwrap_or_else(|| Arc::new(InMemoryHistory::new()));
        let histories = Arc::new(Histories::new(self.histories, store));
        let pubsub: Arc<dyn PubSub> = if histories.is_empty() {
            pubsub
        } else {
            Arc::new(Sequenced::new(pubsub, histories.clone()))
        };
        let permits = Arc::new(Semaphore::new(self.config.limits().max_connections));
        let memory = Arc::new(MemoryTrim::new(
            self.config.limits().memory_trim,
            metrics.connections.clone(),
        ));
        let local = registry.clone();
        let presence = Presence::new(self.config.limits().presence_batch_window, move |diff| {
            local.dispatch(&diff, None);
        });
        pubsub.attach_presence(&presence);
        let state = Arc::new(ServerState {
            config: self.config,
            registry,
            pubsub,
            presence,
            metrics,
            channels: self.channels,
            histories,
            shutdown: Shutdown::default(),
            memory,
        });
        Alight {
            endpoint: Arc::new(Endpoint {
                state,
                connect: self.connect,
                tracker: TaskTracker::new(),
                permits,
                per_ip: Arc::default(),
                next_conn: AtomicU64::new(1),
            }),
        }
    }
}

impl Alight {
    /// The state every connection shares.
    pub(crate) fn state(&self) -> &Arc<ServerState> {
        &self.endpoint.state
    }

    /// Starts configuring an endpoint.
    pub fn builder() -> AlightBuilder {
        AlightBuilder {
            config: Config::default(),
            channels: ChannelRouter::default(),
            connect: None,
            pubsub: None,
            histories: Vec::new(),
            history_store: None,
        }
    }

    /// The WebSocket route, `{path}/websocket` (default `/socket/websocket`), for any app state.
    pub fn router<S: Clone + Send + Sync + 'static>(&self) -> Router<S> {
        let path = format!("{}/websocket", self.state().config.path());
        Router::new()
            .route(&path, get(upgrade))
            .with_state(self.clone())
    }

    /// The PubSub in use.
    pub fn pubsub(&self) -> &Arc<dyn PubSub> {
        &self.state().pubsub
    }

    /// This node's presence: [`Presence::list`] of any topic, and replication for multi-node
    /// adapters.
    pub fn presence(&self) -> &Presence {
        &self.state().presence
    }

    /// This node's subscriptions.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.state().registry
    }

    /// The limits in force.
    pub fn config(&self) -> &Config {
        &self.state().config
    }

    /// The metrics in the Prometheus text format.
    pub fn metrics_text(&self) -> String {
        let mut text = self.state().metrics.render();
        let mut adapter = String::new();
        self.state().pubsub.encode_metrics(&mut adapter);
        // The adapter's metrics go before the closing `# EOF`, which must stay last.
        let end = text.rfind("# EOF").unwrap_or(text.len());
        text.insert_str(end, &adapter);
        text
    }

    /// Starts a graceful shutdown: new upgrades are refused and every socket is closed with 1012.
    pub fn shutdown(&self) {
        self.state().shutdown.start();
    }

    /// Serves `app` on `listener` until `shutdown` completes, then closes every socket with 1012
    /// (phoenix.js reconnects) and lets HTTP requests in progress finish, waiting for both at
    /// most [`shutdown_timeout`](crate::Limits::shutdown_timeout).
    ///
    /// HTTP/1 is served with the header and body timeouts and the connection limit of
    /// [`Limits`](crate::Limits), and each request carries the peer address as axum's
    /// `ConnectInfo<SocketAddr>`. Serving `app` some other way (e.g. `axum::serve`) works too,
    /// without those.
    pub async fn serve(
        &self,
        listener: TcpListener,
        app: Router,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        if let Ok(addr) = listener.local_addr() {
            info!(%addr, channels = ?self.state().channels, "serving");
        }
        let ours = &self.state().shutdown;
        let signal = async move {
            tokio::select! {
                () = shutdown => ours.start(),
                () = ours.started() => {}
            }
        };
        let http = crate::serve::serve_http(
            listener,
            app,
            self.state().shutdown.watcher(),
            *self.state().config.limits(),
            self.state().metrics.clone(),
        );
        // Sockets and HTTP requests drain side by side, each within the shutdown timeout.
        let sockets = async {
            self.state().shutdown.started().await;
            self.drain().await;
        };
        tokio::join!(signal, http, sockets);
        Ok(())
    }

    /// Waits for the connection tasks to finish after shutdown started.
    async fn drain(&self) {
        self.state().shutdown.start();
        let metrics = &self.state().metrics;
        info!(
            sockets = metrics.connections.get(),
            channels = metrics.channels.get(),
            "shutting down: draining sockets"
        );
        self.endpoint.tracker.close();
        let timeout = self.state().config.limits().shutdown_timeout;
        if tokio::time::timeout(timeout, self.endpoint.tracker.wait())
            .await
            .is_err()
        {
            warn!(
                open = self.endpoint.tracker.len(),
                "shutdown timed out with sockets still open"
            );
        } else {
            info!("all sockets closed");
        }
    }
}

fn refuse(alight: &Alight, status: StatusCode, reason: impl Into<String>) -> Response {
    alight.state().metrics.refused_connections.inc();
    let reason = reason.into();
    debug!(%status, %reason, "upgrade refused");
    (status, [(header::CACHE_CONTROL, "no-store")], reason).into_response()
}

/// Refuses a connection for its credentials: by closing the upgraded socket at once with the
/// refusal's close code (see [`crate::refusal`]), or with HTTP 403 when
/// [`Config::close_on_refusal`] is off. The closing socket holds a connection permit (`permit`,
/// else one taken here; with none left the answer is HTTP 503).
fn refuse_credentials(
    alight: &Alight,
    ws: WebSocketUpgrade,
    err: ConnectError,
    permit: Option<OwnedSemaphorePermit>,
) -> Response {
    let state = alight.state();
    if !state.config.closes_on_refusal() {
        return refuse(alight, StatusCode::FORBIDDEN, err.reason);
    }
    let permit = match permit {
        Some(permit) => permit,
        None => match alight.endpoint.permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                return refuse(
                    alight,
                    StatusCode::SERVICE_UNAVAILABLE,
                    "too many connections",
                );
            }
        },
    };
    state.metrics.refused_connections.inc();
    let refusal = err.refusal();
    debug!(code = refusal.close_code(), reason = %err.reason, "connection refused");
    let tracker = alight.endpoint.tracker.clone();
    ws.protocols(["phoenix"])
        .on_upgrade(move |socket| tracker.track_future(close_at_once(socket, refusal, permit)))
}

/// A socket's place under the per-address limit; given back when dropped.
pub(crate) struct PeerSlot {
    counts: Arc<Mutex<HashMap<IpAddr, usize>>>,
    ip: IpAddr,
}

impl PeerSlot {
    /// A place for `ip` if it has fewer than `max` sockets open.
    fn take(counts: &Arc<Mutex<HashMap<IpAddr, usize>>>, ip: IpAddr, max: usize) -> Option<Self> {
        let mut map = counts.lock().unwrap_or_else(PoisonError::into_inner);
        let count = map.entry(ip).or_insert(0);
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(PeerSlot {
            counts: counts.clone(),
            ip,
        })
    }
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut map = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = map.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

/// Reads phoenix.js's `authToken` from `Sec-WebSocket-Protocol`.
///
/// phoenix.js encodes it with `btoa` and strips the padding; URL-safe encoders are accepted too.
fn auth_token(headers: &HeaderMap) -> Result<Option<String>, &'static str> {
    let protocols = headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim);
    for protocol in protocols {
        if let Some(encoded) = protocol.strip_prefix(AUTH_TOKEN_PREFIX) {
            let normalized: String = encoded
                .chars()
                .filter(|&c| c != '=')
                .map(|c| match c {
                    '-' => '+',
                    '_' => '/',
                    other => other,
                })
                .collect();
            let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
                .decode(normalized)
                .map_err(|_| "malformed auth token: not base64")?;
            let token = String::from_utf8(bytes).map_err(|_| "malformed auth token: not UTF-8")?;
            return Ok(Some(token));
        }
    }
    Ok(None)
}

async fn upgrade(
    State(alight): State<Alight>,
    params: Result<Query<HashMap<String, String>>, QueryRejection>,
    peer: Option<Extension<axum::extract::ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => return rejection.into_response(),
    };
    let origin = headers.get(header::ORIGIN).map(|value| value.to_str());
    let host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok());
    let origin_ok = match origin {
        None => alight.state().config.origin_check().accepts(None, host),
        Some(Ok(origin)) => alight
            .state()
            .config
            .origin_check()
            .accepts(Some(origin), host),
        Some(Err(_)) => false,
    };
    if !origin_ok {
        return refuse(&alight, StatusCode::FORBIDDEN, "origin not allowed");
    }
    let params = match params {
        Ok(Query(params)) => params,
        Err(rejection) => return refuse(&alight, StatusCode::BAD_REQUEST, rejection.body_text()),
    };
    let endpoint = &alight.endpoint;
    let state = &endpoint.state;
    if state.shutdown.is_started() {
        return refuse(
            &alight,
            StatusCode::SERVICE_UNAVAILABLE,
            "server shutting down",
        );
    }
    let serializer = match Serializer::from_vsn(params.get("vsn").map(String::as_str)) {
        Ok(serializer) => serializer,
        Err(err) => return refuse(&alight, StatusCode::BAD_REQUEST, err.to_string()),
    };
    let token = match auth_token(&headers) {
        Ok(token) => token,
        Err(reason) => return refuse(&alight, StatusCode::BAD_REQUEST, reason),
    };
    let claims = match state.config.jwt_auth() {
        None => None,
        Some(auth) => {
            let presented = token.as_deref().or(params.get("token").map(String::as_str));
            let verified = presented
                .ok_or(crate::jwt::JwtError::Missing)
                .and_then(|token| auth.verify(token));
            match verified {
                Ok(claims) => Some(claims),
                Err(err) => {
                    return refuse_credentials(
                        &alight,
                        ws,
                        ConnectError::new(err.to_string()),
                        None,
                    );
                }
            }
        }
    };
    let peer_addr = peer.map(|Extension(axum::extract::ConnectInfo(addr))| addr);
    let peer_slot = match (state.config.limits().max_connections_per_ip, peer_addr) {
        (Some(max), Some(addr)) => match PeerSlot::take(&endpoint.per_ip, addr.ip(), max) {
            Some(slot) => Some(slot),
            None => {
                return refuse(
                    &alight,
                    StatusCode::TOO_MANY_REQUESTS,
                    "too many connections from this address",
                );
            }
        },
        _ => None,
    };
    let Ok(permit) = endpoint.permits.clone().try_acquire_owned() else {
        return refuse(
            &alight,
            StatusCode::SERVICE_UNAVAILABLE,
            "too many connections",
        );
    };
    let info = ConnectInfo {
        params,
        token,
        serializer,
        claims: claims.clone(),
        peer_addr,
        headers,
    };
    let connected = match &endpoint.connect {
        Some(connect) => match connect(info).await {
            Ok(connected) => connected,
            Err(err) => return refuse_credentials(&alight, ws, err, Some(permit)),
        },
        None => Connected::new(),
    };
    let (id, mut assigns) = connected.into_parts();
    if let Some(claims) = claims {
        assigns.insert(claims);
    }
    let socket = Socket {
        conn_id: endpoint.next_conn.fetch_add(1, Ordering::Relaxed),
        id,
        assigns,
        serializer,
    };
    let limits = state.config.limits();
    let state = state.clone();
    let tracker = endpoint.tracker.clone();
    ws.protocols(["phoenix"])
        .max_message_size(limits.max_message_size)
        .max_frame_size(limits.max_message_size)
        // Small buffers keep idle sockets cheap; a batch of outbound messages is fed and then
        // flushed once, so writes still coalesce up to the write buffer's size.
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        // The connection's own future is the task's: wrapping it in an `async` block that
        // awaits it would keep it twice, as captured and as awaited, for the socket's life.
        .on_upgrade(move |ws| {
            tracker.track_future(connection::run(state, ws, socket, (permit, peer_slot)))
        })
}
