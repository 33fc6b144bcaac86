//! What the interop test needs, found or explained.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Where `tests/interop/setup.sh` puts the VM image unless
/// `NDKRS_INTEROP_DIR` says otherwise.
pub const DEFAULT_DIR: &str = "/var/tmp/ndkrs-interop";

/// The VM image and tools, all present.
#[derive(Debug, Clone)]
pub struct Env {
    /// The kernel (`/boot/vmlinuz-*-amd64`).
    pub kernel: PathBuf,
    /// The initramfs built by setup.sh.
    pub initrd: PathBuf,
    /// Where scratch files go (captures, console logs, monitor sockets).
    pub work: PathBuf,
    /// `tcpdump` if present (starts faster than tshark), else `tshark`.
    pub capture_tool: Option<&'static str>,
    /// Whether tshark is there for summaries and field checks.
    pub tshark: bool,
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn is_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

/// Reads `KEY=value` lines.
fn env_file(path: &Path) -> Option<Vec<(String, String)>> {
    let text = fs::read_to_string(path).ok()?;
    Some(
        text.lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect(),
    )
}

/// What tests/interop/setup-ksmbd.sh describes in `ksmbd.env` (in
/// `NDKRS_INTEROP_DIR`): the VM image with ksmbd, and the share's account
/// (empty where a key is missing).
#[derive(Debug, Clone)]
pub struct Ksmbd {
    /// `INITRD`.
    pub initrd: PathBuf,
    /// `SMB_USER`.
    pub user: String,
    /// `SMB_PASS`.
    pub password: String,
}

/// The `KEY=value` lines of setup-ksmbd.sh's description, or why there are
/// none.
pub fn ksmbd() -> Result<Ksmbd, String> {
    let dir = std::env::var("NDKRS_INTEROP_DIR").unwrap_or_else(|_| DEFAULT_DIR.into());
    let p = Path::new(&dir).join("ksmbd.env");
    let text = fs::read_to_string(&p)
        .map_err(|e| format!("no {} ({e}): run tests/interop/setup-ksmbd.sh", p.display()))?;
    let kv: Vec<(&str, &str)> = text.lines().filter_map(|l| l.split_once('=')).collect();
    let get = |k: &str| {
        kv.iter()
            .find(|(key, _)| *key == k)
            .map(|(_, v)| (*v).to_owned())
            .unwrap_or_default()
    };
    Ok(Ksmbd {
        initrd: get("INITRD").into(),
        user: get("SMB_USER"),
        password: get("SMB_PASS"),
    })
}

/// Everything the VM test needs, or why it must skip.
pub fn detect() -> Result<Env, String> {
    if !is_root() {
        return Err("not root (network namespaces, taps and raw sockets need it)".into());
    }
    if !host::io::has_cap_net_raw() {
        return Err("no CAP_NET_RAW (raw IP sockets)".into());
    }
    if !have("ip") {
        return Err("`ip` (iproute2) is missing".into());
    }
    let probe = Command::new("ip")
        .args(["netns", "list"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !probe.is_ok_and(|s| s.success()) {
        return Err("`ip netns` does not work here (no network namespaces?)".into());
    }
    if !Path::new("/dev/net/tun").exists() {
        return Err("/dev/net/tun is missing (no tap devices)".into());
    }
    if !have("qemu-system-x86_64") {
        return Err("qemu-system-x86_64 is missing (run tests/interop/setup.sh)".into());
    }
    let dir = std::env::var_os("NDKRS_INTEROP_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DIR));
    let vars = env_file(&dir.join("vm.env")).ok_or_else(|| {
        format!(
            "no VM image description {} (run tests/interop/setup.sh)",
            dir.join("vm.env").display()
        )
    })?;
    let get = |k: &str| {
        vars.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| PathBuf::from(v))
    };
    let kernel = get("KERNEL").ok_or("vm.env names no KERNEL")?;
    let initrd = get("INITRD").ok_or("vm.env names no INITRD")?;
    for p in [&kernel, &initrd] {
        if !p.exists() {
            return Err(format!(
                "{} is missing (run tests/interop/setup.sh)",
                p.display()
            ));
        }
    }
    let work = dir.join("run");
    fs::create_dir_all(&work).map_err(|e| format!("creating {}: {e}", work.display()))?;
    let capture_tool = if have("tcpdump") {
        Some("tcpdump")
    } else if have("tshark") {
        Some("tshark")
    } else {
        None
    };
    Ok(Env {
        kernel,
        initrd,
        work,
        capture_tool,
        tshark: have("tshark"),
    })
}

/// Whether the VM test was asked for: it boots VMs for minutes, so it runs
/// only with `NDKRS_INTEROP=1` (tests/interop/run.sh and CI set it), not on
/// every `cargo test --workspace`.
pub fn requested() -> bool {
    std::env::var("NDKRS_INTEROP").is_ok_and(|v| v == "1")
}

/// Whether a skip is a failure: `tests/interop/run.sh --require` (CI) sets
/// `NDKRS_INTEROP_REQUIRE=1`, since CI provides everything the VM tests need
/// and a skip there would hide a broken harness.
pub fn required() -> bool {
    std::env::var("NDKRS_INTEROP_REQUIRE").is_ok_and(|v| v == "1")
}

/// Reports why a requested VM test cannot run: a skip with the reason, or,
/// where the run is required, a test failure with the same reason.
pub fn skip(test: &str, why: &str) {
    assert!(
        !required(),
        "{test}: cannot run where it is required: {why}"
    );
    println!("{test}: SKIP: {why}");
}
