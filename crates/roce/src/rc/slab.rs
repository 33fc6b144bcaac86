//! Object tables for the control path: slots addressed by index, with a
//! generation per slot so a stale handle never reaches a newer object.

use alloc::vec::Vec;

#[derive(Debug)]
struct Entry<T> {
    generation: u32,
    val: Option<T>,
}

/// A table of `T` (growing only on the control path).
#[derive(Debug)]
pub(crate) struct Slab<T> {
    slots: Vec<Entry<T>>,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab { slots: Vec::new() }
    }
}

impl<T> Slab<T> {
    /// Insert into the lowest free slot: `(index, generation)`.
    pub(crate) fn insert(&mut self, v: T) -> Option<(u32, u32)> {
        let idx = match self.slots.iter().position(|e| e.val.is_none()) {
            Some(i) => i,
            None => {
                self.slots.push(Entry {
                    generation: 0,
                    val: None,
                });
                self.slots.len() - 1
            }
        };
        let e = self.slots.get_mut(idx)?;
        e.generation = e.generation.wrapping_add(1);
        e.val = Some(v);
        Some((u32::try_from(idx).ok()?, e.generation))
    }

    pub(crate) fn get(&self, index: u32, generation: u32) -> Option<&T> {
        let e = self.slots.get(usize::try_from(index).ok()?)?;
        if e.generation != generation {
            return None;
        }
        e.val.as_ref()
    }

    pub(crate) fn get_mut(&mut self, index: u32, generation: u32) -> Option<&mut T> {
        let e = self.slots.get_mut(usize::try_from(index).ok()?)?;
        if e.generation != generation {
            return None;
        }
        e.val.as_mut()
    }

    /// By index alone (internal references, which are kept valid by
    /// reference counts).
    pub(crate) fn at(&self, index: u32) -> Option<&T> {
        self.slots.get(usize::try_from(index).ok()?)?.val.as_ref()
    }

    pub(crate) fn at_mut(&mut self, index: u32) -> Option<&mut T> {
        self.slots
            .get_mut(usize::try_from(index).ok()?)?
            .val
            .as_mut()
    }

    pub(crate) fn generation_of(&self, index: u32) -> u32 {
        self.slots.get(index as usize).map_or(0, |e| e.generation)
    }

    pub(crate) fn remove(&mut self, index: u32, generation: u32) -> Option<T> {
        let e = self.slots.get_mut(usize::try_from(index).ok()?)?;
        if e.generation != generation {
            return None;
        }
        e.val.take()
    }

    /// Slots ever used (an upper bound on indexes).
    pub(crate) fn capacity(&self) -> usize {
        self.slots.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_handles_miss() {
        let mut s = Slab::default();
        let (i, g) = s.insert(1).unwrap();
        assert_eq!(s.get(i, g), Some(&1));
        assert_eq!(s.remove(i, g), Some(1));
        let (i2, g2) = s.insert(2).unwrap();
        assert_eq!(i2, i);
        assert_ne!(g2, g);
        assert_eq!(s.get(i, g), None);
        assert_eq!(s.at(i), Some(&2));
    }
}
