//! Limits and timeouts, in one builder.
//!
//! Every queue and count the server keeps per connection is bounded by a number here, so memory
//! stays bounded whatever clients do.
//!
//! ```
//! use std::time::Duration;
//! use alight_server::Config;
//!
//! let config = Config::default()
//!     .max_connections(50_000)
//!     .max_message_size(64 * 1024)
//!     .idle_timeout(Duration::from_secs(90));
//! assert_eq!(config.limits().max_channels_per_socket, 100);
//! ```

use std::time::Duration;

use crate::jwt::JwtAuth;
use crate::origin::CheckOrigin;

/// Server limits and timeouts. Start from [`Config::default`] and override with the setters.
#[derive(Debug, Clone)]
pub struct Config {
    limits: Limits,
    path: String,
    check_origin: CheckOrigin,
    jwt: Option<JwtAuth>,
    close_on_refusal: bool,
}

/// The numbers behind [`Config`], readable by the runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Largest WebSocket message accepted, in bytes; a larger one closes the socket with 1009.
    pub max_message_size: usize,
    /// Open sockets at once; further upgrades are refused with HTTP 503.
    pub max_connections: usize,
    /// Channels one socket may have joined; further joins get `{"reason":"too many channels joined"}`.
    pub max_channels_per_socket: usize,
    /// Joins one socket may make per second (burst and refill); more get `{"reason":"too many joins"}`.
    pub joins_per_second: u32,
    /// Events one socket may push to its channels per second (burst and refill; heartbeats,
    /// joins and leaves aside); more get the error reply `{"reason":"too many pushes"}` without
    /// reaching the channel.
    pub pushes_per_second: u32,
    /// Refused joins and pushes in a row (none allowed in between) after which the socket is
    /// closed with [`close_code::POLICY_VIOLATION`](crate::close_code::POLICY_VIOLATION): a
    /// client that ignores the error replies is cut off.
    pub max_rate_strikes: u32,
    /// Off (`None`) by default: sockets open at once from one IP address; a further upgrade is
    /// refused with HTTP 429. Proxies, NAT and load balancers put many users behind one address:
    /// set it only where the server sees the clients' own addresses. Needs the peer address
    /// ([`Alight::serve`](crate::Alight::serve) provides it).
    pub max_connections_per_ip: Option<usize>,
    /// Messages queued for one socket; a socket whose queue is full is disconnected with
    /// [`close_code::SLOW_CONSUMER`](crate::close_code::SLOW_CONSUMER).
    pub outbound_queue: usize,
    /// A socket that sends nothing for this long is closed (phoenix.js heartbeats every 30 s).
    pub idle_timeout: Duration,
    /// How long shutdown waits for sockets to finish closing.
    pub shutdown_timeout: Duration,
    /// How long a topic's presence changes accumulate before they go out as one `presence_diff`
    /// (counted from the first pending change). Zero sends every change at once.
    pub presence_batch_window: Duration,
    /// Off (`None`) by default: it acts on the whole process, so the binary decides. When set,
    /// once the open sockets have fallen to half of their peak, freed memory is returned to the
    /// operating system this long after (glibc's `malloc_trim`; nothing on other allocators).
    /// Without it a server stays near its peak resident size after a wave of connections
    /// closes; with it, a worker that allocates may wait while glibc walks a large heap.
    pub memory_trim: Option<Duration>,
    /// Longest topic a client may send, in bytes. A frame with a longer topic closes the socket
    /// with [`close_code::MESSAGE_TOO_BIG`](crate::close_code::MESSAGE_TOO_BIG): the runtime keeps
    /// the topic of every joined channel, so the message size alone would let one socket hold
    /// `max_channels_per_socket` megabytes.
    pub max_topic_len: usize,
    /// Longest event name a client may send, in bytes; longer closes with 1009 as a topic does.
    pub max_event_len: usize,
    /// Longest `ref` or `join_ref` a client may send, in bytes (phoenix.js sends decimal
    /// counters); longer closes with 1009 as a topic does.
    pub max_ref_len: usize,
    /// Longest presence key, in bytes: a longer one makes `track` and `update` fail with
    /// [`TrackError::KeyTooLong`](crate::TrackError::KeyTooLong). Keys are often client input
    /// (a name from join params) and every joiner of the topic receives all of them.
    pub max_presence_key_len: usize,
    /// Largest presence meta, in bytes of JSON: a larger one makes `track` and `update` fail
    /// with [`TrackError::MetaTooLarge`](crate::TrackError::MetaTooLarge).
    pub max_presence_meta_size: usize,
    /// A write to the socket that has not completed within this time closes the connection: a
    /// client that stops reading cannot hold the server's buffers (or its task) forever.
    pub write_timeout: Duration,
    /// Largest join reply, in bytes of its payload: a channel whose `join` answers with more is
    /// ended (`terminate` runs with [`Terminate::Stop`](crate::Terminate::Stop)) and the client
    /// gets the join error `{"reason":"join reply too large"}`. A channel that replays history
    /// on rejoin should stop well before it and say there is a gap.
    pub max_join_reply_size: usize,
    /// A request's headers must arrive within this time of the connection opening (or of the
    /// previous response on a kept-alive connection), else the connection is closed without a
    /// response: half-sent headers (slowloris) cannot hold a connection.
    /// Applies when serving with [`Alight::serve`](crate::Alight::serve).
    pub header_read_timeout: Duration,
    /// Longest wait for the next piece of a request body; past it, the handler reading the body
    /// sees an error (axum answers 400) and the connection closes.
    /// Applies when serving with [`Alight::serve`](crate::Alight::serve).
    pub body_read_timeout: Duration,
    /// TCP connections not upgraded to a WebSocket (yet) at once: requests in progress, kept-alive
    /// connections, half-sent headers. A connection accepted past it is closed at once.
    /// Upgraded sockets count against [`max_connections`](Limits::max_connections) instead.
    /// Applies when serving with [`Alight::serve`](crate::Alight::serve).
    pub max_http_connections: usize,
    /// Off (`None`) by default. When set, the kernel send buffer (`SO_SNDBUF`) of each accepted
    /// socket, in bytes. Without it the kernel grows the buffer to megabytes for a client that
    /// stops reading, so the close frame of a slow-consumer close (1013) waits behind them and
    /// the client sees the connection drop (1006) instead. A small buffer also slows writes to
    /// distant clients: set it when clients are near or when the close code matters.
    pub socket_send_buffer: Option<usize>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_size: 1024 * 1024,
            max_connections: 100_000,
            max_channels_per_socket: 100,
            joins_per_second: 100,
            pushes_per_second: 10_000,
            max_rate_strikes: 1_000,
            max_connections_per_ip: None,
            outbound_queue: 1024,
            idle_timeout: Duration::from_secs(60),
            shutdown_timeout: Duration::from_secs(10),
            presence_batch_window: Duration::from_millis(50),
            memory_trim: None,
            max_topic_len: 1024,
            max_event_len: 256,
            max_ref_len: 64,
            max_presence_key_len: 1024,
            max_presence_meta_size: 8 * 1024,
            write_timeout: Duration::from_secs(30),
            max_join_reply_size: 1024 * 1024,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(10),
            max_http_connections: 10_000,
            socket_send_buffer: None,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            limits: Limits::default(),
            path: "/socket".to_owned(),
            check_origin: CheckOrigin::default(),
            jwt: None,
            close_on_refusal: true,
        }
    }
}

