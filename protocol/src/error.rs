//! Errors of decoding, encoding and serializer selection.
//!
//! Decoding never panics: every malformed input maps to one [`DecodeError`] variant that says what is
//! wrong, so a server can answer or close with a documented code and keep serving everyone else.

use thiserror::Error;

use crate::json::JsonError;

/// A field of a frame, named in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Field {
    /// `join_ref`
    JoinRef,
    /// `ref`
    Ref,
    /// `topic`
    Topic,
    /// `event`
    Event,
    /// `payload`
    Payload,
    /// The `status` of a reply.
    Status,
}

impl Field {
    /// The field's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Field::JoinRef => "join_ref",
            Field::Ref => "ref",
            Field::Topic => "topic",
            Field::Event => "event",
            Field::Payload => "payload",
            Field::Status => "status",
        }
    }
}

impl std::fmt::Display for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a message could not be decoded into a [`Frame`](crate::Frame).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The text is not valid JSON.
    #[error("message is not valid JSON")]
    InvalidJson(#[source] JsonError),
    /// V2 JSON messages are arrays `[join_ref, ref, topic, event, payload]`.
    #[error("V2 message must be a JSON array [join_ref, ref, topic, event, payload]")]
    NotAnArray,
    /// V1 JSON messages are objects `{topic, event, payload, ref, join_ref}`.
    #[error("V1 message must be a JSON object with topic, event, payload and ref")]
    NotAnObject,
    /// The array has fewer than five elements (or, from a client, more).
    #[error("V2 message has {found} elements; it needs 5: [join_ref, ref, topic, event, payload]")]
    WrongArity {
        /// How many elements the array had.
        found: usize,
    },
    /// A required field is absent (V1 objects).
    #[error("message has no `{0}` field")]
    MissingField(Field),
    /// A field holds the wrong JSON type (e.g. a number where a string belongs).
    #[error("`{field}` must be {expected}")]
    WrongType {
        /// The field at fault.
        field: Field,
        /// What it should have been.
        expected: &'static str,
    },
    /// A binary message is shorter than its header or lengths claim.
    #[error("binary message is truncated: needs {needed} bytes, has {len}")]
    Truncated {
        /// Bytes the header announces.
        needed: usize,
        /// Bytes present.
        len: usize,
    },
    /// A binary message starts with a kind byte that is not defined for this direction.
    #[error("binary message kind {0} is not valid in this direction")]
    UnknownKind(u8),
    /// A string field of a binary message is not UTF-8.
    #[error("`{0}` of a binary message is not valid UTF-8")]
    InvalidUtf8(Field),
    /// The serializer has no binary format (V1).
    #[error("the V1 serializer has no binary frames; connect with vsn=2.0.0")]
    BinaryUnsupported,
    /// The V1 serializer is not compiled in (the `v1` feature is off).
    #[error("the V1 serializer is not compiled in; connect with vsn=2.0.0")]
    V1NotCompiled,
}

/// Why a [`Frame`](crate::Frame) could not be encoded.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncodeError {
    /// Binary frames give each string field one length byte.
    #[error("`{field}` is {len} bytes; binary frames allow at most 255")]
    FieldTooLong {
        /// The field at fault.
        field: Field,
        /// Its length in bytes.
        len: usize,
    },
    /// The V1 serializer cannot carry binary payloads.
    #[error("the V1 serializer cannot carry a binary payload; connect with vsn=2.0.0")]
    BinaryUnsupported,
    /// A binary push from a client must carry a join_ref and a ref.
    #[error("a binary push from a client needs `{0}`")]
    MissingField(Field),
    /// The V1 serializer is not compiled in (the `v1` feature is off).
    #[error("the V1 serializer is not compiled in; connect with vsn=2.0.0")]
    V1NotCompiled,
}

/// The `vsn` connect parameter names no serializer Alight speaks (or V1, without the `v1` feature).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[cfg_attr(
    feature = "v1",
    error("unsupported protocol version `{vsn}`: use vsn=2.0.0 (V2) or vsn=1.0.0 (V1)")
)]
#[cfg_attr(
    not(feature = "v1"),
    error("unsupported protocol version `{vsn}`: this build speaks vsn=2.0.0 (V2) only")
)]
pub struct VsnError {
    /// The version the client asked for.
    pub vsn: String,
}
