//! ReadyToUse, RTU (attribute 0x0014; IBA Vol 1 ch. 12 (RTU, DREQ, DREP); Linux include/rdma/ibta_vol1_c12.h).

cm_comm_ids_message!("RTU");

#[cfg(test)]
mod tests {
    use super::super::DATA_LEN;
    use super::*;

    #[test]
    fn round_trip_and_layout() {
        let repr = Repr {
            local_comm_id: 0xA3A6_ABF3,
            remote_comm_id: 0x28DB_B4EB,
            private_data: Opaque::from_prefix(&[0x77; PRIVATE_DATA_LEN]).unwrap(),
        };
        let mut buf = [0u8; DATA_LEN];
        repr.emit(&mut Packet::new_checked(&mut buf[..]).unwrap())
            .unwrap();
        assert_eq!(
            Repr::parse(&Packet::new_checked(&buf[..]).unwrap()),
            Ok(repr)
        );
        assert_eq!(buf[0..8], [0xA3, 0xA6, 0xAB, 0xF3, 0x28, 0xDB, 0xB4, 0xEB]);
        assert!(buf[8..].iter().all(|&b| b == 0x77));
    }
}
