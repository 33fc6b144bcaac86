//! ConnectReject, REJ (attribute 0x0012; IBA Vol 1 ch. 12 (REJ); Linux include/rdma/ibta_vol1_c12.h, reasons IBA Vol 1 ch. 12 (REJ reasons); Linux include/rdma/ib_cm.h).

use super::{Opaque, RejectReason, TargetMessage, check_info_length};
use crate::wire::Result;
use crate::wire::bytes::{check_width, fields};

/// Size of the additional rejection information field (ib_cm.h).
pub const ARI_LEN: usize = 72;
/// Size of the REJ private data (ib_cm.h).
pub const PRIVATE_DATA_LEN: usize = 148;

/// Byte offsets in the REJ body (IBA Vol 1 ch. 12 (REJ); Linux include/rdma/ibta_vol1_c12.h; ibta_vol1_c12.h table 108).
mod field {
    pub const LOCAL_COMM_ID: usize = 0;
    pub const REMOTE_COMM_ID: usize = 4;
    pub const MESSAGE_REJECTED: (usize, u8) = (8, 0xC0);
    pub const REJECT_INFO_LENGTH: (usize, u8) = (9, 0xFE);
    pub const REASON: usize = 10;
    pub const ARI: usize = 12;
    pub const PRIVATE_DATA: usize = 84;
}

cm_view!("REJ");

fields! { Packet;
    /// Local Communication ID (0 when a REQ is refused before an ID exists).
    local_comm_id, set_local_comm_id: u32(field::LOCAL_COMM_ID);
    /// Remote Communication ID.
    remote_comm_id, set_remote_comm_id: u32(field::REMOTE_COMM_ID);
    /// Message REJected (2 bits; see [`TargetMessage`]).
    message_rejected, set_message_rejected:
        bits(field::MESSAGE_REJECTED);
    /// Reject info length: how many ARI bytes are meaningful (7 bits).
    reject_info_length, set_reject_info_length:
        bits(field::REJECT_INFO_LENGTH);
    /// Reason (see [`RejectReason`]).
    reason, set_reason: u16(field::REASON);
}

cm_bytes! {
    /// The whole 72-byte additional rejection information field.
    ari, ari_mut: field::ARI, ARI_LEN
}

cm_bytes! {
    /// Private data (148 bytes).
    private_data, private_data_mut: field::PRIVATE_DATA, PRIVATE_DATA_LEN
}

/// A REJ, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    /// Local Communication ID.
    pub local_comm_id: u32,
    /// Remote Communication ID.
    pub remote_comm_id: u32,
    /// Message REJected.
    pub message_rejected: TargetMessage,
    /// Reject info length (at most [`ARI_LEN`]).
    pub reject_info_length: u8,
    /// Reason.
    pub reason: RejectReason,
    /// The whole ARI field; [`Repr::ari_info`] gives the meaningful part.
    pub ari: Opaque<ARI_LEN>,
    /// Private data.
    pub private_data: Opaque<PRIVATE_DATA_LEN>,
}

impl Repr {
    /// Decodes a checked REJ view.
    ///
    /// A reject info length above 72 cannot describe the ARI field:
    /// [`Error::Malformed`](crate::wire::Error::Malformed).
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Self> {
        packet.check_len()?;
        let reject_info_length = packet.reject_info_length();
        check_info_length(reject_info_length, ARI_LEN)?;
        Ok(Repr {
            local_comm_id: packet.local_comm_id(),
            remote_comm_id: packet.remote_comm_id(),
            message_rejected: TargetMessage(packet.message_rejected()),
            reject_info_length,
            reason: RejectReason(packet.reason()),
            ari: Opaque::from_field(packet.ari()),
            private_data: Opaque::from_field(packet.private_data()),
        })
    }

    /// The meaningful ARI bytes (e.g. the 8-byte node GUID with reason 4).
    pub fn ari_info(&self) -> &[u8] {
        self.ari
            .0
            .get(..usize::from(self.reject_info_length))
            .unwrap_or(&self.ari.0)
    }

