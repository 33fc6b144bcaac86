//! One emulated Windows host of the two-host scenario
//! (tests/two_hosts.rs): the real shell under the NDIS host, its emulated
//! NIC's wire a UDP socket on loopback carrying Ethernet frames to the
//! other host's process, and on the shell's NDK adapter either the SMB
//! Direct server or the client of crates/interop, which moves a file of
//! 1 MiB and a bit both ways through the RDMA channel. Meanwhile TCP/IP on
//! the NIC and the IP stack of the shell's adapter send frames to the
//! other host, which must receive them.
//!
//! One process per host because the shell keeps its state in statics (one
//! driver image per kernel, as on Windows).
//!
//! Usage: ndis-host-node server|client <index 0|1> <my udp port> <peer udp port>
//! Prints `READY` once serving (server), `RESULT ok` on success; exits
//! non-zero with the reasons otherwise.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddrV4, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use interop::consumer_adapter::ExternalAdapter;
use interop::smb::{Session, SessionConfig, SessionTransport};
use interop::smb_scenario;
use interop::smb_server::{SmbServer, SmbServerConfig};
use ndis_host::machine::{self, Config};
use ndis_host::stack;
use smbd::smb2::dialect;
use smbd::smb2::msg::signing_alg;
use smbd::smb2::server::ServerConfig;
use smbd::smbd::conn::Config as SmbdConfig;

const USER: &str = "tester";
const PASSWORD: &str = "Ndis-host-123";
const LEN: usize = (1 << 20) + 12_345;
const NAME: &str = "ndis-host.bin";
const T: Duration = Duration::from_secs(30);

fn ip(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 10, 0, 1 + i as u8)
}
fn nic_ip(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 10, 0, 101 + i as u8)
}
fn nic_mac(i: usize) -> [u8; 6] {
    [0x02, 0x00, 0x5e, 0x20, 0x00, 1 + i as u8]
}

fn frame(dst: [u8; 6], src: [u8; 6], from: Ipv4Addr, to: Ipv4Addr, seq: u32) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&0x0800u16.to_be_bytes());
    let payload_len = 20 + 40;
    let mut ip = vec![0x45, 0, 0, payload_len as u8, 0, 1, 0x40, 0, 64, 6, 0, 0];
    ip.extend_from_slice(&from.octets());
    ip.extend_from_slice(&to.octets());
    let mut sum = 0u32;
    for c in ip.chunks(2) {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    ip[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&50_000u16.to_be_bytes());
    f.extend_from_slice(&445u16.to_be_bytes());
    f.extend_from_slice(&seq.to_be_bytes());
    f.extend_from_slice(&[0, 0, 0, 0, 0x50, 0x10, 0xff, 0xff, 0, 0, 0, 0]);
    f.extend_from_slice(&[0x5a; 20]);
    f
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(role), Some(me), Some(port), Some(peer_port)) = (
        args.get(1).cloned(),
        args.get(2).and_then(|a| a.parse::<usize>().ok()),
        args.get(3).and_then(|a| a.parse::<u16>().ok()),
        args.get(4).and_then(|a| a.parse::<u16>().ok()),
    ) else {
        eprintln!("usage: ndis-host-node server|client <0|1> <port> <peer port>");
        std::process::exit(2);
    };
    let peer = 1 - me.min(1);
    common::finish(run(&role, me, peer, port, peer_port).map(Some));
}

