//! Alight across several nodes: a [`PubSub`] adapter on Redis, with presence replicated between
//! the nodes.
//!
//! Every node publishes to and subscribes to one Redis channel, `alight:<prefix>`. A broadcast is
//! delivered to the node's own subscribers at once, then crosses Redis as one PUBLISH, whatever
//! the number of subscribers; every other node decodes it once and fans it out through its own
//! [`Registry`] (encoded once per node and serializer). Pushes and disconnects by socket id go to
//! every node the same way. Presence replicas exchange deltas with heartbeats, a node that starts
//! asks the others for their whole state, and a node silent for the
//! [down period](RedisConfig::down_period) is declared down: its members leave on every client.
//!
//! ```no_run
//! use alight_redis::{RedisConfig, RedisPubSub};
//! use alight_server::Alight;
//!
//! # async fn run() -> Result<(), alight_redis::ConfigError> {
//! let redis = RedisPubSub::new(RedisConfig::new("redis://127.0.0.1:6379/").node_name("web-1"))?;
//! // Built inside a tokio runtime: the adapter starts its tasks then.
//! let alight = Alight::builder().pubsub(redis.install()).build();
//! alight.broadcast("room:lobby", "shout", alight_protocol::Payload::empty()); // every node
//! # Ok(())
//! # }
//! ```
//!
//! # When Redis is unreachable
//! Local subscribers keep getting their node's broadcasts. What could not be published is counted
//! ([`RedisStats::publish_failures`], `alight_redis_publish_failures_total` at `GET /metrics`) and
//! logged once per outage, not buffered: after a reconnection, messages from before it would
//! arrive out of date. The adapter reconnects with doubling backoff, resubscribes, and sends its
//! whole presence again (asking for everyone else's), so the replicas converge; `GET /healthz`
//! answers `degraded: ...` meanwhile.
//!
//! # History
//! [`RedisHistory`] (from [`RedisPubSub::history`]) keeps the broadcasts of history topics in
//! Redis Streams, positioned by Redis, so that a client resumes with `recovered: true` on any
//! node. Each topic keeps the family's count, age and bytes (`max_bytes` bounds each topic's
//! stream, counted exactly by the append script); see its module docs for the keys, the scripts,
//! the bounds and what an upgrade from an older layout does to stored history.
//!
//! # Benchmarks
//! `bench/README.md` ("Scale-out on Redis") gives the method: this adapter against the local
//! PubSub on one node, the cross-node latency with `alight-bench fanout --publish-to`, Redis
//! operations per broadcast, and socketioxide's own Redis adapter in the same run
//! (`bench-socketioxide --redis URL`).
//!
//! # Why the `redis` crate
//! `redis` 1.x is actively released and carries what this needs (tokio, pipelining, pub/sub with
//! a stream of messages). `fred` is full-featured but its releases have stalled.
//!
//! # Layout
//! - `config`: [`RedisConfig`], the URL, prefix, node name and timing.
//! - `envelope`: the bytes on the channel ([`Envelope`], [`Message`]), with a protocol version.
//! - `link`: the publisher, subscriber and heartbeat tasks, and what a received message does.
//! - `cluster`: the other nodes as this one sees them, and presence merging and down detection.
//! - `history`: [`RedisHistory`], topic histories in Redis Streams, and its writer task; its
//!   scripts (`append.lua`, `read.lua`) and the reading of their answers sit beside it.
//! - `catch_up`: what this node delivered of each history topic, and the replay of what it
//!   missed while its subscription was broken.
//! - `stats`: counters ([`RedisStats`]) and their `/metrics` text.

#![warn(missing_docs)]

mod catch_up;
mod cluster;
mod config;
mod envelope;
mod history;
mod link;
mod stats;

use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use alight_protocol::Payload;
use alight_server::{Broadcast, ConnId, NodeId, Presence, PubSub, Registry};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tracing::{error, info};

pub use config::RedisConfig;
pub use envelope::{DecodeError, Envelope, FullState, Message, Tail, VERSION};
pub use history::{RedisHistory, RedisHistoryError};
pub use stats::RedisStats;

use cluster::Cluster;
use link::{Link, Outgoing};
use stats::Stats;

/// Why an adapter could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The Redis URL does not parse.
    #[error("invalid Redis URL")]
    Url(#[source] redis::RedisError),
}

