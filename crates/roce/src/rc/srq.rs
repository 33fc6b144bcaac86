//! Shared receive queues (the NDK_FN_CREATE_QP page): a receive queue several
//! QPs draw from, with a one-shot limit event armed by setting the limit.

use super::Error;
use super::wqe::{CurRecv, RecvQueue, Sge};

/// A shared receive queue.
#[derive(Debug)]
pub(crate) struct Srq {
    pub(crate) pd: u32,
    pub(crate) rq: RecvQueue,
    /// Armed threshold (0 = disarmed): the event fires once when the count
    /// of queued receives drops below it.
    limit: u32,
    /// QPs that use this SRQ.
    pub(crate) refs: u32,
}

impl Srq {
    pub(crate) fn new(pd: u32, depth: usize, max_sge: usize, limit: u32) -> Self {
        Srq {
            pd,
            rq: RecvQueue::new(depth, max_sge),
            limit,
            refs: 0,
        }
    }

    pub(crate) fn post(&mut self, wr_id: u64, sges: &[Sge]) -> Result<(), Error> {
        self.rq.push(wr_id, sges)
    }

    /// Take the oldest receive into `cur`: `(taken, limit_event)`.
    pub(crate) fn take(&mut self, cur: &mut CurRecv) -> (bool, bool) {
        if !self.rq.pop_into(cur) {
            return (false, false);
        }
        (true, self.check_limit())
    }

    fn check_limit(&mut self) -> bool {
        if self.limit > 0 && (self.rq.len() as u64) < u64::from(self.limit) {
            self.limit = 0;
            return true;
        }
        false
    }

    /// Arm with a new threshold (0 keeps the current one, NdkModifySrq);
    /// returns whether the event fires at once (count already below).
    pub(crate) fn set_limit(&mut self, limit: u32) -> bool {
        if limit == 0 {
            return false;
        }
        self.limit = limit;
        self.check_limit()
    }

    #[cfg(test)]
    pub(crate) fn limit(&self) -> u32 {
        self.limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_fires_once_per_arm() {
        let mut s = Srq::new(1, 4, 1, 0);
        for i in 0..4 {
            s.post(i, &[]).unwrap();
        }
        assert!(!s.set_limit(3));
        let mut cur = CurRecv::new(1);
        assert_eq!(s.take(&mut cur), (true, false)); // 3 left: not below 3
        assert_eq!(s.take(&mut cur), (true, true)); // 2 left: fires, disarms
        assert_eq!(s.limit(), 0);
        assert_eq!(s.take(&mut cur), (true, false));
        // Arming while already below fires at once.
        assert!(s.set_limit(2));
        assert!(!s.set_limit(0));
        assert_eq!(s.take(&mut cur), (true, false));
        assert_eq!(s.take(&mut cur), (false, false));
    }
}
