// The V2 serializer in the browser: frames made with JSON.stringify and read with JSON.parse,
// and the binary layout for ArrayBuffer payloads, byte for byte what the protocol crate's
// `Serializer::V2` writes and reads (alight_protocol::serializer, whose doc has the table):
//
// | kind | direction | layout |
// |---|---|---|
// | 0 push | to server | `0, jr_len, ref_len, topic_len, event_len, jr, ref, topic, event, payload` |
// | 0 push | to client | `0, jr_len, topic_len, event_len, jr, topic, event, payload` |
// | 1 reply | to client | `1, jr_len, ref_len, topic_len, status_len, jr, ref, topic, status, payload` |
// | 2 broadcast | to client | `2, topic_len, event_len, topic, event, payload` |
//
// Payloads stay JavaScript values: the wasm core never sees them.

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder("utf-8", { fatal: true });

/** What a frame that does not decode is logged with. */
const NOT_JSON = "not JSON";
const NOT_AN_ARRAY = "not a [join_ref, ref, topic, event, payload] array";
const WRONG_FIELD = "a field is missing or of the wrong type";
const MALFORMED = "a malformed binary frame";

/** Thrown for a binary frame whose topic or event does not fit its one length byte. */
const TOO_LONG = "an ArrayBuffer payload cannot be sent on a topic or as an event longer than 255 bytes";

/**
 * A payload as it will be sent: `{}` for a falsy one (phoenix.js's `payload || {}`), a copy of
 * an ArrayBuffer's bytes, or the JSON text of anything else. Throws a TypeError for what
 * `JSON.stringify` refuses (cycles, BigInts) or turns into nothing (functions, symbols).
 */
function outgoingPayload(value) {
  if (!value) return "{}";
  if (value instanceof ArrayBuffer) return new Uint8Array(value.slice(0));
  const text = JSON.stringify(value);
  if (typeof text !== "string") {
    throw new TypeError("the payload is neither JSON nor an ArrayBuffer");
  }
  return text;
}

/** Throws unless a binary frame can carry `topic` and `event` (one length byte each). */
function checkBinary(payload, topic, event) {
  if (typeof payload !== "string" && (utf8.encode(topic).length > 255 || utf8.encode(event).length > 255)) {
    throw new Error(TOO_LONG);
  }
}

/**
 * A frame to the server: JSON text, or a binary frame for bytes. `joinRef` and `ref` are
 * strings or null; `payload` as `outgoingPayload` made it.
 */
function encodeFrame(joinRef, ref, topic, event, payload) {
  if (typeof payload === "string") {
    // `[join_ref,ref,topic,event` from one stringify, then the payload's text.
    return `${JSON.stringify([joinRef, ref, topic, event]).slice(0, -1)},${payload}]`;
  }
  const fields = [joinRef ?? "", ref ?? "", topic, event].map((field) => utf8.encode(field));
  const length = 5 + fields.reduce((sum, field) => sum + field.length, 0) + payload.length;
  const out = new Uint8Array(length);
  out[0] = 0;
  let offset = 5;
  fields.forEach((field, i) => {
    out[1 + i] = field.length;
    out.set(field, offset);
    offset += field.length;
  });
  out.set(payload, offset);
  return out.buffer;
}

/**
 * A frame from the server: `{join_ref, ref, topic, event, payload}` as phoenix.js's `decode`
 * gives it (a reply's payload is `{status, response}`), or a string saying why it is not one.
 */
function decodeFrame(data) {
  if (typeof data === "string") {
    let array;
    try {
      array = JSON.parse(data);
    } catch {
      return NOT_JSON;
    }
    if (!Array.isArray(array) || array.length !== 5) return NOT_AN_ARRAY;
    const [join_ref, ref, topic, event, payload] = array;
    const refOk = (r) => r === null || typeof r === "string";
    if (!refOk(join_ref) || !refOk(ref) || typeof topic !== "string" || typeof event !== "string") {
      return WRONG_FIELD;
    }
    if (event === "phx_reply") {
      if (typeof payload !== "object" || payload === null || Array.isArray(payload)) return WRONG_FIELD;
      if (typeof payload.status !== "string") return WRONG_FIELD;
      if (!("response" in payload)) payload.response = null;
    }
    return { join_ref, ref, topic, event, payload };
  }
  return decodeBinary(new Uint8Array(data));
}

/** The three layouts a server sends (the table above). */
function decodeBinary(bytes) {
  const kind = bytes[0];
  const count = kind === 0 ? 3 : kind === 1 ? 4 : kind === 2 ? 2 : 0;
  if (!count || bytes.length < 1 + count) return MALFORMED;
  let offset = 1 + count;
  const fields = [];
  for (let i = 0; i < count; i++) {
    const end = offset + bytes[1 + i];
    if (end > bytes.length) return MALFORMED;
    try {
      fields.push(fromUtf8.decode(bytes.subarray(offset, end)));
    } catch {
      return MALFORMED;
    }
    offset = end;
  }
  const payload = bytes.slice(offset).buffer;
  if (kind === 0) {
    const [join_ref, topic, event] = fields;
    return { join_ref, ref: null, topic, event, payload };
  }
  if (kind === 1) {
    const [join_ref, ref, topic, status] = fields;
    return { join_ref, ref, topic, event: "phx_reply", payload: { status, response: payload } };
  }
  const [topic, event] = fields;
  return { join_ref: null, ref: null, topic, event, payload };
}

/** A ref from a frame as the wasm core counts them: -1 when absent or empty, -2 when it is not
 * a ref this client writes (decimal, no leading zeros). */
function refNumber(ref) {
  if (ref === null || ref === "" || ref === undefined) return -1;
  return /^(0|[1-9]\d{0,15})$/.test(ref) ? Number(ref) : -2;
}
