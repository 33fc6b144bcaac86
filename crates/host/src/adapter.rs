//! The NDK adapter on the host: the consumer kit's [`Platform`]
//! ([`HostPlatform`]: a real lock, process memory behind [`HostMdl`]s) on
//! the host clock and the event loop's waker, and the endpoint an
//! [`EventLoop`] drives.
//!
//! The loop holds no lock of its own around the adapter: a turn is just
//! the adapter pointer ([`AdapterHandle`] is a [`Driven`] whose turn is a
//! copy of it), and `ndk::abi::io::*` take the adapter's lock inside and
//! make the consumer's upcalls after releasing it. A consumer callback
//! running on the I/O thread may therefore re-enter the adapter (post,
//! accept, disconnect, close) without deadlock.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use ndk::abi::{Platform, close_adapter, io as abi_io, open_adapter};
use ndk::provider::{Limits, ProviderConfig};
use ndkpi::{NDK_ADAPTER, NDK_VERSION_1_2};
use roce::cm::CmConfig;
use roce::device::{DeviceConfig, Transmit};
use roce::rc::EngineConfig;
use roce::time::Instant;

use crate::clock::Clock;
use crate::endpoint::{
    Driven, Endpoint, EventLoop, Incoming, LoopConfig, LoopStats, Routing, Waker,
};
use crate::io::Transport;

pub use ndk_consumer::HostMdl;

/// The host's clock and waker, as the consumer kit's platform
/// ([`ndk_consumer::HostPlatform`]) takes them.
#[derive(Debug)]
pub struct LoopClock {
    clock: Clock,
    waker: Waker,
}

impl LoopClock {
    /// `clock`, waking the loop through `waker`.
    pub fn new(clock: Clock, waker: Waker) -> Self {
        LoopClock { clock, waker }
    }
}

impl ndk_consumer::Clock for LoopClock {
    fn now(&self) -> Instant {
        self.clock.now()
    }
    fn wake(&self) {
        self.waker.wake();
    }
}

/// The host's services to the provider: the consumer kit's platform on
/// the loop's clock, with the process's memory trusted (ndkperf
/// registers gigabytes; the engine checks every access against its
/// region's bounds).
pub type HostPlatform = ndk_consumer::HostPlatform<LoopClock>;

/// An open adapter as the event loop sees it.
#[derive(Debug)]
pub struct AdapterHandle(*mut NDK_ADAPTER);

// SAFETY: the adapter serializes every call on its own lock; the pointer
// stays valid until `Adapter::close`, which stops the loop first.
unsafe impl Send for AdapterHandle {}
// SAFETY: as above.
unsafe impl Sync for AdapterHandle {}

/// One loop turn on the adapter: nothing held, only the pointer.
#[derive(Debug)]
pub struct AdapterTurn(*mut NDK_ADAPTER);

impl Endpoint for AdapterTurn {
    // The loop reads the clock once per turn and passes that reading to
    // every call of the turn (the adapter never lets it run backwards).
    fn handle_datagram(&mut self, now: Instant, datagram: Incoming<'_>) {
        match datagram {
            Incoming::Udp { src, dst, payload } => {
                abi_io::handle_udp_at(self.0, now, src, dst, payload)
            }
            Incoming::Ip(d) => abi_io::handle_ip(self.0, d),
        }
    }
    fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        abi_io::poll_transmit_at(self.0, now, buf)
    }
    fn poll_timeout(&self) -> Option<Instant> {
        abi_io::poll_timeout(self.0)
    }
    fn handle_timeout(&mut self, now: Instant) {
        abi_io::handle_timeout_at(self.0, now)
    }
    fn handle_refused(&mut self, now: Instant, dst: SocketAddr, datagram: &[u8]) {
        abi_io::handle_refused_at(self.0, now, dst.ip(), datagram)
    }
}

impl Driven for AdapterHandle {
    type Turn<'a> = AdapterTurn;
    fn turn(&self) -> AdapterTurn {
        AdapterTurn(self.0)
    }
}

/// Where an adapter's identity on the wire (CA GUID low bits, comm IDs,
/// starting PSNs, keys, QPN epochs) comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Seed {
    /// Fresh entropy from the operating system at adapter creation (the
    /// default): a restarted process never reuses a dead one's identity, so
    /// its peers do not take its REQs for stale duplicates.
    #[default]
    Entropy,
    /// A fixed value, for tests and simulations that must replay.
    Fixed(u64),
}

impl Seed {
    /// The 64-bit value the device derives its identity from. Entropy comes
    /// from the `getrandom` crate: the getrandom(2) system call on Linux
    /// (BCryptGenRandom on Windows), which never blocks once the kernel's
    /// pool is initialised and needs no file descriptor, unlike reading
    /// /dev/urandom.
    pub fn value(self) -> Result<u64, String> {
        match self {
            Seed::Fixed(v) => Ok(v),
            Seed::Entropy => getrandom::u64().map_err(|e| format!("no OS entropy: {e}")),
        }
    }
}

