//! The CI kernel image's entry point.
//!
//! Not the ndkrs driver (that is the root package, built with the WDK): a
//! small `DriverEntry` that reaches into every portable kernel-bound crate so
//! the linker must resolve everything they pull in, with a kernel-pool global
//! allocator and a bug-check panic handler, the way wdk-alloc and wdk-panic
//! provide them to the real driver.
#![no_std]

extern crate alloc;

use alloc::vec::Vec;
use core::alloc::{GlobalAlloc, Layout};
use core::ffi::c_void;

use ndkpi::{
    NDIS_NDK_PROVIDER_CHARACTERISTICS, NDIS_NDK_PROVIDER_CHARACTERISTICS_REVISION_1,
    NDIS_OBJECT_HEADER, NDIS_OBJECT_TYPE_NDK_PROVIDER_CHARACTERISTICS,
    NDIS_SIZEOF_NDK_PROVIDER_CHARACTERISTICS_REVISION_1, NDK_VERSION, NDK_VERSION_1_2, NTSTATUS,
    STATUS_INSUFFICIENT_RESOURCES, STATUS_NOT_SUPPORTED, STATUS_SUCCESS, negotiate_version,
};

const POOL_FLAG_NON_PAGED: u64 = 0x40;
/// Pool tag "ndkr" (little-endian, as the pool tag tools display it).
const POOL_TAG: u32 = u32::from_le_bytes(*b"ndkr");
const DPFLTR_IHVDRIVER_ID: u32 = 77;
const DPFLTR_INFO_LEVEL: u32 = 3;

unsafe extern "system" {
    fn ExAllocatePool2(flags: u64, size: usize, tag: u32) -> *mut c_void;
    fn ExFreePool(p: *mut c_void);
    fn KeBugCheckEx(code: u32, p1: usize, p2: usize, p3: usize, p4: usize) -> !;
}

unsafe extern "C" {
    fn DbgPrintEx(component: u32, level: u32, format: *const u8, ...) -> u32;
}

/// Non-paged pool; pool blocks are 16-byte aligned on x64, so larger
/// alignments are refused rather than silently misaligned.
struct PoolAllocator;

unsafe impl GlobalAlloc for PoolAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.align() > 16 {
            return core::ptr::null_mut();
        }
        // SAFETY: a plain pool allocation; a null return is the OOM signal
        // GlobalAlloc expects.
        unsafe { ExAllocatePool2(POOL_FLAG_NON_PAGED, layout.size(), POOL_TAG).cast() }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: `ptr` came from `alloc` above.
        unsafe { ExFreePool(ptr.cast()) }
    }
}

#[global_allocator]
static ALLOCATOR: PoolAllocator = PoolAllocator;

/// A panic in a driver is a bug check; bytes "NDKP" name it.
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo<'_>) -> ! {
    // SAFETY: KeBugCheckEx never returns.
    unsafe { KeBugCheckEx(u32::from_be_bytes(*b"NDKP"), 0, 0, 0, 0) }
}

/// LLVM references `_fltused` as soon as floating point appears; the CRT
/// normally defines it.
#[unsafe(no_mangle)]
#[used]
pub static _fltused: i32 = 0;

unsafe extern "system" {
    fn KeAcquireSpinLockRaiseToDpc(lock: *mut usize) -> u8;
    fn KeReleaseSpinLock(lock: *mut usize, old_irql: u8);
    fn KeQueryUnbiasedInterruptTime() -> u64;
}

/// A KSPIN_LOCK raised to DISPATCH_LEVEL; the holder's previous IRQL is
/// kept in the lock (one holder at a time).
struct KernelLock {
    lock: core::cell::UnsafeCell<usize>,
    old_irql: core::cell::UnsafeCell<u8>,
}

// SAFETY: the spin lock serializes every access to the cells.
unsafe impl Sync for KernelLock {}
// SAFETY: as above.
unsafe impl Send for KernelLock {}

impl ndk::abi::RawLock for KernelLock {
    fn lock(&self) {
        // SAFETY: a valid KSPIN_LOCK; the old IRQL is written while held.
        unsafe { *self.old_irql.get() = KeAcquireSpinLockRaiseToDpc(self.lock.get()) };
    }
    fn unlock(&self) {
        // SAFETY: released by the holder with the IRQL it saved.
        unsafe { KeReleaseSpinLock(self.lock.get(), *self.old_irql.get()) };
    }
}

struct KernelPlatform;

