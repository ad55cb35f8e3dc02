//! [`ClientSocket`]: the connection as the application holds it.

use std::sync::Arc;

use alight_protocol::Payload;
use alight_protocol::client::{ClientConfig, ConnectionState};
use alight_protocol::schema::Schema;

use super::channel::ClientChannel;
use super::driver::Driver;
use super::error::SocketError;
use super::shared::{Clock, Shared};
use super::stream::Subscription;
use super::typed::{TypedClientChannel, WrongTopic};

/// Settings of the Rust API itself (the protocol's are in [`ClientConfig`]).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SocketOptions {
    /// How many events each subscriber's stream holds before the oldest are dropped and
    /// reported as [`Lagged`](super::Lagged); default 256. Applies to [`ClientSocket::events`],
    /// [`ClientChannel::events`] and [`ClientChannel::states`]; their `_with_capacity` variants override it.
    pub event_capacity: usize,
}

impl Default for SocketOptions {
    fn default() -> Self {
        SocketOptions {
            event_capacity: 256,
        }
    }
}

impl SocketOptions {
    /// Sets [`event_capacity`](Self::event_capacity) (at least 1).
    pub fn event_capacity(mut self, capacity: usize) -> Self {
        self.event_capacity = capacity.max(1);
        self
    }
}

/// What happens to the connection, as [`ClientSocket::events`] reports it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum SocketEvent {
    /// The transport opened; channels that were joined rejoin now.
    Open,
    /// The transport closed (reported, or closed by the session); unless
    /// [`disconnect`](ClientSocket::disconnect) was called, a reconnect follows after the backoff.
    Close {
        /// The WebSocket close code, if one is known.
        code: Option<u16>,
    },
    /// Something failed; see [`SocketError`].
    Error(SocketError),
}

/// A Phoenix socket: one connection (reconnected as needed) carrying any number of channels.
///
/// Cheap to clone; clones share the connection. When the last `ClientSocket` and [`ClientChannel`] handle is
/// dropped, the driver closes the connection (code 1000) and stops; futures still waiting then
/// resolve with a `Closed` error and streams end.
///
/// Made by a driver: `alight_client::native::Builder` on tokio (feature `native`), or
/// [`ClientSocket::new`] for a driver of your own.
#[derive(Debug, Clone)]
pub struct ClientSocket {
    pub(crate) handle: Arc<SocketHandle>,
}

/// Keeps the socket alive; the last one dropped shuts the driver down.
#[derive(Debug)]
pub(crate) struct SocketHandle {
    pub(crate) shared: Arc<Shared>,
}

impl Drop for SocketHandle {
    fn drop(&mut self) {
        self.shared.user(|state, now| state.shut_down(now));
    }
}

impl ClientSocket {
    /// A socket and the [`Driver`] that must run it (see the [module docs](super) for the
    /// contract). `clock` gives the time since an origin of the driver's choosing; it is called
    /// with the state locked, so it must be cheap and lock nothing.
    ///
    /// Nothing connects until [`connect`](Self::connect).
    pub fn new(
        config: ClientConfig,
        options: SocketOptions,
        clock: Clock,
    ) -> (ClientSocket, Driver) {
        let shared = Arc::new(Shared::new(config, options, clock));
        let socket = ClientSocket {
            handle: Arc::new(SocketHandle {
                shared: Arc::clone(&shared),
            }),
        };
        (socket, Driver::new(shared))
    }

    fn shared(&self) -> &Shared {
        &self.handle.shared
    }

    /// Connects, and keeps reconnecting after the backoff whenever the connection is lost, until
    /// [`disconnect`](Self::disconnect). Does nothing while connected or connecting.
    pub fn connect(&self) {
        self.shared().user(|state, now| state.session.connect(now));
    }

    /// Closes the connection (code 1000) and stops reconnecting. Channels stay as they are and
    /// rejoin after the next [`connect`](Self::connect); pushes made meanwhile wait (and time
    /// out) as they would during any outage.
    pub fn disconnect(&self) {
        self.shared()
            .user(|state, now| state.session.disconnect(now, Some(1000)));
    }

    /// The state of the connection.
    pub fn connection_state(&self) -> ConnectionState {
        self.shared().read(|state| state.session.connection_state())
    }

    /// Whether the transport is open.
    pub fn is_connected(&self) -> bool {
        self.shared().read(|state| state.session.is_connected())
    }

    /// A channel for `topic`, joined with `params` (sent again with every rejoin). Nothing is
    /// sent until [`ClientChannel::join`].
    ///
    /// Two channels of one topic may exist, as in phoenix.js, but only one is joined at a time:
    /// joining one leaves the other.
    pub fn channel(&self, topic: impl Into<String>, params: Payload) -> ClientChannel {
        ClientChannel::new(Arc::clone(&self.handle), topic.into(), params)
    }

    /// A channel of the schema `S` for `topic`; its params are given to
    /// [`TypedClientChannel::join`]. Fails if `topic` is not in `S`'s topic family
    /// ([`Schema::matches_topic`]).
    pub fn typed_channel<S: Schema>(
        &self,
        topic: impl Into<String>,
    ) -> Result<TypedClientChannel<S>, WrongTopic> {
        let topic = topic.into();
        if !S::matches_topic(&topic) {
            return Err(WrongTopic {
                topic,
                pattern: S::TOPIC,
            });
        }
        Ok(TypedClientChannel::new(
            self.channel(topic, Payload::empty()),
        ))
    }

    /// The connection's events from now on: opens, closes and errors, with the default capacity
    /// ([`SocketOptions::event_capacity`]).
    pub fn events(&self) -> Subscription<SocketEvent> {
        self.shared().call(|state, _| state.subscribe_socket(None))
    }

    /// As [`events`](Self::events), holding up to `capacity` events.
    pub fn events_with_capacity(&self, capacity: usize) -> Subscription<SocketEvent> {
        self.shared()
            .call(|state, _| state.subscribe_socket(Some(capacity)))
    }
}
