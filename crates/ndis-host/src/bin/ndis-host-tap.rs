//! One emulated Windows host on a real network: the real shell under the
//! NDIS host, its emulated NIC's wire a Linux TAP device
//! (ndis_host::tap), its TCP/IP stacks answering and sending ARP
//! (ndis_host::arp), and on the shell's NDK adapter, through the NDK
//! dispatch tables, one role against the Linux rxe VM of the interop
//! harness (crates/ndis-host/tests/tap_interop.rs runs it):
//!
//! * `rping-client <server ip> <port> <count> <size>`: ndkperf's rping
//!   mode (host::perf, as `ndkperf --mode rping`) against `rping -s -V`;
//! * `rping-server <port> <count>`: ndkperf's server (host::perf::Server)
//!   answering `rping -c -V`, until the client verified `count` pings and
//!   disconnected;
//! * `smb-client <server ip> <user> <password> <name> <len>`: the SMB
//!   Direct client of crates/interop against ksmbd: a file of `len`
//!   bytes written with RDMA-channel WRITEs and read back with READs over
//!   regular MRs as `<name>`, then with fast-register MRs and remote
//!   invalidation as `<name>.frmr` (content: each byte XOR 0xA5).
//!
//! Usage: ndis-host-tap <tap> <adapter ip> <nic ip> <nic mac> <role> <args...>
//! Prints `READY` once a server listens, `REPORT <text>` lines, and
//! `RESULT ok` after a clean teardown (no leak, every NBL back, no NDIS
//! contract breach); exits non-zero otherwise. It dies with its parent
//! (PR_SET_PDEATHSIG), so a killed test leaves no host behind.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use host::adapter::Adapter;
use host::perf::{self, Keep, Mode, Params};
use interop::consumer_adapter::ExternalAdapter;
use interop::smb::{Session, SessionConfig, SessionTransport};
use interop::smb_scenario;
use ndis_host::machine::{self, Config};
use ndis_host::tap::Tap;
use ndis_host::{NET_EVENT_NDK_ENABLE, stack};
use smbd::smb2::dialect;
use smbd::smbd::conn::Config as SmbdConfig;

const T: Duration = Duration::from_secs(60);
/// The RoCE path MTU a 1500-byte Ethernet link gives (crates/ndis-host/tests/path_mtu.rs).
const PATH_MTU: u32 = 1024;

fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let v: Vec<u8> = s
        .split(':')
        .map(|b| u8::from_str_radix(b, 16))
        .collect::<Result<_, _>>()
        .ok()?;
    v.try_into().ok()
}

fn arg<T: std::str::FromStr>(a: &[String], i: usize, what: &str) -> Result<T, String> {
    a.get(i)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("argument {i}: {what}"))
}

fn main() {
    // SAFETY: prctl with an integer argument; the host dies with the
    // thread that spawned it.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
    let a: Vec<String> = std::env::args().collect();
    common::finish(run(&a).map(|()| None));
}

