//! Steps of the SMB Direct client's scenario that `tests/ksmbd.rs` (against
//! Linux ksmbd) and `tests/smb_loopback.rs` (against
//! [`crate::smb_server::SmbServer`]) both take, each with the checks both
//! make. What only one of them checks (the server's copy of a file, the
//! server's report) and the report lines stay in the test.

use std::time::{Duration, Instant};

use smbd::smb2::msg::FileId;

use crate::smb::Session;

/// The byte at offset `i` of the files the SMB scenarios write (the tests
/// and the emulated hosts must agree: a test sums in the VM what a host
/// wrote).
pub fn file_byte(i: usize) -> u8 {
    (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[2] ^ (i >> 13) as u8
}

/// `Ok` if `cond` holds, else the failure `what` describes.
pub fn ensure(cond: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if cond { Ok(()) } else { Err(what()) }
}

/// `op(off, n)` over `0..len` in pieces of at most `chunk` bytes, in
/// order; each must move all of its `n` bytes. How many pieces it took.
pub fn in_pieces(
    len: usize,
    chunk: usize,
    what: &str,
    mut op: impl FnMut(usize, usize) -> Result<u32, String>,
) -> Result<usize, String> {
    let mut pieces = 0;
    let mut off = 0;
    while off < len {
        let n = chunk.min(len - off);
        let got = op(off, n)?;
        ensure(got as usize == n, || {
            format!("{what} at {off}: {got} of {n} bytes")
        })?;
        off += n;
        pieces += 1;
    }
    Ok(pieces)
}

/// An inline WRITE and READ back of one file.
#[derive(Debug, Clone, Copy)]
pub struct InlineTrip {
    /// MS-SMBD messages the WRITE request took, and the READ response.
    pub write_messages: usize,
    pub read_messages: usize,
    /// From the WRITE to the end of the READ.
    pub took: Duration,
}

impl InlineTrip {
    /// Both directions were fragmented: the WRITE request and the READ
    /// response each took several MS-SMBD messages.
    pub fn ensure_fragmented(&self) -> Result<(), String> {
        let (w, r) = (self.write_messages, self.read_messages);
        ensure(w > 1 && r > 1, || {
            format!("inline transfer took {w} message(s) out, {r} in: not fragmented")
        })
    }
}

/// Creates `name`, WRITEs `data` inside one SMB2 WRITE and READs it back
/// inside one READ response (byte-exact), then closes the file.
pub fn inline_round_trip(s: &mut Session, name: &str, data: &[u8]) -> Result<InlineTrip, String> {
    let len = data.len();
    let fid = s.create(name)?;
    let t = Instant::now();
    let sent0 = s.stats.smbd_sent;
    let got = s.write_inline(fid, 0, data)?;
    ensure(got as usize == len, || {
        format!("inline WRITE: {got} of {len} bytes")
    })?;
    let write_messages = s.stats.smbd_sent - sent0;
    let recv0 = s.stats.smbd_received;
    let back = s.read_inline(fid, 0, len as u32)?;
    let read_messages = s.stats.smbd_received - recv0;
    ensure(back == data, || {
        format!(
            "inline read-back: {} bytes, differs from what was written",
            back.len()
        )
    })?;
    let took = t.elapsed();
    s.close_file(fid)?;
    Ok(InlineTrip {
        write_messages,
        read_messages,
        took,
    })
}

/// Idles for `idle`, past the connection's idle timer: at least one
/// keepalive must go out and be answered (the connection stays up). The
/// MS-SMBD messages sent and received meanwhile.
pub fn keepalive(s: &mut Session, idle: Duration) -> Result<(usize, usize), String> {
    let (sent0, recv0) = (s.stats.smbd_sent, s.stats.smbd_received);
    s.idle(idle)?;
    let (sent, received) = (s.stats.smbd_sent - sent0, s.stats.smbd_received - recv0);
    ensure(sent >= 1 && received >= 1, || {
        format!("idle {idle:?}: {sent} keepalive(s) sent, {received} answer(s)")
    })?;
    Ok((sent, received))
}

/// A file written and read back through the RDMA channel over regular
/// MRs (RDMA_V1).
#[derive(Debug, Clone, Copy)]
pub struct RdmaTrip {
    /// The source and sink regions.
    pub src: usize,
    pub dst: usize,
    /// RDMA-channel WRITEs and READs, and how long each direction took.
    pub writes: usize,
    pub reads: usize,
    pub write_time: Duration,
    pub read_time: Duration,
}

/// Registers a source and a sink of `data.len()` bytes the server may
/// read and write, creates `name`, WRITEs `data` from the source in
/// RDMA-channel pieces of at most `chunk` bytes, READs it back into the
/// sink the same way (byte-exact), and closes the file.
pub fn rdma_round_trip(
    s: &mut Session,
    name: &str,
    data: &[u8],
    chunk: usize,
) -> Result<RdmaTrip, String> {
    let len = data.len();
    let (src, dst, fid) = source_and_sink(s, name, data, Session::register)?;
    let t = Instant::now();
    let writes = in_pieces(len, chunk, "WRITE", |off, n| {
        s.write_rdma(fid, off as u64, src, off, n)
    })?;
    let write_time = t.elapsed();
    let t = Instant::now();
    let reads = in_pieces(len, chunk, "READ", |off, n| {
        s.read_rdma(fid, off as u64, dst, off, n)
    })?;
    let read_time = t.elapsed();
    let back = s.region(dst).bytes();
    if let Some(i) = (0..len).find(|&i| back[i] != data[i]) {
        return Err(format!("read-back differs first at byte {i}"));
    }
    s.close_file(fid)?;
    Ok(RdmaTrip {
        src,
        dst,
        writes,
        reads,
        write_time,
        read_time,
    })
}

/// A source region holding `data` and a sink of its size, both from
/// `register`, and the file `name` created.
fn source_and_sink(
    s: &mut Session,
    name: &str,
    data: &[u8],
    register: fn(&mut Session, usize) -> Result<usize, String>,
) -> Result<(usize, usize, FileId), String> {
    let src = register(s, data.len())?;
    let dst = register(s, data.len())?;
    s.region_mut(src).bytes_mut().copy_from_slice(data);
    let fid = s.create(name)?;
    Ok((src, dst, fid))
}

/// A file written and read back over fast-register MRs with remote
/// invalidation (RDMA_V1_INVALIDATE).
#[derive(Debug, Clone)]
pub struct FastTrip {
    /// The remote token of each WRITE's registration, and each READ's.
    pub write_tokens: Vec<u32>,
    pub read_tokens: Vec<u32>,
    /// From the first registration to the end of the last READ.
    pub took: Duration,
}

/// As [`rdma_round_trip`], over fast-register MRs with remote
/// invalidation, as the Windows SMB client moves data: a new registration
/// (NdkFastRegister) before each piece, which the server's Send with
/// Invalidate ends. The client's Receive-and-Invalidate completions must
/// name exactly those tokens, in order.
pub fn fast_register_round_trip(
    s: &mut Session,
    name: &str,
    data: &[u8],
    chunk: usize,
) -> Result<FastTrip, String> {
    let len = data.len();
    let (src, dst, fid) = source_and_sink(s, name, data, Session::register_fast)?;
    let t = Instant::now();
    let mut write_tokens = Vec::new();
    in_pieces(len, chunk, "invalidating WRITE", |off, n| {
        write_tokens.push(s.fast_register(src)?);
        s.write_rdma(fid, off as u64, src, off, n)
    })?;
    let mut read_tokens = Vec::new();
    in_pieces(len, chunk, "invalidating READ", |off, n| {
        read_tokens.push(s.fast_register(dst)?);
        s.read_rdma(fid, off as u64, dst, off, n)
    })?;
    let took = t.elapsed();
    ensure(s.region(dst).bytes() == data, || {
        "fast-register read-back differs".into()
    })?;
    let want: Vec<u32> = write_tokens.iter().chain(&read_tokens).copied().collect();
    ensure(s.invalidated() == want, || {
        format!(
            "Receive-and-Invalidate tokens {:x?}, want {want:x?}",
            s.invalidated()
        )
    })?;
    s.close_file(fid)?;
    Ok(FastTrip {
        write_tokens,
        read_tokens,
        took,
    })
}

/// The client's NdkDisconnect after the server ended the connection.
#[derive(Debug, Clone, Copy)]
pub struct PeerFlush {
    /// Receives cancelled before the NdkDisconnect (there must be none),
    /// and pending at it.
    pub cancelled_before: usize,
    pub posted: usize,
    /// Sends cancelled before the NdkDisconnect (there must be none).
    pub sends_cancelled_before: usize,
    /// How long the NdkDisconnect took.
    pub took: Duration,
}

/// Once the server's disconnect has been seen
/// ([`Session::wait_peer_disconnect`]): a moment for anything the CQ still
/// holds, which is taken, then the client's own NdkDisconnect (the
/// consumer's to call whoever disconnected first). Check the outcome with
/// [`PeerFlush::check`] once late completions have had their chance.
pub fn ndk_disconnect_after_peer(s: &mut Session) -> Result<PeerFlush, String> {
    std::thread::sleep(Duration::from_millis(200));
    s.drain();
    let cancelled_before = s.stats.receives_cancelled;
    let sends_cancelled_before = s.stats.sends_cancelled;
    let posted = s.receives_posted();
    let took = s.ndk_disconnect()?;
    Ok(PeerFlush {
        cancelled_before,
        posted,
        sends_cancelled_before,
        took,
    })
}

impl PeerFlush {
    /// The provider delivered the disconnect event exactly once; the
    /// receives were still pending at the NdkDisconnect (the flush is its),
    /// and it completed every one as STATUS_CANCELLED; no completion
    /// failed. A Send still outstanding at the NdkDisconnect (posted as the
    /// peer left, never acknowledged by its gone QP) is flushed by it, as
    /// NDK_FN_DISCONNECT requires: STATUS_CANCELLED then, and only then.
    pub fn check(&self, s: &Session) -> Result<(), String> {
        let events = s.disconnect_events();
        ensure(events == 1, || {
            format!("{events} disconnect events, want 1")
        })?;
        let PeerFlush {
            cancelled_before,
            posted,
            sends_cancelled_before,
            ..
        } = *self;
        ensure(sends_cancelled_before == 0, || {
            format!("{sends_cancelled_before} sends cancelled before the NdkDisconnect")
        })?;
        let flushed = s.stats.receives_cancelled - cancelled_before;
        ensure(
            cancelled_before == 0 && posted > 0 && flushed == posted && s.receives_posted() == 0,
            || {
                format!(
                    "{cancelled_before} receives cancelled before NdkDisconnect, {posted} \
                     pending at it, {flushed} cancelled by it, {} still pending",
                    s.receives_posted()
                )
            },
        )?;
        ensure(s.stats.failed.is_empty(), || {
            format!("client: failed completions {:?}", s.stats.failed)
        })
    }
}
