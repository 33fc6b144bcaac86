//! Every way NdkRegisterMr can fail through the real shell, on one MR
//! object: each failure leaves it as NdkCreateMr made it, so NdkCloseMr
//! and a later registration are safe and free exactly what was allocated
//! (the NDK_FN_REGISTER_MR and NDK_FN_CLOSE_OBJECT pages).
//!
//! What must happen, each failure completing inline with its status:
//! unknown flags, a length of 0, a length beyond the chain, an MDL the
//! shell cannot map mid-chain (after the walk allocated its piece list), a
//! chain cycling past the walk's bound, a region at VA 0, a piece the
//! engine refuses after the NDK layer built the piece list (its logical
//! range wraps), an MDL neither locked nor mapped, an MDL whose Size does
//! not cover its header: STATUS_INVALID_PARAMETER; NdkRegisterMr on a
//! fast-register MR: STATUS_INVALID_DEVICE_REQUEST; a second registration:
//! STATUS_INVALID_DEVICE_STATE (the first one stays in force). After each
//! failure NdkDeregisterMr says nothing is registered
//! (STATUS_INVALID_DEVICE_STATE); an MR closed right after a failure
//! closes; the MR that failed every way then registers a chain of locked,
//! not yet mapped MDLs (the shell maps them) and data moves through it
//! both ways within 10 s each. No contract breach, nothing left at unload.

#[macro_use]
mod support;

use std::net::Ipv4Addr;
use std::ptr;

use ndis_host::layout::{MDL_MAPPED_TO_SYSTEM_VA, MDL_PAGES_LOCKED, Mdl};
use ndkpi::{
    FALSE, MDL, NDK_MR, NDK_MR_FLAG_ALLOW_LOCAL_WRITE, NDK_MR_FLAG_ALLOW_REMOTE_READ,
    NDK_MR_FLAG_ALLOW_REMOTE_WRITE, NDK_PD, NTSTATUS, STATUS_INVALID_DEVICE_REQUEST,
    STATUS_INVALID_DEVICE_STATE, STATUS_INVALID_PARAMETER, STATUS_SUCCESS, TRUE, ULONG,
};
use support::ndk::{self, Memory};
use support::*;

const IP: Ipv4Addr = Ipv4Addr::new(10, 9, 8, 1);
const NIC_IP: Ipv4Addr = Ipv4Addr::new(10, 9, 8, 11);
const PEER: Ipv4Addr = Ipv4Addr::new(10, 9, 8, 2);

const RW: ULONG =
    NDK_MR_FLAG_ALLOW_LOCAL_WRITE | NDK_MR_FLAG_ALLOW_REMOTE_READ | NDK_MR_FLAG_ALLOW_REMOTE_WRITE;

fn create_mr(pd: *mut NDK_PD, fast_register: bool) -> *mut NDK_MR {
    let mut mr: *mut NDK_MR = ptr::null_mut();
    let fr = if fast_register { TRUE } else { FALSE };
    let st = ndk!(pd, NdkCreateMr, fr, None, ptr::null_mut(), &mut mr);
    assert_eq!(st, STATUS_SUCCESS, "NdkCreateMr");
    mr
}

fn register(mr: *mut NDK_MR, head: *mut MDL, len: usize, flags: ULONG) -> NTSTATUS {
    ndk!(
        mr,
        NdkRegisterMr,
        head,
        len,
        flags,
        Some(ndk::on_request),
        4999 as _
    )
}

/// The MR holds no registration: NdkDeregisterMr has nothing to undo.
fn assert_unregistered(mr: *mut NDK_MR, case: &str) {
    let st = ndk!(mr, NdkDeregisterMr, Some(ndk::on_request), 4998 as _);
    assert_eq!(
        st, STATUS_INVALID_DEVICE_STATE,
        "{case}: the failed registration left something registered"
    );
}

