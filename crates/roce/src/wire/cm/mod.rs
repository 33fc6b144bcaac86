//! IB communication management (CM) messages (IBA Vol 1 ch. 12; Linux drivers/infiniband/core/cm.c).
//!
//! Each CM message is the 232-byte class data of a MAD of class 0x07
//! (version 2). One file per message, each with a `Packet` view over those
//! 232 bytes (offsets as in IBA Vol 1 ch. 12; Linux drivers/infiniband/core/cm.c, i.e. MAD offset − 24) and a `Repr`.
//! [`CmMessage`] dispatches on the attribute ID; [`CmMad`] is a whole
//! 256-byte CM MAD, header included.
//!
//! Reserved bits are ignored on parse and written as zero by `emit`, as the
//! IBA asks of reserved fields; the captures (all reserved bits zero) show
//! that this reproduces Linux's messages byte for byte. ClassPortInfo is not
//! decoded.

use core::fmt;
use core::net::Ipv6Addr;

use super::bytes::{check_width, fields, fixed_view};
use super::mad::{self, AttributeId, Method, MgmtClass};
use super::{Error, Result};

/// Declares the `Packet` view of one CM message: the struct, its
/// constructors, the exact-length check shared by every message and the
/// `clear` its `emit` starts with; and `buffer_len` of the message's
/// `Repr`, which is always the whole body. Fields are declared with
/// [`fields!`](crate::wire::bytes::fields).
macro_rules! cm_view {
    ($what:literal) => {
        $crate::wire::bytes::view!(
            Packet,
            concat!(
                "A read/write view of a ",
                $what,
                " body (the 232 bytes after the MAD header)."
            )
        );

        impl<T: AsRef<[u8]>> Packet<T> {
            /// Shorter than 232 bytes is [`Error::Truncated`](crate::wire::Error::Truncated),
            /// longer is [`Error::BadLength`](crate::wire::Error::BadLength).
            pub fn check_len(&self) -> $crate::wire::Result<()> {
                $crate::wire::bytes::check_exact(self.buffer.as_ref().len(), super::DATA_LEN)
            }
        }

        impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
            /// Zeroes the body before an emit, so reserved bits go out as zero.
            fn clear(&mut self) -> $crate::wire::Result<()> {
                self.buffer
                    .as_mut()
                    .get_mut(..super::DATA_LEN)
                    .ok_or($crate::wire::Error::BufferTooSmall)?
                    .fill(0);
                Ok(())
            }
        }

        impl Repr {
            /// Always the whole CM body.
            pub const fn buffer_len(&self) -> usize {
                super::DATA_LEN
            }
        }
    };
}

