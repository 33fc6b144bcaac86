//! The NDIS, NETIO and kernel declarations the ndkrs driver shell uses, and
//! nothing else.
//!
//! windows-drivers-rs (wdk-sys) binds no NDIS, NDK or WSK header (shared spec
//! windows-drivers-rs: wdk-sys has no NDIS bindings), so these are written by hand. Hand-written NDIS
//! structures are the riskiest part of the driver, so the set is kept to what
//! the shell touches, and every layout carries its source and an x86_64
//! size/offset assertion evaluated at compile time (for the host in
//! `cargo test`, for x86_64-pc-windows-msvc in the kernel-image check):
//!
//! * **BIN**: checked against ndis.sys itself: decompiled validation code of
//!   `ndisValidateMiniportDriverCharacteristicsHeader` (Type 0x8A; revision 1
//!   needs Size >= 136, revision 2 >= 152, revision 3 >= 160) and of
//!   `NdisFRegisterFilterDriver` (Type 0x8B; NDIS 6.0 Size 0xC8, 6.1..6.70
//!   revision >= 2 and Size >= 0xE0), found through the code index; or a
//!   PDB-derived dump (ntdiff/headers, as in public PDB type dumps (ntdiff/headers)).
//! * **DOC**: the member list of the DDI reference page
//!   (MicrosoftDocs/windows-driver-docs-ddi, `wdk-ddi-src/content/ndis/…`),
//!   laid out with the x64 rules (pointer 8, ULONG 4, enum 4, natural
//!   alignment). Object-type numbers are from public ntddndis.h copies
//!   (ntddndis.h) and the win32metadata bindings; they agree.
//! * **PDB**: x64 ndis.sys type dumps in ntdiff/headers (path named on
//!   each item).
//! * **mingw**: everything mingw-w64's headers also define (ntddndis.h,
//!   netioapi.h, ntddk.h, …) is compared with them by `.ci/layouts/check.sh`
//!   (printed by `examples/layouts.rs`, compiled as C static assertions for
//!   x86_64-w64-mingw32).
//! * **UNCONFIRMED**: said so on the item, with the reason.
//!
//! Structures the shell only receives from NDIS (OID requests, filter attach
//! parameters, NET_BUFFER_LISTs) are declared as *prefixes*: the fields up to
//! the last one the shell reads. The shell never allocates, copies or sizes
//! them, so the unknown tail cannot be misread.
//!
//! Functions are `extern "system"` imports from the kernel modules that
//! export them (ndis.sys, ntoskrnl.exe, netio.sys); `.ci/kernel-image/def`
//! lists the same names, and the kernel-image check fails on anything else.
//! The macros of the headers that the shell needs (MmGetSystemAddressForMdlSafe,
//! MmGetMdlVirtualAddress, MmGetMdlByteCount, NET_BUFFER_LIST_NEXT_NBL, …)
//! are small Rust functions here.
#![no_std]
// Every unsafe block names the invariant it relies on (`// SAFETY:`).
#![deny(clippy::undocumented_unsafe_blocks)]
#![allow(
    non_camel_case_types,
    non_snake_case,
    non_upper_case_globals,
    clippy::upper_case_acronyms
)]

use core::ffi::c_void;
use core::mem::{offset_of, size_of};

pub use ndkpi::{
    BOOLEAN, GUID, LARGE_INTEGER, NDIS_HANDLE, NDIS_MINIPORT_ADAPTER_NDK_ATTRIBUTES,
    NDIS_NDK_PROVIDER_CHARACTERISTICS, NDIS_OBJECT_HEADER, NDIS_OID, NDIS_STATUS, NTSTATUS, PVOID,
    SOCKADDR_INET, UCHAR, ULONG, ULONG64, USHORT,
};

/// `NDIS_PORT_NUMBER`.
pub type NDIS_PORT_NUMBER = ULONG;
/// `NET_IFINDEX`.
pub type NET_IFINDEX = ULONG;
/// `NET_LUID` as its 64-bit `Value`.
pub type NET_LUID = u64;
/// `KIRQL`.
pub type KIRQL = u8;
/// `KSPIN_LOCK` (`ULONG_PTR`).
pub type KSPIN_LOCK = usize;

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

// ------------------------------------------------------------ object types

/// ntddndis.h object types (public header copies; the BIN checks above
/// confirm 0x8A and 0x8B).
pub const NDIS_OBJECT_TYPE_DEFAULT: UCHAR = 0x80;
pub const NDIS_OBJECT_TYPE_MINIPORT_DRIVER_CHARACTERISTICS: UCHAR = 0x8A;
pub const NDIS_OBJECT_TYPE_FILTER_DRIVER_CHARACTERISTICS: UCHAR = 0x8B;
pub const NDIS_OBJECT_TYPE_FILTER_ATTRIBUTES: UCHAR = 0x8D;
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

// -------------------------------------------------------- miniport driver

/// `MINIPORT_INITIALIZE` etc.: handler types of the miniport characteristics.
pub type SET_OPTIONS_HANDLER = Option<
    unsafe extern "system" fn(
        NdisDriverHandle: NDIS_HANDLE,
        DriverContext: NDIS_HANDLE,
    ) -> NDIS_STATUS,
>;
pub type MINIPORT_INITIALIZE_HANDLER = Option<
    unsafe extern "system" fn(
        NdisMiniportHandle: NDIS_HANDLE,
        MiniportDriverContext: NDIS_HANDLE,
        MiniportInitParameters: *mut NDIS_MINIPORT_INIT_PARAMETERS,
    ) -> NDIS_STATUS,
>;
pub type MINIPORT_HALT_HANDLER =
    Option<unsafe extern "system" fn(MiniportAdapterContext: NDIS_HANDLE, HaltAction: u32)>;
pub type MINIPORT_DRIVER_UNLOAD = Option<unsafe extern "system" fn(DriverObject: *mut c_void)>;
pub type MINIPORT_PAUSE_HANDLER = Option<
    unsafe extern "system" fn(
        MiniportAdapterContext: NDIS_HANDLE,
        Parameters: *mut c_void,
    ) -> NDIS_STATUS,
>;
pub type MINIPORT_RESTART_HANDLER = MINIPORT_PAUSE_HANDLER;
pub type MINIPORT_OID_REQUEST_HANDLER = Option<
    unsafe extern "system" fn(
        MiniportAdapterContext: NDIS_HANDLE,
        OidRequest: *mut NDIS_OID_REQUEST,
    ) -> NDIS_STATUS,
>;
pub type MINIPORT_SEND_NET_BUFFER_LISTS_HANDLER = Option<
    unsafe extern "system" fn(
        MiniportAdapterContext: NDIS_HANDLE,
        NetBufferList: *mut NET_BUFFER_LIST,
        PortNumber: NDIS_PORT_NUMBER,
        SendFlags: ULONG,
    ),
>;
pub type MINIPORT_RETURN_NET_BUFFER_LISTS_HANDLER = Option<
    unsafe extern "system" fn(
        MiniportAdapterContext: NDIS_HANDLE,
        NetBufferLists: *mut NET_BUFFER_LIST,
        ReturnFlags: ULONG,
    ),
>;
pub type MINIPORT_CANCEL_SEND_HANDLER =
    Option<unsafe extern "system" fn(MiniportAdapterContext: NDIS_HANDLE, CancelId: PVOID)>;
pub type MINIPORT_DEVICE_PNP_EVENT_NOTIFY_HANDLER = Option<
    unsafe extern "system" fn(MiniportAdapterContext: NDIS_HANDLE, NetDevicePnPEvent: *mut c_void),
>;
pub type MINIPORT_SHUTDOWN_HANDLER =
    Option<unsafe extern "system" fn(MiniportAdapterContext: NDIS_HANDLE, ShutdownAction: u32)>;
pub type MINIPORT_CANCEL_OID_REQUEST_HANDLER =
    Option<unsafe extern "system" fn(MiniportAdapterContext: NDIS_HANDLE, RequestId: PVOID)>;

