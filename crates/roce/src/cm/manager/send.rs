//! The manager's output: MADs queued for the shell, and every CM message
//! built as Linux rdma_cm builds it (IBA Vol 1 ch. 12; Linux
//! drivers/infiniband/core/cm.c, cm_format_req and its siblings). Where a
//! REQ, REP, RTU, MRA, REJ, DREQ or DREP is sent: [`CmManager::send`].

use super::*;

impl CmManager {
    /// The next MAD to send.
    pub fn poll_transmit(&mut self) -> Option<OutMad> {
        self.outbox.pop_front()
    }

    /// The next event for the consumer.
    pub fn poll_event(&mut self) -> Option<CmEvent> {
        self.events.pop_front()
    }

    /// Whether [`poll_event`](Self::poll_event) has an event.
    pub fn has_event(&self) -> bool {
        !self.events.is_empty()
    }

    pub(super) fn push_mad(&mut self, src: IpAddr, dst: IpAddr, mad: &CmMad) {
        let mut buf = [0u8; MAD_LEN];
        // Every message is built from validated fields, so emit cannot fail;
        // if it ever did, sending nothing is the safe outcome (the peer
        // retransmits or times out).
        if mad.emit(&mut buf).is_ok() {
            self.outbox.push_back(OutMad { src, dst, mad: buf });
        }
    }

    pub(super) fn send(&mut self, now: Instant, id: ConnId, what: Outgoing) {
        let Some(conn) = self.connection(id) else {
            return;
        };
        let msg = match self.build(conn, what) {
            Ok(m) => m,
            Err(_) => return,
        };
        let (src, dst) = (conn.local.ip(), conn.remote.ip());
        self.push_mad(src, dst, &msg);
        if let Some(conn) = self.conn_mut(id) {
            conn.timeline.record(now, Entry::Sent(what));
        }
    }

    pub(super) fn own_private<const N: usize>(conn: &Connection) -> Result<Opaque<N>, WireError> {
        Opaque::from_prefix(conn.own_private.get(..conn.own_private_len).unwrap_or(&[]))
    }

