//! Datagram transports for RoCEv2 (framing.rs in crates/roce explains the
//! two modes).
//!
//! * [`UdpTransport`]: an OS UDP socket (port 4791, or any port on
//!   loopback). The device sees UDP payloads and computes its ICRCs over a
//!   canonical header. Built on `quinn-udp`: batched receive with
//!   `recvmmsg`, UDP GRO when the kernel accepts `UDP_GRO`, UDP GSO
//!   (`UDP_SEGMENT`) for runs of same-size datagrams to one peer, both
//!   detected at run time and switched off on the first `EIO`/`EINVAL`;
//!   `IP_PKTINFO` gives the destination address of every datagram so a
//!   wildcard bind still feeds the ICRC the right address. Where GSO is
//!   missing, datagrams go out in `sendmmsg` batches.
//! * [`RawTransport`]: a raw IP socket (`AF_INET`/`AF_INET6`, `SOCK_RAW`,
//!   `IPPROTO_UDP`, with `IP_HDRINCL`/`IPV6_HDRINCL`) so the device's whole
//!   IP datagrams, exact ICRC included, go out unchanged: what a Linux rxe
//!   peer needs. Needs `CAP_NET_RAW`. A plain UDP socket is held on the
//!   same port so the kernel neither answers with ICMP port-unreachable nor
//!   lets another program take the port.
//!
//! Every call is non-blocking; the event loop ([`crate::endpoint`]) does
//! the (bounded) waiting.

use std::fmt;
use std::io::{self, IoSlice, IoSliceMut};
use std::net::{IpAddr, Ipv6Addr, SocketAddr, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrStorage};
use quinn_udp::{RecvMeta, Transmit as QuinnTransmit, UdpSocketState};
use socket2::{Domain, Protocol, Socket, Type};

/// The RoCEv2 UDP port.
pub const ROCE_PORT: u16 = 4791;

/// Datagrams one receive or send call moves at most (quinn-udp's batch).
pub const BATCH: usize = quinn_udp::BATCH_SIZE;

/// Receive slot size: a whole GRO super-datagram (64 KiB).
const RX_SLOT: usize = 1 << 16;

/// Largest UDP payload one GSO send may carry.
const MAX_GSO_BYTES: usize = 65_000;

/// Socket buffer size asked for (best effort).
const SOCKET_BUFFER: usize = 8 << 20;

/// How datagrams cross a transport: the device's own [`IpMode`] (UDP
/// payloads through an OS socket, or whole IP datagrams).
pub use roce::framing::IpMode;

