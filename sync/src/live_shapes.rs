//! Live shapes by definition and by handle, bounded by [`Config::max_shapes`], with a count of
//! live requests per shape bounded by [`Config::max_subscribers_per_shape`].
//!
//! A handle names one shape definition for the life of this process: `<n>-<epoch>`, where `n`
//! counts shapes created and `epoch` is the start time in milliseconds, so a handle is never
//! reused, not even across restarts. [`LiveShapes::rotate`] (the table changed under the shapes, an
//! operator forced it) and eviction drop handles; a client that comes back with one gets a 409
//! and the definition's new handle.
//!
//! [`Config::max_shapes`]: crate::Config::max_shapes
//! [`Config::max_subscribers_per_shape`]: crate::Config::max_subscribers_per_shape

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::watch;

use crate::feed::Change;
use crate::index::ShapeIndex;
use crate::shape::ShapeDef;
use crate::shared_read::LastRead;

/// One live shape.
#[derive(Debug)]
pub struct Shape {
    /// Its handle.
    pub handle: String,
    /// Its definition.
    pub def: ShapeDef,
    subscribers: AtomicUsize,
    last_used: AtomicU64,
    /// Bumped after a published batch had a change for this shape.
    wakeups: watch::Sender<u64>,
    /// The latest read of its changes, shared by the long-polls at one offset.
    pub(crate) last_read: LastRead,
}

impl Shape {
    /// How many live requests (and joined channels) hold this shape.
    pub fn subscribers(&self) -> usize {
        self.subscribers.load(Ordering::Acquire)
    }

    /// A receiver that wakes when a change for this shape has been published.
    pub fn wakeups(&self) -> watch::Receiver<u64> {
        self.wakeups.subscribe()
    }
}

/// A live request's place on a shape; dropping it frees the place.
#[derive(Debug)]
pub struct Subscription {
    shape: Arc<Shape>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if self.shape.subscribers.fetch_sub(1, Ordering::AcqRel) == 1 {
            // Nobody left to share the last read with: do not hold its bytes.
            self.shape.last_read.clear();
        }
    }
}

/// The live_shapes is full of shapes that all have subscribers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many live shapes; retry later")]
pub struct TooManyShapes;

/// The shape has as many live requests as allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many live requests on this shape; retry later")]
pub struct TooManySubscribers;

#[derive(Debug, Default)]
struct Maps {
    by_key: HashMap<String, Arc<Shape>>,
    by_handle: HashMap<String, Arc<Shape>>,
    index: ShapeIndex,
}

impl Maps {
    fn remove(&mut self, shape: &Shape) {
        self.by_key.remove(&shape.def.key);
        self.by_handle.remove(&shape.handle);
        self.index.remove(shape);
    }
}

/// The live shapes.
#[derive(Debug)]
pub struct LiveShapes {
    maps: Mutex<Maps>,
    next: AtomicU64,
    clock: AtomicU64,
    epoch: u64,
    max_shapes: usize,
    max_subscribers: usize,
    /// Counts rotations and expiries, for live requests to notice theirs.
    rotations: watch::Sender<u64>,
}

impl LiveShapes {
    /// An empty live_shapes; `epoch` goes into every handle.
    pub fn new(epoch: u64, max_shapes: usize, max_subscribers: usize) -> LiveShapes {
        LiveShapes {
            maps: Mutex::new(Maps::default()),
            next: AtomicU64::new(1),
            clock: AtomicU64::new(0),
            epoch,
            max_shapes: max_shapes.max(1),
            max_subscribers,
            rotations: watch::channel(0).0,
        }
    }

    /// The shape for `def`, created (with a new handle) if it is not live.
    pub fn get_or_create(&self, def: ShapeDef) -> Result<Arc<Shape>, TooManyShapes> {
        let mut maps = self.maps.lock().unwrap_or_else(PoisonError::into_inner);
        let tick = self.clock.fetch_add(1, Ordering::Relaxed);
        if let Some(shape) = maps.by_key.get(&def.key) {
            shape.last_used.store(tick, Ordering::Relaxed);
            return Ok(shape.clone());
        }
        if maps.by_key.len() >= self.max_shapes {
            let idle = maps
                .by_key
                .values()
                .filter(|s| s.subscribers.load(Ordering::Acquire) == 0)
                .min_by_key(|s| s.last_used.load(Ordering::Relaxed))
                .cloned()
                .ok_or(TooManyShapes)?;
            maps.remove(&idle);
        }
        let handle = format!(
            "{}-{}",
            self.next.fetch_add(1, Ordering::Relaxed),
            self.epoch
        );
        let shape = Arc::new(Shape {
            handle: handle.clone(),
            def,
            subscribers: AtomicUsize::new(0),
            last_used: AtomicU64::new(tick),
            wakeups: watch::channel(0).0,
            last_read: LastRead::default(),
        });
        maps.by_key.insert(shape.def.key.clone(), shape.clone());
        maps.by_handle.insert(handle, shape.clone());
        maps.index.insert(&shape);
        Ok(shape)
    }

