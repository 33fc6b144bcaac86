//! AlternatePathResponse, APR (attribute 0x001A; IBA Vol 1 ch. 12 (RTU, DREQ, DREP); Linux include/rdma/ibta_vol1_c12.h).
//!
//! rxe does not implement path migration; decoded for completeness.

use super::{Opaque, check_info_length};
use crate::wire::Result;
use crate::wire::bytes::fields;

/// Size of the additional information field (ib_cm.h).
pub const INFO_LEN: usize = 72;
/// Size of the APR private data (ib_cm.h).
pub const PRIVATE_DATA_LEN: usize = 148;

/// APR status (ib_cm.h `ib_cm_apr_status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ApStatus(pub u8);

impl ApStatus {
    /// Alternate path loaded.
    pub const SUCCESS: Self = Self(0);
    /// Invalid communication ID.
    pub const INVALID_COMM_ID: Self = Self(1);
    /// Path migration not supported.
    pub const UNSUPPORTED: Self = Self(2);
    /// Rejected.
    pub const REJECT: Self = Self(3);
    /// Redirect.
    pub const REDIRECT: Self = Self(4);
    /// The proposed path is the current path.
    pub const IS_CURRENT: Self = Self(5);
    /// Invalid QPN/EECN.
    pub const INVALID_QPN_EECN: Self = Self(6);
    /// Invalid LID.
    pub const INVALID_LID: Self = Self(7);
    /// Invalid GID.
    pub const INVALID_GID: Self = Self(8);
    /// Invalid flow label.
    pub const INVALID_FLOW_LABEL: Self = Self(9);
    /// Invalid traffic class.
    pub const INVALID_TCLASS: Self = Self(10);
    /// Invalid hop limit.
    pub const INVALID_HOP_LIMIT: Self = Self(11);
    /// Invalid packet rate.
    pub const INVALID_PACKET_RATE: Self = Self(12);
    /// Invalid SL.
    pub const INVALID_SL: Self = Self(13);
}

/// Byte offsets in the APR body (ibta_vol1_c12.h table 116).
mod field {
    pub const LOCAL_COMM_ID: usize = 0;
    pub const REMOTE_COMM_ID: usize = 4;
    pub const INFO_LENGTH: usize = 8;
    pub const AP_STATUS: usize = 9;
    pub const INFO: usize = 12;
    pub const PRIVATE_DATA: usize = 84;
}

cm_view!("APR");

fields! { Packet;
    /// Local Communication ID.
    local_comm_id, set_local_comm_id: u32(field::LOCAL_COMM_ID);
    /// Remote Communication ID.
    remote_comm_id, set_remote_comm_id: u32(field::REMOTE_COMM_ID);
    /// Additional information length.
    info_length, set_info_length: u8(field::INFO_LENGTH);
    /// AP status (see [`ApStatus`]).
    ap_status, set_ap_status: u8(field::AP_STATUS);
}

cm_bytes! {
    /// The whole 72-byte additional information field.
    info, info_mut: field::INFO, INFO_LEN
}

cm_bytes! {
    /// Private data (148 bytes).
    private_data, private_data_mut: field::PRIVATE_DATA, PRIVATE_DATA_LEN
}

/// An APR, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    /// Local Communication ID.
    pub local_comm_id: u32,
    /// Remote Communication ID.
    pub remote_comm_id: u32,
    /// Additional information length (at most [`INFO_LEN`]).
    pub info_length: u8,
    /// AP status.
    pub ap_status: ApStatus,
    /// The whole additional information field.
    pub info: Opaque<INFO_LEN>,
    /// Private data.
    pub private_data: Opaque<PRIVATE_DATA_LEN>,
}

impl Repr {
    /// Decodes a checked APR view; an information length above 72 is
    /// [`Error::Malformed`](crate::wire::Error::Malformed).
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Self> {
        packet.check_len()?;
        let info_length = packet.info_length();
        check_info_length(info_length, INFO_LEN)?;
        Ok(Repr {
            local_comm_id: packet.local_comm_id(),
            remote_comm_id: packet.remote_comm_id(),
            info_length,
            ap_status: ApStatus(packet.ap_status()),
            info: Opaque::from_field(packet.info()),
            private_data: Opaque::from_field(packet.private_data()),
        })
    }

    /// Refuses values wider than their fields.
    pub fn check(&self) -> Result<()> {
        check_info_length(self.info_length, INFO_LEN)
    }

    /// Writes the whole body, reserved bytes zero.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) -> Result<()> {
        self.check()?;
        packet.clear()?;
        packet.set_local_comm_id(self.local_comm_id);
        packet.set_remote_comm_id(self.remote_comm_id);
        packet.set_info_length(self.info_length);
        packet.set_ap_status(self.ap_status.0);
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
            local_comm_id: 0x0A0B_0C0D,
            remote_comm_id: 0x0E0F_1011,
            info_length: 2,
            ap_status: ApStatus::INVALID_SL,
            info: Opaque::from_prefix(&[0xAB, 0xCD]).unwrap(),
            private_data: Opaque::from_prefix(&[0x5C; 148]).unwrap(),
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
            buf[0..14],
            [
                0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F, 0x10, 0x11, 2, 13, 0, 0, 0xAB, 0xCD
            ]
        );
        assert!(buf[84..].iter().all(|&b| b == 0x5C));
        let bad = Repr {
            info_length: 73,
            ..sample()
        };
        assert_eq!(
            bad.emit(&mut Packet::new_checked(&mut buf[..]).unwrap()),
            Err(Error::Malformed)
        );
    }
}
