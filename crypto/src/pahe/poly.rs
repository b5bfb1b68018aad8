//! RNS polynomial helpers: limb-major `Vec<u64>` of `ℓ·N` residues, per-limb NTTs in parallel,
//! samplers, lifts and the scale-and-round / base-conversion arithmetic.

use bunet_kernels::Modulus;
use bunet_kernels::ntt::Plan;
use rayon::prelude::*;

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
/// smallest power of two above `q` (rejections are independent of the accepted values).
pub(crate) fn fill_uniform(prg: &mut Prg, q: u64, out: &mut [u64]) {
    let mask = u64::MAX >> (q - 1).leading_zeros();
    let mut buf = [0u8; 8 * BATCH];
    let mut filled = 0;
    while filled < out.len() {
        prg.fill_bytes(&mut buf);
        for chunk in buf.chunks_exact(8) {
            let x = u64::from_le_bytes(chunk.try_into().expect("8-byte chunk")) & mask;
            if x < q {
                out[filled] = x;
                filled += 1;
                if filled == out.len() {
                    break;
                }
            }
        }
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
/// halves of one PRG word.
pub(crate) fn cbd(prg: &mut Prg, n: usize) -> Vec<i64> {
    const MASK: u64 = (1 << 21) - 1;
    let mut out = Vec::with_capacity(n);
    let mut buf = [0u8; 8 * BATCH];
    while out.len() < n {
        prg.fill_bytes(&mut buf);
        for chunk in buf.chunks_exact(8) {
            let x = u64::from_le_bytes(chunk.try_into().expect("8-byte chunk"));
            out.push((x & MASK).count_ones() as i64 - ((x >> 21) & MASK).count_ones() as i64);
            if out.len() == n {
                break;
            }
        }
    }
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

/// `v mod q` for a signed `v` (small values, as errors and ternary secrets, skip the reduction).
#[inline]
pub(crate) fn lift_signed(m: &Modulus, v: i64) -> u64 {
    let a = v.unsigned_abs();
    if a < m.q() {
        // Branch-free on the (random) sign: v + q when v < 0.
        (v as u64).wrapping_add(m.q() & ((v >> 63) as u64))
    } else {
        let r = m.reduce(a);
        if v < 0 { m.neg(r) } else { r }
    }
}

/// The RNS residues (coefficient domain, `q.len()` limbs) of a small signed polynomial.
pub(crate) fn lift_small(q: &[Modulus], v: &[i64]) -> Vec<u64> {
    let n = v.len();
    let mut out = vec![0u64; q.len() * n];
    out.par_chunks_mut(n)
        .zip(q.par_iter())
        .for_each(|(limb, m)| {
            for (o, &x) in limb.iter_mut().zip(v) {
                *o = lift_signed(m, x);
            }
        });
    out
}

/// `round(Σ_i x_i · θ_i) mod p` for one coefficient whose residues are `x` (decryption's
/// scale-and-round of Halevi–Polyakov–Shoup 2019, with `θ_i = ω_i + f_i`: `Σ x_i·ω_i mod p` by
/// Shoup multiplications, `Σ x_i·f_i` in 64.64 fixed point from 128-bit fractions, so the sum
/// before rounding is within `ℓ · 2^-66` of the exact one). `two64` is `2^64 mod p`.
#[inline]
pub(crate) fn scale_round(
    x: impl Iterator<Item = u64>,
    level: &crate::pahe::params::Level,
    p: &Modulus,
    p_one_shoup: u64,
) -> u64 {
    let mut int = 0u64;
    let mut frac: u128 = 0;
    let mut carries = 0u64;
    for ((xi, &(w, w_shoup)), &(hi, lo)) in x.zip(&level.theta_int).zip(&level.theta_frac) {
        int = p.add(int, p.mul_shoup(xi, w, w_shoup));
        // x_i · (hi·2^-64 + lo·2^-128), scaled by 2^64.
        let t = xi as u128 * hi as u128 + ((xi as u128 * lo as u128) >> 64);
        let (sum, overflow) = frac.overflowing_add(t);
        frac = sum;
        carries += overflow as u64;
    }
    let whole = reduce_word(p, p_one_shoup, (frac >> 64) as u64);
    let round = (frac as u64) >> 63;
    let mut out = p.add(p.add(int, whole), round % p.q());
    if carries > 0 {
        out = p.add(out, p.mul(p.reduce(carries), level.two64_mod_p));
    }
    out
}
