//! SMB Direct over ndkrs against Linux ksmbd (issue 10).
//!
//! An SMB Direct client (`interop::smb`: crates/smbd's machines over an
//! ndk::abi adapter, through the NDK dispatch tables only) at 10.9.0.1
//! writes a file of more than 1 MiB to ksmbd's share in the VM (10.9.0.2,
//! ksmbd with its RDMA transport over rdma_rxe) with RDMA-channel WRITEs,
//! reads it back with RDMA-channel READs, and the file is checked inside
//! the VM; first over regular MRs (RDMA_V1), then over fast-register MRs
//! with remote invalidation (RDMA_V1_INVALIDATE), as the Windows client
//! does. Then ksmbd is stopped mid-session: the client's disconnect event
//! must fire once, and NdkDisconnect must complete and flush every posted
//! receive as STATUS_CANCELLED. The capture of UDP 4791 must show ksmbd's
//! RDMA Reads, RDMA Writes and Sends with Invalidate carrying the tokens of
//! the client's registrations, and tshark may mark no packet malformed but
//! ksmbd's NEGOTIATE response (see the check).
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
use interop::smb::{Session, SessionConfig};
use interop::vm::{self, Capture, HOST_IP, Netns, Vm};
use smbd::smb2::dialect;

const VM_IP: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 2);
const VM_MAC: &str = "52:54:00:00:00:02";
/// The file: 1 MiB and a bit, so the last transfer is a partial one.
const LEN: usize = (1 << 20) + 12_345;
const NAME: &str = "ndkrs-smbd.bin";
const NAME2: &str = "ndkrs-smbd-frmr.bin";

fn pattern(i: usize) -> u8 {
    (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[2] ^ (i >> 13) as u8
}

/// KEY=value lines of setup-ksmbd.sh's description.
fn ksmbd_env() -> Result<Vec<(String, String)>, String> {
    let dir = std::env::var("NDKRS_INTEROP_DIR").unwrap_or_else(|_| env::DEFAULT_DIR.into());
    let p = Path::new(&dir).join("ksmbd.env");
    let text = fs::read_to_string(&p)
        .map_err(|e| format!("no {} ({e}): run tests/interop/setup-ksmbd.sh", p.display()))?;
    Ok(text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect())
}

fn sha256_host(data: &[u8], work: &Path) -> Result<String, String> {
    let p = work.join("ksmbd-expected.bin");
    fs::write(&p, data).map_err(|e| e.to_string())?;
    let out = vm::sh(Command::new("sha256sum").arg(&p))?;
    Ok(out.split_whitespace().next().unwrap_or_default().to_owned())
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
            println!("ksmbd interop: SKIP: {why}");
            return;
        }
    };
    let kv = match ksmbd_env() {
        Ok(kv) => kv,
        Err(why) => {
            println!("ksmbd interop: SKIP: {why}");
            return;
        }
    };
    let get = |k: &str| {
        kv.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    e.initrd = get("INITRD").into();
    if !e.initrd.exists() {
        println!(
            "ksmbd interop: SKIP: {} missing (run tests/interop/setup-ksmbd.sh)",
            e.initrd.display()
        );
        return;
    }
    match run(&e, &get("SMB_USER"), &get("SMB_PASS")) {
        Ok(report) => println!("ksmbd interop: PASS\n{report}"),
        Err(err) => panic!("ksmbd interop: FAIL: {err}"),
    }
}

fn ensure(cond: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if cond { Ok(()) } else { Err(what()) }
}

