//! The lightweight filter on the physical NIC: FilterAttach, FilterDetach,
//! FilterRestart, FilterPause, FilterSendNetBufferListsComplete and
//! FilterReceiveNetBufferLists, and the engine's sends
//! (NdisFSendNetBufferLists).

use super::*;

/// Sends what the engine has, up to one pool's worth per run; true when
/// it stopped at that bound with datagrams perhaps left (run again). With
/// no running filter or no free slot it stops: FilterRestart and send
/// completions wake the engine again.
pub(super) fn pump(adapter: *mut NDK_ADAPTER) -> bool {
    for _ in 0..SLOTS {
        let Some((slot, buf, nbl, filter)) = SHELL.with(|s| {
            if !s.filter_running {
                return None;
            }
            let pool = s.wire.as_mut()?;
            let i = pool.slots.take()?;
            // SAFETY: slot `i` was just taken.
            Some((i, unsafe { pool.buf(i) }, pool.nbl(i), s.filter))
        }) else {
            return false;
        };
        let Some(room) = buf.get_mut(frame::ETH_HEADER..) else {
            give_back_wire(slot);
            return false;
        };
        let Some(t) = io::poll_transmit(adapter, room) else {
            give_back_wire(slot);
            return false;
        };
        let (start, end) = (t.sealed.ip_start, frame::ETH_HEADER + t.sealed.end);
        let dst = t.dst.ip();
        let datagram = buf.get(frame::ETH_HEADER + start..end).unwrap_or(&[]);
        let ethertype = frame::ethertype_of(datagram);
        let (to, local, phys) = SHELL.with(|s| {
            let local = s.ips.contains(&Some(dst));
            let n = now();
            let lookup = if local {
                Lookup::Wait
            } else {
                s.neighbors.lookup(dst, n)
            };
            if lookup == Lookup::Resolve && s.resolving.is_none() {
                s.resolving = Some(dst);
                kick_maintenance(s);
            }
            (lookup, local, s.phys_mac)
        });
        if local {
            // Loopback connections (NDK_ADAPTER_FLAG_LOOPBACK_CONNECTIONS_SUPPORTED).
            io::handle_ip(adapter, datagram);
            give_back_wire(slot);
            continue;
        }
        let (Lookup::Hit(mac), Some(et)) = (to, ethertype) else {
            // Unresolved: dropped; the transport retransmits.
            give_back_wire(slot);
            continue;
        };
        if !buf
            .get_mut(start..)
            .is_some_and(|h| frame::write_header(h, mac, phys, et))
        {
            give_back_wire(slot);
            continue;
        }
        SHELL.with(|s| s.counters.sent(end - start));
        // SAFETY: our slot NBL; the filter is running (checked above; a
        // pause waits for outstanding sends).
        unsafe {
            set_range(nbl, start, end - start);
            (*nbl).SourceHandle = filter;
            NdisFSendNetBufferLists(
                filter,
                nbl,
                NDIS_DEFAULT_PORT_NUMBER,
                NDIS_SEND_FLAGS_DISPATCH_LEVEL,
            );
        }
    }
    true
}

// --------------------------------------------------------------- filter

