//! [`LiveCollection`]: the rows of a shape served over a channel (`shape:<table>`, the server's
//! `alight_sync::channel`), by key and typed, kept live: the snapshot, then every committed change,
//! and after a reconnect only the changes missed.
//!
//! | from the server | here |
//! |---|---|
//! | join reply `{handle, offset, position, schema?, messages, more}` | a snapshot's first chunk: rows are gathered aside and `more` is pushed until `more: false`; then they replace the rows ([`LiveEvent::Snapshot`]) |
//! | a rejoin's reply with `recovered: true` | its messages (and its `more` chunks') are the changes missed ([`LiveEvent::Changes`] with `recovered: true`) |
//! | a rejoin's reply with `recovered: false` | a fresh snapshot, as above, which replaces the rows |
//! | `changes` `{offset, position, messages}` | applied ([`LiveEvent::Changes`]); one at or before the offset held is a duplicate, dropped |
//! | `refetch`, a `must-refetch` message, a failed `more`, lost events | a new join for a fresh snapshot; the rows stay until it replaces them |
//! | join refused | [`LiveError::Refused`], then the stream ends |
//!
//! A server that resumes by `handle` and `offset` alone answers a rejoin it cannot resume with
//! `refetch: true` (or another handle) instead of `recovered: false`, and asks for a refetch with
//! `changes` `{refetch: true}`; both are understood.
//!
//! The collection rejoins by itself rather than through the channel's own rejoin, because each
//! rejoin carries where the rows held stand (`since`, the last position, and the shape's `handle`
//! and `offset`; `since: null` for a fresh snapshot): when the channel errors (the
//! connection was lost, the channel crashed on the server), the collection leaves it and joins
//! it again with them (sent when the connection is back). While that join is out, `changes`
//! still arriving belong to the join before and are dropped: the reply carries everything after
//! the offset.
//!
//! Messages are Electric's (`{key, value, headers: {operation}}`). An `update` carries the key and
//! the changed columns (`replica` default) or every column (full); it is merged into the row held
//! (serialized back to JSON), so a change's `value` is always the whole row, decoded as `Row`.
//! Values are Electric's text on the wire; with the column types of a reply's `schema` (as
//! Electric's `electric-schema` header) they become numbers, booleans and JSON before decoding.
//! From a server that sends no `schema`, `Row` reads text (`String` fields).
//!
//! Nothing happens unless the collection is polled: it is a [`Stream`] of its events, and
//! [`rows`](LiveCollection::rows) is what the events so far made of the shape.

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use alight_protocol::Payload;
use alight_protocol::client::{ChannelState, StateCause};
use futures_util::Stream;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use thiserror::Error;

use super::channel::{ClientChannel, Message, StateChange};
use super::error::{ClientJoinError, PushError};
use super::reply::ReplyFuture;
use super::socket::ClientSocket;
use super::stream::{Lagged, Subscription};

/// What a [`LiveCollection`] asks for, as Electric's shape request: rows matching a `where`
/// (comparisons of a column with a `$n` parameter or a literal, `IN`, `IS NULL`,
/// `AND`/`OR`/`NOT`), some columns only, whole rows on update.
///
/// ```
/// use alight_client::rust_api::ShapeRequest;
///
/// let request = ShapeRequest::new()
///     .filter("owner = $1 AND done = $2")
///     .params(["alice", "false"])
///     .columns(["id", "title"])
///     .full_replica();
/// # let _ = request;
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShapeRequest {
    filter: Option<String>,
    params: Vec<String>,
    columns: Option<Vec<String>>,
    full: bool,
}

impl ShapeRequest {
    /// Every row the server lets this user read, every readable column.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only the rows matching `condition` (the request's `where`).
    pub fn filter(mut self, condition: impl Into<String>) -> Self {
        self.filter = Some(condition.into());
        self
    }