/// Declares `private_data` / `private_data_mut` (and the like) over a fixed
/// byte range of a CM view.
macro_rules! cm_bytes {
    ($(#[$meta:meta])* $get:ident, $get_mut:ident : $start:expr, $len:expr) => {
        impl<T: AsRef<[u8]>> Packet<T> {
            $(#[$meta])*
            pub fn $get(&self) -> &[u8] {
                self.buffer.as_ref().get($start..$start + $len).unwrap_or(&[])
            }
        }

        impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
            #[doc = concat!("The bytes of [`Self::", stringify!($get), "`], writable.")]
            pub fn $get_mut(&mut self) -> &mut [u8] {
                self.buffer.as_mut().get_mut($start..$start + $len).unwrap_or(&mut [])
            }
        }
    };
}

/// The whole of a CM message that carries only the two communication IDs
/// and 224 bytes of private data: RTU and DREP share this layout
/// (IBA Vol 1 ch. 12 (RTU, DREQ, DREP); Linux include/rdma/ibta_vol1_c12.h): view, fields and `Repr`.
macro_rules! cm_comm_ids_message {
    ($what:literal) => {
        use super::Opaque;
        use $crate::wire::Result;
        use $crate::wire::bytes::fields;

        #[doc = concat!("Size of the ", $what, " private data (ib_cm.h).")]
        pub const PRIVATE_DATA_LEN: usize = 224;

        #[doc = concat!("Byte offsets in the ", $what, " body (IBA Vol 1 ch. 12 (RTU, DREQ, DREP); Linux include/rdma/ibta_vol1_c12.h).")]
        mod field {
            pub const LOCAL_COMM_ID: usize = 0;
            pub const REMOTE_COMM_ID: usize = 4;
            pub const PRIVATE_DATA: usize = 8;
        }

        cm_view!($what);

        fields! { Packet;
            /// Local Communication ID.
            local_comm_id, set_local_comm_id: u32(field::LOCAL_COMM_ID);
            /// Remote Communication ID.
            remote_comm_id, set_remote_comm_id: u32(field::REMOTE_COMM_ID);
        }

        cm_bytes! {
            /// Private data (224 bytes).
            private_data, private_data_mut: field::PRIVATE_DATA, PRIVATE_DATA_LEN
        }

        #[doc = concat!("An ", $what, ", decoded.")]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
        pub struct Repr {
            /// Local Communication ID.
            pub local_comm_id: u32,
            /// Remote Communication ID.
            pub remote_comm_id: u32,
            /// Private data.
            pub private_data: Opaque<PRIVATE_DATA_LEN>,
        }

        impl Repr {
            #[doc = concat!("Decodes a checked ", $what, " view.")]
            pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Self> {
                packet.check_len()?;
                Ok(Repr {
                    local_comm_id: packet.local_comm_id(),
                    remote_comm_id: packet.remote_comm_id(),
                    private_data: Opaque::from_field(packet.private_data()),
                })
            }

            /// Writes the whole body.
            pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) -> Result<()> {
                packet.clear()?;
                packet.set_local_comm_id(self.local_comm_id);
                packet.set_remote_comm_id(self.remote_comm_id);
                self.private_data.write_to(packet.private_data_mut());
                Ok(())
            }
        }
    };
}

pub mod apr;
pub mod drep;
pub mod dreq;
pub mod lap;
pub mod mra;
pub mod rej;
pub mod rep;
pub mod req;
pub mod rtu;
pub mod sidr_rep;
pub mod sidr_req;

/// Size of every CM message body (the MAD class data).
pub const DATA_LEN: usize = mad::DATA_LEN;

/// A fixed-size opaque byte field: private data, ARI, additional info.
///
/// The wire always carries the full field, zero-padded (Linux drivers/infiniband/core/cma.c), so the
/// representation is the whole array.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Opaque<const N: usize>(pub [u8; N]);

impl<const N: usize> Opaque<N> {
    /// Size of the field on the wire.
    pub const LEN: usize = N;

    /// All zeros.
    pub const fn zeroed() -> Self {
        Opaque([0; N])
    }

    /// `bytes` followed by zeros; [`Error::BadLength`] if longer than `N`.
    pub fn from_prefix(bytes: &[u8]) -> Result<Self> {
        let mut out = [0; N];
        out.get_mut(..bytes.len())
            .ok_or(Error::BadLength)?
            .copy_from_slice(bytes);
        Ok(Opaque(out))
    }

    /// The field as a slice.
    pub const fn as_slice(&self) -> &[u8] {
        &self.0
    }

    /// Copies a view's field (exactly `N` bytes in a checked view; zeros if
    /// the slice is short, which only an unchecked view can produce).
    fn from_field(bytes: &[u8]) -> Self {
        Opaque(bytes.first_chunk::<N>().copied().unwrap_or([0; N]))
    }

    /// Writes the field into a view's bytes (exactly `N` bytes once the
    /// view's `clear` succeeded; a shorter slice is left alone).
    fn write_to(&self, bytes: &mut [u8]) {
        if let Some(dst) = bytes.first_chunk_mut::<N>() {
            *dst = self.0;
        }
    }
}

impl<const N: usize> Default for Opaque<N> {
    fn default() -> Self {
        Self::zeroed()
    }
}

impl<const N: usize> AsRef<[u8]> for Opaque<N> {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl<const N: usize> fmt::Debug for Opaque<N> {
    /// Hex, with the trailing zero padding summarised.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let used = self.0.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        write!(f, "Opaque<{N}>[")?;
        for b in self.0.iter().take(used) {
            write!(f, "{b:02x}")?;
        }
        if used < N {
            write!(f, " +{} zero", N - used)?;
        }
        f.write_str("]")
    }
}

