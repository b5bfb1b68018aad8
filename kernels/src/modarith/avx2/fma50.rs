//! The `Fma50` kind: modular products on four `f64` lanes with FMA, for `q < 2^50` on AVX2
//! CPUs without AVX-512 IFMA (HEXL and tfhe-ntt take the same route there).
//!
//! AVX2 has no 64×64-bit integer product; emulating one from 32-bit `vpmuludq` pieces
//! ([`MulKind::Shoup64`](crate::modarith::MulKind)) costs about twenty uops per four products.
//! A double has a 53-bit significand and FMA rounds once, which is enough to get the exact
//! remainder of a product of two 50-bit integers from six floating-point operations.
//!
//! # The arithmetic, and why every step is exact
//!
//! Write `u = 2^-53` (the unit roundoff), `fl(·)` for round-to-nearest, and `M = 1.5 · 2^52`.
//! Every value below is an integer held exactly in a double (integers up to `2^53` are).
//!
//! **Rounding to an integer.** For a real `t` with `|t| < 2^51`, `fl(t + M)` lies in
//! `[2^52, 2^53)`, where consecutive doubles are one apart, so `fl(t + M) − M` (exact: both are
//! integers in that binade) is the integer nearest to `t`. With an FMA, `fmadd(a, b, M)` rounds
//! the *exact* `a·b + M` once: `fmadd(a, b, M) − M = round(a·b)` with no error from the product.
//!
//! **Product by a fixed operand** ([`mul_shoup`], the NTT's twiddle product). The operand `w` is
//! stored *balanced*, `|w| ≤ q/2` (`w − q` when `w > q/2`), with the companion
//! `w' = fl(w / q) = (w/q)(1 + δ)`, `|δ| ≤ u`. For an integer `y` with `|y| ≤ 4q`:
//!
//! 1. `h = fl(y·w)` and `l = fmsub(y, w, h) = y·w − h` exactly (the rounding error of a product
//!    is a double; `|l| ≤ ulp(h)/2 ≤ 2^47` since `|y·w| ≤ 2q^2 < 2^101`). `h` is an integer
//!    (`y·w` is, and doubles above `2^53` are).
//! 2. `k = round(y·w')` as above (`|y·w'| ≤ 2q(1 + u) < 2^51`). Then
//!    `|k − y·w/q| ≤ 1/2 + |y|·|w/q|·u ≤ 1/2 + |y|u/2`.
//! 3. `fnmadd(k, q, h) = h − k·q` exactly: the exact value is the integer `r − l` with
//!    `r = y·w − k·q`, `|r| ≤ q(1/2 + |y|u/2) < q` and `|l| ≤ 2^47`, so it is below `2^53` and
//!    the one rounding of the FMA changes nothing.
//! 4. `r = (h − k·q) + l`, exact for the same reason.
//!
//! So `r ≡ y·w (mod q)` with `|r| ≤ q/2 + |y|·q·u/2`: for `|y| ≤ 2q` that is `≤ q/2 + q^2 u
//! ≤ 0.625 q` (`q < 2^50` gives `q u < 1/8`), for `|y| ≤ 4q` it is `≤ 0.75 q`. No conditional
//! correction is needed to stay in `(−q, q)`; one (`+q` where negative) gives `[0, q)`.
//!
//! **Product of two reduced values** ([`mul`], the pointwise products). For `a, b ∈ [0, q)`
//! there is no companion: `k = round(h · q⁻¹)` with `q⁻¹ = fl(1/q)`. Then
//! `|h·q⁻¹ − a·b/q| ≤ (h/q)u + |l|/q ≤ 2(h/q)u ≤ 2q(1 + u)u < 1/4`, so `|r| < 3q/4`; steps 1,
//! 3 and 4 are as above (`|a·b| < q^2 < 2^100`).
//!
//! **Balanced reduction** ([`reduce_balanced`]): `x − round(x·q⁻¹)·q` for an integer
//! `|x| ≤ 4q`: `|round(x q⁻¹) − x/q| ≤ 1/2 + |x/q|u`, so the (exact) result is an integer of
//! absolute value at most `q/2 + |x|u < q/2 + 1/2`.
//!
//! **Full reduction** ([`reduce_full`]) of an integer `|x| < 2^51 − 1` to `[0, q)`:
//! `k = floor(fmadd(x, q⁻¹, q⁻¹/2))`, `x − k·q`. The FMA computes `(x + 1/2)·q⁻¹` exactly
//! (`q⁻¹/2` is exact) and rounds once: with `q⁻¹ = (1/q)(1 + δ)` the result is within
//! `|(x + 1/2)/q|·(2u + u^2) < 1/(2q)` of `(x + 1/2)/q` (as `|x + 1/2| < 2^51 − 1/2`), while
//! `(x + 1/2)/q` is at least `1/(2q)` away from every integer (`x` is an integer, so
//! `x + 1/2 − m·q` is a half-integer). Hence `k = ⌊(x + 1/2)/q⌋ = ⌊x/q⌋` exactly, and
//! `x − k·q ∈ [0, q)` (exact: an integer below `2^51` in absolute value) with no correction.
//!
//! **Conversions.** Integers in `[0, 2^52)` convert exactly both ways with the `2^52` trick: the
//! bits `2^52 | x` are the double `2^52 + x` (subtract `2^52`), and `fl(2^52 + x)` has the bits
//! `2^52 | x` (clear them). AVX2 has no `vcvtuqq2pd`, and these are two uops each.

