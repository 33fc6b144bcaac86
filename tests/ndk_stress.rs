//! Several threads at once through the dispatch tables, over the adapters'
//! real locks (the consumer kit's host platform lock): posters (one per initiator
//! queue, as the consumer serializes posts per queue), pollers that also
//! arm (one per CQ, as get-results and arm are serialized per CQ), an
//! NdkFlush racing the posts of one QP (the NDKPI work request posting requirements and deferred processing scheme pages),
//! disconnects and closes while the pollers run, and an I/O thread
//! pumping datagrams between the two adapters. At the end every posted
//! request has completed exactly once, no completion is unknown, every
//! pending close completed once, and no object is left.
// Every unsafe block names the invariant it relies on.
#![deny(clippy::undocumented_unsafe_blocks)]

#[macro_use]
mod support;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ndk::provider::STATUS_NO_MORE_ENTRIES;
use ndkpi::*;
use support::*;

const QPS: usize = 4;
const OPS: usize = 300;
const SENDS: usize = 100;
const RECEIVES: usize = 120;

/// A raw pointer handed to another thread (the provider's objects are
/// thread-safe behind the adapter lock).
#[derive(Clone, Copy)]
struct P<T>(*mut T);
// SAFETY: the provider's objects are thread-safe behind the adapter lock
// (the NDKPI dispatch functions may be called from any thread).
unsafe impl<T> Send for P<T> {}
// SAFETY: as for Send.
unsafe impl<T> Sync for P<T> {}

/// Notifications per CQ context, and a check that none overlap (the NDKPI completion handling requirements page).
static NOTIFIED: [AtomicUsize; 4] = [const { AtomicUsize::new(0) }; 4];
static IN_NOTIFY: [AtomicBool; 4] = [const { AtomicBool::new(false) }; 4];
static OVERLAP: AtomicBool = AtomicBool::new(false);

unsafe extern "system" fn on_notify(ctx: PVOID, _st: NTSTATUS) {
    let i = ctx as usize;
    if IN_NOTIFY[i].swap(true, Ordering::SeqCst) {
        OVERLAP.store(true, Ordering::SeqCst);
    }
    NOTIFIED[i].fetch_add(1, Ordering::SeqCst);
    std::thread::yield_now();
    IN_NOTIFY[i].store(false, Ordering::SeqCst);
}

fn ctx_of(qp: usize, i: usize) -> usize {
    (qp + 1) << 20 | i
}

#[derive(Default)]
struct Books {
    /// Posted request context -> SILENT_SUCCESS.
    posted: HashMap<usize, bool>,
    /// Completions seen: request context -> (count, status, QP context).
    seen: HashMap<usize, (usize, NTSTATUS, usize)>,
}

