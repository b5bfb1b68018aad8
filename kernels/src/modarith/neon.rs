//! aarch64 NEON modular arithmetic: two 64-bit lanes per 128-bit register.
//!
//! NEON has unsigned 64-bit adds, subtractions and compares (`vcgeq_u64`), but its only
//! multiplies of 64-bit results are the widening 32x32->64-bit `vmull_u32`: products are
//! therefore vectorised for `q < 2^32` ([`MulKind::Shoup32`](super::MulKind)) and left to the
//! scalar code (the 64x64->128-bit `umulh`/`mul` pair) for larger moduli. The lane primitives also
//! serve the NEON NTT. Slice operations process whole vectors and leave the tail to
//! [`super::scalar`], so results agree bit for bit.

use core::arch::aarch64::*;

use super::{Modulus, scalar};

/// Broadcast constants of one modulus.
#[derive(Clone, Copy)]
pub(crate) struct Consts {
    pub(crate) q: uint64x2_t,
    pub(crate) two_q: uint64x2_t,
    /// `q` as two 32-bit lanes (only meaningful for `q < 2^32`).
    pub(crate) q32: uint32x2_t,
}

#[inline]
#[target_feature(enable = "neon")]
pub(crate) fn consts(q: u64) -> Consts {
    Consts {
        q: vdupq_n_u64(q),
        two_q: vdupq_n_u64(2 * q),
        q32: vdup_n_u32(q as u32),
    }
}

/// Subtracts `b` from lanes `>= b` (unsigned; any 64-bit lanes).
#[inline]
#[target_feature(enable = "neon")]
pub(crate) fn reduce(x: uint64x2_t, b: uint64x2_t) -> uint64x2_t {
    vsubq_u64(x, vandq_u64(vcgeq_u64(x, b), b))
}

/// `y * w mod q` in `[0, 2q)` for `y < 4q`, `q < 2^32`, with `w < q` and its companion
/// `ws = floor(w 2^32 / q)` as 32-bit lanes: `y` is first brought below `q`, then
/// `y w - floor(y ws / 2^32) q` from three `vmull_u32`.
#[inline]
#[target_feature(enable = "neon")]
pub(crate) fn mul_shoup32(c: Consts, y: uint64x2_t, w: uint32x2_t, ws: uint32x2_t) -> uint64x2_t {
    let y = vmovn_u64(reduce(reduce(y, c.two_q), c.q));
    let quot = vshrn_n_u64::<32>(vmull_u32(y, ws));
    vsubq_u64(vmull_u32(y, w), vmull_u32(quot, c.q32))
}

#[inline]
#[target_feature(enable = "neon")]
pub(crate) fn load(s: &[u64]) -> uint64x2_t {
    assert!(s.len() >= 2);
    // SAFETY: the slice holds at least two u64 (checked above); `vld1q` needs 8-byte alignment
    // at most, which a `u64` slice has.
    unsafe { vld1q_u64(s.as_ptr()) }
}

#[inline]
#[target_feature(enable = "neon")]
pub(crate) fn store(s: &mut [u64], v: uint64x2_t) {
    assert!(s.len() >= 2);
    // SAFETY: the slice holds at least two writable u64 (checked above).
    unsafe { vst1q_u64(s.as_mut_ptr(), v) }
}

/// Two lanes narrowed to 32 bits (values known to be below `2^32`).
#[inline]
#[target_feature(enable = "neon")]
pub(crate) fn load32(s: &[u64]) -> uint32x2_t {
    vmovn_u64(load(s))
}

/// `a += b` mod q.
#[target_feature(enable = "neon")]
pub(crate) fn add_assign(a: &mut [u64], b: &[u64], q: u64) {
    let c = consts(q);
    let mut xs = a.chunks_exact_mut(2);
    let mut ys = b.chunks_exact(2);
    for (x, y) in (&mut xs).zip(&mut ys) {
        store(x, reduce(vaddq_u64(load(x), load(y)), c.q));
    }
    scalar::add_assign(xs.into_remainder(), ys.remainder(), q);
}

