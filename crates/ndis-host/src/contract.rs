//! Breaches of the NDIS contract: recorded, printed, and checked by the
//! tests. The host never panics inside an export (a panic cannot unwind
//! through `extern "system"`); it records the breach and carries on the way
//! a checked build of Windows would log a Driver Verifier violation, and the
//! test fails on the record.

use std::sync::Mutex;

static BREACHES: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Records one breach.
pub fn breach(what: String) {
    eprintln!("ndis-host: CONTRACT BREACH: {what}");
    BREACHES
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(what);
}

/// Records a breach after which the emulation cannot go on (a deadlock, a
/// lock released by a thread that does not hold it), and aborts.
pub fn fatal(what: String) -> ! {
    breach(what);
    std::process::abort()
}

/// Every breach so far.
pub fn breaches() -> Vec<String> {
    BREACHES.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

/// Takes the breaches recorded so far (a test that provokes one on purpose
/// takes it, then checks the rest).
pub fn take_breaches() -> Vec<String> {
    std::mem::take(&mut *BREACHES.lock().unwrap_or_else(|p| p.into_inner()))
}

/// Records a breach: `breach!("format", args)`.
#[macro_export]
macro_rules! breach {
    ($($t:tt)*) => { $crate::contract::breach(format!($($t)*)) };
}
