//! The kernel platform of the core: KSPIN_LOCK cells and the core's
//! lock (KeAcquireSpinLockRaiseToDpc), the DPCs and KTIMER that run the
//! engine (KeInitializeDpc, KeSetTimer), the clock
//! (KeQueryUnbiasedInterruptTime) and MDL-backed memory
//! (MmGetSystemAddressForMdlSafe).

use super::*;

// ------------------------------------------------------------ spin lock

/// A KSPIN_LOCK-guarded cell.
pub(super) struct SpinCell<T> {
    pub(super) lock: UnsafeCell<KSPIN_LOCK>,
    pub(super) value: UnsafeCell<T>,
}

// SAFETY: the spin lock serializes every access to `value`.
unsafe impl<T> Sync for SpinCell<T> {}

impl<T> SpinCell<T> {
    pub(super) const fn new(value: T) -> Self {
        SpinCell {
            lock: UnsafeCell::new(0),
            value: UnsafeCell::new(value),
        }
    }

    pub(super) fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        // SAFETY: a valid, initialised KSPIN_LOCK (zero is the initial
        // state KeInitializeSpinLock writes); released with the IRQL it
        // returned.
        unsafe {
            let irql = KeAcquireSpinLockRaiseToDpc(self.lock.get());
            let r = f(&mut *self.value.get());
            KeReleaseSpinLock(self.lock.get(), irql);
            r
        }
    }
}

/// The core's lock: a KSPIN_LOCK raised to DISPATCH_LEVEL; the holder's
/// IRQL is kept in the lock (one holder at a time).
pub(super) struct KernelLock {
    pub(super) lock: UnsafeCell<KSPIN_LOCK>,
    pub(super) irql: UnsafeCell<KIRQL>,
}
// SAFETY: the spin lock serializes the cells.
unsafe impl Sync for KernelLock {}
// SAFETY: as above.
unsafe impl Send for KernelLock {}

impl RawLock for KernelLock {
    fn lock(&self) {
        // SAFETY: a valid KSPIN_LOCK; the IRQL is written while held.
        unsafe { *self.irql.get() = KeAcquireSpinLockRaiseToDpc(self.lock.get()) };
    }
    fn unlock(&self) {
        // SAFETY: released by the holder with the IRQL it saved.
        unsafe { KeReleaseSpinLock(self.lock.get(), *self.irql.get()) };
    }
}

// ------------------------------------------------------------- platform

/// The DPCs and the timer that run the engine.
#[repr(C)]
pub(super) struct IoBlock {
    pub(super) kick: KDPC,
    pub(super) timer: KTIMER,
    pub(super) timer_dpc: KDPC,
}

pub(super) struct KernelPlatform {
    pub(super) io: *mut IoBlock,
}
// SAFETY: the IoBlock lives until the miniport halts, after every adapter
// closed; KeInsertQueueDpc is callable at any IRQL.
unsafe impl Send for KernelPlatform {}
// SAFETY: as above.
unsafe impl Sync for KernelPlatform {}

impl Platform for KernelPlatform {
    fn new_lock(&self) -> Box<dyn RawLock> {
        Box::new(KernelLock {
            lock: UnsafeCell::new(0),
            irql: UnsafeCell::new(0),
        })
    }

    fn now(&self) -> Instant {
        now()
    }

    fn wake(&self) {
        // The engine calls this after every call, the DPC's own
        // handle_timeout included: while the DPC runs, a wake is noted and
        // the DPC runs again only if one came after its pump started
        // (else it would requeue itself forever: a DPC storm).
        if SHELL.with(|s| {
            s.rewake = true;
            s.dpc_active != 0
        }) {
            return;
        }
        // SAFETY: an initialised DPC; queuing an already queued DPC is a
        // no-op.
        unsafe { KeInsertQueueDpc(ptr::addr_of_mut!((*self.io).kick), null_mut(), null_mut()) };
    }

    unsafe fn mdl_range(&self, mdl: *mut ndkpi::MDL) -> Option<MdlRange> {
        let mdl = mdl.cast::<MDL>();
        if mdl.is_null() {
            return None;
        }
        // MmGetSystemAddressForMdlSafe maps only locked pages (the
        // MmMapLockedPagesSpecifyCache reference page: an MDL from
        // MmProbeAndLockPages or MmAllocatePagesForMdlEx, a partial MDL of
        // one, or nonpaged pool) and writes the mapping into the MDL; an MDL
        // that is none of these, or whose Size does not cover the header, is
        // refused here (STATUS_INVALID_PARAMETER from the walk) instead of
        // being handed to the memory manager. Next, Size and MdlFlags are
        // the MDL's first 12 bytes.
        // SAFETY: the consumer's MDL (or one linked from it), valid for
        // the call.
        let (size, flags) = unsafe { ((*mdl).Size, (*mdl).MdlFlags) };
        let usable =
            MDL_MAPPED_TO_SYSTEM_VA | MDL_PAGES_LOCKED | MDL_SOURCE_IS_NONPAGED_POOL | MDL_PARTIAL;
        if flags & usable == 0 || usize::from(size as u16) < core::mem::size_of::<MDL>() {
            return None;
        }
        // SAFETY: as above, an MDL of locked or nonpaged pages. Each MDL of
        // a chain is mapped on its own; the NDK layer walks the chain
        // (ndk::abi::chain).
        unsafe {
            let system =
                MmGetSystemAddressForMdlSafe(mdl, NormalPagePriority | MdlMappingNoExecute);
            if system.is_null() {
                return None;
            }
            Some(MdlRange {
                virtual_address: MmGetMdlVirtualAddress(mdl) as u64,
                logical_address: system as u64,
                length: u64::from(MmGetMdlByteCount(mdl)),
            })
        }
    }

