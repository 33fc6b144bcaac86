//! IPv4 header as RoCEv2 uses it (IBA Annex A17 (RoCEv2 encapsulation); Linux rxe_net.c): IHL 5, no options, never
//! fragmented. The header checksum is checked on parse and written on emit.
//! Hand-written rather than a dependency: see the note in `ethernet.rs`.

use super::bytes::{fields, ones_finish, ones_sum, set_u8, set_u16, u8_at, u16_at, view};
use super::{Error, Result};

/// IP protocol number of UDP.
pub const PROTOCOL_UDP: u8 = 17;

mod field {
    pub const VER_IHL: usize = 0;
    pub const TOS: usize = 1;
    pub const TOTAL_LEN: usize = 2;
    pub const IDENT: usize = 4;
    pub const FLAGS_FRAG: usize = 6;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: usize = 10;
    pub const SRC: usize = 12;
    pub const DST: usize = 16;
}

/// Length of an option-less IPv4 header, the only kind RoCEv2 senders build
/// (rxe writes IHL 5; the Linux rxe captures in crates/roce/tests/data) and the only kind rxe's ICRC handles: it
/// copies exactly 20 bytes of IP header into the ICRC input.
pub const HEADER_LEN: usize = 20;

const FLAG_RESERVED: u16 = 0x8000;
const FLAG_DONT_FRAG: u16 = 0x4000;
const FLAG_MORE_FRAGS: u16 = 0x2000;
const FRAG_OFFSET_MASK: u16 = 0x1FFF;

/// Byte offsets of the fields the ICRC masks to all-ones (IBA Annex A17 (ICRC); Linux rxe_icrc.c):
/// TOS, TTL, and the two checksum bytes.
pub const ICRC_MASKED: [usize; 4] = [field::TOS, field::TTL, field::CHECKSUM, field::CHECKSUM + 1];

view!(Packet, "A read/write view of an IPv4 packet.");

fields! { Packet;
    /// The TOS byte (DSCP << 2 | ECN).
    tos, set_tos: u8(field::TOS);
    /// Total length (header + payload).
    total_len, set_total_len: u16(field::TOTAL_LEN);
    /// Identification.
    ident, set_ident: u16(field::IDENT);
    /// Time to live.
    ttl, set_ttl: u8(field::TTL);
    /// Protocol number.
    protocol, set_protocol: u8(field::PROTOCOL);
    /// Header checksum as on the wire.
    checksum, set_checksum: u16(field::CHECKSUM);
    /// Source address.
    src_addr, set_src_addr: [u8; 4](field::SRC);
    /// Destination address.
    dst_addr, set_dst_addr: [u8; 4](field::DST);
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Length checks of [`new_checked`](Self::new_checked): the buffer
    /// holds the header and the whole `total_len` (it may hold more:
    /// Ethernet padding of short frames).
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let hl = self.header_len();
        let total = usize::from(self.total_len());
        if hl < HEADER_LEN || total < hl {
            return Err(Error::BadLength);
        }
        if len < total {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Version nibble (4).
    pub fn version(&self) -> u8 {
        u8_at(self.buffer.as_ref(), field::VER_IHL) >> 4
    }

    /// Header length in bytes (IHL × 4).
    pub fn header_len(&self) -> usize {
        usize::from(u8_at(self.buffer.as_ref(), field::VER_IHL) & 0x0F) * 4
    }

    fn flags_frag(&self) -> u16 {
        u16_at(self.buffer.as_ref(), field::FLAGS_FRAG)
    }

    /// The DF flag.
    pub fn dont_frag(&self) -> bool {
        self.flags_frag() & FLAG_DONT_FRAG != 0
    }

    /// True if this is a fragment (MF set or non-zero offset) or the
    /// reserved flag is set.
    pub fn is_fragment_or_reserved(&self) -> bool {
        self.flags_frag() & (FLAG_RESERVED | FLAG_MORE_FRAGS | FRAG_OFFSET_MASK) != 0
    }

    /// The raw header bytes (IHL × 4), as the ICRC needs them.
    pub fn header(&self) -> &[u8] {
        self.buffer
            .as_ref()
            .get(..self.header_len())
            .unwrap_or_default()
    }

    /// True if the header checksum is correct.
    pub fn verify_checksum(&self) -> bool {
        ones_finish(ones_sum(0, self.header())) == 0
    }

    /// The payload: header end to `total_len`, excluding any link padding.
    pub fn payload(&self) -> &[u8] {
        self.buffer
            .as_ref()
            .get(self.header_len()..usize::from(self.total_len()))
            .unwrap_or_default()
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Set version 4 and header length 20 (IHL 5).
    pub fn set_version_ihl(&mut self) {
        set_u8(self.buffer.as_mut(), field::VER_IHL, 0x45);
    }

    /// Set the flags to DF or nothing, fragment offset 0.
    pub fn set_dont_frag(&mut self, df: bool) {
        let v = if df { FLAG_DONT_FRAG } else { 0 };
        set_u16(self.buffer.as_mut(), field::FLAGS_FRAG, v);
    }

    /// Compute and store the header checksum over the current header.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = ones_finish(ones_sum(0, self.header()));
        self.set_checksum(c);
    }

    /// Mutable payload (header end to `total_len`).
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let range = self.header_len()..usize::from(self.total_len());
        self.buffer.as_mut().get_mut(range).unwrap_or_default()
    }
}

