//! Preallocated NET_BUFFER_LIST / MDL frame pools
//! (NdisAllocateNetBufferListPool, NdisAllocateNetBufferAndNetBufferList,
//! NdisAllocateMdl), slot bookkeeping in the NBL reserved areas, and
//! NET_BUFFER data access (NdisGetDataBuffer).

use super::*;

// ------------------------------------------------------------- pools

/// Preallocated frames: one nonpaged buffer, MDL and NBL per slot.
pub(super) struct Pool {
    pub(super) nbl_pool: NDIS_HANDLE,
    pub(super) slots: Slots,
    pub(super) bufs: *mut u8,
    pub(super) nbls: [*mut NET_BUFFER_LIST; SLOTS as usize],
    pub(super) mdls: [*mut MDL; SLOTS as usize],
}

impl Pool {
    /// # Safety
    /// `owner` is a miniport adapter or filter module handle; PASSIVE.
    pub(super) unsafe fn new(owner: NDIS_HANDLE) -> Option<Pool> {
        let mut params = NET_BUFFER_LIST_POOL_PARAMETERS {
            Header: NDIS_OBJECT_HEADER {
                Type: NDIS_OBJECT_TYPE_DEFAULT,
                Revision: NET_BUFFER_LIST_POOL_PARAMETERS_REVISION_1,
                Size: NDIS_SIZEOF_NET_BUFFER_LIST_POOL_PARAMETERS_REVISION_1,
            },
            ProtocolId: NDIS_PROTOCOL_ID_DEFAULT,
            fAllocateNetBuffer: 1,
            ContextSize: 0,
            PoolTag: POOL_TAG,
            DataSize: 0,
            Flags: 0,
        };
        let mut pool = Pool {
            // SAFETY: valid parameters; PASSIVE.
            nbl_pool: unsafe { NdisAllocateNetBufferListPool(owner, &mut params) },
            slots: Slots::new(SLOTS),
            // SAFETY: a plain pool allocation.
            bufs: unsafe {
                ExAllocatePool2(POOL_FLAG_NON_PAGED, SLOT_BYTES * SLOTS as usize, POOL_TAG)
            }
            .cast(),
            nbls: [null_mut(); SLOTS as usize],
            mdls: [null_mut(); SLOTS as usize],
        };
        if pool.nbl_pool.is_null() || pool.bufs.is_null() {
            // SAFETY: frees what was allocated.
            unsafe { pool.free() };
            return None;
        }
        for i in 0..SLOTS as usize {
            // SAFETY: inside the buffer allocation.
            let va = unsafe { pool.bufs.add(i * SLOT_BYTES) };
            // SAFETY: nonpaged memory of SLOT_BYTES bytes.
            let mdl = unsafe { NdisAllocateMdl(owner, va.cast(), SLOT_BYTES as u32) };
            let nbl = if mdl.is_null() {
                null_mut()
            } else {
                // SAFETY: a valid pool and MDL.
                unsafe {
                    NdisAllocateNetBufferAndNetBufferList(pool.nbl_pool, 0, 0, mdl, 0, SLOT_BYTES)
                }
            };
            if let (Some(m), Some(n)) = (pool.mdls.get_mut(i), pool.nbls.get_mut(i)) {
                *m = mdl;
                *n = nbl;
            }
            if nbl.is_null() {
                // SAFETY: frees what was allocated.
                unsafe { pool.free() };
                return None;
            }
            // The slot index rides in the NBL's reserved areas (ours on
            // both paths: originator on send, miniport on receive).
            // SAFETY: a fresh NBL.
            unsafe {
                (*nbl).ProtocolReserved[0] = i as PVOID;
                (*nbl).MiniportReserved[0] = i as PVOID;
            }
        }
        Some(pool)
    }

    /// # Safety
    /// No slot is in flight; PASSIVE.
    pub(super) unsafe fn free(&mut self) {
        for i in 0..SLOTS as usize {
            let (nbl, mdl) = (self.nbls.get(i).copied(), self.mdls.get(i).copied());
            // SAFETY: each was allocated above, once.
            unsafe {
                if let Some(n) = nbl.filter(|n| !n.is_null()) {
                    NdisFreeNetBufferList(n);
                }
                if let Some(m) = mdl.filter(|m| !m.is_null()) {
                    NdisFreeMdl(m);
                }
            }
        }
        // SAFETY: as above.
        unsafe {
            if !self.nbl_pool.is_null() {
                NdisFreeNetBufferListPool(self.nbl_pool);
            }
            if !self.bufs.is_null() {
                ExFreePool(self.bufs.cast());
            }
        }
        self.nbl_pool = null_mut();
        self.bufs = null_mut();
    }

