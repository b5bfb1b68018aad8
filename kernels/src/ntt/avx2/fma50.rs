//! AVX2 transforms of the `Fma50` kind: butterflies on four `f64` lanes with FMA, for
//! `q < 2^50` (the arithmetic and its exactness: [`crate::modarith::avx2::fma50`]).
//!
//! **Representation.** Inside a transform every value is an integer held in a double, stored
//! in place of the `u64` it replaces (the buffer is reinterpreted; no allocation). Values are
//! *signed* and stay below `4q` in absolute value, which needs no conditional correction at
//! all. With `u = 2^-53` and `q u < 1/8` (`q < 2^50`), the twiddle product of `|y| ≤ 4q` is
//! `v ≡ y·w` with `|v| ≤ q/2 + |y| q u/2 ≤ q/2 + |y|/16` (`crate::modarith::avx2::fma50`),
//! and `x − round(x/q)·q` has `|·| < q/2 + 1/2` for `|x| ≤ 4q`.
//!
//! * Cooley–Tukey `(x, y) ↦ (x' + v, x' − v)`. A *reducing* stage takes `x' = x − round(x/q)·q`:
//!   inputs below `4q` give outputs below `q + 1/2 + q/4 = 1.25 q + 1/2`. A *lazy* stage takes
//!   `x' = x`: inputs below `B` give outputs below `(17/16) B + q/2`, so two lazy stages after a
//!   reducing one (or after the input, `< q`) stay below `1.83 q + 1`, then `2.45 q + 2 < 4q`.
//!   Stages of span `2^s` reduce when `3 | s` ([`stage`]): at most two lazy stages in a row, and
//!   the last forward stage (`s = 0`) reduces, so the forward output is below `1.25 q + 1/2`.
//! * Gentleman–Sande `(x, y) ↦ (s, (x − y)·w)`. A reducing stage takes
//!   `s = (x + y) − round((x + y)/q)·q` (`< q/2 + 1/2`) and, for inputs below `2q`, gives
//!   `|(x − y) w mod q| ≤ q/2 + 4q/16 = 0.75 q`; a lazy one takes `s = x + y`. Stages of span
//!   `2^s` reduce when `s` is odd: a lazy stage's inputs come from the input (`< q`: outputs
//!   below `2q`) or from a reducing stage (`≤ 0.75 q`: outputs below `1.5 q`), and the next
//!   stage or the final scaling (`|x ± y| < 4q`) accepts those.
//!
//! Twiddles are stored balanced (`|w| ≤ q/2`) with the companion `fl(w/q)`, as doubles' bits in
//! the plan's [`Tables`].
//!
//! **Conversions, once per transform.** A forward transform first converts its `u64` input to
//! doubles in one pass (exact below `2^52`); its in-register tail, the last step every element
//! goes through, reduces fully to `[0, q)` (a floor-based reduction that is exact for
//! `|x| < 2^51 − 1`, no correction; its inputs are below `1.5 q`) and converts back. An inverse
//! transform converts in its in-register tail, the first step of every element, and its last
//! stage (fused with the scaling by `1/n`: a twiddle product in `(−q, q)`, plus `q` where
//! negative) converts back.
//! Outputs are therefore the canonical residues, bit for bit those of [`super::super::scalar`].
//!
//! The stage schedule is [`crate::ntt::schedule`]'s, as for the integer kinds.

use core::arch::x86_64::*;

use super::{BLOCK, Tables};
use crate::modarith::avx2::fma50::{
    self as arith, make_nonnegative, mul_shoup, reduce_balanced, reduce_full, to_f64, to_u64,
};

/// The modulus's constants, and whether the butterflies of the current stage are lazy (skip
/// their reduction; module documentation).
#[derive(Clone, Copy)]
struct Consts {
    m: arith::Consts,
    lazy: bool,
}

#[inline]
#[target_feature(enable = "avx2,fma")]
fn consts(q: u64) -> Consts {
    Consts {
        m: arith::consts(q),
        lazy: false,
    }
}

