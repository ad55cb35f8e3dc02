//! Connecting: what the connect callback sees, and what it returns.
//!
//! phoenix.js sends `params` as the query string and `authToken` inside the
//! `Sec-WebSocket-Protocol` header (`phoenix, base64url.bearer.phx.<token>`); both arrive here in
//! [`ConnectInfo`]. The callback refuses with a [`ConnectError`] (HTTP 403, nothing upgraded) or
//! accepts with [`Connected`]: per-socket assigns and an optional socket id, which
//! [`Alight::disconnect`](crate::Alight::disconnect) uses to close all of one user's sockets.

use std::collections::HashMap;
use std::net::SocketAddr;

use alight_protocol::Serializer;
use axum::http::{Extensions, HeaderMap};

use crate::registry::ConnId;

/// What a client presented when connecting.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConnectInfo {
    /// Query parameters (phoenix.js `params`), `vsn` included.
    pub params: HashMap<String, String>,
    /// The token phoenix.js sends as `authToken`, decoded.
    pub token: Option<String>,
    /// The serializer the client asked for with `vsn`.
    pub serializer: Serializer,
    /// The client's address (or its proxy's), when served by
    /// [`Alight::serve`](crate::Alight::serve) or by an app that provides axum's
    /// `ConnectInfo<SocketAddr>`.
    pub peer_addr: Option<SocketAddr>,
    /// The verified claims, when [`Config::jwt`](crate::Config::jwt) is set (also assigned to
    /// the socket).
    pub claims: Option<crate::jwt::Claims>,
    /// The upgrade request's headers (`Origin`, `Cookie`, `User-Agent`, `X-Forwarded-For`...).
    pub headers: HeaderMap,
}

/// Accepts a connection: an optional socket id and typed assigns.
///
/// ```
/// use alight_server::Connected;
///
/// #[derive(Clone)]
/// struct UserId(u64);
///
/// let connected = Connected::new().id("user_socket:42").assign(UserId(42));
/// assert_eq!(connected.assigns().get::<UserId>().map(|u| u.0), Some(42));
/// ```
#[derive(Debug, Clone, Default)]
pub struct Connected {
    id: Option<String>,
    assigns: Extensions,
}

impl Connected {
    /// An anonymous socket with no assigns.
    pub fn new() -> Self {
        Connected::default()
    }

    /// Names the socket, so that [`Alight::disconnect`](crate::Alight::disconnect) can close it.
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Stores a value, one per type, that every channel of this socket can read.
    pub fn assign<T: Clone + Send + Sync + 'static>(mut self, value: T) -> Self {
        self.assigns.insert(value);
        self
    }

    /// The assigns so far.
    pub fn assigns(&self) -> &Extensions {
        &self.assigns
    }
}

/// Refuses a connection: answered with HTTP 403 and `reason` as the body.
#[derive(Debug, Clone, thiserror::Error)]
#[error("connection refused: {reason}")]
pub struct ConnectError {
    /// Why, for the client and the logs.
    pub reason: String,
}

impl ConnectError {
    /// A refusal with this reason.
    pub fn new(reason: impl Into<String>) -> Self {
        ConnectError {
            reason: reason.into(),
        }
    }
}

/// One connected socket, as its channels see it.
#[derive(Debug)]
pub struct Socket {
    pub(crate) conn_id: ConnId,
    pub(crate) id: Option<String>,
    pub(crate) assigns: Extensions,
    pub(crate) serializer: Serializer,
}

impl Socket {
    /// The socket id given by the connect callback, if any.
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// The value of type `T` assigned at connect time.
    pub fn assign<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.assigns.get::<T>()
    }

    /// All assigns.
    pub fn assigns(&self) -> &Extensions {
        &self.assigns
    }

    /// The serializer this socket speaks.
    pub fn serializer(&self) -> Serializer {
        self.serializer
    }

    /// This connection's number on this node (unique per process).
    pub fn conn_id(&self) -> ConnId {
        self.conn_id
    }
}

impl Connected {
    pub(crate) fn into_parts(self) -> (Option<String>, Extensions) {
        (self.id, self.assigns)
    }
}