/// `NDIS_MINIPORT_DRIVER_CHARACTERISTICS` (ndis.h), declared through the
/// NDIS 6.80 member. Layout: DOC member order, sizes BIN-confirmed (revision
/// 1 through CancelOidRequestHandler = 136, revision 2 through
/// CancelDirectOidRequestHandler = 152, revision 3 = 160).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct NDIS_MINIPORT_DRIVER_CHARACTERISTICS {
    pub Header: NDIS_OBJECT_HEADER,
    pub MajorNdisVersion: UCHAR,
    pub MinorNdisVersion: UCHAR,
    pub MajorDriverVersion: UCHAR,
    pub MinorDriverVersion: UCHAR,
    pub Flags: ULONG,
    pub SetOptionsHandler: SET_OPTIONS_HANDLER,
    pub InitializeHandlerEx: MINIPORT_INITIALIZE_HANDLER,
    pub HaltHandlerEx: MINIPORT_HALT_HANDLER,
    pub UnloadHandler: MINIPORT_DRIVER_UNLOAD,
    pub PauseHandler: MINIPORT_PAUSE_HANDLER,
    pub RestartHandler: MINIPORT_RESTART_HANDLER,
    pub OidRequestHandler: MINIPORT_OID_REQUEST_HANDLER,
    pub SendNetBufferListsHandler: MINIPORT_SEND_NET_BUFFER_LISTS_HANDLER,
    pub ReturnNetBufferListsHandler: MINIPORT_RETURN_NET_BUFFER_LISTS_HANDLER,
    pub CancelSendHandler: MINIPORT_CANCEL_SEND_HANDLER,
    pub CheckForHangHandlerEx: PVOID,
    pub ResetHandlerEx: PVOID,
    pub DevicePnPEventNotifyHandler: MINIPORT_DEVICE_PNP_EVENT_NOTIFY_HANDLER,
    pub ShutdownHandlerEx: MINIPORT_SHUTDOWN_HANDLER,
    pub CancelOidRequestHandler: MINIPORT_CANCEL_OID_REQUEST_HANDLER,
    /// NDIS 6.1 (revision 2); required for miniports that implement RDMA
    /// (DOC), since OID_NDK_STATISTICS comes through it.
    pub DirectOidRequestHandler: MINIPORT_OID_REQUEST_HANDLER,
    pub CancelDirectOidRequestHandler: MINIPORT_CANCEL_OID_REQUEST_HANDLER,
    /// NDIS 6.80 (revision 3); ndkrs registers revision 2 and leaves it null.
    pub SynchronousOidRequestHandler: PVOID,
}
pub const NDIS_MINIPORT_DRIVER_CHARACTERISTICS_REVISION_2: UCHAR = 2;
/// Size through CancelDirectOidRequestHandler (BIN: 152).
pub const NDIS_SIZEOF_MINIPORT_DRIVER_CHARACTERISTICS_REVISION_2: USHORT = 152;
const _: () = {
    // PDB: ntdiff/headers Win8/x64/System32/ndis.sys/Standalone/_NDIS_M_DRIVER_BLOCK.h
    // (_NDIS_MINIPORT_DRIVER_CHARACTERISTICS of NDIS 6.30, size 0x98).
    type C = NDIS_MINIPORT_DRIVER_CHARACTERISTICS;
    assert!(offset_of!(C, MajorNdisVersion) == 4);
    assert!(offset_of!(C, MinorDriverVersion) == 7);
    assert!(offset_of!(C, Flags) == 8);
    assert!(offset_of!(C, SetOptionsHandler) == 0x10);
    assert!(offset_of!(C, InitializeHandlerEx) == 0x18);
    assert!(offset_of!(C, HaltHandlerEx) == 0x20);
    assert!(offset_of!(C, UnloadHandler) == 0x28);
    assert!(offset_of!(C, PauseHandler) == 0x30);
    assert!(offset_of!(C, RestartHandler) == 0x38);
    assert!(offset_of!(C, OidRequestHandler) == 0x40);
    assert!(offset_of!(C, SendNetBufferListsHandler) == 0x48);
    assert!(offset_of!(C, ReturnNetBufferListsHandler) == 0x50);
    assert!(offset_of!(C, CancelSendHandler) == 0x58);
    assert!(offset_of!(C, CheckForHangHandlerEx) == 0x60);
    assert!(offset_of!(C, ResetHandlerEx) == 0x68);
    assert!(offset_of!(C, DevicePnPEventNotifyHandler) == 0x70);
    assert!(offset_of!(C, ShutdownHandlerEx) == 0x78);
    assert!(offset_of!(C, CancelOidRequestHandler) == 0x80);
    assert!(offset_of!(C, DirectOidRequestHandler) == 0x88);
    assert!(offset_of!(C, CancelDirectOidRequestHandler) == 0x90);
    assert!(offset_of!(C, CancelOidRequestHandler) + 8 == 136);
    assert!(offset_of!(C, CancelDirectOidRequestHandler) + 8 == 152);
    assert!(size_of::<C>() == 160);
};
/// `NDIS_INTERMEDIATE_DRIVER` flag (not used: ndkrs is a virtual miniport).
pub const NDIS_INTERMEDIATE_DRIVER: ULONG = 0x0000_0001;

/// `NDIS_MINIPORT_INIT_PARAMETERS` prefix (ndis.h, DOC order: Header, Flags,
/// AllocatedResources, IMDeviceInstanceContext, MiniportAddDeviceContext,
/// IfIndex, NetLuid, …). The shell reads `IfIndex` and `NetLuid` only.
#[repr(C)]
#[derive(Debug)]
pub struct NDIS_MINIPORT_INIT_PARAMETERS {
    pub Header: NDIS_OBJECT_HEADER,
    pub Flags: ULONG,
    pub AllocatedResources: PVOID,
    pub IMDeviceInstanceContext: NDIS_HANDLE,
    pub MiniportAddDeviceContext: NDIS_HANDLE,
    pub IfIndex: NET_IFINDEX,
    pub NetLuid: NET_LUID,
}
const _: () = {
    type P = NDIS_MINIPORT_INIT_PARAMETERS;
    assert!(offset_of!(P, IfIndex) == 0x20 && offset_of!(P, NetLuid) == 0x28);
};

/// `NDIS_MINIPORT_ADAPTER_REGISTRATION_ATTRIBUTES` (ndis.h, DOC): Header,
/// MiniportAdapterContext, AttributeFlags, CheckForHangTimeInSeconds,
/// InterfaceType. Revision 1 size = RTL_SIZEOF_THROUGH_FIELD(InterfaceType)
/// = 0x1C. (Revision 2 of NDIS 6.30 only documents new flag values.)
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct NDIS_MINIPORT_ADAPTER_REGISTRATION_ATTRIBUTES {
    pub Header: NDIS_OBJECT_HEADER,
    pub MiniportAdapterContext: NDIS_HANDLE,
    pub AttributeFlags: ULONG,
    pub CheckForHangTimeInSeconds: u32,
    pub InterfaceType: u32,
}
pub const NDIS_MINIPORT_ADAPTER_REGISTRATION_ATTRIBUTES_REVISION_1: UCHAR = 1;
pub const NDIS_SIZEOF_MINIPORT_ADAPTER_REGISTRATION_ATTRIBUTES_REVISION_1: USHORT = 0x1C;
/// `NDIS_MINIPORT_ATTRIBUTES_NO_HALT_ON_SUSPEND`.
pub const NDIS_MINIPORT_ATTRIBUTES_NO_HALT_ON_SUSPEND: ULONG = 0x0000_0008;
/// `NDIS_MINIPORT_ATTRIBUTES_SURPRISE_REMOVE_OK`.
pub const NDIS_MINIPORT_ATTRIBUTES_SURPRISE_REMOVE_OK: ULONG = 0x0000_0010;
/// `NdisInterfaceInternal` (NDIS_INTERFACE_TYPE; virtual adapters use it).
pub const NdisInterfaceInternal: u32 = 0;
const _: () = {
    type R = NDIS_MINIPORT_ADAPTER_REGISTRATION_ATTRIBUTES;
    assert!(offset_of!(R, AttributeFlags) == 0x10);
    assert!(offset_of!(R, InterfaceType) + 4 == 0x1C);
};

