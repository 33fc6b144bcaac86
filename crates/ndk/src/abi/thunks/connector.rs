//! NDK_CONNECTOR_DISPATCH: connect, accept, reject, connection data, addresses, disconnect.

use super::*;

#[allow(clippy::too_many_arguments)]
pub(super) unsafe extern "system" fn connect(
    conn: *mut NDK_CONNECTOR,
    qp: *mut NDK_QP,
    src: *const SOCKADDR,
    src_len: ULONG,
    dst: *const SOCKADDR,
    dst_len: ULONG,
    irl: ULONG,
    orl: ULONG,
    private: *const c_void,
    private_len: ULONG,
    done: NDK_FN_REQUEST_COMPLETION,
    ctx: PVOID,
) -> NTSTATUS {
    let (s, cid) = obj_or!(conn, STATUS_INVALID_HANDLE);
    let (_, qid) = obj_or!(qp, STATUS_INVALID_PARAMETER);
    // SAFETY: NDKPI NdkConnect: each address is null or points to its length in readable bytes.
    let (Some(src), Some(dst)) = (unsafe { read_sockaddr(src, src_len) }, unsafe {
        read_sockaddr(dst, dst_len)
    }) else {
        return STATUS_INVALID_ADDRESS;
    };
    // SAFETY: NDKPI: `private` points to `private_len` readable bytes (or is null with 0).
    let Some(data) = (unsafe { bytes(private, private_len) }) else {
        return STATUS_INVALID_PARAMETER;
    };
    s.call(|c| {
        c.provider
            .connect(cid, qid, src, dst, irl, orl, data, callback(done, ctx))
    })
}

#[allow(clippy::too_many_arguments)]
pub(super) unsafe extern "system" fn connect_with_shared_endpoint(
    conn: *mut NDK_CONNECTOR,
    qp: *mut NDK_QP,
    sep: *mut NDK_SHARED_ENDPOINT,
    dst: *const SOCKADDR,
    dst_len: ULONG,
    irl: ULONG,
    orl: ULONG,
    private: *const c_void,
    private_len: ULONG,
    done: NDK_FN_REQUEST_COMPLETION,
    ctx: PVOID,
) -> NTSTATUS {
    let (s, cid) = obj_or!(conn, STATUS_INVALID_HANDLE);
    let (_, qid) = obj_or!(qp, STATUS_INVALID_PARAMETER);
    let (_, sid) = obj_or!(sep, STATUS_INVALID_PARAMETER);
    // SAFETY: NDKPI: `dst` is null or points to `dst_len` readable bytes.
    let Some(dst) = (unsafe { read_sockaddr(dst, dst_len) }) else {
        return STATUS_INVALID_ADDRESS;
    };
    // SAFETY: NDKPI: `private` points to `private_len` readable bytes (or is null with 0).
    let Some(data) = (unsafe { bytes(private, private_len) }) else {
        return STATUS_INVALID_PARAMETER;
    };
    s.call(|c| {
        c.provider.connect_with_shared_endpoint(
            cid,
            qid,
            sid,
            dst,
            irl,
            orl,
            data,
            callback(done, ctx),
        )
    })
}

pub(super) unsafe extern "system" fn complete_connect(
    conn: *mut NDK_CONNECTOR,
    event: NDK_FN_DISCONNECT_EVENT_CALLBACK,
    event_ctx: PVOID,
    _done: NDK_FN_REQUEST_COMPLETION,
    _ctx: PVOID,
) -> NTSTATUS {
    let (s, id) = obj_or!(conn, STATUS_INVALID_HANDLE);
    s.call(|c| {
        c.provider
            .complete_connect(id, callback(event, event_ctx), false)
    })
}

