//! The RC transport engine: the queue pairs of the software NIC.
//!
//! Sans-IO in the manner of quinn-proto's `Connection` (docs/design.md): the
//! caller owns sockets and clocks. It feeds received RoCE packets to
//! [`Engine::handle_packet`], drains [`Engine::poll_transmit`] into
//! datagrams, runs [`Engine::handle_timeout`] at [`Engine::poll_timeout`],
//! and collects [`Event`]s from [`Engine::poll_event`]. The verbs the NDK
//! provider needs (PD, CQ, SRQ, QP, MR, MW, posting, polling, arming) are
//! methods on the same [`Engine`].
//!
//! Layout: [`psn`] (24-bit PSN arithmetic), [`qp_state`] (the IBA state
//! machine), `qp` (attributes and the QP), `wqe` (work requests and
//! queues), `requester`, `responder`, `completer` (the three transport
//! roles, IBA Vol 1 ch. 9 (RC transport); Linux rxe_req.c, rxe_resp.c, rxe_comp.c), `cq`, `srq`, [`mr`] (keys and access checks),
//! [`memory`] (the memory trait), `event`, `tx` (transmit scheduling),
//! `slab` (object tables).
//!
//! Rules kept throughout: no panic on any input; the data path (post,
//! poll, handle_packet, poll_transmit, timers) allocates nothing, since
//! every queue, buffer and ring is sized when its object is created; every
//! posted work request completes exactly once (success, error or flush),
//! except that modify-to-Reset and destroy discard as IBA says; no
//! randomness inside.

mod completer;
mod cq;
mod event;
pub mod memory;
pub mod mr;
pub mod psn;
mod qp;
pub mod qp_state;
mod requester;
mod responder;
mod slab;
mod srq;
mod timers;
mod tx;
mod wqe;

use core::fmt;
use core::net::IpAddr;

pub use cq::{Completion, NotifyType, WcOpcode, WcStatus};
pub use event::Event;
pub use memory::{ArenaMemory, Memory};
pub use mr::{Access, InvalidateTarget, MrHandle, MwHandle, PRIVILEGED_LKEY, Translation};
pub use psn::Psn;
pub use qp::{Attrs, MAX_INLINE, MAX_RD_ATOMIC, MAX_SGE, MAX_WR, Path, QpAttr, QpInit};
pub use qp_state::{IllegalTransition, QpState};
pub use tx::{MAX_PACKET_LEN, ROCE_UDP_PORT, RxInfo, TxInfo};
pub use wqe::{MAX_MESSAGE_LEN, Payload, SendFlags, SendOp, SendWr, Sge};

use cq::Cq;
use event::{EVENTS_PER_CQ, EVENTS_PER_QP, EVENTS_PER_SRQ, Events};
use mr::{FastRegParams, KeyTable};
use qp::{Ctx, Qp, send_opcode};
use requester::Produced;
use slab::Slab;
use srq::Srq;
use timers::TimerIndex;
use tx::TxRing;
use wqe::{SendWqe, WqeOp, total_len};

use crate::time::Instant;
use crate::wire::opcode::Transport;
use crate::wire::packet::PacketRepr;

/// Why a verb failed. Nothing changed and no completion was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Error {
    /// No such object (or a stale handle).
    InvalidHandle,
    /// An argument is out of range or inconsistent.
    InvalidArgument,
    /// Not allowed in the object's current state.
    InvalidState,
    /// A modify asked for a transition IBA does not allow.
    IllegalTransition(IllegalTransition),
    /// A transition needs an attribute that was never set.
    MissingAttribute,
    /// The queue is full.
    QueueFull,
    /// More SGEs than the queue allows.
    TooManySges,
    /// More inline bytes than the QP allows.
    InlineTooLong,
    /// A message longer than [`MAX_MESSAGE_LEN`].
    MessageTooLong,
    /// The object is in use (referenced, bound, or a registration pending).
    Busy,
    /// Remote access asked of an MR that cannot grant it.
    AccessDenied,
    /// Out of table space.
    NoResources,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::IllegalTransition(t) => t.fmt(f),
            other => fmt::Debug::fmt(other, f),
        }
    }
}

impl core::error::Error for Error {}

/// A protection domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PdHandle {
    pub(crate) index: u32,
    pub(crate) generation: u32,
}

/// A completion queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CqHandle {
    pub(crate) index: u32,
    pub(crate) generation: u32,
}

/// A shared receive queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SrqHandle {
    pub(crate) index: u32,
    pub(crate) generation: u32,
}

/// Low QPN bits that name a QP slot; the bits above carry the slot's epoch.
const QPN_SLOT_MASK: u32 = 0xFFFF;

