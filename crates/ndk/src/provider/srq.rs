//! Shared receive queues: NdkCreateSrq, NdkModifySrq, NdkSrqReceive, and
//! the one-shot limit notification.

use alloc::vec;

use ndkpi::*;
use roce::rc::{Memory, Sge, SrqHandle};

use super::post::MAX_SGES;
use super::{NdkSge, Object, Provider};
use crate::object::{CloseState, ObjectId};
use crate::upcall::{Callback, UpcallKind};

impl<M: Memory> Provider<M> {
    /// NdkCreateSrq. `threshold` > 0 arms the one-shot limit notification
    /// (the NDK_FN_CREATE_QP page).
    pub fn create_srq(
        &mut self,
        pd: ObjectId,
        depth: u32,
        max_sge: u32,
        threshold: u32,
        notify: Callback,
    ) -> Result<ObjectId, NTSTATUS> {
        let l = self.config.limits;
        if depth == 0 || depth > l.max_srq_depth || max_sge > l.max_sge {
            return Err(STATUS_INVALID_PARAMETER);
        }
        let pdh = self.open_pd(pd)?;
        let srq = self
            .device
            .rc()
            .create_srq(pdh, depth, max_sge.max(1), threshold)
            .map_err(|_| STATUS_INSUFFICIENT_RESOURCES)?;
        let id = self.insert(
            Object::Srq {
                srq,
                notify,
                depth,
                capacity: depth,
                max_sge,
            },
            vec![pd],
        );
        self.srqs.push((srq, id));
        Ok(id)
    }

    /// NdkModifySrq: completes inline. `depth` 0 keeps the depth;
    /// `threshold` 0 keeps the threshold and its arm state, > 0 arms the
    /// one-shot notification, which fires at once if fewer receives are
    /// queued already (the NDK_FN_CREATE_QP page).
    ///
    /// Project decisions where the documentation gives only
    /// STATUS_INVALID_PARAMETER: a depth above MaxSrqDepth or below the
    /// receives queued now is STATUS_INVALID_PARAMETER and changes nothing;
    /// a depth above the one the SRQ was created with is
    /// STATUS_INSUFFICIENT_RESOURCES (the engine's queue is sized at
    /// creation and cannot grow; nothing is allocated on this path).
    pub fn modify_srq(&mut self, srq: ObjectId, depth: u32, threshold: u32) -> NTSTATUS {
        let (h, capacity) = match self.open_object(srq) {
            Ok(Object::Srq { srq, capacity, .. }) => (*srq, *capacity),
            Ok(_) => return STATUS_INVALID_HANDLE,
            Err(s) => return s,
        };
        if depth != 0 {
            let queued = self.device.rc_ref().srq_len(h);
            if depth > self.config.limits.max_srq_depth || (depth as usize) < queued {
                return STATUS_INVALID_PARAMETER;
            }
            if depth > capacity {
                return STATUS_INSUFFICIENT_RESOURCES;
            }
            if let Some(Object::Srq { depth: d, .. }) =
                self.objects.get_mut(srq).map(|e| &mut e.object)
            {
                *d = depth;
            }
        }
        if threshold != 0 && self.device.rc().modify_srq(h, threshold).is_err() {
            return STATUS_INVALID_PARAMETER;
        }
        self.process_events();
        STATUS_SUCCESS
    }

    /// NdkSrqReceive. Errors as NdkReceive's (see [`Self::post_receive`]).
    pub fn post_srq_receive(&mut self, srq: ObjectId, context: usize, sgl: &[NdkSge]) -> NTSTATUS {
        let (h, depth, max_sge) = match self.open_object(srq) {
            Ok(Object::Srq {
                srq,
                depth,
                max_sge,
                ..
            }) => (*srq, *depth, *max_sge),
            Ok(_) => return STATUS_INVALID_HANDLE,
            Err(s) => return s,
        };
        if sgl.len() > max_sge as usize {
            return STATUS_DATA_OVERRUN;
        }
        if self.device.rc_ref().srq_len(h) >= depth as usize {
            return STATUS_NO_MORE_ENTRIES;
        }
        let mut buf = [Sge::default(); MAX_SGES];
        let n = match Self::sges(sgl, &mut buf) {
            Ok(n) => n,
            Err(s) => return s,
        };
        let r = self
            .device
            .rc()
            .post_srq_recv(h, context as u64, buf.get(..n).unwrap_or(&[]));
        self.process_events();
        r.map_or_else(Self::post_error, |()| STATUS_SUCCESS)
    }

    /// The SRQ's receive count fell below its armed threshold: one
    /// notification per arm (the engine disarms), none once its close was
    /// requested (the NDKPI object lifetime requirements page rule 4, the NDK_FN_CREATE_QP page).
    pub(super) fn notify_srq(&mut self, srq: SrqHandle) {
        let Some(&(_, id)) = self.srqs.iter().find(|(h, _)| *h == srq) else {
            return;
        };
        let Some(e) = self.objects.get(id) else {
            return;
        };
        if e.close != CloseState::Open {
            return;
        }
        if let Object::Srq { notify, .. } = e.object {
            self.queue(
                id,
                notify,
                UpcallKind::SrqNotify {
                    status: STATUS_SUCCESS,
                },
            );
        }
    }
}
