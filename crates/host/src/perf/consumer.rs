//! The consumer's plumbing over the NDKPI dispatch tables: boxed request
//! completions and bounded waits, thin wrappers over each table, registered
//! buffers, posts and polls.

use super::*;

pub(super) type ReqFn = Box<dyn FnOnce(NTSTATUS) + Send>;

pub(super) unsafe extern "system" fn on_request(ctx: PVOID, status: NTSTATUS) {
    // SAFETY: `ctx` came from `Req::new` and is completed exactly once.
    let f = unsafe { Box::from_raw(ctx.cast::<ReqFn>()) };
    f(status);
}

pub(super) unsafe extern "system" fn on_close(ctx: PVOID) {
    // SAFETY: as above.
    let f = unsafe { Box::from_raw(ctx.cast::<ReqFn>()) };
    f(STATUS_SUCCESS);
}

/// A request's completion: called by the provider (STATUS_PENDING) or at
/// once with the inline status.
pub(super) struct Req(*mut ReqFn);

impl Req {
    pub(super) fn new(f: impl FnOnce(NTSTATUS) + Send + 'static) -> Req {
        Req(Box::into_raw(Box::new(Box::new(f) as ReqFn)))
    }
    pub(super) fn ctx(&self) -> PVOID {
        self.0.cast()
    }
    /// Runs the completion now unless the call pended.
    pub(super) fn finish(self, status: NTSTATUS) -> NTSTATUS {
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
pub(super) struct Signal {
    pub(super) m: Mutex<Option<NTSTATUS>>,
    pub(super) cv: Condvar,
}

impl Signal {
    pub(super) fn set(&self, s: NTSTATUS) {
        let mut g = self.m.lock().unwrap_or_else(|p| p.into_inner());
        if g.is_none() {
            *g = Some(s);
        }
        self.cv.notify_all();
    }
    pub(super) fn wait(&self, t: Duration) -> Option<NTSTATUS> {
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
pub(super) fn sync_req(t: Duration, call: impl FnOnce(PVOID) -> NTSTATUS) -> Option<NTSTATUS> {
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
pub(super) struct Drive {
    pub(super) lock: parking_lot::Mutex<()>,
    pub(super) missed: AtomicBool,
}

impl Drive {
    pub(super) fn run(&self, mut f: impl FnMut()) {
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

pub(super) fn sockaddr(a: SocketAddr) -> ([u8; 28], ULONG) {
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

pub(super) fn create_pd(a: *mut NDK_ADAPTER) -> Result<*mut NDK_PD, PerfError> {
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

pub(super) fn create_cq(
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

pub(super) fn create_qp(
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

pub(super) fn create_connector(a: *mut NDK_ADAPTER) -> Result<*mut NDK_CONNECTOR, PerfError> {
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

/// Memory registered with the provider.
pub(super) struct Buf {
    pub(super) ptr: *mut u8,
    pub(super) len: usize,
    pub(super) mdl: Box<HostMdl>,
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
        // A size the host cannot give is an error, not an abort; zeroed
        // memory from the allocator (calloc: large blocks come as fresh
        // zero pages, nothing written here), so a 1 GiB buffer costs no
        // time on the I/O thread that accepts a connection.
        let layout = std::alloc::Layout::array::<u8>(len);
        // SAFETY: a non-zero size (len >= 64).
        let p = layout.map_or(ptr::null_mut(), |l| unsafe { std::alloc::alloc_zeroed(l) });
        if p.is_null() {
            return err(format!(
                "cannot allocate a {len}-byte buffer for the messages \
                 (not enough memory for this -s and -w)"
            ));
        }
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

    pub(super) fn addr(&self, off: usize) -> u64 {
        self.ptr as u64 + off.min(self.len) as u64
    }

    pub(super) fn sge(&self, off: usize, len: usize) -> NDK_SGE {
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
    pub(super) unsafe fn bytes_mut(&self, off: usize, len: usize) -> &mut [u8] {
        let off = off.min(self.len);
        let len = len.min(self.len - off);
        // SAFETY: inside the allocation; exclusivity per the contract.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(off), len) }
    }

    /// Closes the MR, then frees the memory (when the close completed).
    pub(super) fn release(self) {
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

pub(super) fn post(st: NTSTATUS, what: &str) -> Result<(), NTSTATUS> {
    let _ = what;
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
    let st = match disp!(qp, NdkSend) {
        // SAFETY: live QP; the SGE is read during the call.
        Some(f) => unsafe { f(qp, ctx as PVOID, sge, 1, flags) },
        None => STATUS_NOT_IMPLEMENTED,
    };
    post(st, "send")
}

pub(super) fn qp_recv(qp: *mut NDK_QP, ctx: usize, sge: &NDK_SGE) -> Result<(), NTSTATUS> {
    let st = match disp!(qp, NdkReceive) {
        // SAFETY: as above.
        Some(f) => unsafe { f(qp, ctx as PVOID, sge, 1) },
        None => STATUS_NOT_IMPLEMENTED,
    };
    post(st, "receive")
}

pub(super) fn qp_write(
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

pub(super) fn qp_read(
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

pub(super) const RESULTS: usize = 64;

/// Polls up to `out.len()` results.
pub(super) fn cq_poll(cq: *mut NDK_CQ, out: &mut [NDK_RESULT_EX]) -> usize {
    match disp!(cq, NdkGetCqResultsEx) {
        // SAFETY: live CQ; `out` has room for `out.len()` results.
        Some(f) => unsafe { f(cq, out.as_mut_ptr(), out.len() as ULONG) as usize },
        None => 0,
    }
}

pub(super) fn cq_arm(cq: *mut NDK_CQ) {
    if let Some(f) = disp!(cq, NdkArmCq) {
        // SAFETY: live CQ.
        unsafe { f(cq, NDK_CQ_NOTIFY_ANY) };
    }
}

pub(super) fn empty_results() -> [NDK_RESULT_EX; RESULTS] {
    // SAFETY: NDK_RESULT_EX is plain integers and pointers.
    unsafe { std::mem::zeroed() }
}
