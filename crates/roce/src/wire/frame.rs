//! Whole RoCEv2 datagrams (IP + UDP + transport packet) and Ethernet
//! frames around them (IBA Annex A17 (RoCEv2 encapsulation); Linux rxe_net.c), parsed with every check a receiver
//! makes (IP checksum, lengths, UDP port, UDP checksum when present, ICRC)
//! and emitted with the lengths, IPv4 checksum and ICRC filled in.
//!
//! The ICRC covers the IP header's Identification, flags, total length and
//! addresses (only TOS, TTL and checksum are masked, IBA Annex A17 (ICRC); Linux rxe_icrc.c), so
//! whoever builds the IP header must build the ICRC with it: a shell that
//! hands the transport packet to an OS UDP socket cannot produce a valid
//! ICRC unless it controls those fields.

use super::ethernet::{self, ETHERTYPE_IPV4, ETHERTYPE_IPV6, EthernetRepr};
use super::icrc;
use super::ipv4::{self, Ipv4Repr, PROTOCOL_UDP};
use super::ipv6::{self, Ipv6Repr};
use super::packet::{self, PacketRepr};
use super::udp::{self, PseudoHeader, ROCE_PORT, UdpRepr};
use super::{Error, Result};

/// The IP header of a RoCEv2 datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpRepr {
    /// IPv4 (what the captures hold).
    Ipv4(Ipv4Repr),
    /// IPv6.
    Ipv6(Ipv6Repr),
}

impl IpRepr {
    /// An IPv4 header as rxe builds it (the Linux rxe captures in crates/roce/tests/data/IBA Annex A17 (RoCEv2 encapsulation); Linux rxe_net.c): TOS 0, DF set,
    /// TTL 64, protocol UDP, Identification 0 (the caller sets a running
    /// value). The payload length is filled in by `emit`.
    pub const fn ipv4(src_addr: [u8; 4], dst_addr: [u8; 4]) -> Self {
        IpRepr::Ipv4(Ipv4Repr {
            tos: 0,
            ident: 0,
            dont_frag: true,
            ttl: 64,
            protocol: PROTOCOL_UDP,
            src_addr,
            dst_addr,
            payload_len: 0,
        })
    }

    /// An IPv6 header: traffic class 0, flow label 0, hop limit 64, next
    /// header UDP.
    pub const fn ipv6(src_addr: [u8; 16], dst_addr: [u8; 16]) -> Self {
        IpRepr::Ipv6(Ipv6Repr {
            traffic_class: 0,
            flow_label: 0,
            next_header: PROTOCOL_UDP,
            hop_limit: 64,
            src_addr,
            dst_addr,
            payload_len: 0,
        })
    }

    /// Length of the IP header.
    pub const fn header_len(&self) -> usize {
        match self {
            IpRepr::Ipv4(_) => ipv4::HEADER_LEN,
            IpRepr::Ipv6(_) => ipv6::HEADER_LEN,
        }
    }

    /// The matching ethertype.
    pub const fn ethertype(&self) -> u16 {
        match self {
            IpRepr::Ipv4(_) => ETHERTYPE_IPV4,
            IpRepr::Ipv6(_) => ETHERTYPE_IPV6,
        }
    }

    /// The UDP checksum pseudo-header addresses.
    pub const fn pseudo_header(&self) -> PseudoHeader {
        match self {
            IpRepr::Ipv4(r) => PseudoHeader::V4 {
                src: r.src_addr,
                dst: r.dst_addr,
            },
            IpRepr::Ipv6(r) => PseudoHeader::V6 {
                src: r.src_addr,
                dst: r.dst_addr,
            },
        }
    }

    /// Bytes after the IP header.
    pub const fn payload_len(&self) -> usize {
        match self {
            IpRepr::Ipv4(r) => r.payload_len,
            IpRepr::Ipv6(r) => r.payload_len,
        }
    }

    /// The protocol after the IP header (IPv4 protocol, IPv6 next header).
    pub const fn protocol(&self) -> u8 {
        match self {
            IpRepr::Ipv4(r) => r.protocol,
            IpRepr::Ipv6(r) => r.next_header,
        }
    }

