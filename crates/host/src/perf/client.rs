//! The active side of one connection: connect, run a mode ([`run`]),
//! disconnect.

use super::*;

pub(super) struct CData {
    pub(super) mode: Mode,
    pub(super) size: usize,
    pub(super) window: u64,
    pub(super) slots: usize,
    pub(super) target: Option<u64>,
    pub(super) deadline: Option<Instant>,
    pub(super) warm_at: Instant,
    pub(super) posted: u64,
    pub(super) completed: u64,
    pub(super) bytes: u64,
    pub(super) first_post: Option<Instant>,
    pub(super) last_done: Option<Instant>,
    pub(super) t_post: Instant,
    pub(super) lat: Vec<u64>,
    pub(super) remote: RdmaInfo,
    pub(super) error: Option<NTSTATUS>,
    pub(super) done: bool,
    pub(super) verify_errors: u64,
    pub(super) rping_iter: u64,
    pub(super) rping_phase: u8,
    /// rping: the length of a Send from the peer that was not 16 bytes.
    pub(super) rping_bogus: Option<u32>,
    pub(super) warm: Option<(u64, u64)>,
    pub(super) end: Option<(u64, u64)>,
    pub(super) res: [NDK_RESULT_EX; RESULTS],
}

pub(super) struct ClientRun {
    pub(super) cq: AtomicPtr<NDK_CQ>,
    pub(super) qp: AtomicPtr<NDK_QP>,
    pub(super) buf: OnceLock<Buf>,
    pub(super) drive: Drive,
    pub(super) dp: UnsafeCell<CData>,
    pub(super) finished: Signal,
    /// The peer disconnected the run's connection.
    pub(super) peer_left: AtomicBool,
}

// SAFETY: `dp` is reached only under `drive` (or before the CQ is armed);
// the rest is atomics and provider pointers.
unsafe impl Send for ClientRun {}
// SAFETY: as above.
unsafe impl Sync for ClientRun {}

pub(super) unsafe extern "system" fn client_cq(ctx: PVOID, _status: NTSTATUS) {
    // SAFETY: the ClientRun outlives its CQ (kept until the adapter closes).
    let r = unsafe { &*ctx.cast::<ClientRun>() };
    r.drive.run(|| r.service());
}

pub(super) unsafe extern "system" fn ignore_disconnect(_ctx: PVOID) {}

/// A client run's connection: the peer disconnected (its DREQ came and was
/// answered). Nothing outstanding will complete until this side's own
/// NdkDisconnect flushes it, so the run ends now, with the reason.
pub(super) unsafe extern "system" fn client_peer_disconnected(ctx: PVOID) {
    // SAFETY: the run is kept (in `Keep`) until the adapter closes.
    let run = unsafe { &*ctx.cast::<ClientRun>() };
    run.peer_left.store(true, Ordering::SeqCst);
    run.finished.set(STATUS_CONNECTION_DISCONNECTED);
}

/// Client buffer layout: `[0, size*slots)` local data slots for the
/// bandwidth modes (or the rping source), then rping's sink, receive
/// slots and the send area.
pub(super) struct Layout {
    pub(super) data: usize,
    /// Distinct data slots ([`Params::slots`]; the window's messages
    /// cycle through them, and share them beyond
    /// [`SLOT_BUDGET`]).
    pub(super) slots: usize,
    pub(super) sink: usize,
    pub(super) recv: usize,
    pub(super) recv_slot: usize,
    pub(super) recv_slots: usize,
    pub(super) send: usize,
    pub(super) total: usize,
}

