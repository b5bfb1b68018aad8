//! AVX-512 transforms: eight 64-bit lanes, Harvey lazy butterflies.
//!
//! Stages whose butterflies span at least eight elements run on whole vectors with a broadcast
//! (negacyclic) or contiguous (cyclic) twiddle. The negacyclic forward transform runs its last
//! four stages (spans 8 to 1) on chunks of 32 elements in four registers (spans 8 and 4 between
//! whole registers loaded as 256-bit halves, spans 2 and 1 after lane shuffles); the first three
//! stages of an inverse and the cyclic tails run on pairs of registers (sixteen elements) with
//! lane permutations. The negacyclic tails run several chunks in step (one alone is
//! latency-bound: measured on Zen 4, `docs/PERFORMANCE.md`). The multiplication by a twiddle
//! depends on the size of `q` ([`MulKind`](crate::modarith::MulKind)):
//!
//! * `Ifma52` (`q < 2^50`, AVX-512 IFMA52): quotient `madd52hi(y, w')`, remainder from two
//!   `madd52lo` — the approach of Intel HEXL (Boemer et al., "Intel HEXL", WAHC 2021) — in
//!   module `ifma`; on AMD CPUs (`vpmullq_is_fast`) the remainder `y w − quot q` comes from two
//!   `vpmullq` instead (module `ifma_mullo`: exact mod `2^64`, no mask, one IFMA per product).
//! * `Shoup32` (`q < 2^32`): 32x32->64-bit `vpmuludq` products with a 32-bit Shoup companion.
//! * `Shoup64` (`q < 2^62`): the high half of `y * w'` from three `vpmuludq` pieces (the low-by-low
//!   piece is dropped, so the quotient is short by at most 2 and the remainder is `< 4q`), the
//!   low halves from `vpmullq`. For `q < 2^61` the product stays in `[0, 4q)` (module `shoup64`);
//!   for larger `q` one conditional subtraction brings it to `[0, 2q)` (`shoup64_wide`).
//!
//! **Bounds.** Let `m` be the bound of the kind's products (`2q`, or `4q` for `shoup64`). The
//! Cooley–Tukey butterfly takes `x, y < 2m`, reduces `x` below `m` by one conditional
//! subtraction of `m`, and returns `x + v < 2m` and `x + m − v ∈ (0, 2m)` for the product
//! `v < m`; the Gentleman–Sande butterfly takes `x, y < m` and returns `x + y` reduced below `m`
//! and the product of `x + m − y < 2m`. Every value stays below `2m`: `4q < 2^52` for IFMA52's
//! 52-bit multiplier inputs (`q < 2^50`), `4q ≤ 2^34` for `Shoup32`'s (it reduces its input below
//! `q` first), and `8q < 2^64` for `shoup64` (`q < 2^61`; any 64-bit input is allowed there).
//! Outputs are brought from `[0, 2m)` or `[0, m)` to `[0, q)` at the end (`reduce_m`).
//!
//! The stage schedule (which stages sweep the array, which run per L1-sized part) is
//! [`super::schedule`]'s, shared with the AVX2 and NEON backends; this file holds only the
//! butterflies and the in-register tails. Outputs agree bit for bit with [`super::scalar`]
//! because both are fully reduced at the end.

use core::arch::x86_64::*;

use super::Tables;
use crate::modarith::avx512::{
    self as arith, load, mul_ifma, mul_ifma_mullo, mul_shoup32, mul_shoup64, mul_shoup64_lazy,
    reduce, store,
};

/// The butterflies' constants: the modulus's, and `m`, the bound of the kind's products (`2q`,
/// or `4q` where the product skips its last conditional subtraction). Butterfly values stay below
/// `2m`.
#[derive(Clone, Copy)]
struct Consts {
    k: arith::Consts,
    m: __m512i,
    /// The Cooley–Tukey butterflies' `x` is already below `m` (the first forward stage's inputs
    /// are reduced), so they skip its reduction.
    x_reduced: bool,
}

/// Length of the parts that run their remaining stages while resident in L1 (16 KiB of data).
const BLOCK: usize = 2048;

