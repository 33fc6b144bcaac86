//! The ndkrs Windows kernel shell, everything but `DriverEntry`'s wdk-sys
//! glue: an NDIS 6.30 virtual miniport that is the NDK provider, a
//! lightweight filter (LWF) on a physical Ethernet NIC that carries its
//! RoCEv2 datagrams, and the kernel platform of the core (spin locks, a
//! DPC and a timer driving the engine's deadlines, MDL-backed memory).
//!
//! `no_std`, and it needs no wdk-sys: the root package's `DriverEntry`
//! calls [`kernel::driver_entry`], and the CI kernel image links this crate
//! on Linux. The portable modules ([`frame`], [`neighbor`], [`slots`],
//! [`state`]) hold every decision and are tested on any host; [`kernel`]
//! only translates between NDIS and them (compiled out of host unit tests,
//! since it imports kernel symbols).
//!
//! # The datagram path: why an NDIS filter, not a WSK socket
//!
//! * **ICRC.** The RoCEv2 ICRC covers fields of the IP header
//!   (identification, total length, flags, addresses) and the UDP ports
//!   (`roce::framing`). A WSK datagram socket lets the OS write the IP
//!   header, so the ICRC can be neither produced for nor verified against
//!   what a Linux rxe peer or RoCE hardware sees: they drop every packet.
//!   The engine must build whole IP datagrams (`IpMode::Raw`), and only an
//!   NDIS data path moves those. (WSK raw sockets with IP_HDRINCL would
//!   still leave the host UDP stack seeing UDP/4791 and cannot steal
//!   received datagrams from it.)
//! * **Shape.** The NDK miniport is a virtual Ethernet miniport (Class Net,
//!   NCF_VIRTUAL): NDIS and SMB Direct see it as an RDMA-capable interface.
//!   The same image registers an optional, modifying lightweight filter
//!   (inf/ndkrsflt.inx) that the user enables on exactly one physical
//!   Ethernet NIC. The filter sends the engine's frames on that NIC
//!   (NdisFSendNetBufferLists) and, on receive, takes UDP/4791 datagrams
//!   for the virtual adapter's addresses away from the physical stack.
//! * **Addresses: the virtual adapter owns its IP configuration.** SMB
//!   Direct finds RDMA interfaces by their IP addresses
//!   (Get-SmbClientNetworkInterface lists the interface, RDMA capable, with
//!   its addresses) and connects NDK endpoints to and from them. So the
//!   ndkrs adapter gets its own address(es) on the NIC's subnet (static or
//!   DHCP): mirroring the NIC's addresses would put one address on two
//!   interfaces and make routing ambiguous. The shell reads the adapter's
//!   addresses with GetUnicastIpAddressTable (its NET_LUID) and hands them
//!   to the provider at each NDK open.
//! * **Which source the peer sees.** The virtual adapter's IP address, and
//!   the physical NIC's MAC address: the filter translates the virtual
//!   adapter's locally administered MAC to the NIC's on the way out (and
//!   back on the way in, ARP included, see [`frame::translate_out`]), so
//!   the NIC needs no promiscuous mode and no second unicast MAC.
//! * **ARP/ND.** The OS's. The filter bridges the virtual adapter's own
//!   IP stack onto the wire (its ARP, ICMP and TCP), so the neighbor table
//!   of the virtual interface fills as for any NIC; the data path asks it
//!   with ResolveIpNetEntry2 from a PASSIVE work item and caches the result
//!   ([`neighbor`]). Peers must be on-link (NDK's default; the remote
//!   subnet flag of `*NetworkDirectGlobalFlags` is not supported). IPv6:
//!   the steering and the engine handle it, but ND's link-layer address
//!   options are not translated yet, so IPv6 peers learn the virtual MAC
//!   and cannot reach it: IPv4 only for now.
//! * **What a user configures.** Install the package (both INFs), add the
//!   ndkrs adapter, enable the "ndkrs RoCEv2 datagram filter" binding on
//!   one physical NIC (Enable-NetAdapterBinding -ComponentID ndkrs_lwf),
//!   and give the ndkrs adapter an IP address on that NIC's subnet.
//!   `*NetworkDirect` (default 1) turns NDK on and off.
#![no_std]
// Every unsafe block names the invariant it relies on (`// SAFETY:`).
#![deny(clippy::undocumented_unsafe_blocks)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::unreachable,
        clippy::todo,
        clippy::unimplemented
    )
)]

extern crate alloc;

pub mod binding;
pub mod chain;
pub mod frame;
#[cfg(not(test))]
pub mod kernel;
pub mod neighbor;
pub mod slots;
pub mod state;
