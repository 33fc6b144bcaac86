//! Putting RoCE packets into IP/UDP datagrams and taking them out, in the
//! two ways a shell can move them (IBA Annex A17 (RoCEv2 encapsulation); Linux rxe_net.c, IBA Annex A17 (ICRC); Linux rxe_icrc.c).
//!
//! The ICRC covers the IP header's addresses, lengths, identification and
//! flags and the UDP ports and length, so it can only be computed by whoever
//! knows those fields:
//!
//! * [`IpMode::Raw`]: the shell moves whole IP datagrams (raw IP sockets,
//!   the NDIS data path). The device builds every header itself, so its
//!   ICRCs are exact and a Linux rxe peer accepts them; received datagrams
//!   are checked against their real headers.
//! * [`IpMode::Udp`]: the shell uses plain UDP sockets and never sees the IP
//!   header the OS writes. Both ends then compute the ICRC over a canonical
//!   header built from the addresses and ports alone (identification 0, DF
//!   set), so two ndkrs peers in this mode check each other's ICRCs exactly,
//!   but a Linux rxe peer would drop the packets. Interoperation needs raw
//!   mode.
//!
//! The codec itself is [`crate::wire::frame`]: this module only chooses the
//! headers for a mode and seals in place with [`crate::wire::frame::seal`],
//! the one place an outgoing ICRC is computed.

use core::net::{IpAddr, SocketAddr};

use crate::wire::frame::{self, IpRepr};
use crate::wire::udp::{self, ROCE_PORT, UdpRepr};
use crate::wire::{Error, Result, icrc};

/// How the shell moves datagrams; see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpMode {
    /// Whole IP datagrams; exact ICRCs (interoperable).
    Raw,
    /// UDP payloads through OS sockets; ICRCs over a canonical header.
    Udp,
}

/// Room in front of a RoCE packet for the largest IP + UDP header (IPv6 40
/// + UDP 8).
pub const HEADROOM: usize = 48;

/// The IP header ndkrs sends: as rxe builds it (IBA Annex A17 (RoCEv2 encapsulation); Linux rxe_net.c), DF set, the
/// given hop limit and traffic class; in UDP mode identification 0.
fn ip_header(
    src: IpAddr,
    dst: IpAddr,
    ident: u16,
    hop_limit: u8,
    traffic_class: u8,
) -> Result<IpRepr> {
    Ok(match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let mut ip = IpRepr::ipv4(s.octets(), d.octets());
            if let IpRepr::Ipv4(r) = &mut ip {
                r.ident = ident;
                r.ttl = hop_limit;
                r.tos = traffic_class;
            }
            ip
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let mut ip = IpRepr::ipv6(s.octets(), d.octets());
            if let IpRepr::Ipv6(r) = &mut ip {
                r.hop_limit = hop_limit;
                r.traffic_class = traffic_class;
            }
            ip
        }
        _ => return Err(Error::Malformed),
    })
}

/// Where a sealed datagram sits in the caller's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sealed {
    /// Offset of the IP header (raw mode sends from here).
    pub ip_start: usize,
    /// Offset of the UDP payload, the RoCE packet (UDP mode sends from here).
    pub udp_payload_start: usize,
    /// End of the datagram.
    pub end: usize,
}

/// Writes the IP and UDP headers in front of the RoCE packet that occupies
/// `buf[HEADROOM..HEADROOM + packet_len]` (ICRC bytes included, any value)
/// and fills in the ICRC.
///
/// `src`/`dst` are the IP addresses and UDP ports; in UDP mode the source
/// port must be the one the shell's socket will send from, since the ICRC
/// covers it.
pub fn seal(
    buf: &mut [u8],
    packet_len: usize,
    src: SocketAddr,
    dst: SocketAddr,
    ident: u16,
    hop_limit: u8,
    traffic_class: u8,
) -> Result<Sealed> {
    let route = Route {
        src,
        dst,
        ident,
        hop_limit,
        traffic_class,
    };
    seal_with_payload(buf, packet_len, &route, None)
}

/// The addressing [`seal`] writes in front of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Route {
    /// Source IP address and UDP port.
    pub src: SocketAddr,
    /// Destination IP address and UDP port.
    pub dst: SocketAddr,
    /// IPv4 identification (unused for IPv6).
    pub ident: u16,
    /// TTL / hop limit.
    pub hop_limit: u8,
    /// TOS / traffic class.
    pub traffic_class: u8,
}

