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
use roce::cm::{CmEvent, ConnId, ListenerId};
use roce::device::{Device, DeviceConfig, DeviceEvent, Transmit};
use roce::rc::{CqHandle, Event as RcEvent, Memory, MrHandle, MwHandle, PdHandle, SrqHandle};
use roce::rng::SeededRng;
use roce::time::Instant;

use crate::connector::Input;
use crate::object::{CloseState, ObjectId, Table};
use crate::upcall::{Callback, Upcall, UpcallKind};

mod connector;
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

pub use connector::Connector;
pub use cq::{NdkCompletion, op_type, wc_status};
pub use mr::{MrKind, PAGE_SIZE};
pub use post::{NdkSge, SendData, gather_inline};
pub use qp::QpObject;

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
            Object::Connector(Box::new(Connector::incoming(conn, lid, local, remote))),
            vec![lid],
        );
        self.by_conn.insert(conn, id);
        self.device.cm().note(self.now, conn, "connect event");
        self.queue(lid, event, UpcallKind::ConnectEvent { connector: id });
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
            Object::Connector(c) => c.state().pending().is_some(),
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
                let (conn, port) = (c.conn(), c.port);
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
