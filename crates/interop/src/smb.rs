//! An SMB Direct client over ndkrs that uses the provider only through the
//! NDK dispatch tables, as the Windows SMB client uses an NDK provider.
//!
//! [`Session`] runs the sans-IO machines of `crates/smbd` (the MS-SMBD
//! connection and the SMB2 client) over an `ndk::abi` adapter opened by
//! [`host::adapter::Adapter`] on a raw IP socket (what a Linux rxe peer
//! needs) or a UDP socket (another ndkrs adapter): one PD, one CQ for sends
//! and receives, one QP, one connector, a registered ring of receive
//! buffers and one of send buffers, and one MR per data buffer that the
//! server reads (SMB2 WRITE) or writes (SMB2 READ) through the RDMA
//! channel. Everything is driven from the caller's thread: the CQ
//! notification and the disconnect event callback only record and wake.

use std::collections::VecDeque;
use std::net::{SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::ptr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use host::adapter::{Adapter, AdapterConfig, Seed};
use roce::cm::CmConfig;

use crate::consumer_adapter::ConsumerAdapter;
use host::io::{ROCE_PORT, RawTransport, Transport, UdpTransport};
use ndkpi::*;
use smbd::ntlm::Credentials;
use smbd::smb2::client::{Client, ClientConfig, ClientError, ClientEvent, Phase};
use smbd::smb2::msg::{FileId, signing_alg};
use smbd::smbd::conn::{Config, Connection, DisconnectReason, Event, Output, Role};
use smbd::smbd::wire::BufferDescriptorV1;

use crate::ndk_consumer::{
    Kicks, Memory, SOCKADDR_IN_LEN, arm_cq, check, close_object, create_cq, create_mr, create_pd,
    create_qp, disp, failed, local_token, memory, receive, register_mr, remote_token, request,
    send, sockaddr, take_completions,
};

/// Receive and send buffers: ksmbd's 1364-byte messages, one receive per
/// credit this side may grant (255) and as many sends.
const SLOTS: usize = 256;
const MSG: usize = 1364;
const KIND_RECV: usize = 1 << 16;
const KIND_SEND: usize = 2 << 16;
const KIND_FR: usize = 3 << 16;

/// The socket under the adapter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionTransport {
    /// A raw IP socket: exact ICRCs, for Linux rxe peers (needs
    /// CAP_NET_RAW).
    Raw,
    /// A UDP socket on port 4791: for another ndkrs adapter (no privilege
    /// needed on loopback).
    Udp,
    /// An NDK adapter a Windows shell opened (crates/ndis-host), closed
    /// through its opener; memory is described with kernel MDLs.
    External(crate::consumer_adapter::ExternalAdapter),
}

/// How to reach the server.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// ndkrs's address (its socket binds there, port 4791).
    pub local: std::net::Ipv4Addr,
    pub transport: SessionTransport,
    /// The server's RDMA CM address (ksmbd: port 445 for RoCE).
    pub server: SocketAddrV4,
    pub share: String,
    pub user: String,
    pub password: String,
    /// Seeds the adapter and the client's random inputs.
    pub seed: u64,
    /// Path MTU of the connection.
    pub mtu: u32,
    /// Where the adapter records every datagram, if anywhere.
    pub pcap: Option<PathBuf>,
    /// Bound of every wait.
    pub timeout: Duration,
    /// SMB2 dialects offered.
    pub dialects: Vec<u16>,
    /// MS-SMBD parameters (credits, sizes, keepalive timers).
    pub smbd: Config,
}

/// What the upcalls record.
#[derive(Debug, Default)]
struct Shared {
    disconnect_events: AtomicUsize,
    /// Kicked by the CQ notification and the disconnect event.
    kicks: Kicks,
}

unsafe extern "system" fn on_disconnect(ctx: PVOID) {
    // SAFETY: `ctx` is the session's `Shared`, alive until the adapter is
    // closed.
    let s = unsafe { &*ctx.cast::<Shared>() };
    s.disconnect_events.fetch_add(1, Ordering::SeqCst);
    s.kicks.kick();
}

/// Process memory registered through NdkCreateMr/NdkRegisterMr. Freed only
/// after the adapter (and so the MR) is closed.
#[derive(Debug)]
pub struct Region {
    mem: Memory,
    mr: *mut NDK_MR,
    local_token: u32,
    remote_token: u32,
    /// A fast-register MR: its logical address mapping (NdkBuildLAM), page
    /// count and first-byte offset.
    fr: Option<(Vec<u64>, u32, u32)>,
}

impl Region {
    fn new(pd: *mut NDK_PD, len: usize, remote: bool, t: Duration) -> Result<Region, String> {
        let mut mem = memory(len);
        let mut flags = NDK_MR_FLAG_ALLOW_LOCAL_WRITE;
        if remote {
            flags |= NDK_MR_FLAG_ALLOW_REMOTE_READ | NDK_MR_FLAG_ALLOW_REMOTE_WRITE;
        }
        // The memory is the region's, which is freed only after the
        // adapter (and so the MR) is closed.
        let mr = register_mr(pd, mem.mdl(), len, flags, |call| request(t, call))?;
        Ok(Region {
            mem,
            mr,
            local_token: local_token(mr),
            remote_token: remote_token(mr),
            fr: None,
        })
    }

