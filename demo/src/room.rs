//! `room:<name>`: the demo's chat rooms, and the stable contract that tests and benchmarks drive.
//!
//! | client sends | server does |
//! |---|---|
//! | `phx_join` with `{}` (or any params without `name`) | joins (ok `{"position": p}`, the room's position), untracked: no presence entry, no `presence_state` |
//! | `phx_join` with `{"name": "..."}` | tracks the name (trimmed) in the room's presence with meta `{"online_at": <ms>}`, pushes `presence_state`, joins (ok `{"position": p}`); a name that is not a string of 1 to [`MAX_NAME_CHARS`] characters (after trimming, without control characters) is refused with `{"reason": "..."}` |
//! | `phx_join` with `{"since": "<position>"}` | as above, and the reply also says `"recovered"`: what the member missed follows it (see [`history`]) |
//! | `shout` with any payload | broadcasts `shout` with the same payload to every member, sender included; replies ok `{}` |
//! | `ping` with any payload | replies ok with the payload as the response |
//! | anything else | replies error `{"reason":"unknown event"}` |
//!
//! Rooms keep history ([`history`]): every `shout` carries its position in the frame's `ref`, and
//! every ok join reply carries the room's current `"position"`.
//!
//! Every member, named or not, receives the room's `presence_diff` broadcasts. Anonymous joins stay
//! as cheap as before presence existed (load tests join thousands of them): they are not tracked
//! and get no `presence_state`. One name joined from several tabs is one key with a meta per tab;
//! it leaves the list when its last channel ends. Names are what the client says: the demo does
//! not check them against a login.

use std::time::Duration;

use alight_protocol::Payload;
use alight_server::{Channel, Context, HandleIn, History, JoinError};
use serde_json::{Value, json};

use crate::store::now_ms;

/// The longest name a member may join with, in characters (as long as the longest user id, which
/// the demo page joins with).
pub const MAX_NAME_CHARS: usize = 64;

/// What a room keeps so that a member who was away resumes with every message it missed: the
/// last 1,000 broadcasts for at least 5 minutes, all of them within the replay limit. A join with
/// `{"since": "<position>"}` (the `ref` of the last broadcast it saw) is answered with
/// `"recovered": true` and what it missed, or `"recovered": false` (see
/// [`alight_server::history`]).
pub fn history() -> History {
    History::last(1_000).for_at_least(Duration::from_secs(300))
}

/// The `room:*` channel.
#[derive(Debug, Clone, Copy, Default)]
pub struct Room;

/// The name a join asks to be tracked under: `None` for an anonymous join.
///
/// Params that are not a JSON object (or carry `"name": null`) are anonymous, as before presence.
fn requested_name(params: &Payload) -> Result<Option<String>, String> {
    let Ok(Value::Object(params)) = params.deserialize::<Value>() else {
        return Ok(None);
    };
    let name = match params.get("name") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(name)) => name.trim(),
        Some(_) => return Err("name must be a string".to_owned()),
    };
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(format!("name must be 1 to {MAX_NAME_CHARS} characters"));
    }
    if name.chars().any(char::is_control) {
        return Err("name must not contain control characters".to_owned());
    }
    Ok(Some(name.to_owned()))
}

impl Channel for Room {
    type State = ();

    async fn join(
        &self,
        params: Payload,
        ctx: &mut Context<'_>,
    ) -> Result<((), Payload), JoinError> {
        if let Some(name) = requested_name(&params).map_err(|why| JoinError::reason(&why))? {
            ctx.track(&name, &json!({ "online_at": now_ms() }))
                .map_err(|err| JoinError::reason(&err.to_string()))?;
            ctx.push_presence_state();
        }
        Ok(((), Payload::empty()))
    }

    async fn handle_in(
        &self,
        event: &str,
        payload: Payload,
        _state: &mut (),
        ctx: &mut Context<'_>,
    ) -> HandleIn {
        match event {
            "shout" => {
                ctx.broadcast("shout", payload);
                HandleIn::ok(Payload::empty())
            }
            "ping" => HandleIn::ok(payload),
            _ => HandleIn::error_reason("unknown event"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name_of(params: &str) -> Result<Option<String>, String> {
        requested_name(&Payload::from_json_str(params).expect("test params are JSON"))
    }

    #[test]
    fn names() {
        assert_eq!(name_of("{}"), Ok(None));
        assert_eq!(name_of(r#"{"name":null}"#), Ok(None));
        assert_eq!(name_of("[1]"), Ok(None));
        assert_eq!(
            name_of(r#"{"name":" alice "}"#),
            Ok(Some("alice".to_owned()))
        );
        let longest = "é".repeat(MAX_NAME_CHARS);
        assert_eq!(
            name_of(&format!(r#"{{"name":"{longest}"}}"#)),
            Ok(Some(longest.clone()))
        );
        for bad in [
            r#"{"name":""}"#,
            r#"{"name":"   "}"#,
            r#"{"name":7}"#,
            r#"{"name":"a\u0007b"}"#,
        ] {
            assert!(name_of(bad).is_err(), "{bad}");
        }
        assert!(name_of(&format!(r#"{{"name":"{longest}x"}}"#)).is_err());
        assert!(requested_name(&Payload::Binary(vec![1].into())).is_ok());
    }
}
