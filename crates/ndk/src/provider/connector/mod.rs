//! The connector object: NdkConnect(WithSharedEndpoint), NdkCompleteConnect,
//! NdkAccept, NdkReject, NdkDisconnect and the connection's data. Its state
//! machine is [`state`] (which status for which case, and the bounds:
//! docs/disconnect.md); this file carries out each input's actions on the
//! QP (the flush of NdkDisconnect is `flush_qp`, in qp.rs), on IB CM and as upcalls.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::net::{IpAddr, SocketAddr};

use ndkpi::*;
use roce::cm::{AcceptParams, ConnId, ConnectParams};
use roce::rc::{Memory, Path, QpAttr, QpState};
use roce::wire::packet::udp_sport_from_flow_label;

use super::{Object, Provider};
pub mod state;

use crate::object::{CloseState, ObjectId};
use crate::upcall::{Callback, UpcallKind};
pub use state::{Actions, CmAction, ConnectorState, Failure, Input, Pending, QpAction};

/// RNR timer code this responder sends (IBA Vol 1 ch. 9 (requester retry); Linux rxe_comp.c table: 0.64 ms): short
/// enough that a sender waiting for a receive buffer resumes quickly.
const MIN_RNR_TIMER: u8 = 12;

/// The connector object.
#[derive(Debug)]
pub struct Connector {
    state: ConnectorState,
    conn: Option<ConnId>,
    qp: Option<ObjectId>,
    listener: Option<ObjectId>,
    /// The request that returned STATUS_PENDING, to complete once.
    pending: Option<Callback>,
    disconnect_event: Option<(Callback, bool)>,
    inbound_read_limit: u32,
    outbound_read_limit: u32,
    pub(super) local: Option<SocketAddr>,
    remote: Option<SocketAddr>,
    /// The implicit endpoint's port reservation.
    pub(super) port: Option<(IpAddr, u16)>,
    /// What NdkAccept asked for, sent when the state machine says so.
    accept: Option<StoredAccept>,
    /// Private data of an NdkReject.
    reject_data: ([u8; roce::cm::manager::MAX_REJ_PRIVATE_DATA], usize),
}

#[derive(Debug, Clone, Copy)]
struct StoredAccept {
    qpn: u32,
    /// The QP draws receives from an SRQ (the REP's SRQ bit).
    srq: bool,
    psn: u32,
    private: [u8; roce::cm::manager::MAX_REP_PRIVATE_DATA],
    len: usize,
}

impl Connector {
    /// An NdkCreateConnector connector: nothing bound yet.
    fn new() -> Self {
        Connector {
            state: ConnectorState::Idle,
            conn: None,
            qp: None,
            listener: None,
            pending: None,
            disconnect_event: None,
            inbound_read_limit: 0,
            outbound_read_limit: 0,
            local: None,
            remote: None,
            port: None,
            accept: None,
            reject_data: ([0; roce::cm::manager::MAX_REJ_PRIVATE_DATA], 0),
        }
    }

    /// The passive connector for request `conn` that `listener` delivered.
    pub(super) fn incoming(
        conn: ConnId,
        listener: ObjectId,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> Self {
        Connector {
            state: ConnectorState::Incoming,
            conn: Some(conn),
            listener: Some(listener),
            local: Some(local),
            remote: Some(remote),
            ..Connector::new()
        }
    }

    /// The connector's state.
    pub const fn state(&self) -> ConnectorState {
        self.state
    }
    /// The CM connection behind it.
    pub const fn conn(&self) -> Option<ConnId> {
        self.conn
    }
    /// The listener that delivered it (passive connectors).
    pub const fn listener(&self) -> Option<ObjectId> {
        self.listener
    }
    /// The QP bound to it by NdkConnect or NdkAccept.
    pub const fn qp(&self) -> Option<ObjectId> {
        self.qp
    }
}

/// The IB MTU code (IBA Vol 1 §9.7.5.1.5 / the CM REQ's Path Packet Payload
/// MTU, 1 = 256 ... 5 = 4096) of the largest IB MTU not above `bytes`; 256
/// below that (the smallest a RoCE port offers).
pub(crate) fn mtu_code(bytes: u32) -> u8 {
    match bytes {
        4096.. => 5,
        2048.. => 4,
        1024.. => 3,
        512.. => 2,
        _ => 1,
    }
}

fn mtu_bytes(code: u8) -> u32 {
    match code {
        1 => 256,
        2 => 512,
        3 => 1024,
        4 => 2048,
        _ => 4096,
    }
}

impl<M: Memory> Provider<M> {
    /// A connector's record.
    pub fn connector(&self, id: ObjectId) -> Option<&Connector> {
        match &self.objects.get(id)?.object {
            Object::Connector(c) => Some(c),
            _ => None,
        }
    }

