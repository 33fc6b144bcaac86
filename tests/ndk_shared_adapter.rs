//! Two consumers of one miniport adapter (SMB client and server, say): two
//! OpenNDKAdapter calls share one engine, so a listener of one is reachable
//! from the other (a loopback connection), and either may close first.
// Every unsafe block names the invariant it relies on.
#![deny(clippy::undocumented_unsafe_blocks)]

#[macro_use]
mod support;

use std::net::{IpAddr, Ipv4Addr};
use std::ptr;

use ndkpi::*;
use support::*;

#[test]
fn two_opens_share_an_engine_and_close_in_either_order() {
    let net = Net::new();
    let ip = IpAddr::V4(Ipv4Addr::new(10, 40, 0, 1));
    let client = Adapter::open(ip, 1, &net);
    let server = client.open_shared();
    assert_ne!(client.ptr, server.ptr);
    assert_eq!(server.info().Version, NDK_VERSION_1_2);

    let (cpd, spd) = (client.pd(), server.pd());
    let (ccq, scq) = (client.cq(16, 7), server.cq(16, 8));
    let (cqp, sqp) = (qp(cpd, ccq, 0xC1), qp(spd, scq, 0x51));
    let mut cbuf = Buffer::new(&net, 4096);
    let mut sbuf = Buffer::new(&net, 4096);
    let (cmr, ct) = register(cpd, &mut cbuf, RW);
    let (smr, st) = register(spd, &mut sbuf, RW);
    let s = sge(sbuf.va(0), 1024, st);
    assert_eq!(ndk!(sqp, NdkReceive, 200 as PVOID, &s, 1), STATUS_SUCCESS);
    // The server's listener, reached from the client's open of the same
    // engine: both sides of the connection live in one core.
    let (listener, port) = server.listen(3);
    let c = connect(&client, cqp, &server, sqp, 3, port, 10);
    // Each open sees the engine's connections (the OIDs are per miniport
    // adapter): both directions of the loopback connection.
    assert_eq!(client.snapshot().connections.len(), 2);

    cbuf.fill(0, 600, 9);
    let s = sge(cbuf.va(0), 600, ct);
    assert_eq!(ndk!(cqp, NdkSend, 31 as PVOID, &s, 1, 0), STATUS_SUCCESS);
    pump(&[&client]);
    let r = results(ccq);
    assert_eq!(r.len(), 1, "{r:?}");
    check(&r[0], STATUS_SUCCESS, NdkOperationTypeSend, 0xC1, 31, None);
    let r = results(scq);
    assert_eq!(r.len(), 1, "{r:?}");
    check(
        &r[0],
        STATUS_SUCCESS,
        NdkOperationTypeReceive,
        0x51,
        200,
        Some(600),
    );
    assert_eq!(sbuf.read(0, 600), cbuf.read(0, 600));

    // The client disconnects; the server's disconnect event fires once.
    assert_eq!(
        ndk!(c.active, NdkDisconnect, Some(on_request), net.ctx(81)),
        STATUS_PENDING
    );
    pump(&[&client]);
    net.expect(Ev::Request(81, STATUS_SUCCESS));
    net.expect(Ev::Disconnect(13));
    assert_eq!(net.count(Ev::Disconnect(13)), 0);

    // The client's consumer closes everything and its adapter first.
    let mut pending = Vec::new();
    for (i, o) in [
        c.active.cast::<u8>(),
        cqp.cast(),
        cmr.cast(),
        ccq.cast(),
        cpd.cast(),
    ]
    .into_iter()
    .enumerate()
    {
        net.close_rec(o, 900 + i, &mut pending);
    }
    pump(&[&client]);
    for ctx in &pending {
        assert_eq!(net.count(Ev::Close(*ctx)), 1, "close {ctx}");
    }
    drop(client);
    // The server's open keeps the engine alive and working.
    assert_eq!(server.info().Version, NDK_VERSION_1_2);
    let pd2 = server.pd();
    close_now(pd2);
    assert_eq!(
        ndk!(c.passive, NdkDisconnect, None, ptr::null_mut()),
        STATUS_SUCCESS
    );
    let mut pending = Vec::new();
    for (i, o) in [
        c.passive.cast::<u8>(),
        listener.cast(),
        sqp.cast(),
        smr.cast(),
        scq.cast(),
        spd.cast(),
    ]
    .into_iter()
    .enumerate()
    {
        net.close_rec(o, 950 + i, &mut pending);
    }
    pump(&[&server]);
    for ctx in &pending {
        assert_eq!(net.count(Ev::Close(*ctx)), 1, "close {ctx}");
    }
    assert_eq!(server.objects(), 0);
    assert!(server.snapshot().connections.is_empty());
}

#[test]
fn a_shared_open_negotiates_its_own_version() {
    let net = Net::new();
    let a = Adapter::open(IpAddr::V4(Ipv4Addr::new(10, 41, 0, 1)), 1, &net);
    // SAFETY: a.ptr is a live open adapter.
    let bad = unsafe { ndk::abi::open_adapter_shared(a.ptr, NDK_VERSION::new(3, 0)) };
    assert_eq!(bad.err(), Some(NDIS_STATUS_BAD_VERSION));
    // SAFETY: a null adapter is refused before it is read.
    let none = unsafe { ndk::abi::open_adapter_shared(ptr::null_mut(), NDK_VERSION_1_2) };
    assert!(none.is_err());
}
