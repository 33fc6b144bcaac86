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
pub(super) struct Cli {
    /// Test mode; without one, every mode.
    pub(super) mode: Option<Mode>,
    /// Run only the baselines (raw UDP goodput, UDP ping-pong, memcpy).
    #[arg(long, conflicts_with = "no_baseline")]
    pub(super) baseline: bool,
    /// Skip the baselines (no ratios).
    #[arg(long)]
    pub(super) no_baseline: bool,
    /// Message size in bytes (suffixes K, M: 64K); default 65536 for
    /// bandwidth, 64 for latency.
    #[arg(short = 's', long, value_parser = parse_size)]
    pub(super) size: Option<usize>,
    /// Iterations (messages; latency: round trips); default: run for -D.
    #[arg(short = 'n', long, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub(super) iters: Option<u64>,
    /// Seconds per timed measurement (default 1; 2 for single modes).
    #[arg(short = 'D', long, value_parser = parse_secs)]
    pub(super) duration: Option<f64>,
    /// Outstanding requests in the bandwidth modes (disconnect: connects
    /// and disconnects in flight).
    #[arg(short = 'w', long, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub(super) window: Option<u32>,
    /// Serve clients: baselines on -p, RDMA on --roce-port, until
    /// --idle-timeout seconds pass without activity.
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
    /// Speak Linux perftest's -R protocol: with --client, be the client
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
    /// Queue pairs (disconnect mode; default 1000, 10000 in the default
    /// run); with --perftest, test QPs (perftest's -q, bandwidth modes;
    /// default 1).
    #[arg(short = 'q', long, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub(super) qps: Option<u32>,
    /// --perftest: every message size from 2 B to 8 MiB, as perftest's -a
    /// (the peer runs -a too).
    #[arg(short = 'a', long, requires = "perftest", conflicts_with = "size")]
    pub(super) all: bool,
    /// --perftest: bidirectional, as perftest's -b (bandwidth modes; the
    /// peer runs -b too).
    #[arg(short = 'b', long, requires = "perftest")]
    pub(super) bidirectional: bool,
    /// Bound on each connect, disconnect and close, in seconds.
    #[arg(long, default_value_t = 5.0, value_parser = parse_secs)]
    pub(super) timeout: f64,
    /// Server: stop after this many seconds without activity.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub(super) idle_timeout: u64,
    /// Server: reject every connection (tests a client's REJ path).
    #[arg(long, hide = true)]
    pub(super) reject: bool,
    /// Print the results as JSON on stdout.
    #[arg(long)]
    pub(super) json: bool,
    /// Write the run's RoCEv2 frames to FILE (pcap; tshark decodes it).
    #[arg(long, value_name = "FILE")]
    pub(super) pcap: Option<PathBuf>,
    /// No progress line.
    #[arg(long)]
    pub(super) quiet: bool,
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
