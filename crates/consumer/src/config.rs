//! The configuration of a provider a consumer opens in its own process
//! with `ndk::abi::open_adapter` (the tests, the fuzz target).

use std::net::IpAddr;

use ndk::provider::{Limits, ProviderConfig};
use ndkpi::NDK_VERSION_1_2;
use roce::cm::CmConfig;
use roce::device::DeviceConfig;
use roce::framing::IpMode;
use roce::rc::EngineConfig;

/// An adapter on `ip` whose identity on the wire comes from `seed` alone
/// (CA GUID, keys, PSNs), so a run replays: UDP framing from port 4791,
/// default CM timing, QPNs from 17, a 1024-byte path MTU, NDKPI 1.2.
pub fn fixed_config(ip: IpAddr, seed: u64, limits: Limits) -> ProviderConfig {
    ProviderConfig {
        device: DeviceConfig {
            ip_mode: IpMode::Udp,
            udp_source_port: 4791,
            ca_guid: seed,
            cm: CmConfig::default(),
            rc: EngineConfig {
                first_qpn: 17,
                key_seed: seed as u32,
                qpn_epoch: 0,
            },
            seed,
        },
        addresses: vec![ip],
        path_mtu: 1024,
        version: NDK_VERSION_1_2,
        limits,
    }
}
