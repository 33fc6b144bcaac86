//! UDP header (8 bytes) carrying RoCEv2 to port 4791 (IBA Annex A17 (RoCEv2 encapsulation); Linux rxe_net.c).
//!
//! rxe sends UDP checksum 0 (the Linux rxe captures in crates/roce/tests/data). A non-zero checksum from another
//! sender is verified when the IP addresses are supplied, and `emit` can
//! compute one. Hand-written rather than a dependency: see `ethernet.rs`.

use super::bytes::{fields, ones_finish, ones_sum, view};
use super::{Error, Result};

/// The RoCEv2 UDP destination port (IANA).
pub const ROCE_PORT: u16 = 4791;

mod field {
    pub const SRC_PORT: usize = 0;
    pub const DST_PORT: usize = 2;
    pub const LENGTH: usize = 4;
    pub const CHECKSUM: usize = 6;
}

/// Length of the UDP header.
pub const HEADER_LEN: usize = 8;

/// Byte offsets inside the UDP header that the ICRC masks (IBA Annex A17 (ICRC); Linux rxe_icrc.c).
pub const ICRC_MASKED: [usize; 2] = [field::CHECKSUM, field::CHECKSUM + 1];

/// The addresses the UDP checksum pseudo-header covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PseudoHeader {
    /// IPv4 source and destination.
    V4 {
        /// Source address.
        src: [u8; 4],
        /// Destination address.
        dst: [u8; 4],
    },
    /// IPv6 source and destination.
    V6 {
        /// Source address.
        src: [u8; 16],
        /// Destination address.
        dst: [u8; 16],
    },
}

impl PseudoHeader {
    /// One's-complement sum of the pseudo-header for a UDP datagram of
    /// `udp_len` bytes (RFC 768 / RFC 8200 §8.1).
    fn sum(&self, udp_len: u16) -> u32 {
        let proto = u32::from(super::ipv4::PROTOCOL_UDP);
        let len = u32::from(udp_len);
        match self {
            PseudoHeader::V4 { src, dst } => {
                ones_sum(ones_sum(0, src), dst).wrapping_add(proto + len)
            }
            PseudoHeader::V6 { src, dst } => {
                ones_sum(ones_sum(0, src), dst).wrapping_add(proto + len)
            }
        }
    }
}

view!(Packet, "A read/write view of a UDP datagram.");

fields! { Packet;
    /// Source port.
    src_port, set_src_port: u16(field::SRC_PORT);
    /// Destination port.
    dst_port, set_dst_port: u16(field::DST_PORT);
    /// Length field (header + payload).
    #[allow(clippy::len_without_is_empty)]
    len, set_len: u16(field::LENGTH);
    /// Checksum as on the wire (0 = none).
    checksum, set_checksum: u16(field::CHECKSUM);
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Length checks of [`new_checked`](Self::new_checked): header
    /// present, `8 <= length <= buffer`.
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let l = usize::from(self.len());
        if l < HEADER_LEN {
            return Err(Error::BadLength);
        }
        if len < l {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// The raw 8 header bytes, as the ICRC needs them.
    pub fn header(&self) -> &[u8] {
        self.buffer.as_ref().get(..HEADER_LEN).unwrap_or_default()
    }

    /// The datagram as the length field bounds it.
    fn datagram(&self) -> &[u8] {
        self.buffer
            .as_ref()
            .get(..usize::from(self.len()))
            .unwrap_or_default()
    }

    /// The payload (the RoCEv2 packet), bounded by the length field.
    pub fn payload(&self) -> &[u8] {
        self.datagram().get(HEADER_LEN..).unwrap_or_default()
    }

    /// True if the checksum is absent (0) or correct.
    pub fn verify_checksum(&self, pseudo: &PseudoHeader) -> bool {
        self.checksum() == 0 || ones_finish(ones_sum(pseudo.sum(self.len()), self.datagram())) == 0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Compute the checksum over pseudo-header, header and payload as they
    /// stand and store it (0 is sent as 0xFFFF, RFC 768).
    pub fn fill_checksum(&mut self, pseudo: &PseudoHeader) {
        self.set_checksum(0);
        let c = ones_finish(ones_sum(pseudo.sum(self.len()), self.datagram()));
        self.set_checksum(if c == 0 { 0xFFFF } else { c });
    }

    /// Mutable payload, bounded by the length field.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = usize::from(self.len());
        self.buffer
            .as_mut()
            .get_mut(HEADER_LEN..end)
            .unwrap_or_default()
    }
}

/// The UDP header of a RoCEv2 packet, owned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UdpRepr {
    /// Source port (IBA Annex A17 (RoCEv2 encapsulation); Linux rxe_net.c: flow-label derived, or 55410 on QP1).
    pub src_port: u16,
    /// Destination port (4791).
    pub dst_port: u16,
    /// Whether the datagram carries a checksum. rxe sends none (0); a
    /// received non-zero checksum sets this so a re-emit reproduces it.
    pub checksum: bool,
    /// Bytes after the header.
    pub payload_len: usize,
}

