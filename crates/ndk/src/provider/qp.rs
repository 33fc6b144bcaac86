//! Queue pairs: NdkCreateQp(WithSrq), NdkFlush, and the QP record the
//! connector and the data path work on.

use alloc::boxed::Box;
use alloc::vec;

use ndkpi::*;
use roce::rc::{Access, CqHandle, Memory, PdHandle, QpAttr, QpInit, QpState};

use super::{Object, Provider};
use crate::object::ObjectId;

/// The QP object.
#[derive(Debug)]
pub struct QpObject {
    pub(super) qpn: u32,
    pub(super) context: usize,
    pub(super) connector: Option<ObjectId>,
    pub(super) pd: PdHandle,
    /// The SRQ receives come from (NdkCreateQpWithSrq).
    pub(super) srq: Option<ObjectId>,
    pub(super) receive_sge: u32,
    pub(super) initiator_sge: u32,
    pub(super) inline_size: u32,
    pub(super) cqs: [CqHandle; 2],
}

impl<M: Memory> Provider<M> {
    /// NdkCreateQp (receives on the QP's own queue).
    #[allow(clippy::too_many_arguments)]
    pub fn create_qp(
        &mut self,
        pd: ObjectId,
        receive_cq: ObjectId,
        initiator_cq: ObjectId,
        context: usize,
        receive_depth: u32,
        initiator_depth: u32,
        max_receive_sge: u32,
        max_initiator_sge: u32,
        inline_size: u32,
    ) -> Result<ObjectId, NTSTATUS> {
        let l = self.config.limits;
        if receive_depth == 0 || receive_depth > l.max_qp_depth || max_receive_sge > l.max_sge {
            return Err(STATUS_INVALID_PARAMETER);
        }
        self.create_qp_inner(
            pd,
            receive_cq,
            initiator_cq,
            None,
            context,
            (receive_depth, max_receive_sge),
            initiator_depth,
            max_initiator_sge,
            inline_size,
        )
    }

    /// NdkCreateQpWithSrq: receives come from `srq` (which becomes the QP's
    /// antecedent, the NDKPI object lifetime requirements page).
    #[allow(clippy::too_many_arguments)]
    pub fn create_qp_with_srq(
        &mut self,
        pd: ObjectId,
        receive_cq: ObjectId,
        initiator_cq: ObjectId,
        srq: ObjectId,
        context: usize,
        initiator_depth: u32,
        max_initiator_sge: u32,
        inline_size: u32,
    ) -> Result<ObjectId, NTSTATUS> {
        self.create_qp_inner(
            pd,
            receive_cq,
            initiator_cq,
            Some(srq),
            context,
            (0, 0),
            initiator_depth,
            max_initiator_sge,
            inline_size,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn create_qp_inner(
        &mut self,
        pd: ObjectId,
        receive_cq: ObjectId,
        initiator_cq: ObjectId,
        srq: Option<ObjectId>,
        context: usize,
        (receive_depth, max_receive_sge): (u32, u32),
        initiator_depth: u32,
        max_initiator_sge: u32,
        inline_size: u32,
    ) -> Result<ObjectId, NTSTATUS> {
        let l = self.config.limits;
        // Each limit must be within NDK_ADAPTER_INFO's (the NDK_FN_CREATE_QP page).
        if initiator_depth == 0
            || initiator_depth > l.max_qp_depth
            || max_initiator_sge > l.max_sge
            || inline_size > l.inline_cap()
        {
            return Err(STATUS_INVALID_PARAMETER);
        }
        let pdh = self.open_pd(pd)?;
        let rcq = self.open_cq(receive_cq)?;
        let icq = self.open_cq(initiator_cq)?;
        let (srq_handle, receive_sge) = match srq {
            Some(s) => match self.open_object(s)? {
                Object::Srq { srq, max_sge, .. } => (Some(*srq), *max_sge),
                _ => return Err(STATUS_INVALID_HANDLE),
            },
            None => (None, max_receive_sge),
        };
        let rc = self.device.rc();
        let qpn = rc
            .create_qp(&QpInit {
                pd: pdh,
                send_cq: icq,
                recv_cq: rcq,
                srq: srq_handle,
                sq_depth: initiator_depth,
                rq_depth: receive_depth,
                max_send_sge: max_initiator_sge.max(1),
                max_recv_sge: max_receive_sge.max(1),
                max_inline: inline_size,
            })
            .map_err(|e| match e {
                // An SRQ of another PD (the NDKPI object lifetime requirements page: the SRQ is the
                // PD's child; the QP must share it).
                roce::rc::Error::InvalidArgument => STATUS_INVALID_PARAMETER,
                _ => STATUS_INSUFFICIENT_RESOURCES,
            })?;
        // Init at once, so receives can be posted before the connection
        // exists (the NDKPI work request posting requirements and deferred processing scheme pages).
        let init = QpAttr {
            state: Some(QpState::Init),
            access: Some(Access::REMOTE_READ.union(Access::REMOTE_WRITE)),
            ..QpAttr::default()
        };
        if rc.modify_qp(qpn, &init).is_err() {
            let _ = rc.destroy_qp(qpn);
            return Err(STATUS_INSUFFICIENT_RESOURCES);
        }
        let mut antecedents = vec![pd, receive_cq];
        if initiator_cq != receive_cq {
            antecedents.push(initiator_cq);
        }
        antecedents.extend(srq);
        let id = self.insert(
            Object::Qp(Box::new(QpObject {
                qpn,
                context,
                connector: None,
                pd: pdh,
                srq,
                receive_sge,
                initiator_sge: max_initiator_sge,
                inline_size,
                cqs: [icq, rcq],
            })),
            antecedents,
        );
        self.by_qpn.insert(qpn, id);
        Ok(id)
    }

    pub(super) fn qp_obj(&self, qp: ObjectId) -> Option<&QpObject> {
        match &self.objects.get(qp)?.object {
            Object::Qp(q) => Some(q),
            _ => None,
        }
    }

    /// The QPContext a QP was created with.
    pub fn qp_context(&self, qp: ObjectId) -> Option<usize> {
        match self.objects.get(qp)?.object {
            Object::Qp(ref q) => Some(q.context),
            _ => None,
        }
    }

    pub(super) fn qp_connector(&self, qpn: u32) -> Option<ObjectId> {
        let id = *self.by_qpn.get(&qpn)?;
        match self.objects.get(id)?.object {
            Object::Qp(ref q) => q.connector,
            _ => None,
        }
    }

    /// NdkFlush: every outstanding request of the QP completes with
    /// STATUS_CANCELLED; later posts complete the same way at once (the QP
    /// stays in Error). Safe against a concurrent post (the NDKPI work request posting requirements and deferred processing scheme pages): the
    /// shell serializes both on its lock, and each request is either
    /// flushed or was never posted.
    pub fn flush(&mut self, qp: ObjectId) {
        self.flush_qp(qp);
        self.process_events();
    }

    /// The implicit flush: the QP enters Error, and every outstanding
    /// request completes with STATUS_CANCELLED on its CQ.
    pub(super) fn flush_qp(&mut self, qp: ObjectId) {
        if let Some(qpn) = self.qp_obj(qp).map(|q| q.qpn) {
            let _ = self.device.rc().modify_qp(
                qpn,
                &QpAttr {
                    state: Some(QpState::Error),
                    ..QpAttr::default()
                },
            );
        }
    }
}
