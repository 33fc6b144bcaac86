//! Net PnP events (NET_PNP_EVENT_NOTIFICATION; netpnp.h).

use super::*;

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
