//! The emulated Windows machine around the shell: what the I/O manager, PnP
//! and NDIS do to a driver, in the order they do it (DriverEntry, adapter
//! initialisation, filter attach, restart, OID requests, NDK opens, pause,
//! detach, halt, unload), each step checked against its contract.

use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ndis_sys::*;
use ndkpi::{NDIS_OPEN_NDK_ADAPTER_PARAMETERS, NDK_ADAPTER, NDK_VERSION_1_2};

use crate::irql::PASSIVE_LEVEL;
use crate::stack::{self, ADAPTER, FILTER_MODULE, ModState, call, raw, stack};

/// Bound of every wait for something the driver must do.
pub const BOUND: Duration = Duration::from_secs(10);

/// The machine's configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// NET_LUID of the shell's adapter and its IP address.
    pub luid: u64,
    pub ip: IpAddr,
    /// The physical NIC the filter binds: LUID, MAC, its own IP address.
    pub nic_luid: u64,
    pub nic_mac: [u8; 6],
    pub nic_ip: IpAddr,
    /// The NIC's IP MTU (1500: standard Ethernet).
    pub nic_mtu: u32,
    /// What ResolveIpNetEntry2 answers.
    pub neighbors: Vec<(IpAddr, [u8; 6])>,
}

static FILTER_MISSING: AtomicBool = AtomicBool::new(false);

/// Makes NdisFRegisterFilterDriver fail, as when the filter INF is not
/// installed.
pub fn set_filter_install_missing(missing: bool) {
    FILTER_MISSING.store(missing, Ordering::SeqCst);
}

pub fn filter_install_missing() -> bool {
    FILTER_MISSING.load(Ordering::SeqCst)
}

/// The NIC's MTU changes (the next restart of its stack shows it).
pub fn set_nic_mtu(mtu: u32) {
    stack().nic_mtu = mtu;
}

/// The driver object NDIS fills in (opaque to the shell).
static DRIVER_OBJECT: Mutex<[u64; 64]> = Mutex::new([0; 64]);

/// DriverEntry, at PASSIVE_LEVEL.
pub fn boot(cfg: &Config) -> NTSTATUS {
    {
        let mut s = stack();
        s.luid = cfg.luid;
        s.nic_luid = cfg.nic_luid;
        s.nic_mtu = cfg.nic_mtu;
        s.addresses = vec![(cfg.luid, cfg.ip), (cfg.nic_luid, cfg.nic_ip)];
        s.neighbors = cfg.neighbors.clone();
        s.nic_mac = cfg.nic_mac;
        s.arp_learned.clear();
        // The INF's defaults (inf/ndkrs.inx).
        s.keywords = vec![("*NetworkDirect".into(), 1)];
    }
    let driver = DRIVER_OBJECT.lock().map_or(std::ptr::null_mut(), |mut d| {
        d.as_mut_ptr().cast::<std::ffi::c_void>()
    });
    stack().driver_object = driver as usize;
    let mut registry = [0u16; 8];
    call("DriverEntry", PASSIVE_LEVEL, || {
        // SAFETY: a driver object and registry path that outlive the driver.
        unsafe { miniport::kernel::driver_entry(driver, registry.as_mut_ptr().cast()) }
    })
}

/// PnP starts the adapter: MiniportInitializeEx, then MiniportRestart.
pub fn initialize(luid: u64) -> NDIS_STATUS {
    let Some(c) = stack().miniport_chars else {
        crate::breach!("host: initialize without a registered miniport");
        return NDIS_STATUS_FAILURE;
    };
    // NDIS_MINIPORT_INIT_PARAMETERS, in a block as large as NDIS's.
    let mut block = [0u64; 32];
    let p = block.as_mut_ptr().cast::<NDIS_MINIPORT_INIT_PARAMETERS>();
    // SAFETY: the block is larger than the declared prefix.
    unsafe {
        (*p).Header = NDIS_OBJECT_HEADER {
            Type: 0x81,
            Revision: 2,
            Size: 0x78,
        };
        (*p).IfIndex = 7;
        (*p).NetLuid = luid;
    }
    let Some(init) = c.InitializeHandlerEx else {
        return NDIS_STATUS_FAILURE;
    };
    let st = call("MiniportInitializeEx", PASSIVE_LEVEL, || {
        // SAFETY: the driver's handler, NDIS's handle, valid parameters.
        unsafe { init(ADAPTER as NDIS_HANDLE, std::ptr::null_mut(), p) }
    });
    if st != NDIS_STATUS_SUCCESS {
        return st;
    }
    let mut s = stack();
    if !s.reg_attrs || !s.gen_attrs {
        crate::breach!(
            "MiniportInitializeEx succeeded without registration and general attributes"
        );
    }
    if s.ndk_attrs.is_none() {
        crate::breach!("MiniportInitializeEx of an NDK provider set no NDK attributes");
    }
    s.miniport.state = ModState::Paused;
    st
}