/// Engine-wide settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EngineConfig {
    /// QPN of the first QP slot (rxe: 17, the Linux rxe captures in crates/roce/tests/data). A QP's number is
    /// `first_qpn + slot + (epoch << 16)`, the epoch advancing each time the
    /// slot is reused, so a peer's stale packets or CM retries for a
    /// destroyed QP do not land on its successor (IBA 12.9.8.3 asks that
    /// QPNs are not reused while old traffic may still be in flight).
    pub first_qpn: u32,
    /// Seed of the first key bytes (docs/design.md: randomness is passed in).
    pub key_seed: u32,
    /// Epoch of each slot's first QP: a restarted device seeded afresh
    /// starts its QPNs elsewhere than the dead one, so a peer's time-wait
    /// record of an old (CA GUID, QPN) does not match the new QP.
    pub qpn_epoch: u32,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            first_qpn: 17,
            key_seed: 0,
            qpn_epoch: 0,
        }
    }
}

#[derive(Debug, Default)]
struct Pd {
    refs: u32,
}

/// The RC transport engine of one device.
#[derive(Debug)]
pub struct Engine<M: Memory> {
    mem: M,
    config: EngineConfig,
    pds: Slab<Pd>,
    cqs: Slab<Cq>,
    srqs: Slab<Srq>,
    qps: Slab<Qp>,
    keys: KeyTable,
    events: Events,
    tx: TxRing,
    timers: TimerIndex,
}

impl<M: Memory> Engine<M> {
    /// An engine over `mem` with default settings.
    pub fn new(mem: M) -> Self {
        Self::with_config(mem, EngineConfig::default())
    }

    /// An engine over `mem`.
    pub fn with_config(mem: M, config: EngineConfig) -> Self {
        let mut events = Events::default();
        events.grow(4);
        Engine {
            mem,
            config,
            pds: Slab::default(),
            cqs: Slab::default(),
            srqs: Slab::default(),
            qps: Slab::default(),
            keys: KeyTable::new(config.key_seed),
            events,
            tx: TxRing::default(),
            timers: TimerIndex::default(),
        }
    }

    /// The memory.
    pub fn memory(&self) -> &M {
        &self.mem
    }

    /// The memory, mutably.
    pub fn memory_mut(&mut self) -> &mut M {
        &mut self.mem
    }

    fn parts(&mut self, now: Instant) -> (&mut Slab<Qp>, Ctx<'_, M>) {
        (
            &mut self.qps,
            Ctx {
                mem: &self.mem,
                keys: &mut self.keys,
                cqs: &mut self.cqs,
                srqs: &mut self.srqs,
                events: &mut self.events,
                now,
                tx_payload_crc: None,
                rx_icrc: None,
                rx_icrc_bad: false,
            },
        )
    }

    fn slot_of(&self, qpn: u32) -> Option<u32> {
        let slot = qpn.checked_sub(self.config.first_qpn)? & QPN_SLOT_MASK;
        self.qps.at(slot).filter(|q| q.qpn == qpn).map(|_| slot)
    }

    /// How many epochs of `QPN_SLOT_MASK + 1` slots fit in the 24-bit QPN
    /// space above `first_qpn`.
    fn qpn_epochs(&self) -> u32 {
        ((0x100_0000u32.saturating_sub(self.config.first_qpn)) >> 16).max(1)
    }

    fn pd_ref(&mut self, pd: PdHandle, delta: i32) -> Result<(), Error> {
        let p = self
            .pds
            .get_mut(pd.index, pd.generation)
            .ok_or(Error::InvalidHandle)?;
        p.refs = p.refs.saturating_add_signed(delta);
        Ok(())
    }

    fn pd_index_ref(&mut self, index: u32, delta: i32) {
        if let Some(p) = self.pds.at_mut(index) {
            p.refs = p.refs.saturating_add_signed(delta);
        }
    }

    // ---- protection domains ------------------------------------------

    /// A new protection domain.
    pub fn alloc_pd(&mut self) -> Result<PdHandle, Error> {
        let (index, generation) = self.pds.insert(Pd::default()).ok_or(Error::NoResources)?;
        Ok(PdHandle { index, generation })
    }

    /// Free a PD; `Busy` while QPs, SRQs, MRs or MWs use it.
    pub fn dealloc_pd(&mut self, pd: PdHandle) -> Result<(), Error> {
        match self.pds.get(pd.index, pd.generation) {
            None => Err(Error::InvalidHandle),
            Some(p) if p.refs > 0 => Err(Error::Busy),
            Some(_) => {
                self.pds.remove(pd.index, pd.generation);
                Ok(())
            }
        }
    }

    /// The privileged local key (NdkGetPrivilegedMemoryRegionToken): SGE
    /// addresses with it are logical addresses; it never grants remote
    /// access.
    pub const fn privileged_lkey(&self) -> u32 {
        PRIVILEGED_LKEY
    }

    // ---- completion queues -------------------------------------------

    /// A CQ of `depth` entries.
    pub fn create_cq(&mut self, depth: u32) -> Result<CqHandle, Error> {
        if depth == 0 || depth > 1 << 20 {
            return Err(Error::InvalidArgument);
        }
        let (index, generation) = self
            .cqs
            .insert(Cq::new(depth as usize))
            .ok_or(Error::NoResources)?;
        self.events.grow(EVENTS_PER_CQ);
        Ok(CqHandle { index, generation })
    }