    /// NdkCreateConnector.
    pub fn create_connector(&mut self) -> ObjectId {
        self.insert(Object::Connector(Box::new(Connector::new())), Vec::new())
    }

    fn connector_mut(&mut self, id: ObjectId) -> Option<&mut Connector> {
        match &mut self.objects.get_mut(id)?.object {
            Object::Connector(c) => Some(c),
            _ => None,
        }
    }

    /// NdkConnect: returns STATUS_PENDING and completes through `done`, or
    /// fails inline.
    #[allow(clippy::too_many_arguments)]
    pub fn connect(
        &mut self,
        connector: ObjectId,
        qp: ObjectId,
        src: SocketAddr,
        dst: SocketAddr,
        inbound_read_limit: u32,
        outbound_read_limit: u32,
        private_data: &[u8],
        done: Callback,
    ) -> NTSTATUS {
        if src.is_ipv4() != dst.is_ipv4() || !self.is_local(src.ip()) {
            return STATUS_INVALID_ADDRESS;
        }
        if let Err(s) = self.check_connect(connector, qp, dst, private_data) {
            return s;
        }
        let port = match self.reserve_port(src.ip(), src.port()) {
            Ok(p) => p,
            Err(s) => return s,
        };
        let local = SocketAddr::new(src.ip(), port);
        let r = self.start_connect(
            connector,
            qp,
            None,
            local,
            dst,
            (inbound_read_limit, outbound_read_limit),
            private_data,
            done,
        );
        if r != STATUS_PENDING {
            self.release_port((src.ip(), port));
        }
        r
    }

    /// NdkConnectWithSharedEndpoint: as [`Self::connect`], from the shared
    /// endpoint's address; connections over one endpoint must go to
    /// different destinations (STATUS_ADDRESS_ALREADY_EXISTS otherwise).
    #[allow(clippy::too_many_arguments)]
    pub fn connect_with_shared_endpoint(
        &mut self,
        connector: ObjectId,
        qp: ObjectId,
        endpoint: ObjectId,
        dst: SocketAddr,
        inbound_read_limit: u32,
        outbound_read_limit: u32,
        private_data: &[u8],
        done: Callback,
    ) -> NTSTATUS {
        let local = match self.objects.get(endpoint).map(|e| (&e.object, e.close)) {
            Some((Object::SharedEndpoint { addr }, CloseState::Open)) => *addr,
            _ => return STATUS_INVALID_HANDLE,
        };
        if local.is_ipv4() != dst.is_ipv4() {
            return STATUS_INVALID_ADDRESS;
        }
        if let Err(s) = self.check_connect(connector, qp, dst, private_data) {
            return s;
        }
        let taken = self.objects.ids().any(|id| {
            self.connector(id).is_some_and(|c| {
                c.local == Some(local) && c.remote == Some(dst) && c.state != ConnectorState::Idle
            })
        });
        if taken {
            return STATUS_ADDRESS_ALREADY_EXISTS;
        }
        let key = (local.ip(), local.port());
        // The endpoint's reservation gains a reference per connector
        // (the NDKPI listeners, connectors and endpoints page).
        self.hold_port(key);
        let r = self.start_connect(
            connector,
            qp,
            Some(endpoint),
            local,
            dst,
            (inbound_read_limit, outbound_read_limit),
            private_data,
            done,
        );
        if r != STATUS_PENDING {
            self.release_port(key);
        }
        r
    }

    /// Whether a QP can be bound to a new connection: only one still in
    /// Init. A QP that was connected has been flushed (Error) or left in
    /// RTR/RTS by an aborted connection; IBA Vol 1 10.3.1 lets a QP leave
    /// Error only through Reset, which NDKPI has no call for, so such a QP
    /// can never carry another connection and NdkConnect / NdkAccept refuse
    /// it with STATUS_INVALID_DEVICE_STATE (docs/disconnect.md).
    fn qp_is_fresh(&self, qpn: u32) -> bool {
        self.device
            .rc_ref()
            .query_qp(qpn)
            .is_some_and(|a| a.state == QpState::Init)
    }

