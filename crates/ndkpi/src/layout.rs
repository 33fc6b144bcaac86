//! Compile-time layout checks for x86_64: the size, alignment and every field
//! offset of every struct, against ndkpi.h x64 layouts (sizes
//! confirmed by ndis.sys PDB layouts where the digest says "PDB").
//!
//! They are `const` items, so they are evaluated by every build for an x86_64
//! target: Linux tests and the x86_64-pc-windows-msvc kernel-image build
//! alike. The dispatch tables check themselves where they are declared.

use core::mem::{align_of, offset_of, size_of};

use crate::base::*;
use crate::ndis::*;
use crate::object::*;
use crate::types::*;
use crate::version::NDK_VERSION;

macro_rules! layout {
    ($ty:ty, size $size:expr, align $align:expr $(; $($field:ident @ $off:expr),* $(,)?)?) => {
        const _: () = {
            assert!(size_of::<$ty>() == $size);
            assert!(align_of::<$ty>() == $align);
            $($(assert!(offset_of!($ty, $field) == $off);)*)?
        };
    };
}

// ndkpi.h, ndkpi.h: version, header, objects.
layout!(NDK_VERSION, size 4, align 2; Major @ 0, Minor @ 2);
layout!(NDK_OBJECT_HEADER_RESERVED_BLOCK, size 0x20, align 8; rf @ 0);
layout!(NDK_OBJECT_HEADER, size 0x28, align 8; Version @ 0, ObjectType @ 4, NdkReserved @ 8);
layout!(NDK_ADAPTER, size 0x30, align 8; Header @ 0, Dispatch @ 0x28);
layout!(NDK_QP, size 0x30, align 8; Header @ 0, Dispatch @ 0x28);
layout!(NDK_CQ, size 0x30, align 8; Header @ 0, Dispatch @ 0x28);
layout!(NDK_MR, size 0x30, align 8; Header @ 0, Dispatch @ 0x28);
layout!(NDK_MW, size 0x30, align 8; Header @ 0, Dispatch @ 0x28);
layout!(NDK_PD, size 0x30, align 8; Header @ 0, Dispatch @ 0x28);
layout!(NDK_SHARED_ENDPOINT, size 0x30, align 8; Header @ 0, Dispatch @ 0x28);
layout!(NDK_CONNECTOR, size 0x30, align 8; Header @ 0, Dispatch @ 0x28);
layout!(NDK_LISTENER, size 0x30, align 8; Header @ 0, Dispatch @ 0x28);
layout!(NDK_SRQ, size 0x30, align 8; Header @ 0, Dispatch @ 0x28);

// ndkpi.h: data structures.
layout!(NDK_SGE_ADDRESS, size 8, align 8; VirtualAddress @ 0, LogicalAddress @ 0);
layout!(NDK_SGE, size 0x10, align 8; Address @ 0, Length @ 8, MemoryRegionToken @ 0xC);
layout!(NDK_LOGICAL_ADDRESS_MAPPING, size 0x18, align 8;
    AdapterContext @ 0, AdapterPageCount @ 8, AdapterPageArray @ 0x10);
layout!(NDK_RESULT, size 0x18, align 8;
    Status @ 0, BytesTransferred @ 4, QPContext @ 8, RequestContext @ 0x10);
layout!(NDK_RESULT_EX, size 0x28, align 8;
    Status @ 0, BytesTransferred @ 4, QPContext @ 8, RequestContext @ 0x10,
    Type @ 0x18, ProviderErrorCode @ 0x1C, TypeSpecificCompletionOutput @ 0x20);
layout!(NDK_EXTENSION_INTERFACE, size 8, align 8; Dispatch @ 0);
layout!(NDK_ADAPTER_INFO, size 0x68, align 8;
    Version @ 0, VendorId @ 4, DeviceId @ 8, MaxRegistrationSize @ 0x10, MaxWindowSize @ 0x18,
    FRMRPageCount @ 0x20, MaxInitiatorRequestSge @ 0x24, MaxReceiveRequestSge @ 0x28,
    MaxReadRequestSge @ 0x2C, MaxTransferLength @ 0x30, MaxInlineDataSize @ 0x34,
    MaxInboundReadLimit @ 0x38, MaxOutboundReadLimit @ 0x3C, MaxReceiveQueueDepth @ 0x40,
    MaxInitiatorQueueDepth @ 0x44, MaxSrqDepth @ 0x48, MaxCqDepth @ 0x4C,
    LargeRequestThreshold @ 0x50, MaxCallerData @ 0x54, MaxCalleeData @ 0x58,
    AdapterFlags @ 0x5C, RdmaTechnology @ 0x60);
