//! LoadAlternatePath, LAP (attribute 0x0019; IBA Vol 1 ch. 12 (RTU, DREQ, DREP); Linux include/rdma/ibta_vol1_c12.h).
//!
//! rxe does not implement path migration; decoded for completeness. The
//! alternate path here is laid out differently from a REQ path block
//! (traffic class before hop limit and packet rate), so it has its own
//! accessors.

use core::net::Ipv6Addr;

use super::Opaque;
use crate::wire::Result;
use crate::wire::bytes::{check_width, fields};

/// Size of the LAP private data (ib_cm.h).
pub const PRIVATE_DATA_LEN: usize = 168;

/// Byte offsets in the LAP body (ibta_vol1_c12.h table 115).
mod field {
    pub const LOCAL_COMM_ID: usize = 0;
    pub const REMOTE_COMM_ID: usize = 4;
    pub const REMOTE_QPN: usize = 12;
    pub const REMOTE_CM_RESPONSE_TIMEOUT: (usize, u8) = (15, 0xF8);
    pub const ALT_LOCAL_LID: usize = 20;
    pub const ALT_REMOTE_LID: usize = 22;
    pub const ALT_LOCAL_GID: usize = 24;
    pub const ALT_REMOTE_GID: usize = 40;
    /// Top 20 bits of the word at 56; byte 58's low nibble is reserved.
    pub const ALT_FLOW_LABEL: usize = 56;
    pub const ALT_TRAFFIC_CLASS: usize = 59;
    pub const ALT_HOP_LIMIT: usize = 60;
    pub const ALT_PACKET_RATE: (usize, u8) = (61, 0x3F);
    pub const ALT_SL: (usize, u8) = (62, 0xF0);
    pub const ALT_SUBNET_LOCAL: (usize, u8) = (62, 0x08);
    pub const ALT_LOCAL_ACK_TIMEOUT: (usize, u8) = (63, 0xF8);
    pub const PRIVATE_DATA: usize = 64;
}

cm_view!("LAP");

fields! { Packet;
    /// Local Communication ID.
    local_comm_id, set_local_comm_id: u32(field::LOCAL_COMM_ID);
    /// Remote Communication ID.
    remote_comm_id, set_remote_comm_id: u32(field::REMOTE_COMM_ID);
    /// Remote QPN/EECN (24 bits).
    remote_qpn, set_remote_qpn: u24(field::REMOTE_QPN);
    /// Remote CM response timeout (5 bits).
    remote_cm_response_timeout, set_remote_cm_response_timeout:
        bits(field::REMOTE_CM_RESPONSE_TIMEOUT);
    /// Alternate local port LID.
    alt_local_lid, set_alt_local_lid: u16(field::ALT_LOCAL_LID);
    /// Alternate remote port LID.
    alt_remote_lid, set_alt_remote_lid: u16(field::ALT_REMOTE_LID);
    /// Alternate local port GID.
    alt_local_gid, set_alt_local_gid: gid(field::ALT_LOCAL_GID);
    /// Alternate remote port GID.
    alt_remote_gid, set_alt_remote_gid: gid(field::ALT_REMOTE_GID);
    /// Alternate flow label (20 bits).
    alt_flow_label, set_alt_flow_label: flow_label(field::ALT_FLOW_LABEL);
    /// Alternate traffic class.
    alt_traffic_class, set_alt_traffic_class: u8(field::ALT_TRAFFIC_CLASS);
    /// Alternate hop limit.
    alt_hop_limit, set_alt_hop_limit: u8(field::ALT_HOP_LIMIT);
    /// Alternate packet rate (6 bits).
    alt_packet_rate, set_alt_packet_rate:
        bits(field::ALT_PACKET_RATE);
    /// Alternate SL (4 bits).
    alt_sl, set_alt_sl: bits(field::ALT_SL);
    /// Alternate subnet local.
    alt_subnet_local, set_alt_subnet_local:
        flag(field::ALT_SUBNET_LOCAL);
    /// Alternate local ACK timeout (5 bits).
    alt_local_ack_timeout, set_alt_local_ack_timeout:
        bits(field::ALT_LOCAL_ACK_TIMEOUT);
}

cm_bytes! {
    /// Private data (168 bytes).
    private_data, private_data_mut: field::PRIVATE_DATA, PRIVATE_DATA_LEN
}

/// A LAP, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    /// Local Communication ID.
    pub local_comm_id: u32,
    /// Remote Communication ID.
    pub remote_comm_id: u32,
    /// Remote QPN/EECN (24 bits).
    pub remote_qpn: u32,
    /// Remote CM response timeout (5 bits).
    pub remote_cm_response_timeout: u8,
    /// Alternate local port LID.
    pub alt_local_lid: u16,
    /// Alternate remote port LID.
    pub alt_remote_lid: u16,
    /// Alternate local port GID.
    pub alt_local_gid: Ipv6Addr,
    /// Alternate remote port GID.
    pub alt_remote_gid: Ipv6Addr,
    /// Alternate flow label (20 bits).
    pub alt_flow_label: u32,
    /// Alternate traffic class.
    pub alt_traffic_class: u8,
    /// Alternate hop limit.
    pub alt_hop_limit: u8,
    /// Alternate packet rate (6 bits).
    pub alt_packet_rate: u8,
    /// Alternate SL (4 bits).
    pub alt_sl: u8,
    /// Alternate subnet local.
    pub alt_subnet_local: bool,
    /// Alternate local ACK timeout (5 bits).
    pub alt_local_ack_timeout: u8,
    /// Private data.
    pub private_data: Opaque<PRIVATE_DATA_LEN>,
}