pub(super) unsafe extern "system" fn filter_attach(
    handle: NDIS_HANDLE,
    _driver_ctx: NDIS_HANDLE,
    params: *mut NDIS_FILTER_ATTACH_PARAMETERS,
) -> NDIS_STATUS {
    if params.is_null() {
        return NDIS_STATUS_FAILURE;
    }
    // SAFETY: NDIS's attach parameters.
    let (medium, mac_len, mac, base_luid) = unsafe {
        (
            (*params).MiniportMediaType,
            (*params).MacAddressLength,
            (*params).CurrentMacAddress,
            (*params).BaseMiniportNetLuid,
        )
    };
    let mac6 = [mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]];
    let (our_luid, bound) = SHELL.with(|s| {
        let luid = (!s.miniport.is_null()).then_some(s.luid);
        (luid, !s.filter.is_null())
    });
    // Ethernet only, never the ndkrs adapter itself, one physical NIC.
    if crate::binding::attach(medium, mac_len, mac6, base_luid, our_luid, bound)
        != crate::binding::Attach::Accept
    {
        return NDIS_STATUS_NOT_SUPPORTED;
    }
    // SAFETY: PASSIVE, the filter module's handle.
    let Some(pool) = (unsafe { Pool::new(handle) }) else {
        return NDIS_STATUS_RESOURCES;
    };
    let mut attrs = NDIS_FILTER_ATTRIBUTES {
        Header: NDIS_OBJECT_HEADER {
            Type: NDIS_OBJECT_TYPE_FILTER_ATTRIBUTES,
            Revision: NDIS_FILTER_ATTRIBUTES_REVISION_1,
            Size: core::mem::size_of::<NDIS_FILTER_ATTRIBUTES>() as u16,
        },
        Flags: 0,
    };
    // SAFETY: the module context is the static shell (one module).
    let status =
        unsafe { NdisFSetAttributes(handle, ptr::addr_of!(SHELL).cast_mut().cast(), &mut attrs) };
    if status != NDIS_STATUS_SUCCESS {
        let mut pool = pool;
        // SAFETY: nothing in flight.
        unsafe { pool.free() };
        return status;
    }
    let link_mtu = nic_mtu(base_luid);
    SHELL.with(|s| {
        s.filter = handle;
        s.nic_luid = base_luid;
        s.link_mtu = link_mtu;
        s.phys_mac = [mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]];
        s.wire = Some(pool);
        s.filter_running = false;
        // A datagram path: NDK may be enabled (state.rs).
        if s.ndk.set_path(true) {
            kick_maintenance(s);
        }
    });
    NDIS_STATUS_SUCCESS
}

pub(super) unsafe extern "system" fn filter_detach(_ctx: NDIS_HANDLE) {
    let pool = SHELL.with(|s| {
        s.filter = null_mut();
        s.filter_running = false;
        s.neighbors.clear();
        // No datagram path: NDK is disabled (NetEventNDKDisable from the
        // work item; NDIS has the consumers close everything, state.rs).
        if s.ndk.set_path(false) {
            kick_maintenance(s);
        }
        s.wire.take()
    });
    if let Some(mut p) = pool {
        // SAFETY: paused before detach: no send in flight.
        unsafe { p.free() };
    }
}

/// The IP MTU of the interface `luid` names (PASSIVE_LEVEL: GetIfEntry2).
/// The row (1352 bytes) lives in pool, not on the kernel stack.
pub(super) fn nic_mtu(luid: NET_LUID) -> Option<u32> {
    let layout = core::alloc::Layout::new::<MIB_IF_ROW2>();
    // SAFETY: a non-zero-sized layout; all-zero is a valid MIB_IF_ROW2
    // (integers and arrays of them).
    let row = unsafe { alloc::alloc::alloc_zeroed(layout) }.cast::<MIB_IF_ROW2>();
    if row.is_null() {
        return None;
    }
    // SAFETY: the fresh row; PASSIVE (FilterAttach, FilterRestart); the row
    // names the interface and is filled during the call, then freed with
    // the layout it was allocated with.
    unsafe {
        (*row).InterfaceLuid = luid;
        let st = GetIfEntry2(row);
        let mtu = (*row).Mtu;
        alloc::alloc::dealloc(row.cast(), layout);
        (st >= 0 && mtu != 0).then_some(mtu)
    }
}

