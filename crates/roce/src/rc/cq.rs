//! Completion queues (the NDKPI completion handling requirements page): a preallocated ring, arming
//! with the NDK merge rule, one notification per arm, overflow as a CQ
//! error.

use alloc::vec;
use alloc::vec::Vec;

use super::Error;

/// Work completion status (IB `ib_wc_status`, IBA Vol 1 ch. 9 (requester retry); Linux rxe_comp.c). The NDK layer
/// maps these to NTSTATUS (the NDK_RESULT page, ND2 ndstatus.mc as the analog).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum WcStatus {
    /// Done.
    #[default]
    Success,
    /// Local length error (message larger than the receive buffers).
    LocLenErr,
    /// Local QP operation error (a local memory operation failed).
    LocQpOpErr,
    /// Local protection error (an SGE failed its key/bounds/rights check).
    LocProtErr,
    /// Flushed: the QP entered Error before this request ran.
    WrFlushErr,
    /// Memory window bind failed.
    MwBindErr,
    /// Unexpected response from the peer.
    BadRespErr,
    /// Local access error (memory could not be read or written).
    LocAccessErr,
    /// The peer NAKed with invalid request.
    RemInvReqErr,
    /// The peer NAKed with remote access error.
    RemAccessErr,
    /// The peer NAKed with remote operational error.
    RemOpErr,
    /// Transport retries exhausted.
    RetryExcErr,
    /// RNR retries exhausted.
    RnrRetryExcErr,
}

impl WcStatus {
    /// Anything but success.
    pub const fn is_error(self) -> bool {
        !matches!(self, WcStatus::Success)
    }
}

/// What a completion was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum WcOpcode {
    /// Send (plain, with immediate, with invalidate).
    #[default]
    Send,
    /// RDMA WRITE (plain or with immediate).
    RdmaWrite,
    /// RDMA READ.
    RdmaRead,
    /// Local invalidate.
    LocalInvalidate,
    /// Fast register.
    FastRegister,
    /// Memory window bind.
    BindMw,
    /// A receive consumed by a SEND.
    Recv,
    /// A receive consumed by an RDMA WRITE with immediate.
    RecvRdmaWithImm,
}

/// One completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Completion {
    /// The caller's id from the post.
    pub wr_id: u64,
    /// Outcome.
    pub status: WcStatus,
    /// Operation.
    pub opcode: WcOpcode,
    /// Bytes received (receives only).
    pub byte_len: u32,
    /// Immediate data (receives of ... with immediate).
    pub imm: Option<u32>,
    /// The rkey a SEND with invalidate invalidated (receives only).
    pub invalidated_rkey: Option<u32>,
    /// The local QP.
    pub qpn: u32,
    /// The SEND carried SE (receives only).
    pub solicited: bool,
}

/// What a CQ arm waits for (NDK_CQ_NOTIFY_*).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NotifyType {
    /// CQ errors (and, by project choice, error completions).
    Errors,
    /// Any completion.
    Any,
    /// A solicited receive completion, or any error completion.
    Solicited,
}

impl NotifyType {
    /// Merge of an arm with the one still pending (the NDKPI completion handling requirements page:
    /// ANY wins, then SOLICITED, then ERRORS).
    pub const fn merge(self, other: NotifyType) -> NotifyType {
        use NotifyType::*;
        match (self, other) {
            (Any, _) | (_, Any) => Any,
            (Solicited, _) | (_, Solicited) => Solicited,
            (Errors, Errors) => Errors,
        }
    }
}

/// What pushing a completion did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pushed {
    /// Stored; `notify` says the arm fired.
    Stored { notify: bool },
    /// The CQ was full: it is now in error; `report` says the error event
    /// is due now (the CQ was armed).
    Overflow { first: bool, report: bool },
    /// The CQ was already dead; the completion is lost.
    Dead,
}

/// A completion queue.
#[derive(Debug)]
pub(crate) struct Cq {
    ring: Vec<Completion>,
    head: usize,
    len: usize,
    arm: Option<NotifyType>,
    /// Kinds of completions that arrived since the last notification.
    new_any: bool,
    new_solicited: bool,
    new_error: bool,
    overflowed: bool,
    /// The overflow happened while unarmed: report it on the next arm
    /// (the NDKPI pages leave an unarmed CQ's overrun unspecified, project choice).
    error_unreported: bool,
    /// QPs that use this CQ.
    pub(crate) refs: u32,
}

