//! The stage schedule of the SIMD transforms, written once and instantiated per ISA.
//!
//! Every SIMD backend runs the same schedule; only its butterflies, loads and lane shuffles
//! differ. A transform of length `n` sweeps the whole array for the stages whose blocks exceed
//! `BLOCK` elements, then runs each `BLOCK`-sized part's remaining stages while the part sits in
//! L1, down to the stages that work inside registers (the *tail*, with lane shuffles); inverse
//! transforms run the same steps in reverse and fuse their last stage with the scaling by
//! `1/n`. Reordering independent butterflies this way leaves every value unchanged, so each
//! instance agrees bit for bit with [`super::scalar`] (the differential tests check it).
//!
//! [`ntt_schedule!`] expects in scope (all `#[target_feature]` functions of the ISA):
//!
//! * the constants `LANES` (64-bit lanes per vector), `NEG_TAIL` (the negacyclic inverse tail
//!   handles the stages of span `< NEG_TAIL`), `FWD_TAIL` (the forward tail those of span
//!   `< FWD_TAIL`; `NEG_TAIL` or more) and `BLOCK`;
//! * `load(&[u64]) -> V`, `store(&mut [u64], V)`, `load_w(&[u64]) -> W`, `bcast_w(u64) -> W`
//!   (twiddles may have their own vector type `W`);
//! * the butterflies `ct(c, x, y, w, ws)` (Cooley–Tukey, `< 4q` in and out) and
//!   `gs(c, x, y, w, ws)` (Gentleman–Sande, `< 2q`), `sum_diff(c, x, y) = (x + y, x − y + 2q)`
//!   and `scale(c, x, w, ws)`, the fully reduced product;
//! * `stage(c, span, dit) -> Consts`, the constants the butterflies of a whole-vector stage of
//!   half-size `span` (Cooley–Tukey if `dit`) run with: the integer kinds return `c`; the `Fma50`
//!   kind marks stages whose butterflies skip a reduction (its bounds allow some in a row);
//! * `first_forward(c) -> Consts`, the constants of the first stage of a negacyclic forward
//!   transform, whose inputs are reduced (`< q`): a kind may skip the reduction of `x` there
//!   (`stage` must keep what it marks);
//! * the tails, which run a part's in-register stages on chunks laid out as the ISA likes:
//!   `neg_forward_tail(c, part, tw, first, n)` (spans `< FWD_TAIL`) and
//!   `neg_inverse_tail(c, part, tw, first, n)` (spans `< NEG_TAIL`; `first` is the index of the
//!   part's first element in the whole array,
//!   which fixes its twiddles), `cyclic_forward_tail(c, part, tw)` and
//!   `cyclic_inverse_tail(c, part, tw)` (spans `< LANES`).

