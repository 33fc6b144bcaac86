//! NDK_MR_DISPATCH and NDK_MW_DISPATCH: registration and tokens.

use super::*;

pub(super) unsafe extern "system" fn register_mr(
    mr: *mut NDK_MR,
    mdl: *mut MDL,
    length: SIZE_T,
    flags: ULONG,
    _done: NDK_FN_REQUEST_COMPLETION,
    _ctx: PVOID,
) -> NTSTATUS {
    let (s, id) = obj_or!(mr, STATUS_INVALID_HANDLE);
    // Walked (and each MDL mapped) before the adapter lock is taken.
    // SAFETY: the consumer's MDL chain, valid for this call.
    let walk = unsafe { Walk::new(&*s.platform, mdl) };
    let length = length as u64;
    let (va, pieces) = match registration(walk, length) {
        Ok(x) => x,
        Err(st) => return st,
    };
    let translation = match &pieces {
        Pieces::One(base) => Translation::Contiguous { base: *base },
        Pieces::Many(ranges) => Translation::Ranges { ranges },
    };
    s.call(|c| {
        c.provider
            .register_translated(id, va, length, translation, flags)
    })
}

pub(super) unsafe extern "system" fn deregister_mr(
    mr: *mut NDK_MR,
    _done: NDK_FN_REQUEST_COMPLETION,
    _ctx: PVOID,
) -> NTSTATUS {
    let (s, id) = obj_or!(mr, STATUS_INVALID_HANDLE);
    s.call(|c| c.provider.deregister(id))
}

pub(super) unsafe extern "system" fn init_fast_register(
    mr: *mut NDK_MR,
    pages: ULONG,
    remote: BOOLEAN,
    _done: NDK_FN_REQUEST_COMPLETION,
    _ctx: PVOID,
) -> NTSTATUS {
    let (s, id) = obj_or!(mr, STATUS_INVALID_HANDLE);
    s.call(|c| c.provider.init_fast_register(id, pages, remote != FALSE))
}

pub(super) unsafe extern "system" fn mr_token(mr: *mut NDK_MR) -> UINT32 {
    let (s, id) = obj_or!(mr, 0);
    s.with(|c| c.provider.mr_token(id)).unwrap_or(0)
}

pub(super) unsafe extern "system" fn mw_token(mw: *mut NDK_MW) -> UINT32 {
    let (s, id) = obj_or!(mw, 0);
    s.with(|c| c.provider.mw_token(id)).unwrap_or(0)
}

pub(super) static MW: NDK_MW_DISPATCH = NDK_MW_DISPATCH {
    NdkCloseMw: Some(close_object),
    NdkQueryExtension: Some(query_extension),
    NdkGetRemoteTokenFromMw: Some(mw_token),
};

pub(super) static MR: NDK_MR_DISPATCH = NDK_MR_DISPATCH {
    NdkCloseMr: Some(close_object),
    NdkQueryExtension: Some(query_extension),
    NdkRegisterMr: Some(register_mr),
    NdkDeregisterMr: Some(deregister_mr),
    NdkInitializeFastRegisterMr: Some(init_fast_register),
    NdkGetRemoteTokenFromMr: Some(mr_token),
    NdkGetLocalTokenFromMr: Some(mr_token),
};
