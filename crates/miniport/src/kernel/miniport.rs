//! The virtual miniport's adapter entry points: MiniportInitializeEx
//! (NdisMSetMiniportAttributes), MiniportHaltEx, MiniportPause,
//! MiniportRestart, MiniportSendNetBufferLists and
//! MiniportReturnNetBufferLists.

use super::*;

/// Adapter-wide NDK capabilities and the per-consumer NDK_ADAPTER_INFO
/// they point to; NDIS reads them during NdisMSetMiniportAttributes, kept
/// for the adapter's lifetime anyway.
pub(super) struct NdkAttributes {
    info: NDK_ADAPTER_INFO,
    caps: ndkpi::NDIS_NDK_CAPABILITIES,
    attrs: NDIS_MINIPORT_ADAPTER_NDK_ATTRIBUTES,
}

pub(super) unsafe extern "system" fn initialize(
    miniport: NDIS_HANDLE,
    _driver_ctx: NDIS_HANDLE,
    params: *mut NDIS_MINIPORT_INIT_PARAMETERS,
) -> NDIS_STATUS {
    if params.is_null() {
        return NDIS_STATUS_FAILURE;
    }
    // SAFETY: NDIS's init parameters.
    let luid = unsafe { (*params).NetLuid };
    // A stable, locally administered MAC for the virtual adapter's own IP
    // stack; the filter translates it to the NIC's on the wire.
    let virt_mac = crate::binding::virtual_mac(luid);
    // SAFETY: a plain allocation, zeroed below.
    let io = unsafe {
        ExAllocatePool2(
            POOL_FLAG_NON_PAGED,
            core::mem::size_of::<IoBlock>(),
            POOL_TAG,
        )
    }
    .cast::<IoBlock>();
    if io.is_null() {
        return NDIS_STATUS_RESOURCES;
    }
    // SAFETY: the fresh IoBlock.
    unsafe {
        KeInitializeDpc(ptr::addr_of_mut!((*io).kick), engine_dpc, io.cast());
        KeInitializeDpc(ptr::addr_of_mut!((*io).timer_dpc), engine_dpc, null_mut());
        KeInitializeTimer(ptr::addr_of_mut!((*io).timer));
    }
    // SAFETY: PASSIVE, the miniport's own handle.
    let (up, work) = unsafe { (Pool::new(miniport), NdisAllocateIoWorkItem(miniport)) };
    let (Some(up), false) = (up, work.is_null()) else {
        // SAFETY: undoes the allocations above.
        unsafe { ExFreePool(io.cast()) };
        return NDIS_STATUS_RESOURCES;
    };
    // SAFETY: PASSIVE, the miniport's own handle.
    let keyword = crate::binding::network_direct(unsafe { read_integer(miniport, NETWORK_DIRECT) });
    let ndk_enabled = SHELL.with(|s| {
        s.miniport = miniport;
        s.luid = luid;
        s.virt_mac = virt_mac;
        s.up = Some(up);
        s.maintenance = work;
        s.io = io;
        // Enabled only with a datagram path (state.rs).
        s.ndk.initialize(keyword)
    });

    let mut reg = NDIS_MINIPORT_ADAPTER_REGISTRATION_ATTRIBUTES {
        Header: NDIS_OBJECT_HEADER {
            Type: NDIS_OBJECT_TYPE_MINIPORT_ADAPTER_REGISTRATION_ATTRIBUTES,
            Revision: NDIS_MINIPORT_ADAPTER_REGISTRATION_ATTRIBUTES_REVISION_1,
            Size: NDIS_SIZEOF_MINIPORT_ADAPTER_REGISTRATION_ATTRIBUTES_REVISION_1,
        },
        MiniportAdapterContext: io.cast(),
        AttributeFlags: NDIS_MINIPORT_ATTRIBUTES_NO_HALT_ON_SUSPEND
            | NDIS_MINIPORT_ATTRIBUTES_SURPRISE_REMOVE_OK,
        CheckForHangTimeInSeconds: 0,
        InterfaceType: NdisInterfaceInternal,
    };
    let mut mac = [0u8; NDIS_MAX_PHYS_ADDRESS_LENGTH];
    mac[..6].copy_from_slice(&virt_mac);
    let mut general = NDIS_MINIPORT_ADAPTER_GENERAL_ATTRIBUTES {
        Header: NDIS_OBJECT_HEADER {
            Type: NDIS_OBJECT_TYPE_MINIPORT_ADAPTER_GENERAL_ATTRIBUTES,
            Revision: NDIS_MINIPORT_ADAPTER_GENERAL_ATTRIBUTES_REVISION_2,
            Size: NDIS_SIZEOF_MINIPORT_ADAPTER_GENERAL_ATTRIBUTES_REVISION_2,
        },
        Flags: 0,
        MediaType: NdisMedium802_3,
        PhysicalMediumType: NdisPhysicalMediumUnspecified,
        MtuSize: MTU,
        MaxXmitLinkSpeed: 10_000_000_000,
        XmitLinkSpeed: 10_000_000_000,
        MaxRcvLinkSpeed: 10_000_000_000,
        RcvLinkSpeed: 10_000_000_000,
        MediaConnectState: MediaConnectStateConnected,
        MediaDuplexState: MediaDuplexStateFull,
        LookaheadSize: MTU,
        PowerManagementCapabilities: null_mut(),
        MacOptions: NDIS_MAC_OPTION_COPY_LOOKAHEAD_DATA
            | NDIS_MAC_OPTION_TRANSFERS_NOT_PEND
            | NDIS_MAC_OPTION_NO_LOOPBACK,
        SupportedPacketFilters: NDIS_PACKET_TYPE_DIRECTED
            | NDIS_PACKET_TYPE_MULTICAST
            | NDIS_PACKET_TYPE_ALL_MULTICAST
            | NDIS_PACKET_TYPE_BROADCAST,
        MaxMulticastListSize: 32,
        MacAddressLength: 6,
        PermanentMacAddress: mac,
        CurrentMacAddress: mac,
        RecvScaleCapabilities: null_mut(),
        AccessType: NET_IF_ACCESS_BROADCAST,
        DirectionType: NET_IF_DIRECTION_SENDRECEIVE,
        ConnectionType: NET_IF_CONNECTION_DEDICATED,
        IfType: IF_TYPE_ETHERNET_CSMACD,
        IfConnectorPresent: 0,
        SupportedStatistics: NDIS_STATISTICS_DIRECTED_FRAMES_RCV_SUPPORTED
            | NDIS_STATISTICS_DIRECTED_FRAMES_XMIT_SUPPORTED
            | NDIS_STATISTICS_BYTES_RCV_SUPPORTED
            | NDIS_STATISTICS_BYTES_XMIT_SUPPORTED
            | NDIS_STATISTICS_GEN_STATISTICS_SUPPORTED,
        SupportedPauseFunctions: 0,
        DataBackFillSize: 0,
        ContextBackFillSize: 0,
        SupportedOidList: crate::binding::SUPPORTED_OIDS.as_ptr(),
        SupportedOidListLength: core::mem::size_of_val(&crate::binding::SUPPORTED_OIDS) as u32,
        AutoNegotiationFlags: 0,
        PowerManagementCapabilitiesEx: null_mut(),
    };
    let limits = ndk::provider::Limits::default();
    let info = ndk::abi::adapter_info(&config(Vec::new(), luid));
    let ndk_attrs = Box::into_raw(Box::new(NdkAttributes {
        info,
        caps: oids::capabilities(null_mut(), &limits),
        attrs: NDIS_MINIPORT_ADAPTER_NDK_ATTRIBUTES {
            Header: NDIS_OBJECT_HEADER {
                Type: NDIS_OBJECT_TYPE_MINIPORT_ADAPTER_NDK_ATTRIBUTES,
                Revision: NDIS_MINIPORT_ADAPTER_NDK_ATTRIBUTES_REVISION_1,
                Size: NDIS_SIZEOF_MINIPORT_ADAPTER_NDK_ATTRIBUTES_REVISION_1,
            },
            Enabled: u8::from(ndk_enabled),
            NdkCapabilities: null_mut(),
        },
    }));
    // SAFETY: the box just made; self-references are set before use.
    let status = unsafe {
        (*ndk_attrs).caps.NdkInfo = ptr::addr_of_mut!((*ndk_attrs).info);
        (*ndk_attrs).caps.MissingCounterMask = MISSING_COUNTERS;
        (*ndk_attrs).attrs.NdkCapabilities = ptr::addr_of_mut!((*ndk_attrs).caps);
        let mut st = NdisMSetMiniportAttributes(miniport, ptr::addr_of_mut!(reg).cast());
        if st == NDIS_STATUS_SUCCESS {
            st = NdisMSetMiniportAttributes(miniport, ptr::addr_of_mut!(general).cast());
        }
        if st == NDIS_STATUS_SUCCESS {
            st = NdisMSetMiniportAttributes(miniport, ptr::addr_of_mut!((*ndk_attrs).attrs).cast());
        }
        st
    };
    SHELL.with(|s| {
        s.miniport_running = false;
        s.refresh = true;
        kick_maintenance(s);
    });
    // NdkAttributes stays allocated until halt.
    SHELL_NDK_ATTRS.with(|p| *p = ndk_attrs as usize);
    status
}