    /// Destroy a CQ; `Busy` while QPs use it.
    pub fn destroy_cq(&mut self, cq: CqHandle) -> Result<(), Error> {
        match self.cqs.get(cq.index, cq.generation) {
            None => Err(Error::InvalidHandle),
            Some(c) if c.refs > 0 => Err(Error::Busy),
            Some(_) => {
                self.cqs.remove(cq.index, cq.generation);
                Ok(())
            }
        }
    }

    /// Resize a CQ, keeping its entries (fails if they would not fit).
    pub fn resize_cq(&mut self, cq: CqHandle, depth: u32) -> Result<(), Error> {
        if depth == 0 || depth > 1 << 20 {
            return Err(Error::InvalidArgument);
        }
        self.cqs
            .get_mut(cq.index, cq.generation)
            .ok_or(Error::InvalidHandle)?
            .resize(depth as usize)
    }

    /// Move up to `out.len()` completions into `out`, oldest first;
    /// returns how many (0 for an overflowed CQ).
    pub fn poll_cq(&mut self, cq: CqHandle, out: &mut [Completion]) -> usize {
        self.cqs
            .get_mut(cq.index, cq.generation)
            .map_or(0, |c| c.poll(out))
    }

    /// Completions waiting in a CQ.
    pub fn cq_len(&self, cq: CqHandle) -> usize {
        self.cqs.get(cq.index, cq.generation).map_or(0, Cq::len)
    }

    /// Arm a CQ (NdkArmCq): one [`Event::CqNotify`] when a completion of
    /// the kind arrives, at once if one arrived since the last
    /// notification; an unreported overflow reports now.
    pub fn arm_cq(&mut self, cq: CqHandle, t: NotifyType) -> Result<(), Error> {
        let c = self
            .cqs
            .get_mut(cq.index, cq.generation)
            .ok_or(Error::InvalidHandle)?;
        match c.arm(t) {
            Some(false) => self.events.push(Event::CqNotify(cq)),
            Some(true) => self.events.push(Event::CqError(cq)),
            None => {}
        }
        Ok(())
    }

    // ---- shared receive queues ---------------------------------------

    /// An SRQ in `pd`; `limit` > 0 arms the limit event.
    pub fn create_srq(
        &mut self,
        pd: PdHandle,
        depth: u32,
        max_sge: u32,
        limit: u32,
    ) -> Result<SrqHandle, Error> {
        if depth == 0 || depth > MAX_WR || max_sge > MAX_SGE {
            return Err(Error::InvalidArgument);
        }
        self.pd_ref(pd, 1)?;
        let Some((index, generation)) =
            self.srqs
                .insert(Srq::new(pd.index, depth as usize, max_sge as usize, limit))
        else {
            self.pd_ref(pd, -1)?;
            return Err(Error::NoResources);
        };
        self.events.grow(EVENTS_PER_SRQ);
        Ok(SrqHandle { index, generation })
    }

    /// Set an SRQ's limit (NdkModifySrq threshold): > 0 arms a one-shot
    /// event, which fires at once if fewer receives are queued already.
    pub fn modify_srq(&mut self, srq: SrqHandle, limit: u32) -> Result<(), Error> {
        let s = self
            .srqs
            .get_mut(srq.index, srq.generation)
            .ok_or(Error::InvalidHandle)?;
        if s.set_limit(limit) {
            self.events.push(Event::SrqLimit(srq));
        }
        Ok(())
    }

    /// Destroy an SRQ; `Busy` while QPs use it.
    pub fn destroy_srq(&mut self, srq: SrqHandle) -> Result<(), Error> {
        let s = self
            .srqs
            .get(srq.index, srq.generation)
            .ok_or(Error::InvalidHandle)?;
        if s.refs > 0 {
            return Err(Error::Busy);
        }
        let pd = s.pd;
        self.srqs.remove(srq.index, srq.generation);
        self.pd_index_ref(pd, -1);
        Ok(())
    }

    /// Post a receive to an SRQ.
    pub fn post_srq_recv(&mut self, srq: SrqHandle, wr_id: u64, sges: &[Sge]) -> Result<(), Error> {
        self.srqs
            .get_mut(srq.index, srq.generation)
            .ok_or(Error::InvalidHandle)?
            .post(wr_id, sges)
    }

    /// Receives queued in an SRQ.
    pub fn srq_len(&self, srq: SrqHandle) -> usize {
        self.srqs
            .get(srq.index, srq.generation)
            .map_or(0, |s| s.rq.len())
    }

    // ---- memory --------------------------------------------------------

    /// Register `length` bytes at virtual address `iova` (NdkRegisterMr).
    pub fn register_mr(
        &mut self,
        pd: PdHandle,
        iova: u64,
        length: u64,
        access: Access,
        tr: Translation<'_>,
    ) -> Result<MrHandle, Error> {
        self.pds
            .get(pd.index, pd.generation)
            .ok_or(Error::InvalidHandle)?;
        let h = self.keys.register_mr(pd.index, iova, length, access, tr)?;
        self.pd_index_ref(pd.index, 1);
        Ok(h)
    }