/// The Redis [`PubSub`]: install it with [`install`](Self::install). Cheap to clone; every clone
/// is the same adapter.
#[derive(Debug, Clone)]
pub struct RedisPubSub {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: RedisConfig,
    client: redis::Client,
    stats: Arc<Stats>,
    /// Set by [`RedisPubSub::install`].
    registry: OnceLock<Arc<Registry>>,
    /// Set when the endpoint hands over its presence, which starts the tasks.
    link: OnceLock<Arc<Link>>,
    outbox: mpsc::Sender<Outgoing>,
    /// The publisher's end of `outbox`, until the publisher task takes it.
    inbox: Mutex<Option<mpsc::Receiver<Outgoing>>>,
    /// The history store's side, used once [`RedisPubSub::history`] was called.
    history: Arc<history::Shared>,
    history_used: std::sync::atomic::AtomicBool,
    tasks: Mutex<Vec<AbortHandle>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        abort_all(&self.tasks);
    }
}

fn abort_all(tasks: &Mutex<Vec<AbortHandle>>) {
    for task in tasks
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .drain(..)
    {
        task.abort();
    }
}

impl RedisPubSub {
    /// An adapter for Redis at `config`'s URL. Nothing connects yet: the adapter starts when the
    /// endpoint is built, and works (locally) even while Redis is unreachable.
    pub fn new(config: RedisConfig) -> Result<Self, ConfigError> {
        let client = redis::Client::open(config.url.as_str()).map_err(ConfigError::Url)?;
        let (outbox, inbox) = mpsc::channel(config.publish_queue);
        let config_queue = config.publish_queue;
        Ok(RedisPubSub {
            inner: Arc::new(Inner {
                config,
                client,
                stats: Arc::default(),
                registry: OnceLock::new(),
                link: OnceLock::new(),
                outbox,
                inbox: Mutex::new(Some(inbox)),
                history: Arc::new(history::Shared::new(config_queue)),
                history_used: std::sync::atomic::AtomicBool::new(false),
                tasks: Mutex::default(),
            }),
        })
    }

    /// What [`AlightBuilder::pubsub`](alight_server::AlightBuilder::pubsub) takes.
    pub fn install(&self) -> impl FnOnce(Arc<Registry>) -> Arc<dyn PubSub> + Send + 'static {
        let adapter = self.clone();
        move |registry| {
            if adapter.inner.registry.set(registry).is_err() {
                error!(
                    "a RedisPubSub was installed into two endpoints; the second one stays local"
                );
            }
            Arc::new(adapter)
        }
    }

    /// The history store on this adapter's Redis, for
    /// [`AlightBuilder::history_store`](alight_server::AlightBuilder::history_store): history
    /// topics keep their broadcasts in Redis Streams, with positions every node shares. Install
    /// the adapter itself too ([`install`](Self::install)).
    pub fn history(&self) -> RedisHistory {
        self.inner
            .history_used
            .store(true, std::sync::atomic::Ordering::Release);
        RedisHistory {
            shared: self.inner.history.clone(),
        }
    }

    /// The counters so far.
    pub fn stats(&self) -> RedisStats {
        self.inner.stats.snapshot()
    }

    /// Whether every connection to Redis works: the publishing one, the subscription, and the
    /// history store's once [`history`](Self::history) was installed.
    pub fn is_connected(&self) -> bool {
        self.inner.stats.connected()
    }

    /// How many other nodes this one hears from (not declared down).
    pub fn nodes_up(&self) -> usize {
        self.inner
            .link
            .get()
            .map_or(0, |link| link.cluster.peers_up())
    }

    /// Waits until `condition` holds, checking it again at every change of connection state,
    /// of the nodes heard from, and of the rare counters (syncs, refused messages, nodes down).
    ///
    /// ```no_run
    /// # async fn example(redis: alight_redis::RedisPubSub) {
    /// redis.wait_until(|redis| redis.is_connected() && redis.nodes_up() == 2).await;
    /// # }
    /// ```
    pub async fn wait_until(&self, mut condition: impl FnMut(&RedisPubSub) -> bool) {
        let mut changes = self.inner.stats.changes.subscribe();
        while !condition(self) {
            if changes.changed().await.is_err() {
                return;
            }
        }
    }

    /// This node's id in the cluster (drawn at start), once the endpoint is built.
    pub fn node(&self) -> Option<NodeId> {
        self.inner.link.get().map(|link| link.node)
    }

    /// Stops talking to Redis, without a goodbye: to the other nodes this node went silent, and
    /// they declare it down after the down period. Local delivery goes on.
    pub fn stop(&self) {
        abort_all(&self.inner.tasks);
    }

    fn publish(&self, message: Message) {
        match self.inner.link.get() {
            Some(link) => link.send(&self.inner.outbox, None, message),
            None => self
                .inner
                .stats
                .publish_failed(1, &"the adapter was never started"),
        }
    }

    fn registry(&self) -> Option<&Arc<Registry>> {
        self.inner.registry.get()
    }
}

