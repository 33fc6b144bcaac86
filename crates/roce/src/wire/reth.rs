//! RDMA Extended Transport Header, 16 bytes (IBA Vol 1 ch. 9 (extended transport headers); Linux rxe_hdr.h): in RDMA WRITE
//! First/Only and RDMA READ Request.

use super::bytes::{fields, fixed_view};
use super::{Error, Result};

mod field {
    pub const VA: usize = 0;
    pub const RKEY: usize = 8;
    pub const DMA_LEN: usize = 12;
}

/// Length of the RETH.
pub const HEADER_LEN: usize = 16;

fixed_view!(Packet, HEADER_LEN, "A read/write view of a RETH.");

fields! { Packet;
    /// Remote virtual address.
    virtual_addr, set_virtual_addr: u64(field::VA);
    /// Remote key.
    rkey, set_rkey: u32(field::RKEY);
    /// Length of the whole transfer (not of this packet).
    dma_len, set_dma_len: u32(field::DMA_LEN);
}

/// The RETH, owned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RethRepr {
    /// Remote virtual address.
    pub virtual_addr: u64,
    /// Remote key.
    pub rkey: u32,
    /// Length of the whole message.
    pub dma_len: u32,
}

impl RethRepr {
    /// Read a RETH.
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Self> {
        p.check_len()?;
        Ok(RethRepr {
            virtual_addr: p.virtual_addr(),
            rkey: p.rkey(),
            dma_len: p.dma_len(),
        })
    }
    /// 16.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }
    /// Write a RETH.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Packet<T>) -> Result<()> {
        p.check_len().map_err(|_| Error::BufferTooSmall)?;
        p.set_virtual_addr(self.virtual_addr);
        p.set_rkey(self.rkey);
        p.set_dma_len(self.dma_len);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_layout() {
        let r = RethRepr {
            virtual_addr: 0x0102_0304_0506_0708,
            rkey: 0x0A0B_0C0D,
            dma_len: 5000,
        };
        let mut b = [0u8; 16];
        r.emit(&mut Packet::new_unchecked(&mut b[..])).unwrap();
        assert_eq!(
            b,
            [1, 2, 3, 4, 5, 6, 7, 8, 0xA, 0xB, 0xC, 0xD, 0, 0, 0x13, 0x88]
        );
        assert_eq!(
            RethRepr::parse(&Packet::new_checked(&b[..]).unwrap()).unwrap(),
            r
        );
        assert_eq!(Packet::new_checked(&b[..15]).unwrap_err(), Error::Truncated);
        assert_eq!(
            r.emit(&mut Packet::new_unchecked(&mut b[..15])),
            Err(Error::BufferTooSmall)
        );
    }
}
