//! The responder: executes the peer's requests (IBA Vol 1 ch. 9 (ACKs); Linux rxe_resp.c, IBA Vol 1 ch. 9 (NAKs, duplicates); Linux rxe_resp.c;
//! rxe_resp.c for shape). PSN check (sequence NAK once per gap,
//! duplicates re-ACKed without re-execution, duplicate READs replayed from
//! saved resources), opcode sequence, operation and length checks,
//! receive WQE resources (RNR NAK), rkey checks, execution, and ACKs only
//! where AckReq asks, carrying the MSN.

use alloc::collections::VecDeque;
use alloc::vec;
use alloc::vec::Vec;

use super::SrqHandle;
use super::cq::{Completion, WcOpcode, WcStatus};
use super::event::Event;
use super::memory::Memory;
use super::mr::Access;
use super::psn::{PSN_MASK, Psn};
use super::qp::{Ctx, Qp};
use super::qp_state::QpState;
use super::requester::Produced;
use super::tx::{EmitError, emit_packet};
use super::wqe::{CurRecv, MAX_MESSAGE_LEN, packets};
use crate::wire::aeth::{AethRepr, CREDITS_UNLIMITED, NakCode, Syndrome};
use crate::wire::bth::BthRepr;
use crate::wire::opcode::{OpClass, Opcode, Position};
use crate::wire::packet::PacketRepr;
use crate::wire::reth::RethRepr;

/// A multi-packet message in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum InMsg {
    #[default]
    None,
    Send,
    Write,
}

/// A saved RDMA READ (a responder resource): enough to replay its
/// responses when the READ comes again as a duplicate (IBA Vol 1 ch. 9 (NAKs, duplicates); Linux rxe_resp.c).
#[derive(Debug, Clone, Copy, Default)]
struct ReadRes {
    valid: bool,
    first_psn: Psn,
    last_psn: Psn,
    rkey: u32,
    va: u64,
    len: u32,
    msn: u32,
    /// In the output queue.
    queued: bool,
    /// PSN of the request this (re)play answers: its first response is
    /// First or Only.
    start_psn: Psn,
    cur_psn: Psn,
    cur_va: u64,
    resid: u32,
}

/// Something the responder has to send, in PSN order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Out {
    Ack {
        psn: Psn,
        syndrome: Syndrome,
        msn: u32,
    },
    Read(usize),
}

/// The responder's state.
#[derive(Debug)]
pub(crate) struct RespState {
    /// Expected PSN.
    pub(crate) epsn: Psn,
    /// Message sequence number (24 bits).
    pub(crate) msn: u32,
    /// A sequence NAK was sent for the current gap.
    nak_sent: bool,
    in_msg: InMsg,
    /// The receive WQE being filled.
    pub(crate) cur: CurRecv,
    write_va: u64,
    write_rkey: u32,
    write_resid: u32,
    write_len: u32,
    res: Vec<ReadRes>,
    res_next: usize,
    out: VecDeque<Out>,
    out_cap: usize,
    /// The communication-established event fired since RTR.
    pub(crate) comm_est: bool,
    /// The QP's fatal event, held until its NAK has gone out: whoever
    /// reacts to the event (a consumer disconnecting, whose DREQ leaves
    /// before queued RC packets) must not overtake the NAK that tells the
    /// requester why.
    fatal_after_nak: Option<WcStatus>,
}

const ACK_SLOTS: usize = 8;

impl RespState {
    pub(crate) fn new(max_sge: usize) -> Self {
        RespState {
            epsn: Psn::ZERO,
            msn: 0,
            nak_sent: false,
            in_msg: InMsg::None,
            cur: CurRecv::new(max_sge),
            write_va: 0,
            write_rkey: 0,
            write_resid: 0,
            write_len: 0,
            res: Vec::new(),
            res_next: 0,
            out: VecDeque::with_capacity(ACK_SLOTS),
            out_cap: ACK_SLOTS,
            comm_est: false,
            fatal_after_nak: None,
        }
    }

