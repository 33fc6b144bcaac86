//! SMB Direct over ndkrs against Linux ksmbd (issue 10).
//!
//! An SMB Direct client (`interop::smb`: crates/smbd's machines over an
//! ndk::abi adapter, through the NDK dispatch tables only) at 10.9.0.1
//! talks to ksmbd in the VM (10.9.0.2, ksmbd with its RDMA transport over
//! rdma_rxe) over two connections:
//! 1. path MTU 4096: an inline WRITE and READ of 9000 bytes, fragmented
//!    into several MS-SMBD messages each way; a keepalive after an idle
//!    period; LOGOFF; then the client's own NdkDisconnect.
//! 2. path MTU 1024: a file of more than 1 MiB written with RDMA-channel
//!    WRITEs and read back with RDMA-channel READs, first over regular MRs
//!    (RDMA_V1), then over fast-register MRs with remote invalidation
//!    (RDMA_V1_INVALIDATE), as the Windows client does; each file is checked
//!    inside the VM. Then ksmbd is stopped mid-session: the client's
//!    disconnect event must fire once, and NdkDisconnect must complete and
//!    flush every posted receive as STATUS_CANCELLED.
//!
//! The capture of UDP 4791 must show ksmbd's RDMA Reads, RDMA Writes and
//! Sends with Invalidate carrying the tokens of the client's registrations,
//! the fragments and the keepalive; tshark may mark no packet malformed
//! except for its SPNEGO rule on the server's NEGOTIATE response, which is
//! checked by decoding the same bytes again over TCP (see `spnego_marks`).
//!
//! Opt-in: NDKRS_INTEROP=1 and NDKRS_INTEROP_KSMBD=1, as root, after
//! tests/interop/setup.sh and tests/interop/setup-ksmbd.sh
//! (`tests/interop/run.sh --ksmbd` does all of it).

use std::collections::HashSet;
use std::fs;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use interop::env;
use interop::smb::{Session, SessionConfig, SessionTransport};
use interop::smb_scenario::{self, ensure, file_byte};
use interop::vm::{self, Capture, HOST_IP, Netns, Vm};
use smbd::smb2::dialect;
use smbd::smbd::conn::Config;

const VM_IP: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 2);
const VM_MAC: &str = "52:54:00:00:00:02";
/// The file: 1 MiB and a bit, so the last transfer is a partial one.
const LEN: usize = (1 << 20) + 12_345;
const NAME: &str = "ndkrs-smbd.bin";
const NAME2: &str = "ndkrs-smbd-frmr.bin";

/// The sha256 of `data` (summed on the host).
fn sha256_host(data: &[u8], work: &Path) -> Result<String, String> {
    vm::sha256_on_host(data, &work.join("ksmbd-expected.bin"))
}

/// The server's copy of `name` (in /srv/share) has the sha256 of `data`.
fn same_in_vm(e: &env::Env, vm: &Vm, name: &str, data: &[u8]) -> Result<(), String> {
    let want = sha256_host(data, &e.work)?;
    let o = vm.run(
        &format!("sha256sum /srv/share/{name}"),
        Duration::from_secs(30),
    )?;
    ensure(
        o.text.split_whitespace().next() == Some(want.as_str()),
        || format!("in the VM: {} want {want}", o.text.trim()),
    )
}

#[test]
fn ksmbd_smb_direct() {
    if !env::requested() {
        println!("ksmbd interop: SKIP: set NDKRS_INTEROP=1 (tests/interop/run.sh --ksmbd)");
        return;
    }
    if std::env::var("NDKRS_INTEROP_KSMBD").as_deref() != Ok("1") {
        println!("ksmbd interop: SKIP: set NDKRS_INTEROP_KSMBD=1 (tests/interop/run.sh --ksmbd)");
        return;
    }
    let mut e = match env::detect() {
        Ok(e) => e,
        Err(why) => {
            env::skip("ksmbd interop", &why);
            return;
        }
    };
    let ksmbd = match env::ksmbd() {
        Ok(k) => k,
        Err(why) => {
            env::skip("ksmbd interop", &why);
            return;
        }
    };
    e.initrd = ksmbd.initrd;
    if !e.initrd.exists() {
        env::skip(
            "ksmbd interop",
            &format!(
                "{} missing (run tests/interop/setup-ksmbd.sh)",
                e.initrd.display()
            ),
        );
        return;
    }
    match run(&e, &ksmbd.user, &ksmbd.password) {
        Ok(report) => println!("ksmbd interop: PASS\n{report}"),
        Err(err) => panic!("ksmbd interop: FAIL: {err}"),
    }
}

