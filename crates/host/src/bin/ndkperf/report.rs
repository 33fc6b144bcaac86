//! ndkperf's output: the baselines, each mode's figures and ratios, as
//! text or JSON.

use super::*;

pub(super) fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

pub(super) fn print_baselines(b: &Baselines, bw_size: usize, lat_size: usize) {
    if let Some(m) = &b.memcpy {
        println!(
            "  memcpy             {:>7} B blocks      {:>12}",
            m.block,
            fmt_rate(m.bytes_per_sec()),
        );
    }
    if let Some(g) = &b.goodput {
        println!(
            "  UDP goodput        {:>7} B datagrams   {:>12}   ({} sent, {:.1}% lost, GSO {}; \
             the datagrams of {bw_size} B messages)",
            g.datagram_len,
            fmt_rate(g.bytes_per_sec()),
            g.sent,
            g.loss() * 100.0,
            if g.gso_segments > 1 {
                format!("x{}", g.gso_segments)
            } else {
                "off".into()
            },
        );
    }
    if let Some(g) = &b.goodput_in {
        println!(
            "  UDP goodput in     {:>7} B datagrams   {:>12}   ({} received, sent by the server \
             at the same time: -b; both ways {})",
            g.datagram_len,
            fmt_rate(g.bytes_per_sec()),
            g.received,
            fmt_rate(g.bytes_per_sec() + b.goodput.map_or(0.0, |o| o.bytes_per_sec())),
        );
    }
    if let Some(l) = &b.latency {
        println!(
            "  UDP ping-pong RTT  {:>7} B datagrams   min {:.1}  p50 {:.1}  p99 {:.1}  max {:.1} us \
             ({} pings, {} lost; {lat_size} B messages)",
            l.datagram_len,
            us(l.percentile(0.0)),
            us(l.percentile(0.5)),
            us(l.percentile(0.99)),
            us(l.percentile(1.0)),
            l.rtt_ns.len(),
            l.lost
        );
    }
}

pub(super) fn lat_json(s: &Samples) -> Value {
    json!({
        "samples": s.0.len(),
        "min": us(s.pct(0.0)),
        "p50": us(s.pct(0.5)),
        "p90": us(s.pct(0.9)),
        "p99": us(s.pct(0.99)),
        "p99.9": us(s.pct(0.999)),
        "max": us(s.pct(1.0)),
        "mean": us(s.mean()),
        "stdev": us(s.stdev()),
    })
}

pub(super) fn baselines_json(b: &Baselines, bw_size: usize, lat_size: usize) -> Value {
    json!({
        "tcp_goodput": cost::tcp_json(&b.tcp),
        "memcpy": b.memcpy.map(|m| json!({
            "block_bytes": m.block,
            "copies": m.copies,
            "seconds": m.elapsed.as_secs_f64(),
            "bytes_per_sec": m.bytes_per_sec(),
        })),
        "udp_goodput": b.goodput.as_ref().map(|g| json!({
            "message_bytes": bw_size,
            "datagram_bytes": g.datagram_len,
            "sent": g.sent,
            "received": g.received,
            "loss": g.loss(),
            "seconds": g.window.as_secs_f64(),
            "bytes_per_sec": g.bytes_per_sec(),
            "gso_segments": g.gso_segments,
        })),
        // -b: what the server sent back at the same time.
        "udp_goodput_in": b.goodput_in.as_ref().map(|g| json!({
            "message_bytes": bw_size,
            "datagram_bytes": g.datagram_len,
            "received": g.received,
            "seconds": g.window.as_secs_f64(),
            "bytes_per_sec": g.bytes_per_sec(),
        })),
        "udp_ping_pong": b.latency.as_ref().map(|l| json!({
            "message_bytes": lat_size,
            "datagram_bytes": l.datagram_len,
            "pings": l.rtt_ns.len(),
            "lost": l.lost,
            "rtt_us": {
                "min": us(l.percentile(0.0)),
                "p50": us(l.percentile(0.5)),
                "p90": us(l.percentile(0.9)),
                "p99": us(l.percentile(0.99)),
                "p99.9": us(l.percentile(0.999)),
                "max": us(l.percentile(1.0)),
                "mean": us(l.mean()),
            },
        })),
    })
}