    /// Size the READ resources (control path): max_dest_rd_atomic rounded
    /// up to a power of two, as rxe does (IBA Vol 1 ch. 9 (NAKs, duplicates); Linux rxe_resp.c, IBA Vol 1 ch. 9 (RDMA Read credits); Linux rxe_req.c).
    pub(crate) fn set_resources(&mut self, n: u32) {
        let n = if n == 0 {
            0
        } else {
            n.next_power_of_two() as usize
        };
        self.res = vec![ReadRes::default(); n];
        self.res_next = 0;
        self.out_cap = n + ACK_SLOTS;
        self.out.clear();
        self.out.reserve(self.out_cap);
    }

    pub(crate) fn clear_output(&mut self) {
        self.out.clear();
        for r in &mut self.res {
            r.queued = false;
        }
        self.in_msg = InMsg::None;
    }

    pub(crate) fn reset(&mut self) {
        self.clear_output();
        for r in &mut self.res {
            *r = ReadRes::default();
        }
        self.epsn = Psn::ZERO;
        self.msn = 0;
        self.nak_sent = false;
        self.cur.active = false;
        self.comm_est = false;
        self.fatal_after_nak = None;
    }

    /// Queue an ACK/NAK; a plain ACK replaces a plain ACK still queued
    /// behind everything else (it acknowledges more). When the queue is
    /// full the new one is dropped: the requester's timer recovers.
    fn queue_ack(&mut self, psn: Psn, syndrome: Syndrome, msn: u32) {
        let new = Out::Ack { psn, syndrome, msn };
        if let (
            Some(Out::Ack {
                syndrome: Syndrome::Ack { .. },
                ..
            }),
            Syndrome::Ack { .. },
        ) = (self.out.back(), syndrome)
        {
            if let Some(b) = self.out.back_mut() {
                *b = new;
            }
            return;
        }
        if self.out.len() < self.out_cap {
            self.out.push_back(new);
        }
    }
}

fn ack() -> Syndrome {
    Syndrome::Ack {
        credits: CREDITS_UNLIMITED,
    }
}

fn next_msn(msn: u32) -> u32 {
    msn.wrapping_add(1) & PSN_MASK
}

