//! The manager's input: a received CM MAD parsed, matched to its
//! connection or listener and fed to that connection's state machine, or
//! answered as ib_cm answers what matches nothing (IBA Vol 1 ch. 12;
//! Linux drivers/infiniband/core/cm.c, cm_req_handler and its siblings).

use super::*;

impl CmManager {
    /// A CM MAD arrived from `src` for local address `dst`. Anything that
    /// does not parse or matches nothing is dropped or answered as ib_cm
    /// would (REJ for an unknown service, DREP for an unknown DREQ).
    pub fn handle_mad(&mut self, now: Instant, src: IpAddr, dst: IpAddr, mad: &[u8]) {
        let Ok(mad) = CmMad::parse(mad) else {
            return;
        };
        let tid = mad.transaction_id;
        match mad.message {
            CmMessage::Req(r) => self.on_req(now, src, dst, tid, &r),
            CmMessage::Rep(r) => {
                let Some(id) = self.lookup(r.remote_comm_id, src) else {
                    return;
                };
                let packet_life_time = self.config.packet_life_time;
                if let Some(conn) = self.conn_mut(id) {
                    if matches!(conn.state, State::ReqSent { .. } | State::MraReqRcvd { .. }) {
                        conn.remote_comm_id = r.local_comm_id;
                        conn.peer = PeerParams {
                            qpn: r.local_qpn,
                            starting_psn: r.starting_psn,
                            responder_resources: r.responder_resources,
                            initiator_depth: r.initiator_depth,
                            rnr_retry_count: r.rnr_retry_count,
                            retry_count: conn.peer.retry_count,
                            srq: r.srq,
                            ca_guid: r.local_ca_guid,
                        };
                        conn.peer_private.copy_from_slice(r.private_data.as_slice());
                        conn.peer_private_len = MAX_REP_PRIVATE_DATA;
                        // The QP's ACK timeout from the responder's ACK delay
                        // and our packet lifetime (IBA Vol 1 ch. 12 (CM timeouts); Linux cm.c).
                        conn.qp_ack_timeout = ack_timeout(r.target_ack_delay, packet_life_time);
                    } else if conn.remote_comm_id != r.local_comm_id {
                        return;
                    }
                }
                self.by_remote_qpn
                    .insert((r.local_ca_guid, r.local_qpn), id.slot);
                let _ = self.input(now, id, Input::Rep);
            }
            CmMessage::Rtu(r) => {
                self.matched(now, r.remote_comm_id, r.local_comm_id, src, Input::Rtu)
            }
            CmMessage::Mra(r) => {
                let of = match r.message_mraed {
                    TargetMessage::REQ => MraOf::Req,
                    TargetMessage::REP => MraOf::Rep,
                    _ => return,
                };
                let Some(id) = self.lookup(r.remote_comm_id, src) else {
                    return;
                };
                let Some(conn) = self.conn_mut(id) else {
                    return;
                };
                // An MRA of our REQ comes before we know the peer's comm ID
                // (ib_cm matches it by our ID alone); an MRA of a REP must
                // name both.
                if of == MraOf::Rep && conn.remote_comm_id != r.local_comm_id {
                    return;
                }
                conn.mra_service_timeout = r.service_timeout;
                let _ = self.input(now, id, Input::Mra(of));
            }
            CmMessage::Rej(r) => {
                let Some(id) = self.lookup(r.remote_comm_id, src) else {
                    return;
                };
                if let Some(conn) = self.conn_mut(id) {
                    // A REJ of our REQ may come before we know the peer's
                    // comm ID (it is 0 when no listener answered).
                    if conn.remote_comm_id != 0
                        && r.local_comm_id != 0
                        && conn.remote_comm_id != r.local_comm_id
                    {
                        return;
                    }
                    if !conn.state.is_established() {
                        conn.reject_reason = Some(r.reason);
                        conn.peer_private = [0; MAX_REP_PRIVATE_DATA];
                        if let Some(dst) = conn.peer_private.get_mut(..MAX_REJ_PRIVATE_DATA) {
                            dst.copy_from_slice(r.private_data.as_slice());
                        }
                        conn.peer_private_len = MAX_REJ_PRIVATE_DATA;
                    }
                }
                let _ = self.input(now, id, Input::Rej);
            }
            CmMessage::Dreq(r) => {
                let found = self.lookup(r.remote_comm_id, src).filter(|id| {
                    self.connection(*id).is_some_and(|c| {
                        c.remote_comm_id == r.local_comm_id && c.local_qpn == r.remote_qpn
                    })
                });
                match found {
                    Some(id) => {
                        if let Some(conn) = self.conn_mut(id) {
                            conn.dreq_tid = tid;
                        }
                        let _ = self.input(now, id, Input::Dreq);
                    }
                    // ib_cm answers a DREQ it cannot match with a DREP, so a
                    // peer whose DREP was lost after our time-wait still
                    // finishes (IBA Vol 1 ch. 12 (CM states); Linux drivers/infiniband/core/cm.c).
                    None => {
                        let drep = CmMad::send(
                            tid,
                            CmMessage::Drep(drep::Repr {
                                local_comm_id: r.remote_comm_id,
                                remote_comm_id: r.local_comm_id,
                                private_data: Opaque::zeroed(),
                            }),
                        );
                        self.push_mad(dst, src, &drep);
                    }
                }
            }
            CmMessage::Drep(r) => {
                self.matched(now, r.remote_comm_id, r.local_comm_id, src, Input::Drep)
            }
            // SIDR, LAP and APR are not used by RC over RoCE (IBA Vol 1 ch. 12 (RTU, DREQ, DREP); Linux include/rdma/ibta_vol1_c12.h).
            _ => {}
        }
    }