fn run(e: &env::Env, user: &str, pass: &str) -> Result<String, String> {
    let mut report = String::new();
    // A namespace of its own, so it never collides with a run of tests/rxe.rs.
    // Ethernet MTU 9000, so a connection may use path MTU 4096 (see
    // inline_session); the RDMA-channel session asks for 1024.
    let ns = Netns::create("ndkrs-ksmbd", 1, 9000)?;
    ns.enter()?;
    let t0 = Instant::now();
    let vm = Vm::boot(
        e,
        &ns,
        "ksmbd",
        "tap0",
        VM_MAC,
        VM_IP,
        9000,
        Duration::from_secs(180),
        Duration::from_secs(900),
    )?;
    let up = vm.run("sh /ksmbd-start", Duration::from_secs(90))?;
    ensure(up.text.contains("KSMBD_UP"), || {
        format!("ksmbd did not start:\n{}", up.text)
    })?;
    report += &format!(
        "  VM booted and ksmbd listening on RDMA CM port 445 after {:.1} s\n",
        t0.elapsed().as_secs_f64()
    );
    if std::env::var_os("NDKRS_KSMBD_DEBUG").is_some() {
        // ksmbd's own debug log into dmesg (shown on failure).
        vm.run(
            "echo all > /sys/class/ksmbd-control/debug",
            Duration::from_secs(10),
        )?;
    }
    // The user-facing tool first, outside the capture (whose checks count
    // the RDMA traffic of the session below exactly).
    cli_round(e, &vm, user, pass, &mut report)?;
    let pcap = e.work.join("ksmbd.pcap");
    let cap = match e.capture_tool {
        Some(tool) => Some(Capture::start(&ns, tool, &pcap)?),
        None => None,
    };
    let res = session(e, &vm, user, pass, &mut report);
    let dmesg = vm
        .run(
            "dmesg | grep -i -E 'ksmbd|smb_direct' | tail -n 40; echo ksmbd-tools:; tail -n 20 /tmp/syslog",
            Duration::from_secs(10),
        )
        .map(|o| o.text)
        .unwrap_or_default();
    let path = cap.map(Capture::stop);
    let tokens = match res {
        Ok(t) => t,
        Err(err) => return Err(format!("{err}\n  VM dmesg (ksmbd):\n{dmesg}")),
    };
    let Some(path) = path else {
        report += "  no capture tool: capture checks skipped\n";
        return Ok(report);
    };
    if !e.tshark {
        report += "  no tshark: capture checks skipped\n";
        return Ok(report);
    }
    let total = vm::tshark(&path, &[])?.lines().count();
    let marked = vm::fields(&path, "_ws.malformed", &["frame.number"])?;
    let spnego_note = spnego_marks(&path, &e.work, &marked)?;
    let hint_marks = marked.len();
    // MS-SMBD fragments both ways (the inline session), and the client's
    // keepalive: an empty message asking for a response, which ksmbd answers.
    let frags = |src: Ipv4Addr| {
        vm::fields(
            &path,
            &format!("ip.src=={src} && smb_direct.remaining_length > 0"),
            &["frame.number"],
        )
        .map(|r| r.len())
    };
    let (frag_out, frag_in) = (frags(HOST_IP)?, frags(VM_IP)?);
    ensure(frag_out > 0 && frag_in > 0, || {
        format!(
            "MS-SMBD fragments in the capture: {frag_out} from the client, {frag_in} from ksmbd"
        )
    })?;
    let keepalives = vm::fields(
        &path,
        &format!(
            "ip.src=={HOST_IP} && smb_direct.flags.response_requested==1 && smb_direct.data_length==0"
        ),
        &["frame.number"],
    )?;
    ensure(!keepalives.is_empty(), || {
        "no keepalive in the capture".into()
    })?;
    // ksmbd's RDMA Read requests (opcode 12) and RDMA Writes (6..=10, the
    // first/only ones carrying a RETH) name the client's remote tokens.
    let reads = vm::fields(
        &path,
        &format!("ip.src=={VM_IP} && infiniband.bth.opcode==12"),
        &["infiniband.reth.r_key", "infiniband.reth.dmalen"],
    )?;
    let read_resp = vm::fields(
        &path,
        &format!("ip.src=={HOST_IP} && infiniband.bth.opcode>=13 && infiniband.bth.opcode<=16"),
        &["frame.number"],
    )?;
    let writes = vm::fields(
        &path,
        &format!(
            "ip.src=={VM_IP} && (infiniband.bth.opcode==6 || infiniband.bth.opcode==10 || infiniband.bth.opcode==11)"
        ),
        &["infiniband.reth.r_key", "infiniband.reth.dmalen"],
    )?;
    let write_pkts = vm::fields(
        &path,
        &format!("ip.src=={VM_IP} && infiniband.bth.opcode>=6 && infiniband.bth.opcode<=11"),
        &["frame.number"],
    )?;
    let keys = |rows: &[Vec<String>]| -> HashSet<u32> {
        rows.iter()
            .filter_map(|r| r.first())
            // tshark lists the IETH key twice ("k,k").
            .filter_map(|k| k.split(',').next())
            .filter_map(|k| u32::from_str_radix(k.trim_start_matches("0x"), 16).ok())
            .collect()
    };
    let bytes = |rows: &[Vec<String>]| -> u64 {
        rows.iter()
            .filter_map(|r| r.get(1))
            .filter_map(|n| n.parse::<u64>().ok())
            .sum()
    };
    let (wtok, rtok, invalidated) = tokens;
    ensure(!reads.is_empty() && keys(&reads) == wtok, || {
        format!("RDMA Read requests from ksmbd: {reads:?}, want r_keys {wtok:x?}")
    })?;
    ensure(bytes(&reads) == 2 * LEN as u64, || {
        format!("ksmbd RDMA-read {} bytes, want {}", bytes(&reads), 2 * LEN)
    })?;
    ensure(!writes.is_empty() && keys(&writes) == rtok, || {
        format!("RDMA Writes from ksmbd: {writes:?}, want r_keys {rtok:x?}")
    })?;
    ensure(bytes(&writes) == 2 * LEN as u64, || {
        format!(
            "ksmbd RDMA-wrote {} bytes, want {}",
            bytes(&writes),
            2 * LEN
        )
    })?;
    // Send with Invalidate (Last 22, Only 23) naming the fast-register
    // tokens, as the client's Receive-and-Invalidate completions did.
    let inv = vm::fields(
        &path,
        &format!("ip.src=={VM_IP} && (infiniband.bth.opcode==22 || infiniband.bth.opcode==23)"),
        &["infiniband.ieth"],
    )?;
    ensure(keys(&inv) == invalidated, || {
        format!("Send with Invalidate from ksmbd: {inv:?}, want {invalidated:x?}")
    })?;
    report += &format!(
        "  capture {}: {total} packets; {hint_marks} tshark malformed mark(s), {spnego_note}; \
         {frag_out} MS-SMBD fragments from the client and {frag_in} from ksmbd \
         (remaining length > 0); {} keepalive(s) from the client; ksmbd sent {} RDMA Read requests \
         ({} bytes, r_keys {wtok:x?}) answered by {} read response packets, {} RDMA \
         Write packets ({} messages, {} bytes, r_keys {rtok:x?}), and {} Send with \
         Invalidate packets naming {invalidated:x?}\n",
        path.display(),
        keepalives.len(),
        reads.len(),
        bytes(&reads),
        read_resp.len(),
        write_pkts.len(),
        writes.len(),
        bytes(&writes),
        inv.len(),
    );
    Ok(report)
}

