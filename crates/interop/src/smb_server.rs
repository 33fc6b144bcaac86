//! An SMB Direct server over ndkrs that, like the client in [`crate::smb`],
//! uses the provider only through the NDK dispatch tables: the loopback
//! peer for [`crate::smb::Session`] where no Linux ksmbd is at hand.
//!
//! [`SmbServer::start`] opens an adapter (a UDP socket on port 4791 at its
//! address) and runs everything on one thread of its own: an NDK listener
//! on the RDMA CM port, then one connection at a time — NdkGetConnectionData,
//! a QP, NdkAccept; an MS-SMBD [`Connection`] in [`Role::Server`] in front
//! of the SMB2 server session of crates/smbd ([`smbd::smb2::server`]). The
//! data of RDMA-channel requests moves with real NdkRead (SMB2 WRITE) and
//! NdkWrite (SMB2 READ) against the client's buffer descriptors through a
//! registered staging buffer; a response to an RDMA_V1_INVALIDATE request
//! goes out with NdkSendAndInvalidate naming the descriptor's token.
//!
//! The upcalls (CQ notification, connect event, disconnect event, request
//! completions) only count and wake the thread; no lock is held across any
//! call into the provider. Every work request is tracked by its context
//! until it completes, and every pended control request counts its
//! completions, so a request completed twice or never shows in the
//! [`ConnReport`] / [`Summary`].

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use host::adapter::{Adapter, AdapterConfig, Seed};

use crate::consumer_adapter::{ConsumerAdapter, ExternalAdapter};
use host::io::{ROCE_PORT, UdpTransport};
use ndkpi::*;
use smbd::smb2::header::{Header, command};
use smbd::smb2::server::{Action, Pull, Push, Response, Server, ServerConfig, ServerError};
use smbd::smbd::conn::{Config, Connection, DisconnectReason, Event, Output, Role};
use smbd::smbd::wire::{BufferDescriptorV1, DataTransfer, FLAG_RESPONSE_REQUESTED};

use crate::ndk_consumer::{
    Completion, Kicks, Memory, SOCKADDR_IN_LEN, arm_cq, check, create_cq, create_pd, create_qp,
    disp, failed, local_token, memory, on_close_kept, on_request_kept, receive, register_mr, send,
    sockaddr, status_text, take_completions,
};

/// Receive and send buffers: one receive per credit the server grants
/// (255, plus the one for the negotiate request) and as many sends.
const SLOTS: usize = 256;
const MSG: usize = 1364;
/// RDMA Reads or Writes in flight at once for one request.
const RDMA_DEPTH: usize = 16;

/// How to run the server.
#[derive(Debug, Clone)]
pub struct SmbServerConfig {
    /// Its address (the UDP socket binds there, port 4791).
    pub local: Ipv4Addr,
    /// The RDMA CM port it listens on (445 for SMB Direct).
    pub port: u16,
    /// Seeds the adapter.
    pub seed: u64,
    pub mtu: u32,
    /// Bound of every wait.
    pub timeout: Duration,
    /// The SMB2 session: account, share, signing. Its `max_io` is also
    /// the staging buffer's size.
    pub smb2: ServerConfig,
    /// MS-SMBD parameters.
    pub smbd: Config,
    /// Where the adapter records every datagram, if anywhere.
    pub pcap: Option<PathBuf>,
    /// Serve on this adapter (a Windows shell's, crates/ndis-host) instead
    /// of opening one on a UDP socket.
    pub adapter: Option<ExternalAdapter>,
    /// XORed into the token of every NdkRead and NdkWrite the server
    /// posts: 0 for a correct server, anything else for a wrong R_Key.
    pub token_xor: u32,
}

/// One RDMA Read or Write the server posted, and how it completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RdmaOp {
    pub remote: u64,
    pub token: u32,
    pub len: u32,
    /// None until it completes.
    pub status: Option<NTSTATUS>,
}

/// Why a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// The client disconnected (the disconnect event).
    Peer,
    /// [`SmbServer::disconnect`] asked.
    Requested,
    /// The server is stopping.
    Stop,
    /// MS-SMBD ended it (keepalive, protocol).
    Smbd(DisconnectReason),
    /// The SMB2 session refused a request.
    Smb2(ServerError),
    /// An NdkRead or NdkWrite failed, or one could not be posted.
    Rdma { op: &'static str, status: NTSTATUS },
    /// Another local failure (a post refused, a message too large).
    Local(String),
}