/// `NDIS_MINIPORT_ADAPTER_GENERAL_ATTRIBUTES` (ndis.h, NDIS 6.20 revision 2
/// through PowerManagementCapabilitiesEx). PDB: ntdiff/headers
/// `Win8/x64/System32/ndis.sys/Standalone/_NDIS_MINIPORT_ADAPTER_GENERAL_ATTRIBUTES.h`
/// (every offset asserted below, size 0xE0; the same file gives the
/// NDIS_MEDIUM, NDIS_PHYSICAL_MEDIUM and NET_IF_* enum values used here).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct NDIS_MINIPORT_ADAPTER_GENERAL_ATTRIBUTES {
    pub Header: NDIS_OBJECT_HEADER,
    pub Flags: ULONG,
    pub MediaType: u32,
    pub PhysicalMediumType: u32,
    pub MtuSize: ULONG,
    pub MaxXmitLinkSpeed: ULONG64,
    pub XmitLinkSpeed: ULONG64,
    pub MaxRcvLinkSpeed: ULONG64,
    pub RcvLinkSpeed: ULONG64,
    pub MediaConnectState: u32,
    pub MediaDuplexState: u32,
    pub LookaheadSize: ULONG,
    pub PowerManagementCapabilities: PVOID,
    pub MacOptions: ULONG,
    pub SupportedPacketFilters: ULONG,
    pub MaxMulticastListSize: ULONG,
    pub MacAddressLength: USHORT,
    pub PermanentMacAddress: [UCHAR; NDIS_MAX_PHYS_ADDRESS_LENGTH],
    pub CurrentMacAddress: [UCHAR; NDIS_MAX_PHYS_ADDRESS_LENGTH],
    pub RecvScaleCapabilities: PVOID,
    pub AccessType: u32,
    pub DirectionType: u32,
    pub ConnectionType: u32,
    pub IfType: u16,
    pub IfConnectorPresent: BOOLEAN,
    pub SupportedStatistics: ULONG,
    pub SupportedPauseFunctions: ULONG,
    pub DataBackFillSize: ULONG,
    pub ContextBackFillSize: ULONG,
    pub SupportedOidList: *const NDIS_OID,
    pub SupportedOidListLength: ULONG,
    pub AutoNegotiationFlags: ULONG,
    pub PowerManagementCapabilitiesEx: PVOID,
}
pub const NDIS_MAX_PHYS_ADDRESS_LENGTH: usize = 32;
pub const NDIS_MINIPORT_ADAPTER_GENERAL_ATTRIBUTES_REVISION_2: UCHAR = 2;
pub const NDIS_SIZEOF_MINIPORT_ADAPTER_GENERAL_ATTRIBUTES_REVISION_2: USHORT = 0xE0;
const _: () = {
    type G = NDIS_MINIPORT_ADAPTER_GENERAL_ATTRIBUTES;
    assert!(offset_of!(G, MediaType) == 0x08);
    assert!(offset_of!(G, MtuSize) == 0x10);
    assert!(offset_of!(G, MaxXmitLinkSpeed) == 0x18);
    assert!(offset_of!(G, MediaConnectState) == 0x38);
    assert!(offset_of!(G, LookaheadSize) == 0x40);
    assert!(offset_of!(G, MacOptions) == 0x50);
    assert!(offset_of!(G, MaxMulticastListSize) == 0x58);
    assert!(offset_of!(G, PermanentMacAddress) == 0x5E);
    assert!(offset_of!(G, AccessType) == 0xA8);
    assert!(offset_of!(G, ConnectionType) == 0xB0);
    assert!(offset_of!(G, IfConnectorPresent) == 0xB6);
    assert!(offset_of!(G, SupportedStatistics) == 0xB8);
    assert!(offset_of!(G, ContextBackFillSize) == 0xC4);
    assert!(offset_of!(G, SupportedOidListLength) == 0xD0);
    assert!(offset_of!(G, AutoNegotiationFlags) == 0xD4);
    assert!(offset_of!(G, PowerManagementCapabilitiesEx) == 0xD8);
    assert!(offset_of!(G, PowerManagementCapabilities) == 0x48);
    assert!(offset_of!(G, MacAddressLength) == 0x5C);
    assert!(offset_of!(G, CurrentMacAddress) == 0x7E);
    assert!(offset_of!(G, RecvScaleCapabilities) == 0xA0);
    assert!(offset_of!(G, IfType) == 0xB4);
    assert!(offset_of!(G, SupportedOidList) == 0xC8);
    assert!(size_of::<G>() == 0xE0);
};
/// `NdisMedium802_3`.
pub const NdisMedium802_3: u32 = 0;
/// `NdisPhysicalMediumUnspecified`.
pub const NdisPhysicalMediumUnspecified: u32 = 0;
/// `MediaConnectStateConnected` (NET_IF_MEDIA_CONNECT_STATE).
pub const MediaConnectStateConnected: u32 = 1;
/// `MediaDuplexStateFull`.
pub const MediaDuplexStateFull: u32 = 2;
/// `NET_IF_ACCESS_BROADCAST`.
pub const NET_IF_ACCESS_BROADCAST: u32 = 2;
/// `NET_IF_DIRECTION_SENDRECEIVE`.
pub const NET_IF_DIRECTION_SENDRECEIVE: u32 = 0;
/// `NET_IF_CONNECTION_DEDICATED`.
pub const NET_IF_CONNECTION_DEDICATED: u32 = 1;
/// `IF_TYPE_ETHERNET_CSMACD` (ipifcons.h).
pub const IF_TYPE_ETHERNET_CSMACD: u16 = 6;
/// `NDIS_STATISTICS_*_SUPPORTED` bits of SupportedStatistics (ndis.h; not
/// the NDIS_STATISTICS_FLAGS_VALID_* bits of NDIS_STATISTICS_INFO).
pub const NDIS_STATISTICS_XMIT_OK_SUPPORTED: ULONG = 0x0000_0001;
pub const NDIS_STATISTICS_RCV_OK_SUPPORTED: ULONG = 0x0000_0002;
pub const NDIS_STATISTICS_DIRECTED_FRAMES_XMIT_SUPPORTED: ULONG = 0x0000_0040;
pub const NDIS_STATISTICS_DIRECTED_FRAMES_RCV_SUPPORTED: ULONG = 0x0000_1000;
pub const NDIS_STATISTICS_BYTES_RCV_SUPPORTED: ULONG = 0x0008_0000;
pub const NDIS_STATISTICS_BYTES_XMIT_SUPPORTED: ULONG = 0x0010_0000;
pub const NDIS_STATISTICS_GEN_STATISTICS_SUPPORTED: ULONG = 0x0040_0000;
/// Packet filter bits (ntddndis.h).
pub const NDIS_PACKET_TYPE_DIRECTED: ULONG = 0x0000_0001;
pub const NDIS_PACKET_TYPE_MULTICAST: ULONG = 0x0000_0002;
pub const NDIS_PACKET_TYPE_ALL_MULTICAST: ULONG = 0x0000_0004;
pub const NDIS_PACKET_TYPE_BROADCAST: ULONG = 0x0000_0008;
/// MAC options (ntddndis.h).
pub const NDIS_MAC_OPTION_COPY_LOOKAHEAD_DATA: ULONG = 0x0000_0001;
pub const NDIS_MAC_OPTION_TRANSFERS_NOT_PEND: ULONG = 0x0000_0004;
pub const NDIS_MAC_OPTION_NO_LOOPBACK: ULONG = 0x0000_0008;

/// The union NdisMSetMiniportAttributes takes: each variant starts with an
/// NDIS_OBJECT_HEADER, so a pointer to any of them is passed.
pub type NDIS_MINIPORT_ADAPTER_ATTRIBUTES = c_void;

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

// ---------------------------------------------------------- net PnP events

