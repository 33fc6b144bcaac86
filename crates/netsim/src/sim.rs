//! The simulator: nodes, the virtual network between them, and the driver.

use core::cmp::{Ordering, Reverse};
use core::fmt;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::link::LinkConfig;
use crate::node::{Datagram, Node, NodeId, Transmit};
use crate::rng::SimRng;
use crate::time::Instant;
use crate::trace::{DatagramId, DropReason, Fault, Stats, TraceEvent, TraceKind, fnv1a};

/// Settings of one run. Everything random in the run follows from `seed`.
#[derive(Clone, Debug)]
pub struct Config {
    /// The seed every fault decision derives from.
    pub seed: u64,
    /// Settings of every link without its own ([`Simulator::set_link`]).
    pub link: LinkConfig,
    /// Keep the event trace (on by default; turn off for very long runs).
    pub record_trace: bool,
    /// Most events one driver call may process before it panics: a node
    /// that re-arms a timer forever never goes idle.
    pub max_steps_per_run: u64,
    /// Most events at one simulated instant before the run is declared a
    /// livelock (a node whose deadline never moves past `now`).
    pub max_events_per_instant: u64,
    /// Turns a payload into a one-line summary for the trace (for RoCE,
    /// `roce::wire::pretty::Pretty::packet`), so a failing seed's trace
    /// reads like a capture. `None`: lengths and hashes only.
    pub describe: Option<fn(&[u8]) -> String>,
}

impl Config {
    /// Defaults: perfect 10 µs links, trace on, generous step limits.
    pub fn new(seed: u64) -> Self {
        Config {
            seed,
            link: LinkConfig::default(),
            record_trace: true,
            max_steps_per_run: 2_000_000,
            max_events_per_instant: 100_000,
            describe: None,
        }
    }

    /// The same settings with `describe` summarising every payload in the
    /// trace.
    pub fn with_describer(mut self, describe: fn(&[u8]) -> String) -> Self {
        self.describe = Some(describe);
        self
    }

    /// The same settings with `link` as the default link.
    pub fn with_link(mut self, link: LinkConfig) -> Self {
        self.link = link;
        self
    }
}

/// What the in-flight hook is told about a datagram besides its contents.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct HookContext {
    /// The send time.
    pub now: Instant,
    /// The datagram (as numbered in the trace).
    pub id: DatagramId,
    /// The sending node.
    pub from: NodeId,
}

/// The in-flight hook's decision about a datagram.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Verdict {
    /// Let it go on through the network (with any changes made to it).
    Pass,
    /// Discard it (traced as [`DropReason::Hook`]).
    Drop,
    /// Let it go on, arriving this much later than the link would make it.
    Delay(Duration),
}

type Hook = Box<dyn FnMut(&HookContext, &mut Datagram) -> Verdict>;

/// Whether a node runs.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum NodeState {
    /// Running.
    Up,
    /// Paused by [`Fault::Freeze`].
    Frozen,
    /// Stopped by [`Fault::Crash`] until [`Simulator::restart`].
    Down,
}

struct Slot<N> {
    node: N,
    addrs: Vec<SocketAddr>,
    state: NodeState,
    /// The deadline a live timer event is queued for.
    armed: Option<Instant>,
    /// Bumped whenever the queued timer event stops being the right one;
    /// a timer event with an older generation is skipped.
    timer_gen: u64,
}

enum EventKind {
    Deliver {
        id: DatagramId,
        from: Option<NodeId>,
        to: NodeId,
        datagram: Datagram,
    },
    Timer {
        node: NodeId,
        generation: u64,
        deadline: Instant,
    },
    Fault(Fault),
}

struct Event {
    at: Instant,
    seq: u64,
    kind: EventKind,
}

