//! The feed: committed changes in commit order, held in memory up to a bound (a number of
//! changes and a number of bytes), with a watermark readers wait on.
//!
//! Every change has the id the change log gave it (ids grow in commit order and a transaction's
//! changes have consecutive ids, because SQLite admits one writer at a time). The feed keeps the
//! changes with ids in `(floor, head]`; [`Feed::since`] answers "everything after id `x`" for
//! `x >= floor` and says [`Since::Gone`] below it, which the HTTP layer turns into a 409
//! must-refetch and the channel into `recovered: false` (or `refetch` for a live subscriber).
//! Every shape's log is a view of this one feed, so the bound holds for all shapes together,
//! however many there are. The capture thread is the only writer ([`Feed::publish`]); readers take the lock
//! for a copy of `Arc`s, never across an `.await`.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::watch;

use crate::value::SqlValue;

/// What a change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// A row was inserted.
    Insert,
    /// A row was updated.
    Update,
    /// A row was deleted.
    Delete,
}

/// One committed row change.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// The change log's id: the position in the feed.
    pub id: i64,
    /// The id of the last change of the batch this one was committed in (the changes up to it
    /// are delivered together).
    pub batch_end: i64,
    /// The table's index in the engine's tables.
    pub table: usize,
    /// What happened.
    pub op: Op,
    /// The row before (updates and deletes), every column in table order.
    pub old: Option<Vec<SqlValue>>,
    /// The row after (inserts and updates), every column in table order.
    pub new: Option<Vec<SqlValue>>,
}

impl Change {
    /// About how many bytes the change takes in memory (for the feed's byte bound).
    pub fn size(&self) -> usize {
        let row = |row: &Option<Vec<SqlValue>>| {
            row.as_ref().map_or(0, |values| {
                values
                    .iter()
                    .map(|v| match v {
                        SqlValue::Text(t) => t.len() + std::mem::size_of::<SqlValue>(),
                        _ => std::mem::size_of::<SqlValue>(),
                    })
                    .sum::<usize>()
            })
        };
        std::mem::size_of::<Change>() + row(&self.old) + row(&self.new)
    }
}

/// The answer of [`Feed::since`].
#[derive(Debug)]
pub enum Since {
    /// The changes after the offset, up to the returned head, oldest first.
    Changes {
        /// The changes.
        changes: Vec<Arc<Change>>,
        /// The id up to which the feed had looked: the next offset.
        head: i64,
    },
    /// Changes after the offset have been dropped from the feed.
    Gone,
}

#[derive(Debug)]
struct Log {
    changes: VecDeque<Arc<Change>>,
    /// Every change with an id at or below it has been dropped.
    floor: i64,
    /// The highest id the capture has processed.
    head: i64,
    /// The sum of [`Change::size`] over `changes`.
    bytes: usize,
}

/// The bounded, shared feed of changes.
#[derive(Debug)]
pub struct Feed {
    log: Mutex<Log>,
    capacity: usize,
    max_bytes: usize,
    head: watch::Sender<i64>,
}

impl Feed {
    /// An empty feed that starts after id `head` and holds at most `capacity` changes and about
    /// `max_bytes` of them (always the latest one).
    pub fn new(head: i64, capacity: usize, max_bytes: usize) -> Feed {
        Feed {
            log: Mutex::new(Log {
                changes: VecDeque::new(),
                floor: head,
                head,
                bytes: 0,
            }),
            capacity: capacity.max(1),
            max_bytes,
            head: watch::channel(head).0,
        }
    }

    /// Appends the changes of one batch of whole transactions, processed up to id `head`, and
    /// wakes the readers. Drops the oldest changes past the bounds. Returns the batch as held.
    pub fn publish(&self, batch: Vec<Change>, head: i64) -> Vec<Arc<Change>> {
        let batch: Vec<Arc<Change>> = batch.into_iter().map(Arc::new).collect();
        {
            let mut log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
            log.bytes += batch.iter().map(|c| c.size()).sum::<usize>();
            log.changes.extend(batch.iter().cloned());
            while log.changes.len() > self.capacity
                || (log.bytes > self.max_bytes && log.changes.len() > 1)
            {
                let Some(dropped) = log.changes.pop_front() else {
                    break;
                };
                log.floor = dropped.id;
                log.bytes -= dropped.size();
            }
            log.head = log.head.max(head);
        }
        self.head.send_replace(head);
        batch
    }

    /// The highest id processed so far.
    pub fn head(&self) -> i64 {
        *self.head.borrow()
    }

    /// A receiver that wakes when the head moves.
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.head.subscribe()
    }

    /// The changes after `offset` (at most `limit`, cut only at a batch's end unless one batch is
    /// larger), or [`Since::Gone`] if some were dropped.
    pub fn since(&self, offset: i64, limit: usize) -> Since {
        let log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        if offset < log.floor {
            return Since::Gone;
        }
        let start = log.changes.partition_point(|c| c.id <= offset);
        let mut changes: Vec<Arc<Change>> = Vec::new();
        let mut head = log.head.max(offset);
        for change in log.changes.range(start..) {
            if changes.len() >= limit && changes.last().is_some_and(|c| c.id == c.batch_end) {
                head = changes.last().map_or(head, |c| c.id);
                break;
            }
            changes.push(change.clone());
        }
        Since::Changes { changes, head }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(id: i64, batch_end: i64) -> Change {
        Change {
            id,
            batch_end,
            table: 0,
            op: Op::Insert,
            old: None,
            new: Some(vec![SqlValue::Integer(id)]),
        }
    }

    fn ids(since: Since) -> Option<(Vec<i64>, i64)> {
        match since {
            Since::Changes { changes, head } => {
                Some((changes.iter().map(|c| c.id).collect(), head))
            }
            Since::Gone => None,
        }
    }

    #[test]
    fn since_is_bounded_and_cut_at_batch_ends() {
        let feed = Feed::new(10, 4, usize::MAX);
        assert_eq!(ids(feed.since(10, 100)), Some((vec![], 10)));
        feed.publish(vec![change(11, 12), change(12, 12)], 12);
        feed.publish(vec![change(13, 14), change(14, 14)], 15);
        assert_eq!(feed.head(), 15);
        assert_eq!(ids(feed.since(10, 100)), Some((vec![11, 12, 13, 14], 15)));
        assert_eq!(ids(feed.since(12, 100)), Some((vec![13, 14], 15)));
        // A limit of one still keeps a batch whole.
        assert_eq!(ids(feed.since(10, 1)), Some((vec![11, 12], 12)));
        feed.publish(vec![change(16, 16)], 16);
        assert!(ids(feed.since(10, 100)).is_none(), "11 was dropped");
        assert_eq!(ids(feed.since(11, 100)), Some((vec![12, 13, 14, 16], 16)));
    }

    #[test]
    fn the_byte_bound_drops_the_oldest_changes() {
        let big = |id: i64| Change {
            new: Some(vec![SqlValue::Text("x".repeat(1000))]),
            ..change(id, id)
        };
        let feed = Feed::new(0, 100, 2500 + 2 * std::mem::size_of::<Change>());
        feed.publish(vec![big(1), big(2)], 2);
        assert_eq!(
            ids(feed.since(0, 100)).map(|(ids, _)| ids),
            Some(vec![1, 2])
        );
        feed.publish(vec![big(3)], 3);
        assert!(
            ids(feed.since(0, 100)).is_none(),
            "1 was dropped for the bytes"
        );
        assert_eq!(
            ids(feed.since(1, 100)).map(|(ids, _)| ids),
            Some(vec![2, 3])
        );
    }
}
