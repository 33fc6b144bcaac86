//! The thunks and the objects behind them. See the module documentation of
//! [`crate::abi`].

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use core::cell::UnsafeCell;
use core::ffi::c_void;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use core::ptr;

use ndkpi::*;
use roce::rc::{SendOp, Translation};
use roce::time::Instant;

use super::chain::{Pieces, Walk, lam_pages, registration};
use super::platform::{Platform, RawLock};
use crate::object::ObjectId;
use crate::provider::{
    MAX_INLINE_DATA, NdkCompletion, NdkSge, Provider, ProviderConfig, SendData, flags_valid,
    gather_inline,
};
use crate::upcall::{Callback, Upcall, UpcallKind};

/// The engine's memory: the platform's logical addresses.
pub struct PlatformMemory(Arc<dyn Platform>);

impl core::fmt::Debug for PlatformMemory {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("PlatformMemory")
    }
}

impl roce::rc::Memory for PlatformMemory {
    fn read(&self, addr: u64, dst: &mut [u8]) -> bool {
        self.0.read(addr, dst)
    }
    fn read_crc(&self, addr: u64, dst: &mut [u8], crc: u32) -> Option<u32> {
        self.0.read_crc(addr, dst, crc)
    }
    fn write(&self, addr: u64, src: &[u8]) -> bool {
        self.0.write(addr, src)
    }
    fn write_crc(&self, addr: u64, src: &[u8], crc: u32) -> Option<u32> {
        self.0.write_crc(addr, src, crc)
    }
}

/// Which NDK struct a wrapper holds (to free it with the right type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Pd,
    Cq,
    Qp,
    Mr,
    Mw,
    Srq,
    Connector,
    Listener,
    SharedEndpoint,
}

/// A consumer-visible object: the NDK struct first, so the consumer's
/// pointer is a pointer to this.
#[repr(C)]
struct Obj<T> {
    ndk: T,
    shared: *const Shared,
    id: ObjectId,
}

/// The consumer-visible adapter.
#[repr(C)]
struct AdapterObj {
    ndk: NDK_ADAPTER,
    shared: Arc<Shared>,
}

struct Core {
    provider: Provider<PlatformMemory>,
    wrappers: BTreeMap<ObjectId, (*mut c_void, Kind)>,
    /// Some call is making the queued upcalls (see [`Core::claim_upcall`]):
    /// at most one caller at a time, on any thread, drains the queue, so a
    /// consumer call made from inside an upcall returns without making
    /// upcalls itself, and the depth of the stack does not grow with the
    /// number of queued upcalls whose callbacks call back in.
    draining: bool,
}

/// The adapter's state, shared by every object of the adapter.
pub(crate) struct Shared {
    platform: Arc<dyn Platform>,
    lock: Box<dyn RawLock>,
    core: UnsafeCell<Core>,
}

// SAFETY: `core` is only reached with `lock` held (`Shared::with`); the raw
// pointers in it are the adapter's own allocations.
unsafe impl Sync for Shared {}
// SAFETY: as above.
unsafe impl Send for Shared {}

impl Shared {
    /// Runs `f` on the core with the lock held, the clock set.
    fn with<R>(&self, f: impl FnOnce(&mut Core) -> R) -> R {
        self.with_at(self.platform.now(), f)
    }

    /// Runs `f` under the lock without reading the clock (for calls that
    /// only look, such as the next deadline).
    fn with_locked<R>(&self, f: impl FnOnce(&mut Core) -> R) -> R {
        self.lock.lock();
        // SAFETY: the lock is held; nothing else reaches the core.
        let core = unsafe { &mut *self.core.get() };
        let r = f(core);
        self.lock.unlock();
        r
    }

    /// [`Self::with`] at a clock reading the caller already took.
    fn with_at<R>(&self, now: Instant, f: impl FnOnce(&mut Core) -> R) -> R {
        self.lock.lock();
        // SAFETY: the lock is held; nothing else reaches the core.
        let core = unsafe { &mut *self.core.get() };
        core.provider.set_now(now);
        let r = f(core);
        self.lock.unlock();
        r
    }

    /// Makes every queued upcall, each with no lock held, starting with
    /// `first` (claimed under the caller's lock with
    /// [`Core::claim_upcall`]); frees objects whose close completed. The
    /// loop ends, and gives up the claim, under the lock that finds the
    /// queue empty, so an upcall queued meanwhile by a call on another
    /// thread (or by a callback's call on this one) is made by this loop.
    fn run_upcalls_from(&self, mut next: Option<(Upcall, *mut c_void)>) {
        while let Some((u, target)) = next {
            // SAFETY: the callback values are what the consumer passed for
            // this kind of callback (see `callback`).
            unsafe { invoke(&u, target) };
            let (freed, after) = self.with(|c| {
                c.provider.upcall_done(&u);
                let freed = if u.kind == UpcallKind::Close {
                    c.wrappers.remove(&u.owner)
                } else {
                    None
                };
                (freed, c.continue_upcalls(self))
            });
            if let Some((p, kind)) = freed {
                // SAFETY: the object's close completed and its completion
                // returned: the consumer no longer uses the pointer.
                unsafe { free(p, kind) };
            }
            next = after;
        }
    }

