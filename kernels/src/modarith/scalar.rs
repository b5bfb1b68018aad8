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
