//! What the emulated hosts (ndis-host-node, ndis-host-tap) share: the
//! shell's bring-up and teardown as NDIS does them, each step checked, and
//! the `RESULT` line their tests read.

use ndis_host::contract;
use ndis_host::machine::{self, Config};
use ndis_sys::NDIS_STATUS_SUCCESS;

/// Closes an NDK adapter handed to crates/interop as an `ExternalAdapter`.
pub fn close_ndk(a: usize) {
    machine::close_ndk(a as *mut ndkpi::NDK_ADAPTER);
}

/// DriverEntry, MiniportInitializeEx, MiniportRestart, FilterAttach and
/// FilterRestart; the first that fails, with its status.
pub fn bring_up(cfg: &Config) -> Result<(), String> {
    if machine::boot(cfg) != 0 {
        return Err("DriverEntry failed".into());
    }
    let ok = |st: i32, what: &str| {
        if st == NDIS_STATUS_SUCCESS {
            Ok(())
        } else {
            Err(format!("{what}: {st:#x}"))
        }
    };
    ok(machine::initialize(cfg.luid), "MiniportInitializeEx")?;
    ok(machine::restart_miniport(), "MiniportRestart")?;
    ok(machine::attach_filter(cfg), "FilterAttach")?;
    ok(machine::restart_filter(), "FilterRestart")
}

/// Pause, detach the filter, restart, halt and unload; then nothing may be
/// left: no leak at unload, every NBL back with its owner.
pub fn tear_down() -> Result<(), String> {
    machine::pause(true);
    machine::detach_filter();
    machine::pause(false);
    machine::halt();
    let leaks = machine::unload();
    if !leaks.is_empty() {
        return Err(format!("left at unload: {leaks:?}"));
    }
    let out = machine::outstanding();
    if !out.is_empty() {
        return Err(format!("NBLs not back with their owner: {out:?}"));
    }
    Ok(())
}

/// Prints the run's report (if any) and `RESULT ok` when it succeeded
/// without an NDIS contract breach; otherwise `RESULT` with the reasons,
/// and exits 1.
pub fn finish(run: Result<Option<String>, String>) {
    match run {
        Ok(report) => {
            let breaches = contract::breaches();
            if breaches.is_empty() {
                if let Some(report) = report {
                    println!("{report}");
                }
                println!("RESULT ok");
            } else {
                println!(
                    "RESULT {} contract breach(es): {breaches:#?}",
                    breaches.len()
                );
                std::process::exit(1);
            }
        }
        Err(e) => {
            println!("RESULT failed: {e}; breaches: {:#?}", contract::breaches());
            std::process::exit(1);
        }
    }
}
