//! The consumer side of the harness, a thin layer on the consumer kit
//! (crates/consumer): a [`Net`] (the kit's host platform, a clock the test
//! moves, memory limited to the test's own buffers, and the test's log),
//! callbacks that log every upcall into the log of the net their context
//! names, and helpers that reach the provider only through the
//! NDK_*_DISPATCH function pointers, as SMB Direct does. Nothing is
//! global: each test has its own net, so tests run in parallel.
#![allow(dead_code, clippy::missing_safety_doc)]
// Every unsafe block names the invariant it relies on.
#![deny(clippy::undocumented_unsafe_blocks)]

use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::ptr;
use std::sync::{Arc, Mutex, MutexGuard};

use ndk::abi::{Platform, close_adapter, io, open_adapter};
use ndk::provider::{Limits, ProviderConfig};
pub use ndk_consumer::HostMdl;
use ndk_consumer::{HostPlatform, MdlKind, Memory};
use ndkpi::*;
use roce::device::MAX_DATAGRAM;
use roce::time::Instant;

/// Calls `$f` of `$obj`'s dispatch table with `$obj` first.
macro_rules! ndk {
    ($($t:tt)*) => { ndk_consumer::call!($($t)*) };
}

// ---- the net: platform and log ----

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ev {
    Request(usize, NTSTATUS),
    Close(usize),
    Cq(usize, NTSTATUS),
    Srq(usize, NTSTATUS),
    Connect(usize, usize),
    Disconnect(usize),
}

/// A callback context: the number the test logs, in its net.
pub struct Tag {
    net: *const Net,
    pub n: usize,
}

impl Tag {
    /// The tag a callback's context points at.
    ///
    /// # Safety
    /// `ctx` came from [`Net::ctx`] of a net that is still alive (every
    /// adapter holds its net, so callbacks of its objects find it).
    pub unsafe fn of<'a>(ctx: PVOID) -> &'a Tag {
        assert!(!ctx.is_null(), "a logging callback got no context");
        // SAFETY: per the contract, a tag boxed in a live net.
        unsafe { &*ctx.cast::<Tag>() }
    }
    pub fn net(&self) -> &Net {
        // SAFETY: a tag lives inside its net (Net::tags), so the net is
        // alive while the tag is reached.
        unsafe { &*self.net }
    }
}

// SAFETY: a tag is immutable; its net is Sync.
unsafe impl Send for Tag {}
// SAFETY: as above.
unsafe impl Sync for Tag {}

/// QPs waiting to be accepted, per listener context.
// Ordered, not hashed: the ndk_api fuzz target runs this harness, and a
// hashed map's per-process keys would make its runs differ by seed alone.
type AcceptPlans = BTreeMap<usize, VecDeque<(usize, usize)>>;

