//! Memory regions, memory windows, their keys and every access check
//! (the NDK_FN_REGISTER_MR, NDK_FN_FAST_REGISTER and NDK_FN_BUILD_LAM pages; IBA Vol 1 ch. 10 (memory regions and windows); rxe_mr.c / rxe_mw.c for shape).
//!
//! One key table holds every MR and MW. A key is `index << 8 | key byte`:
//! the index finds the table slot, the key byte must match the object's
//! current one. The byte changes on every fast-register and bind, and a
//! slot's byte moves on when it is reused, so stale keys fail. Index 0 is
//! the privileged local key ([`PRIVILEGED_LKEY`]): its SGE addresses are
//! logical addresses, it grants local read and write and never remote
//! access (the NDK_FN_REGISTER_MR, NDK_FN_FAST_REGISTER and NDK_FN_BUILD_LAM pages, NdkGetPrivilegedMemoryRegionToken).

use alloc::vec;
use alloc::vec::Vec;
use core::ops::BitOr;

use super::Error;
use super::cq::WcStatus;
use super::memory::Memory;
use super::wqe::Sge;

mod map;
mod sgl;

use map::Map;
pub(crate) use map::Place;
pub use map::Translation;

/// The privileged local key: SGE addresses are logical addresses.
pub const PRIVILEGED_LKEY: u32 = 0;

/// Access rights of an MR or MW. Local read is always granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Access(u8);

impl Access {
    /// No rights beyond local read.
    pub const NONE: Access = Access(0);
    /// The local side may write (receive buffers, read sinks).
    pub const LOCAL_WRITE: Access = Access(1);
    /// A peer may RDMA READ.
    pub const REMOTE_READ: Access = Access(2);
    /// A peer may RDMA WRITE (IBA requires LOCAL_WRITE with it).
    pub const REMOTE_WRITE: Access = Access(4);

    /// The raw bits.
    pub const fn bits(self) -> u8 {
        self.0
    }
    /// From raw bits (unknown bits dropped).
    pub const fn from_bits(bits: u8) -> Access {
        Access(bits & 7)
    }
    /// Whether every right in `other` is in `self`.
    pub const fn contains(self, other: Access) -> bool {
        self.0 & other.0 == other.0
    }
    /// Both sets of rights.
    pub const fn union(self, other: Access) -> Access {
        Access(self.0 | other.0)
    }
    /// Any remote right.
    pub const fn is_remote(self) -> bool {
        self.0 & (Self::REMOTE_READ.0 | Self::REMOTE_WRITE.0) != 0
    }
}

impl BitOr for Access {
    type Output = Access;
    fn bitor(self, rhs: Access) -> Access {
        self.union(rhs)
    }
}

/// A handle to an MR: table index plus a generation, so a stale handle
/// never reaches a newer object in the same slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MrHandle {
    pub(crate) index: u32,
    pub(crate) generation: u32,
}

/// A handle to an MW.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MwHandle {
    pub(crate) index: u32,
    pub(crate) generation: u32,
}

/// What a local invalidate targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InvalidateTarget {
    /// A fast-register MR.
    Mr(MrHandle),
    /// A memory window.
    Mw(MwHandle),
}

/// Why an access was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccessError {
    /// No object has this key (index free, key byte stale, wrong kind).
    BadKey,
    /// The object belongs to another protection domain.
    WrongPd,
    /// The object is not valid (invalidated, never fast-registered, window unbound).
    NotValid,
    /// The range is outside the object (or its arithmetic overflows).
    OutOfBounds,
    /// The object does not grant the right asked for.
    NoPermission,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MrKind {
    Registered,
    FastReg { max_pages: usize, remote_ok: bool },
}