    /// Makes every queued upcall (see [`Self::run_upcalls_from`]), then
    /// wakes the I/O side for whatever the call queued.
    fn run_upcalls(&self) {
        let first = self.with(|c| c.claim_upcall(self));
        self.run_upcalls_from(first);
        self.platform.wake();
    }

    /// Runs a consumer call: `f` under the lock, then the upcalls. The
    /// first upcall is looked for under the same lock, so a data-path call
    /// that queues none takes the lock and reads the clock once.
    fn call<R>(&self, f: impl FnOnce(&mut Core) -> R) -> R {
        self.call_at(self.platform.now(), f)
    }

    /// [`Self::call`] at a clock reading the caller already took.
    fn call_at<R>(&self, now: Instant, f: impl FnOnce(&mut Core) -> R) -> R {
        let (r, first) = self.with_at(now, |c| {
            let r = f(c);
            (r, c.claim_upcall(self))
        });
        self.run_upcalls_from(first);
        self.platform.wake();
        r
    }
}

impl Drop for Core {
    /// The engine's last open adapter closed: free the wrappers of objects
    /// a consumer left open (a consumer bug, the NDKPI object lifetime requirements page, that must
    /// not leak the shell's memory).
    fn drop(&mut self) {
        for (p, kind) in core::mem::take(&mut self.wrappers).into_values() {
            // SAFETY: no adapter of the engine is open, so no consumer call
            // or upcall can reach the wrapper any more.
            unsafe { free(p, kind) };
        }
    }
}

impl Core {
    /// The first upcall for a caller to make, claiming the queue, or None
    /// when the queue is empty or another caller (further up this stack,
    /// or on another thread) is making the upcalls: that caller's loop
    /// makes the ones queued now. Without this, a callback that calls the
    /// provider (a disconnect event's handler that disconnects and closes)
    /// would make the next upcall from inside that call, one stack frame
    /// chain deeper per queued upcall: thousands of connections torn down
    /// at once overflowed the stack (ndkperf disconnect -q 30000).
    fn claim_upcall(&mut self, shared: &Shared) -> Option<(Upcall, *mut c_void)> {
        if self.draining {
            return None;
        }
        let next = self.next_upcall(shared);
        self.draining = next.is_some();
        next
    }

    /// The claiming caller's next upcall; releases the claim when there is
    /// none.
    fn continue_upcalls(&mut self, shared: &Shared) -> Option<(Upcall, *mut c_void)> {
        let next = self.next_upcall(shared);
        self.draining = next.is_some();
        next
    }

    /// The next upcall and the consumer pointer it is made on.
    fn next_upcall(&mut self, shared: &Shared) -> Option<(Upcall, *mut c_void)> {
        let u = self.provider.poll_upcall()?;
        let target = match u.kind {
            UpcallKind::ConnectEvent { connector } => {
                self.wrapper(connector, Kind::Connector, shared)
            }
            UpcallKind::Create { object, .. } => {
                self.wrappers.get(&object).map_or(ptr::null_mut(), |w| w.0)
            }
            _ => ptr::null_mut(),
        };
        Some((u, target))
    }

    /// The consumer-visible pointer of `id`, allocating it for objects the
    /// provider created itself (incoming connectors).
    fn wrapper(&mut self, id: ObjectId, kind: Kind, shared: &Shared) -> *mut c_void {
        if let Some(w) = self.wrappers.get(&id) {
            return w.0;
        }
        let p = match kind {
            Kind::Connector => new_obj(NdkObjectTypeConnector, &CONNECTOR, shared, id),
            _ => return ptr::null_mut(),
        };
        self.wrappers.insert(id, (p, kind));
        p
    }
}

fn header(object_type: NDK_OBJECT_TYPE) -> NDK_OBJECT_HEADER {
    NDK_OBJECT_HEADER::new(NDK_VERSION_1_2, object_type)
}

fn new_obj<D>(
    object_type: NDK_OBJECT_TYPE,
    dispatch: &'static D,
    shared: &Shared,
    id: ObjectId,
) -> *mut c_void {
    #[repr(C)]
    struct Ndk<D: 'static> {
        header: NDK_OBJECT_HEADER,
        dispatch: *const D,
    }
    let b = Box::new(Obj {
        ndk: Ndk {
            header: header(object_type),
            dispatch,
        },
        shared,
        id,
    });
    Box::into_raw(b).cast()
}

/// # Safety
/// `p` came from `new_obj` with the dispatch type of `kind`, and is not used
/// after.
unsafe fn free(p: *mut c_void, kind: Kind) {
    // Every wrapper has the same layout (header, dispatch pointer, shared,
    // id): free it as an NDK_QP-shaped object of that layout.
    let _ = kind;
    // SAFETY: per the contract, `p` is a live `Obj<NDK_QP>`-layout box.
    drop(unsafe { Box::from_raw(p.cast::<Obj<NDK_QP>>()) });
}

