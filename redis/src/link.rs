//! The adapter's three tasks: the publisher (one connection, pipelined PUBLISHes), the
//! subscriber (the shared channel and this node's own) and the heartbeat (presence deltas,
//! liveness, down detection). Each reconnects on its own with backoff. The subscriber also
//! watches for its own heartbeats coming back: a subscription that stops echoing them while they
//! are published is dropped and made again (a half-open connection never ends its stream).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use alight_server::{Broadcast, NodeId, Registry};
use bytes::Bytes;
use futures_util::StreamExt;
use redis::AsyncConnectionConfig;
use redis::aio::MultiplexedConnection;
use tokio::sync::{Notify, mpsc};
use tokio::time::{Instant, MissedTickBehavior};
use tracing::{debug, error};

use crate::cluster::Cluster;
use crate::config::RedisConfig;
use crate::envelope::{DecodeError, Envelope, Message};
use crate::history;
use crate::stats::{Stats, bump};

/// Most messages sent in one pipeline (one round trip).
const BATCH: usize = 256;

/// One message on its way to Redis.
#[derive(Debug)]
pub(crate) struct Outgoing {
    /// `None`: every node; `Some`: that node only.
    pub(crate) to: Option<NodeId>,
    pub(crate) bytes: Bytes,
}

/// What the tasks share: built once when the adapter starts.
#[derive(Debug)]
pub(crate) struct Link {
    pub(crate) config: RedisConfig,
    pub(crate) client: redis::Client,
    pub(crate) node: NodeId,
    pub(crate) registry: Arc<Registry>,
    pub(crate) cluster: Cluster,
    pub(crate) stats: Arc<Stats>,
    /// The history store's side: this node's own positioned broadcasts, until they come back.
    history: Arc<history::Shared>,
    /// Asks the heartbeat task to send a hello (our whole presence) after a reconnection.
    pub(crate) resync: Notify,
    /// Versions already logged as refused, so that each is logged once.
    refused_versions: std::sync::Mutex<Vec<u8>>,
    /// When our own last message came back through the subscription: a subscription that stops
    /// echoing while publishes succeed is dead without knowing it (a half-open connection).
    last_echo: std::sync::Mutex<Instant>,
}

impl Link {
    pub(crate) fn new(
        config: RedisConfig,
        client: redis::Client,
        node: NodeId,
        registry: Arc<Registry>,
        cluster: Cluster,
        stats: Arc<Stats>,
        history: Arc<history::Shared>,
    ) -> Self {
        Link {
            config,
            client,
            node,
            registry,
            cluster,
            stats,
            history,
            resync: Notify::new(),
            refused_versions: std::sync::Mutex::default(),
            last_echo: std::sync::Mutex::new(Instant::now()),
        }
    }

    fn channel_of(&self, to: Option<NodeId>) -> String {
        match to {
            None => self.config.channel(),
            Some(node) => self.config.node_channel(node.0),
        }
    }

    /// Encodes and queues a message; a full or closed queue counts it as failed.
    pub(crate) fn send(
        &self,
        outbox: &mpsc::Sender<Outgoing>,
        to: Option<NodeId>,
        message: Message,
    ) {
        let envelope = Envelope {
            origin: self.node,
            message,
        };
        let bytes = match envelope.encode() {
            Ok(bytes) => bytes,
            Err(err) => {
                error!(error = %err, "presence state did not serialize; not sent");
                return;
            }
        };
        send_bytes(&self.stats, outbox, Outgoing { to, bytes });
    }

    /// Queues a broadcast for the other nodes.
    pub(crate) fn send_broadcast(
        &self,
        outbox: &mpsc::Sender<Outgoing>,
        topic: &str,
        event: &str,
        payload: &alight_protocol::Payload,
    ) {
        let bytes = crate::envelope::encode_broadcast(self.node, topic, event, payload);
        send_bytes(&self.stats, outbox, Outgoing { to: None, bytes });
    }

