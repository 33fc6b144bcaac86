//! Connection management against rdma_cm: ucmatose both ways, path MTU negotiation, REJ, disconnects from either side, a frozen peer.

use super::*;

/// ucmatose server in the VM, ndkrs the client: the server sends `count`
/// messages, ndkrs replies with `count`, the server (passive side)
/// disconnects: its DREQ, ndkrs's DREP.
pub(super) fn ucmatose_ndkrs_client(c: &Ctx<'_>, count: u32, size: u32) -> Outcome {
    c.vm.spawn(&format!("ucmatose -C {count} -S {size}"), "ucm.log")?;
    c.vm.wait_listen(UCMATOSE_PORT, T)?;
    let node = c.node()?;
    let qp = node.qp(1, count + 4, count, size, 0)?;
    let ev = node.ctx();
    let (conn, st) = node.connect(qp, vm_addr(UCMATOSE_PORT), ev, T)?;
    ensure(st == STATUS_SUCCESS, || format!("connect: {}", nt(st)))?;
    node.wait("receives of ucmatose's messages", T, |s| {
        s.of(1, NdkOperationTypeReceive).len() >= count as usize
    })?;
    let recvs = node.with(|s| s.of(1, NdkOperationTypeReceive));
    ensure(
        recvs
            .iter()
            .all(|r| r.status == STATUS_SUCCESS && r.bytes_transferred == size),
        || format!("receives: {recvs:?}"),
    )?;
    let send_off = 512 * 1024;
    node.with(|s| s.write(send_off, &pattern(7, size as usize)));
    for i in 0..count {
        node.send(qp, 2000 + i as usize, send_off, size)?;
    }
    node.wait("send completions", T, |s| {
        s.of(1, NdkOperationTypeSend).len() >= count as usize
    })?;
    let sends = node.with(|s| s.of(1, NdkOperationTypeSend));
    ensure(sends.iter().all(|r| r.status == STATUS_SUCCESS), || {
        format!("sends: {sends:?}")
    })?;
    node.wait("the disconnect event (ucmatose's DREQ)", T, |s| {
        s.disconnect_events(ev) > 0
    })?;
    let (st, _) = node.disconnect(conn, T)?;
    ensure(st == STATUS_SUCCESS, || {
        format!("NdkDisconnect after the peer's DREQ: {}", nt(st))
    })?;
    let events = node.with(|s| s.disconnect_events(ev));
    ensure(events == 1, || format!("{events} disconnect events"))?;
    let log = c.vm.wait_log("ucm.log", "return status", T)?;
    ensure(log.contains("return status 0"), || {
        format!("ucmatose server failed:\n{}", vm::tail(&log, 15))
    })?;
    drop(node);
    Ok(format!(
        "{count} x {size} B each way; server's DREQ -> 1 disconnect event, then NdkDisconnect {}; ucmatose: return status 0",
        nt(st)
    ))
}

/// ndkrs the server, ucmatose the client in the VM: ndkrs (passive)
/// sends first, then disconnects: its DREQ, the client's DREP.
pub(super) fn ucmatose_ndkrs_server(c: &Ctx<'_>, count: u32, size: u32) -> Outcome {
    let node = c.node()?;
    node.listen(UCMATOSE_PORT)?;
    c.vm.spawn(
        &format!("ucmatose -s {HOST_IP} -C {count} -S {size}"),
        "ucmc.log",
    )?;
    let conn = node.incoming(0, T)?;
    let qp = node.qp(1, count + 4, count, size, 0)?;
    let ev = node.ctx();
    let st = node.accept(conn, qp, ev, T)?;
    ensure(st == STATUS_SUCCESS, || format!("accept: {}", nt(st)))?;
    let send_off = 512 * 1024;
    node.with(|s| s.write(send_off, &pattern(9, size as usize)));
    for i in 0..count {
        node.send(qp, 2000 + i as usize, send_off, size)?;
    }
    node.wait("sends and the client's replies", T, |s| {
        s.of(1, NdkOperationTypeSend).len() >= count as usize
            && s.of(1, NdkOperationTypeReceive).len() >= count as usize
    })?;
    let all = node.with(|s| s.completions.clone());
    ensure(all.iter().all(|r| r.status == STATUS_SUCCESS), || {
        format!("completions: {all:?}")
    })?;
    let (st, dt) = node.disconnect(conn, T)?;
    ensure(st == STATUS_SUCCESS, || {
        format!("NdkDisconnect: {}", nt(st))
    })?;
    let log = c.vm.wait_log("ucmc.log", "return status", T)?;
    ensure(log.contains("return status 0"), || {
        format!("ucmatose client failed:\n{}", vm::tail(&log, 15))
    })?;
    let events = node.with(|s| s.disconnect_events(ev));
    Ok(format!(
        "{count} x {size} B each way; ndkrs's DREQ answered, NdkDisconnect {} in {:.0} ms; {events} disconnect events; ucmatose: return status 0",
        nt(st),
        dt.as_secs_f64() * 1e3
    ))
}

