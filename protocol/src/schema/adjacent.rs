//! serde adjacently tagged enums ↔ a frame's event name and payload: the engine of
//! [`SerdeEvents`](super::SerdeEvents).
//!
//! serde_derive (de)serializes `#[serde(tag = "…", content = "…")]` enums as a two-field struct:
//! the tag, written as a unit variant, then the content. Encoding runs the enum's `Serialize`
//! against [`Probe`], which keeps the tag's variant name and serializes only the content, straight
//! into the payload's `RawJson`. Decoding runs its `Deserialize` against [`Parts`], which presents
//! the map `{tag: event, content: payload}` and deserializes the content from the payload text in
//! one pass. Neither builds a `serde_json::Value`, and neither depends on the tag and content
//! names.

use std::cell::Cell;
use std::fmt;

use serde::de::value::BorrowedStrDeserializer;
use serde::de::{self, DeserializeOwned, DeserializeSeed, MapAccess, Visitor};
use serde::ser::{self, Impossible, Serialize};
use thiserror::Error;

use super::SchemaError;
use crate::Payload;

/// [`Events::to_parts`](super::Events::to_parts) of an adjacently tagged enum.
pub(super) fn to_parts<T: Serialize>(value: &T) -> Result<(String, Payload), SchemaError> {
    match value.serialize(Probe::Enum) {
        Ok(Probed::Parts(event, payload)) => Ok((event.to_owned(), payload)),
        Ok(Probed::Tag(_)) | Err(ProbeError::Shape) => Err(not_adjacently_tagged::<T>()),
        Err(ProbeError::Encode { event, source }) => Err(SchemaError::Encode {
            event: event.to_owned(),
            source,
        }),
    }
}

/// [`Events::from_parts`](super::Events::from_parts) of an adjacently tagged enum.
pub(super) fn from_parts<T: DeserializeOwned>(
    event: &str,
    payload: &Payload,
) -> Result<T, SchemaError> {
    let content = match payload {
        Payload::Json(json) => Content::Json(json.get()),
        Payload::Binary(_) => Content::Binary,
    };
    let (stage, source) = match decode(event, content) {
        Ok(value) => return Ok(value),
        Err(failure) => failure,
    };
    // A unit variant's content must be absent or null for serde, but Phoenix clients send `{}`
    // when a push has nothing to say: retry without content before reporting the mismatch.
    let empty_object = matches!(content, Content::Json(text) if is_empty_object(text));
    if stage == Stage::Payload
        && empty_object
        && let Ok(value) = decode(event, Content::Absent)
    {
        return Ok(value);
    }
    Err(match stage {
        Stage::Shape => not_adjacently_tagged::<T>(),
        Stage::Event => SchemaError::UnknownEvent {
            event: event.to_owned(),
        },
        Stage::Payload => SchemaError::Payload {
            event: event.to_owned(),
            source: with_path::<T>(event, content, source),
        },
    })
}

/// `source` naming the field that failed (`field `total.value`: invalid type: ...`), found by
/// decoding once more with the path tracked: the cost falls on failures only.
fn with_path<T: DeserializeOwned>(
    event: &str,
    content: Content<'_>,
    source: serde_json::Error,
) -> serde_json::Error {
    let path = Cell::new(None);
    let stage = Cell::new(Stage::Shape);
    let _ = T::deserialize(Parts {
        event,
        content,
        stage: &stage,
        path: Some(&path),
    });
    match path.take() {
        Some(path) if path != "." => de::Error::custom(format_args!("field `{path}`: {source}")),
        _ => source,
    }
}

fn not_adjacently_tagged<T>() -> SchemaError {
    SchemaError::NotAdjacentlyTagged {
        type_name: std::any::type_name::<T>(),
    }
}

// --- Encoding: an adjacently tagged enum into (event, payload) -----------------------------------

