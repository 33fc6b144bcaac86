//! The engine's timer index: which QP's deadline comes first, without a
//! scan over every QP (a device may hold tens of thousands).
//!
//! A binary min-heap of (deadline, slot) with lazy deletion: setting a
//! QP's deadline records it per slot and pushes a heap entry; entries that
//! no longer match their slot's record are dropped when they reach the
//! top. Capacity is reserved when QPs are created (control path), so
//! setting a deadline on the hot path never allocates: when stale entries
//! fill the heap, it is rebuilt in place from the per-slot records.

use alloc::collections::BinaryHeap;
use alloc::vec::Vec;
use core::cmp::Reverse;

use crate::time::Instant;

/// Heap entries per QP slot before a rebuild.
const ENTRIES_PER_SLOT: usize = 4;

#[derive(Debug, Default)]
pub(crate) struct TimerIndex {
    /// The deadline each slot has now.
    current: Vec<Option<Instant>>,
    heap: BinaryHeap<Reverse<(Instant, u32)>>,
}

impl TimerIndex {
    /// Room for `slots` QP slots (control path).
    pub(crate) fn grow_to(&mut self, slots: usize) {
        if self.current.len() < slots {
            self.current.resize(slots, None);
        }
        let want = slots.saturating_mul(ENTRIES_PER_SLOT);
        self.heap.reserve(want.saturating_sub(self.heap.len()));
    }

    /// Records `slot`'s deadline (`None`: no timer).
    pub(crate) fn set(&mut self, slot: u32, deadline: Option<Instant>) {
        let Some(cur) = self.current.get_mut(slot as usize) else {
            return;
        };
        if *cur == deadline {
            return;
        }
        *cur = deadline;
        if let Some(t) = deadline {
            if self.heap.len() == self.heap.capacity() {
                self.rebuild();
            }
            if self.heap.len() < self.heap.capacity() {
                self.heap.push(Reverse((t, slot)));
            }
        }
        self.drop_stale();
    }

    /// The earliest deadline.
    pub(crate) fn first(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((t, _))| *t)
    }

    /// A slot whose deadline is at or before `now`, taken off the index
    /// (the caller re-records its new deadline).
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<u32> {
        self.drop_stale();
        let &Reverse((t, slot)) = self.heap.peek()?;
        if t > now {
            return None;
        }
        self.heap.pop();
        if let Some(cur) = self.current.get_mut(slot as usize) {
            *cur = None;
        }
        self.drop_stale();
        Some(slot)
    }

    /// Pops entries that no longer describe their slot.
    fn drop_stale(&mut self) {
        while let Some(&Reverse((t, slot))) = self.heap.peek() {
            if self.current.get(slot as usize).copied().flatten() == Some(t) {
                break;
            }
            self.heap.pop();
        }
    }

    /// Rebuilds the heap from the records, in place.
    fn rebuild(&mut self) {
        self.heap.clear();
        for (slot, t) in self.current.iter().enumerate() {
            if let Some(t) = t {
                self.heap.push(Reverse((*t, slot as u32)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(n: u64) -> Instant {
        Instant::from_nanos(n)
    }

    #[test]
    fn earliest_first_and_changes_replace() {
        let mut t = TimerIndex::default();
        t.grow_to(4);
        t.set(0, Some(at(30)));
        t.set(1, Some(at(10)));
        t.set(2, Some(at(20)));
        assert_eq!(t.first(), Some(at(10)));
        // Moving slot 1 later leaves a stale entry that is skipped.
        t.set(1, Some(at(40)));
        assert_eq!(t.first(), Some(at(20)));
        t.set(2, None);
        assert_eq!(t.first(), Some(at(30)));
        assert_eq!(t.pop_due(at(29)), None);
        assert_eq!(t.pop_due(at(35)), Some(0));
        assert_eq!(t.pop_due(at(35)), None);
        assert_eq!(t.first(), Some(at(40)));
    }

    #[test]
    fn churn_never_outgrows_the_reserved_capacity() {
        let mut t = TimerIndex::default();
        t.grow_to(3);
        let cap = t.heap.capacity();
        for i in 0..10_000u64 {
            t.set((i % 3) as u32, Some(at(1_000 - (i % 997))));
        }
        assert_eq!(t.heap.capacity(), cap);
        let firsts: Vec<_> = (0..3).filter_map(|s| t.current[s]).collect();
        assert_eq!(t.first(), firsts.iter().min().copied());
    }
}
