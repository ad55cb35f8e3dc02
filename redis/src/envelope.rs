//! What crosses Redis: one [`Envelope`] per PUBLISH, in a small binary layout.
//!
//! | bytes | field |
//! |---|---|
//! | 4 | magic `ALRD`: anything else on the channel is not ours |
//! | 1 | [`VERSION`] of this layout; a node speaking another is refused |
//! | 8 | origin: the sending node's id (big-endian), random per start |
//! | 1 | kind, then its fields (below) |
//!
//! | kind | message | fields |
//! |---|---|---|
//! | 1 | [`Message::Broadcast`] | topic, event, payload |
//! | 2 | [`Message::Push`] | socket id, topic, event, payload |
//! | 3 | [`Message::Disconnect`] | socket id |
//! | 4 | [`Message::Heartbeat`] | node name, presence deltas (JSON) |
//! | 5 | [`Message::Hello`] | node name, presence states (JSON), down nodes (JSON) |
//! | 6 | [`Message::States`] | node name, presence states (JSON), down nodes (JSON) |
//! | 7 | [`Message::Positioned`] | sequence (8 bytes), position (1-byte length, ASCII), topic, event, payload |
//!
//! Kind 7 is written by the history script inside Redis: the node sends the bytes before the
//! position and those after it (the [`Tail`]), and the script puts the position it assigned in
//! between, so that every node reads the same position. The stream entry keeps the tail.
//!
//! A string is a 4-byte big-endian length and UTF-8; a payload is a byte (0 JSON, 1 binary) and
//! the rest of the message (its JSON is checked again on receipt). Presence travels as JSON: it is
//! small next to broadcasts, and its types already serialize.

use alight_protocol::Payload;
use alight_server::{NodeId, ShardState};
use bytes::{BufMut, Bytes, BytesMut};

/// The version of this layout. Bump it on any change the previous decoder would misread.
pub const VERSION: u8 = 3;

const MAGIC: &[u8; 4] = b"ALRD";

/// One message between nodes, with its sender.
#[derive(Debug, Clone)]
pub struct Envelope {
    /// The node that sent it.
    pub origin: NodeId,
    /// What it says.
    pub message: Message,
}

/// What one node tells the others.
#[derive(Debug, Clone)]
pub enum Message {
    /// Deliver to every subscriber of `topic`.
    Broadcast {
        /// The topic.
        topic: String,
        /// The event.
        event: String,
        /// The payload.
        payload: Payload,
    },
    /// Push to the channel on `topic` of every socket with `socket_id`.
    Push {
        /// The socket id.
        socket_id: String,
        /// The topic.
        topic: String,
        /// The event.
        event: String,
        /// The payload.
        payload: Payload,
    },
    /// Close every socket with `socket_id`.
    Disconnect {
        /// The socket id.
        socket_id: String,
    },
    /// The sender is alive; its presence changes since its last heartbeat.
    Heartbeat {
        /// The sender's name, for logs.
        name: String,
        /// Presence deltas.
        deltas: Vec<ShardState>,
    },
    /// The sender (re)joined the cluster: here is its whole presence, send yours.
    Hello(FullState),
    /// The answer to a [`Message::Hello`], sent to the asking node only.
    States(FullState),
    /// A broadcast on a history topic, positioned by Redis (published by the history script).
    Positioned {
        /// The sender's number for it, to find its own broadcast when it comes back.
        seq: u64,
        /// Its position in the topic's history (`<epoch>-<offset>`).
        position: String,
        /// The topic, event and payload.
        tail: Tail,
    },
}

/// The topic, event and payload of a positioned broadcast: what its stream entry keeps.
#[derive(Debug, Clone)]
pub struct Tail {
    /// The topic.
    pub topic: String,
    /// The event.
    pub event: String,
    /// The payload.
    pub payload: Payload,
}

impl Tail {
    /// Reads a tail (from a stream entry).
    pub fn decode(bytes: &[u8]) -> Result<Tail, DecodeError> {
        Reader(bytes).tail()
    }
}

/// The bytes of a positioned broadcast before its position: magic, version, origin, kind and the
/// sender's sequence number.
pub(crate) fn encode_positioned_head(origin: NodeId, seq: u64) -> [u8; 22] {
    let mut out = [0; 22];
    out[..4].copy_from_slice(MAGIC);
    out[4] = VERSION;
    out[5..13].copy_from_slice(&origin.0.to_be_bytes());
    out[13] = 7;
    out[14..].copy_from_slice(&seq.to_be_bytes());
    out
}

