//! perftest's out-of-band exchange, as the client of `ib_*_bw -R` /
//! `ib_send_lat -R` (linux-rdma/perftest, checked against v4.5-0.17).
//!
//! `-R` makes perftest use rdma_cm both for its test QP and for its
//! exchange (the parser turns `use_rdma_cm` on with `work_rdma_cm`): the
//! exchange runs over a control RC connection to the server's port (18515
//! unless `-p`), the server's control listener gone once it accepted; the
//! test QP then connects to the same port. On the control QP each side
//! keeps one receive of 56 bytes posted (re-posted after each message),
//! and every exchange is "the client Sends, then waits for a Send; the
//! server waits, then Sends", each message one Send of the field's size:
//!
//! 1. version: 16 bytes, a NUL-padded decimal string ("6.06"); a peer
//!    older than 5.70 is refused.
//! 2. system data (remote version >= 5.32): cycle buffer (page size) and
//!    cache line size, each a big-endian 32-bit integer.
//! 3. MTU (remote version >= 5.1): the `ibv_mtu` enum as decimal text,
//!    2 bytes with its NUL (remote version >= 5.31).
//! 4. a handshake of zeroed keys; then the server listens again and the
//!    client connects its test QP (no private data, `out_reads` RDMA
//!    Reads each way for read_bw); a handshake after the connection.
//! 5. key handshakes ([`Dest`]: `struct pingpong_dest`, 56 bytes, every
//!    field big-endian): the server's rkey and address are what RDMA Write
//!    and Read target. Three for write_bw and read_bw; four for send_bw
//!    and send_lat, the last once the server's receives are posted.
//! 6. traffic.
//! 7. write_bw / read_bw: a handshake, then the client's bandwidth report
//!    (size, iterations, peak and average MB/s, Mpps: 8 bytes each,
//!    big-endian), which the server prints as its result line.
//! 8. a closing handshake; then the test connection, then the control
//!    connection, are torn down.
//!
//! [`Client`] is the sequence; the same sequence serves a perftest client
//! when its [`Channel`] takes the peer's message before answering
//! (`host::perf::serve_perftest`). [`Turns`] sorts the control QP's
//! completions into exchanges: a peer's next message may complete before
//! the acknowledgement of this side's last Send does, and belongs to the
//! next exchange.

use crate::perf::{Mode, PerfError, Report};

/// perftest's default port (TCP for the exchange, rdma_cm for the QP).
pub const PORT: u16 = 18515;
/// The version this client announces.
pub const VERSION: &str = "6.06";
/// The oldest server version perftest itself accepts.
const MIN_VERSION: f64 = 5.70;
/// `struct pingpong_dest` on the wire: lid, out_reads, QPN, PSN, rkey
/// (be32 each), 4 bytes of padding, the address (be64), the GID, SRQN and
/// GID index (be32).
pub const KEY_LEN: usize = 56;
/// RDMA Reads outstanding each way that this client asks for.
pub const OUT_READS: u32 = 16;

/// One side's `struct pingpong_dest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Dest {
    /// LID (0 on RoCE).
    pub lid: u32,
    /// RDMA Reads outstanding.
    pub out_reads: u32,
    /// QP number (unused with rdma_cm).
    pub qpn: u32,
    /// PSN (unused with rdma_cm).
    pub psn: u32,
    /// The buffer's rkey.
    pub rkey: u32,
    /// The buffer's address.
    pub vaddr: u64,
    /// GID.
    pub gid: [u8; 16],
    /// SRQ number.
    pub srqn: u32,
    /// GID index.
    pub gid_index: u32,
}

impl Dest {
    /// The 56 bytes perftest's `rdma_write_keys` Sends.
    pub fn encode(&self) -> [u8; KEY_LEN] {
        let mut b = [0u8; KEY_LEN];
        for (i, v) in [self.lid, self.out_reads, self.qpn, self.psn, self.rkey]
            .into_iter()
            .enumerate()
        {
            b[i * 4..i * 4 + 4].copy_from_slice(&v.to_be_bytes());
        }
        b[24..32].copy_from_slice(&self.vaddr.to_be_bytes());
        b[32..48].copy_from_slice(&self.gid);
        b[48..52].copy_from_slice(&self.srqn.to_be_bytes());
        b[52..56].copy_from_slice(&self.gid_index.to_be_bytes());
        b
    }

