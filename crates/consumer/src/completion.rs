//! How a consumer learns that something finished: request and close
//! completions (NDK_FN_REQUEST_COMPLETION, NDK_FN_CLOSE_COMPLETION) as a
//! boxed callback ([`Req`]) or a waitable ([`Waiter`]), and the CQ
//! notification as a counter to wait on ([`Kicks`]) or a serialized
//! drive ([`Drive`]).
//!
//! A call that returns STATUS_PENDING completes exactly once through its
//! callback; any other status means the callback will not run (the
//! NDK_FN_REQUEST_COMPLETION and NDK_FN_CLOSE_COMPLETION pages). A close
//! never fails: STATUS_SUCCESS, or STATUS_PENDING and CloseCompletion
//! later.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use ndkpi::{
    NDK_FN_CLOSE_COMPLETION, NDK_FN_REQUEST_COMPLETION, NTSTATUS, PVOID, STATUS_PENDING,
    STATUS_SUCCESS,
};

/// A boxed completion.
pub type ReqFn = Box<dyn FnOnce(NTSTATUS) + Send>;

/// The request completion of a [`Req`]: runs its function.
///
/// # Safety
/// `ctx` is a [`Req::ctx`] whose call pended; called once.
pub unsafe extern "system" fn req_done(ctx: PVOID, status: NTSTATUS) {
    // SAFETY: `ctx` came from `Req::ctx` of a call that pended, and a
    // request completes exactly once.
    let f = unsafe { Box::from_raw(ctx.cast::<ReqFn>()) };
    f(status);
}

/// The close completion of a [`Req`]: runs its function with
/// STATUS_SUCCESS.
///
/// # Safety
/// As for [`req_done`].
pub unsafe extern "system" fn req_closed(ctx: PVOID) {
    // SAFETY: as for `req_done`.
    unsafe { req_done(ctx, STATUS_SUCCESS) };
}

/// A request's completion as a function: handed to the provider with
/// [`req_done`] or [`req_closed`] (STATUS_PENDING: it runs later, once),
/// or run at once with the inline status ([`Req::finish`]).
#[derive(Debug)]
pub struct Req(*mut ReqFn);

impl Req {
    /// The completion `f`.
    pub fn new(f: impl FnOnce(NTSTATUS) + Send + 'static) -> Req {
        Req(Box::into_raw(Box::new(Box::new(f) as ReqFn)))
    }
    /// The context to pass with [`req_done`] / [`req_closed`].
    pub fn ctx(&self) -> PVOID {
        self.0.cast()
    }
    /// Runs the completion now unless the call returned STATUS_PENDING;
    /// returns `status`.
    pub fn finish(self, status: NTSTATUS) -> NTSTATUS {
        if status != STATUS_PENDING {
            // SAFETY: the provider does not complete a request whose call
            // did not pend: the box is still ours.
            let f = unsafe { Box::from_raw(self.0) };
            f(status);
        }
        status
    }
}

/// How a request or a close completed: how often, and the last status.
#[derive(Debug, Default)]
pub struct Waiter {
    completions: AtomicUsize,
    status: Mutex<Option<NTSTATUS>>,
    cv: Condvar,
}

impl Waiter {
    /// Records a completion with `status` and wakes the waiters.
    pub fn complete(&self, status: NTSTATUS) {
        self.completions.fetch_add(1, Ordering::SeqCst);
        *self.status.lock().unwrap_or_else(|p| p.into_inner()) = Some(status);
        self.cv.notify_all();
    }

    /// The status, waiting up to `t` for it; None if it did not come.
    pub fn wait(&self, t: Duration) -> Option<NTSTATUS> {
        let g = self.status.lock().unwrap_or_else(|p| p.into_inner());
        let (g, _) = self
            .cv
            .wait_timeout_while(g, t, |s| s.is_none())
            .unwrap_or_else(|p| p.into_inner());
        *g
    }