    /// The values of `$1`, `$2`, … in the filter.
    pub fn params<S: Into<String>>(mut self, params: impl IntoIterator<Item = S>) -> Self {
        self.params = params.into_iter().map(Into::into).collect();
        self
    }

    /// Only these columns (the primary key is always included by the server).
    pub fn columns<S: Into<String>>(mut self, columns: impl IntoIterator<Item = S>) -> Self {
        self.columns = Some(columns.into_iter().map(Into::into).collect());
        self
    }

    /// `replica: "full"`: updates carry every column and the previous values.
    pub fn full_replica(mut self) -> Self {
        self.full = true;
        self
    }

    /// The join params.
    fn to_json(&self) -> Map<String, Value> {
        let mut params = Map::new();
        if let Some(filter) = &self.filter {
            params.insert("where".into(), filter.clone().into());
        }
        if !self.params.is_empty() {
            params.insert("params".into(), self.params.clone().into());
        }
        if let Some(columns) = &self.columns {
            params.insert("columns".into(), columns.clone().into());
        }
        if self.full {
            params.insert("replica".into(), "full".into());
        }
        params
    }
}

/// What a change did to a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// The row entered the shape (inserted, or updated into the filter).
    Insert,
    /// Some of its columns changed.
    Update,
    /// The row left the shape (deleted, or updated out of the filter).
    Delete,
}

/// One change to a [`LiveCollection`]'s rows.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveChange<Row> {
    /// What happened.
    pub operation: Operation,
    /// The row's key: Electric's `"main"."<table>"/"<primary key>"`.
    pub key: String,
    /// The whole row after the change; for a delete, the row as it was.
    pub value: Row,
    /// The row before the change, when one was held.
    pub old: Option<Row>,
}

/// An event of a [`LiveCollection`].
#[derive(Debug, Clone, PartialEq)]
pub enum LiveEvent<Row> {
    /// A snapshot replaced every row: show [`LiveCollection::rows`] afresh.
    Snapshot,
    /// Changes in commit order, already applied to the rows.
    Changes {
        /// The changes.
        changes: Vec<LiveChange<Row>>,
        /// These are the changes missed while the connection was lost, brought by a rejoin that
        /// resumed from the rows held.
        recovered: bool,
    },
}