// Events are totally ordered by (time, sequence number); seq is unique.
impl PartialEq for Event {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Event {}
impl PartialOrd for Event {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Event {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// A deterministic virtual network of sans-IO [`Node`]s with a virtual clock.
///
/// All nodes have the type `N`; for several kinds of endpoint use an enum
/// or `Box<dyn Node>`. See the [crate docs](crate) for an example.
pub struct Simulator<N> {
    config: Config,
    now: Instant,
    events_at_now: u64,
    seq: u64,
    next_datagram: u64,
    rng: SimRng,
    nodes: Vec<Slot<N>>,
    routes: BTreeMap<IpAddr, NodeId>,
    links: BTreeMap<(NodeId, NodeId), LinkConfig>,
    /// When each rate-limited direction's line is free again.
    line_free: BTreeMap<(NodeId, NodeId), Instant>,
    blocked: BTreeSet<(NodeId, NodeId)>,
    queue: BinaryHeap<Reverse<Event>>,
    hook: Option<Hook>,
    trace: Vec<TraceEvent>,
    stats: Stats,
}

impl<N: Node> Simulator<N> {
    /// An empty network with default settings and this seed.
    pub fn new(seed: u64) -> Self {
        Self::with_config(Config::new(seed))
    }

    /// An empty network with these settings.
    pub fn with_config(config: Config) -> Self {
        config.link.validate();
        Simulator {
            rng: SimRng::network(config.seed),
            config,
            now: Instant::ZERO,
            events_at_now: 0,
            seq: 0,
            next_datagram: 0,
            nodes: Vec::new(),
            routes: BTreeMap::new(),
            links: BTreeMap::new(),
            line_free: BTreeMap::new(),
            blocked: BTreeSet::new(),
            queue: BinaryHeap::new(),
            hook: None,
            trace: Vec::new(),
            stats: Stats::default(),
        }
    }

    // ---- nodes -------------------------------------------------------

    /// Adds a node owning `addr`'s IP; datagrams to that IP (any port)
    /// reach it, and it sends from `addr` unless its [`Transmit`] says
    /// otherwise. Panics if another node owns the IP.
    pub fn add_node(&mut self, addr: SocketAddr, node: N) -> NodeId {
        let id = NodeId(self.nodes.len());
        self.nodes.push(Slot {
            node,
            addrs: Vec::new(),
            state: NodeState::Up,
            armed: None,
            timer_gen: 0,
        });
        self.add_address(id, addr);
        id
    }

    /// Gives a node one more IP (e.g. an IPv6 address beside its IPv4 one).
    pub fn add_address(&mut self, id: NodeId, addr: SocketAddr) {
        if let Some(owner) = self.routes.insert(addr.ip(), id) {
            assert_eq!(
                owner,
                id,
                "netsim: {} already belongs to {owner}",
                addr.ip()
            );
        }
        self.slot_mut(id).addrs.push(addr);
    }

    fn slot(&self, id: NodeId) -> &Slot<N> {
        match self.nodes.get(id.0) {
            Some(s) => s,
            None => panic!("netsim: no node {id}"),
        }
    }

    fn slot_mut(&mut self, id: NodeId) -> &mut Slot<N> {
        match self.nodes.get_mut(id.0) {
            Some(s) => s,
            None => panic!("netsim: no node {id}"),
        }
    }

    /// The node's state, to inspect.
    pub fn node(&self, id: NodeId) -> &N {
        &self.slot(id).node
    }

    /// The node's state, to inspect or to act on (e.g. post a send). What it
    /// wants to send as a result goes out at the next driver call, at the
    /// current simulated time.
    pub fn node_mut(&mut self, id: NodeId) -> &mut N {
        &mut self.slot_mut(id).node
    }

    /// How many nodes there are.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Every node id, in order.
    pub fn node_ids(&self) -> impl Iterator<Item = NodeId> + use<N> {
        (0..self.nodes.len()).map(NodeId)
    }

    /// The node's first address.
    pub fn address(&self, id: NodeId) -> SocketAddr {
        self.slot(id).addrs[0]
    }

    /// All the node's addresses.
    pub fn addresses(&self, id: NodeId) -> &[SocketAddr] {
        &self.slot(id).addrs
    }

