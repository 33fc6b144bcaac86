//! ndkperf's RDMA modes: a consumer that drives the provider only through
//! the NDKPI dispatch tables, the way a kernel consumer (SMB Direct) does.
//!
//! Shape of the consumer:
//! * Control path (create, connect, disconnect, close) from the caller's
//!   thread, each wait bounded; request completions are closures boxed
//!   into the request context (control path only: nothing per message).
//! * Data path in the CQ notification callback, which runs on the
//!   adapter's I/O thread like a DPC: poll the CQ, post what follows,
//!   re-arm. No thread hop per message, no allocation per message.
//! * The server is passive and generic: the client's connect private data
//!   says which mode runs ([`Hello`]); the server accepts from inside the
//!   connect event, with its buffer's address, token and length in the
//!   accept private data in rping's `struct rping_rdma_info` layout
//!   (`__be64 buf; __be32 rkey; __be32 size`). A connect without a
//!   [`Hello`] is an rping client (Linux `rping -c`, or ndkperf's own rping
//!   mode): it is accepted with no private data and served rping's way.
//! * The rping mode is Linux rping's application protocol (librdmacm's
//!   examples/rping.c), so either side can be a Linux `rping`: no private
//!   data either way, one RDMA Read and one RDMA Write outstanding at most
//!   (connect and accept ask for 1 and 1), every Send exactly 16 bytes (an
//!   `rping_rdma_info`, big-endian). Per iteration the client fills its
//!   source buffer with rping's text ([`rping_pattern`], NUL-terminated at
//!   the buffer's end) and Sends its info; the server RDMA-Reads that many
//!   bytes and Sends a go-ahead (16 zero bytes); the client Sends its sink
//!   buffer's info; the server RDMA-Writes the text back (its C-string
//!   length plus the NUL) and Sends the go-ahead; the client compares the
//!   whole sink with the source (rping's `-V`). A Send of another length
//!   is a protocol error on both sides, as in rping. The server runs until
//!   the client disconnects.
//! * [`rping_pattern`] and [`RdmaInfo`] are the facts the interop harness
//!   (crates/interop) relies on; it runs these modes against Linux rping.
//! * [`run_perftest`] and [`serve_perftest`] run write_bw, read_bw, send_bw,
//!   send_lat, write_lat and read_lat against Linux perftest's `-R` mode,
//!   as its client and as its server, with perftest's `-q`, `-b` and `-a`:
//!   perftest's exchange ([`crate::perftest`]) over a control connection,
//!   then the test QPs' traffic, all polled from the caller's thread.

#![allow(non_upper_case_globals)] // ndkpi.h names (NdkOperationType*) in patterns

use std::any::Any;
use std::cell::UnsafeCell;
use std::net::SocketAddr;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use ndkpi::*;

use crate::adapter::{Adapter, HostMdl};

// ---------------------------------------------------------------------
// Modes and parameters

/// What a run measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// RDMA WRITE bandwidth.
    WriteBw,
    /// RDMA READ bandwidth.
    ReadBw,
    /// SEND bandwidth.
    SendBw,
    /// SEND ping-pong latency.
    SendLat,
    /// RDMA WRITE round trip (post to completion).
    WriteLat,
    /// RDMA READ round trip.
    ReadLat,
    /// rping's Send / Read / Send / Write / Send loop with verification.
    Rping,
    /// RDMA WRITE + READ mix throughput.
    Rperf,
    /// Connect N QPs, traffic, disconnect all.
    Disconnect,
}

impl Mode {
    /// All modes, in report order.
    pub const ALL: [Mode; 9] = [
        Mode::WriteBw,
        Mode::ReadBw,
        Mode::SendBw,
        Mode::SendLat,
        Mode::WriteLat,
        Mode::ReadLat,
        Mode::Rping,
        Mode::Rperf,
        Mode::Disconnect,
    ];

    /// The perftest-style name.
    pub fn name(self) -> &'static str {
        match self {
            Mode::WriteBw => "write_bw",
            Mode::ReadBw => "read_bw",
            Mode::SendBw => "send_bw",
            Mode::SendLat => "send_lat",
            Mode::WriteLat => "write_lat",
            Mode::ReadLat => "read_lat",
            Mode::Rping => "rping",
            Mode::Rperf => "rperf",
            Mode::Disconnect => "disconnect",
        }
    }

    /// Measures round trips rather than throughput.
    pub fn is_latency(self) -> bool {
        matches!(
            self,
            Mode::SendLat | Mode::WriteLat | Mode::ReadLat | Mode::Rping
        )
    }

    fn code(self) -> u8 {
        Mode::ALL.iter().position(|m| *m == self).unwrap_or(0) as u8
    }

    fn from_code(c: u8) -> Option<Mode> {
        Mode::ALL.get(c as usize).copied()
    }
}

/// A run's parameters.
#[derive(Debug, Clone)]
pub struct Params {
    /// The mode.
    pub mode: Mode,
    /// Message size in bytes.
    pub size: usize,
    /// Messages (latency: round trips); `None`: run for `duration`.
    pub iters: Option<u64>,
    /// How long to run when `iters` is `None`.
    pub duration: Duration,
    /// Outstanding requests (bandwidth modes).
    pub window: u32,
    /// Queue pairs (disconnect mode).
    pub qps: u32,
    /// Bound on every control-path wait (connect, disconnect, close).
    pub timeout: Duration,
}

/// Why a run failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PerfError(pub String);

impl std::fmt::Display for PerfError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PerfError {}

fn err<T>(s: impl Into<String>) -> Result<T, PerfError> {
    Err(PerfError(s.into()))
}

/// NTSTATUS names ndkperf reports.
pub fn status_name(s: NTSTATUS) -> String {
    match ndkpi::status_name(s) {
        Some(name) => name.into(),
        None => format!("NTSTATUS {:#010x}", s as u32),
    }
}

// ---------------------------------------------------------------------
// Allocation probe (the ndkperf binary installs a counting allocator)

static ALLOC_PROBE: OnceLock<fn() -> u64> = OnceLock::new();

/// Installs the allocation counter the runs sample in steady state.
pub fn set_alloc_probe(f: fn() -> u64) {
    let _ = ALLOC_PROBE.set(f);
}

fn allocs() -> Option<u64> {
    ALLOC_PROBE.get().map(|f| f())
}

// ---------------------------------------------------------------------
// Results

/// Sorted samples in nanoseconds, with perftest's columns.
#[derive(Debug, Clone, Default)]
pub struct Samples(pub Vec<u64>);

impl Samples {
    /// Nearest-rank percentile (`p` in 0..=1).
    pub fn pct(&self, p: f64) -> Duration {
        crate::baseline::percentile(&self.0, p)
    }
    /// The mean.
    pub fn mean(&self) -> Duration {
        if self.0.is_empty() {
            return Duration::ZERO;
        }
        Duration::from_nanos(self.0.iter().sum::<u64>() / self.0.len() as u64)
    }
    /// The standard deviation.
    pub fn stdev(&self) -> Duration {
        if self.0.len() < 2 {
            return Duration::ZERO;
        }
        let m = self.mean().as_nanos() as f64;
        let v =
            self.0.iter().map(|x| (*x as f64 - m).powi(2)).sum::<f64>() / (self.0.len() - 1) as f64;
        Duration::from_nanos(v.sqrt() as u64)
    }
}

/// The slowest connections of a disconnect run, by the consumer's own
/// timestamps (ns since the run began; 0 = did not happen).
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    /// Connection index.
    pub index: usize,
    /// NdkConnect called.
    pub connect: u64,
    /// Connect completed (REP arrived).
    pub replied: u64,
    /// NdkCompleteConnect returned (RTU sent).
    pub established: u64,
    /// Its Send and Write completed.
    pub traffic_done: u64,
    /// NdkDisconnect called.
    pub disconnect: u64,
    /// The disconnect completed (DREP arrived).
    pub disconnected: u64,
    /// QP and connector closes completed.
    pub closed: u64,
}

/// What the disconnect mode measured.
#[derive(Debug, Clone, Default)]
pub struct DisconnectReport {
    /// Connections attempted.
    pub qps: u32,
    /// Connected.
    pub connected: u32,
    /// Failed to connect (first status).
    pub failed: u32,
    /// The first failure.
    pub first_failure: Option<NTSTATUS>,
    /// Creating the QPs and connectors.
    pub create: Duration,
    /// First NdkConnect to the last established connection's traffic.
    pub connect_phase: Duration,
    /// First NdkDisconnect of the burst to the last close.
    pub teardown_phase: Duration,
    /// Connections torn down in the burst.
    pub torn_down: u32,
    /// Connect latency (NdkConnect to NdkCompleteConnect returned).
    pub connect_lat: Samples,
    /// Disconnect latency of connections disconnected one at a time.
    pub disconnect_lat_serial: Samples,
    /// Disconnect latency in the burst (includes queueing).
    pub disconnect_lat_burst: Samples,
    /// The slowest connections.
    pub slowest: Vec<Timeline>,
}

/// What a run measured.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Messages completed (rperf: writes + reads; rping: iterations).
    pub messages: u64,
    /// Payload bytes moved.
    pub bytes: u64,
    /// First post to last completion.
    pub elapsed: Duration,
    /// Round trips (latency modes).
    pub lat: Samples,
    /// rping: iterations whose data did not verify.
    pub verify_errors: u64,
    /// Allocations per message between the warm-up and the end (whole
    /// process, both sides), if a probe is installed.
    pub allocs_per_msg: Option<f64>,
    /// Messages the allocation figure covers.
    pub alloc_window_msgs: u64,
    /// Connect time of the run's connection.
    pub connect: Duration,
    /// NdkDisconnect to its completion.
    pub disconnect: Duration,
    /// The disconnect mode's report.
    pub disc: Option<DisconnectReport>,
    /// Provider objects left on the client adapter after teardown.
    pub leaked_objects: usize,
    /// Against a perftest server: what its exchange said.
    pub perftest: Option<PerftestPeer>,
}

impl Report {
    /// Payload bytes per second.
    pub fn bytes_per_sec(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 { self.bytes as f64 / s } else { 0.0 }
    }
    /// Messages per second.
    pub fn msg_rate(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 {
            self.messages as f64 / s
        } else {
            0.0
        }
    }
}

// ---------------------------------------------------------------------
// Control-path plumbing: boxed completions and bounded waits

type ReqFn = Box<dyn FnOnce(NTSTATUS) + Send>;

unsafe extern "system" fn on_request(ctx: PVOID, status: NTSTATUS) {
    // SAFETY: `ctx` came from `Req::new` and is completed exactly once.
    let f = unsafe { Box::from_raw(ctx.cast::<ReqFn>()) };
    f(status);
}

unsafe extern "system" fn on_close(ctx: PVOID) {
    // SAFETY: as above.
    let f = unsafe { Box::from_raw(ctx.cast::<ReqFn>()) };
    f(STATUS_SUCCESS);
}

/// A request's completion: called by the provider (STATUS_PENDING) or at
/// once with the inline status.
struct Req(*mut ReqFn);

impl Req {
    fn new(f: impl FnOnce(NTSTATUS) + Send + 'static) -> Req {
        Req(Box::into_raw(Box::new(Box::new(f) as ReqFn)))
    }
    fn ctx(&self) -> PVOID {
        self.0.cast()
    }
    /// Runs the completion now unless the call pended.
    fn finish(self, status: NTSTATUS) -> NTSTATUS {
        if status != STATUS_PENDING {
            // SAFETY: the provider does not complete a request whose call
            // did not return STATUS_PENDING: the box is still ours.
            let f = unsafe { Box::from_raw(self.0) };
            f(status);
        }
        status
    }
}

/// A one-shot status to wait for.
#[derive(Debug, Default)]
struct Signal {
    m: Mutex<Option<NTSTATUS>>,
    cv: Condvar,
}

impl Signal {
    fn set(&self, s: NTSTATUS) {
        let mut g = self.m.lock().unwrap_or_else(|p| p.into_inner());
        if g.is_none() {
            *g = Some(s);
        }
        self.cv.notify_all();
    }
    fn wait(&self, t: Duration) -> Option<NTSTATUS> {
        let end = Instant::now() + t;
        let mut g = self.m.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(s) = *g {
                return Some(s);
            }
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            g = self
                .cv
                .wait_timeout(g, left)
                .map(|r| r.0)
                .unwrap_or_else(|p| p.into_inner().0);
        }
    }
}

/// Makes a request and waits (bounded) for its status.
fn sync_req(t: Duration, call: impl FnOnce(PVOID) -> NTSTATUS) -> Option<NTSTATUS> {
    let s = Arc::new(Signal::default());
    let s2 = Arc::clone(&s);
    let r = Req::new(move |st| s2.set(st));
    let ctx = r.ctx();
    r.finish(call(ctx));
    s.wait(t)
}

/// Serializes a CQ's processing between the notification callback and
/// the caller's thread without ever blocking the I/O thread or holding a
/// lock across a re-entrant delivery: whoever finds it busy leaves a note
/// and the holder goes round again.
#[derive(Debug, Default)]
struct Drive {
    lock: parking_lot::Mutex<()>,
    missed: AtomicBool,
}

impl Drive {
    fn run(&self, mut f: impl FnMut()) {
        loop {
            self.missed.store(true, Ordering::SeqCst);
            let Some(g) = self.lock.try_lock() else {
                return;
            };
            self.missed.store(false, Ordering::SeqCst);
            f();
            drop(g);
            if !self.missed.load(Ordering::SeqCst) {
                return;
            }
        }
    }
}

// ---------------------------------------------------------------------
// Thin wrappers over the dispatch tables

macro_rules! disp {
    ($obj:expr, $f:ident) => {
        // SAFETY: `$obj` is a live object of the provider; its dispatch
        // table is static.
        unsafe { (*(*$obj).Dispatch).$f }
    };
}

