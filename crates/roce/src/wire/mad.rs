//! Management datagrams (MADs) carried over QP1 (IBA Vol 1 ch. 13 (MADs, GSI); Linux include/rdma/ib_mad.h).
//!
//! A MAD is always exactly 256 bytes: a 24-byte common header followed by
//! 232 bytes of class data. Only the common header is decoded here; the CM
//! class data is decoded by [`super::cm`].

use core::fmt;

use super::bytes::{check_exact, fields, set_flag, set_u8, set_u16, u8_at, u16_at, view};
use super::{Error, Result};

/// Size of every MAD on the wire (IBA Vol 1 ch. 13 (MADs, GSI); Linux include/rdma/ib_mad.h, IBA Vol 1 and Linux rxe).
pub const MAD_LEN: usize = 256;
/// Size of the common MAD header.
pub const HEADER_LEN: usize = 24;
/// Size of the class data that follows the common header.
pub const DATA_LEN: usize = MAD_LEN - HEADER_LEN;

/// The only MAD base version defined by the IBA.
pub const BASE_VERSION: u8 = 1;
/// Class version of the communication management class (IBA 1.2).
pub const CM_CLASS_VERSION: u8 = 2;

/// Management class (byte 1 of the header).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MgmtClass(pub u8);

impl MgmtClass {
    /// Subnet management, LID routed.
    pub const SUBN_LID_ROUTED: Self = Self(0x01);
    /// Subnet administration.
    pub const SUBN_ADM: Self = Self(0x03);
    /// Performance management.
    pub const PERF_MGMT: Self = Self(0x04);
    /// Baseboard management.
    pub const BM: Self = Self(0x05);
    /// Device management.
    pub const DEVICE_MGMT: Self = Self(0x06);
    /// Communication management: the class every IB CM message uses.
    pub const CM: Self = Self(0x07);
    /// SNMP tunnelling.
    pub const SNMP: Self = Self(0x08);
    /// Subnet management, directed route.
    pub const SUBN_DIRECTED_ROUTE: Self = Self(0x81);
}

/// Method byte (byte 3): bit 7 is the response flag R, bits 6..0 the method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Method(pub u8);

impl Method {
    /// The R bit: set on responses.
    pub const RESPONSE_BIT: u8 = 0x80;
    /// Get.
    pub const GET: Self = Self(0x01);
    /// Set.
    pub const SET: Self = Self(0x02);
    /// Send: every CM message uses it (the Linux rxe captures in crates/roce/tests/data).
    pub const SEND: Self = Self(0x03);
    /// Trap.
    pub const TRAP: Self = Self(0x05);
    /// Report.
    pub const REPORT: Self = Self(0x06);
    /// TrapRepress.
    pub const TRAP_REPRESS: Self = Self(0x07);
    /// GetResp (Get with R set).
    pub const GET_RESP: Self = Self(0x81);
    /// ReportResp (Report with R set).
    pub const REPORT_RESP: Self = Self(0x86);

    /// Whether the R (response) bit is set.
    pub const fn is_response(self) -> bool {
        self.0 & Self::RESPONSE_BIT != 0
    }

    /// The method code without the R bit.
    pub const fn code(self) -> u8 {
        self.0 & !Self::RESPONSE_BIT
    }
}

/// Attribute ID (bytes 16-17). The constants are those of the CM class
/// (IBA Vol 1 ch. 12; Linux drivers/infiniband/core/cm.c, ib_cm.h).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AttributeId(pub u16);

impl AttributeId {
    /// ClassPortInfo (common to all classes).
    pub const CLASS_PORT_INFO: Self = Self(0x0001);
    /// CM ConnectRequest.
    pub const CM_REQ: Self = Self(0x0010);
    /// CM MessageReceiptAcknowledgement.
    pub const CM_MRA: Self = Self(0x0011);
    /// CM ConnectReject.
    pub const CM_REJ: Self = Self(0x0012);
    /// CM ConnectReply.
    pub const CM_REP: Self = Self(0x0013);
    /// CM ReadyToUse.
    pub const CM_RTU: Self = Self(0x0014);
    /// CM DisconnectRequest.
    pub const CM_DREQ: Self = Self(0x0015);
    /// CM DisconnectReply.
    pub const CM_DREP: Self = Self(0x0016);
    /// CM ServiceIDResolutionRequest.
    pub const CM_SIDR_REQ: Self = Self(0x0017);
    /// CM ServiceIDResolutionResponse.
    pub const CM_SIDR_REP: Self = Self(0x0018);
    /// CM LoadAlternatePath.
    pub const CM_LAP: Self = Self(0x0019);
    /// CM AlternatePathResponse.
    pub const CM_APR: Self = Self(0x001A);
}

impl fmt::Display for AttributeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#06x}", self.0)
    }
}