#[derive(Debug)]
struct Mr {
    pd: u32,
    kind: MrKind,
    valid: bool,
    access: Access,
    iova: u64,
    length: u64,
    map: Map,
    /// Fast-register: the page list of the pending registration, swapped
    /// in when its work request executes (so posting never touches a live
    /// translation).
    staged: Vec<u64>,
    staged_pending: bool,
    /// Current key byte.
    key: u8,
    /// Last key byte handed out (a pending fast-register's).
    issued: u8,
    /// Windows bound to this MR.
    binds: u32,
}

impl Mr {
    fn contains(&self, va: u64, len: u64) -> Option<u64> {
        let off = va.checked_sub(self.iova)?;
        let end = off.checked_add(len)?;
        (end <= self.length).then_some(off)
    }
}

#[derive(Debug, Clone, Copy)]
struct Binding {
    mr: u32,
    iova: u64,
    length: u64,
    access: Access,
}

#[derive(Debug)]
struct Mw {
    pd: u32,
    binding: Option<Binding>,
    key: u8,
    issued: u8,
}

#[derive(Debug)]
enum Obj {
    Free,
    Privileged,
    Mr(Mr),
    Mw(Mw),
}

#[derive(Debug)]
struct Slot {
    generation: u32,
    /// The key byte the next object in this slot starts from.
    next_key: u8,
    obj: Obj,
}

/// Parameters of a fast-register work request, as stored in the WQE (the
/// page list itself is staged in the MR at post time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct FastRegParams {
    pub(crate) iova: u64,
    pub(crate) length: u64,
    pub(crate) page_size: u64,
    pub(crate) fbo: u64,
    pub(crate) npages: u32,
    pub(crate) access: Access,
}

/// Every MR and MW of the device.
#[derive(Debug)]
pub(crate) struct KeyTable {
    slots: Vec<Slot>,
    seed: u32,
}

fn key_of(index: u32, byte: u8) -> u32 {
    (index << 8) | u32::from(byte)
}

impl KeyTable {
    /// A table with only the privileged key; `seed` picks the first key
    /// bytes (docs/design.md: determinism, randomness passed in).
    pub(crate) fn new(seed: u32) -> Self {
        KeyTable {
            seed,
            slots: vec![Slot {
                generation: 0,
                next_key: 0,
                obj: Obj::Privileged,
            }],
        }
    }

    fn alloc_slot(
        &mut self,
        make: impl FnOnce(u8) -> Obj,
        seed_byte: u8,
    ) -> Result<(u32, u32), Error> {
        let free = self.slots.iter().position(|s| matches!(s.obj, Obj::Free));
        let index = match free {
            Some(i) => i,
            None => {
                if self.slots.len() >= (1 << 24) {
                    return Err(Error::NoResources);
                }
                self.slots.push(Slot {
                    generation: 0,
                    next_key: seed_byte,
                    obj: Obj::Free,
                });
                self.slots.len() - 1
            }
        };
        let slot = self.slots.get_mut(index).ok_or(Error::NoResources)?;
        slot.generation = slot.generation.wrapping_add(1);
        let key = slot.next_key;
        slot.next_key = key.wrapping_add(1);
        slot.obj = make(key);
        let index = u32::try_from(index).map_err(|_| Error::NoResources)?;
        Ok((index, slot.generation))
    }

    fn seed_byte(&self) -> u8 {
        // Spread first key bytes over the slots so a key that is off by
        // one index does not also match by key byte.
        (self.slots.len() as u8)
            .wrapping_mul(37)
            .wrapping_add(0x5A)
            .wrapping_add(self.seed as u8)
    }