const _: () = assert!(NDK_ADAPTER_INFO::SIZE_THROUGH_ADAPTER_FLAGS == 0x60);

// ndkpi.h: base types referenced by the signatures.
layout!(GUID, size 16, align 4; Data1 @ 0, Data2 @ 4, Data3 @ 6, Data4 @ 8);
layout!(GROUP_AFFINITY, size 16, align 8; Mask @ 0, Group @ 8, Reserved @ 0xA);
layout!(SOCKADDR, size 16, align 2; sa_family @ 0, sa_data @ 2);
layout!(IN_ADDR, size 4, align 4; s_addr @ 0);
layout!(IN6_ADDR, size 16, align 2; s6_addr @ 0);
layout!(SOCKADDR_IN, size 16, align 4; sin_family @ 0, sin_port @ 2, sin_addr @ 4, sin_zero @ 8);
layout!(SOCKADDR_IN6, size 28, align 4;
    sin6_family @ 0, sin6_port @ 2, sin6_flowinfo @ 4, sin6_addr @ 8, sin6_scope_id @ 24);
layout!(SOCKADDR_INET, size 28, align 4; Ipv4 @ 0, Ipv6 @ 0, si_family @ 0);

// ndisndk.h: NDIS side.
layout!(NDIS_OBJECT_HEADER, size 4, align 2; Type @ 0, Revision @ 1, Size @ 2);
layout!(NDIS_OPEN_NDK_ADAPTER_PARAMETERS, size 12, align 4; Version @ 0, SwitchId @ 4, VPortId @ 8);
const _: () = assert!(NDIS_OPEN_NDK_ADAPTER_PARAMETERS_NDIS630_SIZE == 4);
layout!(NDIS_NDK_PROVIDER_CHARACTERISTICS, size 0x18, align 8;
    Header @ 0, Flags @ 4, OpenNDKAdapterHandler @ 8, CloseNDKAdapterHandler @ 0x10);
layout!(NDIS_NDK_CAPABILITIES, size 0x38, align 8;
    Header @ 0, Flags @ 4, MaxQpCount @ 8, MaxCqCount @ 0xC, MaxMrCount @ 0x10, MaxPdCount @ 0x14,
    MaxInboundReadLimit @ 0x18, MaxOutboundReadLimit @ 0x1C, MaxMwCount @ 0x20,
    MaxSrqCount @ 0x24, MissingCounterMask @ 0x28, NdkInfo @ 0x30);
layout!(NDIS_MINIPORT_ADAPTER_NDK_ATTRIBUTES, size 16, align 8;
    Header @ 0, Enabled @ 4, NdkCapabilities @ 8);
layout!(NDIS_NDK_PERFORMANCE_COUNTERS, size 0xF0, align 8;
    Connect @ 0, Accept @ 8, ConnectFailure @ 0x10, ConnectionError @ 0x18,
    ActiveConnection @ 0x20, Reserved01 @ 0x28, Reserved20 @ 0xC0, CQError @ 0xC8,
    RDMAInOctets @ 0xD0, RDMAOutOctets @ 0xD8, RDMAInFrames @ 0xE0, RDMAOutFrames @ 0xE8);
layout!(NDIS_NDK_STATISTICS_INFO, size 0xF8, align 8; Header @ 0, Flags @ 4, CounterSet @ 8);
layout!(NDIS_NDK_CONNECTION_ENTRY, size 0x40, align 4;
    Local @ 0, Remote @ 0x1C, UserModeOwner @ 0x38, OwnerPid @ 0x3C);
layout!(NDIS_NDK_CONNECTIONS, size 0x50, align 4;
    Header @ 0, Flags @ 4, Count @ 8, NDConnectionsMappedtoTCPConnections @ 0xC,
    Connections @ 0x10);
layout!(NDIS_NDK_LOCAL_ENDPOINT_ENTRY, size 0x24, align 4;
    Local @ 0, UserModeOwner @ 0x1C, Listener @ 0x1D, OwnerPid @ 0x20);
layout!(NDIS_NDK_LOCAL_ENDPOINTS, size 0x34, align 4;
    Header @ 0, Flags @ 4, Count @ 8, NDLocalEndpointsMappedtoTCPLocalEndpoints @ 0xC,
    LocalEndpoints @ 0x10);

// Every counter of NDIS_NDK_PERFORMANCE_COUNTERS is a ULONG64 at 8 * index.
const _: () = assert!(size_of::<NDIS_NDK_PERFORMANCE_COUNTERS>() == 30 * 8);
