//! DriverEntry's registrations (NdisMRegisterMiniportDriver,
//! NdisFRegisterFilterDriver) and MiniportDriverUnload.

use super::*;

pub(super) unsafe extern "system" fn unload(_driver: PVOID) {
    let (m, f) = SHELL.with(|s| (s.driver, s.filter_driver));
    // SAFETY: PASSIVE, every adapter halted and module detached.
    unsafe {
        if !f.is_null() {
            NdisFDeregisterFilterDriver(f);
        }
        if !m.is_null() {
            NdisMDeregisterMiniportDriver(m);
        }
    }
}

// ------------------------------------------------------------ DriverEntry

pub(super) const fn ustr(s: &'static [u16]) -> NDIS_STRING {
    let bytes = (s.len() * 2) as u16;
    UNICODE_STRING {
        Length: bytes,
        MaximumLength: bytes,
        Buffer: s.as_ptr(),
    }
}

macro_rules! wide {
    ($s:literal) => {{
        const S: &str = $s;
        const N: usize = S.len();
        // Evaluated at compile time: an out-of-range index fails the build.
        #[allow(clippy::indexing_slicing)]
        const W: [u16; N] = {
            let b = S.as_bytes();
            let mut w = [0u16; N];
            let mut i = 0;
            while i < N {
                w[i] = b[i] as u16;
                i += 1;
            }
            w
        };
        &W
    }};
}

/// Filter identity: must match inf/ndkrsflt.inx (`FilterName` =
/// FriendlyName, NetCfgInstanceId = UniqueName, service = ServiceName).
pub(super) static FILTER_FRIENDLY: &[u16] = wide!("ndkrs RoCEv2 datagram filter");
pub(super) static FILTER_UNIQUE: &[u16] = wide!("{5d1f0b4e-3c1a-4f43-9a57-6e646b727301}");
pub(super) static FILTER_SERVICE: &[u16] = wide!("ndkrs");

/// The event log's insertion strings (NUL-terminated): the driver, as the
/// I/O manager expects first (the NdisWriteEventLogEntry page), then the
/// package part that is missing, both language-independent.
static LOG_DRIVER: &[u16] = wide!("ndkrs\0");
static LOG_MISSING: &[u16] = wide!("ndkrsflt.inf\0");
/// UniqueEventValue of the no-datagram-path entry.
pub(super) const LOG_NO_DATAGRAM_PATH: ULONG = 1;

/// Writes the System event log entry that says the adapter runs without
/// its datagram filter (NdisFRegisterFilterDriver failed: ndkrsflt.inf not
/// installed), so NDK stays disabled: EVENT_NDIS_UNSUPPORTED_CONFIGURATION
/// (docs/windows.md, "Event log"), the strings above, and the failing
/// NDIS_STATUS as its data. A failure to log changes nothing.
fn log_no_datagram_path(driver: PVOID, status: NDIS_STATUS) {
    let strings: [*const u16; 2] = [LOG_DRIVER.as_ptr(), LOG_MISSING.as_ptr()];
    let data = status;
    // SAFETY: PASSIVE_LEVEL (DriverEntry); the driver object the I/O
    // manager passed; two string pointers and 4 bytes of data, read during
    // the call.
    let _ = unsafe {
        NdisWriteEventLogEntry(
            driver,
            EVENT_NDIS_UNSUPPORTED_CONFIGURATION,
            LOG_NO_DATAGRAM_PATH,
            strings.len() as USHORT,
            strings.as_ptr() as PVOID,
            size_of::<NDIS_STATUS>() as ULONG,
            (&data as *const NDIS_STATUS) as PVOID,
        )
    };
}

