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

mod cli;
mod report;

use cli::*;
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
