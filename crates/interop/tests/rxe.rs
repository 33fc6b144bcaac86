//! ndkrs against Linux rdma_rxe in a VM: every interop scenario of issue 8.
//!
//! Runs only as root with `NDKRS_INTEROP=1` after `tests/interop/setup.sh`
//! (tests/interop/run.sh does both); otherwise it prints why it skips and
//! passes. One VM (10.9.0.2) boots once; ndkrs is this process at 10.9.0.1
//! on the bridge of a network namespace made here. Each scenario runs with
//! its own capture of UDP 4791 (`$NDKRS_INTEROP_DIR/run/<name>.pcap`) and
//! its own ndkrs node (fresh seed, so a fresh CA GUID). The results table
//! at the end names each scenario PASS or FAIL with its details.

#![allow(non_upper_case_globals)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use interop::env::{self, Env};
use interop::node::{Node, NodeConfig, RpingInfo, VA, pattern, rping_text};
use interop::vm::{self, Capture, HOST_IP, Netns, Vm};
use ndkpi::*;
use roce::cm::CmConfig;
use roce::rc::SendOp;

const VM_IP: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 2);
const VM_MAC: &str = "52:54:00:00:00:02";
const T: Duration = Duration::from_secs(30);
/// ucmatose's default port.
const UCMATOSE_PORT: u16 = 7471;

type Outcome = Result<String, String>;

struct Harness {
    env: Env,
    ns: Netns,
    vm: Vm,
    seed: u64,
    path_mtu: u32,
    results: Vec<(String, Outcome, Duration, Option<PathBuf>)>,
}

/// What a scenario gets.
struct Ctx<'a> {
    vm: &'a Vm,
    cap: Option<PathBuf>,
    seed: u64,
    nodes: std::cell::Cell<u64>,
    path_mtu: u32,
}

impl Ctx<'_> {
    fn node(&self) -> Result<Node, String> {
        self.node_with(CmConfig::default())
    }
    /// A node with a seed (so a CA GUID) of its own.
    fn node_with(&self, cm: CmConfig) -> Result<Node, String> {
        self.nodes.set(self.nodes.get() + 1);
        Node::start(&NodeConfig {
            ip: HOST_IP,
            path_mtu: self.path_mtu,
            seed: self.seed * 16 + self.nodes.get(),
            cm,
            pcap: None,
        })
    }
    /// The capture so far (tcpdump writes every packet at once; the last
    /// ones get a moment to arrive).
    fn cap(&self) -> Result<&Path, String> {
        thread::sleep(Duration::from_millis(300));
        self.cap
            .as_deref()
            .ok_or_else(|| "no capture tool".to_owned())
    }
}

impl Harness {
    fn scenario(&mut self, name: &str, f: impl FnOnce(&Ctx<'_>) -> Outcome) {
        self.seed += 1;
        if let Ok(only) = std::env::var("NDKRS_INTEROP_ONLY")
            && !only.split(',').any(|o| name.contains(o))
        {
            return;
        }
        println!("--- {name}");
        self.vm.reset();
        let path = self.env.work.join(format!("{name}.pcap"));
        let cap = self
            .env
            .capture_tool
            .and_then(|tool| Capture::start(&self.ns, tool, &path).ok());
        let start = Instant::now();
        let ctx = Ctx {
            vm: &self.vm,
            cap: cap.is_some().then(|| path.clone()),
            seed: self.seed,
            nodes: std::cell::Cell::new(0),
            path_mtu: self.path_mtu,
        };
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&ctx)))
            .unwrap_or_else(|p| {
                Err(format!(
                    "panicked: {}",
                    p.downcast_ref::<String>()
                        .cloned()
                        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default()
                ))
            });
        let path = cap.map(Capture::stop);
        let dt = start.elapsed();
        match &outcome {
            Ok(s) => println!("    PASS ({:.1} s): {s}", dt.as_secs_f64()),
            Err(e) => println!("    FAIL ({:.1} s): {e}", dt.as_secs_f64()),
        }
        self.results.push((name.to_owned(), outcome, dt, path));
    }
}

