//! A history topic's join: reading `since` from its params, what the store recovered, and the
//! `position` and `recovered` of its reply.

use std::sync::Arc;

use alight_protocol::Payload;
use serde::Deserialize;
use serde_json::value::RawValue;
use tracing::{debug, warn};

use super::store::{Outcome, Recovery};
use super::{History, HistoryStore, MAX_POSITION_LEN, Position, PositionError};
use crate::broadcast::Broadcast;

/// The `since` of a join's params.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Since {
    /// None given (or `null`): a fresh join.
    Absent,
    /// A string, and whether it is a position.
    Given(Result<Position, PositionError>),
    /// Something other than a string, or params that are not readable.
    WrongType,
}

#[derive(Deserialize)]
struct Params<'a> {
    #[serde(borrow, default)]
    since: Option<&'a RawValue>,
}

impl Since {
    /// Reads `since` from join params without trusting them: nothing here fails.
    pub(crate) fn read(params: &Payload) -> Since {
        let Some(json) = params.as_json() else {
            return Since::Absent;
        };
        if !json.starts_with('{') {
            return Since::Absent;
        }
        let Ok(Params { since }) = serde_json::from_str::<Params<'_>>(json) else {
            return Since::WrongType;
        };
        let Some(raw) = since.map(RawValue::get) else {
            return Since::Absent;
        };
        if !raw.starts_with('"') {
            return Since::WrongType;
        }
        // The quotes, and room for escapes, are not worth reading past.
        if raw.len() > MAX_POSITION_LEN + 2 {
            return Since::Given(Err(PositionError::TooLong));
        }
        match serde_json::from_str::<String>(raw) {
            Ok(text) => Since::Given(text.parse()),
            Err(_) => Since::WrongType,
        }
    }
}

/// What a history topic's join tells its client and replays to it.
#[derive(Debug, Default)]
pub(crate) struct Resume {
    /// The topic's position when the join subscribed (none if the store failed).
    position: Option<Position>,
    /// Whether the `since` was recovered; `None` when there was none.
    recovered: Option<bool>,
    /// What the client missed, in order.
    replay: Vec<Arc<Broadcast>>,
}

impl Resume {
    /// Asks the store about `topic` for a join with `params`. Call it after subscribing.
    pub(crate) async fn read(
        store: &dyn HistoryStore,
        (family, history): (&str, &History),
        topic: &str,
        params: &Payload,
    ) -> Resume {
        let since = Since::read(params);
        let asked = match &since {
            Since::Given(Ok(position)) => Some(*position),
            _ => None,
        };
        let recovery = store.recover(family, history, topic, asked).await;
        let Ok(Recovery { position, outcome }) = recovery.inspect_err(|err| {
            warn!(%topic, error = %err, "history not read for a join");
        }) else {
            return Resume {
                recovered: (since != Since::Absent).then_some(false),
                ..Resume::default()
            };
        };
        let (recovered, replay) = match (since, outcome) {
            (Since::Absent, _) => (None, Vec::new()),
            (Since::Given(Ok(_)), Outcome::Recovered(replay)) => (Some(true), replay),
            (Since::Given(Ok(_)), Outcome::Lost(lost)) => {
                debug!(%topic, reason = %lost, "not recovered");
                (Some(false), Vec::new())
            }
            (since, _) => {
                debug!(%topic, ?since, "not recovered: not a position");
                (Some(false), Vec::new())
            }
        };
        Resume {
            position: Some(position),
            recovered,
            replay,
        }
    }

    /// Whether the join's `since` was recovered; `None` when it had none.
    pub(crate) fn recovered(&self) -> Option<bool> {
        self.recovered
    }

    /// Where the client stands once it has the reply and the replay: queued broadcasts at or
    /// before it are ones it has (see [`skips`]).
    pub(crate) fn through(&self) -> Option<Position> {
        self.position
    }

    /// The broadcasts to replay after the reply, in order.
    pub(crate) fn take_replay(&mut self) -> Vec<Arc<Broadcast>> {
        std::mem::take(&mut self.replay)
    }

