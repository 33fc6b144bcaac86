//! The NDIS side of an NDK provider: registration types of ndisndk.h and
//! ndis.h, and the NDK OIDs and capability structs of ntddndis.h (shared spec
//! ndisndk.h).

use crate::base::{
    BOOLEAN, GUID, NDIS_HANDLE, NDIS_NIC_SWITCH_ID, NDIS_NIC_SWITCH_VPORT_ID, NDIS_OID,
    NDIS_STATUS, SOCKADDR_INET, UCHAR, ULONG, ULONG64, USHORT,
};
use crate::object::NDK_ADAPTER;
use crate::types::NDK_ADAPTER_INFO;
use crate::version::NDK_VERSION;

/// `NDIS_OBJECT_HEADER`: identifies the type, revision and size of an NDIS
/// structure.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NDIS_OBJECT_HEADER {
    pub Type: UCHAR,
    pub Revision: UCHAR,
    pub Size: USHORT,
}

/// `NDIS_OBJECT_TYPE_DEFAULT`.
pub const NDIS_OBJECT_TYPE_DEFAULT: UCHAR = 0x80;
/// `NDIS_OBJECT_TYPE_NDK_PROVIDER_CHARACTERISTICS`.
pub const NDIS_OBJECT_TYPE_NDK_PROVIDER_CHARACTERISTICS: UCHAR = 0xB2;
/// `NDIS_OBJECT_TYPE_MINIPORT_ADAPTER_NDK_ATTRIBUTES`.
pub const NDIS_OBJECT_TYPE_MINIPORT_ADAPTER_NDK_ATTRIBUTES: UCHAR = 0xB3;

/// `RTL_SIZEOF_THROUGH_FIELD`: the size of a struct up to and including a
/// field, as NDIS revision sizes are defined.
macro_rules! sizeof_through {
    ($ty:ty, $field:ident, $field_ty:ty) => {
        (core::mem::offset_of!($ty, $field) + core::mem::size_of::<$field_ty>()) as USHORT
    };
}

// ndisndk.h (NDIS_SUPPORT_NDIS630).

/// `NDIS_OPEN_NDK_ADAPTER_PARAMETERS` as NDIS 6.50 and later pass it. NDIS
/// owns it; the provider only reads it. On NDIS 6.30/6.40 only `Version`
/// exists (see [`NDIS_OPEN_NDK_ADAPTER_PARAMETERS_NDIS630_SIZE`]).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NDIS_OPEN_NDK_ADAPTER_PARAMETERS {
    /// The opener's major version and the lowest minor it accepts; see
    /// [`crate::negotiate_version`].
    pub Version: NDK_VERSION,
    /// NDIS 6.50.
    pub SwitchId: NDIS_NIC_SWITCH_ID,
    /// NDIS 6.50.
    pub VPortId: NDIS_NIC_SWITCH_VPORT_ID,
}

/// Size of `NDIS_OPEN_NDK_ADAPTER_PARAMETERS` before NDIS 6.50 (Version only).
pub const NDIS_OPEN_NDK_ADAPTER_PARAMETERS_NDIS630_SIZE: usize =
    core::mem::size_of::<NDK_VERSION>();

/// `OPEN_NDK_ADAPTER_HANDLER` (PASSIVE_LEVEL): NDIS opens an NDK adapter on
/// behalf of a consumer. NDIS_STATUS_SUCCESS, NDIS_STATUS_BAD_VERSION,
/// NDIS_STATUS_ADAPTER_NOT_READY (NDK disabled) or NDIS_STATUS_RESOURCES.
pub type OPEN_NDK_ADAPTER_HANDLER = Option<
    unsafe extern "system" fn(
        MiniportAdapterContext: NDIS_HANDLE,
        Parameters: *mut NDIS_OPEN_NDK_ADAPTER_PARAMETERS,
        ppNdkAdapter: *mut *mut NDK_ADAPTER,
    ) -> NDIS_STATUS,
>;

