//! OID requests, the mandatory OID payloads and configuration reading (ndis.h, ntddndis.h).

use super::*;

// ------------------------------------------------------------ OID requests

/// `NDIS_REQUEST_TYPE` values the shell answers.
pub const NdisRequestQueryInformation: u32 = 0;
pub const NdisRequestSetInformation: u32 = 1;
pub const NdisRequestQueryStatistics: u32 = 2;
pub const NdisRequestMethod: u32 = 12;

/// The QUERY_INFORMATION / SET_INFORMATION arm of NDIS_OID_REQUEST's DATA
/// union (the two arms share this layout; for a set, `BytesWritten` is
/// `BytesRead`).
#[repr(C)]
#[derive(Debug)]
pub struct NDIS_OID_REQUEST_INFORMATION {
    pub Oid: NDIS_OID,
    pub InformationBuffer: PVOID,
    pub InformationBufferLength: u32,
    pub BytesWritten: u32,
    pub BytesNeeded: u32,
}

/// `NDIS_OID_REQUEST` prefix (ndis.h, DOC order: Header, RequestType,
/// PortNumber, Timeout, RequestId, RequestHandle, DATA union, NdisReserved…).
/// NDIS owns the structure; the shell reads the type and the query/set arm
/// and writes the byte counts. PDB: an x64 ndis.sys `_NDIS_OID_REQUEST` dump
/// in ntdiff/headers (RequestId 0x10, RequestHandle 0x18, DATA 0x20, size
/// 0xF0; found by content search, the file path was not shown).
#[repr(C)]
#[derive(Debug)]
pub struct NDIS_OID_REQUEST {
    pub Header: NDIS_OBJECT_HEADER,
    pub RequestType: u32,
    pub PortNumber: NDIS_PORT_NUMBER,
    pub Timeout: u32,
    pub RequestId: PVOID,
    pub RequestHandle: NDIS_HANDLE,
    pub DATA: NDIS_OID_REQUEST_INFORMATION,
}
const _: () = {
    type R = NDIS_OID_REQUEST;
    assert!(offset_of!(R, RequestId) == 0x10);
    assert!(offset_of!(R, DATA) == 0x20);
    assert!(
        offset_of!(R, DATA) + offset_of!(NDIS_OID_REQUEST_INFORMATION, InformationBuffer) == 0x28
    );
    assert!(offset_of!(R, DATA) + offset_of!(NDIS_OID_REQUEST_INFORMATION, BytesNeeded) == 0x38);
};

