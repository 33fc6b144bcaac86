//! The memory the engine moves bytes to and from.
//!
//! The engine never holds a pointer (docs/design.md: a kernel-safe core). Every
//! byte it moves goes through [`Memory`], addressed by *logical address*: the
//! kernel shell maps logical addresses to MDL-backed system addresses, the
//! host shell uses process addresses, and tests use offsets into an arena
//! ([`ArenaMemory`]). Memory regions ([`mr`](super::mr)) translate the
//! consumer's virtual addresses to logical ones.

use alloc::vec;
use alloc::vec::Vec;
use core::cell::RefCell;

use crate::wire::crc32;

/// Byte access to logical addresses, implemented once per device by the
/// shell. Both calls move the whole range or report failure with `false`
/// (an unmapped address); a failed call may have moved part of it.
pub trait Memory {
    /// Copy `dst.len()` bytes starting at `addr` into `dst`.
    fn read(&self, addr: u64, dst: &mut [u8]) -> bool;
    /// Copy `src` to the bytes starting at `addr`.
    fn write(&self, addr: u64, src: &[u8]) -> bool;
    /// [`read`](Self::read), returning the CRC-32 of the bytes read
    /// continuing from `crc` ([`crc32::update`]); `None` where `read`
    /// fails. The transmit path reads packet payloads through this, for
    /// the ICRC. This default reads, then hashes what it read; a shell
    /// that can reach the bytes should override it with
    /// [`crc32::copy_update`], which copies and hashes in one pass.
    fn read_crc(&self, addr: u64, dst: &mut [u8], crc: u32) -> Option<u32> {
        self.read(addr, dst).then(|| crc32::update(crc, dst))
    }
    /// [`write`](Self::write), returning the CRC-32 of `src` continuing
    /// from `crc`; `None` where `write` fails. The receive path places
    /// payloads through this and checks the packet's ICRC with the result
    /// ([`crate::wire::icrc::Deferred`]). This default writes, then hashes
    /// `src`; a shell that can reach the bytes should override it with
    /// [`crc32::copy_update`].
    fn write_crc(&self, addr: u64, src: &[u8], crc: u32) -> Option<u32> {
        self.write(addr, src).then(|| crc32::update(crc, src))
    }
}

impl<T: Memory + ?Sized> Memory for &T {
    fn read(&self, addr: u64, dst: &mut [u8]) -> bool {
        (**self).read(addr, dst)
    }
    fn read_crc(&self, addr: u64, dst: &mut [u8], crc: u32) -> Option<u32> {
        (**self).read_crc(addr, dst, crc)
    }
    fn write(&self, addr: u64, src: &[u8]) -> bool {
        (**self).write(addr, src)
    }
    fn write_crc(&self, addr: u64, src: &[u8], crc: u32) -> Option<u32> {
        (**self).write_crc(addr, src, crc)
    }
}

/// A flat arena of bytes whose logical addresses are offsets into it:
/// the memory of tests and simulations.
#[derive(Debug)]
pub struct ArenaMemory {
    bytes: RefCell<Vec<u8>>,
}

impl ArenaMemory {
    /// `len` zero bytes.
    pub fn new(len: usize) -> Self {
        ArenaMemory {
            bytes: RefCell::new(vec![0; len]),
        }
    }

    /// Size in bytes.
    pub fn len(&self) -> usize {
        self.bytes.borrow().len()
    }

    /// Whether the arena has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A copy of `len` bytes at `addr` (empty if out of range).
    pub fn snapshot(&self, addr: u64, len: usize) -> Vec<u8> {
        let mut v = vec![0; len];
        if self.read(addr, &mut v) {
            v
        } else {
            Vec::new()
        }
    }

    /// A copy of every byte.
    pub fn to_vec(&self) -> Vec<u8> {
        self.bytes.borrow().clone()
    }

    fn range(&self, addr: u64, len: usize) -> Option<core::ops::Range<usize>> {
        let start = usize::try_from(addr).ok()?;
        let end = start.checked_add(len)?;
        (end <= self.len()).then_some(start..end)
    }
}

impl Memory for ArenaMemory {
    fn read(&self, addr: u64, dst: &mut [u8]) -> bool {
        let Some(r) = self.range(addr, dst.len()) else {
            return false;
        };
        match self.bytes.borrow().get(r) {
            Some(src) => {
                dst.copy_from_slice(src);
                true
            }
            None => false,
        }
    }

    fn read_crc(&self, addr: u64, dst: &mut [u8], crc: u32) -> Option<u32> {
        let r = self.range(addr, dst.len())?;
        crc32::copy_update(crc, dst, self.bytes.borrow().get(r)?)
    }

    fn write_crc(&self, addr: u64, src: &[u8], crc: u32) -> Option<u32> {
        let r = self.range(addr, src.len())?;
        crc32::copy_update(crc, self.bytes.borrow_mut().get_mut(r)?, src)
    }

    fn write(&self, addr: u64, src: &[u8]) -> bool {
        let Some(r) = self.range(addr, src.len()) else {
            return false;
        };
        match self.bytes.borrow_mut().get_mut(r) {
            Some(dst) => {
                dst.copy_from_slice(src);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arena_reads_and_writes_inside_only() {
        let m = ArenaMemory::new(16);
        assert!(m.write(4, &[1, 2, 3]));
        let mut b = [0u8; 3];
        assert!(m.read(4, &mut b));
        assert_eq!(b, [1, 2, 3]);
        assert!(!m.write(15, &[1, 2]));
        assert!(!m.read(u64::MAX, &mut b));
        assert!(m.read(16, &mut []));
        assert_eq!(m.snapshot(3, 2), [0, 1]);
        assert!(!m.is_empty());
    }

    #[test]
    fn write_crc_writes_and_hashes_like_write_then_update_and_refuses_outside() {
        let src: Vec<u8> = (0..300u32).map(|i| (i * 7 + 3) as u8).collect();
        let m = ArenaMemory::new(512);
        assert_eq!(
            m.write_crc(100, &src, 0x1234_5678),
            Some(crc32::update(0x1234_5678, &src))
        );
        assert_eq!(m.snapshot(100, 300), src);
        assert_eq!(m.write_crc(400, &src, 0), None);
        assert_eq!(m.snapshot(400, 112), vec![0; 112]);
    }
}