/// `a -= b` mod q: adds `q` back where `a < b`.
#[target_feature(enable = "neon")]
pub(crate) fn sub_assign(a: &mut [u64], b: &[u64], q: u64) {
    let c = consts(q);
    let mut xs = a.chunks_exact_mut(2);
    let mut ys = b.chunks_exact(2);
    for (x, y) in (&mut xs).zip(&mut ys) {
        let (u, v) = (load(x), load(y));
        let borrow = vcgtq_u64(v, u);
        store(x, vaddq_u64(vsubq_u64(u, v), vandq_u64(borrow, c.q)));
    }
    scalar::sub_assign(xs.into_remainder(), ys.remainder(), q);
}

/// `a = -a` mod q.
#[target_feature(enable = "neon")]
pub(crate) fn neg_assign(a: &mut [u64], q: u64) {
    let c = consts(q);
    let mut xs = a.chunks_exact_mut(2);
    for x in &mut xs {
        store(x, reduce(vsubq_u64(c.q, load(x)), c.q));
    }
    scalar::neg_assign(xs.into_remainder(), q);
}

/// `a = s a` for `q < 2^32` with the 64-bit Shoup companion `s_shoup` of `s`.
#[target_feature(enable = "neon")]
pub(crate) fn scalar_mul_assign_shoup32(a: &mut [u64], s: u64, s_shoup: u64, q: u64) {
    let c = consts(q);
    let (w, ws) = (vdup_n_u32(s as u32), vdup_n_u32((s_shoup >> 32) as u32));
    let mut xs = a.chunks_exact_mut(2);
    for x in &mut xs {
        store(x, reduce(mul_shoup32(c, load(x), w, ws), c.q));
    }
    scalar::scalar_mul_assign(xs.into_remainder(), s, s_shoup, q);
}

/// `a = a ∘ b` for `q < 2^32`, `q` not a power of two: Barrett on the 64-bit product with the
/// 32-bit constants of [`super::barrett32_params`] (remainder `< 5q` before three subtractions).
#[target_feature(enable = "neon")]
pub(crate) fn mul_assign_barrett32(a: &mut [u64], b: &[u64], m: &Modulus) {
    let mut xs = a.chunks_exact_mut(2);
    let mut ys = b.chunks_exact(2);
    let (c, br) = (consts(m.q()), barrett32(m));
    for (x, y) in (&mut xs).zip(&mut ys) {
        store(x, product32(c, br, load32(x), load32(y)));
    }
    scalar::mul_assign(xs.into_remainder(), ys.remainder(), m);
}

/// `acc += b ∘ d` for `q < 2^32`, `q` not a power of two.
#[target_feature(enable = "neon")]
pub(crate) fn mul_add_assign_barrett32(acc: &mut [u64], b: &[u64], d: &[u64], m: &Modulus) {
    let mut xs = acc.chunks_exact_mut(2);
    let mut ys = b.chunks_exact(2);
    let mut zs = d.chunks_exact(2);
    let (c, br) = (consts(m.q()), barrett32(m));
    for ((x, y), z) in (&mut xs).zip(&mut ys).zip(&mut zs) {
        let p = product32(c, br, load32(y), load32(z));
        store(x, reduce(vaddq_u64(load(x), p), c.q));
    }
    scalar::mul_add_assign(xs.into_remainder(), ys.remainder(), zs.remainder(), m);
}

#[derive(Clone, Copy)]
struct Barrett32 {
    mu: uint32x2_t,
    /// Negated shift counts (`vshlq_u64` shifts right by a negative count).
    s1: int64x2_t,
    s2: int64x2_t,
}

#[inline]
#[target_feature(enable = "neon")]
fn barrett32(m: &Modulus) -> Barrett32 {
    let (mu, s1, s2) = super::barrett32_params(m.q(), m.bits());
    Barrett32 {
        mu: vdup_n_u32(mu as u32),
        s1: vdupq_n_s64(-i64::from(s1)),
        s2: vdupq_n_s64(-i64::from(s2)),
    }
}

/// `x y mod q` for `x, y < q < 2^32`: `t = (x y) >> s1 < 2^32`, `quot = (t mu) >> s2`.
#[inline]
#[target_feature(enable = "neon")]
fn product32(c: Consts, b: Barrett32, x: uint32x2_t, y: uint32x2_t) -> uint64x2_t {
    let p = vmull_u32(x, y);
    let t = vmovn_u64(vshlq_u64(p, b.s1));
    let quot = vmovn_u64(vshlq_u64(vmull_u32(t, b.mu), b.s2));
    let r = vsubq_u64(p, vmull_u32(quot, c.q32));
    let four_q = vaddq_u64(c.two_q, c.two_q);
    reduce(reduce(reduce(r, four_q), c.two_q), c.q)
}

