//! The software RoCEv2 NIC as one sans-IO object: the RC engine, the
//! connection manager on QP1, and the IP/UDP framing around both.
//!
//! The shell feeds it received datagrams and the time and takes out
//! datagrams to send, the next deadline and events; everything between a
//! datagram and a completion (ICRC, QP1 MADs, RC transport, CM) happens
//! here. Consumers of the NIC (the NDK provider) reach the engine and the
//! CM through [`Device::rc`] and [`Device::cm`].

use alloc::collections::VecDeque;
use core::net::{IpAddr, SocketAddr};

use crate::cm::{CmConfig, CmEvent, CmManager};
use crate::framing::{self, HEADROOM, IpMode, Unchecked};
use crate::rc::{Engine, EngineConfig, Event as RcEvent, Memory, RxInfo};
use crate::time::Instant;
use crate::wire::bth::{self, BthRepr, GSI_QPN};
use crate::wire::deth::{DethRepr, GSI_QKEY};
use crate::wire::frame::IpRepr;
use crate::wire::opcode::Opcode;
use crate::wire::packet::{self, PacketRepr, qp_default_udp_sport};
use crate::wire::udp::{self, ROCE_PORT};

/// Configuration of a device.
#[derive(Debug, Clone)]
pub struct DeviceConfig {
    /// How the shell moves datagrams.
    pub ip_mode: IpMode,
    /// In [`IpMode::Udp`], the UDP port of the shell's socket: every packet
    /// is sent from it (its ICRC covers it) and to the same port of the
    /// peer, so several ndkrs endpoints can share one host on a port other
    /// than 4791 (each on its own address, e.g. 127.0.0.1 and 127.0.0.2).
    /// Ignored in raw mode, where each QP sends from its flow-label port and
    /// to 4791 as rxe does.
    pub udp_source_port: u16,
    /// The CA GUID (the EUI-64 of the MAC, as rxe uses).
    pub ca_guid: u64,
    /// CM timing and retries.
    pub cm: CmConfig,
    /// RC engine limits.
    pub rc: EngineConfig,
    /// Decides every random value (comm IDs, PSNs, keys).
    pub seed: u64,
}

impl DeviceConfig {
    /// This configuration with the device's identity on the wire drawn from
    /// `entropy`: the low 24 bits of the CA GUID (the prefix, e.g. an OUI and
    /// FFFE, is kept), the key seed, the first QPN epoch and the seed of comm
    /// IDs, transaction IDs and starting PSNs. Shells pass real entropy, so
    /// a restarted node never looks like its dead predecessor (a REQ from the
    /// same CA GUID and QPN would be taken for a stale duplicate; IBA Vol 1
    /// chapter 12 stale-connection handling, Linux cm.c
    /// cm_insert_remote_qpn); tests and simulations pass a fixed value.
    pub fn with_identity(mut self, entropy: u64) -> Self {
        let mut rng = crate::rng::SeededRng::new(entropy);
        self.ca_guid = (self.ca_guid & !0xFF_FFFF) | u64::from(rng.next_u24());
        self.rc.key_seed = rng.next_u32();
        self.rc.qpn_epoch = rng.next_u32();
        self.seed = rng.next_u64();
        self
    }
}

/// Something the NIC reports to its consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceEvent {
    /// From the RC engine (CQ notifications, SRQ limits, QP failures, ...).
    Rc(RcEvent),
    /// From the connection manager.
    Cm(CmEvent),
}

/// A datagram ready to send, in the buffer given to
/// [`Device::poll_transmit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit {
    /// Source IP and UDP port.
    pub src: SocketAddr,
    /// Destination IP and UDP port.
    pub dst: SocketAddr,
    /// Where the datagram is in the buffer.
    pub sealed: framing::Sealed,
}

impl Transmit {
    /// The bytes a raw-IP shell sends.
    pub fn ip_datagram<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        buf.get(self.sealed.ip_start..self.sealed.end)
            .unwrap_or(&[])
    }

    /// The bytes a UDP-socket shell sends.
    pub fn udp_payload<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        buf.get(self.sealed.udp_payload_start..self.sealed.end)
            .unwrap_or(&[])
    }
}

