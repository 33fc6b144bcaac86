//! DisconnectReply, DREP (attribute 0x0016; roce.md §5.5).

use super::Opaque;
use crate::wire::Result;

/// Size of the DREP private data (ib_cm.h).
pub const PRIVATE_DATA_LEN: usize = 224;

/// Byte offsets in the DREP body (roce.md §5.5).
mod field {
    pub const LOCAL_COMM_ID: usize = 0;
    pub const REMOTE_COMM_ID: usize = 4;
    pub const PRIVATE_DATA: usize = 8;
}

cm_view!("DREP");

cm_fields! {
    /// Local Communication ID.
    local_comm_id, set_local_comm_id: u32(field::LOCAL_COMM_ID);
    /// Remote Communication ID.
    remote_comm_id, set_remote_comm_id: u32(field::REMOTE_COMM_ID);
}

cm_bytes! {
    /// Private data (224 bytes).
    private_data, private_data_mut: field::PRIVATE_DATA, PRIVATE_DATA_LEN
}

/// An DREP, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Repr {
    /// Local Communication ID.
    pub local_comm_id: u32,
    /// Remote Communication ID.
    pub remote_comm_id: u32,
    /// Private data.
    pub private_data: Opaque<PRIVATE_DATA_LEN>,
}

impl Repr {
    /// Decodes a checked DREP view.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Self> {
        packet.check_len()?;
        Ok(Repr {
            local_comm_id: packet.local_comm_id(),
            remote_comm_id: packet.remote_comm_id(),
            private_data: Opaque::from_field(packet.private_data()),
        })
    }

    /// Always the whole CM body.
    pub const fn buffer_len(&self) -> usize {
        super::DATA_LEN
    }

    /// Writes the whole body.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) -> Result<()> {
        packet.clear()?;
        packet.set_local_comm_id(self.local_comm_id);
        packet.set_remote_comm_id(self.remote_comm_id);
        packet
            .private_data_mut()
            .copy_from_slice(&self.private_data.0);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::DATA_LEN;
    use super::*;

    #[test]
    fn round_trip_and_layout() {
        let repr = Repr {
            local_comm_id: 0xA3A6_ABF3,
            remote_comm_id: 0x28DB_B4EB,
            private_data: Opaque::from_prefix(&[0x77; PRIVATE_DATA_LEN]).unwrap(),
        };
        let mut buf = [0u8; DATA_LEN];
        repr.emit(&mut Packet::new_checked(&mut buf[..]).unwrap())
            .unwrap();
        assert_eq!(
            Repr::parse(&Packet::new_checked(&buf[..]).unwrap()),
            Ok(repr)
        );
        assert_eq!(buf[0..8], [0xA3, 0xA6, 0xAB, 0xF3, 0x28, 0xDB, 0xB4, 0xEB]);
        assert!(buf[8..].iter().all(|&b| b == 0x77));
    }
}
