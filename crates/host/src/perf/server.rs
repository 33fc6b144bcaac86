//! The passive side: a listener that accepts every ndkperf or rping
//! connection and serves its mode from the CQ callback.

use super::*;

/// The server side of one connection.
pub(super) struct SConn {
    pub(super) server: *const ServerInner,
    pub(super) hello: Hello,
    pub(super) conn: *mut NDK_CONNECTOR,
    pub(super) qp: AtomicPtr<NDK_QP>,
    /// Data area `[0, size * data_slots)`, receive slots, then a send area.
    pub(super) buf: Mutex<Option<Buf>>,
    /// Stable copies of the buffer's address and token for the data path.
    pub(super) base: u64,
    pub(super) token: u32,
    pub(super) recv_slot: usize,
    /// Distinct receive slots in memory.
    pub(super) recv_mem: usize,
    /// Messages the data area holds (the client's slots for WRITE and
    /// READ bandwidth, else 1).
    pub(super) data_slots: usize,
    /// rping: the buffer the peer's source is Read into and Written back
    /// from (registered at the first advertisement, replaced by a larger
    /// one when a bigger size is advertised).
    pub(super) rping: Mutex<Option<Buf>>,
    /// Data-path state, touched only under the server's CQ drive.
    pub(super) dp: UnsafeCell<SData>,
    pub(super) torn_down: AtomicBool,
    /// When the connection was accepted.
    pub(super) started: Instant,
    /// Messages received (Sends; rping: iterations).
    pub(super) received: AtomicU64,
    /// The client's address, if the connector told it.
    pub(super) peer: Option<SocketAddr>,
}

/// One client a server served, once its connection ended.
#[derive(Debug, Clone)]
pub struct ClientRecord {
    /// The client's address (the connector's peer address).
    pub peer: Option<SocketAddr>,
    /// The mode it ran and its message size.
    pub mode: Mode,
    /// Message size.
    pub size: u32,
    /// Accept to teardown.
    pub connected: Duration,
    /// Messages this side saw: Sends received (send_bw, send_lat), rping
    /// iterations; 0 for the one-sided modes, whose traffic the passive
    /// side's consumer never sees.
    pub received: u64,
}

/// The peer address of a connector, decoded from its SOCKADDR.
fn peer_of(conn: *mut NDK_CONNECTOR) -> Option<SocketAddr> {
    let mut raw = [0u8; 28];
    let mut len = raw.len() as ULONG;
    let st = match disp!(conn, NdkGetPeerAddress) {
        // SAFETY: a live connector; the buffer and its length are ours.
        Some(f) => unsafe { f(conn, raw.as_mut_ptr().cast(), &mut len) },
        None => STATUS_NOT_IMPLEMENTED,
    };
    if st != STATUS_SUCCESS {
        return None;
    }
    let family = u16::from_ne_bytes([raw[0], raw[1]]);
    let port = u16::from_be_bytes([raw[2], raw[3]]);
    if family == AF_INET {
        let ip: [u8; 4] = raw[4..8].try_into().ok()?;
        Some(SocketAddr::new(ip.into(), port))
    } else if family == AF_INET6 {
        let ip: [u8; 16] = raw[8..24].try_into().ok()?;
        Some(SocketAddr::new(ip.into(), port))
    } else {
        None
    }
}

#[derive(Debug, Default)]
pub(super) struct SData {
    /// rping: the next receive is the sink advertisement.
    pub(super) rping_sink: bool,
    /// rping: bytes of the current iteration's RDMA Read.
    pub(super) read_len: usize,
}

// SAFETY: `dp` is reached only under the server's drive lock; the rest is
// atomics, a mutex, and provider pointers the provider serializes.
unsafe impl Send for SConn {}
// SAFETY: as above.
unsafe impl Sync for SConn {}

impl SConn {
    pub(super) fn sge(&self, off: usize, len: usize) -> NDK_SGE {
        NDK_SGE {
            Address: NDK_SGE_ADDRESS {
                VirtualAddress: (self.base + off as u64) as PVOID,
            },
            Length: len as ULONG,
            MemoryRegionToken: self.token,
        }
    }
    /// The region the client's WRITEs and READs cycle through.
    pub(super) fn data_len(&self) -> usize {
        (self.hello.size as usize).max(64) * self.data_slots
    }
    /// Receive slot `i`'s offset: the receives share
    /// [`slots_within_budget`] slots.
    pub(super) fn slot_off(&self, i: usize) -> usize {
        self.data_len() + (i % self.recv_mem) * self.recv_slot
    }
    pub(super) fn send_off(&self) -> usize {
        self.data_len() + self.recv_mem * self.recv_slot
    }
}

