//! perftest over rdma_cm (-R): ndkperf's perftest modes against Linux perftest, both ways, with -q/-b/-a shapes and the wire checked.

use super::*;

/// The perftest scenarios run each way: (name suffix, Linux tool, ndkperf
/// mode, message size, iterations); sizes above the path MTU (1024) make
/// multi-packet messages.
pub(super) const PERFTEST_MODES: &[(&str, &str, PerfMode, u32, u64)] = &[
    ("write-bw", "ib_write_bw", PerfMode::WriteBw, 4096, 200),
    ("read-bw", "ib_read_bw", PerfMode::ReadBw, 4096, 200),
    ("send-bw", "ib_send_bw", PerfMode::SendBw, 4096, 200),
    ("send-lat", "ib_send_lat", PerfMode::SendLat, 64, 100),
    ("write-lat", "ib_write_lat", PerfMode::WriteLat, 3000, 100),
    ("read-lat", "ib_read_lat", PerfMode::ReadLat, 3000, 100),
];

/// perftest's port (rdma_cm, for its control connection and the test QP).
pub(super) const PERFTEST_PORT: u16 = host::perftest::PORT;

/// The result line of a perftest report: the line whose first two
/// columns are the message size and the iteration count.
pub(super) fn perftest_result_line(log: &str, size: u32, iters: u64) -> Option<String> {
    log.lines()
        .find(|l| {
            let mut t = l.split_whitespace();
            t.next() == Some(&size.to_string()) && t.next() == Some(&iters.to_string())
        })
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// What ndkperf runs in every perftest scenario: `iters` messages of
/// `size` bytes, 16 in flight, on one QP.
pub(super) fn perftest_params(mode: PerfMode, size: u32, iters: u64) -> Params {
    Params {
        mode,
        size: size as usize,
        iters: Some(iters),
        duration: T,
        window: 16,
        slots: 1,
        qps: 1,
        timeout: T,
    }
}

/// Starts `tool` in the VM with `command` (its output in `log_name`), then
/// runs ndkperf's side with `ndkperf` on a fresh adapter. Returns
/// ndkperf's report and the tool's log once it ended; a failed run is
/// reported as `label` with the log's tail.
pub(super) fn perftest_run(
    c: &Ctx<'_>,
    tool: &str,
    label: &str,
    command: &str,
    log_name: &str,
    ndkperf: impl FnOnce(&Adapter, &mut Keep) -> Result<perf::Report, perf::PerfError>,
) -> Result<(perf::Report, String), String> {
    c.vm.spawn(command, log_name)?;
    // Linux the server (its command names no host): ndkperf connects once
    // it listens, however slowly the emulated VM starts it.
    if !command.contains(&HOST_IP.to_string()) {
        c.vm.wait_listen(PERFTEST_PORT, T)?;
    }
    let adapter = c.adapter()?;
    let mut keep = Keep::default();
    let run = ndkperf(&adapter, &mut keep);
    // SAFETY: the run closed its objects; what a late callback may still
    // reach is in `keep`, dropped after the adapter.
    let _ = unsafe { adapter.close() };
    drop(keep);
    let log = c.vm.wait_log(log_name, "PERFTEST_EXIT=", T);
    let r = match run {
        Ok(r) => r,
        Err(e) => {
            let tail = log.map(|l| vm::tail(&l, 15)).unwrap_or_else(|e| e);
            return Err(format!("{label}: {e}\n{tool} -R:\n{tail}"));
        }
    };
    Ok((r, log?))
}

/// The Linux side's verdict in its log: `tool` exited 0 and printed its
/// result line for `iters` x `size` B, which is returned.
pub(super) fn perftest_verdict(tool: &str, log: &str, size: u32, iters: u64) -> Outcome {
    ensure(log.contains("PERFTEST_EXIT=0"), || {
        format!("{tool} -R:\n{}", vm::tail(log, 15))
    })?;
    perftest_result_line(log, size, iters).ok_or_else(|| {
        format!(
            "{tool} -R printed no result line for {size} B x {iters}:\n{}",
            vm::tail(log, 15)
        )
    })
}

/// ndkperf's client ([`perf::run_perftest`]: perftest's exchange over an
/// rdma_cm control connection to 18515, the test QP connected to the same
/// port, the traffic through the NDK dispatch tables) against a Linux perftest server (`tool -R`) in the VM: the
/// server exits 0 and prints its result line (for write_bw and read_bw
/// the report ndkperf sent it; for send_bw and send_lat what it measured
/// itself), ndkperf counts every message completed.
pub(super) fn perftest_ndkperf_client(
    c: &Ctx<'_>,
    tool: &str,
    mode: PerfMode,
    size: u32,
    iters: u64,
) -> Outcome {
    perftest_client_shaped(c, tool, mode, size, iters, Shape::default())
}

/// perftest's flags for `shape` (`-q`, `-b`, `-a`).
pub(super) fn shape_flags(shape: Shape) -> String {
    let mut f = String::new();
    if shape.qps > 1 {
        f += &format!(" -q {}", shape.qps);
    }
    if shape.duplex {
        f += " -b";
    }
    if shape.all {
        f += " -a";
    }
    f
}

/// [`perftest_ndkperf_client`] in `shape`: perftest's result line and
/// ndkperf's count are `iters` per test QP (perftest reports the sum).
pub(super) fn perftest_client_shaped(
    c: &Ctx<'_>,
    tool: &str,
    mode: PerfMode,
    size: u32,
    iters: u64,
    shape: Shape,
) -> Outcome {
    let p = perftest_params(mode, size, iters);
    let flags = shape_flags(shape);
    let (r, log) = perftest_run(
        c,
        tool,
        &format!("ndkperf {} --perftest{flags}", mode.name()),
        &format!(
            "{tool} -R -F -d rxe0 -s {size} -n {iters}{flags} -p {PERFTEST_PORT}; echo PERFTEST_EXIT=$?"
        ),
        "perftest.log",
        |adapter, keep| {
            perf::run_perftest(adapter, vm_addr(PERFTEST_PORT), &p, shape, c.path_mtu, keep)
        },
    )?;
    let peer = r.perftest.unwrap_or_default();
    let iters = iters * u64::from(shape.qps);
    ensure(
        r.messages == iters && r.verify_errors == 0 && r.leaked_objects == 0,
        || {
            format!(
                "ndkperf {}: {} of {iters} messages, {} objects left",
                mode.name(),
                r.messages,
                r.leaked_objects
            )
        },
    )?;
    // ib_read_lat's server prints nothing of the client's reads
    // (read_lat.c: it closes once the keys are exchanged).
    let line = if mode == PerfMode::ReadLat {
        ensure(log.contains("PERFTEST_EXIT=0"), || {
            format!("{tool} -R:\n{}", vm::tail(&log, 15))
        })?;
        "none (its server reports nothing)".to_owned()
    } else {
        perftest_verdict(tool, &log, size, iters)?
    };
    ensure(peer.closed, || {
        format!("{tool} -R: the closing handshake did not go through")
    })?;
    if shape.duplex {
        // Both sides' reports went across (`xchg_bw_reports`).
        let b = peer.report.unwrap_or_default();
        ensure(b.iters == iters && b.size == u64::from(size), || {
            format!("{tool} -R{flags} reported {b:?}")
        })?;
    }
    let measured = if mode.is_latency() {
        format!(
            "round trip p50 {:.0} us",
            r.lat.pct(0.5).as_secs_f64() * 1e6
        )
    } else {
        format!("{:.1} MB/s", r.bytes_per_sec() / 1e6)
    };
    Ok(format!(
        "ndkperf {} --perftest{flags}: {iters} x {size} B ({measured}) against {tool} -R{flags} (version {}, server buffer rkey {:#x}); {tool} exit 0, its result line `{line}`",
        mode.name(),
        peer.version,
        peer.server.rkey
    ))
}

/// ndkperf as the server ([`perf::serve_perftest`]: a listener on
/// 10.9.0.1:18515, perftest's exchange on the client's control
/// connection, the test QP accepted on the same listener) for a Linux
/// perftest client (`tool -R 10.9.0.1`) in the VM: the client exits 0 and
/// prints its result line; ndkperf saw every Send (send_bw, send_lat).
pub(super) fn perftest_ndkperf_server(
    c: &Ctx<'_>,
    tool: &str,
    mode: PerfMode,
    size: u32,
    iters: u64,
) -> Outcome {
    perftest_server_shaped(c, tool, mode, size, iters, Shape::default())
}

/// [`perftest_ndkperf_server`] in `shape`. A read_lat server only
/// exposes its buffer (perftest's tells the server nothing of the
/// client's reads): its count is checked on the wire instead.
pub(super) fn perftest_server_shaped(
    c: &Ctx<'_>,
    tool: &str,
    mode: PerfMode,
    size: u32,
    iters: u64,
    shape: Shape,
) -> Outcome {
    let p = perftest_params(mode, size, iters);
    let flags = shape_flags(shape);
    let (r, log) = perftest_run(
        c,
        tool,
        &format!("ndkperf {} perftest server{flags}", mode.name()),
        // The client starts a second later: ndkperf listens by then.
        &format!(
            "sleep 1; {tool} -R -F -d rxe0 -s {size} -n {iters}{flags} -p {PERFTEST_PORT} {HOST_IP}; echo PERFTEST_EXIT=$?"
        ),
        "perftestc.log",
        |adapter, keep| {
            let addr = SocketAddr::new(IpAddr::V4(HOST_IP), PERFTEST_PORT);
            perf::serve_perftest(adapter, addr, &p, shape, c.path_mtu, keep)
        },
    )?;
    let peer = r.perftest.unwrap_or_default();
    let iters = iters * u64::from(shape.qps);
    let counted = if mode == PerfMode::ReadLat { 0 } else { iters };
    ensure(
        r.messages == counted && r.leaked_objects == 0 && peer.closed,
        || {
            format!(
                "ndkperf {} server: {} of {iters} messages, {} objects left, closing handshake {}",
                mode.name(),
                r.messages,
                r.leaked_objects,
                peer.closed
            )
        },
    )?;
    let line = perftest_verdict(tool, &log, size, iters)?;
    if shape.duplex {
        // Both sides' reports went across (`xchg_bw_reports`).
        let b = peer.report.unwrap_or_default();
        ensure(b.iters == iters && b.size == u64::from(size), || {
            format!("{tool} -R{flags} reported {b:?}")
        })?;
    }
    Ok(format!(
        "ndkperf {} server for {tool} -R{flags} {HOST_IP} (version {}): {iters} x {size} B; {tool} exit 0, its result line `{line}`",
        mode.name(),
        peer.version,
    ))
}

/// ndkperf's write_bw perftest server with its default 5 s per-step bound
/// against `ib_write_bw -R` clients running a count (`-n`) or for a set
/// time longer than the bound (`-D 7`): the server waits for the client's
/// post-traffic message as long as the traffic keeps arriving, and reports
/// what the client ran (its report's iterations, its bandwidth's time).
pub(super) fn perftest_server_long(c: &Ctx<'_>) -> Outcome {
    let mut out = Vec::new();
    // `-D 7` outlasts the 5 s step bound whatever the speed (perftest
    // reports only the middle of it, past its warm-up margin); `-n 1500` is
    // checked for its count.
    for (args, iters) in [("-s 65536 -n 1500", Some(1500u64)), ("-s 65536 -D 7", None)] {
        let mut p = perftest_params(PerfMode::WriteBw, 65536, iters.unwrap_or(5000));
        p.timeout = Duration::from_secs(5);
        let t0 = Instant::now();
        let (r, log) = perftest_run(
            c,
            "ib_write_bw",
            &format!("ndkperf write_bw perftest server ({args})"),
            &format!(
                "sleep 1; ib_write_bw -R -F -d rxe0 {args} -p {PERFTEST_PORT} {HOST_IP}; echo PERFTEST_EXIT=$?"
            ),
            "perftestc.log",
            |adapter, keep| {
                let addr = SocketAddr::new(IpAddr::V4(HOST_IP), PERFTEST_PORT);
                perf::serve_perftest(adapter, addr, &p, Shape::default(), c.path_mtu, keep)
            },
        )?;
        let took = t0.elapsed();
        ensure(log.contains("PERFTEST_EXIT=0"), || {
            format!("ib_write_bw {args}:\n{}", vm::tail(&log, 15))
        })?;
        let peer = r.perftest.unwrap_or_default();
        ensure(r.leaked_objects == 0 && peer.closed, || {
            format!(
                "{} objects left, closing handshake {}",
                r.leaked_objects, peer.closed
            )
        })?;
        let secs = r.elapsed.as_secs_f64();
        match iters {
            Some(n) => {
                ensure(r.messages == n, || {
                    format!("{args}: the server reports {} messages", r.messages)
                })?;
                perftest_verdict("ib_write_bw", &log, 65536, n)?;
            }
            None => {
                ensure(r.messages > 0 && (2.0..10.0).contains(&secs), || {
                    format!(
                        "{args}: the server reports {} messages in {secs:.3} s",
                        r.messages
                    )
                })?;
                ensure(took > Duration::from_secs(7), || {
                    format!("{args}: the run took {took:?}, not past the 5 s step bound")
                })?;
            }
        }
        out.push(format!(
            "ib_write_bw -R {args}: ndkperf server (step bound 5 s) reports {} x 65536 B in {secs:.2} s; the run took {:.1} s; ib_write_bw exit 0",
            r.messages,
            took.as_secs_f64()
        ));
    }
    Ok(out.join("; "))
}

/// `tool -R -a -n 5` (perftest's every size, 2 B to 8 MiB; perftest
/// v4.5-0.17 has no option capping -a's sizes, so -n is its minimum, 5)
/// against ndkperf's server: started plainly (`-s 4096`) for write_bw,
/// whose server only exposes its buffer (sized for any perftest message:
/// the exchange announces no size), and with `-a` for send_bw, whose
/// server posts each size's receives between the per-size syncs. The
/// client exits 0 with a result line for each of the 23 sizes; ndkperf
/// counts its 5 of each (send_bw) or takes the client's last report
/// (write_bw: 5 x 8 MiB).
pub(super) fn perftest_server_all(c: &Ctx<'_>, tool: &str, mode: PerfMode) -> Outcome {
    let iters = 5u64;
    let p = perftest_params(mode, 4096, iters);
    let shape = Shape {
        all: mode == PerfMode::SendBw,
        ..Shape::default()
    };
    let (r, log) = perftest_run(
        c,
        tool,
        &format!("ndkperf {} perftest server (client -a)", mode.name()),
        &format!(
            "sleep 1; {tool} -R -F -d rxe0 -a -n {iters} -p {PERFTEST_PORT} {HOST_IP}; echo PERFTEST_EXIT=$?"
        ),
        "perftestc.log",
        |adapter, keep| {
            let addr = SocketAddr::new(IpAddr::V4(HOST_IP), PERFTEST_PORT);
            perf::serve_perftest(adapter, addr, &p, shape, c.path_mtu, keep)
        },
    )?;
    ensure(log.contains("PERFTEST_EXIT=0"), || {
        format!("{tool} -R -a:\n{}", vm::tail(&log, 15))
    })?;
    let missing: Vec<u32> = (1..24)
        .map(|i| 1u32 << i)
        .filter(|&size| perftest_result_line(&log, size, iters).is_none())
        .collect();
    ensure(missing.is_empty(), || {
        format!(
            "{tool} -R -a printed no result line for sizes {missing:?}:\n{}",
            vm::tail(&log, 30)
        )
    })?;
    let peer = r.perftest.unwrap_or_default();
    let want = if mode == PerfMode::SendBw {
        23 * iters
    } else {
        iters
    };
    ensure(
        r.messages == want && r.leaked_objects == 0 && peer.closed,
        || {
            format!(
                "ndkperf {} server: {} messages (expected {want}), {} objects left, closing handshake {}",
                mode.name(),
                r.messages,
                r.leaked_objects,
                peer.closed
            )
        },
    )?;
    let last = perftest_result_line(&log, 1 << 23, iters).unwrap_or_default();
    Ok(format!(
        "{tool} -R -a -n {iters} against ndkperf {} server{}: exit 0, result lines for all 23 sizes (the last `{last}`); ndkperf counted {} messages",
        mode.name(),
        if shape.all { " -a" } else { " -s 4096" },
        r.messages
    ))
}

/// The test QP's traffic of a perftest run in the capture: every one of
/// `iters` messages from the perftest client `client` (RDMA Writes,
/// Sends; write_lat's from both sides) or its server `server` (Read
/// Responses) segmented at the path MTU (the exchange's Sends are
/// single-packet); `None` for send_lat's single-packet messages.
pub(super) fn perftest_wire(
    c: &Ctx<'_>,
    mode: PerfMode,
    client: Ipv4Addr,
    server: Ipv4Addr,
    iters: u64,
) -> Result<Option<String>, String> {
    let wire = match mode {
        PerfMode::WriteBw => check_segments_op(c.cap()?, client, 6, c.path_mtu)?,
        PerfMode::ReadBw | PerfMode::ReadLat => {
            check_segments_op(c.cap()?, server, 13, c.path_mtu)?
        }
        // write_lat: each side writes every round.
        PerfMode::WriteLat => {
            let back = check_segments_op(c.cap()?, server, 6, c.path_mtu)?;
            ensure(back.contains(&format!(" {iters} First")), || {
                format!("expected {iters} RDMA Writes back on the wire: {back}")
            })?;
            format!(
                "{}; {back}",
                check_segments_op(c.cap()?, client, 6, c.path_mtu)?
            )
        }
        PerfMode::SendBw => check_segments(c.cap()?, client, c.path_mtu, iters as usize)?,
        _ => return Ok(None),
    };
    ensure(wire.contains(&format!(" {iters} First")), || {
        format!("expected {iters} messages on the wire: {wire}")
    })?;
    Ok(Some(wire))
}
