//! A consumer that hands the shell a host-layout MDL (crates/consumer's
//! `HostMdl`: va, len, next; 24 bytes) instead of a wdm.h MDL (48 bytes):
//! the report this reproduces aborted in NdkCloseMr with glibc's
//! "free(): invalid pointer". The mapping MmGetSystemAddressForMdlSafe
//! writes into an MDL (MappedSystemVa at 0x18) landed past the 24 bytes,
//! on the header of the allocation after it.
//!
//! What must happen: NdkRegisterMr fails inline with
//! STATUS_INVALID_PARAMETER, the shell refusing the MDL (no MDL flag says
//! its pages are locked or mapped) before the memory manager sees it;
//! nothing outside the object is written (NdkCloseMr, a transfer and every
//! close after it work; nothing left at unload). The host's
//! MmMapLockedPagesSpecifyCache, given such an object directly, reports a
//! contract breach, returns NULL and leaves the object as it was.

#[macro_use]
mod support;

use std::net::Ipv4Addr;
use std::ptr;

use ndis_sys::*;
use ndkpi::{MDL, NDK_MR, STATUS_SUCCESS};
use support::ndk::{self, Memory};
use support::*;

const IP: Ipv4Addr = Ipv4Addr::new(10, 9, 7, 1);
const NIC_IP: Ipv4Addr = Ipv4Addr::new(10, 9, 7, 11);
const PEER: Ipv4Addr = Ipv4Addr::new(10, 9, 7, 2);

/// crates/consumer's `HostMdl`, as a host consumer builds it.
#[repr(C)]
struct HostMdl {
    va: *mut u8,
    len: usize,
    next: *mut HostMdl,
}

#[test]
fn a_host_layout_mdl_is_refused_without_damaging_the_heap() {
    let cfg = config(IP, NIC_IP, PEER);
    bring_up(&cfg);

    let (mut a, mut b) =
        ndk::connected_pair(IP, 3000, Memory::chain(&[4096]), Memory::chain(&[4096]))
            .expect("connect");

    // As ndkperf did: the memory and its host MDL, then the MR.
    let mut buf = vec![0u8; 4096].into_boxed_slice();
    let mut host = Box::new(HostMdl {
        va: buf.as_mut_ptr(),
        len: buf.len(),
        next: ptr::null_mut(),
    });
    let mut mr: *mut NDK_MR = ptr::null_mut();
    let st = ndk!(
        a.pd,
        NdkCreateMr,
        ndkpi::FALSE,
        None,
        ptr::null_mut(),
        &mut mr
    );
    assert_eq!(st, STATUS_SUCCESS, "NdkCreateMr");
    let st = ndk!(
        mr,
        NdkRegisterMr,
        (&mut *host as *mut HostMdl).cast::<MDL>(),
        buf.len(),
        ndkpi::NDK_MR_FLAG_ALLOW_LOCAL_WRITE,
        Some(ndk::on_request),
        3500 as _
    );
    assert_eq!(st, ndkpi::STATUS_INVALID_PARAMETER, "a host MDL");
    ndk::close(mr, 3501).expect("NdkCloseMr after the failed registration");
    let breaches = ndis_host::contract::breaches();
    assert!(breaches.is_empty(), "the shell called MM: {breaches:?}");

    // The host's memory manager, handed the same object, writes nothing.
    let (va, len) = (host.va, host.len);
    // SAFETY: a 24-byte object the export must only look at the first 12
    // bytes of before refusing it.
    let mapped = unsafe {
        ndis_host::exports::MmMapLockedPagesSpecifyCache(
            (&mut *host as *mut HostMdl).cast(),
            KernelMode,
            MmCached,
            ptr::null_mut(),
            0,
            NormalPagePriority,
        )
    };
    assert!(mapped.is_null(), "an object that is no MDL mapped");
    assert_eq!((host.va, host.len, host.next), (va, len, ptr::null_mut()));
    let breaches = ndis_host::contract::take_breaches();
    assert!(
        breaches.len() == 1 && breaches[0].contains("MmMapLockedPagesSpecifyCache"),
        "one breach for the foreign MDL: {breaches:?}"
    );
    drop(host);
    drop(buf);

    // The heap is intact: data still moves, everything closes.
    ndk::transfer(&mut b, &a, 4096, 3600).expect("transfer after the refusal");
    ndk::close_pair(&mut a, &mut b, 3700, 3710);
    support::detach_halt_and_check_clean();
}
