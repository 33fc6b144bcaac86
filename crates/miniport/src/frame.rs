//! Ethernet framing and receive steering of the datagram path (portable).
//!
//! The filter on the physical NIC sees every received frame and decides:
//! RoCEv2 (UDP/4791) to one of the virtual adapter's addresses goes to the
//! engine; other frames that belong to the virtual adapter (ARP about its
//! IPv4 addresses, IP to its addresses, broadcast ARP/ND traffic) are copied
//! up the virtual miniport; everything else passes to the physical stack
//! untouched. The two adapters share the physical NIC's MAC address, so no
//! promiscuous mode is needed.

use core::net::IpAddr;

/// Ethernet header length (no VLAN tag: ndkrs sends untagged frames).
pub const ETH_HEADER: usize = 14;
pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_ARP: u16 = 0x0806;
pub const ETHERTYPE_IPV6: u16 = 0x86DD;
/// RoCEv2's UDP destination port.
pub const ROCE_PORT: u16 = 4791;

/// Where a received frame goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Steer {
    /// A RoCEv2 datagram for us: the IP datagram starts at this offset.
    Roce { ip_start: usize },
    /// A frame for the virtual adapter's IP stack only (consumed).
    Virtual,
    /// Broadcast/multicast: a copy to the virtual adapter, and the frame
    /// continues to the physical stack.
    Both,
    /// Not ours.
    Pass,
}

fn be16(f: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*f.get(at)?, *f.get(at + 1)?]))
}

fn ip_at(f: &[u8], at: usize, v6: bool) -> Option<IpAddr> {
    if v6 {
        let b: [u8; 16] = f.get(at..at + 16)?.try_into().ok()?;
        Some(IpAddr::from(b))
    } else {
        let b: [u8; 4] = f.get(at..at + 4)?.try_into().ok()?;
        Some(IpAddr::from(b))
    }
}

/// Classifies a received Ethernet frame against the virtual adapter's
/// addresses `ours`.
pub fn steer(frame: &[u8], ours: &[IpAddr]) -> Steer {
    let Some(ethertype) = be16(frame, 12) else {
        return Steer::Pass;
    };
    let group = frame.first().is_some_and(|b| b & 1 == 1);
    let mine = |ip: Option<IpAddr>| ip.is_some_and(|ip| ours.contains(&ip));
    match ethertype {
        ETHERTYPE_ARP => {
            // ARP for IPv4 over Ethernet: target protocol address at 24.
            // A reply to the virtual stack's request targets our IP too;
            // anything else is the physical stack's.
            match (mine(ip_at(frame, ETH_HEADER + 24, false)), group) {
                (true, true) => Steer::Both,
                (true, false) => Steer::Virtual,
                (false, _) => Steer::Pass,
            }
        }
        ETHERTYPE_IPV4 => {
            let ip = ETH_HEADER;
            let Some(&vihl) = frame.get(ip) else {
                return Steer::Pass;
            };
            if vihl >> 4 != 4 {
                return Steer::Pass;
            }
            let ihl = usize::from(vihl & 0xF) * 4;
            if !mine(ip_at(frame, ip + 16, false)) {
                return if group { Steer::Both } else { Steer::Pass };
            }
            let proto = frame.get(ip + 9).copied();
            let frag = be16(frame, ip + 6).unwrap_or(0) & 0x3FFF;
            if proto == Some(17) && frag == 0 && be16(frame, ip + ihl + 2) == Some(ROCE_PORT) {
                Steer::Roce { ip_start: ip }
            } else {
                Steer::Virtual
            }
        }
        ETHERTYPE_IPV6 => {
            let ip = ETH_HEADER;
            let dst = ip_at(frame, ip + 24, true);
            if group {
                // Neighbor discovery and other multicast: both stacks.
                return Steer::Both;
            }
            if !mine(dst) {
                return Steer::Pass;
            }
            // No extension headers on RoCEv2 packets (IBA Annex A17 (RoCEv2 encapsulation); Linux rxe_net.c).
            if frame.get(ip + 6) == Some(&17) && be16(frame, ip + 40 + 2) == Some(ROCE_PORT) {
                Steer::Roce { ip_start: ip }
            } else {
                Steer::Virtual
            }
        }
        _ => Steer::Pass,
    }
}

