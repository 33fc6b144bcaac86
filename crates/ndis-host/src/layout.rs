//! The host's own view of the structures NDIS and the kernel allocate and
//! own: NET_BUFFER_LIST, NET_BUFFER and MDL, laid out as Windows x64 lays
//! them out. Deliberately not `ndis-sys`'s declarations: the shell is
//! checked against these, so a wrong offset in its bindings shows up as a
//! write into a field NDIS or another driver owns (the canaries below).
//!
//! Sources: NET_BUFFER_LIST offsets from the public PDB type information of
//! ndis.sys (`_NET_BUFFER_LIST`: the reserved arrays are
//! DECLSPEC_ALIGN(MEMORY_ALLOCATION_ALIGNMENT), so NdisReserved sits at
//! 0x30); NET_BUFFER's NET_BUFFER_DATA and the MDL as in wdm.h/ndis.h
//! (`_NET_BUFFER`, `_MDL`).

use core::mem::offset_of;

/// `NET_BUFFER_LIST` (x64), through its fixed part.
#[repr(C, align(16))]
#[derive(Debug)]
pub struct Nbl {
    pub next: *mut Nbl,
    pub first_nb: *mut Nb,
    pub context: usize,
    pub parent: *mut Nbl,
    pub ndis_pool_handle: usize,
    pub pad: usize,
    pub ndis_reserved: [usize; 2],
    pub protocol_reserved: [usize; 4],
    pub miniport_reserved: [usize; 2],
    pub scratch: usize,
    pub source_handle: usize,
    pub nbl_flags: u32,
    pub child_ref_count: i32,
    pub flags: u32,
    pub status: i32,
    pub ndis_reserved2: usize,
    /// NetBufferListInfo[MaxNetBufferListInfo].
    pub info: [usize; 32],
}
const _: () = {
    assert!(offset_of!(Nbl, ndis_pool_handle) == 0x20);
    assert!(offset_of!(Nbl, ndis_reserved) == 0x30);
    assert!(offset_of!(Nbl, protocol_reserved) == 0x40);
    assert!(offset_of!(Nbl, miniport_reserved) == 0x60);
    assert!(offset_of!(Nbl, scratch) == 0x70);
    assert!(offset_of!(Nbl, source_handle) == 0x78);
    assert!(offset_of!(Nbl, nbl_flags) == 0x80);
    assert!(offset_of!(Nbl, child_ref_count) == 0x84);
    assert!(offset_of!(Nbl, flags) == 0x88);
    assert!(offset_of!(Nbl, status) == 0x8C);
};

/// `NET_BUFFER` (x64): NET_BUFFER_DATA, then the rest of the header.
#[repr(C)]
#[derive(Debug)]
pub struct Nb {
    pub next: *mut Nb,
    pub current_mdl: *mut Mdl,
    pub current_mdl_offset: u32,
    pub data_length: usize,
    pub mdl_chain: *mut Mdl,
    pub data_offset: u32,
    pub rest: [usize; 12],
}
const _: () = {
    assert!(offset_of!(Nb, data_length) == 0x18);
    assert!(offset_of!(Nb, mdl_chain) == 0x20);
    assert!(offset_of!(Nb, data_offset) == 0x28);
};

/// `MDL` (wdm.h, x64).
#[repr(C)]
#[derive(Debug)]
pub struct Mdl {
    pub next: *mut Mdl,
    pub size: i16,
    pub mdl_flags: i16,
    pub process: usize,
    pub mapped_system_va: *mut u8,
    pub start_va: *mut u8,
    pub byte_count: u32,
    pub byte_offset: u32,
}
const _: () = {
    assert!(offset_of!(Mdl, mapped_system_va) == 0x18);
    assert!(offset_of!(Mdl, byte_count) == 0x28);
    assert!(core::mem::size_of::<Mdl>() == 0x30);
};
pub const MDL_MAPPED_TO_SYSTEM_VA: i16 = 0x0001;
/// MDL_PAGES_LOCKED (wdm.h): MmProbeAndLockPages locked the pages.
pub const MDL_PAGES_LOCKED: i16 = 0x0002;
/// MDL_PARTIAL (wdm.h): IoBuildPartialMdl over a locked MDL's pages.
pub const MDL_PARTIAL: i16 = 0x0010;
pub const MDL_SOURCE_IS_NONPAGED_POOL: i16 = 0x0004;

impl Mdl {
    /// A single MDL over `len` bytes at `va` (nonpaged, mapped).
    pub fn over(va: *mut u8, len: usize) -> Mdl {
        let page = (va as usize) & !0xFFF;
        Mdl {
            next: core::ptr::null_mut(),
            size: 0x30,
            mdl_flags: MDL_SOURCE_IS_NONPAGED_POOL | MDL_MAPPED_TO_SYSTEM_VA,
            process: 0,
            mapped_system_va: va,
            start_va: page as *mut u8,
            byte_count: len as u32,
            byte_offset: (va as usize - page) as u32,
        }
    }
}

/// What NDIS keeps in the NDIS-reserved words of every NBL it hands out:
/// a driver that writes there (a wrong offset in its bindings) is caught
/// when the NBL comes back.
pub const CANARY_NDIS: usize = 0x4E44_4953_5253_5644; // "NDISRSVD"
/// What the host's own drivers (the NIC, the protocols) keep in the areas
/// they own: another driver must not touch them.
pub const CANARY_OWNER: usize = 0x4F57_4E45_525F_4152; // "OWNER_AR"

/// Copies the data of a NET_BUFFER (walking its MDL chain).
///
/// # Safety
/// `nb` is a valid NET_BUFFER over valid MDLs.
pub unsafe fn nb_bytes(nb: *const Nb) -> Option<Vec<u8>> {
    // SAFETY: per the contract.
    unsafe {
        let mut out = Vec::with_capacity((*nb).data_length);
        let mut mdl = (*nb).current_mdl;
        let mut off = (*nb).current_mdl_offset as usize;
        while out.len() < (*nb).data_length {
            if mdl.is_null() {
                return None;
            }
            let avail = ((*mdl).byte_count as usize).checked_sub(off)?;
            let take = avail.min((*nb).data_length - out.len());
            let base = (*mdl).mapped_system_va;
            out.extend_from_slice(core::slice::from_raw_parts(base.add(off), take));
            mdl = (*mdl).next;
            off = 0;
        }
        Some(out)
    }
}
