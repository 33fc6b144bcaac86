//! Base Transport Header, 12 bytes (roce.md §1.2).

use super::bytes::{put_bits, put_u8, put_u16, put_u24, u8_at, u16_at, u24_at};
use super::opcode::Opcode;
use super::{Error, Result};

mod field {
    pub const OPCODE: usize = 0;
    /// SE (bit 7), M (bit 6), PadCnt (bits 5..4), TVer (bits 3..0).
    pub const FLAGS: usize = 1;
    pub const PKEY: usize = 2;
    /// FECN (bit 7), BECN (bit 6), 6 reserved bits: the byte the ICRC masks.
    pub const FECN_BECN: usize = 4;
    pub const DEST_QP: usize = 5;
    /// AckReq (bit 7), 7 reserved bits.
    pub const ACKREQ: usize = 8;
    pub const PSN: usize = 9;
}

/// Length of the BTH.
pub const HEADER_LEN: usize = 12;

/// Offset of the BTH byte the ICRC replaces with 0xFF (roce.md §2: FECN,
/// BECN and the 6 reserved bits, "resv8a").
pub const ICRC_MASKED: usize = field::FECN_BECN;

/// The one transport header version (rxe drops anything else, roce.md §1.2).
pub const TRANSPORT_VERSION: u8 = 0;

/// Largest 24-bit value (QPNs, PSNs).
pub const MAX_24: u32 = 0x00FF_FFFF;

/// A read/write view of a BTH.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wrap without checking; accessors on a short buffer read zero.
    pub const fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// Wrap and check the buffer holds 12 bytes.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// `Err(Truncated)` if the header does not fit.
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Give back the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn b(&self, off: usize) -> u8 {
        u8_at(self.buffer.as_ref(), off)
    }

    /// Raw opcode byte.
    pub fn opcode(&self) -> u8 {
        self.b(field::OPCODE)
    }

    /// Solicited event.
    pub fn solicited(&self) -> bool {
        self.b(field::FLAGS) & 0x80 != 0
    }

    /// MigReq (rxe sends 0, ConnectX 1; receivers ignore it, roce.md §7.13).
    pub fn mig_req(&self) -> bool {
        self.b(field::FLAGS) & 0x40 != 0
    }

    /// Pad count (0-3).
    pub fn pad_count(&self) -> u8 {
        (self.b(field::FLAGS) >> 4) & 0x3
    }

    /// Transport header version.
    pub fn transport_version(&self) -> u8 {
        self.b(field::FLAGS) & 0x0F
    }

    /// Partition key.
    pub fn pkey(&self) -> u16 {
        u16_at(self.buffer.as_ref(), field::PKEY)
    }

    /// Forward ECN.
    pub fn fecn(&self) -> bool {
        self.b(field::FECN_BECN) & 0x80 != 0
    }

    /// Backward ECN.
    pub fn becn(&self) -> bool {
        self.b(field::FECN_BECN) & 0x40 != 0
    }

    /// The 6 reserved bits of byte 4.
    pub fn reserved_6(&self) -> u8 {
        self.b(field::FECN_BECN) & 0x3F
    }

    /// Destination QP (24 bits).
    pub fn dest_qp(&self) -> u32 {
        u24_at(self.buffer.as_ref(), field::DEST_QP)
    }

    /// Acknowledge request.
    pub fn ack_req(&self) -> bool {
        self.b(field::ACKREQ) & 0x80 != 0
    }

    /// The 7 reserved bits of byte 8.
    pub fn reserved_7(&self) -> u8 {
        self.b(field::ACKREQ) & 0x7F
    }

    /// Packet sequence number (24 bits).
    pub fn psn(&self) -> u32 {
        u24_at(self.buffer.as_ref(), field::PSN)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    fn buf(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }

    /// Set the opcode byte.
    pub fn set_opcode(&mut self, v: u8) {
        put_u8(self.buf(), field::OPCODE, v);
    }

    /// Set SE.
    pub fn set_solicited(&mut self, v: bool) {
        put_bits(self.buf(), field::FLAGS, 0x80, 7, u8::from(v));
    }

    /// Set MigReq.
    pub fn set_mig_req(&mut self, v: bool) {
        put_bits(self.buf(), field::FLAGS, 0x40, 6, u8::from(v));
    }

    /// Set the pad count (low 2 bits used).
    pub fn set_pad_count(&mut self, v: u8) {
        put_bits(self.buf(), field::FLAGS, 0x30, 4, v);
    }

    /// Set the transport version (low 4 bits used).
    pub fn set_transport_version(&mut self, v: u8) {
        put_bits(self.buf(), field::FLAGS, 0x0F, 0, v);
    }

    /// Set the partition key.
    pub fn set_pkey(&mut self, v: u16) {
        put_u16(self.buf(), field::PKEY, v);
    }

    /// Set FECN.
    pub fn set_fecn(&mut self, v: bool) {
        put_bits(self.buf(), field::FECN_BECN, 0x80, 7, u8::from(v));
    }

    /// Set BECN.
    pub fn set_becn(&mut self, v: bool) {
        put_bits(self.buf(), field::FECN_BECN, 0x40, 6, u8::from(v));
    }

    /// Set the 6 reserved bits of byte 4.
    pub fn set_reserved_6(&mut self, v: u8) {
        put_bits(self.buf(), field::FECN_BECN, 0x3F, 0, v);
    }

    /// Set the destination QP (low 24 bits used).
    pub fn set_dest_qp(&mut self, v: u32) {
        put_u24(self.buf(), field::DEST_QP, v);
    }

    /// Set AckReq.
    pub fn set_ack_req(&mut self, v: bool) {
        put_bits(self.buf(), field::ACKREQ, 0x80, 7, u8::from(v));
    }

    /// Set the 7 reserved bits of byte 8.
    pub fn set_reserved_7(&mut self, v: u8) {
        put_bits(self.buf(), field::ACKREQ, 0x7F, 0, v);
    }

    /// Set the PSN (low 24 bits used).
    pub fn set_psn(&mut self, v: u32) {
        put_u24(self.buf(), field::PSN, v);
    }
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
    /// (the default partition rxe insists on, roce.md §7.2) and all flags 0.
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
        put_u8(p.buf(), field::FLAGS, 0);
        p.set_solicited(self.solicited);
        p.set_mig_req(self.mig_req);
        p.set_pad_count(pad_count);
        p.set_transport_version(TRANSPORT_VERSION);
        p.set_pkey(self.pkey);
        put_u8(p.buf(), field::FECN_BECN, 0);
        p.set_fecn(self.fecn);
        p.set_becn(self.becn);
        p.set_reserved_6(self.reserved_6);
        p.set_dest_qp(self.dest_qp);
        put_u8(p.buf(), field::ACKREQ, 0);
        p.set_ack_req(self.ack_req);
        p.set_reserved_7(self.reserved_7);
        p.set_psn(self.psn);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // BTH of the roce.md §2 worked example: ACK to QP 0x11, PSN 0xb55b8d.
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
