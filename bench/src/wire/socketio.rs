//! socket.io v4 packets over engine.io v4 text messages, from the client's side.
//!
//! | engine.io | socket.io inside `4` | meaning |
//! |---|---|---|
//! | `0{json}` | | open: session id and ping timing |
//! | `2` / `3` | | ping from the server / our pong |
//! | `4` | `0` / `0{json}` | connect to the default namespace / accepted |
//! | `4` | `2[id]["event",args…]` | event, with an ack id when the sender wants an answer |
//! | `4` | `3id[args…]` | ack of our event `id` |
//! | `4` | `4{json}` | connect error |

use super::{Incoming, scan};

/// Our answer to an engine.io ping.
pub const PONG: &str = "3";
/// Connect to the default namespace.
pub const CONNECT: &str = "40";

/// An event with an ack id; each argument is JSON text.
pub fn encode_event(ack_id: u64, event: &str, args: &[&str]) -> String {
    let mut text = format!("42{ack_id}[{}", super::json_string(event));
    for arg in args {
        text.push(',');
        text.push_str(arg);
    }
    text.push(']');
    text
}

/// Reads an engine.io message.
pub fn decode(text: &str) -> Incoming<'_> {
    let mut chars = text.chars();
    match chars.next() {
        Some('0') => Incoming::Open,
        Some('2') => Incoming::Ping,
        Some('1' | '3' | '6') => Incoming::Other,
        Some('4') => decode_socketio(chars.as_str()),
        _ => Incoming::Malformed,
    }
}

fn decode_socketio(packet: &str) -> Incoming<'_> {
    let Some(kind) = packet.chars().next() else {
        return Incoming::Malformed;
    };
    let mut rest = &packet[1..];
    if rest.starts_with('/') {
        // A namespace other than the default: `/name,`. The generator only uses `/`.
        match rest.split_once(',') {
            Some((_, after)) => rest = after,
            None => return Incoming::Other,
        }
    }
    match kind {
        '0' => Incoming::Connected,
        '1' => Incoming::Other,
        '2' => {
            let rest = match scan::number(rest) {
                Some((_, after)) => after,
                None => rest,
            };
            let s = rest.as_bytes();
            let Some(at) = scan::byte(s, 0, b'[') else {
                return Incoming::Malformed;
            };
            let Some((event, at)) = scan::string(rest, at) else {
                return Incoming::Malformed;
            };
            let payload = match scan::byte(s, at, b',') {
                Some(at) => scan::rest_of_array(rest, at),
                None => Some(""),
            };
            match payload {
                Some(payload) => Incoming::Event { event, payload },
                None => Incoming::Malformed,
            }
        }
        '3' => {
            let Some((msg_ref, rest)) = scan::number(rest) else {
                return Incoming::Malformed;
            };
            let Some(at) = scan::byte(rest.as_bytes(), 0, b'[') else {
                return Incoming::Malformed;
            };
            match scan::rest_of_array(rest, at) {
                Some(response) => Incoming::Reply {
                    msg_ref,
                    ok: true,
                    response,
                },
                None => Incoming::Malformed,
            }
        }
        _ => Incoming::Malformed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_events_with_acks() {
        assert_eq!(
            encode_event(3, "shout", &[r#""room:a""#, r#"{"t":1}"#]),
            r#"423["shout","room:a",{"t":1}]"#
        );
    }

    #[test]
    fn decodes_engine_and_socket_packets() {
        assert_eq!(
            decode(r#"0{"sid":"x","pingInterval":25000}"#),
            Incoming::Open
        );
        assert_eq!(decode("2"), Incoming::Ping);
        assert_eq!(decode(r#"40{"sid":"y"}"#), Incoming::Connected);
        assert_eq!(
            decode(r#"42["shout",{"t":9}]"#),
            Incoming::Event {
                event: "shout",
                payload: r#"{"t":9}"#
            }
        );
        assert_eq!(
            decode(r#"4317[{"t":9}]"#),
            Incoming::Reply {
                msg_ref: 17,
                ok: true,
                response: r#"{"t":9}"#
            }
        );
        assert_eq!(
            decode(r#"42/chat,5["e"]"#),
            Incoming::Event {
                event: "e",
                payload: ""
            }
        );
        assert_eq!(decode("43[{}]"), Incoming::Malformed);
        assert_eq!(decode(r#"44{"message":"no"}"#), Incoming::Malformed);
        assert_eq!(decode(""), Incoming::Malformed);
    }
}
