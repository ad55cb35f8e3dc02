//! [`PresenceView`]: phoenix.js's `Presence` for a channel of the Rust API, over the protocol's
//! [`PresenceSync`].

use std::pin::Pin;
use std::task::{Context, Poll};

use alight_protocol::event::{PRESENCE_DIFF, PRESENCE_STATE};
use alight_protocol::presence::{
    Presence, PresenceDiff, PresenceEvent, PresenceState, PresenceSync,
};
use futures_util::Stream;
use thiserror::Error;

use super::channel::{ClientChannel, Message};
use super::stream::{Lagged, Subscription};

/// Who is on a channel's topic, kept from the server's `presence_state` and `presence_diff`
/// (phoenix.js's `Presence`): [`list`](Self::list) is the current list, and the view is a
/// [`Stream`] of what changed, phoenix.js's `onJoin`, `onLeave` and `onSync` as
/// [`PresenceEvent`]s, in the same order.
///
/// Make it before joining, as phoenix.js's `new Presence(channel)`, so it sees the
/// `presence_state` that follows the join. Diffs that arrive before the state of the channel's
/// current join wait for it, and a rejoin's state replaces the list (with the joins and leaves
/// that makes). The list only changes while the stream is polled: drive it in a task, or poll it
/// before reading.
///
/// ```
/// # async fn example(room: alight_client::rust_api::ClientChannel) {
/// use alight_protocol::presence::PresenceEvent;
/// use futures_util::StreamExt;
///
/// let mut presence = room.presence();
/// room.join();
/// while let Some(event) = presence.next().await {
///     match event {
///         Ok(PresenceEvent::Join { key, current: None, .. }) => println!("{key} arrived"),
///         Ok(PresenceEvent::Sync) => println!("online: {:?}", presence.keys()),
///         Ok(_) => {}
///         Err(error) => eprintln!("{error}"),
///     }
/// }
/// # }
/// ```
#[derive(Debug)]
pub struct PresenceView {
    channel: ClientChannel,
    messages: Subscription<Message>,
    sync: PresenceSync,
}

/// Why a [`PresenceView`] could not apply what the server sent; the view goes on.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum PresenceError {
    /// The view fell behind and messages were dropped: the list may be out of date until the
    /// next `presence_state` (the next rejoin).
    #[error(transparent)]
    Lagged(#[from] Lagged),
    /// A `presence_state` or `presence_diff` payload is not in Phoenix's shape; it was ignored.
    #[error("the server's `{event}` does not have the shape of Phoenix presence")]
    Payload {
        /// `presence_state` or `presence_diff`.
        event: &'static str,
        /// What serde found wrong.
        #[source]
        source: serde_json::Error,
    },
}

impl PresenceView {
    pub(crate) fn new(channel: ClientChannel) -> Self {
        let messages = channel.events();
        PresenceView {
            channel,
            messages,
            sync: PresenceSync::new(),
        }
    }

    /// phoenix.js `list()`: every key with its presence (its metas), by key.
    pub fn list(&self) -> Vec<(&str, &Presence)> {
        self.sync.list()
    }

    /// The keys present, in order.
    pub fn keys(&self) -> Vec<&str> {
        self.sync.list_by(|key, _| key)
    }

    /// The presences, by key.
    pub fn state(&self) -> &PresenceState {
        self.sync.state()
    }

    /// Feeds one presence message; `Err` if its payload is not presence.
    fn apply(&mut self, message: &Message) -> Result<(), PresenceError> {
        // Before a join is out there is no join to key the state to; phoenix.js then reads an
        // undefined join ref, which never matches, and so does this.
        let join_ref = self.channel.join_ref().unwrap_or_default();
        if message.event == PRESENCE_STATE {
            let state = message
                .payload
                .deserialize::<PresenceState>()
                .map_err(|source| PresenceError::Payload {
                    event: PRESENCE_STATE,
                    source,
                })?;
            self.sync.handle_state(&join_ref, state);
        } else if message.event == PRESENCE_DIFF {
            let diff = message
                .payload
                .deserialize::<PresenceDiff>()
                .map_err(|source| PresenceError::Payload {
                    event: PRESENCE_DIFF,
                    source,
                })?;
            self.sync.handle_diff(&join_ref, diff);
        }
        Ok(())
    }
}

impl Stream for PresenceView {
    type Item = Result<PresenceEvent, PresenceError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if let Some(event) = this.sync.poll_event() {
                return Poll::Ready(Some(Ok(event)));
            }
            match Pin::new(&mut this.messages).poll_next(cx) {
                Poll::Ready(Some(Ok(message))) => {
                    if let Err(error) = this.apply(&message) {
                        return Poll::Ready(Some(Err(error)));
                    }
                }
                Poll::Ready(Some(Err(lagged))) => {
                    return Poll::Ready(Some(Err(PresenceError::Lagged(lagged))));
                }
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}