/// `NET_PNP_EVENT_CODE` values for NDK. PDB: the `_NET_PNP_EVENT_CODE` enum
/// of ndis.sys (ntdiff/headers `Win8/x64/System32/ndis.sys/Standalone/_NET_PNP_EVENT.h`:
/// NetEventIMReEnableDevice 12, NetEventNDKEnable 13, NetEventNDKDisable 14).
pub const NetEventNDKEnable: u32 = 13;
pub const NetEventNDKDisable: u32 = 14;

/// `NET_PNP_EVENT` (ndis.h): NetEvent, Buffer, BufferLength, NdisReserved[4],
/// TransportReserved[4], TdiReserved[4], TdiClientReserved[4]. x64 size 0x98.
#[repr(C)]
#[derive(Debug)]
pub struct NET_PNP_EVENT {
    pub NetEvent: u32,
    pub Buffer: PVOID,
    pub BufferLength: ULONG,
    pub NdisReserved: [usize; 4],
    pub TransportReserved: [usize; 4],
    pub TdiReserved: [usize; 4],
    pub TdiClientReserved: [usize; 4],
}
/// `NET_PNP_EVENT_NOTIFICATION` (ndis.h, DOC): Header, PortNumber,
/// NetPnPEvent, Flags (NDIS 6.50 adds SwitchId, VPortId). Revision 1 size is
/// RTL_SIZEOF_THROUGH_FIELD(Flags) = 0xA4, not the padded sizeof (0xA8).
/// PDB: the x64 ndis.sys `_NET_PNP_EVENT_NOTIFICATION` (NetPnPEvent 0x08,
/// Flags 0xA0) in ntdiff/headers (Win10 x64 ndis.sys dumps).
#[repr(C)]
#[derive(Debug)]
pub struct NET_PNP_EVENT_NOTIFICATION {
    pub Header: NDIS_OBJECT_HEADER,
    pub PortNumber: NDIS_PORT_NUMBER,
    pub NetPnPEvent: NET_PNP_EVENT,
    pub Flags: ULONG,
}
pub const NET_PNP_EVENT_NOTIFICATION_REVISION_1: UCHAR = 1;
/// `NDIS_SIZEOF_NET_PNP_EVENT_NOTIFICATION_REVISION_1`.
pub const NDIS_SIZEOF_NET_PNP_EVENT_NOTIFICATION_REVISION_1: USHORT = 0xA4;
const _: () = {
    // PDB: ntdiff/headers Win8/x64/System32/ndis.sys/Standalone/_NET_PNP_EVENT.h
    assert!(size_of::<NET_PNP_EVENT>() == 0x98);
    assert!(offset_of!(NET_PNP_EVENT, Buffer) == 0x08);
    assert!(offset_of!(NET_PNP_EVENT, BufferLength) == 0x10);
    assert!(offset_of!(NET_PNP_EVENT, NdisReserved) == 0x18);
    assert!(offset_of!(NET_PNP_EVENT, TdiClientReserved) == 0x78);
    assert!(offset_of!(NET_PNP_EVENT_NOTIFICATION, PortNumber) == 4);
    assert!(offset_of!(NET_PNP_EVENT_NOTIFICATION, NetPnPEvent) == 8);
    assert!(offset_of!(NET_PNP_EVENT_NOTIFICATION, Flags) == 0xA0);
    assert!(
        offset_of!(NET_PNP_EVENT_NOTIFICATION, Flags) + 4
            == NDIS_SIZEOF_NET_PNP_EVENT_NOTIFICATION_REVISION_1 as usize
    );
};

// ----------------------------------------------- NET_BUFFER_LIST / NET_BUFFER

/// `NET_BUFFER_LIST` prefix (ndis.h), declared through `Status`. The
/// header is a union with an SLIST_HEADER (16 bytes, 16-aligned on x64) and
/// the three reserved arrays are DECLSPEC_ALIGN(MEMORY_ALLOCATION_ALIGNMENT)
/// (16), so NdisReserved starts at 0x30, not right after NdisPoolHandle.
/// PDB: ntdiff/headers `Win8/x64/System32/ndis.sys/Standalone/_NET_BUFFER_LIST.h`
/// (NdisReserved 0x30, ProtocolReserved 0x40, MiniportReserved 0x60,
/// Scratch 0x70, SourceHandle 0x78, NblFlags 0x80, ChildRefCount 0x84,
/// Flags 0x88, Status 0x8C).
#[repr(C, align(16))]
#[derive(Debug)]
pub struct NET_BUFFER_LIST {
    pub Next: *mut NET_BUFFER_LIST,
    pub FirstNetBuffer: *mut NET_BUFFER,
    pub Context: PVOID,
    pub ParentNetBufferList: *mut NET_BUFFER_LIST,
    pub NdisPoolHandle: NDIS_HANDLE,
    /// Padding before the 16-aligned NdisReserved.
    pub _Align: usize,
    pub NdisReserved: [PVOID; 2],
    pub ProtocolReserved: [PVOID; 4],
    pub MiniportReserved: [PVOID; 2],
    pub Scratch: PVOID,
    pub SourceHandle: NDIS_HANDLE,
    pub NblFlags: ULONG,
    pub ChildRefCount: i32,
    pub Flags: ULONG,
    pub Status: NDIS_STATUS,
}
const _: () = {
    // PDB: ntdiff/headers Win8/x64/System32/ndis.sys/Standalone/_NET_BUFFER_LIST.h
    type N = NET_BUFFER_LIST;
    assert!(core::mem::align_of::<N>() == 16);
    assert!(offset_of!(N, Context) == 0x10);
    assert!(offset_of!(N, ParentNetBufferList) == 0x18);
    assert!(offset_of!(N, NdisPoolHandle) == 0x20);
    assert!(offset_of!(N, NdisReserved) == 0x30);
    assert!(offset_of!(N, ProtocolReserved) == 0x40);
    assert!(offset_of!(N, MiniportReserved) == 0x60);
    assert!(offset_of!(N, Scratch) == 0x70);
    assert!(offset_of!(N, SourceHandle) == 0x78);
    assert!(offset_of!(N, NblFlags) == 0x80);
    assert!(offset_of!(N, ChildRefCount) == 0x84);
    assert!(offset_of!(N, Flags) == 0x88);
    assert!(offset_of!(N, Status) == 0x8C);
};

/// `NET_BUFFER` prefix: its NET_BUFFER_DATA (Next, CurrentMdl,
/// CurrentMdlOffset, DataLength | stDataLength (SIZE_T union, so 8-aligned),
/// MdlChain, DataOffset). PDB: ntdiff/headers
/// `Win8/x64/System32/ndis.sys/Standalone/_NET_BUFFER.h`.
#[repr(C)]
#[derive(Debug)]
pub struct NET_BUFFER {
    pub Next: *mut NET_BUFFER,
    pub CurrentMdl: *mut MDL,
    pub CurrentMdlOffset: ULONG,
    pub DataLength: usize,
    pub MdlChain: *mut MDL,
    pub DataOffset: ULONG,
}
const _: () = {
    assert!(offset_of!(NET_BUFFER, CurrentMdl) == 0x08);
    assert!(offset_of!(NET_BUFFER, CurrentMdlOffset) == 0x10);
    assert!(offset_of!(NET_BUFFER, DataLength) == 0x18);
    assert!(offset_of!(NET_BUFFER, MdlChain) == 0x20);
    assert!(offset_of!(NET_BUFFER, DataOffset) == 0x28);
};

/// `NET_BUFFER_DATA_LENGTH` (the low 32 bits, what the macro reads).
///
/// # Safety
/// `nb` is a valid NET_BUFFER.
pub unsafe fn NET_BUFFER_DATA_LENGTH(nb: *const NET_BUFFER) -> ULONG {
    // SAFETY: the caller passes a valid NET_BUFFER (the contract above).
    unsafe { (*nb).DataLength as ULONG }
}

