//! The ndkrs side of a scenario: one NDK provider
//! ([`ndk::provider::Provider`]) on a raw IP socket
//! ([`host::io::RawTransport`]), driven by the host shell's event loop, with
//! what a scenario needs to wait for: upcalls (request completions,
//! connect and disconnect events) and work completions.
//!
//! The "consumer" here records every upcall and reports it done at once;
//! it reacts from the scenario's thread (under the endpoint's lock, through
//! [`Node::with`]), never from inside an upcall.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant as StdInstant};

use host::clock::Clock;
use host::endpoint::{Endpoint, EventLoop, Incoming, LoopConfig, LoopStats};
use host::io::{ROCE_PORT, RawTransport};
use ndk::object::ObjectId;
use ndk::provider::{Limits, NdkCompletion, NdkSge, Provider, ProviderConfig};
use ndk::upcall::{Callback, Upcall, UpcallKind};
use ndkpi::*;
use roce::cm::CmConfig;
use roce::device::{DeviceConfig, Transmit};
use roce::framing::IpMode;
use roce::rc::{ArenaMemory, EngineConfig, Memory, SendOp};
use roce::time::Instant;

/// Callback function codes (the core keeps them opaque).
pub const REQUEST: usize = 1;
/// A listener's connect event.
pub const CONNECT_EVENT: usize = 2;
/// A connector's disconnect event.
pub const DISCONNECT_EVENT: usize = 3;

/// The registered memory: an arena of this many bytes at [`VA`].
pub const ARENA: usize = 1 << 20;
/// The virtual address the arena is registered at (SGE addresses).
pub const VA: u64 = 0x1000_0000;

/// How to start a node.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Local address (the bridge's).
    pub ip: Ipv4Addr,
    /// The largest path MTU to use; capped at what the link under `ip`
    /// carries (`host::link`), as ndkperf's adapter is.
    pub path_mtu: u32,
    /// Seeds PSNs, comm IDs, keys, and the CA GUID: a fresh value per
    /// scenario keeps a Linux peer from taking a new connection for a
    /// stale one (ib_cm matches remote QPN and CA GUID).
    pub seed: u64,
    /// CM timing (Linux's defaults).
    pub cm: CmConfig,
    /// Every datagram sent and received, as pcap.
    pub pcap: Option<std::path::PathBuf>,
}

/// A recorded upcall with when it came.
#[derive(Debug, Clone, Copy)]
pub struct Recorded {
    /// The upcall.
    pub upcall: Upcall,
    /// When the event loop took it from the provider.
    pub at: StdInstant,
}

/// The endpoint the event loop drives.
#[derive(Debug)]
pub struct State {
    /// The provider core.
    pub p: Provider<ArenaMemory>,
    /// Every upcall so far, in order.
    pub upcalls: Vec<Recorded>,
    /// Every work completion so far (of the CQs in `cqs`).
    pub completions: Vec<NdkCompletion>,
    /// CQs whose results [`State::reap`] collects.
    pub cqs: Vec<ObjectId>,
}

impl State {
    fn drain(&mut self) {
        while let Some(u) = self.p.poll_upcall() {
            self.upcalls.push(Recorded {
                upcall: u,
                at: StdInstant::now(),
            });
            self.p.upcall_done(&u);
        }
    }

    /// Collects the CQs' results into `completions`.
    pub fn reap(&mut self) {
        let mut out = [NdkCompletion::EMPTY; 32];
        for i in 0..self.cqs.len() {
            loop {
                let n = self.p.get_cq_results(self.cqs[i], &mut out);
                self.completions.extend_from_slice(&out[..n]);
                if n < out.len() {
                    break;
                }
            }
        }
        self.drain();
    }

    /// The status of the request completion with context `ctx`, if it came.
    pub fn request(&self, ctx: usize) -> Option<NTSTATUS> {
        self.upcalls.iter().find_map(|r| match r.upcall.kind {
            UpcallKind::Request { status } if r.upcall.callback == cb(REQUEST, ctx) => Some(status),
            _ => None,
        })
    }

    /// Connectors delivered by connect events, in order.
    pub fn incoming(&self) -> Vec<ObjectId> {
        self.upcalls
            .iter()
            .filter_map(|r| match r.upcall.kind {
                UpcallKind::ConnectEvent { connector } => Some(connector),
                _ => None,
            })
            .collect()
    }

