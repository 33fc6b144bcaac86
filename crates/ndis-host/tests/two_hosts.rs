//! Two emulated Windows hosts, each the real shell under the NDIS host in
//! its own process (the shell keeps its state in statics, one driver image
//! per kernel), their emulated NICs joined by UDP on loopback carrying
//! Ethernet frames. The SMB Direct server of crates/interop serves on one
//! host's NDK adapter, the client on the other's moves a file of 1 MiB and
//! a bit both ways through the RDMA channel (NdkRead and NdkWrite by the
//! server), while TCP/IP-like frames cross both filters in both
//! directions. Each host checks the NDIS contract, its completions and its
//! teardown, and reports `RESULT ok`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const NODE: &str = env!("CARGO_BIN_EXE_ndis-host-node");
const BOUND: Duration = Duration::from_secs(120);

fn spawn(role: &str, index: u8, port: u16, peer: u16) -> Child {
    Command::new(NODE)
        .args([
            role,
            &index.to_string(),
            &port.to_string(),
            &peer.to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawning ndis-host-node")
}

/// Reads the child's output until it exits (bounded); its lines and
/// whether it said `RESULT ok` and exited 0.
fn finish(mut c: Child, name: &str) -> (bool, Vec<String>) {
    let out = c.stdout.take().expect("stdout");
    let lines: Vec<String> = BufReader::new(out).lines().map_while(Result::ok).collect();
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = c.try_wait().expect("wait") {
            break Some(s);
        }
        if t0.elapsed() > BOUND {
            let _ = c.kill();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let ok = status.is_some_and(|s| s.success()) && lines.iter().any(|l| l == "RESULT ok");
    eprintln!("{name}: {status:?}\n  {}", lines.join("\n  "));
    (ok, lines)
}

#[test]
fn smb_direct_between_two_emulated_windows_hosts_with_tcpip_alongside() {
    let t0 = Instant::now();
    let (p0, p1) = (47_910, 47_911);
    let mut server = spawn("server", 0, p0, p1);
    // The client starts once the server listens.
    let out = server.stdout.take().expect("stdout");
    let mut reader = BufReader::new(out);
    let mut line = String::new();
    let mut ready = false;
    while reader.read_line(&mut line).unwrap_or(0) > 0 {
        eprintln!("server: {}", line.trim_end());
        if line.trim_end() == "READY" {
            ready = true;
            break;
        }
        if line.starts_with("RESULT") {
            break;
        }
        line.clear();
    }
    server.stdout = None;
    let client = spawn("client", 1, p1, p0);
    let (client_ok, _) = finish(client, "client");
    let rest: Vec<String> = reader.lines().map_while(Result::ok).collect();
    let status = server.wait().expect("server exit");
    eprintln!("server: {status:?}\n  {}", rest.join("\n  "));
    assert!(ready, "the server host never listened");
    assert!(client_ok, "the client host failed");
    assert!(
        status.success() && rest.iter().any(|l| l == "RESULT ok"),
        "the server host failed"
    );
    eprintln!("two hosts in {:?}", t0.elapsed());
}
