//! [`RedisHistory`]: topic histories in Redis Streams, positioned by Redis, so that a client can
//! resume on any node.
//!
//! # Keys and scripts
//! Each history topic has a stream `alight:<prefix>:stream:{<topic>}` and a hash
//! `alight:<prefix>:meta:{<topic>}` holding its epoch `e` and the offset of its latest broadcast
//! `s` (the braces keep both in one Redis Cluster slot). A broadcast is one `EVALSHA` of the
//! append script, which, atomically:
//!
//! 1. takes the epoch, starting a new one (and an empty stream) when the hash is gone, or when the
//!    stream is gone while broadcasts were counted (evicted, or expired);
//! 2. `HINCRBY s`: the broadcast's offset;
//! 3. `XADD MAXLEN ~ <last>` the entry (offset and the broadcast's topic, event and payload), then
//!    `XTRIM MINID ~ <now - age>` when the history has an age;
//! 4. sets both keys to expire after the history's age (30 days without one) of quiet;
//! 5. `PUBLISH`es the broadcast, its position written in, on the cluster channel.
//!
//! Every node, the publishing one included, delivers history broadcasts as they come back on the
//! channel: Redis runs one script at a time and a subscription gets messages in the order they
//! were published, so every node delivers a topic's broadcasts in position order, with the
//! positions Redis gave them. The publishing node keeps its broadcast (its `except` and the
//! `Arc` its publisher is paced on) under a sequence number until it comes back, and delivers
//! that very broadcast; the others decode it once and fan it out.
//!
//! A join's recovery is one `EVALSHA` of the read script: the epoch and top offset, and the
//! entries after `since` when they can all be replayed. Appends and reads of one node go through
//! one queue and one connection, pipelined, in the order they were asked.
//!
//! # Bounds
//! | [`History`] setting | in Redis |
//! |---|---|
//! | `last(n)` | `XADD MAXLEN ~ n`: at least `n` kept, a little more until a whole stream node can go |
//! | `for_at_least(d)` | `XTRIM MINID ~ <now - d>` on each append (entry ids are Redis time), and both keys expire after `d` of quiet (a new epoch then) |
//! | `max_bytes(b)` | not counted per family here: bound Redis itself with `maxmemory` and an LRU eviction policy (`volatile-lru` or `allkeys-lru`), which drops whole streams, least recently used first, as the in-memory store does; a topic whose stream was evicted starts a new epoch |
//! | `replay_limit(n)` | checked by the read script before it reads any entry |
//!
//! # When Redis is unreachable
//! A broadcast on a history topic is refused ([`HistoryError::Unavailable`]): not kept, and not
//! delivered, even on this node, since a position that the other nodes never see would make
//! clients resume wrongly. `POST /api/broadcast` answers 503 and a channel's `try_broadcast`
//! returns the error. A broadcast whose script ran but whose answer was lost (a timeout) is
//! reported as refused although it was kept and is delivered: nothing accepted is lost.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use alight_server::{
    Broadcast, ConnId, Delivery, Epoch, History, HistoryError, HistoryStore, Lost, Outcome,
    Position, Recovery, StoreFuture,
};
use bytes::Bytes;
use redis::aio::MultiplexedConnection;
use redis::{RedisResult, Value};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tracing::{debug, warn};

use crate::envelope::{Tail, encode_positioned_head, encode_tail};
use crate::link::{Backoff, Link, connect};

/// Most commands sent in one pipeline (one round trip).
const BATCH: usize = 256;
/// How long idle keys live when the history has no age.
const IDLE_KEYS: Duration = Duration::from_secs(30 * 24 * 3600);

