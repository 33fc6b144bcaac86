//! Data structures exchanged through the NDK tables (ndkpi.h, ndkinfo.h;
//! ndkpi.h).

use core::ffi::c_void;

use crate::base::{NTSTATUS, PHYSICAL_ADDRESS, PVOID, SIZE_T, UINT32, ULONG, ULONG_PTR};
use crate::version::NDK_VERSION;

/// `NDK_LOGICAL_ADDRESS` (= `PHYSICAL_ADDRESS`): an adapter logical address.
pub type NDK_LOGICAL_ADDRESS = PHYSICAL_ADDRESS;

/// The anonymous union at the start of `NDK_SGE`.
#[repr(C)]
#[derive(Clone, Copy)]
pub union NDK_SGE_ADDRESS {
    /// For buffers registered through an MR (local token from
    /// NdkGetLocalTokenFromMr).
    pub VirtualAddress: PVOID,
    /// For buffers mapped with NdkBuildLAM and the privileged token.
    pub LogicalAddress: NDK_LOGICAL_ADDRESS,
}

impl core::fmt::Debug for NDK_SGE_ADDRESS {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // SAFETY: both members are 8 bytes of plain data; any bit pattern is a
        // valid i64.
        let raw = unsafe { self.LogicalAddress };
        write!(f, "{raw:#x}")
    }
}

/// `NDK_SGE`: one scatter/gather element of a work request.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct NDK_SGE {
    pub Address: NDK_SGE_ADDRESS,
    /// Byte count.
    pub Length: ULONG,
    /// Local token; may be invalid for NDK_OP_FLAG_INLINE sends.
    pub MemoryRegionToken: UINT32,
}

/// `NDK_LOGICAL_ADDRESS_MAPPING`: variable length. The declared struct holds
/// one page entry; the real size is
/// [`NDK_LOGICAL_ADDRESS_MAPPING::size_for`]`(AdapterPageCount)`.
#[repr(C)]
#[derive(Debug)]
pub struct NDK_LOGICAL_ADDRESS_MAPPING {
    /// Reserved for the provider's own use.
    pub AdapterContext: PVOID,
    /// Number of entries in `AdapterPageArray`.
    pub AdapterPageCount: ULONG,
    pub AdapterPageArray: [NDK_LOGICAL_ADDRESS; 1],
}

impl NDK_LOGICAL_ADDRESS_MAPPING {
    /// Byte size of a mapping with `pages` entries (the header's
    /// `_Struct_size_bytes_`: offset of the array plus the entries), or `None`
    /// on overflow.
    pub const fn size_for(pages: ULONG) -> Option<usize> {
        let array = core::mem::offset_of!(Self, AdapterPageArray);
        match (pages as usize).checked_mul(core::mem::size_of::<NDK_LOGICAL_ADDRESS>()) {
            Some(bytes) => array.checked_add(bytes),
            None => None,
        }
    }
}

/// `NDK_RESULT`: one completion as returned by NdkGetCqResults.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct NDK_RESULT {
    pub Status: NTSTATUS,
    /// Valid for receive completions.
    pub BytesTransferred: ULONG,
    /// The QPContext given at QP creation.
    pub QPContext: PVOID,
    /// The RequestContext given when the request was posted.
    pub RequestContext: PVOID,
}

/// `NDK_OPERATION_TYPE` (NDKPI 1.2): which request a result completes.
pub type NDK_OPERATION_TYPE = i32;

pub const NdkOperationTypeReceive: NDK_OPERATION_TYPE = 0x0001;
/// A receive that consumed a peer's NdkSendAndInvalidate.
pub const NdkOperationTypeReceiveAndInvalidate: NDK_OPERATION_TYPE = 0x8001;
/// Send, and also NdkSendAndInvalidate.
pub const NdkOperationTypeSend: NDK_OPERATION_TYPE = 0x0002;
pub const NdkOperationTypeFastRegister: NDK_OPERATION_TYPE = 0x0004;
pub const NdkOperationTypeBind: NDK_OPERATION_TYPE = 0x0008;
pub const NdkOperationTypeInvalidate: NDK_OPERATION_TYPE = 0x0010;
pub const NdkOperationTypeRead: NDK_OPERATION_TYPE = 0x0020;
pub const NdkOperationTypeWrite: NDK_OPERATION_TYPE = 0x0040;

