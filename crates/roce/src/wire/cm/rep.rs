//! ConnectReply, REP (attribute 0x0013; IBA Vol 1 ch. 12 (REP); Linux include/rdma/ibta_vol1_c12.h).

use super::Opaque;
use crate::wire::Result;
use crate::wire::bytes::{check_width, fields};

/// Size of the REP private data (ib_cm.h).
pub const PRIVATE_DATA_LEN: usize = 196;

/// Byte offsets in the REP body (IBA Vol 1 ch. 12 (REP); Linux include/rdma/ibta_vol1_c12.h; ibta_vol1_c12.h table 110).
mod field {
    pub const LOCAL_COMM_ID: usize = 0;
    pub const REMOTE_COMM_ID: usize = 4;
    pub const LOCAL_Q_KEY: usize = 8;
    pub const LOCAL_QPN: usize = 12;
    /// The ECE vendor ID is spread over the low bytes of words 12, 16 and
    /// 20, high byte first (ibta_vol1_c12.h `CM_REP_VENDOR_ID_H/M/L`).
    pub const VENDOR_ID_H: usize = 15;
    pub const LOCAL_EECN: usize = 16;
    pub const VENDOR_ID_M: usize = 19;
    pub const STARTING_PSN: usize = 20;
    pub const VENDOR_ID_L: usize = 23;
    pub const RESPONDER_RESOURCES: usize = 24;
    pub const INITIATOR_DEPTH: usize = 25;
    pub const TARGET_ACK_DELAY: (usize, u8) = (26, 0xF8);
    pub const FAILOVER_ACCEPTED: (usize, u8) = (26, 0x06);
    pub const END_TO_END_FLOW_CONTROL: (usize, u8) = (26, 0x01);
    pub const RNR_RETRY_COUNT: (usize, u8) = (27, 0xE0);
    pub const SRQ: (usize, u8) = (27, 0x10);
    pub const LOCAL_CA_GUID: usize = 28;
    pub const PRIVATE_DATA: usize = 36;
}

cm_view!("REP");

fields! { Packet;
    /// Local Communication ID (the passive side's).
    local_comm_id, set_local_comm_id: u32(field::LOCAL_COMM_ID);
    /// Remote Communication ID (the REQ's local one).
    remote_comm_id, set_remote_comm_id: u32(field::REMOTE_COMM_ID);
    /// Local Q_Key.
    local_q_key, set_local_q_key: u32(field::LOCAL_Q_KEY);
    /// Local QPN (24 bits).
    local_qpn, set_local_qpn: u24(field::LOCAL_QPN);
    /// High byte of the ECE vendor ID.
    vendor_id_h, set_vendor_id_h: u8(field::VENDOR_ID_H);
    /// Local EE context number (24 bits; XRC puts the SRQ number here).
    local_eecn, set_local_eecn: u24(field::LOCAL_EECN);
    /// Middle byte of the ECE vendor ID.
    vendor_id_m, set_vendor_id_m: u8(field::VENDOR_ID_M);
    /// Starting PSN (24 bits): the PSN the active side sends with (the Linux rxe captures in crates/roce/tests/data).
    starting_psn, set_starting_psn: u24(field::STARTING_PSN);
    /// Low byte of the ECE vendor ID.
    vendor_id_l, set_vendor_id_l: u8(field::VENDOR_ID_L);
    /// Responder resources.
    responder_resources, set_responder_resources: u8(field::RESPONDER_RESOURCES);
    /// Initiator depth.
    initiator_depth, set_initiator_depth: u8(field::INITIATOR_DEPTH);
    /// Target ACK delay (5 bits).
    target_ack_delay, set_target_ack_delay:
        bits(field::TARGET_ACK_DELAY);
    /// Failover accepted (2 bits).
    failover_accepted, set_failover_accepted:
        bits(field::FAILOVER_ACCEPTED);
    /// End-to-end flow control.
    end_to_end_flow_control, set_end_to_end_flow_control:
        flag(field::END_TO_END_FLOW_CONTROL);
    /// RNR retry count (3 bits).
    rnr_retry_count, set_rnr_retry_count:
        bits(field::RNR_RETRY_COUNT);
    /// SRQ.
    srq, set_srq: flag(field::SRQ);
    /// Local CA GUID.
    local_ca_guid, set_local_ca_guid: u64(field::LOCAL_CA_GUID);
}

