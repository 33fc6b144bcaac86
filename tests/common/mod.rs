//! The consumer side of the harness: a host `Platform` (a real lock, a
//! clock the test moves, memory limited to the test's own buffers),
//! callbacks that log every upcall, and helpers that reach the provider
//! only through the NDK_*_DISPATCH function pointers, as SMB Direct does.
#![allow(dead_code, clippy::missing_safety_doc)]
// Every unsafe block names the invariant it relies on.
#![deny(clippy::undocumented_unsafe_blocks)]

use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use ndk::abi::{MdlRange, Platform, RawLock, close_adapter, io, open_adapter};
use ndk::provider::{Limits, ProviderConfig};
use ndkpi::*;
use roce::cm::CmConfig;
use roce::device::{DeviceConfig, MAX_DATAGRAM};
use roce::framing::IpMode;
use roce::rc::EngineConfig;
use roce::time::Instant;

/// Calls `$f` of `$obj`'s dispatch table with `$obj` first.
macro_rules! ndk {
    ($obj:expr, $f:ident $(, $a:expr)* $(,)?) => {{
        let o = $obj;
        #[allow(unused_unsafe)]
        // SAFETY: `$obj` is a live NDK object the provider returned (or a
        // deliberately bad one the provider must refuse); its Dispatch
        // points at the provider's static table, whose slot `$f` is set.
        unsafe {
            ((*(*o).Dispatch).$f.expect(stringify!($f)))(o $(, $a)*)
        }
    }};
}

// ---- the platform ----

/// A spin lock: the kernel's KSPIN_LOCK on the host.
pub struct SpinLock(AtomicBool);

impl RawLock for SpinLock {
    fn lock(&self) {
        while self
            .0
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            std::hint::spin_loop();
            std::thread::yield_now();
        }
    }
    fn unlock(&self) {
        self.0.store(false, Ordering::Release);
    }
}

/// What the harness passes as an MDL: a virtually contiguous buffer.
#[repr(C)]
pub struct HostMdl {
    pub va: *mut u8,
    pub len: usize,
}

/// The host shell's services. Memory access is limited to the buffers the
/// test made, so a provider bug is a failed access, not a wild write.
pub struct HostPlatform {
    clock: AtomicU64,
    ranges: Mutex<Vec<(u64, u64)>>,
}

impl HostPlatform {
    pub fn new() -> Arc<HostPlatform> {
        Arc::new(HostPlatform {
            clock: AtomicU64::new(1),
            ranges: Mutex::new(Vec::new()),
        })
    }
    /// Moves the clock on.
    pub fn advance(&self, nanos: u64) {
        self.clock.fetch_add(nanos, Ordering::SeqCst);
    }
    fn allow(&self, start: u64, len: u64) {
        self.ranges.lock().unwrap().push((start, len));
    }
    fn forbid(&self, start: u64) {
        self.ranges.lock().unwrap().retain(|r| r.0 != start);
    }
    fn mapped(&self, addr: u64, len: usize) -> bool {
        let end = addr.checked_add(len as u64);
        self.ranges
            .lock()
            .unwrap()
            .iter()
            .any(|&(s, l)| addr >= s && end.is_some_and(|e| e <= s + l))
    }
}

impl Platform for HostPlatform {
    fn new_lock(&self) -> Box<dyn RawLock> {
        Box::new(SpinLock(AtomicBool::new(false)))
    }
    fn now(&self) -> Instant {
        Instant::from_nanos(self.clock.load(Ordering::SeqCst))
    }
    fn wake(&self) {}
    unsafe fn mdl_range(&self, mdl: *mut MDL) -> Option<MdlRange> {
        // SAFETY: the harness only hands the provider MDLs that are
        // HostMdls (Buffer::mdl, Buffer::sub_mdl) or null.
        let m = unsafe { mdl.cast::<HostMdl>().as_ref() }?;
        Some(MdlRange {
            virtual_address: m.va as u64,
            logical_address: m.va as u64,
            length: m.len as u64,
        })
    }
    unsafe fn mdl_next(&self, _mdl: *mut MDL) -> *mut MDL {
        // These MDLs are single (crates/ndk/tests/mdl_chain.rs chains them).
        ptr::null_mut()
    }
    fn read(&self, addr: u64, dst: &mut [u8]) -> bool {
        if !self.mapped(addr, dst.len()) {
            return false;
        }
        // SAFETY: `mapped` found [addr, addr + len) inside a live Buffer of
        // the test (a Buffer forbids its range before it is freed).
        unsafe { ptr::copy_nonoverlapping(addr as *const u8, dst.as_mut_ptr(), dst.len()) };
        true
    }
    fn write(&self, addr: u64, src: &[u8]) -> bool {
        if !self.mapped(addr, src.len()) {
            return false;
        }
        // SAFETY: as in `read`: [addr, addr + len) is inside a live Buffer.
        unsafe { ptr::copy_nonoverlapping(src.as_ptr(), addr as *mut u8, src.len()) };
        true
    }
}

