//! The completer: acknowledgements, NAKs and read responses coming back to
//! the requester (IBA Vol 1 ch. 9 (ACKs); Linux rxe_resp.c, IBA Vol 1 ch. 9 (requester retry); Linux rxe_comp.c; rxe_comp.c for shape). Implicit
//! acknowledgement of earlier PSNs, go-back-N on timeout, PSN sequence NAK
//! or missing read responses, retry and RNR retry budgets (7 = infinite),
//! RNR waits from the IBA timer table, and remote NAKs failing the request.

use core::time::Duration;

use super::cq::WcStatus;
use super::memory::Memory;
use super::psn::Psn;
use super::qp::{Ctx, Qp};
use super::qp_state::QpState;
use super::wqe::WqeOp;
use crate::time::Instant;
use crate::wire::aeth::{NakCode, Syndrome, rnr_timer_usecs};
use crate::wire::opcode::{OpClass, Position};
use crate::wire::packet::PacketRepr;

/// The completer's view of the send queue.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CompState {
    /// Oldest unacknowledged PSN.
    pub(crate) psn: Psn,
    /// First PSN never assigned to a request.
    pub(crate) sent_end: Psn,
    /// Retries left in this episode (reset on progress).
    pub(crate) retry_left: u8,
    /// RNR retries left.
    pub(crate) rnr_left: u8,
    /// Retransmit deadline.
    pub(crate) timer: Option<Instant>,
    /// Waiting out an RNR NAK until then.
    pub(crate) rnr_until: Option<Instant>,
    /// A go-back-N from this PSN already started: NAKs and gaps for the
    /// same PSN do not start another until progress (rxe's started_retry).
    pub(crate) retried_at: Option<Psn>,
    /// First PSN never transmitted: a packet below it is a retransmission.
    pub(crate) sent_high: Psn,
    /// Early retransmit (probe) deadline, a few round trips after the last
    /// progress: see [`Qp::probe_timeout`].
    pub(crate) probe: Option<Instant>,
    /// Probes made since the last progress; after [`PROBES`] only the ACK
    /// timeout is waited for.
    pub(crate) probes_used: u8,
    /// The packet being timed: its PSN and when it was first sent.
    pub(crate) rtt_sample: Option<(Psn, Instant)>,
    /// Doublings of the probe deadline: one per probe, cleared by the next
    /// round-trip sample (a probe that fired too early leaves only resent
    /// packets, which Karn's rule never times, so the estimate alone would
    /// never grow).
    pub(crate) probe_backoff: u8,
    /// Smoothed round trip and its mean deviation, nanoseconds (0: none
    /// measured yet).
    pub(crate) srtt: u64,
    pub(crate) rttvar: u64,
}

/// Early retransmits per episode without progress; after them only the
/// ACK timeout (which spends the retry budget) acts.
pub(crate) const PROBES: u8 = 2;
/// The probe deadline before any round trip was measured.
const PROBE_INITIAL: Duration = Duration::from_millis(1);
/// The shortest probe deadline: above timer and scheduling granularity of
/// an ordinary host, far below any ACK timeout CM negotiates.
const PROBE_MIN: Duration = Duration::from_micros(200);

impl CompState {
    pub(crate) fn stop_timers(&mut self) {
        self.timer = None;
        self.rnr_until = None;
        self.retried_at = None;
        self.probe = None;
        self.rtt_sample = None;
    }

    /// A round-trip sample (the smoothing of RFC 6298 section 2, in
    /// integers).
    fn rtt_update(&mut self, sample: Duration) {
        let r = u64::try_from(sample.as_nanos()).unwrap_or(u64::MAX);
        if self.srtt == 0 {
            self.srtt = r.max(1);
            self.rttvar = r / 2;
        } else {
            let dev = self.srtt.abs_diff(r);
            self.rttvar = self.rttvar - self.rttvar / 4 + dev / 4;
            self.srtt = (self.srtt - self.srtt / 8 + r / 8).max(1);
        }
    }
    /// Whether any assigned PSN is unacknowledged.
    pub(crate) fn outstanding(&self) -> bool {
        self.psn != self.sent_end
    }
}

