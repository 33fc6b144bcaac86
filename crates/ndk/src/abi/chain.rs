//! MDL chains: NdkRegisterMr and NdkBuildLAM take "an MDL or a chain of
//! MDLs" (NDK_FN_REGISTER_MR, NDK_FN_BUILD_LAM reference pages). Each MDL
//! of a chain is mapped on its own, so a registration is a list of
//! logically contiguous pieces, and a LAM the concatenation of each MDL's
//! pages. The walk is portable: the shell resolves one MDL at a time
//! ([`Platform::mdl_range`], [`Platform::mdl_next`]); this module bounds
//! the chain and does the byte and page arithmetic.

use alloc::vec::Vec;

use ndkpi::*;

use super::platform::{MdlRange, Platform};

/// Longest chain walked (project bound: the walk runs on the consumer's
/// thread, so it must end however the chain is built, cycles included).
pub const MAX_MDL_CHAIN: usize = 256;

/// The MDLs of a chain, first to last, at most [`MAX_MDL_CHAIN`] plus one
/// (the extra one tells an over-long chain from one that just fits). An
/// item is `None` when the shell cannot resolve that MDL.
#[allow(missing_debug_implementations)]
pub struct Walk<'a> {
    platform: &'a dyn Platform,
    mdl: *mut MDL,
    seen: usize,
}

impl<'a> Walk<'a> {
    /// The chain starting at `mdl`.
    ///
    /// # Safety
    /// `mdl` and every MDL linked from it are what the consumer passed to
    /// the NDK call being served, valid for its duration.
    pub unsafe fn new(platform: &'a dyn Platform, mdl: *mut MDL) -> Self {
        Walk {
            platform,
            mdl,
            seen: 0,
        }
    }
}

impl Iterator for Walk<'_> {
    type Item = Option<MdlRange>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.mdl.is_null() || self.seen > MAX_MDL_CHAIN {
            return None;
        }
        self.seen += 1;
        // SAFETY: `Walk::new`'s contract covers every linked MDL.
        let range = unsafe { self.platform.mdl_range(self.mdl) };
        // SAFETY: as above: the MDL is one of the chain the contract covers.
        self.mdl = unsafe { self.platform.mdl_next(self.mdl) };
        Some(range)
    }
}

/// Where a registration's bytes live: one piece (no allocation, the
/// common single MDL) or several.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pieces {
    /// One logically contiguous piece starting here.
    One(u64),
    /// `(logical address, bytes)` per MDL used, in order.
    Many(Vec<(u64, u64)>),
}

/// The first `length` bytes of a chain: the consumer's virtual address of
/// the first byte (the region's tag) and the pieces. MDLs past `length`
/// are not looked at; empty MDLs are skipped. STATUS_INVALID_PARAMETER if
/// an MDL cannot be resolved, the chain is shorter than `length`, or more
/// than [`MAX_MDL_CHAIN`] MDLs would be needed.
pub fn registration(
    mdls: impl Iterator<Item = Option<MdlRange>>,
    length: u64,
) -> Result<(u64, Pieces), NTSTATUS> {
    let mut va = None;
    let mut first: Option<(u64, u64)> = None;
    let mut many: Option<Vec<(u64, u64)>> = None;
    let mut left = length;
    for (i, r) in mdls.enumerate() {
        if left == 0 && va.is_some() {
            break;
        }
        if i >= MAX_MDL_CHAIN {
            return Err(STATUS_INVALID_PARAMETER);
        }
        let r = r.ok_or(STATUS_INVALID_PARAMETER)?;
        va.get_or_insert(r.virtual_address);
        let take = r.length.min(left);
        if take == 0 {
            continue;
        }
        left -= take;
        let piece = (r.logical_address, take);
        match (&mut first, &mut many) {
            (None, _) => first = Some(piece),
            (Some(f), None) => many = Some(alloc::vec![*f, piece]),
            (Some(_), Some(v)) => v.push(piece),
        }
    }
    match va {
        Some(va) if left == 0 => Ok((va, finish(first, many))),
        _ => Err(STATUS_INVALID_PARAMETER),
    }
}

fn finish(first: Option<(u64, u64)>, many: Option<Vec<(u64, u64)>>) -> Pieces {
    match (many, first) {
        (Some(v), _) => Pieces::Many(v),
        (None, Some((a, _))) => Pieces::One(a),
        (None, None) => Pieces::One(0),
    }
}