cm_bytes! {
    /// Private data (196 bytes; rdma_cm puts no header here: Linux drivers/infiniband/core/cma.c).
    private_data, private_data_mut: field::PRIVATE_DATA, PRIVATE_DATA_LEN
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// The ECE vendor ID (24 bits) from its three bytes.
    pub fn vendor_id(&self) -> u32 {
        u32::from_be_bytes([
            0,
            self.vendor_id_h(),
            self.vendor_id_m(),
            self.vendor_id_l(),
        ])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the three bytes of the ECE vendor ID (low 24 bits of `v`).
    pub fn set_vendor_id(&mut self, v: u32) {
        let [_, h, m, l] = v.to_be_bytes();
        self.set_vendor_id_h(h);
        self.set_vendor_id_m(m);
        self.set_vendor_id_l(l);
    }
}

/// A REP, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    /// Local Communication ID.
    pub local_comm_id: u32,
    /// Remote Communication ID.
    pub remote_comm_id: u32,
    /// Local Q_Key.
    pub local_q_key: u32,
    /// Local QPN (24 bits).
    pub local_qpn: u32,
    /// Local EECN (24 bits).
    pub local_eecn: u32,
    /// Starting PSN (24 bits).
    pub starting_psn: u32,
    /// ECE vendor ID (24 bits).
    pub vendor_id: u32,
    /// Responder resources.
    pub responder_resources: u8,
    /// Initiator depth.
    pub initiator_depth: u8,
    /// Target ACK delay (5 bits).
    pub target_ack_delay: u8,
    /// Failover accepted (2 bits).
    pub failover_accepted: u8,
    /// End-to-end flow control.
    pub end_to_end_flow_control: bool,
    /// RNR retry count (3 bits).
    pub rnr_retry_count: u8,
    /// SRQ.
    pub srq: bool,
    /// Local CA GUID.
    pub local_ca_guid: u64,
    /// Private data.
    pub private_data: Opaque<PRIVATE_DATA_LEN>,
}

