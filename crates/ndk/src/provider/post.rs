//! The data path: NdkReceive, NdkSend(AndInvalidate), NdkWrite and NdkRead,
//! the flags each request takes, and the checks every initiator post makes
//! (the memory requests are with their objects, in `mr` and `mw`).
//!
//! Status decisions for what NDK leaves undocumented (the NDKPI work request posting requirements and deferred processing scheme pages, project decisions where the NDKPI pages are silent), all inline failures with no CQ entry:
//! - a flag the request does not take (ndkpi.h NDK_OP_FLAG_*) or an unknown flag:
//!   STATUS_INVALID_PARAMETER;
//! - more SGEs than the QP (or SRQ) was created with, or for NdkRead
//!   than MaxReadRequestSge: STATUS_DATA_OVERRUN;
//! - more bytes than MaxTransferLength, or inline bytes beyond the QP's
//!   InlineDataSize: STATUS_BUFFER_OVERFLOW;
//! - a full queue: STATUS_NO_MORE_ENTRIES;
//! - an initiator request on a QP that is not connected:
//!   STATUS_CONNECTION_INVALID (documented);
//! - an object of the wrong kind for the request (NdkReceive on a QP
//!   with an SRQ, NdkInvalidate of a regular MR, NdkFastRegister into a
//!   regular MR): STATUS_INVALID_DEVICE_REQUEST;
//! - an object in the wrong state (an unregistered MR, an uninitialized
//!   fast-register MR, a fast-register while the MR's previous one has
//!   not executed): STATUS_INVALID_DEVICE_STATE.
//!
//! Every initiator post that fails inline first hands the deferred
//! requests to the engine (the NDKPI work request posting requirements page, [`Provider::reject_post`]).

use ndkpi::*;
use roce::rc::{Memory, Payload, PdHandle, SendFlags, SendOp, SendWr, Sge};

use super::{MAX_INLINE_DATA, Object, Provider, QpObject};
use crate::object::ObjectId;

/// Most SGEs of one request (the engine's MAX_SGE).
pub(super) const MAX_SGES: usize = roce::rc::MAX_SGE as usize;

/// One scatter/gather element as the consumer gave it (NDK_SGE with the
/// union resolved by the token).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NdkSge {
    pub address: u64,
    pub length: u32,
    pub token: u32,
}

/// The data of an initiator request.
#[derive(Debug, Clone, Copy)]
pub enum SendData<'a> {
    /// Gathered from registered memory when the packets are built.
    Sges(&'a [NdkSge]),
    /// NDK_OP_FLAG_INLINE: the bytes, copied during the post.
    Inline(&'a [u8]),
}

/// Copies the bytes of inline SGEs `(address, length)` into `buf` with
/// `read`: STATUS_BUFFER_OVERFLOW if they exceed it, STATUS_ACCESS_VIOLATION
/// if one cannot be read. Returns the byte count.
pub fn gather_inline(
    sges: impl Iterator<Item = (u64, u32)>,
    buf: &mut [u8],
    mut read: impl FnMut(u64, &mut [u8]) -> bool,
) -> Result<usize, NTSTATUS> {
    let mut n = 0usize;
    for (addr, len) in sges {
        let end = n
            .checked_add(len as usize)
            .filter(|e| *e <= buf.len())
            .ok_or(STATUS_BUFFER_OVERFLOW)?;
        let dst = buf.get_mut(n..end).ok_or(STATUS_BUFFER_OVERFLOW)?;
        if !dst.is_empty() && !read(addr, dst) {
            return Err(STATUS_ACCESS_VIOLATION);
        }
        n = end;
    }
    Ok(n)
}

/// Whether `flags` are ones request `op` takes (see [`PostKind::allowed`]):
/// checked before an inline post's buffers are read, so that a request
/// that takes no INLINE (NdkRead's SGEs describe where data lands) never
/// has its buffers read as inline data.
pub fn flags_valid(op: &SendOp<'_>, flags: ULONG) -> bool {
    flags & !PostKind::of(op).allowed() == 0
}

/// Which initiator work request a post is (the flags each allows,
/// ndkpi.h NDK_OP_FLAG_*).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PostKind {
    Send,
    Read,
    Write,
    Bind,
    FastRegister,
    Invalidate,
}

impl PostKind {
    fn of(op: &SendOp<'_>) -> PostKind {
        match op {
            SendOp::Read { .. } => PostKind::Read,
            SendOp::Write { .. } | SendOp::WriteWithImm { .. } => PostKind::Write,
            SendOp::BindMw { .. } => PostKind::Bind,
            SendOp::FastRegister { .. } => PostKind::FastRegister,
            SendOp::LocalInvalidate(_) => PostKind::Invalidate,
            SendOp::Send | SendOp::SendWithImm(_) | SendOp::SendWithInv(_) => PostKind::Send,
        }
    }

