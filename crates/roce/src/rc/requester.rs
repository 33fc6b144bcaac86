//! The requester: turns send work requests into request packets
//! (IBA Vol 1 ch. 9 (PSN arithmetic); Linux rxe_hdr.h psn_compare-Linux rxe_req.c (AckReq), IBA Vol 1 ch. 9 (RDMA Read credits); Linux rxe_req.c; rxe_req.c for shape). Segmentation to the
//! path MTU with First/Middle/Last/Only, AckReq on message ends and every
//! 64 packets, READs reserving one PSN per response packet, the window of
//! 128 unacknowledged PSNs, read credits, read fences, and local memory
//! operations executed in queue order.

use super::completer::PROBES;
use super::cq::WcStatus;
use super::memory::Memory;
use super::psn::Psn;
use super::qp::{Ctx, MAX_PKTS_PER_ACK, MAX_UNACKED_PSNS, Qp};
use super::qp_state::QpState;
use super::tx::{EmitError, emit_packet};
use super::wqe::{SendWqe, WqeOp, packets};
use crate::wire::bth::BthRepr;
use crate::wire::crc32;
use crate::wire::ieth::IethRepr;
use crate::wire::immdt::ImmDtRepr;
use crate::wire::opcode::Opcode;
use crate::wire::packet::PacketRepr;
use crate::wire::reth::RethRepr;

/// The requester's position in the send queue.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReqState {
    /// PSN of the next request packet.
    pub(crate) psn: Psn,
    /// Bytes of WQE `sq.cur` already sent (for a READ: already received,
    /// so a retry asks only for the rest, IBA Vol 1 ch. 9 (requester retry); Linux rxe_comp.c).
    pub(crate) offset: u32,
    /// Packets sent since the last one with AckReq.
    pub(crate) noack: u32,
    /// READs in flight (bounded by max_rd_atomic, IBA Vol 1 ch. 9 (RDMA Read credits); Linux rxe_req.c).
    pub(crate) reads: u32,
}

impl ReqState {
    pub(crate) fn reset_progress(&mut self) {
        self.offset = 0;
        self.noack = 0;
        self.reads = 0;
    }
}

/// Outcome of asking a role for a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Produced {
    /// A packet of this many bytes is in the buffer.
    Packet(usize),
    /// Nothing to send now.
    Nothing,
    /// The buffer is too small; nothing changed.
    NoRoom,
}

/// The opcode of a SEND/WRITE packet at this position (IBA Vol 1 ch. 9 (opcodes); Linux rxe_opcode.c, IBA Vol 1 ch. 9 (segmentation at the path MTU); Linux rxe_req.c).
pub(crate) fn request_opcode(op: &WqeOp, first: bool, last: bool) -> Opcode {
    use Opcode::*;
    match (op, first, last) {
        (WqeOp::Write { imm: None, .. }, true, true) => RcRdmaWriteOnly,
        (WqeOp::Write { imm: Some(_), .. }, true, true) => RcRdmaWriteOnlyWithImmediate,
        (WqeOp::Write { .. }, true, false) => RcRdmaWriteFirst,
        (WqeOp::Write { .. }, false, false) => RcRdmaWriteMiddle,
        (WqeOp::Write { imm: None, .. }, false, true) => RcRdmaWriteLast,
        (WqeOp::Write { imm: Some(_), .. }, false, true) => RcRdmaWriteLastWithImmediate,
        (WqeOp::SendImm(_), true, true) => RcSendOnlyWithImmediate,
        (WqeOp::SendImm(_), false, true) => RcSendLastWithImmediate,
        (WqeOp::SendInv(_), true, true) => RcSendOnlyWithInvalidate,
        (WqeOp::SendInv(_), false, true) => RcSendLastWithInvalidate,
        (_, true, true) => RcSendOnly,
        (_, true, false) => RcSendFirst,
        (_, false, false) => RcSendMiddle,
        (_, false, true) => RcSendLast,
    }
}

