//! ndkrs against Linux rdma_rxe in a VM: every interop scenario of issue 8.
//!
//! Runs only as root with `NDKRS_INTEROP=1` after `tests/interop/setup.sh`
//! (tests/interop/run.sh does both); otherwise it prints why it skips and
//! passes. One VM (10.9.0.2) boots once; ndkrs is this process at 10.9.0.1
//! on the bridge of a network namespace made here. Each scenario runs with
//! its own capture of UDP 4791 (`$NDKRS_INTEROP_DIR/run/<name>.pcap`) and
//! its own ndkrs node (fresh seed, so a fresh CA GUID). The results table
//! at the end names each scenario PASS or FAIL with its details.
//! `NDKRS_INTEROP_NETNS=<name>` runs it in a namespace of another name, so
//! that it does not share (and delete) the namespace of another harness
//! run under way, tests/ksmbd.rs's say; two runs of this test at once still
//! share the VM's files (`rxe.*`) in the run directory.
//!
//! The rping scenarios run ndkperf's rping mode itself (`host::perf`, the
//! NDK dispatch tables, as `ndkperf --raw` configures its adapter) against
//! Linux `rping`, as client and as server; the perftest scenarios run
//! ndkperf's write_bw, read_bw, send_bw and send_lat modes as `ndkperf
//! --perftest` does, against `ib_write_bw -R`, `ib_read_bw -R`,
//! `ib_send_bw -R` and `ib_send_lat -R` servers.