    /// Register an MR over `length` bytes at virtual address `iova`.
    pub(crate) fn register_mr(
        &mut self,
        pd: u32,
        iova: u64,
        length: u64,
        access: Access,
        tr: Translation<'_>,
    ) -> Result<MrHandle, Error> {
        check_access(access)?;
        iova.checked_add(length).ok_or(Error::InvalidArgument)?;
        let map = match tr {
            Translation::Contiguous { base } => {
                base.checked_add(length).ok_or(Error::InvalidArgument)?;
                Map::Contiguous { base }
            }
            Translation::Pages {
                page_size,
                first_byte_offset,
                pages,
            } => {
                check_pages(page_size, first_byte_offset, pages.len(), length)?;
                Map::Pages {
                    page_size,
                    fbo: first_byte_offset,
                    pages: pages.to_vec(),
                    count: pages.len(),
                }
            }
            Translation::Ranges { ranges } => {
                check_ranges(ranges, length)?;
                Map::Ranges {
                    ranges: ranges.to_vec(),
                }
            }
        };
        let seed = self.seed_byte();
        let (index, generation) = self.alloc_slot(
            |key| {
                Obj::Mr(Mr {
                    pd,
                    kind: MrKind::Registered,
                    valid: true,
                    access,
                    iova,
                    length,
                    map,
                    staged: Vec::new(),
                    staged_pending: false,
                    key,
                    issued: key,
                    binds: 0,
                })
            },
            seed,
        )?;
        Ok(MrHandle { index, generation })
    }

    /// An MR for fast-register work requests with room for `max_pages`
    /// pages; `remote_ok` says whether registrations may grant remote
    /// access (NdkInitializeFastRegisterMr's RemoteAccess).
    pub(crate) fn alloc_fast_reg_mr(
        &mut self,
        pd: u32,
        max_pages: u32,
        remote_ok: bool,
    ) -> Result<MrHandle, Error> {
        let max = usize::try_from(max_pages).map_err(|_| Error::InvalidArgument)?;
        if max == 0 {
            return Err(Error::InvalidArgument);
        }
        let seed = self.seed_byte();
        let (index, generation) = self.alloc_slot(
            |key| {
                Obj::Mr(Mr {
                    pd,
                    kind: MrKind::FastReg {
                        max_pages: max,
                        remote_ok,
                    },
                    valid: false,
                    access: Access::NONE,
                    iova: 0,
                    length: 0,
                    map: Map::Pages {
                        page_size: 4096,
                        fbo: 0,
                        pages: vec![0; max],
                        count: 0,
                    },
                    staged: vec![0; max],
                    staged_pending: false,
                    key,
                    issued: key,
                    binds: 0,
                })
            },
            seed,
        )?;
        Ok(MrHandle { index, generation })
    }

    /// A memory window in `pd`, unbound.
    pub(crate) fn alloc_mw(&mut self, pd: u32) -> Result<MwHandle, Error> {
        let seed = self.seed_byte();
        let (index, generation) = self.alloc_slot(
            |key| {
                Obj::Mw(Mw {
                    pd,
                    binding: None,
                    key,
                    issued: key,
                })
            },
            seed,
        )?;
        Ok(MwHandle { index, generation })
    }

    fn slot(&self, index: u32, generation: u32) -> Option<&Slot> {
        self.slots
            .get(usize::try_from(index).ok()?)
            .filter(|s| s.generation == generation)
    }

    fn slot_mut(&mut self, index: u32, generation: u32) -> Option<&mut Slot> {
        self.slots
            .get_mut(usize::try_from(index).ok()?)
            .filter(|s| s.generation == generation)
    }

    fn mr_at(&self, index: u32) -> Option<&Mr> {
        match &self.slots.get(usize::try_from(index).ok()?)?.obj {
            Obj::Mr(mr) => Some(mr),
            _ => None,
        }
    }

    fn mr_at_mut(&mut self, index: u32) -> Option<&mut Mr> {
        match &mut self.slots.get_mut(usize::try_from(index).ok()?)?.obj {
            Obj::Mr(mr) => Some(mr),
            _ => None,
        }
    }

