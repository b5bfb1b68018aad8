//! aarch64 NEON transforms for primes `q < 2^32` (`MulKind::Shoup32`): two 64-bit lanes per
//! register, Harvey lazy butterflies, twiddle products from `vmull_u32` with 32-bit Shoup
//! companions (see [`crate::modarith::neon::mul_shoup32`]).
//!
//! Stages of span `>= 2` run on whole registers (`[x_j, x_{j+1}]` against `[y_j, y_{j+1}]`);
//! the span-1 stage de-interleaves pairs with `vld2q_u64` / `vst2q_u64`, so its twiddles are
//! read straight from the scalar table and no per-lane table is needed. Larger primes have no
//! NEON kernel: NEON lacks a 64x64-bit multiply, and emulating the 128-bit Shoup product from
//! 32-bit pieces costs more than the scalar `umulh` + `mul`, so the dispatch in [`super`] runs
//! the scalar transform for them.

use core::arch::aarch64::*;

use super::Tables;
use crate::modarith::neon::{Consts, consts, load, load32, mul_shoup32, reduce, store};

/// `[a_0, a_2]` and `[a_1, a_3]`.
#[inline]
#[target_feature(enable = "neon")]
fn load_pairs(s: &[u64]) -> (uint64x2_t, uint64x2_t) {
    assert!(s.len() >= 4);
    // SAFETY: the slice holds at least four u64 (checked above).
    let v = unsafe { vld2q_u64(s.as_ptr()) };
    (v.0, v.1)
}

/// Inverse of [`load_pairs`].
#[inline]
#[target_feature(enable = "neon")]
fn store_pairs(s: &mut [u64], x: uint64x2_t, y: uint64x2_t) {
    assert!(s.len() >= 4);
    // SAFETY: the slice holds at least four writable u64 (checked above).
    unsafe { vst2q_u64(s.as_mut_ptr(), uint64x2x2_t(x, y)) }
}

/// Cooley–Tukey butterfly: `x, y < 4q` in, `x + wy, x - wy + 2q < 4q` out.
#[inline]
#[target_feature(enable = "neon")]
fn ct(
    c: Consts,
    x: uint64x2_t,
    y: uint64x2_t,
    w: uint32x2_t,
    ws: uint32x2_t,
) -> (uint64x2_t, uint64x2_t) {
    let x = reduce(x, c.two_q);
    let v = mul_shoup32(c, y, w, ws);
    (vaddq_u64(x, v), vsubq_u64(vaddq_u64(x, c.two_q), v))
}

/// Gentleman–Sande butterfly: `x, y < 2q` in, `x + y < 2q, (x - y) w < 2q` out.
#[inline]
#[target_feature(enable = "neon")]
fn gs(
    c: Consts,
    x: uint64x2_t,
    y: uint64x2_t,
    w: uint32x2_t,
    ws: uint32x2_t,
) -> (uint64x2_t, uint64x2_t) {
    let s = reduce(vaddq_u64(x, y), c.two_q);
    let d = vsubq_u64(vaddq_u64(x, c.two_q), y);
    (s, mul_shoup32(c, d, w, ws))
}

#[inline]
#[target_feature(enable = "neon")]
fn bcast(x: u64) -> uint32x2_t {
    vdup_n_u32(x as u32)
}

/// Stage of half-size `t >= 2`, block `i` with twiddle `base + i`.
#[inline]
#[target_feature(enable = "neon")]
fn stage_blockwise(a: &mut [u64], tw: &Tables, c: Consts, base: usize, t: usize, dit: bool) {
    for (i, block) in a.chunks_exact_mut(2 * t).enumerate() {
        let (w, ws) = (bcast(tw.w[base + i]), bcast(tw.ws[base + i]));
        let (lo, hi) = block.split_at_mut(t);
        for (x, y) in lo.chunks_exact_mut(2).zip(hi.chunks_exact_mut(2)) {
            let (u, v) = if dit {
                ct(c, load(x), load(y), w, ws)
            } else {
                gs(c, load(x), load(y), w, ws)
            };
            store(x, u);
            store(y, v);
        }
    }
}

/// Stage of half-size `len >= 2`, element `j` of every block with twiddle `len + j`.
#[inline]
#[target_feature(enable = "neon")]
fn stage_elementwise(a: &mut [u64], tw: &Tables, c: Consts, len: usize, dit: bool) {
    let (wt, wst) = (&tw.w[len..2 * len], &tw.ws[len..2 * len]);
    for block in a.chunks_exact_mut(2 * len) {
        let (lo, hi) = block.split_at_mut(len);
        for (((x, y), w), ws) in lo
            .chunks_exact_mut(2)
            .zip(hi.chunks_exact_mut(2))
            .zip(wt.chunks_exact(2))
            .zip(wst.chunks_exact(2))
        {
            let (u, v) = if dit {
                ct(c, load(x), load(y), load32(w), load32(ws))
            } else {
                gs(c, load(x), load(y), load32(w), load32(ws))
            };
            store(x, u);
            store(y, v);
        }
    }
}