/// `CLOSE_NDK_ADAPTER_HANDLER`: NDIS closes an NDK adapter it opened.
pub type CLOSE_NDK_ADAPTER_HANDLER = Option<
    unsafe extern "system" fn(MiniportAdapterContext: NDIS_HANDLE, pNdkAdapter: *mut NDK_ADAPTER),
>;

/// `NDIS_NDK_PROVIDER_CHARACTERISTICS`: passed to NdisSetOptionalHandlers
/// from MiniportSetOptions; its header is what marks the miniport as an NDK
/// provider.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct NDIS_NDK_PROVIDER_CHARACTERISTICS {
    /// Type [`NDIS_OBJECT_TYPE_NDK_PROVIDER_CHARACTERISTICS`], Revision
    /// [`NDIS_NDK_PROVIDER_CHARACTERISTICS_REVISION_1`], Size
    /// [`NDIS_SIZEOF_NDK_PROVIDER_CHARACTERISTICS_REVISION_1`].
    pub Header: NDIS_OBJECT_HEADER,
    /// Reserved, 0.
    pub Flags: ULONG,
    pub OpenNDKAdapterHandler: OPEN_NDK_ADAPTER_HANDLER,
    pub CloseNDKAdapterHandler: CLOSE_NDK_ADAPTER_HANDLER,
}

pub const NDIS_NDK_PROVIDER_CHARACTERISTICS_REVISION_1: UCHAR = 1;
pub const NDIS_SIZEOF_NDK_PROVIDER_CHARACTERISTICS_REVISION_1: USHORT = sizeof_through!(
    NDIS_NDK_PROVIDER_CHARACTERISTICS,
    CloseNDKAdapterHandler,
    CLOSE_NDK_ADAPTER_HANDLER
);

/// `NETWORK_DIRECT_KEYWORD`: the standardized INF keyword that gates NDK.
pub const NETWORK_DIRECT_KEYWORD: &str = "*NetworkDirect";
/// `NETWORK_DIRECT_GLOBAL_FLAGS_KEYWORD`.
pub const NETWORK_DIRECT_GLOBAL_FLAGS_KEYWORD: &str = "*NetworkDirectGlobalFlags";
/// `NETWORK_DIRECT_GLOBAL_FLAGS_ALLOW_REMOTE_IP_SUBNET`.
pub const NETWORK_DIRECT_GLOBAL_FLAGS_ALLOW_REMOTE_IP_SUBNET: ULONG = 0x0000_0001;
/// The standardized keyword naming the RDMA technology (values are
/// `NDK_RDMA_TECHNOLOGY`); defined by the INF requirements page, not by a
/// header macro.
pub const NETWORK_DIRECT_TECHNOLOGY_KEYWORD: &str = "*NetworkDirectTechnology";

// ntddndis.h (NDIS_SUPPORT_NDIS630).

/// `NDIS_NDK_CAPABILITIES`: adapter-wide limits reported from
/// MiniportInitializeEx; `NdkInfo` holds the per-consumer limits.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct NDIS_NDK_CAPABILITIES {
    /// Type [`NDIS_OBJECT_TYPE_DEFAULT`], Revision
    /// [`NDIS_NDK_CAPABILITIES_REVISION_1`], Size
    /// [`NDIS_SIZEOF_NDK_CAPABILITIES_REVISION_1`].
    pub Header: NDIS_OBJECT_HEADER,
    /// Reserved, 0 (older documentation pages omit this field; the header and
    /// the PDB layouts have it).
    pub Flags: ULONG,
    pub MaxQpCount: ULONG,
    pub MaxCqCount: ULONG,
    pub MaxMrCount: ULONG,
    pub MaxPdCount: ULONG,
    /// Adapter-wide; 0 = no adapter-wide limit.
    pub MaxInboundReadLimit: ULONG,
    /// Adapter-wide; 0 = no adapter-wide limit.
    pub MaxOutboundReadLimit: ULONG,
    pub MaxMwCount: ULONG,
    /// 0 = SRQs not supported.
    pub MaxSrqCount: ULONG,
    /// Bit i set: counter i of [`NDIS_NDK_PERFORMANCE_COUNTERS`] is not
    /// supported (see [`NDIS_NDK_PERFORMANCE_COUNTER_MASK`]).
    pub MissingCounterMask: ULONG64,
    pub NdkInfo: *mut NDK_ADAPTER_INFO,
}