impl Qp {
    /// A request packet (SEND, WRITE, READ request, atomic) for this QP.
    pub(crate) fn handle_request<M: Memory + ?Sized>(
        &mut self,
        ctx: &mut Ctx<'_, M>,
        pkt: &PacketRepr<'_>,
    ) {
        let state = self.attrs.state;
        if !state.can_receive() {
            return;
        }
        let psn = Psn::new(pkt.bth.psn);
        let d = psn.diff(self.resp.epsn);
        let first_arrival = state == QpState::Rtr && !self.resp.comm_est;
        // Only the expected packet of an established QP may leave a
        // deferred ICRC check to the placement of its payload.
        if (d != 0 || first_arrival) && !ctx.icrc_ok(pkt.payload) {
            return;
        }
        if first_arrival {
            self.resp.comm_est = true;
            ctx.events.push(Event::CommEstablished { qpn: self.qpn });
        }
        if d > 0 {
            // IBA Vol 1 ch. 9 (NAKs, duplicates); Linux rxe_resp.c: one sequence NAK per gap, carrying the
            // expected PSN; later packets of the gap are dropped.
            if !self.resp.nak_sent {
                self.resp.nak_sent = true;
                let (e, m) = (self.resp.epsn, self.resp.msn);
                self.resp
                    .queue_ack(e, Syndrome::Nak(NakCode::PsnSequenceError), m);
            }
            return;
        }
        if d < 0 {
            self.duplicate(pkt, psn);
            return;
        }
        self.resp.nak_sent = false;

        let op = pkt.bth.opcode;
        let class = op.class();
        let pos = op.position();
        // Opcode sequence (IBA Vol 1 ch. 9 (NAKs, duplicates); Linux rxe_resp.c): inside a message only its Middle
        // and Last may come; outside it only First or Only.
        let seq_ok = match self.resp.in_msg {
            InMsg::Send => {
                class == OpClass::Send && matches!(pos, Position::Middle | Position::Last)
            }
            InMsg::Write => {
                class == OpClass::RdmaWrite && matches!(pos, Position::Middle | Position::Last)
            }
            InMsg::None => matches!(pos, Position::First | Position::Only),
        };
        if !seq_ok {
            return self.fatal_if_intact(ctx, pkt, psn, NakCode::InvalidRequest, None);
        }
        // Operation allowed on this QP. NDK has no atomic verbs, so
        // atomics are invalid requests here.
        let op_ok = match class {
            OpClass::Send => true,
            OpClass::RdmaWrite => self.attrs.access.contains(Access::REMOTE_WRITE),
            OpClass::RdmaReadRequest => {
                self.attrs.access.contains(Access::REMOTE_READ) && self.attrs.max_dest_rd_atomic > 0
            }
            _ => false,
        };
        if !op_ok {
            return self.fatal_if_intact(ctx, pkt, psn, NakCode::InvalidRequest, None);
        }
        // Lengths (IBA Vol 1 ch. 9 (PadCnt); Linux rxe_hdr.h): First/Middle exactly one MTU, Last 1..MTU,
        // Only up to MTU.
        let mtu = self.mtu() as usize;
        let plen = pkt.payload.len();
        let len_ok = plen <= mtu
            && match pos {
                Position::First | Position::Middle => plen == mtu,
                Position::Last => plen > 0,
                Position::Only => true,
            };
        if !len_ok {
            return self.fatal_if_intact(ctx, pkt, psn, NakCode::InvalidRequest, None);
        }
        match class {
            OpClass::Send => self.exec_send(ctx, pkt, psn),
            OpClass::RdmaWrite => self.exec_write(ctx, pkt, psn),
            _ => self.exec_read(ctx, pkt, psn),
        }
    }

    /// Take a receive WQE from the SRQ or the receive queue.
    fn take_recv<M: Memory + ?Sized>(&mut self, ctx: &mut Ctx<'_, M>) -> bool {
        if self.resp.cur.active {
            return true;
        }
        match self.srq {
            Some(s) => {
                let generation = ctx.srqs.generation_of(s);
                let Some(srq) = ctx.srqs.at_mut(s) else {
                    return false;
                };
                let (taken, limit) = srq.take(&mut self.resp.cur);
                if limit {
                    ctx.events.push(Event::SrqLimit(SrqHandle {
                        index: s,
                        generation,
                    }));
                }
                taken
            }
            None => self.rq.pop_into(&mut self.resp.cur),
        }
    }

    fn rnr_nak(&mut self, psn: Psn) {
        // IBA Vol 1 ch. 9 (NAKs, duplicates); Linux rxe_resp.c: RNR NAK with our min_rnr_timer for the request's
        // PSN; the packet is dropped and the QP stays up.
        let (t, m) = (self.attrs.min_rnr_timer, self.resp.msn);
        self.resp.queue_ack(psn, Syndrome::RnrNak { timer: t }, m);
    }

    /// [`resp_fatal`](Self::resp_fatal) for a packet whose ICRC holds
    /// (checked now if it was deferred); one that fails it is dropped.
    fn fatal_if_intact<M: Memory + ?Sized>(
        &mut self,
        ctx: &mut Ctx<'_, M>,
        pkt: &PacketRepr<'_>,
        psn: Psn,
        code: NakCode,
        status: Option<WcStatus>,
    ) {
        if ctx.icrc_ok(pkt.payload) {
            self.resp_fatal(ctx, psn, code, status);
        }
    }

