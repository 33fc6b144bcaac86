//! ndkperf's command line: the modes, the options and their parsers.

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(super) enum Mode {
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
    pub(super) fn perf(self) -> PMode {
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

/// ndkperf: RDMA performance of ndkrs, each figure with its efficiency
/// against a baseline measured in the same run.
#[derive(Debug, Parser)]
#[command(
    name = "ndkperf",
    version,
    disable_version_flag = true,
    after_help = "Without a mode, ndkperf runs every mode and the baselines over loopback (server \
                  and client in one process) and prints each figure as it finishes.\n\
                  Two hosts: `ndkperf --server` there (every local address, or --bind A), \
                  `ndkperf [MODE] A` here (perftest style; same as --client A).\n\
                  perftest's flags: -s, -n, -D, -q, -a, --report_gbits and -F mean what they mean \
                  in ib_write_bw (-b: see --help for how ndkperf's own modes drive both directions).\n\
                  rping's flags: `rping -c -a A -p P -S B -C N -V` is `ndkperf rping A -p P -S B -C N \
                  -V` (rping's -s is --server, its -a the HOST argument; -S, -C, -V and -p are \
                  rping's; every iteration is verified; rping's -v and -d are not supported).\n\
                  Linux rping as the peer (rxe needs raw IP): `rping -s -V -p 7174` there and \
                  `ndkperf rping HOST:7174 --raw --no-baseline` here, or `ndkperf --server --raw \
                  --bind A -p 7174` here and `rping -c -V -a A -p 7174` there.\n\
                  Linux perftest as the server: `ib_write_bw -R -s 4096 -n 1000` there and \
                  `ndkperf write_bw --perftest HOST --raw --no-baseline -s 4096 -n 1000 --mtu 1024` \
                  here (likewise read_bw, send_bw, send_lat, write_lat, read_lat; perftest's -q, -b, \
                  -a as -q, -b, -a); or `ndkperf write_bw --server --perftest --raw --bind A -s 4096 \
                  -n 1000` here and `ib_write_bw -R -s 4096 -n 1000 A` there.\n\
                  A server killed mid-run ends the client's mode within the RC retry bound (about \
                  1 s without acknowledgement), with the figures it completed. Ctrl-C ends the \
                  running mode, prints what finished and closes the pcap.\n\
                  Exit status: 0 success, 1 run-time error (port in use, unreachable or rejecting \
                  peer, a mode failed, interrupted), 2 bad usage."
)]
pub(super) struct Cli {
    /// The test mode (write_bw, read_bw, send_bw, send_lat, write_lat,
    /// read_lat, rping, rperf, disconnect; without one, every mode) and
    /// the server to run against (HOST or HOST:port, as perftest's and
    /// rping's server argument; the same as --client), in either order:
    /// `write_bw HOST`, `HOST`, `--baseline HOST`.
    #[arg(value_name = "MODE|HOST", num_args = 0..=2)]
    pub(super) positional: Vec<String>,
    /// The mode named among the positional arguments.
    #[arg(skip)]
    pub(super) mode: Option<Mode>,
    /// The server named among the positional arguments.
    #[arg(skip)]
    pub(super) host: Option<String>,
    /// Run only the baselines (raw UDP goodput, UDP ping-pong, memcpy).
    #[arg(long, conflicts_with = "no_baseline")]
    pub(super) baseline: bool,
    /// Skip the baselines (no efficiency figures).
    #[arg(long)]
    pub(super) no_baseline: bool,
    /// Message size in bytes (suffixes K, M, G: 64K); default 65536 for
    /// bandwidth, 64 for latency. rping's -S.
    #[arg(short = 's', short_alias = 'S', long, value_parser = parse_size)]
    pub(super) size: Option<usize>,
    /// Iterations (messages; latency: round trips); default: run for -D.
    /// rping's -C.
    #[arg(short = 'n', short_alias = 'C', long,
          value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub(super) iters: Option<u64>,
    /// Seconds per timed measurement (default 1; 2 for single modes; 0.2
    /// per size with -a).
    #[arg(short = 'D', long, value_parser = parse_secs)]
    pub(super) duration: Option<f64>,
    /// Outstanding requests in the bandwidth modes (disconnect: connects
    /// and disconnects in flight); at most 1 GiB in flight.
    #[arg(short = 'w', long, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub(super) window: Option<u32>,
    /// Bandwidth modes: distinct message buffers each side cycles through
    /// (the client's WRITE and SEND sources and READ targets, the server's
    /// WRITE targets, READ sources and SEND receive buffers), within 64 MiB
    /// per connection. Default 1: every request of a connection uses one
    /// buffer, as perftest's do, so every mode touches as little memory as
    /// the UDP baseline; a window's worth (-w) puts every mode's data
    /// through cache misses alike
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=65535))]
    pub(super) slots: Option<u32>,
    /// Serve clients: baselines on -p, RDMA on --roce-port, on every local
    /// IPv4 address (or --bind), until --idle-timeout seconds pass without
    /// a datagram.
    #[arg(long, conflicts_with = "client")]
    pub(super) server: bool,
    /// Run against `ndkperf --server` at ADDR (host or host:port).
    #[arg(short = 'c', long, value_name = "ADDR")]
    pub(super) client: Option<String>,
    /// Baseline UDP port and RDMA CM port of the server (default 18515).
    #[arg(short = 'p', long)]
    pub(super) port: Option<u16>,
    /// UDP port both RoCE adapters use (default 4791; in-process runs
    /// pick a free port >= 49152).
    #[arg(long)]
    pub(super) roce_port: Option<u16>,
    /// Raw IP mode (exact ICRCs, port 4791; needs CAP_NET_RAW).
    #[arg(long)]
    pub(super) raw: bool,
    /// Speak Linux perftest's -R protocol: with a HOST, be the client
    /// of `ib_write_bw -R`, `ib_read_bw -R`, `ib_send_bw -R` or
    /// `ib_send_lat -R`; with --server, serve one `ib_*_bw -R HOST` /
    /// `ib_send_lat -R HOST` client in MODE (with its -s and -n) and exit.
    /// perftest's exchange runs over an rdma_cm control connection to the
    /// server's port (-p, 18515), the test QPs connect to the same port.
    /// Modes write_bw, read_bw, send_bw, send_lat, write_lat, read_lat;
    /// perftest's -q, -b and -a as -q, -b and -a here.
    #[arg(long)]
    pub(super) perftest: bool,
    /// Local address to bind (in-process: the client's; default
    /// 127.0.0.1 with the server on 127.0.0.2).
    #[arg(long, value_name = "ADDR")]
    pub(super) bind: Option<IpAddr>,
    /// Path MTU in bytes: 256, 512, 1024, 2048 or 4096 [default: the
    /// largest the local address's link carries: 1024 on a 1500-byte
    /// Ethernet link, 4096 on loopback or a 9000-byte link].
    #[arg(long, value_parser = parse_mtu)]
    pub(super) mtu: Option<usize>,
    /// Queue pairs: the disconnect mode's connections (default 1000,
    /// 10000 in the default run); in the bandwidth modes, connections
    /// running side by side (perftest's -q, default 1).
    #[arg(short = 'q', long, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub(super) qps: Option<u32>,
    /// Every message size from 2 B to 8 MiB, one row each (perftest's -a;
    /// with --perftest the peer runs -a too).
    #[arg(short = 'a', long, conflicts_with = "size")]
    pub(super) all: bool,
    /// Bidirectional, as perftest's -b (bandwidth modes): data both ways
    /// at once. ndkperf's own modes drive the reverse direction from this
    /// side: beside each connection of write_bw or send_bw, one that RDMA
    /// READs from the server (read_bw: one that WRITEs to it); the figure
    /// is both directions' bytes. --baseline and the baselines: UDP
    /// goodput both ways at once. --perftest: the peer runs -b too.
    #[arg(short = 'b', long)]
    pub(super) bidirectional: bool,
    /// Report bandwidth in Gb/s (perftest's --report_gbits).
    #[arg(long = "report-gbits", alias = "report_gbits")]
    pub(super) report_gbits: bool,
    /// Accepted for perftest's -F (do not fail on CPU frequency
    /// warnings): ndkperf times with the monotonic clock, never the CPU's
    /// cycle counter.
    #[arg(short = 'F', long = "CPU-freq")]
    pub(super) cpu_freq: bool,
    /// rping's -V (verify): every rping iteration is verified anyway.
    #[arg(short = 'V', long)]
    pub(super) verify: bool,
    /// Bound on each connect, disconnect and close, in seconds.
    #[arg(long, default_value_t = 5.0, value_parser = parse_secs)]
    pub(super) timeout: f64,
    /// Server: stop after this many seconds without a datagram from any
    /// client (a killed client's connection does not keep it alive)
    /// [default: 60].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub(super) idle_timeout: Option<u64>,
    /// Server: reject every connection (tests a client's REJ path).
    #[arg(long, hide = true)]
    pub(super) reject: bool,
    /// Print the run as one JSON document on stdout when it ends (also
    /// when a mode fails or on Ctrl-C: then with an "error" object).
    #[arg(long, conflicts_with = "json_stream")]
    pub(super) json: bool,
    /// Print JSON lines on stdout as the run goes: the run's parameters,
    /// the baselines, each mode as it finishes, then the summary document
    /// of --json.
    #[arg(long)]
    pub(super) json_stream: bool,
    /// Write the run's RoCEv2 frames to FILE (pcap; tshark decodes it).
    #[arg(long, value_name = "FILE")]
    pub(super) pcap: Option<PathBuf>,
    /// Cap the pcap at SIZE bytes (K, M, G suffixes); frames past it are
    /// left out and counted.
    #[arg(long, value_name = "SIZE", requires = "pcap", value_parser = parse_bytes)]
    pub(super) pcap_max: Option<u64>,
    /// Busy polling, as perftest polls its completion queue: the I/O
    /// threads (and the UDP baselines' sockets) keep polling without
    /// sleeping for US microseconds after each datagram or post (default
    /// 1000; another as --busy-poll=US); a wake-up of a sleeping thread is
    /// then off the round trip, at the price of a busy CPU per adapter
    /// while traffic flows.
    #[arg(long, value_name = "US", num_args = 0..=1, require_equals = true,
          default_missing_value = "1000",
          value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub(super) busy_poll: Option<u64>,
    /// No progress line (it is drawn only when stdout and stderr are a
    /// terminal).
    #[arg(long)]
    pub(super) quiet: bool,
    /// Print the version.
    #[arg(long, action = clap::ArgAction::Version)]
    pub(super) version: Option<bool>,
}

