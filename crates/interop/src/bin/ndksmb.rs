//! ndksmb: copies a file to or from an SMB Direct server (SMB2/3 over
//! MS-SMBD over RoCEv2) with ndkrs as the RDMA provider, used only through
//! the NDK dispatch tables (`interop::smb::Session`). File data moves
//! through the RDMA channel: the server RDMA-reads what `put` writes and
//! RDMA-writes what `get` reads. `serve` runs the SMB Direct server of
//! `interop::smb_server` (itself an NDK consumer over a second ndkrs
//! adapter) for ndksmb clients with `--udp`.
//!
//!   ndksmb --local 10.9.0.1 --server 10.9.0.2 --user U put FILE NAME
//!   ndksmb --local 10.9.0.1 --server 10.9.0.2 --user U get NAME FILE
//!   ndksmb --local 10.9.0.2 --user U serve [--dir DIR]
//!
//! The password comes from NDKSMB_PASSWORD. Against a Linux rdma_rxe server
//! (ksmbd) the default raw IP socket is needed (root or CAP_NET_RAW): the
//! RoCEv2 ICRC covers IP header fields only a raw sender controls.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use host::adapter::quick_cm;
use interop::smb::{Session, SessionConfig, SessionTransport, bytes_text, dialect_text};
use interop::smb_server::{ConnReport, End, SmbServer, SmbServerConfig};
use ndkpi::StatusText;
use roce::cm::CmConfig;
use smbd::smb2::dialect;
use smbd::smb2::msg::signing_alg;
use smbd::smb2::server::ServerConfig;
use smbd::smbd::conn::Config;

/// The RoCE path MTUs.
const MTUS: [u32; 5] = [256, 512, 1024, 2048, 4096];