/// Counters the shell does not keep (oids.rs says which).
pub(super) const MISSING_COUNTERS: u64 = oids::MISSING_COUNTERS;

pub(super) static SHELL_NDK_ATTRS: SpinCell<usize> = SpinCell::new(0);

pub(super) unsafe extern "system" fn halt(_ctx: NDIS_HANDLE, _action: u32) {
    let (io, up, work) = SHELL.with(|s| {
        let r = (s.io, s.up.take(), s.maintenance);
        s.io = null_mut();
        s.maintenance = null_mut();
        s.miniport = null_mut();
        r
    });
    // A work item queued before (say an NDK event after a filter detach)
    // runs to its end first: it sees no miniport and signals nothing (the
    // adapter is going; NDIS closed its NDK adapters before the halt).
    while SHELL.with(|s| s.maintenance_queued || s.maintenance_running) {
        core::hint::spin_loop();
    }
    // SAFETY: PASSIVE; NDIS closed every NDK adapter before halting, all
    // indications returned (the miniport was paused).
    unsafe {
        if !io.is_null() {
            KeCancelTimer(ptr::addr_of_mut!((*io).timer));
            KeFlushQueuedDpcs();
            ExFreePool(io.cast());
        }
        if let Some(mut p) = up {
            p.free();
        }
        if !work.is_null() {
            NdisFreeIoWorkItem(work);
        }
        let attrs = SHELL_NDK_ATTRS.with(core::mem::take);
        if attrs != 0 {
            drop(Box::from_raw(attrs as *mut NdkAttributes));
        }
    }
}