fn sockaddr(a: SocketAddr) -> ([u8; 28], ULONG) {
    let mut out = [0u8; 28];
    let len = match a {
        SocketAddr::V4(v4) => {
            let s = SOCKADDR_IN {
                sin_family: AF_INET,
                sin_port: v4.port().to_be(),
                sin_addr: IN_ADDR {
                    s_addr: v4.ip().octets(),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: SOCKADDR_IN is plain bytes and fits.
            unsafe { ptr::write_unaligned(out.as_mut_ptr().cast::<SOCKADDR_IN>(), s) };
            size_of::<SOCKADDR_IN>()
        }
        SocketAddr::V6(v6) => {
            let s = SOCKADDR_IN6 {
                sin6_family: AF_INET6,
                sin6_port: v6.port().to_be(),
                sin6_flowinfo: 0,
                sin6_addr: IN6_ADDR {
                    s6_addr: v6.ip().octets(),
                },
                sin6_scope_id: v6.scope_id(),
            };
            // SAFETY: as above.
            unsafe { ptr::write_unaligned(out.as_mut_ptr().cast::<SOCKADDR_IN6>(), s) };
            size_of::<SOCKADDR_IN6>()
        }
    };
    (out, len as ULONG)
}

fn create_pd(a: *mut NDK_ADAPTER) -> Result<*mut NDK_PD, PerfError> {
    let mut pd = ptr::null_mut();
    let st = match disp!(a, NdkCreatePd) {
        // SAFETY: valid adapter, out pointer.
        Some(f) => unsafe { f(a, None, ptr::null_mut(), &mut pd) },
        None => STATUS_NOT_IMPLEMENTED,
    };
    if st != STATUS_SUCCESS || pd.is_null() {
        return err(format!("NdkCreatePd failed: {}", status_name(st)));
    }
    Ok(pd)
}

fn create_cq(
    a: *mut NDK_ADAPTER,
    depth: u32,
    notify: NDK_FN_CQ_NOTIFICATION_CALLBACK,
    ctx: PVOID,
) -> Result<*mut NDK_CQ, PerfError> {
    let mut cq = ptr::null_mut();
    let st = match disp!(a, NdkCreateCq) {
        // SAFETY: as above.
        Some(f) => unsafe {
            f(
                a,
                depth,
                notify,
                ctx,
                ptr::null_mut(),
                None,
                ptr::null_mut(),
                &mut cq,
            )
        },
        None => STATUS_NOT_IMPLEMENTED,
    };
    if st != STATUS_SUCCESS || cq.is_null() {
        return err(format!("NdkCreateCq({depth}) failed: {}", status_name(st)));
    }
    Ok(cq)
}

fn create_qp(
    pd: *mut NDK_PD,
    cq: *mut NDK_CQ,
    ctx: PVOID,
    recv_depth: u32,
    init_depth: u32,
) -> Result<*mut NDK_QP, PerfError> {
    let mut qp = ptr::null_mut();
    let st = match disp!(pd, NdkCreateQp) {
        // SAFETY: live PD and CQ.
        Some(f) => unsafe {
            f(
                pd,
                cq,
                cq,
                ctx,
                recv_depth,
                init_depth,
                1,
                1,
                0,
                None,
                ptr::null_mut(),
                &mut qp,
            )
        },
        None => STATUS_NOT_IMPLEMENTED,
    };
    if st != STATUS_SUCCESS || qp.is_null() {
        return err(format!("NdkCreateQp failed: {}", status_name(st)));
    }
    Ok(qp)
}

fn create_connector(a: *mut NDK_ADAPTER) -> Result<*mut NDK_CONNECTOR, PerfError> {
    let mut c = ptr::null_mut();
    let st = match disp!(a, NdkCreateConnector) {
        // SAFETY: as above.
        Some(f) => unsafe { f(a, None, ptr::null_mut(), &mut c) },
        None => STATUS_NOT_IMPLEMENTED,
    };
    if st != STATUS_SUCCESS || c.is_null() {
        return err(format!("NdkCreateConnector failed: {}", status_name(st)));
    }
    Ok(c)
}

/// Closes `obj` through `close`; `then` runs when the close completed
/// (inline or later). Never waits.
fn close_then(
    obj: *mut NDK_OBJECT_HEADER,
    close: NDK_FN_CLOSE_OBJECT,
    then: impl FnOnce(NTSTATUS) + Send + 'static,
) {
    let Some(f) = close else {
        then(STATUS_NOT_IMPLEMENTED);
        return;
    };
    let r = Req::new(then);
    let ctx = r.ctx();
    // SAFETY: a live object and its own close function.
    let st = unsafe { f(obj, Some(on_close), ctx) };
    r.finish(st);
}

/// Closes `obj` and waits (bounded) for the close.
fn close_wait(obj: *mut NDK_OBJECT_HEADER, close: NDK_FN_CLOSE_OBJECT, t: Duration) -> bool {
    if obj.is_null() {
        return true;
    }
    let s = Arc::new(Signal::default());
    let s2 = Arc::clone(&s);
    close_then(obj, close, move |st| s2.set(st));
    s.wait(t).is_some()
}

/// Memory registered with the provider.
struct Buf {
    ptr: *mut u8,
    len: usize,
    mdl: Box<HostMdl>,
    mr: *mut NDK_MR,
    token: u32,
}

// SAFETY: the memory is shared with the provider by design; the consumer
// reads it only after a completion ordered it (through the adapter lock).
unsafe impl Send for Buf {}
// SAFETY: as above.
unsafe impl Sync for Buf {}

impl Buf {
    fn new(pd: *mut NDK_PD, len: usize) -> Result<Buf, PerfError> {
        let len = len.max(64);
        let mem: Box<[u8]> = vec![0u8; len].into_boxed_slice();
        let p = Box::into_raw(mem).cast::<u8>();
        let mut mdl = Box::new(HostMdl::new(p, len));
        let free = |p: *mut u8| {
            // SAFETY: `p` is the slice allocated above, unregistered.
            drop(unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(p, len)) });
        };
        let mut mr = ptr::null_mut();
        let st = match disp!(pd, NdkCreateMr) {
            // SAFETY: live PD.
            Some(f) => unsafe { f(pd, FALSE, None, ptr::null_mut(), &mut mr) },
            None => STATUS_NOT_IMPLEMENTED,
        };
        if st != STATUS_SUCCESS || mr.is_null() {
            free(p);
            return err(format!("NdkCreateMr failed: {}", status_name(st)));
        }
        let flags = NDK_MR_FLAG_ALLOW_LOCAL_WRITE
            | NDK_MR_FLAG_ALLOW_REMOTE_READ
            | NDK_MR_FLAG_ALLOW_REMOTE_WRITE;
        let st = match disp!(mr, NdkRegisterMr) {
            // SAFETY: live MR, a HostMdl describing live memory.
            Some(f) => unsafe {
                f(
                    mr,
                    (&mut *mdl as *mut HostMdl).cast(),
                    len,
                    flags,
                    None,
                    ptr::null_mut(),
                )
            },
            None => STATUS_NOT_IMPLEMENTED,
        };
        if st != STATUS_SUCCESS {
            let _ = close_wait(mr.cast(), disp!(mr, NdkCloseMr), Duration::from_secs(1));
            free(p);
            return err(format!("NdkRegisterMr({len}) failed: {}", status_name(st)));
        }
        let token = match disp!(mr, NdkGetLocalTokenFromMr) {
            // SAFETY: live, registered MR.
            Some(f) => unsafe { f(mr) },
            None => 0,
        };
        Ok(Buf {
            ptr: p,
            len,
            mdl,
            mr,
            token,
        })
    }

    fn addr(&self, off: usize) -> u64 {
        self.ptr as u64 + off.min(self.len) as u64
    }

    fn sge(&self, off: usize, len: usize) -> NDK_SGE {
        NDK_SGE {
            Address: NDK_SGE_ADDRESS {
                VirtualAddress: self.addr(off) as PVOID,
            },
            Length: len.min(self.len.saturating_sub(off)) as ULONG,
            MemoryRegionToken: self.token,
        }
    }

    /// # Safety
    /// No RDMA into `off..off+len` is in flight.
    #[allow(clippy::mut_from_ref)] // shared with the provider; see the contract
    unsafe fn bytes_mut(&self, off: usize, len: usize) -> &mut [u8] {
        let off = off.min(self.len);
        let len = len.min(self.len - off);
        // SAFETY: inside the allocation; exclusivity per the contract.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(off), len) }
    }

    /// Closes the MR, then frees the memory (when the close completed).
    fn release(self) {
        let (p, len, mdl) = (self.ptr as usize, self.len, self.mdl);
        let free = move |_| {
            // SAFETY: the MR over it is closed; nothing refers to it.
            drop(unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(p as *mut u8, len)) });
            drop(mdl);
        };
        let mr = self.mr;
        close_then(mr.cast(), disp!(mr, NdkCloseMr), free);
    }
}

fn post(st: NTSTATUS, what: &str) -> Result<(), NTSTATUS> {
    let _ = what;
    if st == STATUS_SUCCESS {
        Ok(())
    } else {
        Err(st)
    }
}

fn qp_send(qp: *mut NDK_QP, ctx: usize, sge: &NDK_SGE, flags: ULONG) -> Result<(), NTSTATUS> {
    let st = match disp!(qp, NdkSend) {
        // SAFETY: live QP; the SGE is read during the call.
        Some(f) => unsafe { f(qp, ctx as PVOID, sge, 1, flags) },
        None => STATUS_NOT_IMPLEMENTED,
    };
    post(st, "send")
}

fn qp_recv(qp: *mut NDK_QP, ctx: usize, sge: &NDK_SGE) -> Result<(), NTSTATUS> {
    let st = match disp!(qp, NdkReceive) {
        // SAFETY: as above.
        Some(f) => unsafe { f(qp, ctx as PVOID, sge, 1) },
        None => STATUS_NOT_IMPLEMENTED,
    };
    post(st, "receive")
}

fn qp_write(
    qp: *mut NDK_QP,
    ctx: usize,
    sge: &NDK_SGE,
    raddr: u64,
    rkey: u32,
) -> Result<(), NTSTATUS> {
    let st = match disp!(qp, NdkWrite) {
        // SAFETY: as above.
        Some(f) => unsafe { f(qp, ctx as PVOID, sge, 1, raddr, rkey, 0) },
        None => STATUS_NOT_IMPLEMENTED,
    };
    post(st, "write")
}

fn qp_read(
    qp: *mut NDK_QP,
    ctx: usize,
    sge: &NDK_SGE,
    raddr: u64,
    rkey: u32,
) -> Result<(), NTSTATUS> {
    let st = match disp!(qp, NdkRead) {
        // SAFETY: as above.
        Some(f) => unsafe { f(qp, ctx as PVOID, sge, 1, raddr, rkey, 0) },
        None => STATUS_NOT_IMPLEMENTED,
    };
    post(st, "read")
}

const RESULTS: usize = 64;

/// Polls up to `out.len()` results.
fn cq_poll(cq: *mut NDK_CQ, out: &mut [NDK_RESULT_EX]) -> usize {
    match disp!(cq, NdkGetCqResultsEx) {
        // SAFETY: live CQ; `out` has room for `out.len()` results.
        Some(f) => unsafe { f(cq, out.as_mut_ptr(), out.len() as ULONG) as usize },
        None => 0,
    }
}

fn cq_arm(cq: *mut NDK_CQ) {
    if let Some(f) = disp!(cq, NdkArmCq) {
        // SAFETY: live CQ.
        unsafe { f(cq, NDK_CQ_NOTIFY_ANY) };
    }
}

fn empty_results() -> [NDK_RESULT_EX; RESULTS] {
    // SAFETY: NDK_RESULT_EX is plain integers and pointers.
    unsafe { std::mem::zeroed() }
}

// ---------------------------------------------------------------------
// Wire formats of the private data

const MAGIC: &[u8; 4] = b"NDKP";

/// The client's connect private data: which mode runs, with what.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hello {
    /// The mode.
    pub mode: Mode,
    /// Message size.
    pub size: u32,
    /// Receives the server keeps posted (send modes).
    pub depth: u32,
}

impl Hello {
    const LEN: usize = 16;
    fn encode(&self) -> [u8; Self::LEN] {
        let mut b = [0u8; Self::LEN];
        b[..4].copy_from_slice(MAGIC);
        b[4] = 1;
        b[5] = self.mode.code();
        b[8..12].copy_from_slice(&self.size.to_be_bytes());
        b[12..16].copy_from_slice(&self.depth.to_be_bytes());
        b
    }
    fn decode(b: &[u8]) -> Option<Hello> {
        if b.len() < Self::LEN || &b[..4] != MAGIC || b[4] != 1 {
            return None;
        }
        let u = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        Some(Hello {
            mode: Mode::from_code(b[5])?,
            size: u(8),
            depth: u(12),
        })
    }
}

/// rping's `struct rping_rdma_info`: `__be64 buf; __be32 rkey; __be32 size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RdmaInfo {
    /// Remote address.
    pub buf: u64,
    /// Remote token.
    pub rkey: u32,
    /// Bytes.
    pub size: u32,
}

impl RdmaInfo {
    /// Encoded length.
    pub const LEN: usize = 16;
    /// Big-endian, as rping sends it.
    pub fn encode(&self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.buf.to_be_bytes());
        b[8..12].copy_from_slice(&self.rkey.to_be_bytes());
        b[12..16].copy_from_slice(&self.size.to_be_bytes());
        b
    }
    /// Parses 16 bytes.
    pub fn decode(b: &[u8]) -> Option<RdmaInfo> {
        let b: &[u8; 16] = b.get(..16)?.try_into().ok()?;
        Some(RdmaInfo {
            buf: u64::from_be_bytes(b[..8].try_into().ok()?),
            rkey: u32::from_be_bytes(b[8..12].try_into().ok()?),
            size: u32::from_be_bytes(b[12..16].try_into().ok()?),
        })
    }
}

/// rping's source-buffer contents for iteration `ping` (0-based): the
/// text "rdma-ping-<ping>: ", then ASCII letters counting up from
/// `'A' + ping % 58` and wrapping from 'z' (122) back to 'A' (65), the
/// buffer's last byte NUL (rping's server Writes back `strlen + 1` bytes,
/// so the NUL ends the message where the buffer ends).
pub fn rping_pattern(ping: u64, out: &mut [u8]) {
    let mut prefix = [0u8; 40];
    let n = {
        use std::io::Write;
        let mut c = std::io::Cursor::new(&mut prefix[..]);
        let _ = write!(c, "rdma-ping-{ping}: ");
        c.position() as usize
    };
    let n = n.min(out.len());
    out[..n].copy_from_slice(&prefix[..n]);
    let mut c = 65 + (ping % 58) as u8;
    for b in out.iter_mut().skip(n) {
        *b = c;
        c = if c >= 122 { 65 } else { c + 1 };
    }
    if let Some(last) = out.last_mut() {
        *last = 0;
    }
}

/// How many bytes rping's server Writes back of what it Read: the
/// C-string length plus its NUL, at most what was Read.
pub fn rping_reply_len(data: &[u8]) -> usize {
    data.iter()
        .position(|&b| b == 0)
        .map_or(data.len(), |n| n + 1)
}

/// The largest buffer an rping server here will register for a peer's
/// advertised size.
const RPING_MAX_SIZE: usize = 1 << 30;

// ---------------------------------------------------------------------
// The server

/// The server side of one connection.
struct SConn {
    server: *const ServerInner,
    hello: Hello,
    conn: *mut NDK_CONNECTOR,
    qp: AtomicPtr<NDK_QP>,
    /// Data area `[0, size)`, receive slots, then a send area.
    buf: Mutex<Option<Buf>>,
    /// Stable copies of the buffer's address and token for the data path.
    base: u64,
    token: u32,
    recv_slot: usize,
    recvs: usize,
    /// rping: the buffer the peer's source is Read into and Written back
    /// from (registered at the first advertisement, replaced by a larger
    /// one when a bigger size is advertised).
    rping: Mutex<Option<Buf>>,
    /// Data-path state, touched only under the server's CQ drive.
    dp: UnsafeCell<SData>,
    torn_down: AtomicBool,
}

#[derive(Debug, Default)]
struct SData {
    /// rping: the next receive is the sink advertisement.
    rping_sink: bool,
    /// rping: bytes of the current iteration's RDMA Read.
    read_len: usize,
}

// SAFETY: `dp` is reached only under the server's drive lock; the rest is
// atomics, a mutex, and provider pointers the provider serializes.
unsafe impl Send for SConn {}
// SAFETY: as above.
unsafe impl Sync for SConn {}

impl SConn {
    fn sge(&self, off: usize, len: usize) -> NDK_SGE {
        NDK_SGE {
            Address: NDK_SGE_ADDRESS {
                VirtualAddress: (self.base + off as u64) as PVOID,
            },
            Length: len as ULONG,
            MemoryRegionToken: self.token,
        }
    }
    fn data_len(&self) -> usize {
        (self.hello.size as usize).max(64)
    }
    fn slot_off(&self, i: usize) -> usize {
        self.data_len() + i * self.recv_slot
    }
    fn send_off(&self) -> usize {
        self.slot_off(self.recvs)
    }
}

struct ServerInner {
    adapter: *mut NDK_ADAPTER,
    pd: *mut NDK_PD,
    cq: AtomicPtr<NDK_CQ>,
    drive: Drive,
    reject: bool,
    conns: Mutex<Vec<Arc<SConn>>>,
    live: AtomicU64,
    accepted: AtomicU64,
    rejected: AtomicU64,
    /// rping iterations served (RDMA Write and its go-ahead posted).
    pings: AtomicU64,
    /// rping connections ended for a protocol error.
    protocol_errors: AtomicU64,
    last_activity: AtomicU64,
    epoch: Instant,
}

// SAFETY: provider pointers; the provider serializes calls on them.
unsafe impl Send for ServerInner {}
// SAFETY: as above.
unsafe impl Sync for ServerInner {}

/// A running passive side: a listener that accepts every ndkperf
/// connection and serves its mode from the CQ callback.
pub struct Server {
    inner: Arc<ServerInner>,
    listener: *mut NDK_LISTENER,
    port: u16,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("port", &self.port).finish()
    }
}

// SAFETY: as for ServerInner.
unsafe impl Send for Server {}

