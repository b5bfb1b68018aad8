//! RNS polynomial helpers: limb-major `Vec<u64>` of `ℓ·N` residues, per-limb NTTs in parallel,
//! samplers, lifts and the scale-and-round / base-conversion arithmetic.

use bunet_kernels::Modulus;
use bunet_kernels::ntt::Plan;
use rayon::prelude::*;

use zeroize::Zeroize;

use super::params::CBD_ETA;
use crate::prg::Prg;

/// Words drawn from the PRG per batch when sampling.
const BATCH: usize = 256;

/// Forward NTT of every limb (`a.len() = plans.len()·n` or a prefix of the plans).
/// Inline at one rayon thread (a pool hand-off costs a few µs, a 50-bit NTT ≈ 12 µs).
pub(crate) fn forward(plans: &[Plan], a: &mut [u64], n: usize) {
    if rayon::current_num_threads() == 1 {
        a.chunks_mut(n)
            .zip(plans)
            .for_each(|(limb, plan)| plan.forward(limb));
    } else {
        a.par_chunks_mut(n)
            .zip(plans.par_iter())
            .for_each(|(limb, plan)| plan.forward(limb));
    }
}

/// Inverse NTT of every limb (inline at one rayon thread).
pub(crate) fn inverse(plans: &[Plan], a: &mut [u64], n: usize) {
    if rayon::current_num_threads() == 1 {
        a.chunks_mut(n)
            .zip(plans)
            .for_each(|(limb, plan)| plan.inverse(limb));
    } else {
        a.par_chunks_mut(n)
            .zip(plans.par_iter())
            .for_each(|(limb, plan)| plan.inverse(limb));
    }
}

/// Applies `f(i, limb_i)` to every `n`-word limb of `a`: inline at one rayon thread (a hand-off
/// to the pool from outside it costs a wake-up and a context switch each way, as much as a
/// pointwise pass over a limb), else in parallel.
pub(crate) fn for_each_limb(a: &mut [u64], n: usize, f: impl Fn(usize, &mut [u64]) + Sync) {
    if rayon::current_num_threads() == 1 {
        a.chunks_mut(n).enumerate().for_each(|(i, limb)| f(i, limb));
    } else {
        a.par_chunks_mut(n)
            .enumerate()
            .for_each(|(i, limb)| f(i, limb));
    }
}

/// Applies `f(i, limb_i of a, limb_i of b)` to the `n`-word limbs of two polynomials of equal
/// length, as [`for_each_limb`] (inline at one rayon thread).
pub(crate) fn for_each_limb2(
    a: &mut [u64],
    b: &mut [u64],
    n: usize,
    f: impl Fn(usize, &mut [u64], &mut [u64]) + Sync,
) {
    if rayon::current_num_threads() == 1 {
        a.chunks_mut(n)
            .zip(b.chunks_mut(n))
            .enumerate()
            .for_each(|(i, (x, y))| f(i, x, y));
    } else {
        a.par_chunks_mut(n)
            .zip(b.par_chunks_mut(n))
            .enumerate()
            .for_each(|(i, (x, y))| f(i, x, y));
    }
}

/// Applies `f(modulus, limb_of_a, limb_of_b)` to every limb: inline at one rayon thread (no
/// pool hand-off for a memory-bound pass), else in parallel.
pub(crate) fn zip_limbs(
    q: &[Modulus],
    a: &mut [u64],
    b: &[u64],
    n: usize,
    f: impl Fn(&Modulus, &mut [u64], &[u64]) + Sync,
) {
    if rayon::current_num_threads() == 1 {
        a.chunks_mut(n)
            .zip(b.chunks(n))
            .zip(q)
            .for_each(|((x, y), m)| f(m, x, y));
    } else {
        a.par_chunks_mut(n)
            .zip(b.par_chunks(n))
            .zip(q.par_iter())
            .for_each(|((x, y), m)| f(m, x, y));
    }
}

/// [`zip_limbs`] over both halves of a ciphertext, `(a0 ‖ a1) ∘= (b0 ‖ b1)`, as one pass of `2ℓ`
/// limbs (one pool hand-off instead of two when parallel).
pub(crate) fn zip_limbs2(
    q: &[Modulus],
    a: (&mut [u64], &mut [u64]),
    b: (&[u64], &[u64]),
    n: usize,
    f: impl Fn(&Modulus, &mut [u64], &[u64]) + Sync,
) {
    if rayon::current_num_threads() == 1 {
        a.0.chunks_mut(n)
            .zip(b.0.chunks(n))
            .zip(q)
            .chain(a.1.chunks_mut(n).zip(b.1.chunks(n)).zip(q))
            .for_each(|((x, y), m)| f(m, x, y));
    } else {
        a.0.par_chunks_mut(n)
            .zip(b.0.par_chunks(n))
            .zip(q.par_iter())
            .chain(
                a.1.par_chunks_mut(n)
                    .zip(b.1.par_chunks(n))
                    .zip(q.par_iter()),
            )
            .for_each(|((x, y), m)| f(m, x, y));
    }
}

