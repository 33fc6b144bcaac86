//! The object header and the ten NDK object structs (ndkpi.h; shared spec
//! ndkpi.h, ndkpi.h, ndkpi.h).

use core::ffi::c_void;

use crate::dispatch::*;
use crate::version::NDK_VERSION;

/// `NDK_OBJECT_TYPE`: a C enum received from and handed to the consumer, so a
/// plain integer with named values rather than a Rust `enum` (an unknown value
/// must be representable).
pub type NDK_OBJECT_TYPE = i32;

pub const NdkObjectTypeUndefined: NDK_OBJECT_TYPE = 0;
pub const NdkObjectTypeAdapter: NDK_OBJECT_TYPE = 1;
pub const NdkObjectTypeQp: NDK_OBJECT_TYPE = 2;
pub const NdkObjectTypeCq: NDK_OBJECT_TYPE = 3;
pub const NdkObjectTypeMr: NDK_OBJECT_TYPE = 4;
pub const NdkObjectTypeMw: NDK_OBJECT_TYPE = 5;
pub const NdkObjectTypePd: NDK_OBJECT_TYPE = 6;
pub const NdkObjectTypeSharedEndpoint: NDK_OBJECT_TYPE = 7;
pub const NdkObjectTypeConnector: NDK_OBJECT_TYPE = 8;
pub const NdkObjectTypeListener: NDK_OBJECT_TYPE = 9;
pub const NdkObjectTypeSrq: NDK_OBJECT_TYPE = 10;
pub const NdkObjectTypeMax: NDK_OBJECT_TYPE = 11;

/// `NDK_OBJECT_HEADER_RESERVED_BLOCK`: four pointers that belong to the NDK
/// consumer side. The provider zeroes them at creation and never touches them
/// again before the close completes (ndkpi.h).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct NDK_OBJECT_HEADER_RESERVED_BLOCK {
    pub rf: [*mut c_void; 4],
}

impl NDK_OBJECT_HEADER_RESERVED_BLOCK {
    /// The all-zero block every new object starts with.
    pub const ZERO: Self = NDK_OBJECT_HEADER_RESERVED_BLOCK {
        rf: [core::ptr::null_mut(); 4],
    };
}

/// `NDK_OBJECT_HEADER`: first member of every NDK object, so a pointer to an
/// object's header equals the pointer to the object.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct NDK_OBJECT_HEADER {
    /// The NDKPI version the adapter operates at (negotiated at open).
    pub Version: NDK_VERSION,
    /// One of the `NdkObjectType*` values, never 0 for a live object.
    pub ObjectType: NDK_OBJECT_TYPE,
    /// Consumer-owned; see [`NDK_OBJECT_HEADER_RESERVED_BLOCK`].
    pub NdkReserved: NDK_OBJECT_HEADER_RESERVED_BLOCK,
}

impl NDK_OBJECT_HEADER {
    /// The header a provider writes into a new object.
    pub const fn new(version: NDK_VERSION, object_type: NDK_OBJECT_TYPE) -> Self {
        NDK_OBJECT_HEADER {
            Version: version,
            ObjectType: object_type,
            NdkReserved: NDK_OBJECT_HEADER_RESERVED_BLOCK::ZERO,
        }
    }
}

macro_rules! ndk_objects {
    ($($(#[$doc:meta])* $name:ident => $dispatch:ident, $ty:ident;)*) => {$(
        $(#[$doc])*
        #[repr(C)]
        #[derive(Debug)]
        pub struct $name {
            pub Header: NDK_OBJECT_HEADER,
            pub Dispatch: *const $dispatch,
        }

        impl $name {
            /// The `NDK_OBJECT_TYPE` value this struct carries in its header.
            pub const OBJECT_TYPE: NDK_OBJECT_TYPE = $ty;
        }
    )*};
}

ndk_objects! {
    /// `NDK_ADAPTER`: opened and closed through NDIS (OPEN/CLOSE_NDK_ADAPTER_HANDLER).
    NDK_ADAPTER => NDK_ADAPTER_DISPATCH, NdkObjectTypeAdapter;
    /// `NDK_QP`: a reliable-connected queue pair.
    NDK_QP => NDK_QP_DISPATCH, NdkObjectTypeQp;
    /// `NDK_CQ`: a completion queue.
    NDK_CQ => NDK_CQ_DISPATCH, NdkObjectTypeCq;
    /// `NDK_MR`: a memory region (regular or fast-register).
    NDK_MR => NDK_MR_DISPATCH, NdkObjectTypeMr;
    /// `NDK_MW`: a memory window.
    NDK_MW => NDK_MW_DISPATCH, NdkObjectTypeMw;
    /// `NDK_PD`: a protection domain.
    NDK_PD => NDK_PD_DISPATCH, NdkObjectTypePd;
    /// `NDK_SHARED_ENDPOINT`: a local address shared by several connectors.
    NDK_SHARED_ENDPOINT => NDK_SHARED_ENDPOINT_DISPATCH, NdkObjectTypeSharedEndpoint;
    /// `NDK_CONNECTOR`: one connection's establishment and teardown.
    NDK_CONNECTOR => NDK_CONNECTOR_DISPATCH, NdkObjectTypeConnector;
    /// `NDK_LISTENER`: accepts incoming connection requests on an address.
    NDK_LISTENER => NDK_LISTENER_DISPATCH, NdkObjectTypeListener;
    /// `NDK_SRQ`: a shared receive queue.
    NDK_SRQ => NDK_SRQ_DISPATCH, NdkObjectTypeSrq;
}
