//! ndksmb as a user runs it: the binary, its exit status, its words.
//!
//! - an invalid `--mtu` and `put` of a directory fail at once, in one line,
//!   before anything goes on the wire;
//! - a peer that does not answer fails within a few seconds, naming
//!   STATUS_IO_TIMEOUT and what to check; a server with nothing on the
//!   asked port fails with STATUS_CONNECTION_REFUSED;
//! - `ndksmb serve` on one loopback address and `ndksmb --udp put/get` on
//!   another copy a file there and back byte for byte, the session printed
//!   in words, and the share saved into `serve --dir`.
//!
//! Loopback only (127.0.77.x), no root: every adapter is a UDP socket on
//! port 4791 of its own loopback address.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_ndksmb");
const PASSWORD: &str = "Cli-Loopback-1";

fn ndksmb(args: &[&str]) -> (Output, Duration) {
    let t = Instant::now();
    let out = Command::new(BIN)
        .args(args)
        .env("NDKSMB_PASSWORD", PASSWORD)
        .output()
        .expect("run ndksmb");
    (out, t.elapsed())
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ndksmb-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// Fails with status 1 and exactly one line on stderr that contains
/// every one of `want`.
fn one_line_error(out: &Output, want: &[&str]) {
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {err}");
    assert_eq!(err.lines().count(), 1, "one line: {err:?}");
    assert!(err.starts_with("ndksmb: error: "), "{err:?}");
    for w in want {
        assert!(err.contains(w), "{w:?} missing in {err:?}");
    }
}

#[test]
fn an_invalid_mtu_is_a_one_line_error() {
    let d = tmp("mtu");
    let f = d.join("f");
    std::fs::write(&f, b"x").unwrap();
    let (out, took) = ndksmb(&[
        "--udp",
        "--local",
        "127.0.77.1",
        "--server",
        "127.0.77.2",
        "--user",
        "u",
        "--mtu",
        "1000",
        "put",
        f.to_str().unwrap(),
        "f",
    ]);
    one_line_error(&out, &["--mtu 1000", "256, 512, 1024, 2048 or 4096"]);
    assert!(took < Duration::from_secs(2), "{took:?}");
}

#[test]
fn put_refuses_a_directory_before_connecting() {
    let d = tmp("dir");
    let (out, took) = ndksmb(&[
        "--udp",
        "--local",
        "127.0.77.3",
        "--server",
        "127.0.77.4",
        "--user",
        "u",
        "put",
        d.to_str().unwrap(),
        "x",
    ]);
    one_line_error(&out, &["is a directory"]);
    // Nothing was tried on the wire (an attempt would take about a second).
    assert!(took < Duration::from_millis(800), "{took:?}");
}

#[test]
fn a_peer_that_does_not_answer_fails_within_seconds_saying_what_to_check() {
    let d = tmp("noserver");
    let f = d.join("f");
    std::fs::write(&f, b"x").unwrap();
    let (out, took) = ndksmb(&[
        "--udp",
        "--local",
        "127.0.77.5",
        "--server",
        "127.0.77.6",
        "--user",
        "u",
        "put",
        f.to_str().unwrap(),
        "f",
    ]);
    one_line_error(
        &out,
        &[
            "STATUS_IO_TIMEOUT",
            "0xc00000b5",
            "no answer from 127.0.77.6:445",
            "check that the SMB Direct server is running",
        ],
    );
    // ndksmb's CM gives a silent server four REQs of 1.07 s each.
    assert!(took < Duration::from_secs(7), "took {took:?}");
}

/// `ndksmb serve` in the background; killed when dropped.
struct Serve(Child);

impl Serve {
    fn start(args: &[&str]) -> (Serve, std::process::ChildStdout) {
        let mut c = Command::new(BIN)
            .args(args)
            .env("NDKSMB_PASSWORD", PASSWORD)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start ndksmb serve");
        let mut out = c.stdout.take().expect("stdout");
        // It prints "serving ..." once listening.
        let mut first = Vec::new();
        let mut b = [0u8; 1];
        while !first.ends_with(b"\n") {
            match out.read(&mut b) {
                Ok(1) => first.push(b[0]),
                _ => {
                    let mut err = String::new();
                    let _ = c.stderr.take().map(|mut e| e.read_to_string(&mut err));
                    panic!("serve did not start: {} {err}", text(&first));
                }
            }
        }
        assert!(text(&first).starts_with("serving \\\\"), "{}", text(&first));
        (Serve(c), out)
    }

    fn wait(mut self, t: Duration) -> Option<std::process::ExitStatus> {
        let end = Instant::now() + t;
        while Instant::now() < end {
            if let Ok(Some(st)) = self.0.try_wait() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn nothing_on_the_port_is_connection_refused() {
    let (_serve, _out) = Serve::start(&["--local", "127.0.77.8", "--user", "u", "serve"]);
    let d = tmp("refused");
    let f = d.join("f");
    std::fs::write(&f, b"x").unwrap();
    let (out, took) = ndksmb(&[
        "--udp",
        "--local",
        "127.0.77.7",
        "--server",
        "127.0.77.8:446",
        "--user",
        "u",
        "put",
        f.to_str().unwrap(),
        "f",
    ]);
    one_line_error(
        &out,
        &[
            "STATUS_CONNECTION_REFUSED",
            "nothing listens for SMB Direct on port 446",
        ],
    );
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

#[test]
fn serve_then_put_and_get_round_trip_byte_exact() {
    let share = tmp("share");
    std::fs::write(share.join("hello.txt"), b"from the directory\n").unwrap();
    let work = tmp("work");
    // 2 MiB and a bit: three RDMA transfers, the last a partial one.
    let data: Vec<u8> = (0..(2 << 20) + 4321u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let src = work.join("src.bin");
    std::fs::write(&src, &data).unwrap();
    let (serve, mut serve_out) = Serve::start(&[
        "--local",
        "127.0.77.10",
        "--user",
        "u",
        "serve",
        "--dir",
        share.to_str().unwrap(),
        "--connections",
        "3",
    ]);
    let client = |args: &[&str]| {
        let mut all = vec![
            "--udp",
            "--local",
            "127.0.77.9",
            "--server",
            "127.0.77.10",
            "--user",
            "u",
        ];
        all.extend_from_slice(args);
        let (out, _) = ndksmb(&all);
        assert!(
            out.status.success(),
            "{all:?}: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    };
    let put = client(&["put", src.to_str().unwrap(), "copy.bin"]);
    // The session in words, not a Rust debug struct.
    assert!(
        put.contains("SMB 3.1.1, signed with AES-GMAC, reads up to 1 MiB"),
        "{put}"
    );
    assert!(!put.contains('{') && !put.contains("Ready"), "{put}");
    assert!(
        put.contains("wrote 2101473 bytes in 3 RDMA-channel WRITE(s)"),
        "{put}"
    );
    let back = work.join("back.bin");
    client(&["get", "copy.bin", back.to_str().unwrap()]);
    assert!(
        std::fs::read(&back).unwrap() == data,
        "get returned other bytes"
    );
    let pre = work.join("hello.txt");
    client(&["get", "hello.txt", pre.to_str().unwrap()]);
    assert_eq!(std::fs::read(&pre).unwrap(), b"from the directory\n");
    let st = serve
        .wait(Duration::from_secs(10))
        .expect("serve exits after 3 connections");
    assert!(st.success(), "{st:?}");
    let mut log = String::new();
    serve_out.read_to_string(&mut log).unwrap();
    assert!(log.contains("connection 1: SMB 3.1.1"), "{log}");
    assert!(log.contains("connection 3:"), "{log}");
    assert!(log.contains("stopped after 3 connection(s)"), "{log}");
    // The share was saved into --dir.
    assert!(std::fs::read(share.join("copy.bin")).unwrap() == data);
}
