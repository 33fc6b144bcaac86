//! rping: ndkperf's rping mode against Linux rping, as client and server, and a peer that leaves.

use super::*;

/// rping's default port.
pub(super) const RPING_PORT: u16 = 7174;

/// Linux rping's verbose output shows the text it moved: the 64-byte
/// runs add -v and check it.
pub(super) fn rping_verbose(size: u32) -> &'static str {
    if size <= 64 { " -v" } else { "" }
}

/// ndkperf's rping mode ([`perf::run`], the NDK dispatch tables over
/// `host::adapter`, raw IP) as the client against `rping -s -V` in the
/// VM: each iteration the Linux server RDMA-Reads ndkperf's source,
/// Sends its go-ahead, RDMA-Writes the text back into ndkperf's sink and
/// Sends again; ndkperf compares sink and source; then ndkperf
/// disconnects and rping -s exits.
pub(super) fn rping_ndkperf_client(c: &Ctx<'_>, count: u32, size: u32) -> Outcome {
    let v = rping_verbose(size);
    c.vm.spawn(
        &format!("rping -s -V{v} -C {count} -S {size} -p {RPING_PORT}; echo RPING_EXIT=$?"),
        "rping.log",
    )?;
    c.vm.wait_listen(RPING_PORT, T)?;
    let adapter = c.adapter()?;
    let mut keep = Keep::default();
    let run = perf::run(
        &adapter,
        vm_addr(RPING_PORT),
        &Params {
            mode: PerfMode::Rping,
            size: size as usize,
            iters: Some(u64::from(count)),
            duration: T,
            window: 1,
            slots: 1,
            qps: 1,
            timeout: T,
        },
        &mut keep,
    );
    // SAFETY: the run closed its objects; what a late callback may still
    // reach is in `keep`, dropped after the adapter.
    let _ = unsafe { adapter.close() };
    drop(keep);
    let r = run.map_err(|e| format!("ndkperf rping: {e}"))?;
    ensure(
        r.messages == u64::from(count) && r.verify_errors == 0 && r.leaked_objects == 0,
        || {
            format!(
                "ndkperf rping: {} iterations, {} not verified, {} objects left",
                r.messages, r.verify_errors, r.leaked_objects
            )
        },
    )?;
    let log = c.vm.wait_log("rping.log", "RPING_EXIT=", T)?;
    ensure(
        log.contains("RPING_EXIT=0") && !log.contains("mismatch"),
        || format!("rping server:\n{}", vm::tail(&log, 10)),
    )?;
    let last = format!("rdma-ping-{}: ", count - 1);
    ensure(v.is_empty() || log.contains(&last), || {
        format!("rping -s -v never showed `{last}`:\n{}", vm::tail(&log, 10))
    })?;
    Ok(format!(
        "ndkperf rping client: {count} x {size} B, {} of {count} verified (round trip p50 {:.0} us), disconnect {:.1} ms; rping -s exit 0{}",
        r.messages - r.verify_errors,
        r.lat.pct(0.5).as_secs_f64() * 1e6,
        r.disconnect.as_secs_f64() * 1e3,
        if v.is_empty() {
            ""
        } else {
            ", its -v shows ndkperf's text"
        }
    ))
}

