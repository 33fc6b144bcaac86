//! Ethernet II header (14 bytes, no VLAN tag): the outer layer of a RoCEv2
//! frame (IBA Annex A17 (RoCEv2 encapsulation); Linux rxe_net.c).
//!
//! The four outer layers (Ethernet, IPv4, IPv6, UDP) are small hand-written
//! views rather than a dependency. Evaluated (both would build `no_std`):
//! * smoltcp (`wire` only): its `Ipv4Repr`/`Ipv6Repr` drop fields a byte-exact
//!   re-emit needs (IPv4 Identification, DF, DSCP/ECN; IPv6 traffic class and
//!   flow label), which matters because the ICRC covers the Identification;
//!   and it pulls in bitflags, byteorder, cfg-if, heapless and managed for
//!   four fixed layouts.
//! * etherparse 0.21 (`default-features = false`): meets the kernel
//!   constraints (`no_std`, no alloc, only `arrayvec`) and keeps every field,
//!   but brings ~440 `unsafe` sites (these codecs have none) and a 0.x API
//!   that breaks on most releases, for what is here 14 + 20/40 + 8 bytes of
//!   fixed layout. It offers read-only slices and owned structs with
//!   `to_bytes`, no mutable in-place view, and the ICRC needs the raw header
//!   bytes anyway.
//!
//! Hand-written views keep the crate free of `unsafe`, use the one
//! [`Error`] type and follow the same smoltcp shape as the transport
//! headers.

use super::bytes::{fields, fixed_view};
use super::{Error, Result};

/// Ethertype of IPv4.
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// Ethertype of IPv6.
pub const ETHERTYPE_IPV6: u16 = 0x86DD;

mod field {
    pub const DST: usize = 0;
    pub const SRC: usize = 6;
    pub const ETHERTYPE: usize = 12;
    pub const PAYLOAD: usize = 14;
}

/// Length of the Ethernet II header.
pub const HEADER_LEN: usize = field::PAYLOAD;

fixed_view!(
    Frame,
    HEADER_LEN,
    "A read/write view of an Ethernet II frame."
);

fields! { Frame;
    /// Destination MAC address.
    dst_addr, set_dst_addr: [u8; 6](field::DST);
    /// Source MAC address.
    src_addr, set_src_addr: [u8; 6](field::SRC);
    /// Ethertype.
    ethertype, set_ethertype: u16(field::ETHERTYPE);
}

impl<T: AsRef<[u8]>> Frame<T> {
    /// Everything after the header (including any Ethernet padding).
    pub fn payload(&self) -> &[u8] {
        self.buffer
            .as_ref()
            .get(field::PAYLOAD..)
            .unwrap_or_default()
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Frame<T> {
    /// Mutable access to everything after the header.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        self.buffer
            .as_mut()
            .get_mut(field::PAYLOAD..)
            .unwrap_or_default()
    }
}

/// The Ethernet II header, owned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EthernetRepr {
    /// Destination MAC address.
    pub dst_addr: [u8; 6],
    /// Source MAC address.
    pub src_addr: [u8; 6],
    /// Ethertype (0x0800 IPv4, 0x86DD IPv6 for RoCEv2).
    pub ethertype: u16,
}

impl EthernetRepr {
    /// Read the header of a checked frame.
    pub fn parse<T: AsRef<[u8]>>(frame: &Frame<T>) -> Result<Self> {
        frame.check_len()?;
        Ok(EthernetRepr {
            dst_addr: frame.dst_addr(),
            src_addr: frame.src_addr(),
            ethertype: frame.ethertype(),
        })
    }

    /// Bytes the header occupies.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Write the header.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, frame: &mut Frame<T>) -> Result<()> {
        frame.check_len().map_err(|_| Error::BufferTooSmall)?;
        frame.set_dst_addr(self.dst_addr);
        frame.set_src_addr(self.src_addr);
        frame.set_ethertype(self.ethertype);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let r = EthernetRepr {
            dst_addr: [0x52, 0x54, 0, 0, 0, 2],
            src_addr: [0x52, 0x54, 0, 0, 0, 3],
            ethertype: ETHERTYPE_IPV4,
        };
        let mut buf = [0u8; 16];
        r.emit(&mut Frame::new_unchecked(&mut buf[..])).unwrap();
        assert_eq!(&buf[12..14], &[0x08, 0x00]);
        let f = Frame::new_checked(&buf[..]).unwrap();
        assert_eq!(EthernetRepr::parse(&f).unwrap(), r);
        assert_eq!(f.payload().len(), 2);
    }

    #[test]
    fn short_is_truncated() {
        assert_eq!(
            Frame::new_checked(&[0u8; 13][..]).unwrap_err(),
            Error::Truncated
        );
        let mut small = [0u8; 13];
        let r = EthernetRepr {
            dst_addr: [0; 6],
            src_addr: [0; 6],
            ethertype: 0,
        };
        assert_eq!(
            r.emit(&mut Frame::new_unchecked(&mut small[..])),
            Err(Error::BufferTooSmall)
        );
    }
}