/// What the run is: the two sides and its parameters.
pub(super) struct Ctx {
    pub(super) client_ip: IpAddr,
    pub(super) peer: SocketAddr,
    pub(super) roce_port: u16,
    pub(super) embedded: bool,
    pub(super) total: Duration,
    pub(super) pcap_frames: Option<u64>,
    pub(super) pcap_skipped: u64,
    pub(super) bw_size: usize,
    pub(super) lat_size: usize,
    /// The connections' path MTU.
    pub(super) mtu: usize,
    pub(super) modes: Vec<PMode>,
    /// Seconds per measurement (`None`: -n iterations).
    pub(super) duration: Option<Duration>,
    pub(super) interrupted: bool,
}

/// A mode's figure against its same-run baseline, as an efficiency (1.0:
/// as good as the baseline; higher is better for every mode).
pub(super) struct Efficiency {
    /// Which baseline.
    pub(super) baseline: &'static str,
    /// The mode's figure and the baseline's, in `unit`.
    pub(super) figure: f64,
    pub(super) baseline_value: f64,
    pub(super) unit: &'static str,
    pub(super) value: f64,
    /// The project's target for this efficiency, if it has one (kept for
    /// the JSON and the benchmark report, never printed as a verdict).
    pub(super) target: Option<f64>,
}

/// The efficiency of `r` against the baselines: bandwidth modes against
/// raw UDP goodput (mode / UDP), round-trip modes and graceful disconnect
/// against the UDP ping-pong round trip (UDP p50 / mode p50).
pub(super) fn efficiency(base: &Baselines, r: &ModeRun) -> Option<Efficiency> {
    let rep = r.report.as_ref()?;
    // -a: the baseline measured at this row's size.
    let base = r.base.as_ref().unwrap_or(base);
    let udp_rtt = base.latency.as_ref().map(|l| us(l.percentile(0.5)));
    let udp_bw = base.goodput.as_ref().map(|g| g.bytes_per_sec());
    if let Some(d) = &rep.disc {
        let p50 = us(d.disconnect_lat_serial.pct(0.5));
        let rtt = udp_rtt?;
        return (p50 > 0.0).then(|| Efficiency {
            baseline: "udp_ping_pong_p50",
            figure: p50,
            baseline_value: rtt,
            unit: "us",
            value: rtt / p50,
            target: Some(1.0 / 3.0),
        });
    }
    if r.mode.is_latency() {
        // The baseline's datagrams carry messages of the latency size.
        if r.size != base.lat_size {
            return None;
        }
        let p50 = us(rep.lat.pct(0.5));
        let rtt = udp_rtt?;
        return (p50 > 0.0).then(|| Efficiency {
            baseline: "udp_ping_pong_p50",
            figure: p50,
            baseline_value: rtt,
            unit: "us",
            value: rtt / p50,
            target: (r.mode == PMode::SendLat).then_some(1.0 / 1.5),
        });
    }
    if r.size != base.bw_size {
        return None;
    }
    // -b: against UDP goodput both ways at once.
    let (udp_bw, baseline) = match r.duplex {
        Some(_) => (
            udp_bw
                .zip(base.goodput_in.as_ref().map(|g| g.bytes_per_sec()))
                .map(|(o, i)| o + i),
            "udp_goodput_both_ways",
        ),
        None => (udp_bw, "udp_goodput"),
    };
    let udp = udp_bw.filter(|u| *u > 0.0)?;
    Some(Efficiency {
        baseline,
        figure: rep.bytes_per_sec(),
        baseline_value: udp,
        unit: "B/s",
        value: rep.bytes_per_sec() / udp,
        target: (r.mode == PMode::WriteBw).then_some(0.8),
    })
}

