//! Topic history: positions, resume, and the store behind them.
//!
//! A topic family configured with a [`History`] keeps its broadcasts, each with a [`Position`]
//! (an epoch and an offset that grows by one per broadcast). Every broadcast on such a topic gets
//! its position on its way into the PubSub, from a channel, `POST /api/broadcast` or any
//! [`PubSub`](crate::PubSub) call alike, and carries it in the `ref` slot of its V2 JSON and V1
//! frames, so that phoenix.js hands it to `channel.on(event, (payload, ref) => …)`.
//!
//! | join params | reply response gets | then |
//! |---|---|---|
//! | no `since` (or `null`) | `"position"`: the topic's current position | every later broadcast |
//! | `"since": p`, history covers it | `"position"`, `"recovered": true` | every broadcast after `p` (replayed as ordinary broadcasts, in order), then live ones, none twice |
//! | `"since"` not a string, longer than [`MAX_POSITION_LEN`], garbled, of another epoch, ahead of the topic, dropped already, or more than the replay limit behind | `"position"`, `"recovered": false` | every later broadcast; the application reloads its state |
//!
//! The join of a history topic is subscribed before the channel's `join` runs and reads the
//! topic's position right then: what is broadcast while `join` runs follows the reply.
//!
//! # Layout
//! - `position`: [`Position`] and its string form.
//! - `config`: [`History`], what a family keeps.
//! - `store`: the [`HistoryStore`] trait a backend implements, and its answers.
//! - `memory`: [`InMemoryHistory`], the store of a single node.
//! - `sequenced`: the PubSub wrapper that positions every broadcast of a history topic.
//! - `resume`: reading `since` from join params, and the reply's `position`/`recovered`.

mod config;
mod memory;
mod position;
mod resume;
mod sequenced;
mod store;

pub use config::History;
pub use memory::InMemoryHistory;
pub use position::{Epoch, MAX_POSITION_LEN, Position, PositionError};
pub use store::{BoxFuture, Delivery, HistoryError, HistoryStore, Lost, Outcome, Recovery};

pub(crate) use resume::{Resume, skips};
pub(crate) use sequenced::{Histories, Sequenced};
