//! Portable reference transforms with Harvey lazy butterflies.

use super::Twiddle;

#[inline(always)]
fn mul_shoup_lazy(a: u64, t: Twiddle, q: u64) -> u64 {
    let quotient = ((a as u128 * t.w_shoup as u128) >> 64) as u64;
    a.wrapping_mul(t.w).wrapping_sub(quotient.wrapping_mul(q))
}

#[inline(always)]
fn reduce_once(x: u64, bound: u64) -> u64 {
    if x >= bound { x - bound } else { x }
}

/// Cooley–Tukey, natural in, bit-reversed out; values stay in `[0, 4q)` between stages.
pub(crate) fn negacyclic_forward(a: &mut [u64], psi_rev: &[Twiddle], q: u64) {
    let n = a.len();
    let two_q = 2 * q;
    let mut t = n;
    let mut m = 1;
    while m < n {
        t >>= 1;
        for i in 0..m {
            let w = psi_rev[m + i];
            let (lo, hi) = a[2 * i * t..2 * (i + 1) * t].split_at_mut(t);
            for (x, y) in lo.iter_mut().zip(hi.iter_mut()) {
                let u = reduce_once(*x, two_q);
                let v = mul_shoup_lazy(*y, w, q);
                *x = u + v;
                *y = u + two_q - v;
            }
        }
        m <<= 1;
    }
    for x in a {
        *x = reduce_once(reduce_once(*x, two_q), q);
    }
}

/// Gentleman–Sande, bit-reversed in, natural out, scaled by `n^-1`; values stay in `[0, 2q)`.
pub(crate) fn negacyclic_inverse(a: &mut [u64], psi_inv_rev: &[Twiddle], n_inv: Twiddle, q: u64) {
    let n = a.len();
    let two_q = 2 * q;
    let mut t = 1;
    let mut m = n;
    while m > 1 {
        let h = m >> 1;
        for i in 0..h {
            let w = psi_inv_rev[h + i];
            let (lo, hi) = a[2 * i * t..2 * (i + 1) * t].split_at_mut(t);
            for (x, y) in lo.iter_mut().zip(hi.iter_mut()) {
                let (u, v) = (*x, *y);
                *x = reduce_once(u + v, two_q);
                *y = mul_shoup_lazy(u + two_q - v, w, q);
            }
        }
        t <<= 1;
        m = h;
    }
    for x in a {
        *x = reduce_once(mul_shoup_lazy(*x, n_inv, q), q);
    }
}

/// Gentleman–Sande decimation in frequency, natural in, bit-reversed out; values in `[0, 2q)`.
pub(crate) fn cyclic_forward(a: &mut [u64], tw: &[Twiddle], q: u64) {
    let n = a.len();
    let two_q = 2 * q;
    let mut len = n / 2;
    while len >= 1 {
        for block in a.chunks_exact_mut(2 * len) {
            let (lo, hi) = block.split_at_mut(len);
            for (j, (x, y)) in lo.iter_mut().zip(hi.iter_mut()).enumerate() {
                let (u, v) = (*x, *y);
                *x = reduce_once(u + v, two_q);
                *y = mul_shoup_lazy(u + two_q - v, tw[len + j], q);
            }
        }
        len >>= 1;
    }
    for x in a {
        *x = reduce_once(*x, q);
    }
}

/// Cooley–Tukey decimation in time, bit-reversed in, natural out, scaled by `n^-1`.
pub(crate) fn cyclic_inverse(a: &mut [u64], tw: &[Twiddle], n_inv: Twiddle, q: u64) {
    let n = a.len();
    let two_q = 2 * q;
    let mut len = 1;
    while len < n {
        for block in a.chunks_exact_mut(2 * len) {
            let (lo, hi) = block.split_at_mut(len);
            for (j, (x, y)) in lo.iter_mut().zip(hi.iter_mut()).enumerate() {
                let u = reduce_once(*x, two_q);
                let v = mul_shoup_lazy(*y, tw[len + j], q);
                *x = u + v;
                *y = u + two_q - v;
            }
        }
        len <<= 1;
    }
    for x in a {
        *x = reduce_once(mul_shoup_lazy(reduce_once(*x, two_q), n_inv, q), q);
    }
}
