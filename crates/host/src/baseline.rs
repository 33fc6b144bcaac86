//! The baselines ndkperf measures in the same run as the RDMA modes, so
//! that RDMA results are reported as ratios to what the same path does
//! without RDMA: raw UDP goodput with the same datagram size, UDP
//! ping-pong round trips, and memcpy bandwidth.
//!
//! A baseline server ([`run_server`], [`spawn_server`]) answers on one UDP
//! port; the client ([`Client`]) measures against it, in the same process
//! over loopback (the default) or across hosts. The protocol is one byte
//! of kind then a body: `S` start (answered `s`), `G` goodput data
//! (counted), `R` report (answered `r` + datagrams, bytes, first and last
//! arrival in ns, little-endian u64s), `P` ping (echoed whole), `T` a
//! client's tally of a finished RDMA run, one line of UTF-8 (answered
//! `t`; the server keeps it for its operator, [`ServerHandle::take_tallies`]),
//! `B` goodput the other way (length u32, milliseconds u32, the client's
//! receiving port u16, a token u64, little-endian): without the token the
//! server answers `b` + the token for the sender's address; with it, `k`,
//! and it sends datagrams of that length to that port for that long from
//! a thread. The token round trip keeps a forged source address from
//! turning the server on someone else.
//!
//! Every wait is bounded: the server polls at most 50 ms at a time and
//! gives up after an idle timeout; every client request is retried three
//! times with a one-second wait each.

use std::fmt;
use std::io::{self, ErrorKind};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout};

use crate::io::{self as hio, SendBatch, Transport, UdpTransport};

/// Longest single poll of the server and the goodput sender.
const POLL: Duration = Duration::from_millis(50);
/// How long a client waits for one answer, and how often it asks.
const ANSWER_WAIT: Duration = Duration::from_secs(1);
const TRIES: u32 = 3;

/// RoCE bytes around the payload of a middle or only packet: BTH (12) and
/// ICRC (4).
pub const ROCE_OVERHEAD: usize = 12 + 4;

/// The UDP payload size of the RoCE packets a message of `size` bytes
/// travels in at path MTU `mtu`: what the baselines send.
pub fn roce_datagram_len(size: usize, mtu: usize) -> usize {
    size.clamp(1, mtu.max(1)) + ROCE_OVERHEAD
}

