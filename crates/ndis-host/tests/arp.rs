//! ARP (RFC 826) through the real shell, with no neighbor configured: what
//! lets a real peer on a TAP wire (tests/tap_interop.rs) reach the
//! emulated Windows host.
//!
//! What must happen, each within 10 s: a broadcast request from the wire
//! for the shell's adapter address is answered by the adapter's IP stack
//! through the shell's filter, leaving with the NIC's MAC as sender (the
//! filter's translation, crates/miniport/src/frame.rs); a request for the
//! NIC's own address is answered by the NIC's stack; an NdkConnect to an
//! unknown peer makes the shell resolve it (ResolveIpNetEntry2), which puts
//! an ARP request for the peer on the wire, and once the peer's reply
//! arrives the CM REQ leaves addressed to the peer's MAC. A peer nobody
//! answers for is asked three times, at least 0.9 s apart (ResolveIpNetEntry2
//! gives up after three seconds). No contract breach, nothing left at
//! unload.

mod support;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use ndis_host::arp::{self, Arp, OP_REPLY, OP_REQUEST};
use ndis_host::{machine, stack};
use ndkpi::STATUS_PENDING;
use support::ndk::{self, Ev, Memory};
use support::*;

const IP: Ipv4Addr = Ipv4Addr::new(10, 9, 6, 1);
const NIC_IP: Ipv4Addr = Ipv4Addr::new(10, 9, 6, 11);
const PEER: Ipv4Addr = Ipv4Addr::new(10, 9, 6, 2);
const PEER2: Ipv4Addr = Ipv4Addr::new(10, 9, 6, 3);
const PEER2_MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x10, 0x00, 0x03];
/// Nobody answers for it.
const SILENT: Ipv4Addr = Ipv4Addr::new(10, 9, 6, 4);

/// The first ARP packet on the wire (from index `from`) that `f` accepts.
fn on_wire(what: &str, from: usize, f: impl Fn(&[u8], &Arp) -> bool) -> (usize, Vec<u8>) {
    wait_on_wire(what, || {
        stack::stack()
            .seen
            .wire_tx
            .iter()
            .enumerate()
            .skip(from)
            .find_map(|(i, fr)| arp::parse(fr).filter(|a| f(fr, a)).map(|_| (i, fr.clone())))
    })
}

/// A CM REQ (UDP 4791, MAD attribute 0x0010) on the wire to `mac`.
fn req_to(mac: [u8; 6]) -> bool {
    const MAD: usize = 14 + 20 + 8 + 12 + 8;
    stack::stack().seen.wire_tx.iter().any(|f| {
        f.len() > MAD + 18
            && f[..6] == mac
            && f[12..14] == [0x08, 0x00]
            && f[23] == 17
            && f[36..38] == 4791u16.to_be_bytes()
            && u16::from_be_bytes([f[MAD + 16], f[MAD + 17]]) == 0x0010
    })
}

#[test]
fn the_stacks_answer_arp_and_the_shell_resolves_its_peer_by_arp() {
    let mut cfg = config(IP, NIC_IP, PEER);
    cfg.neighbors.clear();
    bring_up(&cfg);

    // A peer asks for the adapter's address, then for the NIC's.
    stack::wire_receive(vec![arp_request(PEER_MAC, PEER, IP)], false);
    let (_, f) = on_wire("the adapter's ARP reply", 0, |_, a| {
        a.op == OP_REPLY && a.spa == IP
    });
    let a = arp::parse(&f).expect("ARP");
    assert_eq!(&f[..6], &PEER_MAC, "unicast to the asker");
    assert_eq!(&f[6..12], &NIC_MAC, "the NIC's MAC as Ethernet source");
    assert_eq!((a.sha, a.tha, a.tpa), (NIC_MAC, PEER_MAC, PEER), "{a:?}");
    stack::wire_receive(vec![arp_request(PEER_MAC, PEER, NIC_IP)], true);
    let (_, f) = on_wire("the NIC's ARP reply", 0, |_, a| {
        a.op == OP_REPLY && a.spa == NIC_IP
    });
    let a = arp::parse(&f).expect("ARP");
    assert_eq!((a.sha, a.tha, a.tpa), (NIC_MAC, PEER_MAC, PEER), "{a:?}");

    // The engine connects to a peer nobody configured: the shell resolves it.
    let ad = machine::open_ndk().expect("OpenNDKAdapter");
    let mut s = ndk::side(ad, 100, Memory::chain(&[4096])).expect("objects");
    let to = SocketAddrV4::new(PEER2, 445);
    assert_eq!(
        s.start_connect(SocketAddrV4::new(IP, 0), to, 150),
        STATUS_PENDING
    );
    let (at, f) = on_wire("the shell's ARP request for its peer", 0, |f, a| {
        a.op == OP_REQUEST && a.tpa == PEER2 && f[..6] == [0xff; 6]
    });
    let a = arp::parse(&f).expect("ARP");
    assert_eq!(
        (a.sha, a.spa),
        (NIC_MAC, IP),
        "asked from the adapter's address with the NIC's MAC: {a:?}"
    );
    let reply = arp::frame(
        NIC_MAC,
        &Arp {
            op: OP_REPLY,
            sha: PEER2_MAC,
            spa: PEER2,
            tha: NIC_MAC,
            tpa: IP,
        },
    );
    stack::wire_receive(vec![reply], false);
    // The REQ sent before resolution was dropped; a new connect's leaves at
    // once, to the peer's MAC.
    std::thread::sleep(Duration::from_millis(300));
    ndk::close(s.connector, 151).expect("close the first connector");
    ndk::wait_for("the first connect's completion", |l| {
        l.iter()
            .any(|e| matches!(e, Ev::Request(c, _) if *c == 150))
    })
    .expect("the cancelled connect completes");
    assert_eq!(
        s.start_connect(SocketAddrV4::new(IP, 0), to, 160),
        STATUS_PENDING
    );
    let t0 = Instant::now();
    while !req_to(PEER2_MAC) {
        assert!(
            t0.elapsed() < machine::BOUND,
            "no CM REQ to the resolved MAC within {:?}",
            machine::BOUND
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    eprintln!(
        "ARP request at wire frame {at}; REQ to the resolved MAC {:?} after the second connect",
        t0.elapsed()
    );
    s.close_all(170).expect("close");

    // A peer nobody answers for: three requests, a second apart.
    let mut s = ndk::side(ad, 200, Memory::chain(&[4096])).expect("objects");
    let to = SocketAddrV4::new(SILENT, 445);
    assert_eq!(
        s.start_connect(SocketAddrV4::new(IP, 0), to, 250),
        STATUS_PENDING
    );
    let mut times = Vec::new();
    let mut from = 0;
    while times.len() < 3 {
        let (i, _) = on_wire("an ARP request for the silent peer", from, |f, a| {
            a.op == OP_REQUEST && a.tpa == SILENT && f[..6] == [0xff; 6]
        });
        times.push(Instant::now());
        from = i + 1;
    }
    for w in times.windows(2) {
        let gap = w[1] - w[0];
        assert!(
            gap >= Duration::from_millis(900),
            "ARP retries {gap:?} apart"
        );
    }
    eprintln!(
        "silent peer: requests {:?} and {:?} apart",
        times[1] - times[0],
        times[2] - times[1]
    );
    let seen = stack::stack().seen.clone();
    assert!(
        seen.arp_requests >= 4 && seen.arp_replies >= 2,
        "{} request(s), {} reply(ies)",
        seen.arp_requests,
        seen.arp_replies
    );
    s.close_all(270).expect("close");
    machine::close_ndk(ad);
    support::detach_halt_and_check_clean();
}