/// Server activity counters.
#[derive(Debug, Clone, Copy, Default)]
pub struct ServerStats {
    /// Connections accepted.
    pub accepted: u64,
    /// Connections rejected.
    pub rejected: u64,
    /// Connections not yet torn down.
    pub live: u64,
    /// rping iterations served (each: RDMA Read, go-ahead, RDMA Write,
    /// go-ahead).
    pub rping_iterations: u64,
    /// rping connections torn down for a protocol error (a Send that is
    /// not 16 bytes, a size over the limit, a failed post).
    pub rping_errors: u64,
    /// Time since the last connect or teardown.
    pub idle: Duration,
}

unsafe extern "system" fn server_cq(ctx: PVOID, _status: NTSTATUS) {
    // SAFETY: `ctx` is the ServerInner, alive until the adapter closes.
    let s = unsafe { &*ctx.cast::<ServerInner>() };
    s.drive.run(|| s.service());
}

unsafe extern "system" fn server_connect(ctx: PVOID, conn: *mut NDK_CONNECTOR) {
    // SAFETY: as above.
    let s = unsafe { &*ctx.cast::<ServerInner>() };
    s.incoming(conn);
}

unsafe extern "system" fn server_disconnected(ctx: PVOID) {
    // SAFETY: `ctx` is an SConn the server keeps until it stops.
    let c = unsafe { &*ctx.cast::<SConn>() };
    // SAFETY: its server outlives it.
    let s = unsafe { &*c.server };
    s.teardown(c);
}

impl ServerInner {
    fn touch(&self) {
        self.last_activity
            .store(self.epoch.elapsed().as_nanos() as u64, Ordering::Relaxed);
    }

    fn reject(&self, conn: *mut NDK_CONNECTOR, why: &[u8]) {
        if let Some(f) = disp!(conn, NdkReject) {
            // SAFETY: the connector of the connect event.
            unsafe { f(conn, why.as_ptr().cast(), why.len() as ULONG) };
        }
        self.rejected.fetch_add(1, Ordering::Relaxed);
        close_then(conn.cast(), disp!(conn, NdkCloseConnector), |_| {});
    }

    /// The connect event: accept from inside it. A request without a
    /// [`Hello`] (Linux rping sends no private data) is an rping client.
    fn incoming(&self, conn: *mut NDK_CONNECTOR) {
        self.touch();
        let mut irl = 0;
        let mut orl = 0;
        let mut data = [0u8; 64];
        let mut len = data.len() as ULONG;
        let st = match disp!(conn, NdkGetConnectionData) {
            // SAFETY: the event's connector; buffers of the stated sizes.
            Some(f) => unsafe { f(conn, &mut irl, &mut orl, data.as_mut_ptr().cast(), &mut len) },
            None => STATUS_NOT_IMPLEMENTED,
        };
        if st != STATUS_SUCCESS || self.reject {
            self.reject(conn, b"ndkperf: rejected");
            return;
        }
        let hello = Hello::decode(&data[..(len as usize).min(data.len())]);
        if let Err(e) = self.accept(conn, hello, irl.min(16), orl.min(16)) {
            let _ = e;
            self.reject(conn, b"ndkperf: no resources");
        }
    }

    fn accept(
        &self,
        conn: *mut NDK_CONNECTOR,
        hello: Option<Hello>,
        irl: u32,
        orl: u32,
    ) -> Result<(), PerfError> {
        // rping's peers ask for (and rping accepts with) one RDMA Read
        // each way.
        let (hello, irl, orl) = match hello {
            Some(h) => (h, irl, orl),
            None => (
                Hello {
                    mode: Mode::Rping,
                    size: 0,
                    depth: 0,
                },
                irl.clamp(1, 16),
                orl.clamp(1, 16),
            ),
        };
        let size = (hello.size as usize).clamp(1, 1 << 30);
        let (recvs, slot) = match hello.mode {
            Mode::SendBw => (hello.depth.clamp(1, 1024) as usize, size),
            Mode::SendLat => (2, size),
            Mode::Rping => (2, RdmaInfo::LEN),
            Mode::Disconnect => (1, size),
            _ => (0, 0),
        };
        let total = size.max(64) + recvs * slot + RdmaInfo::LEN;
        let buf = Buf::new(self.pd, total)?;
        let c = Arc::new(SConn {
            server: self,
            hello,
            conn,
            qp: AtomicPtr::new(ptr::null_mut()),
            base: buf.addr(0),
            token: buf.token,
            buf: Mutex::new(Some(buf)),
            recv_slot: slot,
            recvs,
            rping: Mutex::new(None),
            dp: UnsafeCell::new(SData::default()),
            torn_down: AtomicBool::new(false),
        });
        let cptr = Arc::as_ptr(&c);
        let qp = match create_qp(
            self.pd,
            self.cq.load(Ordering::Acquire),
            cptr as PVOID,
            recvs as u32 + 1,
            8,
        ) {
            Ok(q) => q,
            Err(e) => {
                if let Some(b) = c.buf.lock().ok().and_then(|mut b| b.take()) {
                    b.release();
                }
                return Err(e);
            }
        };
        c.qp.store(qp, Ordering::Release);
        self.conns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Arc::clone(&c));
        for i in 0..recvs {
            let _ = qp_recv(qp, i, &c.sge(c.slot_off(i), slot));
        }
        let info = RdmaInfo {
            buf: c.base,
            rkey: c.token,
            size: size as u32,
        };
        let mut pdata = [0u8; 20];
        pdata[..4].copy_from_slice(MAGIC);
        pdata[4..].copy_from_slice(&info.encode());
        // An rping peer gets what rping's server sends: nothing.
        let pdata: &[u8] = if hello.mode == Mode::Rping {
            &[]
        } else {
            &pdata
        };
        let c2 = Arc::clone(&c);
        let me = self as *const ServerInner as usize;
        let r = Req::new(move |st| {
            if st != STATUS_SUCCESS {
                // SAFETY: the server outlives its connections.
                let s = unsafe { &*(me as *const ServerInner) };
                s.teardown(&c2);
            }
        });
        let ctx = r.ctx();
        let st = match disp!(conn, NdkAccept) {
            // SAFETY: the event's connector, our QP, private data read
            // during the call.
            Some(f) => unsafe {
                f(
                    conn,
                    qp,
                    irl,
                    orl,
                    pdata.as_ptr().cast(),
                    pdata.len() as ULONG,
                    Some(server_disconnected),
                    cptr as PVOID,
                    Some(on_request),
                    ctx,
                )
            },
            None => STATUS_NOT_IMPLEMENTED,
        };
        self.accepted.fetch_add(1, Ordering::Relaxed);
        self.live.fetch_add(1, Ordering::Relaxed);
        r.finish(st);
        Ok(())
    }

    /// The peer disconnected (or the accept failed): disconnect our side,
    /// then close the QP, the connector and the MR.
    fn teardown(&self, c: &SConn) {
        if c.torn_down.swap(true, Ordering::AcqRel) {
            return;
        }
        self.touch();
        let conn = c.conn as usize;
        let qp = c.qp.load(Ordering::Acquire) as usize;
        let buf = c.buf.lock().ok().and_then(|mut b| b.take());
        let rping = c.rping.lock().ok().and_then(|mut b| b.take());
        let live = &self.live as *const AtomicU64 as usize;
        // The connector first: a QP's close waits for its connector's.
        let close_all = move |_st: NTSTATUS| {
            let conn = conn as *mut NDK_CONNECTOR;
            let after_conn = move |_| {
                let qp = qp as *mut NDK_QP;
                let after_qp = move |_| {
                    if let Some(b) = buf {
                        b.release();
                    }
                    if let Some(b) = rping {
                        b.release();
                    }
                    // SAFETY: the server outlives its connections.
                    unsafe { &*(live as *const AtomicU64) }.fetch_sub(1, Ordering::Relaxed);
                };
                if qp.is_null() {
                    after_qp(STATUS_SUCCESS);
                } else {
                    close_then(qp.cast(), disp!(qp, NdkCloseQp), after_qp);
                }
            };
            close_then(conn.cast(), disp!(conn, NdkCloseConnector), after_conn);
        };
        let r = Req::new(close_all);
        let ctx = r.ctx();
        let st = match disp!(c.conn, NdkDisconnect) {
            // SAFETY: the connection's connector, not closed yet.
            Some(f) => unsafe { f(c.conn, Some(on_request), ctx) },
            None => STATUS_NOT_IMPLEMENTED,
        };
        r.finish(st);
    }

    /// The CQ callback's work: serve every completion, re-arm.
    fn service(&self) {
        let cq = self.cq.load(Ordering::Acquire);
        let mut res = empty_results();
        loop {
            let n = cq_poll(cq, &mut res);
            for r in &res[..n] {
                if r.Status != STATUS_SUCCESS || r.QPContext.is_null() {
                    continue;
                }
                // SAFETY: QP contexts are SConns the server keeps.
                let c = unsafe { &*r.QPContext.cast::<SConn>() };
                if c.torn_down.load(Ordering::Acquire) {
                    continue;
                }
                self.on_completion(c, r);
            }
            if n < res.len() {
                break;
            }
        }
        cq_arm(cq);
    }

    fn on_completion(&self, c: &SConn, r: &NDK_RESULT_EX) {
        let qp = c.qp.load(Ordering::Acquire);
        // SAFETY: only the drive reaches `dp`, and the drive is held.
        let dp = unsafe { &mut *c.dp.get() };
        let size = c.hello.size as usize;
        match (c.hello.mode, r.Type) {
            (Mode::SendBw, NdkOperationTypeReceive) => {
                let i = r.RequestContext as usize;
                let _ = qp_recv(qp, i, &c.sge(c.slot_off(i), c.recv_slot));
            }
            (Mode::SendLat, NdkOperationTypeReceive) => {
                let i = r.RequestContext as usize;
                let _ = qp_recv(qp, i, &c.sge(c.slot_off(i), c.recv_slot));
                let _ = qp_send(qp, usize::MAX, &c.sge(0, size), 0);
            }
            (Mode::Rping, NdkOperationTypeReceive) => {
                let i = r.RequestContext as usize;
                let off = c.slot_off(i);
                // SAFETY: the receive into this slot completed; the slot
                // is reposted only below.
                let info = RdmaInfo::decode(unsafe {
                    std::slice::from_raw_parts((c.base + off as u64) as *const u8, 16)
                });
                let _ = qp_recv(qp, i, &c.sge(off, RdmaInfo::LEN));
                let info = match info {
                    Some(info) if r.BytesTransferred as usize == RdmaInfo::LEN => info,
                    // rping's server gives up on a message of another size.
                    _ => return self.rping_error(c),
                };
                if self.rping_advertised(c, dp, qp, info).is_err() {
                    self.rping_error(c);
                }
            }
            (Mode::Rping, NdkOperationTypeRead | NdkOperationTypeWrite) => {
                // The go-ahead after the Read and after the Write: 16
                // bytes, zero (rping's server never fills its message).
                let off = c.send_off();
                if r.Type == NdkOperationTypeWrite {
                    self.pings.fetch_add(1, Ordering::Relaxed);
                }
                if qp_send(qp, 3, &c.sge(off, RdmaInfo::LEN), 0).is_err() {
                    self.rping_error(c);
                }
            }
            _ => {}
        }
    }

    /// rping: the client advertised a buffer: its source (RDMA Read it
    /// whole) or its sink (RDMA Write back what was Read, as a C string).
    fn rping_advertised(
        &self,
        c: &SConn,
        dp: &mut SData,
        qp: *mut NDK_QP,
        info: RdmaInfo,
    ) -> Result<(), ()> {
        // The SGE under the lock, the post after it (no lock across a
        // provider call).
        let mut rb = c.rping.lock().unwrap_or_else(|p| p.into_inner());
        if dp.rping_sink {
            dp.rping_sink = false;
            let b = rb.as_ref().ok_or(())?;
            // SAFETY: the Read into it completed (its go-ahead was sent
            // before the client advertised the sink); nothing is in flight.
            let len = rping_reply_len(unsafe { b.bytes_mut(0, dp.read_len) });
            let sge = b.sge(0, len);
            drop(rb);
            qp_write(qp, 1, &sge, info.buf, info.rkey).map_err(|_| ())
        } else {
            let len = info.size as usize;
            if len > RPING_MAX_SIZE {
                return Err(());
            }
            let mut old = None;
            if rb.as_ref().is_none_or(|b| b.len < len) {
                // Between iterations nothing is in flight on the old one.
                let new = Buf::new(self.pd, len.max(64)).map_err(|_| ())?;
                old = rb.replace(new);
            }
            let sge = rb.as_ref().ok_or(())?.sge(0, len);
            drop(rb);
            if let Some(b) = old {
                b.release();
            }
            dp.rping_sink = true;
            dp.read_len = len;
            qp_read(qp, 2, &sge, info.buf, info.rkey).map_err(|_| ())
        }
    }

    /// rping: the peer broke the protocol: end the connection.
    fn rping_error(&self, c: &SConn) {
        self.protocol_errors.fetch_add(1, Ordering::Relaxed);
        self.teardown(c);
    }
}

impl Server {
    /// Starts listening on `addr` (its IP must be the adapter's; port: the
    /// CM port to listen on). `reject` rejects every request (tests).
    pub fn start(adapter: &Adapter, addr: SocketAddr, reject: bool) -> Result<Server, PerfError> {
        let a = adapter.ptr();
        let pd = create_pd(a)?;
        let inner = Arc::new(ServerInner {
            adapter: a,
            pd,
            cq: AtomicPtr::new(ptr::null_mut()),
            drive: Drive::default(),
            reject,
            conns: Mutex::new(Vec::new()),
            live: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            pings: AtomicU64::new(0),
            protocol_errors: AtomicU64::new(0),
            last_activity: AtomicU64::new(0),
            epoch: Instant::now(),
        });
        let ctx = Arc::as_ptr(&inner) as PVOID;
        let cq = create_cq(a, 65536, Some(server_cq), ctx)?;
        inner.cq.store(cq, Ordering::Release);
        cq_arm(cq);
        let mut listener = ptr::null_mut();
        let st = match disp!(a, NdkCreateListener) {
            // SAFETY: live adapter; `ctx` lives as long as the adapter.
            Some(f) => unsafe {
                f(
                    a,
                    Some(server_connect),
                    ctx,
                    None,
                    ptr::null_mut(),
                    &mut listener,
                )
            },
            None => STATUS_NOT_IMPLEMENTED,
        };
        if st != STATUS_SUCCESS || listener.is_null() {
            return err(format!("NdkCreateListener failed: {}", status_name(st)));
        }
        let (sa, sa_len) = sockaddr(addr);
        let st = match disp!(listener, NdkListen) {
            // SAFETY: live listener, address read during the call.
            Some(f) => unsafe { f(listener, sa.as_ptr().cast(), sa_len, None, ptr::null_mut()) },
            None => STATUS_NOT_IMPLEMENTED,
        };
        if st != STATUS_SUCCESS {
            return err(format!(
                "NdkListen on {addr} failed: {} (is another listener on that port?)",
                status_name(st)
            ));
        }
        Ok(Server {
            inner,
            listener,
            port: addr.port(),
        })
    }

    /// Activity so far.
    pub fn stats(&self) -> ServerStats {
        let i = &self.inner;
        let last = Duration::from_nanos(i.last_activity.load(Ordering::Relaxed));
        ServerStats {
            accepted: i.accepted.load(Ordering::Relaxed),
            rejected: i.rejected.load(Ordering::Relaxed),
            live: i.live.load(Ordering::Relaxed),
            rping_iterations: i.pings.load(Ordering::Relaxed),
            rping_errors: i.protocol_errors.load(Ordering::Relaxed),
            idle: i.epoch.elapsed().saturating_sub(last),
        }
    }

    /// Stops listening. The server's state stays alive in `keep` until
    /// the adapter is closed (late callbacks may still reach it).
    pub fn stop(self, keep: &mut Keep) {
        let l = self.listener;
        let _ = close_wait(l.cast(), disp!(l, NdkCloseListener), Duration::from_secs(2));
        let _ = self.inner.adapter;
        keep.0.push(self.inner);
    }
}

