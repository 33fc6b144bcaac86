//! Atomic Extended Transport Header, 28 bytes (IBA Vol 1 ch. 9 (extended transport headers); Linux rxe_hdr.h): in Compare &
//! Swap and Fetch & Add requests.

use super::bytes::{fields, fixed_view};
use super::{Error, Result};

mod field {
    pub const VA: usize = 0;
    pub const RKEY: usize = 8;
    pub const SWAP_ADD: usize = 12;
    pub const COMPARE: usize = 20;
}

/// Length of the AtomicETH.
pub const HEADER_LEN: usize = 28;

fixed_view!(Packet, HEADER_LEN, "A read/write view of an AtomicETH.");

fields! { Packet;
    /// Remote virtual address (8-byte aligned target).
    virtual_addr, set_virtual_addr: u64(field::VA);
    /// Remote key.
    rkey, set_rkey: u32(field::RKEY);
    /// Swap value (Compare & Swap) or addend (Fetch & Add).
    swap_add, set_swap_add: u64(field::SWAP_ADD);
    /// Compare value (Compare & Swap only).
    compare, set_compare: u64(field::COMPARE);
}

/// The AtomicETH, owned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AtomicEthRepr {
    /// Remote virtual address.
    pub virtual_addr: u64,
    /// Remote key.
    pub rkey: u32,
    /// Swap value or addend.
    pub swap_add: u64,
    /// Compare value (0 for Fetch & Add).
    pub compare: u64,
}

impl AtomicEthRepr {
    /// Read an AtomicETH.
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Self> {
        p.check_len()?;
        Ok(AtomicEthRepr {
            virtual_addr: p.virtual_addr(),
            rkey: p.rkey(),
            swap_add: p.swap_add(),
            compare: p.compare(),
        })
    }
    /// 28.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }
    /// Write an AtomicETH.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Packet<T>) -> Result<()> {
        p.check_len().map_err(|_| Error::BufferTooSmall)?;
        p.set_virtual_addr(self.virtual_addr);
        p.set_rkey(self.rkey);
        p.set_swap_add(self.swap_add);
        p.set_compare(self.compare);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_layout() {
        let r = AtomicEthRepr {
            virtual_addr: 0x1111_2222_3333_4444,
            rkey: 0x5555_6666,
            swap_add: 0x7777_8888_9999_AAAA,
            compare: 0xBBBB_CCCC_DDDD_EEEE,
        };
        let mut b = [0u8; 28];
        r.emit(&mut Packet::new_unchecked(&mut b[..])).unwrap();
        assert_eq!(&b[8..12], &[0x55, 0x55, 0x66, 0x66]);
        assert_eq!(&b[12..14], &[0x77, 0x77]);
        assert_eq!(&b[26..], &[0xEE, 0xEE]);
        assert_eq!(
            AtomicEthRepr::parse(&Packet::new_checked(&b[..]).unwrap()).unwrap(),
            r
        );
        assert_eq!(Packet::new_checked(&b[..27]).unwrap_err(), Error::Truncated);
        assert_eq!(
            r.emit(&mut Packet::new_unchecked(&mut b[..27])),
            Err(Error::BufferTooSmall)
        );
    }
}
