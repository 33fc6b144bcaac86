//! The emulated NDIS: the driver registrations, the one miniport adapter
//! (the shell's virtual NIC) and the one filter module (the shell's filter
//! on the emulated physical NIC), their states, and the host-side drivers
//! around them: the physical NIC under the filter, the protocol bound to
//! the NIC (TCP/IP) above it, the protocol bound to the shell's adapter,
//! and the NDK consumers.
//!
//! The host-side drivers run their receive indications, send completions
//! and returns on one host thread at DISPATCH_LEVEL (the "NIC DPC"), as a
//! real NIC's DPC would.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use ndis_sys::*;
use ndkpi::{CLOSE_NDK_ADAPTER_HANDLER, NDK_ADAPTER, OPEN_NDK_ADAPTER_HANDLER};

use crate::irql::{self, DISPATCH_LEVEL};
use crate::layout::{CANARY_OWNER, Mdl, Nbl};
use crate::mem::{self, At, Origin};

/// Handles the emulated NDIS gives out (never dereferenced by a driver).
pub const MINIPORT_DRIVER: usize = 0xD000_1000;
pub const FILTER_DRIVER: usize = 0xD000_2000;
pub const ADAPTER: usize = 0xA000_1000;
pub const FILTER_MODULE: usize = 0xF000_1000;
pub const NIC: usize = 0xB000_1000;
pub const PHYS_PROTOCOL: usize = 0xB000_2000;
pub const VIRT_PROTOCOL: usize = 0xB000_3000;

/// State of the adapter or the filter module (NDIS's state machines,
/// "Miniport Adapter States and Operations", "Filter Module States").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ModState {
    #[default]
    Absent,
    Paused,
    Running,
    Pausing,
}

#[derive(Debug, Default)]
pub struct Module {
    pub state: ModState,
    pub pause_pending: bool,
    pub context: usize,
}

/// Frames and counts the host-side drivers saw.
#[derive(Debug, Default, Clone)]
pub struct Seen {
    /// Frames the NIC put on the wire.
    pub wire_tx: Vec<Vec<u8>>,
    /// Frames the protocol on the NIC received.
    pub phys_rx: Vec<Vec<u8>>,
    /// Frames the protocol on the shell's adapter received.
    pub virt_rx: Vec<Vec<u8>>,
    /// Sends of the protocol on the NIC completed to it.
    pub phys_completed: usize,
    pub phys_sent: usize,
    /// Sends of the protocol on the shell's adapter completed to it.
    pub virt_completed: usize,
    pub virt_sent: usize,
    /// Receive indications of the NIC that came back to it.
    pub nic_indicated: usize,
    pub nic_returned: usize,
    /// NET_PNP_EVENT codes from NdisMNetPnPEvent, in order.
    pub pnp: Vec<u32>,
    /// System event log entries (NdisWriteEventLogEntry), in order.
    pub event_log: Vec<EventLogEntry>,
    /// ARP requests and replies the TCP/IP stacks sent (crate::arp).
    pub arp_requests: usize,
    pub arp_replies: usize,
}

/// One NdisWriteEventLogEntry call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventLogEntry {
    pub code: i32,
    pub unique: u32,
    pub strings: Vec<String>,
    pub data: Vec<u8>,
}

pub type WireSink = Box<dyn Fn(&[u8]) + Send>;

#[derive(Default)]
pub struct Stack {
    pub miniport_chars: Option<NDIS_MINIPORT_DRIVER_CHARACTERISTICS>,
    pub filter_chars: Option<NDIS_FILTER_DRIVER_CHARACTERISTICS>,
    pub ndk: Option<(OPEN_NDK_ADAPTER_HANDLER, CLOSE_NDK_ADAPTER_HANDLER)>,
    pub miniport_registered: bool,
    pub filter_registered: bool,
    pub reg_attrs: bool,
    pub gen_attrs: bool,
    pub ndk_attrs: Option<bool>,
    pub supported_oids: Vec<u32>,
    pub miniport: Module,
    pub filter: Module,
    pub ndk_enabled: bool,
    pub open_ndk: Vec<usize>,
    pub seen: Seen,
    pub wire: Option<WireSink>,
    /// The virtual adapter's NET_LUID and addresses; the neighbors
    /// ResolveIpNetEntry2 knows.
    pub luid: u64,
    /// The emulated NIC's NET_LUID and IP MTU (what GetIfEntry2 answers).
    pub nic_luid: u64,
    pub nic_mtu: u32,
    pub addresses: Vec<(u64, std::net::IpAddr)>,
    pub neighbors: Vec<(std::net::IpAddr, [u8; 6])>,
    /// The adapter's registry keywords (integers) NdisReadConfiguration
    /// answers; configuration handles open, with the parameters handed out.
    pub keywords: Vec<(String, u32)>,
    pub config_open: Vec<(usize, Vec<usize>)>,
    /// Status indications the filter passed up (NdisFIndicateStatus).
    pub filter_status: usize,
    /// Their StatusCode members, in order.
    pub filter_status_codes: Vec<i32>,
    /// The driver object DriverEntry received (the event log's handle).
    pub driver_object: usize,
    /// The shell's adapter's MAC (its general attributes' CurrentMacAddress).
    pub virt_mac: Option<[u8; 6]>,
    /// The NIC's MAC (its stack's ARP answers).
    pub nic_mac: [u8; 6],
    /// Neighbors the TCP/IP stacks learned by ARP (crate::arp).
    pub arp_learned: Vec<(std::net::IpAddr, [u8; 6])>,
    jobs: VecDeque<Job>,
    job_running: bool,
    hold_returns: bool,
    held: Vec<Job>,
}