/// [`seal`], given the payload's CRC when the engine computed it while
/// copying the payload in (`payload`: where it is in the RoCE packet): the
/// ICRC then reads only the headers and pad ([`icrc::PayloadCrc`]).
pub fn seal_with_payload(
    buf: &mut [u8],
    packet_len: usize,
    route: &Route,
    payload: Option<icrc::PayloadCrc>,
) -> Result<Sealed> {
    let Route {
        src,
        dst,
        ident,
        hop_limit,
        traffic_class,
    } = *route;
    let ip = ip_header(src.ip(), dst.ip(), ident, hop_limit, traffic_class)?;
    let ip_start = HEADROOM - ip.header_len() - udp::HEADER_LEN;
    let udp_start = HEADROOM - udp::HEADER_LEN;
    let end = HEADROOM.checked_add(packet_len).ok_or(Error::BadLength)?;
    let datagram = buf.get_mut(ip_start..end).ok_or(Error::BufferTooSmall)?;
    let udp_repr = UdpRepr {
        src_port: src.port(),
        dst_port: dst.port(),
        checksum: false,
        payload_len: packet_len,
    };
    frame::seal_with_payload(&ip, &udp_repr, datagram, payload)?;
    Ok(Sealed {
        ip_start,
        udp_payload_start: udp_start + udp::HEADER_LEN,
        end,
    })
}

/// A received RoCE packet with its addressing, its ICRC checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Opened<'a> {
    /// Sender's IP and UDP port.
    pub src: SocketAddr,
    /// Our IP and UDP port.
    pub dst: SocketAddr,
    /// The RoCE packet (BTH .. ICRC).
    pub packet: &'a [u8],
}

/// A received RoCE packet with its addressing, its ICRC not yet checked:
/// [`check`](Self::check) it whole, or [`defer`](Self::defer) the check to
/// the pass that places the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unchecked<'a> {
    /// Sender's IP and UDP port.
    pub src: SocketAddr,
    /// Our IP and UDP port.
    pub dst: SocketAddr,
    /// The RoCE packet (BTH .. ICRC).
    pub packet: &'a [u8],
    headers: Headers<'a>,
}

/// The IP and UDP headers the ICRC covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Headers<'a> {
    /// The datagram's own (raw mode).
    Received { ip: &'a [u8], udp: &'a [u8] },
    /// The canonical ones built from the addresses (UDP mode).
    Canonical {
        bytes: [u8; HEADROOM],
        ip_len: usize,
    },
}

impl<'a> Unchecked<'a> {
    fn ip_and_udp(&self) -> Result<(&[u8], &[u8])> {
        match &self.headers {
            Headers::Received { ip, udp } => Ok((ip, udp)),
            Headers::Canonical { bytes, ip_len } => {
                let (ip, rest) = bytes.split_at_checked(*ip_len).ok_or(Error::Truncated)?;
                Ok((ip, rest.get(..udp::HEADER_LEN).ok_or(Error::Truncated)?))
            }
        }
    }

    /// The packet with its whole ICRC checked: `BadIcrc` on mismatch.
    pub fn check(&self) -> Result<Opened<'a>> {
        let (ip, udp_bytes) = self.ip_and_udp()?;
        icrc::verify(ip, udp_bytes, self.packet)?;
        Ok(Opened {
            src: self.src,
            dst: self.dst,
            packet: self.packet,
        })
    }

    /// The ICRC check of a packet whose payload is the `payload_len` bytes
    /// at `payload_offset` from its BTH, left for the payload's placement
    /// to finish ([`icrc::Deferred`]).
    pub fn defer(&self, payload_offset: usize, payload_len: usize) -> Result<icrc::Deferred> {
        let (ip, udp_bytes) = self.ip_and_udp()?;
        icrc::Deferred::new(ip, udp_bytes, self.packet, payload_offset, payload_len)
    }
}

/// Checks a whole received IP datagram (raw mode): IP and UDP headers, port
/// 4791, ICRC over the real headers.
pub fn open_ip(datagram: &[u8]) -> Result<Opened<'_>> {
    open_ip_unchecked(datagram)?.check()
}

