//! ndkperf's `--busy-poll` (I/O threads and baselines poll instead of
//! sleeping after work) and its behaviour under a reader that goes away.

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Output, Stdio};

fn ndkperf(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ndkperf"))
        .args(args)
        .output()
        .expect("run ndkperf")
}

/// Held by the runs that keep traffic going: polling I/O threads beside
/// another run's on 2 cores starve both (a ping-pong p50 of 1.4 ms was
/// seen in CI while the two ran at once).
fn heavy() -> std::sync::MutexGuard<'static, ()> {
    static HEAVY: std::sync::Mutex<()> = std::sync::Mutex::new(());
    HEAVY.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn a_busy_poll_window_out_of_range_is_a_usage_error() {
    for args in [
        &["--busy-poll=0"][..],
        &["--busy-poll=soon"],
        &["--busy-poll=20000000"],
    ] {
        let o = ndkperf(args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("--busy-poll"), "{args:?}: {err}");
    }
}

/// Both latency modes run to the end with polling I/O threads and a
/// polling ping-pong: every round trip measured, none lost, and the JSON
/// says the run polled. `--busy-poll` before the mode takes no value (the
/// mode is not read as one).
#[test]
fn latency_modes_run_with_busy_polling() {
    let _heavy = heavy();
    for mode in ["send_lat", "write_lat"] {
        let o = ndkperf(&["--busy-poll", mode, "-n", "2000", "--json"]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(0), "{mode}: {err}");
        let doc: serde_json::Value = serde_json::from_slice(&o.stdout).expect("one JSON document");
        assert_eq!(doc["params"]["busy_poll_us"], 1000, "{mode}");
        let m = &doc["modes"][0];
        assert_eq!(m["mode"], mode);
        assert_eq!(m["status"], "ok", "{m}");
        assert_eq!(m["latency_us"]["samples"], 2000, "{m}");
        // The ping-pong is bounded by time as well as by -n (a loaded
        // machine finished 1318 of 2000 in CI): every ping it sent was
        // answered.
        let pp = &doc["baselines"]["udp_ping_pong"];
        assert!(
            pp["pings"]
                .as_u64()
                .is_some_and(|n| (1..=2000).contains(&n)),
            "{pp}"
        );
        assert_eq!(pp["lost"], 0, "{pp}");
        assert!(
            m["efficiency"]["value"].as_f64().is_some_and(|v| v > 0.0),
            "{m}"
        );
    }
    let o = ndkperf(&["write_lat", "-n", "500", "--busy-poll=200", "--no-baseline"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(out.contains("busy polling 200 us after work"), "{out}");
}

/// `ndkperf | head -1`: the run ends at the closed pipe as a Unix tool's
/// does (SIGPIPE), without a panic's message and backtrace.
#[test]
fn a_reader_that_goes_away_ends_the_run_quietly() {
    let _heavy = heavy();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ndkperf"))
        .args(["write_lat", "-n", "200000", "--no-baseline", "--quiet"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run ndkperf");
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("the first line");
    assert!(first.starts_with("ndkperf "), "{first}");
    // The reader is gone (dropped above); the next line ends the run.
    let o = child.wait_with_output().expect("ndkperf ends");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.signal(), Some(13), "{:?}: {err}", o.status);
    assert!(!err.contains("panicked"), "{err}");
}