/// One test's world: the kit's platform (a clock the test moves, memory
/// checked against the test's buffers), the log every upcall lands in,
/// and the accept plans of its listeners.
pub struct Net {
    pub platform: Arc<HostPlatform>,
    log: Mutex<Vec<Ev>>,
    accept: Mutex<AcceptPlans>,
    tags: Mutex<BTreeMap<usize, Box<Tag>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Net {
    pub fn new() -> Arc<Net> {
        Arc::new(Net {
            platform: HostPlatform::manual(),
            log: Mutex::default(),
            accept: Mutex::default(),
            tags: Mutex::default(),
        })
    }
    /// Moves the clock on.
    pub fn advance(&self, nanos: u64) {
        self.platform.advance(nanos);
    }
    pub fn now(&self) -> Instant {
        self.platform.now()
    }
    /// The callback context that logs `n` into this net.
    pub fn ctx(&self, n: usize) -> PVOID {
        let mut tags = lock(&self.tags);
        let t = tags.entry(n).or_insert_with(|| {
            Box::new(Tag {
                net: self as *const Net,
                n,
            })
        });
        (&**t as *const Tag).cast_mut().cast()
    }

    pub fn log(&self, e: Ev) {
        lock(&self.log).push(e);
    }
    pub fn take_log(&self) -> Vec<Ev> {
        std::mem::take(&mut *lock(&self.log))
    }
    pub fn peek_log(&self) -> Vec<Ev> {
        lock(&self.log).clone()
    }
    /// Removes the first event `want` from the log, failing if it is absent.
    pub fn expect(&self, want: Ev) {
        let mut l = lock(&self.log);
        match l.iter().position(|e| *e == want) {
            Some(i) => {
                l.remove(i);
            }
            None => panic!("expected {want:?} in {:?}", *l),
        }
    }
    /// How many times `e` is in the log (not removed).
    pub fn count(&self, e: Ev) -> usize {
        lock(&self.log).iter().filter(|x| **x == e).count()
    }
    /// Removes the first connect event on listener `listener_ctx`; its
    /// connector.
    pub fn take_connect(&self, listener_ctx: usize) -> *mut NDK_CONNECTOR {
        let mut l = lock(&self.log);
        let i = l
            .iter()
            .position(|e| matches!(e, Ev::Connect(c, _) if *c == listener_ctx))
            .expect("connect event");
        let Ev::Connect(_, p) = l.remove(i) else {
            unreachable!()
        };
        p as *mut NDK_CONNECTOR
    }

    /// The next connection on the listener with context `listener_ctx` is
    /// accepted onto `qp` from inside the connect event (a re-entrant call,
    /// the IRQL rules of the NDKPI pages), with private data "ndk!" and
    /// read limits 4/4; the accept completes to `done_ctx`, and the
    /// connector's disconnect event reports `done_ctx + 1`.
    pub fn plan_accept(&self, listener_ctx: usize, qp: *mut NDK_QP, done_ctx: usize) {
        lock(&self.accept)
            .entry(listener_ctx)
            .or_default()
            .push_back((qp as usize, done_ctx));
    }

    /// NdkCloseXxx (the first slot of every dispatch table) with `on_close`.
    pub fn close<T>(&self, obj: *mut T, ctx: usize) -> NTSTATUS {
        // SAFETY: `obj` is a live NDK object of the provider, closed once.
        unsafe { ndk_consumer::close_raw(obj, Some(on_close), self.ctx(ctx)) }
    }

    /// Closes `obj`: STATUS_SUCCESS, or STATUS_PENDING recorded in
    /// `pending` (a close never fails, the NDK_FN_CLOSE_COMPLETION page).
    pub fn close_rec<T>(&self, obj: *mut T, ctx: usize, pending: &mut Vec<usize>) -> NTSTATUS {
        let st = self.close(obj, ctx);
        match st {
            STATUS_PENDING => pending.push(ctx),
            STATUS_SUCCESS => {}
            other => panic!("close returned {other:#x}"),
        }
        st
    }
}

/// A buffer the provider may reach (the kit's [`Memory`], mapped in the
/// net's platform while it lives), with its MDL.
pub struct Buffer {
    mem: Memory,
    pub len: usize,
}

impl Buffer {
    pub fn new(net: &Net, len: usize) -> Buffer {
        Buffer {
            mem: Memory::new(len, MdlKind::Host, net.platform.map()),
            len,
        }
    }
    pub fn va(&self, off: usize) -> u64 {
        assert!(off <= self.len);
        self.mem.va(off)
    }
    pub fn mdl(&mut self) -> *mut MDL {
        self.mem.mdl()
    }
    /// An MDL for `len` bytes at `off`.
    pub fn sub_mdl(&self, off: usize, len: usize) -> Box<HostMdl> {
        self.mem.sub_mdl(off, len).expect("inside the buffer")
    }
    pub fn read(&self, off: usize, len: usize) -> Vec<u8> {
        self.mem.read(off, len).expect("inside the buffer")
    }
    pub fn write(&self, off: usize, bytes: &[u8]) {
        assert!(self.mem.write(off, bytes), "inside the buffer");
    }
    /// A recognizable pattern.
    pub fn fill(&self, off: usize, len: usize, seed: u8) {
        let v: Vec<u8> = (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect();
        self.write(off, &v);
    }
}

// ---- callbacks: every upcall lands in its net's log ----

/// Logs `ev(n)` into the net of the tag `ctx` names.
///
/// # Safety
/// As [`Tag::of`].
unsafe fn log_to(ctx: PVOID, ev: impl FnOnce(usize) -> Ev) {
    // SAFETY: per the contract.
    let t = unsafe { Tag::of(ctx) };
    t.net().log(ev(t.n));
}

// The harness passes Net::ctx contexts with these callbacks.
pub unsafe extern "system" fn on_request(ctx: PVOID, st: NTSTATUS) {
    // SAFETY: a Net::ctx context (above).
    unsafe { log_to(ctx, |n| Ev::Request(n, st)) };
}
pub unsafe extern "system" fn on_close(ctx: PVOID) {
    // SAFETY: as above.
    unsafe { log_to(ctx, Ev::Close) };
}
pub unsafe extern "system" fn on_cq(ctx: PVOID, st: NTSTATUS) {
    // SAFETY: as above.
    unsafe { log_to(ctx, |n| Ev::Cq(n, st)) };
}
pub unsafe extern "system" fn on_srq(ctx: PVOID, st: NTSTATUS) {
    // SAFETY: as above.
    unsafe { log_to(ctx, |n| Ev::Srq(n, st)) };
}
pub unsafe extern "system" fn on_disconnect(ctx: PVOID) {
    // SAFETY: as above.
    unsafe { log_to(ctx, Ev::Disconnect) };
}

/// The connect event: logs, then accepts as [`Net::plan_accept`] planned.
pub unsafe extern "system" fn on_connect(ctx: PVOID, conn: *mut NDK_CONNECTOR) {
    // SAFETY: as above.
    let t = unsafe { Tag::of(ctx) };
    let net = t.net();
    net.log(Ev::Connect(t.n, conn as usize));
    let next = lock(&net.accept).get_mut(&t.n).and_then(|q| q.pop_front());
    let Some((qp, done)) = next else {
        return;
    };
    let mut irl = 0;
    let mut orl = 0;
    let mut len = 0;
    // Size query, then the data (the NDK_FN_GET_CONNECTION_DATA page).
    let st = ndk!(
        conn,
        NdkGetConnectionData,
        &mut irl,
        &mut orl,
        ptr::null_mut(),
        &mut len
    );
    assert_eq!(st, STATUS_SUCCESS);
    let mut data = vec![0u8; len as usize];
    let st = ndk!(
        conn,
        NdkGetConnectionData,
        &mut irl,
        &mut orl,
        data.as_mut_ptr().cast(),
        &mut len
    );
    assert_eq!(st, STATUS_SUCCESS);
    assert_eq!(&data[..4], b"ndk?");
    let st = ndk!(
        conn,
        NdkAccept,
        qp as *mut NDK_QP,
        irl,
        orl,
        b"ndk!".as_ptr().cast(),
        4,
        Some(on_disconnect),
        net.ctx(done + 1),
        Some(on_request),
        net.ctx(done)
    );
    assert_eq!(st, STATUS_PENDING);
}

// ---- calls through the dispatch tables ----

/// Closes and requires an inline close (STATUS_SUCCESS, no callback).
pub fn close_now<T>(obj: *mut T) {
    // SAFETY: `obj` is a live NDK object of the provider, closed once;
    // an inline close makes no callback, so no context is needed.
    let st = unsafe { ndk_consumer::close_raw(obj, Some(on_close), ptr::null_mut()) };
    assert_eq!(st, STATUS_SUCCESS);
}

pub fn sge(va: u64, len: usize, token: u32) -> NDK_SGE {
    NDK_SGE {
        Address: NDK_SGE_ADDRESS {
            VirtualAddress: va as PVOID,
        },
        Length: len as ULONG,
        MemoryRegionToken: token,
    }
}

pub use ndk_consumer::sockaddr;

/// One opened adapter, closed on drop.
pub struct Adapter {
    pub ptr: *mut NDK_ADAPTER,
    pub ip: IpAddr,
    pub net: Arc<Net>,
}

// SAFETY: the adapter's provider state is behind the platform's lock; the
// pointer is only passed to the provider's thread-safe entry points.
unsafe impl Send for Adapter {}
// SAFETY: as for Send.
unsafe impl Sync for Adapter {}

/// The harness's adapters: a fixed identity from `seed` (the kit's).
pub fn config(ip: IpAddr, seed: u64, limits: Limits) -> ProviderConfig {
    ndk_consumer::fixed_config(ip, seed, limits)
}

impl Adapter {
    pub fn open(ip: IpAddr, seed: u64, net: &Arc<Net>) -> Adapter {
        Self::open_with(ip, seed, net, Limits::default())
    }