/// The IPv4 header of a RoCEv2 packet, owned. Everything a byte-exact
/// re-emit needs is kept; the checksum is recomputed by `emit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Repr {
    /// TOS byte: DSCP (6 bits) and ECN (2 bits); rxe sends the AV traffic
    /// class, 0 by default (Linux rxe_net.c (ToS 0)).
    pub tos: u8,
    /// Identification.
    pub ident: u16,
    /// The DF flag (rxe sets it).
    pub dont_frag: bool,
    /// Time to live (rxe: the AV hop limit, 64 observed).
    pub ttl: u8,
    /// Protocol number (17 for RoCEv2).
    pub protocol: u8,
    /// Source address.
    pub src_addr: [u8; 4],
    /// Destination address.
    pub dst_addr: [u8; 4],
    /// Bytes after the header.
    pub payload_len: usize,
}

impl Ipv4Repr {
    /// Parse and validate: version 4, no options, not a fragment, lengths
    /// consistent, header checksum correct.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Self> {
        if packet.buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if packet.version() != 4 {
            return Err(Error::BadVersion);
        }
        packet.check_len()?;
        // Options and fragments never occur in RoCEv2 (DF is set, IHL is 5);
        // accepting them would also break the ICRC, which assumes 20 bytes.
        if packet.header_len() != HEADER_LEN || packet.is_fragment_or_reserved() {
            return Err(Error::Malformed);
        }
        if !packet.verify_checksum() {
            return Err(Error::BadChecksum);
        }
        Ok(Ipv4Repr {
            tos: packet.tos(),
            ident: packet.ident(),
            dont_frag: packet.dont_frag(),
            ttl: packet.ttl(),
            protocol: packet.protocol(),
            src_addr: packet.src_addr(),
            dst_addr: packet.dst_addr(),
            payload_len: packet.payload().len(),
        })
    }

    /// Header plus payload.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN + self.payload_len
    }

    /// Write the header (with checksum); the payload is left untouched.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) -> Result<()> {
        u16::try_from(self.buffer_len()).map_err(|_| Error::BadLength)?;
        if packet.buffer.as_ref().len() < self.buffer_len() {
            return Err(Error::BufferTooSmall);
        }
        self.emit_header(packet)
    }

    /// Write only the header into a buffer that need not hold the payload
    /// (for a header the ICRC is computed over but that is never sent).
    pub fn emit_header<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) -> Result<()> {
        let total = u16::try_from(self.buffer_len()).map_err(|_| Error::BadLength)?;
        if packet.buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::BufferTooSmall);
        }
        packet.set_version_ihl();
        packet.set_tos(self.tos);
        packet.set_total_len(total);
        packet.set_ident(self.ident);
        packet.set_dont_frag(self.dont_frag);
        packet.set_ttl(self.ttl);
        packet.set_protocol(self.protocol);
        packet.set_src_addr(self.src_addr);
        packet.set_dst_addr(self.dst_addr);
        packet.fill_checksum();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // IP header of rping-small frame 5 (IBA Annex A17 (ICRC); Linux rxe_icrc.c worked example).
    const HDR: [u8; 20] = [
        0x45, 0x00, 0x00, 0x30, 0x90, 0x79, 0x40, 0x00, 0x40, 0x11, 0x96, 0x2d, 0x0a, 0x09, 0x00,
        0x02, 0x0a, 0x09, 0x00, 0x03,
    ];

    fn with_payload() -> [u8; 48] {
        let mut b = [0u8; 48];
        b[..20].copy_from_slice(&HDR);
        b
    }

    #[test]
    fn parses_the_worked_example_and_re_emits_it() {
        let b = with_payload();
        let p = Packet::new_checked(&b[..]).unwrap();
        let r = Ipv4Repr::parse(&p).unwrap();
        assert_eq!(r.ident, 0x9079);
        assert!(r.dont_frag);
        assert_eq!(r.ttl, 64);
        assert_eq!(r.protocol, PROTOCOL_UDP);
        assert_eq!(r.src_addr, [10, 9, 0, 2]);
        assert_eq!(r.payload_len, 28);
        let mut out = [0u8; 48];
        r.emit(&mut Packet::new_unchecked(&mut out[..])).unwrap();
        assert_eq!(out[..20], HDR);
    }

    #[test]
    fn rejects_bad_checksum_version_options_fragments_lengths() {
        let mut b = with_payload();
        b[10] ^= 1;
        assert_eq!(
            Ipv4Repr::parse(&Packet::new_unchecked(&b[..])),
            Err(Error::BadChecksum)
        );

        let mut b = with_payload();
        b[0] = 0x65;
        assert_eq!(
            Ipv4Repr::parse(&Packet::new_unchecked(&b[..])),
            Err(Error::BadVersion)
        );

        let mut b = with_payload();
        b[0] = 0x46;
        assert_eq!(
            Ipv4Repr::parse(&Packet::new_unchecked(&b[..])),
            Err(Error::Malformed)
        );

        let mut b = with_payload();
        b[0] = 0x44;
        assert_eq!(
            Ipv4Repr::parse(&Packet::new_unchecked(&b[..])),
            Err(Error::BadLength)
        );

        let mut b = with_payload();
        b[6] = 0x20; // MF
        assert_eq!(
            Ipv4Repr::parse(&Packet::new_unchecked(&b[..])),
            Err(Error::Malformed)
        );

        let mut b = with_payload();
        b[3] = 0x31; // total length one past the buffer
        assert_eq!(
            Ipv4Repr::parse(&Packet::new_unchecked(&b[..])),
            Err(Error::Truncated)
        );

        let mut b = with_payload();
        b[3] = 19; // total length below the header
        assert_eq!(
            Ipv4Repr::parse(&Packet::new_unchecked(&b[..])),
            Err(Error::BadLength)
        );

        assert_eq!(
            Ipv4Repr::parse(&Packet::new_unchecked(&HDR[..19])),
            Err(Error::Truncated)
        );
    }

    #[test]
    fn trailing_link_padding_is_outside_the_payload() {
        let mut b = [0u8; 60];
        b[..48].copy_from_slice(&with_payload());
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.payload().len(), 28);
    }

    #[test]
    fn emit_refuses_small_buffer_and_oversize_payload() {
        let b = with_payload();
        let r = Ipv4Repr::parse(&Packet::new_unchecked(&b[..])).unwrap();
        let mut small = [0u8; 47];
        assert_eq!(
            r.emit(&mut Packet::new_unchecked(&mut small[..])),
            Err(Error::BufferTooSmall)
        );
        let big = Ipv4Repr {
            payload_len: 65_516,
            ..r
        };
        let mut out = [0u8; 48];
        assert_eq!(
            big.emit(&mut Packet::new_unchecked(&mut out[..])),
            Err(Error::BadLength)
        );
    }
}
