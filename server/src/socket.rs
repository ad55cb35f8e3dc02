//! Connecting: what the connect callback sees, and what it returns.
//!
//! phoenix.js sends `params` as the query string and `authToken` inside the
//! `Sec-WebSocket-Protocol` header (`phoenix, base64url.bearer.phx.<token>`); both arrive here in
//! [`ConnectInfo`]. The callback refuses with a [`ConnectError`] (by default the socket is closed
//! at once with 4001 or 4003, see [`Refusal`]; HTTP 403 with
//! [`Config::close_on_refusal`](crate::Config::close_on_refusal) off) or accepts with
//! [`Connected`]: per-socket assigns and an optional socket id, which
//! [`Alight::disconnect`](crate::Alight::disconnect) uses to close all of one user's sockets.

use std::collections::HashMap;
use std::net::SocketAddr;

use alight_protocol::Serializer;
use axum::http::{Extensions, HeaderMap};

use crate::refusal::Refusal;
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

/// Refuses a connection. By default the upgrade is accepted and the socket closed at once with
/// the [`Refusal`]'s close code (4001 `unauthorized` or 4003 `forbidden`), which a browser can
/// read; with [`Config::close_on_refusal`](crate::Config::close_on_refusal) off, it is answered
/// with HTTP 403 and `reason` as the body. `reason` is logged either way.
///
/// ```
/// use alight_server::{ConnectError, Refusal};
///
/// // A token that does not verify: the client may fetch a fresh one and retry.
/// assert_eq!(ConnectError::new("invalid token").refusal(), Refusal::Unauthorized);
/// // A known user who may not connect: the client stops retrying.
/// assert_eq!(ConnectError::forbidden("banned").refusal(), Refusal::Forbidden);
/// ```
#[derive(Debug, Clone, thiserror::Error)]
#[error("connection refused: {reason}")]
pub struct ConnectError {
    /// Why, for the logs (and the body of an HTTP 403).
    pub reason: String,
    refusal: Refusal,
}

impl ConnectError {
    /// Missing, invalid or expired credentials ([`Refusal::Unauthorized`], close code 4001).
    pub fn new(reason: impl Into<String>) -> Self {
        ConnectError {
            reason: reason.into(),
            refusal: Refusal::Unauthorized,
        }
    }

    /// A valid identity that may not connect ([`Refusal::Forbidden`], close code 4003).
    pub fn forbidden(reason: impl Into<String>) -> Self {
        ConnectError {
            reason: reason.into(),
            refusal: Refusal::Forbidden,
        }
    }

    /// Which kind of refusal this is.
    pub fn refusal(&self) -> Refusal {
        self.refusal
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