    fn exec_send<M: Memory + ?Sized>(
        &mut self,
        ctx: &mut Ctx<'_, M>,
        pkt: &PacketRepr<'_>,
        psn: Psn,
    ) {
        let end = pkt.bth.opcode.is_end();
        // Taking a receive WQE and invalidating a key change state: a
        // deferred ICRC is checked first.
        if (!self.resp.cur.active || pkt.ieth.is_some()) && !ctx.icrc_ok(pkt.payload) {
            return;
        }
        if !self.take_recv(ctx) {
            return self.rnr_nak(psn);
        }
        let off = self.resp.cur.offset;
        let plen = pkt.payload.len() as u64;
        if u64::from(off) + plen > u64::from(self.resp.cur.length) {
            // The SEND does not fit the receive buffers (IBA Vol 1 ch. 9 (NAKs, duplicates); Linux rxe_resp.c).
            return self.fatal_if_intact(
                ctx,
                pkt,
                psn,
                NakCode::InvalidRequest,
                Some(WcStatus::LocLenErr),
            );
        }
        let mut invalidated = None;
        if let Some(ieth) = pkt.ieth {
            // the NDKPI work request posting requirements page: an invalid token aborts the connection.
            if ctx.keys.invalidate_key(ieth.rkey, self.pd).is_err() {
                return self.fatal_if_intact(
                    ctx,
                    pkt,
                    psn,
                    NakCode::InvalidRequest,
                    Some(WcStatus::LocQpOpErr),
                );
            }
            invalidated = Some(ieth.rkey);
        }
        let placed = ctx.keys.scatter_crc(
            ctx.mem,
            self.pd,
            self.resp.cur.sges(),
            off,
            pkt.payload,
            ctx.icrc_head(),
        );
        match placed {
            // A malformed receive WQE (IBA Vol 1 ch. 9 (NAKs, duplicates); Linux rxe_resp.c): remote operational error.
            Err(status) => {
                let code = NakCode::RemoteOperationalError;
                return self.fatal_if_intact(ctx, pkt, psn, code, Some(status));
            }
            Ok(Some(crc)) if !ctx.icrc_placed(crc) => return,
            Ok(_) => {}
        }
        if !ctx.icrc_ok(pkt.payload) {
            return;
        }
        self.resp.cur.offset = off + pkt.payload.len() as u32;
        self.resp.epsn = psn.add(1);
        self.resp.in_msg = if end { InMsg::None } else { InMsg::Send };
        if end {
            self.resp.msn = next_msn(self.resp.msn);
            let c = Completion {
                wr_id: self.resp.cur.wr_id,
                status: WcStatus::Success,
                opcode: WcOpcode::Recv,
                byte_len: self.resp.cur.offset,
                imm: pkt.immdt.map(|i| i.imm_data),
                invalidated_rkey: invalidated,
                qpn: self.qpn,
                solicited: pkt.bth.solicited,
            };
            self.complete_recv(ctx, c);
        }
        if pkt.bth.ack_req {
            let m = self.resp.msn;
            self.resp.queue_ack(psn, ack(), m);
        }
    }

