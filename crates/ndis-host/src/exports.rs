//! The exports the shell imports (ndis.sys, ntoskrnl.exe, hal.dll,
//! netio.sys: the list `.ci/kernel-image/check.sh` prints), as
//! `extern "system"` functions (the C ABI on x86_64 Linux; both sides are
//! built by the same compiler). Each checks the IRQL its reference page on
//! learn.microsoft.com allows and the rules of its contract, then does what
//! Windows would.
#![allow(non_snake_case, clippy::missing_safety_doc)]

use std::ffi::c_void;
use std::net::IpAddr;

use ndis_sys::*;
use ndkpi::NDIS_NDK_PROVIDER_CHARACTERISTICS;

use crate::irql::{self, DISPATCH_LEVEL, PASSIVE_LEVEL};
use crate::layout::{Mdl, Nbl};
use crate::mem;
use crate::stack::{self, ADAPTER, FILTER_DRIVER, FILTER_MODULE, MINIPORT_DRIVER, ModState};

fn header_ok(h: &NDIS_OBJECT_HEADER, ty: u8, rev: u8, size: u16, what: &str) -> bool {
    if h.Type != ty || h.Revision < rev || h.Size < size {
        crate::breach!(
            "{what}: header Type {:#x} Revision {} Size {:#x}, NDIS requires Type {ty:#x}, \
             Revision >= {rev}, Size >= {size:#x}",
            h.Type,
            h.Revision,
            h.Size
        );
        return false;
    }
    true
}

// ------------------------------------------------------ ndis.sys: drivers

#[unsafe(no_mangle)]
pub unsafe extern "system" fn NdisMRegisterMiniportDriver(
    _driver: PVOID,
    _registry: PVOID,
    context: NDIS_HANDLE,
    chars: *const NDIS_MINIPORT_DRIVER_CHARACTERISTICS,
    out: *mut NDIS_HANDLE,
) -> NDIS_STATUS {
    let what = "NdisMRegisterMiniportDriver";
    irql::require_eq(PASSIVE_LEVEL, what);
    if chars.is_null() || out.is_null() {
        crate::breach!("{what}: null characteristics or handle pointer");
        return NDIS_STATUS_FAILURE;
    }
    // SAFETY: the driver's characteristics, read during the call.
    let c = unsafe { *chars };
    // Revision 2 (NDIS 6.1+) is at least 152 bytes.
    if !header_ok(&c.Header, 0x8A, 2, 152, what) {
        return NDIS_STATUS_BAD_VERSION;
    }
    if c.MajorNdisVersion != 6 || c.MinorNdisVersion < 30 {
        crate::breach!(
            "{what}: NDIS {}.{}, an NDK provider needs 6.30 or later",
            c.MajorNdisVersion,
            c.MinorNdisVersion
        );
    }
    let required = [
        ("InitializeHandlerEx", c.InitializeHandlerEx.is_some()),
        ("HaltHandlerEx", c.HaltHandlerEx.is_some()),
        ("UnloadHandler", c.UnloadHandler.is_some()),
        ("PauseHandler", c.PauseHandler.is_some()),
        ("RestartHandler", c.RestartHandler.is_some()),
        ("OidRequestHandler", c.OidRequestHandler.is_some()),
        (
            "SendNetBufferListsHandler",
            c.SendNetBufferListsHandler.is_some(),
        ),
        (
            "ReturnNetBufferListsHandler",
            c.ReturnNetBufferListsHandler.is_some(),
        ),
        ("CancelSendHandler", c.CancelSendHandler.is_some()),
        (
            "DevicePnPEventNotifyHandler",
            c.DevicePnPEventNotifyHandler.is_some(),
        ),
        ("ShutdownHandlerEx", c.ShutdownHandlerEx.is_some()),
        (
            "CancelOidRequestHandler",
            c.CancelOidRequestHandler.is_some(),
        ),
    ];
    for (name, present) in required {
        if !present {
            crate::breach!("{what}: required handler {name} missing");
        }
    }
    {
        let mut s = stack::stack();
        if s.miniport_registered {
            crate::breach!("{what} twice");
        }
        s.miniport_chars = Some(c);
        s.miniport_registered = true;
    }
    // SAFETY: the out pointer.
    unsafe { *out = MINIPORT_DRIVER as NDIS_HANDLE };
    // NDIS calls MiniportSetOptions inside the registration.
    if let Some(f) = c.SetOptionsHandler {
        let st = stack::call("MiniportSetOptions", PASSIVE_LEVEL, || {
            // SAFETY: the driver's handler with its driver handle.
            unsafe { f(MINIPORT_DRIVER as NDIS_HANDLE, context) }
        });
        if st != NDIS_STATUS_SUCCESS {
            stack::stack().miniport_registered = false;
            return st;
        }
    }
    NDIS_STATUS_SUCCESS
}

#[unsafe(no_mangle)]
pub unsafe extern "system" fn NdisMDeregisterMiniportDriver(h: NDIS_HANDLE) {
    irql::require_eq(PASSIVE_LEVEL, "NdisMDeregisterMiniportDriver");
    let mut s = stack::stack();
    if h as usize != MINIPORT_DRIVER || !s.miniport_registered {
        crate::breach!("NdisMDeregisterMiniportDriver({h:p}): not registered");
    }
    if s.miniport.state != ModState::Absent {
        crate::breach!("NdisMDeregisterMiniportDriver with an adapter not halted");
    }
    s.miniport_registered = false;
}

