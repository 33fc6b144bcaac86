//! One emulated Windows host running the real shell, start to finish:
//! DriverEntry (miniport and filter registration, NDK provider
//! characteristics), MiniportInitializeEx, FilterAttach to an emulated
//! physical NIC, restarts, the OID set NDIS and the NDK stack issue
//! (OID_NDK_SET_STATE with the PnP events that must follow, the NDK
//! statistics through the direct OID path), OpenNDKAdapter through the
//! registered provider characteristics, traffic through the filter in both
//! directions (TCP/IP on the NIC, the shell's own adapter, RoCEv2 for the
//! engine, receive indications with and without
//! NDIS_RECEIVE_FLAGS_RESOURCES), then pause, detach, halt and unload; the
//! host's contract checks must record no breach, every NBL must be back
//! with its owner, and nothing may leak.

mod support;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use ndis_host::machine::{self, BOUND};
use ndis_host::{contract, stack};
use ndis_sys::*;
use support::*;

const IP: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 1);
const NIC_IP: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 11);
const PEER: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 2);

/// A check that lets the run go on (so one run reports every defect).
fn check(ok: bool, what: impl FnOnce() -> String) {
    if !ok {
        contract::breach(what());
    }
}

fn wait(what: &str, mut cond: impl FnMut(&stack::Seen) -> bool) {
    let t0 = Instant::now();
    while !cond(&stack::stack().seen) {
        if t0.elapsed() > BOUND {
            contract::breach(format!("{what}: not within {BOUND:?}"));
            return;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn bring_up_traffic_and_teardown_keep_the_ndis_contract() {
    let t0 = Instant::now();
    let cfg = config(IP, NIC_IP, PEER);

    // DriverEntry: both registrations, the NDK provider handlers.
    assert_eq!(machine::boot(&cfg), 0, "DriverEntry");
    assert!(stack::stack().ndk.is_some(), "NDK provider characteristics");
    // The identity is seeded from the system RNG, at PASSIVE_LEVEL.
    assert_eq!(
        ndis_host::exports::RNG_CALLS.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "DriverEntry draws the identity seed from BCryptGenRandom once"
    );

    // The adapter, then the filter on the NIC.
    assert!(
        stack::stack().seen.event_log.is_empty(),
        "nothing logged when the filter registered"
    );
    assert_eq!(machine::initialize(cfg.luid), NDIS_STATUS_SUCCESS);
    // No datagram path before the filter attaches: NDK disabled, then
    // enabled by NetEventNDKEnable once it does.
    assert_eq!(
        stack::stack().ndk_attrs,
        Some(false),
        "NDK attributes: disabled without a filter"
    );
    assert_eq!(machine::restart_miniport(), NDIS_STATUS_SUCCESS);
    assert_eq!(machine::attach_filter(&cfg), NDIS_STATUS_SUCCESS);
    assert_eq!(machine::restart_filter(), NDIS_STATUS_SUCCESS);
    machine::settle();
    check(
        stack::stack().seen.pnp == [ndis_host::NET_EVENT_NDK_ENABLE],
        || {
            format!(
                "events after the filter attached: {:?}",
                stack::stack().seen.pnp
            )
        },
    );

    // Every OID the adapter lists as supported answers a query or a set
    // (NDIS queries the list, then uses it).
    let supported = stack::stack().supported_oids.clone();
    for oid in [
        ndkpi::OID_NDK_SET_STATE,
        ndkpi::OID_NDK_STATISTICS,
        ndkpi::OID_NDK_CONNECTIONS,
        ndkpi::OID_NDK_LOCAL_ENDPOINTS,
    ] {
        check(supported.contains(&oid), || {
            format!("{oid:#x} not in the supported OID list")
        });
    }
    let (st, list) = machine::query(OID_GEN_SUPPORTED_LIST);
    assert_eq!(st, NDIS_STATUS_SUCCESS);
    check(list.len() == supported.len() * 4, || {
        "OID_GEN_SUPPORTED_LIST differs from the attributes' list".into()
    });
    for &oid in &supported {
        if oid == ndkpi::OID_NDK_SET_STATE || oid == OID_802_3_MULTICAST_LIST {
            continue; // set-only
        }
        let (st, _) = machine::query(oid);
        check(st == NDIS_STATUS_SUCCESS, || {
            format!("query of supported OID {oid:#x}: {st:#x}")
        });
    }
    // Mandatory for every NDIS 6 miniport (OID_GEN_STATISTICS reference
    // page), and NDK statistics come through the direct path.
    let (st, stats) = machine::query(OID_GEN_STATISTICS);
    check(st == NDIS_STATUS_SUCCESS && !stats.is_empty(), || {
        format!("mandatory OID_GEN_STATISTICS: {st:#x}")
    });
    let (st, _) = machine::query_with(true, ndkpi::OID_NDK_STATISTICS);
    check(st == NDIS_STATUS_SUCCESS, || {
        format!("OID_NDK_STATISTICS (direct): {st:#x}")
    });
    let mut filter = NDIS_PACKET_TYPE_DIRECTED.to_le_bytes();
    let (st, _, _) = machine::oid(
        false,
        NdisRequestSetInformation,
        OID_GEN_CURRENT_PACKET_FILTER,
        &mut filter,
    );
    assert_eq!(st, NDIS_STATUS_SUCCESS);

    // NDK: open through the registered characteristics, then a disable
    // with the adapter open (NDIS closes it inside the PnP event), enable,
    // open again.
    let a = machine::open_ndk().expect("OpenNDKAdapter");
    machine::on_disable(a, || {});
    let (st, ev) = machine::set_ndk_state(false);
    assert_eq!(st, NDIS_STATUS_SUCCESS);
    check(ev == [ndis_host::NET_EVENT_NDK_DISABLE], || {
        format!("disable events {ev:?}")
    });
    check(machine::open_ndk().is_err(), || {
        "NDK open succeeded while disabled".into()
    });
    let (st, ev) = machine::set_ndk_state(true);
    assert_eq!(st, NDIS_STATUS_SUCCESS);
    check(ev == [ndis_host::NET_EVENT_NDK_ENABLE], || {
        format!("enable events {ev:?}")
    });
    let a = machine::open_ndk().expect("OpenNDKAdapter after enable");

    // Traffic. TCP/IP on the NIC sends through the filter.
    let tcp_out: Vec<Vec<u8>> = (0..40)
        .map(|i| to_peer(NIC_IP, PEER, 6, &tcp(50_000, 445, i)))
        .collect();
    stack::phys_send(&tcp_out);
    // Frames from the wire: for the NIC's own stack, for the shell's
    // adapter (its IP), RoCEv2 for the engine, a broadcast ARP for the
    // adapter; with and without NDIS_RECEIVE_FLAGS_RESOURCES.
    let for_nic = from_peer(PEER, NIC_IP, 6, &tcp(445, 50_000, 1));
    let for_virt = from_peer(PEER, IP, 6, &tcp(445, 50_001, 2));
    let roce = from_peer(PEER, IP, 17, &udp(49_152, 4791, &[0u8; 40]));
    let arp = arp_request(PEER_MAC, PEER, IP);
    for resources in [false, true] {
        stack::wire_receive(
            vec![
                for_nic.clone(),
                for_virt.clone(),
                roce.clone(),
                arp.clone(),
                for_nic.clone(),
            ],
            resources,
        );
    }
    // The shell's adapter's own IP stack sends (ARP reply, a TCP segment):
    // the filter puts them on the wire with the NIC's MAC.
    let virt_mac = {
        let (st, mac) = machine::query(OID_802_3_CURRENT_ADDRESS);
        assert_eq!(st, NDIS_STATUS_SUCCESS);
        <[u8; 6]>::try_from(&mac[..]).expect("6-byte MAC")
    };
    let virt_out = eth(
        PEER_MAC,
        virt_mac,
        0x0800,
        &ipv4(IP, PEER, 6, &tcp(50_002, 445, 3)),
    );
    stack::virt_send(&vec![virt_out.clone(); 5], 0);
    stack::virt_send(&vec![virt_out.clone(); 5], 2);

    machine::settle();
    wait("every TCP/IP send on the NIC completed to TCP/IP", |s| {
        s.phys_completed == s.phys_sent
    });
    wait("every send on the shell's adapter completed", |s| {
        s.virt_completed == s.virt_sent
    });
    wait("every receive indication of the NIC returned", |s| {
        s.nic_returned == s.nic_indicated
    });
    let seen = stack::stack().seen.clone();
    // The frames for the NIC's stack reached it, the adapter's frames
    // reached the adapter's stack (addressed to its own MAC), the
    // adapter's sends left with the NIC's MAC.
    let n = seen.phys_rx.iter().filter(|f| **f == for_nic).count();
    check(n == 4, || {
        format!("TCP/IP on the NIC received {n} of its 4 frames")
    });
    let to_virt = seen
        .virt_rx
        .iter()
        .filter(|f| f[..6] == virt_mac && f[12..] == for_virt[12..])
        .count();
    check(to_virt == 2, || {
        format!("the adapter received {to_virt} of its 2 unicast frames")
    });
    let wire_virt = seen
        .wire_tx
        .iter()
        .filter(|f| f[6..12] == NIC_MAC && f[12..] == virt_out[12..])
        .count();
    check(wire_virt == 10, || {
        format!("{wire_virt} of the adapter's 10 sends on the wire with the NIC's MAC")
    });

    // Teardown, as NDIS does it.
    machine::close_ndk(a);
    machine::pause(true);
    machine::detach_filter();
    machine::pause(false);
    machine::halt();
    let leaks = machine::unload();
    assert!(leaks.is_empty(), "left at unload: {leaks:?}");
    let outstanding = machine::outstanding();
    assert!(
        outstanding.is_empty(),
        "NBLs not back with their owner: {outstanding:?}"
    );
    let breaches = contract::breaches();
    assert!(breaches.is_empty(), "NDIS contract breaches: {breaches:#?}");
    eprintln!("bring-up to unload in {:?}", t0.elapsed());
}