    fn exec_write<M: Memory + ?Sized>(
        &mut self,
        ctx: &mut Ctx<'_, M>,
        pkt: &PacketRepr<'_>,
        psn: Psn,
    ) {
        let op = pkt.bth.opcode;
        let end = op.is_end();
        // A First's RETH says where the payload goes, and taking a receive
        // changes state: a deferred ICRC is checked before either.
        if (op.has_immediate() || op.is_start()) && !ctx.icrc_ok(pkt.payload) {
            return;
        }
        // WRITE with immediate consumes a receive at its end (IBA Vol 1 ch. 9 (opcodes); Linux rxe_opcode.c);
        // check it before anything is written so an RNR changes nothing.
        if op.has_immediate() && !self.take_recv(ctx) {
            return self.rnr_nak(psn);
        }
        if op.is_start() {
            let reth = match self.checked_reth(ctx, pkt, Access::REMOTE_WRITE) {
                Ok(reth) => reth,
                Err(code) => return self.fatal_if_intact(ctx, pkt, psn, code, None),
            };
            self.resp.write_va = reth.virtual_addr;
            self.resp.write_rkey = reth.rkey;
            self.resp.write_resid = reth.dma_len;
            self.resp.write_len = reth.dma_len;
        }
        let plen = pkt.payload.len() as u32;
        // IBA Vol 1 ch. 9 (PadCnt); Linux rxe_hdr.h: never more than what is left; Last/Only exactly that.
        if plen > self.resp.write_resid || (end && plen != self.resp.write_resid) {
            return self.fatal_if_intact(ctx, pkt, psn, NakCode::InvalidRequest, None);
        }
        if plen > 0 {
            let place = ctx.keys.resolve_remote(
                self.resp.write_rkey,
                self.pd,
                self.resp.write_va,
                u64::from(plen),
                Access::REMOTE_WRITE,
            );
            let head = ctx.icrc_head();
            let written = place.ok().and_then(|p| match head {
                Some(head) => ctx.keys.write_crc(ctx.mem, p, pkt.payload, head),
                None => ctx.keys.write(ctx.mem, p, pkt.payload).then_some(0),
            });
            let Some(crc) = written else {
                return self.fatal_if_intact(ctx, pkt, psn, NakCode::RemoteAccessError, None);
            };
            if head.is_some() && !ctx.icrc_placed(crc) {
                return;
            }
        }
        if !ctx.icrc_ok(pkt.payload) {
            return;
        }
        self.resp.write_va = self.resp.write_va.wrapping_add(u64::from(plen));
        self.resp.write_resid -= plen;
        self.resp.epsn = psn.add(1);
        self.resp.in_msg = if end { InMsg::None } else { InMsg::Write };
        if end {
            self.resp.msn = next_msn(self.resp.msn);
            if let Some(imm) = pkt.immdt {
                let c = Completion {
                    wr_id: self.resp.cur.wr_id,
                    status: WcStatus::Success,
                    opcode: WcOpcode::RecvRdmaWithImm,
                    byte_len: self.resp.write_len,
                    imm: Some(imm.imm_data),
                    invalidated_rkey: None,
                    qpn: self.qpn,
                    solicited: pkt.bth.solicited,
                };
                self.complete_recv(ctx, c);
            }
        }
        if pkt.bth.ack_req {
            let m = self.resp.msn;
            self.resp.queue_ack(psn, ack(), m);
        }
    }

    /// The RETH of a WRITE's first packet or a READ request, checked: it
    /// is present, its length within a message's, and (for a non-empty
    /// transfer) its rkey grants `access` over the whole range in this QP's
    /// PD. A zero-length transfer needs no valid rkey (IBA Vol 1 C9-88).
    /// The error is the NAK code to answer with.
    fn checked_reth<M: Memory + ?Sized>(
        &self,
        ctx: &Ctx<'_, M>,
        pkt: &PacketRepr<'_>,
        access: Access,
    ) -> Result<RethRepr, NakCode> {
        let reth = pkt.reth.ok_or(NakCode::InvalidRequest)?;
        if reth.dma_len > MAX_MESSAGE_LEN {
            return Err(NakCode::InvalidRequest);
        }
        if reth.dma_len > 0
            && ctx
                .keys
                .resolve_remote(
                    reth.rkey,
                    self.pd,
                    reth.virtual_addr,
                    u64::from(reth.dma_len),
                    access,
                )
                .is_err()
        {
            return Err(NakCode::RemoteAccessError);
        }
        Ok(reth)
    }

