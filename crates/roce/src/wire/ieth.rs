//! Invalidate Extended Transport Header, 4 bytes (IBA Vol 1 ch. 9 (extended transport headers); Linux rxe_hdr.h): the R_Key
//! a SEND with Invalidate asks the responder to invalidate.

use super::bytes::{fields, fixed_view};
use super::{Error, Result};

/// Length of the IETH.
pub const HEADER_LEN: usize = 4;

fixed_view!(Packet, HEADER_LEN, "A read/write view of an IETH.");

fields! { Packet;
    /// R_Key to invalidate.
    rkey, set_rkey: u32(0);
}

/// The IETH, owned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IethRepr {
    /// R_Key to invalidate.
    pub rkey: u32,
}

impl IethRepr {
    /// Read an IETH.
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Self> {
        p.check_len()?;
        Ok(IethRepr { rkey: p.rkey() })
    }
    /// 4.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }
    /// Write an IETH.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Packet<T>) -> Result<()> {
        p.check_len().map_err(|_| Error::BufferTooSmall)?;
        p.set_rkey(self.rkey);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_layout() {
        let r = IethRepr { rkey: 0x0012_3456 };
        let mut b = [0u8; 4];
        r.emit(&mut Packet::new_unchecked(&mut b[..])).unwrap();
        assert_eq!(b, [0x00, 0x12, 0x34, 0x56]);
        assert_eq!(
            IethRepr::parse(&Packet::new_checked(&b[..]).unwrap()).unwrap(),
            r
        );
        assert_eq!(Packet::new_checked(&b[..3]).unwrap_err(), Error::Truncated);
        assert_eq!(
            r.emit(&mut Packet::new_unchecked(&mut b[..3])),
            Err(Error::BufferTooSmall)
        );
    }
}
