//! The connection manager of one device: every connection's state machine,
//! the listeners, the CM MADs in and out, and the timers (IBA Vol 1 ch. 12; Linux drivers/infiniband/core/cm.c, Linux drivers/infiniband/core/cma.c).
//!
//! Sans-IO in the quinn-proto manner: the caller feeds received MADs
//! ([`CmManager::handle_mad`]), consumer requests (connect, accept, ...) and
//! the time; it takes out MADs to send ([`CmManager::poll_transmit`]),
//! events for the consumer ([`CmManager::poll_event`]) and the next deadline
//! ([`CmManager::poll_timeout`]). Every message is built as Linux rdma_cm
//! builds it, so a Linux peer sees the same REQ, REP, RTU, REJ, DREQ and
//! DREP it would see from another Linux host (the golden tests compare them
//! with the captures field by field).
//!
//! This is the control path: it may allocate (connection table, queues).

use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::vec::Vec;
use core::net::{IpAddr, Ipv6Addr, SocketAddr};
use core::time::Duration;

use crate::rng::SeededRng;
use crate::time::Instant;
use crate::wire::cm::{
    CmMad, CmMessage, Opaque, PathRepr, RejectReason, TargetMessage, TransportType, drep, dreq,
    mra, rej, rep, req, rtu,
};
use crate::wire::{Error as WireError, cma};

use super::state::{
    Actions, Event, Input, InvalidState, MraOf, Outgoing, RejectWhy, Retries, State, Timer,
    TimerKind,
};
use super::timeline::{Entry, Timeline};
use super::timers::{CmConfig, ack_timeout, cm_time};

mod receive;
mod send;

/// Size of a MAD on the wire.
pub const MAD_LEN: usize = 256;
/// User private data a REQ can carry after the rdma_cm header (92 - 36).
pub const MAX_REQ_PRIVATE_DATA: usize = req::PRIVATE_DATA_LEN - cma::HEADER_LEN;
/// User private data a REP can carry.
pub const MAX_REP_PRIVATE_DATA: usize = rep::PRIVATE_DATA_LEN;
/// User private data a REJ can carry.
pub const MAX_REJ_PRIVATE_DATA: usize = rej::PRIVATE_DATA_LEN;

/// Names one connection for as long as the manager keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId {
    slot: u32,
    generation: u32,
}

/// Names one listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ListenerId(u32);

/// Why a consumer request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmError {
    /// No such connection or listener (closed or never existed).
    NotFound,
    /// The request is not valid in the connection's state.
    InvalidState,
    /// Private data longer than the message can carry.
    PrivateDataTooLong,
    /// A parameter is out of range (QPN, MTU, address family mismatch).
    InvalidParameter,
    /// The address is already in use by another listener.
    AddressInUse,
}

impl From<InvalidState> for CmError {
    fn from(_: InvalidState) -> Self {
        CmError::InvalidState
    }
}

/// An event for the consumer of the connection manager.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmEvent {
    /// A REQ matched a listener: a new passive connection waits for accept
    /// or reject.
    Request {
        /// The new connection.
        conn: ConnId,
        /// The listener whose service ID the REQ named.
        listener: ListenerId,
    },
    /// A state-machine event of a connection.
    Conn {
        /// The connection.
        conn: ConnId,
        /// What happened to it.
        event: Event,
    },
}

/// Which end of the connection this side is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Sent the REQ.
    Active,
    /// Received the REQ.
    Passive,
}

/// What the consumer supplies to connect.
#[derive(Debug, Clone, Copy)]
pub struct ConnectParams<'a> {
    /// Local IP and rdma_cm port.
    pub local: SocketAddr,
    /// Remote IP and rdma_cm port (the service the peer listens on).
    pub remote: SocketAddr,
    /// The local RC QP.
    pub local_qpn: u32,
    /// The PSN the peer's send queue starts at (this QP's expected PSN).
    pub starting_psn: u32,
    /// Incoming RDMA reads this side allows at once (inbound read limit).
    pub responder_resources: u8,
    /// Outgoing RDMA reads this side wants at once (outbound read limit).
    pub initiator_depth: u8,
    /// Path MTU code (1 = 256 ... 5 = 4096).
    pub path_mtu: u8,
    /// The QP takes receives from a shared receive queue.
    pub srq: bool,
    /// Consumer private data, at most [`MAX_REQ_PRIVATE_DATA`] bytes.
    pub private_data: &'a [u8],
}