pub(super) struct ServerInner {
    pub(super) adapter: *mut NDK_ADAPTER,
    pub(super) pd: *mut NDK_PD,
    pub(super) cq: AtomicPtr<NDK_CQ>,
    pub(super) drive: Drive,
    pub(super) reject: bool,
    pub(super) conns: Mutex<Vec<Arc<SConn>>>,
    pub(super) live: AtomicU64,
    pub(super) accepted: AtomicU64,
    pub(super) rejected: AtomicU64,
    /// rping iterations served (RDMA Write and its go-ahead posted).
    pub(super) pings: AtomicU64,
    /// rping connections ended for a protocol error.
    pub(super) protocol_errors: AtomicU64,
    pub(super) last_activity: AtomicU64,
    pub(super) epoch: Instant,
    /// Clients whose connections ended, for the server's per-client lines.
    pub(super) ended: Mutex<Vec<ClientRecord>>,
    /// The CQ poll's results, touched only under `drive`: kept, not made
    /// per callback (a 64-entry array zeroed on every completion cost
    /// send_lat's server about 2600 instructions per message).
    pub(super) res: UnsafeCell<[NDK_RESULT_EX; RESULTS]>,
}

// SAFETY: provider pointers; the provider serializes calls on them; `res`
// is reached only under the drive lock.
unsafe impl Send for ServerInner {}
// SAFETY: as above.
unsafe impl Sync for ServerInner {}

/// A running passive side: a listener that accepts every ndkperf
/// connection and serves its mode from the CQ callback.
pub struct Server {
    pub(super) inner: Arc<ServerInner>,
    pub(super) listener: *mut NDK_LISTENER,
    pub(super) port: u16,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("port", &self.port).finish()
    }
}

// SAFETY: as for ServerInner.
unsafe impl Send for Server {}

/// Server activity counters.
#[derive(Debug, Clone, Copy, Default)]
pub struct ServerStats {
    /// Connections accepted.
    pub accepted: u64,
    /// Connections rejected.
    pub rejected: u64,
    /// Connections not yet torn down.
    pub live: u64,
    /// rping iterations served (each: RDMA Read, go-ahead, RDMA Write,
    /// go-ahead).
    pub rping_iterations: u64,
    /// rping connections torn down for a protocol error (a Send that is
    /// not 16 bytes, a size over the limit, a failed post).
    pub rping_errors: u64,
    /// Time since the last connect or teardown.
    pub idle: Duration,
}

pub(super) unsafe extern "system" fn server_cq(ctx: PVOID, _status: NTSTATUS) {
    // SAFETY: `ctx` is the ServerInner, alive until the adapter closes.
    let s = unsafe { &*ctx.cast::<ServerInner>() };
    s.drive.run(|| s.service());
}

pub(super) unsafe extern "system" fn server_connect(ctx: PVOID, conn: *mut NDK_CONNECTOR) {
    // SAFETY: as above.
    let s = unsafe { &*ctx.cast::<ServerInner>() };
    s.incoming(conn);
}

pub(super) unsafe extern "system" fn server_disconnected(ctx: PVOID) {
    // SAFETY: `ctx` is an SConn the server keeps until it stops.
    let c = unsafe { &*ctx.cast::<SConn>() };
    // SAFETY: its server outlives it.
    let s = unsafe { &*c.server };
    s.teardown(c);
}

impl ServerInner {
    pub(super) fn touch(&self) {
        self.last_activity
            .store(self.epoch.elapsed().as_nanos() as u64, Ordering::Relaxed);
    }

    pub(super) fn reject(&self, conn: *mut NDK_CONNECTOR, why: &[u8]) {
        if let Some(f) = disp!(conn, NdkReject) {
            // SAFETY: the connector of the connect event.
            unsafe { f(conn, why.as_ptr().cast(), why.len() as ULONG) };
        }
        self.rejected.fetch_add(1, Ordering::Relaxed);
        close_then(conn.cast(), disp!(conn, NdkCloseConnector), |_| {});
    }

