//! MessageReceiptAcknowledgement, MRA (attribute 0x0011; IBA Vol 1 ch. 12 (MRA); Linux include/rdma/ibta_vol1_c12.h).

use super::{Opaque, TargetMessage};
use crate::wire::Result;
use crate::wire::bytes::{check_width, fields};

/// Size of the MRA private data (ib_cm.h).
pub const PRIVATE_DATA_LEN: usize = 222;

/// Byte offsets in the MRA body (IBA Vol 1 ch. 12 (MRA); Linux include/rdma/ibta_vol1_c12.h; ibta_vol1_c12.h table 107).
mod field {
    pub const LOCAL_COMM_ID: usize = 0;
    pub const REMOTE_COMM_ID: usize = 4;
    pub const MESSAGE_MRAED: (usize, u8) = (8, 0xC0);
    pub const SERVICE_TIMEOUT: (usize, u8) = (9, 0xF8);
    pub const PRIVATE_DATA: usize = 10;
}

cm_view!("MRA");

fields! { Packet;
    /// Local Communication ID.
    local_comm_id, set_local_comm_id: u32(field::LOCAL_COMM_ID);
    /// Remote Communication ID.
    remote_comm_id, set_remote_comm_id: u32(field::REMOTE_COMM_ID);
    /// Message MRAed (2 bits; see [`TargetMessage`]).
    message_mraed, set_message_mraed: bits(field::MESSAGE_MRAED);
    /// Service timeout (5 bits): how much longer the peer should wait.
    service_timeout, set_service_timeout:
        bits(field::SERVICE_TIMEOUT);
}

cm_bytes! {
    /// Private data (222 bytes).
    private_data, private_data_mut: field::PRIVATE_DATA, PRIVATE_DATA_LEN
}

/// An MRA, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    /// Local Communication ID.
    pub local_comm_id: u32,
    /// Remote Communication ID.
    pub remote_comm_id: u32,
    /// Message MRAed (REQ, REP or LAP as OTHER).
    pub message_mraed: TargetMessage,
    /// Service timeout (5 bits).
    pub service_timeout: u8,
    /// Private data.
    pub private_data: Opaque<PRIVATE_DATA_LEN>,
}

impl Repr {
    /// Decodes a checked MRA view.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Self> {
        packet.check_len()?;
        Ok(Repr {
            local_comm_id: packet.local_comm_id(),
            remote_comm_id: packet.remote_comm_id(),
            message_mraed: TargetMessage(packet.message_mraed()),
            service_timeout: packet.service_timeout(),
            private_data: Opaque::from_field(packet.private_data()),
        })
    }

    /// Refuses values wider than their fields.
    pub fn check(&self) -> Result<()> {
        check_width(self.message_mraed.0.into(), 2)?;
        check_width(self.service_timeout.into(), 5)
    }

    /// Writes the whole body, reserved bits zero.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) -> Result<()> {
        self.check()?;
        packet.clear()?;
        packet.set_local_comm_id(self.local_comm_id);
        packet.set_remote_comm_id(self.remote_comm_id);
        packet.set_message_mraed(self.message_mraed.0);
        packet.set_service_timeout(self.service_timeout);
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
            local_comm_id: 0x0102_0304,
            remote_comm_id: 0x0506_0708,
            message_mraed: TargetMessage::REP,
            service_timeout: 24,
            private_data: Opaque::from_prefix(b"mra private").unwrap(),
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
        // 1 << 6; 24 << 3 (IBA Vol 1 ch. 12 (MRA); Linux include/rdma/ibta_vol1_c12.h).
        assert_eq!(buf[0..10], [1, 2, 3, 4, 5, 6, 7, 8, 0x40, 0xC0]);
        assert_eq!(&buf[10..21], b"mra private");
        assert!(buf[21..].iter().all(|&b| b == 0));
    }

    #[test]
    fn reserved_bits_ignored() {
        let mut buf = [0u8; DATA_LEN];
        sample()
            .emit(&mut Packet::new_checked(&mut buf[..]).unwrap())
            .unwrap();
        buf[8] |= 0x3F;
        buf[9] |= 0x07;
        assert_eq!(
            Repr::parse(&Packet::new_checked(&buf[..]).unwrap()),
            Ok(sample())
        );
    }

    #[test]
    fn emit_refuses_wide_values() {
        let mut buf = [0u8; DATA_LEN];
        let bad = Repr {
            message_mraed: TargetMessage(4),
            ..sample()
        };
        assert_eq!(
            bad.emit(&mut Packet::new_checked(&mut buf[..]).unwrap()),
            Err(Error::Malformed)
        );
    }
}
