use super::*;
use crate::rc::memory::ArenaMemory;

const PD: u32 = 1;
const RW: Access = Access::LOCAL_WRITE
    .union(Access::REMOTE_WRITE)
    .union(Access::REMOTE_READ);

fn table_with_mr(access: Access) -> (KeyTable, MrHandle, u32) {
    let mut t = KeyTable::new(0);
    let h = t
        .register_mr(
            PD,
            0x1000,
            0x100,
            access,
            Translation::Contiguous { base: 0x40 },
        )
        .unwrap();
    let k = t.mr_key(h).unwrap();
    (t, h, k)
}

#[test]
fn remote_checks_key_pd_bounds_rights() {
    let (t, _, k) = table_with_mr(RW);
    assert_eq!(
        t.resolve_remote(k, PD, 0x1000, 0x100, Access::REMOTE_WRITE),
        Ok(Place::Mr {
            index: k >> 8,
            offset: 0
        })
    );
    assert_eq!(
        t.resolve_remote(k, PD, 0x10F0, 0x10, Access::REMOTE_READ),
        Ok(Place::Mr {
            index: k >> 8,
            offset: 0xF0
        })
    );
    // Key byte wrong, index wrong, privileged key remotely.
    assert_eq!(
        t.resolve_remote(k ^ 1, PD, 0x1000, 1, Access::REMOTE_READ),
        Err(AccessError::BadKey)
    );
    assert_eq!(
        t.resolve_remote(k + 0x100, PD, 0x1000, 1, Access::REMOTE_READ),
        Err(AccessError::BadKey)
    );
    assert_eq!(
        t.resolve_remote(0, PD, 0x1000, 1, Access::REMOTE_READ),
        Err(AccessError::BadKey)
    );
    assert_eq!(
        t.resolve_remote(k, PD + 1, 0x1000, 1, Access::REMOTE_READ),
        Err(AccessError::WrongPd)
    );
    // Bounds: one byte past, one byte before, overflow.
    assert_eq!(
        t.resolve_remote(k, PD, 0x1000, 0x101, Access::REMOTE_READ),
        Err(AccessError::OutOfBounds)
    );
    assert_eq!(
        t.resolve_remote(k, PD, 0xFFF, 1, Access::REMOTE_READ),
        Err(AccessError::OutOfBounds)
    );
    assert_eq!(
        t.resolve_remote(k, PD, 0x10FF, u64::MAX, Access::REMOTE_READ),
        Err(AccessError::OutOfBounds)
    );
    assert_eq!(
        t.resolve_remote(k, PD, u64::MAX, 2, Access::REMOTE_READ),
        Err(AccessError::OutOfBounds)
    );

    let (ro, _, k) = table_with_mr(Access::REMOTE_READ);
    assert_eq!(
        ro.resolve_remote(k, PD, 0x1000, 1, Access::REMOTE_WRITE),
        Err(AccessError::NoPermission)
    );
    assert!(
        ro.resolve_remote(k, PD, 0x1000, 1, Access::REMOTE_READ)
            .is_ok()
    );
    let (wo, _, k) = table_with_mr(Access::LOCAL_WRITE | Access::REMOTE_WRITE);
    assert_eq!(
        wo.resolve_remote(k, PD, 0x1000, 1, Access::REMOTE_READ),
        Err(AccessError::NoPermission)
    );
}

#[test]
fn local_checks() {
    let (t, _, k) = table_with_mr(Access::NONE);
    let sge = Sge {
        addr: 0x1010,
        length: 0x10,
        lkey: k,
    };
    assert!(t.resolve_local(&sge, PD, false).is_ok());
    assert_eq!(
        t.resolve_local(&sge, PD, true),
        Err(AccessError::NoPermission)
    );
    assert_eq!(t.resolve_local(&sge, 7, false), Err(AccessError::WrongPd));
    let far = Sge {
        addr: 0x10F8,
        length: 9,
        lkey: k,
    };
    assert_eq!(
        t.resolve_local(&far, PD, false),
        Err(AccessError::OutOfBounds)
    );
    let p = Sge {
        addr: 5,
        length: 3,
        lkey: PRIVILEGED_LKEY,
    };
    assert_eq!(t.resolve_local(&p, PD, true), Ok(Place::Logical(5)));
    let wrap = Sge {
        addr: u64::MAX,
        length: 3,
        lkey: PRIVILEGED_LKEY,
    };
    assert_eq!(
        t.resolve_local(&wrap, PD, true),
        Err(AccessError::OutOfBounds)
    );
}

