//! The event loop's wake-up timer: a `timerfd` kept armed across waits
//! and re-armed only when a wait needs it to fire sooner.
//!
//! A poll timeout arms and cancels a kernel timer on every wait. Where
//! that timer is the CPU's next event (a deadline under a tick away, as
//! the RC probe deadline of a few hundred microseconds is), arming and
//! cancelling it reprogram the CPU's timer device, which traps to the
//! hypervisor in a VM. A SEND round trip sleeps about four times (two per
//! loop), and on a 2-core Firecracker guest this put a ~45 us floor under
//! `ndkperf send_lat`, gone when the waits' timeouts were forced past a
//! tick (docs/performance.md, send_lat). Deadlines mostly move later
//! (each ACK pushes the probe deadline out), so a timer left armed fires
//! at most once per deadline interval, early, and the turn it causes
//! re-arms it for the deadline then current (timerfd_create(2),
//! timerfd_settime(2)).

use std::os::fd::{AsFd, BorrowedFd};
use std::time::Duration;

use nix::sys::time::TimeSpec;
use nix::sys::timer::{Expiration, TimerSetTimeFlags};
use nix::sys::timerfd::{ClockId, TimerFd, TimerFlags};
use roce::time::Instant;

/// A one-shot `CLOCK_MONOTONIC` timerfd and the instant it is armed for.
#[derive(Debug)]
pub struct LoopTimer {
    fd: TimerFd,
    /// Armed to fire at this instant (the loop clock's), if armed.
    armed: Option<Instant>,
    /// Times the timer was (re-)armed.
    arms: u64,
}

impl LoopTimer {
    /// A disarmed timer.
    pub fn new() -> nix::Result<Self> {
        let fd = TimerFd::new(
            ClockId::CLOCK_MONOTONIC,
            TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
        )?;
        Ok(LoopTimer {
            fd,
            armed: None,
            arms: 0,
        })
    }

    /// Makes the timer fire no later than `at`, which is `left` from now:
    /// re-arms only if it is disarmed or armed for later. False if the
    /// kernel refused (the caller then bounds its wait by `left` itself).
    pub fn fire_by(&mut self, at: Instant, left: Duration) -> bool {
        if self.armed.is_some_and(|a| a <= at) {
            return true;
        }
        // A zero one-shot time disarms: arm for the smallest nonzero.
        let left = left.max(Duration::from_nanos(1));
        let set = self.fd.set(
            Expiration::OneShot(TimeSpec::from_duration(left)),
            TimerSetTimeFlags::empty(),
        );
        if set.is_err() {
            self.armed = None;
            return false;
        }
        self.armed = Some(at);
        self.arms += 1;
        true
    }

    /// The timer fired (its fd polled readable): it is disarmed, and its
    /// expiration count cleared so that it polls readable no more.
    pub fn fired(&mut self) {
        self.armed = None;
        let _ = self.fd.unset();
    }

    /// Times the timer was (re-)armed.
    pub fn arms(&self) -> u64 {
        self.arms
    }

    /// The fd to poll (readable once the timer fired).
    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
