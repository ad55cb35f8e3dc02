//! Resuming a history channel, for the [`Session`](super::Session)'s host (the browser package
//! does the same in JavaScript, `socket.js`).
//!
//! A server topic with history (server/src/history) answers every ok join with a `position`,
//! `"<12 hex digits of epoch>-<offset>"`, and carries each broadcast's position in the frame's
//! ref slot. A channel:
//!
//! | what arrives | what the channel does |
//! |---|---|
//! | ok join reply with `position`, without `recovered: true` | takes that position (a fresh join, or one the server could not resume: the app reloads) |
//! | ok join reply with `recovered: true` | keeps its position: the missed broadcasts follow the reply |
//! | broadcast whose ref is a position of the same epoch, at or before the channel's | dropped: it was had already |
//! | any other broadcast with a position | delivered; its position becomes the channel's |
//! | its next join (a rejoin, or a join after a leave) | sends `since: <position>` merged into its params (a JSON object's), unless they carry a `since` of their own (a live collection's, which knows its position better) |

use serde::Deserialize;

use crate::Payload;

/// A channel's resume state: its last position, once a join reply gave one.
#[derive(Debug, Default)]
pub(super) struct Resume {
    position: Option<String>,
}

/// `(epoch, offset)` of a position, or `None` for anything else.
fn parse(text: &str) -> Option<(&str, u64)> {
    let (epoch, offset) = text.split_once('-')?;
    let hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
    let canonical = offset == "0" || !offset.starts_with('0');
    let digits = !offset.is_empty() && offset.bytes().all(|b| b.is_ascii_digit());
    if epoch.len() != 12 || !epoch.bytes().all(hex) || !canonical || !digits {
        return None;
    }
    Some((epoch, offset.parse().ok()?))
}

/// What a join reply says about history.
#[derive(Deserialize)]
struct JoinReply {
    position: Option<String>,
    recovered: Option<bool>,
}

impl Resume {
    /// The last position.
    pub(super) fn position(&self) -> Option<&str> {
        self.position.as_deref()
    }

    /// An ok join reply's response: returns its `recovered`, if it said.
    pub(super) fn joined(&mut self, response: &Payload) -> Option<bool> {
        let reply: JoinReply = response.deserialize().ok()?;
        let position = reply.position?;
        if reply.recovered != Some(true) {
            self.position = Some(position);
        }
        reply.recovered
    }

    /// Whether a broadcast whose ref slot holds `reference` is new to the channel; a new
    /// position becomes the channel's.
    pub(super) fn fresh(&mut self, reference: Option<&str>) -> bool {
        let (Some(text), Some(last)) = (reference, self.position.as_deref()) else {
            return true;
        };
        let (Some(at), Some(last)) = (parse(text), parse(last)) else {
            return true;
        };
        if at.0 == last.0 && at.1 <= last.1 {
            return false;
        }
        self.position = Some(text.to_owned());
        true
    }

    /// The params of the channel's next join: `params` with `since` once there is a position
    /// and they are a JSON object without a `since` of their own.
    pub(super) fn join_params(&self, params: &Payload) -> Option<Payload> {
        let position = self.position.as_ref()?;
        let mut object: serde_json::Map<String, serde_json::Value> = params.deserialize().ok()?;
        object
            .entry("since")
            .or_insert_with(|| position.clone().into());
        Payload::json(&object).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(text: &str) -> Payload {
        Payload::from_json_str(text).expect("test JSON is valid")
    }

    #[test]
    fn positions_parse_only_in_the_servers_form() {
        assert_eq!(parse("3f09c1d2a7b4-42"), Some(("3f09c1d2a7b4", 42)));
        assert_eq!(parse("3f09c1d2a7b4-0"), Some(("3f09c1d2a7b4", 0)));
        for text in [
            "",
            "42",
            "3f09c1d2a7b4",
            "3f09c1d2a7b4-",
            "3f09c1d2a7b4-01",
            "3F09c1d2a7b4-1",
            "f09c1d2a7b4-1",
        ] {
            assert_eq!(parse(text), None, "{text}");
        }
    }

    #[test]
    fn a_fresh_join_takes_the_position_and_drops_what_it_had() {
        let mut resume = Resume::default();
        assert!(
            resume.fresh(Some("aaaaaaaaaaaa-1")),
            "no position yet: nothing is dropped"
        );
        assert_eq!(
            resume.joined(&json(r#"{"position":"aaaaaaaaaaaa-2"}"#)),
            None
        );
        assert!(!resume.fresh(Some("aaaaaaaaaaaa-2")));
        assert!(resume.fresh(Some("aaaaaaaaaaaa-3")));
        assert!(!resume.fresh(Some("aaaaaaaaaaaa-3")));
        assert!(
            resume.fresh(None),
            "a broadcast without a position is not history's"
        );
        assert_eq!(resume.position(), Some("aaaaaaaaaaaa-3"));
        assert!(resume.fresh(Some("bbbbbbbbbbbb-1")), "another stream");
        assert_eq!(resume.position(), Some("bbbbbbbbbbbb-1"));
    }

    #[test]
    fn a_recovered_join_keeps_the_position_and_an_unrecovered_one_takes_the_new() {
        let mut resume = Resume::default();
        resume.joined(&json(r#"{"position":"aaaaaaaaaaaa-5"}"#));
        let recovered = json(r#"{"position":"aaaaaaaaaaaa-9","recovered":true}"#);
        assert_eq!(resume.joined(&recovered), Some(true));
        assert_eq!(resume.position(), Some("aaaaaaaaaaaa-5"));
        assert!(
            resume.fresh(Some("aaaaaaaaaaaa-6")),
            "the replay follows the reply"
        );
        let lost = json(r#"{"position":"cccccccccccc-3","recovered":false}"#);
        assert_eq!(resume.joined(&lost), Some(false));
        assert_eq!(resume.position(), Some("cccccccccccc-3"));
    }

    #[test]
    fn joins_carry_since_merged_into_object_params() {
        let mut resume = Resume::default();
        assert_eq!(resume.join_params(&json(r#"{"a":1}"#)), None);
        resume.joined(&json(r#"{"position":"aaaaaaaaaaaa-5"}"#));
        let params = resume.join_params(&json(r#"{"a":1}"#)).expect("an object");
        assert_eq!(
            params.as_json(),
            Some(r#"{"a":1,"since":"aaaaaaaaaaaa-5"}"#)
        );
        assert_eq!(
            resume.join_params(&json(r#"{"since":"own"}"#)),
            Some(json(r#"{"since":"own"}"#)),
            "params' own since is kept"
        );
        assert_eq!(
            resume.join_params(&json("[1]")),
            None,
            "not an object: sent as it is"
        );
        assert!(resume.joined(&json(r#"{"other":true}"#)).is_none());
    }
}
