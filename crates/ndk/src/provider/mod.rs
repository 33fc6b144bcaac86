//! The provider core behind one NDK adapter: its objects, their rules, and
//! the connection and disconnect semantics, over one software RoCEv2 NIC.
//!
//! Sans-IO and single-threaded: the shell holds its lock around every call,
//! feeds it datagrams and the time, sends what it produces, and after
//! releasing the lock makes the queued upcalls ([`Provider::poll_upcall`]),
//! reporting each one's return ([`Provider::upcall_done`]) so that closes
//! complete only when no callback of the object is queued or running
//! (ndk-semantics.md §3 rule 4). Every consumer call returns its NTSTATUS;
//! an asynchronous one returns STATUS_PENDING and completes through exactly
//! one queued upcall.
//!
//! # Decisions where the documentation is silent (ndk-semantics.md §10)
//! Each is tested by the consumer harness in the root package's tests/.
//! - §10.1 disconnect details: see [`crate::connector`].
//! - §10.2 a close never fails: STATUS_SUCCESS (closed, no callback) or
//!   STATUS_PENDING (CloseCompletion last).
//! - §10.8 a failed work completion satisfies every arm type, ERRORS and
//!   SOLICITED included (the engine's CQ; tests `arm_rules_*`).
//! - §10.9 a QP closed with requests outstanding completes each of them on
//!   its CQ with STATUS_CANCELLED, carrying the QP's QPContext although the
//!   QP is gone (see `Zombie`; test `qp_close_cancels_outstanding_work_once`).
//! - §10.10 completion statuses: [`wc_status`]; statuses of inline post
//!   failures: see the data-path comment below (tests `posting_errors_*`,
//!   `memory_work_request_errors`, `error_completions`).
//! - §10.11 completions of one queue come in posting order.
//! - §10.12 NDK_OP_FLAG_INLINE is accepted on NdkWrite.
//! - §10.13 a CQ that overflows while unarmed reports
//!   STATUS_BUFFER_OVERFLOW on its next arm; NdkGetCqResults returns
//!   nothing once it overflowed (test `cq_overflow_*`).
//! - §10.15 private data: MaxCallerData 56 bytes (IB CM REQ less the IP
//!   header), MaxCalleeData 148 (what both REP and REJ hold).
//! - §10.16 interrupt moderation is not supported: STATUS_NOT_SUPPORTED.
//!
//! Decisions of this provider beyond §10: a create naming a parent whose
//! close was requested is STATUS_INVALID_DEVICE_STATE; an object of another
//! adapter is STATUS_INVALID_PARAMETER; receives still queued in an SRQ
//! when it closes are released without a completion (its QPs, and so
//! their CQs' claim on them, are gone first); after NdkBind the MR stays an
//! antecedent of the MW until the MW closes, even if the window is
//! invalidated or bound elsewhere; an MR has one fast-register in flight at
//! a time (the engine stages one page list per MR), a second is
//! STATUS_INVALID_DEVICE_STATE.

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec;
use alloc::vec::Vec;
use core::net::{IpAddr, SocketAddr};

use ndkpi::*;
use roce::cm::{AcceptParams, CmEvent, ConnId, ConnectParams, ListenerId};
use roce::device::{Device, DeviceConfig, DeviceEvent, Transmit};
use roce::rc::{
    CqHandle, Event as RcEvent, Memory, MrHandle, MwHandle, Path, PdHandle, QpAttr, QpState,
    SrqHandle,
};
use roce::rng::SeededRng;
use roce::time::Instant;
use roce::wire::packet::udp_sport_from_flow_label;

use crate::connector::{Actions, CmAction, ConnectorState, Input, QpAction};
use crate::object::{CloseState, ObjectId, Table};
use crate::upcall::{Callback, Upcall, UpcallKind};

mod cq;
mod mr;
mod mw;
mod pd;
mod ports;
mod post;
mod qp;
mod shared_endpoint;
mod srq;
mod zombie;

use zombie::{Gone, Zombie};

pub use cq::{NdkCompletion, op_type, wc_status};
pub use mr::{MrKind, PAGE_SIZE};
pub use post::{NdkSge, SendData, gather_inline};
pub use qp::QpObject;

/// RNR timer code this responder sends (roce.md §3.6 table: 0.64 ms): short
/// enough that a sender waiting for a receive buffer resumes quickly.
const MIN_RNR_TIMER: u8 = 12;

/// A post to a full queue (ndk-semantics.md §5.2, §10.10).
pub use ndkpi::STATUS_NO_MORE_ENTRIES;

/// The most inline bytes a post can carry: the ABI layer gathers them into a
/// stack buffer of this size (ndk-semantics.md §5.4: copied during the
/// call), so NDK_ADAPTER_INFO.MaxInlineDataSize never exceeds it.
pub const MAX_INLINE_DATA: u32 = 512;

/// Limits the adapter reports in NDK_ADAPTER_INFO and enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_qp_depth: u32,
    pub max_cq_depth: u32,
    pub max_sge: u32,
    pub max_read_sge: u32,
    pub max_inline: u32,
    pub max_read_limit: u32,
    pub max_transfer: u32,
    pub max_registration: u64,
    /// MaxSrqDepth (0 would mean no SRQs).
    pub max_srq_depth: u32,
    /// Largest NdkInitializeFastRegisterMr page count (FRMRPageCount; at
    /// least 16, ndk-semantics.md §8); more is STATUS_IMPLEMENTATION_LIMIT.
    pub max_fr_pages: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_qp_depth: 4096,
            max_cq_depth: 65536,
            max_sge: 16,
            max_read_sge: 16,
            max_inline: 256,
            max_read_limit: 16,
            max_transfer: roce::rc::MAX_MESSAGE_LEN,
            max_registration: 1 << 40,
            max_srq_depth: 4096,
            max_fr_pages: 512,
        }
    }
}