use core::arch::x86_64::*;

use super::super::{Modulus, scalar};

/// The bits of `2^52` as a double.
const TWO52_BITS: u64 = 0x4330_0000_0000_0000;
/// `1.5 · 2^52`: adding it rounds `|t| < 2^51` to the nearest integer.
const ROUND: f64 = 6_755_399_441_055_744.0;

/// Broadcast constants of one modulus.
#[derive(Clone, Copy)]
pub(crate) struct Consts {
    /// `q`.
    pub(crate) q: __m256d,
    /// `fl(1/q)`.
    pub(crate) q_inv: __m256d,
    /// `fl(1/q) / 2` (exact).
    pub(crate) half_q_inv: __m256d,
    /// `1.5 · 2^52`.
    pub(crate) round: __m256d,
    /// `2^52`.
    pub(crate) two52: __m256d,
    /// The bits of `2^52`.
    pub(crate) two52_bits: __m256i,
    /// `0.0`.
    pub(crate) zero: __m256d,
}

/// The constants of `q < 2^50`.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) fn consts(q: u64) -> Consts {
    let q_inv = 1.0 / q as f64;
    Consts {
        q: _mm256_set1_pd(q as f64),
        q_inv: _mm256_set1_pd(q_inv),
        half_q_inv: _mm256_set1_pd(q_inv / 2.0),
        round: _mm256_set1_pd(ROUND),
        two52: _mm256_set1_pd(f64::from_bits(TWO52_BITS)),
        two52_bits: _mm256_set1_epi64x(TWO52_BITS as i64),
        zero: _mm256_setzero_pd(),
    }
}

/// `u64` lanes below `2^52` as doubles.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) fn to_f64(c: Consts, x: __m256i) -> __m256d {
    _mm256_sub_pd(
        _mm256_castsi256_pd(_mm256_or_si256(x, c.two52_bits)),
        c.two52,
    )
}

/// Integer-valued double lanes in `[0, 2^52)` as `u64`.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) fn to_u64(c: Consts, x: __m256d) -> __m256i {
    _mm256_xor_si256(_mm256_castpd_si256(_mm256_add_pd(x, c.two52)), c.two52_bits)
}

/// The nearest integer to `a·b` for `|a·b| < 2^51` (one rounding).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn round_product(c: Consts, a: __m256d, b: __m256d) -> __m256d {
    _mm256_sub_pd(_mm256_fmadd_pd(a, b, c.round), c.round)
}

/// `x − round(x/q)·q`, of absolute value `< q/2 + 1/2`, for integers `|x| ≤ 4q`.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) fn reduce_balanced(c: Consts, x: __m256d) -> __m256d {
    _mm256_fnmadd_pd(round_product(c, x, c.q_inv), c.q, x)
}

/// `x mod q` in `[0, q)` for integers `|x| < 2^51 − 1`.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) fn reduce_full(c: Consts, x: __m256d) -> __m256d {
    let k = _mm256_floor_pd(_mm256_fmadd_pd(x, c.q_inv, c.half_q_inv));
    _mm256_fnmadd_pd(k, c.q, x)
}

