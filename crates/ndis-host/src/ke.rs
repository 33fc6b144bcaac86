//! The kernel's deferred execution: DPCs (one emulated processor's DPC
//! queue, run on a host thread at DISPATCH_LEVEL), timers (a host thread
//! that queues the timer's DPC when it falls due), NDIS I/O work items (a
//! host thread at PASSIVE_LEVEL), and the interrupt-time clock.

use std::collections::{HashMap, VecDeque};
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use ndis_sys::{KDPC, KTIMER, NDIS_HANDLE, NDIS_IO_WORKITEM_ROUTINE, PKDEFERRED_ROUTINE, PVOID};

use crate::irql::{self, DISPATCH_LEVEL, PASSIVE_LEVEL};

/// Bound of every wait for the DPC or work queues to drain.
const DRAIN_BOUND: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy)]
struct Dpc {
    routine: PKDEFERRED_ROUTINE,
    context: usize,
    queued: bool,
    args: (usize, usize),
}

#[derive(Debug, Clone, Copy)]
struct Timer {
    due: Option<Instant>,
    dpc: usize,
}

#[derive(Debug, Clone, Copy)]
struct Work {
    queued: bool,
}

#[derive(Debug, Default)]
struct Ke {
    dpcs: HashMap<usize, Dpc>,
    /// Queued DPCs with their queueing sequence number.
    dpc_queue: VecDeque<(usize, u64)>,
    dpc_seq: u64,
    /// Sequence number of the DPC running, if one is.
    dpc_running: Option<u64>,
    timers: HashMap<usize, Timer>,
    works: HashMap<usize, Work>,
    /// Work item routines executing now, whether or not their work item
    /// was freed meanwhile (a routine may free its own item).
    routines_running: usize,
    work_queue: VecDeque<(usize, NDIS_IO_WORKITEM_ROUTINE, usize)>,
    next_work: usize,
}

// SAFETY: the raw addresses are kept as numbers; the routines are plain
// function pointers.
unsafe impl Send for Ke {}

struct Shared {
    ke: Mutex<Ke>,
    cv: Condvar,
}

fn shared() -> &'static Shared {
    static S: OnceLock<Shared> = OnceLock::new();
    S.get_or_init(|| {
        for (name, f) in [
            ("kernel-dpc", dpc_thread as fn()),
            ("kernel-timer", timer_thread as fn()),
            ("ndis-work", work_thread as fn()),
        ] {
            std::thread::Builder::new()
                .name(name.into())
                .spawn(f)
                .unwrap_or_else(|e| crate::contract::fatal(format!("spawning {name}: {e}")));
        }
        Shared {
            ke: Mutex::new(Ke {
                next_work: 0x1000,
                ..Ke::default()
            }),
            cv: Condvar::new(),
        }
    })
}

fn ke() -> MutexGuard<'static, Ke> {
    shared().ke.lock().unwrap_or_else(|p| p.into_inner())
}

fn wait<'a>(g: MutexGuard<'a, Ke>, t: Duration) -> MutexGuard<'a, Ke> {
    shared()
        .cv
        .wait_timeout(g, t)
        .unwrap_or_else(|p| p.into_inner())
        .0
}

fn start() -> Instant {
    static T0: OnceLock<Instant> = OnceLock::new();
    *T0.get_or_init(Instant::now)
}

/// Interrupt time in 100 ns units (starting well above zero).
pub fn interrupt_time() -> u64 {
    1_000_000_000 + start().elapsed().as_nanos() as u64 / 100
}

// ------------------------------------------------------------------ DPCs

pub fn initialize_dpc(dpc: *mut KDPC, routine: PKDEFERRED_ROUTINE, context: PVOID) {
    let mut k = ke();
    if k.dpcs.get(&(dpc as usize)).is_some_and(|d| d.queued) {
        crate::breach!("KeInitializeDpc on DPC {dpc:p} while it is queued");
    }
    k.dpcs.insert(
        dpc as usize,
        Dpc {
            routine,
            context: context as usize,
            queued: false,
            args: (0, 0),
        },
    );
}

