//! Partitions, frozen and crashed nodes, per-link settings, the in-flight
//! hook and injection, and the driver's time and ordering rules.

mod support;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use netsim::{
    Config, Datagram, DropReason, Fault, Instant, LinkConfig, NodeId, NodeState, Simulator,
    TraceKind, Verdict,
};
use support::*;

const N: usize = 10;

fn perfect(seed: u64) -> Config {
    Config::new(seed)
}

/// (time, receiver) of every delivery.
fn deliveries(sim: &Simulator<Peer>) -> Vec<(Instant, NodeId)> {
    sim.trace()
        .iter()
        .filter_map(|e| match e.kind {
            TraceKind::Deliver { to, .. } => Some((e.at, to)),
            _ => None,
        })
        .collect()
}

/// Senders of datagrams dropped for `reason`.
fn dropped_from(sim: &Simulator<Peer>, reason: DropReason) -> Vec<Option<NodeId>> {
    let senders = senders(sim);
    sim.trace()
        .iter()
        .filter_map(|e| match e.kind {
            TraceKind::Drop { id, reason: r } if r == reason => Some(senders[&id]),
            _ => None,
        })
        .collect()
}

#[test]
fn partition_blocks_both_ways_for_its_duration() {
    let start = Instant::from_micros(100);
    let end = Instant::from_millis(3);
    netsim::sweep(20, |seed| {
        let link = LinkConfig::default().jitter(Duration::from_micros(15));
        let (mut sim, a, b) = pair(perfect(seed).with_link(link), N);
        sim.schedule(start, Fault::Partition(vec![a], vec![b]));
        sim.schedule(end, Fault::Heal);

        sim.run_until(start);
        assert!(sim.is_blocked(a, b) && sim.is_blocked(b, a));
        let before = deliveries(&sim).len();
        assert!(before > 0, "nothing crossed before the partition");
        assert!(!exchange_complete(&sim, a, b, N));

        sim.run_until(end - Duration::from_nanos(1));
        let during: Vec<_> = deliveries(&sim)
            .into_iter()
            .filter(|(t, _)| *t >= start)
            .collect();
        assert_eq!(during, [], "delivered across the partition");
        let blocked = dropped_from(&sim, DropReason::Partition);
        assert!(
            blocked.contains(&Some(a)) && blocked.contains(&Some(b)),
            "{blocked:?}"
        );

        sim.run_until_idle();
        assert!(!sim.is_blocked(a, b) && !sim.is_blocked(b, a));
        assert!(exchange_complete(&sim, a, b, N));
        assert!(deliveries(&sim).iter().any(|(t, _)| *t >= end));
        assert_conservation(&sim);
    });
}

#[test]
fn toggled_one_way_block_and_isolate() {
    let (mut sim, a, b) = pair(perfect(1), N);
    sim.block(a, b);
    sim.run_for(Duration::from_millis(5));
    // b's DATA reaches a, but a's DATA and ACKs never reach b.
    assert_eq!(sim.node(a).received, messages("b", 1));
    assert!(sim.node(b).received.is_empty());
    assert!(
        dropped_from(&sim, DropReason::Partition)
            .iter()
            .all(|s| *s == Some(a))
    );
    sim.unblock(a, b);
    sim.isolate(b);
    assert!(sim.is_blocked(a, b) && sim.is_blocked(b, a));
    sim.heal();
    sim.run_until_idle();
    assert!(exchange_complete(&sim, a, b, N));
}