#[test]
fn registration_rejects_bad_arguments() {
    let mut t = KeyTable::new(0);
    let c = Translation::Contiguous { base: 0 };
    assert_eq!(
        t.register_mr(PD, 0, 1, Access::REMOTE_WRITE, c),
        Err(Error::InvalidArgument)
    );
    assert_eq!(
        t.register_mr(PD, u64::MAX, 2, Access::NONE, c),
        Err(Error::InvalidArgument)
    );
    let pages = [0u64, 4096];
    let p = |ps, fbo| Translation::Pages {
        page_size: ps,
        first_byte_offset: fbo,
        pages: &pages,
    };
    assert_eq!(
        t.register_mr(PD, 0, 8193, Access::NONE, p(4096, 0)),
        Err(Error::InvalidArgument)
    );
    assert_eq!(
        t.register_mr(PD, 0, 8000, Access::NONE, p(4096, 200)),
        Err(Error::InvalidArgument)
    );
    assert_eq!(
        t.register_mr(PD, 0, 10, Access::NONE, p(4096, 4096)),
        Err(Error::InvalidArgument)
    );
    assert_eq!(
        t.register_mr(PD, 0, 10, Access::NONE, p(1000, 0)),
        Err(Error::InvalidArgument)
    );
    assert!(t.register_mr(PD, 0, 8192, Access::NONE, p(4096, 0)).is_ok());
}

#[test]
fn page_lists_split_at_page_boundaries() {
    let mem = ArenaMemory::new(0x4000);
    let mut t = KeyTable::new(0);
    // Pages out of order: MR byte 0 is at 0x2000 + 0xFFC.
    let pages = [0x2000u64, 0x0000, 0x3000];
    let h = t
        .register_mr(
            PD,
            0x7000_0000,
            0x1800,
            Access::LOCAL_WRITE,
            Translation::Pages {
                page_size: 0x1000,
                first_byte_offset: 0xFFC,
                pages: &pages,
            },
        )
        .unwrap();
    let k = t.mr_key(h).unwrap();
    let sge = Sge {
        addr: 0x7000_0000,
        length: 8,
        lkey: k,
    };
    let place = t.resolve_local(&sge, PD, true).unwrap();
    assert!(t.write(&mem, place, &[1, 2, 3, 4, 5, 6, 7, 8]));
    assert_eq!(mem.snapshot(0x2FFC, 4), [1, 2, 3, 4]);
    assert_eq!(mem.snapshot(0x0000, 4), [5, 6, 7, 8]);
    let mut back = [0u8; 8];
    assert!(t.read(&mem, place, &mut back));
    assert_eq!(back, [1, 2, 3, 4, 5, 6, 7, 8]);
    // Past the last page of the list is unmapped.
    let end = Place::Mr {
        index: k >> 8,
        offset: 0x2004 + 0x1000,
    };
    assert!(!t.read(&mem, end, &mut back));
}

#[test]
fn ranges_split_at_piece_boundaries() {
    let mem = ArenaMemory::new(0x4000);
    let mut t = KeyTable::new(0);
    // Three pieces of odd sizes, out of order in memory.
    let ranges = [(0x3000u64, 3), (0x0100, 5), (0x2000, 0x10)];
    assert_eq!(
        t.register_mr(
            PD,
            0x1000,
            0x17,
            Access::NONE,
            Translation::Ranges { ranges: &ranges }
        ),
        Err(Error::InvalidArgument)
    );
    assert_eq!(
        t.register_mr(
            PD,
            0x1000,
            0x18,
            Access::NONE,
            Translation::Ranges {
                ranges: &[(0, 0x18), (9, 0)]
            }
        ),
        Err(Error::InvalidArgument)
    );
    let h = t
        .register_mr(
            PD,
            0x1000,
            0x18,
            Access::LOCAL_WRITE,
            Translation::Ranges { ranges: &ranges },
        )
        .unwrap();
    let k = t.mr_key(h).unwrap();
    let sge = Sge {
        addr: 0x1001,
        length: 8,
        lkey: k,
    };
    let place = t.resolve_local(&sge, PD, true).unwrap();
    assert!(t.write(&mem, place, &[1, 2, 3, 4, 5, 6, 7, 8]));
    assert_eq!(mem.snapshot(0x3001, 2), [1, 2]);
    assert_eq!(mem.snapshot(0x0100, 5), [3, 4, 5, 6, 7]);
    assert_eq!(mem.snapshot(0x2000, 1), [8]);
    let mut back = [0u8; 8];
    assert!(t.read(&mem, place, &mut back));
    assert_eq!(back, [1, 2, 3, 4, 5, 6, 7, 8]);
    // Past the last piece is unmapped.
    let end = Place::Mr {
        index: k >> 8,
        offset: 0x17,
    };
    assert!(!t.read(&mem, end, &mut [0u8; 2]));
}