/// The label value of `text` in the OpenMetrics text format.
fn label(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl PubSub for RedisPubSub {
    fn broadcast(&self, message: Arc<Broadcast>, except: Option<ConnId>) {
        if let Some(registry) = self.registry() {
            registry.dispatch(&message, except);
        }
        let frame = message.frame();
        match self.inner.link.get() {
            Some(link) => link.send_broadcast(
                &self.inner.outbox,
                &frame.topic,
                frame.event(),
                frame.payload(),
            ),
            None => self
                .inner
                .stats
                .publish_failed(1, &"the adapter was never started"),
        }
    }

    fn push_to_socket(&self, socket_id: &str, topic: &str, event: &str, payload: Payload) {
        if let Some(registry) = self.registry() {
            registry.push_local(socket_id, topic, event, &payload);
        }
        self.publish(Message::Push {
            socket_id: socket_id.to_owned(),
            topic: topic.to_owned(),
            event: event.to_owned(),
            payload,
        });
    }

    fn disconnect(&self, socket_id: &str) {
        if let Some(registry) = self.registry() {
            registry.disconnect_local(socket_id);
        }
        self.publish(Message::Disconnect {
            socket_id: socket_id.to_owned(),
        });
    }

    fn attach_presence(&self, presence: &Presence) {
        let inner = &self.inner;
        let Some(registry) = inner.registry.get() else {
            error!("RedisPubSub::attach_presence before install: the adapter stays local");
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            error!("the endpoint was built outside a tokio runtime: the Redis adapter stays local");
            return;
        };
        let inbox = inner
            .inbox
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let Some(inbox) = inbox else {
            error!("the Redis adapter was started twice; the second start is ignored");
            return;
        };
        let node = presence.node();
        let name = match inner.config.node_name.as_str() {
            "" => format!("{:016x}", node.0),
            name => name.to_owned(),
        };
        info!(node = %name, id = %format_args!("{:016x}", node.0), channel = %inner.config.channel(), "joining the Redis cluster");
        let cluster = Cluster::new(
            presence.clone(),
            name,
            inner.config.down_period,
            inner.config.permdown_period,
            inner.stats.clone(),
        );
        let link = Arc::new(Link::new(
            inner.config.clone(),
            inner.client.clone(),
            node,
            registry.clone(),
            cluster,
            inner.stats.clone(),
            inner.history.clone(),
        ));
        if inner.link.set(link.clone()).is_err() {
            return;
        }
        let mut tasks = vec![
            runtime.spawn(link::publisher(link.clone(), inbox)),
            runtime.spawn(link::subscriber(link.clone(), inner.outbox.clone())),
            runtime.spawn(link::heartbeat(link.clone(), inner.outbox.clone())),
        ];
        if inner
            .history_used
            .load(std::sync::atomic::Ordering::Acquire)
        {
            let jobs = inner
                .history
                .inbox
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            if let Some(jobs) = jobs {
                inner.stats.set_history_up(false);
                let _ = inner.history.link.set(link.clone());
                tasks.push(runtime.spawn(history::writer(link, inner.history.clone(), jobs)));
            }
        }
        inner
            .tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(tasks.iter().map(|task| task.abort_handle()));
    }

    fn degraded(&self) -> Option<String> {
        let stats = &self.inner.stats;
        if stats.connected() {
            None
        } else if self.inner.link.get().is_none() {
            Some("the Redis adapter is not running".into())
        } else {
            Some(
                "Redis unreachable: broadcasts reach this node's subscribers only, and history \
                 topics refuse broadcasts"
                    .into(),
            )
        }
    }

    fn encode_metrics(&self, out: &mut String) {
        let (name, peers) = match self.inner.link.get() {
            Some(link) => (link.cluster.name.clone(), link.cluster.peers_up()),
            None => (self.inner.config.node_name.clone(), 0),
        };
        self.inner.stats.encode(&label(&name), peers, out);
    }
}
