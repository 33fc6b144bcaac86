//! Typed handles over the NDK objects and their dispatch tables.
//!
//! A handle is the provider's object pointer with the calls its table
//! offers. It is made by a create call of its parent (or, for an object
//! the provider handed over, by the unsafe `from_raw`), and given up by
//! `close`, which consumes it: a close may pend (STATUS_PENDING, then
//! CloseCompletion), so the kit never closes behind its owner's back in a
//! `Drop`; the owner chooses to wait ([`crate::close_request`]), to be
//! called back, or to pump the adapter until the completion comes.
//!
//! The one rule the types cannot hold: every handle is used only while
//! the adapter it was made on is open (closing an adapter frees what its
//! consumer left open). [`Adapter::from_raw`] states it.

// Callback contexts (PVOID) are opaque to the provider: it only hands
// them back to the callback passed with them, an `unsafe extern` function
// of the caller's whose own SAFETY argument covers what the context is.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

use std::mem::size_of;
use std::net::SocketAddr;
use std::ptr;

use ndkpi::*;

/// The dispatch slot `$f` (an `Option<fn>`) of the live provider object
/// `$obj`.
#[macro_export]
macro_rules! slot {
    ($obj:expr, $f:ident) => {{
        let o = $obj;
        // SAFETY: `$obj` is a live provider object (the caller's promise,
        // as for every raw NDK object); its Dispatch points at the
        // provider's static table.
        unsafe { (*(*o).Dispatch).$f }
    }};
}

/// Calls `$f` of `$obj`'s dispatch table with `$obj` first, panicking if
/// the provider left the slot empty (the tests' calls).
#[macro_export]
macro_rules! call {
    ($obj:expr, $f:ident $(, $a:expr)* $(,)?) => {{
        let o = $obj;
        let f = $crate::slot!(o, $f).expect(stringify!($f));
        #[allow(unused_unsafe)]
        // SAFETY: `$obj` is a live NDK object the provider returned (or a
        // deliberately bad one the provider must refuse), and the arguments
        // are what the slot's NDKPI page asks for.
        unsafe {
            f(o $(, $a)*)
        }
    }};
}

/// Calls slot `$f` of `$obj`, or STATUS_NOT_IMPLEMENTED without it.
macro_rules! try_call {
    ($obj:expr, $f:ident $(, $a:expr)* $(,)?) => {{
        let o = $obj;
        match $crate::slot!(o, $f) {
            // SAFETY: `o` is live (the handle's invariant); the arguments
            // are valid for the call.
            Some(f) => unsafe { f(o $(, $a)*) },
            None => STATUS_NOT_IMPLEMENTED,
        }
    }};
}

/// `obj` if `st` is STATUS_SUCCESS and it is not null.
fn made<T>(st: NTSTATUS, obj: *mut T) -> Result<*mut T, NTSTATUS> {
    match st {
        STATUS_SUCCESS if !obj.is_null() => Ok(obj),
        STATUS_SUCCESS => Err(STATUS_INTERNAL_ERROR),
        other => Err(other),
    }
}

/// NdkCloseXxx of any NDK object: every object starts with
/// NDK_OBJECT_HEADER and its Dispatch, and every dispatch table starts
/// with its close function (the NDKPI object lifetime requirements page).
///
/// # Safety
/// `obj` is a live NDK object of an open adapter, not used after this
/// call (nor after `done` ran, if it pended).
pub unsafe fn close_raw<T>(obj: *mut T, done: NDK_FN_CLOSE_COMPLETION, ctx: PVOID) -> NTSTATUS {
    // SAFETY: per the contract `obj` is live; reading its first dispatch
    // slot as a close function is sound for every NDK object (see above).
    unsafe {
        let o = obj.cast::<NDK_QP>();
        match *(*o).Dispatch.cast::<NDK_FN_CLOSE_OBJECT>() {
            Some(close) => close(obj.cast(), done, ctx),
            None => STATUS_NOT_IMPLEMENTED,
        }
    }
}

