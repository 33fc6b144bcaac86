//! Deterministic network simulator for ndkrs tests.
//!
//! Sans-IO endpoints ([`Node`]) exchange UDP datagrams over a virtual
//! network under a virtual clock ([`Instant`], nanoseconds from 0; nothing
//! reads the real clock). One seed decides every fault: loss, duplication,
//! delay, jitter and reordering per link ([`LinkConfig`]); partitions,
//! frozen and crashed nodes ([`Fault`]) are applied by the test, now or at a
//! scheduled time. Events run in a total order (time, then sequence number),
//! so the same seed and the same node code give the same [`trace`], bit
//! for bit. A hook ([`Simulator::set_hook`]) sees every datagram in flight
//! and may drop, delay or change it; [`Simulator::inject`] replays one.
//! [`sweep`] runs a test body over many seeds and, when one fails, prints
//! it and the command that replays exactly it (`NETSIM_SEED=<n>`).
//!
//! This is test support for the std side of the workspace; it is not
//! kernel code.
//!
//! ```
//! use netsim::{Config, Datagram, Instant, LinkConfig, Node, Simulator, Transmit};
//! use std::net::SocketAddr;
//! use std::time::Duration;
//!
//! /// Pings `ping` every millisecond until it hears a pong; answers pings.
//! #[derive(Default)]
//! struct Peer {
//!     ping: Option<SocketAddr>,
//!     done: bool,
//!     retry_at: Option<Instant>,
//!     outbox: Vec<Transmit>,
//! }
//!
//! impl Node for Peer {
//!     fn handle_datagram(&mut self, _now: Instant, d: Datagram) {
//!         match &d.payload[..] {
//!             b"ping" => self.outbox.push(Transmit::new(d.src, b"pong".to_vec())),
//!             b"pong" => {
//!                 self.done = true;
//!                 self.retry_at = None;
//!             }
//!             _ => {}
//!         }
//!     }
//!     fn poll_transmit(&mut self, _now: Instant) -> Option<Transmit> {
//!         self.outbox.pop()
//!     }
//!     fn poll_timeout(&mut self) -> Option<Instant> {
//!         self.retry_at
//!     }
//!     fn handle_timeout(&mut self, now: Instant) {
//!         if let (Some(to), false) = (self.ping, self.done) {
//!             self.outbox.push(Transmit::new(to, b"ping".to_vec()));
//!             self.retry_at = Some(now + Duration::from_millis(1));
//!         }
//!     }
//! }
//!
//! // Thirty seeds (or NETSIM_SEEDS, or just NETSIM_SEED), each a lossy run.
//! netsim::sweep(30, |seed| {
//!     let link = LinkConfig::default().loss(0.3).jitter(Duration::from_micros(5));
//!     let mut sim = Simulator::with_config(Config::new(seed).with_link(link));
//!     let b_addr: SocketAddr = "10.0.0.2:4791".parse().unwrap();
//!     let a = sim.add_node(
//!         "10.0.0.1:4791".parse().unwrap(),
//!         Peer { ping: Some(b_addr), retry_at: Some(Instant::ZERO), ..Peer::default() },
//!     );
//!     sim.add_node(b_addr, Peer::default());
//!     sim.run_until_idle();
//!     assert!(sim.node(a).done, "{}", sim.trace_text());
//!     let s = sim.stats();
//!     assert_eq!(s.sent + s.duplicated, s.delivered + s.dropped.total());
//! });
//! ```
//!
//! [`trace`]: Simulator::trace

#![warn(missing_docs)]

mod link;
mod node;
mod rng;
mod sim;
mod sweep;
mod time;
mod trace;

pub use link::LinkConfig;
pub use node::{Datagram, Node, NodeId, Transmit};
pub use rng::SimRng;
pub use sim::{Config, HookContext, NodeState, Simulator, Verdict};
pub use sweep::{
    SEED_START_VAR, SEED_VAR, SEEDS_VAR, SeedOutcome, Seeds, SweepFailure, sweep, try_sweep,
    try_sweep_seeds,
};
pub use time::Instant;
pub use trace::{DatagramId, DropReason, Drops, Fault, Stats, TraceEvent, TraceKind};