/// State that callbacks may still reach: drop it only after the adapter
/// is closed.
#[derive(Default)]
pub struct Keep(Vec<Arc<dyn Any + Send + Sync>>);

impl std::fmt::Debug for Keep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Keep({})", self.0.len())
    }
}

// ---------------------------------------------------------------------
// The client: one connection

struct CData {
    mode: Mode,
    size: usize,
    window: u64,
    target: Option<u64>,
    deadline: Option<Instant>,
    warm_at: Instant,
    posted: u64,
    completed: u64,
    bytes: u64,
    first_post: Option<Instant>,
    last_done: Option<Instant>,
    t_post: Instant,
    lat: Vec<u64>,
    remote: RdmaInfo,
    error: Option<NTSTATUS>,
    done: bool,
    verify_errors: u64,
    rping_iter: u64,
    rping_phase: u8,
    /// rping: the length of a Send from the peer that was not 16 bytes.
    rping_bogus: Option<u32>,
    warm: Option<(u64, u64)>,
    end: Option<(u64, u64)>,
    res: [NDK_RESULT_EX; RESULTS],
}

struct ClientRun {
    cq: AtomicPtr<NDK_CQ>,
    qp: AtomicPtr<NDK_QP>,
    buf: OnceLock<Buf>,
    drive: Drive,
    dp: UnsafeCell<CData>,
    finished: Signal,
    /// The peer disconnected the run's connection.
    peer_left: AtomicBool,
}

// SAFETY: `dp` is reached only under `drive` (or before the CQ is armed);
// the rest is atomics and provider pointers.
unsafe impl Send for ClientRun {}
// SAFETY: as above.
unsafe impl Sync for ClientRun {}

unsafe extern "system" fn client_cq(ctx: PVOID, _status: NTSTATUS) {
    // SAFETY: the ClientRun outlives its CQ (kept until the adapter closes).
    let r = unsafe { &*ctx.cast::<ClientRun>() };
    r.drive.run(|| r.service());
}

unsafe extern "system" fn ignore_disconnect(_ctx: PVOID) {}

/// A client run's connection: the peer disconnected (its DREQ came and was
/// answered). Nothing outstanding will complete until this side's own
/// NdkDisconnect flushes it, so the run ends now, with the reason.
unsafe extern "system" fn client_peer_disconnected(ctx: PVOID) {
    // SAFETY: the run is kept (in `Keep`) until the adapter closes.
    let run = unsafe { &*ctx.cast::<ClientRun>() };
    run.peer_left.store(true, Ordering::SeqCst);
    run.finished.set(STATUS_CONNECTION_DISCONNECTED);
}

/// Client buffer layout: `[0, size*window)` local data slots for the
/// bandwidth modes (or the rping source), then rping's sink, receive
/// slots and the send area.
struct Layout {
    data: usize,
    sink: usize,
    recv: usize,
    recv_slot: usize,
    send: usize,
    total: usize,
}

impl Layout {
    fn of(p: &Params) -> Layout {
        let size = p.size.max(1);
        let slots = if p.mode.is_latency() {
            1
        } else {
            p.window.max(1) as usize
        };
        let data = 0;
        let sink = data + (size * slots).max(64);
        let recv = sink + size.max(64);
        let recv_slot = size.max(RdmaInfo::LEN);
        let send = recv + 2 * recv_slot;
        Layout {
            data,
            sink,
            recv,
            recv_slot,
            send,
            total: send + 64,
        }
    }
}

impl ClientRun {
    fn buf(&self) -> &Buf {
        #[allow(clippy::expect_used)]
        self.buf.get().expect("buffer set before the CQ is armed")
    }

    fn service(&self) {
        let cq = self.cq.load(Ordering::Acquire);
        // SAFETY: the drive is held.
        let d = unsafe { &mut *self.dp.get() };
        loop {
            let n = cq_poll(cq, &mut d.res);
            for i in 0..n {
                let r = d.res[i];
                self.on_completion(d, &r);
            }
            if n < RESULTS {
                break;
            }
        }
        cq_arm(cq);
    }

    fn fail(&self, d: &mut CData, st: NTSTATUS) {
        if d.error.is_none() {
            d.error = Some(st);
        }
        self.finish(d);
    }

    fn finish(&self, d: &mut CData) {
        if !d.done {
            d.done = true;
            d.end = allocs().map(|a| (a, d.completed));
            self.finished.set(d.error.unwrap_or(STATUS_SUCCESS));
        }
    }

    fn more(&self, d: &CData, now: Instant) -> bool {
        match (d.target, d.deadline) {
            (Some(t), _) => d.posted < t,
            (None, Some(dl)) => now < dl,
            (None, None) => false,
        }
    }

    /// Posts the next request of a bandwidth or one-sided mode.
    fn post_next(&self, d: &mut CData, now: Instant) -> Result<(), NTSTATUS> {
        let qp = self.qp.load(Ordering::Acquire);
        let b = self.buf();
        let slot = (d.posted % d.window) as usize;
        let sge = b.sge(slot * d.size, d.size);
        let span = (d.remote.size as usize).max(d.size);
        let roff = ((slot * d.size) % span.max(1)).min(span - d.size.min(span)) as u64;
        let raddr = d.remote.buf + roff;
        let ctx = d.posted as usize;
        d.t_post = now;
        if d.first_post.is_none() {
            d.first_post = Some(now);
        }
        d.posted += 1;
        match d.mode {
            Mode::WriteBw | Mode::WriteLat => qp_write(qp, ctx, &sge, raddr, d.remote.rkey),
            Mode::ReadBw | Mode::ReadLat => qp_read(qp, ctx, &sge, raddr, d.remote.rkey),
            Mode::Rperf => {
                if ctx.is_multiple_of(2) {
                    qp_write(qp, ctx, &sge, raddr, d.remote.rkey)
                } else {
                    qp_read(qp, ctx, &sge, raddr, d.remote.rkey)
                }
            }
            Mode::SendBw | Mode::SendLat => qp_send(qp, ctx, &sge, 0),
            Mode::Rping | Mode::Disconnect => Ok(()),
        }
    }

    /// rping: starts iteration `d.rping_iter` (advertise the source).
    fn rping_start(&self, d: &mut CData, now: Instant, l: &Layout) -> Result<(), NTSTATUS> {
        let b = self.buf();
        // SAFETY: no RDMA on the source or sink is in flight between
        // iterations.
        unsafe {
            rping_pattern(d.rping_iter, b.bytes_mut(l.data, d.size));
            b.bytes_mut(l.sink, d.size).fill(0);
        }
        d.t_post = now;
        if d.first_post.is_none() {
            d.first_post = Some(now);
        }
        d.posted += 1;
        d.rping_phase = 0;
        self.rping_advertise(b.addr(l.data), d.size, l)
    }

    fn rping_advertise(&self, addr: u64, size: usize, l: &Layout) -> Result<(), NTSTATUS> {
        let b = self.buf();
        let info = RdmaInfo {
            buf: addr,
            rkey: b.token,
            size: size as u32,
        };
        // SAFETY: the send area: no send from it is in flight (one per
        // phase, each answered before the next).
        unsafe { b.bytes_mut(l.send, 16).copy_from_slice(&info.encode()) };
        let qp = self.qp.load(Ordering::Acquire);
        qp_send(qp, usize::MAX, &b.sge(l.send, RdmaInfo::LEN), 0)
    }

    fn on_completion(&self, d: &mut CData, r: &NDK_RESULT_EX) {
        if d.done {
            return;
        }
        if r.Status != STATUS_SUCCESS {
            self.fail(d, r.Status);
            return;
        }
        let now = Instant::now();
        let qp = self.qp.load(Ordering::Acquire);
        let l = Layout::of(&Params {
            mode: d.mode,
            size: d.size,
            iters: None,
            duration: Duration::ZERO,
            window: d.window as u32,
            qps: 1,
            timeout: Duration::ZERO,
        });
        let sample = |d: &mut CData| {
            if d.lat.len() < d.lat.capacity() {
                d.lat.push((now - d.t_post).as_nanos() as u64);
            }
        };
        let counted = match (d.mode, r.Type) {
            (Mode::SendLat, NdkOperationTypeSend) => false,
            (Mode::SendLat, NdkOperationTypeReceive) => {
                sample(d);
                let i = r.RequestContext as usize;
                let b = self.buf();
                let _ = qp_recv(qp, i, &b.sge(l.recv + i * l.recv_slot, d.size));
                true
            }
            (Mode::Rping, NdkOperationTypeSend) => false,
            (Mode::Rping, NdkOperationTypeReceive) => {
                let i = r.RequestContext as usize;
                let b = self.buf();
                let _ = qp_recv(qp, i, &b.sge(l.recv + i * l.recv_slot, RdmaInfo::LEN));
                if r.BytesTransferred as usize != RdmaInfo::LEN {
                    // rping's client gives up on a message of another size.
                    d.rping_bogus = Some(r.BytesTransferred);
                    self.fail(d, STATUS_UNSUCCESSFUL);
                    return;
                }
                if d.rping_phase == 0 {
                    // The server read the source: advertise the sink.
                    d.rping_phase = 1;
                    if let Err(st) = self.rping_advertise(b.addr(l.sink), d.size, &l) {
                        self.fail(d, st);
                    }
                    false
                } else {
                    // The server wrote the sink: verify all of it (rping's
                    // -V compares the whole buffers).
                    // SAFETY: the Write landed before the server's Send.
                    let ok = unsafe { b.bytes_mut(l.data, d.size) == b.bytes_mut(l.sink, d.size) };
                    if !ok {
                        d.verify_errors += 1;
                    }
                    sample(d);
                    d.rping_iter += 1;
                    true
                }
            }
            _ => {
                if d.mode.is_latency() {
                    sample(d);
                }
                true
            }
        };
        if !counted {
            return;
        }
        d.completed += 1;
        d.bytes += if d.mode == Mode::Rping {
            2 * d.size as u64
        } else {
            r.BytesTransferred as u64
        };
        d.last_done = Some(now);
        if d.warm.is_none() && now >= d.warm_at {
            d.warm = allocs().map(|a| (a, d.completed));
        }
        if self.more(d, now) {
            let res = if d.mode == Mode::Rping {
                self.rping_start(d, now, &l)
            } else {
                self.post_next(d, now)
            };
            if let Err(st) = res {
                self.fail(d, st);
            }
        } else if d.completed >= d.posted {
            self.finish(d);
        }
    }
}

/// Connects a fresh connector for `qp` to `peer` with `hello` as private
/// data and `reads` (inbound, outbound) RDMA Read limits; returns it with
/// the server's buffer info from the reply's private data (`None`: rping,
/// whose server sends none), or a clear error. Bounded by `t`.
#[allow(clippy::too_many_arguments)]
fn connect(
    a: *mut NDK_ADAPTER,
    qp: *mut NDK_QP,
    local: SocketAddr,
    peer: SocketAddr,
    hello: Option<&[u8]>,
    reads: (u32, u32),
    t: Duration,
    on_disconnect: Option<(NDK_FN_DISCONNECT_EVENT_CALLBACK, PVOID)>,
) -> Result<(*mut NDK_CONNECTOR, RdmaInfo), PerfError> {
    let pdata = hello.unwrap_or(&[]);
    let conn = create_connector(a)?;
    let (src, src_len) = sockaddr(SocketAddr::new(local.ip(), 0));
    let (dst, dst_len) = sockaddr(peer);
    let st = sync_req(t, |ctx| match disp!(conn, NdkConnect) {
        // SAFETY: live connector and QP; addresses and private data read
        // during the call.
        Some(f) => unsafe {
            f(
                conn,
                qp,
                src.as_ptr().cast(),
                src_len,
                dst.as_ptr().cast(),
                dst_len,
                reads.0,
                reads.1,
                if pdata.is_empty() {
                    ptr::null()
                } else {
                    pdata.as_ptr().cast()
                },
                pdata.len() as ULONG,
                Some(on_request),
                ctx,
            )
        },
        None => STATUS_NOT_IMPLEMENTED,
    });
    let fail = |msg: String| {
        let _ = close_wait(conn.cast(), disp!(conn, NdkCloseConnector), t);
        Err(PerfError(msg))
    };
    match st {
        None => {
            return fail(format!(
                "no answer from {peer} within {:.1} s: is `ndkperf --server` (or, for rping, a \
                 Linux `rping -s`) running there, on the same UDP port?",
                t.as_secs_f64()
            ));
        }
        Some(STATUS_SUCCESS) => {}
        Some(STATUS_CONNECTION_REFUSED) => {
            return fail(format!(
                "{peer} rejected the connection (REJ): STATUS_CONNECTION_REFUSED"
            ));
        }
        Some(STATUS_IO_TIMEOUT) => {
            return fail(format!(
                "no RoCE peer answered at {peer} (connect timed out: STATUS_IO_TIMEOUT); \
                 is `ndkperf --server` running there?"
            ));
        }
        Some(s) => return fail(format!("connecting to {peer} failed: {}", status_name(s))),
    }
    let mut irl = 0;
    let mut orl = 0;
    let mut data = [0u8; 196];
    let mut len = data.len() as ULONG;
    let st = match disp!(conn, NdkGetConnectionData) {
        // SAFETY: live connector, buffers of the stated sizes.
        Some(f) => unsafe { f(conn, &mut irl, &mut orl, data.as_mut_ptr().cast(), &mut len) },
        None => STATUS_NOT_IMPLEMENTED,
    };
    let info = (st == STATUS_SUCCESS && len >= 20 && &data[..4] == MAGIC)
        .then(|| RdmaInfo::decode(&data[4..20]))
        .flatten();
    let info = match (hello, info) {
        (Some(_), Some(info)) => info,
        (Some(_), None) => return fail(format!("{peer} accepted but is not an ndkperf server")),
        // rping: whatever the server sent is not looked at.
        (None, _) => RdmaInfo::default(),
    };
    let st = sync_req(t, |ctx| match disp!(conn, NdkCompleteConnect) {
        // SAFETY: live connector.
        Some(f) => unsafe {
            f(
                conn,
                on_disconnect.map_or(Some(ignore_disconnect as _), |d| d.0),
                on_disconnect.map_or(ptr::null_mut(), |d| d.1),
                Some(on_request),
                ctx,
            )
        },
        None => STATUS_NOT_IMPLEMENTED,
    });
    if st != Some(STATUS_SUCCESS) {
        return fail(format!(
            "completing the connection to {peer} failed: {}",
            st.map_or("no completion".into(), status_name)
        ));
    }
    Ok((conn, info))
}

/// Disconnects and closes everything of one connection; the disconnect
/// time. Bounded by `t` per step.
fn disconnect(conn: *mut NDK_CONNECTOR, t: Duration) -> Result<Duration, PerfError> {
    let t0 = Instant::now();
    let st = sync_req(t, |ctx| match disp!(conn, NdkDisconnect) {
        // SAFETY: live connector.
        Some(f) => unsafe { f(conn, Some(on_request), ctx) },
        None => STATUS_NOT_IMPLEMENTED,
    });
    let d = t0.elapsed();
    match st {
        Some(STATUS_SUCCESS) => Ok(d),
        Some(s) => err(format!("NdkDisconnect completed with {}", status_name(s))),
        None => err(format!(
            "NdkDisconnect did not complete within {:.1} s",
            t.as_secs_f64()
        )),
    }
}

/// The adapter's live objects once every close has settled (a close the
/// provider completes inline may still have an upcall in flight on the
/// I/O thread for a moment); waits up to half a second.
fn settled_object_count(adapter: &Adapter) -> usize {
    adapter.object_count_settled(0, Duration::from_millis(500))
}

/// Runs one mode against the server at `peer` (its address and CM port).
/// Everything the provider may still call back is left in `keep`.
pub fn run(
    adapter: &Adapter,
    peer: SocketAddr,
    p: &Params,
    keep: &mut Keep,
) -> Result<Report, PerfError> {
    if p.mode == Mode::Disconnect {
        return run_disconnect(adapter, peer, p, keep);
    }
    run_one(adapter, peer, p, keep)
}

