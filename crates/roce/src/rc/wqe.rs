//! Work requests: what the consumer posts, and how queues store them.
//!
//! Queues are fixed-capacity rings built at QP/SRQ creation: a slot per
//! work request, each with room for the queue's max SGEs and (send queues)
//! its max inline bytes, so posting copies into preallocated memory and
//! never allocates (docs/design.md: the hot path allocates nothing).

use alloc::vec;
use alloc::vec::Vec;

use super::Error;
use super::cq::WcStatus;
use super::mr::{Access, FastRegParams, InvalidateTarget, MrHandle, MwHandle};
use super::psn::Psn;

/// Largest message: 2^31 bytes (IBA; rxe allows 8 MiB, Linux rxe_param.h, but
/// nothing here depends on the smaller bound).
pub const MAX_MESSAGE_LEN: u32 = 1 << 31;

/// A scatter/gather element: `length` bytes at virtual address `addr` of
/// the MR whose local key is `lkey` (or a logical address with the
/// privileged key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Sge {
    /// Virtual (or, with the privileged key, logical) address.
    pub addr: u64,
    /// Bytes.
    pub length: u32,
    /// Local key.
    pub lkey: u32,
}

/// Send work request flags (ndkpi.h NDK_OP_FLAG_*).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SendFlags(u8);

impl SendFlags {
    /// No flags: unsignaled (NDK SILENT_SUCCESS), not solicited.
    pub const NONE: SendFlags = SendFlags(0);
    /// Generate a completion on success (errors always do).
    pub const SIGNALED: SendFlags = SendFlags(1);
    /// Set SE on the last packet (NDK SEND_AND_SOLICIT_EVENT).
    pub const SOLICITED: SendFlags = SendFlags(2);
    /// Wait for every earlier RDMA READ to complete before starting.
    pub const READ_FENCE: SendFlags = SendFlags(4);
    /// Queue without ringing the doorbell (NDK DEFER): transmitted after a
    /// later post without DEFER or [`Engine::doorbell`](super::Engine::doorbell).
    pub const DEFER: SendFlags = SendFlags(8);

    /// Whether every flag of `other` is set.
    pub const fn contains(self, other: SendFlags) -> bool {
        self.0 & other.0 == other.0
    }
    /// Both sets.
    pub const fn union(self, other: SendFlags) -> SendFlags {
        SendFlags(self.0 | other.0)
    }
}

impl core::ops::BitOr for SendFlags {
    type Output = SendFlags;
    fn bitor(self, rhs: SendFlags) -> SendFlags {
        self.union(rhs)
    }
}

/// Where a send's data comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payload<'a> {
    /// Gathered from registered memory when the packets are built.
    Sges(&'a [Sge]),
    /// Copied into the queue when posted (NDK INLINE; at most the QP's
    /// max inline size).
    Inline(&'a [u8]),
}

/// The operation of a send-queue work request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendOp<'a> {
    /// SEND.
    Send,
    /// SEND with immediate data.
    SendWithImm(u32),
    /// SEND with invalidate of the peer's `rkey`.
    SendWithInv(u32),
    /// RDMA WRITE.
    Write {
        /// Peer virtual address.
        remote_addr: u64,
        /// Peer remote key.
        rkey: u32,
    },
    /// RDMA WRITE with immediate data.
    WriteWithImm {
        /// Peer virtual address.
        remote_addr: u64,
        /// Peer remote key.
        rkey: u32,
        /// Immediate data.
        imm: u32,
    },
    /// RDMA READ into the payload's SGEs.
    Read {
        /// Peer virtual address.
        remote_addr: u64,
        /// Peer remote key.
        rkey: u32,
    },
    /// Invalidate a fast-register MR or a bound MW.
    LocalInvalidate(InvalidateTarget),
    /// Register `pages` into a fast-register MR.
    FastRegister {
        /// The MR (allocated for fast register).
        mr: MrHandle,
        /// Logical address of each page.
        pages: &'a [u64],
        /// Page size (a power of two).
        page_size: u64,
        /// Offset of the first byte in the first page.
        first_byte_offset: u64,
        /// Bytes.
        length: u64,
        /// Virtual address of the first byte.
        iova: u64,
        /// Rights.
        access: Access,
    },
    /// Bind a window to a range of an MR.
    BindMw {
        /// The window.
        mw: MwHandle,
        /// The MR.
        mr: MrHandle,
        /// Virtual address of the window's first byte.
        iova: u64,
        /// Bytes.
        length: u64,
        /// Remote rights.
        access: Access,
    },
}

