//! The NDKPI dispatch tables: `extern "system"` thunks over the provider
//! core, the consumer-visible objects, and the upcalls made after the
//! adapter's lock is released (ndk-semantics.md §7).
//!
//! Every consumer-visible object is a heap allocation whose first member is
//! the NDK object struct (header + dispatch pointer), followed by a pointer
//! to the adapter's shared state and the core's id of the object. A thunk
//! casts the consumer's pointer back, takes the adapter lock, calls the
//! core, releases the lock, and then makes every queued upcall. An object's
//! memory is freed once its close has completed (after its close
//! completion returned, or when the close returned STATUS_SUCCESS).
//!
//! Capabilities the core does not have yet are reported, not faked: SRQs
//! (MaxSrqDepth 0: NdkCreateSrq and NdkCreateQpWithSrq return
//! STATUS_NOT_SUPPORTED, as the documentation asks of an adapter without
//! SRQs), interrupt moderation (STATUS_NOT_SUPPORTED, its adapter flag
//! clear), and memory windows, fast-register MRs, NdkBind, NdkFastRegister
//! and NdkInvalidate (STATUS_NOT_IMPLEMENTED).

mod platform;
mod thunks;

pub use platform::{MdlRange, Platform, RawLock};
pub use thunks::{adapter_info, close_adapter, io, open_adapter};
