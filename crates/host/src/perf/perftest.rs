//! Linux perftest's `-R` protocol as client ([`run_perftest`]) and server
//! ([`serve_perftest`]): the exchange over a control connection, then the
//! test QPs' traffic, polled.

use super::*;

/// Runs a perftest mode (write_bw, read_bw, send_bw, send_lat, write_lat,
/// read_lat) in `shape` (`-q`, `-b`, `-a`) as the client of a Linux perftest
/// server started with `-R` (`ib_write_bw -R` …) at `peer` (its address and
/// port, 18515 by default): perftest's exchange over a control connection
/// of its own ([`crate::perftest`]), the test QPs connected to the same
/// port, the traffic polled ([`pt_traffic`]). `path_mtu` is announced in
/// the exchange. The report counts this side's messages over every size
/// and carries what the exchange learned.
pub fn run_perftest(
    adapter: &Adapter,
    peer: SocketAddr,
    p: &Params,
    shape: crate::perftest::Shape,
    path_mtu: u32,
    keep: &mut Keep,
) -> Result<Report, PerfError> {
    let _ = keep;
    let mut x = crate::perftest::Client::with_shape(p.mode, shape)?;
    let mut ctl = PtControl::open(adapter, peer, p.timeout, p.mode)?;
    let mut tests: Vec<PtControl> = Vec::new();
    let mut peer_report = None;
    let res = (|| {
        x.start(&mut ctl, path_mtu)?;
        let cycle = x.remote_sys.map_or(4096, |(c, _)| c as usize).max(4096);
        let lay = PtLayout::new(shape.max_size(p.size.max(1)), cycle);
        let depth = pt_depth(p);
        let t0 = Instant::now();
        for _ in 0..shape.qps {
            // The server listens on rdma_cm once it answered the handshake
            // before the connect: a refused connect is tried again.
            tests.push(PtControl::dial(
                adapter,
                peer,
                p.timeout,
                lay.total,
                depth,
                (crate::perftest::OUT_READS, crate::perftest::OUT_READS),
                &|_, _| {},
            )?);
        }
        let connect = t0.elapsed();
        let mine: Vec<crate::perftest::Dest> = tests.iter().map(|c| pt_dest(adapter, c)).collect();
        let remote = x.after_connect(&mut ctl, &mine)?;
        let (report, peer) = pt_sizes(
            &mut x,
            &mut ctl,
            &mut tests,
            &remote,
            &mine,
            p,
            shape,
            true,
            &lay,
            adapter.received_counter(),
        )?;
        peer_report = peer;
        Ok(Report { connect, ..report })
    })();
    let mut disc = Ok(Duration::ZERO);
    for mut tc in tests {
        let t0 = Instant::now();
        let r = tc.close();
        if disc.is_ok() {
            disc = r.map(|()| t0.elapsed());
        }
    }
    let closed = ctl.close();
    let mut r = res?;
    r.disconnect = disc?;
    closed?;
    r.leaked_objects = settled_object_count(adapter);
    r.perftest = Some(PerftestPeer {
        version: x.remote_version,
        server: x.server,
        closed: x.closed,
        report: peer_report,
    });
    Ok(r)
}

/// What a perftest server told ndkperf's client.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PerftestPeer {
    /// The server's version.
    pub version: f64,
    /// The server's keys (its buffer's rkey and address).
    pub server: crate::perftest::Dest,
    /// The exchange went through to its end.
    pub closed: bool,
    /// The peer's bandwidth report (write_bw and read_bw; bidirectional
    /// send_bw), the last size's.
    pub report: Option<crate::perftest::BwReport>,
}

pub(super) unsafe extern "system" fn polled_cq(_ctx: PVOID, _status: NTSTATUS) {}

/// perftest's control connection: an RC QP of its own with one receive
/// of [`crate::perftest::KEY_LEN`] bytes kept posted, driven by polling
/// from the caller's thread (control path only).
pub(super) struct PtControl {
    pub(super) pd: *mut NDK_PD,
    pub(super) cq: *mut NDK_CQ,
    pub(super) qp: *mut NDK_QP,
    pub(super) conn: *mut NDK_CONNECTOR,
    pub(super) buf: Option<Buf>,
    pub(super) t: Duration,
    /// Which side of the exchange this is, and a message of the peer's
    /// that came ahead of its turn.
    pub(super) turns: crate::perftest::Turns,
    pub(super) res: [NDK_RESULT_EX; RESULTS],
    /// While set, waits go on as long as the adapter keeps receiving
    /// (the passive side waiting out the client's traffic).
    pub(super) traffic: Option<Arc<AtomicU64>>,
}

pub(super) const PT_SEND: usize = 64;

/// What [`PtControl::try_dial`]'s connect names as the server to start.
const PT_NDKPERF_SERVER: &str = "`ndkperf --server`";

/// The servers a perftest -R client of `mode` can talk to.
pub(super) fn perftest_server(mode: Mode) -> String {
    let m = mode.name();
    format!(
        "a perftest server (`ib_{m} -R`, started without a HOST) or `ndkperf --server --perftest {m}`"
    )
}

impl PtControl {
    /// Connects to the server's control listener, trying again while it
    /// refuses (perftest may not be listening yet), up to `t`.
    pub(super) fn open(
        adapter: &Adapter,
        peer: SocketAddr,
        t: Duration,
        mode: Mode,
    ) -> Result<PtControl, PerfError> {
        let recv = |qp: *mut NDK_QP, b: &Buf| {
            let _ = qp_recv(qp, 0, &b.sge(0, crate::perftest::KEY_LEN));
        };
        Self::dial(adapter, peer, t, 2 * PT_SEND, 2, (1, 1), &recv).map_err(|e| {
            // The connect's own message names ndkperf's server; the
            // server of this exchange is a perftest -R server.
            let m = e.0.replace(PT_NDKPERF_SERVER, &perftest_server(mode));
            PerfError(format!("perftest control connection: {m}"), None)
        })
    }

