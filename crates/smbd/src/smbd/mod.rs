//! MS-SMBD, the SMB2 RDMA Transport Protocol: message codecs ([`wire`]) and
//! the connection state machine ([`conn`]).

pub mod conn;
pub mod wire;