/// A length byte saying how much of a fixed `field_len`-byte field is
/// meaningful (REJ's ARI, SIDR_REP's and APR's additional information)
/// cannot exceed the field: [`Error::Malformed`].
fn check_info_length(length: u8, field_len: usize) -> Result<()> {
    if usize::from(length) > field_len {
        return Err(Error::Malformed);
    }
    Ok(())
}

/// Which message an MRA or REJ answers (2 bits; cm_msgs.h
/// `cm_msg_response`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TargetMessage(pub u8);

impl TargetMessage {
    /// The REQ.
    pub const REQ: Self = Self(0);
    /// The REP.
    pub const REP: Self = Self(1);
    /// Anything else (for MRA: the LAP).
    pub const OTHER: Self = Self(2);
}

/// REQ transport service type (2 bits, IBA Vol 1 ch. 12 (REQ); Linux include/rdma/ibta_vol1_c12.h).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TransportType(pub u8);

impl TransportType {
    /// Reliable connection.
    pub const RC: Self = Self(0);
    /// Unreliable connection.
    pub const UC: Self = Self(1);
    /// Reliable datagram.
    pub const RD: Self = Self(2);
    /// Look at the extended transport type (1 = XRC).
    pub const EXTENDED: Self = Self(3);
}

/// REJ reason (ib_cm.h `ib_cm_rej_reason`, IBA Vol 1 ch. 12 (REJ reasons); Linux include/rdma/ib_cm.h).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct RejectReason(pub u16);

impl RejectReason {
    /// No QP available.
    pub const NO_QP: Self = Self(1);
    /// No EE context available.
    pub const NO_EEC: Self = Self(2);
    /// No resources available.
    pub const NO_RESOURCES: Self = Self(3);
    /// Timeout (also: id destroyed in REQ_SENT).
    pub const TIMEOUT: Self = Self(4);
    /// Unsupported request.
    pub const UNSUPPORTED: Self = Self(5);
    /// Invalid communication ID.
    pub const INVALID_COMM_ID: Self = Self(6);
    /// Invalid communication instance.
    pub const INVALID_COMM_INSTANCE: Self = Self(7);
    /// Invalid service ID (no listener).
    pub const INVALID_SERVICE_ID: Self = Self(8);
    /// Invalid transport service type.
    pub const INVALID_TRANSPORT_TYPE: Self = Self(9);
    /// Stale connection.
    pub const STALE_CONN: Self = Self(10);
    /// RDC does not exist.
    pub const RDC_NOT_EXIST: Self = Self(11);
    /// Invalid primary GID.
    pub const INVALID_GID: Self = Self(12);
    /// Invalid primary LID.
    pub const INVALID_LID: Self = Self(13);
    /// Invalid primary SL.
    pub const INVALID_SL: Self = Self(14);
    /// Invalid primary traffic class.
    pub const INVALID_TRAFFIC_CLASS: Self = Self(15);
    /// Invalid primary hop limit.
    pub const INVALID_HOP_LIMIT: Self = Self(16);
    /// Invalid primary packet rate.
    pub const INVALID_PACKET_RATE: Self = Self(17);
    /// Invalid alternate GID.
    pub const INVALID_ALT_GID: Self = Self(18);
    /// Invalid alternate LID.
    pub const INVALID_ALT_LID: Self = Self(19);
    /// Invalid alternate SL.
    pub const INVALID_ALT_SL: Self = Self(20);
    /// Invalid alternate traffic class.
    pub const INVALID_ALT_TRAFFIC_CLASS: Self = Self(21);
    /// Invalid alternate hop limit.
    pub const INVALID_ALT_HOP_LIMIT: Self = Self(22);
    /// Invalid alternate packet rate.
    pub const INVALID_ALT_PACKET_RATE: Self = Self(23);
    /// Port CM redirect.
    pub const PORT_CM_REDIRECT: Self = Self(24);
    /// Port redirect.
    pub const PORT_REDIRECT: Self = Self(25);
    /// Invalid path MTU.
    pub const INVALID_MTU: Self = Self(26);
    /// Insufficient responder resources.
    pub const INSUFFICIENT_RESP_RESOURCES: Self = Self(27);
    /// Consumer defined (rdma_reject).
    pub const CONSUMER_DEFINED: Self = Self(28);
    /// Invalid RNR retry count.
    pub const INVALID_RNR_RETRY: Self = Self(29);
    /// Duplicate local communication ID.
    pub const DUPLICATE_LOCAL_COMM_ID: Self = Self(30);
    /// Invalid class version.
    pub const INVALID_CLASS_VERSION: Self = Self(31);
    /// Invalid primary flow label.
    pub const INVALID_FLOW_LABEL: Self = Self(32);
    /// Invalid alternate flow label.
    pub const INVALID_ALT_FLOW_LABEL: Self = Self(33);
    /// Vendor option (ECE) not supported.
    pub const VENDOR_OPTION_NOT_SUPPORTED: Self = Self(35);
}

