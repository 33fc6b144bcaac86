//! NETIO: IP helper rows and calls (netioapi.h).

use super::*;

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
