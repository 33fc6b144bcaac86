//! A bounded per-connection record of what happened when, so that a slow
//! or failed connect or disconnect can be explained after the fact (tests
//! and tools read it; the NDK layer adds its own entries).

use crate::time::Instant;

use super::state::{Event, Input, Outgoing};

/// One thing that happened to a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    /// An input reached the state machine (a consumer call, a received
    /// message, a timer).
    Input(Input),
    /// A message was sent (first transmission or a retransmission).
    Sent(Outgoing),
    /// The consumer was told.
    Event(Event),
    /// A note from a layer above (e.g. "QP flushed"), as a static string.
    Note(&'static str),
}

/// How many entries a timeline keeps; older ones are dropped (and counted).
pub const CAPACITY: usize = 48;

/// A ring of the last [`CAPACITY`] entries with their times.
#[derive(Debug, Clone)]
pub struct Timeline {
    entries: [Option<(Instant, Entry)>; CAPACITY],
    next: usize,
    dropped: u64,
}

impl Default for Timeline {
    fn default() -> Self {
        Timeline {
            entries: [None; CAPACITY],
            next: 0,
            dropped: 0,
        }
    }
}

impl Timeline {
    /// Records `entry` at `at`, overwriting the oldest entry when full.
    pub fn record(&mut self, at: Instant, entry: Entry) {
        if let Some(slot) = self.entries.get_mut(self.next) {
            if slot.is_some() {
                self.dropped += 1;
            }
            *slot = Some((at, entry));
        }
        self.next = (self.next + 1) % CAPACITY;
    }

    /// The kept entries, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &(Instant, Entry)> + '_ {
        let (newer, older) = self.entries.split_at(self.next);
        older.iter().chain(newer.iter()).flatten()
    }

    /// Entries dropped because the ring was full.
    pub const fn dropped(&self) -> u64 {
        self.dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_in_order() {
        let mut t = Timeline::default();
        for i in 0..(CAPACITY as u64 + 5) {
            t.record(Instant::from_nanos(i), Entry::Note("x"));
        }
        let times: alloc::vec::Vec<u64> = t.iter().map(|(at, _)| at.as_nanos()).collect();
        assert_eq!(times.len(), CAPACITY);
        assert_eq!(times[0], 5);
        assert_eq!(*times.last().unwrap(), CAPACITY as u64 + 4);
        assert!(times.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(t.dropped(), 5);
    }
}