/// Runs a perftest mode (write_bw, read_bw, send_bw, send_lat, write_lat,
/// read_lat) in `shape` (`-q`, `-b`, `-a`) as the client of a Linux perftest
/// server started with `-R` (`ib_write_bw -R` …) at `peer` (its address and
/// port, 18515 by default): perftest's exchange over a control connection
/// of its own ([`crate::perftest`]), the test QPs connected to the same
/// port, the traffic polled ([`pt_traffic`]). `path_mtu` is announced in
/// the exchange. The report counts this side's messages over every size
/// and carries what the exchange learned.
pub fn run_perftest(
    adapter: &Adapter,
    peer: SocketAddr,
    p: &Params,
    shape: crate::perftest::Shape,
    path_mtu: u32,
    keep: &mut Keep,
) -> Result<Report, PerfError> {
    let _ = keep;
    let mut x = crate::perftest::Client::with_shape(p.mode, shape)?;
    let mut ctl = PtControl::open(adapter, peer, p.timeout)?;
    let mut tests: Vec<PtControl> = Vec::new();
    let mut peer_report = None;
    let res = (|| {
        x.start(&mut ctl, path_mtu)?;
        let cycle = x.remote_sys.map_or(4096, |(c, _)| c as usize).max(4096);
        let lay = PtLayout::new(shape.max_size(p.size.max(1)), cycle);
        let depth = pt_depth(p);
        let t0 = Instant::now();
        for _ in 0..shape.qps {
            // The server listens on rdma_cm once it answered the handshake
            // before the connect: a refused connect is tried again.
            tests.push(PtControl::dial(
                adapter,
                peer,
                p.timeout,
                lay.total,
                depth,
                (crate::perftest::OUT_READS, crate::perftest::OUT_READS),
                &|_, _| {},
            )?);
        }
        let connect = t0.elapsed();
        let mine: Vec<crate::perftest::Dest> = tests.iter().map(|c| pt_dest(adapter, c)).collect();
        let remote = x.after_connect(&mut ctl, &mine)?;
        let (report, peer) = pt_sizes(
            &mut x,
            &mut ctl,
            &mut tests,
            &remote,
            &mine,
            p,
            shape,
            true,
            &lay,
            adapter.received_counter(),
        )?;
        peer_report = peer;
        Ok(Report { connect, ..report })
    })();
    let mut disc = Ok(Duration::ZERO);
    for mut tc in tests {
        let t0 = Instant::now();
        let r = tc.close();
        if disc.is_ok() {
            disc = r.map(|()| t0.elapsed());
        }
    }
    let closed = ctl.close();
    let mut r = res?;
    r.disconnect = disc?;
    closed?;
    r.leaked_objects = settled_object_count(adapter);
    r.perftest = Some(PerftestPeer {
        version: x.remote_version,
        server: x.server,
        closed: x.closed,
        report: peer_report,
    });
    Ok(r)
}

/// What a perftest server told ndkperf's client.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PerftestPeer {
    /// The server's version.
    pub version: f64,
    /// The server's keys (its buffer's rkey and address).
    pub server: crate::perftest::Dest,
    /// The exchange went through to its end.
    pub closed: bool,
    /// The peer's bandwidth report (write_bw and read_bw; bidirectional
    /// send_bw), the last size's.
    pub report: Option<crate::perftest::BwReport>,
}

unsafe extern "system" fn polled_cq(_ctx: PVOID, _status: NTSTATUS) {}

/// perftest's control connection: an RC QP of its own with one receive
/// of [`crate::perftest::KEY_LEN`] bytes kept posted, driven by polling
/// from the caller's thread (control path only).
struct PtControl {
    pd: *mut NDK_PD,
    cq: *mut NDK_CQ,
    qp: *mut NDK_QP,
    conn: *mut NDK_CONNECTOR,
    buf: Option<Buf>,
    t: Duration,
    /// Which side of the exchange this is, and a message of the peer's
    /// that came ahead of its turn.
    turns: crate::perftest::Turns,
    res: [NDK_RESULT_EX; RESULTS],
    /// While set, waits go on as long as the adapter keeps receiving
    /// (the passive side waiting out the client's traffic).
    traffic: Option<Arc<AtomicU64>>,
}

const PT_SEND: usize = 64;

impl PtControl {
    /// Connects to the server's control listener, trying again while it
    /// refuses (perftest may not be listening yet), up to `t`.
    fn open(adapter: &Adapter, peer: SocketAddr, t: Duration) -> Result<PtControl, PerfError> {
        let recv = |qp: *mut NDK_QP, b: &Buf| {
            let _ = qp_recv(qp, 0, &b.sge(0, crate::perftest::KEY_LEN));
        };
        Self::dial(adapter, peer, t, 2 * PT_SEND, 2, (1, 1), &recv)
            .map_err(|e| PerfError(format!("perftest control connection: {e}")))
    }

    /// Connects a QP of `depth` requests each way with a buffer of `len`
    /// bytes (`recvs` posts its receives first) to `peer`, asking for
    /// `reads` RDMA Reads (inbound, outbound); a refused connect is tried
    /// again, 100 ms apart, up to `t` (a perftest server listens on rdma_cm
    /// only once its side of the handshake before the connect is through;
    /// perftest's own client, `rdma_cm_client_connection`, tries 10 times
    /// 100 ms apart).
    fn dial(
        adapter: &Adapter,
        peer: SocketAddr,
        t: Duration,
        len: usize,
        depth: u32,
        reads: (u32, u32),
        recvs: &dyn Fn(*mut NDK_QP, &Buf),
    ) -> Result<PtControl, PerfError> {
        let start = Instant::now();
        loop {
            match Self::try_dial(adapter, peer, t, len, depth, reads, recvs) {
                Ok(c) => return Ok(c),
                Err(e) if e.0.contains("REJ") && start.elapsed() < t => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn try_dial(
        adapter: &Adapter,
        peer: SocketAddr,
        t: Duration,
        len: usize,
        depth: u32,
        reads: (u32, u32),
        recvs: &dyn Fn(*mut NDK_QP, &Buf),
    ) -> Result<PtControl, PerfError> {
        let a = adapter.ptr();
        let mut c = PtControl {
            pd: create_pd(a)?,
            cq: ptr::null_mut(),
            qp: ptr::null_mut(),
            conn: ptr::null_mut(),
            buf: None,
            t,
            turns: crate::perftest::Turns::client(),
            res: empty_results(),
            traffic: None,
        };
        let r = (|| {
            c.cq = create_cq(a, depth * 2 + 8, Some(polled_cq), ptr::null_mut())?;
            c.qp = create_qp(c.pd, c.cq, ptr::null_mut(), depth + 2, depth + 2)?;
            let b = Buf::new(c.pd, len)?;
            recvs(c.qp, &b);
            c.buf = Some(b);
            let (conn, _) = connect(a, c.qp, adapter.local_addr(), peer, None, reads, t, None)?;
            c.conn = conn;
            Ok(())
        })();
        match r {
            Ok(()) => Ok(c),
            Err(e) => {
                let _ = c.close();
                Err(e)
            }
        }
    }

    /// Disconnects (if connected) and closes everything.
    fn close(&mut self) -> Result<(), PerfError> {
        let mut r = Ok(());
        if !self.conn.is_null() {
            r = disconnect(self.conn, self.t).map(|_| ());
            let c = self.conn;
            let _ = close_wait(c.cast(), disp!(c, NdkCloseConnector), self.t);
            self.conn = ptr::null_mut();
        }
        if !self.qp.is_null() {
            let q = self.qp;
            let _ = close_wait(q.cast(), disp!(q, NdkCloseQp), self.t);
            self.qp = ptr::null_mut();
        }
        if let Some(b) = self.buf.take() {
            let mr = b.mr;
            if close_wait(mr.cast(), disp!(mr, NdkCloseMr), self.t) {
                // SAFETY: the MR over it is closed; nothing refers to it.
                drop(unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(b.ptr, b.len)) });
            }
            drop(b);
        }
        if !self.cq.is_null() {
            let q = self.cq;
            let _ = close_wait(q.cast(), disp!(q, NdkCloseCq), self.t);
            self.cq = ptr::null_mut();
        }
        if !self.pd.is_null() {
            let p = self.pd;
            let _ = close_wait(p.cast(), disp!(p, NdkClosePd), self.t);
            self.pd = ptr::null_mut();
        }
        r
    }
}

/// Polls `cq` for its next completion, up to `t` (a failed completion is
/// an error); while `traffic` (a count of datagrams received)
/// keeps moving the wait goes on: it fails only after `t` with nothing
/// received at all. A passive side waiting for a message that follows
/// the peer's traffic waits as long as the traffic takes.
fn poll_next_while(
    cq: *mut NDK_CQ,
    res: &mut [NDK_RESULT_EX; RESULTS],
    t: Duration,
    what: &str,
    traffic: Option<&AtomicU64>,
) -> Result<NDK_RESULT_EX, PerfError> {
    let mut end = Instant::now() + t;
    let mut seen = traffic.map(|c| c.load(Ordering::Relaxed));
    loop {
        if cq_poll(cq, &mut res[..1]) == 1 {
            let r = res[0];
            if r.Status != STATUS_SUCCESS {
                return err(format!(
                    "perftest {what}: a {} completed with {}",
                    if r.Type == NdkOperationTypeReceive {
                        "receive"
                    } else {
                        "Send"
                    },
                    status_name(r.Status)
                ));
            }
            return Ok(r);
        }
        let now = Instant::now();
        if let (Some(c), Some(last)) = (traffic, seen.as_mut()) {
            let n = c.load(Ordering::Relaxed);
            if n != *last {
                *last = n;
                end = now + t;
            }
        }
        if now >= end {
            return err(format!(
                "perftest {what}: nothing completed within {:.0} s{}",
                t.as_secs_f64(),
                if traffic.is_some() {
                    " of the last datagram received"
                } else {
                    ""
                }
            ));
        }
        std::thread::sleep(Duration::from_micros(100));
    }
}

impl crate::perftest::Channel for PtControl {
    fn xchg(&mut self, mine: &[u8], what: &str) -> Result<Vec<u8>, PerfError> {
        let Some(buf) = self.buf.as_ref() else {
            return err("perftest control connection closed");
        };
        let mut q = PtQp {
            qp: self.qp,
            cq: self.cq,
            buf,
            t: self.t,
            res: &mut self.res,
            traffic: self.traffic.as_deref(),
        };
        self.turns.xchg(&mut q, mine, what)
    }
}

/// The control connection's QP, CQ and buffer (the receive area first,
/// the send area at [`PT_SEND`]) as [`crate::perftest::Turns`] drives
/// them.
struct PtQp<'a> {
    qp: *mut NDK_QP,
    cq: *mut NDK_CQ,
    buf: &'a Buf,
    t: Duration,
    res: &'a mut [NDK_RESULT_EX; RESULTS],
    traffic: Option<&'a AtomicU64>,
}

impl crate::perftest::Control for PtQp<'_> {
    fn send(&mut self, msg: &[u8], what: &str) -> Result<(), PerfError> {
        if msg.len() > PT_SEND {
            return err(format!(
                "perftest {what}: a message of {} bytes (at most {PT_SEND})",
                msg.len()
            ));
        }
        // SAFETY: the send area: the previous Send completed (an exchange
        // returns only once its Send completed).
        unsafe { self.buf.bytes_mut(PT_SEND, msg.len()).copy_from_slice(msg) };
        qp_send(self.qp, 1, &self.buf.sge(PT_SEND, msg.len()), 0).or_else(|st| {
            err(format!(
                "perftest {what}: posting the Send failed: {}",
                status_name(st)
            ))
        })
    }

    fn next(&mut self, what: &str) -> Result<crate::perftest::Completion, PerfError> {
        let r = poll_next_while(self.cq, self.res, self.t, what, self.traffic)?;
        if r.Type != NdkOperationTypeReceive {
            return Ok(crate::perftest::Completion::Sent);
        }
        let n = (r.BytesTransferred as usize).min(crate::perftest::KEY_LEN);
        // SAFETY: the receive completed; nothing lands in the receive
        // area until it is posted again, below.
        let data = unsafe { self.buf.bytes_mut(0, n).to_vec() };
        let _ = qp_recv(self.qp, 0, &self.buf.sge(0, crate::perftest::KEY_LEN));
        Ok(crate::perftest::Completion::Received(data))
    }
}

/// Connect requests a perftest server run takes, in arrival order.
#[derive(Debug, Default)]
struct PtInbox {
    q: Mutex<std::collections::VecDeque<usize>>,
    cv: Condvar,
}

unsafe extern "system" fn pt_incoming(ctx: PVOID, conn: *mut NDK_CONNECTOR) {
    // SAFETY: the inbox is kept (in `Keep`) until the adapter closes.
    let inbox = unsafe { &*ctx.cast::<PtInbox>() };
    inbox
        .q
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push_back(conn as usize);
    inbox.cv.notify_all();
}

impl PtInbox {
    fn next(&self, t: Duration) -> Option<*mut NDK_CONNECTOR> {
        let end = Instant::now() + t;
        let mut q = self.q.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(c) = q.pop_front() {
                return Some(c as *mut NDK_CONNECTOR);
            }
            let now = Instant::now();
            if now >= end {
                return None;
            }
            q = self.cv.wait_timeout(q, end - now).ok()?.0;
        }
    }
}

/// Accepts `conn` with a fresh polled CQ, a QP and a registered buffer of
/// `len` bytes, after `recvs(qp, buf)` posted its receives.
#[allow(clippy::type_complexity)]
fn pt_accept(
    adapter: &Adapter,
    conn: *mut NDK_CONNECTOR,
    len: usize,
    depth: u32,
    t: Duration,
    recvs: &dyn Fn(*mut NDK_QP, &Buf),
) -> Result<PtControl, PerfError> {
    let a = adapter.ptr();
    let mut irl = 0;
    let mut orl = 0;
    let mut data = [0u8; 64];
    let mut dlen = data.len() as ULONG;
    if let Some(f) = disp!(conn, NdkGetConnectionData) {
        // SAFETY: the event's connector; buffers of the stated sizes.
        unsafe {
            f(
                conn,
                &mut irl,
                &mut orl,
                data.as_mut_ptr().cast(),
                &mut dlen,
            )
        };
    }
    let mut c = PtControl {
        pd: create_pd(a)?,
        cq: ptr::null_mut(),
        qp: ptr::null_mut(),
        conn,
        buf: None,
        t,
        turns: crate::perftest::Turns::server(),
        res: empty_results(),
        traffic: None,
    };
    let r = (|| {
        c.cq = create_cq(a, depth * 2 + 8, Some(polled_cq), ptr::null_mut())?;
        c.qp = create_qp(c.pd, c.cq, ptr::null_mut(), depth + 2, depth + 2)?;
        let b = Buf::new(c.pd, len)?;
        recvs(c.qp, &b);
        c.buf = Some(b);
        let qp = c.qp;
        let st = sync_req(t, |ctx| match disp!(conn, NdkAccept) {
            // SAFETY: the event's connector and our QP; no private data.
            Some(f) => unsafe {
                f(
                    conn,
                    qp,
                    irl.clamp(1, 16),
                    orl.clamp(1, 16),
                    ptr::null(),
                    0,
                    Some(ignore_disconnect),
                    ptr::null_mut(),
                    Some(on_request),
                    ctx,
                )
            },
            None => STATUS_NOT_IMPLEMENTED,
        });
        if st != Some(STATUS_SUCCESS) {
            return err(format!(
                "NdkAccept: {}",
                st.map_or("no completion".into(), status_name)
            ));
        }
        Ok(())
    })();
    match r {
        Ok(()) => Ok(c),
        Err(e) => {
            let _ = c.close();
            Err(e)
        }
    }
}