/// A buffer the provider may reach, with its MDL. Accessed only through
/// raw copies, since the engine writes into it behind Rust's back.
pub struct Buffer {
    ptr: *mut u8,
    len: usize,
    mdl: Box<HostMdl>,
    platform: Arc<HostPlatform>,
}

// SAFETY: the buffer's memory is only reached through raw copies (never
// through references), and its allocation lives until drop.
unsafe impl Send for Buffer {}
// SAFETY: as for Send: no references into the memory are handed out.
unsafe impl Sync for Buffer {}

impl Buffer {
    pub fn new(platform: &Arc<HostPlatform>, len: usize) -> Buffer {
        // Page aligned, as NdkBuildLAM's pages are.
        let layout = std::alloc::Layout::from_size_align(len, 4096).unwrap();
        // SAFETY: `layout` has a non-zero size (every test buffer is
        // non-empty) and a valid alignment; null is checked below.
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
        assert!(!ptr.is_null());
        platform.allow(ptr as u64, len as u64);
        Buffer {
            ptr,
            len,
            mdl: Box::new(HostMdl { va: ptr, len }),
            platform: platform.clone(),
        }
    }
    pub fn va(&self, off: usize) -> u64 {
        assert!(off <= self.len);
        self.ptr as u64 + off as u64
    }
    pub fn mdl(&mut self) -> *mut MDL {
        (&mut *self.mdl as *mut HostMdl).cast()
    }
    /// An MDL for `len` bytes at `off`.
    pub fn sub_mdl(&self, off: usize, len: usize) -> Box<HostMdl> {
        assert!(off + len <= self.len);
        Box::new(HostMdl {
            // SAFETY: off + len <= self.len, asserted above.
            va: unsafe { self.ptr.add(off) },
            len,
        })
    }
    pub fn read(&self, off: usize, len: usize) -> Vec<u8> {
        assert!(off + len <= self.len);
        let mut v = vec![0u8; len];
        // SAFETY: off + len <= self.len (asserted) and `v` holds len bytes.
        unsafe { ptr::copy_nonoverlapping(self.ptr.add(off), v.as_mut_ptr(), len) };
        v
    }
    pub fn write(&self, off: usize, bytes: &[u8]) {
        assert!(off + bytes.len() <= self.len);
        // SAFETY: off + bytes.len() <= self.len, asserted above.
        unsafe { ptr::copy_nonoverlapping(bytes.as_ptr(), self.ptr.add(off), bytes.len()) };
    }
    /// A recognizable pattern.
    pub fn fill(&self, off: usize, len: usize, seed: u8) {
        let v: Vec<u8> = (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect();
        self.write(off, &v);
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        self.platform.forbid(self.ptr as u64);
        let layout = std::alloc::Layout::from_size_align(self.len, 4096).unwrap();
        // SAFETY: allocated in `new` with this layout, freed once; the
        // platform no longer lets the provider reach it.
        unsafe { std::alloc::dealloc(self.ptr, layout) };
    }
}

// ---- callbacks: every upcall lands in one log ----

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ev {
    Request(usize, NTSTATUS),
    Close(usize),
    Cq(usize, NTSTATUS),
    Srq(usize, NTSTATUS),
    Connect(usize, usize),
    Disconnect(usize),
}

static LOG: Mutex<Vec<Ev>> = Mutex::new(Vec::new());
static SERIAL: Mutex<()> = Mutex::new(());

/// Serializes the tests of one file (the log is global); a failed test
/// does not poison the others.
pub fn serial() -> MutexGuard<'static, ()> {
    let g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    take_log();
    g
}

pub fn log(e: Ev) {
    LOG.lock().unwrap_or_else(|e| e.into_inner()).push(e);
}