#[test]
fn frozen_node_neither_receives_sends_nor_fires_timers() {
    let freeze_at = Instant::from_micros(35);
    let thaw_at = Instant::from_millis(5);
    let (mut sim, a, b) = pair(perfect(7), N);
    // Mid-exchange: b has DATA unacknowledged and its timer armed.
    sim.schedule(freeze_at, Fault::Freeze(b));
    sim.run_until(freeze_at);
    assert_eq!(sim.node_state(b), NodeState::Frozen);
    let received_at_freeze = sim.node(b).received.len();
    let b_next_seq = sim.node(b).next_seq;
    assert!(!sim.node(b).all_acked());
    // The test may still act on a frozen node; its output waits.
    sim.node_mut(b).send(b"while frozen".to_vec());
    let trace_len = sim.trace().len();

    sim.run_until(thaw_at);
    let senders = senders(&sim);
    for ev in &sim.trace()[trace_len..] {
        match &ev.kind {
            TraceKind::Send { from, .. } => assert_ne!(*from, Some(b), "frozen node sent: {ev}"),
            TraceKind::Timer { node, .. } => assert_ne!(*node, b, "frozen node's timer: {ev}"),
            TraceKind::Deliver { to, .. } => assert_ne!(*to, b, "frozen node received: {ev}"),
            TraceKind::Drop { id, reason } => {
                assert_eq!(*reason, DropReason::Frozen);
                assert_eq!(senders[id], Some(a));
            }
            _ => {}
        }
    }
    // a kept retransmitting into the void.
    assert!(sim.stats().dropped.frozen >= 3, "{:?}", sim.stats());
    assert_eq!(sim.node(b).received.len(), received_at_freeze);
    assert_eq!(sim.node(b).next_seq, b_next_seq);

    sim.unfreeze(b);
    // b's retransmission timer was due long ago: it fires now, late.
    sim.run_until(thaw_at);
    let late = sim.trace().iter().find(|e| {
        matches!(e.kind, TraceKind::Timer { node, deadline } if node == b && deadline < thaw_at)
    });
    let late = late.expect("no late timer after unfreeze");
    assert_eq!(late.at, thaw_at);
    assert!(
        sim.trace().iter().any(|e| e.at == thaw_at
            && matches!(e.kind, TraceKind::Send { from: Some(n), .. } if n == b))
    );

    sim.run_until_idle();
    let mut expected = messages("b", N);
    expected.push(b"while frozen".to_vec());
    assert_eq!(sim.node(a).received, expected);
    assert_eq!(sim.node(b).received, messages("a", N));
    assert_conservation(&sim);
}

#[test]
fn frozen_node_with_only_timers_leaves_the_network_idle() {
    let (mut sim, a, b) = pair(perfect(2), N);
    sim.freeze(b);
    sim.freeze(a);
    sim.run_until_idle();
    assert_eq!(sim.now(), Instant::ZERO);
    assert_eq!(sim.stats().sent, 0);
    sim.unfreeze(a);
    sim.unfreeze(b);
    sim.run_until_idle();
    assert!(exchange_complete(&sim, a, b, N));
}

#[test]
fn crash_and_restart() {
    let (mut sim, _a, b) = pair(perfect(3), N);
    sim.run_until(Instant::from_micros(50));
    sim.crash(b);
    assert_eq!(sim.node_state(b), NodeState::Down);
    sim.run_for(Duration::from_millis(3));
    assert!(sim.stats().dropped.down >= 2);
    let old = sim.restart(b, Peer::new(addr(1)));
    assert!(!old.received.is_empty());
    assert_eq!(sim.node_state(b), NodeState::Up);
    sim.run_for(Duration::from_millis(3));
    // a resumes mid-stream; the fresh b sees sequence numbers from the past
    // life (this toy protocol has no resynchronisation).
    assert!(sim.node(b).future > 0);
    assert!(
        sim.trace()
            .iter()
            .any(|e| matches!(e.kind, TraceKind::Restart { node } if node == b))
    );
}

#[test]
fn per_link_settings_are_directional() {
    let (mut sim, a, b) = pair(perfect(4), 3);
    sim.set_link(a, b, LinkConfig::default().loss(1.0));
    sim.run_for(Duration::from_millis(10));
    let s = *sim.stats();
    assert!(sim.node(b).received.is_empty());
    // b's first DATA arrives; a's ACK never does, so b retransmits it.
    assert_eq!(sim.node(a).received, messages("b", 1));
    assert!(sim.node(b).retransmissions >= 5);
    assert_eq!(
        s.dropped.loss,
        sim.node(a).transmissions + 1 + sim.node(a).stale
    );
    sim.clear_link(a, b);
    sim.run_until_idle();
    assert!(exchange_complete(&sim, a, b, 3));
}

