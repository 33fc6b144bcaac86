//! NDK_QP_DISPATCH: posting work requests and flushing.

use super::*;

pub(super) unsafe extern "system" fn flush(qp: *mut NDK_QP) {
    let (s, id) = obj_or!(qp);
    s.call(|c| c.provider.flush(id));
}

/// An initiator data request. Failures found here still hand the QP's
/// deferred requests to the engine first (the NDKPI work request posting requirements page rule 2).
///
/// # Safety
/// `sgl` points to `n` NDK_SGEs (or is null with `n` 0); with
/// NDK_OP_FLAG_INLINE their virtual addresses are readable for the call.
pub(super) unsafe fn post(
    qp: *mut NDK_QP,
    ctx: PVOID,
    sgl: *const NDK_SGE,
    n: ULONG,
    op: SendOp<'_>,
    flags: ULONG,
) -> NTSTATUS {
    let (s, id) = obj_or!(qp, STATUS_INVALID_HANDLE);
    if flags & NDK_OP_FLAG_INLINE != 0 {
        // A request that takes no INLINE (NdkRead) is refused before its
        // buffers are read as inline data.
        if !flags_valid(&op, flags) {
            return s.call(|c| c.provider.reject_post(id, STATUS_INVALID_PARAMETER));
        }
        // Copy now (the NDKPI work request posting requirements page): the buffers are only valid during the call, the
        // tokens are to be ignored, and the SGE count is not limited.
        if n > 0 && sgl.is_null() {
            return s.call(|c| c.provider.reject_post(id, STATUS_INVALID_PARAMETER));
        }
        let src: &[NDK_SGE] = if n == 0 {
            &[]
        } else {
            // SAFETY: the consumer's array of `n` SGEs.
            unsafe { core::slice::from_raw_parts(sgl, n as usize) }
        };
        let mut buf = [0u8; MAX_INLINE_DATA as usize];
        let addrs = src.iter().map(|e| {
            // SAFETY: both union members are 8 plain bytes.
            (unsafe { e.Address.LogicalAddress } as u64, e.Length)
        });
        let r = gather_inline(addrs, &mut buf, |addr, dst| {
            if addr == 0 {
                return false;
            }
            // SAFETY: an inline SGE's buffer is resident and readable
            // until the call returns (DDI NDK_SGE).
            unsafe { ptr::copy_nonoverlapping(addr as *const u8, dst.as_mut_ptr(), dst.len()) };
            true
        });
        return match r {
            Ok(len) => {
                let data = buf.get(..len).unwrap_or(&[]);
                s.call(|c| {
                    c.provider
                        .post_data(id, ctx as usize, SendData::Inline(data), op, flags)
                })
            }
            Err(st) => s.call(|c| c.provider.reject_post(id, st)),
        };
    }
    let mut buf = [NdkSge::default(); 32];
    // SAFETY: NDKPI: `sgl` points to `n` NDK_SGEs (or is null with 0).
    match unsafe { sges(sgl, n, &mut buf) } {
        Ok(sgl) => s.call(|c| {
            c.provider
                .post_data(id, ctx as usize, SendData::Sges(sgl), op, flags)
        }),
        Err(st) => s.call(|c| c.provider.reject_post(id, st)),
    }
}

pub(super) unsafe extern "system" fn send(
    qp: *mut NDK_QP,
    ctx: PVOID,
    sgl: *const NDK_SGE,
    n: ULONG,
    flags: ULONG,
) -> NTSTATUS {
    // SAFETY: NDKPI NdkSend: `qp` is a live QP, `sgl` points to `n` NDK_SGEs.
    unsafe { post(qp, ctx, sgl, n, SendOp::Send, flags) }
}

pub(super) unsafe extern "system" fn send_and_invalidate(
    qp: *mut NDK_QP,
    ctx: PVOID,
    sgl: *const NDK_SGE,
    n: ULONG,
    flags: ULONG,
    token: UINT32,
) -> NTSTATUS {
    // SAFETY: NDKPI NdkSendAndInvalidate: `qp` is a live QP, `sgl` points to `n` NDK_SGEs.
    unsafe { post(qp, ctx, sgl, n, SendOp::SendWithInv(token), flags) }
}

pub(super) unsafe extern "system" fn read(
    qp: *mut NDK_QP,
    ctx: PVOID,
    sgl: *const NDK_SGE,
    n: ULONG,
    remote: UINT64,
    token: UINT32,
    flags: ULONG,
) -> NTSTATUS {
    // SAFETY: NDKPI: `qp` is a live QP, `sgl` points to `n` NDK_SGEs.
    unsafe {
        post(
            qp,
            ctx,
            sgl,
            n,
            SendOp::Read {
                remote_addr: remote,
                rkey: token,
            },
            flags,
        )
    }
}