    /// Parse the IP header at the start of `bytes`, IPv4 or IPv6 by its
    /// version nibble: `Truncated` if empty, `BadVersion` for another
    /// version, else what [`Ipv4Repr::parse`] / [`Ipv6Repr::parse`] say.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        match bytes.first().ok_or(Error::Truncated)? >> 4 {
            4 => Ok(IpRepr::Ipv4(Ipv4Repr::parse(
                &ipv4::Packet::new_unchecked(bytes),
            )?)),
            6 => Ok(IpRepr::Ipv6(Ipv6Repr::parse(
                &ipv6::Packet::new_unchecked(bytes),
            )?)),
            _ => Err(Error::BadVersion),
        }
    }

    /// Write only the header into `buf` (which need not hold the payload)
    /// for a payload of `payload_len` bytes.
    pub fn emit_header(&self, payload_len: usize, buf: &mut [u8]) -> Result<()> {
        match *self {
            IpRepr::Ipv4(r) => {
                Ipv4Repr { payload_len, ..r }.emit_header(&mut ipv4::Packet::new_unchecked(buf))
            }
            IpRepr::Ipv6(r) => {
                Ipv6Repr { payload_len, ..r }.emit_header(&mut ipv6::Packet::new_unchecked(buf))
            }
        }
    }

    /// Write the header into the front of `buf` for a payload of
    /// `payload_len` bytes (the stored payload length is not used).
    pub fn emit(&self, payload_len: usize, buf: &mut [u8]) -> Result<()> {
        match *self {
            IpRepr::Ipv4(r) => {
                Ipv4Repr { payload_len, ..r }.emit(&mut ipv4::Packet::new_unchecked(buf))
            }
            IpRepr::Ipv6(r) => {
                Ipv6Repr { payload_len, ..r }.emit(&mut ipv6::Packet::new_unchecked(buf))
            }
        }
    }
}

/// An IP datagram carrying one RoCEv2 packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DatagramRepr<'a> {
    /// IP header. Its payload length is recomputed by `emit`.
    pub ip: IpRepr,
    /// UDP header. Its payload length is recomputed by `emit`; with
    /// `checksum` false the checksum is 0, as rxe sends it.
    pub udp: UdpRepr,
    /// The transport packet.
    pub packet: PacketRepr<'a>,
}

impl<'a> DatagramRepr<'a> {
    /// Parse an IP datagram (IPv4 or IPv6 by its version nibble). `bytes`
    /// may run past the IP length (Ethernet padding); the rest is ignored.
    ///
    /// Errors, in the order checked: `Truncated`; `BadVersion`; IP lengths
    /// (`BadLength`, `Truncated`); IPv4 options or fragments (`Malformed`);
    /// IPv4 header checksum (`BadChecksum`); not UDP to port 4791
    /// (`NotRoce`); UDP length not equal to the IP payload (`BadLength`);
    /// UDP checksum if non-zero (`BadChecksum`); ICRC (`BadIcrc`); then the
    /// transport packet's own errors ([`PacketRepr::parse`]).
    pub fn parse(bytes: &'a [u8]) -> Result<Self> {
        let ip = IpRepr::parse(bytes)?;
        if ip.protocol() != PROTOCOL_UDP {
            return Err(Error::NotRoce);
        }
        let (ip_header, rest) = bytes
            .split_at_checked(ip.header_len())
            .ok_or(Error::Truncated)?;
        let ip_payload = rest.get(..ip.payload_len()).ok_or(Error::Truncated)?;

        if ip_payload.len() < udp::HEADER_LEN {
            return Err(Error::Truncated);
        }
        let udp_view = udp::Packet::new_unchecked(ip_payload);
        // The IP length bounds the datagram; a UDP length that disagrees
        // (either way) is inconsistent, not a truncation.
        if usize::from(udp_view.len()) != ip_payload.len() {
            return Err(Error::BadLength);
        }
        if udp_view.dst_port() != ROCE_PORT {
            return Err(Error::NotRoce);
        }
        let udp = UdpRepr::parse(&udp_view, Some(&ip.pseudo_header()))?;
        let (udp_header, roce) = ip_payload
            .split_at_checked(udp::HEADER_LEN)
            .ok_or(Error::Truncated)?;

        // rxe drops a packet with a bad ICRC before looking further
        // (IBA Annex A17 (ICRC); Linux rxe_icrc.c), so a corrupted packet reports BadIcrc, not whatever
        // its corrupted opcode would make of it.
        icrc::verify(ip_header, udp_header, roce)?;
        let packet = PacketRepr::parse(&packet::Packet::new_unchecked(roce))?;
        Ok(DatagramRepr { ip, udp, packet })
    }

