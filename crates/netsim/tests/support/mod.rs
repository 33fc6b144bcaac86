//! A tiny stop-and-wait reliable protocol: a client of the simulator, used
//! to exercise it. Each peer sends its own messages one at a time (full
//! 32-bit sequence numbers, so duplicates and reordering are harmless) and
//! acknowledges the other's.
#![allow(dead_code)] // each test binary uses a different part

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use netsim::{
    Config, DatagramId, Instant, LinkConfig, Node, NodeId, Simulator, TraceKind, Transmit,
};

const DATA: u8 = 0;
const ACK: u8 = 1;

pub const RTO: Duration = Duration::from_millis(1);

#[derive(Debug)]
pub struct Peer {
    pub peer: SocketAddr,
    pub rto: Duration,
    // Sending half: the front of `unacked` is in flight when `in_flight`.
    unacked: VecDeque<Vec<u8>>,
    pub next_seq: u32,
    in_flight: bool,
    retransmit_at: Option<Instant>,
    pub transmissions: u64,
    pub retransmissions: u64,
    // Receiving half.
    pub expected: u32,
    pub received: Vec<Vec<u8>>,
    /// DATA already delivered (duplicate or retransmission): re-acked.
    pub stale: u64,
    /// DATA beyond the next expected one (only after a restart).
    pub future: u64,
    pub garbage: u64,
    outbox: VecDeque<Transmit>,
}

impl Peer {
    pub fn new(peer: SocketAddr) -> Self {
        Peer {
            peer,
            rto: RTO,
            unacked: VecDeque::new(),
            next_seq: 0,
            in_flight: false,
            retransmit_at: None,
            transmissions: 0,
            retransmissions: 0,
            expected: 0,
            received: Vec::new(),
            stale: 0,
            future: 0,
            garbage: 0,
            outbox: VecDeque::new(),
        }
    }

    pub fn send(&mut self, msg: impl Into<Vec<u8>>) {
        self.unacked.push_back(msg.into());
    }

    pub fn all_acked(&self) -> bool {
        self.unacked.is_empty()
    }

    fn data(&self, seq: u32, msg: &[u8]) -> Transmit {
        let mut p = vec![DATA];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(msg);
        Transmit::new(self.peer, p)
    }
}

/// Parses DATA/ACK; `None` for anything else (garbage must not panic).
pub fn parse(p: &[u8]) -> Option<(u8, u32, &[u8])> {
    let (&kind, rest) = p.split_first()?;
    let seq = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?);
    let body = &rest[4..];
    match kind {
        DATA => Some((DATA, seq, body)),
        ACK if body.is_empty() => Some((ACK, seq, body)),
        _ => None,
    }
}

impl Node for Peer {
    fn handle_datagram(&mut self, _now: Instant, d: netsim::Datagram) {
        match parse(&d.payload) {
            Some((DATA, seq, body)) => {
                if seq == self.expected {
                    self.received.push(body.to_vec());
                    self.expected += 1;
                } else if seq < self.expected {
                    self.stale += 1;
                } else {
                    self.future += 1;
                    return;
                }
                let mut ack = vec![ACK];
                ack.extend_from_slice(&seq.to_be_bytes());
                self.outbox.push_back(Transmit::new(d.src, ack));
            }
            Some((_, seq, _)) => {
                if self.in_flight && seq == self.next_seq {
                    self.unacked.pop_front();
                    self.next_seq += 1;
                    self.in_flight = false;
                    self.retransmit_at = None;
                }
            }
            None => self.garbage += 1,
        }
    }

    fn poll_transmit(&mut self, now: Instant) -> Option<Transmit> {
        if let Some(t) = self.outbox.pop_front() {
            return Some(t);
        }
        if !self.in_flight {
            let msg = self.unacked.front()?;
            let t = self.data(self.next_seq, msg);
            self.in_flight = true;
            self.retransmit_at = Some(now + self.rto);
            self.transmissions += 1;
            return Some(t);
        }
        None
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        self.retransmit_at
    }

    fn handle_timeout(&mut self, now: Instant) {
        if self.retransmit_at.is_some_and(|t| t <= now) {
            if let Some(msg) = self.unacked.front() {
                let t = self.data(self.next_seq, msg);
                self.outbox.push_back(t);
                self.transmissions += 1;
                self.retransmissions += 1;
            }
            self.retransmit_at = Some(now + self.rto);
        }
    }
}

pub fn addr(i: u8) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, i], 4791))
}

pub fn messages(tag: &str, n: usize) -> Vec<Vec<u8>> {
    (0..n).map(|i| format!("{tag}-{i}").into_bytes()).collect()
}

/// Two peers, `a` at 10.0.0.1 and `b` at 10.0.0.2, each with `n` messages
/// queued for the other.
pub fn pair(config: Config, n: usize) -> (Simulator<Peer>, NodeId, NodeId) {
    let mut sim = Simulator::with_config(config);
    let a = sim.add_node(addr(1), Peer::new(addr(2)));
    let b = sim.add_node(addr(2), Peer::new(addr(1)));
    for m in messages("a", n) {
        sim.node_mut(a).send(m);
    }
    for m in messages("b", n) {
        sim.node_mut(b).send(m);
    }
    (sim, a, b)
}

pub fn faulty_link() -> LinkConfig {
    LinkConfig::default()
        .loss(0.2)
        .duplicate(0.1)
        .jitter(Duration::from_micros(20))
        .reorder(0.2, Duration::from_millis(2))
}

/// Both peers got every message of the other, exactly once, in order.
pub fn exchange_complete(sim: &Simulator<Peer>, a: NodeId, b: NodeId, n: usize) -> bool {
    sim.node(b).received == messages("a", n) && sim.node(a).received == messages("b", n)
}

/// Every datagram ended exactly once.
pub fn assert_conservation(sim: &Simulator<Peer>) {
    let s = sim.stats();
    assert_eq!(s.in_flight, 0, "{s:?}");
    assert_eq!(
        s.sent + s.injected + s.duplicated,
        s.delivered + s.dropped.total(),
        "{s:?}"
    );
}

/// How many deliveries overtook an earlier-sent datagram on the same
/// direction (datagram ids grow in creation order).
pub fn overtakes(sim: &Simulator<Peer>) -> u64 {
    let mut sender: BTreeMap<DatagramId, Option<NodeId>> = BTreeMap::new();
    let mut newest: BTreeMap<(Option<NodeId>, NodeId), DatagramId> = BTreeMap::new();
    let mut count = 0;
    for ev in sim.trace() {
        match &ev.kind {
            TraceKind::Send { id, from, .. } => {
                sender.insert(*id, *from);
            }
            TraceKind::Duplicate { id, original } => {
                let from = sender.get(original).copied().flatten();
                sender.insert(*id, from);
            }
            TraceKind::Deliver { id, to } => {
                let key = (sender.get(id).copied().flatten(), *to);
                let prev = newest.entry(key).or_insert(*id);
                if *id < *prev {
                    count += 1;
                } else {
                    *prev = *id;
                }
            }
            _ => {}
        }
    }
    count
}

/// The sending node of every datagram id in the trace.
pub fn senders(sim: &Simulator<Peer>) -> BTreeMap<DatagramId, Option<NodeId>> {
    let mut m = BTreeMap::new();
    for ev in sim.trace() {
        match &ev.kind {
            TraceKind::Send { id, from, .. } => {
                m.insert(*id, *from);
            }
            TraceKind::Duplicate { id, original } => {
                let from = m.get(original).copied().flatten();
                m.insert(*id, from);
            }
            _ => {}
        }
    }
    m
}