/// Writes an Ethernet header at `buf[..14]`; `false` if `buf` is shorter.
pub fn write_header(buf: &mut [u8], dst: [u8; 6], src: [u8; 6], ethertype: u16) -> bool {
    let Some(h) = buf.get_mut(..ETH_HEADER) else {
        return false;
    };
    let (d, rest) = h.split_at_mut(6);
    let (s, t) = rest.split_at_mut(6);
    d.copy_from_slice(&dst);
    s.copy_from_slice(&src);
    t.copy_from_slice(&ethertype.to_be_bytes());
    true
}

/// The ethertype of an IP datagram's version nibble.
pub fn ethertype_of(ip: &[u8]) -> Option<u16> {
    match ip.first()? >> 4 {
        4 => Some(ETHERTYPE_IPV4),
        6 => Some(ETHERTYPE_IPV6),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::Ipv4Addr;

    const US: [u8; 6] = [2, 0, 0, 0, 0, 1];

    fn v4_udp(dst: [u8; 4], dport: u16, group: bool) -> [u8; 42] {
        let mut f = [0u8; 42];
        write_header(
            &mut f,
            if group { [0xff; 6] } else { US },
            [2, 0, 0, 0, 0, 2],
            ETHERTYPE_IPV4,
        );
        f[14] = 0x45;
        f[14 + 6] = 0x40; // DF
        f[14 + 9] = 17;
        f[14 + 16..14 + 20].copy_from_slice(&dst);
        f[34 + 2..34 + 4].copy_from_slice(&dport.to_be_bytes());
        f
    }

    #[test]
    fn steers_roce_and_virtual_traffic() {
        let ours = [IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))];
        assert_eq!(
            steer(&v4_udp([10, 0, 0, 1], 4791, false), &ours),
            Steer::Roce { ip_start: 14 }
        );
        assert_eq!(
            steer(&v4_udp([10, 0, 0, 1], 445, false), &ours),
            Steer::Virtual
        );
        assert_eq!(
            steer(&v4_udp([10, 0, 0, 9], 4791, false), &ours),
            Steer::Pass
        );
        assert_eq!(
            steer(&v4_udp([10, 0, 0, 255], 4791, true), &ours),
            Steer::Both
        );
        // A fragment is not a RoCE packet: the virtual stack reassembles.
        let mut frag = v4_udp([10, 0, 0, 1], 4791, false);
        frag[14 + 6] = 0x20;
        assert_eq!(steer(&frag, &ours), Steer::Virtual);
        assert_eq!(steer(&[0u8; 5], &ours), Steer::Pass);
    }

    #[test]
    fn steers_arp_for_our_address() {
        let ours = [IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))];
        let mut arp = [0u8; 42];
        write_header(&mut arp, [0xff; 6], [2, 0, 0, 0, 0, 2], ETHERTYPE_ARP);
        arp[14 + 24..14 + 28].copy_from_slice(&[10, 0, 0, 1]);
        assert_eq!(steer(&arp, &ours), Steer::Both);
        arp[..6].copy_from_slice(&US);
        assert_eq!(steer(&arp, &ours), Steer::Virtual);
        arp[14 + 27] = 2;
        assert_eq!(steer(&arp, &ours), Steer::Pass);
    }

    #[test]
    fn steers_ipv6() {
        let us6: IpAddr = "fd00::1".parse().unwrap();
        let mut f = [0u8; 62];
        write_header(&mut f, US, [2, 0, 0, 0, 0, 2], ETHERTYPE_IPV6);
        f[14] = 0x60;
        f[14 + 6] = 17;
        f[14 + 24..14 + 40]
            .copy_from_slice(&"fd00::1".parse::<core::net::Ipv6Addr>().unwrap().octets());
        f[54 + 2..54 + 4].copy_from_slice(&4791u16.to_be_bytes());
        assert_eq!(steer(&f, &[us6]), Steer::Roce { ip_start: 14 });
        f[0] = 0x33;
        assert_eq!(steer(&f, &[us6]), Steer::Both);
    }

    #[test]
    fn header_and_ethertype() {
        let mut b = [0u8; 14];
        assert!(write_header(&mut b, [1; 6], [2; 6], ETHERTYPE_IPV6));
        assert_eq!(&b[12..], &[0x86, 0xDD]);
        assert!(!write_header(&mut b[..13], [1; 6], [2; 6], 0));
        assert_eq!(ethertype_of(&[0x45]), Some(ETHERTYPE_IPV4));
        assert_eq!(ethertype_of(&[0x60]), Some(ETHERTYPE_IPV6));
        assert_eq!(ethertype_of(&[]), None);
    }
}