/// Fills `out` (one limb) with uniform values below `q`: batched rejection sampling on the
/// smallest power of two above `q` (rejections are independent of the accepted values; the
/// rest of the last batch is dropped, so the stream a seed expands to is fixed).
pub(crate) fn fill_uniform(prg: &mut Prg, q: u64, out: &mut [u64]) {
    let mask = u64::MAX >> (q - 1).leading_zeros();
    let mut words = [0u64; BATCH];
    let mut filled = 0;
    while filled < out.len() {
        fill_words(prg, &mut words);
        filled += bunet_kernels::sample::accept_below(&words, mask, q, &mut out[filled..]);
    }
}

/// Fills `words` with little-endian PRG words (the byte order the samplers always read).
fn fill_words(prg: &mut Prg, words: &mut [u64]) {
    prg.fill_bytes(bytemuck::cast_slice_mut(words));
    for w in words.iter_mut() {
        *w = u64::from_le(*w);
    }
}

/// A uniform polynomial of `R_Q` with `limbs` RNS limbs, expanded from a public seed (used in
/// the NTT domain directly: the NTT is a bijection, so uniform stays uniform).
pub(crate) fn uniform_from_seed(seed: [u8; 16], q: &[Modulus], n: usize) -> Vec<u64> {
    let mut prg = Prg::from_seed(seed);
    let mut out = vec![0u64; q.len() * n];
    for (limb, m) in out.chunks_mut(n).zip(q) {
        fill_uniform(&mut prg, m.q(), limb);
    }
    out
}

/// `n` uniform ternary coefficients in `{−1, 0, 1}` (bytes rejected at 252 = 3·84).
pub(crate) fn ternary(prg: &mut Prg, n: usize) -> Vec<i64> {
    let mut out = Vec::with_capacity(n);
    let mut buf = [0u8; BATCH];
    while out.len() < n {
        prg.fill_bytes(&mut buf);
        for &b in &buf {
            if b < 252 {
                out.push((b % 3) as i64 - 1);
                if out.len() == n {
                    break;
                }
            }
        }
    }
    out
}

/// `n` centred binomial samples with parameter `η = 21`: popcount difference of two 21-bit
/// halves of one PRG word. Words are drawn in whole batches (the rest of the last is dropped).
pub(crate) fn cbd(prg: &mut Prg, n: usize) -> Vec<i64> {
    let mut words = vec![0u64; n.div_ceil(BATCH) * BATCH];
    fill_words(prg, &mut words);
    let mut out = vec![0i64; n];
    bunet_kernels::sample::cbd(&words[..n], CBD_ETA as u32, &mut out);
    words.zeroize();
    out
}

/// `x mod q` for any 64-bit `x`: Shoup multiplication by 1 (one high multiply, no division);
/// `one_shoup = m.shoup(1) = floor(2^64 / q)`, computed once by the caller.
#[inline]
pub(crate) fn reduce_word(m: &Modulus, one_shoup: u64, x: u64) -> u64 {
    m.mul_shoup(x, 1, one_shoup)
}

/// Residues mod `to` of the centred representatives (in `(−from/2, from/2]`) of `src`, values
/// `< from`. Without any reduction when `from/2 < to` (RNS primes of similar size, or `p < q`).
pub(crate) fn lift_centered(src: &[u64], from: u64, to: &Modulus, out: &mut [u64]) {
    let half = from / 2;
    let q = to.q();
    if half < q {
        // x + (q − from) when x > from/2, branch-free (kernels, AVX-512 where available).
        bunet_kernels::automorph::lift_centered(src, from, q, out);
    } else {
        let one = to.shoup(1);
        for (o, &x) in out.iter_mut().zip(src) {
            *o = if x > half {
                to.neg(reduce_word(to, one, from - x))
            } else {
                reduce_word(to, one, x)
            };
        }
    }
}

/// The RNS residues (coefficient domain, `q.len()` limbs) of a small signed polynomial: every
/// `|v_j| < q_i` (errors and ternary polynomials), lifted without a branch on the secret sign.
pub(crate) fn lift_small(q: &[Modulus], v: &[i64]) -> Vec<u64> {
    let n = v.len();
    let mut out = vec![0u64; q.len() * n];
    for_each_limb(&mut out, n, |i, limb| {
        let qi = q[i].q();
        debug_assert!(v.iter().all(|x| x.unsigned_abs() < qi));
        for (o, &x) in limb.iter_mut().zip(v) {
            *o = (x as u64).wrapping_add(qi & ((x >> 63) as u64));
        }
    });
    out
}
