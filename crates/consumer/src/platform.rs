//! The user-mode [`Platform`]: the lock, the clock and the memory a
//! provider opened in this process uses.
//!
//! Memory is described by [`HostMdl`]s: a virtually contiguous buffer of
//! the process (its address is also the engine's logical address), linked
//! into a chain by `next` as MDL->Next links kernel MDLs. Where the engine
//! may read and write is either anywhere a consumer registered
//! ([`Access::Trusted`], ndkperf) or only inside the ranges a
//! [`MemoryMap`] lists ([`Access::Checked`], the tests: a provider bug is
//! then a failed access, not a wild write).

use std::ptr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use lock_api::RawMutex as _;
use ndk::abi::{MdlRange, Platform, RawLock};
use ndkpi::MDL;
use roce::time::Instant;

/// The adapter lock: parking_lot's raw mutex.
struct HostLock(parking_lot::RawMutex);

impl RawLock for HostLock {
    fn lock(&self) {
        self.0.lock();
    }
    fn unlock(&self) {
        // SAFETY: `ndk::abi` pairs every unlock with its own lock on the
        // same thread (the `RawLock` contract).
        unsafe { self.0.unlock() };
    }
}

/// A new host lock (the default of [`HostPlatform`]).
pub fn host_lock() -> Box<dyn RawLock> {
    Box::new(HostLock(parking_lot::RawMutex::INIT))
}

/// What a host consumer passes as an MDL.
#[repr(C)]
#[derive(Debug)]
pub struct HostMdl {
    /// First byte.
    pub va: *mut u8,
    /// Bytes.
    pub len: usize,
    /// The next MDL of the chain, or null.
    pub next: *mut HostMdl,
}

impl HostMdl {
    /// A single MDL over `len` bytes at `va`.
    pub fn new(va: *mut u8, len: usize) -> Self {
        HostMdl {
            va,
            len,
            next: ptr::null_mut(),
        }
    }
}

// SAFETY: a description of memory, shared with the provider by design.
unsafe impl Send for HostMdl {}
// SAFETY: as above.
unsafe impl Sync for HostMdl {}

/// The time a platform reports, and how it wakes its I/O side.
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> Instant;
    /// The engine has something to send or a new deadline.
    fn wake(&self) {}
}

/// A clock the caller moves ([`ManualClock::advance`]); starts at 1 ns.
/// Nothing to wake: the caller pumps.
#[derive(Debug)]
pub struct ManualClock(AtomicU64);

impl Default for ManualClock {
    fn default() -> Self {
        ManualClock(AtomicU64::new(1))
    }
}

impl ManualClock {
    /// Moves the clock on by `nanos`.
    pub fn advance(&self, nanos: u64) {
        self.0.fetch_add(nanos, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        Instant::from_nanos(self.0.load(Ordering::SeqCst))
    }
}

/// The ranges the engine may reach under [`Access::Checked`].
#[derive(Debug, Default)]
pub struct MemoryMap(Mutex<Vec<(u64, u64)>>);

impl MemoryMap {
    /// Lets the engine reach `len` bytes at `start`.
    pub fn allow(&self, start: u64, len: u64) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((start, len));
    }
    /// Forbids the range allowed at `start` again.
    pub fn forbid(&self, start: u64) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|r| r.0 != start);
    }
    /// Whether `len` bytes at `addr` lie inside one allowed range.
    pub fn contains(&self, addr: u64, len: usize) -> bool {
        let Some(end) = addr.checked_add(len as u64) else {
            return false;
        };
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .any(|&(s, l)| addr >= s && end <= s.saturating_add(l))
    }
}

/// Where the engine may read and write.
#[derive(Debug, Clone)]
pub enum Access {
    /// Anywhere but address 0: a consumer keeps what it registered alive
    /// until the MR is closed, and the engine checks every access against
    /// the region's bounds (ndkperf's memory, gigabytes of it).
    Trusted,
    /// Only inside the map's ranges.
    Checked(Arc<MemoryMap>),
}

