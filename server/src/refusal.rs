//! Refusing a connection so that a browser can tell why.
//!
//! A browser's `WebSocket` never sees the status of a refused handshake: an HTTP 403 to the
//! upgrade looks the same to a page as a server that is down (`onerror`, then `onclose` with
//! 1006), so a page with a bad token can only retry forever. By default
//! ([`Config::close_on_refusal`](crate::Config::close_on_refusal)) the endpoint therefore accepts
//! the upgrade of a socket whose credentials it refuses and closes it at once with an
//! application close code the page can read:
//!
//! | refusal | close code | close reason | what a client does |
//! |---|---|---|---|
//! | [`Refusal::Unauthorized`]: missing, invalid or expired credentials ([`ConnectError::new`], a refused [JWT](crate::JwtAuth)) | [`close_code::UNAUTHORIZED`] (4001) | `unauthorized` | `@alight/client`: fetches its `authToken`/`params` again and retries once, then stops and reports it |
//! | [`Refusal::Forbidden`]: a valid identity that may not connect ([`ConnectError::forbidden`]) | [`close_code::FORBIDDEN`] (4003) | `forbidden` | `@alight/client`: stops reconnecting and reports it |
//!
//! The reason the connect callback gave stays in the server's logs (`debug`); the close reason is
//! one of the two words above, so a client can tell them apart without parsing prose. phoenix.js
//! reconnects with its backoff on either code, as it does on a 403.
//!
//! The refused socket takes a connection permit while it closes (a couple of seconds at most), so
//! a flood of bad tokens is bounded by [`Limits::max_connections`](crate::Limits::max_connections)
//! like any other socket; with no permit left it gets HTTP 503. Other refusals (a foreign
//! `Origin`, a malformed request, the connection limits, shutdown) stay HTTP statuses: they
//! concern the request, not the user, and a foreign page must not get a socket at all.
//!
//! [`ConnectError::new`]: crate::ConnectError::new
//! [`ConnectError::forbidden`]: crate::ConnectError::forbidden

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use tokio::sync::OwnedSemaphorePermit;

use crate::close_code;

/// How long a refused socket waits for the client's answer to its close frame before dropping
/// the connection. Waiting lets the browser see a clean close with the code; a client that never
/// answers cannot hold the permit longer than this.
const CLOSE_LINGER: Duration = Duration::from_secs(2);

/// Why a connection is refused, which decides its close code.
///
/// ```
/// use alight_server::{ConnectError, Refusal, close_code};
///
/// let err = ConnectError::forbidden("account suspended");
/// assert_eq!(err.refusal(), Refusal::Forbidden);
/// assert_eq!(err.refusal().close_code(), close_code::FORBIDDEN);
/// assert_eq!(ConnectError::new("bad token").refusal().close_reason(), "unauthorized");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Refusal {
    /// Missing, invalid or expired credentials: the client may get fresh ones and try again.
    Unauthorized,
    /// A valid identity that is not allowed to connect: trying again will not help.
    Forbidden,
}

impl Refusal {
    /// The close code the socket is closed with: 4001 or 4003.
    pub fn close_code(self) -> u16 {
        match self {
            Refusal::Unauthorized => close_code::UNAUTHORIZED,
            Refusal::Forbidden => close_code::FORBIDDEN,
        }
    }

    /// The close reason: `unauthorized` or `forbidden`.
    pub fn close_reason(self) -> &'static str {
        match self {
            Refusal::Unauthorized => "unauthorized",
            Refusal::Forbidden => "forbidden",
        }
    }
}

/// Closes a just-upgraded socket with `refusal`'s code and reason, then waits (at most
/// [`CLOSE_LINGER`]) for the client's close frame. `permit` is held until the end.
pub(crate) async fn close_at_once(
    mut socket: WebSocket,
    refusal: Refusal,
    permit: OwnedSemaphorePermit,
) {
    let frame = CloseFrame {
        code: refusal.close_code(),
        reason: Utf8Bytes::from_static(refusal.close_reason()),
    };
    let linger = async {
        if socket.send(Message::Close(Some(frame))).await.is_err() {
            return;
        }
        // Anything the client sent before it read the close frame is dropped unread.
        while let Some(Ok(_)) = socket.recv().await {}
    };
    let _ = tokio::time::timeout(CLOSE_LINGER, linger).await;
    drop(permit);
}