pub(super) fn check_pmtu(c: &Ctx<'_>, from: Ipv4Addr, code: u32) -> Outcome {
    let reqs = req_pmtus(c.cap()?)?;
    let mine: Vec<_> = reqs
        .iter()
        .filter(|(s, _)| *s == from.to_string())
        .collect();
    ensure(
        !mine.is_empty() && mine.iter().all(|(_, m)| *m == code),
        || format!("REQ PMTU from {from}: {reqs:?}, expected {code}"),
    )?;
    Ok(format!("REQ from {from} has PMTU {code}"))
}

/// Both links 1500 bytes, ndkrs configured for path MTU 4096: its REQ
/// offers the 1024 its link carries, and 3000-byte messages go both ways
/// in 1024-byte segments (none that the link would refuse).
pub(super) fn pmtu_link_cap(c: &Ctx<'_>) -> Outcome {
    let node = c.node_mtu(4096)?;
    c.vm.spawn("ucmatose -C 2 -S 3000", "ucm.log")?;
    c.vm.wait_listen(UCMATOSE_PORT, T)?;
    let qp = node.qp(1, 6, 2, 3000, 0)?;
    let ev = node.ctx();
    let (conn, st) = node.connect(qp, vm_addr(UCMATOSE_PORT), ev, T)?;
    ensure(st == STATUS_SUCCESS, || format!("connect: {}", nt(st)))?;
    node.wait("ucmatose's 2 messages", T, |s| {
        s.of(1, NdkOperationTypeReceive).len() >= 2
    })?;
    let off = 512 * 1024;
    node.with(|s| s.write(off, &pattern(3, 3000)));
    for i in 0..2 {
        node.send(qp, 2000 + i, off, 3000)?;
    }
    node.wait("send completions", T, |s| {
        s.of(1, NdkOperationTypeSend).len() >= 2
    })?;
    let all = node.with(|s| s.completions.clone());
    ensure(all.iter().all(|r| r.status == STATUS_SUCCESS), || {
        format!("completions: {all:?}")
    })?;
    node.wait("ucmatose's DREQ", T, |s| s.disconnect_events(ev) > 0)?;
    let (st, _) = node.disconnect(conn, T)?;
    ensure(st == STATUS_SUCCESS, || {
        format!("NdkDisconnect: {}", nt(st))
    })?;
    let log = c.vm.wait_log("ucm.log", "return status", T)?;
    ensure(log.contains("return status 0"), || {
        format!("ucmatose server failed:\n{}", vm::tail(&log, 15))
    })?;
    drop(node);
    let p = check_pmtu(c, HOST_IP, 3)?;
    let cap = c.cap()?;
    let a = check_segments(cap, HOST_IP, 1024, 2)?;
    let b = check_segments(cap, VM_IP, 1024, 2)?;
    Ok(format!(
        "ndkrs asked for 4096 on a 1500-byte link: {p}; ucmatose 2 x 3000 B both ways: {a}; {b}"
    ))
}

