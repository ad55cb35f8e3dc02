//! Payloads between JS values and the wire: `JSON.stringify` and `JSON.parse` for everything but
//! an `ArrayBuffer`, which travels as a V2 binary frame and arrives as a fresh `ArrayBuffer`.
//!
//! Going through the engine's JSON rather than serde-wasm-bindgen keeps the bytes those of
//! phoenix.js (`JSON.stringify` chooses the key order, number formatting, escapes and `toJSON`),
//! costs one string copy across the boundary instead of one call per value, and adds no code to
//! the package: the session keeps JSON payloads as text and never parses them into values.

use alight_protocol::Payload;
use js_sys::{ArrayBuffer, JSON, Uint8Array};
use wasm_bindgen::prelude::*;

/// A payload from a JS value. As phoenix.js (`payload || {}`), a missing or falsy payload is
/// `{}`.
pub(crate) fn to_wire(value: &JsValue) -> Result<Payload, JsValue> {
    if value.is_falsy() {
        return Ok(Payload::empty());
    }
    if let Some(buffer) = value.dyn_ref::<ArrayBuffer>() {
        return Ok(Payload::Binary(Uint8Array::new(buffer).to_vec().into()));
    }
    // Throws on cycles and BigInts; gives `undefined` for functions and symbols.
    let text = JsValue::from(JSON::stringify(value)?);
    let text = text
        .as_string()
        .ok_or_else(|| js_sys::TypeError::new("the payload is not JSON: use an object, an array, a string, a number, a boolean or an ArrayBuffer"))?;
    // `JSON.stringify` writes JSON; the check only guards against a patched one.
    Payload::from_json_str(&text)
        .map_err(|_| js_sys::TypeError::new("the payload is not JSON").into())
}

/// A JS value from a payload: parsed JSON, or an `ArrayBuffer`.
pub(crate) fn to_js(payload: &Payload) -> JsValue {
    match payload {
        // The session checked the JSON when it decoded the frame.
        Payload::Json(json) => parse(json.get()),
        Payload::Binary(bytes) => Uint8Array::from(&bytes[..]).buffer().into(),
    }
}

/// `JSON.parse(json)`, for valid JSON (`undefined` otherwise); also how the module makes the
/// few objects of its own, such as a timeout's `{}` (`Object.new` and `Reflect.set` were two
/// more imports).
pub(crate) fn parse(json: &str) -> JsValue {
    JSON::parse(json).unwrap_or(JsValue::UNDEFINED)
}