/// Generates `stage_blockwise`, `stage_elementwise` and the four transforms
/// (`negacyclic_forward`, `negacyclic_inverse`, `cyclic_forward`, `cyclic_inverse`, each
/// `pub(crate)` and `#[target_feature(enable = $features)]`) from the ISA's primitives; see the
/// module documentation for what must be in scope.
macro_rules! ntt_schedule {
    ($features:literal) => {
        /// Stage of half-size `t >= LANES`, block `i` with twiddle `base + i` (negacyclic
        /// order); Cooley–Tukey if `DIT`, else Gentleman–Sande (a constant: each direction
        /// compiles its own loops, measured faster than a run-time flag on AVX-512).
        #[inline]
        #[target_feature(enable = $features)]
        fn stage_blockwise<const DIT: bool>(
            a: &mut [u64],
            tw: &Tables,
            c: Consts,
            base: usize,
            t: usize,
        ) {
            let c = stage(c, t, DIT);
            for (i, block) in a.chunks_exact_mut(2 * t).enumerate() {
                let (w, ws) = (bcast_w(tw.w[base + i]), bcast_w(tw.ws[base + i]));
                let butterfly = |x: &[u64], y: &[u64]| {
                    if DIT {
                        ct(c, load(x), load(y), w, ws)
                    } else {
                        gs(c, load(x), load(y), w, ws)
                    }
                };
                let (lo, hi) = block.split_at_mut(t);
                if PAIRED && t > LANES {
                    // Two vectors per step, their stores after both butterflies (where
                    // measured faster: AVX-512 on Zen 4, whose stages are store-bound in part).
                    for (x, y) in lo
                        .chunks_exact_mut(2 * LANES)
                        .zip(hi.chunks_exact_mut(2 * LANES))
                    {
                        let ((x0, x1), (y0, y1)) = (x.split_at_mut(LANES), y.split_at_mut(LANES));
                        let ((u0, v0), (u1, v1)) = (butterfly(x0, y0), butterfly(x1, y1));
                        store(x0, u0);
                        store(x1, u1);
                        store(y0, v0);
                        store(y1, v1);
                    }
                } else {
                    for (x, y) in lo.chunks_exact_mut(LANES).zip(hi.chunks_exact_mut(LANES)) {
                        let (u, v) = if DIT {
                            ct(c, load(x), load(y), w, ws)
                        } else {
                            gs(c, load(x), load(y), w, ws)
                        };
                        store(x, u);
                        store(y, v);
                    }
                }
            }
        }

        /// Stage of half-size `len >= LANES`, element `j` of every block with twiddle `len + j`
        /// (cyclic order); Cooley–Tukey if `dit`, else Gentleman–Sande.
        #[inline]
        #[target_feature(enable = $features)]
        fn stage_elementwise(a: &mut [u64], tw: &Tables, c: Consts, len: usize, dit: bool) {
            let c = stage(c, len, dit);
            let (wt, wst) = (&tw.w[len..2 * len], &tw.ws[len..2 * len]);
            for block in a.chunks_exact_mut(2 * len) {
                let (lo, hi) = block.split_at_mut(len);
                for (((x, y), w), ws) in lo
                    .chunks_exact_mut(LANES)
                    .zip(hi.chunks_exact_mut(LANES))
                    .zip(wt.chunks_exact(LANES))
                    .zip(wst.chunks_exact(LANES))
                {
                    let (u, v) = if dit {
                        ct(c, load(x), load(y), load_w(w), load_w(ws))
                    } else {
                        gs(c, load(x), load(y), load_w(w), load_w(ws))
                    };
                    store(x, u);
                    store(y, v);
                }
            }
        }

        /// Negacyclic forward transform, `a.len() >= FWD_TAIL`.
        ///
        /// Stages whose blocks exceed `BLOCK` sweep the whole array; then each `BLOCK`-sized
        /// part runs its remaining blockwise stages and its tail while it sits in L1.
        #[target_feature(enable = $features)]
        pub(crate) fn negacyclic_forward(a: &mut [u64], tw: &Tables, q: u64) {
            let n = a.len();
            let c = consts(q);
            let (mut m, mut t) = (1, n);
            // The first stage's inputs are reduced. (Two call sites, so that each inlined copy
            // sees its constants.)
            let mut first = true;
            while t > BLOCK {
                t >>= 1;
                if first {
                    stage_blockwise::<true>(a, tw, first_forward(c), m, t);
                } else {
                    stage_blockwise::<true>(a, tw, c, m, t);
                }
                first = false;
                m <<= 1;
            }
            let part = t;
            for (j, sub) in a.chunks_exact_mut(part).enumerate() {
                // Global block index of this part's blocks at local stage s is (m + j) 2^s + i.
                let (mut base, mut t, mut first) = (m + j, part, first);
                while t >= 2 * FWD_TAIL {
                    t >>= 1;
                    if first {
                        stage_blockwise::<true>(sub, tw, first_forward(c), base, t);
                    } else {
                        stage_blockwise::<true>(sub, tw, c, base, t);
                    }
                    first = false;
                    base <<= 1;
                }
                neg_forward_tail(c, sub, tw, j * part, n);
            }
        }

        /// Negacyclic inverse transform scaled by `1/n`, `a.len() >= NEG_TAIL`.
        #[target_feature(enable = $features)]
        pub(crate) fn negacyclic_inverse(a: &mut [u64], tw: &Tables, q: u64) {
            let n = a.len();
            let c = consts(q);
            let part = n.min(BLOCK);
            for (j, sub) in a.chunks_exact_mut(part).enumerate() {
                neg_inverse_tail(c, sub, tw, j * part, n);
                // Local stage with `hl` blocks in this part has global twiddle index
                // hl (n / part + j) + i.
                let (mut hl, mut t) = (part / (2 * NEG_TAIL), NEG_TAIL);
                while t < part && 2 * t < n {
                    stage_blockwise::<false>(sub, tw, c, hl * (n / part + j), t);
                    hl >>= 1;
                    t <<= 1;
                }
            }
            let mut t = part.max(NEG_TAIL);
            while 2 * t < n {
                stage_blockwise::<false>(a, tw, c, n / (2 * t), t);
                t <<= 1;
            }
            let (ni, nis) = (bcast_w(tw.n_inv.0), bcast_w(tw.n_inv.1));
            if n == NEG_TAIL {
                // The tail ran every stage: scale separately.
                for x in a.chunks_exact_mut(LANES) {
                    store(x, scale(c, load(x), ni, nis));
                }
                return;
            }
            // Last stage fused with the scaling: x' = (x + y) / n, y' = (x - y) w / n.
            let (wl, wls) = (bcast_w(tw.last.0), bcast_w(tw.last.1));
            let (lo, hi) = a.split_at_mut(n / 2);
            for (x, y) in lo.chunks_exact_mut(LANES).zip(hi.chunks_exact_mut(LANES)) {
                let (s, d) = sum_diff(c, load(x), load(y));
                store(x, scale(c, s, ni, nis));
                store(y, scale(c, d, wl, wls));
            }
        }

        /// Cyclic forward DFT (decimation in frequency), `a.len() >= 2 · LANES`.
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
            for sub in a.chunks_exact_mut(part) {
                let mut len = part / 2;
                while len >= LANES {
                    stage_elementwise(sub, tw, c, len, false);
                    len >>= 1;
                }
                cyclic_forward_tail(c, sub, tw);
            }
        }

        /// Cyclic inverse DFT (decimation in time) scaled by `1/n`, `a.len() >= 2 · LANES`.
        #[target_feature(enable = $features)]
        pub(crate) fn cyclic_inverse(a: &mut [u64], tw: &Tables, q: u64) {
            let n = a.len();
            let c = consts(q);
            let part = n.min(BLOCK);
            for sub in a.chunks_exact_mut(part) {
                cyclic_inverse_tail(c, sub, tw);
                let mut len = LANES;
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
            let (ni, nis) = (bcast_w(tw.n_inv.0), bcast_w(tw.n_inv.1));
            let len = n / 2;
            let (wt, wst) = (&tw.w[len..], &tw.ws[len..]);
            let (lo, hi) = a.split_at_mut(len);
            for (((x, y), w), ws) in lo
                .chunks_exact_mut(LANES)
                .zip(hi.chunks_exact_mut(LANES))
                .zip(wt.chunks_exact(LANES))
                .zip(wst.chunks_exact(LANES))
            {
                let (u, v) = ct(c, load(x), load(y), load_w(w), load_w(ws));
                store(x, scale(c, u, ni, nis));
                store(y, scale(c, v, ni, nis));
            }
        }
    };
}

pub(super) use ntt_schedule;