/// A send-queue work request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendWr<'a> {
    /// Returned in the completion.
    pub wr_id: u64,
    /// What to do.
    pub op: SendOp<'a>,
    /// Data (sink SGEs for a read; ignored by memory operations).
    pub payload: Payload<'a>,
    /// Flags.
    pub flags: SendFlags,
}

impl<'a> SendWr<'a> {
    /// A work request with no data and no flags.
    pub const fn new(wr_id: u64, op: SendOp<'a>) -> Self {
        SendWr {
            wr_id,
            op,
            payload: Payload::Sges(&[]),
            flags: SendFlags::NONE,
        }
    }
    /// With data.
    pub const fn payload(mut self, p: Payload<'a>) -> Self {
        self.payload = p;
        self
    }
    /// With flags.
    pub const fn flags(mut self, f: SendFlags) -> Self {
        self.flags = f;
        self
    }
}

/// A stored send operation: the post-time parameters of [`SendOp`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum WqeOp {
    #[default]
    Send,
    SendImm(u32),
    SendInv(u32),
    Write {
        addr: u64,
        rkey: u32,
        imm: Option<u32>,
    },
    Read {
        addr: u64,
        rkey: u32,
    },
    LocalInv(InvalidateTarget),
    FastReg {
        mr: MrHandle,
        key: u8,
        p: FastRegParams,
    },
    Bind {
        mw: MwHandle,
        key: u8,
        mr: MrHandle,
        iova: u64,
        length: u64,
        access: Access,
    },
}

impl WqeOp {
    /// Executed locally, no packets.
    pub(crate) const fn is_local(&self) -> bool {
        matches!(
            self,
            WqeOp::LocalInv(_) | WqeOp::FastReg { .. } | WqeOp::Bind { .. }
        )
    }
    pub(crate) const fn is_read(&self) -> bool {
        matches!(self, WqeOp::Read { .. })
    }
}

/// A send WQE as stored, with the requester's progress on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct SendWqe {
    pub(crate) wr_id: u64,
    pub(crate) op: WqeOp,
    pub(crate) signaled: bool,
    pub(crate) solicited: bool,
    pub(crate) fence: bool,
    pub(crate) inline: bool,
    pub(crate) num_sge: u16,
    pub(crate) length: u32,
    /// PSNs assigned (first packet sent).
    pub(crate) started: bool,
    pub(crate) first_psn: Psn,
    pub(crate) last_psn: Psn,
    /// Local operation executed, with its outcome.
    pub(crate) local_done: Option<WcStatus>,
    /// Counted in the requester's outstanding reads.
    pub(crate) read_counted: bool,
}

/// Packets a message of `len` bytes takes at `mtu` (IBA Vol 1 ch. 9 (segmentation at the path MTU); Linux rxe_req.c: an empty
/// message is one packet).
pub(crate) const fn packets(len: u32, mtu: u32) -> u32 {
    if len == 0 || mtu == 0 {
        1
    } else {
        len.div_ceil(mtu)
    }
}

fn slot_of(idx: u64, depth: usize) -> usize {
    if depth == 0 {
        0
    } else {
        (idx % depth as u64) as usize
    }
}

