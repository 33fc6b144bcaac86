//! CRC-32 of IEEE 802.3 (zlib's `crc32`: reflected polynomial 0x04C11DB7,
//! initial value and final XOR all ones), the checksum under the ICRC
//! (IBA Annex A17 (ICRC); Linux rxe_icrc.c).
//!
//! Two implementations give the same values:
//!
//! * [`table`]: `crc32fast`'s table-driven CRC (slice-by-16, no SIMD), the
//!   reference and the fallback.
//! * On x86_64, carry-less multiplication (PCLMULQDQ) folding 64 bytes per
//!   step in four independent 128-bit lanes, then one lane, then a
//!   Barrett reduction to 32 bits; the last 0-15 bytes through the table. The method is the folding of
//!   Intel's white paper "Fast CRC Computation for Generic Polynomials Using
//!   PCLMULQDQ Instruction" (2009); the fold constants are computed below by
//!   `const fn` from the polynomial. Used when CPUID says the processor has
//!   PCLMULQDQ (checked once, at run time: `core::arch`, no `std`), unless
//!   the crate's `portable-crc` feature is on.
//!
//! Kernel mode: the fold uses only XMM registers (SSE2 and PCLMULQDQ, no
//! AVX). On x64 Windows, kernel code may use the SSE registers without
//! saving floating-point state; AVX would need
//! KeSaveExtendedProcessorState ("Using Floating Point in a WDM Driver",
//! learn.microsoft.com/windows-hardware/drivers/kernel/using-floating-point-or-mmx-in-a-wdm-driver).

/// The generator polynomial in normal bit order, with its x^32 term.
const POLY: u64 = 0x1_04C1_1DB7;

/// x^n mod P, in normal bit order (bit d is the coefficient of x^d).
const fn xpow_mod(n: u32) -> u32 {
    let mut r: u64 = 1;
    let mut i = 0;
    while i < n {
        r <<= 1;
        if r & (1 << 32) != 0 {
            r ^= POLY;
        }
        i += 1;
    }
    r as u32
}

/// The fold constant for x^n mod P in the reflected domain: bit j stands
/// for x^(32-j), so a carry-less product with a reflected 64-bit half lands
/// where a reflected 128-bit register expects it.
#[cfg_attr(
    not(all(target_arch = "x86_64", not(feature = "portable-crc"))),
    allow(dead_code)
)]
const fn fold_constant(n: u32) -> u64 {
    (xpow_mod(n).reverse_bits() as u64) << 1
}

/// x^64 div P (the Barrett constant), in normal bit order with its x^32
/// term.
#[cfg_attr(
    not(all(target_arch = "x86_64", not(feature = "portable-crc"))),
    allow(dead_code)
)]
const fn x64_div_p() -> u64 {
    // Long division of x^64 by P, one quotient bit per step.
    let mut rem: u128 = 1 << 64;
    let mut q: u64 = 0;
    let mut d = 64;
    while d >= 32 {
        if rem & (1 << d) != 0 {
            rem ^= (POLY as u128) << (d - 32);
            q |= 1 << (d - 32);
        }
        d -= 1;
    }
    q
}

/// A 33-bit polynomial in the reflected domain (bit j stands for x^(32-j)).
#[cfg_attr(
    not(all(target_arch = "x86_64", not(feature = "portable-crc"))),
    allow(dead_code)
)]
const fn reflect33(v: u64) -> u64 {
    v.reverse_bits() >> 31
}

/// CRC-32 of `data` continuing from `crc` (0 to start), zlib's
/// `crc32(crc, data)`: the fastest implementation this processor has.
#[inline]
pub fn update(crc: u32, data: &[u8]) -> u32 {
    #[cfg(all(target_arch = "x86_64", not(feature = "portable-crc")))]
    if data.len() >= clmul::MIN_LEN && clmul::available() {
        return clmul::update(crc, data);
    }
    table(crc, data)
}

