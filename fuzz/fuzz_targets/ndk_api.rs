// Run: cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run ndk_api corpus/ndk_api corpus-seed/ndk_api
//
// Arbitrary sequences of NDKPI calls, made only through the dispatch tables
// the way a kernel consumer makes them (the consumer harness of
// tests/common/mod.rs, on the consumer kit crates/consumer): create,
// register, listen, connect, accept, reject, complete, disconnect, post
// (send, receive, write, read) with bad tokens, offsets, lengths and SGE
// counts, poll, arm and close, on two adapters
// joined in memory, in any order, with the clock moved on at will. What a
// consumer must not do (pass a freed object, lie about a buffer's length)
// is not tried: the harness never reuses a closed object.
//
// Invariants, checked on every input:
// * no panic; every call returns an NTSTATUS (a close SUCCESS or PENDING);
// * a request completes through its callback exactly once if (and only
//   if) the call returned STATUS_PENDING, and never after its object's
//   close has completed;
// * every posted work request completes in its CQ at most once, and
//   exactly once when its CQ is still open at the end;
// * a disconnect event fires at most once per connector;
// * closing everything completes: every pending close calls back once
//   and no object is left, within a bounded number of clock steps.
#![no_main]
#![allow(clippy::missing_safety_doc)]

#[macro_use]
#[path = "../../tests/support/mod.rs"]
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ptr;
use std::sync::Arc;

use arbitrary::Arbitrary;
use support::*;
use libfuzzer_sys::fuzz_target;
use ndkpi::*;