    /// Parses a received `struct pingpong_dest`.
    pub fn decode(b: &[u8]) -> Option<Dest> {
        let b: &[u8; KEY_LEN] = b.get(..KEY_LEN)?.try_into().ok()?;
        let u = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let mut gid = [0u8; 16];
        gid.copy_from_slice(&b[32..48]);
        Some(Dest {
            lid: u(0),
            out_reads: u(4),
            qpn: u(8),
            psn: u(12),
            rkey: u(16),
            vaddr: u64::from_be_bytes(b[24..32].try_into().ok()?),
            gid,
            srqn: u(48),
            gid_index: u(52),
        })
    }
}

/// The `ibv_mtu` enum of a path MTU (256 = 1 … 4096 = 5).
pub fn mtu_enum(mtu: u32) -> u32 {
    match mtu {
        0..=256 => 1,
        257..=512 => 2,
        513..=1024 => 3,
        1025..=2048 => 4,
        _ => 5,
    }
}

/// The 16-byte version field.
pub fn encode_version(v: &str) -> [u8; 16] {
    let mut b = [0u8; 16];
    let n = v.len().min(15);
    b[..n].copy_from_slice(&v.as_bytes()[..n]);
    b
}

/// A version field's number (`atof`).
pub fn parse_version(b: &[u8]) -> f64 {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    let s = String::from_utf8_lossy(&b[..end]);
    let num: String = s
        .trim()
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    num.parse().unwrap_or(0.0)
}

/// The client's bandwidth report, as `xchg_bw_reports` sends it (report
/// per port off): size, iterations, peak MB/s, average MB/s, Mpps.
pub fn encode_bw_report(size: u64, iters: u64, bw_peak: f64, bw_avg: f64, mpps: f64) -> [u8; 40] {
    let mut b = [0u8; 40];
    b[..8].copy_from_slice(&size.to_be_bytes());
    b[8..16].copy_from_slice(&iters.to_be_bytes());
    b[16..24].copy_from_slice(&bw_peak.to_bits().to_be_bytes());
    b[24..32].copy_from_slice(&bw_avg.to_bits().to_be_bytes());
    b[32..40].copy_from_slice(&mpps.to_bits().to_be_bytes());
    b
}

/// A bandwidth report as `xchg_bw_reports` carries it (MB/s are
/// perftest's, 2^20 bytes a second).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct BwReport {
    /// Message size.
    pub size: u64,
    /// Iterations the peer ran.
    pub iters: u64,
    /// Peak bandwidth, MB/s.
    pub bw_peak_mbs: f64,
    /// Average bandwidth, MB/s.
    pub bw_avg_mbs: f64,
    /// Message rate, millions a second.
    pub mpps: f64,
}

/// The modes perftest has a `-R` server for.
pub fn supported(mode: Mode) -> bool {
    matches!(
        mode,
        Mode::WriteBw
            | Mode::ReadBw
            | Mode::SendBw
            | Mode::SendLat
            | Mode::WriteLat
            | Mode::ReadLat
    )
}

/// perftest's `-a` sizes: 2^1 to 2^23 bytes (`MAX_SIZE`, perftest_parameters.h;
/// the `for (i = 1; i < 24; ++i)` loops of write_bw.c and its siblings; for
/// RC, send_bw.c's `size_max_pow` is 24 too).
pub const ALL_MAX: usize = 1 << 23;

/// A run's shape beyond its mode: perftest's `-q` (test QPs), `-b`
/// (bidirectional) and `-a` (every size from 2 B to [`ALL_MAX`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// Test QPs (`-q`).
    pub qps: u32,
    /// Both sides run traffic (`-b`).
    pub duplex: bool,
    /// Every size (`-a`).
    pub all: bool,
}

impl Default for Shape {
    fn default() -> Shape {
        Shape {
            qps: 1,
            duplex: false,
            all: false,
        }
    }
}

impl Shape {
    /// The message sizes a run of `size` goes through.
    pub fn sizes(&self, size: usize) -> Vec<usize> {
        if self.all {
            (1..24).map(|i| 1usize << i).collect()
        } else {
            vec![size]
        }
    }