/// General OIDs every NDIS 6 Ethernet miniport answers (ntddndis.h values).
pub const OID_GEN_SUPPORTED_LIST: NDIS_OID = 0x0001_0101;
pub const OID_GEN_HARDWARE_STATUS: NDIS_OID = 0x0001_0102;
pub const OID_GEN_MEDIA_SUPPORTED: NDIS_OID = 0x0001_0103;
pub const OID_GEN_MEDIA_IN_USE: NDIS_OID = 0x0001_0104;
pub const OID_GEN_MAXIMUM_LOOKAHEAD: NDIS_OID = 0x0001_0105;
pub const OID_GEN_MAXIMUM_FRAME_SIZE: NDIS_OID = 0x0001_0106;
pub const OID_GEN_LINK_SPEED: NDIS_OID = 0x0001_0107;
pub const OID_GEN_TRANSMIT_BUFFER_SPACE: NDIS_OID = 0x0001_0108;
pub const OID_GEN_RECEIVE_BUFFER_SPACE: NDIS_OID = 0x0001_0109;
pub const OID_GEN_TRANSMIT_BLOCK_SIZE: NDIS_OID = 0x0001_010A;
pub const OID_GEN_RECEIVE_BLOCK_SIZE: NDIS_OID = 0x0001_010B;
pub const OID_GEN_VENDOR_ID: NDIS_OID = 0x0001_010C;
pub const OID_GEN_VENDOR_DESCRIPTION: NDIS_OID = 0x0001_010D;
pub const OID_GEN_CURRENT_PACKET_FILTER: NDIS_OID = 0x0001_010E;
pub const OID_GEN_CURRENT_LOOKAHEAD: NDIS_OID = 0x0001_010F;
pub const OID_GEN_DRIVER_VERSION: NDIS_OID = 0x0001_0110;
pub const OID_GEN_MAXIMUM_TOTAL_SIZE: NDIS_OID = 0x0001_0111;
pub const OID_GEN_MAC_OPTIONS: NDIS_OID = 0x0001_0113;
pub const OID_GEN_MAXIMUM_SEND_PACKETS: NDIS_OID = 0x0001_0115;
pub const OID_GEN_VENDOR_DRIVER_VERSION: NDIS_OID = 0x0001_0116;
pub const OID_GEN_NETWORK_LAYER_ADDRESSES: NDIS_OID = 0x0001_0118;
pub const OID_GEN_XMIT_OK: NDIS_OID = 0x0002_0101;
pub const OID_GEN_RCV_OK: NDIS_OID = 0x0002_0102;
pub const OID_GEN_STATISTICS: NDIS_OID = 0x0002_0106;
pub const OID_GEN_INTERRUPT_MODERATION: NDIS_OID = 0x0001_0209;
pub const OID_802_3_PERMANENT_ADDRESS: NDIS_OID = 0x0101_0101;
pub const OID_802_3_CURRENT_ADDRESS: NDIS_OID = 0x0101_0102;
pub const OID_802_3_MULTICAST_LIST: NDIS_OID = 0x0101_0103;
pub const OID_802_3_MAXIMUM_LIST_SIZE: NDIS_OID = 0x0101_0104;
pub use ndkpi::{
    OID_NDK_CONNECTIONS, OID_NDK_LOCAL_ENDPOINTS, OID_NDK_SET_STATE, OID_NDK_STATISTICS,
};

// ------------------------------------------------- mandatory OID payloads

/// `NDIS_STATISTICS_INFO` (ntddndis.h), the OID_GEN_STATISTICS answer:
/// Header, SupportedStatistics, then eighteen ULONG64 counters. Checked
/// against mingw-w64's ntddndis.h by `.ci/layouts/check.sh`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct NDIS_STATISTICS_INFO {
    pub Header: NDIS_OBJECT_HEADER,
    pub SupportedStatistics: ULONG,
    pub ifInDiscards: ULONG64,
    pub ifInErrors: ULONG64,
    pub ifHCInOctets: ULONG64,
    pub ifHCInUcastPkts: ULONG64,
    pub ifHCInMulticastPkts: ULONG64,
    pub ifHCInBroadcastPkts: ULONG64,
    pub ifHCOutOctets: ULONG64,
    pub ifHCOutUcastPkts: ULONG64,
    pub ifHCOutMulticastPkts: ULONG64,
    pub ifHCOutBroadcastPkts: ULONG64,
    pub ifOutErrors: ULONG64,
    pub ifOutDiscards: ULONG64,
    pub ifHCInUcastOctets: ULONG64,
    pub ifHCInMulticastOctets: ULONG64,
    pub ifHCInBroadcastOctets: ULONG64,
    pub ifHCOutUcastOctets: ULONG64,
    pub ifHCOutMulticastOctets: ULONG64,
    pub ifHCOutBroadcastOctets: ULONG64,
}
pub const NDIS_STATISTICS_INFO_REVISION_1: UCHAR = 1;
/// RTL_SIZEOF_THROUGH_FIELD(NDIS_STATISTICS_INFO, ifHCOutBroadcastOctets).
pub const NDIS_SIZEOF_STATISTICS_INFO_REVISION_1: USHORT = 0x98;
const _: () = assert!(size_of::<NDIS_STATISTICS_INFO>() == 0x98);
/// `NDIS_STATISTICS_FLAGS_VALID_*` bits of NDIS_STATISTICS_INFO (ntddndis.h).
pub const NDIS_STATISTICS_FLAGS_VALID_DIRECTED_FRAMES_RCV: ULONG = 0x0000_0001;
pub const NDIS_STATISTICS_FLAGS_VALID_BYTES_RCV: ULONG = 0x0000_0008;
pub const NDIS_STATISTICS_FLAGS_VALID_DIRECTED_FRAMES_XMIT: ULONG = 0x0000_0040;
pub const NDIS_STATISTICS_FLAGS_VALID_BYTES_XMIT: ULONG = 0x0000_0200;

