//! [`InMemoryHistory`]: topic histories kept in this process.
//!
//! # Locking
//! Each topic's stream sits behind its own `std::sync::Mutex`, held while a broadcast is given
//! its position, kept and handed to its delivery: that is what makes the broadcasts of a topic
//! reach subscriber queues in position order when several tasks broadcast on it at once. The
//! delivery only offers the message to queues (`try_send`), so the lock is never held across an
//! await. A family's map of streams has a mutex of its own, taken briefly to find or create a
//! stream, and while dropping streams (over the byte budget, or idle past the history's age);
//! it may be held while taking a stream's lock, never the other way round.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use alight_protocol::{Payload, SharedBroadcast};

use crate::broadcast::Broadcast;
use tokio::time::Instant;

use super::store::{Delivery, HistoryError, HistoryStore, Lost, Outcome, Recovery, StoreFuture};
use super::{Epoch, History, Position};

/// What a stream's record costs besides its broadcasts (map slot, deque, locks).
const STREAM_OVERHEAD: usize = 192;
/// What a kept broadcast costs besides its bytes (the entry, the `Broadcast`).
const ENTRY_OVERHEAD: usize = 160;
/// Idle streams are looked for at most this often when a history has no age bound.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// Topic histories in memory, on this node: lost when the process ends, so every stream starts
/// with a random epoch and positions from a previous run are told `recovered: false`.
///
/// ```
/// use alight_server::{History, InMemoryHistory};
/// use alight_server::Alight;
/// # use alight_protocol::Payload;
/// # use alight_server::{Channel, Context, HandleIn, JoinError};
/// # struct Room;
/// # impl Channel for Room {
/// #     type State = ();
/// #     async fn join(&self, _: Payload, _: &mut Context<'_>) -> Result<((), Payload), JoinError> { Ok(((), Payload::empty())) }
/// #     async fn handle_in(&self, _: &str, _: Payload, _: &mut (), _: &mut Context<'_>) -> HandleIn { HandleIn::NoReply }
/// # }
///
/// let alight = Alight::builder()
///     .channel("room:*", Room)
///     .history(History::last(100))
///     .history_store(InMemoryHistory::new())
///     .build();
/// # let _ = alight;
/// ```
#[derive(Debug, Default)]
pub struct InMemoryHistory {
    families: Mutex<HashMap<Box<str>, Arc<Family>>>,
    /// Random keys: epochs are hashes of a counter under them.
    seed: RandomState,
    streams_made: AtomicU64,
}

/// The streams of one topic family and what they hold together.
#[derive(Debug)]
struct Family {
    streams: Mutex<HashMap<Arc<str>, Arc<Mutex<Stream>>>>,
    /// Bytes held by the family's streams, overheads included.
    bytes: AtomicUsize,
    /// When idle streams were last dropped.
    swept: Mutex<Instant>,
}

/// One topic's broadcasts since its epoch began.
#[derive(Debug)]
struct Stream {
    epoch: Epoch,
    /// The offset of the latest broadcast (0 before the first).
    top: u64,
    /// The kept broadcasts, offsets `top - len + 1 ..= top`, oldest first.
    entries: VecDeque<Entry>,
    /// Bytes of the kept broadcasts.
    bytes: usize,
    /// The last append or recovery.
    touched: Instant,
    /// Dropped from its family: whoever still holds it looks again.
    removed: bool,
}

#[derive(Debug)]
struct Entry {
    at: Instant,
    size: usize,
    message: Arc<Broadcast>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The bytes a kept broadcast holds: its payload, topic and event, and about as much again for the
/// frame it is encoded in once replayed.
fn size_of(message: &Broadcast) -> usize {
    let frame = message.frame();
    let payload = match frame.payload() {
        Payload::Json(json) => json.get().len(),
        Payload::Binary(bytes) => bytes.len(),
    };
    2 * (payload + frame.topic.len() + frame.event().len()) + ENTRY_OVERHEAD
}

impl Stream {
    fn new(epoch: Epoch, now: Instant) -> Self {
        Stream {
            epoch,
            top: 0,
            entries: VecDeque::new(),
            bytes: 0,
            touched: now,
            removed: false,
        }
    }

    /// Drops what is past the history's count and age; returns the bytes freed.
    fn trim(&mut self, history: &History, now: Instant) -> usize {
        let mut freed = 0;
        while let Some(oldest) = self.entries.front() {
            let too_many = self.entries.len() > history.last;
            let too_old = history
                .ttl
                .is_some_and(|ttl| now.saturating_duration_since(oldest.at) > ttl);
            if !too_many && !too_old {
                break;
            }
            freed += oldest.size;
            self.entries.pop_front();
        }
        self.bytes -= freed;
        freed
    }