    fn check_connect(
        &self,
        connector: ObjectId,
        qp: ObjectId,
        dst: SocketAddr,
        private_data: &[u8],
    ) -> Result<(), NTSTATUS> {
        if !self.is_open(connector) || !self.is_open(qp) {
            return Err(STATUS_INVALID_HANDLE);
        }
        if dst.ip().is_unspecified() || dst.port() == 0 {
            return Err(STATUS_INVALID_ADDRESS);
        }
        if private_data.len() > roce::cm::manager::MAX_REQ_PRIVATE_DATA {
            return Err(STATUS_INVALID_PARAMETER);
        }
        match self.objects.get(qp).map(|e| &e.object) {
            Some(Object::Qp(q)) if q.connector.is_none() && self.qp_is_fresh(q.qpn) => {}
            _ => return Err(STATUS_INVALID_DEVICE_STATE),
        }
        if self.connector(connector).map(|c| c.state) != Some(ConnectorState::Idle) {
            return Err(STATUS_CONNECTION_INVALID);
        }
        Ok(())
    }

    /// Sends the REQ and binds QP, connector and (shared) endpoint.
    #[allow(clippy::too_many_arguments)]
    fn start_connect(
        &mut self,
        connector: ObjectId,
        qp: ObjectId,
        endpoint: Option<ObjectId>,
        local: SocketAddr,
        dst: SocketAddr,
        (inbound_read_limit, outbound_read_limit): (u32, u32),
        private_data: &[u8],
        done: Callback,
    ) -> NTSTATUS {
        let Some(qpn) = (match self.objects.get(qp).map(|e| &e.object) {
            Some(Object::Qp(q)) => Some(q.qpn),
            _ => None,
        }) else {
            return STATUS_INVALID_HANDLE;
        };
        let max = self.config.limits.max_read_limit;
        let irl = inbound_read_limit.min(max);
        let orl = outbound_read_limit.min(max);
        let psn = self.rng.next_u24();
        let params = ConnectParams {
            local,
            remote: dst,
            local_qpn: qpn,
            starting_psn: psn,
            responder_resources: irl.min(255) as u8,
            initiator_depth: orl.min(255) as u8,
            path_mtu: mtu_code(self.config.path_mtu),
            srq: self.qp_obj(qp).is_some_and(|q| q.srq.is_some()),
            private_data,
        };
        let now = self.now;
        let Ok(conn) = self.device.cm().connect(now, &params) else {
            return STATUS_INVALID_PARAMETER;
        };
        self.by_conn.insert(conn, connector);
        if let Some(Object::Qp(q)) = self.objects.get_mut(qp).map(|e| &mut e.object) {
            q.connector = Some(connector);
        }
        // The QP (and the shared endpoint) are now the connector's
        // antecedents (the NDKPI object lifetime requirements page).
        for a in core::iter::once(qp).chain(endpoint) {
            if let Some(e) = self.objects.get_mut(a) {
                e.successors += 1;
            }
            if let Some(e) = self.objects.get_mut(connector) {
                e.antecedents.push(a);
            }
        }
        if let Some(c) = self.connector_mut(connector) {
            c.conn = Some(conn);
            c.qp = Some(qp);
            c.local = Some(local);
            c.remote = Some(dst);
            c.port = Some((local.ip(), local.port()));
            c.inbound_read_limit = irl;
            c.outbound_read_limit = orl;
        }
        self.drive_call(connector, Input::Connect, done)
    }

    /// NdkCompleteConnect(Ex): completes inline.
    pub fn complete_connect(
        &mut self,
        connector: ObjectId,
        disconnect_event: Callback,
        ex: bool,
    ) -> NTSTATUS {
        if let Some(c) = self.connector_mut(connector)
            && c.state == ConnectorState::Replied
        {
            c.disconnect_event = Some((disconnect_event, ex));
        }
        self.drive_call(connector, Input::CompleteConnect, Callback::NONE)
    }

