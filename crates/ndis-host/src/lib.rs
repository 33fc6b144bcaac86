//! A user-mode NDIS host: runs the real ndkrs Windows shell
//! (`miniport::kernel`) on Linux the way Windows would, and fails on any
//! breach of NDIS's documented contract.
//!
//! The shell imports ntoskrnl, hal, NDIS and NETIO functions (the list
//! `.ci/kernel-image/check.sh` prints); [`exports`] defines each of them as
//! a `#[no_mangle] extern "system"` function, so the shell links against
//! the host in a test binary exactly as it links against the kernel in the
//! driver image. Around it, [`machine`] plays the I/O manager, PnP and
//! NDIS (DriverEntry, MiniportInitializeEx, FilterAttach, restart, OID
//! requests, NDK opens, pause, detach, halt, unload) and [`stack`] the
//! drivers that share the shell's stacks: an emulated physical NIC under
//! the shell's filter, TCP/IP above it, and a protocol above the shell's
//! own adapter. The TCP/IP stacks speak ARP ([`arp`]), and the NIC's wire
//! can be a Linux TAP device ([`tap`]), so the shell meets a real network
//! (tests/tap_interop.rs, against the Linux rxe VM of tests/interop/).
//!
//! What is enforced (each breach recorded in [`contract`], and every test
//! asserts there are none):
//! * IRQL ([`irql`]): every export at an IRQL its reference page allows;
//!   every call into the driver returns at the IRQL it was made at, with no
//!   spin lock it took still held; spin locks are real locks with owners
//!   (recursive acquisition, release by a non-owner, and a lock not
//!   obtained within 10 s are fatal); the DISPATCH_LEVEL flags of send,
//!   receive, completion and return calls match the caller's IRQL.
//! * NBL ownership ([`mem`]): every NBL is somewhere (with its owner, sent
//!   down, indicated up, with the filter); a send, completion, indication
//!   or return that takes an NBL from a place the contract does not allow
//!   (twice, or not the caller's) is a breach; NDIS's reserved words and
//!   other drivers' reserved areas and SourceHandle must come back
//!   untouched; an NBL the filter originates must carry its filter handle
//!   as SourceHandle; with NDIS_RECEIVE_FLAGS_RESOURCES the chain must be
//!   restored and nothing returned.
//! * States: no send or indication from a paused module; a pause completes
//!   once, and only with none of the module's NBLs outstanding; detach and
//!   halt only when paused; OIDs complete synchronously (the shell cannot
//!   pend one) with coherent byte counts; NDK PnP events only at PASSIVE,
//!   outside MiniportOidRequest, with a valid code, and they must follow
//!   OID_NDK_SET_STATE.
//! * Teardown: no pool block, MDL, NBL pool, NBL, work item or MIB table
//!   left at unload; no queued DPC or set timer inside freed memory; both
//!   drivers deregistered.
// The host receives raw pointers from the driver under test at every export
// and passes them between its modules; the exports are the unsafe boundary.
#![allow(clippy::missing_safety_doc, clippy::not_unsafe_ptr_arg_deref)]

pub mod arp;
pub mod contract;
pub mod exports;
pub mod irql;
pub mod ke;
pub mod layout;
pub mod machine;
pub mod mem;
pub mod stack;
pub mod tap;

use std::net::IpAddr;

use ndkpi::SOCKADDR_INET;

/// `NetEventNDKEnable` and `NetEventNDKDisable` (NET_PNP_EVENT_CODE in
/// ndis.h: 13 and 14).
pub const NET_EVENT_NDK_ENABLE: u32 = 13;
pub const NET_EVENT_NDK_DISABLE: u32 = 14;
/// `NlnsReachable` (NL_NEIGHBOR_STATE in nldef.h).
pub const NLNS_REACHABLE: u32 = 5;

/// SOCKADDR_INET bytes for `ip` (port 0).
pub fn sockaddr(ip: IpAddr) -> [u8; 28] {
    let mut b = [0u8; 28];
    match ip {
        IpAddr::V4(v4) => {
            b[..2].copy_from_slice(&ndkpi::AF_INET.to_le_bytes());
            b[4..8].copy_from_slice(&v4.octets());
        }
        IpAddr::V6(v6) => {
            b[..2].copy_from_slice(&ndkpi::AF_INET6.to_le_bytes());
            b[8..24].copy_from_slice(&v6.octets());
        }
    }
    b
}

/// The address in a SOCKADDR_INET.
pub fn ip_of(a: &SOCKADDR_INET) -> Option<IpAddr> {
    // SAFETY: SOCKADDR_INET is 28 bytes of plain data.
    let b: [u8; 28] = unsafe { std::mem::transmute_copy(a) };
    match u16::from_le_bytes([b[0], b[1]]) {
        ndkpi::AF_INET => Some(IpAddr::from([b[4], b[5], b[6], b[7]])),
        ndkpi::AF_INET6 => {
            let mut o = [0u8; 16];
            o.copy_from_slice(&b[8..24]);
            Some(IpAddr::from(o))
        }
        _ => None,
    }
}