/// Counters of what the device dropped and why (never an error a caller
/// must handle: a dropped datagram is what the wire does).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DropCounters {
    /// Failed IP/UDP checks or ICRC.
    pub bad_framing: u64,
    /// Transport headers that do not parse.
    pub bad_packet: u64,
    /// QP1 packets that are not GSI MADs (wrong opcode or Q_Key).
    pub bad_gsi: u64,
}

/// The NIC.
#[derive(Debug)]
pub struct Device<M: Memory> {
    config: DeviceConfig,
    rc: Engine<M>,
    cm: CmManager,
    events: VecDeque<DeviceEvent>,
    /// PSN of QP1's next UD packet (rxe starts each host's QP1 at 0).
    qp1_psn: u32,
    /// IPv4 identification of the next datagram (raw mode).
    ip_ident: u16,
    drops: DropCounters,
}

/// Largest datagram the device builds: headroom plus the largest packet.
pub const MAX_DATAGRAM: usize = HEADROOM + crate::rc::MAX_PACKET_LEN;

impl<M: Memory> Device<M> {
    /// A device over `mem` with no QPs, CQs or connections.
    pub fn new(config: DeviceConfig, mem: M) -> Self {
        let rc = Engine::with_config(mem, config.rc);
        let cm = CmManager::new(config.cm, config.ca_guid, config.seed);
        Device {
            config,
            rc,
            cm,
            events: VecDeque::new(),
            qp1_psn: 0,
            ip_ident: 1,
            drops: DropCounters::default(),
        }
    }

    /// The RC engine.
    pub fn rc(&mut self) -> &mut Engine<M> {
        &mut self.rc
    }

    /// The RC engine, read-only.
    pub fn rc_ref(&self) -> &Engine<M> {
        &self.rc
    }

    /// The connection manager.
    pub fn cm(&mut self) -> &mut CmManager {
        &mut self.cm
    }

    /// The connection manager, read-only.
    pub fn cm_ref(&self) -> &CmManager {
        &self.cm
    }

    /// The configuration.
    pub fn config(&self) -> &DeviceConfig {
        &self.config
    }

    /// What was dropped so far.
    pub fn drops(&self) -> DropCounters {
        self.drops
    }

    /// A whole IP datagram arrived (raw mode).
    pub fn handle_ip(&mut self, now: Instant, datagram: &[u8]) {
        match framing::open_ip_unchecked(datagram) {
            Ok(u) => self.handle_unchecked(now, u),
            Err(_) => self.drops.bad_framing += 1,
        }
    }

    /// A UDP payload arrived through a socket (UDP mode).
    pub fn handle_udp(&mut self, now: Instant, src: SocketAddr, dst: SocketAddr, payload: &[u8]) {
        match framing::open_udp_unchecked(src, dst, payload) {
            Ok(u) => self.handle_unchecked(now, u),
            Err(_) => self.drops.bad_framing += 1,
        }
    }

