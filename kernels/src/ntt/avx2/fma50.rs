//! AVX2 transforms of the `Fma50` kind: butterflies on four `f64` lanes with FMA, for
//! `q < 2^50` (the arithmetic and its exactness: [`crate::modarith::avx2::fma50`]).
//!
//! **Representation.** Inside a transform every value is an integer held in a double, stored
//! in place of the `u64` it replaces (the buffer is reinterpreted; no allocation). Values are
//! *signed* and kept in `(−2q, 2q)` between stages, which needs no conditional correction at
//! all:
//!
//! * Cooley–Tukey `(x, y) ↦ (x' + v, x' − v)` with `x' = x − round(x/q)·q` (`|x'| < q/2 + 1/2`)
//!   and `v ≡ y·w` from the twiddle product (`|v| ≤ q/2 + |y| q u/2 ≤ q/2 + q^2 u < 0.625 q`
//!   for `|y| < 2q`, `u = 2^-53`, `q u < 1/8`): outputs below `1.125 q + 1/2 < 2q`.
//! * Gentleman–Sande `(x, y) ↦ (s, (x − y)·w)` with `s = (x + y) − round((x + y)/q)·q`
//!   (`|s| < q/2 + 1/2`) and `|(x − y)·w mod q| ≤ q/2 + 2q^2 u ≤ 0.75 q` for `|x − y| < 4q`.
//!
//! Twiddles are stored balanced (`|w| ≤ q/2`) with the companion `fl(w/q)`, as doubles' bits in
//! the plan's [`Tables`].
//!
//! **Conversions, once per transform.** A forward transform first converts its `u64` input to
//! doubles in one pass (exact below `2^52`); its in-register tail, the last step every element
//! goes through, reduces fully to `[0, q)` (a floor-based reduction that is exact for
//! `|x| < 2^51`, no correction) and converts back. An inverse transform converts in its
//! in-register tail, the first step of every element, and its last stage (fused with the
//! scaling by `1/n`: a twiddle product in `(−q, q)`, plus `q` where negative) converts back.
//! Outputs are therefore the canonical residues, bit for bit those of [`super::super::scalar`].
//!
//! The stage schedule is [`crate::ntt::schedule`]'s, as for the integer kinds.

use core::arch::x86_64::*;

use super::{BLOCK, Tables};
use crate::modarith::avx2::fma50::{
    Consts, consts, make_nonnegative, mul_shoup, reduce_balanced, reduce_full, to_f64, to_u64,
};

/// Lanes per vector.
const LANES: usize = 4;
/// The negacyclic tails run the spans 4, 2, 1 on chunks of 8.
const NEG_TAIL: usize = 8;

/// Four doubles from a buffer that holds doubles' bits.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn load(s: &[u64]) -> __m256d {
    assert!(s.len() >= 4);
    // SAFETY: the slice holds at least four u64 (checked above), which have the size of four
    // doubles; unaligned loads are allowed and any bit pattern is a double.
    unsafe { _mm256_loadu_pd(s.as_ptr().cast()) }
}

/// Stores four doubles' bits (or four `u64`s cast to a vector of doubles).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn store(s: &mut [u64], v: __m256d) {
    assert!(s.len() >= 4);
    // SAFETY: the slice holds at least four u64 (checked above); unaligned stores are allowed
    // and any bit pattern is a u64.
    unsafe { _mm256_storeu_pd(s.as_mut_ptr().cast(), v) }
}

use load as load_w;

#[inline]
#[target_feature(enable = "avx2,fma")]
fn bcast_w(x: u64) -> __m256d {
    _mm256_set1_pd(f64::from_bits(x))
}

/// Four reduced `u64`s as doubles.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn load_int(c: Consts, s: &[u64]) -> __m256d {
    to_f64(c, crate::modarith::avx2::load(s))
}

/// `x mod q` in `[0, q)` for `|x| < 2q`, as `u64` lanes in a vector of doubles (what
/// [`store`] then writes).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn finish(c: Consts, x: __m256d) -> __m256d {
    _mm256_castsi256_pd(to_u64(c, reduce_full(c, x)))
}

/// Cooley–Tukey butterfly: `|x|, |y| < 2q` in, `x + wy, x − wy` (`< 1.125 q + 1/2`) out.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn ct(c: Consts, x: __m256d, y: __m256d, w: __m256d, ws: __m256d) -> (__m256d, __m256d) {
    let x = reduce_balanced(c, x);
    let v = mul_shoup(c, y, w, ws);
    (_mm256_add_pd(x, v), _mm256_sub_pd(x, v))
}

