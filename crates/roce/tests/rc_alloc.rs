//! The hot path allocates nothing (docs/design.md): after setup, a counting
//! global allocator sees zero allocations on the engines' thread across posts, packet handling,
//! transmission, timeouts with retransmission (every 5th packet lost),
//! CQ polling and events.

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

use roce::rc::*;
use roce::time::Instant;
use roce::wire::packet::{Packet, PacketRepr};
use support::rc::*;

struct Counting;

thread_local! {
    // Per thread: the test harness's own thread allocates while the test
    // runs (it records the running test), and that must not count.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}
static ALLOCS: AtomicU64 = AtomicU64::new(0);

fn counting() -> bool {
    COUNTING.try_with(Cell::get).unwrap_or(false)
}

fn set_counting(on: bool) {
    COUNTING.with(|c| c.set(on));
}

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if counting() {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if counting() {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn rx_of(info: &TxInfo) -> RxInfo {
    RxInfo {
        src_ip: info.local_ip,
        dst_ip: info.remote_ip,
        udp_src_port: info.udp_src_port,
    }
}

/// Move packets both ways until quiet, losing every 5th; then run timers.
fn drive(
    a: &mut Engine<ArenaMemory>,
    b: &mut Engine<ArenaMemory>,
    now: &mut Instant,
    bufs: &mut [[u8; MAX_PACKET_LEN]; 2],
    sent: &mut u64,
) {
    for _ in 0..100_000 {
        let mut moved = false;
        for (dir, buf) in bufs.iter_mut().enumerate() {
            let (from, to) = if dir == 0 {
                (&mut *a, &mut *b)
            } else {
                (&mut *b, &mut *a)
            };
            while let Some(info) = from.poll_transmit(*now, buf) {
                moved = true;
                *sent += 1;
                if (*sent).is_multiple_of(5) {
                    continue;
                }
                let pkt = Packet::new_checked(&buf[..info.len]).unwrap();
                let repr = PacketRepr::parse(&pkt).unwrap();
                to.handle_packet(*now, &rx_of(&info), &repr);
            }
        }
        if moved {
            *now = Instant::from_nanos(now.as_nanos() + 10_000);
            continue;
        }
        let next = match (a.poll_timeout(), b.poll_timeout()) {
            (Some(x), Some(y)) => x.min(y),
            (x, y) => match x.or(y) {
                Some(t) => t,
                None => return,
            },
        };
        *now = next.max(*now);
        a.handle_timeout(*now);
        b.handle_timeout(*now);
    }
    panic!("no quiescence");
}

#[test]
fn hot_path_allocates_nothing() {
    let mut ha = Host::new([10, 9, 0, 3], Shape::default());
    let mut hb = Host::new([10, 9, 0, 2], Shape::default());
    connect(
        &mut ha,
        &mut hb,
        &Conn {
            mtu: 1024,
            ..Conn::default()
        },
    );
    let (aq, bq, ak, bk) = (ha.qpn, hb.qpn, ha.key, hb.key);
    let (acq, bcq, brcq) = (ha.scq, hb.scq, hb.rcq);
    let (mut a, mut b) = (ha.engine, hb.engine);
    a.arm_cq(acq, NotifyType::Any).unwrap();
    let mut bufs = Box::new([[0u8; MAX_PACKET_LEN]; 2]);
    let mut now = Instant::ZERO;
    let mut sent = 0u64;
    let mut out = [Completion::default(); 64];
    let mut completed = 0usize;
    let mut received = 0usize;
    for k in 0..64u64 {
        b.post_recv(
            bq,
            k,
            &[Sge {
                addr: BASE_VA + 0x80000 + k * 0x2000,
                length: 0x2000,
                lkey: bk,
            }],
        )
        .unwrap();
    }
    let mut round = |a: &mut Engine<ArenaMemory>,
                     b: &mut Engine<ArenaMemory>,
                     now: &mut Instant,
                     sent: &mut u64,
                     r: u64| {
        let src = [Sge {
            addr: BASE_VA + r * 64,
            length: 3000,
            lkey: ak,
        }];
        let sink = [Sge {
            addr: BASE_VA + 0x40000,
            length: 5000,
            lkey: ak,
        }];
        let wrs = [
            SendWr::new(1, SendOp::Send)
                .payload(Payload::Sges(&src))
                .flags(SendFlags::SIGNALED),
            SendWr::new(
                2,
                SendOp::Write {
                    remote_addr: BASE_VA + 0x10000,
                    rkey: bk,
                },
            )
            .payload(Payload::Sges(&src)),
            SendWr::new(
                3,
                SendOp::WriteWithImm {
                    remote_addr: BASE_VA + 0x20000,
                    rkey: bk,
                    imm: 9,
                },
            )
            .payload(Payload::Sges(&src))
            .flags(SendFlags::SIGNALED | SendFlags::SOLICITED),
            SendWr::new(
                4,
                SendOp::Read {
                    remote_addr: BASE_VA,
                    rkey: bk,
                },
            )
            .payload(Payload::Sges(&sink))
            .flags(SendFlags::SIGNALED),
            SendWr::new(5, SendOp::Send)
                .payload(Payload::Inline(b"inline bytes"))
                .flags(SendFlags::SIGNALED | SendFlags::DEFER),
        ];
        for wr in &wrs {
            a.post_send(aq, wr).unwrap();
        }
        a.doorbell(aq).unwrap();
        drive(a, b, now, &mut bufs, sent);
        let n = a.poll_cq(acq, &mut out);
        completed += n;
        let m = b.poll_cq(brcq, &mut out);
        received += m;
        for c in &out[..m] {
            // Re-post the consumed receives.
            b.post_recv(
                bq,
                c.wr_id,
                &[Sge {
                    addr: BASE_VA + 0x80000 + c.wr_id * 0x2000,
                    length: 0x2000,
                    lkey: bk,
                }],
            )
            .unwrap();
        }
        b.poll_cq(bcq, &mut out);
        a.arm_cq(acq, NotifyType::Any).unwrap();
        while a.poll_event().is_some() {}
        while b.poll_event().is_some() {}
    };
    // Warm-up round outside the count, then counted rounds.
    round(&mut a, &mut b, &mut now, &mut sent, 0);
    set_counting(true);
    for r in 1..40 {
        round(&mut a, &mut b, &mut now, &mut sent, r);
    }
    set_counting(false);
    let allocs = ALLOCS.load(Ordering::SeqCst);
    assert_eq!(allocs, 0, "hot path allocated {allocs} times");
    assert_eq!(completed, 40 * 4);
    assert_eq!(received, 40 * 3);
    assert!(sent > 40 * 10, "traffic too small: {sent}");
    assert_eq!(a.qp_state(aq), Some(QpState::Rts));
    // The counter itself works.
    set_counting(true);
    let boxed = std::hint::black_box(Box::new(7u64));
    set_counting(false);
    drop(boxed);
    assert!(ALLOCS.load(Ordering::SeqCst) > 0);
}
