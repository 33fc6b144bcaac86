//! ConnectRequest, REQ (attribute 0x0010; IBA Vol 1 ch. 12 (REQ); Linux include/rdma/ibta_vol1_c12.h).

use super::{Opaque, PATH_LEN, Path, PathRepr, TransportType};
use crate::wire::Result;
use crate::wire::bytes::{check_width, fields};

/// Size of the REQ private data (ib_cm.h).
pub const PRIVATE_DATA_LEN: usize = 92;

/// Byte offsets in the REQ body (IBA Vol 1 ch. 12 (REQ); Linux include/rdma/ibta_vol1_c12.h; ibta_vol1_c12.h table 106).
/// Bit fields are `(byte, mask)`.
mod field {
    pub const LOCAL_COMM_ID: usize = 0;
    /// ECE vendor ID: the low 24 bits of the otherwise reserved word 4..7
    /// (ibta_vol1_c12.h `CM_REQ_VENDOR_ID`, Linux ≥ 5.8).
    pub const VENDOR_ID: usize = 5;
    pub const SERVICE_ID: usize = 8;
    pub const LOCAL_CA_GUID: usize = 16;
    pub const LOCAL_Q_KEY: usize = 28;
    pub const LOCAL_QPN: usize = 32;
    pub const RESPONDER_RESOURCES: usize = 35;
    pub const LOCAL_EECN: usize = 36;
    pub const INITIATOR_DEPTH: usize = 39;
    pub const REMOTE_EECN: usize = 40;
    pub const REMOTE_CM_RESPONSE_TIMEOUT: (usize, u8) = (43, 0xF8);
    pub const TRANSPORT_SERVICE_TYPE: (usize, u8) = (43, 0x06);
    pub const END_TO_END_FLOW_CONTROL: (usize, u8) = (43, 0x01);
    pub const STARTING_PSN: usize = 44;
    pub const LOCAL_CM_RESPONSE_TIMEOUT: (usize, u8) = (47, 0xF8);
    pub const RETRY_COUNT: (usize, u8) = (47, 0x07);
    pub const PARTITION_KEY: usize = 48;
    pub const PATH_MTU: (usize, u8) = (50, 0xF0);
    pub const RDC_EXISTS: (usize, u8) = (50, 0x08);
    pub const RNR_RETRY_COUNT: (usize, u8) = (50, 0x07);
    pub const MAX_CM_RETRIES: (usize, u8) = (51, 0xF0);
    pub const SRQ: (usize, u8) = (51, 0x08);
    pub const EXTENDED_TRANSPORT_TYPE: (usize, u8) = (51, 0x07);
    pub const PRIMARY_PATH: usize = 52;
    pub const ALTERNATE_PATH: usize = 96;
    /// SAP supported: bit 2 of the alternate path's ACK timeout byte.
    pub const SAP_SUPPORTED: (usize, u8) = (139, 0x04);
    pub const PRIVATE_DATA: usize = 140;
}

cm_view!("REQ");

