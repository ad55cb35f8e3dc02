//! What [`catchup`](super::catchup) and [`retain`](super::retain) share: positions, numbered
//! shouts, joins whose reply carries `position` and `recovered`, and a publisher that waits until
//! every shout is answered.
//!
//! A history topic (Alight's demo `room:*`; see `server/src/history`) gives every broadcast a
//! position, `"<epoch>-<offset>"`, in the `ref` slot of its frame, and every ok join reply a
//! `"position"`, the topic's position at the join. A join with `{"since": p}` is answered with
//! `"recovered": true` and then every broadcast after `p`, in order, or `"recovered": false` and
//! nothing. The helpers here read that from the client's side and check it: every shout carries
//! its number in its topic (`"s"` of a [`stamped_payload`]), so a reader knows which shout comes
//! next both by number and by position, and names the first one that did not.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use tokio::time::Instant;

use super::{error_chain, stamped_payload};
use crate::conn::{Client, ClientError, STEP_TIMEOUT};
use crate::stats::Clock;
use crate::wire::{Incoming, json_string, phoenix};

/// Shouts a publisher keeps awaiting their reply at most.
pub const PUBLISH_WINDOW: u64 = 16;

/// A position in a topic's history as an Alight server writes it: the stream's epoch and the
/// offset of a broadcast in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    /// The stream, as written (hex digits).
    pub epoch: String,
    /// The broadcast's number in the stream (0: before the first).
    pub offset: u64,
}

impl Position {
    /// Reads `"<epoch>-<offset>"`; `None` for anything else (a phoenix.js ref, `null`).
    pub fn parse(text: &str) -> Option<Position> {
        let (epoch, offset) = text.rsplit_once('-')?;
        if epoch.is_empty() || !offset.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(Position {
            epoch: epoch.to_owned(),
            offset: offset.parse().ok()?,
        })
    }

    /// The position `n` broadcasts further on in the same stream.
    pub fn plus(&self, n: u64) -> Position {
        Position {
            epoch: self.epoch.clone(),
            offset: self.offset.saturating_add(n),
        }
    }

    /// The position `n` broadcasts back in the same stream (at least offset 0).
    pub fn minus(&self, n: u64) -> Position {
        Position {
            epoch: self.epoch.clone(),
            offset: self.offset.saturating_sub(n),
        }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.epoch, self.offset)
    }
}

/// Join params: `{}` for a fresh join, `{"since": "<position>"}` to resume.
pub fn join_params(since: Option<&Position>) -> String {
    match since {
        None => "{}".to_owned(),
        Some(p) => format!("{{\"since\":{}}}", json_string(&p.to_string())),
    }
}

/// What an ok join reply of a history topic says.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
pub struct JoinAnswer {
    /// The topic's position when the join subscribed; `None` if the topic keeps no history.
    #[serde(default)]
    pub position: Option<String>,
    /// Whether the `since` was recovered; `None` when the join carried none (or no history).
    #[serde(default)]
    pub recovered: Option<bool>,
}

impl JoinAnswer {
    /// Reads a reply's response (JSON text); one that is not an object of these keys says
    /// nothing.
    pub fn read(response: &str) -> JoinAnswer {
        serde_json::from_str(response).unwrap_or_default()
    }
}

/// The sequence number `"s"` of a [`stamped_payload`].
pub fn seq_of(payload: &str) -> Option<u64> {
    let at = payload.find("\"s\":")? + 4;
    crate::wire::scan::number(payload[at..].trim_start()).map(|(n, _)| n)
}

/// Reads one client's connection: counts every message, and checks the shouts among them
/// against the numbers and positions it expects next.
#[derive(Debug, Clone, Default)]
pub struct Reader {
    /// Text bytes of every message received.
    pub bytes: u64,
    /// Messages received.
    pub frames: u64,
    /// Shouts received after the join reply.
    pub shouts: u64,
    /// The first shout that was not the one expected, described.
    pub wrong: Option<String>,
    next_number: u64,
    next_position: Option<Position>,
}

impl Reader {
    /// A reader that has received nothing.
    pub fn new() -> Self {
        Reader::default()
    }

    /// From now on the shouts should be numbered `first`, `first + 1`, … and, when `since` is
    /// given, sit at the positions right after it.
    pub fn expect(&mut self, first: u64, since: Option<&Position>) {
        self.next_number = first;
        self.next_position = since.map(|p| p.plus(1));
    }

