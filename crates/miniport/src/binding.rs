//! Who binds to what, and what must be answered: the decisions of
//! DriverEntry, FilterAttach and the OID list, kept out of the kernel glue so
//! they are tested here.

#![allow(non_upper_case_globals)]

use ndis_sys::*;

/// The ndkrs adapter's MAC: locally administered (02), "nd", and three
/// bytes of its NET_LUID. Stable across reboots (the LUID is), and
/// recomputable by the filter from an attach's BaseMiniportNetLuid.
pub fn virtual_mac(luid: NET_LUID) -> [u8; 6] {
    let l = luid.to_le_bytes();
    [0x02, 0x6e, 0x64, l[2] ^ l[5], l[3] ^ l[6], l[4] ^ l[7]]
}

/// What FilterAttach decides for a binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attach {
    Accept,
    /// Not Ethernet with a 6-byte address.
    NotEthernet,
    /// The ndkrs adapter itself: carrying its frames over itself would loop.
    OwnAdapter,
    /// A module is already attached (one physical NIC carries the path).
    AlreadyBound,
}

/// FilterAttach's decision. `mac` is the attach's CurrentMacAddress and
/// `base_luid` its BaseMiniportNetLuid; the own-adapter test works before
/// and after the ndkrs adapter initialised (its MAC follows from its LUID).
pub fn attach(
    medium: u32,
    mac_len: u16,
    mac: [u8; 6],
    base_luid: NET_LUID,
    our_luid: Option<NET_LUID>,
    bound: bool,
) -> Attach {
    if medium != NdisMedium802_3 || mac_len != 6 {
        return Attach::NotEthernet;
    }
    if our_luid == Some(base_luid) || mac == virtual_mac(base_luid) {
        return Attach::OwnAdapter;
    }
    if bound {
        return Attach::AlreadyBound;
    }
    Attach::Accept
}

/// DriverEntry's outcome once the miniport registered: the filter's
/// registration failing (its INF not installed yet, or removed) leaves the
/// adapter working without a datagram path instead of failing the load.
pub fn driver_entry_status(miniport: NDIS_STATUS, filter: NDIS_STATUS) -> (NDIS_STATUS, bool) {
    if miniport != NDIS_STATUS_SUCCESS {
        return (miniport, false);
    }
    (NDIS_STATUS_SUCCESS, filter == NDIS_STATUS_SUCCESS)
}

/// `*NetworkDirect` as NdisReadConfiguration returned it (`None`: absent or
/// unreadable): the standardized keyword's default is enabled; 0 disables.
pub fn network_direct(read: Option<(u32, ULONG)>) -> bool {
    match read {
        Some((NdisParameterInteger | NdisParameterHexInteger, v)) => v != 0,
        _ => true,
    }
}

/// The OIDs the virtual miniport answers (OID_GEN_SUPPORTED_LIST). Includes
/// the ones NDIS requires of every NDIS 6 miniport (OID_GEN_STATISTICS,
/// OID_GEN_INTERRUPT_MODERATION) and every NDK OID it handles.
pub static SUPPORTED_OIDS: [NDIS_OID; 27] = [
    OID_GEN_SUPPORTED_LIST,
    OID_GEN_HARDWARE_STATUS,
    OID_GEN_MEDIA_SUPPORTED,
    OID_GEN_MEDIA_IN_USE,
    OID_GEN_MAXIMUM_LOOKAHEAD,
    OID_GEN_MAXIMUM_FRAME_SIZE,
    OID_GEN_MAXIMUM_TOTAL_SIZE,
    OID_GEN_TRANSMIT_BUFFER_SPACE,
    OID_GEN_RECEIVE_BUFFER_SPACE,
    OID_GEN_VENDOR_ID,
    OID_GEN_VENDOR_DESCRIPTION,
    OID_GEN_VENDOR_DRIVER_VERSION,
    OID_GEN_CURRENT_PACKET_FILTER,
    OID_GEN_CURRENT_LOOKAHEAD,
    OID_GEN_MAC_OPTIONS,
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
];

