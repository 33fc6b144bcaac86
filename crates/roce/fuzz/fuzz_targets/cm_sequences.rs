// Run: cd crates/roce/fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run cm_sequences corpus/cm_sequences
//
// Two connection managers (A active, B listening) and a wire between them
// that the fuzzer owns: it delivers, drops or duplicates the MADs each side
// sends, injects mutated copies of any MAD seen so far (rewritten comm IDs,
// attribute IDs turned into LAP/APR/SIDR or unknown ones, flipped bytes,
// spoofed source addresses), fires timers and makes consumer calls
// (connect, accept, reject, complete, disconnect, abort, release) in any
// order (IBA Vol 1 ch. 12; docs/design.md "Proof" 5).
//
// Invariants, checked on every input:
// * no panic;
// * every accepted consumer request completes exactly once: a connect with
//   Replied, Rejected or EstablishTimedOut (or the consumer's own reject,
//   abort or release), an accept with Established, PeerDisconnected,
//   Rejected or EstablishTimedOut, a disconnect with Disconnected; no such
//   event arrives for a request that is not pending;
// * bounded state: once every connection is released and the timers run
//   out, no record and no timer is left, within a bounded number of timer
//   expiries (so nothing grows without bound or lives forever).
#![no_main]

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use roce::cm::state::Event;
use roce::cm::{AcceptParams, CmConfig, CmEvent, CmManager, ConnId, ConnectParams, ListenerId};
use roce::time::Instant;
use roce::wire::mad::MAD_LEN;

const A_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 9, 0, 3));
const B_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 9, 0, 2));
const C_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 9, 0, 7));
const PORT: u16 = 0x4A1;
/// CM attribute IDs (IBA Vol 1 16.7.1 / 12.6): REQ, MRA, REJ, REP, RTU,
/// DREQ, DREP, SIDR_REQ, SIDR_REP, LAP, APR, and one nobody uses.
const ATTRS: [u16; 12] = [
    0x0010, 0x0011, 0x0012, 0x0013, 0x0014, 0x0015, 0x0016, 0x0017, 0x0018, 0x0019, 0x001A, 0x00FF,
];

#[derive(Arbitrary, Debug)]
enum Op {
    /// Deliver the next queued MAD of one direction.
    Deliver {
        to_b: bool,
    },
    /// Drop it.
    Drop {
        to_b: bool,
    },
    /// Deliver it and keep it queued (a duplicate).
    Duplicate {
        to_b: bool,
    },
    /// Send a mutated copy of a MAD seen on the wire.
    Inject(Inject),
    /// A whole MAD of the fuzzer's bytes.
    Raw {
        to_b: bool,
        bytes: Vec<u8>,
    },
    /// Move time on and fire due timers.
    Advance {
        millis: u16,
    },
    /// Fire the next deadline of both sides.
    NextTimer,
    Connect {
        private_len: u8,
        mtu: u8,
        qpn: u32,
    },
    Accept {
        which: u8,
        private_len: u8,
        qpn: u32,
    },
    Reject {
        b_side: bool,
        which: u8,
        private_len: u8,
    },
    Complete {
        which: u8,
    },
    Disconnect {
        b_side: bool,
        which: u8,
    },
    Abort {
        b_side: bool,
        which: u8,
    },
    Release {
        b_side: bool,
        which: u8,
    },
    CommEstablished {
        qpn: u32,
    },
    Unlisten,
    Listen,
}

#[derive(Arbitrary, Debug)]
struct Inject {
    to_b: bool,
    from: u8,
    attr: Option<u8>,
    local_comm_id: Option<u32>,
    remote_comm_id: Option<u32>,
    /// Take a comm ID the other side used (a stale or foreign one).
    swap_ids: bool,
    spoof: bool,
    edits: Vec<(u8, u8)>,
}

/// What a connection's consumer is waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    None,
    Connect,
    Accept,
    Disconnect,
}

#[derive(Default)]
struct Side {
    conns: Vec<ConnId>,
    pending: BTreeMap<ConnId, Pending>,
    released: Vec<ConnId>,
}

struct World {
    a: CmManager,
    b: CmManager,
    now: Instant,
    to_b: Vec<[u8; MAD_LEN]>,
    to_a: Vec<[u8; MAD_LEN]>,
    seen: Vec<[u8; MAD_LEN]>,
    sa: Side,
    sb: Side,
    listener: Option<ListenerId>,
}

