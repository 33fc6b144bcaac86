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
use interop::smb_scenario::ensure;
use interop::vm::{self, Capture, HOST_IP, Netns, RpingEnd, Vm};
use ndkpi::*;
use roce::cm::CmConfig;

#[path = "rxe/cm.rs"]
mod cm;
#[path = "rxe/perftest.rs"]
mod perftest;
#[path = "rxe/rping.rs"]
mod rping;

use cm::*;
use perftest::*;
use rping::*;

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
        let outcome = vm::caught(|| f(&ctx));
        let path = cap.map(Capture::stop);
        let dt = start.elapsed();
        match &outcome {
            Ok(s) => println!("    PASS ({:.1} s): {s}", dt.as_secs_f64()),
            Err(e) => println!("    FAIL ({:.1} s): {e}", dt.as_secs_f64()),
        }
        self.results.push((name.to_owned(), outcome, dt, path));
    }
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
    for &(suffix, tool, mode, size, iters) in PERFTEST_MODES {
        let name = format!("perftest-ndkrs-client-{suffix}");
        h.scenario(&name, |c| {
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
    for &(suffix, tool, mode, size, iters) in PERFTEST_MODES {
        let name = format!("perftest-ndkrs-server-{suffix}");
        h.scenario(&name, |c| {
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
