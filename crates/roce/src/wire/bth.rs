//! Base Transport Header, 12 bytes (IBA Vol 1 ch. 9 (BTH); Linux rxe_hdr.h).

use super::bytes::{fields, fixed_view, set_u8};
use super::opcode::Opcode;
use super::{Error, Result};

/// Byte offsets; bit fields are `(byte, mask)`.
mod field {
    pub const OPCODE: usize = 0;
    /// SE (bit 7), M (bit 6), PadCnt (bits 5..4), TVer (bits 3..0).
    pub const FLAGS: usize = 1;
    pub const SOLICITED: (usize, u8) = (FLAGS, 0x80);
    pub const MIG_REQ: (usize, u8) = (FLAGS, 0x40);
    pub const PAD_COUNT: (usize, u8) = (FLAGS, 0x30);
    pub const TRANSPORT_VERSION: (usize, u8) = (FLAGS, 0x0F);
    pub const PKEY: usize = 2;
    /// FECN (bit 7), BECN (bit 6), 6 reserved bits: the byte the ICRC masks.
    pub const FECN_BECN: usize = 4;
    pub const FECN: (usize, u8) = (FECN_BECN, 0x80);
    pub const BECN: (usize, u8) = (FECN_BECN, 0x40);
    pub const RESERVED_6: (usize, u8) = (FECN_BECN, 0x3F);
    pub const DEST_QP: usize = 5;
    /// AckReq (bit 7), 7 reserved bits.
    pub const ACKREQ: usize = 8;
    pub const ACK_REQ: (usize, u8) = (ACKREQ, 0x80);
    pub const RESERVED_7: (usize, u8) = (ACKREQ, 0x7F);
    pub const PSN: usize = 9;
}

/// Length of the BTH.
pub const HEADER_LEN: usize = 12;

/// Offset of the BTH byte the ICRC replaces with 0xFF (IBA Annex A17 (ICRC); Linux rxe_icrc.c: FECN,
/// BECN and the 6 reserved bits, "resv8a").
pub const ICRC_MASKED: usize = field::FECN_BECN;

/// The one transport header version (rxe drops anything else, IBA Vol 1 ch. 9 (BTH); Linux rxe_hdr.h).
pub const TRANSPORT_VERSION: u8 = 0;

/// Largest 24-bit value (QPNs, PSNs).
pub const MAX_24: u32 = 0x00FF_FFFF;

/// The QP number of the GSI, where every MAD (and so every CM message)
/// is sent (the Linux rxe captures in crates/roce/tests/data).
pub const GSI_QPN: u32 = 1;

fixed_view!(Packet, HEADER_LEN, "A read/write view of a BTH.");

fields! { Packet;
    /// Raw opcode byte.
    opcode, set_opcode: u8(field::OPCODE);
    /// Solicited event.
    solicited, set_solicited: flag(field::SOLICITED);
    /// MigReq (rxe sends 0, ConnectX 1; receivers ignore it, IBA Vol 1 ch. 9: receivers ignore MigReq).
    mig_req, set_mig_req: flag(field::MIG_REQ);
    /// Pad count (0-3).
    pad_count, set_pad_count: bits(field::PAD_COUNT);
    /// Transport header version.
    transport_version, set_transport_version: bits(field::TRANSPORT_VERSION);
    /// Partition key.
    pkey, set_pkey: u16(field::PKEY);
    /// Forward ECN.
    fecn, set_fecn: flag(field::FECN);
    /// Backward ECN.
    becn, set_becn: flag(field::BECN);
    /// The 6 reserved bits of byte 4.
    reserved_6, set_reserved_6: bits(field::RESERVED_6);
    /// Destination QP (24 bits).
    dest_qp, set_dest_qp: u24(field::DEST_QP);
    /// Acknowledge request.
    ack_req, set_ack_req: flag(field::ACK_REQ);
    /// The 7 reserved bits of byte 8.
    reserved_7, set_reserved_7: bits(field::RESERVED_7);
    /// Packet sequence number (24 bits).
    psn, set_psn: u24(field::PSN);
}

/// The BTH, owned. The pad count is not here: it follows from the payload
/// length and is written by [`PacketRepr`](super::packet::PacketRepr).
/// The reserved bits are carried so a parsed packet re-emits byte for byte;
/// senders leave them 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BthRepr {
    /// Opcode.
    pub opcode: Opcode,
    /// Solicited event.
    pub solicited: bool,
    /// MigReq.
    pub mig_req: bool,
    /// Partition key (rxe: 0xFFFF).
    pub pkey: u16,
    /// Forward ECN.
    pub fecn: bool,
    /// Backward ECN.
    pub becn: bool,
    /// Reserved bits 5..0 of byte 4.
    pub reserved_6: u8,
    /// Destination QP (24 bits).
    pub dest_qp: u32,
    /// AckReq.
    pub ack_req: bool,
    /// Reserved bits 6..0 of byte 8.
    pub reserved_7: u8,
    /// PSN (24 bits).
    pub psn: u32,
}

impl BthRepr {
    /// A BTH with the given opcode, destination QP and PSN, P_Key 0xFFFF
    /// (the default partition rxe insists on, Linux rxe_recv.c (P_Key check)) and all flags 0.
    pub const fn new(opcode: Opcode, dest_qp: u32, psn: u32) -> Self {
        BthRepr {
            opcode,
            solicited: false,
            mig_req: false,
            pkey: 0xFFFF,
            fecn: false,
            becn: false,
            reserved_6: 0,
            dest_qp,
            ack_req: false,
            reserved_7: 0,
            psn,
        }
    }

