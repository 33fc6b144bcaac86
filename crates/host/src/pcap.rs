//! Captures of RoCEv2 traffic that Wireshark and tshark decode.
//!
//! Every frame is Ethernet (link type 1) with MAC addresses made up from
//! the IP addresses (`02:00` + the last four address bytes):
//!
//! * raw mode: the IP datagram exactly as sent or received;
//! * UDP mode: the shell never sees the IP header the OS writes, so the
//!   capture carries the *canonical* header the ICRC was computed over
//!   (IPv4 identification 0, DF set, TTL 64; IPv6 traffic class 0, flow
//!   label 0, hop limit 64) and the UDP header with the addresses and
//!   ports the device used (see [`crate::endpoint::Routing`] for pairs on
//!   one address). The ICRC in the packet is therefore the one a checker
//!   recomputes. Wireshark decodes UDP port 4791 as RoCE by itself; for a
//!   capture on other ports, tell it: `tshark -d udp.port==PORT,infiniband`. The UDP checksum is
//!   0 over IPv4 (as rxe sends it) and filled in over IPv6, where 0 is not
//!   allowed; the ICRC does not cover it.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use pcap_file::DataLink;
use pcap_file::pcap::{PcapHeader, PcapPacket};
use roce::wire::ethernet::{self, ETHERTYPE_IPV4, ETHERTYPE_IPV6};
use roce::wire::frame::IpRepr;
use roce::wire::udp::{self, UdpRepr};

/// The pcap file header's length.
const PCAP_HEADER_LEN: u64 = 24;
/// A pcap record header's length.
const PCAP_RECORD_HEADER_LEN: u64 = 16;

/// Snap length of the captures (every datagram fits whole).
const SNAPLEN: u32 = 65_535;

/// Writes RoCEv2 frames to a pcap.
pub struct PcapWriter<W: Write> {
    inner: Option<pcap_file::pcap::PcapWriter<W>>,
    frame: Vec<u8>,
    frames: u64,
    /// Bytes written (header and records).
    bytes: u64,
    /// The most bytes the file may hold; frames past it are not written.
    limit: u64,
    /// Frames left out for the limit.
    skipped: u64,
}

impl<W: Write> std::fmt::Debug for PcapWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PcapWriter")
            .field("frames", &self.frames)
            .finish()
    }
}

fn pcap_err(e: pcap_file::PcapError) -> io::Error {
    io::Error::other(e)
}

/// Creates `path` and a writer for it, ready for an event loop.
pub fn create(path: &Path) -> io::Result<PcapWriter<Box<dyn Write + Send>>> {
    let file = File::create(path)
        .map_err(|e| io::Error::new(e.kind(), format!("creating {}: {e}", path.display())))?;
    PcapWriter::new(Box::new(BufWriter::new(file)))
}

impl<W: Write> PcapWriter<W> {
    /// Writes the pcap header to `w`.
    pub fn new(w: W) -> io::Result<Self> {
        let header = PcapHeader {
            datalink: DataLink::ETHERNET,
            snaplen: SNAPLEN,
            ..PcapHeader::default()
        };
        let inner = pcap_file::pcap::PcapWriter::with_header(w, header).map_err(pcap_err)?;
        Ok(PcapWriter {
            inner: Some(inner),
            frame: Vec::with_capacity(ethernet::HEADER_LEN + 65_536),
            frames: 0,
            bytes: PCAP_HEADER_LEN,
            limit: u64::MAX,
            skipped: 0,
        })
    }

    /// Frames written.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Caps the file at `bytes` (the header included): once the next
    /// record would pass it, frames are counted in [`Self::skipped`]
    /// instead of written, so the file stays a whole, valid capture.
    pub fn set_limit(&mut self, bytes: u64) {
        self.limit = bytes.max(PCAP_HEADER_LEN);
    }

    /// Frames left out for the size cap.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Records a whole IP datagram (raw mode).
    pub fn write_ip(&mut self, datagram: &[u8]) -> io::Result<()> {
        ip_frame(datagram, &mut self.frame)?;
        self.emit()
    }

    /// Records a UDP payload with the canonical IP/UDP headers (UDP mode).
    pub fn write_udp(
        &mut self,
        src: SocketAddr,
        dst: SocketAddr,
        payload: &[u8],
    ) -> io::Result<()> {
        udp_frame(src, dst, payload, &mut self.frame)?;
        self.emit()
    }

    fn emit(&mut self) -> io::Result<()> {
        let inner = self
            .inner
            .as_mut()
            .ok_or_else(|| io::Error::other("the capture is finished"))?;
        let ts = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let len = u32::try_from(self.frame.len()).unwrap_or(u32::MAX);
        let data = self.frame.get(..SNAPLEN as usize).unwrap_or(&self.frame);
        let record = PCAP_RECORD_HEADER_LEN + data.len() as u64;
        if self.bytes.saturating_add(record) > self.limit {
            self.skipped += 1;
            return Ok(());
        }
        self.bytes += record;
        inner
            .write_packet(&PcapPacket::new(ts, len, data))
            .map_err(pcap_err)?;
        self.frames += 1;
        Ok(())
    }

