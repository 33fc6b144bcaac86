//! The event loop that drives a sans-IO endpoint over a [`Transport`].
//!
//! One dedicated I/O thread per endpoint runs turns of: receive a batch
//! (no lock held), then under the endpoint's lock feed the datagrams, fire
//! due timers and collect datagrams to send, then (lock released) send the
//! batch, call the *after-unlock hook*, and wait.
//!
//! * Every wait is bounded: the wait for the socket or the waker ends at the
//!   endpoint's next deadline or after [`LoopConfig::max_wait`], whichever
//!   is sooner, so a stop request or a lost wake-up costs at most that.
//!   That bound is a `timerfd` polled with the socket and re-armed only
//!   when a wait needs it sooner ([`crate::loop_timer`]), not a poll
//!   timeout that arms and cancels a kernel timer on every wait.
//! * Other threads reach the endpoint through its shared handle and then
//!   call [`Waker::wake`] (an `eventfd`, polled together with the socket) so
//!   the loop sends what they queued without waiting out its timeout. A
//!   wake writes the `eventfd` only while the loop sleeps (or is about to),
//!   and wakes from the loop's own thread (upcalls it makes) are free: the
//!   turn in progress polls for what they queued anyway.
//! * What the loop drives is a [`Driven`] handle: for a `Mutex<E>` a turn
//!   holds the lock around the [`Endpoint`] calls, and the hook runs after
//!   it is released; an endpoint that locks itself (the NDK adapter, whose
//!   I/O calls take the adapter lock and make the consumer's upcalls after
//!   releasing it) is driven with no lock of the loop held at all.

use std::cell::Cell;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use nix::poll::{PollFd, PollFlags};
use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::time::TimeSpec;
use roce::device::{Device, MAX_DATAGRAM, Transmit};
use roce::framing::{HEADROOM, IpMode};
use roce::rc::Memory;
use roce::time::Instant;

use crate::clock::Clock;
use crate::io::{Datagram, SendBatch, Transport};
use crate::loop_timer::LoopTimer;
use crate::pcap::PcapWriter;

/// A received datagram, as the endpoint takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Incoming<'a> {
    /// A UDP payload from a UDP socket, with its addressing.
    Udp {
        /// Sender's address and port.
        src: SocketAddr,
        /// Our address and port, as the sender addressed it.
        dst: SocketAddr,
        /// The RoCE packet.
        payload: &'a [u8],
    },
    /// A whole IP datagram from a raw socket.
    Ip(&'a [u8]),
}

/// What the loop drives: a sans-IO datagram endpoint. The loop calls these
/// on its I/O thread, so they must not block.
pub trait Endpoint {
    /// A datagram arrived.
    fn handle_datagram(&mut self, now: Instant, datagram: Incoming<'_>);
    /// Writes the next datagram to send into `buf` (at least
    /// [`MAX_DATAGRAM`] bytes).
    fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit>;
    /// The next deadline, if any.
    fn poll_timeout(&self) -> Option<Instant>;
    /// Runs what is due at `now`.
    fn handle_timeout(&mut self, now: Instant);
    /// The link refused a datagram this endpoint sent to `dst` (as its
    /// transport frames it) for its size; by default nothing happens.
    fn handle_refused(&mut self, now: Instant, dst: SocketAddr, datagram: &[u8]) {
        let _ = (now, dst, datagram);
    }
}

/// How the loop reaches its endpoint for one turn.
pub trait Driven: Send + Sync + 'static {
    /// The endpoint for the duration of one turn (for a mutex: its guard).
    type Turn<'a>: Endpoint
    where
        Self: 'a;
    /// Begins a turn.
    fn turn(&self) -> Self::Turn<'_>;
}

impl<E: Endpoint + Send + 'static> Driven for Mutex<E> {
    type Turn<'a> = MutexGuard<'a, E>;
    fn turn(&self) -> MutexGuard<'_, E> {
        lock(self)
    }
}