fields! { Packet;
    /// Local Communication ID.
    local_comm_id, set_local_comm_id: u32(field::LOCAL_COMM_ID);
    /// ECE vendor ID (24 bits; 0 when ECE is unused).
    vendor_id, set_vendor_id: u24(field::VENDOR_ID);
    /// Service ID (rdma_cm: Linux drivers/infiniband/core/cma.c).
    service_id, set_service_id: u64(field::SERVICE_ID);
    /// Local CA GUID.
    local_ca_guid, set_local_ca_guid: u64(field::LOCAL_CA_GUID);
    /// Local Q_Key (0 for RC).
    local_q_key, set_local_q_key: u32(field::LOCAL_Q_KEY);
    /// Local QPN (24 bits).
    local_qpn, set_local_qpn: u24(field::LOCAL_QPN);
    /// Responder resources.
    responder_resources, set_responder_resources: u8(field::RESPONDER_RESOURCES);
    /// Local EE context number (24 bits).
    local_eecn, set_local_eecn: u24(field::LOCAL_EECN);
    /// Initiator depth.
    initiator_depth, set_initiator_depth: u8(field::INITIATOR_DEPTH);
    /// Remote EE context number (24 bits).
    remote_eecn, set_remote_eecn: u24(field::REMOTE_EECN);
    /// Remote CM response timeout (5 bits).
    remote_cm_response_timeout, set_remote_cm_response_timeout:
        bits(field::REMOTE_CM_RESPONSE_TIMEOUT);
    /// Transport service type (2 bits; see [`TransportType`]).
    transport_service_type, set_transport_service_type:
        bits(field::TRANSPORT_SERVICE_TYPE);
    /// End-to-end flow control.
    end_to_end_flow_control, set_end_to_end_flow_control:
        flag(field::END_TO_END_FLOW_CONTROL);
    /// Starting PSN (24 bits): the PSN the passive side sends with (the Linux rxe captures in crates/roce/tests/data).
    starting_psn, set_starting_psn: u24(field::STARTING_PSN);
    /// Local CM response timeout (5 bits).
    local_cm_response_timeout, set_local_cm_response_timeout:
        bits(field::LOCAL_CM_RESPONSE_TIMEOUT);
    /// Retry count (3 bits).
    retry_count, set_retry_count: bits(field::RETRY_COUNT);
    /// Partition key.
    partition_key, set_partition_key: u16(field::PARTITION_KEY);
    /// Path packet payload MTU (4 bits: 1 = 256 … 5 = 4096).
    path_mtu, set_path_mtu: bits(field::PATH_MTU);
    /// RDC exists.
    rdc_exists, set_rdc_exists: flag(field::RDC_EXISTS);
    /// RNR retry count (3 bits).
    rnr_retry_count, set_rnr_retry_count:
        bits(field::RNR_RETRY_COUNT);
    /// Max CM retries (4 bits).
    max_cm_retries, set_max_cm_retries: bits(field::MAX_CM_RETRIES);
    /// SRQ.
    srq, set_srq: flag(field::SRQ);
    /// Extended transport type (3 bits; 1 = XRC).
    extended_transport_type, set_extended_transport_type:
        bits(field::EXTENDED_TRANSPORT_TYPE);
    /// SAP supported.
    sap_supported, set_sap_supported: flag(field::SAP_SUPPORTED);
}

cm_bytes! {
    /// Private data (92 bytes; rdma_cm puts its `cma_hdr` first: Linux drivers/infiniband/core/cma.c).
    private_data, private_data_mut: field::PRIVATE_DATA, PRIVATE_DATA_LEN
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// The primary path: LIDs, GIDs, flow label, packet rate, traffic
    /// class, hop limit, SL, subnet local, local ACK timeout.
    pub fn primary_path(&self) -> Path<&[u8]> {
        Path::new_unchecked(self.path_bytes(field::PRIMARY_PATH))
    }

    /// The alternate path (all zero when there is none).
    pub fn alternate_path(&self) -> Path<&[u8]> {
        Path::new_unchecked(self.path_bytes(field::ALTERNATE_PATH))
    }

    fn path_bytes(&self, at: usize) -> &[u8] {
        self.buffer.as_ref().get(at..at + PATH_LEN).unwrap_or(&[])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// The primary path, writable.
    pub fn primary_path_mut(&mut self) -> Path<&mut [u8]> {
        Path::new_unchecked(self.path_bytes_mut(field::PRIMARY_PATH))
    }

    /// The alternate path, writable.
    pub fn alternate_path_mut(&mut self) -> Path<&mut [u8]> {
        Path::new_unchecked(self.path_bytes_mut(field::ALTERNATE_PATH))
    }

    fn path_bytes_mut(&mut self, at: usize) -> &mut [u8] {
        self.buffer
            .as_mut()
            .get_mut(at..at + PATH_LEN)
            .unwrap_or(&mut [])
    }
}

/// A REQ, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    /// Local Communication ID.
    pub local_comm_id: u32,
    /// ECE vendor ID (24 bits).
    pub vendor_id: u32,
    /// Service ID.
    pub service_id: u64,
    /// Local CA GUID.
    pub local_ca_guid: u64,
    /// Local Q_Key.
    pub local_q_key: u32,
    /// Local QPN (24 bits).
    pub local_qpn: u32,
    /// Responder resources.
    pub responder_resources: u8,
    /// Local EECN (24 bits).
    pub local_eecn: u32,
    /// Initiator depth.
    pub initiator_depth: u8,
    /// Remote EECN (24 bits).
    pub remote_eecn: u32,
    /// Remote CM response timeout (5 bits).
    pub remote_cm_response_timeout: u8,
    /// Transport service type (2 bits).
    pub transport_service_type: TransportType,
    /// End-to-end flow control.
    pub end_to_end_flow_control: bool,
    /// Starting PSN (24 bits).
    pub starting_psn: u32,
    /// Local CM response timeout (5 bits).
    pub local_cm_response_timeout: u8,
    /// Retry count (3 bits).
    pub retry_count: u8,
    /// Partition key.
    pub partition_key: u16,
    /// Path MTU code (4 bits).
    pub path_mtu: u8,
    /// RDC exists.
    pub rdc_exists: bool,
    /// RNR retry count (3 bits).
    pub rnr_retry_count: u8,
    /// Max CM retries (4 bits).
    pub max_cm_retries: u8,
    /// SRQ.
    pub srq: bool,
    /// Extended transport type (3 bits).
    pub extended_transport_type: u8,
    /// Primary path.
    pub primary_path: PathRepr,
    /// Alternate path.
    pub alternate_path: PathRepr,
    /// SAP supported.
    pub sap_supported: bool,
    /// Private data.
    pub private_data: Opaque<PRIVATE_DATA_LEN>,
}