pub(super) unsafe extern "system" fn pause(_ctx: NDIS_HANDLE, _params: PVOID) -> NDIS_STATUS {
    SHELL.with(|s| {
        s.miniport_running = false;
        if s.up.as_ref().is_none_or(|p| p.slots.in_use() == 0) {
            NDIS_STATUS_SUCCESS
        } else {
            s.up_pause_pending = true;
            NDIS_STATUS_PENDING
        }
    })
}

pub(super) unsafe extern "system" fn restart(_ctx: NDIS_HANDLE, _params: PVOID) -> NDIS_STATUS {
    SHELL.with(|s| s.miniport_running = true);
    NDIS_STATUS_SUCCESS
}

/// The virtual adapter's IP stack sends: each frame is copied to the
/// physical NIC through the filter (addresses translated); the NBLs
/// complete at once.
pub(super) unsafe extern "system" fn send(
    _ctx: NDIS_HANDLE,
    nbls: *mut NET_BUFFER_LIST,
    _port: NDIS_PORT_NUMBER,
    flags: ULONG,
) {
    let (miniport, running) = SHELL.with(|s| (s.miniport, s.miniport_running));
    let mut nbl = nbls;
    while !nbl.is_null() {
        // SAFETY: NDIS's chain of valid NBLs, each with NET_BUFFERs.
        unsafe {
            let mut nb = (*nbl).FirstNetBuffer;
            while !nb.is_null() && running {
                to_wire(nb);
                nb = (*nb).Next;
            }
            (*nbl).Status = if running {
                NDIS_STATUS_SUCCESS
            } else {
                NDIS_STATUS_PAUSED
            };
            nbl = (*nbl).Next;
        }
    }
    let complete = if flags & NDIS_SEND_FLAGS_DISPATCH_LEVEL != 0 {
        NDIS_SEND_COMPLETE_FLAGS_DISPATCH_LEVEL
    } else {
        0
    };
    // SAFETY: returns NDIS's chain.
    unsafe { NdisMSendNetBufferListsComplete(miniport, nbls, complete) };
}