pub(super) unsafe extern "system" fn complete_connect_ex(
    conn: *mut NDK_CONNECTOR,
    event: NDK_FN_DISCONNECT_EVENT_CALLBACK_EX,
    event_ctx: PVOID,
    _done: NDK_FN_REQUEST_COMPLETION,
    _ctx: PVOID,
) -> NTSTATUS {
    let (s, id) = obj_or!(conn, STATUS_INVALID_HANDLE);
    s.call(|c| {
        c.provider
            .complete_connect(id, callback(event, event_ctx), true)
    })
}

#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn accept_common(
    conn: *mut NDK_CONNECTOR,
    qp: *mut NDK_QP,
    irl: ULONG,
    orl: ULONG,
    private: *const c_void,
    private_len: ULONG,
    event: Callback,
    ex: bool,
    done: Callback,
) -> NTSTATUS {
    let (s, cid) = obj_or!(conn, STATUS_INVALID_HANDLE);
    let (_, qid) = obj_or!(qp, STATUS_INVALID_PARAMETER);
    // SAFETY: NDKPI: `private` points to `private_len` readable bytes (or is null with 0).
    let Some(data) = (unsafe { bytes(private, private_len) }) else {
        return STATUS_INVALID_PARAMETER;
    };
    s.call(|c| c.provider.accept(cid, qid, irl, orl, data, event, ex, done))
}