    /// Whether nothing is kept and nothing happened for the history's age.
    fn idle(&self, history: &History, now: Instant) -> bool {
        let ttl = history.ttl.unwrap_or(Duration::MAX);
        self.entries.is_empty() && now.saturating_duration_since(self.touched) > ttl
    }

    fn recover(&self, history: &History, since: Option<Position>) -> Outcome {
        let Some(since) = since else {
            return Outcome::Fresh;
        };
        if since.epoch != self.epoch {
            return Outcome::Lost(Lost::OtherEpoch);
        }
        if since.offset > self.top {
            return Outcome::Lost(Lost::Future);
        }
        // At most `top` broadcasts followed offset 0, so this fits.
        let missed = usize::try_from(self.top - since.offset).unwrap_or(usize::MAX);
        if missed > history.replay_limit_count() {
            return Outcome::Lost(Lost::TooFarBehind);
        }
        if missed > self.entries.len() {
            return Outcome::Lost(Lost::Dropped);
        }
        let from = self.entries.len() - missed;
        Outcome::Recovered(
            self.entries
                .range(from..)
                .map(|entry| entry.message.clone())
                .collect(),
        )
    }
}

impl InMemoryHistory {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn family(&self, name: &str) -> Arc<Family> {
        let mut families = lock(&self.families);
        if let Some(family) = families.get(name) {
            return family.clone();
        }
        let family = Arc::new(Family {
            streams: Mutex::default(),
            bytes: AtomicUsize::new(0),
            swept: Mutex::new(Instant::now()),
        });
        families.insert(name.into(), family.clone());
        family
    }

    fn new_epoch(&self) -> Epoch {
        let n = self.streams_made.fetch_add(1, Ordering::Relaxed);
        Epoch::from_bits(self.seed.hash_one(n))
    }

    /// The stream of `topic`, made if there is none.
    fn stream(&self, family: &Family, topic: &str, now: Instant) -> Arc<Mutex<Stream>> {
        let mut streams = lock(&family.streams);
        if let Some(stream) = streams.get(topic) {
            return stream.clone();
        }
        let stream = Arc::new(Mutex::new(Stream::new(self.new_epoch(), now)));
        streams.insert(topic.into(), stream.clone());
        family
            .bytes
            .fetch_add(STREAM_OVERHEAD + topic.len(), Ordering::Relaxed);
        stream
    }

    /// [`HistoryStore::append`] at time `now`.
    pub(crate) fn append_at(
        &self,
        family_name: &str,
        history: &History,
        message: Arc<Broadcast>,
        delivery: Delivery,
        now: Instant,
    ) -> Result<Position, HistoryError> {
        let family = self.family(family_name);
        let topic = message.frame().topic.clone();
        let size = size_of(&message);
        let (position, freed) = loop {
            let stream = self.stream(&family, &topic, now);
            let mut stream = lock(&stream);
            if stream.removed {
                continue;
            }
            let position = Position::new(stream.epoch, stream.top + 1);
            if !message.encoded().set_position(position.to_string()) {
                drop(stream);
                delivery.deliver(message);
                return Err(HistoryError::AlreadyEncoded);
            }
            // The history keeps a broadcast of its own, not the delivered one: a publisher is
            // paced by the delivered one being dropped once every subscriber queue took it. It is
            // encoded once per serializer on its first replay and shared by every replay after.
            let kept = SharedBroadcast::from_frame(message.frame().clone());
            kept.set_position(position.to_string());
            let kept = Broadcast::from_shared(kept);
            let freed = stream.trim(history, now);
            stream.top += 1;
            stream.entries.push_back(Entry {
                at: now,
                size,
                message: Arc::new(kept),
            });
            stream.bytes += size;
            stream.touched = now;
            // Under the stream's lock: the topic's broadcasts reach the queues in order.
            delivery.deliver(message);
            break (position, freed);
        };
        family.bytes.fetch_add(size, Ordering::Relaxed);
        family.bytes.fetch_sub(freed, Ordering::Relaxed);
        self.keep_within_bounds(&family, history, now);
        Ok(position)
    }