pub fn restart_miniport() -> NDIS_STATUS {
    restart(false)
}

pub fn restart_filter() -> NDIS_STATUS {
    restart(true)
}

fn restart(filter: bool) -> NDIS_STATUS {
    let (f, ctx, state) = {
        let s = stack();
        let m = if filter { &s.filter } else { &s.miniport };
        let f = if filter {
            s.filter_chars.and_then(|c| c.RestartHandler)
        } else {
            s.miniport_chars.and_then(|c| c.RestartHandler)
        };
        (f, m.context, m.state)
    };
    if state != ModState::Paused {
        crate::breach!("host: restart of a module in state {state:?}");
    }
    let mut params = [0u64; 16];
    let name = if filter {
        "FilterRestart"
    } else {
        "MiniportRestart"
    };
    let st = f.map_or(NDIS_STATUS_FAILURE, |f| {
        call(name, PASSIVE_LEVEL, || {
            // SAFETY: the driver's handler with its context.
            unsafe { f(ctx as NDIS_HANDLE, params.as_mut_ptr().cast()) }
        })
    });
    if st == NDIS_STATUS_SUCCESS {
        let mut s = stack();
        let m = if filter {
            &mut s.filter
        } else {
            &mut s.miniport
        };
        m.state = ModState::Running;
    } else if st == NDIS_STATUS_PENDING {
        crate::breach!(
            "{name} pended, but the shell imports no NdisMRestartComplete/NdisFRestartComplete"
        );
    }
    st
}

/// Pauses the adapter or the filter module and waits (bounded) for the
/// pause to complete.
pub fn pause(filter: bool) -> NDIS_STATUS {
    if filter {
        // NDIS pauses a stack from the top: the protocols above the filter
        // first, each pause complete only once its sends completed; so no
        // overlying send is outstanding when FilterPause is called ("Pausing
        // a Filter Module", "Pausing an Adapter").
        settle();
        if !stack::wait_until(BOUND, |s| s.seen.phys_completed == s.seen.phys_sent) {
            crate::breach!("TCP/IP's sends through the filter did not complete within {BOUND:?}");
        }
    }
    let (f, ctx) = {
        let mut s = stack();
        let f = if filter {
            s.filter_chars.and_then(|c| c.PauseHandler)
        } else {
            s.miniport_chars.and_then(|c| c.PauseHandler)
        };
        let m = if filter {
            &mut s.filter
        } else {
            &mut s.miniport
        };
        if m.state != ModState::Running {
            crate::breach!("host: pause of a module in state {:?}", m.state);
        }
        m.state = ModState::Pausing;
        m.pause_pending = true;
        (f, m.context)
    };
    let mut params = [0u64; 4];
    let name = if filter {
        "FilterPause"
    } else {
        "MiniportPause"
    };
    let st = f.map_or(NDIS_STATUS_FAILURE, |f| {
        call(name, PASSIVE_LEVEL, || {
            // SAFETY: the driver's handler with its context.
            unsafe { f(ctx as NDIS_HANDLE, params.as_mut_ptr().cast()) }
        })
    });
    match st {
        NDIS_STATUS_SUCCESS => stack::pause_done(filter, name),
        NDIS_STATUS_PENDING => {
            let done = stack::wait_until(BOUND, |s| {
                let m = if filter { &s.filter } else { &s.miniport };
                m.state == ModState::Paused
            });
            if !done {
                crate::breach!(
                    "{name} pended and did not complete within {BOUND:?} (outstanding: {})",
                    stack::pause_blockers(filter).join(", ")
                );
            }
        }
        other => crate::breach!("{name} returned {other:#x}: a pause cannot fail"),
    }
    st
}