impl Qp {
    /// An ACK, NAK or read response addressed to this QP's requester.
    pub(crate) fn handle_response<M: Memory + ?Sized>(
        &mut self,
        ctx: &mut Ctx<'_, M>,
        pkt: &PacketRepr<'_>,
    ) {
        if !matches!(self.attrs.state, QpState::Rts | QpState::Sqd) {
            return;
        }
        let psn = Psn::new(pkt.bth.psn);
        // Only PSNs this requester assigned can be acknowledged.
        if !psn.before(self.comp.sent_end) {
            return;
        }
        match pkt.bth.opcode.class() {
            OpClass::Acknowledge => {
                if !ctx.icrc_ok(pkt.payload) {
                    return;
                }
                let Some(aeth) = pkt.aeth else {
                    return;
                };
                match aeth.syndrome {
                    Syndrome::Ack { .. } => self.ack_through(ctx, psn),
                    Syndrome::RnrNak { timer } => self.on_rnr(ctx, psn, timer),
                    Syndrome::Nak(NakCode::PsnSequenceError) => self.on_seq_nak(ctx, psn),
                    Syndrome::Nak(NakCode::InvalidRequest) => {
                        self.on_fatal_nak(ctx, psn, WcStatus::RemInvReqErr)
                    }
                    Syndrome::Nak(NakCode::RemoteAccessError) => {
                        self.on_fatal_nak(ctx, psn, WcStatus::RemAccessErr)
                    }
                    // IBA Vol 1 ch. 9 (extended transport headers); Linux rxe_hdr.h: unknown NAK codes are remote operational errors.
                    Syndrome::Nak(_) | Syndrome::Reserved(_) => {
                        self.on_fatal_nak(ctx, psn, WcStatus::RemOpErr)
                    }
                }
            }
            OpClass::RdmaReadResponse => self.on_read_response(ctx, pkt, psn),
            // Atomic ACKs answer atomics, which this requester never sends.
            _ => {}
        }
    }

    /// Everything up to and including `a` is acknowledged (IBA Vol 1 ch. 9 (ACKs); Linux rxe_resp.c):
    /// complete SEND/WRITE WQEs that end at or before it; a READ that
    /// ends before it without all its data means responses were lost.
    pub(crate) fn ack_through<M: Memory + ?Sized>(&mut self, ctx: &mut Ctx<'_, M>, a: Psn) {
        let mut progress = false;
        loop {
            if self.attrs.state == QpState::Error {
                return;
            }
            let Some(w) = self.sq.get(self.sq.head).copied() else {
                break;
            };
            if let Some(status) = w.local_done {
                self.complete_head(ctx, status);
                if status.is_error() {
                    self.enter_error(ctx, Some(status));
                    return;
                }
                continue;
            }
            if !w.started {
                break;
            }
            if w.last_psn.before_eq(a) {
                if w.op.is_read() {
                    self.retry(ctx, false);
                    return;
                }
                self.comp.psn = w.last_psn.add(1);
                self.complete_head(ctx, WcStatus::Success);
                progress = true;
            } else {
                // A coalesced ACK inside a multi-packet SEND/WRITE (AckReq
                // every 64 packets, Linux rxe_req.c (AckReq)).
                if !w.op.is_read() && w.first_psn.before_eq(a) && self.comp.psn.before_eq(a) {
                    self.comp.psn = a.add(1);
                    progress = true;
                }
                break;
            }
        }
        if progress {
            self.on_progress(ctx);
        }
    }

    /// Complete WQEs at the head whose outcome is already known (executed
    /// local operations, or requests that failed locally).
    pub(crate) fn complete_local_at_head<M: Memory + ?Sized>(&mut self, ctx: &mut Ctx<'_, M>) {
        while self.attrs.state != QpState::Error {
            let Some(w) = self.sq.get(self.sq.head).copied() else {
                break;
            };
            let Some(status) = w.local_done else {
                break;
            };
            self.complete_head(ctx, status);
            if status.is_error() {
                self.enter_error(ctx, Some(status));
                return;
            }
        }
        self.check_drained(ctx);
    }