/// The driver's registration: the virtual miniport (NDK provider) and the
/// lightweight filter (datagram path), both from this image.
///
/// # Safety
/// Called once from DriverEntry with the I/O manager's arguments.
pub unsafe fn driver_entry(driver: PVOID, registry: PVOID) -> NTSTATUS {
    // PASSIVE_LEVEL here: the one place the system RNG may be asked.
    draw_entropy();
    let mc = NDIS_MINIPORT_DRIVER_CHARACTERISTICS {
        Header: NDIS_OBJECT_HEADER {
            Type: NDIS_OBJECT_TYPE_MINIPORT_DRIVER_CHARACTERISTICS,
            Revision: NDIS_MINIPORT_DRIVER_CHARACTERISTICS_REVISION_2,
            Size: NDIS_SIZEOF_MINIPORT_DRIVER_CHARACTERISTICS_REVISION_2,
        },
        MajorNdisVersion: NDIS_MAJOR,
        MinorNdisVersion: NDIS_MINOR,
        MajorDriverVersion: 1,
        MinorDriverVersion: 0,
        Flags: 0,
        SetOptionsHandler: Some(set_options),
        InitializeHandlerEx: Some(initialize),
        HaltHandlerEx: Some(halt),
        UnloadHandler: Some(unload),
        PauseHandler: Some(pause),
        RestartHandler: Some(restart),
        OidRequestHandler: Some(oid_request),
        SendNetBufferListsHandler: Some(send),
        ReturnNetBufferListsHandler: Some(return_nbls),
        CancelSendHandler: Some(cancel_send),
        CheckForHangHandlerEx: null_mut(),
        ResetHandlerEx: null_mut(),
        DevicePnPEventNotifyHandler: Some(pnp_notify),
        ShutdownHandlerEx: Some(shutdown),
        CancelOidRequestHandler: Some(cancel_oid),
        DirectOidRequestHandler: Some(oid_request),
        CancelDirectOidRequestHandler: Some(cancel_oid),
        SynchronousOidRequestHandler: null_mut(),
    };
    let mut miniport_driver = null_mut();
    // SAFETY: valid characteristics; NDIS calls set_options inside.
    let status = unsafe {
        NdisMRegisterMiniportDriver(driver, registry, null_mut(), &mc, &mut miniport_driver)
    };
    if status != NDIS_STATUS_SUCCESS {
        return status;
    }
    let fc = NDIS_FILTER_DRIVER_CHARACTERISTICS {
        Header: NDIS_OBJECT_HEADER {
            Type: NDIS_OBJECT_TYPE_FILTER_DRIVER_CHARACTERISTICS,
            Revision: NDIS_FILTER_CHARACTERISTICS_REVISION_2,
            Size: NDIS_SIZEOF_FILTER_DRIVER_CHARACTERISTICS_REVISION_2,
        },
        MajorNdisVersion: NDIS_MAJOR,
        MinorNdisVersion: NDIS_MINOR,
        MajorDriverVersion: 1,
        MinorDriverVersion: 0,
        Flags: 0,
        FriendlyName: ustr(FILTER_FRIENDLY),
        UniqueName: ustr(FILTER_UNIQUE),
        ServiceName: ustr(FILTER_SERVICE),
        SetOptionsHandler: None,
        SetFilterModuleOptionsHandler: null_mut(),
        AttachHandler: Some(filter_attach),
        DetachHandler: Some(filter_detach),
        RestartHandler: Some(filter_restart),
        PauseHandler: Some(filter_pause),
        SendNetBufferListsHandler: null_mut(),
        SendNetBufferListsCompleteHandler: Some(filter_send_complete),
        CancelSendNetBufferListsHandler: null_mut(),
        ReceiveNetBufferListsHandler: Some(filter_receive),
        ReturnNetBufferListsHandler: null_mut(),
        OidRequestHandler: null_mut(),
        OidRequestCompleteHandler: null_mut(),
        CancelOidRequestHandler: null_mut(),
        DevicePnPEventNotifyHandler: null_mut(),
        NetPnPEventHandler: null_mut(),
        StatusHandler: Some(filter_status),
        DirectOidRequestHandler: null_mut(),
        DirectOidRequestCompleteHandler: null_mut(),
        CancelDirectOidRequestHandler: null_mut(),
    };
    let mut filter_driver = null_mut();
    // SAFETY: valid characteristics.
    let filter_reg =
        unsafe { NdisFRegisterFilterDriver(driver, null_mut(), &fc, &mut filter_driver) };
    // Without the filter (its INF not installed) the adapter still loads; it
    // has no datagram path until the driver reloads with the filter known.
    let (status, with_filter) =
        crate::binding::driver_entry_status(NDIS_STATUS_SUCCESS, filter_reg);
    if !with_filter {
        log_no_datagram_path(driver, filter_reg);
    }
    SHELL.with(|s| {
        s.driver = miniport_driver;
        s.filter_driver = if with_filter {
            filter_driver
        } else {
            null_mut()
        };
    });
    status
}
