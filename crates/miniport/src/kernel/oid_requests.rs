//! MiniportOidRequest / MiniportDirectOidRequest: the supported OID list,
//! queries and sets (the encodings are `ndk::oids`').

use super::*;

use crate::binding::{self, SUPPORTED_OIDS};

pub(super) unsafe extern "system" fn cancel_oid(_ctx: NDIS_HANDLE, _id: PVOID) {}

/// MiniportOidRequest and MiniportDirectOidRequest: every request
/// completes synchronously.
pub(super) unsafe extern "system" fn oid_request(
    _ctx: NDIS_HANDLE,
    req: *mut NDIS_OID_REQUEST,
) -> NDIS_STATUS {
    if req.is_null() {
        return NDIS_STATUS_FAILURE;
    }
    // SAFETY: NDIS's request; the information buffer holds its length.
    unsafe {
        let r = &mut *req;
        let buf: &mut [u8] = if r.DATA.InformationBuffer.is_null() {
            &mut []
        } else {
            core::slice::from_raw_parts_mut(
                r.DATA.InformationBuffer.cast(),
                r.DATA.InformationBufferLength as usize,
            )
        };
        let (status, written, needed) = match r.RequestType {
            NdisRequestQueryInformation | NdisRequestQueryStatistics => query(r.DATA.Oid, buf),
            NdisRequestSetInformation => set(r.DATA.Oid, buf),
            _ => (NDIS_STATUS_NOT_SUPPORTED, 0, 0),
        };
        r.DATA.BytesWritten = written as u32;
        r.DATA.BytesNeeded = needed as u32;
        status
    }
}

pub(super) fn answer(buf: &mut [u8], value: &[u8]) -> (NDIS_STATUS, usize, usize) {
    match buf.get_mut(..value.len()) {
        Some(dst) => {
            dst.copy_from_slice(value);
            (NDIS_STATUS_SUCCESS, value.len(), 0)
        }
        None => (NDIS_STATUS_BUFFER_TOO_SHORT, 0, value.len()),
    }
}

pub(super) fn encoded(r: Result<usize, oids::TooShort>) -> (NDIS_STATUS, usize, usize) {
    match r {
        Ok(n) => (NDIS_STATUS_SUCCESS, n, 0),
        Err(e) => (NDIS_STATUS_BUFFER_TOO_SHORT, 0, e.needed),
    }
}

/// The open NDK adapter's connections and endpoints, taken with the shell's
/// lock released (the adapter's own lock is taken inside); `enter` keeps
/// the adapter from being closed meanwhile.
pub(super) fn adapter_snapshot() -> Option<oids::Snapshot> {
    let adapter = SHELL.with(|s| s.enter())?;
    let snap = io::snapshot(adapter);
    leave();
    snap
}

