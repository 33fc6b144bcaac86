//! An NDK consumer for the NDIS host tests: drives the shell's NDK
//! adapters through their dispatch tables as a kernel consumer does
//! (SMB Direct), over kernel-layout MDLs, and records every upcall so a
//! test can check that each request completed exactly once, with which
//! status, within a bound.
//!
//! Upcalls arrive on the host's DPC threads; the consumer's calls are made
//! from the test thread at PASSIVE_LEVEL. The connect event accepts from
//! inside the callback, as the NDKPI pages allow.
#![allow(dead_code, clippy::missing_safety_doc)]

use std::mem::size_of;
use std::net::SocketAddrV4;
use std::ptr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ndis_host::layout::Mdl;
use ndkpi::*;

/// Bound of every wait for the provider.
pub const T: Duration = Duration::from_secs(10);

/// The dispatch function `$f` of provider object `$obj`, called.
macro_rules! ndk {
    ($obj:expr, $f:ident $(, $a:expr)* $(,)?) => {
        // SAFETY: `$obj` is a live provider object with a static dispatch
        // table; the arguments are valid for the call.
        unsafe { ((*(*$obj).Dispatch).$f.expect(stringify!($f)))($obj $(, $a)*) }
    };
}

/// One upcall.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ev {
    Request(usize, NTSTATUS),
    Close(usize),
    Cq(usize, NTSTATUS),
    Connect(usize, usize),
    Disconnect(usize),
}

static LOG: Mutex<Vec<Ev>> = Mutex::new(Vec::new());
/// Per listener context: (QP, accept request context) to accept onto.
static ACCEPT: Mutex<Vec<(usize, usize, usize)>> = Mutex::new(Vec::new());

fn log(e: Ev) {
    LOG.lock().unwrap_or_else(|p| p.into_inner()).push(e);
}

