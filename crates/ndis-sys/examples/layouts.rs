//! Prints the layout facts of `ndis-sys` and `ndkpi` that mingw-w64's
//! headers also define, one per line: `<unit> size <C type> <bytes>`,
//! `<unit> offset <C type> <C member> <bytes>`, `<unit> value <C name> <n>`.
//! `.ci/layouts/check.sh` turns each line into a C static assertion and
//! compiles it for x86_64-w64-mingw32 (LLP64, like the Windows kernel), so
//! every number here is checked against a header we did not write.
//!
//! Units: `user` (winsock2.h, ws2ipdef.h, netioapi.h, ntddndis.h with
//! UM_NDIS630, ndkinfo.h), `kernel` (ddk/ntddk.h), `status` (ntstatus.h and
//! the NDIS_STATUS defines of mingw's ddk/ndis.h).
//!
//! Layouts mingw lacks (NET_BUFFER_LIST, the driver characteristics, the
//! NDIS 6 miniport/filter structures, ndkpi.h's dispatch tables) are
//! compile-time assertions in the crates themselves, each naming its PDB
//! source.
#![allow(clippy::print_stdout)]

use core::mem::{offset_of, size_of};
use ndis_sys::*;
use ndkpi::{
    GROUP_AFFINITY, IN_ADDR, IN6_ADDR, NDIS_NDK_CAPABILITIES, NDIS_NDK_CONNECTION_ENTRY,
    NDIS_NDK_CONNECTIONS, NDIS_NDK_LOCAL_ENDPOINT_ENTRY, NDIS_NDK_LOCAL_ENDPOINTS,
    NDIS_NDK_PERFORMANCE_COUNTERS, NDIS_NDK_STATISTICS_INFO, NDK_ADAPTER_INFO, NDK_VERSION,
    SOCKADDR, SOCKADDR_IN, SOCKADDR_IN6,
};

macro_rules! size {
    ($unit:literal, $t:ty, $c:literal) => {
        println!("{} size {} {}", $unit, $c, size_of::<$t>())
    };
}
macro_rules! offset {
    ($unit:literal, $t:ty, $c:literal, $($f:ident),+) => {
        $(println!("{} offset {} {} {}", $unit, $c, stringify!($f), offset_of!($t, $f));)+
    };
}
macro_rules! value {
    ($unit:literal, $($n:path),+ $(,)?) => {
        $(println!("{} value {} {}", $unit, stringify!($n).rsplit("::").next().unwrap_or(""), $n as i64);)+
    };
}

fn main() {
    user();
    kernel();
    status();
}

