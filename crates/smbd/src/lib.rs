//! Sans-IO SMB Direct client protocol.
//!
//! Everything here takes bytes and events in and hands bytes and actions
//! out; nothing does I/O or reads a clock. The layers, bottom up:
//!
//! - [`smbd`]: MS-SMBD, the SMB2 RDMA transport. [`smbd::wire`] holds the
//!   message codecs, [`smbd::conn`] the connection state machine (negotiate,
//!   credits, fragmentation and reassembly, keepalive).
//! - [`ntlm`]: the NTLMv2 client (MS-NLMP) and the SPNEGO wrapping that SMB2
//!   SESSION_SETUP carries it in.
//! - [`smb2`]: SMB2/3 message codecs (MS-SMB2), signing and key derivation,
//!   and a client session flow from NEGOTIATE to LOGOFF.
//!
//! Peer input never panics: every parser returns a precise error, and the
//! lints below keep unwrap, expect, panic and indexing out of non-test code.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

pub mod bytes;
pub mod ntlm;
pub mod smb2;
pub mod smbd;