    /// The node owning `addr`'s IP.
    pub fn node_at(&self, addr: SocketAddr) -> Option<NodeId> {
        self.routes.get(&addr.ip()).copied()
    }

    /// Whether the node runs, is frozen or is crashed.
    pub fn node_state(&self, id: NodeId) -> NodeState {
        self.slot(id).state
    }

    // ---- run facts ---------------------------------------------------

    /// Current simulated time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The run's seed.
    pub fn seed(&self) -> u64 {
        self.config.seed
    }

    /// The run's settings.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Counters so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Every event so far, in processing order (empty if recording is off).
    pub fn trace(&self) -> &[TraceEvent] {
        &self.trace
    }

    /// The trace, one event per line, for printing on failure.
    pub fn trace_text(&self) -> String {
        let mut s = String::new();
        for ev in &self.trace {
            s.push_str(&ev.to_string());
            s.push('\n');
        }
        s
    }

    /// A hash of the whole trace: equal traces, equal digests.
    pub fn trace_digest(&self) -> u64 {
        fnv1a(&[self.trace_text().as_bytes()])
    }

    /// A seed for one node's own randomness (PSNs, QPNs, comm IDs), derived
    /// from the run's seed and `label` and independent of the network's
    /// fault decisions, so a node never perturbs the faults by drawing more.
    pub fn derive_seed(&self, label: u64) -> u64 {
        SimRng::derived(self.config.seed, label).next_u64()
    }

    /// A random stream derived like [`derive_seed`](Self::derive_seed), for
    /// the test body's own choices.
    pub fn derived_rng(&self, label: u64) -> SimRng {
        SimRng::derived(self.config.seed, label)
    }

    // ---- links and hook ----------------------------------------------

    /// Settings of every link without its own.
    pub fn set_default_link(&mut self, link: LinkConfig) {
        link.validate();
        self.config.link = link;
    }

    /// Settings of the direction `from` -> `to`.
    pub fn set_link(&mut self, from: NodeId, to: NodeId, link: LinkConfig) {
        link.validate();
        self.links.insert((from, to), link);
    }

    /// Settings of both directions between `a` and `b`.
    pub fn set_link_both(&mut self, a: NodeId, b: NodeId, link: LinkConfig) {
        self.set_link(a, b, link);
        self.set_link(b, a, link);
    }

    /// Returns the direction `from` -> `to` to the default settings.
    pub fn clear_link(&mut self, from: NodeId, to: NodeId) {
        self.links.remove(&(from, to));
    }

    /// The settings in force for `from` -> `to`.
    pub fn link(&self, from: NodeId, to: NodeId) -> LinkConfig {
        self.links
            .get(&(from, to))
            .copied()
            .unwrap_or(self.config.link)
    }

    /// Installs the in-flight hook: it sees every datagram a node sends,
    /// before routing and faults, and may read it, change it (a flipped
    /// byte, a rewritten address), delay it or drop it. To replay a captured
    /// datagram later, clone it here and [`inject`](Self::inject) it.
    pub fn set_hook(&mut self, hook: impl FnMut(&HookContext, &mut Datagram) -> Verdict + 'static) {
        self.hook = Some(Box::new(hook));
    }

    /// Removes the hook.
    pub fn clear_hook(&mut self) {
        self.hook = None;
    }

    /// Puts `datagram` on the wire now, from outside any node, straight to
    /// the node owning its destination IP: no hook, link faults or
    /// partitions, but a frozen or crashed receiver still loses it.
    pub fn inject(&mut self, datagram: Datagram) -> DatagramId {
        self.inject_at(self.now, datagram)
    }

    /// Like [`inject`](Self::inject), arriving at `at` (or now, if earlier).
    pub fn inject_at(&mut self, at: Instant, datagram: Datagram) -> DatagramId {
        let id = self.new_datagram_id();
        self.stats.injected += 1;
        self.record(TraceKind::Send {
            id,
            from: None,
            src: datagram.src,
            dst: datagram.dst,
            len: datagram.payload.len(),
            digest: fnv1a(&[&datagram.payload]),
            summary: self.describe(&datagram.payload),
        });
        match self.node_at(datagram.dst) {
            Some(to) => self.schedule_delivery(at.max(self.now), id, None, to, datagram),
            None => self.drop_datagram(id, DropReason::NoRoute),
        }
        id
    }