/// What one connection did, for the tests.
#[derive(Debug, Clone, Default)]
pub struct ConnReport {
    /// The read limits accepted (inbound, outbound).
    pub read_limits: (u32, u32),
    pub dialect: u16,
    pub smb2_requests: usize,
    /// NdkRead for SMB2 WRITE data, in order.
    pub reads: Vec<RdmaOp>,
    /// NdkWrite for SMB2 READ data, in order.
    pub writes: Vec<RdmaOp>,
    /// Tokens named by NdkSendAndInvalidate, in order.
    pub send_invalidates: Vec<u32>,
    pub smbd_sent: usize,
    pub smbd_received: usize,
    /// Data Transfer messages with RemainingDataLength > 0 (fragments).
    pub fragments_sent: usize,
    pub fragments_received: usize,
    /// Empty messages asking for a response (the client's keepalives).
    pub keepalives_received: usize,
    pub ended: Option<End>,
    pub disconnect_events: usize,
    /// The server's own NdkDisconnect, its status.
    pub ndk_disconnect: Option<NTSTATUS>,
    /// Receives still posted when the connection ended, and how many of
    /// them completed with STATUS_CANCELLED.
    pub receives_pending_at_end: usize,
    pub receives_cancelled: usize,
    /// Other failed completions (status, kind).
    pub failed: Vec<(NTSTATUS, &'static str)>,
    /// Work requests posted and completed.
    pub posted: usize,
    pub completed: usize,
    /// Completions naming no outstanding request (a second completion).
    pub unknown_completions: usize,
    /// Requests still outstanding when the connection was torn down.
    pub never_completed: usize,
}

/// The whole run, from [`SmbServer::stop`].
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub connections: Vec<ConnReport>,
    /// Connect requests that could not be accepted, and why.
    pub refused: Vec<String>,
    /// Pended control requests (register, accept, disconnect, close)
    /// whose completion count was not exactly one, or that completed
    /// although they did not pend: (what, completions).
    pub bad_completions: Vec<(&'static str, usize)>,
    pub control_requests: usize,
    /// Completions that arrived with no connection being served.
    pub stray_completions: usize,
    /// Provider objects alive once listening (PD, CQ, MRs, listener),
    /// after each connection's teardown, and before the adapter closed
    /// (the listener closed).
    pub objects_listening: usize,
    pub objects_at_stop: usize,
    pub objects_after_each: Vec<usize>,
}

// ---------------------------------------------------------------------
// What the upcalls touch

/// Shared between the server thread, its upcalls and the test's handle.
#[derive(Debug, Default)]
struct Control {
    /// Kicked by every upcall and by the handle.
    kicks: Kicks,
    /// Connectors of connect events, in order.
    inbox: Mutex<VecDeque<usize>>,
    disconnect: AtomicBool,
    stop: AtomicBool,
    published: Mutex<Published>,
    published_cv: Condvar,
}

#[derive(Debug, Default)]
struct Published {
    files: BTreeMap<String, Vec<u8>>,
    reports: Vec<ConnReport>,
}

impl Control {
    fn publish(&self, f: impl FnOnce(&mut Published)) {
        f(&mut self.published.lock().unwrap_or_else(|p| p.into_inner()));
        self.published_cv.notify_all();
    }
}

unsafe extern "system" fn on_connect(ctx: PVOID, conn: *mut NDK_CONNECTOR) {
    // SAFETY: `ctx` is the server's `Control`, alive until the adapter is
    // closed.
    let c = unsafe { &*ctx.cast::<Control>() };
    c.inbox
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push_back(conn as usize);
    c.kicks.kick();
}

/// A connection's disconnect events.
#[derive(Debug)]
struct ConnEvents {
    events: AtomicUsize,
    control: Arc<Control>,
}

unsafe extern "system" fn on_disconnect(ctx: PVOID) {
    // SAFETY: a `ConnEvents` the server keeps until the adapter is closed.
    let e = unsafe { &*ctx.cast::<ConnEvents>() };
    e.events.fetch_add(1, Ordering::SeqCst);
    e.control.kicks.kick();
}

// ---------------------------------------------------------------------
// The handle

/// A running server; stop it with [`SmbServer::stop`].
#[derive(Debug)]
pub struct SmbServer {
    control: Arc<Control>,
    thread: Option<JoinHandle<Result<Summary, String>>>,
}

impl SmbServer {
    /// Opens the adapter, listens, and returns once the listener is up.
    pub fn start(cfg: SmbServerConfig) -> Result<SmbServer, String> {
        Self::start_with_files(cfg, BTreeMap::new())
    }