    /// Handles one message from the channel.
    fn receive(&self, bytes: &[u8], outbox: &mpsc::Sender<Outgoing>) {
        let envelope = match Envelope::decode(bytes) {
            Ok(envelope) => envelope,
            Err(DecodeError::Version { ours, theirs }) => {
                self.stats.bump_rare(&self.stats.version_mismatches);
                let mut logged = self
                    .refused_versions
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if !logged.contains(&theirs) {
                    logged.push(theirs);
                    error!(
                        ours,
                        theirs,
                        "refusing messages from a node of protocol version {theirs}: this node \
                         speaks version {ours}; run one version per prefix"
                    );
                }
                return;
            }
            Err(err) => {
                self.stats.bump_rare(&self.stats.undecodable);
                debug!(error = %err, "dropped a message that does not decode");
                return;
            }
        };
        if envelope.origin == self.node {
            // Our own publish, and proof that the subscription works. Only a positioned
            // broadcast is delivered now (every other was delivered locally as it was sent).
            *lock(&self.last_echo) = Instant::now();
            if let Message::Positioned {
                seq,
                position,
                tail,
            } = envelope.message
            {
                let (message, except) = self.history.came_back(true, seq, &position, tail);
                self.registry.dispatch(&message, except);
            }
            return;
        }
        bump(&self.stats.received);
        let now = Instant::now();
        let origin = envelope.origin;
        match envelope.message {
            Message::Broadcast {
                topic,
                event,
                payload,
            } => {
                self.cluster.heard(origin, None, now);
                let message = Arc::new(Broadcast::new(topic, event, payload));
                self.registry.dispatch(&message, None);
            }
            Message::Push {
                socket_id,
                topic,
                event,
                payload,
            } => {
                self.cluster.heard(origin, None, now);
                self.registry
                    .push_local(&socket_id, &topic, &event, &payload);
            }
            Message::Positioned {
                seq,
                position,
                tail,
            } => {
                self.cluster.heard(origin, None, now);
                let (message, except) = self.history.came_back(false, seq, &position, tail);
                self.registry.dispatch(&message, except);
            }
            Message::Disconnect { socket_id } => {
                self.cluster.heard(origin, None, now);
                self.registry.disconnect_local(&socket_id);
            }
            Message::Heartbeat { name, deltas } => {
                self.cluster.heard(origin, Some(&name), now);
                self.cluster.merge(&deltas, now);
            }
            Message::Hello(full) => {
                self.stats.bump_rare(&self.stats.syncs);
                self.cluster.heard(origin, Some(&full.name), now);
                self.cluster.merge_full(&full, now);
                let reply = Message::States(self.cluster.full_state());
                self.send(outbox, Some(origin), reply);
            }
            Message::States(full) => {
                self.stats.bump_rare(&self.stats.syncs);
                self.cluster.heard(origin, Some(&full.name), now);
                self.cluster.merge_full(&full, now);
            }
        }
    }
}

fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Queues bytes for the publisher; a full or closed queue counts them as failed.
pub(crate) fn send_bytes(stats: &Stats, outbox: &mpsc::Sender<Outgoing>, message: Outgoing) {
    match outbox.try_send(message) {
        Ok(()) => {}
        Err(mpsc::error::TrySendError::Full(_)) => {
            stats.publish_failed(1, &"the queue to Redis is full");
        }
        Err(mpsc::error::TrySendError::Closed(_)) => {
            stats.publish_failed(1, &"the adapter is stopped");
        }
    }
}

/// Doubling waits between reconnection attempts.
pub(crate) struct Backoff {
    next: Duration,
    min: Duration,
    max: Duration,
}

impl Backoff {
    pub(crate) fn new(config: &RedisConfig) -> Self {
        Backoff {
            next: config.backoff_min,
            min: config.backoff_min,
            max: config.backoff_max,
        }
    }

    pub(crate) fn next(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(self.max);
        wait
    }

    pub(crate) fn reset(&mut self) {
        self.next = self.min;
    }
}

pub(crate) async fn connect(link: &Link) -> redis::RedisResult<MultiplexedConnection> {
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(link.config.timeout))
        .set_response_timeout(Some(link.config.timeout));
    link.client
        .get_multiplexed_async_connection_with_config(&config)
        .await
}

