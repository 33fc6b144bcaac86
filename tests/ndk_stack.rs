//! The kernel stack: the provider core and the RoCE engine run on a
//! Windows kernel stack of 24 KiB shared with NDIS and the consumer (the
//! house rules in docs/design.md, "Stack budget"), so no entry point may
//! recurse, nest upcalls, or keep large frames.
//!
//! 1. `reentrant_upcalls_do_not_nest_on_a_16k_stack`: thousands of upcalls
//!    queued by one call, each callback calling back into the provider,
//!    on a 16 KiB thread (the old provider made the next upcall from inside
//!    the callback's call: one level deeper per upcall, a stack overflow).
//! 2. `entry_points_stay_within_the_stack_budget`: the deepest stack use
//!    of each entry point (post, poll, receive, transmit, timeout, connect,
//!    disconnect, close), measured by painting the stack, against
//!    [`BUDGET`].
//! 3. ndkperf-shaped workloads on 16 KiB threads: 10,000 QPs connected and
//!    disconnected, and a windowed RDMA WRITE stream.
//!
//! Every call goes through the dispatch tables and the shell's `io`
//! functions, as a kernel consumer and the Windows shell make them; the
//! figures include the consumer's callbacks made from inside the call.

#[macro_use]
mod support;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ptr;
use std::sync::atomic::{AtomicUsize, Ordering};

use ndk::abi::io;
use ndk::provider::Limits;
use ndkpi::*;
use roce::device::MAX_DATAGRAM;
use support::*;

/// The kernel-reality threads: 16 KiB in an optimised build (the
/// driver's). An unoptimised build's frames are several times larger
/// (every temporary its own slot: see the figures in docs/design.md), so
/// its threads get three times that, still far too little for upcalls that
/// nest or a call chain that recurses.
const SMALL_STACK: usize = if cfg!(debug_assertions) {
    48 * 1024
} else {
    16 * 1024
};

/// The most one entry point may use, callbacks included, of the 24 KiB
/// kernel stack: a third in an optimised build (the driver's), leaving the
/// rest to NDIS and the consumer. An unoptimised build keeps every
/// temporary in its own stack slot, so its frames are several times
/// larger; its budget only bounds that (and catches recursion).
const BUDGET: usize = if cfg!(debug_assertions) {
    32 * 1024
} else {
    8 * 1024
};

/// Runs `f` on a fresh thread with a `stack`-byte stack and returns its
/// result (a stack overflow aborts the test process).
fn on_stack<R: Send + 'static>(stack: usize, f: impl FnOnce() -> R + Send + 'static) -> R {
    std::thread::Builder::new()
        .name("small-stack".into())
        .stack_size(stack)
        .spawn(f)
        .expect("spawn")
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e))
}

// ---- stack painting ----

const PAINT: u64 = 0x5AA5_C33C_0FF0_9669;
/// Bytes below the measuring frame that are left unpainted (the painting
/// function's own frame lives there).
const GAP: usize = 1024;
/// Bytes painted below that; the measuring thread's stack is larger.
const DEPTH: usize = 96 * 1024;
const MEASURE_STACK: usize = 256 * 1024;

/// The address of a local of a frame just below the caller's.
#[inline(never)]
fn stack_pointer() -> usize {
    let x = 0u8;
    std::hint::black_box(&x) as *const u8 as usize
}

/// Fills `[top - len, top)` with the pattern.
#[inline(never)]
fn paint(top: usize, len: usize) {
    let mut a = top - len;
    while a < top {
        // SAFETY: below this frame, inside the thread's stack (the thread
        // was made with MEASURE_STACK > GAP + DEPTH + what the caller
        // used), and nothing else uses it until the measured call.
        unsafe { ptr::write_volatile(a as *mut u64, PAINT) };
        a += 8;
    }
}

