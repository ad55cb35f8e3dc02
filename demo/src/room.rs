//! `room:<name>`: the demo's chat rooms, and the stable contract that tests and benchmarks drive.
//!
//! | client sends | server does |
//! |---|---|
//! | `phx_join` with `{}` or `{"name": "..."}` | joins (ok `{}`) |
//! | `shout` with any payload | broadcasts `shout` with the same payload to every member, sender included; replies ok `{}` |
//! | `ping` with any payload | replies ok with the payload as the response |
//! | anything else | replies error `{"reason":"unknown event"}` |

use alight_server::{Channel, Context, HandleIn, JoinError, Payload};

/// The `room:*` channel.
#[derive(Debug, Clone, Copy, Default)]
pub struct Room;

impl Channel for Room {
    type State = ();

    async fn join(
        &self,
        _params: Payload,
        _ctx: &mut Context<'_>,
    ) -> Result<((), Payload), JoinError> {
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
