//! ndkperf: RDMA performance tests for ndkrs in the perftest tradition,
//! reported as ratios to baselines measured in the same run.
//!
//! Every RDMA mode drives the provider only through the NDK dispatch
//! tables (`host::perf`), over the host shell's UDP (or raw IP) event
//! loop. Without arguments it runs server and client in one process over
//! loopback (127.0.0.1 and 127.0.0.2, one UDP port) and reports every mode
//! against the baselines (raw UDP goodput, UDP ping-pong, memcpy).

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::IsTerminal;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use host::adapter::{Adapter, AdapterConfig, Seed, quick_cm, quick_cm_timewait};
use host::baseline::{self, Client, Goodput, Latency, Memcpy, fmt_rate, roce_datagram_len};
use host::io::{RawTransport, Transport, UdpTransport};
use host::perf::{self, Keep, Mode as PMode, Params, Report, Samples, Server};
use serde_json::{Value, json};

// ---- allocation counting (steady-state allocations per message) ----

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn alloc_count() -> u64 {
    ALLOCS.load(Ordering::Relaxed)
}

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
    /// SEND ping-pong latency (ib_send_lat).
    #[value(name = "send_lat", alias = "send-lat")]
    SendLat,
    /// RDMA WRITE round trip, post to completion (ib_write_lat's shape).
    #[value(name = "write_lat", alias = "write-lat")]
    WriteLat,
    /// RDMA READ round trip (ib_read_lat).
    #[value(name = "read_lat", alias = "read-lat")]
    ReadLat,
    /// rping's Send / Read / Send / Write / Send loop with verification.
    #[value(name = "rping")]
    Rping,
    /// RDMA WRITE + READ throughput mix (NdkPerfCmd's rperf).
    #[value(name = "rperf")]
    Rperf,
    /// Connect N QPs, run traffic, disconnect all: connect and disconnect
    /// latency percentiles and the teardown rate.
    #[value(name = "disconnect")]
    Disconnect,
}

impl Mode {
    fn perf(self) -> PMode {
        match self {
            Mode::WriteBw => PMode::WriteBw,
            Mode::ReadBw => PMode::ReadBw,
            Mode::SendBw => PMode::SendBw,
            Mode::SendLat => PMode::SendLat,
            Mode::WriteLat => PMode::WriteLat,
            Mode::ReadLat => PMode::ReadLat,
            Mode::Rping => PMode::Rping,
            Mode::Rperf => PMode::Rperf,
            Mode::Disconnect => PMode::Disconnect,
        }
    }
}