/// The constants of a stage of half-size `span`: Cooley–Tukey (`dit`) stages of span `2^s`
/// reduce when `3 | s`, Gentleman–Sande ones when `s` is odd (the bounds in the module
/// documentation). The fused last stages of the inverse transforms use [`consts`]' reducing
/// butterflies.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn stage(c: Consts, span: usize, dit: bool) -> Consts {
    let s = span.trailing_zeros();
    let lazy = if dit {
        !s.is_multiple_of(3)
    } else {
        s.is_multiple_of(2)
    };
    Consts { lazy, ..c }
}

/// The first forward stage follows [`stage`]'s rule like the others.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn first_forward(c: Consts) -> Consts {
    c
}

/// Lanes per vector.
const LANES: usize = 4;
/// The negacyclic tails run the spans 4, 2, 1 on chunks of 8.
const NEG_TAIL: usize = 8;
/// The forward tail runs the same spans.
const FWD_TAIL: usize = NEG_TAIL;
/// Whether the forward blockwise stages run two vectors per step.
const PAIRED: bool = false;

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
    to_f64(c.m, crate::modarith::avx2::load(s))
}

/// `x mod q` in `[0, q)` for `|x| < 1.5 q`, as `u64` lanes in a vector of doubles (what
/// [`store`] then writes).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn finish(c: Consts, x: __m256d) -> __m256d {
    _mm256_castsi256_pd(to_u64(c.m, reduce_full(c.m, x)))
}

/// Cooley–Tukey butterfly `(x + wy, x − wy)`, reducing `x` first unless the stage is lazy.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn ct(c: Consts, x: __m256d, y: __m256d, w: __m256d, ws: __m256d) -> (__m256d, __m256d) {
    let x = if c.lazy { x } else { reduce_balanced(c.m, x) };
    let v = mul_shoup(c.m, y, w, ws);
    (_mm256_add_pd(x, v), _mm256_sub_pd(x, v))
}

/// Gentleman–Sande butterfly `(x + y, (x − y) w)`, reducing `x + y` unless the stage is lazy.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn gs(c: Consts, x: __m256d, y: __m256d, w: __m256d, ws: __m256d) -> (__m256d, __m256d) {
    let s = _mm256_add_pd(x, y);
    let s = if c.lazy { s } else { reduce_balanced(c.m, s) };
    (s, mul_shoup(c.m, _mm256_sub_pd(x, y), w, ws))
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
    _mm256_castsi256_pd(to_u64(c.m, make_nonnegative(c.m, mul_shoup(c.m, x, w, ws))))
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
    let (c4, c2, c1) = (stage(c, 4, true), stage(c, 2, true), stage(c, 1, true));
    for (k, chunk) in sub.chunks_exact_mut(8).enumerate() {
        let (d0, d1) = chunk.split_at_mut(4);
        let o = 4 * (k0 + k);
        let w4 = bcast_w(tw.w[n / 8 + k0 + k]);
        let ws4 = bcast_w(tw.ws[n / 8 + k0 + k]);
        let (v0, v1) = ct(c4, load(d0), load(d1), w4, ws4);
        let (lo, hi) = halves(v0, v1);
        let (lo, hi) = ct(c2, lo, hi, load(&tw.lane_w[o..]), load(&tw.lane_ws[o..]));
        let l1 = _mm256_unpacklo_pd(lo, hi);
        let h1 = _mm256_unpackhi_pd(lo, hi);
        let (lo, hi) = ct(c1, l1, h1, load(&tw.w[h + o..]), load(&tw.ws[h + o..]));
        let (lo, hi) = (finish(c, lo), finish(c, hi));
        let (e, f) = (_mm256_unpacklo_pd(lo, hi), _mm256_unpackhi_pd(lo, hi));
        let (v0, v1) = halves(e, f);
        store(d0, v0);
        store(d1, v1);
    }
}

