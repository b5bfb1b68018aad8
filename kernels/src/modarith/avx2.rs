//! AVX2 modular arithmetic: four 64-bit lanes.
//!
//! AVX2 has neither a 64-bit multiply nor an unsigned 64-bit compare: products come from
//! 32x32->64-bit `vpmuludq` pieces and conditional subtractions from signed compares on
//! sign-flipped values. The lane primitives also serve the AVX2 NTT. Slice operations process
//! whole vectors and leave the tail to [`super::scalar`], so results agree bit for bit.

use core::arch::x86_64::*;

use super::{Modulus, scalar};

pub(crate) mod fma50;

/// Broadcast constants of one modulus (`*_b` are sign-flipped for unsigned compares).
#[derive(Clone, Copy)]
pub(crate) struct Consts {
    pub(crate) q: __m256i,
    pub(crate) two_q: __m256i,
    pub(crate) q_b: __m256i,
    pub(crate) two_q_b: __m256i,
    pub(crate) bias: __m256i,
}

#[inline]
#[target_feature(enable = "avx2")]
pub(crate) fn consts(q: u64) -> Consts {
    let bias = 1u64 << 63;
    Consts {
        q: _mm256_set1_epi64x(q as i64),
        two_q: _mm256_set1_epi64x((2 * q) as i64),
        q_b: _mm256_set1_epi64x((q ^ bias) as i64),
        two_q_b: _mm256_set1_epi64x(((2 * q) ^ bias) as i64),
        bias: _mm256_set1_epi64x(bias as i64),
    }
}

/// Subtracts `b` from lanes `>= b`, for lanes and `b` below `2^63` (signed compare).
#[inline]
#[target_feature(enable = "avx2")]
pub(crate) fn reduce_small(x: __m256i, b: __m256i) -> __m256i {
    _mm256_sub_epi64(x, _mm256_andnot_si256(_mm256_cmpgt_epi64(b, x), b))
}

/// Subtracts `b` from lanes `>= b` for any 64-bit lanes; `b_b = b ^ 2^63`.
#[inline]
#[target_feature(enable = "avx2")]
pub(crate) fn reduce_any(c: Consts, x: __m256i, b: __m256i, b_b: __m256i) -> __m256i {
    let below = _mm256_cmpgt_epi64(b_b, _mm256_xor_si256(x, c.bias));
    _mm256_sub_epi64(x, _mm256_andnot_si256(below, b))
}

/// `y * w mod q` in `[0, 2q)` for `y < 4q`, `q < 2^32`, companion `ws = floor(w 2^32 / q)`.
#[inline]
#[target_feature(enable = "avx2")]
pub(crate) fn mul_shoup32(c: Consts, y: __m256i, w: __m256i, ws: __m256i) -> __m256i {
    let y = reduce_small(reduce_small(y, c.two_q), c.q);
    let quot = _mm256_srli_epi64::<32>(_mm256_mul_epu32(y, ws));
    _mm256_sub_epi64(_mm256_mul_epu32(y, w), _mm256_mul_epu32(quot, c.q))
}

/// `y * w mod q` in `[0, 2q)` for any 64-bit `y`, `q < 2^62`, companion `ws = floor(w 2^64 / q)`:
/// the quotient from three 32-bit pieces (short by at most 2, see the AVX-512 version), the
/// remainder `y w - quot q` modulo `2^64` from six.
#[inline]
#[target_feature(enable = "avx2")]
pub(crate) fn mul_shoup64(c: Consts, y: __m256i, w: __m256i, ws: __m256i) -> __m256i {
    let y_hi = _mm256_shuffle_epi32::<0xF5>(y);
    let ws_hi = _mm256_shuffle_epi32::<0xF5>(ws);
    let w_hi = _mm256_shuffle_epi32::<0xF5>(w);
    let q_hi = _mm256_shuffle_epi32::<0xF5>(c.q);
    let hh = _mm256_mul_epu32(y_hi, ws_hi);
    let lh = _mm256_mul_epu32(y, ws_hi);
    let hl = _mm256_mul_epu32(y_hi, ws);
    let quot = _mm256_add_epi64(
        hh,
        _mm256_add_epi64(_mm256_srli_epi64::<32>(lh), _mm256_srli_epi64::<32>(hl)),
    );
    let quot_hi = _mm256_shuffle_epi32::<0xF5>(quot);
    let low = _mm256_sub_epi64(_mm256_mul_epu32(y, w), _mm256_mul_epu32(quot, c.q));
    let cross = _mm256_sub_epi64(
        _mm256_add_epi64(_mm256_mul_epu32(y_hi, w), _mm256_mul_epu32(y, w_hi)),
        _mm256_add_epi64(_mm256_mul_epu32(quot_hi, c.q), _mm256_mul_epu32(quot, q_hi)),
    );
    let r = _mm256_add_epi64(low, _mm256_slli_epi64::<32>(cross));
    reduce_any(c, r, c.two_q, c.two_q_b)
}

#[inline]
#[target_feature(enable = "avx2")]
pub(crate) fn load(s: &[u64]) -> __m256i {
    assert!(s.len() >= 4);
    // SAFETY: the slice holds at least four u64 (checked above); unaligned loads are allowed.
    unsafe { _mm256_loadu_si256(s.as_ptr().cast()) }
}