/// The table-driven CRC-32, the same values as [`update`] on every
/// processor.
#[inline]
pub fn table(crc: u32, data: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new_with_initial(crc);
    h.update(data);
    h.finalize()
}

/// Copies `src` into `dst` and returns the CRC-32 of the copied bytes
/// continuing from `crc`, in one pass where the processor folds by
/// carry-less multiply (each 16 bytes loaded once, stored and folded);
/// elsewhere the copy then the table. `None`, and nothing written, when
/// the lengths differ.
///
/// The CRC covers the bytes as copied. Transmit reads payloads out of
/// local memory this way; receive places a payload into memory this way
/// where the bytes' destination is one the packet may overwrite before its
/// ICRC is known to hold ([`super::icrc::Deferred`]).
#[inline]
pub fn copy_update(crc: u32, dst: &mut [u8], src: &[u8]) -> Option<u32> {
    if dst.len() != src.len() {
        return None;
    }
    #[cfg(all(target_arch = "x86_64", not(feature = "portable-crc")))]
    if src.len() >= clmul::MIN_LEN && clmul::available() {
        return Some(clmul::copy_update(crc, dst, src));
    }
    dst.copy_from_slice(src);
    Some(table(crc, dst))
}

/// The reflected polynomial without its x^32 term (bit j is x^(31-j)).
const POLY_REFLECTED: u32 = (POLY as u32).reverse_bits();

/// `a * b mod P` for two reflected 32-bit polynomials (bit j is x^(31-j)),
/// one bit of `a` per step.
const fn mul_mod_bitwise(a: u32, mut b: u32) -> u32 {
    let mut p = 0;
    let mut i = 0;
    while i < 32 {
        if a & (1 << (31 - i)) != 0 {
            p ^= b;
        }
        // b *= x: x^31's coefficient (bit 0) wraps to x^32 = P - x^32.
        b = times_x(b);
        i += 1;
    }
    p
}

/// `x^(8 * 2^k) mod P`, reflected, for every bit `k` of a byte count.
// Evaluated at compile time: an index out of range would fail the build,
// never panic at run time.
#[allow(clippy::indexing_slicing)]
const X8_POW2: [u32; 64] = {
    let mut t = [0u32; 64];
    // x^8: bit 31 - 8.
    t[0] = 1 << (31 - 8);
    let mut k = 1;
    while k < 64 {
        t[k] = mul_mod_bitwise(t[k - 1], t[k - 1]);
        k += 1;
    }
    t
};

/// `b * x mod P`, reflected.
const fn times_x(b: u32) -> u32 {
    if b & 1 != 0 {
        (b >> 1) ^ POLY_REFLECTED
    } else {
        b >> 1
    }
}

/// `i * x^32 mod P` for every byte `i` (reflected): `p * x^8` is then
/// `(p >> 8) ^ BYTE_SHIFT[p & 0xFF]`, the table step of a CRC over a zero
/// byte.
// Evaluated at compile time: an index out of range would fail the build.
#[allow(clippy::indexing_slicing)]
const BYTE_SHIFT: [u32; 256] = {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = times_x(c);
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
};

/// [`mul_mod_bitwise`] a byte of `a` at a time (Horner's rule, highest
/// degrees first, `p * x^8` by table): about a quarter of the steps, for
/// processors without carry-less multiply.
fn mul_mod_bytewise(a: u32, b: u32) -> u32 {
    // b * x^k for k = 7 down to 0: the multiples a byte of `a` selects
    // (its bit 0 is the group's highest power).
    let mut multiples = [0u32; 8];
    let mut m = b;
    for slot in multiples.iter_mut().rev() {
        *slot = m;
        m = times_x(m);
    }
    let mut p = 0u32;
    for byte in a.to_le_bytes() {
        let high = BYTE_SHIFT.get(usize::from(p as u8)).copied().unwrap_or(0);
        p = (p >> 8) ^ high;
        for (i, &mult) in multiples.iter().enumerate() {
            if byte & (1 << i) != 0 {
                p ^= mult;
            }
        }
    }
    p
}

