//! AVX-512 transforms: eight 64-bit lanes, Harvey lazy butterflies.
//!
//! Stages whose butterflies span at least eight elements run on whole vectors with a broadcast
//! (negacyclic) or contiguous (cyclic) twiddle; the last three stages of a forward transform and
//! the first three of an inverse run inside a pair of registers (sixteen elements) with lane
//! permutations. The multiplication by a twiddle depends on the size of `q`
//! ([`MulKind`](crate::modarith::MulKind)):
//!
//! * `Ifma52` (`q < 2^50`, AVX-512 IFMA52): quotient `madd52hi(y, w')`, remainder from two
//!   `madd52lo` — the approach of Intel HEXL (Boemer et al., "Intel HEXL", WAHC 2021).
//! * `Shoup32` (`q < 2^32`): 32x32->64-bit `vpmuludq` products with a 32-bit Shoup companion.
//! * `Shoup64` (`q < 2^62`): the high half of `y * w'` from three `vpmuludq` pieces (the low-by-low
//!   piece is dropped, so the quotient is short by at most 2 and the remainder is `< 4q`, brought
//!   back to `[0, 2q)` by one conditional subtraction), the low halves from `vpmullq`.
//!
//! Outputs agree bit for bit with [`super::scalar`] because both are fully reduced at the end.

use core::arch::x86_64::*;

use super::Tables;
use crate::modarith::avx512::{
    Consts, consts, load, mul_ifma, mul_shoup32, mul_shoup64, reduce, store,
};

/// Length of the parts that run their remaining stages while resident in L1 (16 KiB of data).
const BLOCK: usize = 2048;

/// Lane permutation indices for the in-register stages (see the module documentation of
/// [`Tables`] for the layouts they produce).
const IDX_T4_T2_LO: [i64; 8] = [0, 1, 8, 9, 4, 5, 12, 13];
const IDX_T4_T2_HI: [i64; 8] = [2, 3, 10, 11, 6, 7, 14, 15];
const IDX_OUT_LO: [i64; 8] = [0, 8, 1, 9, 2, 10, 3, 11];
const IDX_OUT_HI: [i64; 8] = [4, 12, 5, 13, 6, 14, 7, 15];
const IDX_EVEN: [i64; 8] = [0, 2, 4, 6, 8, 10, 12, 14];
const IDX_ODD: [i64; 8] = [1, 3, 5, 7, 9, 11, 13, 15];

#[inline]
#[target_feature(enable = "avx512f")]
fn idx(i: [i64; 8]) -> __m512i {
    _mm512_setr_epi64(i[0], i[1], i[2], i[3], i[4], i[5], i[6], i[7])
}