impl<E: Endpoint + ?Sized> Endpoint for MutexGuard<'_, E> {
    fn handle_datagram(&mut self, now: Instant, datagram: Incoming<'_>) {
        (**self).handle_datagram(now, datagram)
    }
    fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        (**self).poll_transmit(now, buf)
    }
    fn poll_timeout(&self) -> Option<Instant> {
        (**self).poll_timeout()
    }
    fn handle_refused(&mut self, now: Instant, dst: SocketAddr, datagram: &[u8]) {
        (**self).handle_refused(now, dst, datagram)
    }
    fn handle_timeout(&mut self, now: Instant) {
        (**self).handle_timeout(now)
    }
}

impl<M: Memory + Send> Endpoint for Device<M> {
    fn handle_datagram(&mut self, now: Instant, datagram: Incoming<'_>) {
        match datagram {
            Incoming::Udp { src, dst, payload } => self.handle_udp(now, src, dst, payload),
            Incoming::Ip(d) => self.handle_ip(now, d),
        }
    }

    fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        Device::poll_transmit(self, now, buf)
    }

    fn poll_timeout(&self) -> Option<Instant> {
        Device::poll_timeout(self)
    }

    fn handle_timeout(&mut self, now: Instant) {
        Device::handle_timeout(self, now)
    }
}

/// Where RoCE datagrams really go in UDP mode.
///
/// A device in UDP mode sends from its socket's port to the *same* port of
/// the peer, and its ICRCs cover both ports (crates/roce `DeviceConfig`:
/// `udp_source_port` must be the socket's real port). Endpoints on separate
/// addresses (127.0.0.1 and 127.0.0.2, or two hosts) on one port need no
/// routing. Two endpoints on one address need two ports: then
/// `peer_port` sends every datagram to the peer's real port, and presents
/// each received datagram as addressed to the port the sender addressed it
/// to (its own, by the convention above), so the ICRCs still match. Raw
/// mode ignores this.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Routing {
    /// The peer's real port, when it differs from ours.
    pub peer_port: Option<u16>,
}

impl Routing {
    /// The peer's socket is on `port` of the same address (loopback pairs).
    pub fn peer_on(port: u16) -> Self {
        Routing {
            peer_port: Some(port),
        }
    }

    /// Where a datagram the device addressed to `dst` goes.
    pub fn outgoing(&self, dst: SocketAddr) -> SocketAddr {
        match self.peer_port {
            Some(p) => SocketAddr::new(dst.ip(), p),
            None => dst,
        }
    }

    /// The destination a datagram from `src` to our socket at `dst` is
    /// presented with.
    pub fn incoming(&self, src: SocketAddr, dst: SocketAddr) -> SocketAddr {
        match self.peer_port {
            Some(_) => SocketAddr::new(dst.ip(), src.port()),
            None => dst,
        }
    }
}

#[derive(Debug)]
struct WakerInner {
    fd: EventFd,
    /// The loop is in (or entering) its wait: a wake must write the fd.
    sleeping: AtomicBool,
    /// A wake arrived since the loop last looked.
    pending: AtomicBool,
}

thread_local! {
    /// The waker of the loop whose I/O thread this is (its address).
    static IO_LOOP: Cell<usize> = const { Cell::new(0) };
}

/// Wakes an event loop from another thread (an `eventfd`, written only
/// when the loop sleeps).
#[derive(Debug, Clone)]
pub struct Waker(Arc<WakerInner>);

impl Waker {
    /// A waker for a loop to be spawned with it ([`LoopConfig::waker`]).
    pub fn new() -> io::Result<Self> {
        let fd = EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)?;
        Ok(Waker(Arc::new(WakerInner {
            fd,
            sleeping: AtomicBool::new(false),
            pending: AtomicBool::new(false),
        })))
    }

    fn id(&self) -> usize {
        Arc::as_ptr(&self.0) as usize
    }

    /// Makes the loop run a turn soon (at once if it is waiting). Free on
    /// the loop's own thread, whose turn polls for the work anyway.
    pub fn wake(&self) {
        if IO_LOOP.with(Cell::get) == self.id() {
            return;
        }
        // Dekker with the loop's `sleeping` then `pending`: either it sees
        // `pending`, or this sees `sleeping` and writes the fd.
        self.0.pending.store(true, Ordering::SeqCst);
        if self.0.sleeping.load(Ordering::SeqCst) {
            // Only fails when the counter would overflow: then it is
            // readable already.
            let _ = self.0.fd.write(1);
        }
    }

    fn drain(&self) {
        let _ = self.0.fd.read();
    }
}

