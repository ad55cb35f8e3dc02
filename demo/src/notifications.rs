//! `notifications:<user_id>`: a user's commands on their notifications (mark read, mark all read,
//! delete), and an event per change for socket clients that do not sync the table. The wire
//! contract is in the docs of `alight_demo_schema`.
//!
//! [`Notifications`] is the typed channel, and also what the HTTP API calls to create one. The
//! rows themselves reach the page as a shape (`shape:notifications`, see [`crate::shapes`]): its
//! snapshot, its changes, and resuming after a disconnect are `alight_sync`'s, so this channel
//! reads no rows. Every event is published from inside its [`Store::call`], after the commit: the
//! store's lock orders the events of a topic as the commits (see [`store`](crate::store)).

use std::sync::Arc;

use alight_demo_schema::{
    Deleted, JoinNotifications, Notification, NotificationsIn, NotificationsJoined,
    NotificationsOut, NotificationsSchema, Read, Unread, topic, user_of_topic,
};
use alight_protocol::schema::Events;
use alight_server::{Broadcast, JoinError, PubSub};
use alight_server::{TypedChannel, TypedContext, TypedReply};
use tracing::{error, warn};

use crate::store::{Delete, MarkRead, Store, StoreError, now_ms};
use crate::token::User;

/// The `notifications:*` channel and the operations the HTTP API shares with it. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Notifications {
    store: Store,
}

/// One joined `notifications:<user_id>` channel.
#[derive(Debug)]
pub struct Joined {
    /// The user whose topic this is (and whose token the socket carries).
    user_id: String,
}

/// What a client is told when the store fails; the details go to the log.
const STORAGE_ERROR: &str = "storage error";

impl Notifications {
    /// The channel over `store`.
    pub fn new(store: Store) -> Self {
        Notifications { store }
    }

    /// Stores a notification for `user_id` from `sender` and broadcasts it on
    /// `notifications:<user_id>`.
    ///
    /// The caller has validated the fields.
    pub async fn create(
        &self,
        pubsub: Arc<dyn PubSub>,
        user_id: String,
        sender: String,
        title: String,
        body: String,
    ) -> Result<Notification, StoreError> {
        self.store
            .call(move |db| {
                let notification = db.insert(&user_id, &sender, &title, &body, now_ms())?;
                publish(
                    &pubsub,
                    &user_id,
                    &NotificationsOut::Notification(notification.clone()),
                );
                Ok(notification)
            })
            .await
    }
}

/// Broadcasts `event` on `notifications:<user_id>` to every socket, the sender's included.
fn publish(pubsub: &Arc<dyn PubSub>, user_id: &str, event: &NotificationsOut) {
    match event.to_parts() {
        Ok((name, payload)) => {
            pubsub.broadcast(
                Arc::new(Broadcast::new(topic(user_id), name, payload)),
                None,
            );
        }
        Err(err) => warn!(error = %err, "notification event not encoded"),
    }
}

fn storage_error(err: &StoreError) {
    // As a `dyn Error`, the log line carries the whole chain of causes.
    error!(
        error = err as &(dyn std::error::Error + 'static),
        "notification store failed"
    );
}

impl TypedChannel for Notifications {
    type Schema = NotificationsSchema;
    type State = Joined;

    async fn join(
        &self,
        _params: JoinNotifications,
        ctx: &mut TypedContext<'_, '_, NotificationsSchema>,
    ) -> Result<(Joined, NotificationsJoined), JoinError> {
        let user_id = user_of_topic(ctx.topic()).unwrap_or_default().to_owned();
        let authorized = ctx
            .untyped()
            .socket()
            .assign::<User>()
            .is_some_and(|user| user.id() == user_id);
        if !authorized {
            return Err(JoinError::reason("unauthorized"));
        }
        let owner = user_id.clone();
        let unread = self
            .store
            .call(move |db| db.unread(&owner))
            .await
            .map_err(|err| {
                storage_error(&err);
                JoinError::reason(STORAGE_ERROR)
            })?;
        Ok((Joined { user_id }, NotificationsJoined { unread }))
    }

    async fn handle_in(
        &self,
        event: NotificationsIn,
        joined: &mut Joined,
        ctx: &mut TypedContext<'_, '_, NotificationsSchema>,
    ) -> TypedReply<Unread> {
        let pubsub = ctx.untyped().pubsub().clone();
        let user_id = joined.user_id.clone();
        let result = match event {
            NotificationsIn::MarkRead { id } => {
                self.store
                    .call(move |db| {
                        let outcome = db.mark_read(&user_id, id, now_ms())?;
                        if let MarkRead::Marked { unread } = outcome {
                            let read = Read::ids(vec![id], unread);
                            publish(&pubsub, &user_id, &NotificationsOut::Read(read));
                        }
                        Ok(match outcome {
                            MarkRead::NotFound => None,
                            MarkRead::Marked { unread } | MarkRead::AlreadyRead { unread } => {
                                Some(unread)
                            }
                        })
                    })
                    .await
            }
            NotificationsIn::MarkAllRead => {
                self.store
                    .call(move |db| {
                        if db.mark_all_read(&user_id, now_ms())? > 0 {
                            publish(&pubsub, &user_id, &NotificationsOut::Read(Read::all(0)));
                        }
                        Ok(Some(0))
                    })
                    .await
            }
            NotificationsIn::Delete { id } => {
                self.store
                    .call(move |db| match db.delete(&user_id, id)? {
                        Delete::NotFound => Ok(None),
                        Delete::Deleted { unread } => {
                            let deleted = NotificationsOut::Deleted(Deleted { id, unread });
                            publish(&pubsub, &user_id, &deleted);
                            Ok(Some(unread))
                        }
                    })
                    .await
            }
        };
        match result {
            Ok(Some(unread)) => TypedReply::Ok(Unread { unread }),
            Ok(None) => TypedReply::Error("not found".to_owned()),
            Err(err) => {
                storage_error(&err);
                TypedReply::Error(STORAGE_ERROR.to_owned())
            }
        }
    }
}
