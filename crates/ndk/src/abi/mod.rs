//! The NDKPI dispatch tables: `extern "system"` thunks over the provider
//! core, the consumer-visible objects, and the upcalls made after the
//! adapter's lock is released (the IRQL rules of the NDKPI pages).
//!
//! Every consumer-visible object is a heap allocation whose first member is
//! the NDK object struct (header + dispatch pointer), followed by a pointer
//! to the adapter's shared state and the core's id of the object. A thunk
//! casts the consumer's pointer back, takes the adapter lock, calls the
//! core, releases the lock, and then makes every queued upcall. An object's
//! memory is freed once its close has completed (after its close
//! completion returned, or when the close returned STATUS_SUCCESS).
//!
//! Every dispatch entry is implemented. The one capability not offered is
//! reported, not faked: interrupt moderation (STATUS_NOT_SUPPORTED, its
//! adapter flag clear, as the documentation asks). NDK_OP_FLAG_RDMA_READ_
//! LOCAL_INVALIDATE is accepted on NdkRead and ignored, since
//! NDK_ADAPTER_FLAG_RDMA_READ_LOCAL_INVALIDATE_SUPPORTED is clear
//! (ndkpi.h NDK_OP_FLAG_*). Every create, register, resize, modify and
//! close that can finish at once does so and returns its status inline
//! (no completion callback, the NDK_FN_REQUEST_COMPLETION page); only connector requests and closes that
//! must wait return STATUS_PENDING.
//!
//! Inline data (NDK_OP_FLAG_INLINE) is copied from the consumer's virtual
//! addresses here, during the call (the NDKPI work request posting requirements page), into a stack buffer of
//! [`crate::provider::MAX_INLINE_DATA`] bytes; the core checks it against
//! the QP's InlineDataSize.

pub mod chain;
mod platform;
mod thunks;

pub use platform::{MdlRange, Platform, RawLock};
pub use thunks::{adapter_info, close_adapter, io, open_adapter, open_adapter_shared};