pub fn events() -> Vec<Ev> {
    LOG.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

/// How many times `e` was upcalled.
pub fn count(e: Ev) -> usize {
    events().iter().filter(|x| **x == e).count()
}

/// Waits (bounded by [`T`]) until `cond` holds on the log.
pub fn wait_for(what: &str, cond: impl Fn(&[Ev]) -> bool) -> Result<Duration, String> {
    let t0 = Instant::now();
    loop {
        if cond(&events()) {
            return Ok(t0.elapsed());
        }
        if t0.elapsed() > T {
            return Err(format!("{what}: not within {T:?}; upcalls: {:?}", events()));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Requests with context `ctx` that completed, and their statuses.
pub fn completions(ctx: usize) -> Vec<NTSTATUS> {
    events()
        .into_iter()
        .filter_map(|e| match e {
            Ev::Request(c, st) if c == ctx => Some(st),
            _ => None,
        })
        .collect()
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
pub unsafe extern "system" fn on_disconnect(ctx: PVOID) {
    log(Ev::Disconnect(ctx as usize));
}

/// Accepts the next connection on the listener with context `listener`
/// onto `qp`; the accept completes to `ctx`, disconnects report `ctx + 1`.
pub fn plan_accept(listener: usize, qp: *mut NDK_QP, ctx: usize) {
    ACCEPT
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push((listener, qp as usize, ctx));
}

pub unsafe extern "system" fn on_connect(ctx: PVOID, conn: *mut NDK_CONNECTOR) {
    log(Ev::Connect(ctx as usize, conn as usize));
    let plan = {
        let mut a = ACCEPT.lock().unwrap_or_else(|p| p.into_inner());
        a.iter()
            .position(|p| p.0 == ctx as usize)
            .map(|i| a.remove(i))
    };
    let Some((_, qp, done)) = plan else { return };
    let st = ndk!(
        conn,
        NdkAccept,
        qp as *mut NDK_QP,
        4,
        4,
        ptr::null(),
        0,
        Some(on_disconnect),
        (done + 1) as PVOID,
        Some(on_request),
        done as PVOID
    );
    if st != STATUS_PENDING && st != STATUS_SUCCESS {
        log(Ev::Request(done, st));
    }
}

/// Waits for a request that returned STATUS_PENDING; its final status.
pub fn finish(st: NTSTATUS, ctx: usize, what: &str) -> Result<NTSTATUS, String> {
    if st != STATUS_PENDING {
        return Ok(st);
    }
    wait_for(what, |l| {
        l.iter()
            .any(|e| matches!(e, Ev::Request(c, _) if *c == ctx))
    })?;
    Ok(completions(ctx)[0])
}

/// Closes `obj` (the close function is the first slot of every dispatch
/// table: the NDKPI object lifetime requirements page), waiting for a
/// pended close; a close never fails (NDK_FN_CLOSE_COMPLETION).
pub fn close<T>(obj: *mut T, ctx: usize) -> Result<(), String> {
    // SAFETY: every NDK object is {header, dispatch}, the dispatch table
    // starting with its close function.
    let st = unsafe {
        let o = obj.cast::<NDK_QP>();
        let f = *(*o).Dispatch.cast::<NDK_FN_CLOSE_OBJECT>();
        f.expect("close")(obj.cast(), Some(on_close), ctx as PVOID)
    };
    match st {
        STATUS_SUCCESS => Ok(()),
        STATUS_PENDING => wait_for("a pended close", |l| l.contains(&Ev::Close(ctx))).map(|_| ()),
        other => Err(format!("close returned {other:#x}")),
    }
}

pub fn sin(a: SocketAddrV4) -> SOCKADDR_IN {
    SOCKADDR_IN {
        sin_family: AF_INET,
        sin_port: a.port().to_be(),
        sin_addr: IN_ADDR {
            s_addr: a.ip().octets(),
        },
        sin_zero: [0; 8],
    }
}
const SIN_LEN: ULONG = size_of::<SOCKADDR_IN>() as ULONG;

/// Memory the provider maps through the shell's platform: buffers of the
/// given sizes, each described by one kernel-layout MDL, chained in order
/// (MDL->Next).
pub struct Memory {
    pub bufs: Vec<Box<[u8]>>,
    /// Boxed: the chain links their addresses, which must not move.
    #[allow(clippy::vec_box)]
    pub mdls: Vec<Box<Mdl>>,
}

impl Memory {
    pub fn chain(sizes: &[usize]) -> Memory {
        let mut bufs: Vec<Box<[u8]>> = sizes
            .iter()
            .map(|&n| vec![0u8; n].into_boxed_slice())
            .collect();
        let mut mdls: Vec<Box<Mdl>> = bufs
            .iter_mut()
            .map(|b| Box::new(Mdl::over(b.as_mut_ptr(), b.len())))
            .collect();
        for i in 1..mdls.len() {
            let next: *mut Mdl = &mut *mdls[i];
            mdls[i - 1].next = next;
        }
        Memory { bufs, mdls }
    }

    pub fn head(&mut self) -> *mut MDL {
        (&mut *self.mdls[0] as *mut Mdl).cast()
    }

    pub fn len(&self) -> usize {
        self.bufs.iter().map(|b| b.len()).sum()
    }

    /// The region's address: the first MDL's (NDK_FN_REGISTER_MR).
    pub fn va(&self) -> PVOID {
        self.bufs[0].as_ptr().cast_mut().cast()
    }

    pub fn bytes(&self) -> Vec<u8> {
        self.bufs.iter().flat_map(|b| b.iter().copied()).collect()
    }

    pub fn fill(&mut self, seed: u8) {
        let mut k = 0u32;
        for b in &mut self.bufs {
            for x in b.iter_mut() {
                *x = (k.wrapping_mul(131) >> 3) as u8 ^ seed;
                k += 1;
            }
        }
    }

    pub fn sge(&self, token: u32) -> NDK_SGE {
        NDK_SGE {
            Address: NDK_SGE_ADDRESS {
                VirtualAddress: self.va(),
            },
            Length: self.len() as ULONG,
            MemoryRegionToken: token,
        }
    }
}

/// One consumer's objects on one NDK adapter: PD, CQ, QP (depth 16, 4
/// SGEs), and a registered MR over its memory.
pub struct Side {
    pub adapter: *mut NDK_ADAPTER,
    pub pd: *mut NDK_PD,
    pub cq: *mut NDK_CQ,
    pub qp: *mut NDK_QP,
    pub mr: *mut NDK_MR,
    pub token: u32,
    pub mem: Memory,
    pub connector: *mut NDK_CONNECTOR,
    pub listener: *mut NDK_LISTENER,
}

// SAFETY: provider objects are used from one thread at a time.
unsafe impl Send for Side {}

/// Contexts: CQ `base`, QP `base + 1`, MR registration `base + 2`.
pub fn side(adapter: *mut NDK_ADAPTER, base: usize, mut mem: Memory) -> Result<Side, String> {
    let mut pd = ptr::null_mut();
    let st = ndk!(adapter, NdkCreatePd, None, ptr::null_mut(), &mut pd);
    check(st, "NdkCreatePd")?;
    let mut cq = ptr::null_mut();
    let st = ndk!(
        adapter,
        NdkCreateCq,
        64,
        Some(on_cq),
        base as PVOID,
        ptr::null_mut(),
        None,
        ptr::null_mut(),
        &mut cq
    );
    check(st, "NdkCreateCq")?;
    let mut qp = ptr::null_mut();
    let st = ndk!(
        pd,
        NdkCreateQp,
        cq,
        cq,
        (base + 1) as PVOID,
        16,
        16,
        4,
        4,
        0,
        None,
        ptr::null_mut(),
        &mut qp
    );
    check(st, "NdkCreateQp")?;
    let mut mr = ptr::null_mut();
    let st = ndk!(pd, NdkCreateMr, FALSE, None, ptr::null_mut(), &mut mr);
    check(st, "NdkCreateMr")?;
    let st = ndk!(
        mr,
        NdkRegisterMr,
        mem.head(),
        mem.len(),
        NDK_MR_FLAG_ALLOW_LOCAL_WRITE
            | NDK_MR_FLAG_ALLOW_REMOTE_READ
            | NDK_MR_FLAG_ALLOW_REMOTE_WRITE,
        Some(on_request),
        (base + 2) as PVOID
    );
    check(finish(st, base + 2, "NdkRegisterMr")?, "NdkRegisterMr")?;
    let token = ndk!(mr, NdkGetLocalTokenFromMr);
    Ok(Side {
        adapter,
        pd,
        cq,
        qp,
        mr,
        token,
        mem,
        connector: ptr::null_mut(),
        listener: ptr::null_mut(),
    })
}

pub fn check(st: NTSTATUS, what: &str) -> Result<(), String> {
    if st == STATUS_SUCCESS {
        Ok(())
    } else {
        Err(format!("{what}: {st:#x}"))
    }
}

impl Side {
    /// Listens on `at` (the listener's context `ctx`); the bound port.
    pub fn listen(&mut self, at: SocketAddrV4, ctx: usize) -> Result<u16, NTSTATUS> {
        let mut l = ptr::null_mut();
        let st = ndk!(
            self.adapter,
            NdkCreateListener,
            Some(on_connect),
            ctx as PVOID,
            None,
            ptr::null_mut(),
            &mut l
        );
        if st != STATUS_SUCCESS {
            return Err(st);
        }
        self.listener = l;
        let a = sin(at);
        let st = ndk!(
            l,
            NdkListen,
            (&a as *const SOCKADDR_IN).cast(),
            SIN_LEN,
            None,
            ptr::null_mut()
        );
        if st != STATUS_SUCCESS {
            return Err(st);
        }
        let mut bound = sin(at);
        let mut len = SIN_LEN;
        let st = ndk!(
            l,
            NdkGetLocalAddress,
            (&mut bound as *mut SOCKADDR_IN).cast(),
            &mut len
        );
        check(st, "NdkGetLocalAddress").map_err(|_| st)?;
        Ok(u16::from_be(bound.sin_port))
    }

    /// NdkConnect from `from` to `to`, completing to `ctx`; the status it
    /// returned inline (STATUS_PENDING, or a failure).
    pub fn start_connect(&mut self, from: SocketAddrV4, to: SocketAddrV4, ctx: usize) -> NTSTATUS {
        let mut c = ptr::null_mut();
        let st = ndk!(
            self.adapter,
            NdkCreateConnector,
            None,
            ptr::null_mut(),
            &mut c
        );
        if st != STATUS_SUCCESS {
            return st;
        }
        self.connector = c;
        let (src, dst) = (sin(from), sin(to));
        ndk!(
            c,
            NdkConnect,
            self.qp,
            (&src as *const SOCKADDR_IN).cast(),
            SIN_LEN,
            (&dst as *const SOCKADDR_IN).cast(),
            SIN_LEN,
            4,
            4,
            ptr::null(),
            0,
            Some(on_request),
            ctx as PVOID
        )
    }

    /// NdkCompleteConnect after the connect completed; disconnect events
    /// report `ctx`.
    pub fn complete_connect(&self, ctx: usize) -> NTSTATUS {
        ndk!(
            self.connector,
            NdkCompleteConnect,
            Some(on_disconnect),
            ctx as PVOID,
            None,
            ptr::null_mut()
        )
    }

    pub fn post_receive(&self, ctx: usize) -> NTSTATUS {
        let sge = self.mem.sge(self.token);
        ndk!(self.qp, NdkReceive, ctx as PVOID, &sge, 1)
    }

    pub fn post_send(&self, ctx: usize, len: usize) -> NTSTATUS {
        let mut sge = self.mem.sge(self.token);
        sge.Length = len as ULONG;
        ndk!(self.qp, NdkSend, ctx as PVOID, &sge, 1, 0)
    }

    /// Every completion the CQ holds now.
    pub fn results(&self) -> Vec<NDK_RESULT> {
        let mut out: Vec<NDK_RESULT> = Vec::with_capacity(64);
        let n = ndk!(self.cq, NdkGetCqResults, out.as_mut_ptr(), 64);
        // SAFETY: the provider wrote `n` results.
        unsafe { out.set_len(n as usize) };
        out
    }

    /// Polls the CQ (bounded by [`T`]) until `n` completions arrived in
    /// all; returns them.
    pub fn reap(&self, n: usize, what: &str) -> Result<Vec<NDK_RESULT>, String> {
        let t0 = Instant::now();
        let mut got = Vec::new();
        while got.len() < n {
            got.extend(self.results());
            if t0.elapsed() > T {
                return Err(format!(
                    "{what}: {} of {n} completions within {T:?}: {got:?}",
                    got.len()
                ));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(got)
    }

    /// Closes everything, children first (the NDKPI object lifetime
    /// requirements page), each close waited for; contexts from `ctx`.
    pub fn close_all(&mut self, ctx: usize) -> Result<(), String> {
        if !self.connector.is_null() {
            close(self.connector, ctx)?;
            self.connector = ptr::null_mut();
        }
        if !self.listener.is_null() {
            close(self.listener, ctx + 1)?;
            self.listener = ptr::null_mut();
        }
        close(self.qp, ctx + 2)?;
        close(self.mr, ctx + 3)?;
        close(self.cq, ctx + 4)?;
        close(self.pd, ctx + 5)?;
        Ok(())
    }
}

/// Two consumers on two NDK adapters of the shell, connected over the
/// adapter's loopback path (NDK_ADAPTER_FLAG_LOOPBACK_CONNECTIONS_SUPPORTED):
/// `a` listens, `b` connects. Contexts: `a` from `base`, `b` from
/// `base + 100` (see [`side`]); listener `base + 10`, accept `base + 11`,
/// connect `base + 110`.
pub fn connected_pair(
    ip: std::net::Ipv4Addr,
    base: usize,
    a_mem: Memory,
    b_mem: Memory,
) -> Result<(Side, Side), String> {
    let open = |who: &str| {
        ndis_host::machine::open_ndk().map_err(|st| format!("OpenNDKAdapter ({who}): {st:#x}"))
    };
    let mut a = side(open("a")?, base, a_mem)?;
    let mut b = side(open("b")?, base + 100, b_mem)?;
    let port = a
        .listen(SocketAddrV4::new(ip, 0), base + 10)
        .map_err(|st| format!("NdkListen: {st:#x}"))?;
    plan_accept(base + 10, a.qp, base + 11);
    let st = b.start_connect(
        SocketAddrV4::new(ip, 0),
        SocketAddrV4::new(ip, port),
        base + 110,
    );
    check(finish(st, base + 110, "NdkConnect")?, "NdkConnect")?;
    check(b.complete_connect(base + 111), "NdkCompleteConnect")?;
    let accepted = finish(STATUS_PENDING, base + 11, "NdkAccept")?;
    check(accepted, "NdkAccept")?;
    // The passive side's connector came with the connect event.
    a.connector = events()
        .into_iter()
        .find_map(|e| match e {
            Ev::Connect(l, c) if l == base + 10 => Some(c as *mut NDK_CONNECTOR),
            _ => None,
        })
        .ok_or("no connect event")?;
    Ok((a, b))
}

/// `from` sends its first `len` bytes into a receive `to` posts: both
/// complete with STATUS_SUCCESS within [`T`] and the bytes arrive.
pub fn transfer(from: &mut Side, to: &Side, len: usize, ctx: usize) -> Result<(), String> {
    check(to.post_receive(ctx), "NdkReceive")?;
    from.mem.fill(ctx as u8);
    check(from.post_send(ctx + 1, len), "NdkSend")?;
    let s = from.reap(1, "the send's completion")?;
    let r = to.reap(1, "the receive's completion")?;
    if s[0].Status != STATUS_SUCCESS || s[0].RequestContext as usize != ctx + 1 {
        return Err(format!("send completion {:?}", s[0]));
    }
    if r[0].Status != STATUS_SUCCESS
        || r[0].RequestContext as usize != ctx
        || r[0].BytesTransferred as usize != len
    {
        return Err(format!("receive completion {:?}", r[0]));
    }
    if to.mem.bytes()[..len] != from.mem.bytes()[..len] {
        return Err(format!("the {len} bytes received differ from those sent"));
    }
    Ok(())
}

/// The end of a [`connected_pair`]: each side closes its objects
/// ([`Side::close_all`], contexts from `ctx_a` and `ctx_b`), then NDIS
/// closes both NDK adapters.
#[track_caller]
pub fn close_pair(a: &mut Side, b: &mut Side, ctx_a: usize, ctx_b: usize) {
    a.close_all(ctx_a).expect("close a");
    b.close_all(ctx_b).expect("close b");
    ndis_host::machine::close_ndk(a.adapter);
    ndis_host::machine::close_ndk(b.adapter);
}

/// What a consumer did when NDIS told it NDK is going away.
#[derive(Debug, Default)]
pub struct Flushed {
    /// Completions reaped after NdkFlush, per side.
    pub results: Vec<Vec<NDK_RESULT>>,
    pub errors: Vec<String>,
}

// SAFETY: plain data (the pointers in NDK_RESULT are opaque contexts).
unsafe impl Send for Flushed {}

impl Flushed {
    /// Every request the flushes completed, as (QP context, request
    /// context), sorted; each must have completed with STATUS_CANCELLED.
    #[track_caller]
    pub fn cancelled(&self) -> Vec<(usize, usize)> {
        let mut got: Vec<(usize, usize)> = Vec::new();
        for r in self.results.iter().flatten() {
            assert_eq!(
                r.Status, STATUS_CANCELLED,
                "a flushed request's status: {r:?}"
            );
            got.push((r.QPContext as usize, r.RequestContext as usize));
        }
        got.sort();
        got
    }
}

/// The consumer's part of an NDK disable, run inside NdisMNetPnPEvent:
/// NdkFlush on each QP (every outstanding request completes with
/// STATUS_CANCELLED: the NDK_FN_FLUSH page), reap `outstanding[i]`
/// completions, then close every object, children first (the NDKPI object
/// lifetime requirements page); NDIS closes the adapters afterwards.
pub fn release_on_disable(
    sides: Vec<Side>,
    outstanding: Vec<usize>,
    into: std::sync::Arc<Mutex<Flushed>>,
) -> impl FnOnce() + Send + 'static {
    move || {
        let mut out = into.lock().unwrap_or_else(|p| p.into_inner());
        for (i, (mut s, n)) in sides.into_iter().zip(outstanding).enumerate() {
            ndk!(s.qp, NdkFlush);
            match s.reap(n, "flushed requests") {
                Ok(r) => {
                    // Nothing more may come: each request completes once.
                    std::thread::sleep(Duration::from_millis(50));
                    let extra = s.results();
                    if !extra.is_empty() {
                        out.errors
                            .push(format!("side {i}: completions beyond {n}: {extra:?}"));
                    }
                    out.results.push(r);
                }
                Err(e) => out.errors.push(format!("side {i}: {e}")),
            }
            if let Err(e) = s.close_all(9000 + 10 * i) {
                out.errors.push(format!("side {i} close: {e}"));
            }
        }
    }
}
