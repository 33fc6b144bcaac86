//! ndksmb: copies a file to or from an SMB Direct server (SMB2/3 over
//! MS-SMBD over RoCEv2) with ndkrs as the RDMA provider, used only through
//! the NDK dispatch tables (`interop::smb::Session`). File data moves
//! through the RDMA channel: the server RDMA-reads what `put` writes and
//! RDMA-writes what `get` reads.
//!
//!   ndksmb --local 10.9.0.1 --server 10.9.0.2 --user U put FILE NAME
//!   ndksmb --local 10.9.0.1 --server 10.9.0.2 --user U get NAME FILE
//!
//! The password comes from NDKSMB_PASSWORD. Against a Linux rdma_rxe server
//! (ksmbd) the default raw IP socket is needed (root or CAP_NET_RAW): the
//! RoCEv2 ICRC covers IP header fields only a raw sender controls.

use std::fs;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use interop::smb::{Session, SessionConfig, SessionTransport};
use smbd::smb2::dialect;
use smbd::smbd::conn::Config;

#[derive(Parser, Debug)]
#[command(
    name = "ndksmb",
    about = "Copy a file over SMB Direct with ndkrs as the RDMA provider"
)]
struct Cli {
    /// ndkrs's own IPv4 address (its RoCEv2 socket binds there, UDP 4791).
    #[arg(long)]
    local: Ipv4Addr,
    /// The server: IPv4 address, or address:port of its RDMA CM listener
    /// (445 for SMB Direct over RoCE).
    #[arg(long)]
    server: String,
    #[arg(long, default_value = "share")]
    share: String,
    #[arg(long)]
    user: String,
    /// RoCE path MTU: 256, 512, 1024, 2048 or 4096.
    #[arg(long, default_value_t = 1024)]
    mtu: u32,
    /// Fast-register each transfer's buffer and let the server invalidate
    /// it (SMB2 RDMA_V1_INVALIDATE), as the Windows client does.
    #[arg(long)]
    invalidate: bool,
    /// Largest single READ/WRITE in bytes (the negotiated limits apply).
    #[arg(long, default_value_t = 1 << 20)]
    chunk: usize,
    /// A UDP socket instead of a raw one (for an ndkrs server).
    #[arg(long)]
    udp: bool,
    /// Record every RoCEv2 datagram to this pcap file.
    #[arg(long)]
    pcap: Option<PathBuf>,
    /// Bound of every wait, in seconds.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
    #[command(subcommand)]
    op: Op,
}

#[derive(Subcommand, Debug)]
enum Op {
    /// Write the local FILE to the share as NAME (created or overwritten).
    Put { file: PathBuf, name: String },
    /// Read NAME from the share into the local FILE.
    Get { name: String, file: PathBuf },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("ndksmb: error: {msg}");
            ExitCode::from(1)
        }
    }
}

fn server_addr(s: &str) -> Result<SocketAddrV4, String> {
    if let Ok(a) = s.parse::<SocketAddrV4>() {
        return Ok(a);
    }
    s.parse::<Ipv4Addr>()
        .map(|ip| SocketAddrV4::new(ip, 445))
        .map_err(|_| format!("--server {s}: want an IPv4 address or address:port"))
}

