//! Completion queues: NdkCreateCq, NdkResizeCq, NdkArmCq and
//! NdkGetCqResults(Ex), the notification upcall (one at a time per CQ), and
//! how an engine completion reads as an NDK_RESULT_EX.

use alloc::vec::Vec;

use ndkpi::*;
use roce::rc::{Completion, CqHandle, Memory, NotifyType, WcOpcode, WcStatus};

use super::{Object, Provider};
use crate::object::{CloseState, ObjectId};
use crate::upcall::{Callback, UpcallKind};

/// One NDK_RESULT_EX worth of completion, as NdkGetCqResults(Ex) report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NdkCompletion {
    pub status: NTSTATUS,
    pub bytes_transferred: u32,
    pub qp_context: usize,
    pub request_context: usize,
    pub op_type: NDK_OPERATION_TYPE,
    /// The invalidated token of a ReceiveAndInvalidate.
    pub type_specific: usize,
}

impl NdkCompletion {
    /// An all-zero completion, to fill result arrays before a poll.
    pub const EMPTY: NdkCompletion = NdkCompletion {
        status: 0,
        bytes_transferred: 0,
        qp_context: 0,
        request_context: 0,
        op_type: 0,
        type_specific: 0,
    };
}

/// NDK_RESULT.Status of a work completion (the NDK_RESULT page, ND2 ndstatus.mc as the analog).
pub fn wc_status(status: WcStatus, opcode: WcOpcode) -> NTSTATUS {
    match status {
        WcStatus::Success => STATUS_SUCCESS,
        WcStatus::WrFlushErr => STATUS_CANCELLED,
        // A receive buffer too small for the incoming message.
        WcStatus::LocLenErr if matches!(opcode, WcOpcode::Recv | WcOpcode::RecvRdmaWithImm) => {
            STATUS_BUFFER_OVERFLOW
        }
        WcStatus::LocLenErr => STATUS_DATA_OVERRUN,
        WcStatus::LocProtErr | WcStatus::LocAccessErr | WcStatus::MwBindErr => {
            STATUS_ACCESS_VIOLATION
        }
        WcStatus::RemAccessErr | WcStatus::RemOpErr | WcStatus::RemInvReqErr => {
            STATUS_REMOTE_RESOURCES
        }
        // RNR exhaustion has no NDK status of its own (the NDK_RESULT page, ND2 ndstatus.mc as the analog): like a dead
        // peer, it is a timeout.
        WcStatus::RetryExcErr | WcStatus::RnrRetryExcErr => STATUS_IO_TIMEOUT,
        WcStatus::LocQpOpErr | WcStatus::BadRespErr => STATUS_INVALID_DEVICE_REQUEST,
    }
}

/// NDK_OPERATION_TYPE of a work completion.
pub fn op_type(c: &Completion) -> NDK_OPERATION_TYPE {
    match c.opcode {
        WcOpcode::Recv | WcOpcode::RecvRdmaWithImm if c.invalidated_rkey.is_some() => {
            NdkOperationTypeReceiveAndInvalidate
        }
        WcOpcode::Recv | WcOpcode::RecvRdmaWithImm => NdkOperationTypeReceive,
        WcOpcode::Send => NdkOperationTypeSend,
        WcOpcode::RdmaWrite => NdkOperationTypeWrite,
        WcOpcode::RdmaRead => NdkOperationTypeRead,
        WcOpcode::LocalInvalidate => NdkOperationTypeInvalidate,
        WcOpcode::FastRegister => NdkOperationTypeFastRegister,
        WcOpcode::BindMw => NdkOperationTypeBind,
    }
}

impl<M: Memory> Provider<M> {
    /// NdkCreateCq.
    pub fn create_cq(&mut self, depth: u32, notify: Callback) -> Result<ObjectId, NTSTATUS> {
        if depth == 0 || depth > self.config.limits.max_cq_depth {
            return Err(STATUS_INVALID_PARAMETER);
        }
        let cq = self
            .device
            .rc()
            .create_cq(depth)
            .map_err(|_| STATUS_INSUFFICIENT_RESOURCES)?;
        let id = self.insert(
            Object::Cq {
                cq,
                notify,
                notifying: false,
                deferred: None,
            },
            Vec::new(),
        );
        self.cqs.push((cq, id));
        Ok(id)
    }

    fn cq_handle(&self, cq: ObjectId) -> Option<CqHandle> {
        if !self.is_open(cq) {
            return None;
        }
        match self.objects.get(cq)?.object {
            Object::Cq { cq, .. } => Some(cq),
            _ => None,
        }
    }