impl Repr {
    /// Decodes a checked REQ view.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Self> {
        packet.check_len()?;
        Ok(Repr {
            local_comm_id: packet.local_comm_id(),
            vendor_id: packet.vendor_id(),
            service_id: packet.service_id(),
            local_ca_guid: packet.local_ca_guid(),
            local_q_key: packet.local_q_key(),
            local_qpn: packet.local_qpn(),
            responder_resources: packet.responder_resources(),
            local_eecn: packet.local_eecn(),
            initiator_depth: packet.initiator_depth(),
            remote_eecn: packet.remote_eecn(),
            remote_cm_response_timeout: packet.remote_cm_response_timeout(),
            transport_service_type: TransportType(packet.transport_service_type()),
            end_to_end_flow_control: packet.end_to_end_flow_control(),
            starting_psn: packet.starting_psn(),
            local_cm_response_timeout: packet.local_cm_response_timeout(),
            retry_count: packet.retry_count(),
            partition_key: packet.partition_key(),
            path_mtu: packet.path_mtu(),
            rdc_exists: packet.rdc_exists(),
            rnr_retry_count: packet.rnr_retry_count(),
            max_cm_retries: packet.max_cm_retries(),
            srq: packet.srq(),
            extended_transport_type: packet.extended_transport_type(),
            primary_path: PathRepr::parse(&packet.primary_path()),
            alternate_path: PathRepr::parse(&packet.alternate_path()),
            sap_supported: packet.sap_supported(),
            private_data: Opaque::from_field(packet.private_data()),
        })
    }

    /// Refuses values wider than their fields.
    pub fn check(&self) -> Result<()> {
        check_width(self.vendor_id, 24)?;
        check_width(self.local_qpn, 24)?;
        check_width(self.local_eecn, 24)?;
        check_width(self.remote_eecn, 24)?;
        check_width(self.remote_cm_response_timeout.into(), 5)?;
        check_width(self.transport_service_type.0.into(), 2)?;
        check_width(self.starting_psn, 24)?;
        check_width(self.local_cm_response_timeout.into(), 5)?;
        check_width(self.retry_count.into(), 3)?;
        check_width(self.path_mtu.into(), 4)?;
        check_width(self.rnr_retry_count.into(), 3)?;
        check_width(self.max_cm_retries.into(), 4)?;
        check_width(self.extended_transport_type.into(), 3)?;
        self.primary_path.check()?;
        self.alternate_path.check()
    }

    /// Writes the whole body, reserved bits zero.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) -> Result<()> {
        self.check()?;
        packet.clear()?;
        packet.set_local_comm_id(self.local_comm_id);
        packet.set_vendor_id(self.vendor_id);
        packet.set_service_id(self.service_id);
        packet.set_local_ca_guid(self.local_ca_guid);
        packet.set_local_q_key(self.local_q_key);
        packet.set_local_qpn(self.local_qpn);
        packet.set_responder_resources(self.responder_resources);
        packet.set_local_eecn(self.local_eecn);
        packet.set_initiator_depth(self.initiator_depth);
        packet.set_remote_eecn(self.remote_eecn);
        packet.set_remote_cm_response_timeout(self.remote_cm_response_timeout);
        packet.set_transport_service_type(self.transport_service_type.0);
        packet.set_end_to_end_flow_control(self.end_to_end_flow_control);
        packet.set_starting_psn(self.starting_psn);
        packet.set_local_cm_response_timeout(self.local_cm_response_timeout);
        packet.set_retry_count(self.retry_count);
        packet.set_partition_key(self.partition_key);
        packet.set_path_mtu(self.path_mtu);
        packet.set_rdc_exists(self.rdc_exists);
        packet.set_rnr_retry_count(self.rnr_retry_count);
        packet.set_max_cm_retries(self.max_cm_retries);
        packet.set_srq(self.srq);
        packet.set_extended_transport_type(self.extended_transport_type);
        self.primary_path.emit(&mut packet.primary_path_mut())?;
        self.alternate_path.emit(&mut packet.alternate_path_mut())?;
        // After the alternate path: its ACK-timeout byte shares bit 2 with SAP.
        packet.set_sap_supported(self.sap_supported);
        self.private_data.write_to(packet.private_data_mut());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::DATA_LEN;
    use super::*;
    use crate::wire::Error;
    use core::net::Ipv6Addr;

    pub(crate) fn sample() -> Repr {
        let mut private_data = [0u8; PRIVATE_DATA_LEN];
        for (i, b) in private_data.iter_mut().enumerate() {
            *b = i as u8 ^ 0x5A;
        }
        Repr {
            local_comm_id: 0xA3A6_ABF3,
            vendor_id: 0x12_3456,
            service_id: 0x0000_0000_0106_1C06,
            local_ca_guid: 0x5054_00FF_FE00_0003,
            local_q_key: 0x8001_0000,
            local_qpn: 0xAB_CDEF,
            responder_resources: 0x11,
            local_eecn: 0x12_3457,
            initiator_depth: 0x22,
            remote_eecn: 0x65_4321,
            remote_cm_response_timeout: 21,
            transport_service_type: TransportType::EXTENDED,
            end_to_end_flow_control: true,
            starting_psn: 0x73_FEFE,
            local_cm_response_timeout: 17,
            retry_count: 6,
            partition_key: 0x7FFF,
            path_mtu: 5,
            rdc_exists: true,
            rnr_retry_count: 5,
            max_cm_retries: 14,
            srq: true,
            extended_transport_type: 1,
            primary_path: PathRepr {
                local_lid: 0xFFFF,
                remote_lid: 0xFFFE,
                local_gid: Ipv6Addr::new(0, 0, 0, 0, 0, 0xFFFF, 0x0A09, 0x0003),
                remote_gid: Ipv6Addr::new(0, 0, 0, 0, 0, 0xFFFF, 0x0A09, 0x0002),
                flow_label: 0xC5A69,
                packet_rate: 7,
                traffic_class: 0x28,
                hop_limit: 64,
                sl: 3,
                subnet_local: true,
                local_ack_timeout: 19,
            },
            alternate_path: PathRepr {
                local_lid: 0x0102,
                remote_lid: 0x0304,
                local_gid: Ipv6Addr::new(0xFE80, 0, 0, 0, 0x5054, 0xFF, 0xFE00, 3),
                remote_gid: Ipv6Addr::new(0xFE80, 0, 0, 0, 0x5054, 0xFF, 0xFE00, 2),
                flow_label: 0x3E123,
                packet_rate: 0x3F,
                traffic_class: 0xB8,
                hop_limit: 1,
                sl: 15,
                subnet_local: false,
                local_ack_timeout: 31,
            },
            sap_supported: true,
            private_data: Opaque(private_data),
        }
    }

    #[test]
    fn round_trip() {
        let repr = sample();
        let mut buf = [0xFFu8; DATA_LEN];
        repr.emit(&mut Packet::new_checked(&mut buf[..]).unwrap())
            .unwrap();
        assert_eq!(
            Repr::parse(&Packet::new_checked(&buf[..]).unwrap()),
            Ok(repr)
        );
    }

    #[test]
    fn layout() {
        // Expected bytes from the IBA Vol 1 ch. 12 (REQ); Linux include/rdma/ibta_vol1_c12.h table.
        let mut buf = [0xFFu8; DATA_LEN];
        sample()
            .emit(&mut Packet::new_checked(&mut buf[..]).unwrap())
            .unwrap();
        assert_eq!(buf[0..8], [0xA3, 0xA6, 0xAB, 0xF3, 0x00, 0x12, 0x34, 0x56]);
        assert_eq!(buf[8..16], [0, 0, 0, 0, 0x01, 0x06, 0x1C, 0x06]);
        assert_eq!(
            buf[16..24],
            [0x50, 0x54, 0x00, 0xFF, 0xFE, 0x00, 0x00, 0x03]
        );
        assert_eq!(buf[24..32], [0, 0, 0, 0, 0x80, 0x01, 0x00, 0x00]);
        assert_eq!(
            buf[32..40],
            [0xAB, 0xCD, 0xEF, 0x11, 0x12, 0x34, 0x57, 0x22]
        );
        // 21 << 3 | 3 << 1 | 1; 17 << 3 | 6.
        assert_eq!(
            buf[40..48],
            [0x65, 0x43, 0x21, 0xAF, 0x73, 0xFE, 0xFE, 0x8E]
        );
        // MTU 5, RDC, RNR 5; retries 14, SRQ, ext 1.
        assert_eq!(buf[48..52], [0x7F, 0xFF, 0x5D, 0xE9]);
        assert_eq!(buf[52..56], [0xFF, 0xFF, 0xFF, 0xFE]);
        assert_eq!(buf[66..72], [0xFF, 0xFF, 0x0A, 0x09, 0x00, 0x03]);
        assert_eq!(buf[82..88], [0xFF, 0xFF, 0x0A, 0x09, 0x00, 0x02]);
        assert_eq!(
            buf[88..96],
            [0xC5, 0xA6, 0x90, 0x07, 0x28, 0x40, 0x38, 0x98]
        );
        assert_eq!(buf[96..100], [0x01, 0x02, 0x03, 0x04]);
        assert_eq!(buf[100..102], [0xFE, 0x80]);
        assert_eq!(buf[116..118], [0xFE, 0x80]);
        // Alternate: FL 0x3E123, rate 63, TC, HL, SL 15, ACK timeout 31 + SAP.
        assert_eq!(
            buf[132..140],
            [0x3E, 0x12, 0x30, 0x3F, 0xB8, 0x01, 0xF0, 0xFC]
        );
        assert_eq!(buf[140], 0x5A);
        assert_eq!(buf[231], 91 ^ 0x5A);
    }

    #[test]
    fn sap_does_not_disturb_alternate_ack_timeout() {
        let mut buf = [0u8; DATA_LEN];
        let mut packet = Packet::new_checked(&mut buf[..]).unwrap();
        packet.alternate_path_mut().set_local_ack_timeout(0x1F);
        packet.set_sap_supported(true);
        packet.set_sap_supported(false);
        assert_eq!(packet.alternate_path().local_ack_timeout(), 0x1F);
        assert_eq!(buf[139], 0xF8);
    }

    #[test]
    fn reserved_bits_are_ignored_and_zeroed() {
        let mut buf = [0u8; DATA_LEN];
        sample()
            .emit(&mut Packet::new_checked(&mut buf[..]).unwrap())
            .unwrap();
        let clean = buf;
        // Reserved: byte 4, bytes 24..28, byte 90 low nibble + 91 b7..6,
        // byte 94 b2..0, byte 95 b2..0 (IBA Vol 1 ch. 12 (REQ); Linux include/rdma/ibta_vol1_c12.h).
        buf[4] = 0xFF;
        buf[24..28].fill(0xFF);
        buf[90] |= 0x0F;
        buf[91] |= 0xC0;
        buf[94] |= 0x07;
        buf[95] |= 0x07;
        let repr = Repr::parse(&Packet::new_checked(&buf[..]).unwrap()).unwrap();
        assert_eq!(repr, sample());
        let mut again = [0u8; DATA_LEN];
        repr.emit(&mut Packet::new_checked(&mut again[..]).unwrap())
            .unwrap();
        assert_eq!(again, clean);
    }

    #[test]
    fn emit_refuses_wide_values() {
        let mut buf = [0u8; DATA_LEN];
        let mut packet = Packet::new_checked(&mut buf[..]).unwrap();
        for bad in [
            Repr {
                local_qpn: 1 << 24,
                ..sample()
            },
            Repr {
                starting_psn: 1 << 24,
                ..sample()
            },
            Repr {
                retry_count: 8,
                ..sample()
            },
            Repr {
                transport_service_type: TransportType(4),
                ..sample()
            },
            Repr {
                remote_cm_response_timeout: 32,
                ..sample()
            },
        ] {
            assert_eq!(bad.emit(&mut packet), Err(Error::Malformed));
        }
        let mut short = [0u8; DATA_LEN - 1];
        assert_eq!(
            sample().emit(&mut Packet::new_unchecked(&mut short[..])),
            Err(Error::BufferTooSmall)
        );
    }
}