impl Layout {
    pub(super) fn of(p: &Params) -> Layout {
        let size = p.size.max(1);
        let slots = if p.mode.is_latency() {
            1
        } else {
            slots_within_budget(p.slots.max(1) as usize, size)
        };
        let data = 0;
        // Only rping reads back into a sink, only send_lat receives
        // messages of `size` (rping's are 16 bytes); its two receives share
        // one slot when two would not fit the budget.
        let sink = data + (size * slots).max(64);
        let recv = sink
            + if p.mode == Mode::Rping {
                size.max(64)
            } else {
                64
            };
        let recv_slot = if p.mode == Mode::SendLat {
            size.max(RdmaInfo::LEN)
        } else {
            RdmaInfo::LEN
        };
        let recv_slots = slots_within_budget(2, recv_slot);
        let send = recv + recv_slots * recv_slot;
        Layout {
            data,
            slots,
            sink,
            recv,
            recv_slot,
            recv_slots,
            send,
            total: send + 64,
        }
    }

    /// Receive slot `i`'s offset.
    pub(super) fn recv_off(&self, i: usize) -> usize {
        self.recv + (i % self.recv_slots) * self.recv_slot
    }
}

impl ClientRun {
    pub(super) fn buf(&self) -> &Buf {
        #[allow(clippy::expect_used)]
        self.buf.get().expect("buffer set before the CQ is armed")
    }

    pub(super) fn service(&self) {
        let cq = self.cq.load(Ordering::Acquire);
        // SAFETY: the drive is held.
        let d = unsafe { &mut *self.dp.get() };
        loop {
            let n = cq_poll(cq, &mut d.res);
            for i in 0..n {
                let r = d.res[i];
                self.on_completion(d, &r);
            }
            if n < RESULTS {
                break;
            }
        }
        cq_arm(cq);
    }

    pub(super) fn fail(&self, d: &mut CData, st: NTSTATUS) {
        if d.error.is_none() {
            d.error = Some(st);
        }
        self.finish(d);
    }

    pub(super) fn finish(&self, d: &mut CData) {
        if !d.done {
            d.done = true;
            d.end = allocs().map(|a| (a, d.completed));
            self.finished.set(d.error.unwrap_or(STATUS_SUCCESS));
        }
    }

    pub(super) fn more(&self, d: &CData, now: Instant) -> bool {
        if stop_requested() {
            return false;
        }
        match (d.target, d.deadline) {
            (Some(t), _) => d.posted < t,
            (None, Some(dl)) => now < dl,
            (None, None) => false,
        }
    }

    /// Posts the next request of a bandwidth or one-sided mode.
    pub(super) fn post_next(&self, d: &mut CData, now: Instant) -> Result<(), NTSTATUS> {
        let qp = self.qp.load(Ordering::Acquire);
        let b = self.buf();
        let slot = (d.posted % d.window) as usize;
        let local = slot % d.slots.max(1);
        let sge = b.sge(local * d.size, d.size);
        let span = (d.remote.size as usize).max(d.size);
        let roff = ((slot * d.size) % span.max(1)).min(span - d.size.min(span)) as u64;
        let raddr = d.remote.buf + roff;
        let ctx = d.posted as usize;
        d.t_post = now;
        if d.first_post.is_none() {
            d.first_post = Some(now);
        }
        d.posted += 1;
        match d.mode {
            Mode::WriteBw | Mode::WriteLat => qp_write(qp, ctx, &sge, raddr, d.remote.rkey),
            Mode::ReadBw | Mode::ReadLat => qp_read(qp, ctx, &sge, raddr, d.remote.rkey),
            Mode::Rperf => {
                if ctx.is_multiple_of(2) {
                    qp_write(qp, ctx, &sge, raddr, d.remote.rkey)
                } else {
                    qp_read(qp, ctx, &sge, raddr, d.remote.rkey)
                }
            }
            Mode::SendBw | Mode::SendLat => qp_send(qp, ctx, &sge, 0),
            Mode::Rping | Mode::Disconnect => Ok(()),
        }
    }