/// Byte offsets in a REQ path block; bit fields are `(byte, mask)`.
mod path_field {
    pub const LOCAL_LID: usize = 0;
    pub const REMOTE_LID: usize = 2;
    pub const LOCAL_GID: usize = 4;
    pub const REMOTE_GID: usize = 20;
    /// Flow label: top 20 bits of the word at 36.
    pub const FLOW_LABEL: usize = 36;
    /// Packet rate: low 6 bits of byte 39 (byte 38 low nibble and byte 39
    /// b7..b6 are reserved).
    pub const PACKET_RATE: (usize, u8) = (39, 0x3F);
    pub const TRAFFIC_CLASS: usize = 40;
    pub const HOP_LIMIT: usize = 41;
    pub const SL: (usize, u8) = (42, 0xF0);
    pub const SUBNET_LOCAL: (usize, u8) = (42, 0x08);
    pub const LOCAL_ACK_TIMEOUT: (usize, u8) = (43, 0xF8);
    pub const LEN: usize = 44;
}

/// Size of a REQ path block.
pub const PATH_LEN: usize = path_field::LEN;

fixed_view!(
    Path,
    PATH_LEN,
    "View of one path description inside a REQ (44 bytes: the primary path at \
     REQ offset 52, the alternate at 96; IBA Vol 1 ch. 12 (REQ); Linux include/rdma/ibta_vol1_c12.h). Offsets are relative \
     to the start of the path block."
);

fields! { Path;
    /// Local port LID (0xFFFF, permissive, on RoCE).
    local_lid, set_local_lid: u16(path_field::LOCAL_LID);
    /// Remote port LID.
    remote_lid, set_remote_lid: u16(path_field::REMOTE_LID);
    /// Local port GID (on RoCEv2 an IPv6 or IPv4-mapped address).
    local_gid, set_local_gid: gid(path_field::LOCAL_GID);
    /// Remote port GID.
    remote_gid, set_remote_gid: gid(path_field::REMOTE_GID);
    /// Flow label (20 bits).
    flow_label, set_flow_label: flow_label(path_field::FLOW_LABEL);
    /// Packet rate (6 bits).
    packet_rate, set_packet_rate: bits(path_field::PACKET_RATE);
    /// Traffic class.
    traffic_class, set_traffic_class: u8(path_field::TRAFFIC_CLASS);
    /// Hop limit.
    hop_limit, set_hop_limit: u8(path_field::HOP_LIMIT);
    /// Service level (4 bits).
    sl, set_sl: bits(path_field::SL);
    /// Subnet local.
    subnet_local, set_subnet_local: flag(path_field::SUBNET_LOCAL);
    /// Local ACK timeout (5 bits).
    local_ack_timeout, set_local_ack_timeout: bits(path_field::LOCAL_ACK_TIMEOUT);
}

/// One path of a REQ, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PathRepr {
    /// Local port LID.
    pub local_lid: u16,
    /// Remote port LID.
    pub remote_lid: u16,
    /// Local port GID.
    pub local_gid: Ipv6Addr,
    /// Remote port GID.
    pub remote_gid: Ipv6Addr,
    /// Flow label (20 bits); on RoCEv2 it drives the UDP source port
    /// (IBA Annex A17 (RoCEv2 encapsulation); Linux rxe_net.c).
    pub flow_label: u32,
    /// Packet rate (6 bits).
    pub packet_rate: u8,
    /// Traffic class.
    pub traffic_class: u8,
    /// Hop limit.
    pub hop_limit: u8,
    /// Service level (4 bits).
    pub sl: u8,
    /// Subnet local.
    pub subnet_local: bool,
    /// Local ACK timeout (5 bits).
    pub local_ack_timeout: u8,
}