    /// The connect event: accept from inside it. A request without a
    /// [`Hello`] (Linux rping sends no private data) is an rping client.
    pub(super) fn incoming(&self, conn: *mut NDK_CONNECTOR) {
        self.touch();
        let mut irl = 0;
        let mut orl = 0;
        let mut data = [0u8; 64];
        let mut len = data.len() as ULONG;
        let st = match disp!(conn, NdkGetConnectionData) {
            // SAFETY: the event's connector; buffers of the stated sizes.
            Some(f) => unsafe { f(conn, &mut irl, &mut orl, data.as_mut_ptr().cast(), &mut len) },
            None => STATUS_NOT_IMPLEMENTED,
        };
        if st != STATUS_SUCCESS || self.reject {
            self.reject(conn, b"ndkperf: rejected");
            return;
        }
        let hello = Hello::decode(&data[..(len as usize).min(data.len())]);
        if let Err(e) = self.accept(conn, hello, irl.min(16), orl.min(16)) {
            let _ = e;
            self.reject(conn, b"ndkperf: no resources");
        }
    }

    pub(super) fn accept(
        &self,
        conn: *mut NDK_CONNECTOR,
        hello: Option<Hello>,
        irl: u32,
        orl: u32,
    ) -> Result<(), PerfError> {
        // rping's peers ask for (and rping accepts with) one RDMA Read
        // each way.
        let (hello, irl, orl) = match hello {
            Some(h) => (h, irl, orl),
            None => (
                Hello {
                    mode: Mode::Rping,
                    size: 0,
                    depth: 0,
                    slots: 1,
                },
                irl.clamp(1, 16),
                orl.clamp(1, 16),
            ),
        };
        let size = (hello.size as usize).clamp(1, 1 << 30);
        // The client's slots (Params::slots): the region its WRITEs and
        // READs cycle through, or the buffers its SENDs land in.
        let slots = hello.slots.max(1) as usize;
        let data_slots = match hello.mode {
            Mode::WriteBw | Mode::ReadBw | Mode::Rperf => slots_within_budget(slots, size),
            _ => 1,
        };
        let (recvs, slot) = match hello.mode {
            Mode::SendBw => (hello.depth.clamp(1, 1024) as usize, size),
            Mode::SendLat => (2, size),
            Mode::Rping => (2, RdmaInfo::LEN),
            Mode::Disconnect => (1, size),
            _ => (0, 0),
        };
        let recv_mem = match hello.mode {
            Mode::SendBw => slots_within_budget(recvs.min(slots), slot),
            _ => slots_within_budget(recvs, slot),
        };
        let total = size.max(64) * data_slots + recv_mem * slot + RdmaInfo::LEN;
        let buf = Buf::new(self.pd, total)?;
        let c = Arc::new(SConn {
            server: self,
            hello,
            conn,
            qp: AtomicPtr::new(ptr::null_mut()),
            base: buf.addr(0),
            token: buf.token,
            buf: Mutex::new(Some(buf)),
            recv_slot: slot,
            recv_mem,
            data_slots,
            rping: Mutex::new(None),
            dp: UnsafeCell::new(SData::default()),
            torn_down: AtomicBool::new(false),
            started: Instant::now(),
            received: AtomicU64::new(0),
            peer: peer_of(conn),
        });
        let cptr = Arc::as_ptr(&c);
        let qp = match create_qp(
            self.pd,
            self.cq.load(Ordering::Acquire),
            cptr as PVOID,
            recvs as u32 + 1,
            8,
        ) {
            Ok(q) => q,
            Err(e) => {
                if let Some(b) = c.buf.lock().ok().and_then(|mut b| b.take()) {
                    b.release();
                }
                return Err(e);
            }
        };
        c.qp.store(qp, Ordering::Release);
        self.conns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Arc::clone(&c));
        for i in 0..recvs {
            let _ = qp_recv(qp, i, &c.sge(c.slot_off(i), slot));
        }
        let info = RdmaInfo {
            buf: c.base,
            rkey: c.token,
            // Within SLOT_BUDGET (or one message of at most 1 GiB).
            size: u32::try_from(size * data_slots).unwrap_or(u32::MAX),
        };
        let mut pdata = [0u8; 20];
        pdata[..4].copy_from_slice(MAGIC);
        pdata[4..].copy_from_slice(&info.encode());
        // An rping peer gets what rping's server sends: nothing.
        let pdata: &[u8] = if hello.mode == Mode::Rping {
            &[]
        } else {
            &pdata
        };
        let c2 = Arc::clone(&c);
        let me = self as *const ServerInner as usize;
        let r = Req::new(move |st| {
            if st != STATUS_SUCCESS {
                // SAFETY: the server outlives its connections.
                let s = unsafe { &*(me as *const ServerInner) };
                s.teardown(&c2);
            }
        });
        let ctx = r.ctx();
        let st = match disp!(conn, NdkAccept) {
            // SAFETY: the event's connector, our QP, private data read
            // during the call.
            Some(f) => unsafe {
                f(
                    conn,
                    qp,
                    irl,
                    orl,
                    pdata.as_ptr().cast(),
                    pdata.len() as ULONG,
                    Some(server_disconnected),
                    cptr as PVOID,
                    Some(on_request),
                    ctx,
                )
            },
            None => STATUS_NOT_IMPLEMENTED,
        };
        self.accepted.fetch_add(1, Ordering::Relaxed);
        self.live.fetch_add(1, Ordering::Relaxed);
        r.finish(st);
        Ok(())
    }

    /// The peer disconnected (or the accept failed): disconnect our side,
    /// then close the QP, the connector and the MR.
    pub(super) fn teardown(&self, c: &SConn) {
        if c.torn_down.swap(true, Ordering::AcqRel) {
            return;
        }
        self.touch();
        if let Ok(mut e) = self.ended.lock() {
            // A control-path record, one per connection; the log is
            // bounded.
            if e.len() < 4096 {
                e.push(ClientRecord {
                    peer: c.peer,
                    mode: c.hello.mode,
                    size: c.hello.size,
                    connected: c.started.elapsed(),
                    received: c.received.load(Ordering::Relaxed),
                });
            }
        }
        let conn = c.conn as usize;
        let qp = c.qp.load(Ordering::Acquire) as usize;
        let buf = c.buf.lock().ok().and_then(|mut b| b.take());
        let rping = c.rping.lock().ok().and_then(|mut b| b.take());
        let live = &self.live as *const AtomicU64 as usize;
        // The connector first: a QP's close waits for its connector's.
        let close_all = move |_st: NTSTATUS| {
            let conn = conn as *mut NDK_CONNECTOR;
            let after_conn = move |_| {
                let qp = qp as *mut NDK_QP;
                let after_qp = move |_| {
                    if let Some(b) = buf {
                        b.release();
                    }
                    if let Some(b) = rping {
                        b.release();
                    }
                    // SAFETY: the server outlives its connections.
                    unsafe { &*(live as *const AtomicU64) }.fetch_sub(1, Ordering::Relaxed);
                };
                if qp.is_null() {
                    after_qp(STATUS_SUCCESS);
                } else {
                    close_then(qp.cast(), disp!(qp, NdkCloseQp), after_qp);
                }
            };
            close_then(conn.cast(), disp!(conn, NdkCloseConnector), after_conn);
        };
        let r = Req::new(close_all);
        let ctx = r.ctx();
        let st = match disp!(c.conn, NdkDisconnect) {
            // SAFETY: the connection's connector, not closed yet.
            Some(f) => unsafe { f(c.conn, Some(on_request), ctx) },
            None => STATUS_NOT_IMPLEMENTED,
        };
        r.finish(st);
    }

    /// The CQ callback's work: serve every completion, re-arm.
    pub(super) fn service(&self) {
        let cq = self.cq.load(Ordering::Acquire);
        // SAFETY: only the drive reaches `res`, and the drive is held.
        let res = unsafe { &mut *self.res.get() };
        loop {
            let n = cq_poll(cq, res);
            for r in &res[..n] {
                if r.Status != STATUS_SUCCESS || r.QPContext.is_null() {
                    continue;
                }
                // SAFETY: QP contexts are SConns the server keeps.
                let c = unsafe { &*r.QPContext.cast::<SConn>() };
                if c.torn_down.load(Ordering::Acquire) {
                    continue;
                }
                self.on_completion(c, r);
            }
            if n < res.len() {
                break;
            }
        }
        cq_arm(cq);
    }

    pub(super) fn on_completion(&self, c: &SConn, r: &NDK_RESULT_EX) {
        let qp = c.qp.load(Ordering::Acquire);
        // SAFETY: only the drive reaches `dp`, and the drive is held.
        let dp = unsafe { &mut *c.dp.get() };
        let size = c.hello.size as usize;
        if r.Type == NdkOperationTypeReceive && r.Status == STATUS_SUCCESS {
            c.received.fetch_add(1, Ordering::Relaxed);
        }
        match (c.hello.mode, r.Type) {
            (Mode::SendBw, NdkOperationTypeReceive) => {
                let i = r.RequestContext as usize;
                let _ = qp_recv(qp, i, &c.sge(c.slot_off(i), c.recv_slot));
            }
            (Mode::SendLat, NdkOperationTypeReceive) => {
                let i = r.RequestContext as usize;
                let _ = qp_recv(qp, i, &c.sge(c.slot_off(i), c.recv_slot));
                let _ = qp_send(qp, usize::MAX, &c.sge(0, size), 0);
            }
            (Mode::Rping, NdkOperationTypeReceive) => {
                let i = r.RequestContext as usize;
                let off = c.slot_off(i);
                // SAFETY: the receive into this slot completed; the slot
                // is reposted only below.
                let info = RdmaInfo::decode(unsafe {
                    std::slice::from_raw_parts((c.base + off as u64) as *const u8, 16)
                });
                let _ = qp_recv(qp, i, &c.sge(off, RdmaInfo::LEN));
                let info = match info {
                    Some(info) if r.BytesTransferred as usize == RdmaInfo::LEN => info,
                    // rping's server gives up on a message of another size.
                    _ => return self.rping_error(c),
                };
                if self.rping_advertised(c, dp, qp, info).is_err() {
                    self.rping_error(c);
                }
            }
            (Mode::Rping, NdkOperationTypeRead | NdkOperationTypeWrite) => {
                // The go-ahead after the Read and after the Write: 16
                // bytes, zero (rping's server never fills its message).
                let off = c.send_off();
                if r.Type == NdkOperationTypeWrite {
                    self.pings.fetch_add(1, Ordering::Relaxed);
                }
                if qp_send(qp, 3, &c.sge(off, RdmaInfo::LEN), 0).is_err() {
                    self.rping_error(c);
                }
            }
            _ => {}
        }
    }

    /// rping: the client advertised a buffer: its source (RDMA Read it
    /// whole) or its sink (RDMA Write back what was Read, as a C string).
    pub(super) fn rping_advertised(
        &self,
        c: &SConn,
        dp: &mut SData,
        qp: *mut NDK_QP,
        info: RdmaInfo,
    ) -> Result<(), ()> {
        // The SGE under the lock, the post after it (no lock across a
        // provider call).
        let mut rb = c.rping.lock().unwrap_or_else(|p| p.into_inner());
        if dp.rping_sink {
            dp.rping_sink = false;
            let b = rb.as_ref().ok_or(())?;
            // SAFETY: the Read into it completed (its go-ahead was sent
            // before the client advertised the sink); nothing is in flight.
            let len = rping_reply_len(unsafe { b.bytes_mut(0, dp.read_len) });
            let sge = b.sge(0, len);
            drop(rb);
            qp_write(qp, 1, &sge, info.buf, info.rkey).map_err(|_| ())
        } else {
            let len = info.size as usize;
            if len > RPING_MAX_SIZE {
                return Err(());
            }
            let mut old = None;
            if rb.as_ref().is_none_or(|b| b.len < len) {
                // Between iterations nothing is in flight on the old one.
                let new = Buf::new(self.pd, len.max(64)).map_err(|_| ())?;
                old = rb.replace(new);
            }
            let sge = rb.as_ref().ok_or(())?.sge(0, len);
            drop(rb);
            if let Some(b) = old {
                b.release();
            }
            dp.rping_sink = true;
            dp.read_len = len;
            qp_read(qp, 2, &sge, info.buf, info.rkey).map_err(|_| ())
        }
    }

    /// rping: the peer broke the protocol: end the connection.
    pub(super) fn rping_error(&self, c: &SConn) {
        self.protocol_errors.fetch_add(1, Ordering::Relaxed);
        self.teardown(c);
    }
}