    /// Flags valid on this request (ndkpi.h NDK_OP_FLAG_*). INLINE on
    /// NdkWrite is accepted: QP InlineDataSize covers "send or write"
    /// (project decision on project decisions where the NDKPI pages are silent). RDMA_READ_LOCAL_INVALIDATE is accepted
    /// on NdkRead and ignored, as the documentation asks of an adapter that
    /// does not set NDK_ADAPTER_FLAG_RDMA_READ_LOCAL_INVALIDATE_SUPPORTED.
    const fn allowed(self) -> ULONG {
        let common = NDK_OP_FLAG_SILENT_SUCCESS | NDK_OP_FLAG_READ_FENCE | NDK_OP_FLAG_DEFER;
        common
            | match self {
                PostKind::Send => NDK_OP_FLAG_SEND_AND_SOLICIT_EVENT | NDK_OP_FLAG_INLINE,
                PostKind::Read => NDK_OP_FLAG_RDMA_READ_LOCAL_INVALIDATE,
                PostKind::Write => NDK_OP_FLAG_INLINE,
                PostKind::Bind => NDK_OP_FLAG_ALLOW_REMOTE_READ | NDK_OP_FLAG_ALLOW_REMOTE_WRITE,
                PostKind::FastRegister => {
                    NDK_OP_FLAG_ALLOW_REMOTE_READ
                        | NDK_OP_FLAG_ALLOW_LOCAL_WRITE
                        | NDK_OP_FLAG_ALLOW_REMOTE_WRITE
                        | NDK_OP_FLAG_RDMA_READ_SINK
                }
                PostKind::Invalidate => 0,
            }
    }
}

impl<M: Memory> Provider<M> {
    /// The QP of an initiator post, if it is connected.
    fn connected_qp(&self, qp: ObjectId) -> Result<&QpObject, NTSTATUS> {
        let q = match self.open_object(qp)? {
            Object::Qp(q) => q,
            _ => return Err(STATUS_INVALID_HANDLE),
        };
        match q.connector {
            Some(c) if self.connector(c).is_some_and(|c| c.state().is_connected()) => Ok(q),
            _ => Err(STATUS_CONNECTION_INVALID),
        }
    }

    pub(super) fn sges(sgl: &[NdkSge], out: &mut [Sge]) -> Result<usize, NTSTATUS> {
        if sgl.len() > out.len() {
            return Err(STATUS_DATA_OVERRUN);
        }
        for (o, s) in out.iter_mut().zip(sgl) {
            *o = Sge {
                addr: s.address,
                length: s.length,
                lkey: s.token,
            };
        }
        Ok(sgl.len())
    }

    pub(super) fn post_error(e: roce::rc::Error) -> NTSTATUS {
        use roce::rc::Error as E;
        match e {
            E::QueueFull => STATUS_NO_MORE_ENTRIES,
            E::TooManySges => STATUS_DATA_OVERRUN,
            E::InlineTooLong | E::MessageTooLong => STATUS_BUFFER_OVERFLOW,
            E::InvalidState => STATUS_CONNECTION_INVALID,
            E::AccessDenied => STATUS_ACCESS_VIOLATION,
            E::Busy => STATUS_INVALID_DEVICE_STATE,
            _ => STATUS_INVALID_PARAMETER,
        }
    }

    /// An initiator post failed inline with `status`: hand every deferred
    /// request of the QP to the engine first (the NDKPI work request posting requirements page rule 2:
    /// the consumer's chain ends with the failed post), then return
    /// `status`. No CQ entry is made for the failed post.
    pub fn reject_post(&mut self, qp: ObjectId, status: NTSTATUS) -> NTSTATUS {
        if let Some(qpn) = self.qp_obj(qp).map(|q| q.qpn) {
            let _ = self.device.rc().doorbell(qpn);
            self.process_events();
        }
        status
    }