    // ---- faults ------------------------------------------------------

    /// Applies a fault now.
    pub fn apply(&mut self, fault: Fault) {
        self.record(TraceKind::Fault(fault.clone()));
        match fault {
            Fault::Partition(a, b) => {
                for &x in &a {
                    for &y in &b {
                        if x != y {
                            self.blocked.insert((x, y));
                            self.blocked.insert((y, x));
                        }
                    }
                }
            }
            Fault::Block(a, b) => {
                self.blocked.insert((a, b));
            }
            Fault::Unblock(a, b) => {
                self.blocked.remove(&(a, b));
            }
            Fault::Heal => self.blocked.clear(),
            Fault::Freeze(n) => {
                if self.slot(n).state == NodeState::Up {
                    self.slot_mut(n).state = NodeState::Frozen;
                    self.disarm(n);
                }
            }
            Fault::Unfreeze(n) => {
                if self.slot(n).state == NodeState::Frozen {
                    self.slot_mut(n).state = NodeState::Up;
                    self.disarm(n);
                    self.service(n);
                }
            }
            Fault::Crash(n) => {
                self.slot_mut(n).state = NodeState::Down;
                self.disarm(n);
            }
        }
    }

    /// Applies a fault at `at` (or now, if earlier), in event order.
    pub fn schedule(&mut self, at: Instant, fault: Fault) {
        let at = at.max(self.now);
        self.push(at, EventKind::Fault(fault));
    }

    /// Cuts every node of `a` from every node of `b`, both ways.
    pub fn partition(&mut self, a: &[NodeId], b: &[NodeId]) {
        self.apply(Fault::Partition(a.to_vec(), b.to_vec()));
    }

    /// Cuts `node` from every other node, both ways.
    pub fn isolate(&mut self, node: NodeId) {
        let others: Vec<NodeId> = self.node_ids().filter(|n| *n != node).collect();
        self.apply(Fault::Partition(vec![node], others));
    }

    /// Blocks the direction `from` -> `to`.
    pub fn block(&mut self, from: NodeId, to: NodeId) {
        self.apply(Fault::Block(from, to));
    }

    /// Unblocks the direction `from` -> `to`.
    pub fn unblock(&mut self, from: NodeId, to: NodeId) {
        self.apply(Fault::Unblock(from, to));
    }

    /// Removes every partition and block.
    pub fn heal(&mut self) {
        self.apply(Fault::Heal);
    }

    /// Whether datagrams from `from` to `to` are blocked right now.
    pub fn is_blocked(&self, from: NodeId, to: NodeId) -> bool {
        self.blocked.contains(&(from, to))
    }

    /// Freezes a node now ([`Fault::Freeze`]).
    pub fn freeze(&mut self, node: NodeId) {
        self.apply(Fault::Freeze(node));
    }

    /// Unfreezes a node now ([`Fault::Unfreeze`]).
    pub fn unfreeze(&mut self, node: NodeId) {
        self.apply(Fault::Unfreeze(node));
    }

    /// Crashes a node now ([`Fault::Crash`]).
    pub fn crash(&mut self, node: NodeId) {
        self.apply(Fault::Crash(node));
    }

    /// Replaces a node's state with `fresh` and runs it (whatever its state
    /// was), keeping its addresses; returns the old state. Datagrams still
    /// in flight to it arrive at the fresh state.
    pub fn restart(&mut self, node: NodeId, fresh: N) -> N {
        let slot = self.slot_mut(node);
        let old = core::mem::replace(&mut slot.node, fresh);
        slot.state = NodeState::Up;
        self.disarm(node);
        self.record(TraceKind::Restart { node });
        self.service(node);
        old
    }

    // ---- driver ------------------------------------------------------