/// `a * b mod P` (reflected), by carry-less multiply where the processor
/// has it.
#[inline]
fn mul_mod(a: u32, b: u32) -> u32 {
    #[cfg(all(target_arch = "x86_64", not(feature = "portable-crc")))]
    if clmul::available() {
        return clmul::mul_mod(a, b);
    }
    mul_mod_bytewise(a, b)
}

/// The CRC-32 of `a` followed by `b`, from `crc_a` = `update(0, a)`,
/// `crc_b` = `update(0, b)` and `len_b` = `b.len()`: `crc_a` times
/// x^(8 len_b) mod P, plus `crc_b` (the pre- and post-inversions cancel).
/// One multiply mod P per set bit of `len_b`, plus one.
pub fn combine(crc_a: u32, crc_b: u32, len_b: usize) -> u32 {
    // Visit the set bits of `len_b`, lowest first (a full-MTU payload
    // has one: a single multiply).
    let mut bits = len_b as u64;
    let mut shift: Option<u32> = None;
    while bits != 0 {
        let k = bits.trailing_zeros() as usize;
        bits &= bits - 1;
        let power = X8_POW2.get(k).copied().unwrap_or(1 << 31);
        shift = Some(match shift {
            Some(s) => mul_mod(s, power),
            None => power,
        });
    }
    match shift {
        Some(s) => mul_mod(crc_a, s) ^ crc_b,
        // An empty `b`: its CRC is 0.
        None => crc_a ^ crc_b,
    }
}

/// Whether [`update`] folds with carry-less multiplies on this processor.
pub fn accelerated() -> bool {
    #[cfg(all(target_arch = "x86_64", not(feature = "portable-crc")))]
    {
        clmul::available()
    }
    #[cfg(not(all(target_arch = "x86_64", not(feature = "portable-crc"))))]
    {
        false
    }
}

/// The carry-less fold alone (any length), or `None` where the processor
/// or the build has none: for tests and benchmarks comparing it with
/// [`table`].
pub fn folded(crc: u32, data: &[u8]) -> Option<u32> {
    #[cfg(all(target_arch = "x86_64", not(feature = "portable-crc")))]
    if clmul::available() {
        return Some(if data.len() >= clmul::MIN_LEN {
            clmul::update(crc, data)
        } else {
            table(crc, data)
        });
    }
    let _ = (crc, data);
    None
}

#[cfg(all(target_arch = "x86_64", not(feature = "portable-crc")))]
mod clmul {
    use core::arch::x86_64::{
        __m128i, _mm_and_si128, _mm_clmulepi64_si128, _mm_cvtsi32_si128, _mm_cvtsi128_si32,
        _mm_loadu_si128, _mm_set_epi64x, _mm_slli_epi64, _mm_srli_epi64, _mm_srli_si128,
        _mm_storeu_si128, _mm_xor_si128,
    };
    use core::sync::atomic::{AtomicU8, Ordering};

    use super::{fold_constant, reflect33};

    /// Shortest input worth the fold (one 16-byte lane); shorter ones go
    /// through the table.
    pub const MIN_LEN: usize = 16;

    /// Folding a 128-bit lane forward by 4 lanes (512 bits): the low
    /// (earlier, higher-degree) half times x^(512+32), the high half times
    /// x^(512-32), both mod P.
    const FOLD_BY_4: (u64, u64) = (fold_constant(4 * 128 + 32), fold_constant(4 * 128 - 32));
    /// Folding forward by one lane (128 bits).
    const FOLD_BY_1: (u64, u64) = (fold_constant(128 + 32), fold_constant(128 - 32));
    /// The last lane's 128 bits to 96: its low half times x^96 mod P.
    const TO_96: u64 = fold_constant(96);
    /// 96 bits to 64: the top 32 times x^64 mod P.
    const TO_64: u64 = fold_constant(64);
    /// Barrett reduction of the last 64 bits: x^64 div P and P, reflected.
    const MU: u64 = reflect33(super::x64_div_p());
    const P: u64 = reflect33(super::POLY);

