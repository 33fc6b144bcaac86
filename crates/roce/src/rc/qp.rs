//! Queue pair attributes, the QP object and what its three roles share:
//! completing work requests and entering Error with a flush.

use core::net::IpAddr;
use core::time::Duration;

use super::completer::CompState;
use super::cq::{Completion, Cq, Pushed, WcOpcode, WcStatus};
use super::event::{Event, Events};
use super::memory::Memory;
use super::mr::{Access, KeyTable};
use super::psn::Psn;
use super::qp_state::QpState;
use super::requester::ReqState;
use super::responder::RespState;
use super::slab::Slab;
use super::srq::Srq;
use super::wqe::{RecvQueue, SendQueue, WqeOp};
use super::{CqHandle, Error, PdHandle, SrqHandle};
use crate::time::Instant;

/// rxe's cap on PSNs in flight beyond the oldest unacknowledged one
/// (RXE_MAX_UNACKED_PSNS, IBA Vol 1 ch. 9 (PSN arithmetic); Linux rxe_hdr.h psn_compare).
pub const MAX_UNACKED_PSNS: i32 = 128;

/// An AckReq at least every this many packets (RXE_MAX_PKT_PER_ACK, Linux rxe_req.c (AckReq)).
pub const MAX_PKTS_PER_ACK: u32 = 64;

/// Device limits (rxe_param.h, Linux rxe_param.h).
pub const MAX_WR: u32 = 0x4000;
/// Most SGEs per work request.
pub const MAX_SGE: u32 = 32;
/// Most inline bytes per send.
pub const MAX_INLINE: u32 = 4096;
/// Most read/atomic resources either way.
pub const MAX_RD_ATOMIC: u32 = 128;

/// What a QP is created with (NdkCreateQp / NdkCreateQpWithSrq).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QpInit {
    /// Protection domain.
    pub pd: PdHandle,
    /// CQ for send-queue (initiator) completions.
    pub send_cq: CqHandle,
    /// CQ for receive completions.
    pub recv_cq: CqHandle,
    /// Receives come from this SRQ instead of a receive queue.
    pub srq: Option<SrqHandle>,
    /// Send queue depth.
    pub sq_depth: u32,
    /// Receive queue depth (ignored with an SRQ).
    pub rq_depth: u32,
    /// Most SGEs per send work request.
    pub max_send_sge: u32,
    /// Most SGEs per receive work request.
    pub max_recv_sge: u32,
    /// Most inline bytes per send.
    pub max_inline: u32,
}

/// The network path of a connected QP (what CM and rdma_cm decide,
/// Linux drivers/infiniband/core/cma.c).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Path {
    /// Our IP.
    pub local_ip: IpAddr,
    /// The peer's IP.
    pub remote_ip: IpAddr,
    /// UDP source port of every packet of this QP (IBA Annex A17 (RoCEv2 encapsulation); Linux rxe_net.c).
    pub udp_src_port: u16,
    /// IP TTL / hop limit (64 in the captures).
    pub hop_limit: u8,
    /// IP TOS / traffic class (0 in the captures).
    pub traffic_class: u8,
}

/// A `modify` of a QP: every field is optional (IB `ib_qp_attr` + mask).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QpAttr {
    /// New state (checked against [`QpState::transition`]).
    pub state: Option<QpState>,
    /// Path MTU in bytes: 256, 512, 1024, 2048 or 4096.
    pub path_mtu: Option<u32>,
    /// The peer's QPN.
    pub dest_qpn: Option<u32>,
    /// First PSN the responder expects.
    pub rq_psn: Option<u32>,
    /// First PSN the requester sends.
    pub sq_psn: Option<u32>,
    /// Local ACK timeout: 4.096 us * 2^timeout, 0 = infinite (5 bits).
    pub timeout: Option<u8>,
    /// Transport retries (3 bits; 7 = infinite as in rxe, IBA Vol 1 ch. 9 (requester retry); Linux rxe_comp.c).
    pub retry_cnt: Option<u8>,
    /// RNR retries (3 bits; 7 = infinite).
    pub rnr_retry: Option<u8>,
    /// The RNR timer code this responder sends in RNR NAKs (5 bits).
    pub min_rnr_timer: Option<u8>,
    /// Outstanding RDMA READs as requester (initiator depth).
    pub max_rd_atomic: Option<u32>,
    /// RDMA READ resources as responder.
    pub max_dest_rd_atomic: Option<u32>,
    /// Remote access enables: [`Access::REMOTE_READ`], [`Access::REMOTE_WRITE`].
    pub access: Option<Access>,
    /// The path.
    pub path: Option<Path>,
}