/// The OID_GEN_STATISTICS answer from the shell's frame counters.
pub fn statistics(counters: &ndk::oids::Counters) -> NDIS_STATISTICS_INFO {
    NDIS_STATISTICS_INFO {
        Header: NDIS_OBJECT_HEADER {
            Type: NDIS_OBJECT_TYPE_DEFAULT,
            Revision: NDIS_STATISTICS_INFO_REVISION_1,
            Size: NDIS_SIZEOF_STATISTICS_INFO_REVISION_1,
        },
        SupportedStatistics: NDIS_STATISTICS_FLAGS_VALID_DIRECTED_FRAMES_RCV
            | NDIS_STATISTICS_FLAGS_VALID_DIRECTED_FRAMES_XMIT
            | NDIS_STATISTICS_FLAGS_VALID_BYTES_RCV
            | NDIS_STATISTICS_FLAGS_VALID_BYTES_XMIT,
        ifHCInUcastPkts: counters.in_frames,
        ifHCOutUcastPkts: counters.out_frames,
        ifHCInOctets: counters.in_octets,
        ifHCOutOctets: counters.out_octets,
        ifHCInUcastOctets: counters.in_octets,
        ifHCOutUcastOctets: counters.out_octets,
        ..NDIS_STATISTICS_INFO::default()
    }
}

/// The OID_GEN_INTERRUPT_MODERATION answer: a virtual adapter has no
/// interrupts to moderate.
pub fn interrupt_moderation() -> NDIS_INTERRUPT_MODERATION_PARAMETERS {
    NDIS_INTERRUPT_MODERATION_PARAMETERS {
        Header: NDIS_OBJECT_HEADER {
            Type: NDIS_OBJECT_TYPE_DEFAULT,
            Revision: NDIS_INTERRUPT_MODERATION_PARAMETERS_REVISION_1,
            Size: NDIS_SIZEOF_INTERRUPT_MODERATION_PARAMETERS_REVISION_1,
        },
        Flags: 0,
        InterruptModeration: NdisInterruptModerationNotSupported,
    }
}

/// A plain-data value as the bytes an OID buffer carries.
pub fn bytes_of<T: Copy>(v: &T) -> &[u8] {
    // SAFETY: T is plain data (repr(C) NDIS structures); the slice covers
    // exactly its storage and lives as long as the borrow.
    unsafe { core::slice::from_raw_parts((v as *const T).cast::<u8>(), core::mem::size_of::<T>()) }
}

/// RoCE path MTU when the bound NIC's MTU is unknown (GetIfEntry2
/// failed): `*NetworkDirectRoCEFrameSize`'s required default, 1024, which
/// a standard 1500-byte Ethernet link carries.
pub const DEFAULT_ROCE_MTU: u32 = 1024;

/// The RoCE path MTU for the NIC the filter binds, from its IP MTU
/// (MIB_IF_ROW2.Mtu): the largest IB MTU whose RoCEv2 packets fit
/// (`roce::framing::path_mtu_for_link`; IPv4, the only family the shell
/// carries). Unknown: [`DEFAULT_ROCE_MTU`]; a link too small for even
/// 256-byte payloads (none that carries IPv4, whose MTU is at least 576)
/// gets 256.
pub fn roce_path_mtu(link_mtu: Option<u32>) -> u32 {
    match link_mtu {
        None => DEFAULT_ROCE_MTU,
        Some(m) => roce::framing::path_mtu_for_link(m, false).unwrap_or(256),
    }
}