// SAFETY: the raw pointers inside are handler addresses and plain numbers.
unsafe impl Send for Stack {}

impl std::fmt::Debug for Stack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stack")
            .field("miniport", &self.miniport)
            .field("filter", &self.filter)
            .finish_non_exhaustive()
    }
}

/// Work for the NIC DPC thread.
#[derive(Debug)]
enum Job {
    /// The NIC completes these sends (addresses of NBLs).
    CompleteSends(Vec<usize>),
    /// Frames arrive from the wire.
    Receive {
        frames: Vec<Vec<u8>>,
        resources: bool,
    },
    /// The protocol on the NIC returns NBLs indicated to it.
    ReturnPhys(Vec<usize>),
    /// The protocol on the shell's adapter returns NBLs indicated to it.
    ReturnVirt(Vec<usize>),
    /// The protocol on the shell's adapter sends (ARP), if it still runs.
    VirtSend(Vec<Vec<u8>>),
    /// The protocol on the NIC sends (ARP).
    PhysSend(Vec<Vec<u8>>),
}

struct Shared {
    stack: Mutex<Stack>,
    cv: Condvar,
}

fn shared() -> &'static Shared {
    static S: OnceLock<Shared> = OnceLock::new();
    S.get_or_init(|| {
        std::thread::Builder::new()
            .name("nic-dpc".into())
            .spawn(nic_thread)
            .unwrap_or_else(|e| crate::contract::fatal(format!("spawning the NIC thread: {e}")));
        Shared {
            stack: Mutex::new(Stack::default()),
            cv: Condvar::new(),
        }
    })
}

/// The stack, locked (never held across a call into the driver).
pub fn stack() -> MutexGuard<'static, Stack> {
    shared().stack.lock().unwrap_or_else(|p| p.into_inner())
}

pub fn notify() {
    shared().cv.notify_all();
}

/// Waits (bounded) until `cond` holds on the stack.
pub fn wait_until(t: Duration, mut cond: impl FnMut(&Stack) -> bool) -> bool {
    let t0 = Instant::now();
    let mut g = stack();
    while !cond(&g) {
        if t0.elapsed() > t {
            return false;
        }
        g = shared()
            .cv
            .wait_timeout(g, Duration::from_millis(5))
            .unwrap_or_else(|p| p.into_inner())
            .0;
    }
    true
}

fn push(job: Job) {
    let mut s = stack();
    if s.hold_returns && !matches!(job, Job::Receive { .. }) {
        s.held.push(job);
    } else {
        s.jobs.push_back(job);
    }
    drop(s);
    notify();
}

/// While on, the NIC keeps the filter's sends and both protocols keep the
/// NBLs indicated to them (a slow protocol, a busy NIC); off hands back
/// everything held, in order.
pub fn hold_returns(on: bool) {
    let mut s = stack();
    s.hold_returns = on;
    if !on {
        let held = std::mem::take(&mut s.held);
        s.jobs.extend(held);
    }
    drop(s);
    notify();
}

impl Stack {
    /// Sends and indications held by [`hold_returns`].
    pub fn held(&self) -> usize {
        self.held.iter().map(Job::len).sum()
    }
}

impl Job {
    fn len(&self) -> usize {
        match self {
            Job::CompleteSends(v) | Job::ReturnPhys(v) | Job::ReturnVirt(v) => v.len(),
            Job::Receive { frames, .. } | Job::VirtSend(frames) | Job::PhysSend(frames) => {
                frames.len()
            }
        }
    }
}

// ------------------------------------------------------ call context