    /// Flushes and closes the capture; later writes fail.
    pub fn finish(&mut self) -> io::Result<()> {
        match self.inner.take() {
            Some(w) => w.into_writer().flush(),
            None => Ok(()),
        }
    }
}

/// The made-up MAC address of an IP address.
pub fn mac_of(ip: IpAddr) -> [u8; 6] {
    let o = match ip {
        IpAddr::V4(a) => a.octets(),
        IpAddr::V6(a) => {
            let b = a.octets();
            [b[12], b[13], b[14], b[15]]
        }
    };
    [0x02, 0x00, o[0], o[1], o[2], o[3]]
}

fn ethernet(out: &mut Vec<u8>, src: IpAddr, dst: IpAddr, ethertype: u16) {
    out.clear();
    out.extend_from_slice(&mac_of(dst));
    out.extend_from_slice(&mac_of(src));
    out.extend_from_slice(&ethertype.to_be_bytes());
}

fn invalid(what: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, what)
}

/// An Ethernet frame around a whole IP datagram, in `out`.
pub fn ip_frame(datagram: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
    let (src, dst, ethertype) = match datagram.first().map(|b| b >> 4) {
        Some(4) if datagram.len() >= 20 => {
            let s: [u8; 4] = datagram[12..16].try_into().unwrap_or_default();
            let d: [u8; 4] = datagram[16..20].try_into().unwrap_or_default();
            (IpAddr::from(s), IpAddr::from(d), ETHERTYPE_IPV4)
        }
        Some(6) if datagram.len() >= 40 => {
            let s: [u8; 16] = datagram[8..24].try_into().unwrap_or_default();
            let d: [u8; 16] = datagram[24..40].try_into().unwrap_or_default();
            (IpAddr::from(s), IpAddr::from(d), ETHERTYPE_IPV6)
        }
        _ => return Err(invalid("not an IP datagram")),
    };
    ethernet(out, src, dst, ethertype);
    out.extend_from_slice(datagram);
    Ok(())
}

/// An Ethernet frame with the canonical IP/UDP headers around a UDP
/// payload, in `out`.
pub fn udp_frame(
    src: SocketAddr,
    dst: SocketAddr,
    payload: &[u8],
    out: &mut Vec<u8>,
) -> io::Result<()> {
    let ip = match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => IpRepr::ipv4(s.octets(), d.octets()),
        (IpAddr::V6(s), IpAddr::V6(d)) => IpRepr::ipv6(s.octets(), d.octets()),
        _ => {
            return Err(invalid(
                "source and destination of different address families",
            ));
        }
    };
    let v6 = matches!(ip, IpRepr::Ipv6(_));
    let udp_len = udp::HEADER_LEN + payload.len();
    ethernet(out, src.ip(), dst.ip(), ip.ethertype());
    let ip_start = out.len();
    out.resize(ip_start + ip.header_len() + udp_len, 0);
    let (ip_bytes, rest) = out[ip_start..].split_at_mut(ip.header_len());
    ip.emit_header(udp_len, ip_bytes)
        .map_err(|_| invalid("datagram too long for IP"))?;
    let repr = UdpRepr {
        src_port: src.port(),
        dst_port: dst.port(),
        checksum: v6,
        payload_len: payload.len(),
    };
    rest[udp::HEADER_LEN..].copy_from_slice(payload);
    let mut view = udp::Packet::new_unchecked(&mut *rest);
    repr.emit_header(&mut view)
        .map_err(|_| invalid("datagram too long for UDP"))?;
    if v6 {
        view.fill_checksum(&ip.pseudo_header());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_carry_canonical_headers() {
        let mut out = Vec::new();
        let src: SocketAddr = "10.0.0.1:49152".parse().unwrap();
        let dst: SocketAddr = "10.0.0.2:4791".parse().unwrap();
        udp_frame(src, dst, &[1, 2, 3, 4], &mut out).unwrap();
        assert_eq!(&out[0..6], &[2, 0, 10, 0, 0, 2]);
        assert_eq!(&out[12..14], &[0x08, 0x00]);
        let ip = &out[14..34];
        assert_eq!(ip[0], 0x45);
        assert_eq!(&ip[4..8], &[0, 0, 0x40, 0], "identification 0, DF");
        assert_eq!(ip[8], 64);
        assert_eq!(&out[34..42], &[0xC0, 0x00, 0x12, 0xB7, 0, 12, 0, 0]);
        assert_eq!(&out[42..], &[1, 2, 3, 4]);
        // Mixed families and non-IP input are errors, not panics.
        let v6: SocketAddr = "[::1]:4791".parse().unwrap();
        assert!(udp_frame(src, v6, &[], &mut out).is_err());
        assert!(ip_frame(&[0x45, 0], &mut out).is_err());
        assert!(ip_frame(&[], &mut out).is_err());
    }
}
