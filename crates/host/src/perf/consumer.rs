//! ndkperf's side of the consumer kit (crates/consumer): the kit's
//! completions, drive and typed calls under the names the roles use, with
//! failures as [`PerfError`]s, and registered buffers.

use super::*;

pub(super) use ndk_consumer::{
    Drive, Req, Signal, empty_result, req_closed as on_close, req_done as on_request, sockaddr,
};

/// Makes a request (given its completion context; the completion is
/// [`on_request`]) and waits (bounded) for its status.
pub(super) use ndk_consumer::request_ctx as sync_req;

/// The kit's view of the adapter `a`.
fn adapter(a: *mut NDK_ADAPTER) -> ndk_consumer::Adapter {
    // SAFETY: ndkperf's adapters stay open while their objects are used
    // (the roles close them last).
    unsafe { ndk_consumer::Adapter::from_raw(a) }
}

/// The raw object a create call made, or "`what` failed: status".
fn made<H, R>(r: Result<H, NTSTATUS>, into_raw: fn(H) -> R, what: &str) -> Result<R, PerfError> {
    r.map(into_raw)
        .or_else(|st| err(format!("{what} failed: {}", status_name(st))))
}

pub(super) fn create_pd(a: *mut NDK_ADAPTER) -> Result<*mut NDK_PD, PerfError> {
    made(
        adapter(a).create_pd(),
        ndk_consumer::Pd::into_raw,
        "NdkCreatePd",
    )
}

pub(super) fn create_cq(
    a: *mut NDK_ADAPTER,
    depth: u32,
    notify: NDK_FN_CQ_NOTIFICATION_CALLBACK,
    ctx: PVOID,
) -> Result<*mut NDK_CQ, PerfError> {
    let r = adapter(a).create_cq(depth, notify, ctx);
    made(
        r,
        ndk_consumer::Cq::into_raw,
        &format!("NdkCreateCq({depth})"),
    )
}

/// A view of a live PD, CQ or QP of ndkperf's (never closed through it).
macro_rules! view {
    ($t:ident, $p:expr) => {{
        // SAFETY: a live object of an open adapter (the callers' promise,
        // as for every raw object the roles pass).
        unsafe { ndk_consumer::$t::from_raw($p) }
    }};
}

pub(super) fn create_qp(
    pd: *mut NDK_PD,
    cq: *mut NDK_CQ,
    ctx: PVOID,
    recv_depth: u32,
    init_depth: u32,
) -> Result<*mut NDK_QP, PerfError> {
    let cq = view!(Cq, cq);
    let c = ndk_consumer::QpConfig::on(&cq, ctx, recv_depth, init_depth);
    made(
        view!(Pd, pd).create_qp(&c),
        ndk_consumer::Qp::into_raw,
        "NdkCreateQp",
    )
}

pub(super) fn create_connector(a: *mut NDK_ADAPTER) -> Result<*mut NDK_CONNECTOR, PerfError> {
    let r = adapter(a).create_connector();
    made(r, ndk_consumer::Connector::into_raw, "NdkCreateConnector")
}