#[cfg(test)]
mod tests {
    use crate::modarith::MulKind;
    use crate::{Backend, Modulus};

    /// The differential tests iterate `Backend::available()`; this makes sure that on aarch64 the
    /// NEON kernels are among them and are what a default `Modulus` picks.
    #[test]
    fn neon_is_detected_and_chosen_on_aarch64() {
        assert!(Backend::Neon.is_available());
        assert!(Backend::available().contains(&Backend::Neon));
        if std::env::var_os("BUNET_FORCE_SCALAR").is_some_and(|v| v == "1") {
            return;
        }
        assert_eq!(Backend::detect(), Backend::Neon);
        let m = Modulus::new(4_294_967_291).unwrap(); // the largest prime below 2^32
        assert_eq!((m.backend(), m.kind()), (Backend::Neon, MulKind::Shoup32));
        let m = Modulus::new((1 << 50) - 27).unwrap();
        assert_eq!((m.backend(), m.kind()), (Backend::Neon, MulKind::Shoup64));
    }

    /// Known products at the top of the 32-bit range, through every NEON slice path (two full
    /// vectors and a scalar tail).
    #[test]
    fn neon_slice_products_known_answers() {
        let q = 4_294_967_291u64;
        let m = Modulus::with_backend(q, Backend::Neon).unwrap();
        let a = [q - 1, q - 2, 1, 0, q - 1];
        let b = [q - 1, 2, q - 1, 5, 3];
        let expect = [1, q - 4, q - 1, 0, q - 3];
        let mut x = a;
        m.mul_assign(&mut x, &b);
        assert_eq!(x, expect);
        let mut acc = [1u64; 5];
        m.mul_add_assign(&mut acc, &a, &b);
        assert_eq!(acc, [2, q - 3, 0, 1, q - 2]);
        let mut x = a;
        m.scalar_mul_assign(&mut x, q - 1);
        assert_eq!(x, [1, 2, q - 1, 0, 1]);
    }

    /// Sanity timing of the NEON slice operations against scalar (minimum of 50 interleaved
    /// rounds, 8192 elements). Under qemu this measures the emulator, not a CPU. Run:
    /// `cargo test -p bunet-kernels --release --target aarch64-unknown-linux-gnu -- --ignored
    /// --nocapture neon_slices_side_by_side`
    #[test]
    #[ignore]
    fn neon_slices_side_by_side() {
        type Op<'a> = &'a dyn Fn(&Modulus, &mut [u64]);
        let q = 4_294_967_291u64;
        let b: Vec<u64> = (0..8192u64).map(|i| (i * 2_654_435_761) % q).collect();
        let c: Vec<u64> = (0..8192u64).map(|i| (i * 40_503 + 17) % q).collect();
        let ops: [(&str, Op<'_>); 4] = [
            ("add", &|m, a| m.add_assign(a, &b)),
            ("mul", &|m, a| m.mul_assign(a, &b)),
            ("mul_add", &|m, a| m.mul_add_assign(a, &b, &c)),
            ("scalar_mul", &|m, a| m.scalar_mul_assign(a, 12_345_678)),
        ];
        let moduli =
            [Backend::Neon, Backend::Scalar].map(|be| Modulus::with_backend(q, be).unwrap());
        let mut best = [[f64::MAX; 4]; 2];
        let mut a = c.clone();
        for _ in 0..50 {
            for (mi, m) in moduli.iter().enumerate() {
                for (oi, (_, op)) in ops.iter().enumerate() {
                    let t = std::time::Instant::now();
                    op(m, &mut a);
                    best[mi][oi] = best[mi][oi].min(t.elapsed().as_secs_f64() * 1e6);
                }
            }
        }
        for (oi, (name, _)) in ops.iter().enumerate() {
            eprintln!(
                "{name}_assign n=8192 q=32bit: neon {:.1} us, scalar {:.1} us (min)",
                best[0][oi], best[1][oi]
            );
        }
    }
}