/// Lane permutation indices of the cyclic in-register stages.
const IDX_T4_T2_LO: [i64; 8] = [0, 1, 8, 9, 4, 5, 12, 13];
const IDX_T4_T2_HI: [i64; 8] = [2, 3, 10, 11, 6, 7, 14, 15];
const IDX_OUT_LO: [i64; 8] = [0, 8, 1, 9, 2, 10, 3, 11];
const IDX_OUT_HI: [i64; 8] = [4, 12, 5, 13, 6, 14, 7, 15];
const IDX_EVEN: [i64; 8] = [0, 2, 4, 6, 8, 10, 12, 14];
const IDX_ODD: [i64; 8] = [1, 3, 5, 7, 9, 11, 13, 15];

// The negacyclic tails' layouts. Element `e = 8 b3 + 4 b2 + 2 b1 + b0` of a 16-element chunk sits
// in the register pair at (register, lane bits 2 1 0); each stage needs its partner bit in the
// register. Forward: loaded (b3; b2 b1 b0), span 4 at (b2; b3 b1 b0) after a 256-bit shuffle,
// span 2 at (b1; b2 b3 b0) after a 128-bit `vshufi64x2` (cheaper than a two-source permutation),
// span 1 at (b0; b2 b3 b1) after unpacking, then one permutation back to (b3; b2 b1 b0). The
// inverse runs the same layouts backwards (the step from span 2 to span 4 needs a permutation
// there). `lane_twiddles` lays the twiddles of spans 2 and 1 out in these lane orders.
/// Forward output: (b0; b2 b3 b1) back to natural order.
const NEG_OUT_LO: [i64; 8] = [0, 8, 1, 9, 4, 12, 5, 13];
const NEG_OUT_HI: [i64; 8] = [2, 10, 3, 11, 6, 14, 7, 15];
/// Inverse input: natural order to (b0; b2 b3 b1).
const NEG_IN_LO: [i64; 8] = [0, 2, 8, 10, 4, 6, 12, 14];
const NEG_IN_HI: [i64; 8] = [1, 3, 9, 11, 5, 7, 13, 15];
/// Inverse, span 2 to span 4: (b1; b2 b3 b0) to (b2; b3 b1 b0).
const NEG_T4_LO: [i64; 8] = [0, 1, 8, 9, 2, 3, 10, 11];
const NEG_T4_HI: [i64; 8] = [4, 5, 12, 13, 6, 7, 14, 15];
/// Lane `l` of the span-2 stage holds the chunk's 4-block `NEG_SPAN2[l]`, of the span-1 stage its
/// pair `NEG_SPAN1[l]`.
const NEG_SPAN2: [usize; 8] = [0, 0, 2, 2, 1, 1, 3, 3];
const NEG_SPAN1: [usize; 8] = [0, 1, 4, 5, 2, 3, 6, 7];

#[inline]
#[target_feature(enable = "avx512f")]
fn idx(i: [i64; 8]) -> __m512i {
    _mm512_setr_epi64(i[0], i[1], i[2], i[3], i[4], i[5], i[6], i[7])
}

/// Elements `a[..4]` in the low 256 bits, `b[..4]` in the high ones: two 256-bit loads and an
/// insertion, cheaper than two 512-bit loads and a lane shuffle.
#[inline]
#[target_feature(enable = "avx512f")]
fn load_halves(a: &[u64], b: &[u64]) -> __m512i {
    assert!(a.len() >= 4 && b.len() >= 4);
    // SAFETY: both slices hold at least four u64 (checked above); unaligned loads are allowed.
    unsafe {
        let lo = _mm256_loadu_si256(a.as_ptr().cast());
        let hi = _mm256_loadu_si256(b.as_ptr().cast());
        _mm512_inserti64x4::<1>(_mm512_castsi256_si512(lo), hi)
    }
}

#[inline]
#[target_feature(enable = "avx512f")]
fn bcast(x: u64) -> __m512i {
    _mm512_set1_epi64(x as i64)
}

