//! Reserved event and topic names of the Phoenix protocol.
//!
//! Applications may use any other event name; these carry meaning for the channel runtime.

/// Client → server: join a topic; the payload is the join params.
pub const JOIN: &str = "phx_join";
/// Client → server: leave a topic.
pub const LEAVE: &str = "phx_leave";
/// Server → client: the answer to a message that carried a `ref`.
pub const REPLY: &str = "phx_reply";
/// Server → client: the channel crashed; the client should rejoin.
pub const ERROR: &str = "phx_error";
/// Server → client: the channel closed (after a leave, or when replaced by a duplicate join).
pub const CLOSE: &str = "phx_close";
/// Client → server on [`PHOENIX_TOPIC`]: keep-alive; answered with an ok reply.
pub const HEARTBEAT: &str = "heartbeat";
/// The socket-level topic that carries heartbeats.
pub const PHOENIX_TOPIC: &str = "phoenix";

/// Server → client: the whole presence list of a topic, pushed to one channel after its join
/// (`{key: {metas: [...]}}`); see [`presence`](crate::presence).
pub const PRESENCE_STATE: &str = "presence_state";
/// Server → client: who joined and left a topic's presence (`{joins, leaves}`), broadcast.
pub const PRESENCE_DIFF: &str = "presence_diff";

/// Whether `event` is one of Phoenix's presence events, which a presence list consumes and
/// typed event streams leave out.
pub fn is_presence(event: &str) -> bool {
    matches!(event, PRESENCE_STATE | PRESENCE_DIFF)
}

/// Reply status for success.
pub const STATUS_OK: &str = "ok";
/// Reply status for failure.
pub const STATUS_ERROR: &str = "error";

/// Whether `event` is one of the `phx_*` events reserved by the protocol.
pub fn is_reserved(event: &str) -> bool {
    matches!(event, JOIN | LEAVE | REPLY | ERROR | CLOSE)
}