/// The link MTU an NDIS status indication of the bound NIC reports, if it
/// is an NDIS_STATUS_L2_MTU_SIZE_CHANGE (ndis.h, NDIS 6.50) carrying a
/// ULONG (the new MTU, the unit of MIB_IF_ROW2.Mtu and of the general
/// attributes' MtuSize: bytes after the Ethernet header). Any other status,
/// a short buffer or a zero MTU: `None` (the MTU from GetIfEntry2 stays).
pub fn mtu_from_status(code: NDIS_STATUS, buffer: &[u8]) -> Option<u32> {
    if code != NDIS_STATUS_L2_MTU_SIZE_CHANGE {
        return None;
    }
    let b = buffer.first_chunk::<4>()?;
    let mtu = u32::from_le_bytes(*b);
    (mtu != 0).then_some(mtu)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_refuses_the_ndkrs_adapter_before_and_after_it_initialised() {
        let luid = 0x0006_0000_0012_3456_u64;
        let mac = virtual_mac(luid);
        // Before the adapter initialised: recognised by its MAC alone.
        assert_eq!(
            attach(NdisMedium802_3, 6, mac, luid, None, false),
            Attach::OwnAdapter
        );
        // After: by its LUID too.
        assert_eq!(
            attach(NdisMedium802_3, 6, [0; 6], luid, Some(luid), false),
            Attach::OwnAdapter
        );
        // A physical NIC is accepted, once.
        let nic = [0x52, 0x54, 0, 0x12, 0x34, 0x56];
        assert_eq!(
            attach(NdisMedium802_3, 6, nic, 0x99, Some(luid), false),
            Attach::Accept
        );
        assert_eq!(
            attach(NdisMedium802_3, 6, nic, 0x99, Some(luid), true),
            Attach::AlreadyBound
        );
        assert_eq!(attach(16, 6, nic, 0x99, None, false), Attach::NotEthernet);
    }

    #[test]
    fn network_direct_keyword_is_honoured() {
        assert!(!network_direct(Some((NdisParameterInteger, 0))));
        assert!(network_direct(Some((NdisParameterInteger, 1))));
        assert!(network_direct(Some((NdisParameterHexInteger, 1))));
        assert!(network_direct(None));
        // A string value is not the keyword's type: default.
        assert!(network_direct(Some((2, 0))));
    }

    #[test]
    fn adapter_loads_without_the_filter() {
        let filter_missing = NDIS_STATUS_FAILURE;
        assert_eq!(
            driver_entry_status(NDIS_STATUS_SUCCESS, filter_missing),
            (NDIS_STATUS_SUCCESS, false)
        );
        assert_eq!(
            driver_entry_status(NDIS_STATUS_SUCCESS, NDIS_STATUS_SUCCESS),
            (NDIS_STATUS_SUCCESS, true)
        );
        assert_eq!(
            driver_entry_status(NDIS_STATUS_RESOURCES, NDIS_STATUS_SUCCESS),
            (NDIS_STATUS_RESOURCES, false)
        );
    }

    #[test]
    fn supported_list_has_the_mandatory_and_ndk_oids_once() {
        for oid in [
            OID_GEN_STATISTICS,
            OID_GEN_INTERRUPT_MODERATION,
            OID_NDK_SET_STATE,
            OID_NDK_STATISTICS,
            OID_NDK_CONNECTIONS,
            OID_NDK_LOCAL_ENDPOINTS,
        ] {
            assert_eq!(
                SUPPORTED_OIDS.iter().filter(|&&o| o == oid).count(),
                1,
                "{oid:#x}"
            );
        }
    }

    #[test]
    fn statistics_and_moderation_answers_are_well_formed() {
        let c = ndk::oids::Counters {
            connect: 0,
            accept: 0,
            connect_failure: 0,
            connection_error: 0,
            cq_error: 0,
            in_octets: 1000,
            out_octets: 2000,
            in_frames: 3,
            out_frames: 4,
        };
        let s = statistics(&c);
        assert_eq!(
            s.Header.Size as usize,
            core::mem::size_of::<NDIS_STATISTICS_INFO>()
        );
        assert_eq!((s.ifHCInUcastPkts, s.ifHCOutOctets), (3, 2000));
        assert_eq!(bytes_of(&s).len(), 0x98);
        let m = interrupt_moderation();
        assert_eq!(m.InterruptModeration, NdisInterruptModerationNotSupported);
        assert_eq!(bytes_of(&m).len(), 12);
    }

    #[test]
    fn the_roce_path_mtu_follows_the_nics_mtu() {
        assert_eq!(roce_path_mtu(None), 1024);
        assert_eq!(roce_path_mtu(Some(1500)), 1024);
        assert_eq!(roce_path_mtu(Some(9014)), 4096);
        assert_eq!(roce_path_mtu(Some(4000)), 2048);
        assert_eq!(roce_path_mtu(Some(1000)), 512);
        assert_eq!(roce_path_mtu(Some(576)), 512);
        assert_eq!(roce_path_mtu(Some(68)), 256);
    }

    #[test]
    fn only_an_mtu_change_status_with_a_ulong_sets_the_link_mtu() {
        let nine_k = 9000u32.to_le_bytes();
        assert_eq!(
            mtu_from_status(NDIS_STATUS_L2_MTU_SIZE_CHANGE, &nine_k),
            Some(9000)
        );
        assert_eq!(
            mtu_from_status(NDIS_STATUS_L2_MTU_SIZE_CHANGE, &[0xDC, 0x05, 0, 0, 7]),
            Some(1500),
            "a longer buffer: its first ULONG"
        );
        assert_eq!(
            mtu_from_status(NDIS_STATUS_L2_MTU_SIZE_CHANGE, &nine_k[..3]),
            None
        );
        assert_eq!(
            mtu_from_status(NDIS_STATUS_L2_MTU_SIZE_CHANGE, &[0; 4]),
            None
        );
        // NDIS_STATUS_LINK_STATE (0x40010017) with the same bytes.
        assert_eq!(mtu_from_status(0x4001_0017, &nine_k), None);
    }
}