#[test]
fn posting_polling_arming_flushing_and_closing_from_many_threads() {
    let net = Net::new();
    let a = Arc::new(Adapter::open(
        IpAddr::V4(Ipv4Addr::new(10, 40, 0, 1)),
        1,
        &net,
    ));
    let b = Arc::new(Adapter::open(
        IpAddr::V4(Ipv4Addr::new(10, 40, 0, 2)),
        2,
        &net,
    ));
    let (apd, bpd) = (a.pd(), b.pd());
    let cq = |ad: &Adapter, i: usize| {
        let mut cq = ptr::null_mut();
        let st = ndk!(
            ad.ptr,
            NdkCreateCq,
            4096,
            Some(on_notify),
            i as PVOID,
            ptr::null_mut(),
            None,
            ptr::null_mut(),
            &mut cq
        );
        assert_eq!(st, STATUS_SUCCESS);
        cq
    };
    // Two CQs per side, each shared by two QPs.
    let acqs = [cq(&a, 0), cq(&a, 1)];
    let bcqs = [cq(&b, 2), cq(&b, 3)];
    let mut abuf = Buffer::new(&net, 256 * 1024);
    let mut bbuf = Buffer::new(&net, 256 * 1024);
    let (amr, at) = register(apd, &mut abuf, RW);
    let (bmr, bt) = register(bpd, &mut bbuf, RW);
    let books = Arc::new(Mutex::new(Books::default()));
    let mut aqps = Vec::new();
    let mut bqps = Vec::new();
    for i in 0..QPS {
        let q = try_qp(apd, acqs[i % 2], acqs[i % 2], 0xA0 + i, (4, 16), (2, 2), 64).unwrap();
        let r = try_qp(bpd, bcqs[i % 2], bcqs[i % 2], 0xB0 + i, (128, 4), (1, 1), 0).unwrap();
        for j in 0..RECEIVES {
            let s = sge(bbuf.va((i * RECEIVES + j) % 256 * 1024), 1024, bt);
            let c = ctx_of(QPS + i, j);
            assert_eq!(ndk!(r, NdkReceive, c as PVOID, &s, 1), STATUS_SUCCESS);
            books.lock().unwrap().posted.insert(c, false);
        }
        aqps.push(q);
        bqps.push(r);
    }
    let (listener, port) = b.listen(3);
    let conns: Vec<Connection> = (0..QPS)
        .map(|i| connect(&a, aqps[i], &b, bqps[i], 3, port, 100 + 10 * i))
        .collect();
    net.take_log();

    let stop_io = Arc::new(AtomicBool::new(false));
    let stop_poll = Arc::new(AtomicBool::new(false));
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut threads = Vec::new();
    // The I/O side: datagrams between the adapters, timers, the clock.
    let io = {
        let (a, b, stop) = (a.clone(), b.clone(), stop_io.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                pump(&[&a, &b]);
                a.net.advance(50_000);
                std::thread::yield_now();
            }
        })
    };
    // Pollers: one per CQ; each also arms its CQ.
    let mut pollers = Vec::new();
    for (i, cq) in acqs.iter().chain(&bcqs).enumerate() {
        let (cq, books, stop) = (P(*cq), books.clone(), stop_poll.clone());
        pollers.push(std::thread::spawn(move || {
            let cq = cq;
            let mut n = 0usize;
            loop {
                let r = results(cq.0);
                let mut bk = books.lock().unwrap();
                for r in &r {
                    let e = bk.seen.entry(r.RequestContext as usize).or_insert((
                        0,
                        r.Status,
                        r.QPContext as usize,
                    ));
                    e.0 += 1;
                }
                drop(bk);
                n += r.len();
                if r.is_empty() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    ndk!(cq.0, NdkArmCq, NDK_CQ_NOTIFY_ANY);
                    std::thread::yield_now();
                }
            }
            let _ = i;
            n
        }));
    }
    // Posters: one per A QP; each disconnects and closes its connector and
    // QP when done, while the pollers still poll.
    let flush_now = Arc::new(AtomicBool::new(false));
    for (i, (q, c)) in aqps.iter().zip(&conns).enumerate() {
        let (q, c, books, flush_now) = (P(*q), P(c.active), books.clone(), flush_now.clone());
        let net = net.clone();
        let (abase, bbase) = (abuf.va(0), bbuf.va(0));
        threads.push(std::thread::spawn(move || {
            let (q, c) = (q, c);
            let mut sends = 0;
            let mut deferred = false;
            for op in 0..OPS {
                if i == 3 && op == OPS / 3 {
                    flush_now.store(true, Ordering::SeqCst);
                }
                let ctx = ctx_of(i, op);
                let off = ((i * OPS + op) % 128) as u64 * 1024;
                let s = sge(abase + off, 512, at);
                let silent = op % 7 == 0;
                // End every DEFER chain with a post without it (the NDKPI work request posting requirements page).
                let defer = !deferred && op % 5 == 1 && op + 1 < OPS;
                let inline = op % 11 == 3;
                let mut flags = 0;
                if silent {
                    flags |= NDK_OP_FLAG_SILENT_SUCCESS;
                }
                if defer {
                    flags |= NDK_OP_FLAG_DEFER;
                }
                let remote = bbase + 128 * 1024 + off;
                // A Read lands in the upper half of A's buffer, apart from
                // every source: an inline Send's data is copied by the
                // posting thread outside the adapter lock (the buffer is the
                // consumer's, valid during the call), so a source that an
                // in-flight Read of another thread writes would be the
                // consumer's own data race (ThreadSanitizer, .ci/ub.sh tsan,
                // reported it once in a dozen runs).
                let dst = sge(abase + 128 * 1024 + off, 512, at);
                loop {
                    let st = match op % 3 {
                        0 if sends < SENDS => {
                            let s = if inline { sge(abase + off, 48, 0) } else { s };
                            let f = if inline {
                                flags | NDK_OP_FLAG_INLINE
                            } else {
                                flags
                            };
                            ndk!(q.0, NdkSend, ctx as PVOID, &s, 1, f)
                        }
                        2 => ndk!(q.0, NdkRead, ctx as PVOID, &dst, 1, remote, bt, flags),
                        _ => ndk!(q.0, NdkWrite, ctx as PVOID, &s, 1, remote, bt, flags),
                    };
                    match st {
                        STATUS_SUCCESS => break,
                        // A full queue fails inline (and hands deferred
                        // requests on): retry.
                        STATUS_NO_MORE_ENTRIES => std::thread::yield_now(),
                        other => panic!("post {ctx:#x}: {other:#x}"),
                    }
                }
                if op % 3 == 0 && sends < SENDS {
                    sends += 1;
                }
                deferred = defer;
                books.lock().unwrap().posted.insert(ctx, silent);
            }
            // Disconnect (flushes what is left), close connector and QP.
            let st = ndk!(c.0, NdkDisconnect, Some(on_request), net.ctx(900 + i));
            assert!(st == STATUS_PENDING || st == STATUS_SUCCESS, "{st:#x}");
            let mut pending = Vec::new();
            net.close_rec(c.0, 910 + i, &mut pending);
            net.close_rec(q.0, 920 + i, &mut pending);
            (st == STATUS_PENDING)
                .then_some(900 + i)
                .into_iter()
                .chain(pending)
                .collect::<Vec<_>>()
        }));
    }
    // NdkFlush racing the posts of QP 3 (D10).
    {
        let (q, flush_now) = (P(aqps[3]), flush_now.clone());
        threads.push(std::thread::spawn(move || {
            let q = q;
            while !flush_now.load(Ordering::SeqCst) {
                std::thread::yield_now();
            }
            ndk!(q.0, NdkFlush);
            vec![]
        }));
    }
    let mut expected_callbacks = Vec::new();
    for t in threads {
        expected_callbacks.extend(t.join().expect("thread"));
    }
    // B: its peer disconnected; disconnect (flushing the receives left)
    // and close, while pollers and I/O still run.
    for (i, c) in conns.iter().enumerate() {
        let st = ndk!(c.passive, NdkDisconnect, Some(on_request), net.ctx(930 + i));
        assert!(st == STATUS_PENDING || st == STATUS_SUCCESS, "{st:#x}");
        if st == STATUS_PENDING {
            expected_callbacks.push(930 + i);
        }
        let mut pending = Vec::new();
        net.close_rec(c.passive, 940 + i, &mut pending);
        net.close_rec(bqps[i], 950 + i, &mut pending);
        expected_callbacks.extend(pending);
    }
    // Wait until every non-silent request has completed.
    loop {
        let bk = books.lock().unwrap();
        let missing = bk
            .posted
            .iter()
            .filter(|(c, silent)| !**silent && !bk.seen.contains_key(c))
            .count();
        drop(bk);
        if missing == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{missing} requests never completed"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    stop_poll.store(true, Ordering::SeqCst);
    let polled: usize = pollers.into_iter().map(|t| t.join().unwrap()).sum();
    let mut pending = Vec::new();
    for (i, cq) in acqs.iter().chain(&bcqs).enumerate() {
        net.close_rec(*cq, 960 + i, &mut pending);
    }
    net.close_rec(listener, 970, &mut pending);
    net.close_rec(amr, 971, &mut pending);
    net.close_rec(bmr, 972, &mut pending);
    net.close_rec(apd, 973, &mut pending);
    net.close_rec(bpd, 974, &mut pending);
    expected_callbacks.extend(pending);
    // Let the last closes and disconnects finish.
    while !(a.objects() == 0 && b.objects() == 0) {
        assert!(
            Instant::now() < deadline,
            "objects left: {} {}",
            a.objects(),
            b.objects()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    stop_io.store(true, Ordering::SeqCst);
    io.join().unwrap();

    // Exactly once: every non-silent post once; a silent one at most once
    // and then not as a success; nothing unknown.
    let bk = books.lock().unwrap();
    assert_eq!(bk.seen.values().map(|s| s.0).sum::<usize>(), polled);
    for (ctx, (n, status, qp_ctx)) in &bk.seen {
        assert_eq!(*n, 1, "{ctx:#x} completed {n} times");
        let silent = *bk
            .posted
            .get(ctx)
            .unwrap_or_else(|| panic!("unknown {ctx:#x}"));
        assert!(
            !silent || *status != STATUS_SUCCESS,
            "silent success {ctx:#x}"
        );
        assert!(
            *status == STATUS_SUCCESS || *status == STATUS_CANCELLED,
            "{ctx:#x}: {status:#x}"
        );
        let qp = (ctx >> 20) - 1;
        let want = if qp < QPS { 0xA0 + qp } else { 0xB0 + qp - QPS };
        assert_eq!(*qp_ctx, want, "{ctx:#x}");
    }
    let ok = bk.seen.values().filter(|s| s.1 == STATUS_SUCCESS).count();
    let cancelled = bk.seen.len() - ok;
    eprintln!(
        "{} posted, {ok} succeeded, {cancelled} cancelled",
        bk.posted.len()
    );
    // Both outcomes happened: data moved, and the flush and disconnects
    // cancelled work in flight.
    assert!(ok > QPS * OPS / 4 && cancelled > 0, "{ok} {cancelled}");
    for (ctx, silent) in &bk.posted {
        assert!(*silent || bk.seen.contains_key(ctx), "{ctx:#x} lost");
    }
    // Every callback that was due came exactly once; notifications never
    // overlapped.
    let log = net.take_log();
    for ctx in &expected_callbacks {
        let n = log
            .iter()
            .filter(|e| matches!(e, Ev::Close(c) | Ev::Request(c, _) if c == ctx))
            .count();
        assert_eq!(n, 1, "callback {ctx}: {log:?}");
    }
    assert!(!OVERLAP.load(Ordering::SeqCst));
    assert!(NOTIFIED.iter().any(|n| n.load(Ordering::SeqCst) > 0));
}
