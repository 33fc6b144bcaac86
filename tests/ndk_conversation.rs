//! A consumer that drives two adapters only through the NDKPI dispatch
//! tables, as SMB Direct would: query, create, connect (accepting from
//! inside the connect event), Send/Receive, inline sends and writes, RDMA
//! Write and Read, SILENT_SUCCESS, DEFER (held back, then handed on by a
//! post without it or by a post that fails inline), fast-register with
//! pages from NdkBuildLAM and send-and-invalidate, memory windows, a
//! SOLICITED arm, NdkDisconnect, and the close of everything with no
//! leaks. Every completion is checked: status, bytes, QP and request
//! context, type. IPv4 and IPv6. NDK has no immediate data, so there is
//! none to test.
// Every unsafe block names the invariant it relies on.
#![deny(clippy::undocumented_unsafe_blocks)]

#[macro_use]
mod support;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ptr;

use ndkpi::*;
use support::*;

const A_QP: usize = 0xA1;
const B_QP: usize = 0xB1;
const K: usize = 1024;

fn run(a_ip: IpAddr, b_ip: IpAddr) {
    let net = Net::new();
    let a = Adapter::open(a_ip, 1, &net);
    let b = Adapter::open(b_ip, 2, &net);
    for ad in [&a, &b] {
        // Size first, then the struct (ndkinfo.h NDK_ADAPTER_INFO).
        let mut size = 0;
        assert_eq!(
            ndk!(ad.ptr, NdkQueryAdapterInfo, ptr::null_mut(), &mut size),
            STATUS_BUFFER_TOO_SMALL
        );
        assert_eq!(size as usize, size_of::<NDK_ADAPTER_INFO>());
        let info = ad.info();
        assert_eq!(info.Version, NDK_VERSION_1_2);
        assert_eq!(info.RdmaTechnology, NdkRoCEv2);
        assert!(info.MaxSrqDepth > 0);
        assert!(info.FRMRPageCount >= 16);
        assert!(info.MaxWindowSize > 0);
        assert_eq!(info.MaxInlineDataSize, 256);
        // Only what is implemented is advertised.
        assert_eq!(
            info.AdapterFlags
                & (NDK_ADAPTER_FLAG_RDMA_READ_LOCAL_INVALIDATE_SUPPORTED
                    | NDK_ADAPTER_FLAG_CQ_INTERRUPT_MODERATION_SUPPORTED),
            0
        );
        assert_ne!(info.AdapterFlags & NDK_ADAPTER_FLAG_CQ_RESIZE_SUPPORTED, 0);
    }
    let (apd, bpd) = (a.pd(), b.pd());
    let (acq, bcq) = (a.cq(64, 7), b.cq(64, 8));
    let (aqp, bqp) = (qp(apd, acq, A_QP), qp(bpd, bcq, B_QP));
    let mut abuf = Buffer::new(&net, 64 * K);
    let mut bbuf = Buffer::new(&net, 64 * K);
    let (amr, at) = register(apd, &mut abuf, RW);
    let (bmr, bt) = register(bpd, &mut bbuf, RW);

    // Receives before the connection exists (the NDKPI work request posting requirements and deferred processing scheme pages): 16 of 1 KiB.
    for i in 0..16 {
        let s = sge(bbuf.va(i * K), K, bt);
        assert_eq!(
            ndk!(bqp, NdkReceive, (100 + i) as PVOID, &s, 1),
            STATUS_SUCCESS
        );
    }
    let (listener, port) = b.listen(3);
    // Not connected yet: initiator requests are refused inline.
    let s = sge(abuf.va(0), 8, at);
    assert_eq!(
        ndk!(aqp, NdkSend, 1 as PVOID, &s, 1, 0),
        STATUS_CONNECTION_INVALID
    );
    let c = connect(&a, aqp, &b, bqp, 3, port, 10);
    // What OID_NDK_CONNECTIONS / OID_NDK_LOCAL_ENDPOINTS report: one
    // connection on each side, mirrored, and B's listener.
    let (sa, sb) = (a.snapshot(), b.snapshot());
    assert_eq!(sa.connections.len(), 1, "{sa:?}");
    assert_eq!(sb.connections.len(), 1, "{sb:?}");
    assert_eq!(
        sa.connections[0],
        (sb.connections[0].1, sb.connections[0].0)
    );
    assert_eq!(sb.connections[0].0.port(), port);
    assert!(
        sb.endpoints
            .iter()
            .any(|e| e.addr.port() == port && e.listener),
        "{sb:?}"
    );
    assert!(sa.endpoints.is_empty(), "{sa:?}");
    let mut peer = [0u8; 28];
    let mut plen = 28;
    assert_eq!(
        ndk!(
            c.active,
            NdkGetPeerAddress,
            peer.as_mut_ptr().cast(),
            &mut plen
        ),
        STATUS_SUCCESS
    );
    assert_eq!(u16::from_be_bytes([peer[2], peer[3]]), port);

    // 1. Send with solicit, 1000 bytes.
    abuf.fill(0, 1000, 1);
    let s = sge(abuf.va(0), 1000, at);
    let st = ndk!(
        aqp,
        NdkSend,
        31 as PVOID,
        &s,
        1,
        NDK_OP_FLAG_SEND_AND_SOLICIT_EVENT
    );
    assert_eq!(st, STATUS_SUCCESS);
    // 2. Inline send: five SGEs (more than the QP's four) with garbage
    // tokens; the bytes are copied during the call, so overwriting the
    // source right after changes nothing (the NDKPI work request posting requirements page).
    abuf.fill(2000, 100, 2);
    let inline_send = abuf.read(2000, 100);
    let sges: Vec<NDK_SGE> = (0..5)
        .map(|i| sge(abuf.va(2000 + i * 20), 20, 0xDEAD_BEEF))
        .collect();
    let st = ndk!(
        aqp,
        NdkSend,
        32 as PVOID,
        sges.as_ptr(),
        5,
        NDK_OP_FLAG_INLINE
    );
    assert_eq!(st, STATUS_SUCCESS);
    abuf.write(2000, &[0u8; 100]);
    // 3. Inline write (project decision on project decisions where the NDKPI pages are silent) of two SGEs.
    abuf.fill(3000, 64, 3);
    let inline_write = abuf.read(3000, 64);
    let sges = [sge(abuf.va(3000), 32, 0), sge(abuf.va(3032), 32, 0)];
    let st = ndk!(
        aqp,
        NdkWrite,
        33 as PVOID,
        sges.as_ptr(),
        2,
        bbuf.va(40000),
        bt,
        NDK_OP_FLAG_INLINE
    );
    assert_eq!(st, STATUS_SUCCESS);
    abuf.write(3000, &[0u8; 64]);
    // 4. RDMA Write of 4000 bytes, Read back with READ_FENCE, a silent
    // Write and a silent Send (no completion on success).
    abuf.fill(4096, 4000, 4);
    let s = sge(abuf.va(4096), 4000, at);
    assert_eq!(
        ndk!(aqp, NdkWrite, 34 as PVOID, &s, 1, bbuf.va(16384), bt, 0),
        STATUS_SUCCESS
    );
    let s = sge(abuf.va(8192), 4000, at);
    assert_eq!(
        ndk!(
            aqp,
            NdkRead,
            35 as PVOID,
            &s,
            1,
            bbuf.va(16384),
            bt,
            NDK_OP_FLAG_READ_FENCE
        ),
        STATUS_SUCCESS
    );
    let s = sge(abuf.va(4096), 16, at);
    assert_eq!(
        ndk!(
            aqp,
            NdkWrite,
            36 as PVOID,
            &s,
            1,
            bbuf.va(21000),
            bt,
            NDK_OP_FLAG_SILENT_SUCCESS
        ),
        STATUS_SUCCESS
    );
    let s = sge(abuf.va(4096), 10, at);
    assert_eq!(
        ndk!(aqp, NdkSend, 37 as PVOID, &s, 1, NDK_OP_FLAG_SILENT_SUCCESS),
        STATUS_SUCCESS
    );
    pump(&[&a, &b]);
    // In posting order; the silent ones made no entry.
    let ra = results(acq);
    assert_eq!(ra.len(), 5, "{ra:?}");
    check(&ra[0], STATUS_SUCCESS, NdkOperationTypeSend, A_QP, 31, None);
    check(&ra[1], STATUS_SUCCESS, NdkOperationTypeSend, A_QP, 32, None);
    check(
        &ra[2],
        STATUS_SUCCESS,
        NdkOperationTypeWrite,
        A_QP,
        33,
        None,
    );
    check(
        &ra[3],
        STATUS_SUCCESS,
        NdkOperationTypeWrite,
        A_QP,
        34,
        None,
    );
    check(&ra[4], STATUS_SUCCESS, NdkOperationTypeRead, A_QP, 35, None);
    let rb = results(bcq);
    assert_eq!(rb.len(), 3, "{rb:?}");
    check(
        &rb[0],
        STATUS_SUCCESS,
        NdkOperationTypeReceive,
        B_QP,
        100,
        Some(1000),
    );
    check(
        &rb[1],
        STATUS_SUCCESS,
        NdkOperationTypeReceive,
        B_QP,
        101,
        Some(100),
    );
    check(
        &rb[2],
        STATUS_SUCCESS,
        NdkOperationTypeReceive,
        B_QP,
        102,
        Some(10),
    );
    assert!(bbuf.read(0, 1000) == abuf.read(0, 1000), "bytes differ");
    assert!(bbuf.read(K, 100) == inline_send, "bytes differ");
    assert!(bbuf.read(40000, 64) == inline_write, "bytes differ");
    assert!(
        bbuf.read(16384, 4000) == abuf.read(4096, 4000),
        "bytes differ"
    );
    assert!(
        abuf.read(8192, 4000) == abuf.read(4096, 4000),
        "bytes differ"
    );
    assert!(bbuf.read(21000, 16) == abuf.read(4096, 16), "bytes differ");

    // 5. DEFER holds requests back until a post without it (the NDKPI work request posting requirements page).
    let s = sge(abuf.va(0), 16, at);
    assert_eq!(
        ndk!(aqp, NdkSend, 41 as PVOID, &s, 1, NDK_OP_FLAG_DEFER),
        STATUS_SUCCESS
    );
    assert_eq!(
        ndk!(
            aqp,
            NdkWrite,
            42 as PVOID,
            &s,
            1,
            bbuf.va(20000),
            bt,
            NDK_OP_FLAG_DEFER
        ),
        STATUS_SUCCESS
    );
    pump(&[&a, &b]);
    assert!(results(acq).is_empty());
    assert!(results(bcq).is_empty());
    assert_eq!(ndk!(aqp, NdkSend, 43 as PVOID, &s, 1, 0), STATUS_SUCCESS);
    pump(&[&a, &b]);
    let ra = results(acq);
    assert_eq!(ra.len(), 3, "{ra:?}");
    check(&ra[0], STATUS_SUCCESS, NdkOperationTypeSend, A_QP, 41, None);
    check(
        &ra[1],
        STATUS_SUCCESS,
        NdkOperationTypeWrite,
        A_QP,
        42,
        None,
    );
    check(&ra[2], STATUS_SUCCESS, NdkOperationTypeSend, A_QP, 43, None);
    let rb = results(bcq);
    assert_eq!(rb.len(), 2);
    check(
        &rb[0],
        STATUS_SUCCESS,
        NdkOperationTypeReceive,
        B_QP,
        103,
        Some(16),
    );
    check(
        &rb[1],
        STATUS_SUCCESS,
        NdkOperationTypeReceive,
        B_QP,
        104,
        Some(16),
    );
    // 6. A post that fails inline first hands the deferred requests on
    // (the NDKPI work request posting requirements page); it makes no CQ entry itself.
    assert_eq!(
        ndk!(aqp, NdkSend, 44 as PVOID, &s, 1, NDK_OP_FLAG_DEFER),
        STATUS_SUCCESS
    );
    let five: Vec<NDK_SGE> = (0..5).map(|i| sge(abuf.va(i * 8), 8, at)).collect();
    assert_eq!(
        ndk!(aqp, NdkSend, 45 as PVOID, five.as_ptr(), 5, 0),
        STATUS_DATA_OVERRUN
    );
    pump(&[&a, &b]);
    let ra = results(acq);
    assert_eq!(ra.len(), 1, "{ra:?}");
    check(&ra[0], STATUS_SUCCESS, NdkOperationTypeSend, A_QP, 44, None);
    let rb = results(bcq);
    check(
        &rb[0],
        STATUS_SUCCESS,
        NdkOperationTypeReceive,
        B_QP,
        105,
        Some(16),
    );

    // 7. B fast-registers part of its buffer from NdkBuildLAM pages for A
    // to write, as SMB Direct does for an RDMA transfer; A's
    // send-and-invalidate then invalidates that token (the NDKPI work request posting requirements page, the NDK_FN_REGISTER_MR, NDK_FN_FAST_REGISTER and NDK_FN_BUILD_LAM pages).
    let frmr = mr(bpd, true);
    assert_eq!(
        ndk!(
            frmr,
            NdkInitializeFastRegisterMr,
            4,
            TRUE,
            None,
            ptr::null_mut()
        ),
        STATUS_SUCCESS
    );
    let mut sub = bbuf.sub_mdl(32768 + 100, 6000);
    let mdl: *mut MDL = (&mut *sub as *mut HostMdl).cast();
    let (mut lam_size, mut fbo) = (0u32, 0u32);
    assert_eq!(
        ndk!(
            b.ptr,
            NdkBuildLAM,
            mdl,
            6000,
            None,
            ptr::null_mut(),
            ptr::null_mut(),
            &mut lam_size,
            &mut fbo
        ),
        STATUS_BUFFER_TOO_SMALL
    );
    let mut lam_mem = vec![0u64; lam_size as usize / 8 + 1];
    let lam = lam_mem.as_mut_ptr().cast::<NDK_LOGICAL_ADDRESS_MAPPING>();
    assert_eq!(
        ndk!(
            b.ptr,
            NdkBuildLAM,
            mdl,
            6000,
            None,
            ptr::null_mut(),
            lam,
            &mut lam_size,
            &mut fbo
        ),
        STATUS_SUCCESS
    );
    assert_eq!(fbo, 100);
    // SAFETY: NdkBuildLAM succeeded into `lam`, a live buffer of
    // lam_size bytes holding an NDK_LOGICAL_ADDRESS_MAPPING.
    let (npages, pages) = unsafe {
        (
            (*lam).AdapterPageCount,
            ptr::addr_of!((*lam).AdapterPageArray).cast::<NDK_LOGICAL_ADDRESS>(),
        )
    };
    assert_eq!(npages, 2);
    // The VA is only a tag (the NDK_FN_REGISTER_MR, NDK_FN_FAST_REGISTER and NDK_FN_BUILD_LAM pages): any non-zero one FBO into a page.
    let base_va = 0x10_0000_0000u64 + u64::from(fbo);
    let st = ndk!(
        bqp,
        NdkFastRegister,
        51 as PVOID,
        frmr,
        npages,
        pages,
        fbo,
        6000,
        base_va as PVOID,
        NDK_OP_FLAG_ALLOW_REMOTE_WRITE | NDK_OP_FLAG_ALLOW_REMOTE_READ
    );
    assert_eq!(st, STATUS_SUCCESS);
    let frt = ndk!(frmr, NdkGetRemoteTokenFromMr);
    pump(&[&a, &b]);
    let rb = results(bcq);
    assert_eq!(rb.len(), 1, "{rb:?}");
    check(
        &rb[0],
        STATUS_SUCCESS,
        NdkOperationTypeFastRegister,
        B_QP,
        51,
        None,
    );
    abuf.fill(20000, 6000, 9);
    let s = sge(abuf.va(20000), 6000, at);
    assert_eq!(
        ndk!(aqp, NdkWrite, 52 as PVOID, &s, 1, base_va, frt, 0),
        STATUS_SUCCESS
    );
    let s = sge(abuf.va(0), 10, at);
    assert_eq!(
        ndk!(aqp, NdkSendAndInvalidate, 53 as PVOID, &s, 1, 0, frt),
        STATUS_SUCCESS
    );
    pump(&[&a, &b]);
    let ra = results(acq);
    assert_eq!(ra.len(), 2, "{ra:?}");
    check(
        &ra[0],
        STATUS_SUCCESS,
        NdkOperationTypeWrite,
        A_QP,
        52,
        None,
    );
    // The sender's completion is a Send (DDI NdkSendAndInvalidate).
    check(&ra[1], STATUS_SUCCESS, NdkOperationTypeSend, A_QP, 53, None);
    let rb = results(bcq);
    assert_eq!(rb.len(), 1, "{rb:?}");
    check(
        &rb[0],
        STATUS_SUCCESS,
        NdkOperationTypeReceiveAndInvalidate,
        B_QP,
        106,
        Some(10),
    );
    assert_eq!(rb[0].TypeSpecificCompletionOutput, frt as usize);
    assert!(
        bbuf.read(32768 + 100, 6000) == abuf.read(20000, 6000),
        "bytes differ"
    );
    // The MR is invalid now, so a new fast-register executes (it fails on
    // a valid MR) and brings a new token; a local invalidate ends it.
    let st = ndk!(
        bqp,
        NdkFastRegister,
        54 as PVOID,
        frmr,
        npages,
        pages,
        fbo,
        6000,
        base_va as PVOID,
        NDK_OP_FLAG_ALLOW_REMOTE_READ
    );
    assert_eq!(st, STATUS_SUCCESS);
    assert_ne!(ndk!(frmr, NdkGetRemoteTokenFromMr), frt);
    assert_eq!(
        ndk!(bqp, NdkInvalidate, 55 as PVOID, frmr.cast(), 0),
        STATUS_SUCCESS
    );
    pump(&[&a, &b]);
    let rb = results(bcq);
    assert_eq!(rb.len(), 2, "{rb:?}");
    check(
        &rb[0],
        STATUS_SUCCESS,
        NdkOperationTypeFastRegister,
        B_QP,
        54,
        None,
    );
    check(
        &rb[1],
        STATUS_SUCCESS,
        NdkOperationTypeInvalidate,
        B_QP,
        55,
        None,
    );
    ndk!(b.ptr, NdkReleaseLAM, lam);

    // 8. A memory window: A reaches B's memory through the window's token.
    let mut mw = ptr::null_mut();
    assert_eq!(
        ndk!(bpd, NdkCreateMw, None, ptr::null_mut(), &mut mw),
        STATUS_SUCCESS
    );
    let st = ndk!(
        bqp,
        NdkBind,
        61 as PVOID,
        bmr,
        mw,
        bbuf.va(48000) as PVOID,
        4096,
        NDK_OP_FLAG_ALLOW_REMOTE_READ | NDK_OP_FLAG_ALLOW_REMOTE_WRITE
    );
    assert_eq!(st, STATUS_SUCCESS);
    let wt = ndk!(mw, NdkGetRemoteTokenFromMw);
    assert_ne!(wt, bt);
    pump(&[&a, &b]);
    let rb = results(bcq);
    check(&rb[0], STATUS_SUCCESS, NdkOperationTypeBind, B_QP, 61, None);
    abuf.fill(24000, 100, 11);
    let s = sge(abuf.va(24000), 100, at);
    assert_eq!(
        ndk!(aqp, NdkWrite, 62 as PVOID, &s, 1, bbuf.va(48010), wt, 0),
        STATUS_SUCCESS
    );
    let s = sge(abuf.va(30000), 100, at);
    assert_eq!(
        ndk!(
            aqp,
            NdkRead,
            63 as PVOID,
            &s,
            1,
            bbuf.va(48010),
            wt,
            NDK_OP_FLAG_READ_FENCE
        ),
        STATUS_SUCCESS
    );
    pump(&[&a, &b]);
    pump(&[&a, &b]);
    let ra = results(acq);
    assert_eq!(ra.len(), 2, "{ra:?}");
    check(
        &ra[0],
        STATUS_SUCCESS,
        NdkOperationTypeWrite,
        A_QP,
        62,
        None,
    );
    check(&ra[1], STATUS_SUCCESS, NdkOperationTypeRead, A_QP, 63, None);
    assert!(
        bbuf.read(48010, 100) == abuf.read(24000, 100),
        "bytes differ"
    );
    assert!(
        abuf.read(30000, 100) == abuf.read(24000, 100),
        "bytes differ"
    );
    assert_eq!(
        ndk!(
            bqp,
            NdkInvalidate,
            64 as PVOID,
            mw.cast(),
            NDK_OP_FLAG_SILENT_SUCCESS
        ),
        STATUS_SUCCESS
    );

    // 9. A SOLICITED arm fires for the solicited receive only (the NDKPI completion handling requirements page).
    ndk!(bcq, NdkArmCq, NDK_CQ_NOTIFY_SOLICITED);
    let s = sge(abuf.va(0), 8, at);
    assert_eq!(ndk!(aqp, NdkSend, 71 as PVOID, &s, 1, 0), STATUS_SUCCESS);
    pump(&[&a, &b]);
    assert_eq!(net.count(Ev::Cq(8, STATUS_SUCCESS)), 0);
    let st = ndk!(
        aqp,
        NdkSend,
        72 as PVOID,
        &s,
        1,
        NDK_OP_FLAG_SEND_AND_SOLICIT_EVENT
    );
    assert_eq!(st, STATUS_SUCCESS);
    pump(&[&a, &b]);
    net.expect(Ev::Cq(8, STATUS_SUCCESS));
    assert_eq!(net.count(Ev::Cq(8, STATUS_SUCCESS)), 0);
    let rb = results(bcq);
    assert_eq!(rb.len(), 2, "{rb:?}");
    check(
        &rb[0],
        STATUS_SUCCESS,
        NdkOperationTypeReceive,
        B_QP,
        107,
        Some(8),
    );
    check(
        &rb[1],
        STATUS_SUCCESS,
        NdkOperationTypeReceive,
        B_QP,
        108,
        Some(8),
    );
    assert_eq!(results(acq).len(), 2);

    // 10. Disconnect from A: pending, one completion; B's event once, and
    // its receives stay posted until it disconnects too (docs/disconnect.md).
    assert_eq!(
        ndk!(c.active, NdkDisconnect, Some(on_request), net.ctx(81)),
        STATUS_PENDING
    );
    pump(&[&a, &b]);
    net.expect(Ev::Request(81, STATUS_SUCCESS));
    net.expect(Ev::Disconnect(13));
    assert_eq!(net.count(Ev::Disconnect(13)), 0);
    assert!(results(bcq).is_empty());
    assert_eq!(
        ndk!(c.passive, NdkDisconnect, Some(on_request), net.ctx(82)),
        STATUS_SUCCESS
    );
    let rb = results(bcq);
    assert_eq!(rb.len(), 7, "{rb:?}");
    assert!(a.snapshot().connections.is_empty());
    assert!(b.snapshot().connections.is_empty());
    for (i, r) in rb.iter().enumerate() {
        check(
            r,
            STATUS_CANCELLED,
            NdkOperationTypeReceive,
            B_QP,
            109 + i,
            None,
        );
    }
    assert_eq!(
        ndk!(aqp, NdkSend, 1 as PVOID, &s, 1, 0),
        STATUS_CONNECTION_INVALID
    );

    // 11. Close everything, parents first where the rules allow: those
    // closes pend until their successors are gone (the NDKPI object lifetime requirements page).
    let mut pending = Vec::new();
    assert_eq!(net.close_rec(apd, 900, &mut pending), STATUS_PENDING);
    assert_eq!(net.close_rec(bpd, 901, &mut pending), STATUS_PENDING);
    // The window is bound to B's MR: the MR's close waits for it.
    assert_eq!(net.close_rec(bmr, 902, &mut pending), STATUS_PENDING);
    net.close_rec(mw, 903, &mut pending);
    net.close_rec(frmr, 904, &mut pending);
    net.close_rec(amr, 905, &mut pending);
    net.close_rec(c.active, 906, &mut pending);
    net.close_rec(c.passive, 907, &mut pending);
    net.close_rec(listener, 908, &mut pending);
    net.close_rec(aqp, 909, &mut pending);
    net.close_rec(bqp, 910, &mut pending);
    net.close_rec(acq, 911, &mut pending);
    net.close_rec(bcq, 912, &mut pending);
    pump(&[&a, &b]);
    assert_eq!(a.objects(), 0);
    assert_eq!(b.objects(), 0);
    let log = net.take_log();
    for ctx in 900..=912 {
        let n = log.iter().filter(|e| **e == Ev::Close(ctx)).count();
        assert_eq!(n, usize::from(pending.contains(&ctx)), "{ctx}: {log:?}");
    }
    // The PD's close completion comes after its children's.
    let pos = |ctx| log.iter().position(|e| *e == Ev::Close(ctx));
    assert!(pos(902) < pos(901));
}

