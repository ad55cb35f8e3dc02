//! Shapes over channels: join `shape:<table>` with the HTTP API's request fields; the join reply
//! carries the first chunk of the snapshot, the client pulls the rest with `more`, then the
//! shape's changes arrive as `changes` broadcasts with positions, and a rejoin resumes from the
//! last position as history topics do (`since` in, `position` and `recovered` out; see
//! `alight_server::History`).
//!
//! # Wire contract
//! Every `messages` array holds Electric's messages, exactly as `GET /v1/shape` sends them (see
//! [`crate::message`]): `{key, value, old_value?, headers: {operation, relation, lsn, ...}}`,
//! `operation` one of `insert`, `update`, `delete`; apply them in array order. Snapshot rows
//! are `insert`s. An `update` carries the key and the changed columns (`replica: "default"`) or
//! the whole row and `old_value` (`"full"`); a `delete` carries the key (and the row with `full`).
//!
//! | client → server | server → client |
//! |---|---|
//! | `phx_join` `shape:<table>` `{where?, params?, columns?, replica?, since?}` | ok `{handle, offset, position, recovered?, schema?, messages, more}` (`schema`, the column types as the `electric-schema` header has them, in every reply that starts a fresh snapshot), or error `{reason, message}` (below) |
//! | `more` `{}` (only while the last reply said `more: true`) | ok `{handle, offset, position, messages, more}`: the next chunk; error `{reason: "snapshot_failed", message}`: the snapshot broke (or the client took longer than `Config::snapshot_stall_timeout` to ask): join again without `since` |
//! | | broadcast `changes` `{handle, from, to, offset, position, messages}` with `position` also in the frame's `ref` slot: committed changes of this shape, whole transactions, in commit order (`from`/`to`: the change-log ids the broadcast spans; `offset` is `to` as Electric writes it) |
//! | | broadcast `refetch` `{handle}`: the shape's log is gone (the server rotated it, or its log passed its bound): leave, drop the rows, join again (with `since`: the reply says `recovered: false` and brings a fresh snapshot) |
//!
//! Join params: `where` (the filter subset of `GET /v1/shape`, e.g. `"done = $1"`), `params` (an
//! array, `$1` first, or an object by number `{"1": "x"}`; strings, numbers or booleans),
//! `columns` (an array or `"id,title"`; must include the primary key), `replica`
//! (`"default"` or `"full"`), `since` (a position from an earlier reply or broadcast of this
//! shape; absent or `null` for a fresh join). The server adds the table's authorization filter
//! for the socket's identity: no params reach another user's rows.
//!
//! Join reply:
//! - `recovered` is absent without `since`. `recovered: true`: `since` was resumed; `messages` are
//!   the changes after it (keep your rows and apply them). `recovered: false`: `since` could not
//!   be resumed (another shape, a rotated handle, older than the log holds, garbled): `messages`
//!   start a fresh snapshot; drop your rows first.
//! - `more: true`: the snapshot (or catch-up) continues: push `more` until a reply says
//!   `more: false`. No `changes` broadcast reaches the client in between; the last chunk
//!   carries what was committed meanwhile. Each chunk holds at most
//!   `Config::snapshot_chunk_rows` rows (and about `Config::snapshot_chunk_bytes`) or
//!   `Config::max_chunk_changes` changes (more only to keep a transaction whole).
//! - `position` is `"<epoch>-<n>"`, the form of `alight_server::Position`: the epoch is the
//!   shape's handle, `n` the change-log id the client is complete up to. Send the last one you
//!   got (reply, `more` reply, or broadcast `ref`) as `since` when you rejoin. While a snapshot is
//!   being paged (`more: true` after a fresh snapshot's chunk), `position` is one that cannot be
//!   resumed (its epoch is not the shape's): a rejoin then starts over with `recovered: false`.
//!   Positions of one epoch grow; a broadcast at or before the position you hold is one you have.
//! - `handle` and `offset` are the shape's Electric handle and offset (`<n>_0`), with which the
//!   same shape can be continued over `GET /v1/shape`.
//!
//! Join errors (`reason`): `unauthorized` (the table needs an identity and the socket has none),
//! `forbidden` (the authorization hook refused), `bad_request` (unknown table or column,
//! unsupported `where`, bad `params`/`columns`/`replica`; `message` says which), `unavailable`
//! (`Config::max_shapes` live shapes that all have subscribers, or
//! `Config::max_subscribers_per_shape` subscribers on this shape: retry later), `snapshot_failed`
//! (the database failed).
//!
//! # How changes reach each subscriber, bounded and per shape
//! The topic's subscribers may hold different shapes (one per user, say), so changes are not
//! simply broadcast to the topic: one task per live shape waits on the shape's wakeups (see
//! [`crate::index`]) and broadcasts `changes` tagged with its handle and the offsets it spans;
//! the channel intercepts `changes` and each subscriber receives only its own shape's, without
//! the messages it already has. A snapshot is streamed from its read transaction one chunk per
//! `more`, so no frame and no server buffer holds more than a chunk or two.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use alight_protocol::{Payload, SharedBroadcast};
use alight_server::{
    Broadcast, Channel, Context, Epoch, HandleIn, JoinError, Outgoing, Position, PubSub, Socket,
};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::db::{Chunk, ServeError, ShapeOrLimit, SnapshotPart, SyncDb};
use crate::http::query::Offset;
use crate::live_shapes::{Shape, Subscription};
use crate::shape::{Replica, ShapeError, ShapeRequest, parse_columns};
use crate::table::{Denied, Identity};
use crate::value::SqlValue;