/// FilterStatus: every status indication of the NIC below passes up
/// unchanged; an NDIS_STATUS_L2_MTU_SIZE_CHANGE also sets the link MTU
/// (the next engine's RoCE path MTU, as GetIfEntry2 does at attach and
/// restart: an engine already open keeps its MTU). IRQL <= DISPATCH_LEVEL.
pub(super) unsafe extern "system" fn filter_status(
    _ctx: NDIS_HANDLE,
    indication: *mut NDIS_STATUS_INDICATION,
) {
    // SAFETY: NDIS's indication, valid during the call; its StatusBuffer
    // holds StatusBufferSize bytes (read only when both are set).
    let mtu = unsafe {
        indication.as_ref().and_then(|i| {
            let len = i.StatusBufferSize as usize;
            if i.StatusBuffer.is_null() || len == 0 {
                return None;
            }
            let buf = core::slice::from_raw_parts(i.StatusBuffer.cast::<u8>(), len);
            crate::binding::mtu_from_status(i.StatusCode, buf)
        })
    };
    let filter = SHELL.with(|s| {
        if mtu.is_some() {
            s.link_mtu = mtu;
        }
        s.filter
    });
    if !filter.is_null() {
        // SAFETY: NDIS's indication, forwarded during the call.
        unsafe { NdisFIndicateStatus(filter, indication.cast()) };
    }
}

pub(super) unsafe extern "system" fn filter_restart(
    _ctx: NDIS_HANDLE,
    _params: PVOID,
) -> NDIS_STATUS {
    // The NIC's MTU may have changed while the stack was paused.
    let luid = SHELL.with(|s| s.nic_luid);
    let link_mtu = nic_mtu(luid);
    SHELL.with(|s| {
        if link_mtu.is_some() {
            s.link_mtu = link_mtu;
        }
        s.filter_running = true;
        s.refresh = true;
        kick_maintenance(s);
    });
    NDIS_STATUS_SUCCESS
}

pub(super) unsafe extern "system" fn filter_pause(
    _ctx: NDIS_HANDLE,
    _params: PVOID,
) -> NDIS_STATUS {
    SHELL.with(|s| {
        s.filter_running = false;
        if s.wire.as_ref().is_none_or(|p| p.slots.in_use() == 0) {
            NDIS_STATUS_SUCCESS
        } else {
            s.wire_pause_pending = true;
            NDIS_STATUS_PENDING
        }
    })
}

pub(super) unsafe extern "system" fn filter_send_complete(
    _ctx: NDIS_HANDLE,
    nbls: *mut NET_BUFFER_LIST,
    flags: ULONG,
) {
    // Overlying drivers' sends complete through this filter too: every NBL
    // the filter originates carries its module handle in SourceHandle
    // (pump, to_wire), the rest go back up.
    let filter = SHELL.with(|s| s.filter);
    // SAFETY: NDIS's completed chain, ours to relink until handed on.
    let (own, others) =
        unsafe { crate::chain::partition(nbls, |n| !filter.is_null() && n.SourceHandle == filter) };
    if !others.is_empty() {
        // SAFETY: NBLs this filter did not originate, completed to their
        // senders with the flags NDIS gave.
        unsafe { NdisFSendNetBufferListsComplete(filter, others.head, flags) };
    }
    let mut nbl = own.head;
    while !nbl.is_null() {
        // SAFETY: our slot NBLs.
        let (next, slot) = unsafe { ((*nbl).Next, slot_of(nbl, true)) };
        give_back_wire(slot);
        nbl = next;
    }
    wake_engine();
}

/// Receive on the physical NIC: RoCEv2 for us to the engine, the virtual
/// adapter's frames up the virtual miniport, the rest up the physical
/// stack.
pub(super) unsafe extern "system" fn filter_receive(
    _ctx: NDIS_HANDLE,
    nbls: *mut NET_BUFFER_LIST,
    port: NDIS_PORT_NUMBER,
    _count: ULONG,
    flags: ULONG,
) {
    let (filter, ips, n_ips) = SHELL.with(|s| {
        let (ips, n) = s.ip_list();
        (s.filter, ips, n)
    });
    let ours = ips.get(..n_ips).unwrap_or(&[]);
    let dispatch = flags & NDIS_RECEIVE_FLAGS_DISPATCH_LEVEL != 0;
    if flags & NDIS_RECEIVE_FLAGS_RESOURCES != 0 {
        // The miniport takes its NBLs back when this returns: the chain is
        // left as it came; passed frames go up in runs, each cut and
        // restored around its indication; consumed ones were copied.
        // SAFETY: NDIS's chain, one NET_BUFFER per receive NBL.
        unsafe {
            crate::chain::for_each_run(
                nbls,
                |n| receive_one(n.FirstNetBuffer, ours, flags),
                |first, count| {
                    NdisFIndicateReceiveNetBufferLists(filter, first, port, count, flags)
                },
            )
        };
        return;
    }
    // SAFETY: NDIS's chain, ours until indicated or returned.
    let (done, pass) =
        unsafe { crate::chain::partition(nbls, |n| receive_one(n.FirstNetBuffer, ours, flags)) };
    // SAFETY: hands the two lists on as NDIS requires.
    unsafe {
        if !pass.is_empty() {
            NdisFIndicateReceiveNetBufferLists(filter, pass.head, port, pass.count, flags);
        }
        if !done.is_empty() {
            let ret = if dispatch {
                NDIS_RETURN_FLAGS_DISPATCH_LEVEL
            } else {
                0
            };
            NdisFReturnNetBufferLists(filter, done.head, ret);
        }
    }
}

