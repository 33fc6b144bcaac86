//! RoCEv2 wire formats (shared spec roce.md §1, §2, §4, §5, §6).
//!
//! One file per header, in the smoltcp manner: a `Packet<T: AsRef<[u8]>>` view
//! whose `new_checked` validates the length once, accessors by named offsets,
//! and a `Repr` with `parse`, `emit` and `buffer_len`.

pub mod cm;
pub mod cma;
mod error;
pub mod mad;

// Transport-level codecs (roce.md §1, §2).
pub mod aeth;
pub mod atomic_ack_eth;
pub mod atomic_eth;
pub mod bth;
mod bytes;
pub mod deth;
pub mod ethernet;
pub mod frame;
pub mod icrc;
pub mod ieth;
pub mod immdt;
pub mod ipv4;
pub mod ipv6;
pub mod opcode;
pub mod packet;
pub mod reth;
pub mod udp;

pub use error::{Error, Result};