/// How to open an adapter.
#[derive(Debug, Clone)]
pub struct AdapterConfig {
    /// Decides the adapter's identity on the wire (see [`Seed`]).
    pub seed: Seed,
    /// The largest path MTU to use; the adapter caps it at what the link
    /// under its address carries ([`crate::link`]), so 4096 means "the
    /// link's".
    pub mtu: u32,
    /// CM timing: ndkperf shortens the defaults (made for fabrics with
    /// long packet lifetimes) so an unreachable peer fails in about a
    /// second, not a minute.
    pub cm: CmConfig,
    /// Longest loop wait.
    pub max_wait: Duration,
    /// UDP port translation.
    pub routing: Routing,
    /// The most bytes the pcap file may hold (frames past it are left
    /// out); `None`: no cap.
    pub pcap_max: Option<u64>,
    /// How long the I/O loop keeps polling after work before it sleeps
    /// ([`LoopConfig::busy_poll`]; zero: it sleeps at once).
    pub busy_poll: Duration,
}

impl Default for AdapterConfig {
    fn default() -> Self {
        AdapterConfig {
            seed: Seed::Entropy,
            mtu: 4096,
            cm: CmConfig::default(),
            max_wait: Duration::from_millis(50),
            routing: Routing::default(),
            pcap_max: None,
            busy_poll: Duration::ZERO,
        }
    }
}

/// CM timing for ndkperf: a 16 ms packet lifetime, a 4 ms ACK delay and
/// a 268 ms response timeout, three retries.
pub fn quick_cm() -> CmConfig {
    CmConfig {
        cm_response_timeout: 16,
        max_cm_retries: 3,
        max_dreq_retries: 3,
        packet_life_time: 12,
        ca_ack_delay: 10,
        ..CmConfig::default()
    }
}

/// The timing of ndkperf's own adapters: [`quick_cm`]'s CM timing, with a
/// finite RC retry count (6: seven transmissions) and a 134 ms local ACK
/// timeout (ACK delay code 14), so a requester whose peer went silent (a
/// killed server) fails its oldest request with a retry-exceeded
/// completion (STATUS_IO_TIMEOUT) within [`rc_retry_bound`], about 0.94 s
/// after the last acknowledged progress, instead of retrying forever
/// (retry count 7 means "retry without limit", as on Linux rxe).
pub fn ndkperf_cm() -> CmConfig {
    CmConfig {
        ca_ack_delay: 14,
        retry_count: 6,
        ..quick_cm()
    }
}

/// How long a requester of a connection set up with `c` retries a silent
/// peer before its oldest request fails: one local ACK timeout per
/// transmission, `retry_count + 1` transmissions (IBA Vol 1 ch. 9
/// (requester retry); Linux rxe_comp.c). `None`: retry count 7, no limit.
pub fn rc_retry_bound(c: &CmConfig) -> Option<Duration> {
    (c.retry_count & 7 != 7)
        .then(|| c.timewait(c.local_ack_timeout()) * (u32::from(c.retry_count & 7) + 1))
}

/// The time-wait of a connection under [`ndkperf_cm`].
pub fn ndkperf_cm_timewait() -> Duration {
    let c = ndkperf_cm();
    c.timewait(c.local_ack_timeout())
}

/// The time-wait of a connection under [`quick_cm`]: the provider reuses
/// a closed QP's number for the next QP, and a peer still holding the old
/// connection in time-wait rejects a REQ from that QPN as stale, so
/// back-to-back runs wait this long between connections.
pub fn quick_cm_timewait() -> Duration {
    let c = quick_cm();
    c.timewait(c.local_ack_timeout())
}

/// An open NDK adapter with its I/O loop.
#[derive(Debug)]
pub struct Adapter {
    ptr: *mut NDK_ADAPTER,
    el: Option<EventLoop<AdapterHandle>>,
    local: SocketAddr,
    path_mtu: u32,
    /// Whether closing is this value's (not for a [`borrowed`](Adapter::borrowed) one).
    owned: bool,
}

// SAFETY: the adapter is internally locked (see `AdapterHandle`).
unsafe impl Send for Adapter {}
// SAFETY: as above.
unsafe impl Sync for Adapter {}