/// The after-turn hook: called on the I/O thread after every turn, with
/// no turn in progress (for a `Mutex<E>`, its lock released).
pub type Hook<D> = Box<dyn FnMut(&D) + Send>;

/// How an event loop runs.
pub struct LoopConfig {
    /// Name of the I/O thread.
    pub name: String,
    /// Longest single wait (the bound on stop and lost-wake latency).
    pub max_wait: Duration,
    /// Datagrams collected per turn at most before sending.
    pub max_batch: usize,
    /// Port translation in UDP mode.
    pub routing: Routing,
    /// Record every datagram sent and received.
    pub pcap: Option<PcapWriter<Box<dyn io::Write + Send>>>,
    /// The waker to use (one made before the loop, e.g. for a platform
    /// that must wake it); a new one if `None`.
    pub waker: Option<Waker>,
    /// Busy polling: after a turn that received, sent or was woken, the
    /// loop keeps turning without sleeping for this long (zero: never).
    /// A datagram or a post that comes within it costs no wake-up of a
    /// sleeping thread, which on a virtual machine's idle vCPU is most of
    /// a small message's round trip; the price is a CPU kept busy.
    pub busy_poll: Duration,
}

impl fmt::Debug for LoopConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoopConfig")
            .field("name", &self.name)
            .field("max_wait", &self.max_wait)
            .field("max_batch", &self.max_batch)
            .field("routing", &self.routing)
            .field("pcap", &self.pcap.is_some())
            .field("waker", &self.waker.is_some())
            .field("busy_poll", &self.busy_poll)
            .finish()
    }
}

impl Default for LoopConfig {
    fn default() -> Self {
        LoopConfig {
            name: "ndkrs-io".into(),
            max_wait: Duration::from_millis(50),
            max_batch: 64,
            routing: Routing::default(),
            pcap: None,
            waker: None,
            busy_poll: Duration::ZERO,
        }
    }
}

/// What a loop did, returned when it stops.
#[derive(Debug, Default, Clone)]
pub struct LoopStats {
    /// Turns run.
    pub turns: u64,
    /// Datagrams received and handed to the endpoint.
    pub received: u64,
    /// Datagrams handed to the OS.
    pub sent: u64,
    /// Datagrams dropped on a send error.
    pub send_dropped: u64,
    /// Receive calls that failed.
    pub recv_errors: u64,
    /// Frames written to the pcap.
    pub pcap_frames: u64,
    /// Frames left out of the pcap for its size cap.
    pub pcap_skipped: u64,
    /// The last OS error seen, if any.
    pub last_error: Option<String>,
    /// Times the wake-up timer was (re-)armed (0: no timerfd; every
    /// wait's poll timeout bounded it instead).
    pub timer_arms: u64,
    /// Waits bounded by a poll timeout of their own (no timerfd, or the
    /// kernel refused to arm it): each arms and cancels a kernel timer.
    pub timed_polls: u64,
    /// Waits entered (the thread may have slept): with busy polling, only
    /// after [`LoopConfig::busy_poll`] passed without work.
    pub waits: u64,
}

fn lock<E>(m: &Mutex<E>) -> MutexGuard<'_, E> {
    // A panic on another thread must not wedge the I/O thread.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A running event loop; stopping or dropping it ends the I/O thread
/// within [`LoopConfig::max_wait`] plus one turn.
#[derive(Debug)]
pub struct EventLoop<D> {
    endpoint: Arc<D>,
    waker: Waker,
    stop: Arc<AtomicBool>,
    received: Arc<AtomicU64>,
    local: SocketAddr,
    clock: Clock,
    thread: Option<JoinHandle<LoopStats>>,
}