impl UdpRepr {
    /// Parse and validate; a non-zero checksum is checked when `pseudo` is
    /// given (`BadChecksum`).
    pub fn parse<T: AsRef<[u8]>>(
        packet: &Packet<T>,
        pseudo: Option<&PseudoHeader>,
    ) -> Result<Self> {
        packet.check_len()?;
        if let Some(ph) = pseudo
            && !packet.verify_checksum(ph)
        {
            return Err(Error::BadChecksum);
        }
        Ok(UdpRepr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
            checksum: packet.checksum() != 0,
            payload_len: packet.payload().len(),
        })
    }

    /// Header plus payload.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN + self.payload_len
    }

    /// Write the header with checksum 0. When [`checksum`](Self::checksum)
    /// is set, call [`Packet::fill_checksum`] once the payload is final.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) -> Result<()> {
        u16::try_from(self.buffer_len()).map_err(|_| Error::BadLength)?;
        if packet.buffer.as_ref().len() < self.buffer_len() {
            return Err(Error::BufferTooSmall);
        }
        self.emit_header(packet)
    }

    /// Write only the header into a buffer that need not hold the payload.
    pub fn emit_header<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) -> Result<()> {
        let len = u16::try_from(self.buffer_len()).map_err(|_| Error::BadLength)?;
        if packet.buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::BufferTooSmall);
        }
        packet.set_src_port(self.src_port);
        packet.set_dst_port(self.dst_port);
        packet.set_len(len);
        packet.set_checksum(0);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PH: PseudoHeader = PseudoHeader::V4 {
        src: [10, 9, 0, 2],
        dst: [10, 9, 0, 3],
    };

    #[test]
    fn round_trip_with_and_without_checksum() {
        let r = UdpRepr {
            src_port: 0xda58,
            dst_port: ROCE_PORT,
            checksum: false,
            payload_len: 4,
        };
        let mut b = [0u8; 12];
        r.emit(&mut Packet::new_unchecked(&mut b[..])).unwrap();
        assert_eq!(&b[..8], &[0xda, 0x58, 0x12, 0xb7, 0, 12, 0, 0]);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(UdpRepr::parse(&p, Some(&PH)).unwrap(), r);

        b[8..].copy_from_slice(&[1, 2, 3, 4]);
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.fill_checksum(&PH);
        assert_ne!(p.checksum(), 0);
        let r2 = UdpRepr::parse(&Packet::new_unchecked(&b[..]), Some(&PH)).unwrap();
        assert!(r2.checksum);
        b[9] ^= 0x40;
        assert_eq!(
            UdpRepr::parse(&Packet::new_unchecked(&b[..]), Some(&PH)),
            Err(Error::BadChecksum)
        );
    }

    #[test]
    fn checksum_matches_an_independent_sum() {
        // Pseudo-header + header + payload summed by hand as 16-bit words.
        let mut b = [0u8; 12];
        b[..8].copy_from_slice(&[0xda, 0x58, 0x12, 0xb7, 0, 12, 0, 0]);
        b[8..].copy_from_slice(&[1, 2, 3, 4]);
        Packet::new_unchecked(&mut b[..]).fill_checksum(&PH);
        let words: [u32; 12] = [
            0x0a09, 0x0002, 0x0a09, 0x0003, 17, 12, 0xda58, 0x12b7, 12, 0, 0x0102, 0x0304,
        ];
        let mut s: u32 = words.iter().sum();
        while s > 0xFFFF {
            s = (s & 0xFFFF) + (s >> 16);
        }
        assert_eq!(u16::from_be_bytes([b[6], b[7]]), !(s as u16));
    }

    #[test]
    fn bad_lengths() {
        let b = [0u8, 1, 0x12, 0xb7, 0, 7, 0, 0];
        assert_eq!(Packet::new_checked(&b[..]).unwrap_err(), Error::BadLength);
        let b = [0u8, 1, 0x12, 0xb7, 0, 9, 0, 0];
        assert_eq!(Packet::new_checked(&b[..]).unwrap_err(), Error::Truncated);
        assert_eq!(Packet::new_checked(&b[..7]).unwrap_err(), Error::Truncated);
    }
}