#[test]
fn delay_is_base_plus_bounded_jitter() {
    let link = LinkConfig::default()
        .delay(Duration::from_micros(100))
        .jitter(Duration::from_micros(10));
    let (mut sim, a, b) = pair(perfect(5).with_link(link), N);
    sim.run_until_idle();
    assert!(exchange_complete(&sim, a, b, N));
    let sent: std::collections::BTreeMap<_, _> = sim
        .trace()
        .iter()
        .filter_map(|e| match e.kind {
            TraceKind::Send { id, .. } => Some((id, e.at)),
            _ => None,
        })
        .collect();
    let mut distinct = std::collections::BTreeSet::new();
    for e in sim.trace() {
        if let TraceKind::Deliver { id, .. } = e.kind {
            let d = e.at - sent[&id];
            assert!(
                d >= Duration::from_micros(100) && d <= Duration::from_micros(110),
                "{d:?}"
            );
            distinct.insert(d);
        }
    }
    assert!(distinct.len() > 5, "jitter is not random: {distinct:?}");
}

#[test]
fn hook_drops_one_specific_datagram() {
    let (mut sim, a, b) = pair(perfect(6), N);
    let dropped = Rc::new(RefCell::new(None));
    let seen = dropped.clone();
    sim.set_hook(move |ctx, d: &mut Datagram| {
        // The first transmission of a's DATA #3.
        let data3 = parse(&d.payload).is_some_and(|(k, seq, _)| k == 0 && seq == 3);
        if ctx.from == a && data3 && seen.borrow().is_none() {
            *seen.borrow_mut() = Some(ctx.id);
            return Verdict::Drop;
        }
        Verdict::Pass
    });
    sim.run_until_idle();
    let id = dropped.borrow().expect("hook never saw DATA #3");
    assert!(sim.trace().iter().any(|e| e.kind
        == TraceKind::Drop {
            id,
            reason: DropReason::Hook
        }));
    assert_eq!(sim.stats().dropped.hook, 1);
    assert_eq!(sim.node(a).retransmissions, 1);
    assert!(exchange_complete(&sim, a, b, N));
}

#[test]
fn hook_modifies_a_datagram_in_flight() {
    let (mut sim, a, b) = pair(perfect(6), N);
    let mut done = false;
    sim.set_hook(move |ctx, d: &mut Datagram| {
        if !done && ctx.from == a && parse(&d.payload).is_some_and(|(k, seq, _)| k == 0 && seq == 2)
        {
            done = true;
            let last = d.payload.len() - 1;
            d.payload[last] ^= 0x20; // "a-2" -> "a-\x12"
        }
        Verdict::Pass
    });
    sim.run_until_idle();
    let mut expected = messages("a", N);
    expected[2] = b"a-\x12".to_vec();
    assert_eq!(sim.node(b).received, expected);
    assert_eq!(sim.stats().modified, 1);
    assert_eq!(
        sim.trace()
            .iter()
            .filter(|e| matches!(e.kind, TraceKind::Modify { .. }))
            .count(),
        1
    );
}

#[test]
fn hook_delays_and_injection_replays() {
    let (mut sim, a, b) = pair(perfect(8), N);
    let captured: Rc<RefCell<Vec<Datagram>>> = Rc::default();
    let log = captured.clone();
    sim.set_hook(move |ctx, d: &mut Datagram| {
        log.borrow_mut().push(d.clone());
        if ctx.id.0 == 0 {
            // Hold the very first datagram past a's retransmission timeout.
            Verdict::Delay(Duration::from_millis(2))
        } else {
            Verdict::Pass
        }
    });
    sim.run_until_idle();
    assert!(exchange_complete(&sim, a, b, N));
    assert!(sim.node(a).retransmissions + sim.node(b).retransmissions >= 1);
    sim.clear_hook();

    // Replay a's first DATA, captured on the way: b acknowledges it again
    // but does not deliver it twice.
    let first = captured
        .borrow()
        .iter()
        .find(|d| d.src == addr(1))
        .cloned()
        .unwrap();
    let stale = sim.node(b).stale;
    let sent = sim.stats().sent;
    sim.inject(first.clone());
    sim.run_until_idle();
    assert_eq!(sim.node(b).stale, stale + 1);
    assert_eq!(sim.node(b).received, messages("a", N));
    assert_eq!(sim.stats().sent, sent + 1, "b re-acks the replay");
    assert_eq!(sim.stats().injected, 1);

    // Injection still respects a frozen receiver and unknown addresses.
    sim.freeze(b);
    sim.inject(first.clone());
    sim.inject(Datagram {
        dst: addr(9),
        ..first
    });
    sim.run_until_idle();
    assert_eq!(sim.stats().dropped.frozen, 1);
    assert_eq!(sim.stats().dropped.no_route, 1);
    assert_conservation(&sim);
}