/// Closes `obj` through `close`; `then` runs when the close completed
/// (inline or later). Never waits.
pub(super) fn close_then(
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
pub(super) fn close_wait(
    obj: *mut NDK_OBJECT_HEADER,
    close: NDK_FN_CLOSE_OBJECT,
    t: Duration,
) -> bool {
    if obj.is_null() {
        return true;
    }
    let s = Arc::new(Signal::default());
    let s2 = Arc::clone(&s);
    close_then(obj, close, move |st| s2.set(st));
    s.wait(t).is_some()
}

/// Whether this process's provider reads wdm.h MDLs (the Windows shell
/// under crates/ndis-host) rather than the host platform's.
static KERNEL_MDLS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Describes every buffer ndkperf registers from now on with wdm.h MDLs:
/// for a process whose provider is the Windows shell (crates/ndis-host's
/// `ndis-host-tap`, on an [`Adapter::borrowed`](crate::adapter::Adapter::borrowed)).
pub fn use_kernel_mdls() {
    KERNEL_MDLS.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// Memory registered with the provider.
pub(super) struct Buf {
    mem: ndk_consumer::Memory,
    pub(super) len: usize,
    pub(super) mr: *mut NDK_MR,
    pub(super) token: u32,
}

// SAFETY: the memory is shared with the provider by design; the consumer
// reads it only after a completion ordered it (through the adapter lock).
unsafe impl Send for Buf {}
// SAFETY: as above.
unsafe impl Sync for Buf {}

impl Buf {
    pub(super) fn new(pd: *mut NDK_PD, len: usize) -> Result<Buf, PerfError> {
        let len = len.max(64);
        // A size the host cannot give is an error, not an abort; the kit's
        // memory comes zeroed from the allocator, so a 1 GiB buffer costs
        // no time on the I/O thread that accepts a connection.
        let kind = if KERNEL_MDLS.load(std::sync::atomic::Ordering::SeqCst) {
            ndk_consumer::MdlKind::Kernel
        } else {
            ndk_consumer::MdlKind::Host
        };
        let Some(mut mem) = ndk_consumer::Memory::try_new(len, kind, None) else {
            return err(format!(
                "cannot allocate a {len}-byte buffer for the messages \
                 (not enough memory for this -s and -w)"
            ));
        };
        let mr = made(view!(Pd, pd).create_mr(false), |m| m, "NdkCreateMr")?;
        // SAFETY: the memory's HostMdl, which `Buf` keeps (with the memory)
        // until the MR's close completed (`release`).
        let st = unsafe { mr.register(mem.mdl(), len, ndk_consumer::MR_RW, None, ptr::null_mut()) };
        if st != STATUS_SUCCESS {
            let mr = mr.into_raw();
            let _ = close_wait(mr.cast(), disp!(mr, NdkCloseMr), Duration::from_secs(1));
            return err(format!("NdkRegisterMr({len}) failed: {}", status_name(st)));
        }
        let token = mr.local_token();
        Ok(Buf {
            mem,
            len,
            mr: mr.into_raw(),
            token,
        })
    }

    pub(super) fn addr(&self, off: usize) -> u64 {
        self.mem.va(off)
    }

    pub(super) fn sge(&self, off: usize, len: usize) -> NDK_SGE {
        self.mem.sge(off, len, self.token)
    }

    /// # Safety
    /// No RDMA into `off..off+len` is in flight.
    #[allow(clippy::mut_from_ref)] // shared with the provider; see the contract
    pub(super) unsafe fn bytes_mut(&self, off: usize, len: usize) -> &mut [u8] {
        // SAFETY: per the contract.
        unsafe { self.mem.slice_mut(off, len) }
    }

    /// The first byte.
    pub(super) fn ptr(&self) -> *mut u8 {
        self.mem.va(0) as *mut u8
    }

    /// Closes the MR and waits up to `t`: frees the memory if the close
    /// completed, else leaves it to the provider (leaked).
    pub(super) fn close_wait(self, t: Duration) {
        let Buf { mem, mr, .. } = self;
        if !close_wait(mr.cast(), disp!(mr, NdkCloseMr), t) {
            std::mem::forget(mem);
        }
    }

    /// Closes the MR, then frees the memory (when the close completed).
    pub(super) fn release(self) {
        let Buf { mem, mr, .. } = self;
        close_then(mr.cast(), disp!(mr, NdkCloseMr), move |_| drop(mem));
    }
}

/// A post's status as a result.
fn post(st: NTSTATUS) -> Result<(), NTSTATUS> {
    if st == STATUS_SUCCESS {
        Ok(())
    } else {
        Err(st)
    }
}

pub(super) fn qp_send(
    qp: *mut NDK_QP,
    ctx: usize,
    sge: &NDK_SGE,
    flags: ULONG,
) -> Result<(), NTSTATUS> {
    post(view!(Qp, qp).send(ctx, std::slice::from_ref(sge), flags))
}

pub(super) fn qp_recv(qp: *mut NDK_QP, ctx: usize, sge: &NDK_SGE) -> Result<(), NTSTATUS> {
    post(view!(Qp, qp).receive(ctx, std::slice::from_ref(sge)))
}

pub(super) fn qp_write(
    qp: *mut NDK_QP,
    ctx: usize,
    sge: &NDK_SGE,
    raddr: u64,
    rkey: u32,
) -> Result<(), NTSTATUS> {
    post(view!(Qp, qp).write(ctx, std::slice::from_ref(sge), raddr, rkey, 0))
}

pub(super) fn qp_read(
    qp: *mut NDK_QP,
    ctx: usize,
    sge: &NDK_SGE,
    raddr: u64,
    rkey: u32,
) -> Result<(), NTSTATUS> {
    post(view!(Qp, qp).read(ctx, std::slice::from_ref(sge), raddr, rkey, 0))
}

pub(super) const RESULTS: usize = 64;

/// Polls up to `out.len()` results.
pub(super) fn cq_poll(cq: *mut NDK_CQ, out: &mut [NDK_RESULT_EX]) -> usize {
    view!(Cq, cq).poll(out)
}

pub(super) fn cq_arm(cq: *mut NDK_CQ) {
    view!(Cq, cq).arm(NDK_CQ_NOTIFY_ANY);
}

pub(super) fn empty_results() -> [NDK_RESULT_EX; RESULTS] {
    [empty_result(); RESULTS]
}