    /// 0 not yet asked, 1 absent, 2 present.
    static PCLMULQDQ: AtomicU8 = AtomicU8::new(0);

    /// CPUID leaf 1, ECX bit 1 (Intel SDM Vol. 2A, CPUID; AMD APM Vol. 3,
    /// CPUID Fn0000_0001_ECX): the processor has PCLMULQDQ. SSE2 is part
    /// of x86_64 itself.
    pub fn available() -> bool {
        // Miri interprets no inline assembly (CPUID) and no carry-less
        // multiply: the table there.
        if cfg!(miri) {
            return false;
        }
        match PCLMULQDQ.load(Ordering::Relaxed) {
            2 => true,
            1 => false,
            _ => {
                let leaf1 = core::arch::x86_64::__cpuid(1);
                let has = leaf1.ecx & (1 << 1) != 0;
                PCLMULQDQ.store(if has { 2 } else { 1 }, Ordering::Relaxed);
                has
            }
        }
    }

    /// zlib's `crc32(crc, data)` for `data.len() >= MIN_LEN`, on a
    /// processor where [`available`] said yes.
    pub fn update(crc: u32, data: &[u8]) -> u32 {
        debug_assert!(data.len() >= MIN_LEN && available());
        // SAFETY: callers checked `available()`, so the processor executes
        // PCLMULQDQ; SSE2 is baseline on x86_64.
        unsafe { fold(crc, data) }
    }

    /// [`super::copy_update`] for `src.len() >= MIN_LEN` and `dst` of the
    /// same length, on a processor where [`available`] said yes.
    pub fn copy_update(crc: u32, dst: &mut [u8], src: &[u8]) -> u32 {
        debug_assert!(src.len() >= MIN_LEN && dst.len() == src.len() && available());
        // SAFETY: as in `update`.
        unsafe { fold_copy(crc, dst, src) }
    }

    /// `a * b mod P` for reflected 32-bit polynomials, on a processor where
    /// [`available`] said yes.
    pub fn mul_mod(a: u32, b: u32) -> u32 {
        // SAFETY: as in `update`.
        unsafe { mul_mod_clmul(a, b) }
    }

    /// The carry-less product of two reflected 32-bit polynomials is a
    /// reflected 63-bit one (bit i is x^(62-i)); one bit left makes it the
    /// 64-bit value (bit i is x^(63-i)) the Barrett step of [`reduce`]
    /// takes to 32 bits.
    #[target_feature(enable = "pclmulqdq")]
    fn mul_mod_clmul(a: u32, b: u32) -> u32 {
        let prod =
            _mm_clmulepi64_si128::<0x00>(_mm_cvtsi32_si128(a as i32), _mm_cvtsi32_si128(b as i32));
        barrett(_mm_slli_epi64::<1>(prod))
    }

    /// Stores 16 bytes (unaligned).
    #[inline(always)]
    fn store(chunk: &mut [u8; 16], v: __m128i) {
        // SAFETY: `chunk` is 16 writable bytes; the store has no alignment
        // requirement.
        unsafe { _mm_storeu_si128(chunk.as_mut_ptr().cast(), v) }
    }

    /// Loads 16 bytes of `src` and stores them to `dst`: the value, for
    /// folding.
    #[inline(always)]
    fn carry(dst: &mut [u8; 16], src: &[u8; 16]) -> __m128i {
        let v = load(src);
        store(dst, v);
        v
    }