impl Default for PathRepr {
    /// The all-zero path (what Linux sends as the alternate path).
    fn default() -> Self {
        PathRepr {
            local_lid: 0,
            remote_lid: 0,
            local_gid: Ipv6Addr::UNSPECIFIED,
            remote_gid: Ipv6Addr::UNSPECIFIED,
            flow_label: 0,
            packet_rate: 0,
            traffic_class: 0,
            hop_limit: 0,
            sl: 0,
            subnet_local: false,
            local_ack_timeout: 0,
        }
    }
}

impl PathRepr {
    /// Decodes a path block.
    pub fn parse<T: AsRef<[u8]>>(path: &Path<T>) -> Self {
        PathRepr {
            local_lid: path.local_lid(),
            remote_lid: path.remote_lid(),
            local_gid: path.local_gid(),
            remote_gid: path.remote_gid(),
            flow_label: path.flow_label(),
            packet_rate: path.packet_rate(),
            traffic_class: path.traffic_class(),
            hop_limit: path.hop_limit(),
            sl: path.sl(),
            subnet_local: path.subnet_local(),
            local_ack_timeout: path.local_ack_timeout(),
        }
    }

    /// Refuses values wider than their fields.
    pub fn check(&self) -> Result<()> {
        check_width(self.flow_label, 20)?;
        check_width(self.packet_rate.into(), 6)?;
        check_width(self.sl.into(), 4)?;
        check_width(self.local_ack_timeout.into(), 5)
    }

    /// Writes every field; reserved bits are left as they are (the message
    /// emit zeroes the whole body first).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, path: &mut Path<T>) -> Result<()> {
        self.check()?;
        path.set_local_lid(self.local_lid);
        path.set_remote_lid(self.remote_lid);
        path.set_local_gid(self.local_gid);
        path.set_remote_gid(self.remote_gid);
        path.set_flow_label(self.flow_label);
        path.set_packet_rate(self.packet_rate);
        path.set_traffic_class(self.traffic_class);
        path.set_hop_limit(self.hop_limit);
        path.set_sl(self.sl);
        path.set_subnet_local(self.subnet_local);
        path.set_local_ack_timeout(self.local_ack_timeout);
        Ok(())
    }
}

/// Any CM message body, by attribute ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CmMessage {
    /// ConnectRequest (0x0010).
    Req(req::Repr),
    /// MessageReceiptAcknowledgement (0x0011).
    Mra(mra::Repr),
    /// ConnectReject (0x0012).
    Rej(rej::Repr),
    /// ConnectReply (0x0013).
    Rep(rep::Repr),
    /// ReadyToUse (0x0014).
    Rtu(rtu::Repr),
    /// DisconnectRequest (0x0015).
    Dreq(dreq::Repr),
    /// DisconnectReply (0x0016).
    Drep(drep::Repr),
    /// ServiceIDResolutionRequest (0x0017).
    SidrReq(sidr_req::Repr),
    /// ServiceIDResolutionResponse (0x0018).
    SidrRep(sidr_rep::Repr),
    /// LoadAlternatePath (0x0019).
    Lap(lap::Repr),
    /// AlternatePathResponse (0x001A).
    Apr(apr::Repr),
}

impl CmMessage {
    /// The attribute ID this message travels under.
    pub const fn attribute_id(&self) -> AttributeId {
        match self {
            CmMessage::Req(_) => AttributeId::CM_REQ,
            CmMessage::Mra(_) => AttributeId::CM_MRA,
            CmMessage::Rej(_) => AttributeId::CM_REJ,
            CmMessage::Rep(_) => AttributeId::CM_REP,
            CmMessage::Rtu(_) => AttributeId::CM_RTU,
            CmMessage::Dreq(_) => AttributeId::CM_DREQ,
            CmMessage::Drep(_) => AttributeId::CM_DREP,
            CmMessage::SidrReq(_) => AttributeId::CM_SIDR_REQ,
            CmMessage::SidrRep(_) => AttributeId::CM_SIDR_REP,
            CmMessage::Lap(_) => AttributeId::CM_LAP,
            CmMessage::Apr(_) => AttributeId::CM_APR,
        }
    }

