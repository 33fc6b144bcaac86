//! The README's two-host run, as written: between two network namespaces
//! joined by a veth pair at MTU 1500, `ndkperf --server` in one (every
//! local address), `ndkperf write_bw HOST` and `ndkperf send_lat HOST` in
//! the other. Each client must finish with status 0 on path MTU 1024 (the
//! largest a 1500-byte link carries), print its efficiency against the
//! same-run baseline, and the server must print a line per client.
//!
//! Needs root and iproute2 (`ip netns`); skips with the reason otherwise,
//! and fails instead where NDKRS_REQUIRE_NETNS=1 (CI).

#[path = "support/netns.rs"]
mod netns;

use std::io::Read;
use std::process::Stdio;
use std::thread::sleep;
use std::time::{Duration, Instant};

use netns::{Reaped, VethPair, ndkperf_in};

const SERVER_IP: &str = "10.77.15.1";
const CLIENT_IP: &str = "10.77.15.2";

#[test]
fn the_readme_two_host_run_works_on_a_1500_byte_link() {
    if !netns::available("the README's two-host run") {
        return;
    }
    let ns = VethPair::new("th", SERVER_IP, CLIENT_IP, 1500).expect("set up the namespaces");
    let mut server = Reaped(
        ndkperf_in(&ns.server, &["--server", "--idle-timeout", "5"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the server"),
    );
    // The server's first line says it listens.
    let mut first = [0u8; 1];
    let mut err = server.0.stderr.take().expect("piped");
    let mut line = Vec::new();
    while err.read(&mut first).unwrap_or(0) == 1 && first[0] != b'\n' {
        line.push(first[0]);
    }
    let line = String::from_utf8_lossy(&line).into_owned();
    assert!(
        line.contains(SERVER_IP),
        "the server listens on every address: {line}"
    );
    for mode in ["write_bw", "send_lat"] {
        let t0 = Instant::now();
        let o = ndkperf_in(&ns.client, &[mode, SERVER_IP])
            .output()
            .expect("run the client");
        let out = String::from_utf8_lossy(&o.stdout);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{mode}: {out}{}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(out.contains("MTU 1024"), "{mode}: {out}");
        assert!(out.contains(&format!("  {mode} ")), "{mode}: {out}");
        assert!(out.contains("efficiency"), "{mode}: {out}");
        assert!(!out.contains("MISSED"), "{mode}: {out}");
        eprintln!("{mode}: {:?}\n{out}", t0.elapsed());
        sleep(Duration::from_millis(300));
    }
    // The baselines alone, against the same server.
    let o = ndkperf_in(&ns.client, &["--baseline", SERVER_IP, "-D", "0.2"])
        .output()
        .expect("run the baselines");
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "--baseline HOST: {out}");
    assert!(out.contains("UDP goodput"), "--baseline HOST: {out}");
    // -b across the link: the server sends UDP back for the baseline and
    // serves the READs of the reverse direction.
    let o = ndkperf_in(&ns.client, &["write_bw", "-b", SERVER_IP, "-D", "0.5"])
        .output()
        .expect("run write_bw -b");
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(0),
        "write_bw -b: {out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(out.contains("UDP goodput in "), "write_bw -b: {out}");
    assert!(
        out.contains("both ways at once (same run)"),
        "write_bw -b: {out}"
    );
    // The server stops by itself once idle, with a line per client.
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = server.0.try_wait().expect("wait") {
            break s;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "the idle server did not stop"
        );
        sleep(Duration::from_millis(100));
    };
    assert!(status.success());
    let mut out = String::new();
    let _ = server
        .0
        .stdout
        .take()
        .expect("piped")
        .read_to_string(&mut out);
    for mode in ["write_bw", "send_lat"] {
        assert!(
            out.contains(&format!("client {CLIENT_IP}:")) && out.contains(mode),
            "per-client lines: {out}"
        );
    }
    // Each client's own figures, as it reported them.
    for (mode, size, what) in [
        ("write_bw", 65536, "messages in"),
        ("send_lat", 64, "round trips in"),
    ] {
        let tally = format!("client {CLIENT_IP} on {SERVER_IP} reports: {mode} {size} B: ");
        assert!(
            out.lines()
                .any(|l| l.starts_with(&tally) && l.contains(what)),
            "{tally}: {out}"
        );
    }
}

/// `ndkperf --server --perftest MODE` with no --bind serves every local
/// address, as `--server` does: a perftest client on the other host
/// reaches it at the veth address.
#[test]
fn a_perftest_server_binds_every_address() {
    if !netns::available("a perftest server on every address") {
        return;
    }
    let ns = VethPair::new("tp", SERVER_IP, CLIENT_IP, 1500).expect("set up the namespaces");
    let mut server = Reaped(
        ndkperf_in(
            &ns.server,
            &["send_lat", "--server", "--perftest", "-n", "50", "-s", "64"],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the server"),
    );
    let mut err = server.0.stderr.take().expect("piped");
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while err.read(&mut b).unwrap_or(0) == 1 && b[0] != b'\n' {
        line.push(b[0]);
    }
    let line = String::from_utf8_lossy(&line).into_owned();
    assert!(
        line.contains(SERVER_IP) && line.contains("127.0.0.1"),
        "{line}"
    );
    let o = ndkperf_in(
        &ns.client,
        &[
            "send_lat",
            "--perftest",
            SERVER_IP,
            "-n",
            "50",
            "-s",
            "64",
            "--no-baseline",
        ],
    )
    .output()
    .expect("run the client");
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = server.0.try_wait().expect("wait") {
            break s;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "the server did not end"
        );
        sleep(Duration::from_millis(100));
    };
    let mut out = String::new();
    let _ = server
        .0
        .stdout
        .take()
        .expect("piped")
        .read_to_string(&mut out);
    assert!(status.success(), "{out}");
    assert!(
        out.contains("send_lat: 50 messages of 64 B served"),
        "{out}"
    );
}

/// A baseline to an address this host has no route to says "network
/// unreachable", not "connection refused" (no default route in the
/// namespace: connect() fails with ENETUNREACH).
#[test]
fn a_baseline_to_an_unroutable_network_says_so() {
    if !netns::available("a baseline to an unroutable network") {
        return;
    }
    let ns = VethPair::new("tu", SERVER_IP, CLIENT_IP, 1500).expect("set up the namespaces");
    let o = ndkperf_in(&ns.client, &["--baseline", "-c", "10.99.77.1"])
        .output()
        .expect("run");
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(e.contains("network unreachable"), "{e}");
    assert!(!e.contains("refused"), "{e}");
    assert_eq!(e.trim_end().lines().count(), 1, "{e}");
}
