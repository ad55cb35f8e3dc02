//! Encoded messages as shared bytes, and broadcasts encoded once.
//!
//! A server fanning a broadcast out to ten thousand sockets must not serialize it ten thousand times.
//! [`SharedBroadcast`] encodes its frame at most once per [`Serializer`] and hands every subscriber a
//! clone of the same [`Wire`], which is a reference-counted [`Bytes`] underneath.

use std::any::Any;
use std::sync::OnceLock;

use bytes::Bytes;

use crate::{Direction, EncodeError, Frame, Payload, Serializer};

/// UTF-8 text in shared, cheaply clonable bytes (the body of a WebSocket text frame).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SharedText(Bytes);

impl SharedText {
    /// The text.
    pub fn as_str(&self) -> &str {
        // Every constructor takes a `String` or `&'static str`, so the bytes are UTF-8 and the
        // default is unreachable; it keeps a panic path out of the browser package.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The underlying bytes (UTF-8).
    pub fn as_bytes(&self) -> &Bytes {
        &self.0
    }

    /// Gives up the UTF-8 guarantee and returns the bytes.
    pub fn into_bytes(self) -> Bytes {
        self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the text is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for SharedText {
    fn from(text: String) -> Self {
        SharedText(Bytes::from(text))
    }
}

impl From<&'static str> for SharedText {
    fn from(text: &'static str) -> Self {
        SharedText(Bytes::from_static(text.as_bytes()))
    }
}

impl std::fmt::Debug for SharedText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

/// One encoded WebSocket message: a text frame (JSON) or a binary frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wire {
    /// Sent with the text opcode.
    Text(SharedText),
    /// Sent with the binary opcode.
    Binary(Bytes),
}

impl Wire {
    /// The text, for a text message.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Wire::Text(text) => Some(text.as_str()),
            Wire::Binary(_) => None,
        }
    }

    /// The bytes, for a binary message.
    pub fn as_binary(&self) -> Option<&Bytes> {
        match self {
            Wire::Text(_) => None,
            Wire::Binary(bytes) => Some(bytes),
        }
    }

    /// Size of the message body in bytes.
    pub fn len(&self) -> usize {
        match self {
            Wire::Text(text) => text.len(),
            Wire::Binary(bytes) => bytes.len(),
        }
    }

    /// Whether the body is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A broadcast (`[null, null, topic, event, payload]`) that encodes itself at most once per serializer.
///
/// Share it behind an `Arc`; the first subscriber of each serializer pays for encoding and every
/// other one clones the bytes.
///
/// ```
/// use alight_protocol::{Payload, Serializer, SharedBroadcast};
///
/// let broadcast = SharedBroadcast::new("room:lobby", "shout", Payload::json(&"hi")?);
/// let a = broadcast.wire(Serializer::V2)?;
/// let b = broadcast.wire(Serializer::V2)?;
/// assert_eq!(a.as_text(), Some(r#"[null,null,"room:lobby","shout","hi"]"#));
/// // Same bytes, not a second encoding.
/// assert_eq!(a.as_text().map(str::as_ptr), b.as_text().map(str::as_ptr));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct SharedBroadcast {
    frame: Frame,
    v1: OnceLock<Result<Wire, EncodeError>>,
    v2: OnceLock<Result<Wire, EncodeError>>,
    /// The V1 and V2 wire in a transport's own type (see [`SharedBroadcast::wire_as`]).
    v1_as: OnceLock<Box<dyn Any + Send + Sync>>,
    v2_as: OnceLock<Box<dyn Any + Send + Sync>>,
}

impl SharedBroadcast {
    /// A broadcast of `event` with `payload` on `topic`.
    pub fn new(topic: impl Into<String>, event: impl Into<String>, payload: Payload) -> Self {
        Self::from_frame(Frame::broadcast(topic, event, payload))
    }