/// Validate SGEs and sum their lengths.
pub(crate) fn total_len(sges: &[Sge], max_sge: usize) -> Result<u32, Error> {
    if sges.len() > max_sge {
        return Err(Error::TooManySges);
    }
    let mut total: u32 = 0;
    for s in sges {
        total = total
            .checked_add(s.length)
            .filter(|&t| t <= MAX_MESSAGE_LEN)
            .ok_or(Error::MessageTooLong)?;
    }
    Ok(total)
}

/// A QP's send queue: ring of WQEs with three cursors. `head` is the
/// oldest WQE not yet completed, `cur` the next one the requester works
/// on, `tail` the next free slot; `doorbell` bounds what may start
/// (deferred posts sit between `doorbell` and `tail`).
#[derive(Debug)]
pub(crate) struct SendQueue {
    wqes: Vec<SendWqe>,
    sges: Vec<Sge>,
    inline: Vec<u8>,
    max_sge: usize,
    max_inline: usize,
    pub(crate) head: u64,
    pub(crate) cur: u64,
    pub(crate) tail: u64,
    pub(crate) doorbell: u64,
}

impl SendQueue {
    pub(crate) fn new(depth: usize, max_sge: usize, max_inline: usize) -> Self {
        SendQueue {
            wqes: vec![SendWqe::default(); depth],
            sges: vec![Sge::default(); depth.saturating_mul(max_sge)],
            inline: vec![0; depth.saturating_mul(max_inline)],
            max_sge,
            max_inline,
            head: 0,
            cur: 0,
            tail: 0,
            doorbell: 0,
        }
    }

    pub(crate) fn depth(&self) -> usize {
        self.wqes.len()
    }
    pub(crate) fn max_sge(&self) -> usize {
        self.max_sge
    }
    pub(crate) fn max_inline(&self) -> usize {
        self.max_inline
    }
    pub(crate) fn is_full(&self) -> bool {
        self.tail.wrapping_sub(self.head) >= self.depth() as u64
    }

    pub(crate) fn get(&self, idx: u64) -> Option<&SendWqe> {
        if idx < self.head || idx >= self.tail {
            return None;
        }
        self.wqes.get(slot_of(idx, self.depth()))
    }

    pub(crate) fn get_mut(&mut self, idx: u64) -> Option<&mut SendWqe> {
        if idx < self.head || idx >= self.tail {
            return None;
        }
        let d = self.depth();
        self.wqes.get_mut(slot_of(idx, d))
    }

    /// The SGEs of WQE `idx`.
    pub(crate) fn sges(&self, idx: u64) -> &[Sge] {
        let n = self.get(idx).map_or(0, |w| usize::from(w.num_sge));
        let start = slot_of(idx, self.depth()) * self.max_sge;
        self.sges.get(start..start + n).unwrap_or_default()
    }

    /// The inline bytes of WQE `idx`.
    pub(crate) fn inline(&self, idx: u64) -> &[u8] {
        let n = self.get(idx).map_or(0, |w| w.length as usize);
        let start = slot_of(idx, self.depth()) * self.max_inline;
        self.inline.get(start..start + n).unwrap_or_default()
    }

    /// Store a WQE and its data at the tail.
    pub(crate) fn push(&mut self, mut wqe: SendWqe, data: Payload<'_>) -> Result<u64, Error> {
        if self.is_full() {
            return Err(Error::QueueFull);
        }
        let idx = self.tail;
        let slot = slot_of(idx, self.depth());
        match data {
            Payload::Sges(s) => {
                wqe.length = total_len(s, self.max_sge)?;
                wqe.inline = false;
                wqe.num_sge = u16::try_from(s.len()).map_err(|_| Error::TooManySges)?;
                let start = slot * self.max_sge;
                let dst = self
                    .sges
                    .get_mut(start..start + s.len())
                    .ok_or(Error::TooManySges)?;
                dst.copy_from_slice(s);
            }
            Payload::Inline(b) => {
                if b.len() > self.max_inline {
                    return Err(Error::InlineTooLong);
                }
                wqe.length = u32::try_from(b.len()).map_err(|_| Error::InlineTooLong)?;
                wqe.inline = true;
                wqe.num_sge = 0;
                let start = slot * self.max_inline;
                let dst = self
                    .inline
                    .get_mut(start..start + b.len())
                    .ok_or(Error::InlineTooLong)?;
                dst.copy_from_slice(b);
            }
        }
        let w = self.wqes.get_mut(slot).ok_or(Error::QueueFull)?;
        *w = wqe;
        self.tail += 1;
        Ok(idx)
    }

