//! The message model shared by every serializer.
//!
//! A [`Frame`] is one Phoenix message: `join_ref` names the channel instance (the `ref` of its join),
//! `msg_ref` (`ref` on the wire) pairs a message with its reply, `topic` names the channel, and the
//! [`Body`] is either an event with a payload or a reply to an earlier message.
//!
//! | flow | join_ref | ref | body |
//! |---|---|---|---|
//! | join / push from a client | channel's | fresh | `Event` |
//! | reply | the message's | the message's | `Reply { status, response }` |
//! | push from the server to one channel | channel's | `None` | `Event` |
//! | broadcast | `None` | `None` | `Event` |
//! | heartbeat | `None` | fresh | `Event` on topic `phoenix` |
//!
//! A [`FrameRef`] is the same message borrowed: what
//! [`Serializer::decode_text_in_place`](crate::Serializer::decode_text_in_place) reads out of a
//! text without copying it, and what [`Serializer::encode_text`](crate::Serializer::encode_text)
//! writes from parts the caller already holds. A server answering a push needs nothing of the
//! frame after its reply is written, so neither side has to own its strings.

use std::borrow::Cow;

use bytes::Bytes;
use serde::Serialize;

use crate::event;
use crate::json::{JsonError, RawJson};

/// A message payload: JSON (text frames) or raw bytes (V2 binary frames).
///
/// JSON is kept as validated, unparsed text ([`RawJson`]), so relaying a payload never parses or
/// re-serializes it; a handler deserializes it into its own types when it needs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// A JSON value, kept as its source text.
    Json(RawJson),
    /// Bytes carried by a V2 binary frame (an `ArrayBuffer` in phoenix.js).
    Binary(Bytes),
}

impl Payload {
    /// The empty JSON object `{}`, the payload of joins, leaves and heartbeats.
    pub fn empty() -> Self {
        Payload::Json(RawJson::empty_object())
    }

    /// Serializes `value` into a JSON payload.
    ///
    /// ```
    /// let payload = alight_protocol::Payload::json(&serde_json::json!({"body": "hi"}))?;
    /// assert_eq!(payload.as_json(), Some(r#"{"body":"hi"}"#));
    /// # Ok::<(), serde_json::Error>(())
    /// ```
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<Self, serde_json::Error> {
        // serde_json writes one JSON value; no need to check it again.
        serde_json::to_string(value).map(|text| Payload::Json(RawJson::trusted(text)))
    }

    /// Checks that `text` is one JSON value and makes it a payload (without the whitespace
    /// around it).
    pub fn from_json_str(text: &str) -> Result<Self, JsonError> {
        RawJson::from_string(text.to_owned()).map(Payload::Json)
    }

    /// The JSON text, if this is a JSON payload.
    pub fn as_json(&self) -> Option<&str> {
        match self {
            Payload::Json(json) => Some(json.get()),
            Payload::Binary(_) => None,
        }
    }

    /// The bytes, if this is a binary payload.
    pub fn as_binary(&self) -> Option<&Bytes> {
        match self {
            Payload::Json(_) => None,
            Payload::Binary(bytes) => Some(bytes),
        }
    }

    /// The payload borrowed.
    pub fn to_ref(&self) -> PayloadRef<'_> {
        match self {
            Payload::Json(json) => PayloadRef::Json(json.get()),
            Payload::Binary(bytes) => PayloadRef::Binary(bytes),
        }
    }

    /// Deserializes a JSON payload into `T`.
    ///
    /// A binary payload is reported as a type error, as it would be for JSON of the wrong shape.
    pub fn deserialize<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        match self {
            Payload::Json(json) => serde_json::from_str(json.get()),
            Payload::Binary(_) => Err(serde::de::Error::custom(
                "expected a JSON payload, found a binary one",
            )),
        }
    }
}

/// What a frame carries: an event with its payload, or a reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// Any event: joins, leaves, heartbeats, application events, `phx_error`, `phx_close`.
    Event {
        /// The event name.
        event: String,
        /// Its payload.
        payload: Payload,
    },
    /// `phx_reply`: the answer to the message with the same `ref`.
    Reply {
        /// `ok`, `error`, or another status the application chose.
        status: String,
        /// The response (a JSON value, or bytes in a V2 binary reply).
        response: Payload,
    },
}

/// One Phoenix message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The `ref` of the join that opened the channel this message belongs to.
    pub join_ref: Option<String>,
    /// The message's own `ref`, echoed by its reply.
    pub msg_ref: Option<String>,
    /// The channel's topic, e.g. `room:lobby`.
    pub topic: String,
    /// Event or reply.
    pub body: Body,
}

impl Frame {
    /// An event frame.
    pub fn message(
        join_ref: Option<String>,
        msg_ref: Option<String>,
        topic: impl Into<String>,
        event: impl Into<String>,
        payload: Payload,
    ) -> Self {
        Frame {
            join_ref,
            msg_ref,
            topic: topic.into(),
            body: Body::Event {
                event: event.into(),
                payload,
            },
        }
    }

    /// A broadcast: no `join_ref`, no `ref`.
    pub fn broadcast(topic: impl Into<String>, event: impl Into<String>, payload: Payload) -> Self {
        Frame::message(None, None, topic, event, payload)
    }

