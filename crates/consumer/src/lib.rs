//! ndkrs's NDK consumer kit: what a user-mode program needs to drive an
//! NDK provider through its dispatch tables, the way a kernel consumer
//! (SMB Direct) does, written once for the root package's tests, ndkperf
//! (crates/host), the interop harness and ndksmb (crates/interop), and
//! the ndk_api fuzz target.
//!
//! * [`platform`]: the host [`HostPlatform`] (lock, clock, memory behind
//!   [`HostMdl`]s, checked or trusted).
//! * [`memory`]: zeroed, page-aligned [`Memory`] with its MDL.
//! * [`objects`]: typed handles ([`Adapter`], [`Pd`], [`Cq`], [`Qp`],
//!   [`Mr`], [`Mw`], [`Connector`], [`Listener`]) with the calls of their
//!   dispatch tables, and the [`slot!`] / [`call!`] macros for the rest.
//! * [`config`]: a provider configuration with a fixed identity, for a
//!   consumer that opens its own provider in-process (tests, fuzzing).
//! * [`completion`]: request and close completions as callbacks
//!   ([`Req`]) or waitables ([`Waiter`], [`request`]), CQ notifications
//!   as [`Kicks`] or a [`Drive`].
//!
//! Raw NDK objects travel as pointers, as through NDKPI: every call needs
//! its object live (made on an adapter that is still open, and not yet
//! closed), which is what the handles' unsafe `from_raw` constructors
//! promise.
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod completion;
pub mod config;
pub mod memory;
pub mod objects;
pub mod platform;

pub use completion::{
    Drive, Kicks, Req, ReqFn, Signal, Waiter, close_request, kicks_notify, req_closed, req_done,
    request, request_ctx, waiter_closed, waiter_done,
};
pub use config::fixed_config;
pub use memory::{MdlKind, Memory};
pub use objects::{
    AcceptOnto, Adapter, ConnectionData, Connector, Cq, Link, Listener, MR_RW, Mr, Mw, Pd, Qp,
    QpConfig, accept_onto, close_raw, connect_pair, empty_result, ignore_event, ignore_request,
    sockaddr,
};
pub use platform::{Access, Clock, HostMdl, HostPlatform, ManualClock, MemoryMap, host_lock};