    /// How many disconnect events came for context `ctx`.
    pub fn disconnect_events(&self, ctx: usize) -> usize {
        self.upcalls
            .iter()
            .filter(|r| {
                matches!(r.upcall.kind, UpcallKind::DisconnectEvent { .. })
                    && r.upcall.callback == cb(DISCONNECT_EVENT, ctx)
            })
            .count()
    }

    /// Completions of QP context `qp_ctx` with op type `op`.
    pub fn of(&self, qp_ctx: usize, op: NDK_OPERATION_TYPE) -> Vec<NdkCompletion> {
        self.completions
            .iter()
            .filter(|c| c.qp_context == qp_ctx && c.op_type == op)
            .copied()
            .collect()
    }

    /// The arena's bytes at offset `off`.
    pub fn read(&self, off: u64, len: usize) -> Vec<u8> {
        self.p.device_ref().rc_ref().memory().snapshot(off, len)
    }

    /// Writes the arena at offset `off`.
    pub fn write(&self, off: u64, data: &[u8]) -> bool {
        self.p.device_ref().rc_ref().memory().write(off, data)
    }
}

impl Endpoint for State {
    fn handle_datagram(&mut self, now: Instant, datagram: Incoming<'_>) {
        match datagram {
            Incoming::Ip(d) => self.p.handle_ip(now, d),
            Incoming::Udp { src, dst, payload } => self.p.handle_udp(now, src, dst, payload),
        }
        self.drain();
    }
    fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        let t = self.p.poll_transmit(now, buf);
        self.drain();
        t
    }
    fn poll_timeout(&self) -> Option<Instant> {
        self.p.poll_timeout()
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.p.handle_timeout(now);
        self.drain();
    }
}

/// A callback value.
pub const fn cb(func: usize, context: usize) -> Callback {
    Callback { func, context }
}

/// One SGE over the arena at offset `off`.
pub fn sge(off: u64, len: u32, token: u32) -> NdkSge {
    NdkSge {
        address: VA + off,
        length: len,
        token,
    }
}