    /// NdkAccept(Ex): returns STATUS_PENDING and completes through `done`.
    #[allow(clippy::too_many_arguments)]
    pub fn accept(
        &mut self,
        connector: ObjectId,
        qp: ObjectId,
        inbound_read_limit: u32,
        outbound_read_limit: u32,
        private_data: &[u8],
        disconnect_event: Callback,
        ex: bool,
        done: Callback,
    ) -> NTSTATUS {
        if !self.is_open(connector) || !self.is_open(qp) {
            return STATUS_INVALID_HANDLE;
        }
        if private_data.len() > roce::cm::manager::MAX_REP_PRIVATE_DATA {
            return STATUS_INVALID_PARAMETER;
        }
        let state = self.connector(connector).map(|c| c.state);
        if state != Some(ConnectorState::Incoming) {
            // Let the state machine answer (aborted peer, wrong state).
            return self.drive_call(connector, Input::Accept, done);
        }
        let (qpn, srq) = match self.objects.get(qp).map(|e| &e.object) {
            Some(Object::Qp(q)) if q.connector.is_none() && self.qp_is_fresh(q.qpn) => {
                (q.qpn, q.srq.is_some())
            }
            _ => return STATUS_INVALID_DEVICE_STATE,
        };
        let Some(conn) = self.connector(connector).and_then(|c| c.conn) else {
            return STATUS_CONNECTION_INVALID;
        };
        let Some(peer) = self.device.cm_ref().connection(conn).map(|c| *c.peer()) else {
            return STATUS_CONNECTION_ABORTED;
        };
        let max = self.config.limits.max_read_limit;
        // Effective limits: ours, capped by the adapter and by the peer's
        // opposite limit (the NDK_FN_GET_CONNECTION_DATA page).
        let irl = inbound_read_limit
            .min(max)
            .min(u32::from(peer.initiator_depth));
        let orl = outbound_read_limit
            .min(max)
            .min(u32::from(peer.responder_resources));
        let psn = self.rng.next_u24();
        if let Some(Object::Qp(q)) = self.objects.get_mut(qp).map(|e| &mut e.object) {
            q.connector = Some(connector);
        }
        if let Some(e) = self.objects.get_mut(qp) {
            e.successors += 1;
        }
        if let Some(e) = self.objects.get_mut(connector) {
            e.antecedents.push(qp);
        }
        if let Some(c) = self.connector_mut(connector) {
            c.qp = Some(qp);
            c.inbound_read_limit = irl;
            c.outbound_read_limit = orl;
            c.disconnect_event = Some((disconnect_event, ex));
        }
        let _ = conn;
        let mut private = [0u8; roce::cm::manager::MAX_REP_PRIVATE_DATA];
        if let Some(d) = private.get_mut(..private_data.len()) {
            d.copy_from_slice(private_data);
        }
        if let Some(c) = self.connector_mut(connector) {
            c.accept = Some(StoredAccept {
                qpn,
                srq,
                psn,
                private,
                len: private_data.len(),
            });
        }
        self.drive_call(connector, Input::Accept, done)
    }

    /// NdkReject: completes inline.
    pub fn reject(&mut self, connector: ObjectId, private_data: &[u8]) -> NTSTATUS {
        if private_data.len() > roce::cm::manager::MAX_REJ_PRIVATE_DATA {
            return STATUS_INVALID_PARAMETER;
        }
        if let Some(c) = self.connector_mut(connector) {
            c.reject_data.0 = [0; roce::cm::manager::MAX_REJ_PRIVATE_DATA];
            if let Some(d) = c.reject_data.0.get_mut(..private_data.len()) {
                d.copy_from_slice(private_data);
            }
            c.reject_data.1 = private_data.len();
        }
        self.drive_call(connector, Input::Reject, Callback::NONE)
    }

    /// NdkDisconnect: STATUS_SUCCESS or a failure inline, or
    /// STATUS_PENDING and one completion through `done` (docs/disconnect.md).
    pub fn disconnect(&mut self, connector: ObjectId, done: Callback) -> NTSTATUS {
        if !self.is_open(connector) {
            return STATUS_INVALID_HANDLE;
        }
        self.drive_call(connector, Input::Disconnect, done)
    }