/// `NET_BUFFER_LIST_POOL_PARAMETERS` (ndis.h, DOC): Header, ProtocolId,
/// fAllocateNetBuffer, ContextSize, PoolTag, DataSize. Revision 1 size 0x14.
#[repr(C)]
#[derive(Debug)]
pub struct NET_BUFFER_LIST_POOL_PARAMETERS {
    pub Header: NDIS_OBJECT_HEADER,
    pub ProtocolId: UCHAR,
    pub fAllocateNetBuffer: BOOLEAN,
    pub ContextSize: USHORT,
    pub PoolTag: ULONG,
    pub DataSize: ULONG,
    /// NDIS 6.50 (revision 2); ndkrs passes revision 1.
    pub Flags: ULONG,
}
pub const NET_BUFFER_LIST_POOL_PARAMETERS_REVISION_1: UCHAR = 1;
pub const NDIS_SIZEOF_NET_BUFFER_LIST_POOL_PARAMETERS_REVISION_1: USHORT = 0x10;
/// `NDIS_PROTOCOL_ID_DEFAULT`.
pub const NDIS_PROTOCOL_ID_DEFAULT: UCHAR = 0;
const _: () = assert!(offset_of!(NET_BUFFER_LIST_POOL_PARAMETERS, DataSize) + 4 == 0x10);

/// Send/receive/return flags (ndis.h).
pub const NDIS_SEND_FLAGS_DISPATCH_LEVEL: ULONG = 0x0000_0001;
pub const NDIS_SEND_COMPLETE_FLAGS_DISPATCH_LEVEL: ULONG = 0x0000_0001;
pub const NDIS_RECEIVE_FLAGS_DISPATCH_LEVEL: ULONG = 0x0000_0001;
pub const NDIS_RECEIVE_FLAGS_RESOURCES: ULONG = 0x0000_0002;
pub const NDIS_RETURN_FLAGS_DISPATCH_LEVEL: ULONG = 0x0000_0001;
pub const NDIS_DEFAULT_PORT_NUMBER: NDIS_PORT_NUMBER = 0;

/// Walks an NBL chain (`NET_BUFFER_LIST_NEXT_NBL`).
///
/// # Safety
/// `nbl` is null or a valid NET_BUFFER_LIST.
pub unsafe fn NET_BUFFER_LIST_NEXT_NBL(nbl: *mut NET_BUFFER_LIST) -> *mut NET_BUFFER_LIST {
    if nbl.is_null() {
        nbl
    } else {
        // SAFETY: non-null, so a valid NET_BUFFER_LIST (the contract).
        unsafe { (*nbl).Next }
    }
}

// --------------------------------------------------------------------- MDL

/// `MDL` (wdm.h; x64: Next 0, Size 8, MdlFlags 0xA, Process 0x10,
/// MappedSystemVa 0x18, StartVa 0x20, ByteCount 0x28, ByteOffset 0x2C; size
/// 0x30 — the layout every WDK macro below reads; wdk-sys binds the same).
#[repr(C)]
#[derive(Debug)]
pub struct MDL {
    pub Next: *mut MDL,
    pub Size: i16,
    pub MdlFlags: i16,
    pub Process: PVOID,
    pub MappedSystemVa: PVOID,
    pub StartVa: PVOID,
    pub ByteCount: ULONG,
    pub ByteOffset: ULONG,
}
const _: () = {
    assert!(offset_of!(MDL, MappedSystemVa) == 0x18);
    assert!(offset_of!(MDL, ByteCount) == 0x28);
    assert!(size_of::<MDL>() == 0x30);
};
pub const MDL_MAPPED_TO_SYSTEM_VA: i16 = 0x0001;
pub const MDL_SOURCE_IS_NONPAGED_POOL: i16 = 0x0004;
/// `NormalPagePriority`.
pub const NormalPagePriority: u32 = 16;
/// `MdlMappingNoExecute` (ORed into the priority, Windows 8+).
pub const MdlMappingNoExecute: u32 = 0x4000_0000;
/// `MmCached`.
pub const MmCached: u32 = 1;
/// `KernelMode`.
pub const KernelMode: i8 = 0;

/// `MmGetMdlVirtualAddress`: StartVa + ByteOffset.
///
/// # Safety
/// `mdl` is a valid MDL.
pub unsafe fn MmGetMdlVirtualAddress(mdl: *const MDL) -> usize {
    // SAFETY: the caller passes a valid MDL (the contract above).
    unsafe { ((*mdl).StartVa as usize).wrapping_add((*mdl).ByteOffset as usize) }
}

/// `MmGetMdlByteCount`.
///
/// # Safety
/// `mdl` is a valid MDL.
pub unsafe fn MmGetMdlByteCount(mdl: *const MDL) -> ULONG {
    // SAFETY: the caller passes a valid MDL (the contract above).
    unsafe { (*mdl).ByteCount }
}

/// `MmGetSystemAddressForMdlSafe`: the mapped system address, mapping the
/// locked pages if needed; null on failure.
///
/// # Safety
/// `mdl` describes locked pages; IRQL <= DISPATCH_LEVEL.
pub unsafe fn MmGetSystemAddressForMdlSafe(mdl: *mut MDL, priority: u32) -> PVOID {
    // SAFETY: a valid MDL of locked pages at IRQL <= DISPATCH_LEVEL (the
    // contract above): its flags and mapping are read, or its pages mapped
    // by MmMapLockedPagesSpecifyCache, which takes exactly that.
    unsafe {
        if (*mdl).MdlFlags & (MDL_MAPPED_TO_SYSTEM_VA | MDL_SOURCE_IS_NONPAGED_POOL) != 0 {
            (*mdl).MappedSystemVa
        } else {
            MmMapLockedPagesSpecifyCache(
                mdl,
                KernelMode,
                MmCached,
                core::ptr::null_mut(),
                0,
                priority,
            )
        }
    }
}

// ------------------------------------------------------ kernel DPC / timer

/// `KDPC` storage: opaque, 0x40 bytes, 8-aligned on x64 (PDB: ntoskrnl
/// `_KDPC` size 0x40). Initialised only by KeInitializeDpc.
#[repr(C, align(8))]
#[derive(Debug)]
pub struct KDPC(pub [u8; 0x40]);
/// `KTIMER` storage: opaque, 0x40 bytes on x64 (PDB: ntoskrnl `_KTIMER`
/// size 0x40). Initialised only by KeInitializeTimer.
#[repr(C, align(8))]
#[derive(Debug)]
pub struct KTIMER(pub [u8; 0x40]);
/// `KDEFERRED_ROUTINE`.
pub type PKDEFERRED_ROUTINE =
    unsafe extern "system" fn(Dpc: *mut KDPC, Context: PVOID, Arg1: PVOID, Arg2: PVOID);

/// `NDIS_IO_WORKITEM_ROUTINE`.
pub type NDIS_IO_WORKITEM_ROUTINE = unsafe extern "system" fn(Context: PVOID, Handle: NDIS_HANDLE);

// ------------------------------------------------------------ LWF (filter)

pub type FILTER_ATTACH_HANDLER = Option<
    unsafe extern "system" fn(
        NdisFilterHandle: NDIS_HANDLE,
        FilterDriverContext: NDIS_HANDLE,
        AttachParameters: *mut NDIS_FILTER_ATTACH_PARAMETERS,
    ) -> NDIS_STATUS,
>;
pub type FILTER_DETACH_HANDLER =
    Option<unsafe extern "system" fn(FilterModuleContext: NDIS_HANDLE)>;
pub type FILTER_PAUSE_RESTART_HANDLER = Option<
    unsafe extern "system" fn(FilterModuleContext: NDIS_HANDLE, Parameters: PVOID) -> NDIS_STATUS,
>;
pub type FILTER_SEND_NET_BUFFER_LISTS_COMPLETE_HANDLER = Option<
    unsafe extern "system" fn(
        FilterModuleContext: NDIS_HANDLE,
        NetBufferLists: *mut NET_BUFFER_LIST,
        SendCompleteFlags: ULONG,
    ),
>;
pub type FILTER_RECEIVE_NET_BUFFER_LISTS_HANDLER = Option<
    unsafe extern "system" fn(
        FilterModuleContext: NDIS_HANDLE,
        NetBufferLists: *mut NET_BUFFER_LIST,
        PortNumber: NDIS_PORT_NUMBER,
        NumberOfNetBufferLists: ULONG,
        ReceiveFlags: ULONG,
    ),
