//! The NDK provider registration (MiniportSetOptions ->
//! NdisSetOptionalHandlers with NDIS_NDK_PROVIDER_CHARACTERISTICS) and
//! its OpenNDKAdapterHandler / CloseNDKAdapterHandler.

use super::*;

// ------------------------------------------------------------ NDK open

pub(super) unsafe extern "system" fn open_ndk_adapter(
    _ctx: NDIS_HANDLE,
    params: *mut NDIS_OPEN_NDK_ADAPTER_PARAMETERS,
    out: *mut *mut NDK_ADAPTER,
) -> NDIS_STATUS {
    if params.is_null() || out.is_null() {
        return NDIS_STATUS_FAILURE;
    }
    // SAFETY: NDIS passes a valid parameter block (Version is its first
    // member in every NDIS version).
    let requested = unsafe { (*params).Version };
    let (status, engine) = SHELL.with(|s| (s.ndk.open(), s.adapter));
    if status != NDIS_STATUS_SUCCESS {
        return status;
    }
    let engine = if engine.is_null() {
        match start_engine(requested) {
            Ok(e) => e,
            Err(st) => {
                release_open();
                return st;
            }
        }
    } else {
        engine
    };
    // Each consumer gets its own NDK_ADAPTER over the shell's engine
    // handle, so SMB client and server share addresses and listeners.
    // SAFETY: the engine handle stays open while any open is admitted
    // (`release_open` closes it only after the last).
    match unsafe { ndk::abi::open_adapter_shared(engine, requested) } {
        Ok(a) => {
            // SAFETY: NDIS's out pointer.
            unsafe { *out = a };
            wake_engine();
            NDIS_STATUS_SUCCESS
        }
        Err(st) => {
            release_open();
            st
        }
    }
}

/// Opens the engine handle the I/O path runs on (never given to a
/// consumer), unless a racing open installed one first.
pub(super) fn start_engine(requested: ndkpi::NDK_VERSION) -> Result<*mut NDK_ADAPTER, NDIS_STATUS> {
    let (io, luid) = SHELL.with(|s| (s.io, s.luid));
    refresh_addresses(luid);
    let (ips, n) = SHELL.with(|s| s.ip_list());
    let mut addresses = Vec::new();
    if addresses.try_reserve(n).is_err() {
        return Err(NDIS_STATUS_RESOURCES);
    }
    addresses.extend(ips.iter().take(n).copied());
    let platform: Arc<dyn Platform> = Arc::new(KernelPlatform { io });
    let mine = ndk::abi::open_adapter(platform, config(addresses, luid), requested)?;
    let engine = SHELL.with(|s| {
        if s.adapter.is_null() {
            s.adapter = mine;
        }
        s.adapter
    });
    if engine != mine {
        // SAFETY: never published; nothing else reaches it.
        unsafe { ndk::abi::close_adapter(mine) };
    }
    Ok(engine)
}

/// One admitted open is gone; after the last, the engine handle closes once
/// the I/O path has left it.
pub(super) fn release_open() {
    let (engine, io) = SHELL.with(|s| {
        if s.ndk.closed() {
            (core::mem::replace(&mut s.adapter, null_mut()), s.io)
        } else {
            (null_mut(), null_mut())
        }
    });
    if engine.is_null() {
        return;
    }
    if !io.is_null() {
        // SAFETY: PASSIVE; the timer and DPCs of the live IoBlock.
        unsafe {
            KeCancelTimer(ptr::addr_of_mut!((*io).timer));
            KeFlushQueuedDpcs();
        }
    }
    // Receive paths that entered before the pointer was cleared.
    while SHELL.with(|s| s.users) != 0 {
        core::hint::spin_loop();
    }
    // SAFETY: no consumer adapter and no I/O path uses the engine any more.
    unsafe { ndk::abi::close_adapter(engine) };
}

pub(super) unsafe extern "system" fn close_ndk_adapter(
    _ctx: NDIS_HANDLE,
    adapter: *mut NDK_ADAPTER,
) {
    // SAFETY: NDIS closes an adapter its consumer opened and no longer
    // uses; the I/O path runs on the engine handle, never on this one.
    unsafe { ndk::abi::close_adapter(adapter) };
    release_open();
}

pub(super) fn config(addresses: Vec<IpAddr>, luid: NET_LUID) -> ndk::provider::ProviderConfig {
    // The engine's path MTU is fixed when it opens: a changed NIC MTU
    // applies from the next open after every consumer closed.
    let path_mtu = crate::binding::roce_path_mtu(SHELL.with(|s| s.link_mtu));
    ndk::provider::ProviderConfig {
        device: roce::device::DeviceConfig {
            ip_mode: roce::framing::IpMode::Raw,
            udp_source_port: roce::rc::ROCE_UDP_PORT,
            ca_guid: luid,
            cm: roce::cm::CmConfig::default(),
            rc: roce::rc::EngineConfig::default(),
            seed: 0,
        }
        .with_identity(
            luid ^ now().as_nanos() ^ ENTROPY.load(core::sync::atomic::Ordering::Relaxed),
        ),
        addresses,
        path_mtu,
        version: ndkpi::NDK_VERSION_1_2,
        limits: ndk::provider::Limits::default(),
    }
}

pub(super) unsafe extern "system" fn set_options(
    driver: NDIS_HANDLE,
    _ctx: NDIS_HANDLE,
) -> NDIS_STATUS {
    let mut c = NDIS_NDK_PROVIDER_CHARACTERISTICS {
        Header: NDIS_OBJECT_HEADER {
            Type: ndkpi::NDIS_OBJECT_TYPE_NDK_PROVIDER_CHARACTERISTICS,
            Revision: ndkpi::NDIS_NDK_PROVIDER_CHARACTERISTICS_REVISION_1,
            Size: ndkpi::NDIS_SIZEOF_NDK_PROVIDER_CHARACTERISTICS_REVISION_1,
        },
        Flags: 0,
        OpenNDKAdapterHandler: Some(open_ndk_adapter),
        CloseNDKAdapterHandler: Some(close_ndk_adapter),
    };
    // SAFETY: NDIS copies the characteristics during the call.
    unsafe { NdisSetOptionalHandlers(driver, ptr::addr_of_mut!(c.Header)) }
}
