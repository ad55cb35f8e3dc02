//! The wire formats: V2 JSON arrays, V2 binary frames and V1 JSON objects.
//!
//! Phoenix picks a serializer per socket from the `vsn` connect parameter: `1.0.x` (or no `vsn` at
//! all) selects V1, `2.0.x` selects V2. A V2 socket sends JSON in text frames and binary payloads in
//! binary frames; V1 has text frames only.
//!
//! | vsn | text frame | binary frame |
//! |---|---|---|
//! | 2.0.x | `[join_ref, ref, topic, event, payload]` | see [`Serializer::decode_binary`] |
//! | 1.0.x | `{"topic","event","payload","ref","join_ref"}` | none |
//!
//! V1 is the default feature `v1`; without it (the browser client), only V2 is compiled in.
//!
//! Both directions are covered: a server decodes [`Direction::ToServer`] and encodes
//! [`Direction::ToClient`]; a client does the opposite.

mod json;
#[cfg(feature = "v1")]
mod v1_json;
mod v2_binary;
mod v2_json;

use bytes::Bytes;

use crate::frame::{FrameRef, PayloadRef};
use crate::{DecodeError, EncodeError, Frame, VsnError, Wire};

/// Which way a message travels; the binary layouts and V1 fields differ between the two.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Client → server.
    ToServer,
    /// Server → client.
    ToClient,
}

/// A Phoenix serializer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Serializer {
    /// `vsn=1.0.0`: JSON objects in text frames.
    V1Json,
    /// `vsn=2.0.0`: JSON arrays in text frames, binary payloads in binary frames.
    V2,
}

impl Serializer {
    /// Picks the serializer for a `vsn` connect parameter, as Phoenix does (no `vsn` means 1.0.0).
    ///
    /// Without the `v1` feature, `1.0.x` and no `vsn` are an error.
    ///
    /// ```
    /// use alight_protocol::Serializer;
    /// assert_eq!(Serializer::from_vsn(Some("2.0.0")), Ok(Serializer::V2));
    /// # #[cfg(feature = "v1")]
    /// assert_eq!(Serializer::from_vsn(None), Ok(Serializer::V1Json));
    /// assert!(Serializer::from_vsn(Some("3.0.0")).is_err());
    /// ```
    pub fn from_vsn(vsn: Option<&str>) -> Result<Self, VsnError> {
        let Some(vsn) = vsn else {
            return Self::v1("1.0.0");
        };
        let mut parts = vsn.split('.');
        let major = parts.next();
        let minor = parts.next();
        let patch_ok = parts
            .next()
            .is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
        let rest_empty = parts.next().is_none();
        match (major, minor, patch_ok && rest_empty) {
            (Some("1"), Some("0"), true) => Self::v1(vsn),
            (Some("2"), Some("0"), true) => Ok(Serializer::V2),
            _ => Err(VsnError {
                vsn: vsn.to_owned(),
            }),
        }
    }

    /// V1, for `vsn` (a 1.0.x version), if it is compiled in.
    fn v1(vsn: &str) -> Result<Self, VsnError> {
        if cfg!(feature = "v1") {
            Ok(Serializer::V1Json)
        } else {
            Err(VsnError {
                vsn: vsn.to_owned(),
            })
        }
    }