/// Serves one Linux perftest client started with `-R` (`ib_write_bw -R
/// HOST` …) on `addr` (port 18515 by default) in mode `p.mode`, with
/// `p.size` and `p.iters` as the client runs them: perftest's exchange
/// over the client's control connection (the server's side: take, then
/// answer), the test QP accepted on the same listener; write_bw and
/// read_bw expose a buffer, send_bw counts the client's Sends, send_lat
/// answers each. The report counts the messages this side saw (Receives;
/// for write_bw and read_bw the iterations the client reported).
pub fn serve_perftest(
    adapter: &Adapter,
    addr: SocketAddr,
    p: &Params,
    shape: crate::perftest::Shape,
    path_mtu: u32,
    keep: &mut Keep,
) -> Result<Report, PerfError> {
    let mut x = crate::perftest::Client::with_shape(p.mode, shape)?;
    let t = p.timeout;
    let a = adapter.ptr();
    let inbox = Arc::new(PtInbox::default());
    keep.0.push(inbox.clone());
    let mut listener = ptr::null_mut();
    let st = match disp!(a, NdkCreateListener) {
        // SAFETY: live adapter; the inbox is kept until the adapter closes.
        Some(f) => unsafe {
            f(
                a,
                Some(pt_incoming),
                Arc::as_ptr(&inbox) as PVOID,
                None,
                ptr::null_mut(),
                &mut listener,
            )
        },
        None => STATUS_NOT_IMPLEMENTED,
    };
    if st != STATUS_SUCCESS || listener.is_null() {
        return err(format!("NdkCreateListener failed: {}", status_name(st)));
    }
    let close_listener = |l: *mut NDK_LISTENER| {
        let _ = close_wait(l.cast(), disp!(l, NdkCloseListener), t);
    };
    let (sa, sa_len) = sockaddr(addr);
    let st = match disp!(listener, NdkListen) {
        // SAFETY: live listener, address read during the call.
        Some(f) => unsafe { f(listener, sa.as_ptr().cast(), sa_len, None, ptr::null_mut()) },
        None => STATUS_NOT_IMPLEMENTED,
    };
    if st != STATUS_SUCCESS {
        close_listener(listener);
        return err(format!("NdkListen on {addr} failed: {}", status_name(st)));
    }
    let wait = p.iters.map_or(p.duration, |_| Duration::from_secs(120)) + t;
    let Some(conn) = inbox.next(wait) else {
        close_listener(listener);
        return err(format!("no perftest client connected to {addr}"));
    };
    let mut ctl = match pt_accept(adapter, conn, 2 * PT_SEND, 2, t, &|qp, b| {
        let _ = qp_recv(qp, 0, &b.sge(0, crate::perftest::KEY_LEN));
    }) {
        Ok(c) => c,
        Err(e) => {
            close_listener(listener);
            return Err(e);
        }
    };
    let mut tests: Vec<PtControl> = Vec::new();
    let mut peer_report = None;
    let res = (|| {
        x.start(&mut ctl, path_mtu)?;
        let cycle = x.remote_sys.map_or(4096, |(c, _)| c as usize).max(4096);
        // perftest's exchange announces no message size before the
        // traffic (`struct pingpong_dest` has none), so a passive side
        // (write_bw, read_bw one way, read_lat) exposes room for the
        // largest any perftest client sends, its `-a` maximum: the
        // memory is zeroed pages, taken from the system as they are
        // touched.
        let passive =
            !shape.duplex && matches!(p.mode, Mode::WriteBw | Mode::ReadBw | Mode::ReadLat);
        let max = if passive {
            p.size.max(crate::perftest::ALL_MAX)
        } else {
            shape.max_size(p.size.max(1))
        };
        let lay = PtLayout::new(max, cycle);
        let depth = pt_depth(p);
        // perftest's client connects its -q test QPs at once
        // (`_rdma_cm_client_connection`); each is accepted in turn.
        for i in 0..shape.qps {
            let Some(tconn) = inbox.next(t) else {
                return err(format!(
                    "the perftest client connected {i} of {} test QPs within {:.0} s",
                    shape.qps,
                    t.as_secs_f64()
                ));
            };
            tests.push(pt_accept(adapter, tconn, lay.total, depth, t, &|_, _| {})?);
        }
        let mine: Vec<crate::perftest::Dest> = tests.iter().map(|c| pt_dest(adapter, c)).collect();
        let remote = x.after_connect(&mut ctl, &mine)?;
        let (report, peer) = pt_sizes(
            &mut x,
            &mut ctl,
            &mut tests,
            &remote,
            &mine,
            p,
            shape,
            false,
            &lay,
            adapter.received_counter(),
        )?;
        peer_report = peer;
        Ok(report)
    })();
    // The client tears its connections down; this side's disconnects
    // complete either way.
    let mut closed = Ok(());
    for mut tc in tests {
        let r = tc.close();
        if closed.is_ok() {
            closed = r;
        }
    }
    let c2 = ctl.close();
    close_listener(listener);
    let mut report = res?;
    closed?;
    c2?;
    report.leaked_objects = settled_object_count(adapter);
    report.perftest = Some(PerftestPeer {
        version: x.remote_version,
        server: x.server,
        closed: x.closed,
        report: peer_report,
    });
    Ok(report)
}

/// A perftest test connection's buffer: the region the peer writes into
/// and reads from first (its keys' address), then this side's source
/// and sink. The peer moves its remote address within its cycle buffer
/// for messages of up to half of it (perftest_resources.c,
/// `run_iter_bw`), so the exposed region is twice the larger of the two.
#[derive(Debug, Clone, Copy)]
struct PtLayout {
    /// Offset of this side's source (RDMA Write, Send) and sink (RDMA
    /// Read) area.
    local: usize,
    /// Whole buffer.
    total: usize,
}

impl PtLayout {
    fn new(max_size: usize, cycle: usize) -> PtLayout {
        let local = max_size.max(cycle) * 2;
        PtLayout {
            local,
            total: local + max_size.max(64),
        }
    }
}

/// Requests each way on a test QP: the window, and for the Send modes
/// room for perftest's receive ring (`DEF_RX_SEND`, 512).
fn pt_depth(p: &Params) -> u32 {
    match p.mode {
        Mode::SendBw | Mode::SendLat => 512,
        _ => p.window.clamp(1, 1024) + 2,
    }
}

/// A test connection's keys as perftest's `set_up_connection` fills them
/// (the exposed region's address and the buffer's token).
fn pt_dest(adapter: &Adapter, c: &PtControl) -> crate::perftest::Dest {
    let (vaddr, rkey) = c.buf.as_ref().map_or((0, 0), |b| (b.addr(0), b.token));
    crate::perftest::Dest {
        out_reads: crate::perftest::OUT_READS,
        psn: (vaddr as u32 ^ 0x5a5a5a) & 0xff_ffff,
        rkey,
        vaddr,
        gid: match adapter.local_addr().ip() {
            std::net::IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
            std::net::IpAddr::V6(v6) => v6.octets(),
        },
        ..Default::default()
    }
}

/// Every size of a run after the keys: per size the receives, the sync
/// before it, the traffic and what follows it; then the end of the
/// exchange. `client` is this side's role. Returns this side's report
/// (its messages and bytes summed over the sizes, the last size's
/// latencies) and the peer's last bandwidth report.
#[allow(clippy::too_many_arguments)]
fn pt_sizes(
    x: &mut crate::perftest::Client,
    ctl: &mut PtControl,
    tests: &mut [PtControl],
    remote: &[crate::perftest::Dest],
    mine: &[crate::perftest::Dest],
    p: &Params,
    shape: crate::perftest::Shape,
    client: bool,
    lay: &PtLayout,
    traffic: Arc<AtomicU64>,
) -> Result<(Report, Option<crate::perftest::BwReport>), PerfError> {
    // Every wait of the exchange from here on may span the peer's
    // traffic: it goes on as long as datagrams keep arriving.
    ctl.traffic = Some(traffic);
    let r = pt_sizes_inner(x, ctl, tests, remote, mine, p, shape, client, lay);
    ctl.traffic = None;
    r
}

#[allow(clippy::too_many_arguments)]
fn pt_sizes_inner(
    x: &mut crate::perftest::Client,
    ctl: &mut PtControl,
    tests: &mut [PtControl],
    remote: &[crate::perftest::Dest],
    mine: &[crate::perftest::Dest],
    p: &Params,
    shape: crate::perftest::Shape,
    client: bool,
    lay: &PtLayout,
) -> Result<(Report, Option<crate::perftest::BwReport>), PerfError> {
    let first = mine[0];
    // A one-directional write_bw or read_bw server and a read_lat server
    // only wait: the client's traffic is one-sided, and its next message
    // comes when that traffic is done.
    let idle =
        !client && !shape.duplex && matches!(p.mode, Mode::WriteBw | Mode::ReadBw | Mode::ReadLat);
    let mut total = Report::default();
    let mut last = (Report::default(), p.size);
    let mut peer = None;
    if !idle {
        for size in shape.sizes(p.size.max(1)) {
            let pre = pt_post_receives(tests, p, shape, client, size)?;
            x.before_size(ctl, &first)?;
            let r = pt_traffic(tests, remote, p, shape, client, size, lay, &pre)?;
            if let Some(b) = x.after_size(ctl, &first, &r, size)? {
                peer = Some(b);
            }
            total.messages += r.messages;
            total.bytes += r.bytes;
            total.elapsed += r.elapsed;
            total.lat = r.lat.clone();
            last = (r, size);
        }
    }
    let waited = Instant::now();
    if let Some(b) = x.finish(ctl, &first, &last.0, last.1)? {
        peer = Some(b);
    }
    // A waiting server's traffic was the client's alone: what it ran
    // (iterations or -D seconds) is in its report. Its time is the one the
    // client measured; where the report gives no bandwidth (perftest's -D
    // runs sometimes report 0), the time this side waited for the traffic
    // to end.
    if let (true, Some(b)) = (idle, peer) {
        total.messages = b.iters;
        total.bytes = b.iters * b.size;
        total.elapsed = if b.bw_avg_mbs.is_finite() && b.bw_avg_mbs > 0.0 {
            Duration::from_secs_f64(total.bytes as f64 / (b.bw_avg_mbs * (1 << 20) as f64))
        } else {
            waited.elapsed()
        };
    }
    Ok((total, peer))
}

/// Posts one size's receives on each test connection before the sync
/// that lets the peer send (send_bw.c and send_lat.c post theirs with
/// `ctx_set_recv_wqes` ahead of that handshake): the receiving side of
/// send_bw as many as the window of the QP allows, up to the size's
/// messages; send_lat two. Returns how many each connection got.
fn pt_post_receives(
    tests: &[PtControl],
    p: &Params,
    shape: crate::perftest::Shape,
    client: bool,
    size: usize,
) -> Result<Vec<u64>, PerfError> {
    let per = match p.mode {
        Mode::SendBw if !client || shape.duplex => pt_depth(p) as u64,
        Mode::SendLat => 2,
        _ => 0,
    };
    let per = p.iters.map_or(per, |n| per.min(n));
    let mut out = Vec::with_capacity(tests.len());
    for tc in tests {
        let Some(b) = tc.buf.as_ref() else {
            return err("perftest: a test connection without its buffer");
        };
        for _ in 0..per {
            qp_recv(tc.qp, 0, &b.sge(0, size)).or_else(|st| {
                err(format!(
                    "perftest {}: posting a receive failed: {}",
                    p.mode.name(),
                    status_name(st)
                ))
            })?;
        }
        out.push(per);
    }
    Ok(out)
}

/// One test connection's counts in [`pt_traffic`].
#[derive(Debug, Clone, Copy, Default)]
struct Lane {
    posted: u64,
    done: u64,
    recv_posted: u64,
    received: u64,
    t_post: Option<Instant>,
}

/// One size's traffic on every test connection, polled: this side's part
/// of perftest's `run_iter_bw` (RDMA Writes or Reads to the peer's keys,
/// or Sends, `p.window` outstanding per QP), `run_iter_bw_server` (the
/// receives), `run_iter_bi` (both, `-b`), `run_iter_lat` (read_lat: one
/// Read at a time), `run_iter_lat_send` (send_lat: the client Sends
/// first, each side Sends when it received) and `run_iter_lat_write`
/// ([`pt_write_lat`]); all in perftest_resources.c. `pre` is what
/// [`pt_post_receives`] posted. Fails when nothing completes for the
/// step bound.
#[allow(clippy::too_many_arguments)]
fn pt_traffic(
    tests: &[PtControl],
    remote: &[crate::perftest::Dest],
    p: &Params,
    shape: crate::perftest::Shape,
    client: bool,
    size: usize,
    lay: &PtLayout,
    pre: &[u64],
) -> Result<Report, PerfError> {
    let mode = p.mode;
    if mode == Mode::WriteLat {
        return pt_write_lat(tests, remote, p, client, size, lay);
    }
    let sends = match mode {
        Mode::WriteBw | Mode::ReadBw | Mode::SendBw => client || shape.duplex,
        Mode::ReadLat => client,
        _ => true,
    };
    let recvs = match mode {
        Mode::SendBw => !client || shape.duplex,
        Mode::SendLat => true,
        _ => false,
    };
    let pingpong = mode == Mode::SendLat;
    let window = if mode.is_latency() {
        1
    } else {
        u64::from(p.window.max(1))
    };
    let target = p.iters;
    let start = Instant::now();
    let deadline = start + p.duration;
    let mut lanes: Vec<Lane> = pre
        .iter()
        .map(|&n| Lane {
            recv_posted: n,
            ..Lane::default()
        })
        .collect();
    let mut res = empty_results();
    let mut report = Report::default();
    let mut lat = Vec::with_capacity(target.map_or(1 << 16, |n| n.min(1 << 22)) as usize);
    let mut first_post = None;
    let mut last_done = start;
    let mut last_progress = start;
    let fail = |what: String| -> Result<Report, PerfError> {
        err(format!("perftest {} ({size} B): {what}", mode.name()))
    };
    loop {
        let now = Instant::now();
        let more = |l: &Lane| target.map_or(now < deadline, |n| l.posted < n);
        for (i, tc) in tests.iter().enumerate() {
            let l = &mut lanes[i];
            let Some(b) = tc.buf.as_ref() else {
                return fail("a test connection without its buffer".into());
            };
            if !sends {
                continue;
            }
            loop {
                let may = if pingpong {
                    l.posted < l.received + u64::from(client)
                } else {
                    l.posted - l.done < window
                };
                if !(may && more(l)) {
                    break;
                }
                let sge = b.sge(lay.local, size);
                let r = &remote[i];
                let st = match mode {
                    Mode::WriteBw => qp_write(tc.qp, 0, &sge, r.vaddr, r.rkey),
                    Mode::ReadBw | Mode::ReadLat => qp_read(tc.qp, 0, &sge, r.vaddr, r.rkey),
                    _ => qp_send(tc.qp, 0, &sge, 0),
                };
                if let Err(st) = st {
                    return fail(format!("posting failed: {}", status_name(st)));
                }
                first_post.get_or_insert(now);
                l.t_post = Some(now);
                l.posted += 1;
            }
        }
        let mut progressed = false;
        for (i, tc) in tests.iter().enumerate() {
            let l = &mut lanes[i];
            loop {
                let n = cq_poll(tc.cq, &mut res);
                for r in &res[..n] {
                    progressed = true;
                    let now = Instant::now();
                    if r.Status != STATUS_SUCCESS {
                        let op = if r.Type == NdkOperationTypeReceive {
                            "receive"
                        } else {
                            "request"
                        };
                        return fail(format!(
                            "a {op} on test QP {i} completed with {} after {} of {} messages",
                            status_name(r.Status),
                            l.done.max(l.received),
                            target.map_or("?".into(), |n| n.to_string())
                        ));
                    }
                    if r.Type == NdkOperationTypeReceive {
                        l.received += 1;
                        if !sends {
                            report.bytes += u64::from(r.BytesTransferred);
                            last_done = now;
                        }
                        if pingpong && let Some(t) = l.t_post {
                            lat.push((now - t).as_nanos() as u64);
                        }
                        if target.is_none_or(|n| l.recv_posted < n) {
                            let Some(b) = tc.buf.as_ref() else { continue };
                            let _ = qp_recv(tc.qp, 0, &b.sge(0, size));
                            l.recv_posted += 1;
                        }
                    } else {
                        l.done += 1;
                        report.bytes += u64::from(r.BytesTransferred);
                        last_done = now;
                        if mode == Mode::ReadLat
                            && let Some(t) = l.t_post
                        {
                            lat.push((now - t).as_nanos() as u64);
                        }
                    }
                }
                if n < RESULTS {
                    break;
                }
            }
        }
        let now = Instant::now();
        let more = |l: &Lane| target.map_or(now < deadline, |n| l.posted < n);
        let sent = !sends || lanes.iter().all(|l| !more(l) && l.done == l.posted);
        let got = !recvs
            || lanes.iter().all(|l| match target {
                Some(n) => l.received >= n,
                None => !sends || l.received >= l.posted,
            });
        if sent && got {
            break;
        }
        if progressed {
            last_progress = now;
        } else if now - last_progress > p.timeout {
            let done: u64 = lanes.iter().map(|l| l.done).sum();
            let got: u64 = lanes.iter().map(|l| l.received).sum();
            return fail(format!(
                "nothing completed within {:.0} s ({done} requests and {got} receives \
                 completed on {} test QPs)",
                p.timeout.as_secs_f64(),
                tests.len()
            ));
        } else {
            std::thread::yield_now();
        }
    }
    report.messages = if sends {
        lanes.iter().map(|l| l.done).sum()
    } else {
        lanes.iter().map(|l| l.received).sum()
    };
    report.elapsed = last_done.saturating_duration_since(first_post.unwrap_or(start));
    lat.sort_unstable();
    report.lat = Samples(lat);
    Ok(report)
}