/// The project's targets with the figures of this run (JSON only).
fn targets(base: &Baselines, runs: &[ModeRun]) -> Vec<Value> {
    let mut out = Vec::new();
    for r in runs {
        if let Some(e) = efficiency(base, r)
            && let Some(t) = e.target
        {
            out.push(json!({
                "what": format!("{} efficiency against {}", r.mode.name(), e.baseline),
                "value": e.value, "target": t, "op": ">=", "met": e.value >= t,
            }));
        }
        let Some(rep) = &r.report else { continue };
        if let Some(d) = &rep.disc {
            let t = d.connect_phase + d.teardown_phase + d.create;
            out.push(json!({
                "what": "seconds to create, connect and disconnect 10,000 QPs",
                "qps": d.qps, "value": t.as_secs_f64(), "target": 1.0, "op": "<",
                "met": (d.qps >= 10_000).then_some(t < Duration::from_secs(1)),
            }));
        }
        if r.mode == PMode::WriteBw
            && let Some(a) = rep.allocs_per_msg
        {
            out.push(json!({
                "what": "allocations per message in steady state (write_bw, whole process)",
                "value": a, "target": 0.0, "op": "<=", "met": a == 0.0,
                "messages": rep.alloc_window_msgs,
            }));
        }
    }
    out
}

fn rate(cli: &Cli, bytes_per_sec: f64) -> String {
    if cli.report_gbits {
        format!("{:.2} Gb/s", bytes_per_sec * 8.0 / 1e9)
    } else {
        fmt_rate(bytes_per_sec)
    }
}

/// The first NTSTATUS name in `msg`.
fn status_in(msg: &str) -> Option<&str> {
    let i = msg.find("STATUS_")?;
    let end = msg[i..]
        .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
        .map_or(msg.len(), |n| i + n);
    Some(&msg[i..end])
}

/// A JSON error object.
pub(super) fn error_json(msg: &str, mode: Option<PMode>) -> Value {
    json!({
        "message": msg,
        "mode": mode.map(|m| m.name()),
        "status": status_in(msg),
    })
}

/// The ISO 8601 UTC time now.
pub(super) fn timestamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (proleptic Gregorian).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The header every JSON document and stream starts with: the tool, when,
/// the command line.
pub(super) fn json_head() -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    m.insert("schema".into(), json!("ndkperf/2"));
    m.insert("tool".into(), json!("ndkperf"));
    m.insert("version".into(), json!(env!("CARGO_PKG_VERSION")));
    m.insert("timestamp".into(), json!(timestamp()));
    m.insert(
        "command_line".into(),
        json!(std::env::args().collect::<Vec<_>>()),
    );
    m
}

/// The summary document's every key, from the command line alone (what
/// a run has not measured is null): a run that fails before it starts,
/// and `--baseline`, fill in what they know, so every document has one
/// schema.
pub(super) fn skeleton_json(cli: &Cli) -> serde_json::Map<String, Value> {
    let modes: Vec<&str> = match cli.mode {
        Some(m) => vec![m.perf().name()],
        None if cli.baseline => vec![],
        None => PMode::ALL.iter().map(|m| m.name()).collect(),
    };
    let mut m = json_head();
    m.insert("type".into(), json!("summary"));
    m.insert(
        "params".into(),
        json!({
            "modes": modes,
            "size_bandwidth": cli.size.unwrap_or(65536),
            "size_latency": cli.size.unwrap_or(64),
            "all_sizes": cli.all,
            "iterations": cli.iters,
            "duration_s": cli.duration,
            "window": cli.window,
            "slots": cli.slots,
            "qps": cli.qps,
            "mtu": cli.mtu,
            "peer": cli.peer(),
            "local": cli.bind.map(|b| b.to_string()),
            "roce_port": cli.roce_port,
            "framing": if cli.raw { "raw" } else { "udp" },
            "embedded": cli.peer().is_none(),
            "perftest": cli.perftest,
            "bidirectional": cli.bidirectional,
            "timeout_s": cli.timeout,
            "busy_poll_us": cli.busy_poll,
        }),
    );
    m.insert("embedded".into(), json!(cli.peer().is_none()));
    m.insert("client".into(), json!(cli.bind.map(|b| b.to_string())));
    m.insert("server".into(), json!(cli.peer()));
    m.insert("mtu".into(), json!(cli.mtu));
    m.insert("seconds".into(), Value::Null);
    m.insert(
        "baselines".into(),
        baselines_json(&Baselines::default(), 0, 0),
    );
    // --baseline -a: the baselines at each size.
    m.insert("baselines_by_size".into(), Value::Null);
    m.insert("modes".into(), json!([]));
    m.insert("targets".into(), json!([]));
    m.insert("interrupted".into(), json!(false));
    m.insert("error".into(), Value::Null);
    m.insert("pcap".into(), Value::Null);
    m
}