pub const NDIS_NDK_CAPABILITIES_REVISION_1: UCHAR = 1;
pub const NDIS_SIZEOF_NDK_CAPABILITIES_REVISION_1: USHORT =
    sizeof_through!(NDIS_NDK_CAPABILITIES, NdkInfo, *mut NDK_ADAPTER_INFO);

/// `NDIS_MINIPORT_ADAPTER_NDK_ATTRIBUTES` (ndis.h): reported through
/// NdisMSetMiniportAttributes from MiniportInitializeEx, also when NDK is
/// disabled.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct NDIS_MINIPORT_ADAPTER_NDK_ATTRIBUTES {
    pub Header: NDIS_OBJECT_HEADER,
    /// Current NDK state.
    pub Enabled: BOOLEAN,
    pub NdkCapabilities: *mut NDIS_NDK_CAPABILITIES,
}

pub const NDIS_MINIPORT_ADAPTER_NDK_ATTRIBUTES_REVISION_1: UCHAR = 1;
/// UNCONFIRMED: no header copy seen defines the number; the NDIS convention
/// (`RTL_SIZEOF_THROUGH_FIELD(..., NdkCapabilities)`) gives 16 on x64
/// (ndis.h NDIS_MINIPORT_ADAPTER_NDK_ATTRIBUTES, no public header confirms it: a project decision). The revision value 1 comes from the
/// win32metadata bindings (a secondary source).
pub const NDIS_SIZEOF_MINIPORT_ADAPTER_NDK_ATTRIBUTES_REVISION_1: USHORT = sizeof_through!(
    NDIS_MINIPORT_ADAPTER_NDK_ATTRIBUTES,
    NdkCapabilities,
    *mut NDIS_NDK_CAPABILITIES
);

/// `OID_NDK_SET_STATE` (set, BOOLEAN): enable or disable NDK; must complete
/// synchronously.
pub const OID_NDK_SET_STATE: NDIS_OID = 0xFC04_0201;
/// `OID_NDK_STATISTICS` (query through the direct OID path,
/// [`NDIS_NDK_STATISTICS_INFO`]).
pub const OID_NDK_STATISTICS: NDIS_OID = 0xFC04_0202;
/// `OID_NDK_CONNECTIONS` (query, [`NDIS_NDK_CONNECTIONS`], variable length).
pub const OID_NDK_CONNECTIONS: NDIS_OID = 0xFC04_0203;
/// `OID_NDK_LOCAL_ENDPOINTS` (query, [`NDIS_NDK_LOCAL_ENDPOINTS`], variable
/// length).
pub const OID_NDK_LOCAL_ENDPOINTS: NDIS_OID = 0xFC04_0204;

/// `GUID_NDIS_NDK_CAPABILITIES` {7969ba4d-dd80-4bc7-b3e6-68043997e519}.
pub const GUID_NDIS_NDK_CAPABILITIES: GUID = GUID {
    Data1: 0x7969_ba4d,
    Data2: 0xdd80,
    Data3: 0x4bc7,
    Data4: [0xb3, 0xe6, 0x68, 0x04, 0x39, 0x97, 0xe5, 0x19],
};
/// `GUID_NDIS_NDK_STATE` {530c69c9-2f51-49de-a1af-088d54ffa474}.
pub const GUID_NDIS_NDK_STATE: GUID = GUID {
    Data1: 0x530c_69c9,
    Data2: 0x2f51,
    Data3: 0x49de,
    Data4: [0xa1, 0xaf, 0x08, 0x8d, 0x54, 0xff, 0xa4, 0x74],
};

