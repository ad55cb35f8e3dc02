//! What the history scripts answer, read back into positions and recoveries.

use std::sync::Arc;

use alight_server::{Broadcast, Epoch, Lost, Outcome, Position, Recovery};
use redis::Value;

use crate::envelope::Tail;

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
pub(super) fn appended(value: &Value) -> Option<Position> {
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
pub(super) fn recovered(value: &Value, since: Option<Position>, limit: usize) -> Option<Recovery> {
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