    fn exec_read<M: Memory + ?Sized>(
        &mut self,
        ctx: &mut Ctx<'_, M>,
        pkt: &PacketRepr<'_>,
        psn: Psn,
    ) {
        if !ctx.icrc_ok(pkt.payload) {
            return;
        }
        let reth = match self.checked_reth(ctx, pkt, Access::REMOTE_READ) {
            Ok(reth) => reth,
            Err(code) => return self.resp_fatal(ctx, psn, code, None),
        };
        let n = self.resp.res.len();
        if n == 0 {
            return self.resp_fatal(ctx, psn, NakCode::InvalidRequest, None);
        }
        let slot = self.resp.res_next % n;
        // The oldest resource is still answering: the requester exceeded
        // our max_dest_rd_atomic. Drop; its retry finds room later.
        if self.resp.res.get(slot).is_none_or(|r| r.queued)
            || self.resp.out.len() >= self.resp.out_cap
        {
            return;
        }
        let npkts = packets(reth.dma_len, self.mtu());
        // the Linux rxe captures in crates/roce/tests/data: the MSN counts a READ when it arrives.
        self.resp.msn = next_msn(self.resp.msn);
        if let Some(r) = self.resp.res.get_mut(slot) {
            *r = ReadRes {
                valid: true,
                first_psn: psn,
                last_psn: psn.add(npkts - 1),
                rkey: reth.rkey,
                va: reth.virtual_addr,
                len: reth.dma_len,
                msn: self.resp.msn,
                queued: true,
                start_psn: psn,
                cur_psn: psn,
                cur_va: reth.virtual_addr,
                resid: reth.dma_len,
            };
        }
        self.resp.res_next = self.resp.res_next.wrapping_add(1);
        self.resp.out.push_back(Out::Read(slot));
        self.resp.epsn = psn.add(npkts);
    }

    /// A request PSN before the expected one (IBA Vol 1 ch. 9 (NAKs, duplicates); Linux rxe_resp.c).
    fn duplicate(&mut self, pkt: &PacketRepr<'_>, psn: Psn) {
        match pkt.bth.opcode.class() {
            OpClass::Send | OpClass::RdmaWrite => {
                let (p, m) = (self.resp.epsn.sub(1), self.resp.msn);
                self.resp.queue_ack(p, ack(), m);
            }
            OpClass::RdmaReadRequest => {
                let Some(reth) = pkt.reth else {
                    return;
                };
                let mtu = u64::from(self.mtu());
                let found = self.resp.res.iter().position(|r| {
                    r.valid
                        && psn.in_range(r.first_psn, r.last_psn.add(1))
                        && r.rkey == reth.rkey
                        && reth.virtual_addr.checked_sub(r.va)
                            == Some(psn.diff(r.first_psn) as u64 * mtu)
                        && psn.add(packets(reth.dma_len, self.mtu()) - 1) == r.last_psn
                        && reth.virtual_addr.checked_add(u64::from(reth.dma_len))
                            == r.va.checked_add(u64::from(r.len))
                });
                let Some(i) = found else {
                    return;
                };
                let room = self.resp.out.len() < self.resp.out_cap;
                let Some(r) = self.resp.res.get_mut(i) else {
                    return;
                };
                r.start_psn = psn;
                r.cur_psn = psn;
                r.cur_va = reth.virtual_addr;
                r.resid = reth.dma_len;
                if !r.queued && room {
                    r.queued = true;
                    self.resp.out.push_back(Out::Read(i));
                }
            }
            _ => {}
        }
    }

    /// A request the responder cannot execute: the current receive (if
    /// any) completes with `recv_status`, the QP enters Error, and the NAK
    /// is the last thing it sends (IBA Vol 1 ch. 9 (NAKs, duplicates); Linux rxe_resp.c).
    fn resp_fatal<M: Memory + ?Sized>(
        &mut self,
        ctx: &mut Ctx<'_, M>,
        psn: Psn,
        code: NakCode,
        recv_status: Option<WcStatus>,
    ) {
        if let (Some(status), true) = (recv_status, self.resp.cur.active) {
            let c = Completion {
                wr_id: self.resp.cur.wr_id,
                status,
                opcode: WcOpcode::Recv,
                byte_len: 0,
                imm: None,
                invalidated_rkey: None,
                qpn: self.qpn,
                solicited: false,
            };
            self.complete_recv(ctx, c);
        }
        let event = match code {
            NakCode::InvalidRequest => WcStatus::RemInvReqErr,
            NakCode::RemoteAccessError => WcStatus::RemAccessErr,
            _ => WcStatus::RemOpErr,
        };
        self.enter_error(ctx, None);
        let m = self.resp.msn;
        self.resp.queue_ack(psn, Syndrome::Nak(code), m);
        self.resp.fatal_after_nak = Some(recv_status.unwrap_or(event));
    }