    /// The largest message of a run of `size`.
    pub fn max_size(&self, size: usize) -> usize {
        if self.all { ALL_MAX } else { size }
    }

    /// Whether perftest runs `mode` in this shape: its parser allows `-q`
    /// and `-b` on the bandwidth tests only (perftest_parameters.c,
    /// `parser`, cases 'q' and 'b').
    pub fn check(&self, mode: Mode) -> Result<(), PerfError> {
        if !supported(mode) {
            return Err(PerfError::new(format!(
                "perftest has no -R server for {}; use write_bw, read_bw, send_bw, send_lat, \
                 write_lat or read_lat",
                mode.name()
            )));
        }
        if mode.is_latency() && (self.qps > 1 || self.duplex) {
            return Err(PerfError::new(format!(
                "perftest runs -q and -b in its bandwidth tests only, not {}",
                mode.name()
            )));
        }
        if self.qps == 0 {
            return Err(PerfError::new("-q 0: at least one test QP"));
        }
        Ok(())
    }
}

/// The control connection's message exchange: Send `mine`, then take
/// the peer's next Send (as many bytes).
pub trait Channel {
    /// One exchange; `what` names it in errors.
    fn xchg(&mut self, mine: &[u8], what: &str) -> Result<Vec<u8>, PerfError>;
}

/// A completion on the control connection's completion queue (Sends and
/// receives share it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Completion {
    /// This side's Send completed (the peer acknowledged it).
    Sent,
    /// A receive completed with the peer's message; the receive is
    /// posted again already.
    Received(Vec<u8>),
}

/// The control connection's QP as [`Turns`] drives it.
pub trait Control {
    /// Posts one Send of `msg`.
    fn send(&mut self, msg: &[u8], what: &str) -> Result<(), PerfError>;
    /// The next completion (an error if none comes in time, or if it
    /// failed).
    fn next(&mut self, what: &str) -> Result<Completion, PerfError>;
}

/// Sorts the control connection's completions into exchanges.
///
/// Sends and receives complete on one CQ, and RC orders nothing between
/// them: a side's Send completes when the peer's acknowledgement arrives,
/// and the peer may send its *next* message before that acknowledgement
/// (its reply to our Send is handled, it Sends again, and its ACK of our
/// message goes out after). perftest's server sees this: it takes the
/// client's message, answers, and while it waits for its answer's Send
/// to complete the client's next message completes a receive first. That
/// message belongs to the next exchange: it is kept here, and the next
/// exchange takes it instead of waiting for a receive that already came.
#[derive(Debug, Clone, Default)]
pub struct Turns {
    /// The server's side: take the peer's message first, then Send.
    pub server: bool,
    /// A message of the peer's that arrived for the next exchange.
    early: Option<Vec<u8>>,
}

impl Turns {
    /// The client's side (Send, then take the peer's answer).
    pub fn client() -> Turns {
        Turns::default()
    }

    /// The server's side (take the peer's message, then answer).
    pub fn server() -> Turns {
        Turns {
            server: true,
            early: None,
        }
    }

    /// One exchange over `c`: Send `mine` and take the peer's message of
    /// as many bytes (the server takes it first); returns once both the
    /// Send and the receive completed.
    pub fn xchg(
        &mut self,
        c: &mut dyn Control,
        mine: &[u8],
        what: &str,
    ) -> Result<Vec<u8>, PerfError> {
        let mut got = self.early.take();
        if self.server && got.is_none() {
            // The client Sends first.
            match c.next(what)? {
                Completion::Received(m) => got = Some(m),
                Completion::Sent => {
                    return Err(PerfError::new(format!(
                        "perftest {what}: a Send completed out of turn"
                    )));
                }
            }
        }
        c.send(mine, what)?;
        let mut sent = false;
        while !(sent && got.is_some()) {
            match c.next(what)? {
                Completion::Sent => sent = true,
                Completion::Received(m) if got.is_none() => got = Some(m),
                // The peer's next message, ahead of the acknowledgement
                // of this side's Send.
                Completion::Received(m) if self.early.is_none() => self.early = Some(m),
                Completion::Received(_) => {
                    return Err(PerfError::new(format!(
                        "perftest {what}: the peer sent twice out of turn"
                    )));
                }
            }
        }
        let data = got.unwrap_or_default();
        if data.len() != mine.len() {
            return Err(PerfError::new(format!(
                "perftest {what}: the peer sent {} bytes, not {}",
                data.len(),
                mine.len()
            )));
        }
        Ok(data)
    }
}

