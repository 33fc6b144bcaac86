//! ARP (RFC 826, IPv4 over Ethernet) as the emulated machine's TCP/IP
//! stacks speak it: the stack bound to the shell's adapter answers
//! requests for the adapter's address and resolves neighbors for
//! ResolveIpNetEntry2 by asking on the wire; the stack on the physical NIC
//! answers for the NIC's own address. Both learn every sender they hear.
//!
//! This is what lets a real peer (the Linux VM of the interop harness, over
//! a TAP wire) reach the shell: on Windows the adapter's IP stack owns ARP
//! for the adapter's address and the filter bridges it to the wire
//! (docs/windows.md, crates/miniport/src/frame.rs).

use std::net::Ipv4Addr;

pub const ETHERTYPE_ARP: u16 = 0x0806;
pub const OP_REQUEST: u16 = 1;
pub const OP_REPLY: u16 = 2;

/// One ARP packet for IPv4 over Ethernet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arp {
    pub op: u16,
    pub sha: [u8; 6],
    pub spa: Ipv4Addr,
    pub tha: [u8; 6],
    pub tpa: Ipv4Addr,
}

/// The ARP packet an Ethernet frame carries, if it is one for IPv4 over
/// Ethernet (hardware type 1, protocol 0x0800, lengths 6 and 4).
pub fn parse(frame: &[u8]) -> Option<Arp> {
    if frame.len() < 14 + 28 || frame[12..14] != ETHERTYPE_ARP.to_be_bytes() {
        return None;
    }
    let a = &frame[14..14 + 28];
    if a[0..6] != [0, 1, 8, 0, 6, 4] {
        return None;
    }
    let mac = |at: usize| <[u8; 6]>::try_from(&a[at..at + 6]).ok();
    let ip = |at: usize| Ipv4Addr::new(a[at], a[at + 1], a[at + 2], a[at + 3]);
    Some(Arp {
        op: u16::from_be_bytes([a[6], a[7]]),
        sha: mac(8)?,
        spa: ip(14),
        tha: mac(18)?,
        tpa: ip(24),
    })
}

/// The Ethernet frame carrying `a`, to `dst`, from `a.sha`.
pub fn frame(dst: [u8; 6], a: &Arp) -> Vec<u8> {
    let mut f = Vec::with_capacity(42);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&a.sha);
    f.extend_from_slice(&ETHERTYPE_ARP.to_be_bytes());
    f.extend_from_slice(&[0, 1, 8, 0, 6, 4]);
    f.extend_from_slice(&a.op.to_be_bytes());
    f.extend_from_slice(&a.sha);
    f.extend_from_slice(&a.spa.octets());
    f.extend_from_slice(&a.tha);
    f.extend_from_slice(&a.tpa.octets());
    f
}

/// A broadcast request from `mac`/`ip` for `target`.
pub fn request(mac: [u8; 6], ip: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    frame(
        [0xff; 6],
        &Arp {
            op: OP_REQUEST,
            sha: mac,
            spa: ip,
            tha: [0; 6],
            tpa: target,
        },
    )
}

/// A neighbor a stack learns: its address and MAC.
pub type Learned = (Ipv4Addr, [u8; 6]);

/// What a stack owning `mine` (its MAC and address) does with a received
/// frame: the sender it learns (a request's or a reply's), and the reply
/// it sends when the frame is a request for `mine`.
pub fn handle(frame: &[u8], mine: ([u8; 6], Ipv4Addr)) -> (Option<Learned>, Option<Vec<u8>>) {
    let Some(a) = parse(frame) else {
        return (None, None);
    };
    let learn = (!a.spa.is_unspecified() && a.sha[0] & 1 == 0).then_some((a.spa, a.sha));
    let reply = (a.op == OP_REQUEST && a.tpa == mine.1).then(|| {
        self::frame(
            a.sha,
            &Arp {
                op: OP_REPLY,
                sha: mine.0,
                spa: mine.1,
                tha: a.sha,
                tpa: a.spa,
            },
        )
    });
    (learn, reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: [u8; 6] = [2, 0, 0x5e, 0, 0, 1];
    const PEER: [u8; 6] = [0x52, 0x54, 0, 0, 0, 2];

    #[test]
    fn answers_a_request_for_its_address_only_and_learns_the_sender() {
        let me = Ipv4Addr::new(10, 9, 0, 3);
        let peer = Ipv4Addr::new(10, 9, 0, 2);
        let req = request(PEER, peer, me);
        assert_eq!(req.len(), 42);
        let (learn, reply) = handle(&req, (ME, me));
        assert_eq!(learn, Some((peer, PEER)));
        let reply = reply.expect("a reply");
        let a = parse(&reply).expect("an ARP reply");
        assert_eq!(&reply[..6], &PEER, "unicast to the asker");
        assert_eq!(
            a,
            Arp {
                op: OP_REPLY,
                sha: ME,
                spa: me,
                tha: PEER,
                tpa: peer
            }
        );
        // Someone else's address: learned, not answered.
        let other = request(PEER, peer, Ipv4Addr::new(10, 9, 0, 9));
        assert_eq!(handle(&other, (ME, me)), (Some((peer, PEER)), None));
        // A reply is learned, never answered.
        assert_eq!(handle(&reply, (PEER, peer)), (Some((me, ME)), None));
        // Not ARP, or not IPv4 over Ethernet.
        let mut ip = req.clone();
        ip[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        assert_eq!(handle(&ip, (ME, me)), (None, None));
        let mut v6 = req.clone();
        v6[16..18].copy_from_slice(&0x86ddu16.to_be_bytes());
        assert_eq!(handle(&v6, (ME, me)), (None, None));
        assert_eq!(handle(&req[..41], (ME, me)), (None, None));
        // A probe (sender 0.0.0.0) teaches nothing.
        let probe = request(PEER, Ipv4Addr::UNSPECIFIED, me);
        assert!(handle(&probe, (ME, me)).0.is_none());
    }
}