/// A QP's current attributes (what [`Engine::query_qp`](super::Engine::query_qp) returns).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attrs {
    /// State.
    pub state: QpState,
    /// Path MTU in bytes.
    pub mtu: u32,
    /// Peer QPN, once set.
    pub dest_qpn: Option<u32>,
    /// Local ACK timeout code.
    pub timeout: u8,
    /// Retry count.
    pub retry_cnt: u8,
    /// RNR retry count.
    pub rnr_retry: u8,
    /// RNR timer code sent.
    pub min_rnr_timer: u8,
    /// Initiator depth.
    pub max_rd_atomic: u32,
    /// Responder resources.
    pub max_dest_rd_atomic: u32,
    /// Remote access enables.
    pub access: Access,
    /// Path, once set.
    pub path: Option<Path>,
}

impl Default for Attrs {
    fn default() -> Self {
        // IBA defaults after create; rxe's default path MTU is 256
        // (IBA Vol 1 ch. 9 (segmentation at the path MTU); Linux rxe_req.c).
        Attrs {
            state: QpState::Reset,
            mtu: 256,
            dest_qpn: None,
            timeout: 0,
            retry_cnt: 0,
            rnr_retry: 0,
            min_rnr_timer: 0,
            max_rd_atomic: 0,
            max_dest_rd_atomic: 0,
            access: Access::NONE,
            path: None,
        }
    }
}

impl Attrs {
    /// The retransmit timeout, `None` for infinite (IBA Vol 1 ch. 9 (requester retry); Linux rxe_comp.c).
    pub fn ack_timeout(&self) -> Option<Duration> {
        if self.timeout == 0 {
            return None;
        }
        let ns = 4096u64.checked_shl(u32::from(self.timeout.min(31)))?;
        Some(Duration::from_nanos(ns))
    }
}

/// Check every field of a modify before anything changes.
pub(crate) fn validate(a: &QpAttr) -> Result<(), Error> {
    let bad = a
        .path_mtu
        .is_some_and(|m| !matches!(m, 256 | 512 | 1024 | 2048 | 4096))
        || a.dest_qpn.is_some_and(|q| q > 0xFF_FFFF)
        || a.rq_psn.is_some_and(|p| p > 0xFF_FFFF)
        || a.sq_psn.is_some_and(|p| p > 0xFF_FFFF)
        || a.timeout.is_some_and(|t| t > 31)
        || a.retry_cnt.is_some_and(|r| r > 7)
        || a.rnr_retry.is_some_and(|r| r > 7)
        || a.min_rnr_timer.is_some_and(|r| r > 31)
        || a.max_rd_atomic.is_some_and(|r| r > MAX_RD_ATOMIC)
        || a.max_dest_rd_atomic.is_some_and(|r| r > MAX_RD_ATOMIC)
        || a.access.is_some_and(|x| {
            x.bits() & !(Access::REMOTE_READ.bits() | Access::REMOTE_WRITE.bits()) != 0
        });
    if bad {
        Err(Error::InvalidArgument)
    } else {
        Ok(())
    }
}

/// Everything outside the QP that its roles touch during one call.
pub(crate) struct Ctx<'a, M: Memory + ?Sized> {
    pub(crate) mem: &'a M,
    pub(crate) keys: &'a mut KeyTable,
    pub(crate) cqs: &'a mut Slab<Cq>,
    pub(crate) srqs: &'a mut Slab<Srq>,
    pub(crate) events: &'a mut Events,
    pub(crate) now: Instant,
    /// The payload CRC of the packet last emitted ([`super::tx::emit_packet`]).
    pub(crate) tx_payload_crc: Option<crate::wire::icrc::PayloadCrc>,
    /// The received packet's ICRC check, when the device left it to the
    /// payload's placement ([`Ctx::icrc_ok`], [`Ctx::icrc_placed`]).
    pub(crate) rx_icrc: Option<crate::wire::icrc::Deferred>,
    /// The received packet failed its ICRC: it changes nothing.
    pub(crate) rx_icrc_bad: bool,
}

