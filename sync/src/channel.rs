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
//! | `phx_join` `shape:<table>` `{where?, params?, columns?, replica?, since?}` | ok `{handle, offset, position, recovered?, messages, more}`, or error `{reason, message}` (below) |
//! | `more` `{}` (only while the last reply said `more: true`) | ok `{handle, offset, position, messages, more}`: the next chunk; error `{reason: "snapshot_failed", message}`: the snapshot broke (or the client took longer than `Config::snapshot_stall_timeout` to ask): join again without `since` |
//! | | broadcast `changes` `{handle, offset, position, messages}` with `position` also in the frame's `ref` slot: committed changes of this shape, whole transactions, in commit order |
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

use alight_protocol::Payload;
use alight_server::{Broadcast, Channel, Context, HandleIn, JoinError, Outgoing, PubSub, Socket};
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
#[derive(Clone)]
pub struct ShapeChannel {
    db: SyncDb,
    identify: Arc<IdentifySocket>,
    /// The broadcasting task of each shape with subscribers, by handle. Joins add, the task
    /// removes itself under this lock when its shape has no subscriber left.
    senders: Arc<Mutex<HashMap<String, ()>>>,
}

impl std::fmt::Debug for ShapeChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShapeChannel").finish_non_exhaustive()
    }
}

/// One joined `shape:<table>`.
#[derive(Debug)]
pub struct Joined {
    shape: Arc<Shape>,
    /// Everything up to this change-log id has been sent.
    offset: i64,
    /// The rest of the snapshot, while the client pulls it with `more`.
    snapshot: Option<mpsc::Receiver<Chunk>>,
    /// The part read ahead of the client's next `more` (`Some(None)`: the snapshot stopped).
    ahead: Option<Option<Chunk>>,
    _subscription: Subscription,
}

#[derive(Debug, Default, Deserialize)]
struct JoinParams {
    #[serde(rename = "where")]
    where_: Option<String>,
    params: Option<Value>,
    columns: Option<Value>,
    replica: Option<String>,
    handle: Option<String>,
    offset: Option<String>,
}

/// The part of a `changes` broadcast `handle_out` reads (the messages stay unparsed).
#[derive(Debug, Deserialize)]
struct Changes {
    handle: String,
    #[serde(default)]
    from: i64,
    #[serde(default)]
    offset: String,
    #[serde(default)]
    refetch: bool,
}

fn refuse(reason: &str, message: impl std::fmt::Display) -> JoinError {
    JoinError::with_response(
        Payload::json(&json!({"reason": reason, "message": message.to_string()}))
            .unwrap_or_else(|_| Payload::empty()),
    )
}

fn payload(value: &Value) -> Payload {
    Payload::json(value).unwrap_or_else(|_| Payload::empty())
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
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| text(v).ok_or_else(|| bad("params must be strings or numbers")))
            .collect::<Result<_, _>>()?,
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