type IdentifySocket = dyn Fn(&Socket) -> Option<Identity> + Send + Sync;

/// The `shape:*` channel over a [`SyncDb`].
///
/// ```no_run
/// use alight_server::Alight;
/// use alight_sync::{Identity, SyncDb, channel::ShapeChannel};
/// # fn build(db: SyncDb) {
/// let alight = Alight::builder()
///     .channel("shape:*", ShapeChannel::new(db, |socket| socket.assign::<Identity>().cloned()))
///     .build();
/// # let _ = alight;
/// # }
/// ```
#[derive(Clone)]
pub struct ShapeChannel {
    db: SyncDb,
    identify: Arc<IdentifySocket>,
    /// The shapes whose broadcasting task runs, by handle. Joins add (and start the task), the
    /// task removes itself under this lock when its shape has no subscriber left.
    senders: Arc<Mutex<HashMap<String, ()>>>,
}

impl std::fmt::Debug for ShapeChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShapeChannel").finish_non_exhaustive()
    }
}

/// What a joined channel still sends before it is live.
#[derive(Debug)]
enum Paging {
    /// The rest of a snapshot, streamed from its read transaction.
    Snapshot {
        rx: mpsc::Receiver<Chunk>,
        /// The part read ahead of the client's next `more` (`Some(None)`: the snapshot stopped).
        ahead: Option<Option<Chunk>>,
    },
    /// Changes from the feed, a chunk per `more`, until the client is at the feed's head.
    Changes,
}

/// One joined `shape:<table>`.
#[derive(Debug)]
pub struct Joined {
    shape: Arc<Shape>,
    /// The client has everything up to this change-log id (once `paging` is done).
    offset: i64,
    /// `Some` while the client must pull with `more`; broadcasts are held back meanwhile.
    paging: Option<Paging>,
    _subscription: Subscription,
}

#[derive(Debug, Default, Deserialize)]
struct JoinParams {
    #[serde(rename = "where")]
    where_: Option<String>,
    params: Option<Value>,
    columns: Option<Value>,
    replica: Option<String>,
    since: Option<Value>,
}

/// Where a `changes` broadcast belongs: its shape and the change-log ids it spans.
#[derive(Debug, PartialEq, Eq)]
struct Route {
    handle: String,
    from: i64,
    to: i64,
}

