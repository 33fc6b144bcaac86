//! ndkrs against Linux rdma_rxe: the interop harness (docs/design.md,
//! "Proof", step 7).
//!
//! A small Linux VM (Debian kernel, rdma_rxe, busybox, rdma-core tools and
//! the project's own librdmacm peer `rxepeer`, all built into one
//! initramfs by `tests/interop/setup.sh`) boots under qemu inside a network
//! namespace, on a bridge whose host side is ndkrs's address. ndkrs runs
//! in this process: [`node::Node`] is an NDK provider
//! ([`ndk::provider::Provider`]) over a raw IP socket
//! ([`host::io::RawTransport`], exact ICRCs) driven by the host shell's
//! event loop ([`host::endpoint::EventLoop`]).
//!
//! * [`env`]: what the harness needs and why it would skip.
//! * [`vm`]: the namespace, the VM (boot, commands over TCP, qemu monitor:
//!   `stop`/`cont`), and UDP 4791 captures with their tshark summaries.
//! * [`node`]: the ndkrs side, with the waits a scenario needs.
//! * [`smb`]: an SMB Direct client (crates/smbd) over an `ndk::abi` adapter,
//!   through the NDK dispatch tables only; `tests/ksmbd.rs` runs it against
//!   Linux ksmbd.
//! * [`smb_server`]: an SMB Direct server over another ndkrs adapter, also
//!   through the NDK dispatch tables only (crates/smbd's server session);
//!   `tests/smb_loopback.rs` runs the client against it on loopback.
//! * [`smb_scenario`]: the client's steps and checks that both SMB tests
//!   take (inline and RDMA-channel round trips, keepalive, NdkDisconnect
//!   after the server's disconnect).
//! * `ndk_consumer` (crate-private): the NDK consumer plumbing both of them
//!   use (`disp!`, object creation, registration, posting, CQ polling,
//!   waiting for pended requests and closes).
//!
//! The scenarios are in `tests/rxe.rs`; run them as root with
//! `tests/interop/run.sh` (or `NDKRS_INTEROP=1 cargo test -p interop --test
//! rxe -- --nocapture` after `tests/interop/setup.sh`).

#![cfg(target_os = "linux")]

pub mod consumer_adapter;
pub mod env;
mod ndk_consumer;
pub use ndk_consumer::use_kernel_mdls;
pub mod node;
pub mod smb;
pub mod smb_scenario;
pub mod smb_server;
pub mod vm;
