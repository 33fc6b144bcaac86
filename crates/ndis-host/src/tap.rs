//! The emulated NIC's wire as a Linux TAP device, so the shell under the
//! NDIS host meets a real network (the Linux rxe VM of the interop
//! harness, tests/tap_interop.rs).
//!
//! The device is opened on /dev/net/tun with TUNSETIFF, IFF_TAP |
//! IFF_NO_PI: each read is one Ethernet frame the kernel sends out of the
//! tap, each write one frame the kernel receives on it
//! (Documentation/networking/tuntap.rst, include/uapi/linux/if_tun.h).
//! Frames read are indicated up through the NIC's receive path into the
//! shell's filter ([`stack::wire_receive`]); the NIC's sends are written
//! to the tap ([`Stack::wire`](stack::Stack)).

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::stack;

/// include/uapi/linux/if_tun.h.
const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const IFF_TAP: libc::c_short = 0x0002;
const IFF_NO_PI: libc::c_short = 0x1000;

/// struct ifreq as TUNSETIFF reads it: the name, then the flags (the rest
/// of the union padded to its 24 bytes).
#[repr(C)]
struct IfReq {
    name: [u8; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

/// Frames counted each way.
#[derive(Debug, Default)]
pub struct TapCounts {
    pub rx: AtomicU64,
    pub tx: AtomicU64,
    pub tx_errors: AtomicU64,
}

/// An open tap.
#[derive(Debug)]
pub struct Tap {
    file: File,
    name: String,
}

impl Tap {
    /// Attaches to the tap `name` (made beforehand, e.g. by `ip tuntap add
    /// dev <name> mode tap`, or made now if absent) in the caller's network
    /// namespace.
    pub fn open(name: &str) -> Result<Tap, String> {
        if name.is_empty() || name.len() >= libc::IFNAMSIZ {
            return Err(format!("tap name {name:?}: 1 to 15 bytes"));
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/net/tun")
            .map_err(|e| format!("opening /dev/net/tun: {e}"))?;
        let mut req = IfReq {
            name: [0; libc::IFNAMSIZ],
            flags: IFF_TAP | IFF_NO_PI,
            _pad: [0; 22],
        };
        req.name[..name.len()].copy_from_slice(name.as_bytes());
        // SAFETY: TUNSETIFF reads and writes one ifreq, which `req` is.
        let rc = unsafe { libc::ioctl(file.as_raw_fd(), TUNSETIFF as _, &mut req) };
        if rc < 0 {
            return Err(format!(
                "TUNSETIFF {name}: {}",
                std::io::Error::last_os_error()
            ));
        }
        Ok(Tap {
            file,
            name: name.to_owned(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Makes the tap the emulated NIC's wire: the NIC's sends are written
    /// to it, and a thread indicates every frame read from it up the NIC's
    /// receive path. The thread lives as long as the process (the shell's
    /// machine is per process too).
    pub fn attach(self) -> Result<Arc<TapCounts>, String> {
        let counts = Arc::new(TapCounts::default());
        let tx = self.file.try_clone().map_err(|e| e.to_string())?;
        let c = Arc::clone(&counts);
        stack::stack().wire = Some(Box::new(move |f: &[u8]| {
            if (&tx).write(f).is_ok_and(|n| n == f.len()) {
                c.tx.fetch_add(1, Ordering::Relaxed);
            } else {
                c.tx_errors.fetch_add(1, Ordering::Relaxed);
            }
        }));
        let c = Arc::clone(&counts);
        let mut rx = self.file;
        std::thread::Builder::new()
            .name(format!("tap-{}", self.name))
            .spawn(move || {
                let mut buf = vec![0u8; 65_536];
                while let Ok(n) = rx.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    c.rx.fetch_add(1, Ordering::Relaxed);
                    stack::wire_receive(vec![buf[..n].to_vec()], false);
                }
            })
            .map_err(|e| format!("spawning the tap reader: {e}"))?;
        Ok(counts)
    }
}