    /// Connects a QP of `depth` requests each way with a buffer of `len`
    /// bytes (`recvs` posts its receives first) to `peer`, asking for
    /// `reads` RDMA Reads (inbound, outbound); a refused connect is tried
    /// again, 100 ms apart, up to `t` (a perftest server listens on rdma_cm
    /// only once its side of the handshake before the connect is through;
    /// perftest's own client, `rdma_cm_client_connection`, tries 10 times
    /// 100 ms apart).
    pub(super) fn dial(
        adapter: &Adapter,
        peer: SocketAddr,
        t: Duration,
        len: usize,
        depth: u32,
        reads: (u32, u32),
        recvs: &dyn Fn(*mut NDK_QP, &Buf),
    ) -> Result<PtControl, PerfError> {
        let start = Instant::now();
        loop {
            match Self::try_dial(adapter, peer, t, len, depth, reads, recvs) {
                Ok(c) => return Ok(c),
                Err(e) if e.0.contains("REJ") && start.elapsed() < t => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => return Err(e),
            }
        }
    }

    pub(super) fn try_dial(
        adapter: &Adapter,
        peer: SocketAddr,
        t: Duration,
        len: usize,
        depth: u32,
        reads: (u32, u32),
        recvs: &dyn Fn(*mut NDK_QP, &Buf),
    ) -> Result<PtControl, PerfError> {
        let a = adapter.ptr();
        let mut c = PtControl {
            pd: create_pd(a)?,
            cq: ptr::null_mut(),
            qp: ptr::null_mut(),
            conn: ptr::null_mut(),
            buf: None,
            t,
            turns: crate::perftest::Turns::client(),
            res: empty_results(),
            traffic: None,
        };
        let r = (|| {
            c.cq = create_cq(a, depth * 2 + 8, Some(polled_cq), ptr::null_mut())?;
            c.qp = create_qp(c.pd, c.cq, ptr::null_mut(), depth + 2, depth + 2)?;
            let b = Buf::new(c.pd, len)?;
            recvs(c.qp, &b);
            c.buf = Some(b);
            let (conn, _) = connect(
                a,
                c.qp,
                adapter.local_addr(),
                peer,
                None,
                reads,
                t,
                None,
                PT_NDKPERF_SERVER,
            )?;
            c.conn = conn;
            Ok(())
        })();
        match r {
            Ok(()) => Ok(c),
            Err(e) => {
                let _ = c.close();
                Err(e)
            }
        }
    }

    /// Disconnects (if connected) and closes everything.
    pub(super) fn close(&mut self) -> Result<(), PerfError> {
        let mut r = Ok(());
        if !self.conn.is_null() {
            r = disconnect(self.conn, self.t).map(|_| ());
            let c = self.conn;
            let _ = close_wait(c.cast(), disp!(c, NdkCloseConnector), self.t);
            self.conn = ptr::null_mut();
        }
        if !self.qp.is_null() {
            let q = self.qp;
            let _ = close_wait(q.cast(), disp!(q, NdkCloseQp), self.t);
            self.qp = ptr::null_mut();
        }
        if let Some(b) = self.buf.take() {
            b.close_wait(self.t);
        }
        if !self.cq.is_null() {
            let q = self.cq;
            let _ = close_wait(q.cast(), disp!(q, NdkCloseCq), self.t);
            self.cq = ptr::null_mut();
        }
        if !self.pd.is_null() {
            let p = self.pd;
            let _ = close_wait(p.cast(), disp!(p, NdkClosePd), self.t);
            self.pd = ptr::null_mut();
        }
        r
    }
}

/// Polls `cq` for its next completion, up to `t` (a failed completion is
/// an error); while `traffic` (a count of datagrams received)
/// keeps moving the wait goes on: it fails only after `t` with nothing
/// received at all. A passive side waiting for a message that follows
/// the peer's traffic waits as long as the traffic takes.
pub(super) fn poll_next_while(
    cq: *mut NDK_CQ,
    res: &mut [NDK_RESULT_EX; RESULTS],
    t: Duration,
    what: &str,
    traffic: Option<&AtomicU64>,
) -> Result<NDK_RESULT_EX, PerfError> {
    let mut end = Instant::now() + t;
    let mut seen = traffic.map(|c| c.load(Ordering::Relaxed));
    loop {
        if cq_poll(cq, &mut res[..1]) == 1 {
            let r = res[0];
            if r.Status != STATUS_SUCCESS {
                return err(format!(
                    "perftest {what}: a {} completed with {}",
                    if r.Type == NdkOperationTypeReceive {
                        "receive"
                    } else {
                        "Send"
                    },
                    StatusText(r.Status)
                ));
            }
            return Ok(r);
        }
        // Ctrl-C: the peer's next message is not waited for (a passive
        // side waits here for as long as the client's traffic runs).
        if stop_requested() {
            return err(format!("perftest {what}: interrupted (Ctrl-C)"));
        }
        let now = Instant::now();
        if let (Some(c), Some(last)) = (traffic, seen.as_mut()) {
            let n = c.load(Ordering::Relaxed);
            if n != *last {
                *last = n;
                end = now + t;
            }
        }
        if now >= end {
            return err(format!(
                "perftest {what}: nothing completed within {:.0} s{}",
                t.as_secs_f64(),
                if traffic.is_some() {
                    " of the last datagram received"
                } else {
                    ""
                }
            ));
        }
        std::thread::sleep(Duration::from_micros(100));
    }
}