/// The host's services to the provider: `C`'s clock and waker, a lock
/// from `new_lock`, memory behind [`HostMdl`]s as [`Access`] allows.
pub struct HostPlatform<C = ManualClock> {
    clock: C,
    access: Access,
    new_lock: fn() -> Box<dyn RawLock>,
}

impl<C: std::fmt::Debug> std::fmt::Debug for HostPlatform<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostPlatform")
            .field("clock", &self.clock)
            .field("access", &self.access)
            .finish_non_exhaustive()
    }
}

impl<C: Clock> HostPlatform<C> {
    /// A platform on `clock`, with [`host_lock`]s.
    pub fn new(clock: C, access: Access) -> Self {
        HostPlatform {
            clock,
            access,
            new_lock: host_lock,
        }
    }

    /// The same with another lock: shuttle's instrumented one, for
    /// example (crates/ndk/tests/shuttle_race.rs).
    pub fn with_lock(mut self, new_lock: fn() -> Box<dyn RawLock>) -> Self {
        self.new_lock = new_lock;
        self
    }

    /// The clock.
    pub fn clock(&self) -> &C {
        &self.clock
    }

    /// The memory map, under [`Access::Checked`].
    pub fn map(&self) -> Option<&Arc<MemoryMap>> {
        match &self.access {
            Access::Trusted => None,
            Access::Checked(m) => Some(m),
        }
    }

    fn reachable(&self, addr: u64, len: usize) -> bool {
        match &self.access {
            Access::Trusted => addr != 0,
            Access::Checked(m) => m.contains(addr, len),
        }
    }
}

impl HostPlatform<ManualClock> {
    /// The tests' platform: a clock they move, memory checked against a
    /// fresh map.
    pub fn manual() -> Arc<Self> {
        Arc::new(HostPlatform::new(
            ManualClock::default(),
            Access::Checked(Arc::default()),
        ))
    }

    /// Moves the clock on.
    pub fn advance(&self, nanos: u64) {
        self.clock.advance(nanos);
    }
}