impl ndk::abi::Platform for KernelPlatform {
    fn new_lock(&self) -> alloc::boxed::Box<dyn ndk::abi::RawLock> {
        alloc::boxed::Box::new(KernelLock {
            lock: core::cell::UnsafeCell::new(0),
            old_irql: core::cell::UnsafeCell::new(0),
        })
    }
    fn now(&self) -> roce::time::Instant {
        // 100 ns units.
        // SAFETY: callable at any IRQL.
        roce::time::Instant::from_nanos(
            unsafe { KeQueryUnbiasedInterruptTime() }.saturating_mul(100),
        )
    }
    fn wake(&self) {}
    unsafe fn mdl_range(&self, _mdl: *mut ndkpi::MDL) -> Option<ndk::abi::MdlRange> {
        None
    }
    unsafe fn mdl_next(&self, _mdl: *mut ndkpi::MDL) -> *mut ndkpi::MDL {
        core::ptr::null_mut()
    }
    fn read(&self, addr: u64, dst: &mut [u8]) -> bool {
        roce::rc::Memory::read(&SystemMemory, addr, dst)
    }
    fn write(&self, addr: u64, src: &[u8]) -> bool {
        roce::rc::Memory::write(&SystemMemory, addr, src)
    }
}

unsafe extern "system" fn open_adapter(
    _ctx: *mut c_void,
    params: *mut ndkpi::NDIS_OPEN_NDK_ADAPTER_PARAMETERS,
    out: *mut *mut ndkpi::NDK_ADAPTER,
) -> NTSTATUS {
    // SAFETY: NDIS passes a valid parameter block; this image is never loaded.
    let requested = unsafe { (*params).Version };
    let platform: alloc::sync::Arc<dyn ndk::abi::Platform> = alloc::sync::Arc::new(KernelPlatform);
    match ndk::abi::open_adapter(platform, config(), requested) {
        Ok(a) => {
            // SAFETY: NDIS passes a valid out pointer.
            unsafe { *out = a };
            STATUS_SUCCESS
        }
        Err(status) => status,
    }
}

unsafe extern "system" fn close_adapter(_ctx: *mut c_void, adapter: *mut ndkpi::NDK_ADAPTER) {
    // SAFETY: NDIS closes only adapters it opened, with no call running.
    unsafe { ndk::abi::close_adapter(adapter) };
}

fn config() -> ndk::provider::ProviderConfig {
    ndk::provider::ProviderConfig {
        device: roce::device::DeviceConfig {
            ip_mode: roce::framing::IpMode::Raw,
            udp_source_port: 4791,
            ca_guid: 0,
            cm: roce::cm::CmConfig::default(),
            rc: roce::rc::EngineConfig::default(),
            seed: 0,
        },
        addresses: Vec::new(),
        path_mtu: 4096,
        version: NDK_VERSION_1_2,
        limits: ndk::provider::Limits::default(),
    }
}

/// Logical addresses are system virtual addresses of locked, mapped MDLs
/// (what the kernel shell hands the engine).
struct SystemMemory;

impl roce::rc::Memory for SystemMemory {
    fn read(&self, addr: u64, dst: &mut [u8]) -> bool {
        // SAFETY: the shell only registers mapped, locked ranges; this image
        // is linked and inspected, never loaded.
        unsafe { core::ptr::copy_nonoverlapping(addr as *const u8, dst.as_mut_ptr(), dst.len()) };
        true
    }
    fn write(&self, addr: u64, src: &[u8]) -> bool {
        // SAFETY: as above.
        unsafe { core::ptr::copy_nonoverlapping(src.as_ptr(), addr as *mut u8, src.len()) };
        true
    }
}

/// A 64-byte buffer standing in for a received frame.
static FRAME: [u8; 64] = [0; 64];