#[unsafe(no_mangle)]
pub unsafe extern "system" fn NdisSetOptionalHandlers(
    h: NDIS_HANDLE,
    handlers: *mut NDIS_OBJECT_HEADER,
) -> NDIS_STATUS {
    let what = "NdisSetOptionalHandlers";
    irql::require_eq(PASSIVE_LEVEL, what);
    if !stack::inside("MiniportSetOptions") || h as usize != MINIPORT_DRIVER {
        crate::breach!("{what} outside MiniportSetOptions or with a wrong handle");
        return NDIS_STATUS_FAILURE;
    }
    // SAFETY: the driver's structure, read during the call.
    let hdr = unsafe { &*handlers };
    if hdr.Type != ndkpi::NDIS_OBJECT_TYPE_NDK_PROVIDER_CHARACTERISTICS {
        crate::breach!("{what}: unexpected object type {:#x}", hdr.Type);
        return NDIS_STATUS_NOT_SUPPORTED;
    }
    if !header_ok(
        hdr,
        ndkpi::NDIS_OBJECT_TYPE_NDK_PROVIDER_CHARACTERISTICS,
        1,
        ndkpi::NDIS_SIZEOF_NDK_PROVIDER_CHARACTERISTICS_REVISION_1,
        what,
    ) {
        return NDIS_STATUS_BAD_VERSION;
    }
    // SAFETY: the header says it is NDK provider characteristics.
    let c = unsafe { *handlers.cast::<NDIS_NDK_PROVIDER_CHARACTERISTICS>() };
    if c.OpenNDKAdapterHandler.is_none() || c.CloseNDKAdapterHandler.is_none() || c.Flags != 0 {
        crate::breach!("{what}: NDK provider characteristics incomplete or Flags != 0");
    }
    stack::stack().ndk = Some((c.OpenNDKAdapterHandler, c.CloseNDKAdapterHandler));
    NDIS_STATUS_SUCCESS
}

#[unsafe(no_mangle)]
pub unsafe extern "system" fn NdisMSetMiniportAttributes(
    h: NDIS_HANDLE,
    attrs: *mut c_void,
) -> NDIS_STATUS {
    let what = "NdisMSetMiniportAttributes";
    irql::require_eq(PASSIVE_LEVEL, what);
    if !stack::inside("MiniportInitializeEx") || h as usize != ADAPTER {
        crate::breach!("{what} outside MiniportInitializeEx or with a wrong handle");
        return NDIS_STATUS_FAILURE;
    }
    // SAFETY: every attribute structure starts with a header.
    let hdr = unsafe { &*attrs.cast::<NDIS_OBJECT_HEADER>() };
    let mut s = stack::stack();
    match hdr.Type {
        NDIS_OBJECT_TYPE_MINIPORT_ADAPTER_REGISTRATION_ATTRIBUTES => {
            if header_ok(hdr, hdr.Type, 1, 0x1C, what) {
                // SAFETY: the header names the type.
                let r = unsafe { &*attrs.cast::<NDIS_MINIPORT_ADAPTER_REGISTRATION_ATTRIBUTES>() };
                s.miniport.context = r.MiniportAdapterContext as usize;
                s.reg_attrs = true;
            }
        }
        NDIS_OBJECT_TYPE_MINIPORT_ADAPTER_GENERAL_ATTRIBUTES => {
            if !s.reg_attrs {
                crate::breach!("{what}: general attributes before the registration attributes");
            }
            // Revision 2 (NDIS 6.20+) is 0xE0 bytes.
            if header_ok(hdr, hdr.Type, 2, 0xE0, what) {
                // SAFETY: the header names the type.
                let g = unsafe { &*attrs.cast::<NDIS_MINIPORT_ADAPTER_GENERAL_ATTRIBUTES>() };
                let n = g.SupportedOidListLength as usize / 4;
                if !g.SupportedOidList.is_null() {
                    // SAFETY: the list the length describes.
                    s.supported_oids =
                        unsafe { std::slice::from_raw_parts(g.SupportedOidList, n) }.to_vec();
                }
                if g.MacAddressLength == 6 {
                    let m = g.CurrentMacAddress;
                    s.virt_mac = Some([m[0], m[1], m[2], m[3], m[4], m[5]]);
                }
                s.gen_attrs = true;
            }
        }
        ndkpi::NDIS_OBJECT_TYPE_MINIPORT_ADAPTER_NDK_ATTRIBUTES => {
            if header_ok(
                hdr,
                hdr.Type,
                1,
                ndkpi::NDIS_SIZEOF_MINIPORT_ADAPTER_NDK_ATTRIBUTES_REVISION_1,
                what,
            ) {
                // SAFETY: the header names the type.
                let a = unsafe { &*attrs.cast::<ndkpi::NDIS_MINIPORT_ADAPTER_NDK_ATTRIBUTES>() };
                if a.NdkCapabilities.is_null()
                    // SAFETY: checked non-null first.
                    || unsafe { (*a.NdkCapabilities).NdkInfo.is_null() }
                {
                    crate::breach!("{what}: NDK attributes without capabilities or NdkInfo");
                } else {
                    // SAFETY: checked non-null.
                    let caps = unsafe { &*a.NdkCapabilities };
                    header_ok(
                        &caps.Header,
                        NDIS_OBJECT_TYPE_DEFAULT,
                        1,
                        ndkpi::NDIS_SIZEOF_NDK_CAPABILITIES_REVISION_1,
                        "NDIS_NDK_CAPABILITIES",
                    );
                }
                s.ndk_attrs = Some(a.Enabled != 0);
                s.ndk_enabled = a.Enabled != 0;
            }
        }
        t => crate::breach!("{what}: unknown attribute type {t:#x}"),
    }
    NDIS_STATUS_SUCCESS
}

