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
/// RoCE path MTU: `*NetworkDirectRoCEFrameSize`'s required default (1024).
const ROCE_MTU: u32 = 1024;
/// The NDIS version the miniport and the filter register with (6.30:
/// the first with NDK).
const NDIS_MAJOR: u8 = 6;
const NDIS_MINOR: u8 = 30;

// ------------------------------------------------------------ spin lock

/// A KSPIN_LOCK-guarded cell.
struct SpinCell<T> {
    lock: UnsafeCell<KSPIN_LOCK>,
    value: UnsafeCell<T>,
}

// SAFETY: the spin lock serializes every access to `value`.
unsafe impl<T> Sync for SpinCell<T> {}

impl<T> SpinCell<T> {
    const fn new(value: T) -> Self {
        SpinCell {
            lock: UnsafeCell::new(0),
            value: UnsafeCell::new(value),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        // SAFETY: a valid, initialised KSPIN_LOCK (zero is the initial
        // state KeInitializeSpinLock writes); released with the IRQL it
        // returned.
        unsafe {
            let irql = KeAcquireSpinLockRaiseToDpc(self.lock.get());
            let r = f(&mut *self.value.get());
            KeReleaseSpinLock(self.lock.get(), irql);
            r
        }
    }
}

/// The core's lock: a KSPIN_LOCK raised to DISPATCH_LEVEL; the holder's
/// IRQL is kept in the lock (one holder at a time).
struct KernelLock {
    lock: UnsafeCell<KSPIN_LOCK>,
    irql: UnsafeCell<KIRQL>,
}
// SAFETY: the spin lock serializes the cells.
unsafe impl Sync for KernelLock {}
// SAFETY: as above.
unsafe impl Send for KernelLock {}

impl RawLock for KernelLock {
    fn lock(&self) {
        // SAFETY: a valid KSPIN_LOCK; the IRQL is written while held.
        unsafe { *self.irql.get() = KeAcquireSpinLockRaiseToDpc(self.lock.get()) };
    }
    fn unlock(&self) {
        // SAFETY: released by the holder with the IRQL it saved.
        unsafe { KeReleaseSpinLock(self.lock.get(), *self.irql.get()) };
    }
}

// ------------------------------------------------------------- pools

/// Preallocated frames: one nonpaged buffer, MDL and NBL per slot.
struct Pool {
    nbl_pool: NDIS_HANDLE,
    slots: Slots,
    bufs: *mut u8,
    nbls: [*mut NET_BUFFER_LIST; SLOTS as usize],
    mdls: [*mut MDL; SLOTS as usize],
}

impl Pool {
    /// # Safety
    /// `owner` is a miniport adapter or filter module handle; PASSIVE.
    unsafe fn new(owner: NDIS_HANDLE) -> Option<Pool> {
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
    unsafe fn free(&mut self) {
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
    unsafe fn buf<'a>(&self, i: u32) -> &'a mut [u8] {
        // SAFETY: inside the allocation; the slot is exclusively owned.
        unsafe {
            core::slice::from_raw_parts_mut(self.bufs.add(i as usize * SLOT_BYTES), SLOT_BYTES)
        }
    }

    fn nbl(&self, i: u32) -> *mut NET_BUFFER_LIST {
        self.nbls.get(i as usize).copied().unwrap_or(null_mut())
    }
}

/// Sets the data range of a one-MDL slot NBL.
///
/// # Safety
/// `nbl` is a slot NBL the caller owns.
unsafe fn set_range(nbl: *mut NET_BUFFER_LIST, offset: usize, len: usize) {
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
unsafe fn slot_of(nbl: *mut NET_BUFFER_LIST, send: bool) -> u32 {
    // SAFETY: written at pool creation.
    unsafe {
        if send {
            (*nbl).ProtocolReserved[0] as u32
        } else {
            (*nbl).MiniportReserved[0] as u32
        }
    }
}

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
    pnp: Option<PnpEvent>,
    io: *mut IoBlock,
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
            pnp: None,
            io: null_mut(),
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

// ------------------------------------------------------------- platform

/// The DPCs and the timer that run the engine.
#[repr(C)]
struct IoBlock {
    kick: KDPC,
    timer: KTIMER,
    timer_dpc: KDPC,
}

struct KernelPlatform {
    io: *mut IoBlock,
}
// SAFETY: the IoBlock lives until the miniport halts, after every adapter
// closed; KeInsertQueueDpc is callable at any IRQL.
unsafe impl Send for KernelPlatform {}
// SAFETY: as above.
unsafe impl Sync for KernelPlatform {}

impl Platform for KernelPlatform {
    fn new_lock(&self) -> Box<dyn RawLock> {
        Box::new(KernelLock {
            lock: UnsafeCell::new(0),
            irql: UnsafeCell::new(0),
        })
    }

    fn now(&self) -> Instant {
        now()
    }

    fn wake(&self) {
        // SAFETY: an initialised DPC; queuing an already queued DPC is a
        // no-op.
        unsafe { KeInsertQueueDpc(ptr::addr_of_mut!((*self.io).kick), null_mut(), null_mut()) };
    }

    unsafe fn mdl_range(&self, mdl: *mut ndkpi::MDL) -> Option<MdlRange> {
        let mdl = mdl.cast::<MDL>();
        if mdl.is_null() {
            return None;
        }
        // SAFETY: the consumer's MDL, valid for the call. A chain maps
        // each MDL separately, so only a single MDL is one contiguous
        // system range.
        unsafe {
            if !(*mdl).Next.is_null() {
                return None;
            }
            let system =
                MmGetSystemAddressForMdlSafe(mdl, NormalPagePriority | MdlMappingNoExecute);
            if system.is_null() {
                return None;
            }
            Some(MdlRange {
                virtual_address: MmGetMdlVirtualAddress(mdl) as u64,
                logical_address: system as u64,
                length: u64::from(MmGetMdlByteCount(mdl)),
            })
        }
    }

    fn read(&self, addr: u64, dst: &mut [u8]) -> bool {
        if addr == 0 {
            return false;
        }
        // SAFETY: logical addresses are system mappings of MDLs the
        // consumer registered and keeps locked while registered.
        unsafe { ptr::copy_nonoverlapping(addr as *const u8, dst.as_mut_ptr(), dst.len()) };
        true
    }

    fn write(&self, addr: u64, src: &[u8]) -> bool {
        if addr == 0 {
            return false;
        }
        // SAFETY: as in `read`.
        unsafe { ptr::copy_nonoverlapping(src.as_ptr(), addr as *mut u8, src.len()) };
        true
    }
}

fn now() -> Instant {
    // SAFETY: callable at any IRQL; 100 ns units.
    Instant::from_nanos(unsafe { KeQueryUnbiasedInterruptTime() }.saturating_mul(100))
}

/// Both DPCs: run due timers, move the engine's datagrams to the wire,
/// arm the timer for the next deadline.
unsafe extern "system" fn engine_dpc(_dpc: *mut KDPC, context: PVOID, timer: PVOID, _: PVOID) {
    let Some(adapter) = SHELL.with(|s| s.enter()) else {
        return;
    };
    // Both DPCs run the due timers: a kick may find them due too.
    let _ = (context, timer);
    io::handle_timeout(adapter);
    pump(adapter);
    if let Some(deadline) = io::poll_timeout(adapter) {
        let io = SHELL.with(|s| s.io);
        let wait = deadline.as_nanos().saturating_sub(now().as_nanos()) / 100;
        // Relative due time: negative, in 100 ns units, at least one tick.
        let due = -(wait.clamp(1, i64::MAX as u64) as i64);
        if !io.is_null() {
            // SAFETY: initialised timer and DPC in the live IoBlock.
            unsafe {
                KeSetTimer(
                    ptr::addr_of_mut!((*io).timer),
                    due,
                    ptr::addr_of_mut!((*io).timer_dpc),
                )
            };
        }
    }
    leave();
}

/// Sends what the engine has, up to one pool's worth per run.
fn pump(adapter: *mut NDK_ADAPTER) {
    for _ in 0..SLOTS {
        let Some((slot, buf, nbl, filter)) = SHELL.with(|s| {
            if !s.filter_running {
                return None;
            }
            let pool = s.wire.as_mut()?;
            let i = pool.slots.take()?;
            // SAFETY: slot `i` was just taken.
            Some((i, unsafe { pool.buf(i) }, pool.nbl(i), s.filter))
        }) else {
            return;
        };
        let Some(room) = buf.get_mut(frame::ETH_HEADER..) else {
            give_back_wire(slot);
            return;
        };
        let Some(t) = io::poll_transmit(adapter, room) else {
            give_back_wire(slot);
            return;
        };
        let (start, end) = (t.sealed.ip_start, frame::ETH_HEADER + t.sealed.end);
        let dst = t.dst.ip();
        let datagram = buf.get(frame::ETH_HEADER + start..end).unwrap_or(&[]);
        let ethertype = frame::ethertype_of(datagram);
        let (to, local, phys) = SHELL.with(|s| {
            let local = s.ips.contains(&Some(dst));
            let n = now();
            let lookup = if local {
                Lookup::Wait
            } else {
                s.neighbors.lookup(dst, n)
            };
            if lookup == Lookup::Resolve && s.resolving.is_none() {
                s.resolving = Some(dst);
                kick_maintenance(s);
            }
            (lookup, local, s.phys_mac)
        });
        if local {
            // Loopback connections (NDK_ADAPTER_FLAG_LOOPBACK_CONNECTIONS_SUPPORTED).
            io::handle_ip(adapter, datagram);
            give_back_wire(slot);
            continue;
        }
        let (Lookup::Hit(mac), Some(et)) = (to, ethertype) else {
            // Unresolved: dropped; the transport retransmits.
            give_back_wire(slot);
            continue;
        };
        if !buf
            .get_mut(start..)
            .is_some_and(|h| frame::write_header(h, mac, phys, et))
        {
            give_back_wire(slot);
            continue;
        }
        SHELL.with(|s| s.counters.sent(end - start));
        // SAFETY: our slot NBL; the filter is running (checked above; a
        // pause waits for outstanding sends).
        unsafe {
            set_range(nbl, start, end - start);
            (*nbl).SourceHandle = filter;
            NdisFSendNetBufferLists(
                filter,
                nbl,
                NDIS_DEFAULT_PORT_NUMBER,
                NDIS_SEND_FLAGS_DISPATCH_LEVEL,
            );
        }
    }
}

fn give_back_wire(slot: u32) {
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
fn wire_pause_done(s: &mut Shell) -> Option<NDIS_HANDLE> {
    if s.wire_pause_pending && s.wire.as_ref().is_none_or(|p| p.slots.in_use() == 0) {
        s.wire_pause_pending = false;
        return Some(s.filter);
    }
    None
}

/// The miniport handle whose pending pause can now complete.
fn up_pause_done(s: &mut Shell) -> Option<NDIS_HANDLE> {
    if s.up_pause_pending && s.up.as_ref().is_none_or(|p| p.slots.in_use() == 0) {
        s.up_pause_pending = false;
        return Some(s.miniport);
    }
    None
}

/// PASSIVE_LEVEL work: NDK PnP events, neighbor resolution, address
/// refresh.
unsafe extern "system" fn maintenance(_context: PVOID, _handle: NDIS_HANDLE) {
    let (pnp, resolve, refresh, miniport, luid) = SHELL.with(|s| {
        s.maintenance_queued = false;
        (
            s.pnp.take(),
            s.resolving,
            core::mem::take(&mut s.refresh),
            s.miniport,
            s.luid,
        )
    });
    if let Some(e) = pnp {
        let mut n = NET_PNP_EVENT_NOTIFICATION {
            Header: NDIS_OBJECT_HEADER {
                Type: NDIS_OBJECT_TYPE_DEFAULT,
                Revision: NET_PNP_EVENT_NOTIFICATION_REVISION_1,
                Size: core::mem::size_of::<NET_PNP_EVENT_NOTIFICATION>() as u16,
            },
            PortNumber: NDIS_DEFAULT_PORT_NUMBER,
            NetPnPEvent: NET_PNP_EVENT {
                NetEvent: if e == PnpEvent::Enable {
                    NetEventNDKEnable
                } else {
                    NetEventNDKDisable
                },
                Buffer: null_mut(),
                BufferLength: 0,
                NdisReserved: [0; 4],
                TransportReserved: [0; 4],
                TdiReserved: [0; 4],
                TdiClientReserved: [0; 4],
            },
            Flags: 0,
        };
        // SAFETY: PASSIVE, outside MiniportOidRequest; a disable stays
        // here until every NDK adapter closed.
        unsafe { NdisMNetPnPEvent(miniport, &mut n) };
    }
    if refresh {
        refresh_addresses(luid);
    }
    if let Some(ip) = resolve {
        let mut row: MIB_IPNET_ROW2 = unsafe_zeroed_row();
        row.Address = sockaddr(ip);
        row.InterfaceLuid = luid;
        // SAFETY: PASSIVE; a valid row naming our interface.
        let status = unsafe { ResolveIpNetEntry2(&mut row, ptr::null()) };
        let mac = row.PhysicalAddress;
        SHELL.with(|s| {
            s.resolving = None;
            if status >= 0 && row.PhysicalAddressLength == 6 {
                s.neighbors
                    .resolved(ip, [mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]], now());
            } else {
                s.neighbors.failed(ip, now());
            }
        });
    }
    SHELL.with(|s| {
        if s.pnp.is_some() || s.refresh {
            kick_maintenance(s);
        }
    });
    wake_engine();
}

fn unsafe_zeroed_row() -> MIB_IPNET_ROW2 {
    MIB_IPNET_ROW2 {
        Address: ndkpi::SOCKADDR_INET::default(),
        InterfaceIndex: 0,
        InterfaceLuid: 0,
        PhysicalAddress: [0; 32],
        PhysicalAddressLength: 0,
        State: 0,
        Flags: 0,
        ReachabilityTime: 0,
    }
}

fn sockaddr(ip: IpAddr) -> ndkpi::SOCKADDR_INET {
    let bytes = oids::sockaddr_inet_bytes(core::net::SocketAddr::new(ip, 0));
    let mut out = ndkpi::SOCKADDR_INET::default();
    // SAFETY: SOCKADDR_INET is 28 bytes of plain data.
    unsafe {
        ptr::copy_nonoverlapping(
            bytes.as_ptr(),
            ptr::addr_of_mut!(out).cast::<u8>(),
            bytes.len(),
        )
    };
    out
}

fn ip_of(a: &ndkpi::SOCKADDR_INET) -> Option<IpAddr> {
    // SAFETY: the family field is at offset 0 of every member.
    unsafe {
        match a.si_family {
            ndkpi::AF_INET => Some(IpAddr::from(a.Ipv4.sin_addr.s_addr)),
            ndkpi::AF_INET6 => Some(IpAddr::from(a.Ipv6.sin6_addr.s6_addr)),
            _ => None,
        }
    }
}

/// Reads the virtual adapter's unicast addresses (PASSIVE).
fn refresh_addresses(luid: NET_LUID) {
    let mut table: *mut MIB_UNICASTIPADDRESS_TABLE = null_mut();
    // SAFETY: PASSIVE; the table is freed below.
    if unsafe { GetUnicastIpAddressTable(AF_UNSPEC, &mut table) } < 0 || table.is_null() {
        return;
    }
    let mut ips = [None; MAX_IPS];
    // SAFETY: NumEntries rows follow the count.
    unsafe {
        let rows = core::slice::from_raw_parts(
            ptr::addr_of!((*table).Table).cast::<MIB_UNICASTIPADDRESS_ROW>(),
            (*table).NumEntries as usize,
        );
        let ours = rows
            .iter()
            .filter(|r| r.InterfaceLuid == luid)
            .filter_map(|r| ip_of(&r.Address));
        for (slot, ip) in ips.iter_mut().zip(ours) {
            *slot = Some(ip);
        }
        FreeMibTable(table.cast());
    }
    SHELL.with(|s| {
        if s.ips != ips {
            s.ips = ips;
            s.neighbors.clear();
        }
    });
}

fn wake_engine() {
    let io = SHELL.with(|s| s.io);
    if !io.is_null() {
        // SAFETY: the live IoBlock's DPC.
        unsafe { KeInsertQueueDpc(ptr::addr_of_mut!((*io).kick), null_mut(), null_mut()) };
    }
}

// ------------------------------------------------------------ NDK open

unsafe extern "system" fn open_ndk_adapter(
    _ctx: NDIS_HANDLE,
    params: *mut NDIS_OPEN_NDK_ADAPTER_PARAMETERS,
    out: *mut *mut NDK_ADAPTER,
) -> NDIS_STATUS {
    if params.is_null() || out.is_null() {
        return NDIS_STATUS_FAILURE;
    }
    // SAFETY: NDIS passes a valid parameter block (Version is its first
    // member in every NDIS version).
    let requested = unsafe { (*params).Version };
    let (status, engine) = SHELL.with(|s| (s.ndk.open(), s.adapter));
    if status != NDIS_STATUS_SUCCESS {
        return status;
    }
    let engine = if engine.is_null() {
        match start_engine(requested) {
            Ok(e) => e,
            Err(st) => {
                release_open();
                return st;
            }
        }
    } else {
        engine
    };
    // Each consumer gets its own NDK_ADAPTER over the shell's engine
    // handle, so SMB client and server share addresses and listeners.
    // SAFETY: the engine handle stays open while any open is admitted
    // (`release_open` closes it only after the last).
    match unsafe { ndk::abi::open_adapter_shared(engine, requested) } {
        Ok(a) => {
            // SAFETY: NDIS's out pointer.
            unsafe { *out = a };
            wake_engine();
            NDIS_STATUS_SUCCESS
        }
        Err(st) => {
            release_open();
            st
        }
    }
}

/// Opens the engine handle the I/O path runs on (never given to a
/// consumer), unless a racing open installed one first.
fn start_engine(requested: ndkpi::NDK_VERSION) -> Result<*mut NDK_ADAPTER, NDIS_STATUS> {
    let (io, luid) = SHELL.with(|s| (s.io, s.luid));
    refresh_addresses(luid);
    let (ips, n) = SHELL.with(|s| s.ip_list());
    let mut addresses = Vec::new();
    if addresses.try_reserve(n).is_err() {
        return Err(NDIS_STATUS_RESOURCES);
    }
    addresses.extend(ips.iter().take(n).copied());
    let platform: Arc<dyn Platform> = Arc::new(KernelPlatform { io });
    let mine = ndk::abi::open_adapter(platform, config(addresses, luid), requested)?;
    let engine = SHELL.with(|s| {
        if s.adapter.is_null() {
            s.adapter = mine;
        }
        s.adapter
    });
    if engine != mine {
        // SAFETY: never published; nothing else reaches it.
        unsafe { ndk::abi::close_adapter(mine) };
    }
    Ok(engine)
}

/// One admitted open is gone; after the last, the engine handle closes once
/// the I/O path has left it.
fn release_open() {
    let (engine, io) = SHELL.with(|s| {
        if s.ndk.closed() {
            (core::mem::replace(&mut s.adapter, null_mut()), s.io)
        } else {
            (null_mut(), null_mut())
        }
    });
    if engine.is_null() {
        return;
    }
    if !io.is_null() {
        // SAFETY: PASSIVE; the timer and DPCs of the live IoBlock.
        unsafe {
            KeCancelTimer(ptr::addr_of_mut!((*io).timer));
            KeFlushQueuedDpcs();
        }
    }
    // Receive paths that entered before the pointer was cleared.
    while SHELL.with(|s| s.users) != 0 {
        core::hint::spin_loop();
    }
    // SAFETY: no consumer adapter and no I/O path uses the engine any more.
    unsafe { ndk::abi::close_adapter(engine) };
}

unsafe extern "system" fn close_ndk_adapter(_ctx: NDIS_HANDLE, adapter: *mut NDK_ADAPTER) {
    // SAFETY: NDIS closes an adapter its consumer opened and no longer
    // uses; the I/O path runs on the engine handle, never on this one.
    unsafe { ndk::abi::close_adapter(adapter) };
    release_open();
}

fn config(addresses: Vec<IpAddr>, luid: NET_LUID) -> ndk::provider::ProviderConfig {
    ndk::provider::ProviderConfig {
        device: roce::device::DeviceConfig {
            ip_mode: roce::framing::IpMode::Raw,
            udp_source_port: roce::rc::ROCE_UDP_PORT,
            ca_guid: luid,
            cm: roce::cm::CmConfig::default(),
            rc: roce::rc::EngineConfig::default(),
            seed: 0,
        }
        .with_identity(luid ^ now().as_nanos()),
        addresses,
        path_mtu: ROCE_MTU,
        version: ndkpi::NDK_VERSION_1_2,
        limits: ndk::provider::Limits::default(),
    }
}

// ------------------------------------------------------------ miniport

unsafe extern "system" fn set_options(driver: NDIS_HANDLE, _ctx: NDIS_HANDLE) -> NDIS_STATUS {
    let mut c = NDIS_NDK_PROVIDER_CHARACTERISTICS {
        Header: NDIS_OBJECT_HEADER {
            Type: ndkpi::NDIS_OBJECT_TYPE_NDK_PROVIDER_CHARACTERISTICS,
            Revision: ndkpi::NDIS_NDK_PROVIDER_CHARACTERISTICS_REVISION_1,
            Size: ndkpi::NDIS_SIZEOF_NDK_PROVIDER_CHARACTERISTICS_REVISION_1,
        },
        Flags: 0,
        OpenNDKAdapterHandler: Some(open_ndk_adapter),
        CloseNDKAdapterHandler: Some(close_ndk_adapter),
    };
    // SAFETY: NDIS copies the characteristics during the call.
    unsafe { NdisSetOptionalHandlers(driver, ptr::addr_of_mut!(c.Header)) }
}

/// Adapter-wide NDK capabilities and the per-consumer NDK_ADAPTER_INFO
/// they point to; NDIS reads them during NdisMSetMiniportAttributes, kept
/// for the adapter's lifetime anyway.
struct NdkAttributes {
    info: NDK_ADAPTER_INFO,
    caps: ndkpi::NDIS_NDK_CAPABILITIES,
    attrs: NDIS_MINIPORT_ADAPTER_NDK_ATTRIBUTES,
}

static SUPPORTED_OIDS: [NDIS_OID; 24] = [
    OID_GEN_SUPPORTED_LIST,
    OID_GEN_HARDWARE_STATUS,
    OID_GEN_MEDIA_SUPPORTED,
    OID_GEN_MEDIA_IN_USE,
    OID_GEN_MAXIMUM_LOOKAHEAD,
    OID_GEN_MAXIMUM_FRAME_SIZE,
    OID_GEN_MAXIMUM_TOTAL_SIZE,
    OID_GEN_TRANSMIT_BUFFER_SPACE,
    OID_GEN_RECEIVE_BUFFER_SPACE,
    OID_GEN_VENDOR_ID,
    OID_GEN_VENDOR_DESCRIPTION,
    OID_GEN_VENDOR_DRIVER_VERSION,
    OID_GEN_CURRENT_PACKET_FILTER,
    OID_GEN_CURRENT_LOOKAHEAD,
    OID_GEN_MAC_OPTIONS,
    OID_GEN_XMIT_OK,
    OID_GEN_RCV_OK,
    OID_802_3_PERMANENT_ADDRESS,
    OID_802_3_CURRENT_ADDRESS,
    OID_802_3_MULTICAST_LIST,
    OID_802_3_MAXIMUM_LIST_SIZE,
    OID_NDK_SET_STATE,
    OID_NDK_STATISTICS,
    OID_NDK_CONNECTIONS,
];

unsafe extern "system" fn initialize(
    miniport: NDIS_HANDLE,
    _driver_ctx: NDIS_HANDLE,
    params: *mut NDIS_MINIPORT_INIT_PARAMETERS,
) -> NDIS_STATUS {
    if params.is_null() {
        return NDIS_STATUS_FAILURE;
    }
    // SAFETY: NDIS's init parameters.
    let luid = unsafe { (*params).NetLuid };
    // A stable, locally administered MAC for the virtual adapter's own IP
    // stack; the filter translates it to the NIC's on the wire.
    let l = luid.to_le_bytes();
    let virt_mac = [0x02, 0x6e, 0x64, l[2] ^ l[5], l[3] ^ l[6], l[4] ^ l[7]];
    // SAFETY: a plain allocation, zeroed below.
    let io = unsafe {
        ExAllocatePool2(
            POOL_FLAG_NON_PAGED,
            core::mem::size_of::<IoBlock>(),
            POOL_TAG,
        )
    }
    .cast::<IoBlock>();
    if io.is_null() {
        return NDIS_STATUS_RESOURCES;
    }
    // SAFETY: the fresh IoBlock.
    unsafe {
        KeInitializeDpc(ptr::addr_of_mut!((*io).kick), engine_dpc, io.cast());
        KeInitializeDpc(ptr::addr_of_mut!((*io).timer_dpc), engine_dpc, null_mut());
        KeInitializeTimer(ptr::addr_of_mut!((*io).timer));
    }
    // SAFETY: PASSIVE, the miniport's own handle.
    let (up, work) = unsafe { (Pool::new(miniport), NdisAllocateIoWorkItem(miniport)) };
    let (Some(up), false) = (up, work.is_null()) else {
        // SAFETY: undoes the allocations above.
        unsafe { ExFreePool(io.cast()) };
        return NDIS_STATUS_RESOURCES;
    };
    // The `*NetworkDirect` keyword: the INF's default (1). Reading it
    // needs NdisOpenConfigurationEx, left out of the bindings: NDIS also
    // gates NDK by the keyword itself and sends OID_NDK_SET_STATE.
    let keyword = true;
    SHELL.with(|s| {
        s.miniport = miniport;
        s.luid = luid;
        s.virt_mac = virt_mac;
        s.ndk = NdkState::new(keyword);
        s.up = Some(up);
        s.maintenance = work;
        s.io = io;
    });

    let mut reg = NDIS_MINIPORT_ADAPTER_REGISTRATION_ATTRIBUTES {
        Header: NDIS_OBJECT_HEADER {
            Type: NDIS_OBJECT_TYPE_MINIPORT_ADAPTER_REGISTRATION_ATTRIBUTES,
            Revision: NDIS_MINIPORT_ADAPTER_REGISTRATION_ATTRIBUTES_REVISION_1,
            Size: NDIS_SIZEOF_MINIPORT_ADAPTER_REGISTRATION_ATTRIBUTES_REVISION_1,
        },
        MiniportAdapterContext: io.cast(),
        AttributeFlags: NDIS_MINIPORT_ATTRIBUTES_NO_HALT_ON_SUSPEND
            | NDIS_MINIPORT_ATTRIBUTES_SURPRISE_REMOVE_OK,
        CheckForHangTimeInSeconds: 0,
        InterfaceType: NdisInterfaceInternal,
    };
    let mut mac = [0u8; NDIS_MAX_PHYS_ADDRESS_LENGTH];
    mac[..6].copy_from_slice(&virt_mac);
    let mut general = NDIS_MINIPORT_ADAPTER_GENERAL_ATTRIBUTES {
        Header: NDIS_OBJECT_HEADER {
            Type: NDIS_OBJECT_TYPE_MINIPORT_ADAPTER_GENERAL_ATTRIBUTES,
            Revision: NDIS_MINIPORT_ADAPTER_GENERAL_ATTRIBUTES_REVISION_2,
            Size: NDIS_SIZEOF_MINIPORT_ADAPTER_GENERAL_ATTRIBUTES_REVISION_2,
        },
        Flags: 0,
        MediaType: NdisMedium802_3,
        PhysicalMediumType: NdisPhysicalMediumUnspecified,
        MtuSize: MTU,
        MaxXmitLinkSpeed: 10_000_000_000,
        XmitLinkSpeed: 10_000_000_000,
        MaxRcvLinkSpeed: 10_000_000_000,
        RcvLinkSpeed: 10_000_000_000,
        MediaConnectState: MediaConnectStateConnected,
        MediaDuplexState: MediaDuplexStateFull,
        LookaheadSize: MTU,
        PowerManagementCapabilities: null_mut(),
        MacOptions: NDIS_MAC_OPTION_COPY_LOOKAHEAD_DATA
            | NDIS_MAC_OPTION_TRANSFERS_NOT_PEND
            | NDIS_MAC_OPTION_NO_LOOPBACK,
        SupportedPacketFilters: NDIS_PACKET_TYPE_DIRECTED
            | NDIS_PACKET_TYPE_MULTICAST
            | NDIS_PACKET_TYPE_ALL_MULTICAST
            | NDIS_PACKET_TYPE_BROADCAST,
        MaxMulticastListSize: 32,
        MacAddressLength: 6,
        PermanentMacAddress: mac,
        CurrentMacAddress: mac,
        RecvScaleCapabilities: null_mut(),
        AccessType: NET_IF_ACCESS_BROADCAST,
        DirectionType: NET_IF_DIRECTION_SENDRECEIVE,
        ConnectionType: NET_IF_CONNECTION_DEDICATED,
        IfType: IF_TYPE_ETHERNET_CSMACD,
        IfConnectorPresent: 0,
        SupportedStatistics: NDIS_STATISTICS_DIRECTED_FRAMES_RCV_SUPPORTED
            | NDIS_STATISTICS_DIRECTED_FRAMES_XMIT_SUPPORTED,
        SupportedPauseFunctions: 0,
        DataBackFillSize: 0,
        ContextBackFillSize: 0,
        SupportedOidList: SUPPORTED_OIDS.as_ptr(),
        SupportedOidListLength: core::mem::size_of_val(&SUPPORTED_OIDS) as u32,
        AutoNegotiationFlags: 0,
        PowerManagementCapabilitiesEx: null_mut(),
    };
    let limits = ndk::provider::Limits::default();
    let info = ndk::abi::adapter_info(&config(Vec::new(), luid));
    let ndk_attrs = Box::into_raw(Box::new(NdkAttributes {
        info,
        caps: oids::capabilities(null_mut(), &limits),
        attrs: NDIS_MINIPORT_ADAPTER_NDK_ATTRIBUTES {
            Header: NDIS_OBJECT_HEADER {
                Type: NDIS_OBJECT_TYPE_MINIPORT_ADAPTER_NDK_ATTRIBUTES,
                Revision: NDIS_MINIPORT_ADAPTER_NDK_ATTRIBUTES_REVISION_1,
                Size: NDIS_SIZEOF_MINIPORT_ADAPTER_NDK_ATTRIBUTES_REVISION_1,
            },
            Enabled: u8::from(keyword),
            NdkCapabilities: null_mut(),
        },
    }));
    // SAFETY: the box just made; self-references are set before use.
    let status = unsafe {
        (*ndk_attrs).caps.NdkInfo = ptr::addr_of_mut!((*ndk_attrs).info);
        (*ndk_attrs).caps.MissingCounterMask = MISSING_COUNTERS;
        (*ndk_attrs).attrs.NdkCapabilities = ptr::addr_of_mut!((*ndk_attrs).caps);
        let mut st = NdisMSetMiniportAttributes(miniport, ptr::addr_of_mut!(reg).cast());
        if st == NDIS_STATUS_SUCCESS {
            st = NdisMSetMiniportAttributes(miniport, ptr::addr_of_mut!(general).cast());
        }
        if st == NDIS_STATUS_SUCCESS {
            st = NdisMSetMiniportAttributes(miniport, ptr::addr_of_mut!((*ndk_attrs).attrs).cast());
        }
        st
    };
    SHELL.with(|s| {
        s.miniport_running = false;
        s.refresh = true;
        kick_maintenance(s);
    });
    // NdkAttributes stays allocated until halt.
    SHELL_NDK_ATTRS.with(|p| *p = ndk_attrs as usize);
    status
}

/// Counters the shell does not keep (oids.rs says which).
const MISSING_COUNTERS: u64 = oids::MISSING_COUNTERS;

static SHELL_NDK_ATTRS: SpinCell<usize> = SpinCell::new(0);

unsafe extern "system" fn halt(_ctx: NDIS_HANDLE, _action: u32) {
    let (io, up, work) = SHELL.with(|s| {
        let r = (s.io, s.up.take(), s.maintenance);
        s.io = null_mut();
        s.maintenance = null_mut();
        s.miniport = null_mut();
        r
    });
    // SAFETY: PASSIVE; NDIS closed every NDK adapter before halting, all
    // indications returned (the miniport was paused).
    unsafe {
        if !io.is_null() {
            KeCancelTimer(ptr::addr_of_mut!((*io).timer));
            KeFlushQueuedDpcs();
            ExFreePool(io.cast());
        }
        if let Some(mut p) = up {
            p.free();
        }
        if !work.is_null() {
            NdisFreeIoWorkItem(work);
        }
        let attrs = SHELL_NDK_ATTRS.with(core::mem::take);
        if attrs != 0 {
            drop(Box::from_raw(attrs as *mut NdkAttributes));
        }
    }
}

unsafe extern "system" fn unload(_driver: PVOID) {
    let (m, f) = SHELL.with(|s| (s.driver, s.filter_driver));
    // SAFETY: PASSIVE, every adapter halted and module detached.
    unsafe {
        if !f.is_null() {
            NdisFDeregisterFilterDriver(f);
        }
        if !m.is_null() {
            NdisMDeregisterMiniportDriver(m);
        }
    }
}

unsafe extern "system" fn pause(_ctx: NDIS_HANDLE, _params: PVOID) -> NDIS_STATUS {
    SHELL.with(|s| {
        s.miniport_running = false;
        if s.up.as_ref().is_none_or(|p| p.slots.in_use() == 0) {
            NDIS_STATUS_SUCCESS
        } else {
            s.up_pause_pending = true;
            NDIS_STATUS_PENDING
        }
    })
}

unsafe extern "system" fn restart(_ctx: NDIS_HANDLE, _params: PVOID) -> NDIS_STATUS {
    SHELL.with(|s| s.miniport_running = true);
    NDIS_STATUS_SUCCESS
}

/// The virtual adapter's IP stack sends: each frame is copied to the
/// physical NIC through the filter (addresses translated); the NBLs
/// complete at once.
unsafe extern "system" fn send(
    _ctx: NDIS_HANDLE,
    nbls: *mut NET_BUFFER_LIST,
    _port: NDIS_PORT_NUMBER,
    flags: ULONG,
) {
    let (miniport, running) = SHELL.with(|s| (s.miniport, s.miniport_running));
    let mut nbl = nbls;
    while !nbl.is_null() {
        // SAFETY: NDIS's chain of valid NBLs, each with NET_BUFFERs.
        unsafe {
            let mut nb = (*nbl).FirstNetBuffer;
            while !nb.is_null() && running {
                to_wire(nb);
                nb = (*nb).Next;
            }
            (*nbl).Status = if running {
                NDIS_STATUS_SUCCESS
            } else {
                NDIS_STATUS_PAUSED
            };
            nbl = (*nbl).Next;
        }
    }
    let complete = if flags & NDIS_SEND_FLAGS_DISPATCH_LEVEL != 0 {
        NDIS_SEND_COMPLETE_FLAGS_DISPATCH_LEVEL
    } else {
        0
    };
    // SAFETY: returns NDIS's chain.
    unsafe { NdisMSendNetBufferListsComplete(miniport, nbls, complete) };
}

/// Copies one frame of the virtual adapter onto the wire.
///
/// # Safety
/// `nb` is a valid NET_BUFFER.
unsafe fn to_wire(nb: *mut NET_BUFFER) {
    // SAFETY: per the contract.
    let len = unsafe { NET_BUFFER_DATA_LENGTH(nb) } as usize;
    if !(frame::ETH_HEADER..=SLOT_BYTES).contains(&len) {
        return;
    }
    let Some((slot, buf, nbl, filter, virt, phys)) = SHELL.with(|s| {
        if !s.filter_running {
            return None;
        }
        let pool = s.wire.as_mut()?;
        let i = pool.slots.take()?;
        // SAFETY: slot `i` was just taken.
        Some((
            i,
            unsafe { pool.buf(i) },
            pool.nbl(i),
            s.filter,
            s.virt_mac,
            s.phys_mac,
        ))
    }) else {
        return;
    };
    let Some(dst) = buf.get_mut(..len) else {
        give_back_wire(slot);
        return;
    };
    // SAFETY: copies `len` bytes (contiguous or not) into our slot.
    if !unsafe { copy_out(nb, dst) } {
        give_back_wire(slot);
        return;
    }
    if let Some(src) = frame::translate_out(dst, virt, phys) {
        SHELL.with(|s| {
            if !s.ips.contains(&Some(src)) && !src.is_unspecified() {
                s.refresh = true;
                kick_maintenance(s);
            }
        });
    }
    // SAFETY: our slot NBL, the filter running.
    unsafe {
        set_range(nbl, 0, len);
        (*nbl).SourceHandle = filter;
        NdisFSendNetBufferLists(filter, nbl, NDIS_DEFAULT_PORT_NUMBER, 0);
    }
}

/// Copies a NET_BUFFER's data into `dst` (exactly its length).
///
/// # Safety
/// `nb` is a valid NET_BUFFER of `dst.len()` bytes.
unsafe fn copy_out(nb: *mut NET_BUFFER, dst: &mut [u8]) -> bool {
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

unsafe extern "system" fn return_nbls(
    _ctx: NDIS_HANDLE,
    nbls: *mut NET_BUFFER_LIST,
    _flags: ULONG,
) {
    let mut nbl = nbls;
    while !nbl.is_null() {
        // SAFETY: our indicated slot NBLs coming back.
        let (next, slot) = unsafe { ((*nbl).Next, slot_of(nbl, false)) };
        let done = SHELL.with(|s| {
            if let Some(p) = s.up.as_mut() {
                p.slots.put(slot);
            }
            up_pause_done(s)
        });
        if let Some(miniport) = done {
            // SAFETY: the pause this miniport returned PENDING for; no
            // lock held.
            unsafe { NdisMPauseComplete(miniport) };
        }
        nbl = next;
    }
}

unsafe extern "system" fn cancel_send(_ctx: NDIS_HANDLE, _id: PVOID) {}
unsafe extern "system" fn pnp_notify(_ctx: NDIS_HANDLE, _event: *mut c_void) {}
unsafe extern "system" fn shutdown(_ctx: NDIS_HANDLE, _action: u32) {}
unsafe extern "system" fn cancel_oid(_ctx: NDIS_HANDLE, _id: PVOID) {}

/// MiniportOidRequest and MiniportDirectOidRequest: every request
/// completes synchronously.
unsafe extern "system" fn oid_request(
    _ctx: NDIS_HANDLE,
    req: *mut NDIS_OID_REQUEST,
) -> NDIS_STATUS {
    if req.is_null() {
        return NDIS_STATUS_FAILURE;
    }
    // SAFETY: NDIS's request; the information buffer holds its length.
    unsafe {
        let r = &mut *req;
        let buf: &mut [u8] = if r.DATA.InformationBuffer.is_null() {
            &mut []
        } else {
            core::slice::from_raw_parts_mut(
                r.DATA.InformationBuffer.cast(),
                r.DATA.InformationBufferLength as usize,
            )
        };
        let (status, written, needed) = match r.RequestType {
            NdisRequestQueryInformation | NdisRequestQueryStatistics => query(r.DATA.Oid, buf),
            NdisRequestSetInformation => set(r.DATA.Oid, buf),
            _ => (NDIS_STATUS_NOT_SUPPORTED, 0, 0),
        };
        r.DATA.BytesWritten = written as u32;
        r.DATA.BytesNeeded = needed as u32;
        status
    }
}

fn answer(buf: &mut [u8], value: &[u8]) -> (NDIS_STATUS, usize, usize) {
    match buf.get_mut(..value.len()) {
        Some(dst) => {
            dst.copy_from_slice(value);
            (NDIS_STATUS_SUCCESS, value.len(), 0)
        }
        None => (NDIS_STATUS_BUFFER_TOO_SHORT, 0, value.len()),
    }
}

fn encoded(r: Result<usize, oids::TooShort>) -> (NDIS_STATUS, usize, usize) {
    match r {
        Ok(n) => (NDIS_STATUS_SUCCESS, n, 0),
        Err(e) => (NDIS_STATUS_BUFFER_TOO_SHORT, 0, e.needed),
    }
}

/// The open NDK adapter's connections and endpoints, taken with the shell's
/// lock released (the adapter's own lock is taken inside); `enter` keeps
/// the adapter from being closed meanwhile.
fn adapter_snapshot() -> Option<oids::Snapshot> {
    let adapter = SHELL.with(|s| s.enter())?;
    let snap = io::snapshot(adapter);
    leave();
    snap
}

fn query(oid: NDIS_OID, buf: &mut [u8]) -> (NDIS_STATUS, usize, usize) {
    let u32v = |v: u32| v.to_le_bytes();
    let (mac, counters) = SHELL.with(|s| (s.virt_mac, s.counters));
    match oid {
        OID_GEN_SUPPORTED_LIST => {
            let mut bytes = [0u8; 4 * 24];
            for (c, o) in bytes.chunks_exact_mut(4).zip(SUPPORTED_OIDS.iter()) {
                c.copy_from_slice(&o.to_le_bytes());
            }
            answer(buf, &bytes)
        }
        OID_GEN_HARDWARE_STATUS => answer(buf, &u32v(0)),
        OID_GEN_MEDIA_SUPPORTED | OID_GEN_MEDIA_IN_USE => answer(buf, &u32v(NdisMedium802_3)),
        OID_GEN_MAXIMUM_LOOKAHEAD | OID_GEN_CURRENT_LOOKAHEAD | OID_GEN_MAXIMUM_FRAME_SIZE => {
            answer(buf, &u32v(MTU))
        }
        OID_GEN_MAXIMUM_TOTAL_SIZE => answer(buf, &u32v(MTU + 14)),
        OID_GEN_TRANSMIT_BUFFER_SPACE | OID_GEN_RECEIVE_BUFFER_SPACE => {
            answer(buf, &u32v((MTU + 14) * SLOTS))
        }
        OID_GEN_VENDOR_ID => answer(buf, &u32v(0x00FF_FFFF)),
        OID_GEN_VENDOR_DESCRIPTION => answer(buf, b"ndkrs software RoCEv2 adapter\0"),
        OID_GEN_VENDOR_DRIVER_VERSION => answer(buf, &u32v(0x0001_0000)),
        OID_GEN_MAC_OPTIONS => answer(
            buf,
            &u32v(
                NDIS_MAC_OPTION_COPY_LOOKAHEAD_DATA
                    | NDIS_MAC_OPTION_TRANSFERS_NOT_PEND
                    | NDIS_MAC_OPTION_NO_LOOPBACK,
            ),
        ),
        OID_GEN_CURRENT_PACKET_FILTER => answer(
            buf,
            &u32v(NDIS_PACKET_TYPE_DIRECTED | NDIS_PACKET_TYPE_BROADCAST),
        ),
        OID_GEN_XMIT_OK => answer(buf, &counters.out_frames.to_le_bytes()),
        OID_GEN_RCV_OK => answer(buf, &counters.in_frames.to_le_bytes()),
        OID_802_3_PERMANENT_ADDRESS | OID_802_3_CURRENT_ADDRESS => answer(buf, &mac),
        OID_802_3_MAXIMUM_LIST_SIZE => answer(buf, &u32v(32)),
        OID_NDK_STATISTICS => {
            let active = adapter_snapshot().map_or(0, |s| s.connections.len() as u64);
            encoded(oids::write_statistics(&counters.counter_set(active), buf))
        }
        OID_NDK_CONNECTIONS => {
            let snap = adapter_snapshot().unwrap_or_default();
            encoded(oids::write_connections(&snap.connections, buf))
        }
        OID_NDK_LOCAL_ENDPOINTS => {
            let snap = adapter_snapshot().unwrap_or_default();
            encoded(oids::write_local_endpoints(&snap.endpoints, buf))
        }
        _ => (NDIS_STATUS_NOT_SUPPORTED, 0, 0),
    }
}

fn set(oid: NDIS_OID, buf: &[u8]) -> (NDIS_STATUS, usize, usize) {
    match oid {
        OID_NDK_SET_STATE => match oids::read_set_state(buf) {
            Ok(enable) => SHELL.with(|s| {
                let (status, event) = s.ndk.set(enable);
                if let Some(e) = event {
                    // Never from inside MiniportOidRequest: a work item.
                    s.pnp = Some(e);
                    kick_maintenance(s);
                }
                (status, 1, 0)
            }),
            Err(e) => (NDIS_STATUS_INVALID_LENGTH, 0, e.needed),
        },
        OID_GEN_NETWORK_LAYER_ADDRESSES => {
            SHELL.with(|s| {
                s.refresh = true;
                kick_maintenance(s);
            });
            (NDIS_STATUS_SUCCESS, buf.len(), 0)
        }
        OID_GEN_CURRENT_PACKET_FILTER
        | OID_GEN_CURRENT_LOOKAHEAD
        | OID_802_3_MULTICAST_LIST
        | OID_GEN_INTERRUPT_MODERATION => (NDIS_STATUS_SUCCESS, buf.len(), 0),
        _ => (NDIS_STATUS_NOT_SUPPORTED, 0, 0),
    }
}

// --------------------------------------------------------------- filter

unsafe extern "system" fn filter_attach(
    handle: NDIS_HANDLE,
    _driver_ctx: NDIS_HANDLE,
    params: *mut NDIS_FILTER_ATTACH_PARAMETERS,
) -> NDIS_STATUS {
    if params.is_null() {
        return NDIS_STATUS_FAILURE;
    }
    // SAFETY: NDIS's attach parameters.
    let (medium, mac_len, mac) = unsafe {
        (
            (*params).MiniportMediaType,
            (*params).MacAddressLength,
            (*params).CurrentMacAddress,
        )
    };
    // Ethernet only, and one physical NIC: the first binding wins.
    if medium != NdisMedium802_3 || mac_len != 6 || SHELL.with(|s| !s.filter.is_null()) {
        return NDIS_STATUS_NOT_SUPPORTED;
    }
    // SAFETY: PASSIVE, the filter module's handle.
    let Some(pool) = (unsafe { Pool::new(handle) }) else {
        return NDIS_STATUS_RESOURCES;
    };
    let mut attrs = NDIS_FILTER_ATTRIBUTES {
        Header: NDIS_OBJECT_HEADER {
            Type: NDIS_OBJECT_TYPE_FILTER_ATTRIBUTES,
            Revision: NDIS_FILTER_ATTRIBUTES_REVISION_1,
            Size: core::mem::size_of::<NDIS_FILTER_ATTRIBUTES>() as u16,
        },
        Flags: 0,
    };
    // SAFETY: the module context is the static shell (one module).
    let status =
        unsafe { NdisFSetAttributes(handle, ptr::addr_of!(SHELL).cast_mut().cast(), &mut attrs) };
    if status != NDIS_STATUS_SUCCESS {
        let mut pool = pool;
        // SAFETY: nothing in flight.
        unsafe { pool.free() };
        return status;
    }
    SHELL.with(|s| {
        s.filter = handle;
        s.phys_mac = [mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]];
        s.wire = Some(pool);
        s.filter_running = false;
    });
    NDIS_STATUS_SUCCESS
}

unsafe extern "system" fn filter_detach(_ctx: NDIS_HANDLE) {
    let pool = SHELL.with(|s| {
        s.filter = null_mut();
        s.filter_running = false;
        s.neighbors.clear();
        s.wire.take()
    });
    if let Some(mut p) = pool {
        // SAFETY: paused before detach: no send in flight.
        unsafe { p.free() };
    }
}

unsafe extern "system" fn filter_restart(_ctx: NDIS_HANDLE, _params: PVOID) -> NDIS_STATUS {
    SHELL.with(|s| {
        s.filter_running = true;
        s.refresh = true;
        kick_maintenance(s);
    });
    NDIS_STATUS_SUCCESS
}

unsafe extern "system" fn filter_pause(_ctx: NDIS_HANDLE, _params: PVOID) -> NDIS_STATUS {
    SHELL.with(|s| {
        s.filter_running = false;
        if s.wire.as_ref().is_none_or(|p| p.slots.in_use() == 0) {
            NDIS_STATUS_SUCCESS
        } else {
            s.wire_pause_pending = true;
            NDIS_STATUS_PENDING
        }
    })
}

unsafe extern "system" fn filter_send_complete(
    _ctx: NDIS_HANDLE,
    nbls: *mut NET_BUFFER_LIST,
    _flags: ULONG,
) {
    // Only the filter's own NBLs: no send handler is registered, so the
    // physical stack's sends bypass this filter.
    let mut nbl = nbls;
    while !nbl.is_null() {
        // SAFETY: our slot NBLs.
        let (next, slot) = unsafe { ((*nbl).Next, slot_of(nbl, true)) };
        give_back_wire(slot);
        nbl = next;
    }
    wake_engine();
}

/// Receive on the physical NIC: RoCEv2 for us to the engine, the virtual
/// adapter's frames up the virtual miniport, the rest up the physical
/// stack.
unsafe extern "system" fn filter_receive(
    _ctx: NDIS_HANDLE,
    nbls: *mut NET_BUFFER_LIST,
    port: NDIS_PORT_NUMBER,
    _count: ULONG,
    flags: ULONG,
) {
    let (filter, ips, n_ips) = SHELL.with(|s| {
        let (ips, n) = s.ip_list();
        (s.filter, ips, n)
    });
    let ours = ips.get(..n_ips).unwrap_or(&[]);
    let (mut pass_head, mut pass_tail, mut passed) = (
        null_mut::<NET_BUFFER_LIST>(),
        null_mut::<NET_BUFFER_LIST>(),
        0u32,
    );
    let (mut done_head, mut done_tail) =
        (null_mut::<NET_BUFFER_LIST>(), null_mut::<NET_BUFFER_LIST>());
    let mut nbl = nbls;
    while !nbl.is_null() {
        // SAFETY: NDIS's chain; each receive NBL has one NET_BUFFER.
        let (next, consumed) = unsafe {
            let next = (*nbl).Next;
            (*nbl).Next = null_mut();
            (next, receive_one((*nbl).FirstNetBuffer, ours, flags))
        };
        let (head, tail) = if consumed {
            (&mut done_head, &mut done_tail)
        } else {
            (&mut pass_head, &mut pass_tail)
        };
        if tail.is_null() {
            *head = nbl;
        } else {
            // SAFETY: the previous NBL of this list.
            unsafe { (**tail).Next = nbl };
        }
        *tail = nbl;
        if !consumed {
            passed += 1;
        }
        nbl = next;
    }
    // SAFETY: hands the two lists on as NDIS requires.
    unsafe {
        if !pass_head.is_null() {
            NdisFIndicateReceiveNetBufferLists(filter, pass_head, port, passed, flags);
        }
        if !done_head.is_null() && flags & NDIS_RECEIVE_FLAGS_RESOURCES == 0 {
            let ret = if flags & NDIS_RECEIVE_FLAGS_DISPATCH_LEVEL != 0 {
                NDIS_RETURN_FLAGS_DISPATCH_LEVEL
            } else {
                0
            };
            NdisFReturnNetBufferLists(filter, done_head, ret);
        }
    }
}

/// One received frame; `true` if it was consumed.
///
/// # Safety
/// `nb` is null or a valid NET_BUFFER.
unsafe fn receive_one(nb: *mut NET_BUFFER, ours: &[IpAddr], flags: ULONG) -> bool {
    if nb.is_null() || ours.is_empty() {
        return false;
    }
    // SAFETY: per the contract.
    let len = unsafe { NET_BUFFER_DATA_LENGTH(nb) } as usize;
    if !(frame::ETH_HEADER..=SLOT_BYTES).contains(&len) {
        return false;
    }
    // The frame is copied into a wire slot (the engine and the steering
    // read it there).
    let Some((slot, buf)) = SHELL.with(|s| {
        let pool = s.wire.as_mut()?;
        let i = pool.slots.take()?;
        // SAFETY: slot `i` was just taken.
        Some((i, unsafe { pool.buf(i) }))
    }) else {
        return false;
    };
    let Some(f) = buf.get_mut(..len) else {
        give_back_wire(slot);
        return false;
    };
    // SAFETY: `nb` holds `len` bytes.
    if !unsafe { copy_out(nb, f) } {
        give_back_wire(slot);
        return false;
    }
    let consumed = match frame::steer(f, ours) {
        Steer::Roce { ip_start } => {
            if let Some(adapter) = SHELL.with(|s| {
                s.counters.received(len - ip_start);
                s.enter()
            }) {
                io::handle_ip(adapter, f.get(ip_start..).unwrap_or(&[]));
                leave();
            }
            true
        }
        Steer::Virtual => {
            up(f, flags);
            true
        }
        Steer::Both => {
            up(f, flags);
            false
        }
        Steer::Pass => false,
    };
    give_back_wire(slot);
    consumed
}

/// Indicates a copy of `f` up the virtual miniport.
fn up(f: &mut [u8], flags: ULONG) {
    let Some((slot, buf, nbl, miniport, phys, virt)) = SHELL.with(|s| {
        if !s.miniport_running {
            return None;
        }
        let pool = s.up.as_mut()?;
        let i = pool.slots.take()?;
        // SAFETY: slot `i` was just taken.
        Some((
            i,
            unsafe { pool.buf(i) },
            pool.nbl(i),
            s.miniport,
            s.phys_mac,
            s.virt_mac,
        ))
    }) else {
        return;
    };
    let Some(dst) = buf.get_mut(..f.len()) else {
        SHELL.with(|s| s.up.as_mut().map(|p| p.slots.put(slot)));
        return;
    };
    dst.copy_from_slice(f);
    frame::translate_in(dst, phys, virt);
    // SAFETY: our slot NBL from the miniport's pool; it comes back in
    // MiniportReturnNetBufferLists.
    unsafe {
        set_range(nbl, 0, f.len());
        (*nbl).SourceHandle = miniport;
        NdisMIndicateReceiveNetBufferLists(
            miniport,
            nbl,
            NDIS_DEFAULT_PORT_NUMBER,
            1,
            flags & NDIS_RECEIVE_FLAGS_DISPATCH_LEVEL,
        );
    }
}

// ------------------------------------------------------------ DriverEntry

const fn ustr(s: &'static [u16]) -> NDIS_STRING {
    let bytes = (s.len() * 2) as u16;
    UNICODE_STRING {
        Length: bytes,
        MaximumLength: bytes,
        Buffer: s.as_ptr(),
    }
}

macro_rules! wide {
    ($s:literal) => {{
        const S: &str = $s;
        const N: usize = S.len();
        // Evaluated at compile time: an out-of-range index fails the build.
        #[allow(clippy::indexing_slicing)]
        const W: [u16; N] = {
            let b = S.as_bytes();
            let mut w = [0u16; N];
            let mut i = 0;
            while i < N {
                w[i] = b[i] as u16;
                i += 1;
            }
            w
        };
        &W
    }};
}

/// Filter identity: must match inf/ndkrsflt.inx (`FilterName` =
/// FriendlyName, NetCfgInstanceId = UniqueName, service = ServiceName).
static FILTER_FRIENDLY: &[u16] = wide!("ndkrs RoCEv2 datagram filter");
static FILTER_UNIQUE: &[u16] = wide!("{5d1f0b4e-3c1a-4f43-9a57-6e646b727301}");
static FILTER_SERVICE: &[u16] = wide!("ndkrs");

/// The driver's registration: the virtual miniport (NDK provider) and the
/// lightweight filter (datagram path), both from this image.
///
/// # Safety
/// Called once from DriverEntry with the I/O manager's arguments.
pub unsafe fn driver_entry(driver: PVOID, registry: PVOID) -> NTSTATUS {
    let mc = NDIS_MINIPORT_DRIVER_CHARACTERISTICS {
        Header: NDIS_OBJECT_HEADER {
            Type: NDIS_OBJECT_TYPE_MINIPORT_DRIVER_CHARACTERISTICS,
            Revision: NDIS_MINIPORT_DRIVER_CHARACTERISTICS_REVISION_2,
            Size: NDIS_SIZEOF_MINIPORT_DRIVER_CHARACTERISTICS_REVISION_2,
        },
        MajorNdisVersion: NDIS_MAJOR,
        MinorNdisVersion: NDIS_MINOR,
        MajorDriverVersion: 1,
        MinorDriverVersion: 0,
        Flags: 0,
        SetOptionsHandler: Some(set_options),
        InitializeHandlerEx: Some(initialize),
        HaltHandlerEx: Some(halt),
        UnloadHandler: Some(unload),
        PauseHandler: Some(pause),
        RestartHandler: Some(restart),
        OidRequestHandler: Some(oid_request),
        SendNetBufferListsHandler: Some(send),
        ReturnNetBufferListsHandler: Some(return_nbls),
        CancelSendHandler: Some(cancel_send),
        CheckForHangHandlerEx: null_mut(),
        ResetHandlerEx: null_mut(),
        DevicePnPEventNotifyHandler: Some(pnp_notify),
        ShutdownHandlerEx: Some(shutdown),
        CancelOidRequestHandler: Some(cancel_oid),
        DirectOidRequestHandler: Some(oid_request),
        CancelDirectOidRequestHandler: Some(cancel_oid),
        SynchronousOidRequestHandler: null_mut(),
    };
    let mut miniport_driver = null_mut();
    // SAFETY: valid characteristics; NDIS calls set_options inside.
    let status = unsafe {
        NdisMRegisterMiniportDriver(driver, registry, null_mut(), &mc, &mut miniport_driver)
    };
    if status != NDIS_STATUS_SUCCESS {
        return status;
    }
    let fc = NDIS_FILTER_DRIVER_CHARACTERISTICS {
        Header: NDIS_OBJECT_HEADER {
            Type: NDIS_OBJECT_TYPE_FILTER_DRIVER_CHARACTERISTICS,
            Revision: NDIS_FILTER_CHARACTERISTICS_REVISION_2,
            Size: NDIS_SIZEOF_FILTER_DRIVER_CHARACTERISTICS_REVISION_2,
        },
        MajorNdisVersion: NDIS_MAJOR,
        MinorNdisVersion: NDIS_MINOR,
        MajorDriverVersion: 1,
        MinorDriverVersion: 0,
        Flags: 0,
        FriendlyName: ustr(FILTER_FRIENDLY),
        UniqueName: ustr(FILTER_UNIQUE),
        ServiceName: ustr(FILTER_SERVICE),
        SetOptionsHandler: None,
        SetFilterModuleOptionsHandler: null_mut(),
        AttachHandler: Some(filter_attach),
        DetachHandler: Some(filter_detach),
        RestartHandler: Some(filter_restart),
        PauseHandler: Some(filter_pause),
        SendNetBufferListsHandler: null_mut(),
        SendNetBufferListsCompleteHandler: Some(filter_send_complete),
        CancelSendNetBufferListsHandler: null_mut(),
        ReceiveNetBufferListsHandler: Some(filter_receive),
        ReturnNetBufferListsHandler: null_mut(),
        OidRequestHandler: null_mut(),
        OidRequestCompleteHandler: null_mut(),
        CancelOidRequestHandler: null_mut(),
        DevicePnPEventNotifyHandler: null_mut(),
        NetPnPEventHandler: null_mut(),
        StatusHandler: null_mut(),
        DirectOidRequestHandler: null_mut(),
        DirectOidRequestCompleteHandler: null_mut(),
        CancelDirectOidRequestHandler: null_mut(),
    };
    let mut filter_driver = null_mut();
    // SAFETY: valid characteristics.
    let status = unsafe { NdisFRegisterFilterDriver(driver, null_mut(), &fc, &mut filter_driver) };
    if status != NDIS_STATUS_SUCCESS {
        // SAFETY: registered above.
        unsafe { NdisMDeregisterMiniportDriver(miniport_driver) };
        return status;
    }
    SHELL.with(|s| {
        s.driver = miniport_driver;
        s.filter_driver = filter_driver;
    });
    NDIS_STATUS_SUCCESS
}
