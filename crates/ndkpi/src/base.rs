//! Windows base types that the NDK headers use (ntdef.h, ws2def.h, ws2ipdef.h,
//! wdm.h), with the x64 layouts of the Microsoft ABI.
//!
//! Only what crosses the NDKPI boundary is here. `ULONG` is 32 bits on
//! Windows (LLP64), so it maps to `u32` on every target; the layouts below are
//! therefore identical when this crate is compiled for Linux x86_64 (tests) and
//! for x86_64-pc-windows-msvc (the driver).

use core::ffi::c_void;

/// `LONG` status code of the kernel (ntdef.h).
pub type NTSTATUS = i32;
/// NDIS status codes share the NTSTATUS numeric space (ndis.h: `typedef int NDIS_STATUS`).
pub type NDIS_STATUS = i32;
/// `UCHAR`.
pub type UCHAR = u8;
/// `USHORT`.
pub type USHORT = u16;
/// `ULONG` (32 bits on Windows).
pub type ULONG = u32;
/// `UINT32`.
pub type UINT32 = u32;
/// `UINT64`.
pub type UINT64 = u64;
/// `ULONG64`.
pub type ULONG64 = u64;
/// `BOOLEAN`: one byte, `TRUE` = 1.
pub type BOOLEAN = u8;
/// `TRUE` for [`BOOLEAN`].
pub const TRUE: BOOLEAN = 1;
/// `FALSE` for [`BOOLEAN`].
pub const FALSE: BOOLEAN = 0;
/// `SIZE_T`.
pub type SIZE_T = usize;
/// `ULONG_PTR`.
pub type ULONG_PTR = usize;
/// `PVOID`.
pub type PVOID = *mut c_void;
/// `NDIS_HANDLE`: an opaque pointer-sized handle.
pub type NDIS_HANDLE = *mut c_void;
/// `KAFFINITY`: a processor bit mask within a group.
pub type KAFFINITY = ULONG_PTR;
/// `LARGE_INTEGER` as a plain 64-bit value (the union's `QuadPart`).
pub type LARGE_INTEGER = i64;
/// `PHYSICAL_ADDRESS` (= `LARGE_INTEGER`).
pub type PHYSICAL_ADDRESS = LARGE_INTEGER;
/// `ADDRESS_FAMILY` (ws2def.h).
pub type ADDRESS_FAMILY = USHORT;
/// `NDIS_NIC_SWITCH_ID` (ntddndis.h).
pub type NDIS_NIC_SWITCH_ID = ULONG;
/// `NDIS_NIC_SWITCH_VPORT_ID` (ntddndis.h).
pub type NDIS_NIC_SWITCH_VPORT_ID = ULONG;
/// `NDIS_OID` (ntddndis.h).
pub type NDIS_OID = ULONG;

/// `AF_INET` on Windows (ws2def.h).
pub const AF_INET: ADDRESS_FAMILY = 2;
/// `AF_INET6` on Windows (ws2def.h). Note: 23, not Linux's 10.
pub const AF_INET6: ADDRESS_FAMILY = 23;

/// Memory descriptor list. Opaque here: only `MDL *` crosses the NDK ABI; the
/// kernel shell reads MDLs through the kernel's own accessors.
#[repr(C)]
pub struct MDL {
    _opaque: [u8; 0],
    _not_send_sync_unpin: core::marker::PhantomData<(*mut u8, core::marker::PhantomPinned)>,
}

impl core::fmt::Debug for MDL {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("MDL")
    }
}

/// `GUID` (guiddef.h): 16 bytes, align 4.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct GUID {
    pub Data1: u32,
    pub Data2: u16,
    pub Data3: u16,
    pub Data4: [u8; 8],
}

/// `GROUP_AFFINITY` (ntdef.h / winnt.h): a processor group and a mask in it.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GROUP_AFFINITY {
    pub Mask: KAFFINITY,
    pub Group: USHORT,
    pub Reserved: [USHORT; 3],
}

/// `SOCKADDR` (ws2def.h): the generic address; NDK passes a pointer to it
/// together with an explicit byte length.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SOCKADDR {
    pub sa_family: ADDRESS_FAMILY,
    pub sa_data: [i8; 14],
}

/// `IN_ADDR` (inaddr.h), stored in network byte order. The header's union
/// includes a `ULONG` view, hence alignment 4.
#[repr(C, align(4))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IN_ADDR {
    /// The four address bytes, network order (the `S_un.S_un_b` view).
    pub s_addr: [u8; 4],
}

/// `IN6_ADDR` (in6addr.h), stored in network byte order. The header's union
/// includes a `USHORT[8]` view, hence alignment 2.
#[repr(C, align(2))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IN6_ADDR {
    /// The sixteen address bytes (the `u.Byte` view).
    pub s6_addr: [u8; 16],
}

/// `SOCKADDR_IN` (ws2def.h): 16 bytes. Port and address in network byte order.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SOCKADDR_IN {
    pub sin_family: ADDRESS_FAMILY,
    pub sin_port: USHORT,
    pub sin_addr: IN_ADDR,
    pub sin_zero: [u8; 8],
}

/// `SOCKADDR_IN6` (ws2ipdef.h): 28 bytes. Port, flow info and address in
/// network byte order; the scope ID is in host order (the `SCOPE_ID` union's
/// `Value`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SOCKADDR_IN6 {
    pub sin6_family: ADDRESS_FAMILY,
    pub sin6_port: USHORT,
    pub sin6_flowinfo: ULONG,
    pub sin6_addr: IN6_ADDR,
    pub sin6_scope_id: ULONG,
}

/// `SOCKADDR_INET` (ws2ipdef.h): either address family, 28 bytes.
#[repr(C)]
#[derive(Clone, Copy)]
pub union SOCKADDR_INET {
    pub Ipv4: SOCKADDR_IN,
    pub Ipv6: SOCKADDR_IN6,
    pub si_family: ADDRESS_FAMILY,
}

impl Default for SOCKADDR_INET {
    fn default() -> Self {
        SOCKADDR_INET {
            Ipv6: SOCKADDR_IN6::default(),
        }
    }
}

impl core::fmt::Debug for SOCKADDR_INET {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // SAFETY: every member is plain data, and the family field is at
        // offset 0 in every member, so reading it is defined for any value.
        let family = unsafe { self.si_family };
        f.debug_struct("SOCKADDR_INET")
            .field("si_family", &family)
            .finish_non_exhaustive()
    }
}