macro_rules! handle {
    ($(#[$m:meta])* $name:ident, $raw:ty) => {
        $(#[$m])*
        #[derive(Debug)]
        pub struct $name(*mut $raw);

        // SAFETY: the provider serializes every call on the adapter's lock;
        // its objects may be used from any thread.
        unsafe impl Send for $name {}
        // SAFETY: as above.
        unsafe impl Sync for $name {}

        impl $name {
            /// A handle on `raw`.
            ///
            /// # Safety
            /// `raw` is a live object of this type, of an adapter that stays
            /// open while the handle is used; the handle is its only closer.
            pub unsafe fn from_raw(raw: *mut $raw) -> Self {
                $name(raw)
            }
            /// The object, for calls the kit does not wrap.
            pub fn as_ptr(&self) -> *mut $raw {
                self.0
            }
            /// Gives the object up to raw handling.
            pub fn into_raw(self) -> *mut $raw {
                self.0
            }
            /// Closes the object: STATUS_SUCCESS (closed now, `done` not
            /// called) or STATUS_PENDING (`done(ctx)` later, once).
            pub fn close(self, done: NDK_FN_CLOSE_COMPLETION, ctx: PVOID) -> NTSTATUS {
                // SAFETY: live by the handle's invariant; consumed here.
                unsafe { close_raw(self.0, done, ctx) }
            }
        }
    };
}

/// An open adapter (not owned: its opener closes it).
#[derive(Debug, Clone, Copy)]
pub struct Adapter(*mut NDK_ADAPTER);

// SAFETY: the adapter serializes every call on its own lock.
unsafe impl Send for Adapter {}
// SAFETY: as above.
unsafe impl Sync for Adapter {}

impl Adapter {
    /// The adapter `raw`.
    ///
    /// # Safety
    /// `raw` is an open NDK adapter, and stays open while this view or any
    /// handle made through it is used.
    pub unsafe fn from_raw(raw: *mut NDK_ADAPTER) -> Self {
        Adapter(raw)
    }
    /// The adapter.
    pub fn as_ptr(&self) -> *mut NDK_ADAPTER {
        self.0
    }
    /// The provider objects open on the adapter (leak checks).
    pub fn object_count(&self) -> usize {
        ndk::abi::io::object_count(self.0)
    }
    /// The object count once it is down to `want`, or what it still is
    /// after `t`. An object leaves the provider's table only when its
    /// CloseCompletion has returned (the last upcall of the object), so a
    /// consumer woken by that callback may briefly still count it.
    pub fn object_count_settled(&self, want: usize, t: std::time::Duration) -> usize {
        let end = std::time::Instant::now() + t;
        loop {
            let n = self.object_count();
            if n <= want || std::time::Instant::now() >= end {
                return n;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
    /// Hands every datagram this adapter has to send to `to`, as if the
    /// wire joined them (UDP framing); whether any moved. For adapters
    /// a consumer opened in its own process (ndk::abi::io).
    pub fn deliver_to(&self, to: &Adapter) -> bool {
        let mut buf = vec![0u8; roce::device::MAX_DATAGRAM];
        let mut moved = false;
        while let Some(t) = ndk::abi::io::poll_transmit(self.0, &mut buf) {
            moved = true;
            let payload = t.udp_payload(&buf).to_vec();
            ndk::abi::io::handle_udp(to.0, t.src, t.dst, &payload);
        }
        moved
    }
    /// NdkQueryAdapterInfo.
    pub fn info(&self) -> Result<NDK_ADAPTER_INFO, NTSTATUS> {
        // SAFETY: NDK_ADAPTER_INFO is plain integers; all zeros is valid.
        let mut info: NDK_ADAPTER_INFO = unsafe { std::mem::zeroed() };
        let mut size = size_of::<NDK_ADAPTER_INFO>() as ULONG;
        match try_call!(self.0, NdkQueryAdapterInfo, &mut info, &mut size) {
            STATUS_SUCCESS => Ok(info),
            st => Err(st),
        }
    }
    /// NdkCreatePd.
    pub fn create_pd(&self) -> Result<Pd, NTSTATUS> {
        let mut pd = ptr::null_mut();
        let st = try_call!(self.0, NdkCreatePd, None, ptr::null_mut(), &mut pd);
        made(st, pd).map(Pd)
    }
    /// NdkCreateCq of `depth` entries, notifying `notify(ctx)` when armed.
    pub fn create_cq(
        &self,
        depth: u32,
        notify: NDK_FN_CQ_NOTIFICATION_CALLBACK,
        ctx: PVOID,
    ) -> Result<Cq, NTSTATUS> {
        let mut cq = ptr::null_mut();
        let st = try_call!(
            self.0,
            NdkCreateCq,
            depth,
            notify,
            ctx,
            ptr::null_mut(),
            None,
            ptr::null_mut(),
            &mut cq
        );
        made(st, cq).map(Cq)
    }
    /// NdkCreateConnector.
    pub fn create_connector(&self) -> Result<Connector, NTSTATUS> {
        let mut c = ptr::null_mut();
        let st = try_call!(self.0, NdkCreateConnector, None, ptr::null_mut(), &mut c);
        made(st, c).map(Connector)
    }
    /// NdkCreateListener whose connect events call `event(ctx, connector)`.
    pub fn create_listener(
        &self,
        event: NDK_FN_CONNECT_EVENT_CALLBACK,
        ctx: PVOID,
    ) -> Result<Listener, NTSTATUS> {
        let mut l = ptr::null_mut();
        let st = try_call!(
            self.0,
            NdkCreateListener,
            event,
            ctx,
            None,
            ptr::null_mut(),
            &mut l
        );
        made(st, l).map(Listener)
    }
}

handle!(
    /// A protection domain.
    Pd, NDK_PD
);
handle!(
    /// A completion queue.
    Cq, NDK_CQ
);
handle!(
    /// A queue pair.
    Qp, NDK_QP
);
handle!(
    /// A memory region.
    Mr, NDK_MR
);
handle!(
    /// A memory window.
    Mw, NDK_MW
);
handle!(
    /// A connector.
    Connector, NDK_CONNECTOR
);
handle!(
    /// A listener.
    Listener, NDK_LISTENER
);

/// What NdkCreateQp takes besides the PD.
#[derive(Debug, Clone, Copy)]
pub struct QpConfig {
    /// The receive CQ.
    pub receive_cq: *mut NDK_CQ,
    /// The initiator CQ.
    pub initiator_cq: *mut NDK_CQ,
    /// The QP context the completions report.
    pub context: PVOID,
    /// Receive queue depth.
    pub receive_depth: u32,
    /// Initiator queue depth.
    pub initiator_depth: u32,
    /// SGEs per receive.
    pub receive_sges: u32,
    /// SGEs per initiator request.
    pub initiator_sges: u32,
    /// Inline data bytes.
    pub inline_data: u32,
}

impl QpConfig {
    /// Both queues on `cq`, one SGE each, no inline data.
    pub fn on(cq: &Cq, context: PVOID, receive_depth: u32, initiator_depth: u32) -> Self {
        QpConfig {
            receive_cq: cq.as_ptr(),
            initiator_cq: cq.as_ptr(),
            context,
            receive_depth,
            initiator_depth,
            receive_sges: 1,
            initiator_sges: 1,
            inline_data: 0,
        }
    }
}

impl Pd {
    /// NdkCreateQp (without an SRQ).
    pub fn create_qp(&self, c: &QpConfig) -> Result<Qp, NTSTATUS> {
        let mut qp = ptr::null_mut();
        let st = try_call!(
            self.0,
            NdkCreateQp,
            c.receive_cq,
            c.initiator_cq,
            c.context,
            c.receive_depth,
            c.initiator_depth,
            c.receive_sges,
            c.initiator_sges,
            c.inline_data,
            None,
            ptr::null_mut(),
            &mut qp
        );
        made(st, qp).map(Qp)
    }
    /// NdkCreateMr, regular or fast-register.
    pub fn create_mr(&self, fast_register: bool) -> Result<Mr, NTSTATUS> {
        let mut mr = ptr::null_mut();
        let fast = if fast_register { TRUE } else { FALSE };
        let st = try_call!(self.0, NdkCreateMr, fast, None, ptr::null_mut(), &mut mr);
        made(st, mr).map(Mr)
    }
    /// NdkCreateMw.
    pub fn create_mw(&self) -> Result<Mw, NTSTATUS> {
        let mut mw = ptr::null_mut();
        let st = try_call!(self.0, NdkCreateMw, None, ptr::null_mut(), &mut mw);
        made(st, mw).map(Mw)
    }
}

/// The read-everything-and-write access of a regular MR.
pub const MR_RW: ULONG =
    NDK_MR_FLAG_ALLOW_LOCAL_WRITE | NDK_MR_FLAG_ALLOW_REMOTE_READ | NDK_MR_FLAG_ALLOW_REMOTE_WRITE;

impl Mr {
    /// NdkRegisterMr over `len` bytes of `mdl`; may pend to `done(ctx)`.
    ///
    /// # Safety
    /// `mdl` is an MDL the adapter's platform reads (a [`crate::HostMdl`]
    /// on [`crate::HostPlatform`]) and it, with the memory it describes,
    /// outlives the MR.
    pub unsafe fn register(
        &self,
        mdl: *mut MDL,
        len: usize,
        flags: ULONG,
        done: NDK_FN_REQUEST_COMPLETION,
        ctx: PVOID,
    ) -> NTSTATUS {
        try_call!(self.0, NdkRegisterMr, mdl, len, flags, done, ctx)
    }
    /// The local token (0 without the dispatch function).
    pub fn local_token(&self) -> u32 {
        // SAFETY: live, registered MR.
        slot!(self.0, NdkGetLocalTokenFromMr).map_or(0, |f| unsafe { f(self.0) })
    }
    /// The remote token (0 without the dispatch function).
    pub fn remote_token(&self) -> u32 {
        // SAFETY: live, registered MR.
        slot!(self.0, NdkGetRemoteTokenFromMr).map_or(0, |f| unsafe { f(self.0) })
    }
}

impl Mw {
    /// The remote token.
    pub fn remote_token(&self) -> u32 {
        // SAFETY: live MW.
        slot!(self.0, NdkGetRemoteTokenFromMw).map_or(0, |f| unsafe { f(self.0) })
    }
}

impl Qp {
    /// NdkReceive of `sges` with request context `ctx`.
    pub fn receive(&self, ctx: usize, sges: &[NDK_SGE]) -> NTSTATUS {
        try_call!(
            self.0,
            NdkReceive,
            ctx as PVOID,
            sges.as_ptr(),
            sges.len() as ULONG
        )
    }
    /// NdkSend of `sges`.
    pub fn send(&self, ctx: usize, sges: &[NDK_SGE], flags: ULONG) -> NTSTATUS {
        try_call!(
            self.0,
            NdkSend,
            ctx as PVOID,
            sges.as_ptr(),
            sges.len() as ULONG,
            flags
        )
    }
    /// NdkSendAndInvalidate of `sges`, naming the remote `token`.
    pub fn send_invalidate(
        &self,
        ctx: usize,
        sges: &[NDK_SGE],
        flags: ULONG,
        token: u32,
    ) -> NTSTATUS {
        try_call!(
            self.0,
            NdkSendAndInvalidate,
            ctx as PVOID,
            sges.as_ptr(),
            sges.len() as ULONG,
            flags,
            token
        )
    }
    /// NdkWrite of `sges` to `raddr` through `rkey`.
    pub fn write(
        &self,
        ctx: usize,
        sges: &[NDK_SGE],
        raddr: u64,
        rkey: u32,
        flags: ULONG,
    ) -> NTSTATUS {
        try_call!(
            self.0,
            NdkWrite,
            ctx as PVOID,
            sges.as_ptr(),
            sges.len() as ULONG,
            raddr,
            rkey,
            flags
        )
    }
    /// NdkRead into `sges` from `raddr` through `rkey`.
    pub fn read(
        &self,
        ctx: usize,
        sges: &[NDK_SGE],
        raddr: u64,
        rkey: u32,
        flags: ULONG,
    ) -> NTSTATUS {
        try_call!(
            self.0,
            NdkRead,
            ctx as PVOID,
            sges.as_ptr(),
            sges.len() as ULONG,
            raddr,
            rkey,
            flags
        )
    }
    /// NdkFlush: every outstanding request completes (cancelled).
    pub fn flush(&self) {
        if let Some(f) = slot!(self.0, NdkFlush) {
            // SAFETY: live QP.
            unsafe { f(self.0) };
        }
    }
}

/// An all-zero result, to fill.
pub fn empty_result() -> NDK_RESULT_EX {
    // SAFETY: NDK_RESULT_EX is plain integers and pointers; zeros are valid.
    unsafe { std::mem::zeroed() }
}

impl Cq {
    /// NdkGetCqResultsEx into `out`: how many it wrote.
    pub fn poll(&self, out: &mut [NDK_RESULT_EX]) -> usize {
        let n = match slot!(self.0, NdkGetCqResultsEx) {
            // SAFETY: live CQ; `out` has room for `out.len()` results.
            Some(f) => unsafe { f(self.0, out.as_mut_ptr(), out.len() as ULONG) as usize },
            None => 0,
        };
        n.min(out.len())
    }
    /// Up to `max` results.
    pub fn results(&self, max: usize) -> Vec<NDK_RESULT_EX> {
        let mut out = vec![empty_result(); max];
        let n = self.poll(&mut out);
        out.truncate(n);
        out
    }
    /// NdkArmCq: notify on the next completion of `kind`
    /// (NDK_CQ_NOTIFY_ANY, NDK_CQ_NOTIFY_ERRORS, NDK_CQ_NOTIFY_SOLICITED).
    pub fn arm(&self, kind: ULONG) {
        if let Some(f) = slot!(self.0, NdkArmCq) {
            // SAFETY: live CQ.
            unsafe { f(self.0, kind) };
        }
    }
}

/// A socket address as NDK calls take it (SOCKADDR_IN or SOCKADDR_IN6,
/// in a buffer large enough for either) and its length.
pub fn sockaddr(a: SocketAddr) -> ([u8; 28], ULONG) {
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
            // SAFETY: SOCKADDR_IN is plain bytes and fits in 28.
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
            // SAFETY: as above (SOCKADDR_IN6 is 28 bytes).
            unsafe { ptr::write_unaligned(out.as_mut_ptr().cast::<SOCKADDR_IN6>(), s) };
            size_of::<SOCKADDR_IN6>()
        }
    };
    (out, len as ULONG)
}

/// The private data and read limits of a connection (what
/// NdkGetConnectionData reports).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionData {
    /// Inbound read limit.
    pub inbound_read_limit: u32,
    /// Outbound read limit.
    pub outbound_read_limit: u32,
    /// The peer's private data.
    pub private_data: Vec<u8>,
}

impl Connector {
    /// NdkConnect of `qp` from `src` to `dst`; may pend to `done(ctx)`.
    #[allow(clippy::too_many_arguments)]
    pub fn connect(
        &self,
        qp: &Qp,
        src: SocketAddr,
        dst: SocketAddr,
        read_limits: (u32, u32),
        private_data: &[u8],
        done: NDK_FN_REQUEST_COMPLETION,
        ctx: PVOID,
    ) -> NTSTATUS {
        let (s, slen) = sockaddr(src);
        let (d, dlen) = sockaddr(dst);
        try_call!(
            self.0,
            NdkConnect,
            qp.as_ptr(),
            s.as_ptr().cast(),
            slen,
            d.as_ptr().cast(),
            dlen,
            read_limits.0,
            read_limits.1,
            private_data.as_ptr().cast(),
            private_data.len() as ULONG,
            done,
            ctx
        )
    }
    /// NdkAccept onto `qp`; disconnect events to `event(event_ctx)`; may
    /// pend to `done(ctx)`.
    #[allow(clippy::too_many_arguments)]
    pub fn accept(
        &self,
        qp: &Qp,
        read_limits: (u32, u32),
        private_data: &[u8],
        event: NDK_FN_DISCONNECT_EVENT_CALLBACK,
        event_ctx: PVOID,
        done: NDK_FN_REQUEST_COMPLETION,
        ctx: PVOID,
    ) -> NTSTATUS {
        try_call!(
            self.0,
            NdkAccept,
            qp.as_ptr(),
            read_limits.0,
            read_limits.1,
            private_data.as_ptr().cast(),
            private_data.len() as ULONG,
            event,
            event_ctx,
            done,
            ctx
        )
    }
    /// NdkCompleteConnect; disconnect events to `event(event_ctx)`.
    pub fn complete_connect(
        &self,
        event: NDK_FN_DISCONNECT_EVENT_CALLBACK,
        event_ctx: PVOID,
        done: NDK_FN_REQUEST_COMPLETION,
        ctx: PVOID,
    ) -> NTSTATUS {
        try_call!(self.0, NdkCompleteConnect, event, event_ctx, done, ctx)
    }
    /// NdkDisconnect; may pend to `done(ctx)`.
    pub fn disconnect(&self, done: NDK_FN_REQUEST_COMPLETION, ctx: PVOID) -> NTSTATUS {
        try_call!(self.0, NdkDisconnect, done, ctx)
    }
    /// NdkGetConnectionData: the size query, then the data.
    pub fn connection_data(&self) -> Result<ConnectionData, NTSTATUS> {
        let (mut irl, mut orl, mut len) = (0, 0, 0);
        let st = try_call!(
            self.0,
            NdkGetConnectionData,
            &mut irl,
            &mut orl,
            ptr::null_mut(),
            &mut len
        );
        if st != STATUS_SUCCESS && st != STATUS_BUFFER_TOO_SMALL {
            return Err(st);
        }
        let mut data = vec![0u8; len as usize];
        let st = try_call!(
            self.0,
            NdkGetConnectionData,
            &mut irl,
            &mut orl,
            data.as_mut_ptr().cast(),
            &mut len
        );
        if st != STATUS_SUCCESS {
            return Err(st);
        }
        data.truncate(len as usize);
        Ok(ConnectionData {
            inbound_read_limit: irl,
            outbound_read_limit: orl,
            private_data: data,
        })
    }
}

/// A listener's connect-event context that accepts each request onto one
/// QP (read limits given, no private data, no disconnect event of
/// interest) from inside the event, as a re-entrant call may; it keeps
/// the last connector and the accept's status. Hand it with
/// [`accept_onto`] to NdkCreateListener; it must outlive the listener.
#[derive(Debug)]
pub struct AcceptOnto {
    qp: *mut NDK_QP,
    read_limits: (u32, u32),
    connector: std::sync::atomic::AtomicPtr<NDK_CONNECTOR>,
    status: std::sync::atomic::AtomicI32,
}

// SAFETY: the QP pointer is only passed to the provider, which
// serializes calls on it; the rest is atomic.
unsafe impl Send for AcceptOnto {}
// SAFETY: as above.
unsafe impl Sync for AcceptOnto {}

impl AcceptOnto {
    /// Accepts onto `qp`, which must stay open while requests may come.
    pub fn new(qp: &Qp, read_limits: (u32, u32)) -> Self {
        AcceptOnto {
            qp: qp.as_ptr(),
            read_limits,
            connector: std::sync::atomic::AtomicPtr::new(ptr::null_mut()),
            status: std::sync::atomic::AtomicI32::new(STATUS_PENDING),
        }
    }
    /// The context for [`accept_onto`].
    pub fn ctx(&self) -> PVOID {
        (self as *const AcceptOnto).cast_mut().cast()
    }
    /// The connector of the last request (null before one came).
    pub fn connector(&self) -> *mut NDK_CONNECTOR {
        self.connector.load(std::sync::atomic::Ordering::SeqCst)
    }
    /// What the last NdkAccept returned (STATUS_PENDING before one).
    pub fn status(&self) -> NTSTATUS {
        self.status.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// A request completion that does nothing.
pub extern "system" fn ignore_request(_ctx: PVOID, _status: NTSTATUS) {}

/// A disconnect event that does nothing.
pub extern "system" fn ignore_event(_ctx: PVOID) {}

/// The connect event of an [`AcceptOnto`].
///
/// # Safety
/// `ctx` is an [`AcceptOnto::ctx`] that outlives the listener; `conn` is
/// the connector the provider hands over.
pub unsafe extern "system" fn accept_onto(ctx: PVOID, conn: *mut NDK_CONNECTOR) {
    // SAFETY: per the contract.
    let plan = unsafe { &*ctx.cast::<AcceptOnto>() };
    let st = try_call!(
        conn,
        NdkAccept,
        plan.qp,
        plan.read_limits.0,
        plan.read_limits.1,
        ptr::null(),
        0,
        Some(ignore_event),
        ptr::null_mut(),
        Some(ignore_request),
        ptr::null_mut()
    );
    plan.status.store(st, std::sync::atomic::Ordering::SeqCst);
    plan.connector
        .store(conn, std::sync::atomic::Ordering::SeqCst);
}

/// An RC connection [`connect_pair`] made: the listener with its accept
/// plan (which must outlive it) and both connectors.
#[derive(Debug)]
pub struct Link {
    /// The passive side's plan, the listener's context.
    pub plan: Box<AcceptOnto>,
    /// The listener.
    pub listener: Listener,
    /// The active side's connector.
    pub active: Connector,
    /// The passive side's connector.
    pub passive: Connector,
}

/// Connects `a_qp` on `a` (from `from`) to `b_qp` on `b` through a
/// listener on `at` that accepts from its connect event (read limits 1/1,
/// no private data), calling `pump` to move the datagrams between the
/// adapters after each step: NdkConnect (pends), the accept, then
/// NdkCompleteConnect. The first status that differs from the one the
/// NDKPI pages give for the step is the error.
pub fn connect_pair(
    (a, a_qp, from): (&Adapter, &Qp, SocketAddr),
    (b, b_qp, at): (&Adapter, &Qp, SocketAddr),
    mut pump: impl FnMut(),
) -> Result<Link, NTSTATUS> {
    let expect = |st, want| if st == want { Ok(()) } else { Err(st) };
    let plan = Box::new(AcceptOnto::new(b_qp, (1, 1)));
    let listener = b.create_listener(Some(accept_onto), plan.ctx())?;
    expect(listener.listen(at), STATUS_SUCCESS)?;
    let active = a.create_connector()?;
    let st = active.connect(
        a_qp,
        from,
        at,
        (1, 1),
        &[],
        Some(ignore_request),
        ptr::null_mut(),
    );
    expect(st, STATUS_PENDING)?;
    pump();
    expect(plan.status(), STATUS_PENDING)?;
    let st = active.complete_connect(None, ptr::null_mut(), None, ptr::null_mut());
    expect(st, STATUS_SUCCESS)?;
    pump();
    // SAFETY: the connector the connect event handed over, live until
    // closed through this handle (or with its adapter).
    let passive = unsafe { Connector::from_raw(plan.connector()) };
    Ok(Link {
        plan,
        listener,
        active,
        passive,
    })
}

impl Listener {
    /// NdkListen on `addr`.
    pub fn listen(&self, addr: SocketAddr) -> NTSTATUS {
        let (a, len) = sockaddr(addr);
        try_call!(
            self.0,
            NdkListen,
            a.as_ptr().cast(),
            len,
            None,
            ptr::null_mut()
        )
    }
    /// The port NdkGetLocalAddress reports.
    pub fn local_port(&self) -> Result<u16, NTSTATUS> {
        let mut bound = [0u8; 28];
        let mut blen: ULONG = 28;
        match try_call!(
            self.0,
            NdkGetLocalAddress,
            bound.as_mut_ptr().cast(),
            &mut blen
        ) {
            STATUS_SUCCESS => Ok(u16::from_be_bytes([bound[2], bound[3]])),
            st => Err(st),
        }
    }
}