    /// Parse: `UnknownOpcode` outside the table, `BadVersion` if TVer != 0.
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Self> {
        p.check_len()?;
        let opcode = Opcode::from_u8(p.opcode())?;
        if p.transport_version() != TRANSPORT_VERSION {
            return Err(Error::BadVersion);
        }
        Ok(BthRepr {
            opcode,
            solicited: p.solicited(),
            mig_req: p.mig_req(),
            pkey: p.pkey(),
            fecn: p.fecn(),
            becn: p.becn(),
            reserved_6: p.reserved_6(),
            dest_qp: p.dest_qp(),
            ack_req: p.ack_req(),
            reserved_7: p.reserved_7(),
            psn: p.psn(),
        })
    }

    /// 12.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Write the header with the given pad count. Out-of-range fields
    /// (24-bit values above 2^24, reserved bits, pad > 3) are `Malformed`
    /// rather than silently truncated.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        p: &mut Packet<T>,
        pad_count: u8,
    ) -> Result<()> {
        if self.dest_qp > MAX_24
            || self.psn > MAX_24
            || self.reserved_6 > 0x3F
            || self.reserved_7 > 0x7F
            || pad_count > 3
        {
            return Err(Error::Malformed);
        }
        p.check_len().map_err(|_| Error::BufferTooSmall)?;
        p.set_opcode(self.opcode.to_u8());
        set_u8(p.buffer.as_mut(), field::FLAGS, 0);
        p.set_solicited(self.solicited);
        p.set_mig_req(self.mig_req);
        p.set_pad_count(pad_count);
        p.set_transport_version(TRANSPORT_VERSION);
        p.set_pkey(self.pkey);
        set_u8(p.buffer.as_mut(), field::FECN_BECN, 0);
        p.set_fecn(self.fecn);
        p.set_becn(self.becn);
        p.set_reserved_6(self.reserved_6);
        p.set_dest_qp(self.dest_qp);
        set_u8(p.buffer.as_mut(), field::ACKREQ, 0);
        p.set_ack_req(self.ack_req);
        p.set_reserved_7(self.reserved_7);
        p.set_psn(self.psn);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // BTH of the IBA Annex A17 (ICRC); Linux rxe_icrc.c worked example: ACK to QP 0x11, PSN 0xb55b8d.
    const ACK_BTH: [u8; 12] = [
        0x11, 0x00, 0xff, 0xff, 0x00, 0x00, 0x00, 0x11, 0x00, 0xb5, 0x5b, 0x8d,
    ];

    #[test]
    fn parses_worked_example() {
        let r = BthRepr::parse(&Packet::new_checked(&ACK_BTH[..]).unwrap()).unwrap();
        assert_eq!(r, BthRepr::new(Opcode::RcAcknowledge, 0x11, 0xb55b8d));
        let mut out = [0u8; 12];
        r.emit(&mut Packet::new_unchecked(&mut out[..]), 0).unwrap();
        assert_eq!(out, ACK_BTH);
    }

    #[test]
    fn every_bit_round_trips() {
        let r = BthRepr {
            opcode: Opcode::UdSendOnlyWithImmediate,
            solicited: true,
            mig_req: true,
            pkey: 0x8001,
            fecn: true,
            becn: false,
            reserved_6: 0x2A,
            dest_qp: 0xABCDEF,
            ack_req: true,
            reserved_7: 0x55,
            psn: 0x123456,
        };
        let mut out = [0u8; 12];
        r.emit(&mut Packet::new_unchecked(&mut out[..]), 2).unwrap();
        assert_eq!(
            out,
            [
                0x65, 0xE0, 0x80, 0x01, 0xAA, 0xAB, 0xCD, 0xEF, 0xD5, 0x12, 0x34, 0x56
            ]
        );
        let p = Packet::new_checked(&out[..]).unwrap();
        assert_eq!(p.pad_count(), 2);
        assert_eq!(BthRepr::parse(&p).unwrap(), r);
        let r2 = BthRepr {
            becn: true,
            fecn: false,
            solicited: false,
            mig_req: false,
            ..r
        };
        r2.emit(&mut Packet::new_unchecked(&mut out[..]), 1)
            .unwrap();
        assert_eq!(
            BthRepr::parse(&Packet::new_unchecked(&out[..])).unwrap(),
            r2
        );
        assert_eq!(out[1], 0x10);
    }

    #[test]
    fn rejects_bad_version_opcode_length_and_ranges() {
        let mut b = ACK_BTH;
        b[1] = 0x01;
        assert_eq!(
            BthRepr::parse(&Packet::new_unchecked(&b[..])),
            Err(Error::BadVersion)
        );
        let mut b = ACK_BTH;
        b[0] = 0x15;
        assert_eq!(
            BthRepr::parse(&Packet::new_unchecked(&b[..])),
            Err(Error::UnknownOpcode(0x15))
        );
        assert_eq!(
            BthRepr::parse(&Packet::new_unchecked(&ACK_BTH[..11])),
            Err(Error::Truncated)
        );
        let mut out = [0u8; 12];
        let big = BthRepr::new(Opcode::RcSendOnly, 0x0100_0000, 0);
        assert_eq!(
            big.emit(&mut Packet::new_unchecked(&mut out[..]), 0),
            Err(Error::Malformed)
        );
        let ok = BthRepr::new(Opcode::RcSendOnly, 1, 0);
        assert_eq!(
            ok.emit(&mut Packet::new_unchecked(&mut out[..]), 4),
            Err(Error::Malformed)
        );
        assert_eq!(
            ok.emit(&mut Packet::new_unchecked(&mut out[..11]), 0),
            Err(Error::BufferTooSmall)
        );
    }
}