/// The user-facing tool against the same server: `ndksmb put` of a 3 MiB
/// file in 1 MiB RDMA-channel WRITEs with remote invalidation, `ndksmb get`
/// of it back in 1 MiB READs over regular MRs, both byte-exact, and the copy
/// on the server checked in the VM.
fn cli_round(
    e: &env::Env,
    vm: &Vm,
    user: &str,
    pass: &str,
    report: &mut String,
) -> Result<(), String> {
    let len = 3 * (1 << 20) + 4_321;
    let data: Vec<u8> = (0..len).map(|i| file_byte(i * 3 + 11)).collect();
    let local = e.work.join("ndksmb-put.bin");
    let back = e.work.join("ndksmb-get.bin");
    fs::write(&local, &data).map_err(|err| err.to_string())?;
    let ndksmb = |args: &[&str]| -> Result<String, String> {
        let out = Command::new(env!("CARGO_BIN_EXE_ndksmb"))
            .args([
                "--local",
                &HOST_IP.to_string(),
                "--server",
                &VM_IP.to_string(),
            ])
            .args(["--user", user, "--chunk", "1048576"])
            .args(args)
            .env("NDKSMB_PASSWORD", pass)
            .output()
            .map_err(|err| format!("running ndksmb: {err}"))?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        if out.status.success() {
            Ok(text)
        } else {
            Err(format!("ndksmb {args:?}: {}\n{text}", out.status))
        }
    };
    let local_s = local.display().to_string();
    let back_s = back.display().to_string();
    let put = ndksmb(&["--invalidate", "put", &local_s, "ndksmb.bin"])?;
    let get = ndksmb(&["get", "ndksmb.bin", &back_s])?;
    let got = fs::read(&back).map_err(|err| err.to_string())?;
    ensure(got == data, || {
        format!(
            "ndksmb get returned {} bytes that differ from the {len} put",
            got.len()
        )
    })?;
    same_in_vm(e, vm, "ndksmb.bin", &data)?;
    let line = |t: &str, w: &str| {
        t.lines()
            .find(|l| l.contains(w))
            .unwrap_or_default()
            .trim()
            .to_owned()
    };
    *report += &format!(
        "  ndksmb: put --invalidate: {}; get: {}; {len} bytes byte-exact, \
         /srv/share/ndksmb.bin sha256 matches\n",
        line(&put, "wrote"),
        line(&get, "read ")
    );
    Ok(())
}