    /// The canonical `vsn` value for this serializer.
    pub fn vsn(self) -> &'static str {
        match self {
            Serializer::V1Json => "1.0.0",
            Serializer::V2 => "2.0.0",
        }
    }

    /// Decodes a text (JSON) message.
    pub fn decode_text(self, direction: Direction, text: &str) -> Result<Frame, DecodeError> {
        self.decode_text_in_place(direction, text)
            .map(FrameRef::into_owned)
    }

    /// Decodes a text (JSON) message without copying it: the frame's strings and its payload
    /// are slices of `text` (a string with escapes in it is unescaped into its own).
    ///
    /// Accepts and refuses exactly what [`decode_text`](Self::decode_text) does.
    pub fn decode_text_in_place(
        self,
        direction: Direction,
        text: &str,
    ) -> Result<FrameRef<'_>, DecodeError> {
        match self {
            #[cfg(feature = "v1")]
            Serializer::V1Json => v1_json::decode(direction, text),
            #[cfg(not(feature = "v1"))]
            Serializer::V1Json => Err(DecodeError::V1NotCompiled),
            Serializer::V2 => v2_json::decode(direction, text),
        }
    }

    /// Decodes a binary message (V2 only).
    ///
    /// Every length is one byte, so each string field is at most 255 bytes:
    ///
    /// | kind | direction | layout |
    /// |---|---|---|
    /// | 0 push | to server | `0, jr_len, ref_len, topic_len, event_len, jr, ref, topic, event, payload` |
    /// | 0 push | to client | `0, jr_len, topic_len, event_len, jr, topic, event, payload` |
    /// | 1 reply | to client | `1, jr_len, ref_len, topic_len, status_len, jr, ref, topic, status, payload` |
    /// | 2 broadcast | to client | `2, topic_len, event_len, topic, event, payload` |
    ///
    /// The payload shares `data`'s buffer; nothing is copied.
    pub fn decode_binary(self, direction: Direction, data: Bytes) -> Result<Frame, DecodeError> {
        match self {
            Serializer::V1Json => Err(DecodeError::BinaryUnsupported),
            Serializer::V2 => v2_binary::decode(direction, data),
        }
    }

    /// Encodes a frame: V2 uses a binary frame when the payload (or reply response) is binary.
    pub fn encode(self, direction: Direction, frame: &Frame) -> Result<Wire, EncodeError> {
        match self.encode_text(direction, &frame.to_ref())? {
            Some(text) => Ok(Wire::Text(text.into())),
            None => v2_binary::encode(direction, frame).map(Wire::Binary),
        }
    }

    /// Encodes a frame that goes in a text message into a `String` of exactly its length, which
    /// a transport can take as its text without checking it again; `None` for a frame that
    /// goes in a binary message (a binary payload on V2: [`encode`](Self::encode) it).
    ///
    /// ```
    /// use alight_protocol::{BodyRef, Direction, FrameRef, PayloadRef, Serializer};
    ///
    /// let reply = FrameRef {
    ///     join_ref: Some("3".into()),
    ///     msg_ref: Some("4".into()),
    ///     topic: "room:lobby".into(),
    ///     body: BodyRef::Reply { status: "ok".into(), response: PayloadRef::EMPTY },
    /// };
    /// let text = Serializer::V2.encode_text(Direction::ToClient, &reply)?;
    /// assert_eq!(
    ///     text.as_deref(),
    ///     Some(r#"["3","4","room:lobby","phx_reply",{"status":"ok","response":{}}]"#)
    /// );
    /// # Ok::<(), alight_protocol::EncodeError>(())
    /// ```
    pub fn encode_text(
        self,
        direction: Direction,
        frame: &FrameRef<'_>,
    ) -> Result<Option<String>, EncodeError> {
        let binary = matches!(frame.payload(), PayloadRef::Binary(_));
        match (self, binary) {
            (Serializer::V1Json, true) => Err(EncodeError::BinaryUnsupported),
            #[cfg(feature = "v1")]
            (Serializer::V1Json, false) => Ok(Some(v1_json::encode(direction, frame))),
            #[cfg(not(feature = "v1"))]
            (Serializer::V1Json, false) => {
                let _ = direction;
                Err(EncodeError::V1NotCompiled)
            }
            (Serializer::V2, false) => Ok(Some(v2_json::encode(frame))),
            (Serializer::V2, true) => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(not(feature = "v1"))]
    use crate::Payload;

    #[cfg(not(feature = "v1"))]
    #[test]
    fn without_v1_the_version_is_refused_and_nothing_is_encoded() {
        let refused = |vsn: &str| VsnError {
            vsn: vsn.to_owned(),
        };
        assert_eq!(Serializer::from_vsn(Some("1.0.0")), Err(refused("1.0.0")));
        assert_eq!(Serializer::from_vsn(None), Err(refused("1.0.0")));
        assert_eq!(
            refused("1.0.0").to_string(),
            "unsupported protocol version `1.0.0`: this build speaks vsn=2.0.0 (V2) only"
        );
        let frame = Frame::message(None, None, "room:1", "a", Payload::empty());
        assert_eq!(
            Serializer::V1Json.encode(Direction::ToServer, &frame),
            Err(EncodeError::V1NotCompiled)
        );
        assert!(matches!(
            Serializer::V1Json.decode_text(Direction::ToClient, "{}"),
            Err(DecodeError::V1NotCompiled)
        ));
    }

    #[test]
    fn v2_is_always_there() {
        assert_eq!(Serializer::from_vsn(Some("2.0.1")), Ok(Serializer::V2));
        assert_eq!(Serializer::V2.vsn(), "2.0.0");
    }
}