#[test]
fn garbage_and_unroutable_datagrams() {
    let (mut sim, a, b) = pair(perfect(9), 1);
    let mut first = true;
    sim.set_hook(move |ctx, d: &mut Datagram| {
        // Misroute a's first DATA; its retransmission gets through.
        if first && ctx.from == a {
            first = false;
            d.dst = addr(77);
        }
        Verdict::Pass
    });
    sim.inject(Datagram {
        src: addr(200),
        dst: addr(2),
        payload: vec![0xff],
    });
    sim.run_until_idle();
    assert_eq!(sim.node(b).garbage, 1);
    assert_eq!(sim.stats().dropped.no_route, 1);
    assert_eq!(sim.stats().modified, 1);
    assert_eq!(sim.node(a).retransmissions, 1);
    assert!(exchange_complete(&sim, a, b, 1));
}

#[test]
fn driver_time_and_order() {
    let (mut sim, a, b) = pair(perfect(10), N);
    assert_eq!(sim.now(), Instant::ZERO);
    // Both DATA #0 are due at exactly 10 µs: sequence number breaks the tie.
    assert_eq!(sim.next_event_at(), Some(Instant::from_micros(10)));
    sim.run_until(Instant::from_micros(5));
    assert_eq!(sim.now(), Instant::from_micros(5));
    assert_eq!(deliveries(&sim), []);
    assert!(sim.step());
    assert_eq!(sim.now(), Instant::from_micros(10));
    assert_eq!(deliveries(&sim), [(Instant::from_micros(10), b)]);
    assert!(sim.step());
    assert_eq!(
        deliveries(&sim),
        [(Instant::from_micros(10), b), (Instant::from_micros(10), a)]
    );
    assert!(sim.run_until_condition(|s| s.node(b).received.len() == 3));
    assert_eq!(sim.node(b).received.len(), 3);
    sim.run_until_idle();
    // 10 round trips of 20 µs; acknowledged retransmission timers were
    // superseded and do not move the clock.
    assert_eq!(sim.now(), Instant::from_micros(200));
    assert!(!sim.step());
    assert!(!sim.run_until_condition(|_| false));
    sim.run_for(Duration::from_secs(1));
    assert_eq!(sim.now(), Instant::from_micros(1_000_200));
    assert_eq!(sim.stats().timers, 0);
    assert!(exchange_complete(&sim, a, b, N));
}

#[test]
fn derived_seeds_are_stable_and_independent() {
    let s1: Simulator<Peer> = Simulator::new(99);
    let s2: Simulator<Peer> = Simulator::new(99);
    assert_eq!(s1.derive_seed(1), s2.derive_seed(1));
    assert_ne!(s1.derive_seed(1), s1.derive_seed(2));
    assert_ne!(
        s1.derive_seed(1),
        Simulator::<Peer>::new(100).derive_seed(1)
    );
    assert_eq!(s1.derived_rng(5).next_u64(), s2.derived_rng(5).next_u64());
}