/// The run's parameters, as JSON.
pub(super) fn params_json(cli: &Cli, c: &Ctx) -> Value {
    json!({
        "modes": c.modes.iter().map(|m| m.name()).collect::<Vec<_>>(),
        "size_bandwidth": c.bw_size,
        "size_latency": c.lat_size,
        "all_sizes": cli.all,
        "iterations": cli.iters,
        "duration_s": c.duration.map(|d| d.as_secs_f64()),
        "window": cli.window,
        "slots": cli.slots,
        "qps": cli.qps,
        "mtu": c.mtu,
        "peer": c.peer.to_string(),
        "local": c.client_ip.to_string(),
        "roce_port": c.roce_port,
        "framing": if cli.raw { "raw" } else { "udp" },
        "embedded": c.embedded,
        "perftest": cli.perftest,
        "bidirectional": cli.bidirectional,
        "timeout_s": cli.timeout,
        "busy_poll_us": cli.busy_poll,
    })
}

fn mode_json(r: &ModeRun, base: &Baselines) -> Value {
    let rep = r.report.clone().unwrap_or_default();
    let eff = efficiency(base, r);
    let mut v = json!({
        "mode": r.mode.name(),
        "bytes": r.size,
        "status": r.status(),
        "error": r.error.as_deref().map(|e| error_json(e, Some(r.mode))),
        "messages": rep.messages,
        "payload_bytes": rep.bytes,
        "seconds": rep.elapsed.as_secs_f64(),
        "bytes_per_sec": rep.bytes_per_sec(),
        "msg_per_sec": rep.msg_rate(),
        "window": rep.window,
        "latency_us": r.mode.is_latency().then(|| lat_json(&rep.lat)),
        "verify_errors": rep.verify_errors,
        "allocs_per_msg": rep.allocs_per_msg,
        "connect_us": us(rep.connect),
        "disconnect_us": us(rep.disconnect),
        "leaked_objects": rep.leaked_objects,
        "efficiency": eff.map(|e| json!({
            "baseline": e.baseline, "figure": e.figure, "baseline_value": e.baseline_value,
            "unit": e.unit, "value": e.value, "target": e.target,
        })),
        "disconnect": rep.disc.as_ref().map(|d| json!({
            "qps": d.qps,
            "connected": d.connected,
            "failed": d.failed,
            "window": d.window,
            "max_connecting": d.max_connecting,
            "create_s": d.create.as_secs_f64(),
            "connect_phase_s": d.connect_phase.as_secs_f64(),
            "teardown_phase_s": d.teardown_phase.as_secs_f64(),
            "teardown_per_sec": if d.teardown_phase.is_zero() { 0.0 } else {
                d.torn_down as f64 / d.teardown_phase.as_secs_f64() },
            "connect_us": lat_json(&d.connect_lat),
            "disconnect_serial_us": lat_json(&d.disconnect_lat_serial),
            "disconnect_burst_us": lat_json(&d.disconnect_lat_burst),
            "slowest_ns": d.slowest.iter().map(|t| json!({
                "index": t.index, "connect": t.connect, "replied": t.replied,
                "established": t.established, "traffic_done": t.traffic_done,
                "disconnect": t.disconnect, "disconnected": t.disconnected,
                "closed": t.closed,
            })).collect::<Vec<_>>(),
        })),
    });
    if let Value::Object(m) = &mut v {
        m.insert("cpu".into(), cost::mode_cost_json(r, base));
    }
    // -b: each direction's bytes (in: the reverse mode's, driven from here).
    v["duplex"] = r.duplex.map_or(Value::Null, |(out, inb)| {
        json!({"out_bytes": out, "in_bytes": inb, "reverse_mode": reverse_of(r.mode).name()})
    });
    // -a: the baseline measured at this size.
    v["baseline_at_size"] = r
        .base
        .as_ref()
        .map_or(Value::Null, |b| baselines_json(b, r.size, r.size));
    v
}