    /// Forget everything (modify to Reset).
    pub(crate) fn clear(&mut self) {
        self.head = 0;
        self.cur = 0;
        self.tail = 0;
        self.doorbell = 0;
    }
}

/// A receive WQE as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct RecvWqe {
    pub(crate) wr_id: u64,
    pub(crate) num_sge: u16,
    pub(crate) length: u32,
}

/// A receive queue (a QP's own, or an SRQ's).
#[derive(Debug)]
pub(crate) struct RecvQueue {
    wqes: Vec<RecvWqe>,
    sges: Vec<Sge>,
    max_sge: usize,
    head: u64,
    tail: u64,
}

impl RecvQueue {
    pub(crate) fn new(depth: usize, max_sge: usize) -> Self {
        RecvQueue {
            wqes: vec![RecvWqe::default(); depth],
            sges: vec![Sge::default(); depth.saturating_mul(max_sge)],
            max_sge,
            head: 0,
            tail: 0,
        }
    }

    pub(crate) fn depth(&self) -> usize {
        self.wqes.len()
    }
    pub(crate) fn max_sge(&self) -> usize {
        self.max_sge
    }
    pub(crate) fn len(&self) -> usize {
        self.tail.wrapping_sub(self.head) as usize
    }

    pub(crate) fn push(&mut self, wr_id: u64, sges: &[Sge]) -> Result<(), Error> {
        if self.len() >= self.depth() {
            return Err(Error::QueueFull);
        }
        let length = total_len(sges, self.max_sge)?;
        let slot = slot_of(self.tail, self.depth());
        let start = slot * self.max_sge;
        self.sges
            .get_mut(start..start + sges.len())
            .ok_or(Error::TooManySges)?
            .copy_from_slice(sges);
        *self.wqes.get_mut(slot).ok_or(Error::QueueFull)? = RecvWqe {
            wr_id,
            num_sge: u16::try_from(sges.len()).map_err(|_| Error::TooManySges)?,
            length,
        };
        self.tail += 1;
        Ok(())
    }

    /// Move the oldest WQE into `cur`; false when empty.
    pub(crate) fn pop_into(&mut self, cur: &mut CurRecv) -> bool {
        if self.len() == 0 {
            return false;
        }
        let slot = slot_of(self.head, self.depth());
        let Some(w) = self.wqes.get(slot).copied() else {
            return false;
        };
        let n = usize::from(w.num_sge);
        let start = slot * self.max_sge;
        let Some(src) = self.sges.get(start..start + n) else {
            return false;
        };
        if !cur.load(w, src) {
            return false;
        }
        self.head += 1;
        true
    }

    /// Remove the oldest WQE's id (flush).
    pub(crate) fn pop_id(&mut self) -> Option<u64> {
        if self.len() == 0 {
            return None;
        }
        let id = self.wqes.get(slot_of(self.head, self.depth()))?.wr_id;
        self.head += 1;
        Some(id)
    }

    pub(crate) fn clear(&mut self) {
        self.head = 0;
        self.tail = 0;
    }
}

/// The receive WQE a responder is filling (copied out of its queue at the
/// first packet of a message, so an SRQ slot can be reused meanwhile).
#[derive(Debug)]
pub(crate) struct CurRecv {
    pub(crate) active: bool,
    pub(crate) wr_id: u64,
    pub(crate) length: u32,
    /// Bytes placed so far.
    pub(crate) offset: u32,
    num_sge: usize,
    sges: Vec<Sge>,
}