/// Why a transport could not be opened (or what failed later).
#[derive(Debug)]
pub enum Error {
    /// Another socket holds the address and port.
    PortInUse {
        /// The address asked for.
        addr: SocketAddr,
    },
    /// The OS refused the bind (a privileged port, a security policy).
    PermissionDenied {
        /// The address asked for.
        addr: SocketAddr,
    },
    /// The address cannot be used here.
    BadAddress {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        reason: &'static str,
    },
    /// Raw mode needs `CAP_NET_RAW` (root, or `setcap cap_net_raw+ep`).
    NeedsCapNetRaw,
    /// Any other OS error, with what was being done.
    Io {
        /// What was being done.
        context: &'static str,
        /// The OS error.
        source: io::Error,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::PortInUse { addr } if addr.port() == ROCE_PORT => write!(
                f,
                "address {addr} is already in use (another ndkperf, or the rdma_rxe \
                 module, which owns UDP port {ROCE_PORT} once loaded?); choose another port"
            ),
            Error::PortInUse { addr } => write!(
                f,
                "address {addr} is already in use (another ndkperf?); choose another port"
            ),
            Error::PermissionDenied { addr } => {
                write!(f, "permission denied binding {addr}")
            }
            Error::BadAddress { addr, reason } => write!(f, "cannot use address {addr}: {reason}"),
            Error::NeedsCapNetRaw => write!(
                f,
                "raw IP mode needs CAP_NET_RAW: run as root or grant it with \
                 `setcap cap_net_raw+ep <binary>`; UDP mode needs no privilege"
            ),
            Error::Io { context, source } => write!(f, "{context}: {source}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Maps a bind error to the error a user can act on.
fn bind_error(addr: SocketAddr, e: io::Error) -> Error {
    match e.raw_os_error() {
        Some(nix::libc::EADDRINUSE) => Error::PortInUse { addr },
        Some(nix::libc::EACCES) | Some(nix::libc::EPERM) => Error::PermissionDenied { addr },
        Some(nix::libc::EADDRNOTAVAIL) => Error::BadAddress {
            addr,
            reason: "not an address of this host",
        },
        Some(nix::libc::EAFNOSUPPORT) => Error::BadAddress {
            addr,
            reason: "address family not supported here (IPv6 disabled?)",
        },
        Some(nix::libc::EINVAL) => Error::BadAddress {
            addr,
            reason: "invalid address for this socket",
        },
        _ => Error::Io {
            context: "binding the socket",
            source: e,
        },
    }
}

fn io_err(context: &'static str) -> impl FnOnce(io::Error) -> Error {
    move |source| Error::Io { context, source }
}

/// A received datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Datagram<'a> {
    /// Sender's address and port.
    pub src: SocketAddr,
    /// Our address (the one it was sent to) and port.
    pub dst: SocketAddr,
    /// UDP payload ([`IpMode::Udp`]) or whole IP datagram ([`IpMode::Raw`]).
    pub data: &'a [u8],
}

#[derive(Debug, Clone, Copy)]
struct RxItem {
    start: usize,
    len: usize,
    src: SocketAddr,
    dst: SocketAddr,
}

/// What a send call did.
#[derive(Debug, Default)]
pub struct SendReport {
    /// Datagrams handed to the OS.
    pub sent: usize,
    /// Datagrams dropped on an error (as the wire drops them).
    pub dropped: usize,
    /// The last error other than "would block", if any.
    pub error: Option<io::Error>,
    /// Datagrams the link refused for their size (EMSGSIZE), by their
    /// index in the batch ([`SendBatch::sent_item`]): the engine is told,
    /// since no retry of theirs can ever leave.
    pub refused: Refused,
}

/// Indices of refused datagrams in a [`SendBatch`] (the first few of a
/// send call: one is enough to fail the QP that sent them).
#[derive(Debug, Default, Clone, Copy)]
pub struct Refused {
    idx: [usize; 4],
    n: usize,
}

impl Refused {
    fn push(&mut self, i: usize) {
        if let Some(slot) = self.idx.get_mut(self.n) {
            *slot = i;
            self.n += 1;
        }
    }

    /// The refused datagrams' indices.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.idx.iter().take(self.n).copied()
    }
}

/// Whether a send error is the link refusing the datagram's size.
fn too_big(e: &io::Error) -> bool {
    e.raw_os_error() == Some(nix::libc::EMSGSIZE)
}

#[derive(Debug, Clone, Copy)]
struct TxItem {
    dst: SocketAddr,
    start: usize,
    len: usize,
}

/// Most headroom [`SendBatch::with_headroom`] keeps in front of each
/// datagram built in place.
pub const MAX_HEADROOM: usize = 64;

/// Datagrams waiting to be sent, back to back in one buffer so that runs
/// of same-size datagrams to one peer go out as one GSO send. Allocated
/// once; pushing never allocates.
#[derive(Debug)]
pub struct SendBatch {
    buf: Vec<u8>,
    items: Vec<TxItem>,
    head: usize,
    /// End of the last datagram (the first is at `base`).
    used: usize,
    max_items: usize,
    /// Bytes kept free in front of the first datagram, so that a datagram
    /// built in place has its headroom there too.
    base: usize,
}

impl SendBatch {
    /// Room for `max_items` datagrams and `max_bytes` bytes.
    pub fn new(max_items: usize, max_bytes: usize) -> Self {
        Self::with_headroom(max_items, max_bytes, 0)
    }

    /// Like [`SendBatch::new`], for datagrams built in place
    /// ([`SendBatch::push_in_place`]) with `headroom` bytes (at most
    /// [`MAX_HEADROOM`]) in front of each.
    pub fn with_headroom(max_items: usize, max_bytes: usize, headroom: usize) -> Self {
        let base = headroom.min(MAX_HEADROOM);
        SendBatch {
            buf: vec![0; base + max_bytes],
            items: Vec::with_capacity(max_items),
            head: 0,
            used: base,
            max_items,
            base,
        }
    }