/// Generates the four transforms for one multiplication kind: the butterflies and in-register
/// tails of this ISA, and [`ntt_schedule!`](super::schedule) for the stage schedule.
macro_rules! transforms {
    (
        $name:ident,
        $features:literal,
        $mul:ident,
        $m:literal,
        $fwd_ilp:literal,
        $tail_ilp:literal,
        $paired:literal,
        $fused_last:literal
    ) => {
        pub(crate) mod $name {
            use super::*;

            use super::bcast as bcast_w;
            use crate::modarith::avx512::load as load_w;

            /// Lanes per vector.
            const LANES: usize = 8;
            /// The negacyclic inverse tail runs the spans 1, 2, 4 on chunks of 16 (a register
            /// pair).
            const NEG_TAIL: usize = 8;
            /// The forward tail runs the spans 8, 4, 2, 1 on chunks of 32 (four registers).
            const FWD_TAIL: usize = 16;
            /// Whether the blockwise stages run two vectors per step (per kind, measured).
            const PAIRED: bool = $paired;
            /// Whether the forward tail's last stage is [`ct_reduced`] rather than [`ct`]
            /// followed by full reductions (per kind, measured).
            const FUSED_LAST: bool = $fused_last;
            /// Chunks of 32 that the forward tail runs in step, and of 16 that the inverse tail
            /// runs in step (per kind, measured: more than fit in the 32 registers spill).
            const FWD_ILP: usize = $fwd_ilp;
            const TAIL_ILP: usize = $tail_ilp;
            /// The products' bound `m` in multiples of `q` (2 or 4).
            const M: u64 = $m;

            #[inline]
            #[target_feature(enable = $features)]
            fn consts(q: u64) -> Consts {
                Consts {
                    k: arith::consts(q),
                    m: bcast(M * q),
                    x_reduced: false,
                }
            }

            /// The first forward stage's inputs are `< q`: its butterflies skip reducing `x`.
            #[inline]
            #[target_feature(enable = $features)]
            fn first_forward(c: Consts) -> Consts {
                Consts {
                    x_reduced: true,
                    ..c
                }
            }

            /// `x w mod q` in `[0, m)`.
            #[inline]
            #[target_feature(enable = $features)]
            fn mul(c: Consts, x: __m512i, w: __m512i, ws: __m512i) -> __m512i {
                $mul(c.k, x, w, ws)
            }

            /// `[0, m)` to `[0, q)`.
            #[inline]
            #[target_feature(enable = $features)]
            fn reduce_m(c: Consts, x: __m512i) -> __m512i {
                let x = if M == 4 { reduce(x, c.k.two_q) } else { x };
                reduce(x, c.k.q)
            }

            /// Cooley–Tukey butterfly: `x, y < 2m` in, `x + wy, x - wy + m < 2m` out.
            #[inline]
            #[target_feature(enable = $features)]
            fn ct(
                c: Consts,
                x: __m512i,
                y: __m512i,
                w: __m512i,
                ws: __m512i,
            ) -> (__m512i, __m512i) {
                let x = if c.x_reduced { x } else { reduce(x, c.m) };
                let v = mul(c, y, w, ws);
                (
                    _mm512_add_epi64(x, v),
                    _mm512_sub_epi64(_mm512_add_epi64(x, c.m), v),
                )
            }

            /// [`ct`] with fully reduced outputs: `x, y < 2m` in, `x + wy, x - wy < q` out
            /// (`x` and the product reduced below `q` first, so that the sum needs one
            /// conditional subtraction and the difference one conditional addition).
            #[inline]
            #[target_feature(enable = $features)]
            fn ct_reduced(
                c: Consts,
                x: __m512i,
                y: __m512i,
                w: __m512i,
                ws: __m512i,
            ) -> (__m512i, __m512i) {
                let x = reduce_m(c, reduce(x, c.m));
                let v = reduce_m(c, mul(c, y, w, ws));
                let d = _mm512_sub_epi64(x, v);
                (
                    reduce(_mm512_add_epi64(x, v), c.k.q),
                    _mm512_min_epu64(d, _mm512_add_epi64(d, c.k.q)),
                )
            }

            /// Gentleman–Sande butterfly: `x, y < m` in, `x + y < m, (x - y) w < m` out.
            #[inline]
            #[target_feature(enable = $features)]
            fn gs(
                c: Consts,
                x: __m512i,
                y: __m512i,
                w: __m512i,
                ws: __m512i,
            ) -> (__m512i, __m512i) {
                let s = reduce(_mm512_add_epi64(x, y), c.m);
                let d = _mm512_sub_epi64(_mm512_add_epi64(x, c.m), y);
                (s, mul(c, d, w, ws))
            }

            /// `(x + y, x − y + m)`.
            #[inline]
            #[target_feature(enable = $features)]
            fn sum_diff(c: Consts, x: __m512i, y: __m512i) -> (__m512i, __m512i) {
                (
                    _mm512_add_epi64(x, y),
                    _mm512_sub_epi64(_mm512_add_epi64(x, c.m), y),
                )
            }

            /// `x w mod q`, fully reduced.
            #[inline]
            #[target_feature(enable = $features)]
            fn scale(c: Consts, x: __m512i, w: __m512i, ws: __m512i) -> __m512i {
                reduce_m(c, mul(c, x, w, ws))
            }

            /// The spans 8, 4, 2, 1 of a negacyclic forward transform on chunks of 32, fully
            /// reduced and in natural order; `FWD_ILP` chunks at a time (layouts and
            /// twiddles: [`forward_lane_twiddles`]).
            #[inline]
            #[target_feature(enable = $features)]
            fn neg_forward_tail(c: Consts, sub: &mut [u64], tw: &Tables, first: usize, _n: usize) {
                let mut j = first / 32;
                let mut chunks = sub.chunks_exact_mut(32 * FWD_ILP);
                for chunk in &mut chunks {
                    neg_forward_chunks::<FWD_ILP>(c, chunk, tw, j);
                    j += FWD_ILP;
                }
                for chunk in chunks.into_remainder().chunks_exact_mut(32) {
                    neg_forward_chunks::<1>(c, chunk, tw, j);
                    j += 1;
                }
            }

            /// [`neg_forward_tail`] on `P` consecutive chunks of 32 (global chunk indices
            /// `j..j + P`), every step on all of them before the next: their dependency chains
            /// are independent, and one chunk alone is latency-bound (each `for` unrolls).
            ///
            /// Register `r[2 b3 + b2]` of a chunk holds its elements `16 b4 + 8 b3 + 4 b2 + b1 b0`,
            /// lane bits `(b4; b1 b0)`, loaded as 256-bit halves: the spans 8 and 4 pair whole
            /// registers. Each pair `(r[2 b3], r[2 b3 + 1])` then runs the spans 2 and 1 like a
            /// chunk of 16 whose bit `b4` sits where its `b3` would (128-bit shuffle, span 2,
            /// unpacking, span 1, one permutation back to `(b4; b2 b1 b0)`).
            #[inline]
            #[target_feature(enable = $features)]
            fn neg_forward_chunks<const P: usize>(
                c: Consts,
                chunk: &mut [u64],
                tw: &Tables,
                j: usize,
            ) {
                let (out_lo, out_hi) = (idx(NEG_OUT_LO), idx(NEG_OUT_HI));
                let mut r = [[c.m; 4]; P];
                let lane = |p: usize, v: usize| {
                    let o = FWD_LANE_VECTORS * 8 * (j + p) + 8 * v;
                    (load(&tw.lane_w[o..]), load(&tw.lane_ws[o..]))
                };
                for p in 0..P {
                    let e = &chunk[32 * p..];
                    for (i, r) in r[p].iter_mut().enumerate() {
                        *r = load_halves(&e[4 * i..], &e[16 + 4 * i..]);
                    }
                }
                for p in 0..P {
                    let (w, ws) = lane(p, 0);
                    (r[p][0], r[p][2]) = ct(c, r[p][0], r[p][2], w, ws);
                    (r[p][1], r[p][3]) = ct(c, r[p][1], r[p][3], w, ws);
                }
                for p in 0..P {
                    for b3 in 0..2 {
                        let (w, ws) = lane(p, 1 + b3);
                        (r[p][2 * b3], r[p][2 * b3 + 1]) =
                            ct(c, r[p][2 * b3], r[p][2 * b3 + 1], w, ws);
                    }
                }
                for p in 0..P {
                    for b3 in 0..2 {
                        // 128-bit units 0, 2 of each register, then 1, 3.
                        let (lo, hi) = (r[p][2 * b3], r[p][2 * b3 + 1]);
                        r[p][2 * b3] = _mm512_shuffle_i64x2::<0x88>(lo, hi);
                        r[p][2 * b3 + 1] = _mm512_shuffle_i64x2::<0xDD>(lo, hi);
                    }
                }
                for p in 0..P {
                    for b3 in 0..2 {
                        let (w, ws) = lane(p, 3 + b3);
                        (r[p][2 * b3], r[p][2 * b3 + 1]) =
                            ct(c, r[p][2 * b3], r[p][2 * b3 + 1], w, ws);
                    }
                }
                for p in 0..P {
                    for b3 in 0..2 {
                        let (lo, hi) = (r[p][2 * b3], r[p][2 * b3 + 1]);
                        r[p][2 * b3] = _mm512_unpacklo_epi64(lo, hi);
                        r[p][2 * b3 + 1] = _mm512_unpackhi_epi64(lo, hi);
                    }
                }
                for p in 0..P {
                    for b3 in 0..2 {
                        let (w, ws) = lane(p, 5 + b3);
                        let (lo, hi) = (r[p][2 * b3], r[p][2 * b3 + 1]);
                        (r[p][2 * b3], r[p][2 * b3 + 1]) = if FUSED_LAST {
                            ct_reduced(c, lo, hi, w, ws)
                        } else {
                            ct(c, lo, hi, w, ws)
                        };
                    }
                }
                for p in 0..P {
                    for b3 in 0..2 {
                        let (x, y) = (r[p][2 * b3], r[p][2 * b3 + 1]);
                        let (x, y) = if FUSED_LAST {
                            (x, y)
                        } else {
                            (reduce_m(c, reduce(x, c.m)), reduce_m(c, reduce(y, c.m)))
                        };
                        let e = &mut chunk[32 * p + 8 * b3..];
                        store(e, _mm512_permutex2var_epi64(x, out_lo, y));
                        store(&mut e[16..], _mm512_permutex2var_epi64(x, out_hi, y));
                    }
                }
            }

            /// The spans 1, 2, 4 of a negacyclic inverse transform on chunks of 16 (the inverse
            /// of [`neg_forward_tail`]'s permutations); `TAIL_ILP` chunks at a time.
            #[inline]
            #[target_feature(enable = $features)]
            fn neg_inverse_tail(c: Consts, sub: &mut [u64], tw: &Tables, first: usize, n: usize) {
                let mut k = first / 16;
                let mut chunks = sub.chunks_exact_mut(16 * TAIL_ILP);
                for chunk in &mut chunks {
                    neg_inverse_chunks::<TAIL_ILP>(c, chunk, tw, k, n / 2);
                    k += TAIL_ILP;
                }
                for chunk in chunks.into_remainder().chunks_exact_mut(16) {
                    neg_inverse_chunks::<1>(c, chunk, tw, k, n / 2);
                    k += 1;
                }
            }

            /// [`neg_inverse_tail`] on `P` consecutive chunks of 16, in step.
            #[inline]
            #[target_feature(enable = $features)]
            fn neg_inverse_chunks<const P: usize>(
                c: Consts,
                chunk: &mut [u64],
                tw: &Tables,
                k: usize,
                h: usize,
            ) {
                let (in_lo, in_hi) = (idx(NEG_IN_LO), idx(NEG_IN_HI));
                let (t4_lo, t4_hi) = (idx(NEG_T4_LO), idx(NEG_T4_HI));
                let (mut lo, mut hi) = ([c.m; P], [c.m; P]);
                for p in 0..P {
                    let (v0, v1) = (load(&chunk[16 * p..]), load(&chunk[16 * p + 8..]));
                    lo[p] = _mm512_permutex2var_epi64(v0, in_lo, v1);
                    hi[p] = _mm512_permutex2var_epi64(v0, in_hi, v1);
                }
                for p in 0..P {
                    let o = 2 * h + 8 * (k + p);
                    let (w, ws) = (load(&tw.lane_w[o..]), load(&tw.lane_ws[o..]));
                    (lo[p], hi[p]) = gs(c, lo[p], hi[p], w, ws);
                }
                for p in 0..P {
                    let l2 = _mm512_unpacklo_epi64(lo[p], hi[p]);
                    hi[p] = _mm512_unpackhi_epi64(lo[p], hi[p]);
                    lo[p] = l2;
                }
                for p in 0..P {
                    let o = h + 8 * (k + p);
                    let (w, ws) = (load(&tw.lane_w[o..]), load(&tw.lane_ws[o..]));
                    (lo[p], hi[p]) = gs(c, lo[p], hi[p], w, ws);
                }
                for p in 0..P {
                    let l4 = _mm512_permutex2var_epi64(lo[p], t4_lo, hi[p]);
                    hi[p] = _mm512_permutex2var_epi64(lo[p], t4_hi, hi[p]);
                    lo[p] = l4;
                }
                for p in 0..P {
                    let o = 8 * (k + p);
                    let (w, ws) = (load(&tw.lane_w[o..]), load(&tw.lane_ws[o..]));
                    (lo[p], hi[p]) = gs(c, lo[p], hi[p], w, ws);
                }
                for p in 0..P {
                    store(
                        &mut chunk[16 * p..],
                        _mm512_shuffle_i64x2::<0x44>(lo[p], hi[p]),
                    );
                    store(
                        &mut chunk[16 * p + 8..],
                        _mm512_shuffle_i64x2::<0xEE>(lo[p], hi[p]),
                    );
                }
            }

            /// The spans 4, 2, 1 of a cyclic forward DFT on chunks of 16, fully reduced.
            #[inline]
            #[target_feature(enable = $features)]
            fn cyclic_forward_tail(c: Consts, sub: &mut [u64], tw: &Tables) {
                let (w4, ws4, w2, ws2, w1, ws1) = small_stage_twiddles(tw);
                let (t2_lo, t2_hi) = (idx(IDX_T4_T2_LO), idx(IDX_T4_T2_HI));
                let (out_lo, out_hi) = (idx(IDX_OUT_LO), idx(IDX_OUT_HI));
                for chunk in sub.chunks_exact_mut(16) {
                    let (c0, c1) = chunk.split_at_mut(8);
                    let lo = load_halves(c0, c1);
                    let hi = load_halves(&c0[4..], &c1[4..]);
                    let (lo, hi) = gs(c, lo, hi, w4, ws4);
                    let l2 = _mm512_permutex2var_epi64(lo, t2_lo, hi);
                    let h2 = _mm512_permutex2var_epi64(lo, t2_hi, hi);
                    let (lo, hi) = gs(c, l2, h2, w2, ws2);
                    let l1 = _mm512_unpacklo_epi64(lo, hi);
                    let h1 = _mm512_unpackhi_epi64(lo, hi);
                    let (lo, hi) = gs(c, l1, h1, w1, ws1);
                    let lo = reduce_m(c, lo);
                    let hi = reduce_m(c, hi);
                    store(c0, _mm512_permutex2var_epi64(lo, out_lo, hi));
                    store(c1, _mm512_permutex2var_epi64(lo, out_hi, hi));
                }
            }

            /// The spans 1, 2, 4 of a cyclic inverse DFT on chunks of 16.
            #[inline]
            #[target_feature(enable = $features)]
            fn cyclic_inverse_tail(c: Consts, sub: &mut [u64], tw: &Tables) {
                let (w4, ws4, w2, ws2, w1, ws1) = small_stage_twiddles(tw);
                let (even, odd) = (idx(IDX_EVEN), idx(IDX_ODD));
                let (t4_lo, t4_hi) = (idx(IDX_T4_T2_LO), idx(IDX_T4_T2_HI));
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
            }

            /// Every stage runs the same butterflies.
            #[inline]
            #[target_feature(enable = $features)]
            fn stage(c: Consts, _span: usize, _dit: bool) -> Consts {
                c
            }

            crate::ntt::schedule::ntt_schedule!($features);

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
                    bcast(tw.w[1]),
                    bcast(tw.ws[1]),
                )
            }
        }
    };
}