#[test]
fn a_whole_conversation_through_the_dispatch_tables_ipv4() {
    run(
        IpAddr::V4(Ipv4Addr::new(10, 2, 0, 1)),
        IpAddr::V4(Ipv4Addr::new(10, 2, 0, 2)),
    );
}

#[test]
fn a_whole_conversation_through_the_dispatch_tables_ipv6() {
    run(
        IpAddr::V6(Ipv6Addr::new(0xfd00, 2, 0, 0, 0, 0, 0, 1)),
        IpAddr::V6(Ipv6Addr::new(0xfd00, 2, 0, 0, 0, 0, 0, 2)),
    );
}

/// A QP drawing receives from an SRQ, and the SRQ's one-shot limit
/// notification (the NDK_FN_CREATE_QP page).
#[test]
fn shared_receive_queue_and_its_limit_notification() {
    let net = Net::new();
    let a = Adapter::open(IpAddr::V4(Ipv4Addr::new(10, 3, 0, 1)), 3, &net);
    let b = Adapter::open(IpAddr::V4(Ipv4Addr::new(10, 3, 0, 2)), 4, &net);
    let (apd, bpd) = (a.pd(), b.pd());
    let (acq, bcq) = (a.cq(64, 7), b.cq(64, 8));
    let aqp = qp(apd, acq, A_QP);
    let mut srq = ptr::null_mut();
    let st = ndk!(
        bpd,
        NdkCreateSrq,
        16,
        2,
        0,
        Some(on_srq),
        net.ctx(90),
        ptr::null_mut(),
        None,
        ptr::null_mut(),
        &mut srq
    );
    assert_eq!(st, STATUS_SUCCESS);
    // SAFETY: NdkCreateSrq succeeded, so `srq` is a live SRQ.
    unsafe { assert_eq!((*srq).Header.ObjectType, NdkObjectTypeSrq) };
    let mut bqp = ptr::null_mut();
    let st = ndk!(
        bpd,
        NdkCreateQpWithSrq,
        bcq,
        bcq,
        srq,
        0xB2 as PVOID,
        16,
        2,
        0,
        None,
        ptr::null_mut(),
        &mut bqp
    );
    assert_eq!(st, STATUS_SUCCESS);
    let mut abuf = Buffer::new(&net, 16 * K);
    let mut bbuf = Buffer::new(&net, 16 * K);
    let (amr, at) = register(apd, &mut abuf, RW);
    let (bmr, bt) = register(bpd, &mut bbuf, RW);
    for i in 0..6 {
        let s = sge(bbuf.va(i * K), K, bt);
        assert_eq!(
            ndk!(srq, NdkSrqReceive, (200 + i) as PVOID, &s, 1),
            STATUS_SUCCESS
        );
    }
    // Receives come from the SRQ only.
    let s = sge(bbuf.va(0), 8, bt);
    assert_eq!(
        ndk!(bqp, NdkReceive, 1 as PVOID, &s, 1),
        STATUS_INVALID_DEVICE_REQUEST
    );
    // Threshold 4 with 6 queued: armed, not fired.
    assert_eq!(
        ndk!(srq, NdkModifySrq, 0, 4, None, ptr::null_mut()),
        STATUS_SUCCESS
    );
    let (listener, port) = b.listen(5);
    let c = connect(&a, aqp, &b, bqp, 5, port, 20);
    assert_eq!(net.count(Ev::Srq(90, STATUS_SUCCESS)), 0);
    let s = sge(abuf.va(0), 64, at);
    for i in 0..4 {
        assert_eq!(
            ndk!(aqp, NdkSend, (210 + i) as PVOID, &s, 1, 0),
            STATUS_SUCCESS
        );
        pump(&[&a, &b]);
        // Fires once, when the third receive leaves fewer than 4 queued.
        let want = usize::from(i >= 2);
        assert_eq!(
            net.count(Ev::Srq(90, STATUS_SUCCESS)),
            want,
            "after send {i}"
        );
    }
    let rb = results(bcq);
    assert_eq!(rb.len(), 4);
    for (i, r) in rb.iter().enumerate() {
        check(
            r,
            STATUS_SUCCESS,
            NdkOperationTypeReceive,
            0xB2,
            200 + i,
            Some(64),
        );
    }
    // Arming while already below fires at once; depth rules (the NDK_FN_CREATE_QP page and
    // the documented decisions of Provider::modify_srq).
    assert_eq!(
        ndk!(srq, NdkModifySrq, 0, 5, None, ptr::null_mut()),
        STATUS_SUCCESS
    );
    assert_eq!(net.count(Ev::Srq(90, STATUS_SUCCESS)), 2);
    assert_eq!(
        ndk!(srq, NdkModifySrq, 1, 0, None, ptr::null_mut()),
        STATUS_INVALID_PARAMETER
    );
    assert_eq!(
        ndk!(srq, NdkModifySrq, 2, 0, None, ptr::null_mut()),
        STATUS_SUCCESS
    );
    // Depth 2 with 2 queued: the SRQ is full.
    assert_eq!(
        ndk!(srq, NdkSrqReceive, 299 as PVOID, &s, 1),
        provider::STATUS_NO_MORE_ENTRIES
    );
    assert_eq!(
        ndk!(srq, NdkModifySrq, 17, 0, None, ptr::null_mut()),
        STATUS_INSUFFICIENT_RESOURCES
    );
    assert_eq!(
        ndk!(srq, NdkModifySrq, 1 << 20, 0, None, ptr::null_mut()),
        STATUS_INVALID_PARAMETER
    );
    let sges = [s, s, s];
    assert_eq!(
        ndk!(srq, NdkSrqReceive, 299 as PVOID, sges.as_ptr(), 3),
        STATUS_DATA_OVERRUN
    );
    assert_eq!(
        ndk!(c.active, NdkDisconnect, Some(on_request), net.ctx(31)),
        STATUS_PENDING
    );
    pump(&[&a, &b]);
    net.expect(Ev::Request(31, STATUS_SUCCESS));
    assert_eq!(
        ndk!(c.passive, NdkDisconnect, None, ptr::null_mut()),
        STATUS_SUCCESS
    );
    // The flush does not take the SRQ's receives: they belong to the SRQ.
    assert!(results(bcq).is_empty());
    // The SRQ is the QP's antecedent: its close waits for the QP's.
    let mut pending = Vec::new();
    assert_eq!(net.close_rec(srq, 95, &mut pending), STATUS_PENDING);
    net.close_rec(c.passive, 96, &mut pending);
    net.close_rec(c.active, 97, &mut pending);
    net.close_rec(listener, 98, &mut pending);
    net.close_rec(bqp, 99, &mut pending);
    pump(&[&a, &b]);
    net.expect(Ev::Close(95));
    for o in [aqp.cast::<NDK_OBJECT_HEADER>(), amr.cast(), bmr.cast()] {
        net.close_rec(o, 100, &mut pending);
    }
    for o in [
        acq.cast::<NDK_OBJECT_HEADER>(),
        bcq.cast(),
        apd.cast(),
        bpd.cast(),
    ] {
        close_now(o);
    }
    pump(&[&a, &b]);
    assert_eq!(a.objects(), 0);
    assert_eq!(b.objects(), 0);
    let log = net.take_log();
    for ctx in 96..=100 {
        let n = log.iter().filter(|e| **e == Ev::Close(ctx)).count();
        assert_eq!(n, pending.iter().filter(|c| **c == ctx).count(), "{log:?}");
    }
    let _ = SocketAddr::new(a.ip, 0);
}

mod provider {
    pub use ndk::provider::STATUS_NO_MORE_ENTRIES;
}

/// Version negotiation at open (the NDKPI enabling and disabling NDK functionality page): another major or a
/// higher minor is refused; a lower minor gets our highest.
#[test]
fn version_negotiation_at_open() {
    use ndk::abi::{close_adapter, open_adapter};
    use ndk::provider::Limits;
    let net = Net::new();
    let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let cfg = || support::config(ip, 1, Limits::default());
    assert_eq!(
        open_adapter(net.platform.clone(), cfg(), NDK_VERSION::new(1, 3)).err(),
        Some(NDIS_STATUS_BAD_VERSION)
    );
    assert_eq!(
        open_adapter(net.platform.clone(), cfg(), NDK_VERSION_2_1).err(),
        Some(NDIS_STATUS_BAD_VERSION)
    );
    let a = open_adapter(net.platform.clone(), cfg(), NDK_VERSION::new(1, 0)).unwrap();
    // SAFETY: `a` is the adapter just opened, closed once here.
    unsafe {
        assert_eq!((*a).Header.Version, NDK_VERSION_1_2);
        close_adapter(a);
    }
}