    /// Datagrams waiting.
    pub fn len(&self) -> usize {
        self.items.len() - self.head
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether a datagram of `len` bytes fits now.
    pub fn has_room(&mut self, len: usize) -> bool {
        self.compact();
        self.items.len() < self.max_items && self.used + len <= self.buf.len()
    }

    /// Whether a datagram can be built in place in a window of `window`
    /// bytes (the headroom included) now.
    pub fn has_room_in_place(&mut self, window: usize) -> bool {
        self.compact();
        self.items.len() < self.max_items && self.used - self.base + window <= self.buf.len()
    }

    /// Builds the next datagram in place: `build` gets a window of `window`
    /// bytes whose first [`SendBatch::with_headroom`] bytes are headroom
    /// (scratch it may write, e.g. headers it leaves out of the datagram)
    /// and returns the destination and where in the window the datagram
    /// is. The datagram joins the batch without being copied when it
    /// starts right after the headroom (else it is moved there).
    ///
    /// `None` if `build` had nothing (nothing queued), `Some(false)` if the
    /// batch had no room or `build`'s range was not in its window (nothing
    /// queued), `Some(true)` if the datagram was queued.
    pub fn push_in_place(
        &mut self,
        window: usize,
        build: impl FnOnce(&mut [u8]) -> Option<(SocketAddr, std::ops::Range<usize>)>,
    ) -> Option<bool> {
        if !self.has_room_in_place(window) {
            return Some(false);
        }
        let at = self.used;
        let start = at - self.base;
        // The headroom overlaps the tail of the datagram before: keep it.
        let mut saved = [0u8; MAX_HEADROOM];
        let kept = saved.get_mut(..self.base)?;
        kept.copy_from_slice(self.buf.get(start..at)?);
        let win = self.buf.get_mut(start..start + window)?;
        let built = build(win);
        let queued = match built {
            Some((dst, r)) if r.start <= r.end && r.end <= window => {
                let len = r.end - r.start;
                if r.start != self.base {
                    self.buf.copy_within(start + r.start..start + r.end, at);
                }
                self.used += len;
                self.items.push(TxItem {
                    dst,
                    start: at,
                    len,
                });
                Some(true)
            }
            Some(_) => Some(false),
            None => None,
        };
        if let (Some(dst), Some(src)) = (self.buf.get_mut(start..at), saved.get(..self.base)) {
            dst.copy_from_slice(src);
        }
        queued
    }

    /// Queues a copy of `data` for `dst`; false (and nothing queued) if the
    /// batch is full.
    pub fn push(&mut self, dst: SocketAddr, data: &[u8]) -> bool {
        if !self.has_room(data.len()) {
            return false;
        }
        let start = self.used;
        let Some(slot) = self.buf.get_mut(start..start + data.len()) else {
            return false;
        };
        slot.copy_from_slice(data);
        self.used += data.len();
        self.items.push(TxItem {
            dst,
            start,
            len: data.len(),
        });
        true
    }

    /// The waiting datagrams, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = (SocketAddr, &[u8])> {
        self.items[self.head..]
            .iter()
            .map(|i| (i.dst, &self.buf[i.start..i.start + i.len]))
    }

    /// Datagram `i` of the batch (an index a [`SendReport`] names), sent
    /// or dropped but still held: valid until the next push.
    pub fn sent_item(&self, i: usize) -> Option<(SocketAddr, &[u8])> {
        let it = self.items.get(i)?;
        Some((it.dst, self.buf.get(it.start..it.start + it.len)?))
    }

    /// Index of the oldest waiting datagram.
    fn head_index(&self) -> usize {
        self.head
    }

    /// Forgets every waiting datagram.
    pub fn clear(&mut self) {
        self.items.clear();
        self.head = 0;
        self.used = self.base;
    }

    fn pending(&self) -> &[TxItem] {
        &self.items[self.head..]
    }

    fn bytes(&self, i: &TxItem) -> &[u8] {
        &self.buf[i.start..i.start + i.len]
    }

    fn consume(&mut self, n: usize) {
        // What was sent stays readable ([`SendBatch::sent_item`]) until the
        // next push compacts it away.
        self.head = (self.head + n).min(self.items.len());
    }