impl Limits {
    /// The inline size QPs may ask for (MaxInlineDataSize).
    pub fn inline_cap(&self) -> u32 {
        self.max_inline
            .min(MAX_INLINE_DATA)
            .min(roce::rc::MAX_INLINE)
    }
}

/// Configuration of one adapter.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    /// The NIC.
    pub device: DeviceConfig,
    /// The adapter's IP addresses (listeners and connects must use one).
    pub addresses: Vec<IpAddr>,
    /// Path MTU in bytes (256 ... 4096) for connections this side starts.
    pub path_mtu: u32,
    /// The NDKPI version the adapter operates at.
    pub version: NDK_VERSION,
    /// Limits.
    pub limits: Limits,
}

/// The connector object.
#[derive(Debug)]
pub struct Connector {
    state: ConnectorState,
    conn: Option<ConnId>,
    qp: Option<ObjectId>,
    listener: Option<ObjectId>,
    /// The request that returned STATUS_PENDING, to complete once.
    pending: Option<Callback>,
    disconnect_event: Option<(Callback, bool)>,
    inbound_read_limit: u32,
    outbound_read_limit: u32,
    local: Option<SocketAddr>,
    remote: Option<SocketAddr>,
    /// The implicit endpoint's port reservation.
    port: Option<(IpAddr, u16)>,
    /// What NdkAccept asked for, sent when the state machine says so.
    accept: Option<StoredAccept>,
    /// Private data of an NdkReject.
    reject_data: ([u8; roce::cm::manager::MAX_REJ_PRIVATE_DATA], usize),
}

#[derive(Debug, Clone, Copy)]
struct StoredAccept {
    qpn: u32,
    /// The QP draws receives from an SRQ (the REP's SRQ bit).
    srq: bool,
    psn: u32,
    private: [u8; roce::cm::manager::MAX_REP_PRIVATE_DATA],
    len: usize,
}

impl Connector {
    /// The connector's state.
    pub const fn state(&self) -> ConnectorState {
        self.state
    }
    /// The CM connection behind it.
    pub const fn conn(&self) -> Option<ConnId> {
        self.conn
    }
    /// The listener that delivered it (passive connectors).
    pub const fn listener(&self) -> Option<ObjectId> {
        self.listener
    }
    /// The QP bound to it by NdkConnect or NdkAccept.
    pub const fn qp(&self) -> Option<ObjectId> {
        self.qp
    }
}

/// Every kind of NDK object.
#[derive(Debug)]
pub enum Object {
    Pd {
        pd: PdHandle,
    },
    Cq {
        cq: CqHandle,
        notify: Callback,
        /// A notification upcall is queued or running: the next one waits
        /// (ndk-semantics.md §4: serialized per CQ).
        notifying: bool,
        /// A notification that became due meanwhile.
        deferred: Option<NTSTATUS>,
    },
    Qp(Box<QpObject>),
    Mr {
        mr: Option<MrHandle>,
        pd: PdHandle,
        kind: MrKind,
    },
    Mw {
        mw: MwHandle,
    },
    Srq {
        srq: SrqHandle,
        notify: Callback,
        /// The depth the consumer asked for (NdkCreateSrq / NdkModifySrq):
        /// posts beyond it fail as a full queue.
        depth: u32,
        /// What the engine's queue holds (the depth at creation).
        capacity: u32,
        max_sge: u32,
    },
    Connector(Box<Connector>),
    Listener {
        cm: Option<ListenerId>,
        event: Callback,
        port: Option<(IpAddr, u16)>,
    },
    SharedEndpoint {
        addr: SocketAddr,
    },
}

/// The provider core of one adapter.
#[derive(Debug)]
pub struct Provider<M: Memory> {
    device: Device<M>,
    config: ProviderConfig,
    objects: Table<Object>,
    upcalls: VecDeque<Upcall>,
    by_qpn: BTreeMap<u32, ObjectId>,
    by_conn: BTreeMap<ConnId, ObjectId>,
    by_listener: BTreeMap<ListenerId, ObjectId>,
    cqs: Vec<(CqHandle, ObjectId)>,
    srqs: Vec<(SrqHandle, ObjectId)>,
    zombies: Vec<Zombie>,
    ports: BTreeMap<(IpAddr, u16), u32>,
    rng: SeededRng,
    now: Instant,
}

fn mtu_code(bytes: u32) -> u8 {
    match bytes {
        256 => 1,
        512 => 2,
        1024 => 3,
        2048 => 4,
        _ => 5,
    }
}

fn mtu_bytes(code: u8) -> u32 {
    match code {
        1 => 256,
        2 => 512,
        3 => 1024,
        4 => 2048,
        _ => 4096,
    }
}

impl<M: Memory> Provider<M> {
    /// An adapter over a NIC with memory `mem`.
    pub fn new(config: ProviderConfig, mem: M) -> Self {
        let seed = config.device.seed;
        Provider {
            device: Device::new(config.device.clone(), mem),
            config,
            objects: Table::default(),
            upcalls: VecDeque::new(),
            by_qpn: BTreeMap::new(),
            by_conn: BTreeMap::new(),
            by_listener: BTreeMap::new(),
            cqs: Vec::new(),
            srqs: Vec::new(),
            zombies: Vec::new(),
            ports: BTreeMap::new(),
            rng: SeededRng::new(seed ^ 0x0005_EED0_F9C7),
            now: Instant::ZERO,
        }
    }

    /// The NIC (for the shell's I/O and for tests).
    pub fn device(&mut self) -> &mut Device<M> {
        &mut self.device
    }

    /// The NIC, read-only.
    pub fn device_ref(&self) -> &Device<M> {
        &self.device
    }

