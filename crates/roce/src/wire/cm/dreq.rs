//! DisconnectRequest, DREQ (attribute 0x0015; IBA Vol 1 ch. 12 (RTU, DREQ, DREP); Linux include/rdma/ibta_vol1_c12.h).

use super::Opaque;
use crate::wire::Result;
use crate::wire::bytes::{check_width, fields};

/// Size of the DREQ private data (ib_cm.h).
pub const PRIVATE_DATA_LEN: usize = 220;

/// Byte offsets in the DREQ body (IBA Vol 1 ch. 12 (RTU, DREQ, DREP); Linux include/rdma/ibta_vol1_c12.h; ibta_vol1_c12.h table 112).
mod field {
    pub const LOCAL_COMM_ID: usize = 0;
    pub const REMOTE_COMM_ID: usize = 4;
    pub const REMOTE_QPN: usize = 8;
    pub const PRIVATE_DATA: usize = 12;
}

cm_view!("DREQ");

fields! { Packet;
    /// Local Communication ID.
    local_comm_id, set_local_comm_id: u32(field::LOCAL_COMM_ID);
    /// Remote Communication ID.
    remote_comm_id, set_remote_comm_id: u32(field::REMOTE_COMM_ID);
    /// Remote QPN/EECN (24 bits): the receiver's QPN; Linux ignores a DREQ
    /// that names another QP (IBA Vol 1 ch. 12 (RTU, DREQ, DREP); Linux include/rdma/ibta_vol1_c12.h, IBA Vol 1 and Linux rxe).
    remote_qpn, set_remote_qpn: u24(field::REMOTE_QPN);
}

cm_bytes! {
    /// Private data (220 bytes).
    private_data, private_data_mut: field::PRIVATE_DATA, PRIVATE_DATA_LEN
}

/// A DREQ, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Repr {
    /// Local Communication ID.
    pub local_comm_id: u32,
    /// Remote Communication ID.
    pub remote_comm_id: u32,
    /// Remote QPN/EECN (24 bits).
    pub remote_qpn: u32,
    /// Private data.
    pub private_data: Opaque<PRIVATE_DATA_LEN>,
}

impl Repr {
    /// Decodes a checked DREQ view.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Self> {
        packet.check_len()?;
        Ok(Repr {
            local_comm_id: packet.local_comm_id(),
            remote_comm_id: packet.remote_comm_id(),
            remote_qpn: packet.remote_qpn(),
            private_data: Opaque::from_field(packet.private_data()),
        })
    }

    /// Refuses values wider than their fields.
    pub fn check(&self) -> Result<()> {
        check_width(self.remote_qpn, 24)
    }

    /// Writes the whole body, reserved bits zero.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) -> Result<()> {
        self.check()?;
        packet.clear()?;
        packet.set_local_comm_id(self.local_comm_id);
        packet.set_remote_comm_id(self.remote_comm_id);
        packet.set_remote_qpn(self.remote_qpn);
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
            local_comm_id: 0xA3A6_ABF3,
            remote_comm_id: 0x28DB_B4EB,
            remote_qpn: 0xAB_CD11,
            private_data: Opaque::from_prefix(b"bye").unwrap(),
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
        assert_eq!(buf[8..15], [0xAB, 0xCD, 0x11, 0x00, b'b', b'y', b'e']);
        assert!(buf[15..].iter().all(|&b| b == 0));
    }

    #[test]
    fn reserved_byte_ignored_and_qpn_bounded() {
        let mut buf = [0u8; DATA_LEN];
        sample()
            .emit(&mut Packet::new_checked(&mut buf[..]).unwrap())
            .unwrap();
        buf[11] = 0xEE;
        assert_eq!(
            Repr::parse(&Packet::new_checked(&buf[..]).unwrap()),
            Ok(sample())
        );
        let bad = Repr {
            remote_qpn: 0x100_0000,
            ..sample()
        };
        assert_eq!(
            bad.emit(&mut Packet::new_checked(&mut buf[..]).unwrap()),
            Err(Error::Malformed)
        );
    }
}
