//! The provider core behind one NDK adapter: its objects, their rules, and
//! the connection and disconnect semantics, over one software RoCEv2 NIC.
//!
//! Sans-IO and single-threaded: the shell holds its lock around every call,
//! feeds it datagrams and the time, sends what it produces, and after
//! releasing the lock makes the queued upcalls ([`Provider::poll_upcall`]),
//! reporting each one's return ([`Provider::upcall_done`]) so that closes
//! complete only when no callback of the object is queued or running
//! (the NDKPI object lifetime requirements page rule 4). Every consumer call returns its NTSTATUS;
//! an asynchronous one returns STATUS_PENDING and completes through exactly
//! one queued upcall.
//!
//! # Decisions where the documentation is silent (project decisions where the NDKPI pages are silent)
//! Each is tested by the consumer harness in the root package's tests/.
//! - disconnect details: see [`connector`].
//! - a close never fails: STATUS_SUCCESS (closed, no callback) or
//!   STATUS_PENDING (CloseCompletion last).
//! - a failed work completion satisfies every arm type, ERRORS and
//!   SOLICITED included (the engine's CQ; tests `arm_rules_*`).
//! - a QP closed with requests outstanding completes each of them on
//!   its CQ with STATUS_CANCELLED, carrying the QP's QPContext although the
//!   QP is gone (see `Zombie`; test `qp_close_cancels_outstanding_work_once`).
//! - completion statuses: [`wc_status`]; statuses of inline post
//!   failures: see the `post` module (tests `posting_errors_*`,
//!   `memory_work_request_errors`, `error_completions`).
//! - completions of one queue come in posting order.
//! - NDK_OP_FLAG_INLINE is accepted on NdkWrite.
//! - a CQ that overflows while unarmed reports
//!   STATUS_BUFFER_OVERFLOW on its next arm; NdkGetCqResults returns
//!   nothing once it overflowed (test `cq_overflow_*`).
//! - private data: MaxCallerData 56 bytes (IB CM REQ less the IP
//!   header), MaxCalleeData 148 (what both REP and REJ hold).
//! - interrupt moderation is not supported: STATUS_NOT_SUPPORTED.
//!
//! Decisions of this provider beyond project decisions where the NDKPI pages are silent: a create naming a parent whose
//! close was requested is STATUS_INVALID_DEVICE_STATE; an object of another
//! adapter is STATUS_INVALID_PARAMETER; receives still queued in an SRQ
//! when it closes are released without a completion (its QPs, and so
//! their CQs' claim on them, are gone first); after NdkBind the MR stays an
//! antecedent of the MW until the MW closes, even if the window is
//! invalidated or bound elsewhere; an MR has one fast-register in flight at
//! a time (the engine stages one page list per MR), a second is
//! STATUS_INVALID_DEVICE_STATE.
//!
//! # Layout
//! The state every object shares lives here: the object table, the upcall
//! queue and the NIC. Each NDK object family adds its calls in a module of
//! its own: `adapter` (configuration, limits, time and datagrams), `pd`,
//! `cq`, `qp`, `srq`, `post` (the data path), `mr`, `mw`, `connector`,
//! `listener` and `shared_endpoint`; `ports` holds the local port
//! reservations, `zombie` the closed QPs whose completions are not yet
//! polled, and `close` the close rules every object follows.

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;
use core::net::{IpAddr, SocketAddr};

use ndkpi::*;
use roce::cm::{CmEvent, ConnId, ListenerId};
use roce::device::{Device, DeviceEvent};
use roce::rc::{
    CqHandle, Event as RcEvent, Memory, MrHandle, MwHandle, PdHandle, SrqHandle, WcStatus,
};
use roce::rng::SeededRng;
use roce::time::Instant;

use crate::object::{CloseState, ObjectId, Table};
use crate::upcall::{Callback, Upcall, UpcallKind};
use connector::Input;

mod adapter;
mod close;
pub mod connector;
mod cq;
mod listener;
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

pub use adapter::{Limits, MAX_INLINE_DATA, ProviderConfig};
pub use connector::Connector;
pub use cq::{NdkCompletion, op_type, wc_status};
pub use mr::{MrKind, PAGE_SIZE};
pub use post::{NdkSge, SendData, flags_valid, gather_inline};
pub use qp::QpObject;

/// A post to a full queue (the NDKPI work request posting requirements and deferred processing scheme pages, project decisions where the NDKPI pages are silent).
pub use ndkpi::STATUS_NO_MORE_ENTRIES;

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
        /// (the NDKPI completion handling requirements page: serialized per CQ).
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
    /// [`Provider::process_events`] is running further up the stack.
    processing_events: bool,
}

impl<M: Memory> Provider<M> {
    /// Adds an object; each antecedent gains a successor its close waits
    /// for.
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
    /// STATUS_INVALID_DEVICE_STATE (the NDKPI object lifetime requirements page rule 3 lets the
    /// provider police use after close; project decision for a create or
    /// post naming a closing object).
    fn open_object(&self, id: ObjectId) -> Result<&Object, NTSTATUS> {
        match self.objects.get(id) {
            None => Err(STATUS_INVALID_HANDLE),
            Some(e) if e.close != CloseState::Open => Err(STATUS_INVALID_DEVICE_STATE),
            Some(e) => Ok(&e.object),
        }
    }

    /// Queues an upcall for the shell to make; the object's close waits
    /// until it has returned.
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

    /// Hands each of the NIC's events to the object it concerns.
    ///
    /// Handling an event drives a connector, and the connector's actions
    /// (a CM message, a QP flush) queue further events; [`Self::drive`]
    /// ends by processing them. Called from inside this loop, that returns
    /// at once and this loop takes them in turn: the stack depth stays the
    /// same however many events one call produces (thousands of connects
    /// timing out in one timer tick nested one drive per connection and
    /// overflowed the stack).
    fn process_events(&mut self) {
        if self.processing_events {
            return;
        }
        self.processing_events = true;
        self.process_events_loop();
        self.processing_events = false;
    }

    fn process_events_loop(&mut self) {
        let now = self.now;
        while let Some(event) = self.device.poll_event(now) {
            match event {
                DeviceEvent::Rc(RcEvent::CqNotify(cq)) => self.notify_cq(cq, STATUS_SUCCESS),
                DeviceEvent::Rc(RcEvent::CqError(cq)) => self.notify_cq(cq, STATUS_BUFFER_OVERFLOW),
                DeviceEvent::Rc(RcEvent::QpFatal { qpn, status }) => {
                    // Only exhausted transport or RNR retries mean the peer
                    // is unreachable; after any other error the peer
                    // answered (a NAK), so the CM connection stays up
                    // (docs/disconnect.md).
                    let peer_gone =
                        matches!(status, WcStatus::RetryExcErr | WcStatus::RnrRetryExcErr);
                    if let Some(conn) = self.qp_connector(qpn) {
                        self.drive(conn, Input::QpFatal { peer_gone });
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
                        // A close that waits for the CM connection's end
                        // (the drive that released it may have looked
                        // before this event was taken).
                        E::Released => {
                            self.try_close(id);
                            continue;
                        }
                    };
                    self.drive(id, input);
                }
            }
        }
    }
}
