//! Asynchronous events the engine hands the shell (quinn-proto's `poll`).
//!
//! Preallocated and deduplicated: an event equal to one still queued is
//! dropped (two "CQ X has news" are one), so the queue holds at most one
//! event of each kind per object and its capacity, grown only when objects
//! are created, is never exceeded on the hot path.

use alloc::collections::VecDeque;

use super::cq::WcStatus;
use super::{CqHandle, SrqHandle};

/// An asynchronous event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Event {
    /// A CQ's arm was satisfied: call its notification callback once.
    CqNotify(CqHandle),
    /// A CQ overflowed: it and every QP bound to it are dead
    /// (STATUS_BUFFER_OVERFLOW through the notification callback).
    CqError(CqHandle),
    /// An SRQ's receive count dropped below its armed limit.
    SrqLimit(SrqHandle),
    /// A QP entered Error because of a transport failure; `status` is the
    /// failing work request's.
    QpFatal {
        /// The QP.
        qpn: u32,
        /// Why.
        status: WcStatus,
    },
    /// The first packet arrived while the QP was in RTR.
    CommEstablished {
        /// The QP.
        qpn: u32,
    },
    /// A QP in SQD has no send work request in progress any more.
    SqDrained {
        /// The QP.
        qpn: u32,
    },
}

/// Kinds of events one object can have queued at once.
pub(crate) const EVENTS_PER_QP: usize = 3;
pub(crate) const EVENTS_PER_CQ: usize = 2;
pub(crate) const EVENTS_PER_SRQ: usize = 1;

#[derive(Debug, Default)]
pub(crate) struct Events {
    queue: VecDeque<Event>,
    cap: usize,
    /// A CQ overflowed during the current call: its QPs must enter Error.
    pub(crate) cq_overflow: bool,
    /// Events lost because the queue was full (never expected).
    pub(crate) lost: u64,
}

impl Events {
    /// Room for `n` more (control path).
    pub(crate) fn grow(&mut self, n: usize) {
        self.cap = self.cap.saturating_add(n);
        let want = self.cap.saturating_sub(self.queue.len());
        self.queue.reserve(want);
    }

    pub(crate) fn push(&mut self, e: Event) {
        if self.queue.contains(&e) {
            return;
        }
        if self.queue.len() >= self.cap.min(self.queue.capacity()) {
            self.lost += 1;
            return;
        }
        self.queue.push_back(e);
    }

    pub(crate) fn pop(&mut self) -> Option<Event> {
        self.queue.pop_front()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}