    /// An MR for fast-register work requests of up to `max_pages` pages
    /// (NdkCreateMr(FastRegister) + NdkInitializeFastRegisterMr).
    pub fn alloc_fast_reg_mr(
        &mut self,
        pd: PdHandle,
        max_pages: u32,
        remote_access: bool,
    ) -> Result<MrHandle, Error> {
        self.pds
            .get(pd.index, pd.generation)
            .ok_or(Error::InvalidHandle)?;
        let h = self
            .keys
            .alloc_fast_reg_mr(pd.index, max_pages, remote_access)?;
        self.pd_index_ref(pd.index, 1);
        Ok(h)
    }

    /// Deregister an MR (`Busy` while windows are bound to it).
    pub fn dereg_mr(&mut self, mr: MrHandle) -> Result<(), Error> {
        let pd = self.keys.mr_pd(mr).ok_or(Error::InvalidHandle)?;
        self.keys.dereg_mr(mr)?;
        self.pd_index_ref(pd, -1);
        Ok(())
    }

    /// A memory window in `pd`.
    pub fn alloc_mw(&mut self, pd: PdHandle) -> Result<MwHandle, Error> {
        self.pds
            .get(pd.index, pd.generation)
            .ok_or(Error::InvalidHandle)?;
        let h = self.keys.alloc_mw(pd.index)?;
        self.pd_index_ref(pd.index, 1);
        Ok(h)
    }

    /// Free a memory window.
    pub fn dealloc_mw(&mut self, mw: MwHandle) -> Result<(), Error> {
        let pd = self.keys.mw_pd(mw).ok_or(Error::InvalidHandle)?;
        self.keys.dealloc_mw(mw)?;
        self.pd_index_ref(pd, -1);
        Ok(())
    }

    /// An MR's key: local and remote key are the same value. After a
    /// fast-register is posted, the key that registration carries.
    pub fn mr_key(&self, mr: MrHandle) -> Option<u32> {
        self.keys.mr_key(mr)
    }

    /// An MW's remote key (after a bind is posted: the bind's key).
    pub fn mw_rkey(&self, mw: MwHandle) -> Option<u32> {
        self.keys.mw_key(mw)
    }

    // ---- queue pairs ---------------------------------------------------

    /// A QP in Reset; returns its QPN.
    pub fn create_qp(&mut self, init: &QpInit) -> Result<u32, Error> {
        let ok = (1..=MAX_WR).contains(&init.sq_depth)
            && (init.srq.is_some() || (1..=MAX_WR).contains(&init.rq_depth))
            && init.max_send_sge <= MAX_SGE
            && init.max_recv_sge <= MAX_SGE
            && init.max_inline <= MAX_INLINE;
        if !ok {
            return Err(Error::InvalidArgument);
        }
        self.pds
            .get(init.pd.index, init.pd.generation)
            .ok_or(Error::InvalidHandle)?;
        self.cqs
            .get(init.send_cq.index, init.send_cq.generation)
            .ok_or(Error::InvalidHandle)?;
        self.cqs
            .get(init.recv_cq.index, init.recv_cq.generation)
            .ok_or(Error::InvalidHandle)?;
        let recv_sge = match init.srq {
            Some(s) => {
                let srq = self
                    .srqs
                    .get(s.index, s.generation)
                    .ok_or(Error::InvalidHandle)?;
                if srq.pd != init.pd.index {
                    return Err(Error::InvalidArgument);
                }
                srq.rq.max_sge()
            }
            None => init.max_recv_sge as usize,
        };
        if u64::from(self.config.first_qpn) + u64::from(QPN_SLOT_MASK) > 0xFF_FFFF {
            return Err(Error::NoResources);
        }
        let qp = Qp::new(
            0,
            init.pd.index,
            init.send_cq.index,
            init.recv_cq.index,
            init.srq.map(|s| s.index),
            init,
            recv_sge,
        );
        let (slot, generation) = self.qps.insert(qp).ok_or(Error::NoResources)?;
        if slot > QPN_SLOT_MASK {
            // Only the low 16 bits of a QPN name the slot.
            self.qps.remove(slot, generation);
            return Err(Error::NoResources);
        }
        let epoch = generation
            .wrapping_sub(1)
            .wrapping_add(self.config.qpn_epoch)
            % self.qpn_epochs();
        let qpn = self.config.first_qpn + slot + (epoch << 16);
        if let Some(q) = self.qps.at_mut(slot) {
            q.qpn = qpn;
        }
        for cq in [init.send_cq, init.recv_cq] {
            if let Some(c) = self.cqs.get_mut(cq.index, cq.generation) {
                c.refs += 1;
            }
        }
        if let Some(s) = init.srq
            && let Some(srq) = self.srqs.get_mut(s.index, s.generation)
        {
            srq.refs += 1;
        }
        self.pd_index_ref(init.pd.index, 1);
        self.tx.grow_to(self.qps.capacity());
        self.timers.grow_to(self.qps.capacity());
        self.events.grow(EVENTS_PER_QP);
        Ok(qpn)
    }

