//! Atomic Acknowledge Extended Transport Header, 8 bytes (IBA Vol 1 ch. 9 (extended transport headers); Linux rxe_hdr.h):
//! the value the target held before the atomic, after the AETH of an
//! ATOMIC Acknowledge.

use super::bytes::{fields, fixed_view};
use super::{Error, Result};

/// Length of the AtomicAckETH.
pub const HEADER_LEN: usize = 8;

fixed_view!(Packet, HEADER_LEN, "A read/write view of an AtomicAckETH.");

fields! { Packet;
    /// The original remote value.
    orig_value, set_orig_value: u64(0);
}

/// The AtomicAckETH, owned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AtomicAckEthRepr {
    /// The original remote value.
    pub orig_value: u64,
}

impl AtomicAckEthRepr {
    /// Read an AtomicAckETH.
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Self> {
        p.check_len()?;
        Ok(AtomicAckEthRepr {
            orig_value: p.orig_value(),
        })
    }
    /// 8.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }
    /// Write an AtomicAckETH.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Packet<T>) -> Result<()> {
        p.check_len().map_err(|_| Error::BufferTooSmall)?;
        p.set_orig_value(self.orig_value);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_layout() {
        let r = AtomicAckEthRepr {
            orig_value: 0x0102_0304_0506_0708,
        };
        let mut b = [0u8; 8];
        r.emit(&mut Packet::new_unchecked(&mut b[..])).unwrap();
        assert_eq!(b, [1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(
            AtomicAckEthRepr::parse(&Packet::new_checked(&b[..]).unwrap()).unwrap(),
            r
        );
        assert_eq!(Packet::new_checked(&b[..7]).unwrap_err(), Error::Truncated);
        assert_eq!(
            r.emit(&mut Packet::new_unchecked(&mut b[..7])),
            Err(Error::BufferTooSmall)
        );
    }
}
