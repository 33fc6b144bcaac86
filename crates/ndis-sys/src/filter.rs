//! Lightweight filter (LWF) registration, attach parameters and the handlers NDIS calls (ndis.h, filter section).

use super::*;

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
pub type FILTER_STATUS_HANDLER = Option<
    unsafe extern "system" fn(
        FilterModuleContext: NDIS_HANDLE,
        StatusIndication: *mut NDIS_STATUS_INDICATION,
    ),
>;

/// `NDIS_STATUS_INDICATION` (ndis.h): what FilterStatus receives and
/// NdisFIndicateStatus passes up. PDB: ntdiff/headers
/// `Win10_20H1_18885/ARM64/System32/ndis.sys/Standalone/_NDIS_STATUS_INDICATION.h`
/// (a 64-bit LLP64 build like x64: SourceHandle 0x8, PortNumber 0x10,
/// StatusCode 0x14, Flags 0x18, DestinationHandle 0x20, RequestId 0x28,
/// StatusBuffer 0x30, StatusBufferSize 0x38, Guid 0x3C, NdisReserved 0x50,
/// size 0x70); x64 ndis.sys builds its indications with Header
/// {0x98, 1, 0x70} (revision 1, size 0x70).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct NDIS_STATUS_INDICATION {
    pub Header: NDIS_OBJECT_HEADER,
    pub SourceHandle: NDIS_HANDLE,
    pub PortNumber: NDIS_PORT_NUMBER,
    pub StatusCode: NDIS_STATUS,
    pub Flags: ULONG,
    pub DestinationHandle: NDIS_HANDLE,
    pub RequestId: PVOID,
    pub StatusBuffer: PVOID,
    pub StatusBufferSize: ULONG,
    pub Guid: GUID,
    pub NdisReserved: [PVOID; 4],
}
pub const NDIS_STATUS_INDICATION_REVISION_1: UCHAR = 1;
const _: () = {
    // PDB: ntdiff/headers Win10_20H1_18885/ARM64/System32/ndis.sys/Standalone/_NDIS_STATUS_INDICATION.h
    type S = NDIS_STATUS_INDICATION;
    assert!(offset_of!(S, SourceHandle) == 0x8);
    assert!(offset_of!(S, PortNumber) == 0x10);
    assert!(offset_of!(S, StatusCode) == 0x14);
    assert!(offset_of!(S, Flags) == 0x18);
    assert!(offset_of!(S, DestinationHandle) == 0x20);
    assert!(offset_of!(S, RequestId) == 0x28);
    assert!(offset_of!(S, StatusBuffer) == 0x30);
    assert!(offset_of!(S, StatusBufferSize) == 0x38);
    assert!(offset_of!(S, Guid) == 0x3C);
    assert!(offset_of!(S, NdisReserved) == 0x50);
    assert!(size_of::<S>() == 0x70);
};

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