    /// Destroy a QP. Outstanding work requests are discarded without
    /// completions (IBA destroy); move the QP to Error and drain its CQs
    /// first to have them flushed.
    pub fn destroy_qp(&mut self, qpn: u32) -> Result<(), Error> {
        let slot = self.slot_of(qpn).ok_or(Error::InvalidHandle)?;
        let generation = self.qps.generation_of(slot);
        let mut qp = self
            .qps
            .remove(slot, generation)
            .ok_or(Error::InvalidHandle)?;
        qp.reset(&mut self.keys);
        for cq in [qp.send_cq, qp.recv_cq] {
            if let Some(c) = self.cqs.at_mut(cq) {
                c.refs = c.refs.saturating_sub(1);
            }
        }
        if let Some(s) = qp.srq
            && let Some(srq) = self.srqs.at_mut(s)
        {
            srq.refs = srq.refs.saturating_sub(1);
        }
        self.pd_index_ref(qp.pd, -1);
        self.tx.remove(slot);
        self.timers.set(slot, None);
        Ok(())
    }

    /// A QP's state.
    pub fn qp_state(&self, qpn: u32) -> Option<QpState> {
        let slot = self.slot_of(qpn)?;
        self.qps.at(slot).map(Qp::state)
    }

    /// A QP's attributes.
    pub fn query_qp(&self, qpn: u32) -> Option<Attrs> {
        let slot = self.slot_of(qpn)?;
        self.qps.at(slot).map(|q| q.attrs)
    }

    /// Modify a QP (ib_modify_qp): attributes, and a state transition
    /// checked by [`QpState::transition`]. Init->Rtr needs a dest QPN and a
    /// path. Entering Error flushes every work request.
    pub fn modify_qp(&mut self, qpn: u32, attr: &QpAttr) -> Result<(), Error> {
        qp::validate(attr)?;
        let slot = self.slot_of(qpn).ok_or(Error::InvalidHandle)?;
        let (qps, mut ctx) = self.parts(Instant::ZERO);
        let qp = qps.at_mut(slot).ok_or(Error::InvalidHandle)?;
        let from = qp.attrs.state;
        let to = match attr.state {
            Some(s) => from.transition(s).map_err(Error::IllegalTransition)?,
            None => from,
        };
        if to == QpState::Reset {
            qp.reset(ctx.keys);
            self.after(Some(slot));
            return Ok(());
        }
        if from == QpState::Init
            && to == QpState::Rtr
            && (attr.dest_qpn.or(qp.attrs.dest_qpn).is_none()
                || attr.path.or(qp.attrs.path).is_none())
        {
            return Err(Error::MissingAttribute);
        }
        let a = &mut qp.attrs;
        if let Some(v) = attr.path_mtu {
            a.mtu = v;
        }
        if let Some(v) = attr.dest_qpn {
            a.dest_qpn = Some(v);
        }
        if let Some(v) = attr.timeout {
            a.timeout = v;
        }
        if let Some(v) = attr.retry_cnt {
            a.retry_cnt = v;
            qp.comp.retry_left = v;
        }
        if let Some(v) = attr.rnr_retry {
            a.rnr_retry = v;
            qp.comp.rnr_left = v;
        }
        if let Some(v) = attr.min_rnr_timer {
            a.min_rnr_timer = v;
        }
        if let Some(v) = attr.max_rd_atomic {
            a.max_rd_atomic = v;
        }
        if let Some(v) = attr.access {
            a.access = v;
        }
        if let Some(v) = attr.path {
            a.path = Some(v);
        }
        if let Some(v) = attr.max_dest_rd_atomic {
            qp.attrs.max_dest_rd_atomic = v;
            qp.resp.set_resources(v);
        }
        if let Some(v) = attr.rq_psn {
            qp.resp.epsn = Psn::new(v);
        }
        if let Some(v) = attr.sq_psn {
            qp.set_sq_psn(Psn::new(v));
        }
        if to == QpState::Error {
            qp.enter_error(&mut ctx, None);
        } else {
            qp.attrs.state = to;
        }
        if to == QpState::Rtr && from != QpState::Rtr {
            qp.resp.comm_est = false;
        }
        if to == QpState::Sqd && from != QpState::Sqd {
            qp.drain_pending = true;
        }
        qp.check_drained(&mut ctx);
        self.after(Some(slot));
        Ok(())
    }

    /// Post a send-queue work request (SEND, WRITE, READ, local invalidate,
    /// fast register, bind). An error means nothing was queued and no
    /// completion will come; on error deferred requests are handed on
    /// anyway (the NDKPI work request posting requirements page rule 2).
    pub fn post_send(&mut self, qpn: u32, wr: &SendWr<'_>) -> Result<(), Error> {
        let slot = self.slot_of(qpn).ok_or(Error::InvalidHandle)?;
        let r = self.post_send_inner(slot, wr);
        if r.is_err()
            && let Some(qp) = self.qps.at_mut(slot)
        {
            qp.sq.doorbell = qp.sq.tail;
        }
        self.after(Some(slot));
        r
    }