const BUF: usize = 64 * 1024;

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Token {
    Mr(u8),
    Raw(u32),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Post {
    Send,
    Receive,
    Write,
    Read,
}

#[derive(Arbitrary, Debug)]
enum Op {
    Pd {
        b: bool,
    },
    Cq {
        b: bool,
        depth: u16,
    },
    Qp {
        b: bool,
        pd: u8,
        rcq: u8,
        icq: u8,
        depths: (u16, u16),
        sges: (u8, u8),
        inline: u16,
    },
    Mr {
        b: bool,
        pd: u8,
        fast: bool,
    },
    Register {
        b: bool,
        mr: u8,
        off: u16,
        len: u32,
        flags: u8,
    },
    Listener {
        b: bool,
    },
    Listen {
        b: bool,
        l: u8,
        port: u16,
    },
    Connector {
        b: bool,
    },
    Connect {
        b: bool,
        c: u8,
        qp: u8,
        to: u8,
        port: Option<u16>,
        ird: u8,
        ord: u8,
        data: u16,
    },
    Accept {
        b: bool,
        c: u8,
        qp: u8,
        ird: u8,
        ord: u8,
        data: u16,
    },
    Reject {
        b: bool,
        c: u8,
        data: u16,
    },
    Complete {
        b: bool,
        c: u8,
    },
    Disconnect {
        b: bool,
        incoming: bool,
        c: u8,
    },
    Post {
        b: bool,
        qp: u8,
        kind: Post,
        off: u16,
        len: u16,
        nsge: u8,
        token: Token,
        remote: u16,
        rtoken: Token,
        flags: u8,
    },
    Poll {
        b: bool,
        cq: u8,
    },
    Arm {
        b: bool,
        cq: u8,
        ty: u8,
    },
    Close {
        b: bool,
        kind: u8,
        i: u8,
    },
    Pump,
    Advance {
        millis: u16,
    },
}

/// A live object and its serial number (pointers may be reused once freed).
struct Obj<T> {
    ptr: *mut T,
    id: u64,
}

// Not derived: a derive would ask `T: Copy` of the NDK object types.
impl<T> Clone for Obj<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Obj<T> {}

struct Qp {
    obj: Obj<NDK_QP>,
    rcq: u64,
    icq: u64,
}

#[derive(Default)]
struct Side {
    pds: Vec<Obj<NDK_PD>>,
    cqs: Vec<Obj<NDK_CQ>>,
    qps: Vec<Qp>,
    mrs: Vec<(Obj<NDK_MR>, u32)>,
    listeners: Vec<(Obj<NDK_LISTENER>, Option<u16>)>,
    connectors: Vec<Obj<NDK_CONNECTOR>>,
    incoming: Vec<Obj<NDK_CONNECTOR>>,
}

fn pick<T: Copy>(v: &[T], i: u8) -> Option<T> {
    (!v.is_empty()).then(|| v[usize::from(i) % v.len()])
}

struct World {
    a: Adapter,
    b: Adapter,
    bufs: [Buffer; 2],
    sides: [Side; 2],
    next: u64,
    /// Request context -> (owner object, pending?).
    requests: BTreeMap<usize, (u64, bool)>,
    completed: BTreeSet<usize>,
    /// Close context -> object.
    closes: BTreeMap<usize, u64>,
    /// Objects whose close has returned (SUCCESS) or called back.
    closed: BTreeSet<u64>,
    /// Objects whose close was called.
    closing: BTreeSet<u64>,
    /// Work request context -> (CQ id, completions seen).
    wrs: BTreeMap<usize, (u64, u32)>,
    disconnect_events: BTreeMap<usize, u32>,
    listener_ctx: BTreeMap<usize, bool>,
    /// Work requests posted with NDK_OP_FLAG_SILENT_SUCCESS.
    silent: BTreeSet<usize>,
    /// CQs the fuzzer closed: what lands in them later is not polled.
    cqs_closed: BTreeSet<u64>,
    /// MDLs of registrations, kept until the end (boxed: an MR keeps the
    /// MDL's address).
    #[allow(clippy::vec_box)]
    mdls: Vec<Box<HostMdl>>,
    data: [u8; 300],
}

impl World {
    fn new() -> World {
        let net = Net::new();
        let a = Adapter::open(IpAddr::V4(Ipv4Addr::new(10, 1, 0, 1)), 2, &net);
        let b = Adapter::open(IpAddr::V4(Ipv4Addr::new(10, 1, 0, 2)), 3, &net);
        World {
            a,
            b,
            bufs: [Buffer::new(&net, BUF), Buffer::new(&net, BUF)],
            sides: [Side::default(), Side::default()],
            next: 0x1000,
            requests: BTreeMap::new(),
            completed: BTreeSet::new(),
            closes: BTreeMap::new(),
            closed: BTreeSet::new(),
            closing: BTreeSet::new(),
            wrs: BTreeMap::new(),
            disconnect_events: BTreeMap::new(),
            listener_ctx: BTreeMap::new(),
            silent: BTreeSet::new(),
            cqs_closed: BTreeSet::new(),
            mdls: Vec::new(),
            data: [0x6E; 300],
        }
    }

    fn id(&mut self) -> u64 {
        self.next += 1;
        self.next
    }

    /// The world's net (its clock and its log).
    fn net(&self) -> Arc<Net> {
        self.a.net.clone()
    }

    fn adapter(&self, b: bool) -> *mut NDK_ADAPTER {
        if b { self.b.ptr } else { self.a.ptr }
    }

    /// A request was made with context `ctx` and returned `st`.
    fn request(&mut self, ctx: usize, owner: u64, st: NTSTATUS) {
        self.requests.insert(ctx, (owner, st == STATUS_PENDING));
    }

    /// Checks every upcall logged since the last look.
    fn upcalls(&mut self) {
        for e in self.net().take_log() {
            match e {
                Ev::Request(ctx, _) => {
                    let (owner, pending) = *self
                        .requests
                        .get(&ctx)
                        .unwrap_or_else(|| panic!("completion of an unknown request {ctx:#x}"));
                    assert!(pending, "request {ctx:#x} completed inline and by callback");
                    assert!(
                        self.completed.insert(ctx),
                        "request {ctx:#x} completed twice"
                    );
                    assert!(
                        !self.closed.contains(&owner),
                        "request {ctx:#x} completed after its object's close"
                    );
                }
                Ev::Close(ctx) => {
                    let obj = *self
                        .closes
                        .get(&ctx)
                        .unwrap_or_else(|| panic!("close callback for unknown {ctx:#x}"));
                    assert!(self.closed.insert(obj), "close {ctx:#x} called back twice");
                }
                Ev::Connect(ctx, conn) => {
                    let b = *self
                        .listener_ctx
                        .get(&ctx)
                        .unwrap_or_else(|| panic!("connect event for unknown listener {ctx:#x}"));
                    let id = self.id();
                    self.sides[usize::from(b)].incoming.push(Obj {
                        ptr: conn as *mut NDK_CONNECTOR,
                        id,
                    });
                }
                Ev::Disconnect(ctx) => {
                    let n = self.disconnect_events.entry(ctx).or_insert(0);
                    *n += 1;
                    assert_eq!(*n, 1, "disconnect event {ctx:#x} twice");
                }
                Ev::Cq(..) | Ev::Srq(..) => {}
            }
        }
    }

    fn poll(&mut self, cq: Obj<NDK_CQ>) {
        loop {
            let r = results(cq.ptr);
            for x in &r {
                let ctx = x.RequestContext as usize;
                let (cq_id, n) = self
                    .wrs
                    .get_mut(&ctx)
                    .unwrap_or_else(|| panic!("result for a request never posted: {x:?}"));
                assert_eq!(*cq_id, cq.id, "result in the wrong CQ: {x:?}");
                *n += 1;
                assert_eq!(*n, 1, "request completed twice: {x:?}");
            }
            if r.is_empty() {
                break;
            }
        }
    }

    fn pump(&mut self) {
        pump(&[&self.a, &self.b]);
        self.upcalls();
    }

    fn close_obj<T>(&mut self, ptr: *mut T, id: u64) {
        let ctx = self.id() as usize;
        self.closes.insert(ctx, id);
        self.closing.insert(id);
        let st = self.net().close(ptr, ctx);
        match st {
            STATUS_SUCCESS => {
                self.upcalls();
                assert!(self.closed.insert(id), "inline close also called back");
            }
            STATUS_PENDING => {}
            other => panic!("close returned {other:#x}"),
        }
    }

    fn run(&mut self, op: Op) {
        match op {
            Op::Pd { b } => {
                let mut pd = ptr::null_mut();
                let st = ndk!(self.adapter(b), NdkCreatePd, None, ptr::null_mut(), &mut pd);
                if st == STATUS_SUCCESS {
                    let id = self.id();
                    self.sides[usize::from(b)].pds.push(Obj { ptr: pd, id });
                }
            }
            Op::Cq { b, depth } => {
                let ctx = self.id() as usize;
                let mut cq = ptr::null_mut();
                let st = ndk!(
                    self.adapter(b),
                    NdkCreateCq,
                    u32::from(depth),
                    Some(on_cq),
                    self.net().ctx(ctx),
                    ptr::null_mut(),
                    None,
                    ptr::null_mut(),
                    &mut cq
                );
                if st == STATUS_SUCCESS {
                    let id = self.id();
                    self.sides[usize::from(b)].cqs.push(Obj { ptr: cq, id });
                } else {
                    assert!(cq.is_null(), "an object on failure");
                }
            }
            Op::Qp {
                b,
                pd,
                rcq,
                icq,
                depths,
                sges,
                inline,
            } => {
                let s = &self.sides[usize::from(b)];
                let (Some(pd), Some(rcq), Some(icq)) =
                    (pick(&s.pds, pd), pick(&s.cqs, rcq), pick(&s.cqs, icq))
                else {
                    return;
                };
                let ctx = self.id() as usize;
                let r = try_qp(
                    pd.ptr,
                    rcq.ptr,
                    icq.ptr,
                    ctx,
                    (u32::from(depths.0), u32::from(depths.1)),
                    (u32::from(sges.0), u32::from(sges.1)),
                    u32::from(inline),
                );
                if let Ok(qp) = r {
                    let id = self.id();
                    self.sides[usize::from(b)].qps.push(Qp {
                        obj: Obj { ptr: qp, id },
                        rcq: rcq.id,
                        icq: icq.id,
                    });
                }
            }
            Op::Mr { b, pd, fast } => {
                let Some(pd) = pick(&self.sides[usize::from(b)].pds, pd) else {
                    return;
                };
                let mut mr = ptr::null_mut();
                let st = ndk!(
                    pd.ptr,
                    NdkCreateMr,
                    if fast { TRUE } else { FALSE },
                    None,
                    ptr::null_mut(),
                    &mut mr
                );
                if st == STATUS_SUCCESS {
                    let id = self.id();
                    self.sides[usize::from(b)]
                        .mrs
                        .push((Obj { ptr: mr, id }, 0));
                }
            }
            Op::Register {
                b,
                mr,
                off,
                len,
                flags,
            } => {
                let side = usize::from(b);
                let mrs = &self.sides[side].mrs;
                if mrs.is_empty() {
                    return;
                }
                let i = usize::from(mr) % mrs.len();
                let m = mrs[i].0;
                let off = usize::from(off) % BUF;
                // The MDL describes real memory; the length asked may not fit it.
                let mdl = self.bufs[side].sub_mdl(off, BUF - off);
                let mdl_ptr: *mut MDL = (&*mdl as *const HostMdl).cast_mut().cast();
                let ctx = self.id() as usize;
                let st = ndk!(
                    m.ptr,
                    NdkRegisterMr,
                    mdl_ptr,
                    len as SIZE_T,
                    ULONG::from(flags),
                    Some(on_request),
                    self.net().ctx(ctx)
                );
                self.request(ctx, m.id, st);
                // Registration completes before the MDL goes.
                self.pump();
                if st == STATUS_SUCCESS || self.completed.contains(&ctx) {
                    let token = ndk!(m.ptr, NdkGetLocalTokenFromMr);
                    self.sides[side].mrs[i].1 = token;
                }
                // Keep the MDL alive while the MR may use it.
                self.mdls.push(mdl);
            }
            Op::Listener { b } => {
                let ctx = self.id() as usize;
                let mut l = ptr::null_mut();
                let st = ndk!(
                    self.adapter(b),
                    NdkCreateListener,
                    Some(on_connect),
                    self.net().ctx(ctx),
                    None,
                    ptr::null_mut(),
                    &mut l
                );
                if st == STATUS_SUCCESS {
                    self.listener_ctx.insert(ctx, b);
                    let id = self.id();
                    self.sides[usize::from(b)]
                        .listeners
                        .push((Obj { ptr: l, id }, None));
                }
            }
            Op::Listen { b, l, port } => {
                let side = usize::from(b);
                let ls = &self.sides[side].listeners;
                if ls.is_empty() {
                    return;
                }
                let i = usize::from(l) % ls.len();
                let lo = ls[i].0;
                let ip = if b { self.b.ip } else { self.a.ip };
                let (addr, len) = sockaddr(SocketAddr::new(ip, port));
                let ctx = self.id() as usize;
                let st = ndk!(
                    lo.ptr,
                    NdkListen,
                    addr.as_ptr().cast(),
                    len,
                    Some(on_request),
                    self.net().ctx(ctx)
                );
                self.request(ctx, lo.id, st);
                if st == STATUS_SUCCESS || st == STATUS_PENDING {
                    let mut bound = [0u8; 28];
                    let mut blen = 28;
                    if ndk!(
                        lo.ptr,
                        NdkGetLocalAddress,
                        bound.as_mut_ptr().cast(),
                        &mut blen
                    ) == STATUS_SUCCESS
                    {
                        self.sides[side].listeners[i].1 =
                            Some(u16::from_be_bytes([bound[2], bound[3]]));
                    }
                }
            }
            Op::Connector { b } => {
                let mut c = ptr::null_mut();
                let st = ndk!(
                    self.adapter(b),
                    NdkCreateConnector,
                    None,
                    ptr::null_mut(),
                    &mut c
                );
                if st == STATUS_SUCCESS {
                    let id = self.id();
                    self.sides[usize::from(b)]
                        .connectors
                        .push(Obj { ptr: c, id });
                }
            }
            Op::Connect {
                b,
                c,
                qp,
                to,
                port,
                ird,
                ord,
                data,
            } => {
                let s = &self.sides[usize::from(b)];
                let (Some(c), Some(qp)) = (pick(&s.connectors, c), pick_qp(&s.qps, qp)) else {
                    return;
                };
                let peer = &self.sides[usize::from(!b)];
                let port = port
                    .or_else(|| pick(&peer.listeners, to).and_then(|l| l.1))
                    .unwrap_or(1);
                let (src_ip, dst_ip) = if b {
                    (self.b.ip, self.a.ip)
                } else {
                    (self.a.ip, self.b.ip)
                };
                let (src, src_len) = sockaddr(SocketAddr::new(src_ip, 0));
                let (dst, dst_len) = sockaddr(SocketAddr::new(dst_ip, port));
                let ctx = self.id() as usize;
                let st = ndk!(
                    c.ptr,
                    NdkConnect,
                    qp,
                    src.as_ptr().cast(),
                    src_len,
                    dst.as_ptr().cast(),
                    dst_len,
                    ULONG::from(ird),
                    ULONG::from(ord),
                    self.data.as_ptr().cast(),
                    ULONG::from(data % 300),
                    Some(on_request),
                    self.net().ctx(ctx)
                );
                self.request(ctx, c.id, st);
            }
            Op::Accept {
                b,
                c,
                qp,
                ird,
                ord,
                data,
            } => {
                let s = &self.sides[usize::from(b)];
                let (Some(c), Some(qp)) = (pick(&s.incoming, c), pick_qp(&s.qps, qp)) else {
                    return;
                };
                let ctx = self.id() as usize;
                let st = ndk!(
                    c.ptr,
                    NdkAccept,
                    qp,
                    ULONG::from(ird),
                    ULONG::from(ord),
                    self.data.as_ptr().cast(),
                    ULONG::from(data % 300),
                    Some(on_disconnect),
                    self.net().ctx(ctx + 1),
                    Some(on_request),
                    self.net().ctx(ctx)
                );
                self.next += 1;
                self.request(ctx, c.id, st);
            }
            Op::Reject { b, c, data } => {
                let Some(c) = pick(&self.sides[usize::from(b)].incoming, c) else {
                    return;
                };
                let _ = ndk!(
                    c.ptr,
                    NdkReject,
                    self.data.as_ptr().cast(),
                    ULONG::from(data % 300)
                );
            }
            Op::Complete { b, c } => {
                let Some(c) = pick(&self.sides[usize::from(b)].connectors, c) else {
                    return;
                };
                let ctx = self.id() as usize;
                let st = ndk!(
                    c.ptr,
                    NdkCompleteConnect,
                    Some(on_disconnect),
                    self.net().ctx(ctx + 1),
                    Some(on_request),
                    self.net().ctx(ctx)
                );
                self.next += 1;
                self.request(ctx, c.id, st);
            }
            Op::Disconnect { b, incoming, c } => {
                let s = &self.sides[usize::from(b)];
                let list = if incoming { &s.incoming } else { &s.connectors };
                let Some(c) = pick(list, c) else { return };
                let ctx = self.id() as usize;
                let st = ndk!(c.ptr, NdkDisconnect, Some(on_request), self.net().ctx(ctx));
                self.request(ctx, c.id, st);
            }
            Op::Post {
                b,
                qp,
                kind,
                off,
                len,
                nsge,
                token,
                remote,
                rtoken,
                flags,
            } => {
                let side = usize::from(b);
                let s = &self.sides[side];
                if s.qps.is_empty() {
                    return;
                }
                let q = &s.qps[usize::from(qp) % s.qps.len()];
                let (qp, cq_id) = (
                    q.obj.ptr,
                    if matches!(kind, Post::Receive) {
                        q.rcq
                    } else {
                        q.icq
                    },
                );
                let tok = |s: &Side, t: Token| match t {
                    Token::Mr(i) => pick(&s.mrs, i).map_or(0, |m| m.1),
                    Token::Raw(v) => v,
                };
                let lt = tok(s, token);
                let rt = tok(&self.sides[1 - side], rtoken);
                let base = self.bufs[side].va(0);
                let n = usize::from(nsge % 9);
                let sgl: Vec<NDK_SGE> = (0..n)
                    .map(|i| {
                        sge(
                            base + u64::from(off) + (i as u64) * 64,
                            usize::from(len),
                            lt,
                        )
                    })
                    .collect();
                let remote = self.bufs[1 - side].va(0) + u64::from(remote);
                let ctx = self.id() as usize;
                let flags = ULONG::from(flags) & 0x7F;
                let st = match kind {
                    Post::Send => ndk!(qp, NdkSend, ctx as PVOID, sgl.as_ptr(), n as ULONG, flags),
                    Post::Receive => ndk!(qp, NdkReceive, ctx as PVOID, sgl.as_ptr(), n as ULONG),
                    Post::Write => ndk!(
                        qp,
                        NdkWrite,
                        ctx as PVOID,
                        sgl.as_ptr(),
                        n as ULONG,
                        remote,
                        rt,
                        flags
                    ),
                    Post::Read => ndk!(
                        qp,
                        NdkRead,
                        ctx as PVOID,
                        sgl.as_ptr(),
                        n as ULONG,
                        remote,
                        rt,
                        flags
                    ),
                };
                // A silent success may make no completion; only the rest is owed.
                let silent = flags & NDK_OP_FLAG_SILENT_SUCCESS != 0;
                if st == STATUS_SUCCESS {
                    self.wrs.insert(ctx, (cq_id, 0));
                    if silent {
                        self.silent.insert(ctx);
                    }
                } else {
                    assert_ne!(st, STATUS_PENDING, "a post returned STATUS_PENDING");
                }
            }
            Op::Poll { b, cq } => {
                if let Some(cq) = pick(&self.sides[usize::from(b)].cqs, cq) {
                    self.poll(cq);
                }
            }
            Op::Arm { b, cq, ty } => {
                if let Some(cq) = pick(&self.sides[usize::from(b)].cqs, cq) {
                    ndk!(cq.ptr, NdkArmCq, ULONG::from(ty % 4));
                }
            }
            Op::Close { b, kind, i } => self.close_one(usize::from(b), kind, i),
            Op::Pump => self.pump(),
            Op::Advance { millis } => {
                self.net().advance(u64::from(millis) * 1_000_000);
                self.pump();
            }
        }
        self.upcalls();
    }

    fn close_one(&mut self, side: usize, kind: u8, i: u8) {
        let s = &mut self.sides[side];
        macro_rules! take {
            ($v:expr, $get:expr) => {{
                if $v.is_empty() {
                    return;
                }
                let x = $v.remove(usize::from(i) % $v.len());
                ($get)(x)
            }};
        }
        let (ptr, id): (*mut NDK_QP, u64) = match kind % 7 {
            0 => take!(s.pds, |o: Obj<NDK_PD>| (o.ptr.cast(), o.id)),
            1 => {
                let (ptr, id) = take!(s.cqs, |o: Obj<NDK_CQ>| (o.ptr, o.id));
                // The consumer polls what it wants before closing a CQ.
                self.poll(Obj { ptr, id });
                self.cqs_closed.insert(id);
                (ptr.cast(), id)
            }
            2 => take!(s.qps, |q: Qp| (q.obj.ptr, q.obj.id)),
            3 => take!(s.mrs, |m: (Obj<NDK_MR>, u32)| (m.0.ptr.cast(), m.0.id)),
            4 => take!(s.listeners, |l: (Obj<NDK_LISTENER>, Option<u16>)| (
                l.0.ptr.cast(),
                l.0.id
            )),
            5 => take!(s.connectors, |o: Obj<NDK_CONNECTOR>| (o.ptr.cast(), o.id)),
            _ => take!(s.incoming, |o: Obj<NDK_CONNECTOR>| (o.ptr.cast(), o.id)),
        };
        self.close_obj(ptr, id);
    }

    /// Closes everything (QPs first so their requests flush into CQs that
    /// are still open), then requires that all of it completes.
    fn finish(&mut self) {
        self.pump();
        for side in 0..2 {
            while !self.sides[side].qps.is_empty() {
                self.close_one(side, 2, 0);
            }
        }
        self.pump();
        for side in 0..2 {
            for cq in self.sides[side].cqs.clone() {
                self.poll(cq);
            }
        }
        // Every request of a closed QP is in its CQs now (the close
        // cancels what is outstanding), unless the fuzzer closed the CQ.
        for (ctx, (cq, n)) in &self.wrs {
            assert!(
                *n == 1 || (*n == 0 && (self.silent.contains(ctx) || self.cqs_closed.contains(cq))),
                "work request {ctx:#x} completed {n} times"
            );
        }
        for side in 0..2 {
            for kind in [6u8, 5, 4, 3, 1, 0] {
                loop {
                    let s = &self.sides[side];
                    let empty = match kind {
                        0 => s.pds.is_empty(),
                        1 => s.cqs.is_empty(),
                        3 => s.mrs.is_empty(),
                        4 => s.listeners.is_empty(),
                        5 => s.connectors.is_empty(),
                        _ => s.incoming.is_empty(),
                    };
                    if empty {
                        break;
                    }
                    self.close_one(side, kind, 0);
                }
            }
        }
        for _ in 0..600 {
            self.pump();
            if self.a.objects() == 0
                && self.b.objects() == 0
                && self.closing.iter().all(|id| self.closed.contains(id))
            {
                break;
            }
            self.net().advance(100_000_000);
        }
        self.pump();
        // Connect events that arrived after their listener closed leave
        // connectors the consumer must close too.
        for side in 0..2 {
            while !self.sides[side].incoming.is_empty() {
                self.close_one(side, 6, 0);
            }
        }
        for _ in 0..600 {
            self.pump();
            if self.a.objects() == 0 && self.b.objects() == 0 {
                break;
            }
            self.net().advance(100_000_000);
        }
        assert_eq!(self.a.objects(), 0, "objects left on A after every close");
        assert_eq!(self.b.objects(), 0, "objects left on B after every close");
        for id in &self.closing {
            assert!(
                self.closed.contains(id),
                "close of object {id} never completed"
            );
        }
        for (ctx, (_, pending)) in &self.requests {
            assert_eq!(
                *pending,
                self.completed.contains(ctx),
                "request {ctx:#x}: pending {pending} but completed {}",
                self.completed.contains(ctx)
            );
        }
    }
}

fn pick_qp(qps: &[Qp], i: u8) -> Option<*mut NDK_QP> {
    (!qps.is_empty()).then(|| qps[usize::from(i) % qps.len()].obj.ptr)
}

fuzz_target!(|ops: Vec<Op>| {
    let mut w = World::new();
    for op in ops.into_iter().take(128) {
        w.run(op);
    }
    w.finish();
});