/// Why a baseline could not be measured.
#[derive(Debug)]
pub enum Error {
    /// Opening a socket failed (port in use, bad address, ...).
    Io(hio::Error),
    /// The peer refused (ICMP port unreachable): nothing listens there.
    Refused {
        /// The server address.
        server: SocketAddr,
    },
    /// No route to the peer (ENETUNREACH: `network`) or no answer from
    /// its link-layer address (EHOSTUNREACH): nothing was sent.
    Unreachable {
        /// The server address.
        server: SocketAddr,
        /// The network (no route) rather than the host was unreachable.
        network: bool,
    },
    /// The peer never answered.
    NoAnswer {
        /// The server address.
        server: SocketAddr,
        /// How long was waited in all.
        waited: Duration,
    },
    /// Any other OS error while measuring.
    Os {
        /// What was being done.
        context: &'static str,
        /// The error.
        source: io::Error,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => write!(f, "{e}"),
            Error::Refused { server } => write!(
                f,
                "peer {server} is unreachable (connection refused): is `ndkperf --server` \
                 running there on that port?"
            ),
            Error::Unreachable {
                server,
                network: true,
            } => write!(
                f,
                "{server} is unreachable (network unreachable: this host has no route to {}): \
                 check the address and the routes (`ip route get {}`)",
                server.ip(),
                server.ip()
            ),
            Error::Unreachable {
                server,
                network: false,
            } => write!(
                f,
                "{server} is unreachable (host unreachable: nothing answers for {} on its link): \
                 check that the host is up and the address is right",
                server.ip()
            ),
            Error::NoAnswer { server, waited } => write!(
                f,
                "no answer from {server} within {:.0} s: is `ndkperf --server` running there, \
                 and is UDP port {} open?",
                waited.as_secs_f64(),
                server.port()
            ),
            Error::Os { context, source } => write!(f, "{context}: {source}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<hio::Error> for Error {
    fn from(e: hio::Error) -> Self {
        Error::Io(e)
    }
}

fn os(context: &'static str) -> impl FnOnce(io::Error) -> Error {
    move |source| Error::Os { context, source }
}

/// What the server prints about itself.
#[derive(Debug, Default, Clone, Copy)]
pub struct ServerSummary {
    /// Pings echoed.
    pub pings: u64,
    /// Goodput datagrams counted.
    pub datagrams: u64,
}

#[derive(Debug, Default, Clone, Copy)]
struct Session {
    datagrams: u64,
    bytes: u64,
    first_ns: u64,
    last_ns: u64,
}

/// Serves the baselines on `transport` until `stop` is set or nothing
/// arrives for `idle`.
pub fn run_server(
    transport: UdpTransport,
    idle: Duration,
    stop: &AtomicBool,
) -> Result<ServerSummary, Error> {
    run_server_counting(
        transport,
        idle,
        Duration::ZERO,
        stop,
        &AtomicU64::new(0),
        &Mutex::default(),
    )
}

/// Client tallies a server received: who sent it and its line.
pub type Tallies = Mutex<Vec<(SocketAddr, String)>>;

/// The longest tally line a server keeps.
pub const TALLY_MAX: usize = 512;

/// [`run_server`], counting the datagrams it receives in `heard` and
/// keeping the tallies clients send in `tallies`; for `busy_poll` after
/// each datagram it polls the socket without sleeping (as ndkperf's I/O
/// loops do with `--busy-poll`, so that the ping-pong compares like with
/// like).
fn run_server_counting(
    mut transport: UdpTransport,
    idle: Duration,
    busy_poll: Duration,
    stop: &AtomicBool,
    heard: &AtomicU64,
    tallies: &Tallies,
) -> Result<ServerSummary, Error> {
    let origin = Instant::now();
    // Keys the `B` tokens: unknown to anyone who cannot read the answers.
    let secret = {
        use std::hash::{BuildHasher, RandomState};
        RandomState::new().hash_one((std::process::id(), origin))
    };
    let mut last_heard = Instant::now();
    let mut session = Session::default();
    let mut summary = ServerSummary::default();
    while !stop.load(Ordering::Acquire) {
        let n = match transport.recv() {
            Ok(n) => n,
            // A port-unreachable for an answer to a client that has gone
            // (its socket closed) comes back on the next receive; it
            // concerns that client only, not the server.
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::ConnectionReset
                ) =>
            {
                continue;
            }
            Err(e) => return Err(os("receiving")(e)),
        };
        if n == 0 {
            let quiet = last_heard.elapsed();
            if quiet > idle {
                break;
            }
            if quiet < busy_poll {
                std::thread::yield_now();
                continue;
            }
            let mut fds = [PollFd::new(transport.as_fd(), PollFlags::POLLIN)];
            let _ = nix::poll::poll(
                &mut fds,
                PollTimeout::try_from(POLL).unwrap_or(PollTimeout::ZERO),
            );
            continue;
        }
        last_heard = Instant::now();
        heard.fetch_add(n as u64, Ordering::Relaxed);
        let now_ns = u64::try_from(origin.elapsed().as_nanos()).unwrap_or(u64::MAX);
        for i in 0..n {
            let Some(d) = transport.received(i) else {
                continue;
            };
            match d.data.first() {
                Some(b'G') => {
                    if session.datagrams == 0 {
                        session.first_ns = now_ns;
                    }
                    session.datagrams += 1;
                    session.bytes += d.data.len() as u64;
                    session.last_ns = now_ns;
                    summary.datagrams += 1;
                }
                Some(b'P') => {
                    summary.pings += 1;
                    let _ = transport.send_to(d.src, d.data);
                }
                Some(b'S') => {
                    session = Session::default();
                    let _ = transport.send_to(d.src, b"s");
                }
                Some(b'R') => {
                    let mut r = [0u8; 33];
                    r[0] = b'r';
                    for (k, v) in [
                        session.datagrams,
                        session.bytes,
                        session.first_ns,
                        session.last_ns,
                    ]
                    .into_iter()
                    .enumerate()
                    {
                        r[1 + 8 * k..9 + 8 * k].copy_from_slice(&v.to_le_bytes());
                    }
                    let _ = transport.send_to(d.src, &r);
                }
                Some(b'B') => {
                    let field = |r: std::ops::Range<usize>| d.data.get(r);
                    let (Some(len), Some(ms), Some(port), Some(token)) =
                        (field(1..5), field(5..9), field(9..11), field(11..19))
                    else {
                        continue;
                    };
                    let expected = blast_token(secret, d.src);
                    if token != expected.to_le_bytes() {
                        let mut r = [0u8; 9];
                        r[0] = b'b';
                        r[1..].copy_from_slice(&expected.to_le_bytes());
                        let _ = transport.send_to(d.src, &r);
                        continue;
                    }
                    let len = u32::from_le_bytes(len.try_into().unwrap_or_default()) as usize;
                    let ms = u32::from_le_bytes(ms.try_into().unwrap_or_default());
                    let port = u16::from_le_bytes(port.try_into().unwrap_or_default());
                    let to = SocketAddr::new(d.src.ip(), port);
                    let from = SocketAddr::new(transport.local_addr().ip(), 0);
                    // At most a minute, one datagram's worth of a UDP payload.
                    let how_long = Duration::from_millis(u64::from(ms.min(60_000)));
                    let _ = std::thread::Builder::new()
                        .name("ndkperf-baseline-sender".into())
                        .spawn(move || blast(from, to, len.clamp(1, 65_000), how_long));
                    let _ = transport.send_to(d.src, b"k");
                }
                Some(b'T') => {
                    // A resend of a tally already kept is answered again,
                    // not kept twice.
                    let line: String = String::from_utf8_lossy(&d.data[1..])
                        .chars()
                        .filter(|c| !c.is_control())
                        .take(TALLY_MAX)
                        .collect();
                    // Bounded: a server nobody drains keeps the first ones.
                    if let Ok(mut t) = tallies.lock()
                        && t.len() < 1024
                        && t.last() != Some(&(d.src, line.clone()))
                    {
                        t.push((d.src, line));
                    }
                    let _ = transport.send_to(d.src, b"t");
                }
                _ => {}
            }
        }
    }
    Ok(summary)
}

/// The token a `B` request from `src` must carry.
fn blast_token(secret: u64, src: SocketAddr) -> u64 {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut h = DefaultHasher::new();
    (secret, src).hash(&mut h);
    h.finish()
}

/// Sends `len`-byte datagrams from `from` to `to` as fast as the socket
/// takes them for `how_long` (the server's half of a bidirectional
/// goodput); what arrives is counted by the receiver.
fn blast(from: SocketAddr, to: SocketAddr, len: usize, how_long: Duration) {
    let Ok(mut tx) = UdpTransport::bind(from) else {
        return;
    };
    let mut data = vec![0u8; len];
    data[0] = b'g';
    let per_batch = 64;
    let mut batch = SendBatch::new(per_batch, per_batch * len);
    let start = Instant::now();
    while start.elapsed() < how_long && !crate::perf::stop_requested() {
        while batch.push(to, &data) {}
        let r = tx.send(&mut batch);
        if r.error.is_some() {
            return;
        }
        if !batch.is_empty() {
            let mut fds = [PollFd::new(tx.as_fd(), PollFlags::POLLOUT)];
            let _ = nix::poll::poll(&mut fds, PollTimeout::from(10u8));
        }
    }
}

/// A baseline server on its own thread.
#[derive(Debug)]
pub struct ServerHandle {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    heard: Arc<AtomicU64>,
    tallies: Arc<Tallies>,
    thread: Option<JoinHandle<Result<ServerSummary, Error>>>,
}

/// Starts a baseline server bound to `bind` on a thread.
pub fn spawn_server(bind: SocketAddr, idle: Duration) -> Result<ServerHandle, Error> {
    spawn_server_polling(bind, idle, Duration::ZERO)
}

/// [`spawn_server`] that keeps polling its socket for `busy_poll` after
/// each datagram before it sleeps.
pub fn spawn_server_polling(
    bind: SocketAddr,
    idle: Duration,
    busy_poll: Duration,
) -> Result<ServerHandle, Error> {
    let transport = UdpTransport::bind(bind)?;
    let addr = transport.local_addr();
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let heard = Arc::new(AtomicU64::new(0));
    let count = Arc::clone(&heard);
    let tallies = Arc::new(Tallies::default());
    let kept = Arc::clone(&tallies);
    let thread = std::thread::Builder::new()
        .name("ndkperf-baseline-server".into())
        .spawn(move || run_server_counting(transport, idle, busy_poll, &flag, &count, &kept))
        .map_err(os("starting the server thread"))?;
    Ok(ServerHandle {
        addr,
        stop,
        heard,
        tallies,
        thread: Some(thread),
    })
}

impl ServerHandle {
    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Datagrams it received so far.
    pub fn received(&self) -> u64 {
        self.heard.load(Ordering::Relaxed)
    }

