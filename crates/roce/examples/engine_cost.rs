//! The RoCE engine's own cost per byte, free of sockets: two devices in one
//! process, one RDMA WRITing 64 KiB messages into the other's MR, every
//! datagram handed straight across (raw IP mode, so every packet's ICRC is
//! computed over real headers on send and checked on receipt, as on the
//! Windows NDIS path).
//!
//!     engine_cost engine <messages> [mtu]   # the engine pair
//!     engine_cost floor <messages> [piece]  # one memcpy + one CRC32 per byte,
//!                                           # in pieces of `piece` bytes
//!                                           # (default: the whole 64 KiB)
//!
//! The benchmark is `crates/roce/examples/engine_cost.sh`: it runs both
//! under callgrind at two message counts and reports instructions per KiB
//! of payload (the difference of the two runs, so setup cancels out) and
//! their ratio. Instruction counts repeat exactly run to run, whatever else
//! the machine is doing, which wall-clock timings on a shared machine do
//! not.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::process::ExitCode;

use roce::cm::CmConfig;
use roce::device::{Device, DeviceConfig, MAX_DATAGRAM};
use roce::framing::IpMode;
use roce::rc::{
    Access, ArenaMemory, Completion, CqHandle, EngineConfig, Memory, Path, Payload, QpAttr, QpInit,
    QpState, SendFlags, SendOp, SendWr, Sge, Translation, WcStatus,
};
use roce::time::Instant;

/// Bytes per WRITE.
const MESSAGE: usize = 64 * 1024;
/// Virtual address of each side's MR.
const VA: u64 = 0x10_0000;

struct Side {
    dev: Device<ArenaMemory>,
    qpn: u32,
    cq: CqHandle,
    key: u32,
    ip: Ipv4Addr,
}

fn side(last: u8, seed: u64) -> Result<Side, String> {
    let config = DeviceConfig {
        ip_mode: IpMode::Raw,
        udp_source_port: 4791,
        ca_guid: 0x0200_00ff_fe00_0000 | u64::from(last),
        cm: CmConfig::default(),
        rc: EngineConfig::default(),
        seed,
    }
    .with_identity(seed);
    let mut dev = Device::new(config, ArenaMemory::new(MESSAGE));
    let e = dev.rc();
    fn err(what: &'static str) -> impl Fn(roce::rc::Error) -> String {
        move |e| format!("{what}: {e:?}")
    }
    let pd = e.alloc_pd().map_err(err("alloc_pd"))?;
    let cq = e.create_cq(256).map_err(err("create_cq"))?;
    let mr = e
        .register_mr(
            pd,
            VA,
            MESSAGE as u64,
            Access::LOCAL_WRITE | Access::REMOTE_WRITE | Access::REMOTE_READ,
            Translation::Contiguous { base: 0 },
        )
        .map_err(err("register_mr"))?;
    let key = e.mr_key(mr).ok_or("mr_key")?;
    let qpn = e
        .create_qp(&QpInit {
            pd,
            send_cq: cq,
            recv_cq: cq,
            srq: None,
            sq_depth: 64,
            rq_depth: 64,
            max_send_sge: 1,
            max_recv_sge: 1,
            max_inline: 0,
        })
        .map_err(err("create_qp"))?;
    Ok(Side {
        dev,
        qpn,
        cq,
        key,
        ip: Ipv4Addr::new(10, 0, 0, last),
    })
}

/// Brings `s`'s QP to RTS facing `peer` (what the CM's REQ/REP/RTU would
/// set; the handshake itself is not what is measured).
fn bring_up(s: &mut Side, peer_qpn: u32, peer_ip: Ipv4Addr, mtu: u32) -> Result<(), String> {
    let ip = s.ip;
    let e = s.dev.rc();
    let step = |e: &mut roce::rc::Engine<ArenaMemory>, a: QpAttr| {
        e.modify_qp(s.qpn, &a)
            .map_err(|e| format!("modify_qp: {e:?}"))
    };
    step(
        e,
        QpAttr {
            state: Some(QpState::Init),
            access: Some(Access::REMOTE_WRITE | Access::REMOTE_READ),
            ..Default::default()
        },
    )?;
    step(
        e,
        QpAttr {
            state: Some(QpState::Rtr),
            path_mtu: Some(mtu),
            dest_qpn: Some(peer_qpn),
            rq_psn: Some(0),
            max_dest_rd_atomic: Some(4),
            min_rnr_timer: Some(1),
            path: Some(Path {
                local_ip: IpAddr::V4(ip),
                remote_ip: IpAddr::V4(peer_ip),
                udp_src_port: 0xC000,
                hop_limit: 64,
                traffic_class: 0,
            }),
            ..Default::default()
        },
    )?;
    step(
        e,
        QpAttr {
            state: Some(QpState::Rts),
            sq_psn: Some(0),
            timeout: Some(14),
            retry_cnt: Some(7),
            rnr_retry: Some(7),
            max_rd_atomic: Some(4),
            ..Default::default()
        },
    )
}

