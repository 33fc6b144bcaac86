//! The record of a run: every event in order, and counters.

use core::fmt;
use std::net::SocketAddr;

use crate::node::NodeId;
use crate::time::Instant;

/// Identity of one datagram (each duplicate copy gets its own), numbered
/// from 0 in order of creation within a run.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct DatagramId(pub u64);

impl fmt::Display for DatagramId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Why a datagram was not delivered.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum DropReason {
    /// Random loss on the link.
    Loss,
    /// Sender and receiver were partitioned when it was sent or arrived.
    Partition,
    /// The receiver was frozen when it arrived.
    Frozen,
    /// The receiver was crashed when it arrived.
    Down,
    /// No node owns the destination IP.
    NoRoute,
    /// The in-flight hook dropped it.
    Hook,
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            DropReason::Loss => "loss",
            DropReason::Partition => "partition",
            DropReason::Frozen => "frozen",
            DropReason::Down => "down",
            DropReason::NoRoute => "no-route",
            DropReason::Hook => "hook",
        };
        f.write_str(s)
    }
}

/// A change to the network or to a node's liveness, applied now with
/// [`Simulator::apply`](crate::Simulator::apply) or later with
/// [`Simulator::schedule`](crate::Simulator::schedule).
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Fault {
    /// No datagram passes between a node of the first set and a node of the
    /// second, either way, until healed.
    Partition(Vec<NodeId>, Vec<NodeId>),
    /// No datagram passes from the first node to the second (one way).
    Block(NodeId, NodeId),
    /// Undoes a [`Fault::Block`] (and that direction of a partition).
    Unblock(NodeId, NodeId),
    /// Removes every partition and block.
    Heal,
    /// Pauses a node like a VM stopped by its hypervisor: it receives
    /// nothing (datagrams arriving meanwhile are lost), sends nothing, and
    /// its timers do not fire.
    Freeze(NodeId),
    /// Resumes a frozen node: overdue timers fire at once (late), and what
    /// it queued while frozen is sent.
    Unfreeze(NodeId),
    /// Stops a node for good until [`Simulator::restart`](crate::Simulator::restart):
    /// like a freeze, but meant to be followed by fresh state.
    Crash(NodeId),
}

fn write_set(f: &mut fmt::Formatter<'_>, set: &[NodeId]) -> fmt::Result {
    f.write_str("{")?;
    for (i, n) in set.iter().enumerate() {
        if i > 0 {
            f.write_str(",")?;
        }
        write!(f, "{n}")?;
    }
    f.write_str("}")
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Partition(a, b) => {
                f.write_str("partition ")?;
                write_set(f, a)?;
                f.write_str(" | ")?;
                write_set(f, b)
            }
            Fault::Block(a, b) => write!(f, "block {a} -> {b}"),
            Fault::Unblock(a, b) => write!(f, "unblock {a} -> {b}"),
            Fault::Heal => f.write_str("heal"),
            Fault::Freeze(n) => write!(f, "freeze {n}"),
            Fault::Unfreeze(n) => write!(f, "unfreeze {n}"),
            Fault::Crash(n) => write!(f, "crash {n}"),
        }
    }
}

/// What happened.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum TraceKind {
    /// A node sent a datagram (or a test injected one: `from` is `None`).
    Send {
        /// The datagram.
        id: DatagramId,
        /// Sending node, `None` for an injected datagram.
        from: Option<NodeId>,
        /// Source address.
        src: SocketAddr,
        /// Destination address.
        dst: SocketAddr,
        /// Payload length.
        len: usize,
        /// FNV-1a hash of the payload, so traces compare contents.
        digest: u64,
        /// The payload in one line ([`Config::describe`](crate::Config::describe)).
        summary: Option<String>,
    },
    /// The in-flight hook changed a datagram's payload or addresses.
    Modify {
        /// The datagram.
        id: DatagramId,
        /// New source address.
        src: SocketAddr,
        /// New destination address.
        dst: SocketAddr,
        /// New payload length.
        len: usize,
        /// Hash of the new payload.
        digest: u64,
        /// The new payload in one line, as for `Send`.
        summary: Option<String>,
    },
    /// The network duplicated a datagram.
    Duplicate {
        /// The new copy.
        id: DatagramId,
        /// The datagram it copies.
        original: DatagramId,
    },
    /// A datagram reached its node.
    Deliver {
        /// The datagram.
        id: DatagramId,
        /// Receiving node.
        to: NodeId,
    },
    /// A datagram was discarded.
    Drop {
        /// The datagram.
        id: DatagramId,
        /// Why.
        reason: DropReason,
    },
    /// A node's timer fired.
    Timer {
        /// The node.
        node: NodeId,
        /// The deadline it asked for (earlier than the event's time when
        /// the timer fired late).
        deadline: Instant,
    },
    /// A fault was applied.
    Fault(Fault),
    /// A node was restarted with fresh state.
    Restart {
        /// The node.
        node: NodeId,
    },
}

