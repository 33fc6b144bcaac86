//! The consumer's side of the NDK dispatch tables, shared by the SMB Direct
//! client ([`crate::smb`]) and server ([`crate::smb_server`]): `disp!`, the
//! creation of PDs, CQs, QPs and MRs, memory registration, posting receives
//! and sends, polling and arming a CQ, waiting for a request or a close
//! that pended, and the counter the upcalls kick. What only one side does
//! (connecting, listening and accepting, fast registration, RDMA Read and
//! Write) stays with it.
//!
//! Provider objects travel as raw pointers, as through NDKPI. Every
//! function here that takes one needs it live: made on an adapter that is
//! still open, and not yet closed. That is the callers' to ensure, as it
//! is for `disp!`; so is the lifetime of any context or memory handed to
//! the provider through a raw pointer (it must outlive the object that
//! holds it, or the adapter).
//!
//! The upcalls here only record and wake; none of them calls back into
//! the provider, and nothing here holds a lock across a call into it.

use std::mem::size_of;
use std::net::SocketAddrV4;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use host::adapter::HostMdl;
use ndkpi::*;

/// The dispatch function `$f` of provider object `$obj`.
macro_rules! disp {
    ($obj:expr, $f:ident) => {
        // SAFETY: `$obj` is a live provider object; its dispatch table is
        // static.
        unsafe { (*(*$obj).Dispatch).$f }
    };
}
pub(crate) use disp;

/// An NTSTATUS as the reports print it: its name and value
/// (`STATUS_IO_TIMEOUT (0xc00000b5)`, [`ndkpi::StatusText`]).
pub(crate) fn status_text(st: NTSTATUS) -> String {
    ndkpi::StatusText(st).to_string()
}

/// `Ok` for STATUS_SUCCESS, else "`what` failed: status".
pub(crate) fn check(st: NTSTATUS, what: &str) -> Result<(), String> {
    if st == STATUS_SUCCESS {
        Ok(())
    } else {
        Err(failed(what, st))
    }
}

/// "`what` failed: status".
pub(crate) fn failed(what: &str, st: NTSTATUS) -> String {
    format!("{what} failed: {}", status_text(st))
}

pub(crate) fn sockaddr(a: SocketAddrV4) -> SOCKADDR_IN {
    SOCKADDR_IN {
        sin_family: AF_INET,
        sin_port: a.port().to_be(),
        sin_addr: IN_ADDR {
            s_addr: a.ip().octets(),
        },
        sin_zero: [0; 8],
    }
}

/// The length NDK calls take with a [`SOCKADDR_IN`].
pub(crate) const SOCKADDR_IN_LEN: ULONG = size_of::<SOCKADDR_IN>() as ULONG;

// ---------------------------------------------------------------------
// Upcalls that wake the consumer's thread

/// What the upcalls kick: a count and a condition variable. The
/// consumer's thread reads the count, does its work, and waits for a kick
/// it has not seen.
#[derive(Debug, Default)]
pub(crate) struct Kicks {
    n: Mutex<u64>,
    cv: Condvar,
}

impl Kicks {
    pub(crate) fn kick(&self) {
        *self.n.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        self.cv.notify_all();
    }

