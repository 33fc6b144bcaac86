//! IPv6 header as RoCEv2 uses it (IBA Annex A17 (RoCEv2 encapsulation); Linux rxe_net.c): 40 bytes, UDP directly as
//! the next header (no extension headers). Hand-written rather than a
//! dependency: see the note in `ethernet.rs`.

use super::bytes::{fields, set_u32, u8_at, u32_at, view};
use super::{Error, Result};

mod field {
    pub const VER_TC_FL: usize = 0;
    pub const PAYLOAD_LEN: usize = 4;
    pub const NEXT_HEADER: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC: usize = 8;
    pub const DST: usize = 24;
}

/// Length of the fixed IPv6 header.
pub const HEADER_LEN: usize = 40;

/// Byte offsets of the fields the ICRC masks (IBA Annex A17 (ICRC); Linux rxe_icrc.c): traffic class
/// and flow label (bytes 1-3 whole; byte 0 only its low nibble, see
/// [`ICRC_BYTE0_MASK`]) and the hop limit.
pub const ICRC_MASKED: [usize; 4] = [1, 2, 3, field::HOP_LIMIT];
/// The bits of byte 0 the ICRC forces to one (upper traffic-class nibble);
/// the version nibble stays.
pub const ICRC_BYTE0_MASK: u8 = 0x0F;

view!(Packet, "A read/write view of an IPv6 packet.");

fields! { Packet;
    /// Payload length.
    payload_len, set_payload_len: u16(field::PAYLOAD_LEN);
    /// Next header.
    next_header, set_next_header: u8(field::NEXT_HEADER);
    /// Hop limit.
    hop_limit, set_hop_limit: u8(field::HOP_LIMIT);
    /// Source address.
    src_addr, set_src_addr: [u8; 16](field::SRC);
    /// Destination address.
    dst_addr, set_dst_addr: [u8; 16](field::DST);
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Length checks of [`new_checked`](Self::new_checked): the buffer
    /// holds the header and the whole payload (it may hold more: Ethernet
    /// padding).
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if len < HEADER_LEN + usize::from(self.payload_len()) {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Version nibble (6).
    pub fn version(&self) -> u8 {
        u8_at(self.buffer.as_ref(), field::VER_TC_FL) >> 4
    }

    /// Traffic class.
    pub fn traffic_class(&self) -> u8 {
        // Bits 27..20 of the first word; the shift leaves 8 bits.
        ((u32_at(self.buffer.as_ref(), field::VER_TC_FL) >> 20) & 0xFF) as u8
    }

    /// Flow label (20 bits).
    pub fn flow_label(&self) -> u32 {
        u32_at(self.buffer.as_ref(), field::VER_TC_FL) & 0x000F_FFFF
    }

    /// The raw 40 header bytes, as the ICRC needs them.
    pub fn header(&self) -> &[u8] {
        self.buffer.as_ref().get(..HEADER_LEN).unwrap_or_default()
    }

    /// The payload (`payload_len` bytes after the header).
    pub fn payload(&self) -> &[u8] {
        self.buffer
            .as_ref()
            .get(HEADER_LEN..HEADER_LEN + usize::from(self.payload_len()))
            .unwrap_or_default()
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Set version 6, traffic class and flow label (low 20 bits used).
    pub fn set_ver_tc_fl(&mut self, traffic_class: u8, flow_label: u32) {
        let w = (6 << 28) | (u32::from(traffic_class) << 20) | (flow_label & 0x000F_FFFF);
        set_u32(self.buffer.as_mut(), field::VER_TC_FL, w);
    }

    /// Mutable payload.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = HEADER_LEN + usize::from(self.payload_len());
        self.buffer
            .as_mut()
            .get_mut(HEADER_LEN..end)
            .unwrap_or_default()
    }
}

/// The IPv6 header of a RoCEv2 packet, owned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv6Repr {
    /// Traffic class (DSCP + ECN).
    pub traffic_class: u8,
    /// Flow label (20 bits; IBA Annex A17 (RoCEv2 encapsulation); Linux rxe_net.c leaves open whether rxe fills it).
    pub flow_label: u32,
    /// Next header (17 for RoCEv2).
    pub next_header: u8,
    /// Hop limit.
    pub hop_limit: u8,
    /// Source address (the sender's GID).
    pub src_addr: [u8; 16],
    /// Destination address.
    pub dst_addr: [u8; 16],
    /// Bytes after the header.
    pub payload_len: usize,
}

