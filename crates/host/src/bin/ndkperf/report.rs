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

pub(super) struct Ctx {
    pub(super) client_ip: IpAddr,
    pub(super) peer: SocketAddr,
    pub(super) roce_port: u16,
    pub(super) embedded: bool,
    pub(super) total: Duration,
    pub(super) pcap_frames: Option<u64>,
    pub(super) bw_size: usize,
    pub(super) lat_size: usize,
    /// The connections' path MTU.
    pub(super) mtu: usize,
}

/// A ratio against a target, for the summary.
pub(super) struct Ratio {
    pub(super) what: String,
    pub(super) value: Option<f64>,
    pub(super) target: String,
    pub(super) met: Option<bool>,
    pub(super) detail: String,
}

pub(super) fn ratios(base: &Baselines, runs: &[ModeRun]) -> Vec<Ratio> {
    let find = |m: PMode| runs.iter().find(|r| r.mode == m);
    let mut out = Vec::new();
    if let Some(w) = find(PMode::WriteBw) {
        let udp = base.goodput.as_ref().map(|g| g.bytes_per_sec());
        let v = udp
            .filter(|u| *u > 0.0)
            .map(|u| w.report.bytes_per_sec() / u);
        out.push(Ratio {
            what: format!("RDMA WRITE {} B goodput / raw UDP goodput", w.size),
            value: v,
            target: ">= 0.80".into(),
            met: v.map(|v| v >= 0.8),
            detail: format!(
                "{} vs {}",
                fmt_rate(w.report.bytes_per_sec()),
                udp.map_or("not measured".into(), fmt_rate)
            ),
        });
    }
    let udp_rtt = base.latency.as_ref().map(|l| l.percentile(0.5));
    if let Some(s) = find(PMode::SendLat) {
        let v = udp_rtt
            .filter(|u| !u.is_zero())
            .map(|u| s.report.lat.pct(0.5).as_secs_f64() / u.as_secs_f64());
        out.push(Ratio {
            what: format!("{} B send latency p50 / UDP ping-pong p50", s.size),
            value: v,
            target: "<= 1.5".into(),
            met: v.map(|v| v <= 1.5),
            detail: format!(
                "{:.1} us vs {} (round trips)",
                us(s.report.lat.pct(0.5)),
                udp_rtt.map_or("not measured".into(), |u| format!("{:.1} us", us(u)))
            ),
        });
    }
    // Graceful disconnect: the clean (one at a time) disconnects of the
    // disconnect mode, else the single-connection modes' teardowns.
    let disc = find(PMode::Disconnect)
        .and_then(|d| d.report.disc.as_ref())
        .map(|d| d.disconnect_lat_serial.pct(0.5))
        .filter(|d| !d.is_zero())
        .or_else(|| {
            let mut v: Vec<u64> = runs
                .iter()
                .filter(|r| r.mode != PMode::Disconnect)
                .map(|r| r.report.disconnect.as_nanos() as u64)
                .collect();
            v.sort_unstable();
            (!v.is_empty()).then(|| Samples(v).pct(0.5))
        });
    if let Some(d) = disc {
        let v = udp_rtt
            .filter(|u| !u.is_zero())
            .map(|u| d.as_secs_f64() / u.as_secs_f64());
        out.push(Ratio {
            what: "graceful disconnect p50 / UDP round trip p50".into(),
            value: v,
            target: "<= 3".into(),
            met: v.map(|v| v <= 3.0),
            detail: format!(
                "{:.1} us vs {}",
                us(d),
                udp_rtt.map_or("not measured".into(), |u| format!("{:.1} us", us(u)))
            ),
        });
    }
    if let Some(r) = find(PMode::Disconnect).and_then(|d| d.report.disc.as_ref()) {
        let t = r.connect_phase + r.teardown_phase + r.create;
        out.push(Ratio {
            what: format!("{} QPs created, connected and disconnected", r.qps),
            value: Some(t.as_secs_f64()),
            target: "< 1 s for 10,000".into(),
            met: (r.qps >= 10_000).then_some(t < Duration::from_secs(1)),
            detail: format!(
                "create {:.0} ms + connect {:.0} ms + teardown {:.0} ms{}",
                r.create.as_secs_f64() * 1e3,
                r.connect_phase.as_secs_f64() * 1e3,
                r.teardown_phase.as_secs_f64() * 1e3,
                if r.qps < 10_000 {
                    "; `ndkperf disconnect -q 10000` measures the target"
                } else {
                    ""
                }
            ),
        });
    }
    if let Some(w) = find(PMode::WriteBw).filter(|w| w.report.allocs_per_msg.is_some()) {
        let v = w.report.allocs_per_msg.unwrap_or(0.0);
        out.push(Ratio {
            what: "allocations per message in steady state (write_bw, whole process)".into(),
            value: Some(v),
            target: "0".into(),
            met: Some(v == 0.0),
            detail: format!("over {} messages", w.report.alloc_window_msgs),
        });
    }
    out
}

