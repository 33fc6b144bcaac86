//! Captures of real loopback runs re-parse frame by frame with the
//! receiver's full checks (IP and UDP headers, ICRC) and, where tshark is
//! installed, decode as RoCE with no malformed packet.

mod support;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use host::endpoint::Routing;
use host::io::{self, RawTransport, Transport, UdpTransport};
use pcap_file::pcap::PcapReader;
use roce::framing::IpMode;
use roce::wire::frame::FrameRepr;
use support::{connect_and_disconnect, node};

fn temp(name: &str) -> PathBuf {
    std::env::var_os("NDKRS_KEEP_PCAP")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
        .join(format!("ndkrs-host-{name}.pcap"))
}

/// Every frame parses with the receiver's checks, ICRC included; frames to
/// port 4791 with `FrameRepr` (the full RoCEv2 frame parser), frames of a
/// two-port loopback pair by their headers and `open_udp` (the ICRC over
/// the canonical header the capture carries). Returns the frame count.
fn check_pcap(path: &Path) -> usize {
    let file = std::fs::File::open(path).expect("open the pcap");
    let mut reader = PcapReader::new(file).expect("a pcap header");
    let mut n = 0;
    while let Some(pkt) = reader.next_packet() {
        let pkt = pkt.expect("a pcap record");
        let (src, dst, payload) = headers(&pkt.data);
        if dst.port() == 4791 {
            let frame = FrameRepr::parse(&pkt.data)
                .unwrap_or_else(|e| panic!("frame {n} does not parse: {e:?}"));
            assert_eq!(frame.datagram.udp.src_port, src.port());
        } else {
            let o = roce::framing::open_udp(src, dst, payload)
                .unwrap_or_else(|e| panic!("frame {n}: {e:?}"));
            let view = roce::wire::packet::Packet::new_unchecked(o.packet);
            roce::wire::packet::PacketRepr::parse(&view)
                .unwrap_or_else(|e| panic!("frame {n} transport: {e:?}"));
        }
        n += 1;
    }
    n
}

/// Addresses, ports and UDP payload of an Ethernet/IP/UDP frame.
fn headers(f: &[u8]) -> (SocketAddr, SocketAddr, &[u8]) {
    let ip = &f[14..];
    let (s, d, udp): (IpAddr, IpAddr, &[u8]) = match ip[0] >> 4 {
        4 => (
            <[u8; 4]>::try_from(&ip[12..16]).unwrap().into(),
            <[u8; 4]>::try_from(&ip[16..20]).unwrap().into(),
            &ip[20..],
        ),
        6 => (
            <[u8; 16]>::try_from(&ip[8..24]).unwrap().into(),
            <[u8; 16]>::try_from(&ip[24..40]).unwrap().into(),
            &ip[40..],
        ),
        v => panic!("IP version {v}"),
    };
    let port = |i: usize| u16::from_be_bytes([udp[i], udp[i + 1]]);
    let len = usize::from(port(4));
    (
        SocketAddr::new(s, port(0)),
        SocketAddr::new(d, port(2)),
        &udp[8..len],
    )
}

/// If tshark is installed: it decodes every frame as InfiniBand (RoCEv2)
/// and flags none as malformed.
fn check_with_tshark(path: &Path, frames: usize, ports: &[u16]) {
    let mut cmd = std::process::Command::new("tshark");
    for p in ports.iter().filter(|p| **p != 4791) {
        cmd.arg("-d").arg(format!("udp.port=={p},infiniband"));
    }
    let out = match cmd
        .arg("-r")
        .arg(path)
        .args([
            "-T",
            "fields",
            "-e",
            "frame.number",
            "-e",
            "infiniband.bth.opcode",
            "-e",
            "_ws.malformed",
        ])
        .output()
    {
        Ok(o) if o.status.success() => o,
        _ => {
            eprintln!("SKIPPED: tshark check (tshark not installed)");
            return;
        }
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), frames, "{text}");
    for l in lines {
        let f: Vec<&str> = l.split('\t').collect();
        assert!(f.len() >= 2 && !f[1].is_empty(), "not decoded as RoCE: {l}");
        assert!(f.get(2).is_none_or(|m| m.is_empty()), "malformed: {l}");
    }
}

/// A CM connect and disconnect between `a` and `b` in UDP mode, captured
/// at `a`.
fn udp_capture(a: SocketAddr, b: SocketAddr, name: &str) {
    let ta = match UdpTransport::bind(a) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("SKIPPED: {e}");
            return;
        }
    };
    let tb = UdpTransport::bind(b).unwrap();
    let (pa, pb) = (ta.local_addr().port(), tb.local_addr().port());
    let (ra, rb) = if a.ip() == b.ip() {
        (Routing::peer_on(pb), Routing::peer_on(pa))
    } else {
        (Routing::default(), Routing::default())
    };
    let path = temp(name);
    let mut a = node(Box::new(ta), IpMode::Udp, ra, 1, Some(&path));
    let mut b = node(Box::new(tb), IpMode::Udp, rb, 2, None);
    connect_and_disconnect(&mut a, &mut b);
    let stats = a.stop();
    b.stop();
    // REQ, REP, RTU, DREQ, DREP as A saw them.
    assert!(stats.pcap_frames >= 5, "{stats:?}");
    let n = check_pcap(&path);
    assert_eq!(n as u64, stats.pcap_frames);
    check_with_tshark(&path, n, &[pa, pb]);
    if std::env::var_os("NDKRS_KEEP_PCAP").is_none() {
        let _ = std::fs::remove_file(&path);
    }
}

#[test]
fn udp_mode_capture_on_port_4791_reparses_as_roce_frames() {
    // Two loopback addresses, both on the RoCE port.
    udp_capture(
        "127.0.0.7:4791".parse().unwrap(),
        "127.0.0.8:4791".parse().unwrap(),
        "udp-v4",
    );
}

#[test]
fn udp_mode_capture_ipv6_two_ports_reparses_with_valid_icrcs() {
    if UdpTransport::bind("[::1]:0".parse().unwrap()).is_err() {
        eprintln!("SKIPPED: no IPv6 loopback on this host");
        return;
    }
    // One address, two ports.
    udp_capture(
        "[::1]:0".parse().unwrap(),
        "[::1]:0".parse().unwrap(),
        "udp-v6",
    );
}

#[test]
fn raw_mode_capture_reparses_with_valid_icrcs() {
    if !io::has_cap_net_raw() {
        eprintln!("SKIPPED: raw IP mode needs CAP_NET_RAW (run as root)");
        return;
    }
    let ta = match RawTransport::bind("127.0.0.5:4791".parse().unwrap()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("SKIPPED: {e}");
            return;
        }
    };
    let tb = RawTransport::bind("127.0.0.6:4791".parse().unwrap()).unwrap();
    let path = temp("raw");
    let mut a = node(
        Box::new(ta),
        IpMode::Raw,
        Routing::default(),
        1,
        Some(&path),
    );
    let mut b = node(Box::new(tb), IpMode::Raw, Routing::default(), 2, None);
    connect_and_disconnect(&mut a, &mut b);
    let stats = a.stop();
    b.stop();
    assert!(stats.pcap_frames >= 5, "{stats:?}");
    let n = check_pcap(&path);
    assert_eq!(n as u64, stats.pcap_frames);
    check_with_tshark(&path, n, &[]);
    if std::env::var_os("NDKRS_KEEP_PCAP").is_none() {
        let _ = std::fs::remove_file(&path);
    }
}