impl Config {
    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The socket mount path; the WebSocket is served at `{path}/websocket`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Which `Origin`s may open a socket (default [`CheckOrigin::SameHost`]); a refused one gets
    /// HTTP 403.
    pub fn check_origin(mut self, check: CheckOrigin) -> Self {
        self.check_origin = check;
        self
    }

    /// The origin check in force.
    pub fn origin_check(&self) -> &CheckOrigin {
        &self.check_origin
    }

    /// Requires a JWT to connect, verified with `auth`, for the life of the socket (see
    /// [`JwtAuth`]). Off by default: the connect callback decides alone.
    pub fn jwt(mut self, auth: JwtAuth) -> Self {
        self.jwt = Some(auth);
        self
    }

    /// The JWT auth in force, if any.
    pub fn jwt_auth(&self) -> Option<&JwtAuth> {
        self.jwt.as_ref()
    }

    /// How a connection refused for its credentials (by the connect callback or the JWT check)
    /// is told. On (the default): the upgrade is accepted and the socket closed at once with
    /// 4001 `unauthorized` or 4003 `forbidden` (see [`Refusal`](crate::Refusal)), which a
    /// browser page can read and act on ("log in again"). Off: HTTP 403 with the reason as the
    /// body, as Phoenix answers, which a browser reports as a failed connection. phoenix.js
    /// reconnects with its backoff either way.
    ///
    /// ```
    /// use alight_server::Config;
    ///
    /// assert!(Config::default().closes_on_refusal());
    /// let phoenix_like = Config::default().close_on_refusal(false);
    /// assert!(!phoenix_like.closes_on_refusal());
    /// ```
    pub fn close_on_refusal(mut self, close: bool) -> Self {
        self.close_on_refusal = close;
        self
    }

    /// Whether refused connections are closed with a close code rather than answered 403.
    pub fn closes_on_refusal(&self) -> bool {
        self.close_on_refusal
    }

    /// Mount path of the socket (default `/socket`, as `new Socket("/socket")` in phoenix.js).
    pub fn socket_path(mut self, path: impl Into<String>) -> Self {
        let path = path.into();
        self.path = path.trim_end_matches('/').to_owned();
        self
    }