    /// IP header + UDP header + transport packet.
    pub const fn buffer_len(&self) -> usize {
        self.ip.header_len() + udp::HEADER_LEN + self.packet.buffer_len()
    }

    /// Write the datagram into the front of `buf`; returns its length. The
    /// IP and UDP lengths, the IPv4 checksum, the ICRC and (if asked for)
    /// the UDP checksum are computed here. `Malformed` if the IP header
    /// does not name UDP.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let len = self.buffer_len();
        let out = buf.get_mut(..len).ok_or(Error::BufferTooSmall)?;
        let roce = out
            .get_mut(self.ip.header_len() + udp::HEADER_LEN..)
            .ok_or(Error::BufferTooSmall)?;
        self.packet.emit(roce)?;
        seal(&self.ip, &self.udp, out)?;
        Ok(len)
    }
}

/// Writes the IP and UDP headers in front of a transport packet already in
/// place and fills its ICRC (and the UDP checksum when `udp.checksum`):
/// `datagram` is the IP header's room, the UDP header's room, then the
/// packet with room for its ICRC. The one place a datagram's ICRC is
/// computed on send, for [`DatagramRepr::emit`] and the shells' framing
/// (`roce::framing::seal`). Lengths come from `datagram`, not from `ip` or
/// `udp`. `Malformed` if the IP header does not name UDP.
pub fn seal(ip: &IpRepr, udp: &UdpRepr, datagram: &mut [u8]) -> Result<()> {
    seal_with_payload(ip, udp, datagram, None)
}

/// [`seal`] with the payload's CRC when the sender computed it while
/// copying the payload in ([`icrc::fill_with_payload`]).
pub fn seal_with_payload(
    ip: &IpRepr,
    udp: &UdpRepr,
    datagram: &mut [u8],
    payload: Option<icrc::PayloadCrc>,
) -> Result<()> {
    if ip.protocol() != PROTOCOL_UDP {
        return Err(Error::Malformed);
    }
    let ip_len = ip.header_len();
    let udp_len = datagram
        .len()
        .checked_sub(ip_len)
        .ok_or(Error::BufferTooSmall)?;
    let packet_len = udp_len
        .checked_sub(udp::HEADER_LEN)
        .ok_or(Error::BufferTooSmall)?;
    ip.emit(udp_len, datagram)?;
    let (ip_header, udp_bytes) = datagram
        .split_at_mut_checked(ip_len)
        .ok_or(Error::BufferTooSmall)?;
    let udp_repr = UdpRepr {
        payload_len: packet_len,
        ..*udp
    };
    udp_repr.emit(&mut udp::Packet::new_unchecked(&mut *udp_bytes))?;
    {
        let (udp_header, roce) = udp_bytes
            .split_at_mut_checked(udp::HEADER_LEN)
            .ok_or(Error::BufferTooSmall)?;
        // ICRC before the UDP checksum: the ICRC masks the UDP checksum,
        // but the UDP checksum covers the ICRC.
        icrc::fill_with_payload(ip_header, udp_header, roce, payload)?;
    }
    if udp.checksum {
        udp::Packet::new_unchecked(&mut *udp_bytes).fill_checksum(&ip.pseudo_header());
    }
    Ok(())
}

