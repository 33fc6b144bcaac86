//! The MS-SMBD connection state machine (MS-SMBD 3.1), sans-IO.
//!
//! The shell (an NDK consumer, or the in-memory pair in the tests) feeds in
//! events through [`Connection::handle`] — the RDMA connection came up, a
//! receive completed with these bytes, the upper layer wants to send a
//! message, the peer disconnected — plus the time, and drains
//! [`Connection::poll_output`] for what to do: post a send of these bytes,
//! post this many receives, deliver a reassembled upper-layer message,
//! disconnect. Timers are [`Connection::poll_timeout`] and
//! [`Connection::handle_timeout`].
//!
//! Receive accounting: `posted` receives are in the shell's hands; `granted`
//! of them the peer knows about (its send credits). The difference is what
//! the next outgoing message can grant (MS-SMBD 3.1.5.9). Every received
//! message consumes one posted receive and one of the peer's credits; the
//! machine asks for it to be reposted to keep `posted` at the receive credit
//! target, so there is always a credit to grant back.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::wire::{
    self, DataTransfer, DataTransferHeader, FLAG_RESPONSE_REQUESTED, MIN_FRAGMENTED_SIZE,
    MIN_RECEIVE_SIZE, NegotiateRequest, NegotiateResponse, SMBD_VERSION_1, WireError,
};

/// STATUS_NOT_SUPPORTED, the Negotiate Response status for a version
/// mismatch (MS-SMBD 3.1.5.6).
pub const STATUS_NOT_SUPPORTED: u32 = 0xC000_00BB;

/// Which side of the connection this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Sends the Negotiate Request (MS-SMBD 3.1.5.2).
    Client,
    /// Answers it (MS-SMBD 3.1.5.6); used by the tests' in-memory peer.
    Server,
}

/// Local parameters (MS-SMBD 3.1.1.1). The defaults match Linux ksmbd's
/// (255 credits each way, 1364-byte messages) with a 1 MiB reassembly limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Most receives this side keeps posted, so most credits it grants.
    pub receive_credit_max: u16,
    /// Send credits asked of the peer (CreditsRequested).
    pub send_credit_target: u16,
    /// Largest message this side sends (before the peer's limit applies).
    pub preferred_send_size: u32,
    /// Size of each posted receive buffer.
    pub max_receive_size: u32,
    /// Largest upper-layer message this side reassembles.
    pub max_fragmented_size: u32,
    /// Server only: MaxReadWriteSize offered for RDMA transfers.
    pub max_read_write_size: u32,
    /// How long to wait for the negotiate exchange (MS-SMBD 3.1.6.1).
    pub negotiate_timeout: Duration,
    /// Idle time before a keepalive is sent (MS-SMBD 3.1.6.2).
    pub idle_timeout: Duration,
    /// How long a keepalive may go unanswered before giving up.
    pub keepalive_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            receive_credit_max: 255,
            send_credit_target: 255,
            preferred_send_size: 1364,
            max_receive_size: 1364,
            max_fragmented_size: 1024 * 1024,
            max_read_write_size: 1024 * 1024,
            negotiate_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(120),
            keepalive_timeout: Duration::from_secs(5),
        }
    }
}

/// What the negotiation settled (MS-SMBD 3.1.1.1 Connection fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    /// Largest message this side may send (peer's MaxReceiveSize applied).
    pub max_send_size: u32,
    /// Largest upper-layer message this side may send, fragmented.
    pub max_fragmented_send_size: u32,
    /// Largest RDMA read/write the server accepts in one SMB2 request.
    pub max_read_write_size: u32,
}

/// Why the connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisconnectReason {
    /// The local upper layer closed it.
    Local,
    /// The RDMA connection went away under us.
    PeerDisconnected,
    /// No Negotiate Response/Request in time.
    NegotiateTimeout,
    /// The peer did not answer a keepalive.
    KeepaliveTimeout,
    /// The negotiation failed (version, sizes, credits, status).
    NegotiateFailed(NegotiateError),
    /// The peer broke the protocol after negotiation.
    Protocol(ProtocolError),
}