/// Checks every frame tshark marks malformed. The only one expected is
/// the server's SMB2 NEGOTIATE response: its security blob is MS-SPNG's
/// NegTokenInit2, whose field [3] is negHints, and Wireshark's SPNEGO
/// dissector decodes a negTokenInit as NegTokenInit2 only when the packet
/// is TCP from a port below 1024 (asn1/spnego/spnego.cnf), so over RoCE it
/// reads [3] as RFC 4178's mechListMIC OCTET STRING and marks the packet.
/// Each marked frame's SMB2 bytes are therefore re-framed onto TCP from
/// port 445 (NetBIOS session framing, text2pcap) and dissected again: that
/// decode must be free of malformed marks and show the hint. Anything else
/// marked fails the test.
fn spnego_marks(path: &Path, work: &Path, marked: &[Vec<String>]) -> Result<String, String> {
    if marked.is_empty() {
        return Ok("none".into());
    }
    for row in marked {
        let n = row.first().map(String::as_str).unwrap_or_default();
        let only = format!("frame.number=={n}");
        let negotiate = vm::fields(
            path,
            &format!(
                "{only} && ip.src=={VM_IP} && smb2.cmd==0 && smb2.flags.response==1 && spnego"
            ),
            &["frame.number"],
        )?;
        ensure(!negotiate.is_empty(), || {
            format!("frame {n} of {} is marked malformed", path.display())
        })?;
        let json = vm::tshark(path, &["-Y", &only, "-T", "json", "-x"])?;
        let hex = json
            .split("\"smb2_raw\"")
            .nth(1)
            .and_then(|t| t.split('"').nth(1))
            .ok_or_else(|| format!("frame {n}: no SMB2 bytes in tshark's JSON"))?;
        let mut msg = Vec::with_capacity(hex.len() / 2 + 4);
        msg.extend_from_slice(&(hex.len() as u32 / 2).to_be_bytes());
        for i in (0..hex.len()).step_by(2) {
            let b = hex
                .get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            msg.push(b.ok_or_else(|| format!("frame {n}: bad hex from tshark"))?);
        }
        let dump: String = msg
            .chunks(16)
            .enumerate()
            .map(|(i, c)| {
                let bytes: Vec<String> = c.iter().map(|b| format!("{b:02x}")).collect();
                format!("{:06x} {}\n", i * 16, bytes.join(" "))
            })
            .collect();
        let txt = work.join("ksmbd-negotiate.txt");
        let tcp = work.join("ksmbd-negotiate-tcp.pcap");
        fs::write(&txt, dump).map_err(|e| e.to_string())?;
        vm::sh(
            Command::new("text2pcap")
                .args(["-q", "-4", &format!("{VM_IP},{HOST_IP}"), "-T", "445,49152"])
                .arg(&txt)
                .arg(&tcp),
        )
        .map_err(|e| format!("text2pcap (wireshark-common): {e}"))?;
        let again = vm::tshark(&tcp, &["-Y", "_ws.malformed"])?;
        let hint = vm::fields(&tcp, "smb2.cmd==0", &["spnego.hintName"])?;
        ensure(
            again.trim().is_empty() && !hint.concat().concat().is_empty(),
            || {
                format!(
                    "frame {n} re-framed onto TCP 445 ({}): malformed {again:?}, negHints {hint:?}",
                    tcp.display()
                )
            },
        )?;
    }
    Ok(
        "all on ksmbd's NEGOTIATE response, whose SPNEGO NegTokenInit2 tshark decodes as such \
         only over TCP from a port below 1024; the same SMB2 bytes re-framed onto TCP port 445 \
         decode with 0 malformed marks and show negHints"
            .into(),
    )
}