/// An Ethernet frame carrying one RoCEv2 datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FrameRepr<'a> {
    /// Ethernet header; its ethertype must match the IP version.
    pub ethernet: EthernetRepr,
    /// The datagram.
    pub datagram: DatagramRepr<'a>,
}

impl<'a> FrameRepr<'a> {
    /// Parse an Ethernet frame down to the RoCEv2 payload, verifying
    /// everything [`DatagramRepr::parse`] does. Ethertypes other than
    /// IPv4/IPv6 (including VLAN tags, which ndkrs does not send) are
    /// `NotRoce`; an IP version that contradicts the ethertype is
    /// `BadVersion`. Link padding after the IP datagram is ignored.
    pub fn parse(frame: &'a [u8]) -> Result<Self> {
        let view = ethernet::Frame::new_checked(frame)?;
        let ethernet = EthernetRepr::parse(&view)?;
        let ip_bytes = frame.get(ethernet::HEADER_LEN..).ok_or(Error::Truncated)?;
        let expect = match ethernet.ethertype {
            ETHERTYPE_IPV4 => 4,
            ETHERTYPE_IPV6 => 6,
            _ => return Err(Error::NotRoce),
        };
        if ip_bytes.first().map(|b| b >> 4) != Some(expect) {
            return if ip_bytes.is_empty() {
                Err(Error::Truncated)
            } else {
                Err(Error::BadVersion)
            };
        }
        let datagram = DatagramRepr::parse(ip_bytes)?;
        Ok(FrameRepr { ethernet, datagram })
    }

    /// Ethernet header + datagram (no link padding: the NIC pads short
    /// frames to 60 bytes).
    pub const fn buffer_len(&self) -> usize {
        ethernet::HEADER_LEN + self.datagram.buffer_len()
    }

