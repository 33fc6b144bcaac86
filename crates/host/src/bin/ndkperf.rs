//! ndkperf: RDMA performance tests for ndkrs in the perftest tradition,
//! reported as ratios to baselines measured in the same run.
//!
//! Part 1 (this build): the baselines (memcpy bandwidth, raw UDP goodput
//! with the datagram size RoCE would use, UDP ping-pong round trips), in
//! one process over loopback or against `ndkperf --server` elsewhere. The
//! RDMA modes parse their flags and say they need the NDK dispatch layer;
//! they never report a made-up figure.

use std::io::IsTerminal;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use host::baseline::{self, Client, Goodput, Latency, Memcpy, fmt_rate, roce_datagram_len};
use host::io::UdpTransport;
use serde_json::json;

/// Exit status when a mode is not built yet.
const EXIT_NOT_BUILT: u8 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// RDMA WRITE bandwidth (ib_write_bw).
    #[value(name = "write_bw", alias = "write-bw")]
    WriteBw,
    /// RDMA READ bandwidth (ib_read_bw).
    #[value(name = "read_bw", alias = "read-bw")]
    ReadBw,
    /// SEND bandwidth (ib_send_bw).
    #[value(name = "send_bw", alias = "send-bw")]
    SendBw,
    /// SEND latency (ib_send_lat).
    #[value(name = "send_lat", alias = "send-lat")]
    SendLat,
    /// RDMA WRITE latency (ib_write_lat).
    #[value(name = "write_lat", alias = "write-lat")]
    WriteLat,
    /// RDMA READ latency (ib_read_lat).
    #[value(name = "read_lat", alias = "read-lat")]
    ReadLat,
    /// NdkPerfCmd's rping test type.
    #[value(name = "rping")]
    Rping,
    /// NdkPerfCmd's rperf test type.
    #[value(name = "rperf")]
    Rperf,
    /// Connect N QPs, run traffic, disconnect all: connect and disconnect
    /// latency percentiles and the teardown rate.
    #[value(name = "disconnect")]
    Disconnect,
}

impl Mode {
    fn name(self) -> String {
        self.to_possible_value()
            .map(|v| v.get_name().to_string())
            .unwrap_or_default()
    }

    fn is_latency(self) -> bool {
        matches!(
            self,
            Mode::SendLat | Mode::WriteLat | Mode::ReadLat | Mode::Rping
        )
    }
}

/// ndkperf: RDMA performance of ndkrs, as ratios to baselines measured in
/// the same run.
#[derive(Debug, Parser)]
#[command(
    name = "ndkperf",
    version,
    after_help = "Without a mode, ndkperf runs the baselines over loopback and lists the modes \
                  not available yet.\nExit status: 0 success, 1 run-time error (port in use, \
                  unreachable peer), 2 bad usage, 3 mode not built yet."
)]
struct Cli {
    /// Test mode; without one, the baselines.
    mode: Option<Mode>,
    /// Run only the baselines (raw UDP goodput, UDP ping-pong, memcpy).
    #[arg(long)]
    baseline: bool,
    /// Message size in bytes (suffixes K, M: 64K); default 65536 for
    /// bandwidth, 64 for latency.
    #[arg(short = 's', long, value_parser = parse_size)]
    size: Option<usize>,
    /// Iterations (latency: ping-pongs; default 10000).
    #[arg(short = 'n', long, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    iters: Option<u64>,
    /// Seconds per timed measurement (default 1).
    #[arg(short = 'D', long, value_parser = parse_secs)]
    duration: Option<f64>,
    /// Serve the client's measurements (stops after --idle-timeout
    /// seconds without traffic).
    #[arg(long, conflicts_with = "client")]
    server: bool,
    /// Measure against `ndkperf --server` at ADDR (host or host:port).
    #[arg(short = 'c', long, value_name = "ADDR")]
    client: Option<String>,
    /// UDP port of the server (default 18515; in-process runs pick a free
    /// one unless given).
    #[arg(short = 'p', long)]
    port: Option<u16>,
    /// Local address to bind (default: loopback in-process, any address
    /// otherwise).
    #[arg(long, value_name = "ADDR")]
    bind: Option<IpAddr>,
    /// Path MTU in bytes: 256, 512, 1024, 2048 or 4096.
    #[arg(long, default_value_t = 4096, value_parser = parse_mtu)]
    mtu: usize,
    /// Queue pairs (disconnect mode).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    qps: Option<u32>,
    /// Server: stop after this many seconds without traffic.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    idle_timeout: u64,
    /// Print the results as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// Write the run's RoCEv2 frames to FILE (pcap; tshark decodes it).
    #[arg(long, value_name = "FILE")]
    pcap: Option<PathBuf>,
    /// No progress line.
    #[arg(short, long)]
    quiet: bool,
}

fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let (num, mult) = match t.char_indices().last() {
        Some((i, 'K' | 'k')) => (&t[..i], 1usize << 10),
        Some((i, 'M' | 'm')) => (&t[..i], 1 << 20),
        Some((i, 'G' | 'g')) => (&t[..i], 1 << 30),
        _ => (t, 1),
    };
    let n: usize = num
        .parse()
        .map_err(|_| format!("`{s}` is not a size (bytes, or with K/M/G)"))?;
    match n.checked_mul(mult) {
        Some(v) if (1..=1 << 30).contains(&v) => Ok(v),
        _ => Err(format!("size {s} out of range (1 byte to 1 GiB)")),
    }
}

fn parse_secs(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("`{s}` is not a number of seconds"))?;
    if (0.01..=3600.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("duration {s} out of range (0.01 to 3600 s)"))
    }
}

fn parse_mtu(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(v @ (256 | 512 | 1024 | 2048 | 4096)) => Ok(v),
        _ => Err(format!("MTU {s} is not one of 256, 512, 1024, 2048, 4096")),
    }
}

/// The live progress line: on stderr, only on a terminal, only once the
/// run has lasted a second.
struct ProgressLine {
    enabled: bool,
    start: Instant,
    shown: bool,
}

impl ProgressLine {
    fn new(enabled: bool) -> Self {
        ProgressLine {
            enabled,
            start: Instant::now(),
            shown: false,
        }
    }

    fn update(&mut self, status: &str) {
        let e = self.start.elapsed();
        if self.enabled && e >= Duration::from_secs(1) {
            eprint!("\r\x1b[K[{:5.1}s] {status}", e.as_secs_f64());
            self.shown = true;
        }
    }

    fn clear(&mut self) {
        if self.shown {
            eprint!("\r\x1b[K");
            self.shown = false;
        }
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            // clap prints help/version on stdout (status 0) and usage
            // errors on stderr (status 2).
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    match run(&cli) {
        Ok(code) => code,
        Err(msg) => {
            eprintln!("ndkperf: error: {msg}");
            ExitCode::from(1)
        }
    }
}

const RDMA_MODES: [Mode; 9] = [
    Mode::WriteBw,
    Mode::ReadBw,
    Mode::SendBw,
    Mode::SendLat,
    Mode::WriteLat,
    Mode::ReadLat,
    Mode::Rping,
    Mode::Rperf,
    Mode::Disconnect,
];

fn run(cli: &Cli) -> Result<ExitCode, String> {
    if let Some(mode) = cli.mode {
        // Flags parsed and checked above; no figure is reported for a
        // mode that does not exist yet.
        let what = if mode.is_latency() {
            "latency"
        } else {
            "bandwidth"
        };
        eprintln!(
            "ndkperf: mode {} ({what}) needs the NDK dispatch layer (crates/ndk), not built yet; \
             no result reported. `ndkperf --baseline` measures the baselines.",
            mode.name()
        );
        return Ok(ExitCode::from(EXIT_NOT_BUILT));
    }
    if cli.server {
        return serve(cli);
    }
    baselines(cli)
}

fn serve(cli: &Cli) -> Result<ExitCode, String> {
    let ip = cli.bind.unwrap_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED));
    let addr = SocketAddr::new(ip, cli.port.unwrap_or(18515));
    let t = UdpTransport::bind(addr).map_err(|e| e.to_string())?;
    let idle = Duration::from_secs(cli.idle_timeout);
    eprintln!(
        "ndkperf: baseline server on {} (stops after {} s without traffic)",
        host::io::Transport::local_addr(&t),
        idle.as_secs()
    );
    let stop = AtomicBool::new(false);
    let s = baseline::run_server(t, idle, &stop).map_err(|e| e.to_string())?;
    eprintln!(
        "ndkperf: server idle for {} s, stopping ({} pings echoed, {} goodput datagrams counted)",
        idle.as_secs(),
        s.pings,
        s.datagrams
    );
    Ok(ExitCode::SUCCESS)
}