    /// The status so far.
    pub fn status(&self) -> Option<NTSTATUS> {
        *self.status.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How often it completed.
    pub fn completions(&self) -> usize {
        self.completions.load(Ordering::SeqCst)
    }

    /// The context for [`waiter_done`] / [`waiter_closed`]: `self`, which
    /// its owner keeps alive until the adapter is closed (so that even a
    /// wrong second completion finds it, and is counted).
    pub fn ctx(&self) -> PVOID {
        (self as *const Waiter).cast_mut().cast()
    }
}

/// Request completion for a kept [`Waiter`] (see [`Waiter::ctx`]).
///
/// # Safety
/// `ctx` is a [`Waiter::ctx`] of a live waiter.
pub unsafe extern "system" fn waiter_done(ctx: PVOID, status: NTSTATUS) {
    // SAFETY: a `Waiter` kept alive until the adapter is closed.
    unsafe { &*ctx.cast::<Waiter>() }.complete(status);
}

/// CloseCompletion for a kept [`Waiter`], as [`waiter_done`].
///
/// # Safety
/// As for [`waiter_done`].
pub unsafe extern "system" fn waiter_closed(ctx: PVOID) {
    // SAFETY: as for `waiter_done`.
    unsafe { waiter_done(ctx, STATUS_SUCCESS) };
}

/// Makes a request that may pend, passing `call` the context of a
/// [`Req`] (whose completion is [`req_done`] or [`req_closed`]): the
/// status it returned, or if it pended its completion's, waited for up to
/// `t` (None if none came; the completion still owns its context, so a
/// late one is safe).
pub fn request_ctx(t: Duration, call: impl FnOnce(PVOID) -> NTSTATUS) -> Option<NTSTATUS> {
    let w = Arc::new(Waiter::default());
    let w2 = Arc::clone(&w);
    let r = Req::new(move |st| w2.complete(st));
    let ctx = r.ctx();
    r.finish(call(ctx));
    w.wait(t)
}

/// As [`request_ctx`], passing `call` the request completion too.
pub fn request(
    t: Duration,
    call: impl FnOnce(NDK_FN_REQUEST_COMPLETION, PVOID) -> NTSTATUS,
) -> Option<NTSTATUS> {
    request_ctx(t, |ctx| call(Some(req_done), ctx))
}

/// As [`request`], for a close: `call` gets a close completion.
pub fn close_request(
    t: Duration,
    call: impl FnOnce(NDK_FN_CLOSE_COMPLETION, PVOID) -> NTSTATUS,
) -> Option<NTSTATUS> {
    request_ctx(t, |ctx| call(Some(req_closed), ctx))
}

/// What CQ notifications kick: a count and a condition variable. The
/// consumer's thread reads the count, does its work, and waits for a kick
/// it has not seen.
#[derive(Debug, Default)]
pub struct Kicks {
    n: Mutex<u64>,
    cv: Condvar,
}

impl Kicks {
    /// One more kick.
    pub fn kick(&self) {
        *self.n.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        self.cv.notify_all();
    }

    /// The kicks so far.
    pub fn seen(&self) -> u64 {
        *self.n.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits up to `t` for a kick after the first `seen`.
    pub fn wait(&self, seen: u64, t: Duration) {
        let g = self.n.lock().unwrap_or_else(|p| p.into_inner());
        let _ = self
            .cv
            .wait_timeout_while(g, t, |k| *k == seen)
            .unwrap_or_else(|p| p.into_inner());
    }

    /// The context for [`kicks_notify`]: `self`, which must outlive the CQ.
    pub fn ctx(&self) -> PVOID {
        (self as *const Kicks).cast_mut().cast()
    }
}

/// The CQ notification that kicks the [`Kicks`] that is its context.
///
/// # Safety
/// `ctx` is a [`Kicks::ctx`] of kicks that outlive the CQ.
pub unsafe extern "system" fn kicks_notify(ctx: PVOID, _status: NTSTATUS) {
    // SAFETY: the CQ's creator made `ctx` a `Kicks` that outlives the CQ.
    unsafe { &*ctx.cast::<Kicks>() }.kick();
}

/// Serializes a CQ's processing between the notification callback and
/// the caller's thread without ever blocking the I/O thread or holding a
/// lock across a re-entrant delivery: whoever finds it busy leaves a note
/// and the holder goes round again.
#[derive(Debug, Default)]
pub struct Drive {
    /// Held by whoever processes the CQ; a thread that must wait for the
    /// processing to stop (teardown) may take it blocking.
    pub lock: parking_lot::Mutex<()>,
    /// A note left by a caller that found the lock held.
    pub missed: AtomicBool,
}

impl Drive {
    /// Runs `f` now, or makes the running holder run it again.
    pub fn run(&self, mut f: impl FnMut()) {
        loop {
            self.missed.store(true, Ordering::SeqCst);
            let Some(g) = self.lock.try_lock() else {
                return;
            };
            self.missed.store(false, Ordering::SeqCst);
            f();
            drop(g);
            if !self.missed.load(Ordering::SeqCst) {
                return;
            }
        }
    }
}

/// A one-shot status to wait for, set by the first of several reporters.
#[derive(Debug, Default)]
pub struct Signal {
    m: Mutex<Option<NTSTATUS>>,
    cv: Condvar,
}

impl Signal {
    /// Sets the status unless one is set; wakes the waiters.
    pub fn set(&self, s: NTSTATUS) {
        let mut g = self.m.lock().unwrap_or_else(|p| p.into_inner());
        if g.is_none() {
            *g = Some(s);
        }
        self.cv.notify_all();
    }
    /// The status so far.
    pub fn get(&self) -> Option<NTSTATUS> {
        *self.m.lock().unwrap_or_else(|p| p.into_inner())
    }
    /// The status, waiting up to `t`.
    pub fn wait(&self, t: Duration) -> Option<NTSTATUS> {
        let end = Instant::now() + t;
        let mut g = self.m.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(s) = *g {
                return Some(s);
            }
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            g = self
                .cv
                .wait_timeout(g, left)
                .map(|r| r.0)
                .unwrap_or_else(|p| p.into_inner().0);
        }
    }
}
