//! Goodput of RDMA WRITE 64 KiB under random loss, on the engine pair over
//! the simulated network (netsim): virtual time, so the figures repeat
//! exactly run to run whatever the machine is doing.
//!
//!     cargo run --release -p roce --example loss_goodput [-- --quick]
//!
//! Each row: two engines connected as CM would connect them (ACK timeout
//! code 19, what CM negotiates with rxe's defaults: about 2.1 s; retry
//! count 7), a link of 10 Gbit/s each way with 10 us one-way delay
//! (netsim's serialization model), one QP keeping 8 WRITEs of 64 KiB in
//! flight until 64 MiB have completed, with 0, 0.1% or 1% of datagrams
//! lost at random in both directions. Goodput is completed payload bytes
//! over virtual time; each lossy figure is the mean over seeds, with its
//! ratio to the lossless run. Targets (issue 18): 0.1% loss >= 0.7x of
//! lossless, 1% >= 0.3x.

#[path = "../tests/support/rc.rs"]
mod rc;

use std::time::Duration;

use netsim::{Config, LinkConfig};
use rc::*;
use roce::rc::*;

const MSG: usize = 64 << 10;
const DEPTH: usize = 8;
const RATE: u64 = 10_000_000_000;
const ONE_WAY: Duration = Duration::from_micros(10);

struct Row {
    secs: f64,
    sent: u64,
    timeouts: u64,
}

fn run(mtu: u32, loss: f64, seed: u64, total: usize) -> Row {
    let conn = Conn {
        mtu,
        timeout: 19,
        ..Conn::default()
    };
    let link = LinkConfig::default().delay(ONE_WAY).rate(RATE).loss(loss);
    let mut config = Config::new(seed).with_link(link);
    config.record_trace = false;
    config.max_steps_per_run = u64::MAX;
    let shape = Shape {
        arena: 2 * DEPTH * MSG,
        ..Shape::default()
    };
    let (mut sim, a, b) = sim_pair(config, shape, &conn);
    let rkey = sim.node(b).key;
    let mut posted = 0usize;
    let post = |sim: &mut netsim::Simulator<Host>, i: usize| {
        let slot = i % DEPTH;
        let h = sim.node(a);
        let sges = [h.sge(slot * MSG, MSG)];
        let remote = sim.node(b).va(DEPTH * MSG + slot * MSG);
        sim.node_mut(a).post(
            SendWr::new(
                i as u64,
                SendOp::Write {
                    remote_addr: remote,
                    rkey,
                },
            )
            .payload(Payload::Sges(&sges))
            .flags(SendFlags::SIGNALED),
        );
    };
    while posted < DEPTH.min(total) {
        post(&mut sim, posted);
        posted += 1;
    }
    let mut done = 0usize;
    while done < total {
        let ok = sim.run_until_condition(|s| !s.node(a).send_done.is_empty());
        assert!(ok, "went idle after {done} of {total} WRITEs");
        let h = sim.node_mut(a);
        for c in h.send_done.drain(..) {
            assert_eq!(c.status, WcStatus::Success, "{c:?}");
            done += 1;
        }
        while posted < total && posted < done + DEPTH {
            post(&mut sim, posted);
            posted += 1;
        }
    }
    let s = sim.stats();
    Row {
        secs: sim.now().as_nanos() as f64 / 1e9,
        sent: s.sent,
        timeouts: s.timers,
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let total = if quick { 256 } else { 1024 };
    let seeds: u64 = if quick { 2 } else { 5 };
    let bytes = (total * MSG) as f64;
    println!(
        "WRITE 64 KiB x {total}, depth {DEPTH}, {} Gbit/s, {} us one way, ACK timeout code 19",
        RATE / 1_000_000_000,
        ONE_WAY.as_micros()
    );
    println!(
        "{:>5} {:>6} {:>12} {:>8} {:>10} {:>9}",
        "mtu", "loss", "Gbit/s", "ratio", "datagrams", "timers"
    );
    for mtu in [1024u32, 4096] {
        let mut base = 0.0;
        for loss in [0.0, 0.001, 0.01] {
            let n = if loss == 0.0 { 1 } else { seeds };
            let (mut gbps, mut sent, mut timers) = (0.0, 0u64, 0u64);
            for seed in 0..n {
                let r = run(mtu, loss, seed + 1, total);
                gbps += bytes * 8.0 / r.secs / 1e9;
                sent += r.sent;
                timers += r.timeouts;
            }
            gbps /= n as f64;
            if loss == 0.0 {
                base = gbps;
            }
            println!(
                "{mtu:>5} {:>5.1}% {gbps:>12.3} {:>7.3}x {:>10} {:>9}",
                loss * 100.0,
                gbps / base,
                sent / n,
                timers / n
            );
        }
    }
}