const APPEND: &str = r"
local e = redis.call('HGET', KEYS[2], 'e')
local s = tonumber(redis.call('HGET', KEYS[2], 's') or '0')
if (not e) or (s > 0 and redis.call('EXISTS', KEYS[1]) == 0) then
  e = ARGV[6]
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[2], 'e', e, 's', 0)
end
s = redis.call('HINCRBY', KEYS[2], 's', 1)
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], '*', 'o', s, 'd', ARGV[2])
if ARGV[4] ~= '0' then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  redis.call('XTRIM', KEYS[1], 'MINID', '~', now - tonumber(ARGV[4]))
end
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
local position = e .. '-' .. s
redis.call('PUBLISH', ARGV[7], ARGV[1] .. string.char(#position) .. position .. ARGV[2])
return {e, s}
";

const READ: &str = r"
local e = redis.call('HGET', KEYS[2], 'e')
local s = tonumber(redis.call('HGET', KEYS[2], 's') or '0')
if (not e) or (s > 0 and redis.call('EXISTS', KEYS[1]) == 0) then
  e = ARGV[1]
  s = 0
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[2], 'e', e, 's', 0)
end
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
local entries = {}
if ARGV[2] == e then
  local missed = s - tonumber(ARGV[3])
  if missed > 0 and missed <= tonumber(ARGV[4]) then
    entries = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', missed)
  end
end
return {e, s, entries}
";

/// Topic histories in Redis Streams, shared by every node on the same Redis and prefix: made with
/// [`RedisPubSub::history`](crate::RedisPubSub::history) and installed with
/// [`AlightBuilder::history_store`](alight_server::AlightBuilder::history_store), next to the
/// adapter itself. See the [module docs](self) for the keys, bounds and failures.
///
/// ```no_run
/// use alight_redis::{RedisConfig, RedisPubSub};
/// use alight_server::{Alight, History};
/// # use alight_protocol::Payload;
/// # use alight_server::{Channel, Context, HandleIn, JoinError};
/// # struct Room;
/// # impl Channel for Room {
/// #     type State = ();
/// #     async fn join(&self, _: Payload, _: &mut Context<'_>) -> Result<((), Payload), JoinError> { Ok(((), Payload::empty())) }
/// #     async fn handle_in(&self, _: &str, _: Payload, _: &mut (), _: &mut Context<'_>) -> HandleIn { HandleIn::NoReply }
/// # }
///
/// # async fn run() -> Result<(), alight_redis::ConfigError> {
/// let redis = RedisPubSub::new(RedisConfig::new("redis://127.0.0.1:6379/"))?;
/// let alight = Alight::builder()
///     .channel("room:*", Room)
///     .history(History::last(1_000))
///     .history_store(redis.history())
///     .pubsub(redis.install())
///     .build();
/// # let _ = alight;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct RedisHistory {
    pub(crate) shared: Arc<Shared>,
}

/// What the store, the writer task and the subscriber share.
#[derive(Debug)]
pub(crate) struct Shared {
    jobs: mpsc::Sender<Job>,
    /// The writer's end of `jobs`, until the writer task takes it.
    pub(crate) inbox: Mutex<Option<mpsc::Receiver<Job>>>,
    /// Set when the adapter starts.
    pub(crate) link: std::sync::OnceLock<Arc<Link>>,
    /// This node's broadcasts on their way through Redis, by sequence number: taken by the
    /// subscriber when they come back, or dropped by the writer when they were refused or never
    /// came back. A std mutex: held only to insert or remove.
    pending: Mutex<HashMap<u64, Pending>>,
    next_seq: AtomicU64,
    /// The writer's connection works.
    pub(crate) up: AtomicBool,
    /// Random keys for new epochs.
    seed: RandomState,
    epochs: AtomicU64,
}

#[derive(Debug)]
struct Pending {
    message: Arc<Broadcast>,
    except: Option<ConnId>,
    /// When its script answered (`None` before): it should be back shortly after.
    answered: Option<Instant>,
}

/// One command for the writer.
#[derive(Debug)]
pub(crate) struct Job {
    keys: [String; 2],
    args: Vec<Bytes>,
    kind: JobKind,
}

#[derive(Debug)]
enum JobKind {
    Append {
        seq: u64,
        reply: oneshot::Sender<Result<Position, HistoryError>>,
    },
    Read {
        since: Option<Position>,
        limit: usize,
        reply: oneshot::Sender<Result<Recovery, HistoryError>>,
    },
}

/// Why Redis did not answer a history command.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedisHistoryError {
    /// The adapter is not running: it was not installed into a built endpoint.
    #[error("the Redis adapter is not running")]
    NotRunning,
    /// Redis is unreachable.
    #[error("Redis is unreachable")]
    Unreachable,
    /// More history commands wait for Redis than its queue holds.
    #[error("the queue to Redis is full")]
    QueueFull,
    /// Redis answered with an error.
    #[error("Redis refused the history command")]
    Redis(#[source] redis::RedisError),
    /// Redis did not answer within the timeout.
    #[error("Redis did not answer in time")]
    Timeout,
    /// Redis answered something the scripts never return.
    #[error("unexpected answer from the history script")]
    Answer,
}