impl CurRecv {
    pub(crate) fn new(max_sge: usize) -> Self {
        CurRecv {
            active: false,
            wr_id: 0,
            length: 0,
            offset: 0,
            num_sge: 0,
            sges: vec![Sge::default(); max_sge],
        }
    }

    fn load(&mut self, w: RecvWqe, sges: &[Sge]) -> bool {
        let Some(dst) = self.sges.get_mut(..sges.len()) else {
            return false;
        };
        dst.copy_from_slice(sges);
        self.num_sge = sges.len();
        self.wr_id = w.wr_id;
        self.length = w.length;
        self.offset = 0;
        self.active = true;
        true
    }

    pub(crate) fn sges(&self) -> &[Sge] {
        self.sges.get(..self.num_sge).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packet_counts() {
        for mtu in [256u32, 512, 1024, 2048, 4096] {
            assert_eq!(packets(0, mtu), 1);
            assert_eq!(packets(1, mtu), 1);
            assert_eq!(packets(mtu - 1, mtu), 1);
            assert_eq!(packets(mtu, mtu), 1);
            assert_eq!(packets(mtu + 1, mtu), 2);
            assert_eq!(packets(5 * mtu, mtu), 5);
            assert_eq!(packets(5 * mtu + 7, mtu), 6);
        }
        assert_eq!(packets(5000, 1024), 5);
    }

    #[test]
    fn send_queue_ring_and_data() {
        let mut q = SendQueue::new(2, 2, 8);
        let s = [
            Sge {
                addr: 1,
                length: 3,
                lkey: 9,
            },
            Sge {
                addr: 2,
                length: 4,
                lkey: 9,
            },
        ];
        let a = q
            .push(
                SendWqe {
                    wr_id: 1,
                    ..Default::default()
                },
                Payload::Sges(&s),
            )
            .unwrap();
        let b = q
            .push(
                SendWqe {
                    wr_id: 2,
                    ..Default::default()
                },
                Payload::Inline(b"hi"),
            )
            .unwrap();
        assert_eq!(
            q.push(SendWqe::default(), Payload::Inline(b"")),
            Err(Error::QueueFull)
        );
        assert_eq!(q.get(a).unwrap().length, 7);
        assert_eq!(q.sges(a), &s);
        assert_eq!(q.inline(b), b"hi");
        q.head += 1;
        assert!(q.get(a).is_none());
        let c = q
            .push(
                SendWqe {
                    wr_id: 3,
                    ..Default::default()
                },
                Payload::Inline(b"12345678"),
            )
            .unwrap();
        assert_eq!(q.inline(c), b"12345678");
        q.head += 1;
        assert_eq!(
            q.push(SendWqe::default(), Payload::Inline(b"123456789")),
            Err(Error::InlineTooLong)
        );
        let three = [Sge::default(); 3];
        assert_eq!(
            q.push(SendWqe::default(), Payload::Sges(&three)),
            Err(Error::TooManySges)
        );
        let big = [Sge {
            addr: 0,
            length: u32::MAX,
            lkey: 0,
        }];
        assert_eq!(
            q.push(SendWqe::default(), Payload::Sges(&big)),
            Err(Error::MessageTooLong)
        );
    }

    #[test]
    fn recv_queue_pops_in_order() {
        let mut q = RecvQueue::new(2, 1);
        let mut cur = CurRecv::new(1);
        assert!(!q.pop_into(&mut cur));
        q.push(
            10,
            &[Sge {
                addr: 0,
                length: 5,
                lkey: 1,
            }],
        )
        .unwrap();
        q.push(11, &[]).unwrap();
        assert_eq!(q.push(12, &[]), Err(Error::QueueFull));
        assert!(q.pop_into(&mut cur));
        assert_eq!((cur.wr_id, cur.length, cur.sges().len()), (10, 5, 1));
        assert_eq!(q.pop_id(), Some(11));
        assert_eq!(q.pop_id(), None);
        assert_eq!(q.push(1, &[Sge::default(); 2]), Err(Error::TooManySges));
    }
}