/// The VM's link at 9000 bytes, ndkrs's at 1500: Linux's REQ asks for path
/// MTU 4096, which ndkrs's link cannot carry, and the REP cannot lower: REJ
/// reason 26 (Invalid MTU). ndkrs's own REQ offers 1024, which Linux
/// accepts, and the messages go both ways in 1024-byte segments.
pub(super) fn pmtu_link_mismatch(c: &Ctx<'_>) -> Outcome {
    let node = c.node_mtu(4096)?;
    node.listen(7510)?;
    let o =
        c.vm.run(&format!("rxepeer -c {HOST_IP} -p 7510 -w 20"), T)?;
    ensure(o.text.contains("REJECTED status 26"), || {
        format!("Linux client:\n{}", vm::tail(&o.text, 10))
    })?;
    let reqs = req_pmtus(c.cap()?)?;
    ensure(reqs.contains(&(VM_IP.to_string(), 5)), || {
        format!("Linux's REQ PMTUs: {reqs:?}")
    })?;
    let rej = rej_reasons(c.cap()?)?;
    ensure(rej.contains(&(HOST_IP.to_string(), 26)), || {
        format!("REJs: {rej:?}")
    })?;
    drop(node);
    let other = pmtu_link_cap(c)?;
    Ok(format!(
        "Linux (link 9000) asked for PMTU 5 -> ndkrs (link 1500) REJ reason 26 -> RDMA_CM_EVENT_REJECTED status 26; ndkrs -> Linux: {other}"
    ))
}

pub(super) fn reject_no_listener(c: &Ctx<'_>) -> Outcome {
    let node = c.node()?;
    // ndkrs -> a VM port nobody listens on.
    let qp = node.qp(1, 4, 0, 64, 0)?;
    let (_, st) = node.connect(qp, vm_addr(7999), node.ctx(), T)?;
    ensure(st == STATUS_CONNECTION_REFUSED, || {
        format!("ndkrs connect to a port without listener: {}", nt(st))
    })?;
    // The VM -> an ndkrs port nobody listens on.
    let o =
        c.vm.run(&format!("rxepeer -c {HOST_IP} -p 7998 -w 20"), T)?;
    ensure(o.text.contains("REJECTED status 8"), || {
        format!("Linux client:\n{}", vm::tail(&o.text, 10))
    })?;
    let rej = rej_reasons(c.cap()?)?;
    let want = [(VM_IP.to_string(), 8), (HOST_IP.to_string(), 8)];
    ensure(want.iter().all(|w| rej.contains(w)), || {
        format!("REJs seen: {rej:?}")
    })?;
    Ok(format!(
        "ndkrs->Linux: REJ reason 8 -> {}; Linux->ndkrs: ndkrs's REJ reason 8 -> RDMA_CM_EVENT_REJECTED status 8 (REJs {rej:?})",
        nt(st)
    ))
}

pub(super) fn reject_by_listener(c: &Ctx<'_>) -> Outcome {
    let node = c.node()?;
    c.vm.spawn("rxepeer -s -p 7501 -j -n 1 -w 60", "rej.log")?;
    c.vm.wait_log("rej.log", "LISTENING", T)?;
    let qp = node.qp(1, 4, 0, 64, 0)?;
    let (_, st) = node.connect(qp, vm_addr(7501), node.ctx(), T)?;
    ensure(st == STATUS_CONNECTION_REFUSED, || {
        format!("ndkrs connect to a rejecting listener: {}", nt(st))
    })?;
    c.vm.wait_log("rej.log", "RXEPEER_DONE", T)?;
    // The VM -> an ndkrs listener that rejects.
    node.listen(7502)?;
    c.vm.spawn(&format!("rxepeer -c {HOST_IP} -p 7502 -w 30"), "rejc.log")?;
    let conn = node.incoming(0, T)?;
    let st2 = node.with(|s| s.p.reject(conn, b""));
    ensure(st2 == STATUS_SUCCESS, || format!("NdkReject: {}", nt(st2)))?;
    let log = c.vm.wait_log("rejc.log", "RXEPEER_DONE", T)?;
    ensure(log.contains("REJECTED status 28"), || {
        format!("Linux client:\n{}", vm::tail(&log, 10))
    })?;
    let rej = rej_reasons(c.cap()?)?;
    let want = [(VM_IP.to_string(), 28), (HOST_IP.to_string(), 28)];
    ensure(want.iter().all(|w| rej.contains(w)), || {
        format!("REJs seen: {rej:?}")
    })?;
    Ok(format!(
        "Linux rdma_reject: REJ reason 28 -> {}; NdkReject: REJ reason 28 -> RDMA_CM_EVENT_REJECTED status 28",
        nt(st)
    ))
}

