//! The simulator under a reliable protocol: exactly-once in-order delivery
//! over a faulty network, and bit-identical replays.

mod support;

use std::collections::BTreeSet;

use netsim::{Config, Stats, TraceEvent};
use support::*;

const MESSAGES: usize = 10;

/// One lossy exchange; returns the finished simulator.
fn exchange(seed: u64) -> netsim::Simulator<Peer> {
    exchange_with(Config::new(seed))
}

/// [`exchange`] with `config`'s settings (its link replaced by the faulty
/// one).
fn exchange_with(config: Config) -> netsim::Simulator<Peer> {
    let (mut sim, a, b) = pair(config.with_link(faulty_link()), MESSAGES);
    let done = sim.run_until_condition(|s| exchange_complete(s, a, b, MESSAGES));
    assert!(done, "exchange stalled");
    // Let late duplicates and retransmissions land: nothing may change.
    sim.run_until_idle();
    assert!(exchange_complete(&sim, a, b, MESSAGES));
    assert!(sim.node(a).all_acked() && sim.node(b).all_acked());
    assert_conservation(&sim);
    sim
}

#[test]
fn exactly_once_in_order_under_loss_duplication_reordering() {
    let mut total = Stats::default();
    let mut overtaken = 0;
    let mut stale = 0;
    let ran = netsim::sweep(1000, |seed| {
        let sim = exchange(seed);
        let s = sim.stats();
        total.sent += s.sent;
        total.duplicated += s.duplicated;
        total.dropped.loss += s.dropped.loss;
        total.max_in_flight = total.max_in_flight.max(s.max_in_flight);
        overtaken += overtakes(&sim);
        stale += sim.node_ids().map(|n| sim.node(n).stale).sum::<u64>();
    });
    // The property above is vacuous unless the faults really happened.
    if ran >= 100 {
        assert!(total.dropped.loss > total.sent / 10, "{total:?}");
        assert!(total.duplicated > total.sent / 20, "{total:?}");
        assert!(overtaken > 100, "only {overtaken} reorderings");
        assert!(stale > 100, "only {stale} stale DATA");
        assert!(total.max_in_flight >= 3, "{total:?}");
    }
}

fn trace_of(seed: u64) -> (Vec<TraceEvent>, Stats) {
    let sim = exchange(seed);
    (sim.trace().to_vec(), *sim.stats())
}

#[test]
fn same_seed_same_trace() {
    for seed in [0, 1, 0xdead_beef, u64::MAX] {
        let (t1, s1) = trace_of(seed);
        let (t2, s2) = trace_of(seed);
        assert!(t1.len() > 4 * MESSAGES, "trace too short to mean anything");
        assert_eq!(s1, s2);
        assert_eq!(t1, t2, "seed {seed} diverged");
    }
}

#[test]
fn different_seeds_different_traces() {
    let digests: BTreeSet<u64> = (0..50).map(|seed| exchange(seed).trace_digest()).collect();
    assert_eq!(digests.len(), 50);
}

#[test]
fn trace_prints_every_event_kind() {
    let sim = exchange(3);
    let text = sim.trace_text();
    for word in ["send", "deliver", "drop", "timer"] {
        assert!(text.contains(word), "no {word} in\n{text}");
    }
    assert_eq!(text.lines().count(), sim.trace().len());
}

/// A describer's summary of each payload appears on its send line, and
/// only when the trace is kept.
#[test]
fn a_describer_summarises_every_payload_in_the_trace() {
    fn first_byte(p: &[u8]) -> String {
        format!("first={:?}", p.first())
    }
    let text = exchange_with(Config::new(3).with_describer(first_byte)).trace_text();
    let sends: Vec<&str> = text.lines().filter(|l| l.contains(" send ")).collect();
    assert!(!sends.is_empty(), "{text}");
    assert!(sends.iter().all(|l| l.contains(" first=Some(")), "{text}");
    let mut quiet = Config::new(3).with_describer(first_byte);
    quiet.record_trace = false;
    assert!(exchange_with(quiet).trace().is_empty());
}