impl crate::perftest::Channel for PtControl {
    fn xchg(&mut self, mine: &[u8], what: &str) -> Result<Vec<u8>, PerfError> {
        let Some(buf) = self.buf.as_ref() else {
            return err("perftest control connection closed");
        };
        let mut q = PtQp {
            qp: self.qp,
            cq: self.cq,
            buf,
            t: self.t,
            res: &mut self.res,
            traffic: self.traffic.as_deref(),
        };
        self.turns.xchg(&mut q, mine, what)
    }
}

/// The control connection's QP, CQ and buffer (the receive area first,
/// the send area at [`PT_SEND`]) as [`crate::perftest::Turns`] drives
/// them.
pub(super) struct PtQp<'a> {
    pub(super) qp: *mut NDK_QP,
    pub(super) cq: *mut NDK_CQ,
    pub(super) buf: &'a Buf,
    pub(super) t: Duration,
    pub(super) res: &'a mut [NDK_RESULT_EX; RESULTS],
    pub(super) traffic: Option<&'a AtomicU64>,
}

impl crate::perftest::Control for PtQp<'_> {
    fn send(&mut self, msg: &[u8], what: &str) -> Result<(), PerfError> {
        if msg.len() > PT_SEND {
            return err(format!(
                "perftest {what}: a message of {} bytes (at most {PT_SEND})",
                msg.len()
            ));
        }
        // SAFETY: the send area: the previous Send completed (an exchange
        // returns only once its Send completed).
        unsafe { self.buf.bytes_mut(PT_SEND, msg.len()).copy_from_slice(msg) };
        qp_send(self.qp, 1, &self.buf.sge(PT_SEND, msg.len()), 0).or_else(|st| {
            err(format!(
                "perftest {what}: posting the Send failed: {}",
                StatusText(st)
            ))
        })
    }

    fn next(&mut self, what: &str) -> Result<crate::perftest::Completion, PerfError> {
        let r = poll_next_while(self.cq, self.res, self.t, what, self.traffic)?;
        if r.Type != NdkOperationTypeReceive {
            return Ok(crate::perftest::Completion::Sent);
        }
        let n = (r.BytesTransferred as usize).min(crate::perftest::KEY_LEN);
        // SAFETY: the receive completed; nothing lands in the receive
        // area until it is posted again, below.
        let data = unsafe { self.buf.bytes_mut(0, n).to_vec() };
        let _ = qp_recv(self.qp, 0, &self.buf.sge(0, crate::perftest::KEY_LEN));
        Ok(crate::perftest::Completion::Received(data))
    }
}

/// Connect requests a perftest server run takes, in arrival order.
#[derive(Debug, Default)]
pub(super) struct PtInbox {
    pub(super) q: Mutex<std::collections::VecDeque<usize>>,
    pub(super) cv: Condvar,
}

pub(super) unsafe extern "system" fn pt_incoming(ctx: PVOID, conn: *mut NDK_CONNECTOR) {
    // SAFETY: the inbox is kept (in `Keep`) until the adapter closes.
    let inbox = unsafe { &*ctx.cast::<PtInbox>() };
    inbox
        .q
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push_back(conn as usize);
    inbox.cv.notify_all();
}

impl PtInbox {
    pub(super) fn next(&self, t: Duration) -> Option<*mut NDK_CONNECTOR> {
        let end = Instant::now() + t;
        let mut q = self.q.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(c) = q.pop_front() {
                return Some(c as *mut NDK_CONNECTOR);
            }
            let now = Instant::now();
            if now >= end {
                return None;
            }
            q = self.cv.wait_timeout(q, end - now).ok()?.0;
        }
    }
}

/// Accepts `conn` with a fresh polled CQ, a QP and a registered buffer of
/// `len` bytes, after `recvs(qp, buf)` posted its receives.
#[allow(clippy::type_complexity)]
pub(super) fn pt_accept(
    adapter: &Adapter,
    conn: *mut NDK_CONNECTOR,
    len: usize,
    depth: u32,
    t: Duration,
    recvs: &dyn Fn(*mut NDK_QP, &Buf),
) -> Result<PtControl, PerfError> {
    let a = adapter.ptr();
    let mut irl = 0;
    let mut orl = 0;
    let mut data = [0u8; 64];
    let mut dlen = data.len() as ULONG;
    if let Some(f) = disp!(conn, NdkGetConnectionData) {
        // SAFETY: the event's connector; buffers of the stated sizes.
        unsafe {
            f(
                conn,
                &mut irl,
                &mut orl,
                data.as_mut_ptr().cast(),
                &mut dlen,
            )
        };
    }
    let mut c = PtControl {
        pd: create_pd(a)?,
        cq: ptr::null_mut(),
        qp: ptr::null_mut(),
        conn,
        buf: None,
        t,
        turns: crate::perftest::Turns::server(),
        res: empty_results(),
        traffic: None,
    };
    let r = (|| {
        c.cq = create_cq(a, depth * 2 + 8, Some(polled_cq), ptr::null_mut())?;
        c.qp = create_qp(c.pd, c.cq, ptr::null_mut(), depth + 2, depth + 2)?;
        let b = Buf::new(c.pd, len)?;
        recvs(c.qp, &b);
        c.buf = Some(b);
        let qp = c.qp;
        let st = sync_req(t, |ctx| match disp!(conn, NdkAccept) {
            // SAFETY: the event's connector and our QP; no private data.
            Some(f) => unsafe {
                f(
                    conn,
                    qp,
                    irl.clamp(1, 16),
                    orl.clamp(1, 16),
                    ptr::null(),
                    0,
                    Some(ignore_disconnect),
                    ptr::null_mut(),
                    Some(on_request),
                    ctx,
                )
            },
            None => STATUS_NOT_IMPLEMENTED,
        });
        if st != Some(STATUS_SUCCESS) {
            return err(format!(
                "NdkAccept: {}",
                st.map_or("no completion".into(), |s| StatusText(s).to_string())
            ));
        }
        Ok(())
    })();
    match r {
        Ok(()) => Ok(c),
        Err(e) => {
            let _ = c.close();
            Err(e)
        }
    }
}

