//! ACK Extended Transport Header, 4 bytes (IBA Vol 1 ch. 9 (extended transport headers); Linux rxe_hdr.h): syndrome + MSN,
//! in Acknowledge, ATOMIC Acknowledge and READ Response First/Last/Only.
//!
//! Every syndrome byte decodes (reserved ones to [`Syndrome::Reserved`] and
//! unknown NAK codes to [`NakCode::Reserved`]) because what to do with them
//! is the completer's decision (rxe treats an unknown NAK as a remote
//! operational error, IBA Vol 1 ch. 9 (extended transport headers); Linux rxe_hdr.h), not the codec's.

use super::bytes::{fields, fixed_view};
use super::{Error, Result};

mod field {
    pub const SYNDROME: usize = 0;
    pub const MSN: usize = 1;
}

/// Length of the AETH.
pub const HEADER_LEN: usize = 4;

/// The credit code meaning "no credit information": what rxe always sends
/// (the Linux rxe captures in crates/roce/tests/data, syndrome 0x1F).
pub const CREDITS_UNLIMITED: u8 = 0x1F;

/// NAK codes (syndrome 0b011xxxxx), IBA Vol 1 ch. 9 (extended transport headers); Linux rxe_hdr.h
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NakCode {
    /// 0: PSN sequence error; the AETH's packet carries the expected PSN.
    PsnSequenceError,
    /// 1: invalid request.
    InvalidRequest,
    /// 2: remote access error.
    RemoteAccessError,
    /// 3: remote operational error.
    RemoteOperationalError,
    /// 4: invalid RD request (IBA; rxe never sends it).
    InvalidRdRequest,
    /// 5-31: reserved by IBA; the value is kept.
    Reserved(u8),
}

impl NakCode {
    const fn from_bits(v: u8) -> NakCode {
        match v {
            0 => NakCode::PsnSequenceError,
            1 => NakCode::InvalidRequest,
            2 => NakCode::RemoteAccessError,
            3 => NakCode::RemoteOperationalError,
            4 => NakCode::InvalidRdRequest,
            other => NakCode::Reserved(other & 0x1F),
        }
    }

    const fn bits(self) -> u8 {
        match self {
            NakCode::PsnSequenceError => 0,
            NakCode::InvalidRequest => 1,
            NakCode::RemoteAccessError => 2,
            NakCode::RemoteOperationalError => 3,
            NakCode::InvalidRdRequest => 4,
            NakCode::Reserved(v) => v,
        }
    }
}

/// The AETH syndrome byte: top 3 bits the kind, low 5 its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Syndrome {
    /// 0b000: ACK with a 5-bit credit code ([`credits`] decodes it).
    Ack {
        /// Credit count code, 0-31 (31 = none / unlimited).
        credits: u8,
    },
    /// 0b001: receiver not ready; retry after the timer ([`rnr_timer_usecs`]).
    RnrNak {
        /// RNR timer code, 0-31.
        timer: u8,
    },
    /// 0b011: NAK.
    Nak(NakCode),
    /// 0b010 and 0b1xx: reserved by IBA; the whole byte is kept.
    Reserved(u8),
}

impl Syndrome {
    /// Decode a syndrome byte (total: every byte has a meaning here).
    pub const fn from_u8(v: u8) -> Syndrome {
        let low = v & 0x1F;
        match v >> 5 {
            0 => Syndrome::Ack { credits: low },
            1 => Syndrome::RnrNak { timer: low },
            3 => Syndrome::Nak(NakCode::from_bits(low)),
            _ => Syndrome::Reserved(v),
        }
    }

    /// Encode; `Malformed` if a 5-bit value is out of range or a
    /// `Reserved` byte is not actually reserved.
    pub const fn to_u8(self) -> Result<u8> {
        match self {
            Syndrome::Ack { credits } if credits <= 0x1F => Ok(credits),
            Syndrome::RnrNak { timer } if timer <= 0x1F => Ok(0x20 | timer),
            Syndrome::Nak(NakCode::Reserved(v)) if v < 5 || v > 0x1F => Err(Error::Malformed),
            Syndrome::Nak(code) => Ok(0x60 | code.bits()),
            Syndrome::Reserved(v) if matches!(v >> 5, 2 | 4..=7) => Ok(v),
            _ => Err(Error::Malformed),
        }
    }