    /// Processes the next event, if any; false when the network is idle
    /// (nothing in flight, no timer armed on a running node, no scheduled
    /// fault).
    pub fn step(&mut self) -> bool {
        self.service_all();
        if self.peek_live().is_none() {
            return false;
        }
        self.process_next();
        true
    }

    /// Runs until idle. Panics after [`Config::max_steps_per_run`] events:
    /// a node with a periodic timer never idles; use [`run_until`](Self::run_until).
    pub fn run_until_idle(&mut self) {
        let mut steps = 0;
        while self.step() {
            steps += 1;
            self.check_budget(steps, "run_until_idle");
        }
    }

    /// Processes every event due at or before `deadline`, then sets the
    /// clock to `deadline` (if it is in the future).
    pub fn run_until(&mut self, deadline: Instant) {
        let mut steps = 0;
        loop {
            self.service_all();
            match self.peek_live() {
                Some(at) if at <= deadline => {
                    self.process_next();
                    steps += 1;
                    self.check_budget(steps, "run_until");
                }
                _ => break,
            }
        }
        if deadline > self.now {
            self.now = deadline;
            self.events_at_now = 0;
        }
    }

    /// [`run_until`](Self::run_until) `now + d`.
    pub fn run_for(&mut self, d: Duration) {
        self.run_until(self.now + d);
    }

    /// Runs until `done` holds (checked before every event): true then,
    /// false if the network went idle first.
    pub fn run_until_condition(&mut self, mut done: impl FnMut(&Self) -> bool) -> bool {
        let mut steps = 0;
        loop {
            self.service_all();
            if done(self) {
                return true;
            }
            if self.peek_live().is_none() {
                return false;
            }
            self.process_next();
            steps += 1;
            self.check_budget(steps, "run_until_condition");
        }
    }

    /// When the next event is due, if any.
    pub fn next_event_at(&mut self) -> Option<Instant> {
        self.service_all();
        self.peek_live()
    }

    fn check_budget(&self, steps: u64, what: &str) {
        assert!(
            steps <= self.config.max_steps_per_run,
            "netsim: {what} still busy after {steps} events at {} (seed {}); \
             raise Config::max_steps_per_run or bound the run with run_until",
            self.now,
            self.config.seed,
        );
    }

    fn service_all(&mut self) {
        for i in 0..self.nodes.len() {
            self.service(NodeId(i));
        }
    }

    /// Collects a running node's output: its datagrams, then its deadline.
    fn service(&mut self, id: NodeId) {
        if self.slot(id).state != NodeState::Up {
            return;
        }
        let now = self.now;
        let mut sent = 0u64;
        while let Some(t) = self.slot_mut(id).node.poll_transmit(now) {
            self.send(id, t);
            sent += 1;
            assert!(
                sent <= self.config.max_events_per_instant,
                "netsim: {id} keeps returning datagrams from poll_transmit at {now} (seed {})",
                self.config.seed
            );
        }
        let deadline = self.slot_mut(id).node.poll_timeout();
        let slot = self.slot_mut(id);
        if deadline != slot.armed {
            slot.armed = deadline;
            slot.timer_gen += 1;
            let generation = slot.timer_gen;
            if let Some(deadline) = deadline {
                self.push(
                    deadline.max(now),
                    EventKind::Timer {
                        node: id,
                        generation,
                        deadline,
                    },
                );
            }
        }
    }

    /// Forgets the queued timer event; the next service re-arms it.
    fn disarm(&mut self, id: NodeId) {
        let slot = self.slot_mut(id);
        slot.armed = None;
        slot.timer_gen += 1;
    }

    /// The time of the next event that will do something, discarding
    /// superseded timer events so they neither count as activity nor move
    /// the clock.
    fn peek_live(&mut self) -> Option<Instant> {
        while let Some(Reverse(ev)) = self.queue.peek() {
            let live = match &ev.kind {
                EventKind::Timer {
                    node, generation, ..
                } => {
                    let slot = self.slot(*node);
                    slot.timer_gen == *generation && slot.state == NodeState::Up
                }
                _ => true,
            };
            if live {
                return Some(ev.at);
            }
            self.queue.pop();
        }
        None
    }