/// The summary document of a client run (`--json`, and the last line of
/// `--json-stream`).
fn summary_json(cli: &Cli, c: &Ctx, base: &Baselines, runs: &[ModeRun]) -> Value {
    let mut m = json_head();
    m.insert("type".into(), json!("summary"));
    m.insert("params".into(), params_json(cli, c));
    // Compatibility with the first schema's top-level fields.
    m.insert("embedded".into(), json!(c.embedded));
    m.insert("client".into(), json!(c.client_ip.to_string()));
    m.insert("server".into(), json!(c.peer.to_string()));
    m.insert("mtu".into(), json!(c.mtu));
    m.insert("seconds".into(), json!(c.total.as_secs_f64()));
    m.insert(
        "baselines".into(),
        baselines_json(base, c.bw_size, c.lat_size),
    );
    // -a in a client run: each row's own baseline is in the row.
    m.insert("baselines_by_size".into(), Value::Null);
    m.insert(
        "modes".into(),
        Value::Array(runs.iter().map(|r| mode_json(r, base)).collect()),
    );
    m.insert("targets".into(), Value::Array(targets(base, runs)));
    m.insert("interrupted".into(), json!(c.interrupted));
    let first_error = runs.iter().find(|r| r.error.is_some());
    m.insert(
        "error".into(),
        match first_error {
            Some(r) => error_json(r.error.as_deref().unwrap_or_default(), Some(r.mode)),
            None if c.interrupted => error_json("interrupted (SIGINT)", None),
            None => Value::Null,
        },
    );
    m.insert(
        "pcap".into(),
        cli.pcap.as_ref().map_or(Value::Null, |p| {
            json!({
                "file": p.display().to_string(),
                "roce_frames": c.pcap_frames,
                "skipped_for_size_cap": c.pcap_skipped,
                "max_bytes": cli.pcap_max,
            })
        }),
    );
    Value::Object(m)
}

/// Where a client run's results go, as they come.
pub(super) struct Output<'a> {
    cli: &'a Cli,
    header_printed: bool,
}

impl<'a> Output<'a> {
    pub(super) fn new(cli: &'a Cli) -> Self {
        Output {
            cli,
            header_printed: false,
        }
    }

    /// The TCP baseline, measured after the others: a text line under
    /// them, or its own JSON line (`--json-stream`).
    pub(super) fn tcp_baseline(&mut self, base: &Baselines) {
        if self.cli.json_stream {
            Self::line(json!({
                "type": "tcp_baseline",
                "tcp_goodput": cost::tcp_json(&base.tcp),
            }));
        } else if self.text() {
            cost::print_tcp(&base.tcp);
        }
    }

    fn text(&self) -> bool {
        !self.cli.json && !self.cli.json_stream
    }

    fn line(v: Value) {
        use std::io::Write;
        let mut o = std::io::stdout().lock();
        let _ = writeln!(o, "{v}");
        let _ = o.flush();
    }

    /// The run's parameters, before anything is measured.
    pub(super) fn start(&mut self, c: &Ctx) {
        let cli = self.cli;
        if self.cli.json_stream {
            let mut m = json_head();
            m.insert("type".into(), json!("start"));
            m.insert("params".into(), params_json(cli, c));
            Self::line(Value::Object(m));
        } else if self.text() {
            println!(
                "ndkperf {}: {} ({} -> {}, {} port {}, MTU {}{}{})",
                env!("CARGO_PKG_VERSION"),
                if c.embedded {
                    "server and client in one process over loopback"
                } else {
                    "client"
                },
                c.client_ip,
                c.peer,
                if cli.raw { "raw IP" } else { "UDP" },
                c.roce_port,
                c.mtu,
                cli.slots
                    .map(|n| format!(", {n} message buffers per side"))
                    .unwrap_or_default(),
                cli.busy_poll
                    .map(|us| format!(", busy polling {us} us after work"))
                    .unwrap_or_default(),
            );
        }
    }