pub fn take_log() -> Vec<Ev> {
    std::mem::take(&mut *LOG.lock().unwrap_or_else(|e| e.into_inner()))
}

pub fn peek_log() -> Vec<Ev> {
    LOG.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Removes the first event `want` from the log, failing if it is absent.
pub fn expect(want: Ev) {
    let mut l = LOG.lock().unwrap_or_else(|e| e.into_inner());
    match l.iter().position(|e| *e == want) {
        Some(i) => {
            l.remove(i);
        }
        None => panic!("expected {want:?} in {:?}", *l),
    }
}

/// How many times `e` is in the log (not removed).
pub fn count(e: Ev) -> usize {
    LOG.lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter(|x| **x == e)
        .count()
}

pub unsafe extern "system" fn on_request(ctx: PVOID, st: NTSTATUS) {
    log(Ev::Request(ctx as usize, st));
}
pub unsafe extern "system" fn on_close(ctx: PVOID) {
    log(Ev::Close(ctx as usize));
}
pub unsafe extern "system" fn on_cq(ctx: PVOID, st: NTSTATUS) {
    log(Ev::Cq(ctx as usize, st));
}
pub unsafe extern "system" fn on_srq(ctx: PVOID, st: NTSTATUS) {
    log(Ev::Srq(ctx as usize, st));
}
pub unsafe extern "system" fn on_disconnect(ctx: PVOID) {
    log(Ev::Disconnect(ctx as usize));
}

/// QPs waiting to be accepted, per listener context: the connect event
/// accepts from inside the callback (a re-entrant call, the IRQL rules of the NDKPI pages), with private
/// data "ndk!" and read limits 4/4.
// Ordered, not hashed: the ndk_api fuzz target runs this harness, and a
// hashed map's per-process keys would make its runs differ by seed alone.
type AcceptPlans = BTreeMap<usize, VecDeque<(usize, usize)>>;
static ACCEPT: Mutex<Option<AcceptPlans>> = Mutex::new(None);

/// The next connection on the listener with context `listener_ctx` is
/// accepted onto `qp`; the accept completes to `done_ctx`, and the
/// connector's disconnect event reports `done_ctx + 1`.
pub fn plan_accept(listener_ctx: usize, qp: *mut NDK_QP, done_ctx: usize) {
    ACCEPT
        .lock()
        .unwrap()
        .get_or_insert_with(BTreeMap::new)
        .entry(listener_ctx)
        .or_default()
        .push_back((qp as usize, done_ctx));
}

pub unsafe extern "system" fn on_connect(ctx: PVOID, conn: *mut NDK_CONNECTOR) {
    log(Ev::Connect(ctx as usize, conn as usize));
    let next = ACCEPT
        .lock()
        .unwrap()
        .get_or_insert_with(BTreeMap::new)
        .get_mut(&(ctx as usize))
        .and_then(|q| q.pop_front());
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
        (done + 1) as PVOID,
        Some(on_request),
        done as PVOID
    );
    assert_eq!(st, STATUS_PENDING);
}

// ---- calls through the dispatch tables ----

/// NdkCloseXxx (the first slot of every dispatch table) with `on_close`.
pub fn close<T>(obj: *mut T, ctx: usize) -> NTSTATUS {
    // Every NDK object is {header, dispatch}; every dispatch table starts
    // with its close function (the NDKPI object lifetime requirements page).
    // SAFETY: `obj` is a live NDK object of the provider; every NDK object
    // starts with NDK_OBJECT_HEADER and Dispatch, and every dispatch table
    // starts with an NDK_FN_CLOSE_OBJECT, so reading it as a QP's is sound.
    unsafe {
        let o = obj.cast::<NDK_QP>();
        let close = *(*o).Dispatch.cast::<NDK_FN_CLOSE_OBJECT>();
        close.unwrap()(obj.cast(), Some(on_close), ctx as PVOID)
    }
}

/// Closes `obj`: STATUS_SUCCESS, or STATUS_PENDING recorded in `pending`
/// (a close never fails, the NDK_FN_CLOSE_COMPLETION page: a close never fails).
pub fn close_rec<T>(obj: *mut T, ctx: usize, pending: &mut Vec<usize>) -> NTSTATUS {
    let st = close(obj, ctx);
    match st {
        STATUS_PENDING => pending.push(ctx),
        STATUS_SUCCESS => {}
        other => panic!("close returned {other:#x}"),
    }
    st
}