    /// NdkGetConnectionData: effective read limits and the peer's private
    /// data (the full field: its size is the "required data size").
    pub fn connection_data(&self, connector: ObjectId) -> Option<(u32, u32, &[u8])> {
        let c = self.connector(connector)?;
        let conn = self.device.cm_ref().connection(c.conn?)?;
        let peer = conn.peer();
        let (irl, orl) = match c.state {
            // Active side after the REP: cap by the peer's answer.
            ConnectorState::Replied => (
                c.inbound_read_limit.min(u32::from(peer.initiator_depth)),
                c.outbound_read_limit
                    .min(u32::from(peer.responder_resources)),
            ),
            // Passive side before accepting: what the requester asked for.
            ConnectorState::Incoming => (
                u32::from(peer.initiator_depth).min(self.config.limits.max_read_limit),
                u32::from(peer.responder_resources).min(self.config.limits.max_read_limit),
            ),
            _ => (c.inbound_read_limit, c.outbound_read_limit),
        };
        Some((irl, orl, conn.peer_private_data()))
    }

    /// NdkGetLocalAddress / NdkGetPeerAddress of a connector.
    pub fn connector_addresses(&self, connector: ObjectId) -> Option<(SocketAddr, SocketAddr)> {
        let c = self.connector(connector)?;
        Some((c.local?, c.remote?))
    }

    fn drive_call(&mut self, connector: ObjectId, input: Input, done: Callback) -> NTSTATUS {
        if let Some(c) = self.connector_mut(connector)
            && c.pending.is_none()
        {
            c.pending = Some(done);
        }
        let status = self
            .drive(connector, input)
            .unwrap_or(STATUS_CONNECTION_INVALID);
        // Only a call that went pending keeps its callback.
        if status != STATUS_PENDING
            && let Some(c) = self.connector_mut(connector)
            && c.state.pending().is_none()
        {
            c.pending = None;
        }
        status
    }

    /// Feeds the connector state machine and carries out its actions in
    /// order: QP work, CM work, the completion, the disconnect event.
    pub(super) fn drive(&mut self, connector: ObjectId, input: Input) -> Option<NTSTATUS> {
        let now = self.now;
        let c = self.connector_mut(connector)?;
        let (next, a): (ConnectorState, Actions) = c.state.on(input);
        c.state = next;
        let (conn, qp) = (c.conn, c.qp);
        if let Some(conn) = conn {
            self.device.cm().note(now, conn, input_note(input));
        }
        if let (Some(action), Some(qp)) = (a.qp, qp) {
            match action {
                QpAction::Ready => self.ready_qp(connector, qp, true, true),
                QpAction::ReadyToReceive => self.ready_qp(connector, qp, true, false),
                QpAction::ReadyToSend => self.ready_qp(connector, qp, false, true),
                QpAction::Flush => self.flush_qp(qp),
            }
            if let Some(conn) = conn {
                self.device.cm().note(
                    now,
                    conn,
                    match action {
                        QpAction::Ready => "QP to RTR and RTS",
                        QpAction::ReadyToReceive => "QP to RTR",
                        QpAction::ReadyToSend => "QP to RTS",
                        QpAction::Flush => "QP flushed",
                    },
                );
            }
        }
        if let (Some(action), Some(conn)) = (a.cm, conn) {
            let (accept, reject_data, irl, orl) = match self.connector(connector) {
                Some(c) => (
                    c.accept,
                    c.reject_data,
                    c.inbound_read_limit,
                    c.outbound_read_limit,
                ),
                None => return a.returns,
            };
            let cm = self.device.cm();
            let _ = match action {
                // The REQ went out when the connection was created.
                CmAction::Connect => Ok(()),
                CmAction::Accept => match accept {
                    Some(acc) => cm.accept(
                        now,
                        conn,
                        &AcceptParams {
                            local_qpn: acc.qpn,
                            starting_psn: acc.psn,
                            responder_resources: irl.min(255) as u8,
                            initiator_depth: orl.min(255) as u8,
                            srq: acc.srq,
                            private_data: acc.private.get(..acc.len).unwrap_or(&[]),
                        },
                    ),
                    None => Ok(()),
                },
                CmAction::Reject => {
                    cm.reject(now, conn, reject_data.0.get(..reject_data.1).unwrap_or(&[]))
                }
                CmAction::CompleteConnect => cm.complete_connect(now, conn),
                CmAction::Disconnect => cm.disconnect(now, conn),
                CmAction::Abort => cm.abort(now, conn),
            };
        }
        if let Some((_, status)) = a.complete {
            let cb = self.connector_mut(connector).and_then(|c| c.pending.take());
            if let Some(cb) = cb {
                self.queue(connector, cb, UpcallKind::Request { status });
            }
        }
        if a.disconnect_event {
            let ev = self.connector(connector).and_then(|c| c.disconnect_event);
            if let Some((cb, ex)) = ev {
                self.queue(connector, cb, UpcallKind::DisconnectEvent { ex, reason: 0 });
            }
        }
        self.process_events();
        self.try_close(connector);
        a.returns
    }