/// What the consumer supplies to accept.
#[derive(Debug, Clone, Copy)]
pub struct AcceptParams<'a> {
    /// The local RC QP.
    pub local_qpn: u32,
    /// The PSN the peer's send queue starts at.
    pub starting_psn: u32,
    /// Incoming RDMA reads this side allows at once.
    pub responder_resources: u8,
    /// Outgoing RDMA reads this side wants at once.
    pub initiator_depth: u8,
    /// The QP takes receives from a shared receive queue.
    pub srq: bool,
    /// Consumer private data, at most [`MAX_REP_PRIVATE_DATA`] bytes.
    pub private_data: &'a [u8],
}

/// What the peer told us about its end of the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PeerParams {
    /// The peer's QP.
    pub qpn: u32,
    /// The PSN the peer's receive side expects first (our send queue starts
    /// here).
    pub starting_psn: u32,
    /// The peer's responder resources (its inbound read limit).
    pub responder_resources: u8,
    /// The peer's initiator depth (its outbound read limit).
    pub initiator_depth: u8,
    /// RNR retry count the peer asks our requester to use.
    pub rnr_retry_count: u8,
    /// The peer's retry count (from a REQ).
    pub retry_count: u8,
    /// The peer uses a shared receive queue.
    pub srq: bool,
    /// The peer's CA GUID.
    pub ca_guid: u64,
}

/// An outgoing CM MAD and where it goes. The device wraps it in a UD
/// packet to QP1 (IBA Vol 1 ch. 13 (MADs, GSI); Linux include/rdma/ib_mad.h).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutMad {
    /// Local IP to send from.
    pub src: IpAddr,
    /// Peer IP.
    pub dst: IpAddr,
    /// The 256-byte MAD.
    pub mad: [u8; MAD_LEN],
}

/// One connection's record.
#[derive(Debug, Clone)]
pub struct Connection {
    role: Role,
    state: State,
    local_comm_id: u32,
    remote_comm_id: u32,
    local: SocketAddr,
    remote: SocketAddr,
    /// Transaction ID of the messages this side starts (REQ, its DREQ).
    own_tid: u64,
    /// Transaction ID of the peer's REQ, echoed in REP, MRA and REJ.
    req_tid: u64,
    /// Transaction ID of the last DREQ received, echoed in DREP.
    dreq_tid: u64,
    local_qpn: u32,
    starting_psn: u32,
    responder_resources: u8,
    initiator_depth: u8,
    path_mtu: u8,
    srq: bool,
    flow_label: u32,
    hop_limit: u8,
    traffic_class: u8,
    /// Local ACK timeout for the QP (5-bit code).
    qp_ack_timeout: u8,
    /// The peer's REQ local CM response timeout (passive) or ours (active).
    response_timeout: u8,
    mra_service_timeout: u8,
    retries: Retries,
    peer: PeerParams,
    peer_private: [u8; MAX_REP_PRIVATE_DATA],
    peer_private_len: usize,
    reject_reason: Option<RejectReason>,
    /// Private data of this side's REQ / REP / REJ, kept for retransmission.
    own_private: [u8; MAX_REP_PRIVATE_DATA],
    own_private_len: usize,
    timer: Option<(Instant, TimerKind)>,
    listener: Option<ListenerId>,
    released: bool,
    timeline: Timeline,
}