    /// Wraps an already built frame (normally a broadcast, but any server → client frame works).
    pub fn from_frame(frame: Frame) -> Self {
        SharedBroadcast {
            frame,
            v1: OnceLock::new(),
            v2: OnceLock::new(),
            v1_as: OnceLock::new(),
            v2_as: OnceLock::new(),
        }
    }

    /// The frame being broadcast.
    pub fn frame(&self) -> &Frame {
        &self.frame
    }

    /// The encoded message for `serializer`, encoding it on first use.
    ///
    /// Errors are remembered too: a binary payload has no V1 form, and asking again says so again
    /// without another attempt.
    pub fn wire(&self, serializer: Serializer) -> Result<Wire, EncodeError> {
        let slot = match serializer {
            Serializer::V1Json => &self.v1,
            Serializer::V2 => &self.v2,
        };
        slot.get_or_init(|| serializer.encode(Direction::ToClient, &self.frame))
            .clone()
    }

    /// The encoded message for `serializer` in a transport's own type, converted from the
    /// [`Wire`] once per broadcast and cloned for every subscriber.
    ///
    /// For a transport whose message type checks what it is made from: a WebSocket text message
    /// built from bytes validates their UTF-8 each time, which a fan-out would otherwise pay per
    /// subscriber. One type is kept per serializer, the first asked for; a second type is
    /// converted on every call.
    ///
    /// ```
    /// use alight_protocol::{Payload, Serializer, SharedBroadcast, Wire};
    ///
    /// /// A transport's text type, say, checked once.
    /// #[derive(Clone)]
    /// struct Checked(String);
    ///
    /// fn convert(wire: Wire) -> Checked {
    ///     Checked(wire.as_text().unwrap_or_default().to_owned())
    /// }
    ///
    /// let broadcast = SharedBroadcast::new("room:lobby", "shout", Payload::json(&"hi")?);
    /// let a = broadcast.wire_as(Serializer::V2, convert)?;
    /// let b = broadcast.wire_as(Serializer::V2, convert)?;
    /// assert_eq!(a.0, r#"[null,null,"room:lobby","shout","hi"]"#);
    /// assert_eq!(a.0, b.0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wire_as<T>(
        &self,
        serializer: Serializer,
        convert: fn(Wire) -> T,
    ) -> Result<T, EncodeError>
    where
        T: Clone + Send + Sync + 'static,
    {
        let slot = match serializer {
            Serializer::V1Json => &self.v1_as,
            Serializer::V2 => &self.v2_as,
        };
        if let Some(kept) = slot.get() {
            return match kept.downcast_ref::<T>() {
                Some(value) => Ok(value.clone()),
                None => self.wire(serializer).map(convert),
            };
        }
        let value = self.wire(serializer).map(convert)?;
        // Another thread may have stored first; either way a value of some type is kept.
        let kept = slot.get_or_init(|| Box::new(value.clone()));
        Ok(kept.downcast_ref::<T>().cloned().unwrap_or(value))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    static CONVERSIONS: AtomicUsize = AtomicUsize::new(0);

    fn counted(wire: Wire) -> String {
        CONVERSIONS.fetch_add(1, Ordering::Relaxed);
        wire.as_text().unwrap_or_default().to_owned()
    }

    fn length(wire: Wire) -> usize {
        wire.as_text().map_or(0, str::len)
    }

    #[test]
    fn a_transport_type_is_converted_once_per_serializer() -> Result<(), EncodeError> {
        let broadcast = SharedBroadcast::new("room:a", "shout", Payload::empty());
        let text = r#"[null,null,"room:a","shout",{}]"#;
        for _ in 0..3 {
            assert_eq!(broadcast.wire_as(Serializer::V2, counted)?, text);
        }
        assert_eq!(CONVERSIONS.load(Ordering::Relaxed), 1);
        // A second type for the same serializer is still right, converted each time.
        assert_eq!(broadcast.wire_as(Serializer::V2, length)?, text.len());
        assert_eq!(broadcast.wire_as(Serializer::V2, length)?, text.len());
        Ok(())
    }
}
