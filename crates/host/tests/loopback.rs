//! Two RoCE devices on real loopback sockets, each driven by its own event
//! loop, complete an IB CM connect and a graceful disconnect (REQ, REP,
//! RTU, DREQ, DREP), over UDP (IPv4 and IPv6, two ports on one address)
//! and over raw IP sockets (needs CAP_NET_RAW; skipped without it).

mod support;

use std::net::SocketAddr;

use host::endpoint::Routing;
use host::io::{self, RawTransport, UdpTransport};
use roce::device::DropCounters;
use roce::framing::IpMode;
use support::{connect_and_disconnect, node};

fn udp_pair(ip: &str) {
    let any = |ip: &str| -> SocketAddr { SocketAddr::new(ip.parse().unwrap(), 0) };
    let ta = UdpTransport::bind(any(ip)).expect("bind a");
    let tb = UdpTransport::bind(any(ip)).expect("bind b");
    let (pa, pb) = (ta.local_addr().port(), tb.local_addr().port());
    use host::io::Transport as _;
    let mut a = node(Box::new(ta), IpMode::Udp, Routing::peer_on(pb), 1, None);
    let mut b = node(Box::new(tb), IpMode::Udp, Routing::peer_on(pa), 2, None);
    connect_and_disconnect(&mut a, &mut b);
    // Every datagram passed its ICRC and parsed.
    assert_eq!(a.drops(), DropCounters::default());
    assert_eq!(b.drops(), DropCounters::default());
    let (sa, sb) = (a.stop(), b.stop());
    assert!(sa.sent >= 3 && sa.received >= 2, "{sa:?}");
    assert!(sb.sent >= 2 && sb.received >= 3, "{sb:?}");
    assert_eq!(sa.send_dropped + sb.send_dropped, 0);
}

#[test]
fn cm_connect_and_disconnect_over_udp_ipv4() {
    udp_pair("127.0.0.1");
}

#[test]
fn cm_connect_and_disconnect_over_udp_ipv6() {
    if UdpTransport::bind("[::1]:0".parse().unwrap()).is_err() {
        eprintln!("SKIPPED: no IPv6 loopback on this host");
        return;
    }
    udp_pair("::1");
}

#[test]
fn cm_connect_and_disconnect_over_raw_ip() {
    if !io::has_cap_net_raw() {
        eprintln!("SKIPPED: raw IP mode needs CAP_NET_RAW (run as root)");
        return;
    }
    // Raw mode: exact ICRCs, both sides on port 4791, so two loopback
    // addresses.
    let ta = match RawTransport::bind("127.0.0.2:4791".parse().unwrap()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("SKIPPED: {e}");
            return;
        }
    };
    let tb = RawTransport::bind("127.0.0.3:4791".parse().unwrap()).expect("bind b");
    let mut a = node(Box::new(ta), IpMode::Raw, Routing::default(), 1, None);
    let mut b = node(Box::new(tb), IpMode::Raw, Routing::default(), 2, None);
    connect_and_disconnect(&mut a, &mut b);
    assert_eq!(a.drops(), DropCounters::default());
    assert_eq!(b.drops(), DropCounters::default());
    a.stop();
    b.stop();
}

#[test]
fn raw_mode_without_privilege_or_on_a_taken_port_is_a_clear_error() {
    // The port check does not need privilege: a UDP socket holds it.
    let holder = UdpTransport::bind("127.0.0.4:0".parse().unwrap()).unwrap();
    use host::io::Transport as _;
    match RawTransport::bind(holder.local_addr()) {
        Err(io::Error::PortInUse { .. }) | Err(io::Error::NeedsCapNetRaw) => {}
        other => panic!("expected PortInUse or NeedsCapNetRaw, got {other:?}"),
    }
}