/// `NDIS_NDK_PERFORMANCE_COUNTERS`: the counters behind Windows' "RDMA
/// Activity" performance counters. 30 ULONG64 values; counter i is at
/// offset 8 * i.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NDIS_NDK_PERFORMANCE_COUNTERS {
    pub Connect: ULONG64,
    pub Accept: ULONG64,
    pub ConnectFailure: ULONG64,
    pub ConnectionError: ULONG64,
    pub ActiveConnection: ULONG64,
    pub Reserved01: ULONG64,
    pub Reserved02: ULONG64,
    pub Reserved03: ULONG64,
    pub Reserved04: ULONG64,
    pub Reserved05: ULONG64,
    pub Reserved06: ULONG64,
    pub Reserved07: ULONG64,
    pub Reserved08: ULONG64,
    pub Reserved09: ULONG64,
    pub Reserved10: ULONG64,
    pub Reserved11: ULONG64,
    pub Reserved12: ULONG64,
    pub Reserved13: ULONG64,
    pub Reserved14: ULONG64,
    pub Reserved15: ULONG64,
    pub Reserved16: ULONG64,
    pub Reserved17: ULONG64,
    pub Reserved18: ULONG64,
    pub Reserved19: ULONG64,
    pub Reserved20: ULONG64,
    pub CQError: ULONG64,
    pub RDMAInOctets: ULONG64,
    pub RDMAOutOctets: ULONG64,
    pub RDMAInFrames: ULONG64,
    pub RDMAOutFrames: ULONG64,
}

/// `NDIS_NDK_PERFORMANCE_COUNTER_MASK(field)`: the
/// [`NDIS_NDK_CAPABILITIES::MissingCounterMask`] bit of the counter at byte
/// offset `field_offset` (use `core::mem::offset_of!`).
pub const fn NDIS_NDK_PERFORMANCE_COUNTER_MASK(field_offset: usize) -> ULONG64 {
    1u64 << (field_offset / core::mem::size_of::<ULONG64>())
}

/// `NDIS_NDK_STATISTICS_INFO`: OID_NDK_STATISTICS's buffer.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NDIS_NDK_STATISTICS_INFO {
    pub Header: NDIS_OBJECT_HEADER,
    /// Reserved, 0.
    pub Flags: ULONG,
    pub CounterSet: NDIS_NDK_PERFORMANCE_COUNTERS,
}

pub const NDIS_NDK_STATISTICS_INFO_REVISION_1: UCHAR = 1;
pub const NDIS_SIZEOF_NDK_STATISTICS_INFO_REVISION_1: USHORT = sizeof_through!(
    NDIS_NDK_STATISTICS_INFO,
    CounterSet,
    NDIS_NDK_PERFORMANCE_COUNTERS
);

/// `NDIS_NDK_CONNECTION_ENTRY`: one connection in OID_NDK_CONNECTIONS.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct NDIS_NDK_CONNECTION_ENTRY {
    pub Local: SOCKADDR_INET,
    pub Remote: SOCKADDR_INET,
    /// TRUE for a user-mode NDSPI connection, FALSE for kernel NDKPI.
    pub UserModeOwner: BOOLEAN,
    /// Owner's process ID (user-mode owners only).
    pub OwnerPid: ULONG,
}

/// `NDIS_NDK_CONNECTIONS`: variable length; the declared struct holds one
/// entry, the real size is [`NDIS_SIZEOF_NDK_CONNECTIONS_REVISION_1`]`(Count)`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct NDIS_NDK_CONNECTIONS {
    pub Header: NDIS_OBJECT_HEADER,
    pub Flags: ULONG,
    pub Count: ULONG,
    /// TRUE: entries come in pairs, the even one with the ND addresses and
    /// the odd one with the underlying TCP 4-tuple.
    pub NDConnectionsMappedtoTCPConnections: BOOLEAN,
    pub Connections: [NDIS_NDK_CONNECTION_ENTRY; 1],
}

pub const NDIS_NDK_CONNECTIONS_REVISION_1: UCHAR = 1;