    /// The configuration.
    pub fn config(&self) -> &ProviderConfig {
        &self.config
    }

    /// Number of live objects (for leak checks).
    pub fn object_count(&self) -> usize {
        self.objects.len()
    }

    /// Ids of every live object (for tests and teardown).
    pub fn object_ids(&self) -> Vec<ObjectId> {
        self.objects.ids().collect()
    }

    /// A connector's record.
    pub fn connector(&self, id: ObjectId) -> Option<&Connector> {
        match &self.objects.get(id)?.object {
            Object::Connector(c) => Some(c),
            _ => None,
        }
    }

    // ---- time and I/O ----

    /// A whole IP datagram arrived (raw mode).
    pub fn handle_ip(&mut self, now: Instant, datagram: &[u8]) {
        self.now = now;
        self.device.handle_ip(now, datagram);
        self.process_events();
    }

    /// A UDP payload arrived (UDP mode).
    pub fn handle_udp(&mut self, now: Instant, src: SocketAddr, dst: SocketAddr, payload: &[u8]) {
        self.now = now;
        self.device.handle_udp(now, src, dst, payload);
        self.process_events();
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        self.now = now;
        let t = self.device.poll_transmit(now, buf);
        self.process_events();
        t
    }

    /// When [`Self::handle_timeout`] must next run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.device.poll_timeout()
    }

    /// Runs the timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        self.device.handle_timeout(now);
        self.process_events();
    }

    // ---- upcalls ----

    /// The next consumer callback to make (after releasing the lock).
    pub fn poll_upcall(&mut self) -> Option<Upcall> {
        self.upcalls.pop_front()
    }

    /// An upcall from [`Self::poll_upcall`] has returned.
    pub fn upcall_done(&mut self, upcall: &Upcall) {
        let owner = upcall.owner;
        let Some(e) = self.objects.get_mut(owner) else {
            return;
        };
        e.upcalls = e.upcalls.saturating_sub(1);
        if let UpcallKind::CqNotify { .. } = upcall.kind {
            self.cq_notified(owner);
        }
        if matches!(upcall.kind, UpcallKind::Close) {
            self.finish_close(owner);
        } else {
            self.try_close(owner);
        }
    }

    fn queue(&mut self, owner: ObjectId, callback: Callback, kind: UpcallKind) {
        if !callback.is_some() {
            return;
        }
        if let Some(e) = self.objects.get_mut(owner) {
            e.upcalls += 1;
            self.upcalls.push_back(Upcall {
                owner,
                callback,
                kind,
            });
        }
    }

    // ---- events from the NIC ----

    fn process_events(&mut self) {
        let now = self.now;
        while let Some(event) = self.device.poll_event(now) {
            match event {
                DeviceEvent::Rc(RcEvent::CqNotify(cq)) => self.notify_cq(cq, STATUS_SUCCESS),
                DeviceEvent::Rc(RcEvent::CqError(cq)) => self.notify_cq(cq, STATUS_BUFFER_OVERFLOW),
                DeviceEvent::Rc(RcEvent::QpFatal { qpn, .. }) => {
                    if let Some(conn) = self.qp_connector(qpn) {
                        self.drive(conn, Input::QpFatal);
                    }
                }
                DeviceEvent::Rc(RcEvent::SrqLimit(srq)) => self.notify_srq(srq),
                DeviceEvent::Rc(_) => {}
                DeviceEvent::Cm(CmEvent::Request { conn, listener }) => {
                    self.incoming(conn, listener);
                }
                DeviceEvent::Cm(CmEvent::Conn { conn, event }) => {
                    use roce::cm::Event as E;
                    let Some(&id) = self.by_conn.get(&conn) else {
                        continue;
                    };
                    let input = match event {
                        E::Replied => Input::CmReplied,
                        E::Established => Input::CmEstablished,
                        E::Rejected => Input::CmRejected,
                        E::EstablishTimedOut => Input::CmTimedOut,
                        E::PeerDisconnected => Input::CmPeerDisconnected,
                        E::Disconnected { timed_out } => Input::CmDisconnected { timed_out },
                        E::Released => continue,
                    };
                    self.drive(id, input);
                }
            }
        }
    }

    // ---- object creation ----

    fn insert(&mut self, object: Object, antecedents: Vec<ObjectId>) -> ObjectId {
        for a in &antecedents {
            if let Some(e) = self.objects.get_mut(*a) {
                e.successors += 1;
            }
        }
        self.objects.insert(object, antecedents)
    }

    fn is_open(&self, id: ObjectId) -> bool {
        self.objects
            .get(id)
            .is_some_and(|e| e.close == CloseState::Open)
    }

    /// An open parent (or argument) object: a missing one is
    /// STATUS_INVALID_HANDLE, one whose close was requested
    /// STATUS_INVALID_DEVICE_STATE (ndk-semantics.md §3 rule 3 lets the
    /// provider police use after close; project decision for a create or
    /// post naming a closing object).
    fn open_object(&self, id: ObjectId) -> Result<&Object, NTSTATUS> {
        match self.objects.get(id) {
            None => Err(STATUS_INVALID_HANDLE),
            Some(e) if e.close != CloseState::Open => Err(STATUS_INVALID_DEVICE_STATE),
            Some(e) => Ok(&e.object),
        }
    }

    /// The time every call after this one happens at (the shell sets it
    /// from its clock before each consumer call).
    pub fn set_now(&mut self, now: Instant) {
        if now > self.now {
            self.now = now;
        }
    }

    /// NdkCreateConnector.
    pub fn create_connector(&mut self) -> ObjectId {
        self.insert(
            Object::Connector(Box::new(Connector {
                state: ConnectorState::Idle,
                conn: None,
                qp: None,
                listener: None,
                pending: None,
                disconnect_event: None,
                inbound_read_limit: 0,
                outbound_read_limit: 0,
                local: None,
                remote: None,
                port: None,
                accept: None,
                reject_data: ([0; roce::cm::manager::MAX_REJ_PRIVATE_DATA], 0),
            })),
            Vec::new(),
        )
    }

    /// NdkCreateListener.
    pub fn create_listener(&mut self, connect_event: Callback) -> ObjectId {
        self.insert(
            Object::Listener {
                cm: None,
                event: connect_event,
                port: None,
            },
            Vec::new(),
        )
    }

    // ---- listener ----

    /// NdkListen. Completes inline.
    pub fn listen(&mut self, listener: ObjectId, addr: SocketAddr) -> Result<SocketAddr, NTSTATUS> {
        if !self.is_open(listener) {
            return Err(STATUS_INVALID_HANDLE);
        }
        if !addr.ip().is_unspecified() && !self.is_local(addr.ip()) {
            return Err(STATUS_INVALID_ADDRESS);
        }
        match self.objects.get(listener).map(|e| &e.object) {
            Some(Object::Listener { cm: None, .. }) => {}
            _ => return Err(STATUS_INVALID_DEVICE_STATE),
        }
        let port = self.reserve_port(addr.ip(), addr.port())?;
        let bound = SocketAddr::new(addr.ip(), port);
        let cm = match self.device.cm().listen(bound) {
            Ok(l) => l,
            Err(_) => {
                self.release_port((addr.ip(), port));
                return Err(STATUS_SHARING_VIOLATION);
            }
        };
        if let Some(Object::Listener { cm: c, port: p, .. }) =
            self.objects.get_mut(listener).map(|e| &mut e.object)
        {
            *c = Some(cm);
            *p = Some((addr.ip(), port));
        }
        self.by_listener.insert(cm, listener);
        Ok(bound)
    }

    /// NdkControlConnectEvents.
    pub fn pause_listener(&mut self, listener: ObjectId, paused: bool) {
        if let Some(Object::Listener { cm: Some(cm), .. }) =
            self.objects.get(listener).map(|e| &e.object)
        {
            let cm = *cm;
            let _ = self.device.cm().pause_listener(cm, paused);
        }
    }

    fn incoming(&mut self, conn: ConnId, listener: ListenerId) {
        let Some(&lid) = self.by_listener.get(&listener) else {
            let _ = self.device.cm().reject(self.now, conn, &[]);
            self.device.cm().release(conn);
            return;
        };
        let (Some(event), true) = (
            match self.objects.get(lid).map(|e| &e.object) {
                Some(Object::Listener { event, .. }) => Some(*event),
                _ => None,
            },
            self.is_open(lid),
        ) else {
            let _ = self.device.cm().reject(self.now, conn, &[]);
            self.device.cm().release(conn);
            return;
        };
        let (local, remote) = match self.device.cm_ref().connection(conn) {
            Some(c) => (c.local(), c.remote()),
            None => return,
        };
        let id = self.insert(
            Object::Connector(Box::new(Connector {
                state: ConnectorState::Incoming,
                conn: Some(conn),
                qp: None,
                listener: Some(lid),
                pending: None,
                disconnect_event: None,
                inbound_read_limit: 0,
                outbound_read_limit: 0,
                local: Some(local),
                remote: Some(remote),
                port: None,
                accept: None,
                reject_data: ([0; roce::cm::manager::MAX_REJ_PRIVATE_DATA], 0),
            })),
            vec![lid],
        );
        self.by_conn.insert(conn, id);
        self.device.cm().note(self.now, conn, "connect event");
        self.queue(lid, event, UpcallKind::ConnectEvent { connector: id });
    }

    // ---- connector calls ----

    fn connector_mut(&mut self, id: ObjectId) -> Option<&mut Connector> {
        match &mut self.objects.get_mut(id)?.object {
            Object::Connector(c) => Some(c),
            _ => None,
        }
    }

    /// NdkConnect: returns STATUS_PENDING and completes through `done`, or
    /// fails inline.
    #[allow(clippy::too_many_arguments)]
    pub fn connect(
        &mut self,
        connector: ObjectId,
        qp: ObjectId,
        src: SocketAddr,
        dst: SocketAddr,
        inbound_read_limit: u32,
        outbound_read_limit: u32,
        private_data: &[u8],
        done: Callback,
    ) -> NTSTATUS {
        if src.is_ipv4() != dst.is_ipv4() || !self.is_local(src.ip()) {
            return STATUS_INVALID_ADDRESS;
        }
        if let Err(s) = self.check_connect(connector, qp, dst, private_data) {
            return s;
        }
        let port = match self.reserve_port(src.ip(), src.port()) {
            Ok(p) => p,
            Err(s) => return s,
        };
        let local = SocketAddr::new(src.ip(), port);
        let r = self.start_connect(
            connector,
            qp,
            None,
            local,
            dst,
            (inbound_read_limit, outbound_read_limit),
            private_data,
            done,
        );
        if r != STATUS_PENDING {
            self.release_port((src.ip(), port));
        }
        r
    }

    /// NdkConnectWithSharedEndpoint: as [`Self::connect`], from the shared
    /// endpoint's address; connections over one endpoint must go to
    /// different destinations (STATUS_ADDRESS_ALREADY_EXISTS otherwise).
    #[allow(clippy::too_many_arguments)]
    pub fn connect_with_shared_endpoint(
        &mut self,
        connector: ObjectId,
        qp: ObjectId,
        endpoint: ObjectId,
        dst: SocketAddr,
        inbound_read_limit: u32,
        outbound_read_limit: u32,
        private_data: &[u8],
        done: Callback,
    ) -> NTSTATUS {
        let local = match self.objects.get(endpoint).map(|e| (&e.object, e.close)) {
            Some((Object::SharedEndpoint { addr }, CloseState::Open)) => *addr,
            _ => return STATUS_INVALID_HANDLE,
        };
        if local.is_ipv4() != dst.is_ipv4() {
            return STATUS_INVALID_ADDRESS;
        }
        if let Err(s) = self.check_connect(connector, qp, dst, private_data) {
            return s;
        }
        let taken = self.objects.ids().any(|id| {
            self.connector(id).is_some_and(|c| {
                c.local == Some(local) && c.remote == Some(dst) && c.state != ConnectorState::Idle
            })
        });
        if taken {
            return STATUS_ADDRESS_ALREADY_EXISTS;
        }
        let key = (local.ip(), local.port());
        // The endpoint's reservation gains a reference per connector
        // (ndk-semantics.md §2.5).
        if let Some(n) = self.ports.get_mut(&key) {
            *n += 1;
        }
        let r = self.start_connect(
            connector,
            qp,
            Some(endpoint),
            local,
            dst,
            (inbound_read_limit, outbound_read_limit),
            private_data,
            done,
        );
        if r != STATUS_PENDING {
            self.release_port(key);
        }
        r
    }

    fn check_connect(
        &self,
        connector: ObjectId,
        qp: ObjectId,
        dst: SocketAddr,
        private_data: &[u8],
    ) -> Result<(), NTSTATUS> {
        if !self.is_open(connector) || !self.is_open(qp) {
            return Err(STATUS_INVALID_HANDLE);
        }
        if dst.ip().is_unspecified() || dst.port() == 0 {
            return Err(STATUS_INVALID_ADDRESS);
        }
        if private_data.len() > roce::cm::manager::MAX_REQ_PRIVATE_DATA {
            return Err(STATUS_INVALID_PARAMETER);
        }
        match self.objects.get(qp).map(|e| &e.object) {
            Some(Object::Qp(q)) if q.connector.is_none() => {}
            _ => return Err(STATUS_INVALID_DEVICE_STATE),
        }
        if self.connector(connector).map(|c| c.state) != Some(ConnectorState::Idle) {
            return Err(STATUS_CONNECTION_INVALID);
        }
        Ok(())
    }

    /// Sends the REQ and binds QP, connector and (shared) endpoint.
    #[allow(clippy::too_many_arguments)]
    fn start_connect(
        &mut self,
        connector: ObjectId,
        qp: ObjectId,
        endpoint: Option<ObjectId>,
        local: SocketAddr,
        dst: SocketAddr,
        (inbound_read_limit, outbound_read_limit): (u32, u32),
        private_data: &[u8],
        done: Callback,
    ) -> NTSTATUS {
        let Some(qpn) = (match self.objects.get(qp).map(|e| &e.object) {
            Some(Object::Qp(q)) => Some(q.qpn),
            _ => None,
        }) else {
            return STATUS_INVALID_HANDLE;
        };
        let max = self.config.limits.max_read_limit;
        let irl = inbound_read_limit.min(max);
        let orl = outbound_read_limit.min(max);
        let psn = self.rng.next_u24();
        let params = ConnectParams {
            local,
            remote: dst,
            local_qpn: qpn,
            starting_psn: psn,
            responder_resources: irl.min(255) as u8,
            initiator_depth: orl.min(255) as u8,
            path_mtu: mtu_code(self.config.path_mtu),
            srq: self.qp_obj(qp).is_some_and(|q| q.srq.is_some()),
            private_data,
        };
        let now = self.now;
        let Ok(conn) = self.device.cm().connect(now, &params) else {
            return STATUS_INVALID_PARAMETER;
        };
        self.by_conn.insert(conn, connector);
        if let Some(Object::Qp(q)) = self.objects.get_mut(qp).map(|e| &mut e.object) {
            q.connector = Some(connector);
        }
        // The QP (and the shared endpoint) are now the connector's
        // antecedents (ndk-semantics.md §3).
        for a in core::iter::once(qp).chain(endpoint) {
            if let Some(e) = self.objects.get_mut(a) {
                e.successors += 1;
            }
            if let Some(e) = self.objects.get_mut(connector) {
                e.antecedents.push(a);
            }
        }
        if let Some(c) = self.connector_mut(connector) {
            c.conn = Some(conn);
            c.qp = Some(qp);
            c.local = Some(local);
            c.remote = Some(dst);
            c.port = Some((local.ip(), local.port()));
            c.inbound_read_limit = irl;
            c.outbound_read_limit = orl;
        }
        self.drive_call(connector, Input::Connect, done)
    }

    /// NdkCompleteConnect(Ex): completes inline.
    pub fn complete_connect(
        &mut self,
        connector: ObjectId,
        disconnect_event: Callback,
        ex: bool,
    ) -> NTSTATUS {
        if let Some(c) = self.connector_mut(connector)
            && c.state == ConnectorState::Replied
        {
            c.disconnect_event = Some((disconnect_event, ex));
        }
        self.drive_call(connector, Input::CompleteConnect, Callback::NONE)
    }

    /// NdkAccept(Ex): returns STATUS_PENDING and completes through `done`.
    #[allow(clippy::too_many_arguments)]
    pub fn accept(
        &mut self,
        connector: ObjectId,
        qp: ObjectId,
        inbound_read_limit: u32,
        outbound_read_limit: u32,
        private_data: &[u8],
        disconnect_event: Callback,
        ex: bool,
        done: Callback,
    ) -> NTSTATUS {
        if !self.is_open(connector) || !self.is_open(qp) {
            return STATUS_INVALID_HANDLE;
        }
        if private_data.len() > roce::cm::manager::MAX_REP_PRIVATE_DATA {
            return STATUS_INVALID_PARAMETER;
        }
        let state = self.connector(connector).map(|c| c.state);
        if state != Some(ConnectorState::Incoming) {
            // Let the state machine answer (aborted peer, wrong state).
            return self.drive_call(connector, Input::Accept, done);
        }
        let (qpn, srq) = match self.objects.get(qp).map(|e| &e.object) {
            Some(Object::Qp(q)) if q.connector.is_none() => (q.qpn, q.srq.is_some()),
            _ => return STATUS_INVALID_DEVICE_STATE,
        };
        let Some(conn) = self.connector(connector).and_then(|c| c.conn) else {
            return STATUS_CONNECTION_INVALID;
        };
        let Some(peer) = self.device.cm_ref().connection(conn).map(|c| *c.peer()) else {
            return STATUS_CONNECTION_ABORTED;
        };
        let max = self.config.limits.max_read_limit;
        // Effective limits: ours, capped by the adapter and by the peer's
        // opposite limit (ndk-semantics.md §2.4).
        let irl = inbound_read_limit
            .min(max)
            .min(u32::from(peer.initiator_depth));
        let orl = outbound_read_limit
            .min(max)
            .min(u32::from(peer.responder_resources));
        let psn = self.rng.next_u24();
        if let Some(Object::Qp(q)) = self.objects.get_mut(qp).map(|e| &mut e.object) {
            q.connector = Some(connector);
        }
        if let Some(e) = self.objects.get_mut(qp) {
            e.successors += 1;
        }
        if let Some(e) = self.objects.get_mut(connector) {
            e.antecedents.push(qp);
        }
        if let Some(c) = self.connector_mut(connector) {
            c.qp = Some(qp);
            c.inbound_read_limit = irl;
            c.outbound_read_limit = orl;
            c.disconnect_event = Some((disconnect_event, ex));
        }
        let _ = conn;
        let mut private = [0u8; roce::cm::manager::MAX_REP_PRIVATE_DATA];
        if let Some(d) = private.get_mut(..private_data.len()) {
            d.copy_from_slice(private_data);
        }
        if let Some(c) = self.connector_mut(connector) {
            c.accept = Some(StoredAccept {
                qpn,
                srq,
                psn,
                private,
                len: private_data.len(),
            });
        }
        self.drive_call(connector, Input::Accept, done)
    }

    /// NdkReject: completes inline.
    pub fn reject(&mut self, connector: ObjectId, private_data: &[u8]) -> NTSTATUS {
        if private_data.len() > roce::cm::manager::MAX_REJ_PRIVATE_DATA {
            return STATUS_INVALID_PARAMETER;
        }
        if let Some(c) = self.connector_mut(connector) {
            c.reject_data.0 = [0; roce::cm::manager::MAX_REJ_PRIVATE_DATA];
            if let Some(d) = c.reject_data.0.get_mut(..private_data.len()) {
                d.copy_from_slice(private_data);
            }
            c.reject_data.1 = private_data.len();
        }
        self.drive_call(connector, Input::Reject, Callback::NONE)
    }

    /// NdkDisconnect: STATUS_SUCCESS or a failure inline, or
    /// STATUS_PENDING and one completion through `done` (ndk-semantics.md
    /// §0).
    pub fn disconnect(&mut self, connector: ObjectId, done: Callback) -> NTSTATUS {
        if !self.is_open(connector) {
            return STATUS_INVALID_HANDLE;
        }
        self.drive_call(connector, Input::Disconnect, done)
    }

    /// NdkGetConnectionData: effective read limits and the peer's private
    /// data (the full field: its size is the "required data size").
    pub fn connection_data(&self, connector: ObjectId) -> Option<(u32, u32, &[u8])> {
        let c = self.connector(connector)?;
        let conn = self.device.cm_ref().connection(c.conn?)?;
        let peer = conn.peer();
        let (irl, orl) = match c.state {
            // Active side after the REP: cap by the peer's answer.
            ConnectorState::Replied => (
                c.inbound_read_limit.min(u32::from(peer.initiator_depth)),
                c.outbound_read_limit
                    .min(u32::from(peer.responder_resources)),
            ),
            // Passive side before accepting: what the requester asked for.
            ConnectorState::Incoming => (
                u32::from(peer.initiator_depth).min(self.config.limits.max_read_limit),
                u32::from(peer.responder_resources).min(self.config.limits.max_read_limit),
            ),
            _ => (c.inbound_read_limit, c.outbound_read_limit),
        };
        Some((irl, orl, conn.peer_private_data()))
    }

    /// NdkGetLocalAddress / NdkGetPeerAddress of a connector.
    pub fn connector_addresses(&self, connector: ObjectId) -> Option<(SocketAddr, SocketAddr)> {
        let c = self.connector(connector)?;
        Some((c.local?, c.remote?))
    }

    fn drive_call(&mut self, connector: ObjectId, input: Input, done: Callback) -> NTSTATUS {
        if let Some(c) = self.connector_mut(connector)
            && c.pending.is_none()
        {
            c.pending = Some(done);
        }
        let status = self
            .drive(connector, input)
            .unwrap_or(STATUS_CONNECTION_INVALID);
        // Only a call that went pending keeps its callback.
        if status != STATUS_PENDING
            && let Some(c) = self.connector_mut(connector)
            && c.state.pending().is_none()
        {
            c.pending = None;
        }
        status
    }

    /// Feeds the connector state machine and carries out its actions in
    /// order: QP work, CM work, the completion, the disconnect event.
    fn drive(&mut self, connector: ObjectId, input: Input) -> Option<NTSTATUS> {
        let now = self.now;
        let c = self.connector_mut(connector)?;
        let (next, a): (ConnectorState, Actions) = c.state.on(input);
        c.state = next;
        let (conn, qp) = (c.conn, c.qp);
        if let Some(conn) = conn {
            self.device.cm().note(now, conn, input_note(input));
        }
        if let (Some(action), Some(qp)) = (a.qp, qp) {
            match action {
                QpAction::Ready => self.ready_qp(connector, qp, true, true),
                QpAction::ReadyToReceive => self.ready_qp(connector, qp, true, false),
                QpAction::ReadyToSend => self.ready_qp(connector, qp, false, true),
                QpAction::Flush => self.flush_qp(qp),
            }
            if let Some(conn) = conn {
                self.device.cm().note(
                    now,
                    conn,
                    match action {
                        QpAction::Ready => "QP to RTR and RTS",
                        QpAction::ReadyToReceive => "QP to RTR",
                        QpAction::ReadyToSend => "QP to RTS",
                        QpAction::Flush => "QP flushed",
                    },
                );
            }
        }
        if let (Some(action), Some(conn)) = (a.cm, conn) {
            let (accept, reject_data, irl, orl) = match self.connector(connector) {
                Some(c) => (
                    c.accept,
                    c.reject_data,
                    c.inbound_read_limit,
                    c.outbound_read_limit,
                ),
                None => return a.returns,
            };
            let cm = self.device.cm();
            let _ = match action {
                // The REQ went out when the connection was created.
                CmAction::Connect => Ok(()),
                CmAction::Accept => match accept {
                    Some(acc) => cm.accept(
                        now,
                        conn,
                        &AcceptParams {
                            local_qpn: acc.qpn,
                            starting_psn: acc.psn,
                            responder_resources: irl.min(255) as u8,
                            initiator_depth: orl.min(255) as u8,
                            srq: acc.srq,
                            private_data: acc.private.get(..acc.len).unwrap_or(&[]),
                        },
                    ),
                    None => Ok(()),
                },
                CmAction::Reject => {
                    cm.reject(now, conn, reject_data.0.get(..reject_data.1).unwrap_or(&[]))
                }
                CmAction::CompleteConnect => cm.complete_connect(now, conn),
                CmAction::Disconnect => cm.disconnect(now, conn),
                CmAction::Abort => cm.abort(now, conn),
            };
        }
        if let Some((_, status)) = a.complete {
            let cb = self.connector_mut(connector).and_then(|c| c.pending.take());
            if let Some(cb) = cb {
                self.queue(connector, cb, UpcallKind::Request { status });
            }
        }
        if a.disconnect_event {
            let ev = self.connector(connector).and_then(|c| c.disconnect_event);
            if let Some((cb, ex)) = ev {
                self.queue(connector, cb, UpcallKind::DisconnectEvent { ex, reason: 0 });
            }
        }
        self.process_events();
        self.try_close(connector);
        a.returns
    }

    /// RTR and/or RTS with the attributes the CM negotiated (roce.md §6).
    fn ready_qp(&mut self, connector: ObjectId, qp: ObjectId, to_rtr: bool, to_rts: bool) {
        let Some(qpn) = (match self.objects.get(qp).map(|e| &e.object) {
            Some(Object::Qp(q)) => Some(q.qpn),
            _ => None,
        }) else {
            return;
        };
        let Some(c) = self.connector(connector) else {
            return;
        };
        let (irl, orl) = (c.inbound_read_limit, c.outbound_read_limit);
        let accept_psn = c.accept.map(|a| a.psn);
        let Some(conn) = c.conn.and_then(|id| self.device.cm_ref().connection(id)) else {
            return;
        };
        let peer = *conn.peer();
        let active = conn.role() == roce::cm::Role::Active;
        let (irl, orl) = if active {
            (
                irl.min(u32::from(peer.initiator_depth)),
                orl.min(u32::from(peer.responder_resources)),
            )
        } else {
            (irl, orl)
        };
        let path = Path {
            local_ip: conn.local().ip(),
            remote_ip: conn.remote().ip(),
            udp_src_port: udp_sport_from_flow_label(conn.flow_label()),
            hop_limit: conn.hop_limit_and_class().0,
            traffic_class: conn.hop_limit_and_class().1,
        };
        let retry_cnt = if active {
            self.device.cm_ref().config().retry_count
        } else {
            peer.retry_count
        };
        let rtr = QpAttr {
            state: Some(QpState::Rtr),
            path_mtu: Some(mtu_bytes(conn.path_mtu())),
            dest_qpn: Some(peer.qpn),
            // Passive: the QP is readied before the REP that carries the
            // PSN goes out, so the PSN comes from the accept itself.
            rq_psn: Some(if active {
                conn.starting_psn()
            } else {
                accept_psn.unwrap_or(0)
            }),
            min_rnr_timer: Some(MIN_RNR_TIMER),
            max_dest_rd_atomic: Some(irl),
            path: Some(path),
            ..QpAttr::default()
        };
        let rts = QpAttr {
            state: Some(QpState::Rts),
            sq_psn: Some(peer.starting_psn),
            timeout: Some(conn.qp_ack_timeout()),
            retry_cnt: Some(retry_cnt & 7),
            rnr_retry: Some(peer.rnr_retry_count & 7),
            max_rd_atomic: Some(orl),
            ..QpAttr::default()
        };
        if let Some(c) = self.connector_mut(connector) {
            c.inbound_read_limit = irl;
            c.outbound_read_limit = orl;
        }
        let rc = self.device.rc();
        if to_rtr {
            let _ = rc.modify_qp(qpn, &rtr);
        }
        if to_rts {
            let _ = rc.modify_qp(qpn, &rts);
        }
    }

    // ---- close ----

    /// NdkCloseObject: STATUS_SUCCESS (closed now; `done` is not called) or
    /// STATUS_PENDING (`done` is the object's last upcall).
    pub fn close(&mut self, id: ObjectId, done: Callback) -> NTSTATUS {
        let Some(e) = self.objects.get_mut(id) else {
            return STATUS_INVALID_HANDLE;
        };
        if e.close != CloseState::Open {
            return STATUS_INVALID_DEVICE_STATE;
        }
        e.close = CloseState::Pending(done);
        // Start what the close needs (§3 rule 4): a listener refuses new
        // requests at once; a connector cancels or tears down.
        match &e.object {
            Object::Listener { cm: Some(cm), .. } => {
                let cm = *cm;
                let _ = self.device.cm().unlisten(cm);
                self.by_listener.remove(&cm);
            }
            Object::Connector(_) => {
                self.drive(id, Input::Close);
            }
            _ => {}
        }
        if self.can_close(id) {
            // Nothing to wait for: close inline, no callback.
            self.destroy(id);
            self.remove(id);
            return STATUS_SUCCESS;
        }
        STATUS_PENDING
    }

    fn can_close(&self, id: ObjectId) -> bool {
        let Some(e) = self.objects.get(id) else {
            return false;
        };
        let request_pending = match &e.object {
            Object::Connector(c) => c.state.pending().is_some(),
            _ => false,
        };
        e.successors == 0 && e.upcalls == 0 && !request_pending
    }

    /// Completes a pending close if nothing is left to wait for.
    fn try_close(&mut self, id: ObjectId) {
        let Some(CloseState::Pending(done)) = self.objects.get(id).map(|e| e.close) else {
            return;
        };
        if !self.can_close(id) {
            return;
        }
        self.destroy(id);
        if let Some(e) = self.objects.get_mut(id) {
            e.close = CloseState::Closing;
        }
        if done.is_some() {
            self.queue(id, done, UpcallKind::Close);
        } else {
            self.remove(id);
        }
    }

    /// The close completion returned: the object is gone.
    fn finish_close(&mut self, id: ObjectId) {
        if self
            .objects
            .get(id)
            .is_some_and(|e| e.upcalls == 0 && e.close == CloseState::Closing)
        {
            self.remove(id);
        }
    }

    /// Releases the NIC resources of an object being closed.
    fn destroy(&mut self, id: ObjectId) {
        let Some(e) = self.objects.get(id) else {
            return;
        };
        match &e.object {
            Object::Pd { pd } => {
                let pd = *pd;
                self.reap_zombies(Some(Gone::Pd(pd)));
                let _ = self.device.rc().dealloc_pd(pd);
            }
            Object::Cq { cq, .. } => {
                let cq = *cq;
                // Its entries go with it, so no zombie QP need wait for them.
                self.reap_zombies(Some(Gone::Cq(cq)));
                let _ = self.device.rc().destroy_cq(cq);
                self.cqs.retain(|(h, _)| *h != cq);
            }
            Object::Srq { srq, .. } => {
                // Receives still queued have no CQ to complete on: every QP
                // that drew from the SRQ (its successors) is closed, so they
                // are released without a completion (project decision; NDK
                // has no SRQ flush, ndk-semantics.md §3 rule 7).
                let srq = *srq;
                self.reap_zombies(Some(Gone::Srq(srq)));
                let _ = self.device.rc().destroy_srq(srq);
                self.srqs.retain(|(h, _)| *h != srq);
            }
            Object::Qp(_) => self.retire_qp(id),
            Object::Mr { mr: Some(mr), .. } => {
                let mr = *mr;
                let _ = self.device.rc().dereg_mr(mr);
            }
            Object::Mr { mr: None, .. } => {}
            Object::Mw { mw } => {
                let mw = *mw;
                let _ = self.device.rc().dealloc_mw(mw);
            }
            Object::Connector(c) => {
                let (conn, port) = (c.conn, c.port);
                if let Some(conn) = conn {
                    self.device.cm().release(conn);
                    self.by_conn.remove(&conn);
                }
                if let Some(p) = port {
                    self.release_port(p);
                }
            }
            Object::SharedEndpoint { addr } => {
                let key = (addr.ip(), addr.port());
                self.release_port(key);
            }
            Object::Listener { cm, port, .. } => {
                let (cm, port) = (*cm, *port);
                if let Some(cm) = cm {
                    let _ = self.device.cm().unlisten(cm);
                    self.by_listener.remove(&cm);
                }
                if let Some(p) = port {
                    self.release_port(p);
                }
            }
        }
        self.process_events();
    }

    /// Drops the entry and lets its antecedents' closes proceed.
    fn remove(&mut self, id: ObjectId) {
        let Some(e) = self.objects.remove(id) else {
            return;
        };
        for a in e.antecedents {
            if let Some(ae) = self.objects.get_mut(a) {
                ae.successors = ae.successors.saturating_sub(1);
            }
            if let Some(Object::Qp(q)) = self.objects.get_mut(a).map(|e| &mut e.object)
                && q.connector == Some(id)
            {
                q.connector = None;
            }
            self.try_close(a);
        }
    }
}

fn input_note(input: Input) -> &'static str {
    match input {
        Input::Connect => "NdkConnect",
        Input::CompleteConnect => "NdkCompleteConnect",
        Input::Accept => "NdkAccept",
        Input::Reject => "NdkReject",
        Input::Disconnect => "NdkDisconnect",
        Input::Close => "NdkCloseConnector",
        Input::CmReplied => "REP received",
        Input::CmEstablished => "established",
        Input::CmRejected => "REJ received",
        Input::CmTimedOut => "establishment timed out",
        Input::CmPeerDisconnected => "peer disconnected",
        Input::CmDisconnected { timed_out: false } => "disconnect done",
        Input::CmDisconnected { timed_out: true } => "disconnect timed out",
        Input::QpFatal => "QP transport failure",
    }
}