impl<M: Memory + ?Sized> Ctx<'_, M> {
    /// Whether the packet being handled may change anything: its ICRC
    /// holds. A check the device deferred is done here, over `payload`,
    /// by the first path that changes state other than by placing the
    /// payload. Every such path of a deferred packet asks first.
    pub(crate) fn icrc_ok(&mut self, payload: &[u8]) -> bool {
        if let Some(d) = self.rx_icrc.take() {
            self.rx_icrc_bad = !d.check(payload);
        }
        !self.rx_icrc_bad
    }

    /// Where the payload's CRC continues from while it is placed, if the
    /// packet's ICRC check was deferred.
    pub(crate) fn icrc_head(&self) -> Option<u32> {
        self.rx_icrc.map(|d| d.head())
    }

    /// The payload was placed, its CRC continued from
    /// [`icrc_head`](Self::icrc_head) to `through_payload`: whether the
    /// ICRC holds. If not, the packet is dropped; the bytes it placed lie
    /// where its retransmission will place them again (the PSN it carried
    /// is still the expected one), and a message's target memory is
    /// undefined until the message completes (IBA Vol 1 ch. 9 (RDMA WRITE,
    /// responder) and ch. 10 (work completions)), as on an HCA that places
    /// a packet's payload before its trailing ICRC has arrived.
    pub(crate) fn icrc_placed(&mut self, through_payload: u32) -> bool {
        if let Some(d) = self.rx_icrc.take() {
            self.rx_icrc_bad = !d.matches(through_payload);
        }
        !self.rx_icrc_bad
    }
    /// Put a completion on a CQ, raising its notification or error event.
    pub(crate) fn complete(&mut self, cq: u32, c: Completion) {
        let generation = self.cqs.generation_of(cq);
        let Some(q) = self.cqs.at_mut(cq) else {
            return;
        };
        let h = CqHandle {
            index: cq,
            generation,
        };
        match q.push(c) {
            Pushed::Stored { notify: true } => self.events.push(Event::CqNotify(h)),
            Pushed::Stored { notify: false } | Pushed::Dead => {}
            Pushed::Overflow { first, report } => {
                if report {
                    self.events.push(Event::CqError(h));
                }
                if first {
                    // IBA Vol 1 ch. 9 (NAKs, duplicates); Linux rxe_resp.c: CQ overflow -> QP error; the engine
                    // moves every QP on this CQ to Error after this call.
                    self.events.cq_overflow = true;
                }
            }
        }
    }
}

/// A reliable-connected queue pair.
#[derive(Debug)]
pub(crate) struct Qp {
    pub(crate) qpn: u32,
    pub(crate) pd: u32,
    pub(crate) send_cq: u32,
    pub(crate) recv_cq: u32,
    pub(crate) srq: Option<u32>,
    pub(crate) attrs: Attrs,
    pub(crate) sq: SendQueue,
    pub(crate) rq: RecvQueue,
    pub(crate) req: ReqState,
    pub(crate) comp: CompState,
    pub(crate) resp: RespState,
    /// In the transmit ring.
    pub(crate) tx_queued: bool,
    /// A request went out ahead of any response that was due: a due
    /// response goes next (see `Qp::poll_transmit`).
    pub(crate) tx_turn: bool,
    /// In SQD and the drained event has not fired yet.
    pub(crate) drain_pending: bool,
}

impl Qp {
    pub(crate) fn new(
        qpn: u32,
        pd: u32,
        send_cq: u32,
        recv_cq: u32,
        srq: Option<u32>,
        init: &QpInit,
        recv_max_sge: usize,
    ) -> Self {
        Qp {
            qpn,
            pd,
            send_cq,
            recv_cq,
            srq,
            attrs: Attrs::default(),
            sq: SendQueue::new(
                init.sq_depth as usize,
                init.max_send_sge as usize,
                init.max_inline as usize,
            ),
            rq: RecvQueue::new(
                if srq.is_some() {
                    0
                } else {
                    init.rq_depth as usize
                },
                init.max_recv_sge as usize,
            ),
            req: ReqState::default(),
            comp: CompState::default(),
            resp: RespState::new(recv_max_sge),
            tx_queued: false,
            tx_turn: false,
            drain_pending: false,
        }
    }

