//! Typed schemas: an application declares the events of a topic family once, as Rust types.
//!
//! A [`Schema`] names a topic pattern and the types that travel on it: join params and join reply,
//! the events a client pushes ([`Schema::In`]), the response to those pushes, and the events the
//! server pushes or broadcasts ([`Schema::Out`]). The server's channel and the Rust/wasm client are
//! both generic over the same `Schema`, so pushing a server event from a client, or answering with
//! the wrong reply type, is a compile error rather than a surprise on the wire. With the `ts`
//! feature the same types also yield the TypeScript declarations of the npm package.
//!
//! An [`Events`] type maps a Rust value to a frame's event name and payload and back. An adjacently
//! tagged serde enum gets that mapping by declaring itself [`SerdeEvents`]; see there for the wire
//! table.
//!
//! # Example
//! A whole `room:*` schema, a client push encoded into a [`Frame`](crate::Frame), and the server
//! reading it back:
//! ```
//! use alight_protocol::schema::{Events, Schema, SchemaError, SerdeEvents};
//! use alight_protocol::{Frame, Payload};
//! use serde::{Deserialize, Serialize};
//!
//! /// What a client sends to join a room.
//! #[derive(Debug, PartialEq, Serialize, Deserialize)]
//! #[cfg_attr(feature = "ts", derive(tsify::Tsify))]
//! pub struct JoinRoom {
//!     pub nickname: String,
//! }
//!
//! /// The answer to a successful join.
//! #[derive(Debug, PartialEq, Serialize, Deserialize)]
//! #[cfg_attr(feature = "ts", derive(tsify::Tsify))]
//! pub struct Joined {
//!     pub members: u32,
//! }
//!
//! #[derive(Debug, PartialEq, Serialize, Deserialize)]
//! #[cfg_attr(feature = "ts", derive(tsify::Tsify))]
//! pub struct Shout {
//!     pub body: String,
//! }
//!
//! alight_protocol::events! {
//!     /// Client → server.
//!     #[derive(Debug, PartialEq, Serialize, Deserialize)]
//!     #[cfg_attr(feature = "ts", derive(tsify::Tsify))]
//!     #[serde(rename_all = "snake_case")]
//!     pub enum RoomIn {
//!         Shout(Shout),
//!         Ping,
//!     }
//! }
//!
//! alight_protocol::events! {
//!     /// Server → client.
//!     #[derive(Debug, PartialEq, Serialize, Deserialize)]
//!     #[cfg_attr(feature = "ts", derive(tsify::Tsify))]
//!     #[serde(rename_all = "snake_case")]
//!     pub enum RoomOut {
//!         Shout { from: String, body: String },
//!     }
//! }
//!
//! pub struct Room;
//!
//! impl Schema for Room {
//!     const TOPIC: &'static str = "room:*";
//!     type JoinParams = JoinRoom;
//!     type JoinReply = Joined;
//!     type In = RoomIn;
//!     type Reply = ();
//!     type Out = RoomOut;
//! }
//!
//! /// A client's push: only the schema's `In` events are accepted.
//! fn push<S: Schema>(
//!     topic: &str,
//!     join_ref: &str,
//!     msg_ref: &str,
//!     event: &S::In,
//! ) -> Result<Frame, SchemaError> {
//!     let (name, payload) = event.to_parts()?;
//!     Ok(Frame::message(Some(join_ref.into()), Some(msg_ref.into()), topic, name, payload))
//! }
//!
//! let shout = RoomIn::Shout(Shout { body: "hi".into() });
//! let frame = push::<Room>("room:lobby", "1", "2", &shout)?;
//! assert_eq!(frame.event(), "shout");
//! assert_eq!(frame.payload().as_json(), Some(r#"{"body":"hi"}"#));
//!
//! // The server routes the frame by its topic and decodes the payload into the same type.
//! assert!(Room::matches_topic(&frame.topic));
//! let received = RoomIn::from_parts(frame.event(), frame.payload())?;
//! assert_eq!(received, shout);
//!
//! // A unit variant travels with an empty object, as phoenix.js sends it.
//! let (event, payload) = RoomIn::Ping.to_parts()?;
//! assert_eq!((event.as_str(), payload.as_json()), ("ping", Some("{}")));
//!
//! // Events the schema does not know are errors, not panics.
//! assert!(matches!(
//!     RoomIn::from_parts("dance", &Payload::empty()),
//!     Err(SchemaError::UnknownEvent { .. })
//! ));
//! # Ok::<(), SchemaError>(())
//! ```
//!
//! A client cannot push a server event: `RoomOut` is not `<Room as Schema>::In`.
//! ```compile_fail,E0308
//! # use alight_protocol::schema::{Events, Schema, SchemaError, SerdeEvents};
//! # use alight_protocol::Frame;
//! # use serde::{Deserialize, Serialize};
//! # alight_protocol::events! {
//! #     #[derive(Serialize, Deserialize)]
//! #     #[serde(rename_all = "snake_case")]
//! #     pub enum RoomIn { Ping }
//! # }
//! # alight_protocol::events! {
//! #     #[derive(Serialize, Deserialize)]
//! #     #[serde(rename_all = "snake_case")]
//! #     pub enum RoomOut { Shout { from: String, body: String } }
//! # }
//! # pub struct Room;
//! # impl Schema for Room {
//! #     const TOPIC: &'static str = "room:*";
//! #     type JoinParams = ();
//! #     type JoinReply = ();
//! #     type In = RoomIn;
//! #     type Reply = ();
//! #     type Out = RoomOut;
//! # }
//! # fn push<S: Schema>(
//! #     topic: &str,
//! #     join_ref: &str,
//! #     msg_ref: &str,
//! #     event: &S::In,
//! # ) -> Result<Frame, SchemaError> {
//! #     let (name, payload) = event.to_parts()?;
//! #     Ok(Frame::message(Some(join_ref.into()), Some(msg_ref.into()), topic, name, payload))
//! # }
//! let out = RoomOut::Shout { from: "server".into(), body: "hi".into() };
//! let frame = push::<Room>("room:lobby", "1", "2", &out);
//! ```
//!
//! # TypeScript
//! Under the `ts` feature, schema types derive [`tsify::Tsify`](https://docs.rs/tsify/0.5.8)
//! (`#[cfg_attr(feature = "ts", derive(tsify::Tsify))]`; the deriving crate depends on `tsify` and
//! `wasm-bindgen` itself, since the derive names both). Tsify reads the serde attributes, so the
//! declaration describes exactly the JSON that serde produces; for `RoomIn` above:
//! ```ts
//! export type RoomIn = { event: "shout"; payload: Shout } | { event: "ping" };
//! ```
//! Natively the text is the associated constant `Tsify::DECL`; on `wasm32` the derive also emits
//! it as a wasm-bindgen `typescript_custom_section`, which the wasm-bindgen CLI copies into the
//! `.d.ts` of the package it writes. The declarations describe values as the wasm client exchanges
//! them with JavaScript through serde-wasm-bindgen: an `Option` is `T | undefined` there, while the
//! JSON on the wire carries `null`.
//!
//! Why `tsify` 0.5.8 and not `tsify-next`: tsify-next was the fork kept alive while tsify was
//! dormant. tsify 0.5 now lists both maintainers and took in tsify-next's features, and
//! tsify-next's last release (0.5.6) declares itself deprecated in favour of tsify. tsify 0.5.8
//! needs wasm-bindgen ≥ 0.2.104, so it sits on our pinned `=0.2.130`; it generates `DECL` natively
//! (testable without a browser); and its `tsify::Ts<T>` wrapper for exported functions reports a
//! bad JS value as an error, where the `from_wasm_abi` path throws past Rust destructors and leaks.
//! We use its `js` feature, so declarations match what serde-wasm-bindgen produces.

