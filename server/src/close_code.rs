//! WebSocket close codes the server sends, and when.
//!
//! phoenix.js reconnects after any code but 1000, so only a deliberate, final close uses 1000.
//! A frame the server fails to encode (a binary payload for a V1 socket) is not sent, counted in
//! `alight_frames_not_encodable_total` and logged at most once per 10 s; the socket stays open.
//!
//! | code | name | when |
//! |---|---|---|
//! | 1001 | going away | [`disconnect`](crate::Alight::disconnect) of a socket id, or no frame within the idle timeout |
//! | 1002 | protocol error | a WebSocket protocol violation (e.g. an unmasked client frame) |
//! | 1007 | invalid payload | a frame that does not decode, or text that is not UTF-8 (the reason says why) |
//! | 1008 | policy violation | [`Limits::max_rate_strikes`](crate::Limits::max_rate_strikes) joins or pushes refused in a row for their rate |
//! | 1009 | message too big | a message over [`Limits::max_message_size`](crate::Limits::max_message_size), or a topic, event or ref over [`Limits::max_topic_len`](crate::Limits::max_topic_len), [`max_event_len`](crate::Limits::max_event_len) or [`max_ref_len`](crate::Limits::max_ref_len) |
//! | 1012 | service restart | graceful shutdown; clients reconnect to the next instance |
//! | 1013 | try again later | slow consumer: the socket's outbound queue was full, or a write did not complete within [`Limits::write_timeout`](crate::Limits::write_timeout) (the close frame is tried for a second; a client that does not read usually sees the connection drop, 1006, instead) |
//! | 4001 | token expired | [JWT auth](crate::JwtAuth): the token's `exp` passed without a refresh; the client reconnects with a fresh token |
//! | 4001 | unauthorized | right after the upgrade: the connect callback refused with [`ConnectError::new`](crate::ConnectError::new), or [JWT auth](crate::JwtAuth) found the token missing, invalid or expired ([`Refusal`](crate::Refusal)) |
//! | 4003 | forbidden | right after the upgrade: the connect callback refused with [`ConnectError::forbidden`](crate::ConnectError::forbidden) |
//!
//! The two refusals are sent only while [`Config::close_on_refusal`](crate::Config::close_on_refusal)
//! is on (the default); off, they are an HTTP 403 to the upgrade, as Phoenix answers. A browser
//! cannot read the status of a refused upgrade, only a close code. 4001 has one meaning for a
//! client in both rows: its credentials are no longer good, get fresh ones.

/// Server-side disconnect of a socket id, and idle sockets.
pub const GOING_AWAY: u16 = 1001;
/// A WebSocket protocol violation.
pub const PROTOCOL_ERROR: u16 = 1002;
/// A frame that does not decode.
pub const INVALID_FRAME: u16 = 1007;
/// Too many joins or pushes refused in a row for their rate.
pub const POLICY_VIOLATION: u16 = 1008;
/// A message over the size limit, or a topic, event or ref over its length limit.
pub const MESSAGE_TOO_BIG: u16 = 1009;
/// Graceful shutdown.
pub const SERVICE_RESTART: u16 = 1012;
/// The socket's outbound queue was full, or a write timed out.
pub const SLOW_CONSUMER: u16 = 1013;
/// The socket's JWT expired without a refresh (application range 4000-4999).
pub const TOKEN_EXPIRED: u16 = 4001;
/// The connection was refused for missing, invalid or expired credentials (reason
/// `unauthorized`); the same code as [`TOKEN_EXPIRED`], as a client answers both alike.
pub const UNAUTHORIZED: u16 = 4001;
/// The connection was refused for a valid identity that may not connect (reason `forbidden`).
pub const FORBIDDEN: u16 = 4003;