    /// Refuses values wider than their fields.
    pub fn check(&self) -> Result<()> {
        check_width(self.message_rejected.0.into(), 2)?;
        check_info_length(self.reject_info_length, ARI_LEN)
    }

    /// Writes the whole body, reserved bits zero.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) -> Result<()> {
        self.check()?;
        packet.clear()?;
        packet.set_local_comm_id(self.local_comm_id);
        packet.set_remote_comm_id(self.remote_comm_id);
        packet.set_message_rejected(self.message_rejected.0);
        packet.set_reject_info_length(self.reject_info_length);
        packet.set_reason(self.reason.0);
        self.ari.write_to(packet.ari_mut());
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
            local_comm_id: 0x1111_2222,
            remote_comm_id: 0x3333_4444,
            message_rejected: TargetMessage::OTHER,
            reject_info_length: 8,
            reason: RejectReason::TIMEOUT,
            ari: Opaque::from_prefix(&[0x50, 0x54, 0x00, 0xFF, 0xFE, 0x00, 0x00, 0x03]).unwrap(),
            private_data: Opaque::from_prefix(&[0xAA; PRIVATE_DATA_LEN]).unwrap(),
        }
    }

    #[test]
    fn round_trip_and_layout() {
        let mut buf = [0xFFu8; DATA_LEN];
        sample()
            .emit(&mut Packet::new_checked(&mut buf[..]).unwrap())
            .unwrap();
        let parsed = Repr::parse(&Packet::new_checked(&buf[..]).unwrap()).unwrap();
        assert_eq!(parsed, sample());
        assert_eq!(
            parsed.ari_info(),
            &[0x50, 0x54, 0x00, 0xFF, 0xFE, 0x00, 0x00, 0x03]
        );
        // 2 << 6; 8 << 1; reason 4 (IBA Vol 1 ch. 12 (REJ); Linux include/rdma/ibta_vol1_c12.h).
        assert_eq!(
            buf[0..14],
            [
                0x11, 0x11, 0x22, 0x22, 0x33, 0x33, 0x44, 0x44, 0x80, 0x10, 0, 4, 0x50, 0x54
            ]
        );
        assert!(buf[20..84].iter().all(|&b| b == 0));
        assert!(buf[84..].iter().all(|&b| b == 0xAA));
    }

    #[test]
    fn ari_length_is_bounded() {
        let mut buf = [0u8; DATA_LEN];
        buf[9] = 73 << 1;
        assert_eq!(
            Repr::parse(&Packet::new_checked(&buf[..]).unwrap()),
            Err(Error::Malformed)
        );
        buf[9] = (72 << 1) | 1; // the low bit is reserved
        assert_eq!(
            Repr::parse(&Packet::new_checked(&buf[..]).unwrap()).map(|r| r.reject_info_length),
            Ok(72)
        );
        let bad = Repr {
            reject_info_length: 73,
            ..sample()
        };
        assert_eq!(
            bad.emit(&mut Packet::new_checked(&mut buf[..]).unwrap()),
            Err(Error::Malformed)
        );
    }

    #[test]
    fn reason_constants_match_ib_cm_h() {
        // A few anchors of IBA Vol 1 ch. 12 (REJ reasons); Linux include/rdma/ib_cm.h (the whole list is transcribed in mod.rs).
        assert_eq!(RejectReason::NO_QP.0, 1);
        assert_eq!(RejectReason::INVALID_SERVICE_ID.0, 8);
        assert_eq!(RejectReason::STALE_CONN.0, 10);
        assert_eq!(RejectReason::CONSUMER_DEFINED.0, 28);
        assert_eq!(RejectReason::INVALID_ALT_FLOW_LABEL.0, 33);
        assert_eq!(RejectReason::VENDOR_OPTION_NOT_SUPPORTED.0, 35);
    }
}