    /// See [`Limits::max_message_size`].
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.limits.max_message_size = bytes;
        self
    }

    /// See [`Limits::max_connections`].
    pub fn max_connections(mut self, n: usize) -> Self {
        self.limits.max_connections = n;
        self
    }

    /// See [`Limits::max_channels_per_socket`].
    pub fn max_channels_per_socket(mut self, n: usize) -> Self {
        self.limits.max_channels_per_socket = n;
        self
    }

    /// See [`Limits::joins_per_second`].
    pub fn joins_per_second(mut self, n: u32) -> Self {
        self.limits.joins_per_second = n;
        self
    }

    /// See [`Limits::pushes_per_second`].
    pub fn pushes_per_second(mut self, n: u32) -> Self {
        self.limits.pushes_per_second = n;
        self
    }

    /// See [`Limits::max_rate_strikes`].
    pub fn max_rate_strikes(mut self, n: u32) -> Self {
        self.limits.max_rate_strikes = n;
        self
    }

    /// See [`Limits::max_connections_per_ip`].
    pub fn max_connections_per_ip(mut self, n: Option<usize>) -> Self {
        self.limits.max_connections_per_ip = n;
        self
    }

    /// See [`Limits::outbound_queue`]. At least 1.
    pub fn outbound_queue(mut self, n: usize) -> Self {
        self.limits.outbound_queue = n.max(1);
        self
    }

    /// See [`Limits::idle_timeout`].
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.limits.idle_timeout = timeout;
        self
    }

    /// See [`Limits::shutdown_timeout`].
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.limits.shutdown_timeout = timeout;
        self
    }

    /// See [`Limits::presence_batch_window`].
    pub fn presence_batch_window(mut self, window: Duration) -> Self {
        self.limits.presence_batch_window = window;
        self
    }

    /// See [`Limits::memory_trim`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use alight_server::Config;
    ///
    /// // A server that owns its process and sees waves of connections come and go.
    /// let config = Config::default().memory_trim(Some(Duration::from_secs(1)));
    /// assert_eq!(config.limits().memory_trim, Some(Duration::from_secs(1)));
    /// ```
    pub fn memory_trim(mut self, delay: Option<Duration>) -> Self {
        self.limits.memory_trim = delay;
        self
    }

    /// See [`Limits::max_topic_len`].
    pub fn max_topic_len(mut self, bytes: usize) -> Self {
        self.limits.max_topic_len = bytes;
        self
    }

    /// See [`Limits::max_event_len`].
    pub fn max_event_len(mut self, bytes: usize) -> Self {
        self.limits.max_event_len = bytes;
        self
    }

    /// See [`Limits::max_ref_len`].
    pub fn max_ref_len(mut self, bytes: usize) -> Self {
        self.limits.max_ref_len = bytes;
        self
    }

    /// See [`Limits::max_presence_key_len`].
    pub fn max_presence_key_len(mut self, bytes: usize) -> Self {
        self.limits.max_presence_key_len = bytes;
        self
    }

    /// See [`Limits::max_presence_meta_size`].
    pub fn max_presence_meta_size(mut self, bytes: usize) -> Self {
        self.limits.max_presence_meta_size = bytes;
        self
    }

    /// See [`Limits::max_join_reply_size`].
    pub fn max_join_reply_size(mut self, bytes: usize) -> Self {
        self.limits.max_join_reply_size = bytes;
        self
    }

    /// See [`Limits::write_timeout`].
    pub fn write_timeout(mut self, timeout: Duration) -> Self {
        self.limits.write_timeout = timeout;
        self
    }
}

impl Config {
    /// See [`Limits::header_read_timeout`].
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.limits.header_read_timeout = timeout;
        self
    }

    /// See [`Limits::body_read_timeout`].
    pub fn body_read_timeout(mut self, timeout: Duration) -> Self {
        self.limits.body_read_timeout = timeout;
        self
    }

    /// See [`Limits::max_http_connections`].
    pub fn max_http_connections(mut self, n: usize) -> Self {
        self.limits.max_http_connections = n;
        self
    }

    /// See [`Limits::socket_send_buffer`].
    pub fn socket_send_buffer(mut self, bytes: Option<usize>) -> Self {
        self.limits.socket_send_buffer = bytes;
        self
    }
}

impl Limits {
    /// Why `frame` exceeds the field limits, if it does.
    pub(crate) fn oversized_field(&self, frame: &alight_protocol::FrameRef<'_>) -> Option<String> {
        let refs = [
            ("join_ref", frame.join_ref.as_deref()),
            ("ref", frame.msg_ref.as_deref()),
        ];
        if frame.topic.len() > self.max_topic_len {
            return Some(format!("topic over {} bytes", self.max_topic_len));
        }
        if frame.event().len() > self.max_event_len {
            return Some(format!("event over {} bytes", self.max_event_len));
        }
        refs.into_iter()
            .find(|(_, value)| value.is_some_and(|v| v.len() > self.max_ref_len))
            .map(|(name, _)| format!("{name} over {} bytes", self.max_ref_len))
    }
}