/// Remote tokens the server used: RDMA Read keys, RDMA Write keys, and
/// the keys it invalidated.
type Tokens = (HashSet<u32>, HashSet<u32>, HashSet<u32>);

/// The session part: both transfers, the checks in the VM, the stop of
/// ksmbd and NdkDisconnect.
fn session_config(user: &str, pass: &str, seed: u64, mtu: u32, smbd: Config) -> SessionConfig {
    SessionConfig {
        local: HOST_IP,
        transport: SessionTransport::Raw,
        server: SocketAddrV4::new(VM_IP, 445),
        share: "share".into(),
        user: user.into(),
        password: pass.into(),
        seed,
        mtu,
        pcap: None,
        timeout: Duration::from_secs(60),
        dialects: vec![dialect::SMB300, dialect::SMB302, dialect::SMB311],
        smbd,
    }
}

/// The size of the inline transfer: several MS-SMBD fragments each way
/// (ksmbd's messages carry at most 1364 - 24 bytes of data).
const INLINE_LEN: usize = 9_000;
const NAME3: &str = "ndkrs-smbd-inline.bin";
/// Idle time before the client's keepalive, and how long the test idles.
const IDLE: Duration = Duration::from_millis(800);
const IDLE_WAIT: Duration = Duration::from_millis(2_000);