/// [`open_ip`] but for the ICRC.
pub fn open_ip_unchecked(datagram: &[u8]) -> Result<Unchecked<'_>> {
    let ip = IpRepr::parse(datagram)?;
    let ip_len = ip.header_len();
    let (ip_bytes, rest) = datagram.split_at_checked(ip_len).ok_or(Error::Truncated)?;
    let rest = rest.get(..ip.payload_len()).ok_or(Error::Truncated)?;
    let view = udp::Packet::new_checked(rest)?;
    let u = UdpRepr::parse(&view, Some(&ip.pseudo_header()))?;
    if u.dst_port != ROCE_PORT {
        return Err(Error::NotRoce);
    }
    let (udp_bytes, packet) = rest
        .split_at_checked(udp::HEADER_LEN)
        .ok_or(Error::Truncated)?;
    let (src, dst) = match ip {
        IpRepr::Ipv4(r) => (IpAddr::from(r.src_addr), IpAddr::from(r.dst_addr)),
        IpRepr::Ipv6(r) => (IpAddr::from(r.src_addr), IpAddr::from(r.dst_addr)),
    };
    Ok(Unchecked {
        src: SocketAddr::new(src, u.src_port),
        dst: SocketAddr::new(dst, u.dst_port),
        packet,
        headers: Headers::Received {
            ip: ip_bytes,
            udp: udp_bytes,
        },
    })
}

/// Checks a UDP payload received through a socket (UDP mode): the ICRC over
/// the canonical header built from the addresses.
pub fn open_udp(src: SocketAddr, dst: SocketAddr, payload: &[u8]) -> Result<Opened<'_>> {
    open_udp_unchecked(src, dst, payload)?.check()
}

/// [`open_udp`] but for the ICRC.
pub fn open_udp_unchecked(
    src: SocketAddr,
    dst: SocketAddr,
    payload: &[u8],
) -> Result<Unchecked<'_>> {
    let ip = ip_header(src.ip(), dst.ip(), 0, 64, 0)?;
    let mut bytes = [0u8; HEADROOM];
    let ip_len = ip.header_len();
    let udp_len = udp::HEADER_LEN + payload.len();
    let (ip_bytes, udp_bytes) = bytes.split_at_mut(ip_len);
    ip.emit_header(udp_len, ip_bytes)?;
    let udp_bytes = udp_bytes
        .get_mut(..udp::HEADER_LEN)
        .ok_or(Error::BufferTooSmall)?;
    UdpRepr {
        src_port: src.port(),
        dst_port: dst.port(),
        checksum: false,
        payload_len: payload.len(),
    }
    .emit_header(&mut udp::Packet::new_unchecked(&mut *udp_bytes))?;
    Ok(Unchecked {
        src,
        dst,
        packet: payload,
        headers: Headers::Canonical { bytes, ip_len },
    })
}

/// The IB MTUs a RoCE path can use (IBA Vol 1 §9.7.5.1.5), largest first.
pub const IB_MTUS: [u32; 5] = [4096, 2048, 1024, 512, 256];

/// Bytes a RoCEv2 data packet adds around its payload inside the link's
/// IP MTU: IP header (20 for IPv4, 40 for IPv6), UDP 8, BTH 12, the largest
/// extended headers a payload-carrying RC packet has (RETH 16 and ImmDt 4:
/// RDMA WRITE Only with Immediate; IBA Vol 1 §9.2, Annex A17), ICRC 4.
pub const fn roce_overhead(ipv6: bool) -> u32 {
    (if ipv6 { 40 } else { 20 }) + 8 + 12 + 16 + 4 + 4
}

