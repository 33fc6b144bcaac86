//! The namespace, the Linux rxe VM, and captures.
//!
//! Everything lives in one network namespace made here: a bridge `br0`
//! with ndkrs's address ([`HOST_IP`]), one tap per VM, and the VMs. No
//! traffic leaves it. Every object removes itself on drop (qemu killed,
//! capture stopped, namespace deleted), also when a scenario fails or
//! panics.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use nix::sched::{CloneFlags, setns};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::env::Env;

/// ndkrs's address: the bridge's.
pub const HOST_IP: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 1);
/// The bridge's MAC (fixed: the VM gets a permanent neighbour entry for it).
pub const HOST_MAC: &str = "02:00:0a:09:00:01";
/// The TCP port of the VM's command server (vm-ctl).
pub const CTL_PORT: u16 = 7000;

/// Runs a command, failing with its output if it fails.
pub fn sh(cmd: &mut Command) -> Result<String, String> {
    let out = cmd.output().map_err(|e| format!("running {cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A network namespace with the bridge and taps of the harness.
#[derive(Debug)]
pub struct Netns {
    name: String,
    taps: Vec<String>,
}

impl Netns {
    /// Makes namespace `name` (replacing a stale one) with bridge `br0` at
    /// [`HOST_IP`]/24 and taps `tap0..tapN`, all at `mtu`.
    pub fn create(name: &str, taps: usize, mtu: u32) -> Result<Netns, String> {
        let _ = Command::new("ip")
            .args(["netns", "del", name])
            .stderr(Stdio::null())
            .status();
        sh(Command::new("ip").args(["netns", "add", name]))?;
        let ns = Netns {
            name: name.to_owned(),
            taps: (0..taps).map(|i| format!("tap{i}")).collect(),
        };
        let mut script = format!(
            "set -e; ip link set lo up; ip link add br0 type bridge; \
             ip link set br0 address {HOST_MAC}; ip addr add {HOST_IP}/24 dev br0; "
        );
        for t in &ns.taps {
            script += &format!("ip tuntap add dev {t} mode tap; ip link set {t} master br0; ");
        }
        sh(ns.exec("sh").args(["-c", &script]))?;
        ns.set_mtu(mtu)?;
        Ok(ns)
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A command that runs `program` inside the namespace.
    pub fn exec(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// Sets the MTU of the bridge and the taps (the VM side is set inside
    /// the VM).
    pub fn set_mtu(&self, mtu: u32) -> Result<(), String> {
        let mut script = String::from("set -e; ");
        for t in &self.taps {
            script += &format!("ip link set {t} mtu {mtu}; ip link set {t} up; ");
        }
        script += &format!("ip link set br0 mtu {mtu}; ip link set br0 up");
        sh(self.exec("sh").args(["-c", &script])).map(drop)
    }

    /// A permanent neighbour entry (a frozen VM cannot answer ARP, and
    /// nothing should wait behind it).
    pub fn neighbour(&self, ip: Ipv4Addr, mac: &str) -> Result<(), String> {
        sh(self.exec("ip").args([
            "neigh",
            "replace",
            &ip.to_string(),
            "lladdr",
            mac,
            "dev",
            "br0",
            "nud",
            "permanent",
        ]))
        .map(drop)
    }

    /// Moves the calling thread into the namespace: its sockets (ndkrs's
    /// raw socket, the VM command connections) are then made there.
    pub fn enter(&self) -> Result<(), String> {
        let f = File::open(format!("/run/netns/{}", self.name))
            .map_err(|e| format!("opening the namespace {}: {e}", self.name))?;
        setns(&f, CloneFlags::CLONE_NEWNET).map_err(|e| format!("setns: {e}"))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .stderr(Stdio::null())
            .status();
    }
}

/// A Linux rxe VM in the namespace.
#[derive(Debug)]
pub struct Vm {
    name: String,
    child: Option<Child>,
    monitor: PathBuf,
    console: PathBuf,
    pidfile: PathBuf,
    ip: Ipv4Addr,
}

/// What a command in the VM printed and its exit status.
#[derive(Debug, Clone)]
pub struct Output {
    /// stdout and stderr.
    pub text: String,
    /// Exit status.
    pub status: i32,
}

impl Vm {
    /// Boots a VM on `tap` with address `ip`/24, MAC `mac` and eth0 MTU
    /// `mtu`, and waits (at most `boot_timeout`) until its command server
    /// answers. qemu itself is bounded by `life` (`timeout`).
    #[allow(clippy::too_many_arguments)]
    pub fn boot(
        env: &Env,
        ns: &Netns,
        name: &str,
        tap: &str,
        mac: &str,
        ip: Ipv4Addr,
        mtu: u32,
        boot_timeout: Duration,
        life: Duration,
    ) -> Result<Vm, String> {
        let monitor = env.work.join(format!("{name}.mon"));
        let console = env.work.join(format!("{name}.console.log"));
        let pidfile = env.work.join(format!("{name}.pid"));
        let _ = fs::remove_file(&monitor);
        let _ = fs::remove_file(&pidfile);
        let log = File::create(&console).map_err(|e| format!("{}: {e}", console.display()))?;
        let log2 = log.try_clone().map_err(|e| e.to_string())?;
        // no_timer_check: under software emulation on a loaded machine the
        // guest's boot-time check of the IO-APIC timer can miss its ticks
        // and panic ("IO-APIC + timer doesn't work", seen here with two
        // builds running); the kernel's parameter for virtual machines
        // skips that check (Documentation/admin-guide/kernel-parameters.txt).
        let append = format!(
            "console=ttyS0 quiet panic=-1 no_timer_check ndk.ip={ip}/24 ndk.mtu={mtu} ndk.peer={HOST_IP},{HOST_MAC}"
        );
        let child = ns
            .exec("timeout")
            .arg(life.as_secs().to_string())
            .args(["qemu-system-x86_64", "-machine", "q35", "-accel", "tcg"])
            .args(["-m", "512", "-smp", "1", "-nographic", "-no-reboot"])
            .arg("-kernel")
            .arg(&env.kernel)
            .arg("-initrd")
            .arg(&env.initrd)
            .args(["-append", &append])
            .args([
                "-netdev",
                &format!("tap,id=n0,ifname={tap},script=no,downscript=no"),
            ])
            .args(["-device", &format!("virtio-net-pci,netdev=n0,mac={mac}")])
            .arg("-monitor")
            .arg(format!("unix:{},server,nowait", monitor.display()))
            .arg("-pidfile")
            .arg(&pidfile)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(|e| format!("starting qemu: {e}"))?;
        let mut vm = Vm {
            name: name.to_owned(),
            child: Some(child),
            monitor,
            console,
            pidfile,
            ip,
        };
        ns.neighbour(ip, mac)?;
        let start = Instant::now();
        loop {
            let text = fs::read_to_string(&vm.console).unwrap_or_default();
            if text.contains("NDK_VM: RXE_FAILED") {
                return Err(format!("{name}: rxe did not come up:\n{}", tail(&text, 20)));
            }
            if text.contains("NDK_VM: CTL_UP") && vm.run("true", Duration::from_secs(5)).is_ok() {
                break;
            }
            if let Some(Ok(Some(st))) = vm.child.as_mut().map(Child::try_wait) {
                return Err(format!("{name}: qemu exited ({st}):\n{}", tail(&text, 20)));
            }
            if start.elapsed() > boot_timeout {
                return Err(format!(
                    "{name}: no command server after {boot_timeout:?}:\n{}",
                    tail(&text, 20)
                ));
            }
            thread::sleep(Duration::from_millis(200));
        }
        Ok(vm)
    }

    /// The VM's address.
    pub fn ip(&self) -> Ipv4Addr {
        self.ip
    }

    /// The console log so far.
    pub fn console(&self) -> String {
        fs::read_to_string(&self.console).unwrap_or_default()
    }

    /// Runs `cmd` with the VM's sh and waits for it (at most `timeout`).
    /// The calling thread must be in the namespace ([`Netns::enter`]).
    pub fn run(&self, cmd: &str, timeout: Duration) -> Result<Output, String> {
        let addr = SocketAddr::from((self.ip, CTL_PORT));
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(3))
            .map_err(|e| format!("{}: connecting to {addr}: {e}", self.name))?;
        s.set_read_timeout(Some(timeout))
            .map_err(|e| e.to_string())?;
        s.write_all(format!("{cmd}\n").as_bytes())
            .map_err(|e| format!("{}: sending the command: {e}", self.name))?;
        let mut out = Vec::new();
        let start = Instant::now();
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(format!(
                        "{}: `{cmd}` gave no end within {:?} ({e}); so far: {}",
                        self.name,
                        start.elapsed(),
                        String::from_utf8_lossy(&out)
                    ));
                }
            }
        }
        let text = String::from_utf8_lossy(&out).into_owned();
        let (body, rc) = match text.trim_end().rsplit_once("NDK_RC=") {
            Some((body, rc)) => (body.to_owned(), rc.trim().parse().unwrap_or(-1)),
            None => (text, -1),
        };
        Ok(Output {
            text: body,
            status: rc,
        })
    }

    /// The size (`stat -c %s`) and sha256 (sha256sum) of the VM's file
    /// `path`, as the VM prints them (empty where it prints nothing).
    pub fn size_and_sha256(&self, path: &str) -> Result<(String, String), String> {
        let o = self.run(
            &format!("stat -c %s {path}; sha256sum {path}"),
            Duration::from_secs(30),
        )?;
        let mut lines = o.text.lines();
        let size = lines.next().unwrap_or_default().trim().to_owned();
        let sum = lines
            .next()
            .and_then(|l| l.split_whitespace().next())
            .unwrap_or_default()
            .to_owned();
        Ok((size, sum))
    }

    /// Starts `cmd` in the background in the VM, output to `/tmp/{log}`.
    pub fn spawn(&self, cmd: &str, log: &str) -> Result<(), String> {
        let o = self.run(
            &format!("rm -f /tmp/{log}; ({cmd}) >/tmp/{log} 2>&1 &"),
            Duration::from_secs(10),
        )?;
        if o.status != 0 {
            return Err(format!(
                "{}: could not start `{cmd}`: {}",
                self.name, o.text
            ));
        }
        Ok(())
    }

    /// The log of a background command.
    pub fn log(&self, log: &str) -> String {
        self.run(&format!("cat /tmp/{log}"), Duration::from_secs(10))
            .map(|o| o.text)
            .unwrap_or_else(|e| format!("(log unavailable: {e})"))
    }

    /// Waits until the background command's log contains `what`.
    pub fn wait_log(&self, log: &str, what: &str, timeout: Duration) -> Result<String, String> {
        let start = Instant::now();
        loop {
            let text = self.log(log);
            if text.contains(what) {
                return Ok(text);
            }
            if start.elapsed() > timeout {
                return Err(format!(
                    "{}: `{what}` not in /tmp/{log} after {timeout:?}:\n{}",
                    self.name,
                    tail(&text, 30)
                ));
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until an rdma_cm listener is on `port` in the VM (the tools
    /// print nothing before they listen: stdout to a file is buffered).
    pub fn wait_listen(&self, port: u16, timeout: Duration) -> Result<(), String> {
        let start = Instant::now();
        let cmd = format!("rdma resource show cm_id | grep 'state LISTEN' | grep -q ':{port} '");
        loop {
            if self.run(&cmd, Duration::from_secs(10))?.status == 0 {
                return Ok(());
            }
            if start.elapsed() > timeout {
                return Err(format!(
                    "{}: no listener on port {port} after {timeout:?}",
                    self.name
                ));
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Ends what a scenario left running in the VM (its rdma-core tools).
    pub fn reset(&self) {
        let _ = self.run(
            "for p in $(pidof ucmatose rxepeer rping ib_send_bw ib_write_bw ib_read_bw ib_send_lat \
             ib_write_lat ib_read_lat); do kill -9 $p; done; true",
            Duration::from_secs(10),
        );
    }

    /// Sends a command to the qemu monitor (`stop`, `cont`, `quit`).
    pub fn monitor(&self, cmd: &str) -> Result<String, String> {
        let mut s = UnixStream::connect(&self.monitor)
            .map_err(|e| format!("{}: monitor {}: {e}", self.name, self.monitor.display()))?;
        s.set_read_timeout(Some(Duration::from_millis(500)))
            .map_err(|e| e.to_string())?;
        let mut reply = Vec::new();
        let mut buf = [0u8; 1024];
        // The banner ends with the "(qemu) " prompt.
        let banner_deadline = Instant::now() + Duration::from_secs(5);
        while !String::from_utf8_lossy(&reply).contains("(qemu)") {
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => reply.extend_from_slice(&buf[..n]),
                Err(_) if Instant::now() < banner_deadline => {}
                Err(e) => return Err(format!("{}: monitor banner: {e}", self.name)),
            }
        }
        s.write_all(format!("{cmd}\n").as_bytes())
            .map_err(|e| format!("{}: monitor: {e}", self.name))?;
        reply.clear();
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    reply.extend_from_slice(&buf[..n]);
                    // The command echo, then the next prompt: done.
                    if String::from_utf8_lossy(&reply).matches("(qemu)").count() >= 1
                        && cmd != "quit"
                    {
                        break;
                    }
                }
                Err(_) => {}
            }
        }
        Ok(String::from_utf8_lossy(&reply).into_owned())
    }

    /// Freezes the VM (qemu monitor `stop`).
    pub fn freeze(&self) -> Result<(), String> {
        self.monitor("stop").map(drop)
    }

    /// Resumes a frozen VM (`cont`).
    pub fn thaw(&self) -> Result<(), String> {
        self.monitor("cont").map(drop)
    }

    /// Powers the VM off (monitor `quit`, then kill).
    pub fn shutdown(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = self.monitor("quit");
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(50));
        }
        // `timeout` passes SIGTERM on to qemu (SIGKILL it would not).
        if let Ok(pid) = i32::try_from(child.id()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        // qemu's own pid, in case it outlived `timeout`.
        if let Some(pid) = fs::read_to_string(&self.pidfile)
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
            && Path::new(&format!("/proc/{pid}")).exists()
        {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// How a Linux `rping -c` run, logged with `; echo RPING_EXIT=$?`, ended
/// cleanly (see [`rping_end`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RpingEnd {
    /// Exit 0.
    Exit0,
    /// Exit 255 from rping's own teardown race after every ping was
    /// verified.
    TeardownRace,
}

/// How an `rping -c` run ended, if cleanly: no ping `mismatch`, and exit 0
/// or rping's teardown race. rping's connection-manager thread exits the
/// process with -1 (255) when its next rdma_get_cm_event fails; after a
/// completed run that is its own teardown racing it (main destroys the
/// event channel while the thread reads it: "rdma_get_cm_event: Bad file
/// descriptor" after the DISCONNECT EVENT), which a slow emulated VM hits
/// now and then. Only that exact ending counts as the race; anything else
/// is a failure (None).
pub fn rping_end(log: &str) -> Option<RpingEnd> {
    let teardown_race = log.contains("RPING_EXIT=255")
        && log.contains("DISCONNECT EVENT")
        && log
            .lines()
            .rfind(|l| !l.starts_with("RPING_EXIT=") && !l.starts_with("ping data:"))
            .is_some_and(|l| l.trim() == "rdma_get_cm_event: Bad file descriptor");
    if log.contains("mismatch") {
        None
    } else if teardown_race {
        Some(RpingEnd::TeardownRace)
    } else if log.contains("RPING_EXIT=0") {
        Some(RpingEnd::Exit0)
    } else {
        None
    }
}

/// The sha256 of `data`, written to the host's scratch file `scratch` and
/// summed there by sha256sum(1).
pub fn sha256_on_host(data: &[u8], scratch: &Path) -> Result<String, String> {
    fs::write(scratch, data).map_err(|e| e.to_string())?;
    let out = sh(Command::new("sha256sum").arg(scratch))?;
    Ok(out.split_whitespace().next().unwrap_or_default().to_owned())
}

/// Runs one scenario of a VM test: a panic in it (an `expect` in a
/// helper) is its failure, with the panic's message, so the scenarios after
/// it still run.
pub fn caught<T>(scenario: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(scenario)).unwrap_or_else(|p| {
        Err(format!(
            "panicked: {}",
            p.downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default()
        ))
    })
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A capture of UDP 4791 on the bridge.
#[derive(Debug)]
pub struct Capture {
    child: Option<Child>,
    path: PathBuf,
}

impl Capture {
    /// Starts capturing UDP 4791 on `br0` into `path` with `tool`
    /// (tcpdump or tshark).
    pub fn start(ns: &Netns, tool: &str, path: &Path) -> Result<Capture, String> {
        Capture::start_on(ns, tool, path, "br0", "udp port 4791")
    }

    /// Starts capturing what the capture filter `filter` passes on
    /// interface `iface` of the namespace (a bridge port sees the frames
    /// the bridge forwards between ports, which `br0` does not).
    pub fn start_on(
        ns: &Netns,
        tool: &str,
        path: &Path,
        iface: &str,
        filter: &str,
    ) -> Result<Capture, String> {
        let _ = fs::remove_file(path);
        let mut cmd = ns.exec(tool);
        match tool {
            // -B: a 1 MiB RDMA burst overflowed the default buffer (a
            // request missing from a capture whose response was there).
            "tcpdump" => cmd
                .args([
                    "-i",
                    iface,
                    "--immediate-mode",
                    "-U",
                    "-B",
                    "32768",
                    "-s",
                    "0",
                    "-w",
                ])
                .arg(path)
                .arg(filter),
            // tshark takes a capture filter with -f.
            _ => cmd.args(["-q", "-i", iface, "-f", filter, "-w"]).arg(path),
        };
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting {tool}: {e}"))?;
        let mut c = Capture {
            child: Some(child),
            path: path.to_owned(),
        };
        // Wait until the capture file exists (the interface is open).
        let start = Instant::now();
        while !path.exists() && start.elapsed() < Duration::from_secs(10) {
            if let Some(Ok(Some(st))) = c.child.as_mut().map(Child::try_wait) {
                return Err(format!("{tool} exited at once ({st})"));
            }
            thread::sleep(Duration::from_millis(50));
        }
        thread::sleep(Duration::from_millis(200));
        Ok(c)
    }

    /// Stops the capture (SIGINT: the file is complete) and returns its
    /// path.
    pub fn stop(mut self) -> PathBuf {
        self.finish();
        self.path.clone()
    }

    fn finish(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // Let the last packets reach the file: on a loaded machine the
        // capture tool can lag the wire by seconds, and it stops reading
        // at SIGINT (a write_bw capture once lacked its last 61 messages).
        // Wait until the file stops growing (0.6 s unchanged), at most 10 s.
        let size = |p: &Path| fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut last = size(&self.path);
        let mut quiet = 0;
        while quiet < 3 && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(200));
            let now = size(&self.path);
            quiet = if now == last { quiet + 1 } else { 0 };
            last = now;
        }
        if let Ok(pid) = i32::try_from(child.id()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGINT);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Runs tshark on a capture with `args` (as in `tshark -r FILE args...`).
pub fn tshark(path: &Path, args: &[&str]) -> Result<String, String> {
    sh(Command::new("tshark")
        .arg("-r")
        .arg(path)
        .args(args)
        .stderr(Stdio::null()))
}

/// Rows of `tshark -T fields` for packets matching `filter`.
pub fn fields(path: &Path, filter: &str, fields: &[&str]) -> Result<Vec<Vec<String>>, String> {
    let mut args = vec!["-Y", filter, "-T", "fields", "-E", "separator=|"];
    for f in fields {
        args.push("-e");
        args.push(f);
    }
    let out = tshark(path, &args)?;
    Ok(out
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| l.split('|').map(str::to_owned).collect())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rping_end_accepts_exit_0_and_only_the_exact_teardown_race() {
        let ok = "ping data: rdma-ping-0: abc\nRPING_EXIT=0\n";
        assert_eq!(rping_end(ok), Some(RpingEnd::Exit0));
        let race = "ping data: rdma-ping-0: abc\nDISCONNECT EVENT...\n\
                    rdma_get_cm_event: Bad file descriptor\nRPING_EXIT=255\n";
        assert_eq!(rping_end(race), Some(RpingEnd::TeardownRace));
        // Exit 255 for any other reason, or before the disconnect.
        let other = "DISCONNECT EVENT...\nrdma_connect: Connection refused\nRPING_EXIT=255\n";
        assert_eq!(rping_end(other), None);
        let early = "rdma_get_cm_event: Bad file descriptor\nRPING_EXIT=255\n";
        assert_eq!(rping_end(early), None);
        // A ping whose data came back wrong fails whatever the exit.
        let bad = "data mismatch\nRPING_EXIT=0\n";
        assert_eq!(rping_end(bad), None);
        assert_eq!(rping_end("RPING_EXIT=1\n"), None);
    }

    #[test]
    fn a_panicking_scenario_is_its_failure_with_the_message() {
        assert_eq!(caught(|| Ok::<_, String>(7)), Ok(7));
        assert_eq!(
            caught(|| Err::<u8, _>("no".to_owned())),
            Err("no".to_owned())
        );
        let n = 3;
        let r: Result<(), String> = caught(|| panic!("boom {n}"));
        assert_eq!(r, Err("panicked: boom 3".to_owned()));
        let r: Result<(), String> = caught(|| panic!("static"));
        assert_eq!(r, Err("panicked: static".to_owned()));
    }
}
