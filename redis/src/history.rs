//! [`RedisHistory`]: topic histories in Redis Streams, positioned by Redis, so that a client can
//! resume on any node.
//!
//! # Keys and scripts
//! Each history topic has a stream `alight:<prefix>:v<VERSION>:stream:{<topic>}` and a hash
//! `alight:<prefix>:v<VERSION>:meta:{<topic>}` holding its epoch `e`, the offset of its latest
//! broadcast `s` and the bytes its stream keeps `b` (the braces keep both in one Redis Cluster
//! slot; [`VERSION`](crate::VERSION) keeps nodes of another layout off these keys). A broadcast
//! is one `EVALSHA` of the append script (`history/append.lua`), which, atomically:
//!
//! 1. takes the epoch, starting a new one (and an empty stream) when the hash is gone, or when the
//!    stream is gone while broadcasts were counted (evicted, or expired);
//! 2. `HINCRBY s`: the broadcast's offset;
//! 3. `XADD`s the entry (offset and the broadcast's topic, event and payload) and adds its size to
//!    `b`;
//! 4. reads the oldest entries (`XRANGE`) while the stream is over its count, age or bytes,
//!    subtracting the size of each one that must go, then trims exactly those
//!    (`XTRIM MAXLEN = <kept>`), so that `b` is always what the stream holds;
//! 5. sets both keys to expire after the history's age (30 days without one) of quiet;
//! 6. `PUBLISH`es the broadcast, its position written in, on the cluster channel.
//!
//! Every node, the publishing one included, delivers history broadcasts as they come back on the
//! channel: Redis runs one script at a time and a subscription gets messages in the order they
//! were published, so every node delivers a topic's broadcasts in position order, with the
//! positions Redis gave them. The publishing node keeps its broadcast (its `except` and the
//! `Arc` its publisher is paced on) under a sequence number until it comes back, and delivers
//! that very broadcast; the others decode it once and fan it out.
//!
//! A join's recovery is one `EVALSHA` of the read script (`history/read.lua`): the epoch and top
//! offset, and the entries after `since` when they can all be replayed. Appends and reads of one
//! node go through one queue and one connection, pipelined, in the order they were asked. The
//! scripts need Redis 6.2 or later (exclusive `XRANGE` bounds).
//!
//! The bounds, and what an upgrade does to stored history, are in [`RedisHistory`]'s docs.
//!
//! # When Redis is unreachable
//! A broadcast on a history topic is refused ([`HistoryError::Unavailable`]): not kept, and not
//! delivered, even on this node, since a position that the other nodes never see would make
//! clients resume wrongly. `POST /api/broadcast` answers 503 and a channel's `try_broadcast`
//! returns the error. A broadcast whose script ran but whose answer was lost (a timeout) is
//! reported as refused although it was kept and is delivered: nothing accepted is lost.
//!
//! A node cut from Redis while the others still reach it refuses its own history broadcasts, and
//! its subscribers miss, for a while, what the other nodes broadcast. When its subscription is
//! back, it reads each topic its clients joined from the last position it delivered and replays
//! the missed broadcasts to them, in order and once, before anything newer (see `catch_up`).

mod answer;

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use alight_server::{
    Broadcast, ConnId, Delivery, Epoch, History, HistoryError, HistoryStore, Outcome, Position,
    Recovery, StoreFuture,
};
use bytes::Bytes;
use redis::aio::MultiplexedConnection;
use redis::{RedisResult, Value};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tracing::{debug, warn};

use answer::{appended, recovered};

use crate::catch_up::Delivered;
use crate::envelope::{Tail, VERSION, encode_positioned_head, encode_tail};
use crate::link::{Backoff, Link, connect};

/// Most commands sent in one pipeline (one round trip).
const BATCH: usize = 256;
/// How long idle keys live when the history has no age.
const IDLE_KEYS: Duration = Duration::from_secs(30 * 24 * 3600);

/// The append script: one per broadcast (see `append.lua` for its keys and arguments).
const APPEND: &str = include_str!("history/append.lua");
/// The read script: one per join that asks for a position (see `read.lua`).
const READ: &str = include_str!("history/read.lua");