    /// Counts one message; checks it if it is a shout.
    pub fn take(&mut self, text: &str) {
        self.bytes += text.len() as u64;
        self.frames += 1;
        let Some(fields) = phoenix::fields(text) else {
            return;
        };
        if fields.event != "shout" {
            return;
        }
        self.shouts += 1;
        let number = seq_of(fields.payload);
        let position = fields.msg_ref.and_then(Position::parse);
        if self.wrong.is_none() {
            let number_ok = number == Some(self.next_number);
            let position_ok = self
                .next_position
                .as_ref()
                .is_none_or(|p| position.as_ref() == Some(p));
            if !number_ok || !position_ok {
                self.wrong = Some(format!(
                    "shout {} expected #{} at {}, got #{} at {}",
                    self.shouts,
                    self.next_number,
                    self.next_position
                        .as_ref()
                        .map_or_else(|| "any position".to_owned(), Position::to_string),
                    number.map_or_else(|| "?".to_owned(), |n| n.to_string()),
                    fields.msg_ref.unwrap_or("null"),
                ));
            }
        }
        self.next_number += 1;
        self.next_position = self.next_position.as_ref().map(|p| p.plus(1));
    }

    /// Joins `topic` (resuming from `since`, if given) and waits for the reply, until `deadline`
    /// or [`STEP_TIMEOUT`], whichever comes first. A shout before the reply is counted and, as
    /// the server promises what a join missed only after its reply, marked wrong.
    pub async fn join(
        &mut self,
        client: &mut Client,
        topic: &str,
        since: Option<&Position>,
        deadline: Instant,
    ) -> Result<JoinAnswer, ClientError> {
        const STEP: &str = "the join reply";
        let (text, join_ref) = client.codec().join_with(topic, &join_params(since));
        client.send(text).await?;
        let deadline = deadline.min(Instant::now() + STEP_TIMEOUT);
        loop {
            let text = match tokio::time::timeout_at(deadline, client.recv()).await {
                Ok(Ok(Some(text))) => text,
                Ok(Ok(None)) => return Err(ClientError::Closed { waiting_for: STEP }),
                Ok(Err(err)) => return Err(err),
                Err(_) => return Err(ClientError::Timeout { waiting_for: STEP }),
            };
            match client.codec().decode(&text) {
                Incoming::Reply {
                    msg_ref,
                    ok,
                    response,
                } if msg_ref == join_ref => {
                    self.bytes += text.len() as u64;
                    self.frames += 1;
                    return if ok {
                        Ok(JoinAnswer::read(response))
                    } else {
                        Err(ClientError::Refused {
                            what: "join",
                            response: response.to_owned(),
                        })
                    };
                }
                _ => {
                    let before = self.shouts;
                    self.take(&text);
                    if self.shouts > before && self.wrong.is_none() {
                        self.wrong = Some("a shout arrived before the join reply".to_owned());
                    }
                }
            }
        }
    }

    /// Reads until `count` shouts have arrived since the reader was made; `false` if `deadline`
    /// came first.
    pub async fn read_shouts(
        &mut self,
        client: &mut Client,
        count: u64,
        deadline: Instant,
    ) -> Result<bool, ClientError> {
        while self.shouts < count {
            match tokio::time::timeout_at(deadline, client.recv()).await {
                Ok(Ok(Some(text))) => self.take(&text),
                Ok(Ok(None)) => {
                    return Err(ClientError::Closed {
                        waiting_for: "the missed broadcasts",
                    });
                }
                Ok(Err(err)) => return Err(err),
                Err(_) => return Ok(false),
            }
        }
        Ok(true)
    }
}

/// What a publisher did.
#[derive(Debug, Clone, Default)]
pub struct Published {
    /// Shouts sent.
    pub sent: u64,
    /// Ok replies.
    pub acked: u64,
    /// Error replies.
    pub refused: u64,
    /// Its own shouts received back (it is a member of the topic too).
    pub echoes: u64,
    /// The position of its last shout, from the `ref` slot of its copy.
    pub last: Option<Position>,
    /// Clock readings (ns) of the first send and of the last reply.
    pub first_ns: u64,
    /// See `first_ns`.
    pub last_ns: u64,
    /// Why it stopped early, if it did.
    pub error: Option<String>,
}

impl Published {
    /// Whether every shout of `count` was answered ok and came back.
    pub fn complete(&self, count: u64) -> bool {
        self.acked == count && self.echoes == count
    }
}