    /// The buffer of slot `i`.
    ///
    /// # Safety
    /// The caller owns slot `i` (took it and has not given it back).
    pub(super) unsafe fn buf<'a>(&self, i: u32) -> &'a mut [u8] {
        // SAFETY: inside the allocation; the slot is exclusively owned.
        unsafe {
            core::slice::from_raw_parts_mut(self.bufs.add(i as usize * SLOT_BYTES), SLOT_BYTES)
        }
    }

    pub(super) fn nbl(&self, i: u32) -> *mut NET_BUFFER_LIST {
        self.nbls.get(i as usize).copied().unwrap_or(null_mut())
    }
}

/// Sets the data range of a one-MDL slot NBL.
///
/// # Safety
/// `nbl` is a slot NBL the caller owns.
pub(super) unsafe fn set_range(nbl: *mut NET_BUFFER_LIST, offset: usize, len: usize) {
    // SAFETY: slot NBLs have one NET_BUFFER over one MDL.
    unsafe {
        let nb = (*nbl).FirstNetBuffer;
        (*nb).CurrentMdl = (*nb).MdlChain;
        (*nb).CurrentMdlOffset = offset as ULONG;
        (*nb).DataOffset = offset as ULONG;
        (*nb).DataLength = len;
        (*nbl).Status = NDIS_STATUS_SUCCESS;
        (*nbl).Next = null_mut();
    }
}

/// The slot index stored in a slot NBL.
///
/// # Safety
/// `nbl` is a slot NBL.
pub(super) unsafe fn slot_of(nbl: *mut NET_BUFFER_LIST, send: bool) -> u32 {
    // SAFETY: written at pool creation.
    unsafe {
        if send {
            (*nbl).ProtocolReserved[0] as u32
        } else {
            (*nbl).MiniportReserved[0] as u32
        }
    }
}

pub(super) fn give_back_wire(slot: u32) {
    let done = SHELL.with(|s| {
        if let Some(p) = s.wire.as_mut() {
            p.slots.put(slot);
        }
        wire_pause_done(s)
    });
    if let Some(filter) = done {
        // SAFETY: the pause this filter module returned PENDING for;
        // called with no lock held (NDIS may call back into the filter).
        unsafe { NdisFPauseComplete(filter) };
    }
}

/// The filter handle whose pending pause can now complete.
pub(super) fn wire_pause_done(s: &mut Shell) -> Option<NDIS_HANDLE> {
    if s.wire_pause_pending && s.wire.as_ref().is_none_or(|p| p.slots.in_use() == 0) {
        s.wire_pause_pending = false;
        return Some(s.filter);
    }
    None
}

/// The miniport handle whose pending pause can now complete.
pub(super) fn up_pause_done(s: &mut Shell) -> Option<NDIS_HANDLE> {
    if s.up_pause_pending && s.up.as_ref().is_none_or(|p| p.slots.in_use() == 0) {
        s.up_pause_pending = false;
        return Some(s.miniport);
    }
    None
}

/// Copies a NET_BUFFER's data into `dst` (exactly its length).
///
/// # Safety
/// `nb` is a valid NET_BUFFER of `dst.len()` bytes.
pub(super) unsafe fn copy_out(nb: *mut NET_BUFFER, dst: &mut [u8]) -> bool {
    // SAFETY: NdisGetDataBuffer returns a pointer to contiguous data,
    // either in place or copied into our storage.
    unsafe {
        let p = NdisGetDataBuffer(nb, dst.len() as ULONG, dst.as_mut_ptr().cast(), 1, 0);
        if p.is_null() {
            return false;
        }
        if p.cast::<u8>() != dst.as_mut_ptr() {
            ptr::copy_nonoverlapping(p.cast::<u8>(), dst.as_mut_ptr(), dst.len());
        }
    }
    true
}

impl crate::chain::Linked for NET_BUFFER_LIST {
    fn next(&self) -> *mut Self {
        self.Next
    }
    fn set_next(&mut self, next: *mut Self) {
        self.Next = next;
    }
}