/// The Linux side disconnects while ndkrs has `RECVS` receives posted:
/// one disconnect event, then NdkDisconnect flushes them as cancelled.
pub(super) fn linux_disconnects(c: &Ctx<'_>, linux_active: bool) -> Outcome {
    const RECVS: u32 = 4;
    let node = c.node()?;
    let qp = node.qp(1, 8, RECVS, 256, 0)?;
    let ev = node.ctx();
    let conn = if linux_active {
        node.listen(7503)?;
        c.vm.spawn(
            &format!("rxepeer -c {HOST_IP} -p 7503 -d 2 -w 40"),
            "ld.log",
        )?;
        let conn = node.incoming(0, T)?;
        let st = node.accept(conn, qp, ev, T)?;
        ensure(st == STATUS_SUCCESS, || format!("accept: {}", nt(st)))?;
        conn
    } else {
        c.vm.spawn("rxepeer -s -p 7504 -d 2 -w 40", "ld.log")?;
        c.vm.wait_log("ld.log", "LISTENING", T)?;
        let (conn, st) = node.connect(qp, vm_addr(7504), ev, T)?;
        ensure(st == STATUS_SUCCESS, || format!("connect: {}", nt(st)))?;
        conn
    };
    node.wait("the disconnect event", T, |s| s.disconnect_events(ev) > 0)?;
    // Once, and only once: give a duplicate time to show.
    thread::sleep(Duration::from_millis(1500));
    let events = node.with(|s| s.disconnect_events(ev));
    ensure(events == 1, || format!("{events} disconnect events"))?;
    let before = node.with(|s| s.of(1, NdkOperationTypeReceive).len());
    ensure(before == 0, || {
        format!("{before} receives completed before NdkDisconnect")
    })?;
    let (st, dt) = node.disconnect(conn, T)?;
    ensure(st == STATUS_SUCCESS, || {
        format!("NdkDisconnect: {}", nt(st))
    })?;
    node.wait("the flushed receives", Duration::from_secs(5), |s| {
        s.of(1, NdkOperationTypeReceive).len() >= RECVS as usize
    })?;
    thread::sleep(Duration::from_millis(200));
    let recvs = node.with(|s| s.of(1, NdkOperationTypeReceive));
    ensure(
        recvs.len() == RECVS as usize && recvs.iter().all(|r| r.status == STATUS_CANCELLED),
        || format!("receives after NdkDisconnect: {recvs:?}"),
    )?;
    let log = c.vm.wait_log("ld.log", "RXEPEER_DONE", T)?;
    ensure(
        log.contains("failures=0") && log.contains("DISCONNECTED"),
        || format!("Linux peer:\n{}", vm::tail(&log, 10)),
    )?;
    Ok(format!(
        "Linux {} disconnects: 1 disconnect event; NdkDisconnect {} in {:.0} ms; {RECVS} receives flushed STATUS_CANCELLED",
        if linux_active {
            "(active side)"
        } else {
            "(passive side)"
        },
        nt(st),
        dt.as_secs_f64() * 1e3
    ))
}