fn user() {
    // ntddndis.h: OIDs, filters, MAC options, object types, enums.
    value!(
        "user",
        OID_GEN_SUPPORTED_LIST,
        OID_GEN_HARDWARE_STATUS,
        OID_GEN_MEDIA_SUPPORTED,
        OID_GEN_MEDIA_IN_USE,
        OID_GEN_MAXIMUM_LOOKAHEAD,
        OID_GEN_MAXIMUM_FRAME_SIZE,
        OID_GEN_LINK_SPEED,
        OID_GEN_TRANSMIT_BUFFER_SPACE,
        OID_GEN_RECEIVE_BUFFER_SPACE,
        OID_GEN_TRANSMIT_BLOCK_SIZE,
        OID_GEN_RECEIVE_BLOCK_SIZE,
        OID_GEN_VENDOR_ID,
        OID_GEN_VENDOR_DESCRIPTION,
        OID_GEN_CURRENT_PACKET_FILTER,
        OID_GEN_CURRENT_LOOKAHEAD,
        OID_GEN_DRIVER_VERSION,
        OID_GEN_MAXIMUM_TOTAL_SIZE,
        OID_GEN_MAC_OPTIONS,
        OID_GEN_MAXIMUM_SEND_PACKETS,
        OID_GEN_VENDOR_DRIVER_VERSION,
        OID_GEN_NETWORK_LAYER_ADDRESSES,
        OID_GEN_XMIT_OK,
        OID_GEN_RCV_OK,
        OID_GEN_STATISTICS,
        OID_GEN_INTERRUPT_MODERATION,
        OID_802_3_PERMANENT_ADDRESS,
        OID_802_3_CURRENT_ADDRESS,
        OID_802_3_MULTICAST_LIST,
        OID_802_3_MAXIMUM_LIST_SIZE,
        OID_NDK_SET_STATE,
        OID_NDK_STATISTICS,
        OID_NDK_CONNECTIONS,
        OID_NDK_LOCAL_ENDPOINTS,
        NDIS_PACKET_TYPE_DIRECTED,
        NDIS_PACKET_TYPE_MULTICAST,
        NDIS_PACKET_TYPE_ALL_MULTICAST,
        NDIS_PACKET_TYPE_BROADCAST,
        NDIS_MAC_OPTION_COPY_LOOKAHEAD_DATA,
        NDIS_MAC_OPTION_TRANSFERS_NOT_PEND,
        NDIS_MAC_OPTION_NO_LOOPBACK,
        NDIS_OBJECT_TYPE_DEFAULT,
        NDIS_OBJECT_TYPE_MINIPORT_DRIVER_CHARACTERISTICS,
        NDIS_OBJECT_TYPE_FILTER_DRIVER_CHARACTERISTICS,
        NDIS_OBJECT_TYPE_FILTER_ATTRIBUTES,
        NDIS_OBJECT_TYPE_STATUS_INDICATION,
        NDIS_OBJECT_TYPE_MINIPORT_ADAPTER_REGISTRATION_ATTRIBUTES,
        NDIS_OBJECT_TYPE_MINIPORT_ADAPTER_GENERAL_ATTRIBUTES,
        NDIS_OBJECT_TYPE_MINIPORT_ADAPTER_NDK_ATTRIBUTES,
        ndkpi::NDIS_OBJECT_TYPE_NDK_PROVIDER_CHARACTERISTICS,
        NDIS_OBJECT_TYPE_CONFIGURATION_OBJECT,
        NDIS_PROTOCOL_ID_DEFAULT,
        NDIS_MAX_PHYS_ADDRESS_LENGTH,
        NdisMedium802_3,
        NdisPhysicalMediumUnspecified,
        NdisRequestQueryInformation,
        NdisRequestSetInformation,
        NdisRequestQueryStatistics,
        NdisRequestMethod,
        NdisInterruptModerationNotSupported,
        NDIS_INTERRUPT_MODERATION_PARAMETERS_REVISION_1,
        NDIS_SIZEOF_INTERRUPT_MODERATION_PARAMETERS_REVISION_1,
        NDIS_STATISTICS_INFO_REVISION_1,
        NDIS_SIZEOF_STATISTICS_INFO_REVISION_1,
        NDIS_STATISTICS_FLAGS_VALID_DIRECTED_FRAMES_RCV,
        NDIS_STATISTICS_FLAGS_VALID_DIRECTED_FRAMES_XMIT,
        NDIS_STATISTICS_FLAGS_VALID_BYTES_RCV,
        NDIS_STATISTICS_FLAGS_VALID_BYTES_XMIT,
        ndkpi::NDIS_NDK_CAPABILITIES_REVISION_1,
        ndkpi::NDIS_SIZEOF_NDK_CAPABILITIES_REVISION_1,
        ndkpi::NDIS_NDK_STATISTICS_INFO_REVISION_1,
        ndkpi::NDIS_SIZEOF_NDK_STATISTICS_INFO_REVISION_1,
        ndkpi::NDIS_NDK_CONNECTIONS_REVISION_1,
        ndkpi::NDIS_NDK_LOCAL_ENDPOINTS_REVISION_1,
        // ifdef.h / ipifcons.h / nldef.h / ws2def.h
        MediaConnectStateConnected,
        MediaDuplexStateFull,
        NET_IF_ACCESS_BROADCAST,
        NET_IF_DIRECTION_SENDRECEIVE,
        NET_IF_CONNECTION_DEDICATED,
        IF_TYPE_ETHERNET_CSMACD,
        NlnsReachable,
        // bcrypt.h
        BCRYPT_USE_SYSTEM_PREFERRED_RNG,
        IpDadStatePreferred,
        AF_UNSPEC,
        ndkpi::AF_INET,
        ndkpi::AF_INET6,
        // ndkinfo.h
        ndkpi::NDK_ADAPTER_FLAG_IN_ORDER_DMA_SUPPORTED,
        ndkpi::NDK_ADAPTER_FLAG_RDMA_READ_SINK_NOT_REQUIRED,
        ndkpi::NDK_ADAPTER_FLAG_CQ_INTERRUPT_MODERATION_SUPPORTED,
        ndkpi::NDK_ADAPTER_FLAG_MULTI_ENGINE_SUPPORTED,
        ndkpi::NDK_ADAPTER_FLAG_CQ_RESIZE_SUPPORTED,
        ndkpi::NDK_ADAPTER_FLAG_LOOPBACK_CONNECTIONS_SUPPORTED,
    );
    size!("user", NDIS_OBJECT_HEADER, "NDIS_OBJECT_HEADER");
    offset!(
        "user",
        NDIS_OBJECT_HEADER,
        "NDIS_OBJECT_HEADER",
        Type,
        Revision,
        Size
    );
    size!("user", NDIS_STATISTICS_INFO, "NDIS_STATISTICS_INFO");
    offset!(
        "user",
        NDIS_STATISTICS_INFO,
        "NDIS_STATISTICS_INFO",
        Header,
        SupportedStatistics,
        ifInDiscards,
        ifInErrors,
        ifHCInOctets,
        ifHCInUcastPkts,
        ifHCInMulticastPkts,
        ifHCInBroadcastPkts,
        ifHCOutOctets,
        ifHCOutUcastPkts,
        ifHCOutMulticastPkts,
        ifHCOutBroadcastPkts,
        ifOutErrors,
        ifOutDiscards,
        ifHCInUcastOctets,
        ifHCInMulticastOctets,
        ifHCInBroadcastOctets,
        ifHCOutUcastOctets,
        ifHCOutMulticastOctets,
        ifHCOutBroadcastOctets
    );
    size!(
        "user",
        NDIS_INTERRUPT_MODERATION_PARAMETERS,
        "NDIS_INTERRUPT_MODERATION_PARAMETERS"
    );
    offset!(
        "user",
        NDIS_INTERRUPT_MODERATION_PARAMETERS,
        "NDIS_INTERRUPT_MODERATION_PARAMETERS",
        Header,
        Flags,
        InterruptModeration
    );
    size!("user", NDIS_NDK_CAPABILITIES, "NDIS_NDK_CAPABILITIES");
    offset!(
        "user",
        NDIS_NDK_CAPABILITIES,
        "NDIS_NDK_CAPABILITIES",
        Header,
        Flags,
        MaxQpCount,
        MaxCqCount,
        MaxMrCount,
        MaxPdCount,
        MaxInboundReadLimit,
        MaxOutboundReadLimit,
        MaxMwCount,
        MaxSrqCount,
        MissingCounterMask,
        NdkInfo
    );
    size!(
        "user",
        NDIS_NDK_PERFORMANCE_COUNTERS,
        "NDIS_NDK_PERFORMANCE_COUNTERS"
    );
    offset!(
        "user",
        NDIS_NDK_PERFORMANCE_COUNTERS,
        "NDIS_NDK_PERFORMANCE_COUNTERS",
        Connect,
        Accept,
        ConnectFailure,
        ConnectionError,
        ActiveConnection,
        Reserved20,
        CQError,
        RDMAInOctets,
        RDMAOutOctets,
        RDMAInFrames,
        RDMAOutFrames
    );
    size!("user", NDIS_NDK_STATISTICS_INFO, "NDIS_NDK_STATISTICS_INFO");
    offset!(
        "user",
        NDIS_NDK_STATISTICS_INFO,
        "NDIS_NDK_STATISTICS_INFO",
        Header,
        Flags,
        CounterSet
    );
    size!(
        "user",
        NDIS_NDK_CONNECTION_ENTRY,
        "NDIS_NDK_CONNECTION_ENTRY"
    );
    offset!(
        "user",
        NDIS_NDK_CONNECTION_ENTRY,
        "NDIS_NDK_CONNECTION_ENTRY",
        Local,
        Remote,
        UserModeOwner,
        OwnerPid
    );
    size!("user", NDIS_NDK_CONNECTIONS, "NDIS_NDK_CONNECTIONS");
    offset!(
        "user",
        NDIS_NDK_CONNECTIONS,
        "NDIS_NDK_CONNECTIONS",
        Header,
        Flags,
        Count,
        NDConnectionsMappedtoTCPConnections,
        Connections
    );
    size!(
        "user",
        NDIS_NDK_LOCAL_ENDPOINT_ENTRY,
        "NDIS_NDK_LOCAL_ENDPOINT_ENTRY"
    );
    offset!(
        "user",
        NDIS_NDK_LOCAL_ENDPOINT_ENTRY,
        "NDIS_NDK_LOCAL_ENDPOINT_ENTRY",
        Local,
        UserModeOwner,
        Listener,
        OwnerPid
    );
    size!("user", NDIS_NDK_LOCAL_ENDPOINTS, "NDIS_NDK_LOCAL_ENDPOINTS");
    offset!(
        "user",
        NDIS_NDK_LOCAL_ENDPOINTS,
        "NDIS_NDK_LOCAL_ENDPOINTS",
        Header,
        Flags,
        Count,
        NDLocalEndpointsMappedtoTCPLocalEndpoints,
        LocalEndpoints
    );
    size!("user", NDK_VERSION, "NDK_VERSION");
    offset!("user", NDK_VERSION, "NDK_VERSION", Major, Minor);
    // mingw's ndkinfo.h has the NDK 1.x structure, which ends with
    // AdapterFlags (RdmaTechnology came later).
    println!(
        "user size NDK_ADAPTER_INFO {}",
        NDK_ADAPTER_INFO::SIZE_THROUGH_ADAPTER_FLAGS
    );
    offset!(
        "user",
        NDK_ADAPTER_INFO,
        "NDK_ADAPTER_INFO",
        Version,
        VendorId,
        DeviceId,
        MaxRegistrationSize,
        MaxWindowSize,
        FRMRPageCount,
        MaxInitiatorRequestSge,
        MaxReceiveRequestSge,
        MaxReadRequestSge,
        MaxTransferLength,
        MaxInlineDataSize,
        MaxInboundReadLimit,
        MaxOutboundReadLimit,
        MaxReceiveQueueDepth,
        MaxInitiatorQueueDepth,
        MaxSrqDepth,
        MaxCqDepth,
        LargeRequestThreshold,
        MaxCallerData,
        MaxCalleeData,
        AdapterFlags
    );
    size!("user", ndkpi::GUID, "GUID");
    offset!("user", ndkpi::GUID, "GUID", Data1, Data2, Data3, Data4);
    size!("user", GROUP_AFFINITY, "GROUP_AFFINITY");
    offset!(
        "user",
        GROUP_AFFINITY,
        "GROUP_AFFINITY",
        Mask,
        Group,
        Reserved
    );
    size!("user", SOCKADDR, "SOCKADDR");
    offset!("user", SOCKADDR, "SOCKADDR", sa_family, sa_data);
    size!("user", IN_ADDR, "IN_ADDR");
    size!("user", IN6_ADDR, "IN6_ADDR");
    size!("user", SOCKADDR_IN, "SOCKADDR_IN");
    offset!(
        "user",
        SOCKADDR_IN,
        "SOCKADDR_IN",
        sin_family,
        sin_port,
        sin_addr,
        sin_zero
    );
    size!("user", SOCKADDR_IN6, "SOCKADDR_IN6");
    offset!(
        "user",
        SOCKADDR_IN6,
        "SOCKADDR_IN6",
        sin6_family,
        sin6_port,
        sin6_flowinfo,
        sin6_addr,
        sin6_scope_id
    );
    size!("user", SOCKADDR_INET, "SOCKADDR_INET");
    offset!(
        "user",
        SOCKADDR_INET,
        "SOCKADDR_INET",
        Ipv4,
        Ipv6,
        si_family
    );
    size!("user", MIB_UNICASTIPADDRESS_ROW, "MIB_UNICASTIPADDRESS_ROW");
    offset!(
        "user",
        MIB_UNICASTIPADDRESS_ROW,
        "MIB_UNICASTIPADDRESS_ROW",
        Address,
        InterfaceLuid,
        InterfaceIndex,
        PrefixOrigin,
        SuffixOrigin,
        ValidLifetime,
        PreferredLifetime,
        OnLinkPrefixLength,
        SkipAsSource,
        DadState,
        ScopeId,
        CreationTimeStamp
    );
    offset!(
        "user",
        MIB_UNICASTIPADDRESS_TABLE,
        "MIB_UNICASTIPADDRESS_TABLE",
        NumEntries,
        Table
    );
    size!("user", MIB_IF_ROW2, "MIB_IF_ROW2");
    offset!(
        "user",
        MIB_IF_ROW2,
        "MIB_IF_ROW2",
        InterfaceLuid,
        InterfaceIndex,
        InterfaceGuid,
        Alias,
        Description,
        PhysicalAddressLength,
        PhysicalAddress,
        PermanentPhysicalAddress,
        Mtu,
        Type,
        TunnelType,
        MediaType,
        PhysicalMediumType,
        AccessType,
        DirectionType,
        InterfaceAndOperStatusFlags,
        OperStatus,
        AdminStatus,
        MediaConnectState,
        NetworkGuid,
        ConnectionType,
        TransmitLinkSpeed,
        ReceiveLinkSpeed
    );
    size!("user", MIB_IPNET_ROW2, "MIB_IPNET_ROW2");
    offset!(
        "user",
        MIB_IPNET_ROW2,
        "MIB_IPNET_ROW2",
        Address,
        InterfaceIndex,
        InterfaceLuid,
        PhysicalAddress,
        PhysicalAddressLength,
        State,
        Flags,
        ReachabilityTime
    );
    // netevent.h: its codes are unsigned long (0xC0001391L does not fit a
    // 32-bit long), so they compare as unsigned.
    println!(
        "user value EVENT_NDIS_UNSUPPORTED_CONFIGURATION {}",
        EVENT_NDIS_UNSUPPORTED_CONFIGURATION as u32
    );
}

