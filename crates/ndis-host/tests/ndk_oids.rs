//! OID_NDK_LOCAL_ENDPOINTS and OID_NDK_CONNECTIONS answered from a live
//! adapter with a listener, a shared endpoint and an established
//! connection.
//!
//! What must happen (OID_NDK_LOCAL_ENDPOINTS, OID_NDK_CONNECTIONS,
//! NDIS_NDK_LOCAL_ENDPOINT_ENTRY and NDIS_NDK_CONNECTION_ENTRY reference
//! pages):
//! * OID_NDK_LOCAL_ENDPOINTS lists the active listeners and shared
//!   endpoints, each once, with its bound address and port; `Listener` is
//!   TRUE for the listener and FALSE for the shared endpoint; connectors are
//!   not local endpoints; `UserModeOwner` FALSE (kernel consumers);
//!   Header.Size and Count agree with the entries;
//! * OID_NDK_CONNECTIONS lists both connectors of the established loopback
//!   connection, each with its local and remote address;
//! * once the objects are closed, both lists are empty;
//! * the NDIS contract holds and nothing is left at unload.

mod support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::ptr;

use ndis_host::machine;
use ndis_sys::*;
use ndkpi::{
    AF_INET, FALSE, NDIS_NDK_CONNECTION_ENTRY, NDIS_NDK_LOCAL_ENDPOINT_ENTRY, NDK_SHARED_ENDPOINT,
    OID_NDK_CONNECTIONS, OID_NDK_LOCAL_ENDPOINTS, SOCKADDR_IN, STATUS_SUCCESS, TRUE, ULONG,
};
use support::ndk::{self, Memory};
use support::*;

const IP: Ipv4Addr = Ipv4Addr::new(10, 9, 4, 1);
const NIC_IP: Ipv4Addr = Ipv4Addr::new(10, 9, 4, 11);
const PEER: Ipv4Addr = Ipv4Addr::new(10, 9, 4, 2);

/// SOCKADDR_INET bytes (AF_INET only here) as an address.
fn addr_of(b: &[u8]) -> SocketAddr {
    assert_eq!(u16::from_le_bytes([b[0], b[1]]), AF_INET, "family");
    SocketAddr::new(
        IpAddr::from([b[4], b[5], b[6], b[7]]),
        u16::from_be_bytes([b[2], b[3]]),
    )
}

/// The (header revision, size, count, entry bytes) of an NDK list answer
/// whose entries start at 0x10 and are `entry` bytes each.
fn entries(buf: &[u8], entry: usize) -> Vec<&[u8]> {
    assert!(buf.len() >= 0x10, "answer of {} bytes", buf.len());
    assert_eq!(buf[0], 0x80, "NDIS_OBJECT_TYPE_DEFAULT");
    assert_eq!(buf[1], 1, "revision 1");
    let size = usize::from(u16::from_le_bytes([buf[2], buf[3]]));
    let count = u32::from_le_bytes(buf[8..12].try_into().unwrap()) as usize;
    assert_eq!(buf[12], 0, "not mapped to TCP");
    assert_eq!(
        size,
        0x10 + count * entry,
        "Header.Size for {count} entries"
    );
    assert_eq!(buf.len(), size, "BytesWritten");
    buf[0x10..].chunks(entry).collect()
}

fn local_endpoints() -> Vec<(SocketAddr, u8)> {
    let (st, buf) = machine::query(OID_NDK_LOCAL_ENDPOINTS);
    assert_eq!(st, NDIS_STATUS_SUCCESS, "OID_NDK_LOCAL_ENDPOINTS");
    let n = size_of::<NDIS_NDK_LOCAL_ENDPOINT_ENTRY>();
    let mut v: Vec<(SocketAddr, u8)> = entries(&buf, n)
        .into_iter()
        .map(|e| {
            assert_eq!(e[0x1C], FALSE, "UserModeOwner: a kernel consumer");
            (addr_of(&e[..28]), e[0x1D])
        })
        .collect();
    v.sort();
    v
}