/// Filter attach to the emulated NIC, at PASSIVE_LEVEL.
pub fn attach_filter(cfg: &Config) -> NDIS_STATUS {
    attach_filter_to(cfg.nic_luid, cfg.nic_mac, NdisMedium802_3)
}

/// Filter attach to a miniport with this NET_LUID, MAC and medium (NDIS
/// offers the filter every binding its INF allows, the ndkrs adapter and
/// non-Ethernet media included).
pub fn attach_filter_to(luid: u64, mac: [u8; 6], medium: u32) -> NDIS_STATUS {
    let Some(attach) = stack().filter_chars.and_then(|c| c.AttachHandler) else {
        crate::breach!("host: attach without a registered filter driver");
        return NDIS_STATUS_FAILURE;
    };
    let mut block = [0u64; 64];
    let p = block.as_mut_ptr().cast::<NDIS_FILTER_ATTACH_PARAMETERS>();
    // SAFETY: the block is larger than the declared prefix.
    unsafe {
        (*p).Header = NDIS_OBJECT_HEADER {
            // NDIS_OBJECT_TYPE_FILTER_ATTACH_PARAMETERS (ntddndis.h).
            Type: 0x99,
            Revision: 3,
            Size: 0xF0,
        };
        (*p).NetLuid = luid;
        (*p).BaseMiniportNetLuid = luid;
        (*p).MiniportMediaType = medium;
        (*p).MacAddressLength = 6;
        let dst = &mut (*p).CurrentMacAddress;
        dst[..6].copy_from_slice(&mac);
    }
    let st = call("FilterAttach", PASSIVE_LEVEL, || {
        // SAFETY: the driver's handler, NDIS's module handle, parameters.
        unsafe { attach(FILTER_MODULE as NDIS_HANDLE, std::ptr::null_mut(), p) }
    });
    if st == NDIS_STATUS_SUCCESS {
        stack().filter.state = ModState::Paused;
    }
    st
}

pub fn detach_filter() {
    let (f, ctx, state) = {
        let s = stack();
        (
            s.filter_chars.and_then(|c| c.DetachHandler),
            s.filter.context,
            s.filter.state,
        )
    };
    if state != ModState::Paused {
        crate::breach!("host: detach of a filter module in state {state:?}");
    }
    if let Some(f) = f {
        call("FilterDetach", PASSIVE_LEVEL, || {
            // SAFETY: the driver's handler with its context.
            unsafe { f(ctx as NDIS_HANDLE) }
        });
    }
    let held = crate::mem::outstanding(|o| o == crate::mem::Origin::Nic);
    if !held.is_empty() {
        crate::breach!(
            "FilterDetach returned with {} received NBL(s) of the NIC not returned",
            held.len()
        );
    }
    stack().filter.state = ModState::Absent;
}

pub fn halt() {
    let (f, ctx, state, open) = {
        let s = stack();
        (
            s.miniport_chars.and_then(|c| c.HaltHandlerEx),
            s.miniport.context,
            s.miniport.state,
            s.open_ndk.len(),
        )
    };
    if state != ModState::Paused || open != 0 {
        crate::breach!(
            "host: halt of an adapter in state {state:?} with {open} NDK adapter(s) open"
        );
    }
    if let Some(f) = f {
        call("MiniportHaltEx", PASSIVE_LEVEL, || {
            // SAFETY: the driver's handler; NdisHaltDeviceDisabled (1).
            unsafe { f(ctx as NDIS_HANDLE, 1) }
        });
    }
    stack().miniport.state = ModState::Absent;
}