    /// Decodes a 232-byte CM body carried under `attribute`.
    ///
    /// An attribute ID that is not a CM message gives
    /// [`Error::UnknownAttribute`].
    pub fn parse(attribute: AttributeId, data: &[u8]) -> Result<Self> {
        Ok(match attribute {
            AttributeId::CM_REQ => {
                CmMessage::Req(req::Repr::parse(&req::Packet::new_checked(data)?)?)
            }
            AttributeId::CM_MRA => {
                CmMessage::Mra(mra::Repr::parse(&mra::Packet::new_checked(data)?)?)
            }
            AttributeId::CM_REJ => {
                CmMessage::Rej(rej::Repr::parse(&rej::Packet::new_checked(data)?)?)
            }
            AttributeId::CM_REP => {
                CmMessage::Rep(rep::Repr::parse(&rep::Packet::new_checked(data)?)?)
            }
            AttributeId::CM_RTU => {
                CmMessage::Rtu(rtu::Repr::parse(&rtu::Packet::new_checked(data)?)?)
            }
            AttributeId::CM_DREQ => {
                CmMessage::Dreq(dreq::Repr::parse(&dreq::Packet::new_checked(data)?)?)
            }
            AttributeId::CM_DREP => {
                CmMessage::Drep(drep::Repr::parse(&drep::Packet::new_checked(data)?)?)
            }
            AttributeId::CM_SIDR_REQ => CmMessage::SidrReq(sidr_req::Repr::parse(
                &sidr_req::Packet::new_checked(data)?,
            )?),
            AttributeId::CM_SIDR_REP => CmMessage::SidrRep(sidr_rep::Repr::parse(
                &sidr_rep::Packet::new_checked(data)?,
            )?),
            AttributeId::CM_LAP => {
                CmMessage::Lap(lap::Repr::parse(&lap::Packet::new_checked(data)?)?)
            }
            AttributeId::CM_APR => {
                CmMessage::Apr(apr::Repr::parse(&apr::Packet::new_checked(data)?)?)
            }
            AttributeId(other) => return Err(Error::UnknownAttribute(other)),
        })
    }

    /// Bytes `emit` writes: the whole body.
    pub const fn buffer_len(&self) -> usize {
        DATA_LEN
    }

    /// Writes the whole 232-byte body (reserved bits zero).
    pub fn emit(&self, data: &mut [u8]) -> Result<()> {
        let data = data.get_mut(..DATA_LEN).ok_or(Error::BufferTooSmall)?;
        match self {
            CmMessage::Req(r) => r.emit(&mut req::Packet::new_unchecked(data)),
            CmMessage::Mra(r) => r.emit(&mut mra::Packet::new_unchecked(data)),
            CmMessage::Rej(r) => r.emit(&mut rej::Packet::new_unchecked(data)),
            CmMessage::Rep(r) => r.emit(&mut rep::Packet::new_unchecked(data)),
            CmMessage::Rtu(r) => r.emit(&mut rtu::Packet::new_unchecked(data)),
            CmMessage::Dreq(r) => r.emit(&mut dreq::Packet::new_unchecked(data)),
            CmMessage::Drep(r) => r.emit(&mut drep::Packet::new_unchecked(data)),
            CmMessage::SidrReq(r) => r.emit(&mut sidr_req::Packet::new_unchecked(data)),
            CmMessage::SidrRep(r) => r.emit(&mut sidr_rep::Packet::new_unchecked(data)),
            CmMessage::Lap(r) => r.emit(&mut lap::Packet::new_unchecked(data)),
            CmMessage::Apr(r) => r.emit(&mut apr::Packet::new_unchecked(data)),
        }
    }
}