impl<D: Driven> EventLoop<D> {
    /// Starts the I/O thread.
    pub fn spawn(
        endpoint: Arc<D>,
        transport: Box<dyn Transport>,
        clock: Clock,
        mut config: LoopConfig,
        hook: Option<Hook<D>>,
    ) -> io::Result<Self> {
        let waker = match config.waker.take() {
            Some(w) => w,
            None => Waker::new()?,
        };
        let stop = Arc::new(AtomicBool::new(false));
        let received = Arc::new(AtomicU64::new(0));
        let local = transport.local_addr();
        let runner = Runner {
            endpoint: Arc::clone(&endpoint),
            transport,
            clock,
            waker: waker.clone(),
            stop: Arc::clone(&stop),
            received: Arc::clone(&received),
            hook,
            batch: SendBatch::with_headroom(
                config.max_batch * 2,
                config.max_batch * 2 * MAX_DATAGRAM,
                HEADROOM,
            ),
            stats: LoopStats::default(),
            timer: LoopTimer::new().ok(),
            config,
        };
        let thread = std::thread::Builder::new()
            .name(runner.config.name.clone())
            .spawn(move || runner.run())?;
        Ok(EventLoop {
            endpoint,
            waker,
            stop,
            received,
            local,
            clock,
            thread: Some(thread),
        })
    }

    /// The endpoint (for a mutex: lock it, then [`EventLoop::wake`]).
    pub fn endpoint(&self) -> &Arc<D> {
        &self.endpoint
    }

    /// A handle other threads use to wake the loop.
    pub fn waker(&self) -> Waker {
        self.waker.clone()
    }

    /// Wakes the loop.
    pub fn wake(&self) {
        self.waker.wake();
    }

    /// The transport's bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The clock the loop runs on.
    pub fn clock(&self) -> Clock {
        self.clock
    }

    /// The count of datagrams received so far, shared: a waiting
    /// consumer tells traffic still under way from a peer gone quiet by
    /// watching it move.
    pub fn received_counter(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.received)
    }

    /// Stops the I/O thread and waits for it (bounded by one wait).
    pub fn stop(mut self) -> LoopStats {
        self.shutdown()
    }

    fn shutdown(&mut self) -> LoopStats {
        self.stop_and_join()
    }
}

impl<E: Endpoint + Send + 'static> EventLoop<Mutex<E>> {
    /// Runs `f` on the endpoint under its lock with the clock's now, then
    /// wakes the loop so that what `f` queued goes out.
    pub fn with<R>(&self, f: impl FnOnce(&mut E, Instant) -> R) -> R {
        let r = {
            let mut ep = lock(&self.endpoint);
            f(&mut ep, self.clock.now())
        };
        self.waker.wake();
        r
    }
}

impl<D> EventLoop<D> {
    fn stop_and_join(&mut self) -> LoopStats {
        self.stop.store(true, Ordering::Release);
        self.waker.wake();
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(stats)) => stats,
            Some(Err(_)) => LoopStats {
                last_error: Some("the I/O thread panicked".into()),
                ..LoopStats::default()
            },
            None => LoopStats::default(),
        }
    }
}

impl<E> Drop for EventLoop<E> {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        self.waker.wake();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Runner<D> {
    endpoint: Arc<D>,
    transport: Box<dyn Transport>,
    clock: Clock,
    waker: Waker,
    stop: Arc<AtomicBool>,
    received: Arc<AtomicU64>,
    hook: Option<Hook<D>>,
    batch: SendBatch,
    stats: LoopStats,
    /// The wake-up timer; `None` if the kernel gave no timerfd (then each
    /// wait bounds itself with a poll timeout).
    timer: Option<LoopTimer>,
    config: LoopConfig,
}

impl<D: Driven> Runner<D> {
    fn run(mut self) -> LoopStats {
        IO_LOOP.with(|c| c.set(self.waker.id()));
        let spin = self.config.busy_poll;
        // Polling starts with the first work, not with the loop.
        let mut last_work: Option<std::time::Instant> = None;
        while !self.stop.load(Ordering::Acquire) {
            let (more, worked) = self.turn();
            if more && self.batch.is_empty() {
                continue;
            }
            if !spin.is_zero() {
                // A wake while spinning needs no fd write (the loop is not
                // `sleeping`); its work is polled by the next turn.
                let woken = self.waker.0.pending.swap(false, Ordering::SeqCst);
                let now = std::time::Instant::now();
                if worked || woken {
                    last_work = Some(now);
                }
                if last_work.is_some_and(|t| now.duration_since(t) < spin) {
                    std::thread::yield_now();
                    continue;
                }
            }
            self.stats.waits += 1;
            self.wait();
        }
        if let Some(p) = self.config.pcap.as_mut() {
            if let Err(e) = p.finish() {
                self.stats.last_error = Some(e.to_string());
            }
            self.stats.pcap_frames = p.frames();
            self.stats.pcap_skipped = p.skipped();
        }
        self.stats.timer_arms = self.timer.as_ref().map_or(0, LoopTimer::arms);
        self.stats
    }

