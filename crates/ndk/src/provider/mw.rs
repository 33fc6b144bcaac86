//! Memory windows: NdkCreateMw, the NdkBind work request and the window's
//! token, and NdkInvalidate (of a bound MW or a fast-registered MR).

use alloc::vec;

use ndkpi::*;
use roce::rc::{Access, InvalidateTarget, Memory, MrHandle, MwHandle, Payload, SendOp};

use super::post::PostKind;
use super::{MrKind, Object, Provider};
use crate::object::ObjectId;

impl<M: Memory> Provider<M> {
    /// NdkCreateMw.
    pub fn create_mw(&mut self, pd: ObjectId) -> Result<ObjectId, NTSTATUS> {
        let pdh = self.open_pd(pd)?;
        let mw = self
            .device
            .rc()
            .alloc_mw(pdh)
            .map_err(|_| STATUS_INSUFFICIENT_RESOURCES)?;
        Ok(self.insert(Object::Mw { mw }, vec![pd]))
    }

    /// NdkGetRemoteTokenFromMw: the token of the latest bind posted (0
    /// before any).
    pub fn mw_token(&self, mw: ObjectId) -> Option<u32> {
        match self.objects.get(mw)?.object {
            Object::Mw { mw } => self.device.rc_ref().mw_rkey(mw),
            _ => None,
        }
    }

    /// NdkBind: binds `mw` to `length` bytes at `va` of `mr` (the NDK_FN_REGISTER_MR, NDK_FN_FAST_REGISTER and NDK_FN_BUILD_LAM pages). Inline failures: STATUS_CONNECTION_INVALID (not connected),
    /// STATUS_ACCESS_VIOLATION (remote write asked of an MR registered
    /// without local write), and by project decision STATUS_INVALID_PARAMETER
    /// for VA 0, length 0, or a range outside the MR's registration,
    /// STATUS_INVALID_DEVICE_STATE for an MR with no registration. Once the
    /// bind is posted the window's token is its new one and the MR is an
    /// antecedent of the MW (the NDKPI object lifetime requirements page): the MR's close waits for the MW's.
    #[allow(clippy::too_many_arguments)]
    pub fn bind(
        &mut self,
        qp: ObjectId,
        context: usize,
        mr: ObjectId,
        mw: ObjectId,
        va: u64,
        length: u64,
        flags: ULONG,
    ) -> NTSTATUS {
        let r = self.check_bind(qp, mr, mw, va, length, flags);
        let (mrh, mwh, access) = match r {
            Ok(x) => x,
            Err(st) => return self.reject_post(qp, st),
        };
        let op = SendOp::BindMw {
            mw: mwh,
            mr: mrh,
            iova: va,
            length,
            access,
        };
        let st = self.post_wr(qp, context, op, Payload::Sges(&[]), flags);
        if st == STATUS_SUCCESS
            && self
                .objects
                .get(mw)
                .is_some_and(|e| !e.antecedents.contains(&mr))
        {
            if let Some(e) = self.objects.get_mut(mr) {
                e.successors += 1;
            }
            if let Some(e) = self.objects.get_mut(mw) {
                e.antecedents.push(mr);
            }
        }
        st
    }

    fn check_bind(
        &self,
        qp: ObjectId,
        mr: ObjectId,
        mw: ObjectId,
        va: u64,
        length: u64,
        flags: ULONG,
    ) -> Result<(MrHandle, MwHandle, Access), NTSTATUS> {
        self.check_memory_op(qp, PostKind::Bind, flags)?;
        let mwh = match self.open_object(mw)? {
            Object::Mw { mw } => *mw,
            _ => return Err(STATUS_INVALID_HANDLE),
        };
        let mut access = Access::NONE;
        if flags & NDK_OP_FLAG_ALLOW_REMOTE_READ != 0 {
            access = access.union(Access::REMOTE_READ);
        }
        if flags & NDK_OP_FLAG_ALLOW_REMOTE_WRITE == NDK_OP_FLAG_ALLOW_REMOTE_WRITE {
            access = access.union(Access::REMOTE_WRITE);
        }
        if va == 0 || length == 0 || va.checked_add(length).is_none() {
            return Err(STATUS_INVALID_PARAMETER);
        }
        match self.open_object(mr)? {
            Object::Mr {
                mr: Some(h),
                kind:
                    MrKind::Regular {
                        registered: Some((base, len, mr_access)),
                    },
                ..
            } => {
                if va < *base || va + length > base.saturating_add(*len) {
                    return Err(STATUS_INVALID_PARAMETER);
                }
                if access.contains(Access::REMOTE_WRITE) && !mr_access.contains(Access::LOCAL_WRITE)
                {
                    return Err(STATUS_ACCESS_VIOLATION);
                }
                Ok((*h, mwh, access))
            }
            // A fast-registered MR's span and rights change with each
            // registration: the engine checks them when the bind executes
            // (a failure is an error completion, STATUS_ACCESS_VIOLATION).
            Object::Mr {
                mr: Some(h),
                kind: MrKind::FastRegister { .. },
                ..
            } => Ok((*h, mwh, access)),
            Object::Mr { .. } => Err(STATUS_INVALID_DEVICE_STATE),
            _ => Err(STATUS_INVALID_HANDLE),
        }
    }

    /// NdkInvalidate of a fast-registered MR or a bound MW. Inline
    /// failures: STATUS_CONNECTION_INVALID, and by project decision
    /// STATUS_INVALID_DEVICE_REQUEST for a regular MR (the consumer
    /// deregisters those, the NDK_FN_REGISTER_MR, NDK_FN_FAST_REGISTER and NDK_FN_BUILD_LAM pages) and STATUS_INVALID_DEVICE_STATE for an MR
    /// never initialized. Invalidating what is not valid (an unbound MW, an
    /// MR not fast-registered) is an error completion,
    /// STATUS_INVALID_DEVICE_REQUEST (the NDK_RESULT page, ND2 ndstatus.mc as the analog, ND2 analog).
    pub fn invalidate(
        &mut self,
        qp: ObjectId,
        context: usize,
        target: ObjectId,
        flags: ULONG,
    ) -> NTSTATUS {
        let t = match self.check_invalidate(qp, target, flags) {
            Ok(t) => t,
            Err(st) => return self.reject_post(qp, st),
        };
        self.post_wr(
            qp,
            context,
            SendOp::LocalInvalidate(t),
            Payload::Sges(&[]),
            flags,
        )
    }

    fn check_invalidate(
        &self,
        qp: ObjectId,
        target: ObjectId,
        flags: ULONG,
    ) -> Result<InvalidateTarget, NTSTATUS> {
        self.check_memory_op(qp, PostKind::Invalidate, flags)?;
        match self.open_object(target)? {
            Object::Mw { mw } => Ok(InvalidateTarget::Mw(*mw)),
            Object::Mr {
                mr: Some(h),
                kind: MrKind::FastRegister { .. },
                ..
            } => Ok(InvalidateTarget::Mr(*h)),
            Object::Mr {
                kind: MrKind::Regular { .. },
                ..
            } => Err(STATUS_INVALID_DEVICE_REQUEST),
            Object::Mr { .. } => Err(STATUS_INVALID_DEVICE_STATE),
            _ => Err(STATUS_INVALID_HANDLE),
        }
    }
}
