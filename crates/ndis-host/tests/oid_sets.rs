//! OID sets on the adapter: OID_GEN_NETWORK_LAYER_ADDRESSES makes the
//! shell read its addresses again (GetUnicastIpAddressTable), and the
//! filter steers frames by them; malformed and unknown requests are
//! refused.
//!
//! What must happen (OID_GEN_NETWORK_LAYER_ADDRESSES, OID_NDK_SET_STATE
//! and NDIS_OID_REQUEST reference pages):
//! * before the set, frames from the wire for an address the adapter does
//!   not have yet (IPv4 and IPv6) go to TCP/IP on the NIC only;
//! * the set completes with NDIS_STATUS_SUCCESS, BytesRead the whole
//!   buffer; after it (work queues drained) the same frames go to the
//!   adapter only, with the adapter's MAC as destination; an IPv6 frame for
//!   another host still goes to the NIC's stack only; IPv6 multicast
//!   (ff02::1) goes to both stacks;
//! * OID_NDK_SET_STATE with no buffer: NDIS_STATUS_INVALID_LENGTH,
//!   BytesNeeded 1; an OID the adapter does not support, queried or set,
//!   and a method request: NDIS_STATUS_NOT_SUPPORTED;
//! * no contract breach, nothing left at unload.

mod support;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ndis_host::{machine, stack};
use ndis_sys::*;
use support::*;

const IP: Ipv4Addr = Ipv4Addr::new(10, 9, 8, 1);
const NIC_IP: Ipv4Addr = Ipv4Addr::new(10, 9, 8, 11);
const PEER: Ipv4Addr = Ipv4Addr::new(10, 9, 8, 2);
const NEW4: Ipv4Addr = Ipv4Addr::new(10, 9, 8, 5);
const NEW6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 5);
const OTHER6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0x99);
const PEER6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2);
const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// An Ethernet/IPv6 frame carrying a TCP-ish segment.
fn ipv6_frame(dst_mac: [u8; 6], dst: Ipv6Addr) -> Vec<u8> {
    let payload = tcp(445, 50_000, 7);
    let mut ip = vec![0x60, 0, 0, 0];
    ip.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    ip.extend_from_slice(&[6, 64]);
    ip.extend_from_slice(&PEER6.octets());
    ip.extend_from_slice(&dst.octets());
    ip.extend_from_slice(&payload);
    eth(dst_mac, PEER_MAC, 0x86DD, &ip)
}

/// Where each frame went: (to TCP/IP on the NIC, to the adapter's stack),
/// counted from `from` on; the adapter's copy compared after its MAC.
fn delivered(frames: &[Vec<u8>], from: (usize, usize)) -> Vec<(usize, usize)> {
    machine::settle();
    let seen = stack::stack().seen.clone();
    frames
        .iter()
        .map(|f| {
            let phys = seen.phys_rx[from.0..].iter().filter(|g| *g == f).count();
            let virt = seen.virt_rx[from.1..]
                .iter()
                .filter(|g| g[6..] == f[6..])
                .count();
            (phys, virt)
        })
        .collect()
}

fn marks() -> (usize, usize) {
    let s = stack::stack();
    (s.seen.phys_rx.len(), s.seen.virt_rx.len())
}

#[test]
fn addresses_follow_the_set_and_bad_requests_are_refused() {
    let cfg = config(IP, NIC_IP, PEER);
    bring_up(&cfg);
    // The restart's address refresh (a work item) is done.
    machine::settle();

    let new4 = from_peer(PEER, NEW4, 6, &tcp(445, 50_000, 1));
    let new6 = ipv6_frame(NIC_MAC, NEW6);
    let other6 = ipv6_frame(NIC_MAC, OTHER6);
    let all_nodes = ipv6_frame([0x33, 0x33, 0, 0, 0, 1], ALL_NODES);

    // Not the adapter's addresses yet.
    let m = marks();
    stack::wire_receive(vec![new4.clone(), new6.clone()], false);
    assert_eq!(
        delivered(&[new4.clone(), new6.clone()], m),
        [(1, 0), (1, 0)],
        "before the set: TCP/IP on the NIC only"
    );

    // The adapter gets two addresses; TCP/IP tells it with the OID.
    {
        let mut s = stack::stack();
        s.addresses.push((cfg.luid, IpAddr::V4(NEW4)));
        s.addresses.push((cfg.luid, IpAddr::V6(NEW6)));
    }
    // NETWORK_ADDRESS_LIST with no entries (AddressCount 0, AddressType 0):
    // the shell reads the table itself, whatever the list holds.
    let mut list = [0u8; 8];
    let (st, read, _) = machine::oid(
        false,
        NdisRequestSetInformation,
        OID_GEN_NETWORK_LAYER_ADDRESSES,
        &mut list,
    );
    assert_eq!(st, NDIS_STATUS_SUCCESS, "OID_GEN_NETWORK_LAYER_ADDRESSES");
    assert_eq!(read, 8, "BytesRead");
    machine::settle();

    let m = marks();
    let frames = [new4, new6, other6, all_nodes];
    stack::wire_receive(frames.to_vec(), false);
    assert_eq!(
        delivered(&frames, m),
        [(0, 1), (0, 1), (1, 0), (1, 1)],
        "after the set: new IPv4, new IPv6 to the adapter; another IPv6 host \
         to the NIC's stack; all-nodes multicast to both"
    );

    // Malformed and unknown requests.
    let (st, _, needed) = machine::oid(
        false,
        NdisRequestSetInformation,
        ndkpi::OID_NDK_SET_STATE,
        &mut [],
    );
    assert_eq!(
        (st, needed),
        (NDIS_STATUS_INVALID_LENGTH, 1),
        "OID_NDK_SET_STATE without its BOOLEAN"
    );
    // OID_GEN_LINK_SPEED_EX (ntddndis.h 0x00010207): not in the list.
    const NOT_LISTED: NDIS_OID = 0x0001_0207;
    assert!(!stack::stack().supported_oids.contains(&NOT_LISTED));
    let mut buf = [0u8; 64];
    for kind in [NdisRequestQueryInformation, NdisRequestSetInformation] {
        let (st, _, _) = machine::oid(false, kind, NOT_LISTED, &mut buf);
        assert_eq!(st, NDIS_STATUS_NOT_SUPPORTED, "request type {kind}");
    }
    let (st, _, _) = machine::oid(true, NdisRequestMethod, OID_GEN_STATISTICS, &mut buf);
    assert_eq!(st, NDIS_STATUS_NOT_SUPPORTED, "a method request");

    support::detach_halt_and_check_clean();
}