/// Topic histories in Redis Streams, shared by every node on the same Redis and prefix: made with
/// [`RedisPubSub::history`](crate::RedisPubSub::history) and installed with
/// [`AlightBuilder::history_store`](alight_server::AlightBuilder::history_store), next to the
/// adapter itself.
///
/// # Bounds
/// | [`History`] setting | in Redis |
/// |---|---|
/// | `last(n)` | the stream keeps exactly the last `n` entries |
/// | `for_at_least(d)` | entries older than `d` (entry ids are Redis time) go on the next append, and both keys expire after `d` of quiet (a new epoch then) |
/// | `max_bytes(b)` | per topic: the stream's entries (each counted as its topic, event and payload as stored) total at most `b`, oldest dropped first (one broadcast larger than `b` is delivered but not kept). A family's topics live in different Cluster slots, so no script sees them together: bound the whole with Redis's `maxmemory` and an LRU eviction policy (`volatile-lru` or `allkeys-lru`), which drops whole streams, least recently used first; a topic whose stream was evicted starts a new epoch |
/// | `replay_limit(n)` | checked by the read script before it reads any entry |
///
/// A client whose `since` is older than what the stream still keeps, whichever bound dropped it,
/// is told `recovered: false`.
///
/// # Upgrading from layout version 2
/// Version 2 of the layout ([`VERSION`](crate::VERSION)) kept no byte total and used keys without
/// the version. Nodes of version 3 use new keys, so their topics start new epochs: clients holding
/// older positions are told `recovered: false` once, and reload. The old keys expire on their own after their idle period
/// (the history's age, or 30 days); delete `alight:<prefix>:stream:*` and `alight:<prefix>:meta:*`
/// to free them sooner. Run one version per prefix: nodes refuse each other's messages across
/// versions.
///
/// # Example
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
    /// What this node delivered of the topics its clients joined, for the catch-up after a
    /// broken subscription.
    delivered: Delivered,
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
        topic: String,
        history: History,
        since: Option<Position>,
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
            delivered: Delivered::default(),
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
            format!("alight:{prefix}:v{VERSION}:stream:{{{topic}}}"),
            format!("alight:{prefix}:v{VERSION}:meta:{{{topic}}}"),
        ]
    }

    /// Queues `job` for the writer, unless Redis is known to be out of reach: the subscription
    /// is broken (this node's own broadcasts would not come back to be delivered). A job queued
    /// while the writer reconnects waits for it, and is refused if it cannot.
    fn queue(&self, link: &Link, job: Job) -> Result<(), RedisHistoryError> {
        if !link.stats.subscriber_up.load(Ordering::Acquire) {
            return Err(RedisHistoryError::Unreachable);
        }
        self.jobs.try_send(job).map_err(|err| match err {
            mpsc::error::TrySendError::Full(_) => RedisHistoryError::QueueFull,
            mpsc::error::TrySendError::Closed(_) => RedisHistoryError::NotRunning,
        })
    }

    /// A positioned broadcast came back on the channel: this node's own (found by `seq`) or
    /// another's. Returns the broadcast to deliver and its `except`.
    /// `None` when this node delivered it already (the catch-up after a broken subscription did).
    pub(crate) fn came_back(
        &self,
        own: bool,
        seq: u64,
        position: &str,
        tail: Tail,
    ) -> Option<(Arc<Broadcast>, Option<ConnId>)> {
        let pending = own.then(|| lock(&self.pending).remove(&seq)).flatten();
        if let Ok(at) = position.parse::<Position>()
            && !self.delivered.advance(&tail.topic, at)
        {
            return None;
        }
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
        Some((message, except))
    }

    /// Queues a read of `topic`'s history after `since`.
    fn read(
        &self,
        link: &Link,
        topic: &str,
        history: &History,
        since: Option<Position>,
    ) -> Result<oneshot::Receiver<Result<Recovery, HistoryError>>, RedisHistoryError> {
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
            self.new_epoch(),
            since_epoch,
            since_offset,
            Bytes::from(history.replay_limit_count().to_string()),
            millis(history.age().unwrap_or(IDLE_KEYS)),
        ];
        let (reply, answer) = oneshot::channel();
        let job = Job {
            keys: Shared::keys(link, topic),
            args,
            kind: JobKind::Read {
                topic: topic.to_owned(),
                history: *history,
                since,
                reply,
            },
        };
        self.queue(link, job)?;
        Ok(answer)
    }

    /// The subscription is back after a break: replays to this node's subscribers what the
    /// other nodes broadcast meanwhile on the topics they joined, in order, before anything
    /// that arrives on the new subscription (which skips what was replayed).
    pub(crate) async fn catch_up(&self, link: &Link) {
        let topics = self.delivered.to_catch_up(&link.registry);
        if topics.is_empty() {
            return;
        }
        // Bounded: the subscription's messages (heartbeats too) wait meanwhile.
        let wait = (link.config.timeout * 2).max(link.config.down_period / 2);
        for (topic, history, since) in topics {
            let answer = match self.read(link, &topic, &history, Some(since)) {
                Ok(answer) => tokio::time::timeout(wait, answer).await,
                Err(err) => {
                    warn!(%topic, error = %err, "history not caught up after a broken subscription");
                    continue;
                }
            };
            match answer {
                Ok(Ok(Ok(Recovery {
                    position,
                    outcome: Outcome::Recovered(replay),
                }))) => {
                    for message in replay {
                        let at = message.encoded().position().and_then(|p| p.parse().ok());
                        if at.is_none_or(|at| self.delivered.advance(&topic, at)) {
                            link.registry.dispatch(&message, None);
                        }
                    }
                    self.delivered.advance(&topic, position);
                }
                Ok(Ok(Ok(Recovery {
                    position,
                    outcome: Outcome::Lost(lost),
                }))) => {
                    warn!(%topic, reason = %lost, "broadcasts missed while the subscription was broken can no longer be replayed; clients get them only by reloading");
                    self.delivered.reset(&topic, position);
                }
                _ => warn!(%topic, "history not caught up after a broken subscription"),
            }
        }
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
            Bytes::from(history.byte_budget().to_string()),
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
        match shared.read(link, topic, history, since) {
            Ok(answer) => Box::pin(async move {
                answer
                    .await
                    .unwrap_or_else(|_| Err(unavailable(RedisHistoryError::NotRunning)))
            }),
            Err(err) => Box::pin(std::future::ready(Err(unavailable(err)))),
        }
    }
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
                topic,
                history,
                since,
                reply,
            } => {
                let recovery = recovered(&value, since, history.replay_limit_count())
                    .ok_or_else(|| unavailable(RedisHistoryError::Answer));
                if let Ok(recovery) = &recovery {
                    // Answers come in Redis's order: the first join's read is the earliest.
                    shared.delivered.watch(&topic, &history, recovery.position);
                }
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
    let mut listening = link.stats.subscriber_up.load(Ordering::Acquire);
    loop {
        let Some((conn, scripts)) = connection.as_mut() else {
            let connected = async {
                let mut conn = connect(&link).await?;
                let scripts = load(&mut conn).await?;
                Ok::<_, redis::RedisError>((conn, scripts))
            };
            let failed: Box<dyn std::fmt::Display + Send> =
                match tokio::time::timeout(link.config.timeout, connected).await {
                    Ok(Ok(conn)) => {
                        connection = Some(conn);
                        shared.up.store(true, Ordering::Release);
                        link.stats.set_history_up(true);
                        backoff.reset();
                        continue;
                    }
                    Ok(Err(err)) => Box::new(err),
                    Err(_) => Box::new("connecting to Redis timed out"),
                };
            debug!(error = %failed, "history connection to Redis failed");
            link.stats.outage(&failed);
            // What waited for this attempt is refused; what comes during the wait waits for the
            // next one.
            while let Ok(job) = jobs.try_recv() {
                link.stats.history_refused();
                job.fail(&shared, || RedisHistoryError::Unreachable);
            }
            tokio::time::sleep(backoff.next()).await;
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
                // The subscription broke or was made again: Redis may have restarted, and this
                // connection with it.
                let now_listening = link.stats.subscriber_up.load(Ordering::Acquire);
                if std::mem::replace(&mut listening, now_listening) == now_listening {
                    continue;
                }
                if !now_listening {
                    broken(&link, &shared, &mut connection, &"the subscription to Redis broke");
                    continue;
                }
                let ping = redis::cmd("PING");
                let ping = ping.query_async::<()>(conn);
                if !matches!(tokio::time::timeout(link.config.timeout, ping).await, Ok(Ok(()))) {
                    broken(&link, &shared, &mut connection, &"the history connection to Redis broke");
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
        let timed_out = answered.is_err();
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
                job.fail(&shared, || {
                    if timed_out {
                        RedisHistoryError::Timeout
                    } else {
                        RedisHistoryError::Unreachable
                    }
                });
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