    fn on_progress<M: Memory + ?Sized>(&mut self, ctx: &mut Ctx<'_, M>) {
        // rxe resets both budgets whenever an ACK moves things forward.
        self.comp.retry_left = self.attrs.retry_cnt;
        self.comp.rnr_left = self.attrs.rnr_retry;
        self.comp.retried_at = None;
        self.comp.probes_used = 0;
        if let Some((p, sent)) = self.comp.rtt_sample
            && p.before(self.comp.psn)
        {
            self.comp.rtt_sample = None;
            self.comp.probe_backoff = 0;
            self.comp
                .rtt_update(ctx.now.saturating_duration_since(sent));
        }
        if self.comp.outstanding() {
            self.comp.timer = self.attrs.ack_timeout().map(|d| ctx.now + d);
            self.comp.probe = self.probe_timeout().map(|d| ctx.now + d);
        } else {
            self.comp.timer = None;
            self.comp.probe = None;
        }
        self.complete_local_at_head(ctx);
        self.catch_up();
    }

    /// An acknowledgement overtook a go-back-N: the ACK of the original
    /// transmission arrived while the requester was resending what it
    /// covers. The requester resumes at the oldest unacknowledged PSN, in
    /// the request that holds it, so that no packet goes out with a PSN of
    /// an earlier request (IBA Vol 1 ch. 9 (requester retry); Linux
    /// rxe_comp.c). Without this, a completed request moved the requester
    /// to the next one's first packet at the old PSN, and the responder,
    /// already inside that request, failed it with an Invalid Request NAK.
    fn catch_up(&mut self) {
        if self.attrs.state == QpState::Error || !self.req.psn.before(self.comp.psn) {
            return;
        }
        if self.comp.outstanding() {
            self.go_back_n();
        } else {
            // Everything sent is acknowledged: the next request starts
            // fresh at the first PSN never assigned.
            self.req.psn = self.comp.psn;
            self.req.offset = 0;
            self.req.noack = 0;
        }
    }

    /// How long the requester waits without progress before it resends
    /// from the oldest unacknowledged PSN on its own: twice the smoothed
    /// round trip plus four deviations, at least [`PROBE_MIN`], doubled for
    /// every probe since the last round-trip sample; `None` when that is
    /// not shorter than the ACK timeout, or the timeout is infinite (IBA
    /// Vol 1 ch. 9 (requester retry): then nothing is resent).
    ///
    /// A loss that a sequence NAK or a READ response's PSN reveals is
    /// resent at once (IBA Vol 1 ch. 9 (requester retry); Linux
    /// rxe_comp.c). What neither reveals (the NAK itself lost, the resent
    /// packet lost again while the responder stays silent for the rest of
    /// the gap as Linux rxe_resp.c check_psn does, or the last packets of a
    /// burst lost) would otherwise wait the whole ACK timeout, about 2.1 s
    /// at the value CM negotiates. A resend is always safe on RC: the
    /// responder re-acknowledges duplicates and replays duplicate READs
    /// (IBA Vol 1 ch. 9 (NAKs, duplicates); Linux rxe_resp.c). These early
    /// resends do not spend the retry count, which counts ACK timeouts;
    /// after [`PROBES`] of them without progress only the ACK timeout acts,
    /// so a dead peer still fails on the IBA schedule. The smoothing is
    /// RFC 6298 section 2's.
    pub(crate) fn probe_timeout(&self) -> Option<Duration> {
        let ack = self.attrs.ack_timeout()?;
        let d = if self.comp.srtt == 0 {
            PROBE_INITIAL
        } else {
            let ns = self
                .comp
                .srtt
                .saturating_mul(2)
                .saturating_add(self.comp.rttvar.saturating_mul(4));
            Duration::from_nanos(ns).max(PROBE_MIN)
        };
        let d = d.saturating_mul(1 << self.comp.probe_backoff.min(16));
        (d < ack).then_some(d)
    }

    /// Start a go-back-N retry, spending one retry (IBA Vol 1 ch. 9 (requester retry); Linux rxe_comp.c).
    pub(crate) fn retry<M: Memory + ?Sized>(&mut self, ctx: &mut Ctx<'_, M>, from_timer: bool) {
        if !self.comp.outstanding() {
            return;
        }
        if !from_timer && self.comp.retried_at == Some(self.comp.psn) {
            return;
        }
        if self.attrs.retry_cnt != 7 {
            if self.comp.retry_left == 0 {
                self.fail_head(ctx, WcStatus::RetryExcErr);
                return;
            }
            self.comp.retry_left -= 1;
        }
        self.comp.retried_at = Some(self.comp.psn);
        self.go_back_n();
        self.comp.timer = None;
    }