fn kernel() {
    value!(
        "kernel",
        NormalPagePriority,
        MmCached,
        KernelMode,
        MDL_MAPPED_TO_SYSTEM_VA,
        MDL_PAGES_LOCKED,
        MDL_SOURCE_IS_NONPAGED_POOL,
        MDL_PARTIAL,
    );
    size!("kernel", MDL, "MDL");
    offset!(
        "kernel",
        MDL,
        "MDL",
        Next,
        Size,
        MdlFlags,
        Process,
        MappedSystemVa,
        StartVa,
        ByteCount,
        ByteOffset
    );
    size!("kernel", KDPC, "KDPC");
    size!("kernel", KTIMER, "KTIMER");
    size!("kernel", KSPIN_LOCK, "KSPIN_LOCK");
    size!("kernel", KIRQL, "KIRQL");
    size!("kernel", UNICODE_STRING, "UNICODE_STRING");
    offset!(
        "kernel",
        UNICODE_STRING,
        "UNICODE_STRING",
        Length,
        MaximumLength,
        Buffer
    );
    size!("kernel", LARGE_INTEGER, "LARGE_INTEGER");
}

fn status() {
    value!(
        "status",
        NDIS_STATUS_SUCCESS,
        NDIS_STATUS_PENDING,
        NDIS_STATUS_FAILURE,
        NDIS_STATUS_RESOURCES,
        NDIS_STATUS_NOT_SUPPORTED,
        NDIS_STATUS_BAD_VERSION,
        NDIS_STATUS_ADAPTER_NOT_READY,
        NDIS_STATUS_INVALID_LENGTH,
        NDIS_STATUS_BUFFER_TOO_SHORT,
        NDIS_STATUS_INVALID_DATA,
        NDIS_STATUS_PAUSED,
        NdisInterfaceInternal,
    );
}
