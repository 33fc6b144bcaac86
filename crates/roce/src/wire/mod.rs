//! RoCEv2 wire formats (IBA Vol 1 ch. 9 and Annex A17; Linux rxe_hdr.h, IBA Annex A17 (ICRC); Linux rxe_icrc.c, IBA Vol 1 ch. 13 (MADs, GSI); Linux include/rdma/ib_mad.h, IBA Vol 1 ch. 12; Linux drivers/infiniband/core/cm.c, Linux drivers/infiniband/core/cma.c).
//!
//! One file per header, in the smoltcp manner: a `Packet<T: AsRef<[u8]>>` view
//! whose `new_checked` validates the length once, accessors by named offsets,
//! and a `Repr` with `parse`, `emit` and `buffer_len`.

pub mod cm;
pub mod cma;
mod error;
pub mod mad;

// Transport-level codecs (IBA Vol 1 ch. 9 and Annex A17; Linux rxe_hdr.h, IBA Annex A17 (ICRC); Linux rxe_icrc.c).
pub mod aeth;
pub mod atomic_ack_eth;
pub mod atomic_eth;
pub mod bth;
mod bytes;
pub mod crc32;
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
pub mod pretty;
pub mod reth;
pub mod udp;

pub use error::{Error, Result};