pub(super) fn query(oid: NDIS_OID, buf: &mut [u8]) -> (NDIS_STATUS, usize, usize) {
    let u32v = |v: u32| v.to_le_bytes();
    let (mac, counters) = SHELL.with(|s| (s.virt_mac, s.counters));
    match oid {
        OID_GEN_SUPPORTED_LIST => {
            let mut bytes = [0u8; 4 * SUPPORTED_OIDS.len()];
            for (c, o) in bytes.chunks_exact_mut(4).zip(SUPPORTED_OIDS.iter()) {
                c.copy_from_slice(&o.to_le_bytes());
            }
            answer(buf, &bytes)
        }
        OID_GEN_HARDWARE_STATUS => answer(buf, &u32v(0)),
        OID_GEN_MEDIA_SUPPORTED | OID_GEN_MEDIA_IN_USE => answer(buf, &u32v(NdisMedium802_3)),
        OID_GEN_MAXIMUM_LOOKAHEAD | OID_GEN_CURRENT_LOOKAHEAD | OID_GEN_MAXIMUM_FRAME_SIZE => {
            answer(buf, &u32v(MTU))
        }
        OID_GEN_MAXIMUM_TOTAL_SIZE => answer(buf, &u32v(MTU + 14)),
        OID_GEN_TRANSMIT_BUFFER_SPACE | OID_GEN_RECEIVE_BUFFER_SPACE => {
            answer(buf, &u32v((MTU + 14) * SLOTS))
        }
        OID_GEN_VENDOR_ID => answer(buf, &u32v(0x00FF_FFFF)),
        OID_GEN_VENDOR_DESCRIPTION => answer(buf, b"ndkrs software RoCEv2 adapter\0"),
        OID_GEN_VENDOR_DRIVER_VERSION => answer(buf, &u32v(0x0001_0000)),
        OID_GEN_MAC_OPTIONS => answer(
            buf,
            &u32v(
                NDIS_MAC_OPTION_COPY_LOOKAHEAD_DATA
                    | NDIS_MAC_OPTION_TRANSFERS_NOT_PEND
                    | NDIS_MAC_OPTION_NO_LOOPBACK,
            ),
        ),
        OID_GEN_CURRENT_PACKET_FILTER => answer(
            buf,
            &u32v(NDIS_PACKET_TYPE_DIRECTED | NDIS_PACKET_TYPE_BROADCAST),
        ),
        OID_GEN_STATISTICS => answer(buf, binding::bytes_of(&binding::statistics(&counters))),
        OID_GEN_INTERRUPT_MODERATION => {
            answer(buf, binding::bytes_of(&binding::interrupt_moderation()))
        }
        OID_GEN_XMIT_OK => answer(buf, &counters.out_frames.to_le_bytes()),
        OID_GEN_RCV_OK => answer(buf, &counters.in_frames.to_le_bytes()),
        OID_802_3_PERMANENT_ADDRESS | OID_802_3_CURRENT_ADDRESS => answer(buf, &mac),
        OID_802_3_MAXIMUM_LIST_SIZE => answer(buf, &u32v(32)),
        OID_NDK_STATISTICS => {
            let active = adapter_snapshot().map_or(0, |s| s.connections.len() as u64);
            encoded(oids::write_statistics(&counters.counter_set(active), buf))
        }
        OID_NDK_CONNECTIONS => {
            let snap = adapter_snapshot().unwrap_or_default();
            encoded(oids::write_connections(&snap.connections, buf))
        }
        OID_NDK_LOCAL_ENDPOINTS => {
            let snap = adapter_snapshot().unwrap_or_default();
            encoded(oids::write_local_endpoints(&snap.endpoints, buf))
        }
        _ => (NDIS_STATUS_NOT_SUPPORTED, 0, 0),
    }
}

pub(super) fn set(oid: NDIS_OID, buf: &[u8]) -> (NDIS_STATUS, usize, usize) {
    match oid {
        OID_NDK_SET_STATE => match oids::read_set_state(buf) {
            Ok(enable) => SHELL.with(|s| {
                let (status, event) = s.ndk.set(enable);
                if event {
                    // Never from inside MiniportOidRequest: a work item.
                    kick_maintenance(s);
                }
                (status, 1, 0)
            }),
            Err(e) => (NDIS_STATUS_INVALID_LENGTH, 0, e.needed),
        },
        OID_GEN_NETWORK_LAYER_ADDRESSES => {
            SHELL.with(|s| {
                s.refresh = true;
                kick_maintenance(s);
            });
            (NDIS_STATUS_SUCCESS, buf.len(), 0)
        }
        OID_GEN_CURRENT_PACKET_FILTER
        | OID_GEN_CURRENT_LOOKAHEAD
        | OID_802_3_MULTICAST_LIST
        | OID_GEN_INTERRUPT_MODERATION => (NDIS_STATUS_SUCCESS, buf.len(), 0),
        _ => (NDIS_STATUS_NOT_SUPPORTED, 0, 0),
    }
}
