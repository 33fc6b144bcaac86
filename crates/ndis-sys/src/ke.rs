//! Kernel DPCs and timers (wdm.h).

use super::*;

// ------------------------------------------------------ kernel DPC / timer

/// `KDPC` storage: opaque, 0x40 bytes, 8-aligned on x64 (PDB: ntoskrnl
/// `_KDPC` size 0x40). Initialised only by KeInitializeDpc.
#[repr(C, align(8))]
#[derive(Debug)]
pub struct KDPC(pub [u8; 0x40]);
/// `KTIMER` storage: opaque, 0x40 bytes on x64 (PDB: ntoskrnl `_KTIMER`
/// size 0x40). Initialised only by KeInitializeTimer.
#[repr(C, align(8))]
#[derive(Debug)]
pub struct KTIMER(pub [u8; 0x40]);
/// `KDEFERRED_ROUTINE`.
pub type PKDEFERRED_ROUTINE =
    unsafe extern "system" fn(Dpc: *mut KDPC, Context: PVOID, Arg1: PVOID, Arg2: PVOID);

/// `NDIS_IO_WORKITEM_ROUTINE`.
pub type NDIS_IO_WORKITEM_ROUTINE = unsafe extern "system" fn(Context: PVOID, Handle: NDIS_HANDLE);