    /// rping: starts iteration `d.rping_iter` (advertise the source).
    pub(super) fn rping_start(
        &self,
        d: &mut CData,
        now: Instant,
        l: &Layout,
    ) -> Result<(), NTSTATUS> {
        let b = self.buf();
        // SAFETY: no RDMA on the source or sink is in flight between
        // iterations.
        unsafe {
            rping_pattern(d.rping_iter, b.bytes_mut(l.data, d.size));
            b.bytes_mut(l.sink, d.size).fill(0);
        }
        d.t_post = now;
        if d.first_post.is_none() {
            d.first_post = Some(now);
        }
        d.posted += 1;
        d.rping_phase = 0;
        self.rping_advertise(b.addr(l.data), d.size, l)
    }

    pub(super) fn rping_advertise(
        &self,
        addr: u64,
        size: usize,
        l: &Layout,
    ) -> Result<(), NTSTATUS> {
        let b = self.buf();
        let info = RdmaInfo {
            buf: addr,
            rkey: b.token,
            size: size as u32,
        };
        // SAFETY: the send area: no send from it is in flight (one per
        // phase, each answered before the next).
        unsafe { b.bytes_mut(l.send, 16).copy_from_slice(&info.encode()) };
        let qp = self.qp.load(Ordering::Acquire);
        qp_send(qp, usize::MAX, &b.sge(l.send, RdmaInfo::LEN), 0)
    }

    pub(super) fn on_completion(&self, d: &mut CData, r: &NDK_RESULT_EX) {
        if d.done {
            return;
        }
        if r.Status != STATUS_SUCCESS {
            self.fail(d, r.Status);
            return;
        }
        let now = Instant::now();
        let qp = self.qp.load(Ordering::Acquire);
        let l = Layout::of(&Params {
            mode: d.mode,
            size: d.size,
            iters: None,
            duration: Duration::ZERO,
            window: d.window as u32,
            slots: d.slots as u32,
            qps: 1,
            timeout: Duration::ZERO,
        });
        let sample = |d: &mut CData| {
            if d.lat.len() < d.lat.capacity() {
                d.lat.push((now - d.t_post).as_nanos() as u64);
            }
        };
        let counted = match (d.mode, r.Type) {
            (Mode::SendLat, NdkOperationTypeSend) => false,
            (Mode::SendLat, NdkOperationTypeReceive) => {
                sample(d);
                let i = r.RequestContext as usize;
                let b = self.buf();
                let _ = qp_recv(qp, i, &b.sge(l.recv_off(i), d.size));
                true
            }
            (Mode::Rping, NdkOperationTypeSend) => false,
            (Mode::Rping, NdkOperationTypeReceive) => {
                let i = r.RequestContext as usize;
                let b = self.buf();
                let _ = qp_recv(qp, i, &b.sge(l.recv_off(i), RdmaInfo::LEN));
                if r.BytesTransferred as usize != RdmaInfo::LEN {
                    // rping's client gives up on a message of another size.
                    d.rping_bogus = Some(r.BytesTransferred);
                    self.fail(d, STATUS_UNSUCCESSFUL);
                    return;
                }
                if d.rping_phase == 0 {
                    // The server read the source: advertise the sink.
                    d.rping_phase = 1;
                    if let Err(st) = self.rping_advertise(b.addr(l.sink), d.size, &l) {
                        self.fail(d, st);
                    }
                    false
                } else {
                    // The server wrote the sink: verify all of it (rping's
                    // -V compares the whole buffers).
                    // SAFETY: the Write landed before the server's Send.
                    let ok = unsafe { b.bytes_mut(l.data, d.size) == b.bytes_mut(l.sink, d.size) };
                    if !ok {
                        d.verify_errors += 1;
                    }
                    sample(d);
                    d.rping_iter += 1;
                    true
                }
            }
            _ => {
                if d.mode.is_latency() {
                    sample(d);
                }
                true
            }
        };
        if !counted {
            return;
        }
        let moved = if d.mode == Mode::Rping {
            2 * d.size as u64
        } else {
            r.BytesTransferred as u64
        };
        d.completed += 1;
        d.bytes += moved;
        count_progress(moved);
        d.last_done = Some(now);
        if d.warm.is_none() && now >= d.warm_at {
            d.warm = allocs().map(|a| (a, d.completed));
        }
        if self.more(d, now) {
            let res = if d.mode == Mode::Rping {
                self.rping_start(d, now, &l)
            } else {
                self.post_next(d, now)
            };
            if let Err(st) = res {
                self.fail(d, st);
            }
        } else if d.completed >= d.posted {
            self.finish(d);
        }
    }
}