fn ensure(cond: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if cond { Ok(()) } else { Err(what()) }
}

fn nt(st: NTSTATUS) -> String {
    match st {
        STATUS_SUCCESS => "STATUS_SUCCESS".into(),
        STATUS_CANCELLED => "STATUS_CANCELLED".into(),
        STATUS_IO_TIMEOUT => "STATUS_IO_TIMEOUT".into(),
        STATUS_CONNECTION_REFUSED => "STATUS_CONNECTION_REFUSED".into(),
        s => format!("{:#010x}", s as u32),
    }
}

fn vm_addr(port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(VM_IP), port)
}

// ---- capture checks (tshark) ----

/// (source, PMTU code) of every REQ.
fn req_pmtus(cap: &Path) -> Result<Vec<(String, u32)>, String> {
    Ok(vm::fields(
        cap,
        "infiniband.cm.req.pppmtu",
        &["ip.src", "infiniband.cm.req.pppmtu"],
    )?
    .into_iter()
    .map(|r| {
        let v = r.get(1).map(String::as_str).unwrap_or("");
        let v = u32::from_str_radix(v.trim_start_matches("0x"), 16).unwrap_or(0);
        (r[0].clone(), v)
    })
    .collect())
}

/// (source, reason) of every REJ.
fn rej_reasons(cap: &Path) -> Result<Vec<(String, u32)>, String> {
    Ok(vm::fields(
        cap,
        "infiniband.cm.rej.reason",
        &["ip.src", "infiniband.cm.rej.reason"],
    )?
    .into_iter()
    .map(|r| {
        let v = r.get(1).map(String::as_str).unwrap_or("");
        let v = u32::from_str_radix(v.trim_start_matches("0x"), 16)
            .or_else(|_| v.parse())
            .unwrap_or(0);
        (r[0].clone(), v)
    })
    .collect())
}

/// Packets from `src` with BTH opcode `op`, and their IP lengths.
fn opcode_lens(cap: &Path, src: Ipv4Addr, op: u32) -> Result<Vec<u32>, String> {
    Ok(vm::fields(
        cap,
        &format!("ip.src == {src} && infiniband.bth.opcode == {op}"),
        &["ip.len"],
    )?
    .into_iter()
    .filter_map(|r| r.first().and_then(|v| v.parse().ok()))
    .collect())
}

/// Multi-packet RDMA from `src` whose First opcode is `first` (Write 6,
/// Read Response 13): First and Middle packets carry `mtu` bytes.
fn check_segments_op(cap: &Path, src: Ipv4Addr, first: u32, mtu: u32) -> Outcome {
    // RETH (16 B) rides on a Write First; the Read Response First has an
    // AETH (4 B).
    let extra = if first == 6 { 16 } else { 4 };
    let f = opcode_lens(cap, src, first)?;
    let m = opcode_lens(cap, src, first + 1)?;
    let l = opcode_lens(cap, src, first + 2)?;
    ensure(!f.is_empty() && f.len() == l.len(), || {
        format!(
            "{src}: {} First / {} Last packets (opcode {first})",
            f.len(),
            l.len()
        )
    })?;
    ensure(
        f.iter().all(|&x| x == ip_len(mtu) + extra) && m.iter().all(|&x| x == ip_len(mtu)),
        || {
            format!(
                "{src}: First {f:?} Middle {m:?}, expected {} / {}",
                ip_len(mtu) + extra,
                ip_len(mtu)
            )
        },
    )?;
    Ok(format!(
        "from {src}: {} First, {} Middle, {} Last of {mtu} B",
        f.len(),
        m.len(),
        l.len()
    ))
}

/// IP length of a packet with `payload` bytes: IP 20 + UDP 8 + BTH 12 +
/// ICRC 4.
fn ip_len(payload: u32) -> u32 {
    20 + 8 + 12 + payload + 4
}

