//! The disconnect mode: N connections created, connected, used and torn
//! down, with their timelines.

use super::*;

pub(super) struct Rec {
    pub(super) qp: AtomicPtr<NDK_QP>,
    pub(super) conn: AtomicPtr<NDK_CONNECTOR>,
    pub(super) status: AtomicI32,
    pub(super) comps: AtomicU32,
    pub(super) t: [AtomicU64; 7],
}

pub(super) const T_CONNECT: usize = 0;
pub(super) const T_REPLIED: usize = 1;
pub(super) const T_ESTABLISHED: usize = 2;
pub(super) const T_TRAFFIC: usize = 3;
pub(super) const T_DISC: usize = 4;
pub(super) const T_DISCONNECTED: usize = 5;
pub(super) const T_CLOSED: usize = 6;

pub(super) struct DiscRun {
    pub(super) adapter: *mut NDK_ADAPTER,
    pub(super) local: SocketAddr,
    pub(super) peer: SocketAddr,
    pub(super) epoch: Instant,
    pub(super) recs: Box<[Rec]>,
    pub(super) buf: OnceLock<Buf>,
    pub(super) cq: AtomicPtr<NDK_CQ>,
    pub(super) drive: Drive,
    pub(super) hello: [u8; Hello::LEN],
    pub(super) next_connect: AtomicU64,
    pub(super) connect_turns: AtomicU64,
    pub(super) traffic_done: AtomicU64,
    pub(super) next_disc: AtomicU64,
    pub(super) disc_turns: AtomicU64,
    pub(super) closed: AtomicU64,
    pub(super) burst_from: AtomicU64,
    pub(super) phase1: Signal,
    pub(super) phase2: Signal,
    /// Connections between NdkConnect and their traffic's completions,
    /// and the most at once.
    pub(super) connecting: AtomicU32,
    pub(super) max_connecting: AtomicU32,
    /// The CQ's notification status, if it reported an error.
    pub(super) cq_error: AtomicI32,
    /// The run itself, for starting the next connect from the CQ callback.
    pub(super) me: OnceLock<std::sync::Weak<DiscRun>>,
    pub(super) res: UnsafeCell<[NDK_RESULT_EX; RESULTS]>,
}

// SAFETY: `res` is reached only under `drive`; the rest is atomics and
// provider pointers.
unsafe impl Send for DiscRun {}
// SAFETY: as above.
unsafe impl Sync for DiscRun {}

pub(super) unsafe extern "system" fn disc_cq(ctx: PVOID, status: NTSTATUS) {
    // SAFETY: the DiscRun is kept until the adapter closes.
    let r = unsafe { &*ctx.cast::<DiscRun>() };
    if status != STATUS_SUCCESS {
        // The CQ overran or failed: its completions are lost, so the run
        // ends now with the reason instead of waiting out its bound.
        let _ = r.cq_error.compare_exchange(
            STATUS_SUCCESS,
            status,
            Ordering::AcqRel,
            Ordering::Relaxed,
        );
        r.phase1.set(status);
        r.phase2.set(status);
        return;
    }
    r.drive.run(|| r.service());
}

impl DiscRun {
    pub(super) fn now(&self) -> u64 {
        (self.epoch.elapsed().as_nanos() as u64).max(1)
    }
    pub(super) fn n(&self) -> u64 {
        self.recs.len() as u64
    }

    pub(super) fn service(&self) {
        let cq = self.cq.load(Ordering::Acquire);
        // SAFETY: the drive is held.
        let res = unsafe { &mut *self.res.get() };
        loop {
            let n = cq_poll(cq, res);
            for r in &res[..n] {
                let Some(rec) = self.recs.get(r.QPContext as usize) else {
                    continue;
                };
                if r.Status != STATUS_SUCCESS {
                    let _ = rec.status.compare_exchange(
                        STATUS_SUCCESS,
                        r.Status,
                        Ordering::AcqRel,
                        Ordering::Relaxed,
                    );
                }
                if rec.comps.fetch_add(1, Ordering::AcqRel) + 1 == 2 {
                    rec.t[T_TRAFFIC].store(self.now(), Ordering::Release);
                    self.traffic_finished();
                }
            }
            if n < RESULTS {
                break;
            }
        }
        cq_arm(cq);
    }

