//! The close rules (the NDKPI object lifetime requirements page) and the CQ notification rules
//! (the NDKPI completion handling requirements page), through the dispatch tables.
// Every unsafe block names the invariant it relies on.
#![deny(clippy::undocumented_unsafe_blocks)]

#[macro_use]
mod support;

use std::net::{IpAddr, Ipv4Addr};
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use ndk::provider::Limits;
use ndkpi::*;
use support::*;

fn ip(net: u8, host: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, net, 0, host))
}

/// Posts `n` receives of 64 bytes (contexts `base..`).
fn receives(q: *mut NDK_QP, buf: &Buffer, token: u32, n: usize, base: usize) {
    for i in 0..n {
        let s = sge(buf.va(i * 64), 64, token);
        assert_eq!(
            ndk!(q, NdkReceive, (base + i) as PVOID, &s, 1),
            STATUS_SUCCESS
        );
    }
}

/// A QP closed with work outstanding: each request completes exactly once,
/// cancelled, with the QP's context, even though the QP is gone (the NDKPI object lifetime requirements page rule
/// 7, project choice); the close completes at once.
#[test]
fn qp_close_cancels_outstanding_work_once() {
    let net = Net::new();
    let a = Adapter::open(ip(30, 1), 1, &net);
    let pd = a.pd();
    let cq = a.cq(64, 7);
    let mut buf = Buffer::new(&net, 4096);
    let (m, t) = register(pd, &mut buf, RW);
    let q1 = qp(pd, cq, 0x51);
    receives(q1, &buf, t, 5, 10);
    assert_eq!(net.close(q1, 20), STATUS_SUCCESS);
    // A new QP meanwhile must not take the old one's number, or its
    // completions would carry the new context.
    let q2 = qp(pd, cq, 0x52);
    receives(q2, &buf, t, 2, 30);
    ndk!(q2, NdkFlush);
    let r = results(cq);
    assert_eq!(r.len(), 7, "{r:?}");
    for (i, r) in r[..5].iter().enumerate() {
        check(
            r,
            STATUS_CANCELLED,
            NdkOperationTypeReceive,
            0x51,
            10 + i,
            None,
        );
    }
    for (i, r) in r[5..].iter().enumerate() {
        check(
            r,
            STATUS_CANCELLED,
            NdkOperationTypeReceive,
            0x52,
            30 + i,
            None,
        );
    }
    // Posts after a flush complete at once, cancelled (the NDKPI object lifetime requirements page).
    receives(q2, &buf, t, 1, 40);
    let r = results(cq);
    check(
        &r[0],
        STATUS_CANCELLED,
        NdkOperationTypeReceive,
        0x52,
        40,
        None,
    );
    for o in [
        q2.cast::<NDK_OBJECT_HEADER>(),
        m.cast(),
        cq.cast(),
        pd.cast(),
    ] {
        close_now(o);
    }
    assert_eq!(a.objects(), 0);
    assert!(net.take_log().is_empty(), "no callback for inline closes");
}

