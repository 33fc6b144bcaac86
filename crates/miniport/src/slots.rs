//! A fixed pool of frame buffers, by index (portable): the kernel shell
//! preallocates one buffer, MDL and NET_BUFFER_LIST per slot at attach or
//! initialize time, so the data path allocates nothing.

/// Up to 64 slots, tracked in one bit mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slots {
    free: u64,
    count: u32,
}

impl Slots {
    /// `count` slots (at most 64), all free.
    pub const fn new(count: u32) -> Slots {
        let count = if count > 64 { 64 } else { count };
        let free = if count == 64 {
            u64::MAX
        } else {
            (1u64 << count) - 1
        };
        Slots { free, count }
    }

    /// Takes a free slot.
    pub fn take(&mut self) -> Option<u32> {
        if self.free == 0 {
            return None;
        }
        let i = self.free.trailing_zeros();
        self.free &= !(1u64 << i);
        Some(i)
    }

    /// Gives a slot back; `false` if it was not taken (a double free, or
    /// out of range), which the caller must ignore rather than trust.
    pub fn put(&mut self, i: u32) -> bool {
        if i >= self.count || self.free & (1u64 << i) != 0 {
            return false;
        }
        self.free |= 1u64 << i;
        true
    }

    /// Slots in use.
    pub fn in_use(&self) -> u32 {
        self.count - self.free.count_ones()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_put() {
        let mut s = Slots::new(3);
        assert_eq!(
            (s.take(), s.take(), s.take(), s.take()),
            (Some(0), Some(1), Some(2), None)
        );
        assert_eq!(s.in_use(), 3);
        assert!(s.put(1));
        assert!(!s.put(1), "double free refused");
        assert!(!s.put(7), "out of range refused");
        assert_eq!(s.take(), Some(1));
        let mut all = Slots::new(100);
        for _ in 0..64 {
            assert!(all.take().is_some());
        }
        assert_eq!(all.take(), None);
    }
}