fn run(e: &env::Env, user: &str, pass: &str) -> Result<String, String> {
    let mut report = String::new();
    // A namespace of its own, so it never collides with a run of tests/rxe.rs.
    let ns = Netns::create("ndkrs-ksmbd", 1, 1500)?;
    ns.enter()?;
    let t0 = Instant::now();
    let vm = Vm::boot(
        e,
        &ns,
        "ksmbd",
        "tap0",
        VM_MAC,
        VM_IP,
        1500,
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
    let malformed = vm::tshark(&path, &["-Y", "_ws.malformed"])?;
    // tshark reads field [3] of ksmbd's SPNEGO NegTokenInit (the negHints of
    // Microsoft's NegTokenInit2) as RFC 4178's mechListMIC and flags the
    // server's NEGOTIATE response; that is the only mark allowed.
    let spnego_hint = format!(
        "_ws.malformed && ip.src=={VM_IP} && smb2.cmd==0 && smb2.flags.response==1 && spnego"
    );
    let other = vm::tshark(
        &path,
        &["-Y", &format!("_ws.malformed && !({spnego_hint})")],
    )?;
    ensure(other.trim().is_empty(), || {
        format!("malformed packets in {}:\n{other}", path.display())
    })?;
    let hint_marks = malformed.lines().count();
    ensure(hint_marks <= 1, || format!("malformed: {malformed}"))?;
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
        "  capture {}: {total} packets, {hint_marks} tshark malformed mark(s), all on ksmbd's \
         SPNEGO NegTokenInit2 hint in its NEGOTIATE response, none elsewhere; ksmbd sent {} RDMA Read requests \
         ({} bytes, r_keys {wtok:x?}) answered by {} read response packets, {} RDMA \
         Write packets ({} messages, {} bytes, r_keys {rtok:x?}), and {} Send with \
         Invalidate packets naming {invalidated:x?}\n",
        path.display(),
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

/// Remote tokens the server used: RDMA Read keys, RDMA Write keys, and
/// the keys it invalidated.
type Tokens = (HashSet<u32>, HashSet<u32>, HashSet<u32>);

/// The session part: both transfers, the checks in the VM, the stop of
/// ksmbd and NdkDisconnect.
fn session(
    e: &env::Env,
    vm: &Vm,
    user: &str,
    pass: &str,
    report: &mut String,
) -> Result<Tokens, String> {
    let t = Instant::now();
    let mut s = Session::connect(SessionConfig {
        local: HOST_IP,
        server: SocketAddrV4::new(VM_IP, 445),
        share: "share".into(),
        user: user.into(),
        password: pass.into(),
        seed: 0x5eed_0010,
        mtu: 1024,
        pcap: None,
        timeout: Duration::from_secs(60),
        dialects: vec![dialect::SMB300, dialect::SMB302, dialect::SMB311],
    })?;
    let (max_read, max_write, max_rw) = s.limits();
    *report += &format!(
        "  connected (RDMA CM, MS-SMBD negotiate, SMB2 negotiate/session setup/tree \
         connect) in {:.2} s: {}; MS-SMBD max read/write {max_rw}\n",
        t.elapsed().as_secs_f64(),
        s.ready_text()
    );
    let chunk = (max_read.min(max_write).min(max_rw) as usize).min(LEN);
    ensure(chunk > 0, || "no transfer size negotiated".into())?;
    let src = s.register(LEN)?;
    let dst = s.register(LEN)?;
    let data: Vec<u8> = (0..LEN).map(pattern).collect();
    s.region_mut(src).bytes_mut().copy_from_slice(&data);
    let fid = s.create(NAME)?;

    let t = Instant::now();
    let mut ops = 0;
    let mut off = 0;
    while off < LEN {
        let n = chunk.min(LEN - off);
        let got = s.write_rdma(fid, off as u64, src, off, n)?;
        ensure(got as usize == n, || {
            format!("WRITE at {off}: {got} of {n} bytes")
        })?;
        off += n;
        ops += 1;
    }
    let wt = t.elapsed();
    let t = Instant::now();
    let mut rops = 0;
    let mut off = 0;
    while off < LEN {
        let n = chunk.min(LEN - off);
        let got = s.read_rdma(fid, off as u64, dst, off, n)?;
        ensure(got as usize == n, || {
            format!("READ at {off}: {got} of {n} bytes")
        })?;
        off += n;
        rops += 1;
    }
    let rt = t.elapsed();
    let back = s.region(dst).bytes();
    if let Some(i) = (0..LEN).find(|&i| back[i] != data[i]) {
        return Err(format!("read-back differs first at byte {i}"));
    }
    s.close_file(fid)?;
    *report += &format!(
        "  {LEN} bytes written in {ops} RDMA-channel WRITE(s) of up to {chunk} bytes in {:.2} s \
         ({:.2} MB/s), read back byte-exact in {rops} RDMA-channel READ(s) in {:.2} s ({:.2} MB/s)\n",
        wt.as_secs_f64(),
        LEN as f64 / wt.as_secs_f64() / 1e6,
        rt.as_secs_f64(),
        LEN as f64 / rt.as_secs_f64() / 1e6,
    );

    // The file as the server has it.
    let want = sha256_host(&data, &e.work)?;
    let o = vm.run(
        &format!("stat -c %s /srv/share/{NAME}; sha256sum /srv/share/{NAME}"),
        Duration::from_secs(30),
    )?;
    let mut lines = o.text.lines();
    let size = lines.next().unwrap_or_default().trim().to_owned();
    let sum = lines
        .next()
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_default()
        .to_owned();
    ensure(size == LEN.to_string() && sum == want, || {
        format!("in the VM: size {size} sha256 {sum}; want {LEN} {want}")
    })?;
    *report += &format!("  in the VM: /srv/share/{NAME} is {size} bytes, sha256 {sum} (matches)\n");

    // The same with fast-register MRs and remote invalidation (RDMA_V1_INVALIDATE),
    // as the Windows SMB client moves data: a new registration per transfer,
    // which the server's Send with Invalidate ends.
    let mut wtok = HashSet::from([s.region(src).token()]);
    let mut rtok = HashSet::from([s.region(dst).token()]);
    let fsrc = s.register_fast(LEN)?;
    let fdst = s.register_fast(LEN)?;
    let data2: Vec<u8> = data.iter().map(|b| b ^ 0xA5).collect();
    s.region_mut(fsrc).bytes_mut().copy_from_slice(&data2);
    let fid = s.create(NAME2)?;
    let t = Instant::now();
    let tok = s.fast_register(fsrc)?;
    let got = s.write_rdma(fid, 0, fsrc, 0, LEN)?;
    ensure(got as usize == LEN, || {
        format!("invalidating WRITE: {got} of {LEN} bytes")
    })?;
    wtok.insert(tok);
    let tok2 = s.fast_register(fdst)?;
    let got = s.read_rdma(fid, 0, fdst, 0, LEN)?;
    ensure(got as usize == LEN, || {
        format!("invalidating READ: {got} of {LEN} bytes")
    })?;
    rtok.insert(tok2);
    let ft = t.elapsed();
    ensure(s.region(fdst).bytes() == &data2[..], || {
        "fast-register read-back differs".into()
    })?;
    ensure(s.invalidated() == [tok, tok2], || {
        format!(
            "Receive-and-Invalidate tokens {:x?}, want [{tok:#x}, {tok2:#x}]",
            s.invalidated()
        )
    })?;
    s.close_file(fid)?;
    let want2 = sha256_host(&data2, &e.work)?;
    let o = vm.run(
        &format!("sha256sum /srv/share/{NAME2}"),
        Duration::from_secs(30),
    )?;
    ensure(
        o.text.split_whitespace().next() == Some(want2.as_str()),
        || format!("in the VM: {} want {want2}", o.text.trim()),
    )?;
    *report += &format!(
        "  fast-register MRs with remote invalidation: {LEN} bytes written and read back \
         byte-exact (NdkFastRegister + RDMA_V1_INVALIDATE WRITE + NdkFastRegister + \
         RDMA_V1_INVALIDATE READ) in {:.2} s; ksmbd's Send with Invalidate ended tokens \
         {:x?} (Receive-and-Invalidate completions); /srv/share/{NAME2} sha256 matches\n",
        ft.as_secs_f64(),
        s.invalidated()
    );
    let tokens = (wtok, rtok, HashSet::from([tok, tok2]));

    // Stop the server mid-session (tree still connected).
    let t = Instant::now();
    let stop = vm.run("ksmbd.control -s", Duration::from_secs(30))?;
    s.wait_peer_disconnect(Duration::from_secs(60))
        .map_err(|err| format!("after `ksmbd.control -s` ({}): {err}", stop.text.trim()))?;
    let seen = t.elapsed();
    // Whatever the CQ holds before NdkDisconnect: the receives must still
    // be pending (the flush is NdkDisconnect's).
    std::thread::sleep(Duration::from_millis(200));
    s.drain();
    let cancelled_before = s.stats.receives_cancelled;
    let posted = s.receives_posted();
    let took = s.ndk_disconnect()?;
    // Anything late would show now.
    std::thread::sleep(Duration::from_millis(500));
    let events = s.disconnect_events();
    ensure(events == 1, || {
        format!("{events} disconnect events, want 1")
    })?;
    let flushed = s.stats.receives_cancelled - cancelled_before;
    ensure(
        cancelled_before == 0 && posted > 0 && flushed == posted && s.receives_posted() == 0,
        || {
            format!(
                "{cancelled_before} receives cancelled before NdkDisconnect, {posted} pending at \
                 it, {flushed} cancelled by it, {} still pending",
                s.receives_posted()
            )
        },
    )?;
    ensure(s.stats.failed.is_empty(), || {
        format!("failed completions: {:?}", s.stats.failed)
    })?;
    *report += &format!(
        "  ksmbd stopped: disconnect event after {:.2} s (exactly 1 event), {:?}; NdkDisconnect \
         completed in {:.1} ms and flushed all {posted} pending receives as STATUS_CANCELLED \
         (none before it); MS-SMBD messages: {} sent, {} received\n",
        seen.as_secs_f64(),
        s.ended,
        took.as_secs_f64() * 1e3,
        s.stats.smbd_sent,
        s.stats.smbd_received,
    );
    s.close();
    Ok(tokens)
}