/// Multi-packet Sends from `src`: every First and Middle carries exactly
/// `mtu` bytes, and there are `messages` Firsts and Lasts.
fn check_segments(cap: &Path, src: Ipv4Addr, mtu: u32, messages: usize) -> Outcome {
    let first = opcode_lens(cap, src, 0)?;
    let middle = opcode_lens(cap, src, 1)?;
    let last = opcode_lens(cap, src, 2)?;
    ensure(first.len() >= messages && last.len() >= messages, || {
        format!(
            "{src}: {} Send First / {} Send Last packets, expected {messages} each",
            first.len(),
            last.len()
        )
    })?;
    ensure(
        first.iter().chain(&middle).all(|&l| l == ip_len(mtu)),
        || {
            format!(
                "{src}: First/Middle IP lengths {first:?} {middle:?}, expected {}",
                ip_len(mtu)
            )
        },
    )?;
    Ok(format!(
        "{src}: {} First, {} Middle, {} Last of {mtu} B",
        first.len(),
        middle.len(),
        last.len()
    ))
}

// ---- scenarios ----

/// ucmatose server in the VM, ndkrs the client: the server sends `count`
/// messages, ndkrs replies with `count`, the server (passive side)
/// disconnects: its DREQ, ndkrs's DREP.
fn ucmatose_ndkrs_client(c: &Ctx<'_>, count: u32, size: u32) -> Outcome {
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
fn ucmatose_ndkrs_server(c: &Ctx<'_>, count: u32, size: u32) -> Outcome {
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

fn check_pmtu(c: &Ctx<'_>, from: Ipv4Addr, code: u32) -> Outcome {
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

fn reject_no_listener(c: &Ctx<'_>) -> Outcome {
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

fn reject_by_listener(c: &Ctx<'_>) -> Outcome {
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
fn linux_disconnects(c: &Ctx<'_>, linux_active: bool) -> Outcome {
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
fn frozen_peer(c: &Ctx<'_>) -> Outcome {
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

/// rping's default port.
const RPING_PORT: u16 = 7174;
// Arena layout of the rping scenarios.
const R_RECV: u64 = 0;
const R_SEND: u64 = 8 * 1024;
const R_SRC: u64 = 64 * 1024;
const R_SINK: u64 = 256 * 1024;

fn wait_recvs(node: &Node, n: usize, what: &str) -> Result<(), String> {
    node.wait(what, T, |s| s.of(1, NdkOperationTypeReceive).len() >= n)?;
    let bad: Vec<_> = node.with(|s| {
        s.completions
            .iter()
            .filter(|c| c.status != STATUS_SUCCESS)
            .copied()
            .collect()
    });
    ensure(bad.is_empty(), || format!("failed completions: {bad:?}"))
}

/// Sends an rping_rdma_info from send slot `k`.
fn send_info(
    node: &Node,
    qp: ndk::object::ObjectId,
    k: u64,
    info: RpingInfo,
) -> Result<(), String> {
    let off = R_SEND + (k % 256) * 16;
    node.with(|s| s.write(off, &info.encode()));
    node.send(qp, 5000 + k as usize, off, RpingInfo::LEN as u32)
}

/// ndkrs plays rping's client against `rping -s -V` in the VM: it
/// advertises its source (the server RDMA-Reads it), then its sink (the
/// server RDMA-Writes the data back), `count` times; then disconnects.
fn rping_ndkrs_client(c: &Ctx<'_>, count: u32, size: u32) -> Outcome {
    c.vm.spawn(
        &format!("rping -s -V -C {count} -S {size} -p {RPING_PORT}; echo RPING_EXIT=$?"),
        "rping.log",
    )?;
    c.vm.wait_listen(RPING_PORT, T)?;
    let node = c.node()?;
    let qp = node.qp(1, 2 * count + 4, 2 * count + 2, 16, R_RECV)?;
    let ev = node.ctx();
    let (conn, st) = node.connect(qp, vm_addr(RPING_PORT), ev, T)?;
    ensure(st == STATUS_SUCCESS, || format!("connect: {}", nt(st)))?;
    let token = node.token;
    for ping in 0..count {
        let text = rping_text(ping, size as usize);
        node.with(|s| {
            s.write(R_SRC, &text);
            s.write(R_SINK, &vec![0; size as usize]);
        });
        let k = u64::from(ping) * 2;
        send_info(
            &node,
            qp,
            k,
            RpingInfo {
                buf: VA + R_SRC,
                rkey: token,
                size,
            },
        )?;
        wait_recvs(
            &node,
            k as usize + 1,
            "the go-ahead after the server's RDMA Read",
        )?;
        send_info(
            &node,
            qp,
            k + 1,
            RpingInfo {
                buf: VA + R_SINK,
                rkey: token,
                size,
            },
        )?;
        wait_recvs(
            &node,
            k as usize + 2,
            "the go-ahead after the server's RDMA Write",
        )?;
        let got = node.with(|s| s.read(R_SINK, size as usize));
        ensure(got == text, || {
            format!("ping {ping}: the sink does not hold the source")
        })?;
    }
    let (st, _) = node.disconnect(conn, T)?;
    ensure(st == STATUS_SUCCESS, || {
        format!("NdkDisconnect: {}", nt(st))
    })?;
    let log = c.vm.wait_log("rping.log", "RPING_EXIT=", T)?;
    ensure(
        log.contains("RPING_EXIT=0") && !log.contains("mismatch"),
        || format!("rping server:\n{}", vm::tail(&log, 10)),
    )?;
    Ok(format!(
        "{count} pings of {size} B verified (server RDMA Read + Write); ndkrs disconnected; rping -s exit 0"
    ))
}

/// ndkrs plays rping's server against `rping -c -V` in the VM: for each
/// ping it RDMA-Reads the client's source, sends the go-ahead, RDMA-Writes
/// the data to the client's sink, sends the go-ahead; the client
/// verifies and finally disconnects.
fn rping_ndkrs_server(c: &Ctx<'_>, count: u32, size: u32) -> Outcome {
    let node = c.node()?;
    node.listen(RPING_PORT)?;
    c.vm.spawn(
        &format!(
            "rping -c -V -a {HOST_IP} -C {count} -S {size} -p {RPING_PORT}; echo RPING_EXIT=$?"
        ),
        "rpingc.log",
    )?;
    let conn = node.incoming(0, T)?;
    let qp = node.qp(1, 2 * count + 4, 2 * count + 2, 16, R_RECV)?;
    let ev = node.ctx();
    let st = node.accept(conn, qp, ev, T)?;
    ensure(st == STATUS_SUCCESS, || format!("accept: {}", nt(st)))?;
    let ops = |node: &Node, op| node.with(|s| s.of(1, op).len());
    for ping in 0..count {
        let k = ping as usize * 2;
        wait_recvs(&node, k + 1, "the client's source advertisement")?;
        let slot = R_RECV + k as u64 * 16;
        let info = node
            .with(|s| RpingInfo::decode(&s.read(slot, 16)))
            .ok_or("short rping info")?;
        ensure(info.size == size, || format!("advertised {info:?}"))?;
        let reads = ops(&node, NdkOperationTypeRead);
        node.with(|s| s.write(R_SRC, &vec![0; size as usize]));
        node.post(
            qp,
            6000 + k,
            R_SRC,
            info.size,
            SendOp::Read {
                remote_addr: info.buf,
                rkey: info.rkey,
            },
        )?;
        node.wait("the RDMA Read", T, |s| {
            s.of(1, NdkOperationTypeRead).len() > reads
        })?;
        send_info(
            &node,
            qp,
            k as u64,
            RpingInfo {
                buf: 0,
                rkey: 0,
                size: 0,
            },
        )?;
        wait_recvs(&node, k + 2, "the client's sink advertisement")?;
        let sink = node
            .with(|s| RpingInfo::decode(&s.read(slot + 16, 16)))
            .ok_or("short rping info")?;
        let data = node.with(|s| s.read(R_SRC, size as usize));
        let len = data
            .iter()
            .position(|&b| b == 0)
            .map_or(data.len(), |n| n + 1) as u32;
        let writes = ops(&node, NdkOperationTypeWrite);
        node.post(
            qp,
            7000 + k,
            R_SRC,
            len,
            SendOp::Write {
                remote_addr: sink.buf,
                rkey: sink.rkey,
            },
        )?;
        node.wait("the RDMA Write", T, |s| {
            s.of(1, NdkOperationTypeWrite).len() > writes
        })?;
        send_info(
            &node,
            qp,
            k as u64 + 1,
            RpingInfo {
                buf: 0,
                rkey: 0,
                size: 0,
            },
        )?;
    }
    node.wait("the client's disconnect", T, |s| {
        s.disconnect_events(ev) > 0
    })?;
    let (st, _) = node.disconnect(conn, T)?;
    ensure(st == STATUS_SUCCESS, || {
        format!("NdkDisconnect: {}", nt(st))
    })?;
    let log = c.vm.wait_log("rpingc.log", "RPING_EXIT=", T)?;
    ensure(
        log.contains("RPING_EXIT=0") && !log.contains("mismatch"),
        || format!("rping client:\n{}", vm::tail(&log, 10)),
    )?;
    Ok(format!(
        "{count} pings of {size} B (ndkrs RDMA Read + Write), rping -c -V verified, disconnected; exit 0"
    ))
}

#[test]
fn rxe_interop() {
    if !env::requested() {
        println!(
            "SKIP rxe interop: set NDKRS_INTEROP=1 to boot the Linux rxe VM (tests/interop/run.sh does, as CI does)"
        );
        return;
    }
    let env = match env::detect() {
        Ok(e) => e,
        Err(why) => {
            println!("SKIP rxe interop: {why}");
            return;
        }
    };
    let t0 = Instant::now();
    let ns = Netns::create("ndkrs-interop", 1, 1500).expect("namespace");
    ns.enter().expect("entering the namespace");
    let vm = Vm::boot(
        &env,
        &ns,
        "rxe",
        "tap0",
        VM_MAC,
        VM_IP,
        1500,
        Duration::from_secs(120),
        Duration::from_secs(1200),
    )
    .expect("booting the rxe VM");
    println!("VM up in {:.1} s", t0.elapsed().as_secs_f64());
    let mut h = Harness {
        env,
        ns,
        vm,
        seed: 0x1d0,
        path_mtu: 1024,
        results: Vec::new(),
    };

    // Ethernet MTU 1500: RoCE path MTU 1024.
    h.scenario("ucmatose-linux-server", |c| {
        let s = ucmatose_ndkrs_client(c, 4, 512)?;
        Ok(format!("{s}; {}", check_pmtu(c, HOST_IP, 3)?))
    });
    h.scenario("ucmatose-ndkrs-server", |c| {
        let s = ucmatose_ndkrs_server(c, 4, 512)?;
        Ok(format!("{s}; {}", check_pmtu(c, VM_IP, 3)?))
    });
    h.scenario("reject-no-listener", reject_no_listener);
    h.scenario("reject-by-listener", reject_by_listener);
    h.scenario("linux-disconnects-active", |c| linux_disconnects(c, true));
    h.scenario("linux-disconnects-passive", |c| linux_disconnects(c, false));
    h.scenario("frozen-peer-disconnect", frozen_peer);
    h.scenario("rping-ndkrs-client", |c| {
        let a = rping_ndkrs_client(c, 5, 64)?;
        c.vm.reset();
        let b = rping_ndkrs_client(c, 3, 3000)?;
        let r = check_segments_op(c.cap()?, HOST_IP, 13, 1024)?;
        let w = check_segments_op(c.cap()?, VM_IP, 6, 1024)?;
        Ok(format!("{a}; {b}; Read Responses {r}; RDMA Writes {w}"))
    });
    h.scenario("rping-ndkrs-server", |c| {
        let a = rping_ndkrs_server(c, 5, 64)?;
        let b = rping_ndkrs_server(c, 3, 3000)?;
        let r = check_segments_op(c.cap()?, VM_IP, 13, 1024)?;
        let w = check_segments_op(c.cap()?, HOST_IP, 6, 1024)?;
        Ok(format!("{a}; {b}; Read Responses {r}; RDMA Writes {w}"))
    });
    h.scenario("pmtu-1024", |c| {
        ucmatose_ndkrs_client(c, 2, 3000)?;
        ucmatose_ndkrs_server(c, 2, 3000)?;
        let cap = c.cap()?;
        let s1 = check_segments(cap, HOST_IP, 1024, 4)?;
        let s2 = check_segments(cap, VM_IP, 1024, 4)?;
        let p1 = check_pmtu(c, HOST_IP, 3)?;
        let p2 = check_pmtu(c, VM_IP, 3)?;
        Ok(format!(
            "ucmatose 2 x 3000 B both ways: {s1}; {s2}; {p1}; {p2}"
        ))
    });

    // Ethernet MTU 9000: RoCE path MTU 4096.
    let switched =
        h.vm.run(
            "ip link set eth0 mtu 9000 && sleep 1 && ibv_devinfo -d rxe0 | grep active_mtu",
            T,
        )
        .and_then(|o| {
            h.ns.set_mtu(9000)?;
            Ok(o)
        });
    match switched {
        Ok(o) if o.text.contains("4096") => {
            h.path_mtu = 4096;
            h.scenario("pmtu-4096", |c| {
                ucmatose_ndkrs_client(c, 2, 10000)?;
                ucmatose_ndkrs_server(c, 2, 10000)?;
                let cap = c.cap()?;
                let s1 = check_segments(cap, HOST_IP, 4096, 4)?;
                let s2 = check_segments(cap, VM_IP, 4096, 4)?;
                let p1 = check_pmtu(c, HOST_IP, 5)?;
                let p2 = check_pmtu(c, VM_IP, 5)?;
                Ok(format!(
                    "ucmatose 2 x 10000 B both ways: {s1}; {s2}; {p1}; {p2}"
                ))
            });
        }
        other => h.results.push((
            "pmtu-4096".into(),
            Err(format!("switching to MTU 9000 failed: {other:?}")),
            Duration::ZERO,
            None,
        )),
    }

    println!(
        "\n=== rxe interop results ({:.0} s in all)",
        t0.elapsed().as_secs_f64()
    );
    let mut failed = 0;
    for (name, outcome, dt, cap) in &h.results {
        let (tag, text) = match outcome {
            Ok(s) => ("PASS", s.clone()),
            Err(e) => {
                failed += 1;
                ("FAIL", e.clone())
            }
        };
        println!("{tag} {name} ({:.1} s): {text}", dt.as_secs_f64());
        if let Some(p) = cap {
            println!("     capture: {}", p.display());
        }
    }
    if let Some((_, _, _, Some(cap))) = h.results.first()
        && h.env.tshark
    {
        println!("\ntshark -q -z io,phs {}:", cap.display());
        println!(
            "{}",
            vm::tshark(cap, &["-q", "-z", "io,phs"]).unwrap_or_default()
        );
        println!("tshark -r {}:", cap.display());
        println!("{}", vm::tshark(cap, &[]).unwrap_or_default());
    }
    let passed = h.results.len() - failed;
    println!("interop: {passed} passed, {failed} failed");
    if failed > 0 {
        println!("VM console (tail):\n{}", vm::tail(&h.vm.console(), 30));
    }
    assert_eq!(failed, 0, "{failed} interop scenarios failed");
}