    /// Moves the waiting datagrams to the front of the buffer.
    fn compact(&mut self) {
        if self.head == 0 {
            return;
        }
        let Some(first) = self.items.get(self.head).map(|i| i.start) else {
            self.clear();
            return;
        };
        let shift = first - self.base;
        self.buf.copy_within(first..self.used, self.base);
        self.items.drain(..self.head);
        for i in &mut self.items {
            i.start -= shift;
        }
        self.used -= shift;
        self.head = 0;
    }
}

/// A datagram socket the event loop can drive.
pub trait Transport: Send + fmt::Debug {
    /// What a datagram is on this transport.
    fn ip_mode(&self) -> IpMode;
    /// The bound address and port.
    fn local_addr(&self) -> SocketAddr;
    /// The descriptor to wait on for readability and writability.
    fn as_fd(&self) -> BorrowedFd<'_>;
    /// Receives what is queued, without blocking, replacing what the last
    /// call received; the number of datagrams (0 if none was waiting).
    fn recv(&mut self) -> io::Result<usize>;
    /// Datagram `i` of the last [`Transport::recv`].
    fn received(&self, i: usize) -> Option<Datagram<'_>>;
    /// Sends what the socket takes without blocking; what it does not take
    /// stays in `batch`.
    fn send(&mut self, batch: &mut SendBatch) -> SendReport;
    /// Whether the last [`Transport::recv`] filled every slot, so that more
    /// may be waiting (the loop then receives again before it waits).
    fn recv_was_full(&self) -> bool {
        true
    }
}

/// Preallocated `mmsghdr`s for sendmmsg/recvmmsg.
#[derive(Debug)]
struct Mmsg(MultiHeaders<SockaddrStorage>);

impl Mmsg {
    fn new() -> Self {
        Mmsg(MultiHeaders::preallocate(BATCH, None))
    }
}

// SAFETY: `MultiHeaders` is not `Send` only because it holds raw pointers:
// into its own heap allocations (the address slots, which move with it),
// and to the caller's buffers, set and used within one sendmmsg/recvmmsg
// call that borrows them. Nothing in it is shared with another thread.
unsafe impl Send for Mmsg {}

fn canonical(a: SocketAddr) -> SocketAddr {
    SocketAddr::new(a.ip().to_canonical(), a.port())
}

/// Addresses an IPv4 peer from an IPv6 (dual-stack) socket.
fn for_socket(local: SocketAddr, dst: SocketAddr) -> SocketAddr {
    match (local, dst.ip()) {
        (SocketAddr::V6(_), IpAddr::V4(v4)) => {
            SocketAddr::new(IpAddr::V6(v4.to_ipv6_mapped()), dst.port())
        }
        _ => dst,
    }
}

/// A UDP socket moving RoCE packets as UDP payloads.
#[derive(Debug)]
pub struct UdpTransport {
    socket: UdpSocket,
    state: UdpSocketState,
    local: SocketAddr,
    rx_buf: Vec<u8>,
    rx_meta: [RecvMeta; BATCH],
    rx_items: Vec<RxItem>,
    /// Messages (before GRO splitting) the last receive returned.
    rx_msgs: usize,
    mmsg: Mmsg,
    /// Send through sendmmsg even where GSO works (tests, measurements).
    force_mmsg: bool,
}

impl UdpTransport {
    /// Binds `addr` (port 0 picks a free port). A wildcard IPv6 address
    /// takes IPv4 too.
    pub fn bind(addr: SocketAddr) -> Result<Self, Error> {
        let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))
            .map_err(|e| bind_error(addr, e))?;
        if let IpAddr::V6(ip) = addr.ip()
            && ip == Ipv6Addr::UNSPECIFIED
        {
            // Best effort: a host with IPv6-only sockets keeps them.
            let _ = socket.set_only_v6(false);
        }
        let _ = socket.set_recv_buffer_size(SOCKET_BUFFER);
        let _ = socket.set_send_buffer_size(SOCKET_BUFFER);
        socket.bind(&addr.into()).map_err(|e| bind_error(addr, e))?;
        let socket: UdpSocket = socket.into();
        let state =
            UdpSocketState::new((&socket).into()).map_err(io_err("configuring the UDP socket"))?;
        let local = socket
            .local_addr()
            .map_err(io_err("reading the bound address"))?;
        Ok(UdpTransport {
            socket,
            state,
            local,
            rx_buf: vec![0; BATCH * RX_SLOT],
            rx_meta: [RecvMeta::default(); BATCH],
            rx_items: Vec::with_capacity(BATCH * 64),
            rx_msgs: 0,
            mmsg: Mmsg::new(),
            force_mmsg: false,
        })
    }

    /// Most datagrams one send call may carry with GSO (1: no GSO).
    pub fn max_gso_segments(&self) -> usize {
        if self.force_mmsg {
            1
        } else {
            self.state.max_gso_segments()
        }
    }

    /// Most datagrams the kernel coalesces into one receive (1: no GRO).
    pub fn gro_segments(&self) -> usize {
        self.state.gro_segments()
    }

    /// Sends without GSO (runs go out through sendmmsg instead).
    pub fn disable_gso(&mut self) {
        self.force_mmsg = true;
    }

    /// The socket, for options this type does not cover.
    pub fn socket(&self) -> &UdpSocket {
        &self.socket
    }

    /// Sends one datagram now (no batching).
    pub fn send_to(&self, dst: SocketAddr, payload: &[u8]) -> io::Result<()> {
        let t = QuinnTransmit {
            destination: for_socket(self.local, dst),
            ecn: None,
            contents: payload,
            segment_size: None,
            src_ip: None,
        };
        self.state.try_send((&self.socket).into(), &t)
    }

    /// Whether datagrams need their source address set per send (a
    /// wildcard bind), which sendmmsg here does not do.
    fn wildcard(&self) -> bool {
        self.local.ip().is_unspecified()
    }

    fn send_gso(&self, batch: &SendBatch, run: &[TxItem]) -> io::Result<()> {
        let (Some(first), Some(last)) = (run.first(), run.last()) else {
            return Ok(());
        };
        let contents = &batch.buf[first.start..last.start + last.len];
        let t = QuinnTransmit {
            destination: for_socket(self.local, first.dst),
            ecn: None,
            contents,
            segment_size: (run.len() > 1).then_some(first.len),
            src_ip: None,
        };
        self.state.try_send((&self.socket).into(), &t)
    }

    fn send_mmsg(&mut self, batch: &SendBatch, items: &[TxItem]) -> io::Result<usize> {
        let n = items.len().min(BATCH);
        let mut addrs: [Option<SockaddrStorage>; BATCH] = [None; BATCH];
        let mut iovs: [[IoSlice<'_>; 1]; BATCH] = std::array::from_fn(|_| [IoSlice::new(&[])]);
        for (k, it) in items.iter().take(n).enumerate() {
            addrs[k] = Some(SockaddrStorage::from(for_socket(self.local, it.dst)));
            iovs[k] = [IoSlice::new(batch.bytes(it))];
        }
        let fd = self.socket.as_raw_fd();
        loop {
            match nix::sys::socket::sendmmsg(
                fd,
                &mut self.mmsg.0,
                &iovs[..n],
                &addrs[..n],
                [],
                MsgFlags::MSG_DONTWAIT,
            ) {
                Ok(r) => return Ok(r.count()),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
}

impl Transport for UdpTransport {
    fn ip_mode(&self) -> IpMode {
        IpMode::Udp
    }

    fn local_addr(&self) -> SocketAddr {
        self.local
    }

    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }

    fn recv(&mut self) -> io::Result<usize> {
        self.rx_items.clear();
        self.rx_msgs = 0;
        let mut chunks = self.rx_buf.chunks_mut(RX_SLOT);
        let mut iovs: [IoSliceMut<'_>; BATCH] =
            std::array::from_fn(|_| IoSliceMut::new(chunks.next().unwrap_or_default()));
        let n = match self
            .state
            .recv((&self.socket).into(), &mut iovs, &mut self.rx_meta)
        {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(0),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(0),
            Err(e) => return Err(e),
        };
        self.rx_msgs = n;
        for (slot, meta) in self.rx_meta.iter().take(n).enumerate() {
            let src = canonical(meta.addr);
            let dst = SocketAddr::new(
                meta.dst_ip.unwrap_or(self.local.ip()).to_canonical(),
                self.local.port(),
            );
            let stride = if meta.stride == 0 {
                meta.len
            } else {
                meta.stride
            };
            let base = slot * RX_SLOT;
            let len = meta.len.min(RX_SLOT);
            let mut off = 0;
            while off < len {
                let seg = stride.min(len - off);
                self.rx_items.push(RxItem {
                    start: base + off,
                    len: seg,
                    src,
                    dst,
                });
                off += seg;
            }
        }
        Ok(self.rx_items.len())
    }

    fn received(&self, i: usize) -> Option<Datagram<'_>> {
        let it = self.rx_items.get(i)?;
        Some(Datagram {
            src: it.src,
            dst: it.dst,
            data: self.rx_buf.get(it.start..it.start + it.len)?,
        })
    }

    fn recv_was_full(&self) -> bool {
        self.rx_msgs >= BATCH
    }

    fn send(&mut self, batch: &mut SendBatch) -> SendReport {
        let mut report = SendReport::default();
        let gso = self.max_gso_segments();
        while !batch.is_empty() {
            let pending = batch.pending();
            // A run: same destination, same size (the last may be shorter),
            // within the GSO limits.
            let mut run = 1;
            let mut bytes = pending[0].len;
            while run < pending.len() && run < gso {
                let (prev, next) = (&pending[run - 1], &pending[run]);
                if next.dst != pending[0].dst
                    || prev.len != pending[0].len
                    || next.len > pending[0].len
                    || bytes + next.len > MAX_GSO_BYTES
                {
                    break;
                }
                bytes += next.len;
                run += 1;
            }
            let result = if gso == 1 && pending.len() > 1 && !self.wildcard() {
                // No GSO: one sendmmsg for up to BATCH datagrams.
                let n = pending.len().min(BATCH);
                let mut items = [pending[0]; BATCH];
                items[..n].copy_from_slice(&pending[..n]);
                run = 1; // what is dropped on an error
                self.send_mmsg(batch, &items[..n])
            } else {
                self.send_gso(batch, &pending[..run]).map(|()| run)
            };
            match result {
                Ok(n) => {
                    report.sent += n;
                    batch.consume(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // The wire drops it; the transport's retries recover,
                    // unless the link refused its size.
                    if too_big(&e) {
                        for k in 0..run {
                            report.refused.push(batch.head_index() + k);
                        }
                    }
                    report.dropped += run;
                    batch.consume(run);
                    report.error = Some(e);
                }
            }
        }
        report
    }
}

/// A raw IP socket moving whole RoCEv2 IP datagrams (exact ICRC).
#[derive(Debug)]
pub struct RawTransport {
    raw: Socket,
    /// Holds the UDP port: no ICMP port-unreachable replies, no other
    /// owner.
    _claim: UdpSocket,
    local: SocketAddr,
    rx_buf: Vec<u8>,
    rx_items: Vec<RxItem>,
    rx_mmsg: Mmsg,
    tx_mmsg: Mmsg,
}

/// IPv6 header length (raw IPv6 sockets deliver from the UDP header on;
/// the header is rebuilt in front).
const IPV6_HEADER: usize = 40;

/// Whether this process may open raw sockets (`CAP_NET_RAW`).
pub fn has_cap_net_raw() -> bool {
    Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::UDP)).is_ok()
}

impl RawTransport {
    /// Opens a raw socket for RoCEv2 datagrams to `addr` (a specific
    /// address of this host, and the UDP port, normally 4791).
    pub fn bind(addr: SocketAddr) -> Result<Self, Error> {
        if addr.ip().is_unspecified() {
            return Err(Error::BadAddress {
                addr,
                reason: "raw mode needs a specific local address (the ICRC covers it)",
            });
        }
        let raw = Socket::new(Domain::for_address(addr), Type::RAW, Some(Protocol::UDP)).map_err(
            |e| match e.raw_os_error() {
                Some(nix::libc::EPERM) | Some(nix::libc::EACCES) => Error::NeedsCapNetRaw,
                _ => bind_error(addr, e),
            },
        )?;
        match addr {
            SocketAddr::V4(_) => raw.set_header_included_v4(true),
            SocketAddr::V6(_) => raw.set_header_included_v6(true),
        }
        .map_err(io_err("setting IP_HDRINCL"))?;
        let _ = raw.set_recv_buffer_size(SOCKET_BUFFER);
        let _ = raw.set_send_buffer_size(SOCKET_BUFFER);
        // Bound to the address: the kernel delivers only datagrams to it.
        raw.bind(&SocketAddr::new(addr.ip(), 0).into())
            .map_err(|e| bind_error(addr, e))?;
        raw.set_nonblocking(true)
            .map_err(io_err("making the raw socket non-blocking"))?;
        let claim = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))
            .map_err(|e| bind_error(addr, e))?;
        claim.bind(&addr.into()).map_err(|e| bind_error(addr, e))?;
        let _ = claim.set_recv_buffer_size(0);
        let claim: UdpSocket = claim.into();
        let local = SocketAddr::new(
            addr.ip(),
            claim
                .local_addr()
                .map_err(io_err("reading the bound address"))?
                .port(),
        );
        Ok(RawTransport {
            raw,
            _claim: claim,
            local,
            rx_buf: vec![0; BATCH * (RX_SLOT + IPV6_HEADER)],
            rx_items: Vec::with_capacity(BATCH),
            rx_mmsg: Mmsg::new(),
            tx_mmsg: Mmsg::new(),
        })
    }

    /// Filters and describes a received IPv4 datagram.
    fn v4_item(&self, start: usize, len: usize) -> Option<RxItem> {
        let d = self.rx_buf.get(start..start + len)?;
        let ihl = usize::from(d.first()? & 0x0F) * 4;
        if d.first()? >> 4 != 4 || *d.get(9)? != 17 || ihl < 20 {
            return None;
        }
        let src_ip: [u8; 4] = d.get(12..16)?.try_into().ok()?;
        let dst_ip: [u8; 4] = d.get(16..20)?.try_into().ok()?;
        let udp = d.get(ihl..ihl + 8)?;
        let sport = u16::from_be_bytes([udp[0], udp[1]]);
        let dport = u16::from_be_bytes([udp[2], udp[3]]);
        let dst = SocketAddr::new(IpAddr::from(dst_ip), dport);
        (dst == self.local).then_some(RxItem {
            start,
            len,
            src: SocketAddr::new(IpAddr::from(src_ip), sport),
            dst,
        })
    }

    /// Rebuilds the IPv6 header in front of a received UDP datagram.
    fn v6_item(&mut self, slot_start: usize, len: usize, src: Ipv6Addr) -> Option<RxItem> {
        let IpAddr::V6(dst_ip) = self.local.ip() else {
            return None;
        };
        let udp_start = slot_start + IPV6_HEADER;
        let udp = self.rx_buf.get(udp_start..udp_start + len)?;
        let sport = u16::from_be_bytes([*udp.first()?, *udp.get(1)?]);
        let dport = u16::from_be_bytes([*udp.get(2)?, *udp.get(3)?]);
        if dport != self.local.port() {
            return None;
        }
        let payload_len = u16::try_from(len).ok()?;
        let h = self.rx_buf.get_mut(slot_start..udp_start)?;
        // Traffic class, flow label and hop limit are masked by the ICRC;
        // the rest is what the sender wrote.
        h.fill(0);
        h[0] = 0x60;
        h[4..6].copy_from_slice(&payload_len.to_be_bytes());
        h[6] = 17;
        h[7] = 64;
        h[8..24].copy_from_slice(&src.octets());
        h[24..40].copy_from_slice(&dst_ip.octets());
        Some(RxItem {
            start: slot_start,
            len: len + IPV6_HEADER,
            src: SocketAddr::new(IpAddr::V6(src), sport),
            dst: self.local,
        })
    }
}