    /// RTR and/or RTS with the attributes the CM negotiated (Linux drivers/infiniband/core/cma.c).
    fn ready_qp(&mut self, connector: ObjectId, qp: ObjectId, to_rtr: bool, to_rts: bool) {
        let Some(qpn) = (match self.objects.get(qp).map(|e| &e.object) {
            Some(Object::Qp(q)) => Some(q.qpn),
            _ => None,
        }) else {
            return;
        };
        let Some(c) = self.connector(connector) else {
            return;
        };
        let (irl, orl) = (c.inbound_read_limit, c.outbound_read_limit);
        let accept_psn = c.accept.map(|a| a.psn);
        let Some(conn) = c.conn.and_then(|id| self.device.cm_ref().connection(id)) else {
            return;
        };
        let peer = *conn.peer();
        let active = conn.role() == roce::cm::Role::Active;
        let (irl, orl) = if active {
            (
                irl.min(u32::from(peer.initiator_depth)),
                orl.min(u32::from(peer.responder_resources)),
            )
        } else {
            (irl, orl)
        };
        let path = Path {
            local_ip: conn.local().ip(),
            remote_ip: conn.remote().ip(),
            udp_src_port: udp_sport_from_flow_label(conn.flow_label()),
            hop_limit: conn.hop_limit_and_class().0,
            traffic_class: conn.hop_limit_and_class().1,
        };
        let retry_cnt = if active {
            self.device.cm_ref().config().retry_count
        } else {
            peer.retry_count
        };
        let rtr = QpAttr {
            state: Some(QpState::Rtr),
            // Both sides use the REQ's MTU; the CM has refused a REQ whose
            // MTU exceeds this link (`CmConfig::max_path_mtu`).
            path_mtu: Some(mtu_bytes(conn.path_mtu())),
            dest_qpn: Some(peer.qpn),
            // Passive: the QP is readied before the REP that carries the
            // PSN goes out, so the PSN comes from the accept itself.
            rq_psn: Some(if active {
                conn.starting_psn()
            } else {
                accept_psn.unwrap_or(0)
            }),
            min_rnr_timer: Some(MIN_RNR_TIMER),
            max_dest_rd_atomic: Some(irl),
            path: Some(path),
            ..QpAttr::default()
        };
        let rts = QpAttr {
            state: Some(QpState::Rts),
            sq_psn: Some(peer.starting_psn),
            timeout: Some(conn.qp_ack_timeout()),
            retry_cnt: Some(retry_cnt & 7),
            rnr_retry: Some(peer.rnr_retry_count & 7),
            max_rd_atomic: Some(orl),
            ..QpAttr::default()
        };
        if let Some(c) = self.connector_mut(connector) {
            c.inbound_read_limit = irl;
            c.outbound_read_limit = orl;
        }
        let rc = self.device.rc();
        if to_rtr {
            let _ = rc.modify_qp(qpn, &rtr);
        }
        if to_rts {
            let _ = rc.modify_qp(qpn, &rts);
        }
    }
}

fn input_note(input: Input) -> &'static str {
    match input {
        Input::Connect => "NdkConnect",
        Input::CompleteConnect => "NdkCompleteConnect",
        Input::Accept => "NdkAccept",
        Input::Reject => "NdkReject",
        Input::Disconnect => "NdkDisconnect",
        Input::Close => "NdkCloseConnector",
        Input::CmReplied => "REP received",
        Input::CmEstablished => "established",
        Input::CmRejected => "REJ received",
        Input::CmTimedOut => "establishment timed out",
        Input::CmPeerDisconnected => "peer disconnected",
        Input::CmDisconnected { timed_out: false } => "disconnect done",
        Input::CmDisconnected { timed_out: true } => "disconnect timed out",
        Input::QpFatal { peer_gone: true } => "QP transport failure",
        Input::QpFatal { peer_gone: false } => "QP error, connection kept",
    }
}