/// The page list of the first `length` bytes of a chain for an
/// NDK_LOGICAL_ADDRESS_MAPPING: calls `put(i, page)` for each page that
/// fits in `room`, and returns the pages needed and the first byte offset.
/// A LAM has one first byte offset, so every MDL but the first must start
/// on a page boundary and every MDL but the last used must end on one
/// (project decision: STATUS_INVALID_PARAMETER otherwise, as for an
/// unresolvable, too short or over-long chain or a `length` of 0).
pub fn lam_pages(
    mdls: impl Iterator<Item = Option<MdlRange>>,
    length: u64,
    page: u64,
    room: u64,
    mut put: impl FnMut(u64, u64),
) -> Result<(u64, u64), NTSTATUS> {
    if length == 0 || !page.is_power_of_two() {
        return Err(STATUS_INVALID_PARAMETER);
    }
    let mask = page - 1;
    let mut left = length;
    let mut count = 0u64;
    let mut fbo = None;
    let mut ended_on_page = true;
    for (i, r) in mdls.enumerate() {
        if left == 0 {
            break;
        }
        if i >= MAX_MDL_CHAIN {
            return Err(STATUS_INVALID_PARAMETER);
        }
        let r = r.ok_or(STATUS_INVALID_PARAMETER)?;
        let take = r.length.min(left);
        if take == 0 {
            continue;
        }
        let start = r.logical_address;
        let end = start.checked_add(take).ok_or(STATUS_INVALID_PARAMETER)?;
        if fbo.is_some() && (!ended_on_page || start & mask != 0) {
            return Err(STATUS_INVALID_PARAMETER);
        }
        fbo.get_or_insert(start & mask);
        ended_on_page = end & mask == 0;
        let mut p = start & !mask;
        while p < end {
            if count < room {
                put(count, p);
            }
            count += 1;
            p = match p.checked_add(page) {
                Some(n) => n,
                None => break,
            };
        }
        left -= take;
    }
    match fbo {
        Some(fbo) if left == 0 => Ok((count, fbo)),
        _ => Err(STATUS_INVALID_PARAMETER),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn r(va: u64, logical: u64, length: u64) -> Option<MdlRange> {
        Some(MdlRange {
            virtual_address: va,
            logical_address: logical,
            length,
        })
    }

    #[test]
    fn one_mdl_is_one_piece() {
        let got = registration([r(0x7000, 0x9000, 100)].into_iter(), 60);
        assert_eq!(got, Ok((0x7000, Pieces::One(0x9000))));
    }

    #[test]
    fn a_chain_is_its_pieces_up_to_length() {
        let chain = [
            r(0x7003, 0x9003, 10),
            r(0x5000, 0xA000, 0),
            r(0x6000, 0xB000, 20),
            r(0x8000, 0xC000, 30),
            None, // never looked at: the length ends before it
        ];
        let got = registration(chain.into_iter(), 40);
        assert_eq!(
            got,
            Ok((
                0x7003,
                Pieces::Many(vec![(0x9003, 10), (0xB000, 20), (0xC000, 10)])
            ))
        );
    }

    #[test]
    fn short_broken_or_long_chains_are_refused() {
        let short = [r(1, 0x9000, 10), r(2, 0xA000, 10)];
        assert_eq!(
            registration(short.into_iter(), 21),
            Err(STATUS_INVALID_PARAMETER)
        );
        let broken = [r(1, 0x9000, 10), None];
        assert_eq!(
            registration(broken.into_iter(), 11),
            Err(STATUS_INVALID_PARAMETER)
        );
        assert_eq!(
            registration(core::iter::empty(), 1),
            Err(STATUS_INVALID_PARAMETER)
        );
        let long = core::iter::repeat(r(1, 0x9000, 1));
        assert_eq!(
            registration(long.clone(), MAX_MDL_CHAIN as u64),
            Ok((1, Pieces::Many(vec![(0x9000, 1); MAX_MDL_CHAIN])))
        );
        assert_eq!(
            registration(long, MAX_MDL_CHAIN as u64 + 1),
            Err(STATUS_INVALID_PARAMETER)
        );
    }

    #[test]
    fn lam_concatenates_each_mdls_pages() {
        let chain = [
            r(0, 0x10_0F00, 0x100),  // tail of one page
            r(0, 0x20_0000, 0x2000), // two whole pages
            r(0, 0x30_0000, 0x1800), // one and a half, then cut by length
        ];
        let mut pages = [0u64; 8];
        let got = lam_pages(
            chain.into_iter(),
            0x100 + 0x2000 + 0x10,
            0x1000,
            8,
            |i, p| pages[i as usize] = p,
        );
        assert_eq!(got, Ok((4, 0xF00)));
        assert_eq!(&pages[..4], &[0x10_0000, 0x20_0000, 0x20_1000, 0x30_0000]);
        // Too little room: the count is still right, nothing beyond room
        // is written.
        let mut n = 0;
        let got = lam_pages(chain.into_iter(), 0x3900, 0x1000, 2, |i, _| {
            assert!(i < 2);
            n += 1;
        });
        assert_eq!(got, Ok((5, 0xF00)));
        assert_eq!(n, 2);
    }

    #[test]
    fn lam_refuses_gaps_inside_pages() {
        let mid_start = [r(0, 0x1F00, 0x100), r(0, 0x3010, 0x10)];
        assert_eq!(
            lam_pages(mid_start.into_iter(), 0x110, 0x1000, 9, |_, _| {}),
            Err(STATUS_INVALID_PARAMETER)
        );
        let mid_end = [r(0, 0x1000, 0x10), r(0, 0x3000, 0x10)];
        assert_eq!(
            lam_pages(mid_end.into_iter(), 0x20, 0x1000, 9, |_, _| {}),
            Err(STATUS_INVALID_PARAMETER)
        );
        // The same chain cut inside its first MDL is fine.
        assert_eq!(
            lam_pages(mid_end.into_iter(), 0x8, 0x1000, 9, |_, _| {}),
            Ok((1, 0))
        );
        assert_eq!(
            lam_pages(mid_end.into_iter(), 0, 0x1000, 9, |_, _| {}),
            Err(STATUS_INVALID_PARAMETER)
        );
    }
}
