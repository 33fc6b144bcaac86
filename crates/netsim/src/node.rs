//! What a simulated endpoint looks like from the simulator.

use core::fmt;
use std::net::SocketAddr;

use crate::time::Instant;

/// Index of a node in a [`Simulator`](crate::Simulator), in order of
/// [`add_node`](crate::Simulator::add_node).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct NodeId(pub usize);

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}", self.0)
    }
}

/// A UDP datagram on the virtual wire.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Datagram {
    /// Sender's address (IP and UDP port).
    pub src: SocketAddr,
    /// Receiver's address; the simulator routes on its IP.
    pub dst: SocketAddr,
    /// UDP payload (for RoCEv2: BTH onwards, ICRC included).
    pub payload: Vec<u8>,
}

/// A datagram a node asks to send.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Transmit {
    /// Where to send it.
    pub destination: SocketAddr,
    /// Source address to put on it; `None` means the node's first address.
    /// RoCEv2 senders vary the UDP source port per QP for ECMP entropy, so
    /// a node may pick any port here.
    pub source: Option<SocketAddr>,
    /// UDP payload.
    pub payload: Vec<u8>,
}

impl Transmit {
    /// A datagram to `destination` from the node's first address.
    pub fn new(destination: SocketAddr, payload: impl Into<Vec<u8>>) -> Self {
        Transmit {
            destination,
            source: None,
            payload: payload.into(),
        }
    }

    /// The same datagram sent from `source`.
    pub fn with_source(mut self, source: SocketAddr) -> Self {
        self.source = Some(source);
        self
    }
}

/// A sans-IO endpoint driven by the simulator (shaped like quinn-proto's
/// `Connection`): it never does I/O nor reads a clock; the simulator hands it
/// datagrams and `now`, and collects what it wants to send and when it next
/// wants to be woken.
///
/// After every call into a node the simulator drains [`poll_transmit`]
/// until `None`, then reads [`poll_timeout`]. A test that changes a node
/// through [`Simulator::node_mut`](crate::Simulator::node_mut) is serviced
/// the same way at the next driver call.
///
/// [`poll_transmit`]: Node::poll_transmit
/// [`poll_timeout`]: Node::poll_timeout
pub trait Node {
    /// A datagram addressed to one of this node's IPs arrived at `now`.
    fn handle_datagram(&mut self, now: Instant, datagram: Datagram);

    /// The next datagram to send, if any.
    fn poll_transmit(&mut self, now: Instant) -> Option<Transmit>;

    /// When [`handle_timeout`](Node::handle_timeout) should next run, if ever.
    /// A deadline in the past fires at the current simulated time.
    fn poll_timeout(&mut self) -> Option<Instant>;

    /// The deadline from [`poll_timeout`](Node::poll_timeout) has passed;
    /// `now` may be later than it (e.g. after the node was frozen).
    fn handle_timeout(&mut self, now: Instant);
}

impl<T: Node + ?Sized> Node for Box<T> {
    fn handle_datagram(&mut self, now: Instant, datagram: Datagram) {
        (**self).handle_datagram(now, datagram);
    }
    fn poll_transmit(&mut self, now: Instant) -> Option<Transmit> {
        (**self).poll_transmit(now)
    }
    fn poll_timeout(&mut self) -> Option<Instant> {
        (**self).poll_timeout()
    }
    fn handle_timeout(&mut self, now: Instant) {
        (**self).handle_timeout(now);
    }
}
