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
    fn write(&self, addr: u64, src: &[u8]) -> bool {
        self.0.write(addr, src)
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

// ---- addresses ----

/// # Safety
/// `p` is null or points to `len` readable bytes.
unsafe fn read_sockaddr(p: *const SOCKADDR, len: ULONG) -> Option<SocketAddr> {
    // The family is read only when the length covers it: a shorter
    // buffer is refused, not read past.
    if p.is_null() || (len as usize) < core::mem::size_of::<ADDRESS_FAMILY>() {
        return None;
    }
    // SAFETY: `len` covers the family (checked above) and `p` points to `len` readable bytes (this function's contract).
    let family = unsafe { p.cast::<ADDRESS_FAMILY>().read_unaligned() };
    match family {
        AF_INET if len as usize >= core::mem::size_of::<SOCKADDR_IN>() => {
            // SAFETY: `len` covers a SOCKADDR_IN; unaligned, as the consumer's buffer may be.
            let a = unsafe { p.cast::<SOCKADDR_IN>().read_unaligned() };
            Some(SocketAddr::new(
                IpAddr::V4(Ipv4Addr::from(a.sin_addr.s_addr)),
                u16::from_be(a.sin_port),
            ))
        }
        AF_INET6 if len as usize >= core::mem::size_of::<SOCKADDR_IN6>() => {
            // SAFETY: `len` covers a SOCKADDR_IN6; unaligned, as the consumer's buffer may be.
            let a = unsafe { p.cast::<SOCKADDR_IN6>().read_unaligned() };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(a.sin6_addr.s6_addr),
                u16::from_be(a.sin6_port),
                u32::from_be(a.sin6_flowinfo),
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// Writes `addr` as a SOCKADDR_IN / SOCKADDR_IN6; STATUS_BUFFER_TOO_SMALL
/// with the needed size in `*len` if it does not fit.
///
/// # Safety
/// `len` is valid; `p` is null or points to `*len` writable bytes.
unsafe fn write_sockaddr(addr: SocketAddr, p: *mut SOCKADDR, len: *mut ULONG) -> NTSTATUS {
    // SAFETY: `len` is null or valid (this function's contract).
    let Some(len) = (unsafe { len.as_mut() }) else {
        return STATUS_INVALID_PARAMETER;
    };
    let need = match addr {
        SocketAddr::V4(_) => core::mem::size_of::<SOCKADDR_IN>(),
        SocketAddr::V6(_) => core::mem::size_of::<SOCKADDR_IN6>(),
    } as ULONG;
    if p.is_null() || *len < need {
        *len = need;
        return STATUS_BUFFER_TOO_SMALL;
    }
    *len = need;
    // SAFETY: `p` points to `*len` writable bytes (the contract), and `*len` was at least `need` (checked above).
    unsafe {
        match addr {
            SocketAddr::V4(a) => p.cast::<SOCKADDR_IN>().write_unaligned(SOCKADDR_IN {
                sin_family: AF_INET,
                sin_port: a.port().to_be(),
                sin_addr: IN_ADDR {
                    s_addr: a.ip().octets(),
                },
                sin_zero: [0; 8],
            }),
            SocketAddr::V6(a) => p.cast::<SOCKADDR_IN6>().write_unaligned(SOCKADDR_IN6 {
                sin6_family: AF_INET6,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo().to_be(),
                sin6_addr: IN6_ADDR {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            }),
        }
    }
    STATUS_SUCCESS
}

/// # Safety
/// `sgl` is null (with `n` 0) or points to `n` readable NDK_SGEs.
unsafe fn sges(
    sgl: *const NDK_SGE,
    n: ULONG,
    buf: &mut [NdkSge; 32],
) -> Result<&[NdkSge], NTSTATUS> {
    if n == 0 {
        return Ok(&[]);
    }
    if sgl.is_null() {
        return Err(STATUS_INVALID_PARAMETER);
    }
    let n = n as usize;
    if n > buf.len() {
        return Err(STATUS_DATA_OVERRUN);
    }
    // SAFETY: `sgl` is non-null and points to `n` readable NDK_SGEs (this function's contract).
    let src = unsafe { core::slice::from_raw_parts(sgl, n) };
    for (o, s) in buf.iter_mut().zip(src) {
        // SAFETY: both union members are 8 plain bytes.
        let address = unsafe { s.Address.LogicalAddress } as u64;
        *o = NdkSge {
            address,
            length: s.Length,
            token: s.MemoryRegionToken,
        };
    }
    Ok(buf.get(..n).unwrap_or(&[]))
}

/// # Safety
/// `p` is null (with `len` 0) or points to `len` readable bytes.
unsafe fn bytes<'a>(p: *const c_void, len: ULONG) -> Option<&'a [u8]> {
    if len == 0 {
        return Some(&[]);
    }
    if p.is_null() {
        return None;
    }
    // SAFETY: `p` is non-null and points to `len` readable bytes (this function's contract).
    Some(unsafe { core::slice::from_raw_parts(p.cast::<u8>(), len as usize) })
}

// ---- adapter ----

/// OPEN_NDK_ADAPTER_HANDLER's work: negotiates the version and opens an
/// adapter over `platform`. The returned pointer stays valid until
/// [`close_adapter`].
pub fn open_adapter(
    platform: Arc<dyn Platform>,
    config: ProviderConfig,
    requested: NDK_VERSION,
) -> Result<*mut NDK_ADAPTER, NDIS_STATUS> {
    negotiate_version(requested, &[NDK_VERSION_1_2])?;
    let lock = platform.new_lock();
    let provider = Provider::new(config, PlatformMemory(platform.clone()));
    let shared = Arc::new(Shared {
        platform,
        lock,
        core: UnsafeCell::new(Core {
            provider,
            wrappers: BTreeMap::new(),
            draining: false,
        }),
    });
    let adapter = Box::new(AdapterObj {
        ndk: NDK_ADAPTER {
            Header: header(NdkObjectTypeAdapter),
            Dispatch: &ADAPTER,
        },
        shared,
    });
    Ok(Box::into_raw(adapter).cast())
}

/// A further OPEN_NDK_ADAPTER_HANDLER on the miniport adapter whose engine
/// `existing` runs: a new NDK_ADAPTER object over the same provider core,
/// so every consumer of one miniport adapter (SMB client and server, say)
/// shares its addresses, ports and listeners, and a connection between two
/// of them is a loopback connection of one engine. The shell may pass any
/// open adapter of the engine to [`io`].
///
/// # Safety
/// `existing` came from [`open_adapter`] or this function and is not being
/// closed.
pub unsafe fn open_adapter_shared(
    existing: *mut NDK_ADAPTER,
    requested: NDK_VERSION,
) -> Result<*mut NDK_ADAPTER, NDIS_STATUS> {
    negotiate_version(requested, &[NDK_VERSION_1_2])?;
    // SAFETY: per the contract, a live adapter of this module.
    let e = unsafe { existing.cast::<AdapterObj>().as_ref() }.ok_or(NDIS_STATUS_FAILURE)?;
    let adapter = Box::new(AdapterObj {
        ndk: NDK_ADAPTER {
            Header: header(NdkObjectTypeAdapter),
            Dispatch: &ADAPTER,
        },
        shared: e.shared.clone(),
    });
    Ok(Box::into_raw(adapter).cast())
}

/// CLOSE_NDK_ADAPTER_HANDLER's work: frees the adapter object; with the
/// engine's last open adapter, the engine and any object a consumer left
/// open (see `Drop for Core`).
///
/// # Safety
/// `adapter` came from [`open_adapter`] or [`open_adapter_shared`], no call
/// on it or its objects is running or will run, and no upcall is in
/// progress.
pub unsafe fn close_adapter(adapter: *mut NDK_ADAPTER) {
    if adapter.is_null() {
        return;
    }
    // SAFETY: per the contract.
    drop(unsafe { Box::from_raw(adapter.cast::<AdapterObj>()) });
}

/// Runs the adapter's I/O: shells call these from their I/O path.
pub mod io {
    use super::*;
    use roce::device::Transmit;
    use roce::time::Instant;

    fn shared<'a>(adapter: *mut NDK_ADAPTER) -> Option<&'a Shared> {
        // SAFETY: the shell passes the adapter it opened.
        let a = unsafe { adapter.cast::<AdapterObj>().as_ref() }?;
        Some(&a.shared)
    }

    /// A UDP payload arrived (UDP mode).
    pub fn handle_udp(adapter: *mut NDK_ADAPTER, src: SocketAddr, dst: SocketAddr, payload: &[u8]) {
        if let Some(s) = shared(adapter) {
            let now = s.platform.now();
            s.call_at(now, |c| c.provider.handle_udp(now, src, dst, payload));
        }
    }

    /// [`handle_udp`] at a clock reading the shell already took (one per
    /// batch of datagrams, say). A reading older than one the adapter
    /// already saw counts as that one: time never runs backwards inside.
    pub fn handle_udp_at(
        adapter: *mut NDK_ADAPTER,
        now: Instant,
        src: SocketAddr,
        dst: SocketAddr,
        payload: &[u8],
    ) {
        if let Some(s) = shared(adapter) {
            s.call_at(now, |c| {
                let now = c.provider.now();
                c.provider.handle_udp(now, src, dst, payload)
            });
        }
    }

    /// The link refused a datagram the adapter sent, at a clock reading
    /// the shell took (see [`handle_udp_at`]; the provider's
    /// `handle_refused` says what follows).
    pub fn handle_refused_at(
        adapter: *mut NDK_ADAPTER,
        now: Instant,
        dst: IpAddr,
        datagram: &[u8],
    ) {
        if let Some(s) = shared(adapter) {
            s.call_at(now, |c| {
                let now = c.provider.now();
                c.provider.handle_refused(now, dst, datagram)
            });
        }
    }

    /// An IP datagram arrived (raw mode).
    pub fn handle_ip(adapter: *mut NDK_ADAPTER, datagram: &[u8]) {
        if let Some(s) = shared(adapter) {
            let now = s.platform.now();
            s.call_at(now, |c| c.provider.handle_ip(now, datagram));
        }
    }

    /// The next datagram to send, written into `buf`.
    pub fn poll_transmit(adapter: *mut NDK_ADAPTER, buf: &mut [u8]) -> Option<Transmit> {
        let s = shared(adapter)?;
        let now = s.platform.now();
        s.call_at(now, |c| c.provider.poll_transmit(now, buf))
    }

    /// [`poll_transmit`] at a clock reading the shell already took (see
    /// [`handle_udp_at`]).
    pub fn poll_transmit_at(
        adapter: *mut NDK_ADAPTER,
        now: Instant,
        buf: &mut [u8],
    ) -> Option<Transmit> {
        shared(adapter)?.call_at(now, |c| {
            let now = c.provider.now();
            c.provider.poll_transmit(now, buf)
        })
    }

    /// The next deadline (reads no clock).
    pub fn poll_timeout(adapter: *mut NDK_ADAPTER) -> Option<Instant> {
        shared(adapter)?.with_locked(|c| c.provider.poll_timeout())
    }

    /// Runs due timers.
    pub fn handle_timeout(adapter: *mut NDK_ADAPTER) {
        if let Some(s) = shared(adapter) {
            let now = s.platform.now();
            s.call_at(now, |c| c.provider.handle_timeout(now));
        }
    }

    /// [`handle_timeout`] at a clock reading the shell already took (see
    /// [`handle_udp_at`]).
    pub fn handle_timeout_at(adapter: *mut NDK_ADAPTER, now: Instant) {
        if let Some(s) = shared(adapter) {
            s.call_at(now, |c| {
                let now = c.provider.now();
                c.provider.handle_timeout(now)
            });
        }
    }

    /// The adapter's established connections and bound endpoints (for
    /// OID_NDK_CONNECTIONS and OID_NDK_LOCAL_ENDPOINTS).
    pub fn snapshot(adapter: *mut NDK_ADAPTER) -> Option<crate::oids::Snapshot> {
        shared(adapter).map(|s| s.with(|c| crate::oids::Snapshot::of(&c.provider)))
    }

    /// Live objects of the adapter (for leak checks).
    pub fn object_count(adapter: *mut NDK_ADAPTER) -> usize {
        shared(adapter).map_or(0, |s| s.with(|c| c.provider.object_count()))
    }
}

unsafe extern "system" fn query_extension(
    _obj: *mut NDK_OBJECT_HEADER,
    _id: *mut GUID,
    _version: NDK_VERSION,
    _out: *mut NDK_EXTENSION_INTERFACE,
) -> NTSTATUS {
    // ndkrs defines no extension interfaces.
    STATUS_NOT_SUPPORTED
}

unsafe fn adapter_shared<'a>(a: *mut NDK_ADAPTER) -> Option<&'a Shared> {
    // SAFETY: NDKPI: the consumer passes the NDK_ADAPTER this provider returned from open and has not closed; it is an `AdapterObj`.
    let a = unsafe { a.cast::<AdapterObj>().as_ref() }?;
    Some(&a.shared)
}

unsafe extern "system" fn query_adapter_info(
    a: *mut NDK_ADAPTER,
    info: *mut NDK_ADAPTER_INFO,
    size: *mut ULONG,
) -> NTSTATUS {
    // SAFETY: NDKPI: `a` is an adapter this provider opened.
    let Some(s) = (unsafe { adapter_shared(a) }) else {
        return STATUS_INVALID_HANDLE;
    };
    // SAFETY: NDKPI: `size` is null or points to a ULONG (NdkQueryAdapterInfo).
    let Some(size) = (unsafe { size.as_mut() }) else {
        return STATUS_INVALID_PARAMETER;
    };
    let full = core::mem::size_of::<NDK_ADAPTER_INFO>() as ULONG;
    // Consumers built before NDIS 6.50 pass the shorter struct.
    let short = NDK_ADAPTER_INFO::SIZE_THROUGH_ADAPTER_FLAGS as ULONG;
    if info.is_null() || *size < short {
        *size = full;
        return STATUS_BUFFER_TOO_SMALL;
    }
    let value = s.with(|c| adapter_info(c.provider.config()));
    let n = (*size).min(full);
    // SAFETY: the consumer's buffer holds `*size` bytes; copy what fits.
    unsafe {
        ptr::copy_nonoverlapping(
            (&value as *const NDK_ADAPTER_INFO).cast::<u8>(),
            info.cast::<u8>(),
            n as usize,
        );
    }
    *size = n;
    STATUS_SUCCESS
}

/// NDK_ADAPTER_INFO of an adapter (ndkinfo.h NDK_ADAPTER_INFO).
pub fn adapter_info(config: &ProviderConfig) -> NDK_ADAPTER_INFO {
    let l = config.limits;
    NDK_ADAPTER_INFO {
        Version: config.version,
        VendorId: 0,
        DeviceId: 0,
        MaxRegistrationSize: l.max_registration as usize,
        MaxWindowSize: l.max_registration as usize,
        FRMRPageCount: l.max_fr_pages,
        MaxInitiatorRequestSge: l.max_sge,
        MaxReceiveRequestSge: l.max_sge,
        MaxReadRequestSge: l.max_read_sge,
        MaxTransferLength: l.max_transfer,
        MaxInlineDataSize: l.inline_cap(),
        MaxInboundReadLimit: l.max_read_limit,
        MaxOutboundReadLimit: l.max_read_limit,
        MaxReceiveQueueDepth: l.max_qp_depth,
        MaxInitiatorQueueDepth: l.max_qp_depth,
        MaxSrqDepth: l.max_srq_depth,
        MaxCqDepth: l.max_cq_depth,
        LargeRequestThreshold: 16 * 1024,
        MaxCallerData: roce::cm::manager::MAX_REQ_PRIVATE_DATA as ULONG,
        // Accept carries 196 bytes, reject 148: advertise what both hold.
        MaxCalleeData: roce::cm::manager::MAX_REJ_PRIVATE_DATA as ULONG,
        // Not RDMA_READ_LOCAL_INVALIDATE_SUPPORTED: NdkRead ignores that
        // flag (ndkpi.h NDK_OP_FLAG_*); not CQ_INTERRUPT_MODERATION_SUPPORTED (the NDKPI completion handling requirements page).
        AdapterFlags: NDK_ADAPTER_FLAG_RDMA_READ_SINK_NOT_REQUIRED
            | NDK_ADAPTER_FLAG_CQ_RESIZE_SUPPORTED
            | NDK_ADAPTER_FLAG_LOOPBACK_CONNECTIONS_SUPPORTED,
        RdmaTechnology: NdkRoCEv2,
    }
}

/// Runs a create: `make` under the lock, then the object pointer goes
/// out (an inline completion: the create callback is not called,
/// the NDK_FN_REQUEST_COMPLETION page). A null out-pointer is STATUS_INVALID_PARAMETER
/// before anything is created, so nothing leaks.
///
/// # Safety
/// `out` is null or valid for a write.
unsafe fn created<T>(
    s: &Shared,
    kind: Kind,
    object_type: NDK_OBJECT_TYPE,
    dispatch: &'static impl Sized,
    out: *mut *mut T,
    make: impl FnOnce(&mut Core) -> Result<ObjectId, NTSTATUS>,
) -> NTSTATUS {
    // SAFETY: `out` is null or points to the consumer's out-pointer (this function's contract).
    let Some(o) = (unsafe { out.as_mut() }) else {
        return STATUS_INVALID_PARAMETER;
    };
    let r = s.call(|c| {
        let id = make(c)?;
        let p = new_obj(object_type, dispatch, s, id);
        c.wrappers.insert(id, (p, kind));
        Ok(p)
    });
    match r {
        Ok(p) => {
            *o = p.cast();
            STATUS_SUCCESS
        }
        Err(st) => st,
    }
}

/// Whether two objects belong to the same adapter (an object of another
/// adapter is STATUS_INVALID_PARAMETER, project decision).
fn same(a: &Shared, b: &Shared) -> bool {
    ptr::eq(a, b)
}

unsafe extern "system" fn create_cq(
    a: *mut NDK_ADAPTER,
    depth: ULONG,
    notify: NDK_FN_CQ_NOTIFICATION_CALLBACK,
    notify_ctx: PVOID,
    _affinity: *mut GROUP_AFFINITY,
    _done: NDK_FN_CREATE_COMPLETION,
    _ctx: PVOID,
    out: *mut *mut NDK_CQ,
) -> NTSTATUS {
    // SAFETY: NDKPI: `a` is an adapter this provider opened.
    let Some(s) = (unsafe { adapter_shared(a) }) else {
        return STATUS_INVALID_HANDLE;
    };
    // SAFETY: `out` is the consumer's out-pointer, null or writable (NdkCreateCq).
    unsafe {
        created(s, Kind::Cq, NdkObjectTypeCq, &CQ, out, |c| {
            c.provider.create_cq(depth, callback(notify, notify_ctx))
        })
    }
}

unsafe extern "system" fn create_pd(
    a: *mut NDK_ADAPTER,
    _done: NDK_FN_CREATE_COMPLETION,
    _ctx: PVOID,
    out: *mut *mut NDK_PD,
) -> NTSTATUS {
    // SAFETY: NDKPI: `a` is an adapter this provider opened.
    let Some(s) = (unsafe { adapter_shared(a) }) else {
        return STATUS_INVALID_HANDLE;
    };
    // SAFETY: `out` is the consumer's out-pointer, null or writable (NdkCreatePd).
    unsafe {
        created(s, Kind::Pd, NdkObjectTypePd, &PD, out, |c| {
            c.provider.create_pd()
        })
    }
}

unsafe extern "system" fn create_shared_endpoint(
    a: *mut NDK_ADAPTER,
    addr: *const SOCKADDR,
    len: ULONG,
    _done: NDK_FN_CREATE_COMPLETION,
    _ctx: PVOID,
    out: *mut *mut NDK_SHARED_ENDPOINT,
) -> NTSTATUS {
    // SAFETY: NDKPI: `a` is an adapter this provider opened.
    let Some(s) = (unsafe { adapter_shared(a) }) else {
        return STATUS_INVALID_HANDLE;
    };
    // SAFETY: NDKPI: `addr` is null or points to `len` readable bytes.
    let Some(addr) = (unsafe { read_sockaddr(addr, len) }) else {
        return STATUS_INVALID_ADDRESS;
    };
    // SAFETY: `out` is the consumer's out-pointer, null or writable.
    unsafe {
        created(
            s,
            Kind::SharedEndpoint,
            NdkObjectTypeSharedEndpoint,
            &SHARED_ENDPOINT,
            out,
            |c| c.provider.create_shared_endpoint(addr),
        )
    }
}

unsafe extern "system" fn create_connector(
    a: *mut NDK_ADAPTER,
    _done: NDK_FN_CREATE_COMPLETION,
    _ctx: PVOID,
    out: *mut *mut NDK_CONNECTOR,
) -> NTSTATUS {
    // SAFETY: NDKPI: `a` is an adapter this provider opened.
    let Some(s) = (unsafe { adapter_shared(a) }) else {
        return STATUS_INVALID_HANDLE;
    };
    // SAFETY: `out` is the consumer's out-pointer, null or writable (NdkCreateConnector).
    unsafe {
        created(
            s,
            Kind::Connector,
            NdkObjectTypeConnector,
            &CONNECTOR,
            out,
            |c| Ok(c.provider.create_connector()),
        )
    }
}

unsafe extern "system" fn create_listener(
    a: *mut NDK_ADAPTER,
    event: NDK_FN_CONNECT_EVENT_CALLBACK,
    event_ctx: PVOID,
    _done: NDK_FN_CREATE_COMPLETION,
    _ctx: PVOID,
    out: *mut *mut NDK_LISTENER,
) -> NTSTATUS {
    // SAFETY: NDKPI: `a` is an adapter this provider opened.
    let Some(s) = (unsafe { adapter_shared(a) }) else {
        return STATUS_INVALID_HANDLE;
    };
    // SAFETY: `out` is the consumer's out-pointer, null or writable (NdkCreateListener).
    unsafe {
        created(
            s,
            Kind::Listener,
            NdkObjectTypeListener,
            &LISTENER,
            out,
            |c| Ok(c.provider.create_listener(callback(event, event_ctx))),
        )
    }
}

/// Page size of logical address mappings.
const PAGE: u64 = 4096;

unsafe extern "system" fn build_lam(
    a: *mut NDK_ADAPTER,
    mdl: *mut MDL,
    length: SIZE_T,
    _done: NDK_FN_REQUEST_COMPLETION,
    _ctx: PVOID,
    lam: *mut NDK_LOGICAL_ADDRESS_MAPPING,
    lam_size: *mut ULONG,
    fbo: *mut ULONG,
) -> NTSTATUS {
    // SAFETY: NDKPI: `a` is an adapter this provider opened.
    let Some(s) = (unsafe { adapter_shared(a) }) else {
        return STATUS_INVALID_HANDLE;
    };
    // SAFETY: NDKPI NdkBuildLAM: each out-parameter is null or points to a ULONG.
    let (Some(lam_size), Some(fbo)) = (unsafe { lam_size.as_mut() }, unsafe { fbo.as_mut() })
    else {
        return STATUS_INVALID_PARAMETER;
    };
    // The logical pages of each MDL of the chain, in order: the engine
    // reaches them through the privileged token (the NDK_FN_REGISTER_MR, NDK_FN_FAST_REGISTER and NDK_FN_BUILD_LAM pages).
    let room = if lam.is_null() {
        0
    } else {
        (*lam_size as usize).saturating_sub(NDK_LOGICAL_ADDRESS_MAPPING::size_for(0).unwrap_or(0))
            / size_of::<NDK_LOGICAL_ADDRESS>()
    };
    let array = if lam.is_null() {
        ptr::null_mut()
    } else {
        // SAFETY: `lam` is the consumer's non-null mapping buffer; only the
        // address of its page array is taken, nothing is read.
        unsafe { ptr::addr_of_mut!((*lam).AdapterPageArray).cast::<NDK_LOGICAL_ADDRESS>() }
    };
    // SAFETY: the consumer's MDL chain, valid for this call; `put` writes
    // only below `room`, which the consumer's `lam_size` covers.
    let walk = unsafe { Walk::new(&*s.platform, mdl) };
    let got = lam_pages(walk, length as u64, PAGE, room as u64, |i, page| {
        // SAFETY: `lam_pages` calls with `i < room`, inside the consumer's
        // buffer of `lam_size` bytes.
        unsafe { array.add(i as usize).write(page as NDK_LOGICAL_ADDRESS) }
    });
    let (pages, offset) = match got {
        Ok(x) => x,
        Err(st) => return st,
    };
    let Some(need) = ULONG::try_from(pages)
        .ok()
        .and_then(NDK_LOGICAL_ADDRESS_MAPPING::size_for)
    else {
        return STATUS_INVALID_PARAMETER;
    };
    if lam.is_null() || (*lam_size as usize) < need {
        *lam_size = need as ULONG;
        return STATUS_BUFFER_TOO_SMALL;
    }
    // SAFETY: NDKPI NdkBuildLAM: `lam` points to `*lam_size` writable bytes, checked above to hold the header and `pages` entries.
    unsafe {
        (*lam).AdapterContext = ptr::null_mut();
        (*lam).AdapterPageCount = pages as ULONG;
    }
    *lam_size = need as ULONG;
    *fbo = offset as ULONG;
    STATUS_SUCCESS
}

unsafe extern "system" fn release_lam(
    _a: *mut NDK_ADAPTER,
    _lam: *mut NDK_LOGICAL_ADDRESS_MAPPING,
) {
    // A mapping holds no provider resources.
}

static ADAPTER: NDK_ADAPTER_DISPATCH = NDK_ADAPTER_DISPATCH {
    NdkQueryExtension: Some(query_extension),
    NdkQueryAdapterInfo: Some(query_adapter_info),
    NdkCreateCq: Some(create_cq),
    NdkCreatePd: Some(create_pd),
    NdkCreateSharedEndpoint: Some(create_shared_endpoint),
    NdkCreateConnector: Some(create_connector),
    NdkCreateListener: Some(create_listener),
    NdkBuildLAM: Some(build_lam),
    NdkReleaseLAM: Some(release_lam),
};

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

// ---- PD ----

unsafe extern "system" fn create_mr(
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

unsafe extern "system" fn create_mw(
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
unsafe extern "system" fn create_srq(
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
unsafe extern "system" fn create_qp(
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
unsafe extern "system" fn create_qp_with_srq(
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

unsafe extern "system" fn privileged_token(_pd: *mut NDK_PD, token: *mut UINT32) {
    // SAFETY: NDKPI: `token` is null or points to a UINT32.
    if let Some(t) = unsafe { token.as_mut() } {
        // SGEs with this token carry logical addresses (local access only).
        *t = roce::rc::PRIVILEGED_LKEY;
    }
}

static PD: NDK_PD_DISPATCH = NDK_PD_DISPATCH {
    NdkClosePd: Some(close_object),
    NdkQueryExtension: Some(query_extension),
    NdkCreateMr: Some(create_mr),
    NdkCreateMw: Some(create_mw),
    NdkCreateSrq: Some(create_srq),
    NdkCreateQp: Some(create_qp),
    NdkCreateQpWithSrq: Some(create_qp_with_srq),
    NdkGetPrivilegedMemoryRegionToken: Some(privileged_token),
};

// ---- CQ ----

unsafe extern "system" fn resize_cq(
    cq: *mut NDK_CQ,
    depth: ULONG,
    _done: NDK_FN_REQUEST_COMPLETION,
    _ctx: PVOID,
) -> NTSTATUS {
    let (s, id) = obj_or!(cq, STATUS_INVALID_HANDLE);
    s.call(|c| c.provider.resize_cq(id, depth))
}

unsafe extern "system" fn arm_cq(cq: *mut NDK_CQ, kind: ULONG) {
    let (s, id) = obj_or!(cq);
    s.call(|c| c.provider.arm_cq(id, kind));
}

fn to_result(c: &NdkCompletion) -> NDK_RESULT {
    NDK_RESULT {
        Status: c.status,
        BytesTransferred: c.bytes_transferred,
        QPContext: c.qp_context as PVOID,
        RequestContext: c.request_context as PVOID,
    }
}

/// Copies up to `n` completions of `cq` out through `put(index, result)`,
/// in batches taken under the lock and written with it released.
fn drain_cq(
    s: &Shared,
    id: ObjectId,
    n: ULONG,
    mut put: impl FnMut(usize, &NdkCompletion),
) -> ULONG {
    let mut tmp = [NdkCompletion {
        status: 0,
        bytes_transferred: 0,
        qp_context: 0,
        request_context: 0,
        op_type: 0,
        type_specific: 0,
    }; 32];
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

unsafe extern "system" fn get_cq_results(cq: *mut NDK_CQ, out: *mut NDK_RESULT, n: ULONG) -> ULONG {
    let (s, id) = obj_or!(cq, 0);
    if out.is_null() {
        return 0;
    }
    drain_cq(s, id, n, |i, c| {
        // SAFETY: the consumer's array holds `n` results.
        unsafe { out.add(i).write(to_result(c)) };
    })
}

unsafe extern "system" fn get_cq_results_ex(
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

unsafe extern "system" fn moderation(
    _cq: *mut NDK_CQ,
    _interval: ULONG,
    _count: ULONG,
) -> NTSTATUS {
    // NDK_ADAPTER_FLAG_CQ_INTERRUPT_MODERATION_SUPPORTED is clear: the
    // documented answer (the NDKPI completion handling requirements page).
    STATUS_NOT_SUPPORTED
}

static CQ: NDK_CQ_DISPATCH = NDK_CQ_DISPATCH {
    NdkCloseCq: Some(close_object),
    NdkQueryExtension: Some(query_extension),
    NdkResizeCq: Some(resize_cq),
    NdkArmCq: Some(arm_cq),
    NdkGetCqResults: Some(get_cq_results),
    NdkControlCqInterruptModeration: Some(moderation),
    NdkGetCqResultsEx: Some(get_cq_results_ex),
};

// ---- MR ----

unsafe extern "system" fn register_mr(
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

unsafe extern "system" fn deregister_mr(
    mr: *mut NDK_MR,
    _done: NDK_FN_REQUEST_COMPLETION,
    _ctx: PVOID,
) -> NTSTATUS {
    let (s, id) = obj_or!(mr, STATUS_INVALID_HANDLE);
    s.call(|c| c.provider.deregister(id))
}

unsafe extern "system" fn init_fast_register(
    mr: *mut NDK_MR,
    pages: ULONG,
    remote: BOOLEAN,
    _done: NDK_FN_REQUEST_COMPLETION,
    _ctx: PVOID,
) -> NTSTATUS {
    let (s, id) = obj_or!(mr, STATUS_INVALID_HANDLE);
    s.call(|c| c.provider.init_fast_register(id, pages, remote != FALSE))
}

unsafe extern "system" fn mr_token(mr: *mut NDK_MR) -> UINT32 {
    let (s, id) = obj_or!(mr, 0);
    s.with(|c| c.provider.mr_token(id)).unwrap_or(0)
}

unsafe extern "system" fn mw_token(mw: *mut NDK_MW) -> UINT32 {
    let (s, id) = obj_or!(mw, 0);
    s.with(|c| c.provider.mw_token(id)).unwrap_or(0)
}

static MW: NDK_MW_DISPATCH = NDK_MW_DISPATCH {
    NdkCloseMw: Some(close_object),
    NdkQueryExtension: Some(query_extension),
    NdkGetRemoteTokenFromMw: Some(mw_token),
};

// ---- SRQ ----

unsafe extern "system" fn modify_srq(
    srq: *mut NDK_SRQ,
    depth: ULONG,
    threshold: ULONG,
    _done: NDK_FN_REQUEST_COMPLETION,
    _ctx: PVOID,
) -> NTSTATUS {
    let (s, id) = obj_or!(srq, STATUS_INVALID_HANDLE);
    s.call(|c| c.provider.modify_srq(id, depth, threshold))
}

unsafe extern "system" fn srq_receive(
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

static SRQ: NDK_SRQ_DISPATCH = NDK_SRQ_DISPATCH {
    NdkCloseSrq: Some(close_object),
    NdkQueryExtension: Some(query_extension),
    NdkModifySrq: Some(modify_srq),
    NdkSrqReceive: Some(srq_receive),
};

static MR: NDK_MR_DISPATCH = NDK_MR_DISPATCH {
    NdkCloseMr: Some(close_object),
    NdkQueryExtension: Some(query_extension),
    NdkRegisterMr: Some(register_mr),
    NdkDeregisterMr: Some(deregister_mr),
    NdkInitializeFastRegisterMr: Some(init_fast_register),
    NdkGetRemoteTokenFromMr: Some(mr_token),
    NdkGetLocalTokenFromMr: Some(mr_token),
};

// ---- QP ----

unsafe extern "system" fn flush(qp: *mut NDK_QP) {
    let (s, id) = obj_or!(qp);
    s.call(|c| c.provider.flush(id));
}

/// An initiator data request. Failures found here still hand the QP's
/// deferred requests to the engine first (the NDKPI work request posting requirements page rule 2).
///
/// # Safety
/// `sgl` points to `n` NDK_SGEs (or is null with `n` 0); with
/// NDK_OP_FLAG_INLINE their virtual addresses are readable for the call.
unsafe fn post(
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

unsafe extern "system" fn send(
    qp: *mut NDK_QP,
    ctx: PVOID,
    sgl: *const NDK_SGE,
    n: ULONG,
    flags: ULONG,
) -> NTSTATUS {
    // SAFETY: NDKPI NdkSend: `qp` is a live QP, `sgl` points to `n` NDK_SGEs.
    unsafe { post(qp, ctx, sgl, n, SendOp::Send, flags) }
}

unsafe extern "system" fn send_and_invalidate(
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

unsafe extern "system" fn read(
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

unsafe extern "system" fn write(
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

unsafe extern "system" fn receive(
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

unsafe extern "system" fn bind(
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
unsafe extern "system" fn fast_register(
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

unsafe extern "system" fn invalidate(
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

static QP: NDK_QP_DISPATCH = NDK_QP_DISPATCH {
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

// ---- connector ----

#[allow(clippy::too_many_arguments)]
unsafe extern "system" fn connect(
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
unsafe extern "system" fn connect_with_shared_endpoint(
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

unsafe extern "system" fn complete_connect(
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

unsafe extern "system" fn complete_connect_ex(
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
unsafe fn accept_common(
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
unsafe extern "system" fn accept(
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
unsafe extern "system" fn accept_ex(
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

unsafe extern "system" fn reject(
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

unsafe extern "system" fn get_connection_data(
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
unsafe fn connector_address(
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

unsafe extern "system" fn connector_local_address(
    conn: *mut NDK_CONNECTOR,
    addr: *mut SOCKADDR,
    len: *mut ULONG,
) -> NTSTATUS {
    // SAFETY: forwarded from the consumer's call.
    unsafe { connector_address(conn, false, addr, len) }
}

unsafe extern "system" fn connector_peer_address(
    conn: *mut NDK_CONNECTOR,
    addr: *mut SOCKADDR,
    len: *mut ULONG,
) -> NTSTATUS {
    // SAFETY: forwarded from the consumer's call.
    unsafe { connector_address(conn, true, addr, len) }
}

unsafe extern "system" fn disconnect(
    conn: *mut NDK_CONNECTOR,
    done: NDK_FN_REQUEST_COMPLETION,
    ctx: PVOID,
) -> NTSTATUS {
    let (s, id) = obj_or!(conn, STATUS_INVALID_HANDLE);
    s.call(|c| c.provider.disconnect(id, callback(done, ctx)))
}

static CONNECTOR: NDK_CONNECTOR_DISPATCH = NDK_CONNECTOR_DISPATCH {
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

// ---- listener and shared endpoint ----

unsafe extern "system" fn listen(
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

unsafe extern "system" fn listener_local_address(
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

unsafe extern "system" fn control_connect_events(l: *mut NDK_LISTENER, pause: BOOLEAN) {
    let (s, id) = obj_or!(l);
    s.call(|c| c.provider.pause_listener(id, pause != FALSE));
}

static LISTENER: NDK_LISTENER_DISPATCH = NDK_LISTENER_DISPATCH {
    NdkCloseListener: Some(close_object),
    NdkQueryExtension: Some(query_extension),
    NdkListen: Some(listen),
    NdkGetLocalAddress: Some(listener_local_address),
    NdkControlConnectEvents: Some(control_connect_events),
};

unsafe extern "system" fn sep_local_address(
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

static SHARED_ENDPOINT: NDK_SHARED_ENDPOINT_DISPATCH = NDK_SHARED_ENDPOINT_DISPATCH {
    NdkCloseSharedEndpoint: Some(close_object),
    NdkQueryExtension: Some(query_extension),
    NdkGetLocalAddress: Some(sep_local_address),
};