    /// The client tallies received since the last call, oldest first.
    pub fn take_tallies(&self) -> Vec<(SocketAddr, String)> {
        self.tallies
            .lock()
            .map(|mut t| std::mem::take(&mut *t))
            .unwrap_or_default()
    }

    /// Stops it (within one poll) and returns what it did.
    pub fn stop(mut self) -> Result<ServerSummary, Error> {
        self.stop.store(true, Ordering::Release);
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(r)) => r,
            _ => Ok(ServerSummary::default()),
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Raw UDP goodput.
#[derive(Debug, Clone, Copy)]
pub struct Goodput {
    /// UDP payload bytes per datagram.
    pub datagram_len: usize,
    /// Datagrams the client handed to the OS.
    pub sent: u64,
    /// Datagrams the server counted.
    pub received: u64,
    /// Payload bytes the server counted.
    pub bytes: u64,
    /// From the server's first to its last arrival.
    pub window: Duration,
    /// Most datagrams per send (GSO), 1 without.
    pub gso_segments: usize,
}

impl Goodput {
    /// Received payload bytes per second.
    pub fn bytes_per_sec(&self) -> f64 {
        let s = self.window.as_secs_f64();
        if s > 0.0 { self.bytes as f64 / s } else { 0.0 }
    }

    /// Fraction of the sent datagrams that did not arrive.
    pub fn loss(&self) -> f64 {
        if self.sent == 0 {
            0.0
        } else {
            1.0 - (self.received.min(self.sent) as f64 / self.sent as f64)
        }
    }
}

/// Round-trip times of a ping-pong, in nanoseconds, sorted.
#[derive(Debug, Clone)]
pub struct Latency {
    /// UDP payload bytes per ping.
    pub datagram_len: usize,
    /// Sorted round-trip times (ns).
    pub rtt_ns: Vec<u64>,
    /// Pings that got no answer within the wait.
    pub lost: u64,
}

impl Latency {
    /// The `p`-quantile (0..=1) of the round trip, nearest rank.
    pub fn percentile(&self, p: f64) -> Duration {
        percentile(&self.rtt_ns, p)
    }