use serde::Serialize;
use serde::de::DeserializeOwned;
use thiserror::Error;

use crate::Payload;

mod adjacent;

/// The events of one direction of a schema: each value maps to a frame's event name and payload.
///
/// Usually a serde enum declared [`SerdeEvents`]; implement it by hand for anything else, for
/// instance events with binary payloads:
/// ```
/// use alight_protocol::schema::{Events, SchemaError};
/// use alight_protocol::Payload;
///
/// /// `upload` with raw bytes (a V2 binary frame).
/// struct Upload(bytes::Bytes);
///
/// impl Events for Upload {
///     fn to_parts(&self) -> Result<(String, Payload), SchemaError> {
///         Ok(("upload".to_owned(), Payload::Binary(self.0.clone())))
///     }
///
///     fn from_parts(event: &str, payload: &Payload) -> Result<Self, SchemaError> {
///         match (event, payload) {
///             ("upload", Payload::Binary(bytes)) => Ok(Upload(bytes.clone())),
///             ("upload", Payload::Json(_)) => Err(SchemaError::Payload {
///                 event: event.to_owned(),
///                 source: serde::de::Error::custom("expected a binary payload, found JSON"),
///             }),
///             _ => Err(SchemaError::UnknownEvent { event: event.to_owned() }),
///         }
///     }
/// }
/// ```
pub trait Events: Sized {
    /// Splits into the event name and payload of a frame.
    fn to_parts(&self) -> Result<(String, Payload), SchemaError>;