/// Shouts `count` stamped payloads numbered `1..=count` into `topic`, which `client` has joined,
/// with at most [`PUBLISH_WINDOW`] awaiting their reply: as fast as the replies allow, or at
/// `rate` shouts per second. Returns once every shout is answered and its copy came back, or at
/// `deadline`.
pub async fn publish(
    client: &mut Client,
    topic: &str,
    count: u64,
    payload_bytes: usize,
    rate: Option<u32>,
    clock: Clock,
    deadline: Instant,
) -> Published {
    let mut out = Published::default();
    let start = Instant::now();
    let interval = rate.map(|rate| 1.0 / f64::from(rate.max(1)));
    while out.acked + out.refused < count || out.echoes < count {
        let awaiting = out.sent.saturating_sub(out.acked + out.refused);
        let may_send = out.sent < count && awaiting < PUBLISH_WINDOW;
        let received = match interval {
            _ if !may_send => Some(tokio::time::timeout_at(deadline, client.recv()).await),
            None => None,
            Some(interval) => {
                let due = start + Duration::from_secs_f64(out.sent as f64 * interval);
                tokio::select! {
                    () = tokio::time::sleep_until(due) => None,
                    message = tokio::time::timeout_at(deadline, client.recv()) => Some(message),
                }
            }
        };
        let Some(received) = received else {
            let now = clock.now_ns();
            let payload = stamped_payload(now, out.sent + 1, payload_bytes);
            let (text, _) = client.codec().shout(topic, &payload);
            if let Err(err) = client.send(text).await {
                out.error = Some(error_chain(&err));
                break;
            }
            if out.sent == 0 {
                out.first_ns = now;
            }
            out.sent += 1;
            continue;
        };
        let text = match received {
            Ok(Ok(Some(text))) => text,
            Ok(Ok(None)) => {
                out.error = Some("the server closed the connection".to_owned());
                break;
            }
            Ok(Err(err)) => {
                out.error = Some(error_chain(&err));
                break;
            }
            Err(_) => {
                out.error = Some(format!(
                    "{} of {count} shouts answered and {} came back by the deadline",
                    out.acked + out.refused,
                    out.echoes
                ));
                break;
            }
        };
        match client.codec().decode(&text) {
            Incoming::Reply { ok, .. } => {
                if ok {
                    out.acked += 1;
                } else {
                    out.refused += 1;
                }
                out.last_ns = clock.now_ns();
            }
            Incoming::Event { event: "shout", .. } => {
                out.echoes += 1;
                if let Some(position) = phoenix::fields(&text)
                    .and_then(|f| f.msg_ref)
                    .and_then(Position::parse)
                {
                    out.last = Some(position);
                }
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_read_and_step() {
        let p = Position::parse("3f09c1d2a7b4-42").expect("a position");
        assert_eq!((p.epoch.as_str(), p.offset), ("3f09c1d2a7b4", 42));
        assert_eq!(p.plus(3).to_string(), "3f09c1d2a7b4-45");
        assert_eq!(p.minus(50).to_string(), "3f09c1d2a7b4-0");
        for bad in ["42", "-4", "abc-", "abc-+1", "a-b"] {
            assert_eq!(Position::parse(bad), None, "{bad}");
        }
        assert_eq!(join_params(None), "{}");
        assert_eq!(join_params(Some(&p)), r#"{"since":"3f09c1d2a7b4-42"}"#);
    }

    #[test]
    fn join_answers() {
        assert_eq!(
            JoinAnswer::read(r#"{"position":"ab-3","recovered":true}"#),
            JoinAnswer {
                position: Some("ab-3".to_owned()),
                recovered: Some(true)
            }
        );
        assert_eq!(JoinAnswer::read("{}"), JoinAnswer::default());
        assert_eq!(JoinAnswer::read(r#""x""#), JoinAnswer::default());
    }

    fn shout(position: &str, n: u64) -> String {
        phoenix::encode(None, 0, "room:x", "shout", &stamped_payload(1, n, 60)).replacen(
            "\"0\"",
            &format!("\"{position}\""),
            1,
        )
    }

    /// The reader accepts exactly the expected run and names the first shout out of it.
    #[test]
    fn reader_checks_numbers_and_positions() {
        let since = Position::parse("ab-10").expect("a position");
        let mut reader = Reader::new();
        reader.expect(1, Some(&since));
        reader.take(&shout("ab-11", 1));
        reader.take(&shout("ab-12", 2));
        reader.take(r#"[null,"5","phoenix","phx_reply",{"status":"ok","response":{}}]"#);
        assert_eq!(
            (reader.shouts, reader.frames, reader.wrong.clone()),
            (2, 3, None)
        );
        reader.take(&shout("ab-14", 3));
        assert_eq!(
            reader.wrong.as_deref(),
            Some("shout 3 expected #3 at ab-13, got #3 at ab-14")
        );

        let mut reader = Reader::new();
        reader.expect(1, None);
        reader.take(&shout("ab-1", 2));
        assert!(reader.wrong.is_some());
        assert_eq!(seq_of(&stamped_payload(5, 77, 60)), Some(77));
    }
}