    /// The kicks so far.
    pub(crate) fn seen(&self) -> u64 {
        *self.n.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits up to `t` for a kick after the first `seen`.
    pub(crate) fn wait(&self, seen: u64, t: Duration) {
        let g = self.n.lock().unwrap_or_else(|p| p.into_inner());
        let _ = self
            .cv
            .wait_timeout_while(g, t, |k| *k == seen)
            .unwrap_or_else(|p| p.into_inner());
    }
}

/// The CQ notification: kicks the [`Kicks`] that is its context.
unsafe extern "system" fn on_cq(ctx: PVOID, _status: NTSTATUS) {
    // SAFETY: `create_cq` made `ctx` a `Kicks`, which outlives the CQ.
    unsafe { &*ctx.cast::<Kicks>() }.kick();
}

// ---------------------------------------------------------------------
// Objects

pub(crate) fn create_pd(a: *mut NDK_ADAPTER) -> Result<*mut NDK_PD, NTSTATUS> {
    let mut pd = ptr::null_mut();
    let st = match disp!(a, NdkCreatePd) {
        // SAFETY: live adapter, out pointer.
        Some(f) => unsafe { f(a, None, ptr::null_mut(), &mut pd) },
        None => STATUS_NOT_IMPLEMENTED,
    };
    made(st, pd)
}

/// A CQ of `depth` entries whose notifications kick `kicks`, which must
/// outlive the CQ (with its adapter).
pub(crate) fn create_cq(
    a: *mut NDK_ADAPTER,
    depth: usize,
    kicks: *const Kicks,
) -> Result<*mut NDK_CQ, NTSTATUS> {
    let mut cq = ptr::null_mut();
    let st = match disp!(a, NdkCreateCq) {
        // SAFETY: live adapter, out pointer; `kicks` outlives the CQ.
        Some(f) => unsafe {
            f(
                a,
                depth as ULONG,
                Some(on_cq),
                kicks.cast_mut().cast(),
                ptr::null_mut(),
                None,
                ptr::null_mut(),
                &mut cq,
            )
        },
        None => STATUS_NOT_IMPLEMENTED,
    };
    made(st, cq)
}

/// A QP on `pd` whose receives and initiator requests (one SGE each, no
/// inline data) complete on `cq`.
pub(crate) fn create_qp(
    pd: *mut NDK_PD,
    cq: *mut NDK_CQ,
    receive_depth: usize,
    initiator_depth: usize,
) -> Result<*mut NDK_QP, NTSTATUS> {
    let mut qp = ptr::null_mut();
    let st = match disp!(pd, NdkCreateQp) {
        // SAFETY: live PD and CQ.
        Some(f) => unsafe {
            f(
                pd,
                cq,
                cq,
                ptr::null_mut(),
                receive_depth as ULONG,
                initiator_depth as ULONG,
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
    made(st, qp)
}

/// An MR on `pd`, regular or fast-register.
pub(crate) fn create_mr(pd: *mut NDK_PD, fast_register: bool) -> Result<*mut NDK_MR, NTSTATUS> {
    let mut mr = ptr::null_mut();
    let fast = if fast_register { TRUE } else { FALSE };
    let st = match disp!(pd, NdkCreateMr) {
        // SAFETY: live PD, out pointer.
        Some(f) => unsafe { f(pd, fast, None, ptr::null_mut(), &mut mr) },
        None => STATUS_NOT_IMPLEMENTED,
    };
    made(st, mr)
}

/// The object a create call returned `st` for.
fn made<T>(st: NTSTATUS, obj: T) -> Result<T, NTSTATUS> {
    if st == STATUS_SUCCESS {
        Ok(obj)
    } else {
        Err(st)
    }
}

// ---------------------------------------------------------------------
// Memory

/// Whether memory is described with kernel MDLs (the provider is a Windows
/// shell, whose platform reads wdm.h MDLs) instead of [`HostMdl`]s.
static KERNEL_MDLS: AtomicBool = AtomicBool::new(false);

/// From now on this process describes memory with kernel MDLs: for a
/// process whose provider is the Windows shell (crates/ndis-host).
pub fn use_kernel_mdls() {
    KERNEL_MDLS.store(true, Ordering::SeqCst);
}

/// A single, mapped MDL as wdm.h lays it out on x64 (Next, Size, MdlFlags,
/// Process, MappedSystemVa, StartVa, ByteCount, ByteOffset).
#[repr(C)]
#[derive(Debug)]
struct KernelMdl {
    next: *mut KernelMdl,
    size: i16,
    flags: i16,
    process: usize,
    mapped_system_va: *mut u8,
    start_va: *mut u8,
    byte_count: u32,
    byte_offset: u32,
}

/// MDL_MAPPED_TO_SYSTEM_VA.
const MDL_MAPPED_TO_SYSTEM_VA: i16 = 0x0001;

#[derive(Debug)]
enum MdlBox {
    Host(Box<HostMdl>),
    Kernel(Box<KernelMdl>),
}

/// Zeroed process memory and the MDL that describes it, both boxed so
/// that they stay put while an MR maps them.
#[derive(Debug)]
pub(crate) struct Memory {
    pub(crate) bytes: Box<[u8]>,
    mdl: MdlBox,
}

impl Memory {
    pub(crate) fn new(len: usize) -> Memory {
        let mut bytes = vec![0u8; len].into_boxed_slice();
        let va = bytes.as_mut_ptr();
        let mdl = if KERNEL_MDLS.load(Ordering::SeqCst) {
            let page = (va as usize) & !0xFFF;
            MdlBox::Kernel(Box::new(KernelMdl {
                next: ptr::null_mut(),
                size: 0x30,
                flags: MDL_MAPPED_TO_SYSTEM_VA,
                process: 0,
                mapped_system_va: va,
                start_va: page as *mut u8,
                byte_count: len as u32,
                byte_offset: (va as usize - page) as u32,
            }))
        } else {
            MdlBox::Host(Box::new(HostMdl::new(va, len)))
        };
        Memory { bytes, mdl }
    }

    /// The MDL to hand to the provider (NdkRegisterMr, NdkBuildLAM).
    pub(crate) fn mdl(&mut self) -> *mut MDL {
        match &mut self.mdl {
            MdlBox::Host(m) => (&mut **m as *mut HostMdl).cast::<MDL>(),
            MdlBox::Kernel(m) => (&mut **m as *mut KernelMdl).cast::<MDL>(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.bytes.len()
    }

    /// One SGE over `off..off + len`, accessed through `token`.
    pub(crate) fn sge(&self, off: usize, len: usize, token: u32) -> NDK_SGE {
        NDK_SGE {
            Address: NDK_SGE_ADDRESS {
                VirtualAddress: self.bytes.as_ptr().wrapping_add(off).cast_mut().cast(),
            },
            Length: len as ULONG,
            MemoryRegionToken: token,
        }
    }
}

/// A regular MR on `pd` over `len` bytes described by `mdl`: NdkCreateMr,
/// then NdkRegisterMr with `flags`, made through `issue` (which passes the
/// call its completion callback and context and waits if it pends). The
/// memory must stay mapped until the MR is closed (with its adapter at
/// the latest).
pub(crate) fn register_mr(
    pd: *mut NDK_PD,
    mdl: *mut MDL,
    len: usize,
    flags: ULONG,
    issue: impl FnOnce(Call<'_>) -> NTSTATUS,
) -> Result<*mut NDK_MR, String> {
    let mr = create_mr(pd, false).map_err(|st| failed("NdkCreateMr", st))?;
    let st = issue(&mut |cb, ctx| match disp!(mr, NdkRegisterMr) {
        // SAFETY: live MR; `mdl` and its memory outlive the MR.
        Some(f) => unsafe { f(mr, mdl, len, flags, cb, ctx) },
        None => STATUS_NOT_IMPLEMENTED,
    });
    check(st, "NdkRegisterMr")?;
    Ok(mr)
}

/// The local token of a registered MR (0 without the dispatch function).
pub(crate) fn local_token(mr: *mut NDK_MR) -> u32 {
    // SAFETY: live, registered MR.
    disp!(mr, NdkGetLocalTokenFromMr).map_or(0, |f| unsafe { f(mr) })
}

/// The remote token of a registered MR (0 without the dispatch function).
pub(crate) fn remote_token(mr: *mut NDK_MR) -> u32 {
    // SAFETY: live, registered MR.
    disp!(mr, NdkGetRemoteTokenFromMr).map_or(0, |f| unsafe { f(mr) })
}

// ---------------------------------------------------------------------
// Work requests and completions

/// NdkReceive of one SGE with `ctx` as its request context.
pub(crate) fn receive(qp: *mut NDK_QP, ctx: usize, sge: &NDK_SGE) -> NTSTATUS {
    match disp!(qp, NdkReceive) {
        // SAFETY: live QP; the SGE is read during the call.
        Some(f) => unsafe { f(qp, ctx as PVOID, sge, 1) },
        None => STATUS_NOT_IMPLEMENTED,
    }
}

/// NdkSend of one SGE with `ctx` as its request context, or
/// NdkSendAndInvalidate naming `invalidate`.
pub(crate) fn send(
    qp: *mut NDK_QP,
    ctx: usize,
    sge: &NDK_SGE,
    invalidate: Option<u32>,
) -> NTSTATUS {
    match invalidate {
        None => match disp!(qp, NdkSend) {
            // SAFETY: live QP; the SGE is read during the call.
            Some(f) => unsafe { f(qp, ctx as PVOID, sge, 1, 0) },
            None => STATUS_NOT_IMPLEMENTED,
        },
        Some(token) => match disp!(qp, NdkSendAndInvalidate) {
            // SAFETY: as above.
            Some(f) => unsafe { f(qp, ctx as PVOID, sge, 1, 0, token) },
            None => STATUS_NOT_IMPLEMENTED,
        },
    }
}

/// Takes up to 32 completions from `cq`, handing each to `each`; how many.
pub(crate) fn take_completions(cq: *mut NDK_CQ, mut each: impl FnMut(&NDK_RESULT_EX)) -> usize {
    // SAFETY: NDK_RESULT_EX is plain integers and pointers.
    let mut out: [NDK_RESULT_EX; 32] = unsafe { std::mem::zeroed() };
    let n = match disp!(cq, NdkGetCqResultsEx) {
        // SAFETY: live CQ, room for 32.
        Some(f) => unsafe { f(cq, out.as_mut_ptr(), 32) as usize },
        None => 0,
    };
    let n = n.min(out.len());
    for r in &out[..n] {
        each(r);
    }
    n
}

/// NdkArmCq for any completion.
pub(crate) fn arm_cq(cq: *mut NDK_CQ) {
    if let Some(f) = disp!(cq, NdkArmCq) {
        // SAFETY: live CQ.
        unsafe { f(cq, NDK_CQ_NOTIFY_ANY) };
    }
}

// ---------------------------------------------------------------------
// Requests and closes that may pend

/// A dispatch call that takes a completion callback and its context.
pub(crate) type Call<'a> = &'a mut dyn FnMut(NDK_FN_REQUEST_COMPLETION, PVOID) -> NTSTATUS;

/// How a request or a close that pended completed: how often, and the
/// status of the last completion.
#[derive(Debug, Default)]
pub(crate) struct Completion {
    completions: AtomicUsize,
    status: Mutex<Option<NTSTATUS>>,
    cv: Condvar,
}

impl Completion {
    fn complete(&self, status: NTSTATUS) {
        self.completions.fetch_add(1, Ordering::SeqCst);
        *self.status.lock().unwrap_or_else(|p| p.into_inner()) = Some(status);
        self.cv.notify_all();
    }

    /// The completion's status, waiting up to `t` for it; None if it did
    /// not come.
    pub(crate) fn wait(&self, t: Duration) -> Option<NTSTATUS> {
        let g = self.status.lock().unwrap_or_else(|p| p.into_inner());
        let (g, _) = self
            .cv
            .wait_timeout_while(g, t, |s| s.is_none())
            .unwrap_or_else(|p| p.into_inner());
        *g
    }

    /// How often it completed.
    pub(crate) fn completions(&self) -> usize {
        self.completions.load(Ordering::SeqCst)
    }
}

/// Request completion for a [`Completion`] handed over by `Arc::into_raw`
/// (see [`request`]): takes that reference back.
unsafe extern "system" fn on_request(ctx: PVOID, status: NTSTATUS) {
    // SAFETY: `ctx` came from `Arc::into_raw` in `request`, and a request
    // completes once.
    let d = unsafe { Arc::from_raw(ctx.cast::<Completion>()) };
    d.complete(status);
}

/// CloseCompletion for a [`Completion`] handed over by `Arc::into_raw`
/// (see [`close_object`]): takes that reference back.
unsafe extern "system" fn on_close(ctx: PVOID) {
    // SAFETY: `ctx` came from `Arc::into_raw` in `close_object`, and a
    // close completes once.
    let d = unsafe { Arc::from_raw(ctx.cast::<Completion>()) };
    d.complete(STATUS_SUCCESS);
}

/// Request completion for a [`Completion`] its caller keeps alive until
/// the adapter is closed, so that even a second completion finds it (and
/// is counted).
pub(crate) unsafe extern "system" fn on_request_kept(ctx: PVOID, status: NTSTATUS) {
    // SAFETY: a `Completion` kept until the adapter is closed.
    unsafe { &*ctx.cast::<Completion>() }.complete(status);
}

/// CloseCompletion for a kept [`Completion`], as [`on_request_kept`].
pub(crate) unsafe extern "system" fn on_close_kept(ctx: PVOID) {
    // SAFETY: as for `on_request_kept`.
    unsafe { on_request_kept(ctx, STATUS_SUCCESS) };
}

/// A request that may pend, its completion's context handed to the
/// provider with it: the status it returned, or if it pended the status
/// of its completion, waited for up to `t` (STATUS_IO_TIMEOUT if none
/// came; the provider still holds the context, so a late one is safe).
pub(crate) fn request(
    t: Duration,
    call: impl FnOnce(NDK_FN_REQUEST_COMPLETION, PVOID) -> NTSTATUS,
) -> NTSTATUS {
    let d = Arc::new(Completion::default());
    let ctx = Arc::into_raw(Arc::clone(&d)).cast_mut().cast();
    let st = call(Some(on_request), ctx);
    if st != STATUS_PENDING {
        // SAFETY: not pended, so the provider will not complete it.
        drop(unsafe { Arc::from_raw(ctx.cast::<Completion>()) });
        return st;
    }
    d.wait(t).unwrap_or(STATUS_IO_TIMEOUT)
}

/// Closes `obj` with its own `close`, waiting up to `t` if the close
/// pends (a close never fails: SUCCESS, or PENDING and CloseCompletion
/// later). A null `obj` is already closed.
pub(crate) fn close_object(
    obj: *mut NDK_OBJECT_HEADER,
    close: NDK_FN_CLOSE_OBJECT,
    t: Duration,
    what: &str,
) -> Result<(), String> {
    if obj.is_null() {
        return Ok(());
    }
    let f = close.ok_or_else(|| format!("no close for the {what}"))?;
    let d = Arc::new(Completion::default());
    let ctx = Arc::into_raw(Arc::clone(&d)).cast_mut().cast();
    // SAFETY: a live object, closed once, with nothing in flight on it.
    let st = unsafe { f(obj, Some(on_close), ctx) };
    if st != STATUS_PENDING {
        // SAFETY: not pended, so CloseCompletion will not run.
        drop(unsafe { Arc::from_raw(ctx.cast::<Completion>()) });
        return check(st, &format!("closing the {what}"));
    }
    match d.wait(t) {
        Some(_) => Ok(()),
        None => Err(format!(
            "closing the {what}: no CloseCompletion after {t:?}"
        )),
    }
}