/// The client's side of perftest's exchange (steps 1-8 above) over a
/// [`Channel`].
#[derive(Debug, Clone, Default)]
pub struct Client {
    mode: Option<Mode>,
    shape: Shape,
    /// The server's version string's number.
    pub remote_version: f64,
    /// The server's cycle buffer and cache line (if exchanged).
    pub remote_sys: Option<(u32, u32)>,
    /// The server's MTU enum (if exchanged).
    pub remote_mtu: Option<u32>,
    /// The server's keys (its first test QP's).
    pub server: Dest,
    /// The exchange went through to its end (the closing handshake;
    /// write_lat has none).
    pub closed: bool,
}

impl Client {
    /// A client for `mode` with one test QP, one direction, one size.
    pub fn new(mode: Mode) -> Result<Client, PerfError> {
        Client::with_shape(mode, Shape::default())
    }

    /// A client for `mode` in `shape`.
    pub fn with_shape(mode: Mode, shape: Shape) -> Result<Client, PerfError> {
        shape.check(mode)?;
        Ok(Client {
            mode: Some(mode),
            shape,
            ..Client::default()
        })
    }

    fn is(&self, modes: &[Mode]) -> bool {
        self.mode.is_some_and(|m| modes.contains(&m))
    }

    /// Steps 1-4 up to the handshake before the test QP's connect.
    pub fn start(&mut self, ch: &mut dyn Channel, path_mtu: u32) -> Result<(), PerfError> {
        let v = ch.xchg(&encode_version(VERSION), "version")?;
        self.remote_version = parse_version(&v);
        if self.remote_version < MIN_VERSION {
            return Err(PerfError::new(format!(
                "the perftest server announced version {:?}; perftest needs {MIN_VERSION} or later",
                String::from_utf8_lossy(&v).trim_end_matches('\0')
            )));
        }
        if self.remote_version >= 5.32 {
            let cb = ch.xchg(&4096u32.to_be_bytes(), "cycle buffer")?;
            let cl = ch.xchg(&64u32.to_be_bytes(), "cache line")?;
            let u = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
            self.remote_sys = Some((u(&cb), u(&cl)));
        }
        if self.remote_version >= 5.1 {
            let text = format!("{}", mtu_enum(path_mtu));
            let len = if self.remote_version >= 5.31 { 2 } else { 4 };
            let mut m = vec![0u8; len];
            let n = text.len().min(len - 1);
            m[..n].copy_from_slice(&text.as_bytes()[..n]);
            let r = ch.xchg(&m, "MTU")?;
            let end = r.iter().position(|&b| b == 0).unwrap_or(r.len());
            self.remote_mtu = std::str::from_utf8(&r[..end])
                .ok()
                .and_then(|s| s.parse().ok());
        }
        self.handshake(ch, &Dest::default(), "sync before the test QP's connect")?;
        Ok(())
    }

    fn handshake(
        &mut self,
        ch: &mut dyn Channel,
        mine: &Dest,
        what: &str,
    ) -> Result<Dest, PerfError> {
        let r = ch.xchg(&mine.encode(), what)?;
        Dest::decode(&r)
            .ok_or_else(|| PerfError::new(format!("perftest {what}: {} bytes of keys", r.len())))
    }