// Per kind (measured on Zen 4): product, its bound (multiples of q), chunks in step in the
// forward and inverse tails, whether the blockwise stages pair vectors, whether the forward
// tail's last butterfly reduces fully.
#[rustfmt::skip]
mod kinds {
    use super::*;
    transforms!(ifma, "avx512f,avx512dq,avx512ifma", mul_ifma, 2, 3, 4, true, true);
    transforms!(ifma_mullo, "avx512f,avx512dq,avx512ifma", mul_ifma_mullo, 2, 3, 4, true, true);
    transforms!(shoup32, "avx512f,avx512dq", mul_shoup32, 2, 2, 4, false, true);
    transforms!(shoup64, "avx512f,avx512dq", mul_shoup64_lazy, 4, 4, 8, true, false);
    transforms!(shoup64_wide, "avx512f,avx512dq", mul_shoup64, 2, 4, 8, false, false);
}
pub(crate) use kinds::{ifma, ifma_mullo, shoup32, shoup64, shoup64_wide};

/// Twiddle vectors per 32-element chunk of the forward tail.
const FWD_LANE_VECTORS: usize = 7;

/// Lane twiddles of the negacyclic forward tail (`neg_forward_chunks`), `n >= 32`: per chunk `j`
/// of 32 elements, seven vectors of eight. Vector 0 (span 8, lane bit 2 = `b4`):
/// `w[n/16 + 2j + b4]`; vectors 1, 2 (span 4, registers with `b3 = 0, 1`):
/// `w[n/8 + 4j + 2 b4 + b3]`; vectors 3, 4 (span 2, lanes `(b2 b4 b0)`): `w[n/4 + 8j + 4 b4 + 2 b3
/// + b2]`; vectors 5, 6 (span 1, lanes `(b2 b4 b1)`): `w[n/2 + 16j + 8 b4 + 4 b3 + 2 b2 + b1]`.
pub(crate) fn forward_lane_twiddles(t: &[u64]) -> Vec<u64> {
    let n = t.len();
    let mut out = vec![0; FWD_LANE_VECTORS * 8 * (n / 32)];
    for (j, v) in out.chunks_exact_mut(FWD_LANE_VECTORS * 8).enumerate() {
        for l in 0..8 {
            let (l2, l1, l0) = (l >> 2, (l >> 1) & 1, l & 1);
            v[l] = t[n / 16 + 2 * j + l2];
            for b3 in 0..2 {
                v[8 * (1 + b3) + l] = t[n / 8 + 4 * j + 2 * l2 + b3];
                v[8 * (3 + b3) + l] = t[n / 4 + 8 * j + 4 * l1 + 2 * b3 + l2];
                v[8 * (5 + b3) + l] = t[n / 2 + 16 * j + 8 * l1 + 4 * b3 + 2 * l2 + l0];
            }
        }
    }
    out
}

/// Lane twiddles of the negacyclic in-register stages, for 16-element chunks, in the lane orders
/// of the tails (see `NEG_SPAN2`).
///
/// Chunk `k` of the span-4 stage holds `[w[n/8 + 2k]; 4] ++ [w[n/8 + 2k + 1]; 4]`; of the span-2
/// stage `w[n/4 + 4k + NEG_SPAN2[l]]` in lane `l`, of the span-1 stage
/// `w[n/2 + 8k + NEG_SPAN1[l]]`. The three parts fill `[0, n/2)`, `[n/2, n)` and `[n, 3n/2)`.
pub(crate) fn lane_twiddles(t: &[u64]) -> Vec<u64> {
    let n = t.len();
    let mut out = vec![0; 3 * n / 2];
    for k in 0..n / 16 {
        for l in 0..8 {
            out[8 * k + l] = t[n / 8 + 2 * k + l / 4];
            out[n / 2 + 8 * k + l] = t[n / 4 + 4 * k + NEG_SPAN2[l]];
            out[n + 8 * k + l] = t[n / 2 + 8 * k + NEG_SPAN1[l]];
        }
    }
    out
}