#[test]
fn fast_register_and_invalidate_change_keys() {
    let mut t = KeyTable::new(0);
    let h = t.alloc_fast_reg_mr(PD, 4, true).unwrap();
    let k0 = t.mr_key(h).unwrap();
    // Not valid before registration.
    assert_eq!(
        t.resolve_remote(k0, PD, 0x1000, 1, Access::REMOTE_READ),
        Err(AccessError::NotValid)
    );
    let p = FastRegParams {
        iova: 0x1000,
        length: 0x2000,
        page_size: 0x1000,
        fbo: 0,
        npages: 2,
        access: Access::LOCAL_WRITE | Access::REMOTE_READ,
    };
    let key = t.stage_fast_reg(h, PD, &p, &[0x8000, 0x9000]).unwrap();
    assert_eq!(
        t.stage_fast_reg(h, PD, &p, &[0x8000, 0x9000]),
        Err(Error::Busy)
    );
    let k1 = t.mr_key(h).unwrap();
    assert_ne!(k0, k1);
    t.exec_fast_reg(h, key, &p).unwrap();
    assert!(
        t.resolve_remote(k1, PD, 0x1000, 0x2000, Access::REMOTE_READ)
            .is_ok()
    );
    assert_eq!(
        t.resolve_remote(k0, PD, 0x1000, 1, Access::REMOTE_READ),
        Err(AccessError::BadKey)
    );
    // Remote invalidate through the key, then the key is dead.
    t.invalidate_key(k1, PD).unwrap();
    assert_eq!(
        t.resolve_remote(k1, PD, 0x1000, 1, Access::REMOTE_READ),
        Err(AccessError::NotValid)
    );
    assert_eq!(t.invalidate_key(k1, PD), Err(AccessError::NotValid));
    // Remote access on an MR initialised without it is refused at post.
    let h2 = t.alloc_fast_reg_mr(PD, 1, false).unwrap();
    let p2 = FastRegParams {
        length: 1,
        npages: 1,
        ..p
    };
    assert_eq!(
        t.stage_fast_reg(h2, PD, &p2, &[0]),
        Err(Error::AccessDenied)
    );
    // Too many pages.
    assert_eq!(
        t.stage_fast_reg(h, PD, &p, &[0; 5]),
        Err(Error::InvalidArgument)
    );
    // A registered MR cannot be invalidated remotely.
    let (mut t3, _, k3) = table_with_mr(RW);
    assert_eq!(t3.invalidate_key(k3, PD), Err(AccessError::BadKey));
}

#[test]
fn windows_bind_check_and_invalidate() {
    let (mut t, mr, old_key) = table_with_mr(RW);
    let mw = t.alloc_mw(PD).unwrap();
    let key = t.stage_bind(mw).unwrap();
    let rk = t.mw_key(mw).unwrap();
    // Outside the MR.
    assert_eq!(
        t.exec_bind(mw, key, mr, PD, 0x10F0, 0x20, Access::REMOTE_READ),
        Err(AccessError::OutOfBounds)
    );
    t.exec_bind(mw, key, mr, PD, 0x1010, 0x20, Access::REMOTE_READ)
        .unwrap();
    assert!(
        t.resolve_remote(rk, PD, 0x1010, 0x20, Access::REMOTE_READ)
            .is_ok()
    );
    assert_eq!(
        t.resolve_remote(rk, PD, 0x1010, 0x21, Access::REMOTE_READ),
        Err(AccessError::OutOfBounds)
    );
    assert_eq!(
        t.resolve_remote(rk, PD, 0x1010, 1, Access::REMOTE_WRITE),
        Err(AccessError::NoPermission)
    );
    assert_eq!(t.dereg_mr(mr), Err(Error::Busy));
    t.local_invalidate(InvalidateTarget::Mw(mw), PD).unwrap();
    assert_eq!(
        t.resolve_remote(rk, PD, 0x1010, 1, Access::REMOTE_READ),
        Err(AccessError::NotValid)
    );
    assert_eq!(
        t.local_invalidate(InvalidateTarget::Mw(mw), PD),
        Err(AccessError::NotValid)
    );
    t.dereg_mr(mr).unwrap();
    // Stale handle and reused slot: new key byte.
    assert_eq!(t.dereg_mr(mr), Err(Error::InvalidHandle));
    let again = t
        .register_mr(PD, 0x1000, 0x100, RW, Translation::Contiguous { base: 0 })
        .unwrap();
    assert_eq!(again.index, mr.index);
    let new_key = t.mr_key(again).unwrap();
    assert_ne!(new_key & 0xFF, old_key & 0xFF);
    assert_eq!(
        t.resolve_remote(old_key, PD, 0x1000, 1, Access::REMOTE_READ),
        Err(AccessError::BadKey)
    );
    assert_eq!(t.mr_pd(mr), None);
}
