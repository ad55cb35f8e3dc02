//! Positions in a topic's history: an epoch and an offset, written as one opaque string.
//!
//! | form | meaning |
//! |---|---|
//! | `"<epoch>-<offset>"`, e.g. `"3f09c1d2a7b4-42"` | the 42nd broadcast of the topic's stream `3f09c1d2a7b4` |
//! | `"<epoch>-0"` | a stream nothing was broadcast on yet |
//!
//! The epoch is 12 lowercase hex digits, the offset a decimal number without leading zeros. The
//! `-` keeps every position from looking like a phoenix.js ref (decimal strings from a counter,
//! which phoenix.js compares with its pending heartbeat's): a position travels in the `ref` slot
//! of broadcast frames.

use std::fmt;
use std::str::FromStr;

/// The longest `since` a client may send, in bytes; anything longer is not a position.
pub const MAX_POSITION_LEN: usize = 64;

/// Hex digits of an epoch.
const EPOCH_DIGITS: usize = 12;
/// The epochs are 48-bit: 12 hex digits.
const EPOCH_MASK: u64 = (1 << 48) - 1;

/// Identifies one unbroken stream of a topic's broadcasts. A new epoch starts whenever the
/// history that positions were counted in is lost (a restart of an in-memory store, the eviction
/// of a whole topic), so a position from before the loss can never be mistaken for one after.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Epoch(u64);

impl Epoch {
    /// The epoch made of the low 48 bits of `bits` (use random bits).
    pub fn from_bits(bits: u64) -> Self {
        Epoch(bits & EPOCH_MASK)
    }
}

/// Where a broadcast sits in its topic's history: the `offset`-th broadcast of stream `epoch`.
///
/// Offsets grow by one per broadcast, from 1; a stream's position before its first broadcast has
/// offset 0.
///
/// ```
/// use alight_server::{Epoch, Position};
///
/// let position = Position::new(Epoch::from_bits(0x3f09_c1d2_a7b4), 42);
/// assert_eq!(position.to_string(), "3f09c1d2a7b4-42");
/// assert_eq!("3f09c1d2a7b4-42".parse::<Position>(), Ok(position));
/// assert!("42".parse::<Position>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Position {
    /// The stream.
    pub epoch: Epoch,
    /// The broadcast's number in the stream.
    pub offset: u64,
}

impl Position {
    /// The `offset`-th broadcast of stream `epoch`.
    pub fn new(epoch: Epoch, offset: u64) -> Self {
        Position { epoch, offset }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:012x}-{}", self.epoch.0, self.offset)
    }
}

/// Why a string is not a position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PositionError {
    /// Longer than [`MAX_POSITION_LEN`]; it was not looked at.
    #[error("a position is at most {MAX_POSITION_LEN} bytes")]
    TooLong,
    /// Not `<12 hex digits>-<offset>`.
    #[error("not a position: expected <12 lowercase hex digits>-<offset>")]
    Malformed,
}

impl FromStr for Position {
    type Err = PositionError;

    fn from_str(text: &str) -> Result<Self, PositionError> {
        if text.len() > MAX_POSITION_LEN {
            return Err(PositionError::TooLong);
        }
        let (epoch, offset) = text.split_once('-').ok_or(PositionError::Malformed)?;
        let hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
        if epoch.len() != EPOCH_DIGITS || !epoch.bytes().all(hex) {
            return Err(PositionError::Malformed);
        }
        let canonical = offset == "0" || !offset.starts_with('0');
        if offset.is_empty() || !canonical || !offset.bytes().all(|b| b.is_ascii_digit()) {
            return Err(PositionError::Malformed);
        }
        let epoch = u64::from_str_radix(epoch, 16).map_err(|_| PositionError::Malformed)?;
        let offset = offset.parse().map_err(|_| PositionError::Malformed)?;
        Ok(Position::new(Epoch(epoch), offset))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn garbled_strings_are_not_positions() {
        for text in [
            "",
            "-",
            "1",
            "17",
            "3f09c1d2a7b4",
            "3f09c1d2a7b4-",
            "-42",
            "3f09c1d2a7b4-042",
            "3f09c1d2a7b4-+4",
            "3f09c1d2a7b4-4a",
            "3F09C1D2A7B4-4",
            "3f09c1d2a7b-4",
            "3f09c1d2a7b4a-4",
            "3f09c1d2a7b4-18446744073709551616",
            "3f09c1d2a7b4-1-2",
        ] {
            assert_eq!(
                text.parse::<Position>(),
                Err(PositionError::Malformed),
                "{text:?}"
            );
        }
        let long = format!("3f09c1d2a7b4-{}", "1".repeat(MAX_POSITION_LEN));
        assert_eq!(long.parse::<Position>(), Err(PositionError::TooLong));
    }

    proptest! {
        #[test]
        fn a_position_reads_back_and_never_looks_like_a_phoenix_ref(bits: u64, offset: u64) {
            let position = Position::new(Epoch::from_bits(bits), offset);
            let text = position.to_string();
            prop_assert!(text.len() <= MAX_POSITION_LEN);
            prop_assert!(!text.bytes().all(|b| b.is_ascii_digit()));
            prop_assert_eq!(text.parse::<Position>(), Ok(position));
        }

        #[test]
        fn any_string_parses_or_fails_without_panicking(text in ".{0,80}") {
            if let Ok(position) = text.parse::<Position>() {
                prop_assert_eq!(position.to_string(), text);
            }
        }
    }
}