    /// Mean round trip.
    pub fn mean(&self) -> Duration {
        if self.rtt_ns.is_empty() {
            return Duration::ZERO;
        }
        let sum: u128 = self.rtt_ns.iter().map(|&x| u128::from(x)).sum();
        Duration::from_nanos(u64::try_from(sum / self.rtt_ns.len() as u128).unwrap_or(u64::MAX))
    }
}

/// Nearest-rank percentile of sorted samples (zero if none).
pub fn percentile(sorted: &[u64], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (p.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize;
    let i = rank.saturating_sub(1).min(sorted.len() - 1);
    Duration::from_nanos(sorted[i])
}

/// Called with the elapsed time and a short status while a measurement
/// runs.
pub type Progress<'a> = &'a mut dyn FnMut(Duration, &str);

/// A baseline client talking to one server.
#[derive(Debug)]
pub struct Client {
    ctrl: UdpSocket,
    server: SocketAddr,
    local_ip: IpAddr,
    /// The ping-pong polls for each answer without sleeping (see
    /// [`Client::busy_poll`]).
    busy_poll: bool,
}

impl Client {
    /// A client for `server`, sending from `local_ip` (unspecified: any).
    pub fn new(server: SocketAddr, local_ip: Option<IpAddr>) -> Result<Self, Error> {
        let local_ip = local_ip.unwrap_or(match server {
            SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            SocketAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        });
        let bind = SocketAddr::new(local_ip, 0);
        let ctrl = UdpSocket::bind(bind).map_err(|e| {
            Error::Io(hio::Error::Io {
                context: "binding the client socket",
                source: e,
            })
        })?;
        ctrl.connect(server).map_err(|e| match e.kind() {
            ErrorKind::NetworkUnreachable => Error::Unreachable {
                server,
                network: true,
            },
            ErrorKind::HostUnreachable => Error::Unreachable {
                server,
                network: false,
            },
            _ => Error::Os {
                context: "connecting to the server",
                source: e,
            },
        })?;
        ctrl.set_read_timeout(Some(ANSWER_WAIT))
            .map_err(os("setting the answer timeout"))?;
        let local_ip = ctrl.local_addr().map(|a| a.ip()).unwrap_or(local_ip);
        Ok(Client {
            ctrl,
            server,
            local_ip,
            busy_poll: false,
        })
    }

    /// Makes the ping-pong poll its socket for each answer instead of
    /// sleeping in the receive (ndkperf's `--busy-poll`, with the server
    /// polling too: see [`spawn_server_polling`]).
    pub fn busy_poll(mut self, on: bool) -> Self {
        self.busy_poll = on;
        self
    }

    /// Sends `msg` and waits for an answer starting with `expect`, up to
    /// three times.
    fn request(&self, msg: &[u8], expect: u8, buf: &mut [u8]) -> Result<usize, Error> {
        for _ in 0..TRIES {
            self.ctrl.send(msg).map_err(|e| self.map_err(e))?;
            let end = Instant::now() + ANSWER_WAIT;
            while Instant::now() < end {
                match self.ctrl.recv(buf) {
                    Ok(n) if buf.first() == Some(&expect) => return Ok(n),
                    Ok(_) => continue,
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                        break;
                    }
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(e) => return Err(self.map_err(e)),
                }
            }
        }
        Err(Error::NoAnswer {
            server: self.server,
            waited: ANSWER_WAIT * TRIES,
        })
    }

    fn map_err(&self, e: io::Error) -> Error {
        match e.kind() {
            ErrorKind::ConnectionRefused => Error::Refused {
                server: self.server,
            },
            ErrorKind::NetworkUnreachable => Error::Unreachable {
                server: self.server,
                network: true,
            },
            ErrorKind::HostUnreachable => Error::Unreachable {
                server: self.server,
                network: false,
            },
            _ => Error::Os {
                context: "talking to the server",
                source: e,
            },
        }
    }

    /// Sends a tally of a finished RDMA run (one line) for the server's
    /// operator; waits at most half a second for the acknowledgement
    /// (a peer that is not an ndkperf server never answers). Whether the
    /// server acknowledged it.
    pub fn tally(&self, line: &str) -> bool {
        let mut msg = Vec::with_capacity(1 + line.len());
        msg.push(b'T');
        msg.extend_from_slice(line.as_bytes());
        let mut buf = [0u8; 16];
        for _ in 0..2 {
            if self.ctrl.send(&msg).is_err() {
                return false;
            }
            let end = Instant::now() + Duration::from_millis(250);
            while Instant::now() < end {
                let _ = self.ctrl.set_read_timeout(Some(
                    end.saturating_duration_since(Instant::now())
                        .max(Duration::from_millis(1)),
                ));
                match self.ctrl.recv(&mut buf) {
                    Ok(_) if buf[0] == b't' => {
                        let _ = self.ctrl.set_read_timeout(Some(ANSWER_WAIT));
                        return true;
                    }
                    Ok(_) => continue,
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(_) => break,
                }
            }
        }
        let _ = self.ctrl.set_read_timeout(Some(ANSWER_WAIT));
        false
    }

    /// Checks that a server answers.
    pub fn hello(&self) -> Result<(), Error> {
        let mut buf = [0u8; 64];
        self.request(b"S", b's', &mut buf).map(|_| ())
    }

    /// Sends `datagram_len`-byte datagrams as fast as the socket takes them
    /// for `duration`; the server counts what arrives.
    pub fn goodput(
        &self,
        datagram_len: usize,
        duration: Duration,
        progress: Progress<'_>,
    ) -> Result<Goodput, Error> {
        let datagram_len = datagram_len.clamp(1, 65_000);
        let mut buf = [0u8; 64];
        self.request(b"S", b's', &mut buf)?;
        let mut tx = UdpTransport::bind(SocketAddr::new(self.local_ip, 0))?;
        let gso_segments = tx.max_gso_segments();
        let mut data = vec![0u8; datagram_len];
        data[0] = b'G';
        let per_batch = 64;
        let mut batch = SendBatch::new(per_batch, per_batch * datagram_len);
        let start = Instant::now();
        let mut sent = 0u64;
        let mut last_tick = start;
        // A Ctrl-C ([`crate::perf::request_stop`]) ends the measurement
        // early: the figure covers what was sent until then.
        while start.elapsed() < duration && !crate::perf::stop_requested() {
            while batch.push(self.server, &data) {}
            let r = tx.send(&mut batch);
            sent += r.sent as u64;
            if let Some(e) = r.error {
                return Err(self.map_err(e));
            }
            if !batch.is_empty() {
                let mut fds = [PollFd::new(tx.as_fd(), PollFlags::POLLOUT)];
                let _ = nix::poll::poll(&mut fds, PollTimeout::from(10u8));
            }
            if last_tick.elapsed() >= Duration::from_millis(200) {
                last_tick = Instant::now();
                let rate = (sent as f64 * datagram_len as f64) / start.elapsed().as_secs_f64();
                progress(
                    start.elapsed(),
                    &format!("UDP goodput: sending {}", fmt_rate(rate)),
                );
            }
        }
        // Let the last datagrams land before asking.
        std::thread::sleep(Duration::from_millis(20));
        let n = self.request(b"R", b'r', &mut buf)?;
        let field = |k: usize| -> u64 {
            buf.get(1 + 8 * k..9 + 8 * k)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_le_bytes)
                .unwrap_or(0)
        };
        if n < 33 {
            return Err(Error::Os {
                context: "reading the server's report",
                source: io::Error::new(ErrorKind::InvalidData, "short report"),
            });
        }
        let (received, bytes, first, last) = (field(0), field(1), field(2), field(3));
        // The window runs from the first arrival to the last, plus one
        // datagram's share so a single arrival is not infinitely fast.
        let per = if received > 1 {
            (last - first) / (received - 1)
        } else {
            0
        };
        Ok(Goodput {
            datagram_len,
            sent,
            received,
            bytes,
            window: Duration::from_nanos(last.saturating_sub(first) + per),
            gso_segments,
        })
    }

