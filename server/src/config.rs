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

/// Server limits and timeouts. Start from [`Config::default`] and override with the setters.
#[derive(Debug, Clone)]
pub struct Config {
    limits: Limits,
    path: String,
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
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_size: 1024 * 1024,
            max_connections: 100_000,
            max_channels_per_socket: 100,
            joins_per_second: 100,
            outbound_queue: 1024,
            idle_timeout: Duration::from_secs(60),
            shutdown_timeout: Duration::from_secs(10),
            presence_batch_window: Duration::from_millis(50),
            memory_trim: None,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            limits: Limits::default(),
            path: "/socket".to_owned(),
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
}