    /// Builds from a frame's event name and payload.
    ///
    /// An event the type does not know is [`SchemaError::UnknownEvent`]; a payload that does not
    /// fit the event's type is [`SchemaError::Payload`].
    fn from_parts(event: &str, payload: &Payload) -> Result<Self, SchemaError>;
}

/// A serde adjacently tagged enum as [`Events`]: the tag is the event name, the content the
/// payload. Declared with [`events!`](crate::events), which gives the enum that shape; nothing
/// else implements it.
///
/// ```
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Serialize, Deserialize)] pub struct Shout { body: String }
/// alight_protocol::events! {
///     #[derive(Serialize, Deserialize)]
///     #[serde(rename_all = "snake_case")]
///     pub enum RoomIn {
///         Shout(Shout),
///         Move { x: i32, y: i32 },
///         Pair(u8, String),
///         Ping,
///     }
/// }
/// ```
///
/// | variant | event | payload sent | payload accepted |
/// |---|---|---|---|
/// | `Shout(Shout)` (newtype) | `shout` | the `Shout` as JSON | the same |
/// | `Move { x, y }` (struct) | `move` | `{"x":…,"y":…}` | the same |
/// | `Pair(u8, String)` (tuple) | `pair` | `[7,"seven"]` | the same |
/// | `Ping` (unit) | `ping` | `{}` | `{}`, `null` |
///
/// Event names are the serde variant names (`rename`, `rename_all` apply). Payloads are JSON:
/// decoding a binary payload is a [`SchemaError::Payload`], and events that carry bytes implement
/// [`Events`] by hand.
///
/// Nothing goes through `serde_json::Value`: encoding serializes the content straight into the
/// payload's [`RawJson`](crate::RawJson), and decoding reads the payload text once,
/// straight into the variant.
///
/// The shape is a compile-time property: a hand-written `impl SerdeEvents` does not compile, so an
/// externally or internally tagged enum, or a struct, cannot pass for one.
/// ```compile_fail,E0277
/// # use serde::{Deserialize, Serialize};
/// #[derive(Serialize, Deserialize)]
/// enum ExternallyTagged { Ping }
/// impl alight_protocol::schema::SerdeEvents for ExternallyTagged {}
/// ```
/// And `events!` refuses an enum that asks for another tagging, through serde's own check:
/// ```compile_fail
/// # use serde::{Deserialize, Serialize};
/// alight_protocol::events! {
///     #[derive(Serialize, Deserialize)]
///     #[serde(tag = "type")]
///     enum InternallyTagged { Ping }
/// }
/// ```
pub trait SerdeEvents: Serialize + DeserializeOwned + __private::AdjacentlyTagged {}

