//! The driver's entry point (Windows only, built with the WDK).
//!
//! Everything the driver does lives in `crates/miniport` (no_std, no
//! wdk-sys; also linked on Linux by the kernel-image check): the NDIS 6.30
//! virtual miniport registered as an NDK provider, the lightweight filter
//! that carries its RoCEv2 datagrams on a physical NIC, and the kernel
//! platform. This file only supplies what windows-drivers-rs provides to a
//! WDK-built driver: the pool allocator, the bug-check panic handler, and
//! the `DriverEntry` symbol.

extern crate alloc;

#[cfg(not(test))]
extern crate wdk_panic;

use ndkpi::NTSTATUS;
#[cfg(not(test))]
use wdk_alloc::WdkAllocator;
use wdk_sys::{DRIVER_OBJECT, PCUNICODE_STRING};

#[cfg(not(test))]
#[global_allocator]
static GLOBAL_ALLOCATOR: WdkAllocator = WdkAllocator;

/// `DriverEntry`: registers the miniport and the filter with NDIS.
///
/// # Safety
/// Called by the I/O manager with a valid driver object and registry path.
#[unsafe(export_name = "DriverEntry")]
pub unsafe extern "system" fn driver_entry(
    driver: &mut DRIVER_OBJECT,
    registry_path: PCUNICODE_STRING,
) -> NTSTATUS {
    // SAFETY: the I/O manager's arguments, passed through unchanged; NDIS
    // sets the driver object's dispatch table and unload routine.
    unsafe {
        miniport::kernel::driver_entry(
            core::ptr::from_mut(driver).cast(),
            registry_path.cast_mut().cast(),
        )
    }
}