fn run(a: &[String]) -> Result<(), String> {
    let t0 = Instant::now();
    let tap_name = a
        .get(1)
        .ok_or("usage: ndis-host-tap <tap> <ip> <nic ip> <nic mac> <role> ...")?;
    let ip: Ipv4Addr = arg(a, 2, "adapter ip")?;
    let nic_ip: Ipv4Addr = arg(a, 3, "nic ip")?;
    let nic_mac = a
        .get(4)
        .and_then(|m| parse_mac(m))
        .ok_or("argument 4: nic mac")?;
    let role = a.get(5).ok_or("argument 5: role")?.clone();
    let cfg = Config {
        luid: 0x0006_0000_0100_0020,
        ip: IpAddr::V4(ip),
        nic_luid: 0x0006_0000_0200_0020,
        nic_mac,
        nic_ip: IpAddr::V4(nic_ip),
        nic_mtu: 1500,
        // Nothing configured: ARP finds the peer.
        neighbors: Vec::new(),
    };
    let counts = Tap::open(tap_name)?.attach()?;

    // Bring-up, as NDIS does it.
    common::bring_up(&cfg)?;
    if !stack::wait_until(machine::BOUND, |s| s.seen.pnp == [NET_EVENT_NDK_ENABLE]) {
        return Err("no NetEventNDKEnable after the filter attached".into());
    }
    let nd = machine::open_ndk().map_err(|st| format!("OpenNDKAdapter: {st:#x}"))?;
    println!(
        "REPORT host up on {tap_name} ({ip}, NIC {nic_ip}) in {:.2} s",
        t0.elapsed().as_secs_f64()
    );

    let local = SocketAddr::new(IpAddr::V4(ip), 0);
    // The shell's provider reads wdm.h MDLs.
    perf::use_kernel_mdls();
    match role.as_str() {
        "rping-client" => {
            let server: Ipv4Addr = arg(a, 6, "server ip")?;
            let port: u16 = arg(a, 7, "port")?;
            let count: u64 = arg(a, 8, "count")?;
            let size: usize = arg(a, 9, "size")?;
            // SAFETY: the shell's adapter, open until close_ndk below.
            let adapter = unsafe { Adapter::borrowed(nd, local, PATH_MTU) };
            let mut keep = Keep::default();
            let r = perf::run(
                &adapter,
                SocketAddr::new(IpAddr::V4(server), port),
                &Params {
                    mode: Mode::Rping,
                    size,
                    iters: Some(count),
                    duration: T,
                    window: 1,
                    slots: 1,
                    qps: 1,
                    timeout: T,
                },
                &mut keep,
            );
            drop(adapter);
            machine::close_ndk(nd);
            drop(keep);
            let r = r.map_err(|e| format!("ndkperf rping: {e}"))?;
            if r.messages != count || r.verify_errors != 0 || r.leaked_objects != 0 {
                return Err(format!(
                    "ndkperf rping: {} iterations, {} not verified, {} objects left",
                    r.messages, r.verify_errors, r.leaked_objects
                ));
            }
            println!(
                "REPORT ndkperf rping client: {count} x {size} B verified, round trip p50 {:.0} us, disconnect {:.1} ms",
                r.lat.pct(0.5).as_secs_f64() * 1e6,
                r.disconnect.as_secs_f64() * 1e3
            );
        }
        "rping-server" => {
            let port: u16 = arg(a, 6, "port")?;
            let count: u64 = arg(a, 7, "count")?;
            // SAFETY: as above.
            let adapter = unsafe { Adapter::borrowed(nd, local, PATH_MTU) };
            let server =
                perf::Server::start(&adapter, SocketAddr::new(IpAddr::V4(ip), port), false)
                    .map_err(|e| format!("ndkperf server: {e}"))?;
            println!("READY");
            let start = Instant::now();
            while start.elapsed() < 2 * T {
                let s = server.stats();
                if s.accepted > 0 && s.live == 0 {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let s = server.stats();
            let mut keep = Keep::default();
            server.stop(&mut keep);
            drop(adapter);
            machine::close_ndk(nd);
            drop(keep);
            if s.accepted != 1
                || s.rejected != 0
                || s.live != 0
                || s.rping_iterations != count
                || s.rping_errors != 0
            {
                return Err(format!("ndkperf server: {s:?}"));
            }
            println!(
                "REPORT ndkperf server: {count} rping iterations served (RDMA Read + Write), the client disconnected"
            );
        }
        "smb-client" => {
            let server: Ipv4Addr = arg(a, 6, "server ip")?;
            let user = a.get(7).ok_or("argument 7: user")?.clone();
            let password = a.get(8).ok_or("argument 8: password")?.clone();
            let name = a.get(9).ok_or("argument 9: name")?.clone();
            let len: usize = arg(a, 10, "len")?;
            let ext = ExternalAdapter {
                ptr: nd as usize,
                close: common::close_ndk,
            };
            let mut s = Session::connect(SessionConfig {
                local: ip,
                transport: SessionTransport::External(ext),
                server: SocketAddrV4::new(server, 445),
                share: "share".into(),
                user,
                password,
                seed: 0x5eed_0300,
                mtu: PATH_MTU,
                pcap: None,
                timeout: T,
                dialects: vec![dialect::SMB300, dialect::SMB302, dialect::SMB311],
                smbd: SmbdConfig::default(),
            })?;
            println!("REPORT connected: {}", s.ready_text());
            let (max_read, max_write, max_rw) = s.limits();
            let chunk = (max_read.min(max_write).min(max_rw) as usize).min(len);
            let data: Vec<u8> = (0..len).map(smb_scenario::file_byte).collect();
            let trip = smb_scenario::rdma_round_trip(&mut s, &name, &data, chunk)?;
            println!(
                "REPORT {len} bytes written in {} RDMA-channel WRITE(s) in {:.2} s and read back byte-exact in {} READ(s) in {:.2} s",
                trip.writes,
                trip.write_time.as_secs_f64(),
                trip.reads,
                trip.read_time.as_secs_f64()
            );
            let data2: Vec<u8> = data.iter().map(|b| b ^ 0xA5).collect();
            let fast = smb_scenario::fast_register_round_trip(
                &mut s,
                &format!("{name}.frmr"),
                &data2,
                len,
            )?;
            println!(
                "REPORT fast-register MRs with remote invalidation: {len} bytes written and read back byte-exact in {:.2} s; ksmbd invalidated {:x?}",
                fast.took.as_secs_f64(),
                s.invalidated()
            );
            s.ndk_disconnect()?;
            s.close()?;
        }
        other => return Err(format!("unknown role {other}")),
    }

    // Teardown, as NDIS does it.
    for ad in stack::open_ndk() {
        machine::close_ndk(ad);
    }
    machine::settle();
    let seen = stack::stack().seen.clone();
    common::tear_down()?;
    println!(
        "REPORT tap {tap_name}: {} frames in, {} out ({} write errors); ARP: {} request(s) sent, {} reply(ies) sent; host up to unload in {:.2} s",
        counts.rx.load(Ordering::Relaxed),
        counts.tx.load(Ordering::Relaxed),
        counts.tx_errors.load(Ordering::Relaxed),
        seen.arp_requests,
        seen.arp_replies,
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}