/// `NDIS_INTERRUPT_MODERATION_PARAMETERS` (ntddndis.h), the
/// OID_GEN_INTERRUPT_MODERATION answer.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct NDIS_INTERRUPT_MODERATION_PARAMETERS {
    pub Header: NDIS_OBJECT_HEADER,
    pub Flags: ULONG,
    pub InterruptModeration: u32,
}
pub const NDIS_INTERRUPT_MODERATION_PARAMETERS_REVISION_1: UCHAR = 1;
pub const NDIS_SIZEOF_INTERRUPT_MODERATION_PARAMETERS_REVISION_1: USHORT = 12;
/// `NdisInterruptModerationNotSupported` (NDIS_INTERRUPT_MODERATION).
pub const NdisInterruptModerationNotSupported: u32 = 1;

// ---------------------------------------------------------- configuration

/// `NDIS_CONFIGURATION_OBJECT` (ndis.h, DOC: Header, NdisHandle, Flags),
/// NdisOpenConfigurationEx's input. Revision 1 size =
/// RTL_SIZEOF_THROUGH_FIELD(Flags) = 0x14 (computed from the member list).
#[repr(C)]
#[derive(Debug)]
pub struct NDIS_CONFIGURATION_OBJECT {
    pub Header: NDIS_OBJECT_HEADER,
    pub NdisHandle: NDIS_HANDLE,
    pub Flags: ULONG,
}
/// ntddndis.h (checked against mingw-w64 by .ci/layouts).
pub const NDIS_OBJECT_TYPE_CONFIGURATION_OBJECT: UCHAR = 0xA9;
pub const NDIS_CONFIGURATION_OBJECT_REVISION_1: UCHAR = 1;
pub const NDIS_SIZEOF_CONFIGURATION_OBJECT_REVISION_1: USHORT = 0x14;
const _: () = {
    assert!(offset_of!(NDIS_CONFIGURATION_OBJECT, NdisHandle) == 8);
    assert!(
        offset_of!(NDIS_CONFIGURATION_OBJECT, Flags) + 4
            == NDIS_SIZEOF_CONFIGURATION_OBJECT_REVISION_1 as usize
    );
};

/// `NDIS_CONFIGURATION_PARAMETER` (ndis.h) with its integer arm: the
/// ParameterData union holds a UNICODE_STRING, so it starts at 8. PDB:
/// ntdiff/headers `Win8/x64/System32/ndis.sys/Standalone/_NDIS_CONFIGURATION_PARAMETER.h`
/// (IntegerData 0x08, size 0x18; NdisParameterInteger 0).
#[repr(C)]
#[derive(Debug)]
pub struct NDIS_CONFIGURATION_PARAMETER {
    pub ParameterType: u32,
    _Align: u32,
    /// The union's IntegerData arm (its other arms are 16 bytes).
    pub IntegerData: ULONG,
    _Rest: u32,
    _Buffer: usize,
}
const _: () = {
    type P = NDIS_CONFIGURATION_PARAMETER;
    assert!(offset_of!(P, IntegerData) == 0x08);
    assert!(size_of::<P>() == 0x18);
};
/// `NdisParameterInteger`.
pub const NdisParameterInteger: u32 = 0;
/// `NdisParameterHexInteger`.
pub const NdisParameterHexInteger: u32 = 1;