/// Runs `f` and returns its result and the deepest stack use below this
/// frame: the distance to the lowest word `f` changed in the painted
/// region (GAP or less when it did not reach the region).
#[inline(never)]
fn measured<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let top = (stack_pointer() - GAP) & !7;
    paint(top, DEPTH);
    let r = std::hint::black_box(f());
    let mut a = top - DEPTH;
    // SAFETY: the painted words, still inside this thread's stack.
    while a < top && unsafe { ptr::read_volatile(a as *const u64) } == PAINT {
        a += 8;
    }
    assert!(a > top - DEPTH, "the call used all {DEPTH} painted bytes");
    (r, top + GAP - a)
}

/// The deepest use seen per entry point.
#[derive(Default)]
struct Stats(BTreeMap<&'static str, (usize, usize)>);

impl Stats {
    fn run<R>(&mut self, entry: &'static str, f: impl FnOnce() -> R) -> R {
        let (r, used) = measured(f);
        let e = self.0.entry(entry).or_default();
        e.0 = e.0.max(used);
        e.1 += 1;
        r
    }
}

/// [`support::pump`] with every shell call measured: transmit
/// (`io::poll_transmit`), receive (`io::handle_udp`, the consumer's
/// connect and disconnect events and completions made from it) and
/// timeout (`io::handle_timeout`).
fn pump_measured(st: &mut Stats, adapters: &[&Adapter]) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let mut moved = false;
        for from in adapters {
            while let Some(t) = st.run("transmit", || io::poll_transmit(from.ptr, &mut buf)) {
                moved = true;
                let payload = t.udp_payload(&buf).to_vec();
                if let Some(to) = adapters.iter().find(|a| a.ip == t.dst.ip()) {
                    st.run("receive", || io::handle_udp(to.ptr, t.src, t.dst, &payload));
                }
            }
            if io::poll_timeout(from.ptr).is_some_and(|t| t <= from.net.now()) {
                st.run("timeout", || io::handle_timeout(from.ptr));
                moved = true;
            }
        }
        if !moved {
            break;
        }
    }
}

fn v4(net: u8, host: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, net, 0, host))
}

fn connect_call(
    conn: *mut NDK_CONNECTOR,
    qp: *mut NDK_QP,
    src: IpAddr,
    dst: SocketAddr,
    done: NDK_FN_REQUEST_COMPLETION,
    ctx: PVOID,
) -> NTSTATUS {
    let (s, sl) = sockaddr(SocketAddr::new(src, 0));
    let (d, dl) = sockaddr(dst);
    ndk!(
        conn,
        NdkConnect,
        qp,
        s.as_ptr().cast(),
        sl,
        d.as_ptr().cast(),
        dl,
        4,
        4,
        b"ndk?".as_ptr().cast(),
        4,
        done,
        ctx
    )
}

// ---- 1. upcalls never nest ----

static CLOSED_FROM_CALLBACK: AtomicUsize = AtomicUsize::new(0);

/// A connect's completion that closes its connector from inside the
/// callback (a re-entrant call, allowed by the NDKPI IRQL rules).
unsafe extern "system" fn close_on_completion(ctx: PVOID, st: NTSTATUS) {
    // SAFETY: the test passes a Net::ctx context whose number is the
    // connector.
    let t = unsafe { Tag::of(ctx) };
    let net = t.net();
    net.log(Ev::Request(t.n, st));
    let st = net.close(t.n as *mut NDK_CONNECTOR, t.n);
    assert!(st == STATUS_SUCCESS || st == STATUS_PENDING, "{st:#x}");
    CLOSED_FROM_CALLBACK.fetch_add(1, Ordering::SeqCst);
}