/// `[` + a chunk of `message,` text + `]` as JSON.
fn chunk_messages(chunk: &[u8]) -> Value {
    let mut text = Vec::with_capacity(chunk.len() + 2);
    text.push(b'[');
    text.extend_from_slice(chunk.strip_suffix(b",").unwrap_or(chunk));
    text.push(b']');
    serde_json::from_slice(&text).unwrap_or(Value::Array(Vec::new()))
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

    /// The next snapshot chunk of `state`, and whether more follow; the last one also carries
    /// the changes since the snapshot. The part after it is read ahead (to know whether there is
    /// one), so at most two chunks are held. `Err` when the snapshot failed or stalled: the
    /// client must join again.
    async fn next_chunk(&self, state: &mut Joined) -> Result<(Vec<Value>, bool), ServeError> {
        let mut messages = Vec::new();
        let current = match state.ahead.take() {
            Some(part) => part,
            None => Self::read(state).await,
        };
        match current {
            Some(Ok(SnapshotPart::Rows(chunk))) => {
                if let Value::Array(items) = chunk_messages(&chunk) {
                    messages = items;
                }
                match Self::read(state).await {
                    Some(Ok(SnapshotPart::End)) => {}
                    other => {
                        state.ahead = Some(other);
                        return Ok((messages, true));
                    }
                }
            }
            Some(Ok(SnapshotPart::End)) => {}
            Some(Err(err)) => {
                state.snapshot = None;
                return Err(err);
            }
            None => {
                state.snapshot = None;
                return Err(ServeError::Incomplete);
            }
        }
        state.snapshot = None;
        if let Some((changes, next)) = self.db.changes_since(&state.shape, state.offset) {
            messages.extend(changes);
            state.offset = next;
        }
        Ok((messages, false))
    }

    /// The next part of the snapshot (`End` when there is none in progress).
    async fn read(state: &mut Joined) -> Option<Chunk> {
        match state.snapshot.as_mut() {
            Some(rx) => rx.recv().await,
            None => Some(Ok(SnapshotPart::End)),
        }
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
        let params: JoinParams = params
            .deserialize()
            .map_err(|e| refuse("bad_request", format!("join params: {e}")))?;
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
        let resume = match (&params.handle, params.offset.as_deref()) {
            (Some(handle), Some(offset)) if *handle == shape.handle => offset
                .split_once('_')
                .and_then(|(n, _)| n.parse::<i64>().ok())
                .and_then(|after| self.db.changes_since(&shape, after)),
            _ => None,
        };
        let refetch = params.handle.is_some() && resume.is_none();
        let mut state = Joined {
            shape: shape.clone(),
            offset: 0,
            snapshot: None,
            ahead: None,
            _subscription: subscription,
        };
        let (messages, more) = match resume {
            Some((messages, next)) => {
                state.offset = next;
                (messages, false)
            }
            None => {
                let (head, rx) = self
                    .db
                    .snapshot(shape.clone())
                    .await
                    .map_err(|e| refuse("unavailable", e))?;
                state.offset = head;
                state.snapshot = Some(rx);
                self.next_chunk(&mut state)
                    .await
                    .map_err(|e| refuse("unavailable", e))?
            }
        };
        let reply = json!({
            "handle": shape.handle,
            "offset": Offset::render(state.offset),
            "messages": messages,
            "more": more,
            "refetch": refetch,
        });
        Ok((state, payload(&reply)))
    }

    async fn handle_in(
        &self,
        event: &str,
        _payload: Payload,
        state: &mut Joined,
        _ctx: &mut Context<'_>,
    ) -> HandleIn {
        match event {
            "more" => match self.next_chunk(state).await {
                Ok((messages, more)) => HandleIn::ok(payload(&json!({
                    "messages": messages,
                    "more": more,
                    "offset": Offset::render(state.offset),
                }))),
                Err(err) => HandleIn::error(payload(&json!({
                    "reason": "snapshot_failed",
                    "message": format!("{err}; join again"),
                }))),
            },
            _ => HandleIn::error_reason("unknown event"),
        }
    }

    fn intercepts(&self) -> &[&str] {
        &["changes"]
    }

    async fn handle_out(
        &self,
        _event: &str,
        payload_in: &Payload,
        state: &mut Joined,
        _ctx: &mut Context<'_>,
    ) -> Outgoing {
        let Ok(changes) = payload_in.deserialize::<Changes>() else {
            return Outgoing::Skip;
        };
        if changes.handle != state.shape.handle {
            return Outgoing::Skip;
        }
        if changes.refetch {
            return Outgoing::Push(payload_in.clone());
        }
        if state.snapshot.is_some() {
            return Outgoing::Skip;
        }
        let to = changes
            .offset
            .split_once('_')
            .and_then(|(n, _)| n.parse::<i64>().ok())
            .unwrap_or(i64::MAX);
        if to <= state.offset {
            return Outgoing::Skip;
        }
        if changes.from == state.offset {
            state.offset = to;
            return Outgoing::Push(payload_in.clone());
        }
        // Behind or ahead of the broadcast: this subscriber's own catch-up from the feed.
        match self.db.changes_since(&state.shape, state.offset) {
            Some((messages, next)) => {
                let from = state.offset;
                state.offset = next;
                Outgoing::Push(payload(&json!({
                    "handle": state.shape.handle,
                    "from": from,
                    "offset": Offset::render(next),
                    "messages": messages,
                })))
            }
            None => Outgoing::Push(payload(
                &json!({"handle": state.shape.handle, "refetch": true}),
            )),
        }
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
                self.broadcast(json!({"handle": self.shape.handle, "refetch": true}));
                break;
            }
            if self.done() {
                return;
            }
            match self.db.changes_since(&self.shape, at) {
                None => {
                    self.db.live_shapes().expire(&self.shape);
                    continue;
                }
                Some((messages, next)) => {
                    if !messages.is_empty() {
                        self.broadcast(json!({
                            "handle": self.shape.handle,
                            "from": at,
                            "offset": Offset::render(next),
                            "messages": messages,
                        }));
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

    fn broadcast(&self, body: Value) {
        let message = Broadcast::new(self.topic.clone(), "changes", payload(&body));
        self.pubsub.broadcast(Arc::new(message), None);
    }
}