    /// Goodput both ways at once (the baseline of -b): this side sends as
    /// [`Self::goodput`] does while the server sends `datagram_len`-byte
    /// datagrams back for as long; what each receiver counted, (out, in).
    pub fn goodput_both_ways(
        &self,
        datagram_len: usize,
        duration: Duration,
        progress: Progress<'_>,
    ) -> Result<(Goodput, Goodput), Error> {
        let datagram_len = datagram_len.clamp(1, 65_000);
        let mut rx = UdpTransport::bind(SocketAddr::new(self.local_ip, 0))?;
        let mut msg = [0u8; 19];
        msg[0] = b'B';
        msg[1..5].copy_from_slice(&(datagram_len as u32).to_le_bytes());
        let ms = u32::try_from(duration.as_millis()).unwrap_or(u32::MAX);
        msg[5..9].copy_from_slice(&ms.to_le_bytes());
        msg[9..11].copy_from_slice(&rx.local_addr().port().to_le_bytes());
        let mut buf = [0u8; 16];
        // The token first, then the request that starts the server.
        if self.request(&msg, b'b', &mut buf)? < 9 {
            return Err(Error::Os {
                context: "asking for goodput both ways",
                source: io::Error::new(ErrorKind::InvalidData, "short answer"),
            });
        }
        msg[11..19].copy_from_slice(&buf[1..9]);
        self.request(&msg, b'k', &mut buf)?;
        let stop = AtomicBool::new(false);
        let (out, inb) = std::thread::scope(|sc| {
            let counter = sc.spawn(|| {
                // Until the sender's time is up and the last datagrams
                // had time to land.
                let (mut received, mut bytes, mut first, mut last) = (0u64, 0u64, None, None);
                while !stop.load(Ordering::Acquire) {
                    let n = rx.recv().unwrap_or_default();
                    if n == 0 {
                        let mut fds = [PollFd::new(rx.as_fd(), PollFlags::POLLIN)];
                        let _ = nix::poll::poll(&mut fds, PollTimeout::from(10u8));
                        continue;
                    }
                    let now = Instant::now();
                    for i in 0..n {
                        if let Some(d) = rx.received(i)
                            && d.data.first() == Some(&b'g')
                        {
                            received += 1;
                            bytes += d.data.len() as u64;
                            first.get_or_insert(now);
                            last = Some(now);
                        }
                    }
                }
                let window = match (first, last) {
                    (Some(f), Some(l)) if received > 1 => {
                        let span = l - f;
                        span + span / u32::try_from(received - 1).unwrap_or(u32::MAX)
                    }
                    _ => Duration::ZERO,
                };
                Goodput {
                    datagram_len,
                    sent: 0,
                    received,
                    bytes,
                    window,
                    gso_segments: 0,
                }
            });
            let out = self.goodput(datagram_len, duration, progress);
            std::thread::sleep(Duration::from_millis(50));
            stop.store(true, Ordering::Release);
            (out, counter.join())
        });
        let inb = inb.map_err(|_| Error::Os {
            context: "counting the server's datagrams",
            source: io::Error::other("the counting thread panicked"),
        })?;
        Ok((out?, inb))
    }