/// write_lat's ping-pong (perftest_resources.c, `run_iter_lat_write`): each
/// side RDMA-Writes `size` bytes to the other's keys, the last byte its
/// count of writes so far, and writes its next once the peer's write of
/// the same count has landed in the last byte of its own exposed region;
/// the server writes first (its `machine == SERVER` skips the first
/// wait). The first test QP only, as perftest.
fn pt_write_lat(
    tests: &[PtControl],
    remote: &[crate::perftest::Dest],
    p: &Params,
    client: bool,
    size: usize,
    lay: &PtLayout,
) -> Result<Report, PerfError> {
    let fail = |what: String| -> Result<Report, PerfError> {
        err(format!("perftest write_lat ({size} B): {what}"))
    };
    let (Some(tc), Some(r)) = (tests.first(), remote.first()) else {
        return fail("no test QP".into());
    };
    let Some(b) = tc.buf.as_ref() else {
        return fail("no buffer".into());
    };
    let Some(target) = p.iters else {
        return fail("perftest's write_lat against ndkperf needs -n".into());
    };
    let size = size.max(1);
    let poll_at = b.ptr.wrapping_add(size - 1);
    let post_at = lay.local + size - 1;
    let (mut scnt, mut rcnt, mut ccnt) = (0u64, 0u64, 0u64);
    let mut res = empty_results();
    let mut lat = Vec::with_capacity(target.min(1 << 22) as usize);
    let start = Instant::now();
    let mut t_post = start;
    let mut last_progress = start;
    let send = |k: u64| {
        // SAFETY: the source byte: the write that last carried it was
        // answered by the peer's, so it left.
        unsafe { b.bytes_mut(post_at, 1)[0] = k as u8 };
        qp_write(tc.qp, 0, &b.sge(lay.local, size), r.vaddr, r.rkey)
    };
    if !client {
        scnt = 1;
        if let Err(st) = send(1) {
            return fail(format!("posting failed: {}", status_name(st)));
        }
    }
    loop {
        let now = Instant::now();
        let mut progressed = false;
        if rcnt < target {
            // SAFETY: inside the buffer; the peer's RDMA Write lands
            // there, so the byte is read volatile.
            let v = unsafe { ptr::read_volatile(poll_at) };
            if v == (rcnt + 1) as u8 {
                rcnt += 1;
                progressed = true;
                if scnt > 0 {
                    lat.push((now - t_post).as_nanos() as u64);
                }
                if scnt < target {
                    scnt += 1;
                    t_post = Instant::now();
                    if let Err(st) = send(scnt) {
                        return fail(format!("posting failed: {}", status_name(st)));
                    }
                }
            }
        }
        let n = cq_poll(tc.cq, &mut res);
        for c in &res[..n] {
            progressed = true;
            if c.Status != STATUS_SUCCESS {
                return fail(format!(
                    "an RDMA Write completed with {} after {ccnt} of {target}",
                    status_name(c.Status)
                ));
            }
            ccnt += 1;
        }
        if rcnt == target && scnt == target && ccnt == scnt {
            break;
        }
        if progressed {
            last_progress = now;
        } else if now - last_progress > p.timeout {
            return fail(format!(
                "nothing happened within {:.0} s ({scnt} written, {rcnt} received, {ccnt} completed)",
                p.timeout.as_secs_f64()
            ));
        } else {
            // The adapter's I/O thread may share this core.
            std::thread::yield_now();
        }
    }
    lat.sort_unstable();
    Ok(Report {
        messages: scnt,
        bytes: scnt * size as u64,
        elapsed: start.elapsed(),
        lat: Samples(lat),
        ..Report::default()
    })
}

fn run_one(
    adapter: &Adapter,
    peer: SocketAddr,
    p: &Params,
    keep: &mut Keep,
) -> Result<Report, PerfError> {
    let a = adapter.ptr();
    let size = p.size.max(1);
    let window = if p.mode.is_latency() {
        1
    } else {
        p.window.max(1) as u64
    };
    let l = Layout::of(p);
    let cap = p.iters.map_or(1 << 20, |n| n.min(1 << 22)) as usize;
    let run = Arc::new(ClientRun {
        cq: AtomicPtr::new(ptr::null_mut()),
        qp: AtomicPtr::new(ptr::null_mut()),
        buf: OnceLock::new(),
        drive: Drive::default(),
        dp: UnsafeCell::new(CData {
            mode: p.mode,
            size,
            window,
            target: p.iters,
            deadline: None,
            warm_at: Instant::now(),
            posted: 0,
            completed: 0,
            bytes: 0,
            first_post: None,
            last_done: None,
            t_post: Instant::now(),
            lat: if p.mode.is_latency() {
                Vec::with_capacity(cap)
            } else {
                Vec::new()
            },
            remote: RdmaInfo::default(),
            error: None,
            done: false,
            verify_errors: 0,
            rping_iter: 0,
            rping_phase: 0,
            rping_bogus: None,
            warm: None,
            end: None,
            res: empty_results(),
        }),
        finished: Signal::default(),
        peer_left: AtomicBool::new(false),
    });
    keep.0.push(run.clone());
    let pd = create_pd(a)?;
    let close_pd = |t| {
        let _ = close_wait(pd.cast(), disp!(pd, NdkClosePd), t);
    };
    let cq = match create_cq(a, 4096, Some(client_cq), Arc::as_ptr(&run) as PVOID) {
        Ok(c) => c,
        Err(e) => {
            close_pd(p.timeout);
            return Err(e);
        }
    };
    run.cq.store(cq, Ordering::Release);
    let depth = (window as u32 + 4).min(4096);
    let qp = match create_qp(pd, cq, ptr::null_mut(), 4, depth) {
        Ok(q) => q,
        Err(e) => {
            let _ = close_wait(cq.cast(), disp!(cq, NdkCloseCq), p.timeout);
            close_pd(p.timeout);
            return Err(e);
        }
    };
    run.qp.store(qp, Ordering::Release);
    let buf = match Buf::new(pd, l.total) {
        Ok(b) => b,
        Err(e) => {
            let _ = close_wait(qp.cast(), disp!(qp, NdkCloseQp), p.timeout);
            let _ = close_wait(cq.cast(), disp!(cq, NdkCloseCq), p.timeout);
            close_pd(p.timeout);
            return Err(e);
        }
    };
    let mr = buf.mr;
    let _ = run.buf.set(buf);
    let b = run.buf();
    // Receives for the modes that get Sends back.
    if matches!(p.mode, Mode::SendLat | Mode::Rping) {
        for i in 0..2 {
            let len = if p.mode == Mode::Rping {
                RdmaInfo::LEN
            } else {
                size
            };
            let _ = qp_recv(qp, i, &b.sge(l.recv + i * l.recv_slot, len));
        }
    }
    let hello = Hello {
        mode: p.mode,
        size: size as u32,
        depth: (window as u32 * 2).max(8),
    }
    .encode();
    // rping connects as rping does: no private data, one RDMA Read each
    // way.
    let (hello, reads) = if p.mode == Mode::Rping {
        (None, (1, 1))
    } else {
        (Some(&hello[..]), (16, 16))
    };
    let teardown = |conn: Option<*mut NDK_CONNECTOR>| {
        if let Some(c) = conn {
            let _ = close_wait(c.cast(), disp!(c, NdkCloseConnector), p.timeout);
        }
        let _ = close_wait(qp.cast(), disp!(qp, NdkCloseQp), p.timeout);
        let _ = close_wait(mr.cast(), disp!(mr, NdkCloseMr), p.timeout);
        let _ = close_wait(cq.cast(), disp!(cq, NdkCloseCq), p.timeout);
        close_pd(p.timeout);
    };
    let t0 = Instant::now();
    let on_disc = (
        Some(client_peer_disconnected as unsafe extern "system" fn(PVOID)),
        Arc::as_ptr(&run) as PVOID,
    );
    let (conn, remote) = match connect(
        a,
        qp,
        adapter.local_addr(),
        peer,
        hello,
        reads,
        p.timeout,
        Some(on_disc),
    ) {
        Ok(x) => x,
        Err(e) => {
            teardown(None);
            return Err(e);
        }
    };
    let connect_time = t0.elapsed();
    // Start: the first window, posted under the drive.
    let start = Instant::now();
    let mut started = Ok(());
    {
        let _g = run.drive.lock.lock();
        run.drive.missed.store(false, Ordering::SeqCst);
        // SAFETY: the drive is held.
        let d = unsafe { &mut *run.dp.get() };
        d.remote = remote;
        if p.iters.is_none() {
            d.deadline = Some(start + p.duration);
        }
        d.warm_at = start + p.duration.min(Duration::from_secs(60)) / 10;
        if p.iters.is_some() {
            // Iteration-bounded runs warm up over the first tenth.
            d.warm_at = start;
        }
        for _ in 0..window {
            if !run.more(d, start) {
                break;
            }
            let r = if p.mode == Mode::Rping {
                run.rping_start(d, start, &l)
            } else {
                run.post_next(d, start)
            };
            if let Err(st) = r {
                started = Err(st);
                break;
            }
        }
        if d.posted == 0 {
            run.finish(d);
        }
    }
    run.drive.run(|| run.service());
    let bound = p.iters.map_or(p.duration + Duration::from_secs(10), |_| {
        Duration::from_secs(120)
    });
    let outcome = run.finished.wait(bound);
    // A disconnect event can overtake the completion that explains it (a
    // request's error status): drain the CQ once, so that a failed
    // request's status is the reason given.
    run.drive.run(|| run.service());
    // Snapshot what the data path measured (the drive is idle or stops
    // touching the state once `done`).
    let bogus;
    let data_error;
    let mut report = {
        let _g = run.drive.lock.lock();
        // SAFETY: the drive is held.
        let d = unsafe { &mut *run.dp.get() };
        d.done = true;
        let mut lat = std::mem::take(&mut d.lat);
        lat.sort_unstable();
        let allocs_per_msg = match (d.warm, d.end) {
            (Some((a0, m0)), Some((a1, m1))) if m1 > m0 => {
                Some((a1.saturating_sub(a0)) as f64 / (m1 - m0) as f64)
            }
            _ => None,
        };
        bogus = d.rping_bogus;
        data_error = d.error.filter(|&e| e != STATUS_CANCELLED);
        Report {
            messages: d.completed,
            bytes: d.bytes,
            elapsed: match (d.first_post, d.last_done) {
                (Some(a), Some(b)) => b.saturating_duration_since(a),
                _ => Duration::ZERO,
            },
            lat: Samples(lat),
            verify_errors: d.verify_errors,
            allocs_per_msg,
            alloc_window_msgs: match (d.warm, d.end) {
                (Some((_, m0)), Some((_, m1))) => m1.saturating_sub(m0),
                _ => 0,
            },
            connect: connect_time,
            ..Report::default()
        }
    };
    let disc = disconnect(conn, p.timeout);
    teardown(Some(conn));
    report.leaked_objects = settled_object_count(adapter);
    if let Err(st) = started {
        return err(format!("posting failed: {}", status_name(st)));
    }
    match outcome {
        Some(STATUS_SUCCESS) => {}
        Some(_) if bogus.is_some() => {
            return err(format!(
                "rping: {peer} sent a {}-byte message; rping's messages are {} bytes",
                bogus.unwrap_or(0),
                RdmaInfo::LEN
            ));
        }
        Some(_) if data_error.is_some() => {
            return err(format!(
                "{}: a request completed with {} after {} messages",
                p.mode.name(),
                status_name(data_error.unwrap_or_default()),
                report.messages
            ));
        }
        Some(_) if run.peer_left.load(Ordering::SeqCst) => {
            return err(format!(
                "{}: the connection to {peer} ended (disconnect event: \
                 STATUS_CONNECTION_DISCONNECTED) after {} of {} messages",
                p.mode.name(),
                report.messages,
                p.iters.map_or("?".into(), |n| n.to_string())
            ));
        }
        Some(st) => {
            return err(format!(
                "{}: a request completed with {}",
                p.mode.name(),
                status_name(st)
            ));
        }
        None => {
            return err(format!(
                "{}: the run did not finish within {:.0} s ({} of {} messages completed)",
                p.mode.name(),
                bound.as_secs_f64(),
                report.messages,
                p.iters.map_or("?".into(), |n| n.to_string())
            ));
        }
    }
    report.disconnect = disc?;
    Ok(report)
}

// ---------------------------------------------------------------------
// The disconnect mode: N connections

struct Rec {
    qp: AtomicPtr<NDK_QP>,
    conn: AtomicPtr<NDK_CONNECTOR>,
    status: AtomicI32,
    comps: AtomicU32,
    t: [AtomicU64; 7],
}

const T_CONNECT: usize = 0;
const T_REPLIED: usize = 1;
const T_ESTABLISHED: usize = 2;
const T_TRAFFIC: usize = 3;
const T_DISC: usize = 4;
const T_DISCONNECTED: usize = 5;
const T_CLOSED: usize = 6;

struct DiscRun {
    adapter: *mut NDK_ADAPTER,
    local: SocketAddr,
    peer: SocketAddr,
    epoch: Instant,
    recs: Box<[Rec]>,
    buf: OnceLock<Buf>,
    cq: AtomicPtr<NDK_CQ>,
    drive: Drive,
    hello: [u8; Hello::LEN],
    next_connect: AtomicU64,
    connect_turns: AtomicU64,
    traffic_done: AtomicU64,
    next_disc: AtomicU64,
    disc_turns: AtomicU64,
    closed: AtomicU64,
    burst_from: AtomicU64,
    phase1: Signal,
    phase2: Signal,
    res: UnsafeCell<[NDK_RESULT_EX; RESULTS]>,
}

// SAFETY: `res` is reached only under `drive`; the rest is atomics and
// provider pointers.
unsafe impl Send for DiscRun {}
// SAFETY: as above.
unsafe impl Sync for DiscRun {}

unsafe extern "system" fn disc_cq(ctx: PVOID, _status: NTSTATUS) {
    // SAFETY: the DiscRun is kept until the adapter closes.
    let r = unsafe { &*ctx.cast::<DiscRun>() };
    r.drive.run(|| r.service());
}

impl DiscRun {
    fn now(&self) -> u64 {
        (self.epoch.elapsed().as_nanos() as u64).max(1)
    }
    fn n(&self) -> u64 {
        self.recs.len() as u64
    }