/// Publishes what is queued, a pipeline per batch; while Redis is unreachable, counts what is
/// queued as failed (the local subscribers got it) and reconnects with backoff.
pub(crate) async fn publisher(link: Arc<Link>, mut outbox: mpsc::Receiver<Outgoing>) {
    let stats = &link.stats;
    let mut backoff = Backoff::new(&link.config);
    let mut connection: Option<MultiplexedConnection> = None;
    let mut batch = Vec::with_capacity(BATCH);
    let mut failed_since_connect = false;
    loop {
        let Some(conn) = connection.as_mut() else {
            match connect(&link).await {
                Ok(conn) => {
                    connection = Some(conn);
                    stats.set_up(true, true);
                    stats.recovered();
                    backoff.reset();
                    if std::mem::take(&mut failed_since_connect) {
                        // What failed may have carried presence: send the whole of it again.
                        link.resync.notify_one();
                    }
                }
                Err(err) => {
                    stats.set_up(true, false);
                    stats.outage(&err);
                    let wait = tokio::time::sleep(backoff.next());
                    tokio::pin!(wait);
                    loop {
                        tokio::select! {
                            () = &mut wait => break,
                            n = outbox.recv_many(&mut batch, BATCH) => {
                                if n == 0 {
                                    return;
                                }
                                failed_since_connect = true;
                                stats.publish_failed(n as u64, &err);
                                batch.clear();
                            }
                        }
                    }
                }
            }
            continue;
        };
        let n = outbox.recv_many(&mut batch, BATCH).await;
        if n == 0 {
            return;
        }
        let mut pipe = redis::pipe();
        for message in &batch {
            pipe.cmd("PUBLISH")
                .arg(link.channel_of(message.to))
                .arg(&message.bytes[..])
                .ignore();
        }
        match tokio::time::timeout(link.config.timeout, pipe.query_async::<()>(conn)).await {
            Ok(Ok(())) => {
                stats.published.fetch_add(n as u64, Ordering::Relaxed);
            }
            Ok(Err(err)) => {
                stats.set_up(true, false);
                failed_since_connect = true;
                stats.publish_failed(n as u64, &err);
                connection = None;
            }
            Err(_) => {
                stats.set_up(true, false);
                failed_since_connect = true;
                stats.publish_failed(n as u64, &"PUBLISH timed out");
                connection = None;
            }
        }
        batch.clear();
    }
}

/// Subscribes to the shared channel and this node's own, hands every message to
/// [`Link::receive`], and resubscribes (then resynchronises presence) when the connection drops.
pub(crate) async fn subscriber(link: Arc<Link>, outbox: mpsc::Sender<Outgoing>) {
    let stats = &link.stats;
    let mut backoff = Backoff::new(&link.config);
    let channels = [link.config.channel(), link.config.node_channel(link.node.0)];
    loop {
        let subscribed = async {
            let mut pubsub = link.client.get_async_pubsub().await?;
            pubsub.subscribe(&channels).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        let pubsub = match tokio::time::timeout(link.config.timeout, subscribed).await {
            Ok(Ok(pubsub)) => pubsub,
            Ok(Err(err)) => {
                stats.set_up(false, false);
                stats.outage(&err);
                tokio::time::sleep(backoff.next()).await;
                continue;
            }
            Err(_) => {
                stats.set_up(false, false);
                stats.outage(&"SUBSCRIBE timed out");
                tokio::time::sleep(backoff.next()).await;
                continue;
            }
        };
        stats.set_up(false, true);
        stats.recovered();
        backoff.reset();
        link.cluster.restart_clocks(Instant::now());
        *lock(&link.last_echo) = Instant::now();
        link.resync.notify_one();
        let mut messages = pubsub.into_on_message();
        let mut probe = tokio::time::interval(link.config.heartbeat);
        probe.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let why = loop {
            tokio::select! {
                message = messages.next() => match message {
                    Some(message) => link.receive(message.get_payload_bytes(), &outbox),
                    None => break "the subscription connection closed",
                },
                _ = probe.tick() => {
                    // Heartbeats are published every heartbeat period: while they succeed, their
                    // echo must come back within the down period.
                    let silent = lock(&link.last_echo).elapsed() >= link.config.down_period;
                    if silent && stats.publisher_up.load(Ordering::Acquire) {
                        break "the subscription stopped delivering this node's own heartbeats";
                    }
                }
            }
        };
        stats.set_up(false, false);
        stats.outage(&why);
    }
}

/// Sends presence deltas every presence period, a heartbeat when there was nothing to say for a
/// heartbeat period, a hello when asked to resynchronise, and declares silent nodes down.
pub(crate) async fn heartbeat(link: Arc<Link>, outbox: mpsc::Sender<Outgoing>) {
    let mut tick = tokio::time::interval(link.config.presence_period);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last_sent: Option<Instant> = None;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = link.resync.notified() => {
                let hello = Message::Hello(link.cluster.full_state());
                link.send(&outbox, None, hello);
                last_sent = Some(Instant::now());
                continue;
            }
        }
        let now = Instant::now();
        let deltas = link.cluster.presence.take_deltas();
        let due = last_sent.is_none_or(|at| now.duration_since(at) >= link.config.heartbeat);
        if !deltas.is_empty() || due {
            let name = link.cluster.name.clone();
            link.send(&outbox, None, Message::Heartbeat { name, deltas });
            last_sent = Some(now);
        }
        let listening = link.stats.subscriber_up.load(Ordering::Acquire);
        link.cluster.check(now, listening);
    }
}