    /// Deregister an MR; `Busy` while windows are bound to it.
    pub(crate) fn dereg_mr(&mut self, h: MrHandle) -> Result<(), Error> {
        let slot = self
            .slot_mut(h.index, h.generation)
            .ok_or(Error::InvalidHandle)?;
        match &slot.obj {
            Obj::Mr(mr) if mr.binds > 0 => Err(Error::Busy),
            Obj::Mr(mr) => {
                slot.next_key = mr.issued.wrapping_add(1);
                slot.obj = Obj::Free;
                Ok(())
            }
            _ => Err(Error::InvalidHandle),
        }
    }

    /// Free a window (unbinding it).
    pub(crate) fn dealloc_mw(&mut self, h: MwHandle) -> Result<(), Error> {
        let slot = self
            .slot_mut(h.index, h.generation)
            .ok_or(Error::InvalidHandle)?;
        let Obj::Mw(mw) = &slot.obj else {
            return Err(Error::InvalidHandle);
        };
        let binding = mw.binding;
        slot.next_key = mw.issued.wrapping_add(1);
        slot.obj = Obj::Free;
        if let Some(b) = binding {
            self.unbind_from(b.mr);
        }
        Ok(())
    }

    fn unbind_from(&mut self, mr: u32) {
        if let Some(mr) = self.mr_at_mut(mr) {
            mr.binds = mr.binds.saturating_sub(1);
        }
    }

    /// The PD of an MR.
    pub(crate) fn mr_pd(&self, h: MrHandle) -> Option<u32> {
        match &self.slot(h.index, h.generation)?.obj {
            Obj::Mr(mr) => Some(mr.pd),
            _ => None,
        }
    }

    /// The PD of an MW.
    pub(crate) fn mw_pd(&self, h: MwHandle) -> Option<u32> {
        match &self.slot(h.index, h.generation)?.obj {
            Obj::Mw(mw) => Some(mw.pd),
            _ => None,
        }
    }

    /// `(lkey, rkey)` of an MR: the latest issued key (after a fast
    /// register is posted, the key that registration will carry).
    pub(crate) fn mr_key(&self, h: MrHandle) -> Option<u32> {
        match &self.slot(h.index, h.generation)?.obj {
            Obj::Mr(mr) => Some(key_of(h.index, mr.issued)),
            _ => None,
        }
    }

    /// The latest issued rkey of an MW.
    pub(crate) fn mw_key(&self, h: MwHandle) -> Option<u32> {
        match &self.slot(h.index, h.generation)?.obj {
            Obj::Mw(mw) => Some(key_of(h.index, mw.issued)),
            _ => None,
        }
    }

    /// Post time of a fast-register: validate, copy the page list into the
    /// MR's staging buffer and issue the next key byte.
    pub(crate) fn stage_fast_reg(
        &mut self,
        h: MrHandle,
        pd: u32,
        p: &FastRegParams,
        pages: &[u64],
    ) -> Result<u8, Error> {
        check_access(p.access)?;
        let slot = self
            .slot_mut(h.index, h.generation)
            .ok_or(Error::InvalidHandle)?;
        let Obj::Mr(mr) = &mut slot.obj else {
            return Err(Error::InvalidHandle);
        };
        let MrKind::FastReg {
            max_pages,
            remote_ok,
        } = mr.kind
        else {
            return Err(Error::InvalidArgument);
        };
        if mr.pd != pd {
            return Err(Error::InvalidArgument);
        }
        if p.access.is_remote() && !remote_ok {
            return Err(Error::AccessDenied);
        }
        if pages.len() > max_pages {
            return Err(Error::InvalidArgument);
        }
        check_pages(p.page_size, p.fbo, pages.len(), p.length)?;
        p.iova.checked_add(p.length).ok_or(Error::InvalidArgument)?;
        if mr.staged_pending {
            // One fast-register in flight per MR: the staging buffer is
            // single (the NDK_FN_REGISTER_MR, NDK_FN_FAST_REGISTER and NDK_FN_BUILD_LAM pages has no case that needs two).
            return Err(Error::Busy);
        }
        let dst = mr
            .staged
            .get_mut(..pages.len())
            .ok_or(Error::InvalidArgument)?;
        dst.copy_from_slice(pages);
        mr.staged_pending = true;
        mr.issued = mr.issued.wrapping_add(1);
        Ok(mr.issued)
    }