    pub(crate) fn state(&self) -> QpState {
        self.attrs.state
    }

    /// Complete the send WQE at the head of the send queue.
    pub(crate) fn complete_head<M: Memory + ?Sized>(
        &mut self,
        ctx: &mut Ctx<'_, M>,
        status: WcStatus,
    ) {
        let idx = self.sq.head;
        let Some(w) = self.sq.get(idx).copied() else {
            return;
        };
        if w.op.is_read() && w.read_counted {
            self.req.reads = self.req.reads.saturating_sub(1);
        }
        if let (WqeOp::FastReg { mr, .. }, true) = (w.op, w.local_done.is_none()) {
            ctx.keys.cancel_fast_reg(mr);
        }
        // NDK SILENT_SUCCESS: an unsignaled success makes no entry; an
        // error always does (ndkpi.h NDK_OP_FLAG_*, IBA Vol 1 ch. 9 (requester retry); Linux rxe_comp.c).
        if w.signaled || status.is_error() {
            ctx.complete(
                self.send_cq,
                Completion {
                    wr_id: w.wr_id,
                    status,
                    opcode: send_opcode(&w.op),
                    byte_len: w.length,
                    imm: None,
                    invalidated_rkey: None,
                    qpn: self.qpn,
                    solicited: false,
                },
            );
        }
        self.sq.head += 1;
        if self.sq.cur < self.sq.head {
            self.sq.cur = self.sq.head;
            self.req.offset = 0;
        }
        if self.sq.doorbell < self.sq.head {
            self.sq.doorbell = self.sq.head;
        }
    }

    /// Complete a receive (from the responder's current receive WQE).
    pub(crate) fn complete_recv<M: Memory + ?Sized>(
        &mut self,
        ctx: &mut Ctx<'_, M>,
        c: Completion,
    ) {
        self.resp.cur.active = false;
        ctx.complete(self.recv_cq, c);
    }

    /// Enter Error: flush every send WQE and every receive WQE of this QP
    /// exactly once with WrFlushErr (IBA Vol 1 ch. 9 (requester retry); Linux rxe_comp.c). `fatal` is the status
    /// of a transport failure, reported as [`Event::QpFatal`]. SRQ WQEs
    /// not yet taken belong to the SRQ and stay.
    pub(crate) fn enter_error<M: Memory + ?Sized>(
        &mut self,
        ctx: &mut Ctx<'_, M>,
        fatal: Option<WcStatus>,
    ) {
        if self.attrs.state == QpState::Error {
            return;
        }
        self.attrs.state = QpState::Error;
        while self.sq.head < self.sq.tail {
            self.complete_head(ctx, WcStatus::WrFlushErr);
        }
        self.sq.clear_to_tail();
        if self.resp.cur.active {
            let c = flush_recv(self.qpn, self.resp.cur.wr_id);
            self.complete_recv(ctx, c);
        }
        while let Some(id) = self.rq.pop_id() {
            ctx.complete(self.recv_cq, flush_recv(self.qpn, id));
        }
        self.req.reset_progress();
        self.comp.stop_timers();
        self.resp.clear_output();
        self.drain_pending = false;
        if let Some(status) = fatal {
            ctx.events.push(Event::QpFatal {
                qpn: self.qpn,
                status,
            });
        }
    }

    /// Modify to Reset: forget everything without completions (IBA).
    pub(crate) fn reset(&mut self, keys: &mut KeyTable) {
        for idx in self.sq.head..self.sq.tail {
            if let Some(WqeOp::FastReg { mr, .. }) = self.sq.get(idx).map(|w| w.op) {
                keys.cancel_fast_reg(mr);
            }
        }
        self.sq.clear();
        self.rq.clear();
        self.req = ReqState::default();
        self.comp = CompState::default();
        self.resp.reset();
        let mtu = self.attrs.mtu;
        self.attrs = Attrs {
            mtu,
            ..Attrs::default()
        };
        self.drain_pending = false;
    }