    pub fn open_with(ip: IpAddr, seed: u64, net: &Arc<Net>, limits: Limits) -> Adapter {
        let ptr = open_adapter(
            net.platform.clone(),
            config(ip, seed, limits),
            NDK_VERSION_1_2,
        )
        .expect("open");
        Adapter {
            ptr,
            ip,
            net: net.clone(),
        }
    }

    /// A second OpenNDKAdapter on the same miniport adapter: its own
    /// NDK_ADAPTER over this one's engine.
    pub fn open_shared(&self) -> Adapter {
        // SAFETY: self.ptr is this open adapter, live until self drops.
        let ptr = unsafe { ndk::abi::open_adapter_shared(self.ptr, NDK_VERSION_1_2) }
            .expect("shared open");
        Adapter {
            ptr,
            ip: self.ip,
            net: self.net.clone(),
        }
    }

    /// The kit's view of this adapter.
    pub fn kit(&self) -> ndk_consumer::Adapter {
        // SAFETY: open until self drops, and every object the tests make
        // on it is used only while the adapter is alive.
        unsafe { ndk_consumer::Adapter::from_raw(self.ptr) }
    }

    pub fn info(&self) -> NDK_ADAPTER_INFO {
        self.kit().info().expect("NdkQueryAdapterInfo")
    }