#[inline]
#[target_feature(enable = "avx2")]
pub(crate) fn store(s: &mut [u64], v: __m256i) {
    assert!(s.len() >= 4);
    // SAFETY: the slice holds at least four u64 (checked above); unaligned stores are allowed.
    unsafe { _mm256_storeu_si256(s.as_mut_ptr().cast(), v) }
}

/// `a += b` mod q.
#[target_feature(enable = "avx2")]
pub(crate) fn add_assign(a: &mut [u64], b: &[u64], q: u64) {
    let c = consts(q);
    let mut xs = a.chunks_exact_mut(4);
    let mut ys = b.chunks_exact(4);
    for (x, y) in (&mut xs).zip(&mut ys) {
        store(x, reduce_small(_mm256_add_epi64(load(x), load(y)), c.q));
    }
    scalar::add_assign(xs.into_remainder(), ys.remainder(), q);
}

/// `a -= b` mod q: adds `q` back where `a < b`.
#[target_feature(enable = "avx2")]
pub(crate) fn sub_assign(a: &mut [u64], b: &[u64], q: u64) {
    let c = consts(q);
    let mut xs = a.chunks_exact_mut(4);
    let mut ys = b.chunks_exact(4);
    for (x, y) in (&mut xs).zip(&mut ys) {
        let (u, v) = (load(x), load(y));
        let borrow = _mm256_cmpgt_epi64(v, u);
        store(
            x,
            _mm256_add_epi64(_mm256_sub_epi64(u, v), _mm256_and_si256(borrow, c.q)),
        );
    }
    scalar::sub_assign(xs.into_remainder(), ys.remainder(), q);
}

/// `a = -a` mod q.
#[target_feature(enable = "avx2")]
pub(crate) fn neg_assign(a: &mut [u64], q: u64) {
    let c = consts(q);
    let mut xs = a.chunks_exact_mut(4);
    for x in &mut xs {
        store(x, reduce_small(_mm256_sub_epi64(c.q, load(x)), c.q));
    }
    scalar::neg_assign(xs.into_remainder(), q);
}

/// `a = s a` for `q < 2^32` with the 64-bit Shoup companion `s_shoup` of `s`.
#[target_feature(enable = "avx2")]
pub(crate) fn scalar_mul_assign_shoup32(a: &mut [u64], s: u64, s_shoup: u64, q: u64) {
    let c = consts(q);
    let (w, ws) = (
        _mm256_set1_epi64x(s as i64),
        _mm256_set1_epi64x((s_shoup >> 32) as i64),
    );
    let mut xs = a.chunks_exact_mut(4);
    for x in &mut xs {
        store(x, reduce_small(mul_shoup32(c, load(x), w, ws), c.q));
    }
    scalar::scalar_mul_assign(xs.into_remainder(), s, s_shoup, q);
}

/// `a = a ∘ b` for `q < 2^32`, `q` not a power of two: Barrett on the 64-bit product with the
/// 32-bit constants of the AVX-512 version (remainder `< 5q` before three subtractions).
#[target_feature(enable = "avx2")]
pub(crate) fn mul_assign_barrett32(a: &mut [u64], b: &[u64], m: &Modulus) {
    let mut xs = a.chunks_exact_mut(4);
    let mut ys = b.chunks_exact(4);
    let (c, br) = (consts(m.q()), barrett32(m));
    for (x, y) in (&mut xs).zip(&mut ys) {
        store(x, product32(c, br, load(x), load(y)));
    }
    scalar::mul_assign(xs.into_remainder(), ys.remainder(), m);
}

/// `acc += b ∘ d` for `q < 2^32`, `q` not a power of two.
#[target_feature(enable = "avx2")]
pub(crate) fn mul_add_assign_barrett32(acc: &mut [u64], b: &[u64], d: &[u64], m: &Modulus) {
    let mut xs = acc.chunks_exact_mut(4);
    let mut ys = b.chunks_exact(4);
    let mut zs = d.chunks_exact(4);
    let (c, br) = (consts(m.q()), barrett32(m));
    for ((x, y), z) in (&mut xs).zip(&mut ys).zip(&mut zs) {
        let p = product32(c, br, load(y), load(z));
        store(x, reduce_small(_mm256_add_epi64(load(x), p), c.q));
    }
    scalar::mul_add_assign(xs.into_remainder(), ys.remainder(), zs.remainder(), m);
}

#[derive(Clone, Copy)]
struct Barrett32 {
    mu: __m256i,
    s1: __m128i,
    s2: __m128i,
}

#[inline]
#[target_feature(enable = "avx2")]
fn barrett32(m: &Modulus) -> Barrett32 {
    let (mu, s1, s2) = super::barrett32_params(m.q(), m.bits());
    Barrett32 {
        mu: _mm256_set1_epi64x(mu as i64),
        s1: _mm_cvtsi64_si128(s1 as i64),
        s2: _mm_cvtsi64_si128(s2 as i64),
    }
}

#[inline]
#[target_feature(enable = "avx2")]
fn product32(c: Consts, b: Barrett32, x: __m256i, y: __m256i) -> __m256i {
    let p = _mm256_mul_epu32(x, y);
    let t = _mm256_srl_epi64(p, b.s1);
    let quot = _mm256_srl_epi64(_mm256_mul_epu32(t, b.mu), b.s2);
    let r = _mm256_sub_epi64(p, _mm256_mul_epu32(quot, c.q));
    let four_q = _mm256_add_epi64(c.two_q, c.two_q);
    reduce_small(reduce_small(reduce_small(r, four_q), c.two_q), c.q)
}