impl Repr {
    /// Decodes a checked REP view.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Self> {
        packet.check_len()?;
        Ok(Repr {
            local_comm_id: packet.local_comm_id(),
            remote_comm_id: packet.remote_comm_id(),
            local_q_key: packet.local_q_key(),
            local_qpn: packet.local_qpn(),
            local_eecn: packet.local_eecn(),
            starting_psn: packet.starting_psn(),
            vendor_id: packet.vendor_id(),
            responder_resources: packet.responder_resources(),
            initiator_depth: packet.initiator_depth(),
            target_ack_delay: packet.target_ack_delay(),
            failover_accepted: packet.failover_accepted(),
            end_to_end_flow_control: packet.end_to_end_flow_control(),
            rnr_retry_count: packet.rnr_retry_count(),
            srq: packet.srq(),
            local_ca_guid: packet.local_ca_guid(),
            private_data: Opaque::from_field(packet.private_data()),
        })
    }

    /// Refuses values wider than their fields.
    pub fn check(&self) -> Result<()> {
        check_width(self.local_qpn, 24)?;
        check_width(self.local_eecn, 24)?;
        check_width(self.starting_psn, 24)?;
        check_width(self.vendor_id, 24)?;
        check_width(self.target_ack_delay.into(), 5)?;
        check_width(self.failover_accepted.into(), 2)?;
        check_width(self.rnr_retry_count.into(), 3)
    }

    /// Writes the whole body, reserved bits zero.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) -> Result<()> {
        self.check()?;
        packet.clear()?;
        packet.set_local_comm_id(self.local_comm_id);
        packet.set_remote_comm_id(self.remote_comm_id);
        packet.set_local_q_key(self.local_q_key);
        packet.set_local_qpn(self.local_qpn);
        packet.set_local_eecn(self.local_eecn);
        packet.set_starting_psn(self.starting_psn);
        packet.set_vendor_id(self.vendor_id);
        packet.set_responder_resources(self.responder_resources);
        packet.set_initiator_depth(self.initiator_depth);
        packet.set_target_ack_delay(self.target_ack_delay);
        packet.set_failover_accepted(self.failover_accepted);
        packet.set_end_to_end_flow_control(self.end_to_end_flow_control);
        packet.set_rnr_retry_count(self.rnr_retry_count);
        packet.set_srq(self.srq);
        packet.set_local_ca_guid(self.local_ca_guid);
        self.private_data.write_to(packet.private_data_mut());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::DATA_LEN;
    use super::*;
    use crate::wire::Error;

    fn sample() -> Repr {
        let mut pd = [0u8; PRIVATE_DATA_LEN];
        pd[0] = 0xC1;
        pd[PRIVATE_DATA_LEN - 1] = 0xC2;
        Repr {
            local_comm_id: 0x28DB_B4EB,
            remote_comm_id: 0xA3A6_ABF3,
            local_q_key: 0x1234_5678,
            local_qpn: 0x00_0011,
            local_eecn: 0xFE_DCBA,
            starting_psn: 0xB5_5B8D,
            vendor_id: 0x02_C9AB,
            responder_resources: 4,
            initiator_depth: 8,
            target_ack_delay: 15,
            failover_accepted: 2,
            end_to_end_flow_control: true,
            rnr_retry_count: 6,
            srq: true,
            local_ca_guid: 0x5054_00FF_FE00_0002,
            private_data: Opaque(pd),
        }
    }

    #[test]
    fn round_trip_and_layout() {
        let mut buf = [0xFFu8; DATA_LEN];
        sample()
            .emit(&mut Packet::new_checked(&mut buf[..]).unwrap())
            .unwrap();
        assert_eq!(
            Repr::parse(&Packet::new_checked(&buf[..]).unwrap()),
            Ok(sample())
        );
        // IBA Vol 1 ch. 12 (REP); Linux include/rdma/ibta_vol1_c12.h and the ECE bytes 15/19/23.
        assert_eq!(
            buf[0..12],
            [
                0x28, 0xDB, 0xB4, 0xEB, 0xA3, 0xA6, 0xAB, 0xF3, 0x12, 0x34, 0x56, 0x78
            ]
        );
        assert_eq!(
            buf[12..24],
            [
                0, 0, 0x11, 0x02, 0xFE, 0xDC, 0xBA, 0xC9, 0xB5, 0x5B, 0x8D, 0xAB
            ]
        );
        // 15 << 3 | 2 << 1 | 1; 6 << 5 | SRQ.
        assert_eq!(buf[24..28], [4, 8, 0x7D, 0xD0]);
        assert_eq!(
            buf[28..36],
            [0x50, 0x54, 0x00, 0xFF, 0xFE, 0x00, 0x00, 0x02]
        );
        assert_eq!((buf[36], buf[231]), (0xC1, 0xC2));
    }

    #[test]
    fn emit_refuses_wide_values() {
        let mut buf = [0u8; DATA_LEN];
        let mut packet = Packet::new_checked(&mut buf[..]).unwrap();
        let bad = Repr {
            failover_accepted: 4,
            ..sample()
        };
        assert_eq!(bad.emit(&mut packet), Err(Error::Malformed));
        let bad = Repr {
            vendor_id: 1 << 24,
            ..sample()
        };
        assert_eq!(bad.emit(&mut packet), Err(Error::Malformed));
    }
}
