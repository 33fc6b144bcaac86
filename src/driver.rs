//! The driver's entry point (Windows only).
//!
//! The NDIS miniport registration (NdisMRegisterMiniportDriver, the NDK
//! provider characteristics, OIDs) and the WSK datagram path are not built
//! yet: until they are, loading the driver fails cleanly with
//! STATUS_NOT_SUPPORTED instead of registering a half-working adapter.

extern crate alloc;

#[cfg(not(test))]
extern crate wdk_panic;

use ndkpi::{NTSTATUS, STATUS_NOT_SUPPORTED};
#[cfg(not(test))]
use wdk_alloc::WdkAllocator;
use wdk_sys::{DRIVER_OBJECT, PCUNICODE_STRING};

#[cfg(not(test))]
#[global_allocator]
static GLOBAL_ALLOCATOR: WdkAllocator = WdkAllocator;

/// `DriverEntry`: called once when the driver loads.
///
/// # Safety
/// Called by the I/O manager with a valid driver object and registry path.
#[unsafe(export_name = "DriverEntry")]
pub unsafe extern "system" fn driver_entry(
    _driver: &mut DRIVER_OBJECT,
    _registry_path: PCUNICODE_STRING,
) -> NTSTATUS {
    wdk::println!("ndkrs: NDIS miniport registration is not implemented yet");
    STATUS_NOT_SUPPORTED
}