/// One line of the trace.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct TraceEvent {
    /// When it happened.
    pub at: Instant,
    /// What happened.
    pub kind: TraceKind,
}

impl fmt::Display for TraceEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:>16} ", self.at)?;
        match &self.kind {
            TraceKind::Send {
                id,
                from,
                src,
                dst,
                len,
                digest,
                summary,
            } => {
                match from {
                    Some(n) => write!(f, "send    {id} {n} ")?,
                    None => write!(f, "inject  {id} -- ")?,
                }
                write!(f, "{src} -> {dst} len={len} h={digest:016x}")?;
                match summary {
                    Some(s) => write!(f, " {s}"),
                    None => Ok(()),
                }
            }
            TraceKind::Modify {
                id,
                src,
                dst,
                len,
                digest,
                summary,
            } => {
                write!(f, "modify  {id} {src} -> {dst} len={len} h={digest:016x}")?;
                match summary {
                    Some(s) => write!(f, " {s}"),
                    None => Ok(()),
                }
            }
            TraceKind::Duplicate { id, original } => write!(f, "dup     {id} of {original}"),
            TraceKind::Deliver { id, to } => write!(f, "deliver {id} -> {to}"),
            TraceKind::Drop { id, reason } => write!(f, "drop    {id} ({reason})"),
            TraceKind::Timer { node, deadline } => {
                write!(f, "timer   {node}")?;
                if *deadline < self.at {
                    write!(f, " (due {deadline})")?;
                }
                Ok(())
            }
            TraceKind::Fault(fault) => write!(f, "fault   {fault}"),
            TraceKind::Restart { node } => write!(f, "restart {node}"),
        }
    }
}

/// Counts of dropped datagrams by cause.
#[derive(Clone, Copy, PartialEq, Eq, Default, Debug)]
pub struct Drops {
    /// Random link loss.
    pub loss: u64,
    /// Partitions and blocks.
    pub partition: u64,
    /// Arrived at a frozen node.
    pub frozen: u64,
    /// Arrived at a crashed node.
    pub down: u64,
    /// Addressed to no node.
    pub no_route: u64,
    /// Dropped by the hook.
    pub hook: u64,
}

impl Drops {
    /// All drops together.
    pub fn total(&self) -> u64 {
        self.loss + self.partition + self.frozen + self.down + self.no_route + self.hook
    }

    /// The count for one cause.
    pub fn get(&self, reason: DropReason) -> u64 {
        match reason {
            DropReason::Loss => self.loss,
            DropReason::Partition => self.partition,
            DropReason::Frozen => self.frozen,
            DropReason::Down => self.down,
            DropReason::NoRoute => self.no_route,
            DropReason::Hook => self.hook,
        }
    }

    pub(crate) fn count(&mut self, reason: DropReason) {
        let c = match reason {
            DropReason::Loss => &mut self.loss,
            DropReason::Partition => &mut self.partition,
            DropReason::Frozen => &mut self.frozen,
            DropReason::Down => &mut self.down,
            DropReason::NoRoute => &mut self.no_route,
            DropReason::Hook => &mut self.hook,
        };
        *c += 1;
    }
}

/// Counters of a run. Every datagram ends exactly once, so once the network
/// is idle `sent + injected + duplicated == delivered + dropped.total()`.
#[derive(Clone, Copy, PartialEq, Eq, Default, Debug)]
pub struct Stats {
    /// Datagrams sent by nodes.
    pub sent: u64,
    /// Datagrams injected by the test.
    pub injected: u64,
    /// Extra copies made by duplication.
    pub duplicated: u64,
    /// Datagrams handed to a node.
    pub delivered: u64,
    /// Datagrams discarded, by cause.
    pub dropped: Drops,
    /// Datagrams the hook changed.
    pub modified: u64,
    /// Timer firings.
    pub timers: u64,
    /// Datagrams on the wire right now.
    pub in_flight: u64,
    /// Most datagrams ever on the wire at once.
    pub max_in_flight: u64,
}

/// 64-bit FNV-1a: tiny, stable across platforms and releases, good enough
/// to tell payloads apart in a trace.
pub(crate) fn fnv1a(chunks: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for chunk in chunks {
        for b in *chunk {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}