/// A first connection for what the RDMA channel does not need: an inline
/// WRITE and READ large enough to be fragmented both ways, a keepalive
/// after an idle period, LOGOFF, then the client's own NdkDisconnect
/// (a DREQ that ksmbd answers).
///
/// It runs at path MTU 4096 so that every 1364-byte MS-SMBD message is one
/// RC SEND Only packet: tshark's InfiniBand dissector does not reassemble
/// SEND First/Middle/Last, so at MTU 1024 the SMB Direct dissector would
/// reassemble truncated fragments and mark the READ response malformed.
/// (Multi-packet SENDs against rxe are covered by tests/rxe.rs.)
fn inline_session(
    e: &env::Env,
    vm: &Vm,
    user: &str,
    pass: &str,
    report: &mut String,
) -> Result<(), String> {
    let smbd = Config {
        idle_timeout: IDLE,
        ..Config::default()
    };
    let mut s = Session::connect(session_config(user, pass, 0x5eed_0011, 4096, smbd))?;
    let data: Vec<u8> = (0..INLINE_LEN).map(|i| file_byte(i * 7 + 3)).collect();
    let trip = smb_scenario::inline_round_trip(&mut s, NAME3, &data)?;
    same_in_vm(e, vm, NAME3, &data)?;
    trip.ensure_fragmented()?;
    *report += &format!(
        "  inline: {INLINE_LEN} bytes written in one SMB2 WRITE sent as {} MS-SMBD fragments, \
         read back byte-exact from one READ response reassembled from {} fragments, in {:.3} \
         s; /srv/share/{NAME3} sha256 matches\n",
        trip.write_messages,
        trip.read_messages,
        trip.took.as_secs_f64()
    );
    // Keepalive: idle past the idle timer; the request must be answered
    // (the connection stays up) and the session must still work after it.
    let (ka_sent, ka_recv) = smb_scenario::keepalive(&mut s, IDLE_WAIT)?;
    s.logoff()?;
    let posted = s.receives_posted();
    let cancelled0 = s.stats.receives_cancelled;
    let received0 = s.stats.smbd_received;
    let took = s.ndk_disconnect()?;
    let flushed = s.stats.receives_cancelled - cancelled0;
    // A message ksmbd sent before it saw the DREQ may complete one of them
    // first; every receive completes and none is left posted.
    let arrived = s.stats.smbd_received - received0;
    ensure(
        flushed > 0 && flushed + arrived >= posted && s.receives_posted() == 0,
        || {
            format!(
                "client NdkDisconnect flushed {flushed} of {posted} receives ({arrived} \
                 completed with a message first, {} still posted)",
                s.receives_posted()
            )
        },
    )?;
    ensure(s.stats.failed.is_empty(), || {
        format!("failed completions: {:?}", s.stats.failed)
    })?;
    *report += &format!(
        "  idle {:.1} s with a {:.1} s idle timer: {ka_sent} keepalive(s) (RESPONSE_REQUESTED) \
         sent, {ka_recv} answered by ksmbd; LOGOFF; the client's NdkDisconnect (DREQ, DREP) \
         completed in {:.1} ms and flushed {flushed} of its {posted} receives as STATUS_CANCELLED ({arrived} completed with a message first); {} \
         disconnect event(s)\n",
        IDLE_WAIT.as_secs_f64(),
        IDLE.as_secs_f64(),
        took.as_secs_f64() * 1e3,
        s.disconnect_events(),
    );
    s.close()?;
    *report += "  closed object by object through the dispatch tables (connector, QP, CQ, MRs, PD): 0 provider objects left\n";
    Ok(())
}

