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

use crate::adapter::Adapter;
/// A dispatch-table entry of a live provider object (the consumer kit's).
use ndk_consumer::slot as disp;

mod client;
mod consumer;
mod disconnect;
mod perftest;
mod protocol;
mod server;

pub use client::*;
pub use consumer::use_kernel_mdls;
use consumer::*;
use disconnect::*;
pub use perftest::*;
pub use protocol::*;
pub use server::*;

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
    /// Distinct message buffers each side cycles through (bandwidth
    /// modes; at least 1, within [`SLOT_BUDGET`]). 1, as perftest posts
    /// every work request of a connection to one buffer: the modes then
    /// touch alike little memory, as the UDP baseline does.
    pub slots: u32,
    /// Queue pairs (disconnect mode).
    pub qps: u32,
    /// Bound on every control-path wait (connect, disconnect, close).
    pub timeout: Duration,
}

/// The most memory one connection's message slots take: beyond it the
/// messages share slots (what lands in them is never checked, except by
/// rping, which has one source and one sink).
pub const SLOT_BUDGET: usize = 64 << 20;

/// The most bytes a bandwidth mode keeps in flight: a window of messages
/// that would exceed it shrinks to fit (at least one message), so `-s 1G`
/// runs one message at a time instead of asking for 32 GiB.
pub const IN_FLIGHT_BUDGET: usize = 1 << 30;

/// Connections one local address can have at once: each connector takes
/// an ND port of the provider's ephemeral range (49152-65535) for as long
/// as it is connected, and a connect past the last one fails with
/// STATUS_TOO_MANY_ADDRESSES. ndkperf refuses a larger `-q` up front.
pub const PORTS_PER_ADDRESS: u32 = 16384;

/// Outstanding requests a mode runs with: 1 for the latency modes, else
/// `window` bounded by [`IN_FLIGHT_BUDGET`].
pub fn effective_window(mode: Mode, size: usize, window: u32) -> u32 {
    if mode.is_latency() {
        return 1;
    }
    let fit = (IN_FLIGHT_BUDGET / size.max(1)).max(1);
    (window.max(1) as usize).min(fit) as u32
}

/// Distinct memory slots for `n` messages of `size` bytes within
/// [`SLOT_BUDGET`] (at least one).
pub(crate) fn slots_within_budget(n: usize, size: usize) -> usize {
    n.clamp(1, (SLOT_BUDGET / size.max(1)).max(1))
}

// ---------------------------------------------------------------------
// Interruption and progress (read by the ndkperf binary)

static STOP: AtomicBool = AtomicBool::new(false);
static PROGRESS_MESSAGES: AtomicU64 = AtomicU64::new(0);
static PROGRESS_BYTES: AtomicU64 = AtomicU64::new(0);

/// Asks the running client mode to stop posting, as if its time were up
/// (async-signal-safe: one atomic store). Its report covers what
/// completed and says it was interrupted.
pub fn request_stop() {
    STOP.store(true, Ordering::SeqCst);
}

/// Whether [`request_stop`] was called.
pub fn stop_requested() -> bool {
    STOP.load(Ordering::Relaxed)
}

/// Messages and payload bytes the client modes completed so far in this
/// process (a running figure for a progress line).
pub fn progress() -> (u64, u64) {
    (
        PROGRESS_MESSAGES.load(Ordering::Relaxed),
        PROGRESS_BYTES.load(Ordering::Relaxed),
    )
}

fn count_progress(bytes: u64) {
    PROGRESS_MESSAGES.fetch_add(1, Ordering::Relaxed);
    PROGRESS_BYTES.fetch_add(bytes, Ordering::Relaxed);
}

/// Why a run failed, with what it measured before it failed (the
/// messages that completed), if it got that far.
#[derive(Debug, Clone)]
pub struct PerfError(pub String, pub Option<Box<Report>>);

impl PerfError {
    /// A failure with nothing measured.
    pub fn new(msg: impl Into<String>) -> PerfError {
        PerfError(msg.into(), None)
    }
    /// The figures the run completed before it failed.
    pub fn partial(&self) -> Option<&Report> {
        self.1.as_deref()
    }
}

impl std::fmt::Display for PerfError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PerfError {}

fn err<T>(s: impl Into<String>) -> Result<T, PerfError> {
    Err(PerfError(s.into(), None))
}

/// An NTSTATUS as ndkperf's messages show it: [`ndkpi::StatusText`]
/// (`STATUS_IO_TIMEOUT (0xc00000b5)`). Only `consumer` still calls this;
/// everything else formats `StatusText` directly.
pub(crate) fn status_name(s: NTSTATUS) -> String {
    StatusText(s).to_string()
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
    /// Connections in flight at once (`-w`).
    pub window: u32,
    /// The most connections seen at once between NdkConnect and the
    /// completions of their traffic (at most `window`: each holds two
    /// entries of the CQ the connections share).
    pub max_connecting: u32,
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
    /// Requests outstanding (the window after [`effective_window`]).
    pub window: u32,
    /// The run stopped early on [`request_stop`].
    pub interrupted: bool,
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