/// NdkDisconnect against a frozen VM: STATUS_IO_TIMEOUT within
/// CmConfig::disconnect_bound, the QP flushed; after `cont` a new
/// connection works.
pub(super) fn frozen_peer(c: &Ctx<'_>) -> Outcome {
    const RECVS: u32 = 4;
    let cm = CmConfig::default();
    let bound = cm.disconnect_bound(cm.active_timeout(cm.cm_response_timeout));
    let node = c.node_with(cm)?;
    c.vm.spawn("rxepeer -s -p 7505 -n 2 -w 600", "frz.log")?;
    c.vm.wait_log("frz.log", "LISTENING", T)?;
    let qp = node.qp(1, 8, RECVS, 256, 0)?;
    let ev = node.ctx();
    let (conn, st) = node.connect(qp, vm_addr(7505), ev, T)?;
    ensure(st == STATUS_SUCCESS, || format!("connect: {}", nt(st)))?;
    c.vm.wait_log("frz.log", "ESTABLISHED", T)?;
    c.vm.freeze()?;
    let frozen_at = Instant::now();
    let r = node.disconnect(conn, bound + Duration::from_secs(10));
    let thaw = c.vm.thaw();
    let (st, dt) = r?;
    thaw?;
    ensure(st == STATUS_IO_TIMEOUT, || {
        format!("NdkDisconnect to a frozen peer: {} after {dt:?}", nt(st))
    })?;
    ensure(dt <= bound + Duration::from_millis(500), || {
        format!("NdkDisconnect took {dt:?}, bound {bound:?}")
    })?;
    node.wait("the flushed receives", Duration::from_secs(5), |s| {
        s.of(1, NdkOperationTypeReceive).len() >= RECVS as usize
    })?;
    let recvs = node.with(|s| s.of(1, NdkOperationTypeReceive));
    ensure(
        recvs.len() == RECVS as usize && recvs.iter().all(|r| r.status == STATUS_CANCELLED),
        || format!("receives: {recvs:?}"),
    )?;
    let thawed_after = frozen_at.elapsed();
    // After `cont`: the Linux side takes a new connection (a new QP: the
    // old one keeps its QPN until closed) and a message flows.
    thread::sleep(Duration::from_secs(1));
    let qp2 = node.qp(2, 8, 1, 256, 64 * 1024)?;
    let (conn2, st) = node.connect(qp2, vm_addr(7505), node.ctx(), T)?;
    ensure(st == STATUS_SUCCESS, || {
        format!("connect after cont: {}", nt(st))
    })?;
    node.with(|s| s.write(512 * 1024, &pattern(3, 64)));
    node.send(qp2, 3000, 512 * 1024, 64)?;
    node.wait("a send after cont", T, |s| {
        !s.of(2, NdkOperationTypeSend).is_empty()
    })?;
    let sends = node.with(|s| s.of(2, NdkOperationTypeSend));
    ensure(sends[0].status == STATUS_SUCCESS, || {
        format!("send: {sends:?}")
    })?;
    let log = c.vm.wait_log("frz.log", "wc recv ok", T)?;
    let (st2, _) = node.disconnect(conn2, T)?;
    ensure(st2 == STATUS_SUCCESS, || {
        format!("second NdkDisconnect: {}", nt(st2))
    })?;
    let log =
        c.vm.wait_log("frz.log", "RXEPEER_DONE", Duration::from_secs(20))
            .unwrap_or(log);
    let _ =
        c.vm.run("kill $(pidof rxepeer) 2>/dev/null", Duration::from_secs(5));
    let first_closed = log.matches("EVENT RDMA_CM_EVENT_DISCONNECTED").count();
    // DREQs of the frozen connection: the first local comm ID's.
    let ids = vm::fields(
        c.cap()?,
        &format!("ip.src == {HOST_IP} && infiniband.cm.dreq.localcommid"),
        &["infiniband.cm.dreq.localcommid"],
    )?;
    let dreqs = ids
        .iter()
        .filter(|r| r.first() == ids.first().and_then(|f| f.first()))
        .count();
    let want = usize::from(cm.max_dreq_retries) + 1;
    ensure(dreqs == want, || {
        format!("{dreqs} DREQs to the frozen peer, expected {want}")
    })?;
    Ok(format!(
        "NdkDisconnect -> STATUS_IO_TIMEOUT after {:.2} s (bound {:.3} s), {dreqs} DREQs to the frozen peer, {RECVS} receives flushed STATUS_CANCELLED; thawed after {:.1} s; new connection + Send OK, disconnected {}; Linux saw {first_closed} DISCONNECTED events (the DREQs queued while frozen arrive after cont)",
        dt.as_secs_f64(),
        bound.as_secs_f64(),
        thawed_after.as_secs_f64(),
        nt(st2)
    ))
}
