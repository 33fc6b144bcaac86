//! Build script of the driver package.
//!
//! On a Windows host with the WDK (eWDK prompt), wdk-build reads
//! `package.metadata.wdk` and emits the kernel link arguments, exactly as the
//! windows-drivers-rs samples do. On any other host there is no WDK: the
//! package builds as an empty library so that `cargo test --workspace` stays
//! clean, and the kernel-bound crates are checked by `.ci/kernel-image/check.sh`.

#[cfg(windows)]
fn main() -> Result<(), wdk_build::ConfigError> {
    wdk_build::configure_wdk_binary_build()?;
    // wdk-build links ntoskrnl, hal, wmilib and BufferOverflowFastFailK for
    // a WDM driver, not NDIS, NETIO or CNG: without these every Ndis*,
    // netioapi and BCrypt import is LNK2019. ndis-sys's #[link] attributes
    // name the same three (the CI kernel image links what they name).
    for lib in ["ndis", "netio", "cng"] {
        println!("cargo::rustc-link-lib={lib}");
    }
    Ok(())
}

#[cfg(not(windows))]
fn main() {}