/// A whole CM MAD: the header fields that vary, and the message.
///
/// BaseVersion (1), MgmtClass (0x07), ClassVersion (2) and the attribute ID
/// (from the message) are implied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CmMad {
    /// Method: Send for every CM message (the Linux rxe captures in crates/roce/tests/data).
    pub method: Method,
    /// MAD status (0 in practice).
    pub status: u16,
    /// Class-specific word (0 in practice).
    pub class_specific: u16,
    /// Transaction ID: a retransmission and its answer reuse it (the Linux rxe captures in crates/roce/tests/data).
    pub transaction_id: u64,
    /// Attribute modifier (ECE on newer kernels; 0 in the captures).
    pub attribute_modifier: u32,
    /// The message.
    pub message: CmMessage,
}

impl CmMad {
    /// A Send-method CM MAD with zero status, class-specific word and
    /// attribute modifier.
    pub const fn send(transaction_id: u64, message: CmMessage) -> Self {
        CmMad {
            method: Method::SEND,
            status: 0,
            class_specific: 0,
            transaction_id,
            attribute_modifier: 0,
            message,
        }
    }

    /// Decodes a 256-byte MAD that must be a CM message.
    ///
    /// Errors: wrong size ([`Error::Truncated`] / [`Error::BadLength`]), base
    /// or class version ([`Error::BadVersion`]), another management class
    /// ([`Error::UnknownMgmtClass`]), an attribute that is not a CM message
    /// ([`Error::UnknownAttribute`]), or a message-level error.
    pub fn parse(buf: &[u8]) -> Result<Self> {
        let packet = mad::Packet::new_checked(buf)?;
        let header = mad::Repr::parse(&packet)?;
        if header.mgmt_class != MgmtClass::CM {
            return Err(Error::UnknownMgmtClass(header.mgmt_class.0));
        }
        let message = CmMessage::parse(header.attribute_id, packet.data())?;
        Ok(CmMad {
            method: header.method,
            status: header.status,
            class_specific: header.class_specific,
            transaction_id: header.transaction_id,
            attribute_modifier: header.attribute_modifier,
            message,
        })
    }

    /// The MAD header this message is sent with.
    pub const fn header(&self) -> mad::Repr {
        mad::Repr {
            mgmt_class: MgmtClass::CM,
            class_version: mad::CM_CLASS_VERSION,
            method: self.method,
            status: self.status,
            class_specific: self.class_specific,
            transaction_id: self.transaction_id,
            attribute_id: self.message.attribute_id(),
            attribute_modifier: self.attribute_modifier,
        }
    }

    /// Always [`mad::MAD_LEN`].
    pub const fn buffer_len(&self) -> usize {
        mad::MAD_LEN
    }

    /// Writes the whole 256-byte MAD into the start of `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<()> {
        let buf = buf.get_mut(..mad::MAD_LEN).ok_or(Error::BufferTooSmall)?;
        let mut packet = mad::Packet::new_unchecked(buf);
        self.header().emit(&mut packet)?;
        self.message.emit(packet.data_mut())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;

    #[test]
    fn opaque_prefix_and_debug() {
        let o = Opaque::<8>::from_prefix(&[1, 2, 3]).unwrap();
        assert_eq!(o.as_slice(), &[1, 2, 3, 0, 0, 0, 0, 0]);
        assert_eq!(Opaque::<2>::from_prefix(&[1, 2, 3]), Err(Error::BadLength));
        assert_eq!(format!("{o:?}"), "Opaque<8>[010203 +5 zero]");
        assert_eq!(Opaque::<4>::LEN, 4);
    }

    #[test]
    fn path_layout() {
        // IBA Vol 1 ch. 12 (REQ); Linux include/rdma/ibta_vol1_c12.h, REQ offsets 52..95 made relative to the path block.
        let mut buf = [0u8; PATH_LEN];
        let repr = PathRepr {
            local_lid: 0x0102,
            remote_lid: 0x0304,
            local_gid: Ipv6Addr::from([0x11; 16]),
            remote_gid: Ipv6Addr::from([0x22; 16]),
            flow_label: 0xC5A69,
            packet_rate: 0x2A,
            traffic_class: 0x33,
            hop_limit: 0x44,
            sl: 0xB,
            subnet_local: true,
            local_ack_timeout: 19,
        };
        repr.emit(&mut Path::new_checked(&mut buf[..]).unwrap())
            .unwrap();
        assert_eq!(buf[0..4], [0x01, 0x02, 0x03, 0x04]);
        assert_eq!(buf[4..20], [0x11; 16]);
        assert_eq!(buf[20..36], [0x22; 16]);
        assert_eq!(
            buf[36..44],
            [0xC5, 0xA6, 0x90, 0x2A, 0x33, 0x44, 0xB8, 0x98]
        );
        assert_eq!(PathRepr::parse(&Path::new_checked(&buf[..]).unwrap()), repr);
        let wide = PathRepr {
            flow_label: 0x10_0000,
            ..repr
        };
        assert_eq!(wide.check(), Err(Error::Malformed));
        assert_eq!(Path::new_checked(&buf[..43]), Err(Error::Truncated));
    }