    /// Builds the message `what` of connection `conn`, as rdma_cm would.
    pub(super) fn build(&self, conn: &Connection, what: Outgoing) -> Result<CmMad, WireError> {
        let c = &self.config;
        Ok(match what {
            Outgoing::Req => {
                let mut private = [0u8; req::PRIVATE_DATA_LEN];
                let header = cma::Repr {
                    src_port: conn.local.port(),
                    src_addr: conn.local.ip(),
                    dst_addr: conn.remote.ip(),
                };
                let (head, user) = private.split_at_mut(cma::HEADER_LEN);
                header.emit(&mut cma::Packet::new_unchecked(head))?;
                let data = conn.own_private.get(..conn.own_private_len).unwrap_or(&[]);
                user.get_mut(..data.len())
                    .ok_or(WireError::BadLength)?
                    .copy_from_slice(data);
                let path = PathRepr {
                    local_lid: 0xFFFF,
                    remote_lid: 0xFFFF,
                    local_gid: gid_of(conn.local.ip()),
                    remote_gid: gid_of(conn.remote.ip()),
                    flow_label: conn.flow_label,
                    packet_rate: 0,
                    traffic_class: conn.traffic_class,
                    hop_limit: conn.hop_limit,
                    sl: 0,
                    subnet_local: false,
                    local_ack_timeout: c.local_ack_timeout(),
                };
                CmMad::send(
                    conn.own_tid,
                    CmMessage::Req(req::Repr {
                        local_comm_id: conn.local_comm_id,
                        vendor_id: 0,
                        service_id: cma::service_id(cma::PortSpace::TCP, conn.remote.port()),
                        local_ca_guid: self.ca_guid,
                        local_q_key: 0,
                        local_qpn: conn.local_qpn,
                        responder_resources: conn.responder_resources,
                        local_eecn: 0,
                        initiator_depth: conn.initiator_depth,
                        remote_eecn: 0,
                        remote_cm_response_timeout: c.cm_response_timeout,
                        transport_service_type: TransportType::RC,
                        end_to_end_flow_control: false,
                        starting_psn: conn.starting_psn,
                        local_cm_response_timeout: c.cm_response_timeout,
                        retry_count: c.retry_count & 7,
                        partition_key: 0xFFFF,
                        path_mtu: conn.path_mtu,
                        rdc_exists: false,
                        rnr_retry_count: c.rnr_retry_count & 7,
                        max_cm_retries: c.max_cm_retries & 0xF,
                        srq: conn.srq,
                        extended_transport_type: 0,
                        primary_path: path,
                        alternate_path: PathRepr::default(),
                        sap_supported: false,
                        private_data: Opaque(private),
                    }),
                )
            }
            Outgoing::Rep => CmMad::send(
                conn.req_tid,
                CmMessage::Rep(rep::Repr {
                    local_comm_id: conn.local_comm_id,
                    remote_comm_id: conn.remote_comm_id,
                    local_q_key: 0,
                    local_qpn: conn.local_qpn,
                    local_eecn: 0,
                    starting_psn: conn.starting_psn,
                    vendor_id: 0,
                    responder_resources: conn.responder_resources,
                    initiator_depth: conn.initiator_depth,
                    target_ack_delay: c.ca_ack_delay & 0x1F,
                    failover_accepted: 0,
                    end_to_end_flow_control: false,
                    rnr_retry_count: c.rnr_retry_count & 7,
                    srq: conn.srq,
                    local_ca_guid: self.ca_guid,
                    private_data: Self::own_private(conn)?,
                }),
            ),
            Outgoing::Rtu => CmMad::send(
                conn.own_tid,
                CmMessage::Rtu(rtu::Repr {
                    local_comm_id: conn.local_comm_id,
                    remote_comm_id: conn.remote_comm_id,
                    private_data: Opaque::zeroed(),
                }),
            ),
            Outgoing::Mra(of) => CmMad::send(
                match of {
                    MraOf::Req => conn.req_tid,
                    MraOf::Rep => conn.own_tid,
                },
                CmMessage::Mra(mra::Repr {
                    local_comm_id: conn.local_comm_id,
                    remote_comm_id: conn.remote_comm_id,
                    message_mraed: match of {
                        MraOf::Req => TargetMessage::REQ,
                        MraOf::Rep => TargetMessage::REP,
                    },
                    service_timeout: c.mra_service_timeout & 0x1F,
                    private_data: Opaque::zeroed(),
                }),
            ),
            Outgoing::Rej(why) => {
                let (reason, ari_len, ari) = match why {
                    RejectWhy::Consumer => (RejectReason::CONSUMER_DEFINED, 0, Opaque::zeroed()),
                    // Linux puts its CA GUID in the ARI of a timeout REJ
                    // (IBA Vol 1 ch. 12 (REJ reasons); Linux include/rdma/ib_cm.h).
                    RejectWhy::Abandoned => {
                        let mut ari = [0u8; rej::ARI_LEN];
                        if let Some(dst) = ari.get_mut(..8) {
                            dst.copy_from_slice(&self.ca_guid.to_be_bytes());
                        }
                        (RejectReason::TIMEOUT, 8, Opaque(ari))
                    }
                };
                let (tid, rejected) = match conn.role {
                    Role::Passive => (conn.req_tid, TargetMessage::REQ),
                    Role::Active if conn.remote_comm_id == 0 => {
                        (conn.own_tid, TargetMessage::OTHER)
                    }
                    Role::Active => (conn.own_tid, TargetMessage::REP),
                };
                let private = match why {
                    RejectWhy::Consumer => Self::own_private(conn)?,
                    RejectWhy::Abandoned => Opaque::zeroed(),
                };
                CmMad::send(
                    tid,
                    CmMessage::Rej(rej::Repr {
                        local_comm_id: conn.local_comm_id,
                        remote_comm_id: conn.remote_comm_id,
                        message_rejected: rejected,
                        reject_info_length: ari_len,
                        reason,
                        ari,
                        private_data: private,
                    }),
                )
            }
            Outgoing::Dreq => CmMad::send(
                conn.own_tid,
                CmMessage::Dreq(dreq::Repr {
                    local_comm_id: conn.local_comm_id,
                    remote_comm_id: conn.remote_comm_id,
                    remote_qpn: conn.peer.qpn,
                    private_data: Opaque::zeroed(),
                }),
            ),
            Outgoing::Drep => CmMad::send(
                conn.dreq_tid,
                CmMessage::Drep(drep::Repr {
                    local_comm_id: conn.local_comm_id,
                    remote_comm_id: conn.remote_comm_id,
                    private_data: Opaque::zeroed(),
                }),
            ),
        })
    }
}