#[test]
fn every_failed_registration_leaves_the_mr_closable_and_reusable() {
    let cfg = config(IP, NIC_IP, PEER);
    bring_up(&cfg);

    let (mut a, mut b) =
        ndk::connected_pair(IP, 4000, Memory::chain(&[6000]), Memory::chain(&[6000]))
            .expect("connect");
    let m = create_mr(a.pd, false);

    let mut good = Memory::chain(&[1500, 3000, 1500]);
    let n = good.len();
    let p = good.head();
    assert_eq!(register(m, p, n, 0x100), STATUS_INVALID_PARAMETER, "flags");
    assert_unregistered(m, "unknown flags");
    assert_eq!(register(m, p, 0, RW), STATUS_INVALID_PARAMETER, "length 0");
    assert_unregistered(m, "length 0");
    assert_eq!(register(m, p, n + 1, RW), STATUS_INVALID_PARAMETER, "past");
    assert_unregistered(m, "length beyond the chain");
    assert_eq!(
        register(m, p, usize::MAX, RW),
        STATUS_INVALID_PARAMETER,
        "SIZE_T max"
    );
    assert_unregistered(m, "SIZE_T max");

    // The third MDL cannot be mapped (MmGetSystemAddressForMdlSafe NULL):
    // the first two were walked and the piece list allocated.
    let mut unmappable = Memory::chain(&[1000, 1000, 1000]);
    unmappable.mdls[2].mapped_system_va = ptr::null_mut();
    let p = unmappable.head();
    assert_eq!(register(m, p, 3000, RW), STATUS_INVALID_PARAMETER);
    assert_unregistered(m, "unmappable third MDL");

    // A cycle: MDL->Next back to itself; the walk stops at its bound.
    let mut cycle = Memory::chain(&[16]);
    let me: *mut Mdl = &mut *cycle.mdls[0];
    cycle.mdls[0].next = me;
    let p = cycle.head();
    assert_eq!(register(m, p, 16 * 1000, RW), STATUS_INVALID_PARAMETER);
    assert_unregistered(m, "cyclic chain");

    // A region at VA 0 (a zero-based region: refused by project decision).
    let mut zero = Memory::chain(&[64]);
    zero.mdls[0].start_va = ptr::null_mut();
    zero.mdls[0].byte_offset = 0;
    let p = zero.head();
    assert_eq!(register(m, p, 64, RW), STATUS_INVALID_PARAMETER, "VA 0");
    assert_unregistered(m, "VA 0");

    // The engine refuses a piece whose logical range wraps, after the NDK
    // layer built the piece list for it.
    let mut wraps = Memory::chain(&[1000, 1000]);
    wraps.mdls[1].mapped_system_va = (u64::MAX - 10) as *mut u8;
    let p = wraps.head();
    assert_eq!(register(m, p, 2000, RW), STATUS_INVALID_PARAMETER, "wrap");
    assert_unregistered(m, "wrapping piece");

    // An MDL whose pages are neither locked nor mapped, and one whose
    // Size does not cover the header: refused by the shell before the
    // memory manager would map (and write into) them.
    let mut unlocked = Memory::chain(&[64]);
    unlocked.mdls[0].mdl_flags = 0;
    let p = unlocked.head();
    assert_eq!(register(m, p, 64, RW), STATUS_INVALID_PARAMETER, "unlocked");
    assert_unregistered(m, "unlocked MDL");
    let mut small = Memory::chain(&[64]);
    small.mdls[0].size = 0x18;
    let p = small.head();
    assert_eq!(register(m, p, 64, RW), STATUS_INVALID_PARAMETER, "Size");
    assert_unregistered(m, "MDL Size below the header");

    // Closed right after a failure (the reported sequence), and a
    // fast-register MR refusing NdkRegisterMr, closed.
    let once = create_mr(a.pd, false);
    let p = unmappable.head();
    assert_eq!(register(once, p, 3000, RW), STATUS_INVALID_PARAMETER);
    ndk::close(once, 4990).expect("NdkCloseMr right after a failure");
    let fr = create_mr(a.pd, true);
    let p = good.head();
    assert_eq!(register(fr, p, n, RW), STATUS_INVALID_DEVICE_REQUEST);
    ndk::close(fr, 4991).expect("NdkCloseMr of the fast-register MR");

    // Now a real registration on the MR that failed every way: locked
    // pages not mapped yet, so the shell maps each MDL
    // (MmMapLockedPagesSpecifyCache).
    let mut mem = Memory::chain(&[1001, 2999, 2000]);
    for d in &mut mem.mdls {
        d.mdl_flags = MDL_PAGES_LOCKED;
        d.mapped_system_va = ptr::null_mut();
    }
    let len = mem.len();
    let p = mem.head();
    assert_eq!(
        register(m, p, len, RW),
        STATUS_SUCCESS,
        "after the failures"
    );
    assert!(
        mem.mdls
            .iter()
            .all(|d| d.mdl_flags & MDL_MAPPED_TO_SYSTEM_VA != 0),
        "each MDL mapped by the shell"
    );
    let token = ndk!(m, NdkGetLocalTokenFromMr);
    // A second registration is refused and leaves the first in force.
    let p = good.head();
    assert_eq!(register(m, p, n, RW), STATUS_INVALID_DEVICE_STATE);
    assert_eq!(ndk!(m, NdkGetLocalTokenFromMr), token, "first in force");

    // Move data through it both ways: swap it in for a's MR.
    ndk::close(a.mr, 4992).expect("close a's first MR");
    a.mr = m;
    a.token = token;
    a.mem = mem;
    ndk::transfer(&mut b, &a, 5000, 4100).expect("into the MR that failed");
    ndk::transfer(&mut a, &b, 6000, 4200).expect("out of the MR that failed");

    ndk::close_pair(&mut a, &mut b, 4300, 4310);
    drop((good, unmappable, cycle, zero, wraps, unlocked, small));
    support::detach_halt_and_check_clean();
}
