//! Portable reference arithmetic. Branches here select on reduced-range checks of the value
//! itself; compilers turn them into conditional moves (`cmov`), and SIMD backends use masks.

use super::Modulus;

#[inline]
pub(crate) fn add(a: u64, b: u64, q: u64) -> u64 {
    let s = a + b;
    if s >= q { s - q } else { s }
}

#[inline]
pub(crate) fn sub(a: u64, b: u64, q: u64) -> u64 {
    let (d, borrow) = a.overflowing_sub(b);
    if borrow { d.wrapping_add(q) } else { d }
}

/// Barrett reduction of `x < 2^(2k)`: the estimate is off by at most two multiples of `q`.
///
/// `x >> (k - 1)` and `mu` are both below `2^(k+1) <= 2^63`, so the quotient needs a single
/// 64x64->128-bit product, and the remainder (`< 3q`) is exact in 64-bit wrapping arithmetic.
#[inline]
pub(crate) fn barrett(x: u128, q: u64, mu: u128, k: u32) -> u64 {
    let t = (x >> (k - 1)) as u64;
    let quotient = ((t as u128 * mu as u64 as u128) >> (k + 1)) as u64;
    let r = (x as u64).wrapping_sub(quotient.wrapping_mul(q));
    // `min(r, r - q)` (unsigned) is branch-free: a data-dependent branch here mispredicts on
    // random inputs.
    let r = r.min(r.wrapping_sub(q));
    r.min(r.wrapping_sub(q))
}

/// Shoup's multiplication by a fixed operand: `a * w - floor(a * w_shoup / 2^64) * q`, which is
/// in `[0, 2q)` for any 64-bit `a` when `q < 2^63`.
#[inline]
pub(crate) fn mul_shoup_lazy(a: u64, w: u64, w_shoup: u64, q: u64) -> u64 {
    let quotient = ((a as u128 * w_shoup as u128) >> 64) as u64;
    a.wrapping_mul(w).wrapping_sub(quotient.wrapping_mul(q))
}

pub(crate) fn add_assign(a: &mut [u64], b: &[u64], q: u64) {
    for (x, &y) in a.iter_mut().zip(b) {
        *x = add(*x, y, q);
    }
}

pub(crate) fn sub_assign(a: &mut [u64], b: &[u64], q: u64) {
    for (x, &y) in a.iter_mut().zip(b) {
        *x = sub(*x, y, q);
    }
}

pub(crate) fn neg_assign(a: &mut [u64], q: u64) {
    for x in a {
        *x = sub(0, *x, q);
    }
}

pub(crate) fn mul_assign(a: &mut [u64], b: &[u64], m: &Modulus) {
    let (mu, k) = m.barrett_parts();
    for (x, &y) in a.iter_mut().zip(b) {
        *x = barrett(*x as u128 * y as u128, m.q(), mu, k);
    }
}

pub(crate) fn mul_add_assign(acc: &mut [u64], b: &[u64], c: &[u64], m: &Modulus) {
    let (mu, k) = m.barrett_parts();
    for ((x, &y), &z) in acc.iter_mut().zip(b).zip(c) {
        *x = add(*x, barrett(y as u128 * z as u128, m.q(), mu, k), m.q());
    }
}

pub(crate) fn scalar_mul_assign(a: &mut [u64], s: u64, s_shoup: u64, q: u64) {
    for x in a {
        let r = mul_shoup_lazy(*x, s, s_shoup, q);
        *x = if r >= q { r - q } else { r };
    }
}

/// `x mod q` for any 128-bit `x`: `hi·(2^64 mod q) + lo`, both by Shoup products in `[0, 2q)`
/// (the sum is below `4q < 2^64` for `q < 2^62`), then two branch-free conditional subtractions.
#[inline]
pub(crate) fn reduce_wide(x: u128, q: u64, r64: (u64, u64), one_shoup: u64) -> u64 {
    let h = mul_shoup_lazy((x >> 64) as u64, r64.0, r64.1, q);
    let l = mul_shoup_lazy(x as u64, 1, one_shoup, q);
    let s = h + l;
    let s = s.min(s.wrapping_sub(2 * q));
    s.min(s.wrapping_sub(q))
}

/// Coefficients per block of 128-bit partial sums (4 KiB on the stack, in L1 with the
/// operand blocks it reads).
const SUM_BLOCK: usize = 256;

/// `acc = (acc + Σ_k a_k ∘ b_k) mod q` (see `Modulus::mul_sum_add_assign`): per block of
/// coefficients, the products are added into 128-bit sums four terms per pass, and reduced
/// once every `lazy_terms` terms and at the end.
pub(crate) fn mul_sum_add_assign(acc: &mut [u64], terms: &[(&[u64], &[u64])], m: &Modulus) {
    let max_terms = m.lazy_terms().max(1);
    let mut sums = [0u128; SUM_BLOCK];
    let len = acc.len();
    for start in (0..len).step_by(SUM_BLOCK) {
        let end = (start + SUM_BLOCK).min(len);
        let s = &mut sums[..end - start];
        for (x, &v) in s.iter_mut().zip(&acc[start..end]) {
            *x = v as u128;
        }
        for (c, chunk) in terms.chunks(max_terms).enumerate() {
            if c > 0 {
                for x in s.iter_mut() {
                    *x = m.reduce_wide(*x) as u128;
                }
            }
            // Zipped slice iterators (not indexing): one induction variable and every base
            // pointer in a register, no bounds checks.
            let mut quads = chunk.chunks_exact(4);
            for quad in &mut quads {
                let ab = |k: usize| {
                    let (a, b): (&[u64], &[u64]) = quad[k];
                    a[start..end].iter().zip(&b[start..end])
                };
                for ((((x, (&a0, &b0)), (&a1, &b1)), (&a2, &b2)), (&a3, &b3)) in
                    s.iter_mut().zip(ab(0)).zip(ab(1)).zip(ab(2)).zip(ab(3))
                {
                    *x += a0 as u128 * b0 as u128
                        + a1 as u128 * b1 as u128
                        + a2 as u128 * b2 as u128
                        + a3 as u128 * b3 as u128;
                }
            }
            for (a, b) in quads.remainder() {
                for ((x, &a), &b) in s.iter_mut().zip(&a[start..end]).zip(&b[start..end]) {
                    *x += a as u128 * b as u128;
                }
            }
        }
        for (o, &x) in acc[start..end].iter_mut().zip(s.iter()) {
            *o = m.reduce_wide(x);
        }
    }
}
