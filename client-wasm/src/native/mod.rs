//! The native driver: a tokio task that owns a tokio-tungstenite WebSocket and runs a
//! [`rust_api::ClientSocket`](crate::rust_api::ClientSocket) (feature `native`).
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use alight_client::native::{Builder, ConnectParams};
//!
//! let socket = Builder::new("ws://127.0.0.1:4000/socket")
//!     // Called before every connect and reconnect: hand out a fresh token each time.
//!     .connect_params(|| async {
//!         let token = String::from("fetched-token");
//!         Ok(ConnectParams::new().auth_token(token))
//!     })
//!     .build();
//! socket.connect();
//! let room = socket.channel("room:lobby", alight_protocol::Payload::empty());
//! room.join().await?;
//! # Ok(())
//! # }
//! ```
//!
//! The task follows the [`Driver`] contract: it sleeps until the session's next deadline, a
//! frame arrives, or a handle calls in; on [`Action::Connect`](alight_protocol::client::Action)
//! it evaluates the connect params (the provider, if any, every time), opens
//! `{endpoint}/websocket?{params}&vsn=…` with the token in `Sec-WebSocket-Protocol` as phoenix.js
//! sends it, and reports the outcome; writes go out in order while reads continue. The task ends
//! when every handle is dropped (after closing the connection with 1000).
//!
//! TLS (`wss://`) needs a TLS feature of tokio-tungstenite, which this crate does not enable yet:
//! such URLs fail to connect with [`TransportError::Connect`].
//!
//! [`Driver`]: crate::rust_api::Driver

mod driver;
mod url;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use alight_protocol::client::{ClientConfig, Timestamp};
use thiserror::Error;
use tokio::runtime::Handle;
use tokio_tungstenite::tungstenite;
pub use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::rust_api::{ClientSocket, Clock, SocketOptions};

/// What a connect-params provider returns when it fails; the attempt then counts as a failed
/// connection (reported, then retried after the backoff).
pub type ProviderError = Box<dyn std::error::Error + Send + Sync + 'static>;

type ProviderFuture = Pin<Box<dyn Future<Output = Result<ConnectParams, ProviderError>> + Send>>;
type Provider = Arc<dyn Fn() -> ProviderFuture + Send + Sync>;

/// The query params and auth token of one connection attempt.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectParams {
    /// Query parameters, sent before `vsn` (phoenix.js `params`).
    pub params: Vec<(String, String)>,
    /// Sent in `Sec-WebSocket-Protocol` (phoenix.js `authToken`).
    pub auth_token: Option<String>,
}

impl ConnectParams {
    /// No params, no token.
    pub fn new() -> Self {
        ConnectParams::default()
    }

    /// Adds the query parameter `key=value`.
    pub fn param(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.params.push((key.into(), value.into()));
        self
    }

    /// Sets the auth token.
    pub fn auth_token(mut self, token: impl Into<String>) -> Self {
        self.auth_token = Some(token.into());
        self
    }
}

