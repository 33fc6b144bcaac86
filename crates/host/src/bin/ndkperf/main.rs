//! ndkperf: RDMA performance tests for ndkrs in the perftest tradition,
//! each figure with its efficiency against a baseline measured in the same
//! run. `cli` is the command line, `modes` the client run, `report` the
//! output (text, JSON).
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
use host::adapter::{Adapter, AdapterConfig, Seed, ndkperf_cm, ndkperf_cm_timewait};
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

mod cli;
mod cost;
mod modes;
mod report;

use cli::*;
use modes::*;
use report::*;

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
    // A reader that goes away (`ndkperf | head`) ends the run as it ends
    // any Unix tool's, not with a panic on the next line printed.
    // SAFETY: at the start of main, before any thread; the default action
    // for SIGPIPE.
    unsafe {
        nix::libc::signal(nix::libc::SIGPIPE, nix::libc::SIG_DFL);
    }
    let cli = match Cli::try_parse() {
        Ok(mut c) => {
            if let Err(msg) = c.split_positional() {
                eprintln!("ndkperf: error: {msg}");
                return ExitCode::from(2);
            }
            c
        }
        Err(e) => {
            // clap prints help/version on stdout (status 0) and usage
            // errors on stderr (status 2).
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    if let Err(msg) = check_flags(&cli) {
        eprintln!("ndkperf: error: {msg}");
        return ExitCode::from(2);
    }
    perf::set_alloc_probe(alloc_count);
    match run(&cli) {
        Ok(code) => code,
        Err(msg) => {
            if cli.json || cli.json_stream {
                let mut m = skeleton_json(&cli);
                m.insert("error".into(), error_json(&msg, cli.mode.map(Mode::perf)));
                let v = Value::Object(m);
                if cli.json {
                    println!("{v:#}");
                } else {
                    println!("{v}");
                }
            }
            eprintln!("ndkperf: error: {msg}");
            ExitCode::from(1)
        }
    }
}

const DEFAULT_PORT: u16 = 18515;

fn run(cli: &Cli) -> Result<ExitCode, String> {
    if cli.perftest && !cli.server && cli.peer().is_none() {
        return Err(
            "--perftest needs a HOST (a perftest -R server there; or --client HOST) or --server"
                .into(),
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

#[derive(Default, Clone)]
struct Baselines {
    memcpy: Option<Memcpy>,
    goodput: Option<Goodput>,
    /// -b: the goodput the server sent at the same time.
    goodput_in: Option<Goodput>,
    latency: Option<Latency>,
    /// One TCP stream on the same path (its goodput and CPU per GB).
    tcp: cost::TcpBaseline,
    /// The message sizes whose datagrams the goodput and the ping-pong
    /// carried: a mode's efficiency is against the baseline of its size.
    bw_size: usize,
    lat_size: usize,
}

/// -a: the one baseline a mode's row is measured against, at its size
/// (raw UDP goodput for the bandwidth modes, the ping-pong for the
/// round-trip modes).
fn measure_baseline_at(
    client: &Client,
    latency: bool,
    size: usize,
    mtu: usize,
    duration: Duration,
    iters: u64,
    duplex: bool,
) -> Result<Baselines, String> {
    let mut none = |_: Duration, _: &str| {};
    let len = roce_datagram_len(size, mtu);
    let mut b = Baselines {
        bw_size: size,
        lat_size: size,
        ..Baselines::default()
    };
    if latency && size > mtu {
        // The ping-pong carries one datagram each way; a message of
        // several packets has no UDP round trip to compare with here.
        return Ok(b);
    }
    if latency {
        b.latency = Some(
            client
                .ping_pong(len, iters, duration, &mut none)
                .map_err(|e| e.to_string())?,
        );
    } else if duplex {
        let (out, inb) = client
            .goodput_both_ways(len, duration, &mut none)
            .map_err(|e| e.to_string())?;
        b.goodput = Some(out);
        b.goodput_in = Some(inb);
    } else {
        b.goodput = Some(
            client
                .goodput(len, duration, &mut none)
                .map_err(|e| e.to_string())?,
        );
    }
    Ok(b)
}

#[allow(clippy::too_many_arguments)]
fn measure_baselines(
    client: &Client,
    bw_size: usize,
    lat_size: usize,
    mtu: usize,
    duration: Duration,
    iters: u64,
    duplex: bool,
    progress: &mut ProgressLine,
) -> Result<Baselines, String> {
    let mut tick = |_: Duration, status: &str| progress.update(status);
    // A Ctrl-C ends the running baseline early (its figure covers what
    // was measured) and skips the ones after it.
    let mut b = Baselines {
        memcpy: Some(baseline::memcpy_bandwidth(bw_size, duration / 4, &mut tick)),
        bw_size,
        lat_size,
        ..Baselines::default()
    };
    if !perf::stop_requested() {
        let len = roce_datagram_len(bw_size, mtu);
        if duplex {
            let (out, inb) = client
                .goodput_both_ways(len, duration, &mut tick)
                .map_err(|e| e.to_string())?;
            b.goodput = Some(out);
            b.goodput_in = Some(inb);
        } else {
            b.goodput = Some(
                client
                    .goodput(len, duration, &mut tick)
                    .map_err(|e| e.to_string())?,
            );
        }
    }
    if !perf::stop_requested() {
        b.latency = Some(
            client
                .ping_pong(
                    roce_datagram_len(lat_size, mtu),
                    iters,
                    duration.max(Duration::from_millis(500)),
                    &mut tick,
                )
                .map_err(|e| e.to_string())?,
        );
    }
    progress.clear();
    Ok(b)
}

fn baselines_only(cli: &Cli) -> Result<ExitCode, String> {
    let duration = Duration::from_secs_f64(cli.duration.unwrap_or(if cli.all { 0.2 } else { 1.0 }));
    let bw_size = cli.size.unwrap_or(65536);
    let lat_size = cli.size.unwrap_or(64);
    let iters = cli.iters.unwrap_or(if cli.all { 2000 } else { 10_000 });
    let mut progress = ProgressLine::new(!cli.quiet && std::io::stderr().is_terminal());
    let (server, addr) = match cli.peer() {
        Some(peer) => (None, resolve(peer, cli.port.unwrap_or(DEFAULT_PORT))?),
        None => {
            let ip = cli.bind.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
            let s = baseline::spawn_server_polling(
                SocketAddr::new(ip, cli.port.unwrap_or(0)),
                Duration::from_secs(600),
                cli.busy_poll(),
            )
            .map_err(|e| e.to_string())?;
            let a = s.addr();
            (Some(s), a)
        }
    };
    let started = Instant::now();
    let client = Client::new(addr, cli.bind)
        .map_err(|e| e.to_string())?
        .busy_poll(cli.busy_poll.is_some());
    client.hello().map_err(|e| e.to_string())?;
    let client_ip = cli.bind.unwrap_or_else(|| local_ip_for(addr.ip()));
    let mtu = path_mtu(cli, client_ip)?;
    catch_sigint();
    let b = measure_baselines(
        &client,
        bw_size,
        lat_size,
        mtu,
        duration,
        iters,
        cli.bidirectional,
        &mut progress,
    )?;
    // -a: the goodput and the ping-pong at every size, as the rows of a
    // client run with -a are measured against.
    let text = !(cli.json || cli.json_stream);
    let mut by_size = Vec::new();
    if cli.all {
        if text {
            println!(
                "ndkperf {}: baselines at each size (server {addr}, MTU {mtu})",
                env!("CARGO_PKG_VERSION")
            );
            println!(
                "  {:>9} {:>12} {:>12}   UDP ping-pong RTT p50",
                "bytes", "datagram", "UDP goodput"
            );
        }
        for size in modes::all_sizes() {
            if perf::stop_requested() {
                break;
            }
            let mut b = measure_baseline_at(
                &client,
                false,
                size,
                mtu,
                duration,
                iters,
                cli.bidirectional,
            )?;
            b.latency =
                measure_baseline_at(&client, true, size, mtu, duration, iters, false)?.latency;
            if text {
                let rate = b.goodput.map_or(0.0, |g| g.bytes_per_sec())
                    + b.goodput_in.map_or(0.0, |g| g.bytes_per_sec());
                println!(
                    "  {size:>9} {:>10} B {:>12}   {}",
                    roce_datagram_len(size, mtu),
                    fmt_rate(rate),
                    b.latency.as_ref().map_or(
                        "- (more than one packet: the ping-pong carries one datagram)".into(),
                        |l| format!("{:.1} us", report::us(l.percentile(0.5)))
                    )
                );
            }
            by_size.push(b);
        }
    }
    if let Some(s) = server {
        let _ = s.stop();
    }
    let interrupted = perf::stop_requested();
    let finished = [b.memcpy.is_some(), b.goodput.is_some(), b.latency.is_some()]
        .iter()
        .filter(|x| **x)
        .count();
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
    if cli.json || cli.json_stream {
        // The schema of every run: the baselines, no modes.
        let mut m = skeleton_json(cli);
        if let Some(Value::Object(p)) = m.get_mut("params") {
            p.insert("size_bandwidth".into(), json!(bw_size));
            p.insert("size_latency".into(), json!(lat_size));
            p.insert("iterations".into(), json!(iters));
            p.insert("duration_s".into(), json!(duration.as_secs_f64()));
            p.insert("mtu".into(), json!(mtu));
            p.insert("peer".into(), json!(addr.to_string()));
        }
        m.insert("client".into(), json!(client_ip.to_string()));
        m.insert("seconds".into(), json!(started.elapsed().as_secs_f64()));
        m.insert("server".into(), json!(addr.to_string()));
        m.insert("embedded".into(), json!(cli.peer().is_none()));
        m.insert("mtu".into(), json!(mtu));
        m.insert("baselines".into(), baselines_json(&b, bw_size, lat_size));
        if cli.all {
            m.insert(
                "baselines_by_size".into(),
                Value::Array(
                    by_size
                        .iter()
                        .map(|s| baselines_json(s, s.bw_size, s.lat_size))
                        .collect(),
                ),
            );
        }
        m.insert("modes".into(), json!([]));
        m.insert("targets".into(), json!([]));
        m.insert("interrupted".into(), json!(interrupted));
        m.insert("error".into(), Value::Null);
        m.insert(
            "pcap".into(),
            cli.pcap.as_ref().map_or(
                Value::Null,
                |p| json!({"file": p.display().to_string(), "roce_frames": pcap_frames}),
            ),
        );
        let v = Value::Object(m);
        if cli.json {
            println!("{v:#}");
        } else {
            println!("{v}");
        }
    } else {
        println!(
            "ndkperf {}: baselines, measured in this run (server {addr}, MTU {})",
            env!("CARGO_PKG_VERSION"),
            mtu
        );
        print_baselines(&b, bw_size, lat_size);
        if interrupted {
            println!(
                "  interrupted (Ctrl-C): {finished} of 3 baselines measured (the last one \
                 until the interrupt)"
            );
        }
        if let (Some(n), Some(p)) = (pcap_frames, &cli.pcap) {
            println!(
                "  pcap: {n} RoCE frames written to {} (the baselines carry no RoCE traffic)",
                p.display()
            );
        }
    }
    // As a client run: an interrupted run exits 1 after its summary.
    Ok(if interrupted {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
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
        cm: ndkperf_cm(),
        pcap_max: cli.pcap_max,
        busy_poll: cli.busy_poll(),
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
    // Every local address, as `--server` (or the one --bind names).
    let ips = match cli.bind {
        Some(ip) if !ip.is_unspecified() => vec![ip],
        _ => local_ipv4_addresses()?,
    };
    let port = cli.port.unwrap_or(DEFAULT_PORT);
    let mut adapters = Vec::new();
    for &ip in &ips {
        let adapter = open_adapter(
            cli,
            ip,
            cli.roce_port.unwrap_or(4791),
            Seed::Entropy,
            cli.pcap.as_deref(),
        )
        .map_err(|e| format!("{ip}: {e}"))?;
        adapters.push(adapter);
        if cli.pcap.is_some() {
            // One capture file: the first address's.
            break;
        }
    }
    let shape = shape(cli);
    shape.check(mode).map_err(|e| e.to_string())?;
    let size = cli
        .size
        .unwrap_or(if mode.is_latency() { 2 } else { 65536 });
    let iters = cli
        .iters
        .unwrap_or(if mode.is_latency() { 1000 } else { 5000 });
    eprintln!(
        "ndkperf: serving one perftest -R client ({} {size} B x {iters}) on {}, port {port}",
        mode.name(),
        adapters
            .iter()
            .map(|a| a.local_addr().ip().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    catch_sigint();
    let mut keep = Keep::default();
    let sides: Vec<(&Adapter, SocketAddr)> = adapters
        .iter()
        .map(|a| (a, SocketAddr::new(a.local_addr().ip(), port)))
        .collect();
    let r = perf::serve_perftest_any(
        &sides,
        &Params {
            mode,
            size,
            iters: Some(iters),
            duration: Duration::from_secs(120),
            window: 1,
            slots: 1,
            qps: 1,
            timeout: Duration::from_secs_f64(cli.timeout),
        },
        shape,
        &mut keep,
    );
    drop(sides);
    for adapter in adapters {
        // SAFETY: the run closed its objects; what a late callback may
        // still reach is in `keep`, dropped after the adapters.
        let _ = unsafe { adapter.close() };
    }
    drop(keep);
    let r = r.map_err(|e| e.to_string())?;
    let sizes = if shape.all {
        format!("2 to {} B", host::perftest::ALL_MAX)
    } else {
        format!("{size} B")
    };
    println!(
        "{}: {} messages of {sizes} served in {:.3} s{}",
        mode.name(),
        r.messages,
        r.elapsed.as_secs_f64(),
        if r.interrupted {
            " (interrupted by Ctrl-C)"
        } else {
            ""
        }
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
    // As when interrupted before a client came: the run did not finish.
    Ok(if r.interrupted {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Every IPv4 address of an interface that is up (loopback included).
fn local_ipv4_addresses() -> Result<Vec<IpAddr>, String> {
    let addrs = nix::ifaddrs::getifaddrs().map_err(|e| format!("listing the addresses: {e}"))?;
    let mut out: Vec<IpAddr> = addrs
        .filter(|a| a.flags.contains(nix::net::if_::InterfaceFlags::IFF_UP))
        .filter_map(|a| a.address?.as_sockaddr_in().map(|s| IpAddr::V4(s.ip())))
        .collect();
    out.sort();
    out.dedup();
    if out.is_empty() {
        return Err("no IPv4 address is up on this host; give one with --bind".into());
    }
    Ok(out)
}

fn serve(cli: &Cli) -> Result<ExitCode, String> {
    let ips = match cli.bind {
        Some(ip) if !ip.is_unspecified() => vec![ip],
        _ => local_ipv4_addresses()?,
    };
    let port = cli.port.unwrap_or(DEFAULT_PORT);
    let roce_port = cli.roce_port.unwrap_or(4791);
    let mut sides = Vec::new();
    for &ip in &ips {
        let base = baseline::spawn_server_polling(
            SocketAddr::new(ip, port),
            Duration::from_secs(86_400),
            cli.busy_poll(),
        )
        .map_err(|e| e.to_string())?;
        // The TCP baseline's sink, on the same port number (TCP); without
        // it clients report the TCP baseline as unavailable.
        let tcp = host::tcp_baseline::spawn_sink(SocketAddr::new(ip, port))
            .map_err(|e| eprintln!("ndkperf: no TCP baseline sink on {ip}:{port}: {e}"))
            .ok();
        let adapter = open_adapter(cli, ip, roce_port, Seed::Entropy, cli.pcap.as_deref())
            .map_err(|e| format!("{ip}: {e}"))?;
        let server = Server::start(&adapter, SocketAddr::new(ip, port), cli.reject)
            .map_err(|e| e.to_string())?;
        let received = adapter.received_counter();
        sides.push((ip, base, adapter, server, received, tcp));
        if cli.pcap.is_some() {
            // One capture file: the first address's.
            break;
        }
    }
    let idle = Duration::from_secs(cli.idle_timeout.unwrap_or(60));
    eprintln!(
        "ndkperf: server on {}: baselines on UDP and TCP {port}, RoCE on UDP {roce_port}, CM port {port}{} \
         (stops after {} s without a datagram)",
        sides
            .iter()
            .map(|s| s.0.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        if cli.reject {
            ", rejecting every connection"
        } else {
            ""
        },
        idle.as_secs()
    );
    // Idle: no datagram on any adapter and no server activity for `idle`,
    // whether or not connections are open (a killed client's connection
    // stays open here, silent).
    // Ctrl-C stops it as the idle timeout does: every client line that
    // finished, then the summary.
    catch_sigint();
    let mut last_count: u64 = 0;
    let mut last_datagram = Instant::now();
    let interrupted = loop {
        std::thread::sleep(Duration::from_millis(100));
        let stop = perf::stop_requested();
        // Baseline traffic (UDP datagrams, TCP bytes) is a client at work
        // too: a client's baselines before its first RoCE datagram must not
        // outlast the idle timeout.
        let count: u64 = sides
            .iter()
            .map(|s| {
                s.4.load(Ordering::Relaxed)
                    + s.1.received()
                    + s.5.as_ref().map_or(0, |t| t.received())
            })
            .sum();
        if count != last_count {
            last_count = count;
            last_datagram = Instant::now();
        }
        for (ip, base, _, server, _, _) in &sides {
            for (from, line) in base.take_tallies() {
                println!("client {} on {ip} reports: {line}", from.ip());
            }
            for c in server.take_ended() {
                println!(
                    "client {} on {ip}: {} {} B, connected {:.2} s, {} messages received{}",
                    c.peer.map_or("?".into(), |p| p.to_string()),
                    c.mode.name(),
                    c.size,
                    c.connected.as_secs_f64(),
                    c.received,
                    if matches!(c.mode, PMode::SendBw | PMode::SendLat | PMode::Rping) {
                        ""
                    } else {
                        " (one-sided: the client reports the figures)"
                    }
                );
            }
        }
        let server_idle = sides
            .iter()
            .map(|s| s.3.stats().idle)
            .min()
            .unwrap_or_default();
        if stop || (last_datagram.elapsed() >= idle && server_idle >= idle) {
            break stop;
        }
    };
    let mut keep = Keep::default();
    let (mut accepted, mut rejected, mut pings, mut errors, mut live, mut echoed) =
        (0, 0, 0, 0, 0, 0);
    for (_, base, adapter, server, _, _tcp) in sides {
        let s = server.stats();
        accepted += s.accepted;
        rejected += s.rejected;
        pings += s.rping_iterations;
        errors += s.rping_errors;
        live += s.live;
        server.stop(&mut keep);
        // SAFETY: the server's objects are reached only through callbacks,
        // which end with the loop; nothing else uses the adapter.
        let _ = unsafe { adapter.close() };
        echoed += base.stop().unwrap_or_default().pings;
    }
    drop(keep);
    let why = if interrupted {
        "interrupted (Ctrl-C)".to_string()
    } else {
        format!("idle for {} s", idle.as_secs())
    };
    eprintln!(
        "ndkperf: server {why}, stopping ({accepted} connections accepted, {rejected} \
         rejected, {live} still open; {pings} rping iterations served, \
         {errors} rping connections ended for a protocol error; {echoed} pings echoed)",
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