fn queue_dpc(k: &mut Ke, dpc: usize, args: (usize, usize)) -> bool {
    let Some(d) = k.dpcs.get_mut(&dpc) else {
        crate::breach!("KeInsertQueueDpc on {dpc:#x}, never initialised with KeInitializeDpc");
        return false;
    };
    if d.queued {
        return false;
    }
    d.queued = true;
    d.args = args;
    k.dpc_seq += 1;
    let seq = k.dpc_seq;
    k.dpc_queue.push_back((dpc, seq));
    shared().cv.notify_all();
    true
}

pub fn insert_queue_dpc(dpc: *mut KDPC, a1: PVOID, a2: PVOID) -> bool {
    queue_dpc(&mut ke(), dpc as usize, (a1 as usize, a2 as usize))
}

pub fn remove_queue_dpc(dpc: *mut KDPC) -> bool {
    let mut k = ke();
    let was = k.dpcs.get_mut(&(dpc as usize)).is_some_and(|d| {
        let q = d.queued;
        d.queued = false;
        q
    });
    k.dpc_queue.retain(|&(d, _)| d != dpc as usize);
    was
}

/// KeFlushQueuedDpcs: returns once every DPC queued before the call ran.
pub fn flush_queued_dpcs() {
    irql::require_eq(PASSIVE_LEVEL, "KeFlushQueuedDpcs");
    drain_dpcs();
}

fn drain_dpcs() {
    let t0 = Instant::now();
    let mut k = ke();
    let target = k.dpc_seq;
    while k.dpc_queue.iter().any(|&(_, s)| s <= target)
        || k.dpc_running.is_some_and(|s| s <= target)
    {
        if t0.elapsed() > DRAIN_BOUND {
            crate::breach!("KeFlushQueuedDpcs: the DPC queue did not drain within {DRAIN_BOUND:?}");
            return;
        }
        k = wait(k, Duration::from_millis(5));
    }
}

fn dpc_thread() {
    loop {
        let mut k = ke();
        let Some((dpc, seq)) = k.dpc_queue.pop_front() else {
            drop(wait(k, Duration::from_millis(50)));
            continue;
        };
        let Some(d) = k.dpcs.get_mut(&dpc).map(|d| {
            d.queued = false;
            *d
        }) else {
            continue;
        };
        k.dpc_running = Some(seq);
        drop(k);
        irql::call_at(DISPATCH_LEVEL, "a DPC routine", || {
            // SAFETY: the routine and context the driver initialised the
            // DPC with; the DPC object is live (freeing it while queued is
            // caught in ExFreePool).
            unsafe {
                (d.routine)(
                    dpc as *mut KDPC,
                    d.context as PVOID,
                    d.args.0 as PVOID,
                    d.args.1 as PVOID,
                )
            }
        });
        ke().dpc_running = None;
        shared().cv.notify_all();
    }
}

// ---------------------------------------------------------------- timers

pub fn initialize_timer(t: *mut KTIMER) {
    let mut k = ke();
    if k.timers.get(&(t as usize)).is_some_and(|t| t.due.is_some()) {
        crate::breach!("KeInitializeTimer on timer {t:p} while it is set");
    }
    k.timers.insert(t as usize, Timer { due: None, dpc: 0 });
}

/// KeSetTimer: negative due times are relative (100 ns units), positive
/// ones absolute system time (treated as "now" here: the shell uses
/// relative ones only).
pub fn set_timer(t: *mut KTIMER, due: i64, dpc: *mut KDPC) -> bool {
    let mut k = ke();
    let Some(tm) = k.timers.get_mut(&(t as usize)) else {
        crate::breach!("KeSetTimer on {t:p}, never initialised with KeInitializeTimer");
        return false;
    };
    let after = if due < 0 {
        Duration::from_nanos(due.unsigned_abs().saturating_mul(100))
    } else {
        Duration::ZERO
    };
    let was = tm.due.is_some();
    tm.due = Some(Instant::now() + after);
    tm.dpc = dpc as usize;
    shared().cv.notify_all();
    was
}

pub fn cancel_timer(t: *mut KTIMER) -> bool {
    ke().timers
        .get_mut(&(t as usize))
        .is_some_and(|tm| tm.due.take().is_some())
}

