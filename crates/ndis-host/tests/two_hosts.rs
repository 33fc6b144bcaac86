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
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
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

/// The child's output lines, read on a thread of their own so that a hung
/// child never blocks the test: it waits on the channel with a deadline.
fn lines_of(c: &mut Child) -> Receiver<String> {
    let out = c.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    rx
}

/// Lines from `rx` until `stop` says so, the output ends, or `deadline`
/// passes; the lines and whether `stop` or the end came in time.
fn read_until(
    rx: &Receiver<String>,
    deadline: Instant,
    mut stop: impl FnMut(&str) -> bool,
) -> (Vec<String>, bool) {
    let mut lines = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) => {
                let done = stop(&l);
                lines.push(l);
                if done {
                    return (lines, true);
                }
            }
            Err(RecvTimeoutError::Disconnected) => return (lines, true),
            Err(RecvTimeoutError::Timeout) => return (lines, false),
        }
    }
}

/// The child's exit by `deadline`, killing it if it is late (`None`).
fn exit_by(c: &mut Child, deadline: Instant) -> Option<ExitStatus> {
    loop {
        if let Some(s) = c.try_wait().expect("wait") {
            return Some(s);
        }
        if Instant::now() >= deadline {
            let _ = c.kill();
            let _ = c.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Reads the rest of the child's output and waits for its exit, both
/// within `BOUND`; whether it said `RESULT ok` and exited 0.
fn finish(c: &mut Child, rx: &Receiver<String>, name: &str) -> bool {
    let deadline = Instant::now() + BOUND;
    let (lines, in_time) = read_until(rx, deadline, |_| false);
    let status = exit_by(c, deadline);
    let ok =
        in_time && status.is_some_and(|s| s.success()) && lines.iter().any(|l| l == "RESULT ok");
    eprintln!(
        "{name}: {status:?}{}\n  {}",
        if in_time {
            ""
        } else {
            " (killed: no end of output within the bound)"
        },
        lines.join("\n  ")
    );
    ok
}

#[test]
fn smb_direct_between_two_emulated_windows_hosts_with_tcpip_alongside() {
    let t0 = Instant::now();
    let (p0, p1) = (47_910, 47_911);
    let mut server = spawn("server", 0, p0, p1);
    let server_out = lines_of(&mut server);
    // The client starts once the server listens.
    let (head, _) = read_until(&server_out, Instant::now() + BOUND, |l| {
        l == "READY" || l.starts_with("RESULT")
    });
    for l in &head {
        eprintln!("server: {l}");
    }
    let ready = head.iter().any(|l| l == "READY");
    if !ready {
        let _ = exit_by(&mut server, Instant::now());
        panic!("the server host never listened within {BOUND:?}");
    }
    let mut client = spawn("client", 1, p1, p0);
    let client_out = lines_of(&mut client);
    let client_ok = finish(&mut client, &client_out, "client");
    let server_ok = finish(&mut server, &server_out, "server");
    assert!(client_ok, "the client host failed");
    assert!(server_ok, "the server host failed");
    eprintln!("two hosts in {:?}", t0.elapsed());
}

#[test]
fn a_hung_child_is_killed_at_the_bound_not_waited_for() {
    // A child that speaks, then hangs with its stdout open.
    let mut c = Command::new("sh")
        .args(["-c", "echo hi; exec sleep 600"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawning sh");
    let rx = lines_of(&mut c);
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_millis(500);
    let (lines, in_time) = read_until(&rx, deadline, |_| false);
    assert_eq!(lines, ["hi"]);
    assert!(!in_time, "the output of a hung child cannot have ended");
    assert_eq!(exit_by(&mut c, deadline), None, "killed, not exited");
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
}