    /// A connection's connect phase ended (its traffic completed, or it
    /// failed): the next connect starts. So `window` bounds connections
    /// from NdkConnect to their traffic's completions, and with it the
    /// completions outstanding on the shared CQ (two per connection);
    /// starting the next connect as soon as the traffic was posted let
    /// them pile up past the CQ's depth whenever the peer fell behind
    /// (the CQ overran, and the run waited out its bound).
    pub(super) fn traffic_finished(&self) {
        self.connecting.fetch_sub(1, Ordering::AcqRel);
        if self.traffic_done.fetch_add(1, Ordering::AcqRel) + 1 == self.n() {
            self.phase1.set(STATUS_SUCCESS);
        }
        if let Some(me) = self.me.get().and_then(std::sync::Weak::upgrade) {
            me.connect_next();
        }
    }

    /// Issues the next connect, if any is left (see [`trampoline`]: a
    /// connect that fails inline starts the next without recursing).
    pub(super) fn connect_next(self: &Arc<Self>) {
        trampoline(&self.connect_turns, || self.connect_one());
    }

    fn connect_one(self: &Arc<Self>) {
        let i = self.next_connect.fetch_add(1, Ordering::AcqRel);
        if i >= self.n() {
            return;
        }
        let i = i as usize;
        let now = self.connecting.fetch_add(1, Ordering::AcqRel) + 1;
        self.max_connecting.fetch_max(now, Ordering::AcqRel);
        let rec = &self.recs[i];
        let qp = rec.qp.load(Ordering::Acquire);
        let conn = rec.conn.load(Ordering::Acquire);
        let (src, src_len) = sockaddr(SocketAddr::new(self.local.ip(), 0));
        let (dst, dst_len) = sockaddr(self.peer);
        let me = Arc::clone(self);
        let r = Req::new(move |st| me.connected(i, st));
        let ctx = r.ctx();
        rec.t[T_CONNECT].store(self.now(), Ordering::Release);
        let st = match disp!(conn, NdkConnect) {
            // SAFETY: live connector and QP; data read during the call.
            Some(f) => unsafe {
                f(
                    conn,
                    qp,
                    src.as_ptr().cast(),
                    src_len,
                    dst.as_ptr().cast(),
                    dst_len,
                    4,
                    4,
                    self.hello.as_ptr().cast(),
                    self.hello.len() as ULONG,
                    Some(on_request),
                    ctx,
                )
            },
            None => STATUS_NOT_IMPLEMENTED,
        };
        r.finish(st);
    }

    /// The connect completed: complete it and run its traffic (the next
    /// connect starts when that completes, see [`Self::traffic_finished`]).
    pub(super) fn connected(self: &Arc<Self>, i: usize, st: NTSTATUS) {
        let rec = &self.recs[i];
        rec.t[T_REPLIED].store(self.now(), Ordering::Release);
        let fail = |st: NTSTATUS| {
            rec.status.store(st, Ordering::Release);
            // Counts as "traffic done" so the phase ends.
            rec.comps.store(2, Ordering::Release);
            self.traffic_finished();
        };
        let conn = rec.conn.load(Ordering::Acquire);
        let mut ok = st == STATUS_SUCCESS;
        let mut remote = RdmaInfo::default();
        if ok {
            let mut irl = 0;
            let mut orl = 0;
            let mut data = [0u8; 196];
            let mut len = data.len() as ULONG;
            if let Some(f) = disp!(conn, NdkGetConnectionData) {
                // SAFETY: live connector; buffers of the stated sizes.
                unsafe { f(conn, &mut irl, &mut orl, data.as_mut_ptr().cast(), &mut len) };
            }
            remote = RdmaInfo::decode(data.get(4..20).unwrap_or(&[])).unwrap_or_default();
            let cc = match disp!(conn, NdkCompleteConnect) {
                // SAFETY: live connector.
                Some(f) => unsafe {
                    f(
                        conn,
                        Some(ignore_disconnect),
                        ptr::null_mut(),
                        None,
                        ptr::null_mut(),
                    )
                },
                None => STATUS_NOT_IMPLEMENTED,
            };
            ok = cc == STATUS_SUCCESS;
            if !ok {
                fail(cc);
            }
        } else {
            fail(st);
        }
        if ok {
            rec.t[T_ESTABLISHED].store(self.now(), Ordering::Release);
            let qp = rec.qp.load(Ordering::Acquire);
            if let Some(b) = self.buf.get() {
                let sge = b.sge((i % 1024) * 64, 64);
                let a = qp_send(qp, i, &sge, 0);
                let w = qp_write(qp, i, &sge, remote.buf, remote.rkey);
                if let Err(st) = a.and(w) {
                    fail(st);
                }
            }
        }
    }