impl Repr {
    /// Decodes a checked LAP view.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Self> {
        packet.check_len()?;
        Ok(Repr {
            local_comm_id: packet.local_comm_id(),
            remote_comm_id: packet.remote_comm_id(),
            remote_qpn: packet.remote_qpn(),
            remote_cm_response_timeout: packet.remote_cm_response_timeout(),
            alt_local_lid: packet.alt_local_lid(),
            alt_remote_lid: packet.alt_remote_lid(),
            alt_local_gid: packet.alt_local_gid(),
            alt_remote_gid: packet.alt_remote_gid(),
            alt_flow_label: packet.alt_flow_label(),
            alt_traffic_class: packet.alt_traffic_class(),
            alt_hop_limit: packet.alt_hop_limit(),
            alt_packet_rate: packet.alt_packet_rate(),
            alt_sl: packet.alt_sl(),
            alt_subnet_local: packet.alt_subnet_local(),
            alt_local_ack_timeout: packet.alt_local_ack_timeout(),
            private_data: Opaque::from_field(packet.private_data()),
        })
    }

    /// Refuses values wider than their fields.
    pub fn check(&self) -> Result<()> {
        check_width(self.remote_qpn, 24)?;
        check_width(self.remote_cm_response_timeout.into(), 5)?;
        check_width(self.alt_flow_label, 20)?;
        check_width(self.alt_packet_rate.into(), 6)?;
        check_width(self.alt_sl.into(), 4)?;
        check_width(self.alt_local_ack_timeout.into(), 5)
    }

    /// Writes the whole body, reserved bits zero.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) -> Result<()> {
        self.check()?;
        packet.clear()?;
        packet.set_local_comm_id(self.local_comm_id);
        packet.set_remote_comm_id(self.remote_comm_id);
        packet.set_remote_qpn(self.remote_qpn);
        packet.set_remote_cm_response_timeout(self.remote_cm_response_timeout);
        packet.set_alt_local_lid(self.alt_local_lid);
        packet.set_alt_remote_lid(self.alt_remote_lid);
        packet.set_alt_local_gid(self.alt_local_gid);
        packet.set_alt_remote_gid(self.alt_remote_gid);
        packet.set_alt_flow_label(self.alt_flow_label);
        packet.set_alt_traffic_class(self.alt_traffic_class);
        packet.set_alt_hop_limit(self.alt_hop_limit);
        packet.set_alt_packet_rate(self.alt_packet_rate);
        packet.set_alt_sl(self.alt_sl);
        packet.set_alt_subnet_local(self.alt_subnet_local);
        packet.set_alt_local_ack_timeout(self.alt_local_ack_timeout);
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
        Repr {
            local_comm_id: 1,
            remote_comm_id: 2,
            remote_qpn: 0x00_0011,
            remote_cm_response_timeout: 20,
            alt_local_lid: 0xFFFF,
            alt_remote_lid: 0x0102,
            alt_local_gid: Ipv6Addr::new(0, 0, 0, 0, 0, 0xFFFF, 0x0A09, 3),
            alt_remote_gid: Ipv6Addr::new(0, 0, 0, 0, 0, 0xFFFF, 0x0A09, 2),
            alt_flow_label: 0xABCDE,
            alt_traffic_class: 0x12,
            alt_hop_limit: 0x40,
            alt_packet_rate: 0x21,
            alt_sl: 9,
            alt_subnet_local: true,
            alt_local_ack_timeout: 18,
            private_data: Opaque::from_prefix(b"lap").unwrap(),
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
        assert_eq!(
            buf[8..24],
            [
                0, 0, 0, 0, 0, 0, 0x11, 0xA0, 0, 0, 0, 0, 0xFF, 0xFF, 0x01, 0x02
            ]
        );
        assert_eq!(buf[36..40], [0x0A, 0x09, 0, 3]);
        // FL 0xABCDE, TC, HL, rate, SL 9 + subnet local, ACK timeout 18.
        assert_eq!(
            buf[56..67],
            [
                0xAB, 0xCD, 0xE0, 0x12, 0x40, 0x21, 0x98, 0x90, b'l', b'a', b'p'
            ]
        );
    }

    #[test]
    fn emit_refuses_wide_values() {
        let mut buf = [0u8; DATA_LEN];
        let bad = Repr {
            alt_flow_label: 1 << 20,
            ..sample()
        };
        assert_eq!(
            bad.emit(&mut Packet::new_checked(&mut buf[..]).unwrap()),
            Err(Error::Malformed)
        );
    }
}