/// The largest IB MTU whose RoCEv2 packets fit in a link whose IP MTU is
/// `link_mtu` bytes (the MTU an interface reports: 1500 for standard
/// Ethernet), or `None` if not even 256 fits. 1500 gives 1024 and 9000
/// gives 4096, as Linux rxe derives its port's active MTU from its
/// netdev's (drivers/infiniband/sw/rxe/rxe.c `rxe_set_mtu`).
pub fn path_mtu_for_link(link_mtu: u32, ipv6: bool) -> Option<u32> {
    let room = link_mtu.checked_sub(roce_overhead(ipv6))?;
    IB_MTUS.into_iter().find(|&m| m <= room)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::frame::DatagramRepr;

    fn sample(buf: &mut [u8]) -> usize {
        // An RC ACK: BTH (12) + AETH (4) + ICRC (4).
        let pkt = [
            0x11, 0x00, 0xff, 0xff, 0x00, 0x00, 0x00, 0x11, 0x00, 0xb5, 0x5b, 0x8d, 0x1f, 0x00,
            0x00, 0x01, 0, 0, 0, 0,
        ];
        buf[HEADROOM..HEADROOM + pkt.len()].copy_from_slice(&pkt);
        pkt.len()
    }

    #[test]
    fn raw_mode_reproduces_the_worked_example_of_roce_md() {
        // IBA Annex A17 (ICRC); Linux rxe_icrc.c: rping-small frame 5, 10.9.0.2 -> 10.9.0.3, IP ID
        // 0x9079, UDP 55896 -> 4791, ICRC bytes eb 3f 6d 3b.
        let mut buf = [0u8; 128];
        let len = sample(&mut buf);
        let src: SocketAddr = "10.9.0.2:55896".parse().unwrap();
        let dst: SocketAddr = "10.9.0.3:4791".parse().unwrap();
        let s = seal(&mut buf, len, src, dst, 0x9079, 64, 0).unwrap();
        assert_eq!(&buf[s.end - 4..s.end], &[0xeb, 0x3f, 0x6d, 0x3b]);
        assert_eq!(
            &buf[s.ip_start..s.ip_start + 12],
            &[
                0x45, 0, 0, 0x30, 0x90, 0x79, 0x40, 0, 0x40, 0x11, 0x96, 0x2d
            ]
        );
        let opened = open_ip(&buf[s.ip_start..s.end]).unwrap();
        assert_eq!((opened.src, opened.dst), (src, dst));
        assert!(DatagramRepr::parse(&buf[s.ip_start..s.end]).is_ok());
        // Any flip of the packet is caught.
        buf[s.end - 6] ^= 1;
        assert_eq!(open_ip(&buf[s.ip_start..s.end]), Err(Error::BadIcrc));
    }

    #[test]
    fn udp_mode_round_trips_over_both_families() {
        for (src, dst) in [
            ("10.0.0.1:49152", "10.0.0.2:4791"),
            ("[fd00::1]:49152", "[fd00::2]:4791"),
        ] {
            let src: SocketAddr = src.parse().unwrap();
            let dst: SocketAddr = dst.parse().unwrap();
            let mut buf = [0u8; 128];
            let len = sample(&mut buf);
            let s = seal(&mut buf, len, src, dst, 0, 64, 0).unwrap();
            let payload = &buf[s.udp_payload_start..s.end];
            let opened = open_udp(src, dst, payload).unwrap();
            assert_eq!(opened.packet, payload);
            // The ICRC binds the ports and addresses.
            let other: SocketAddr = match src {
                SocketAddr::V4(_) => "10.0.0.9:49152".parse().unwrap(),
                SocketAddr::V6(_) => "[fd00::9]:49152".parse().unwrap(),
            };
            assert_eq!(open_udp(other, dst, payload), Err(Error::BadIcrc));
            // Raw mode of the same datagram is exact too.
            assert!(open_ip(&buf[s.ip_start..s.end]).is_ok());
        }
    }

    #[test]
    fn mixed_families_and_short_buffers_are_errors() {
        let mut buf = [0u8; 128];
        let len = sample(&mut buf);
        let v4: SocketAddr = "10.0.0.1:1".parse().unwrap();
        let v6: SocketAddr = "[fd00::2]:4791".parse().unwrap();
        assert_eq!(seal(&mut buf, len, v4, v6, 0, 64, 0), Err(Error::Malformed));
        let mut short = [0u8; 40];
        assert_eq!(
            seal(
                &mut short,
                20,
                v4,
                "10.0.0.2:4791".parse().unwrap(),
                0,
                64,
                0
            ),
            Err(Error::BufferTooSmall)
        );
        assert!(open_ip(&[0x45]).is_err());
        assert!(open_udp(v4, "10.0.0.2:4791".parse().unwrap(), &[1, 2, 3]).is_err());
    }

    #[test]
    fn link_mtus_give_the_largest_ib_mtu_that_fits() {
        assert_eq!(path_mtu_for_link(1500, false), Some(1024));
        assert_eq!(path_mtu_for_link(1500, true), Some(1024));
        assert_eq!(path_mtu_for_link(9000, false), Some(4096));
        assert_eq!(path_mtu_for_link(u32::MAX, true), Some(4096));
        // 2048 + 64 bytes of IPv4 RoCEv2 overhead: exactly fits.
        assert_eq!(path_mtu_for_link(2112, false), Some(2048));
        assert_eq!(path_mtu_for_link(2111, false), Some(1024));
        assert_eq!(path_mtu_for_link(2111 + 20, true), Some(1024));
        assert_eq!(path_mtu_for_link(2112 + 20, true), Some(2048));
        assert_eq!(path_mtu_for_link(256 + 64, false), Some(256));
        assert_eq!(path_mtu_for_link(256 + 63, false), None);
        assert_eq!(path_mtu_for_link(0, false), None);
    }
}