impl<C: Clock> Platform for HostPlatform<C> {
    fn new_lock(&self) -> Box<dyn RawLock> {
        (self.new_lock)()
    }
    fn now(&self) -> Instant {
        self.clock.now()
    }
    fn wake(&self) {
        self.clock.wake();
    }
    unsafe fn mdl_range(&self, mdl: *mut MDL) -> Option<MdlRange> {
        // SAFETY: consumers of this platform pass `HostMdl`s (this
        // module's convention) or null, valid for the call.
        let m = unsafe { mdl.cast::<HostMdl>().as_ref() }?;
        if m.va.is_null() {
            return None;
        }
        Some(MdlRange {
            virtual_address: m.va as u64,
            logical_address: m.va as u64,
            length: m.len as u64,
        })
    }
    unsafe fn mdl_next(&self, mdl: *mut MDL) -> *mut MDL {
        // SAFETY: as for `mdl_range`.
        match unsafe { mdl.cast::<HostMdl>().as_ref() } {
            Some(m) => m.next.cast(),
            None => ptr::null_mut(),
        }
    }
    fn read(&self, addr: u64, dst: &mut [u8]) -> bool {
        if !self.reachable(addr, dst.len()) {
            return false;
        }
        // SAFETY: under `Checked`, [addr, addr + len) lies in a range the
        // owner keeps alive until it forbids it; under `Trusted`, the
        // engine reads only inside registered regions (it checks every
        // access against the region's bounds), which the consumer keeps
        // alive until the MR is closed.
        unsafe { ptr::copy_nonoverlapping(addr as *const u8, dst.as_mut_ptr(), dst.len()) };
        true
    }
    fn read_crc(&self, addr: u64, dst: &mut [u8], crc: u32) -> Option<u32> {
        if !self.reachable(addr, dst.len()) {
            return None;
        }
        // SAFETY: as for `read`; the consumer does not write a buffer it
        // has posted for sending until the send completed (NDK's contract).
        let src = unsafe { core::slice::from_raw_parts(addr as *const u8, dst.len()) };
        roce::wire::crc32::copy_update(crc, dst, src)
    }
    fn write(&self, addr: u64, src: &[u8]) -> bool {
        if !self.reachable(addr, src.len()) {
            return false;
        }
        // SAFETY: as for `read`.
        unsafe { ptr::copy_nonoverlapping(src.as_ptr(), addr as *mut u8, src.len()) };
        true
    }
    fn write_crc(&self, addr: u64, src: &[u8], crc: u32) -> Option<u32> {
        if !self.reachable(addr, src.len()) {
            return None;
        }
        // SAFETY: as for `read`; the bytes belong to a receive or a WRITE
        // still arriving, which the consumer leaves alone until it
        // completes (their contents are undefined until then).
        let dst = unsafe { core::slice::from_raw_parts_mut(addr as *mut u8, src.len()) };
        roce::wire::crc32::copy_update(crc, dst, src)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The transmit path's fused read: the same bytes and the same CRC as
    /// a read then the table CRC, at odd offsets and lengths across the
    /// fold's 64-byte steps; nothing outside the map.
    #[test]
    fn read_crc_copies_and_hashes_what_read_would() {
        let bytes: Vec<u8> = (0..4096u32).map(|i| (i * 31 + 7) as u8).collect();
        let base = bytes.as_ptr() as u64;
        let map = Arc::new(MemoryMap::default());
        map.allow(base, bytes.len() as u64);
        let p = HostPlatform::new(ManualClock::default(), Access::Checked(map));
        for (off, len) in [(0, 0), (1, 15), (3, 64), (5, 200), (17, 1024), (33, 4000)] {
            let mut fused = vec![0u8; len];
            let mut plain = vec![0u8; len];
            let crc = p.read_crc(base + off, &mut fused, 0x1234_5678);
            assert!(p.read(base + off, &mut plain));
            assert_eq!(fused, plain, "{off}+{len}");
            assert_eq!(
                crc,
                Some(roce::wire::crc32::table(0x1234_5678, &plain)),
                "{off}+{len}"
            );
        }
        let mut out = [0u8; 8];
        assert_eq!(p.read_crc(base + 4092, &mut out, 0), None, "past the map");
        assert_eq!(p.read_crc(0, &mut out, 0), None);
    }

    /// The receive path's fused write: the bytes land as `write` would put
    /// them, with the table's CRC of them; nothing outside the map.
    #[test]
    fn write_crc_places_and_hashes_what_write_would() {
        let src: Vec<u8> = (0..4096u32).map(|i| (i * 29 + 11) as u8).collect();
        let mut bytes = vec![0u8; 4096];
        let base = bytes.as_mut_ptr() as u64;
        let map = Arc::new(MemoryMap::default());
        map.allow(base, bytes.len() as u64);
        let p = HostPlatform::new(ManualClock::default(), Access::Checked(map));
        for (off, len) in [(0, 0), (1, 15), (3, 64), (5, 200), (17, 1024), (33, 4000)] {
            let s = &src[off..off + len];
            let crc = p.write_crc(base + off as u64, s, 0x8765_4321);
            assert_eq!(
                crc,
                Some(roce::wire::crc32::table(0x8765_4321, s)),
                "{off}+{len}"
            );
            let mut back = vec![0u8; len];
            assert!(p.read(base + off as u64, &mut back));
            assert_eq!(back, s, "{off}+{len}");
        }
        assert_eq!(p.write_crc(base + 4092, &src[..8], 0), None, "past the map");
        assert_eq!(p.write_crc(0, &src[..8], 0), None);
        drop(bytes);
    }
}