/// The bytes of a positioned broadcast after its position, written straight from its fields.
pub(crate) fn encode_tail(topic: &str, event: &str, payload: &Payload) -> Bytes {
    let payload_len = match payload {
        Payload::Json(json) => json.get().len(),
        Payload::Binary(bytes) => bytes.len(),
    };
    let mut out = BytesMut::with_capacity(9 + topic.len() + event.len() + payload_len);
    put_str(&mut out, topic);
    put_str(&mut out, event);
    put_payload(&mut out, payload);
    out.freeze()
}

/// A node's whole presence, and the nodes it holds as down.
#[derive(Debug, Clone)]
pub struct FullState {
    /// The sender's name, for logs.
    pub name: String,
    /// Every presence shard's state.
    pub states: Vec<ShardState>,
    /// Nodes the sender declared down: their entries in `states` are not to be listed.
    pub down: Vec<NodeId>,
}

/// Why bytes from the channel were not a message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The bytes do not start with our magic: another program publishes on this channel.
    #[error("not an Alight message (bad magic)")]
    NotOurs,
    /// A node speaks another version of the layout.
    #[error("message of protocol version {theirs}, this node speaks version {ours}")]
    Version {
        /// This node's version.
        ours: u8,
        /// The sender's version.
        theirs: u8,
    },
    /// The message ends before its fields do.
    #[error("message truncated")]
    Truncated,
    /// A kind or payload tag this version does not know.
    #[error("unknown {what} tag {tag}")]
    UnknownTag {
        /// Which tag.
        what: &'static str,
        /// Its value.
        tag: u8,
    },
    /// A string is not UTF-8.
    #[error("a string field is not UTF-8")]
    Utf8(#[source] std::str::Utf8Error),
    /// A JSON payload is not one JSON value.
    #[error("payload is not JSON")]
    Payload(#[source] alight_protocol::JsonError),
    /// Presence data did not parse.
    #[error("presence data did not parse")]
    Presence(#[source] serde_json::Error),
}

/// The bytes of a [`Message::Broadcast`] from `origin`, written straight from the broadcast's
/// fields: a broadcast's payload is copied once, into the message.
pub fn encode_broadcast(origin: NodeId, topic: &str, event: &str, payload: &Payload) -> Bytes {
    let payload_len = match payload {
        Payload::Json(json) => json.get().len(),
        Payload::Binary(bytes) => bytes.len(),
    };
    let mut out = BytesMut::with_capacity(24 + topic.len() + event.len() + payload_len);
    out.put_slice(MAGIC);
    out.put_u8(VERSION);
    out.put_u64(origin.0);
    out.put_u8(1);
    put_str(&mut out, topic);
    put_str(&mut out, event);
    put_payload(&mut out, payload);
    out.freeze()
}

impl Envelope {
    /// The bytes to publish.
    pub fn encode(&self) -> Result<Bytes, serde_json::Error> {
        let mut out = BytesMut::with_capacity(64);
        out.put_slice(MAGIC);
        out.put_u8(VERSION);
        out.put_u64(self.origin.0);
        match &self.message {
            Message::Broadcast {
                topic,
                event,
                payload,
            } => {
                out.put_u8(1);
                put_str(&mut out, topic);
                put_str(&mut out, event);
                put_payload(&mut out, payload);
            }
            Message::Push {
                socket_id,
                topic,
                event,
                payload,
            } => {
                out.put_u8(2);
                put_str(&mut out, socket_id);
                put_str(&mut out, topic);
                put_str(&mut out, event);
                put_payload(&mut out, payload);
            }
            Message::Disconnect { socket_id } => {
                out.put_u8(3);
                put_str(&mut out, socket_id);
            }
            Message::Heartbeat { name, deltas } => {
                out.put_u8(4);
                put_str(&mut out, name);
                put_str(&mut out, &serde_json::to_string(deltas)?);
            }
            Message::Hello(sync) | Message::States(sync) => {
                out.put_u8(if matches!(self.message, Message::Hello(_)) {
                    5
                } else {
                    6
                });
                put_str(&mut out, &sync.name);
                put_str(&mut out, &serde_json::to_string(&sync.states)?);
                put_str(&mut out, &serde_json::to_string(&sync.down)?);
            }
            Message::Positioned {
                seq,
                position,
                tail,
            } => {
                out.put_u8(7);
                out.put_u64(*seq);
                let len = u8::try_from(position.len()).unwrap_or(u8::MAX);
                out.put_u8(len);
                out.put_slice(&position.as_bytes()[..usize::from(len)]);
                out.put_slice(&encode_tail(&tail.topic, &tail.event, &tail.payload));
            }
        }
        Ok(out.freeze())
    }

    /// Reads a message published by a node.
    pub fn decode(bytes: &[u8]) -> Result<Envelope, DecodeError> {
        let mut reader = Reader(bytes);
        if reader.take(MAGIC.len()).ok() != Some(&MAGIC[..]) {
            return Err(DecodeError::NotOurs);
        }
        let version = reader.u8()?;
        if version != VERSION {
            return Err(DecodeError::Version {
                ours: VERSION,
                theirs: version,
            });
        }
        let origin = NodeId(u64::from_be_bytes(
            reader
                .take(8)?
                .try_into()
                .map_err(|_| DecodeError::Truncated)?,
        ));
        let message = match reader.u8()? {
            1 => Message::Broadcast {
                topic: reader.string()?,
                event: reader.string()?,
                payload: reader.payload()?,
            },
            2 => Message::Push {
                socket_id: reader.string()?,
                topic: reader.string()?,
                event: reader.string()?,
                payload: reader.payload()?,
            },
            3 => Message::Disconnect {
                socket_id: reader.string()?,
            },
            4 => Message::Heartbeat {
                name: reader.string()?,
                deltas: reader.json()?,
            },
            kind @ (5 | 6) => {
                let sync = FullState {
                    name: reader.string()?,
                    states: reader.json()?,
                    down: reader.json()?,
                };
                if kind == 5 {
                    Message::Hello(sync)
                } else {
                    Message::States(sync)
                }
            }
            7 => {
                let seq = u64::from_be_bytes(
                    reader
                        .take(8)?
                        .try_into()
                        .map_err(|_| DecodeError::Truncated)?,
                );
                let len = reader.u8()?;
                let position = std::str::from_utf8(reader.take(usize::from(len))?)
                    .map_err(DecodeError::Utf8)?
                    .to_owned();
                Message::Positioned {
                    seq,
                    position,
                    tail: reader.tail()?,
                }
            }
            tag => return Err(DecodeError::UnknownTag { what: "kind", tag }),
        };
        Ok(Envelope { origin, message })
    }
}

fn put_str(out: &mut BytesMut, text: &str) {
    // Strings this long cannot come from a WebSocket frame under any sane size limit.
    let len = u32::try_from(text.len()).expect("a field shorter than 4 GiB");
    out.put_u32(len);
    out.put_slice(text.as_bytes());
}

fn put_payload(out: &mut BytesMut, payload: &Payload) {
    match payload {
        Payload::Json(json) => {
            out.put_u8(0);
            out.put_slice(json.get().as_bytes());
        }
        Payload::Binary(bytes) => {
            out.put_u8(1);
            out.put_slice(bytes);
        }
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.0.len() < n {
            return Err(DecodeError::Truncated);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn str(&mut self) -> Result<&'a str, DecodeError> {
        let len = u32::from_be_bytes(
            self.take(4)?
                .try_into()
                .map_err(|_| DecodeError::Truncated)?,
        );
        let len = usize::try_from(len).map_err(|_| DecodeError::Truncated)?;
        std::str::from_utf8(self.take(len)?).map_err(DecodeError::Utf8)
    }

    fn string(&mut self) -> Result<String, DecodeError> {
        self.str().map(str::to_owned)
    }

    fn json<T: serde::de::DeserializeOwned>(&mut self) -> Result<T, DecodeError> {
        serde_json::from_str(self.str()?).map_err(DecodeError::Presence)
    }

    fn tail(&mut self) -> Result<Tail, DecodeError> {
        Ok(Tail {
            topic: self.string()?,
            event: self.string()?,
            payload: self.payload()?,
        })
    }

    /// The payload: the rest of the message.
    fn payload(&mut self) -> Result<Payload, DecodeError> {
        let tag = self.u8()?;
        let rest = std::mem::take(&mut self.0);
        match tag {
            0 => {
                let text = std::str::from_utf8(rest).map_err(DecodeError::Utf8)?;
                Payload::from_json_str(text).map_err(DecodeError::Payload)
            }
            1 => Ok(Payload::Binary(Bytes::copy_from_slice(rest))),
            tag => Err(DecodeError::UnknownTag {
                what: "payload",
                tag,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(message: Message) {
        let envelope = Envelope {
            origin: NodeId(0x0102_0304_0506_0708),
            message,
        };
        let bytes = envelope.encode().expect("encodes");
        let decoded = Envelope::decode(&bytes).expect("decodes");
        assert_eq!(decoded.origin, envelope.origin);
        assert_eq!(decoded.encode().expect("encodes again"), bytes);
        // Every truncation is refused (a binary payload has no end mark), never a panic.
        for end in 0..bytes.len() {
            let cut = Envelope::decode(&bytes[..end]);
            let binary = matches!(
                &envelope.message,
                Message::Broadcast {
                    payload: Payload::Binary(_),
                    ..
                }
            );
            assert!(cut.is_err() || binary, "cut at {end}");
        }
    }

    #[test]
    fn every_message_round_trips() {
        let json = Payload::from_json_str(r#"{"body":"hi"}"#).expect("json");
        round_trip(Message::Broadcast {
            topic: "room:1".into(),
            event: "shout".into(),
            payload: json.clone(),
        });
        round_trip(Message::Broadcast {
            topic: "room:1".into(),
            event: "bin".into(),
            payload: Payload::Binary(Bytes::from_static(&[0, 1, 255])),
        });
        round_trip(Message::Push {
            socket_id: "user:1".into(),
            topic: "room:1".into(),
            event: "note".into(),
            payload: json,
        });
        round_trip(Message::Disconnect {
            socket_id: "user:1".into(),
        });
        round_trip(Message::Heartbeat {
            name: "a".into(),
            deltas: Vec::new(),
        });
        round_trip(Message::Hello(FullState {
            name: "b".into(),
            states: Vec::new(),
            down: vec![NodeId(7)],
        }));
        round_trip(Message::States(FullState {
            name: "c".into(),
            states: Vec::new(),
            down: Vec::new(),
        }));
        round_trip(Message::Positioned {
            seq: 42,
            position: "3f09c1d2a7b4-7".into(),
            tail: Tail {
                topic: "room:1".into(),
                event: "n".into(),
                payload: Payload::from_json_str(r#"{"n":7}"#).expect("json"),
            },
        });
    }

    #[test]
    fn a_positioned_broadcast_is_its_head_position_and_tail_as_the_script_joins_them() {
        let payload = Payload::from_json_str(r#"{"n":1}"#).expect("json");
        let position = "00000000000a-3";
        let mut joined = encode_positioned_head(NodeId(9), 5).to_vec();
        joined.push(position.len() as u8);
        joined.extend_from_slice(position.as_bytes());
        let tail = encode_tail("room:1", "n", &payload);
        joined.extend_from_slice(&tail);
        let decoded = Envelope::decode(&joined).expect("decodes");
        assert_eq!(decoded.origin, NodeId(9));
        let Message::Positioned {
            seq,
            position: p,
            tail: t,
        } = decoded.message
        else {
            panic!("a positioned broadcast");
        };
        assert_eq!((seq, p.as_str()), (5, position));
        assert_eq!((t.topic.as_str(), t.event.as_str()), ("room:1", "n"));
        assert_eq!(t.payload, payload);
        let again = Tail::decode(&tail).expect("the stream entry decodes");
        assert_eq!(again.payload, payload);
    }

    #[test]
    fn a_broadcast_encodes_the_same_either_way() {
        let payload = Payload::from_json_str(r#"{"n":1}"#).expect("json");
        let direct = encode_broadcast(NodeId(9), "room:1", "shout", &payload);
        let envelope = Envelope {
            origin: NodeId(9),
            message: Message::Broadcast {
                topic: "room:1".into(),
                event: "shout".into(),
                payload,
            },
        };
        assert_eq!(direct, envelope.encode().expect("encodes"));
    }

    #[test]
    fn garbage_and_other_versions_are_refused() {
        assert!(matches!(
            Envelope::decode(b"hello"),
            Err(DecodeError::NotOurs)
        ));
        let mut other = Envelope {
            origin: NodeId(1),
            message: Message::Disconnect {
                socket_id: "x".into(),
            },
        }
        .encode()
        .expect("encodes")
        .to_vec();
        other[4] = VERSION + 1;
        assert!(matches!(
            Envelope::decode(&other),
            Err(DecodeError::Version { ours: VERSION, theirs }) if theirs == VERSION + 1
        ));
        other[4] = VERSION;
        other[13] = 99;
        assert!(matches!(
            Envelope::decode(&other),
            Err(DecodeError::UnknownTag {
                what: "kind",
                tag: 99
            })
        ));
    }
}