/// Gentleman–Sande butterfly: `|x|, |y| < 2q` in, `x + y` (`< q/2 + 1/2`) and `(x − y) w`
/// (`≤ 0.75 q`) out.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn gs(c: Consts, x: __m256d, y: __m256d, w: __m256d, ws: __m256d) -> (__m256d, __m256d) {
    let s = reduce_balanced(c, _mm256_add_pd(x, y));
    (s, mul_shoup(c, _mm256_sub_pd(x, y), w, ws))
}

/// `(x + y, x − y)`, below `4q` for inputs below `2q`.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn sum_diff(_c: Consts, x: __m256d, y: __m256d) -> (__m256d, __m256d) {
    (_mm256_add_pd(x, y), _mm256_sub_pd(x, y))
}

/// `x w mod q` in `[0, q)` for `|x| < 4q`, as `u64` lanes (the last step of an inverse
/// transform): the product is in `(−0.75 q, 0.75 q)`, one `+q` where negative.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn scale(c: Consts, x: __m256d, w: __m256d, ws: __m256d) -> __m256d {
    _mm256_castsi256_pd(to_u64(c, make_nonnegative(c, mul_shoup(c, x, w, ws))))
}

/// `[a.lo128, b.lo128]` and `[a.hi128, b.hi128]`.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn halves(a: __m256d, b: __m256d) -> (__m256d, __m256d) {
    (
        _mm256_permute2f128_pd::<0x20>(a, b),
        _mm256_permute2f128_pd::<0x31>(a, b),
    )
}

/// The spans 4, 2, 1 of a negacyclic forward transform on chunks of 8, then the conversion to
/// reduced `u64` (the same shuffles as the integer kinds of [`super`]).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn neg_forward_tail(c: Consts, sub: &mut [u64], tw: &Tables, first: usize, n: usize) {
    let h = n / 2;
    let k0 = first / 8;
    for (k, chunk) in sub.chunks_exact_mut(8).enumerate() {
        let (c0, c1) = chunk.split_at_mut(4);
        let o = 4 * (k0 + k);
        let w4 = bcast_w(tw.w[n / 8 + k0 + k]);
        let ws4 = bcast_w(tw.ws[n / 8 + k0 + k]);
        let (v0, v1) = ct(c, load(c0), load(c1), w4, ws4);
        let (lo, hi) = halves(v0, v1);
        let (lo, hi) = ct(c, lo, hi, load(&tw.lane_w[o..]), load(&tw.lane_ws[o..]));
        let l1 = _mm256_unpacklo_pd(lo, hi);
        let h1 = _mm256_unpackhi_pd(lo, hi);
        let (lo, hi) = ct(c, l1, h1, load(&tw.w[h + o..]), load(&tw.ws[h + o..]));
        let (lo, hi) = (finish(c, lo), finish(c, hi));
        let (e, f) = (_mm256_unpacklo_pd(lo, hi), _mm256_unpackhi_pd(lo, hi));
        let (v0, v1) = halves(e, f);
        store(c0, v0);
        store(c1, v1);
    }
}

/// The conversion from `u64`, then the spans 1, 2, 4 of a negacyclic inverse transform on
/// chunks of 8.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn neg_inverse_tail(c: Consts, sub: &mut [u64], tw: &Tables, first: usize, n: usize) {
    let h = n / 2;
    let k0 = first / 8;
    for (k, chunk) in sub.chunks_exact_mut(8).enumerate() {
        let (c0, c1) = chunk.split_at_mut(4);
        let o = 4 * (k0 + k);
        let (p, r) = halves(load_int(c, c0), load_int(c, c1));
        let lo = _mm256_unpacklo_pd(p, r);
        let hi = _mm256_unpackhi_pd(p, r);
        let (lo, hi) = gs(c, lo, hi, load(&tw.w[h + o..]), load(&tw.ws[h + o..]));
        let l2 = _mm256_unpacklo_pd(lo, hi);
        let h2 = _mm256_unpackhi_pd(lo, hi);
        let (lo, hi) = gs(c, l2, h2, load(&tw.lane_w[o..]), load(&tw.lane_ws[o..]));
        let (v0, v1) = halves(lo, hi);
        let w4 = bcast_w(tw.w[n / 8 + k0 + k]);
        let ws4 = bcast_w(tw.ws[n / 8 + k0 + k]);
        let (v0, v1) = gs(c, v0, v1, w4, ws4);
        store(c0, v0);
        store(c1, v1);
    }
}