/// Connects a fresh connector for `qp` to `peer` with `hello` as private
/// data and `reads` (inbound, outbound) RDMA Read limits; returns it with
/// the server's buffer info from the reply's private data (`None`: rping,
/// whose server sends none), or a clear error. Bounded by `t`.
#[allow(clippy::too_many_arguments)]
pub(super) fn connect(
    a: *mut NDK_ADAPTER,
    qp: *mut NDK_QP,
    local: SocketAddr,
    peer: SocketAddr,
    hello: Option<&[u8]>,
    reads: (u32, u32),
    t: Duration,
    on_disconnect: Option<(NDK_FN_DISCONNECT_EVENT_CALLBACK, PVOID)>,
    server: &str,
) -> Result<(*mut NDK_CONNECTOR, RdmaInfo), PerfError> {
    let pdata = hello.unwrap_or(&[]);
    let conn = create_connector(a)?;
    let (src, src_len) = sockaddr(SocketAddr::new(local.ip(), 0));
    let (dst, dst_len) = sockaddr(peer);
    let st = sync_req(t, |ctx| match disp!(conn, NdkConnect) {
        // SAFETY: live connector and QP; addresses and private data read
        // during the call.
        Some(f) => unsafe {
            f(
                conn,
                qp,
                src.as_ptr().cast(),
                src_len,
                dst.as_ptr().cast(),
                dst_len,
                reads.0,
                reads.1,
                if pdata.is_empty() {
                    ptr::null()
                } else {
                    pdata.as_ptr().cast()
                },
                pdata.len() as ULONG,
                Some(on_request),
                ctx,
            )
        },
        None => STATUS_NOT_IMPLEMENTED,
    });
    let fail = |msg: String| {
        let _ = close_wait(conn.cast(), disp!(conn, NdkCloseConnector), t);
        Err(PerfError(msg, None))
    };
    match st {
        None => {
            return fail(format!(
                "no answer from {peer} within {:.1} s (--timeout: STATUS_IO_TIMEOUT): is \
                 {server} running there, on the same UDP port?",
                t.as_secs_f64()
            ));
        }
        Some(STATUS_SUCCESS) => {}
        Some(STATUS_CONNECTION_REFUSED) => {
            return fail(format!(
                "{peer} rejected the connection (REJ): STATUS_CONNECTION_REFUSED"
            ));
        }
        Some(STATUS_IO_TIMEOUT) => {
            return fail(format!(
                "no RoCE peer answered at {peer} (connect timed out: STATUS_IO_TIMEOUT); \
                 is {server} running there?"
            ));
        }
        Some(s) => return fail(format!("connecting to {peer} failed: {}", StatusText(s))),
    }
    let mut irl = 0;
    let mut orl = 0;
    let mut data = [0u8; 196];
    let mut len = data.len() as ULONG;
    let st = match disp!(conn, NdkGetConnectionData) {
        // SAFETY: live connector, buffers of the stated sizes.
        Some(f) => unsafe { f(conn, &mut irl, &mut orl, data.as_mut_ptr().cast(), &mut len) },
        None => STATUS_NOT_IMPLEMENTED,
    };
    let info = (st == STATUS_SUCCESS && len >= 20 && &data[..4] == MAGIC)
        .then(|| RdmaInfo::decode(&data[4..20]))
        .flatten();
    let info = match (hello, info) {
        (Some(_), Some(info)) => info,
        (Some(_), None) => return fail(format!("{peer} accepted but is not an ndkperf server")),
        // rping: whatever the server sent is not looked at.
        (None, _) => RdmaInfo::default(),
    };
    let st = sync_req(t, |ctx| match disp!(conn, NdkCompleteConnect) {
        // SAFETY: live connector.
        Some(f) => unsafe {
            f(
                conn,
                on_disconnect.map_or(Some(ignore_disconnect as _), |d| d.0),
                on_disconnect.map_or(ptr::null_mut(), |d| d.1),
                Some(on_request),
                ctx,
            )
        },
        None => STATUS_NOT_IMPLEMENTED,
    });
    if st != Some(STATUS_SUCCESS) {
        return fail(format!(
            "completing the connection to {peer} failed: {}",
            st.map_or("no completion".into(), |s| StatusText(s).to_string())
        ));
    }
    Ok((conn, info))
}

