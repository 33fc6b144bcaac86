//! The link under the adapter, for real: in a network namespace of its own
//! (root), the loopback link's MTU decides the path MTU, and a link whose
//! MTU falls below a live connection's path MTU fails that connection's
//! requests with an error status at once, instead of dropping its packets
//! in silence while the transport retries them.
//!
//! Needs root and `ip netns`; skips with the reason otherwise, and fails
//! instead of skipping where `NDKRS_REQUIRE_NETNS=1` (CI).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use host::adapter::{Adapter, AdapterConfig, quick_cm};
use host::io::UdpTransport;
use host::perf::{self, Keep, Mode, Params, Server};

#[path = "support/netns.rs"]
mod netns;

use netns::Netns;

/// A namespace, or why this test cannot have one (a failure where CI
/// requires it).
fn netns(tag: &str) -> Option<Netns> {
    if !netns::available("the link MTU test") {
        return None;
    }
    match Netns::create(tag) {
        Ok(ns) => Some(ns),
        Err(why) => {
            netns::skip("the link MTU test", &why);
            None
        }
    }
}

fn adapter(ip: Ipv4Addr, port: u16, seed: u64) -> Adapter {
    let t = UdpTransport::bind(SocketAddr::new(IpAddr::V4(ip), port)).expect("bind");
    Adapter::open(
        Box::new(t),
        &AdapterConfig {
            seed: host::adapter::Seed::Fixed(seed),
            cm: quick_cm(),
            ..AdapterConfig::default()
        },
        None,
    )
    .expect("open the adapter")
}

#[test]
fn the_links_mtu_sets_the_path_mtu_and_a_lowered_one_fails_the_run_at_once() {
    let Some(ns) = netns("mtu") else { return };
    ns.set_lo_mtu(9000).expect("lo mtu 9000");
    ns.enter().expect("entering the namespace");
    let server_ip = Ipv4Addr::new(127, 0, 0, 2);
    let sa = adapter(server_ip, 47911, 2);
    let ca = adapter(Ipv4Addr::LOCALHOST, 47911, 1);
    // A 9000-byte link carries path MTU 4096.
    assert_eq!((sa.path_mtu(), ca.path_mtu()), (4096, 4096));
    let peer = SocketAddr::new(IpAddr::V4(server_ip), 18515);
    let server = Server::start(&sa, peer, false).expect("server");
    let mut keep = Keep::default();
    // A write_bw run of 4 KiB messages; 300 ms in, the link's MTU drops to
    // 1500 under it.
    let lowered = std::thread::scope(|sc| {
        let t = sc.spawn(|| {
            std::thread::sleep(Duration::from_millis(300));
            ns.set_lo_mtu(1500).map(|()| Instant::now())
        });
        let r = perf::run(
            &ca,
            peer,
            &Params {
                mode: Mode::WriteBw,
                size: 4096,
                iters: None,
                duration: Duration::from_secs(10),
                window: 8,
                slots: 1,
                qps: 1,
                timeout: Duration::from_secs(5),
            },
            &mut keep,
        );
        let ended = Instant::now();
        let at = t.join().expect("the MTU thread").expect("lo mtu 1500");
        (r, ended.saturating_duration_since(at))
    });
    let (r, after) = lowered;
    let e = r.expect_err("the run cannot go on at path MTU 4096 over a 1500-byte link");
    assert!(
        e.0.contains("STATUS_DATA_OVERRUN"),
        "the refused Write completes with a local length error: {e}"
    );
    assert!(
        after < Duration::from_secs(1),
        "the run ended {after:?} after the MTU fell, not on a retry timeout: {e}"
    );
    println!("run ended {after:?} after the MTU fell: {e}");
    server.stop(&mut keep);
    // SAFETY: the runs closed their objects; what a late callback may still
    // reach is in `keep`, dropped after the adapters.
    let _ = unsafe { ca.close() };
    let _ = unsafe { sa.close() };
    drop(keep);
    // A new adapter on the 1500-byte link takes path MTU 1024.
    let again = adapter(Ipv4Addr::LOCALHOST, 47912, 3);
    assert_eq!(again.path_mtu(), 1024);
    let _ = unsafe { again.close() };
}