    /// The channel's ok response with `"position"` and `"recovered"` added (last, so that they win
    /// over keys of the same name). A response that is not a JSON object is sent as it is.
    pub(crate) fn response(&self, response: Payload) -> Payload {
        let Some(json) = response.as_json() else {
            return response;
        };
        let Some(body) = json.strip_suffix('}').filter(|_| json.starts_with('{')) else {
            return response;
        };
        let mut fields = Vec::new();
        if let Some(position) = self.position {
            fields.push(format!(r#""position":"{position}""#));
        }
        if let Some(recovered) = self.recovered {
            fields.push(format!(r#""recovered":{recovered}"#));
        }
        if fields.is_empty() {
            return response;
        }
        let separator = if body.trim_end() == "{" { "" } else { "," };
        let text = format!("{body}{separator}{}}}", fields.join(","));
        Payload::from_json_str(&text).unwrap_or(response)
    }
}

/// Whether a queued `broadcast` is one the client already has, being at or before `through`
/// (the position its join read). The first later one clears `through`: broadcasts arrive in
/// position order, so none after it can be old.
pub(crate) fn skips(through: &mut Option<Position>, broadcast: &Broadcast) -> bool {
    let Some(mark) = *through else {
        return false;
    };
    // Broadcasts outside the history (presence diffs) pass, and say nothing about the others.
    let Some(position) = broadcast
        .encoded()
        .position()
        .and_then(|p| p.parse::<Position>().ok())
    else {
        return false;
    };
    if position.epoch == mark.epoch && position.offset <= mark.offset {
        return true;
    }
    *through = None;
    false
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::history::Epoch;

    fn params(json: &str) -> Payload {
        Payload::from_json_str(json).expect("valid JSON")
    }

    #[test]
    fn since_is_read_from_any_params_without_failing() {
        let at = Position::new(Epoch::from_bits(7), 3);
        assert_eq!(Since::read(&params("{}")), Since::Absent);
        assert_eq!(Since::read(&params(r#"{"since":null}"#)), Since::Absent);
        assert_eq!(Since::read(&params("[1]")), Since::Absent);
        assert_eq!(
            Since::read(&Payload::Binary(bytes::Bytes::from_static(b"x"))),
            Since::Absent
        );
        assert_eq!(
            Since::read(&params(&format!(r#"{{"since":"{at}","x":1}}"#))),
            Since::Given(Ok(at))
        );
        assert_eq!(Since::read(&params(r#"{"since":3}"#)), Since::WrongType);
        assert_eq!(
            Since::read(&params(r#"{"since":{"a":1}}"#)),
            Since::WrongType
        );
        assert_eq!(
            Since::read(&params(r#"{"since":"1","since":"2"}"#)),
            Since::WrongType
        );
        assert_eq!(
            Since::read(&params(r#"{"since":"nope"}"#)),
            Since::Given(Err(PositionError::Malformed))
        );
        let long = format!(r#"{{"since":"{}"}}"#, "a".repeat(10_000));
        assert_eq!(
            Since::read(&params(&long)),
            Since::Given(Err(PositionError::TooLong))
        );
    }

    #[test]
    fn the_reply_gets_position_and_recovered_last() {
        let at = Position::new(Epoch::from_bits(0xab), 9);
        let resume = Resume {
            position: Some(at),
            recovered: Some(true),
            replay: Vec::new(),
        };
        let merged = resume.response(params(r#"{"user":"a","position":"x"}"#));
        let value: serde_json::Value = merged.deserialize().expect("JSON");
        assert_eq!(value["user"], "a");
        assert_eq!(value["position"], at.to_string());
        assert_eq!(value["recovered"], true);
        let empty = resume.response(Payload::empty());
        assert_eq!(
            empty.as_json(),
            Some(r#"{"position":"0000000000ab-9","recovered":true}"#)
        );
        let array = params("[1]");
        assert_eq!(resume.response(array.clone()), array);
    }

    #[test]
    fn queued_broadcasts_up_to_the_joins_position_are_skipped() {
        let epoch = Epoch::from_bits(1);
        let at = |offset| {
            let b = alight_protocol::SharedBroadcast::new("room:a", "n", Payload::empty());
            b.set_position(Position::new(epoch, offset).to_string());
            Broadcast::from_shared(b)
        };
        let mut through = Some(Position::new(epoch, 5));
        let diff = Broadcast::new("room:a", "presence_diff", Payload::empty());
        assert!(!skips(&mut through, &diff));
        assert!(skips(&mut through, &at(4)));
        assert!(skips(&mut through, &at(5)));
        assert!(!skips(&mut through, &at(6)));
        assert_eq!(through, None);
        assert!(!skips(&mut through, &at(3)));
    }

    proptest! {
        #[test]
        fn any_params_read_without_panicking(text in ".{0,100}") {
            let json = serde_json::json!({ "since": text }).to_string();
            let _ = Since::read(&params(&json));
            if let Ok(payload) = Payload::from_json_str(&text) {
                let _ = Since::read(&payload);
            }
        }
    }
}
