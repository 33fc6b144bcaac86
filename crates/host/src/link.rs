//! The link under a local address: which interface holds it, its Ethernet
//! MTU, and the largest RoCE path MTU that fits in it.
//!
//! A RoCE port's active MTU comes from its link, as Linux rxe takes its
//! port's `active_mtu` from its netdev's MTU (drivers/infiniband/sw/rxe/
//! rxe.c `rxe_set_mtu`, rxe_param.h `eth_mtu_int_to_enum`). A path MTU
//! larger than the link carries puts datagrams on the wire that the link
//! refuses, so the adapter caps every connection's path MTU at this one
//! (`ndk::provider::ProviderConfig::path_mtu`).

use std::io;
use std::net::IpAddr;

/// The MTU arithmetic is the RoCE core's, shared with the Windows shell.
pub use roce::framing::{IB_MTUS, path_mtu_for_link, roce_overhead};

/// The interface holding a local address, and its MTU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Interface name (`eth0`, `lo`).
    pub name: String,
    /// Its IP MTU in bytes.
    pub mtu: u32,
}

impl Link {
    /// The largest RoCE path MTU this link carries for `ip`'s family.
    pub fn path_mtu(&self, ip: IpAddr) -> Option<u32> {
        path_mtu_for_link(self.mtu, ip.is_ipv6())
    }
}

/// Finds the interface that holds `ip` and reads its MTU.
pub fn link_of(ip: IpAddr) -> io::Result<Link> {
    let addrs: Vec<_> = nix::ifaddrs::getifaddrs()
        .map_err(io::Error::from)?
        .collect();
    let holds = |a: &nix::ifaddrs::InterfaceAddress| {
        a.address.is_some_and(|sa| match ip {
            IpAddr::V4(v4) => sa.as_sockaddr_in().is_some_and(|s| s.ip() == v4),
            IpAddr::V6(v6) => sa.as_sockaddr_in6().is_some_and(|s| s.ip() == v6),
        })
    };
    // Every 127/8 address is the loopback interface's, though only
    // 127.0.0.1 is listed.
    let name = addrs
        .iter()
        .find(|a| holds(a))
        .or_else(|| {
            ip.is_loopback().then(|| {
                addrs.iter().find(|a| {
                    a.flags
                        .contains(nix::net::if_::InterfaceFlags::IFF_LOOPBACK)
                })
            })?
        })
        .map(|a| a.interface_name.clone());
    let name = name.ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::AddrNotAvailable,
            format!("{ip} is not an address of any interface of this host"),
        )
    })?;
    let mtu = interface_mtu(&name)?;
    Ok(Link { name, mtu })
}

/// SIOCGIFMTU on a datagram socket: asks the calling thread's network
/// namespace (sysfs would show the namespace it was mounted in).
fn interface_mtu(name: &str) -> io::Result<u32> {
    use nix::libc;
    use std::os::fd::AsRawFd;
    let sock =
        std::net::UdpSocket::bind("0.0.0.0:0").or_else(|_| std::net::UdpSocket::bind("[::]:0"))?;
    // SAFETY: ifreq is plain data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    let bytes = name.as_bytes();
    if bytes.len() >= req.ifr_name.len() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("interface name {name:?} too long"),
        ));
    }
    for (d, &b) in req.ifr_name.iter_mut().zip(bytes) {
        *d = b as libc::c_char;
    }
    // SAFETY: SIOCGIFMTU reads ifr_name (NUL-terminated above: the rest is
    // zero) and writes ifr_mtu inside `req`, which outlives the call.
    let r = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFMTU, &mut req) };
    if r < 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(e.kind(), format!("SIOCGIFMTU {name}: {e}")));
    }
    // SAFETY: SIOCGIFMTU filled the union's mtu member.
    let mtu = unsafe { req.ifr_ifru.ifru_mtu };
    u32::try_from(mtu)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, format!("{name}: MTU {mtu}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_link_mtus_give_rxes_path_mtus() {
        assert_eq!(path_mtu_for_link(1500, false), Some(1024));
        assert_eq!(path_mtu_for_link(1500, true), Some(1024));
        assert_eq!(path_mtu_for_link(9000, false), Some(4096));
        assert_eq!(path_mtu_for_link(65536, false), Some(4096));
        // 2048 + 64 bytes of headers: exactly fits.
        assert_eq!(path_mtu_for_link(2112, false), Some(2048));
        assert_eq!(path_mtu_for_link(2111, false), Some(1024));
        assert_eq!(path_mtu_for_link(2111 + 20, true), Some(1024));
        assert_eq!(path_mtu_for_link(576, false), Some(512));
        assert_eq!(path_mtu_for_link(300, false), None);
    }

    #[test]
    fn loopback_is_found_with_its_mtu() {
        let l = link_of("127.0.0.1".parse().unwrap()).unwrap();
        assert_eq!(l.name, "lo");
        assert!(l.mtu >= 1500, "{l:?}");
        assert_eq!(link_of("127.0.0.9".parse().unwrap()).unwrap(), l);
        let err = link_of("192.0.2.77".parse().unwrap()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrNotAvailable);
    }
}