    /// NdkReceive. Receives may be posted before the QP is connected
    /// (the NDKPI work request posting requirements and deferred processing scheme pages); after a flush they complete at once with
    /// STATUS_CANCELLED.
    pub fn post_receive(&mut self, qp: ObjectId, context: usize, sgl: &[NdkSge]) -> NTSTATUS {
        let (qpn, max_sge) = match self.open_object(qp) {
            Ok(Object::Qp(q)) if q.srq.is_some() => return STATUS_INVALID_DEVICE_REQUEST,
            Ok(Object::Qp(q)) => (q.qpn, q.receive_sge),
            Ok(_) => return STATUS_INVALID_HANDLE,
            Err(s) => return s,
        };
        if sgl.len() > max_sge as usize {
            return STATUS_DATA_OVERRUN;
        }
        let mut buf = [Sge::default(); MAX_SGES];
        let n = match Self::sges(sgl, &mut buf) {
            Ok(n) => n,
            Err(s) => return s,
        };
        let r = self
            .device
            .rc()
            .post_recv(qpn, context as u64, buf.get(..n).unwrap_or(&[]));
        self.process_events();
        r.map_or_else(
            |e| match e {
                roce::rc::Error::InvalidState => STATUS_INVALID_DEVICE_STATE,
                e => Self::post_error(e),
            },
            |()| STATUS_SUCCESS,
        )
    }

    /// NdkSend, NdkSendAndInvalidate, NdkWrite, NdkRead (by `op`). With
    /// NDK_OP_FLAG_INLINE the SGE addresses are read through the engine's
    /// memory (logical addresses) at once; the ABI layer, which can read
    /// the consumer's virtual addresses itself, uses [`Self::post_data`].
    pub fn post_send(
        &mut self,
        qp: ObjectId,
        context: usize,
        sgl: &[NdkSge],
        op: SendOp<'_>,
        flags: ULONG,
    ) -> NTSTATUS {
        if flags & NDK_OP_FLAG_INLINE == 0 {
            return self.post_data(qp, context, SendData::Sges(sgl), op, flags);
        }
        let mut buf = [0u8; MAX_INLINE_DATA as usize];
        let mem = self.device_ref().rc_ref().memory();
        let r = gather_inline(
            sgl.iter().map(|s| (s.address, s.length)),
            &mut buf,
            |a, d| mem.read(a, d),
        );
        match r {
            Ok(n) => {
                let data = buf.get(..n).unwrap_or(&[]);
                self.post_data(qp, context, SendData::Inline(data), op, flags)
            }
            Err(st) => self.reject_post(qp, st),
        }
    }

    /// An initiator data request (Send, SendAndInvalidate, Write, Read)
    /// whose inline bytes, if any, were already gathered.
    pub fn post_data(
        &mut self,
        qp: ObjectId,
        context: usize,
        data: SendData<'_>,
        op: SendOp<'_>,
        flags: ULONG,
    ) -> NTSTATUS {
        match self.check_data(qp, &data, &op, flags) {
            Ok(()) => {}
            Err(st) => return self.reject_post(qp, st),
        }
        let mut buf = [Sge::default(); MAX_SGES];
        let payload = match data {
            SendData::Sges(sgl) => match Self::sges(sgl, &mut buf) {
                Ok(n) => Payload::Sges(buf.get(..n).unwrap_or(&[])),
                Err(st) => return self.reject_post(qp, st),
            },
            SendData::Inline(bytes) => Payload::Inline(bytes),
        };
        self.post_wr(qp, context, op, payload, flags)
    }

    fn check_data(
        &self,
        qp: ObjectId,
        data: &SendData<'_>,
        op: &SendOp<'_>,
        flags: ULONG,
    ) -> Result<(), NTSTATUS> {
        let kind = PostKind::of(op);
        if !matches!(kind, PostKind::Send | PostKind::Read | PostKind::Write) {
            return Err(STATUS_INVALID_PARAMETER);
        }
        if flags & !kind.allowed() != 0 {
            return Err(STATUS_INVALID_PARAMETER);
        }
        let q = self.connected_qp(qp)?;
        let l = &self.config.limits;
        match data {
            SendData::Sges(sgl) => {
                if flags & NDK_OP_FLAG_INLINE != 0 {
                    return Err(STATUS_INVALID_PARAMETER);
                }
                let cap = if kind == PostKind::Read {
                    q.initiator_sge.min(l.max_read_sge)
                } else {
                    q.initiator_sge
                };
                if sgl.len() > cap as usize {
                    return Err(STATUS_DATA_OVERRUN);
                }
                let total: u64 = sgl.iter().map(|s| u64::from(s.length)).sum();
                if total > u64::from(l.max_transfer) {
                    return Err(STATUS_BUFFER_OVERFLOW);
                }
            }
            SendData::Inline(bytes) => {
                // the NDKPI work request posting requirements page: inline total <= the QP's InlineDataSize; the SGE
                // count does not matter.
                if flags & NDK_OP_FLAG_INLINE == 0 || kind == PostKind::Read {
                    return Err(STATUS_INVALID_PARAMETER);
                }
                if bytes.len() > q.inline_size as usize {
                    return Err(STATUS_BUFFER_OVERFLOW);
                }
            }
        }
        Ok(())
    }