/// `x + q` where `x < 0`: `(−q, q)` to `[0, q)`.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) fn make_nonnegative(c: Consts, x: __m256d) -> __m256d {
    // `_CMP_LT_OQ` is false for −0.0, which then stays as 0.
    let negative = _mm256_cmp_pd::<_CMP_LT_OQ>(x, c.zero);
    _mm256_add_pd(x, _mm256_and_pd(negative, c.q))
}

/// `y·w mod q` in `(−q, q)` for integers `|y| ≤ 4q` and a balanced operand `w` with companion
/// `ws = fl(w/q)`: `|r| ≤ q/2 + |y| q u / 2` (module documentation).
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) fn mul_shoup(c: Consts, y: __m256d, w: __m256d, ws: __m256d) -> __m256d {
    let h = _mm256_mul_pd(y, w);
    let l = _mm256_fmsub_pd(y, w, h);
    let k = round_product(c, y, ws);
    _mm256_add_pd(_mm256_fnmadd_pd(k, c.q, h), l)
}

/// `a·b mod q` in `(−3q/4, 3q/4)` for `a, b ∈ [0, q)` (module documentation).
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) fn mul(c: Consts, a: __m256d, b: __m256d) -> __m256d {
    let h = _mm256_mul_pd(a, b);
    let l = _mm256_fmsub_pd(a, b, h);
    let k = round_product(c, h, c.q_inv);
    _mm256_add_pd(_mm256_fnmadd_pd(k, c.q, h), l)
}

#[inline]
#[target_feature(enable = "avx2,fma")]
fn load(c: Consts, s: &[u64]) -> __m256d {
    to_f64(c, super::load(s))
}

#[inline]
#[target_feature(enable = "avx2,fma")]
fn store(c: Consts, s: &mut [u64], v: __m256d) {
    super::store(s, to_u64(c, v));
}

/// `a = a ∘ b` mod q.
#[target_feature(enable = "avx2,fma")]
pub(crate) fn mul_assign(a: &mut [u64], b: &[u64], m: &Modulus) {
    let c = consts(m.q());
    let mut xs = a.chunks_exact_mut(4);
    let mut ys = b.chunks_exact(4);
    for (x, y) in (&mut xs).zip(&mut ys) {
        let r = mul(c, load(c, x), load(c, y));
        store(c, x, make_nonnegative(c, r));
    }
    scalar::mul_assign(xs.into_remainder(), ys.remainder(), m);
}

/// `acc += b ∘ d` mod q.
#[target_feature(enable = "avx2,fma")]
pub(crate) fn mul_add_assign(acc: &mut [u64], b: &[u64], d: &[u64], m: &Modulus) {
    let c = consts(m.q());
    let mut xs = acc.chunks_exact_mut(4);
    let mut ys = b.chunks_exact(4);
    let mut zs = d.chunks_exact(4);
    for ((x, y), z) in (&mut xs).zip(&mut ys).zip(&mut zs) {
        // `acc + r` is in `(−3q/4, 7q/4)`, well inside `reduce_full`'s range.
        let s = _mm256_add_pd(load(c, x), mul(c, load(c, y), load(c, z)));
        store(c, x, reduce_full(c, s));
    }
    scalar::mul_add_assign(xs.into_remainder(), ys.remainder(), zs.remainder(), m);
}

/// `a = s a` mod q, with the 64-bit Shoup companion `s_shoup` of `s` for the scalar tail.
#[target_feature(enable = "avx2,fma")]
pub(crate) fn scalar_mul_assign(a: &mut [u64], s: u64, s_shoup: u64, q: u64) {
    let c = consts(q);
    let (w, ws) = super::super::fma50_operand(s, q);
    let (w, ws) = (
        _mm256_set1_pd(f64::from_bits(w)),
        _mm256_set1_pd(f64::from_bits(ws)),
    );
    let mut xs = a.chunks_exact_mut(4);
    for x in &mut xs {
        // `|r| ≤ q/2 + q^2 u / 2 < q`.
        let r = mul_shoup(c, load(c, x), w, ws);
        store(c, x, make_nonnegative(c, r));
    }
    scalar::scalar_mul_assign(xs.into_remainder(), s, s_shoup, q);
}
