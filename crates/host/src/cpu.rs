//! CPU time of this process and CPU seconds per gigabyte moved: what a
//! transfer costs the machine, beside how fast it went (issue 18: ndkperf
//! write_bw beside TCP on the same path).
//!
//! The figure is getrusage(RUSAGE_SELF) user + system time (POSIX
//! getrusage; Linux getrusage(2)): every thread of the process, so with
//! the embedded server it counts both ends, the same for the RDMA modes and
//! the in-process TCP baseline.

use std::time::Duration;

use nix::sys::resource::{UsageWho, getrusage};

/// User + system CPU time this process has used so far (zero if the call
/// fails, which getrusage(2) only does for a bad argument).
pub fn process_cpu() -> Duration {
    getrusage(UsageWho::RUSAGE_SELF).map_or(Duration::ZERO, |u| {
        let t = |tv: nix::sys::time::TimeVal| {
            Duration::new(
                u64::try_from(tv.tv_sec()).unwrap_or(0),
                u32::try_from(tv.tv_usec()).unwrap_or(0) * 1000,
            )
        };
        t(u.user_time()) + t(u.system_time())
    })
}

/// CPU time spent between two readings of [`process_cpu`].
#[derive(Debug, Clone, Copy)]
pub struct CpuWindow(Duration);

impl CpuWindow {
    /// Starts a window now.
    pub fn start() -> Self {
        CpuWindow(process_cpu())
    }

    /// CPU time since [`CpuWindow::start`].
    pub fn elapsed(&self) -> Duration {
        process_cpu().saturating_sub(self.0)
    }
}

/// CPU seconds per 10^9 bytes moved, `None` when nothing moved.
pub fn secs_per_gb(cpu: Duration, bytes: u64) -> Option<f64> {
    (bytes > 0).then(|| cpu.as_secs_f64() / (bytes as f64 / 1e9))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_work_shows_up_as_cpu_time() {
        let w = CpuWindow::start();
        let t = std::time::Instant::now();
        let mut x = 0u64;
        // Spin until the window shows 20 ms of CPU: on a loaded machine the
        // wall time it takes varies, but busy work must register within
        // seconds, and a process whose other threads are the test
        // harness's cannot have used minutes.
        let cpu = loop {
            for _ in 0..100_000 {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
            }
            let cpu = w.elapsed();
            if cpu >= Duration::from_millis(20) || t.elapsed() > Duration::from_secs(20) {
                break cpu;
            }
        };
        assert!(
            cpu >= Duration::from_millis(20),
            "{cpu:?} in {:?}",
            t.elapsed()
        );
        assert!(cpu < Duration::from_secs(60), "{cpu:?}");
    }

    #[test]
    fn per_gigabyte() {
        assert_eq!(
            secs_per_gb(Duration::from_secs(2), 4_000_000_000),
            Some(0.5)
        );
        assert_eq!(secs_per_gb(Duration::from_secs(1), 0), None);
    }
}
