//! Topic patterns → channel implementations.
//!
//! A pattern is an exact topic (`lobby`) or a prefix ending in `*` (`room:*` matches `room:1` and
//! `room:` too). The first registered pattern that matches wins, as in a Phoenix socket module.

use std::sync::Arc;

use alight_protocol::Payload;
use alight_protocol::schema::{Events, Schema, SchemaError, topic_matches};

use crate::channel::DynChannel;

/// Whether an event and payload are one of a schema's `Out` events: what a broadcast from outside
/// the channel (`POST /api/broadcast`) must be on a typed channel's topics.
pub(crate) type OutCheck = fn(&str, &Payload) -> Result<(), SchemaError>;

/// The [`OutCheck`] of schema `S`.
pub(crate) fn out_check<S: Schema>(event: &str, payload: &Payload) -> Result<(), SchemaError> {
    S::Out::from_parts(event, payload).map(drop)
}

#[derive(Default)]
pub(crate) struct ChannelRouter {
    routes: Vec<(String, Arc<dyn DynChannel>, Option<OutCheck>)>,
}

impl std::fmt::Debug for ChannelRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.routes.iter().map(|(pattern, ..)| pattern))
            .finish()
    }
}

impl ChannelRouter {
    pub(crate) fn add(
        &mut self,
        pattern: String,
        handler: Arc<dyn DynChannel>,
        check: Option<OutCheck>,
    ) {
        self.routes.push((pattern, handler, check));
    }

    pub(crate) fn route(&self, topic: &str) -> Option<&Arc<dyn DynChannel>> {
        self.routes
            .iter()
            .find(|(pattern, ..)| topic_matches(pattern, topic))
            .map(|(_, handler, _)| handler)
    }

    /// The schema check of the channel that serves `topic`, if that channel is typed.
    pub(crate) fn out_check(&self, topic: &str) -> Option<OutCheck> {
        self.routes
            .iter()
            .find(|(pattern, ..)| topic_matches(pattern, topic))
            .and_then(|(.., check)| *check)
    }
}