fn unavailable(error: RedisHistoryError) -> HistoryError {
    HistoryError::Unavailable(Box::new(error))
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn millis(duration: Duration) -> Bytes {
    Bytes::from(duration.as_millis().max(1).to_string())
}

impl Shared {
    pub(crate) fn new(queue: usize) -> Self {
        let (jobs, inbox) = mpsc::channel(queue);
        Shared {
            jobs,
            inbox: Mutex::new(Some(inbox)),
            link: std::sync::OnceLock::new(),
            pending: Mutex::default(),
            next_seq: AtomicU64::new(1),
            up: AtomicBool::new(false),
            seed: RandomState::new(),
            epochs: AtomicU64::new(0),
        }
    }

    fn new_epoch(&self) -> Bytes {
        let n = self.epochs.fetch_add(1, Ordering::Relaxed);
        let position = Position::new(Epoch::from_bits(self.seed.hash_one(n)), 0).to_string();
        let epoch = position
            .split_once('-')
            .map_or(&*position, |(epoch, _)| epoch);
        Bytes::from(epoch.to_owned())
    }

    fn keys(link: &Link, topic: &str) -> [String; 2] {
        let prefix = &link.config.prefix;
        [
            format!("alight:{prefix}:stream:{{{topic}}}"),
            format!("alight:{prefix}:meta:{{{topic}}}"),
        ]
    }

    /// Queues `job` for the writer, unless Redis is known to be out of reach: the writer's
    /// connection is down, or the subscription is (this node's own broadcasts would not come
    /// back to be delivered).
    fn queue(&self, link: &Link, job: Job) -> Result<(), RedisHistoryError> {
        let listening = link.stats.subscriber_up.load(Ordering::Acquire);
        if !listening || !self.up.load(Ordering::Acquire) {
            return Err(RedisHistoryError::Unreachable);
        }
        self.jobs.try_send(job).map_err(|err| match err {
            mpsc::error::TrySendError::Full(_) => RedisHistoryError::QueueFull,
            mpsc::error::TrySendError::Closed(_) => RedisHistoryError::NotRunning,
        })
    }

    /// A positioned broadcast came back on the channel: this node's own (found by `seq`) or
    /// another's. Returns the broadcast to deliver and its `except`.
    pub(crate) fn came_back(
        &self,
        own: bool,
        seq: u64,
        position: &str,
        tail: Tail,
    ) -> (Arc<Broadcast>, Option<ConnId>) {
        let pending = own.then(|| lock(&self.pending).remove(&seq)).flatten();
        let (message, except) = match pending {
            Some(Pending {
                message, except, ..
            }) => (message, except),
            None => (
                Arc::new(Broadcast::new(tail.topic, tail.event, tail.payload)),
                None,
            ),
        };
        if !message.encoded().set_position(position.to_owned()) {
            warn!(topic = %message.frame().topic, "a broadcast was encoded before its position came back: delivered without one");
        }
        (message, except)
    }

    /// Forgets this node's broadcasts that were answered but did not come back within `wait`
    /// (the subscription was broken): their subscribers here miss them, and resume past them.
    fn forget_lost(&self, wait: Duration) {
        let now = Instant::now();
        lock(&self.pending).retain(|_, pending| {
            pending
                .answered
                .is_none_or(|at| now.saturating_duration_since(at) < wait)
        });
    }
}

impl HistoryStore for RedisHistory {
    fn append(
        &self,
        _family: &str,
        history: &History,
        message: Arc<Broadcast>,
        delivery: Delivery,
    ) -> StoreFuture<'static, Result<Position, HistoryError>> {
        let shared = &self.shared;
        let Some(link) = shared.link.get() else {
            return Box::pin(std::future::ready(Err(unavailable(
                RedisHistoryError::NotRunning,
            ))));
        };
        let seq = shared.next_seq.fetch_add(1, Ordering::Relaxed);
        let frame = message.frame();
        let keys = Shared::keys(link, &frame.topic);
        let args = vec![
            Bytes::copy_from_slice(&encode_positioned_head(link.node, seq)),
            encode_tail(&frame.topic, frame.event(), frame.payload()),
            Bytes::from(history.keeps().to_string()),
            history
                .age()
                .map_or_else(|| Bytes::from_static(b"0"), millis),
            millis(history.age().unwrap_or(IDLE_KEYS)),
            shared.new_epoch(),
            Bytes::from(link.config.channel()),
        ];
        let (reply, answer) = oneshot::channel();
        lock(&shared.pending).insert(
            seq,
            Pending {
                message,
                except: delivery.except(),
                answered: None,
            },
        );
        let job = Job {
            keys,
            args,
            kind: JobKind::Append { seq, reply },
        };
        if let Err(err) = shared.queue(link, job) {
            lock(&shared.pending).remove(&seq);
            link.stats.history_refused();
            return Box::pin(std::future::ready(Err(unavailable(err))));
        }
        Box::pin(async move {
            answer
                .await
                .unwrap_or_else(|_| Err(unavailable(RedisHistoryError::NotRunning)))
        })
    }

    fn recover(
        &self,
        _family: &str,
        history: &History,
        topic: &str,
        since: Option<Position>,
    ) -> StoreFuture<'static, Result<Recovery, HistoryError>> {
        let shared = &self.shared;
        let Some(link) = shared.link.get() else {
            return Box::pin(std::future::ready(Err(unavailable(
                RedisHistoryError::NotRunning,
            ))));
        };
        let limit = history.replay_limit_count();
        let (since_epoch, since_offset) = match since {
            Some(position) => {
                let text = position.to_string();
                let (epoch, offset) = text.split_once('-').unwrap_or((&text, "0"));
                (
                    Bytes::from(epoch.to_owned()),
                    Bytes::from(offset.to_owned()),
                )
            }
            None => (Bytes::new(), Bytes::from_static(b"0")),
        };
        let args = vec![
            shared.new_epoch(),
            since_epoch,
            since_offset,
            Bytes::from(limit.to_string()),
            millis(history.age().unwrap_or(IDLE_KEYS)),
        ];
        let (reply, answer) = oneshot::channel();
        let job = Job {
            keys: Shared::keys(link, topic),
            args,
            kind: JobKind::Read {
                since,
                limit,
                reply,
            },
        };
        if let Err(err) = shared.queue(link, job) {
            return Box::pin(std::future::ready(Err(unavailable(err))));
        }
        Box::pin(async move {
            answer
                .await
                .unwrap_or_else(|_| Err(unavailable(RedisHistoryError::NotRunning)))
        })
    }
}

