//! Pauses that must wait: NDIS pauses a module only once every NBL it
//! owns is back ("Pausing an Adapter", "Pausing a Filter Module").
//!
//! What must happen:
//! * the adapter's receive indication is still held by the protocol above
//!   it when NDIS calls MiniportPause: the pause returns
//!   NDIS_STATUS_PENDING, the adapter stays Pausing, and NdisMPauseComplete
//!   comes only after the protocol returned the NBL (within 10 s);
//! * a frame the adapter's IP stack sent is still held by the NIC when NDIS
//!   calls FilterPause: the pause returns NDIS_STATUS_PENDING and
//!   NdisFPauseComplete comes only after the NIC completed the send (within
//!   10 s);
//! * both restart and carry traffic again; no contract breach, nothing left
//!   at unload.

mod support;

use std::net::Ipv4Addr;
use std::time::Duration;

use ndis_host::stack::ModState;
use ndis_host::{machine, stack};
use ndis_sys::*;
use support::*;

const IP: Ipv4Addr = Ipv4Addr::new(10, 9, 7, 1);
const NIC_IP: Ipv4Addr = Ipv4Addr::new(10, 9, 7, 11);
const PEER: Ipv4Addr = Ipv4Addr::new(10, 9, 7, 2);

/// How long the test looks at a pending pause before it lets the NBLs go.
const LOOK: Duration = Duration::from_millis(300);

fn counts() -> String {
    let s = stack::stack();
    format!(
        "{} indicated to the adapter, {} on the wire, {} held",
        s.seen.virt_rx.len(),
        s.seen.wire_tx.len(),
        s.held()
    )
}

fn state(filter: bool) -> ModState {
    let s = stack::stack();
    if filter {
        s.filter.state
    } else {
        s.miniport.state
    }
}

/// Pauses `filter` (or the adapter) on another thread while the NBLs are
/// held; checks it is still pausing after [`LOOK`], lets the NBLs go, and
/// returns the pause's status once it completed.
fn pause_while_held(filter: bool) -> NDIS_STATUS {
    let t = std::thread::spawn(move || machine::pause(filter));
    // NDIS has called the pause handler (the module left Running) ...
    assert!(
        stack::wait_until(machine::BOUND, |s| {
            let m = if filter { &s.filter } else { &s.miniport };
            m.state != ModState::Running
        }),
        "the pause started (filter: {filter})"
    );
    // ... and it must not complete while the NBLs are held.
    std::thread::sleep(LOOK);
    assert_eq!(
        state(filter),
        ModState::Pausing,
        "paused with NBLs outstanding (filter: {filter})"
    );
    stack::hold_returns(false);
    let st = t.join().expect("the pause thread");
    assert_eq!(state(filter), ModState::Paused, "filter: {filter}");
    st
}

#[test]
fn pauses_pend_until_every_nbl_is_back() {
    let cfg = config(IP, NIC_IP, PEER);
    bring_up(&cfg);
    // The restart's address refresh (a work item) is done.
    machine::settle();

    // The adapter: its protocol keeps a receive indication.
    let for_virt = from_peer(PEER, IP, 6, &tcp(445, 50_001, 1));
    stack::hold_returns(true);
    stack::wire_receive(vec![for_virt.clone()], false);
    assert!(
        stack::wait_until(machine::BOUND, |s| s.seen.virt_rx.len() == 1
            && s.held() == 1),
        "the adapter indicated the frame and its protocol holds it: {}",
        counts()
    );
    assert_eq!(
        pause_while_held(false),
        NDIS_STATUS_PENDING,
        "MiniportPause"
    );
    assert_eq!(machine::restart_miniport(), NDIS_STATUS_SUCCESS);

    // The filter: the NIC keeps a frame the adapter's IP stack sent.
    let virt_mac = {
        let (st, mac) = machine::query(OID_802_3_CURRENT_ADDRESS);
        assert_eq!(st, NDIS_STATUS_SUCCESS);
        <[u8; 6]>::try_from(&mac[..]).expect("6-byte MAC")
    };
    let out = eth(
        PEER_MAC,
        virt_mac,
        0x0800,
        &ipv4(IP, PEER, 6, &tcp(50_002, 445, 2)),
    );
    stack::hold_returns(true);
    stack::virt_send(std::slice::from_ref(&out), 0);
    assert!(
        stack::wait_until(machine::BOUND, |s| s.seen.wire_tx.len() == 1
            && s.held() == 1),
        "the frame reached the NIC and the NIC holds it: {}",
        counts()
    );
    assert_eq!(pause_while_held(true), NDIS_STATUS_PENDING, "FilterPause");
    assert_eq!(machine::restart_filter(), NDIS_STATUS_SUCCESS);

    // Both carry traffic again.
    stack::virt_send(std::slice::from_ref(&out), 0);
    stack::wire_receive(vec![for_virt], false);
    machine::settle();
    let seen = stack::stack().seen.clone();
    assert_eq!(seen.wire_tx.len(), 2, "the second send on the wire");
    assert_eq!(seen.virt_rx.len(), 2, "the second frame at the adapter");
    assert!(stack::wait_until(machine::BOUND, |s| s.seen.virt_completed
        == s.seen.virt_sent));

    support::detach_halt_and_check_clean();
}