/// Rewrites a frame the virtual adapter's IP stack sends so it can leave
/// through the physical NIC: its own MAC `virt` becomes the NIC's `phys`
/// in the Ethernet source and in an ARP sender hardware address. Returns
/// the IPv4 source (IP or ARP sender) so the shell can notice new
/// addresses.
pub fn translate_out(frame: &mut [u8], virt: [u8; 6], phys: [u8; 6]) -> Option<IpAddr> {
    swap_mac(frame, 6, virt, phys);
    match be16(frame, 12)? {
        ETHERTYPE_ARP => {
            swap_mac(frame, ETH_HEADER + 8, virt, phys);
            ip_at(frame, ETH_HEADER + 14, false)
        }
        ETHERTYPE_IPV4 => ip_at(frame, ETH_HEADER + 12, false),
        _ => None,
    }
}

/// The reverse of [`translate_out`] for a frame going up the virtual
/// adapter: the NIC's MAC as destination or ARP target becomes `virt`.
pub fn translate_in(frame: &mut [u8], phys: [u8; 6], virt: [u8; 6]) {
    swap_mac(frame, 0, phys, virt);
    if be16(frame, 12) == Some(ETHERTYPE_ARP) {
        swap_mac(frame, ETH_HEADER + 18, phys, virt);
    }
}

fn swap_mac(frame: &mut [u8], at: usize, from: [u8; 6], to: [u8; 6]) {
    if let Some(m) = frame.get_mut(at..at + 6)
        && *m == from
    {
        m.copy_from_slice(&to);
    }
}

#[cfg(test)]
mod translate_tests {
    use super::*;

    #[test]
    fn arp_round_trip() {
        let (virt, phys, peer) = (
            [2, 0x6e, 0, 0, 0, 1],
            [0, 0x15, 0x5d, 1, 2, 3],
            [0, 0x15, 0x5d, 9, 9, 9],
        );
        let mut req = [0u8; 42];
        write_header(&mut req, [0xff; 6], virt, ETHERTYPE_ARP);
        req[14 + 8..14 + 14].copy_from_slice(&virt);
        req[14 + 14..14 + 18].copy_from_slice(&[10, 0, 0, 1]);
        assert_eq!(
            translate_out(&mut req, virt, phys),
            Some(IpAddr::from([10, 0, 0, 1]))
        );
        assert_eq!(&req[6..12], &phys);
        assert_eq!(&req[22..28], &phys);
        let mut reply = [0u8; 42];
        write_header(&mut reply, phys, peer, ETHERTYPE_ARP);
        reply[14 + 18..14 + 24].copy_from_slice(&phys);
        translate_in(&mut reply, phys, virt);
        assert_eq!(&reply[..6], &virt);
        assert_eq!(&reply[32..38], &virt);
        assert_eq!(&reply[6..12], &peer, "the peer's address is untouched");
    }
}
