//! The SMB Direct client ([`crate::smb`]) and server ([`crate::smb_server`])
//! on the consumer kit (crates/consumer): the kit's typed calls under the
//! names they use, with failures as strings, memory described with host
//! or kernel MDLs, and the kit's completions. What only one side does
//! (connecting, listening and accepting, fast registration, RDMA Read and
//! Write) stays with it.
//!
//! Provider objects travel as raw pointers, as through NDKPI. Every
//! function here that takes one needs it live: made on an adapter that is
//! still open, and not yet closed. That is the callers' to ensure, as it
//! is for `disp!`; so is the lifetime of any context or memory handed to
//! the provider through a raw pointer (it must outlive the object that
//! holds it, or the adapter).

use std::mem::size_of;
use std::net::SocketAddrV4;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ::ndk_consumer::MdlKind;
use ndkpi::*;

pub(crate) use ::ndk_consumer::slot as disp;
pub(crate) use ::ndk_consumer::{
    Kicks, Waiter as Completion, waiter_closed as on_close_kept, waiter_done as on_request_kept,
};

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

/// A view of a live object of the consumers' (never closed through it).
macro_rules! view {
    ($t:ident, $p:expr) => {{
        // SAFETY: a live object of an open adapter (this module's
        // contract: the callers keep it so).
        unsafe { ::ndk_consumer::$t::from_raw($p) }
    }};
}

// ---------------------------------------------------------------------
// Objects

pub(crate) fn create_pd(a: *mut NDK_ADAPTER) -> Result<*mut NDK_PD, NTSTATUS> {
    view!(Adapter, a)
        .create_pd()
        .map(::ndk_consumer::Pd::into_raw)
}

/// A CQ of `depth` entries whose notifications kick `kicks`, which must
/// outlive the CQ (with its adapter).
pub(crate) fn create_cq(
    a: *mut NDK_ADAPTER,
    depth: usize,
    kicks: &Kicks,
) -> Result<*mut NDK_CQ, NTSTATUS> {
    view!(Adapter, a)
        .create_cq(
            depth as ULONG,
            Some(::ndk_consumer::kicks_notify),
            kicks.ctx(),
        )
        .map(::ndk_consumer::Cq::into_raw)
}

/// A QP on `pd` whose receives and initiator requests (one SGE each, no
/// inline data) complete on `cq`.
pub(crate) fn create_qp(
    pd: *mut NDK_PD,
    cq: *mut NDK_CQ,
    receive_depth: usize,
    initiator_depth: usize,
) -> Result<*mut NDK_QP, NTSTATUS> {
    let c = ::ndk_consumer::QpConfig::on(
        &view!(Cq, cq),
        std::ptr::null_mut(),
        receive_depth as ULONG,
        initiator_depth as ULONG,
    );
    view!(Pd, pd)
        .create_qp(&c)
        .map(::ndk_consumer::Qp::into_raw)
}

/// An MR on `pd`, regular or fast-register.
pub(crate) fn create_mr(pd: *mut NDK_PD, fast_register: bool) -> Result<*mut NDK_MR, NTSTATUS> {
    view!(Pd, pd)
        .create_mr(fast_register)
        .map(::ndk_consumer::Mr::into_raw)
}

// ---------------------------------------------------------------------
// Memory

/// Whether memory is described with kernel MDLs (the provider is a Windows
/// shell, whose platform reads wdm.h MDLs) instead of host MDLs.
static KERNEL_MDLS: AtomicBool = AtomicBool::new(false);

/// From now on this process describes memory with kernel MDLs: for a
/// process whose provider is the Windows shell (crates/ndis-host).
pub fn use_kernel_mdls() {
    KERNEL_MDLS.store(true, Ordering::SeqCst);
}

/// Zeroed process memory and the MDL that describes it (the kit's
/// [`::ndk_consumer::Memory`]), of the kind this process's provider reads.
pub(crate) type Memory = ::ndk_consumer::Memory;