    /// [`fold`] that also stores every byte it folds into `dst` (the same
    /// length as `src`): one load of each 16 bytes for both jobs.
    #[target_feature(enable = "pclmulqdq")]
    fn fold_copy(crc: u32, dst: &mut [u8], src: &[u8]) -> u32 {
        let (steps, rest) = src.as_chunks::<64>();
        let (dsteps, drest) = dst.as_chunks_mut::<64>();
        let k1 = constants(FOLD_BY_1);
        let mut one = match (steps.split_first(), dsteps.split_first_mut()) {
            (Some((first, more)), Some((dfirst, dmore))) => {
                let (l0, l1, l2, l3) = carry_lanes(dfirst, first);
                let mut x = [
                    _mm_xor_si128(l0, _mm_cvtsi32_si128(!crc as i32)),
                    l1,
                    l2,
                    l3,
                ];
                let k4 = constants(FOLD_BY_4);
                let step4 = |x: [__m128i; 4], dstep: &mut [u8; 64], step: &[u8; 64]| {
                    let (n0, n1, n2, n3) = carry_lanes(dstep, step);
                    [
                        _mm_xor_si128(fold_lane(x[0], k4), n0),
                        _mm_xor_si128(fold_lane(x[1], k4), n1),
                        _mm_xor_si128(fold_lane(x[2], k4), n2),
                        _mm_xor_si128(fold_lane(x[3], k4), n3),
                    ]
                };
                // Two steps per iteration: the loop's own instructions once
                // per 128 bytes.
                let (pairs, odd) = more.as_chunks::<2>();
                let (dpairs, dodd) = dmore.as_chunks_mut::<2>();
                for (pair, dpair) in pairs.iter().zip(dpairs.iter_mut()) {
                    let ([s0, s1], [d0, d1]) = (pair, dpair);
                    x = step4(x, d0, s0);
                    x = step4(x, d1, s1);
                }
                for (step, dstep) in odd.iter().zip(dodd.iter_mut()) {
                    x = step4(x, dstep, step);
                }
                let mut one = _mm_xor_si128(fold_lane(x[0], k1), x[1]);
                one = _mm_xor_si128(fold_lane(one, k1), x[2]);
                _mm_xor_si128(fold_lane(one, k1), x[3])
            }
            _ => {
                // Under 64 bytes: one lane from the first 16 (the caller
                // passes at least MIN_LEN).
                let (blocks, _) = rest.as_chunks::<16>();
                let (dblocks, _) = drest.as_chunks_mut::<16>();
                let (Some(first), Some(dfirst)) = (blocks.first(), dblocks.first_mut()) else {
                    dst.copy_from_slice(src);
                    return super::table(crc, dst);
                };
                _mm_xor_si128(carry(dfirst, first), _mm_cvtsi32_si128(!crc as i32))
            }
        };
        // The 16-byte blocks after the 64-byte steps (after the first
        // block when there were no steps).
        let skip = usize::from(steps.is_empty());
        let (blocks, tail) = rest.as_chunks::<16>();
        let (dblocks, dtail) = drest.as_chunks_mut::<16>();
        let blocks = blocks.get(skip..).unwrap_or_default();
        let dblocks = dblocks.get_mut(skip..).unwrap_or_default();
        for (b, d) in blocks.iter().zip(dblocks.iter_mut()) {
            one = _mm_xor_si128(fold_lane(one, k1), carry(d, b));
        }
        dtail.copy_from_slice(tail);
        finish(reduce(one), tail)
    }

    #[inline(always)]
    fn carry_lanes(dst: &mut [u8; 64], src: &[u8; 64]) -> (__m128i, __m128i, __m128i, __m128i) {
        match (dst.as_chunks_mut::<16>().0, src.as_chunks::<16>().0) {
            ([da, db, dc, dd], [a, b, c, d]) => {
                (carry(da, a), carry(db, b), carry(dc, c), carry(dd, d))
            }
            // A 64-byte step is always four 16-byte lanes.
            _ => (zero(), zero(), zero(), zero()),
        }
    }

    /// The CRC of the folded part (`register`, as [`reduce`] gives it)
    /// continued over the last 0-15 bytes; no table call when there are
    /// none (whole 16-byte blocks: a full-MTU payload).
    #[inline(always)]
    fn finish(register: u32, tail: &[u8]) -> u32 {
        if tail.is_empty() {
            !register
        } else {
            super::table(!register, tail)
        }
    }

