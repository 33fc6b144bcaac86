//! RoCEv2 wire formats (shared spec roce.md §1, §2, §4, §5, §6).
//!
//! One file per header, in the smoltcp manner: a `Packet<T: AsRef<[u8]>>` view
//! whose `new_checked` validates the length once, accessors by named offsets,
//! and a `Repr` with `parse`, `emit` and `buffer_len`.

mod error;

pub use error::{Error, Result};