    /// Step 5, once every test QP is connected: `mine` holds each test
    /// QP's keys (as many as the shape's QPs); returns the server's, in
    /// the same order. The handshakes of `create_rdma_cm_connection`
    /// (perftest_communication.c, the one after the connects) and of each
    /// test's `main`: write_lat.c and read_lat.c one more with the first
    /// QP's keys ahead of the per-QP ones; send_bw.c and send_lat.c one
    /// between the per-QP rounds; the others one after them ("after
    /// moving qp to RTR").
    pub fn after_connect(
        &mut self,
        ch: &mut dyn Channel,
        mine: &[Dest],
    ) -> Result<Vec<Dest>, PerfError> {
        let Some(first) = mine.first().copied() else {
            return Err(PerfError::new("perftest: no test QP"));
        };
        if mine.len() != self.shape.qps as usize {
            return Err(PerfError::new(format!(
                "perftest: keys of {} test QPs for a run of {}",
                mine.len(),
                self.shape.qps
            )));
        }
        let send = self.is(&[Mode::SendBw, Mode::SendLat]);
        self.handshake(ch, &Dest::default(), "sync after the test QP's connect")?;
        if self.is(&[Mode::WriteLat, Mode::ReadLat]) {
            self.handshake(ch, &first, "keys of the first test QP")?;
        }
        let mut server = Vec::with_capacity(mine.len());
        for m in mine {
            server.push(self.handshake(ch, m, "keys")?);
        }
        if send {
            self.handshake(ch, &first, "sync after the keys")?;
        }
        for m in mine {
            self.handshake(ch, m, "keys, second round")?;
        }
        if !send {
            self.handshake(ch, &first, "sync before traffic")?;
        }
        self.server = server[0];
        Ok(server)
    }

    /// Before each size's traffic: send_bw and send_lat sync once the
    /// receives are posted, and a bidirectional write_bw or read_bw syncs
    /// both sides' start (write_bw.c, read_bw.c, send_bw.c, send_lat.c:
    /// the handshake ahead of `run_iter_*`).
    pub fn before_size(&mut self, ch: &mut dyn Channel, first: &Dest) -> Result<(), PerfError> {
        let duplex_rdma = self.shape.duplex && self.is(&[Mode::WriteBw, Mode::ReadBw]);
        if self.is(&[Mode::SendBw, Mode::SendLat]) || duplex_rdma {
            self.handshake(ch, first, "sync before traffic")?;
        }
        Ok(())
    }

    /// After each size's traffic: a bidirectional run exchanges both
    /// sides' reports (`xchg_bw_reports`), and with `-a` syncs once more
    /// (write_bw.c and read_bw.c before the reports, for a peer of version
    /// 4.6 or later, as every peer `start` accepts is; send_bw.c after
    /// them). Returns the peer's report when one was exchanged.
    pub fn after_size(
        &mut self,
        ch: &mut dyn Channel,
        first: &Dest,
        r: &Report,
        size: usize,
    ) -> Result<Option<BwReport>, PerfError> {
        let mut peer = None;
        if self.shape.duplex && self.is(&[Mode::WriteBw, Mode::ReadBw]) {
            if self.shape.all {
                self.handshake(ch, first, "sync after a size")?;
            }
            peer = Some(self.reports(ch, r, size)?);
        }
        if self.is(&[Mode::SendBw]) {
            if self.shape.duplex {
                peer = Some(self.reports(ch, r, size)?);
            }
            if self.shape.all {
                self.handshake(ch, first, "sync after a size")?;
            }
        }
        Ok(peer)
    }

    /// Steps 7 and 8, after the traffic: a one-directional write_bw or
    /// read_bw syncs and sends the client's report (the server learns from
    /// it what the client ran: perftest tells a server nothing else), then
    /// the closing handshake (`ctx_close_connection`); write_lat.c has
    /// neither.
    pub fn finish(
        &mut self,
        ch: &mut dyn Channel,
        first: &Dest,
        r: &Report,
        size: usize,
    ) -> Result<Option<BwReport>, PerfError> {
        let mut peer = None;
        if !self.shape.duplex && self.is(&[Mode::WriteBw, Mode::ReadBw]) {
            self.handshake(ch, first, "sync after traffic")?;
            peer = Some(self.reports(ch, r, size)?);
        }
        if !self.is(&[Mode::WriteLat]) {
            self.handshake(ch, first, "closing sync")?;
        }
        self.closed = true;
        Ok(peer)
    }