    /// Loads 16 bytes (unaligned).
    #[inline(always)]
    fn load(chunk: &[u8; 16]) -> __m128i {
        // SAFETY: `chunk` is 16 readable bytes; the load has no alignment
        // requirement.
        unsafe { _mm_loadu_si128(chunk.as_ptr().cast()) }
    }

    /// `lane` carried forward by the distance `k` was made for.
    #[inline]
    #[target_feature(enable = "pclmulqdq")]
    fn fold_lane(lane: __m128i, k: __m128i) -> __m128i {
        _mm_xor_si128(
            _mm_clmulepi64_si128::<0x00>(lane, k),
            _mm_clmulepi64_si128::<0x11>(lane, k),
        )
    }

    #[target_feature(enable = "pclmulqdq")]
    fn constants(k: (u64, u64)) -> __m128i {
        // Low qword multiplies the lane's low (earlier) half.
        _mm_set_epi64x(k.1 as i64, k.0 as i64)
    }

    #[target_feature(enable = "pclmulqdq")]
    fn fold(crc: u32, data: &[u8]) -> u32 {
        let (steps, rest) = data.as_chunks::<64>();
        let Some((first, more)) = steps.split_first() else {
            return fold_short(crc, data);
        };
        let (l0, l1, l2, l3) = lanes(first);
        // The running register (inverted, as zlib keeps it) is XORed into
        // the first 32 bits of the message.
        let mut x = [
            _mm_xor_si128(l0, _mm_cvtsi32_si128(!crc as i32)),
            l1,
            l2,
            l3,
        ];
        let k4 = constants(FOLD_BY_4);
        for step in more {
            let (n0, n1, n2, n3) = lanes(step);
            x = [
                _mm_xor_si128(fold_lane(x[0], k4), n0),
                _mm_xor_si128(fold_lane(x[1], k4), n1),
                _mm_xor_si128(fold_lane(x[2], k4), n2),
                _mm_xor_si128(fold_lane(x[3], k4), n3),
            ];
        }
        let k1 = constants(FOLD_BY_1);
        let mut one = _mm_xor_si128(fold_lane(x[0], k1), x[1]);
        one = _mm_xor_si128(fold_lane(one, k1), x[2]);
        one = _mm_xor_si128(fold_lane(one, k1), x[3]);
        let (blocks, tail) = rest.as_chunks::<16>();
        for b in blocks {
            one = _mm_xor_si128(fold_lane(one, k1), load(b));
        }
        // `one` is congruent to the message so far (mod P); its CRC from a
        // zero register is the CRC of all of it: reduce it, then the tail.
        finish(reduce(one), tail)
    }

    /// [`fold`] for inputs under 64 bytes: one lane from the first 16.
    #[target_feature(enable = "pclmulqdq")]
    fn fold_short(crc: u32, data: &[u8]) -> u32 {
        let (blocks, tail) = data.as_chunks::<16>();
        let Some((first, more)) = blocks.split_first() else {
            return super::table(crc, data);
        };
        let k1 = constants(FOLD_BY_1);
        let mut one = _mm_xor_si128(load(first), _mm_cvtsi32_si128(!crc as i32));
        for b in more {
            one = _mm_xor_si128(fold_lane(one, k1), load(b));
        }
        finish(reduce(one), tail)
    }

    /// `x` (128 bits, the first byte's low bit the highest power) times
    /// x^32 mod P, as a reflected 32-bit CRC register: 128 bits to 96, to
    /// 64, then a Barrett reduction (the same white paper).
    #[target_feature(enable = "pclmulqdq")]
    fn reduce(x: __m128i) -> u32 {
        let low32 = _mm_set_epi64x(0, 0xFFFF_FFFF);
        // 128 -> 96: the low half (x^127..x^64) times x^96 mod P, plus
        // the high half moved up 32.
        let b = _mm_xor_si128(
            _mm_clmulepi64_si128::<0x00>(x, _mm_set_epi64x(0, TO_96 as i64)),
            _mm_srli_si128::<8>(x),
        );
        // 96 -> 64: the top 32 bits times x^64 mod P, plus the rest.
        let c = _mm_xor_si128(
            _mm_clmulepi64_si128::<0x00>(_mm_and_si128(b, low32), _mm_set_epi64x(0, TO_64 as i64)),
            _mm_srli_si128::<4>(b),
        );
        barrett(c)
    }

