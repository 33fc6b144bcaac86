//! NDK_PD_DISPATCH: the objects a protection domain creates.

use super::*;

pub(super) unsafe extern "system" fn create_mr(
    pd: *mut NDK_PD,
    fast_register: BOOLEAN,
    _done: NDK_FN_CREATE_COMPLETION,
    _ctx: PVOID,
    out: *mut *mut NDK_MR,
) -> NTSTATUS {
    let (s, id) = obj_or!(pd, STATUS_INVALID_HANDLE);
    // SAFETY: `out` is the consumer's out-pointer, null or writable (NdkCreateMr).
    unsafe {
        created(s, Kind::Mr, NdkObjectTypeMr, &MR, out, |c| {
            c.provider.create_mr_for(id, fast_register != FALSE)
        })
    }
}

pub(super) unsafe extern "system" fn create_mw(
    pd: *mut NDK_PD,
    _done: NDK_FN_CREATE_COMPLETION,
    _ctx: PVOID,
    out: *mut *mut NDK_MW,
) -> NTSTATUS {
    let (s, id) = obj_or!(pd, STATUS_INVALID_HANDLE);
    // SAFETY: `out` is the consumer's out-pointer, null or writable (NdkCreateMw).
    unsafe {
        created(s, Kind::Mw, NdkObjectTypeMw, &MW, out, |c| {
            c.provider.create_mw(id)
        })
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) unsafe extern "system" fn create_srq(
    pd: *mut NDK_PD,
    depth: ULONG,
    sge: ULONG,
    threshold: ULONG,
    notify: NDK_FN_SRQ_NOTIFICATION_CALLBACK,
    notify_ctx: PVOID,
    _affinity: *mut GROUP_AFFINITY,
    _done: NDK_FN_CREATE_COMPLETION,
    _ctx: PVOID,
    out: *mut *mut NDK_SRQ,
) -> NTSTATUS {
    let (s, id) = obj_or!(pd, STATUS_INVALID_HANDLE);
    // SAFETY: `out` is the consumer's out-pointer, null or writable (NdkCreateSrq).
    unsafe {
        created(s, Kind::Srq, NdkObjectTypeSrq, &SRQ, out, |c| {
            c.provider
                .create_srq(id, depth, sge, threshold, callback(notify, notify_ctx))
        })
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) unsafe extern "system" fn create_qp(
    pd: *mut NDK_PD,
    rcq: *mut NDK_CQ,
    icq: *mut NDK_CQ,
    context: PVOID,
    rq_depth: ULONG,
    iq_depth: ULONG,
    rq_sge: ULONG,
    iq_sge: ULONG,
    inline: ULONG,
    _done: NDK_FN_CREATE_COMPLETION,
    _ctx: PVOID,
    out: *mut *mut NDK_QP,
) -> NTSTATUS {
    let (s, pd) = obj_or!(pd, STATUS_INVALID_HANDLE);
    let (s1, rcq) = obj_or!(rcq, STATUS_INVALID_PARAMETER);
    let (s2, icq) = obj_or!(icq, STATUS_INVALID_PARAMETER);
    if !same(s, s1) || !same(s, s2) {
        return STATUS_INVALID_PARAMETER;
    }
    // SAFETY: `out` is the consumer's out-pointer, null or writable (NdkCreateQp).
    unsafe {
        created(s, Kind::Qp, NdkObjectTypeQp, &QP, out, |c| {
            c.provider.create_qp(
                pd,
                rcq,
                icq,
                context as usize,
                rq_depth,
                iq_depth,
                rq_sge,
                iq_sge,
                inline,
            )
        })
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) unsafe extern "system" fn create_qp_with_srq(
    pd: *mut NDK_PD,
    rcq: *mut NDK_CQ,
    icq: *mut NDK_CQ,
    srq: *mut NDK_SRQ,
    context: PVOID,
    iq_depth: ULONG,
    iq_sge: ULONG,
    inline: ULONG,
    _done: NDK_FN_CREATE_COMPLETION,
    _ctx: PVOID,
    out: *mut *mut NDK_QP,
) -> NTSTATUS {
    let (s, pd) = obj_or!(pd, STATUS_INVALID_HANDLE);
    let (s1, rcq) = obj_or!(rcq, STATUS_INVALID_PARAMETER);
    let (s2, icq) = obj_or!(icq, STATUS_INVALID_PARAMETER);
    let (s3, srq) = obj_or!(srq, STATUS_INVALID_PARAMETER);
    if !same(s, s1) || !same(s, s2) || !same(s, s3) {
        return STATUS_INVALID_PARAMETER;
    }
    // SAFETY: `out` is the consumer's out-pointer, null or writable (NdkCreateQpWithSrq).
    unsafe {
        created(s, Kind::Qp, NdkObjectTypeQp, &QP, out, |c| {
            c.provider.create_qp_with_srq(
                pd,
                rcq,
                icq,
                srq,
                context as usize,
                iq_depth,
                iq_sge,
                inline,
            )
        })
    }
}

pub(super) unsafe extern "system" fn privileged_token(_pd: *mut NDK_PD, token: *mut UINT32) {
    // SAFETY: NDKPI: `token` is null or points to a UINT32.
    if let Some(t) = unsafe { token.as_mut() } {
        // SGEs with this token carry logical addresses (local access only).
        *t = roce::rc::PRIVILEGED_LKEY;
    }
}

pub(super) static PD: NDK_PD_DISPATCH = NDK_PD_DISPATCH {
    NdkClosePd: Some(close_object),
    NdkQueryExtension: Some(query_extension),
    NdkCreateMr: Some(create_mr),
    NdkCreateMw: Some(create_mw),
    NdkCreateSrq: Some(create_srq),
    NdkCreateQp: Some(create_qp),
    NdkCreateQpWithSrq: Some(create_qp_with_srq),
    NdkGetPrivilegedMemoryRegionToken: Some(privileged_token),
};
