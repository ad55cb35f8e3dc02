//! Topic patterns → channel implementations.
//!
//! A pattern is an exact topic (`lobby`) or a prefix ending in `*` (`room:*` matches `room:1` and
//! `room:` too). The first registered pattern that matches wins, as in a Phoenix socket module.

use std::sync::Arc;

use alight_protocol::schema::topic_matches;

use crate::channel::DynChannel;

#[derive(Default)]
pub(crate) struct ChannelRouter {
    routes: Vec<(String, Arc<dyn DynChannel>)>,
}

impl std::fmt::Debug for ChannelRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.routes.iter().map(|(pattern, _)| pattern))
            .finish()
    }
}

impl ChannelRouter {
    pub(crate) fn add(&mut self, pattern: String, handler: Arc<dyn DynChannel>) {
        self.routes.push((pattern, handler));
    }

    pub(crate) fn route(&self, topic: &str) -> Option<&Arc<dyn DynChannel>> {
        self.routes
            .iter()
            .find(|(pattern, _)| topic_matches(pattern, topic))
            .map(|(_, handler)| handler)
    }
}
