//! AVX2 transforms: four 64-bit lanes, Harvey lazy butterflies.
//!
//! The same shape as the AVX-512 backend with eight-element chunks in a register pair: the
//! span-4 stage pairs the two registers directly, the span-2 and span-1 stages run after lane
//! permutations. Multiplication by a twiddle is `Shoup32` (`q < 2^32`) or `Shoup64` (products
//! from `vpmuludq` pieces; see [`crate::modarith::avx2`]), or, for `q < 2^50` on CPUs with FMA,
//! the floating-point butterflies of [`fma50`].

use core::arch::x86_64::*;

use super::Tables;
use crate::modarith::avx2::{
    Consts, consts, load, mul_shoup32, mul_shoup64, reduce_any, reduce_small, store,
};

pub(crate) mod fma50;

/// Length of the parts that run their remaining stages while resident in L1 (16 KiB of data).
const BLOCK: usize = 2048;

#[inline]
#[target_feature(enable = "avx2")]
fn red2q_small(c: Consts, x: __m256i) -> __m256i {
    reduce_small(x, c.two_q)
}

#[inline]
#[target_feature(enable = "avx2")]
fn redq_small(c: Consts, x: __m256i) -> __m256i {
    reduce_small(x, c.q)
}

#[inline]
#[target_feature(enable = "avx2")]
fn red2q_any(c: Consts, x: __m256i) -> __m256i {
    reduce_any(c, x, c.two_q, c.two_q_b)
}

#[inline]
#[target_feature(enable = "avx2")]
fn redq_any(c: Consts, x: __m256i) -> __m256i {
    reduce_any(c, x, c.q, c.q_b)
}

/// `[a.lo128, b.lo128]` and `[a.hi128, b.hi128]`.
#[inline]
#[target_feature(enable = "avx2")]
fn halves(a: __m256i, b: __m256i) -> (__m256i, __m256i) {
    (
        _mm256_permute2x128_si256::<0x20>(a, b),
        _mm256_permute2x128_si256::<0x31>(a, b),
    )
}

#[inline]
#[target_feature(enable = "avx2")]
fn bcast(x: u64) -> __m256i {
    _mm256_set1_epi64x(x as i64)
}