    /// The connection whose local comm ID is `comm_id` and whose peer is at
    /// `src`.
    pub(super) fn lookup(&self, comm_id: u32, src: IpAddr) -> Option<ConnId> {
        let slot = *self.by_comm_id.get(&comm_id)?;
        let id = self.id_of_slot(slot)?;
        (self.connection(id)?.remote.ip() == src).then_some(id)
    }

    pub(super) fn matched(
        &mut self,
        now: Instant,
        comm_id: u32,
        peer_comm_id: u32,
        src: IpAddr,
        input: Input,
    ) {
        if let Some(id) = self.lookup(comm_id, src)
            && self
                .connection(id)
                .is_some_and(|c| c.remote_comm_id == peer_comm_id)
        {
            let _ = self.input(now, id, input);
        }
    }

    pub(super) fn reject_req(
        &mut self,
        src: IpAddr,
        dst: IpAddr,
        tid: u64,
        r: &req::Repr,
        reason: RejectReason,
    ) {
        let rej = CmMad::send(
            tid,
            CmMessage::Rej(rej::Repr {
                local_comm_id: 0,
                remote_comm_id: r.local_comm_id,
                message_rejected: TargetMessage::REQ,
                reject_info_length: 0,
                reason,
                ari: Opaque::zeroed(),
                private_data: Opaque::zeroed(),
            }),
        );
        self.push_mad(dst, src, &rej);
    }