>;

/// `FILTER_STATUS`: FilterModuleContext, PNDIS_STATUS_INDICATION.
pub type FILTER_STATUS_HANDLER =
    Option<unsafe extern "system" fn(FilterModuleContext: NDIS_HANDLE, StatusIndication: PVOID)>;

/// `NDIS_FILTER_DRIVER_CHARACTERISTICS` (ndis.h), declared through the NDIS
/// 6.1 members. PDB: ntdiff/headers
/// `Win8/x64/System32/ndis.sys/Standalone/_NDIS_FILTER_DRIVER_BLOCK.h`
/// (every offset asserted below, size 0xE0); sizes BIN-confirmed too (NDIS
/// 6.0: 0xC8 = through StatusHandler; 6.1–6.70: revision 2, 0xE0). Null
/// optional handlers make NDIS bypass the filter for that path.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct NDIS_FILTER_DRIVER_CHARACTERISTICS {
    pub Header: NDIS_OBJECT_HEADER,
    pub MajorNdisVersion: UCHAR,
    pub MinorNdisVersion: UCHAR,
    pub MajorDriverVersion: UCHAR,
    pub MinorDriverVersion: UCHAR,
    pub Flags: ULONG,
    pub FriendlyName: NDIS_STRING,
    pub UniqueName: NDIS_STRING,
    pub ServiceName: NDIS_STRING,
    pub SetOptionsHandler: SET_OPTIONS_HANDLER,
    pub SetFilterModuleOptionsHandler: PVOID,
    pub AttachHandler: FILTER_ATTACH_HANDLER,
    pub DetachHandler: FILTER_DETACH_HANDLER,
    pub RestartHandler: FILTER_PAUSE_RESTART_HANDLER,
    pub PauseHandler: FILTER_PAUSE_RESTART_HANDLER,
    pub SendNetBufferListsHandler: PVOID,
    pub SendNetBufferListsCompleteHandler: FILTER_SEND_NET_BUFFER_LISTS_COMPLETE_HANDLER,
    pub CancelSendNetBufferListsHandler: PVOID,
    pub ReceiveNetBufferListsHandler: FILTER_RECEIVE_NET_BUFFER_LISTS_HANDLER,
    pub ReturnNetBufferListsHandler: PVOID,
    pub OidRequestHandler: PVOID,
    pub OidRequestCompleteHandler: PVOID,
    pub CancelOidRequestHandler: PVOID,
    pub DevicePnPEventNotifyHandler: PVOID,
    pub NetPnPEventHandler: PVOID,
    pub StatusHandler: FILTER_STATUS_HANDLER,
    pub DirectOidRequestHandler: PVOID,
    pub DirectOidRequestCompleteHandler: PVOID,
    pub CancelDirectOidRequestHandler: PVOID,
}
pub const NDIS_FILTER_CHARACTERISTICS_REVISION_2: UCHAR = 2;
pub const NDIS_SIZEOF_FILTER_DRIVER_CHARACTERISTICS_REVISION_2: USHORT = 0xE0;
const _: () = {
    type F = NDIS_FILTER_DRIVER_CHARACTERISTICS;
    assert!(offset_of!(F, Flags) == 0x08);
    assert!(offset_of!(F, FriendlyName) == 0x10);
    assert!(offset_of!(F, UniqueName) == 0x20);
    assert!(offset_of!(F, ServiceName) == 0x30);
    assert!(offset_of!(F, SetOptionsHandler) == 0x40);
    assert!(offset_of!(F, SetFilterModuleOptionsHandler) == 0x48);
    assert!(offset_of!(F, AttachHandler) == 0x50);
    assert!(offset_of!(F, DetachHandler) == 0x58);
    assert!(offset_of!(F, RestartHandler) == 0x60);
    assert!(offset_of!(F, PauseHandler) == 0x68);
    assert!(offset_of!(F, SendNetBufferListsHandler) == 0x70);
    assert!(offset_of!(F, SendNetBufferListsCompleteHandler) == 0x78);
    assert!(offset_of!(F, CancelSendNetBufferListsHandler) == 0x80);
    assert!(offset_of!(F, ReceiveNetBufferListsHandler) == 0x88);
    assert!(offset_of!(F, ReturnNetBufferListsHandler) == 0x90);
    assert!(offset_of!(F, OidRequestHandler) == 0x98);
    assert!(offset_of!(F, OidRequestCompleteHandler) == 0xA0);
    assert!(offset_of!(F, CancelOidRequestHandler) == 0xA8);
    assert!(offset_of!(F, DevicePnPEventNotifyHandler) == 0xB0);
    assert!(offset_of!(F, NetPnPEventHandler) == 0xB8);
    assert!(offset_of!(F, StatusHandler) == 0xC0);
    assert!(offset_of!(F, DirectOidRequestHandler) == 0xC8);
    assert!(offset_of!(F, CancelDirectOidRequestHandler) == 0xD8);
    assert!(offset_of!(F, StatusHandler) + 8 == 0xC8);
    assert!(size_of::<F>() == 0xE0);
};
/// `FILTER_RUNTYPE`/`FilterClass` live in the INF; this is the driver flag
/// `NDIS_FILTER_DRIVER_MANDATORY` (not set: the filter is optional).
pub const NDIS_FILTER_DRIVER_MANDATORY: ULONG = 0x0000_0001;

/// `NDIS_FILTER_ATTACH_PARAMETERS` prefix through BaseMiniportNetLuid
/// (ndis.h, DOC member order; computed offsets, UNCONFIRMED against a
/// binary: no PDB dump of it was found: MiniportMediaType 0x48,
/// MacAddressLength 0x60, CurrentMacAddress 0x62, BaseMiniportNetLuid 0x88).
#[repr(C)]
#[derive(Debug)]
pub struct NDIS_FILTER_ATTACH_PARAMETERS {
    pub Header: NDIS_OBJECT_HEADER,
    pub IfIndex: NET_IFINDEX,
    pub NetLuid: NET_LUID,
    pub FilterModuleGuidName: *const NDIS_STRING,
    pub BaseMiniportIfIndex: NET_IFINDEX,
    pub BaseMiniportInstanceName: *const NDIS_STRING,
    pub BaseMiniportName: *const NDIS_STRING,
    pub MediaConnectState: u32,
    pub MediaDuplexState: u32,
    pub XmitLinkSpeed: ULONG64,
    pub RcvLinkSpeed: ULONG64,
    pub MiniportMediaType: u32,
    pub MiniportPhysicalMediaType: u32,
    pub MiniportMediaSpecificAttributes: NDIS_HANDLE,
    pub DefaultOffloadConfiguration: PVOID,
    pub MacAddressLength: USHORT,
    pub CurrentMacAddress: [UCHAR; NDIS_MAX_PHYS_ADDRESS_LENGTH],
    pub BaseMiniportNetLuid: NET_LUID,
}
const _: () = {
    type A = NDIS_FILTER_ATTACH_PARAMETERS;
    assert!(offset_of!(A, BaseMiniportNetLuid) == 0x88);
    assert!(offset_of!(A, FilterModuleGuidName) == 0x10);
    assert!(offset_of!(A, BaseMiniportInstanceName) == 0x20);
    assert!(offset_of!(A, MiniportMediaType) == 0x48);
    assert!(offset_of!(A, MacAddressLength) == 0x60);
    assert!(offset_of!(A, CurrentMacAddress) == 0x62);
};

/// `NDIS_FILTER_ATTRIBUTES` (ndis.h, DOC): Header, Flags. Size 8.
#[repr(C)]
#[derive(Debug)]
pub struct NDIS_FILTER_ATTRIBUTES {
    pub Header: NDIS_OBJECT_HEADER,
    pub Flags: ULONG,
}
pub const NDIS_FILTER_ATTRIBUTES_REVISION_1: UCHAR = 1;
const _: () = assert!(size_of::<NDIS_FILTER_ATTRIBUTES>() == 8);

// ---------------------------------------------------------------- NETIO

