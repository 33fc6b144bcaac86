//! NDK_CQ_DISPATCH: arming, resizing and draining completion queues.

use super::*;

pub(super) unsafe extern "system" fn resize_cq(
    cq: *mut NDK_CQ,
    depth: ULONG,
    _done: NDK_FN_REQUEST_COMPLETION,
    _ctx: PVOID,
) -> NTSTATUS {
    let (s, id) = obj_or!(cq, STATUS_INVALID_HANDLE);
    s.call(|c| c.provider.resize_cq(id, depth))
}

pub(super) unsafe extern "system" fn arm_cq(cq: *mut NDK_CQ, kind: ULONG) {
    let (s, id) = obj_or!(cq);
    s.call(|c| c.provider.arm_cq(id, kind));
}

pub(super) fn to_result(c: &NdkCompletion) -> NDK_RESULT {
    NDK_RESULT {
        Status: c.status,
        BytesTransferred: c.bytes_transferred,
        QPContext: c.qp_context as PVOID,
        RequestContext: c.request_context as PVOID,
    }
}

/// Copies up to `n` completions of `cq` out through `put(index, result)`,
/// in batches taken under the lock and written with it released.
pub(super) fn drain_cq(
    s: &Shared,
    id: ObjectId,
    n: ULONG,
    mut put: impl FnMut(usize, &NdkCompletion),
) -> ULONG {
    let mut tmp = [NdkCompletion::EMPTY; 32];
    let mut written = 0usize;
    let n = n as usize;
    let mut first = None;
    while written < n {
        let want = (n - written).min(tmp.len());
        let (got, upcall) = s.with(|c| {
            let got = c
                .provider
                .get_cq_results(id, tmp.get_mut(..want).unwrap_or(&mut []));
            (got, c.claim_upcall(s))
        });
        for (i, c) in tmp.iter().take(got).enumerate() {
            put(written + i, c);
        }
        written += got;
        if upcall.is_some() {
            first = upcall;
            break;
        }
        if got < want {
            break;
        }
    }
    s.run_upcalls_from(first);
    s.platform.wake();
    written as ULONG
}

pub(super) unsafe extern "system" fn get_cq_results(
    cq: *mut NDK_CQ,
    out: *mut NDK_RESULT,
    n: ULONG,
) -> ULONG {
    let (s, id) = obj_or!(cq, 0);
    if out.is_null() {
        return 0;
    }
    drain_cq(s, id, n, |i, c| {
        // SAFETY: the consumer's array holds `n` results.
        unsafe { out.add(i).write(to_result(c)) };
    })
}

pub(super) unsafe extern "system" fn get_cq_results_ex(
    cq: *mut NDK_CQ,
    out: *mut NDK_RESULT_EX,
    n: ULONG,
) -> ULONG {
    let (s, id) = obj_or!(cq, 0);
    if out.is_null() {
        return 0;
    }
    drain_cq(s, id, n, |i, c| {
        let r = to_result(c);
        // SAFETY: the consumer's array holds `n` results.
        unsafe {
            out.add(i).write(NDK_RESULT_EX {
                Status: r.Status,
                BytesTransferred: r.BytesTransferred,
                QPContext: r.QPContext,
                RequestContext: r.RequestContext,
                Type: c.op_type,
                ProviderErrorCode: 0,
                TypeSpecificCompletionOutput: c.type_specific,
            })
        };
    })
}

pub(super) unsafe extern "system" fn moderation(
    _cq: *mut NDK_CQ,
    _interval: ULONG,
    _count: ULONG,
) -> NTSTATUS {
    // NDK_ADAPTER_FLAG_CQ_INTERRUPT_MODERATION_SUPPORTED is clear: the
    // documented answer (the NDKPI completion handling requirements page).
    STATUS_NOT_SUPPORTED
}

pub(super) static CQ: NDK_CQ_DISPATCH = NDK_CQ_DISPATCH {
    NdkCloseCq: Some(close_object),
    NdkQueryExtension: Some(query_extension),
    NdkResizeCq: Some(resize_cq),
    NdkArmCq: Some(arm_cq),
    NdkGetCqResults: Some(get_cq_results),
    NdkControlCqInterruptModeration: Some(moderation),
    NdkGetCqResultsEx: Some(get_cq_results_ex),
};