/// The epoch of a script's answer.
fn epoch_of(value: &Value) -> Option<Epoch> {
    let Value::BulkString(bytes) = value else {
        return None;
    };
    let text = std::str::from_utf8(bytes).ok()?;
    let position: Position = format!("{text}-0").parse().ok()?;
    Some(position.epoch)
}

fn int_of(value: &Value) -> Option<u64> {
    match value {
        Value::Int(n) => u64::try_from(*n).ok(),
        Value::BulkString(bytes) => std::str::from_utf8(bytes).ok()?.parse().ok(),
        _ => None,
    }
}

/// The append script's `{epoch, offset}`.
fn appended(value: &Value) -> Option<Position> {
    let Value::Array(items) = value else {
        return None;
    };
    let [epoch, offset] = items.as_slice() else {
        return None;
    };
    Some(Position::new(epoch_of(epoch)?, int_of(offset)?))
}

/// One stream entry (`[id, ["o", offset, "d", tail]]`) as its offset and broadcast.
fn entry(value: &Value, epoch: Epoch) -> Option<(u64, Arc<Broadcast>)> {
    let Value::Array(parts) = value else {
        return None;
    };
    let [_, Value::Array(fields)] = parts.as_slice() else {
        return None;
    };
    let mut offset = None;
    let mut tail = None;
    for pair in fields.chunks(2) {
        match pair {
            [Value::BulkString(name), value] if name == b"o" => offset = int_of(value),
            [Value::BulkString(name), Value::BulkString(bytes)] if name == b"d" => {
                tail = Tail::decode(bytes).ok();
            }
            _ => {}
        }
    }
    let (offset, tail) = (offset?, tail?);
    let message = Broadcast::new(tail.topic, tail.event, tail.payload);
    message
        .encoded()
        .set_position(Position::new(epoch, offset).to_string());
    Some((offset, Arc::new(message)))
}

