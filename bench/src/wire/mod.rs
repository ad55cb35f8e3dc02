//! Client-side framing for the two protocols the generator speaks, behind one [`Codec`].
//!
//! The generator needs few verbs (join, leave, shout, ping) and reads few things back (replies by
//! ref, `shout` events, engine.io pings), so each protocol is a small encoder plus a scanner that
//! borrows from the received text without building a JSON tree: the receive path is the hot path
//! of every fan-out run, and the generator must not be the slower side.
//!
//! | verb | Phoenix V2 JSON ([`phoenix`]) | socket.io v4 ([`socketio`]) |
//! |---|---|---|
//! | connect | WebSocket `/socket/websocket?vsn=2.0.0` | WebSocket `/socket.io/?EIO=4&transport=websocket`, `0{open}` → `40` → `40{sid}` |
//! | join | `["1","1",topic,"phx_join",{}]` → `phx_reply` ok | `42N["join",topic]` → `43N[{}]` |
//! | shout | `[jr,ref,topic,"shout",payload]` → broadcast, then `phx_reply` ok | `42N["shout",topic,payload]` → `42["shout",payload]` to the room, then `43N[{}]` |
//! | ping | `[jr,ref,topic,"ping",payload]` → `phx_reply` ok with the payload | `42N["ping",payload]` → `43N[payload]` |
//! | leave | `[jr,ref,topic,"phx_leave",{}]` → `phx_reply` ok, `phx_close` | `42N["leave",topic]` → `43N[{}]` |
//! | keep-alive | `[null,ref,"phoenix","heartbeat",{}]` every 30 s → `phx_reply` ok | server `2` → client `3` |
//! | presence | join with `{"name": n}` → `phx_reply` ok, `presence_state`, then `presence_diff`s ([`presence`]) | — |

pub mod phoenix;
pub mod presence;
pub mod socketio;

use std::fmt;
use std::str::FromStr;

/// The wire protocol a server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// Phoenix Channels, V2 JSON frames.
    Phoenix,
    /// socket.io v4 over engine.io v4, WebSocket transport only.
    SocketIo,
}

impl Protocol {
    /// The WebSocket path and query the generator connects to.
    pub fn path(self) -> &'static str {
        match self {
            Protocol::Phoenix => "/socket/websocket?vsn=2.0.0",
            Protocol::SocketIo => "/socket.io/?EIO=4&transport=websocket",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Phoenix => "phoenix",
            Protocol::SocketIo => "socketio",
        })
    }
}

/// A protocol name that is neither `phoenix` nor `socketio`.
#[derive(Debug, thiserror::Error)]
#[error("unknown protocol `{0}`; expected `phoenix` or `socketio`")]
pub struct UnknownProtocol(String);

impl FromStr for Protocol {
    type Err = UnknownProtocol;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "phoenix" => Ok(Protocol::Phoenix),
            "socketio" | "socket.io" => Ok(Protocol::SocketIo),
            other => Err(UnknownProtocol(other.to_owned())),
        }
    }
}

/// One received text message, as the generator reads it. Slices borrow from the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Incoming<'a> {
    /// The answer to our message `msg_ref`: a Phoenix `phx_reply` or a socket.io ack.
    Reply {
        /// The ref of the message it answers.
        msg_ref: u64,
        /// Whether the status is `ok` (socket.io acks always are).
        ok: bool,
        /// The response (Phoenix) or the first ack argument (socket.io), as JSON text.
        response: &'a str,
    },
    /// An event the server pushed or broadcast, e.g. `shout`.
    Event {
        /// The event name, as it appears on the wire.
        event: &'a str,
        /// Its payload (the first argument, for socket.io), as JSON text.
        payload: &'a str,
    },
    /// An engine.io ping: answer with [`Codec::pong`] or the server drops the connection.
    Ping,
    /// The engine.io open packet, first message of a socket.io connection.
    Open,
    /// The socket.io namespace accepted our `40`.
    Connected,
    /// A valid message the generator does not act on (`phx_close`, a pong, a heartbeat reply).
    Other,
    /// Text the codec could not read.
    Malformed,
}

/// Per-connection encoder and decoder: numbers the refs and remembers the join's ref.
#[derive(Debug, Clone)]
pub struct Codec {
    protocol: Protocol,
    /// The last ref handed out; Phoenix refs start at 1, socket.io ack ids at 0 (any is fine).
    last_ref: u64,
    /// The ref of our join, which Phoenix requires on every later push to that topic.
    join_ref: Option<u64>,
}

impl Codec {
    /// A codec for a fresh connection.
    pub fn new(protocol: Protocol) -> Self {
        Codec {
            protocol,
            last_ref: 0,
            join_ref: None,
        }
    }