    pub fn objects(&self) -> usize {
        io::object_count(self.ptr)
    }

    /// The adapter's connections and endpoints, as the OIDs report them.
    pub fn snapshot(&self) -> ndk::oids::Snapshot {
        io::snapshot(self.ptr).expect("open adapter")
    }

    pub fn pd(&self) -> *mut NDK_PD {
        let pd = self.kit().create_pd().expect("NdkCreatePd").into_raw();
        // SAFETY: NdkCreatePd succeeded, so `pd` is a live PD.
        unsafe { assert_eq!((*pd).Header.ObjectType, NdkObjectTypePd) };
        pd
    }

    pub fn try_cq(&self, depth: u32, ctx: usize) -> Result<*mut NDK_CQ, NTSTATUS> {
        let cq = self
            .kit()
            .create_cq(depth, Some(on_cq), self.net.ctx(ctx))?
            .into_raw();
        // SAFETY: NdkCreateCq succeeded, so `cq` is a live CQ.
        unsafe { assert_eq!((*cq).Header.ObjectType, NdkObjectTypeCq) };
        Ok(cq)
    }

    pub fn cq(&self, depth: u32, ctx: usize) -> *mut NDK_CQ {
        self.try_cq(depth, ctx).expect("create CQ")
    }

    pub fn listener(&self, ctx: usize) -> *mut NDK_LISTENER {
        self.kit()
            .create_listener(Some(on_connect), self.net.ctx(ctx))
            .expect("NdkCreateListener")
            .into_raw()
    }

    /// A listener on port 0 of this adapter's address; returns the port.
    pub fn listen(&self, ctx: usize) -> (*mut NDK_LISTENER, u16) {
        let l = self.listener(ctx);
        // SAFETY: just made on this open adapter; the test closes it.
        let kl = unsafe { ndk_consumer::Listener::from_raw(l) };
        assert_eq!(kl.listen(SocketAddr::new(self.ip, 0)), STATUS_SUCCESS);
        let port = kl.local_port().expect("NdkGetLocalAddress");
        assert!(port >= 49152);
        (kl.into_raw(), port)
    }