/// `MIB_UNICASTIPADDRESS_ROW` (netioapi.h, DOC order: Address
/// (SOCKADDR_INET), InterfaceLuid, InterfaceIndex, PrefixOrigin,
/// SuffixOrigin, ValidLifetime, PreferredLifetime, OnLinkPrefixLength,
/// SkipAsSource, DadState, ScopeId, CreationTimeStamp). x64 size 80
/// (computed; UNCONFIRMED against a binary).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct MIB_UNICASTIPADDRESS_ROW {
    pub Address: SOCKADDR_INET,
    pub InterfaceLuid: NET_LUID,
    pub InterfaceIndex: NET_IFINDEX,
    pub PrefixOrigin: u32,
    pub SuffixOrigin: u32,
    pub ValidLifetime: ULONG,
    pub PreferredLifetime: ULONG,
    pub OnLinkPrefixLength: u8,
    pub SkipAsSource: BOOLEAN,
    pub DadState: u32,
    pub ScopeId: ULONG,
    pub CreationTimeStamp: LARGE_INTEGER,
}
impl core::fmt::Debug for MIB_UNICASTIPADDRESS_ROW {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("MIB_UNICASTIPADDRESS_ROW")
    }
}
const _: () = {
    type U = MIB_UNICASTIPADDRESS_ROW;
    assert!(offset_of!(U, InterfaceLuid) == 0x20);
    assert!(offset_of!(U, DadState) == 0x40);
    assert!(size_of::<U>() == 80);
};
/// `MIB_UNICASTIPADDRESS_TABLE`: NumEntries, then the rows (8-aligned: at 8).
#[repr(C)]
#[derive(Debug)]
pub struct MIB_UNICASTIPADDRESS_TABLE {
    pub NumEntries: ULONG,
    pub Table: [MIB_UNICASTIPADDRESS_ROW; 1],
}
const _: () = assert!(offset_of!(MIB_UNICASTIPADDRESS_TABLE, Table) == 8);
/// `IpDadStatePreferred`.
pub const IpDadStatePreferred: u32 = 4;

/// `MIB_IPNET_ROW2` (netioapi.h, DOC order: Address, InterfaceIndex,
/// InterfaceLuid, PhysicalAddress[32], PhysicalAddressLength, State, Flags
/// byte, ReachabilityTime). x64 size 0x58 (computed; UNCONFIRMED).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct MIB_IPNET_ROW2 {
    pub Address: SOCKADDR_INET,
    pub InterfaceIndex: NET_IFINDEX,
    pub InterfaceLuid: NET_LUID,
    pub PhysicalAddress: [UCHAR; 32],
    pub PhysicalAddressLength: ULONG,
    pub State: u32,
    pub Flags: UCHAR,
    pub ReachabilityTime: ULONG,
}
impl core::fmt::Debug for MIB_IPNET_ROW2 {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("MIB_IPNET_ROW2")
    }
}
const _: () = {
    type R = MIB_IPNET_ROW2;
    assert!(offset_of!(R, InterfaceLuid) == 0x20);
    assert!(offset_of!(R, PhysicalAddress) == 0x28);
    assert!(offset_of!(R, State) == 0x4C);
    assert!(size_of::<R>() == 0x58);
};
/// `MIB_IF_ROW2` (netioapi.h): one interface's row; the shell reads the
/// bound NIC's `Mtu` (GetIfEntry2). Members in the header's order through
/// ConnectionType, then the link speeds and the 18 ULONG64 counters as an
/// array. x64 size 0x548; size and named offsets checked against
/// mingw-w64's netioapi.h in CI (.ci/layouts/check.sh).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct MIB_IF_ROW2 {
    pub InterfaceLuid: NET_LUID,
    pub InterfaceIndex: NET_IFINDEX,
    pub InterfaceGuid: [u32; 4],
    pub Alias: [u16; 257],
    pub Description: [u16; 257],
    pub PhysicalAddressLength: ULONG,
    pub PhysicalAddress: [UCHAR; 32],
    pub PermanentPhysicalAddress: [UCHAR; 32],
    pub Mtu: ULONG,
    pub Type: u32,
    pub TunnelType: u32,
    pub MediaType: u32,
    pub PhysicalMediumType: u32,
    pub AccessType: u32,
    pub DirectionType: u32,
    pub InterfaceAndOperStatusFlags: UCHAR,
    pub OperStatus: u32,
    pub AdminStatus: u32,
    pub MediaConnectState: u32,
    pub NetworkGuid: [u32; 4],
    pub ConnectionType: u32,
    pub TransmitLinkSpeed: u64,
    pub ReceiveLinkSpeed: u64,
    /// InOctets .. OutQLen.
    pub Counters: [u64; 18],
}
impl core::fmt::Debug for MIB_IF_ROW2 {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MIB_IF_ROW2")
            .field("InterfaceLuid", &self.InterfaceLuid)
            .field("Mtu", &self.Mtu)
            .finish_non_exhaustive()
    }
}
const _: () = {
    type R = MIB_IF_ROW2;
    assert!(offset_of!(R, Alias) == 0x1C);
    assert!(offset_of!(R, PhysicalAddressLength) == 0x420);
    assert!(offset_of!(R, Mtu) == 0x464);
    assert!(offset_of!(R, OperStatus) == 0x484);
    assert!(offset_of!(R, TransmitLinkSpeed) == 0x4A8);
    assert!(size_of::<R>() == 0x548);
};
/// `NL_NEIGHBOR_STATE` (nldef.h): Unreachable 0, Incomplete 1, Probe 2,
/// Delay 3, Stale 4, Reachable 5, Permanent 6.
pub const NlnsReachable: u32 = 5;
/// `AF_UNSPEC`.
pub const AF_UNSPEC: u16 = 0;

// ------------------------------------------------------------- imports

