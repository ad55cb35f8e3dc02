//! The demo's notification types, declared once for its server, the browser client and TypeScript.
//!
//! The database is the source of truth: every notification is a row first. Clients read the rows
//! as a shape (`shape:notifications` over the socket, or `GET /v1/shape?table=notifications`,
//! see `alight_sync`), which brings the list, read marks and deletes, whoever wrote them, and
//! resumes after a disconnect without losing anything. `notifications:<user_id>` carries the
//! user's commands (mark read, mark all read, delete) and, for socket clients that do not sync
//! the table, an event per insert, read mark and delete.
//!
//! # Layout
//! - [`NotificationsSchema`]: the `notifications:*` topic family as an `alight_protocol::schema::Schema`:
//!   [`JoinNotifications`] → [`NotificationsJoined`], [`NotificationsIn`] → [`Unread`],
//!   [`NotificationsOut`].
//! - [`Notification`]: one stored notification, as every message carries it.
//! - The HTTP API's bodies: [`LoginRequest`] → [`LoginResponse`], [`NewNotification`] →
//!   [`NotificationCreated`], and [`ApiError`] for every refusal.
//! - Names and limits: [`topic`], [`user_of_topic`], [`is_valid_user_id`], [`MAX_TITLE_CHARS`],
//!   [`MAX_BODY_CHARS`].
//!
//! # Wire contract of `notifications:<user_id>`
//! | client sends | server does |
//! |---|---|
//! | `phx_join` `{}` on a socket whose token names `<user_id>` | ok [`NotificationsJoined`] `{"unread": n}`; any other socket gets error `{"reason":"unauthorized"}` |
//! | `mark_read` `{"id": 42}` | marks it read; ok `{"unread": n}`; broadcasts `read` `{"ids":[42],"unread":n}` if it was unread; error `{"reason":"not found"}` for an id of no notification of this user |
//! | `mark_all_read` `{}` | marks every one read; ok `{"unread": 0}`; broadcasts `read` `{"all":true,"unread":0}` if any was unread |
//! | `delete` `{"id": 42}` | deletes it; ok `{"unread": n}`; broadcasts `deleted` `{"id":42,"unread":n}`; error `{"reason":"not found"}` for an id of no notification of this user |
//!
//! | server sends (broadcast to every socket of the user) | when |
//! |---|---|
//! | `notification` [`Notification`] | a row was inserted (`POST /api/notifications` or the demo's form) |
//! | `read` [`Read`] | some were marked read, from any tab |
//! | `deleted` [`Deleted`] | one was deleted, from any tab |
//!
//! Broadcasts on a topic leave in the order of the database's commits. They say nothing of rows
//! written around the server (the `sqlite3` shell); the shape does.
//!
//! ```
//! use alight_demo_schema::{Notification, NotificationsIn, NotificationsOut, Read};
//! use alight_protocol::Payload;
//! use alight_protocol::schema::Events;
//!
//! let (event, payload) = NotificationsOut::Read(Read::ids(vec![42], 3)).to_parts()?;
//! assert_eq!(event, "read");
//! assert_eq!(payload.as_json(), Some(r#"{"ids":[42],"unread":3}"#));
//!
//! let push = NotificationsIn::from_parts("mark_read", &Payload::from_json_str(r#"{"id":42}"#)?)?;
//! assert_eq!(push, NotificationsIn::MarkRead { id: 42 });
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs)]

use alight_protocol::schema::{Schema, SerdeEvents, subtopic};
use serde::{Deserialize, Serialize};

/// The longest user id, in bytes (user ids are ASCII).
pub const MAX_USER_ID_LEN: usize = 64;
/// The longest title, in characters.
pub const MAX_TITLE_CHARS: usize = 200;
/// The longest body, in characters.
pub const MAX_BODY_CHARS: usize = 4000;

/// The prefix of every notification topic.
const TOPIC_PREFIX: &str = "notifications:";

/// `notifications:<user_id>`.
pub fn topic(user_id: &str) -> String {
    format!("{TOPIC_PREFIX}{user_id}")
}

/// The user id of a `notifications:<user_id>` topic, if it is one.
///
/// ```
/// assert_eq!(alight_demo_schema::user_of_topic("notifications:alice"), Some("alice"));
/// assert_eq!(alight_demo_schema::user_of_topic("room:alice"), None);
/// ```
pub fn user_of_topic(topic: &str) -> Option<&str> {
    subtopic(NotificationsSchema::TOPIC, topic)
}