/// A Negotiate Request/Response this side cannot accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NegotiateError {
    Malformed(WireError),
    /// Status field was not STATUS_SUCCESS.
    Status(u32),
    /// No common version, or a NegotiatedVersion other than 1.0.
    Version {
        min: u16,
        max: u16,
        negotiated: u16,
    },
    NoCreditsGranted,
    NoCreditsRequested,
    MaxReceiveSizeTooSmall(u32),
    MaxFragmentedSizeTooSmall(u32),
    /// The peer's messages would not fit our receive buffers.
    PreferredSendSizeTooLarge(u32),
}

/// A data-phase protocol violation by the peer (MS-SMBD 3.1.5.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolError {
    Malformed(WireError),
    /// A message arrived although the peer held no credit for it.
    NoCreditForReceive,
    /// A message larger than our receive buffers.
    MessageTooLarge(usize),
    /// The upper-layer message would exceed MaxFragmentedSize.
    FragmentedTooLarge(u64),
    /// RemainingDataLength did not shrink by DataLength.
    FragmentMismatch {
        expected: u32,
        got: u32,
    },
    /// A message without data that claims more data is coming.
    EmptyFragment,
    /// A message in a state that does not expect one.
    Unexpected,
    /// CreditsRequested of 0 (MS-SMBD 3.1.5.8).
    NoCreditsRequested,
}

/// A local API misuse: nothing changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageError {
    /// The connection is not (or no longer) established.
    NotEstablished,
    /// The message exceeds the peer's MaxFragmentedSize.
    MessageTooLarge { len: usize, max: u32 },
    /// `Connected` twice.
    AlreadyStarted,
}

/// Events into the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// The RDMA connection is established (the NDK connect/accept completed).
    Connected,
    /// A posted receive completed with these bytes.
    Received(&'a [u8]),
    /// The upper layer asks to send one message (an SMB2 message).
    Send(&'a [u8]),
    /// The RDMA connection was lost (the NDK disconnect event).
    PeerDisconnected,
    /// The upper layer closes the connection.
    Close,
}

/// Actions out of the machine, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Post a send of exactly these bytes.
    Send(Vec<u8>),
    /// Post this many more receive buffers of `max_receive_size` bytes.
    PostReceives(u16),
    /// A complete upper-layer message arrived.
    Deliver(Vec<u8>),
    /// Disconnect the RDMA connection (NdkDisconnect) and stop.
    Disconnect(DisconnectReason),
}

/// Keepalive progress (MS-SMBD 3.1.1.1 Connection.KeepaliveRequested).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keepalive {
    None,
    /// A keepalive should go out on the next message.
    Pending,
    /// Sent; the peer must answer by the deadline.
    Sent,
}

/// The data phase (MS-SMBD Connection.Role ESTABLISHED).
#[derive(Debug)]
struct Established {
    negotiated: Negotiated,
    send_credits: u16,
    send_credit_target: u16,
    /// Receives to keep posted: the peer's CreditsRequested, capped.
    receive_credit_target: u16,
    posted: u16,
    granted: u16,
    /// Upper-layer messages waiting for credits, already fragmented.
    send_queue: VecDeque<(DataTransferHeader, Vec<u8>)>,
    send_immediate: bool,
    keepalive: Keepalive,
    /// Idle timer (or, while a keepalive is out, its answer deadline).
    timer: Instant,
    /// Reassembly: bytes so far and what RemainingDataLength must be next.
    reassembly: Vec<u8>,
    expect_remaining: Option<u32>,
}

/// Connection states (MS-SMBD 3.1.1.1 Connection.Role).
#[derive(Debug)]
enum State {
    /// Created; the RDMA connection is not up yet.
    Idle,
    /// Client: request sent, waiting for the response. Server: waiting for
    /// the request. Either way until the deadline.
    Negotiating {
        deadline: Instant,
    },
    Established(Box<Established>),
    Closed(DisconnectReason),
}

/// One MS-SMBD connection.
#[derive(Debug)]
pub struct Connection {
    role: Role,
    config: Config,
    state: State,
    out: VecDeque<Output>,
}

impl Connection {
    pub fn new(role: Role, config: Config) -> Self {
        Connection {
            role,
            config,
            state: State::Idle,
            out: VecDeque::new(),
        }
    }

    pub fn is_established(&self) -> bool {
        matches!(self.state, State::Established(_))
    }