    /// Execution of a fast-register: the MR must be invalid (IBA: a valid
    /// MR cannot be fast-registered) and still pending.
    pub(crate) fn exec_fast_reg(
        &mut self,
        h: MrHandle,
        key: u8,
        p: &FastRegParams,
    ) -> Result<(), AccessError> {
        let slot = self
            .slot_mut(h.index, h.generation)
            .ok_or(AccessError::BadKey)?;
        let Obj::Mr(mr) = &mut slot.obj else {
            return Err(AccessError::BadKey);
        };
        let was_pending = core::mem::replace(&mut mr.staged_pending, false);
        if !was_pending || mr.valid {
            return Err(AccessError::NotValid);
        }
        let Map::Pages {
            page_size,
            fbo,
            pages,
            count,
        } = &mut mr.map
        else {
            return Err(AccessError::BadKey);
        };
        core::mem::swap(pages, &mut mr.staged);
        *page_size = p.page_size;
        *fbo = p.fbo;
        *count = p.npages as usize;
        mr.iova = p.iova;
        mr.length = p.length;
        mr.access = p.access;
        mr.key = key;
        mr.valid = true;
        Ok(())
    }

    /// A fast-register that will never execute (flushed): release staging.
    pub(crate) fn cancel_fast_reg(&mut self, h: MrHandle) {
        if let Some(Slot {
            obj: Obj::Mr(mr), ..
        }) = self.slot_mut(h.index, h.generation)
        {
            mr.staged_pending = false;
        }
    }

    /// Post time of a bind: issue the window's next key byte.
    pub(crate) fn stage_bind(&mut self, h: MwHandle) -> Result<u8, Error> {
        match &mut self
            .slot_mut(h.index, h.generation)
            .ok_or(Error::InvalidHandle)?
            .obj
        {
            Obj::Mw(mw) => {
                mw.issued = mw.issued.wrapping_add(1);
                Ok(mw.issued)
            }
            _ => Err(Error::InvalidHandle),
        }
    }