    /// A fast-register MR over `len` bytes, as the Windows SMB client
    /// registers its buffers: pages from NdkBuildLAM, NdkCreateMr with
    /// FastRegister, NdkInitializeFastRegisterMr. Each transfer then needs
    /// NdkFastRegister (a new token) and ends with an invalidation.
    fn new_fast(
        a: *mut NDK_ADAPTER,
        pd: *mut NDK_PD,
        len: usize,
        t: Duration,
    ) -> Result<Region, String> {
        let mut mem = memory(len);
        let mdlp = mem.mdl();
        let (mut size, mut fbo) = (0 as ULONG, 0 as ULONG);
        let build = disp!(a, NdkBuildLAM).ok_or("no NdkBuildLAM")?;
        // SAFETY: live adapter; a size query (no LAM).
        unsafe {
            build(
                a,
                mdlp,
                len,
                None,
                ptr::null_mut(),
                ptr::null_mut(),
                &mut size,
                &mut fbo,
            )
        };
        let mut lam = vec![0u64; size as usize / 8 + 1];
        let lamp = lam.as_mut_ptr().cast::<NDK_LOGICAL_ADDRESS_MAPPING>();
        let st = request(t, |cb, ctx| {
            // SAFETY: `lam` has room for `size` bytes.
            unsafe { build(a, mdlp, len, cb, ctx, lamp, &mut size, &mut fbo) }
        });
        check(st, "NdkBuildLAM")?;
        // SAFETY: filled in by NdkBuildLAM.
        let pages = unsafe { (*lamp).AdapterPageCount };
        let mr = create_mr(pd, true).map_err(|st| failed("NdkCreateMr(FastRegister)", st))?;
        let st = request(t, |cb, ctx| match disp!(mr, NdkInitializeFastRegisterMr) {
            // SAFETY: live MR.
            Some(f) => unsafe { f(mr, pages, TRUE, cb, ctx) },
            None => STATUS_NOT_IMPLEMENTED,
        });
        check(st, "NdkInitializeFastRegisterMr")?;
        Ok(Region {
            mem,
            mr,
            local_token: 0,
            remote_token: 0,
            fr: Some((lam, pages, fbo)),
        })
    }

    /// Deregisters a regular MR (a fast-register MR was invalidated by its
    /// last use) and closes it.
    fn close(&mut self, t: Duration) -> Result<(), String> {
        let mr = std::mem::replace(&mut self.mr, ptr::null_mut());
        if mr.is_null() {
            return Ok(());
        }
        if self.fr.is_none() {
            let st = request(t, |cb, ctx| match disp!(mr, NdkDeregisterMr) {
                // SAFETY: live, registered MR with no request in flight.
                Some(f) => unsafe { f(mr, cb, ctx) },
                None => STATUS_NOT_IMPLEMENTED,
            });
            check(st, "NdkDeregisterMr")?;
        }
        close_object(mr.cast(), disp!(mr, NdkCloseMr), t, "MR")
    }

    /// The remote token of the current registration.
    pub fn token(&self) -> u32 {
        self.remote_token
    }

    fn sge(&self, off: usize, len: usize) -> NDK_SGE {
        self.mem.sge(off, len, self.local_token)
    }

    /// The MS-SMBD buffer descriptor of `off..off+len` (address and token
    /// as the peer uses them).
    pub fn descriptor(&self, off: usize, len: usize) -> BufferDescriptorV1 {
        BufferDescriptorV1 {
            offset: self.mem.bytes().as_ptr() as u64 + off as u64,
            token: self.remote_token,
            length: len as u32,
        }
    }

    /// The bytes. Only read or written while no RDMA into them is in
    /// flight (the SMB2 response orders that).
    pub fn bytes(&self) -> &[u8] {
        self.mem.bytes()
    }

    pub fn bytes_mut(&mut self) -> &mut [u8] {
        self.mem.bytes_mut()
    }
}

/// What a session saw, for the report.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub smbd_sent: usize,
    pub smbd_received: usize,
    /// Receives that completed with STATUS_CANCELLED (the flush).
    pub receives_cancelled: usize,
    /// Sends that completed with STATUS_CANCELLED (the flush of a Send the
    /// peer never acknowledged, its side gone).
    pub sends_cancelled: usize,
    /// Other failed completions (status, kind).
    pub failed: Vec<(NTSTATUS, &'static str)>,
}