    /// The 64-bit reflected polynomial in `c`'s low half (bit i is
    /// x^(63-i)) mod P, as a reflected 32-bit value: Barrett, q = (top 32
    /// bits * mu) div x^32, r = (c - q * P) mod x^32.
    #[target_feature(enable = "pclmulqdq")]
    fn barrett(c: __m128i) -> u32 {
        let low32 = _mm_set_epi64x(0, 0xFFFF_FFFF);
        let q = _mm_and_si128(
            _mm_clmulepi64_si128::<0x00>(_mm_and_si128(c, low32), _mm_set_epi64x(0, MU as i64)),
            low32,
        );
        let r = _mm_xor_si128(
            _mm_clmulepi64_si128::<0x00>(q, _mm_set_epi64x(0, P as i64)),
            c,
        );
        _mm_cvtsi128_si32(_mm_srli_epi64::<32>(r)) as u32
    }

    #[inline(always)]
    fn lanes(step: &[u8; 64]) -> (__m128i, __m128i, __m128i, __m128i) {
        match step.as_chunks::<16>().0 {
            [a, b, c, d] => (load(a), load(b), load(c), load(d)),
            // A 64-byte step is always four 16-byte lanes.
            _ => (zero(), zero(), zero(), zero()),
        }
    }

    #[inline(always)]
    fn zero() -> __m128i {
        // SAFETY: SSE2 is baseline on x86_64.
        unsafe { core::arch::x86_64::_mm_setzero_si128() }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;

    #[test]
    fn fold_constants_are_the_published_ones() {
        // Barrett: mu = x^64 div P and P, reflected (the white paper's
        // u' and P').
        assert_eq!(reflect33(x64_div_p()), 0x1_F701_1641);
        assert_eq!(reflect33(POLY), 0x1_DB71_0641);
        assert_eq!(fold_constant(64), 0x1_63cd_6124);
        // Intel's white paper lists these for CRC-32 (IEEE); the const fn
        // derives them from the polynomial alone.
        assert_eq!(fold_constant(4 * 128 + 32), 0x1_5444_2bd4);
        assert_eq!(fold_constant(4 * 128 - 32), 0x1_c6e4_1596);
        assert_eq!(fold_constant(128 + 32), 0x1_7519_97d0);
        assert_eq!(fold_constant(128 - 32), 0x0_ccaa_009e);
    }

    #[test]
    fn check_value() {
        // The CRC-32 check value: crc32("123456789") = 0xCBF43926.
        assert_eq!(update(0, b"123456789"), 0xCBF4_3926);
        assert_eq!(table(0, b"123456789"), 0xCBF4_3926);
    }

    /// A small xorshift, so the tests need no dependency.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    fn bytes(seed: u64, n: usize) -> alloc::vec::Vec<u8> {
        let mut rng = XorShift(seed | 1);
        (0..n).map(|_| rng.next() as u8).collect()
    }