impl Cq {
    pub(crate) fn new(depth: usize) -> Self {
        Cq {
            ring: vec![Completion::default(); depth],
            head: 0,
            len: 0,
            arm: None,
            new_any: false,
            new_solicited: false,
            new_error: false,
            overflowed: false,
            error_unreported: false,
            refs: 0,
        }
    }

    #[cfg(test)]
    pub(crate) fn depth(&self) -> usize {
        self.ring.len()
    }
    pub(crate) fn len(&self) -> usize {
        self.len
    }
    pub(crate) fn is_dead(&self) -> bool {
        self.overflowed
    }

    pub(crate) fn push(&mut self, c: Completion) -> Pushed {
        if self.overflowed {
            return Pushed::Dead;
        }
        if self.len >= self.ring.len() {
            self.overflowed = true;
            let report = self.arm.take().is_some();
            self.error_unreported = !report;
            return Pushed::Overflow {
                first: true,
                report,
            };
        }
        let depth = self.ring.len();
        let slot = (self.head + self.len) % depth;
        if let Some(s) = self.ring.get_mut(slot) {
            *s = c;
        }
        self.len += 1;
        let error = c.status.is_error();
        let solicited = c.solicited || error;
        self.new_any = true;
        self.new_solicited |= solicited;
        self.new_error |= error;
        let fire = match self.arm {
            Some(NotifyType::Any) => true,
            Some(NotifyType::Solicited) => solicited,
            // Project choice (the NDKPI completion handling requirements page): an error completion
            // satisfies every arm type.
            Some(NotifyType::Errors) => error,
            None => false,
        };
        if fire {
            self.fired();
        }
        Pushed::Stored { notify: fire }
    }

    fn fired(&mut self) {
        self.arm = None;
        self.new_any = false;
        self.new_solicited = false;
        self.new_error = false;
    }

    /// Move up to `out.len()` completions out, oldest first.
    pub(crate) fn poll(&mut self, out: &mut [Completion]) -> usize {
        if self.overflowed {
            return 0;
        }
        let depth = self.ring.len();
        let mut n = 0;
        for dst in out.iter_mut() {
            if self.len == 0 {
                break;
            }
            if let Some(c) = self.ring.get(self.head) {
                *dst = *c;
            }
            self.head = (self.head + 1) % depth.max(1);
            self.len -= 1;
            n += 1;
        }
        if self.len == 0 {
            // Nothing held: nothing can satisfy an arm at once.
            self.new_any = false;
            self.new_solicited = false;
            self.new_error = false;
        }
        n
    }

    /// Arm; returns what fires at once: `Some(false)` a notification,
    /// `Some(true)` the CQ error, `None` nothing (the NDKPI completion handling requirements page:
    /// completions newer than the last notification satisfy the arm now).
    pub(crate) fn arm(&mut self, t: NotifyType) -> Option<bool> {
        if self.overflowed {
            if core::mem::take(&mut self.error_unreported) {
                return Some(true);
            }
            return None;
        }
        let t = match self.arm {
            Some(old) => old.merge(t),
            None => t,
        };
        let now = match t {
            NotifyType::Any => self.new_any,
            NotifyType::Solicited => self.new_solicited,
            NotifyType::Errors => self.new_error,
        };
        if now {
            self.fired();
            Some(false)
        } else {
            self.arm = Some(t);
            None
        }
    }