#[unsafe(no_mangle)]
pub unsafe extern "system" fn NdisMNetPnPEvent(
    h: NDIS_HANDLE,
    n: *mut NET_PNP_EVENT_NOTIFICATION,
) -> NDIS_STATUS {
    let what = "NdisMNetPnPEvent";
    irql::require_eq(PASSIVE_LEVEL, what);
    if stack::inside("MiniportOidRequest") {
        crate::breach!("{what} from inside MiniportOidRequest");
    }
    if h as usize != ADAPTER {
        crate::breach!("{what}: {h:p} is not the adapter's handle");
    }
    // SAFETY: the driver's notification, read during the call.
    let n = unsafe { &*n };
    // NDIS_SIZEOF_NET_PNP_EVENT_NOTIFICATION_REVISION_1: through Flags.
    header_ok(&n.Header, NDIS_OBJECT_TYPE_DEFAULT, 1, 0xA4, what);
    let code = n.NetPnPEvent.NetEvent;
    match code {
        crate::NET_EVENT_NDK_ENABLE => {
            stack::stack().ndk_enabled = true;
        }
        crate::NET_EVENT_NDK_DISABLE => {
            // NDIS has every NDK consumer close its adapter before this
            // returns.
            stack::stack().ndk_enabled = false;
            crate::machine::close_all_ndk("NetEventNDKDisable");
        }
        c => crate::breach!(
            "{what}: event code {c:#x} is neither NetEventNDKEnable ({:#x}) nor \
             NetEventNDKDisable ({:#x})",
            crate::NET_EVENT_NDK_ENABLE,
            crate::NET_EVENT_NDK_DISABLE
        ),
    }
    // Seen once NDIS has processed it.
    stack::stack().seen.pnp.push(code);
    stack::notify();
    NDIS_STATUS_SUCCESS
}

#[unsafe(no_mangle)]
pub unsafe extern "system" fn NdisMSendNetBufferListsComplete(
    h: NDIS_HANDLE,
    nbls: *mut NET_BUFFER_LIST,
    flags: ULONG,
) {
    stack::m_send_complete(h as usize, nbls.cast::<Nbl>(), flags);
}

#[unsafe(no_mangle)]
pub unsafe extern "system" fn NdisMPauseComplete(h: NDIS_HANDLE) {
    stack::pause_complete(false, h as usize);
}

#[unsafe(no_mangle)]
pub unsafe extern "system" fn NdisMIndicateReceiveNetBufferLists(
    h: NDIS_HANDLE,
    nbls: *mut NET_BUFFER_LIST,
    _port: NDIS_PORT_NUMBER,
    count: ULONG,
    flags: ULONG,
) {
    stack::m_indicate(h as usize, nbls.cast::<Nbl>(), count, flags);
}

#[unsafe(no_mangle)]
pub unsafe extern "system" fn NdisFRegisterFilterDriver(
    _driver: PVOID,
    _context: NDIS_HANDLE,
    chars: *const NDIS_FILTER_DRIVER_CHARACTERISTICS,
    out: *mut NDIS_HANDLE,
) -> NDIS_STATUS {
    let what = "NdisFRegisterFilterDriver";
    irql::require_eq(PASSIVE_LEVEL, what);
    if chars.is_null() || out.is_null() {
        crate::breach!("{what}: null characteristics or handle pointer");
        return NDIS_STATUS_FAILURE;
    }
    // SAFETY: the driver's characteristics.
    let c = unsafe { *chars };
    // NDIS 6.1 and later: revision 2, 0xE0 bytes.
    if !header_ok(&c.Header, 0x8B, 2, 0xE0, what) {
        return NDIS_STATUS_BAD_VERSION;
    }
    for (name, present) in [
        ("AttachHandler", c.AttachHandler.is_some()),
        ("DetachHandler", c.DetachHandler.is_some()),
        ("RestartHandler", c.RestartHandler.is_some()),
        ("PauseHandler", c.PauseHandler.is_some()),
    ] {
        if !present {
            crate::breach!("{what}: required handler {name} missing");
        }
    }
    if c.FriendlyName.Length == 0 || c.UniqueName.Length == 0 || c.ServiceName.Length == 0 {
        crate::breach!("{what}: FriendlyName, UniqueName and ServiceName are required");
    }
    if crate::machine::filter_install_missing() {
        // The filter INF is not installed: NDIS refuses the registration.
        return NDIS_STATUS_FAILURE;
    }
    let mut s = stack::stack();
    s.filter_chars = Some(c);
    s.filter_registered = true;
    // SAFETY: the out pointer.
    unsafe { *out = FILTER_DRIVER as NDIS_HANDLE };
    NDIS_STATUS_SUCCESS
}

#[unsafe(no_mangle)]
pub unsafe extern "system" fn NdisFDeregisterFilterDriver(h: NDIS_HANDLE) {
    irql::require_eq(PASSIVE_LEVEL, "NdisFDeregisterFilterDriver");
    let mut s = stack::stack();
    if h as usize != FILTER_DRIVER || !s.filter_registered {
        crate::breach!("NdisFDeregisterFilterDriver({h:p}): not registered");
    }
    if s.filter.state != ModState::Absent {
        crate::breach!("NdisFDeregisterFilterDriver with a filter module attached");
    }
    s.filter_registered = false;
}