/// One SMB Direct session over ndkrs.
pub struct Session {
    cfg: SessionConfig,
    adapter: Option<ConsumerAdapter>,
    pd: *mut NDK_PD,
    cq: *mut NDK_CQ,
    qp: *mut NDK_QP,
    conn: *mut NDK_CONNECTOR,
    shared: Arc<Shared>,
    recv: Region,
    recv_free: Vec<usize>,
    recv_posted: usize,
    send: Region,
    send_free: Vec<usize>,
    data: Vec<Region>,
    fr_done: Option<NTSTATUS>,
    invalidated: Vec<u32>,
    smbd: Connection,
    client: Client,
    events: VecDeque<ClientEvent>,
    /// Why the MS-SMBD connection ended (it asked for NdkDisconnect).
    pub ended: Option<DisconnectReason>,
    pub stats: Stats,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("ended", &self.ended)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

fn splitmix(s: &mut u64) -> u64 {
    *s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *s;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn random<const N: usize>(s: &mut u64) -> [u8; N] {
    let mut out = [0u8; N];
    for c in out.chunks_mut(8) {
        let v = splitmix(s).to_le_bytes();
        c.copy_from_slice(&v[..c.len()]);
    }
    out
}

/// An SMB2 dialect as people write it (0x0311: "3.1.1").
pub fn dialect_text(d: u16) -> String {
    match d {
        0x0202 => "2.0.2".into(),
        0x0210 => "2.1".into(),
        0x0300 => "3.0".into(),
        0x0302 => "3.0.2".into(),
        0x0311 => "3.1.1".into(),
        other => format!("dialect {other:#06x}"),
    }
}

/// A byte count in the largest binary unit that divides it (1048576:
/// "1 MiB"), else in bytes.
pub fn bytes_text(n: u64) -> String {
    for (unit, name) in [(1u64 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")] {
        if n >= unit && n.is_multiple_of(unit) {
            return format!("{} {name}", n / unit);
        }
    }
    format!("{n} bytes")
}

/// Why NdkConnect to `server` failed, and what to check.
pub fn connect_failure(server: SocketAddrV4, st: NTSTATUS) -> String {
    let status = StatusText(st);
    let hint = match st {
        STATUS_IO_TIMEOUT | STATUS_TIMEOUT => format!(
            "no answer from {server}: check that the SMB Direct server is running there, that \
             --server names its RoCE address (and port, {} by default), and that UDP port {ROCE_PORT} \
             reaches it (firewall, route)",
            server.port()
        ),
        STATUS_CONNECTION_REFUSED => format!(
            "{server} refused the connection: nothing listens for SMB Direct on port {} there \
             (is the server started, on that port?)",
            server.port()
        ),
        STATUS_HOST_UNREACHABLE | STATUS_NETWORK_UNREACHABLE | STATUS_PORT_UNREACHABLE => format!(
            "{server} cannot be reached: check the address, the route from --local, and that \
             something receives RoCEv2 (UDP {ROCE_PORT}) there"
        ),
        _ => format!("the connection to {server} failed"),
    };
    format!("NdkConnect: {status}: {hint}")
}

impl Session {
    /// Opens the adapter, makes the verbs objects, connects (RDMA CM, then
    /// MS-SMBD negotiate) and runs the SMB2 session up to tree connect.
    pub fn connect(cfg: SessionConfig) -> Result<Session, String> {
        Self::connect_with(cfg, CmConfig::default())
    }

    /// [`Session::connect`] with the adapter's CM timing `cm` (ndksmb
    /// takes [`host::adapter::quick_cm`], so a peer that does not answer
    /// fails the connect in about a second, not after the fabric-sized
    /// defaults).
    pub fn connect_with(cfg: SessionConfig, cm: CmConfig) -> Result<Session, String> {
        let t = cfg.timeout;
        let local = SocketAddr::from((cfg.local, ROCE_PORT));
        let adapter = match cfg.transport {
            SessionTransport::External(e) => {
                crate::ndk_consumer::use_kernel_mdls();
                ConsumerAdapter::External(e)
            }
            own => {
                let transport: Box<dyn Transport> = match own {
                    SessionTransport::Raw => {
                        Box::new(RawTransport::bind(local).map_err(|e| format!("raw socket: {e}"))?)
                    }
                    _ => {
                        Box::new(UdpTransport::bind(local).map_err(|e| format!("UDP socket: {e}"))?)
                    }
                };
                ConsumerAdapter::Own(Adapter::open(
                    transport,
                    &AdapterConfig {
                        seed: Seed::Fixed(cfg.seed),
                        mtu: cfg.mtu,
                        cm,
                        ..AdapterConfig::default()
                    },
                    cfg.pcap.as_deref(),
                )?)
            }
        };
        let a = adapter.ptr();
        let shared = Arc::new(Shared::default());

        let pd = create_pd(a).map_err(|st| failed("NdkCreatePd", st))?;
        // The session keeps `shared` until the adapter is closed.
        let cq = create_cq(a, 2 * SLOTS, &shared.kicks).map_err(|st| failed("NdkCreateCq", st))?;
        let qp = create_qp(pd, cq, SLOTS, SLOTS).map_err(|st| failed("NdkCreateQp", st))?;
        let recv = Region::new(pd, SLOTS * MSG, false, t)?;
        let send = Region::new(pd, SLOTS * MSG, false, t)?;

        let mut conn = ptr::null_mut();
        let st = match disp!(a, NdkCreateConnector) {
            // SAFETY: live adapter.
            Some(f) => unsafe { f(a, None, ptr::null_mut(), &mut conn) },
            None => STATUS_NOT_IMPLEMENTED,
        };
        check(st, "NdkCreateConnector")?;

        let mut s = cfg.seed ^ 0x5bd1_e995;
        let client = Client::new(ClientConfig {
            server: cfg.server.ip().to_string(),
            share: cfg.share.clone(),
            credentials: Credentials {
                user: cfg.user.clone(),
                domain: String::new(),
                password: cfg.password.clone(),
                workstation: "NDKRS".into(),
            },
            dialects: cfg.dialects.clone(),
            signing_algorithms: vec![signing_alg::AES_GMAC, signing_alg::AES_CMAC],
            require_signing: true,
            client_guid: random(&mut s),
            preauth_salt: random(&mut s),
            client_challenge: random(&mut s),
            random_session_key: random(&mut s),
            filetime_now: filetime_now(),
        });
        let smbd_cfg = cfg.smbd;
        let mut sess = Session {
            cfg,
            adapter: Some(adapter),
            pd,
            cq,
            qp,
            conn,
            shared,
            recv,
            recv_free: (0..SLOTS).rev().collect(),
            recv_posted: 0,
            send,
            send_free: (0..SLOTS).rev().collect(),
            data: Vec::new(),
            fr_done: None,
            invalidated: Vec::new(),
            smbd: Connection::new(Role::Client, smbd_cfg),
            client,
            events: VecDeque::new(),
            ended: None,
            stats: Stats::default(),
        };
        sess.rdma_connect()?;
        if let Err(e) = sess.start() {
            // A session that fails after the RDMA connection is up still
            // ends it on the wire, so the server is not left waiting.
            let _ = sess.ndk_disconnect();
            let _ = sess.close();
            return Err(e);
        }
        Ok(sess)
    }

    /// MS-SMBD negotiate, then the SMB2 session up to tree connect.
    fn start(&mut self) -> Result<(), String> {
        self.smbd
            .handle(Instant::now(), Event::Connected)
            .map_err(|e| format!("MS-SMBD: {e:?}"))?;
        self.pump(|s| s.smbd.is_established(), "the MS-SMBD negotiate")?;
        self.client.start().map_err(|e| format!("SMB2: {e:?}"))?;
        self.pump(
            |s| {
                s.events
                    .iter()
                    .any(|e| matches!(e, ClientEvent::Ready { .. }))
            },
            "SMB2 negotiate, session setup and tree connect",
        )
    }

    fn rdma_connect(&mut self) -> Result<(), String> {
        let t = self.cfg.timeout;
        let (conn, qp) = (self.conn, self.qp);
        let src = sockaddr(SocketAddrV4::new(self.cfg.local, 0));
        let dst = sockaddr(self.cfg.server);
        let len = SOCKADDR_IN_LEN;
        // ksmbd RDMA-reads the data of a WRITE: it may have up to 8 reads
        // outstanding (its initiator depth), so allow 16 inbound.
        let st = request(t, |cb, ctx| match disp!(conn, NdkConnect) {
            // SAFETY: live connector and QP; addresses read during the call.
            Some(f) => unsafe {
                f(
                    conn,
                    qp,
                    (&src as *const SOCKADDR_IN).cast(),
                    len,
                    (&dst as *const SOCKADDR_IN).cast(),
                    len,
                    16,
                    16,
                    ptr::null(),
                    0,
                    cb,
                    ctx,
                )
            },
            None => STATUS_NOT_IMPLEMENTED,
        });
        if st != STATUS_SUCCESS {
            return Err(connect_failure(self.cfg.server, st));
        }
        let sctx = Arc::as_ptr(&self.shared).cast_mut().cast();
        let st = request(t, |cb, ctx| match disp!(conn, NdkCompleteConnect) {
            // SAFETY: live connector; `sctx` outlives it.
            Some(f) => unsafe { f(conn, Some(on_disconnect), sctx, cb, ctx) },
            None => STATUS_NOT_IMPLEMENTED,
        });
        check(st, "NdkCompleteConnect")
    }

    /// Disconnect events the provider delivered so far.
    pub fn disconnect_events(&self) -> usize {
        self.shared.disconnect_events.load(Ordering::SeqCst)
    }

    /// Receives posted and not yet completed.
    pub fn receives_posted(&self) -> usize {
        self.recv_posted
    }

    /// The SMB2 session phase.
    pub fn phase(&self) -> &Phase {
        self.client.phase()
    }

    /// The negotiated sizes: (SMB2 max read, SMB2 max write, MS-SMBD max
    /// read/write).
    pub fn limits(&self) -> (u32, u32, u32) {
        let (mut r, mut w) = (0, 0);
        for e in &self.events {
            if let ClientEvent::Ready {
                max_read_size,
                max_write_size,
                ..
            } = e
            {
                (r, w) = (*max_read_size, *max_write_size);
            }
        }
        let rw = self.smbd.negotiated().map_or(0, |n| n.max_read_write_size);
        (r, w, rw)
    }

    /// The negotiated session in words: dialect, signing, the SMB2 and
    /// MS-SMBD transfer limits (`SMB 3.1.1, signed with AES-GMAC, reads up
    /// to 1 MiB, writes up to 1 MiB, RDMA transfers up to 1 MiB`).
    pub fn ready_text(&self) -> String {
        let Some(ClientEvent::Ready {
            dialect,
            signing_algorithm,
            max_read_size,
            max_write_size,
        }) = self
            .events
            .iter()
            .find(|e| matches!(e, ClientEvent::Ready { .. }))
        else {
            return "no SMB2 session".into();
        };
        let signing = match signing_algorithm {
            Some(signing_alg::AES_GMAC) => "signed with AES-GMAC".to_string(),
            Some(signing_alg::AES_CMAC) => "signed with AES-CMAC".to_string(),
            Some(signing_alg::HMAC_SHA256) => "signed with HMAC-SHA256".to_string(),
            Some(a) => format!("signed with algorithm {a:#06x}"),
            None => "unsigned".to_string(),
        };
        let rw = self.smbd.negotiated().map_or(0, |n| n.max_read_write_size);
        format!(
            "SMB {}, {signing}, reads up to {}, writes up to {}, RDMA transfers up to {}",
            dialect_text(*dialect),
            bytes_text(u64::from(*max_read_size)),
            bytes_text(u64::from(*max_write_size)),
            bytes_text(u64::from(rw)),
        )
    }

    /// Registers a data buffer of `len` bytes the server may read and
    /// write; returns its index.
    pub fn register(&mut self, len: usize) -> Result<usize, String> {
        let r = Region::new(self.pd, len, true, self.cfg.timeout)?;
        self.data.push(r);
        Ok(self.data.len() - 1)
    }

    /// Like [`Session::register`], with a fast-register MR.
    pub fn register_fast(&mut self, len: usize) -> Result<usize, String> {
        let a = self
            .adapter
            .as_ref()
            .map(ConsumerAdapter::ptr)
            .ok_or("closed")?;
        let r = Region::new_fast(a, self.pd, len, self.cfg.timeout)?;
        self.data.push(r);
        Ok(self.data.len() - 1)
    }

    /// NdkFastRegister of fast-register region `r` on the QP (remote read
    /// and write); returns the new remote token once it completed.
    pub fn fast_register(&mut self, r: usize) -> Result<u32, String> {
        let reg = &self.data[r];
        let (lam, pages, fbo) = reg.fr.as_ref().ok_or("not a fast-register region")?;
        // SAFETY: `lam` holds the mapping NdkBuildLAM filled in.
        let array = unsafe {
            ptr::addr_of!((*lam.as_ptr().cast::<NDK_LOGICAL_ADDRESS_MAPPING>()).AdapterPageArray)
        }
        .cast::<NDK_LOGICAL_ADDRESS>();
        let (mr, len, va) = (reg.mr, reg.mem.len(), reg.mem.bytes().as_ptr());
        let st = match disp!(self.qp, NdkFastRegister) {
            // SAFETY: live QP and MR; the page array is read during the call.
            Some(f) => unsafe {
                f(
                    self.qp,
                    (KIND_FR | r) as PVOID,
                    mr,
                    *pages,
                    array,
                    *fbo,
                    len,
                    va.cast_mut().cast(),
                    NDK_OP_FLAG_ALLOW_REMOTE_READ | NDK_OP_FLAG_ALLOW_REMOTE_WRITE,
                )
            },
            None => STATUS_NOT_IMPLEMENTED,
        };
        check(st, "NdkFastRegister")?;
        self.fr_done = None;
        self.pump(|s| s.fr_done.is_some(), "NdkFastRegister")?;
        check(
            self.fr_done.take().unwrap_or(STATUS_IO_TIMEOUT),
            "NdkFastRegister completion",
        )?;
        // SAFETY: live MR.
        let token = disp!(mr, NdkGetRemoteTokenFromMr).map_or(0, |f| unsafe { f(mr) });
        self.data[r].remote_token = token;
        Ok(token)
    }

    /// Tokens the server invalidated (Receive-and-Invalidate completions).
    pub fn invalidated(&self) -> &[u32] {
        &self.invalidated
    }

    pub fn region(&self, i: usize) -> &Region {
        &self.data[i]
    }

    pub fn region_mut(&mut self, i: usize) -> &mut Region {
        &mut self.data[i]
    }

    fn wait_event(
        &mut self,
        what: &str,
        id: u64,
        pick: impl Fn(&ClientEvent) -> Option<u64>,
    ) -> Result<ClientEvent, String> {
        self.pump(
            |s| {
                s.events.iter().any(|e| {
                    pick(e) == Some(id)
                        || matches!(e, ClientEvent::OperationFailed { id: i, .. } if *i == id)
                        || matches!(e, ClientEvent::Failed(_))
                })
            },
            what,
        )?;
        // The answer, or the failure status that took its place.
        let pos = self
            .events
            .iter()
            .position(|e| {
                pick(e) == Some(id)
                    || matches!(e, ClientEvent::OperationFailed { id: i, .. } if *i == id)
            })
            .ok_or_else(|| format!("{what}: {:?}", self.events))?;
        Ok(self.events.remove(pos).unwrap_or(ClientEvent::LoggedOff))
    }

    fn issue(&mut self, r: Result<u64, smbd::smb2::client::ClientError>) -> Result<u64, String> {
        r.map_err(|e| format!("SMB2 request refused: {e:?}"))
    }

    /// CREATE (overwrite-if) of `name`.
    pub fn create(&mut self, name: &str) -> Result<FileId, String> {
        let r = self.client.create(name);
        self.created(r).map(|(fid, _)| fid)
    }

    /// CREATE that opens the existing file `name` for reading: its id and
    /// size.
    pub fn open(&mut self, name: &str) -> Result<(FileId, u64), String> {
        let r = self.client.open(name);
        self.created(r)
    }

    fn created(
        &mut self,
        r: Result<u64, smbd::smb2::client::ClientError>,
    ) -> Result<(FileId, u64), String> {
        let id = self.issue(r)?;
        match self.wait_event("CREATE", id, |e| match e {
            ClientEvent::Created { id, .. } => Some(*id),
            _ => None,
        })? {
            ClientEvent::Created { response, .. } => Ok((response.file_id, response.end_of_file)),
            ClientEvent::OperationFailed { status, .. } => {
                Err(format!("CREATE: {}", StatusText(status as NTSTATUS)))
            }
            e => Err(format!("CREATE: {e:?}")),
        }
    }

    /// WRITE of region `r`'s `off..off+len` at file offset `fo`, the server
    /// RDMA-reading it.
    pub fn write_rdma(
        &mut self,
        fid: FileId,
        fo: u64,
        r: usize,
        off: usize,
        len: usize,
    ) -> Result<u32, String> {
        let d = vec![self.data[r].descriptor(off, len)];
        // Remote invalidation only for fast-register MRs (a regular MR
        // cannot be invalidated).
        let inv = self.data[r].fr.is_some();
        let req = self.client.write_rdma(fid, fo, len as u32, d, inv);
        let id = self.issue(req)?;
        match self.wait_event("WRITE", id, |e| match e {
            ClientEvent::Written { id, .. } => Some(*id),
            _ => None,
        })? {
            ClientEvent::Written { count, .. } => Ok(count),
            e => Err(format!("WRITE: {e:?}")),
        }
    }

    /// READ of `len` bytes at file offset `fo` into region `r` at `off`,
    /// the server RDMA-writing them.
    pub fn read_rdma(
        &mut self,
        fid: FileId,
        fo: u64,
        r: usize,
        off: usize,
        len: usize,
    ) -> Result<u32, String> {
        let d = vec![self.data[r].descriptor(off, len)];
        let inv = self.data[r].fr.is_some();
        let req = self.client.read_rdma(fid, fo, len as u32, d, inv);
        let id = self.issue(req)?;
        match self.wait_event("READ", id, |e| match e {
            ClientEvent::Read { id, .. } => Some(*id),
            _ => None,
        })? {
            ClientEvent::Read {
                data,
                data_remaining,
                ..
            } if data.is_empty() => Ok(data_remaining),
            e => Err(format!("READ answered inline: {e:?}")),
        }
    }

    /// WRITE of `data` at file offset `fo` inside the message (MS-SMBD
    /// fragments it when it exceeds the peer's receive size).
    pub fn write_inline(&mut self, fid: FileId, fo: u64, data: &[u8]) -> Result<u32, String> {
        let req = self.client.write_inline(fid, fo, data);
        let id = self.issue(req)?;
        match self.wait_event("inline WRITE", id, |e| match e {
            ClientEvent::Written { id, .. } => Some(*id),
            _ => None,
        })? {
            ClientEvent::Written { count, .. } => Ok(count),
            e => Err(format!("inline WRITE: {e:?}")),
        }
    }

    /// READ of `len` bytes at file offset `fo`, answered inside the
    /// response (reassembled from MS-SMBD fragments).
    pub fn read_inline(&mut self, fid: FileId, fo: u64, len: u32) -> Result<Vec<u8>, String> {
        let req = self.client.read_inline(fid, fo, len);
        let id = self.issue(req)?;
        match self.wait_event("inline READ", id, |e| match e {
            ClientEvent::Read { id, .. } => Some(*id),
            _ => None,
        })? {
            ClientEvent::Read { data, .. } => Ok(data),
            e => Err(format!("inline READ: {e:?}")),
        }
    }

    /// LOGOFF; the MS-SMBD connection stays up.
    pub fn logoff(&mut self) -> Result<(), String> {
        let r = self.client.logoff();
        self.issue(r)?;
        self.pump(
            |s| s.events.iter().any(|e| matches!(e, ClientEvent::LoggedOff)),
            "LOGOFF",
        )?;
        self.events.retain(|e| !matches!(e, ClientEvent::LoggedOff));
        Ok(())
    }

    /// Runs the connection with nothing to send for `d` (its keepalive
    /// timer may fire); fails if the connection ends meanwhile.
    pub fn idle(&mut self, d: Duration) -> Result<(), String> {
        let until = Instant::now() + d;
        let saved = self.cfg.timeout;
        self.cfg.timeout = d + Duration::from_secs(1);
        let r = self.pump(move |_| Instant::now() >= until, "idle");
        self.cfg.timeout = saved;
        r
    }

    pub fn close_file(&mut self, fid: FileId) -> Result<(), String> {
        let r = self.client.close(fid);
        let id = self.issue(r)?;
        self.wait_event("CLOSE", id, |e| match e {
            ClientEvent::Closed { id } => Some(*id),
            _ => None,
        })
        .map(drop)
    }

    /// Runs until the peer's disconnect has been seen (the disconnect event
    /// made the MS-SMBD connection end) or `t` passes.
    pub fn wait_peer_disconnect(&mut self, t: Duration) -> Result<(), String> {
        let saved = self.cfg.timeout;
        self.cfg.timeout = t;
        let r = self.pump(|s| s.ended.is_some(), "the server's disconnect");
        self.cfg.timeout = saved;
        r
    }

    /// Takes every completion the CQ holds now (without waiting).
    pub fn drain(&mut self) {
        while self.poll_cq() {}
    }

    /// NdkDisconnect, then collects the flushed receives: the time it took
    /// to complete, with its status.
    pub fn ndk_disconnect(&mut self) -> Result<Duration, String> {
        let t0 = Instant::now();
        let conn = self.conn;
        let st = request(self.cfg.timeout, |cb, ctx| {
            match disp!(conn, NdkDisconnect) {
                // SAFETY: live connector.
                Some(f) => unsafe { f(conn, cb, ctx) },
                None => STATUS_NOT_IMPLEMENTED,
            }
        });
        let took = t0.elapsed();
        check(st, "NdkDisconnect")?;
        // The flush completes every pending receive.
        let end = Instant::now() + self.cfg.timeout;
        while self.recv_posted > 0 && Instant::now() < end {
            if !self.poll_cq() {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        Ok(took)
    }

    /// Live provider objects (what closing the adapter will free).
    pub fn object_count(&self) -> usize {
        self.adapter
            .as_ref()
            .map_or(0, ConsumerAdapter::object_count)
    }

    /// Closes every object as a consumer does before it lets go of an
    /// adapter (connector, QP, CQ, each MR after deregistering it, PD),
    /// checks the provider holds none of them any more, then closes the
    /// adapter. Dropping a session instead closes only the adapter, which
    /// frees whatever is left.
    pub fn close(mut self) -> Result<(), String> {
        let t = self.cfg.timeout;
        let conn = std::mem::replace(&mut self.conn, ptr::null_mut());
        close_object(conn.cast(), disp!(conn, NdkCloseConnector), t, "connector")?;
        let qp = std::mem::replace(&mut self.qp, ptr::null_mut());
        close_object(qp.cast(), disp!(qp, NdkCloseQp), t, "QP")?;
        let cq = std::mem::replace(&mut self.cq, ptr::null_mut());
        close_object(cq.cast(), disp!(cq, NdkCloseCq), t, "CQ")?;
        let regions = self.data.iter_mut().chain([&mut self.recv, &mut self.send]);
        for r in regions {
            r.close(t)?;
        }
        let pd = std::mem::replace(&mut self.pd, ptr::null_mut());
        close_object(pd.cast(), disp!(pd, NdkClosePd), t, "PD")?;
        let left = self
            .adapter
            .as_ref()
            .map_or(0, |a| a.object_count_settled(0, Duration::from_secs(1)));
        self.shutdown();
        if left == 0 {
            Ok(())
        } else {
            Err(format!(
                "{left} provider objects left after closing them all"
            ))
        }
    }

    fn shutdown(&mut self) {
        if let Some(a) = self.adapter.take() {
            // SAFETY: no call on the adapter runs from here on; the
            // session's pointers are not used again.
            unsafe { a.close() };
        }
    }

    // -----------------------------------------------------------------
    // The loop

    /// Moves messages and completions until `done` holds; fails on a
    /// session failure, an ended connection or the timeout.
    fn pump(&mut self, done: impl Fn(&Session) -> bool, what: &str) -> Result<(), String> {
        let end = Instant::now() + self.cfg.timeout;
        loop {
            let seen = self.shared.kicks.seen();
            let mut moved = self.step()?;
            moved |= self.poll_cq();
            if done(self) {
                return Ok(());
            }
            if let Some(e) = self
                .events
                .iter()
                .find(|e| matches!(e, ClientEvent::Failed(_)))
            {
                let why = match e {
                    ClientEvent::Failed(ClientError::Status { command, status }) => {
                        format!(
                            "SMB2 command {command} failed with {}",
                            StatusText(*status as NTSTATUS)
                        )
                    }
                    e => format!("SMB2 client failed: {e:?}"),
                };
                return Err(format!("{what}: {why}"));
            }
            if let Some(r) = self.ended {
                return Err(format!("{what}: the MS-SMBD connection ended: {r:?}"));
            }
            let now = Instant::now();
            if now >= end {
                return Err(format!(
                    "{what}: nothing after {:?} (phase {:?}, {:?})",
                    self.cfg.timeout,
                    self.client.phase(),
                    self.stats
                ));
            }
            if !moved {
                arm_cq(self.cq);
                if self.poll_cq() {
                    continue;
                }
                let mut wait = Duration::from_millis(20).min(end - now);
                if let Some(at) = self.smbd.poll_timeout() {
                    wait = wait.min(at.saturating_duration_since(now));
                }
                self.shared.kicks.wait(seen, wait);
                let now = Instant::now();
                if self.smbd.poll_timeout().is_some_and(|at| at <= now) {
                    self.smbd.handle_timeout(now);
                }
            }
        }
    }

    /// One pass over the machines' outputs.
    fn step(&mut self) -> Result<bool, String> {
        let mut moved = false;
        let now = Instant::now();
        while let Some(m) = self.client.poll_transmit() {
            moved = true;
            self.smbd
                .handle(now, Event::Send(&m))
                .map_err(|e| format!("MS-SMBD send: {e:?}"))?;
        }
        while let Some(e) = self.client.poll_event() {
            self.events.push_back(e);
        }
        while let Some(o) = self.smbd.poll_output() {
            moved = true;
            match o {
                Output::Send(b) => self.post_send(&b)?,
                Output::PostReceives(n) => {
                    for _ in 0..n {
                        self.post_receive()?;
                    }
                }
                Output::Deliver(m) => {
                    // A failure shows as ClientEvent::Failed.
                    let _ = self.client.handle_message(&m);
                }
                Output::Disconnect(r) => {
                    self.ended = Some(r);
                }
            }
        }
        while let Some(e) = self.client.poll_event() {
            self.events.push_back(e);
        }
        Ok(moved)
    }

    fn post_receive(&mut self) -> Result<(), String> {
        let i = self
            .recv_free
            .pop()
            .ok_or("MS-SMBD asked for more receives than there are buffers")?;
        let sge = self.recv.sge(i * MSG, MSG);
        let st = receive(self.qp, KIND_RECV | i, &sge);
        if st != STATUS_SUCCESS {
            self.recv_free.push(i);
            return Err(format!("NdkReceive failed: {st:#010x}"));
        }
        self.recv_posted += 1;
        Ok(())
    }

    fn post_send(&mut self, b: &[u8]) -> Result<(), String> {
        if b.len() > MSG {
            return Err(format!("an MS-SMBD message of {} bytes", b.len()));
        }
        let i = self.send_free.pop().ok_or("no free send buffer")?;
        self.send.mem.bytes_mut()[i * MSG..i * MSG + b.len()].copy_from_slice(b);
        let sge = self.send.sge(i * MSG, b.len());
        let st = send(self.qp, KIND_SEND | i, &sge, None);
        if st != STATUS_SUCCESS {
            self.send_free.push(i);
            return Err(format!("NdkSend failed: {st:#010x}"));
        }
        self.stats.smbd_sent += 1;
        Ok(())
    }

    /// Takes what the CQ holds; whether there was anything.
    fn poll_cq(&mut self) -> bool {
        let n = take_completions(self.cq, |r| self.completion(r));
        // The disconnect event (or a failed completion) ends MS-SMBD.
        if self.disconnect_events() > 0 && self.ended.is_none() && self.smbd.closed().is_none() {
            let _ = self.smbd.handle(Instant::now(), Event::PeerDisconnected);
            let _ = self.step();
            // MS-SMBD closes without asking for a disconnect (the transport
            // is gone); NdkDisconnect is still the consumer's to call.
            self.ended = self.ended.or(self.smbd.closed());
        }
        n > 0
    }

    fn completion(&mut self, r: &NDK_RESULT_EX) {
        let ctx = r.RequestContext as usize;
        let i = ctx & 0xFFFF;
        let kind = ctx & !0xFFFF;
        if kind == KIND_RECV {
            self.recv_posted -= 1;
            self.recv_free.push(i);
            if r.Status == STATUS_SUCCESS {
                if r.Type == NdkOperationTypeReceiveAndInvalidate {
                    self.invalidated.push(r.TypeSpecificCompletionOutput as u32);
                }
                self.stats.smbd_received += 1;
                let len = (r.BytesTransferred as usize).min(MSG);
                let m = self.recv.mem.bytes()[i * MSG..i * MSG + len].to_vec();
                if self
                    .smbd
                    .handle(Instant::now(), Event::Received(&m))
                    .is_err()
                {
                    self.stats.failed.push((STATUS_SUCCESS, "receive refused"));
                }
            } else if r.Status == STATUS_CANCELLED {
                self.stats.receives_cancelled += 1;
            } else {
                self.stats.failed.push((r.Status, "receive"));
            }
        } else if kind == KIND_FR {
            self.fr_done = Some(r.Status);
        } else {
            self.send_free.push(i);
            if r.Status == STATUS_CANCELLED {
                self.stats.sends_cancelled += 1;
            } else if r.Status != STATUS_SUCCESS {
                self.stats.failed.push((r.Status, "send"));
            }
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Now as a FILETIME (100 ns since 1601).
fn filetime_now() -> u64 {
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (unix.as_nanos() / 100) as u64 + 116_444_736_000_000_000
}