    /// The probe deadline passed without progress: resend from the oldest
    /// unacknowledged PSN without spending a retry ([`Qp::probe_timeout`]).
    fn probe_fired(&mut self) {
        if !self.comp.outstanding() || self.comp.probes_used >= PROBES {
            return;
        }
        self.comp.probes_used += 1;
        self.comp.probe_backoff = self.comp.probe_backoff.saturating_add(1);
        self.comp.retried_at = Some(self.comp.psn);
        self.go_back_n();
    }

    /// The link refused one of this QP's datagrams for its size: the
    /// oldest request (the one being sent, or whose response could not go
    /// out) fails with a local length error, as a message the port cannot
    /// carry does on verbs (IBV_WC_LOC_LEN_ERR), and the QP enters Error.
    /// With no request outstanding (a refused Read response), the QP
    /// enters Error with that status as its fatal event.
    pub(crate) fn fail_on_link<M: Memory + ?Sized>(&mut self, ctx: &mut Ctx<'_, M>) {
        if self.attrs.state == QpState::Error {
            return;
        }
        if self.sq.head < self.sq.tail {
            self.fail_head(ctx, WcStatus::LocLenErr);
        } else {
            self.enter_error(ctx, Some(WcStatus::LocLenErr));
        }
    }

    /// The oldest request fails with `status`; the QP enters Error and
    /// flushes the rest.
    fn fail_head<M: Memory + ?Sized>(&mut self, ctx: &mut Ctx<'_, M>, status: WcStatus) {
        if self.attrs.state == QpState::Error {
            return;
        }
        self.complete_head(ctx, status);
        self.enter_error(ctx, Some(status));
    }

    /// Rewind the requester to the oldest unacknowledged PSN: the WQE that
    /// holds it is resent from that packet on (a READ asks only for the
    /// responses still missing).
    pub(crate) fn go_back_n(&mut self) {
        // Karn: an ACK after a resend does not time the first send.
        self.comp.rtt_sample = None;
        self.comp.probe = None;
        let mtu = self.mtu();
        let mut i = self.sq.head;
        while i < self.sq.tail {
            let Some(w) = self.sq.get(i).copied() else {
                break;
            };
            if !w.started {
                if w.local_done.is_some() {
                    i += 1;
                    continue;
                }
                break;
            }
            if self.comp.psn.before_eq(w.last_psn) {
                let pkts = u32::try_from(self.comp.psn.diff(w.first_psn).max(0)).unwrap_or(0);
                self.sq.cur = i;
                self.req.psn = self.comp.psn;
                self.req.offset = pkts.saturating_mul(mtu).min(w.length);
                self.req.noack = 0;
                return;
            }
            i += 1;
        }
    }

    fn on_rnr<M: Memory + ?Sized>(&mut self, ctx: &mut Ctx<'_, M>, p: Psn, timer: u8) {
        if p.before(self.comp.psn) {
            return;
        }
        // A duplicate of the RNR NAK being waited out.
        if self.comp.rnr_until.is_some() && p == self.comp.psn {
            return;
        }
        self.ack_through(ctx, p.sub(1));
        if self.attrs.state == QpState::Error || self.comp.psn != p {
            return;
        }
        if self.attrs.rnr_retry != 7 {
            if self.comp.rnr_left == 0 {
                self.fail_head(ctx, WcStatus::RnrRetryExcErr);
                return;
            }
            self.comp.rnr_left -= 1;
        }
        self.go_back_n();
        self.comp.timer = None;
        let us = rnr_timer_usecs(timer).unwrap_or(655_360);
        self.comp.rnr_until = Some(ctx.now + Duration::from_micros(u64::from(us)));
    }

    fn on_seq_nak<M: Memory + ?Sized>(&mut self, ctx: &mut Ctx<'_, M>, p: Psn) {
        if p.before(self.comp.psn) {
            return;
        }
        // IBA Vol 1 ch. 9 (requester retry); Linux rxe_comp.c: the NAK first acknowledges everything before p.
        self.ack_through(ctx, p.sub(1));
        if self.attrs.state == QpState::Error || self.comp.rnr_until.is_some() || self.comp.psn != p
        {
            return;
        }
        self.retry(ctx, false);
    }

