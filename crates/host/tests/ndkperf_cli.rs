//! ndkperf end to end: its error paths (bad flags, no peer, a rejecting
//! peer, a port in use), every RDMA mode on loopback with small sizes, and
//! a short baseline run with JSON and pcap output. Every run is bounded by
//! the tool's own waits.

use std::net::UdpSocket;
use std::process::{Command, Output, Stdio};

fn ndkperf(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ndkperf"))
        .args(args)
        .output()
        .expect("run ndkperf")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn free_port(ip: &str) -> u16 {
    UdpSocket::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn bad_flags_are_usage_errors() {
    for args in [
        &["--size", "banana"][..],
        &["--mtu", "1500"],
        &["not_a_mode"],
        &["-n", "0"],
        &["-D", "-1"],
        &["-q", "0"],
        &["-w", "0"],
        &["--server", "--client", "127.0.0.1"],
        &["--bind", "999.1.1.1"],
        &["--baseline", "--no-baseline"],
    ] {
        let o = ndkperf(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains("error:"), "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn every_mode_runs_on_loopback_with_small_sizes() {
    for (mode, extra) in [
        ("write_bw", &["-s", "8K", "-n", "200"][..]),
        ("read_bw", &["-s", "8K", "-n", "200"]),
        ("send_bw", &["-s", "8K", "-n", "200"]),
        ("send_lat", &["-n", "100"]),
        ("write_lat", &["-n", "100"]),
        ("read_lat", &["-n", "100"]),
        ("rping", &["-n", "50", "-s", "1K"]),
        ("rperf", &["-s", "8K", "-n", "200"]),
        ("disconnect", &["-q", "50"]),
    ] {
        let mut args = vec![mode, "--no-baseline", "--json", "--quiet"];
        args.extend_from_slice(extra);
        let o = ndkperf(&args);
        assert_eq!(o.status.code(), Some(0), "{mode}: {}", stderr(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON on stdout");
        let m = &v["modes"][0];
        assert_eq!(m["mode"], mode);
        assert_eq!(m["leaked_objects"], 0, "{mode}: {m}");
        if mode == "disconnect" {
            assert_eq!(m["disconnect"]["connected"], 50, "{m}");
            assert_eq!(m["disconnect"]["failed"], 0, "{m}");
        } else {
            let want = if mode == "rping" { 50 } else { 200 };
            let want = if mode.ends_with("_lat") { 100 } else { want };
            assert_eq!(m["messages"], want, "{mode}: {m}");
            assert_eq!(m["verify_errors"], 0);
        }
    }
}

#[test]
fn a_missing_peer_is_a_clear_error() {
    // Baselines against nothing.
    let port = free_port("127.0.0.1");
    let o = ndkperf(&["--client", &format!("127.0.0.1:{port}"), "--quiet"]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(e.contains("ndkperf --server"), "{e}");
    let o = ndkperf(&["--client", "no such host"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("bad peer address"), "{}", stderr(&o));
    // An RDMA connect to nobody times out within its bound.
    let roce = free_port("127.0.0.2").to_string();
    let t0 = std::time::Instant::now();
    let o = ndkperf(&[
        "send_lat",
        "--client",
        "127.0.0.1",
        "--bind",
        "127.0.0.2",
        "--roce-port",
        &roce,
        "--no-baseline",
        "--timeout",
        "3",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("no RoCE peer answered") || e.contains("no answer from"),
        "{e}"
    );
    assert!(t0.elapsed().as_secs() < 20);
}

#[test]
fn a_rejecting_peer_is_connection_refused() {
    // In one process: the in-process server rejects.
    let o = ndkperf(&["send_lat", "-n", "10", "--no-baseline", "--reject"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("rejected the connection (REJ): STATUS_CONNECTION_REFUSED"),
        "{}",
        stderr(&o)
    );
    // Two processes: `--server --reject` and a client.
    let cm = free_port("127.0.0.1").to_string();
    let roce = free_port("127.0.0.1").to_string();
    let mut server = Command::new(env!("CARGO_BIN_EXE_ndkperf"))
        .args([
            "--server",
            "--bind",
            "127.0.0.1",
            "-p",
            &cm,
            "--roce-port",
            &roce,
            "--reject",
            "--idle-timeout",
            "10",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the server");
    let o = ndkperf(&[
        "write_lat",
        "--client",
        "127.0.0.1",
        "-p",
        &cm,
        "--roce-port",
        &roce,
        "--bind",
        "127.0.0.2",
        "--no-baseline",
        "--timeout",
        "5",
    ]);
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("STATUS_CONNECTION_REFUSED"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_port_in_use_is_a_clear_error() {
    let held = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port().to_string();
    let o = ndkperf(&["--server", "--bind", "127.0.0.1", "-p", &port]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("already in use"), "{}", stderr(&o));
    let o = ndkperf(&["write_lat", "--roce-port", &port, "--no-baseline"]);
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
        "--quiet",
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
    let bytes = std::fs::read(&pcap).expect("the pcap exists");
    assert_eq!(bytes.len(), 24, "a pcap header and no frame");
    let _ = std::fs::remove_file(&pcap);
}

#[test]
fn an_rdma_run_writes_a_pcap_of_roce_frames() {
    let pcap = std::env::temp_dir().join(format!("ndkperf-rdma-{}.pcap", std::process::id()));
    let o = ndkperf(&[
        "rping",
        "-n",
        "5",
        "--no-baseline",
        "--json",
        "--quiet",
        "--pcap",
        pcap.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON on stdout");
    let frames = v["pcap"]["roce_frames"].as_u64().unwrap();
    // CM (REQ, REP, RTU, DREQ, DREP) plus 5 x (3 Sends, a Read, a Write)
    // and their responses.
    assert!(frames >= 30, "{frames}");
    let bytes = std::fs::read(&pcap).expect("the pcap exists");
    assert!(bytes.len() > 24 + frames as usize * 40);
    let _ = std::fs::remove_file(&pcap);
}

#[test]
fn rping_across_processes_with_the_port_in_the_client_address() {
    // `--client host:port` alone names the server's CM port (no -p): the
    // rping client connects without private data, as Linux rping does,
    // and the server serves it as rping.
    let cm = free_port("127.0.0.1").to_string();
    let roce = free_port("127.0.0.1").to_string();
    let mut server = Command::new(env!("CARGO_BIN_EXE_ndkperf"))
        .args([
            "--server",
            "--bind",
            "127.0.0.1",
            "-p",
            &cm,
            "--roce-port",
            &roce,
            "--idle-timeout",
            "10",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the server");
    // The server's first line says it listens: connect only then (a
    // connect before the listener exists is rejected).
    let mut server_err = std::io::BufReader::new(server.stderr.take().expect("piped"));
    let mut first = String::new();
    let _ = std::io::BufRead::read_line(&mut server_err, &mut first);
    let o = ndkperf(&[
        "rping",
        "--client",
        &format!("127.0.0.1:{cm}"),
        "--roce-port",
        &roce,
        "--bind",
        "127.0.0.2",
        "--no-baseline",
        "-n",
        "20",
        "-s",
        "3000",
        "--mtu",
        "1024",
        "--json",
        "--quiet",
        "--timeout",
        "5",
    ]);
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON on stdout");
    let m = &v["modes"][0];
    assert_eq!(v["server"], format!("127.0.0.1:{cm}"));
    assert_eq!(m["mode"], "rping");
    assert_eq!(m["messages"], 20, "{m}");
    assert_eq!(m["verify_errors"], 0, "{m}");
}

#[test]
fn perftest_protocol_across_processes() {
    // `--server --perftest MODE` and `MODE --perftest --client`: both
    // sides speak perftest's -R protocol (its exchange over an rdma_cm
    // control connection, the test QP on the same port), as they do
    // against Linux perftest in the interop harness.
    for mode in [
        "write_bw",
        "read_bw",
        "send_bw",
        "send_lat",
        "write_lat",
        "read_lat",
    ] {
        let cm = free_port("127.0.0.1").to_string();
        let roce = free_port("127.0.0.1").to_string();
        let mut server = Command::new(env!("CARGO_BIN_EXE_ndkperf"))
            .args([
                mode,
                "--server",
                "--perftest",
                "--bind",
                "127.0.0.1",
                "-p",
                &cm,
                "--roce-port",
                &roce,
                "-s",
                "3000",
                "-n",
                "50",
                "--mtu",
                "1024",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the server");
        let mut server_err = std::io::BufReader::new(server.stderr.take().expect("piped"));
        let mut first = String::new();
        let _ = std::io::BufRead::read_line(&mut server_err, &mut first);
        assert!(first.contains("perftest"), "{first}");
        let o = ndkperf(&[
            mode,
            "--perftest",
            "--client",
            &format!("127.0.0.1:{cm}"),
            "--roce-port",
            &roce,
            "--bind",
            "127.0.0.2",
            "-s",
            "3000",
            "-n",
            "50",
            "--mtu",
            "1024",
            "--json",
            "--quiet",
        ]);
        let so = server.wait_with_output().expect("the server exits");
        assert_eq!(o.status.code(), Some(0), "{mode}: {}", stderr(&o));
        assert_eq!(so.status.code(), Some(0), "{mode} server: {}", stderr(&so));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON on stdout");
        let m = &v["modes"][0];
        assert_eq!(m["mode"], mode);
        assert_eq!(m["messages"], 50, "{m}");
        let out = String::from_utf8_lossy(&so.stdout);
        // A read_lat server only exposes its buffer: perftest tells it
        // nothing of the client's Reads.
        let n = if mode == "read_lat" { 0 } else { 50 };
        assert!(
            out.contains(&format!("{mode}: {n} messages of 3000 B served")),
            "{out}"
        );
    }
}

#[test]
fn perftest_needs_a_peer_and_a_perftest_mode() {
    let o = ndkperf(&["write_bw", "--perftest", "--no-baseline"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("--perftest needs a HOST"),
        "{}",
        stderr(&o)
    );
    let o = ndkperf(&[
        "rping",
        "--perftest",
        "--client",
        "127.0.0.1",
        "--no-baseline",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("perftest's -R servers"),
        "{}",
        stderr(&o)
    );
    let o = ndkperf(&["--server", "--perftest", "--bind", "127.0.0.1"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("needs the mode"), "{}", stderr(&o));
}

#[test]
fn a_one_gib_message_runs_in_bounded_memory() {
    // `-s 1G` with the default window once asked for 32 GiB and aborted in
    // the allocator; the window now shrinks to what 1 GiB in flight allows
    // and the slots share memory beyond a budget.
    let o = ndkperf(&[
        "write_bw",
        "-s",
        "1G",
        "-n",
        "1",
        "--no-baseline",
        "--json",
        "--quiet",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON on stdout");
    let m = &v["modes"][0];
    assert_eq!(m["messages"], 1, "{m}");
    assert_eq!(m["payload_bytes"], 1u64 << 30, "{m}");
}