    fn post_send_inner(&mut self, slot: u32, wr: &SendWr<'_>) -> Result<(), Error> {
        let (qps, mut ctx) = self.parts(Instant::ZERO);
        let qp = qps.at_mut(slot).ok_or(Error::InvalidHandle)?;
        if !qp.state().can_post_send() {
            return Err(Error::InvalidState);
        }
        if qp.sq.is_full() {
            return Err(Error::QueueFull);
        }
        let flush = qp.flushes_posts();
        let inline = matches!(wr.payload, Payload::Inline(_));
        let data_op = matches!(
            wr.op,
            SendOp::Send
                | SendOp::SendWithImm(_)
                | SendOp::SendWithInv(_)
                | SendOp::Write { .. }
                | SendOp::WriteWithImm { .. }
        );
        if inline && !data_op {
            return Err(Error::InvalidArgument);
        }
        // Check the data before anything is staged.
        match wr.payload {
            Payload::Sges(s) => {
                total_len(s, qp.sq.max_sge())?;
            }
            Payload::Inline(b) if b.len() > qp.sq.max_inline() => return Err(Error::InlineTooLong),
            Payload::Inline(_) => {}
        }
        let op = match wr.op {
            SendOp::Send => WqeOp::Send,
            SendOp::SendWithImm(i) => WqeOp::SendImm(i),
            SendOp::SendWithInv(k) => WqeOp::SendInv(k),
            SendOp::Write { remote_addr, rkey } => WqeOp::Write {
                addr: remote_addr,
                rkey,
                imm: None,
            },
            SendOp::WriteWithImm {
                remote_addr,
                rkey,
                imm,
            } => WqeOp::Write {
                addr: remote_addr,
                rkey,
                imm: Some(imm),
            },
            SendOp::Read { remote_addr, rkey } => {
                if qp.attrs.max_rd_atomic == 0 && !flush {
                    // No READ could ever start (IBA Vol 1 ch. 9 (RDMA Read credits); Linux rxe_req.c).
                    return Err(Error::InvalidState);
                }
                WqeOp::Read {
                    addr: remote_addr,
                    rkey,
                }
            }
            SendOp::LocalInvalidate(t) => WqeOp::LocalInv(t),
            SendOp::FastRegister {
                mr,
                pages,
                page_size,
                first_byte_offset,
                length,
                iova,
                access,
            } => {
                let p = FastRegParams {
                    iova,
                    length,
                    page_size,
                    fbo: first_byte_offset,
                    npages: u32::try_from(pages.len()).map_err(|_| Error::InvalidArgument)?,
                    access,
                };
                let key = if flush {
                    0
                } else {
                    ctx.keys.stage_fast_reg(mr, qp.pd, &p, pages)?
                };
                WqeOp::FastReg { mr, key, p }
            }
            SendOp::BindMw {
                mw,
                mr,
                iova,
                length,
                access,
            } => {
                if ctx.keys.mw_pd(mw) != Some(qp.pd) || ctx.keys.mr_pd(mr) != Some(qp.pd) {
                    return Err(Error::InvalidArgument);
                }
                iova.checked_add(length).ok_or(Error::InvalidArgument)?;
                let key = if flush { 0 } else { ctx.keys.stage_bind(mw)? };
                WqeOp::Bind {
                    mw,
                    key,
                    mr,
                    iova,
                    length,
                    access,
                }
            }
        };
        let wqe = SendWqe {
            wr_id: wr.wr_id,
            op,
            signaled: wr.flags.contains(SendFlags::SIGNALED),
            solicited: wr.flags.contains(SendFlags::SOLICITED),
            fence: wr.flags.contains(SendFlags::READ_FENCE),
            ..SendWqe::default()
        };
        if flush {
            // IBA: a request posted to a QP in Error completes flushed.
            let c = Completion {
                wr_id: wr.wr_id,
                status: WcStatus::WrFlushErr,
                opcode: send_opcode(&op),
                qpn: qp.qpn,
                ..Completion::default()
            };
            ctx.complete(qp.send_cq, c);
            return Ok(());
        }
        if let Err(e) = qp.sq.push(wqe, wr.payload) {
            if let WqeOp::FastReg { mr, .. } = op {
                ctx.keys.cancel_fast_reg(mr);
            }
            return Err(e);
        }
        if !wr.flags.contains(SendFlags::DEFER) {
            qp.sq.doorbell = qp.sq.tail;
        }
        Ok(())
    }

    /// Hand every deferred send work request of a QP to the requester.
    pub fn doorbell(&mut self, qpn: u32) -> Result<(), Error> {
        let slot = self.slot_of(qpn).ok_or(Error::InvalidHandle)?;
        if let Some(qp) = self.qps.at_mut(slot) {
            qp.sq.doorbell = qp.sq.tail;
        }
        self.after(Some(slot));
        Ok(())
    }