    /// [`HistoryStore::recover`] at time `now`.
    pub(crate) fn recover_at(
        &self,
        family_name: &str,
        history: &History,
        topic: &str,
        since: Option<Position>,
        now: Instant,
    ) -> Recovery {
        let family = self.family(family_name);
        let (recovery, freed) = loop {
            let stream = self.stream(&family, topic, now);
            let mut stream = lock(&stream);
            if stream.removed {
                continue;
            }
            let freed = stream.trim(history, now);
            stream.touched = now;
            let recovery = Recovery {
                position: Position::new(stream.epoch, stream.top),
                outcome: stream.recover(history, since),
            };
            break (recovery, freed);
        };
        family.bytes.fetch_sub(freed, Ordering::Relaxed);
        self.keep_within_bounds(&family, history, now);
        recovery
    }

    /// Drops idle streams now and then, and whole streams, least recently broadcast on first,
    /// while the family holds more than its budget.
    fn keep_within_bounds(&self, family: &Family, history: &History, now: Instant) {
        let sweep_every = history.ttl.map_or(SWEEP_EVERY, |ttl| ttl / 4);
        let sweep = {
            let mut swept = lock(&family.swept);
            let due = now.saturating_duration_since(*swept) >= sweep_every;
            if due {
                *swept = now;
            }
            due
        };
        let over = family.bytes.load(Ordering::Relaxed) > history.max_bytes;
        if !sweep && !over {
            return;
        }
        let mut streams = lock(&family.streams);
        let mut freed = 0;
        if sweep {
            streams.retain(|topic, stream| {
                let mut stream = lock(stream);
                freed += stream.trim(history, now);
                if !stream.idle(history, now) {
                    return true;
                }
                stream.removed = true;
                freed += STREAM_OVERHEAD + topic.len();
                false
            });
        }
        // Over budget: drop down to 7/8 of it, so that a family at its budget does not look
        // through every stream on every broadcast.
        let target = history.max_bytes - history.max_bytes / 8;
        let mut held = family.bytes.load(Ordering::Relaxed).saturating_sub(freed);
        if held > history.max_bytes {
            let mut by_age: Vec<(Instant, Arc<str>)> = streams
                .iter()
                .map(|(topic, stream)| (lock(stream).touched, topic.clone()))
                .collect();
            by_age.sort_unstable_by_key(|(touched, _)| *touched);
            for (_, topic) in by_age {
                if held <= target {
                    break;
                }
                if let Some(stream) = streams.remove(&topic) {
                    let mut stream = lock(&stream);
                    stream.removed = true;
                    let bytes = stream.bytes + STREAM_OVERHEAD + topic.len();
                    freed += bytes;
                    held = held.saturating_sub(bytes);
                }
            }
        }
        drop(streams);
        family.bytes.fetch_sub(freed, Ordering::Relaxed);
    }

    /// Bytes the family `name` holds (for tests).
    #[cfg(test)]
    fn bytes(&self, name: &str) -> usize {
        self.family(name).bytes.load(Ordering::Relaxed)
    }
}

impl HistoryStore for InMemoryHistory {
    fn append(
        &self,
        family: &str,
        history: &History,
        message: Arc<Broadcast>,
        delivery: Delivery,
    ) -> StoreFuture<'static, Result<Position, HistoryError>> {
        let appended = self.append_at(family, history, message, delivery, Instant::now());
        Box::pin(std::future::ready(appended))
    }

    fn recover(
        &self,
        family: &str,
        history: &History,
        topic: &str,
        since: Option<Position>,
    ) -> StoreFuture<'static, Result<Recovery, HistoryError>> {
        let recovery = self.recover_at(family, history, topic, since, Instant::now());
        Box::pin(std::future::ready(Ok(recovery)))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex as StdMutex;

    use proptest::prelude::*;

    use super::*;
    use crate::pubsub::PubSub;
    use crate::registry::ConnId;

    /// A PubSub that records what reaches it, in order.
    #[derive(Debug, Default)]
    struct Recorded(StdMutex<Vec<Arc<Broadcast>>>);

    impl PubSub for Recorded {
        fn broadcast(&self, message: Arc<Broadcast>, _: Option<ConnId>) {
            lock(&self.0).push(message);
        }
        fn push_to_socket(&self, _: &str, _: &str, _: &str, _: Payload) {}
        fn disconnect(&self, _: &str) {}
    }

    struct Harness {
        store: InMemoryHistory,
        history: History,
        delivered: Arc<Recorded>,
        now: Instant,
    }