/// ndkperf's rping client (120 s run bound) against a Linux `rping -s`
/// that leaves mid-run: one that refuses a 65536-byte buffer with `-S
/// 65535`, and one killed with SIGKILL (its kernel sends the DREQ). Either
/// way ndkrs answers the DREQ and the run ends within a second, saying the
/// peer disconnected, instead of waiting out its bound.
pub(super) fn rping_peer_leaves(c: &Ctx<'_>) -> Outcome {
    let mut out = Vec::new();
    for (label, server, size, kill_after) in [
        ("rping -s -S 65535", "rping -s -S 65535", 65536u32, None),
        (
            "rping -s killed with SIGKILL",
            "rping -s -C 1000000 -S 64",
            64,
            Some(Duration::from_millis(1500)),
        ),
    ] {
        c.vm.spawn(
            &format!("{server} -p {RPING_PORT}; echo RPING_EXIT=$?"),
            "rping.log",
        )?;
        c.vm.wait_listen(RPING_PORT, T)?;
        let adapter = c.adapter()?;
        let mut keep = Keep::default();
        let t0 = Instant::now();
        let vm = c.vm;
        let (run, ended, killed) = thread::scope(|sc| {
            let killer = kill_after.map(|d| {
                sc.spawn(move || {
                    thread::sleep(d);
                    vm.run("kill -9 $(pidof rping)", Duration::from_secs(5))
                        .map(|_| Instant::now())
                })
            });
            let run = perf::run(
                &adapter,
                vm_addr(RPING_PORT),
                &Params {
                    mode: PerfMode::Rping,
                    size: size as usize,
                    iters: Some(1_000_000),
                    duration: T,
                    window: 1,
                    slots: 1,
                    qps: 1,
                    timeout: T,
                },
                &mut keep,
            );
            let ended = Instant::now();
            let killed = killer.map(|k| {
                k.join()
                    .map_err(|_| "the killer thread panicked".to_owned())
                    .and_then(|r| r)
            });
            (run, ended, killed)
        });
        // SAFETY: the run closed its objects; what a late callback may
        // still reach is in `keep`, dropped after the adapter.
        let _ = unsafe { adapter.close() };
        drop(keep);
        let since = match killed {
            Some(k) => ended.saturating_duration_since(k?),
            None => ended - t0,
        };
        let e = match run {
            Ok(r) => {
                return Err(format!(
                    "{label}: the run succeeded ({} iterations)",
                    r.messages
                ));
            }
            Err(e) => e.to_string(),
        };
        ensure(e.contains("STATUS_CONNECTION_DISCONNECTED"), || {
            format!("{label}: {e}")
        })?;
        ensure(since < Duration::from_secs(2), || {
            format!("{label}: the run ended {since:?} after the peer left: {e}")
        })?;
        out.push(format!(
            "{label}: the run ended {:.0} ms after {}: \"{e}\"",
            since.as_secs_f64() * 1e3,
            if kill_after.is_some() {
                "the kill"
            } else {
                "it started"
            }
        ));
        c.vm.reset();
    }
    Ok(out.join("; "))
}

/// ndkperf's server ([`perf::Server`], as `ndkperf --server` runs it)
/// against `rping -c -V` in the VM: the connect carries no ndkperf hello,
/// so the server plays rping's server (RDMA Read of the client's source,
/// go-ahead, RDMA Write of the text to its sink, go-ahead) until the
/// client has verified `count` iterations and disconnects.
pub(super) fn rping_ndkperf_server(c: &Ctx<'_>, count: u32, size: u32) -> Outcome {
    let adapter = c.adapter()?;
    let server = perf::Server::start(
        &adapter,
        SocketAddr::new(IpAddr::V4(HOST_IP), RPING_PORT),
        false,
    )
    .map_err(|e| format!("ndkperf server: {e}"))?;
    let v = rping_verbose(size);
    let spawned = c.vm.spawn(
        &format!(
            "rping -c -V{v} -a {HOST_IP} -C {count} -S {size} -p {RPING_PORT}; echo RPING_EXIT=$?"
        ),
        "rpingc.log",
    );
    let log = spawned.and_then(|_| c.vm.wait_log("rpingc.log", "RPING_EXIT=", T));
    // The client's DREQ: the server disconnects and closes its side.
    let start = Instant::now();
    while start.elapsed() < T {
        let s = server.stats();
        if s.accepted > 0 && s.live == 0 {
            break;
        }
        thread::sleep(Duration::from_millis(20));
    }
    let s = server.stats();
    let mut keep = Keep::default();
    server.stop(&mut keep);
    // SAFETY: the server's objects are reached only through callbacks,
    // which end with the adapter's loop; its state is in `keep`.
    let _ = unsafe { adapter.close() };
    drop(keep);
    let log = log?;
    // Exit 0, or exit 255 from rping's own teardown race after every ping
    // was verified (vm::rping_end); anything else is a failure.
    let end = vm::rping_end(&log);
    ensure(end.is_some(), || {
        format!("rping client:\n{}", vm::tail(&log, 10))
    })?;
    let exit = if end == Some(RpingEnd::TeardownRace) {
        "exit 255 from rping's own teardown race (rdma_get_cm_event on its destroyed channel) after all pings verified"
    } else {
        "exit 0"
    };
    let last = format!("rdma-ping-{}: ", count - 1);
    ensure(v.is_empty() || log.contains(&last), || {
        format!("rping -c -v never showed `{last}`:\n{}", vm::tail(&log, 10))
    })?;
    ensure(
        s.accepted == 1
            && s.rejected == 0
            && s.live == 0
            && s.rping_iterations == u64::from(count)
            && s.rping_errors == 0,
        || format!("ndkperf server: {s:?}"),
    )?;
    Ok(format!(
        "ndkperf server: {count} x {size} B served (RDMA Read + Write), rping -c -V verified them and disconnected, {exit}; server closed the connection"
    ))
}