#[derive(Parser, Debug)]
#[command(
    name = "ndksmb",
    about = "Copy a file over SMB Direct with ndkrs as the RDMA provider, or serve a share",
    after_help = "The password comes from NDKSMB_PASSWORD (client and server).\nLoopback, no \
                  root: `ndksmb --local 127.0.0.2 --user U serve` in one shell, `ndksmb --udp \
                  --local 127.0.0.1 --server 127.0.0.2 --user U put FILE NAME` in another."
)]
struct Cli {
    /// ndkrs's own IPv4 address (its RoCEv2 socket binds there, UDP 4791).
    #[arg(long, global = true)]
    local: Option<Ipv4Addr>,
    /// The server: IPv4 address, or address:port of its RDMA CM listener
    /// (445 for SMB Direct over RoCE). put and get only.
    #[arg(long, global = true)]
    server: Option<String>,
    #[arg(long, global = true, default_value = "share")]
    share: String,
    #[arg(long, global = true)]
    user: Option<String>,
    /// RoCE path MTU: 256, 512, 1024, 2048 or 4096 (capped at what the
    /// link under --local carries).
    #[arg(long, global = true, default_value_t = 1024)]
    mtu: u32,
    /// Fast-register each transfer's buffer and let the server invalidate
    /// it (SMB2 RDMA_V1_INVALIDATE), as the Windows client does.
    #[arg(long, global = true)]
    invalidate: bool,
    /// Largest single READ/WRITE in bytes (the negotiated limits apply).
    #[arg(long, global = true, default_value_t = 1 << 20)]
    chunk: usize,
    /// A UDP socket instead of a raw one (for an ndkrs server, such as
    /// `ndksmb serve`).
    #[arg(long, global = true)]
    udp: bool,
    /// Record every RoCEv2 datagram to this pcap file.
    #[arg(long, global = true)]
    pcap: Option<PathBuf>,
    /// Bound of every wait once connected, in seconds (the RDMA connect
    /// itself gives up after about a second without an answer).
    #[arg(long, global = true, default_value_t = 30)]
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
    /// Serve the share over SMB Direct on --local (UDP 4791, RDMA CM port
    /// --port) to ndkrs clients (`ndksmb --udp ...`), one connection at a
    /// time, until killed or --connections have ended. The share is kept
    /// in memory; --dir loads it from a directory and writes it back there
    /// after every connection.
    Serve {
        /// A directory whose regular files the share starts with, and where
        /// the share is saved after each connection.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Exit after this many connections have ended.
        #[arg(long)]
        connections: Option<usize>,
        /// The RDMA CM port to listen on.
        #[arg(long, default_value_t = 445)]
        port: u16,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let r = match cli.op {
        Op::Serve { .. } => serve(&cli),
        _ => run(&cli),
    };
    match r {
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

/// What every operation needs: the address, the account, a valid MTU.
fn common(cli: &Cli) -> Result<(Ipv4Addr, String, String), String> {
    if !MTUS.contains(&cli.mtu) {
        return Err(format!(
            "--mtu {}: the RoCE path MTU is one of 256, 512, 1024, 2048 or 4096",
            cli.mtu
        ));
    }
    let local = cli
        .local
        .ok_or("--local is required: ndkrs's own IPv4 address")?;
    let user = cli.user.clone().ok_or("--user is required")?;
    let password = std::env::var("NDKSMB_PASSWORD")
        .map_err(|_| "set NDKSMB_PASSWORD to the user's password".to_string())?;
    Ok((local, user, password))
}

fn run(cli: &Cli) -> Result<(), String> {
    let (local, user, password) = common(cli)?;
    let server = server_addr(
        cli.server
            .as_deref()
            .ok_or("--server is required: the SMB Direct server's address")?,
    )?;
    if cli.chunk == 0 {
        return Err("--chunk must be at least 1".into());
    }
    // The local side first: a file that cannot be copied fails before
    // anything goes on the wire.
    match &cli.op {
        Op::Put { file, .. } => {
            let m = fs::metadata(file).map_err(|e| format!("put: {}: {e}", file.display()))?;
            if m.is_dir() {
                return Err(format!(
                    "put: {} is a directory; put copies one regular file",
                    file.display()
                ));
            }
            if !m.is_file() {
                return Err(format!("put: {} is not a regular file", file.display()));
            }
        }
        Op::Get { file, .. } => {
            if file.is_dir() {
                return Err(format!(
                    "get: {} is a directory; name the file to write",
                    file.display()
                ));
            }
        }
        Op::Serve { .. } => {}
    }
    let t0 = Instant::now();
    let mut s = Session::connect_with(
        SessionConfig {
            local,
            transport: if cli.udp {
                SessionTransport::Udp
            } else {
                SessionTransport::Raw
            },
            server,
            share: cli.share.clone(),
            user,
            password,
            seed: u64::from(std::process::id()) ^ 0x6e64_6b73_6d62,
            mtu: cli.mtu,
            pcap: cli.pcap.clone(),
            timeout: Duration::from_secs(cli.timeout),
            dialects: vec![dialect::SMB300, dialect::SMB302, dialect::SMB311],
            smbd: Config::default(),
        },
        ndksmb_cm(),
    )
    .map_err(|e| {
        if e.starts_with("raw socket") {
            format!(
                "{e} (a raw IP socket needs root or CAP_NET_RAW; --udp talks to an ndkrs \
                 server such as `ndksmb serve`)"
            )
        } else {
            e
        }
    })?;
    println!(
        "connected to \\\\{}\\{} in {:.3} s: {}",
        server.ip(),
        cli.share,
        t0.elapsed().as_secs_f64(),
        s.ready_text()
    );
    let (max_read, max_write, max_rw) = s.limits();
    let limit = match cli.op {
        Op::Put { .. } => max_write,
        _ => max_read,
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
            _ => "read",
        },
        match cli.op {
            Op::Put { .. } => "WRITE",
            _ => "READ",
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

// ---- serve ----

fn serve(cli: &Cli) -> Result<(), String> {
    let Op::Serve {
        dir,
        connections,
        port,
    } = &cli.op
    else {
        return Err("not a serve command".into());
    };
    let (local, user, password) = common(cli)?;
    if cli.server.is_some() {
        return Err(
            "--server names the server to copy to or from; serve listens on --local".into(),
        );
    }
    let files = match dir {
        Some(d) => load_dir(d)?,
        None => BTreeMap::new(),
    };
    let loaded = files.len();
    let cfg = SmbServerConfig {
        local,
        port: *port,
        seed: u64::from(std::process::id()) ^ 0x7365_7276_6572,
        mtu: cli.mtu,
        timeout: Duration::from_secs(cli.timeout),
        smb2: ServerConfig {
            user,
            password,
            signing_algorithm: signing_alg::AES_GMAC,
            tree_path: format!("\\\\{local}\\{}", cli.share),
            max_io: 1 << 20,
            ..ServerConfig::default()
        },
        smbd: Config::default(),
        pcap: cli.pcap.clone(),
        adapter: None,
        token_xor: 0,
    };
    let server = SmbServer::start_with_files(cfg, files).map_err(|e| {
        format!(
            "{e} (serve binds UDP {local}:4791: is another ndkrs adapter or ndksmb serve there?)"
        )
    })?;
    println!(
        "serving \\\\{local}\\{} over SMB Direct: RoCEv2 on UDP {local}:4791, RDMA CM port {port}, \
         SMB 3.0 to 3.1.1 signed, {} file(s){}",
        cli.share,
        loaded,
        dir.as_ref()
            .map(|d| format!(" from {}", d.display()))
            .unwrap_or_default()
    );
    println!(
        "clients: ndksmb --udp --local <address> --server {local}{} --user <user> put|get ...",
        if *port == 445 {
            String::new()
        } else {
            format!(":{port}")
        }
    );
    let _ = std::io::stdout().flush();
    let mut ended = 0usize;
    loop {
        if connections.is_some_and(|n| ended >= n) {
            break;
        }
        let Ok(reports) = server.wait_connections(ended + 1, Duration::from_secs(1)) else {
            continue;
        };
        for r in reports.iter().skip(ended) {
            ended += 1;
            println!("connection {ended}: {}", conn_text(r));
        }
        if let Some(d) = dir {
            save_dir(d, &server.files())?;
        }
        let _ = std::io::stdout().flush();
    }
    let summary = server.stop()?;
    println!(
        "stopped after {} connection(s); {} refused",
        summary.connections.len(),
        summary.refused.len()
    );
    Ok(())
}

fn load_dir(d: &Path) -> Result<BTreeMap<String, Vec<u8>>, String> {
    let mut files = BTreeMap::new();
    let entries = fs::read_dir(d).map_err(|e| format!("--dir {}: {e}", d.display()))?;
    for e in entries {
        let e = e.map_err(|e| format!("--dir {}: {e}", d.display()))?;
        let path = e.path();
        if !path.is_file() {
            continue;
        }
        let Some(name) = e.file_name().to_str().map(str::to_string) else {
            continue;
        };
        let data = fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        files.insert(name, data);
    }
    Ok(files)
}

/// Writes every file whose name is a plain file name (no separators, not
/// `.` or `..`) into `d`.
fn save_dir(d: &Path, files: &BTreeMap<String, Vec<u8>>) -> Result<(), String> {
    for (name, data) in files {
        if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\\', '\0']) {
            eprintln!("ndksmb: serve: not saving {name:?}: not a plain file name");
            continue;
        }
        let path = d.join(name);
        fs::write(&path, data).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

/// One ended connection in words.
fn conn_text(r: &ConnReport) -> String {
    let why = match &r.ended {
        Some(End::Peer) => "the client disconnected".to_string(),
        Some(End::Requested) | Some(End::Stop) => "the server ended it".to_string(),
        Some(End::Smbd(reason)) => format!("MS-SMBD ended it ({reason:?})"),
        Some(End::Smb2(e)) => format!("a request was refused ({e:?})"),
        Some(End::Rdma { op, status }) => format!("{op} failed with {}", StatusText(*status)),
        Some(End::Local(e)) => e.clone(),
        None => "ended".to_string(),
    };
    let moved = |ops: &[interop::smb_server::RdmaOp]| {
        bytes_text(ops.iter().map(|o| u64::from(o.len)).sum::<u64>())
    };
    format!(
        "SMB {}, {} request(s), {} RDMA-read ({}), {} RDMA-written ({}); {why}",
        dialect_text(r.dialect),
        r.smb2_requests,
        r.reads.len(),
        moved(&r.reads),
        r.writes.len(),
        moved(&r.writes),
    )
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
        Op::Serve { .. } => return Err("serve moves no file".into()),
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

/// ndksmb's CM timing: [`quick_cm`] with each REQ given 1.07 s (response
/// timeout code 18) and four tries, so a server that does not answer fails
/// the connect in about 4.4 s, while a real server on a slow host (ksmbd in
/// an emulated VM needed more than quick_cm's 1.2 s in all) has time to
/// answer.
fn ndksmb_cm() -> CmConfig {
    CmConfig {
        cm_response_timeout: 18,
        max_cm_retries: 3,
        ..quick_cm()
    }
}