    /// Write the frame into the front of `buf`; returns its length.
    /// `Malformed` if the ethertype does not match the IP version.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        if self.ethernet.ethertype != self.datagram.ip.ethertype() {
            return Err(Error::Malformed);
        }
        let len = self.buffer_len();
        let out = buf.get_mut(..len).ok_or(Error::BufferTooSmall)?;
        let (eth, rest) = out
            .split_at_mut_checked(ethernet::HEADER_LEN)
            .ok_or(Error::BufferTooSmall)?;
        self.ethernet
            .emit(&mut ethernet::Frame::new_unchecked(eth))?;
        self.datagram.emit(rest)?;
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::aeth::{AethRepr, Syndrome};
    use crate::wire::bth::BthRepr;
    use crate::wire::opcode::Opcode;

    // rping-small frame 5 from the IP header on (IBA Annex A17 (ICRC); Linux rxe_icrc.c worked example).
    const ACK_IP: [u8; 48] = [
        0x45, 0x00, 0x00, 0x30, 0x90, 0x79, 0x40, 0x00, 0x40, 0x11, 0x96, 0x2d, 0x0a, 0x09, 0x00,
        0x02, 0x0a, 0x09, 0x00, 0x03, 0xda, 0x58, 0x12, 0xb7, 0x00, 0x1c, 0x00, 0x00, 0x11, 0x00,
        0xff, 0xff, 0x00, 0x00, 0x00, 0x11, 0x00, 0xb5, 0x5b, 0x8d, 0x1f, 0x00, 0x00, 0x01, 0xeb,
        0x3f, 0x6d, 0x3b,
    ];

    fn ack_repr() -> DatagramRepr<'static> {
        let mut ip = IpRepr::ipv4([10, 9, 0, 2], [10, 9, 0, 3]);
        if let IpRepr::Ipv4(r) = &mut ip {
            r.ident = 0x9079;
        }
        let mut packet = PacketRepr::new(BthRepr::new(Opcode::RcAcknowledge, 0x11, 0xb55b8d), &[]);
        packet.aeth = Some(AethRepr {
            syndrome: Syndrome::Ack { credits: 31 },
            msn: 1,
        });
        DatagramRepr {
            ip,
            udp: UdpRepr {
                src_port: packet::udp_sport_from_flow_label(0xC5A69),
                dst_port: ROCE_PORT,
                checksum: false,
                payload_len: 0,
            },
            packet,
        }
    }

    #[test]
    fn builds_the_worked_example_from_scratch() {
        let mut buf = [0u8; 64];
        let n = ack_repr().emit(&mut buf).unwrap();
        assert_eq!(&buf[..n], &ACK_IP[..]);
    }

    #[test]
    fn parses_the_worked_example() {
        let d = DatagramRepr::parse(&ACK_IP).unwrap();
        let expect = ack_repr();
        assert_eq!(d.packet, expect.packet);
        assert_eq!(d.udp.src_port, 55896);
        assert_eq!(d.ip.payload_len(), 28);
    }

    #[test]
    fn ipv6_round_trip_with_and_without_udp_checksum() {
        for checksum in [false, true] {
            let mut d = ack_repr();
            d.ip = IpRepr::ipv6(
                [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
                [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3],
            );
            d.udp.checksum = checksum;
            let data = [0x55u8; 7];
            d.packet = PacketRepr::new(BthRepr::new(Opcode::RcSendOnly, 0x11, 3), &data);
            let f = FrameRepr {
                ethernet: EthernetRepr {
                    dst_addr: [2; 6],
                    src_addr: [3; 6],
                    ethertype: ETHERTYPE_IPV6,
                },
                datagram: d,
            };
            let mut buf = [0u8; 128];
            let n = f.emit(&mut buf).unwrap();
            assert_eq!(n, 14 + 40 + 8 + 12 + 7 + 1 + 4);
            let back = FrameRepr::parse(&buf[..n]).unwrap();
            assert_eq!(back.datagram.packet, f.datagram.packet);
            assert_eq!(back.datagram.udp.checksum, checksum);
            let mut again = [0u8; 128];
            assert_eq!(back.emit(&mut again).unwrap(), n);
            assert_eq!(again[..n], buf[..n]);
            // A flipped payload bit breaks the UDP checksum first when there is one.
            let mut bad = buf;
            bad[14 + 40 + 8 + 12] ^= 1;
            let want = if checksum {
                Error::BadChecksum
            } else {
                Error::BadIcrc
            };
            assert_eq!(FrameRepr::parse(&bad[..n]).unwrap_err(), want);
        }
    }

    #[test]
    fn rejects_non_roce() {
        let mut b = ACK_IP;
        b[22] = 0x12;
        b[23] = 0xb8; // UDP dst 4792
        assert_eq!(DatagramRepr::parse(&b), Err(Error::NotRoce));
        let mut frame = [0u8; 62];
        frame[12] = 0x08;
        frame[13] = 0x06; // ARP
        frame[14..].copy_from_slice(&ACK_IP);
        assert_eq!(FrameRepr::parse(&frame), Err(Error::NotRoce));
        frame[13] = 0x00;
        assert!(FrameRepr::parse(&frame).is_ok());
        frame[12] = 0x86;
        frame[13] = 0xDD; // says IPv6, holds IPv4
        assert_eq!(FrameRepr::parse(&frame), Err(Error::BadVersion));
        assert_eq!(FrameRepr::parse(&frame[..14]), Err(Error::Truncated));
    }

    #[test]
    fn emit_rejects_mismatches_and_small_buffers() {
        let d = ack_repr();
        let f = FrameRepr {
            ethernet: EthernetRepr {
                dst_addr: [0; 6],
                src_addr: [0; 6],
                ethertype: ETHERTYPE_IPV6,
            },
            datagram: d,
        };
        let mut buf = [0u8; 128];
        assert_eq!(f.emit(&mut buf), Err(Error::Malformed));
        let mut tcp = d;
        if let IpRepr::Ipv4(r) = &mut tcp.ip {
            r.protocol = 6;
        }
        assert_eq!(tcp.emit(&mut buf), Err(Error::Malformed));
        assert_eq!(d.emit(&mut buf[..47]), Err(Error::BufferTooSmall));
    }
}