#[allow(clippy::too_many_arguments)]
pub(super) unsafe extern "system" fn accept(
    conn: *mut NDK_CONNECTOR,
    qp: *mut NDK_QP,
    irl: ULONG,
    orl: ULONG,
    private: *const c_void,
    private_len: ULONG,
    event: NDK_FN_DISCONNECT_EVENT_CALLBACK,
    event_ctx: PVOID,
    done: NDK_FN_REQUEST_COMPLETION,
    ctx: PVOID,
) -> NTSTATUS {
    // SAFETY: NDKPI NdkAccept: the same contract as `accept_common`'s.
    unsafe {
        accept_common(
            conn,
            qp,
            irl,
            orl,
            private,
            private_len,
            callback(event, event_ctx),
            false,
            callback(done, ctx),
        )
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) unsafe extern "system" fn accept_ex(
    conn: *mut NDK_CONNECTOR,
    qp: *mut NDK_QP,
    irl: ULONG,
    orl: ULONG,
    private: *const c_void,
    private_len: ULONG,
    event: NDK_FN_DISCONNECT_EVENT_CALLBACK_EX,
    event_ctx: PVOID,
    done: NDK_FN_REQUEST_COMPLETION,
    ctx: PVOID,
) -> NTSTATUS {
    // SAFETY: NDKPI NdkAcceptEx: the same contract as `accept_common`'s.
    unsafe {
        accept_common(
            conn,
            qp,
            irl,
            orl,
            private,
            private_len,
            callback(event, event_ctx),
            true,
            callback(done, ctx),
        )
    }
}

pub(super) unsafe extern "system" fn reject(
    conn: *mut NDK_CONNECTOR,
    private: *const c_void,
    private_len: ULONG,
) -> NTSTATUS {
    let (s, id) = obj_or!(conn, STATUS_INVALID_HANDLE);
    // SAFETY: NDKPI NdkReject: `private` points to `private_len` readable bytes (or is null with 0).
    let Some(data) = (unsafe { bytes(private, private_len) }) else {
        return STATUS_INVALID_PARAMETER;
    };
    s.call(|c| c.provider.reject(id, data))
}

pub(super) unsafe extern "system" fn get_connection_data(
    conn: *mut NDK_CONNECTOR,
    irl: *mut ULONG,
    orl: *mut ULONG,
    private: PVOID,
    private_len: *mut ULONG,
) -> NTSTATUS {
    let (s, id) = obj_or!(conn, STATUS_INVALID_HANDLE);
    // SAFETY: NDKPI NdkGetConnectionData: `private_len` is null or points to a ULONG.
    let Some(len) = (unsafe { private_len.as_mut() }) else {
        return STATUS_INVALID_PARAMETER;
    };
    s.with(|c| {
        let Some((i, o, data)) = c.provider.connection_data(id) else {
            return STATUS_CONNECTION_INVALID;
        };
        // SAFETY: NDKPI NdkGetConnectionData: `irl` is null or points to a ULONG.
        if let Some(p) = unsafe { irl.as_mut() } {
            *p = i;
        }
        // SAFETY: NDKPI NdkGetConnectionData: `orl` is null or points to a ULONG.
        if let Some(p) = unsafe { orl.as_mut() } {
            *p = o;
        }
        // The required data size is the whole private-data field
        // (the NDK_FN_GET_CONNECTION_DATA page).
        let rds = data.len() as ULONG;
        if private.is_null() {
            let st = if *len == 0 {
                STATUS_SUCCESS
            } else {
                STATUS_INVALID_PARAMETER
            };
            *len = rds;
            return st;
        }
        let n = (*len).min(rds) as usize;
        // SAFETY: the consumer's buffer holds `*len` bytes.
        unsafe { ptr::copy_nonoverlapping(data.as_ptr(), private.cast::<u8>(), n) };
        let st = if *len >= rds {
            STATUS_SUCCESS
        } else {
            STATUS_BUFFER_TOO_SMALL
        };
        *len = rds;
        st
    })
}

/// One end of a connector's connection (`peer` false: the local one)
/// written as a SOCKADDR.
///
/// # Safety
/// As for the NdkGetLocalAddress / NdkGetPeerAddress entries.
pub(super) unsafe fn connector_address(
    conn: *mut NDK_CONNECTOR,
    peer: bool,
    addr: *mut SOCKADDR,
    len: *mut ULONG,
) -> NTSTATUS {
    let (s, id) = obj_or!(conn, STATUS_INVALID_HANDLE);
    match s.with(|c| c.provider.connector_addresses(id)) {
        Some((local, remote)) => {
            let a = if peer { remote } else { local };
            // SAFETY: the consumer's output buffer and length, per the entry.
            unsafe { write_sockaddr(a, addr, len) }
        }
        None => STATUS_CONNECTION_INVALID,
    }
}

pub(super) unsafe extern "system" fn connector_local_address(
    conn: *mut NDK_CONNECTOR,
    addr: *mut SOCKADDR,
    len: *mut ULONG,
) -> NTSTATUS {
    // SAFETY: forwarded from the consumer's call.
    unsafe { connector_address(conn, false, addr, len) }
}

pub(super) unsafe extern "system" fn connector_peer_address(
    conn: *mut NDK_CONNECTOR,
    addr: *mut SOCKADDR,
    len: *mut ULONG,
) -> NTSTATUS {
    // SAFETY: forwarded from the consumer's call.
    unsafe { connector_address(conn, true, addr, len) }
}

pub(super) unsafe extern "system" fn disconnect(
    conn: *mut NDK_CONNECTOR,
    done: NDK_FN_REQUEST_COMPLETION,
    ctx: PVOID,
) -> NTSTATUS {
    let (s, id) = obj_or!(conn, STATUS_INVALID_HANDLE);
    s.call(|c| c.provider.disconnect(id, callback(done, ctx)))
}

pub(super) static CONNECTOR: NDK_CONNECTOR_DISPATCH = NDK_CONNECTOR_DISPATCH {
    NdkCloseConnector: Some(close_object),
    NdkQueryExtension: Some(query_extension),
    NdkConnect: Some(connect),
    NdkConnectWithSharedEndpoint: Some(connect_with_shared_endpoint),
    NdkCompleteConnect: Some(complete_connect),
    NdkAccept: Some(accept),
    NdkReject: Some(reject),
    NdkGetConnectionData: Some(get_connection_data),
    NdkGetLocalAddress: Some(connector_local_address),
    NdkGetPeerAddress: Some(connector_peer_address),
    NdkDisconnect: Some(disconnect),
    NdkCompleteConnectEx: Some(complete_connect_ex),
    NdkAcceptEx: Some(accept_ex),
};