impl Connection {
    /// Active or passive.
    pub const fn role(&self) -> Role {
        self.role
    }
    /// The state machine's state.
    pub const fn state(&self) -> State {
        self.state
    }
    /// Local IP and rdma_cm port.
    pub const fn local(&self) -> SocketAddr {
        self.local
    }
    /// Remote IP and rdma_cm port.
    pub const fn remote(&self) -> SocketAddr {
        self.remote
    }
    /// This side's communication ID.
    pub const fn local_comm_id(&self) -> u32 {
        self.local_comm_id
    }
    /// The peer's communication ID (0 until known).
    pub const fn remote_comm_id(&self) -> u32 {
        self.remote_comm_id
    }
    /// The local QP (0 on a passive connection before accept).
    pub const fn local_qpn(&self) -> u32 {
        self.local_qpn
    }
    /// The PSN this side's receive queue expects first.
    pub const fn starting_psn(&self) -> u32 {
        self.starting_psn
    }
    /// This side's responder resources and initiator depth as sent.
    pub const fn read_limits(&self) -> (u8, u8) {
        (self.responder_resources, self.initiator_depth)
    }
    /// Path MTU code of the connection.
    pub const fn path_mtu(&self) -> u8 {
        self.path_mtu
    }
    /// The RoCE flow label of the connection; both sides derive their UDP
    /// source port from it (IBA Annex A17 (RoCEv2 encapsulation); Linux rxe_net.c).
    pub const fn flow_label(&self) -> u32 {
        self.flow_label
    }
    /// Hop limit and traffic class for the QP's packets.
    pub const fn hop_limit_and_class(&self) -> (u8, u8) {
        (self.hop_limit, self.traffic_class)
    }
    /// Local ACK timeout code for the QP (IBA Vol 1 ch. 12 (CM timeouts); Linux cm.c).
    pub const fn qp_ack_timeout(&self) -> u8 {
        self.qp_ack_timeout
    }
    /// What the peer said about its end (valid once its REQ or REP arrived).
    pub const fn peer(&self) -> &PeerParams {
        &self.peer
    }
    /// The peer's private data: REQ user data after the rdma_cm header
    /// (passive), REP data (active), or REJ data after a reject.
    pub fn peer_private_data(&self) -> &[u8] {
        self.peer_private
            .get(..self.peer_private_len)
            .unwrap_or(&[])
    }
    /// The reason of the REJ the peer sent, if it rejected.
    pub const fn reject_reason(&self) -> Option<RejectReason> {
        self.reject_reason
    }
    /// The listener a passive connection came through.
    pub const fn listener(&self) -> Option<ListenerId> {
        self.listener
    }
    /// What happened to the connection, with times.
    pub const fn timeline(&self) -> &Timeline {
        &self.timeline
    }
}

#[derive(Debug, Clone)]
struct Listener {
    addr: SocketAddr,
    paused: bool,
}

#[derive(Debug, Clone)]
struct Slot {
    generation: u32,
    conn: Option<Connection>,
}

/// The connection manager of one device.
#[derive(Debug)]
pub struct CmManager {
    config: CmConfig,
    ca_guid: u64,
    tid_high: u32,
    rng: SeededRng,
    slots: Vec<Slot>,
    free: Vec<u32>,
    by_comm_id: BTreeMap<u32, u32>,
    /// Passive connections by (peer IP, peer comm ID), to spot duplicate REQs.
    by_peer: BTreeMap<(IpAddr, u32), u32>,
    /// Connections by local QPN, for the first-packet shortcut (a QP is
    /// bound to at most one live connection).
    by_qpn: BTreeMap<u32, u32>,
    /// Connections by (peer CA GUID, peer QPN), for the stale-connection
    /// check: a QP is named by its CA and number, as ib_cm keys it, so a
    /// new instance of a peer (a new CA GUID) starting again at the same
    /// QPN is not taken for the old one (IBA Vol 1 ch. 12; Linux drivers/infiniband/core/cm.c).
    by_remote_qpn: BTreeMap<(u64, u32), u32>,
    timers: BTreeSet<(Instant, u32)>,
    listeners: BTreeMap<u32, Listener>,
    next_listener: u32,
    outbox: VecDeque<OutMad>,
    events: VecDeque<CmEvent>,
}

/// ib_mad puts the agent's id in the high half of a transaction ID and
/// ib_cm ORs the big-endian comm ID into the low half of a host-order
/// value, which on little-endian hosts byte-swaps it (the Linux rxe captures in crates/roce/tests/data). Doing
/// the same keeps our messages indistinguishable from Linux's.
fn tid_for(tid_high: u32, comm_id: u32) -> u64 {
    (u64::from(tid_high) << 32) | u64::from(comm_id.swap_bytes())
}