/// Moves every datagram `from` has to send into `to`; how many moved.
fn pump(from: &mut Side, to: &mut Side, now: Instant, buf: &mut [u8]) -> usize {
    let mut n = 0;
    while let Some(t) = from.dev.poll_transmit(now, buf) {
        to.dev.handle_ip(now, t.ip_datagram(buf));
        n += 1;
    }
    n
}

fn engine(messages: u64, mtu: u32) -> Result<(), String> {
    let mut a = side(1, 1)?;
    let mut b = side(2, 2)?;
    let (aq, bq, aip, bip) = (a.qpn, b.qpn, a.ip, b.ip);
    bring_up(&mut a, bq, bip, mtu)?;
    bring_up(&mut b, aq, aip, mtu)?;
    let pattern: Vec<u8> = (0u8..=250).cycle().take(MESSAGE).collect();
    if !a.dev.rc().memory().write(0, &pattern) {
        return Err("arena write".into());
    }
    let sge = [Sge {
        addr: VA,
        length: MESSAGE as u32,
        lkey: a.key,
    }];
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut out = [Completion::default(); 8];
    let mut now = Instant::from_nanos(1);
    for id in 0..messages {
        let wr = SendWr::new(
            id,
            SendOp::Write {
                remote_addr: VA,
                rkey: b.key,
            },
        )
        .payload(Payload::Sges(&sge))
        .flags(SendFlags::SIGNALED);
        a.dev
            .rc()
            .post_send(a.qpn, &wr)
            .map_err(|e| format!("post_send: {e:?}"))?;
        let mut done = false;
        let mut idle_rounds = 0;
        while !done {
            now += core::time::Duration::from_micros(1);
            let moved = pump(&mut a, &mut b, now, &mut buf) + pump(&mut b, &mut a, now, &mut buf);
            let n = a.dev.rc().poll_cq(a.cq, &mut out);
            for c in &out[..n] {
                if c.status != WcStatus::Success {
                    return Err(format!("WRITE {id} completed with {:?}", c.status));
                }
                done = true;
            }
            // Drain the receiver's CQ too (a WRITE without immediate
            // leaves nothing there; this keeps the loop honest if it did).
            let _ = b.dev.rc().poll_cq(b.cq, &mut out);
            idle_rounds = if moved == 0 { idle_rounds + 1 } else { 0 };
            if idle_rounds > 1000 {
                return Err(format!("WRITE {id} stalled"));
            }
        }
    }
    // The bytes really arrived.
    if b.dev.rc().memory().snapshot(0, MESSAGE) != pattern {
        return Err("the receiver's MR does not hold the message".into());
    }
    Ok(())
}

/// The floor: each message copied once and its CRC-32 computed once, with
/// the engine's CRC ([`roce::wire::crc32::update`]), in pieces of `piece`
/// bytes (a copy and a CRC per piece, as per packet; 65536 = one of each
/// per message).
fn floor(messages: u64, piece: usize) -> Result<(), String> {
    let src: Vec<u8> = (0u8..=250).cycle().take(MESSAGE).collect();
    let mut dst = vec![0u8; MESSAGE];
    let mut crc = 0u32;
    for _ in 0..messages {
        for (d, s) in dst.chunks_mut(piece).zip(black_box(&src).chunks(piece)) {
            d.copy_from_slice(s);
            crc = roce::wire::crc32::update(crc, black_box(&*d));
        }
    }
    black_box((crc, &dst));
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: engine_cost engine <messages> [mtu] | engine_cost floor <messages> [piece]";
    let messages = match args.get(1).map(|s| s.parse::<u64>()) {
        Some(Ok(n)) => n,
        _ => {
            eprintln!("{usage}");
            return ExitCode::from(2);
        }
    };
    let r = match args.first().map(String::as_str) {
        Some("engine") => match args.get(2).map(|s| s.parse::<u32>()) {
            None => engine(messages, 4096),
            Some(Ok(mtu @ (256 | 512 | 1024 | 2048 | 4096))) => engine(messages, mtu),
            Some(_) => Err("mtu must be 256, 512, 1024, 2048 or 4096".into()),
        },
        Some("floor") => match args.get(2).map(|s| s.parse::<usize>()) {
            None => floor(messages, MESSAGE),
            Some(Ok(piece @ 1..=MESSAGE)) => floor(messages, piece),
            Some(_) => Err(format!("piece must be 1..={MESSAGE} bytes")),
        },
        _ => {
            eprintln!("{usage}");
            return ExitCode::from(2);
        }
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("engine_cost: {e}");
            ExitCode::FAILURE
        }
    }
}