fn pick(list: &[ConnId], which: u8) -> Option<ConnId> {
    if list.is_empty() {
        None
    } else {
        Some(list[usize::from(which) % list.len()])
    }
}

impl World {
    fn new() -> World {
        let a = CmManager::new(CmConfig::default(), 0x5054_00FF_FE00_0003, 1);
        let mut b = CmManager::new(CmConfig::default(), 0x5054_00FF_FE00_0002, 2);
        let listener = Some(b.listen(SocketAddr::new(B_IP, PORT)).expect("listen"));
        World {
            a,
            b,
            now: Instant::ZERO,
            to_b: Vec::new(),
            to_a: Vec::new(),
            seen: Vec::new(),
            sa: Side::default(),
            sb: Side::default(),
            listener,
        }
    }

    /// Moves sent MADs to the wire queues and checks every event.
    fn collect(&mut self) {
        while let Some(m) = self.a.poll_transmit() {
            // A answers whoever sent to it (a spoofed source too).
            assert_eq!(m.src, A_IP);
            self.seen.push(m.mad);
            if m.dst == B_IP {
                self.to_b.push(m.mad);
            }
        }
        while let Some(m) = self.b.poll_transmit() {
            assert_eq!(m.src, B_IP);
            self.seen.push(m.mad);
            if m.dst == A_IP {
                self.to_a.push(m.mad);
            }
        }
        // Bounded queues: a fuzzer that never delivers cannot grow them.
        for q in [&mut self.to_a, &mut self.to_b, &mut self.seen] {
            if q.len() > 64 {
                q.drain(..q.len() - 64);
            }
        }
        while let Some(e) = self.a.poll_event() {
            on_event(&mut self.sa, e, false);
        }
        while let Some(e) = self.b.poll_event() {
            on_event(&mut self.sb, e, true);
        }
    }

    fn side(&mut self, b: bool) -> (&mut CmManager, &mut Side) {
        if b {
            (&mut self.b, &mut self.sb)
        } else {
            (&mut self.a, &mut self.sa)
        }
    }

    fn deliver(&mut self, to_b: bool, src: IpAddr, mad: &[u8]) {
        let now = self.now;
        if to_b {
            self.b.handle_mad(now, src, B_IP, mad);
        } else {
            self.a.handle_mad(now, src, A_IP, mad);
        }
    }

    fn fire(&mut self) {
        let now = self.now;
        self.a.handle_timeout(now);
        self.b.handle_timeout(now);
    }