/// 3000 connects to a peer that never answers time out in one
/// handle_timeout: 3000 upcalls queued at once, each of whose callbacks
/// closes its connector. All of it on a 16 KiB stack: the upcalls are made
/// one after another by the call that found them, never from inside the
/// callback's own call.
#[test]
fn reentrant_upcalls_do_not_nest_on_a_16k_stack() {
    const N: usize = 3000;
    let (ok, closes, objects) = on_stack(SMALL_STACK, || {
        let net = Net::new();
        let a = Adapter::open(v4(60, 1), 60, &net);
        let pd = a.pd();
        let cq = a.cq(64, 1);
        let mut qps = Vec::new();
        for i in 0..N {
            let qp = try_qp(pd, cq, cq, i, (1, 1), (1, 1), 0).expect("QP");
            let conn = a.connector();
            let st = connect_call(
                conn,
                qp,
                a.ip,
                SocketAddr::new(v4(60, 2), 445),
                Some(close_on_completion),
                net.ctx(conn as usize),
            );
            assert_eq!(st, STATUS_PENDING);
            qps.push(qp);
        }
        // Nobody answers: drop what the adapter sends, let the CM time out.
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let mut rounds = 0;
        while CLOSED_FROM_CALLBACK.load(Ordering::SeqCst) < N && rounds < 10_000 {
            while io::poll_transmit(a.ptr, &mut buf).is_some() {}
            net.advance(100_000_000);
            io::handle_timeout(a.ptr);
            rounds += 1;
        }
        let log = net.take_log();
        let ok = log
            .iter()
            .filter(|e| matches!(e, Ev::Request(_, st) if *st != STATUS_SUCCESS && *st != STATUS_PENDING))
            .count();
        let closes = CLOSED_FROM_CALLBACK.load(Ordering::SeqCst);
        for qp in qps {
            let _ = net.close(qp, 0);
        }
        let _ = net.close(cq, 0);
        let _ = net.close(pd, 0);
        while io::poll_transmit(a.ptr, &mut buf).is_some() {}
        net.advance(100_000_000);
        io::handle_timeout(a.ptr);
        (ok, closes, a.objects())
    });
    assert_eq!(ok, N, "every connect failed, each exactly once");
    assert_eq!(closes, N, "every callback closed its connector");
    assert_eq!(objects, 0, "every object closed");
}

// ---- 2. the figures ----

/// A connection, a window of each work request, polling, a connect that
/// times out, disconnects from both sides and every close, each call
/// measured; the figures are printed and held against [`BUDGET`].
#[test]
fn entry_points_stay_within_the_stack_budget() {
    let stats = on_stack(MEASURE_STACK, || {
        let mut st = Stats::default();
        scenario(&mut st);
        st
    });
    let mut report = format!(
        "deepest stack use per entry point ({} build, budget {} B):\n",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        BUDGET
    );
    for (k, (used, calls)) in &stats.0 {
        report += &format!("  {k:<10} {used:>6} B  ({calls} calls)\n");
    }
    println!("{report}");
    for e in [
        "post",
        "poll",
        "receive",
        "transmit",
        "timeout",
        "connect",
        "disconnect",
        "close",
    ] {
        assert!(stats.0.contains_key(e), "{e} was not measured\n{report}");
    }
    let over: Vec<_> = stats.0.iter().filter(|(_, (u, _))| *u > BUDGET).collect();
    assert!(over.is_empty(), "over the budget: {over:?}\n{report}");
}

