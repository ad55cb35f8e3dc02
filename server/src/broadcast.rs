//! [`Broadcast`]: the message a [`PubSub`](crate::PubSub) carries and the registry fans out.

use alight_protocol::{Frame, Payload, SharedBroadcast};

use crate::backpressure::TakenSignal;

/// A broadcast on its way to the subscribers of its topic: `[null, null, topic, event, payload]`,
/// encoded at most once per serializer however many sockets receive it.
///
/// Share it behind an `Arc`: every subscriber queue it is fanned out to holds a clone, and a
/// publisher waits for the last clone to go (see the `backpressure` module of this crate).
///
/// A multi-node adapter builds one from what it receives and hands it to
/// [`Registry::dispatch`](crate::Registry::dispatch); to send one to the other nodes it reads
/// [`frame`](Self::frame) or the encoded bytes of [`encoded`](Self::encoded).
///
/// ```
/// use std::sync::Arc;
/// use alight_protocol::{Payload, Serializer};
/// use alight_server::Broadcast;
///
/// let broadcast = Arc::new(Broadcast::new("room:lobby", "shout", Payload::json(&"hi")?));
/// assert_eq!(broadcast.frame().topic, "room:lobby");
/// let wire = broadcast.encoded().wire(Serializer::V2)?;
/// assert_eq!(wire.as_text(), Some(r#"[null,null,"room:lobby","shout","hi"]"#));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// A broadcast may carry a *route* apart from its frame's topic: the registry then delivers it
/// to the sockets whose channel subscribed that route with
/// [`Context::subscribe`](crate::Context::subscribe), not to every subscriber of the topic. The
/// client still sees the frame's topic. Routes are local to a node: an adapter that sends a
/// broadcast to other nodes sends its frame, which the other nodes dispatch on its topic.
#[derive(Debug)]
pub struct Broadcast {
    encoded: SharedBroadcast,
    /// Where the registry delivers it, when not to the frame's topic.
    route: Option<Box<str>>,
    /// Wakes a publisher waiting for this broadcast when the last queue lets go of it.
    pub(crate) taken: TakenSignal,
}

impl Broadcast {
    /// A broadcast of `event` with `payload` on `topic`.
    pub fn new(topic: impl Into<String>, event: impl Into<String>, payload: Payload) -> Self {
        Broadcast::from_shared(SharedBroadcast::new(topic, event, payload))
    }

    /// Wraps a broadcast encoded (or to be encoded) once, e.g. one rebuilt from a frame another
    /// node sent.
    pub fn from_shared(encoded: SharedBroadcast) -> Self {
        Broadcast {
            encoded,
            route: None,
            taken: TakenSignal::default(),
        }
    }

    /// A broadcast of `encoded` delivered to the subscribers of `route` rather than of its
    /// frame's topic: to the channels that called [`Context::subscribe`](crate::Context::subscribe)
    /// with `route`. Its frame's topic must be theirs, since that is the channel it reaches on
    /// each socket (a socket without a channel on that topic drops it).
    ///
    /// ```
    /// use alight_protocol::{Payload, SharedBroadcast};
    /// use alight_server::Broadcast;
    ///
    /// let shared = SharedBroadcast::new("shape:todos", "changes", Payload::json(&[1, 2])?);
    /// let broadcast = Broadcast::routed("shape:todos\u{1f}7-1", shared);
    /// assert_eq!(broadcast.route(), "shape:todos\u{1f}7-1");
    /// assert_eq!(broadcast.frame().topic, "shape:todos");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn routed(route: impl Into<String>, encoded: SharedBroadcast) -> Self {
        Broadcast {
            route: Some(route.into().into_boxed_str()),
            ..Broadcast::from_shared(encoded)
        }
    }

    /// Where the registry delivers it: its route if it has one, else its frame's topic.
    pub fn route(&self) -> &str {
        self.route.as_deref().unwrap_or(&self.encoded.frame().topic)
    }

    /// The frame being broadcast: its topic, event and payload.
    pub fn frame(&self) -> &Frame {
        self.encoded.frame()
    }

    /// The frame with its encodings, made once per serializer.
    pub fn encoded(&self) -> &SharedBroadcast {
        &self.encoded
    }
}