/// Disconnects and closes everything of one connection; the disconnect
/// time. Bounded by `t` per step.
pub(super) fn disconnect(conn: *mut NDK_CONNECTOR, t: Duration) -> Result<Duration, PerfError> {
    let t0 = Instant::now();
    let st = sync_req(t, |ctx| match disp!(conn, NdkDisconnect) {
        // SAFETY: live connector.
        Some(f) => unsafe { f(conn, Some(on_request), ctx) },
        None => STATUS_NOT_IMPLEMENTED,
    });
    let d = t0.elapsed();
    match st {
        Some(STATUS_SUCCESS) => Ok(d),
        Some(s) => err(format!("NdkDisconnect completed with {}", StatusText(s))),
        None => err(format!(
            "NdkDisconnect did not complete within {:.1} s",
            t.as_secs_f64()
        )),
    }
}

/// The adapter's live objects once every close has settled (a close the
/// provider completes inline may still have an upcall in flight on the
/// I/O thread for a moment); waits up to half a second.
pub(super) fn settled_object_count(adapter: &Adapter) -> usize {
    adapter.object_count_settled(0, Duration::from_millis(500))
}

/// Runs one mode against the server at `peer` (its address and CM port).
/// Everything the provider may still call back is left in `keep`.
pub fn run(
    adapter: &Adapter,
    peer: SocketAddr,
    p: &Params,
    keep: &mut Keep,
) -> Result<Report, PerfError> {
    if p.mode == Mode::Disconnect {
        return run_disconnect(adapter, peer, p, keep);
    }
    run_one(adapter, peer, p, keep)
}

