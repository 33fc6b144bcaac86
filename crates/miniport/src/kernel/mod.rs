//! The kernel glue: NDIS entry points, the kernel platform of the core, and
//! the data path's NET_BUFFER_LIST handling. It decides nothing: steering,
//! framing, neighbor caching, NDK state, buffer accounting and OID encoding
//! are the portable modules' and `ndk::oids`'.
//!
//! Locking: one KSPIN_LOCK (`SHELL`) guards the shell's state and is never
//! held while calling into `ndk::abi` (whose calls take the adapter lock
//! and make consumer upcalls) or into NDIS send/indicate functions. The
//! open NDK adapter is reached through an enter/leave count so that
//! CloseNDKAdapterHandler can wait for every user to leave.
//!
//! One file per role, each reviewable against its Microsoft reference
//! pages: [`entry`] (DriverEntry's registrations), [`miniport`] (the
//! adapter's MiniportXxx handlers), [`oid_requests`], [`ndk_open`] (the NDK
//! provider), [`filter`] (the lightweight filter), [`pool`] (NBL/MDL
//! frames), [`platform`] (locks, DPCs, timer, clock, MDL memory) and
//! [`maintenance`] (the PASSIVE work item).

#![allow(non_upper_case_globals)]

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::cell::UnsafeCell;
use core::ffi::c_void;
use core::net::IpAddr;
use core::ptr::{self, null_mut};

use ndis_sys::*;
use ndk::abi::{MdlRange, Platform, RawLock, io};
use ndk::oids;
use ndkpi::{NDIS_OPEN_NDK_ADAPTER_PARAMETERS, NDK_ADAPTER, NDK_ADAPTER_INFO};
use roce::time::Instant;

use crate::frame::{self, Steer};
use crate::neighbor::{Lookup, Neighbors};
use crate::slots::Slots;
use crate::state::{NdkState, PnpEvent};

mod entry;
mod filter;
mod maintenance;
mod miniport;
mod ndk_open;
mod oid_requests;
mod platform;
mod pool;

pub use entry::driver_entry;
use filter::*;
use maintenance::*;
use miniport::*;
use ndk_open::*;
use oid_requests::*;
use platform::*;
use pool::*;

/// Pool tag "ndkr".
pub const POOL_TAG: u32 = u32::from_le_bytes(*b"ndkr");
/// Frame buffers: Ethernet header + the engine's largest datagram.
const SLOT_BYTES: usize = 14 + roce::device::MAX_DATAGRAM;
/// Frames per pool.
const SLOTS: u32 = 64;
/// Addresses of the virtual adapter the shell steers for.
const MAX_IPS: usize = 8;
/// MTU the virtual adapter reports (its IP stack's frames are bridged
/// onto the physical NIC, so they must fit a standard Ethernet MTU).
const MTU: u32 = 1500;
/// The NDIS version the miniport and the filter register with (6.30:
/// the first with NDK).
const NDIS_MAJOR: u8 = 6;
const NDIS_MINOR: u8 = 30;

// ------------------------------------------------------------- state

/// The shell's state (one ndkrs adapter, bound to one physical NIC).
struct Shell {
    driver: NDIS_HANDLE,
    filter_driver: NDIS_HANDLE,
    miniport: NDIS_HANDLE,
    luid: NET_LUID,
    virt_mac: [u8; 6],
    ndk: NdkState,
    adapter: *mut NDK_ADAPTER,
    users: u32,
    miniport_running: bool,
    up: Option<Pool>,
    up_pause_pending: bool,
    filter: NDIS_HANDLE,
    phys_mac: [u8; 6],
    /// The bound NIC's NET_LUID and IP MTU (GetIfEntry2), read at attach
    /// and at every restart (an MTU change restarts the NIC's stack).
    nic_luid: NET_LUID,
    link_mtu: Option<u32>,
    filter_running: bool,
    wire: Option<Pool>,
    wire_pause_pending: bool,
    ips: [Option<IpAddr>; MAX_IPS],
    counters: oids::Counters,
    neighbors: Neighbors,
    resolving: Option<IpAddr>,
    refresh: bool,
    maintenance: NDIS_HANDLE,
    maintenance_queued: bool,
    maintenance_running: bool,
    io: *mut IoBlock,
    /// Engine DPCs running (kick and timer); a wake meanwhile sets
    /// `rewake` instead of queuing the kick.
    dpc_active: u32,
    rewake: bool,
}

impl Shell {
    const fn new() -> Shell {
        Shell {
            driver: null_mut(),
            filter_driver: null_mut(),
            miniport: null_mut(),
            luid: 0,
            virt_mac: [0; 6],
            ndk: NdkState::new(false),
            adapter: null_mut(),
            users: 0,
            miniport_running: false,
            up: None,
            up_pause_pending: false,
            filter: null_mut(),
            phys_mac: [0; 6],
            nic_luid: 0,
            link_mtu: None,
            filter_running: false,
            wire: None,
            wire_pause_pending: false,
            ips: [None; MAX_IPS],
            counters: oids::Counters {
                connect: 0,
                accept: 0,
                connect_failure: 0,
                connection_error: 0,
                cq_error: 0,
                in_octets: 0,
                out_octets: 0,
                in_frames: 0,
                out_frames: 0,
            },
            neighbors: Neighbors::new_const(),
            resolving: None,
            refresh: false,
            maintenance: null_mut(),
            maintenance_queued: false,
            maintenance_running: false,
            io: null_mut(),
            dpc_active: 0,
            rewake: false,
        }
    }

    fn ip_list(&self) -> ([IpAddr; MAX_IPS], usize) {
        let mut out = [IpAddr::from([0, 0, 0, 0]); MAX_IPS];
        let mut n = 0;
        for (o, ip) in out.iter_mut().zip(self.ips.iter().flatten()) {
            *o = *ip;
            n += 1;
        }
        (out, n)
    }

    /// Enters the open NDK adapter, if any.
    fn enter(&mut self) -> Option<*mut NDK_ADAPTER> {
        if self.adapter.is_null() {
            return None;
        }
        self.users += 1;
        Some(self.adapter)
    }
}

static SHELL: SpinCell<Shell> = SpinCell::new(Shell::new());

fn leave() {
    SHELL.with(|s| s.users = s.users.saturating_sub(1));
}

/// Queues the maintenance work item (neighbor resolution, address refresh,
/// NDK PnP events) unless it is already queued.
fn kick_maintenance(s: &mut Shell) {
    if s.maintenance.is_null() || s.maintenance_queued {
        return;
    }
    s.maintenance_queued = true;
    // SAFETY: a work item allocated on the miniport handle; the routine
    // takes no context.
    unsafe { NdisQueueIoWorkItem(s.maintenance, maintenance, null_mut()) };
}
