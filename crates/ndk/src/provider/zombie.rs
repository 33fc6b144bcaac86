//! Closed QPs whose flushed completions are still in their CQs. The engine
//! QP outlives the NDK QP until those are polled (or until a CQ, PD or SRQ it
//! uses goes), so each completion still names the right QPContext.

use roce::rc::{CqHandle, Memory, PdHandle, QpAttr, QpState, SrqHandle};

use super::{Object, Provider};
use crate::object::ObjectId;

/// A destroyed QP whose flushed completions may still sit in its CQs: the
/// engine QP (and so its QPN) is kept until they are polled, so that
/// NDK_RESULT.QPContext stays right and no new QP reuses the QPN meanwhile.
#[derive(Debug, Clone, Copy)]
pub(super) struct Zombie {
    qpn: u32,
    context: usize,
    cqs: [CqHandle; 2],
    pd: PdHandle,
    srq: Option<SrqHandle>,
}

/// An engine object being destroyed, which zombie QPs must not outlive.
#[derive(Debug, Clone, Copy)]
pub(super) enum Gone {
    Cq(CqHandle),
    Pd(PdHandle),
    Srq(SrqHandle),
}

impl<M: Memory> Provider<M> {
    /// Takes a closing QP out of service: its outstanding requests complete
    /// as cancelled on its CQs, which are still open (the QP is their
    /// successor): the NDKPI object lifetime requirements page rule 7, project choice. The engine QP
    /// stays until those completions are polled, so they still carry the
    /// QPContext.
    pub(super) fn retire_qp(&mut self, qp: ObjectId) {
        let Some(Object::Qp(q)) = self.objects.get(qp).map(|e| &e.object) else {
            return;
        };
        let z = Zombie {
            qpn: q.qpn,
            context: q.context,
            cqs: q.cqs,
            pd: q.pd,
            srq: q
                .srq
                .and_then(|s| match self.objects.get(s).map(|e| &e.object) {
                    Some(Object::Srq { srq, .. }) => Some(*srq),
                    _ => None,
                }),
        };
        let rc = self.device.rc();
        let _ = rc.modify_qp(
            z.qpn,
            &QpAttr {
                state: Some(QpState::Error),
                ..QpAttr::default()
            },
        );
        self.by_qpn.remove(&z.qpn);
        if z.cqs.iter().all(|c| rc.cq_len(*c) == 0) {
            let _ = rc.destroy_qp(z.qpn);
        } else {
            self.zombies.push(z);
        }
    }

    /// The QPContext of a completion's QP, live or closed.
    pub(super) fn context_of_qpn(&self, qpn: u32) -> usize {
        if let Some(q) = self.by_qpn.get(&qpn).and_then(|id| self.qp_obj(*id)) {
            return q.context;
        }
        self.zombies
            .iter()
            .find(|z| z.qpn == qpn)
            .map_or(0, |z| z.context)
    }

    /// Destroys the engine QPs of closed QPs whose completions have all been
    /// polled, and (with `gone`) every one that uses an object being
    /// destroyed.
    pub(super) fn reap_zombies(&mut self, gone: Option<Gone>) {
        let rc = self.device.rc();
        self.zombies.retain(|z| {
            let forced = match gone {
                Some(Gone::Cq(c)) => z.cqs.contains(&c),
                Some(Gone::Pd(p)) => z.pd == p,
                Some(Gone::Srq(s)) => z.srq == Some(s),
                None => false,
            };
            if forced || z.cqs.iter().all(|c| rc.cq_len(*c) == 0) {
                let _ = rc.destroy_qp(z.qpn);
                false
            } else {
                true
            }
        });
    }
}
