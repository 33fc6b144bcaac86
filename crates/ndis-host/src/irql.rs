//! IRQL, tracked per thread, and KSPIN_LOCKs.
//!
//! Every thread starts at PASSIVE_LEVEL. The host raises a thread to
//! DISPATCH_LEVEL where Windows would run code there (DPCs, the emulated
//! NIC's receive and completion paths) and KeAcquireSpinLockRaiseToDpc
//! raises the caller. Each export checks the caller's IRQL against the
//! maximum its reference page allows, and each call into the driver checks
//! on return that the driver came back at the IRQL it was called at,
//! holding no spin lock.

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::contract::fatal;

pub const PASSIVE_LEVEL: u8 = 0;
pub const DISPATCH_LEVEL: u8 = 2;

/// Longest a spin lock may be waited for before the host calls it a
/// deadlock (a real one would hang the machine).
const SPIN_BOUND: Duration = Duration::from_secs(10);

thread_local! {
    static IRQL: Cell<u8> = const { Cell::new(PASSIVE_LEVEL) };
    static HELD: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
    static TOKEN: usize = NEXT_TOKEN.fetch_add(1, Ordering::Relaxed);
}
static NEXT_TOKEN: AtomicUsize = AtomicUsize::new(1);

/// The calling thread's IRQL.
pub fn current() -> u8 {
    IRQL.with(Cell::get)
}

fn set(level: u8) {
    IRQL.with(|c| c.set(level));
}

/// Spin locks the calling thread holds.
pub fn held() -> usize {
    HELD.with(|h| h.borrow().len())
}

/// Checks that `what` is called at or below `max`.
pub fn require(max: u8, what: &str) {
    let now = current();
    if now > max {
        crate::breach!("{what} called at IRQL {now}, its reference page allows <= {max}");
    }
}

/// Checks that `what` is called at exactly `level`.
pub fn require_eq(level: u8, what: &str) {
    let now = current();
    if now != level {
        crate::breach!("{what} called at IRQL {now}, its reference page requires {level}");
    }
}

/// Runs `f` (a call into the driver) at `level`, and checks that the driver
/// returns at that IRQL with no spin lock acquired inside still held.
pub fn call_at<R>(level: u8, what: &str, f: impl FnOnce() -> R) -> R {
    let before = current();
    let locks = held();
    set(level);
    let r = f();
    if current() != level {
        crate::breach!(
            "{what} returned at IRQL {}, it was called at {level}",
            current()
        );
    }
    if held() != locks {
        crate::breach!(
            "{what} returned holding {} spin lock(s) it acquired",
            held() - locks
        );
    }
    set(before);
    r
}

/// KeAcquireSpinLockRaiseToDpc: a real spin lock on the driver's
/// KSPIN_LOCK word (the owner's token in it), raising to DISPATCH_LEVEL.
pub fn acquire(lock: *mut usize) -> u8 {
    require(DISPATCH_LEVEL, "KeAcquireSpinLockRaiseToDpc");
    if lock.is_null() || !(lock as usize).is_multiple_of(8) {
        fatal(format!(
            "KeAcquireSpinLockRaiseToDpc on a bad lock {lock:p}"
        ));
    }
    let me = TOKEN.with(|t| *t);
    // SAFETY: the driver's KSPIN_LOCK, pointer-sized and aligned (checked).
    let word = unsafe { AtomicUsize::from_ptr(lock) };
    let start = Instant::now();
    loop {
        match word.compare_exchange_weak(0, me, Ordering::Acquire, Ordering::Relaxed) {
            Ok(_) => break,
            Err(v) if v == me => fatal(format!(
                "spin lock {lock:p} acquired again by the thread holding it (deadlock)"
            )),
            Err(_) => {
                if start.elapsed() > SPIN_BOUND {
                    fatal(format!(
                        "spin lock {lock:p} not acquired within {SPIN_BOUND:?} (deadlock)"
                    ));
                }
                std::thread::yield_now();
            }
        }
    }
    let old = current();
    set(DISPATCH_LEVEL);
    HELD.with(|h| h.borrow_mut().push(lock as usize));
    old
}

/// KeReleaseSpinLock.
pub fn release(lock: *mut usize, new_irql: u8) {
    require_eq(DISPATCH_LEVEL, "KeReleaseSpinLock");
    let me = TOKEN.with(|t| *t);
    // SAFETY: as in `acquire`.
    let word = unsafe { AtomicUsize::from_ptr(lock) };
    if word.load(Ordering::Relaxed) != me {
        fatal(format!(
            "KeReleaseSpinLock on {lock:p}, which the calling thread does not hold"
        ));
    }
    HELD.with(|h| {
        let mut h = h.borrow_mut();
        if let Some(i) = h.iter().rposition(|&l| l == lock as usize) {
            h.remove(i);
        }
    });
    word.store(0, Ordering::Release);
    if new_irql > DISPATCH_LEVEL {
        crate::breach!("KeReleaseSpinLock to IRQL {new_irql}, above DISPATCH_LEVEL");
    }
    set(new_irql);
}