    fn on_fatal_nak<M: Memory + ?Sized>(&mut self, ctx: &mut Ctx<'_, M>, p: Psn, status: WcStatus) {
        if p.before(self.comp.psn) {
            return;
        }
        self.ack_through(ctx, p.sub(1));
        self.fail_head(ctx, status);
    }

    fn on_read_response<M: Memory + ?Sized>(
        &mut self,
        ctx: &mut Ctx<'_, M>,
        pkt: &PacketRepr<'_>,
        p: Psn,
    ) {
        if p.before(self.comp.psn) {
            return;
        }
        // Only the expected response of the READ at the head may leave a
        // deferred ICRC check to the placement of its payload: for it the
        // implicit ACK below changes nothing.
        let expected = p == self.comp.psn
            && self.sq.get(self.sq.head).is_some_and(|w| {
                matches!(w.op, WqeOp::Read { .. })
                    && w.started
                    && w.local_done.is_none()
                    && p.in_range(w.first_psn, w.last_psn.add(1))
            });
        if !expected && !ctx.icrc_ok(pkt.payload) {
            return;
        }
        self.ack_through(ctx, p.sub(1));
        if !matches!(self.attrs.state, QpState::Rts | QpState::Sqd) {
            return;
        }
        let idx = self.sq.head;
        let Some(w) = self.sq.get(idx).copied() else {
            return;
        };
        if !matches!(w.op, WqeOp::Read { .. })
            || !w.started
            || !p.in_range(w.first_psn, w.last_psn.add(1))
        {
            return;
        }
        if p != self.comp.psn {
            // Responses missing before this one: go back (IBA Vol 1 ch. 9 (requester retry); Linux rxe_comp.c).
            self.retry(ctx, false);
            return;
        }
        let mtu = self.mtu();
        let k = u32::try_from(p.diff(w.first_psn)).unwrap_or(0);
        let offset = k.saturating_mul(mtu);
        let expect = w.length.saturating_sub(offset).min(mtu) as usize;
        let last = p == w.last_psn;
        let pos = pkt.bth.opcode.position();
        // A reissued READ is answered from First/Only again, so the
        // position is checked against last/not-last only.
        let pos_ok = if last {
            matches!(pos, Position::Last | Position::Only)
        } else {
            matches!(pos, Position::First | Position::Middle)
        };
        if !pos_ok || pkt.payload.len() != expect {
            return;
        }
        let placed = ctx.keys.scatter_crc(
            ctx.mem,
            self.pd,
            self.sq.sges(idx),
            offset,
            pkt.payload,
            ctx.icrc_head(),
        );
        match placed {
            Err(status) => {
                if ctx.icrc_ok(pkt.payload) {
                    self.fail_head(ctx, status);
                }
                return;
            }
            Ok(Some(crc)) if !ctx.icrc_placed(crc) => return,
            Ok(_) => {}
        }
        if !ctx.icrc_ok(pkt.payload) {
            return;
        }
        self.comp.psn = p.add(1);
        if last {
            self.complete_head(ctx, WcStatus::Success);
        }
        self.on_progress(ctx);
    }

    /// The earliest timer of this QP's requester.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        if !matches!(self.attrs.state, QpState::Rts | QpState::Sqd) {
            return None;
        }
        if let Some(rnr) = self.comp.rnr_until {
            return Some(self.comp.timer.map_or(rnr, |t| t.min(rnr)));
        }
        match (self.comp.timer, self.comp.probe) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Run expired timers: the RNR wait ends (the rewound requester
    /// resends), or the retransmit timer fires a go-back-N.
    pub(crate) fn handle_timer<M: Memory + ?Sized>(&mut self, ctx: &mut Ctx<'_, M>) {
        if self.comp.rnr_until.is_some_and(|t| ctx.now >= t) {
            self.comp.rnr_until = None;
        }
        if self.comp.timer.is_some_and(|t| ctx.now >= t) {
            self.comp.timer = None;
            self.retry(ctx, true);
        } else if self.comp.rnr_until.is_none() && self.comp.probe.is_some_and(|t| ctx.now >= t) {
            self.comp.probe = None;
            self.probe_fired();
        }
    }
}