fn resolve(addr: &str, port: u16) -> Result<SocketAddr, String> {
    let bad = |why: &str| format!("bad peer address `{addr}`: {why}");
    if let Ok(a) = addr.parse::<SocketAddr>() {
        return Ok(a);
    }
    if let Ok(ip) = addr
        .trim_matches(|c| c == '[' || c == ']')
        .parse::<IpAddr>()
    {
        return Ok(SocketAddr::new(ip, port));
    }
    let with_port = if addr.contains(':') {
        addr.to_string()
    } else {
        format!("{addr}:{port}")
    };
    with_port
        .to_socket_addrs()
        .map_err(|e| bad(&e.to_string()))?
        .next()
        .ok_or_else(|| bad("no address found"))
}

struct Results {
    memcpy: Memcpy,
    goodput: Goodput,
    latency: Latency,
}

fn baselines(cli: &Cli) -> Result<ExitCode, String> {
    let duration = Duration::from_secs_f64(cli.duration.unwrap_or(1.0));
    let bw_size = cli.size.unwrap_or(65536);
    let lat_size = cli.size.unwrap_or(64);
    let iters = cli.iters.unwrap_or(10_000);
    let mut progress = ProgressLine::new(!cli.quiet && std::io::stderr().is_terminal());

    // In-process server on loopback unless a peer is named.
    let (server, local) = match &cli.client {
        Some(peer) => (None, resolve(peer, cli.port.unwrap_or(18515))?),
        None => {
            let ip = cli.bind.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
            let s = baseline::spawn_server(
                SocketAddr::new(ip, cli.port.unwrap_or(0)),
                Duration::from_secs(600),
            )
            .map_err(|e| e.to_string())?;
            let addr = s.addr();
            (Some(s), addr)
        }
    };
    let client = Client::new(local, cli.bind).map_err(|e| e.to_string())?;
    client.hello().map_err(|e| e.to_string())?;

    let mut tick = |_: Duration, status: &str| progress.update(status);
    let memcpy = baseline::memcpy_bandwidth(bw_size, duration / 2, &mut tick);
    let goodput = client
        .goodput(roce_datagram_len(bw_size, cli.mtu), duration, &mut tick)
        .map_err(|e| e.to_string())?;
    let latency = client
        .ping_pong(
            roce_datagram_len(lat_size, cli.mtu),
            iters,
            duration.max(Duration::from_secs(1)) * 2,
            &mut tick,
        )
        .map_err(|e| e.to_string())?;
    progress.clear();
    if let Some(s) = server {
        let _ = s.stop();
    }
    let pcap_frames = match &cli.pcap {
        Some(path) => {
            // The baselines carry no RoCE traffic: an empty, valid capture.
            let mut w = host::pcap::create(path).map_err(|e| e.to_string())?;
            w.finish()
                .map_err(|e| format!("writing {}: {e}", path.display()))?;
            Some(w.frames())
        }
        None => None,
    };
    let r = Results {
        memcpy,
        goodput,
        latency,
    };
    let embedded = cli.client.is_none();
    if cli.json {
        print_json(cli, &r, local, embedded, pcap_frames, bw_size, lat_size);
    } else {
        print_text(cli, &r, local, embedded, pcap_frames, bw_size, lat_size);
    }
    Ok(ExitCode::SUCCESS)
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn print_text(
    cli: &Cli,
    r: &Results,
    server: SocketAddr,
    embedded: bool,
    pcap_frames: Option<u64>,
    bw_size: usize,
    lat_size: usize,
) {
    let where_ = if embedded {
        format!("in-process server on {server}")
    } else {
        format!("server {server}")
    };
    println!(
        "ndkperf {}: baselines, measured in this run ({where_}, MTU {})",
        env!("CARGO_PKG_VERSION"),
        cli.mtu
    );
    let m = &r.memcpy;
    println!(
        "  memcpy             {:>7} B blocks      {:>12}   ({} copies in {:.2} s)",
        m.block,
        fmt_rate(m.bytes_per_sec()),
        m.copies,
        m.elapsed.as_secs_f64()
    );
    let g = &r.goodput;
    println!(
        "  UDP goodput        {:>7} B datagrams   {:>12}   ({} sent, {:.1}% lost, GSO {}, {:.2} s; \
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
        g.window.as_secs_f64()
    );
    let l = &r.latency;
    println!(
        "  UDP ping-pong RTT  {:>7} B datagrams   min {:.1}  p50 {:.1}  p90 {:.1}  p99 {:.1}  \
         p99.9 {:.1}  max {:.1} us   ({} pings, {} lost; {lat_size} B messages)",
        l.datagram_len,
        us(l.percentile(0.0)),
        us(l.percentile(0.5)),
        us(l.percentile(0.9)),
        us(l.percentile(0.99)),
        us(l.percentile(0.999)),
        us(l.percentile(1.0)),
        l.rtt_ns.len(),
        l.lost
    );
    if let (Some(n), Some(p)) = (pcap_frames, &cli.pcap) {
        println!(
            "  pcap: {} RoCE frames written to {} (the baselines carry no RoCE traffic)",
            n,
            p.display()
        );
    }
    let names: Vec<String> = RDMA_MODES.iter().map(|m| m.name()).collect();
    println!(
        "not available yet (need the NDK dispatch layer, not built yet): {}",
        names.join(" ")
    );
}

fn print_json(
    cli: &Cli,
    r: &Results,
    server: SocketAddr,
    embedded: bool,
    pcap_frames: Option<u64>,
    bw_size: usize,
    lat_size: usize,
) {
    let l = &r.latency;
    let names: Vec<String> = RDMA_MODES.iter().map(|m| m.name()).collect();
    let v = json!({
        "tool": "ndkperf",
        "version": env!("CARGO_PKG_VERSION"),
        "server": server.to_string(),
        "embedded": embedded,
        "mtu": cli.mtu,
        "baselines": {
            "memcpy": {
                "block_bytes": r.memcpy.block,
                "copies": r.memcpy.copies,
                "seconds": r.memcpy.elapsed.as_secs_f64(),
                "bytes_per_sec": r.memcpy.bytes_per_sec(),
            },
            "udp_goodput": {
                "message_bytes": bw_size,
                "datagram_bytes": r.goodput.datagram_len,
                "sent": r.goodput.sent,
                "received": r.goodput.received,
                "loss": r.goodput.loss(),
                "seconds": r.goodput.window.as_secs_f64(),
                "bytes_per_sec": r.goodput.bytes_per_sec(),
                "gso_segments": r.goodput.gso_segments,
            },
            "udp_ping_pong": {
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
            },
        },
        "pcap": cli.pcap.as_ref().map(|p| json!({
            "file": p.display().to_string(),
            "roce_frames": pcap_frames,
        })),
        "modes_not_available": names,
        "reason": "the RDMA modes need the NDK dispatch layer, not built yet",
    });
    println!("{v:#}");
}