/// One received frame; `true` if it was consumed.
///
/// # Safety
/// `nb` is null or a valid NET_BUFFER.
pub(super) unsafe fn receive_one(nb: *mut NET_BUFFER, ours: &[IpAddr], flags: ULONG) -> bool {
    if nb.is_null() || ours.is_empty() {
        return false;
    }
    // SAFETY: per the contract.
    let len = unsafe { NET_BUFFER_DATA_LENGTH(nb) } as usize;
    if !(frame::ETH_HEADER..=SLOT_BYTES).contains(&len) {
        return false;
    }
    // The frame is copied into a wire slot (the engine and the steering
    // read it there).
    let Some((slot, buf)) = SHELL.with(|s| {
        let pool = s.wire.as_mut()?;
        let i = pool.slots.take()?;
        // SAFETY: slot `i` was just taken.
        Some((i, unsafe { pool.buf(i) }))
    }) else {
        return false;
    };
    let Some(f) = buf.get_mut(..len) else {
        give_back_wire(slot);
        return false;
    };
    // SAFETY: `nb` holds `len` bytes.
    if !unsafe { copy_out(nb, f) } {
        give_back_wire(slot);
        return false;
    }
    let consumed = match frame::steer(f, ours) {
        Steer::Roce { ip_start } => {
            if let Some(adapter) = SHELL.with(|s| {
                s.counters.received(len - ip_start);
                s.enter()
            }) {
                io::handle_ip(adapter, f.get(ip_start..).unwrap_or(&[]));
                leave();
            }
            true
        }
        Steer::Virtual => {
            up(f, flags);
            true
        }
        Steer::Both => {
            up(f, flags);
            false
        }
        Steer::Pass => false,
    };
    give_back_wire(slot);
    consumed
}

/// Indicates a copy of `f` up the virtual miniport.
pub(super) fn up(f: &mut [u8], flags: ULONG) {
    let Some((slot, buf, nbl, miniport, phys, virt)) = SHELL.with(|s| {
        if !s.miniport_running {
            return None;
        }
        let pool = s.up.as_mut()?;
        let i = pool.slots.take()?;
        // SAFETY: slot `i` was just taken.
        Some((
            i,
            unsafe { pool.buf(i) },
            pool.nbl(i),
            s.miniport,
            s.phys_mac,
            s.virt_mac,
        ))
    }) else {
        return;
    };
    let Some(dst) = buf.get_mut(..f.len()) else {
        SHELL.with(|s| s.up.as_mut().map(|p| p.slots.put(slot)));
        return;
    };
    dst.copy_from_slice(f);
    frame::translate_in(dst, phys, virt);
    // SAFETY: our slot NBL from the miniport's pool; it comes back in
    // MiniportReturnNetBufferLists.
    unsafe {
        set_range(nbl, 0, f.len());
        (*nbl).SourceHandle = miniport;
        NdisMIndicateReceiveNetBufferLists(
            miniport,
            nbl,
            NDIS_DEFAULT_PORT_NUMBER,
            1,
            flags & NDIS_RECEIVE_FLAGS_DISPATCH_LEVEL,
        );
    }
}