fn connections() -> Vec<(SocketAddr, SocketAddr)> {
    let (st, buf) = machine::query(OID_NDK_CONNECTIONS);
    assert_eq!(st, NDIS_STATUS_SUCCESS, "OID_NDK_CONNECTIONS");
    let n = size_of::<NDIS_NDK_CONNECTION_ENTRY>();
    let mut v: Vec<(SocketAddr, SocketAddr)> = entries(&buf, n)
        .into_iter()
        .map(|e| {
            assert_eq!(e[0x38], FALSE, "UserModeOwner: a kernel consumer");
            (addr_of(&e[..28]), addr_of(&e[0x1C..0x38]))
        })
        .collect();
    v.sort();
    v
}

#[test]
fn local_endpoints_tell_listeners_from_shared_endpoints_and_connections_list_both_sides() {
    let cfg = config(IP, NIC_IP, PEER);
    boot_and_attach(&cfg);
    machine::settle();
    assert!(local_endpoints().is_empty(), "no endpoint before any");
    assert!(connections().is_empty(), "no connection before any");

    let (mut a, mut b) =
        ndk::connected_pair(IP, 4000, Memory::chain(&[4096]), Memory::chain(&[4096]))
            .expect("connect over the shell");
    // A shared endpoint on b's adapter, on a port the consumer chose.
    let at = ndk::sin(SocketAddrV4::new(IP, 4999));
    let mut shared: *mut NDK_SHARED_ENDPOINT = ptr::null_mut();
    // SAFETY: a live adapter; the address is read during the call.
    let st = unsafe {
        ((*(*b.adapter).Dispatch).NdkCreateSharedEndpoint.unwrap())(
            b.adapter,
            (&at as *const SOCKADDR_IN).cast(),
            size_of::<SOCKADDR_IN>() as ULONG,
            None,
            ptr::null_mut(),
            &mut shared,
        )
    };
    assert_eq!(st, STATUS_SUCCESS, "NdkCreateSharedEndpoint");

    // The listener's bound address, from the provider.
    let mut bound = ndk::sin(SocketAddrV4::new(IP, 0));
    let mut len = size_of::<SOCKADDR_IN>() as ULONG;
    // SAFETY: a live listener; `bound` holds `len` bytes.
    let st = unsafe {
        ((*(*a.listener).Dispatch).NdkGetLocalAddress.unwrap())(
            a.listener,
            (&mut bound as *mut SOCKADDR_IN).cast(),
            &mut len,
        )
    };
    assert_eq!(st, STATUS_SUCCESS);
    let listener_at = SocketAddr::new(IP.into(), u16::from_be(bound.sin_port));
    let shared_at = SocketAddr::new(IP.into(), 4999);

    let mut want = vec![(listener_at, TRUE), (shared_at, FALSE)];
    want.sort();
    assert_eq!(
        local_endpoints(),
        want,
        "a listener (TRUE) and a shared endpoint (FALSE), no connector"
    );
    let conns = connections();
    assert_eq!(
        conns.len(),
        2,
        "both connectors of the connection: {conns:?}"
    );
    // a accepted on the listener's port; b connected to it.
    let a_side = conns
        .iter()
        .find(|(l, _)| *l == listener_at)
        .expect("the passive side's connection");
    let b_side = (a_side.1, a_side.0);
    assert!(
        conns.contains(&b_side),
        "the active side mirrors it: {conns:?}"
    );
    assert_ne!(a_side.1.port(), 0, "an ephemeral port was bound");

    ndk::close(shared, 4990).expect("close the shared endpoint");
    a.close_all(4900).expect("close a");
    b.close_all(4950).expect("close b");
    assert!(local_endpoints().is_empty(), "endpoints after the closes");
    assert!(connections().is_empty(), "connections after the closes");
    let (aa, ba) = (a.adapter, b.adapter);
    machine::close_ndk(aa);
    machine::close_ndk(ba);

    support::detach_halt_and_check_clean();
}