impl Transport for RawTransport {
    fn ip_mode(&self) -> IpMode {
        IpMode::Raw
    }

    fn local_addr(&self) -> SocketAddr {
        self.local
    }

    fn as_fd(&self) -> BorrowedFd<'_> {
        self.raw.as_fd()
    }

    fn recv(&mut self) -> io::Result<usize> {
        self.rx_items.clear();
        let v6 = self.local.is_ipv6();
        let off = if v6 { IPV6_HEADER } else { 0 };
        let slot = RX_SLOT + IPV6_HEADER;
        let fd = self.raw.as_raw_fd();
        let mut got: [(usize, Option<SockaddrStorage>); BATCH] = [(0, None); BATCH];
        let n = {
            let mut chunks = self.rx_buf.chunks_mut(slot);
            let mut iovs: [[IoSliceMut<'_>; 1]; BATCH] = std::array::from_fn(|_| {
                let c = chunks.next().unwrap_or_default();
                [IoSliceMut::new(c.get_mut(off..).unwrap_or_default())]
            });
            let res = nix::sys::socket::recvmmsg(
                fd,
                &mut self.rx_mmsg.0,
                iovs.iter_mut(),
                MsgFlags::MSG_DONTWAIT,
                None,
            );
            match res {
                Ok(msgs) => {
                    let mut n = 0;
                    for (k, m) in msgs.enumerate() {
                        got[k] = (m.bytes, m.address);
                        n += 1;
                    }
                    n
                }
                // Nothing waiting, or a signal: the next turn comes back.
                Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => 0,
                Err(e) => return Err(e.into()),
            }
        };
        for (k, (bytes, addr)) in got.iter().take(n).enumerate() {
            let start = k * slot;
            let item = if v6 {
                addr.as_ref()
                    .and_then(|a| a.as_sockaddr_in6())
                    .and_then(|a| self.v6_item(start, *bytes, a.ip()))
            } else {
                self.v4_item(start, *bytes)
            };
            if let Some(it) = item {
                self.rx_items.push(it);
            }
        }
        Ok(self.rx_items.len())
    }

    fn received(&self, i: usize) -> Option<Datagram<'_>> {
        let it = self.rx_items.get(i)?;
        Some(Datagram {
            src: it.src,
            dst: it.dst,
            data: self.rx_buf.get(it.start..it.start + it.len)?,
        })
    }

    fn send(&mut self, batch: &mut SendBatch) -> SendReport {
        let mut report = SendReport::default();
        let fd = self.raw.as_raw_fd();
        while !batch.is_empty() {
            let pending = batch.pending();
            let n = pending.len().min(BATCH);
            let mut addrs: [Option<SockaddrStorage>; BATCH] = [None; BATCH];
            let mut iovs: [[IoSlice<'_>; 1]; BATCH] = std::array::from_fn(|_| [IoSlice::new(&[])]);
            for (k, it) in pending.iter().take(n).enumerate() {
                // The kernel routes by the address; the port must be 0.
                addrs[k] = Some(SockaddrStorage::from(SocketAddr::new(it.dst.ip(), 0)));
                iovs[k] = [IoSlice::new(batch.bytes(it))];
            }
            let r = nix::sys::socket::sendmmsg(
                fd,
                &mut self.tx_mmsg.0,
                &iovs[..n],
                &addrs[..n],
                [],
                MsgFlags::MSG_DONTWAIT,
            )
            .map(|r| r.count());
            match r {
                Ok(0) => break,
                Ok(k) => {
                    report.sent += k;
                    batch.consume(k);
                }
                Err(nix::errno::Errno::EAGAIN) => break,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => {
                    if e == nix::errno::Errno::EMSGSIZE {
                        report.refused.push(batch.head_index());
                    }
                    report.dropped += 1;
                    batch.consume(1);
                    report.error = Some(e.into());
                }
            }
        }
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_queues_consumes_and_compacts() {
        let mut b = SendBatch::new(3, 10);
        let d: SocketAddr = "127.0.0.1:1".parse().unwrap();
        assert!(b.push(d, &[1, 2, 3]));
        assert!(b.push(d, &[4, 5, 6]));
        assert!(!b.push(d, &[0; 5]), "over the byte room");
        assert!(b.push(d, &[7]));
        assert!(!b.push(d, &[8]), "over the item room");
        assert_eq!(b.len(), 3);
        b.consume(2);
        assert_eq!(
            b.iter().map(|(_, x)| x.to_vec()).collect::<Vec<_>>(),
            [vec![7]]
        );
        // Compaction makes room again.
        assert!(b.push(d, &[9, 9, 9, 9]));
        assert_eq!(
            b.iter().map(|(_, x)| x.to_vec()).collect::<Vec<_>>(),
            [vec![7], vec![9, 9, 9, 9]]
        );
        b.consume(5);
        assert!(b.is_empty());
    }

    #[test]
    fn batch_builds_in_place_and_keeps_what_the_headroom_overlaps() {
        let d: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let mut b = SendBatch::with_headroom(4, 24, 4);
        // Built right after the headroom; the builder scribbles on it.
        let built = |fill: u8, len: usize| {
            move |w: &mut [u8]| {
                w[..4].fill(0xEE);
                w[4..4 + len].fill(fill);
                Some((d, 4..4 + len))
            }
        };
        assert_eq!(b.push_in_place(10, built(1, 5)), Some(true));
        assert_eq!(b.push_in_place(10, built(2, 5)), Some(true));
        // Built inside the headroom: moved to its place.
        assert_eq!(
            b.push_in_place(10, |w: &mut [u8]| {
                w[..10].fill(0xEE);
                w[1..4].fill(3);
                Some((d, 1..4))
            }),
            Some(true)
        );
        // Back to back (one GSO run) and intact.
        assert_eq!(
            b.iter().map(|(_, x)| x.to_vec()).collect::<Vec<_>>(),
            [vec![1; 5], vec![2; 5], vec![3; 3]]
        );
        // A window past the bytes left, a builder with nothing, a range
        // outside the window: nothing queued, nothing disturbed.
        assert_eq!(b.push_in_place(16, built(4, 5)), Some(false));
        assert_eq!(
            b.push_in_place(10, |w: &mut [u8]| {
                w.fill(0xEE);
                None
            }),
            None
        );
        assert_eq!(
            b.push_in_place(10, |w: &mut [u8]| {
                w.fill(0xEE);
                Some((d, 4..11))
            }),
            Some(false)
        );
        assert_eq!(b.len(), 3);
        b.consume(2);
        // Compaction keeps the headroom in front of the first datagram.
        assert_eq!(b.push_in_place(10, built(5, 6)), Some(true));
        assert_eq!(
            b.iter().map(|(_, x)| x.to_vec()).collect::<Vec<_>>(),
            [vec![3; 3], vec![5; 6]]
        );
        b.consume(2);
        assert!(b.is_empty());
    }

    #[test]
    fn bind_errors_are_clear() {
        let a = UdpTransport::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let taken = a.local_addr();
        match UdpTransport::bind(taken) {
            Err(Error::PortInUse { addr }) => assert_eq!(addr, taken),
            other => panic!("expected PortInUse, got {other:?}"),
        }
        let e = UdpTransport::bind("192.0.2.1:0".parse().unwrap()).unwrap_err();
        assert!(matches!(e, Error::BadAddress { .. }), "{e:?}");
        assert!(e.to_string().contains("not an address of this host"), "{e}");
        let e = RawTransport::bind("0.0.0.0:4791".parse().unwrap()).unwrap_err();
        assert!(matches!(e, Error::BadAddress { .. }), "{e:?}");
    }

    fn pair(gso: bool) -> (UdpTransport, UdpTransport) {
        let a = UdpTransport::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let mut b = UdpTransport::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        if !gso {
            b.disable_gso();
        }
        (a, b)
    }

    fn recv_all(t: &mut UdpTransport, want: usize) -> Vec<(SocketAddr, SocketAddr, Vec<u8>)> {
        let mut out = Vec::new();
        for _ in 0..2000 {
            let n = t.recv().unwrap();
            for i in 0..n {
                let d = t.received(i).unwrap();
                out.push((d.src, d.dst, d.data.to_vec()));
            }
            if out.len() >= want {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        out
    }

    #[test]
    fn udp_batches_arrive_intact_with_and_without_gso() {
        for gso in [true, false] {
            let (mut rx, mut tx) = pair(gso);
            let mut batch = SendBatch::new(64, 64 * 2048);
            // A GSO-able run of equal sizes, a short tail, then another size.
            for k in 0..20u8 {
                assert!(batch.push(rx.local_addr(), &[k; 1000]));
            }
            assert!(batch.push(rx.local_addr(), &[99; 10]));
            assert!(batch.push(rx.local_addr(), &[100; 1500]));
            let r = tx.send(&mut batch);
            assert_eq!((r.sent, r.dropped), (22, 0), "{:?}", r.error);
            let got = recv_all(&mut rx, 22);
            assert_eq!(got.len(), 22, "gso={gso}");
            for (k, (src, dst, data)) in got.iter().enumerate() {
                assert_eq!(*src, tx.local_addr());
                assert_eq!(*dst, rx.local_addr());
                match k {
                    0..20 => assert_eq!(data, &vec![k as u8; 1000]),
                    20 => assert_eq!(data, &vec![99; 10]),
                    _ => assert_eq!(data, &vec![100; 1500]),
                }
            }
        }
    }

    #[test]
    fn wildcard_bind_reports_the_real_destination() {
        let mut rx = UdpTransport::bind("[::]:0".parse().unwrap()).unwrap();
        let tx = UdpTransport::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let to: SocketAddr = SocketAddr::new("127.0.0.1".parse().unwrap(), rx.local_addr().port());
        tx.send_to(to, b"hello").unwrap();
        let got = recv_all(&mut rx, 1);
        assert_eq!(got.len(), 1);
        assert_eq!(
            got[0].0,
            tx.local_addr(),
            "IPv4-mapped sources are unmapped"
        );
        assert_eq!(got[0].1, to, "IP_PKTINFO gives the destination");
    }
}