    pub fn connector(&self) -> *mut NDK_CONNECTOR {
        self.kit()
            .create_connector()
            .expect("NdkCreateConnector")
            .into_raw()
    }
}

impl Drop for Adapter {
    fn drop(&mut self) {
        // SAFETY: self.ptr came from open_adapter/open_adapter_shared and
        // is closed once, here.
        unsafe { close_adapter(self.ptr) };
    }
}

/// The kit's view of a PD the test made.
fn kit_pd(pd: *mut NDK_PD) -> ndk_consumer::Pd {
    // SAFETY: a live PD of an open adapter (the callers' promise); the
    // view is dropped without closing it.
    unsafe { ndk_consumer::Pd::from_raw(pd) }
}

#[allow(clippy::too_many_arguments)]
pub fn try_qp(
    pd: *mut NDK_PD,
    rcq: *mut NDK_CQ,
    icq: *mut NDK_CQ,
    ctx: usize,
    depth: (u32, u32),
    sge: (u32, u32),
    inline: u32,
) -> Result<*mut NDK_QP, NTSTATUS> {
    let qp = kit_pd(pd)
        .create_qp(&ndk_consumer::QpConfig {
            receive_cq: rcq,
            initiator_cq: icq,
            context: ctx as PVOID,
            receive_depth: depth.0,
            initiator_depth: depth.1,
            receive_sges: sge.0,
            initiator_sges: sge.1,
            inline_data: inline,
        })?
        .into_raw();
    // SAFETY: NdkCreateQp succeeded, so `qp` is a live QP.
    unsafe { assert_eq!((*qp).Header.ObjectType, NdkObjectTypeQp) };
    Ok(qp)
}

/// A QP with receive/initiator depth 32, 4 SGEs each, 128 inline bytes.
pub fn qp(pd: *mut NDK_PD, cq: *mut NDK_CQ, ctx: usize) -> *mut NDK_QP {
    try_qp(pd, cq, cq, ctx, (32, 32), (4, 4), 128).expect("create QP")
}

pub fn mr(pd: *mut NDK_PD, fast: bool) -> *mut NDK_MR {
    kit_pd(pd).create_mr(fast).expect("NdkCreateMr").into_raw()
}

/// A regular MR over all of `buf`; returns it and its token.
pub fn register(pd: *mut NDK_PD, buf: &mut Buffer, flags: ULONG) -> (*mut NDK_MR, u32) {
    let m = kit_pd(pd).create_mr(false).expect("NdkCreateMr");
    // SAFETY: the buffer's HostMdl and memory outlive the MR (the tests
    // close their MRs before their buffers drop).
    let st = unsafe { m.register(buf.mdl(), buf.len, flags, None, ptr::null_mut()) };
    assert_eq!(st, STATUS_SUCCESS);
    let token = m.local_token();
    assert_eq!(token, m.remote_token());
    (m.into_raw(), token)
}

pub use ndk_consumer::MR_RW as RW;

pub fn results(cq: *mut NDK_CQ) -> Vec<NDK_RESULT_EX> {
    // SAFETY: a live CQ of an open adapter; the view does not close it.
    unsafe { ndk_consumer::Cq::from_raw(cq) }.results(256)
}

/// Checks one completion against the NDK rules (the NDKPI completion handling requirements page):
/// status, type, QP and request context, and for receives the bytes.
pub fn check(
    r: &NDK_RESULT_EX,
    status: NTSTATUS,
    ty: NDK_OPERATION_TYPE,
    qp_ctx: usize,
    req_ctx: usize,
    bytes: Option<u32>,
) {
    assert_eq!(
        (
            r.Status,
            r.Type,
            r.QPContext as usize,
            r.RequestContext as usize
        ),
        (status, ty, qp_ctx, req_ctx),
        "{r:?}"
    );
    if let Some(b) = bytes {
        assert_eq!(r.BytesTransferred, b, "{r:?}");
    }
    if status == STATUS_SUCCESS {
        assert_eq!(r.ProviderErrorCode, 0);
    }
}

/// Moves datagrams between the adapters (by destination address) and runs
/// due timers, until nothing moves.
pub fn pump(adapters: &[&Adapter]) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let mut moved = false;
        for from in adapters {
            while let Some(t) = io::poll_transmit(from.ptr, &mut buf) {
                moved = true;
                let payload = t.udp_payload(&buf).to_vec();
                if let Some(to) = adapters.iter().find(|a| a.ip == t.dst.ip()) {
                    io::handle_udp(to.ptr, t.src, t.dst, &payload);
                }
            }
            if io::poll_timeout(from.ptr).is_some_and(|t| t <= from.net.now()) {
                io::handle_timeout(from.ptr);
                moved = true;
            }
        }
        if !moved {
            break;
        }
    }
}