/// Generates the four transforms for one multiplication kind.
macro_rules! transforms {
    ($name:ident, $mul:ident, $red2q:ident, $redq:ident) => {
        pub(crate) mod $name {
            use super::*;

            /// Cooley–Tukey butterfly: `x, y < 4q` in, `x + wy, x - wy + 2q < 4q` out.
            #[inline]
            #[target_feature(enable = "avx2")]
            fn ct(
                c: Consts,
                x: __m256i,
                y: __m256i,
                w: __m256i,
                ws: __m256i,
            ) -> (__m256i, __m256i) {
                let x = $red2q(c, x);
                let v = $mul(c, y, w, ws);
                (
                    _mm256_add_epi64(x, v),
                    _mm256_sub_epi64(_mm256_add_epi64(x, c.two_q), v),
                )
            }

            /// Gentleman–Sande butterfly: `x, y < 2q` in, `x + y < 2q, (x - y) w < 2q` out.
            #[inline]
            #[target_feature(enable = "avx2")]
            fn gs(
                c: Consts,
                x: __m256i,
                y: __m256i,
                w: __m256i,
                ws: __m256i,
            ) -> (__m256i, __m256i) {
                let s = $red2q(c, _mm256_add_epi64(x, y));
                let d = _mm256_sub_epi64(_mm256_add_epi64(x, c.two_q), y);
                (s, $mul(c, d, w, ws))
            }

            use super::bcast as bcast_w;
            use crate::modarith::avx2::load as load_w;

            /// Lanes per vector.
            const LANES: usize = 4;
            /// The negacyclic tails run the spans 4, 2, 1 on chunks of 8.
            const NEG_TAIL: usize = 8;
            /// The forward tail runs the same spans.
            const FWD_TAIL: usize = NEG_TAIL;
            /// Whether the forward blockwise stages run two vectors per step.
            const PAIRED: bool = false;

            /// `(x + y, x − y + 2q)`.
            #[inline]
            #[target_feature(enable = "avx2")]
            fn sum_diff(c: Consts, x: __m256i, y: __m256i) -> (__m256i, __m256i) {
                (
                    _mm256_add_epi64(x, y),
                    _mm256_sub_epi64(_mm256_add_epi64(x, c.two_q), y),
                )
            }

            /// `x w mod q`, fully reduced.
            #[inline]
            #[target_feature(enable = "avx2")]
            fn scale(c: Consts, x: __m256i, w: __m256i, ws: __m256i) -> __m256i {
                $redq(c, $mul(c, x, w, ws))
            }

            /// The spans 4, 2, 1 of a negacyclic forward transform on chunks of 8 (span 4 with a
            /// broadcast twiddle, span 2 after exchanging halves, span 1 after unpacking).
            #[inline]
            #[target_feature(enable = "avx2")]
            fn neg_forward_tail(c: Consts, sub: &mut [u64], tw: &Tables, first: usize, n: usize) {
                let h = n / 2;
                let k0 = first / 8;
                for (k, chunk) in sub.chunks_exact_mut(8).enumerate() {
                    let (c0, c1) = chunk.split_at_mut(4);
                    let o = 4 * (k0 + k);
                    let w4 = tw.w[n / 8 + k0 + k];
                    let ws4 = tw.ws[n / 8 + k0 + k];
                    let (v0, v1) = ct(c, load(c0), load(c1), bcast(w4), bcast(ws4));
                    let (lo, hi) = halves(v0, v1);
                    let (lo, hi) = ct(c, lo, hi, load(&tw.lane_w[o..]), load(&tw.lane_ws[o..]));
                    let l1 = _mm256_unpacklo_epi64(lo, hi);
                    let h1 = _mm256_unpackhi_epi64(lo, hi);
                    let (lo, hi) = ct(c, l1, h1, load(&tw.w[h + o..]), load(&tw.ws[h + o..]));
                    let lo = $redq(c, $red2q(c, lo));
                    let hi = $redq(c, $red2q(c, hi));
                    let (e, f) = (_mm256_unpacklo_epi64(lo, hi), _mm256_unpackhi_epi64(lo, hi));
                    let (v0, v1) = halves(e, f);
                    store(c0, v0);
                    store(c1, v1);
                }
            }

            /// The spans 1, 2, 4 of a negacyclic inverse transform on chunks of 8 (the inverse
            /// of [`neg_forward_tail`]'s shuffles).
            #[inline]
            #[target_feature(enable = "avx2")]
            fn neg_inverse_tail(c: Consts, sub: &mut [u64], tw: &Tables, first: usize, n: usize) {
                let h = n / 2;
                let k0 = first / 8;
                for (k, chunk) in sub.chunks_exact_mut(8).enumerate() {
                    let (c0, c1) = chunk.split_at_mut(4);
                    let o = 4 * (k0 + k);
                    let (p, r) = halves(load(c0), load(c1));
                    let lo = _mm256_unpacklo_epi64(p, r);
                    let hi = _mm256_unpackhi_epi64(p, r);
                    let (lo, hi) = gs(c, lo, hi, load(&tw.w[h + o..]), load(&tw.ws[h + o..]));
                    let l2 = _mm256_unpacklo_epi64(lo, hi);
                    let h2 = _mm256_unpackhi_epi64(lo, hi);
                    let (lo, hi) = gs(c, l2, h2, load(&tw.lane_w[o..]), load(&tw.lane_ws[o..]));
                    let (v0, v1) = halves(lo, hi);
                    let w4 = tw.w[n / 8 + k0 + k];
                    let ws4 = tw.ws[n / 8 + k0 + k];
                    let (v0, v1) = gs(c, v0, v1, bcast(w4), bcast(ws4));
                    store(c0, v0);
                    store(c1, v1);
                }
            }

            /// The spans 2, 1 of a cyclic forward DFT on chunks of 8, fully reduced.
            #[inline]
            #[target_feature(enable = "avx2")]
            fn cyclic_forward_tail(c: Consts, sub: &mut [u64], tw: &Tables) {
                let (w2, ws2) = small_stage_twiddles(tw);
                let (w1, ws1) = (bcast(tw.w[1]), bcast(tw.ws[1]));
                for chunk in sub.chunks_exact_mut(8) {
                    let (c0, c1) = chunk.split_at_mut(4);
                    let (lo, hi) = halves(load(c0), load(c1));
                    let (lo, hi) = gs(c, lo, hi, w2, ws2);
                    let l1 = _mm256_unpacklo_epi64(lo, hi);
                    let h1 = _mm256_unpackhi_epi64(lo, hi);
                    let (lo, hi) = gs(c, l1, h1, w1, ws1);
                    let (lo, hi) = ($redq(c, lo), $redq(c, hi));
                    let (e, f) = (_mm256_unpacklo_epi64(lo, hi), _mm256_unpackhi_epi64(lo, hi));
                    let (v0, v1) = halves(e, f);
                    store(c0, v0);
                    store(c1, v1);
                }
            }

            /// The spans 1, 2 of a cyclic inverse DFT on chunks of 8.
            #[inline]
            #[target_feature(enable = "avx2")]
            fn cyclic_inverse_tail(c: Consts, sub: &mut [u64], tw: &Tables) {
                let (w2, ws2) = small_stage_twiddles(tw);
                let (w1, ws1) = (bcast(tw.w[1]), bcast(tw.ws[1]));
                for chunk in sub.chunks_exact_mut(8) {
                    let (c0, c1) = chunk.split_at_mut(4);
                    let (p, r) = halves(load(c0), load(c1));
                    let lo = _mm256_unpacklo_epi64(p, r);
                    let hi = _mm256_unpackhi_epi64(p, r);
                    let (lo, hi) = ct(c, lo, hi, w1, ws1);
                    let l2 = _mm256_unpacklo_epi64(lo, hi);
                    let h2 = _mm256_unpackhi_epi64(lo, hi);
                    let (lo, hi) = ct(c, l2, h2, w2, ws2);
                    let (v0, v1) = halves(lo, hi);
                    store(c0, v0);
                    store(c1, v1);
                }
            }

            /// Every stage runs the same butterflies.
            #[inline]
            #[target_feature(enable = "avx2")]
            fn stage(c: Consts, _span: usize, _dit: bool) -> Consts {
                c
            }

            /// The first forward stage runs the same butterflies.
            #[inline]
            #[target_feature(enable = "avx2")]
            fn first_forward(c: Consts) -> Consts {
                c
            }

            crate::ntt::schedule::ntt_schedule!("avx2");

            /// The constant twiddle vector of the cyclic span-2 stage, `[w2, w3, w2, w3]`.
            #[inline]
            #[target_feature(enable = "avx2")]
            fn small_stage_twiddles(tw: &Tables) -> (__m256i, __m256i) {
                (
                    load(&[tw.w[2], tw.w[3], tw.w[2], tw.w[3]]),
                    load(&[tw.ws[2], tw.ws[3], tw.ws[2], tw.ws[3]]),
                )
            }
        }
    };
}

transforms!(shoup32, mul_shoup32, red2q_small, redq_small);
transforms!(shoup64, mul_shoup64, red2q_any, redq_any);

/// Lane twiddles of the span-2 stage for 8-element chunks: chunk `k` holds
/// `[w[n/4 + 2k]; 2] ++ [w[n/4 + 2k + 1]; 2]`; `n/2` entries.
pub(crate) fn lane_twiddles(t: &[u64]) -> Vec<u64> {
    let n = t.len();
    let mut out = vec![0; n / 2];
    for k in 0..n / 8 {
        for l in 0..4 {
            out[4 * k + l] = t[n / 4 + 2 * k + l / 2];
        }
    }
    out
}