    fn note_error(&mut self, e: &dyn fmt::Display) {
        self.stats.last_error = Some(e.to_string());
    }

    /// One turn: whether there may be more to do at once, and whether it
    /// received or sent anything.
    fn turn(&mut self) -> (bool, bool) {
        self.stats.turns += 1;
        let n = match self.transport.recv() {
            Ok(n) => n,
            Err(e) => {
                self.stats.recv_errors += 1;
                self.note_error(&e);
                0
            }
        };
        let ip_mode = self.transport.ip_mode();
        let routing = self.config.routing;
        let now = self.clock.now();
        if let Some(p) = self.config.pcap.as_mut() {
            for i in 0..n {
                if let Some(d) = self.transport.received(i) {
                    let _ = record(p, ip_mode, routing, d);
                }
            }
        }
        let mut produced = 0;
        {
            let mut ep = self.endpoint.turn();
            for i in 0..n {
                let Some(d) = self.transport.received(i) else {
                    continue;
                };
                let incoming = match ip_mode {
                    IpMode::Udp => Incoming::Udp {
                        src: d.src,
                        dst: routing.incoming(d.src, d.dst),
                        payload: d.data,
                    },
                    IpMode::Raw => Incoming::Ip(d.data),
                };
                ep.handle_datagram(now, incoming);
            }
            if ep.poll_timeout().is_some_and(|t| t <= now) {
                ep.handle_timeout(now);
            }
            // Each datagram is built where it is sent from: the endpoint
            // writes it into the batch, its headroom in front.
            let pcap = &mut self.config.pcap;
            while produced < self.config.max_batch && self.batch.has_room_in_place(MAX_DATAGRAM) {
                let pushed = self.batch.push_in_place(MAX_DATAGRAM, |buf| {
                    let t = ep.poll_transmit(now, buf)?;
                    let s = t.sealed;
                    let range = match ip_mode {
                        IpMode::Udp => s.udp_payload_start..s.end,
                        IpMode::Raw => s.ip_start..s.end,
                    };
                    if let (Some(p), Some(bytes)) = (pcap.as_mut(), buf.get(range.clone())) {
                        let _ = match ip_mode {
                            IpMode::Udp => p.write_udp(t.src, t.dst, bytes),
                            IpMode::Raw => p.write_ip(bytes),
                        };
                    }
                    Some((routing.outgoing(t.dst), range))
                });
                if pushed.is_none() {
                    break;
                }
                produced += 1;
            }
        }
        self.stats.received += n as u64;
        if n > 0 {
            self.received.fetch_add(n as u64, Ordering::Relaxed);
        }
        if !self.batch.is_empty() {
            let r = self.transport.send(&mut self.batch);
            self.stats.sent += r.sent as u64;
            self.stats.send_dropped += r.dropped as u64;
            if let Some(e) = r.error {
                self.note_error(&e);
            }
            if r.refused.iter().next().is_some() {
                let now = self.clock.now();
                let mut ep = self.endpoint.turn();
                for i in r.refused.iter() {
                    if let Some((dst, bytes)) = self.batch.sent_item(i) {
                        ep.handle_refused(now, dst, bytes);
                    }
                }
            }
        }
        if let Some(h) = self.hook.as_mut() {
            h(&self.endpoint);
        }
        // A partial receive drained the socket: the wait's poll returns at
        // once if more came meanwhile, so waiting costs no extra call.
        let more = (n > 0 && self.transport.recv_was_full()) || produced >= self.config.max_batch;
        (more, n > 0 || produced > 0)
    }