/// `NDK_RESULT_EX` (NDKPI 1.2): NdkGetCqResultsEx's result; its first 24
/// bytes are laid out as [`NDK_RESULT`].
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct NDK_RESULT_EX {
    pub Status: NTSTATUS,
    pub BytesTransferred: ULONG,
    pub QPContext: PVOID,
    pub RequestContext: PVOID,
    pub Type: NDK_OPERATION_TYPE,
    /// NDKPI 2.1: 0 when `Status` is STATUS_SUCCESS; otherwise a
    /// provider-specific diagnostic code, or 0 for none. It occupies what was
    /// padding in the 1.2 layout on x64, so the struct's size and the other
    /// offsets are unchanged. The ndkpi.h copy behind the project's digest
    /// (NDKPI 1.2) shows padding here; the current NDK_RESULT_EX reference
    /// page declares this member, and the page wins.
    pub ProviderErrorCode: ULONG,
    /// For ReceiveAndInvalidate, the invalidated token; otherwise undefined.
    pub TypeSpecificCompletionOutput: ULONG_PTR,
}

/// `NDK_EXTENSION_INTERFACE`: filled by NdkQueryExtension.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct NDK_EXTENSION_INTERFACE {
    /// Extension-specific dispatch table.
    pub Dispatch: *const c_void,
}

/// `NDK_RDMA_TECHNOLOGY` (ndkinfo.h); also the values of the
/// `*NetworkDirectTechnology` INF keyword.
pub type NDK_RDMA_TECHNOLOGY = i32;

pub const NdkUndefined: NDK_RDMA_TECHNOLOGY = 0;
pub const NdkiWarp: NDK_RDMA_TECHNOLOGY = 1;
pub const NdkInfiniBand: NDK_RDMA_TECHNOLOGY = 2;
pub const NdkRoCE: NDK_RDMA_TECHNOLOGY = 3;
pub const NdkRoCEv2: NDK_RDMA_TECHNOLOGY = 4;
pub const NdkMaxTechnology: NDK_RDMA_TECHNOLOGY = 5;

/// `NDK_ADAPTER_INFO` (ndkinfo.h): the adapter's limits and capabilities,
/// returned by NdkQueryAdapterInfo.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NDK_ADAPTER_INFO {
    pub Version: NDK_VERSION,
    pub VendorId: UINT32,
    pub DeviceId: UINT32,
    pub MaxRegistrationSize: SIZE_T,
    pub MaxWindowSize: SIZE_T,
    pub FRMRPageCount: ULONG,
    pub MaxInitiatorRequestSge: ULONG,
    pub MaxReceiveRequestSge: ULONG,
    pub MaxReadRequestSge: ULONG,
    pub MaxTransferLength: ULONG,
    pub MaxInlineDataSize: ULONG,
    pub MaxInboundReadLimit: ULONG,
    pub MaxOutboundReadLimit: ULONG,
    pub MaxReceiveQueueDepth: ULONG,
    pub MaxInitiatorQueueDepth: ULONG,
    pub MaxSrqDepth: ULONG,
    pub MaxCqDepth: ULONG,
    pub LargeRequestThreshold: ULONG,
    pub MaxCallerData: ULONG,
    pub MaxCalleeData: ULONG,
    /// `NDK_ADAPTER_FLAG_*`.
    pub AdapterFlags: ULONG,
    /// Added with NDIS 6.50 (Windows Server 2016); older consumers pass a
    /// buffer that ends at `AdapterFlags` (ndkinfo.h).
    pub RdmaTechnology: NDK_RDMA_TECHNOLOGY,
}

impl NDK_ADAPTER_INFO {
    /// Byte size of the pre-NDIS-6.50 form that ends at `AdapterFlags`
    /// (`RTL_SIZEOF_THROUGH_FIELD(NDK_ADAPTER_INFO, AdapterFlags)`).
    pub const SIZE_THROUGH_ADAPTER_FLAGS: usize =
        core::mem::offset_of!(Self, AdapterFlags) + core::mem::size_of::<ULONG>();
}