    /// Ping-pongs `datagram_len`-byte datagrams, one at a time, `iters`
    /// times or for `max_duration`, whichever ends first.
    pub fn ping_pong(
        &self,
        datagram_len: usize,
        iters: u64,
        max_duration: Duration,
        progress: Progress<'_>,
    ) -> Result<Latency, Error> {
        let datagram_len = datagram_len.clamp(9, 65_000);
        self.hello()?;
        let mut ping = vec![0u8; datagram_len];
        ping[0] = b'P';
        let mut pong = vec![0u8; datagram_len + 64];
        let mut rtt = Vec::with_capacity(usize::try_from(iters.min(10_000_000)).unwrap_or(0));
        let mut lost = 0u64;
        let mut lost_in_a_row = 0;
        let start = Instant::now();
        let mut last_tick = start;
        let polling = self.busy_poll && self.ctrl.set_nonblocking(true).is_ok();
        // The other requests wait in a blocking receive again afterwards,
        // however the ping-pong ends.
        let _blocking_again = polling.then(|| BlockingAgain(&self.ctrl));
        for seq in 0..iters {
            if start.elapsed() >= max_duration || crate::perf::stop_requested() {
                break;
            }
            ping[1..9].copy_from_slice(&seq.to_le_bytes());
            let t0 = Instant::now();
            self.ctrl.send(&ping).map_err(|e| self.map_err(e))?;
            let answered = loop {
                match self.ctrl.recv(&mut pong) {
                    Ok(n) if n >= 9 && pong[0] == b'P' && pong[1..9] == ping[1..9] => break true,
                    Ok(_) => continue,
                    Err(e) if polling && e.kind() == ErrorKind::WouldBlock => {
                        if t0.elapsed() >= ANSWER_WAIT {
                            break false;
                        }
                        std::thread::yield_now();
                    }
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                        break false;
                    }
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(e) => return Err(self.map_err(e)),
                }
            };
            if answered {
                rtt.push(u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX));
                lost_in_a_row = 0;
            } else {
                lost += 1;
                lost_in_a_row += 1;
                if lost_in_a_row >= TRIES {
                    return Err(Error::NoAnswer {
                        server: self.server,
                        waited: ANSWER_WAIT * TRIES,
                    });
                }
            }
            if last_tick.elapsed() >= Duration::from_millis(200) {
                last_tick = Instant::now();
                progress(
                    start.elapsed(),
                    &format!("UDP ping-pong: {} of {iters}", rtt.len()),
                );
            }
        }
        rtt.sort_unstable();
        Ok(Latency {
            datagram_len,
            rtt_ns: rtt,
            lost,
        })
    }
}

