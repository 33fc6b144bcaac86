//! ServiceIDResolutionResponse, SIDR_REP (attribute 0x0018; IBA Vol 1 ch. 12 (RTU, DREQ, DREP); Linux include/rdma/ibta_vol1_c12.h).

use super::{Opaque, check_info_length};
use crate::wire::Result;
use crate::wire::bytes::{check_width, fields};

/// Size of the additional information field (ib_cm.h).
pub const INFO_LEN: usize = 72;
/// Size of the SIDR_REP private data (ib_cm.h).
pub const PRIVATE_DATA_LEN: usize = 136;

/// SIDR_REP status (ib_cm.h `ib_cm_sidr_status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SidrStatus(pub u8);

impl SidrStatus {
    /// The QP information is valid.
    pub const SUCCESS: Self = Self(0);
    /// Service ID not supported.
    pub const UNSUPPORTED: Self = Self(1);
    /// Rejected by the service.
    pub const REJECT: Self = Self(2);
    /// No QP available.
    pub const NO_QP: Self = Self(3);
    /// Redirect (additional info holds ClassPortInfo).
    pub const REDIRECT: Self = Self(4);
    /// Unsupported class version.
    pub const UNSUPPORTED_VERSION: Self = Self(5);
}

/// Byte offsets in the SIDR_REP body (ibta_vol1_c12.h table 120).
mod field {
    pub const REQUEST_ID: usize = 0;
    pub const STATUS: usize = 4;
    pub const INFO_LENGTH: usize = 5;
    pub const QPN: usize = 8;
    pub const SERVICE_ID: usize = 12;
    pub const Q_KEY: usize = 20;
    pub const INFO: usize = 24;
    pub const PRIVATE_DATA: usize = 96;
}

cm_view!("SIDR_REP");

fields! { Packet;
    /// Request ID (echoes the SIDR_REQ's).
    request_id, set_request_id: u32(field::REQUEST_ID);
    /// Status (see [`SidrStatus`]).
    status, set_status: u8(field::STATUS);
    /// Additional information length.
    info_length, set_info_length: u8(field::INFO_LENGTH);
    /// QPN (24 bits).
    qpn, set_qpn: u24(field::QPN);
    /// Service ID.
    service_id, set_service_id: u64(field::SERVICE_ID);
    /// Q_Key.
    q_key, set_q_key: u32(field::Q_KEY);
}

cm_bytes! {
    /// The whole 72-byte additional information field.
    info, info_mut: field::INFO, INFO_LEN
}

cm_bytes! {
    /// Private data (136 bytes).
    private_data, private_data_mut: field::PRIVATE_DATA, PRIVATE_DATA_LEN
}

/// A SIDR_REP, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    /// Request ID.
    pub request_id: u32,
    /// Status.
    pub status: SidrStatus,
    /// Additional information length (at most [`INFO_LEN`]).
    pub info_length: u8,
    /// QPN (24 bits).
    pub qpn: u32,
    /// Service ID.
    pub service_id: u64,
    /// Q_Key.
    pub q_key: u32,
    /// The whole additional information field.
    pub info: Opaque<INFO_LEN>,
    /// Private data.
    pub private_data: Opaque<PRIVATE_DATA_LEN>,
}

impl Repr {
    /// Decodes a checked SIDR_REP view; an information length above 72 is
    /// [`Error::Malformed`](crate::wire::Error::Malformed).
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Self> {
        packet.check_len()?;
        let info_length = packet.info_length();
        check_info_length(info_length, INFO_LEN)?;
        Ok(Repr {
            request_id: packet.request_id(),
            status: SidrStatus(packet.status()),
            info_length,
            qpn: packet.qpn(),
            service_id: packet.service_id(),
            q_key: packet.q_key(),
            info: Opaque::from_field(packet.info()),
            private_data: Opaque::from_field(packet.private_data()),
        })
    }

    /// Refuses values wider than their fields.
    pub fn check(&self) -> Result<()> {
        check_width(self.qpn, 24)?;
        check_info_length(self.info_length, INFO_LEN)
    }

    /// Writes the whole body, reserved bytes zero.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) -> Result<()> {
        self.check()?;
        packet.clear()?;
        packet.set_request_id(self.request_id);
        packet.set_status(self.status.0);
        packet.set_info_length(self.info_length);
        packet.set_qpn(self.qpn);
        packet.set_service_id(self.service_id);
        packet.set_q_key(self.q_key);
        self.info.write_to(packet.info_mut());
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
            request_id: 0x0102_0304,
            status: SidrStatus::REDIRECT,
            info_length: 3,
            qpn: 0x12_3456,
            service_id: 0x0000_0000_0111_4321,
            q_key: 0x8001_0000,
            info: Opaque::from_prefix(&[7, 8, 9]).unwrap(),
            private_data: Opaque::from_prefix(&[0x42; 136]).unwrap(),
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
        assert_eq!(buf[0..12], [1, 2, 3, 4, 4, 3, 0, 0, 0x12, 0x34, 0x56, 0]);
        assert_eq!(
            buf[12..24],
            [0, 0, 0, 0, 0x01, 0x11, 0x43, 0x21, 0x80, 0x01, 0, 0]
        );
        assert_eq!(buf[24..28], [7, 8, 9, 0]);
        assert!(buf[96..].iter().all(|&b| b == 0x42));
    }

    #[test]
    fn info_length_is_bounded() {
        let mut buf = [0u8; DATA_LEN];
        buf[5] = 73;
        assert_eq!(
            Repr::parse(&Packet::new_checked(&buf[..]).unwrap()),
            Err(Error::Malformed)
        );
    }
}