    /// The protocol this codec speaks.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    fn next_ref(&mut self) -> u64 {
        self.last_ref += 1;
        self.last_ref
    }

    /// A join of `topic` (a socket.io room), and the ref its reply will carry.
    pub fn join(&mut self, topic: &str) -> (String, u64) {
        let msg_ref = self.next_ref();
        self.join_ref = Some(msg_ref);
        let text = match self.protocol {
            Protocol::Phoenix => phoenix::encode(Some(msg_ref), msg_ref, topic, "phx_join", "{}"),
            Protocol::SocketIo => socketio::encode_event(msg_ref, "join", &[&json_string(topic)]),
        };
        (text, msg_ref)
    }

    /// A Phoenix join of `topic` with `params` (JSON text), and the ref its reply will carry.
    /// socket.io joins carry no parameters: there, this is [`Codec::join`].
    pub fn join_with(&mut self, topic: &str, params: &str) -> (String, u64) {
        if self.protocol == Protocol::SocketIo {
            return self.join(topic);
        }
        let msg_ref = self.next_ref();
        self.join_ref = Some(msg_ref);
        let text = phoenix::encode(Some(msg_ref), msg_ref, topic, "phx_join", params);
        (text, msg_ref)
    }

    /// A leave of `topic`, and the ref its reply will carry.
    pub fn leave(&mut self, topic: &str) -> (String, u64) {
        let msg_ref = self.next_ref();
        let text = match self.protocol {
            Protocol::Phoenix => phoenix::encode(self.join_ref, msg_ref, topic, "phx_leave", "{}"),
            Protocol::SocketIo => socketio::encode_event(msg_ref, "leave", &[&json_string(topic)]),
        };
        (text, msg_ref)
    }

    /// A `shout` of `payload` (JSON text) to everyone in `topic`, and the ref of its reply.
    pub fn shout(&mut self, topic: &str, payload: &str) -> (String, u64) {
        let msg_ref = self.next_ref();
        let text = match self.protocol {
            Protocol::Phoenix => phoenix::encode(self.join_ref, msg_ref, topic, "shout", payload),
            Protocol::SocketIo => {
                socketio::encode_event(msg_ref, "shout", &[&json_string(topic), payload])
            }
        };
        (text, msg_ref)
    }

    /// A `ping` carrying `payload` (JSON text), answered with the same payload, and its ref.
    pub fn ping(&mut self, topic: &str, payload: &str) -> (String, u64) {
        let msg_ref = self.next_ref();
        let text = match self.protocol {
            Protocol::Phoenix => phoenix::encode(self.join_ref, msg_ref, topic, "ping", payload),
            Protocol::SocketIo => socketio::encode_event(msg_ref, "ping", &[payload]),
        };
        (text, msg_ref)
    }

    /// A push of `event` with `payload` (JSON text) on the joined `topic`, and the ref of its
    /// reply (socket.io: the event with the payload as its argument, acked).
    pub fn push(&mut self, topic: &str, event: &str, payload: &str) -> (String, u64) {
        let msg_ref = self.next_ref();
        let text = match self.protocol {
            Protocol::Phoenix => phoenix::encode(self.join_ref, msg_ref, topic, event, payload),
            Protocol::SocketIo => socketio::encode_event(msg_ref, event, &[payload]),
        };
        (text, msg_ref)
    }

    /// A keep-alive: Phoenix's `heartbeat` on the `phoenix` topic (phoenix.js sends one every
    /// 30 s), or `None` for socket.io, whose server pings instead.
    pub fn heartbeat(&mut self) -> Option<String> {
        match self.protocol {
            Protocol::Phoenix => {
                let msg_ref = self.next_ref();
                Some(phoenix::encode(None, msg_ref, "phoenix", "heartbeat", "{}"))
            }
            Protocol::SocketIo => None,
        }
    }

    /// The answer to an engine.io ping.
    pub fn pong(&self) -> &'static str {
        socketio::PONG
    }

    /// Reads one received text message.
    pub fn decode<'a>(&self, text: &'a str) -> Incoming<'a> {
        match self.protocol {
            Protocol::Phoenix => phoenix::decode(text),
            Protocol::SocketIo => socketio::decode(text),
        }
    }
}

/// `s` as a JSON string literal.
pub fn json_string(s: &str) -> String {
    // Serializing a `str` cannot fail; an empty literal would only make the server answer an error.
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned())
}

/// Scanning helpers shared by both decoders. Positions are byte offsets into ASCII-delimited JSON.
pub(crate) mod scan {
    /// Skips JSON whitespace from `at`.
    pub fn ws(s: &[u8], mut at: usize) -> usize {
        while at < s.len() && matches!(s[at], b' ' | b'\t' | b'\n' | b'\r') {
            at += 1;
        }
        at
    }

    /// Expects `byte` (after whitespace) at `at`; returns the position after it.
    pub fn byte(s: &[u8], at: usize, byte: u8) -> Option<usize> {
        let at = ws(s, at);
        (s.get(at) == Some(&byte)).then_some(at + 1)
    }

    /// A JSON string at `at` (after whitespace): its raw contents (escapes left as they are) and
    /// the position after the closing quote.
    pub fn string(text: &str, at: usize) -> Option<(&str, usize)> {
        let s = text.as_bytes();
        let start = byte(s, at, b'"')?;
        let mut i = start;
        while i < s.len() {
            match s[i] {
                b'"' => return Some((&text[start..i], i + 1)),
                b'\\' => i += 2,
                _ => i += 1,
            }
        }
        None
    }

    /// `null` or a JSON string at `at`.
    pub fn nullable_string(text: &str, at: usize) -> Option<(Option<&str>, usize)> {
        let s = text.as_bytes();
        let at = ws(s, at);
        if s[at..].starts_with(b"null") {
            Some((None, at + 4))
        } else {
            string(text, at).map(|(v, next)| (Some(v), next))
        }
    }

    /// The text between `at` and the closing `]` that ends `text`, trimmed.
    pub fn rest_of_array(text: &str, at: usize) -> Option<&str> {
        let end = text.trim_end().strip_suffix(']')?;
        end.get(at..).map(str::trim)
    }

    /// A decimal number at the start of `s` and the rest after it.
    pub fn number(s: &str) -> Option<(u64, &str)> {
        let digits = s.bytes().take_while(u8::is_ascii_digit).count();
        let n = s[..digits].parse().ok()?;
        Some((n, &s[digits..]))
    }
}
