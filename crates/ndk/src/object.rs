//! The provider's object table and the lifetime rules every NDK object
//! follows (the NDKPI object lifetime requirements page).
//!
//! Each entry counts what its close must wait for: live successors (a QP
//! for its PD and CQs, a connector for its QP and listener), upcalls queued
//! or being made for it, and a pending request. A close that cannot
//! complete at once is recorded and completes (with its CloseCompletion as
//! the object's last upcall) when the counts reach zero; the entry is then
//! kept until that last upcall has returned, so the antecedents' own closes
//! wait for it too (the NDKPI object lifetime requirements page).

use alloc::vec::Vec;

use crate::upcall::Callback;

/// Names an object for as long as it exists; a stale id never reaches a
/// newer object in the same slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectId {
    index: u32,
    generation: u32,
}

impl ObjectId {
    /// A raw value for the ABI layer to keep in the consumer-visible object.
    pub const fn to_bits(self) -> u64 {
        ((self.generation as u64) << 32) | self.index as u64
    }

    /// The id `to_bits` produced.
    pub const fn from_bits(bits: u64) -> Self {
        ObjectId {
            index: bits as u32,
            generation: (bits >> 32) as u32,
        }
    }
}

/// Where an object is in its close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseState {
    /// In use.
    Open,
    /// Close requested; completes (with this callback) when nothing is left
    /// to wait for.
    Pending(Callback),
    /// Closed; waiting for its close completion upcall to return.
    Closing,
}

/// One table entry: the object and its lifetime bookkeeping.
#[derive(Debug)]
pub struct Entry<T> {
    pub object: T,
    /// Objects whose antecedent this one is and that are not yet gone.
    pub successors: u32,
    /// Upcalls for this object queued or running.
    pub upcalls: u32,
    /// The objects this one holds a successor count on.
    pub antecedents: Vec<ObjectId>,
    pub close: CloseState,
}

#[derive(Debug)]
struct Slot<T> {
    generation: u32,
    entry: Option<Entry<T>>,
}

/// A table of objects with generation-checked ids.
#[derive(Debug)]
pub struct Table<T> {
    slots: Vec<Slot<T>>,
    free: Vec<u32>,
}

impl<T> Default for Table<T> {
    fn default() -> Self {
        Table {
            slots: Vec::new(),
            free: Vec::new(),
        }
    }
}

impl<T> Table<T> {
    /// Adds an object whose antecedents are `antecedents` (their successor
    /// counts are the caller's to raise).
    pub fn insert(&mut self, object: T, antecedents: Vec<ObjectId>) -> ObjectId {
        let entry = Entry {
            object,
            successors: 0,
            upcalls: 0,
            antecedents,
            close: CloseState::Open,
        };
        if let Some(index) = self.free.pop()
            && let Some(slot) = self.slots.get_mut(index as usize)
        {
            slot.generation = slot.generation.wrapping_add(1);
            slot.entry = Some(entry);
            return ObjectId {
                index,
                generation: slot.generation,
            };
        }
        let index = self.slots.len() as u32;
        self.slots.push(Slot {
            generation: 0,
            entry: Some(entry),
        });
        ObjectId {
            index,
            generation: 0,
        }
    }

    /// The entry of `id`, if it still exists.
    pub fn get(&self, id: ObjectId) -> Option<&Entry<T>> {
        let slot = self.slots.get(id.index as usize)?;
        if slot.generation != id.generation {
            return None;
        }
        slot.entry.as_ref()
    }

    /// The entry of `id`, mutably.
    pub fn get_mut(&mut self, id: ObjectId) -> Option<&mut Entry<T>> {
        let slot = self.slots.get_mut(id.index as usize)?;
        if slot.generation != id.generation {
            return None;
        }
        slot.entry.as_mut()
    }

    /// Removes `id`, returning its entry.
    pub fn remove(&mut self, id: ObjectId) -> Option<Entry<T>> {
        let slot = self.slots.get_mut(id.index as usize)?;
        if slot.generation != id.generation {
            return None;
        }
        let entry = slot.entry.take()?;
        self.free.push(id.index);
        Some(entry)
    }

    /// Ids of every entry, for scans on the control path.
    pub fn ids(&self) -> impl Iterator<Item = ObjectId> + '_ {
        self.slots.iter().enumerate().filter_map(|(i, s)| {
            s.entry.as_ref().map(|_| ObjectId {
                index: i as u32,
                generation: s.generation,
            })
        })
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.slots.iter().filter(|s| s.entry.is_some()).count()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_ids_never_reach_new_objects() {
        let mut t = Table::default();
        let a = t.insert(1u8, Vec::new());
        assert_eq!(t.get(a).map(|e| e.object), Some(1));
        assert!(t.remove(a).is_some());
        let b = t.insert(2u8, Vec::new());
        assert_ne!(a, b);
        assert!(t.get(a).is_none());
        assert_eq!(t.get(b).map(|e| e.object), Some(2));
        assert_eq!(ObjectId::from_bits(b.to_bits()), b);
        assert_eq!(t.len(), 1);
    }
}