/// Generates the four transforms for one multiplication kind.
macro_rules! transforms {
    ($name:ident, $features:literal, $mul:ident) => {
        pub(crate) mod $name {
            use super::*;

            /// Cooley–Tukey butterfly: `x, y < 4q` in, `x + wy, x - wy + 2q < 4q` out.
            #[inline]
            #[target_feature(enable = $features)]
            fn ct(
                c: Consts,
                x: __m512i,
                y: __m512i,
                w: __m512i,
                ws: __m512i,
            ) -> (__m512i, __m512i) {
                let x = reduce(x, c.two_q);
                let v = $mul(c, y, w, ws);
                (
                    _mm512_add_epi64(x, v),
                    _mm512_sub_epi64(_mm512_add_epi64(x, c.two_q), v),
                )
            }

            /// Gentleman–Sande butterfly: `x, y < 2q` in, `x + y < 2q, (x - y) w < 2q` out.
            #[inline]
            #[target_feature(enable = $features)]
            fn gs(
                c: Consts,
                x: __m512i,
                y: __m512i,
                w: __m512i,
                ws: __m512i,
            ) -> (__m512i, __m512i) {
                let s = reduce(_mm512_add_epi64(x, y), c.two_q);
                let d = _mm512_sub_epi64(_mm512_add_epi64(x, c.two_q), y);
                (s, $mul(c, d, w, ws))
            }

            /// One Cooley–Tukey stage of half-size `t >= 8` over `a`; block `i` uses twiddle
            /// `base + i` (negacyclic order).
            #[inline]
            #[target_feature(enable = $features)]
            fn ct_stage_blockwise(a: &mut [u64], tw: &Tables, c: Consts, base: usize, t: usize) {
                for (i, block) in a.chunks_exact_mut(2 * t).enumerate() {
                    let w = _mm512_set1_epi64(tw.w[base + i] as i64);
                    let ws = _mm512_set1_epi64(tw.ws[base + i] as i64);
                    let (lo, hi) = block.split_at_mut(t);
                    for (x, y) in lo.chunks_exact_mut(8).zip(hi.chunks_exact_mut(8)) {
                        let (u, v) = ct(c, load(x), load(y), w, ws);
                        store(x, u);
                        store(y, v);
                    }
                }
            }

            /// One Gentleman–Sande stage of half-size `t >= 8`; block `i` uses twiddle `base + i`.
            #[inline]
            #[target_feature(enable = $features)]
            fn gs_stage_blockwise(a: &mut [u64], tw: &Tables, c: Consts, base: usize, t: usize) {
                for (i, block) in a.chunks_exact_mut(2 * t).enumerate() {
                    let w = _mm512_set1_epi64(tw.w[base + i] as i64);
                    let ws = _mm512_set1_epi64(tw.ws[base + i] as i64);
                    let (lo, hi) = block.split_at_mut(t);
                    for (x, y) in lo.chunks_exact_mut(8).zip(hi.chunks_exact_mut(8)) {
                        let (u, v) = gs(c, load(x), load(y), w, ws);
                        store(x, u);
                        store(y, v);
                    }
                }
            }

            /// One stage of half-size `len >= 8` where element `j` of every block uses twiddle
            /// `len + j` (cyclic order); Cooley–Tukey if `dit`, else Gentleman–Sande.
            #[inline]
            #[target_feature(enable = $features)]
            fn stage_elementwise(a: &mut [u64], tw: &Tables, c: Consts, len: usize, dit: bool) {
                let (wt, wst) = (&tw.w[len..2 * len], &tw.ws[len..2 * len]);
                for block in a.chunks_exact_mut(2 * len) {
                    let (lo, hi) = block.split_at_mut(len);
                    for (((x, y), w), ws) in lo
                        .chunks_exact_mut(8)
                        .zip(hi.chunks_exact_mut(8))
                        .zip(wt.chunks_exact(8))
                        .zip(wst.chunks_exact(8))
                    {
                        let (u, v) = if dit {
                            ct(c, load(x), load(y), load(w), load(ws))
                        } else {
                            gs(c, load(x), load(y), load(w), load(ws))
                        };
                        store(x, u);
                        store(y, v);
                    }
                }
            }

            /// Negacyclic forward transform, `a.len() >= 16`.
            ///
            /// Stages whose blocks exceed [`BLOCK`] sweep the whole array; then each
            /// `BLOCK`-sized part runs all its remaining stages while it sits in L1.
            #[target_feature(enable = $features)]
            pub(crate) fn negacyclic_forward(a: &mut [u64], tw: &Tables, q: u64) {
                let n = a.len();
                let c = consts(q);
                let (mut m, mut t) = (1, n);
                while t > BLOCK {
                    t >>= 1;
                    ct_stage_blockwise(a, tw, c, m, t);
                    m <<= 1;
                }
                let part = t;
                let (t2_lo, t2_hi) = (idx(IDX_T4_T2_LO), idx(IDX_T4_T2_HI));
                let (out_lo, out_hi) = (idx(IDX_OUT_LO), idx(IDX_OUT_HI));
                let h = n / 2;
                for (j, sub) in a.chunks_exact_mut(part).enumerate() {
                    // Global block index of this part's blocks at local stage s is
                    // (m + j) 2^s + i.
                    let (mut base, mut t) = (m + j, part);
                    while t >= 16 {
                        t >>= 1;
                        ct_stage_blockwise(sub, tw, c, base, t);
                        base <<= 1;
                    }
                    let k0 = j * part / 16;
                    for (k, chunk) in sub.chunks_exact_mut(16).enumerate() {
                        let (c0, c1) = chunk.split_at_mut(8);
                        let (v0, v1) = (load(c0), load(c1));
                        let o = 8 * (k0 + k);
                        let lo = _mm512_shuffle_i64x2::<0x44>(v0, v1);
                        let hi = _mm512_shuffle_i64x2::<0xEE>(v0, v1);
                        let (lo, hi) = ct(c, lo, hi, load(&tw.lane_w[o..]), load(&tw.lane_ws[o..]));
                        let l2 = _mm512_permutex2var_epi64(lo, t2_lo, hi);
                        let h2 = _mm512_permutex2var_epi64(lo, t2_hi, hi);
                        let (lo, hi) = ct(
                            c,
                            l2,
                            h2,
                            load(&tw.lane_w[h + o..]),
                            load(&tw.lane_ws[h + o..]),
                        );
                        let l1 = _mm512_unpacklo_epi64(lo, hi);
                        let h1 = _mm512_unpackhi_epi64(lo, hi);
                        let (lo, hi) = ct(c, l1, h1, load(&tw.w[h + o..]), load(&tw.ws[h + o..]));
                        let lo = reduce(reduce(lo, c.two_q), c.q);
                        let hi = reduce(reduce(hi, c.two_q), c.q);
                        store(c0, _mm512_permutex2var_epi64(lo, out_lo, hi));
                        store(c1, _mm512_permutex2var_epi64(lo, out_hi, hi));
                    }
                }
            }

            /// Negacyclic inverse transform scaled by `1/n`, `a.len() >= 16`.
            #[target_feature(enable = $features)]
            pub(crate) fn negacyclic_inverse(a: &mut [u64], tw: &Tables, q: u64) {
                let n = a.len();
                let c = consts(q);
                let (even, odd) = (idx(IDX_EVEN), idx(IDX_ODD));
                let (t4_lo, t4_hi) = (idx(IDX_T4_T2_LO), idx(IDX_T4_T2_HI));
                let h = n / 2;
                let part = n.min(BLOCK);
                for (j, sub) in a.chunks_exact_mut(part).enumerate() {
                    let k0 = j * part / 16;
                    for (k, chunk) in sub.chunks_exact_mut(16).enumerate() {
                        let (c0, c1) = chunk.split_at_mut(8);
                        let (v0, v1) = (load(c0), load(c1));
                        let o = 8 * (k0 + k);
                        let lo = _mm512_permutex2var_epi64(v0, even, v1);
                        let hi = _mm512_permutex2var_epi64(v0, odd, v1);
                        let (lo, hi) = gs(c, lo, hi, load(&tw.w[h + o..]), load(&tw.ws[h + o..]));
                        let l2 = _mm512_unpacklo_epi64(lo, hi);
                        let h2 = _mm512_unpackhi_epi64(lo, hi);
                        let (lo, hi) = gs(
                            c,
                            l2,
                            h2,
                            load(&tw.lane_w[h + o..]),
                            load(&tw.lane_ws[h + o..]),
                        );
                        let l4 = _mm512_permutex2var_epi64(lo, t4_lo, hi);
                        let h4 = _mm512_permutex2var_epi64(lo, t4_hi, hi);
                        let (lo, hi) = gs(c, l4, h4, load(&tw.lane_w[o..]), load(&tw.lane_ws[o..]));
                        store(c0, _mm512_shuffle_i64x2::<0x44>(lo, hi));
                        store(c1, _mm512_shuffle_i64x2::<0xEE>(lo, hi));
                    }
                    // Local stage with `hl` blocks in this part has global twiddle index
                    // hl (n / part + j) + i.
                    let (mut hl, mut t) = (part / 16, 8);
                    while t < part && 2 * t < n {
                        gs_stage_blockwise(sub, tw, c, hl * (n / part + j), t);
                        hl >>= 1;
                        t <<= 1;
                    }
                }
                let mut t = part;
                while 2 * t < n {
                    gs_stage_blockwise(a, tw, c, n / (2 * t), t);
                    t <<= 1;
                }
                // Last stage fused with the scaling: x' = (x + y) / n, y' = (x - y) w / n.
                let ni = _mm512_set1_epi64(tw.n_inv.0 as i64);
                let nis = _mm512_set1_epi64(tw.n_inv.1 as i64);
                let wl = _mm512_set1_epi64(tw.last.0 as i64);
                let wls = _mm512_set1_epi64(tw.last.1 as i64);
                let (lo, hi) = a.split_at_mut(n / 2);
                for (x, y) in lo.chunks_exact_mut(8).zip(hi.chunks_exact_mut(8)) {
                    let (u, v) = (load(x), load(y));
                    let s = _mm512_add_epi64(u, v);
                    let d = _mm512_sub_epi64(_mm512_add_epi64(u, c.two_q), v);
                    store(x, reduce($mul(c, s, ni, nis), c.q));
                    store(y, reduce($mul(c, d, wl, wls), c.q));
                }
            }

            /// Cyclic forward DFT (decimation in frequency), `a.len() >= 16`.
            #[target_feature(enable = $features)]
            pub(crate) fn cyclic_forward(a: &mut [u64], tw: &Tables, q: u64) {
                let n = a.len();
                let c = consts(q);
                let mut len = n / 2;
                while 2 * len > BLOCK {
                    stage_elementwise(a, tw, c, len, false);
                    len >>= 1;
                }
                let part = 2 * len;
                let (w4, ws4, w2, ws2, w1, ws1) = small_stage_twiddles(tw);
                let (t2_lo, t2_hi) = (idx(IDX_T4_T2_LO), idx(IDX_T4_T2_HI));
                let (out_lo, out_hi) = (idx(IDX_OUT_LO), idx(IDX_OUT_HI));
                for sub in a.chunks_exact_mut(part) {
                    let mut len = part / 2;
                    while len >= 8 {
                        stage_elementwise(sub, tw, c, len, false);
                        len >>= 1;
                    }
                    for chunk in sub.chunks_exact_mut(16) {
                        let (c0, c1) = chunk.split_at_mut(8);
                        let (v0, v1) = (load(c0), load(c1));
                        let lo = _mm512_shuffle_i64x2::<0x44>(v0, v1);
                        let hi = _mm512_shuffle_i64x2::<0xEE>(v0, v1);
                        let (lo, hi) = gs(c, lo, hi, w4, ws4);
                        let l2 = _mm512_permutex2var_epi64(lo, t2_lo, hi);
                        let h2 = _mm512_permutex2var_epi64(lo, t2_hi, hi);
                        let (lo, hi) = gs(c, l2, h2, w2, ws2);
                        let l1 = _mm512_unpacklo_epi64(lo, hi);
                        let h1 = _mm512_unpackhi_epi64(lo, hi);
                        let (lo, hi) = gs(c, l1, h1, w1, ws1);
                        let lo = reduce(lo, c.q);
                        let hi = reduce(hi, c.q);
                        store(c0, _mm512_permutex2var_epi64(lo, out_lo, hi));
                        store(c1, _mm512_permutex2var_epi64(lo, out_hi, hi));
                    }
                }
            }

            /// Cyclic inverse DFT (decimation in time) scaled by `1/n`, `a.len() >= 16`.
            #[target_feature(enable = $features)]
            pub(crate) fn cyclic_inverse(a: &mut [u64], tw: &Tables, q: u64) {
                let n = a.len();
                let c = consts(q);
                let (w4, ws4, w2, ws2, w1, ws1) = small_stage_twiddles(tw);
                let (even, odd) = (idx(IDX_EVEN), idx(IDX_ODD));
                let (t4_lo, t4_hi) = (idx(IDX_T4_T2_LO), idx(IDX_T4_T2_HI));
                let part = n.min(BLOCK);
                for sub in a.chunks_exact_mut(part) {
                    for chunk in sub.chunks_exact_mut(16) {
                        let (c0, c1) = chunk.split_at_mut(8);
                        let (v0, v1) = (load(c0), load(c1));
                        let lo = _mm512_permutex2var_epi64(v0, even, v1);
                        let hi = _mm512_permutex2var_epi64(v0, odd, v1);
                        let (lo, hi) = ct(c, lo, hi, w1, ws1);
                        let l2 = _mm512_unpacklo_epi64(lo, hi);
                        let h2 = _mm512_unpackhi_epi64(lo, hi);
                        let (lo, hi) = ct(c, l2, h2, w2, ws2);
                        let l4 = _mm512_permutex2var_epi64(lo, t4_lo, hi);
                        let h4 = _mm512_permutex2var_epi64(lo, t4_hi, hi);
                        let (lo, hi) = ct(c, l4, h4, w4, ws4);
                        store(c0, _mm512_shuffle_i64x2::<0x44>(lo, hi));
                        store(c1, _mm512_shuffle_i64x2::<0xEE>(lo, hi));
                    }
                    let mut len = 8;
                    while len < part && 2 * len < n {
                        stage_elementwise(sub, tw, c, len, true);
                        len <<= 1;
                    }
                }
                let mut len = part;
                while 2 * len < n {
                    stage_elementwise(a, tw, c, len, true);
                    len <<= 1;
                }
                // Last stage fused with the scaling by 1/n.
                let ni = _mm512_set1_epi64(tw.n_inv.0 as i64);
                let nis = _mm512_set1_epi64(tw.n_inv.1 as i64);
                let len = n / 2;
                let (wt, wst) = (&tw.w[len..], &tw.ws[len..]);
                let (lo, hi) = a.split_at_mut(len);
                for (((x, y), w), ws) in lo
                    .chunks_exact_mut(8)
                    .zip(hi.chunks_exact_mut(8))
                    .zip(wt.chunks_exact(8))
                    .zip(wst.chunks_exact(8))
                {
                    let (u, v) = ct(c, load(x), load(y), load(w), load(ws));
                    store(x, reduce($mul(c, u, ni, nis), c.q));
                    store(y, reduce($mul(c, v, ni, nis), c.q));
                }
            }

            /// The constant twiddle vectors of the cyclic in-register stages (spans 4, 2, 1).
            #[inline]
            #[target_feature(enable = $features)]
            #[allow(clippy::type_complexity)]
            fn small_stage_twiddles(
                tw: &Tables,
            ) -> (__m512i, __m512i, __m512i, __m512i, __m512i, __m512i) {
                let pick = |t: &[u64], i: [usize; 8]| {
                    [
                        t[i[0]], t[i[1]], t[i[2]], t[i[3]], t[i[4]], t[i[5]], t[i[6]], t[i[7]],
                    ]
                };
                let i4 = [4, 5, 6, 7, 4, 5, 6, 7];
                let i2 = [2, 3, 2, 3, 2, 3, 2, 3];
                (
                    load(&pick(&tw.w, i4)),
                    load(&pick(&tw.ws, i4)),
                    load(&pick(&tw.w, i2)),
                    load(&pick(&tw.ws, i2)),
                    _mm512_set1_epi64(tw.w[1] as i64),
                    _mm512_set1_epi64(tw.ws[1] as i64),
                )
            }
        }
    };
}

transforms!(ifma, "avx512f,avx512dq,avx512ifma", mul_ifma);
transforms!(shoup32, "avx512f,avx512dq", mul_shoup32);
transforms!(shoup64, "avx512f,avx512dq", mul_shoup64);

/// Lane twiddles of the two in-register stages that do not read the plain table (spans 4 and 2),
/// for 16-element chunks; the span-1 stage reads `w[n/2 + 8k ..]` directly.
///
/// Chunk `k` of the span-4 stage holds `[w[n/8 + 2k]; 4] ++ [w[n/8 + 2k + 1]; 4]`; of the span-2
/// stage `w[n/4 + 4k + l/2]` in lane `l`. The span-4 part fills `[0, n/2)`, the span-2 part
/// `[n/2, n)`.
pub(crate) fn lane_twiddles(t: &[u64]) -> Vec<u64> {
    let n = t.len();
    let mut out = vec![0; n];
    for k in 0..n / 16 {
        for l in 0..8 {
            out[8 * k + l] = t[n / 8 + 2 * k + l / 4];
            out[n / 2 + 8 * k + l] = t[n / 4 + 4 * k + l / 2];
        }
    }
    out
}