/// The driver unloads; afterwards nothing it allocated may remain.
pub fn unload() -> Vec<String> {
    let f = stack().miniport_chars.and_then(|c| c.UnloadHandler);
    let driver = DRIVER_OBJECT.lock().map_or(std::ptr::null_mut(), |mut d| {
        d.as_mut_ptr().cast::<std::ffi::c_void>()
    });
    if let Some(f) = f {
        call("MiniportDriverUnload", PASSIVE_LEVEL, || {
            // SAFETY: the driver's handler with its driver object.
            unsafe { f(driver) }
        });
    }
    settle();
    let mut leaks = crate::mem::leaks();
    let s = stack();
    if s.miniport_registered {
        leaks.push("the miniport driver is still registered".into());
    }
    if s.filter_registered {
        leaks.push("the filter driver is still registered".into());
    }
    drop(s);
    let configs = stack().config_open.len();
    if configs != 0 {
        leaks.push(format!("{configs} configuration handle(s) not closed"));
    }
    let works = crate::ke::work_items();
    if works != 0 {
        leaks.push(format!("{works} NDIS work item(s) not freed"));
    }
    leaks
}

// ------------------------------------------------------------------ OIDs

/// One OID request through MiniportOidRequest (or the direct path), at
/// PASSIVE_LEVEL; (status, bytes written/read, bytes needed).
pub fn oid(direct: bool, kind: u32, oid: NDIS_OID, buf: &mut [u8]) -> (NDIS_STATUS, u32, u32) {
    let (f, ctx) = {
        let s = stack();
        let c = s.miniport_chars;
        let f = if direct {
            c.and_then(|c| c.DirectOidRequestHandler)
        } else {
            c.and_then(|c| c.OidRequestHandler)
        };
        (f, s.miniport.context)
    };
    let Some(f) = f else {
        crate::breach!("no OID request handler (direct: {direct})");
        return (NDIS_STATUS_NOT_SUPPORTED, 0, 0);
    };
    let mut block = [0u64; 32];
    let r = block.as_mut_ptr().cast::<NDIS_OID_REQUEST>();
    // SAFETY: the block is larger than the declared prefix.
    unsafe {
        (*r).Header = NDIS_OBJECT_HEADER {
            Type: 0x96,
            Revision: 1,
            Size: 0xE8,
        };
        (*r).RequestType = kind;
        (*r).DATA.Oid = oid;
        (*r).DATA.InformationBuffer = if buf.is_empty() {
            std::ptr::null_mut()
        } else {
            buf.as_mut_ptr().cast()
        };
        (*r).DATA.InformationBufferLength = buf.len() as u32;
    }
    let name = if direct {
        "MiniportDirectOidRequest"
    } else {
        "MiniportOidRequest"
    };
    let st = call(name, PASSIVE_LEVEL, || {
        // SAFETY: the driver's handler, its context, a valid request.
        unsafe { f(ctx as NDIS_HANDLE, r) }
    });
    // SAFETY: as above.
    let (written, needed) = unsafe { ((*r).DATA.BytesWritten, (*r).DATA.BytesNeeded) };
    if st == NDIS_STATUS_PENDING {
        crate::breach!(
            "{name}({oid:#x}) pended, but the shell imports no NdisMOidRequestComplete: \
             it can never complete"
        );
    }
    if written as usize > buf.len() {
        crate::breach!(
            "{name}({oid:#x}): BytesWritten {written} > buffer {}",
            buf.len()
        );
    }
    if (st == NDIS_STATUS_BUFFER_TOO_SHORT || st == NDIS_STATUS_INVALID_LENGTH)
        && needed as usize <= buf.len()
    {
        crate::breach!(
            "{name}({oid:#x}) returned {st:#x} with BytesNeeded {needed} <= buffer {}",
            buf.len()
        );
    }
    (st, written, needed)
}

/// A query, retried once with the size the miniport asks for.
pub fn query(oid: NDIS_OID) -> (NDIS_STATUS, Vec<u8>) {
    query_with(false, oid)
}