/// Serves one Linux perftest client started with `-R` (`ib_write_bw -R
/// HOST` …) on `addr` (port 18515 by default) in mode `p.mode`, with
/// `p.size` and `p.iters` as the client runs them: perftest's exchange
/// over the client's control connection (the server's side: take, then
/// answer), the test QP accepted on the same listener; write_bw and
/// read_bw expose a buffer, send_bw counts the client's Sends, send_lat
/// answers each. The report counts the messages this side saw (Receives;
/// for write_bw and read_bw the iterations the client reported).
pub fn serve_perftest(
    adapter: &Adapter,
    addr: SocketAddr,
    p: &Params,
    shape: crate::perftest::Shape,
    path_mtu: u32,
    keep: &mut Keep,
) -> Result<Report, PerfError> {
    serve_on(&[(adapter, addr)], p, shape, Some(path_mtu), keep)
}

/// A listener for perftest's connections on `addr`, feeding `inbox`.
fn pt_listen(
    adapter: &Adapter,
    addr: SocketAddr,
    t: Duration,
    keep: &mut Keep,
) -> Result<(*mut NDK_LISTENER, Arc<PtInbox>), PerfError> {
    let a = adapter.ptr();
    let inbox = Arc::new(PtInbox::default());
    keep.0.push(inbox.clone());
    let mut listener = ptr::null_mut();
    let st = match disp!(a, NdkCreateListener) {
        // SAFETY: live adapter; the inbox is kept until the adapter closes.
        Some(f) => unsafe {
            f(
                a,
                Some(pt_incoming),
                Arc::as_ptr(&inbox) as PVOID,
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
        let _ = close_wait(listener.cast(), disp!(listener, NdkCloseListener), t);
        return err(format!("NdkListen on {addr} failed: {}", StatusText(st)));
    }
    Ok((listener, inbox))
}

/// [`serve_perftest`] on several addresses at once (each on its
/// adapter): the first perftest client to connect on any of them is
/// served; the other listeners close when it connects. Waits for it up
/// to the run's bound, or until [`request_stop`] (Ctrl-C).
pub fn serve_perftest_any(
    sides: &[(&Adapter, SocketAddr)],
    p: &Params,
    shape: crate::perftest::Shape,
    keep: &mut Keep,
) -> Result<Report, PerfError> {
    serve_on(sides, p, shape, None, keep)
}

/// `path_mtu`: the served adapter's, unless given.
fn serve_on(
    sides: &[(&Adapter, SocketAddr)],
    p: &Params,
    shape: crate::perftest::Shape,
    path_mtu: Option<u32>,
    keep: &mut Keep,
) -> Result<Report, PerfError> {
    let x = crate::perftest::Client::with_shape(p.mode, shape)?;
    let t = p.timeout;
    let mut listeners = Vec::with_capacity(sides.len());
    for &(adapter, addr) in sides {
        match pt_listen(adapter, addr, t, keep) {
            Ok((l, inbox)) => listeners.push((adapter, addr, l, inbox)),
            Err(e) => {
                for (_, _, l, _) in listeners {
                    let l: *mut NDK_LISTENER = l;
                    let _ = close_wait(l.cast(), disp!(l, NdkCloseListener), t);
                }
                return Err(e);
            }
        }
    }
    let wait = p.iters.map_or(p.duration, |_| Duration::from_secs(120)) + t;
    let end = Instant::now() + wait;
    let mut first = None;
    while first.is_none() && Instant::now() < end && !stop_requested() {
        let slice = Duration::from_millis(50) / sides.len().max(1) as u32;
        first = listeners
            .iter()
            .enumerate()
            .find_map(|(k, (_, _, _, inbox))| inbox.next(slice).map(|c| (k, c)));
    }
    let mut chosen = None;
    for (k, (adapter, addr, l, inbox)) in listeners.into_iter().enumerate() {
        match first {
            Some((f, conn)) if f == k => chosen = Some((adapter, addr, l, inbox, conn)),
            _ => {
                let _ = close_wait(l.cast(), disp!(l, NdkCloseListener), t);
            }
        }
    }
    let Some((adapter, addr, listener, inbox, conn)) = chosen else {
        let on = sides
            .iter()
            .map(|s| s.1.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        if stop_requested() {
            return err(format!(
                "interrupted (Ctrl-C) before a perftest client connected to {on}"
            ));
        }
        return err(format!(
            "no perftest client connected to {on} within {:.0} s",
            wait.as_secs_f64()
        ));
    };
    let _ = addr;
    let path_mtu = path_mtu.unwrap_or_else(|| adapter.path_mtu());
    pt_serve(adapter, listener, &inbox, conn, x, p, shape, path_mtu)
}

/// Serves the perftest client whose control connection `conn` arrived
/// on `listener`; closes the listener.
#[allow(clippy::too_many_arguments)]
fn pt_serve(
    adapter: &Adapter,
    listener: *mut NDK_LISTENER,
    inbox: &PtInbox,
    conn: *mut NDK_CONNECTOR,
    mut x: crate::perftest::Client,
    p: &Params,
    shape: crate::perftest::Shape,
    path_mtu: u32,
) -> Result<Report, PerfError> {
    let t = p.timeout;
    let close_listener = |l: *mut NDK_LISTENER| {
        let _ = close_wait(l.cast(), disp!(l, NdkCloseListener), t);
    };
    let mut ctl = match pt_accept(adapter, conn, 2 * PT_SEND, 2, t, &|qp, b| {
        let _ = qp_recv(qp, 0, &b.sge(0, crate::perftest::KEY_LEN));
    }) {
        Ok(c) => c,
        Err(e) => {
            close_listener(listener);
            return Err(e);
        }
    };
    let mut tests: Vec<PtControl> = Vec::new();
    let mut peer_report = None;
    let res = (|| {
        x.start(&mut ctl, path_mtu)?;
        let cycle = x.remote_sys.map_or(4096, |(c, _)| c as usize).max(4096);
        // perftest's exchange announces no message size before the
        // traffic (`struct pingpong_dest` has none), so a passive side
        // (write_bw, read_bw one way, read_lat) exposes room for the
        // largest any perftest client sends, its `-a` maximum: the
        // memory is zeroed pages, taken from the system as they are
        // touched.
        let passive =
            !shape.duplex && matches!(p.mode, Mode::WriteBw | Mode::ReadBw | Mode::ReadLat);
        let max = if passive {
            p.size.max(crate::perftest::ALL_MAX)
        } else {
            shape.max_size(p.size.max(1))
        };
        let lay = PtLayout::new(max, cycle);
        let depth = pt_depth(p);
        // perftest's client connects its -q test QPs at once
        // (`_rdma_cm_client_connection`); each is accepted in turn.
        for i in 0..shape.qps {
            let Some(tconn) = inbox.next(t) else {
                return err(format!(
                    "the perftest client connected {i} of {} test QPs within {:.0} s",
                    shape.qps,
                    t.as_secs_f64()
                ));
            };
            tests.push(pt_accept(adapter, tconn, lay.total, depth, t, &|_, _| {})?);
        }
        let mine: Vec<crate::perftest::Dest> = tests.iter().map(|c| pt_dest(adapter, c)).collect();
        let remote = x.after_connect(&mut ctl, &mine)?;
        let (report, peer) = pt_sizes(
            &mut x,
            &mut ctl,
            &mut tests,
            &remote,
            &mine,
            p,
            shape,
            false,
            &lay,
            adapter.received_counter(),
        )?;
        peer_report = peer;
        Ok(report)
    })();
    // The client tears its connections down; this side's disconnects
    // complete either way.
    let mut closed = Ok(());
    for mut tc in tests {
        let r = tc.close();
        if closed.is_ok() {
            closed = r;
        }
    }
    let c2 = ctl.close();
    close_listener(listener);
    let mut report = res?;
    closed?;
    c2?;
    report.leaked_objects = settled_object_count(adapter);
    report.perftest = Some(PerftestPeer {
        version: x.remote_version,
        server: x.server,
        closed: x.closed,
        report: peer_report,
    });
    Ok(report)
}

/// A perftest test connection's buffer: the region the peer writes into
/// and reads from first (its keys' address), then this side's source
/// and sink. The peer moves its remote address within its cycle buffer
/// for messages of up to half of it (perftest_resources.c,
/// `run_iter_bw`), so the exposed region is twice the larger of the two.
#[derive(Debug, Clone, Copy)]
pub(super) struct PtLayout {
    /// Offset of this side's source (RDMA Write, Send) and sink (RDMA
    /// Read) area.
    pub(super) local: usize,
    /// Whole buffer.
    pub(super) total: usize,
}

impl PtLayout {
    pub(super) fn new(max_size: usize, cycle: usize) -> PtLayout {
        let local = max_size.max(cycle) * 2;
        PtLayout {
            local,
            total: local + max_size.max(64),
        }
    }
}

/// Requests each way on a test QP: the window, and for the Send modes
/// room for perftest's receive ring (`DEF_RX_SEND`, 512).
pub(super) fn pt_depth(p: &Params) -> u32 {
    match p.mode {
        Mode::SendBw | Mode::SendLat => 512,
        _ => p.window.clamp(1, 1024) + 2,
    }
}

/// A test connection's keys as perftest's `set_up_connection` fills them
/// (the exposed region's address and the buffer's token).
pub(super) fn pt_dest(adapter: &Adapter, c: &PtControl) -> crate::perftest::Dest {
    let (vaddr, rkey) = c.buf.as_ref().map_or((0, 0), |b| (b.addr(0), b.token));
    crate::perftest::Dest {
        out_reads: crate::perftest::OUT_READS,
        psn: (vaddr as u32 ^ 0x5a5a5a) & 0xff_ffff,
        rkey,
        vaddr,
        gid: match adapter.local_addr().ip() {
            std::net::IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
            std::net::IpAddr::V6(v6) => v6.octets(),
        },
        ..Default::default()
    }
}

/// Every size of a run after the keys: per size the receives, the sync
/// before it, the traffic and what follows it; then the end of the
/// exchange. `client` is this side's role. Returns this side's report
/// (its messages and bytes summed over the sizes, the last size's
/// latencies) and the peer's last bandwidth report.
#[allow(clippy::too_many_arguments)]
pub(super) fn pt_sizes(
    x: &mut crate::perftest::Client,
    ctl: &mut PtControl,
    tests: &mut [PtControl],
    remote: &[crate::perftest::Dest],
    mine: &[crate::perftest::Dest],
    p: &Params,
    shape: crate::perftest::Shape,
    client: bool,
    lay: &PtLayout,
    traffic: Arc<AtomicU64>,
) -> Result<(Report, Option<crate::perftest::BwReport>), PerfError> {
    // Every wait of the exchange from here on may span the peer's
    // traffic: it goes on as long as datagrams keep arriving.
    ctl.traffic = Some(traffic);
    let r = pt_sizes_inner(x, ctl, tests, remote, mine, p, shape, client, lay);
    ctl.traffic = None;
    r
}

#[allow(clippy::too_many_arguments)]
pub(super) fn pt_sizes_inner(
    x: &mut crate::perftest::Client,
    ctl: &mut PtControl,
    tests: &mut [PtControl],
    remote: &[crate::perftest::Dest],
    mine: &[crate::perftest::Dest],
    p: &Params,
    shape: crate::perftest::Shape,
    client: bool,
    lay: &PtLayout,
) -> Result<(Report, Option<crate::perftest::BwReport>), PerfError> {
    let first = mine[0];
    // A one-directional write_bw or read_bw server and a read_lat server
    // only wait: the client's traffic is one-sided, and its next message
    // comes when that traffic is done.
    let idle =
        !client && !shape.duplex && matches!(p.mode, Mode::WriteBw | Mode::ReadBw | Mode::ReadLat);
    let mut total = Report::default();
    let mut last = (Report::default(), p.size);
    let mut peer = None;
    if !idle {
        for size in shape.sizes(p.size.max(1)) {
            let pre = pt_post_receives(tests, p, shape, client, size)?;
            x.before_size(ctl, &first)?;
            let r = pt_traffic(tests, remote, p, shape, client, size, lay, &pre)?;
            if r.interrupted {
                // Ctrl-C: the figures of what completed; the exchange that
                // follows a size would wait for the peer's traffic.
                total.messages += r.messages;
                total.bytes += r.bytes;
                total.elapsed += r.elapsed;
                total.lat = r.lat;
                total.interrupted = true;
                return Ok((total, peer));
            }
            if let Some(b) = x.after_size(ctl, &first, &r, size)? {
                peer = Some(b);
            }
            total.messages += r.messages;
            total.bytes += r.bytes;
            total.elapsed += r.elapsed;
            total.lat = r.lat.clone();
            last = (r, size);
        }
    }
    let waited = Instant::now();
    if let Some(b) = x.finish(ctl, &first, &last.0, last.1)? {
        peer = Some(b);
    }
    // A waiting server's traffic was the client's alone: what it ran
    // (iterations or -D seconds) is in its report. Its time is the one the
    // client measured; where the report gives no bandwidth (perftest's -D
    // runs sometimes report 0), the time this side waited for the traffic
    // to end.
    if let (true, Some(b)) = (idle, peer) {
        total.messages = b.iters;
        total.bytes = b.iters * b.size;
        total.elapsed = if b.bw_avg_mbs.is_finite() && b.bw_avg_mbs > 0.0 {
            Duration::from_secs_f64(total.bytes as f64 / (b.bw_avg_mbs * (1 << 20) as f64))
        } else {
            waited.elapsed()
        };
    }
    Ok((total, peer))
}

/// Posts one size's receives on each test connection before the sync
/// that lets the peer send (send_bw.c and send_lat.c post theirs with
/// `ctx_set_recv_wqes` ahead of that handshake): the receiving side of
/// send_bw as many as the window of the QP allows, up to the size's
/// messages; send_lat two. Returns how many each connection got.
pub(super) fn pt_post_receives(
    tests: &[PtControl],
    p: &Params,
    shape: crate::perftest::Shape,
    client: bool,
    size: usize,
) -> Result<Vec<u64>, PerfError> {
    let per = match p.mode {
        Mode::SendBw if !client || shape.duplex => pt_depth(p) as u64,
        Mode::SendLat => 2,
        _ => 0,
    };
    let per = p.iters.map_or(per, |n| per.min(n));
    let mut out = Vec::with_capacity(tests.len());
    for tc in tests {
        let Some(b) = tc.buf.as_ref() else {
            return err("perftest: a test connection without its buffer");
        };
        for _ in 0..per {
            qp_recv(tc.qp, 0, &b.sge(0, size)).or_else(|st| {
                err(format!(
                    "perftest {}: posting a receive failed: {}",
                    p.mode.name(),
                    StatusText(st)
                ))
            })?;
        }
        out.push(per);
    }
    Ok(out)
}

/// One test connection's counts in [`pt_traffic`].
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Lane {
    pub(super) posted: u64,
    pub(super) done: u64,
    pub(super) recv_posted: u64,
    pub(super) received: u64,
    pub(super) t_post: Option<Instant>,
}

/// One size's traffic on every test connection, polled: this side's part
/// of perftest's `run_iter_bw` (RDMA Writes or Reads to the peer's keys,
/// or Sends, `p.window` outstanding per QP), `run_iter_bw_server` (the
/// receives), `run_iter_bi` (both, `-b`), `run_iter_lat` (read_lat: one
/// Read at a time), `run_iter_lat_send` (send_lat: the client Sends
/// first, each side Sends when it received) and `run_iter_lat_write`
/// ([`pt_write_lat`]); all in perftest_resources.c. `pre` is what
/// [`pt_post_receives`] posted. Fails when nothing completes for the
/// step bound.
#[allow(clippy::too_many_arguments)]
pub(super) fn pt_traffic(
    tests: &[PtControl],
    remote: &[crate::perftest::Dest],
    p: &Params,
    shape: crate::perftest::Shape,
    client: bool,
    size: usize,
    lay: &PtLayout,
    pre: &[u64],
) -> Result<Report, PerfError> {
    let mode = p.mode;
    if mode == Mode::WriteLat {
        return pt_write_lat(tests, remote, p, client, size, lay);
    }
    let sends = match mode {
        Mode::WriteBw | Mode::ReadBw | Mode::SendBw => client || shape.duplex,
        Mode::ReadLat => client,
        _ => true,
    };
    let recvs = match mode {
        Mode::SendBw => !client || shape.duplex,
        Mode::SendLat => true,
        _ => false,
    };
    let pingpong = mode == Mode::SendLat;
    let window = if mode.is_latency() {
        1
    } else {
        u64::from(p.window.max(1))
    };
    let target = p.iters;
    let start = Instant::now();
    let deadline = start + p.duration;
    let mut lanes: Vec<Lane> = pre
        .iter()
        .map(|&n| Lane {
            recv_posted: n,
            ..Lane::default()
        })
        .collect();
    let mut res = empty_results();
    let mut report = Report::default();
    let mut lat = Vec::with_capacity(target.map_or(1 << 16, |n| n.min(1 << 22)) as usize);
    let mut first_post = None;
    let mut last_done = start;
    let mut last_progress = start;
    let fail = |what: String| -> Result<Report, PerfError> {
        err(format!("perftest {} ({size} B): {what}", mode.name()))
    };
    // A failure mid-run keeps the figures of what completed.
    let fail_after = |what: String, part: Report| -> Result<Report, PerfError> {
        Err(PerfError(
            format!("perftest {} ({size} B): {what}", mode.name()),
            Some(Box::new(part)),
        ))
    };
    loop {
        let now = Instant::now();
        // Ctrl-C: nothing more is posted; what is in flight completes.
        let stop = stop_requested();
        let more = |l: &Lane| !stop && target.map_or(now < deadline, |n| l.posted < n);
        for (i, tc) in tests.iter().enumerate() {
            let l = &mut lanes[i];
            let Some(b) = tc.buf.as_ref() else {
                return fail("a test connection without its buffer".into());
            };
            if !sends {
                continue;
            }
            loop {
                let may = if pingpong {
                    l.posted < l.received + u64::from(client)
                } else {
                    l.posted - l.done < window
                };
                if !(may && more(l)) {
                    break;
                }
                let sge = b.sge(lay.local, size);
                let r = &remote[i];
                let st = match mode {
                    Mode::WriteBw => qp_write(tc.qp, 0, &sge, r.vaddr, r.rkey),
                    Mode::ReadBw | Mode::ReadLat => qp_read(tc.qp, 0, &sge, r.vaddr, r.rkey),
                    _ => qp_send(tc.qp, 0, &sge, 0),
                };
                if let Err(st) = st {
                    let part = pt_partial(&lanes, sends, report.bytes, first_post, last_done, &lat);
                    return fail_after(format!("posting failed: {}", StatusText(st)), part);
                }
                first_post.get_or_insert(now);
                l.t_post = Some(now);
                l.posted += 1;
            }
        }
        let mut progressed = false;
        for (i, tc) in tests.iter().enumerate() {
            let l = &mut lanes[i];
            loop {
                let n = cq_poll(tc.cq, &mut res);
                for r in &res[..n] {
                    progressed = true;
                    let now = Instant::now();
                    if r.Status != STATUS_SUCCESS {
                        let op = if r.Type == NdkOperationTypeReceive {
                            "receive"
                        } else {
                            "request"
                        };
                        let what = format!(
                            "a {op} on test QP {i} completed with {} after {} of {} messages",
                            StatusText(r.Status),
                            l.done.max(l.received),
                            target.map_or("?".into(), |n| n.to_string())
                        );
                        let part =
                            pt_partial(&lanes, sends, report.bytes, first_post, last_done, &lat);
                        return fail_after(what, part);
                    }
                    if r.Type == NdkOperationTypeReceive {
                        l.received += 1;
                        if !sends {
                            report.bytes += u64::from(r.BytesTransferred);
                            last_done = now;
                        }
                        if pingpong && let Some(t) = l.t_post {
                            lat.push((now - t).as_nanos() as u64);
                        }
                        if target.is_none_or(|n| l.recv_posted < n) {
                            let Some(b) = tc.buf.as_ref() else { continue };
                            let _ = qp_recv(tc.qp, 0, &b.sge(0, size));
                            l.recv_posted += 1;
                        }
                    } else {
                        l.done += 1;
                        report.bytes += u64::from(r.BytesTransferred);
                        last_done = now;
                        if mode == Mode::ReadLat
                            && let Some(t) = l.t_post
                        {
                            lat.push((now - t).as_nanos() as u64);
                        }
                    }
                }
                if n < RESULTS {
                    break;
                }
            }
        }
        let now = Instant::now();
        let more = |l: &Lane| !stop && target.map_or(now < deadline, |n| l.posted < n);
        let sent = !sends || lanes.iter().all(|l| !more(l) && l.done == l.posted);
        let got = !recvs
            || lanes.iter().all(|l| match target {
                Some(n) => l.received >= n,
                None => !sends || l.received >= l.posted,
            });
        // Interrupted, the receives wait for messages the peer will not
        // send: what this side posted is all it waits for.
        if sent && (got || stop) {
            report.interrupted = stop;
            break;
        }
        if progressed {
            last_progress = now;
        } else if now - last_progress > p.timeout {
            let done: u64 = lanes.iter().map(|l| l.done).sum();
            let got: u64 = lanes.iter().map(|l| l.received).sum();
            let part = pt_partial(&lanes, sends, report.bytes, first_post, last_done, &lat);
            return fail_after(
                format!(
                    "nothing completed within {:.0} s ({done} requests and {got} receives \
                     completed on {} test QPs)",
                    p.timeout.as_secs_f64(),
                    tests.len()
                ),
                part,
            );
        } else {
            std::thread::yield_now();
        }
    }
    report.messages = if sends {
        lanes.iter().map(|l| l.done).sum()
    } else {
        lanes.iter().map(|l| l.received).sum()
    };
    report.elapsed = last_done.saturating_duration_since(first_post.unwrap_or(start));
    lat.sort_unstable();
    report.lat = Samples(lat);
    Ok(report)
}

/// What [`pt_traffic`] completed before it failed.
fn pt_partial(
    lanes: &[Lane],
    sends: bool,
    bytes: u64,
    first_post: Option<Instant>,
    last_done: Instant,
    lat: &[u64],
) -> Report {
    let mut lat = lat.to_vec();
    lat.sort_unstable();
    Report {
        messages: lanes
            .iter()
            .map(|l| if sends { l.done } else { l.received })
            .sum(),
        bytes,
        elapsed: first_post.map_or(Duration::ZERO, |f| last_done.saturating_duration_since(f)),
        lat: Samples(lat),
        ..Report::default()
    }
}

/// write_lat's ping-pong (perftest_resources.c, `run_iter_lat_write`): each
/// side RDMA-Writes `size` bytes to the other's keys, the last byte its
/// count of writes so far, and writes its next once the peer's write of
/// the same count has landed in the last byte of its own exposed region;
/// the server writes first (its `machine == SERVER` skips the first
/// wait). The first test QP only, as perftest.
pub(super) fn pt_write_lat(
    tests: &[PtControl],
    remote: &[crate::perftest::Dest],
    p: &Params,
    client: bool,
    size: usize,
    lay: &PtLayout,
) -> Result<Report, PerfError> {
    let fail = |what: String| -> Result<Report, PerfError> {
        err(format!("perftest write_lat ({size} B): {what}"))
    };
    // A failure mid-run keeps the round trips that completed.
    let fail_after = |what: String, done: u64, lat: &[u64], start: Instant| {
        let mut lat = lat.to_vec();
        lat.sort_unstable();
        Err(PerfError(
            format!("perftest write_lat ({size} B): {what}"),
            Some(Box::new(Report {
                messages: done,
                bytes: done * size as u64,
                elapsed: start.elapsed(),
                lat: Samples(lat),
                ..Report::default()
            })),
        ))
    };
    let (Some(tc), Some(r)) = (tests.first(), remote.first()) else {
        return fail("no test QP".into());
    };
    let Some(b) = tc.buf.as_ref() else {
        return fail("no buffer".into());
    };
    let Some(target) = p.iters else {
        return fail("perftest's write_lat against ndkperf needs -n".into());
    };
    let size = size.max(1);
    let poll_at = b.ptr().wrapping_add(size - 1);
    let post_at = lay.local + size - 1;
    let (mut scnt, mut rcnt, mut ccnt) = (0u64, 0u64, 0u64);
    let mut interrupted = false;
    let mut res = empty_results();
    let mut lat = Vec::with_capacity(target.min(1 << 22) as usize);
    let start = Instant::now();
    let mut t_post = start;
    let mut last_progress = start;
    let send = |k: u64| {
        // SAFETY: the source byte: the write that last carried it was
        // answered by the peer's, so it left.
        unsafe { b.bytes_mut(post_at, 1)[0] = k as u8 };
        qp_write(tc.qp, 0, &b.sge(lay.local, size), r.vaddr, r.rkey)
    };
    if !client {
        scnt = 1;
        if let Err(st) = send(1) {
            return fail(format!("posting failed: {}", StatusText(st)));
        }
    }
    loop {
        let now = Instant::now();
        let mut progressed = false;
        if rcnt < target {
            // SAFETY: inside the buffer; the peer's RDMA Write lands
            // there, so the byte is read volatile.
            let v = unsafe { ptr::read_volatile(poll_at) };
            if v == (rcnt + 1) as u8 {
                rcnt += 1;
                progressed = true;
                if scnt > 0 {
                    lat.push((now - t_post).as_nanos() as u64);
                }
                if scnt < target {
                    scnt += 1;
                    t_post = Instant::now();
                    if let Err(st) = send(scnt) {
                        let what = format!("posting failed: {}", StatusText(st));
                        return fail_after(what, ccnt, &lat, start);
                    }
                }
            }
        }
        let n = cq_poll(tc.cq, &mut res);
        for c in &res[..n] {
            progressed = true;
            if c.Status != STATUS_SUCCESS {
                let what = format!(
                    "an RDMA Write completed with {} after {ccnt} of {target}",
                    StatusText(c.Status)
                );
                return fail_after(what, ccnt, &lat, start);
            }
            ccnt += 1;
        }
        if rcnt == target && scnt == target && ccnt == scnt {
            break;
        }
        // Ctrl-C: once this side's writes completed, what finished is
        // reported (the peer's next write is not waited for).
        if stop_requested() && ccnt == scnt {
            interrupted = true;
            break;
        }
        if progressed {
            last_progress = now;
        } else if now - last_progress > p.timeout {
            let what = format!(
                "nothing happened within {:.0} s ({scnt} written, {rcnt} received, {ccnt} completed)",
                p.timeout.as_secs_f64()
            );
            return fail_after(what, ccnt, &lat, start);
        } else {
            // The adapter's I/O thread may share this core.
            std::thread::yield_now();
        }
    }
    lat.sort_unstable();
    Ok(Report {
        messages: scnt,
        bytes: scnt * size as u64,
        elapsed: start.elapsed(),
        lat: Samples(lat),
        interrupted,
        ..Report::default()
    })
}