pub(super) fn run_one(
    adapter: &Adapter,
    peer: SocketAddr,
    p: &Params,
    keep: &mut Keep,
) -> Result<Report, PerfError> {
    let a = adapter.ptr();
    let size = p.size.max(1);
    let window = u64::from(effective_window(p.mode, size, p.window));
    let l = Layout::of(p);
    let cap = p.iters.map_or(1 << 20, |n| n.min(1 << 22)) as usize;
    let run = Arc::new(ClientRun {
        cq: AtomicPtr::new(ptr::null_mut()),
        qp: AtomicPtr::new(ptr::null_mut()),
        buf: OnceLock::new(),
        drive: Drive::default(),
        dp: UnsafeCell::new(CData {
            mode: p.mode,
            size,
            window,
            slots: l.slots,
            target: p.iters,
            deadline: None,
            warm_at: Instant::now(),
            posted: 0,
            completed: 0,
            bytes: 0,
            first_post: None,
            last_done: None,
            t_post: Instant::now(),
            lat: if p.mode.is_latency() {
                Vec::with_capacity(cap)
            } else {
                Vec::new()
            },
            remote: RdmaInfo::default(),
            error: None,
            done: false,
            verify_errors: 0,
            rping_iter: 0,
            rping_phase: 0,
            rping_bogus: None,
            warm: None,
            end: None,
            res: empty_results(),
        }),
        finished: Signal::default(),
        peer_left: AtomicBool::new(false),
    });
    keep.0.push(run.clone());
    let pd = create_pd(a)?;
    let close_pd = |t| {
        let _ = close_wait(pd.cast(), disp!(pd, NdkClosePd), t);
    };
    let cq = match create_cq(a, 4096, Some(client_cq), Arc::as_ptr(&run) as PVOID) {
        Ok(c) => c,
        Err(e) => {
            close_pd(p.timeout);
            return Err(e);
        }
    };
    run.cq.store(cq, Ordering::Release);
    let depth = (window as u32 + 4).min(4096);
    let qp = match create_qp(pd, cq, ptr::null_mut(), 4, depth) {
        Ok(q) => q,
        Err(e) => {
            let _ = close_wait(cq.cast(), disp!(cq, NdkCloseCq), p.timeout);
            close_pd(p.timeout);
            return Err(e);
        }
    };
    run.qp.store(qp, Ordering::Release);
    let buf = match Buf::new(pd, l.total) {
        Ok(b) => b,
        Err(e) => {
            let _ = close_wait(qp.cast(), disp!(qp, NdkCloseQp), p.timeout);
            let _ = close_wait(cq.cast(), disp!(cq, NdkCloseCq), p.timeout);
            close_pd(p.timeout);
            return Err(e);
        }
    };
    let mr = buf.mr;
    let _ = run.buf.set(buf);
    let b = run.buf();
    // Receives for the modes that get Sends back.
    if matches!(p.mode, Mode::SendLat | Mode::Rping) {
        for i in 0..2 {
            let len = if p.mode == Mode::Rping {
                RdmaInfo::LEN
            } else {
                size
            };
            let _ = qp_recv(qp, i, &b.sge(l.recv_off(i), len));
        }
    }
    let hello = Hello {
        mode: p.mode,
        size: size as u32,
        depth: (window as u32 * 2).max(8),
        slots: p.slots,
    }
    .encode();
    // rping connects as rping does: no private data, one RDMA Read each
    // way.
    let (hello, reads) = if p.mode == Mode::Rping {
        (None, (1, 1))
    } else {
        (Some(&hello[..]), (16, 16))
    };
    let teardown = |conn: Option<*mut NDK_CONNECTOR>| {
        if let Some(c) = conn {
            let _ = close_wait(c.cast(), disp!(c, NdkCloseConnector), p.timeout);
        }
        let _ = close_wait(qp.cast(), disp!(qp, NdkCloseQp), p.timeout);
        let _ = close_wait(mr.cast(), disp!(mr, NdkCloseMr), p.timeout);
        let _ = close_wait(cq.cast(), disp!(cq, NdkCloseCq), p.timeout);
        close_pd(p.timeout);
    };
    let t0 = Instant::now();
    let on_disc = (
        Some(client_peer_disconnected as unsafe extern "system" fn(PVOID)),
        Arc::as_ptr(&run) as PVOID,
    );
    let (conn, remote) = match connect(
        a,
        qp,
        adapter.local_addr(),
        peer,
        hello,
        reads,
        p.timeout,
        Some(on_disc),
        "`ndkperf --server` (or, for rping, a Linux `rping -s`)",
    ) {
        Ok(x) => x,
        Err(e) => {
            teardown(None);
            return Err(e);
        }
    };
    let connect_time = t0.elapsed();
    // Start: the first window, posted under the drive.
    let start = Instant::now();
    let mut started = Ok(());
    {
        let _g = run.drive.lock.lock();
        run.drive.missed.store(false, Ordering::SeqCst);
        // SAFETY: the drive is held.
        let d = unsafe { &mut *run.dp.get() };
        d.remote = remote;
        if p.iters.is_none() {
            d.deadline = Some(start + p.duration);
        }
        d.warm_at = start + p.duration.min(Duration::from_secs(60)) / 10;
        if p.iters.is_some() {
            // Iteration-bounded runs warm up over the first tenth.
            d.warm_at = start;
        }
        for _ in 0..window {
            if !run.more(d, start) {
                break;
            }
            let r = if p.mode == Mode::Rping {
                run.rping_start(d, start, &l)
            } else {
                run.post_next(d, start)
            };
            if let Err(st) = r {
                started = Err(st);
                break;
            }
        }
        if d.posted == 0 {
            run.finish(d);
        }
    }
    run.drive.run(|| run.service());
    let bound = p.iters.map_or(p.duration + Duration::from_secs(10), |_| {
        Duration::from_secs(120)
    });
    let outcome = run.finished.wait(bound);
    // A disconnect event can overtake the completion that explains it (a
    // request's error status): drain the CQ once, so that a failed
    // request's status is the reason given.
    run.drive.run(|| run.service());
    // Snapshot what the data path measured (the drive is idle or stops
    // touching the state once `done`).
    let bogus;
    let data_error;
    let mut report = {
        let _g = run.drive.lock.lock();
        // SAFETY: the drive is held.
        let d = unsafe { &mut *run.dp.get() };
        d.done = true;
        let mut lat = std::mem::take(&mut d.lat);
        lat.sort_unstable();
        let allocs_per_msg = match (d.warm, d.end) {
            (Some((a0, m0)), Some((a1, m1))) if m1 > m0 => {
                Some((a1.saturating_sub(a0)) as f64 / (m1 - m0) as f64)
            }
            _ => None,
        };
        bogus = d.rping_bogus;
        data_error = d.error.filter(|&e| e != STATUS_CANCELLED);
        Report {
            messages: d.completed,
            bytes: d.bytes,
            elapsed: match (d.first_post, d.last_done) {
                (Some(a), Some(b)) => b.saturating_duration_since(a),
                _ => Duration::ZERO,
            },
            lat: Samples(lat),
            verify_errors: d.verify_errors,
            allocs_per_msg,
            alloc_window_msgs: match (d.warm, d.end) {
                (Some((_, m0)), Some((_, m1))) => m1.saturating_sub(m0),
                _ => 0,
            },
            connect: connect_time,
            window: window as u32,
            interrupted: stop_requested(),
            ..Report::default()
        }
    };
    let disc = disconnect(conn, p.timeout);
    teardown(Some(conn));
    report.leaked_objects = settled_object_count(adapter);
    let failure = |msg: String, report: Report| -> Result<Report, PerfError> {
        Err(PerfError(msg, Some(Box::new(report))))
    };
    if let Err(st) = started {
        return failure(format!("posting failed: {}", StatusText(st)), report);
    }
    let of = p.iters.map_or(String::new(), |n| format!(" of {n}"));
    match outcome {
        Some(STATUS_SUCCESS) => {}
        Some(_) if bogus.is_some() => {
            let msg = format!(
                "{peer} sent a {}-byte message; rping's messages are {} bytes",
                bogus.unwrap_or(0),
                RdmaInfo::LEN
            );
            return failure(msg, report);
        }
        Some(_) if data_error.is_some() => {
            let st = data_error.unwrap_or_default();
            let msg = format!(
                "a request completed with {} after {}{of} messages{}",
                StatusText(st),
                report.messages,
                if st == STATUS_IO_TIMEOUT {
                    format!(
                        " (the RC retries to {peer} ran out: \
                         no acknowledgement within the QP's retry bound)"
                    )
                } else {
                    String::new()
                }
            );
            return failure(msg, report);
        }
        Some(_) if run.peer_left.load(Ordering::SeqCst) => {
            let msg = format!(
                "the connection to {peer} ended (disconnect event: \
                 STATUS_CONNECTION_DISCONNECTED) after {}{of} messages",
                report.messages,
            );
            return failure(msg, report);
        }
        Some(st) => {
            let msg = format!("a request completed with {}", StatusText(st));
            return failure(msg, report);
        }
        None => {
            let msg = format!(
                "the run did not finish within {:.0} s ({}{of} messages completed)",
                bound.as_secs_f64(),
                report.messages,
            );
            return failure(msg, report);
        }
    }
    report.disconnect = disc?;
    Ok(report)
}
