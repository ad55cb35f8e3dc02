//! The counter app's schema, shared by its server and its Rust clients: one crate that both
//! depend on, so a mismatch between them is a compile error.
//!
//! `counter:<name>` topics hold a number. A member joins with their name, pushes
//! [`CounterIn::Add`] and gets the new [`Total`] back; everyone on the topic receives
//! [`CounterOut::Changed`]. Who is on the topic travels as Phoenix presence, beside these events.
//!
//! ```
//! use alight_protocol::schema::{Events, Schema};
//! use counter_schema::{CounterIn, CounterSchema};
//!
//! assert!(CounterSchema::matches_topic("counter:lobby"));
//! let (event, payload) = CounterIn::Add { by: 2 }.to_parts()?;
//! assert_eq!((event.as_str(), payload.as_json()), ("add", Some(r#"{"by":2}"#)));
//! # Ok::<(), alight_protocol::schema::SchemaError>(())
//! ```
#![warn(missing_docs)]

use alight_protocol::schema::Schema;
use serde::{Deserialize, Serialize};

/// The `counter:*` topic family.
#[derive(Debug)]
pub struct CounterSchema;

impl Schema for CounterSchema {
    const TOPIC: &'static str = "counter:*";
    type JoinParams = JoinCounter;
    type JoinReply = Total;
    type In = CounterIn;
    type Reply = Total;
    type Out = CounterOut;
}

/// What a member joins with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinCounter {
    /// Shown to the other members (the presence key).
    pub name: String,
}

/// The counter's value: the join reply, and the reply to every push.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Total {
    /// The value now.
    pub value: u64,
}

alight_protocol::events! {
    /// Client → server.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum CounterIn {
        /// Adds `by` to the counter.
        Add {
            /// How much to add.
            by: u64,
        },
        /// Sets the counter back to zero.
        Reset,
    }
}

alight_protocol::events! {
    /// Server → every member of the topic.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum CounterOut {
        /// The counter changed.
        Changed {
            /// Its new value.
            value: u64,
            /// Who changed it (a member's name, or `api` for `POST /api/broadcast`).
            by: String,
        },
    }
}

/// The presence meta the server tracks for each member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Milliseconds since the Unix epoch when the member joined.
    pub online_at: u64,
}