#[unsafe(no_mangle)]
pub unsafe extern "system" fn NdisFSetAttributes(
    h: NDIS_HANDLE,
    context: NDIS_HANDLE,
    attrs: *mut NDIS_FILTER_ATTRIBUTES,
) -> NDIS_STATUS {
    let what = "NdisFSetAttributes";
    irql::require_eq(PASSIVE_LEVEL, what);
    if !stack::inside("FilterAttach") || h as usize != FILTER_MODULE {
        crate::breach!("{what} outside FilterAttach or with a wrong handle");
        return NDIS_STATUS_FAILURE;
    }
    // SAFETY: the driver's attributes.
    let a = unsafe { &*attrs };
    header_ok(&a.Header, NDIS_OBJECT_TYPE_FILTER_ATTRIBUTES, 1, 8, what);
    stack::stack().filter.context = context as usize;
    NDIS_STATUS_SUCCESS
}

#[unsafe(no_mangle)]
pub unsafe extern "system" fn NdisFPauseComplete(h: NDIS_HANDLE) {
    stack::pause_complete(true, h as usize);
}

#[unsafe(no_mangle)]
pub unsafe extern "system" fn NdisFSendNetBufferLists(
    h: NDIS_HANDLE,
    nbls: *mut NET_BUFFER_LIST,
    _port: NDIS_PORT_NUMBER,
    flags: ULONG,
) {
    stack::f_send(h as usize, nbls.cast::<Nbl>(), flags);
}

#[unsafe(no_mangle)]
pub unsafe extern "system" fn NdisFSendNetBufferListsComplete(
    h: NDIS_HANDLE,
    nbls: *mut NET_BUFFER_LIST,
    flags: ULONG,
) {
    stack::f_send_complete(h as usize, nbls.cast::<Nbl>(), flags);
}

#[unsafe(no_mangle)]
pub unsafe extern "system" fn NdisFIndicateReceiveNetBufferLists(
    h: NDIS_HANDLE,
    nbls: *mut NET_BUFFER_LIST,
    _port: NDIS_PORT_NUMBER,
    count: ULONG,
    flags: ULONG,
) {
    stack::f_indicate(h as usize, nbls.cast::<Nbl>(), count, flags);
}

#[unsafe(no_mangle)]
pub unsafe extern "system" fn NdisFReturnNetBufferLists(
    h: NDIS_HANDLE,
    nbls: *mut NET_BUFFER_LIST,
    flags: ULONG,
) {
    stack::f_return(h as usize, nbls.cast::<Nbl>(), flags);
}

#[unsafe(no_mangle)]
pub unsafe extern "system" fn NdisFIndicateStatus(h: NDIS_HANDLE, status: PVOID) {
    let what = "NdisFIndicateStatus";
    irql::require(DISPATCH_LEVEL, what);
    if h as usize != FILTER_MODULE {
        crate::breach!("{what}: {h:p} is not the filter module's handle");
    }
    // SAFETY: the filter passes an NDIS_STATUS_INDICATION, read during the
    // call.
    let Some(ind) = (unsafe { status.cast::<NDIS_STATUS_INDICATION>().as_ref() }) else {
        crate::breach!("{what}: NULL indication");
        return;
    };
    header_ok(
        &ind.Header,
        NDIS_OBJECT_TYPE_STATUS_INDICATION,
        NDIS_STATUS_INDICATION_REVISION_1,
        std::mem::size_of::<NDIS_STATUS_INDICATION>() as u16,
        what,
    );
    let mut s = stack::stack();
    s.filter_status += 1;
    s.filter_status_codes.push(ind.StatusCode);
}

/// MAX_EVENT_LOG_DATA_SIZE: ERROR_LOG_MAXIMUM_SIZE (240) less the
/// IO_ERROR_LOG_PACKET header (48) plus its one ULONG of dump data, rounded
/// down to ULONGs (both numbers from mingw-w64's ddk/wdm.h, x64).
pub const MAX_EVENT_LOG_DATA_SIZE: usize = (240 - 48 + 4) & !3;

#[unsafe(no_mangle)]
pub unsafe extern "system" fn NdisWriteEventLogEntry(
    log: PVOID,
    code: NDIS_STATUS,
    unique: ULONG,
    count: USHORT,
    strings: PVOID,
    size: ULONG,
    data: PVOID,
) -> NDIS_STATUS {
    let what = "NdisWriteEventLogEntry";
    irql::require(DISPATCH_LEVEL, what);
    let driver = stack::stack().driver_object;
    if log as usize != driver || driver == 0 {
        crate::breach!("{what}: LogHandle {log:p} is not the driver object ({driver:#x})");
        return NDIS_STATUS_FAILURE;
    }
    if (count == 0) != strings.is_null() || (size == 0) != data.is_null() {
        crate::breach!(
            "{what}: NumStrings {count} with StringsList {strings:p}, DataSize {size} with \
             Data {data:p} (each must be zero exactly when its pointer is NULL)"
        );
        return NDIS_STATUS_FAILURE;
    }
    let mut texts = Vec::new();
    let mut bytes = 0usize;
    for i in 0..usize::from(count) {
        // SAFETY: StringsList is an array of `count` string pointers.
        let p = unsafe { *strings.cast::<*const u16>().add(i) };
        if p.is_null() {
            crate::breach!("{what}: string {i} is NULL");
            return NDIS_STATUS_FAILURE;
        }
        let mut units = Vec::new();
        // SAFETY: a NUL-terminated UTF-16 string, bounded by the limit.
        while let Some(&u) = unsafe { p.add(units.len()).as_ref() } {
            if u == 0 {
                break;
            }
            units.push(u);
            if units.len() * 2 > MAX_EVENT_LOG_DATA_SIZE {
                crate::breach!("{what}: string {i} unterminated within the size limit");
                return NDIS_STATUS_BUFFER_TOO_SHORT;
            }
        }
        bytes += (units.len() + 1) * 2;
        texts.push(String::from_utf16_lossy(&units));
    }
    let padded = (size as usize).div_ceil(4) * 4;
    if bytes + padded > MAX_EVENT_LOG_DATA_SIZE {
        return NDIS_STATUS_BUFFER_TOO_SHORT;
    }
    let dump = if data.is_null() {
        Vec::new()
    } else {
        // SAFETY: `size` bytes at `data`, read during the call.
        unsafe { std::slice::from_raw_parts(data.cast::<u8>(), size as usize) }.to_vec()
    };
    stack::stack().seen.event_log.push(stack::EventLogEntry {
        code,
        unique,
        strings: texts,
        data: dump,
    });
    NDIS_STATUS_SUCCESS
}

