//! CPU cost per byte: the bandwidth modes' CPU seconds per GB moved,
//! beside a TCP stream's on the same path in the same run (issue 18; what
//! SMB over TCP would cost instead).

use host::cpu::{CpuWindow, secs_per_gb};
use host::tcp_baseline::{self, Sink, TcpGoodput};

use super::*;

/// The TCP baseline's outcome: its figures, or why there are none.
pub(super) type TcpBaseline = Option<Result<TcpGoodput, String>>;

/// An in-process TCP sink for the embedded run, on the server's address.
pub(super) fn embedded_sink(ip: IpAddr) -> Option<Sink> {
    tcp_baseline::spawn_sink(SocketAddr::new(ip, 0)).ok()
}

/// One TCP stream of `block`-byte writes for `duration` to `to`.
pub(super) fn measure_tcp(to: SocketAddr, block: usize, duration: Duration) -> TcpBaseline {
    Some(
        tcp_baseline::measure(to, block, duration)
            .map_err(|e| format!("TCP baseline to {to}: {e}")),
    )
}

/// Runs `f` (a bandwidth mode) and returns what it returned and the
/// process's CPU time it took.
pub(super) fn with_cpu<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let w = CpuWindow::start();
    let r = f();
    (r, w.elapsed())
}

/// CPU seconds per GB of a mode run, if it moved bytes and was timed.
pub(super) fn mode_cpu_per_gb(r: &ModeRun) -> Option<f64> {
    secs_per_gb(r.cpu?, r.report.as_ref()?.bytes)
}

pub(super) fn tcp_json(t: &TcpBaseline) -> Value {
    match t {
        None => Value::Null,
        Some(Err(e)) => json!({ "error": e }),
        Some(Ok(g)) => json!({
            "block_bytes": g.block,
            "bytes": g.bytes,
            "seconds": g.elapsed.as_secs_f64(),
            "bytes_per_sec": g.bytes_per_sec(),
            "cpu_seconds": g.cpu.as_secs_f64(),
            "cpu_s_per_gb": g.cpu_secs_per_gb(),
        }),
    }
}

pub(super) fn print_tcp(t: &TcpBaseline) {
    match t {
        None => {}
        Some(Err(e)) => println!("  TCP goodput        unavailable: {e}"),
        Some(Ok(g)) => println!(
            "  TCP goodput        {:>7} B writes      {:>12}   (CPU {:.3} s/GB, this process)",
            g.block,
            fmt_rate(g.bytes_per_sec()),
            g.cpu_secs_per_gb().unwrap_or(f64::NAN),
        ),
    }
}

/// The mode's CPU figure with TCP's beside it, as JSON fields.
pub(super) fn mode_cost_json(r: &ModeRun, base: &Baselines) -> Value {
    let tcp = match &base.tcp {
        Some(Ok(g)) => g.cpu_secs_per_gb(),
        _ => None,
    };
    let own = mode_cpu_per_gb(r);
    json!({
        "cpu_seconds": r.cpu.map(|d| d.as_secs_f64()),
        "cpu_s_per_gb": own,
        "tcp_cpu_s_per_gb": tcp,
        "ratio_to_tcp": own.zip(tcp).filter(|(_, t)| *t > 0.0).map(|(o, t)| o / t),
    })
}

/// The text line under a bandwidth mode.
pub(super) fn print_mode_cost(r: &ModeRun, base: &Baselines) {
    let Some(own) = mode_cpu_per_gb(r) else {
        return;
    };
    match &base.tcp {
        Some(Ok(g)) if g.cpu_secs_per_gb().is_some_and(|t| t > 0.0) => {
            let t = g.cpu_secs_per_gb().unwrap_or(1.0);
            println!(
                "      CPU {own:.3} s/GB vs TCP {t:.3} s/GB (same run, same path, this process): \
                 {:.2}x",
                own / t
            );
        }
        _ => println!("      CPU {own:.3} s/GB (this process)"),
    }
}