impl Qp {
    /// The next request packet, if the send queue has one that may go now.
    pub(crate) fn poll_request<M: Memory + ?Sized>(
        &mut self,
        ctx: &mut Ctx<'_, M>,
        buf: &mut [u8],
    ) -> Produced {
        loop {
            let state = self.attrs.state;
            if !matches!(state, QpState::Rts | QpState::Sqd) || self.comp.rnr_until.is_some() {
                return Produced::Nothing;
            }
            let idx = self.sq.cur;
            if idx >= self.sq.doorbell || idx >= self.sq.tail {
                return Produced::Nothing;
            }
            let Some(wqe) = self.sq.get(idx).copied() else {
                return Produced::Nothing;
            };
            let fresh = !wqe.started && wqe.local_done.is_none();
            // IBA SQD: nothing new starts; what was started finishes.
            if fresh && state == QpState::Sqd {
                return Produced::Nothing;
            }
            // NDK READ_FENCE (ndkpi.h NDK_OP_FLAG_*): earlier READs first.
            if fresh && wqe.fence && self.req.reads > 0 {
                return Produced::Nothing;
            }
            if let Some(status) = wqe.local_done {
                if wqe.op.is_local() && !status.is_error() {
                    // Executed earlier; a go-back-N passes over it.
                    self.sq.cur += 1;
                    self.req.offset = 0;
                    continue;
                }
                // A failed WQE waits at its place for earlier ones to
                // complete, then completes with its error (IBA Vol 1 ch. 9 (requester retry); Linux rxe_comp.c).
                self.complete_local_at_head(ctx);
                return Produced::Nothing;
            }
            if wqe.op.is_local() {
                // A local invalidate waits for every earlier request, so
                // no retransmission can read memory it took away.
                if matches!(wqe.op, WqeOp::LocalInv(_)) && self.sq.head < idx {
                    return Produced::Nothing;
                }
                let status = self.exec_local(ctx, &wqe.op);
                if let Some(w) = self.sq.get_mut(idx) {
                    w.local_done = Some(status);
                }
                if !status.is_error() {
                    self.sq.cur += 1;
                    self.req.offset = 0;
                }
                self.complete_local_at_head(ctx);
                continue;
            }
            if wqe.op.is_read() && !wqe.read_counted && self.req.reads >= self.attrs.max_rd_atomic {
                return Produced::Nothing;
            }
            if self.req.psn.diff(self.comp.psn) >= MAX_UNACKED_PSNS {
                return Produced::Nothing;
            }
            return self.emit_request(ctx, idx, wqe, buf);
        }
    }

    fn exec_local<M: Memory + ?Sized>(&mut self, ctx: &mut Ctx<'_, M>, op: &WqeOp) -> WcStatus {
        match *op {
            WqeOp::LocalInv(t) => match ctx.keys.local_invalidate(t, self.pd) {
                Ok(()) => WcStatus::Success,
                Err(_) => WcStatus::LocQpOpErr,
            },
            WqeOp::FastReg { mr, key, p } => match ctx.keys.exec_fast_reg(mr, key, &p) {
                Ok(()) => WcStatus::Success,
                Err(_) => WcStatus::LocQpOpErr,
            },
            WqeOp::Bind {
                mw,
                key,
                mr,
                iova,
                length,
                access,
            } => match ctx
                .keys
                .exec_bind(mw, key, mr, self.pd, iova, length, access)
            {
                Ok(()) => WcStatus::Success,
                Err(_) => WcStatus::MwBindErr,
            },
            _ => WcStatus::LocQpOpErr,
        }
    }

