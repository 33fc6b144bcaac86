//! The TCP baseline: goodput and CPU seconds per gigabyte of one TCP
//! stream on the same path as the RDMA modes, since SMB over TCP is what a
//! user would run instead of SMB Direct (issue 18).
//!
//! A sink ([`spawn_sink`]) listens on a TCP port (ndkperf's server uses the
//! same number as its UDP baselines), reads each connection to its end and
//! answers with the byte count it received (u64, little-endian). The client
//! ([`measure`]) writes blocks of the message size for the duration, shuts
//! its side down and waits for that count.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::cpu::{CpuWindow, secs_per_gb};

/// How long the sink waits between looks at its stop flag.
const POLL: Duration = Duration::from_millis(20);
/// Longest wait for the sink's count after the client's last byte, and
/// for any one write to make progress.
const COUNT_WAIT: Duration = Duration::from_secs(10);
/// A connection that sends nothing for this long is dropped (a client gone
/// without closing must not hold the sink from the next one).
const IDLE: Duration = Duration::from_secs(30);

/// A TCP sink on its own thread; stops when dropped.
#[derive(Debug)]
pub struct Sink {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    received: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

/// Starts a sink bound to `bind` (port 0: any free port).
pub fn spawn_sink(bind: SocketAddr) -> io::Result<Sink> {
    let listener = TcpListener::bind(bind)?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let received = Arc::new(AtomicU64::new(0));
    let count = Arc::clone(&received);
    let thread = std::thread::Builder::new()
        .name("ndkperf-tcp-sink".into())
        .spawn(move || {
            while !flag.load(Ordering::Acquire) {
                match listener.accept() {
                    Ok((s, _)) => {
                        let _ = drain(s, &flag, &count);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::sleep(POLL),
                    Err(_) => std::thread::sleep(POLL),
                }
            }
        })?;
    Ok(Sink {
        addr,
        stop,
        received,
        thread: Some(thread),
    })
}

/// Reads `s` to its end (or until `stop`), then writes the count.
fn drain(mut s: TcpStream, stop: &AtomicBool, received: &AtomicU64) -> io::Result<()> {
    s.set_nonblocking(false)?;
    s.set_read_timeout(Some(POLL * 10))?;
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    let mut heard = Instant::now();
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                total += n as u64;
                received.fetch_add(n as u64, Ordering::Relaxed);
                heard = Instant::now();
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                if stop.load(Ordering::Acquire) || heard.elapsed() > IDLE {
                    return Ok(());
                }
            }
            Err(e) => return Err(e),
        }
    }
    s.write_all(&total.to_le_bytes())
}

impl Sink {
    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Bytes it has received so far (a server's sign of activity).
    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One TCP stream's figures.
#[derive(Debug, Clone, Copy)]
pub struct TcpGoodput {
    /// Bytes the sink counted.
    pub bytes: u64,
    /// Connect to the sink's count.
    pub elapsed: Duration,
    /// This process's CPU time over the same span (both ends when the
    /// sink is in the process).
    pub cpu: Duration,
    /// Bytes per write call.
    pub block: usize,
}

impl TcpGoodput {
    /// Goodput in bytes per second.
    pub fn bytes_per_sec(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 { self.bytes as f64 / s } else { 0.0 }
    }

    /// CPU seconds per 10^9 bytes moved.
    pub fn cpu_secs_per_gb(&self) -> Option<f64> {
        secs_per_gb(self.cpu, self.bytes)
    }
}

/// Streams blocks of `block` bytes to the sink at `to` for `duration`.
pub fn measure(to: SocketAddr, block: usize, duration: Duration) -> io::Result<TcpGoodput> {
    let cpu = CpuWindow::start();
    let t0 = Instant::now();
    let mut s = TcpStream::connect_timeout(&to, COUNT_WAIT)?;
    s.set_nodelay(true)?;
    s.set_write_timeout(Some(COUNT_WAIT))?;
    let data = vec![0x5Au8; block.max(1)];
    while t0.elapsed() < duration {
        s.write_all(&data)?;
    }
    s.shutdown(Shutdown::Write)?;
    s.set_read_timeout(Some(COUNT_WAIT))?;
    let mut count = [0u8; 8];
    s.read_exact(&mut count)?;
    Ok(TcpGoodput {
        bytes: u64::from_le_bytes(count),
        elapsed: t0.elapsed(),
        cpu: cpu.elapsed(),
        block: data.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_stream_is_counted_whole_with_its_cpu_time() {
        let sink = spawn_sink("127.0.0.1:0".parse().unwrap()).unwrap();
        let g = measure(sink.addr(), 65536, Duration::from_millis(100)).unwrap();
        // Whole blocks only, at least one, every one counted by the sink.
        assert!(g.bytes >= 65536, "{g:?}");
        assert_eq!(g.bytes % 65536, 0, "{g:?}");
        assert!(g.elapsed >= Duration::from_millis(100), "{g:?}");
        // Moving bytes over loopback costs CPU time (the window is the
        // whole process's, so other tests' threads may add to it).
        assert!(g.cpu > Duration::ZERO, "{g:?}");
        assert!(g.cpu < Duration::from_secs(60), "{g:?}");
        assert!(g.cpu_secs_per_gb().is_some_and(|c| c > 0.0));
    }

    #[test]
    fn nothing_listening_is_an_error() {
        // Bind then drop: the port is (very likely) closed now.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        assert!(measure(port, 1024, Duration::from_millis(10)).is_err());
    }
}
