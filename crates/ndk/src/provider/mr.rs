//! Memory regions: NdkCreateMr, NdkRegisterMr / NdkDeregisterMr for
//! regular MRs, NdkInitializeFastRegisterMr and the NdkFastRegister work
//! request for fast-register MRs, and their tokens (the NDK_FN_REGISTER_MR, NDK_FN_FAST_REGISTER and NDK_FN_BUILD_LAM pages).

use alloc::vec;

use ndkpi::*;
use roce::rc::{Access, Memory, MrHandle, Payload, SendOp, Translation};

use super::post::PostKind;
use super::{Object, Provider};
use crate::object::ObjectId;
use crate::upcall::Callback;

/// Bytes per page of fast-register and LAM page arrays (PAGE_SIZE).
pub const PAGE_SIZE: u64 = 4096;

/// What an MR object is for (NdkCreateMr's FastRegister argument) and how
/// far it got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MrKind {
    /// FastRegister=FALSE: NdkRegisterMr only. The span and rights of the
    /// current registration, kept for NdkBind's inline checks (the NDK_FN_REGISTER_MR, NDK_FN_FAST_REGISTER and NDK_FN_BUILD_LAM pages).
    Regular {
        registered: Option<(u64, u64, Access)>,
    },
    /// FastRegister=TRUE: NdkInitializeFastRegisterMr, then NdkFastRegister
    /// work requests. `(pages, remote access)` once initialized.
    FastRegister { initialized: Option<(u32, bool)> },
}

impl<M: Memory> Provider<M> {
    /// NdkCreateMr: `fast_register` chooses what the MR is for
    /// (the NDK_FN_REGISTER_MR, NDK_FN_FAST_REGISTER and NDK_FN_BUILD_LAM pages).
    pub fn create_mr_for(
        &mut self,
        pd: ObjectId,
        fast_register: bool,
    ) -> Result<ObjectId, NTSTATUS> {
        let pdh = self.open_pd(pd)?;
        let kind = if fast_register {
            MrKind::FastRegister { initialized: None }
        } else {
            MrKind::Regular { registered: None }
        };
        Ok(self.insert(
            Object::Mr {
                mr: None,
                pd: pdh,
                kind,
            },
            vec![pd],
        ))
    }

    /// NdkCreateMr(FastRegister=FALSE).
    pub fn create_mr(&mut self, pd: ObjectId) -> Result<ObjectId, NTSTATUS> {
        self.create_mr_for(pd, false)
    }

    /// NdkRegisterMr: `length` bytes at virtual address `va` whose bytes
    /// live at logical address `logical` (the shell resolved the MDL).
    /// Completes inline.
    ///
    /// Project decisions: an MR created for fast-register is
    /// STATUS_INVALID_DEVICE_REQUEST (NdkCreateMr's FastRegister says what
    /// the MR is for); a second registration without a deregistration is
    /// STATUS_INVALID_DEVICE_STATE; VA 0 (zero-based), length 0 or above
    /// MaxRegistrationSize, or unknown flags are STATUS_INVALID_PARAMETER.
    pub fn register(
        &mut self,
        mr: ObjectId,
        va: u64,
        length: u64,
        logical: u64,
        flags: ULONG,
    ) -> NTSTATUS {
        self.register_translated(
            mr,
            va,
            length,
            Translation::Contiguous { base: logical },
            flags,
        )
    }

    /// NdkRegisterMr over any translation: an MDL chain's pieces
    /// ([`Translation::Ranges`]) or one contiguous range. As
    /// [`Provider::register`] otherwise.
    pub fn register_translated(
        &mut self,
        mr: ObjectId,
        va: u64,
        length: u64,
        translation: Translation<'_>,
        flags: ULONG,
    ) -> NTSTATUS {
        let known = NDK_MR_FLAG_ALLOW_LOCAL_WRITE
            | NDK_MR_FLAG_ALLOW_REMOTE_READ
            | NDK_MR_FLAG_ALLOW_REMOTE_WRITE
            | NDK_MR_FLAG_RDMA_READ_SINK;
        if va == 0
            || length == 0
            || length > self.config.limits.max_registration
            || flags & !known != 0
        {
            return STATUS_INVALID_PARAMETER;
        }
        let pdh = match self.open_object(mr) {
            Ok(Object::Mr {
                kind: MrKind::FastRegister { .. },
                ..
            }) => return STATUS_INVALID_DEVICE_REQUEST,
            Ok(Object::Mr { mr: None, pd, .. }) => *pd,
            Ok(Object::Mr { .. }) => return STATUS_INVALID_DEVICE_STATE,
            Ok(_) => return STATUS_INVALID_HANDLE,
            Err(s) => return s,
        };
        let mut access = Access::NONE;
        // RDMA_READ_SINK needs no right of its own
        // (NDK_ADAPTER_FLAG_RDMA_READ_SINK_NOT_REQUIRED) beyond the local
        // write a sink is written with.
        if flags & (NDK_MR_FLAG_ALLOW_LOCAL_WRITE | NDK_MR_FLAG_RDMA_READ_SINK) != 0 {
            access = access.union(Access::LOCAL_WRITE);
        }
        if flags & NDK_MR_FLAG_ALLOW_REMOTE_READ != 0 {
            access = access.union(Access::REMOTE_READ);
        }
        if flags & NDK_MR_FLAG_ALLOW_REMOTE_WRITE == NDK_MR_FLAG_ALLOW_REMOTE_WRITE {
            access = access.union(Access::REMOTE_WRITE);
        }
        let handle = match self
            .device
            .rc()
            .register_mr(pdh, va, length, access, translation)
        {
            Ok(h) => h,
            Err(roce::rc::Error::InvalidArgument) => return STATUS_INVALID_PARAMETER,
            Err(_) => return STATUS_INSUFFICIENT_RESOURCES,
        };
        if let Some(Object::Mr { mr, kind, .. }) = self.objects.get_mut(mr).map(|e| &mut e.object) {
            *mr = Some(handle);
            *kind = MrKind::Regular {
                registered: Some((va, length, access)),
            };
        }
        STATUS_SUCCESS
    }