fn scenario(st: &mut Stats) {
    let net = Net::new();
    let a = Adapter::open(v4(61, 1), 61, &net);
    let b = Adapter::open(v4(61, 2), 62, &net);
    let (apd, bpd) = (a.pd(), b.pd());
    let (acq, bcq) = (a.cq(256, 7), b.cq(256, 8));
    let (aqp, bqp) = (qp(apd, acq, 0xA1), qp(bpd, bcq, 0xB1));
    let mut abuf = Buffer::new(&net, 64 * 1024);
    let mut bbuf = Buffer::new(&net, 64 * 1024);
    let (amr, at) = register(apd, &mut abuf, RW);
    let (bmr, bt) = register(bpd, &mut bbuf, RW);
    let (listener, port) = b.listen(3);
    // Connect (the passive side accepts from inside its connect event,
    // counted in "receive").
    net.plan_accept(3, bqp, 12);
    let conn = a.connector();
    let s = st.run("connect", || {
        connect_call(
            conn,
            aqp,
            a.ip,
            SocketAddr::new(b.ip, port),
            Some(on_request),
            net.ctx(10),
        )
    });
    assert_eq!(s, STATUS_PENDING);
    pump_measured(st, &[&a, &b]);
    net.expect(Ev::Request(10, STATUS_SUCCESS));
    let passive = net
        .take_log()
        .into_iter()
        .find_map(|e| match e {
            Ev::Connect(3, p) => Some(p as *mut NDK_CONNECTOR),
            _ => None,
        })
        .expect("connect event");
    let s = st.run("connect", || {
        ndk!(
            conn,
            NdkCompleteConnect,
            Some(on_disconnect),
            net.ctx(11),
            None,
            ptr::null_mut()
        )
    });
    assert_eq!(s, STATUS_SUCCESS);
    pump_measured(st, &[&a, &b]);
    // Data: receives, sends, writes, reads, each a window of 8.
    for round in 0..4 {
        for i in 0..8 {
            let s = sge(bbuf.va(i * 1024), 1024, bt);
            let r = st.run("post", || ndk!(bqp, NdkReceive, (100 + i) as PVOID, &s, 1));
            assert_eq!(r, STATUS_SUCCESS);
        }
        for i in 0..8 {
            let s = sge(abuf.va(i * 1024), 1024, at);
            let r = st.run("post", || ndk!(aqp, NdkSend, (200 + i) as PVOID, &s, 1, 0));
            assert_eq!(r, STATUS_SUCCESS);
            let remote = bbuf.va(32 * 1024 + i * 1024);
            let w = st.run("post", || {
                ndk!(aqp, NdkWrite, (300 + i) as PVOID, &s, 1, remote, bt, 0)
            });
            assert_eq!(w, STATUS_SUCCESS);
            let l = sge(abuf.va(32 * 1024 + i * 1024), 1024, at);
            let r = st.run("post", || {
                ndk!(aqp, NdkRead, (400 + i) as PVOID, &l, 1, remote, bt, 0)
            });
            assert_eq!(r, STATUS_SUCCESS);
        }
        // Inline data on the last round.
        if round == 3 {
            let s = sge(abuf.va(0), 64, 0);
            let r = st.run("post", || {
                ndk!(aqp, NdkSend, 500 as PVOID, &s, 1, NDK_OP_FLAG_INLINE)
            });
            assert_eq!(r, STATUS_SUCCESS);
            let rs = sge(bbuf.va(0), 1024, bt);
            let r = st.run("post", || ndk!(bqp, NdkReceive, 501 as PVOID, &rs, 1));
            assert_eq!(r, STATUS_SUCCESS);
        }
        st.run("poll", || ndk!(acq, NdkArmCq, NDK_CQ_NOTIFY_ANY));
        st.run("poll", || ndk!(bcq, NdkArmCq, NDK_CQ_NOTIFY_ANY));
        pump_measured(st, &[&a, &b]);
        let mut out: Vec<NDK_RESULT_EX> = Vec::with_capacity(256);
        for cq in [acq, bcq] {
            let n = st.run("poll", || {
                ndk!(cq, NdkGetCqResultsEx, out.as_mut_ptr(), 256)
            });
            // SAFETY: the provider wrote `n` results.
            unsafe { out.set_len(n as usize) };
            assert!(out.iter().all(|r| r.Status == STATUS_SUCCESS), "{out:?}");
            out.clear();
            let mut legacy: Vec<NDK_RESULT> = Vec::with_capacity(64);
            let _ = st.run("poll", || {
                ndk!(cq, NdkGetCqResults, legacy.as_mut_ptr(), 64)
            });
        }
    }
    // A connect nobody answers: its CM timeouts.
    let lost = a.connector();
    let lqp = qp(apd, acq, 0xA2);
    let s = st.run("connect", || {
        connect_call(
            lost,
            lqp,
            a.ip,
            SocketAddr::new(v4(61, 9), 445),
            Some(on_request),
            net.ctx(20),
        )
    });
    assert_eq!(s, STATUS_PENDING);
    for _ in 0..2000 {
        pump_measured(st, &[&a, &b]);
        net.advance(50_000_000);
        if net
            .peek_log()
            .iter()
            .any(|e| matches!(e, Ev::Request(20, _)))
        {
            break;
        }
    }
    assert!(
        net.peek_log()
            .iter()
            .any(|e| matches!(e, Ev::Request(20, _))),
        "the lost connect completed"
    );
    // A Send the passive side has no receive for, then the disconnects:
    // the active side's, with requests outstanding, then the passive's.
    let s1 = sge(abuf.va(0), 512, at);
    let r = st.run("post", || ndk!(aqp, NdkSend, 600 as PVOID, &s1, 1, 0));
    assert_eq!(r, STATUS_SUCCESS);
    let rs = sge(abuf.va(0), 1024, at);
    for i in 0..8 {
        let r = st.run("post", || ndk!(aqp, NdkReceive, (700 + i) as PVOID, &rs, 1));
        assert_eq!(r, STATUS_SUCCESS);
    }
    st.run("disconnect", || {
        ndk!(conn, NdkDisconnect, Some(on_request), net.ctx(30))
    });
    pump_measured(st, &[&a, &b]);
    st.run("disconnect", || {
        ndk!(passive, NdkDisconnect, Some(on_request), net.ctx(31))
    });
    for _ in 0..200 {
        pump_measured(st, &[&a, &b]);
        net.advance(50_000_000);
    }
    st.run("poll", || ndk!(aqp, NdkFlush));
    // Every close, children last so their parents pend.
    let mut pending = Vec::new();
    for (o, ctx) in [
        (apd.cast::<NDK_QP>(), 1000),
        (bpd.cast(), 1001),
        (amr.cast(), 1002),
        (bmr.cast(), 1003),
        (conn.cast(), 1004),
        (passive.cast(), 1005),
        (lost.cast(), 1006),
        (listener.cast(), 1007),
        (aqp, 1008),
        (bqp, 1009),
        (lqp, 1010),
        (acq.cast(), 1011),
        (bcq.cast(), 1012),
    ] {
        st.run("close", || net.close_rec(o, ctx, &mut pending));
    }
    for _ in 0..200 {
        pump_measured(st, &[&a, &b]);
        net.advance(50_000_000);
    }
    assert_eq!((a.objects(), b.objects()), (0, 0));
    net.take_log();
}