    /// The packet is parsed before its ICRC is checked: a packet whose
    /// payload the RC engine places where its sequence already says
    /// ([`placed_before_icrc`]) has its ICRC checked in the same pass as
    /// the copy; every other packet is checked whole first.
    fn handle_unchecked(&mut self, now: Instant, u: Unchecked<'_>) {
        let view = packet::Packet::new_unchecked(u.packet);
        // By reference: moving the repr out of the `Result` copies it.
        let parsed = PacketRepr::parse(&view);
        let deferred = match &parsed {
            Ok(pkt) if placed_before_icrc(pkt) => {
                u.defer(view.header_len(), pkt.payload.len()).ok()
            }
            _ => None,
        };
        let icrc = match deferred {
            Some(d) => Some(d),
            None if u.check().is_ok() => None,
            None => {
                self.drops.bad_framing += 1;
                return;
            }
        };
        let Ok(pkt) = &parsed else {
            self.drops.bad_packet += 1;
            return;
        };
        let (src, dst) = (u.src, u.dst);
        if pkt.bth.dest_qp == GSI_QPN {
            // QP1 takes only GSI MADs with the well-known Q_Key (IBA Vol 1 ch. 13 (MADs, GSI); Linux include/rdma/ib_mad.h).
            match (pkt.qp1_mad(), pkt.deth) {
                (Some(mad), Some(deth)) if deth.qkey == GSI_QKEY => {
                    self.cm.handle_mad(now, src.ip(), dst.ip(), mad);
                }
                _ => self.drops.bad_gsi += 1,
            }
        } else {
            let rx = RxInfo {
                src_ip: src.ip(),
                dst_ip: dst.ip(),
                udp_src_port: src.port(),
            };
            if !self.rc.handle_deferred(now, &rx, pkt, icrc) {
                self.drops.bad_framing += 1;
            }
        }
        self.collect(now);
    }

    /// The link refused a datagram this device sent to `dst`: the shell's
    /// send failed for its size (EMSGSIZE: the interface's MTU fell below
    /// the connection's path MTU, say lowered after connecting).
    /// `datagram` is as the shell sent it (a whole IP datagram in raw mode,
    /// the UDP payload in UDP mode); only its headers are read. The QP
    /// that sent it fails ([`Engine::link_refused`]). CM MADs are not
    /// reported: they are small, and the CM's retries cover a lost one.
    pub fn handle_refused(&mut self, now: Instant, dst: IpAddr, datagram: &[u8]) {
        let packet = match self.config.ip_mode {
            IpMode::Udp => Some(datagram),
            IpMode::Raw => IpRepr::parse(datagram)
                .ok()
                .and_then(|ip| datagram.get(ip.header_len() + udp::HEADER_LEN..)),
        };
        let bth = packet
            .and_then(|p| bth::Packet::new_checked(p).ok())
            .and_then(|p| BthRepr::parse(&p).ok());
        if let Some(bth) = bth
            && bth.dest_qp != GSI_QPN
        {
            self.rc.link_refused(now, dst, bth.dest_qp);
            self.collect(now);
        }
    }

    /// Moves the engine's and the CM's events into the device's queue; a
    /// QP's first packet completes a passive connection still waiting for
    /// its RTU (IBA Vol 1 ch. 12 (CM states); Linux drivers/infiniband/core/cm.c).
    #[inline]
    fn collect(&mut self, now: Instant) {
        // Most packets raise no event: no call then.
        if self.rc.has_event() || self.cm.has_event() {
            self.collect_events(now);
        }
    }

    fn collect_events(&mut self, now: Instant) {
        while let Some(e) = self.rc.poll_event() {
            if let RcEvent::CommEstablished { qpn } = e {
                self.cm.comm_established(now, qpn);
            }
            self.events.push_back(DeviceEvent::Rc(e));
        }
        while let Some(e) = self.cm.poll_event() {
            self.events.push_back(DeviceEvent::Cm(e));
        }
    }

    /// The next event for the consumer.
    pub fn poll_event(&mut self, now: Instant) -> Option<DeviceEvent> {
        self.collect(now);
        self.events.pop_front()
    }