    /// Waits for the socket, the waker or the next deadline, at most
    /// `max_wait`.
    fn wait(&mut self) {
        let w = &self.waker.0;
        w.sleeping.store(true, Ordering::SeqCst);
        if w.pending.swap(false, Ordering::SeqCst) {
            // Work was queued since the turn began.
            w.sleeping.store(false, Ordering::SeqCst);
            return;
        }
        let deadline = self.endpoint.turn().poll_timeout();
        let now = self.clock.now();
        let mut timeout = self.config.max_wait;
        let mut wake_at = now + timeout;
        if let Some(d) = deadline {
            timeout = timeout.min(d.saturating_duration_since(now));
            wake_at = wake_at.min(d);
        }
        if timeout.is_zero() {
            w.sleeping.store(false, Ordering::SeqCst);
            return;
        }
        // The timer bounds the wait when it is armed to fire by then; the
        // poll then has no timeout of its own to arm and cancel.
        let timed = self
            .timer
            .as_mut()
            .is_some_and(|t| t.fire_by(wake_at, timeout));
        let poll_timeout = (!timed).then(|| TimeSpec::from_duration(timeout));
        self.stats.timed_polls += u64::from(!timed);
        let mut sock_events = PollFlags::POLLIN;
        if !self.batch.is_empty() {
            sock_events |= PollFlags::POLLOUT;
        }
        let (woken, fired) = {
            let sock = PollFd::new(self.transport.as_fd(), sock_events);
            let wake = PollFd::new(self.waker.0.fd.as_fd(), PollFlags::POLLIN);
            match self.timer.as_ref() {
                Some(t) => {
                    let mut fds = [sock, wake, PollFd::new(t.as_fd(), PollFlags::POLLIN)];
                    match nix::poll::ppoll(&mut fds, poll_timeout, None) {
                        Ok(_) => (fds[1].any().unwrap_or(false), fds[2].any().unwrap_or(false)),
                        Err(_) => (false, false),
                    }
                }
                None => {
                    let mut fds = [sock, wake];
                    match nix::poll::ppoll(&mut fds, poll_timeout, None) {
                        Ok(_) => (fds[1].any().unwrap_or(false), false),
                        Err(_) => (false, false),
                    }
                }
            }
        };
        self.waker.0.sleeping.store(false, Ordering::SeqCst);
        if woken {
            self.waker.drain();
        }
        if fired && let Some(t) = self.timer.as_mut() {
            t.fired();
        }
    }
}

/// Records a received datagram with the addressing the endpoint saw.
fn record(
    p: &mut PcapWriter<Box<dyn io::Write + Send>>,
    ip_mode: IpMode,
    routing: Routing,
    d: Datagram<'_>,
) -> io::Result<()> {
    match ip_mode {
        IpMode::Udp => p.write_udp(d.src, routing.incoming(d.src, d.dst), d.data),
        IpMode::Raw => p.write_ip(d.data),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::UdpTransport;
    use std::sync::mpsc;

    /// Echoes every payload back and counts timer firings.
    #[derive(Debug, Default)]
    struct Echo {
        out: Vec<(SocketAddr, SocketAddr, Vec<u8>)>,
        deadline: Option<Instant>,
        fired: u32,
    }

    impl Endpoint for Echo {
        fn handle_datagram(&mut self, _now: Instant, d: Incoming<'_>) {
            if let Incoming::Udp { src, dst, payload } = d {
                self.out.push((dst, src, payload.to_vec()));
            }
        }
        fn poll_transmit(&mut self, _now: Instant, buf: &mut [u8]) -> Option<Transmit> {
            let (src, dst, p) = self.out.pop()?;
            let start = roce::framing::HEADROOM;
            buf[start..start + p.len()].copy_from_slice(&p);
            Some(Transmit {
                src,
                dst,
                sealed: roce::framing::Sealed {
                    ip_start: 0,
                    udp_payload_start: start,
                    end: start + p.len(),
                },
            })
        }
        fn poll_timeout(&self) -> Option<Instant> {
            self.deadline
        }
        fn handle_timeout(&mut self, _now: Instant) {
            self.deadline = None;
            self.fired += 1;
        }
    }

    #[test]
    fn echoes_fires_timers_wakes_and_stops() {
        let t = UdpTransport::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let ep = Arc::new(Mutex::new(Echo::default()));
        let (tx, rx) = mpsc::channel();
        let hook: Hook<Mutex<Echo>> = Box::new(move |m: &Mutex<Echo>| {
            // The loop released the lock: taking it here must not deadlock.
            let fired = lock(m).fired;
            let _ = tx.send(fired);
        });
        let el = EventLoop::spawn(
            Arc::clone(&ep),
            Box::new(t),
            Clock::new(),
            LoopConfig {
                max_wait: Duration::from_secs(5),
                ..LoopConfig::default()
            },
            Some(hook),
        )
        .unwrap();
        let port = el.local_addr().port();
        let client = UdpTransport::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        // Without a peer port, addresses pass unchanged: the echo goes back
        // to the sender's port.
        client
            .send_to(SocketAddr::new("127.0.0.1".parse().unwrap(), port), b"ping")
            .unwrap();
        client.socket().set_nonblocking(false).unwrap();
        client
            .socket()
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut buf = [0u8; 64];
        let (len, from) = client.socket().recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"ping");
        assert_eq!(from.port(), port);
        // A timer set from another thread fires although max_wait is long:
        // the waker cuts the wait short.
        el.with(|e, now| e.deadline = Some(now + Duration::from_millis(1)));
        let mut fired = 0;
        for _ in 0..100 {
            fired = rx.recv_timeout(Duration::from_secs(10)).expect("a turn");
            if fired > 0 {
                break;
            }
        }
        assert_eq!(fired, 1);
        let stats = el.stop();
        assert!(stats.received >= 1 && stats.sent >= 1, "{stats:?}");
    }

    /// Ping-pongs `n` datagrams with the loop `el` from a new socket.
    fn ping(el: &EventLoop<Mutex<Echo>>, n: u32) {
        let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        client.connect(el.local_addr()).unwrap();
        let mut buf = [0u8; 16];
        for i in 0..n {
            client.send(&i.to_le_bytes()).unwrap();
            let len = client.recv(&mut buf).expect("the echo");
            assert_eq!(&buf[..len], &i.to_le_bytes());
        }
    }

    /// A loop that polls for `busy_poll` after work, with nothing else to
    /// end its waits, asleep before the test starts.
    fn polling_echo(busy_poll: Duration) -> EventLoop<Mutex<Echo>> {
        let (el, rx) = echo_loop_with(LoopConfig {
            max_wait: Duration::from_secs(20),
            busy_poll,
            ..LoopConfig::default()
        });
        // Its first turn ran (the hook reports it); with no work it goes
        // to its wait next, however slowly the thread started.
        rx.recv_timeout(Duration::from_secs(10))
            .expect("a first turn");
        std::thread::sleep(Duration::from_millis(100));
        el
    }

    /// With busy polling, datagrams that come within the window after work
    /// find the loop turning, not asleep: 200 echoes, no wait after the
    /// first (where it slept before any work). Without it, a wait for
    /// most of them.
    #[test]
    fn a_busy_polling_loop_does_not_sleep_within_its_window() {
        let el = polling_echo(Duration::from_secs(2));
        ping(&el, 200);
        let stats = el.stop();
        assert!(stats.received >= 200 && stats.sent >= 200, "{stats:?}");
        assert_eq!(stats.waits, 1, "{stats:?}");
        let el = polling_echo(Duration::ZERO);
        ping(&el, 200);
        let stats = el.stop();
        assert!(stats.waits >= 100, "{stats:?}");
    }

    /// Once the window passes without work, a busy-polling loop sleeps
    /// again (a second wait), and still wakes for the next datagram.
    #[test]
    fn a_busy_polling_loop_sleeps_again_after_its_window() {
        let window = Duration::from_millis(300);
        let el = polling_echo(window);
        ping(&el, 1);
        std::thread::sleep(window + Duration::from_millis(700));
        let stats = el.stop();
        assert_eq!(stats.waits, 2, "{stats:?}");
        let el = polling_echo(window);
        ping(&el, 1);
        std::thread::sleep(window + Duration::from_millis(700));
        ping(&el, 1);
        let stats = el.stop();
        assert!(stats.received >= 2 && stats.sent >= 2, "{stats:?}");
    }

    /// Spawns a loop on Echo whose hook reports each turn's fired count.
    fn echo_loop(max_wait: Duration) -> (EventLoop<Mutex<Echo>>, mpsc::Receiver<u32>) {
        echo_loop_with(LoopConfig {
            max_wait,
            ..LoopConfig::default()
        })
    }

    /// [`echo_loop`] with a whole configuration.
    fn echo_loop_with(config: LoopConfig) -> (EventLoop<Mutex<Echo>>, mpsc::Receiver<u32>) {
        let t = UdpTransport::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let (tx, rx) = mpsc::channel();
        let hook: Hook<Mutex<Echo>> = Box::new(move |m: &Mutex<Echo>| {
            let _ = tx.send(lock(m).fired);
        });
        let el = EventLoop::spawn(
            Arc::new(Mutex::new(Echo::default())),
            Box::new(t),
            Clock::new(),
            config,
            Some(hook),
        )
        .unwrap();
        (el, rx)
    }

    /// The ~45 us send_lat floor (docs/performance.md): every wait armed
    /// and cancelled a kernel timer for its poll timeout. A deadline that
    /// moves later at every turn (as the RC probe deadline does on every
    /// ACK) must leave the armed timer alone: one arm for many waits, and
    /// no wait with a poll timeout of its own.
    #[test]
    fn a_deadline_moving_later_arms_the_timer_once() {
        let (el, rx) = echo_loop(Duration::from_secs(20));
        for _ in 0..200 {
            el.with(|e, now| e.deadline = Some(now + Duration::from_secs(10)));
            rx.recv_timeout(Duration::from_secs(10)).expect("a turn");
        }
        let stats = el.stop();
        assert!(stats.turns >= 200, "{stats:?}");
        assert_eq!(stats.timed_polls, 0, "{stats:?}");
        // The first wait's max_wait bound, then the first deadline (10 s
        // away: the test ends long before either could fire).
        assert!((1..=2).contains(&stats.timer_arms), "{stats:?}");
    }

    /// A deadline earlier than the armed one re-arms the timer, and the
    /// timer fires by it although the wait has no timeout of its own.
    #[test]
    fn an_earlier_deadline_rearms_the_timer_and_fires() {
        let (el, rx) = echo_loop(Duration::from_secs(20));
        el.with(|e, now| e.deadline = Some(now + Duration::from_secs(10)));
        rx.recv_timeout(Duration::from_secs(10)).expect("a turn");
        let set = std::time::Instant::now();
        el.with(|e, now| e.deadline = Some(now + Duration::from_millis(20)));
        let mut fired = 0;
        while fired == 0 {
            fired = rx
                .recv_timeout(Duration::from_secs(5))
                .expect("the timer fires");
        }
        let took = set.elapsed();
        assert_eq!(fired, 1);
        assert!(took >= Duration::from_millis(20), "{took:?}");
        assert!(took < Duration::from_secs(5), "{took:?}");
        let stats = el.stop();
        assert_eq!(stats.timed_polls, 0, "{stats:?}");
        // Armed once if the loop reached its wait only after the 20 ms
        // deadline was set (seen under TSan), else re-armed from 10 s: had
        // it kept the 10 s arming, the 5 s bound above would have failed.
        assert!(stats.timer_arms >= 1, "{stats:?}");
    }

    #[test]
    fn routing_maps_a_same_address_pair() {
        let r = Routing::peer_on(5000);
        let own: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let peer_real: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        // Sent to our own port (the device's convention), goes to the peer's.
        assert_eq!(r.outgoing(own), peer_real);
        // The peer addressed us at its own port.
        assert_eq!(r.incoming(peer_real, own), peer_real);
        let d = Routing::default();
        assert_eq!(d.outgoing(own), own);
        assert_eq!(d.incoming(peer_real, own), own);
    }
}
