//! The RoCE path MTU comes from the bound NIC's MTU, as rxe takes its
//! port's from its netdev (drivers/infiniband/sw/rxe/rxe.c `rxe_set_mtu`):
//! the largest IB MTU (256..4096, IBA Vol 1 §9.7.5.1.5) whose RoCEv2
//! packets fit the NIC's IP MTU, read with GetIfEntry2 (netioapi.h
//! MIB_IF_ROW2.Mtu) at FilterAttach and again at every FilterRestart.
//!
//! What must happen: on a NIC with a 9000-byte MTU, the CM REQ the shell
//! puts on the wire (within 10 s of NdkConnect) offers a path MTU of 4096
//! (REQ "Path Packet Payload MTU" = 5, IBA Vol 1 §12.6.5); after the NIC's
//! MTU drops to 1500 and its stack restarts, a new engine offers 1024
//! (= 3); then, with no restart and GetIfEntry2 still answering 1500, the
//! NIC indicates NDIS_STATUS_L2_MTU_SIZE_CHANGE to 9000 (ndis.h, NDIS
//! 6.50; FilterStatus at DISPATCH_LEVEL): the filter passes it up once and
//! the next engine offers 4096 (= 5); another status carrying the same
//! bytes changes nothing; no contract breach, nothing left at unload.

mod support;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::Ordering;
use std::time::Duration;

use ndis_host::{machine, stack};
use ndis_sys::*;
use ndkpi::STATUS_PENDING;
use support::ndk::{self, Ev, Memory};
use support::*;

const IP: Ipv4Addr = Ipv4Addr::new(10, 9, 5, 1);
const NIC_IP: Ipv4Addr = Ipv4Addr::new(10, 9, 5, 11);
const PEER: Ipv4Addr = Ipv4Addr::new(10, 9, 5, 2);

/// Offsets in an Ethernet/IPv4/UDP/BTH/DETH/MAD frame: the MAD header's
/// AttributeID (IBA Vol 1 §13.4.2, MAD offset 16) and the REQ's path MTU
/// nibble (IBA Vol 1 §12.6.5: byte 50 of the REQ, bits 7..4).
const MAD: usize = 14 + 20 + 8 + 12 + 8;
const ATTR_CONNECT_REQUEST: u16 = 0x0010;

fn reqs_on_wire() -> Vec<u8> {
    stack::stack()
        .seen
        .wire_tx
        .iter()
        .filter(|f| {
            f.len() > MAD + 24 + 51
                && f[12..14] == [0x08, 0x00]
                && f[23] == 17
                && f[36..38] == 4791u16.to_be_bytes()
                && u16::from_be_bytes([f[MAD + 16], f[MAD + 17]]) == ATTR_CONNECT_REQUEST
        })
        .map(|f| f[MAD + 24 + 50] >> 4)
        .collect()
}

/// Opens an NDK adapter, connects towards the peer over the wire, and
/// returns the path MTU code of the first REQ that left after the call.
fn offered_mtu(base: usize) -> u8 {
    let a = machine::open_ndk().expect("OpenNDKAdapter");
    let mut s = ndk::side(a, base, Memory::chain(&[4096])).expect("objects");
    // A first attempt makes the shell resolve the peer's MAC (its REQ may
    // be dropped meanwhile); it is cancelled by closing its connector.
    let to = SocketAddrV4::new(PEER, 445);
    assert_eq!(
        s.start_connect(SocketAddrV4::new(IP, 0), to, base + 50),
        STATUS_PENDING
    );
    std::thread::sleep(Duration::from_millis(200));
    ndk::close(s.connector, base + 51).expect("close the first connector");
    ndk::wait_for("the first connect's completion", |l| {
        l.iter()
            .any(|e| matches!(e, Ev::Request(c, _) if *c == base + 50))
    })
    .expect("the cancelled connect completes");
    let before = reqs_on_wire().len();
    assert_eq!(
        s.start_connect(SocketAddrV4::new(IP, 0), to, base + 60),
        STATUS_PENDING
    );
    let code = wait_on_wire("a CM REQ", || reqs_on_wire().get(before).copied());
    s.close_all(base + 70).expect("close");
    machine::close_ndk(a);
    code
}

#[test]
fn the_path_mtu_follows_the_nics_mtu() {
    let mut cfg = config(IP, NIC_IP, PEER);
    cfg.nic_mtu = 9000;
    bring_up(&cfg);
    let asked = ndis_host::exports::IF_ENTRY_CALLS.load(Ordering::SeqCst);
    assert!(
        asked >= 2,
        "GetIfEntry2 at attach and restart: {asked} call(s)"
    );

    assert_eq!(offered_mtu(100), 5, "a 9000-byte link: 4096");

    // The MTU drops; NDIS restarts the NIC's stack (the filter pauses and
    // restarts); the next engine uses the new MTU.
    machine::set_nic_mtu(1500);
    machine::pause(true);
    assert_eq!(machine::restart_filter(), NDIS_STATUS_SUCCESS);
    assert_eq!(offered_mtu(300), 3, "a 1500-byte link: 1024");

    // The MTU changes again, told by a status indication only.
    let up_before = stack::stack().filter_status_codes.clone();
    machine::indicate_status(NDIS_STATUS_L2_MTU_SIZE_CHANGE, &mut 9000u32.to_le_bytes());
    assert_eq!(
        offered_mtu(500),
        5,
        "NDIS_STATUS_L2_MTU_SIZE_CHANGE to 9000: 4096"
    );
    // NDIS_STATUS_LINK_STATE's code with MTU-like bytes: not an MTU.
    const LINK_STATE: NDIS_STATUS = 0x4001_0017;
    machine::indicate_status(LINK_STATE, &mut 1500u32.to_le_bytes());
    assert_eq!(offered_mtu(700), 5, "another status leaves the MTU");
    let mut want = up_before;
    want.extend([NDIS_STATUS_L2_MTU_SIZE_CHANGE, LINK_STATE]);
    assert_eq!(
        stack::stack().filter_status_codes,
        want,
        "both indications passed up, once each"
    );

    support::detach_halt_and_check_clean();
}