/// A running ndkrs endpoint.
#[derive(Debug)]
pub struct Node {
    el: EventLoop<Mutex<State>>,
    /// The PD.
    pub pd: ObjectId,
    /// One CQ for everything.
    pub cq: ObjectId,
    /// The arena's MR token (lkey and rkey).
    pub token: u32,
    next_ctx: std::sync::atomic::AtomicUsize,
    ip: Ipv4Addr,
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Node {
    /// Opens the raw socket on `ip`:4791 and starts the provider with one
    /// PD, one CQ and the arena registered for local and remote access.
    /// The calling thread must be in the harness's namespace.
    pub fn start(config: &NodeConfig) -> Result<Node, String> {
        let local = SocketAddr::new(IpAddr::V4(config.ip), ROCE_PORT);
        let transport = RawTransport::bind(local).map_err(|e| e.to_string())?;
        let link = host::link::link_of(local.ip()).map_err(|e| e.to_string())?;
        let path_mtu = link
            .path_mtu(local.ip())
            .ok_or_else(|| format!("{link:?} carries no RoCE path MTU"))?
            .min(config.path_mtu);
        let mut p = Provider::new(
            ProviderConfig {
                device: DeviceConfig {
                    ip_mode: IpMode::Raw,
                    udp_source_port: ROCE_PORT,
                    // An EUI-64 of a locally administered MAC.
                    ca_guid: 0x0200_0aff_fe09_0000 | (config.seed & 0xffff),
                    cm: config.cm,
                    rc: EngineConfig {
                        first_qpn: 17,
                        key_seed: config.seed as u32,
                        qpn_epoch: 0,
                    },
                    seed: config.seed,
                },
                addresses: vec![IpAddr::V4(config.ip)],
                path_mtu,
                version: NDK_VERSION_1_2,
                limits: Limits::default(),
            },
            ArenaMemory::new(ARENA),
        );
        let pd = p.create_pd().map_err(|s| format!("create_pd: {s:#x}"))?;
        let cq = p
            .create_cq(1024, Callback::NONE)
            .map_err(|s| format!("create_cq: {s:#x}"))?;
        let mr = p
            .register_mr(
                pd,
                VA,
                ARENA as u64,
                0,
                NDK_MR_FLAG_ALLOW_LOCAL_WRITE
                    | NDK_MR_FLAG_ALLOW_REMOTE_READ
                    | NDK_MR_FLAG_ALLOW_REMOTE_WRITE,
            )
            .map_err(|s| format!("register_mr: {s:#x}"))?;
        let token = p.mr_token(mr).ok_or("no MR token")?;
        let pcap = match &config.pcap {
            Some(path) => Some(host::pcap::create(path).map_err(|e| e.to_string())?),
            None => None,
        };
        let state = State {
            p,
            upcalls: Vec::new(),
            completions: Vec::new(),
            cqs: vec![cq],
        };
        let el = EventLoop::spawn(
            Arc::new(Mutex::new(state)),
            Box::new(transport),
            Clock::new(),
            LoopConfig {
                name: format!("ndkrs-{}", config.ip),
                max_wait: Duration::from_millis(20),
                pcap,
                ..LoopConfig::default()
            },
            None,
        )
        .map_err(|e| format!("starting the event loop: {e}"))?;
        Ok(Node {
            el,
            pd,
            cq,
            token,
            next_ctx: std::sync::atomic::AtomicUsize::new(100),
            ip: config.ip,
        })
    }

    /// The node's address.
    pub fn ip(&self) -> Ipv4Addr {
        self.ip
    }

    /// A fresh request / disconnect-event context.
    pub fn ctx(&self) -> usize {
        self.next_ctx
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    /// Runs `f` on the provider under its lock (with `now` set), then wakes
    /// the loop so that what `f` queued goes out.
    pub fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        self.el.with(|s, now| {
            s.p.set_now(now);
            let r = f(s);
            s.drain();
            r
        })
    }

    /// Waits until `pred` holds (CQs reaped before every check), at most
    /// `timeout`; the time it took.
    pub fn wait(
        &self,
        what: &str,
        timeout: Duration,
        mut pred: impl FnMut(&State) -> bool,
    ) -> Result<Duration, String> {
        let start = StdInstant::now();
        loop {
            let done = {
                let mut s = lock(self.el.endpoint());
                s.reap();
                pred(&s)
            };
            if done {
                return Ok(start.elapsed());
            }
            if start.elapsed() > timeout {
                return Err(format!("ndkrs: {what}: not within {timeout:?}"));
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// A new QP on the node's PD and CQ with QP context `qp_ctx`, with
    /// `recvs` receives of `size` bytes posted at arena offsets
    /// `recv_off + i * size` (receive contexts `1000 + i`).
    pub fn qp(
        &self,
        qp_ctx: usize,
        depth: u32,
        recvs: u32,
        size: u32,
        recv_off: u64,
    ) -> Result<ObjectId, String> {
        let (pd, cq, token) = (self.pd, self.cq, self.token);
        self.with(|s| {
            let qp =
                s.p.create_qp(pd, cq, cq, qp_ctx, depth, depth, 2, 2, 0)
                    .map_err(|st| format!("create_qp: {st:#x}"))?;
            for i in 0..recvs {
                let off = recv_off + u64::from(i) * u64::from(size);
                let st =
                    s.p.post_receive(qp, 1000 + i as usize, &[sge(off, size, token)]);
                if st != STATUS_SUCCESS {
                    return Err(format!("post_receive: {st:#x}"));
                }
            }
            Ok(qp)
        })
    }

    /// Posts a Send of `len` bytes at arena offset `off` (request context
    /// `ctx`).
    pub fn send(&self, qp: ObjectId, ctx: usize, off: u64, len: u32) -> Result<(), String> {
        self.post(qp, ctx, off, len, SendOp::Send)
    }

    /// Posts an initiator request (Send, RDMA Write from, RDMA Read into
    /// `len` bytes at arena offset `off`).
    pub fn post(
        &self,
        qp: ObjectId,
        ctx: usize,
        off: u64,
        len: u32,
        op: SendOp<'_>,
    ) -> Result<(), String> {
        let token = self.token;
        let st = self.with(|s| s.p.post_send(qp, ctx, &[sge(off, len, token)], op, 0));
        if st == STATUS_SUCCESS {
            Ok(())
        } else {
            Err(format!("post {op:?}: {st:#x}"))
        }
    }

    /// NdkConnect from this node to `dst` with `qp`; waits for its
    /// completion; on success NdkCompleteConnect with disconnect-event
    /// context `ev_ctx`. Returns the connector and the connect status.
    pub fn connect(
        &self,
        qp: ObjectId,
        dst: SocketAddr,
        ev_ctx: usize,
        timeout: Duration,
    ) -> Result<(ObjectId, NTSTATUS), String> {
        let ctx = self.ctx();
        let src = SocketAddr::new(IpAddr::V4(self.ip), 0);
        let (conn, st) = self.with(|s| {
            let c = s.p.create_connector();
            let st = s.p.connect(c, qp, src, dst, 1, 1, b"", cb(REQUEST, ctx));
            (c, st)
        });
        if st != STATUS_PENDING {
            return Ok((conn, st));
        }
        self.wait("NdkConnect completion", timeout, |s| {
            s.request(ctx).is_some()
        })?;
        let st = self.with(|s| s.request(ctx)).unwrap_or(STATUS_UNSUCCESSFUL);
        if st != STATUS_SUCCESS {
            return Ok((conn, st));
        }
        let st = self.with(|s| {
            s.p.complete_connect(conn, cb(DISCONNECT_EVENT, ev_ctx), false)
        });
        Ok((conn, st))
    }

    /// Listens on `port` and returns the listener.
    pub fn listen(&self, port: u16) -> Result<ObjectId, String> {
        let addr = SocketAddr::new(IpAddr::V4(self.ip), port);
        self.with(|s| {
            let l = s.p.create_listener(cb(CONNECT_EVENT, 0));
            s.p.listen(l, addr)
                .map(|_| l)
                .map_err(|st| format!("listen: {st:#x}"))
        })
    }

    /// Waits for the `n`th (0-based) incoming connector.
    pub fn incoming(&self, n: usize, timeout: Duration) -> Result<ObjectId, String> {
        self.wait("a connect event", timeout, |s| s.incoming().len() > n)?;
        Ok(self.with(|s| s.incoming()[n]))
    }

    /// NdkAccept of `conn` with `qp` and disconnect-event context `ev_ctx`;
    /// waits for the completion and returns its status.
    pub fn accept(
        &self,
        conn: ObjectId,
        qp: ObjectId,
        ev_ctx: usize,
        timeout: Duration,
    ) -> Result<NTSTATUS, String> {
        let ctx = self.ctx();
        let st = self.with(|s| {
            s.p.accept(
                conn,
                qp,
                1,
                1,
                b"",
                cb(DISCONNECT_EVENT, ev_ctx),
                false,
                cb(REQUEST, ctx),
            )
        });
        if st != STATUS_PENDING {
            return Ok(st);
        }
        self.wait("NdkAccept completion", timeout, |s| {
            s.request(ctx).is_some()
        })?;
        Ok(self.with(|s| s.request(ctx)).unwrap_or(STATUS_UNSUCCESSFUL))
    }

    /// NdkDisconnect: the final status (inline, or through the completion
    /// within `timeout`) and how long it took.
    pub fn disconnect(
        &self,
        conn: ObjectId,
        timeout: Duration,
    ) -> Result<(NTSTATUS, Duration), String> {
        let ctx = self.ctx();
        let start = StdInstant::now();
        let st = self.with(|s| s.p.disconnect(conn, cb(REQUEST, ctx)));
        if st != STATUS_PENDING {
            return Ok((st, start.elapsed()));
        }
        self.wait("NdkDisconnect completion", timeout, |s| {
            s.request(ctx).is_some()
        })?;
        let st = self.with(|s| s.request(ctx)).unwrap_or(STATUS_UNSUCCESSFUL);
        Ok((st, start.elapsed()))
    }

    /// Stops the event loop (the pcap is finished).
    pub fn stop(self) -> LoopStats {
        self.el.stop()
    }

    /// The endpoint, for reads without `with`'s wake.
    pub fn state(&self) -> MutexGuard<'_, State> {
        lock(self.el.endpoint())
    }
}

/// Fills the arena at `off` with `len` bytes of a recognisable pattern.
pub fn pattern(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| seed.wrapping_add((i % 251) as u8))
        .collect()
}