/// Why a [`LiveCollection`] reports an error. After [`Refused`](Self::Refused) and
/// [`Join`](Self::Join) the stream ends; after the others it goes on.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum LiveError {
    /// The server refused the shape: `reason` is `unauthorized`, `forbidden`, `bad_request` (the
    /// message names what is not supported) or `unavailable` (a limit).
    #[error("the server refused the shape ({reason}): {message}")]
    Refused {
        /// The refusal's reason.
        reason: String,
        /// What the server said about it.
        message: String,
    },
    /// The join failed for another reason: the socket shut down, or another channel of the
    /// same topic was joined.
    #[error("the shape's channel could not be joined")]
    Join(#[source] ClientJoinError),
    /// A row does not decode as the collection's row type; it is left out (or left as it was).
    #[error("the row {key} does not match the collection's row type")]
    Row {
        /// The row's key.
        key: String,
        /// What serde found wrong.
        #[source]
        source: serde_json::Error,
    },
    /// A reply or event of the channel is not the shape protocol (a message without a key);
    /// it is skipped.
    #[error("the server sent a shape message without a key: {0}")]
    Protocol(&'static str),
    /// The collection fell behind the channel's events and lost some; it refetches the shape.
    #[error("events were lost; the shape is fetched again")]
    Lagged(#[source] Lagged),
}

/// Where the rows held stand, and where a rejoin resumes: the shape's `handle` and `offset`,
/// and `since`, the last position the server gave.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Position {
    handle: String,
    offset: String,
    since: Option<String>,
}

impl Position {
    /// Where `part` (a reply or a broadcast of the shape `handle`) leaves the rows.
    fn of(handle: String, part: &Value) -> Position {
        Position {
            handle,
            offset: text_field(part, "offset"),
            since: part
                .get("position")
                .and_then(Value::as_str)
                .map(str::to_owned),
        }
    }
}

/// The offset `<n>_<m>`'s number, to order offsets.
fn offset_number(offset: &str) -> Option<u64> {
    offset.split('_').next()?.parse().ok()
}

/// The answer the collection waits for.
#[derive(Debug)]
enum Pending {
    Join(ReplyFuture<Payload, ClientJoinError>),
    /// The next chunk, of the snapshot of `handle` gathered in `rows` (`None`: of the changes
    /// a recovered rejoin catches up on, applied as they come).
    More {
        reply: ReplyFuture<Payload, PushError>,
        handle: String,
        rows: Option<BTreeMap<String, Value>>,
    },
}

/// The rows of a shape by key, typed as `Row`, kept live over a channel. A [`Stream`] of
/// [`LiveEvent`]s: poll it, and read [`rows`](Self::rows) after each event.
///
/// `Row` is the row's selected columns as serde reads JSON: values are numbers, strings, booleans
/// or null, as the server's column types render. With `#[derive(tsify::Tsify)]` the same struct
/// gives the TypeScript row type of `@alight/client`'s `LiveCollection<Row>`.
///
/// ```
/// # #[cfg(feature = "native")]
/// # async fn items() -> Result<(), Box<dyn std::error::Error>> {
/// use alight_client::native;
/// use alight_client::rust_api::{LiveCollection, LiveEvent, ShapeRequest};
/// use futures_util::StreamExt;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Debug, Clone, Serialize, Deserialize)]
/// struct Item {
///     id: i64,
///     title: String,
///     done: bool,
/// }
///
/// let socket = native::Builder::new("ws://127.0.0.1:4000/socket")
///     .params([("token", "alice")])
///     .build();
/// socket.connect();
/// let mut items = LiveCollection::<Item>::new(&socket, "items", ShapeRequest::new());
/// while let Some(event) = items.next().await {
///     match event? {
///         LiveEvent::Snapshot => println!("{} items", items.rows().len()),
///         LiveEvent::Changes { changes, .. } => {
///             for change in changes {
///                 println!("{:?} {:?}", change.operation, change.value);
///             }
///         }
///     }
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct LiveCollection<Row> {
    channel: ClientChannel,
    request: Map<String, Value>,
    states: Subscription<StateChange>,
    messages: Subscription<Message>,
    pending: Option<Pending>,
    rows: BTreeMap<String, Row>,
    /// Where the rows held stand, once a snapshot is complete.
    at: Option<Position>,
    /// What the join out asked to resume from (`None`: a snapshot).
    asked: Option<Position>,
    /// The shape's column types (`{column: {type}}`), from the latest reply that had them.
    schema: Option<Map<String, Value>>,
    ready: VecDeque<Result<LiveEvent<Row>, LiveError>>,
    ended: bool,
}

// Nothing is pinned in place: the rows and queues live on the heap, and the futures held are
// `Unpin`.
impl<Row> Unpin for LiveCollection<Row> {}

impl<Row: Clone + Serialize + DeserializeOwned> LiveCollection<Row> {
    /// Joins `shape:<table>` on `socket` with `request`. The join is sent at once, or when the
    /// socket connects; the events come by polling the collection.
    pub fn new(socket: &ClientSocket, table: &str, request: ShapeRequest) -> Self {
        let request = request.to_json();
        let channel = socket.channel(format!("shape:{table}"), Payload::empty());
        let mut collection = LiveCollection {
            states: channel.states(),
            messages: channel.events(),
            channel,
            request,
            pending: None,
            rows: BTreeMap::new(),
            at: None,
            asked: None,
            schema: None,
            ready: VecDeque::new(),
            ended: false,
        };
        collection.join();
        collection
    }

    /// The rows by key, as the events so far made them.
    pub fn rows(&self) -> &BTreeMap<String, Row> {
        &self.rows
    }

    /// The row with `key`.
    pub fn get(&self, key: &str) -> Option<&Row> {
        self.rows.get(key)
    }

    /// The channel underneath (its state, its `events()`).
    pub fn channel(&self) -> &ClientChannel {
        &self.channel
    }

    /// (Re)joins, resuming from the rows held if a snapshot is complete.
    fn join(&mut self) {
        let mut params = self.request.clone();
        // `since: null` asks for a fresh snapshot, whatever position the channel holds.
        params.insert("since".into(), Value::Null);
        if let Some(at) = &self.at {
            params.insert("handle".into(), at.handle.clone().into());
            params.insert("offset".into(), at.offset.clone().into());
            if let Some(since) = &at.since {
                params.insert("since".into(), since.clone().into());
            }
        }
        self.asked = self.at.clone();
        let payload = Payload::json(&Value::Object(params))
            .expect("a JSON object of strings always serializes");
        // Closes the channel (errored, or joined on a shape to drop) so that it joins afresh;
        // one never joined has nothing to leave.
        drop(self.channel.leave());
        self.pending = Some(Pending::Join(self.channel.join_with(Some(payload), None)));
    }

    /// Drops the position: the next join takes a fresh snapshot.
    fn refetch(&mut self) {
        self.at = None;
        self.join();
    }

    /// A channel that errored after joining (connection lost, crashed on the server) is joined
    /// again from the rows held; a refused or timed-out join is answered by its reply.
    fn on_state(&mut self, change: StateChange) {
        if change.state == ChannelState::Errored
            && matches!(
                change.cause,
                StateCause::ConnectionLost | StateCause::ServerError(_)
            )
        {
            self.join();
        }
    }

    fn on_join(&mut self, result: Result<Payload, ClientJoinError>) {
        let reply = match result {
            Ok(reply) => reply.deserialize::<Value>().unwrap_or(Value::Null),
            Err(ClientJoinError::Timeout) => return self.join(),
            Err(ClientJoinError::Refused { response, .. }) => {
                let response = response.deserialize::<Value>().unwrap_or(Value::Null);
                let text = |field: &str| {
                    response
                        .get(field)
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned()
                };
                self.ended = true;
                self.ready.push_back(Err(LiveError::Refused {
                    reason: text("reason"),
                    message: text("message"),
                }));
                return;
            }
            Err(other) => {
                self.ended = true;
                self.ready.push_back(Err(LiveError::Join(other)));
                return;
            }
        };
        let handle = text_field(&reply, "handle");
        // `recovered` says whether `since` was resumed; a server without it said so by answering
        // the handle asked for without `refetch`.
        let recovered = match reply.get("recovered").and_then(Value::as_bool) {
            Some(recovered) => recovered,
            None => {
                let refetch = reply.get("refetch").and_then(Value::as_bool) == Some(true);
                self.asked
                    .as_ref()
                    .is_some_and(|asked| asked.handle == handle)
                    && !refetch
            }
        };
        if let Some(Value::Object(schema)) = reply.get("schema") {
            self.schema = Some(schema.clone());
        }
        self.at = None;
        let rows = if recovered {
            None
        } else {
            Some(BTreeMap::new())
        };
        self.chunk(handle, rows, &reply);
    }

    /// Takes a chunk: into the snapshot gathered in `rows`, or, for a recovered rejoin
    /// (`None`), applied as changes. Asks for the next; after the last, the snapshot replaces
    /// the rows.
    fn chunk(&mut self, handle: String, rows: Option<BTreeMap<String, Value>>, part: &Value) {
        let Some(mut rows) = rows else {
            if !self.update(part, true) {
                return;
            }
            if part.get("more").and_then(Value::as_bool) == Some(true) {
                let reply = self.channel.push("more", Payload::empty());
                let rows = None;
                self.pending = Some(Pending::More {
                    reply,
                    handle,
                    rows,
                });
            } else {
                self.at = Some(Position::of(handle, part));
            }
            return;
        };
        let messages = part.get("messages").and_then(Value::as_array);
        for message in messages.into_iter().flatten() {
            match decode(message, self.schema.as_ref()) {
                Decoded::Refetch => return self.refetch(),
                Decoded::Skip => {}
                Decoded::Broken(what) => self.ready.push_back(Err(LiveError::Protocol(what))),
                Decoded::Change(operation, key, value) => {
                    let merged = merge(rows.remove(&key), operation, value);
                    if operation != Operation::Delete {
                        rows.insert(key, merged);
                    }
                }
            }
        }
        if part.get("more").and_then(Value::as_bool).unwrap_or(false) {
            let reply = self.channel.push("more", Payload::empty());
            let rows = Some(rows);
            self.pending = Some(Pending::More {
                reply,
                handle,
                rows,
            });
            return;
        }
        self.rows.clear();
        for (key, value) in rows {
            match serde_json::from_value(value) {
                Ok(row) => {
                    self.rows.insert(key, row);
                }
                Err(source) => self.ready.push_back(Err(LiveError::Row { key, source })),
            }
        }
        self.at = Some(Position::of(handle, part));
        self.ready.push_back(Ok(LiveEvent::Snapshot));
    }

    fn on_message(&mut self, message: Message) {
        if message.event == "refetch" {
            return self.refetch();
        }
        if message.event != "changes" {
            return;
        }
        let payload = message
            .payload
            .deserialize::<Value>()
            .unwrap_or(Value::Null);
        if payload.get("refetch").and_then(Value::as_bool) == Some(true) {
            return self.refetch();
        }
        // During a join, the changes of the join before: its reply brings what follows `at`.
        if matches!(self.pending, Some(Pending::Join(_))) {
            return;
        }
        let Some(at) = &self.at else { return };
        if offset_number(&text_field(&payload, "offset")) <= offset_number(&at.offset) {
            return;
        }
        self.at = Some(Position::of(at.handle.clone(), &payload));
        self.update(&payload, false);
    }

    /// Applies the changes of `payload` to the rows and reports them; false if one asked for a
    /// refetch (which has started).
    fn update(&mut self, payload: &Value, recovered: bool) -> bool {
        let mut changes = Vec::new();
        let messages = payload.get("messages").and_then(Value::as_array);
        for message in messages.into_iter().flatten() {
            let (operation, key, value) = match decode(message, self.schema.as_ref()) {
                Decoded::Refetch => {
                    self.refetch();
                    return false;
                }
                Decoded::Skip => continue,
                Decoded::Broken(what) => {
                    self.ready.push_back(Err(LiveError::Protocol(what)));
                    continue;
                }
                Decoded::Change(operation, key, value) => (operation, key, value),
            };
            let old = self.rows.get(&key).cloned();
            let held = match &old {
                Some(row) => serde_json::to_value(row).ok(),
                None => None,
            };
            if operation == Operation::Delete && old.is_none() {
                continue;
            }
            let row = match serde_json::from_value::<Row>(merge(held, operation, value)) {
                Ok(row) => row,
                Err(source) => {
                    self.ready.push_back(Err(LiveError::Row { key, source }));
                    continue;
                }
            };
            if operation == Operation::Delete {
                self.rows.remove(&key);
            } else {
                self.rows.insert(key.clone(), row.clone());
            }
            changes.push(LiveChange {
                operation,
                key,
                value: row,
                old,
            });
        }
        if !changes.is_empty() || recovered {
            self.ready
                .push_back(Ok(LiveEvent::Changes { changes, recovered }));
        }
        true
    }

    /// Handles what is ready, states first: a state change published before a message is seen
    /// before it (a lost connection before the `changes` of the rejoin that followed).
    fn poll_inputs(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        match Pin::new(&mut self.states).poll_next(cx) {
            Poll::Ready(Some(Ok(change))) => {
                self.on_state(change);
                return Poll::Ready(());
            }
            Poll::Ready(Some(Err(lagged))) => {
                self.ready.push_back(Err(LiveError::Lagged(lagged)));
                self.refetch();
                return Poll::Ready(());
            }
            Poll::Ready(None) => {
                self.ended = true;
                return Poll::Ready(());
            }
            Poll::Pending => {}
        }
        match &mut self.pending {
            Some(Pending::Join(reply)) => {
                if let Poll::Ready(result) = Pin::new(reply).poll(cx) {
                    self.pending = None;
                    self.on_join(result);
                    return Poll::Ready(());
                }
            }
            Some(Pending::More { reply, .. }) => {
                if let Poll::Ready(result) = Pin::new(reply).poll(cx) {
                    if let Some(Pending::More { handle, rows, .. }) = self.pending.take() {
                        match result.map(|part| part.deserialize::<Value>()) {
                            Ok(Ok(part)) => self.chunk(handle, rows, &part),
                            // The snapshot failed or stalled on the server: start again.
                            _ => self.refetch(),
                        }
                    }
                    return Poll::Ready(());
                }
            }
            None => {}
        }
        match Pin::new(&mut self.messages).poll_next(cx) {
            Poll::Ready(Some(Ok(message))) => self.on_message(message),
            Poll::Ready(Some(Err(lagged))) => {
                self.ready.push_back(Err(LiveError::Lagged(lagged)));
                self.refetch();
            }
            Poll::Ready(None) => self.ended = true,
            Poll::Pending => return Poll::Pending,
        }
        Poll::Ready(())
    }
}

impl<Row: Clone + Serialize + DeserializeOwned> Stream for LiveCollection<Row> {
    type Item = Result<LiveEvent<Row>, LiveError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if let Some(event) = this.ready.pop_front() {
                return Poll::Ready(Some(event));
            }
            if this.ended {
                return Poll::Ready(None);
            }
            if this.poll_inputs(cx).is_pending() {
                return Poll::Pending;
            }
        }
    }
}