    /// True for an ACK (positive acknowledgement).
    pub const fn is_ack(self) -> bool {
        matches!(self, Syndrome::Ack { .. })
    }
}

/// Credits a 5-bit ACK credit code grants (IBA AETH credit encoding):
/// 0, 1, 2, 3, 4, 6, 8, 12, ... doubling every two codes up to 32768 for
/// code 30; code 31 means "no credit information" and yields `None`, as
/// does anything above 31.
pub const fn credits(code: u8) -> Option<u32> {
    match code {
        0..=4 => Some(code as u32),
        5..=30 => {
            // Code 5 + 2k is 6·2^k, code 6 + 2k is 8·2^k.
            let k = (code - 5) / 2;
            let base = if (code - 5).is_multiple_of(2) { 6 } else { 8 };
            Some(base << k)
        }
        _ => None,
    }
}

/// Microseconds a 5-bit RNR NAK timer code asks the requester to wait
/// (IBA RNR timer table, IBA Vol 1 ch. 9 (requester retry); Linux rxe_comp.c); `None` above 31. rxe's own table
/// has a typo for code 25 (61410); the IBA value 61440 is used here.
pub fn rnr_timer_usecs(code: u8) -> Option<u32> {
    const TABLE: [u32; 32] = [
        655_360, 10, 20, 30, 40, 60, 80, 120, 160, 240, 320, 480, 640, 960, 1_280, 1_920, 2_560,
        3_840, 5_120, 7_680, 10_240, 15_360, 20_480, 30_720, 40_960, 61_440, 81_920, 122_880,
        163_840, 245_760, 327_680, 491_520,
    ];
    TABLE.get(usize::from(code)).copied()
}

fixed_view!(Packet, HEADER_LEN, "A read/write view of an AETH.");

fields! { Packet;
    /// Raw syndrome byte.
    syndrome, set_syndrome: u8(field::SYNDROME);
    /// Message sequence number (24 bits).
    msn, set_msn: u24(field::MSN);
}

/// The AETH, owned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AethRepr {
    /// ACK, RNR NAK or NAK.
    pub syndrome: Syndrome,
    /// Message sequence number (24 bits).
    pub msn: u32,
}

impl AethRepr {
    /// Read an AETH.
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Self> {
        p.check_len()?;
        Ok(AethRepr {
            syndrome: Syndrome::from_u8(p.syndrome()),
            msn: p.msn(),
        })
    }
    /// 4.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }
    /// Write an AETH; out-of-range values are `Malformed`.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Packet<T>) -> Result<()> {
        let s = self.syndrome.to_u8()?;
        if self.msn > super::bth::MAX_24 {
            return Err(Error::Malformed);
        }
        p.check_len().map_err(|_| Error::BufferTooSmall)?;
        p.set_syndrome(s);
        p.set_msn(self.msn);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_syndrome_byte_round_trips() {
        for v in 0..=255u8 {
            assert_eq!(Syndrome::from_u8(v).to_u8(), Ok(v), "{v:#04x}");
        }
    }

    #[test]
    fn named_syndromes() {
        assert_eq!(Syndrome::from_u8(0x1F), Syndrome::Ack { credits: 31 });
        assert_eq!(Syndrome::from_u8(0x20), Syndrome::RnrNak { timer: 0 });
        assert_eq!(Syndrome::from_u8(0x3F), Syndrome::RnrNak { timer: 31 });
        assert_eq!(
            Syndrome::from_u8(0x60),
            Syndrome::Nak(NakCode::PsnSequenceError)
        );
        assert_eq!(
            Syndrome::from_u8(0x61),
            Syndrome::Nak(NakCode::InvalidRequest)
        );
        assert_eq!(
            Syndrome::from_u8(0x62),
            Syndrome::Nak(NakCode::RemoteAccessError)
        );
        assert_eq!(
            Syndrome::from_u8(0x63),
            Syndrome::Nak(NakCode::RemoteOperationalError)
        );
        assert_eq!(
            Syndrome::from_u8(0x64),
            Syndrome::Nak(NakCode::InvalidRdRequest)
        );
        assert_eq!(Syndrome::from_u8(0x65), Syndrome::Nak(NakCode::Reserved(5)));
        assert_eq!(Syndrome::from_u8(0x40), Syndrome::Reserved(0x40));
        assert_eq!(Syndrome::from_u8(0x80), Syndrome::Reserved(0x80));
        assert!(Syndrome::from_u8(0x00).is_ack());
        assert!(!Syndrome::from_u8(0x20).is_ack());
    }