    pub(super) fn baselines(&mut self, base: &Baselines, c: &Ctx) {
        if self.cli.json_stream {
            Self::line(json!({
                "type": "baselines",
                "baselines": baselines_json(base, c.bw_size, c.lat_size),
            }));
        } else if self.text() {
            println!("baselines (same run, same path):");
            print_baselines(base, c.bw_size, c.lat_size);
        }
    }

    /// One mode, as it finishes.
    pub(super) fn mode(&mut self, r: &ModeRun, base: &Baselines, c: &Ctx) {
        if self.cli.json_stream {
            let mut v = mode_json(r, base);
            if let Value::Object(m) = &mut v {
                m.insert("type".into(), json!("mode"));
            }
            Self::line(v);
            return;
        }
        if !self.text() {
            return;
        }
        use std::io::Write;
        if !self.header_printed {
            println!(
                "  {:<10} {:>7} {:>9} {:>12} {:>10}   latency (us): min p50 p99 p99.9 max",
                "mode", "bytes", "iters", "BW average", "MsgRate"
            );
            self.header_printed = true;
        }
        print_mode_text(self.cli, r, base, c);
        let _ = std::io::stdout().flush();
    }

    /// The end: the JSON document, or the text's closing lines.
    pub(super) fn finish(&mut self, c: &Ctx, base: &Baselines, runs: &[ModeRun]) {
        let cli = self.cli;
        if cli.json {
            println!("{:#}", summary_json(cli, c, base, runs));
            return;
        }
        if cli.json_stream {
            Self::line(summary_json(cli, c, base, runs));
            return;
        }
        println!(
            "  {} of {} modes finished in {:.1} s{}",
            runs.iter().filter(|r| r.error.is_none()).count(),
            runs.len(),
            c.total.as_secs_f64(),
            if c.interrupted {
                " (interrupted: the running mode's figures cover what completed)"
            } else {
                ""
            }
        );
        let leaked = runs
            .iter()
            .filter_map(|r| r.report.as_ref())
            .map(|r| r.leaked_objects)
            .max()
            .unwrap_or(0);
        if leaked > 0 {
            println!("  warning: {leaked} provider objects left open after a run");
        }
        if let (Some(n), Some(p)) = (c.pcap_frames, &cli.pcap) {
            println!(
                "  pcap: {n} RoCEv2 frames written to {}{} (decode: tshark -d udp.port=={},infiniband -r FILE)",
                p.display(),
                if c.pcap_skipped > 0 {
                    format!(", {} more left out for --pcap-max", c.pcap_skipped)
                } else {
                    String::new()
                },
                c.roce_port
            );
        }
    }
}

fn print_efficiency(cli: &Cli, r: &ModeRun, rep: &Report, base: &Baselines, mtu: usize) {
    if let Some(e) = efficiency(base, r) {
        let (fig, b) = if e.unit == "us" {
            (
                format!("{:.1} us", e.figure),
                format!("{:.1} us", e.baseline_value),
            )
        } else {
            (rate(cli, e.figure), rate(cli, e.baseline_value))
        };
        println!(
            "      efficiency {:.2} against {} (same run): {fig} vs {b}",
            e.value,
            match e.baseline {
                "udp_goodput" => "raw UDP goodput",
                "udp_goodput_both_ways" => "raw UDP goodput both ways at once",
                _ if rep.disc.is_some() => "the UDP round trip (graceful disconnect p50)",
                _ => "the UDP ping-pong round trip (p50)",
            },
        );
    } else if r
        .base
        .as_ref()
        .is_some_and(|b| b.latency.is_none() && b.goodput.is_none())
    {
        println!(
            "      no same-size baseline: the UDP ping-pong carries one datagram, a {} B \
             message is {} packets at MTU {}",
            r.size,
            r.size.div_ceil(mtu),
            mtu
        );
    }
    if let Some((out, inb)) = r.duplex {
        let s = rep.elapsed.as_secs_f64().max(1e-9);
        println!(
            "      both ways (-b): {} out ({}), {} in ({}, driven from this side)",
            rate(cli, out as f64 / s),
            r.mode.name(),
            rate(cli, inb as f64 / s),
            reverse_of(r.mode).name()
        );
    }
}

