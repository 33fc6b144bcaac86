//! The PASSIVE_LEVEL work item (NdisQueueIoWorkItem): NDK PnP events
//! (NdisMNetPnPEvent), neighbor resolution (ResolveIpNetEntry2) and the
//! virtual adapter's addresses (GetUnicastIpAddressTable).

use super::*;

/// PASSIVE_LEVEL work: NDK PnP events, neighbor resolution, address
/// refresh.
pub(super) unsafe extern "system" fn maintenance(_context: PVOID, _handle: NDIS_HANDLE) {
    let (pnp, resolve, refresh, miniport, luid) = SHELL.with(|s| {
        s.maintenance_queued = false;
        s.maintenance_running = true;
        (
            // A halting adapter (no miniport handle) signals nothing.
            s.ndk.take_event().filter(|_| !s.miniport.is_null()),
            s.resolving,
            core::mem::take(&mut s.refresh),
            s.miniport,
            s.luid,
        )
    });
    // The addresses first: once NDK is announced enabled, consumers and
    // peers may address the adapter at once, and the filter steers their
    // frames (ARP, RoCE) by these addresses.
    if refresh {
        refresh_addresses(luid);
    }
    if let Some(e) = pnp {
        let mut n = NET_PNP_EVENT_NOTIFICATION {
            Header: NDIS_OBJECT_HEADER {
                Type: NDIS_OBJECT_TYPE_DEFAULT,
                Revision: NET_PNP_EVENT_NOTIFICATION_REVISION_1,
                Size: NDIS_SIZEOF_NET_PNP_EVENT_NOTIFICATION_REVISION_1,
            },
            PortNumber: NDIS_DEFAULT_PORT_NUMBER,
            NetPnPEvent: NET_PNP_EVENT {
                NetEvent: if e == PnpEvent::Enable {
                    NetEventNDKEnable
                } else {
                    NetEventNDKDisable
                },
                Buffer: null_mut(),
                BufferLength: 0,
                NdisReserved: [0; 4],
                TransportReserved: [0; 4],
                TdiReserved: [0; 4],
                TdiClientReserved: [0; 4],
            },
            Flags: 0,
        };
        // SAFETY: PASSIVE, outside MiniportOidRequest; a disable stays
        // here until every NDK adapter closed.
        unsafe { NdisMNetPnPEvent(miniport, &mut n) };
    }
    if let Some(ip) = resolve {
        let mut row: MIB_IPNET_ROW2 = unsafe_zeroed_row();
        row.Address = sockaddr(ip);
        row.InterfaceLuid = luid;
        // SAFETY: PASSIVE; a valid row naming our interface.
        let status = unsafe { ResolveIpNetEntry2(&mut row, ptr::null()) };
        let mac = row.PhysicalAddress;
        SHELL.with(|s| {
            s.resolving = None;
            if status >= 0 && row.PhysicalAddressLength == 6 {
                s.neighbors
                    .resolved(ip, [mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]], now());
            } else {
                s.neighbors.failed(ip, now());
            }
        });
    }
    SHELL.with(|s| {
        if s.ndk.event_pending() || s.refresh {
            kick_maintenance(s);
        }
    });
    wake_engine();
    SHELL.with(|s| s.maintenance_running = false);
}

pub(super) fn unsafe_zeroed_row() -> MIB_IPNET_ROW2 {
    MIB_IPNET_ROW2 {
        Address: ndkpi::SOCKADDR_INET::default(),
        InterfaceIndex: 0,
        InterfaceLuid: 0,
        PhysicalAddress: [0; 32],
        PhysicalAddressLength: 0,
        State: 0,
        Flags: 0,
        ReachabilityTime: 0,
    }
}

pub(super) fn sockaddr(ip: IpAddr) -> ndkpi::SOCKADDR_INET {
    let bytes = oids::sockaddr_inet_bytes(core::net::SocketAddr::new(ip, 0));
    let mut out = ndkpi::SOCKADDR_INET::default();
    // SAFETY: SOCKADDR_INET is 28 bytes of plain data.
    unsafe {
        ptr::copy_nonoverlapping(
            bytes.as_ptr(),
            ptr::addr_of_mut!(out).cast::<u8>(),
            bytes.len(),
        )
    };
    out
}

pub(super) fn ip_of(a: &ndkpi::SOCKADDR_INET) -> Option<IpAddr> {
    // SAFETY: the family field is at offset 0 of every member.
    unsafe {
        match a.si_family {
            ndkpi::AF_INET => Some(IpAddr::from(a.Ipv4.sin_addr.s_addr)),
            ndkpi::AF_INET6 => Some(IpAddr::from(a.Ipv6.sin6_addr.s6_addr)),
            _ => None,
        }
    }
}

/// Reads the virtual adapter's unicast addresses (PASSIVE).
pub(super) fn refresh_addresses(luid: NET_LUID) {
    let mut table: *mut MIB_UNICASTIPADDRESS_TABLE = null_mut();
    // SAFETY: PASSIVE; the table is freed below.
    if unsafe { GetUnicastIpAddressTable(AF_UNSPEC, &mut table) } < 0 || table.is_null() {
        return;
    }
    let mut ips = [None; MAX_IPS];
    // SAFETY: NumEntries rows follow the count.
    unsafe {
        let rows = core::slice::from_raw_parts(
            ptr::addr_of!((*table).Table).cast::<MIB_UNICASTIPADDRESS_ROW>(),
            (*table).NumEntries as usize,
        );
        let ours = rows
            .iter()
            .filter(|r| r.InterfaceLuid == luid)
            .filter_map(|r| ip_of(&r.Address));
        for (slot, ip) in ips.iter_mut().zip(ours) {
            *slot = Some(ip);
        }
        FreeMibTable(table.cast());
    }
    SHELL.with(|s| {
        if s.ips != ips {
            s.ips = ips;
            s.neighbors.clear();
        }
    });
}
