//! NDK_LISTENER_DISPATCH and NDK_SHARED_ENDPOINT_DISPATCH.

use super::*;

pub(super) unsafe extern "system" fn listen(
    l: *mut NDK_LISTENER,
    addr: *const SOCKADDR,
    len: ULONG,
    _done: NDK_FN_REQUEST_COMPLETION,
    _ctx: PVOID,
) -> NTSTATUS {
    let (s, id) = obj_or!(l, STATUS_INVALID_HANDLE);
    // SAFETY: NDKPI NdkListen: `addr` is null or points to `len` readable bytes.
    let Some(addr) = (unsafe { read_sockaddr(addr, len) }) else {
        return STATUS_INVALID_ADDRESS;
    };
    s.call(|c| match c.provider.listen(id, addr) {
        Ok(_) => STATUS_SUCCESS,
        Err(st) => st,
    })
}

pub(super) unsafe extern "system" fn listener_local_address(
    l: *mut NDK_LISTENER,
    addr: *mut SOCKADDR,
    len: *mut ULONG,
) -> NTSTATUS {
    let (s, id) = obj_or!(l, STATUS_INVALID_HANDLE);
    match s.with(|c| c.provider.local_address(id)) {
        // SAFETY: NDKPI: `len` is null or valid and `addr` points to `*len` writable bytes.
        Some(a) => unsafe { write_sockaddr(a, addr, len) },
        None => STATUS_INVALID_DEVICE_STATE,
    }
}

pub(super) unsafe extern "system" fn control_connect_events(l: *mut NDK_LISTENER, pause: BOOLEAN) {
    let (s, id) = obj_or!(l);
    s.call(|c| c.provider.pause_listener(id, pause != FALSE));
}

pub(super) static LISTENER: NDK_LISTENER_DISPATCH = NDK_LISTENER_DISPATCH {
    NdkCloseListener: Some(close_object),
    NdkQueryExtension: Some(query_extension),
    NdkListen: Some(listen),
    NdkGetLocalAddress: Some(listener_local_address),
    NdkControlConnectEvents: Some(control_connect_events),
};

pub(super) unsafe extern "system" fn sep_local_address(
    sep: *mut NDK_SHARED_ENDPOINT,
    addr: *mut SOCKADDR,
    len: *mut ULONG,
) -> NTSTATUS {
    let (s, id) = obj_or!(sep, STATUS_INVALID_HANDLE);
    match s.with(|c| c.provider.local_address(id)) {
        // SAFETY: NDKPI: `len` is null or valid and `addr` points to `*len` writable bytes.
        Some(a) => unsafe { write_sockaddr(a, addr, len) },
        None => STATUS_INVALID_DEVICE_STATE,
    }
}

pub(super) static SHARED_ENDPOINT: NDK_SHARED_ENDPOINT_DISPATCH = NDK_SHARED_ENDPOINT_DISPATCH {
    NdkCloseSharedEndpoint: Some(close_object),
    NdkQueryExtension: Some(query_extension),
    NdkGetLocalAddress: Some(sep_local_address),
};
