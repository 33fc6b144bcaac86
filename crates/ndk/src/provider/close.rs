//! NdkCloseObject for every object: a close completes once the object has
//! no live successor, no queued or running upcall and no pending request
//! (the NDKPI object lifetime requirements page rules 4 and 5), then releases the object's NIC
//! resources and lets its antecedents' closes proceed.

use ndkpi::*;
use roce::rc::Memory;

use super::{Gone, Object, Provider};
use crate::connector::Input;
use crate::object::{CloseState, ObjectId};
use crate::upcall::{Callback, UpcallKind};

impl<M: Memory> Provider<M> {
    /// NdkCloseObject: STATUS_SUCCESS (closed now; `done` is not called) or
    /// STATUS_PENDING (`done` is the object's last upcall).
    pub fn close(&mut self, id: ObjectId, done: Callback) -> NTSTATUS {
        let Some(e) = self.objects.get_mut(id) else {
            return STATUS_INVALID_HANDLE;
        };
        if e.close != CloseState::Open {
            return STATUS_INVALID_DEVICE_STATE;
        }
        e.close = CloseState::Pending(done);
        // Start what the close needs (the NDKPI object lifetime requirements page): a listener refuses new
        // requests at once; a connector cancels or tears down.
        match &e.object {
            Object::Listener { cm: Some(cm), .. } => {
                let cm = *cm;
                let _ = self.device.cm().unlisten(cm);
                self.by_listener.remove(&cm);
            }
            Object::Connector(_) => {
                self.drive(id, Input::Close);
            }
            Object::Qp(_) => {
                // The consumer gets its work requests back now, flushed
                // into their CQs, though the close itself may wait for the
                // QP's connector (closed after it, or still connecting).
                self.flush_qp(id);
                self.process_events();
            }
            _ => {}
        }
        if self.can_close(id) {
            // Nothing to wait for: close inline, no callback.
            self.destroy(id);
            self.remove(id);
            return STATUS_SUCCESS;
        }
        STATUS_PENDING
    }

    fn can_close(&self, id: ObjectId) -> bool {
        let Some(e) = self.objects.get(id) else {
            return false;
        };
        let request_pending = match &e.object {
            Object::Connector(c) => c.state().pending().is_some(),
            _ => false,
        };
        e.successors == 0 && e.upcalls == 0 && !request_pending
    }

    /// Completes a pending close if nothing is left to wait for.
    pub(super) fn try_close(&mut self, id: ObjectId) {
        let Some(CloseState::Pending(done)) = self.objects.get(id).map(|e| e.close) else {
            return;
        };
        if !self.can_close(id) {
            return;
        }
        self.destroy(id);
        if let Some(e) = self.objects.get_mut(id) {
            e.close = CloseState::Closing;
        }
        if done.is_some() {
            self.queue(id, done, UpcallKind::Close);
        } else {
            self.remove(id);
        }
    }

    /// The close completion returned: the object is gone.
    pub(super) fn finish_close(&mut self, id: ObjectId) {
        if self
            .objects
            .get(id)
            .is_some_and(|e| e.upcalls == 0 && e.close == CloseState::Closing)
        {
            self.remove(id);
        }
    }

    /// Releases the NIC resources of an object being closed.
    fn destroy(&mut self, id: ObjectId) {
        let Some(e) = self.objects.get(id) else {
            return;
        };
        match &e.object {
            Object::Pd { pd } => {
                let pd = *pd;
                self.reap_zombies(Some(Gone::Pd(pd)));
                let _ = self.device.rc().dealloc_pd(pd);
            }
            Object::Cq { cq, .. } => {
                let cq = *cq;
                // Its entries go with it, so no zombie QP need wait for them.
                self.reap_zombies(Some(Gone::Cq(cq)));
                let _ = self.device.rc().destroy_cq(cq);
                self.cqs.retain(|(h, _)| *h != cq);
            }
            Object::Srq { srq, .. } => {
                // Receives still queued have no CQ to complete on: every QP
                // that drew from the SRQ (its successors) is closed, so they
                // are released without a completion (project decision; NDK
                // has no SRQ flush, the NDKPI object lifetime requirements page rule 7).
                let srq = *srq;
                self.reap_zombies(Some(Gone::Srq(srq)));
                let _ = self.device.rc().destroy_srq(srq);
                self.srqs.retain(|(h, _)| *h != srq);
            }
            Object::Qp(_) => self.retire_qp(id),
            Object::Mr { mr: Some(mr), .. } => {
                let mr = *mr;
                let _ = self.device.rc().dereg_mr(mr);
            }
            Object::Mr { mr: None, .. } => {}
            Object::Mw { mw } => {
                let mw = *mw;
                let _ = self.device.rc().dealloc_mw(mw);
            }
            Object::Connector(c) => {
                let (conn, port) = (c.conn(), c.port);
                if let Some(conn) = conn {
                    self.device.cm().release(self.now, conn);
                    self.by_conn.remove(&conn);
                }
                if let Some(p) = port {
                    self.release_port(p);
                }
            }
            Object::SharedEndpoint { addr } => {
                let key = (addr.ip(), addr.port());
                self.release_port(key);
            }
            Object::Listener { cm, port, .. } => {
                let (cm, port) = (*cm, *port);
                if let Some(cm) = cm {
                    let _ = self.device.cm().unlisten(cm);
                    self.by_listener.remove(&cm);
                }
                if let Some(p) = port {
                    self.release_port(p);
                }
            }
        }
        self.process_events();
    }

    /// Drops the entry and lets its antecedents' closes proceed.
    fn remove(&mut self, id: ObjectId) {
        let Some(e) = self.objects.remove(id) else {
            return;
        };
        for a in e.antecedents {
            if let Some(ae) = self.objects.get_mut(a) {
                ae.successors = ae.successors.saturating_sub(1);
            }
            if let Some(Object::Qp(q)) = self.objects.get_mut(a).map(|e| &mut e.object)
                && q.connector == Some(id)
            {
                q.connector = None;
            }
            self.try_close(a);
        }
    }
}