// ------------------------------------------- ndis.sys: configuration

// ---- cng.sys ----

/// Calls the shell made of BCryptGenRandom (how its identity was seeded).
pub static RNG_CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

#[unsafe(no_mangle)]
pub unsafe extern "system" fn BCryptGenRandom(
    algorithm: PVOID,
    buffer: *mut u8,
    len: u32,
    flags: u32,
) -> NTSTATUS {
    let what = "BCryptGenRandom";
    // The reference page: the system-preferred RNG takes no handle and is
    // supported at PASSIVE_LEVEL only.
    irql::require_eq(PASSIVE_LEVEL, what);
    if flags != BCRYPT_USE_SYSTEM_PREFERRED_RNG || !algorithm.is_null() {
        crate::breach!("{what}: flags {flags:#x} with handle {algorithm:p}");
        return ndkpi::STATUS_INVALID_PARAMETER;
    }
    RNG_CALLS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    // SAFETY: the caller's buffer of `len` bytes.
    let out = unsafe { std::slice::from_raw_parts_mut(buffer, len as usize) };
    match getrandom::fill(out) {
        Ok(()) => ndkpi::STATUS_SUCCESS,
        Err(_) => ndkpi::STATUS_UNSUCCESSFUL,
    }
}

/// Handles of open configurations.
const CONFIG_HANDLE: usize = 0xC0F1_0000;

#[unsafe(no_mangle)]
pub unsafe extern "system" fn NdisOpenConfigurationEx(
    object: *mut NDIS_CONFIGURATION_OBJECT,
    out: *mut NDIS_HANDLE,
) -> NDIS_STATUS {
    let what = "NdisOpenConfigurationEx";
    irql::require_eq(PASSIVE_LEVEL, what);
    // SAFETY: the caller's object.
    let o = unsafe { &*object };
    header_ok(
        &o.Header,
        NDIS_OBJECT_TYPE_CONFIGURATION_OBJECT,
        1,
        0x14,
        what,
    );
    if !matches!(o.NdisHandle as usize, ADAPTER | FILTER_MODULE) {
        crate::breach!(
            "{what}: {:p} is not an adapter or filter module handle",
            o.NdisHandle
        );
        return NDIS_STATUS_FAILURE;
    }
    let mut s = stack::stack();
    let h = CONFIG_HANDLE + 0x10 * (s.config_open.len() + 1);
    s.config_open.push((h, Vec::new()));
    // SAFETY: the out pointer.
    unsafe { *out = h as NDIS_HANDLE };
    NDIS_STATUS_SUCCESS
}