    /// Resize (control path). Shrinking below the held count fails and
    /// leaves the CQ as it was (the NDKPI completion handling requirements page, ND2 analog).
    pub(crate) fn resize(&mut self, depth: usize) -> Result<(), Error> {
        if depth < self.len {
            return Err(Error::InvalidArgument);
        }
        let mut ring = vec![Completion::default(); depth];
        let old = self.ring.len().max(1);
        for (i, dst) in ring.iter_mut().take(self.len).enumerate() {
            if let Some(c) = self.ring.get((self.head + i) % old) {
                *dst = *c;
            }
        }
        self.ring = ring;
        self.head = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(id: u64) -> Completion {
        Completion {
            wr_id: id,
            ..Default::default()
        }
    }
    fn err(id: u64) -> Completion {
        Completion {
            wr_id: id,
            status: WcStatus::WrFlushErr,
            ..Default::default()
        }
    }
    fn solicited(id: u64) -> Completion {
        Completion {
            wr_id: id,
            opcode: WcOpcode::Recv,
            solicited: true,
            ..Default::default()
        }
    }

    #[test]
    fn merge_table() {
        use NotifyType::*;
        let table = [
            (Any, Any, Any),
            (Any, Errors, Any),
            (Any, Solicited, Any),
            (Errors, Any, Any),
            (Errors, Errors, Errors),
            (Errors, Solicited, Solicited),
            (Solicited, Any, Any),
            (Solicited, Errors, Solicited),
            (Solicited, Solicited, Solicited),
        ];
        for (a, b, m) in table {
            assert_eq!(a.merge(b), m, "{a:?}+{b:?}");
        }
    }

    #[test]
    fn ring_order_and_wrap() {
        let mut cq = Cq::new(3);
        let mut out = [Completion::default(); 2];
        for round in 0..5u64 {
            assert!(matches!(cq.push(ok(round * 2)), Pushed::Stored { .. }));
            assert!(matches!(cq.push(ok(round * 2 + 1)), Pushed::Stored { .. }));
            assert_eq!(cq.poll(&mut out), 2);
            assert_eq!([out[0].wr_id, out[1].wr_id], [round * 2, round * 2 + 1]);
        }
        assert_eq!(cq.poll(&mut out), 0);
    }

    #[test]
    fn one_notification_per_arm() {
        let mut cq = Cq::new(8);
        // Unarmed: nothing fires.
        assert_eq!(cq.push(ok(1)), Pushed::Stored { notify: false });
        // Arming with a completion newer than the last notification fires at once.
        assert_eq!(cq.arm(NotifyType::Any), Some(false));
        // Not re-armed: nothing.
        assert_eq!(cq.push(ok(2)), Pushed::Stored { notify: false });
        let mut out = [Completion::default(); 8];
        cq.poll(&mut out);
        assert_eq!(cq.arm(NotifyType::Any), None);
        assert_eq!(cq.push(ok(3)), Pushed::Stored { notify: true });
        assert_eq!(cq.push(ok(4)), Pushed::Stored { notify: false });
    }

    #[test]
    fn solicited_and_error_arms() {
        let mut cq = Cq::new(8);
        assert_eq!(cq.arm(NotifyType::Solicited), None);
        assert_eq!(cq.push(ok(1)), Pushed::Stored { notify: false });
        assert_eq!(cq.push(solicited(2)), Pushed::Stored { notify: true });
        let mut out = [Completion::default(); 8];
        cq.poll(&mut out);
        assert_eq!(cq.arm(NotifyType::Solicited), None);
        assert_eq!(cq.push(err(3)), Pushed::Stored { notify: true });
        cq.poll(&mut out);
        assert_eq!(cq.arm(NotifyType::Errors), None);
        assert_eq!(cq.push(solicited(4)), Pushed::Stored { notify: false });
        assert_eq!(cq.push(err(5)), Pushed::Stored { notify: true });
        cq.poll(&mut out);
        // ERRORS then ANY merges to ANY.
        assert_eq!(cq.arm(NotifyType::Errors), None);
        assert_eq!(cq.arm(NotifyType::Any), None);
        assert_eq!(cq.push(ok(6)), Pushed::Stored { notify: true });
    }

    #[test]
    fn overflow_is_a_dead_cq_with_one_error_report() {
        let mut cq = Cq::new(1);
        assert_eq!(cq.push(ok(1)), Pushed::Stored { notify: false });
        assert_eq!(
            cq.push(ok(2)),
            Pushed::Overflow {
                first: true,
                report: false
            }
        );
        assert_eq!(cq.push(ok(3)), Pushed::Dead);
        let mut out = [Completion::default(); 2];
        assert_eq!(cq.poll(&mut out), 0);
        assert_eq!(cq.arm(NotifyType::Any), Some(true));
        assert_eq!(cq.arm(NotifyType::Any), None);

        let mut armed = Cq::new(0);
        assert_eq!(armed.arm(NotifyType::Errors), None);
        assert_eq!(
            armed.push(ok(1)),
            Pushed::Overflow {
                first: true,
                report: true
            }
        );
        assert_eq!(armed.arm(NotifyType::Errors), None);
    }

    #[test]
    fn resize_keeps_order_and_refuses_to_lose_entries() {
        let mut cq = Cq::new(2);
        cq.push(ok(1));
        cq.push(ok(2));
        let mut out = [Completion::default(); 1];
        cq.poll(&mut out);
        cq.push(ok(3));
        assert_eq!(cq.resize(1), Err(Error::InvalidArgument));
        cq.resize(4).unwrap();
        cq.push(ok(4));
        let mut all = [Completion::default(); 4];
        assert_eq!(cq.poll(&mut all), 3);
        assert_eq!([all[0].wr_id, all[1].wr_id, all[2].wr_id], [2, 3, 4]);
        assert_eq!(cq.depth(), 4);
    }
}