thread_local! {
    /// The driver callbacks running on this thread, innermost last.
    static INSIDE: RefCell<Vec<&'static str>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f`, a call into the driver's `name` handler, at `level`.
pub fn call<R>(name: &'static str, level: u8, f: impl FnOnce() -> R) -> R {
    INSIDE.with(|i| i.borrow_mut().push(name));
    let r = irql::call_at(level, name, f);
    INSIDE.with(|i| i.borrow_mut().pop());
    r
}

/// Whether `name` is running on this thread.
pub fn inside(name: &str) -> bool {
    INSIDE.with(|i| i.borrow().contains(&name))
}

/// A handler pointer of a characteristics structure, whatever its Rust
/// type (`Option<fn>` or a raw pointer): 0 when absent.
pub fn raw<T: Copy>(f: &T) -> usize {
    const { assert!(size_of::<T>() == size_of::<usize>()) };
    // SAFETY: both representations are one pointer-sized word.
    unsafe { std::mem::transmute_copy(f) }
}

type ReceiveFn = unsafe extern "system" fn(NDIS_HANDLE, *mut Nbl, u32, u32, u32);
type CompleteFn = unsafe extern "system" fn(NDIS_HANDLE, *mut Nbl, u32);
type SendFn = unsafe extern "system" fn(NDIS_HANDLE, *mut Nbl, u32, u32);

/// # Safety
/// `addr` is the address of a function of type `F`, or 0.
unsafe fn as_fn<F: Copy>(addr: usize) -> Option<F> {
    const { assert!(size_of::<F>() == size_of::<usize>()) };
    // SAFETY: per the contract.
    (addr != 0).then(|| unsafe { std::mem::transmute_copy(&addr) })
}

// ----------------------------------------------------------- host NBLs

/// An NBL of a host-side driver over a copy of `frame`, with the reserved
/// areas its owner keeps filled with canaries.
fn host_nbl(origin: Origin, frame: &[u8], source: usize) -> *mut Nbl {
    let buf: &'static mut [u8] = Box::leak(frame.to_vec().into_boxed_slice());
    let mdl = Box::into_raw(Box::new(Mdl::over(buf.as_mut_ptr(), buf.len())));
    let nbl = mem::nbl_new(origin, mdl, 0, frame.len());
    // SAFETY: the fresh NBL.
    unsafe {
        (*nbl).protocol_reserved = [CANARY_OWNER; 4];
        (*nbl).miniport_reserved = [CANARY_OWNER; 2];
        (*nbl).source_handle = source;
    }
    nbl
}

/// Checks a host NBL came back untouched where other drivers must not
/// write, and frees it with its buffer.
fn host_nbl_free(nbl: *mut Nbl, who: &str, source: usize) {
    // SAFETY: a live host NBL back with its owner.
    unsafe {
        if (*nbl).protocol_reserved != [CANARY_OWNER; 4]
            || (*nbl).miniport_reserved != [CANARY_OWNER; 2]
        {
            crate::breach!(
                "{who}: a driver wrote into the reserved areas of NBL {nbl:p} it did not originate"
            );
        }
        if (*nbl).source_handle != source {
            crate::breach!(
                "{who}: SourceHandle of NBL {nbl:p} changed by a driver that did not originate it"
            );
        }
        let nb = (*nbl).first_nb;
        let mdl = (*nb).mdl_chain;
        let (va, len) = ((*mdl).mapped_system_va, (*mdl).byte_count as usize);
        mem::nbl_free(nbl, who);
        drop(Box::from_raw(mdl));
        drop(Box::from_raw(std::ptr::slice_from_raw_parts_mut(va, len)));
    }
}

/// Links `nbls` into a chain in order; the head.
fn link(nbls: &[*mut Nbl]) -> *mut Nbl {
    for w in nbls.windows(2) {
        // SAFETY: live NBLs.
        unsafe { (*w[0]).next = w[1] };
    }
    if let Some(last) = nbls.last() {
        // SAFETY: as above.
        unsafe { (**last).next = std::ptr::null_mut() };
    }
    nbls.first().copied().unwrap_or(std::ptr::null_mut())
}

fn frame_of(nbl: *mut Nbl) -> Vec<u8> {
    // SAFETY: a live NBL with a NET_BUFFER over valid MDLs.
    unsafe {
        let nb = (*nbl).first_nb;
        if nb.is_null() {
            crate::breach!("NBL {nbl:p} has no NET_BUFFER");
            return Vec::new();
        }
        crate::layout::nb_bytes(nb).unwrap_or_else(|| {
            crate::breach!("NBL {nbl:p}: its NET_BUFFER's data runs past its MDL chain");
            Vec::new()
        })
    }
}

// ------------------------------------------------------ the host drivers

/// The protocol on the NIC sends `frames`, one NBL each, through the filter.
pub fn phys_send(frames: &[Vec<u8>]) {
    let nbls: Vec<*mut Nbl> = frames
        .iter()
        .map(|f| host_nbl(Origin::PhysProtocol, f, PHYS_PROTOCOL))
        .collect();
    let head = link(&nbls);
    let (send, ctx) = {
        let mut s = stack();
        s.seen.phys_sent += nbls.len();
        let send = s
            .filter_chars
            .as_ref()
            .map_or(0, |c| raw(&c.SendNetBufferListsHandler));
        (send, s.filter.context)
    };
    let running = stack().filter.state == ModState::Running;
    // SAFETY: the filter's registered handler, if any.
    match unsafe { as_fn::<SendFn>(send) } {
        Some(f) if running => {
            mem::move_chain(head, "host", &[At::Owner], At::WithFilterTx, |_| true);
            call("FilterSendNetBufferLists", DISPATCH_LEVEL, || {
                // SAFETY: the filter's handler with its module context.
                unsafe { f(ctx as NDIS_HANDLE, head, 0, NDIS_SEND_FLAGS_DISPATCH_LEVEL) }
            });
        }
        _ => {
            // No send handler (or not running): NDIS bypasses the filter.
            mem::move_chain(head, "host", &[At::Owner], At::BelowFilter, |_| true);
            nic_transmit(&nbls);
        }
    }
}

/// The NIC puts the frames on the wire and queues their completion.
fn nic_transmit(nbls: &[*mut Nbl]) {
    let frames: Vec<Vec<u8>> = nbls.iter().map(|&n| frame_of(n)).collect();
    {
        let s = stack();
        if let Some(w) = &s.wire {
            for f in &frames {
                w(f);
            }
        }
    }
    stack().seen.wire_tx.extend(frames);
    push(Job::CompleteSends(
        nbls.iter().map(|&n| n as usize).collect(),
    ));
}

/// Frames arrive at the NIC from the wire.
pub fn wire_receive(frames: Vec<Vec<u8>>, resources: bool) {
    push(Job::Receive { frames, resources });
}

/// The protocol on the shell's adapter sends `frames` at `level`.
pub fn virt_send(frames: &[Vec<u8>], level: u8) {
    let nbls: Vec<*mut Nbl> = frames
        .iter()
        .map(|f| host_nbl(Origin::VirtProtocol, f, VIRT_PROTOCOL))
        .collect();
    let head = link(&nbls);
    let (f, ctx) = {
        let mut s = stack();
        if s.miniport.state != ModState::Running {
            drop(s);
            crate::breach!("host: virt_send while the adapter is not running (test bug)");
            return;
        }
        s.seen.virt_sent += nbls.len();
        (
            s.miniport_chars.and_then(|c| c.SendNetBufferListsHandler),
            s.miniport.context,
        )
    };
    mem::move_chain(head, "host", &[At::Owner], At::WithMiniport, |_| true);
    let flags = if level == DISPATCH_LEVEL {
        NDIS_SEND_FLAGS_DISPATCH_LEVEL
    } else {
        0
    };
    if let Some(f) = f {
        call("MiniportSendNetBufferLists", level, || {
            // SAFETY: the miniport's handler with its adapter context.
            unsafe { f(ctx as NDIS_HANDLE, head.cast(), 0, flags) }
        });
    }
}

fn nic_thread() {
    loop {
        let job = {
            let mut s = shared().stack.lock().unwrap_or_else(|p| p.into_inner());
            loop {
                if let Some(j) = s.jobs.pop_front() {
                    s.job_running = true;
                    break j;
                }
                s = shared()
                    .cv
                    .wait_timeout(s, Duration::from_millis(50))
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
        };
        irql::call_at(DISPATCH_LEVEL, "the NIC DPC", || run(job));
        stack().job_running = false;
        notify();
    }
}

/// Waits until the NIC thread has nothing to do (bounded).
pub fn settle(t: Duration) -> bool {
    wait_until(t, |s| s.jobs.is_empty() && !s.job_running)
}

fn run(job: Job) {
    match job {
        Job::CompleteSends(nbls) => complete_sends(&nbls),
        Job::Receive { frames, resources } => receive(frames, resources),
        Job::ReturnPhys(nbls) => return_phys(&nbls),
        Job::ReturnVirt(nbls) => return_virt(&nbls),
        Job::VirtSend(frames) => {
            if stack().miniport.state == ModState::Running {
                virt_send(&frames, DISPATCH_LEVEL);
            }
        }
        Job::PhysSend(frames) => phys_send(&frames),
    }
}

fn complete_sends(nbls: &[usize]) {
    let nbls: Vec<*mut Nbl> = nbls.iter().map(|&n| n as *mut Nbl).collect();
    let (handler, ctx) = {
        let s = stack();
        (
            s.filter_chars
                .as_ref()
                .map_or(0, |c| raw(&c.SendNetBufferListsCompleteHandler)),
            s.filter.context,
        )
    };
    let mut up = Vec::new();
    for &n in &nbls {
        let Some(r) = mem::rec(n) else { continue };
        // SAFETY: a live NBL the NIC holds.
        unsafe { (*n).status = NDIS_STATUS_SUCCESS };
        match (r.origin, handler) {
            (Origin::Pool(_), _) => {
                mem::move_chain_one(n, At::SentDown, At::Owner);
                up.push(n);
            }
            (_, 0) => {
                // Bypassed: straight to the protocol.
                mem::move_chain_one(n, At::BelowFilter, At::Owner);
                stack().seen.phys_completed += 1;
                host_nbl_free(n, "send completion", PHYS_PROTOCOL);
            }
            _ => {
                mem::move_chain_one(n, At::BelowFilter, At::CompletingThroughFilter);
                up.push(n);
            }
        }
    }
    if up.is_empty() {
        return;
    }
    let head = link(&up);
    // SAFETY: the filter's registered completion handler.
    if let Some(f) = unsafe { as_fn::<CompleteFn>(handler) } {
        call("FilterSendNetBufferListsComplete", DISPATCH_LEVEL, || {
            // SAFETY: its module context and the completed chain.
            unsafe {
                f(
                    ctx as NDIS_HANDLE,
                    head,
                    NDIS_SEND_COMPLETE_FLAGS_DISPATCH_LEVEL,
                )
            }
        });
    } else {
        crate::breach!("the filter sent NBLs but registered no FilterSendNetBufferListsComplete");
    }
}

fn receive(frames: Vec<Vec<u8>>, resources: bool) {
    let (handler, ctx, running) = {
        let s = stack();
        (
            s.filter_chars
                .as_ref()
                .map_or(0, |c| raw(&c.ReceiveNetBufferListsHandler)),
            s.filter.context,
            s.filter.state == ModState::Running,
        )
    };
    let nbls: Vec<*mut Nbl> = frames
        .iter()
        .map(|f| host_nbl(Origin::Nic, f, NIC))
        .collect();
    let head = link(&nbls);
    stack().seen.nic_indicated += nbls.len();
    // SAFETY: the filter's registered receive handler.
    let Some(f) = (unsafe { as_fn::<ReceiveFn>(handler) }).filter(|_| running) else {
        // Bypassed (or the module is not running): straight up.
        // (One guard, dropped here: `&mut stack().seen` would keep its
        // temporary guard to the end of the block, and the next lock of the
        // stack on this thread would deadlock.)
        {
            let mut s = stack();
            s.seen.phys_rx.extend(frames.iter().cloned());
            s.seen.nic_returned += nbls.len();
        }
        tcpip_phys_rx(&frames);
        for n in nbls {
            host_nbl_free(n, "receive (bypassed)", NIC);
        }
        return;
    };
    mem::move_chain(
        head,
        "host",
        &[At::Owner],
        At::WithFilterRx { resources },
        |_| true,
    );
    let flags = NDIS_RECEIVE_FLAGS_DISPATCH_LEVEL
        | if resources {
            NDIS_RECEIVE_FLAGS_RESOURCES
        } else {
            0
        };
    call("FilterReceiveNetBufferLists", DISPATCH_LEVEL, || {
        // SAFETY: the filter's handler, its context, a valid chain.
        unsafe { f(ctx as NDIS_HANDLE, head, 0, nbls.len() as u32, flags) }
    });
    if resources {
        // The chain must be exactly as indicated (FilterReceiveNetBufferLists:
        // with NDIS_RECEIVE_FLAGS_RESOURCES the NBLs are the miniport's again
        // on return, their list restored).
        let mut n = head;
        for (i, &want) in nbls.iter().enumerate() {
            if n != want {
                crate::breach!(
                    "FilterReceiveNetBufferLists (RESOURCES): the NBL chain was not restored \
                     (position {i} is {n:p}, was {want:p})"
                );
                break;
            }
            // SAFETY: a live NBL of the chain.
            n = unsafe { (*n).next };
        }
        for &n in &nbls {
            match mem::rec(n).map(|r| r.at) {
                Some(At::WithFilterRx { resources: true }) => {
                    mem::move_chain_one(n, At::WithFilterRx { resources: true }, At::Owner);
                }
                other => crate::breach!(
                    "FilterReceiveNetBufferLists (RESOURCES): NBL {n:p} not left with the \
                     miniport on return ({other:?})"
                ),
            }
        }
        stack().seen.nic_returned += nbls.len();
        for n in nbls {
            host_nbl_free(n, "receive (RESOURCES)", NIC);
        }
    }
}

fn return_phys(nbls: &[usize]) {
    let (handler, ctx) = {
        let s = stack();
        (
            s.filter_chars
                .as_ref()
                .map_or(0, |c| raw(&c.ReturnNetBufferListsHandler)),
            s.filter.context,
        )
    };
    let nbls: Vec<*mut Nbl> = nbls.iter().map(|&n| n as *mut Nbl).collect();
    // SAFETY: the filter's registered return handler.
    if let Some(f) = unsafe { as_fn::<CompleteFn>(handler) } {
        for &n in &nbls {
            mem::move_chain_one(n, At::WithProtocol, At::WithFilterRx { resources: false });
        }
        let head = link(&nbls);
        call("FilterReturnNetBufferLists", DISPATCH_LEVEL, || {
            // SAFETY: its context and the returned chain.
            unsafe { f(ctx as NDIS_HANDLE, head, NDIS_RETURN_FLAGS_DISPATCH_LEVEL) }
        });
    } else {
        for &n in &nbls {
            mem::move_chain_one(n, At::WithProtocol, At::Owner);
        }
        stack().seen.nic_returned += nbls.len();
        for n in nbls {
            host_nbl_free(n, "return (bypassed)", NIC);
        }
    }
}

fn return_virt(nbls: &[usize]) {
    let nbls: Vec<*mut Nbl> = nbls.iter().map(|&n| n as *mut Nbl).collect();
    for &n in &nbls {
        mem::move_chain_one(n, At::IndicatedUp, At::Owner);
    }
    let head = link(&nbls);
    let (f, ctx) = {
        let s = stack();
        (
            s.miniport_chars.and_then(|c| c.ReturnNetBufferListsHandler),
            s.miniport.context,
        )
    };
    if let Some(f) = f {
        call("MiniportReturnNetBufferLists", DISPATCH_LEVEL, || {
            // SAFETY: the miniport's handler with its context.
            unsafe {
                f(
                    ctx as NDIS_HANDLE,
                    head.cast(),
                    NDIS_RETURN_FLAGS_DISPATCH_LEVEL,
                )
            }
        });
    }
}

// ------------------------------------------------ the stacks' ARP

/// The IPv4 address `luid` has.
fn v4_of(s: &Stack, luid: u64) -> Option<std::net::Ipv4Addr> {
    s.addresses.iter().find_map(|&(l, a)| match a {
        std::net::IpAddr::V4(v4) if l == luid => Some(v4),
        _ => None,
    })
}

/// ARP for one stack: learn the senders, queue the answers (sent from the
/// NIC DPC, not inside the indication that brought the request).
fn tcpip_rx(frames: &[Vec<u8>], virt: bool) {
    let mut s = stack();
    let me = if virt {
        s.virt_mac.zip(v4_of(&s, s.luid))
    } else {
        v4_of(&s, s.nic_luid).map(|ip| (s.nic_mac, ip))
    };
    let Some(me) = me else { return };
    let mut replies = Vec::new();
    for f in frames {
        let (learn, reply) = crate::arp::handle(f, me);
        if let Some((ip, mac)) = learn {
            let ip = std::net::IpAddr::V4(ip);
            s.arp_learned.retain(|(a, _)| *a != ip);
            s.arp_learned.push((ip, mac));
        }
        replies.extend(reply);
    }
    if replies.is_empty() {
        drop(s);
        notify();
        return;
    }
    s.seen.arp_replies += replies.len();
    s.jobs.push_back(if virt {
        Job::VirtSend(replies)
    } else {
        Job::PhysSend(replies)
    });
    drop(s);
    notify();
}

fn tcpip_phys_rx(frames: &[Vec<u8>]) {
    tcpip_rx(frames, false);
}

fn tcpip_virt_rx(frames: &[Vec<u8>]) {
    tcpip_rx(frames, true);
}

/// The neighbor `ip` as the adapter's stack knows it, asking on the wire
/// when it does not (an ARP request through the shell's adapter, three
/// tries a second apart, as ResolveIpNetEntry2 blocks until resolution
/// ends); `None` when nobody answered or the adapter cannot send.
pub fn arp_resolve(ip: std::net::IpAddr) -> Option<[u8; 6]> {
    let known = |s: &Stack| {
        s.neighbors
            .iter()
            .chain(&s.arp_learned)
            .find(|(a, _)| *a == ip)
            .map(|(_, m)| *m)
    };
    let request = {
        let s = stack();
        if let Some(m) = known(&s) {
            return Some(m);
        }
        let std::net::IpAddr::V4(target) = ip else {
            return None;
        };
        let (Some(mac), Some(me)) = (s.virt_mac, v4_of(&s, s.luid)) else {
            return None;
        };
        crate::arp::request(mac, me, target)
    };
    for _ in 0..3 {
        {
            let mut s = stack();
            if s.miniport.state != ModState::Running {
                return None;
            }
            s.seen.arp_requests += 1;
            s.jobs.push_back(Job::VirtSend(vec![request.clone()]));
        }
        notify();
        if wait_until(Duration::from_secs(1), |s| known(s).is_some()) {
            return known(&stack());
        }
    }
    None
}

// ------------------------------------------- NDIS entry points: data path

fn dispatch_flag(flags: u32, bit: u32, what: &str) {
    if flags & bit != 0 && irql::current() != DISPATCH_LEVEL {
        crate::breach!(
            "{what}: the DISPATCH_LEVEL flag is set but the caller runs at IRQL {} \
             (Dispatch IRQL Tracking)",
            irql::current()
        );
    }
}

fn chain_len(head: *mut Nbl) -> usize {
    let mut n = head;
    let mut len = 0;
    while !n.is_null() && len < 100_000 {
        len += 1;
        // SAFETY: a chain of live NBLs (checked by move_chain).
        n = unsafe { (*n).next };
    }
    len
}

pub fn f_send(handle: usize, head: *mut Nbl, flags: u32) {
    let what = "NdisFSendNetBufferLists";
    irql::require(DISPATCH_LEVEL, what);
    dispatch_flag(flags, NDIS_SEND_FLAGS_DISPATCH_LEVEL, what);
    let (state, has_complete) = {
        let s = stack();
        (
            s.filter.state,
            s.filter_chars
                .as_ref()
                .is_some_and(|c| raw(&c.SendNetBufferListsCompleteHandler) != 0),
        )
    };
    if handle != FILTER_MODULE {
        crate::breach!("{what}: {handle:#x} is not the filter module's handle");
    }
    if state != ModState::Running {
        crate::breach!("{what} while the filter module is {state:?} (Pausing a Filter Module)");
    }
    if !has_complete {
        crate::breach!("{what} by a filter without FilterSendNetBufferListsComplete");
    }
    let mut mine = Vec::new();
    let mut n = head;
    while !n.is_null() {
        // SAFETY: the driver's chain.
        let next = unsafe { (*n).next };
        match mem::rec(n) {
            Some(r) if matches!(r.origin, Origin::Pool(_)) => {
                // SAFETY: as above.
                if unsafe { (*n).source_handle } != FILTER_MODULE {
                    crate::breach!(
                        "{what}: NBL {n:p} the filter originated has SourceHandle {:#x}, \
                         not its NdisFilterHandle (Sending Data from a Filter Driver)",
                        // SAFETY: as above.
                        unsafe { (*n).source_handle }
                    );
                }
                mem::move_chain_one(n, At::Owner, At::SentDown);
            }
            Some(r) if r.origin == Origin::PhysProtocol => {
                mem::move_chain_one(n, At::WithFilterTx, At::BelowFilter);
            }
            other => crate::breach!("{what}: NBL {n:p} cannot be sent by the filter ({other:?})"),
        }
        mine.push(n);
        n = next;
    }
    nic_transmit(&mine);
}

pub fn f_send_complete(handle: usize, head: *mut Nbl, flags: u32) {
    let what = "NdisFSendNetBufferListsComplete";
    irql::require(DISPATCH_LEVEL, what);
    dispatch_flag(flags, NDIS_SEND_COMPLETE_FLAGS_DISPATCH_LEVEL, what);
    if handle != FILTER_MODULE {
        crate::breach!("{what}: {handle:#x} is not the filter module's handle");
    }
    let nbls = mem::move_chain(
        head,
        what,
        &[At::CompletingThroughFilter, At::WithFilterTx],
        At::Owner,
        |o| o == Origin::PhysProtocol,
    );
    let ok: Vec<_> = nbls
        .into_iter()
        .filter(|&n| mem::rec(n).is_some_and(|r| r.at == At::Owner))
        .collect();
    stack().seen.phys_completed += ok.len();
    for n in ok {
        host_nbl_free(n, what, PHYS_PROTOCOL);
    }
}

pub fn f_indicate(handle: usize, head: *mut Nbl, count: u32, flags: u32) {
    let what = "NdisFIndicateReceiveNetBufferLists";
    irql::require(DISPATCH_LEVEL, what);
    dispatch_flag(flags, NDIS_RECEIVE_FLAGS_DISPATCH_LEVEL, what);
    if handle != FILTER_MODULE {
        crate::breach!("{what}: {handle:#x} is not the filter module's handle");
    }
    let state = stack().filter.state;
    if state != ModState::Running {
        crate::breach!("{what} while the filter module is {state:?}");
    }
    if chain_len(head) != count as usize {
        crate::breach!(
            "{what}: NumberOfNetBufferLists {count} but the chain holds {}",
            chain_len(head)
        );
    }
    let resources = flags & NDIS_RECEIVE_FLAGS_RESOURCES != 0;
    if resources {
        // The protocol copies them during the call; they stay the filter's.
        let mut n = head;
        while !n.is_null() {
            match mem::rec(n) {
                Some(r) if matches!(r.at, At::WithFilterRx { .. }) && r.origin == Origin::Nic => {
                    let f = frame_of(n);
                    tcpip_phys_rx(std::slice::from_ref(&f));
                    stack().seen.phys_rx.push(f);
                }
                other => {
                    crate::breach!("{what}: NBL {n:p} is not the filter's to indicate ({other:?})")
                }
            }
            // SAFETY: a live NBL of the chain.
            n = unsafe { (*n).next };
        }
        return;
    }
    let nbls = mem::move_chain(
        head,
        what,
        &[At::WithFilterRx { resources: false }],
        At::WithProtocol,
        |o| o == Origin::Nic,
    );
    let frames: Vec<Vec<u8>> = nbls.iter().map(|&n| frame_of(n)).collect();
    tcpip_phys_rx(&frames);
    stack().seen.phys_rx.extend(frames);
    push(Job::ReturnPhys(nbls.iter().map(|&n| n as usize).collect()));
}

pub fn f_return(handle: usize, head: *mut Nbl, flags: u32) {
    let what = "NdisFReturnNetBufferLists";
    irql::require(DISPATCH_LEVEL, what);
    dispatch_flag(flags, NDIS_RETURN_FLAGS_DISPATCH_LEVEL, what);
    if handle != FILTER_MODULE {
        crate::breach!("{what}: {handle:#x} is not the filter module's handle");
    }
    let nbls = mem::move_chain(
        head,
        what,
        &[At::WithFilterRx { resources: false }],
        At::Owner,
        |o| o == Origin::Nic,
    );
    let ok: Vec<_> = nbls
        .into_iter()
        .filter(|&n| mem::rec(n).is_some_and(|r| r.at == At::Owner && r.origin == Origin::Nic))
        .collect();
    stack().seen.nic_returned += ok.len();
    for n in ok {
        host_nbl_free(n, what, NIC);
    }
}

pub fn m_indicate(handle: usize, head: *mut Nbl, count: u32, flags: u32) {
    let what = "NdisMIndicateReceiveNetBufferLists";
    irql::require(DISPATCH_LEVEL, what);
    dispatch_flag(flags, NDIS_RECEIVE_FLAGS_DISPATCH_LEVEL, what);
    if handle != ADAPTER {
        crate::breach!("{what}: {handle:#x} is not the adapter's handle");
    }
    let state = stack().miniport.state;
    if !matches!(state, ModState::Running | ModState::Pausing) {
        crate::breach!("{what} while the adapter is {state:?} (Pausing an Adapter)");
    }
    if chain_len(head) != count as usize {
        crate::breach!(
            "{what}: NumberOfNetBufferLists {count} but the chain holds {}",
            chain_len(head)
        );
    }
    let nbls = mem::move_chain(head, what, &[At::Owner], At::IndicatedUp, |o| {
        matches!(o, Origin::Pool(_))
    });
    let frames: Vec<Vec<u8>> = nbls.iter().map(|&n| frame_of(n)).collect();
    tcpip_virt_rx(&frames);
    stack().seen.virt_rx.extend(frames);
    if flags & NDIS_RECEIVE_FLAGS_RESOURCES != 0 {
        for &n in &nbls {
            mem::move_chain_one(n, At::IndicatedUp, At::Owner);
        }
    } else {
        push(Job::ReturnVirt(nbls.iter().map(|&n| n as usize).collect()));
    }
}

pub fn m_send_complete(handle: usize, head: *mut Nbl, flags: u32) {
    let what = "NdisMSendNetBufferListsComplete";
    irql::require(DISPATCH_LEVEL, what);
    dispatch_flag(flags, NDIS_SEND_COMPLETE_FLAGS_DISPATCH_LEVEL, what);
    if handle != ADAPTER {
        crate::breach!("{what}: {handle:#x} is not the adapter's handle");
    }
    let nbls = mem::move_chain(head, what, &[At::WithMiniport], At::Owner, |o| {
        o == Origin::VirtProtocol
    });
    let ok: Vec<_> = nbls
        .into_iter()
        .filter(|&n| mem::rec(n).is_some_and(|r| r.at == At::Owner))
        .collect();
    stack().seen.virt_completed += ok.len();
    for n in ok {
        host_nbl_free(n, what, VIRT_PROTOCOL);
    }
}

// ------------------------------------------------------------- pausing

/// NBLs that must be back before `which` may finish pausing.
pub fn pause_blockers(filter: bool) -> Vec<String> {
    let mut out = Vec::new();
    let pools: Vec<usize> = mem::with(|m| {
        m.pools
            .iter()
            .filter(|(_, p)| p.owner == if filter { FILTER_MODULE } else { ADAPTER })
            .map(|(h, _)| *h)
            .collect()
    });
    for (a, r) in mem::outstanding(|o| match o {
        Origin::Pool(p) => pools.contains(&p),
        Origin::VirtProtocol => !filter,
        _ => false,
    }) {
        out.push(format!("NBL {a:#x} ({:?}, {:?})", r.origin, r.at));
    }
    out
}

/// The adapter's or the filter module's pause completes now.
pub fn pause_done(filter: bool, how: &str) {
    let blockers = pause_blockers(filter);
    let who = if filter { "filter module" } else { "adapter" };
    if !blockers.is_empty() {
        crate::breach!(
            "{how}: the {who}'s pause completed with {} NBL(s) outstanding: {}",
            blockers.len(),
            blockers.join(", ")
        );
    }
    let mut s = stack();
    let m = if filter {
        &mut s.filter
    } else {
        &mut s.miniport
    };
    m.state = ModState::Paused;
    m.pause_pending = false;
    drop(s);
    notify();
}

pub fn pause_complete(filter: bool, handle: usize) {
    let what = if filter {
        "NdisFPauseComplete"
    } else {
        "NdisMPauseComplete"
    };
    irql::require(DISPATCH_LEVEL, what);
    let want = if filter { FILTER_MODULE } else { ADAPTER };
    if handle != want {
        crate::breach!("{what}: {handle:#x} is not the right handle");
    }
    let pending = {
        let s = stack();
        let m = if filter { &s.filter } else { &s.miniport };
        m.pause_pending && m.state == ModState::Pausing
    };
    if !pending {
        crate::breach!("{what} with no pause pending (completed twice, or never pended)");
        return;
    }
    pause_done(filter, what);
}

/// NDK adapters the host opened and not yet closed.
pub fn open_ndk() -> Vec<*mut NDK_ADAPTER> {
    stack()
        .open_ndk
        .iter()
        .map(|&a| a as *mut NDK_ADAPTER)
        .collect()
}
