//! The client run: the two sides, the baselines, then each mode (and each
//! size with -a), printed as it finishes; a failing mode leaves the others'
//! figures, Ctrl-C ends the running mode and prints what finished.

use super::*;

/// One mode at one size: its figures, or why it failed (with the figures
/// it completed before).
pub(super) struct ModeRun {
    pub(super) mode: PMode,
    pub(super) size: usize,
    pub(super) report: Option<Report>,
    pub(super) error: Option<String>,
    /// The process's CPU time over a bandwidth run.
    pub(super) cpu: Option<Duration>,
    /// -a: the baseline measured at this size (else the run's).
    pub(super) base: Option<Baselines>,
    /// -b: the bytes that went out and those that came in.
    pub(super) duplex: Option<(u64, u64)>,
}

impl ModeRun {
    pub(super) fn status(&self) -> &'static str {
        match (&self.error, &self.report) {
            (Some(_), _) => "failed",
            (None, Some(r)) if r.interrupted => "interrupted",
            _ => "ok",
        }
    }
}

/// What the progress line shows: the mode's label, when it started and
/// the process's progress counters then.
#[derive(Clone)]
struct Status {
    label: String,
    since: Instant,
    base: (u64, u64),
    latency: bool,
}

/// Draws the progress line from a thread while the modes run; the main
/// thread hides it (clears the line) before it prints a result.
pub(super) struct Ticker {
    stop: Arc<AtomicBool>,
    state: Arc<Mutex<(ProgressLine, Option<Status>)>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Ticker {
    pub(super) fn new(enabled: bool) -> Ticker {
        let stop = Arc::new(AtomicBool::new(false));
        let state = Arc::new(Mutex::new((ProgressLine::new(enabled), None::<Status>)));
        let thread = enabled.then(|| {
            let (stop, state) = (Arc::clone(&stop), Arc::clone(&state));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(200));
                    if let Ok(mut g) = state.lock()
                        && let Some(s) = g.1.clone()
                    {
                        g.0.update(&running_figure(&s));
                    }
                }
            })
        });
        Ticker {
            stop,
            state,
            thread,
        }
    }

    fn set(&self, label: String, latency: bool) {
        if let Ok(mut g) = self.state.lock() {
            g.1 = Some(Status {
                label,
                since: Instant::now(),
                base: perf::progress(),
                latency,
            });
        }
    }

    /// Clears the line and draws nothing until the next [`Self::set`].
    fn hide(&self) {
        if let Ok(mut g) = self.state.lock() {
            g.1 = None;
            g.0.clear();
        }
    }
}

fn running_figure(s: &Status) -> String {
    let (m, b) = perf::progress();
    let (m, b) = (m.saturating_sub(s.base.0), b.saturating_sub(s.base.1));
    let t = s.since.elapsed().as_secs_f64();
    if m == 0 || t <= 0.0 {
        return s.label.clone();
    }
    let figure = if s.latency {
        format!("{m} round trips, {:.1} us each", t * 1e6 / m as f64)
    } else {
        format!("{m} messages, {}", fmt_rate(b as f64 / t))
    };
    format!("{}: {figure}", s.label)
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.hide();
    }
}