    #[test]
    fn out_of_range_syndromes_do_not_encode() {
        assert_eq!(Syndrome::Ack { credits: 32 }.to_u8(), Err(Error::Malformed));
        assert_eq!(
            Syndrome::RnrNak { timer: 32 }.to_u8(),
            Err(Error::Malformed)
        );
        assert_eq!(
            Syndrome::Nak(NakCode::Reserved(2)).to_u8(),
            Err(Error::Malformed)
        );
        assert_eq!(
            Syndrome::Nak(NakCode::Reserved(32)).to_u8(),
            Err(Error::Malformed)
        );
        assert_eq!(Syndrome::Reserved(0x61).to_u8(), Err(Error::Malformed));
        assert_eq!(Syndrome::Reserved(0x1F).to_u8(), Err(Error::Malformed));
    }

    #[test]
    fn rnr_timer_table_matches_roce_md_3_6() {
        // (code, milliseconds x 100) straight from the IBA Vol 1 and Linux rxe table.
        let ms100: [(u8, u32); 32] = [
            (0, 65536),
            (1, 1),
            (2, 2),
            (3, 3),
            (4, 4),
            (5, 6),
            (6, 8),
            (7, 12),
            (8, 16),
            (9, 24),
            (10, 32),
            (11, 48),
            (12, 64),
            (13, 96),
            (14, 128),
            (15, 192),
            (16, 256),
            (17, 384),
            (18, 512),
            (19, 768),
            (20, 1024),
            (21, 1536),
            (22, 2048),
            (23, 3072),
            (24, 4096),
            (25, 6144),
            (26, 8192),
            (27, 12288),
            (28, 16384),
            (29, 24576),
            (30, 32768),
            (31, 49152),
        ];
        for (code, m) in ms100 {
            assert_eq!(rnr_timer_usecs(code), Some(m * 10), "code {code}");
        }
        assert_eq!(rnr_timer_usecs(32), None);
        assert_eq!(rnr_timer_usecs(255), None);
    }

    #[test]
    fn credit_table() {
        let expect = [
            0, 1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024,
            1536, 2048, 3072, 4096, 6144, 8192, 12288, 16384, 24576, 32768,
        ];
        for (code, n) in expect.iter().enumerate() {
            assert_eq!(credits(code as u8), Some(*n), "code {code}");
        }
        assert_eq!(credits(CREDITS_UNLIMITED), None);
        assert_eq!(credits(200), None);
    }

    #[test]
    fn round_trip_and_layout() {
        let r = AethRepr {
            syndrome: Syndrome::RnrNak { timer: 14 },
            msn: 0x00AB_CDEF,
        };
        let mut b = [0u8; 4];
        r.emit(&mut Packet::new_unchecked(&mut b[..])).unwrap();
        assert_eq!(b, [0x2E, 0xAB, 0xCD, 0xEF]);
        assert_eq!(
            AethRepr::parse(&Packet::new_checked(&b[..]).unwrap()).unwrap(),
            r
        );
        assert_eq!(Packet::new_checked(&b[..3]).unwrap_err(), Error::Truncated);
        let big = AethRepr {
            msn: 0x0100_0000,
            ..r
        };
        assert_eq!(
            big.emit(&mut Packet::new_unchecked(&mut b[..])),
            Err(Error::Malformed)
        );
        assert_eq!(
            r.emit(&mut Packet::new_unchecked(&mut b[..3])),
            Err(Error::BufferTooSmall)
        );
    }
}