    impl Harness {
        fn new(history: History) -> Self {
            Harness {
                store: InMemoryHistory::new(),
                history,
                delivered: Arc::default(),
                now: Instant::now(),
            }
        }

        fn append(&self, topic: &str, n: u64) -> Position {
            let payload = Payload::json(&n).unwrap_or_else(|_| Payload::empty());
            let message = Arc::new(Broadcast::new(topic, "n", payload));
            let delivery = Delivery::new(self.delivered.clone(), None);
            self.store
                .append_at("f", &self.history, message, delivery, self.now)
                .expect("an unencoded broadcast is always kept")
        }

        fn recover(&self, topic: &str, since: Option<Position>) -> Recovery {
            self.store
                .recover_at("f", &self.history, topic, since, self.now)
        }

        fn numbers(&self, topic: &str, since: Position) -> Option<Vec<u64>> {
            match self.recover(topic, Some(since)).outcome {
                Outcome::Recovered(messages) => Some(
                    messages
                        .iter()
                        .map(|m| m.frame().payload().deserialize().expect("a number"))
                        .collect(),
                ),
                _ => None,
            }
        }

        fn lost(&self, topic: &str, since: Position) -> Option<Lost> {
            match self.recover(topic, Some(since)).outcome {
                Outcome::Lost(lost) => Some(lost),
                _ => None,
            }
        }
    }

