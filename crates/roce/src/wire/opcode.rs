//! The BTH opcode table (IBA Vol 1 ch. 9 (opcodes); Linux rxe_opcode.c): for every opcode, its transport,
//! position in a message, operation class, the extension headers that follow
//! the BTH (in wire order) and whether a payload follows them.

use super::{Error, Result};

/// An extension header that can follow the BTH (IBA Vol 1 ch. 9 (extended transport headers); Linux rxe_hdr.h).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExtHeader {
    /// Datagram ETH (UD), 8 bytes.
    Deth,
    /// RDMA ETH, 16 bytes.
    Reth,
    /// Atomic ETH, 28 bytes.
    AtomicEth,
    /// ACK ETH, 4 bytes.
    Aeth,
    /// Atomic ACK ETH, 8 bytes.
    AtomicAckEth,
    /// Immediate data, 4 bytes.
    ImmDt,
    /// Invalidate ETH, 4 bytes.
    Ieth,
}

impl ExtHeader {
    /// This header's bit in [`Opcode::ext_mask`].
    pub const fn bit(self) -> u8 {
        1 << self as u8
    }

    /// Size on the wire.
    #[allow(clippy::len_without_is_empty)] // a size, not a container
    pub const fn len(self) -> usize {
        match self {
            ExtHeader::Deth | ExtHeader::AtomicAckEth => 8,
            ExtHeader::Reth => super::reth::HEADER_LEN,
            ExtHeader::AtomicEth => super::atomic_eth::HEADER_LEN,
            ExtHeader::Aeth | ExtHeader::ImmDt | ExtHeader::Ieth => 4,
        }
    }
}

/// Transport service encoded in the top 3 opcode bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// Reliable connected (0b000).
    Rc,
    /// Unreliable connected (0b001).
    Uc,
    /// Unreliable datagram (0b011).
    Ud,
}

/// Where a packet sits in its message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Position {
    /// First packet of a multi-packet message.
    First,
    /// Neither first nor last.
    Middle,
    /// Last packet of a multi-packet message.
    Last,
    /// The whole message in one packet (also ACKs, READ requests, atomics).
    Only,
}

/// The operation an opcode belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpClass {
    /// SEND (plain, with immediate or with invalidate).
    Send,
    /// RDMA WRITE (plain or with immediate).
    RdmaWrite,
    /// RDMA READ request.
    RdmaReadRequest,
    /// RDMA READ response.
    RdmaReadResponse,
    /// Acknowledge (ACK or NAK).
    Acknowledge,
    /// ATOMIC Acknowledge.
    AtomicAcknowledge,
    /// Compare & Swap.
    CompareSwap,
    /// Fetch & Add.
    FetchAdd,
}

use ExtHeader::{Aeth, AtomicAckEth, AtomicEth, Deth, Ieth, ImmDt, Reth};