    /// Execution of a bind (IBA §10.6.7; the NDK_FN_REGISTER_MR, NDK_FN_FAST_REGISTER and NDK_FN_BUILD_LAM pages NdkBind).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn exec_bind(
        &mut self,
        mw: MwHandle,
        key: u8,
        mr: MrHandle,
        qp_pd: u32,
        iova: u64,
        length: u64,
        access: Access,
    ) -> Result<(), AccessError> {
        let mr_obj = match &self
            .slot(mr.index, mr.generation)
            .ok_or(AccessError::BadKey)?
            .obj
        {
            Obj::Mr(m) => m,
            _ => return Err(AccessError::BadKey),
        };
        if !mr_obj.valid {
            return Err(AccessError::NotValid);
        }
        if mr_obj.pd != qp_pd {
            return Err(AccessError::WrongPd);
        }
        mr_obj
            .contains(iova, length)
            .ok_or(AccessError::OutOfBounds)?;
        if access.contains(Access::REMOTE_WRITE) && !mr_obj.access.contains(Access::LOCAL_WRITE) {
            return Err(AccessError::NoPermission);
        }
        let old = match &mut self
            .slot_mut(mw.index, mw.generation)
            .ok_or(AccessError::BadKey)?
            .obj
        {
            Obj::Mw(w) => {
                if w.pd != qp_pd {
                    return Err(AccessError::WrongPd);
                }
                let old = w.binding.replace(Binding {
                    mr: mr.index,
                    iova,
                    length,
                    access: Access::from_bits(
                        access.bits() & (Access::REMOTE_READ.0 | Access::REMOTE_WRITE.0),
                    ),
                });
                w.key = key;
                old
            }
            _ => return Err(AccessError::BadKey),
        };
        if let Some(b) = old {
            self.unbind_from(b.mr);
        }
        if let Some(m) = self.mr_at_mut(mr.index) {
            m.binds = m.binds.saturating_add(1);
        }
        Ok(())
    }

    /// Local invalidate of a fast-register MR or a bound MW.
    pub(crate) fn local_invalidate(
        &mut self,
        t: InvalidateTarget,
        qp_pd: u32,
    ) -> Result<(), AccessError> {
        let (index, generation) = match t {
            InvalidateTarget::Mr(h) => (h.index, h.generation),
            InvalidateTarget::Mw(h) => (h.index, h.generation),
        };
        let slot = self.slot(index, generation).ok_or(AccessError::BadKey)?;
        let key = match &slot.obj {
            Obj::Mr(mr) => key_of(index, mr.key),
            Obj::Mw(mw) => key_of(index, mw.key),
            _ => return Err(AccessError::BadKey),
        };
        self.invalidate_key(key, qp_pd)
    }

    /// Invalidate by key (send with invalidate, IBA Vol 1 ch. 9 (opcodes); Linux rxe_opcode.c IETH): only a
    /// valid fast-register MR or a bound MW of the same PD.
    pub(crate) fn invalidate_key(&mut self, key: u32, qp_pd: u32) -> Result<(), AccessError> {
        let index = key >> 8;
        let byte = key as u8;
        let slot = self
            .slots
            .get_mut(index as usize)
            .ok_or(AccessError::BadKey)?;
        let unbound = match &mut slot.obj {
            Obj::Mr(mr) => {
                if mr.key != byte || !matches!(mr.kind, MrKind::FastReg { .. }) {
                    return Err(AccessError::BadKey);
                }
                if mr.pd != qp_pd {
                    return Err(AccessError::WrongPd);
                }
                if !mr.valid {
                    return Err(AccessError::NotValid);
                }
                mr.valid = false;
                None
            }
            Obj::Mw(mw) => {
                if mw.key != byte {
                    return Err(AccessError::BadKey);
                }
                if mw.pd != qp_pd {
                    return Err(AccessError::WrongPd);
                }
                Some(mw.binding.take().ok_or(AccessError::NotValid)?.mr)
            }
            _ => return Err(AccessError::BadKey),
        };
        if let Some(mr) = unbound {
            self.unbind_from(mr);
        }
        Ok(())
    }
}

fn check_access(access: Access) -> Result<(), Error> {
    // IBA §10.6.3.1 (and NDK's ALLOW_REMOTE_WRITE = 0x5, the NDK_FN_REGISTER_MR, NDK_FN_FAST_REGISTER and NDK_FN_BUILD_LAM pages): remote write needs local write.
    if access.contains(Access::REMOTE_WRITE) && !access.contains(Access::LOCAL_WRITE) {
        return Err(Error::InvalidArgument);
    }
    Ok(())
}

fn check_pages(page_size: u64, fbo: u64, npages: usize, length: u64) -> Result<(), Error> {
    if !page_size.is_power_of_two() || fbo >= page_size {
        return Err(Error::InvalidArgument);
    }
    let span = page_size
        .checked_mul(npages as u64)
        .and_then(|s| s.checked_sub(fbo))
        .ok_or(Error::InvalidArgument)?;
    if length > span {
        return Err(Error::InvalidArgument);
    }
    Ok(())
}

/// Pieces must cover exactly `length` bytes, none empty, none wrapping.
fn check_ranges(ranges: &[(u64, u64)], length: u64) -> Result<(), Error> {
    let mut total = 0u64;
    for &(base, n) in ranges {
        if n == 0 || base.checked_add(n).is_none() {
            return Err(Error::InvalidArgument);
        }
        total = total.checked_add(n).ok_or(Error::InvalidArgument)?;
    }
    if total != length {
        return Err(Error::InvalidArgument);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