pub fn query_with(direct: bool, oid: NDIS_OID) -> (NDIS_STATUS, Vec<u8>) {
    let mut buf = vec![0u8; 4];
    let (mut st, mut n, needed) = self::oid(direct, NdisRequestQueryInformation, oid, &mut buf);
    if st == NDIS_STATUS_BUFFER_TOO_SHORT || st == NDIS_STATUS_INVALID_LENGTH {
        buf = vec![0u8; needed as usize];
        (st, n, _) = self::oid(direct, NdisRequestQueryInformation, oid, &mut buf);
    }
    buf.truncate(n as usize);
    (st, buf)
}

/// OID_NDK_SET_STATE, then waits (bounded) for the NDK PnP event that must
/// follow a change; returns the OID status and the events seen.
pub fn set_ndk_state(enable: bool) -> (NDIS_STATUS, Vec<u32>) {
    let before = stack().seen.pnp.len();
    let mut b = [u8::from(enable)];
    let (st, _, _) = oid(
        false,
        NdisRequestSetInformation,
        ndkpi::OID_NDK_SET_STATE,
        &mut b,
    );
    let want = if enable {
        crate::NET_EVENT_NDK_ENABLE
    } else {
        crate::NET_EVENT_NDK_DISABLE
    };
    if !stack::wait_until(BOUND, |s| s.seen.pnp.len() > before) {
        crate::breach!(
            "OID_NDK_SET_STATE({enable}) succeeded but no NDK PnP event followed within {BOUND:?}"
        );
    }
    let events = stack().seen.pnp[before..].to_vec();
    if events.first().is_some_and(|&e| e != want) {
        crate::breach!("OID_NDK_SET_STATE({enable}) was followed by event {events:?}, want {want}");
    }
    (st, events)
}

// ------------------------------------------------------------------- NDK

/// What a consumer does to let go of an adapter NDIS is about to close.
type Release = Box<dyn FnOnce() + Send>;
static RELEASE: Mutex<Vec<(usize, Release)>> = Mutex::new(Vec::new());

/// OpenNDKAdapterHandler, at PASSIVE_LEVEL, as NDIS does for a consumer.
pub fn open_ndk() -> Result<*mut NDK_ADAPTER, NDIS_STATUS> {
    open_ndk_as(true)
}

/// OpenNDKAdapterHandler called even while NDIS believes NDK disabled (a
/// race NDIS's own check cannot close: the provider must refuse by itself).
pub fn open_ndk_unchecked() -> Result<*mut NDK_ADAPTER, NDIS_STATUS> {
    open_ndk_as(false)
}

fn open_ndk_as(check_enabled: bool) -> Result<*mut NDK_ADAPTER, NDIS_STATUS> {
    let (open, ctx, enabled) = {
        let s = stack();
        (
            s.ndk.and_then(|(o, _)| o),
            s.miniport.context,
            s.ndk_enabled,
        )
    };
    let Some(open) = open else {
        crate::breach!("host: no OpenNDKAdapterHandler registered");
        return Err(NDIS_STATUS_NOT_SUPPORTED);
    };
    if check_enabled && !enabled {
        // NDIS opens only an enabled provider.
        return Err(NDIS_STATUS_ADAPTER_NOT_READY);
    }
    let mut p = NDIS_OPEN_NDK_ADAPTER_PARAMETERS {
        Version: NDK_VERSION_1_2,
        SwitchId: 0,
        VPortId: 0,
    };
    let mut out = std::ptr::null_mut();
    let st = call("OpenNDKAdapterHandler", PASSIVE_LEVEL, || {
        // SAFETY: the provider's handler, its context, valid parameters.
        unsafe { open(ctx as NDIS_HANDLE, &mut p, &mut out) }
    });
    if st != NDIS_STATUS_SUCCESS {
        return Err(st);
    }
    if out.is_null() {
        crate::breach!("OpenNDKAdapterHandler succeeded without an adapter");
        return Err(NDIS_STATUS_FAILURE);
    }
    stack().open_ndk.push(out as usize);
    Ok(out)
}

/// Registers what the consumer of `a` does before NDIS closes it on an NDK
/// disable.
pub fn on_disable(a: *mut NDK_ADAPTER, f: impl FnOnce() + Send + 'static) {
    if let Ok(mut r) = RELEASE.lock() {
        r.push((a as usize, Box::new(f)));
    }
}