impl Route {
    /// Reads the route from the head of a `changes` payload. The sender writes it first, so the
    /// messages behind it are not parsed for subscribers that take the payload as it is.
    fn read(payload: &Payload) -> Option<Route> {
        let json = payload.as_json()?;
        let rest = json.strip_prefix(r#"{"handle":""#)?;
        let (handle, rest) = rest.split_once('"')?;
        let rest = rest.strip_prefix(r#","from":"#)?;
        let (from, rest) = rest.split_once(',')?;
        let rest = rest.strip_prefix(r#""to":"#)?;
        let (to, _) = rest.split_once(',')?;
        Some(Route {
            handle: handle.to_owned(),
            from: from.parse().ok()?,
            to: to.parse().ok()?,
        })
    }
}

/// The epoch of `handle`'s positions: a hash of the handle (handles are never reused).
fn epoch_bits(handle: &str) -> u64 {
    // FNV-1a: stable across builds and platforms, unlike `DefaultHasher`.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in handle.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    // Even, so that `^ 1` (a paged snapshot's epoch) never names a shape.
    hash & !1
}

/// The position "complete up to change-log id `n`" of the shape `handle`.
pub fn position(handle: &str, n: i64) -> String {
    Position::new(Epoch::from_bits(epoch_bits(handle)), n.max(0) as u64).to_string()
}

/// The position of a snapshot still being paged: of an epoch no shape has, so never resumed.
fn paging_position(handle: &str) -> String {
    Position::new(Epoch::from_bits(epoch_bits(handle) ^ 1), 0).to_string()
}

/// The change-log id of `since` if it is a position of the shape `handle`.
fn resumable(since: &Value, handle: &str) -> Option<i64> {
    let position: Position = since.as_str()?.parse().ok()?;
    if position.epoch != Epoch::from_bits(epoch_bits(handle)) {
        return None;
    }
    i64::try_from(position.offset).ok()
}

fn refuse(reason: &str, message: impl std::fmt::Display) -> JoinError {
    JoinError::with_response(payload(
        &json!({"reason": reason, "message": message.to_string()}),
    ))
}

fn payload(value: &Value) -> Payload {
    Payload::json(value).expect("a serde_json::Value always serializes")
}

fn request(table: &str, params: &JoinParams) -> Result<ShapeRequest, JoinError> {
    let bad = |message: &str| refuse("bad_request", message);
    let text = |v: &Value| match v {
        Value::String(s) => Some(SqlValue::Text(s.clone())),
        Value::Number(n) => Some(SqlValue::Text(n.to_string())),
        Value::Bool(b) => Some(SqlValue::Text(b.to_string())),
        _ => None,
    };
    let values = match &params.params {
        None => Vec::new(),
        Some(Value::Array(items)) => {
            if items.len() > 100 {
                return Err(bad("at most 100 params"));
            }
            items
                .iter()
                .map(|v| text(v).ok_or_else(|| bad("params must be strings or numbers")))
                .collect::<Result<_, _>>()?
        }
        Some(Value::Object(map)) => {
            let mut by_number: Vec<(usize, SqlValue)> = Vec::new();
            for (k, v) in map {
                let n = k.parse::<usize>().ok().filter(|n| (1..=100).contains(n));
                let n = n.ok_or_else(|| bad("params keys must be 1 to 100"))?;
                by_number.push((
                    n,
                    text(v).ok_or_else(|| bad("params must be strings or numbers"))?,
                ));
            }
            let mut values =
                vec![SqlValue::Null; by_number.iter().map(|(n, _)| *n).max().unwrap_or(0)];
            for (n, v) in by_number {
                values[n - 1] = v;
            }
            values
        }
        Some(_) => return Err(bad("params must be an array or an object by number")),
    };
    let columns = match &params.columns {
        None => None,
        Some(Value::String(s)) => Some(parse_columns(s).map_err(|e| bad(&e.to_string()))?),
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| bad("columns must be names"))
                })
                .collect::<Result<_, _>>()?,
        ),
        Some(_) => return Err(bad("columns must be an array or a comma-separated string")),
    };
    let replica = match params.replica.as_deref() {
        None | Some("default") => Replica::Default,
        Some("full") => Replica::Full,
        Some(_) => return Err(bad("replica must be default or full")),
    };
    Ok(ShapeRequest {
        table: table.to_owned(),
        where_: params.where_.clone(),
        params: values,
        columns,
        replica,
    })
}

fn join_error(err: ShapeOrLimit) -> JoinError {
    match err {
        ShapeOrLimit::Limit(limit) => refuse("unavailable", limit),
        ShapeOrLimit::Shape(ShapeError::Denied(Denied::Unauthenticated)) => {
            refuse("unauthorized", "authentication required")
        }
        ShapeOrLimit::Shape(ShapeError::Denied(denied)) => refuse("forbidden", denied),
        ShapeOrLimit::Shape(err) => refuse("bad_request", err),
    }
}

/// The messages of a snapshot chunk (`message,` text, as the HTTP body streams it).
fn chunk_messages(chunk: &[u8]) -> Vec<Value> {
    let mut text = Vec::with_capacity(chunk.len() + 2);
    text.push(b'[');
    text.extend_from_slice(chunk.strip_suffix(b",").unwrap_or(chunk));
    text.push(b']');
    serde_json::from_slice(&text).expect("the snapshot writes each message as JSON")
}