    pub(super) fn open_cq(&self, cq: ObjectId) -> Result<CqHandle, NTSTATUS> {
        match self.open_object(cq)? {
            Object::Cq { cq, .. } => Ok(*cq),
            _ => Err(STATUS_INVALID_HANDLE),
        }
    }

    /// NdkResizeCq: completes inline. Shrinking below the completions the
    /// CQ holds fails and leaves it as it was.
    pub fn resize_cq(&mut self, cq: ObjectId, depth: u32) -> NTSTATUS {
        if depth == 0 || depth > self.config.limits.max_cq_depth {
            return STATUS_INVALID_PARAMETER;
        }
        let h = match self.open_cq(cq) {
            Ok(h) => h,
            Err(s) => return s,
        };
        match self.device.rc().resize_cq(h, depth) {
            Ok(()) => STATUS_SUCCESS,
            Err(roce::rc::Error::InvalidArgument) => STATUS_INVALID_PARAMETER,
            Err(_) => STATUS_INSUFFICIENT_RESOURCES,
        }
    }

    /// NdkArmCq. An unknown type arms nothing (project decision: the call
    /// is VOID, and no documented type matches it).
    pub fn arm_cq(&mut self, cq: ObjectId, kind: ULONG) {
        let Some(h) = self.cq_handle(cq) else {
            return;
        };
        let t = match kind {
            NDK_CQ_NOTIFY_ANY => NotifyType::Any,
            NDK_CQ_NOTIFY_SOLICITED => NotifyType::Solicited,
            NDK_CQ_NOTIFY_ERRORS => NotifyType::Errors,
            _ => return,
        };
        let _ = self.device.rc().arm_cq(h, t);
        self.process_events();
    }

    /// A CQ's notification upcall returned: one that became due meanwhile
    /// is made now.
    pub(super) fn cq_notified(&mut self, cq: ObjectId) {
        let Some(Object::Cq {
            notify,
            notifying,
            deferred,
            ..
        }) = self.objects.get_mut(cq).map(|e| &mut e.object)
        else {
            return;
        };
        *notifying = false;
        if let Some(status) = deferred.take() {
            let cb = *notify;
            *notifying = true;
            self.queue(cq, cb, UpcallKind::CqNotify { status });
        }
    }

    pub(super) fn notify_cq(&mut self, cq: CqHandle, status: NTSTATUS) {
        let Some(&(_, id)) = self.cqs.iter().find(|(h, _)| *h == cq) else {
            return;
        };
        let Some(e) = self.objects.get_mut(id) else {
            return;
        };
        if e.close != CloseState::Open {
            return;
        }
        if let Object::Cq {
            notify,
            notifying,
            deferred,
            ..
        } = &mut e.object
        {
            if *notifying {
                // Serialized: the running callback's return queues it.
                *deferred = Some(match *deferred {
                    Some(s) if s != STATUS_SUCCESS => s,
                    _ => status,
                });
                return;
            }
            *notifying = true;
            let cb = *notify;
            self.queue(id, cb, UpcallKind::CqNotify { status });
        }
    }

    /// NdkGetCqResults(Ex): up to `out.len()` completions. An overflowed CQ
    /// returns none (the NDKPI completion handling requirements page, the NDKPI pages leave an unarmed CQ's overrun unspecified). The completions of one
    /// queue come in the order its requests were posted (project decision
    /// on project decisions where the NDKPI pages are silent, as ND2 requires; the engine completes in order).
    /// BytesTransferred is set for every completion the engine sized
    /// (NDK defines it for receives only).
    pub fn get_cq_results(&mut self, cq: ObjectId, out: &mut [NdkCompletion]) -> usize {
        let Some(h) = self.cq_handle(cq) else {
            return 0;
        };
        let mut raw = [Completion::default(); 16];
        let mut n = 0;
        while n < out.len() {
            let want = (out.len() - n).min(raw.len());
            let Some(chunk) = raw.get_mut(..want) else {
                break;
            };
            let got = self.device.rc().poll_cq(h, chunk);
            for c in raw.iter().take(got) {
                let qp_context = self.context_of_qpn(c.qpn);
                if let Some(o) = out.get_mut(n) {
                    *o = NdkCompletion {
                        status: wc_status(c.status, c.opcode),
                        bytes_transferred: c.byte_len,
                        qp_context,
                        request_context: c.wr_id as usize,
                        op_type: op_type(c),
                        type_specific: c.invalidated_rkey.map_or(0, |k| k as usize),
                    };
                }
                n += 1;
            }
            if got < want {
                break;
            }
        }
        if !self.zombies.is_empty() {
            self.reap_zombies(None);
        }
        n
    }
}