    /// Post a receive (not for QPs on an SRQ). Allowed from Init on; in
    /// Error it completes flushed at once.
    pub fn post_recv(&mut self, qpn: u32, wr_id: u64, sges: &[Sge]) -> Result<(), Error> {
        let slot = self.slot_of(qpn).ok_or(Error::InvalidHandle)?;
        let (qps, mut ctx) = self.parts(Instant::ZERO);
        let qp = qps.at_mut(slot).ok_or(Error::InvalidHandle)?;
        if qp.srq.is_some() || !qp.state().can_post_recv() {
            return Err(Error::InvalidState);
        }
        if qp.state() == QpState::Error {
            total_len(sges, qp.rq.max_sge())?;
            ctx.complete(qp.recv_cq, qp::flush_recv(qp.qpn, wr_id));
            self.after(None);
            return Ok(());
        }
        qp.rq.push(wr_id, sges)
    }

    // ---- wire side -----------------------------------------------------

    /// A received RoCE packet addressed to an RC QP (the caller parsed the
    /// datagram and checked the ICRC). Anything not for a known QP in a
    /// state that takes it, or from the wrong addresses, is dropped.
    pub fn handle_packet(&mut self, now: Instant, rx: &RxInfo, pkt: &PacketRepr<'_>) {
        if pkt.check().is_ok() {
            self.handle_parsed(now, rx, pkt);
        }
    }

    /// [`handle_packet`](Self::handle_packet) for a repr from
    /// [`PacketRepr::parse`], which sets exactly the opcode's headers and a
    /// payload only where the opcode has one: what
    /// [`PacketRepr::check`] would check again.
    pub(crate) fn handle_parsed(&mut self, now: Instant, rx: &RxInfo, pkt: &PacketRepr<'_>) {
        self.handle_deferred(now, rx, pkt, None);
    }

    /// [`handle_parsed`](Self::handle_parsed) for a packet whose ICRC
    /// check, if `icrc` is given, is still to be done: where the payload
    /// goes straight into memory, the check is made in the same pass
    /// ([`Ctx::icrc_placed`]); everywhere else before anything changes
    /// ([`Ctx::icrc_ok`]). Returns whether the ICRC held (a packet that
    /// fails it changes nothing).
    pub(crate) fn handle_deferred(
        &mut self,
        now: Instant,
        rx: &RxInfo,
        pkt: &PacketRepr<'_>,
        icrc: Option<crate::wire::icrc::Deferred>,
    ) -> bool {
        let intact = |pkt: &PacketRepr<'_>| icrc.is_none_or(|d| d.check(pkt.payload));
        let op = pkt.bth.opcode;
        // IBA Vol 1 ch. 9 (BTH); Linux rxe_hdr.h, Linux rxe_recv.c (P_Key check): RC only, default partition (low 15 bits).
        if op.transport() != Transport::Rc || pkt.bth.pkey & 0x7FFF != 0x7FFF {
            return intact(pkt);
        }
        let Some(slot) = self.slot_of(pkt.bth.dest_qp) else {
            return intact(pkt);
        };
        let (qps, mut ctx) = self.parts(now);
        let Some(qp) = qps.at_mut(slot) else {
            return intact(pkt);
        };
        // Linux rxe_recv.c check_addr: the source must be the peer, the destination us.
        let from_peer = qp.attrs.path.is_some_and(|p| {
            p.remote_ip.to_canonical() == rx.src_ip.to_canonical()
                && p.local_ip.to_canonical() == rx.dst_ip.to_canonical()
        });
        if !from_peer {
            return intact(pkt);
        }
        ctx.rx_icrc = icrc;
        if op.is_request() {
            qp.handle_request(&mut ctx, pkt);
        } else {
            qp.handle_response(&mut ctx, pkt);
        }
        // A path that dropped the packet without needing the check: make
        // it for the count.
        let intact = ctx.icrc_ok(pkt.payload);
        self.after(Some(slot));
        intact
    }

    /// Write the next packet to send into `buf` (at least
    /// [`MAX_PACKET_LEN`] bytes guarantees progress): BTH through payload
    /// and pad, with 4 zero ICRC bytes for the caller to fill after adding
    /// IP and UDP headers. `None` when nothing is due (or `buf` is too
    /// small for the next packet, which stays due).
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<TxInfo> {
        let mut budget = self.tx.len();
        while budget > 0 {
            budget -= 1;
            let slot = self.tx.pop()?;
            let (qps, mut ctx) = self.parts(now);
            let Some(qp) = qps.at_mut(slot) else {
                continue;
            };
            qp.tx_queued = false;
            let r = qp.poll_transmit(&mut ctx, buf);
            let payload_crc = ctx.tx_payload_crc;
            let info = qp.attrs.path.map(|p| (p, qp.qpn, qp.dest_qpn()));
            match r {
                Produced::Packet(len) => {
                    self.after(Some(slot));
                    let (p, qpn, dest_qpn) = info?;
                    return Some(TxInfo {
                        len,
                        qpn,
                        dest_qpn,
                        local_ip: p.local_ip,
                        remote_ip: p.remote_ip,
                        udp_src_port: p.udp_src_port,
                        udp_dst_port: ROCE_UDP_PORT,
                        hop_limit: p.hop_limit,
                        traffic_class: p.traffic_class,
                        payload_crc,
                    });
                }
                Produced::Nothing => self.after(None),
                Produced::NoRoom => {
                    let queued = self.tx.push_front(slot);
                    if let Some(q) = self.qps.at_mut(slot) {
                        q.tx_queued = queued;
                    }
                    return None;
                }
            }
        }
        None
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.first()
    }