/// Closes and requires an inline close (STATUS_SUCCESS, no callback).
pub fn close_now<T>(obj: *mut T) {
    assert_eq!(close(obj, 0), STATUS_SUCCESS);
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

pub fn sockaddr(a: SocketAddr) -> (Vec<u8>, ULONG) {
    fn raw<T>(s: &T) -> Vec<u8> {
        // SAFETY: `s` is a live reference to size_of::<T>() bytes of a
        // plain-data sockaddr (no padding in SOCKADDR_IN/SOCKADDR_IN6).
        unsafe { std::slice::from_raw_parts((s as *const T).cast::<u8>(), size_of::<T>()) }.to_vec()
    }
    match a {
        SocketAddr::V4(v4) => (
            raw(&SOCKADDR_IN {
                sin_family: AF_INET,
                sin_port: v4.port().to_be(),
                sin_addr: IN_ADDR {
                    s_addr: v4.ip().octets(),
                },
                sin_zero: [0; 8],
            }),
            size_of::<SOCKADDR_IN>() as ULONG,
        ),
        SocketAddr::V6(v6) => (
            raw(&SOCKADDR_IN6 {
                sin6_family: AF_INET6,
                sin6_port: v6.port().to_be(),
                sin6_flowinfo: 0,
                sin6_addr: IN6_ADDR {
                    s6_addr: v6.ip().octets(),
                },
                sin6_scope_id: 0,
            }),
            size_of::<SOCKADDR_IN6>() as ULONG,
        ),
    }
}

/// One opened adapter.
pub struct Adapter {
    pub ptr: *mut NDK_ADAPTER,
    pub ip: IpAddr,
    pub platform: Arc<HostPlatform>,
}

// SAFETY: the adapter's provider state is behind the platform's lock; the
// pointer is only passed to the provider's thread-safe entry points.
unsafe impl Send for Adapter {}
// SAFETY: as for Send.
unsafe impl Sync for Adapter {}

pub fn config(ip: IpAddr, seed: u64, limits: Limits) -> ProviderConfig {
    ProviderConfig {
        device: DeviceConfig {
            ip_mode: IpMode::Udp,
            udp_source_port: 4791,
            ca_guid: seed,
            cm: CmConfig::default(),
            rc: EngineConfig {
                first_qpn: 17,
                key_seed: seed as u32,
                qpn_epoch: 0,
            },
            seed,
        },
        addresses: vec![ip],
        path_mtu: 1024,
        version: NDK_VERSION_1_2,
        limits,
    }
}

impl Adapter {
    pub fn open(ip: IpAddr, seed: u64, platform: &Arc<HostPlatform>) -> Adapter {
        Self::open_with(ip, seed, platform, Limits::default())
    }

    pub fn open_with(
        ip: IpAddr,
        seed: u64,
        platform: &Arc<HostPlatform>,
        limits: Limits,
    ) -> Adapter {
        let ptr = open_adapter(platform.clone(), config(ip, seed, limits), NDK_VERSION_1_2)
            .expect("open");
        Adapter {
            ptr,
            ip,
            platform: platform.clone(),
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
            platform: self.platform.clone(),
        }
    }

    pub fn info(&self) -> NDK_ADAPTER_INFO {
        // SAFETY: NDK_ADAPTER_INFO is plain integers; all zeros is valid.
        let mut info: NDK_ADAPTER_INFO = unsafe { std::mem::zeroed() };
        let mut size = size_of::<NDK_ADAPTER_INFO>() as ULONG;
        assert_eq!(
            ndk!(self.ptr, NdkQueryAdapterInfo, &mut info, &mut size),
            STATUS_SUCCESS
        );
        info
    }

    pub fn objects(&self) -> usize {
        io::object_count(self.ptr)
    }

    /// The adapter's connections and endpoints, as the OIDs report them.
    pub fn snapshot(&self) -> ndk::oids::Snapshot {
        io::snapshot(self.ptr).expect("open adapter")
    }

    pub fn pd(&self) -> *mut NDK_PD {
        let mut pd = ptr::null_mut();
        assert_eq!(
            ndk!(self.ptr, NdkCreatePd, None, ptr::null_mut(), &mut pd),
            STATUS_SUCCESS
        );
        // SAFETY: NdkCreatePd succeeded, so `pd` is a live PD.
        unsafe { assert_eq!((*pd).Header.ObjectType, NdkObjectTypePd) };
        pd
    }

    pub fn try_cq(&self, depth: u32, ctx: usize) -> Result<*mut NDK_CQ, NTSTATUS> {
        let mut cq = ptr::null_mut();
        let st = ndk!(
            self.ptr,
            NdkCreateCq,
            depth,
            Some(on_cq),
            ctx as PVOID,
            ptr::null_mut(),
            None,
            ptr::null_mut(),
            &mut cq
        );
        if st == STATUS_SUCCESS {
            // SAFETY: NdkCreateCq succeeded, so `cq` is a live CQ.
            unsafe { assert_eq!((*cq).Header.ObjectType, NdkObjectTypeCq) };
            Ok(cq)
        } else {
            assert!(cq.is_null(), "no object on failure");
            Err(st)
        }
    }

    pub fn cq(&self, depth: u32, ctx: usize) -> *mut NDK_CQ {
        self.try_cq(depth, ctx).expect("create CQ")
    }

    pub fn listener(&self, ctx: usize) -> *mut NDK_LISTENER {
        let mut l = ptr::null_mut();
        assert_eq!(
            ndk!(
                self.ptr,
                NdkCreateListener,
                Some(on_connect),
                ctx as PVOID,
                None,
                ptr::null_mut(),
                &mut l
            ),
            STATUS_SUCCESS
        );
        l
    }

    /// A listener on port 0 of this adapter's address; returns the port.
    pub fn listen(&self, ctx: usize) -> (*mut NDK_LISTENER, u16) {
        let l = self.listener(ctx);
        let (a, len) = sockaddr(SocketAddr::new(self.ip, 0));
        assert_eq!(
            ndk!(l, NdkListen, a.as_ptr().cast(), len, None, ptr::null_mut()),
            STATUS_SUCCESS
        );
        let mut bound = [0u8; 28];
        let mut blen = 28;
        assert_eq!(
            ndk!(l, NdkGetLocalAddress, bound.as_mut_ptr().cast(), &mut blen),
            STATUS_SUCCESS
        );
        let port = u16::from_be_bytes([bound[2], bound[3]]);
        assert!(port >= 49152);
        (l, port)
    }

    pub fn connector(&self) -> *mut NDK_CONNECTOR {
        let mut c = ptr::null_mut();
        assert_eq!(
            ndk!(self.ptr, NdkCreateConnector, None, ptr::null_mut(), &mut c),
            STATUS_SUCCESS
        );
        c
    }
}

impl Drop for Adapter {
    fn drop(&mut self) {
        // SAFETY: self.ptr came from open_adapter/open_adapter_shared and
        // is closed once, here.
        unsafe { close_adapter(self.ptr) };
    }
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
    let mut qp = ptr::null_mut();
    let st = ndk!(
        pd,
        NdkCreateQp,
        rcq,
        icq,
        ctx as PVOID,
        depth.0,
        depth.1,
        sge.0,
        sge.1,
        inline,
        None,
        ptr::null_mut(),
        &mut qp
    );
    if st == STATUS_SUCCESS {
        // SAFETY: NdkCreateQp succeeded, so `qp` is a live QP.
        unsafe { assert_eq!((*qp).Header.ObjectType, NdkObjectTypeQp) };
        Ok(qp)
    } else {
        assert!(qp.is_null());
        Err(st)
    }
}

/// A QP with receive/initiator depth 32, 4 SGEs each, 128 inline bytes.
pub fn qp(pd: *mut NDK_PD, cq: *mut NDK_CQ, ctx: usize) -> *mut NDK_QP {
    try_qp(pd, cq, cq, ctx, (32, 32), (4, 4), 128).expect("create QP")
}

pub fn mr(pd: *mut NDK_PD, fast: bool) -> *mut NDK_MR {
    let mut mr = ptr::null_mut();
    assert_eq!(
        ndk!(
            pd,
            NdkCreateMr,
            if fast { TRUE } else { FALSE },
            None,
            ptr::null_mut(),
            &mut mr
        ),
        STATUS_SUCCESS
    );
    mr
}

/// A regular MR over all of `buf`; returns it and its token.
pub fn register(pd: *mut NDK_PD, buf: &mut Buffer, flags: ULONG) -> (*mut NDK_MR, u32) {
    let m = mr(pd, false);
    assert_eq!(
        ndk!(
            m,
            NdkRegisterMr,
            buf.mdl(),
            buf.len,
            flags,
            None,
            ptr::null_mut()
        ),
        STATUS_SUCCESS
    );
    let token = ndk!(m, NdkGetLocalTokenFromMr);
    assert_eq!(token, ndk!(m, NdkGetRemoteTokenFromMr));
    (m, token)
}

pub const RW: ULONG =
    NDK_MR_FLAG_ALLOW_LOCAL_WRITE | NDK_MR_FLAG_ALLOW_REMOTE_READ | NDK_MR_FLAG_ALLOW_REMOTE_WRITE;

pub fn results(cq: *mut NDK_CQ) -> Vec<NDK_RESULT_EX> {
    let mut out: Vec<NDK_RESULT_EX> = Vec::with_capacity(256);
    let n = ndk!(cq, NdkGetCqResultsEx, out.as_mut_ptr(), 256);
    assert!(n as usize <= out.capacity(), "{n} results for 256 slots");
    // SAFETY: the provider wrote n <= 256 = capacity results into `out`.
    unsafe { out.set_len(n as usize) };
    out
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
            if io::poll_timeout(from.ptr).is_some_and(|t| t <= from.platform.now()) {
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
        adapters[0].platform.advance(step);
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
    plan_accept(listener_ctx, b_qp, base + 2);
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
        base as PVOID
    );
    assert_eq!(st, STATUS_PENDING);
    pump(&[a, b]);
    expect(Ev::Request(base, STATUS_SUCCESS));
    let passive = {
        let mut l = LOG.lock().unwrap_or_else(|e| e.into_inner());
        let i = l
            .iter()
            .position(|e| matches!(e, Ev::Connect(c, _) if *c == listener_ctx))
            .expect("connect event");
        let Ev::Connect(_, p) = l.remove(i) else {
            unreachable!()
        };
        p as *mut NDK_CONNECTOR
    };
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
            (base + 1) as PVOID,
            None,
            ptr::null_mut()
        ),
        STATUS_SUCCESS
    );
    pump(&[a, b]);
    expect(Ev::Request(base + 2, STATUS_SUCCESS));
    Connection {
        active: conn,
        passive,
    }
}

