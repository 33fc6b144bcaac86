//! The software RoCEv2 NIC of ndkrs.
//!
//! `no_std` + `alloc` and sans-IO: it never does I/O, never reads a clock and
//! never panics on anything a peer can send (docs/design.md, "Rules of the
//! house"). The layers, bottom up:
//!
//! * [`wire`]: zero-copy views and owned representations of every header a
//!   RoCEv2 frame carries, the ICRC, MADs and IB CM messages.
//! * [`time`]: the instants every input carries; [`rng`]: the seeded source
//!   of every random value.
//! * [`rc`]: the RC transport engine (queue pairs, CQs, SRQs, MRs/MWs):
//!   requester, responder and completer as rxe runs them (IBA Vol 1 ch. 9 (RC transport); Linux rxe_req.c, rxe_resp.c, rxe_comp.c).
//! * [`device`]: the NIC as one object: RC engine, CM on QP1, framing.
//! * [`framing`]: IP/UDP around RoCE packets, raw or through UDP sockets.
//! * [`cm`]: IB connection management (REQ/REP/RTU, REJ, DREQ/DREP, MRA,
//!   time-wait) as Linux rdma_cm speaks it.
#![no_std]
#![warn(missing_docs)]
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

pub mod cm;
pub mod device;
pub mod framing;
pub mod rc;
pub mod rng;
pub mod time;
pub mod wire;