/// The change-log id of an Electric change message (its `lsn` header).
fn lsn(message: &Value) -> Option<i64> {
    message.get("headers")?.get("lsn")?.as_str()?.parse().ok()
}

impl ShapeChannel {
    /// The channel over `db`; `identify` finds a socket's identity (from its assigns, say).
    pub fn new(
        db: SyncDb,
        identify: impl Fn(&Socket) -> Option<Identity> + Send + Sync + 'static,
    ) -> ShapeChannel {
        ShapeChannel {
            db,
            identify: Arc::new(identify),
            senders: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Starts the broadcasting task of `shape` on `topic` unless it runs.
    fn ensure_sender(&self, shape: &Arc<Shape>, topic: &str, pubsub: &Arc<dyn PubSub>) {
        let mut senders = self.senders.lock().unwrap_or_else(PoisonError::into_inner);
        if senders.contains_key(&shape.handle) {
            return;
        }
        senders.insert(shape.handle.clone(), ());
        let task = Sender {
            db: self.db.clone(),
            shape: shape.clone(),
            topic: topic.to_owned(),
            pubsub: pubsub.clone(),
            senders: self.senders.clone(),
        };
        tokio::spawn(task.run());
    }

    /// The next chunk for a client that is paging, and whether more follow. A snapshot's chunk
    /// is read with the one after it (to know whether there is one), so at most two are held;
    /// once the snapshot is done, chunks of changes follow until the client is at the feed's
    /// head. `Err` when the snapshot failed or stalled, or the feed dropped changes the client
    /// still needed: it must join again.
    async fn next_chunk(&self, state: &mut Joined) -> Result<(Vec<Value>, bool), ServeError> {
        let mut messages = Vec::new();
        if let Some(Paging::Snapshot { rx, ahead }) = &mut state.paging {
            let current = match ahead.take() {
                Some(part) => part,
                None => rx.recv().await,
            };
            match current {
                Some(Ok(SnapshotPart::Rows(chunk))) => {
                    messages = chunk_messages(&chunk);
                    match rx.recv().await {
                        Some(Ok(SnapshotPart::End)) => {}
                        other => {
                            *ahead = Some(other);
                            return Ok((messages, true));
                        }
                    }
                }
                Some(Ok(SnapshotPart::End)) => {}
                Some(Err(err)) => {
                    state.paging = None;
                    return Err(err);
                }
                None => {
                    state.paging = None;
                    return Err(ServeError::Incomplete);
                }
            }
        }
        // The snapshot (if any) is complete: the changes committed since, a chunk at a time.
        let Some((changes, next)) = self.db.changes_since(&state.shape, state.offset) else {
            state.paging = None;
            return Err(ServeError::Incomplete);
        };
        messages.extend(changes);
        state.offset = next;
        let more = next < self.db.feed().head();
        state.paging = more.then_some(Paging::Changes);
        Ok((messages, more))
    }

    /// The reply fields every chunk carries.
    fn chunk_reply(
        state: &Joined,
        messages: Vec<Value>,
        more: bool,
    ) -> serde_json::Map<String, Value> {
        let handle = &state.shape.handle;
        let position = match state.paging {
            Some(Paging::Snapshot { .. }) => paging_position(handle),
            _ => position(handle, state.offset),
        };
        let mut reply = serde_json::Map::new();
        reply.insert("handle".into(), Value::String(handle.clone()));
        reply.insert("offset".into(), Value::String(Offset::render(state.offset)));
        reply.insert("position".into(), Value::String(position));
        reply.insert("messages".into(), Value::Array(messages));
        reply.insert("more".into(), Value::Bool(more));
        reply
    }

    /// Where a join with `since` resumes: the change-log id, if `since` is this shape's and the
    /// feed still holds what follows it.
    async fn resume_at(&self, shape: &Shape, since: &Value) -> Result<Option<i64>, JoinError> {
        let Some(after) = resumable(since, &shape.handle) else {
            return Ok(None);
        };
        if after > self.db.feed().head() {
            let known = self
                .db
                .database_head()
                .await
                .map_err(|e| refuse("snapshot_failed", e))?;
            if after > known {
                return Ok(None);
            }
        }
        Ok(self
            .db
            .changes_since(shape, after)
            .is_some()
            .then_some(after))
    }
}

impl Channel for ShapeChannel {
    type State = Joined;

    async fn join(
        &self,
        params: Payload,
        ctx: &mut Context<'_>,
    ) -> Result<(Joined, Payload), JoinError> {
        let table = ctx
            .topic()
            .strip_prefix("shape:")
            .ok_or_else(|| refuse("bad_request", "topics are shape:<table>"))?
            .to_owned();
        let params: JoinParams = if params.as_json().is_some_and(|j| j.trim() == "null") {
            JoinParams::default()
        } else {
            params
                .deserialize()
                .map_err(|e| refuse("bad_request", format!("join params: {e}")))?
        };
        let identity = (self.identify)(ctx.socket());
        let request = request(&table, &params)?;
        let shape = self
            .db
            .shape(&request, identity.as_ref())
            .map_err(join_error)?;
        let subscription = self
            .db
            .live_shapes()
            .subscribe(&shape)
            .map_err(|e| refuse("unavailable", e))?;
        self.ensure_sender(&shape, ctx.topic(), ctx.pubsub());
        let since = params.since.filter(|s| !s.is_null());
        let resume = match &since {
            Some(since) => self.resume_at(&shape, since).await?,
            None => None,
        };
        let mut state = Joined {
            shape: shape.clone(),
            offset: 0,
            paging: Some(Paging::Changes),
            _subscription: subscription,
        };
        match resume {
            Some(after) => state.offset = after,
            None => {
                let (head, rx) = self
                    .db
                    .snapshot(shape.clone())
                    .await
                    .map_err(|e| refuse("snapshot_failed", e))?;
                state.offset = head;
                state.paging = Some(Paging::Snapshot { rx, ahead: None });
            }
        }
        let (messages, more) = self
            .next_chunk(&mut state)
            .await
            .map_err(|e| refuse("snapshot_failed", e))?;
        let mut reply = Self::chunk_reply(&state, messages, more);
        if since.is_some() {
            reply.insert("recovered".into(), Value::Bool(resume.is_some()));
        }
        if resume.is_none() {
            // The column types, as the `electric-schema` header gives them over HTTP: rows
            // travel as Electric's text, and a client types them with this.
            let entry = &self.db.tables()[shape.def.table];
            let header =
                crate::http::reply::schema_header(&entry.schema, &shape.def.columns, &entry.key);
            if let Ok(schema) = serde_json::from_str::<Value>(&header) {
                reply.insert("schema".into(), schema);
            }
        }
        Ok((state, payload(&Value::Object(reply))))
    }

    async fn handle_in(
        &self,
        event: &str,
        _payload: Payload,
        state: &mut Joined,
        _ctx: &mut Context<'_>,
    ) -> HandleIn {
        match event {
            "more" if state.paging.is_none() => HandleIn::error(payload(&json!({
                "reason": "bad_request",
                "message": "nothing more: the shape is live",
            }))),
            "more" => match self.next_chunk(state).await {
                Ok((messages, more)) => HandleIn::ok(payload(&Value::Object(Self::chunk_reply(
                    state, messages, more,
                )))),
                Err(err) => HandleIn::error(payload(&json!({
                    "reason": "snapshot_failed",
                    "message": format!("{err}; join again"),
                }))),
            },
            _ => HandleIn::error(payload(&json!({
                "reason": "bad_request",
                "message": format!("unknown event `{event}`"),
            }))),
        }
    }

    fn intercepts(&self) -> &[&str] {
        &["changes", "refetch"]
    }

    async fn handle_out(
        &self,
        event: &str,
        payload_in: &Payload,
        state: &mut Joined,
        _ctx: &mut Context<'_>,
    ) -> Outgoing {
        if event == "refetch" {
            #[derive(Deserialize)]
            struct Refetch {
                handle: String,
            }
            return match payload_in.deserialize::<Refetch>() {
                Ok(r) if r.handle == state.shape.handle => Outgoing::Forward,
                _ => Outgoing::Skip,
            };
        }
        let Some(route) = Route::read(payload_in) else {
            return Outgoing::Skip;
        };
        if route.handle != state.shape.handle || state.paging.is_some() || route.to <= state.offset
        {
            return Outgoing::Skip;
        }
        if route.from >= state.offset {
            // Nothing between the two for this shape: the sender skips only changes it has none of.
            state.offset = route.to;
            return Outgoing::Forward;
        }
        // Partly had (the join's snapshot saw some of these): only the rest.
        let Ok(mut body) = payload_in.deserialize::<serde_json::Map<String, Value>>() else {
            return Outgoing::Skip;
        };
        let after = state.offset;
        if let Some(Value::Array(messages)) = body.get_mut("messages") {
            messages.retain(|m| lsn(m).is_none_or(|n| n > after));
        }
        body.insert("from".into(), json!(after));
        state.offset = route.to;
        Outgoing::Push(payload(&Value::Object(body)))
    }
}

/// The task that broadcasts one shape's changes on its topic.
struct Sender {
    db: SyncDb,
    shape: Arc<Shape>,
    topic: String,
    pubsub: Arc<dyn PubSub>,
    senders: Arc<Mutex<HashMap<String, ()>>>,
}

impl Sender {
    async fn run(self) {
        let mut wakeups = self.shape.wakeups();
        let mut rotations = self.db.live_shapes().rotations();
        let mut at = self.db.feed().head();
        loop {
            wakeups.borrow_and_update();
            rotations.borrow_and_update();
            if !self.db.live_shapes().is_live(&self.shape.handle) {
                let body = json!({"handle": self.shape.handle});
                let message = Broadcast::new(self.topic.clone(), "refetch", payload(&body));
                self.pubsub.broadcast(Arc::new(message), None);
                break;
            }
            if self.done() {
                return;
            }
            match self.db.changes_since(&self.shape, at) {
                None => {
                    // The feed dropped changes this shape had not sent: its clients refetch.
                    self.db.live_shapes().expire(&self.shape);
                    continue;
                }
                Some((messages, next)) => {
                    if !messages.is_empty() {
                        self.broadcast(at, next, messages);
                    }
                    let caught_up = next >= self.db.feed().head();
                    at = next;
                    if !caught_up {
                        continue;
                    }
                }
            }
            tokio::select! {
                _ = wakeups.changed() => {}
                _ = rotations.changed() => {}
            }
        }
        self.senders
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.shape.handle);
    }

    /// Whether the shape has no subscriber left; if so the task is unregistered (under the lock
    /// joins register under, so a join either sees it running or starts a new one).
    fn done(&self) -> bool {
        let mut senders = self.senders.lock().unwrap_or_else(PoisonError::into_inner);
        if self.shape.subscribers() == 0 {
            senders.remove(&self.shape.handle);
            true
        } else {
            false
        }
    }

    /// Broadcasts the changes in `(from, to]`, positioned at `to`. The route (handle, from, to)
    /// leads the payload, for [`Route::read`].
    fn broadcast(&self, from: i64, to: i64, messages: Vec<Value>) {
        let handle = &self.shape.handle;
        let position = position(handle, to);
        let mut text = format!(
            r#"{{"handle":{},"from":{from},"to":{to},"offset":"{}","position":"{position}","messages":"#,
            Value::String(handle.clone()),
            Offset::render(to),
        );
        text.push_str(&Value::Array(messages).to_string());
        text.push('}');
        let body = Payload::from_json_str(&text).expect("built from JSON values");
        let shared = SharedBroadcast::new(self.topic.clone(), "changes", body);
        shared.set_position(position);
        self.pubsub
            .broadcast(Arc::new(Broadcast::from_shared(shared)), None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_read_from_the_head_of_the_payload() {
        let body = Payload::from_json_str(
            r#"{"handle":"3-99","from":4,"to":9,"offset":"9_0","position":"x","messages":[]}"#,
        )
        .expect("JSON");
        assert_eq!(
            Route::read(&body),
            Some(Route {
                handle: "3-99".into(),
                from: 4,
                to: 9
            })
        );
        let other = Payload::from_json_str(r#"{"from":4,"handle":"3-99"}"#).expect("JSON");
        assert_eq!(Route::read(&other), None);
    }

    #[test]
    fn positions_resume_only_their_own_shape() {
        let at = position("1-5", 42);
        assert_eq!(resumable(&json!(at), "1-5"), Some(42));
        assert_eq!(resumable(&json!(at), "2-5"), None);
        assert_eq!(resumable(&json!(paging_position("1-5")), "1-5"), None);
        assert_eq!(resumable(&json!("garbage"), "1-5"), None);
        assert_eq!(resumable(&json!(42), "1-5"), None);
        assert!(at.parse::<Position>().is_ok());
    }
}
