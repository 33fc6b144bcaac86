//! Frames and the machine configuration the NDIS host tests share.
#![allow(dead_code)]

#[macro_use]
pub mod ndk;

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use ndis_host::machine::{self, Config};
use ndis_host::{NET_EVENT_NDK_ENABLE, stack};
use ndis_sys::{NDIS_STATUS_ADAPTER_NOT_READY, NDIS_STATUS_SUCCESS};

pub const NIC_MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x10, 0x00, 0x01];
pub const PEER_MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x10, 0x00, 0x02];
pub const BROADCAST: [u8; 6] = [0xff; 6];

pub fn config(ip: Ipv4Addr, nic_ip: Ipv4Addr, peer: Ipv4Addr) -> Config {
    Config {
        luid: 0x0006_0000_0100_0007,
        ip: IpAddr::V4(ip),
        nic_luid: 0x0006_0000_0200_0003,
        nic_mac: NIC_MAC,
        nic_ip: IpAddr::V4(nic_ip),
        nic_mtu: 1500,
        neighbors: vec![(IpAddr::V4(peer), PEER_MAC)],
    }
}

pub fn eth(dst: [u8; 6], src: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + payload.len());
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An IPv4 datagram from the peer's MAC to the NIC's.
pub fn from_peer(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, payload: &[u8]) -> Vec<u8> {
    eth(NIC_MAC, PEER_MAC, 0x0800, &ipv4(src, dst, proto, payload))
}

/// An IPv4 datagram from the NIC's MAC to the peer's.
pub fn to_peer(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, payload: &[u8]) -> Vec<u8> {
    eth(PEER_MAC, NIC_MAC, 0x0800, &ipv4(src, dst, proto, payload))
}

/// An IPv4 datagram (header checksum filled in).
pub fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, payload: &[u8]) -> Vec<u8> {
    let len = 20 + payload.len();
    let mut h = vec![
        0x45,
        0,
        (len >> 8) as u8,
        len as u8,
        0,
        1,
        0x40,
        0,
        64,
        proto,
        0,
        0,
    ];
    h.extend_from_slice(&src.octets());
    h.extend_from_slice(&dst.octets());
    let mut sum = 0u32;
    for c in h.chunks(2) {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    let c = !(sum as u16);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h.extend_from_slice(payload);
    h
}

/// A UDP datagram's bytes (checksum 0: optional in IPv4).
pub fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut u = Vec::new();
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    u
}

/// A TCP-ish segment (the shell only steers on addresses and ports).
pub fn tcp(sport: u16, dport: u16, seq: u32) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend_from_slice(&sport.to_be_bytes());
    t.extend_from_slice(&dport.to_be_bytes());
    t.extend_from_slice(&seq.to_be_bytes());
    t.extend_from_slice(&[0, 0, 0, 0, 0x50, 0x10, 0xff, 0xff, 0, 0, 0, 0]);
    t.extend_from_slice(&[0xab; 32]);
    t
}

/// An ARP request (Ethernet/IPv4) from `sha`/`spa` for `tpa`.
pub fn arp_request(sha: [u8; 6], spa: Ipv4Addr, tpa: Ipv4Addr) -> Vec<u8> {
    let mut a = vec![0, 1, 8, 0, 6, 4, 0, 1];
    a.extend_from_slice(&sha);
    a.extend_from_slice(&spa.octets());
    a.extend_from_slice(&[0; 6]);
    a.extend_from_slice(&tpa.octets());
    eth(BROADCAST, sha, 0x0806, &a)
}

/// Bring-up as NDIS does it: DriverEntry, MiniportInitializeEx,
/// MiniportRestart, FilterAttach and FilterRestart, each succeeding.
#[track_caller]
pub fn boot_and_attach(cfg: &Config) {
    assert_eq!(machine::boot(cfg), 0, "DriverEntry");
    assert_eq!(machine::initialize(cfg.luid), NDIS_STATUS_SUCCESS);
    assert_eq!(machine::restart_miniport(), NDIS_STATUS_SUCCESS);
    assert_eq!(machine::attach_filter(cfg), NDIS_STATUS_SUCCESS);
    assert_eq!(machine::restart_filter(), NDIS_STATUS_SUCCESS);
}

/// [`boot_and_attach`], then NetEventNDKEnable, the one PnP event, within
/// the host's bound.
#[track_caller]
pub fn bring_up(cfg: &Config) {
    boot_and_attach(cfg);
    assert!(stack::wait_until(machine::BOUND, |s| s.seen.pnp == [NET_EVENT_NDK_ENABLE]));
}

/// Polls `find` every 2 ms until it finds what `what` names on the wire,
/// within the host's bound.
#[track_caller]
pub fn wait_on_wire<T>(what: &str, mut find: impl FnMut() -> Option<T>) -> T {
    let t0 = Instant::now();
    loop {
        if let Some(hit) = find() {
            return hit;
        }
        assert!(
            t0.elapsed() < machine::BOUND,
            "{what}: not on the wire within {:?}",
            machine::BOUND
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// No NDK: NDIS opens no NDK adapter, and the shell's
/// OpenNDKAdapterHandler, called anyway, refuses with
/// NDIS_STATUS_ADAPTER_NOT_READY (`why`).
#[track_caller]
pub fn ndk_opens_refused(why: &str) {
    assert_eq!(
        machine::open_ndk().err(),
        Some(NDIS_STATUS_ADAPTER_NOT_READY)
    );
    assert_eq!(
        machine::open_ndk_unchecked().err(),
        Some(NDIS_STATUS_ADAPTER_NOT_READY),
        "{why}"
    );
}

/// The end every scenario shares: pause, detach the filter, restart, halt
/// and unload, then nothing may be left: no leak at unload, every NBL back
/// with its owner, no breach of the NDIS contract.
pub fn detach_halt_and_check_clean() {
    ndis_host::machine::pause(true);
    ndis_host::machine::detach_filter();
    ndis_host::machine::pause(false);
    ndis_host::machine::halt();
    let leaks = ndis_host::machine::unload();
    assert!(leaks.is_empty(), "left at unload: {leaks:?}");
    let out = ndis_host::machine::outstanding();
    assert!(out.is_empty(), "NBLs not back with their owner: {out:?}");
    let breaches = ndis_host::contract::breaches();
    assert!(breaches.is_empty(), "NDIS contract breaches: {breaches:#?}");
}