    /// The earliest deadline of the engine and the CM.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.rc.poll_timeout(), self.cm.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Runs every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.rc.handle_timeout(now);
        self.cm.handle_timeout(now);
        self.collect(now);
    }

    /// Writes the next datagram into `buf` (at least [`MAX_DATAGRAM`]
    /// bytes): CM MADs first, then RC packets.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        loop {
            if let Some(t) = self.transmit_mad(buf) {
                return Some(t);
            }
            let room = buf.get_mut(HEADROOM..)?;
            let info = self.rc.poll_transmit(now, room)?;
            let src = SocketAddr::new(info.local_ip, self.source_port(info.udp_src_port));
            let dst = SocketAddr::new(info.remote_ip, self.destination_port());
            let route = framing::Route {
                src,
                dst,
                ident: self.next_ident(),
                hop_limit: info.hop_limit,
                traffic_class: info.traffic_class,
            };
            match framing::seal_with_payload(buf, info.len, &route, info.payload_crc) {
                Ok(sealed) => {
                    self.collect(now);
                    return Some(Transmit { src, dst, sealed });
                }
                // A QP with a path of mixed address families: nothing to
                // send it on; the transport's retry timer reports it.
                Err(_) => continue,
            }
        }
    }

    fn source_port(&self, qp_port: u16) -> u16 {
        match self.config.ip_mode {
            IpMode::Raw => qp_port,
            IpMode::Udp => self.config.udp_source_port,
        }
    }

    fn destination_port(&self) -> u16 {
        match self.config.ip_mode {
            IpMode::Raw => ROCE_PORT,
            IpMode::Udp => self.config.udp_source_port,
        }
    }

    fn next_ident(&mut self) -> u16 {
        match self.config.ip_mode {
            // The canonical header of UDP mode has identification 0.
            IpMode::Udp => 0,
            // Never 0 in raw mode: Linux replaces a header-included IPv4
            // identification of 0 with its own, which would break the ICRC
            // the peer checks.
            IpMode::Raw => {
                let id = self.ip_ident;
                self.ip_ident = self.ip_ident.wrapping_add(1).max(1);
                id
            }
        }
    }

    /// Wraps the CM's next MAD in a UD SEND Only to QP1 (IBA Vol 1 ch. 13 (MADs, GSI); Linux include/rdma/ib_mad.h): P_Key
    /// 0xFFFF, AckReq set as rxe sets it, DETH with the GSI Q_Key and source
    /// QP 1, UDP source port 55410 (rxe's QP1 port).
    fn transmit_mad(&mut self, buf: &mut [u8]) -> Option<Transmit> {
        loop {
            let out = self.cm.poll_transmit()?;
            let mut bth = BthRepr::new(Opcode::UdSendOnly, GSI_QPN, self.qp1_psn);
            bth.ack_req = true;
            let mut pkt = PacketRepr::new(bth, &out.mad);
            pkt.deth = Some(DethRepr {
                qkey: GSI_QKEY,
                reserved: 0,
                src_qp: GSI_QPN,
            });
            let len = pkt.buffer_len();
            let room = buf.get_mut(HEADROOM..HEADROOM + len)?;
            if pkt.emit(room).is_err() {
                continue;
            }
            let src = SocketAddr::new(out.src, self.source_port(qp_default_udp_sport(GSI_QPN)));
            let dst = SocketAddr::new(out.dst, self.destination_port());
            let ident = self.next_ident();
            if let Ok(sealed) = framing::seal(buf, len, src, dst, ident, 64, 0) {
                self.qp1_psn = (self.qp1_psn + 1) & 0xFF_FFFF;
                return Some(Transmit { src, dst, sealed });
            }
        }
    }

    /// Whether the local IP `ip` is the address family of `other` (a QP's
    /// path needs one family end to end).
    pub fn same_family(ip: IpAddr, other: IpAddr) -> bool {
        ip.is_ipv4() == other.is_ipv4()
    }
}

/// Packets whose payload the RC engine may place before their ICRC is
/// known to hold: the Middle and Last of a SEND or WRITE (without
/// immediate data or an invalidation, which change state), and every READ
/// response, whose destination follows from the QP's own state and the
/// expected PSN. A First or Only of a request says where its payload goes
/// (RETH, a new receive WQE), so its ICRC is checked first.
fn placed_before_icrc(pkt: &PacketRepr<'_>) -> bool {
    placed_before_icrc_op(pkt.bth.opcode) && !pkt.payload.is_empty()
}