/// Puts a socket back into blocking mode when dropped.
struct BlockingAgain<'a>(&'a UdpSocket);

impl Drop for BlockingAgain<'_> {
    fn drop(&mut self) {
        let _ = self.0.set_nonblocking(false);
    }
}

/// memcpy bandwidth.
#[derive(Debug, Clone, Copy)]
pub struct Memcpy {
    /// Bytes per copy.
    pub block: usize,
    /// Copies made.
    pub copies: u64,
    /// Time taken.
    pub elapsed: Duration,
}

impl Memcpy {
    /// Bytes copied per second.
    pub fn bytes_per_sec(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 {
            self.block as f64 * self.copies as f64 / s
        } else {
            0.0
        }
    }
}

/// Copies a `block`-byte buffer into another for `duration` (at least
/// once).
pub fn memcpy_bandwidth(block: usize, duration: Duration, progress: Progress<'_>) -> Memcpy {
    let block = block.max(1);
    let src = vec![0x5Au8; block];
    let mut dst = vec![0u8; block];
    let start = Instant::now();
    let mut copies = 0u64;
    let mut last_tick = start;
    loop {
        dst.copy_from_slice(std::hint::black_box(&src));
        std::hint::black_box(&mut dst);
        copies += 1;
        let e = start.elapsed();
        if e >= duration || crate::perf::stop_requested() {
            break;
        }
        if last_tick.elapsed() >= Duration::from_millis(200) {
            last_tick = Instant::now();
            progress(e, "memcpy");
        }
    }
    Memcpy {
        block,
        copies,
        elapsed: start.elapsed(),
    }
}