/// Why a connection attempt or an open connection failed, as reported in
/// [`SocketError::Transport`](crate::rust_api::SocketError::Transport).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The connect-params provider failed.
    #[error("the connect params provider failed")]
    Params(#[source] ProviderError),
    /// The WebSocket could not be opened: bad URL, connection refused, or the server refused the
    /// upgrade (HTTP 403 for a refused token).
    #[error("could not open the WebSocket")]
    Connect(#[source] tungstenite::Error),
    /// Opening the WebSocket took longer than the connect timeout.
    #[error("opening the WebSocket timed out after {0:?}")]
    ConnectTimeout(Duration),
    /// The auth token cannot be encoded as phoenix.js encodes it (`btoa` takes Latin-1 only).
    #[error("the auth token cannot be sent")]
    InvalidToken(#[source] crate::connect::TokenError),
    /// The open WebSocket failed while reading or writing.
    #[error("the WebSocket failed")]
    WebSocket(#[source] tungstenite::Error),
    /// More frames waited to be written than [`Builder::max_queued_frames`] allows: the server
    /// (or the network) stopped taking them, so the connection was dropped and is reconnected.
    #[error("{queued} frames were waiting to be written; the connection is presumed stuck")]
    Backpressure {
        /// How many frames were waiting.
        queued: usize,
    },
}

/// Builds a [`ClientSocket`] driven by a tokio task.
#[derive(Clone)]
pub struct Builder {
    endpoint: String,
    config: ClientConfig,
    options: SocketOptions,
    websocket: WebSocketConfig,
    connect_timeout: Duration,
    max_queued_frames: usize,
    params: ConnectParams,
    provider: Option<Provider>,
}

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("endpoint", &self.endpoint)
            .field("config", &self.config)
            .field("options", &self.options)
            .field("connect_timeout", &self.connect_timeout)
            .field("max_queued_frames", &self.max_queued_frames)
            .field("params", &self.params.params)
            .field("has_auth_token", &self.params.auth_token.is_some())
            .field("has_provider", &self.provider.is_some())
            .finish_non_exhaustive()
    }
}

impl Builder {
    /// A socket for `endpoint`, the socket path as phoenix.js takes it (`ws://host/socket`;
    /// `/websocket?…` is appended). Defaults: phoenix.js's [`ClientConfig`], the default
    /// [`SocketOptions`] and [`WebSocketConfig`], a 10 s connect timeout, 4096 queued frames, no
    /// params.
    pub fn new(endpoint: impl Into<String>) -> Self {
        Builder {
            endpoint: endpoint.into(),
            config: ClientConfig::default(),
            options: SocketOptions::default(),
            websocket: WebSocketConfig::default(),
            connect_timeout: Duration::from_secs(10),
            max_queued_frames: 4096,
            params: ConnectParams::default(),
            provider: None,
        }
    }

    /// The protocol settings (timeouts, heartbeat, backoffs, serializer).
    pub fn config(mut self, config: ClientConfig) -> Self {
        self.config = config;
        self
    }

    /// The Rust API's settings (stream capacities).
    pub fn options(mut self, options: SocketOptions) -> Self {
        self.options = options;
        self
    }

    /// tungstenite's limits (message and frame sizes, buffers).
    pub fn websocket_config(mut self, config: WebSocketConfig) -> Self {
        self.websocket = config;
        self
    }

    /// How long opening the WebSocket (TCP and upgrade) may take before the attempt fails.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How many frames may wait to be written before the connection is presumed stuck, dropped
    /// (reported as [`TransportError::Backpressure`]) and reconnected. The bound of the
    /// driver's write queue; pushes that were in it time out.
    pub fn max_queued_frames(mut self, frames: usize) -> Self {
        self.max_queued_frames = frames.max(1);
        self
    }

    /// Fixed query params for every connect (replaced by [`connect_params`](Self::connect_params)).
    pub fn params<K: Into<String>, V: Into<String>>(
        mut self,
        params: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        self.params.params = params
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        self
    }

    /// A fixed auth token for every connect (replaced by [`connect_params`](Self::connect_params)).
    pub fn auth_token(mut self, token: impl Into<String>) -> Self {
        self.params.auth_token = Some(token.into());
        self
    }

    /// Params and token evaluated before **every** connection attempt, reconnects included
    /// (phoenix.js's `params` and `authToken` functions), so an expiring token can be refreshed.
    /// Replaces [`params`](Self::params) and [`auth_token`](Self::auth_token). A provider that
    /// fails makes the attempt fail: the error is reported and the attempt retried after the
    /// backoff.
    pub fn connect_params<F, Fut>(mut self, provider: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<ConnectParams, ProviderError>> + Send + 'static,
    {
        self.provider = Some(Arc::new(move || Box::pin(provider()) as ProviderFuture));
        self
    }

    /// The socket, with its driver task spawned on the current tokio runtime. Nothing connects
    /// until [`ClientSocket::connect`].
    ///
    /// # Panics
    /// Outside a tokio runtime, as `tokio::spawn` does; use [`build_on`](Self::build_on) to name
    /// one.
    pub fn build(self) -> ClientSocket {
        self.build_on(&Handle::current())
    }

    /// The socket, with its driver task spawned on `runtime`.
    pub fn build_on(self, runtime: &Handle) -> ClientSocket {
        let origin = tokio::time::Instant::now();
        let clock: Clock = Arc::new(move || Timestamp::from_duration(origin.elapsed()));
        let vsn = self.config.serializer.vsn();
        let (socket, driver) = ClientSocket::new(self.config, self.options, clock);
        let connector = driver::Connector {
            endpoint: self.endpoint,
            vsn,
            websocket: self.websocket,
            connect_timeout: self.connect_timeout,
            max_queued_frames: self.max_queued_frames,
            params: self.params,
            provider: self.provider,
        };
        runtime.spawn(driver::run(driver, Arc::new(connector)));
        socket
    }
}