    /// `xchg_bw_reports` (report per port off): this side's report `r` of
    /// `size`-byte messages for the peer's.
    fn reports(
        &mut self,
        ch: &mut dyn Channel,
        r: &Report,
        size: usize,
    ) -> Result<BwReport, PerfError> {
        let mbs = r.bytes_per_sec() / (1 << 20) as f64;
        let mpps = r.msg_rate() / 1e6;
        let rep = encode_bw_report(size as u64, r.messages, mbs, mbs, mpps);
        let be64 = |b: Vec<u8>| -> u64 {
            b.get(..8)
                .and_then(|s| <[u8; 8]>::try_from(s).ok())
                .map_or(0, u64::from_be_bytes)
        };
        let size = be64(ch.xchg(&rep[..8], "report size")?);
        let iters = if self.remote_version >= 5.33 {
            be64(ch.xchg(&rep[8..16], "report iterations")?)
        } else {
            let b = ch.xchg(&(r.messages as u32).to_be_bytes(), "report iterations")?;
            b.get(..4)
                .and_then(|s| <[u8; 4]>::try_from(s).ok())
                .map_or(0, |a| u64::from(u32::from_be_bytes(a)))
        };
        let peak = f64::from_bits(be64(ch.xchg(&rep[16..24], "report peak")?));
        let avg = f64::from_bits(be64(ch.xchg(&rep[24..32], "report average")?));
        let mpps = f64::from_bits(be64(ch.xchg(&rep[32..40], "report message rate")?));
        Ok(BwReport {
            size,
            iters,
            bw_peak_mbs: peak,
            bw_avg_mbs: avg,
            mpps,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_pingpong_dest_big_endian() {
        let d = Dest {
            lid: 0,
            out_reads: 16,
            qpn: 0x11,
            psn: 0xabcdef,
            rkey: 0x1234_5678,
            vaddr: 0x7f00_dead_beef,
            gid: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 9, 0, 1],
            srqn: 0,
            gid_index: 1,
        };
        let b = d.encode();
        assert_eq!(b.len(), 56);
        assert_eq!(&b[16..20], &[0x12, 0x34, 0x56, 0x78]);
        assert_eq!(&b[24..32], &[0, 0, 0x7f, 0, 0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(&b[44..48], &[10, 9, 0, 1]);
        assert_eq!(Dest::decode(&b), Some(d));
    }

    /// A scripted control connection: the completions to come, in
    /// order, and what this side sent. `answer` decides what each Send
    /// makes come next.
    struct Script<F: FnMut(usize, &[u8]) -> Vec<Completion>> {
        queue: std::collections::VecDeque<Completion>,
        sent: Vec<Vec<u8>>,
        answer: F,
    }

    impl<F: FnMut(usize, &[u8]) -> Vec<Completion>> Control for Script<F> {
        fn send(&mut self, msg: &[u8], _what: &str) -> Result<(), PerfError> {
            let more = (self.answer)(self.sent.len(), msg);
            self.sent.push(msg.to_vec());
            self.queue.extend(more);
            Ok(())
        }
        fn next(&mut self, what: &str) -> Result<Completion, PerfError> {
            self.queue
                .pop_front()
                .ok_or_else(|| PerfError::new(format!("perftest {what}: nothing completed")))
        }
    }

    struct Ch<'a>(&'a mut Turns, &'a mut dyn Control);

    impl Channel for Ch<'_> {
        fn xchg(&mut self, mine: &[u8], what: &str) -> Result<Vec<u8>, PerfError> {
            self.0.xchg(self.1, mine, what)
        }
    }

    /// A whole exchange on `turns` over `c` (the mode's steps 1-8).
    fn run(mode: Mode, turns: &mut Turns, c: &mut dyn Control, mine: &Dest) -> Client {
        run_reported(mode, Shape::default(), turns, c, mine).0
    }

    /// [`run`] in `shape`, with the peer's last bandwidth report.
    fn run_reported(
        mode: Mode,
        shape: Shape,
        turns: &mut Turns,
        c: &mut dyn Control,
        mine: &Dest,
    ) -> (Client, Option<BwReport>) {
        let mut x = Client::with_shape(mode, shape).unwrap();
        let mut ch = Ch(turns, c);
        x.start(&mut ch, 1024).unwrap();
        let keys = vec![*mine; shape.qps as usize];
        let server = x.after_connect(&mut ch, &keys).unwrap();
        assert_eq!(server.len(), keys.len());
        let r = Report {
            messages: 50,
            ..Report::default()
        };
        let mut peer = None;
        for size in shape.sizes(3000) {
            x.before_size(&mut ch, mine).unwrap();
            if let Some(p) = x.after_size(&mut ch, mine, &r, size).unwrap() {
                peer = Some(p);
            }
        }
        if let Some(p) = x.finish(&mut ch, mine, &r, 3000).unwrap() {
            peer = Some(p);
        }
        (x, peer)
    }

    /// The client's messages in a whole exchange of `mode` in `shape`
    /// (against a peer that answers each at once, before acknowledging it).
    fn shaped_messages(mode: Mode, shape: Shape, mine: &Dest) -> Vec<Vec<u8>> {
        let mut c = Script {
            queue: Default::default(),
            sent: Vec::new(),
            answer: |k: usize, m: &[u8]| {
                let answer = if k == 0 {
                    encode_version(VERSION).to_vec()
                } else {
                    m.to_vec()
                };
                vec![Completion::Received(answer), Completion::Sent]
            },
        };
        let (x, _) = run_reported(mode, shape, &mut Turns::client(), &mut c, mine);
        assert!(x.closed);
        assert_eq!(x.server, *mine, "the echoed keys");
        c.sent
    }

    fn client_messages(mode: Mode, mine: &Dest) -> Vec<Vec<u8>> {
        shaped_messages(mode, Shape::default(), mine)
    }

    #[test]
    fn message_counts_follow_each_tests_main() {
        // Counted from v4.5-0.17's write_bw.c, read_bw.c, send_bw.c,
        // send_lat.c, write_lat.c and read_lat.c: 4 messages of versions,
        // system data and MTU, then the handshakes around the connect (2),
        // the tests' own (per QP and the extra ones), per-size syncs and
        // reports (5 messages each), and the closing handshake.
        let d = Dest::default();
        let one = Shape::default();
        let q3 = Shape { qps: 3, ..one };
        let b = Shape {
            duplex: true,
            ..one
        };
        let a = Shape { all: true, ..one };
        let ab = Shape { all: true, ..b };
        for (mode, shape, n) in [
            (Mode::WriteBw, one, 16),
            (Mode::ReadBw, one, 16),
            (Mode::WriteBw, q3, 20),
            (Mode::WriteBw, b, 16),
            (Mode::WriteBw, ab, 9 + 23 * 7 + 1),
            (Mode::WriteBw, a, 16),
            (Mode::SendBw, one, 11),
            (Mode::SendBw, q3, 15),
            (Mode::SendBw, a, 9 + 23 * 2 + 1),
            (Mode::SendBw, b, 16),
            (Mode::SendLat, one, 11),
            (Mode::SendLat, a, 9 + 23 + 1),
            (Mode::WriteLat, one, 10),
            (Mode::WriteLat, a, 10),
            (Mode::ReadLat, one, 11),
        ] {
            assert_eq!(
                shaped_messages(mode, shape, &d).len(),
                n,
                "{mode:?} {shape:?}"
            );
        }
        // perftest's parser refuses -q and -b on the latency tests.
        for m in [Mode::SendLat, Mode::WriteLat, Mode::ReadLat] {
            assert!(Client::with_shape(m, q3).is_err());
            assert!(Client::with_shape(m, b).is_err());
        }
        assert!(Client::new(Mode::Rping).is_err());
    }

    #[test]
    fn the_server_keeps_a_message_that_overtakes_its_send_completion() {
        // Over RC the client's next message may complete the server's
        // receive before the client's ACK of the server's answer completes
        // the server's Send (seen on loopback: 1 run in about 40 failed
        // with "nothing completed within 5 s" on both sides). The server
        // must keep that message for its next exchange, not take it as
        // this one's.
        let client = Dest {
            out_reads: OUT_READS,
            rkey: 0x1234,
            vaddr: 0x7f00_0000_1000,
            ..Dest::default()
        };
        let server = Dest {
            rkey: 0x5678,
            vaddr: 0x7f00_0000_2000,
            ..client
        };
        for mode in [
            Mode::WriteBw,
            Mode::ReadBw,
            Mode::SendBw,
            Mode::SendLat,
            Mode::WriteLat,
            Mode::ReadLat,
        ] {
            let from_client = client_messages(mode, &client);
            let n = from_client.len();
            let mut next = from_client.clone().into_iter();
            let first = next.next().map(Completion::Received);
            let mut c = Script {
                queue: first.into_iter().collect(),
                sent: Vec::new(),
                // Every answer of the server's: the client's next message
                // completes first, then the server's Send.
                answer: move |_k: usize, _m: &[u8]| {
                    let mut v: Vec<Completion> =
                        next.next().map(Completion::Received).into_iter().collect();
                    v.push(Completion::Sent);
                    v
                },
            };
            let mut turns = Turns::server();
            let (x, peer) = run_reported(mode, Shape::default(), &mut turns, &mut c, &server);
            assert!(x.closed, "{mode:?}");
            // What the client ran reaches the server only in its report.
            match mode {
                Mode::WriteBw | Mode::ReadBw => {
                    let p = peer.unwrap();
                    assert_eq!((p.size, p.iters), (3000, 50), "{mode:?}");
                }
                _ => assert_eq!(peer, None),
            }
            assert_eq!(x.server, client, "{mode:?}: the client's keys");
            assert_eq!(c.sent.len(), n, "{mode:?}: one answer per message");
            assert!(c.queue.is_empty(), "{mode:?}: {:?}", c.queue);
            assert!(turns.early.is_none(), "{mode:?}");
            // And in the order without overtaking (the Send completes
            // first), the same exchange.
            let mut next = from_client.into_iter();
            let first = next.next().map(Completion::Received);
            let mut c = Script {
                queue: first.into_iter().collect(),
                sent: Vec::new(),
                answer: move |_k: usize, _m: &[u8]| {
                    let mut v = vec![Completion::Sent];
                    v.extend(next.next().map(Completion::Received));
                    v
                },
            };
            let x = run(mode, &mut Turns::server(), &mut c, &server);
            assert!(x.closed, "{mode:?}");
            assert_eq!(c.sent.len(), n, "{mode:?}");
        }
    }

    #[test]
    fn a_peer_out_of_turn_is_an_error() {
        // The client: an answer completes before its Send; a second
        // message before the exchange ends is kept, a third is an error.
        let mut c = Script {
            queue: Default::default(),
            sent: Vec::new(),
            answer: |_k: usize, m: &[u8]| {
                vec![
                    Completion::Received(m.to_vec()),
                    Completion::Received(m.to_vec()),
                    Completion::Received(m.to_vec()),
                    Completion::Sent,
                ]
            },
        };
        let e = Turns::client()
            .xchg(&mut c, &[1, 2, 3, 4], "t")
            .unwrap_err();
        assert!(e.0.contains("out of turn"), "{e}");
        // A kept message of the wrong size for its exchange.
        let mut c = Script {
            queue: [
                Completion::Received(vec![1; 16]),
                Completion::Received(vec![2; 4]),
                Completion::Sent,
                Completion::Sent,
            ]
            .into(),
            sent: Vec::new(),
            answer: |_k: usize, _m: &[u8]| Vec::new(),
        };
        let mut t = Turns::server();
        assert_eq!(t.xchg(&mut c, &[0; 16], "version").unwrap(), vec![1; 16]);
        let e = t.xchg(&mut c, &[0; 56], "keys").unwrap_err();
        assert!(e.0.contains("sent 4 bytes, not 56"), "{e}");
        // The server: a Send completion before any message.
        let mut c = Script {
            queue: [Completion::Sent].into(),
            sent: Vec::new(),
            answer: |_k: usize, _m: &[u8]| Vec::new(),
        };
        let e = Turns::server().xchg(&mut c, &[0; 4], "t").unwrap_err();
        assert!(e.0.contains("out of turn"), "{e}");
    }

    #[test]
    fn versions_and_mtu() {
        assert_eq!(parse_version(&encode_version("6.06")), 6.06);
        assert_eq!(parse_version(b"5.70\0\0"), 5.70);
        assert_eq!(mtu_enum(1024), 3);
        assert_eq!(mtu_enum(4096), 5);
    }
}