/// ndkperf: RDMA performance of ndkrs, as ratios to baselines measured in
/// the same run.
#[derive(Debug, Parser)]
#[command(
    name = "ndkperf",
    version,
    after_help = "Without a mode, ndkperf runs every mode and the baselines over loopback (server \
                  and client in one process) and prints the ratios.\nTwo processes or hosts: \
                  `ndkperf --server --bind A` there, `ndkperf [MODE] --client A` here (both on \
                  the same --roce-port).\nLinux rping as the peer (rping mode plays rping's own \
                  protocol; rxe needs raw IP): `rping -s -V -p 7174` there and `ndkperf rping \
                  --client HOST:7174 --raw --no-baseline` here, or `ndkperf --server --raw --bind A \
                  -p 7174` here and `rping -c -V -a A -p 7174` there.\nLinux perftest as the server: \
                  `ib_write_bw -R -s 4096 -n 1000` there and `ndkperf write_bw --perftest --client \
                  HOST --raw --no-baseline -s 4096 -n 1000 --mtu 1024` here (likewise read_bw, \
                  send_bw, send_lat, write_lat, read_lat; perftest's -q, -b, -a as -q, -b, -a); or `ndkperf write_bw --server --perftest --raw --bind A -s 4096 -n \
                  1000` here and `ib_write_bw -R -s 4096 -n 1000 A` there.\nExit status: 0 success, 1 run-time error (port in use, \
                  unreachable or rejecting peer), 2 bad usage."
)]
struct Cli {
    /// Test mode; without one, every mode.
    mode: Option<Mode>,
    /// Run only the baselines (raw UDP goodput, UDP ping-pong, memcpy).
    #[arg(long, conflicts_with = "no_baseline")]
    baseline: bool,
    /// Skip the baselines (no ratios).
    #[arg(long)]
    no_baseline: bool,
    /// Message size in bytes (suffixes K, M: 64K); default 65536 for
    /// bandwidth, 64 for latency.
    #[arg(short = 's', long, value_parser = parse_size)]
    size: Option<usize>,
    /// Iterations (messages; latency: round trips); default: run for -D.
    #[arg(short = 'n', long, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    iters: Option<u64>,
    /// Seconds per timed measurement (default 1; 2 for single modes).
    #[arg(short = 'D', long, value_parser = parse_secs)]
    duration: Option<f64>,
    /// Outstanding requests in the bandwidth modes (disconnect: connects
    /// and disconnects in flight).
    #[arg(short = 'w', long, value_parser = clap::value_parser!(u32).range(1..=1024))]
    window: Option<u32>,
    /// Serve clients: baselines on -p, RDMA on --roce-port, until
    /// --idle-timeout seconds pass without activity.
    #[arg(long, conflicts_with = "client")]
    server: bool,
    /// Run against `ndkperf --server` at ADDR (host or host:port).
    #[arg(short = 'c', long, value_name = "ADDR")]
    client: Option<String>,
    /// Baseline UDP port and RDMA CM port of the server (default 18515).
    #[arg(short = 'p', long)]
    port: Option<u16>,
    /// UDP port both RoCE adapters use (default 4791; in-process runs
    /// pick a free port >= 49152).
    #[arg(long)]
    roce_port: Option<u16>,
    /// Raw IP mode (exact ICRCs, port 4791; needs CAP_NET_RAW).
    #[arg(long)]
    raw: bool,
    /// Speak Linux perftest's -R protocol: with --client, be the client
    /// of `ib_write_bw -R`, `ib_read_bw -R`, `ib_send_bw -R` or
    /// `ib_send_lat -R`; with --server, serve one `ib_*_bw -R HOST` /
    /// `ib_send_lat -R HOST` client in MODE (with its -s and -n) and exit.
    /// perftest's exchange runs over an rdma_cm control connection to the
    /// server's port (-p, 18515), the test QPs connect to the same port.
    /// Modes write_bw, read_bw, send_bw, send_lat, write_lat, read_lat;
    /// perftest's -q, -b and -a as -q, -b and -a here.
    #[arg(long)]
    perftest: bool,
    /// Local address to bind (in-process: the client's; default
    /// 127.0.0.1 with the server on 127.0.0.2).
    #[arg(long, value_name = "ADDR")]
    bind: Option<IpAddr>,
    /// Path MTU in bytes: 256, 512, 1024, 2048 or 4096 [default: the
    /// largest the local address's link carries: 1024 on a 1500-byte
    /// Ethernet link, 4096 on loopback or a 9000-byte link].
    #[arg(long, value_parser = parse_mtu)]
    mtu: Option<usize>,
    /// Queue pairs (disconnect mode; default 1000, 10000 in the default
    /// run); with --perftest, test QPs (perftest's -q, bandwidth modes;
    /// default 1).
    #[arg(short = 'q', long, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    qps: Option<u32>,
    /// --perftest: every message size from 2 B to 8 MiB, as perftest's -a
    /// (the peer runs -a too).
    #[arg(short = 'a', long, requires = "perftest", conflicts_with = "size")]
    all: bool,
    /// --perftest: bidirectional, as perftest's -b (bandwidth modes; the
    /// peer runs -b too).
    #[arg(short = 'b', long, requires = "perftest")]
    bidirectional: bool,
    /// Bound on each connect, disconnect and close, in seconds.
    #[arg(long, default_value_t = 5.0, value_parser = parse_secs)]
    timeout: f64,
    /// Server: stop after this many seconds without activity.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    idle_timeout: u64,
    /// Server: reject every connection (tests a client's REJ path).
    #[arg(long, hide = true)]
    reject: bool,
    /// Print the results as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// Write the run's RoCEv2 frames to FILE (pcap; tshark decodes it).
    #[arg(long, value_name = "FILE")]
    pcap: Option<PathBuf>,
    /// No progress line.
    #[arg(long)]
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

/// The path MTU of an adapter on local address `ip`: the largest the link
/// under it carries (as perftest takes the port's active MTU), or `--mtu`
/// if given and the link carries it.
fn path_mtu(cli: &Cli, ip: IpAddr) -> Result<usize, String> {
    let link = host::link::link_of(ip).map_err(|e| format!("finding the link under {ip}: {e}"))?;
    let carried = link.path_mtu(ip).ok_or_else(|| {
        format!(
            "{} (MTU {}) is too small for RoCE: not even a 256-byte path MTU fits",
            link.name, link.mtu
        )
    })? as usize;
    match cli.mtu {
        Some(m) if m > carried => Err(format!(
            "--mtu {m}: {} (MTU {}) carries RoCE path MTUs up to {carried}; \
             use --mtu {carried} or less, or raise the link's MTU",
            link.name, link.mtu
        )),
        Some(m) => Ok(m),
        None => Ok(carried),
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
    perf::set_alloc_probe(alloc_count);
    match run(&cli) {
        Ok(code) => code,
        Err(msg) => {
            eprintln!("ndkperf: error: {msg}");
            ExitCode::from(1)
        }
    }
}

const DEFAULT_PORT: u16 = 18515;

fn run(cli: &Cli) -> Result<ExitCode, String> {
    if cli.perftest && !cli.server && cli.client.is_none() {
        return Err(
            "--perftest needs --client HOST (a perftest -R server there) or --server".into(),
        );
    }
    if cli.server && cli.perftest {
        return serve_perftest(cli);
    }
    if cli.server {
        return serve(cli);
    }
    if cli.baseline {
        return baselines_only(cli);
    }
    rdma(cli)
}

// ---- baselines ----

#[derive(Default)]
struct Baselines {
    memcpy: Option<Memcpy>,
    goodput: Option<Goodput>,
    latency: Option<Latency>,
}

fn measure_baselines(
    client: &Client,
    bw_size: usize,
    lat_size: usize,
    mtu: usize,
    duration: Duration,
    iters: u64,
    progress: &mut ProgressLine,
) -> Result<Baselines, String> {
    let mut tick = |_: Duration, status: &str| progress.update(status);
    let memcpy = baseline::memcpy_bandwidth(bw_size, duration / 4, &mut tick);
    let goodput = client
        .goodput(roce_datagram_len(bw_size, mtu), duration, &mut tick)
        .map_err(|e| e.to_string())?;
    let latency = client
        .ping_pong(
            roce_datagram_len(lat_size, mtu),
            iters,
            duration.max(Duration::from_millis(500)),
            &mut tick,
        )
        .map_err(|e| e.to_string())?;
    progress.clear();
    Ok(Baselines {
        memcpy: Some(memcpy),
        goodput: Some(goodput),
        latency: Some(latency),
    })
}

fn baselines_only(cli: &Cli) -> Result<ExitCode, String> {
    let duration = Duration::from_secs_f64(cli.duration.unwrap_or(1.0));
    let bw_size = cli.size.unwrap_or(65536);
    let lat_size = cli.size.unwrap_or(64);
    let iters = cli.iters.unwrap_or(10_000);
    let mut progress = ProgressLine::new(!cli.quiet && std::io::stderr().is_terminal());
    let (server, addr) = match &cli.client {
        Some(peer) => (None, resolve(peer, cli.port.unwrap_or(DEFAULT_PORT))?),
        None => {
            let ip = cli.bind.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
            let s = baseline::spawn_server(
                SocketAddr::new(ip, cli.port.unwrap_or(0)),
                Duration::from_secs(600),
            )
            .map_err(|e| e.to_string())?;
            let a = s.addr();
            (Some(s), a)
        }
    };
    let client = Client::new(addr, cli.bind).map_err(|e| e.to_string())?;
    client.hello().map_err(|e| e.to_string())?;
    let mtu = path_mtu(cli, cli.bind.unwrap_or_else(|| local_ip_for(addr.ip())))?;
    let b = measure_baselines(
        &client,
        bw_size,
        lat_size,
        mtu,
        duration,
        iters,
        &mut progress,
    )?;
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
    if cli.json {
        let v = json!({
            "tool": "ndkperf",
            "version": env!("CARGO_PKG_VERSION"),
            "server": addr.to_string(),
            "embedded": cli.client.is_none(),
            "mtu": mtu,
            "baselines": baselines_json(&b, bw_size, lat_size),
            "pcap": cli.pcap.as_ref().map(|p| json!({
                "file": p.display().to_string(),
                "roce_frames": pcap_frames,
            })),
        });
        println!("{v:#}");
    } else {
        println!(
            "ndkperf {}: baselines, measured in this run (server {addr}, MTU {})",
            env!("CARGO_PKG_VERSION"),
            mtu
        );
        print_baselines(&b, bw_size, lat_size);
        if let (Some(n), Some(p)) = (pcap_frames, &cli.pcap) {
            println!(
                "  pcap: {n} RoCE frames written to {} (the baselines carry no RoCE traffic)",
                p.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn print_baselines(b: &Baselines, bw_size: usize, lat_size: usize) {
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

fn lat_json(s: &Samples) -> Value {
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

fn baselines_json(b: &Baselines, bw_size: usize, lat_size: usize) -> Value {
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

// ---- the server ----

fn open_adapter(
    cli: &Cli,
    ip: IpAddr,
    port: u16,
    seed: Seed,
    pcap: Option<&std::path::Path>,
) -> Result<Adapter, String> {
    let addr = SocketAddr::new(ip, port);
    let transport: Box<dyn Transport> = if cli.raw {
        Box::new(RawTransport::bind(addr).map_err(|e| e.to_string())?)
    } else {
        Box::new(UdpTransport::bind(addr).map_err(|e| e.to_string())?)
    };
    let config = AdapterConfig {
        seed,
        mtu: path_mtu(cli, ip)? as u32,
        cm: quick_cm(),
        ..AdapterConfig::default()
    };
    Adapter::open(transport, &config, pcap)
}

/// perftest's -q, -b and -a as given.
fn shape(cli: &Cli) -> host::perftest::Shape {
    host::perftest::Shape {
        qps: cli.qps.unwrap_or(1),
        duplex: cli.bidirectional,
        all: cli.all,
    }
}

/// `--server --perftest MODE`: one Linux perftest client, then exit.
fn serve_perftest(cli: &Cli) -> Result<ExitCode, String> {
    let Some(mode) = cli
        .mode
        .map(Mode::perf)
        .filter(|m| host::perftest::supported(*m))
    else {
        return Err(
            "--server --perftest needs the mode the perftest client runs: write_bw, read_bw, \
             send_bw, send_lat, write_lat or read_lat"
                .into(),
        );
    };
    let ip = cli.bind.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
    if ip.is_unspecified() {
        return Err("--server needs a specific --bind address (the RDMA adapter's)".into());
    }
    let port = cli.port.unwrap_or(DEFAULT_PORT);
    let adapter = open_adapter(
        cli,
        ip,
        cli.roce_port.unwrap_or(4791),
        Seed::Entropy,
        cli.pcap.as_deref(),
    )?;
    let shape = shape(cli);
    shape.check(mode).map_err(|e| e.to_string())?;
    let size = cli
        .size
        .unwrap_or(if mode.is_latency() { 2 } else { 65536 });
    let iters = cli
        .iters
        .unwrap_or(if mode.is_latency() { 1000 } else { 5000 });
    eprintln!(
        "ndkperf: serving one perftest -R client ({} {size} B x {iters}) on {ip}:{port}",
        mode.name()
    );
    let mut keep = Keep::default();
    let r = perf::serve_perftest(
        &adapter,
        SocketAddr::new(ip, port),
        &Params {
            mode,
            size,
            iters: Some(iters),
            duration: Duration::from_secs(120),
            window: 1,
            qps: 1,
            timeout: Duration::from_secs_f64(cli.timeout),
        },
        shape,
        adapter.path_mtu(),
        &mut keep,
    );
    // SAFETY: the run closed its objects; what a late callback may still
    // reach is in `keep`, dropped after the adapter.
    let _ = unsafe { adapter.close() };
    drop(keep);
    let r = r.map_err(|e| e.to_string())?;
    let sizes = if shape.all {
        format!("2 to {} B", host::perftest::ALL_MAX)
    } else {
        format!("{size} B")
    };
    println!(
        "{}: {} messages of {sizes} served in {:.3} s",
        mode.name(),
        r.messages,
        r.elapsed.as_secs_f64()
    );
    if let Some(b) = r.perftest.and_then(|p| p.report) {
        println!(
            "{}: the client reported {} x {} B at {:.2} MB/s",
            mode.name(),
            b.iters,
            b.size,
            b.bw_avg_mbs * (1 << 20) as f64 / 1e6
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn serve(cli: &Cli) -> Result<ExitCode, String> {
    let ip = cli.bind.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
    if ip.is_unspecified() {
        return Err("--server needs a specific --bind address (the RDMA adapter's)".into());
    }
    let port = cli.port.unwrap_or(DEFAULT_PORT);
    let roce_port = cli.roce_port.unwrap_or(4791);
    let base = baseline::spawn_server(SocketAddr::new(ip, port), Duration::from_secs(86_400))
        .map_err(|e| e.to_string())?;
    let adapter = open_adapter(cli, ip, roce_port, Seed::Entropy, cli.pcap.as_deref())?;
    let server = Server::start(&adapter, SocketAddr::new(ip, port), cli.reject)
        .map_err(|e| e.to_string())?;
    let idle = Duration::from_secs(cli.idle_timeout);
    eprintln!(
        "ndkperf: server on {ip}: baselines on UDP {port}, RoCE on UDP {roce_port}, CM port {port}{} \
         (stops after {} s without activity)",
        if cli.reject {
            ", rejecting every connection"
        } else {
            ""
        },
        idle.as_secs()
    );
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let s = server.stats();
        if s.live == 0 && s.idle >= idle {
            break;
        }
    }
    let s = server.stats();
    let mut keep = Keep::default();
    server.stop(&mut keep);
    // SAFETY: the server's objects are reached only through callbacks,
    // which end with the loop; nothing else uses the adapter.
    let _ = unsafe { adapter.close() };
    drop(keep);
    let b = base.stop().unwrap_or_default();
    eprintln!(
        "ndkperf: server idle for {} s, stopping ({} connections accepted, {} rejected; \
         {} rping iterations served, {} rping connections ended for a protocol error; \
         {} pings echoed)",
        idle.as_secs(),
        s.accepted,
        s.rejected,
        s.rping_iterations,
        s.rping_errors,
        b.pings
    );
    Ok(ExitCode::SUCCESS)
}

// ---- the RDMA modes ----

/// A free UDP port >= 49152 on both addresses.
fn free_pair_port(a: IpAddr, b: IpAddr) -> Result<u16, String> {
    let seed = (std::process::id() as u64).wrapping_mul(2_654_435_761);
    for k in 0..200u64 {
        let port = 49152 + ((seed + k * 7919) % 16000) as u16;
        let ok = UdpSocket::bind(SocketAddr::new(a, port)).is_ok()
            && UdpSocket::bind(SocketAddr::new(b, port)).is_ok();
        if ok {
            return Ok(port);
        }
    }
    Err(format!("no free UDP port >= 49152 on both {a} and {b}"))
}

fn local_ip_for(peer: IpAddr) -> IpAddr {
    match peer {
        IpAddr::V4(v) if v == Ipv4Addr::new(127, 0, 0, 1) => Ipv4Addr::new(127, 0, 0, 2).into(),
        IpAddr::V4(v) if v.is_loopback() => Ipv4Addr::LOCALHOST.into(),
        _ => UdpSocket::bind(SocketAddr::new(
            if peer.is_ipv4() {
                Ipv4Addr::UNSPECIFIED.into()
            } else {
                std::net::Ipv6Addr::UNSPECIFIED.into()
            },
            0,
        ))
        .and_then(|s| {
            s.connect(SocketAddr::new(peer, 9))?;
            s.local_addr()
        })
        .map(|a| a.ip())
        .unwrap_or(peer),
    }
}

struct ModeRun {
    mode: PMode,
    size: usize,
    report: Report,
}

/// Prints the progress line from a thread while a mode runs.
struct Ticker {
    stop: Arc<AtomicBool>,
    status: Arc<Mutex<String>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Ticker {
    fn new(enabled: bool) -> Ticker {
        let stop = Arc::new(AtomicBool::new(false));
        let status = Arc::new(Mutex::new(String::new()));
        let thread = enabled.then(|| {
            let (stop, status) = (Arc::clone(&stop), Arc::clone(&status));
            std::thread::spawn(move || {
                let mut p = ProgressLine::new(true);
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(200));
                    let s = status.lock().map(|s| s.clone()).unwrap_or_default();
                    p.update(&s);
                }
                p.clear();
            })
        });
        Ticker {
            stop,
            status,
            thread,
        }
    }
    fn set(&self, s: String) {
        if let Ok(mut g) = self.status.lock() {
            *g = s;
        }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn rdma(cli: &Cli) -> Result<ExitCode, String> {
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
    let duration = Duration::from_secs_f64(cli.duration.unwrap_or(if all { 1.0 } else { 2.0 }));
    let timeout = Duration::from_secs_f64(cli.timeout);
    let cm_port = cli.port.unwrap_or(DEFAULT_PORT);
    let bw_size = cli.size.unwrap_or(65536);
    let lat_size = cli.size.unwrap_or(64);
    let ticker = Ticker::new(!cli.quiet && std::io::stderr().is_terminal());

    // The two sides.
    let mut keep = Keep::default();
    // `--client host:port` names the server's port (its baselines and its
    // CM listener); `-p` is the default for a bare host.
    let (client_ip, peer, roce_port, embedded) = match &cli.client {
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

    // Baselines on the same path.
    let mut base = Baselines::default();
    let base_server = match (&cli.client, cli.no_baseline) {
        (_, true) => None,
        (None, false) => Some(
            baseline::spawn_server(SocketAddr::new(peer_ip, 0), Duration::from_secs(600))
                .map_err(|e| e.to_string())?,
        ),
        (Some(_), false) => None,
    };
    if !cli.no_baseline && !cli.perftest {
        let addr = base_server.as_ref().map_or(peer, |s| s.addr());
        ticker.set("baselines".into());
        let client = Client::new(addr, Some(client_ip)).map_err(|e| e.to_string())?;
        client.hello().map_err(|e| e.to_string())?;
        let mut quiet = ProgressLine::new(false);
        base = measure_baselines(
            &client,
            bw_size,
            lat_size,
            client_adapter.path_mtu() as usize,
            duration,
            cli.iters.unwrap_or(20_000),
            &mut quiet,
        )?;
    }
    drop(base_server);

    // The modes.
    let t_all = Instant::now();
    let mut runs = Vec::new();
    let mut failure = None;
    for (k, &mode) in modes.iter().enumerate() {
        if k > 0 {
            // Let the last connection's time-wait pass (QPN reuse, see
            // `quick_cm_timewait`).
            std::thread::sleep(quick_cm_timewait() + Duration::from_millis(20));
        }
        let size = if mode.is_latency() || mode == PMode::Disconnect {
            lat_size
        } else {
            bw_size
        };
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
            // The default run measures the 10,000-QP target itself (it
            // takes well under a second); `disconnect` alone runs 1000.
            qps: cli.qps.unwrap_or(if all { 10_000 } else { 1000 }),
            timeout,
        };
        ticker.set(format!("{} ({size} B)", mode.name()));
        let r = if cli.perftest {
            perf::run_perftest(
                &client_adapter,
                peer,
                &p,
                shape(cli),
                client_adapter.path_mtu(),
                &mut keep,
            )
        } else {
            perf::run(&client_adapter, peer, &p, &mut keep)
        };
        match r {
            Ok(report) => runs.push(ModeRun { mode, size, report }),
            Err(e) => {
                failure = Some(format!("{}: {e}", mode.name()));
                break;
            }
        }
    }
    let total = t_all.elapsed();
    drop(ticker);
    let mtu = client_adapter.path_mtu() as usize;
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
    if let Some(f) = failure {
        return Err(f);
    }
    let ctx = Ctx {
        client_ip,
        peer,
        roce_port,
        embedded: cli.client.is_none(),
        total,
        pcap_frames: cli.pcap.as_ref().map(|_| client_stats.pcap_frames),
        bw_size,
        lat_size,
        mtu,
    };
    if cli.json {
        print_json(cli, &ctx, &base, &runs);
    } else {
        print_text(cli, &ctx, &base, &runs);
    }
    Ok(ExitCode::SUCCESS)
}

struct Ctx {
    client_ip: IpAddr,
    peer: SocketAddr,
    roce_port: u16,
    embedded: bool,
    total: Duration,
    pcap_frames: Option<u64>,
    bw_size: usize,
    lat_size: usize,
    /// The connections' path MTU.
    mtu: usize,
}

/// A ratio against a target, for the summary.
struct Ratio {
    what: String,
    value: Option<f64>,
    target: String,
    met: Option<bool>,
    detail: String,
}

fn ratios(base: &Baselines, runs: &[ModeRun]) -> Vec<Ratio> {
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

fn print_text(cli: &Cli, c: &Ctx, base: &Baselines, runs: &[ModeRun]) {
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

fn print_json(cli: &Cli, c: &Ctx, base: &Baselines, runs: &[ModeRun]) {
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