/// Pumps while moving the clock on by `step` ns, `rounds` times (timers:
/// retransmission, RNR waits, CM timeouts).
pub fn pump_for(adapters: &[&Adapter], rounds: usize, step: u64) {
    for _ in 0..rounds {
        pump(adapters);
        adapters[0].net.advance(step);
    }
    pump(adapters);
}

/// A connected pair of QPs.
pub struct Connection {
    pub active: *mut NDK_CONNECTOR,
    pub passive: *mut NDK_CONNECTOR,
}

/// Connects `a_qp` on `a` to `b_qp` on `b` through `b`'s listener (context
/// `listener_ctx`, port `port`). Request contexts: `base` (connect),
/// `base + 2` (accept); disconnect events `base + 1` (active) and
/// `base + 3` (passive).
#[allow(clippy::too_many_arguments)]
pub fn connect(
    a: &Adapter,
    a_qp: *mut NDK_QP,
    b: &Adapter,
    b_qp: *mut NDK_QP,
    listener_ctx: usize,
    port: u16,
    base: usize,
) -> Connection {
    let net = &a.net;
    b.net.plan_accept(listener_ctx, b_qp, base + 2);
    let conn = a.connector();
    let (src, src_len) = sockaddr(SocketAddr::new(a.ip, 0));
    let (dst, dst_len) = sockaddr(SocketAddr::new(b.ip, port));
    let st = ndk!(
        conn,
        NdkConnect,
        a_qp,
        src.as_ptr().cast(),
        src_len,
        dst.as_ptr().cast(),
        dst_len,
        4,
        4,
        b"ndk?".as_ptr().cast(),
        4,
        Some(on_request),
        net.ctx(base)
    );
    assert_eq!(st, STATUS_PENDING);
    pump(&[a, b]);
    net.expect(Ev::Request(base, STATUS_SUCCESS));
    let passive = b.net.take_connect(listener_ctx);
    // The active side reads the reply, then completes the connection.
    let mut len = 196;
    let mut data = vec![0u8; 196];
    let (mut irl, mut orl) = (0, 0);
    assert_eq!(
        ndk!(
            conn,
            NdkGetConnectionData,
            &mut irl,
            &mut orl,
            data.as_mut_ptr().cast(),
            &mut len
        ),
        STATUS_SUCCESS
    );
    assert_eq!(&data[..4], b"ndk!");
    assert_eq!((irl, orl), (4, 4));
    assert_eq!(
        ndk!(
            conn,
            NdkCompleteConnect,
            Some(on_disconnect),
            net.ctx(base + 1),
            None,
            ptr::null_mut()
        ),
        STATUS_SUCCESS
    );
    pump(&[a, b]);
    b.net.expect(Ev::Request(base + 2, STATUS_SUCCESS));
    Connection {
        active: conn,
        passive,
    }
}

/// Two adapters with one connected QP pair (A active, B passive), each with
/// a PD, a CQ (contexts 7 and 8), a 64 KiB buffer registered RW, on their
/// own net (so pairs of parallel tests never share a log).
pub struct Pair {
    pub a: Adapter,
    pub b: Adapter,
    pub apd: *mut NDK_PD,
    pub bpd: *mut NDK_PD,
    pub acq: *mut NDK_CQ,
    pub bcq: *mut NDK_CQ,
    pub aqp: *mut NDK_QP,
    pub bqp: *mut NDK_QP,
    pub abuf: Buffer,
    pub bbuf: Buffer,
    pub amr: *mut NDK_MR,
    pub bmr: *mut NDK_MR,
    pub at: u32,
    pub bt: u32,
    pub listener: *mut NDK_LISTENER,
    pub conn: Connection,
    pub net: Arc<Net>,
}