/// Declares an enum of [`SerdeEvents`]: re-emits it with
/// `#[serde(tag = "event", content = "payload")]` and implements [`SerdeEvents`] for it.
///
/// The enum derives `Serialize` and `Deserialize` itself (and `tsify::Tsify` under `ts`); any
/// other serde attribute (`rename_all`, `rename`, `deny_unknown_fields`) applies as usual. A serde
/// attribute that picks another tagging (`tag`, `content`, `untagged`) is a compile error, and so
/// is a missing `Serialize`/`Deserialize` derive. Generic enums are not supported.
///
/// See [`SerdeEvents`] for the wire table, and the [module docs](crate::schema) for a schema.
#[macro_export]
macro_rules! events {
    ($(#[$attr:meta])* $vis:vis enum $name:ident { $($variants:tt)* }) => {
        $(#[$attr])*
        #[serde(tag = "event", content = "payload")]
        $vis enum $name { $($variants)* }

        impl $crate::schema::__private::AdjacentlyTagged for $name {}
        impl $crate::schema::SerdeEvents for $name {}
    };
}

/// Not public API: what [`events!`](crate::events) expands to.
#[doc(hidden)]
pub mod __private {
    /// Implemented by [`events!`](crate::events) only, for the enums it declares adjacently
    /// tagged; the bound that keeps [`SerdeEvents`](super::SerdeEvents) from other shapes.
    pub trait AdjacentlyTagged {}
}

impl<T: SerdeEvents> Events for T {
    fn to_parts(&self) -> Result<(String, Payload), SchemaError> {
        adjacent::to_parts(self)
    }

    fn from_parts(event: &str, payload: &Payload) -> Result<Self, SchemaError> {
        adjacent::from_parts(event, payload)
    }
}

/// One topic family: its pattern and the types of everything that travels on it.
///
/// The server's channel for the family and every client of it are generic over the same `Schema`;
/// see the [module docs](self) for a whole example.
pub trait Schema {
    /// The topic pattern: `prefix*` for a family such as `room:*`, or an exact topic.
    ///
    /// Matching follows [`topic_matches`].
    const TOPIC: &'static str;
    /// The payload of `phx_join`.
    type JoinParams: Serialize + DeserializeOwned;
    /// The response of a successful join reply.
    type JoinReply: Serialize + DeserializeOwned;
    /// Client → server pushes.
    type In: Events;
    /// The response of a successful reply to an [`In`](Schema::In) push.
    type Reply: Serialize + DeserializeOwned;
    /// Server → client pushes and broadcasts.
    type Out: Events;

    /// Whether `topic` belongs to this schema's family.
    fn matches_topic(topic: &str) -> bool {
        topic_matches(Self::TOPIC, topic)
    }
}

/// Why an event could not be encoded into, or decoded from, a frame's event name and payload.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SchemaError {
    /// The event name is not one of the type's events.
    #[error("unknown event `{event}`: the schema declares no such event on this topic")]
    UnknownEvent {
        /// The event name received.
        event: String,
    },
    /// The payload does not have the shape the event's type requires.
    #[error("the payload of event `{event}` does not match the type the schema declares for it")]
    Payload {
        /// The event whose payload was rejected.
        event: String,
        /// What serde found wrong (a missing field, a wrong type, a binary payload).
        #[source]
        source: serde_json::Error,
    },
    /// The event's payload could not be serialized to JSON (a map with non-string keys, a failing
    /// `Serialize` impl).
    #[error("the payload of event `{event}` cannot be serialized to JSON")]
    Encode {
        /// The event being encoded.
        event: String,
        /// The serializer's error.
        #[source]
        source: serde_json::Error,
    },
    /// A [`SerdeEvents`] type does not (de)serialize as an adjacently tagged enum (a bug: [`events!`](crate::events)
    /// gives every such type that shape).
    #[error(
        "`{type_name}` is not an adjacently tagged enum: declare it with alight_protocol::events! \
         or implement Events by hand"
    )]
    NotAdjacentlyTagged {
        /// The offending type.
        type_name: &'static str,
    },
}