fn run(role: &str, me: usize, peer: usize, port: u16, peer_port: u16) -> Result<String, String> {
    let t0 = Instant::now();
    let cfg = Config {
        luid: 0x0006_0000_0100_0010 + me as u64,
        ip: IpAddr::V4(ip(me)),
        nic_luid: 0x0006_0000_0200_0010 + me as u64,
        nic_mac: nic_mac(me),
        nic_ip: IpAddr::V4(nic_ip(me)),
        nic_mtu: 1500,
        neighbors: vec![(IpAddr::V4(ip(peer)), nic_mac(peer))],
    };
    // The wire.
    let sock = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port))
        .map_err(|e| format!("binding the wire socket: {e}"))?;
    let tx = sock.try_clone().map_err(|e| e.to_string())?;
    let to = SocketAddrV4::new(Ipv4Addr::LOCALHOST, peer_port);
    stack::stack().wire = Some(Box::new(move |f: &[u8]| {
        let _ = tx.send_to(f, to);
    }));
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 65_536];
        let mut n = 0u64;
        while let Ok(len) = sock.recv(&mut buf) {
            n += 1;
            // Every 8th frame comes with NDIS_RECEIVE_FLAGS_RESOURCES.
            stack::wire_receive(vec![buf[..len].to_vec()], n.is_multiple_of(8));
        }
    });

    // Bring-up.
    common::bring_up(&cfg)?;
    machine::settle();
    let a = machine::open_ndk().map_err(|st| format!("OpenNDKAdapter: {st:#x}"))?;
    let ext = ExternalAdapter {
        ptr: a as usize,
        close: common::close_ndk,
    };

    // TCP/IP-like traffic both ways while SMB Direct runs.
    let stop = Arc::new(AtomicBool::new(false));
    let s2 = Arc::clone(&stop);
    let virt_mac = {
        let (_, m) = machine::query(ndis_sys::OID_802_3_CURRENT_ADDRESS);
        <[u8; 6]>::try_from(&m[..]).map_err(|_| "virtual MAC")?
    };
    let traffic = std::thread::spawn(move || {
        let mut seq = 0;
        while !s2.load(Ordering::SeqCst) {
            seq += 1;
            stack::phys_send(&[frame(
                nic_mac(peer),
                nic_mac(me),
                nic_ip(me),
                nic_ip(peer),
                seq,
            )]);
            stack::virt_send(&[frame(nic_mac(peer), virt_mac, ip(me), ip(peer), seq)], 0);
            std::thread::sleep(Duration::from_millis(10));
        }
        seq
    });

    let mut report = String::new();
    if role == "server" {
        let server = SmbServer::start(SmbServerConfig {
            local: ip(me),
            port: 445,
            seed: 0x5eed_0100,
            mtu: 4096,
            timeout: T,
            smb2: ServerConfig {
                user: USER.into(),
                password: PASSWORD.into(),
                signing_algorithm: signing_alg::AES_GMAC,
                tree_path: format!("\\\\{}\\share", ip(me)),
                max_io: 1 << 20,
                ..ServerConfig::default()
            },
            smbd: SmbdConfig::default(),
            pcap: None,
            adapter: Some(ext),
            token_xor: 0,
        })?;
        println!("READY");
        let reports = server.wait_connections(1, 2 * T)?;
        let files = server.files();
        let data: Vec<u8> = (0..LEN).map(smb_scenario::file_byte).collect();
        if files.get(NAME).map(Vec::as_slice) != Some(&data[..]) {
            return Err(format!(
                "the server does not hold the {LEN}-byte file as written"
            ));
        }
        let summary = server.stop()?;
        let r = &reports[0];
        if r.posted != r.completed
            || r.unknown_completions != 0
            || !summary.bad_completions.is_empty()
        {
            return Err(format!(
                "server accounting: {r:?} {:?}",
                summary.bad_completions
            ));
        }
        report += &format!(
            "server: {} NdkRead(s) and {} NdkWrite(s) for the file; ",
            r.reads.len(),
            r.writes.len()
        );
    } else {
        let mut s = Session::connect(SessionConfig {
            local: ip(me),
            transport: SessionTransport::External(ext),
            server: SocketAddrV4::new(ip(peer), 445),
            share: "share".into(),
            user: USER.into(),
            password: PASSWORD.into(),
            seed: 0x5eed_0101,
            mtu: 1024,
            pcap: None,
            timeout: T,
            dialects: vec![dialect::SMB300, dialect::SMB302, dialect::SMB311],
            smbd: SmbdConfig::default(),
        })?;
        let (max_read, max_write, max_rw) = s.limits();
        let chunk = (max_read.min(max_write).min(max_rw) as usize).min(LEN);
        let data: Vec<u8> = (0..LEN).map(smb_scenario::file_byte).collect();
        let trip = smb_scenario::rdma_round_trip(&mut s, NAME, &data, chunk)?;
        report += &format!(
            "client: {LEN} bytes written in {} RDMA-channel WRITE(s) in {:.2} s and read back \
             byte-exact in {} READ(s) in {:.2} s; ",
            trip.writes,
            trip.write_time.as_secs_f64(),
            trip.reads,
            trip.read_time.as_secs_f64()
        );
        s.ndk_disconnect()?;
        s.close()?;
    }

    stop.store(true, Ordering::SeqCst);
    let sent = traffic.join().map_err(|_| "traffic thread")?;
    machine::settle();
    let seen = stack::stack().seen.clone();
    if seen.phys_completed != seen.phys_sent || seen.virt_completed != seen.virt_sent {
        return Err(format!(
            "TCP/IP sends completed {}/{} on the NIC, {}/{} on the shell's adapter",
            seen.phys_completed, seen.phys_sent, seen.virt_completed, seen.virt_sent
        ));
    }
    let phys_in = seen
        .phys_rx
        .iter()
        .filter(|f| f[30..34] == nic_ip(me).octets())
        .count();
    let virt_in = seen
        .virt_rx
        .iter()
        .filter(|f| f[30..34] == ip(me).octets())
        .count();
    if phys_in == 0 || virt_in == 0 {
        return Err(format!(
            "TCP/IP frames from the peer: {phys_in} reached the NIC's stack, {virt_in} the \
             shell's adapter (want some of each)"
        ));
    }
    report += &format!(
        "TCP/IP: sent {sent} frames on each stack, all completed; received {phys_in} on the \
         NIC's stack and {virt_in} on the shell's adapter; {} frames on the wire; ",
        seen.wire_tx.len()
    );

    // Teardown.
    for a in stack::open_ndk() {
        machine::close_ndk(a);
    }
    common::tear_down()?;
    report += &format!(
        "{role} host up to unload in {:.2} s",
        t0.elapsed().as_secs_f64()
    );
    Ok(report)
}
