//! NET_BUFFER_LIST, NET_BUFFER and MDL layouts and the header macros over them (ndis.h, wdm.h).

use super::*;

// ----------------------------------------------- NET_BUFFER_LIST / NET_BUFFER

/// `NET_BUFFER_LIST` prefix (ndis.h), declared through `Status`. The
/// header is a union with an SLIST_HEADER (16 bytes, 16-aligned on x64) and
/// the three reserved arrays are DECLSPEC_ALIGN(MEMORY_ALLOCATION_ALIGNMENT)
/// (16), so NdisReserved starts at 0x30, not right after NdisPoolHandle.
/// PDB: ntdiff/headers `Win8/x64/System32/ndis.sys/Standalone/_NET_BUFFER_LIST.h`
/// (NdisReserved 0x30, ProtocolReserved 0x40, MiniportReserved 0x60,
/// Scratch 0x70, SourceHandle 0x78, NblFlags 0x80, ChildRefCount 0x84,
/// Flags 0x88, Status 0x8C).
#[repr(C, align(16))]
#[derive(Debug)]
pub struct NET_BUFFER_LIST {
    pub Next: *mut NET_BUFFER_LIST,
    pub FirstNetBuffer: *mut NET_BUFFER,
    pub Context: PVOID,
    pub ParentNetBufferList: *mut NET_BUFFER_LIST,
    pub NdisPoolHandle: NDIS_HANDLE,
    /// Padding before the 16-aligned NdisReserved.
    pub _Align: usize,
    pub NdisReserved: [PVOID; 2],
    pub ProtocolReserved: [PVOID; 4],
    pub MiniportReserved: [PVOID; 2],
    pub Scratch: PVOID,
    pub SourceHandle: NDIS_HANDLE,
    pub NblFlags: ULONG,
    pub ChildRefCount: i32,
    pub Flags: ULONG,
    pub Status: NDIS_STATUS,
}
const _: () = {
    // PDB: ntdiff/headers Win8/x64/System32/ndis.sys/Standalone/_NET_BUFFER_LIST.h
    type N = NET_BUFFER_LIST;
    assert!(core::mem::align_of::<N>() == 16);
    assert!(offset_of!(N, Context) == 0x10);
    assert!(offset_of!(N, ParentNetBufferList) == 0x18);
    assert!(offset_of!(N, NdisPoolHandle) == 0x20);
    assert!(offset_of!(N, NdisReserved) == 0x30);
    assert!(offset_of!(N, ProtocolReserved) == 0x40);
    assert!(offset_of!(N, MiniportReserved) == 0x60);
    assert!(offset_of!(N, Scratch) == 0x70);
    assert!(offset_of!(N, SourceHandle) == 0x78);
    assert!(offset_of!(N, NblFlags) == 0x80);
    assert!(offset_of!(N, ChildRefCount) == 0x84);
    assert!(offset_of!(N, Flags) == 0x88);
    assert!(offset_of!(N, Status) == 0x8C);
};

/// `NET_BUFFER` prefix: its NET_BUFFER_DATA (Next, CurrentMdl,
/// CurrentMdlOffset, DataLength | stDataLength (SIZE_T union, so 8-aligned),
/// MdlChain, DataOffset). PDB: ntdiff/headers
/// `Win8/x64/System32/ndis.sys/Standalone/_NET_BUFFER.h`.
#[repr(C)]
#[derive(Debug)]
pub struct NET_BUFFER {
    pub Next: *mut NET_BUFFER,
    pub CurrentMdl: *mut MDL,
    pub CurrentMdlOffset: ULONG,
    pub DataLength: usize,
    pub MdlChain: *mut MDL,
    pub DataOffset: ULONG,
}
const _: () = {
    assert!(offset_of!(NET_BUFFER, CurrentMdl) == 0x08);
    assert!(offset_of!(NET_BUFFER, CurrentMdlOffset) == 0x10);
    assert!(offset_of!(NET_BUFFER, DataLength) == 0x18);
    assert!(offset_of!(NET_BUFFER, MdlChain) == 0x20);
    assert!(offset_of!(NET_BUFFER, DataOffset) == 0x28);
};

/// `NET_BUFFER_DATA_LENGTH` (the low 32 bits, what the macro reads).
///
/// # Safety
/// `nb` is a valid NET_BUFFER.
pub unsafe fn NET_BUFFER_DATA_LENGTH(nb: *const NET_BUFFER) -> ULONG {
    // SAFETY: the caller passes a valid NET_BUFFER (the contract above).
    unsafe { (*nb).DataLength as ULONG }
}

/// `NET_BUFFER_LIST_POOL_PARAMETERS` (ndis.h, DOC): Header, ProtocolId,
/// fAllocateNetBuffer, ContextSize, PoolTag, DataSize. Revision 1 size 0x14.
#[repr(C)]
#[derive(Debug)]
pub struct NET_BUFFER_LIST_POOL_PARAMETERS {
    pub Header: NDIS_OBJECT_HEADER,
    pub ProtocolId: UCHAR,
    pub fAllocateNetBuffer: BOOLEAN,
    pub ContextSize: USHORT,
    pub PoolTag: ULONG,
    pub DataSize: ULONG,
    /// NDIS 6.50 (revision 2); ndkrs passes revision 1.
    pub Flags: ULONG,
}
pub const NET_BUFFER_LIST_POOL_PARAMETERS_REVISION_1: UCHAR = 1;
pub const NDIS_SIZEOF_NET_BUFFER_LIST_POOL_PARAMETERS_REVISION_1: USHORT = 0x10;
/// `NDIS_PROTOCOL_ID_DEFAULT`.
pub const NDIS_PROTOCOL_ID_DEFAULT: UCHAR = 0;
const _: () = assert!(offset_of!(NET_BUFFER_LIST_POOL_PARAMETERS, DataSize) + 4 == 0x10);