/// Byte positions of the common header (IBA Vol 1 ch. 13 (MADs, GSI); Linux include/rdma/ib_mad.h).
mod field {
    pub const BASE_VERSION: usize = 0;
    pub const MGMT_CLASS: usize = 1;
    pub const CLASS_VERSION: usize = 2;
    pub const METHOD: usize = 3;
    pub const STATUS: usize = 4;
    pub const CLASS_SPECIFIC: usize = 6;
    pub const TRANSACTION_ID: usize = 8;
    pub const ATTRIBUTE_ID: usize = 16;
    pub const RESERVED: usize = 18;
    pub const ATTRIBUTE_MODIFIER: usize = 20;
}

view!(Packet, "A read/write view of a 256-byte MAD.");

fields! { Packet;
    /// BaseVersion (byte 0).
    base_version, set_base_version: u8(field::BASE_VERSION);
    /// ClassVersion (byte 2).
    class_version, set_class_version: u8(field::CLASS_VERSION);
    /// Status (bytes 4-5).
    status, set_status: u16(field::STATUS);
    /// ClassSpecific (bytes 6-7).
    class_specific, set_class_specific: u16(field::CLASS_SPECIFIC);
    /// TransactionID (bytes 8-15).
    transaction_id, set_transaction_id: u64(field::TRANSACTION_ID);
    /// The reserved bytes 18-19.
    reserved, set_reserved: u16(field::RESERVED);
    /// AttributeModifier (bytes 20-23).
    attribute_modifier, set_attribute_modifier: u32(field::ATTRIBUTE_MODIFIER);
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// A MAD is exactly 256 bytes (IBA Vol 1 ch. 13 (MADs, GSI); Linux include/rdma/ib_mad.h): shorter is
    /// [`Error::Truncated`], longer is [`Error::BadLength`].
    pub fn check_len(&self) -> Result<()> {
        check_exact(self.buffer.as_ref().len(), MAD_LEN)
    }

    /// MgmtClass (byte 1).
    pub fn mgmt_class(&self) -> MgmtClass {
        MgmtClass(u8_at(self.buffer.as_ref(), field::MGMT_CLASS))
    }

    /// The whole method byte (R bit included).
    pub fn method(&self) -> Method {
        Method(u8_at(self.buffer.as_ref(), field::METHOD))
    }

    /// The R (response) bit of the method byte.
    pub fn is_response(&self) -> bool {
        self.method().is_response()
    }

    /// AttributeID (bytes 16-17).
    pub fn attribute_id(&self) -> AttributeId {
        AttributeId(u16_at(self.buffer.as_ref(), field::ATTRIBUTE_ID))
    }

    /// The 232 bytes of class data (empty if the buffer is too short).
    pub fn data(&self) -> &[u8] {
        self.buffer.as_ref().get(HEADER_LEN..MAD_LEN).unwrap_or(&[])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets MgmtClass.
    pub fn set_mgmt_class(&mut self, v: MgmtClass) {
        set_u8(self.buffer.as_mut(), field::MGMT_CLASS, v.0);
    }

    /// Sets the whole method byte.
    pub fn set_method(&mut self, v: Method) {
        set_u8(self.buffer.as_mut(), field::METHOD, v.0);
    }

    /// Sets or clears the R bit, keeping the method code.
    pub fn set_response(&mut self, v: bool) {
        set_flag(self.buffer.as_mut(), field::METHOD, Method::RESPONSE_BIT, v);
    }

    /// Sets AttributeID.
    pub fn set_attribute_id(&mut self, v: AttributeId) {
        set_u16(self.buffer.as_mut(), field::ATTRIBUTE_ID, v.0);
    }

    /// The class data, writable.
    pub fn data_mut(&mut self) -> &mut [u8] {
        self.buffer
            .as_mut()
            .get_mut(HEADER_LEN..MAD_LEN)
            .unwrap_or(&mut [])
    }
}

/// The common MAD header, decoded.
///
/// BaseVersion is not stored: it is always [`BASE_VERSION`]. The reserved
/// bytes 18-19 are ignored on parse and sent as zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    /// Management class.
    pub mgmt_class: MgmtClass,
    /// Class version.
    pub class_version: u8,
    /// Method, R bit included.
    pub method: Method,
    /// Status.
    pub status: u16,
    /// Class-specific word.
    pub class_specific: u16,
    /// Transaction ID (the Linux rxe captures in crates/roce/tests/data for how Linux builds it for CM).
    pub transaction_id: u64,
    /// Attribute ID.
    pub attribute_id: AttributeId,
    /// Attribute modifier (ECE may use it on newer kernels: IBA Vol 1 ch. 13 (MADs, GSI); Linux include/rdma/ib_mad.h).
    pub attribute_modifier: u32,
}