    fn next_timer(&mut self) -> bool {
        let Some(at) = [self.a.poll_timeout(), self.b.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
        else {
            return false;
        };
        assert!(at >= self.now, "a deadline in the past stays armed");
        self.now = at;
        self.fire();
        true
    }

    fn run(&mut self, op: Op) {
        let now = self.now;
        match op {
            Op::Deliver { to_b } | Op::Drop { to_b } | Op::Duplicate { to_b } => {
                let q = if to_b { &mut self.to_b } else { &mut self.to_a };
                if q.is_empty() {
                    return;
                }
                let mad = if matches!(op, Op::Duplicate { .. }) {
                    q[0]
                } else {
                    q.remove(0)
                };
                if !matches!(op, Op::Drop { .. }) {
                    let src = if to_b { A_IP } else { B_IP };
                    self.deliver(to_b, src, &mad);
                }
            }
            Op::Inject(i) => {
                if self.seen.is_empty() {
                    return;
                }
                let mut mad = self.seen[usize::from(i.from) % self.seen.len()];
                if let Some(attr) = i.attr {
                    let id = ATTRS[usize::from(attr) % ATTRS.len()];
                    mad[16..18].copy_from_slice(&id.to_be_bytes());
                }
                if i.swap_ids {
                    let (l, r) = (mad[24..28].to_vec(), mad[28..32].to_vec());
                    mad[24..28].copy_from_slice(&r);
                    mad[28..32].copy_from_slice(&l);
                }
                if let Some(id) = i.local_comm_id {
                    mad[24..28].copy_from_slice(&id.to_be_bytes());
                }
                if let Some(id) = i.remote_comm_id {
                    mad[28..32].copy_from_slice(&id.to_be_bytes());
                }
                for (at, v) in i.edits.iter().take(16) {
                    mad[usize::from(*at)] ^= v;
                }
                let src = match (i.spoof, i.to_b) {
                    (true, _) => C_IP,
                    (false, true) => A_IP,
                    (false, false) => B_IP,
                };
                self.deliver(i.to_b, src, &mad);
            }
            Op::Raw { to_b, bytes } => {
                let src = if to_b { A_IP } else { B_IP };
                self.deliver(to_b, src, &bytes);
            }
            Op::Advance { millis } => {
                self.now = now + Duration::from_millis(u64::from(millis));
                self.fire();
            }
            Op::NextTimer => {
                self.next_timer();
            }
            Op::Connect {
                private_len,
                mtu,
                qpn,
            } => {
                let data = [0x5Au8; 256];
                let r = self.a.connect(
                    now,
                    &ConnectParams {
                        local: SocketAddr::new(A_IP, 0xE93D),
                        remote: SocketAddr::new(B_IP, PORT),
                        local_qpn: qpn & 0x1FF_FFFF,
                        starting_psn: 0x73FEFE,
                        responder_resources: 1,
                        initiator_depth: 1,
                        path_mtu: mtu % 7,
                        srq: false,
                        private_data: &data[..usize::from(private_len)],
                    },
                );
                if let Ok(id) = r {
                    self.sa.conns.push(id);
                    set(&mut self.sa, id, Pending::None, Pending::Connect);
                }
            }
            Op::Accept {
                which,
                private_len,
                qpn,
            } => {
                let Some(id) = pick(&self.sb.conns, which) else {
                    return;
                };
                let data = [0xA5u8; 256];
                let r = self.b.accept(
                    now,
                    id,
                    &AcceptParams {
                        local_qpn: qpn & 0x1FF_FFFF,
                        starting_psn: 0xB55B8D,
                        responder_resources: 1,
                        initiator_depth: 1,
                        srq: false,
                        private_data: &data[..usize::from(private_len)],
                    },
                );
                if r.is_ok() {
                    set(&mut self.sb, id, Pending::None, Pending::Accept);
                }
            }
            Op::Reject {
                b_side,
                which,
                private_len,
            } => {
                let data = [0x11u8; 256];
                let (m, s) = self.side(b_side);
                let Some(id) = pick(&s.conns, which) else {
                    return;
                };
                if m.reject(now, id, &data[..usize::from(private_len)]).is_ok() {
                    // A rejected reply ends the pending connect.
                    s.pending.remove(&id);
                }
            }
            Op::Complete { which } => {
                let Some(id) = pick(&self.sa.conns, which) else {
                    return;
                };
                let _ = self.a.complete_connect(now, id);
            }
            Op::Disconnect { b_side, which } => {
                let (m, s) = self.side(b_side);
                let Some(id) = pick(&s.conns, which) else {
                    return;
                };
                if m.disconnect(now, id).is_ok() {
                    set(s, id, Pending::None, Pending::Disconnect);
                }
            }
            Op::Abort { b_side, which } => {
                let (m, s) = self.side(b_side);
                let Some(id) = pick(&s.conns, which) else {
                    return;
                };
                if m.abort(now, id).is_ok() {
                    // The consumer gave up: nothing more is owed.
                    s.pending.remove(&id);
                }
            }
            Op::Release { b_side, which } => {
                let (m, s) = self.side(b_side);
                let Some(id) = pick(&s.conns, which) else {
                    return;
                };
                m.release(now, id);
                s.pending.remove(&id);
                s.conns.retain(|c| *c != id);
                s.released.push(id);
            }
            Op::CommEstablished { qpn } => self.b.comm_established(now, qpn & 0xFF_FFFF),
            Op::Unlisten => {
                if let Some(l) = self.listener.take() {
                    self.b.unlisten(l).expect("unlisten a live listener");
                }
            }
            Op::Listen => {
                if self.listener.is_none() {
                    self.listener =
                        Some(self.b.listen(SocketAddr::new(B_IP, PORT)).expect("listen"));
                }
            }
        }
        self.collect();
    }

    /// Lets the wire settle, releases every connection and runs the timers
    /// out: nothing may be left, within a bounded number of expiries.
    fn finish(&mut self) {
        for _ in 0..64 {
            if self.to_a.is_empty() && self.to_b.is_empty() {
                break;
            }
            for to_b in [true, false] {
                let q = std::mem::take(if to_b { &mut self.to_b } else { &mut self.to_a });
                for m in q {
                    let src = if to_b { A_IP } else { B_IP };
                    self.deliver(to_b, src, &m);
                }
            }
            self.collect();
        }
        // Run the timers until every request has completed.
        let mut steps = 0;
        while (self.sa.pending.values().any(|p| *p != Pending::None)
            || self.sb.pending.values().any(|p| *p != Pending::None))
            && steps < 10_000
        {
            // Deliver what the timers sent (retries), then fire the next.
            let q: Vec<_> = self.to_b.drain(..).collect();
            for m in q {
                self.b.handle_mad(self.now, A_IP, B_IP, &m);
            }
            let q: Vec<_> = self.to_a.drain(..).collect();
            for m in q {
                self.a.handle_mad(self.now, B_IP, A_IP, &m);
            }
            self.collect();
            if !self.next_timer() {
                break;
            }
            self.collect();
            steps += 1;
        }
        for s in [&self.sa, &self.sb] {
            for (id, p) in &s.pending {
                // A passive connection waits for its consumer (no timer)
                // and an established one for its own disconnect.
                assert_eq!(*p, Pending::None, "{id:?}: request never completed");
            }
        }
        let now = self.now;
        for id in std::mem::take(&mut self.sa.conns) {
            self.a.release(now, id);
        }
        for id in std::mem::take(&mut self.sb.conns) {
            self.b.release(now, id);
        }
        if let Some(l) = self.listener.take() {
            self.b.unlisten(l).expect("unlisten");
        }
        self.collect();
        self.to_a.clear();
        self.to_b.clear();
        let mut expiries = 0;
        while self.next_timer() {
            self.collect();
            self.to_a.clear();
            self.to_b.clear();
            expiries += 1;
            assert!(expiries < 10_000, "timers never run out");
        }
        assert_eq!(self.a.connection_count(), 0, "A kept a record");
        assert_eq!(self.b.connection_count(), 0, "B kept a record");
        assert_eq!(self.a.poll_timeout(), None);
        assert_eq!(self.b.poll_timeout(), None);
    }
}

fn set(s: &mut Side, id: ConnId, from: Pending, to: Pending) {
    let p = s.pending.entry(id).or_insert(Pending::None);
    assert_eq!(*p, from, "{id:?}: a second request while one is pending");
    *p = to;
}

fn on_event(s: &mut Side, e: CmEvent, passive: bool) {
    match e {
        CmEvent::Request { conn, .. } => {
            assert!(passive, "a Request on the active side");
            assert!(!s.conns.contains(&conn), "a Request for a known id");
            s.conns.push(conn);
        }
        CmEvent::Conn { conn, event } => {
            assert!(
                !s.released.contains(&conn),
                "{conn:?}: {event:?} after release"
            );
            let p = s.pending.get(&conn).copied().unwrap_or(Pending::None);
            let done = match event {
                Event::Replied | Event::EstablishTimedOut | Event::Rejected
                    if p == Pending::Connect =>
                {
                    true
                }
                Event::Established
                | Event::EstablishTimedOut
                | Event::Rejected
                | Event::PeerDisconnected
                    if p == Pending::Accept =>
                {
                    true
                }
                Event::Disconnected { .. } => {
                    assert_eq!(p, Pending::Disconnect, "{conn:?}: Disconnected unasked");
                    true
                }
                // A passive connection dropped before its consumer answered,
                // a reply rejected before the connect was completed, a
                // disconnect by the peer, the end of time-wait.
                Event::Rejected
                | Event::EstablishTimedOut
                | Event::PeerDisconnected
                | Event::Released => {
                    assert!(
                        p == Pending::None,
                        "{conn:?}: {event:?} while {p:?} is pending"
                    );
                    false
                }
                Event::Replied | Event::Established => {
                    panic!("{conn:?}: {event:?} completes a request that is not pending ({p:?})")
                }
            };
            if done {
                s.pending.insert(conn, Pending::None);
            }
        }
    }
}

fuzz_target!(|ops: Vec<Op>| {
    let mut w = World::new();
    for op in ops.into_iter().take(256) {
        w.run(op);
    }
    w.finish();
});