/// Whether `user_id` is 1 to [`MAX_USER_ID_LEN`] ASCII letters, digits, `_` or `-` (so that it
/// fits in a topic, a socket id and a token without escaping).
pub fn is_valid_user_id(user_id: &str) -> bool {
    (1..=MAX_USER_ID_LEN).contains(&user_id.len())
        && user_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// One notification, as stored and as every message carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(tsify::Tsify))]
pub struct Notification {
    /// Its row id: unique, never reused, growing with each insert.
    pub id: i64,
    /// A short headline.
    pub title: String,
    /// The text.
    pub body: String,
    /// When it was stored, in milliseconds since the Unix epoch.
    pub inserted_at: i64,
    /// Whether the user has marked it read (in any tab).
    pub read: bool,
    /// Who sent it: the user whose login token created it, or what a service with the API key
    /// named (`"system"` when it named none).
    #[serde(default)]
    pub sender: String,
}

/// The params of `phx_join`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(tsify::Tsify))]
pub struct JoinNotifications {}

/// The response of a successful join.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(tsify::Tsify))]
pub struct NotificationsJoined {
    /// How many of the user's notifications are unread.
    pub unread: u32,
}

/// Client → server pushes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(tsify::Tsify))]
#[serde(tag = "event", content = "payload", rename_all = "snake_case")]
pub enum NotificationsIn {
    /// Marks one notification read.
    MarkRead {
        /// The notification's id.
        id: i64,
    },
    /// Marks every notification of the user read.
    MarkAllRead,
    /// Deletes one notification.
    Delete {
        /// The notification's id.
        id: i64,
    },
}
impl SerdeEvents for NotificationsIn {}

/// The response to a successful [`NotificationsIn`] push.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(tsify::Tsify))]
pub struct Unread {
    /// How many of the user's notifications are still unread.
    pub unread: u32,
}

/// Server → client events, broadcast to every socket of the user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(tsify::Tsify))]
#[serde(tag = "event", content = "payload", rename_all = "snake_case")]
pub enum NotificationsOut {
    /// A new notification was stored.
    Notification(Notification),
    /// Notifications were marked read (in this tab or another).
    Read(Read),
    /// A notification was deleted (in this tab or another).
    Deleted(Deleted),
}

/// A deleted notification, with the unread count that followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(tsify::Tsify))]
pub struct Deleted {
    /// The id of the notification deleted.
    pub id: i64,
    /// How many of the user's notifications are unread now.
    pub unread: u32,
}
impl SerdeEvents for NotificationsOut {}

/// What was marked read: some `ids`, or `all`; with the unread count that followed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(tsify::Tsify))]
pub struct Read {
    /// The ids now read (absent when `all`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ids: Vec<i64>,
    /// Every notification stored before this event is now read.
    #[serde(default, skip_serializing_if = "is_false")]
    pub all: bool,
    /// How many are unread after this change.
    pub unread: u32,
}

impl Read {
    /// `{"ids": ids, "unread": unread}`.
    pub fn ids(ids: Vec<i64>, unread: u32) -> Self {
        Read {
            ids,
            all: false,
            unread,
        }
    }

    /// `{"all": true, "unread": unread}`.
    pub fn all(unread: u32) -> Self {
        Read {
            ids: Vec::new(),
            all: true,
            unread,
        }
    }
}

fn is_false(value: &bool) -> bool {
    !value
}

/// The `notifications:*` topic family.
#[derive(Debug, Clone, Copy, Default)]
pub struct NotificationsSchema;

impl Schema for NotificationsSchema {
    const TOPIC: &'static str = "notifications:*";
    type JoinParams = JoinNotifications;
    type JoinReply = NotificationsJoined;
    type In = NotificationsIn;
    type Reply = Unread;
    type Out = NotificationsOut;
}

/// `POST /api/login`: the demo's login, which only names the user (there is no password).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(tsify::Tsify))]
pub struct LoginRequest {
    /// Who to log in as (see [`is_valid_user_id`]).
    pub user_id: String,
}

/// The answer to [`LoginRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(tsify::Tsify))]
pub struct LoginResponse {
    /// The user logged in.
    pub user_id: String,
    /// The signed token naming the user: give it to phoenix.js as `authToken` (or as the
    /// `token` param), and to `POST /api/notifications` as `Authorization: Bearer <token>`.
    pub token: String,
}

/// `POST /api/notifications`: stores a notification for `user_id` and broadcasts it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(tsify::Tsify))]
pub struct NewNotification {
    /// The recipient (see [`is_valid_user_id`]).
    pub user_id: String,
    /// A short headline: 1 to [`MAX_TITLE_CHARS`] characters, not only spaces.
    pub title: String,
    /// The text: at most [`MAX_BODY_CHARS`] characters (may be empty).
    #[serde(default)]
    pub body: String,
    /// Who sends it, for a service with the API key (see [`is_valid_user_id`]; `"system"` when
    /// absent). A logged-in user always sends as themselves; this is then ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<String>,
}

/// The answer to [`NewNotification`] (HTTP 201).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(tsify::Tsify))]
pub struct NotificationCreated {
    /// The recipient.
    pub user_id: String,
    /// What was stored and broadcast.
    pub notification: Notification,
}

/// The body of every refused HTTP API call (4xx, 5xx).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(tsify::Tsify))]
pub struct ApiError {
    /// What went wrong, for a person to read.
    pub error: String,
}

#[cfg(test)]
mod tests {
    use alight_protocol::Payload;
    use alight_protocol::schema::{Events, SchemaError};

    use super::*;

    fn json(text: &str) -> Payload {
        Payload::from_json_str(text).expect("test payloads are valid JSON")
    }

    fn notification(id: i64) -> Notification {
        Notification {
            id,
            title: "Hi".into(),
            body: "there".into(),
            inserted_at: 1_700_000_000_000,
            read: false,
            sender: "bob".into(),
        }
    }

    #[test]
    fn topics_and_user_ids() {
        assert_eq!(topic("alice"), "notifications:alice");
        assert_eq!(user_of_topic("notifications:alice"), Some("alice"));
        assert_eq!(user_of_topic("notifications:"), Some(""));
        assert_eq!(user_of_topic("notification:alice"), None);
        assert!(NotificationsSchema::matches_topic("notifications:42"));
        for good in ["alice", "42", "a_b-C", &"x".repeat(MAX_USER_ID_LEN)] {
            assert!(is_valid_user_id(good), "{good}");
        }
        for bad in [
            "",
            "a b",
            "a:b",
            "a.b",
            "é",
            &"x".repeat(MAX_USER_ID_LEN + 1),
        ] {
            assert!(!is_valid_user_id(bad), "{bad}");
        }
    }

    #[test]
    fn join_params_accept_phoenix_defaults() {
        let empty: JoinNotifications = json("{}").deserialize().expect("decodes");
        assert_eq!(empty, JoinNotifications {});
        // An older page's `last_seen_id` is ignored, not refused.
        let old: JoinNotifications = json(r#"{"last_seen_id":41}"#)
            .deserialize()
            .expect("decodes");
        assert_eq!(old, JoinNotifications {});
    }

    #[test]
    fn wire_shapes() {
        let cases = [
            (
                NotificationsOut::Notification(notification(7)),
                "notification",
                r#"{"id":7,"title":"Hi","body":"there","inserted_at":1700000000000,"read":false,"sender":"bob"}"#,
            ),
            (
                NotificationsOut::Read(Read::ids(vec![1, 2], 5)),
                "read",
                r#"{"ids":[1,2],"unread":5}"#,
            ),
            (
                NotificationsOut::Read(Read::all(0)),
                "read",
                r#"{"all":true,"unread":0}"#,
            ),
            (
                NotificationsOut::Deleted(Deleted { id: 3, unread: 1 }),
                "deleted",
                r#"{"id":3,"unread":1}"#,
            ),
        ];
        for (value, event, payload) in cases {
            let (name, encoded) = value.to_parts().expect("encodes");
            assert_eq!((name.as_str(), encoded.as_json()), (event, Some(payload)));
            let decoded = NotificationsOut::from_parts(event, &json(payload)).expect("decodes");
            assert_eq!(decoded, value);
        }
        assert_eq!(
            NotificationsIn::from_parts("mark_all_read", &json("{}")).expect("decodes"),
            NotificationsIn::MarkAllRead
        );
        let err = NotificationsIn::from_parts("mark_read", &json(r#"{"id":"x"}"#))
            .expect_err("a string id is refused");
        assert!(matches!(err, SchemaError::Payload { .. }));
    }

    #[test]
    fn new_notification_body_defaults_to_empty() {
        let new: NewNotification =
            serde_json::from_str(r#"{"user_id":"bob","title":"Hi"}"#).expect("decodes");
        assert_eq!(new.body, "");
    }

    #[cfg(feature = "ts")]
    mod ts {
        use tsify::Tsify;

        use super::super::*;

        #[test]
        fn declarations() {
            assert!(
                NotificationsOut::DECL
                    .contains(r#"{ event: "notification"; payload: Notification }"#),
                "{}",
                NotificationsOut::DECL
            );
            assert!(
                NotificationsIn::DECL.contains(r#"{ event: "mark_all_read" }"#),
                "{}",
                NotificationsIn::DECL
            );
        }
    }
}