#[unsafe(no_mangle)]
pub unsafe extern "system" fn NdisReadConfiguration(
    status: *mut NDIS_STATUS,
    value: *mut *mut NDIS_CONFIGURATION_PARAMETER,
    h: NDIS_HANDLE,
    keyword: *mut NDIS_STRING,
    _ty: u32,
) {
    let what = "NdisReadConfiguration";
    irql::require_eq(PASSIVE_LEVEL, what);
    // SAFETY: the caller's counted UTF-16 string.
    let name = unsafe {
        let k = &*keyword;
        String::from_utf16_lossy(std::slice::from_raw_parts(k.Buffer, k.Length as usize / 2))
    };
    let mut s = stack::stack();
    let found = s
        .keywords
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(&name))
        .map(|(_, v)| *v);
    let Some(open) = s.config_open.iter_mut().find(|(x, _)| *x == h as usize) else {
        drop(s);
        crate::breach!("{what}: {h:p} is not an open configuration handle");
        // SAFETY: the out pointers.
        unsafe { *status = NDIS_STATUS_FAILURE };
        return;
    };
    match found {
        Some(v) => {
            let p = Box::into_raw(Box::new([0u64; 3])).cast::<NDIS_CONFIGURATION_PARAMETER>();
            // SAFETY: a fresh, zeroed, large enough block; NDIS owns it
            // until the configuration handle closes.
            unsafe {
                (*p).ParameterType = NdisParameterInteger;
                (*p).IntegerData = v;
                *value = p;
                *status = NDIS_STATUS_SUCCESS;
            }
            open.1.push(p as usize);
        }
        // SAFETY: the out pointer.
        None => unsafe { *status = NDIS_STATUS_FAILURE },
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "system" fn NdisCloseConfiguration(h: NDIS_HANDLE) {
    irql::require_eq(PASSIVE_LEVEL, "NdisCloseConfiguration");
    let mut s = stack::stack();
    match s.config_open.iter().position(|(x, _)| *x == h as usize) {
        Some(i) => {
            for p in s.config_open.remove(i).1 {
                // SAFETY: allocated above as [u64; 3].
                drop(unsafe { Box::from_raw(p as *mut [u64; 3]) });
            }
        }
        None => {
            drop(s);
            crate::breach!("NdisCloseConfiguration({h:p}): not open (closed twice?)");
        }
    }
}

// ------------------------------------------------- ndis.sys: buffers

fn known_handle(h: NDIS_HANDLE) -> bool {
    matches!(h as usize, ADAPTER | FILTER_MODULE)
}

#[unsafe(no_mangle)]
pub unsafe extern "system" fn NdisAllocateNetBufferListPool(
    h: NDIS_HANDLE,
    p: *mut NET_BUFFER_LIST_POOL_PARAMETERS,
) -> NDIS_HANDLE {
    let what = "NdisAllocateNetBufferListPool";
    irql::require(DISPATCH_LEVEL, what);
    if !known_handle(h) {
        crate::breach!("{what}: {h:p} is not an adapter or filter module handle");
    }
    // SAFETY: the driver's parameters.
    let p = unsafe { &*p };
    header_ok(&p.Header, NDIS_OBJECT_TYPE_DEFAULT, 1, 0x10, what);
    mem::nbl_pool_alloc(h as usize, p.fAllocateNetBuffer != 0) as NDIS_HANDLE
}

#[unsafe(no_mangle)]
pub unsafe extern "system" fn NdisFreeNetBufferListPool(pool: NDIS_HANDLE) {
    irql::require(DISPATCH_LEVEL, "NdisFreeNetBufferListPool");
    mem::nbl_pool_free(pool as usize);
}

#[unsafe(no_mangle)]
pub unsafe extern "system" fn NdisAllocateNetBufferAndNetBufferList(
    pool: NDIS_HANDLE,
    context_size: USHORT,
    _backfill: USHORT,
    mdl: *mut MDL,
    offset: ULONG,
    len: usize,
) -> *mut NET_BUFFER_LIST {
    let what = "NdisAllocateNetBufferAndNetBufferList";
    irql::require(DISPATCH_LEVEL, what);
    let alloc_nb = mem::with(|m| m.pools.get(&(pool as usize)).map(|p| p.alloc_nb));
    match alloc_nb {
        None => {
            crate::breach!("{what}: {pool:p} is not an NBL pool");
            return std::ptr::null_mut();
        }
        Some(false) => {
            crate::breach!("{what}: pool {pool:p} was not allocated with fAllocateNetBuffer");
            return std::ptr::null_mut();
        }
        Some(true) => {}
    }
    if context_size != 0 {
        crate::breach!("{what}: context areas are not emulated");
    }
    mem::nbl_new(
        mem::Origin::Pool(pool as usize),
        mdl.cast::<Mdl>(),
        offset,
        len,
    )
    .cast()
}

#[unsafe(no_mangle)]
pub unsafe extern "system" fn NdisFreeNetBufferList(nbl: *mut NET_BUFFER_LIST) {
    irql::require(DISPATCH_LEVEL, "NdisFreeNetBufferList");
    mem::nbl_free(nbl.cast(), "NdisFreeNetBufferList");
}

#[unsafe(no_mangle)]
pub unsafe extern "system" fn NdisAllocateMdl(h: NDIS_HANDLE, va: PVOID, len: u32) -> *mut MDL {
    irql::require(DISPATCH_LEVEL, "NdisAllocateMdl");
    if !known_handle(h) {
        crate::breach!("NdisAllocateMdl: {h:p} is not an adapter or filter module handle");
    }
    mem::mdl_alloc(va.cast(), len).cast()
}

#[unsafe(no_mangle)]
pub unsafe extern "system" fn NdisFreeMdl(mdl: *mut MDL) {
    irql::require(DISPATCH_LEVEL, "NdisFreeMdl");
    mem::mdl_free(mdl.cast());
}

#[unsafe(no_mangle)]
pub unsafe extern "system" fn NdisGetDataBuffer(
    nb: *mut NET_BUFFER,
    needed: ULONG,
    storage: PVOID,
    align_multiple: u32,
    _align_offset: u32,
) -> PVOID {
    irql::require(DISPATCH_LEVEL, "NdisGetDataBuffer");
    if align_multiple == 0 {
        crate::breach!("NdisGetDataBuffer: AlignMultiple must be at least 1");
    }
    let nb = nb.cast::<crate::layout::Nb>();
    // SAFETY: the driver's NET_BUFFER over valid MDLs.
    unsafe {
        if ((*nb).data_length as u64) < u64::from(needed) {
            return std::ptr::null_mut();
        }
        let mdl = (*nb).current_mdl;
        let off = (*nb).current_mdl_offset as usize;
        if !mdl.is_null() && (*mdl).byte_count as usize >= off + needed as usize {
            return (*mdl).mapped_system_va.add(off).cast();
        }
        if storage.is_null() {
            return std::ptr::null_mut();
        }
        let Some(bytes) = crate::layout::nb_bytes(nb) else {
            return std::ptr::null_mut();
        };
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), storage.cast::<u8>(), needed as usize);
        storage
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "system" fn NdisAllocateIoWorkItem(h: NDIS_HANDLE) -> NDIS_HANDLE {
    irql::require(DISPATCH_LEVEL, "NdisAllocateIoWorkItem");
    if !known_handle(h) {
        crate::breach!("NdisAllocateIoWorkItem: {h:p} is not an adapter or filter module handle");
    }
    crate::ke::allocate_work_item()
}

#[unsafe(no_mangle)]
pub unsafe extern "system" fn NdisQueueIoWorkItem(
    item: NDIS_HANDLE,
    routine: NDIS_IO_WORKITEM_ROUTINE,
    ctx: PVOID,
) {
    irql::require(DISPATCH_LEVEL, "NdisQueueIoWorkItem");
    crate::ke::queue_work_item(item, routine, ctx);
}

#[unsafe(no_mangle)]
pub unsafe extern "system" fn NdisFreeIoWorkItem(item: NDIS_HANDLE) {
    irql::require(DISPATCH_LEVEL, "NdisFreeIoWorkItem");
    crate::ke::free_work_item(item);
}

// ---------------------------------------------------------- ntoskrnl.exe

#[unsafe(no_mangle)]
pub unsafe extern "system" fn KeInitializeDpc(
    dpc: *mut KDPC,
    routine: PKDEFERRED_ROUTINE,
    ctx: PVOID,
) {
    crate::ke::initialize_dpc(dpc, routine, ctx);
}

#[unsafe(no_mangle)]
pub unsafe extern "system" fn KeInsertQueueDpc(dpc: *mut KDPC, a1: PVOID, a2: PVOID) -> BOOLEAN {
    u8::from(crate::ke::insert_queue_dpc(dpc, a1, a2))
}

#[unsafe(no_mangle)]
pub unsafe extern "system" fn KeRemoveQueueDpc(dpc: *mut KDPC) -> BOOLEAN {
    u8::from(crate::ke::remove_queue_dpc(dpc))
}

#[unsafe(no_mangle)]
pub unsafe extern "system" fn KeInitializeTimer(t: *mut KTIMER) {
    irql::require(DISPATCH_LEVEL, "KeInitializeTimer");
    crate::ke::initialize_timer(t);
}

#[unsafe(no_mangle)]
pub unsafe extern "system" fn KeSetTimer(
    t: *mut KTIMER,
    due: LARGE_INTEGER,
    dpc: *mut KDPC,
) -> BOOLEAN {
    irql::require(DISPATCH_LEVEL, "KeSetTimer");
    u8::from(crate::ke::set_timer(t, due, dpc))
}

#[unsafe(no_mangle)]
pub unsafe extern "system" fn KeCancelTimer(t: *mut KTIMER) -> BOOLEAN {
    irql::require(DISPATCH_LEVEL, "KeCancelTimer");
    u8::from(crate::ke::cancel_timer(t))
}

#[unsafe(no_mangle)]
pub unsafe extern "system" fn KeFlushQueuedDpcs() {
    crate::ke::flush_queued_dpcs();
}

#[unsafe(no_mangle)]
pub unsafe extern "system" fn KeAcquireSpinLockRaiseToDpc(lock: *mut KSPIN_LOCK) -> KIRQL {
    irql::acquire(lock)
}

#[unsafe(no_mangle)]
pub unsafe extern "system" fn KeReleaseSpinLock(lock: *mut KSPIN_LOCK, new_irql: KIRQL) {
    irql::release(lock, new_irql);
}

#[unsafe(no_mangle)]
pub unsafe extern "system" fn KeQueryUnbiasedInterruptTime() -> u64 {
    crate::ke::interrupt_time()
}

#[unsafe(no_mangle)]
pub unsafe extern "system" fn KeQueryPerformanceCounter(freq: *mut i64) -> i64 {
    if !freq.is_null() {
        // SAFETY: the caller's out pointer.
        unsafe { *freq = 10_000_000 };
    }
    crate::ke::interrupt_time() as i64
}

#[unsafe(no_mangle)]
pub unsafe extern "system" fn MmMapLockedPagesSpecifyCache(
    mdl: *mut MDL,
    _mode: i8,
    _cache: u32,
    _addr: PVOID,
    _bugcheck: u32,
    _priority: u32,
) -> PVOID {
    irql::require(DISPATCH_LEVEL, "MmMapLockedPagesSpecifyCache");
    // User mode: the pages are the process's own; the system address is
    // the virtual address.
    let m = mdl.cast::<Mdl>();
    // The MmMapLockedPagesSpecifyCache reference page (learn.microsoft.com)
    // takes an MDL of locked pages (MmProbeAndLockPages,
    // MmAllocatePagesForMdlEx, or a partial MDL of one), whose Size covers
    // the header (MmSizeOfMdl). Checked on the first 12 bytes before
    // anything else is read or written: anything else handed over as an
    // MDL (another layout's smaller descriptor) would have its neighbours
    // overwritten by the mapping written below.
    // SAFETY: the caller's MDL; Next, Size and MdlFlags are its first 12
    // bytes.
    let (size, flags) = unsafe { ((*m).size, (*m).mdl_flags) };
    let locked = crate::layout::MDL_PAGES_LOCKED | crate::layout::MDL_PARTIAL;
    if flags & locked == 0 || usize::from(size as u16) < size_of::<Mdl>() {
        crate::breach!(
            "MmMapLockedPagesSpecifyCache({mdl:p}): not an MDL of locked pages \
             (MdlFlags {flags:#06x}, Size {size:#x})"
        );
        return std::ptr::null_mut();
    }
    // SAFETY: the caller's MDL of locked pages, checked above.
    unsafe {
        let va = (*m).start_va.add((*m).byte_offset as usize);
        (*m).mapped_system_va = va;
        (*m).mdl_flags |= crate::layout::MDL_MAPPED_TO_SYSTEM_VA;
        va.cast()
    }
}

#[unsafe(no_mangle)]
pub unsafe extern "system" fn ExAllocatePool2(flags: u64, size: usize, tag: u32) -> PVOID {
    irql::require(DISPATCH_LEVEL, "ExAllocatePool2");
    if flags & POOL_FLAG_NON_PAGED == 0 && irql::current() > PASSIVE_LEVEL {
        crate::breach!("ExAllocatePool2: paged pool above PASSIVE_LEVEL");
    }
    mem::pool_alloc(size, tag).cast()
}

#[unsafe(no_mangle)]
pub unsafe extern "system" fn ExFreePool(p: PVOID) {
    irql::require(DISPATCH_LEVEL, "ExFreePool");
    mem::pool_free(p.cast());
}

// ----------------------------------------------------------- netio.sys

#[unsafe(no_mangle)]
pub unsafe extern "system" fn GetUnicastIpAddressTable(
    family: u16,
    out: *mut *mut MIB_UNICASTIPADDRESS_TABLE,
) -> NTSTATUS {
    irql::require_eq(PASSIVE_LEVEL, "GetUnicastIpAddressTable");
    let rows: Vec<(u64, IpAddr)> = stack::stack()
        .addresses
        .iter()
        .copied()
        .filter(|(_, ip)| family == AF_UNSPEC || (family == ndkpi::AF_INET) == ip.is_ipv4())
        .collect();
    let size = 8 + rows.len().max(1) * size_of::<MIB_UNICASTIPADDRESS_ROW>();
    let t = mem::pool_alloc(size, 0).cast::<MIB_UNICASTIPADDRESS_TABLE>();
    mem::with(|m| {
        m.blocks.remove(&(t as usize));
        m.mib_tables.insert(t as usize, size)
    });
    // SAFETY: a fresh zeroed table of `size` bytes.
    unsafe {
        (*t).NumEntries = rows.len() as u32;
        let first = std::ptr::addr_of_mut!((*t).Table).cast::<MIB_UNICASTIPADDRESS_ROW>();
        for (i, (luid, ip)) in rows.iter().enumerate() {
            let r = &mut *first.add(i);
            r.InterfaceLuid = *luid;
            r.DadState = IpDadStatePreferred;
            let a = crate::sockaddr(*ip);
            std::ptr::copy_nonoverlapping(
                a.as_ptr(),
                std::ptr::addr_of_mut!(r.Address).cast::<u8>(),
                a.len(),
            );
        }
        *out = t;
    }
    0
}

#[unsafe(no_mangle)]
pub unsafe extern "system" fn FreeMibTable(p: PVOID) {
    irql::require_eq(PASSIVE_LEVEL, "FreeMibTable");
    match mem::with(|m| m.mib_tables.remove(&(p as usize))) {
        None => crate::breach!("FreeMibTable({p:p}): not a table from netio (double free?)"),
        Some(size) => {
            mem::with(|m| m.blocks.insert(p as usize, (size, 0)));
            mem::pool_free(p.cast());
        }
    }
}

/// GetIfEntry2 calls the shell made (the bound NIC's MTU).
pub static IF_ENTRY_CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

#[unsafe(no_mangle)]
pub unsafe extern "system" fn GetIfEntry2(row: *mut MIB_IF_ROW2) -> NTSTATUS {
    irql::require_eq(PASSIVE_LEVEL, "GetIfEntry2");
    IF_ENTRY_CALLS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    // SAFETY: the caller's row.
    let r = unsafe { &mut *row };
    let (nic, mtu) = {
        let s = stack::stack();
        (s.nic_luid, s.nic_mtu)
    };
    if r.InterfaceLuid != nic {
        return 0xC000_0225_u32 as i32; // STATUS_NOT_FOUND
    }
    r.Mtu = mtu;
    r.Type = 6; // IF_TYPE_ETHERNET_CSMACD
    r.PhysicalAddressLength = 6;
    0
}

#[unsafe(no_mangle)]
pub unsafe extern "system" fn ResolveIpNetEntry2(
    row: *mut MIB_IPNET_ROW2,
    _src: *const SOCKADDR_INET,
) -> NTSTATUS {
    irql::require_eq(PASSIVE_LEVEL, "ResolveIpNetEntry2");
    // SAFETY: the caller's row.
    let r = unsafe { &mut *row };
    let Some(ip) = crate::ip_of(&r.Address) else {
        return 0xC000_000D_u32 as i32; // STATUS_INVALID_PARAMETER
    };
    let luid = stack::stack().luid;
    // The configured neighbors, then what ARP learned, then an ARP
    // exchange on the wire (crate::arp).
    let mac = stack::arp_resolve(ip);
    if r.InterfaceLuid != luid {
        crate::breach!(
            "ResolveIpNetEntry2 on interface {:#x}, not the adapter's",
            r.InterfaceLuid
        );
    }
    match mac {
        Some(m) => {
            r.PhysicalAddress[..6].copy_from_slice(&m);
            r.PhysicalAddressLength = 6;
            r.State = crate::NLNS_REACHABLE;
            0
        }
        None => 0xC000_0225_u32 as i32, // STATUS_NOT_FOUND
    }
}