/// Send/receive/return flags (ndis.h).
pub const NDIS_SEND_FLAGS_DISPATCH_LEVEL: ULONG = 0x0000_0001;
pub const NDIS_SEND_COMPLETE_FLAGS_DISPATCH_LEVEL: ULONG = 0x0000_0001;
pub const NDIS_RECEIVE_FLAGS_DISPATCH_LEVEL: ULONG = 0x0000_0001;
pub const NDIS_RECEIVE_FLAGS_RESOURCES: ULONG = 0x0000_0002;
pub const NDIS_RETURN_FLAGS_DISPATCH_LEVEL: ULONG = 0x0000_0001;
pub const NDIS_DEFAULT_PORT_NUMBER: NDIS_PORT_NUMBER = 0;

/// Walks an NBL chain (`NET_BUFFER_LIST_NEXT_NBL`).
///
/// # Safety
/// `nbl` is null or a valid NET_BUFFER_LIST.
pub unsafe fn NET_BUFFER_LIST_NEXT_NBL(nbl: *mut NET_BUFFER_LIST) -> *mut NET_BUFFER_LIST {
    if nbl.is_null() {
        nbl
    } else {
        // SAFETY: non-null, so a valid NET_BUFFER_LIST (the contract).
        unsafe { (*nbl).Next }
    }
}

// --------------------------------------------------------------------- MDL

/// `MDL` (wdm.h; x64: Next 0, Size 8, MdlFlags 0xA, Process 0x10,
/// MappedSystemVa 0x18, StartVa 0x20, ByteCount 0x28, ByteOffset 0x2C; size
/// 0x30 — the layout every WDK macro below reads; wdk-sys binds the same).
#[repr(C)]
#[derive(Debug)]
pub struct MDL {
    pub Next: *mut MDL,
    pub Size: i16,
    pub MdlFlags: i16,
    pub Process: PVOID,
    pub MappedSystemVa: PVOID,
    pub StartVa: PVOID,
    pub ByteCount: ULONG,
    pub ByteOffset: ULONG,
}
const _: () = {
    assert!(offset_of!(MDL, MappedSystemVa) == 0x18);
    assert!(offset_of!(MDL, ByteCount) == 0x28);
    assert!(size_of::<MDL>() == 0x30);
};
pub const MDL_MAPPED_TO_SYSTEM_VA: i16 = 0x0001;
pub const MDL_PAGES_LOCKED: i16 = 0x0002;
pub const MDL_SOURCE_IS_NONPAGED_POOL: i16 = 0x0004;
pub const MDL_PARTIAL: i16 = 0x0010;
/// `NormalPagePriority`.
pub const NormalPagePriority: u32 = 16;
/// `MdlMappingNoExecute` (ORed into the priority, Windows 8+).
pub const MdlMappingNoExecute: u32 = 0x4000_0000;
/// `MmCached`.
pub const MmCached: u32 = 1;
/// `KernelMode`.
pub const KernelMode: i8 = 0;

/// `MmGetMdlVirtualAddress`: StartVa + ByteOffset.
///
/// # Safety
/// `mdl` is a valid MDL.
pub unsafe fn MmGetMdlVirtualAddress(mdl: *const MDL) -> usize {
    // SAFETY: the caller passes a valid MDL (the contract above).
    unsafe { ((*mdl).StartVa as usize).wrapping_add((*mdl).ByteOffset as usize) }
}

/// `MmGetMdlByteCount`.
///
/// # Safety
/// `mdl` is a valid MDL.
pub unsafe fn MmGetMdlByteCount(mdl: *const MDL) -> ULONG {
    // SAFETY: the caller passes a valid MDL (the contract above).
    unsafe { (*mdl).ByteCount }
}

/// `MmGetSystemAddressForMdlSafe`: the mapped system address, mapping the
/// locked pages if needed; null on failure.
///
/// # Safety
/// `mdl` describes locked pages; IRQL <= DISPATCH_LEVEL.
pub unsafe fn MmGetSystemAddressForMdlSafe(mdl: *mut MDL, priority: u32) -> PVOID {
    // SAFETY: a valid MDL of locked pages at IRQL <= DISPATCH_LEVEL (the
    // contract above): its flags and mapping are read, or its pages mapped
    // by MmMapLockedPagesSpecifyCache, which takes exactly that.
    unsafe {
        if (*mdl).MdlFlags & (MDL_MAPPED_TO_SYSTEM_VA | MDL_SOURCE_IS_NONPAGED_POOL) != 0 {
            (*mdl).MappedSystemVa
        } else {
            MmMapLockedPagesSpecifyCache(
                mdl,
                KernelMode,
                MmCached,
                core::ptr::null_mut(),
                0,
                priority,
            )
        }
    }
}