/// The core id and adapter of a consumer object pointer.
///
/// # Safety
/// `p` is null or a pointer this adapter gave the consumer and whose close
/// has not completed.
unsafe fn resolve<'a, T>(p: *mut T) -> Option<(&'a Shared, ObjectId)> {
    // Every wrapper has the layout of `Obj<NDK_QP>` (header, dispatch,
    // shared, id), whatever pointer type the consumer passed it as (an
    // object or its header).
    // SAFETY: NDKPI: the consumer passes an object this adapter created and has not closed (the NDKPI object lifetime requirements page); every wrapper starts with this layout.
    let o = unsafe { p.cast::<Obj<NDK_QP>>().as_ref() }?;
    // SAFETY: a live wrapper's `shared` points to its adapter's state, which stays until the adapter closes, after all its objects.
    let shared = unsafe { o.shared.as_ref() }?;
    Some((shared, o.id))
}

macro_rules! obj_or {
    ($p:expr) => {
        // SAFETY: the consumer passes objects of this adapter (the NDKPI object lifetime requirements page).
        match unsafe { resolve($p) } {
            Some(x) => x,
            None => return,
        }
    };
    ($p:expr, $ret:expr) => {
        // SAFETY: the consumer passes objects of this adapter (the NDKPI object lifetime requirements page).
        match unsafe { resolve($p) } {
            Some(x) => x,
            None => return $ret,
        }
    };
}

mod adapter;
mod args;
mod connector;
mod cq;
mod listener;
mod mr;
mod pd;
mod qp;
mod srq;

pub use self::adapter::{adapter_info, close_adapter, io, open_adapter, open_adapter_shared};
use self::{adapter::*, args::*, connector::*, cq::*, listener::*, mr::*, pd::*, qp::*, srq::*};

fn callback<F: Copy>(f: Option<F>, context: PVOID) -> Callback {
    Callback {
        func: f.map_or(0, |f| {
            // SAFETY: `F` is one of the NDK_FN_* function pointer types,
            // pointer-sized; `invoke` turns the value back into that type.
            let p = unsafe { core::mem::transmute_copy::<F, *const ()>(&f) };
            // Exposed, so that `invoke` rebuilds a pointer that may be called
            // (a transmuted integer carries no provenance: calling it is UB,
            // as Miri reports).
            p.expose_provenance()
        }),
        context: context as usize,
    }
}

/// # Safety
/// `u.callback.func` holds a function pointer of the type `u.kind` calls.
unsafe fn invoke(u: &Upcall, target: *mut c_void) {
    let ctx = u.callback.context as PVOID;
    if u.callback.func == 0 {
        return;
    }
    // The pointer `callback` exposed, with its provenance.
    let f = core::ptr::with_exposed_provenance::<()>(u.callback.func);
    // SAFETY: (every arm) `f` was stored by `callback` from a function
    // pointer of exactly this type.
    unsafe {
        match u.kind {
            UpcallKind::Request { status }
            | UpcallKind::CqNotify { status }
            | UpcallKind::SrqNotify { status } => {
                let f: unsafe extern "system" fn(PVOID, NTSTATUS) = core::mem::transmute(f);
                f(ctx, status);
            }
            UpcallKind::Create { status, .. } => {
                let f: unsafe extern "system" fn(PVOID, NTSTATUS, *mut NDK_OBJECT_HEADER) =
                    core::mem::transmute(f);
                f(ctx, status, target.cast());
            }
            UpcallKind::Close => {
                let f: unsafe extern "system" fn(PVOID) = core::mem::transmute(f);
                f(ctx);
            }
            UpcallKind::ConnectEvent { .. } => {
                let f: unsafe extern "system" fn(PVOID, *mut NDK_CONNECTOR) =
                    core::mem::transmute(f);
                f(ctx, target.cast());
            }
            UpcallKind::DisconnectEvent { ex: false, .. } => {
                let f: unsafe extern "system" fn(PVOID) = core::mem::transmute(f);
                f(ctx);
            }
            UpcallKind::DisconnectEvent { ex: true, reason } => {
                let f: unsafe extern "system" fn(PVOID, ULONG) = core::mem::transmute(f);
                f(ctx, reason);
            }
        }
    }
}

// ---- close (every object) ----

unsafe extern "system" fn close_object(
    obj: *mut NDK_OBJECT_HEADER,
    done: NDK_FN_CLOSE_COMPLETION,
    ctx: PVOID,
) -> NTSTATUS {
    let (s, id) = obj_or!(obj, STATUS_INVALID_HANDLE);
    let st = s.with(|c| c.provider.close(id, callback(done, ctx)));
    if st == STATUS_SUCCESS {
        let w = s.with(|c| c.wrappers.remove(&id));
        if let Some((p, kind)) = w {
            // SAFETY: closed inline: the consumer is done with it.
            unsafe { free(p, kind) };
        }
    }
    s.run_upcalls();
    st
}