macro_rules! opcodes {
    ($( $(#[$doc:meta])* $name:ident = $val:literal,
        $tr:ident, $pos:ident, $class:ident, [$($h:ident),*], $payload:literal; )*) => {
        /// A RoCEv2 BTH opcode (RC 0x00-0x17, UC 0x20-0x2B, UD 0x64-0x65).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum Opcode {
            $( $(#[$doc])* $name = $val, )*
        }

        impl Opcode {
            /// Every opcode, in numeric order.
            pub const ALL: &'static [Opcode] = &[$(Opcode::$name),*];

            /// Decode a BTH opcode byte; anything outside the table is
            /// `UnknownOpcode` (including RD, Resync, and the newer Flush
            /// and Atomic Write opcodes, which ndkrs does not speak).
            pub const fn from_u8(v: u8) -> Result<Opcode> {
                match v {
                    $( $val => Ok(Opcode::$name), )*
                    other => Err(Error::UnknownOpcode(other)),
                }
            }

            /// The transport service.
            pub const fn transport(self) -> Transport {
                match self { $( Opcode::$name => Transport::$tr, )* }
            }

            /// The packet's position in its message.
            pub const fn position(self) -> Position {
                match self { $( Opcode::$name => Position::$pos, )* }
            }

            /// The operation class.
            pub const fn class(self) -> OpClass {
                match self { $( Opcode::$name => OpClass::$class, )* }
            }

            /// Extension headers after the BTH, in wire order.
            pub const fn ext_headers(self) -> &'static [ExtHeader] {
                match self { $( Opcode::$name => &[$($h),*], )* }
            }

            /// Whether a payload (possibly empty) follows the headers.
            #[allow(clippy::indexing_slicing)] // as in `ext_mask`
            #[inline]
            pub const fn has_payload(self) -> bool {
                SHAPE[self as usize].0 & PAYLOAD != 0
            }

            /// The extension headers as a set: [`ExtHeader::bit`] of each
            /// (one table lookup per packet instead of a walk).
            // An opcode is a `u8` and SHAPE has 256 entries: in range.
            #[allow(clippy::indexing_slicing)]
            #[inline]
            pub const fn ext_mask(self) -> u8 {
                SHAPE[self as usize].0 & !PAYLOAD
            }

            /// BTH plus extension headers, in bytes (IBA Vol 1 ch. 9 (opcodes); Linux rxe_opcode.c "Header lengths").
            #[allow(clippy::indexing_slicing)] // as in `ext_mask`
            #[inline]
            pub const fn header_len(self) -> usize {
                SHAPE[self as usize].1 as usize
            }
        }

        /// In [`SHAPE`]'s set: a payload follows the headers (above every
        /// [`ExtHeader::bit`]).
        const PAYLOAD: u8 = 0x80;

        /// Per opcode byte: the extension-header set (and [`PAYLOAD`]) and
        /// the header length, read by a load instead of a jump per call.
        // Built at compile time; every opcode is a `u8`, so indexing the
        // 256 entries cannot fail.
        #[allow(clippy::indexing_slicing)]
        const SHAPE: [(u8, u8); 256] = {
            let mut t = [(0u8, 0u8); 256];
            $( t[$val] = (
                0 $(| $h.bit())* | if $payload { PAYLOAD } else { 0 },
                (super::bth::HEADER_LEN $(+ $h.len())*) as u8,
            ); )*
            t
        };

        impl Opcode {
        }
    };
}

opcodes! {
    /// RC SEND First.
    RcSendFirst = 0x00, Rc, First, Send, [], true;
    /// RC SEND Middle.
    RcSendMiddle = 0x01, Rc, Middle, Send, [], true;
    /// RC SEND Last.
    RcSendLast = 0x02, Rc, Last, Send, [], true;
    /// RC SEND Last with Immediate.
    RcSendLastWithImmediate = 0x03, Rc, Last, Send, [ImmDt], true;
    /// RC SEND Only.
    RcSendOnly = 0x04, Rc, Only, Send, [], true;
    /// RC SEND Only with Immediate.
    RcSendOnlyWithImmediate = 0x05, Rc, Only, Send, [ImmDt], true;
    /// RC RDMA WRITE First.
    RcRdmaWriteFirst = 0x06, Rc, First, RdmaWrite, [Reth], true;
    /// RC RDMA WRITE Middle.
    RcRdmaWriteMiddle = 0x07, Rc, Middle, RdmaWrite, [], true;
    /// RC RDMA WRITE Last.
    RcRdmaWriteLast = 0x08, Rc, Last, RdmaWrite, [], true;
    /// RC RDMA WRITE Last with Immediate.
    RcRdmaWriteLastWithImmediate = 0x09, Rc, Last, RdmaWrite, [ImmDt], true;
    /// RC RDMA WRITE Only.
    RcRdmaWriteOnly = 0x0A, Rc, Only, RdmaWrite, [Reth], true;
    /// RC RDMA WRITE Only with Immediate (RETH before ImmDt).
    RcRdmaWriteOnlyWithImmediate = 0x0B, Rc, Only, RdmaWrite, [Reth, ImmDt], true;
    /// RC RDMA READ Request.
    RcRdmaReadRequest = 0x0C, Rc, Only, RdmaReadRequest, [Reth], false;
    /// RC RDMA READ Response First.
    RcRdmaReadResponseFirst = 0x0D, Rc, First, RdmaReadResponse, [Aeth], true;
    /// RC RDMA READ Response Middle (no AETH).
    RcRdmaReadResponseMiddle = 0x0E, Rc, Middle, RdmaReadResponse, [], true;
    /// RC RDMA READ Response Last.
    RcRdmaReadResponseLast = 0x0F, Rc, Last, RdmaReadResponse, [Aeth], true;
    /// RC RDMA READ Response Only.
    RcRdmaReadResponseOnly = 0x10, Rc, Only, RdmaReadResponse, [Aeth], true;
    /// RC Acknowledge (ACK / NAK).
    RcAcknowledge = 0x11, Rc, Only, Acknowledge, [Aeth], false;
    /// RC ATOMIC Acknowledge.
    RcAtomicAcknowledge = 0x12, Rc, Only, AtomicAcknowledge, [Aeth, AtomicAckEth], false;
    /// RC Compare & Swap.
    RcCompareSwap = 0x13, Rc, Only, CompareSwap, [AtomicEth], false;
    /// RC Fetch & Add.
    RcFetchAdd = 0x14, Rc, Only, FetchAdd, [AtomicEth], false;
    /// RC SEND Last with Invalidate.
    RcSendLastWithInvalidate = 0x16, Rc, Last, Send, [Ieth], true;
    /// RC SEND Only with Invalidate.
    RcSendOnlyWithInvalidate = 0x17, Rc, Only, Send, [Ieth], true;
    /// UC SEND First.
    UcSendFirst = 0x20, Uc, First, Send, [], true;
    /// UC SEND Middle.
    UcSendMiddle = 0x21, Uc, Middle, Send, [], true;
    /// UC SEND Last.
    UcSendLast = 0x22, Uc, Last, Send, [], true;
    /// UC SEND Last with Immediate.
    UcSendLastWithImmediate = 0x23, Uc, Last, Send, [ImmDt], true;
    /// UC SEND Only.
    UcSendOnly = 0x24, Uc, Only, Send, [], true;
    /// UC SEND Only with Immediate.
    UcSendOnlyWithImmediate = 0x25, Uc, Only, Send, [ImmDt], true;
    /// UC RDMA WRITE First.
    UcRdmaWriteFirst = 0x26, Uc, First, RdmaWrite, [Reth], true;
    /// UC RDMA WRITE Middle.
    UcRdmaWriteMiddle = 0x27, Uc, Middle, RdmaWrite, [], true;
    /// UC RDMA WRITE Last.
    UcRdmaWriteLast = 0x28, Uc, Last, RdmaWrite, [], true;
    /// UC RDMA WRITE Last with Immediate.
    UcRdmaWriteLastWithImmediate = 0x29, Uc, Last, RdmaWrite, [ImmDt], true;
    /// UC RDMA WRITE Only.
    UcRdmaWriteOnly = 0x2A, Uc, Only, RdmaWrite, [Reth], true;
    /// UC RDMA WRITE Only with Immediate.
    UcRdmaWriteOnlyWithImmediate = 0x2B, Uc, Only, RdmaWrite, [Reth, ImmDt], true;
    /// UD SEND Only (QP1 MADs use this).
    UdSendOnly = 0x64, Ud, Only, Send, [Deth], true;
    /// UD SEND Only with Immediate (DETH before ImmDt).
    UdSendOnlyWithImmediate = 0x65, Ud, Only, Send, [Deth, ImmDt], true;
}

impl Opcode {
    /// The opcode byte.
    pub const fn to_u8(self) -> u8 {
        self as u8
    }

    /// Whether the opcode carries the extension header `h`.
    pub const fn has(self, h: ExtHeader) -> bool {
        self.ext_mask() & h.bit() != 0
    }

    /// Carries immediate data.
    pub fn has_immediate(self) -> bool {
        self.has(ExtHeader::ImmDt)
    }

    /// Carries an R_Key to invalidate.
    pub fn has_invalidate(self) -> bool {
        self.has(ExtHeader::Ieth)
    }

    /// Sent by a requester (as opposed to a responder's ACK / response).
    pub const fn is_request(self) -> bool {
        !matches!(
            self.class(),
            OpClass::RdmaReadResponse | OpClass::Acknowledge | OpClass::AtomicAcknowledge
        )
    }

    /// Starts a message (First or Only).
    pub const fn is_start(self) -> bool {
        matches!(self.position(), Position::First | Position::Only)
    }

    /// Ends a message (Last or Only).
    pub const fn is_end(self) -> bool {
        matches!(self.position(), Position::Last | Position::Only)
    }
}

impl TryFrom<u8> for Opcode {
    type Error = Error;
    fn try_from(v: u8) -> Result<Opcode> {
        Opcode::from_u8(v)
    }
}

impl From<Opcode> for u8 {
    fn from(o: Opcode) -> u8 {
        o.to_u8()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_decodes_to_itself_or_is_unknown() {
        let mut known = 0;
        for v in 0..=255u8 {
            match Opcode::from_u8(v) {
                Ok(op) => {
                    assert_eq!(op.to_u8(), v);
                    known += 1;
                }
                Err(e) => assert_eq!(e, Error::UnknownOpcode(v)),
            }
        }
        // 23 RC (0x00-0x14, 0x16, 0x17), 12 UC, 2 UD.
        assert_eq!(known, 37);
        assert_eq!(Opcode::ALL.len(), 37);
        assert_eq!(Opcode::from_u8(0x15), Err(Error::UnknownOpcode(0x15)));
        assert_eq!(Opcode::from_u8(0x18), Err(Error::UnknownOpcode(0x18)));
        assert_eq!(Opcode::from_u8(0x2C), Err(Error::UnknownOpcode(0x2C)));
        assert_eq!(Opcode::from_u8(0x66), Err(Error::UnknownOpcode(0x66)));
    }

    #[test]
    fn transport_matches_top_three_bits() {
        for &op in Opcode::ALL {
            let expect = match op.to_u8() >> 5 {
                0 => Transport::Rc,
                1 => Transport::Uc,
                3 => Transport::Ud,
                _ => unreachable!(),
            };
            assert_eq!(op.transport(), expect, "{op:?}");
        }
    }

    #[test]
    fn mask_and_length_tables_agree_with_the_header_lists() {
        for &op in Opcode::ALL {
            let hs = op.ext_headers();
            let mask = hs.iter().fold(0u8, |m, h| m | h.bit());
            assert_eq!(op.ext_mask(), mask, "{op:?}");
            let len = 12 + hs.iter().map(|h| h.len()).sum::<usize>();
            assert_eq!(op.header_len(), len, "{op:?}");
            for h in [Deth, Reth, AtomicEth, Aeth, AtomicAckEth, ImmDt, Ieth] {
                assert_eq!(op.has(h), hs.contains(&h), "{op:?} {h:?}");
            }
        }
    }

    #[test]
    fn header_lengths_match_roce_md_1_5() {
        use Opcode::*;
        let cases = [
            (RcSendOnly, 12),
            (RcSendOnlyWithImmediate, 16),
            (RcAcknowledge, 16),
            (RcSendOnlyWithInvalidate, 16),
            (RcRdmaWriteFirst, 28),
            (RcRdmaReadRequest, 28),
            (RcRdmaWriteOnlyWithImmediate, 32),
            (RcCompareSwap, 40),
            (RcFetchAdd, 40),
            (RcAtomicAcknowledge, 24),
            (UdSendOnly, 20),
            (UdSendOnlyWithImmediate, 24),
        ];
        for (op, len) in cases {
            assert_eq!(op.header_len(), len, "{op:?}");
        }
        assert_eq!(RcRdmaWriteOnlyWithImmediate.ext_headers(), &[Reth, ImmDt]);
        assert_eq!(UdSendOnlyWithImmediate.ext_headers(), &[Deth, ImmDt]);
        assert_eq!(RcAtomicAcknowledge.ext_headers(), &[Aeth, AtomicAckEth]);
    }

    #[test]
    fn uc_mirrors_rc_for_send_and_write() {
        for v in 0x00..=0x0Bu8 {
            let rc = Opcode::from_u8(v).unwrap();
            let uc = Opcode::from_u8(v | 0x20).unwrap();
            assert_eq!(rc.ext_headers(), uc.ext_headers());
            assert_eq!(rc.position(), uc.position());
            assert_eq!(rc.class(), uc.class());
            assert_eq!(rc.has_payload(), uc.has_payload());
        }
    }

    #[test]
    fn classes_and_flags() {
        use Opcode::*;
        assert!(!RcAcknowledge.has_payload());
        assert!(!RcRdmaReadRequest.has_payload());
        assert!(RcRdmaReadResponseMiddle.has_payload());
        assert!(!RcRdmaReadResponseMiddle.is_request());
        assert!(RcRdmaReadRequest.is_request());
        assert!(RcSendLastWithInvalidate.has_invalidate());
        assert!(RcRdmaWriteLastWithImmediate.has_immediate());
        assert!(!RcSendOnly.has_immediate());
        assert!(RcRdmaWriteFirst.is_start() && !RcRdmaWriteFirst.is_end());
        assert!(RcAcknowledge.is_start() && RcAcknowledge.is_end());
        assert_eq!(RcFetchAdd.class(), OpClass::FetchAdd);
        assert_eq!(RcSendOnlyWithInvalidate.class(), OpClass::Send);
    }
}