    /// Whether a post in this state is flushed at once (IBA: posting to a
    /// QP in Error completes with a flush error).
    pub(crate) fn flushes_posts(&self) -> bool {
        matches!(self.attrs.state, QpState::Error | QpState::Sqe)
    }

    pub(crate) fn mtu(&self) -> u32 {
        self.attrs.mtu
    }

    pub(crate) fn dest_qpn(&self) -> u32 {
        self.attrs.dest_qpn.unwrap_or(0)
    }

    /// Set the send PSN (modify sq_psn).
    pub(crate) fn set_sq_psn(&mut self, psn: Psn) {
        self.req.psn = psn;
        self.comp.psn = psn;
        self.comp.sent_end = psn;
        self.comp.sent_high = psn;
    }

    /// Fire the SQ drained event once the last started WQE completed.
    pub(crate) fn check_drained<M: Memory + ?Sized>(&mut self, ctx: &mut Ctx<'_, M>) {
        if self.drain_pending
            && self.attrs.state == QpState::Sqd
            && self.sq.head >= self.sq.cur
            && self.req.offset == 0
        {
            self.drain_pending = false;
            ctx.events.push(Event::SqDrained { qpn: self.qpn });
        }
    }
}

impl SendQueue {
    fn clear_to_tail(&mut self) {
        self.head = self.tail;
        self.cur = self.tail;
        self.doorbell = self.tail;
    }
}

pub(crate) fn flush_recv(qpn: u32, wr_id: u64) -> Completion {
    Completion {
        wr_id,
        status: WcStatus::WrFlushErr,
        opcode: WcOpcode::Recv,
        byte_len: 0,
        imm: None,
        invalidated_rkey: None,
        qpn,
        solicited: false,
    }
}

pub(crate) fn send_opcode(op: &WqeOp) -> WcOpcode {
    match op {
        WqeOp::Send | WqeOp::SendImm(_) | WqeOp::SendInv(_) => WcOpcode::Send,
        WqeOp::Write { .. } => WcOpcode::RdmaWrite,
        WqeOp::Read { .. } => WcOpcode::RdmaRead,
        WqeOp::LocalInv(_) => WcOpcode::LocalInvalidate,
        WqeOp::FastReg { .. } => WcOpcode::FastRegister,
        WqeOp::Bind { .. } => WcOpcode::BindMw,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ack_timeout_formula() {
        let mut a = Attrs::default();
        assert_eq!(a.ack_timeout(), None);
        a.timeout = 1;
        assert_eq!(a.ack_timeout(), Some(Duration::from_nanos(8192)));
        a.timeout = 19;
        // IBA Vol 1 ch. 9 (requester retry); Linux rxe_comp.c: 19 -> about 2.15 s.
        assert_eq!(a.ack_timeout(), Some(Duration::from_nanos(4096 << 19)));
        a.timeout = 31;
        assert_eq!(a.ack_timeout(), Some(Duration::from_nanos(4096 << 31)));
    }

    #[test]
    fn modify_validation() {
        assert!(validate(&QpAttr::default()).is_ok());
        for bad in [
            QpAttr {
                path_mtu: Some(1500),
                ..Default::default()
            },
            QpAttr {
                path_mtu: Some(8192),
                ..Default::default()
            },
            QpAttr {
                dest_qpn: Some(1 << 24),
                ..Default::default()
            },
            QpAttr {
                rq_psn: Some(1 << 24),
                ..Default::default()
            },
            QpAttr {
                timeout: Some(32),
                ..Default::default()
            },
            QpAttr {
                retry_cnt: Some(8),
                ..Default::default()
            },
            QpAttr {
                rnr_retry: Some(8),
                ..Default::default()
            },
            QpAttr {
                min_rnr_timer: Some(32),
                ..Default::default()
            },
            QpAttr {
                max_rd_atomic: Some(129),
                ..Default::default()
            },
            QpAttr {
                access: Some(Access::LOCAL_WRITE),
                ..Default::default()
            },
        ] {
            assert_eq!(validate(&bad), Err(Error::InvalidArgument), "{bad:?}");
        }
        for mtu in [256, 512, 1024, 2048, 4096] {
            assert!(
                validate(&QpAttr {
                    path_mtu: Some(mtu),
                    ..Default::default()
                })
                .is_ok()
            );
        }
    }
}