impl Cli {
    /// How long the I/O loops and baselines poll after work (zero: they
    /// sleep at once).
    pub(super) fn busy_poll(&self) -> Duration {
        Duration::from_micros(self.busy_poll.unwrap_or(0))
    }

    /// Sorts the positional arguments into MODE and HOST: a word that
    /// names a mode is the mode, anything else the server's address.
    pub(super) fn split_positional(&mut self) -> Result<(), String> {
        for arg in std::mem::take(&mut self.positional) {
            match Mode::from_str(&arg, true) {
                Ok(m) if self.mode.is_none() => self.mode = Some(m),
                Ok(_) => {
                    return Err(format!(
                        "two modes given (`{arg}`): give one, or none for every mode"
                    ));
                }
                Err(_) if self.host.is_none() => {
                    // A misspelt mode: host names have no underscore.
                    if arg.contains('_') && self.mode.is_none() {
                        return Err(format!(
                            "`{arg}` is neither a mode (write_bw, read_bw, send_bw, send_lat, \
                             write_lat, read_lat, rping, rperf, disconnect) nor a host"
                        ));
                    }
                    self.host = Some(arg)
                }
                Err(_) => {
                    return Err(format!(
                        "`{arg}`: a server is already given (`{}`); the positional arguments are \
                         MODE and HOST",
                        self.host.as_deref().unwrap_or_default()
                    ));
                }
            }
        }
        if self.host.is_some() && self.client.is_some() {
            return Err("HOST and --client both name the server: give one".into());
        }
        if self.host.is_some() && self.server {
            return Err(
                "HOST does not apply to --server (it serves its own addresses; --bind picks one)"
                    .into(),
            );
        }
        Ok(())
    }