pub(super) fn print_text(cli: &Cli, c: &Ctx, base: &Baselines, runs: &[ModeRun]) {
    println!(
        "ndkperf {}: {} ({} -> {}, {} port {}, MTU {}); RDMA modes took {:.1} s",
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
        c.total.as_secs_f64()
    );
    if base.goodput.is_some() {
        println!("baselines (same run, same path):");
        print_baselines(base, c.bw_size, c.lat_size);
    }
    println!(
        "  {:<10} {:>7} {:>9} {:>12} {:>10}   latency (us): min p50 p99 p99.9 max",
        "mode", "bytes", "iters", "BW average", "MsgRate"
    );
    for r in runs {
        let rep = &r.report;
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
            continue;
        }
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
            fmt_rate(rep.bytes_per_sec()),
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
    }
    let rs = ratios(base, runs);
    if !rs.is_empty() {
        println!("against the targets:");
        for r in &rs {
            println!(
                "  {:<68} {:>9}  target {:<18} {}  ({})",
                r.what,
                r.value.map_or("-".into(), |v| format!("{v:.3}")),
                r.target,
                match r.met {
                    Some(true) => "met",
                    Some(false) => "MISSED",
                    None => "n/a",
                },
                r.detail
            );
        }
    }
    let leaked: usize = runs
        .iter()
        .map(|r| r.report.leaked_objects)
        .max()
        .unwrap_or(0);
    if leaked > 0 {
        println!("  warning: {leaked} provider objects left open after a run");
    }
    if let (Some(n), Some(p)) = (c.pcap_frames, &cli.pcap) {
        println!(
            "  pcap: {n} RoCEv2 frames written to {} (decode: tshark -d udp.port=={},infiniband -r FILE)",
            p.display(),
            c.roce_port
        );
    }
}

pub(super) fn print_json(cli: &Cli, c: &Ctx, base: &Baselines, runs: &[ModeRun]) {
    let modes: Vec<Value> = runs
        .iter()
        .map(|r| {
            let rep = &r.report;
            json!({
                "mode": r.mode.name(),
                "bytes": r.size,
                "messages": rep.messages,
                "payload_bytes": rep.bytes,
                "seconds": rep.elapsed.as_secs_f64(),
                "bytes_per_sec": rep.bytes_per_sec(),
                "msg_per_sec": rep.msg_rate(),
                "latency_us": r.mode.is_latency().then(|| lat_json(&rep.lat)),
                "verify_errors": rep.verify_errors,
                "allocs_per_msg": rep.allocs_per_msg,
                "connect_us": us(rep.connect),
                "disconnect_us": us(rep.disconnect),
                "leaked_objects": rep.leaked_objects,
                "disconnect": rep.disc.as_ref().map(|d| json!({
                    "qps": d.qps,
                    "connected": d.connected,
                    "failed": d.failed,
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
            })
        })
        .collect();
    let rs: Vec<Value> = ratios(base, runs)
        .iter()
        .map(|r| {
            json!({
                "what": r.what, "value": r.value, "target": r.target, "met": r.met,
                "detail": r.detail,
            })
        })
        .collect();
    let v = json!({
        "tool": "ndkperf",
        "version": env!("CARGO_PKG_VERSION"),
        "embedded": c.embedded,
        "client": c.client_ip.to_string(),
        "server": c.peer.to_string(),
        "roce_port": c.roce_port,
        "framing": if cli.raw { "raw" } else { "udp" },
        "mtu": c.mtu,
        "seconds": c.total.as_secs_f64(),
        "baselines": baselines_json(base, c.bw_size, c.lat_size),
        "modes": modes,
        "ratios": rs,
        "pcap": cli.pcap.as_ref().map(|p| json!({
            "file": p.display().to_string(),
            "roce_frames": c.pcap_frames,
        })),
    });
    println!("{v:#}");
}