/// Two adapters with one connected QP pair (A active, B passive), each with
/// a PD, a CQ (contexts 7 and 8), a 64 KiB buffer registered RW.
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
}

pub const PA_QP: usize = 0xA1;
pub const PB_QP: usize = 0xB1;

impl Pair {
    pub fn new(net: u8, limits: Limits) -> Pair {
        let platform = HostPlatform::new();
        let a_ip = IpAddr::V4(std::net::Ipv4Addr::new(10, net, 0, 1));
        let b_ip = IpAddr::V4(std::net::Ipv4Addr::new(10, net, 0, 2));
        let a = Adapter::open_with(a_ip, u64::from(net) * 2, &platform, limits);
        let b = Adapter::open_with(b_ip, u64::from(net) * 2 + 1, &platform, limits);
        let (apd, bpd) = (a.pd(), b.pd());
        let (acq, bcq) = (a.cq(256, 7), b.cq(256, 8));
        let (aqp, bqp) = (qp(apd, acq, PA_QP), qp(bpd, bcq, PB_QP));
        let mut abuf = Buffer::new(&platform, 64 * 1024);
        let mut bbuf = Buffer::new(&platform, 64 * 1024);
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
        let mut pending = Vec::new();
        close_rec(self.apd, 1000, &mut pending);
        close_rec(self.bpd, 1001, &mut pending);
        close_rec(self.amr, 1002, &mut pending);
        close_rec(self.bmr, 1003, &mut pending);
        close_rec(self.conn.active, 1004, &mut pending);
        close_rec(self.conn.passive, 1005, &mut pending);
        close_rec(self.listener, 1006, &mut pending);
        close_rec(self.aqp, 1007, &mut pending);
        close_rec(self.bqp, 1008, &mut pending);
        close_rec(self.acq, 1009, &mut pending);
        close_rec(self.bcq, 1010, &mut pending);
        self.pump();
        assert_eq!(self.a.objects(), 0);
        assert_eq!(self.b.objects(), 0);
        let log = take_log();
        for ctx in 1000..=1010 {
            let n = log.iter().filter(|e| **e == Ev::Close(ctx)).count();
            assert_eq!(n, usize::from(pending.contains(&ctx)), "{ctx}: {log:?}");
        }
        (ra, rb)
    }
}