/// CloseNDKAdapterHandler, at PASSIVE_LEVEL.
pub fn close_ndk(a: *mut NDK_ADAPTER) {
    let (close, ctx, known) = {
        let mut s = stack();
        let known = s.open_ndk.iter().position(|&x| x == a as usize);
        if let Some(i) = known {
            s.open_ndk.remove(i);
        }
        (
            s.ndk.and_then(|(_, c)| c),
            s.miniport.context,
            known.is_some(),
        )
    };
    if !known {
        crate::breach!("host: closing NDK adapter {a:p}, which is not open (test bug)");
        return;
    }
    if let Ok(mut r) = RELEASE.lock() {
        r.retain(|(x, _)| *x != a as usize);
    }
    if let Some(close) = close {
        call("CloseNDKAdapterHandler", PASSIVE_LEVEL, || {
            // SAFETY: the provider's handler and an adapter it opened.
            unsafe { close(ctx as NDIS_HANDLE, a) }
        });
    }
}

/// Every consumer lets go and NDIS closes every open NDK adapter.
pub fn close_all_ndk(_why: &str) {
    let releases: Vec<(usize, Release)> = RELEASE
        .lock()
        .map(|mut r| std::mem::take(&mut *r))
        .unwrap_or_default();
    for (_, f) in releases {
        f();
    }
    for a in stack::open_ndk() {
        close_ndk(a);
    }
}

// ------------------------------------------------------------ checking

/// Waits until the host's threads and the kernel's queues are idle.
pub fn settle() {
    for _ in 0..3 {
        let a = crate::ke::settle(BOUND);
        let b = stack::settle(BOUND);
        if !a || !b {
            crate::breach!("the DPC, work item or NIC queues did not drain within {BOUND:?}");
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The NIC indicates a status (NdisMIndicateStatusEx below the filter):
/// NDIS calls FilterStatus at DISPATCH_LEVEL with an NDIS_STATUS_INDICATION
/// whose StatusBuffer is `buffer`; the filter must pass it up.
pub fn indicate_status(code: NDIS_STATUS, buffer: &mut [u8]) {
    let (f, ctx) = {
        let s = stack();
        (
            s.filter_chars.and_then(|c| c.StatusHandler),
            s.filter.context,
        )
    };
    let Some(f) = f else {
        crate::breach!("host: status indication with no FilterStatus registered");
        return;
    };
    let mut ind = NDIS_STATUS_INDICATION {
        Header: NDIS_OBJECT_HEADER {
            Type: NDIS_OBJECT_TYPE_STATUS_INDICATION,
            Revision: NDIS_STATUS_INDICATION_REVISION_1,
            Size: std::mem::size_of::<NDIS_STATUS_INDICATION>() as u16,
        },
        SourceHandle: crate::stack::NIC as NDIS_HANDLE,
        PortNumber: 0,
        StatusCode: code,
        Flags: 0,
        DestinationHandle: std::ptr::null_mut(),
        RequestId: std::ptr::null_mut(),
        StatusBuffer: buffer.as_mut_ptr().cast(),
        StatusBufferSize: buffer.len() as u32,
        Guid: GUID::default(),
        NdisReserved: [std::ptr::null_mut(); 4],
    };
    call("FilterStatus", crate::irql::DISPATCH_LEVEL, || {
        // SAFETY: the driver's handler with its module context and an
        // indication valid during the call.
        unsafe { f(ctx as NDIS_HANDLE, &mut ind) }
    });
}

/// NBLs not back with their owner: each is a send never completed or an
/// indication never returned.
pub fn outstanding() -> Vec<String> {
    crate::mem::outstanding(|_| true)
        .into_iter()
        .map(|(a, r)| format!("NBL {a:#x} of {:?} is still {:?}", r.origin, r.at))
        .collect()
}

/// The filter characteristics' raw send handler (0 when the filter
/// bypasses sends).
pub fn filter_has_send_handler() -> bool {
    stack()
        .filter_chars
        .as_ref()
        .is_some_and(|c| raw(&c.SendNetBufferListsHandler) != 0)
}