fn session(
    e: &env::Env,
    vm: &Vm,
    user: &str,
    pass: &str,
    report: &mut String,
) -> Result<Tokens, String> {
    inline_session(e, vm, user, pass, report)?;
    let t = Instant::now();
    let mut s = Session::connect(session_config(
        user,
        pass,
        0x5eed_0010,
        1024,
        Config::default(),
    ))?;
    let (max_read, max_write, max_rw) = s.limits();
    *report += &format!(
        "  connected (RDMA CM, MS-SMBD negotiate, SMB2 negotiate/session setup/tree \
         connect) in {:.2} s: {}; MS-SMBD max read/write {max_rw}\n",
        t.elapsed().as_secs_f64(),
        s.ready_text()
    );
    let chunk = (max_read.min(max_write).min(max_rw) as usize).min(LEN);
    ensure(chunk > 0, || "no transfer size negotiated".into())?;
    let data: Vec<u8> = (0..LEN).map(file_byte).collect();
    let trip = smb_scenario::rdma_round_trip(&mut s, NAME, &data, chunk)?;
    let (wt, rt) = (trip.write_time, trip.read_time);
    *report += &format!(
        "  {LEN} bytes written in {} RDMA-channel WRITE(s) of up to {chunk} bytes in {:.2} s \
         ({:.2} MB/s), read back byte-exact in {} RDMA-channel READ(s) in {:.2} s ({:.2} MB/s)\n",
        trip.writes,
        wt.as_secs_f64(),
        LEN as f64 / wt.as_secs_f64() / 1e6,
        trip.reads,
        rt.as_secs_f64(),
        LEN as f64 / rt.as_secs_f64() / 1e6,
    );

    // The file as the server has it.
    let want = sha256_host(&data, &e.work)?;
    let (size, sum) = vm.size_and_sha256(&format!("/srv/share/{NAME}"))?;
    ensure(size == LEN.to_string() && sum == want, || {
        format!("in the VM: size {size} sha256 {sum}; want {LEN} {want}")
    })?;
    *report += &format!("  in the VM: /srv/share/{NAME} is {size} bytes, sha256 {sum} (matches)\n");

    // The same with fast-register MRs and remote invalidation (RDMA_V1_INVALIDATE),
    // as the Windows SMB client moves data: a new registration per transfer,
    // which the server's Send with Invalidate ends. Here one transfer each
    // way, of the whole file.
    let data2: Vec<u8> = data.iter().map(|b| b ^ 0xA5).collect();
    let fast = smb_scenario::fast_register_round_trip(&mut s, NAME2, &data2, LEN)?;
    same_in_vm(e, vm, NAME2, &data2)?;
    *report += &format!(
        "  fast-register MRs with remote invalidation: {LEN} bytes written and read back \
         byte-exact (NdkFastRegister + RDMA_V1_INVALIDATE WRITE + NdkFastRegister + \
         RDMA_V1_INVALIDATE READ) in {:.2} s; ksmbd's Send with Invalidate ended tokens \
         {:x?} (Receive-and-Invalidate completions); /srv/share/{NAME2} sha256 matches\n",
        fast.took.as_secs_f64(),
        s.invalidated()
    );
    let mut wtok = HashSet::from([s.region(trip.src).token()]);
    let mut rtok = HashSet::from([s.region(trip.dst).token()]);
    wtok.extend(&fast.write_tokens);
    rtok.extend(&fast.read_tokens);
    let invalidated = fast.write_tokens.iter().chain(&fast.read_tokens).copied();
    let tokens = (wtok, rtok, invalidated.collect());

    // Stop the server mid-session (tree still connected).
    let t = Instant::now();
    let stop = vm.run("ksmbd.control -s", Duration::from_secs(30))?;
    s.wait_peer_disconnect(Duration::from_secs(60))
        .map_err(|err| format!("after `ksmbd.control -s` ({}): {err}", stop.text.trim()))?;
    let seen = t.elapsed();
    let flush = smb_scenario::ndk_disconnect_after_peer(&mut s)?;
    // Anything late would show now.
    std::thread::sleep(Duration::from_millis(500));
    flush.check(&s)?;
    *report += &format!(
        "  ksmbd stopped: disconnect event after {:.2} s (exactly 1 event), {:?}; NdkDisconnect \
         completed in {:.1} ms and flushed all {} pending receives as STATUS_CANCELLED \
         (none before it); MS-SMBD messages: {} sent, {} received\n",
        seen.as_secs_f64(),
        s.ended,
        flush.took.as_secs_f64() * 1e3,
        flush.posted,
        s.stats.smbd_sent,
        s.stats.smbd_received,
    );
    s.close()?;
    *report += "  closed object by object through the dispatch tables (connector, QP, CQ, MRs, PD): 0 provider objects left\n";
    Ok(tokens)
}