/// `NDIS_SIZEOF_NDK_CONNECTIONS_REVISION_1(n)`: offset of `Connections[n]`.
/// `Header.Size` is this value capped at 0xFFFF. `None` on overflow.
pub const fn NDIS_SIZEOF_NDK_CONNECTIONS_REVISION_1(n: ULONG) -> Option<usize> {
    let array = core::mem::offset_of!(NDIS_NDK_CONNECTIONS, Connections);
    match (n as usize).checked_mul(core::mem::size_of::<NDIS_NDK_CONNECTION_ENTRY>()) {
        Some(bytes) => array.checked_add(bytes),
        None => None,
    }
}

/// `NDIS_NDK_LOCAL_ENDPOINT_ENTRY`: one listener or shared endpoint.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct NDIS_NDK_LOCAL_ENDPOINT_ENTRY {
    pub Local: SOCKADDR_INET,
    pub UserModeOwner: BOOLEAN,
    /// TRUE: a listener; FALSE: a shared endpoint.
    pub Listener: BOOLEAN,
    pub OwnerPid: ULONG,
}

/// `NDIS_NDK_LOCAL_ENDPOINTS`: variable length, as [`NDIS_NDK_CONNECTIONS`].
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct NDIS_NDK_LOCAL_ENDPOINTS {
    pub Header: NDIS_OBJECT_HEADER,
    pub Flags: ULONG,
    pub Count: ULONG,
    pub NDLocalEndpointsMappedtoTCPLocalEndpoints: BOOLEAN,
    pub LocalEndpoints: [NDIS_NDK_LOCAL_ENDPOINT_ENTRY; 1],
}

pub const NDIS_NDK_LOCAL_ENDPOINTS_REVISION_1: UCHAR = 1;

/// `NDIS_SIZEOF_NDK_LOCAL_ENDPOINTS_REVISION_1(n)`: offset of
/// `LocalEndpoints[n]`. `None` on overflow.
pub const fn NDIS_SIZEOF_NDK_LOCAL_ENDPOINTS_REVISION_1(n: ULONG) -> Option<usize> {
    let array = core::mem::offset_of!(NDIS_NDK_LOCAL_ENDPOINTS, LocalEndpoints);
    match (n as usize).checked_mul(core::mem::size_of::<NDIS_NDK_LOCAL_ENDPOINT_ENTRY>()) {
        Some(bytes) => array.checked_add(bytes),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::offset_of;

    #[test]
    fn revision_sizes() {
        assert_eq!(NDIS_SIZEOF_NDK_PROVIDER_CHARACTERISTICS_REVISION_1, 0x18);
        assert_eq!(NDIS_SIZEOF_NDK_CAPABILITIES_REVISION_1, 0x38);
        assert_eq!(NDIS_SIZEOF_MINIPORT_ADAPTER_NDK_ATTRIBUTES_REVISION_1, 16);
        assert_eq!(NDIS_SIZEOF_NDK_STATISTICS_INFO_REVISION_1, 0xF8);
    }

    #[test]
    fn variable_length_sizes() {
        assert_eq!(NDIS_SIZEOF_NDK_CONNECTIONS_REVISION_1(0), Some(0x10));
        assert_eq!(
            NDIS_SIZEOF_NDK_CONNECTIONS_REVISION_1(3),
            Some(0x10 + 3 * 0x40)
        );
        assert_eq!(NDIS_SIZEOF_NDK_LOCAL_ENDPOINTS_REVISION_1(0), Some(0x10));
        assert_eq!(
            NDIS_SIZEOF_NDK_LOCAL_ENDPOINTS_REVISION_1(2),
            Some(0x10 + 2 * 0x24)
        );
    }

    #[test]
    fn counter_mask_bits_follow_offsets() {
        type C = NDIS_NDK_PERFORMANCE_COUNTERS;
        assert_eq!(NDIS_NDK_PERFORMANCE_COUNTER_MASK(offset_of!(C, Connect)), 1);
        assert_eq!(
            NDIS_NDK_PERFORMANCE_COUNTER_MASK(offset_of!(C, CQError)),
            1 << 25
        );
        assert_eq!(
            NDIS_NDK_PERFORMANCE_COUNTER_MASK(offset_of!(C, RDMAOutFrames)),
            1 << 29
        );
    }
}
