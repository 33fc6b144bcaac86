//! The NDK provider core of ndkrs: the NDK objects behind the NDKPI
//! dispatch tables, the rules of their creation, use and close, and the
//! connection and disconnect semantics, over the software RoCEv2 NIC of
//! `roce`.
//!
//! `no_std` + `alloc` and sans-IO like `roce`: the kernel and host shells
//! supply the lock, the clock and the datagrams, and make the consumer's
//! callbacks after the core has released its lock.
//!
//! The provider talks to `roce` directly rather than through a trait: there
//! is one NIC, and its real engine is what every test of this crate runs
//! against.
#![no_std]
// Every unsafe block names the invariant it relies on (docs/design.md: a
// kernel-safe core; the C ABI is where the consumer's pointers come in).
#![deny(clippy::undocumented_unsafe_blocks)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::unreachable,
        clippy::todo,
        clippy::unimplemented
    )
)]

extern crate alloc;

pub mod abi;
/// The connector: its state machine and the provider's driving of it, in
/// one module ([`provider::connector`]).
pub use provider::connector;
pub mod object;
pub mod oids;
pub mod provider;
pub mod upcall;