impl Repr {
    /// Decodes the header of a checked MAD.
    ///
    /// Fails with [`Error::BadVersion`] unless BaseVersion is 1 and, for the
    /// CM class, ClassVersion is 2 (cm_msgs.h). Class versions of other
    /// classes are not judged here: their codecs do that.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Self> {
        packet.check_len()?;
        if packet.base_version() != BASE_VERSION {
            return Err(Error::BadVersion);
        }
        let mgmt_class = packet.mgmt_class();
        let class_version = packet.class_version();
        if mgmt_class == MgmtClass::CM && class_version != CM_CLASS_VERSION {
            return Err(Error::BadVersion);
        }
        Ok(Repr {
            mgmt_class,
            class_version,
            method: packet.method(),
            status: packet.status(),
            class_specific: packet.class_specific(),
            transaction_id: packet.transaction_id(),
            attribute_id: packet.attribute_id(),
            attribute_modifier: packet.attribute_modifier(),
        })
    }

    /// Bytes `emit` writes: the header only.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header (BaseVersion 1, reserved bytes zero); the class
    /// data is left as it is.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) -> Result<()> {
        if packet.buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::BufferTooSmall);
        }
        packet.set_base_version(BASE_VERSION);
        packet.set_mgmt_class(self.mgmt_class);
        packet.set_class_version(self.class_version);
        packet.set_method(self.method);
        packet.set_status(self.status);
        packet.set_class_specific(self.class_specific);
        packet.set_transaction_id(self.transaction_id);
        packet.set_attribute_id(self.attribute_id);
        packet.set_reserved(0);
        packet.set_attribute_modifier(self.attribute_modifier);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Repr {
        Repr {
            mgmt_class: MgmtClass::CM,
            class_version: CM_CLASS_VERSION,
            method: Method::SEND,
            status: 0x1234,
            class_specific: 0x5678,
            transaction_id: 0x0000_0002_F3AB_A6A3,
            attribute_id: AttributeId::CM_DREQ,
            attribute_modifier: 0xDEAD_BEEF,
        }
    }

    #[test]
    fn header_round_trip_and_layout() {
        let mut buf = [0xEEu8; MAD_LEN];
        let mut packet = Packet::new_checked(&mut buf[..]).unwrap();
        sample().emit(&mut packet).unwrap();
        assert_eq!(Repr::parse(&packet).unwrap(), sample());
        // IBA Vol 1 ch. 13 (MADs, GSI); Linux include/rdma/ib_mad.h byte positions.
        assert_eq!(
            buf[..HEADER_LEN],
            [
                0x01, 0x07, 0x02, 0x03, 0x12, 0x34, 0x56, 0x78, 0x00, 0x00, 0x00, 0x02, 0xF3, 0xAB,
                0xA6, 0xA3, 0x00, 0x15, 0x00, 0x00, 0xDE, 0xAD, 0xBE, 0xEF
            ]
        );
        // The class data is not touched by the header emit.
        assert!(buf[HEADER_LEN..].iter().all(|&b| b == 0xEE));
    }

    #[test]
    fn length_must_be_exact() {
        assert_eq!(Packet::new_checked(&[0u8; 255][..]), Err(Error::Truncated));
        assert_eq!(Packet::new_checked(&[0u8; 257][..]), Err(Error::BadLength));
        assert_eq!(Packet::new_checked(&[0u8; 0][..]), Err(Error::Truncated));
    }

    #[test]
    fn versions_are_checked() {
        let mut buf = [0u8; MAD_LEN];
        sample()
            .emit(&mut Packet::new_unchecked(&mut buf[..]))
            .unwrap();
        buf[0] = 2;
        assert_eq!(
            Repr::parse(&Packet::new_unchecked(&buf[..])),
            Err(Error::BadVersion)
        );
        buf[0] = 1;
        buf[2] = 1;
        assert_eq!(
            Repr::parse(&Packet::new_unchecked(&buf[..])),
            Err(Error::BadVersion)
        );
        // Another class keeps its own class version.
        buf[1] = MgmtClass::SUBN_ADM.0;
        assert_eq!(
            Repr::parse(&Packet::new_unchecked(&buf[..]))
                .unwrap()
                .class_version,
            1
        );
    }

    #[test]
    fn method_r_bit() {
        assert!(Method::GET_RESP.is_response());
        assert_eq!(Method::GET_RESP.code(), Method::GET.0);
        assert!(!Method::SEND.is_response());
        let mut buf = [0u8; MAD_LEN];
        let mut packet = Packet::new_unchecked(&mut buf[..]);
        packet.set_method(Method::REPORT);
        packet.set_response(true);
        assert_eq!(packet.method(), Method::REPORT_RESP);
        assert!(packet.is_response());
    }

    #[test]
    fn unchecked_short_buffer_does_not_panic() {
        let packet = Packet::new_unchecked(&[1u8, 7][..]);
        assert_eq!(packet.transaction_id(), 0);
        assert!(packet.data().is_empty());
        assert_eq!(Repr::parse(&packet), Err(Error::Truncated));
        let mut short = [0u8; 4];
        let mut packet = Packet::new_unchecked(&mut short[..]);
        packet.set_attribute_modifier(7);
        assert_eq!(sample().emit(&mut packet), Err(Error::BufferTooSmall));
    }
}