// ---- 3. ndkperf's shapes on 16 KiB ----

/// ndkperf disconnect's shape: 10,000 QPs connected (all connects in
/// flight at once, accepted from inside the connect events), then all
/// disconnected at once and closed, on a 16 KiB stack.
#[test]
fn ten_thousand_qps_connect_and_disconnect_on_a_16k_stack() {
    const N: usize = 10_000;
    let (connected, disconnected, objects) = on_stack(SMALL_STACK, || {
        let net = Net::new();
        let a = Adapter::open(v4(62, 1), 63, &net);
        let b = Adapter::open(v4(62, 2), 64, &net);
        let (apd, bpd) = (a.pd(), b.pd());
        let (acq, bcq) = (a.cq(1024, 7), b.cq(1024, 8));
        let (listener, port) = b.listen(3);
        let mut conns = Vec::with_capacity(N);
        let mut qps = Vec::with_capacity(2 * N);
        for i in 0..N {
            let aqp = try_qp(apd, acq, acq, i, (1, 1), (1, 1), 0).expect("QP");
            let bqp = try_qp(bpd, bcq, bcq, i, (1, 1), (1, 1), 0).expect("QP");
            net.plan_accept(3, bqp, 1_000_000 + 4 * i);
            let conn = a.connector();
            let st = connect_call(
                conn,
                aqp,
                a.ip,
                SocketAddr::new(b.ip, port),
                Some(on_request),
                net.ctx(4 * i),
            );
            assert_eq!(st, STATUS_PENDING);
            conns.push(conn);
            qps.extend([aqp, bqp]);
        }
        pump(&[&a, &b]);
        let log = net.take_log();
        let mut passive = Vec::new();
        let mut connected = 0;
        for e in &log {
            match e {
                Ev::Request(c, STATUS_SUCCESS) if *c < 4 * N => connected += 1,
                Ev::Connect(3, p) => passive.push(*p as *mut NDK_CONNECTOR),
                _ => {}
            }
        }
        for (i, conn) in conns.iter().enumerate() {
            let st = ndk!(
                *conn,
                NdkCompleteConnect,
                Some(on_disconnect),
                net.ctx(4 * i + 1),
                None,
                ptr::null_mut()
            );
            assert_eq!(st, STATUS_SUCCESS);
        }
        pump(&[&a, &b]);
        net.take_log();
        for (i, conn) in conns.iter().enumerate() {
            let st = ndk!(*conn, NdkDisconnect, Some(on_request), net.ctx(4 * i + 2));
            assert!(st == STATUS_PENDING || st == STATUS_SUCCESS, "{st:#x}");
        }
        pump_for(&[&a, &b], 100, 50_000_000);
        let disconnected = net
            .take_log()
            .iter()
            .filter(|e| matches!(e, Ev::Request(c, STATUS_SUCCESS) if c % 4 == 2))
            .count();
        let mut pending = Vec::new();
        for (i, c) in conns.iter().chain(passive.iter()).enumerate() {
            net.close_rec(*c, 2_000_000 + i, &mut pending);
        }
        net.close_rec(listener, 3_000_000, &mut pending);
        for (i, q) in qps.iter().enumerate() {
            net.close_rec(*q, 4_000_000 + i, &mut pending);
        }
        for (i, o) in [acq.cast::<NDK_QP>(), bcq.cast(), apd.cast(), bpd.cast()]
            .into_iter()
            .enumerate()
        {
            net.close_rec(o, 5_000_000 + i, &mut pending);
        }
        pump_for(&[&a, &b], 100, 50_000_000);
        net.take_log();
        (connected, disconnected, a.objects() + b.objects())
    });
    assert_eq!(connected, N);
    assert_eq!(disconnected, N);
    assert_eq!(objects, 0);
}

