//! NDK disabled and enabled again while connections are open
//! (OID_NDK_SET_STATE, then NetEventNDKDisable / NetEventNDKEnable).
//!
//! What must happen (NDKPI reference pages "Enabling and Disabling NDK
//! Functionality", OID_NDK_SET_STATE, NDK_FN_FLUSH and "NDKPI Object
//! Lifetime Requirements"):
//! * the OID completes synchronously with NDIS_STATUS_SUCCESS, and the
//!   shell signals NetEventNDKDisable from outside MiniportOidRequest
//!   within the host's bound (10 s);
//! * inside that event NDIS has every consumer let go: each flushes its
//!   QPs, and every request outstanding on them completes exactly once,
//!   with STATUS_CANCELLED, within 10 s; the consumers close their objects
//!   and NDIS closes their NDK adapters; the event returns only then;
//! * while disabled, no NDK adapter opens: NDIS does not ask, and the
//!   shell's OpenNDKAdapterHandler refuses with NDIS_STATUS_ADAPTER_NOT_READY
//!   if called;
//! * after OID_NDK_SET_STATE(TRUE), NetEventNDKEnable follows within 10 s,
//!   adapters open, and a new connection moves data;
//! * throughout, the NDIS contract holds (no breach), and at unload no NBL,
//!   pool block or work item is left.

mod support;

use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use ndis_host::{NET_EVENT_NDK_DISABLE, NET_EVENT_NDK_ENABLE, machine, stack};
use ndis_sys::*;
use support::ndk::{self, Flushed, Memory};
use support::*;

const IP: Ipv4Addr = Ipv4Addr::new(10, 9, 1, 1);
const NIC_IP: Ipv4Addr = Ipv4Addr::new(10, 9, 1, 11);
const PEER: Ipv4Addr = Ipv4Addr::new(10, 9, 1, 2);

#[test]
fn ndk_disable_with_connections_open_flushes_closes_and_enable_connects_again() {
    let cfg = config(IP, NIC_IP, PEER);
    assert_eq!(machine::boot(&cfg), 0, "DriverEntry");
    assert_eq!(machine::initialize(cfg.luid), NDIS_STATUS_SUCCESS);
    assert_eq!(machine::restart_miniport(), NDIS_STATUS_SUCCESS);
    // The adapter came up before the filter: no datagram path yet, so NDK
    // is reported disabled, then enabled once the filter attaches.
    assert_eq!(
        stack::stack().ndk_attrs,
        Some(false),
        "NDK attributes before the filter"
    );
    assert_eq!(machine::attach_filter(&cfg), NDIS_STATUS_SUCCESS);
    assert_eq!(machine::restart_filter(), NDIS_STATUS_SUCCESS);
    assert!(
        stack::wait_until(machine::BOUND, |s| s.seen.pnp == [NET_EVENT_NDK_ENABLE]),
        "NetEventNDKEnable after the filter attached, within {:?}: {:?}",
        machine::BOUND,
        stack::stack().seen.pnp
    );

    // Two consumers, connected, moving data.
    let (mut a, mut b) =
        ndk::connected_pair(IP, 1000, Memory::chain(&[8192]), Memory::chain(&[8192]))
            .expect("connect over the shell");
    ndk::transfer(&mut b, &a, 3000, 1500).expect("b to a");
    ndk::transfer(&mut a, &b, 5000, 1600).expect("a to b");

    // Outstanding requests: 4 receives on a, 2 on b.
    for i in 0..4 {
        assert_eq!(a.post_receive(1700 + i), ndkpi::STATUS_SUCCESS);
    }
    for i in 0..2 {
        assert_eq!(b.post_receive(1800 + i), ndkpi::STATUS_SUCCESS);
    }
    let adapters = (a.adapter, b.adapter);
    let flushed = Arc::new(Mutex::new(Flushed::default()));
    machine::on_disable(
        adapters.0,
        ndk::release_on_disable(vec![a, b], vec![4, 2], Arc::clone(&flushed)),
    );

    // Disable.
    let t0 = Instant::now();
    let (st, ev) = machine::set_ndk_state(false);
    assert_eq!(st, NDIS_STATUS_SUCCESS, "OID_NDK_SET_STATE(FALSE)");
    assert_eq!(ev, [NET_EVENT_NDK_DISABLE], "the events after the OID");
    eprintln!(
        "disable with 2 connections open handled in {:?}",
        t0.elapsed()
    );
    let f = std::mem::take(&mut *flushed.lock().unwrap());
    assert!(f.errors.is_empty(), "{:?}", f.errors);
    assert_eq!(f.results.len(), 2, "both consumers flushed");
    let mut want: Vec<(usize, usize)> = (0..4).map(|i| (1001, 1700 + i)).collect();
    want.extend((0..2).map(|i| (1101, 1800 + i)));
    assert_eq!(
        f.cancelled(),
        want,
        "every outstanding request completed exactly once"
    );
    assert!(
        stack::open_ndk().is_empty(),
        "NDIS closed every NDK adapter"
    );

    // Disabled: no opens.
    ndk_opens_refused("the shell refuses an open while disabled by itself");

    // Enable, connect again, move data.
    let (st, ev) = machine::set_ndk_state(true);
    assert_eq!(st, NDIS_STATUS_SUCCESS);
    assert_eq!(ev, [NET_EVENT_NDK_ENABLE]);
    let (mut a, mut b) =
        ndk::connected_pair(IP, 3000, Memory::chain(&[4096]), Memory::chain(&[4096]))
            .expect("connect again after the enable");
    ndk::transfer(&mut b, &a, 4000, 3500).expect("b to a after the enable");
    ndk::close_pair(&mut a, &mut b, 3900, 3950);

    support::detach_halt_and_check_clean();
}
