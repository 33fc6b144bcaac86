//! The emulated Windows host against real Linux traffic: the real shell
//! under the NDIS host (src/bin/ndis-host-tap.rs, one process), its
//! emulated NIC's wire the TAP device `tap1` on the bridge of the interop
//! harness's network namespace (tests/interop/), at 10.9.0.3 with the NIC's
//! MAC; the Linux rxe VM (10.9.0.2) on `tap0`. Nothing is configured
//! about each other: the VM finds the Windows host by ARP, which the
//! emulated adapter's IP stack answers through the shell's filter, and the
//! shell resolves the VM with ResolveIpNetEntry2, which asks by ARP.
//!
//! Scenarios, each with a capture of RoCEv2 and ARP on `tap1`
//! (`$NDKRS_INTEROP_DIR/run/tap-<name>.pcap`):
//! * `tap-rping-client`: ndkperf's rping mode through the shell's NDK
//!   tables against `rping -s -V` (5 x 64 B, 4 x 3000 B, 3 x 20000 B): Linux RDMA-Reads
//!   the shell's memory and RDMA-Writes into it, both verify;
//! * `tap-rping-server`: ndkperf's server on the shell against `rping -c
//!   -V` (the same sizes);
//! * `tap-ksmbd` (with NDKRS_INTEROP_KSMBD=1, the VM booted from
//!   setup-ksmbd.sh's image): the SMB Direct client through the shell
//!   writes a 1,060,921-byte file with RDMA-channel WRITEs and reads it
//!   back with READs, then again over fast-register MRs with remote
//!   invalidation; both files' sha256 checked in the VM.
//!
//! The capture checks: every RoCEv2 packet from 10.9.0.3 carries the NIC's
//! MAC, the RDMA opcodes each scenario needs are there each way, and the
//! ARP exchange in both directions is on the wire.
//!
//! Opt-in, as the other VM tests: NDKRS_INTEROP=1 as root after
//! tests/interop/setup.sh (`tests/interop/run.sh` does it, as CI does);
//! otherwise it says why it skips.

use std::io::{BufRead, BufReader};
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use interop::env::{self, Env};
use interop::smb_scenario::{ensure, file_byte};
use interop::vm::{self, Capture, Netns, RpingEnd, Vm};

const NODE: &str = env!("CARGO_BIN_EXE_ndis-host-tap");
const VM_IP: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 2);
const VM_MAC: &str = "52:54:00:00:00:02";
const WIN_IP: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 3);
const WIN_NIC_IP: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 4);
const WIN_MAC: &str = "02:00:5e:10:00:03";
const TAP: &str = "tap1";
const RPING_PORT: u16 = 7174;
const T: Duration = Duration::from_secs(60);
/// The node's whole run: bring-up, the role, teardown.
const NODE_BOUND: Duration = Duration::from_secs(240);
/// 1 MiB and a bit, so the last transfer is a partial one.
const LEN: usize = (1 << 20) + 12_345;
const SIZES: [(u32, u32); 3] = [(5, 64), (4, 3000), (3, 20000)];

type Outcome = Result<String, String>;

/// The emulated Windows host's process: killed if still running when
/// dropped (a failed scenario leaves nothing behind).
struct Node {
    child: Child,
    out: Receiver<String>,
    lines: Vec<String>,
}

impl Node {
    fn spawn(ns: &Netns, role_args: &[String]) -> Result<Node, String> {
        let mut child = ns
            .exec(NODE)
            .args([TAP, &WIN_IP.to_string(), &WIN_NIC_IP.to_string(), WIN_MAC])
            .args(role_args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("spawning {NODE}: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (tx, out) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        Ok(Node {
            child,
            out,
            lines: Vec::new(),
        })
    }