#[test]
#[should_panic(expected = "livelock")]
fn livelock_is_reported() {
    struct Spin;
    impl netsim::Node for Spin {
        fn handle_datagram(&mut self, _: Instant, _: Datagram) {}
        fn poll_transmit(&mut self, _: Instant) -> Option<netsim::Transmit> {
            None
        }
        fn poll_timeout(&mut self) -> Option<Instant> {
            Some(Instant::ZERO)
        }
        fn handle_timeout(&mut self, _: Instant) {}
    }
    let mut config = Config::new(0);
    config.max_events_per_instant = 1_000;
    config.record_trace = false;
    let mut sim = Simulator::with_config(config);
    sim.add_node(addr(1), Spin);
    sim.run_until_idle();
}

#[test]
#[should_panic(expected = "max_steps_per_run")]
fn endless_run_is_reported() {
    let mut config = Config::new(0);
    config.max_steps_per_run = 1_000;
    config.record_trace = false;
    let (mut sim, _, _) = pair(config, 1);
    sim.block(NodeId(0), NodeId(1));
    sim.run_until_idle();
}

#[test]
fn ipv6_and_several_addresses_per_node() {
    let v6 = |i: u16| std::net::SocketAddr::from(([0xfd00, 0, 0, 0, 0, 0, 0, i], 4791));
    let mut sim = Simulator::new(11);
    let a = sim.add_node(v6(1), Peer::new(v6(2)));
    let b = sim.add_node(v6(2), Peer::new(v6(1)));
    sim.add_address(a, addr(1));
    assert_eq!(sim.node_at(addr(1)), Some(a));
    assert_eq!(sim.node_at(v6(2)), Some(b));
    assert_eq!(sim.addresses(a), [v6(1), addr(1)]);
    sim.node_mut(a).send(b"over v6".to_vec());
    sim.run_until_idle();
    assert_eq!(sim.node(b).received, [b"over v6".to_vec()]);
    assert!(
        sim.trace_text()
            .contains("[fd00::1]:4791 -> [fd00::2]:4791")
    );
}

#[test]
#[should_panic(expected = "already belongs to n0")]
fn an_ip_belongs_to_one_node() {
    let mut sim = Simulator::new(0);
    sim.add_node(addr(1), Peer::new(addr(2)));
    sim.add_node(
        std::net::SocketAddr::from(([10, 0, 0, 1], 9)),
        Peer::new(addr(2)),
    );
}

/// Sends `n` datagrams of `len` bytes to `to` at time zero; counts arrivals.
struct Burst {
    to: Option<std::net::SocketAddr>,
    n: usize,
    len: usize,
}

impl netsim::Node for Burst {
    fn handle_datagram(&mut self, _now: Instant, _d: Datagram) {}
    fn poll_transmit(&mut self, _now: Instant) -> Option<netsim::Transmit> {
        let to = self.to?;
        if self.n == 0 {
            return None;
        }
        self.n -= 1;
        Some(netsim::Transmit::new(to, vec![0; self.len]))
    }
    fn poll_timeout(&mut self) -> Option<Instant> {
        None
    }
    fn handle_timeout(&mut self, _now: Instant) {}
}

#[test]
fn a_rate_serializes_a_burst_and_no_rate_does_not() {
    let b_addr: std::net::SocketAddr = "10.0.0.2:1".parse().unwrap();
    let arrivals = |link: LinkConfig| {
        let mut sim = Simulator::with_config(Config::new(1).with_link(link));
        sim.add_node(
            "10.0.0.1:1".parse().unwrap(),
            Burst {
                to: Some(b_addr),
                n: 4,
                len: 972,
            },
        );
        sim.add_node(
            b_addr,
            Burst {
                to: None,
                n: 0,
                len: 0,
            },
        );
        sim.run_until_idle();
        sim.trace()
            .iter()
            .filter_map(|e| match e.kind {
                TraceKind::Deliver { .. } => Some(e.at.as_nanos()),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    // 1000 bytes on the wire at 1 Gbit/s: 8 us each, then 10 us of delay.
    let paced = arrivals(LinkConfig::default().rate(1_000_000_000));
    assert_eq!(paced, [18_000, 26_000, 34_000, 42_000]);
    let instant = arrivals(LinkConfig::default());
    assert_eq!(instant, [10_000; 4]);
}