    /// Run every timer due at `now` (retransmission, RNR waits).
    pub fn handle_timeout(&mut self, now: Instant) {
        // Only the QPs whose indexed deadline is due; each is re-indexed
        // by `after`, so the loop ends.
        while let Some(slot) = self.timers.pop_due(now) {
            let due = self
                .qps
                .at(slot)
                .and_then(Qp::next_deadline)
                .is_some_and(|t| t <= now);
            if due {
                let (qps, mut ctx) = self.parts(now);
                if let Some(qp) = qps.at_mut(slot) {
                    qp.handle_timer(&mut ctx);
                }
            }
            self.after(Some(slot));
        }
    }

    /// The link refused a datagram of the QP connected to `remote_qpn` at
    /// `remote_ip` (the shell's send failed for the datagram's size): that
    /// QP fails ([`Qp::fail_on_link`]) so the consumer hears of it from a
    /// completion and the QP's fatal event, never from silence. Returns
    /// whether such a QP was found. Not the hot path: a scan of the QPs.
    pub fn link_refused(&mut self, now: Instant, remote_ip: IpAddr, remote_qpn: u32) -> bool {
        let found = (0..self.qps.capacity() as u32).find(|&s| {
            self.qps.at(s).is_some_and(|q| {
                q.attrs.dest_qpn == Some(remote_qpn)
                    && q.attrs.path.is_some_and(|p| p.remote_ip == remote_ip)
                    && q.state() != QpState::Error
            })
        });
        let Some(slot) = found else {
            return false;
        };
        let (qps, mut ctx) = self.parts(now);
        if let Some(qp) = qps.at_mut(slot) {
            qp.fail_on_link(&mut ctx);
        }
        self.after(Some(slot));
        true
    }

    /// The next asynchronous event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop()
    }

    /// Whether [`poll_event`](Self::poll_event) has an event.
    pub fn has_event(&self) -> bool {
        !self.events.is_empty()
    }

    /// Bookkeeping after every call: QPs on an overflowed CQ enter Error
    /// (IBA Vol 1 ch. 9 (NAKs, duplicates); Linux rxe_resp.c), and the QP that was worked on is scheduled.
    fn after(&mut self, slot: Option<u32>) {
        if self.events.cq_overflow {
            self.fail_qps_on_dead_cqs();
        }
        if let Some(s) = slot
            && let Some(qp) = self.qps.at_mut(s)
            && !qp.tx_queued
        {
            qp.tx_queued = self.tx.push(s);
        }
        if let Some(s) = slot {
            let deadline = self.qps.at(s).and_then(Qp::next_deadline);
            self.timers.set(s, deadline);
        }
    }

    /// The rare part of [`after`](Self::after), out of line so the common
    /// path saves few registers: a CQ overflowed.
    #[cold]
    fn fail_qps_on_dead_cqs(&mut self) {
        while core::mem::take(&mut self.events.cq_overflow) {
            for s in 0..self.qps.capacity() as u32 {
                let (qps, mut ctx) = self.parts(Instant::ZERO);
                let Some(qp) = qps.at_mut(s) else {
                    continue;
                };
                let dead = |i: u32| ctx.cqs.at(i).is_some_and(Cq::is_dead);
                if qp.state() != QpState::Error && (dead(qp.send_cq) || dead(qp.recv_cq)) {
                    qp.enter_error(&mut ctx, Some(WcStatus::LocQpOpErr));
                }
            }
        }
    }
}

impl Qp {
    /// Responder and requester output: a request goes first, but never
    /// two in a row while a response is due. A ping-pong's responder
    /// thus sends its own request (the message its peer waits for) before
    /// the ACK of the one it received, which nothing waits for; traffic in
    /// both directions still alternates one response per request.
    fn poll_transmit<M: Memory + ?Sized>(
        &mut self,
        ctx: &mut Ctx<'_, M>,
        buf: &mut [u8],
    ) -> Produced {
        if self.tx_turn {
            // A request went ahead last time: a due response goes now.
            let p = match self.poll_response(ctx, buf) {
                Produced::Nothing => self.poll_request(ctx, buf),
                p => p,
            };
            if !matches!(p, Produced::NoRoom) {
                self.tx_turn = false;
            }
            p
        } else {
            match self.poll_request(ctx, buf) {
                Produced::Nothing => self.poll_response(ctx, buf),
                p => {
                    self.tx_turn = matches!(p, Produced::Packet(_));
                    p
                }
            }
        }
    }
}