/// The first Ctrl-C stops the running mode ([`perf::request_stop`]); the
/// handler then resets itself, so a second one ends the process at once.
pub(super) fn catch_sigint() {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
    extern "C" fn on_sigint(_: nix::libc::c_int) {
        perf::request_stop();
    }
    let action = SigAction::new(
        SigHandler::Handler(on_sigint),
        SaFlags::SA_RESETHAND | SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    // SAFETY: the handler only stores to an atomic (async-signal-safe).
    let _ = unsafe { sigaction(Signal::SIGINT, &action) };
}

/// The one line a client sends its server when a mode finishes (the
/// server prints it: a one-sided mode leaves the server nothing to count).
pub(super) fn tally_line(r: &ModeRun, qps: u32) -> String {
    let Some(rep) = &r.report else {
        return format!(
            "{} {} B: failed: {}",
            r.mode.name(),
            r.size,
            r.error.as_deref().unwrap_or_default()
        );
    };
    let figures = if let Some(d) = &rep.disc {
        format!(
            "{} of {} QPs connected, connect p50 {:.0} us, disconnect p50 {:.0} us",
            d.connected,
            d.qps,
            us(d.connect_lat.pct(0.5)),
            us(d.disconnect_lat_serial.pct(0.5))
        )
    } else if r.mode.is_latency() {
        format!(
            "{} round trips in {:.2} s, p50 {:.1} us, p99 {:.1} us",
            rep.messages,
            rep.elapsed.as_secs_f64(),
            us(rep.lat.pct(0.5)),
            us(rep.lat.pct(0.99))
        )
    } else {
        format!(
            "{} messages in {:.2} s on {qps} QP{}, {}, {:.3} Mpps",
            rep.messages,
            rep.elapsed.as_secs_f64(),
            if qps == 1 { "" } else { "s" },
            fmt_rate(rep.bytes_per_sec()),
            rep.msg_rate() / 1e6
        )
    };
    let how = match (r.error.as_deref(), rep.interrupted) {
        (Some(e), _) => format!(" (then failed: {e})"),
        (None, true) => " (interrupted)".into(),
        _ => String::new(),
    };
    let both = if r.duplex.is_some() {
        format!(" both ways (with {})", reverse_of(r.mode).name())
    } else {
        String::new()
    };
    format!("{} {} B{both}: {figures}{how}", r.mode.name(), r.size)
}

/// perftest's -a sizes: 2 B to 8 MiB, powers of two.
pub(super) fn all_sizes() -> Vec<usize> {
    (1..=23).map(|k| 1usize << k).collect()
}

/// -b in ndkperf's own modes: the mode whose data flows the other way,
/// driven from this side (write_bw and send_bw push, READs pull; read_bw
/// pulls, WRITEs push).
pub(super) fn reverse_of(mode: PMode) -> PMode {
    match mode {
        PMode::ReadBw => PMode::WriteBw,
        _ => PMode::ReadBw,
    }
}

/// Runs `p` on `qps` connections side by side (perftest's -q), with as
/// many running [`reverse_of`] beside them for -b (`duplex`), and sums
/// their figures: messages and bytes added, the longest elapsed time.
/// With -b, also each direction's bytes (out, in).
fn run_parallel(
    adapter: &Adapter,
    peer: SocketAddr,
    p: &Params,
    qps: u32,
    duplex: bool,
    keep: &mut Keep,
) -> Result<(Report, Option<(u64, u64)>), perf::PerfError> {
    if qps <= 1 && !duplex {
        return perf::run(adapter, peer, p, keep).map(|r| (r, None));
    }
    let rev = Params {
        mode: reverse_of(p.mode),
        ..p.clone()
    };
    let plan: Vec<&Params> = (0..qps)
        .map(|_| p)
        .chain((0..if duplex { qps } else { 0 }).map(|_| &rev))
        .collect();
    let results: Vec<(Result<Report, perf::PerfError>, Keep)> = std::thread::scope(|sc| {
        let handles: Vec<_> = plan
            .iter()
            .map(|&p| {
                sc.spawn(move || {
                    let mut k = Keep::default();
                    (perf::run(adapter, peer, p, &mut k), k)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    (
                        Err(perf::PerfError::new("a connection's thread panicked")),
                        Keep::default(),
                    )
                })
            })
            .collect()
    });
    let mut sum = Report::default();
    let mut first_error = None;
    // Bytes that left this side and bytes that came in.
    let (mut out, mut inb) = (0u64, 0u64);
    for ((r, k), q) in results.into_iter().zip(&plan) {
        keep.absorb(k);
        let rep = match r {
            Ok(rep) => rep,
            Err(e) => {
                let part = e.partial().cloned();
                first_error.get_or_insert(e.0);
                match part {
                    Some(rep) => rep,
                    None => continue,
                }
            }
        };
        sum.messages += rep.messages;
        sum.bytes += rep.bytes;
        if q.mode == PMode::ReadBw {
            inb += rep.bytes;
        } else {
            out += rep.bytes;
        }
        sum.elapsed = sum.elapsed.max(rep.elapsed);
        sum.connect = sum.connect.max(rep.connect);
        sum.disconnect = sum.disconnect.max(rep.disconnect);
        sum.leaked_objects = sum.leaked_objects.max(rep.leaked_objects);
        sum.window = rep.window;
        sum.interrupted |= rep.interrupted;
    }
    match first_error {
        Some(e) => Err(perf::PerfError(e, Some(Box::new(sum)))),
        None => Ok((sum, duplex.then_some((out, inb)))),
    }
}

pub(super) fn rdma(cli: &Cli) -> Result<ExitCode, String> {
    let all = cli.mode.is_none();
    let modes: Vec<PMode> = match cli.mode {
        Some(m) => vec![m.perf()],
        None if cli.perftest => {
            [PMode::WriteBw, PMode::ReadBw, PMode::SendBw, PMode::SendLat].to_vec()
        }
        None => PMode::ALL.to_vec(),
    };
    if cli.perftest && !modes.iter().all(|m| host::perftest::supported(*m)) {
        return Err(
            "--perftest: perftest's -R servers are ib_write_bw, ib_read_bw, ib_send_bw, \
             ib_send_lat, ib_write_lat and ib_read_lat: modes write_bw, read_bw, send_bw, \
             send_lat, write_lat, read_lat"
                .into(),
        );
    }
    if cli.perftest {
        for m in &modes {
            shape(cli).check(*m).map_err(|e| e.to_string())?;
        }
    }
    let own_all = cli.all && !cli.perftest;
    let duration = Duration::from_secs_f64(cli.duration.unwrap_or(if own_all {
        0.2
    } else if all {
        1.0
    } else {
        2.0
    }));
    let timeout = Duration::from_secs_f64(cli.timeout);
    let cm_port = cli.port.unwrap_or(DEFAULT_PORT);
    let bw_size = cli.size.unwrap_or(65536);
    let lat_size = cli.size.unwrap_or(64);
    let ticker = Ticker::new(
        !cli.quiet && std::io::stdout().is_terminal() && std::io::stderr().is_terminal(),
    );
    catch_sigint();
    let mut out = Output::new(cli);

    // The two sides.
    let mut keep = Keep::default();
    // `HOST:port` names the server's port (its baselines and its CM
    // listener); `-p` is the default for a bare host.
    let (client_ip, peer, roce_port, embedded) = match cli.peer() {
        Some(peer) => {
            let p = resolve(peer, cm_port)?;
            let local = cli.bind.unwrap_or_else(|| local_ip_for(p.ip()));
            (local, p, cli.roce_port.unwrap_or(4791), None)
        }
        None => {
            let c = cli.bind.unwrap_or(Ipv4Addr::LOCALHOST.into());
            let s: IpAddr = if c == IpAddr::from(Ipv4Addr::new(127, 0, 0, 2)) {
                Ipv4Addr::LOCALHOST.into()
            } else {
                Ipv4Addr::new(127, 0, 0, 2).into()
            };
            let port = match (cli.roce_port, cli.raw) {
                (Some(p), _) => p,
                (None, true) => 4791,
                (None, false) => free_pair_port(c, s)?,
            };
            let server_adapter = open_adapter(cli, s, port, Seed::Entropy, None)?;
            let server = Server::start(&server_adapter, SocketAddr::new(s, cm_port), cli.reject)
                .map_err(|e| e.to_string())?;
            (
                c,
                SocketAddr::new(s, cm_port),
                port,
                Some((server_adapter, server)),
            )
        }
    };
    let peer_ip = peer.ip();
    let client_adapter = open_adapter(
        cli,
        client_ip,
        roce_port,
        Seed::Entropy,
        cli.pcap.as_deref(),
    )?;
    let mut ctx = Ctx {
        client_ip,
        peer,
        roce_port,
        embedded: embedded.is_some(),
        total: Duration::ZERO,
        pcap_frames: None,
        pcap_skipped: 0,
        bw_size,
        lat_size,
        mtu: client_adapter.path_mtu() as usize,
        modes: modes.clone(),
        duration: cli.iters.is_none().then_some(duration),
        interrupted: false,
    };
    out.start(&ctx);

    // Baselines on the same path.
    let mut base = Baselines::default();
    let base_server = match (embedded.is_some(), cli.no_baseline) {
        (_, true) => None,
        (true, false) => Some(
            baseline::spawn_server_polling(
                SocketAddr::new(peer_ip, 0),
                Duration::from_secs(600),
                cli.busy_poll(),
            )
            .map_err(|e| e.to_string())?,
        ),
        (false, false) => None,
    };
    let mut base_client = None;
    if !cli.no_baseline && !cli.perftest {
        let addr = base_server.as_ref().map_or(peer, |s| s.addr());
        ticker.set("baselines".into(), false);
        let client = Client::new(addr, Some(client_ip))
            .map_err(|e| e.to_string())?
            .busy_poll(cli.busy_poll.is_some());
        client.hello().map_err(|e| e.to_string())?;
        let mut quiet = ProgressLine::new(false);
        base = measure_baselines(
            &client,
            bw_size,
            lat_size,
            client_adapter.path_mtu() as usize,
            duration.max(Duration::from_millis(200)),
            cli.iters.unwrap_or(20_000),
            cli.bidirectional && !cli.perftest,
            &mut quiet,
        )?;
        ticker.hide();
        out.baselines(&base, &ctx);
        // -a measures each size's baseline as it goes.
        base_client = own_all.then_some(client);
    }
    let any_bandwidth = modes
        .iter()
        .any(|m| !m.is_latency() && *m != PMode::Disconnect);
    if !cli.no_baseline && !cli.perftest && any_bandwidth {
        // TCP on the same path (for the bandwidth modes' CPU per GB): the embedded run's own sink, or the
        // server's on its port number.
        let sink = embedded.as_ref().and_then(|_| cost::embedded_sink(peer_ip));
        let to = sink.as_ref().map_or(peer, |s| s.addr());
        ticker.set("TCP baseline".into(), false);
        base.tcp = cost::measure_tcp(to, bw_size, duration.max(Duration::from_millis(200)));
        ticker.hide();
        out.tcp_baseline(&base);
    }

    // The modes, each size with -a.
    let sizes_of = |mode: PMode| -> Vec<usize> {
        if own_all && mode != PMode::Disconnect {
            all_sizes()
        } else if mode.is_latency() || mode == PMode::Disconnect {
            vec![lat_size]
        } else {
            vec![bw_size]
        }
    };
    let steps: Vec<(PMode, usize)> = modes
        .iter()
        .flat_map(|&m| sizes_of(m).into_iter().map(move |s| (m, s)))
        .collect();
    // A server elsewhere gets each mode's figures, to print them.
    let tally_client = (!ctx.embedded && !cli.perftest)
        .then(|| Client::new(peer, Some(client_ip)).ok())
        .flatten();
    let t_all = Instant::now();
    let mut runs: Vec<ModeRun> = Vec::new();
    let mut size_bases: Vec<(bool, usize, Baselines)> = Vec::new();
    for (k, &(mode, size)) in steps.iter().enumerate() {
        if perf::stop_requested() {
            break;
        }
        if k > 0 {
            // Let the last connection's time-wait pass (QPN reuse, see
            // `ndkperf_cm_timewait`).
            std::thread::sleep(ndkperf_cm_timewait() + Duration::from_millis(20));
        }
        let bandwidth = !mode.is_latency() && mode != PMode::Disconnect;
        let p = Params {
            mode,
            size,
            iters: cli.iters,
            duration,
            window: cli.window.unwrap_or(match mode {
                PMode::ReadBw | PMode::Rperf => 16,
                PMode::Disconnect => 128,
                _ => 32,
            }),
            slots: cli.slots.unwrap_or(1),
            // The default run measures the 10,000-QP target itself (it
            // takes well under a second); `disconnect` alone runs 1000.
            qps: if mode == PMode::Disconnect {
                cli.qps.unwrap_or(if all { 10_000 } else { 1000 })
            } else {
                1
            },
            timeout,
        };
        ticker.set(
            format!("{} {} B ({} of {})", mode.name(), size, k + 1, steps.len()),
            mode.is_latency(),
        );
        let mut cpu = None;
        // -a: the baseline of this size, on the same path, just before.
        let size_base = match &base_client {
            Some(client) if mode != PMode::Disconnect => {
                let latency = mode.is_latency() || mode == PMode::Rping;
                let cached = size_bases
                    .iter()
                    .find(|(l, s, _)| *l == latency && *s == size)
                    .map(|(_, _, b)| b.clone());
                match cached {
                    Some(b) => Some(b),
                    None => {
                        let b = measure_baseline_at(
                            client,
                            latency,
                            size,
                            ctx.mtu,
                            duration,
                            cli.iters.unwrap_or(2000),
                            cli.bidirectional,
                        )?;
                        size_bases.push((latency, size, b.clone()));
                        Some(b)
                    }
                }
            }
            _ => None,
        };
        let mut duplex = None;
        let r = if cli.perftest {
            perf::run_perftest(
                &client_adapter,
                peer,
                &p,
                shape(cli),
                client_adapter.path_mtu(),
                &mut keep,
            )
        } else if bandwidth {
            let (r, t) = cost::with_cpu(|| {
                run_parallel(
                    &client_adapter,
                    peer,
                    &p,
                    cli.qps.unwrap_or(1),
                    cli.bidirectional && mode != PMode::Rperf,
                    &mut keep,
                )
            });
            cpu = Some(t);
            r.map(|(r, d)| {
                duplex = d;
                r
            })
        } else {
            perf::run(&client_adapter, peer, &p, &mut keep)
        };
        let run = match r {
            Ok(report) => ModeRun {
                mode,
                size,
                report: Some(report),
                error: None,
                cpu,
                base: size_base,
                duplex,
            },
            Err(e) => {
                let partial = e.partial().cloned();
                ModeRun {
                    mode,
                    size,
                    report: partial,
                    error: Some(e.0),
                    cpu,
                    base: size_base,
                    duplex: None,
                }
            }
        };
        ticker.hide();
        // A control-path failure (nothing measured: no peer, a refusal)
        // would repeat for every mode: the rest are skipped.
        // So would a peer that stopped answering or left.
        let fatal = run.error.as_deref().is_some_and(|e| {
            run.report.is_none()
                || e.contains("STATUS_IO_TIMEOUT")
                || e.contains("STATUS_CONNECTION_DISCONNECTED")
        });
        out.mode(&run, &base, &ctx);
        if let Some(t) = &tally_client {
            let qps = if bandwidth { cli.qps.unwrap_or(1) } else { 1 };
            t.tally(&tally_line(&run, qps));
        }
        runs.push(run);
        if fatal {
            break;
        }
    }
    ctx.total = t_all.elapsed();
    ctx.interrupted = perf::stop_requested();
    drop(base_client);
    drop(base_server);
    drop(ticker);
    // Tear down: the client's adapter (flushes the pcap), then the server.
    // SAFETY: every run closed its objects or left its state in `keep`,
    // which outlives the adapters.
    let client_stats = unsafe { client_adapter.close() };
    if let Some((sa, server)) = embedded {
        server.stop(&mut keep);
        // SAFETY: as above.
        let _ = unsafe { sa.close() };
    }
    drop(keep);
    ctx.pcap_frames = cli.pcap.as_ref().map(|_| client_stats.pcap_frames);
    ctx.pcap_skipped = client_stats.pcap_skipped;
    let failed: Vec<&ModeRun> = runs.iter().filter(|r| r.error.is_some()).collect();
    out.finish(&ctx, &base, &runs);
    for f in &failed {
        let e = f.error.as_deref().unwrap_or_default();
        // One prefix: perftest's errors already name the mode.
        if e.starts_with(&format!("perftest {} ", f.mode.name())) {
            eprintln!("ndkperf: error: {e}");
        } else {
            eprintln!("ndkperf: error: {}: {e}", f.mode.name());
        }
    }
    if ctx.interrupted {
        eprintln!(
            "ndkperf: interrupted: {} of {} runs finished",
            runs.len(),
            steps.len()
        );
    }
    Ok(if failed.is_empty() && !ctx.interrupted {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