    /// Reads lines until one satisfies `stop` (true), the output ends or
    /// `deadline` passes (false).
    fn until(&mut self, deadline: Instant, stop: impl Fn(&str) -> bool) -> bool {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.out.recv_timeout(left) {
                Ok(l) => {
                    let done = stop(&l);
                    self.lines.push(l);
                    if done {
                        return true;
                    }
                }
                Err(RecvTimeoutError::Disconnected | RecvTimeoutError::Timeout) => return false,
            }
        }
    }

    /// The node's report: its REPORT lines if it ended with `RESULT ok`
    /// and exit 0 within the bound, else everything it said.
    fn finish(mut self, started: Instant) -> Outcome {
        let deadline = started + NODE_BOUND;
        self.until(deadline, |l| l.starts_with("RESULT"));
        let status = loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                break Some(s);
            }
            if Instant::now() >= deadline {
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let ok = status.is_some_and(|s| s.success()) && self.lines.iter().any(|l| l == "RESULT ok");
        if ok {
            Ok(self
                .lines
                .iter()
                .filter_map(|l| l.strip_prefix("REPORT "))
                .collect::<Vec<_>>()
                .join("; "))
        } else {
            Err(format!(
                "the emulated Windows host: {}\n    {}",
                status.map_or("killed at its bound".to_owned(), |s| s.to_string()),
                self.lines.join("\n    ")
            ))
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

struct Harness {
    env: Env,
    ns: Netns,
    vm: Vm,
    results: Vec<(String, Outcome, Duration)>,
}

impl Harness {
    fn scenario(&mut self, name: &str, f: impl FnOnce(&Harness, Option<&Path>) -> Outcome) {
        if let Ok(only) = std::env::var("NDKRS_INTEROP_ONLY")
            && !only.split(',').any(|o| name.contains(o))
        {
            return;
        }
        println!("--- {name}");
        self.vm.reset();
        // The VM forgets the Windows host: every scenario resolves it anew.
        let _ = self
            .vm
            .run(&format!("ip neigh flush {WIN_IP}"), Duration::from_secs(10));
        let path = self.env.work.join(format!("{name}.pcap"));
        let cap = self.env.capture_tool.and_then(|tool| {
            Capture::start_on(&self.ns, tool, &path, TAP, "udp port 4791 or arp").ok()
        });
        let t0 = Instant::now();
        let have = cap.is_some().then_some(path.as_path());
        let outcome = vm::caught(|| f(self, have));
        let dt = t0.elapsed();
        let captured = cap.map(Capture::stop);
        let outcome = match (outcome, captured) {
            (Ok(s), Some(p)) if self.env.tshark => {
                let checks = match name {
                    "tap-rping-client" => {
                        wire_checks(&p, &[(WIN_IP, &[13, 14, 15, 16]), (VM_IP, &[6, 7, 8, 10])])
                    }
                    "tap-rping-server" => {
                        wire_checks(&p, &[(WIN_IP, &[6, 7, 8, 10]), (VM_IP, &[13, 14, 15, 16])])
                    }
                    _ => wire_checks(
                        &p,
                        &[
                            (VM_IP, &[12]),
                            (WIN_IP, &[13, 14, 15, 16]),
                            (VM_IP, &[6, 7, 8, 10]),
                        ],
                    ),
                };
                checks.map(|c| format!("{s}; capture {}: {c}", p.display()))
            }
            (Ok(s), _) => Ok(format!(
                "{s}; no capture tool or tshark: capture checks skipped"
            )),
            (Err(e), _) => Err(e),
        };
        match &outcome {
            Ok(s) => println!("    PASS ({:.1} s): {s}", dt.as_secs_f64()),
            Err(e) => println!("    FAIL ({:.1} s): {e}", dt.as_secs_f64()),
        }
        self.results.push((name.to_owned(), outcome, dt));
    }
}

/// What the capture must show: RoCEv2 packets from the Windows host, each
/// with the NIC's MAC; for each (source, opcodes) some packets from that
/// source with one of those BTH opcodes; ARP both ways between the VM and
/// the Windows host (a request from each side, answered).
fn wire_checks(p: &Path, want: &[(Ipv4Addr, &[u32])]) -> Result<String, String> {
    let from_win = vm::fields(
        p,
        &format!("ip.src=={WIN_IP} && udp.dstport==4791"),
        &["eth.src"],
    )?;
    ensure(!from_win.is_empty(), || {
        "no RoCEv2 packet from the Windows host".into()
    })?;
    let bad: Vec<_> = from_win
        .iter()
        .filter(|r| r.first().map(String::as_str) != Some(WIN_MAC))
        .collect();
    ensure(bad.is_empty(), || {
        format!(
            "{} packet(s) from {WIN_IP} not from the NIC's MAC: {:?}",
            bad.len(),
            bad.first()
        )
    })?;
    let mut out = vec![format!(
        "{} RoCEv2 packets from {WIN_IP}, all from {WIN_MAC}",
        from_win.len()
    )];
    for (src, ops) in want {
        let filter = ops
            .iter()
            .map(|o| format!("infiniband.bth.opcode=={o}"))
            .collect::<Vec<_>>()
            .join(" || ");
        let n = vm::fields(
            p,
            &format!("ip.src=={src} && ({filter})"),
            &["frame.number"],
        )?
        .len();
        ensure(n > 0, || {
            format!("no packet from {src} with BTH opcode in {ops:?}")
        })?;
        out.push(format!("{n} from {src} with opcode in {ops:?}"));
    }
    // ARP: the VM asks for the Windows host and is answered from the NIC's
    // MAC; the Windows host asks for the VM (ResolveIpNetEntry2).
    let arp = |op: u32, spa: Ipv4Addr, tpa: Ipv4Addr| {
        vm::fields(
            p,
            &format!("arp.opcode=={op} && arp.src.proto_ipv4=={spa} && arp.dst.proto_ipv4=={tpa}"),
            &["arp.src.hw_mac"],
        )
    };
    let vm_asks = arp(1, VM_IP, WIN_IP)?;
    let win_answers = arp(2, WIN_IP, VM_IP)?;
    let win_asks = arp(1, WIN_IP, VM_IP)?;
    let vm_answers = arp(2, VM_IP, WIN_IP)?;
    ensure(
        win_answers
            .iter()
            .all(|r| r.first().map(String::as_str) == Some(WIN_MAC)),
        || format!("ARP replies for {WIN_IP} not with the NIC's MAC: {win_answers:?}"),
    )?;
    ensure(!win_asks.is_empty() && !vm_answers.is_empty(), || {
        format!(
            "ARP: the Windows host asked for the VM {} time(s), answered {} time(s)",
            win_asks.len(),
            vm_answers.len()
        )
    })?;
    // The VM may have learned the Windows host from its request (Linux
    // creates an entry for the sender of a request for its own address),
    // so its own request is not required; if it asked, it was answered.
    ensure(vm_asks.is_empty() || !win_answers.is_empty(), || {
        format!(
            "the VM asked for {WIN_IP} {} time(s), never answered",
            vm_asks.len()
        )
    })?;
    out.push(format!(
        "ARP: Windows host asked {} time(s), VM answered {}; VM asked {} time(s), Windows host answered {} (from {WIN_MAC})",
        win_asks.len(),
        vm_answers.len(),
        vm_asks.len(),
        win_answers.len()
    ));
    Ok(out.join(", "))
}

fn rping_client(h: &Harness, count: u32, size: u32) -> Outcome {
    let v = if size <= 64 { " -v" } else { "" };
    h.vm.spawn(
        &format!("rping -s -V{v} -C {count} -S {size} -p {RPING_PORT}; echo RPING_EXIT=$?"),
        "rping.log",
    )?;
    h.vm.wait_listen(RPING_PORT, T)?;
    let t0 = Instant::now();
    let node = Node::spawn(
        &h.ns,
        &[
            "rping-client".into(),
            VM_IP.to_string(),
            RPING_PORT.to_string(),
            count.to_string(),
            size.to_string(),
        ],
    )?;
    let report = node.finish(t0)?;
    let log = h.vm.wait_log("rping.log", "RPING_EXIT=", T)?;
    ensure(
        log.contains("RPING_EXIT=0") && !log.contains("mismatch"),
        || format!("rping -s:\n{}", vm::tail(&log, 10)),
    )?;
    let last = format!("rdma-ping-{}: ", count - 1);
    ensure(v.is_empty() || log.contains(&last), || {
        format!("rping -s -v never showed `{last}`:\n{}", vm::tail(&log, 10))
    })?;
    Ok(format!("{report}; rping -s -V exit 0"))
}

fn rping_server(h: &Harness, count: u32, size: u32) -> Outcome {
    let t0 = Instant::now();
    let mut node = Node::spawn(
        &h.ns,
        &[
            "rping-server".into(),
            RPING_PORT.to_string(),
            count.to_string(),
        ],
    )?;
    if !node.until(t0 + NODE_BOUND, |l| l == "READY" || l.starts_with("RESULT")) {
        return node
            .finish(t0)
            .and(Err("the Windows host never listened".into()));
    }
    let v = if size <= 64 { " -v" } else { "" };
    let log = h
        .vm
        .spawn(
            &format!("rping -c -V{v} -a {WIN_IP} -C {count} -S {size} -p {RPING_PORT}; echo RPING_EXIT=$?"),
            "rpingc.log",
        )
        .and_then(|()| h.vm.wait_log("rpingc.log", "RPING_EXIT=", T));
    let report = node.finish(t0)?;
    let log = log?;
    // As tests/rxe/rping.rs: rping's exit 255 from its own teardown race
    // (rdma_get_cm_event on its destroyed channel) after every ping was
    // verified is the one other clean ending (vm::rping_end).
    let end = vm::rping_end(&log);
    ensure(end.is_some(), || {
        format!("rping -c:\n{}", vm::tail(&log, 10))
    })?;
    let last = format!("rdma-ping-{}: ", count - 1);
    ensure(v.is_empty() || log.contains(&last), || {
        format!("rping -c -v never showed `{last}`:\n{}", vm::tail(&log, 10))
    })?;
    Ok(format!(
        "{report}; rping -c -V {}",
        if end == Some(RpingEnd::TeardownRace) {
            "exit 255 (its own teardown race, all pings verified)"
        } else {
            "exit 0"
        }
    ))
}

fn ksmbd(h: &Harness, user: &str, pass: &str) -> Outcome {
    let up = h.vm.run("sh /ksmbd-start", Duration::from_secs(90))?;
    ensure(up.text.contains("KSMBD_UP"), || {
        format!("ksmbd did not start:\n{}", up.text)
    })?;
    let name = "tap-smbd.bin";
    let t0 = Instant::now();
    let node = Node::spawn(
        &h.ns,
        &[
            "smb-client".into(),
            VM_IP.to_string(),
            user.into(),
            pass.into(),
            name.into(),
            LEN.to_string(),
        ],
    )?;
    let report = node.finish(t0);
    let report = match report {
        Ok(r) => r,
        Err(e) => {
            let dmesg =
                h.vm.run(
                    "dmesg | grep -i -E 'ksmbd|smb_direct' | tail -n 20",
                    Duration::from_secs(10),
                )
                .map(|o| o.text)
                .unwrap_or_default();
            return Err(format!("{e}\n  VM dmesg (ksmbd):\n{dmesg}"));
        }
    };
    let data: Vec<u8> = (0..LEN).map(file_byte).collect();
    let data2: Vec<u8> = data.iter().map(|b| b ^ 0xA5).collect();
    let mut sums = Vec::new();
    for (file, d) in [(name.to_owned(), &data), (format!("{name}.frmr"), &data2)] {
        let want = vm::sha256_on_host(d, &h.env.work.join("tap-expected.bin"))?;
        let (size, sum) = h.vm.size_and_sha256(&format!("/srv/share/{file}"))?;
        ensure(size == LEN.to_string() && sum == want, || {
            format!("in the VM: /srv/share/{file} size {size} sha256 {sum}; want {LEN} {want}")
        })?;
        sums.push(format!(
            "/srv/share/{file} {size} bytes sha256 {sum} (matches)"
        ));
    }
    let _ = h.vm.run("ksmbd.control -s", Duration::from_secs(30));
    Ok(format!("{report}; in the VM: {}", sums.join(", ")))
}

#[test]
fn emulated_windows_host_against_linux_rxe_over_tap() {
    if !env::requested() {
        println!(
            "tap interop: SKIP: set NDKRS_INTEROP=1 to boot the Linux rxe VM (tests/interop/run.sh does, as CI does)"
        );
        return;
    }
    let mut e = match env::detect() {
        Ok(e) => e,
        Err(why) => {
            env::skip("tap interop", &why);
            return;
        }
    };
    // With NDKRS_INTEROP_KSMBD=1 the VM boots from the ksmbd image (the
    // base image and ksmbd), so all three scenarios share one VM.
    let mut smb: Option<(String, String)> = None;
    if std::env::var("NDKRS_INTEROP_KSMBD").as_deref() == Ok("1") {
        match env::ksmbd() {
            Ok(k) => {
                if k.initrd.exists() {
                    e.initrd = k.initrd;
                    smb = Some((k.user, k.password));
                } else {
                    env::skip(
                        "tap interop (ksmbd)",
                        &format!(
                            "{} missing (run tests/interop/setup-ksmbd.sh)",
                            k.initrd.display()
                        ),
                    );
                }
            }
            Err(why) => env::skip("tap interop (ksmbd)", &why),
        }
    } else {
        println!(
            "tap interop: the ksmbd scenario is skipped: set NDKRS_INTEROP_KSMBD=1 (tests/interop/run.sh --ksmbd)"
        );
    }
    let t0 = Instant::now();
    // A namespace of its own (tap0: the VM, tap1: the emulated Windows
    // host), so it never disturbs a run of tests/rxe.rs or tests/ksmbd.rs.
    let ns = Netns::create("ndkrs-tap", 2, 1500).expect("namespace");
    ns.enter().expect("entering the namespace");
    let vm = Vm::boot(
        &e,
        &ns,
        "tap-rxe",
        "tap0",
        VM_MAC,
        VM_IP,
        1500,
        Duration::from_secs(180),
        Duration::from_secs(1200),
    )
    .expect("booting the rxe VM");
    println!("VM up in {:.1} s", t0.elapsed().as_secs_f64());
    let mut h = Harness {
        env: e,
        ns,
        vm,
        results: Vec::new(),
    };
    h.scenario("tap-rping-client", |h, _| {
        let mut out = Vec::new();
        for (count, size) in SIZES {
            out.push(format!(
                "{count} x {size} B: {}",
                rping_client(h, count, size)?
            ));
            h.vm.reset();
        }
        Ok(out.join(" | "))
    });
    h.scenario("tap-rping-server", |h, _| {
        let mut out = Vec::new();
        for (count, size) in SIZES {
            out.push(format!(
                "{count} x {size} B: {}",
                rping_server(h, count, size)?
            ));
            h.vm.reset();
        }
        Ok(out.join(" | "))
    });
    if let Some((user, pass)) = &smb {
        h.scenario("tap-ksmbd", |h, _| ksmbd(h, user, pass));
    }

    println!(
        "\n=== tap interop results ({:.0} s in all)",
        t0.elapsed().as_secs_f64()
    );
    let mut failed = 0;
    for (name, outcome, dt) in &h.results {
        match outcome {
            Ok(s) => println!("PASS {name} ({:.1} s): {s}", dt.as_secs_f64()),
            Err(e) => {
                failed += 1;
                println!("FAIL {name} ({:.1} s): {e}", dt.as_secs_f64());
            }
        }
    }
    if failed > 0 {
        println!("VM console (tail):\n{}", vm::tail(&h.vm.console(), 30));
    }
    assert!(
        !h.results.is_empty() || std::env::var_os("NDKRS_INTEROP_ONLY").is_some(),
        "no scenario ran"
    );
    assert_eq!(failed, 0, "{failed} tap interop scenarios failed");
}