    /// The server to run against: HOST or --client.
    pub(super) fn peer(&self) -> Option<&str> {
        self.host.as_deref().or(self.client.as_deref())
    }
}

/// Flags that do not apply to what the command line asks for: one line
/// saying which, for a usage error.
pub(super) fn check_flags(cli: &Cli) -> Result<(), String> {
    use PMode::*;
    let mode = cli.mode.map(Mode::perf);
    let fail = |flag: &str, why: &str| Err(format!("{flag} {why}"));
    if cli.server && !cli.perftest {
        for (set, flag) in [
            (cli.mode.is_some(), "MODE"),
            (cli.size.is_some(), "-s"),
            (cli.iters.is_some(), "-n"),
            (cli.duration.is_some(), "-D"),
            (cli.window.is_some(), "-w"),
            (cli.slots.is_some(), "--slots"),
            (cli.qps.is_some(), "-q"),
            (cli.all, "-a"),
            (cli.json, "--json"),
            (cli.json_stream, "--json-stream"),
            (cli.no_baseline, "--no-baseline"),
            (cli.report_gbits, "--report-gbits"),
        ] {
            if set {
                return fail(
                    flag,
                    "does not apply to --server: each client chooses its mode and parameters \
                     (the server prints one line per client)",
                );
            }
        }
    }
    if !cli.server && cli.idle_timeout.is_some() {
        return fail("--idle-timeout", "applies to --server only");
    }
    if let Some(q) = cli.qps.filter(|&q| q > perf::PORTS_PER_ADDRESS) {
        return Err(format!(
            "-q {q}: every connection takes one of the {} ports a local address has for \
             connections (the provider's ephemeral range, 49152-65535); use -q {} or fewer",
            perf::PORTS_PER_ADDRESS,
            perf::PORTS_PER_ADDRESS
        ));
    }
    if cli.server && cli.perftest {
        for (set, flag) in [
            (cli.duration.is_some(), "-D"),
            (cli.window.is_some(), "-w"),
            (cli.slots.is_some(), "--slots"),
            (cli.no_baseline, "--no-baseline"),
            (cli.report_gbits, "--report-gbits"),
        ] {
            if set {
                return fail(
                    flag,
                    "does not apply to --server --perftest (the perftest client's -s, -n, -q, \
                     -b and -a are given here; it reports the figures)",
                );
            }
        }
    }
    if cli.verify && mode.is_some_and(|m| m != Rping) && !cli.server {
        return fail(
            "-V",
            "is rping's verify and applies to rping only (every rping iteration is verified)",
        );
    }
    if cli.server && cli.perftest && (cli.json || cli.json_stream) {
        return fail(
            "--json",
            "does not apply to --server --perftest (it prints one line)",
        );
    }
    if cli.iters.is_some() && cli.duration.is_some() && !cli.baseline {
        return fail(
            "-n",
            "and -D both bound a run: give one (iterations, or seconds); \
             only --baseline takes both (pings, seconds of goodput)",
        );
    }
    if cli.baseline {
        for (set, flag) in [
            (cli.mode.is_some(), "MODE"),
            (cli.window.is_some(), "-w"),
            (cli.slots.is_some(), "--slots"),
            (cli.qps.is_some(), "-q"),
            (cli.perftest, "--perftest"),
            (cli.raw, "--raw"),
            (cli.roce_port.is_some(), "--roce-port"),
            (cli.report_gbits, "--report-gbits"),
        ] {
            if set {
                return fail(flag, "does not apply to --baseline (baselines only)");
            }
        }
        return Ok(());
    }
    if cli.perftest {
        if cli.slots.is_some() {
            return fail(
                "--slots",
                "does not apply to --perftest (its buffers follow perftest's layout)",
            );
        }
        return Ok(());
    }
    if cli.bidirectional {
        match mode {
            Some(m @ (SendLat | WriteLat | ReadLat | Rping | Disconnect)) => {
                return fail(
                    "-b",
                    &format!(
                        "does not apply to {} (bandwidth modes: write_bw, read_bw, send_bw)",
                        m.name()
                    ),
                );
            }
            Some(Rperf) => {
                return fail(
                    "-b",
                    "does not apply to rperf (it mixes WRITE and READ, both ways, already)",
                );
            }
            _ => {}
        }
    }
    match mode {
        Some(m @ (SendLat | WriteLat | ReadLat | Rping)) => {
            if cli.window.is_some() {
                return fail(
                    "-w",
                    &format!("does not apply to {} (one request at a time)", m.name()),
                );
            }
            if cli.qps.is_some() {
                return fail(
                    "-q",
                    &format!("does not apply to {} (one connection)", m.name()),
                );
            }
            if cli.slots.is_some() {
                return fail(
                    "--slots",
                    &format!("does not apply to {} (bandwidth modes only)", m.name()),
                );
            }
        }
        Some(Disconnect) => {
            if cli.slots.is_some() {
                return fail(
                    "--slots",
                    "does not apply to disconnect (bandwidth modes only)",
                );
            }
            if cli.iters.is_some() || cli.duration.is_some() {
                return fail(
                    if cli.iters.is_some() { "-n" } else { "-D" },
                    "does not apply to disconnect (it runs -q connections, -w in flight)",
                );
            }
            if cli.all {
                return fail("-a", "does not apply to disconnect");
            }
        }
        _ => {}
    }
    if cli.all && mode == Some(Rping) {
        return fail("-a", "does not apply to rping (one size)");
    }
    Ok(())
}

pub(super) fn parse_size(s: &str) -> Result<usize, String> {
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

pub(super) fn parse_secs(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("`{s}` is not a number of seconds"))?;
    if (0.01..=3600.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("duration {s} out of range (0.01 to 3600 s)"))
    }
}

pub(super) fn parse_mtu(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(v @ (256 | 512 | 1024 | 2048 | 4096)) => Ok(v),
        _ => Err(format!("MTU {s} is not one of 256, 512, 1024, 2048, 4096")),
    }
}

/// A byte count with an optional K, M or G suffix.
pub(super) fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (num, mult) = match t.char_indices().last() {
        Some((i, 'K' | 'k')) => (&t[..i], 1u64 << 10),
        Some((i, 'M' | 'm')) => (&t[..i], 1 << 20),
        Some((i, 'G' | 'g')) => (&t[..i], 1 << 30),
        _ => (t, 1),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .filter(|&v| v >= 24)
        .ok_or_else(|| format!("`{s}` is not a size of at least 24 bytes (K/M/G suffixes)"))
}
