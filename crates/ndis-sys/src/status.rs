//! NTSTATUS / NDIS_STATUS values and NDIS object-header types (ndis.h, ntddndis.h).

use super::*;

// ---------------------------------------------------------------- statuses

pub const NDIS_STATUS_SUCCESS: NDIS_STATUS = 0;
pub const NDIS_STATUS_PENDING: NDIS_STATUS = 0x0000_0103;
pub const NDIS_STATUS_FAILURE: NDIS_STATUS = 0xC000_0001_u32 as i32;
pub const NDIS_STATUS_RESOURCES: NDIS_STATUS = 0xC000_009A_u32 as i32;
pub const NDIS_STATUS_NOT_SUPPORTED: NDIS_STATUS = 0xC000_00BB_u32 as i32;
pub const NDIS_STATUS_BAD_VERSION: NDIS_STATUS = 0xC001_0004_u32 as i32;
pub const NDIS_STATUS_ADAPTER_NOT_READY: NDIS_STATUS = 0xC001_0011_u32 as i32;
/// `NDIS_STATUS_INVALID_LENGTH` (0xC0010014).
pub const NDIS_STATUS_INVALID_LENGTH: NDIS_STATUS = 0xC001_0014_u32 as i32;
/// `NDIS_STATUS_BUFFER_TOO_SHORT` (0xC0010016).
pub const NDIS_STATUS_BUFFER_TOO_SHORT: NDIS_STATUS = 0xC001_0016_u32 as i32;
/// `NDIS_STATUS_INVALID_DATA` (0xC0010015).
pub const NDIS_STATUS_INVALID_DATA: NDIS_STATUS = 0xC001_0015_u32 as i32;
/// `NDIS_STATUS_PAUSED` (0xC023002A): completion status of sends while paused.
pub const NDIS_STATUS_PAUSED: NDIS_STATUS = 0xC023_002A_u32 as i32;

/// `NDIS_STATUS_L2_MTU_SIZE_CHANGE` (ndis.h, NDIS 6.50 status codes,
/// 0x400200B1): the miniport's MTU changed; StatusBuffer is a ULONG, the
/// new MTU in bytes (as NetAdapterCx indicates NetAdapterSetLinkLayerMtuSize).
pub const NDIS_STATUS_L2_MTU_SIZE_CHANGE: NDIS_STATUS = 0x4002_00B1;

// ------------------------------------------------------------- event codes

/// `EVENT_NDIS_UNSUPPORTED_CONFIGURATION` (netevent.h; its message text is
/// netevent.dll's, the event ID 5009 with error severity): the event code
/// NdisWriteEventLogEntry logs when the adapter runs without its datagram
/// filter (docs/windows.md, "Event log").
pub const EVENT_NDIS_UNSUPPORTED_CONFIGURATION: NDIS_STATUS = 0xC000_1391_u32 as i32;

// ------------------------------------------------------------ object types

/// ntddndis.h object types (public header copies; the BIN checks above
/// confirm 0x8A and 0x8B).
pub const NDIS_OBJECT_TYPE_DEFAULT: UCHAR = 0x80;
pub const NDIS_OBJECT_TYPE_MINIPORT_DRIVER_CHARACTERISTICS: UCHAR = 0x8A;
pub const NDIS_OBJECT_TYPE_FILTER_DRIVER_CHARACTERISTICS: UCHAR = 0x8B;
pub const NDIS_OBJECT_TYPE_FILTER_ATTRIBUTES: UCHAR = 0x8D;
pub const NDIS_OBJECT_TYPE_STATUS_INDICATION: UCHAR = 0x98;
pub const NDIS_OBJECT_TYPE_MINIPORT_ADAPTER_REGISTRATION_ATTRIBUTES: UCHAR = 0x9E;
pub const NDIS_OBJECT_TYPE_MINIPORT_ADAPTER_GENERAL_ATTRIBUTES: UCHAR = 0x9F;
pub const NDIS_OBJECT_TYPE_NET_BUFFER_LIST_POOL_PARAMETERS: UCHAR = NDIS_OBJECT_TYPE_DEFAULT;
pub use ndkpi::{
    NDIS_MINIPORT_ADAPTER_NDK_ATTRIBUTES_REVISION_1,
    NDIS_OBJECT_TYPE_MINIPORT_ADAPTER_NDK_ATTRIBUTES,
    NDIS_SIZEOF_MINIPORT_ADAPTER_NDK_ATTRIBUTES_REVISION_1,
};

/// `UNICODE_STRING` / `NDIS_STRING` (ntdef.h): Length, MaximumLength (bytes),
/// Buffer. x64: 16 bytes, Buffer at 8 (BIN: wdk-sys binds the same).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct UNICODE_STRING {
    pub Length: USHORT,
    pub MaximumLength: USHORT,
    pub Buffer: *const u16,
}
const _: () = assert!(size_of::<UNICODE_STRING>() == 16 && offset_of!(UNICODE_STRING, Buffer) == 8);
/// `NDIS_STRING`.
pub type NDIS_STRING = UNICODE_STRING;