// Each block names the import library it links against: the WDK's
// ndis.lib, ntoskrnl.lib and netio.lib in the real build, and in the CI
// kernel image the import libraries check.sh makes for exactly the libraries
// rustc reports (`--print native-static-libs`), so both link the same set.
#[allow(clippy::too_many_arguments)]
#[cfg_attr(windows, link(name = "ndis"))]
unsafe extern "system" {
    // ndis.sys: miniport.
    pub fn NdisMRegisterMiniportDriver(
        DriverObject: PVOID,
        RegistryPath: PVOID,
        MiniportDriverContext: NDIS_HANDLE,
        MiniportDriverCharacteristics: *const NDIS_MINIPORT_DRIVER_CHARACTERISTICS,
        NdisMiniportDriverHandle: *mut NDIS_HANDLE,
    ) -> NDIS_STATUS;
    pub fn NdisMDeregisterMiniportDriver(NdisMiniportDriverHandle: NDIS_HANDLE);
    pub fn NdisSetOptionalHandlers(
        NdisHandle: NDIS_HANDLE,
        OptionalHandlers: *mut NDIS_OBJECT_HEADER,
    ) -> NDIS_STATUS;
    pub fn NdisMSetMiniportAttributes(
        NdisMiniportAdapterHandle: NDIS_HANDLE,
        MiniportAttributes: *mut NDIS_MINIPORT_ADAPTER_ATTRIBUTES,
    ) -> NDIS_STATUS;
    pub fn NdisMNetPnPEvent(
        MiniportAdapterHandle: NDIS_HANDLE,
        NetPnPEventNotification: *mut NET_PNP_EVENT_NOTIFICATION,
    ) -> NDIS_STATUS;
    pub fn NdisMSendNetBufferListsComplete(
        MiniportAdapterHandle: NDIS_HANDLE,
        NetBufferLists: *mut NET_BUFFER_LIST,
        SendCompleteFlags: ULONG,
    );
    pub fn NdisMPauseComplete(MiniportAdapterHandle: NDIS_HANDLE);
    pub fn NdisMIndicateReceiveNetBufferLists(
        MiniportAdapterHandle: NDIS_HANDLE,
        NetBufferLists: *mut NET_BUFFER_LIST,
        PortNumber: NDIS_PORT_NUMBER,
        NumberOfNetBufferLists: ULONG,
        ReceiveFlags: ULONG,
    );
    // ndis.sys: filter.
    pub fn NdisFRegisterFilterDriver(
        DriverObject: PVOID,
        FilterDriverContext: NDIS_HANDLE,
        FilterDriverCharacteristics: *const NDIS_FILTER_DRIVER_CHARACTERISTICS,
        NdisFilterDriverHandle: *mut NDIS_HANDLE,
    ) -> NDIS_STATUS;
    pub fn NdisFDeregisterFilterDriver(NdisFilterDriverHandle: NDIS_HANDLE);
    pub fn NdisFSetAttributes(
        NdisFilterHandle: NDIS_HANDLE,
        FilterModuleContext: NDIS_HANDLE,
        FilterAttributes: *mut NDIS_FILTER_ATTRIBUTES,
    ) -> NDIS_STATUS;
    pub fn NdisFPauseComplete(NdisFilterHandle: NDIS_HANDLE);
    pub fn NdisFSendNetBufferLists(
        NdisFilterHandle: NDIS_HANDLE,
        NetBufferLists: *mut NET_BUFFER_LIST,
        PortNumber: NDIS_PORT_NUMBER,
        SendFlags: ULONG,
    );
    pub fn NdisFSendNetBufferListsComplete(
        NdisFilterHandle: NDIS_HANDLE,
        NetBufferLists: *mut NET_BUFFER_LIST,
        SendCompleteFlags: ULONG,
    );
    pub fn NdisFIndicateReceiveNetBufferLists(
        NdisFilterHandle: NDIS_HANDLE,
        NetBufferLists: *mut NET_BUFFER_LIST,
        PortNumber: NDIS_PORT_NUMBER,
        NumberOfNetBufferLists: ULONG,
        ReceiveFlags: ULONG,
    );
    pub fn NdisOpenConfigurationEx(
        ConfigObject: *mut NDIS_CONFIGURATION_OBJECT,
        ConfigurationHandle: *mut NDIS_HANDLE,
    ) -> NDIS_STATUS;
    pub fn NdisReadConfiguration(
        Status: *mut NDIS_STATUS,
        ParameterValue: *mut *mut NDIS_CONFIGURATION_PARAMETER,
        ConfigurationHandle: NDIS_HANDLE,
        Keyword: *mut NDIS_STRING,
        ParameterType: u32,
    );
    pub fn NdisCloseConfiguration(ConfigurationHandle: NDIS_HANDLE);
    pub fn NdisFIndicateStatus(NdisFilterHandle: NDIS_HANDLE, StatusIndication: PVOID);
    pub fn NdisFReturnNetBufferLists(
        NdisFilterHandle: NDIS_HANDLE,
        NetBufferLists: *mut NET_BUFFER_LIST,
        ReturnFlags: ULONG,
    );
    // ndis.sys: buffers and work items.
    pub fn NdisAllocateNetBufferListPool(
        NdisHandle: NDIS_HANDLE,
        Parameters: *mut NET_BUFFER_LIST_POOL_PARAMETERS,
    ) -> NDIS_HANDLE;
    pub fn NdisFreeNetBufferListPool(PoolHandle: NDIS_HANDLE);
    pub fn NdisAllocateNetBufferAndNetBufferList(
        PoolHandle: NDIS_HANDLE,
        ContextSize: USHORT,
        ContextBackFill: USHORT,
        MdlChain: *mut MDL,
        DataOffset: ULONG,
        DataLength: usize,
    ) -> *mut NET_BUFFER_LIST;
    pub fn NdisFreeNetBufferList(NetBufferList: *mut NET_BUFFER_LIST);
    pub fn NdisAllocateMdl(NdisHandle: NDIS_HANDLE, VirtualAddress: PVOID, Length: u32)
    -> *mut MDL;
    pub fn NdisFreeMdl(Mdl: *mut MDL);
    pub fn NdisGetDataBuffer(
        NetBuffer: *mut NET_BUFFER,
        BytesNeeded: ULONG,
        Storage: PVOID,
        AlignMultiple: u32,
        AlignOffset: u32,
    ) -> PVOID;
    pub fn NdisAllocateIoWorkItem(NdisObjectHandle: NDIS_HANDLE) -> NDIS_HANDLE;
    pub fn NdisQueueIoWorkItem(
        NdisIoWorkItemHandle: NDIS_HANDLE,
        Routine: NDIS_IO_WORKITEM_ROUTINE,
        WorkItemContext: PVOID,
    );
    pub fn NdisFreeIoWorkItem(NdisIoWorkItemHandle: NDIS_HANDLE);
}

#[cfg_attr(windows, link(name = "ntoskrnl"))]
unsafe extern "system" {
    // ntoskrnl.exe
    pub fn KeInitializeDpc(
        Dpc: *mut KDPC,
        DeferredRoutine: PKDEFERRED_ROUTINE,
        DeferredContext: PVOID,
    );
    pub fn KeInsertQueueDpc(
        Dpc: *mut KDPC,
        SystemArgument1: PVOID,
        SystemArgument2: PVOID,
    ) -> BOOLEAN;
    pub fn KeRemoveQueueDpc(Dpc: *mut KDPC) -> BOOLEAN;
    pub fn KeInitializeTimer(Timer: *mut KTIMER);
    pub fn KeSetTimer(Timer: *mut KTIMER, DueTime: LARGE_INTEGER, Dpc: *mut KDPC) -> BOOLEAN;
    pub fn KeCancelTimer(Timer: *mut KTIMER) -> BOOLEAN;
    pub fn KeFlushQueuedDpcs();
    pub fn KeAcquireSpinLockRaiseToDpc(SpinLock: *mut KSPIN_LOCK) -> KIRQL;
    pub fn KeReleaseSpinLock(SpinLock: *mut KSPIN_LOCK, NewIrql: KIRQL);
    pub fn KeQueryUnbiasedInterruptTime() -> u64;
    pub fn MmMapLockedPagesSpecifyCache(
        MemoryDescriptorList: *mut MDL,
        AccessMode: i8,
        CacheType: u32,
        RequestedAddress: PVOID,
        BugCheckOnFailure: u32,
        Priority: u32,
    ) -> PVOID;
    pub fn ExAllocatePool2(Flags: u64, NumberOfBytes: usize, Tag: u32) -> PVOID;
    pub fn ExFreePool(P: PVOID);
}

/// BCryptGenRandom's flag: the system-preferred random number generator,
/// with no algorithm handle (bcrypt.h; supported at PASSIVE_LEVEL only).
pub const BCRYPT_USE_SYSTEM_PREFERRED_RNG: u32 = 0x0000_0002;

#[cfg_attr(windows, link(name = "cng"))]
unsafe extern "system" {
    // cng.sys (kernel-mode CNG, bcrypt.h: "use Cng.lib" in kernel mode, the
    // BCryptGenRandom reference page). The shell's identity seed.
    pub fn BCryptGenRandom(
        hAlgorithm: PVOID,
        pbBuffer: *mut u8,
        cbBuffer: u32,
        dwFlags: u32,
    ) -> NTSTATUS;
}

#[cfg_attr(windows, link(name = "netio"))]
unsafe extern "system" {
    // netio.sys (IP Helper in the kernel, netioapi.h; PASSIVE_LEVEL).
    pub fn GetUnicastIpAddressTable(
        Family: u16,
        Table: *mut *mut MIB_UNICASTIPADDRESS_TABLE,
    ) -> NTSTATUS;
    pub fn FreeMibTable(Memory: PVOID);
    pub fn ResolveIpNetEntry2(
        Row: *mut MIB_IPNET_ROW2,
        SourceAddress: *const SOCKADDR_INET,
    ) -> NTSTATUS;
    /// Fills `Row` for the interface its InterfaceLuid names.
    pub fn GetIfEntry2(Row: *mut MIB_IF_ROW2) -> NTSTATUS;
}

/// `POOL_FLAG_NON_PAGED` for ExAllocatePool2.
pub const POOL_FLAG_NON_PAGED: u64 = 0x40;