/// Whether `topic` belongs to the family `pattern`, as Phoenix's `channel "room:*"` routes.
///
/// A pattern ending in `*` matches every topic that starts with what precedes the `*` (including
/// that prefix alone, as Phoenix's `"room:" <> _` does); any other pattern, and a `*` anywhere
/// else, matches literally. Never panics; costs one prefix comparison.
///
/// | pattern | matches | does not match |
/// |---|---|---|
/// | `room:*` | `room:lobby`, `room:` | `room`, `roomx:1`, `""` |
/// | `room:lobby` | `room:lobby` | `room:lobby2`, `room:*` |
/// | `*` | every topic, `""` included | |
/// | `""` | `""` | every other topic |
///
/// ```
/// use alight_protocol::schema::topic_matches;
/// assert!(topic_matches("room:*", "room:lobby"));
/// assert!(!topic_matches("room:*", "roomx:1"));
/// ```
#[inline]
pub fn topic_matches(pattern: &str, topic: &str) -> bool {
    subtopic(pattern, topic).is_some()
}

/// The part of `topic` that the `*` of `pattern` stands for (`lobby` for `room:*` and
/// `room:lobby`), `""` for an exact match, or `None` when [`topic_matches`] is false.
///
/// ```
/// use alight_protocol::schema::subtopic;
/// assert_eq!(subtopic("room:*", "room:lobby"), Some("lobby"));
/// assert_eq!(subtopic("room:lobby", "room:lobby"), Some(""));
/// assert_eq!(subtopic("room:*", "rooms:lobby"), None);
/// ```
#[inline]
pub fn subtopic<'t>(pattern: &str, topic: &'t str) -> Option<&'t str> {
    match pattern.strip_suffix('*') {
        Some(prefix) => topic.strip_prefix(prefix),
        None => (pattern == topic).then_some(""),
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use serde::{Deserialize, Serialize};

    use super::*;
    use crate::{Direction, Frame, Serializer};

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[cfg_attr(feature = "ts", derive(tsify::Tsify))]
    struct Shout {
        body: String,
    }

    crate::events! {
        #[derive(Debug, PartialEq, Serialize, Deserialize)]
        #[cfg_attr(feature = "ts", derive(tsify::Tsify))]
        #[serde(rename_all = "snake_case")]
        enum RoomIn {
            Shout(Shout),
            Move {
                x: i32,
                y: i32,
            },
            Pair(u8, String),
            #[serde(rename = "new:msg")]
            NewMsg(Option<String>),
            Ping,
        }
    }

    crate::events! {
        /// Server → client events of a room.
        #[derive(Debug, PartialEq, Serialize, Deserialize)]
        #[cfg_attr(feature = "ts", derive(tsify::Tsify))]
        #[serde(rename_all = "snake_case")]
        enum RoomOut {
            /// Someone shouted.
            Shout {
                from: String,
                body: String,
            },
            UserLeft,
        }
    }

    struct Room;

    impl Schema for Room {
        const TOPIC: &'static str = "room:*";
        type JoinParams = ();
        type JoinReply = ();
        type In = RoomIn;
        type Reply = ();
        type Out = RoomOut;
    }

    fn json(text: &str) -> Payload {
        Payload::from_json_str(text).expect("test payloads are valid JSON")
    }

    fn parts<E: Events>(events: &E) -> (String, String) {
        let (event, payload) = events.to_parts().expect("encodes");
        (event, payload.as_json().expect("JSON payload").to_owned())
    }

    #[test]
    fn every_variant_shape_round_trips() {
        let cases = [
            (
                RoomIn::Shout(Shout {
                    body: "hi \"you\"".into(),
                }),
                "shout",
                r#"{"body":"hi \"you\""}"#,
            ),
            (RoomIn::Move { x: 1, y: -2 }, "move", r#"{"x":1,"y":-2}"#),
            (RoomIn::Pair(7, "seven".into()), "pair", r#"[7,"seven"]"#),
            (RoomIn::NewMsg(None), "new:msg", "null"),
            (RoomIn::Ping, "ping", "{}"),
        ];
        for (value, event, payload) in cases {
            assert_eq!(parts(&value), (event.to_owned(), payload.to_owned()));
            assert_eq!(
                RoomIn::from_parts(event, &json(payload)).expect("decodes"),
                value
            );
        }
    }

    #[test]
    fn round_trips_through_the_wire() {
        let shout = RoomIn::Shout(Shout { body: "hi".into() });
        let (event, payload) = shout.to_parts().expect("encodes");
        let frame = Frame::message(
            Some("1".into()),
            Some("2".into()),
            "room:lobby",
            event,
            payload,
        );
        let v1 = cfg!(feature = "v1").then_some(Serializer::V1Json);
        for serializer in [Serializer::V2].into_iter().chain(v1) {
            let wire = serializer
                .encode(Direction::ToServer, &frame)
                .expect("encodes");
            let text = wire.as_text().expect("JSON payloads travel as text");
            let received = serializer
                .decode_text(Direction::ToServer, text)
                .expect("decodes");
            assert!(Room::matches_topic(&received.topic));
            let decoded = RoomIn::from_parts(received.event(), received.payload());
            assert_eq!(decoded.expect("decodes"), shout);
        }
    }

    #[test]
    fn unknown_event_is_reported_with_its_name() {
        for payload in [
            Payload::empty(),
            json("[1]"),
            Payload::Binary(bytes::Bytes::from_static(b"x")),
        ] {
            let err = RoomIn::from_parts("dance", &payload).expect_err("must not decode");
            assert!(matches!(&err, SchemaError::UnknownEvent { event } if event == "dance"));
        }
        // Names are matched exactly: the Rust name and other casings are not event names.
        for event in ["Shout", "SHOUT", "shout ", "", "new_msg"] {
            let err =
                RoomIn::from_parts(event, &json(r#"{"body":"hi"}"#)).expect_err("must not decode");
            assert!(matches!(err, SchemaError::UnknownEvent { .. }), "{event:?}");
        }
        // An event of the other direction is unknown here.
        let err = RoomOut::from_parts("ping", &Payload::empty()).expect_err("must not decode");
        assert_eq!(
            err.to_string(),
            "unknown event `ping`: the schema declares no such event on this topic"
        );
    }

    #[test]
    fn bad_payload_keeps_the_serde_error_as_source() {
        let cases = [
            ("shout", json(r#"{"body":5}"#), "invalid type: integer `5`"),
            ("shout", json("[]"), "invalid length 0"),
            ("move", json(r#"{"x":1}"#), "missing field `y`"),
            ("pair", json(r#"[1,"a",2]"#), "trailing"),
            (
                "shout",
                Payload::Binary(bytes::Bytes::from_static(b"hi")),
                "binary",
            ),
        ];
        for (event, payload, expected) in cases {
            let err = RoomIn::from_parts(event, &payload).expect_err("must not decode");
            let SchemaError::Payload {
                event: reported,
                source,
            } = &err
            else {
                panic!("{event}: expected a payload error, got {err}");
            };
            assert_eq!(reported, event);
            assert!(source.to_string().contains(expected), "{event}: {source}");
            assert!(err.source().is_some());
            assert_eq!(
                err.to_string(),
                format!(
                    "the payload of event `{event}` does not match the type the schema declares for it"
                )
            );
        }
    }

    #[test]
    fn a_bad_payload_names_the_field_that_failed() {
        let cases = [
            (
                "shout",
                r#"{"body":5}"#,
                "field `body`: invalid type: integer `5`",
            ),
            (
                "move",
                r#"{"x":1,"y":"up"}"#,
                "field `y`: invalid type: string \"up\"",
            ),
            ("pair", r#"[7,8]"#, "field `[1]`: invalid type: integer `8`"),
            // Missing fields are named by serde itself; no path is added for the root.
            ("move", r#"{"x":1}"#, "missing field `y`"),
        ];
        for (event, payload, expected) in cases {
            let err = RoomIn::from_parts(event, &json(payload)).expect_err("must not decode");
            let source = err.source().map(ToString::to_string).unwrap_or_default();
            assert!(source.starts_with(expected), "{event} {payload}: {source}");
        }
    }

    #[test]
    fn topic_patterns() {
        let cases = [
            ("room:*", "room:lobby", Some("lobby")),
            ("room:*", "room:", Some("")),
            ("room:*", "room:a:b*", Some("a:b*")),
            ("room:*", "room", None),
            ("room:*", "roomx:1", None),
            ("room:*", "Room:lobby", None),
            ("room:*", "", None),
            ("room:lobby", "room:lobby", Some("")),
            ("room:lobby", "room:lobby2", None),
            ("room:lobby", "room:lobb", None),
            ("room:lobby", "room:*", None),
            ("*", "anything:at all", Some("anything:at all")),
            ("*", "", Some("")),
            ("", "", Some("")),
            ("", "room:lobby", None),
            // A `*` that does not end the pattern is an ordinary character.
            ("room:*:x", "room:*:x", Some("")),
            ("room:*:x", "room:a:x", None),
            ("room:**", "room:*", Some("")),
            ("room:**", "room:a", None),
            // Multi-byte characters: prefixes are compared as bytes and never split a char.
            ("salle:é*", "salle:été", Some("té")),
            ("salle:*", "salle:été", Some("été")),
        ];
        for (pattern, topic, rest) in cases {
            assert_eq!(subtopic(pattern, topic), rest, "{pattern:?} vs {topic:?}");
            assert_eq!(
                topic_matches(pattern, topic),
                rest.is_some(),
                "{pattern:?} vs {topic:?}"
            );
        }
        assert!(Room::matches_topic("room:42"));
        assert!(!Room::matches_topic("rooms:42"));
    }

    #[cfg(feature = "ts")]
    mod ts {
        use tsify::Tsify;

        use super::{RoomIn, RoomOut, Shout};

        #[test]
        fn payload_struct_declares_an_interface() {
            assert_eq!(
                Shout::DECL,
                "export interface Shout {\n    body: string;\n}"
            );
        }

        #[test]
        fn adjacently_tagged_enum_declares_a_union_of_event_and_payload() {
            assert_eq!(
                RoomIn::DECL,
                concat!(
                    r#"export type RoomIn = { event: "shout"; payload: Shout }"#,
                    r#" | { event: "move"; payload: { x: number; y: number } }"#,
                    r#" | { event: "pair"; payload: [number, string] }"#,
                    r#" | { event: "new:msg"; payload: string | undefined }"#,
                    r#" | { event: "ping" };"#,
                )
            );
        }

        #[test]
        fn doc_comments_become_jsdoc() {
            assert_eq!(
                RoomOut::DECL,
                concat!(
                    "/**\n * Server → client events of a room.\n */\n",
                    r#"export type RoomOut = { event: "shout"; payload: { from: string; body: string } }"#,
                    r#" | { event: "user_left" };"#,
                )
            );
        }
    }
}