    /// NdkDeregisterMr. Completes inline. The MR must be registered
    /// (STATUS_INVALID_DEVICE_STATE otherwise, and while a memory window is
    /// bound to it: the engine keeps the registration for the window).
    pub fn deregister(&mut self, mr: ObjectId) -> NTSTATUS {
        let handle = match self.open_object(mr) {
            Ok(Object::Mr {
                kind: MrKind::FastRegister { .. },
                ..
            }) => return STATUS_INVALID_DEVICE_REQUEST,
            Ok(Object::Mr { mr: Some(h), .. }) => *h,
            Ok(Object::Mr { mr: None, .. }) => return STATUS_INVALID_DEVICE_STATE,
            Ok(_) => return STATUS_INVALID_HANDLE,
            Err(s) => return s,
        };
        if self.device.rc().dereg_mr(handle).is_err() {
            return STATUS_INVALID_DEVICE_STATE;
        }
        if let Some(Object::Mr { mr, kind, .. }) = self.objects.get_mut(mr).map(|e| &mut e.object) {
            *mr = None;
            *kind = MrKind::Regular { registered: None };
        }
        STATUS_SUCCESS
    }

    /// NdkInitializeFastRegisterMr: completes inline. Only on an MR created
    /// with FastRegister=TRUE (STATUS_INVALID_DEVICE_REQUEST otherwise,
    /// project decision); a page count of 0 is STATUS_INVALID_PARAMETER,
    /// above FRMRPageCount's limit STATUS_IMPLEMENTATION_LIMIT (the NDK_FN_REGISTER_MR, NDK_FN_FAST_REGISTER and NDK_FN_BUILD_LAM pages). May be
    /// called again: the MR is then set up anew (its current registration
    /// is gone; STATUS_INVALID_DEVICE_STATE while a window is bound to it).
    pub fn init_fast_register(&mut self, mr: ObjectId, pages: u32, remote: bool) -> NTSTATUS {
        let (old, pdh) = match self.open_object(mr) {
            Ok(Object::Mr {
                mr,
                pd,
                kind: MrKind::FastRegister { .. },
            }) => (*mr, *pd),
            Ok(Object::Mr { .. }) => return STATUS_INVALID_DEVICE_REQUEST,
            Ok(_) => return STATUS_INVALID_HANDLE,
            Err(s) => return s,
        };
        if pages == 0 {
            return STATUS_INVALID_PARAMETER;
        }
        if pages > self.config.limits.max_fr_pages {
            return STATUS_IMPLEMENTATION_LIMIT;
        }
        let rc = self.device.rc();
        if let Some(h) = old
            && rc.dereg_mr(h).is_err()
        {
            return STATUS_INVALID_DEVICE_STATE;
        }
        let r = rc.alloc_fast_reg_mr(pdh, pages, remote);
        let (handle, st) = match r {
            Ok(h) => (Some(h), STATUS_SUCCESS),
            Err(_) => (None, STATUS_INSUFFICIENT_RESOURCES),
        };
        if let Some(Object::Mr { mr, kind, .. }) = self.objects.get_mut(mr).map(|e| &mut e.object) {
            *mr = handle;
            *kind = MrKind::FastRegister {
                initialized: handle.map(|_| (pages, remote)),
            };
        }
        st
    }

