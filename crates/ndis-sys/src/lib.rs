//! The NDIS, NETIO and kernel declarations the ndkrs driver shell uses, and
//! nothing else.
//!
//! windows-drivers-rs (wdk-sys) binds no NDIS, NDK or WSK header, so these
//! are written by hand, one file per header area. Hand-written NDIS
//! structures are the riskiest part of the driver, so the set is kept to what
//! the shell touches, and every layout carries its source and an x86_64
//! size/offset assertion evaluated at compile time (for the host in
//! `cargo test`, for x86_64-pc-windows-msvc in the kernel-image check):
//!
//! * **BIN**: checked against ndis.sys itself: decompiled validation code of
//!   `ndisValidateMiniportDriverCharacteristicsHeader` (Type 0x8A; revision 1
//!   needs Size >= 136, revision 2 >= 152, revision 3 >= 160) and of
//!   `NdisFRegisterFilterDriver` (Type 0x8B; NDIS 6.0 Size 0xC8, 6.1..6.70
//!   revision >= 2 and Size >= 0xE0), found through the code index; or a
//!   PDB-derived dump (ntdiff/headers, as in public PDB type dumps (ntdiff/headers)).
//! * **DOC**: the member list of the DDI reference page
//!   (MicrosoftDocs/windows-driver-docs-ddi, `wdk-ddi-src/content/ndis/…`),
//!   laid out with the x64 rules (pointer 8, ULONG 4, enum 4, natural
//!   alignment). Object-type numbers are from public ntddndis.h copies
//!   (ntddndis.h) and the win32metadata bindings; they agree.
//! * **PDB**: x64 ndis.sys type dumps in ntdiff/headers (path named on
//!   each item).
//! * **mingw**: everything mingw-w64's headers also define (ntddndis.h,
//!   netioapi.h, ntddk.h, …) is compared with them by `.ci/layouts/check.sh`
//!   (printed by `examples/layouts.rs`, compiled as C static assertions for
//!   x86_64-w64-mingw32).
//! * **UNCONFIRMED**: said so on the item, with the reason.
//!
//! Structures the shell only receives from NDIS (OID requests, filter attach
//! parameters, NET_BUFFER_LISTs) are declared as *prefixes*: the fields up to
//! the last one the shell reads. The shell never allocates, copies or sizes
//! them, so the unknown tail cannot be misread.
//!
//! Functions are `extern "system"` imports from the kernel modules that
//! export them (ndis.sys, ntoskrnl.exe, netio.sys); `.ci/kernel-image/def`
//! lists the same names, and the kernel-image check fails on anything else.
//! The macros of the headers that the shell needs (MmGetSystemAddressForMdlSafe,
//! MmGetMdlVirtualAddress, MmGetMdlByteCount, NET_BUFFER_LIST_NEXT_NBL, …)
//! are small Rust functions here.
#![no_std]
// Every unsafe block names the invariant it relies on (`// SAFETY:`).
#![deny(clippy::undocumented_unsafe_blocks)]
// No run-time panic path (the layout assertions are `const`, evaluated by
// the compiler).
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::unreachable,
        clippy::todo,
        clippy::unimplemented
    )
)]
#![allow(
    non_camel_case_types,
    non_snake_case,
    non_upper_case_globals,
    clippy::upper_case_acronyms
)]

use core::ffi::c_void;
use core::mem::{offset_of, size_of};

pub use ndkpi::{
    BOOLEAN, GUID, LARGE_INTEGER, NDIS_HANDLE, NDIS_MINIPORT_ADAPTER_NDK_ATTRIBUTES,
    NDIS_NDK_PROVIDER_CHARACTERISTICS, NDIS_OBJECT_HEADER, NDIS_OID, NDIS_STATUS, NTSTATUS, PVOID,
    SOCKADDR_INET, UCHAR, ULONG, ULONG64, USHORT,
};

/// `NDIS_PORT_NUMBER`.
pub type NDIS_PORT_NUMBER = ULONG;
/// `NET_IFINDEX`.
pub type NET_IFINDEX = ULONG;
/// `NET_LUID` as its 64-bit `Value`.
pub type NET_LUID = u64;
/// `KIRQL`.
pub type KIRQL = u8;
/// `KSPIN_LOCK` (`ULONG_PTR`).
pub type KSPIN_LOCK = usize;

mod filter;
mod imports;
mod ke;
mod miniport;
mod nbl;
mod netio;
mod oid;
mod pnp;
mod status;

pub use filter::*;
pub use imports::*;
pub use ke::*;
pub use miniport::*;
pub use nbl::*;
pub use netio::*;
pub use oid::*;
pub use pnp::*;
pub use status::*;
