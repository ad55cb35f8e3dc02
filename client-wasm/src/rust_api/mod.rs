//! The Rust API: sockets and channels with futures for replies and streams for events, for native
//! apps and Rust frontends (Leptos, Dioxus, Yew).
//!
//! Runtime-agnostic: it needs only `futures-channel` and `futures-util`, spawns nothing and reads no
//! clock of its own. A *driver* owns the transport and feeds the shared
//! [`Session`](alight_protocol::client::Session) through a [`Driver`]: `native::Builder` (feature
//! `native`) is one on tokio and tokio-tungstenite; a browser one drives the same API over
//! `web_sys::WebSocket`.
//!
//! | handle | what it does |
//! |---|---|
//! | [`ClientSocket`] | `connect`, `disconnect`, `channel(topic, params)`, `typed_channel::<S>(topic)`, `events()` |
//! | [`ClientChannel`] | `join()`, `push(event, payload)` → [`ReplyFuture`]; `events()`, `states()` → [`Subscription`]; `leave()` |
//! | [`TypedClientChannel<S>`] | the same with the types of a [`Schema`](alight_protocol::schema::Schema): `join(&S::JoinParams)`, `push(&S::In)`, `events()` of `S::Out` |
//! | [`LiveCollection<Row>`] | a shape's rows by key over `shape:<table>`, kept live across reconnects; a stream of [`LiveEvent`]s |
//! | [`Driver`] | the driver's side: `handle_*` inputs, [`take_work`](Driver::take_work), [`woken`](Driver::woken) |
//!
//! # Semantics
//! The session's, which are phoenix.js's (see [`alight_protocol::client`]): joins and pushes made
//! while offline wait for the connection, a joined channel rejoins by itself after a reconnect or a
//! crash, and a push's timeout runs from the call. What this layer adds:
//! - **Calls happen at the call.** `join`, `push` and `leave` hand their frame to the session
//!   before they return, in call order; the returned [`ReplyFuture`] only carries the answer and
//!   may be awaited later or dropped.
//! - **A failed first join closes the channel** instead of retrying forever (phoenix.js's
//!   behaviour, a common complaint); see [`ClientJoinError`].
//! - **Bounded streams, loud lag.** Each subscriber has its own queue of
//!   [`SocketOptions::event_capacity`] events. A subscriber that falls behind never slows the
//!   connection or the other subscribers: the oldest of its queued events are dropped, counted,
//!   and reported in the stream as an `Err(`[`Lagged`]`)` item before the events that were kept
//!   (and in [`Subscription::missed_total`]).
//! - **Handles own their resources.** Dropping the last clone of a [`ClientChannel`] leaves it;
//!   dropping the last [`ClientSocket`] and [`ClientChannel`] handle closes the connection and stops the
//!   driver; futures still waiting resolve with a `Closed` error and streams end.
//!
//! # Example
//! ```
//! # #[cfg(feature = "native")]
//! # async fn chat() -> Result<(), Box<dyn std::error::Error>> {
//! use alight_client::native;
//! use alight_protocol::Payload;
//! use futures_util::StreamExt;
//!
//! let socket = native::Builder::new("ws://127.0.0.1:4000/socket")
//!     .auth_token("my-token")
//!     .build();
//! socket.connect();
//!
//! let room = socket.channel("room:lobby", Payload::empty());
//! let mut events = room.events();
//! let reply = room.join().await?;
//! println!("joined: {:?}", reply.as_json());
//!
//! room.push("shout", Payload::json(&serde_json::json!({ "body": "hi" }))?).await?;
//! while let Some(event) = events.next().await {
//!     match event {
//!         Ok(message) => println!("{}: {:?}", message.event, message.payload.as_json()),
//!         Err(lagged) => eprintln!("missed {} events", lagged.missed),
//!     }
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # Writing a driver
//! [`ClientSocket::new`] returns the socket and its [`Driver`]; the driver's loop is documented there.
//! The browser needs nothing more than this: `WebSocket` callbacks call the `handle_*` methods and
//! then drain [`Driver::take_work`], a `setTimeout` is re-armed at [`Work::timeout`], and a
//! `spawn_local` task awaits [`Driver::woken`] to drain after user calls.

mod channel;
mod driver;
mod error;
mod live;
mod reply;
mod shared;
mod socket;
mod stream;
mod typed;

#[cfg(test)]
mod tests;

pub use channel::{ClientChannel, Message, Recovery, StateChange};
pub use driver::{Driver, Work};
pub use error::{Cause, ClientJoinError, EventError, LeaveError, PushError, SocketError};
pub use live::{LiveChange, LiveCollection, LiveError, LiveEvent, Operation, ShapeRequest};
pub use reply::ReplyFuture;
pub use shared::Clock;
pub use socket::{ClientSocket, SocketEvent, SocketOptions};
pub use stream::{Lagged, Subscription};
pub use typed::{TypedClientChannel, TypedEvents, WrongTopic};