fn run(cli: &Cli) -> Result<(), String> {
    let password = std::env::var("NDKSMB_PASSWORD")
        .map_err(|_| "set NDKSMB_PASSWORD to the user's password".to_string())?;
    if cli.chunk == 0 {
        return Err("--chunk must be at least 1".into());
    }
    let t0 = Instant::now();
    let mut s = Session::connect(SessionConfig {
        local: cli.local,
        transport: if cli.udp {
            SessionTransport::Udp
        } else {
            SessionTransport::Raw
        },
        server: server_addr(&cli.server)?,
        share: cli.share.clone(),
        user: cli.user.clone(),
        password,
        seed: u64::from(std::process::id()) ^ 0x6e64_6b73_6d62,
        mtu: cli.mtu,
        pcap: cli.pcap.clone(),
        timeout: Duration::from_secs(cli.timeout),
        dialects: vec![dialect::SMB300, dialect::SMB302, dialect::SMB311],
        smbd: Config::default(),
    })?;
    println!(
        "connected to \\\\{}\\{} in {:.3} s: {}",
        cli.server,
        cli.share,
        t0.elapsed().as_secs_f64(),
        s.ready_text()
    );
    let (max_read, max_write, max_rw) = s.limits();
    let limit = match cli.op {
        Op::Put { .. } => max_write,
        Op::Get { .. } => max_read,
    };
    let chunk = cli.chunk.min(limit.min(max_rw) as usize);
    if chunk == 0 {
        return Err("the server negotiated no RDMA transfer size".into());
    }
    // Whatever the transfer does, the connection is ended (NdkDisconnect)
    // and every object closed before exiting, so the server sees the
    // disconnect at once rather than through its own timeouts.
    let moved = transfer(&mut s, cli, chunk);
    let logoff = match moved {
        Ok(_) => s.logoff(),
        Err(_) => Ok(()),
    };
    let disconnect = s.ndk_disconnect();
    let close = s.close();
    let (bytes, ops, took) = moved?;
    println!(
        "{} {bytes} bytes in {ops} RDMA-channel {}(s) of up to {chunk} bytes in {took:.3} s ({:.1} MB/s)",
        match cli.op {
            Op::Put { .. } => "wrote",
            Op::Get { .. } => "read",
        },
        match cli.op {
            Op::Put { .. } => "WRITE",
            Op::Get { .. } => "READ",
        },
        bytes as f64 / took.max(1e-9) / 1e6,
    );
    logoff?;
    println!(
        "logged off; NdkDisconnect completed in {:.1} ms",
        disconnect?.as_secs_f64() * 1e3
    );
    close
}

/// The copy itself: bytes moved, READs or WRITEs issued, seconds taken.
fn transfer(s: &mut Session, cli: &Cli, chunk: usize) -> Result<(u64, usize, f64), String> {
    let buf = if cli.invalidate {
        s.register_fast(chunk)?
    } else {
        s.register(chunk)?
    };
    let t = Instant::now();
    let (bytes, ops) = match &cli.op {
        Op::Put { file, name } => put(s, buf, chunk, cli.invalidate, file, name)?,
        Op::Get { name, file } => get(s, buf, chunk, cli.invalidate, name, file)?,
    };
    Ok((bytes, ops, t.elapsed().as_secs_f64()))
}

fn put(
    s: &mut Session,
    buf: usize,
    chunk: usize,
    invalidate: bool,
    file: &PathBuf,
    name: &str,
) -> Result<(u64, usize), String> {
    let mut f = fs::File::open(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let fid = s.create(name)?;
    let (mut off, mut ops) = (0u64, 0usize);
    loop {
        let n = fill(&mut f, &mut s.region_mut(buf).bytes_mut()[..chunk])
            .map_err(|e| format!("{}: {e}", file.display()))?;
        if n == 0 {
            break;
        }
        if invalidate {
            s.fast_register(buf)?;
        }
        let got = s.write_rdma(fid, off, buf, 0, n)?;
        if got as usize != n {
            return Err(format!(
                "WRITE at {off}: the server took {got} of {n} bytes"
            ));
        }
        off += n as u64;
        ops += 1;
    }
    s.close_file(fid)?;
    Ok((off, ops))
}

/// Reads until `out` is full or the file ends.
fn fill(f: &mut fs::File, out: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < out.len() {
        match f.read(&mut out[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

fn get(
    s: &mut Session,
    buf: usize,
    chunk: usize,
    invalidate: bool,
    name: &str,
    file: &PathBuf,
) -> Result<(u64, usize), String> {
    let (fid, size) = s.open(name)?;
    let mut f = fs::File::create(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let (mut off, mut ops) = (0u64, 0usize);
    while off < size {
        let n = chunk.min((size - off) as usize);
        if invalidate {
            s.fast_register(buf)?;
        }
        let got = s.read_rdma(fid, off, buf, 0, n)? as usize;
        if got == 0 {
            return Err(format!("READ at {off}: no data, {size} expected"));
        }
        f.write_all(&s.region(buf).bytes()[..got.min(n)])
            .map_err(|e| format!("{}: {e}", file.display()))?;
        off += got as u64;
        ops += 1;
    }
    s.close_file(fid)?;
    Ok((off, ops))
}