    #[test]
    fn fold_matches_the_table_on_random_lengths_alignments_and_seeds() {
        if !accelerated() {
            std::eprintln!("skip: this build or processor has no carry-less multiply");
            return;
        }
        let buf = bytes(0x1234_5678, 9000 + 64);
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15u64);
        let mut next = || rng.next();
        // Every length across the thresholds and lane boundaries, then
        // random ones, each at a random alignment and with a random start.
        let mut cases: alloc::vec::Vec<usize> = (0..400).collect();
        cases.extend((0..400).map(|_| (next() % 9000) as usize));
        cases.extend([4096, 4096 + 48, 8192, 9000]);
        for len in cases {
            let off = (next() % 64) as usize;
            let init = next() as u32;
            let data = &buf[off..off + len];
            assert_eq!(
                folded(init, data),
                Some(table(init, data)),
                "len {len} offset {off} init {init:#x}"
            );
            assert_eq!(update(init, data), table(init, data));
        }
    }

    #[test]
    fn copy_update_copies_and_matches_the_table_on_random_lengths_alignments_and_seeds() {
        let buf = bytes(0xC0FF_EE00, 9000 + 64);
        let mut rng = XorShift(0x2545_F491_4F6C_DD1Du64);
        let mut next = || rng.next();
        let mut cases: alloc::vec::Vec<usize> = (0..400).collect();
        cases.extend((0..400).map(|_| (next() % 9000) as usize));
        cases.extend([1024, 4096, 4096 + 48, 8192, 9000]);
        let mut out = alloc::vec![0u8; 9000 + 64];
        for len in cases {
            let (so, d_off) = ((next() % 64) as usize, (next() % 64) as usize);
            let init = next() as u32;
            out.fill(0xA5);
            let src = &buf[so..so + len];
            let got = copy_update(init, &mut out[d_off..d_off + len], src);
            assert_eq!(
                got,
                Some(table(init, src)),
                "len {len} src {so} dst {d_off}"
            );
            assert_eq!(&out[d_off..d_off + len], src, "len {len}: the copy");
            // Nothing outside the destination is touched.
            assert!(out[..d_off].iter().all(|&b| b == 0xA5));
            assert!(out[d_off + len..].iter().all(|&b| b == 0xA5));
        }
        // Mismatched lengths: nothing written.
        let mut short = [0u8; 15];
        assert_eq!(copy_update(0, &mut short, &buf[..16]), None);
        assert_eq!(short, [0; 15]);
    }

    #[test]
    fn combine_matches_one_pass_over_both_parts() {
        let data = bytes(11, 9000);
        let mut rng = XorShift(0x1234_5678_9ABC_DEF1u64);
        let mut next = || rng.next();
        let mut cuts: alloc::vec::Vec<(usize, usize)> = (0..300).map(|n| (n % 50, n)).collect();
        cuts.extend((0..300).map(|_| {
            let a = (next() % 9000) as usize;
            (a, a + (next() as usize % (9000 - a + 1)))
        }));
        cuts.extend([(48, 48 + 4096), (0, 9000), (60, 60 + 1024)]);
        for (a, b) in cuts {
            let (x, y) = (&data[..a], &data[a..b]);
            let whole = table(0, &data[..b]);
            assert_eq!(
                combine(table(0, x), table(0, y), y.len()),
                whole,
                "{a}..{b}"
            );
        }
    }

    #[test]
    fn multiply_mod_p_by_clmul_and_by_bytes_matches_the_bitwise_one() {
        let mut rng = XorShift(0x9E37_79B9);
        for _ in 0..2000 {
            let r = rng.next();
            let (a, b) = (r as u32, (r >> 32) as u32);
            assert_eq!(mul_mod(a, b), mul_mod_bitwise(a, b), "{a:#x} * {b:#x}");
            assert_eq!(
                mul_mod_bytewise(a, b),
                mul_mod_bitwise(a, b),
                "{a:#x} * {b:#x}"
            );
        }
        // x^0 is the identity; x^8 is one byte of zeros.
        assert_eq!(mul_mod(1 << 31, 0xDEAD_BEEF), 0xDEAD_BEEF);
        assert_eq!(X8_POW2[0], 1 << 23);
    }

    #[test]
    fn split_updates_chain() {
        let data = bytes(7, 5000);
        let whole = update(0, &data);
        for cut in [0, 1, 63, 64, 65, 1000, 4999, 5000] {
            let (a, b) = data.split_at(cut);
            assert_eq!(update(update(0, a), b), whole, "cut {cut}");
        }
    }
}
