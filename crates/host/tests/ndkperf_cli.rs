//! ndkperf end to end: its error paths (bad flags, a mode not built yet,
//! no peer, a port in use) and a short baseline run with JSON and pcap
//! output. Every run is bounded by the tool's own waits.

use std::net::UdpSocket;
use std::process::{Command, Output};

fn ndkperf(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ndkperf"))
        .args(args)
        .output()
        .expect("run ndkperf")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn bad_flags_are_usage_errors() {
    for args in [
        &["--size", "banana"][..],
        &["--mtu", "1500"],
        &["not_a_mode"],
        &["-n", "0"],
        &["-D", "-1"],
        &["--server", "--client", "127.0.0.1"],
        &["--bind", "999.1.1.1"],
    ] {
        let o = ndkperf(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains("error:"), "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn rdma_modes_say_they_are_not_built_yet() {
    for mode in ["write_bw", "read_lat", "rping", "disconnect"] {
        let o = ndkperf(&[mode, "-s", "4K", "-n", "10"]);
        assert_eq!(o.status.code(), Some(3), "{mode}");
        let e = stderr(&o);
        assert!(e.contains("needs the NDK dispatch layer"), "{e}");
        assert!(o.stdout.is_empty(), "no figure is reported");
    }
}

#[test]
fn a_missing_peer_is_a_clear_error() {
    let port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let o = ndkperf(&["--client", &format!("127.0.0.1:{port}"), "-q"]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(e.contains("ndkperf --server"), "{e}");
    let o = ndkperf(&["--client", "no such host"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("bad peer address"), "{}", stderr(&o));
}

#[test]
fn a_port_in_use_is_a_clear_error() {
    let held = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port().to_string();
    let o = ndkperf(&["--server", "--bind", "127.0.0.1", "-p", &port]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("already in use"), "{}", stderr(&o));
}

#[test]
fn baselines_print_json_and_write_a_pcap() {
    let pcap = std::env::temp_dir().join(format!("ndkperf-cli-{}.pcap", std::process::id()));
    let o = ndkperf(&[
        "--baseline",
        "-D",
        "0.05",
        "-n",
        "200",
        "-s",
        "4K",
        "--json",
        "-q",
        "--pcap",
        pcap.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON on stdout");
    let b = &v["baselines"];
    assert_eq!(b["udp_goodput"]["datagram_bytes"], 4096 + 16);
    assert!(b["udp_goodput"]["received"].as_u64().unwrap() > 0);
    assert!(b["udp_ping_pong"]["pings"].as_u64().unwrap() > 0);
    assert!(b["memcpy"]["bytes_per_sec"].as_f64().unwrap() > 0.0);
    assert_eq!(v["modes_not_available"].as_array().unwrap().len(), 9);
    let bytes = std::fs::read(&pcap).expect("the pcap exists");
    assert_eq!(bytes.len(), 24, "a pcap header and no frame");
    let _ = std::fs::remove_file(&pcap);
}