/// A rate in bytes per second for people (GB/s, decimal).
pub fn fmt_rate(bytes_per_sec: f64) -> String {
    if bytes_per_sec >= 1e9 {
        format!("{:.2} GB/s", bytes_per_sec / 1e9)
    } else {
        format!("{:.1} MB/s", bytes_per_sec / 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none(_: Duration, _: &str) {}

    #[test]
    fn percentiles_and_sizes() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 0.5), Duration::from_nanos(50));
        assert_eq!(percentile(&v, 0.99), Duration::from_nanos(99));
        assert_eq!(percentile(&v, 1.0), Duration::from_nanos(100));
        assert_eq!(percentile(&v, 0.0), Duration::from_nanos(1));
        assert_eq!(percentile(&[], 0.5), Duration::ZERO);
        assert_eq!(roce_datagram_len(65536, 4096), 4112);
        assert_eq!(roce_datagram_len(64, 4096), 80);
        assert_eq!(roce_datagram_len(0, 0), 17);
    }

    /// `--busy-poll`'s ping-pong: a polling client against a polling
    /// server answers every ping, and the client's socket waits in its
    /// receives again afterwards (a goodput run's requests still work:
    /// with the socket left non-blocking they would find no answer yet and
    /// fail).
    #[test]
    fn a_busy_polling_ping_pong_answers_and_leaves_the_socket_blocking() {
        let server = spawn_server_polling(
            "127.0.0.1:0".parse().unwrap(),
            Duration::from_secs(30),
            Duration::from_millis(100),
        )
        .unwrap();
        let client = Client::new(server.addr(), None).unwrap().busy_poll(true);
        let lat = client
            .ping_pong(80, 500, Duration::from_secs(20), &mut none)
            .unwrap();
        assert_eq!(lat.rtt_ns.len(), 500, "lost {}", lat.lost);
        assert!(lat.percentile(0.5) > Duration::ZERO);
        let g = client
            .goodput(1000, Duration::from_millis(50), &mut none)
            .unwrap();
        assert!(g.sent > 0 && g.received > 0, "{g:?}");
        assert!(server.stop().unwrap().pings >= 500);
    }

    #[test]
    fn baselines_run_against_a_loopback_server() {
        let server = spawn_server("127.0.0.1:0".parse().unwrap(), Duration::from_secs(30)).unwrap();
        let client = Client::new(server.addr(), None).unwrap();
        let lat = client
            .ping_pong(80, 50, Duration::from_secs(10), &mut none)
            .unwrap();
        assert_eq!(lat.rtt_ns.len() as u64 + lat.lost, 50);
        assert!(lat.percentile(0.5) <= lat.percentile(0.99));
        let g = client
            .goodput(1000, Duration::from_millis(50), &mut none)
            .unwrap();
        assert!(
            g.sent > 0 && g.received > 0 && g.received <= g.sent,
            "{g:?}"
        );
        assert_eq!(g.bytes, g.received * 1000);
        let m = memcpy_bandwidth(1 << 16, Duration::from_millis(5), &mut none);
        assert!(m.copies >= 1);
        let s = server.stop().unwrap();
        assert!(s.pings >= 50);
    }

    #[test]
    fn the_server_sends_back_only_to_a_sender_that_proved_its_address() {
        let server = spawn_server("127.0.0.1:0".parse().unwrap(), Duration::from_secs(30)).unwrap();
        // A request without the token (as a forged source would send it):
        // the token comes back, nothing else.
        let victim = UdpSocket::bind("127.0.0.1:0").unwrap();
        victim
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let asker = UdpSocket::bind("127.0.0.1:0").unwrap();
        asker.connect(server.addr()).unwrap();
        asker
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let mut msg = [0u8; 19];
        msg[0] = b'B';
        msg[1..5].copy_from_slice(&100u32.to_le_bytes());
        msg[5..9].copy_from_slice(&200u32.to_le_bytes());
        msg[9..11].copy_from_slice(&victim.local_addr().unwrap().port().to_le_bytes());
        asker.send(&msg).unwrap();
        let mut buf = [0u8; 64];
        let n = asker.recv(&mut buf).unwrap();
        assert_eq!((n, buf[0]), (9, b'b'));
        assert!(
            victim.recv(&mut buf).is_err(),
            "nothing sent without the token"
        );
        // The token from another address does not start it either.
        let other = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut forged = msg;
        forged[11..19].copy_from_slice(&buf[1..9]);
        other.send_to(&forged, server.addr()).unwrap();
        assert!(victim.recv(&mut buf).is_err(), "a token is its address's");
        // Both ways through the client: each side counted the other's.
        let client = Client::new(server.addr(), None).unwrap();
        let (out, back) = client
            .goodput_both_ways(1000, Duration::from_millis(100), &mut none)
            .unwrap();
        assert!(out.received > 0, "{out:?}");
        assert!(
            back.received > 0 && back.bytes == back.received * 1000,
            "{back:?}"
        );
        assert!(back.bytes_per_sec() > 0.0, "{back:?}");
    }

    #[test]
    fn a_missing_server_is_a_clear_error() {
        // Take a port, then free it: nothing listens there.
        let port = UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let client = Client::new(SocketAddr::from(([127, 0, 0, 1], port)), None).unwrap();
        let e = client.hello().unwrap_err();
        assert!(
            matches!(e, Error::Refused { .. } | Error::NoAnswer { .. }),
            "{e:?}"
        );
        assert!(e.to_string().contains("ndkperf --server"), "{e}");
    }

    #[test]
    fn an_unreachable_network_is_not_called_refused() {
        // An address in a network no route leads to: with no default
        // route (a network namespace, a sandbox), connect() fails with
        // ENETUNREACH; with one, the test has nothing to check.
        let server = SocketAddr::from(([203, 0, 113, 9], 18515));
        match Client::new(server, None) {
            Err(e @ Error::Unreachable { network: true, .. }) => {
                let m = e.to_string();
                assert!(m.contains("network unreachable"), "{m}");
                assert!(!m.contains("refused"), "{m}");
            }
            Err(e) => panic!("not an unreachable network: {e:?}"),
            Ok(_) => eprintln!("skipped: this host has a route to {server}"),
        }
        // The mapping itself, whatever the routes.
        let client = Client::new(SocketAddr::from(([127, 0, 0, 1], 9)), None).unwrap();
        let e = client.map_err(io::Error::from(ErrorKind::NetworkUnreachable));
        assert!(
            matches!(e, Error::Unreachable { network: true, .. }),
            "{e:?}"
        );
        assert!(e.to_string().contains("network unreachable"), "{e}");
        let e = client.map_err(io::Error::from(ErrorKind::ConnectionRefused));
        assert!(e.to_string().contains("connection refused"), "{e}");
    }
}