    /// NdkCreateMr + NdkRegisterMr in one step (tests and tools).
    pub fn register_mr(
        &mut self,
        pd: ObjectId,
        va: u64,
        length: u64,
        logical: u64,
        flags: ULONG,
    ) -> Result<ObjectId, NTSTATUS> {
        let mr = self.create_mr(pd)?;
        let st = self.register(mr, va, length, logical, flags);
        if st != STATUS_SUCCESS {
            let _ = self.close(mr, Callback::NONE);
            return Err(st);
        }
        Ok(mr)
    }

    /// NdkGetLocalTokenFromMr / NdkGetRemoteTokenFromMr (one key serves
    /// both; for a fast-register MR, the token of the latest NdkFastRegister
    /// posted).
    pub fn mr_token(&self, mr: ObjectId) -> Option<u32> {
        match self.objects.get(mr)?.object {
            Object::Mr { mr: Some(h), .. } => self.device.rc_ref().mr_key(h),
            _ => None,
        }
    }

    /// NdkFastRegister: registers `length` bytes of the `pages`
    /// (PAGE_SIZE each, from NdkBuildLAM), starting `fbo` bytes into the
    /// first, at `va` (the NDK_FN_REGISTER_MR, NDK_FN_FAST_REGISTER and NDK_FN_BUILD_LAM pages). Inline failures:
    /// STATUS_CONNECTION_INVALID, STATUS_ACCESS_VIOLATION (remote rights on
    /// an MR initialized without RemoteAccess), and by project decision
    /// STATUS_INVALID_PARAMETER for an empty page list, more pages than
    /// initialized, an FBO of a page or more, a length of 0 or beyond the
    /// pages, or a VA that is 0 or not FBO into a page;
    /// STATUS_INVALID_DEVICE_REQUEST for a regular MR;
    /// STATUS_INVALID_DEVICE_STATE for an MR not initialized, or whose
    /// previous fast-register has not executed yet (the engine stages one
    /// page list per MR).
    #[allow(clippy::too_many_arguments)]
    pub fn fast_register(
        &mut self,
        qp: ObjectId,
        context: usize,
        mr: ObjectId,
        pages: &[u64],
        fbo: u32,
        length: u64,
        va: u64,
        flags: ULONG,
    ) -> NTSTATUS {
        let (mrh, access) = match self.check_fast_register(qp, mr, pages, fbo, length, va, flags) {
            Ok(x) => x,
            Err(st) => return self.reject_post(qp, st),
        };
        let op = SendOp::FastRegister {
            mr: mrh,
            pages,
            page_size: PAGE_SIZE,
            first_byte_offset: u64::from(fbo),
            length,
            iova: va,
            access,
        };
        self.post_wr(qp, context, op, Payload::Sges(&[]), flags)
    }

    #[allow(clippy::too_many_arguments)]
    fn check_fast_register(
        &self,
        qp: ObjectId,
        mr: ObjectId,
        pages: &[u64],
        fbo: u32,
        length: u64,
        va: u64,
        flags: ULONG,
    ) -> Result<(MrHandle, Access), NTSTATUS> {
        self.check_memory_op(qp, PostKind::FastRegister, flags)?;
        let (h, max, remote) = match self.open_object(mr)? {
            Object::Mr {
                mr: Some(h),
                kind:
                    MrKind::FastRegister {
                        initialized: Some((max, remote)),
                    },
                ..
            } => (*h, *max, *remote),
            Object::Mr {
                kind: MrKind::Regular { .. },
                ..
            } => return Err(STATUS_INVALID_DEVICE_REQUEST),
            Object::Mr { .. } => return Err(STATUS_INVALID_DEVICE_STATE),
            _ => return Err(STATUS_INVALID_HANDLE),
        };
        let fbo = u64::from(fbo);
        let span = (pages.len() as u64)
            .saturating_mul(PAGE_SIZE)
            .saturating_sub(fbo);
        if pages.is_empty()
            || pages.len() > max as usize
            || fbo >= PAGE_SIZE
            || length == 0
            || length > span
            || va == 0
            || va % PAGE_SIZE != fbo
            || va.checked_add(length).is_none()
        {
            return Err(STATUS_INVALID_PARAMETER);
        }
        let mut access = Access::NONE;
        if flags & (NDK_OP_FLAG_ALLOW_LOCAL_WRITE | NDK_OP_FLAG_RDMA_READ_SINK) != 0 {
            access = access.union(Access::LOCAL_WRITE);
        }
        if flags & NDK_OP_FLAG_ALLOW_REMOTE_READ != 0 {
            access = access.union(Access::REMOTE_READ);
        }
        if flags & NDK_OP_FLAG_ALLOW_REMOTE_WRITE == NDK_OP_FLAG_ALLOW_REMOTE_WRITE {
            access = access.union(Access::REMOTE_WRITE);
        }
        if access.is_remote() && !remote {
            return Err(STATUS_ACCESS_VIOLATION);
        }
        Ok((h, access))
    }
}
