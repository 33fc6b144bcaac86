//! RDMA Extended Transport Header, 16 bytes (roce.md §1.3): in RDMA WRITE
//! First/Only and RDMA READ Request.

use super::bytes::{fixed_view, put_u32, put_u64, u32_at, u64_at};
use super::{Error, Result};

mod field {
    pub const VA: usize = 0;
    pub const RKEY: usize = 8;
    pub const DMA_LEN: usize = 12;
}

/// Length of the RETH.
pub const HEADER_LEN: usize = 16;

fixed_view!(HEADER_LEN, "A read/write view of a RETH.");

impl<T: AsRef<[u8]>> Packet<T> {
    /// Remote virtual address.
    pub fn virtual_addr(&self) -> u64 {
        u64_at(self.buffer.as_ref(), field::VA)
    }
    /// Remote key.
    pub fn rkey(&self) -> u32 {
        u32_at(self.buffer.as_ref(), field::RKEY)
    }
    /// Length of the whole transfer (not of this packet).
    pub fn dma_len(&self) -> u32 {
        u32_at(self.buffer.as_ref(), field::DMA_LEN)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Set the remote virtual address.
    pub fn set_virtual_addr(&mut self, v: u64) {
        put_u64(self.buffer.as_mut(), field::VA, v);
    }
    /// Set the remote key.
    pub fn set_rkey(&mut self, v: u32) {
        put_u32(self.buffer.as_mut(), field::RKEY, v);
    }
    /// Set the DMA length.
    pub fn set_dma_len(&mut self, v: u32) {
        put_u32(self.buffer.as_mut(), field::DMA_LEN, v);
    }
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
