//! A restarted peer connects at once: over real UDP sockets between two
//! network namespaces, an `ndkperf` client is killed with SIGKILL in the
//! middle of a run, and a new client from the same address connects to
//! the same server within the bound. The server still holds the dead
//! client's connection; only a fresh identity on the wire (CA GUID, QPN,
//! comm ID, PSNs from entropy, `host::adapter::Seed::Entropy`) keeps it
//! from taking the new REQ for a stale duplicate (docs/disconnect.md).
//!
//! Needs root and iproute2 (`ip netns`). Where they are missing the test
//! prints why and passes, unless NDKRS_REQUIRE_NETNS=1 (CI), which turns
//! the skip into a failure.

#[path = "support/netns.rs"]
mod netns;

use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use netns::{Reaped, VethPair, ndkperf_in};

const SERVER_IP: &str = "10.77.14.1";
const CLIENT_IP: &str = "10.77.14.2";
/// A new client's connect must complete within this (ndkperf --timeout).
const CONNECT_BOUND_SECS: &str = "2";

fn client(ns: &str, mode: &str, extra: &[&str]) -> Command {
    let mut args = vec![
        mode,
        "--client",
        SERVER_IP,
        "--bind",
        CLIENT_IP,
        "--no-baseline",
        "--quiet",
        "--timeout",
        CONNECT_BOUND_SECS,
    ];
    args.extend_from_slice(extra);
    ndkperf_in(ns, &args)
}

#[test]
fn a_client_killed_mid_run_is_replaced_at_once_from_the_same_address() {
    if !netns::available("the restarted-peer test") {
        return;
    }
    let ns = VethPair::new("rs", SERVER_IP, CLIENT_IP, 1500).expect("set up the namespaces");
    let _server = Reaped(
        ndkperf_in(
            &ns.server,
            &[
                "--server",
                "--bind",
                SERVER_IP,
                "--idle-timeout",
                "120",
                "--quiet",
            ],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the server"),
    );
    // The server listens once its baseline socket answers; give it a
    // moment, then check the first client gets going.
    sleep(Duration::from_millis(500));

    // A client in the middle of a long run, then SIGKILL (Child::kill).
    let mut first = Reaped(
        client(&ns.client, "write_bw", &["-D", "30", "-s", "64K"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the first client"),
    );
    sleep(Duration::from_secs(3));
    assert!(
        first.0.try_wait().unwrap().is_none(),
        "the first client ended before it was killed"
    );
    first.0.kill().unwrap();
    first.0.wait().unwrap();

    // A new client from the same address, at once: it must connect within
    // the bound (ndkperf fails the run if a connect takes longer) and
    // finish a short exchange.
    for round in 0..3 {
        let start = Instant::now();
        let o = client(&ns.client, "send_lat", &["-n", "200", "--json"])
            .output()
            .expect("run the new client");
        let took = start.elapsed();
        assert_eq!(
            o.status.code(),
            Some(0),
            "round {round}: the restarted client failed after {took:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let v: serde_json::Value =
            serde_json::from_slice(&o.stdout).expect("JSON from the restarted client");
        assert_eq!(v["modes"][0]["messages"], 200, "round {round}: {v}");
        eprintln!("round {round}: restarted client connected and finished in {took:?}");
        assert!(took < Duration::from_secs(5), "round {round}: {took:?}");
    }
}
