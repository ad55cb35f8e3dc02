//! A Phoenix Channels client as a deterministic, sans-IO state machine.
//!
//! Two layers: [`Core`] makes every decision and is generic over a [`Host`], which owns the wire
//! format and the I/O (refs and ids are integers in the core; topics, params, pushes and what
//! arrives for the application are the host's types); [`Session`] is the core with a host that
//! speaks the protocol's serializers and queues frames, actions and events for `poll_*` methods.
//! Native Rust applications, the load generator and the tests drive a `Session`; the browser
//! package drives the same `Core` with a host in JavaScript (`JSON.parse`/`JSON.stringify` at
//! its edges), so that the browser's wasm carries no serializer, no JSON and no strings.
//!
//! # Layout
//! - `core/`: [`Core`]: the connection's life and the timers (`mod.rs`), channels
//!   (`channel.rs`), pushes and the send buffer (`push.rs`).
//! - `host.rs`: the [`Host`] trait and what crosses it ([`Outgoing`], [`Incoming`],
//!   [`CoreEvent`]).
//! - `session.rs`: [`Session`], the core over the serializers.
//! - `resume.rs`: resuming history channels, for the session's host.
//! - `events.rs`, `config.rs`, `backoff.rs`, `time.rs`, `error.rs`: the types both share.
//!
//! [`Session`] is phoenix.js's `Socket`, `Channel`, `Push` and `Timer` without the I/O: it owns no
//! transport, reads no clock, draws no randomness of its own and spawns nothing, so the browser
//! (wasm), native Rust applications, the load generator and tests all drive the same code, and a
//! test replays exactly on a virtual clock. Its shape is quinn-proto's: inputs are `handle_*` and
//! the user intents, outputs are `poll_*`.
//!
//! | in | out |
//! |---|---|
//! | [`connect`], [`disconnect`], [`channel`], [`join`], [`push`], [`leave`], [`remove_channel`], [`handle_visibility`] | [`poll_transmit`]: frames to send, in order |
//! | [`handle_open`], [`handle_close`], [`handle_error`], [`handle_text`], [`handle_binary`], [`handle_frame`] | [`poll_action`]: open or close a transport |
//! | [`handle_timeout`] | [`poll_event`]: what the application hears |
//! | | [`poll_timeout`]: when to call [`handle_timeout`] |
//!
//! # Driving a session
//!
//! After every call into the session, the driver
//! 1. sends each [`poll_transmit`] message on the current transport (text or binary opcode as the
//!    [`Wire`](crate::Wire) says);
//! 2. performs each [`poll_action`]: [`Action::Connect`] evaluates the connect params and auth token
//!    (they may be async functions, and are re-evaluated on every reconnect) and opens a transport
//!    to `…/websocket?<params>&vsn=<serializer.vsn()>`; [`Action::Close`] closes the current one and
//!    detaches its handlers: the session has already let go of it and wants nothing more from it;
//! 3. hands each [`poll_event`] to the application;
//! 4. arms one timer for [`poll_timeout`], and calls [`handle_timeout`] when it fires.
//!
//! Time is a [`Timestamp`], a duration since any origin the driver likes, passed with every
//! input that may start a timer.
//!
//! # Example
//! ```
//! use std::time::Duration;
//! use alight_protocol::Payload;
//! use alight_protocol::client::{Action, ClientConfig, Event, Session, Timestamp};
//!
//! let mut session = Session::new(ClientConfig::default());
//! let mut now = Timestamp::ZERO;
//! let text = |s: &mut Session| s.poll_transmit().and_then(|w| w.as_text().map(str::to_owned));
//!
//! // Channels can be joined before the connection exists; the join waits for it.
//! let lobby = session.channel("room:lobby", Payload::empty());
//! let join = session.join(lobby, None, now)?;
//! session.connect(now);
//! assert_eq!(session.poll_action(), Some(Action::Connect));
//!
//! // The driver opened a WebSocket: the join goes out (refs 1 and 2 went to the channel, as in
//! // phoenix.js).
//! session.handle_open(now);
//! assert_eq!(text(&mut session).as_deref(), Some(r#"["3","3","room:lobby","phx_join",{}]"#));
//! session.handle_text(now, r#"["3","3","room:lobby","phx_reply",{"status":"ok","response":{}}]"#)?;
//! while let Some(event) = session.poll_event() {
//!     if let Event::Reply { push, status, .. } = event {
//!         assert_eq!((push, status.as_str()), (join, "ok"));
//!     }
//! }
//!
//! // A push, and its reply routed back by ref.
//! let shout = session.push(lobby, "shout", Payload::json(&"hi")?, None, now)?;
//! assert_eq!(text(&mut session).as_deref(), Some(r#"["3","4","room:lobby","shout","hi"]"#));
//! session.handle_text(now, r#"["3","4","room:lobby","phx_reply",{"status":"ok","response":{}}]"#)?;
//! assert!(matches!(session.poll_event(), Some(Event::Reply { push, .. }) if push == shout));
//!
//! // Thirty seconds later the heartbeat is due.
//! now = session.poll_timeout().expect("the heartbeat is scheduled");
//! assert_eq!(now, Timestamp::ZERO + Duration::from_secs(30));
//! session.handle_timeout(now);
//! assert_eq!(text(&mut session).as_deref(), Some(r#"[null,"5","phoenix","heartbeat",{}]"#));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Semantics
//!
//! Those of phoenix.js 1.8 (`assets/js/phoenix/{socket,channel,push,timer}.js`); each rule is
//! documented where it is implemented and tested beside it.
//! - Refs come from one counter per session (integers in the core, decimal strings on the
//!   wire); a join's ref is its channel's
//!   `join_ref`, carried by the channel's pushes and leave. A channel takes two refs when created,
//!   as phoenix.js's does, so the frames are byte for byte phoenix.js's for the same calls (for a
//!   phoenix.js socket without `onOpen`/`onClose`/`onError`/`onMessage` callbacks, which take refs
//!   too and have no counterpart here).
//! - Heartbeat `[null, ref, "phoenix", "heartbeat", {}]` every interval after the last reply; one
//!   still unanswered at the next tick closes the connection (1000, `heartbeat timeout`) and
//!   reconnects.
//! - Any close the session did not ask for reconnects after the reconnect backoff (reset once a
//!   connection opens); [`disconnect`] stops that until [`connect`].
//! - Channels joined or joining when the connection goes error and rejoin when it reopens; a
//!   refused or timed-out join, and `phx_error`, error the channel and rejoin it after the rejoin
//!   backoff while the connection stays open.
//! - Pushes wait in their channel until it is joined; their timeout starts when they are made.
//!   A join made while the connection is not open waits for it to open (a leave made then is not
//!   sent later: the new connection has nothing to leave).
//! - A channel has at most one join out: a rejoin abandons the previous join (a reply to it, or a
//!   frame still buffered for it, is ignored), and rejoin timers stop when the connection drops or
//!   opens, so a reopened connection and a rejoin timer never both rejoin (phoenix.js's
//!   "rejoin races"; it also accepts a join reply that arrives after `leave`, this does not).
//! - `leave` closes the channel at once and acknowledges itself, as phoenix.js's does.
//!
//! # Where this differs from phoenix.js
//!
//! Deliberately, where phoenix.js has known bugs or needs a browser:
//! - **Joining again.** A channel closed (left, or closed by the server) can be joined again;
//!   phoenix.js allows one `join` per `Channel` object. Pushing to a channel that is not joined is
//!   an error ([`PushError::NotJoined`]) rather than a buffered push that times out.
//! - **Replies after a leave.** A reply to a push sent before a leave is still delivered
//!   (phoenix.js removes the channel at once and times such pushes out 10 s later).
//! - **Closed channels hear nothing.** phoenix.js delivers broadcasts to channel objects that were
//!   never joined; here only channels that are joining, joined or errored receive messages.
//! - **Join replies.** A join reply with a status other than `ok` refuses the join (phoenix.js
//!   stays `joining` forever on one that is neither `ok` nor `error`); `phx_close` cancels a
//!   pending join's timeout (phoenix.js lets it fire and rejoin the closed channel).
//! - **Letting go of a transport.** On [`Action::Close`] the session is done with the transport
//!   at once and reports [`Event::Close`] itself; phoenix.js polls for up to ~1.5 s for the socket
//!   to drain and close before reconnecting. Its bookkeeping of which connection carried which
//!   join (`Connection.carried`, for transports that overlap while one drains) is not needed:
//!   there is only ever one transport, and channels error once per lost connection.
//! - **Jitter and no heartbeat.** The backoffs are jittered (`jitter`, seeded); phoenix.js has
//!   none. A `heartbeat_interval` of `None` disables heartbeats.
//! - **Not here.** The long-poll fallback, `pagehide`/`pageshow` handling and logging belong to
//!   drivers.
//!
//! Two bugs users report against phoenix.js 1.7 are fixed in 1.8 and behave as 1.8 does here:
//! `disconnect()` then `connect()` rejoins the channels, and a server close with code 1000
//! reconnects (only a user's [`disconnect`] does not).
//!
//! [`connect`]: Session::connect
//! [`disconnect`]: Session::disconnect
//! [`channel`]: Session::channel
//! [`join`]: Session::join
//! [`push`]: Session::push
//! [`leave`]: Session::leave
//! [`remove_channel`]: Session::remove_channel
//! [`handle_visibility`]: Session::handle_visibility
//! [`handle_open`]: Session::handle_open
//! [`handle_close`]: Session::handle_close
//! [`handle_error`]: Session::handle_error
//! [`handle_text`]: Session::handle_text
//! [`handle_binary`]: Session::handle_binary
//! [`handle_frame`]: Session::handle_frame
//! [`handle_timeout`]: Session::handle_timeout
//! [`poll_transmit`]: Session::poll_transmit
//! [`poll_action`]: Session::poll_action
//! [`poll_event`]: Session::poll_event
//! [`poll_timeout`]: Session::poll_timeout

mod backoff;
mod config;
mod core;
mod error;
mod events;
mod host;
mod map;
mod resume;
mod session;
mod time;

#[cfg(test)]
mod tests;

pub use backoff::Backoff;
pub use config::{ClientConfig, CoreConfig, Delays};
pub use core::Core;
pub use error::{JoinError, LeaveError, PushError};
pub use events::{Action, ChannelId, ChannelState, ConnectionState, Event, PushId, StateCause};
pub use host::{CloseReason, CoreEvent, FOREIGN_REF, Host, InBody, Incoming, Outgoing, Ref};
pub use session::Session;
pub use time::Timestamp;