impl Server {
    /// Starts listening on `addr` (its IP must be the adapter's; port: the
    /// CM port to listen on). `reject` rejects every request (tests).
    pub fn start(adapter: &Adapter, addr: SocketAddr, reject: bool) -> Result<Server, PerfError> {
        let a = adapter.ptr();
        let pd = create_pd(a)?;
        let inner = Arc::new(ServerInner {
            adapter: a,
            pd,
            cq: AtomicPtr::new(ptr::null_mut()),
            drive: Drive::default(),
            reject,
            conns: Mutex::new(Vec::new()),
            live: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            pings: AtomicU64::new(0),
            protocol_errors: AtomicU64::new(0),
            last_activity: AtomicU64::new(0),
            epoch: Instant::now(),
            ended: Mutex::new(Vec::new()),
            res: UnsafeCell::new(empty_results()),
        });
        let ctx = Arc::as_ptr(&inner) as PVOID;
        let cq = create_cq(a, 65536, Some(server_cq), ctx)?;
        inner.cq.store(cq, Ordering::Release);
        cq_arm(cq);
        let mut listener = ptr::null_mut();
        let st = match disp!(a, NdkCreateListener) {
            // SAFETY: live adapter; `ctx` lives as long as the adapter.
            Some(f) => unsafe {
                f(
                    a,
                    Some(server_connect),
                    ctx,
                    None,
                    ptr::null_mut(),
                    &mut listener,
                )
            },
            None => STATUS_NOT_IMPLEMENTED,
        };
        if st != STATUS_SUCCESS || listener.is_null() {
            return err(format!("NdkCreateListener failed: {}", StatusText(st)));
        }
        let (sa, sa_len) = sockaddr(addr);
        let st = match disp!(listener, NdkListen) {
            // SAFETY: live listener, address read during the call.
            Some(f) => unsafe { f(listener, sa.as_ptr().cast(), sa_len, None, ptr::null_mut()) },
            None => STATUS_NOT_IMPLEMENTED,
        };
        if st != STATUS_SUCCESS {
            return err(format!(
                "NdkListen on {addr} failed: {} (is another listener on that port?)",
                StatusText(st)
            ));
        }
        Ok(Server {
            inner,
            listener,
            port: addr.port(),
        })
    }