    pub(super) fn on_req(
        &mut self,
        now: Instant,
        src: IpAddr,
        dst: IpAddr,
        tid: u64,
        r: &req::Repr,
    ) {
        // A retransmitted REQ of a connection we already have.
        if let Some(&slot) = self.by_peer.get(&(src, r.local_comm_id)) {
            if let Some(id) = self.id_of_slot(slot) {
                let _ = self.input(now, id, Input::Req);
            }
            return;
        }
        // A REQ for a QP that is still in time-wait with us: stale (10).
        let stale = self
            .by_remote_qpn
            .get(&(r.local_ca_guid, r.local_qpn))
            .and_then(|&slot| self.slots.get(slot as usize))
            .and_then(|s| s.conn.as_ref())
            .is_some_and(|c| c.state == State::TimeWait);
        if stale {
            self.reject_req(src, dst, tid, r, RejectReason::STALE_CONN);
            return;
        }
        let Some(listener) = self.find_listener(r.service_id, dst) else {
            self.reject_req(src, dst, tid, r, RejectReason::INVALID_SERVICE_ID);
            return;
        };
        if r.transport_service_type != TransportType::RC {
            self.reject_req(src, dst, tid, r, RejectReason::INVALID_TRANSPORT_TYPE);
            return;
        }
        if !(1..=self.config.max_path_mtu.min(5)).contains(&r.path_mtu) {
            self.reject_req(src, dst, tid, r, RejectReason::INVALID_MTU);
            return;
        }
        // The rdma_cm header must name this address pair (Linux drivers/infiniband/core/cma.c);
        // Linux's rdma_cm refuses the request otherwise (reason 28).
        let header =
            cma::Packet::new_checked(r.private_data.as_slice()).and_then(|p| cma::Repr::parse(&p));
        let header = match header {
            Ok(h) if h.src_addr == src && h.dst_addr == dst && r.local_qpn != 0 => h,
            _ => {
                self.reject_req(src, dst, tid, r, RejectReason::CONSUMER_DEFINED);
                return;
            }
        };
        let (_, port) = cma::port_of_service_id(r.service_id).unwrap_or((cma::PortSpace::TCP, 0));
        let local_comm_id = self.new_comm_id();
        let mut peer_private = [0u8; MAX_REP_PRIVATE_DATA];
        let user = r
            .private_data
            .as_slice()
            .get(cma::HEADER_LEN..)
            .unwrap_or(&[]);
        if let Some(dst) = peer_private.get_mut(..user.len()) {
            dst.copy_from_slice(user);
        }
        let conn = Connection {
            role: Role::Passive,
            state: State::requested(),
            local_comm_id,
            remote_comm_id: r.local_comm_id,
            local: SocketAddr::new(dst, port),
            remote: SocketAddr::new(src, header.src_port),
            own_tid: tid_for(self.tid_high, local_comm_id),
            req_tid: tid,
            dreq_tid: 0,
            local_qpn: 0,
            starting_psn: 0,
            responder_resources: 0,
            initiator_depth: 0,
            path_mtu: r.path_mtu,
            srq: false,
            flow_label: r.primary_path.flow_label,
            hop_limit: r.primary_path.hop_limit,
            traffic_class: r.primary_path.traffic_class,
            // The passive side takes the requester's ACK timeout for its
            // QP and time-wait (IBA Vol 1 ch. 12 (CM timeouts); Linux cm.c).
            qp_ack_timeout: r.primary_path.local_ack_timeout,
            response_timeout: r.local_cm_response_timeout,
            mra_service_timeout: 0,
            retries: Retries {
                rep: r.max_cm_retries,
                dreq: self.config.max_dreq_retries,
            },
            peer: PeerParams {
                qpn: r.local_qpn,
                starting_psn: r.starting_psn,
                responder_resources: r.responder_resources,
                initiator_depth: r.initiator_depth,
                rnr_retry_count: r.rnr_retry_count,
                retry_count: r.retry_count,
                srq: r.srq,
                ca_guid: r.local_ca_guid,
            },
            peer_private,
            peer_private_len: user.len(),
            reject_reason: None,
            own_private: [0; MAX_REP_PRIVATE_DATA],
            own_private_len: 0,
            timer: None,
            listener: Some(listener),
            released: false,
            timeline: Timeline::default(),
        };
        let id = self.insert(conn);
        self.by_peer.insert((src, r.local_comm_id), id.slot);
        self.by_remote_qpn
            .insert((r.local_ca_guid, r.local_qpn), id.slot);
        if let Some(conn) = self.conn_mut(id) {
            conn.timeline.record(now, Entry::Note("REQ received"));
        }
        self.events
            .push_back(CmEvent::Request { conn: id, listener });
    }
}