    #[test]
    fn positions_grow_by_one_and_ride_on_the_delivered_broadcast() {
        let h = Harness::new(History::last(10));
        let start = h.recover("room:a", None).position;
        assert_eq!(start.offset, 0);
        let positions: Vec<Position> = (1..=3).map(|n| h.append("room:a", n)).collect();
        assert_eq!(
            positions.iter().map(|p| p.offset).collect::<Vec<_>>(),
            [1, 2, 3]
        );
        assert!(positions.iter().all(|p| p.epoch == start.epoch));
        let delivered = lock(&h.delivered.0);
        let on_wire: Vec<Option<&str>> = delivered.iter().map(|m| m.encoded().position()).collect();
        let expected: Vec<String> = positions.iter().map(Position::to_string).collect();
        assert_eq!(
            on_wire,
            expected
                .iter()
                .map(|p| Some(p.as_str()))
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn another_topic_has_another_epoch() {
        let h = Harness::new(History::last(10));
        let a = h.append("room:a", 1);
        let b = h.append("room:b", 1);
        assert_ne!(a.epoch, b.epoch);
        assert_eq!(h.lost("room:b", a), Some(Lost::OtherEpoch));
    }

    #[test]
    fn a_position_from_the_future_or_another_store_is_lost() {
        let h = Harness::new(History::last(10));
        let at = h.append("room:a", 1);
        assert_eq!(
            h.lost("room:a", Position::new(at.epoch, 2)),
            Some(Lost::Future)
        );
        let restarted = Harness::new(History::last(10));
        restarted.append("room:a", 1);
        assert_eq!(restarted.lost("room:a", at), Some(Lost::OtherEpoch));
    }

    #[test]
    fn the_replay_limit_refuses_a_flood() {
        let h = Harness::new(History::last(100).replay_limit(5));
        let start = h.recover("room:a", None).position;
        for n in 1..=6 {
            h.append("room:a", n);
        }
        assert_eq!(h.lost("room:a", start), Some(Lost::TooFarBehind));
        assert_eq!(
            h.numbers("room:a", Position::new(start.epoch, 1)),
            Some(vec![2, 3, 4, 5, 6])
        );
    }

    #[test]
    fn broadcasts_older_than_the_age_are_dropped_and_not_earlier() {
        let mut h = Harness::new(History::last(100).for_at_least(Duration::from_secs(60)));
        let start = h.recover("room:a", None).position;
        h.append("room:a", 1);
        h.now += Duration::from_secs(60);
        h.append("room:a", 2);
        assert_eq!(h.numbers("room:a", start), Some(vec![1, 2]));
        h.now += Duration::from_secs(1);
        assert_eq!(h.lost("room:a", start), Some(Lost::Dropped));
        assert_eq!(
            h.numbers("room:a", Position::new(start.epoch, 1)),
            Some(vec![2])
        );
    }

    #[test]
    fn an_idle_topic_is_forgotten_after_its_age_and_starts_a_new_epoch() {
        let mut h = Harness::new(History::last(100).for_at_least(Duration::from_secs(60)));
        let old = h.append("room:a", 1);
        h.now += Duration::from_secs(200);
        // Another topic's broadcast sweeps the idle one.
        h.append("room:b", 1);
        let now = h.recover("room:a", None).position;
        assert_ne!(now.epoch, old.epoch);
        assert_eq!(now.offset, 0);
        assert_eq!(h.lost("room:a", old), Some(Lost::OtherEpoch));
    }

    #[test]
    fn over_the_byte_budget_the_least_recent_topics_go_whole() {
        let mut h = Harness::new(History::last(1_000).max_bytes(20_000));
        let old = h.append("room:old", 0);
        for n in 1..=200 {
            h.now += Duration::from_millis(1);
            h.append("room:busy", n);
            assert!(h.store.bytes("f") <= 20_000, "held {}", h.store.bytes("f"));
        }
        assert_eq!(h.lost("room:old", old), Some(Lost::OtherEpoch));
    }

    /// A PubSub whose subscribers took everything at once.
    #[derive(Debug)]
    struct Taken;

    impl PubSub for Taken {
        fn broadcast(&self, _: Arc<Broadcast>, _: Option<ConnId>) {}
        fn push_to_socket(&self, _: &str, _: &str, _: &str, _: Payload) {}
        fn disconnect(&self, _: &str) {}
    }

    #[test]
    fn the_delivered_broadcast_is_not_held_by_the_history_and_replays_share_one_copy() {
        let h = Harness::new(History::last(10));
        let start = h.recover("room:a", None).position;
        let message = Arc::new(Broadcast::new("room:a", "n", Payload::empty()));
        let delivered = Arc::downgrade(&message);
        let delivery = Delivery::new(Arc::new(Taken), None);
        let position = h
            .store
            .append_at("f", &h.history, message, delivery, h.now)
            .expect("kept");
        // A publisher waiting for its broadcast to be taken is not held by the history.
        assert_eq!(delivered.strong_count(), 0);
        let replays: Vec<Arc<Broadcast>> = (0..2)
            .filter_map(|_| match h.recover("room:a", Some(start)).outcome {
                Outcome::Recovered(mut messages) => messages.pop(),
                _ => None,
            })
            .collect();
        assert_eq!(replays.len(), 2);
        assert!(
            Arc::ptr_eq(&replays[0], &replays[1]),
            "one copy for every replay"
        );
        assert_eq!(
            replays[0].encoded().position(),
            Some(position.to_string().as_str())
        );
    }

    proptest! {
        /// Broadcasts on several topics: each topic's offsets count 1, 2, 3, … in one epoch,
        /// and every `since` of the last `kept` positions recovers exactly what followed it.
        #[test]
        fn what_follows_a_kept_position_is_recovered_in_order(
            topics in proptest::collection::vec(0..3usize, 1..120),
            last in 1..40usize,
            limit in 1..60usize,
        ) {
            let h = Harness::new(History::last(last).replay_limit(limit));
            let names = ["room:a", "room:b", "room:c"];
            let starts: Vec<Position> = names.iter().map(|t| h.recover(t, None).position).collect();
            let mut sent: Vec<Vec<u64>> = vec![Vec::new(); 3];
            for (n, &t) in topics.iter().enumerate() {
                let position = h.append(names[t], n as u64);
                sent[t].push(n as u64);
                prop_assert_eq!(position, Position::new(starts[t].epoch, sent[t].len() as u64));
            }
            for t in 0..3 {
                let top = sent[t].len();
                for offset in 0..=top {
                    let since = Position::new(starts[t].epoch, offset as u64);
                    let missed = top - offset;
                    let expected = (missed <= last.min(limit)).then(|| sent[t][offset..].to_vec());
                    prop_assert_eq!(h.numbers(names[t], since), expected);
                }
            }
        }

        /// Whatever is appended, the family never holds more than its budget once an append
        /// returns.
        #[test]
        fn the_byte_budget_holds(
            appends in proptest::collection::vec((0..20usize, 0..2_000usize), 1..200),
            budget in 4_000..40_000usize,
        ) {
            let h = Harness::new(History::last(50).max_bytes(budget));
            for (topic, len) in appends {
                let message = Arc::new(Broadcast::new(
                    format!("room:{topic}"),
                    "n",
                    Payload::json(&"x".repeat(len)).unwrap_or_else(|_| Payload::empty()),
                ));
                let delivery = Delivery::new(h.delivered.clone(), None);
                let _ = h.store.append_at("f", &h.history, message, delivery, h.now);
                prop_assert!(h.store.bytes("f") <= budget);
            }
        }
    }
}