/// Closing antecedents first is accepted: each such close pends until its
/// successors are closed, and its completion is its last callback (the NDKPI object lifetime requirements page
/// rules 3-5).
#[test]
fn out_of_order_closes_pend_until_successors_are_gone() {
    let mut p = Pair::new(31, Limits::default());
    let net = p.net.clone();
    let bpd = p.bpd;
    // A window bound to B's MR, an SRQ with a QP, all under B's PD.
    let mut mw = ptr::null_mut();
    assert_eq!(
        ndk!(bpd, NdkCreateMw, None, ptr::null_mut(), &mut mw),
        STATUS_SUCCESS
    );
    let st = ndk!(
        p.bqp,
        NdkBind,
        1 as PVOID,
        p.bmr,
        mw,
        p.bbuf.va(0) as PVOID,
        4096,
        NDK_OP_FLAG_ALLOW_REMOTE_READ
    );
    assert_eq!(st, STATUS_SUCCESS);
    p.pump();
    check(
        &results(p.bcq)[0],
        STATUS_SUCCESS,
        NdkOperationTypeBind,
        PB_QP,
        1,
        None,
    );
    let mut srq = ptr::null_mut();
    let st = ndk!(
        bpd,
        NdkCreateSrq,
        8,
        1,
        0,
        None,
        ptr::null_mut(),
        ptr::null_mut(),
        None,
        ptr::null_mut(),
        &mut srq
    );
    assert_eq!(st, STATUS_SUCCESS);
    let cq2 = p.b.cq(8, 9);
    let mut sq = ptr::null_mut();
    let st = ndk!(
        bpd,
        NdkCreateQpWithSrq,
        cq2,
        cq2,
        srq,
        0x77 as PVOID,
        4,
        1,
        0,
        None,
        ptr::null_mut(),
        &mut sq
    );
    assert_eq!(st, STATUS_SUCCESS);
    // Antecedents first: each pends.
    assert_eq!(net.close(p.bmr, 60), STATUS_PENDING, "MR -> MW after bind");
    assert_eq!(net.close(srq, 61), STATUS_PENDING, "SRQ -> QP");
    assert_eq!(net.close(cq2, 62), STATUS_PENDING, "CQ -> QP");
    assert_eq!(
        net.close(p.listener, 63),
        STATUS_PENDING,
        "listener -> connector"
    );
    assert!(net.take_log().is_empty());
    assert_eq!(net.close(mw, 64), STATUS_SUCCESS);
    net.expect(Ev::Close(60));
    assert_eq!(net.close(sq, 65), STATUS_SUCCESS);
    // Both antecedents of the QP complete, in no particular order.
    let mut log = net.take_log();
    log.sort_by_key(|e| format!("{e:?}"));
    assert_eq!(log, [Ev::Close(61), Ev::Close(62)]);
    // The listener refuses new connections at once (the NDKPI listeners, connectors and endpoints page) and completes
    // its close when the connector it delivered is closed.
    let passive = p.conn.passive;
    let _ = ndk!(p.conn.active, NdkDisconnect, None, ptr::null_mut());
    p.pump();
    let _ = ndk!(passive, NdkDisconnect, None, ptr::null_mut());
    let mut pending = Vec::new();
    net.close_rec(passive, 66, &mut pending);
    p.pump();
    net.expect(Ev::Close(63));
    // Already closed: the pair's teardown must not close them again.
    p.listener = p.b.listener(3);
    p.bmr = support::mr(bpd, false);
    p.conn.passive = {
        // A stand-in connector so the teardown closes something real.
        p.b.connector()
    };
    for c in pending {
        net.expect(Ev::Close(c));
    }
    p.teardown();
}

static CQ_PTR: AtomicUsize = AtomicUsize::new(0);
static IN_CALLBACK: AtomicBool = AtomicBool::new(false);
static OVERLAP: AtomicBool = AtomicBool::new(false);
static QP2: AtomicUsize = AtomicUsize::new(0);

/// Closes its CQ from inside the notification (the NDKPI object lifetime requirements page allows it).
unsafe extern "system" fn close_from_callback(ctx: PVOID, st: NTSTATUS) {
    // SAFETY: cq_with passes a Net::ctx context.
    let t = unsafe { Tag::of(ctx) };
    let net = t.net();
    net.log(Ev::Cq(t.n, st));
    let cq = CQ_PTR.load(Ordering::SeqCst) as *mut NDK_CQ;
    let r = net.close(cq, 90);
    // The callback is still running: the close must wait for it.
    net.log(Ev::Request(91, r));
}

/// Re-arms and makes new completions from inside the notification; checks
/// that notifications never overlap (the NDKPI completion handling requirements page: serialized per CQ).
unsafe extern "system" fn rearm_from_callback(ctx: PVOID, st: NTSTATUS) {
    if IN_CALLBACK.swap(true, Ordering::SeqCst) {
        OVERLAP.store(true, Ordering::SeqCst);
    }
    // SAFETY: cq_with passes a Net::ctx context.
    let t = unsafe { Tag::of(ctx) };
    let net = t.net();
    net.log(Ev::Cq(t.n, st));
    let cq = CQ_PTR.load(Ordering::SeqCst) as *mut NDK_CQ;
    let q2 = QP2.swap(0, Ordering::SeqCst) as *mut NDK_QP;
    if !q2.is_null() {
        ndk!(cq, NdkArmCq, NDK_CQ_NOTIFY_ANY);
        ndk!(q2, NdkFlush);
        // Due now, but deferred until this callback returns.
        net.log(Ev::Request(92, 0));
    }
    IN_CALLBACK.store(false, Ordering::SeqCst);
}