/// A message of the shape protocol, read: a change's key and its value typed by the schema.
enum Decoded {
    Change(Operation, String, Value),
    /// `must-refetch`: drop the rows and fetch the shape again.
    Refetch,
    /// A control message with nothing to do (`up-to-date`).
    Skip,
    /// Not a message of the protocol.
    Broken(&'static str),
}

fn decode(message: &Value, schema: Option<&Map<String, Value>>) -> Decoded {
    let headers = message.get("headers");
    let header = |name: &str| headers.and_then(|h| h.get(name)).and_then(Value::as_str);
    if header("control") == Some("must-refetch") {
        return Decoded::Refetch;
    }
    let operation = match header("operation") {
        Some("insert") => Operation::Insert,
        Some("update") => Operation::Update,
        Some("delete") => Operation::Delete,
        _ => return Decoded::Skip,
    };
    let Some(key) = message.get("key").and_then(Value::as_str) else {
        return Decoded::Broken("a change without a key");
    };
    match message.get("value") {
        Some(Value::Object(columns)) => {
            let typed = columns
                .iter()
                .map(|(column, value)| (column.clone(), typed(schema, column, value)));
            Decoded::Change(operation, key.to_owned(), Value::Object(typed.collect()))
        }
        _ => Decoded::Broken("a change without a value object"),
    }
}

/// A column's text `value` typed by the schema's `{column: {type}}` (Electric's types, as
/// @electric-sql/client's default parser reads them, but `int8` as a number, as Rust's `i64`
/// reads it); as it is without a schema, and when it does not parse.
fn typed(schema: Option<&Map<String, Value>>, column: &str, value: &Value) -> Value {
    let kind = schema
        .and_then(|s| s.get(column))
        .and_then(|c| c.get("type"))
        .and_then(Value::as_str);
    let (Some(kind), Value::String(text)) = (kind, value) else {
        return value.clone();
    };
    let parsed = if kind == "bool" {
        Some(Value::Bool(text == "true" || text == "t"))
    } else if kind.starts_with("int") {
        text.parse::<i64>().ok().map(Value::from)
    } else if kind.starts_with("float") || kind == "numeric" {
        text.parse::<f64>()
            .ok()
            .and_then(|f| serde_json::Number::from_f64(f).map(Value::Number))
    } else if kind.starts_with("json") {
        serde_json::from_str(text).ok()
    } else {
        None
    };
    parsed.unwrap_or_else(|| value.clone())
}

/// The row after `operation`: an insert's value, or the row `held` with the value's columns
/// over it.
fn merge(held: Option<Value>, operation: Operation, value: Value) -> Value {
    match (operation, held, value) {
        (Operation::Insert, _, value) | (_, None, value) => value,
        (_, Some(Value::Object(mut row)), Value::Object(columns)) => {
            row.extend(columns);
            Value::Object(row)
        }
        (_, Some(_), value) => value,
    }
}

fn text_field(value: &Value, field: &str) -> String {
    value
        .get(field)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn an_update_merges_its_columns_into_the_row_held() {
        let held = json!({"id": 1, "title": "a", "done": false});
        let merged = merge(
            Some(held),
            Operation::Update,
            json!({"id": 1, "done": true}),
        );
        assert_eq!(merged, json!({"id": 1, "title": "a", "done": true}));
    }

    #[test]
    fn messages_decode_as_changes_controls_or_errors() {
        let insert = json!({"key": "k", "value": {"id": 1}, "headers": {"operation": "insert"}});
        assert!(matches!(
            decode(&insert, None),
            Decoded::Change(Operation::Insert, key, _) if key == "k"
        ));
        let refetch = json!({"headers": {"control": "must-refetch"}});
        assert!(matches!(decode(&refetch, None), Decoded::Refetch));
        let up_to_date = json!({"headers": {"control": "up-to-date"}});
        assert!(matches!(decode(&up_to_date, None), Decoded::Skip));
        let keyless = json!({"value": {}, "headers": {"operation": "delete"}});
        assert!(matches!(decode(&keyless, None), Decoded::Broken(_)));
    }

    #[test]
    fn values_are_typed_by_the_schema_and_stay_text_without_one() {
        let schema = json!({
            "id": {"type": "int4", "pk_index": 0}, "big": {"type": "int8"},
            "done": {"type": "bool"}, "price": {"type": "float8"}, "meta": {"type": "json"},
            "title": {"type": "text"}
        });
        let schema = schema.as_object();
        let insert = json!({"key": "k", "headers": {"operation": "insert"}, "value": {
            "id": "7", "big": "9007199254740993", "done": "true", "price": "1.5",
            "meta": "{\"a\":[1]}", "title": "42", "gone": null
        }});
        let Decoded::Change(_, _, value) = decode(&insert, schema) else {
            panic!("an insert decodes as a change");
        };
        assert_eq!(
            value,
            json!({"id": 7, "big": 9007199254740993_i64, "done": true, "price": 1.5,
                   "meta": {"a": [1]}, "title": "42", "gone": null})
        );
        let Decoded::Change(_, _, text) = decode(&insert, None) else {
            panic!("an insert decodes as a change");
        };
        assert_eq!(text["id"], json!("7"));
    }

    #[test]
    fn offsets_order_by_their_number() {
        assert!(offset_number("12_0") > offset_number("9_0"));
        assert_eq!(offset_number("x"), None);
    }

    #[test]
    fn the_request_is_electric_s_join_params() {
        let request = ShapeRequest::new()
            .filter("owner = $1")
            .params(["alice"])
            .columns(["id"])
            .full_replica();
        assert_eq!(
            Value::Object(request.to_json()),
            json!({"where": "owner = $1", "params": ["alice"], "columns": ["id"], "replica": "full"})
        );
        assert_eq!(Value::Object(ShapeRequest::new().to_json()), json!({}));
    }
}
