//! The PubSub wrapper that gives every broadcast of a history topic its position.

use std::sync::Arc;

use alight_protocol::Payload;
use alight_protocol::schema::topic_matches;
use futures_util::FutureExt;
use tracing::{debug, warn};

use super::{History, HistoryError, HistoryStore, StoreFuture};
use crate::broadcast::Broadcast;
use crate::pubsub::{BroadcastError, PubSub};
use crate::registry::ConnId;

use super::store::Delivery;

/// The history settings of each topic family and the store that keeps them.
#[derive(Debug)]
pub(crate) struct Histories {
    /// Every channel pattern in routing order, with its history if it keeps one: a topic belongs
    /// to the first pattern it matches, as it is routed.
    families: Vec<(String, Option<History>)>,
    store: Arc<dyn HistoryStore>,
}

impl Histories {
    pub(crate) fn new(
        families: Vec<(String, Option<History>)>,
        store: Arc<dyn HistoryStore>,
    ) -> Self {
        Histories { families, store }
    }

    /// The family `topic` belongs to, if it keeps history.
    pub(crate) fn family(&self, topic: &str) -> Option<(&str, &History)> {
        let (pattern, history) = self
            .families
            .iter()
            .find(|(pattern, _)| topic_matches(pattern, topic))?;
        Some((pattern.as_str(), history.as_ref()?))
    }

    pub(crate) fn store(&self) -> &Arc<dyn HistoryStore> {
        &self.store
    }

    /// Whether no family keeps history.
    pub(crate) fn is_empty(&self) -> bool {
        self.families.iter().all(|(_, history)| history.is_none())
    }
}

/// A [`PubSub`] whose broadcasts on history topics go through the history store, which positions
/// and keeps them and passes them on to the inner PubSub in position order.
#[derive(Debug)]
pub(crate) struct Sequenced {
    inner: Arc<dyn PubSub>,
    histories: Arc<Histories>,
}

impl Sequenced {
    pub(crate) fn new(inner: Arc<dyn PubSub>, histories: Arc<Histories>) -> Self {
        Sequenced { inner, histories }
    }
}

impl PubSub for Sequenced {
    fn broadcast(&self, message: Arc<Broadcast>, except: Option<ConnId>) {
        let Some((family, history)) = self.histories.family(&message.frame().topic) else {
            self.inner.broadcast(message, except);
            return;
        };
        let delivery = Delivery::new(self.inner.clone(), except);
        let mut appended = self
            .histories
            .store()
            .append(family, history, message, delivery);
        // The in-memory store answers at once; a store over the network finishes on its own
        // (it delivers in position order either way).
        match (&mut appended).now_or_never() {
            Some(Ok(_)) => {}
            Some(Err(err)) => not_kept(&err),
            None => {
                tokio::spawn(async move {
                    if let Err(err) = appended.await {
                        not_kept(&err);
                    }
                });
            }
        }
    }

    fn try_broadcast(
        &self,
        message: Arc<Broadcast>,
        except: Option<ConnId>,
    ) -> StoreFuture<'static, Result<(), BroadcastError>> {
        let Some((family, history)) = self.histories.family(&message.frame().topic) else {
            return self.inner.try_broadcast(message, except);
        };
        let delivery = Delivery::new(self.inner.clone(), except);
        let appended = self
            .histories
            .store()
            .append(family, history, message, delivery);
        Box::pin(async move {
            match appended.await {
                Ok(_) => Ok(()),
                // Delivered as it was, without a position.
                Err(HistoryError::AlreadyEncoded) => Ok(()),
                Err(err) => Err(BroadcastError::NotKept(err)),
            }
        })
    }

    fn push_to_socket(&self, socket_id: &str, topic: &str, event: &str, payload: Payload) {
        self.inner.push_to_socket(socket_id, topic, event, payload);
    }

    fn disconnect(&self, socket_id: &str) {
        self.inner.disconnect(socket_id);
    }

    fn keeps_history(&self, topic: &str) -> bool {
        self.histories.family(topic).is_some()
    }

    // The adapter's own hooks pass through: history wraps the adapter, it does not replace it.
    fn attach_presence(&self, presence: &crate::Presence) {
        self.inner.attach_presence(presence);
    }

    fn degraded(&self) -> Option<String> {
        self.inner.degraded()
    }

    fn encode_metrics(&self, out: &mut String) {
        self.inner.encode_metrics(out);
    }
}

/// Logs a broadcast its store refused: an unavailable store says so in its own log, once per
/// outage, so each refused broadcast is only a debug line.
fn not_kept(err: &HistoryError) {
    match err {
        HistoryError::Unavailable(_) => debug!(error = %err, "broadcast not kept in history"),
        _ => warn!(error = %err, "broadcast not kept in history"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::InMemoryHistory;

    #[test]
    fn a_topic_keeps_the_history_of_the_channel_it_is_routed_to() {
        let histories = Histories::new(
            vec![
                ("room:lobby".to_owned(), None),
                ("room:*".to_owned(), Some(History::last(10))),
            ],
            Arc::new(InMemoryHistory::new()),
        );
        assert!(histories.family("room:lobby").is_none());
        assert_eq!(histories.family("room:1").map(|(p, _)| p), Some("room:*"));
        assert!(histories.family("other").is_none());
        assert!(!histories.is_empty());
        let none = Histories::new(
            vec![("room:*".to_owned(), None)],
            Arc::new(InMemoryHistory::new()),
        );
        assert!(none.is_empty());
    }
}