    /// Hands one checked work request to the engine.
    pub(super) fn post_wr(
        &mut self,
        qp: ObjectId,
        context: usize,
        op: SendOp<'_>,
        payload: Payload<'_>,
        flags: ULONG,
    ) -> NTSTATUS {
        let qpn = match self.connected_qp(qp) {
            Ok(q) => q.qpn,
            Err(st) => return self.reject_post(qp, st),
        };
        let mut f = SendFlags::NONE;
        if flags & NDK_OP_FLAG_SILENT_SUCCESS == 0 {
            f = f.union(SendFlags::SIGNALED);
        }
        if flags & NDK_OP_FLAG_SEND_AND_SOLICIT_EVENT != 0 {
            f = f.union(SendFlags::SOLICITED);
        }
        if flags & NDK_OP_FLAG_READ_FENCE != 0 {
            f = f.union(SendFlags::READ_FENCE);
        }
        // DEFER: the engine holds the request until a post without it, or
        // an inline failure (the engine rings its doorbell on its own
        // failures; ours go through `reject_post`).
        if flags & NDK_OP_FLAG_DEFER != 0 {
            f = f.union(SendFlags::DEFER);
        }
        let wr = SendWr::new(context as u64, op).payload(payload).flags(f);
        let r = self.device.rc().post_send(qpn, &wr);
        self.process_events();
        r.map_or_else(Self::post_error, |()| STATUS_SUCCESS)
    }

    pub(super) fn check_memory_op(
        &self,
        qp: ObjectId,
        kind: PostKind,
        flags: ULONG,
    ) -> Result<PdHandle, NTSTATUS> {
        if flags & !kind.allowed() != 0 {
            return Err(STATUS_INVALID_PARAMETER);
        }
        Ok(self.connected_qp(qp)?.pd)
    }
}
#[cfg(test)]
mod tests {
    use alloc::vec::Vec;

    use super::*;

    #[test]
    fn inline_gather_copies_every_sge_and_bounds_the_total() {
        let src: Vec<u8> = (0..64).collect();
        let read = |addr: u64, dst: &mut [u8]| {
            let a = addr as usize;
            match src.get(a..a + dst.len()) {
                Some(s) => {
                    dst.copy_from_slice(s);
                    true
                }
                None => false,
            }
        };
        let mut buf = [0u8; 16];
        // Three pieces, one empty: any count of SGEs (the NDKPI work request posting requirements page).
        let n = gather_inline([(4, 3), (10, 0), (20, 5)].into_iter(), &mut buf, read).unwrap();
        assert_eq!(&buf[..n], &[4, 5, 6, 20, 21, 22, 23, 24]);
        assert_eq!(
            gather_inline([(0, 10), (0, 7)].into_iter(), &mut buf, read),
            Err(STATUS_BUFFER_OVERFLOW)
        );
        assert_eq!(
            gather_inline([(100, 4)].into_iter(), &mut buf, read),
            Err(STATUS_ACCESS_VIOLATION)
        );
    }

    #[test]
    fn flags_each_request_takes() {
        let f = |k: PostKind, flags: ULONG| flags & !k.allowed() == 0;
        assert!(f(PostKind::Send, NDK_OP_FLAG_INLINE | NDK_OP_FLAG_DEFER));
        assert!(f(PostKind::Write, NDK_OP_FLAG_INLINE));
        assert!(!f(PostKind::Read, NDK_OP_FLAG_INLINE));
        assert!(f(PostKind::Read, NDK_OP_FLAG_RDMA_READ_LOCAL_INVALIDATE));
        assert!(!f(PostKind::Write, NDK_OP_FLAG_SEND_AND_SOLICIT_EVENT));
        assert!(f(PostKind::Bind, NDK_OP_FLAG_ALLOW_REMOTE_WRITE));
        assert!(!f(PostKind::Bind, NDK_OP_FLAG_RDMA_READ_SINK));
        assert!(f(PostKind::FastRegister, NDK_OP_FLAG_RDMA_READ_SINK));
        assert!(!f(PostKind::Invalidate, NDK_OP_FLAG_ALLOW_REMOTE_READ));
        for k in [
            PostKind::Send,
            PostKind::Read,
            PostKind::Write,
            PostKind::Bind,
            PostKind::FastRegister,
            PostKind::Invalidate,
        ] {
            assert!(f(k, NDK_OP_FLAG_SILENT_SUCCESS | NDK_OP_FLAG_READ_FENCE));
            assert!(!f(k, 0x400), "unknown flags are refused");
        }
    }
}