/// The portable core, reached the way the driver reaches it. Kept out of
/// `DriverEntry` so each function's frame stays small (no frame may need a
/// stack probe: the image has no `__chkstk`).
#[inline(never)]
fn exercise_core() -> (bool, Option<NTSTATUS>, bool) {
    // The receive path a peer reaches: frame, ICRC, transport headers, and
    // for QP1 the CM MAD (linked in for real, so the image proves they need
    // nothing outside the kernel).
    let frame = core::hint::black_box(&FRAME[..]);
    let parsed = roce::wire::frame::FrameRepr::parse(frame)
        .ok()
        .and_then(|f| {
            f.datagram
                .packet
                .qp1_mad()
                .map(roce::wire::cm::CmMad::parse)
        });
    let roce_ok = matches!(parsed, Some(Ok(_)));
    // The provider's connector rules.
    let (_, disconnect) = ndk::connector::ConnectorState::Connected
        .on(core::hint::black_box(ndk::connector::Input::Disconnect));
    // The whole provider core over the NIC (RC engine, CM, framing), fed
    // one datagram, so every layer a received packet reaches is linked.
    let mut provider = alloc::boxed::Box::new(ndk::provider::Provider::new(
        ndk::provider::ProviderConfig {
            device: roce::device::DeviceConfig {
                ip_mode: roce::framing::IpMode::Raw,
                udp_source_port: 4791,
                ca_guid: 0,
                cm: roce::cm::CmConfig::default(),
                rc: roce::rc::EngineConfig::default(),
                seed: 0,
            },
            addresses: Vec::new(),
            path_mtu: 4096,
            version: NDK_VERSION_1_2,
            limits: ndk::provider::Limits::default(),
        },
        SystemMemory,
    ));
    let now = roce::time::Instant::ZERO;
    provider.handle_ip(now, core::hint::black_box(&FRAME[..]));
    let pd = provider.create_pd().is_ok();
    drop(provider);
    open_close_adapter();
    (roce_ok, disconnect.returns, pd)
}

/// Opens and closes an adapter through the NDIS handlers.
#[inline(never)]
fn open_close_adapter() {
    // The NDK open/close path through the dispatch tables.
    let mut params = ndkpi::NDIS_OPEN_NDK_ADAPTER_PARAMETERS {
        Version: NDK_VERSION_1_2,
        SwitchId: 0,
        VPortId: 0,
    };
    let mut adapter = core::ptr::null_mut();
    // SAFETY: valid parameter and out pointers.
    if unsafe { open_adapter(core::ptr::null_mut(), &mut params, &mut adapter) } == STATUS_SUCCESS {
        // SAFETY: the adapter just opened, nothing running on it.
        unsafe { close_adapter(core::ptr::null_mut(), core::hint::black_box(adapter)) };
    }
}

/// Entry point of the CI image. It is linked and inspected, never loaded.
///
/// It runs the real driver's registration (`miniport::kernel::driver_entry`:
/// the NDIS virtual miniport with its NDK provider characteristics, OIDs and
/// platform, and the lightweight filter of the datagram path), so every
/// NDIS, kernel and NETIO import of the shell is in this image; then it
/// exercises the portable crates as before.
#[unsafe(no_mangle)]
pub extern "system" fn DriverEntry(driver: *mut c_void, registry: *const c_void) -> NTSTATUS {
    // SAFETY: the I/O manager's arguments; this image is never loaded.
    let shell = unsafe { miniport::kernel::driver_entry(driver, registry.cast_mut()) };
    if core::hint::black_box(shell) != STATUS_SUCCESS {
        return shell;
    }
    let characteristics = NDIS_NDK_PROVIDER_CHARACTERISTICS {
        Header: NDIS_OBJECT_HEADER {
            Type: NDIS_OBJECT_TYPE_NDK_PROVIDER_CHARACTERISTICS,
            Revision: NDIS_NDK_PROVIDER_CHARACTERISTICS_REVISION_1,
            Size: NDIS_SIZEOF_NDK_PROVIDER_CHARACTERISTICS_REVISION_1,
        },
        Flags: 0,
        OpenNDKAdapterHandler: Some(open_adapter),
        CloseNDKAdapterHandler: Some(close_adapter),
    };
    let mut versions: Vec<NDK_VERSION> = Vec::new();
    if versions.try_reserve(2).is_err() {
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    versions.push(NDK_VERSION_1_2);
    let negotiated = negotiate_version(ndkpi::NDK_VERSION_1_1, &versions);
    let (roce_ok, disconnect, pd) = exercise_core();
    // SAFETY: a format string with one %u and one %d and their arguments.
    unsafe {
        DbgPrintEx(
            DPFLTR_IHVDRIVER_ID,
            DPFLTR_INFO_LEVEL,
            c"ndkrs kernel image: ndk characteristics %u bytes, negotiate %d\n"
                .as_ptr()
                .cast(),
            characteristics.Header.Size as u32,
            negotiated.map(|v| v.Minor as i32).unwrap_or(-1),
        );
    }
    core::hint::black_box((&characteristics, roce_ok, disconnect, pd));
    STATUS_NOT_SUPPORTED
}