impl Ipv6Repr {
    /// Parse and validate: version 6, lengths consistent. A zero payload
    /// length (jumbogram) cannot carry RoCEv2 and is `BadLength`.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Self> {
        if packet.buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if packet.version() != 6 {
            return Err(Error::BadVersion);
        }
        packet.check_len()?;
        if packet.payload_len() == 0 {
            return Err(Error::BadLength);
        }
        Ok(Ipv6Repr {
            traffic_class: packet.traffic_class(),
            flow_label: packet.flow_label(),
            next_header: packet.next_header(),
            hop_limit: packet.hop_limit(),
            src_addr: packet.src_addr(),
            dst_addr: packet.dst_addr(),
            payload_len: usize::from(packet.payload_len()),
        })
    }

    /// Header plus payload.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN + self.payload_len
    }

    /// Write the header; the payload is left untouched.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) -> Result<()> {
        u16::try_from(self.payload_len).map_err(|_| Error::BadLength)?;
        if self.flow_label > 0x000F_FFFF {
            return Err(Error::Malformed);
        }
        if packet.buffer.as_ref().len() < self.buffer_len() {
            return Err(Error::BufferTooSmall);
        }
        self.emit_header(packet)
    }

    /// Write only the header into a buffer that need not hold the payload.
    pub fn emit_header<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) -> Result<()> {
        let plen = u16::try_from(self.payload_len).map_err(|_| Error::BadLength)?;
        if self.flow_label > 0x000F_FFFF {
            return Err(Error::Malformed);
        }
        if packet.buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::BufferTooSmall);
        }
        packet.set_ver_tc_fl(self.traffic_class, self.flow_label);
        packet.set_payload_len(plen);
        packet.set_next_header(self.next_header);
        packet.set_hop_limit(self.hop_limit);
        packet.set_src_addr(self.src_addr);
        packet.set_dst_addr(self.dst_addr);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repr() -> Ipv6Repr {
        Ipv6Repr {
            traffic_class: 0xA5,
            flow_label: 0xC5A69,
            next_header: 17,
            hop_limit: 64,
            src_addr: [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8],
            dst_addr: [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 8, 7, 6, 5, 4, 3, 2, 1],
            payload_len: 8,
        }
    }

    #[test]
    fn round_trip_and_bit_layout() {
        let r = repr();
        let mut b = [0u8; 48];
        r.emit(&mut Packet::new_unchecked(&mut b[..])).unwrap();
        assert_eq!(&b[..4], &[0x6A, 0x5C, 0x5A, 0x69]);
        assert_eq!(&b[4..8], &[0, 8, 17, 64]);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(Ipv6Repr::parse(&p).unwrap(), r);
    }

    #[test]
    fn rejects_bad_input() {
        let mut b = [0u8; 48];
        repr().emit(&mut Packet::new_unchecked(&mut b[..])).unwrap();
        assert_eq!(
            Ipv6Repr::parse(&Packet::new_unchecked(&b[..47])),
            Err(Error::Truncated)
        );
        assert_eq!(
            Ipv6Repr::parse(&Packet::new_unchecked(&b[..39])),
            Err(Error::Truncated)
        );
        let mut v = b;
        v[0] = 0x4A;
        assert_eq!(
            Ipv6Repr::parse(&Packet::new_unchecked(&v[..])),
            Err(Error::BadVersion)
        );
        let mut z = b;
        z[5] = 0;
        assert_eq!(
            Ipv6Repr::parse(&Packet::new_unchecked(&z[..])),
            Err(Error::BadLength)
        );
        let bad_fl = Ipv6Repr {
            flow_label: 0x10_0000,
            ..repr()
        };
        assert_eq!(
            bad_fl.emit(&mut Packet::new_unchecked(&mut b[..])),
            Err(Error::Malformed)
        );
    }
}