fn cq_with(a: &Adapter, depth: u32, f: NDK_FN_CQ_NOTIFICATION_CALLBACK, ctx: usize) -> *mut NDK_CQ {
    let mut cq = ptr::null_mut();
    assert_eq!(
        ndk!(
            a.ptr,
            NdkCreateCq,
            depth,
            f,
            a.net.ctx(ctx),
            ptr::null_mut(),
            None,
            ptr::null_mut(),
            &mut cq
        ),
        STATUS_SUCCESS
    );
    cq
}

#[test]
fn arm_rules_one_notification_per_arm() {
    let net = Net::new();
    let a = Adapter::open(ip(32, 1), 1, &net);
    let pd = a.pd();
    let cq = a.cq(64, 7);
    let mut buf = Buffer::new(&net, 4096);
    let (m, t) = register(pd, &mut buf, RW);
    let qps: Vec<_> = (0..5).map(|i| qp(pd, cq, 0x60 + i)).collect();
    for (i, q) in qps.iter().enumerate() {
        receives(*q, &buf, t, 2, 100 * i);
    }
    // Without an arm there is no callback, not even for errors.
    ndk!(qps[0], NdkFlush);
    assert!(net.take_log().is_empty());
    // An arm with completions newer than the last notification fires now.
    ndk!(cq, NdkArmCq, NDK_CQ_NOTIFY_ANY);
    assert_eq!(net.take_log(), [Ev::Cq(7, STATUS_SUCCESS)]);
    // One per arm: more completions, no new arm, no callback.
    ndk!(qps[1], NdkFlush);
    assert!(net.take_log().is_empty());
    assert_eq!(results(cq).len(), 4);
    // Drained: an arm waits; an error completion satisfies an ERRORS arm
    // (project choice, the NDKPI completion handling requirements page / project decisions where the NDKPI pages are silent) and a SOLICITED arm (documented).
    for (kind, q) in [(NDK_CQ_NOTIFY_ERRORS, 2), (NDK_CQ_NOTIFY_SOLICITED, 3)] {
        ndk!(cq, NdkArmCq, kind);
        assert!(net.take_log().is_empty());
        ndk!(qps[q], NdkFlush);
        assert_eq!(net.take_log(), [Ev::Cq(7, STATUS_SUCCESS)], "arm {kind}");
        assert_eq!(results(cq).len(), 2);
    }
    // An unknown type arms nothing (project decision).
    ndk!(cq, NdkArmCq, 7);
    ndk!(qps[4], NdkFlush);
    assert!(net.take_log().is_empty());
    // Re-arming before it fired merges (ERRORS then ANY is ANY), still one
    // callback.
    ndk!(cq, NdkArmCq, NDK_CQ_NOTIFY_ERRORS);
    ndk!(cq, NdkArmCq, NDK_CQ_NOTIFY_ANY);
    assert_eq!(net.take_log(), [Ev::Cq(7, STATUS_SUCCESS)]);
    results(cq);
    for q in qps {
        close_now(q);
    }
    for o in [m.cast::<NDK_OBJECT_HEADER>(), cq.cast(), pd.cast()] {
        close_now(o);
    }
    assert_eq!(a.objects(), 0);
}

