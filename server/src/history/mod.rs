//! Topic history: positions, resume, and the store behind them.
//!
//! A topic family configured with a [`History`] keeps its broadcasts, each with a [`Position`]
//! (an epoch and an offset that grows by one per broadcast). Every broadcast on such a topic gets
//! its position on its way into the PubSub, from a channel, `POST /api/broadcast` or any
//! [`PubSub`](crate::PubSub) call alike, and carries it in the `ref` slot of its V2 JSON and V1
//! frames, so that phoenix.js hands it to `channel.on(event, (payload, ref) => …)`.
//!
//! The wire and join behaviour is documented on [`History`], the public entry.
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
pub use store::{Delivery, HistoryError, HistoryStore, Lost, Outcome, Recovery, StoreFuture};

pub(crate) use resume::{Resume, skips};
pub(crate) use sequenced::{Histories, Sequenced};