/// `len` zeroed bytes described as this process's provider reads them.
pub(crate) fn memory(len: usize) -> Memory {
    let kind = if KERNEL_MDLS.load(Ordering::SeqCst) {
        MdlKind::Kernel
    } else {
        MdlKind::Host
    };
    Memory::new(len, kind, None)
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
    let m = view!(Mr, mr);
    // SAFETY: `mdl` is this process's kind of MDL, and it and its memory
    // outlive the MR (this function's contract).
    let st = issue(&mut |cb, ctx| unsafe { m.register(mdl, len, flags, cb, ctx) });
    check(st, "NdkRegisterMr")?;
    Ok(mr)
}

/// The local token of a registered MR (0 without the dispatch function).
pub(crate) fn local_token(mr: *mut NDK_MR) -> u32 {
    view!(Mr, mr).local_token()
}

/// The remote token of a registered MR (0 without the dispatch function).
pub(crate) fn remote_token(mr: *mut NDK_MR) -> u32 {
    view!(Mr, mr).remote_token()
}

// ---------------------------------------------------------------------
// Work requests and completions

/// NdkReceive of one SGE with `ctx` as its request context.
pub(crate) fn receive(qp: *mut NDK_QP, ctx: usize, sge: &NDK_SGE) -> NTSTATUS {
    view!(Qp, qp).receive(ctx, std::slice::from_ref(sge))
}

/// NdkSend of one SGE with `ctx` as its request context, or
/// NdkSendAndInvalidate naming `invalidate`.
pub(crate) fn send(
    qp: *mut NDK_QP,
    ctx: usize,
    sge: &NDK_SGE,
    invalidate: Option<u32>,
) -> NTSTATUS {
    let q = view!(Qp, qp);
    match invalidate {
        None => q.send(ctx, std::slice::from_ref(sge), 0),
        Some(token) => q.send_invalidate(ctx, std::slice::from_ref(sge), 0, token),
    }
}

/// Takes up to 32 completions from `cq`, handing each to `each`; how many.
pub(crate) fn take_completions(cq: *mut NDK_CQ, mut each: impl FnMut(&NDK_RESULT_EX)) -> usize {
    let mut out = [::ndk_consumer::empty_result(); 32];
    let n = view!(Cq, cq).poll(&mut out);
    for r in &out[..n] {
        each(r);
    }
    n
}

/// NdkArmCq for any completion.
pub(crate) fn arm_cq(cq: *mut NDK_CQ) {
    view!(Cq, cq).arm(NDK_CQ_NOTIFY_ANY);
}

// ---------------------------------------------------------------------
// Requests and closes that may pend

/// A dispatch call that takes a completion callback and its context.
pub(crate) type Call<'a> = &'a mut dyn FnMut(NDK_FN_REQUEST_COMPLETION, PVOID) -> NTSTATUS;

/// A request that may pend, its completion's context handed to the
/// provider with it: the status it returned, or if it pended the status
/// of its completion, waited for up to `t` (STATUS_IO_TIMEOUT if none
/// came; the provider still holds the context, so a late one is safe).
pub(crate) fn request(
    t: Duration,
    call: impl FnOnce(NDK_FN_REQUEST_COMPLETION, PVOID) -> NTSTATUS,
) -> NTSTATUS {
    ::ndk_consumer::request(t, call).unwrap_or(STATUS_IO_TIMEOUT)
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
    let mut inline = None;
    let done = ::ndk_consumer::close_request(t, |cb, ctx| {
        // SAFETY: a live object, closed once, with nothing in flight on it.
        let st = unsafe { f(obj, cb, ctx) };
        if st != STATUS_PENDING {
            inline = Some(st);
        }
        st
    });
    match (inline, done) {
        (Some(st), _) => check(st, &format!("closing the {what}")),
        (None, Some(_)) => Ok(()),
        (None, None) => Err(format!(
            "closing the {what}: no CloseCompletion after {t:?}"
        )),
    }
}
