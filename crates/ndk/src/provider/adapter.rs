//! The adapter as a whole: what it is opened with and the limits it
//! reports (NDK_ADAPTER_INFO), and the shell's entry points for time and
//! datagrams, after each of which the NIC's events go to the objects they
//! concern.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;
use core::net::{IpAddr, SocketAddr};

use ndkpi::*;
use roce::device::{Device, DeviceConfig, Transmit};
use roce::rc::Memory;
use roce::rng::SeededRng;
use roce::time::Instant;

use super::Provider;
use crate::object::{ObjectId, Table};

/// The most inline bytes a post can carry: the ABI layer gathers them into a
/// stack buffer of this size (the NDKPI work request posting requirements page: copied during the
/// call), so NDK_ADAPTER_INFO.MaxInlineDataSize never exceeds it.
pub const MAX_INLINE_DATA: u32 = 512;

/// Limits the adapter reports in NDK_ADAPTER_INFO and enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_qp_depth: u32,
    pub max_cq_depth: u32,
    pub max_sge: u32,
    pub max_read_sge: u32,
    pub max_inline: u32,
    pub max_read_limit: u32,
    pub max_transfer: u32,
    pub max_registration: u64,
    /// MaxSrqDepth (0 would mean no SRQs).
    pub max_srq_depth: u32,
    /// Largest NdkInitializeFastRegisterMr page count (FRMRPageCount; at
    /// least 16, ndkinfo.h NDK_ADAPTER_INFO); more is STATUS_IMPLEMENTATION_LIMIT.
    pub max_fr_pages: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_qp_depth: 4096,
            max_cq_depth: 65536,
            max_sge: 16,
            max_read_sge: 16,
            max_inline: 256,
            max_read_limit: 16,
            max_transfer: roce::rc::MAX_MESSAGE_LEN,
            max_registration: 1 << 40,
            max_srq_depth: 4096,
            max_fr_pages: 512,
        }
    }
}

impl Limits {
    /// The inline size QPs may ask for (MaxInlineDataSize).
    pub fn inline_cap(&self) -> u32 {
        self.max_inline
            .min(MAX_INLINE_DATA)
            .min(roce::rc::MAX_INLINE)
    }
}

/// Configuration of one adapter.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    /// The NIC.
    pub device: DeviceConfig,
    /// The adapter's IP addresses (listeners and connects must use one).
    pub addresses: Vec<IpAddr>,
    /// The largest RoCE path MTU, in bytes, the adapter's link carries: the
    /// shell derives it from the link's Ethernet MTU (as Linux rxe derives
    /// its port's active MTU from its netdev, drivers/infiniband/sw/rxe/
    /// rxe.c `rxe_set_mtu`). Every connection's path MTU is at most this:
    /// the one a REQ of ours offers, and the one a peer's REQ asks for.
    /// Values between the IB MTUs round down (1500 means 1024).
    pub path_mtu: u32,
    /// The NDKPI version the adapter operates at.
    pub version: NDK_VERSION,
    /// Limits.
    pub limits: Limits,
}

impl<M: Memory> Provider<M> {
    /// An adapter over a NIC with memory `mem`.
    pub fn new(mut config: ProviderConfig, mem: M) -> Self {
        let seed = config.device.seed;
        // The CM refuses a REQ whose path MTU this link cannot carry.
        let link = super::connector::mtu_code(config.path_mtu);
        config.device.cm.max_path_mtu = config.device.cm.max_path_mtu.min(link);
        Provider {
            device: Device::new(config.device.clone(), mem),
            config,
            objects: Table::default(),
            upcalls: VecDeque::new(),
            by_qpn: BTreeMap::new(),
            by_conn: BTreeMap::new(),
            by_listener: BTreeMap::new(),
            cqs: Vec::new(),
            srqs: Vec::new(),
            zombies: Vec::new(),
            ports: BTreeMap::new(),
            rng: SeededRng::new(seed ^ 0x0005_EED0_F9C7),
            now: Instant::ZERO,
            processing_events: false,
        }
    }

    /// The NIC (for the shell's I/O and for tests).
    pub fn device(&mut self) -> &mut Device<M> {
        &mut self.device
    }

    /// The NIC, read-only.
    pub fn device_ref(&self) -> &Device<M> {
        &self.device
    }

    /// The configuration.
    pub fn config(&self) -> &ProviderConfig {
        &self.config
    }

    /// Number of live objects (for leak checks).
    pub fn object_count(&self) -> usize {
        self.objects.len()
    }

    /// Ids of every live object (for tests and teardown).
    pub fn object_ids(&self) -> Vec<ObjectId> {
        self.objects.ids().collect()
    }

    /// The time every call after this one happens at (the shell sets it
    /// from its clock before each consumer call).
    pub fn set_now(&mut self, now: Instant) {
        if now > self.now {
            self.now = now;
        }
    }

    /// The latest time the provider has seen (the one it runs at).
    pub fn now(&self) -> Instant {
        self.now
    }

    /// A whole IP datagram arrived (raw mode).
    pub fn handle_ip(&mut self, now: Instant, datagram: &[u8]) {
        self.now = now;
        self.device.handle_ip(now, datagram);
        self.process_events();
    }

    /// A UDP payload arrived (UDP mode).
    pub fn handle_udp(&mut self, now: Instant, src: SocketAddr, dst: SocketAddr, payload: &[u8]) {
        self.now = now;
        self.device.handle_udp(now, src, dst, payload);
        self.process_events();
    }

    /// The link refused a datagram this adapter sent (see
    /// [`Device::handle_refused`]): the QP that sent it fails, and its
    /// consumer hears of it through its completions.
    pub fn handle_refused(&mut self, now: Instant, dst: IpAddr, datagram: &[u8]) {
        self.now = now;
        self.device.handle_refused(now, dst, datagram);
        self.process_events();
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        self.now = now;
        let t = self.device.poll_transmit(now, buf);
        self.process_events();
        t
    }

    /// When [`Self::handle_timeout`] must next run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.device.poll_timeout()
    }

    /// Runs the timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        self.device.handle_timeout(now);
        self.process_events();
    }
}