/// The spans 2, 1 of a cyclic forward DFT on chunks of 8, then the conversion to reduced
/// `u64`.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn cyclic_forward_tail(c: Consts, sub: &mut [u64], tw: &Tables) {
    let (w2, ws2) = small_stage_twiddles(tw);
    let (w1, ws1) = (bcast_w(tw.w[1]), bcast_w(tw.ws[1]));
    for chunk in sub.chunks_exact_mut(8) {
        let (c0, c1) = chunk.split_at_mut(4);
        let (lo, hi) = halves(load(c0), load(c1));
        let (lo, hi) = gs(c, lo, hi, w2, ws2);
        let l1 = _mm256_unpacklo_pd(lo, hi);
        let h1 = _mm256_unpackhi_pd(lo, hi);
        let (lo, hi) = gs(c, l1, h1, w1, ws1);
        let (lo, hi) = (finish(c, lo), finish(c, hi));
        let (e, f) = (_mm256_unpacklo_pd(lo, hi), _mm256_unpackhi_pd(lo, hi));
        let (v0, v1) = halves(e, f);
        store(c0, v0);
        store(c1, v1);
    }
}

/// The conversion from `u64`, then the spans 1, 2 of a cyclic inverse DFT on chunks of 8.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn cyclic_inverse_tail(c: Consts, sub: &mut [u64], tw: &Tables) {
    let (w2, ws2) = small_stage_twiddles(tw);
    let (w1, ws1) = (bcast_w(tw.w[1]), bcast_w(tw.ws[1]));
    for chunk in sub.chunks_exact_mut(8) {
        let (c0, c1) = chunk.split_at_mut(4);
        let (p, r) = halves(load_int(c, c0), load_int(c, c1));
        let lo = _mm256_unpacklo_pd(p, r);
        let hi = _mm256_unpackhi_pd(p, r);
        let (lo, hi) = ct(c, lo, hi, w1, ws1);
        let l2 = _mm256_unpacklo_pd(lo, hi);
        let h2 = _mm256_unpackhi_pd(lo, hi);
        let (lo, hi) = ct(c, l2, h2, w2, ws2);
        let (v0, v1) = halves(lo, hi);
        store(c0, v0);
        store(c1, v1);
    }
}

/// The constant twiddle vector of the cyclic span-2 stage, `[w2, w3, w2, w3]`.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn small_stage_twiddles(tw: &Tables) -> (__m256d, __m256d) {
    (
        load(&[tw.w[2], tw.w[3], tw.w[2], tw.w[3]]),
        load(&[tw.ws[2], tw.ws[3], tw.ws[2], tw.ws[3]]),
    )
}

/// Reduced `u64`s to doubles in place (the forward transforms' first pass).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn to_doubles(c: Consts, a: &mut [u64]) {
    for x in a.chunks_exact_mut(LANES) {
        store(x, load_int(c, x));
    }
}

/// The schedule's transforms over the primitives above; the forward ones expect doubles.
mod on_doubles {
    use super::*;

    crate::ntt::schedule::ntt_schedule!("avx2,fma");
}

/// Negacyclic forward transform, `a.len() >= 8`.
#[target_feature(enable = "avx2,fma")]
pub(crate) fn negacyclic_forward(a: &mut [u64], tw: &Tables, q: u64) {
    to_doubles(consts(q), a);
    on_doubles::negacyclic_forward(a, tw, q);
}

/// Negacyclic inverse transform scaled by `1/n`, `a.len() >= 8`.
#[target_feature(enable = "avx2,fma")]
pub(crate) fn negacyclic_inverse(a: &mut [u64], tw: &Tables, q: u64) {
    on_doubles::negacyclic_inverse(a, tw, q);
}

/// Cyclic forward DFT, `a.len() >= 8`.
#[target_feature(enable = "avx2,fma")]
pub(crate) fn cyclic_forward(a: &mut [u64], tw: &Tables, q: u64) {
    to_doubles(consts(q), a);
    on_doubles::cyclic_forward(a, tw, q);
}

/// Cyclic inverse DFT scaled by `1/n`, `a.len() >= 8`.
#[target_feature(enable = "avx2,fma")]
pub(crate) fn cyclic_inverse(a: &mut [u64], tw: &Tables, q: u64) {
    on_doubles::cyclic_inverse(a, tw, q);
}