    /// Why it ended, once it has.
    pub fn closed(&self) -> Option<DisconnectReason> {
        match self.state {
            State::Closed(r) => Some(r),
            _ => None,
        }
    }

    pub fn negotiated(&self) -> Option<Negotiated> {
        match &self.state {
            State::Established(e) => Some(e.negotiated),
            _ => None,
        }
    }

    /// Send credits held (what the peer granted and we have not used).
    pub fn send_credits(&self) -> u16 {
        match &self.state {
            State::Established(e) => e.send_credits,
            _ => 0,
        }
    }

    /// Credits the peer holds on us (receives it knows are posted).
    pub fn granted_credits(&self) -> u16 {
        match &self.state {
            State::Established(e) => e.granted,
            _ => 0,
        }
    }

    /// Data Transfer messages queued for lack of credits.
    pub fn queued_sends(&self) -> usize {
        match &self.state {
            State::Established(e) => e.send_queue.len(),
            _ => 0,
        }
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// The next instant [`Connection::handle_timeout`] wants to run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.state {
            State::Negotiating { deadline } => Some(*deadline),
            State::Established(e) => Some(e.timer),
            _ => None,
        }
    }

    /// Runs the timers due at `now` (MS-SMBD 3.1.6).
    pub fn handle_timeout(&mut self, now: Instant) {
        match &mut self.state {
            State::Negotiating { deadline } if now >= *deadline => {
                self.fail(DisconnectReason::NegotiateTimeout);
            }
            State::Established(e) if now >= e.timer => match e.keepalive {
                // MS-SMBD 3.1.6.2: an idle connection asks the peer for a
                // response; an unanswered request ends it.
                Keepalive::None => {
                    e.keepalive = Keepalive::Pending;
                    e.send_immediate = true;
                    // If no credit lets it out now, wait a full answer
                    // period before judging the peer.
                    e.timer = now + self.config.keepalive_timeout;
                    self.flush(now);
                }
                Keepalive::Pending | Keepalive::Sent => {
                    self.fail(DisconnectReason::KeepaliveTimeout);
                }
            },
            _ => {}
        }
    }

    /// The transition function: one event at `now`.
    pub fn handle(&mut self, now: Instant, ev: Event<'_>) -> Result<(), UsageError> {
        match ev {
            Event::Connected => self.on_connected(now),
            Event::Received(b) => {
                self.on_received(now, b);
                Ok(())
            }
            Event::Send(msg) => self.on_send(now, msg),
            Event::PeerDisconnected => {
                if !matches!(self.state, State::Closed(_)) {
                    // The transport is already gone: nothing to disconnect.
                    self.state = State::Closed(DisconnectReason::PeerDisconnected);
                }
                Ok(())
            }
            Event::Close => {
                if !matches!(self.state, State::Closed(_)) {
                    self.fail(DisconnectReason::Local);
                }
                Ok(())
            }
        }
    }

    fn fail(&mut self, reason: DisconnectReason) {
        self.state = State::Closed(reason);
        self.out.push_back(Output::Disconnect(reason));
    }

    fn on_connected(&mut self, now: Instant) -> Result<(), UsageError> {
        if !matches!(self.state, State::Idle) {
            return Err(UsageError::AlreadyStarted);
        }
        // One receive for the peer's negotiate message, posted before our
        // own can provoke it (MS-SMBD 3.1.5.2 / 3.1.5.5).
        self.out.push_back(Output::PostReceives(1));
        if self.role == Role::Client {
            let req = NegotiateRequest {
                min_version: SMBD_VERSION_1,
                max_version: SMBD_VERSION_1,
                credits_requested: self.config.send_credit_target,
                preferred_send_size: self.config.preferred_send_size,
                max_receive_size: self.config.max_receive_size,
                max_fragmented_size: self.config.max_fragmented_size,
            };
            let mut b = vec![0u8; wire::NEGOTIATE_REQUEST_LEN];
            if req.encode(&mut b).is_ok() {
                self.out.push_back(Output::Send(b));
            }
        }
        self.state = State::Negotiating {
            deadline: now + self.config.negotiate_timeout,
        };
        Ok(())
    }

    fn on_received(&mut self, now: Instant, b: &[u8]) {
        match &self.state {
            State::Negotiating { .. } => match self.role {
                Role::Client => self.on_negotiate_response(now, b),
                Role::Server => self.on_negotiate_request(now, b),
            },
            State::Established(_) => self.on_data(now, b),
            // A completion racing with close carries nothing we need.
            State::Closed(_) => {}
            State::Idle => self.fail(DisconnectReason::Protocol(ProtocolError::Unexpected)),
        }
    }

    /// MS-SMBD 3.1.5.7: the client checks the response and enters the data
    /// phase with the server's grant as its send credits.
    fn on_negotiate_response(&mut self, now: Instant, b: &[u8]) {
        let r = match self.check_negotiate_response(b) {
            Ok(r) => r,
            Err(e) => return self.fail(DisconnectReason::NegotiateFailed(e)),
        };
        let negotiated = Negotiated {
            max_send_size: self.config.preferred_send_size.min(r.max_receive_size),
            max_fragmented_send_size: r.max_fragmented_size,
            max_read_write_size: r.max_read_write_size,
        };
        self.establish(now, negotiated, r.credits_granted, r.credits_requested);
    }

    fn check_negotiate_response(&self, b: &[u8]) -> Result<NegotiateResponse, NegotiateError> {
        let r = NegotiateResponse::parse(b).map_err(NegotiateError::Malformed)?;
        if r.status != 0 {
            return Err(NegotiateError::Status(r.status));
        }
        if r.negotiated_version != SMBD_VERSION_1
            || r.min_version > SMBD_VERSION_1
            || r.max_version < SMBD_VERSION_1
        {
            return Err(NegotiateError::Version {
                min: r.min_version,
                max: r.max_version,
                negotiated: r.negotiated_version,
            });
        }
        if r.credits_granted == 0 {
            return Err(NegotiateError::NoCreditsGranted);
        }
        if r.credits_requested == 0 {
            return Err(NegotiateError::NoCreditsRequested);
        }
        if r.max_receive_size < MIN_RECEIVE_SIZE {
            return Err(NegotiateError::MaxReceiveSizeTooSmall(r.max_receive_size));
        }
        if r.max_fragmented_size < MIN_FRAGMENTED_SIZE {
            return Err(NegotiateError::MaxFragmentedSizeTooSmall(
                r.max_fragmented_size,
            ));
        }
        if r.preferred_send_size > self.config.max_receive_size {
            return Err(NegotiateError::PreferredSendSizeTooLarge(
                r.preferred_send_size,
            ));
        }
        Ok(r)
    }

    /// MS-SMBD 3.1.5.6: the server answers the request, granting the
    /// receives it posts; its own send credits come with the client's first
    /// Data Transfer message.
    fn on_negotiate_request(&mut self, now: Instant, b: &[u8]) {
        let req = match NegotiateRequest::parse(b) {
            Ok(r) => r,
            Err(e) => {
                return self.fail(DisconnectReason::NegotiateFailed(
                    NegotiateError::Malformed(e),
                ));
            }
        };
        let check = if req.min_version > SMBD_VERSION_1 || req.max_version < SMBD_VERSION_1 {
            Err(NegotiateError::Version {
                min: req.min_version,
                max: req.max_version,
                negotiated: 0,
            })
        } else if req.credits_requested == 0 {
            Err(NegotiateError::NoCreditsRequested)
        } else if req.max_receive_size < MIN_RECEIVE_SIZE {
            Err(NegotiateError::MaxReceiveSizeTooSmall(req.max_receive_size))
        } else if req.max_fragmented_size < MIN_FRAGMENTED_SIZE {
            Err(NegotiateError::MaxFragmentedSizeTooSmall(
                req.max_fragmented_size,
            ))
        } else {
            Ok(())
        };
        let mut resp = NegotiateResponse {
            min_version: SMBD_VERSION_1,
            max_version: SMBD_VERSION_1,
            negotiated_version: SMBD_VERSION_1,
            credits_requested: self.config.send_credit_target,
            credits_granted: 0,
            status: 0,
            max_read_write_size: self.config.max_read_write_size,
            preferred_send_size: self.config.preferred_send_size.min(req.max_receive_size),
            max_receive_size: self.config.max_receive_size,
            max_fragmented_size: self.config.max_fragmented_size,
        };
        if let Err(e) = check {
            resp.status = STATUS_NOT_SUPPORTED;
            resp.negotiated_version = 0;
            let mut out = vec![0u8; wire::NEGOTIATE_RESPONSE_LEN];
            if resp.encode(&mut out).is_ok() {
                self.out.push_back(Output::Send(out));
            }
            return self.fail(DisconnectReason::NegotiateFailed(e));
        }
        let target = req.credits_requested.min(self.config.receive_credit_max);
        resp.credits_granted = target;
        // The receives must be posted before the response can be acted on.
        self.out.push_back(Output::PostReceives(target));
        let mut out = vec![0u8; wire::NEGOTIATE_RESPONSE_LEN];
        if resp.encode(&mut out).is_ok() {
            self.out.push_back(Output::Send(out));
        }
        let negotiated = Negotiated {
            max_send_size: resp.preferred_send_size,
            max_fragmented_send_size: req.max_fragmented_size,
            max_read_write_size: self.config.max_read_write_size,
        };
        self.establish(now, negotiated, 0, req.credits_requested);
        if let State::Established(e) = &mut self.state {
            e.posted = target;
            e.granted = target;
        }
    }

    fn establish(
        &mut self,
        now: Instant,
        negotiated: Negotiated,
        send_credits: u16,
        peer_credits_requested: u16,
    ) {
        let receive_credit_target = peer_credits_requested
            .min(self.config.receive_credit_max)
            .max(1);
        let mut e = Established {
            negotiated,
            send_credits,
            send_credit_target: self.config.send_credit_target,
            receive_credit_target,
            posted: 0,
            granted: 0,
            send_queue: VecDeque::new(),
            send_immediate: false,
            keepalive: Keepalive::None,
            timer: now + self.config.idle_timeout,
            reassembly: Vec::new(),
            expect_remaining: None,
        };
        if self.role == Role::Client {
            // The receives the first message will grant (MS-SMBD 3.1.5.7).
            e.posted = receive_credit_target;
            self.out
                .push_back(Output::PostReceives(receive_credit_target));
        }
        self.state = State::Established(Box::new(e));
    }

    /// MS-SMBD 3.1.5.8: a Data Transfer message arrived.
    fn on_data(&mut self, now: Instant, b: &[u8]) {
        let max_fragmented = self.config.max_fragmented_size;
        let max_receive = self.config.max_receive_size as usize;
        let State::Established(e) = &mut self.state else {
            return;
        };
        let res: Result<Option<Vec<u8>>, ProtocolError> = (|| {
            if b.len() > max_receive {
                return Err(ProtocolError::MessageTooLarge(b.len()));
            }
            let m = DataTransfer::parse(b).map_err(ProtocolError::Malformed)?;
            if e.granted == 0 || e.posted == 0 {
                return Err(ProtocolError::NoCreditForReceive);
            }
            if m.header.credits_requested == 0 {
                return Err(ProtocolError::NoCreditsRequested);
            }
            e.granted -= 1;
            e.posted -= 1;
            e.send_credits = e.send_credits.saturating_add(m.header.credits_granted);
            e.receive_credit_target = m
                .header
                .credits_requested
                .min(self.config.receive_credit_max)
                .max(1);
            if m.header.flags & FLAG_RESPONSE_REQUESTED != 0 {
                e.send_immediate = true;
            }
            // Any message from the peer answers a keepalive and restarts
            // the idle timer (MS-SMBD 3.1.5.8).
            e.keepalive = Keepalive::None;
            e.timer = now + self.config.idle_timeout;
            reassemble(e, &m, max_fragmented)
        })();
        match res {
            Err(p) => self.fail(DisconnectReason::Protocol(p)),
            Ok(delivered) => {
                // Repost what was consumed (and follow a raised target).
                if e.posted < e.receive_credit_target {
                    let n = e.receive_credit_target - e.posted;
                    e.posted += n;
                    self.out.push_back(Output::PostReceives(n));
                }
                // Grant back before the peer runs dry. A peer down to its
                // last credit may only spend it on a message that grants
                // (MS-SMBD 3.1.5.1), and it may have nothing to grant: left
                // alone, both sides would wait forever.
                let low = (e.receive_credit_target / 8).max(1);
                if e.granted <= low && e.posted > e.granted {
                    e.send_immediate = true;
                }
                if let Some(msg) = delivered {
                    self.out.push_back(Output::Deliver(msg));
                }
                self.flush(now);
            }
        }
    }

    /// Splits an upper-layer message into Data Transfer messages that fit
    /// the negotiated send size (MS-SMBD 3.1.4.1), then sends what credits
    /// allow.
    fn on_send(&mut self, now: Instant, msg: &[u8]) -> Result<(), UsageError> {
        let State::Established(e) = &mut self.state else {
            return Err(UsageError::NotEstablished);
        };
        let max = e.negotiated.max_fragmented_send_size;
        if msg.len() > max as usize || msg.is_empty() {
            return Err(UsageError::MessageTooLarge {
                len: msg.len(),
                max,
            });
        }
        let chunk =
            (e.negotiated.max_send_size as usize).saturating_sub(wire::DATA_TRANSFER_HEADER_LEN);
        let chunk = chunk.max(1);
        let mut left = msg.len();
        for piece in msg.chunks(chunk) {
            left -= piece.len();
            let h = DataTransferHeader {
                remaining_data_length: left as u32,
                ..DataTransferHeader::default()
            };
            e.send_queue.push_back((h, piece.to_vec()));
        }
        self.flush(now);
        Ok(())
    }

    /// MS-SMBD 3.1.5.1: sends queued messages while credits allow, never
    /// spending the last credit on a message that grants nothing.
    fn flush(&mut self, now: Instant) {
        let keepalive_timeout = self.config.keepalive_timeout;
        let State::Established(e) = &mut self.state else {
            return;
        };
        loop {
            if e.send_queue.is_empty() {
                if !e.send_immediate {
                    break;
                }
                e.send_queue
                    .push_back((DataTransferHeader::default(), Vec::new()));
            }
            if e.send_credits == 0 {
                break;
            }
            let grant = e.posted.saturating_sub(e.granted);
            if e.send_credits == 1 && grant == 0 {
                break;
            }
            let Some((mut h, data)) = e.send_queue.pop_front() else {
                break;
            };
            e.send_credits -= 1;
            e.granted += grant;
            h.credits_granted = grant;
            h.credits_requested = e.send_credit_target;
            h.flags = 0;
            if e.keepalive == Keepalive::Pending {
                h.flags = FLAG_RESPONSE_REQUESTED;
                e.keepalive = Keepalive::Sent;
                e.timer = now + keepalive_timeout;
            }
            let mut b = vec![0u8; wire::data_transfer_len(data.len())];
            if wire::encode_data_transfer(&h, &data, &mut b).is_ok() {
                self.out.push_back(Output::Send(b));
            }
            e.send_immediate = false;
        }
    }
}