    fn emit_request<M: Memory + ?Sized>(
        &mut self,
        ctx: &mut Ctx<'_, M>,
        idx: u64,
        wqe: SendWqe,
        buf: &mut [u8],
    ) -> Produced {
        let mtu = self.mtu();
        let dest = self.dest_qpn();
        let psn = self.req.psn;
        let (first_psn, last_psn) = if wqe.started {
            (wqe.first_psn, wqe.last_psn)
        } else {
            // IBA Vol 1 ch. 9 (PSN arithmetic); Linux rxe_hdr.h psn_compare: a READ reserves one PSN per response packet.
            (psn, psn.add(packets(wqe.length, mtu) - 1))
        };
        let offset = self.req.offset.min(wqe.length);
        let result = if let WqeOp::Read { addr, rkey } = wqe.op {
            let mut bth = BthRepr::new(Opcode::RcRdmaReadRequest, dest, psn.value());
            bth.ack_req = true;
            let mut repr = PacketRepr::new(bth, &[]);
            repr.reth = Some(RethRepr {
                virtual_addr: addr.wrapping_add(u64::from(offset)),
                rkey,
                dma_len: wqe.length - offset,
            });
            emit_packet(repr, 0, buf, &mut ctx.tx_payload_crc, |_| None)
                .map(|n| (n, true, true, true))
        } else {
            let rem = wqe.length - offset;
            let n = rem.min(mtu);
            let first = offset == 0;
            let last = rem <= mtu;
            let mut bth = BthRepr::new(request_opcode(&wqe.op, first, last), dest, psn.value());
            bth.ack_req = last || self.req.noack + 1 >= MAX_PKTS_PER_ACK;
            // IBA Vol 1 ch. 9 (BTH); Linux rxe_hdr.h: SE only on the last packet of a SEND or WRITE
            // with immediate that asked for it.
            bth.solicited = last
                && wqe.solicited
                && matches!(
                    wqe.op,
                    WqeOp::Send
                        | WqeOp::SendImm(_)
                        | WqeOp::SendInv(_)
                        | WqeOp::Write { imm: Some(_), .. }
                );
            let ack_req = bth.ack_req;
            let mut repr = PacketRepr::new(bth, &[]);
            match wqe.op {
                WqeOp::Write { addr, rkey, imm } => {
                    if first {
                        repr.reth = Some(RethRepr {
                            virtual_addr: addr,
                            rkey,
                            dma_len: wqe.length,
                        });
                    }
                    if last {
                        repr.immdt = imm.map(|imm_data| ImmDtRepr { imm_data });
                    }
                }
                WqeOp::SendImm(imm_data) if last => repr.immdt = Some(ImmDtRepr { imm_data }),
                WqeOp::SendInv(rkey) if last => repr.ieth = Some(IethRepr { rkey }),
                _ => {}
            }
            let sq = &self.sq;
            let keys = &*ctx.keys;
            let mem = ctx.mem;
            let pd = self.pd;
            let mut status = WcStatus::LocProtErr;
            let r = emit_packet(repr, n as usize, buf, &mut ctx.tx_payload_crc, |dst| {
                if wqe.inline {
                    let start = offset as usize;
                    let src = sq.inline(idx).get(start..start + dst.len())?;
                    crc32::copy_update(0, dst, src)
                } else {
                    match keys.gather(mem, pd, sq.sges(idx), offset, dst) {
                        Ok(crc) => Some(crc),
                        Err(s) => {
                            status = s;
                            None
                        }
                    }
                }
            });
            match r {
                Ok(len) => {
                    self.req.offset = offset + n;
                    Ok((len, last, ack_req, false))
                }
                Err(EmitError::Memory) => {
                    // A local protection/access error (IBA class: the WQE
                    // completes in error in order, then the QP errors).
                    if let Some(w) = self.sq.get_mut(idx) {
                        w.local_done = Some(status);
                    }
                    self.complete_local_at_head(ctx);
                    return Produced::Nothing;
                }
                Err(e) => Err(e),
            }
        };
        let Ok((len, last, ack_req, is_read)) = result else {
            return Produced::NoRoom;
        };
        if let Some(w) = self.sq.get_mut(idx) {
            if !w.started {
                w.started = true;
                w.first_psn = first_psn;
                w.last_psn = last_psn;
                self.comp.sent_end = last_psn.add(1);
            }
            if is_read && !w.read_counted {
                w.read_counted = true;
                self.req.reads += 1;
            }
        }
        self.req.noack = if ack_req { 0 } else { self.req.noack + 1 };
        if is_read {
            self.req.psn = last_psn.add(1);
        } else {
            self.req.psn = psn.add(1);
        }
        // Time one first-sent packet that asks for an answer (Karn: never
        // a resent one).
        if !psn.before(self.comp.sent_high) {
            self.comp.sent_high = self.req.psn;
            if ack_req && self.comp.rtt_sample.is_none() {
                self.comp.rtt_sample = Some((psn, ctx.now));
            }
        }
        if last {
            self.sq.cur += 1;
            self.req.offset = 0;
        }
        // IBA Vol 1 ch. 9 (requester retry); Linux rxe_comp.c: the retransmit timer runs while PSNs are unacked.
        if self.comp.timer.is_none() {
            self.comp.timer = self.attrs.ack_timeout().map(|d| ctx.now + d);
        }
        if self.comp.probe.is_none() && self.comp.probes_used < PROBES {
            self.comp.probe = self.probe_timeout().map(|d| ctx.now + d);
        }
        Produced::Packet(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opcode_by_position() {
        let w = WqeOp::Write {
            addr: 0,
            rkey: 0,
            imm: None,
        };
        let wi = WqeOp::Write {
            addr: 0,
            rkey: 0,
            imm: Some(1),
        };
        assert_eq!(request_opcode(&WqeOp::Send, true, true), Opcode::RcSendOnly);
        assert_eq!(
            request_opcode(&WqeOp::Send, true, false),
            Opcode::RcSendFirst
        );
        assert_eq!(
            request_opcode(&WqeOp::Send, false, false),
            Opcode::RcSendMiddle
        );
        assert_eq!(
            request_opcode(&WqeOp::Send, false, true),
            Opcode::RcSendLast
        );
        assert_eq!(
            request_opcode(&WqeOp::SendImm(1), true, true),
            Opcode::RcSendOnlyWithImmediate
        );
        assert_eq!(
            request_opcode(&WqeOp::SendImm(1), false, true),
            Opcode::RcSendLastWithImmediate
        );
        assert_eq!(
            request_opcode(&WqeOp::SendImm(1), false, false),
            Opcode::RcSendMiddle
        );
        assert_eq!(
            request_opcode(&WqeOp::SendInv(1), true, true),
            Opcode::RcSendOnlyWithInvalidate
        );
        assert_eq!(
            request_opcode(&WqeOp::SendInv(1), false, true),
            Opcode::RcSendLastWithInvalidate
        );
        assert_eq!(request_opcode(&w, true, true), Opcode::RcRdmaWriteOnly);
        assert_eq!(request_opcode(&w, true, false), Opcode::RcRdmaWriteFirst);
        assert_eq!(request_opcode(&w, false, false), Opcode::RcRdmaWriteMiddle);
        assert_eq!(request_opcode(&w, false, true), Opcode::RcRdmaWriteLast);
        assert_eq!(
            request_opcode(&wi, true, true),
            Opcode::RcRdmaWriteOnlyWithImmediate
        );
        assert_eq!(
            request_opcode(&wi, false, true),
            Opcode::RcRdmaWriteLastWithImmediate
        );
        assert_eq!(request_opcode(&wi, true, false), Opcode::RcRdmaWriteFirst);
    }
}