    /// The reply to `to`, carrying its `join_ref`, `ref` and topic.
    pub fn reply(to: &Frame, status: impl Into<String>, response: Payload) -> Self {
        Frame {
            join_ref: to.join_ref.clone(),
            msg_ref: to.msg_ref.clone(),
            topic: to.topic.clone(),
            body: Body::Reply {
                status: status.into(),
                response,
            },
        }
    }

    /// The event name: the event of an event frame, `phx_reply` for a reply.
    pub fn event(&self) -> &str {
        match &self.body {
            Body::Event { event, .. } => event,
            Body::Reply { .. } => event::REPLY,
        }
    }

    /// The payload of an event frame, or the response of a reply.
    pub fn payload(&self) -> &Payload {
        match &self.body {
            Body::Event { payload, .. } => payload,
            Body::Reply { response, .. } => response,
        }
    }

    /// The frame borrowed.
    pub fn to_ref(&self) -> FrameRef<'_> {
        FrameRef {
            join_ref: self.join_ref.as_deref().map(Cow::Borrowed),
            msg_ref: self.msg_ref.as_deref().map(Cow::Borrowed),
            topic: Cow::Borrowed(&self.topic),
            body: match &self.body {
                Body::Event { event, payload } => BodyRef::Event {
                    event: Cow::Borrowed(event),
                    payload: payload.to_ref(),
                },
                Body::Reply { status, response } => BodyRef::Reply {
                    status: Cow::Borrowed(status),
                    response: response.to_ref(),
                },
            },
        }
    }
}

/// A payload borrowed: validated JSON text, or bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadRef<'a> {
    /// One JSON value as its text (without surrounding whitespace), known to be valid.
    Json(&'a str),
    /// Bytes carried by a V2 binary frame.
    Binary(&'a Bytes),
}

impl<'a> PayloadRef<'a> {
    /// The empty JSON object `{}`, the payload of joins, leaves and heartbeats.
    pub const EMPTY: PayloadRef<'static> = PayloadRef::Json("{}");

    /// The JSON text, if this is a JSON payload.
    pub fn as_json(&self) -> Option<&'a str> {
        match *self {
            PayloadRef::Json(json) => Some(json),
            PayloadRef::Binary(_) => None,
        }
    }

    /// An owned copy.
    pub fn to_payload(&self) -> Payload {
        match *self {
            PayloadRef::Json(json) => Payload::Json(RawJson::trusted(json)),
            PayloadRef::Binary(bytes) => Payload::Binary(bytes.clone()),
        }
    }
}

/// What a [`FrameRef`] carries: an event with its payload, or a reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyRef<'a> {
    /// Any event, as [`Body::Event`].
    Event {
        /// The event name.
        event: Cow<'a, str>,
        /// Its payload.
        payload: PayloadRef<'a>,
    },
    /// `phx_reply`, as [`Body::Reply`].
    Reply {
        /// `ok`, `error`, or another status.
        status: Cow<'a, str>,
        /// The response.
        response: PayloadRef<'a>,
    },
}

/// One Phoenix message, borrowed: a string is owned only where the text it was read from had
/// escapes in it.
///
/// ```
/// use alight_protocol::{Direction, Serializer};
/// use std::borrow::Cow;
///
/// let text = r#"["3","4","room:lobby","ping",{"n":1}]"#;
/// let frame = Serializer::V2.decode_text_in_place(Direction::ToServer, text)?;
/// assert!(matches!(frame.topic, Cow::Borrowed("room:lobby")));
/// assert_eq!(frame.event(), "ping");
/// assert_eq!(frame.payload().as_json(), Some(r#"{"n":1}"#));
/// # Ok::<(), alight_protocol::DecodeError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameRef<'a> {
    /// The `ref` of the join that opened the channel this message belongs to.
    pub join_ref: Option<Cow<'a, str>>,
    /// The message's own `ref`, echoed by its reply.
    pub msg_ref: Option<Cow<'a, str>>,
    /// The channel's topic.
    pub topic: Cow<'a, str>,
    /// Event or reply.
    pub body: BodyRef<'a>,
}

impl<'a> FrameRef<'a> {
    /// The event name: the event of an event frame, `phx_reply` for a reply.
    pub fn event(&self) -> &str {
        match &self.body {
            BodyRef::Event { event, .. } => event,
            BodyRef::Reply { .. } => event::REPLY,
        }
    }

    /// The payload of an event frame, or the response of a reply.
    pub fn payload(&self) -> PayloadRef<'a> {
        match &self.body {
            BodyRef::Event { payload, .. } => *payload,
            BodyRef::Reply { response, .. } => *response,
        }
    }

    /// An owned copy.
    pub fn into_owned(self) -> Frame {
        Frame {
            join_ref: self.join_ref.map(Cow::into_owned),
            msg_ref: self.msg_ref.map(Cow::into_owned),
            topic: self.topic.into_owned(),
            body: match self.body {
                BodyRef::Event { event, payload } => Body::Event {
                    event: event.into_owned(),
                    payload: payload.to_payload(),
                },
                BodyRef::Reply { status, response } => Body::Reply {
                    status: status.into_owned(),
                    response: response.to_payload(),
                },
            },
        }
    }
}