    /// Disconnects connection `i`; closes its QP and connector after.
    pub(super) fn disconnect(self: &Arc<Self>, i: usize, chain: bool, done: Option<Arc<Signal>>) {
        let rec = &self.recs[i];
        let conn = rec.conn.load(Ordering::Acquire);
        let me = Arc::clone(self);
        let r = Req::new(move |st| {
            let rec = &me.recs[i];
            rec.t[T_DISCONNECTED].store(me.now(), Ordering::Release);
            if st != STATUS_SUCCESS {
                let _ = rec.status.compare_exchange(
                    STATUS_SUCCESS,
                    st,
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                );
            }
            if chain {
                me.disconnect_next();
            }
            me.close(i, done);
        });
        let ctx = r.ctx();
        rec.t[T_DISC].store(self.now(), Ordering::Release);
        let st = if rec.status.load(Ordering::Acquire) == STATUS_SUCCESS {
            match disp!(conn, NdkDisconnect) {
                // SAFETY: live connector.
                Some(f) => unsafe { f(conn, Some(on_request), ctx) },
                None => STATUS_NOT_IMPLEMENTED,
            }
        } else {
            // Never connected: nothing to disconnect.
            STATUS_SUCCESS
        };
        r.finish(st);
    }

    pub(super) fn disconnect_next(self: &Arc<Self>) {
        trampoline(&self.disc_turns, || {
            let i = self.next_disc.fetch_add(1, Ordering::AcqRel);
            if i < self.n() {
                self.disconnect(i as usize, true, None);
            }
        });
    }

    pub(super) fn close(self: &Arc<Self>, i: usize, done: Option<Arc<Signal>>) {
        let rec = &self.recs[i];
        let qp = rec.qp.load(Ordering::Acquire);
        let conn = rec.conn.load(Ordering::Acquire);
        let qp = qp as usize;
        let me = Arc::clone(self);
        close_then(conn.cast(), disp!(conn, NdkCloseConnector), move |_| {
            let qp = qp as *mut NDK_QP;
            let me2 = Arc::clone(&me);
            close_then(qp.cast(), disp!(qp, NdkCloseQp), move |_| {
                me2.recs[i].t[T_CLOSED].store(me2.now(), Ordering::Release);
                if let Some(s) = done {
                    s.set(STATUS_SUCCESS);
                }
                if me2.closed.fetch_add(1, Ordering::AcqRel) + 1 == me2.n() {
                    me2.phase2.set(STATUS_SUCCESS);
                }
            });
        });
    }
}

/// Runs `f` once per call, never nested: a call made from inside `f` (a
/// request that completed inline and starts the next one) or meanwhile on
/// another thread only counts, and the loop already running makes it. The
/// stack stays flat however many requests in a row complete inline (30000
/// connects past the 16384 ephemeral ports each failed inline and started
/// the next from inside the last: a stack overflow).
fn trampoline(turns: &AtomicU64, f: impl Fn()) {
    if turns.fetch_add(1, Ordering::AcqRel) > 0 {
        return;
    }
    loop {
        f();
        if turns.fetch_sub(1, Ordering::AcqRel) == 1 {
            return;
        }
    }
}