fn timer_thread() {
    loop {
        let mut k = ke();
        let now = Instant::now();
        let mut next = now + Duration::from_millis(50);
        let mut fire = Vec::new();
        for tm in k.timers.values_mut() {
            match tm.due {
                Some(d) if d <= now => {
                    tm.due = None;
                    fire.push(tm.dpc);
                }
                Some(d) => next = next.min(d),
                None => {}
            }
        }
        for dpc in fire {
            if dpc != 0 {
                queue_dpc(&mut k, dpc, (0, 0));
            }
        }
        drop(wait(k, next.saturating_duration_since(Instant::now())));
    }
}

// ------------------------------------------------------------ work items

pub fn allocate_work_item() -> NDIS_HANDLE {
    let mut k = ke();
    k.next_work += 0x10;
    let h = k.next_work;
    k.works.insert(h, Work { queued: false });
    h as NDIS_HANDLE
}

pub fn queue_work_item(item: NDIS_HANDLE, routine: NDIS_IO_WORKITEM_ROUTINE, ctx: PVOID) {
    let mut k = ke();
    match k.works.get_mut(&(item as usize)) {
        None => crate::breach!("NdisQueueIoWorkItem on {item:p}: not an allocated work item"),
        Some(w) if w.queued => {
            crate::breach!("NdisQueueIoWorkItem on {item:p} while it is already queued")
        }
        Some(w) => {
            w.queued = true;
            k.work_queue
                .push_back((item as usize, routine, ctx as usize));
            shared().cv.notify_all();
        }
    }
}

pub fn free_work_item(item: NDIS_HANDLE) {
    let mut k = ke();
    match k.works.remove(&(item as usize)) {
        None => crate::breach!("NdisFreeIoWorkItem on {item:p}: not an allocated work item"),
        // Only a queued item may not be freed: the system dequeues an item
        // before it runs its routine, so the item may be freed while the
        // routine runs, even from inside it (IoFreeWorkItem remarks;
        // NdisQueueIoWorkItem remarks; NdisFreeIoWorkItem calls
        // IoFreeWorkItem). The I/O manager's reference on the device keeps
        // the driver loaded until the routine returns; `routines_running`
        // tracks that here.
        Some(w) if w.queued => {
            crate::breach!("NdisFreeIoWorkItem on {item:p} while it is queued")
        }
        Some(_) => {}
    }
}

fn work_thread() {
    loop {
        let mut k = ke();
        let Some((item, routine, ctx)) = k.work_queue.pop_front() else {
            drop(wait(k, Duration::from_millis(50)));
            continue;
        };
        if let Some(w) = k.works.get_mut(&item) {
            w.queued = false;
        }
        k.routines_running += 1;
        drop(k);
        irql::call_at(PASSIVE_LEVEL, "an NDIS work item routine", || {
            // SAFETY: the routine and context the driver queued.
            unsafe { routine(ctx as PVOID, item as NDIS_HANDLE) }
        });
        let mut k = ke();
        k.routines_running -= 1;
        drop(k);
        shared().cv.notify_all();
    }
}

// ----------------------------------------------------------- inspection

/// Kernel objects still live inside `[start, start + len)` (memory being
/// freed): a queued DPC or a set timer there is a use after free waiting to
/// happen. Records of initialised objects there are dropped.
pub fn live_in(start: usize, len: usize) -> Vec<String> {
    let inside = |a: usize| a >= start && a < start + len;
    let mut k = ke();
    let mut out = Vec::new();
    for (a, d) in &k.dpcs {
        if inside(*a) && d.queued {
            out.push(format!("a queued DPC at {a:#x}"));
        }
    }
    for (a, t) in &k.timers {
        if inside(*a) && t.due.is_some() {
            out.push(format!("a set timer at {a:#x}"));
        }
    }
    k.dpcs.retain(|a, _| !inside(*a));
    k.timers.retain(|a, _| !inside(*a));
    out
}

/// Work items still allocated (a leak once the driver unloaded).
pub fn work_items() -> usize {
    ke().works.len()
}

/// Waits until every DPC queued so far ran and no work item is queued or
/// running (bounded). DPCs that re-arm timers keep running: only those
/// queued before the call are waited for.
pub fn settle(t: Duration) -> bool {
    drain_dpcs();
    let t0 = Instant::now();
    let mut k = ke();
    loop {
        let busy = !k.work_queue.is_empty() || k.routines_running > 0;
        if !busy {
            return true;
        }
        if t0.elapsed() > t {
            return false;
        }
        k = wait(k, Duration::from_millis(5));
    }
}