/// Negacyclic forward transform, `a.len() >= 4`, `q < 2^32`.
#[target_feature(enable = "neon")]
pub(crate) fn negacyclic_forward(a: &mut [u64], tw: &Tables, q: u64) {
    let n = a.len();
    let c = consts(q);
    let (mut m, mut t) = (1, n);
    while t > 2 {
        t >>= 1;
        stage_blockwise(a, tw, c, m, t, true);
        m <<= 1;
    }
    // Span 1: butterfly `i` pairs `a[2i]` with `a[2i + 1]` under twiddle `n/2 + i`.
    for (k, chunk) in a.chunks_exact_mut(4).enumerate() {
        let (x, y) = load_pairs(chunk);
        let o = m + 2 * k;
        let (x, y) = ct(c, x, y, load32(&tw.w[o..]), load32(&tw.ws[o..]));
        let x = reduce(reduce(x, c.two_q), c.q);
        let y = reduce(reduce(y, c.two_q), c.q);
        store_pairs(chunk, x, y);
    }
}

/// Negacyclic inverse transform scaled by `1/n`, `a.len() >= 4`, `q < 2^32`.
#[target_feature(enable = "neon")]
pub(crate) fn negacyclic_inverse(a: &mut [u64], tw: &Tables, q: u64) {
    let n = a.len();
    let c = consts(q);
    // Span 1: butterfly `i` pairs `a[2i]` with `a[2i + 1]` under twiddle `n/2 + i`.
    for (k, chunk) in a.chunks_exact_mut(4).enumerate() {
        let (x, y) = load_pairs(chunk);
        let o = n / 2 + 2 * k;
        let (x, y) = gs(c, x, y, load32(&tw.w[o..]), load32(&tw.ws[o..]));
        store_pairs(chunk, x, y);
    }
    let (mut h, mut t) = (n / 4, 2);
    while h > 1 {
        stage_blockwise(a, tw, c, h, t, false);
        h >>= 1;
        t <<= 1;
    }
    // Last stage fused with the scaling: x' = (x + y) / n, y' = (x - y) w / n.
    let (ni, nis) = (bcast(tw.n_inv.0), bcast(tw.n_inv.1));
    let (wl, wls) = (bcast(tw.last.0), bcast(tw.last.1));
    let (lo, hi) = a.split_at_mut(n / 2);
    for (x, y) in lo.chunks_exact_mut(2).zip(hi.chunks_exact_mut(2)) {
        let (u, v) = (load(x), load(y));
        let s = vaddq_u64(u, v);
        let d = vsubq_u64(vaddq_u64(u, c.two_q), v);
        store(x, reduce(mul_shoup32(c, s, ni, nis), c.q));
        store(y, reduce(mul_shoup32(c, d, wl, wls), c.q));
    }
}

/// Cyclic forward DFT (decimation in frequency), `a.len() >= 4`, `p < 2^32`.
#[target_feature(enable = "neon")]
pub(crate) fn cyclic_forward(a: &mut [u64], tw: &Tables, q: u64) {
    let n = a.len();
    let c = consts(q);
    let mut len = n / 2;
    while len >= 2 {
        stage_elementwise(a, tw, c, len, false);
        len >>= 1;
    }
    let (w1, ws1) = (bcast(tw.w[1]), bcast(tw.ws[1]));
    for chunk in a.chunks_exact_mut(4) {
        let (x, y) = load_pairs(chunk);
        let (x, y) = gs(c, x, y, w1, ws1);
        store_pairs(chunk, reduce(x, c.q), reduce(y, c.q));
    }
}

/// Cyclic inverse DFT (decimation in time) scaled by `1/n`, `a.len() >= 4`, `p < 2^32`.
#[target_feature(enable = "neon")]
pub(crate) fn cyclic_inverse(a: &mut [u64], tw: &Tables, q: u64) {
    let n = a.len();
    let c = consts(q);
    let (w1, ws1) = (bcast(tw.w[1]), bcast(tw.ws[1]));
    for chunk in a.chunks_exact_mut(4) {
        let (x, y) = load_pairs(chunk);
        let (x, y) = ct(c, x, y, w1, ws1);
        store_pairs(chunk, x, y);
    }
    let mut len = 2;
    while 2 * len < n {
        stage_elementwise(a, tw, c, len, true);
        len <<= 1;
    }
    // Last stage fused with the scaling by 1/n.
    let (ni, nis) = (bcast(tw.n_inv.0), bcast(tw.n_inv.1));
    let (wt, wst) = (&tw.w[len..], &tw.ws[len..]);
    let (lo, hi) = a.split_at_mut(len);
    for (((x, y), w), ws) in lo
        .chunks_exact_mut(2)
        .zip(hi.chunks_exact_mut(2))
        .zip(wt.chunks_exact(2))
        .zip(wst.chunks_exact(2))
    {
        let (u, v) = ct(c, load(x), load(y), load32(w), load32(ws));
        store(x, reduce(mul_shoup32(c, u, ni, nis), c.q));
        store(y, reduce(mul_shoup32(c, v, ni, nis), c.q));
    }
}