    unsafe fn mdl_next(&self, mdl: *mut ndkpi::MDL) -> *mut ndkpi::MDL {
        let mdl = mdl.cast::<MDL>();
        if mdl.is_null() {
            return null_mut();
        }
        // SAFETY: as in `mdl_range`; MDL->Next links the chain (wdm.h).
        unsafe { (*mdl).Next.cast() }
    }

    fn read(&self, addr: u64, dst: &mut [u8]) -> bool {
        if addr == 0 {
            return false;
        }
        // SAFETY: logical addresses are system mappings of MDLs the
        // consumer registered and keeps locked while registered.
        unsafe { ptr::copy_nonoverlapping(addr as *const u8, dst.as_mut_ptr(), dst.len()) };
        true
    }

    fn read_crc(&self, addr: u64, dst: &mut [u8], crc: u32) -> Option<u32> {
        if addr == 0 {
            return None;
        }
        // SAFETY: as in `read`; a consumer leaves a buffer it posted for
        // sending unwritten until the send completed (NDK's contract).
        let src = unsafe { core::slice::from_raw_parts(addr as *const u8, dst.len()) };
        roce::wire::crc32::copy_update(crc, dst, src)
    }

    fn write(&self, addr: u64, src: &[u8]) -> bool {
        if addr == 0 {
            return false;
        }
        // SAFETY: as in `read`.
        unsafe { ptr::copy_nonoverlapping(src.as_ptr(), addr as *mut u8, src.len()) };
        true
    }

    fn write_crc(&self, addr: u64, src: &[u8], crc: u32) -> Option<u32> {
        if addr == 0 {
            return None;
        }
        // SAFETY: as in `read`; the bytes belong to a receive or a WRITE
        // still arriving, whose contents are undefined until it completes.
        let dst = unsafe { core::slice::from_raw_parts_mut(addr as *mut u8, src.len()) };
        roce::wire::crc32::copy_update(crc, dst, src)
    }
}

/// 64 bits from the system's random number generator, drawn at PASSIVE_LEVEL
/// (DriverEntry) for the adapter's identity on the wire: a reloaded driver
/// never reuses the CA GUID, QPNs, PSNs, comm IDs or keys of the one before
/// it (peers would take its new connections for stale ones). 0 if the RNG
/// failed; the identity then still mixes in the LUID and the time.
pub(super) static ENTROPY: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// Draws [`ENTROPY`]. PASSIVE_LEVEL only (BCRYPT_USE_SYSTEM_PREFERRED_RNG's
/// rule on the BCryptGenRandom reference page).
pub(super) fn draw_entropy() {
    let mut b = [0u8; 8];
    // SAFETY: no algorithm handle with BCRYPT_USE_SYSTEM_PREFERRED_RNG, as
    // the page requires; `b` is 8 writable bytes for the call; PASSIVE_LEVEL
    // (the caller's contract).
    let st = unsafe {
        BCryptGenRandom(
            null_mut(),
            b.as_mut_ptr(),
            b.len() as u32,
            BCRYPT_USE_SYSTEM_PREFERRED_RNG,
        )
    };
    if st == ndkpi::STATUS_SUCCESS {
        ENTROPY.store(u64::from_le_bytes(b), core::sync::atomic::Ordering::Relaxed);
    }
}

pub(super) fn now() -> Instant {
    // SAFETY: callable at any IRQL; 100 ns units.
    Instant::from_nanos(unsafe { KeQueryUnbiasedInterruptTime() }.saturating_mul(100))
}

/// Both DPCs: run due timers, move the engine's datagrams to the wire,
/// arm the timer for the next deadline.
pub(super) unsafe extern "system" fn engine_dpc(
    _dpc: *mut KDPC,
    context: PVOID,
    timer: PVOID,
    _: PVOID,
) {
    let Some(adapter) = SHELL.with(|s| {
        let a = s.enter()?;
        s.dpc_active += 1;
        Some(a)
    }) else {
        return;
    };
    // Both DPCs run the due timers: a kick may find them due too.
    let _ = (context, timer);
    io::handle_timeout(adapter);
    // What the timers queued, the pump sends; a wake from here on (a
    // consumer's post on another processor, a loopback datagram's answer)
    // needs another run.
    SHELL.with(|s| s.rewake = false);
    let more = pump(adapter);
    if let Some(deadline) = io::poll_timeout(adapter) {
        let io = SHELL.with(|s| s.io);
        let wait = deadline.as_nanos().saturating_sub(now().as_nanos()) / 100;
        // Relative due time: negative, in 100 ns units, at least one tick.
        let due = -(wait.clamp(1, i64::MAX as u64) as i64);
        if !io.is_null() {
            // SAFETY: initialised timer and DPC in the live IoBlock.
            unsafe {
                KeSetTimer(
                    ptr::addr_of_mut!((*io).timer),
                    due,
                    ptr::addr_of_mut!((*io).timer_dpc),
                )
            };
        }
    }
    let again = SHELL.with(|s| {
        s.dpc_active = s.dpc_active.saturating_sub(1);
        more || core::mem::take(&mut s.rewake)
    });
    leave();
    if again {
        wake_engine();
    }
}

pub(super) fn wake_engine() {
    let io = SHELL.with(|s| s.io);
    if !io.is_null() {
        // SAFETY: the live IoBlock's DPC.
        unsafe { KeInsertQueueDpc(ptr::addr_of_mut!((*io).kick), null_mut(), null_mut()) };
    }
}
