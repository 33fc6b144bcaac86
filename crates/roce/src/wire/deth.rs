//! Datagram Extended Transport Header, 8 bytes (IBA Vol 1 ch. 9 (extended transport headers); Linux rxe_hdr.h): Q_Key and
//! source QP of a UD packet (every QP1 MAD carries one, the Linux rxe captures in crates/roce/tests/data).

use super::bytes::{fields, fixed_view};
use super::{Error, Result};

mod field {
    pub const QKEY: usize = 0;
    pub const RESERVED: usize = 4;
    pub const SRC_QP: usize = 5;
}

/// Length of the DETH.
pub const HEADER_LEN: usize = 8;

/// The well-known Q_Key of the GSI (QP1), the Linux rxe captures in crates/roce/tests/data / Linux rxe_recv.c (P_Key check).
pub const GSI_QKEY: u32 = 0x8001_0000;

fixed_view!(Packet, HEADER_LEN, "A read/write view of a DETH.");

fields! { Packet;
    /// Queue key.
    qkey, set_qkey: u32(field::QKEY);
    /// The reserved byte.
    reserved, set_reserved: u8(field::RESERVED);
    /// Source QP (24 bits).
    src_qp, set_src_qp: u24(field::SRC_QP);
}

/// The DETH, owned. The reserved byte is carried so a parsed packet
/// re-emits byte for byte; senders leave it 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DethRepr {
    /// Queue key.
    pub qkey: u32,
    /// Reserved byte.
    pub reserved: u8,
    /// Source QP (24 bits).
    pub src_qp: u32,
}

impl DethRepr {
    /// Read a DETH.
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Self> {
        p.check_len()?;
        Ok(DethRepr {
            qkey: p.qkey(),
            reserved: p.reserved(),
            src_qp: p.src_qp(),
        })
    }
    /// 8.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }
    /// Write a DETH; a source QP above 24 bits is `Malformed`.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Packet<T>) -> Result<()> {
        if self.src_qp > super::bth::MAX_24 {
            return Err(Error::Malformed);
        }
        p.check_len().map_err(|_| Error::BufferTooSmall)?;
        p.set_qkey(self.qkey);
        p.set_reserved(self.reserved);
        p.set_src_qp(self.src_qp);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gsi_deth_layout_and_round_trip() {
        // DETH of every captured CM MAD: Q_Key 0x80010000, SrcQP 1 (the Linux rxe captures in crates/roce/tests/data).
        let wire = [0x80, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01];
        let r = DethRepr::parse(&Packet::new_checked(&wire[..]).unwrap()).unwrap();
        assert_eq!(
            r,
            DethRepr {
                qkey: GSI_QKEY,
                reserved: 0,
                src_qp: 1
            }
        );
        let mut b = [0xFFu8; 8];
        r.emit(&mut Packet::new_unchecked(&mut b[..])).unwrap();
        assert_eq!(b, wire);
        let odd = DethRepr {
            qkey: 1,
            reserved: 0x5A,
            src_qp: 0xFEDCBA,
        };
        odd.emit(&mut Packet::new_unchecked(&mut b[..])).unwrap();
        assert_eq!(
            DethRepr::parse(&Packet::new_unchecked(&b[..])).unwrap(),
            odd
        );
    }

    #[test]
    fn errors() {
        let mut b = [0u8; 8];
        assert_eq!(Packet::new_checked(&b[..7]).unwrap_err(), Error::Truncated);
        let big = DethRepr {
            qkey: 0,
            reserved: 0,
            src_qp: 0x0100_0000,
        };
        assert_eq!(
            big.emit(&mut Packet::new_unchecked(&mut b[..])),
            Err(Error::Malformed)
        );
        let ok = DethRepr { src_qp: 1, ..big };
        assert_eq!(
            ok.emit(&mut Packet::new_unchecked(&mut b[..7])),
            Err(Error::BufferTooSmall)
        );
    }
}
