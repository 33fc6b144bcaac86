//! ServiceIDResolutionRequest, SIDR_REQ (attribute 0x0017; IBA Vol 1 ch. 12 (RTU, DREQ, DREP); Linux include/rdma/ibta_vol1_c12.h).
//!
//! rdma_cm uses SIDR only for the UDP port space; decoded for completeness.

use super::Opaque;
use crate::wire::Result;
use crate::wire::bytes::fields;

/// Size of the SIDR_REQ private data (ib_cm.h).
pub const PRIVATE_DATA_LEN: usize = 216;

/// Byte offsets in the SIDR_REQ body (ibta_vol1_c12.h table 119).
mod field {
    pub const REQUEST_ID: usize = 0;
    pub const PARTITION_KEY: usize = 4;
    pub const SERVICE_ID: usize = 8;
    pub const PRIVATE_DATA: usize = 16;
}

cm_view!("SIDR_REQ");

fields! { Packet;
    /// Request ID.
    request_id, set_request_id: u32(field::REQUEST_ID);
    /// Partition key.
    partition_key, set_partition_key: u16(field::PARTITION_KEY);
    /// Service ID.
    service_id, set_service_id: u64(field::SERVICE_ID);
}

cm_bytes! {
    /// Private data (216 bytes).
    private_data, private_data_mut: field::PRIVATE_DATA, PRIVATE_DATA_LEN
}

/// A SIDR_REQ, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    /// Request ID.
    pub request_id: u32,
    /// Partition key.
    pub partition_key: u16,
    /// Service ID.
    pub service_id: u64,
    /// Private data.
    pub private_data: Opaque<PRIVATE_DATA_LEN>,
}

impl Repr {
    /// Decodes a checked SIDR_REQ view.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Self> {
        packet.check_len()?;
        Ok(Repr {
            request_id: packet.request_id(),
            partition_key: packet.partition_key(),
            service_id: packet.service_id(),
            private_data: Opaque::from_field(packet.private_data()),
        })
    }

    /// Writes the whole body, reserved bytes zero.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) -> Result<()> {
        packet.clear()?;
        packet.set_request_id(self.request_id);
        packet.set_partition_key(self.partition_key);
        packet.set_service_id(self.service_id);
        self.private_data.write_to(packet.private_data_mut());
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
            request_id: 0xDEAD_BEEF,
            partition_key: 0xFFFF,
            service_id: 0x0000_0000_0111_1234,
            private_data: Opaque::from_prefix(&[9; 216]).unwrap(),
        };
        let mut buf = [0xFFu8; DATA_LEN];
        repr.emit(&mut Packet::new_checked(&mut buf[..]).unwrap())
            .unwrap();
        assert_eq!(
            Repr::parse(&Packet::new_checked(&buf[..]).unwrap()),
            Ok(repr)
        );
        assert_eq!(
            buf[0..16],
            [
                0xDE, 0xAD, 0xBE, 0xEF, 0xFF, 0xFF, 0, 0, 0, 0, 0, 0, 0x01, 0x11, 0x12, 0x34
            ]
        );
        assert!(buf[16..].iter().all(|&b| b == 9));
    }
}