    fn process_next(&mut self) {
        let Some(Reverse(ev)) = self.queue.pop() else {
            return;
        };
        if ev.at > self.now {
            self.now = ev.at;
            self.events_at_now = 0;
        }
        self.events_at_now += 1;
        assert!(
            self.events_at_now <= self.config.max_events_per_instant,
            "netsim: livelock: {} events at {} without time moving (seed {})",
            self.events_at_now,
            self.now,
            self.config.seed
        );
        match ev.kind {
            EventKind::Deliver {
                id,
                from,
                to,
                datagram,
            } => self.deliver(id, from, to, datagram),
            EventKind::Timer { node, deadline, .. } => {
                self.slot_mut(node).armed = None;
                self.stats.timers += 1;
                self.record(TraceKind::Timer { node, deadline });
                let now = self.now;
                self.slot_mut(node).node.handle_timeout(now);
                self.service(node);
            }
            EventKind::Fault(fault) => self.apply(fault),
        }
    }

    fn deliver(&mut self, id: DatagramId, from: Option<NodeId>, to: NodeId, datagram: Datagram) {
        self.stats.in_flight -= 1;
        let reason = match self.slot(to).state {
            NodeState::Down => Some(DropReason::Down),
            // A paused VM's NIC queue is lost, not replayed, on resume.
            NodeState::Frozen => Some(DropReason::Frozen),
            NodeState::Up => from
                .filter(|f| self.is_blocked(*f, to))
                .map(|_| DropReason::Partition),
        };
        if let Some(reason) = reason {
            self.drop_datagram(id, reason);
            return;
        }
        self.stats.delivered += 1;
        self.record(TraceKind::Deliver { id, to });
        let now = self.now;
        self.slot_mut(to).node.handle_datagram(now, datagram);
        self.service(to);
    }

    /// Puts a node's datagram through hook, routing, partitions and the
    /// link's faults.
    fn send(&mut self, from: NodeId, t: Transmit) {
        let id = self.new_datagram_id();
        self.stats.sent += 1;
        let src = t.source.unwrap_or_else(|| self.address(from));
        let mut datagram = Datagram {
            src,
            dst: t.destination,
            payload: t.payload,
        };
        self.record(TraceKind::Send {
            id,
            from: Some(from),
            src,
            dst: datagram.dst,
            len: datagram.payload.len(),
            digest: fnv1a(&[&datagram.payload]),
            summary: self.describe(&datagram.payload),
        });

        let mut extra = Duration::ZERO;
        if let Some(hook) = &mut self.hook {
            let before = datagram.clone();
            let ctx = HookContext {
                now: self.now,
                id,
                from,
            };
            match hook(&ctx, &mut datagram) {
                Verdict::Pass => {}
                Verdict::Drop => {
                    self.drop_datagram(id, DropReason::Hook);
                    return;
                }
                Verdict::Delay(d) => extra = d,
            }
            if datagram != before {
                self.stats.modified += 1;
                self.record(TraceKind::Modify {
                    id,
                    src: datagram.src,
                    dst: datagram.dst,
                    len: datagram.payload.len(),
                    digest: fnv1a(&[&datagram.payload]),
                    summary: self.describe(&datagram.payload),
                });
            }
        }

        let Some(to) = self.node_at(datagram.dst) else {
            self.drop_datagram(id, DropReason::NoRoute);
            return;
        };
        if self.is_blocked(from, to) {
            self.drop_datagram(id, DropReason::Partition);
            return;
        }
        let link = self.link(from, to);
        // The datagram's last bit leaves the line at `start` (now, without
        // a rate).
        let mut start = self.now;
        if link.rate.is_some() {
            let free = self.line_free.entry((from, to)).or_insert(Instant::ZERO);
            start = (*free).max(self.now) + link.serialization(datagram.payload.len());
            *free = start;
        }
        if self.rng.chance(link.loss) {
            self.drop_datagram(id, DropReason::Loss);
            return;
        }
        let duplicate = self.rng.chance(link.duplicate);
        let at = start + self.link_delay(&link) + extra;
        if duplicate {
            let copy = self.new_datagram_id();
            self.stats.duplicated += 1;
            self.record(TraceKind::Duplicate {
                id: copy,
                original: id,
            });
            let copy_at = start + self.link_delay(&link) + extra;
            self.schedule_delivery(at, id, Some(from), to, datagram.clone());
            self.schedule_delivery(copy_at, copy, Some(from), to, datagram);
        } else {
            self.schedule_delivery(at, id, Some(from), to, datagram);
        }
    }