fn print_mode_text(cli: &Cli, r: &ModeRun, base: &Baselines, c: &Ctx) {
    let Some(rep) = &r.report else {
        println!(
            "  {:<10} {:>7}   failed: {}",
            r.mode.name(),
            r.size,
            r.error.as_deref().unwrap_or_default()
        );
        return;
    };
    if let Some(d) = &rep.disc {
        println!(
            "  {:<10} {:>7} {:>9}   {} QPs: connect p50 {:.0} p99 {:.0} max {:.0} us; \
             disconnect one-at-a-time p50 {:.0} us, burst p50 {:.0} p99 {:.0} us; \
             teardown {:.0} conn/s",
            r.mode.name(),
            r.size,
            d.qps,
            d.qps,
            us(d.connect_lat.pct(0.5)),
            us(d.connect_lat.pct(0.99)),
            us(d.connect_lat.pct(1.0)),
            us(d.disconnect_lat_serial.pct(0.5)),
            us(d.disconnect_lat_burst.pct(0.5)),
            us(d.disconnect_lat_burst.pct(0.99)),
            if d.teardown_phase.is_zero() {
                0.0
            } else {
                d.torn_down as f64 / d.teardown_phase.as_secs_f64()
            }
        );
        print_efficiency(cli, r, rep, base, c.mtu);
        let t = d.connect_phase + d.teardown_phase + d.create;
        println!(
            "      {} QPs created, connected and disconnected in {:.0} ms (create {:.0} + connect \
             {:.0} + teardown {:.0})",
            d.qps,
            t.as_secs_f64() * 1e3,
            d.create.as_secs_f64() * 1e3,
            d.connect_phase.as_secs_f64() * 1e3,
            d.teardown_phase.as_secs_f64() * 1e3,
        );
        for t in &d.slowest {
            let ms = |x: u64| x as f64 / 1e6;
            println!(
                "      slow #{:<5} connect {:.2} replied {:.2} established {:.2} traffic {:.2} \
                 disconnect {:.2} disconnected {:.2} closed {:.2} ms",
                t.index,
                ms(t.connect),
                ms(t.replied),
                ms(t.established),
                ms(t.traffic_done),
                ms(t.disconnect),
                ms(t.disconnected),
                ms(t.closed)
            );
        }
    } else {
        let lat = if r.mode.is_latency() {
            let l = &rep.lat;
            format!(
                "{:.1} {:.1} {:.1} {:.1} {:.1}",
                us(l.pct(0.0)),
                us(l.pct(0.5)),
                us(l.pct(0.99)),
                us(l.pct(0.999)),
                us(l.pct(1.0))
            )
        } else {
            "-".into()
        };
        println!(
            "  {:<10} {:>7} {:>9} {:>12} {:>7.3} Mpps   {}{}",
            r.mode.name(),
            r.size,
            rep.messages,
            rate(cli, rep.bytes_per_sec()),
            rep.msg_rate() / 1e6,
            lat,
            if r.mode == PMode::Rping {
                format!(
                    "  ({} of {} iterations verified)",
                    rep.messages - rep.verify_errors,
                    rep.messages
                )
            } else {
                String::new()
            }
        );
        print_efficiency(cli, r, rep, base, c.mtu);
        cost::print_mode_cost(r, base);
    }
    if let Some(e) = &r.error {
        println!("      failed after {} messages: {e}", rep.messages);
    } else if rep.interrupted {
        println!("      interrupted (Ctrl-C): the figures cover what completed");
    }
}