pub(super) unsafe extern "system" fn write(
    qp: *mut NDK_QP,
    ctx: PVOID,
    sgl: *const NDK_SGE,
    n: ULONG,
    remote: UINT64,
    token: UINT32,
    flags: ULONG,
) -> NTSTATUS {
    // SAFETY: NDKPI: `qp` is a live QP, `sgl` points to `n` NDK_SGEs.
    unsafe {
        post(
            qp,
            ctx,
            sgl,
            n,
            SendOp::Write {
                remote_addr: remote,
                rkey: token,
            },
            flags,
        )
    }
}

pub(super) unsafe extern "system" fn receive(
    qp: *mut NDK_QP,
    ctx: PVOID,
    sgl: *const NDK_SGE,
    n: ULONG,
) -> NTSTATUS {
    let (s, id) = obj_or!(qp, STATUS_INVALID_HANDLE);
    let mut buf = [NdkSge::default(); 32];
    // SAFETY: NDKPI: `sgl` points to `n` NDK_SGEs (or is null with 0).
    let sgl = match unsafe { sges(sgl, n, &mut buf) } {
        Ok(x) => x,
        Err(st) => return st,
    };
    s.call(|c| c.provider.post_receive(id, ctx as usize, sgl))
}

pub(super) unsafe extern "system" fn bind(
    qp: *mut NDK_QP,
    ctx: PVOID,
    mr: *mut NDK_MR,
    mw: *mut NDK_MW,
    va: PVOID,
    len: SIZE_T,
    flags: ULONG,
) -> NTSTATUS {
    let (s, id) = obj_or!(qp, STATUS_INVALID_HANDLE);
    // SAFETY: NDKPI NdkBind: `mr` and `mw` are objects of this adapter, not closed.
    let objects = (unsafe { resolve(mr) }, unsafe { resolve(mw) });
    let (Some((s1, mr)), Some((s2, mw))) = objects else {
        return s.call(|c| c.provider.reject_post(id, STATUS_INVALID_PARAMETER));
    };
    if !same(s, s1) || !same(s, s2) {
        return s.call(|c| c.provider.reject_post(id, STATUS_INVALID_PARAMETER));
    }
    s.call(|c| {
        c.provider
            .bind(id, ctx as usize, mr, mw, va as u64, len as u64, flags)
    })
}

#[allow(clippy::too_many_arguments)]
pub(super) unsafe extern "system" fn fast_register(
    qp: *mut NDK_QP,
    ctx: PVOID,
    mr: *mut NDK_MR,
    pages: ULONG,
    array: *const NDK_LOGICAL_ADDRESS,
    fbo: ULONG,
    len: SIZE_T,
    va: PVOID,
    flags: ULONG,
) -> NTSTATUS {
    let (s, id) = obj_or!(qp, STATUS_INVALID_HANDLE);
    // SAFETY: NDKPI NdkFastRegister: `mr` is an object of this adapter, not closed.
    let Some((s1, mr)) = (unsafe { resolve(mr) }) else {
        return s.call(|c| c.provider.reject_post(id, STATUS_INVALID_PARAMETER));
    };
    if !same(s, s1) || (pages > 0 && array.is_null()) {
        return s.call(|c| c.provider.reject_post(id, STATUS_INVALID_PARAMETER));
    }
    let pages: &[u64] = if pages == 0 {
        &[]
    } else {
        // SAFETY: the consumer's array of `pages` logical addresses (from
        // NdkBuildLAM), read as the same 8 bytes unsigned; the engine
        // copies it during the post.
        unsafe { core::slice::from_raw_parts(array.cast::<u64>(), pages as usize) }
    };
    s.call(|c| {
        c.provider.fast_register(
            id,
            ctx as usize,
            mr,
            pages,
            fbo,
            len as u64,
            va as u64,
            flags,
        )
    })
}

pub(super) unsafe extern "system" fn invalidate(
    qp: *mut NDK_QP,
    ctx: PVOID,
    obj: *mut NDK_OBJECT_HEADER,
    flags: ULONG,
) -> NTSTATUS {
    let (s, id) = obj_or!(qp, STATUS_INVALID_HANDLE);
    // SAFETY: NDKPI NdkInvalidate: `obj` is an MR or MW of this adapter, not closed.
    let Some((s1, target)) = (unsafe { resolve(obj) }) else {
        return s.call(|c| c.provider.reject_post(id, STATUS_INVALID_PARAMETER));
    };
    if !same(s, s1) {
        return s.call(|c| c.provider.reject_post(id, STATUS_INVALID_PARAMETER));
    }
    s.call(|c| c.provider.invalidate(id, ctx as usize, target, flags))
}

pub(super) static QP: NDK_QP_DISPATCH = NDK_QP_DISPATCH {
    NdkCloseQp: Some(close_object),
    NdkQueryExtension: Some(query_extension),
    NdkFlush: Some(flush),
    NdkSend: Some(send),
    NdkReceive: Some(receive),
    NdkBind: Some(bind),
    NdkFastRegister: Some(fast_register),
    NdkInvalidate: Some(invalidate),
    NdkRead: Some(read),
    NdkWrite: Some(write),
    NdkSendAndInvalidate: Some(send_and_invalidate),
};