/// The read script's `{epoch, offset, entries}` as a recovery for `since`.
fn recovered(value: &Value, since: Option<Position>, limit: usize) -> Option<Recovery> {
    let Value::Array(items) = value else {
        return None;
    };
    let [epoch, top, entries] = items.as_slice() else {
        return None;
    };
    let position = Position::new(epoch_of(epoch)?, int_of(top)?);
    let Value::Array(entries) = entries else {
        return None;
    };
    let outcome = match since {
        None => Outcome::Fresh,
        Some(since) if since.epoch != position.epoch => Outcome::Lost(Lost::OtherEpoch),
        Some(since) if since.offset > position.offset => Outcome::Lost(Lost::Future),
        Some(since) => {
            let missed = position.offset - since.offset;
            if missed > u64::try_from(limit).unwrap_or(u64::MAX) {
                Outcome::Lost(Lost::TooFarBehind)
            } else {
                // Newest first; every offset after `since` must be there.
                let mut replay = (entries.iter().rev())
                    .map(|value| entry(value, position.epoch))
                    .collect::<Option<Vec<_>>>()?;
                replay.truncate(usize::try_from(missed).unwrap_or(usize::MAX));
                let complete = replay.len() as u64 == missed
                    && replay
                        .iter()
                        .zip(since.offset + 1..)
                        .all(|((offset, _), expected)| *offset == expected);
                if complete {
                    Outcome::Recovered(replay.into_iter().map(|(_, m)| m).collect())
                } else {
                    Outcome::Lost(Lost::Dropped)
                }
            }
        }
    };
    Some(Recovery { position, outcome })
}

impl Job {
    fn fail(self, shared: &Shared, error: impl FnOnce() -> RedisHistoryError) {
        match self.kind {
            JobKind::Append { seq, reply } => {
                lock(&shared.pending).remove(&seq);
                let _ = reply.send(Err(unavailable(error())));
            }
            JobKind::Read { reply, .. } => {
                let _ = reply.send(Err(unavailable(error())));
            }
        }
    }

    fn answer(self, shared: &Shared, link: &Link, result: RedisResult<Value>) {
        let value = match result {
            Ok(value) => value,
            Err(err) => {
                return self.fail(shared, || RedisHistoryError::Redis(err));
            }
        };
        match self.kind {
            JobKind::Append { seq, reply } => match appended(&value) {
                Some(position) => {
                    if let Some(pending) = lock(&shared.pending).get_mut(&seq) {
                        pending.answered = Some(Instant::now());
                    }
                    let _ = reply.send(Ok(position));
                }
                None => {
                    lock(&shared.pending).remove(&seq);
                    let _ = reply.send(Err(unavailable(RedisHistoryError::Answer)));
                }
            },
            JobKind::Read {
                since,
                limit,
                reply,
            } => {
                let recovery = recovered(&value, since, limit)
                    .ok_or_else(|| unavailable(RedisHistoryError::Answer));
                if recovery.is_err() {
                    link.stats.history_refused();
                }
                let _ = reply.send(recovery);
            }
        }
    }
}

/// The SHA1 digests of the scripts, loaded on a fresh connection so that the pipelines can use
/// `EVALSHA`.
#[derive(Debug)]
struct Loaded {
    append: String,
    read: String,
}

async fn load(conn: &mut MultiplexedConnection) -> RedisResult<Loaded> {
    let load = |script: &'static str| {
        let mut conn = conn.clone();
        async move {
            redis::cmd("SCRIPT")
                .arg("LOAD")
                .arg(script)
                .query_async::<String>(&mut conn)
                .await
        }
    };
    Ok(Loaded {
        append: load(APPEND).await?,
        read: load(READ).await?,
    })
}