    /// The next ACK/NAK or READ response packet.
    pub(crate) fn poll_response<M: Memory + ?Sized>(
        &mut self,
        ctx: &mut Ctx<'_, M>,
        buf: &mut [u8],
    ) -> Produced {
        loop {
            let Some(&front) = self.resp.out.front() else {
                return Produced::Nothing;
            };
            let dest = self.dest_qpn();
            match front {
                Out::Ack { psn, syndrome, msn } => {
                    let mut repr = PacketRepr::new(
                        BthRepr::new(Opcode::RcAcknowledge, dest, psn.value()),
                        &[],
                    );
                    repr.aeth = Some(AethRepr { syndrome, msn });
                    return match emit_packet(repr, 0, buf, &mut ctx.tx_payload_crc, |_| None) {
                        Ok(n) => {
                            self.resp.out.pop_front();
                            if let (Syndrome::Nak(_), Some(status)) =
                                (syndrome, self.resp.fatal_after_nak)
                            {
                                self.resp.fatal_after_nak = None;
                                ctx.events.push(Event::QpFatal {
                                    qpn: self.qpn,
                                    status,
                                });
                            }
                            Produced::Packet(n)
                        }
                        Err(_) => Produced::NoRoom,
                    };
                }
                Out::Read(slot) => {
                    if self.attrs.state == QpState::Error {
                        self.resp.out.pop_front();
                        continue;
                    }
                    let Some(r) = self.resp.res.get(slot).copied() else {
                        self.resp.out.pop_front();
                        continue;
                    };
                    let mtu = self.mtu();
                    let n = r.resid.min(mtu);
                    let first = r.cur_psn == r.start_psn;
                    let last = r.resid <= mtu;
                    let opcode = match (first, last) {
                        (true, true) => Opcode::RcRdmaReadResponseOnly,
                        (true, false) => Opcode::RcRdmaReadResponseFirst,
                        (false, false) => Opcode::RcRdmaReadResponseMiddle,
                        (false, true) => Opcode::RcRdmaReadResponseLast,
                    };
                    let mut repr =
                        PacketRepr::new(BthRepr::new(opcode, dest, r.cur_psn.value()), &[]);
                    if opcode != Opcode::RcRdmaReadResponseMiddle {
                        repr.aeth = Some(AethRepr {
                            syndrome: ack(),
                            msn: r.msn,
                        });
                    }
                    // The rkey is checked again for every packet: the MR
                    // may have been invalidated since the request.
                    let place = if n > 0 {
                        ctx.keys
                            .resolve_remote(
                                r.rkey,
                                self.pd,
                                r.cur_va,
                                u64::from(n),
                                Access::REMOTE_READ,
                            )
                            .ok()
                    } else {
                        None
                    };
                    let keys = &*ctx.keys;
                    let mem = ctx.mem;
                    let res = emit_packet(repr, n as usize, buf, &mut ctx.tx_payload_crc, |dst| {
                        place.and_then(|p| keys.read_crc(mem, p, dst, 0))
                    });
                    match res {
                        Ok(len) => {
                            if let Some(rr) = self.resp.res.get_mut(slot) {
                                rr.cur_psn = rr.cur_psn.add(1);
                                rr.cur_va = rr.cur_va.wrapping_add(u64::from(n));
                                rr.resid -= n;
                                if last {
                                    rr.queued = false;
                                }
                            }
                            if last {
                                self.resp.out.pop_front();
                            }
                            return Produced::Packet(len);
                        }
                        Err(EmitError::BufferTooSmall) => return Produced::NoRoom,
                        Err(EmitError::Memory) => {
                            self.resp.out.pop_front();
                            if let Some(rr) = self.resp.res.get_mut(slot) {
                                rr.queued = false;
                            }
                            self.resp_fatal(ctx, r.cur_psn, NakCode::RemoteAccessError, None);
                        }
                    }
                }
            }
        }
    }
}
