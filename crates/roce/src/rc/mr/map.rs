//! How an MR's bytes map to logical addresses: the consumer's
//! [`Translation`] at registration, the table's own copy of it, and the
//! [`Place`] a checked key resolves to.

use alloc::vec::Vec;

/// How an MR's bytes map to logical addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Translation<'a> {
    /// One logically contiguous block starting at `base`.
    Contiguous {
        /// Logical address of the MR's first byte.
        base: u64,
    },
    /// A page list (NDK fast-register and LAM page arrays): the MR's first
    /// byte is `first_byte_offset` into `pages[0]`.
    Pages {
        /// Bytes per page (a power of two).
        page_size: u64,
        /// Offset of the first byte in the first page.
        first_byte_offset: u64,
        /// Logical address of each page.
        pages: &'a [u64],
    },
    /// Logically contiguous pieces `(logical address, bytes)` laid end to
    /// end (an NDK MDL chain: each MDL is mapped on its own, so the MR is
    /// contiguous only piece by piece).
    Ranges {
        /// The pieces in MR order; their lengths add up to the MR's length.
        ranges: &'a [(u64, u64)],
    },
}

/// Where resolved bytes live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    /// A logical address (privileged key).
    Logical(u64),
    /// Offset into an MR's translation.
    Mr { index: u32, offset: u64 },
}

impl Place {
    /// The place `delta` bytes further on (the range was checked whole).
    pub(crate) fn advance(self, delta: u64) -> Place {
        match self {
            Place::Logical(a) => Place::Logical(a.wrapping_add(delta)),
            Place::Mr { index, offset } => Place::Mr {
                index,
                offset: offset.wrapping_add(delta),
            },
        }
    }
}

#[derive(Debug)]
pub(super) enum Map {
    Contiguous {
        base: u64,
    },
    Pages {
        page_size: u64,
        fbo: u64,
        pages: Vec<u64>,
        count: usize,
    },
    Ranges {
        ranges: Vec<(u64, u64)>,
    },
}

impl Map {
    /// Calls `f(logical, pos, n)` for each logically contiguous piece of
    /// `len` bytes starting at MR offset `offset`; false if any piece is
    /// unmapped or `f` fails.
    pub(super) fn for_each_piece(
        &self,
        offset: u64,
        len: usize,
        mut f: impl FnMut(u64, usize, usize) -> bool,
    ) -> bool {
        match self {
            Map::Contiguous { base } => match base.checked_add(offset) {
                Some(a) if a.checked_add(len as u64).is_some() => f(a, 0, len),
                _ => false,
            },
            Map::Pages {
                page_size,
                fbo,
                pages,
                count,
            } => {
                let ps = *page_size;
                if ps == 0 {
                    return false;
                }
                let Some(mut pos) = fbo.checked_add(offset) else {
                    return false;
                };
                let mut done = 0usize;
                while done < len {
                    let page = pos / ps;
                    let within = pos % ps;
                    let Ok(page) = usize::try_from(page) else {
                        return false;
                    };
                    if page >= *count {
                        return false;
                    }
                    let Some(&base) = pages.get(page) else {
                        return false;
                    };
                    let room = usize::try_from(ps - within).unwrap_or(usize::MAX);
                    let n = room.min(len - done);
                    let Some(addr) = base.checked_add(within) else {
                        return false;
                    };
                    if !f(addr, done, n) {
                        return false;
                    }
                    done += n;
                    pos += n as u64;
                }
                true
            }
            Map::Ranges { ranges } => {
                // Skip to the piece holding `offset` (chains are short:
                // the ABI layer bounds them).
                let mut skip = offset;
                let mut done = 0usize;
                for &(base, n) in ranges {
                    if done == len {
                        break;
                    }
                    if skip >= n {
                        skip -= n;
                        continue;
                    }
                    let room = usize::try_from(n - skip).unwrap_or(usize::MAX);
                    let take = room.min(len - done);
                    let Some(addr) = base.checked_add(skip) else {
                        return false;
                    };
                    if !f(addr, done, take) {
                        return false;
                    }
                    done += take;
                    skip = 0;
                }
                done == len
            }
        }
    }
}