    /// Activity so far.
    pub fn stats(&self) -> ServerStats {
        let i = &self.inner;
        let last = Duration::from_nanos(i.last_activity.load(Ordering::Relaxed));
        ServerStats {
            accepted: i.accepted.load(Ordering::Relaxed),
            rejected: i.rejected.load(Ordering::Relaxed),
            live: i.live.load(Ordering::Relaxed),
            rping_iterations: i.pings.load(Ordering::Relaxed),
            rping_errors: i.protocol_errors.load(Ordering::Relaxed),
            idle: i.epoch.elapsed().saturating_sub(last),
        }
    }

    /// The clients whose connections ended since the last call.
    pub fn take_ended(&self) -> Vec<ClientRecord> {
        self.inner
            .ended
            .lock()
            .map(|mut e| std::mem::take(&mut *e))
            .unwrap_or_default()
    }

    /// Stops listening. The server's state stays alive in `keep` until
    /// the adapter is closed (late callbacks may still reach it).
    pub fn stop(self, keep: &mut Keep) {
        let l = self.listener;
        let _ = close_wait(l.cast(), disp!(l, NdkCloseListener), Duration::from_secs(2));
        let _ = self.inner.adapter;
        keep.0.push(self.inner);
    }
}

/// State that callbacks may still reach: drop it only after the adapter
/// is closed.
#[derive(Default)]
pub struct Keep(pub(super) Vec<Arc<dyn Any + Send + Sync>>);

impl Keep {
    /// Takes what `other` keeps (runs on other threads, one `Keep` each).
    pub fn absorb(&mut self, other: Keep) {
        self.0.extend(other.0);
    }
}

impl std::fmt::Debug for Keep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Keep({})", self.0.len())
    }
}