#![allow(non_upper_case_globals)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use host::adapter::{Adapter, AdapterConfig, Seed, quick_cm};
use host::io::{ROCE_PORT, RawTransport};
use host::perf::{self, Keep, Mode as PerfMode, Params};
use host::perftest::Shape;
use interop::env::{self, Env};
use interop::node::{Node, NodeConfig, pattern};
use interop::vm::{self, Capture, HOST_IP, Netns, Vm};
use ndkpi::*;
use roce::cm::CmConfig;

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
    /// A node asking for path MTU `mtu`, whatever the link carries.
    fn node_mtu(&self, mtu: u32) -> Result<Node, String> {
        self.nodes.set(self.nodes.get() + 1);
        Node::start(&NodeConfig {
            ip: HOST_IP,
            path_mtu: mtu,
            seed: self.seed * 16 + self.nodes.get(),
            cm: CmConfig::default(),
            pcap: None,
        })
    }
    /// An ndkperf adapter as `ndkperf --raw` opens it (`host::adapter`,
    /// the NDK dispatch tables, on a raw IP socket, ndkperf's CM timing
    /// [`quick_cm`]) with a seed of its own.
    fn adapter(&self) -> Result<Adapter, String> {
        self.nodes.set(self.nodes.get() + 1);
        let local = SocketAddr::new(IpAddr::V4(HOST_IP), ROCE_PORT);
        let transport = RawTransport::bind(local).map_err(|e| e.to_string())?;
        Adapter::open(
            Box::new(transport),
            &AdapterConfig {
                seed: Seed::Fixed(self.seed * 16 + self.nodes.get()),
                mtu: self.path_mtu,
                cm: quick_cm(),
                ..AdapterConfig::default()
            },
            None,
        )
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

/// Packets from `src` with BTH opcode `op`, and their IP lengths; a
/// retransmission (a PSN already seen on that QP) counts once.
fn opcode_lens(cap: &Path, src: Ipv4Addr, op: u32) -> Result<Vec<u32>, String> {
    let mut seen = std::collections::HashSet::new();
    Ok(vm::fields(
        cap,
        &format!("ip.src == {src} && infiniband.bth.opcode == {op}"),
        &["ip.len", "infiniband.bth.destqp", "infiniband.bth.psn"],
    )?
    .into_iter()
    .filter(|r| seen.insert((r.get(1).cloned(), r.get(2).cloned())))
    .filter_map(|r| r.first().and_then(|v| v.parse().ok()))
    .collect())
}

/// The distinct destination QPs of packets from `src` with BTH opcode `op`.
fn opcode_qps(cap: &Path, src: Ipv4Addr, op: u32) -> Result<usize, String> {
    let rows = vm::fields(
        cap,
        &format!("ip.src == {src} && infiniband.bth.opcode == {op}"),
        &["infiniband.bth.destqp"],
    )?;
    Ok(rows
        .into_iter()
        .filter_map(|r| r.first().cloned())
        .collect::<std::collections::HashSet<_>>()
        .len())
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

/// Both links 1500 bytes, ndkrs configured for path MTU 4096: its REQ
/// offers the 1024 its link carries, and 3000-byte messages go both ways
/// in 1024-byte segments (none that the link would refuse).
fn pmtu_link_cap(c: &Ctx<'_>) -> Outcome {
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
fn pmtu_link_mismatch(c: &Ctx<'_>) -> Outcome {
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

/// Linux rping's verbose output shows the text it moved: the 64-byte
/// runs add -v and check it.
fn rping_verbose(size: u32) -> &'static str {
    if size <= 64 { " -v" } else { "" }
}

/// ndkperf's rping mode ([`perf::run`], the NDK dispatch tables over
/// `host::adapter`, raw IP) as the client against `rping -s -V` in the
/// VM: each iteration the Linux server RDMA-Reads ndkperf's source,
/// Sends its go-ahead, RDMA-Writes the text back into ndkperf's sink and
/// Sends again; ndkperf compares sink and source; then ndkperf
/// disconnects and rping -s exits.
fn rping_ndkperf_client(c: &Ctx<'_>, count: u32, size: u32) -> Outcome {
    let v = rping_verbose(size);
    c.vm.spawn(
        &format!("rping -s -V{v} -C {count} -S {size} -p {RPING_PORT}; echo RPING_EXIT=$?"),
        "rping.log",
    )?;
    c.vm.wait_listen(RPING_PORT, T)?;
    let adapter = c.adapter()?;
    let mut keep = Keep::default();
    let run = perf::run(
        &adapter,
        vm_addr(RPING_PORT),
        &Params {
            mode: PerfMode::Rping,
            size: size as usize,
            iters: Some(u64::from(count)),
            duration: T,
            window: 1,
            qps: 1,
            timeout: T,
        },
        &mut keep,
    );
    // SAFETY: the run closed its objects; what a late callback may still
    // reach is in `keep`, dropped after the adapter.
    let _ = unsafe { adapter.close() };
    drop(keep);
    let r = run.map_err(|e| format!("ndkperf rping: {e}"))?;
    ensure(
        r.messages == u64::from(count) && r.verify_errors == 0 && r.leaked_objects == 0,
        || {
            format!(
                "ndkperf rping: {} iterations, {} not verified, {} objects left",
                r.messages, r.verify_errors, r.leaked_objects
            )
        },
    )?;
    let log = c.vm.wait_log("rping.log", "RPING_EXIT=", T)?;
    ensure(
        log.contains("RPING_EXIT=0") && !log.contains("mismatch"),
        || format!("rping server:\n{}", vm::tail(&log, 10)),
    )?;
    let last = format!("rdma-ping-{}: ", count - 1);
    ensure(v.is_empty() || log.contains(&last), || {
        format!("rping -s -v never showed `{last}`:\n{}", vm::tail(&log, 10))
    })?;
    Ok(format!(
        "ndkperf rping client: {count} x {size} B, {} of {count} verified (round trip p50 {:.0} us), disconnect {:.1} ms; rping -s exit 0{}",
        r.messages - r.verify_errors,
        r.lat.pct(0.5).as_secs_f64() * 1e6,
        r.disconnect.as_secs_f64() * 1e3,
        if v.is_empty() {
            ""
        } else {
            ", its -v shows ndkperf's text"
        }
    ))
}

/// ndkperf's rping client (120 s run bound) against a Linux `rping -s`
/// that leaves mid-run: one that refuses a 65536-byte buffer with `-S
/// 65535`, and one killed with SIGKILL (its kernel sends the DREQ). Either
/// way ndkrs answers the DREQ and the run ends within a second, saying the
/// peer disconnected, instead of waiting out its bound.
fn rping_peer_leaves(c: &Ctx<'_>) -> Outcome {
    let mut out = Vec::new();
    for (label, server, size, kill_after) in [
        ("rping -s -S 65535", "rping -s -S 65535", 65536u32, None),
        (
            "rping -s killed with SIGKILL",
            "rping -s -C 1000000 -S 64",
            64,
            Some(Duration::from_millis(1500)),
        ),
    ] {
        c.vm.spawn(
            &format!("{server} -p {RPING_PORT}; echo RPING_EXIT=$?"),
            "rping.log",
        )?;
        c.vm.wait_listen(RPING_PORT, T)?;
        let adapter = c.adapter()?;
        let mut keep = Keep::default();
        let t0 = Instant::now();
        let vm = c.vm;
        let (run, ended, killed) = thread::scope(|sc| {
            let killer = kill_after.map(|d| {
                sc.spawn(move || {
                    thread::sleep(d);
                    vm.run("kill -9 $(pidof rping)", Duration::from_secs(5))
                        .map(|_| Instant::now())
                })
            });
            let run = perf::run(
                &adapter,
                vm_addr(RPING_PORT),
                &Params {
                    mode: PerfMode::Rping,
                    size: size as usize,
                    iters: Some(1_000_000),
                    duration: T,
                    window: 1,
                    qps: 1,
                    timeout: T,
                },
                &mut keep,
            );
            let ended = Instant::now();
            let killed = killer.map(|k| {
                k.join()
                    .map_err(|_| "the killer thread panicked".to_owned())
                    .and_then(|r| r)
            });
            (run, ended, killed)
        });
        // SAFETY: the run closed its objects; what a late callback may
        // still reach is in `keep`, dropped after the adapter.
        let _ = unsafe { adapter.close() };
        drop(keep);
        let since = match killed {
            Some(k) => ended.saturating_duration_since(k?),
            None => ended - t0,
        };
        let e = match run {
            Ok(r) => {
                return Err(format!(
                    "{label}: the run succeeded ({} iterations)",
                    r.messages
                ));
            }
            Err(e) => e.to_string(),
        };
        ensure(e.contains("STATUS_CONNECTION_DISCONNECTED"), || {
            format!("{label}: {e}")
        })?;
        ensure(since < Duration::from_secs(2), || {
            format!("{label}: the run ended {since:?} after the peer left: {e}")
        })?;
        out.push(format!(
            "{label}: the run ended {:.0} ms after {}: \"{e}\"",
            since.as_secs_f64() * 1e3,
            if kill_after.is_some() {
                "the kill"
            } else {
                "it started"
            }
        ));
        c.vm.reset();
    }
    Ok(out.join("; "))
}

/// ndkperf's server ([`perf::Server`], as `ndkperf --server` runs it)
/// against `rping -c -V` in the VM: the connect carries no ndkperf hello,
/// so the server plays rping's server (RDMA Read of the client's source,
/// go-ahead, RDMA Write of the text to its sink, go-ahead) until the
/// client has verified `count` iterations and disconnects.
fn rping_ndkperf_server(c: &Ctx<'_>, count: u32, size: u32) -> Outcome {
    let adapter = c.adapter()?;
    let server = perf::Server::start(
        &adapter,
        SocketAddr::new(IpAddr::V4(HOST_IP), RPING_PORT),
        false,
    )
    .map_err(|e| format!("ndkperf server: {e}"))?;
    let v = rping_verbose(size);
    let spawned = c.vm.spawn(
        &format!(
            "rping -c -V{v} -a {HOST_IP} -C {count} -S {size} -p {RPING_PORT}; echo RPING_EXIT=$?"
        ),
        "rpingc.log",
    );
    let log = spawned.and_then(|_| c.vm.wait_log("rpingc.log", "RPING_EXIT=", T));
    // The client's DREQ: the server disconnects and closes its side.
    let start = Instant::now();
    while start.elapsed() < T {
        let s = server.stats();
        if s.accepted > 0 && s.live == 0 {
            break;
        }
        thread::sleep(Duration::from_millis(20));
    }
    let s = server.stats();
    let mut keep = Keep::default();
    server.stop(&mut keep);
    // SAFETY: the server's objects are reached only through callbacks,
    // which end with the adapter's loop; its state is in `keep`.
    let _ = unsafe { adapter.close() };
    drop(keep);
    let log = log?;
    ensure(
        log.contains("RPING_EXIT=0") && !log.contains("mismatch"),
        || format!("rping client:\n{}", vm::tail(&log, 10)),
    )?;
    let last = format!("rdma-ping-{}: ", count - 1);
    ensure(v.is_empty() || log.contains(&last), || {
        format!("rping -c -v never showed `{last}`:\n{}", vm::tail(&log, 10))
    })?;
    ensure(
        s.accepted == 1
            && s.rejected == 0
            && s.live == 0
            && s.rping_iterations == u64::from(count)
            && s.rping_errors == 0,
        || format!("ndkperf server: {s:?}"),
    )?;
    Ok(format!(
        "ndkperf server: {count} x {size} B served (RDMA Read + Write), rping -c -V verified them and disconnected, exit 0; server closed the connection"
    ))
}

/// perftest's port (rdma_cm, for its control connection and the test QP).
const PERFTEST_PORT: u16 = host::perftest::PORT;

/// The result line of a perftest report: the line whose first two
/// columns are the message size and the iteration count.
fn perftest_result_line(log: &str, size: u32, iters: u64) -> Option<String> {
    log.lines()
        .find(|l| {
            let mut t = l.split_whitespace();
            t.next() == Some(&size.to_string()) && t.next() == Some(&iters.to_string())
        })
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// What ndkperf runs in every perftest scenario: `iters` messages of
/// `size` bytes, 16 in flight, on one QP.
fn perftest_params(mode: PerfMode, size: u32, iters: u64) -> Params {
    Params {
        mode,
        size: size as usize,
        iters: Some(iters),
        duration: T,
        window: 16,
        qps: 1,
        timeout: T,
    }
}

/// Starts `tool` in the VM with `command` (its output in `log_name`), then
/// runs ndkperf's side with `ndkperf` on a fresh adapter. Returns
/// ndkperf's report and the tool's log once it ended; a failed run is
/// reported as `label` with the log's tail.
fn perftest_run(
    c: &Ctx<'_>,
    tool: &str,
    label: &str,
    command: &str,
    log_name: &str,
    ndkperf: impl FnOnce(&Adapter, &mut Keep) -> Result<perf::Report, perf::PerfError>,
) -> Result<(perf::Report, String), String> {
    c.vm.spawn(command, log_name)?;
    // Linux the server (its command names no host): ndkperf connects once
    // it listens, however slowly the emulated VM starts it.
    if !command.contains(&HOST_IP.to_string()) {
        c.vm.wait_listen(PERFTEST_PORT, T)?;
    }
    let adapter = c.adapter()?;
    let mut keep = Keep::default();
    let run = ndkperf(&adapter, &mut keep);
    // SAFETY: the run closed its objects; what a late callback may still
    // reach is in `keep`, dropped after the adapter.
    let _ = unsafe { adapter.close() };
    drop(keep);
    let log = c.vm.wait_log(log_name, "PERFTEST_EXIT=", T);
    let r = match run {
        Ok(r) => r,
        Err(e) => {
            let tail = log.map(|l| vm::tail(&l, 15)).unwrap_or_else(|e| e);
            return Err(format!("{label}: {e}\n{tool} -R:\n{tail}"));
        }
    };
    Ok((r, log?))
}

/// The Linux side's verdict in its log: `tool` exited 0 and printed its
/// result line for `iters` x `size` B, which is returned.
fn perftest_verdict(tool: &str, log: &str, size: u32, iters: u64) -> Outcome {
    ensure(log.contains("PERFTEST_EXIT=0"), || {
        format!("{tool} -R:\n{}", vm::tail(log, 15))
    })?;
    perftest_result_line(log, size, iters).ok_or_else(|| {
        format!(
            "{tool} -R printed no result line for {size} B x {iters}:\n{}",
            vm::tail(log, 15)
        )
    })
}

/// ndkperf's client ([`perf::run_perftest`]: perftest's exchange over an
/// rdma_cm control connection to 18515, the test QP connected to the same
/// port, the traffic through the NDK dispatch tables) against a Linux perftest server (`tool -R`) in the VM: the
/// server exits 0 and prints its result line (for write_bw and read_bw
/// the report ndkperf sent it; for send_bw and send_lat what it measured
/// itself), ndkperf counts every message completed.
fn perftest_ndkperf_client(
    c: &Ctx<'_>,
    tool: &str,
    mode: PerfMode,
    size: u32,
    iters: u64,
) -> Outcome {
    perftest_client_shaped(c, tool, mode, size, iters, Shape::default())
}

/// perftest's flags for `shape` (`-q`, `-b`, `-a`).
fn shape_flags(shape: Shape) -> String {
    let mut f = String::new();
    if shape.qps > 1 {
        f += &format!(" -q {}", shape.qps);
    }
    if shape.duplex {
        f += " -b";
    }
    if shape.all {
        f += " -a";
    }
    f
}

/// [`perftest_ndkperf_client`] in `shape`: perftest's result line and
/// ndkperf's count are `iters` per test QP (perftest reports the sum).
fn perftest_client_shaped(
    c: &Ctx<'_>,
    tool: &str,
    mode: PerfMode,
    size: u32,
    iters: u64,
    shape: Shape,
) -> Outcome {
    let p = perftest_params(mode, size, iters);
    let flags = shape_flags(shape);
    let (r, log) = perftest_run(
        c,
        tool,
        &format!("ndkperf {} --perftest{flags}", mode.name()),
        &format!(
            "{tool} -R -F -d rxe0 -s {size} -n {iters}{flags} -p {PERFTEST_PORT}; echo PERFTEST_EXIT=$?"
        ),
        "perftest.log",
        |adapter, keep| {
            perf::run_perftest(adapter, vm_addr(PERFTEST_PORT), &p, shape, c.path_mtu, keep)
        },
    )?;
    let peer = r.perftest.unwrap_or_default();
    let iters = iters * u64::from(shape.qps);
    ensure(
        r.messages == iters && r.verify_errors == 0 && r.leaked_objects == 0,
        || {
            format!(
                "ndkperf {}: {} of {iters} messages, {} objects left",
                mode.name(),
                r.messages,
                r.leaked_objects
            )
        },
    )?;
    // ib_read_lat's server prints nothing of the client's reads
    // (read_lat.c: it closes once the keys are exchanged).
    let line = if mode == PerfMode::ReadLat {
        ensure(log.contains("PERFTEST_EXIT=0"), || {
            format!("{tool} -R:\n{}", vm::tail(&log, 15))
        })?;
        "none (its server reports nothing)".to_owned()
    } else {
        perftest_verdict(tool, &log, size, iters)?
    };
    ensure(peer.closed, || {
        format!("{tool} -R: the closing handshake did not go through")
    })?;
    if shape.duplex {
        // Both sides' reports went across (`xchg_bw_reports`).
        let b = peer.report.unwrap_or_default();
        ensure(b.iters == iters && b.size == u64::from(size), || {
            format!("{tool} -R{flags} reported {b:?}")
        })?;
    }
    let measured = if mode.is_latency() {
        format!(
            "round trip p50 {:.0} us",
            r.lat.pct(0.5).as_secs_f64() * 1e6
        )
    } else {
        format!("{:.1} MB/s", r.bytes_per_sec() / 1e6)
    };
    Ok(format!(
        "ndkperf {} --perftest{flags}: {iters} x {size} B ({measured}) against {tool} -R{flags} (version {}, server buffer rkey {:#x}); {tool} exit 0, its result line `{line}`",
        mode.name(),
        peer.version,
        peer.server.rkey
    ))
}

/// ndkperf as the server ([`perf::serve_perftest`]: a listener on
/// 10.9.0.1:18515, perftest's exchange on the client's control
/// connection, the test QP accepted on the same listener) for a Linux
/// perftest client (`tool -R 10.9.0.1`) in the VM: the client exits 0 and
/// prints its result line; ndkperf saw every Send (send_bw, send_lat).
fn perftest_ndkperf_server(
    c: &Ctx<'_>,
    tool: &str,
    mode: PerfMode,
    size: u32,
    iters: u64,
) -> Outcome {
    perftest_server_shaped(c, tool, mode, size, iters, Shape::default())
}

/// [`perftest_ndkperf_server`] in `shape`. A read_lat server only
/// exposes its buffer (perftest's tells the server nothing of the
/// client's reads): its count is checked on the wire instead.
fn perftest_server_shaped(
    c: &Ctx<'_>,
    tool: &str,
    mode: PerfMode,
    size: u32,
    iters: u64,
    shape: Shape,
) -> Outcome {
    let p = perftest_params(mode, size, iters);
    let flags = shape_flags(shape);
    let (r, log) = perftest_run(
        c,
        tool,
        &format!("ndkperf {} perftest server{flags}", mode.name()),
        // The client starts a second later: ndkperf listens by then.
        &format!(
            "sleep 1; {tool} -R -F -d rxe0 -s {size} -n {iters}{flags} -p {PERFTEST_PORT} {HOST_IP}; echo PERFTEST_EXIT=$?"
        ),
        "perftestc.log",
        |adapter, keep| {
            let addr = SocketAddr::new(IpAddr::V4(HOST_IP), PERFTEST_PORT);
            perf::serve_perftest(adapter, addr, &p, shape, c.path_mtu, keep)
        },
    )?;
    let peer = r.perftest.unwrap_or_default();
    let iters = iters * u64::from(shape.qps);
    let counted = if mode == PerfMode::ReadLat { 0 } else { iters };
    ensure(
        r.messages == counted && r.leaked_objects == 0 && peer.closed,
        || {
            format!(
                "ndkperf {} server: {} of {iters} messages, {} objects left, closing handshake {}",
                mode.name(),
                r.messages,
                r.leaked_objects,
                peer.closed
            )
        },
    )?;
    let line = perftest_verdict(tool, &log, size, iters)?;
    if shape.duplex {
        // Both sides' reports went across (`xchg_bw_reports`).
        let b = peer.report.unwrap_or_default();
        ensure(b.iters == iters && b.size == u64::from(size), || {
            format!("{tool} -R{flags} reported {b:?}")
        })?;
    }
    Ok(format!(
        "ndkperf {} server for {tool} -R{flags} {HOST_IP} (version {}): {iters} x {size} B; {tool} exit 0, its result line `{line}`",
        mode.name(),
        peer.version,
    ))
}

/// ndkperf's write_bw perftest server with its default 5 s per-step bound
/// against `ib_write_bw -R` clients running a count (`-n`) or for a set
/// time longer than the bound (`-D 7`): the server waits for the client's
/// post-traffic message as long as the traffic keeps arriving, and reports
/// what the client ran (its report's iterations, its bandwidth's time).
fn perftest_server_long(c: &Ctx<'_>) -> Outcome {
    let mut out = Vec::new();
    // `-D 7` outlasts the 5 s step bound whatever the speed (perftest
    // reports only the middle of it, past its warm-up margin); `-n 1500` is
    // checked for its count.
    for (args, iters) in [("-s 65536 -n 1500", Some(1500u64)), ("-s 65536 -D 7", None)] {
        let mut p = perftest_params(PerfMode::WriteBw, 65536, iters.unwrap_or(5000));
        p.timeout = Duration::from_secs(5);
        let t0 = Instant::now();
        let (r, log) = perftest_run(
            c,
            "ib_write_bw",
            &format!("ndkperf write_bw perftest server ({args})"),
            &format!(
                "sleep 1; ib_write_bw -R -F -d rxe0 {args} -p {PERFTEST_PORT} {HOST_IP}; echo PERFTEST_EXIT=$?"
            ),
            "perftestc.log",
            |adapter, keep| {
                let addr = SocketAddr::new(IpAddr::V4(HOST_IP), PERFTEST_PORT);
                perf::serve_perftest(adapter, addr, &p, Shape::default(), c.path_mtu, keep)
            },
        )?;
        let took = t0.elapsed();
        ensure(log.contains("PERFTEST_EXIT=0"), || {
            format!("ib_write_bw {args}:\n{}", vm::tail(&log, 15))
        })?;
        let peer = r.perftest.unwrap_or_default();
        ensure(r.leaked_objects == 0 && peer.closed, || {
            format!(
                "{} objects left, closing handshake {}",
                r.leaked_objects, peer.closed
            )
        })?;
        let secs = r.elapsed.as_secs_f64();
        match iters {
            Some(n) => {
                ensure(r.messages == n, || {
                    format!("{args}: the server reports {} messages", r.messages)
                })?;
                perftest_verdict("ib_write_bw", &log, 65536, n)?;
            }
            None => {
                ensure(r.messages > 0 && (2.0..10.0).contains(&secs), || {
                    format!(
                        "{args}: the server reports {} messages in {secs:.3} s",
                        r.messages
                    )
                })?;
                ensure(took > Duration::from_secs(7), || {
                    format!("{args}: the run took {took:?}, not past the 5 s step bound")
                })?;
            }
        }
        out.push(format!(
            "ib_write_bw -R {args}: ndkperf server (step bound 5 s) reports {} x 65536 B in {secs:.2} s; the run took {:.1} s; ib_write_bw exit 0",
            r.messages,
            took.as_secs_f64()
        ));
    }
    Ok(out.join("; "))
}

/// `tool -R -a -n 5` (perftest's every size, 2 B to 8 MiB; perftest
/// v4.5-0.17 has no option capping -a's sizes, so -n is its minimum, 5)
/// against ndkperf's server: started plainly (`-s 4096`) for write_bw,
/// whose server only exposes its buffer (sized for any perftest message:
/// the exchange announces no size), and with `-a` for send_bw, whose
/// server posts each size's receives between the per-size syncs. The
/// client exits 0 with a result line for each of the 23 sizes; ndkperf
/// counts its 5 of each (send_bw) or takes the client's last report
/// (write_bw: 5 x 8 MiB).
fn perftest_server_all(c: &Ctx<'_>, tool: &str, mode: PerfMode) -> Outcome {
    let iters = 5u64;
    let p = perftest_params(mode, 4096, iters);
    let shape = Shape {
        all: mode == PerfMode::SendBw,
        ..Shape::default()
    };
    let (r, log) = perftest_run(
        c,
        tool,
        &format!("ndkperf {} perftest server (client -a)", mode.name()),
        &format!(
            "sleep 1; {tool} -R -F -d rxe0 -a -n {iters} -p {PERFTEST_PORT} {HOST_IP}; echo PERFTEST_EXIT=$?"
        ),
        "perftestc.log",
        |adapter, keep| {
            let addr = SocketAddr::new(IpAddr::V4(HOST_IP), PERFTEST_PORT);
            perf::serve_perftest(adapter, addr, &p, shape, c.path_mtu, keep)
        },
    )?;
    ensure(log.contains("PERFTEST_EXIT=0"), || {
        format!("{tool} -R -a:\n{}", vm::tail(&log, 15))
    })?;
    let missing: Vec<u32> = (1..24)
        .map(|i| 1u32 << i)
        .filter(|&size| perftest_result_line(&log, size, iters).is_none())
        .collect();
    ensure(missing.is_empty(), || {
        format!(
            "{tool} -R -a printed no result line for sizes {missing:?}:\n{}",
            vm::tail(&log, 30)
        )
    })?;
    let peer = r.perftest.unwrap_or_default();
    let want = if mode == PerfMode::SendBw {
        23 * iters
    } else {
        iters
    };
    ensure(
        r.messages == want && r.leaked_objects == 0 && peer.closed,
        || {
            format!(
                "ndkperf {} server: {} messages (expected {want}), {} objects left, closing handshake {}",
                mode.name(),
                r.messages,
                r.leaked_objects,
                peer.closed
            )
        },
    )?;
    let last = perftest_result_line(&log, 1 << 23, iters).unwrap_or_default();
    Ok(format!(
        "{tool} -R -a -n {iters} against ndkperf {} server{}: exit 0, result lines for all 23 sizes (the last `{last}`); ndkperf counted {} messages",
        mode.name(),
        if shape.all { " -a" } else { " -s 4096" },
        r.messages
    ))
}

/// The test QP's traffic of a perftest run in the capture: every one of
/// `iters` messages from the perftest client `client` (RDMA Writes,
/// Sends; write_lat's from both sides) or its server `server` (Read
/// Responses) segmented at the path MTU (the exchange's Sends are
/// single-packet); `None` for send_lat's single-packet messages.
fn perftest_wire(
    c: &Ctx<'_>,
    mode: PerfMode,
    client: Ipv4Addr,
    server: Ipv4Addr,
    iters: u64,
) -> Result<Option<String>, String> {
    let wire = match mode {
        PerfMode::WriteBw => check_segments_op(c.cap()?, client, 6, c.path_mtu)?,
        PerfMode::ReadBw | PerfMode::ReadLat => {
            check_segments_op(c.cap()?, server, 13, c.path_mtu)?
        }
        // write_lat: each side writes every round.
        PerfMode::WriteLat => {
            let back = check_segments_op(c.cap()?, server, 6, c.path_mtu)?;
            ensure(back.contains(&format!(" {iters} First")), || {
                format!("expected {iters} RDMA Writes back on the wire: {back}")
            })?;
            format!(
                "{}; {back}",
                check_segments_op(c.cap()?, client, 6, c.path_mtu)?
            )
        }
        PerfMode::SendBw => check_segments(c.cap()?, client, c.path_mtu, iters as usize)?,
        _ => return Ok(None),
    };
    ensure(wire.contains(&format!(" {iters} First")), || {
        format!("expected {iters} messages on the wire: {wire}")
    })?;
    Ok(Some(wire))
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
            env::skip("rxe interop", &why);
            return;
        }
    };
    let t0 = Instant::now();
    // NDKRS_INTEROP_NETNS names the namespace (default ndkrs-interop): a
    // run under another name does not disturb one under way.
    let ns_name =
        std::env::var("NDKRS_INTEROP_NETNS").unwrap_or_else(|_| "ndkrs-interop".to_owned());
    let ns = Netns::create(&ns_name, 1, 1500).expect("namespace");
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
    // rping: ndkperf's rping mode against Linux rping (single-packet,
    // multi-packet and 20-packet messages at PMTU 1024).
    h.scenario("rping-ndkrs-client", |c| {
        let mut out = Vec::new();
        for (count, size) in [(5, 64), (4, 3000), (3, 20000)] {
            out.push(rping_ndkperf_client(c, count, size)?);
            c.vm.reset();
        }
        let r = check_segments_op(c.cap()?, HOST_IP, 13, 1024)?;
        let w = check_segments_op(c.cap()?, VM_IP, 6, 1024)?;
        Ok(format!(
            "{}; Read Responses {r}; RDMA Writes {w}",
            out.join("; ")
        ))
    });
    h.scenario("rping-peer-leaves", rping_peer_leaves);
    h.scenario("rping-ndkrs-server", |c| {
        let mut out = Vec::new();
        for (count, size) in [(5, 64), (4, 3000), (3, 20000)] {
            out.push(rping_ndkperf_server(c, count, size)?);
            c.vm.reset();
        }
        let r = check_segments_op(c.cap()?, VM_IP, 13, 1024)?;
        let w = check_segments_op(c.cap()?, HOST_IP, 6, 1024)?;
        Ok(format!(
            "{}; Read Responses {r}; RDMA Writes {w}",
            out.join("; ")
        ))
    });
    // perftest over rdma_cm (-R): ndkperf's client modes against Linux
    // perftest servers (multi-packet messages at the path MTU, 1024).
    for (name, tool, mode, size, iters) in [
        (
            "perftest-ndkrs-client-write-bw",
            "ib_write_bw",
            PerfMode::WriteBw,
            4096,
            200,
        ),
        (
            "perftest-ndkrs-client-read-bw",
            "ib_read_bw",
            PerfMode::ReadBw,
            4096,
            200,
        ),
        (
            "perftest-ndkrs-client-send-bw",
            "ib_send_bw",
            PerfMode::SendBw,
            4096,
            200,
        ),
        (
            "perftest-ndkrs-client-send-lat",
            "ib_send_lat",
            PerfMode::SendLat,
            64,
            100,
        ),
        (
            "perftest-ndkrs-client-write-lat",
            "ib_write_lat",
            PerfMode::WriteLat,
            3000,
            100,
        ),
        (
            "perftest-ndkrs-client-read-lat",
            "ib_read_lat",
            PerfMode::ReadLat,
            3000,
            100,
        ),
    ] {
        h.scenario(name, |c| {
            let s = perftest_ndkperf_client(c, tool, mode, size, iters)?;
            let wire = perftest_wire(c, mode, HOST_IP, VM_IP, iters)?;
            Ok(match wire {
                Some(w) => format!("{s}; on the wire {w}"),
                None => s,
            })
        });
    }
    // The other direction: Linux perftest clients against ndkperf's
    // perftest server.
    for (name, tool, mode, size, iters) in [
        (
            "perftest-ndkrs-server-write-bw",
            "ib_write_bw",
            PerfMode::WriteBw,
            4096,
            200,
        ),
        (
            "perftest-ndkrs-server-read-bw",
            "ib_read_bw",
            PerfMode::ReadBw,
            4096,
            200,
        ),
        (
            "perftest-ndkrs-server-send-bw",
            "ib_send_bw",
            PerfMode::SendBw,
            4096,
            200,
        ),
        (
            "perftest-ndkrs-server-send-lat",
            "ib_send_lat",
            PerfMode::SendLat,
            64,
            100,
        ),
        (
            "perftest-ndkrs-server-write-lat",
            "ib_write_lat",
            PerfMode::WriteLat,
            3000,
            100,
        ),
        (
            "perftest-ndkrs-server-read-lat",
            "ib_read_lat",
            PerfMode::ReadLat,
            3000,
            100,
        ),
    ] {
        h.scenario(name, |c| {
            let s = perftest_ndkperf_server(c, tool, mode, size, iters)?;
            let wire = perftest_wire(c, mode, VM_IP, HOST_IP, iters)?;
            Ok(match wire {
                Some(w) => format!("{s}; on the wire {w}"),
                None => s,
            })
        });
    }
    // perftest's -q: several test QPs, each with its traffic (both ways).
    for (name, tool, mode, qps, client) in [
        (
            "perftest-ndkrs-client-write-bw-q3",
            "ib_write_bw",
            PerfMode::WriteBw,
            3,
            true,
        ),
        (
            "perftest-ndkrs-client-send-bw-q2",
            "ib_send_bw",
            PerfMode::SendBw,
            2,
            true,
        ),
        (
            "perftest-ndkrs-server-write-bw-q3",
            "ib_write_bw",
            PerfMode::WriteBw,
            3,
            false,
        ),
        (
            "perftest-ndkrs-server-send-bw-q2",
            "ib_send_bw",
            PerfMode::SendBw,
            2,
            false,
        ),
    ] {
        h.scenario(name, |c| {
            let shape = Shape {
                qps,
                ..Shape::default()
            };
            let iters = 100;
            let (s, from, to) = if client {
                let s = perftest_client_shaped(c, tool, mode, 4096, iters, shape)?;
                (s, HOST_IP, VM_IP)
            } else {
                let s = perftest_server_shaped(c, tool, mode, 4096, iters, shape)?;
                (s, VM_IP, HOST_IP)
            };
            let total = iters * u64::from(qps);
            let wire = perftest_wire(c, mode, from, to, total)?.unwrap_or_default();
            // Every test QP carried its share: First packets to `qps`
            // distinct QPs.
            let op = if mode == PerfMode::WriteBw { 6 } else { 0 };
            let n = opcode_qps(c.cap()?, from, op)?;
            ensure(n == qps as usize, || {
                format!("the traffic from {from} went to {n} QPs, not {qps}")
            })?;
            Ok(format!("{s}; on the wire {wire}, to {n} QPs"))
        });
    }
    // perftest's -b: both sides write; ndkperf writes back (both ways).
    for (name, client) in [
        ("perftest-ndkrs-server-write-bw-bidir", false),
        ("perftest-ndkrs-client-write-bw-bidir", true),
    ] {
        h.scenario(name, |c| {
            let shape = Shape {
                duplex: true,
                ..Shape::default()
            };
            let iters = 100;
            let (s, linux) = if client {
                let s = perftest_client_shaped(
                    c,
                    "ib_write_bw",
                    PerfMode::WriteBw,
                    4096,
                    iters,
                    shape,
                )?;
                (s, VM_IP)
            } else {
                let s = perftest_server_shaped(
                    c,
                    "ib_write_bw",
                    PerfMode::WriteBw,
                    4096,
                    iters,
                    shape,
                )?;
                (s, VM_IP)
            };
            let cap = c.cap()?;
            let mut wire = Vec::new();
            for from in [HOST_IP, linux] {
                let w = check_segments_op(cap, from, 6, c.path_mtu)?;
                ensure(w.contains(&format!(" {iters} First")), || {
                    format!("expected {iters} RDMA Writes from {from}: {w}")
                })?;
                wire.push(w);
            }
            Ok(format!("{s}; on the wire {}", wire.join("; ")))
        });
    }
    // perftest's -a against ndkperf's server.
    h.scenario("perftest-ndkrs-server-write-bw-all", |c| {
        perftest_server_all(c, "ib_write_bw", PerfMode::WriteBw)
    });
    h.scenario("perftest-ndkrs-server-send-bw-all", |c| {
        perftest_server_all(c, "ib_send_bw", PerfMode::SendBw)
    });
    h.scenario("perftest-ndkrs-server-long", perftest_server_long);
    h.scenario("pmtu-link-cap", pmtu_link_cap);
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
    // The VM's link stays at 9000; ndkrs's goes back to 1500.
    match h.ns.set_mtu(1500) {
        Ok(()) => {
            h.path_mtu = 1024;
            h.scenario("pmtu-link-mismatch", pmtu_link_mismatch);
        }
        Err(e) => h.results.push((
            "pmtu-link-mismatch".into(),
            Err(format!("setting the namespace's links to MTU 1500: {e}")),
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