    fn service(&self) {
        let cq = self.cq.load(Ordering::Acquire);
        // SAFETY: the drive is held.
        let res = unsafe { &mut *self.res.get() };
        loop {
            let n = cq_poll(cq, res);
            for r in &res[..n] {
                let Some(rec) = self.recs.get(r.QPContext as usize) else {
                    continue;
                };
                if r.Status != STATUS_SUCCESS {
                    let _ = rec.status.compare_exchange(
                        STATUS_SUCCESS,
                        r.Status,
                        Ordering::AcqRel,
                        Ordering::Relaxed,
                    );
                }
                if rec.comps.fetch_add(1, Ordering::AcqRel) + 1 == 2 {
                    rec.t[T_TRAFFIC].store(self.now(), Ordering::Release);
                    self.traffic_finished();
                }
            }
            if n < RESULTS {
                break;
            }
        }
        cq_arm(cq);
    }

    fn traffic_finished(&self) {
        if self.traffic_done.fetch_add(1, Ordering::AcqRel) + 1 == self.n() {
            self.phase1.set(STATUS_SUCCESS);
        }
    }

    /// Issues the next connect, if any is left (see [`trampoline`]: a
    /// connect that fails inline starts the next without recursing).
    fn connect_next(self: &Arc<Self>) {
        trampoline(&self.connect_turns, || self.connect_one());
    }

    fn connect_one(self: &Arc<Self>) {
        let i = self.next_connect.fetch_add(1, Ordering::AcqRel);
        if i >= self.n() {
            return;
        }
        let i = i as usize;
        let rec = &self.recs[i];
        let qp = rec.qp.load(Ordering::Acquire);
        let conn = rec.conn.load(Ordering::Acquire);
        let (src, src_len) = sockaddr(SocketAddr::new(self.local.ip(), 0));
        let (dst, dst_len) = sockaddr(self.peer);
        let me = Arc::clone(self);
        let r = Req::new(move |st| me.connected(i, st));
        let ctx = r.ctx();
        rec.t[T_CONNECT].store(self.now(), Ordering::Release);
        let st = match disp!(conn, NdkConnect) {
            // SAFETY: live connector and QP; data read during the call.
            Some(f) => unsafe {
                f(
                    conn,
                    qp,
                    src.as_ptr().cast(),
                    src_len,
                    dst.as_ptr().cast(),
                    dst_len,
                    4,
                    4,
                    self.hello.as_ptr().cast(),
                    self.hello.len() as ULONG,
                    Some(on_request),
                    ctx,
                )
            },
            None => STATUS_NOT_IMPLEMENTED,
        };
        r.finish(st);
    }

    /// The connect completed: complete it, run its traffic, start the
    /// next connect.
    fn connected(self: &Arc<Self>, i: usize, st: NTSTATUS) {
        let rec = &self.recs[i];
        rec.t[T_REPLIED].store(self.now(), Ordering::Release);
        let fail = |st: NTSTATUS| {
            rec.status.store(st, Ordering::Release);
            // Counts as "traffic done" so the phase ends.
            rec.comps.store(2, Ordering::Release);
            self.traffic_finished();
        };
        let conn = rec.conn.load(Ordering::Acquire);
        let mut ok = st == STATUS_SUCCESS;
        let mut remote = RdmaInfo::default();
        if ok {
            let mut irl = 0;
            let mut orl = 0;
            let mut data = [0u8; 196];
            let mut len = data.len() as ULONG;
            if let Some(f) = disp!(conn, NdkGetConnectionData) {
                // SAFETY: live connector; buffers of the stated sizes.
                unsafe { f(conn, &mut irl, &mut orl, data.as_mut_ptr().cast(), &mut len) };
            }
            remote = RdmaInfo::decode(data.get(4..20).unwrap_or(&[])).unwrap_or_default();
            let cc = match disp!(conn, NdkCompleteConnect) {
                // SAFETY: live connector.
                Some(f) => unsafe {
                    f(
                        conn,
                        Some(ignore_disconnect),
                        ptr::null_mut(),
                        None,
                        ptr::null_mut(),
                    )
                },
                None => STATUS_NOT_IMPLEMENTED,
            };
            ok = cc == STATUS_SUCCESS;
            if !ok {
                fail(cc);
            }
        } else {
            fail(st);
        }
        if ok {
            rec.t[T_ESTABLISHED].store(self.now(), Ordering::Release);
            let qp = rec.qp.load(Ordering::Acquire);
            if let Some(b) = self.buf.get() {
                let sge = b.sge((i % 1024) * 64, 64);
                let a = qp_send(qp, i, &sge, 0);
                let w = qp_write(qp, i, &sge, remote.buf, remote.rkey);
                if let Err(st) = a.and(w) {
                    fail(st);
                }
            }
        }
        self.connect_next();
    }

    /// Disconnects connection `i`; closes its QP and connector after.
    fn disconnect(self: &Arc<Self>, i: usize, chain: bool, done: Option<Arc<Signal>>) {
        let rec = &self.recs[i];
        let conn = rec.conn.load(Ordering::Acquire);
        let me = Arc::clone(self);
        let r = Req::new(move |st| {
            let rec = &me.recs[i];
            rec.t[T_DISCONNECTED].store(me.now(), Ordering::Release);
            if st != STATUS_SUCCESS {
                let _ = rec.status.compare_exchange(
                    STATUS_SUCCESS,
                    st,
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                );
            }
            if chain {
                me.disconnect_next();
            }
            me.close(i, done);
        });
        let ctx = r.ctx();
        rec.t[T_DISC].store(self.now(), Ordering::Release);
        let st = if rec.status.load(Ordering::Acquire) == STATUS_SUCCESS {
            match disp!(conn, NdkDisconnect) {
                // SAFETY: live connector.
                Some(f) => unsafe { f(conn, Some(on_request), ctx) },
                None => STATUS_NOT_IMPLEMENTED,
            }
        } else {
            // Never connected: nothing to disconnect.
            STATUS_SUCCESS
        };
        r.finish(st);
    }

    fn disconnect_next(self: &Arc<Self>) {
        trampoline(&self.disc_turns, || {
            let i = self.next_disc.fetch_add(1, Ordering::AcqRel);
            if i < self.n() {
                self.disconnect(i as usize, true, None);
            }
        });
    }

    fn close(self: &Arc<Self>, i: usize, done: Option<Arc<Signal>>) {
        let rec = &self.recs[i];
        let qp = rec.qp.load(Ordering::Acquire);
        let conn = rec.conn.load(Ordering::Acquire);
        let qp = qp as usize;
        let me = Arc::clone(self);
        close_then(conn.cast(), disp!(conn, NdkCloseConnector), move |_| {
            let qp = qp as *mut NDK_QP;
            let me2 = Arc::clone(&me);
            close_then(qp.cast(), disp!(qp, NdkCloseQp), move |_| {
                me2.recs[i].t[T_CLOSED].store(me2.now(), Ordering::Release);
                if let Some(s) = done {
                    s.set(STATUS_SUCCESS);
                }
                if me2.closed.fetch_add(1, Ordering::AcqRel) + 1 == me2.n() {
                    me2.phase2.set(STATUS_SUCCESS);
                }
            });
        });
    }
}

/// Runs `f` once per call, never nested: a call made from inside `f` (a
/// request that completed inline and starts the next one) or meanwhile on
/// another thread only counts, and the loop already running makes it. The
/// stack stays flat however many requests in a row complete inline (30000
/// connects past the 16384 ephemeral ports each failed inline and started
/// the next from inside the last: a stack overflow).
fn trampoline(turns: &AtomicU64, f: impl Fn()) {
    if turns.fetch_add(1, Ordering::AcqRel) > 0 {
        return;
    }
    loop {
        f();
        if turns.fetch_sub(1, Ordering::AcqRel) == 1 {
            return;
        }
    }
}

fn run_disconnect(
    adapter: &Adapter,
    peer: SocketAddr,
    p: &Params,
    keep: &mut Keep,
) -> Result<Report, PerfError> {
    let a = adapter.ptr();
    let n = p.qps.max(1) as usize;
    let window = p.window.clamp(1, 1024) as usize;
    let t_create = Instant::now();
    let pd = create_pd(a)?;
    let recs: Box<[Rec]> = (0..n)
        .map(|_| Rec {
            qp: AtomicPtr::new(ptr::null_mut()),
            conn: AtomicPtr::new(ptr::null_mut()),
            status: AtomicI32::new(STATUS_SUCCESS),
            comps: AtomicU32::new(0),
            t: Default::default(),
        })
        .collect();
    let run = Arc::new(DiscRun {
        adapter: a,
        local: adapter.local_addr(),
        peer,
        epoch: Instant::now(),
        recs,
        buf: OnceLock::new(),
        cq: AtomicPtr::new(ptr::null_mut()),
        drive: Drive::default(),
        hello: Hello {
            mode: Mode::Disconnect,
            size: 64,
            depth: 1,
        }
        .encode(),
        next_connect: AtomicU64::new(0),
        connect_turns: AtomicU64::new(0),
        traffic_done: AtomicU64::new(0),
        next_disc: AtomicU64::new(0),
        disc_turns: AtomicU64::new(0),
        closed: AtomicU64::new(0),
        burst_from: AtomicU64::new(0),
        phase1: Signal::default(),
        phase2: Signal::default(),
        res: UnsafeCell::new(empty_results()),
    });
    keep.0.push(run.clone());
    let _ = run.adapter;
    let depth = ((2 * window) as u32 + 64).min(65536);
    let cq = create_cq(a, depth, Some(disc_cq), Arc::as_ptr(&run) as PVOID)?;
    run.cq.store(cq, Ordering::Release);
    let buf = Buf::new(pd, 64 * 1024)?;
    let mr = buf.mr;
    let _ = run.buf.set(buf);
    for (i, rec) in run.recs.iter().enumerate() {
        let qp = create_qp(pd, cq, i as PVOID, 1, 4)?;
        rec.qp.store(qp, Ordering::Release);
        let c = create_connector(a)?;
        rec.conn.store(c, Ordering::Release);
    }
    let create = t_create.elapsed();
    cq_arm(cq);
    // Phase 1: connect with `window` outstanding, traffic on each.
    let t1 = Instant::now();
    for _ in 0..window.min(n) {
        run.connect_next();
    }
    let bound = p.timeout + Duration::from_millis(2 * n as u64);
    if run.phase1.wait(bound).is_none() {
        return err(format!(
            "disconnect: {} of {n} connections finished connecting within {:.1} s",
            run.traffic_done.load(Ordering::Acquire),
            bound.as_secs_f64()
        ));
    }
    let connect_phase = t1.elapsed();
    // Phase 2a: a few disconnects one at a time (the clean latency).
    let serial = n.min(32).min(n / 2).max(if n == 1 { 1 } else { 0 });
    for i in 0..serial {
        let s = Arc::new(Signal::default());
        run.disconnect(i, false, Some(Arc::clone(&s)));
        if s.wait(p.timeout).is_none() {
            return err(format!(
                "disconnect: connection {i} did not disconnect and close within {:.1} s",
                p.timeout.as_secs_f64()
            ));
        }
    }
    // Phase 2b: the rest in a burst, `window` outstanding.
    run.next_disc.store(serial as u64, Ordering::Release);
    run.burst_from.store(serial as u64, Ordering::Release);
    let t2 = Instant::now();
    if serial < n {
        for _ in 0..window.min(n - serial) {
            run.disconnect_next();
        }
        if run.phase2.wait(bound).is_none() {
            return err(format!(
                "disconnect: {} of {n} connections torn down within {:.1} s",
                run.closed.load(Ordering::Acquire),
                bound.as_secs_f64()
            ));
        }
    }
    let teardown_phase = t2.elapsed();
    let _ = close_wait(mr.cast(), disp!(mr, NdkCloseMr), p.timeout);
    let _ = close_wait(cq.cast(), disp!(cq, NdkCloseCq), p.timeout);
    let _ = close_wait(pd.cast(), disp!(pd, NdkClosePd), p.timeout);

    // The report, from the timestamps.
    let get = |r: &Rec, k: usize| r.t[k].load(Ordering::Acquire);
    let mut rep = DisconnectReport {
        qps: n as u32,
        create,
        connect_phase,
        teardown_phase,
        torn_down: (n - serial) as u32,
        ..DisconnectReport::default()
    };
    let mut connect_lat = Vec::with_capacity(n);
    let mut serial_lat = Vec::new();
    let mut burst_lat = Vec::new();
    let mut tl = Vec::with_capacity(n);
    for (i, r) in run.recs.iter().enumerate() {
        let st = r.status.load(Ordering::Acquire);
        if get(r, T_ESTABLISHED) != 0 && st == STATUS_SUCCESS {
            rep.connected += 1;
            connect_lat.push(get(r, T_ESTABLISHED).saturating_sub(get(r, T_CONNECT)));
        } else {
            rep.failed += 1;
            rep.first_failure.get_or_insert(st);
        }
        let dl = get(r, T_DISCONNECTED).saturating_sub(get(r, T_DISC));
        if i < serial {
            serial_lat.push(dl);
        } else {
            burst_lat.push(dl);
        }
        tl.push(Timeline {
            index: i,
            connect: get(r, T_CONNECT),
            replied: get(r, T_REPLIED),
            established: get(r, T_ESTABLISHED),
            traffic_done: get(r, T_TRAFFIC),
            disconnect: get(r, T_DISC),
            disconnected: get(r, T_DISCONNECTED),
            closed: get(r, T_CLOSED),
        });
    }
    connect_lat.sort_unstable();
    serial_lat.sort_unstable();
    burst_lat.sort_unstable();
    tl.sort_by_key(|t| {
        std::cmp::Reverse(
            t.established.saturating_sub(t.connect) + t.disconnected.saturating_sub(t.disconnect),
        )
    });
    tl.truncate(5);
    rep.connect_lat = Samples(connect_lat);
    rep.disconnect_lat_serial = Samples(serial_lat);
    rep.disconnect_lat_burst = Samples(burst_lat);
    rep.slowest = tl;
    let leaked = settled_object_count(adapter);
    if rep.failed > 0 {
        return err(format!(
            "disconnect: {} of {n} connections failed (first: {})",
            rep.failed,
            rep.first_failure.map_or("?".into(), status_name)
        ));
    }
    Ok(Report {
        messages: 2 * n as u64,
        bytes: 128 * n as u64,
        elapsed: connect_phase + teardown_phase,
        disconnect: rep.disconnect_lat_serial.pct(0.5),
        connect: rep.connect_lat.pct(0.5),
        disc: Some(rep),
        leaked_objects: leaked,
        ..Report::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_formats_round_trip() {
        let h = Hello {
            mode: Mode::Rping,
            size: 4096,
            depth: 8,
        };
        assert_eq!(Hello::decode(&h.encode()), Some(h));
        assert_eq!(Hello::decode(b"nope"), None);
        let i = RdmaInfo {
            buf: 0x1122_3344_5566_7788,
            rkey: 0xAABB_CCDD,
            size: 64,
        };
        let e = i.encode();
        assert_eq!(e[0], 0x11, "big-endian, as rping");
        assert_eq!(RdmaInfo::decode(&e), Some(i));
        let mut b = [0u8; 32];
        rping_pattern(3, &mut b);
        assert!(b.starts_with(b"rdma-ping-3: "));
        assert_eq!(b[13], 65 + 3);
        assert_eq!(b[31], 0, "NUL-terminated at the buffer's end");
        assert_eq!(rping_reply_len(&b), 32);
        assert!(b[..31].iter().all(|&c| c != 0));
        // The letters wrap from 'z' to 'A'; the first one cycles over 58.
        let mut b = [0u8; 200];
        rping_pattern(57, &mut b);
        assert_eq!(&b[..15], b"rdma-ping-57: z");
        assert_eq!(b[15], b'A');
        rping_pattern(58, &mut b);
        assert_eq!(b[14], b'A');
        let mut one = [7u8; 1];
        rping_pattern(0, &mut one);
        assert_eq!(one, [0]);
        assert_eq!(rping_reply_len(b"ab\0cd"), 3);
        assert_eq!(rping_reply_len(b"abc"), 3);
    }
}