    fn link_delay(&mut self, link: &LinkConfig) -> Duration {
        let mut d = link.delay + self.rng.duration_upto(link.jitter);
        if self.rng.chance(link.reorder) {
            d += self.rng.duration_upto(link.reorder_delay);
        }
        d
    }

    fn schedule_delivery(
        &mut self,
        at: Instant,
        id: DatagramId,
        from: Option<NodeId>,
        to: NodeId,
        datagram: Datagram,
    ) {
        self.stats.in_flight += 1;
        self.stats.max_in_flight = self.stats.max_in_flight.max(self.stats.in_flight);
        self.push(
            at,
            EventKind::Deliver {
                id,
                from,
                to,
                datagram,
            },
        );
    }
}

// Bookkeeping that needs no `Node` bound.
impl<N> Simulator<N> {
    fn push(&mut self, at: Instant, kind: EventKind) {
        self.seq += 1;
        self.queue.push(Reverse(Event {
            at,
            seq: self.seq,
            kind,
        }));
    }

    fn new_datagram_id(&mut self) -> DatagramId {
        let id = DatagramId(self.next_datagram);
        self.next_datagram += 1;
        id
    }

    /// The configured summary of a payload, when the trace is kept.
    fn describe(&self, payload: &[u8]) -> Option<String> {
        match self.config.describe {
            Some(f) if self.config.record_trace => Some(f(payload)),
            _ => None,
        }
    }

    fn record(&mut self, kind: TraceKind) {
        if self.config.record_trace {
            self.trace.push(TraceEvent { at: self.now, kind });
        }
    }

    fn drop_datagram(&mut self, id: DatagramId, reason: DropReason) {
        self.stats.dropped.count(reason);
        self.record(TraceKind::Drop { id, reason });
    }
}

/// How many trace lines to print when a test panics with a simulator alive:
/// `NETSIM_TRACE=all`, a number, or `0`/`off`; 40 by default.
fn trace_lines_on_panic() -> usize {
    match std::env::var("NETSIM_TRACE") {
        Ok(v) if v == "all" => usize::MAX,
        Ok(v) if v == "off" => 0,
        Ok(v) => v.parse().unwrap_or(40),
        Err(_) => 40,
    }
}

// A failing assertion in a test body unwinds through the simulator: that is
// the moment the trace is wanted, so print its tail then.
impl<N> Drop for Simulator<N> {
    fn drop(&mut self) {
        if !std::thread::panicking() || !self.config.record_trace {
            return;
        }
        let lines = trace_lines_on_panic();
        if lines == 0 {
            return;
        }
        let start = self.trace.len().saturating_sub(lines);
        eprintln!(
            "netsim: panicked at {} with seed {}; trace events {}..{} of {} \
             (NETSIM_TRACE=all|N|off):",
            self.now,
            self.config.seed,
            start,
            self.trace.len(),
            self.trace.len()
        );
        for ev in &self.trace[start..] {
            eprintln!("{ev}");
        }
        eprintln!("netsim: stats {:?}", self.stats);
    }
}

impl<N> fmt::Debug for Simulator<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Simulator")
            .field("seed", &self.config.seed)
            .field("now", &self.now)
            .field("nodes", &self.nodes.len())
            .field("queued_events", &self.queue.len())
            .field("hook", &self.hook.is_some())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}