    #[test]
    fn unknown_attribute_is_named() {
        let data = [0u8; DATA_LEN];
        assert_eq!(
            CmMessage::parse(AttributeId::CLASS_PORT_INFO, &data),
            Err(Error::UnknownAttribute(0x0001))
        );
        assert_eq!(
            CmMessage::parse(AttributeId(0x0030), &data),
            Err(Error::UnknownAttribute(0x0030))
        );
    }

    /// The receive path: frame -> transport packet to QP1 -> CM MAD.
    #[test]
    fn cm_mad_through_a_frame_and_back() {
        use crate::wire::bth::{BthRepr, GSI_QPN};
        use crate::wire::deth::{DethRepr, GSI_QKEY};
        use crate::wire::ethernet::{ETHERTYPE_IPV4, EthernetRepr};
        use crate::wire::frame::{DatagramRepr, FrameRepr, IpRepr};
        use crate::wire::opcode::Opcode;
        use crate::wire::packet::{PacketRepr, qp_default_udp_sport};
        use crate::wire::udp::{ROCE_PORT, UdpRepr};

        let sent = CmMad::send(
            0x0000_0002_F3AB_A6A3,
            CmMessage::Dreq(dreq::Repr {
                local_comm_id: 0xA3A6_ABF3,
                remote_comm_id: 0x28DB_B4EB,
                remote_qpn: 0x11,
                private_data: Opaque::zeroed(),
            }),
        );
        let mut mad = [0u8; mad::MAD_LEN];
        sent.emit(&mut mad).unwrap();
        let mut packet = PacketRepr::new(BthRepr::new(Opcode::UdSendOnly, GSI_QPN, 0), &mad);
        packet.deth = Some(DethRepr {
            qkey: GSI_QKEY,
            reserved: 0,
            src_qp: GSI_QPN,
        });
        let frame = FrameRepr {
            ethernet: EthernetRepr {
                dst_addr: [2; 6],
                src_addr: [3; 6],
                ethertype: ETHERTYPE_IPV4,
            },
            datagram: DatagramRepr {
                ip: IpRepr::ipv4([10, 9, 0, 3], [10, 9, 0, 2]),
                udp: UdpRepr {
                    src_port: qp_default_udp_sport(GSI_QPN),
                    dst_port: ROCE_PORT,
                    checksum: false,
                    payload_len: 0,
                },
                packet,
            },
        };
        let mut buf = [0u8; 400];
        let n = frame.emit(&mut buf).unwrap();
        let parsed = FrameRepr::parse(&buf[..n]).unwrap();
        let bytes = parsed.datagram.packet.qp1_mad().unwrap();
        assert_eq!(CmMad::parse(bytes), Ok(sent));
    }

    #[test]
    fn body_length_is_exact() {
        assert_eq!(
            CmMessage::parse(AttributeId::CM_RTU, &[0u8; DATA_LEN - 1]),
            Err(Error::Truncated)
        );
        assert_eq!(
            CmMessage::parse(AttributeId::CM_RTU, &[0u8; DATA_LEN + 1]),
            Err(Error::BadLength)
        );
        let msg = CmMessage::Rtu(rtu::Repr::default());
        assert_eq!(
            msg.emit(&mut [0u8; DATA_LEN - 1]),
            Err(Error::BufferTooSmall)
        );
        assert_eq!(
            CmMad::send(1, msg).emit(&mut [0u8; 255]),
            Err(Error::BufferTooSmall)
        );
    }
}