/// The GID of an IP address: IPv6 as is, IPv4 mapped (IBA Annex A17 (RoCEv2 encapsulation); Linux rxe_net.c).
pub fn gid_of(ip: IpAddr) -> Ipv6Addr {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

impl CmManager {
    /// A manager for a device whose CA GUID is `ca_guid` (the EUI-64 of its
    /// MAC, as rxe uses). `seed` decides comm IDs and transaction IDs.
    pub fn new(config: CmConfig, ca_guid: u64, seed: u64) -> Self {
        let mut rng = SeededRng::new(seed);
        // Linux agents number from 1 upwards; any value works (the CM
        // matches by comm ID), so take a small random one.
        let tid_high = rng.next_u32() & 0xFF;
        CmManager {
            config,
            ca_guid,
            tid_high,
            rng,
            slots: Vec::new(),
            free: Vec::new(),
            by_comm_id: BTreeMap::new(),
            by_peer: BTreeMap::new(),
            by_qpn: BTreeMap::new(),
            by_remote_qpn: BTreeMap::new(),
            timers: BTreeSet::new(),
            listeners: BTreeMap::new(),
            next_listener: 1,
            outbox: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// The configuration.
    pub const fn config(&self) -> &CmConfig {
        &self.config
    }

    /// A connection's record.
    pub fn connection(&self, id: ConnId) -> Option<&Connection> {
        let slot = self.slots.get(id.slot as usize)?;
        if slot.generation != id.generation {
            return None;
        }
        slot.conn.as_ref()
    }

    fn conn_mut(&mut self, id: ConnId) -> Option<&mut Connection> {
        let slot = self.slots.get_mut(id.slot as usize)?;
        if slot.generation != id.generation {
            return None;
        }
        slot.conn.as_mut()
    }

    fn id_of_slot(&self, slot: u32) -> Option<ConnId> {
        let s = self.slots.get(slot as usize)?;
        s.conn.as_ref()?;
        Some(ConnId {
            slot,
            generation: s.generation,
        })
    }

    /// Number of connections the manager keeps (any state).
    pub fn connection_count(&self) -> usize {
        self.slots.iter().filter(|s| s.conn.is_some()).count()
    }

    // ---- listeners ----

    /// Listens for REQs addressed to `addr` (an unspecified IP listens on
    /// every local address). rdma_cm's TCP port space carries the port
    /// (Linux drivers/infiniband/core/cma.c).
    pub fn listen(&mut self, addr: SocketAddr) -> Result<ListenerId, CmError> {
        let clash = self.listeners.values().any(|l| {
            l.addr.port() == addr.port()
                && l.addr.is_ipv4() == addr.is_ipv4()
                && (l.addr.ip() == addr.ip()
                    || l.addr.ip().is_unspecified()
                    || addr.ip().is_unspecified())
        });
        if clash {
            return Err(CmError::AddressInUse);
        }
        let id = self.next_listener;
        self.next_listener = self.next_listener.wrapping_add(1).max(1);
        self.listeners.insert(
            id,
            Listener {
                addr,
                paused: false,
            },
        );
        Ok(ListenerId(id))
    }

    /// While paused, REQs for the listener are refused as if nothing
    /// listened (NdkControlConnectEvents).
    pub fn pause_listener(&mut self, id: ListenerId, paused: bool) -> Result<(), CmError> {
        let l = self.listeners.get_mut(&id.0).ok_or(CmError::NotFound)?;
        l.paused = paused;
        Ok(())
    }

    /// Stops listening at once; connections already delivered stay.
    pub fn unlisten(&mut self, id: ListenerId) -> Result<(), CmError> {
        self.listeners
            .remove(&id.0)
            .map(|_| ())
            .ok_or(CmError::NotFound)
    }

    fn find_listener(&self, service_id: u64, dst: IpAddr) -> Option<ListenerId> {
        let (space, port) = cma::port_of_service_id(service_id)?;
        if space != cma::PortSpace::TCP {
            return None;
        }
        self.listeners
            .iter()
            .find(|(_, l)| {
                !l.paused
                    && l.addr.port() == port
                    && l.addr.is_ipv4() == dst.is_ipv4()
                    && (l.addr.ip().is_unspecified() || l.addr.ip() == dst)
            })
            .map(|(id, _)| ListenerId(*id))
    }

    // ---- connections ----

    fn new_comm_id(&mut self) -> u32 {
        loop {
            let id = self.rng.next_u32();
            if id != 0 && !self.by_comm_id.contains_key(&id) {
                return id;
            }
        }
    }

    fn insert(&mut self, conn: Connection) -> ConnId {
        let comm_id = conn.local_comm_id;
        let slot = match self.free.pop() {
            Some(slot) => {
                if let Some(s) = self.slots.get_mut(slot as usize) {
                    s.generation = s.generation.wrapping_add(1);
                    s.conn = Some(conn);
                }
                slot
            }
            None => {
                let slot = self.slots.len() as u32;
                self.slots.push(Slot {
                    generation: 0,
                    conn: Some(conn),
                });
                slot
            }
        };
        self.by_comm_id.insert(comm_id, slot);
        ConnId {
            slot,
            generation: self.slots.get(slot as usize).map_or(0, |s| s.generation),
        }
    }

    fn remove(&mut self, id: ConnId) {
        let Some(slot) = self.slots.get_mut(id.slot as usize) else {
            return;
        };
        if slot.generation != id.generation {
            return;
        }
        if let Some(conn) = slot.conn.take() {
            self.by_comm_id.remove(&conn.local_comm_id);
            if conn.role == Role::Passive {
                self.by_peer
                    .remove(&(conn.remote.ip(), conn.remote_comm_id));
            }
            if let Some((at, _)) = conn.timer {
                self.timers.remove(&(at, id.slot));
            }
            if self.by_qpn.get(&conn.local_qpn) == Some(&id.slot) {
                self.by_qpn.remove(&conn.local_qpn);
            }
            let remote = (conn.peer.ca_guid, conn.peer.qpn);
            if self.by_remote_qpn.get(&remote) == Some(&id.slot) {
                self.by_remote_qpn.remove(&remote);
            }
            self.free.push(id.slot);
        }
    }

    /// Starts an active connection: sends the REQ and waits for the reply
    /// ([`Event::Replied`], [`Event::Rejected`] or
    /// [`Event::EstablishTimedOut`]).
    pub fn connect(&mut self, now: Instant, p: &ConnectParams<'_>) -> Result<ConnId, CmError> {
        if p.private_data.len() > MAX_REQ_PRIVATE_DATA {
            return Err(CmError::PrivateDataTooLong);
        }
        if p.local.is_ipv4() != p.remote.is_ipv4()
            || p.local_qpn == 0
            || p.local_qpn > 0xFF_FFFF
            || !(1..=5).contains(&p.path_mtu)
        {
            return Err(CmError::InvalidParameter);
        }
        let local_comm_id = self.new_comm_id();
        let mut own_private = [0u8; MAX_REP_PRIVATE_DATA];
        if let Some(dst) = own_private.get_mut(..p.private_data.len()) {
            dst.copy_from_slice(p.private_data);
        }
        let conn = Connection {
            role: Role::Active,
            state: State::connecting(self.config.max_cm_retries),
            local_comm_id,
            remote_comm_id: 0,
            local: p.local,
            remote: p.remote,
            own_tid: tid_for(self.tid_high, local_comm_id),
            req_tid: 0,
            dreq_tid: 0,
            local_qpn: p.local_qpn,
            starting_psn: p.starting_psn & 0xFF_FFFF,
            responder_resources: p.responder_resources,
            initiator_depth: p.initiator_depth,
            path_mtu: p.path_mtu,
            srq: p.srq,
            flow_label: cma::roce_flow_label(p.local.port(), p.remote.port()),
            hop_limit: 64,
            traffic_class: 0,
            qp_ack_timeout: self.config.local_ack_timeout(),
            response_timeout: self.config.cm_response_timeout,
            mra_service_timeout: 0,
            retries: Retries {
                rep: 0,
                dreq: self.config.max_dreq_retries,
            },
            peer: PeerParams::default(),
            peer_private: [0; MAX_REP_PRIVATE_DATA],
            peer_private_len: 0,
            reject_reason: None,
            own_private,
            own_private_len: p.private_data.len(),
            timer: None,
            listener: None,
            released: false,
            timeline: Timeline::default(),
        };
        let id = self.insert(conn);
        self.by_qpn.insert(p.local_qpn, id.slot);
        self.carry_out(
            now,
            id,
            Actions {
                send: Some(Outgoing::Req),
                timer: Timer::Start(TimerKind::ReqResponse),
                event: None,
            },
        );
        Ok(id)
    }

    /// Accepts a passive connection: sends the REP and waits for the RTU
    /// ([`Event::Established`]).
    pub fn accept(
        &mut self,
        now: Instant,
        id: ConnId,
        p: &AcceptParams<'_>,
    ) -> Result<(), CmError> {
        if p.private_data.len() > MAX_REP_PRIVATE_DATA {
            return Err(CmError::PrivateDataTooLong);
        }
        if p.local_qpn == 0 || p.local_qpn > 0xFF_FFFF {
            return Err(CmError::InvalidParameter);
        }
        let conn = self.conn_mut(id).ok_or(CmError::NotFound)?;
        if !matches!(conn.state, State::ReqRcvd { .. }) {
            return Err(CmError::InvalidState);
        }
        conn.local_qpn = p.local_qpn;
        conn.starting_psn = p.starting_psn & 0xFF_FFFF;
        conn.responder_resources = p.responder_resources;
        conn.initiator_depth = p.initiator_depth;
        conn.srq = p.srq;
        conn.own_private = [0; MAX_REP_PRIVATE_DATA];
        if let Some(dst) = conn.own_private.get_mut(..p.private_data.len()) {
            dst.copy_from_slice(p.private_data);
        }
        conn.own_private_len = p.private_data.len();
        self.by_qpn.insert(p.local_qpn, id.slot);
        self.input(now, id, Input::Accept)
    }

    /// Refuses a passive request, or (active) the peer's reply, with a REJ
    /// carrying the consumer's private data.
    pub fn reject(&mut self, now: Instant, id: ConnId, private_data: &[u8]) -> Result<(), CmError> {
        if private_data.len() > MAX_REJ_PRIVATE_DATA {
            return Err(CmError::PrivateDataTooLong);
        }
        let conn = self.conn_mut(id).ok_or(CmError::NotFound)?;
        if !matches!(conn.state, State::ReqRcvd { .. } | State::RepRcvd { .. }) {
            return Err(CmError::InvalidState);
        }
        conn.own_private = [0; MAX_REP_PRIVATE_DATA];
        if let Some(dst) = conn.own_private.get_mut(..private_data.len()) {
            dst.copy_from_slice(private_data);
        }
        conn.own_private_len = private_data.len();
        self.input(now, id, Input::Reject)
    }

    /// Active side: completes the connection by sending the RTU.
    pub fn complete_connect(&mut self, now: Instant, id: ConnId) -> Result<(), CmError> {
        self.input(now, id, Input::CompleteConnect)
    }

    /// Starts a graceful disconnect (DREQ); [`Event::Disconnected`] follows.
    pub fn disconnect(&mut self, now: Instant, id: ConnId) -> Result<(), CmError> {
        self.input(now, id, Input::Disconnect)
    }

    /// Abandons a connection still being set up (REJ to the peer).
    pub fn abort(&mut self, now: Instant, id: ConnId) -> Result<(), CmError> {
        // The REJ of an abandoned connection carries no private data.
        if let Some(conn) = self.conn_mut(id) {
            conn.own_private_len = 0;
        }
        self.input(now, id, Input::Abort)
    }

    /// The QP `local_qpn` received its first packet (IBA communication
    /// established): a passive connection waiting for its RTU is
    /// established.
    pub fn comm_established(&mut self, now: Instant, local_qpn: u32) {
        let found = self
            .by_qpn
            .get(&local_qpn)
            .and_then(|&slot| self.id_of_slot(slot));
        if let Some(id) = found
            && self.connection(id).is_some_and(|c| {
                matches!(c.state, State::RepSent { .. } | State::MraRepRcvd { .. })
            })
        {
            let _ = self.input(now, id, Input::CommEstablished);
        }
    }

    /// The owner lets go of a connection: no more events, and the record
    /// goes once the connection is closed. One the owner left up is ended
    /// as ib_cm ends a destroyed cm_id, so the peer is not left waiting on
    /// its transport timeouts: an established connection with a DREQ (then
    /// time-wait), one still being set up with a REJ. A connection already
    /// disconnecting finishes as it would have.
    pub fn release(&mut self, now: Instant, id: ConnId) {
        let Some(conn) = self.conn_mut(id) else {
            return;
        };
        conn.released = true;
        match conn.state {
            State::Closed => {}
            State::Established => {
                let _ = self.input(now, id, Input::Disconnect);
            }
            // Refused (and so without effect) where no REJ is due.
            _ => {
                let _ = self.abort(now, id);
            }
        }
        // A REJ closes at once, with no event to remove the record on.
        if self.conn_mut(id).is_some_and(|c| c.state == State::Closed) {
            self.remove(id);
        }
    }

    /// Adds a note from a layer above to a connection's timeline.
    pub fn note(&mut self, now: Instant, id: ConnId, note: &'static str) {
        if let Some(conn) = self.conn_mut(id) {
            conn.timeline.record(now, Entry::Note(note));
        }
    }

    fn input(&mut self, now: Instant, id: ConnId, input: Input) -> Result<(), CmError> {
        let conn = self.conn_mut(id).ok_or(CmError::NotFound)?;
        let (next, actions) = conn.state.on(input, conn.retries)?;
        conn.timeline.record(now, Entry::Input(input));
        conn.state = next;
        self.carry_out(now, id, actions);
        Ok(())
    }

    /// Does what a transition asked: send, arm or stop the timer, report.
    fn carry_out(&mut self, now: Instant, id: ConnId, actions: Actions) {
        if let Some(send) = actions.send {
            self.send(now, id, send);
        }
        let timer = match actions.timer {
            Timer::Keep => None,
            Timer::Stop => Some(None),
            Timer::Start(kind) => Some(Some(kind)),
        };
        if let Some(kind) = timer {
            let duration =
                kind.and_then(|k| self.connection(id).map(|c| (k, self.timer_duration(c, k))));
            if let Some(conn) = self.conn_mut(id) {
                let old = conn.timer.take();
                conn.timer = duration.map(|(k, d)| (now + d, k));
                let new = conn.timer;
                if let Some((at, _)) = old {
                    self.timers.remove(&(at, id.slot));
                }
                if let Some((at, _)) = new {
                    self.timers.insert((at, id.slot));
                }
            }
        }
        if let Some(event) = actions.event
            && let Some(conn) = self.conn_mut(id)
        {
            conn.timeline.record(now, Entry::Event(event));
            let closed = conn.state == State::Closed;
            let released = conn.released;
            if !released {
                self.events.push_back(CmEvent::Conn { conn: id, event });
            }
            if closed && released {
                self.remove(id);
            }
        }
    }

    fn timer_duration(&self, conn: &Connection, kind: TimerKind) -> Duration {
        let c = &self.config;
        match kind {
            TimerKind::ReqResponse => c.active_timeout(c.cm_response_timeout),
            TimerKind::RepResponse => c.passive_timeout(conn.response_timeout),
            TimerKind::MraWait => cm_time(conn.mra_service_timeout) + cm_time(c.packet_life_time),
            // The passive side's DREQ wait is ours, not the requester's
            // advertised LocalCMResponseTimeout (up to 2^23 ms per try), so
            // a peer cannot stretch our NdkDisconnect (docs/disconnect.md).
            TimerKind::DreqResponse => match conn.role {
                Role::Active => c.active_timeout(c.cm_response_timeout),
                Role::Passive => c.passive_timeout(c.cm_response_timeout),
            },
            TimerKind::TimeWait => c.timewait(conn.qp_ack_timeout),
        }
    }

    // ---- timers ----

    /// When [`Self::handle_timeout`] must next run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.first().map(|(at, _)| *at)
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(&(at, slot)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.remove(&(at, slot));
            let Some(id) = self.id_of_slot(slot) else {
                continue;
            };
            if let Some(conn) = self.conn_mut(id) {
                if conn.timer.map(|(t, _)| t) != Some(at) {
                    continue;
                }
                conn.timer = None;
            }
            let _ = self.input(now, id, Input::Timeout);
        }
    }
}
