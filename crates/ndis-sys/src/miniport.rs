//! Miniport driver registration: characteristics, attributes and the handlers NDIS calls (ndis.h, miniport section).

use super::*;

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
