//! Phoenix V2 JSON frames, `[join_ref, ref, topic, event, payload]`, from the client's side.

use super::{Incoming, json_string, scan};

/// One client frame. Refs are decimal strings, as phoenix.js sends them.
pub fn encode(
    join_ref: Option<u64>,
    msg_ref: u64,
    topic: &str,
    event: &str,
    payload: &str,
) -> String {
    let join_ref = match join_ref {
        Some(r) => format!("\"{r}\""),
        None => "null".to_owned(),
    };
    format!(
        "[{join_ref},\"{msg_ref}\",{},{},{payload}]",
        json_string(topic),
        json_string(event)
    )
}

/// The five fields of a V2 frame, borrowed from its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fields<'a> {
    /// `join_ref`, without quotes.
    pub join_ref: Option<&'a str>,
    /// `ref`, without quotes.
    pub msg_ref: Option<&'a str>,
    /// The topic, without quotes (escapes as on the wire).
    pub topic: &'a str,
    /// The event, without quotes.
    pub event: &'a str,
    /// The payload's JSON text.
    pub payload: &'a str,
}

/// Splits a V2 frame into its fields; `None` if it is not one.
pub fn fields(text: &str) -> Option<Fields<'_>> {
    let s = text.as_bytes();
    let at = scan::byte(s, 0, b'[')?;
    let (join_ref, at) = scan::nullable_string(text, at)?;
    let at = scan::byte(s, at, b',')?;
    let (msg_ref, at) = scan::nullable_string(text, at)?;
    let at = scan::byte(s, at, b',')?;
    let (topic, at) = scan::string(text, at)?;
    let at = scan::byte(s, at, b',')?;
    let (event, at) = scan::string(text, at)?;
    let at = scan::byte(s, at, b',')?;
    let payload = scan::rest_of_array(text, at)?;
    (!payload.is_empty()).then_some(Fields {
        join_ref,
        msg_ref,
        topic,
        event,
        payload,
    })
}

/// Reads a server frame.
pub fn decode(text: &str) -> Incoming<'_> {
    let Some(f) = fields(text) else {
        return Incoming::Malformed;
    };
    if f.event != "phx_reply" {
        return Incoming::Event {
            event: f.event,
            payload: f.payload,
        };
    }
    let Some(msg_ref) = f.msg_ref.and_then(|r| r.parse().ok()) else {
        return Incoming::Other;
    };
    match reply_parts(f.payload) {
        Some((status, response)) => Incoming::Reply {
            msg_ref,
            ok: status == "ok",
            response,
        },
        None => Incoming::Malformed,
    }
}

/// `{"status": S, "response": R}` → `(S, R)`, with the keys in the order Phoenix writes them.
fn reply_parts(payload: &str) -> Option<(&str, &str)> {
    let s = payload.as_bytes();
    let at = scan::byte(s, 0, b'{')?;
    let (key, at) = scan::string(payload, at)?;
    if key != "status" {
        return None;
    }
    let at = scan::byte(s, at, b':')?;
    let (status, at) = scan::string(payload, at)?;
    let at = scan::byte(s, at, b',')?;
    let (key, at) = scan::string(payload, at)?;
    if key != "response" {
        return None;
    }
    let at = scan::byte(s, at, b':')?;
    let response = payload.trim_end().strip_suffix('}')?.get(at..)?.trim();
    Some((status, response))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_phoenix_js() {
        assert_eq!(
            encode(Some(1), 1, "room:bench", "phx_join", "{}"),
            r#"["1","1","room:bench","phx_join",{}]"#
        );
        assert_eq!(
            encode(None, 4, "phoenix", "heartbeat", "{}"),
            r#"[null,"4","phoenix","heartbeat",{}]"#
        );
    }

    #[test]
    fn decodes_replies_and_broadcasts() {
        assert_eq!(
            decode(r#"["1","7","room:a","phx_reply",{"status":"ok","response":{"t":1}}]"#),
            Incoming::Reply {
                msg_ref: 7,
                ok: true,
                response: r#"{"t":1}"#
            }
        );
        assert_eq!(
            decode(
                r#"[null,"2","room:a","phx_reply",{"status":"error","response":{"reason":"x"}}]"#
            ),
            Incoming::Reply {
                msg_ref: 2,
                ok: false,
                response: r#"{"reason":"x"}"#
            }
        );
        assert_eq!(
            decode(r#"[null, null, "room:a", "shout", {"t":5,"p":"]"} ]"#),
            Incoming::Event {
                event: "shout",
                payload: r#"{"t":5,"p":"]"}"#
            }
        );
        assert_eq!(
            decode(r#"["1","1","room:a","phx_close",{}]"#),
            Incoming::Event {
                event: "phx_close",
                payload: "{}"
            }
        );
        assert_eq!(decode("[1,2"), Incoming::Malformed);
        assert_eq!(decode(r#"["1","1","a","e"]"#), Incoming::Malformed);
    }

    /// The scanner agrees with the server's own serializer in both directions.
    #[test]
    fn agrees_with_alight_protocol() -> Result<(), Box<dyn std::error::Error>> {
        use alight_protocol::{Direction, Frame, Payload, Serializer};

        let serializer = Serializer::from_vsn(Some("2.0.0"))?;
        let sent = encode(Some(3), 8, "room:bench", "shout", r#"{"t":12,"p":"x"}"#);
        let frame = serializer.decode_text(Direction::ToServer, &sent)?;
        assert_eq!(frame.join_ref.as_deref(), Some("3"));
        assert_eq!(frame.msg_ref.as_deref(), Some("8"));
        assert_eq!(frame.event(), "shout");

        let reply = Frame::reply(&frame, "ok", Payload::from_json_str(r#"{"a":[1]}"#)?);
        let wire = serializer.encode(Direction::ToClient, &reply)?;
        assert_eq!(
            decode(wire.as_text().ok_or("a text frame")?),
            Incoming::Reply {
                msg_ref: 8,
                ok: true,
                response: r#"{"a":[1]}"#
            }
        );
        let broadcast = Frame::broadcast("room:bench", "shout", frame.payload().clone());
        let wire = serializer.encode(Direction::ToClient, &broadcast)?;
        assert_eq!(
            decode(wire.as_text().ok_or("a text frame")?),
            Incoming::Event {
                event: "shout",
                payload: r#"{"t":12,"p":"x"}"#
            }
        );
        Ok(())
    }

    #[test]
    fn strings_with_escapes_are_skipped_whole() {
        let f = fields(r#"["1","2","room:\"q\"","ev\\",{}]"#);
        assert_eq!(
            f.map(|f| (f.topic, f.event, f.payload)),
            Some((r#"room:\"q\""#, r"ev\\", "{}"))
        );
    }
}
