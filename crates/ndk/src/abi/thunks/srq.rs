//! NDK_SRQ_DISPATCH: shared receive queues.

use super::*;

pub(super) unsafe extern "system" fn modify_srq(
    srq: *mut NDK_SRQ,
    depth: ULONG,
    threshold: ULONG,
    _done: NDK_FN_REQUEST_COMPLETION,
    _ctx: PVOID,
) -> NTSTATUS {
    let (s, id) = obj_or!(srq, STATUS_INVALID_HANDLE);
    s.call(|c| c.provider.modify_srq(id, depth, threshold))
}

pub(super) unsafe extern "system" fn srq_receive(
    srq: *mut NDK_SRQ,
    ctx: PVOID,
    sgl: *const NDK_SGE,
    n: ULONG,
) -> NTSTATUS {
    let (s, id) = obj_or!(srq, STATUS_INVALID_HANDLE);
    let mut buf = [NdkSge::default(); 32];
    // SAFETY: NDKPI: `sgl` points to `n` NDK_SGEs (or is null with 0).
    let sgl = match unsafe { sges(sgl, n, &mut buf) } {
        Ok(x) => x,
        Err(st) => return st,
    };
    s.call(|c| c.provider.post_srq_receive(id, ctx as usize, sgl))
}

pub(super) static SRQ: NDK_SRQ_DISPATCH = NDK_SRQ_DISPATCH {
    NdkCloseSrq: Some(close_object),
    NdkQueryExtension: Some(query_extension),
    NdkModifySrq: Some(modify_srq),
    NdkSrqReceive: Some(srq_receive),
};