    /// Whether `handle` names a live shape.
    pub fn is_live(&self, handle: &str) -> bool {
        let maps = self.maps.lock().unwrap_or_else(PoisonError::into_inner);
        maps.by_handle.contains_key(handle)
    }

    /// Takes a live request's place on `shape`.
    pub fn subscribe(&self, shape: &Arc<Shape>) -> Result<Subscription, TooManySubscribers> {
        let before = shape.subscribers.fetch_add(1, Ordering::AcqRel);
        let subscription = Subscription {
            shape: shape.clone(),
        };
        if before >= self.max_subscribers {
            return Err(TooManySubscribers);
        }
        Ok(subscription)
    }

    /// Drops every shape of table `table` (index); their clients must refetch. Returns how many.
    pub fn rotate(&self, table: usize) -> usize {
        let dropped = {
            let mut maps = self.maps.lock().unwrap_or_else(PoisonError::into_inner);
            let doomed: Vec<Arc<Shape>> = maps
                .by_key
                .values()
                .filter(|s| s.def.table == table)
                .cloned()
                .collect();
            for shape in &doomed {
                maps.remove(shape);
            }
            doomed.len()
        };
        self.rotations.send_modify(|n| *n += 1);
        dropped
    }

    /// Drops `shape` (its clients can no longer be served from their offsets), if it is still
    /// live under its handle.
    pub fn expire(&self, shape: &Shape) {
        {
            let mut maps = self.maps.lock().unwrap_or_else(PoisonError::into_inner);
            if maps.by_handle.contains_key(&shape.handle) {
                maps.remove(shape);
            }
        }
        self.rotations.send_modify(|n| *n += 1);
    }

    /// Wakes the live requests of the shapes `changes` (just published to the feed) concern;
    /// returns how many filter evaluations that took.
    pub fn dispatch(&self, changes: &[Arc<Change>]) -> usize {
        let (shapes, evaluations) = {
            let maps = self.maps.lock().unwrap_or_else(PoisonError::into_inner);
            maps.index.matching(changes.iter().map(|c| &**c))
        };
        for shape in shapes {
            shape.wakeups.send_modify(|n| *n += 1);
        }
        evaluations
    }

    /// A receiver that wakes when shapes are rotated or expired.
    pub fn rotations(&self) -> watch::Receiver<u64> {
        self.rotations.subscribe()
    }

    /// How many shapes are live.
    pub fn len(&self) -> usize {
        self.maps
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .by_key
            .len()
    }

    /// Whether no shape is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::Cond;
    use crate::shape::Replica;

    fn def(key: &str, table: usize) -> ShapeDef {
        ShapeDef {
            table,
            cond: Cond::True,
            columns: vec![0],
            replica: Replica::Default,
            key: key.into(),
        }
    }

    #[test]
    fn handles_are_shared_bounded_and_rotated() {
        let live_shapes = LiveShapes::new(7, 2, 1);
        let a = live_shapes.get_or_create(def("a", 0)).expect("room");
        assert_eq!(a.handle, "1-7");
        assert_eq!(
            live_shapes.get_or_create(def("a", 0)).expect("same").handle,
            "1-7"
        );
        let _sub_a = live_shapes.subscribe(&a).expect("first subscriber");
        assert_eq!(live_shapes.subscribe(&a).err(), Some(TooManySubscribers));
        let b = live_shapes.get_or_create(def("b", 1)).expect("room");
        let _sub_b = live_shapes.subscribe(&b).expect("first subscriber");
        assert_eq!(
            live_shapes.get_or_create(def("c", 1)).err(),
            Some(TooManyShapes)
        );
        drop(_sub_b);
        // b is idle now: it is evicted for c.
        let c = live_shapes.get_or_create(def("c", 1)).expect("evicts b");
        assert!(!live_shapes.is_live(&b.handle) && live_shapes.is_live(&c.handle));
        assert_eq!(live_shapes.rotate(0), 1);
        assert!(!live_shapes.is_live("1-7"));
        let again = live_shapes.get_or_create(def("a", 0)).expect("room");
        assert_ne!(again.handle, "1-7", "a rotated shape gets a new handle");
    }
}
