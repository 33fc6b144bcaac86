//! What the ABI layer needs from the shell it runs in: a lock, the time,
//! memory behind MDLs, and a way to wake the I/O side.

use alloc::boxed::Box;

use ndkpi::MDL;
use roce::time::Instant;

/// A non-recursive lock (a KSPIN_LOCK raised to DISPATCH_LEVEL in the
/// kernel, a mutex on the host). `lock` and `unlock` are always paired by
/// the same thread.
pub trait RawLock: Send + Sync {
    /// Blocks (spins) until the lock is held.
    fn lock(&self);
    /// Releases the lock.
    fn unlock(&self);
}

/// The virtually contiguous, locked memory range one MDL describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MdlRange {
    /// The consumer's virtual address of the first byte: only a tag for the
    /// region (the NDK_FN_REGISTER_MR, NDK_FN_FAST_REGISTER and NDK_FN_BUILD_LAM pages), never dereferenced by the provider.
    pub virtual_address: u64,
    /// Where the engine reads and writes the first byte (a system address
    /// of the mapped pages in the kernel, the process address on the host).
    pub logical_address: u64,
    /// Bytes this MDL describes from there.
    pub length: u64,
}

/// The shell's services.
pub trait Platform: Send + Sync {
    /// A new lock.
    fn new_lock(&self) -> Box<dyn RawLock>;
    /// The current time.
    fn now(&self) -> Instant;
    /// The engine has something to send or a new deadline: the I/O side
    /// should call `poll_transmit` / `poll_timeout` soon.
    fn wake(&self);
    /// The range one MDL describes (its own bytes only: a chain is walked
    /// with [`Platform::mdl_next`]); `None` if it cannot be mapped.
    ///
    /// # Safety
    /// `mdl` is what the consumer passed to an NDK call, or linked from it;
    /// it is valid for the call's duration.
    unsafe fn mdl_range(&self, mdl: *mut MDL) -> Option<MdlRange>;
    /// The MDL after `mdl` in its chain (MDL->Next), null at the end.
    ///
    /// # Safety
    /// As for [`Platform::mdl_range`].
    unsafe fn mdl_next(&self, mdl: *mut MDL) -> *mut MDL;
    /// Moves bytes from a logical address (see [`MdlRange`]); `false` if
    /// the address is not mapped.
    fn read(&self, addr: u64, dst: &mut [u8]) -> bool;
    /// Moves bytes to a logical address; `false` if not mapped.
    fn write(&self, addr: u64, src: &[u8]) -> bool;
    /// [`Platform::read`], returning the CRC-32 of the bytes read continued
    /// from `crc` (the transmit path's ICRC); `None` if not mapped. This
    /// default reads, then hashes what it read; a shell that can reach the
    /// bytes does both in one pass with `roce::wire::crc32::copy_update`.
    fn read_crc(&self, addr: u64, dst: &mut [u8], crc: u32) -> Option<u32> {
        self.read(addr, dst)
            .then(|| roce::wire::crc32::update(crc, dst))
    }
    /// [`Platform::write`], returning the CRC-32 of `src` continued from
    /// `crc` (the receive path's ICRC, checked while the payload is
    /// placed); `None` if not mapped. This default writes, then hashes
    /// `src`; a shell that can reach the bytes does both in one pass with
    /// `roce::wire::crc32::copy_update`.
    fn write_crc(&self, addr: u64, src: &[u8], crc: u32) -> Option<u32> {
        self.write(addr, src)
            .then(|| roce::wire::crc32::update(crc, src))
    }
}