/// Copies one frame of the virtual adapter onto the wire.
///
/// # Safety
/// `nb` is a valid NET_BUFFER.
pub(super) unsafe fn to_wire(nb: *mut NET_BUFFER) {
    // SAFETY: per the contract.
    let len = unsafe { NET_BUFFER_DATA_LENGTH(nb) } as usize;
    if !(frame::ETH_HEADER..=SLOT_BYTES).contains(&len) {
        return;
    }
    let Some((slot, buf, nbl, filter, virt, phys)) = SHELL.with(|s| {
        if !s.filter_running {
            return None;
        }
        let pool = s.wire.as_mut()?;
        let i = pool.slots.take()?;
        // SAFETY: slot `i` was just taken.
        Some((
            i,
            unsafe { pool.buf(i) },
            pool.nbl(i),
            s.filter,
            s.virt_mac,
            s.phys_mac,
        ))
    }) else {
        return;
    };
    let Some(dst) = buf.get_mut(..len) else {
        give_back_wire(slot);
        return;
    };
    // SAFETY: copies `len` bytes (contiguous or not) into our slot.
    if !unsafe { copy_out(nb, dst) } {
        give_back_wire(slot);
        return;
    }
    if let Some(src) = frame::translate_out(dst, virt, phys) {
        SHELL.with(|s| {
            if !s.ips.contains(&Some(src)) && !src.is_unspecified() {
                s.refresh = true;
                kick_maintenance(s);
            }
        });
    }
    // SAFETY: our slot NBL, the filter running.
    unsafe {
        set_range(nbl, 0, len);
        (*nbl).SourceHandle = filter;
        NdisFSendNetBufferLists(filter, nbl, NDIS_DEFAULT_PORT_NUMBER, 0);
    }
}

pub(super) unsafe extern "system" fn return_nbls(
    _ctx: NDIS_HANDLE,
    nbls: *mut NET_BUFFER_LIST,
    _flags: ULONG,
) {
    let mut nbl = nbls;
    while !nbl.is_null() {
        // SAFETY: our indicated slot NBLs coming back.
        let (next, slot) = unsafe { ((*nbl).Next, slot_of(nbl, false)) };
        let done = SHELL.with(|s| {
            if let Some(p) = s.up.as_mut() {
                p.slots.put(slot);
            }
            up_pause_done(s)
        });
        if let Some(miniport) = done {
            // SAFETY: the pause this miniport returned PENDING for; no
            // lock held.
            unsafe { NdisMPauseComplete(miniport) };
        }
        nbl = next;
    }
}

pub(super) unsafe extern "system" fn cancel_send(_ctx: NDIS_HANDLE, _id: PVOID) {}
pub(super) unsafe extern "system" fn pnp_notify(_ctx: NDIS_HANDLE, _event: *mut c_void) {}
pub(super) unsafe extern "system" fn shutdown(_ctx: NDIS_HANDLE, _action: u32) {}

/// `*NetworkDirect`, UTF-16.
static NETWORK_DIRECT: &[u16] = &[
    b'*' as u16,
    b'N' as u16,
    b'e' as u16,
    b't' as u16,
    b'w' as u16,
    b'o' as u16,
    b'r' as u16,
    b'k' as u16,
    b'D' as u16,
    b'i' as u16,
    b'r' as u16,
    b'e' as u16,
    b'c' as u16,
    b't' as u16,
];

/// Reads an integer keyword of the adapter's registry key: (type, value).
///
/// # Safety
/// PASSIVE; `miniport` is the adapter handle of MiniportInitializeEx.
unsafe fn read_integer(miniport: NDIS_HANDLE, keyword: &'static [u16]) -> Option<(u32, ULONG)> {
    let mut object = NDIS_CONFIGURATION_OBJECT {
        Header: NDIS_OBJECT_HEADER {
            Type: NDIS_OBJECT_TYPE_CONFIGURATION_OBJECT,
            Revision: NDIS_CONFIGURATION_OBJECT_REVISION_1,
            Size: NDIS_SIZEOF_CONFIGURATION_OBJECT_REVISION_1,
        },
        NdisHandle: miniport,
        Flags: 0,
    };
    let mut handle: NDIS_HANDLE = null_mut();
    // SAFETY: a valid configuration object; closed below.
    if unsafe { NdisOpenConfigurationEx(&mut object, &mut handle) } != NDIS_STATUS_SUCCESS
        || handle.is_null()
    {
        return None;
    }
    let bytes = (keyword.len() * 2) as u16;
    let mut name = UNICODE_STRING {
        Length: bytes,
        MaximumLength: bytes,
        Buffer: keyword.as_ptr(),
    };
    let (mut status, mut value) = (NDIS_STATUS_FAILURE, null_mut());
    // SAFETY: the open handle; NDIS owns the returned parameter until close.
    unsafe {
        NdisReadConfiguration(
            &mut status,
            &mut value,
            handle,
            &mut name,
            NdisParameterInteger,
        );
        let r = (status == NDIS_STATUS_SUCCESS && !value.is_null())
            .then(|| ((*value).ParameterType, (*value).IntegerData));
        NdisCloseConfiguration(handle);
        r
    }
}
