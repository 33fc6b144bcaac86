//! Surprise removal of the NIC under the filter (NDIS pauses the filter
//! module, then detaches it) with connections open and traffic in flight.
//!
//! What must happen:
//! * the filter's pause completes within the host's bound (10 s) and only
//!   once every NBL it sent is back (FilterPause: "Pausing a Filter
//!   Module"); TCP/IP's sends through it all complete to TCP/IP, every
//!   receive indication comes back to the NIC, NdisFSendNetBufferListsComplete
//!   and return semantics hold (the host's contract checks), and no NBL is
//!   left anywhere;
//! * with the filter gone the adapter has no datagram path, so the shell
//!   disables NDK: NetEventNDKDisable within 10 s of the detach ("Enabling
//!   and Disabling NDK Functionality": a state change "by a success or
//!   failure in the adapter itself"); inside it the consumers flush, and
//!   every request outstanding (receives on one side, a send that could
//!   not leave on the other) completes exactly once with STATUS_CANCELLED
//!   (NDK_FN_FLUSH) within 10 s; NDIS closes the NDK adapters;
//! * while detached, NDK opens fail with NDIS_STATUS_ADAPTER_NOT_READY;
//! * when the NIC comes back and the filter attaches again,
//!   NetEventNDKEnable follows within 10 s and a new connection moves data;
//! * no contract breach, nothing left at unload.

mod support;

use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use ndis_host::{NET_EVENT_NDK_DISABLE, NET_EVENT_NDK_ENABLE, machine, stack};
use ndis_sys::*;
use ndkpi::STATUS_SUCCESS;
use support::ndk::{self, Flushed, Memory};
use support::*;

const IP: Ipv4Addr = Ipv4Addr::new(10, 9, 2, 1);
const NIC_IP: Ipv4Addr = Ipv4Addr::new(10, 9, 2, 11);
const PEER: Ipv4Addr = Ipv4Addr::new(10, 9, 2, 2);

fn pnp_reaches(want: &[u32], what: &str) {
    assert!(
        stack::wait_until(machine::BOUND, |s| s.seen.pnp == want),
        "{what}: events {:?}, want {want:?} within {:?}",
        stack::stack().seen.pnp,
        machine::BOUND
    );
}

#[test]
fn surprise_detach_with_connections_open_completes_every_request_once_and_leaks_nothing() {
    let cfg = config(IP, NIC_IP, PEER);
    boot_and_attach(&cfg);
    pnp_reaches(&[NET_EVENT_NDK_ENABLE], "after the attach");

    let (a, mut b) = ndk::connected_pair(IP, 1000, Memory::chain(&[8192]), Memory::chain(&[8192]))
        .expect("connect over the shell");
    ndk::transfer(&mut b, &a, 6000, 1500).expect("b to a");
    for i in 0..3 {
        assert_eq!(a.post_receive(1700 + i), STATUS_SUCCESS);
    }

    // Traffic in flight through the filter: TCP/IP sends on the NIC, and
    // frames from the wire (for the NIC's stack, RoCEv2 for the engine).
    let tcp_out: Vec<Vec<u8>> = (0..30)
        .map(|i| to_peer(NIC_IP, PEER, 6, &tcp(50_000, 445, i)))
        .collect();
    let for_nic = from_peer(PEER, NIC_IP, 6, &tcp(445, 50_000, 1));
    let roce = from_peer(PEER, IP, 17, &udp(49_152, 4791, &[0u8; 40]));
    stack::phys_send(&tcp_out);
    stack::wire_receive(vec![for_nic.clone(), roce.clone(), for_nic.clone()], false);
    stack::wire_receive(vec![roce.clone(), for_nic.clone()], true);

    // Surprise removal: NDIS pauses the module (bounded, checked by the
    // host), then detaches it.
    machine::pause(true);
    // Posted while the filter is paused: the send cannot leave.
    b.mem.fill(7);
    assert_eq!(b.post_send(1800, 100), STATUS_SUCCESS);
    let flushed = Arc::new(Mutex::new(Flushed::default()));
    machine::on_disable(
        a.adapter,
        ndk::release_on_disable(vec![a, b], vec![3, 1], Arc::clone(&flushed)),
    );
    let t0 = Instant::now();
    machine::detach_filter();
    pnp_reaches(
        &[NET_EVENT_NDK_ENABLE, NET_EVENT_NDK_DISABLE],
        "after the detach",
    );
    eprintln!(
        "detach to NDK disabled and every consumer closed: {:?}",
        t0.elapsed()
    );
    let f = std::mem::take(&mut *flushed.lock().unwrap());
    assert!(f.errors.is_empty(), "{:?}", f.errors);
    assert_eq!(
        f.cancelled(),
        [(1001, 1700), (1001, 1701), (1001, 1702), (1101, 1800)],
        "every outstanding request completed exactly once"
    );
    assert!(
        stack::open_ndk().is_empty(),
        "NDIS closed every NDK adapter"
    );
    ndk_opens_refused("no datagram path: the shell refuses an NDK open");

    // Everything TCP/IP sent came back to it, every indication returned.
    machine::settle();
    let seen = stack::stack().seen.clone();
    assert_eq!(
        seen.phys_completed, seen.phys_sent,
        "TCP/IP's sends completed"
    );
    assert_eq!(
        seen.nic_returned, seen.nic_indicated,
        "the NIC's indications returned"
    );
    let out = machine::outstanding();
    assert!(out.is_empty(), "NBLs not back with their owner: {out:?}");

    // The NIC comes back.
    assert_eq!(machine::attach_filter(&cfg), NDIS_STATUS_SUCCESS);
    assert_eq!(machine::restart_filter(), NDIS_STATUS_SUCCESS);
    pnp_reaches(
        &[
            NET_EVENT_NDK_ENABLE,
            NET_EVENT_NDK_DISABLE,
            NET_EVENT_NDK_ENABLE,
        ],
        "after the filter attached again",
    );
    let (mut a, mut b) =
        ndk::connected_pair(IP, 3000, Memory::chain(&[4096]), Memory::chain(&[4096]))
            .expect("connect after the NIC came back");
    ndk::transfer(&mut a, &b, 4096, 3500).expect("a to b after the NIC came back");
    ndk::close_pair(&mut a, &mut b, 3900, 3950);

    support::detach_halt_and_check_clean();
}
