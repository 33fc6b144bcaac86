//! The std shell of ndkrs on Linux.
//!
//! The sans-IO NIC ([`roce::device::Device`]) and the NDK provider above it
//! never touch a socket, a clock or a thread (docs/design.md, "Rules of
//! the house"). This crate does:
//!
//! * [`clock`]: a monotonic clock mapped to [`roce::time::Instant`].
//! * [`io`]: datagram transports: UDP sockets (recvmmsg, UDP GSO/GRO with
//!   run-time detection and fallback, sendmmsg) and raw IP sockets for the
//!   exact-ICRC datagrams that interoperate with Linux rxe.
//! * [`endpoint`]: an event loop on a dedicated thread that drives any
//!   sans-IO [`endpoint::Endpoint`]: bounded waits, an eventfd waker, a stop
//!   handle, and a hook that runs after the endpoint's lock is released.
//! * [`link`]: the interface under a local address, its MTU, and the
//!   RoCE path MTU it carries.
//! * [`pcap`]: captures of RoCEv2 traffic that Wireshark/tshark decode.
//! * [`baseline`]: the measurements ndkperf reports RDMA results against
//!   (raw UDP goodput, UDP ping-pong latency, memcpy bandwidth).
//!
//! Linux only: the Windows shell is the driver package at the repository
//! root.

#![cfg(target_os = "linux")]

pub mod adapter;
pub mod baseline;
pub mod clock;
pub mod cpu;
pub mod endpoint;
pub mod io;
pub mod link;
mod loop_timer;
pub mod pcap;
pub mod perf;
pub mod perftest;
pub mod tcp_baseline;