/// A serializer that accepts only what serde_derive emits for an adjacently tagged enum: a struct
/// whose first field is the tag, written as a unit variant, and whose optional second field is the
/// content. An internally tagged enum writes its tag as a plain string and an externally tagged one
/// writes a variant, so both are told apart and rejected instead of being misread.
#[derive(Clone, Copy)]
enum Probe {
    /// The whole value.
    Enum,
    /// The tag field's value.
    Tag,
}

/// What [`Probe`] captured.
enum Probed {
    /// Event name and payload of the whole value.
    Parts(&'static str, Payload),
    /// The variant name written as the tag.
    Tag(&'static str),
}

#[derive(Debug, Error)]
enum ProbeError {
    /// The value is not shaped like an adjacently tagged enum.
    #[error("not an adjacently tagged enum")]
    Shape,
    /// The content failed to serialize.
    #[error("the payload of `{event}` cannot be serialized")]
    Encode {
        event: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

impl ser::Error for ProbeError {
    // Only a hand-written `Serialize` reaches this (derived enum impls raise no custom errors, and
    // content errors come from serde_json with their event attached), so it is not a derived
    // adjacently tagged enum.
    fn custom<M: fmt::Display>(_msg: M) -> Self {
        ProbeError::Shape
    }
}

/// `Serializer` methods that reject the value as not adjacently tagged.
macro_rules! reject {
    ($($method:ident($($arg:ty),*) -> $ok:ty;)*) => {$(
        fn $method(self, $(_: $arg),*) -> Result<$ok, ProbeError> {
            Err(ProbeError::Shape)
        }
    )*};
}

impl ser::Serializer for Probe {
    type Ok = Probed;
    type Error = ProbeError;
    type SerializeSeq = Impossible<Probed, ProbeError>;
    type SerializeTuple = Impossible<Probed, ProbeError>;
    type SerializeTupleStruct = Impossible<Probed, ProbeError>;
    type SerializeTupleVariant = Impossible<Probed, ProbeError>;
    type SerializeMap = Impossible<Probed, ProbeError>;
    type SerializeStruct = ProbeStruct;
    type SerializeStructVariant = Impossible<Probed, ProbeError>;

    fn serialize_unit_variant(
        self,
        _enum: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<Probed, ProbeError> {
        match self {
            Probe::Tag => Ok(Probed::Tag(variant)),
            Probe::Enum => Err(ProbeError::Shape),
        }
    }

    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<ProbeStruct, ProbeError> {
        match self {
            Probe::Enum => Ok(ProbeStruct {
                event: None,
                payload: None,
            }),
            Probe::Tag => Err(ProbeError::Shape),
        }
    }

    reject! {
        serialize_bool(bool) -> Probed;
        serialize_i8(i8) -> Probed;
        serialize_i16(i16) -> Probed;
        serialize_i32(i32) -> Probed;
        serialize_i64(i64) -> Probed;
        serialize_u8(u8) -> Probed;
        serialize_u16(u16) -> Probed;
        serialize_u32(u32) -> Probed;
        serialize_u64(u64) -> Probed;
        serialize_f32(f32) -> Probed;
        serialize_f64(f64) -> Probed;
        serialize_char(char) -> Probed;
        serialize_str(&str) -> Probed;
        serialize_bytes(&[u8]) -> Probed;
        serialize_none() -> Probed;
        serialize_unit() -> Probed;
        serialize_unit_struct(&'static str) -> Probed;
        serialize_seq(Option<usize>) -> Self::SerializeSeq;
        serialize_tuple(usize) -> Self::SerializeTuple;
        serialize_tuple_struct(&'static str, usize) -> Self::SerializeTupleStruct;
        serialize_tuple_variant(&'static str, u32, &'static str, usize)
            -> Self::SerializeTupleVariant;
        serialize_map(Option<usize>) -> Self::SerializeMap;
        serialize_struct_variant(&'static str, u32, &'static str, usize)
            -> Self::SerializeStructVariant;
    }

    fn serialize_some<V: ?Sized + Serialize>(self, _value: &V) -> Result<Probed, ProbeError> {
        Err(ProbeError::Shape)
    }

    fn serialize_newtype_struct<V: ?Sized + Serialize>(
        self,
        _name: &'static str,
        _value: &V,
    ) -> Result<Probed, ProbeError> {
        Err(ProbeError::Shape)
    }

    fn serialize_newtype_variant<V: ?Sized + Serialize>(
        self,
        _enum: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &V,
    ) -> Result<Probed, ProbeError> {
        Err(ProbeError::Shape)
    }
}

/// The fields of an adjacently tagged enum: the tag, then (except for unit variants) the content.
struct ProbeStruct {
    event: Option<&'static str>,
    payload: Option<Payload>,
}

impl ser::SerializeStruct for ProbeStruct {
    type Ok = Probed;
    type Error = ProbeError;

    fn serialize_field<V: ?Sized + Serialize>(
        &mut self,
        _key: &'static str,
        value: &V,
    ) -> Result<(), ProbeError> {
        match (self.event, &self.payload) {
            (None, _) => match value.serialize(Probe::Tag)? {
                Probed::Tag(event) => self.event = Some(event),
                Probed::Parts(..) => return Err(ProbeError::Shape),
            },
            (Some(event), None) => {
                let payload =
                    Payload::json(value).map_err(|source| ProbeError::Encode { event, source })?;
                self.payload = Some(payload);
            }
            // A third field: an internally tagged struct variant, not adjacently tagged.
            (Some(_), Some(_)) => return Err(ProbeError::Shape),
        }
        Ok(())
    }

    fn end(self) -> Result<Probed, ProbeError> {
        let event = self.event.ok_or(ProbeError::Shape)?;
        Ok(Probed::Parts(
            event,
            self.payload.unwrap_or_else(Payload::empty),
        ))
    }
}

// --- Decoding: (event, payload) into an adjacently tagged enum -----------------------------------

/// The payload offered as the content of the enum.
#[derive(Clone, Copy)]
enum Content<'a> {
    /// JSON text (already validated when the frame was decoded).
    Json(&'a str),
    /// A binary payload, which serde-derived events cannot take.
    Binary,
    /// No content key at all (the retry for unit variants sent as `{}`).
    Absent,
}

/// How far decoding got before it failed; decides which [`SchemaError`] to report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// The type did not ask for an adjacently tagged enum.
    Shape,
    /// The tag: past the shape check in [`Tag`], the only way it fails is an unknown variant.
    Event,
    /// The content.
    Payload,
}

fn decode<T: DeserializeOwned>(
    event: &str,
    content: Content<'_>,
) -> Result<T, (Stage, serde_json::Error)> {
    let stage = Cell::new(Stage::Shape);
    T::deserialize(Parts {
        event,
        content,
        stage: &stage,
        path: None,
    })
    .map_err(|err| (stage.get(), err))
}

/// Presents `{tag: event, content: payload}` to an adjacently tagged enum's `Deserialize`, taking
/// the key names from the two fields the derive asks for, so any `tag`/`content` names work.
struct Parts<'a> {
    event: &'a str,
    content: Content<'a>,
    /// Who touches it: `PartsMap` records the stage it is in; `decode` reads it after a failure.
    stage: &'a Cell<Stage>,
    /// When set, the content is decoded with its path tracked, and the path of a failure is
    /// written here (by `PartsMap`, read by `with_path`).
    path: Option<&'a Cell<Option<String>>>,
}

fn not_adjacent() -> serde_json::Error {
    de::Error::custom("not an adjacently tagged enum")
}

impl<'de> de::Deserializer<'de> for Parts<'de> {
    type Error = serde_json::Error;

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, serde_json::Error> {
        let &[tag, content] = fields else {
            return Err(not_adjacent());
        };
        visitor.visit_map(PartsMap {
            parts: self,
            keys: [tag, content],
            next: 0,
        })
    }

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, serde_json::Error> {
        Err(not_adjacent())
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option
        unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
    }
}

/// The two entries of [`Parts`]; `next` counts keys handed out (0: tag, 1: content).
struct PartsMap<'a> {
    parts: Parts<'a>,
    keys: [&'static str; 2],
    next: usize,
}

impl<'de> MapAccess<'de> for PartsMap<'de> {
    type Error = serde_json::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, serde_json::Error> {
        let entries = match self.parts.content {
            Content::Absent => 1,
            Content::Json(_) | Content::Binary => 2,
        };
        let Some(&key) = self.keys.get(self.next).filter(|_| self.next < entries) else {
            return Ok(None);
        };
        self.next += 1;
        seed.deserialize(BorrowedStrDeserializer::new(key))
            .map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, serde_json::Error> {
        if self.next <= 1 {
            self.parts.stage.set(Stage::Event);
            return seed.deserialize(Tag {
                event: self.parts.event,
                stage: self.parts.stage,
            });
        }
        self.parts.stage.set(Stage::Payload);
        match self.parts.content {
            Content::Json(text) => {
                let mut json = serde_json::Deserializer::from_str(text);
                let value = match self.parts.path {
                    None => seed.deserialize(&mut json)?,
                    Some(path) => {
                        let mut track = serde_path_to_error::Track::new();
                        let tracked = serde_path_to_error::Deserializer::new(&mut json, &mut track);
                        let result = seed.deserialize(tracked);
                        if result.is_err() {
                            path.set(Some(track.path().to_string()));
                        }
                        result?
                    }
                };
                json.end()?;
                Ok(value)
            }
            Content::Binary => Err(de::Error::custom(
                "expected a JSON payload, found a binary one",
            )),
            // Not reached: no content key is offered when there is no content.
            Content::Absent => Err(de::Error::custom("the event has no payload")),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(2 - self.next.min(2))
    }
}

/// The tag's value: an enum variant named by the event, as serde_derive reads it. Anything else
/// asking for it is not an adjacently tagged enum.
struct Tag<'a> {
    event: &'a str,
    stage: &'a Cell<Stage>,
}

impl<'de> de::Deserializer<'de> for Tag<'de> {
    type Error = serde_json::Error;

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, serde_json::Error> {
        visitor.visit_enum(BorrowedStrDeserializer::new(self.event))
    }

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, serde_json::Error> {
        self.stage.set(Stage::Shape);
        Err(not_adjacent())
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option
        unit unit_struct newtype_struct seq tuple tuple_struct map struct identifier ignored_any
    }
}

/// Whether JSON text is an empty object, `{}` with any whitespace inside or around.
fn is_empty_object(text: &str) -> bool {
    text.trim()
        .strip_prefix('{')
        .and_then(|rest| rest.strip_suffix('}'))
        .is_some_and(|inside| inside.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::error::Error as _;

    use serde::{Deserialize, Serialize};

    use super::super::{Events, SerdeEvents};
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Shout {
        body: String,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(tag = "event", content = "payload", rename_all = "snake_case")]
    enum Notice {
        Shout { from: String, body: String },
        Closing,
    }
    impl SerdeEvents for Notice {}
    impl super::super::__private::AdjacentlyTagged for Notice {}

    fn json(text: &str) -> Payload {
        Payload::from_json_str(text).expect("test payloads are valid JSON")
    }

    fn parts<E: Events>(events: &E) -> (String, String) {
        let (event, payload) = events.to_parts().expect("encodes");
        (event, payload.as_json().expect("JSON payload").to_owned())
    }

    #[test]
    fn is_empty_object_accepts_only_an_empty_object() {
        for text in ["{}", " {} ", "{ }", "{\n\t}"] {
            assert!(is_empty_object(text), "{text:?}");
        }
        for text in ["{", "}", "", "null", "[]", "{\"a\":1}", "{}{}", "{ } }"] {
            assert!(!is_empty_object(text), "{text:?}");
        }
    }

    #[test]
    fn unit_variants_accept_an_empty_object_or_null() {
        for payload in ["{}", " { \n } ", "null"] {
            let decoded = Notice::from_parts("closing", &json(payload));
            assert_eq!(decoded.expect(payload), Notice::Closing);
        }
        let err =
            Notice::from_parts("closing", &json(r#"{"who":"ann"}"#)).expect_err("must not decode");
        assert!(matches!(&err, SchemaError::Payload { event, .. } if event == "closing"));
    }

    #[test]
    fn empty_object_is_not_a_missing_field_for_other_variants() {
        let err = Notice::from_parts("shout", &json("{}")).expect_err("must not decode");
        let SchemaError::Payload { event, source } = &err else {
            panic!("expected a payload error, got {err}");
        };
        assert_eq!(event, "shout");
        assert!(
            source.to_string().contains("missing field `from`"),
            "{source}"
        );
    }

    #[test]
    fn any_tag_and_content_names_work() {
        #[derive(Debug, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "t", content = "c", deny_unknown_fields)]
        enum Short {
            A { n: u8 },
            B,
        }
        impl SerdeEvents for Short {}
        impl super::super::__private::AdjacentlyTagged for Short {}

        assert_eq!(
            parts(&Short::A { n: 1 }),
            ("A".to_owned(), r#"{"n":1}"#.to_owned())
        );
        assert_eq!(
            Short::from_parts("A", &json(r#"{"n":1}"#)).expect("decodes"),
            Short::A { n: 1 }
        );
        assert_eq!(
            Short::from_parts("B", &Payload::empty()).expect("decodes"),
            Short::B
        );
        assert!(matches!(
            Short::from_parts("C", &Payload::empty()),
            Err(SchemaError::UnknownEvent { .. })
        ));
    }

    #[test]
    fn other_shapes_are_rejected_in_both_directions() {
        #[derive(Debug, Serialize, Deserialize)]
        enum External {
            Shout(Shout),
        }
        impl SerdeEvents for External {}
        impl super::super::__private::AdjacentlyTagged for External {}

        #[derive(Debug, Serialize, Deserialize)]
        #[serde(tag = "event")]
        enum Internal {
            Shout { body: String },
        }
        impl SerdeEvents for Internal {}
        impl super::super::__private::AdjacentlyTagged for Internal {}

        #[derive(Debug, Serialize, Deserialize)]
        struct Pair {
            event: String,
            payload: u8,
        }
        impl SerdeEvents for Pair {}
        impl super::super::__private::AdjacentlyTagged for Pair {}

        fn rejected<E: Events + std::fmt::Debug>(value: E, event: &str, payload: &str) {
            let encoded = value.to_parts();
            assert!(
                matches!(encoded, Err(SchemaError::NotAdjacentlyTagged { .. })),
                "{value:?} encoded"
            );
            let decoded = E::from_parts(event, &json(payload));
            assert!(
                matches!(decoded, Err(SchemaError::NotAdjacentlyTagged { .. })),
                "{value:?} decoded as {decoded:?}"
            );
        }

        rejected(
            External::Shout(Shout { body: "hi".into() }),
            "Shout",
            r#"{"body":"hi"}"#,
        );
        rejected(
            Internal::Shout { body: "hi".into() },
            "Shout",
            r#"{"body":"hi"}"#,
        );
        rejected(
            Pair {
                event: "shout".into(),
                payload: 1,
            },
            "shout",
            "1",
        );

        let err = External::from_parts("Shout", &Payload::empty()).expect_err("must not decode");
        assert!(
            err.to_string()
                .contains("External` is not an adjacently tagged enum"),
            "{err}"
        );
    }

    #[test]
    fn unserializable_payload_is_an_encode_error() {
        #[derive(Debug, Serialize, Deserialize)]
        #[serde(tag = "event", content = "payload")]
        enum Odd {
            Table(BTreeMap<(u8, u8), u8>),
        }
        impl SerdeEvents for Odd {}
        impl super::super::__private::AdjacentlyTagged for Odd {}

        let err = Odd::Table(BTreeMap::from([((1, 2), 3)]))
            .to_parts()
            .expect_err("must not encode");
        assert!(matches!(&err, SchemaError::Encode { event, .. } if event == "Table"));
        assert!(
            err.source()
                .is_some_and(|s| s.to_string().contains("key must be a string"))
        );
    }
}