/// Runs the history commands in order, a pipeline per batch; while Redis is unreachable refuses
/// what is queued and reconnects with backoff.
pub(crate) async fn writer(link: Arc<Link>, shared: Arc<Shared>, mut jobs: mpsc::Receiver<Job>) {
    let mut backoff = Backoff::new(&link.config);
    let mut connection: Option<(MultiplexedConnection, Loaded)> = None;
    let mut batch: Vec<Job> = Vec::with_capacity(BATCH);
    // A broadcast answered but not back after this long never will be.
    let lost_after = link.config.timeout * 2;
    let mut sweep = tokio::time::interval(link.config.timeout);
    let mut busy = false;
    let mut changes = link.stats.changes.subscribe();
    loop {
        let Some((conn, scripts)) = connection.as_mut() else {
            let connected = async {
                let mut conn = connect(&link).await?;
                let scripts = load(&mut conn).await?;
                Ok::<_, redis::RedisError>((conn, scripts))
            };
            match tokio::time::timeout(link.config.timeout, connected).await {
                Ok(Ok(conn)) => {
                    connection = Some(conn);
                    shared.up.store(true, Ordering::Release);
                    link.stats.set_history_up(true);
                    backoff.reset();
                }
                Ok(Err(err)) => {
                    debug!(error = %err, "history connection to Redis failed");
                    link.stats.outage(&err);
                    tokio::time::sleep(backoff.next()).await;
                }
                Err(_) => {
                    link.stats.outage(&"connecting to Redis timed out");
                    tokio::time::sleep(backoff.next()).await;
                }
            }
            // Whatever was queued meanwhile is refused.
            while let Ok(job) = jobs.try_recv() {
                link.stats.history_refused();
                job.fail(&shared, || RedisHistoryError::Unreachable);
            }
            continue;
        };
        let n = tokio::select! {
            n = jobs.recv_many(&mut batch, BATCH) => n,
            _ = sweep.tick() => {
                shared.forget_lost(lost_after);
                // An idle connection is checked, so that an outage is noticed before the next
                // broadcast is refused for it.
                if std::mem::take(&mut busy) {
                    continue;
                }
                let ping = redis::cmd("PING");
                let ping = ping.query_async::<()>(conn);
                if !matches!(tokio::time::timeout(link.config.timeout, ping).await, Ok(Ok(()))) {
                    broken(&link, &shared, &mut connection, &"the history connection to Redis stopped answering");
                }
                continue;
            }
            changed = changes.changed() => {
                if changed.is_err() {
                    return;
                }
                // The subscription broke: Redis may have restarted, and this connection with it.
                if !link.stats.subscriber_up.load(Ordering::Acquire) {
                    broken(&link, &shared, &mut connection, &"the subscription to Redis broke");
                }
                continue;
            }
        };
        if n == 0 {
            return;
        }
        busy = true;
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        for job in &batch {
            let script = match job.kind {
                JobKind::Append { .. } => &scripts.append,
                JobKind::Read { .. } => &scripts.read,
            };
            pipe.cmd("EVALSHA").arg(script).arg(2).arg(&job.keys[..]);
            for arg in &job.args {
                pipe.arg(&arg[..]);
            }
        }
        let answered = tokio::time::timeout(
            link.config.timeout,
            pipe.query_async::<Vec<RedisResult<Value>>>(conn),
        )
        .await;
        let failed = match answered {
            Ok(Ok(results)) if results.len() == batch.len() => {
                let reload = results.iter().any(|result| {
                    result.as_ref().is_err_and(|err| {
                        err.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript)
                    })
                });
                for (job, result) in batch.drain(..).zip(results) {
                    job.answer(&shared, &link, result);
                }
                reload.then_some("Redis lost the history scripts")
            }
            Ok(Ok(_)) => Some("Redis answered a pipeline with the wrong number of replies"),
            Ok(Err(err)) => {
                debug!(error = %err, "history pipeline failed");
                Some("the history connection to Redis failed")
            }
            Err(_) => Some("Redis did not answer the history pipeline in time"),
        };
        if let Some(why) = failed {
            for job in batch.drain(..) {
                link.stats.history_refused();
                job.fail(&shared, || RedisHistoryError::Timeout);
            }
            broken(&link, &shared, &mut connection, &why);
        }
        shared.forget_lost(lost_after);
    }
}

/// Drops the writer's connection: history broadcasts are refused until it is made again.
fn broken(
    link: &Link,
    shared: &Shared,
    connection: &mut Option<(MultiplexedConnection, Loaded)>,
    why: &dyn std::fmt::Display,
) {
    shared.up.store(false, Ordering::Release);
    link.stats.set_history_up(false);
    link.stats.outage(why);
    *connection = None;
}
