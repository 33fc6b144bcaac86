//! Network namespaces for the tests that need real links (root and
//! iproute2's `ip netns`): one namespace, or two joined by a veth pair.
//! Where they cannot be had, [`available`] says why and the test skips,
//! unless NDKRS_REQUIRE_NETNS=1 (CI), which turns the skip into a failure.
#![allow(dead_code)]

use std::fs::File;
use std::process::{Child, Command, Output};

/// Runs a command to completion.
pub fn run(cmd: &[&str]) -> Result<Output, String> {
    Command::new(cmd[0])
        .args(&cmd[1..])
        .output()
        .map_err(|e| format!("{}: {e}", cmd.join(" ")))
}

/// Runs a command that must succeed.
pub fn must(cmd: &[&str]) -> Result<(), String> {
    let o = run(cmd)?;
    if o.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{}` failed: {}",
            cmd.join(" "),
            String::from_utf8_lossy(&o.stderr).trim()
        ))
    }
}

/// Why network namespaces cannot be used here, if they cannot.
pub fn unavailable() -> Option<String> {
    if !nix::unistd::Uid::effective().is_root() {
        return Some("not running as root".into());
    }
    match run(&["ip", "netns", "list"]) {
        Ok(o) if o.status.success() => None,
        Ok(o) => Some(format!(
            "`ip netns` does not work: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Some(format!("no `ip` tool: {e}")),
    }
}

/// Whether the test can go on; `false` after printing why it skips.
/// Panics instead where NDKRS_REQUIRE_NETNS=1.
pub fn available(test: &str) -> bool {
    match unavailable() {
        None => true,
        Some(why) => {
            skip(test, &why);
            false
        }
    }
}

/// Skips `test` for `why`, or fails where namespaces are required.
pub fn skip(test: &str, why: &str) {
    assert!(
        std::env::var("NDKRS_REQUIRE_NETNS").as_deref() != Ok("1"),
        "network namespaces required (NDKRS_REQUIRE_NETNS=1) but unavailable: {why}"
    );
    println!("SKIP: {test} needs network namespaces: {why}");
    eprintln!("SKIP: {test} needs network namespaces: {why}");
}

/// One namespace with its loopback up, deleted when dropped.
pub struct Netns(pub String);

impl Netns {
    pub fn create(tag: &str) -> Result<Netns, String> {
        let name = format!("ndkrs-{tag}-{}", std::process::id());
        must(&["ip", "netns", "add", &name])?;
        let ns = Netns(name);
        ns.exec(&["ip", "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    pub fn exec(&self, cmd: &[&str]) -> Result<(), String> {
        let mut args = vec!["ip", "netns", "exec", &self.0];
        args.extend_from_slice(cmd);
        must(&args)
    }

    pub fn set_lo_mtu(&self, mtu: u32) -> Result<(), String> {
        self.exec(&["ip", "link", "set", "lo", "mtu", &mtu.to_string()])
    }

    /// Moves the calling thread into the namespace (threads it starts
    /// afterwards are there too).
    pub fn enter(&self) -> Result<(), String> {
        let f = File::open(format!("/run/netns/{}", self.0)).map_err(|e| e.to_string())?;
        nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| e.to_string())
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = run(&["ip", "netns", "del", &self.0]);
    }
}

/// Two namespaces, a server's and a client's, joined by a veth pair with
/// the given MTU and addresses (`/24`); removed on drop.
pub struct VethPair {
    pub server: String,
    pub client: String,
}

impl VethPair {
    pub fn new(tag: &str, server_ip: &str, client_ip: &str, mtu: u32) -> Result<VethPair, String> {
        let id = std::process::id();
        let ns = VethPair {
            server: format!("ndkrs-{tag}s{id}"),
            client: format!("ndkrs-{tag}c{id}"),
        };
        let (vs, vc) = (format!("{tag}s{id}"), format!("{tag}c{id}"));
        must(&["ip", "netns", "add", &ns.server])?;
        must(&["ip", "netns", "add", &ns.client])?;
        must(&[
            "ip", "link", "add", &vs, "netns", &ns.server, "type", "veth", "peer", "name", &vc,
            "netns", &ns.client,
        ])?;
        for (n, dev, ip) in [(&ns.server, &vs, server_ip), (&ns.client, &vc, client_ip)] {
            must(&[
                "ip",
                "-n",
                n,
                "addr",
                "add",
                &format!("{ip}/24"),
                "dev",
                dev,
            ])?;
            must(&["ip", "-n", n, "link", "set", dev, "mtu", &mtu.to_string()])?;
            must(&["ip", "-n", n, "link", "set", dev, "up"])?;
            must(&["ip", "-n", n, "link", "set", "lo", "up"])?;
        }
        Ok(ns)
    }
}

impl Drop for VethPair {
    fn drop(&mut self) {
        // Deleting a namespace deletes its end of the veth pair, and so both.
        let _ = run(&["ip", "netns", "del", &self.server]);
        let _ = run(&["ip", "netns", "del", &self.client]);
    }
}

/// `ndkperf ARGS` inside namespace `ns`.
pub fn ndkperf_in(ns: &str, args: &[&str]) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns, env!("CARGO_BIN_EXE_ndkperf")])
        .args(args);
    c
}

/// Kills a child on drop (a failing assertion must not leave a server).
pub struct Reaped(pub Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