pub const PA_QP: usize = 0xA1;
pub const PB_QP: usize = 0xB1;

impl Pair {
    pub fn new(subnet: u8, limits: Limits) -> Pair {
        let net = Net::new();
        let a_ip = IpAddr::V4(std::net::Ipv4Addr::new(10, subnet, 0, 1));
        let b_ip = IpAddr::V4(std::net::Ipv4Addr::new(10, subnet, 0, 2));
        let a = Adapter::open_with(a_ip, u64::from(subnet) * 2, &net, limits);
        let b = Adapter::open_with(b_ip, u64::from(subnet) * 2 + 1, &net, limits);
        let (apd, bpd) = (a.pd(), b.pd());
        let (acq, bcq) = (a.cq(256, 7), b.cq(256, 8));
        let (aqp, bqp) = (qp(apd, acq, PA_QP), qp(bpd, bcq, PB_QP));
        let mut abuf = Buffer::new(&net, 64 * 1024);
        let mut bbuf = Buffer::new(&net, 64 * 1024);
        let (amr, at) = register(apd, &mut abuf, RW);
        let (bmr, bt) = register(bpd, &mut bbuf, RW);
        let (listener, port) = b.listen(3);
        let conn = connect(&a, aqp, &b, bqp, 3, port, 10);
        Pair {
            a,
            b,
            apd,
            bpd,
            acq,
            bcq,
            aqp,
            bqp,
            abuf,
            bbuf,
            amr,
            bmr,
            at,
            bt,
            listener,
            conn,
            net,
        }
    }

    pub fn pump(&self) {
        pump(&[&self.a, &self.b]);
    }

    /// Posts `n` receives of 1 KiB on B (contexts `base..`).
    pub fn receives(&self, n: usize, base: usize) {
        for i in 0..n {
            let s = sge(self.bbuf.va(i * 1024), 1024, self.bt);
            assert_eq!(
                ndk!(self.bqp, NdkReceive, (base + i) as PVOID, &s, 1),
                STATUS_SUCCESS
            );
        }
    }

    /// Disconnects and closes everything (children last, so parents pend),
    /// then requires that no object is left and that each pending close
    /// completed exactly once. Returns the completions drained on the way.
    pub fn teardown(self) -> (Vec<NDK_RESULT_EX>, Vec<NDK_RESULT_EX>) {
        let _ = ndk!(self.conn.active, NdkDisconnect, None, ptr::null_mut());
        self.pump();
        let _ = ndk!(self.conn.passive, NdkDisconnect, None, ptr::null_mut());
        self.pump();
        let ra = results(self.acq);
        let rb = results(self.bcq);
        let net = &self.net;
        let mut pending = Vec::new();
        net.close_rec(self.apd, 1000, &mut pending);
        net.close_rec(self.bpd, 1001, &mut pending);
        net.close_rec(self.amr, 1002, &mut pending);
        net.close_rec(self.bmr, 1003, &mut pending);
        net.close_rec(self.conn.active, 1004, &mut pending);
        net.close_rec(self.conn.passive, 1005, &mut pending);
        net.close_rec(self.listener, 1006, &mut pending);
        net.close_rec(self.aqp, 1007, &mut pending);
        net.close_rec(self.bqp, 1008, &mut pending);
        net.close_rec(self.acq, 1009, &mut pending);
        net.close_rec(self.bcq, 1010, &mut pending);
        self.pump();
        assert_eq!(self.a.objects(), 0);
        assert_eq!(self.b.objects(), 0);
        let log = net.take_log();
        for ctx in 1000..=1010 {
            let n = log.iter().filter(|e| **e == Ev::Close(ctx)).count();
            assert_eq!(n, usize::from(pending.contains(&ctx)), "{ctx}: {log:?}");
        }
        (ra, rb)
    }
}