    /// [`SmbServer::start`] with a share that already holds `files`
    /// (name to contents; `ndksmb serve --dir` loads them from a
    /// directory).
    pub fn start_with_files(
        cfg: SmbServerConfig,
        files: BTreeMap<String, Vec<u8>>,
    ) -> Result<SmbServer, String> {
        let control = Arc::new(Control::default());
        control.publish(|p| p.files = files);
        let (tx, rx) = mpsc::channel();
        let c = Arc::clone(&control);
        let timeout = cfg.timeout;
        let thread = std::thread::Builder::new()
            .name(format!("smb-server-{}", cfg.local))
            .spawn(move || run(cfg, c, tx))
            .map_err(|e| format!("spawning the server thread: {e}"))?;
        match rx.recv_timeout(timeout) {
            Ok(Ok(())) => Ok(SmbServer {
                control,
                thread: Some(thread),
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => Err("the server did not come up".into()),
        }
    }

    /// Asks the server to NdkDisconnect its current connection (or the
    /// next one it accepts) now.
    pub fn disconnect(&self) {
        self.control.disconnect.store(true, Ordering::SeqCst);
        self.control.kicks.kick();
    }

    /// Waits until `n` connections have ended; their reports.
    pub fn wait_connections(&self, n: usize, t: Duration) -> Result<Vec<ConnReport>, String> {
        let g = self
            .control
            .published
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let (g, _) = self
            .control
            .published_cv
            .wait_timeout_while(g, t, |p| p.reports.len() < n)
            .unwrap_or_else(|p| p.into_inner());
        if g.reports.len() < n {
            return Err(format!(
                "{} connection(s) ended within {t:?}, want {n}",
                g.reports.len()
            ));
        }
        Ok(g.reports.clone())
    }

    /// The file store as of the last CLOSE or connection end.
    pub fn files(&self) -> BTreeMap<String, Vec<u8>> {
        self.control
            .published
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .files
            .clone()
    }

    /// Ends any connection, closes the adapter and joins the thread.
    pub fn stop(mut self) -> Result<Summary, String> {
        self.halt()
            .unwrap_or_else(|| Err("the server was already stopped".into()))
    }

    fn halt(&mut self) -> Option<Result<Summary, String>> {
        let t = self.thread.take()?;
        self.control.stop.store(true, Ordering::SeqCst);
        self.control.kicks.kick();
        Some(
            t.join()
                .unwrap_or_else(|_| Err("the server thread panicked".into())),
        )
    }
}

impl Drop for SmbServer {
    fn drop(&mut self) {
        let _ = self.halt();
    }
}

// ---------------------------------------------------------------------
// The server thread

/// Process memory registered with the provider (local access only).
struct Buf {
    mem: Memory,
    token: u32,
}

impl Buf {
    fn sge(&self, off: usize, len: usize) -> NDK_SGE {
        self.mem.sge(off, len, self.token)
    }
}

/// A posted work request, by its context.
#[derive(Debug, Clone, Copy)]
enum Op {
    Recv(usize),
    Send(usize),
    /// Index into the report's reads / writes.
    Read(usize),
    Write(usize),
}

/// An RDMA-channel request in progress.
enum Transfer {
    Pull(Pull),
    Push(Push),
}

struct Moving {
    what: Transfer,
    queue: VecDeque<(BufferDescriptorV1, usize)>,
    in_flight: usize,
    failed: Option<(&'static str, NTSTATUS)>,
}

/// The connection being served.
struct Conn {
    connector: *mut NDK_CONNECTOR,
    qp: *mut NDK_QP,
    events: Arc<ConnEvents>,
    smbd: Connection,
    smb2: Server,
    outstanding: HashMap<usize, Op>,
    moving: Option<Moving>,
    /// SMB2 messages that arrived while a transfer was in progress.
    deferred: VecDeque<Vec<u8>>,
    /// Per upper-layer message handed to MS-SMBD: the token its last
    /// fragment invalidates.
    invalidations: VecDeque<Option<u32>>,
    /// The first send is the negotiate response, the first receive the
    /// negotiate request; the rest are Data Transfer messages.
    negotiated_out: bool,
    negotiated_in: bool,
    ending: Option<End>,
    report: ConnReport,
}

/// The server thread's state. The adapter comes first so that it closes
/// before anything an upcall could still touch is dropped.
struct Srv {
    adapter: Option<ConsumerAdapter>,
    cfg: SmbServerConfig,
    control: Arc<Control>,
    pd: *mut NDK_PD,
    cq: *mut NDK_CQ,
    listener: *mut NDK_LISTENER,
    recv: Buf,
    recv_free: Vec<usize>,
    send: Buf,
    send_free: Vec<usize>,
    stage: Buf,
    next_ctx: usize,
    /// Control requests with what they were and whether they pended;
    /// kept (and so alive for a late completion) until the adapter is
    /// closed.
    tracked: Vec<(Arc<Completion>, &'static str, bool)>,
    keep: Vec<Arc<ConnEvents>>,
    conn: Option<Conn>,
    summary: Summary,
}

fn run(
    cfg: SmbServerConfig,
    control: Arc<Control>,
    started: mpsc::Sender<Result<(), String>>,
) -> Result<Summary, String> {
    let mut s = match Srv::open(cfg, control) {
        Ok(s) => s,
        Err(e) => {
            let _ = started.send(Err(e.clone()));
            return Err(e);
        }
    };
    let _ = started.send(Ok(()));
    s.serve();
    Ok(s.close())
}

impl Srv {
    fn open(cfg: SmbServerConfig, control: Arc<Control>) -> Result<Srv, String> {
        let t = cfg.timeout;
        let adapter = match cfg.adapter {
            Some(e) => {
                crate::ndk_consumer::use_kernel_mdls();
                ConsumerAdapter::External(e)
            }
            None => {
                let local = SocketAddr::from((cfg.local, ROCE_PORT));
                let transport =
                    UdpTransport::bind(local).map_err(|e| format!("UDP socket at {local}: {e}"))?;
                ConsumerAdapter::Own(Adapter::open(
                    Box::new(transport),
                    &AdapterConfig {
                        seed: Seed::Fixed(cfg.seed),
                        mtu: cfg.mtu,
                        ..AdapterConfig::default()
                    },
                    cfg.pcap.as_deref(),
                )?)
            }
        };
        let a = adapter.ptr();
        let cctx = Arc::as_ptr(&control).cast_mut().cast::<std::ffi::c_void>();
        let pd = create_pd(a).map_err(|st| failed("NdkCreatePd", st))?;
        // `control` outlives the adapter.
        let cq = create_cq(a, 2 * SLOTS + 2 * RDMA_DEPTH, &control.kicks)
            .map_err(|st| failed("NdkCreateCq", st))?;
        let empty = || Buf {
            mem: memory(0),
            token: 0,
        };
        let mut s = Srv {
            control,
            adapter: Some(adapter),
            pd,
            cq,
            listener: ptr::null_mut(),
            recv: empty(),
            recv_free: (0..SLOTS).rev().collect(),
            send: empty(),
            send_free: (0..SLOTS).rev().collect(),
            stage: empty(),
            next_ctx: 1,
            tracked: Vec::new(),
            keep: Vec::new(),
            conn: None,
            summary: Summary::default(),
            cfg,
        };
        s.recv = s.register(SLOTS * MSG, t)?;
        s.send = s.register(SLOTS * MSG, t)?;
        s.stage = s.register(s.cfg.smb2.max_io as usize, t)?;

        let mut listener = ptr::null_mut();
        let st = match disp!(a, NdkCreateListener) {
            // SAFETY: live adapter; `control` outlives it.
            Some(f) => unsafe {
                f(
                    a,
                    Some(on_connect),
                    cctx,
                    None,
                    ptr::null_mut(),
                    &mut listener,
                )
            },
            None => STATUS_NOT_IMPLEMENTED,
        };
        check(st, "NdkCreateListener")?;
        s.listener = listener;
        let addr = sockaddr(SocketAddrV4::new(s.cfg.local, s.cfg.port));
        let len = SOCKADDR_IN_LEN;
        let st = s.tracked("NdkListen", t, |cb, ctx| match disp!(listener, NdkListen) {
            // SAFETY: live listener; the address is read during the call.
            Some(f) => unsafe { f(listener, (&addr as *const SOCKADDR_IN).cast(), len, cb, ctx) },
            None => STATUS_NOT_IMPLEMENTED,
        });
        check(st, &format!("NdkListen on {}:{}", s.cfg.local, s.cfg.port))?;
        s.summary.objects_listening = s.adapter.as_ref().map_or(0, ConsumerAdapter::object_count);
        Ok(s)
    }

    /// A control request whose completion, if it pends, is counted and
    /// waited for (up to `t`).
    fn tracked(
        &mut self,
        what: &'static str,
        t: Duration,
        call: impl FnOnce(NDK_FN_REQUEST_COMPLETION, PVOID) -> NTSTATUS,
    ) -> NTSTATUS {
        let done = Arc::new(Completion::default());
        // `self.tracked` keeps it until the adapter is closed.
        let st = call(Some(on_request_kept), Arc::as_ptr(&done).cast_mut().cast());
        self.tracked
            .push((Arc::clone(&done), what, st == STATUS_PENDING));
        if st != STATUS_PENDING {
            return st;
        }
        done.wait(t).unwrap_or(STATUS_IO_TIMEOUT)
    }

    fn tracked_close(&mut self, obj: *mut NDK_OBJECT_HEADER, close: NDK_FN_CLOSE_OBJECT) {
        if obj.is_null() {
            return;
        }
        let done = Arc::new(Completion::default());
        let ctx = Arc::as_ptr(&done).cast_mut().cast();
        let st = match close {
            // SAFETY: a live object and its own close function; nothing
            // uses it after this. `self.tracked` keeps `done` until the
            // adapter is closed.
            Some(f) => unsafe { f(obj, Some(on_close_kept), ctx) },
            None => STATUS_NOT_IMPLEMENTED,
        };
        self.tracked
            .push((Arc::clone(&done), "close", st == STATUS_PENDING));
        if st == STATUS_PENDING {
            let _ = done.wait(self.cfg.timeout);
        }
    }

    fn register(&mut self, len: usize, t: Duration) -> Result<Buf, String> {
        let mut mem = memory(len.max(64));
        let (pd, mdl, len) = (self.pd, mem.mdl(), mem.len());
        // The buffer lives until the adapter (and so the MR) is closed.
        let mr = register_mr(pd, mdl, len, NDK_MR_FLAG_ALLOW_LOCAL_WRITE, |call| {
            self.tracked("NdkRegisterMr", t, call)
        })?;
        Ok(Buf {
            mem,
            token: local_token(mr),
        })
    }

    /// The loop: accept, serve, tear down, until asked to stop.
    fn serve(&mut self) {
        loop {
            let seen = self.control.kicks.seen();
            if self.control.stop.load(Ordering::SeqCst) {
                if self.conn.is_some() {
                    self.end(End::Stop);
                    self.teardown();
                }
                return;
            }
            if self.conn.is_none() {
                let next = self
                    .control
                    .inbox
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .pop_front();
                if let Some(c) = next {
                    let c = c as *mut NDK_CONNECTOR;
                    if let Err(e) = self.accept(c) {
                        self.summary.refused.push(e);
                    }
                    continue;
                }
            }
            let mut moved = false;
            if self.conn.is_some() {
                moved = self.turn();
                if self.conn.as_ref().is_some_and(|c| c.ending.is_some()) {
                    self.teardown();
                    continue;
                }
            }
            if !moved {
                arm_cq(self.cq);
                if self.poll_cq() {
                    continue;
                }
                let now = Instant::now();
                let mut wait = Duration::from_millis(20);
                if let Some(at) = self.conn.as_ref().and_then(|c| c.smbd.poll_timeout()) {
                    wait = wait.min(at.saturating_duration_since(now));
                }
                self.control.kicks.wait(seen, wait);
                let now = Instant::now();
                if let Some(c) = self.conn.as_mut()
                    && c.smbd.poll_timeout().is_some_and(|at| at <= now)
                {
                    c.smbd.handle_timeout(now);
                }
            }
        }
    }

    fn accept(&mut self, connector: *mut NDK_CONNECTOR) -> Result<(), String> {
        let t = self.cfg.timeout;
        let (mut irl, mut orl) = (0 as ULONG, 0 as ULONG);
        let mut pdata = [0u8; 64];
        let mut plen = pdata.len() as ULONG;
        let st = match disp!(connector, NdkGetConnectionData) {
            // SAFETY: the connect event's connector; buffers of the stated
            // sizes.
            Some(f) => unsafe {
                f(
                    connector,
                    &mut irl,
                    &mut orl,
                    pdata.as_mut_ptr().cast(),
                    &mut plen,
                )
            },
            None => STATUS_NOT_IMPLEMENTED,
        };
        if st != STATUS_SUCCESS {
            self.refuse(connector);
            return Err(format!("NdkGetConnectionData: {}", status_text(st)));
        }
        let qp = match create_qp(self.pd, self.cq, SLOTS, SLOTS + RDMA_DEPTH) {
            Ok(qp) => qp,
            Err(st) => {
                self.refuse(connector);
                return Err(format!("NdkCreateQp: {}", status_text(st)));
            }
        };
        let events = Arc::new(ConnEvents {
            events: AtomicUsize::new(0),
            control: Arc::clone(&self.control),
        });
        self.keep.push(Arc::clone(&events));
        let files = self
            .control
            .published
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .files
            .clone();
        let mut smbd = Connection::new(Role::Server, self.cfg.smbd);
        // Connected before the accept: its receive for the negotiate
        // request must be posted before the client can send it.
        let _ = smbd.handle(Instant::now(), Event::Connected);
        self.conn = Some(Conn {
            connector,
            qp,
            events: Arc::clone(&events),
            smbd,
            smb2: Server::with_files(self.cfg.smb2.clone(), files),
            outstanding: HashMap::new(),
            moving: None,
            deferred: VecDeque::new(),
            invalidations: VecDeque::new(),
            negotiated_out: false,
            negotiated_in: false,
            ending: None,
            report: ConnReport {
                read_limits: (irl, orl),
                ..ConnReport::default()
            },
        });
        self.step();
        let ectx = Arc::as_ptr(&events).cast_mut().cast();
        let st = self.tracked("NdkAccept", t, |cb, ctx| {
            match disp!(connector, NdkAccept) {
                // SAFETY: the event's connector and our QP; `events` is kept
                // until the adapter closes.
                Some(f) => unsafe {
                    f(
                        connector,
                        qp,
                        irl,
                        orl,
                        ptr::null(),
                        0,
                        Some(on_disconnect),
                        ectx,
                        cb,
                        ctx,
                    )
                },
                None => STATUS_NOT_IMPLEMENTED,
            }
        });
        if st != STATUS_SUCCESS {
            self.end(End::Local(format!("NdkAccept: {}", status_text(st))));
            self.teardown();
            return Err(format!("NdkAccept: {}", status_text(st)));
        }
        Ok(())
    }

    /// Rejects a connect request that cannot be served, and lets go of it.
    fn refuse(&mut self, connector: *mut NDK_CONNECTOR) {
        if let Some(f) = disp!(connector, NdkReject) {
            // SAFETY: the connect event's connector, not yet accepted.
            unsafe { f(connector, ptr::null(), 0) };
        }
        self.tracked_close(connector.cast(), disp!(connector, NdkCloseConnector));
    }

    fn end(&mut self, why: End) {
        if let Some(c) = self.conn.as_mut()
            && c.ending.is_none()
        {
            c.ending = Some(why);
        }
    }

    /// One pass: control requests, completions, the machines' outputs.
    fn turn(&mut self) -> bool {
        if self.control.disconnect.swap(false, Ordering::SeqCst) {
            self.end(End::Requested);
            return true;
        }
        let mut moved = self.poll_cq();
        let peer_gone = self
            .conn
            .as_ref()
            .is_some_and(|c| c.events.events.load(Ordering::SeqCst) > 0);
        if peer_gone {
            // The provider completes a failed request before it reports
            // the connection lost, so this poll sees why (an RDMA failure
            // ends the connection with its own status).
            self.poll_cq();
            self.advance_transfer();
            if let Some(c) = self.conn.as_mut() {
                let _ = c.smbd.handle(Instant::now(), Event::PeerDisconnected);
            }
            self.end(End::Peer);
            return true;
        }
        moved |= self.step();
        moved |= self.advance_transfer();
        moved
    }

    /// Carries out MS-SMBD's outputs and the SMB2 session's answers.
    fn step(&mut self) -> bool {
        let mut moved = false;
        loop {
            let Some(c) = self.conn.as_mut() else {
                return moved;
            };
            if c.ending.is_some() {
                return moved;
            }
            if c.moving.is_none()
                && let Some(m) = c.deferred.pop_front()
            {
                moved = true;
                self.smb2_request(m);
                continue;
            }
            let Some(o) = c.smbd.poll_output() else {
                return moved;
            };
            moved = true;
            match o {
                Output::Send(b) => {
                    let inv = self.classify_send(&b);
                    if let Err(e) = self.post_send(&b, inv) {
                        self.end(End::Local(e));
                    }
                }
                Output::PostReceives(n) => {
                    for _ in 0..n {
                        if let Err(e) = self.post_receive() {
                            self.end(End::Local(e));
                            break;
                        }
                    }
                }
                Output::Deliver(m) => {
                    // One request at a time: the next waits for the
                    // transfer in progress to be answered.
                    match self.conn.as_mut() {
                        Some(c) if c.moving.is_some() => c.deferred.push_back(m),
                        _ => self.smb2_request(m),
                    }
                }
                Output::Disconnect(r) => self.end(End::Smbd(r)),
            }
        }
    }

    /// What a send carries: the stats, and for the last fragment of a
    /// response the token to invalidate.
    fn classify_send(&mut self, b: &[u8]) -> Option<u32> {
        let c = self.conn.as_mut()?;
        if !c.negotiated_out {
            c.negotiated_out = true;
            return None;
        }
        let m = DataTransfer::parse(b).ok()?;
        if m.header.remaining_data_length > 0 {
            c.report.fragments_sent += 1;
        }
        if !m.data.is_empty() && m.header.remaining_data_length == 0 {
            return c.invalidations.pop_front().flatten();
        }
        None
    }

    fn smb2_request(&mut self, m: Vec<u8>) {
        let Some(c) = self.conn.as_mut() else {
            return;
        };
        c.report.smb2_requests += 1;
        let is_close = Header::parse(&m).is_ok_and(|h| h.command == command::CLOSE);
        let r = c.smb2.handle(&m);
        c.report.dialect = c.smb2.dialect();
        match r {
            Ok(Action::Respond(r)) => {
                self.respond(r);
                if is_close {
                    self.publish_files();
                }
            }
            Ok(Action::Pull(p)) => {
                let queue = p.segments().into_iter().collect();
                c.moving = Some(Moving {
                    what: Transfer::Pull(p),
                    queue,
                    in_flight: 0,
                    failed: None,
                });
                self.advance_transfer();
            }
            Ok(Action::Push(p)) => {
                let n = p.data.len();
                match self.stage.mem.bytes_mut().get_mut(..n) {
                    Some(s) => s.copy_from_slice(&p.data),
                    None => {
                        self.end(End::Local(format!(
                            "a READ of {n} bytes: staging too small"
                        )));
                        return;
                    }
                }
                let queue = p.segments().into_iter().collect();
                c.moving = Some(Moving {
                    what: Transfer::Push(p),
                    queue,
                    in_flight: 0,
                    failed: None,
                });
                self.advance_transfer();
            }
            Err(e) => self.end(End::Smb2(e)),
        }
    }

    fn respond(&mut self, r: Response) {
        let Some(c) = self.conn.as_mut() else {
            return;
        };
        c.invalidations.push_back(r.invalidate);
        if let Err(e) = c.smbd.handle(Instant::now(), Event::Send(&r.message)) {
            self.end(End::Local(format!("MS-SMBD send: {e:?}")));
        }
    }

    fn publish_files(&self) {
        if let Some(c) = &self.conn {
            let files = c.smb2.files().clone();
            self.control.publish(|p| p.files = files);
        }
    }

    /// Posts what the transfer may have in flight; answers once it is done.
    fn advance_transfer(&mut self) -> bool {
        let xor = self.cfg.token_xor;
        let Some(c) = self.conn.as_mut() else {
            return false;
        };
        let Some(mv) = c.moving.as_mut() else {
            return false;
        };
        let mut moved = false;
        while mv.failed.is_none() && mv.in_flight < RDMA_DEPTH {
            let Some((d, at)) = mv.queue.pop_front() else {
                break;
            };
            moved = true;
            let pull = matches!(mv.what, Transfer::Pull(_));
            let op = RdmaOp {
                remote: d.offset,
                token: d.token ^ xor,
                len: d.length,
                status: None,
            };
            let sge = self.stage.sge(at, d.length as usize);
            let ctx = self.next_ctx;
            let (st, what) = if pull {
                let st = match disp!(c.qp, NdkRead) {
                    // SAFETY: live QP; the SGE is read during the call and
                    // the staging buffer outlives the QP.
                    Some(f) => unsafe { f(c.qp, ctx as PVOID, &sge, 1, op.remote, op.token, 0) },
                    None => STATUS_NOT_IMPLEMENTED,
                };
                (st, "NdkRead")
            } else {
                let st = match disp!(c.qp, NdkWrite) {
                    // SAFETY: as above.
                    Some(f) => unsafe { f(c.qp, ctx as PVOID, &sge, 1, op.remote, op.token, 0) },
                    None => STATUS_NOT_IMPLEMENTED,
                };
                (st, "NdkWrite")
            };
            let list = if pull {
                &mut c.report.reads
            } else {
                &mut c.report.writes
            };
            if st != STATUS_SUCCESS {
                // Refused at the post: reported with that status.
                list.push(RdmaOp {
                    status: Some(st),
                    ..op
                });
                mv.failed = Some((what, st));
                break;
            }
            self.next_ctx += 1;
            list.push(op);
            let i = list.len() - 1;
            c.outstanding
                .insert(ctx, if pull { Op::Read(i) } else { Op::Write(i) });
            c.report.posted += 1;
            mv.in_flight += 1;
        }
        if mv.in_flight > 0 || (mv.failed.is_none() && !mv.queue.is_empty()) {
            return moved;
        }
        let Some(mv) = c.moving.take() else {
            return moved;
        };
        if let Some((op, status)) = mv.failed {
            // A failed completion leaves the QP in error, so no response
            // could follow; a refused post ends the connection the same way.
            self.end(End::Rdma { op, status });
            return true;
        }
        let r = match mv.what {
            Transfer::Pull(p) => {
                let n = p.length as usize;
                let data = self.stage.mem.bytes().get(..n).unwrap_or_default().to_vec();
                c.smb2.finish_pull(p, &data)
            }
            Transfer::Push(p) => c.smb2.finish_push(p),
        };
        match r {
            Ok(r) => self.respond(r),
            Err(e) => self.end(End::Smb2(e)),
        }
        true
    }

    fn post_receive(&mut self) -> Result<(), String> {
        let c = self.conn.as_mut().ok_or("no connection")?;
        let i = self
            .recv_free
            .pop()
            .ok_or("MS-SMBD asked for more receives than there are buffers")?;
        let sge = self.recv.sge(i * MSG, MSG);
        let ctx = self.next_ctx;
        let st = receive(c.qp, ctx, &sge);
        if st != STATUS_SUCCESS {
            self.recv_free.push(i);
            return Err(format!("NdkReceive: {}", status_text(st)));
        }
        self.next_ctx += 1;
        c.outstanding.insert(ctx, Op::Recv(i));
        c.report.posted += 1;
        Ok(())
    }

    fn post_send(&mut self, b: &[u8], invalidate: Option<u32>) -> Result<(), String> {
        let c = self.conn.as_mut().ok_or("no connection")?;
        if b.len() > MSG {
            return Err(format!("an MS-SMBD message of {} bytes", b.len()));
        }
        let i = self.send_free.pop().ok_or("no free send buffer")?;
        if let Some(d) = self
            .send
            .mem
            .bytes_mut()
            .get_mut(i * MSG..i * MSG + b.len())
        {
            d.copy_from_slice(b);
        }
        let sge = self.send.sge(i * MSG, b.len());
        let ctx = self.next_ctx;
        let st = send(c.qp, ctx, &sge, invalidate);
        if st != STATUS_SUCCESS {
            self.send_free.push(i);
            return Err(format!("NdkSend: {}", status_text(st)));
        }
        self.next_ctx += 1;
        c.outstanding.insert(ctx, Op::Send(i));
        c.report.posted += 1;
        c.report.smbd_sent += 1;
        c.report.send_invalidates.extend(invalidate);
        Ok(())
    }

    /// Takes what the CQ holds; whether there was anything.
    fn poll_cq(&mut self) -> bool {
        take_completions(self.cq, |r| self.completion(r)) > 0
    }

    fn completion(&mut self, r: &NDK_RESULT_EX) {
        let Some(c) = self.conn.as_mut() else {
            // Every request completes before its connection is gone.
            self.summary.stray_completions += 1;
            return;
        };
        let Some(op) = c.outstanding.remove(&(r.RequestContext as usize)) else {
            c.report.unknown_completions += 1;
            return;
        };
        c.report.completed += 1;
        match op {
            Op::Recv(i) => {
                self.recv_free.push(i);
                if r.Status == STATUS_CANCELLED {
                    c.report.receives_cancelled += 1;
                    return;
                }
                if r.Status != STATUS_SUCCESS {
                    c.report.failed.push((r.Status, "receive"));
                    return;
                }
                c.report.smbd_received += 1;
                let len = (r.BytesTransferred as usize).min(MSG);
                let m = self
                    .recv
                    .mem
                    .bytes()
                    .get(i * MSG..i * MSG + len)
                    .unwrap_or_default()
                    .to_vec();
                if !c.negotiated_in {
                    c.negotiated_in = true;
                } else if let Ok(d) = DataTransfer::parse(&m) {
                    if d.header.remaining_data_length > 0 {
                        c.report.fragments_received += 1;
                    }
                    if d.data.is_empty() && d.header.flags & FLAG_RESPONSE_REQUESTED != 0 {
                        c.report.keepalives_received += 1;
                    }
                }
                let _ = c.smbd.handle(Instant::now(), Event::Received(&m));
            }
            Op::Send(i) => {
                self.send_free.push(i);
                if r.Status != STATUS_SUCCESS && r.Status != STATUS_CANCELLED {
                    c.report.failed.push((r.Status, "send"));
                }
            }
            Op::Read(i) | Op::Write(i) => {
                let list = if matches!(op, Op::Read(_)) {
                    &mut c.report.reads
                } else {
                    &mut c.report.writes
                };
                if let Some(o) = list.get_mut(i) {
                    o.status = Some(r.Status);
                }
                if let Some(mv) = c.moving.as_mut() {
                    mv.in_flight = mv.in_flight.saturating_sub(1);
                    if r.Status != STATUS_SUCCESS && mv.failed.is_none() {
                        let what = if matches!(op, Op::Read(_)) {
                            "NdkRead"
                        } else {
                            "NdkWrite"
                        };
                        mv.failed = Some((what, r.Status));
                    }
                }
            }
        }
    }

    /// NdkDisconnect (the consumer's to call whoever disconnected first),
    /// the flush of every outstanding request, then the connector and QP
    /// closed; publishes the report.
    fn teardown(&mut self) {
        let t = self.cfg.timeout;
        let Some((connector, qp)) = self.conn.as_mut().map(|c| {
            c.report.receives_pending_at_end = c
                .outstanding
                .values()
                .filter(|o| matches!(o, Op::Recv(_)))
                .count();
            (c.connector, c.qp)
        }) else {
            return;
        };
        let st = self.tracked("NdkDisconnect", t, |cb, ctx| {
            match disp!(connector, NdkDisconnect) {
                // SAFETY: live connector.
                Some(f) => unsafe { f(connector, cb, ctx) },
                None => STATUS_NOT_IMPLEMENTED,
            }
        });
        // A disconnect that succeeded flushed the QP; the rest completes
        // as the QP closes (the connector first: it holds the QP, whose
        // close waits for it).
        if st == STATUS_SUCCESS {
            self.collect(t);
        }
        self.tracked_close(connector.cast(), disp!(connector, NdkCloseConnector));
        self.tracked_close(qp.cast(), disp!(qp, NdkCloseQp));
        self.collect(t);
        let Some(mut c) = self.conn.take() else {
            return;
        };
        c.report.ndk_disconnect = Some(st);
        c.report.disconnect_events = c.events.events.load(Ordering::SeqCst);
        c.report.never_completed = c.outstanding.len();
        c.report.ended = c.ending.take();
        // Buffers of requests that never completed stay out of use.
        let listening = self.summary.objects_listening;
        let objects = self.adapter.as_ref().map_or(0, |a| {
            a.object_count_settled(listening, Duration::from_secs(1))
        });
        self.summary.objects_after_each.push(objects);
        self.control.disconnect.store(false, Ordering::SeqCst);
        let files = c.smb2.into_files();
        let report = c.report;
        self.summary.connections.push(report.clone());
        self.control.publish(|p| {
            p.files = files;
            p.reports.push(report);
        });
    }

    /// Polls until every request of the connection completed, or `t`.
    fn collect(&mut self, t: Duration) {
        let end = Instant::now() + t;
        while self
            .conn
            .as_ref()
            .is_some_and(|c| !c.outstanding.is_empty())
            && Instant::now() < end
        {
            if !self.poll_cq() {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    }

    /// Closes the listener and the adapter; checks every pended request
    /// completed exactly once.
    fn close(mut self) -> Summary {
        let l = self.listener;
        self.tracked_close(l.cast(), disp!(l, NdkCloseListener));
        self.summary.objects_at_stop = self
            .adapter
            .as_ref()
            .map_or(0, ConsumerAdapter::object_count);
        if let Some(a) = self.adapter.take() {
            // SAFETY: no call on the adapter runs from here on; the
            // server's pointers are not used again.
            unsafe { a.close() };
        }
        self.summary.control_requests = self.tracked.len();
        for (t, what, pended) in &self.tracked {
            let n = t.completions();
            if n != usize::from(*pended) {
                self.summary.bad_completions.push((what, n));
            }
        }
        self.summary.clone()
    }
}