/// Appends one fragment; returns the whole message once RemainingDataLength
/// reaches zero (MS-SMBD 3.1.5.8).
fn reassemble(
    e: &mut Established,
    m: &DataTransfer<'_>,
    max_fragmented: u32,
) -> Result<Option<Vec<u8>>, ProtocolError> {
    let len = m.data.len() as u32;
    let remaining = m.header.remaining_data_length;
    if m.data.is_empty() {
        // Credit and keepalive traffic; must not be part of a message.
        return if remaining != 0 {
            Err(ProtocolError::EmptyFragment)
        } else {
            Ok(None)
        };
    }
    match e.expect_remaining {
        None => {
            let total = u64::from(len) + u64::from(remaining);
            if total > u64::from(max_fragmented) {
                return Err(ProtocolError::FragmentedTooLarge(total));
            }
            e.reassembly.clear();
            e.reassembly.reserve(total as usize);
        }
        Some(expect) => {
            let want = expect
                .checked_sub(len)
                .ok_or(ProtocolError::FragmentMismatch {
                    expected: expect,
                    got: len,
                })?;
            if want != remaining {
                return Err(ProtocolError::FragmentMismatch {
                    expected: want,
                    got: remaining,
                });
            }
        }
    }
    e.reassembly.extend_from_slice(m.data);
    if remaining == 0 {
        e.expect_remaining = None;
        Ok(Some(std::mem::take(&mut e.reassembly)))
    } else {
        e.expect_remaining = Some(remaining);
        Ok(None)
    }
}

#[cfg(test)]
mod tests;