fn placed_before_icrc_op(op: Opcode) -> bool {
    use crate::wire::opcode::Opcode::*;
    // One bit test on the opcode byte (the set is fixed), not the table
    // walks of `class` and `position`: this runs for every packet.
    matches!(
        op,
        RcSendMiddle
            | RcSendLast
            | RcRdmaWriteMiddle
            | RcRdmaWriteLast
            | RcRdmaReadResponseFirst
            | RcRdmaReadResponseMiddle
            | RcRdmaReadResponseLast
            | RcRdmaReadResponseOnly
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> DeviceConfig {
        DeviceConfig {
            ip_mode: IpMode::Udp,
            udp_source_port: 4791,
            ca_guid: 0x5054_00FF_FE00_0000,
            cm: CmConfig::default(),
            rc: EngineConfig::default(),
            seed: 0,
        }
    }

    /// Two devices in raw IP mode, one QP each at RTS facing the other.
    #[allow(clippy::type_complexity)]
    fn raw_pair(
        mtu: u32,
    ) -> [(
        Device<crate::rc::ArenaMemory>,
        u32,
        u32,
        IpAddr,
        crate::rc::CqHandle,
    ); 2] {
        use crate::rc::{Access, ArenaMemory, Path, QpAttr, QpInit, QpState, Translation};
        let mut sides = [1u8, 2].map(|last| {
            let cfg = DeviceConfig {
                ip_mode: IpMode::Raw,
                ..base()
            }
            .with_identity(u64::from(last));
            let mut d = Device::new(cfg, ArenaMemory::new(1 << 16));
            let rc = d.rc();
            let pd = rc.alloc_pd().unwrap();
            let cq = rc.create_cq(64).unwrap();
            let all = Access::LOCAL_WRITE | Access::REMOTE_WRITE | Access::REMOTE_READ;
            let mr = rc
                .register_mr(pd, 0, 1 << 16, all, Translation::Contiguous { base: 0 })
                .unwrap();
            let key = rc.mr_key(mr).unwrap();
            let qpn = rc
                .create_qp(&QpInit {
                    pd,
                    send_cq: cq,
                    recv_cq: cq,
                    srq: None,
                    sq_depth: 16,
                    rq_depth: 16,
                    max_send_sge: 2,
                    max_recv_sge: 1,
                    max_inline: 64,
                })
                .unwrap();
            (d, qpn, key, IpAddr::from([10, 0, 0, last]), cq)
        });
        let peers = [(sides[1].1, sides[1].3), (sides[0].1, sides[0].3)];
        for ((d, qpn, _, ip, _), (peer_qpn, peer_ip)) in sides.iter_mut().zip(peers) {
            let attrs = [
                QpAttr {
                    state: Some(QpState::Init),
                    access: Some(Access::REMOTE_WRITE | Access::REMOTE_READ),
                    ..Default::default()
                },
                QpAttr {
                    state: Some(QpState::Rtr),
                    path_mtu: Some(mtu),
                    dest_qpn: Some(peer_qpn),
                    rq_psn: Some(0),
                    max_dest_rd_atomic: Some(4),
                    min_rnr_timer: Some(1),
                    path: Some(Path {
                        local_ip: *ip,
                        remote_ip: peer_ip,
                        udp_src_port: 0xC000,
                        hop_limit: 64,
                        traffic_class: 0,
                    }),
                    ..Default::default()
                },
                QpAttr {
                    state: Some(QpState::Rts),
                    sq_psn: Some(0),
                    timeout: Some(14),
                    retry_cnt: Some(7),
                    rnr_retry: Some(7),
                    max_rd_atomic: Some(4),
                    ..Default::default()
                },
            ];
            for a in attrs {
                d.rc().modify_qp(*qpn, &a).unwrap();
            }
        }
        sides
    }

    /// Moves every datagram `a` has due to `b`, then every one `b` has
    /// due to `a`, handing each to `deliver(receiver, datagram)`; how many
    /// moved.
    fn exchange(
        a: &mut Device<crate::rc::ArenaMemory>,
        b: &mut Device<crate::rc::ArenaMemory>,
        now: Instant,
        buf: &mut [u8],
        mut deliver: impl FnMut(&mut Device<crate::rc::ArenaMemory>, &[u8]),
    ) -> usize {
        let mut moved = 0;
        for a_sends in [true, false] {
            let (from, to) = if a_sends {
                (&mut *a, &mut *b)
            } else {
                (&mut *b, &mut *a)
            };
            while let Some(t) = from.poll_transmit(now, buf) {
                deliver(to, t.ip_datagram(buf));
                moved += 1;
            }
        }
        moved
    }

    #[test]
    fn payload_crcs_taken_while_copying_seal_the_same_icrc_as_a_full_pass() {
        use crate::rc::{Payload, SendFlags, SendOp, SendWr, Sge};
        for mtu in [256, 1024, 4096] {
            let [mut a, mut b] = raw_pair(mtu);
            let pattern: alloc::vec::Vec<u8> =
                (0..1u32 << 15).map(|i| (i * 7 + i / 251) as u8).collect();
            assert!(a.0.rc().memory().write(0, &pattern));
            assert!(b.0.rc().memory().write(0x8000, &pattern));
            let mut buf = alloc::vec![0u8; MAX_DATAGRAM];
            let mut now = Instant::from_nanos(1);
            let mut sealed = 0;
            // Lengths across pads, 16-byte blocks, 64-byte steps and MTUs,
            // at odd source offsets; WRITEs (gather, two SGEs, inline) and
            // READs (the responder's read responses).
            let cases = [
                1usize, 2, 3, 15, 16, 17, 63, 64, 65, 255, 1023, 1025, 4099, 9001,
            ];
            for (i, &len) in cases.iter().enumerate() {
                let src = 3 * i as u64 + 1;
                let dst = 0x4000 + 5 * i as u64;
                let half = (len / 2) as u32;
                let sges = [
                    Sge {
                        addr: src,
                        length: half,
                        lkey: a.2,
                    },
                    Sge {
                        addr: src + u64::from(half),
                        length: len as u32 - half,
                        lkey: a.2,
                    },
                ];
                let write = SendOp::Write {
                    remote_addr: dst,
                    rkey: b.2,
                };
                let inline = pattern.get(src as usize..src as usize + len).unwrap();
                let payload = if len <= 64 {
                    Payload::Inline(inline)
                } else {
                    Payload::Sges(&sges)
                };
                let wr = SendWr::new(i as u64, write)
                    .payload(payload)
                    .flags(SendFlags::SIGNALED);
                a.0.rc().post_send(a.1, &wr).unwrap();
                let back = [Sge {
                    addr: 0x8000 + dst,
                    length: len as u32,
                    lkey: a.2,
                }];
                let read = SendOp::Read {
                    remote_addr: dst,
                    rkey: b.2,
                };
                let wr = SendWr::new(100 + i as u64, read).payload(Payload::Sges(&back));
                a.0.rc()
                    .post_send(a.1, &wr.flags(SendFlags::SIGNALED))
                    .unwrap();
                for _ in 0..200 {
                    now += core::time::Duration::from_micros(1);
                    let moved = exchange(&mut a.0, &mut b.0, now, &mut buf, |to, d| {
                        // The receiver's ICRC check is a full pass.
                        assert!(framing::open_ip(d).is_ok(), "mtu {mtu} len {len}");
                        to.handle_ip(now, d);
                    });
                    sealed += moved;
                    if moved == 0 {
                        break;
                    }
                }
                let want = &pattern[src as usize..src as usize + len];
                assert_eq!(
                    b.0.rc().memory().snapshot(dst, len),
                    want,
                    "mtu {mtu} len {len}"
                );
                let read = a.0.rc().memory().snapshot(0x8000 + dst, len);
                assert_eq!(read, want, "mtu {mtu} len {len}: READ");
            }
            assert!(sealed > 2 * cases.len());
            assert_eq!(a.0.drops(), DropCounters::default());
            assert_eq!(b.0.drops(), DropCounters::default());
        }
    }

    #[test]
    fn a_corrupted_packet_placed_before_its_icrc_is_dropped_and_its_message_lands_whole() {
        use crate::rc::{Payload, QpState, SendFlags, SendOp, SendWr, Sge};
        use crate::wire::opcode::Opcode;
        const LEN: usize = 8 * 1024;
        // Where a bit is flipped in the first Middle, from the start of the
        // IP datagram (IPv4 20 + UDP 8, then the BTH): a payload byte, the
        // PSN's low byte, the ICRC's last byte.
        #[derive(Clone, Copy, Debug)]
        enum Spot {
            Payload,
            Psn,
            Icrc,
        }
        let ops = [
            ("WRITE", Opcode::RcRdmaWriteMiddle),
            ("SEND", Opcode::RcSendMiddle),
            ("READ", Opcode::RcRdmaReadResponseMiddle),
        ];
        for (name, middle) in ops {
            for spot in [Spot::Payload, Spot::Psn, Spot::Icrc] {
                let what = alloc::format!("{name} {spot:?}");
                let [mut a, mut b] = raw_pair(1024);
                let pattern: alloc::vec::Vec<u8> =
                    (0..LEN as u32).map(|i| (i * 13 + i / 255) as u8).collect();
                // The READ's data lives on b; the others' on a.
                let (data_at, dst) = (0u64, 0x4000u64);
                let holder = if name == "READ" { &mut b.0 } else { &mut a.0 };
                assert!(holder.rc().memory().write(data_at, &pattern));
                let sge = |addr, lkey| Sge {
                    addr,
                    length: LEN as u32,
                    lkey,
                };
                let op = match name {
                    "WRITE" => SendOp::Write {
                        remote_addr: dst,
                        rkey: b.2,
                    },
                    "READ" => SendOp::Read {
                        remote_addr: data_at,
                        rkey: b.2,
                    },
                    _ => SendOp::Send,
                };
                if name == "SEND" {
                    b.0.rc().post_recv(b.1, 7, &[sge(dst, b.2)]).unwrap();
                }
                let local = if name == "READ" { dst } else { data_at };
                let sges = [sge(local, a.2)];
                let wr = SendWr::new(1, op)
                    .payload(Payload::Sges(&sges))
                    .flags(SendFlags::SIGNALED);
                a.0.rc().post_send(a.1, &wr).unwrap();

                let mut buf = alloc::vec![0u8; MAX_DATAGRAM];
                let mut scratch = buf.clone();
                let mut now = Instant::from_nanos(1);
                let mut corrupted = None;
                let mut done = None;
                let mut out = [crate::rc::Completion::default(); 4];
                // One microsecond a round: the resend must follow from the
                // sequence NAK, far inside the 67 ms retry timeout.
                for round in 0..300 {
                    now += core::time::Duration::from_micros(1);
                    exchange(&mut a.0, &mut b.0, now, &mut buf, |to, d| {
                        if corrupted.is_some() || d[28] != middle as u8 {
                            return to.handle_ip(now, d);
                        }
                        // The PSN of the first Middle (1) becomes 3: ahead
                        // of the expected one, inside the READ.
                        let (at, bit) = match spot {
                            Spot::Payload => (28 + 12 + 100, 0x20),
                            Spot::Psn => (28 + 11, 0x02),
                            Spot::Icrc => (d.len() - 1, 0x20),
                        };
                        let mut frame = d.to_vec();
                        frame[at] ^= bit;
                        to.handle_ip(now, &frame);
                        // Refused whole: not even a sequence NAK.
                        assert!(to.poll_transmit(now, &mut scratch).is_none(), "{what}");
                        let offset = u32::from_be_bytes([0, d[37], d[38], d[39]]) as usize;
                        corrupted = Some((round, offset));
                        if let Spot::Payload = spot {
                            // Placed in the same pass as the check, then
                            // refused: the flipped byte sits where the
                            // resend will overwrite it.
                            let at_mem = dst + (offset * 1024 + 100) as u64;
                            let flipped = pattern[offset * 1024 + 100] ^ 0x20;
                            let now_there = to.rc().memory().snapshot(at_mem, 1);
                            assert_eq!(now_there, [flipped], "{what}");
                        }
                    });
                    let n = a.0.rc().poll_cq(a.4, &mut out);
                    if let Some(c) = out[..n].first() {
                        done = Some((round, c.status));
                        break;
                    }
                }
                assert!(corrupted.is_some(), "{what}: no Middle was sent");
                let (round, status) = done.unwrap_or_else(|| panic!("{what}: never completed"));
                assert_eq!(status, crate::rc::WcStatus::Success, "{what}");
                assert!(round < 50, "{what}: completed only in round {round}");
                // The data's receiver dropped the corrupted packet; its
                // sender dropped nothing.
                let (receiver, sender) = if name == "READ" {
                    (&mut a.0, &b.0)
                } else {
                    (&mut b.0, &a.0)
                };
                let landed = receiver.rc().memory().snapshot(dst, LEN);
                assert!(landed == pattern, "{what}: the message did not land whole");
                assert_eq!(sender.drops(), DropCounters::default(), "{what}");
                let want = DropCounters {
                    bad_framing: 1,
                    ..DropCounters::default()
                };
                assert_eq!(receiver.drops(), want, "{what}");
                if name == "SEND" {
                    let n = b.0.rc().poll_cq(b.4, &mut out);
                    assert_eq!(n, 1, "{what}");
                    assert_eq!(
                        (out[0].status, out[0].byte_len),
                        (crate::rc::WcStatus::Success, LEN as u32)
                    );
                }
                for side in [&a, &b] {
                    assert_eq!(
                        side.0.rc_ref().qp_state(side.1),
                        Some(QpState::Rts),
                        "{what}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_opcodes_placed_before_their_icrc_are_continuations_and_read_responses() {
        use crate::wire::opcode::{ExtHeader, OpClass, Position, Transport};
        for &op in Opcode::ALL {
            let continuation = matches!(op.position(), Position::Middle | Position::Last)
                && !op.has_immediate()
                && !op.ext_headers().contains(&ExtHeader::Ieth);
            let want = op.transport() == Transport::Rc
                && match op.class() {
                    OpClass::RdmaReadResponse => true,
                    OpClass::Send | OpClass::RdmaWrite => continuation,
                    _ => false,
                };
            assert_eq!(placed_before_icrc_op(op), want, "{op:?}");
        }
    }

    #[test]
    fn identity_is_decided_by_the_entropy_alone() {
        let a = base().with_identity(1);
        let b = base().with_identity(1);
        let c = base().with_identity(2);
        assert_eq!((a.ca_guid, a.rc, a.seed), (b.ca_guid, b.rc, b.seed));
        assert_ne!(a.ca_guid, c.ca_guid);
        assert_ne!(a.rc.key_seed, c.rc.key_seed);
        assert_ne!(a.rc.qpn_epoch, c.rc.qpn_epoch);
        assert_ne!(a.seed, c.seed);
        // The prefix stays; only the low 24 bits are drawn.
        assert_eq!(a.ca_guid >> 24, 0x0050_5400_FFFE);
    }

    #[test]
    fn a_new_qpn_epoch_moves_the_first_qpn() {
        use crate::rc::{ArenaMemory, QpInit};
        let first_qpn = |cfg: DeviceConfig| {
            let mut d = Device::new(cfg, ArenaMemory::new(4096));
            let rc = d.rc();
            let pd = rc.alloc_pd().unwrap();
            let cq = rc.create_cq(4).unwrap();
            rc.create_qp(&QpInit {
                pd,
                send_cq: cq,
                recv_cq: cq,
                srq: None,
                sq_depth: 1,
                rq_depth: 1,
                max_send_sge: 1,
                max_recv_sge: 1,
                max_inline: 0,
            })
            .unwrap()
        };
        assert_eq!(first_qpn(base()), 17);
        let seeded = first_qpn(base().with_identity(7));
        assert_eq!(seeded & 0xFFFF, 17);
        assert_ne!(seeded, first_qpn(base().with_identity(8)));
    }
}