#[test]
fn notifications_are_serialized_and_a_cq_closes_from_its_callback() {
    let net = Net::new();
    let a = Adapter::open(ip(33, 1), 1, &net);
    let pd = a.pd();
    let mut buf = Buffer::new(&net, 4096);
    let (m, t) = register(pd, &mut buf, RW);
    let cq = cq_with(&a, 64, Some(rearm_from_callback), 7);
    CQ_PTR.store(cq as usize, Ordering::SeqCst);
    let q1 = qp(pd, cq, 1);
    let q2 = qp(pd, cq, 2);
    receives(q1, &buf, t, 1, 10);
    receives(q2, &buf, t, 1, 20);
    QP2.store(q2 as usize, Ordering::SeqCst);
    ndk!(cq, NdkArmCq, NDK_CQ_NOTIFY_ANY);
    ndk!(q1, NdkFlush);
    // The second notification became due inside the first and ran only
    // after it returned.
    assert_eq!(
        net.take_log(),
        [
            Ev::Cq(7, STATUS_SUCCESS),
            Ev::Request(92, 0),
            Ev::Cq(7, STATUS_SUCCESS)
        ]
    );
    assert!(!OVERLAP.load(Ordering::SeqCst));
    assert_eq!(results(cq).len(), 2);
    close_now(q1);
    close_now(q2);
    close_now(cq);

    // A CQ closed from inside its own notification: PENDING, completed
    // after the callback returned, and nothing after it.
    let cq = cq_with(&a, 64, Some(close_from_callback), 8);
    CQ_PTR.store(cq as usize, Ordering::SeqCst);
    let q = qp(pd, cq, 3);
    receives(q, &buf, t, 2, 30);
    ndk!(cq, NdkArmCq, NDK_CQ_NOTIFY_ANY);
    close_now(q);
    assert_eq!(
        net.take_log(),
        [
            Ev::Cq(8, STATUS_SUCCESS),
            Ev::Request(91, STATUS_PENDING),
            Ev::Close(90)
        ]
    );
    close_now(m);
    close_now(pd);
    assert_eq!(a.objects(), 0);
}

/// A CQ overrun: STATUS_BUFFER_OVERFLOW through the notification, at once
/// when armed, else on the next arm (the NDKPI pages leave an unarmed CQ's overrun unspecified, project choice); the CQ then
/// reports no completions.
#[test]
fn cq_overflow_is_reported_through_the_notification() {
    let net = Net::new();
    let a = Adapter::open(ip(34, 1), 1, &net);
    let pd = a.pd();
    let mut buf = Buffer::new(&net, 4096);
    let (m, t) = register(pd, &mut buf, RW);
    // Armed: the overrun reports at once.
    let cq = a.cq(2, 7);
    let q1 = qp(pd, cq, 1);
    let q2 = qp(pd, cq, 2);
    receives(q1, &buf, t, 2, 10);
    receives(q2, &buf, t, 1, 20);
    ndk!(q1, NdkFlush);
    ndk!(cq, NdkArmCq, NDK_CQ_NOTIFY_ANY);
    assert_eq!(net.take_log(), [Ev::Cq(7, STATUS_SUCCESS)]);
    ndk!(cq, NdkArmCq, NDK_CQ_NOTIFY_ANY);
    ndk!(q2, NdkFlush);
    assert_eq!(net.take_log(), [Ev::Cq(7, STATUS_BUFFER_OVERFLOW)]);
    assert!(results(cq).is_empty());
    // Unarmed: on the next arm, once.
    let cq2 = a.cq(1, 8);
    let q3 = qp(pd, cq2, 3);
    receives(q3, &buf, t, 2, 30);
    ndk!(q3, NdkFlush);
    assert!(net.take_log().is_empty());
    ndk!(cq2, NdkArmCq, NDK_CQ_NOTIFY_ERRORS);
    assert_eq!(net.take_log(), [Ev::Cq(8, STATUS_BUFFER_OVERFLOW)]);
    ndk!(cq2, NdkArmCq, NDK_CQ_NOTIFY_ANY);
    assert!(net.take_log().is_empty());
    assert!(results(cq2).is_empty());
    for o in [
        q1.cast::<NDK_OBJECT_HEADER>(),
        q2.cast(),
        q3.cast(),
        cq.cast(),
        cq2.cast(),
        m.cast(),
        pd.cast(),
    ] {
        close_now(o);
    }
    assert_eq!(a.objects(), 0);
}
