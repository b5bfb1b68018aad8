//! aarch64 NEON transforms for primes `q < 2^32` (`MulKind::Shoup32`): two 64-bit lanes per
//! register, Harvey lazy butterflies, twiddle products from `vmull_u32` with 32-bit Shoup
//! companions (see [`crate::modarith::neon::mul_shoup32`]).
//!
//! The stage schedule is the shared one ([`super::schedule`]). Stages of span `>= 2` run on
//! whole registers (`[x_j, x_{j+1}]` against `[y_j, y_{j+1}]`); the span-1 stage (the tails)
//! de-interleaves pairs with `vld2q_u64` / `vst2q_u64`, so its twiddles are read straight from
//! the scalar table and no per-lane table is needed. Larger primes have no
//! NEON kernel: NEON lacks a 64x64-bit multiply, and emulating the 128-bit Shoup product from
//! 32-bit pieces costs more than the scalar `umulh` + `mul`, so the dispatch in [`super`] runs
//! the scalar transform for them.

use core::arch::aarch64::*;

use super::Tables;
use crate::modarith::neon::load32 as load_w;
use crate::modarith::neon::{Consts, consts, load, load32, mul_shoup32, reduce, store};

/// Length of the parts that run their remaining stages while resident in L1 (16 KiB of data).
const BLOCK: usize = 2048;
/// Lanes per vector.
const LANES: usize = 2;
/// The negacyclic tails run the span-1 stage.
const NEG_TAIL: usize = 2;
/// The forward tail runs the same spans.
const FWD_TAIL: usize = NEG_TAIL;
/// Whether the forward blockwise stages run two vectors per step.
const PAIRED: bool = false;

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

/// A twiddle and its 32-bit companion in both lanes.
#[inline]
#[target_feature(enable = "neon")]
fn bcast_w(x: u64) -> uint32x2_t {
    vdup_n_u32(x as u32)
}

/// `(x + y, x − y + 2q)`.
#[inline]
#[target_feature(enable = "neon")]
fn sum_diff(c: Consts, x: uint64x2_t, y: uint64x2_t) -> (uint64x2_t, uint64x2_t) {
    (vaddq_u64(x, y), vsubq_u64(vaddq_u64(x, c.two_q), y))
}

/// `x w mod q`, fully reduced.
#[inline]
#[target_feature(enable = "neon")]
fn scale(c: Consts, x: uint64x2_t, w: uint32x2_t, ws: uint32x2_t) -> uint64x2_t {
    reduce(mul_shoup32(c, x, w, ws), c.q)
}

/// The span-1 stage of a negacyclic forward transform, fully reduced: butterfly `i` pairs
/// `a[2i]` with `a[2i + 1]` under twiddle `n/2 + i`.
#[inline]
#[target_feature(enable = "neon")]
fn neg_forward_tail(c: Consts, sub: &mut [u64], tw: &Tables, first: usize, n: usize) {
    for (k, chunk) in sub.chunks_exact_mut(4).enumerate() {
        let (x, y) = load_pairs(chunk);
        let o = n / 2 + first / 2 + 2 * k;
        let (x, y) = ct(c, x, y, load32(&tw.w[o..]), load32(&tw.ws[o..]));
        let x = reduce(reduce(x, c.two_q), c.q);
        let y = reduce(reduce(y, c.two_q), c.q);
        store_pairs(chunk, x, y);
    }
}

/// The span-1 stage of a negacyclic inverse transform (twiddles as [`neg_forward_tail`]).
#[inline]
#[target_feature(enable = "neon")]
fn neg_inverse_tail(c: Consts, sub: &mut [u64], tw: &Tables, first: usize, n: usize) {
    for (k, chunk) in sub.chunks_exact_mut(4).enumerate() {
        let (x, y) = load_pairs(chunk);
        let o = n / 2 + first / 2 + 2 * k;
        let (x, y) = gs(c, x, y, load32(&tw.w[o..]), load32(&tw.ws[o..]));
        store_pairs(chunk, x, y);
    }
}

/// The span-1 stage of a cyclic forward DFT, fully reduced.
#[inline]
#[target_feature(enable = "neon")]
fn cyclic_forward_tail(c: Consts, sub: &mut [u64], tw: &Tables) {
    let (w1, ws1) = (bcast_w(tw.w[1]), bcast_w(tw.ws[1]));
    for chunk in sub.chunks_exact_mut(4) {
        let (x, y) = load_pairs(chunk);
        let (x, y) = gs(c, x, y, w1, ws1);
        store_pairs(chunk, reduce(x, c.q), reduce(y, c.q));
    }
}

/// The span-1 stage of a cyclic inverse DFT.
#[inline]
#[target_feature(enable = "neon")]
fn cyclic_inverse_tail(c: Consts, sub: &mut [u64], tw: &Tables) {
    let (w1, ws1) = (bcast_w(tw.w[1]), bcast_w(tw.ws[1]));
    for chunk in sub.chunks_exact_mut(4) {
        let (x, y) = load_pairs(chunk);
        let (x, y) = ct(c, x, y, w1, ws1);
        store_pairs(chunk, x, y);
    }
}

/// Every stage runs the same butterflies.
#[inline]
#[target_feature(enable = "neon")]
fn stage(c: Consts, _span: usize, _dit: bool) -> Consts {
    c
}

/// The first forward stage runs the same butterflies.
#[inline]
#[target_feature(enable = "neon")]
fn first_forward(c: Consts) -> Consts {
    c
}

super::schedule::ntt_schedule!("neon");