/// ndkperf write_bw's shape on a 16 KiB stack: 4 KiB RDMA WRITEs, 32 in
/// flight, the CQ polled and re-armed as they complete, 2000 in all.
#[test]
fn write_stream_on_a_16k_stack() {
    let done = on_stack(SMALL_STACK, || {
        let p = Pair::new(63, Limits::default());
        let net = p.net.clone();
        p.abuf.fill(0, 8 * 4096, 7);
        let (mut posted, mut done) = (0usize, 0usize);
        let total = 2000;
        let mut out: Vec<NDK_RESULT_EX> = Vec::with_capacity(64);
        while done < total {
            while posted < total && posted - done < 32 {
                let i = posted % 8;
                let s = sge(p.abuf.va(i * 4096), 4096, p.at);
                let remote = p.bbuf.va(32 * 1024 + i * 4096);
                let st = ndk!(p.aqp, NdkWrite, posted as PVOID, &s, 1, remote, p.bt, 0);
                assert_eq!(st, STATUS_SUCCESS);
                posted += 1;
            }
            ndk!(p.acq, NdkArmCq, NDK_CQ_NOTIFY_ANY);
            p.pump();
            let n = ndk!(p.acq, NdkGetCqResultsEx, out.as_mut_ptr(), 64);
            // SAFETY: the provider wrote `n` results.
            unsafe { out.set_len(n as usize) };
            for r in &out {
                assert_eq!(r.Status, STATUS_SUCCESS, "{r:?}");
            }
            done += out.len();
            out.clear();
        }
        net.take_log();
        let remote = p.bbuf.read(32 * 1024, 8 * 4096);
        let local = p.abuf.read(0, 8 * 4096);
        assert!(remote == local, "the writes landed");
        p.teardown();
        done
    });
    assert_eq!(done, 2000);
}
