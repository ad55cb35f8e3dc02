//! Presence payloads as Phoenix writes them, rendered straight to JSON text.
//!
//! - state: `{key: {metas: [{...meta, phx_ref, phx_ref_prev?}]}}`
//! - diff: `{joins: <state shape>, leaves: <state shape>}`
//!
//! Metas are stored as compact JSON objects without refs; the refs are spliced in here, so
//! listing ten thousand members never builds a `serde_json::Value`.

use std::fmt::Write as _;
use std::sync::Arc;

use alight_protocol::Payload;
use base64::Engine;

use super::batch::Diff;
use super::replica::{Dot, Entry, Listing};

/// The `phx_ref` of the entry named `dot`: URL-safe base64 of the node id (8 bytes) and the
/// counter without its leading zero bytes. Unique per dot, 12 to 22 characters.
pub(crate) fn phx_ref(dot: Dot) -> String {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&dot.node.0.to_be_bytes());
    bytes[8..].copy_from_slice(&dot.counter.to_be_bytes());
    let skip = dot.counter.leading_zeros() as usize / 8;
    let mut packed = Vec::with_capacity(16);
    packed.extend_from_slice(&bytes[..8]);
    packed.extend_from_slice(&bytes[8 + skip.min(7)..]);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(packed)
}

/// Writes `{key: {metas: [...]}, ...}`.
fn write_presences<'a>(
    out: &mut String,
    keys: impl IntoIterator<Item = (&'a Arc<str>, &'a [(Dot, Entry)])>,
) {
    out.push('{');
    for (i, (key, metas)) in keys.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_string(out, key);
        out.push_str(r#":{"metas":["#);
        for (j, (dot, entry)) in metas.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            write_meta(out, *dot, entry);
        }
        out.push_str("]}");
    }
    out.push('}');
}

/// Writes the meta object with `phx_ref` (and `phx_ref_prev`) added.
fn write_meta(out: &mut String, dot: Dot, entry: &Entry) {
    let meta = entry.meta.trim();
    let inner = meta
        .strip_prefix('{')
        .and_then(|m| m.strip_suffix('}'))
        .unwrap_or("")
        .trim();
    out.push('{');
    if !inner.is_empty() {
        out.push_str(inner);
        out.push(',');
    }
    let _ = write!(out, r#""phx_ref":"{}""#, phx_ref(dot));
    if let Some(prev) = entry.prev {
        let _ = write!(out, r#","phx_ref_prev":"{}""#, phx_ref(prev));
    }
    out.push('}');
}

fn write_string(out: &mut String, text: &str) {
    match serde_json::to_string(text) {
        Ok(quoted) => out.push_str(&quoted),
        // Serializing a str cannot fail; an empty key keeps the JSON valid regardless.
        Err(_) => out.push_str(r#""""#),
    }
}

/// The `presence_state` payload of a listed topic.
pub(crate) fn state(list: &Listing) -> Payload {
    let mut out = String::new();
    write_presences(
        &mut out,
        list.iter().map(|(key, metas)| (key, metas.as_slice())),
    );
    to_payload(out)
}

/// The `presence_diff` payload.
pub(crate) fn diff(diff: &Diff) -> Payload {
    let mut out = String::from(r#"{"joins":"#);
    write_presences(
        &mut out,
        diff.joins
            .iter()
            .map(|(key, metas)| (key, metas.as_slice())),
    );
    out.push_str(r#","leaves":"#);
    write_presences(
        &mut out,
        diff.leaves
            .iter()
            .map(|(key, metas)| (key, metas.as_slice())),
    );
    out.push('}');
    to_payload(out)
}

fn to_payload(text: String) -> Payload {
    // Metas were validated as JSON objects when tracked, keys are escaped by serde_json and refs
    // are base64: the text is valid JSON. Should that ever fail, send an empty object rather than
    // invalid JSON.
    Payload::from_json_str(&text).unwrap_or_else(|_| Payload::empty())
}

/// Turns a meta into the compact object text an [`Entry`] stores: it must serialize to a JSON
/// object; `phx_ref` and `phx_ref_prev` are the server's and are dropped.
pub(crate) fn meta_text<T: serde::Serialize + ?Sized>(
    meta: &T,
) -> Result<Arc<str>, super::TrackError> {
    let value = serde_json::to_value(meta).map_err(super::TrackError::Meta)?;
    let serde_json::Value::Object(mut object) = value else {
        return Err(super::TrackError::MetaNotObject);
    };
    object.remove("phx_ref");
    object.remove("phx_ref_prev");
    let text = serde_json::to_string(&object).map_err(super::TrackError::Meta)?;
    Ok(text.into())
}

#[cfg(test)]
mod tests {
    use super::super::replica::NodeId;
    use super::*;

    fn dot(node: u64, counter: u64) -> Dot {
        Dot {
            node: NodeId(node),
            counter,
        }
    }

    #[test]
    fn phx_refs_are_unique_and_short() {
        let a = phx_ref(dot(1, 1));
        assert_ne!(a, phx_ref(dot(1, 256)));
        assert_ne!(a, phx_ref(dot(2, 1)));
        assert_ne!(phx_ref(dot(1, 255)), phx_ref(dot(1, 65280)));
        assert_eq!(a.len(), 12);
        assert_eq!(phx_ref(dot(u64::MAX, u64::MAX)).len(), 22);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
    }

    #[test]
    fn state_and_diff_have_phoenix_shapes() -> Result<(), Box<dyn std::error::Error>> {
        let meta = meta_text(&serde_json::json!({"online_at": 1, "phx_ref": "forged"}))?;
        let first = Entry {
            topic: "t".into(),
            key: "al\"ice".into(),
            meta,
            prev: None,
        };
        let second = Entry {
            meta: "{}".into(),
            prev: Some(dot(1, 1)),
            ..first.clone()
        };
        let list = vec![(
            first.key.clone(),
            vec![(dot(1, 1), first.clone()), (dot(1, 2), second.clone())],
        )];
        let payload: serde_json::Value = state(&list).deserialize()?;
        assert_eq!(
            payload,
            serde_json::json!({"al\"ice": {"metas": [
                {"online_at": 1, "phx_ref": phx_ref(dot(1, 1))},
                {"phx_ref": phx_ref(dot(1, 2)), "phx_ref_prev": phx_ref(dot(1, 1))},
            ]}})
        );
        let mut d = Diff::default();
        d.leaves
            .entry(first.key.clone())
            .or_default()
            .push((dot(1, 1), first));
        let payload: serde_json::Value = diff(&d).deserialize()?;
        assert_eq!(
            payload,
            serde_json::json!({"joins": {}, "leaves": {"al\"ice": {"metas": [
                {"online_at": 1, "phx_ref": phx_ref(dot(1, 1))},
            ]}}})
        );
        Ok(())
    }

    #[test]
    fn metas_must_be_objects() {
        assert!(matches!(
            meta_text(&serde_json::json!([1])),
            Err(super::super::TrackError::MetaNotObject)
        ));
    }
}
