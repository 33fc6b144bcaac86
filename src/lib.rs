//! ndkrs, the Windows driver package: the kernel shell around the portable
//! provider.
//!
//! This crate is the `.sys` users install. It holds only what must touch the
//! Windows kernel: `DriverEntry`, the NDIS miniport registration that makes
//! the adapter an NDK provider, the datagram path and the kernel platform
//! (locks, timers, DPCs, MDL-backed memory). Everything it calls lives in the
//! portable crates (`ndkpi`, `ndk`, `roce`, and the no_std kernel shell
//! `miniport` with its `ndis-sys` bindings), which build and are
//! tested on any host.
//!
//! It builds with the WDK on Windows (`cargo make`, see README.md). On other
//! hosts it compiles to an empty library, so that `cargo test --workspace`
//! stays clean; the kernel-bound crates are linked into a kernel image on
//! Linux by `.ci/kernel-image/check.sh`.
#![cfg_attr(target_os = "windows", no_std)]

#[cfg(target_os = "windows")]
mod driver;
