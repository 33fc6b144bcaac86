//! Immediate Data header, 4 bytes (IBA Vol 1 ch. 9 (extended transport headers); Linux rxe_hdr.h): opaque 32 bits carried to
//! the receiver's completion by SEND/WRITE ... with Immediate.

use super::bytes::{fields, fixed_view};
use super::{Error, Result};

/// Length of the ImmDt header.
pub const HEADER_LEN: usize = 4;

fixed_view!(Packet, HEADER_LEN, "A read/write view of an ImmDt header.");

fields! { Packet;
    /// The immediate data, read big-endian.
    imm_data, set_imm_data: u32(0);
}

/// The ImmDt header, owned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ImmDtRepr {
    /// Immediate data; the wire bytes are its big-endian encoding.
    pub imm_data: u32,
}

impl ImmDtRepr {
    /// Read an ImmDt header.
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Self> {
        p.check_len()?;
        Ok(ImmDtRepr {
            imm_data: p.imm_data(),
        })
    }
    /// 4.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }
    /// Write an ImmDt header.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Packet<T>) -> Result<()> {
        p.check_len().map_err(|_| Error::BufferTooSmall)?;
        p.set_imm_data(self.imm_data);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_layout() {
        let r = ImmDtRepr {
            imm_data: 0xDEAD_BEEF,
        };
        let mut b = [0u8; 4];
        r.emit(&mut Packet::new_unchecked(&mut b[..])).unwrap();
        assert_eq!(b, [0xDE, 0xAD, 0xBE, 0xEF]);
        assert_eq!(
            ImmDtRepr::parse(&Packet::new_checked(&b[..]).unwrap()).unwrap(),
            r
        );
        assert_eq!(Packet::new_checked(&b[..3]).unwrap_err(), Error::Truncated);
        assert_eq!(
            r.emit(&mut Packet::new_unchecked(&mut b[..3])),
            Err(Error::BufferTooSmall)
        );
    }
}