pub(super) fn run_disconnect(
    adapter: &Adapter,
    peer: SocketAddr,
    p: &Params,
    keep: &mut Keep,
) -> Result<Report, PerfError> {
    let a = adapter.ptr();
    let n = p.qps.max(1) as usize;
    let window = p.window.clamp(1, 1024) as usize;
    let t_create = Instant::now();
    let pd = create_pd(a)?;
    let recs: Box<[Rec]> = (0..n)
        .map(|_| Rec {
            qp: AtomicPtr::new(ptr::null_mut()),
            conn: AtomicPtr::new(ptr::null_mut()),
            status: AtomicI32::new(STATUS_SUCCESS),
            comps: AtomicU32::new(0),
            t: Default::default(),
        })
        .collect();
    let run = Arc::new(DiscRun {
        adapter: a,
        local: adapter.local_addr(),
        peer,
        epoch: Instant::now(),
        recs,
        buf: OnceLock::new(),
        cq: AtomicPtr::new(ptr::null_mut()),
        drive: Drive::default(),
        hello: Hello {
            mode: Mode::Disconnect,
            size: 64,
            depth: 1,
            slots: 1,
        }
        .encode(),
        next_connect: AtomicU64::new(0),
        connect_turns: AtomicU64::new(0),
        traffic_done: AtomicU64::new(0),
        next_disc: AtomicU64::new(0),
        disc_turns: AtomicU64::new(0),
        closed: AtomicU64::new(0),
        burst_from: AtomicU64::new(0),
        phase1: Signal::default(),
        phase2: Signal::default(),
        connecting: AtomicU32::new(0),
        max_connecting: AtomicU32::new(0),
        cq_error: AtomicI32::new(STATUS_SUCCESS),
        me: OnceLock::new(),
        res: UnsafeCell::new(empty_results()),
    });
    let _ = run.me.set(Arc::downgrade(&run));
    keep.0.push(run.clone());
    let _ = run.adapter;
    let depth = ((2 * window) as u32 + 64).min(65536);
    let cq = create_cq(a, depth, Some(disc_cq), Arc::as_ptr(&run) as PVOID)?;
    run.cq.store(cq, Ordering::Release);
    let buf = Buf::new(pd, 64 * 1024)?;
    let mr = buf.mr;
    let _ = run.buf.set(buf);
    for (i, rec) in run.recs.iter().enumerate() {
        let qp = create_qp(pd, cq, i as PVOID, 1, 4)?;
        rec.qp.store(qp, Ordering::Release);
        let c = create_connector(a)?;
        rec.conn.store(c, Ordering::Release);
    }
    let create = t_create.elapsed();
    cq_arm(cq);
    // Phase 1: connect with `window` outstanding, traffic on each.
    let t1 = Instant::now();
    for _ in 0..window.min(n) {
        run.connect_next();
    }
    let bound = p.timeout + Duration::from_millis(2 * n as u64);
    let cq_failed = |run: &DiscRun| {
        let st = run.cq_error.load(Ordering::Acquire);
        (st != STATUS_SUCCESS).then(|| {
            format!(
                "the connections' CQ ({depth} entries) reported {}: completions were lost \
                 ({} of {n} connections had finished connecting)",
                StatusText(st),
                run.traffic_done.load(Ordering::Acquire),
            )
        })
    };
    let phase1 = run.phase1.wait(bound);
    if let Some(msg) = cq_failed(&run) {
        return err(msg);
    }
    if phase1.is_none() {
        return err(format!(
            "{} of {n} connections finished connecting within {:.1} s",
            run.traffic_done.load(Ordering::Acquire),
            bound.as_secs_f64()
        ));
    }
    let connect_phase = t1.elapsed();
    // Phase 2a: a few disconnects one at a time (the clean latency).
    let serial = n.min(32).min(n / 2).max(if n == 1 { 1 } else { 0 });
    for i in 0..serial {
        let s = Arc::new(Signal::default());
        run.disconnect(i, false, Some(Arc::clone(&s)));
        if s.wait(p.timeout).is_none() {
            return err(format!(
                "connection {i} did not disconnect and close within {:.1} s",
                p.timeout.as_secs_f64()
            ));
        }
    }
    // Phase 2b: the rest in a burst, `window` outstanding.
    run.next_disc.store(serial as u64, Ordering::Release);
    run.burst_from.store(serial as u64, Ordering::Release);
    let t2 = Instant::now();
    if serial < n {
        for _ in 0..window.min(n - serial) {
            run.disconnect_next();
        }
        let phase2 = run.phase2.wait(bound);
        if let Some(msg) = cq_failed(&run) {
            return err(msg);
        }
        if phase2.is_none() {
            return err(format!(
                "{} of {n} connections torn down within {:.1} s",
                run.closed.load(Ordering::Acquire),
                bound.as_secs_f64()
            ));
        }
    }
    let teardown_phase = t2.elapsed();
    let _ = close_wait(mr.cast(), disp!(mr, NdkCloseMr), p.timeout);
    let _ = close_wait(cq.cast(), disp!(cq, NdkCloseCq), p.timeout);
    let _ = close_wait(pd.cast(), disp!(pd, NdkClosePd), p.timeout);

    // The report, from the timestamps.
    let get = |r: &Rec, k: usize| r.t[k].load(Ordering::Acquire);
    let mut rep = DisconnectReport {
        qps: n as u32,
        create,
        connect_phase,
        teardown_phase,
        torn_down: (n - serial) as u32,
        window: window as u32,
        max_connecting: run.max_connecting.load(Ordering::Acquire),
        ..DisconnectReport::default()
    };
    let mut connect_lat = Vec::with_capacity(n);
    let mut serial_lat = Vec::new();
    let mut burst_lat = Vec::new();
    let mut tl = Vec::with_capacity(n);
    // Failures by status and by whether the connection was established
    // (the status is then its traffic's or its disconnect's), in the
    // order each first appeared.
    let mut by_status: Vec<(NTSTATUS, bool, u32)> = Vec::new();
    for (i, r) in run.recs.iter().enumerate() {
        let st = r.status.load(Ordering::Acquire);
        if get(r, T_ESTABLISHED) != 0 && st == STATUS_SUCCESS {
            rep.connected += 1;
            connect_lat.push(get(r, T_ESTABLISHED).saturating_sub(get(r, T_CONNECT)));
        } else {
            rep.failed += 1;
            rep.first_failure.get_or_insert(st);
            let est = get(r, T_ESTABLISHED) != 0;
            match by_status.iter_mut().find(|(s, e, _)| *s == st && *e == est) {
                Some((_, _, k)) => *k += 1,
                None => by_status.push((st, est, 1)),
            }
        }
        let dl = get(r, T_DISCONNECTED).saturating_sub(get(r, T_DISC));
        if i < serial {
            serial_lat.push(dl);
        } else {
            burst_lat.push(dl);
        }
        tl.push(Timeline {
            index: i,
            connect: get(r, T_CONNECT),
            replied: get(r, T_REPLIED),
            established: get(r, T_ESTABLISHED),
            traffic_done: get(r, T_TRAFFIC),
            disconnect: get(r, T_DISC),
            disconnected: get(r, T_DISCONNECTED),
            closed: get(r, T_CLOSED),
        });
    }
    connect_lat.sort_unstable();
    serial_lat.sort_unstable();
    burst_lat.sort_unstable();
    tl.sort_by_key(|t| {
        std::cmp::Reverse(
            t.established.saturating_sub(t.connect) + t.disconnected.saturating_sub(t.disconnect),
        )
    });
    tl.truncate(5);
    rep.connect_lat = Samples(connect_lat);
    rep.disconnect_lat_serial = Samples(serial_lat);
    rep.disconnect_lat_burst = Samples(burst_lat);
    rep.slowest = tl;
    let leaked = settled_object_count(adapter);
    if rep.failed > 0 {
        let by: Vec<String> = by_status
            .iter()
            .map(|&(st, est, k)| {
                let when = if est {
                    "after connecting"
                } else {
                    "connecting"
                };
                format!("{k} {} {when}", StatusText(st))
            })
            .collect();
        return err(format!(
            "{} of {n} connections failed ({})",
            rep.failed,
            by.join(", ")
        ));
    }
    Ok(Report {
        messages: 2 * n as u64,
        bytes: 128 * n as u64,
        elapsed: connect_phase + teardown_phase,
        disconnect: rep.disconnect_lat_serial.pct(0.5),
        connect: rep.connect_lat.pct(0.5),
        disc: Some(rep),
        leaked_objects: leaked,
        ..Report::default()
    })
}
