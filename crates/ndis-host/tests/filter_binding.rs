//! What the filter binds to: NDIS offers FilterAttach every binding the
//! filter INF allows; the filter takes one physical Ethernet NIC.
//!
//! What must happen (FilterAttach reference page: a filter that declines a
//! binding returns an error status and NDIS bypasses it):
//! * an attach to the ndkrs adapter itself (its NET_LUID) is refused with
//!   NDIS_STATUS_NOT_SUPPORTED: carrying the adapter's frames over itself
//!   would loop;
//! * an attach to a NIC whose medium is not 802.3 is refused likewise;
//! * after those, NDK is still disabled and no NDK event was signalled;
//! * the attach to the physical NIC succeeds and enables NDK
//!   (NetEventNDKEnable within 10 s);
//! * an attach to a second physical NIC while bound is refused, and the
//!   first binding still carries the adapter's frames;
//! * no contract breach; nothing a refused attach allocated is left at
//!   unload.

mod support;

use std::net::Ipv4Addr;

use ndis_host::{NET_EVENT_NDK_ENABLE, machine, stack};
use ndis_sys::*;
use support::*;

const IP: Ipv4Addr = Ipv4Addr::new(10, 9, 9, 1);
const NIC_IP: Ipv4Addr = Ipv4Addr::new(10, 9, 9, 11);
const PEER: Ipv4Addr = Ipv4Addr::new(10, 9, 9, 2);
/// `NdisMediumNative802_11` (ntddndis.h NDIS_MEDIUM).
const NATIVE_802_11: u32 = 16;

#[test]
fn the_filter_binds_one_physical_ethernet_nic_and_never_the_adapter() {
    let cfg = config(IP, NIC_IP, PEER);
    assert_eq!(machine::boot(&cfg), 0, "DriverEntry");
    assert_eq!(machine::initialize(cfg.luid), NDIS_STATUS_SUCCESS);
    assert_eq!(machine::restart_miniport(), NDIS_STATUS_SUCCESS);
    let virt_mac = {
        let (st, mac) = machine::query(OID_802_3_CURRENT_ADDRESS);
        assert_eq!(st, NDIS_STATUS_SUCCESS);
        <[u8; 6]>::try_from(&mac[..]).expect("6-byte MAC")
    };

    assert_eq!(
        machine::attach_filter_to(cfg.luid, virt_mac, NdisMedium802_3),
        NDIS_STATUS_NOT_SUPPORTED,
        "the ndkrs adapter itself"
    );
    assert_eq!(
        machine::attach_filter_to(
            0x0047_0000_0300_0001,
            [2, 0, 0x5e, 0x10, 0, 9],
            NATIVE_802_11
        ),
        NDIS_STATUS_NOT_SUPPORTED,
        "a native 802.11 NIC"
    );
    machine::settle();
    {
        let s = stack::stack();
        assert_eq!(s.ndk_attrs, Some(false), "NDK still disabled");
        assert!(s.seen.pnp.is_empty(), "no NDK event: {:?}", s.seen.pnp);
    }

    assert_eq!(machine::attach_filter(&cfg), NDIS_STATUS_SUCCESS);
    assert_eq!(machine::restart_filter(), NDIS_STATUS_SUCCESS);
    assert!(
        stack::wait_until(machine::BOUND, |s| s.seen.pnp == [NET_EVENT_NDK_ENABLE]),
        "NetEventNDKEnable after the NIC's attach: {:?}",
        stack::stack().seen.pnp
    );
    assert_eq!(
        machine::attach_filter_to(
            0x0006_0000_0200_0009,
            [2, 0, 0x5e, 0x10, 0, 7],
            NdisMedium802_3
        ),
        NDIS_STATUS_NOT_SUPPORTED,
        "a second physical NIC"
    );

    // The first binding still carries the adapter's frames.
    machine::settle();
    let for_virt = from_peer(PEER, IP, 6, &tcp(445, 50_001, 2));
    stack::wire_receive(vec![for_virt.clone()], false);
    machine::settle();
    let got = stack::stack()
        .seen
        .virt_rx
        .iter()
        .filter(|f| f[..6] == virt_mac && f[6..] == for_virt[6..])
        .count();
    assert_eq!(got, 1, "the adapter's frame through the bound NIC");

    support::detach_halt_and_check_clean();
}