impl Adapter {
    /// Opens an adapter on `transport`'s address and starts its loop;
    /// `pcap` records every datagram it sends and receives.
    pub fn open(
        transport: Box<dyn Transport>,
        config: &AdapterConfig,
        pcap: Option<&Path>,
    ) -> Result<Adapter, String> {
        let local = transport.local_addr();
        let ip_mode = transport.ip_mode();
        if local.ip().is_unspecified() {
            return Err(format!(
                "the RDMA adapter needs a specific local address, not {}",
                local.ip()
            ));
        }
        let link = crate::link::link_of(local.ip())
            .map_err(|e| format!("finding the link under {}: {e}", local.ip()))?;
        let link_mtu = link.path_mtu(local.ip()).ok_or_else(|| {
            format!(
                "{} (MTU {}) is too small for RoCE: not even a 256-byte path MTU fits",
                link.name, link.mtu
            )
        })?;
        let path_mtu = config.mtu.min(link_mtu);
        let clock = Clock::new();
        let waker = Waker::new().map_err(|e| format!("creating the waker: {e}"))?;
        let platform: Arc<dyn Platform> = Arc::new(HostPlatform::new(
            LoopClock::new(clock, waker.clone()),
            ndk_consumer::Access::Trusted,
        ));
        let seed = config.seed.value()?;
        let provider = ProviderConfig {
            // The EUI-64 prefix of a QEMU-style MAC (52:54:00), the low 24
            // bits from the seed.
            device: DeviceConfig {
                ip_mode,
                udp_source_port: local.port(),
                ca_guid: 0x5054_00FF_FE00_0000,
                cm: config.cm,
                rc: EngineConfig::default(),
                seed: 0,
            }
            .with_identity(seed),
            addresses: vec![local.ip()],
            path_mtu,
            version: NDK_VERSION_1_2,
            limits: Limits::default(),
        };
        let ptr = open_adapter(platform, provider, NDK_VERSION_1_2)
            .map_err(|s| format!("opening the NDK adapter failed: NDIS status {s:#x}"))?;
        let pcap = match pcap {
            Some(p) => match crate::pcap::create(p) {
                Ok(mut w) => {
                    if let Some(max) = config.pcap_max {
                        w.set_limit(max);
                    }
                    Some(w)
                }
                Err(e) => {
                    // SAFETY: just opened; nothing else uses it.
                    unsafe { close_adapter(ptr) };
                    return Err(e.to_string());
                }
            },
            None => None,
        };
        let loop_config = LoopConfig {
            name: format!("ndk-io-{local}"),
            max_wait: config.max_wait,
            routing: config.routing,
            pcap,
            waker: Some(waker),
            busy_poll: config.busy_poll,
            ..LoopConfig::default()
        };
        let el = match EventLoop::spawn(
            Arc::new(AdapterHandle(ptr)),
            transport,
            clock,
            loop_config,
            None,
        ) {
            Ok(el) => el,
            Err(e) => {
                // SAFETY: as above.
                unsafe { close_adapter(ptr) };
                return Err(format!("starting the I/O thread: {e}"));
            }
        };
        Ok(Adapter {
            ptr,
            el: Some(el),
            local,
            path_mtu,
            owned: true,
        })
    }

    /// An adapter another party opened and drives (the Windows shell's,
    /// opened through its NDK provider characteristics under
    /// crates/ndis-host), so ndkperf's modes run on it: no I/O loop here,
    /// and closing it stays the opener's (dropping this leaves it open).
    ///
    /// # Safety
    /// `ptr` is an open NDK_ADAPTER that outlives this value; `local` is
    /// its address and `path_mtu` the path MTU its connections use.
    pub unsafe fn borrowed(ptr: *mut NDK_ADAPTER, local: SocketAddr, path_mtu: u32) -> Adapter {
        Adapter {
            ptr,
            el: None,
            local,
            path_mtu,
            owned: false,
        }
    }

    /// The consumer's adapter pointer (the NDK_ADAPTER dispatch table).
    pub fn ptr(&self) -> *mut NDK_ADAPTER {
        self.ptr
    }

    /// The transport's address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The count of datagrams the adapter has received, as it grows (a
    /// waiting consumer tells traffic under way from a quiet peer by it).
    pub fn received_counter(&self) -> Arc<AtomicU64> {
        self.el
            .as_ref()
            .map_or_else(Arc::default, EventLoop::received_counter)
    }

    /// The largest path MTU of this adapter's connections: the configured
    /// one, capped at what the link under its address carries.
    pub fn path_mtu(&self) -> u32 {
        self.path_mtu
    }

    /// Live provider objects (leak checks).
    pub fn object_count(&self) -> usize {
        abi_io::object_count(self.ptr)
    }

    /// As [`ndk_consumer::Adapter::object_count_settled`].
    pub fn object_count_settled(&self, want: usize, t: Duration) -> usize {
        // SAFETY: open until `self` closes it.
        unsafe { ndk_consumer::Adapter::from_raw(self.ptr) }.object_count_settled(want, t)
    }

    /// Stops the loop and closes the adapter, freeing what the consumer
    /// left open.
    ///
    /// # Safety
    /// No call on the adapter or its objects runs or will run, and the
    /// consumer uses none of its object pointers after this.
    pub unsafe fn close(mut self) -> LoopStats {
        self.shutdown()
    }

    fn shutdown(&mut self) -> LoopStats {
        let stats = self.el.take().map(EventLoop::stop).unwrap_or_default();
        if !self.ptr.is_null() && self.owned {
            // SAFETY: the loop is stopped; per `close`'s contract nothing
            // else calls in.
            unsafe { close_adapter(self.ptr) };
            self.ptr = std::ptr::null_mut();
        }
        stats
    }
}

impl Drop for Adapter {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::Seed;

    #[test]
    fn entropy_differs_between_adapters_and_a_fixed_seed_replays() {
        let a = Seed::Entropy.value().unwrap();
        let b = Seed::Entropy.value().unwrap();
        assert_ne!(a, b, "two adapters drew the same 64 bits");
        assert_eq!(Seed::Fixed(9).value(), Ok(9));
        assert_eq!(Seed::default(), Seed::Entropy);
    }
}
