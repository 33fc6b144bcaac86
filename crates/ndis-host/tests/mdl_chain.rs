//! A memory region over a chain of MDLs through the real shell: the
//! NDK_FN_REGISTER_MR page lets a consumer register "an MDL or a chain of
//! MDLs", and the shell's platform maps each MDL of the chain on its own
//! (MmGetSystemAddressForMdlSafe per MDL, MDL->Next to the next).
//!
//! What must happen: registration of a three-MDL chain of odd sizes
//! (kernel-layout MDLs, separately allocated buffers) succeeds; a send
//! from a chained region and a receive into another complete with
//! STATUS_SUCCESS within 10 s each, with the byte count sent; the bytes
//! land buffer by buffer in chain order; nothing lands past a buffer; no
//! contract breach, nothing left at unload.

mod support;

use std::net::Ipv4Addr;

use support::ndk::{self, Memory};
use support::*;

const IP: Ipv4Addr = Ipv4Addr::new(10, 9, 3, 1);
const NIC_IP: Ipv4Addr = Ipv4Addr::new(10, 9, 3, 11);
const PEER: Ipv4Addr = Ipv4Addr::new(10, 9, 3, 2);

#[test]
fn a_chained_mdl_region_sends_and_receives_through_the_shell() {
    let cfg = config(IP, NIC_IP, PEER);
    bring_up(&cfg);

    // Sizes chosen so that messages cross MDL boundaries mid-packet.
    let (mut a, mut b) = ndk::connected_pair(
        IP,
        1000,
        Memory::chain(&[1001, 2999, 4100]),
        Memory::chain(&[333, 5000, 2767]),
    )
    .expect("connect with chained regions");
    assert_eq!(a.mem.len(), 8100);
    assert_eq!(b.mem.len(), 8100);
    // Guards: the receive is shorter than the region; bytes past it stay 0.
    ndk::transfer(&mut b, &a, 6000, 1500).expect("b's chain into a's chain");
    let got = a.mem.bytes();
    assert!(
        got[6000..].iter().all(|&x| x == 0),
        "nothing past the message"
    );
    // Per buffer, in chain order.
    let sent = b.mem.bytes();
    let mut off = 0;
    for buf in &a.mem.bufs {
        let n = buf.len().min(6000usize.saturating_sub(off));
        assert_eq!(&buf[..n], &sent[off..off + n], "buffer at offset {off}");
        off += buf.len();
    }
    ndk::transfer(&mut a, &b, 8100, 1600).expect("a's whole chain back");

    ndk::close_pair(&mut a, &mut b, 1900, 1950);
    support::detach_halt_and_check_clean();
}