/// The conversion from `u64`, then the spans 1, 2, 4 of a negacyclic inverse transform on
/// chunks of 8.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn neg_inverse_tail(c: Consts, sub: &mut [u64], tw: &Tables, first: usize, n: usize) {
    let h = n / 2;
    let k0 = first / 8;
    let (c1, c2, c4) = (stage(c, 1, false), stage(c, 2, false), stage(c, 4, false));
    for (k, chunk) in sub.chunks_exact_mut(8).enumerate() {
        let (d0, d1) = chunk.split_at_mut(4);
        let o = 4 * (k0 + k);
        let (p, r) = halves(load_int(c, d0), load_int(c, d1));
        let lo = _mm256_unpacklo_pd(p, r);
        let hi = _mm256_unpackhi_pd(p, r);
        let (lo, hi) = gs(c1, lo, hi, load(&tw.w[h + o..]), load(&tw.ws[h + o..]));
        let l2 = _mm256_unpacklo_pd(lo, hi);
        let h2 = _mm256_unpackhi_pd(lo, hi);
        let (lo, hi) = gs(c2, l2, h2, load(&tw.lane_w[o..]), load(&tw.lane_ws[o..]));
        let (v0, v1) = halves(lo, hi);
        let w4 = bcast_w(tw.w[n / 8 + k0 + k]);
        let ws4 = bcast_w(tw.ws[n / 8 + k0 + k]);
        let (v0, v1) = gs(c4, v0, v1, w4, ws4);
        store(d0, v0);
        store(d1, v1);
    }
}

/// The spans 2, 1 of a cyclic forward DFT on chunks of 8, then the conversion to reduced
/// `u64`.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn cyclic_forward_tail(c: Consts, sub: &mut [u64], tw: &Tables) {
    let (w2, ws2) = small_stage_twiddles(tw);
    let (w1, ws1) = (bcast_w(tw.w[1]), bcast_w(tw.ws[1]));
    let (c2, c1) = (stage(c, 2, false), stage(c, 1, false));
    for chunk in sub.chunks_exact_mut(8) {
        let (d0, d1) = chunk.split_at_mut(4);
        let (lo, hi) = halves(load(d0), load(d1));
        let (lo, hi) = gs(c2, lo, hi, w2, ws2);
        let l1 = _mm256_unpacklo_pd(lo, hi);
        let h1 = _mm256_unpackhi_pd(lo, hi);
        let (lo, hi) = gs(c1, l1, h1, w1, ws1);
        let (lo, hi) = (finish(c, lo), finish(c, hi));
        let (e, f) = (_mm256_unpacklo_pd(lo, hi), _mm256_unpackhi_pd(lo, hi));
        let (v0, v1) = halves(e, f);
        store(d0, v0);
        store(d1, v1);
    }
}

/// The conversion from `u64`, then the spans 1, 2 of a cyclic inverse DFT on chunks of 8.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn cyclic_inverse_tail(c: Consts, sub: &mut [u64], tw: &Tables) {
    let (w2, ws2) = small_stage_twiddles(tw);
    let (w1, ws1) = (bcast_w(tw.w[1]), bcast_w(tw.ws[1]));
    let (c1, c2) = (stage(c, 1, true), stage(c, 2, true));
    for chunk in sub.chunks_exact_mut(8) {
        let (d0, d1) = chunk.split_at_mut(4);
        let (p, r) = halves(load_int(c, d0), load_int(c, d1));
        let lo = _mm256_unpacklo_pd(p, r);
        let hi = _mm256_unpackhi_pd(p, r);
        let (lo, hi) = ct(c1, lo, hi, w1, ws1);
        let l2 = _mm256_unpacklo_pd(lo, hi);
        let h2 = _mm256_unpackhi_pd(lo, hi);
        let (lo, hi) = ct(c2, l2, h2, w2, ws2);
        let (v0, v1) = halves(lo, hi);
        store(d0, v0);
        store(d1, v1);
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
