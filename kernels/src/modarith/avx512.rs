//! AVX-512 modular arithmetic: eight 64-bit lanes.
//!
//! The lane primitives (`reduce`, `mul_ifma`, `mul_shoup32`, `mul_shoup64`) also serve the NTT
//! backend. Slice operations process whole vectors and leave the tail (`len % 8` elements) to
//! the scalar reference, so results agree with [`super::scalar`] bit for bit.
//!
//! Products of two variable operands (`mul_assign`, `mul_add_assign`) use Barrett reduction:
//! with IFMA52 for `q < 2^50` (the 104-bit product from `madd52lo/hi`, one more `madd52hi` for
//! the quotient), with 32x32->64-bit `vpmuludq` for `q < 2^32`; larger moduli stay scalar,
//! where one `mulx` gives the full 128-bit product.

use core::arch::x86_64::*;

use super::{Modulus, MulKind, scalar};

/// Broadcast constants of one modulus.
#[derive(Clone, Copy)]
pub(crate) struct Consts {
    pub(crate) q: __m512i,
    pub(crate) two_q: __m512i,
    /// `2^52 - q` (IFMA remainders).
    pub(crate) neg_q52: __m512i,
    pub(crate) mask52: __m512i,
}

#[inline]
#[target_feature(enable = "avx512f")]
pub(crate) fn consts(q: u64) -> Consts {
    Consts {
        q: _mm512_set1_epi64(q as i64),
        two_q: _mm512_set1_epi64((2 * q) as i64),
        neg_q52: _mm512_set1_epi64(((1u64 << 52).wrapping_sub(q)) as i64),
        mask52: _mm512_set1_epi64(((1u64 << 52) - 1) as i64),
    }
}

/// `min(x, x - b)` as unsigned: subtracts `b` from lanes `>= b`.
#[inline]
#[target_feature(enable = "avx512f")]
pub(crate) fn reduce(x: __m512i, b: __m512i) -> __m512i {
    _mm512_min_epu64(x, _mm512_sub_epi64(x, b))
}

// IFMA52 products (`vpmadd52{l,h}uq`: `a` plus the low / high 52 bits of the 104-bit product of
// the low 52 bits of `b` and `c`), modelled lane by lane under Miri.
#[cfg(not(miri))]
use core::arch::x86_64::{_mm512_madd52hi_epu64 as madd52hi, _mm512_madd52lo_epu64 as madd52lo};
#[cfg(miri)]
use ifma_under_miri::{madd52hi, madd52lo};

/// Miri executes AVX-512F but not IFMA52: this lane-wise model of `vpmadd52{l,h}uq` (Intel SDM:
/// the 104-bit product of the low 52 bits of `b` and `c`, its bits `shift..shift + 52` added to
/// `a`) lets the AVX-512 transforms' schedule and permutations run under Miri on machines without
/// AVX-512 (the command is in docs/ARCHITECTURE.md, "How to add a kernel backend"); native
/// builds never compile it.
#[cfg(miri)]
mod ifma_under_miri {
    use super::{__m512i, load, store};

    #[target_feature(enable = "avx512f")]
    pub(super) fn madd52lo(a: __m512i, b: __m512i, c: __m512i) -> __m512i {
        madd52(a, b, c, 0)
    }

    #[target_feature(enable = "avx512f")]
    pub(super) fn madd52hi(a: __m512i, b: __m512i, c: __m512i) -> __m512i {
        madd52(a, b, c, 52)
    }

    #[target_feature(enable = "avx512f")]
    fn madd52(a: __m512i, b: __m512i, c: __m512i, shift: u32) -> __m512i {
        let (mut la, mut lb, mut lc) = ([0u64; 8], [0u64; 8], [0u64; 8]);
        store(&mut la, a);
        store(&mut lb, b);
        store(&mut lc, c);
        const MASK: u128 = (1 << 52) - 1;
        for i in 0..8 {
            let p = (lb[i] as u128 & MASK) * (lc[i] as u128 & MASK);
            la[i] = la[i].wrapping_add(((p >> shift) & MASK) as u64);
        }
        load(&la)
    }
}

/// `y * w mod q` in `[0, 2q)` for `y < 2^52`, `q < 2^50`, companion `ws = floor(w 2^52 / q)`
/// (Shoup's multiplication on IFMA52, as in Intel HEXL).
#[inline]
#[target_feature(enable = "avx512f,avx512ifma")]
pub(crate) fn mul_ifma(c: Consts, y: __m512i, w: __m512i, ws: __m512i) -> __m512i {
    let zero = _mm512_setzero_si512();
    let quot = madd52hi(zero, y, ws);
    let r = madd52lo(zero, y, w);
    let r = madd52lo(r, quot, c.neg_q52);
    _mm512_and_si512(r, c.mask52)
}

/// [`mul_ifma`] with the remainder `y w − quot q` from two 64-bit `vpmullq` products (exact, as
/// it lies in `[0, 2q)`; no mask): one IFMA instead of three. Faster where `vpmullq` is a
/// single fast uop (AMD Zen 4: the NTT at N = 8192 and 50 bits took 11.5 instead of 11.7 µs,
/// `docs/PERFORMANCE.md`); Intel cores split it into three uops, so they keep [`mul_ifma`]
/// ([`vpmullq_is_fast`]).
#[inline]
#[target_feature(enable = "avx512f,avx512dq,avx512ifma")]
pub(crate) fn mul_ifma_mullo(c: Consts, y: __m512i, w: __m512i, ws: __m512i) -> __m512i {
    let quot = madd52hi(_mm512_setzero_si512(), y, ws);
    _mm512_sub_epi64(_mm512_mullo_epi64(y, w), _mm512_mullo_epi64(quot, c.q))
}

/// Whether `vpmullq` is a single fast uop on this CPU: AMD's (Zen 4 and later are the AMD cores
/// with AVX-512), not Intel's (three uops, throughput 1.5 cycles on Ice Lake and Sapphire
/// Rapids). Decides between [`mul_ifma`] and [`mul_ifma_mullo`] in the NTT.
pub(crate) fn vpmullq_is_fast() -> bool {
    // Miri models IFMA52 (`ifma_under_miri`) for the HEXL form only and has no CPUID.
    if cfg!(miri) {
        return false;
    }
    static AMD: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *AMD.get_or_init(|| {
        let r = __cpuid(0);
        // "AuthenticAMD" in EBX, EDX, ECX.
        (r.ebx, r.edx, r.ecx) == (0x6874_7541, 0x6974_6e65, 0x444d_4163)
    })
}

/// `y * w mod q` in `[0, 2q)` for `y < 4q`, `q < 2^32`, companion `ws = floor(w 2^32 / q)`.
#[inline]
#[target_feature(enable = "avx512f")]
pub(crate) fn mul_shoup32(c: Consts, y: __m512i, w: __m512i, ws: __m512i) -> __m512i {
    // The 32-bit multiplier reads only the low half of each lane: bring y below q < 2^32 first.
    let y = reduce(reduce(y, c.two_q), c.q);
    let quot = _mm512_srli_epi64::<32>(_mm512_mul_epu32(y, ws));
    _mm512_sub_epi64(_mm512_mul_epu32(y, w), _mm512_mul_epu32(quot, c.q))
}

/// `y * w mod q` in `[0, 4q)` for any 64-bit `y`, `q < 2^62`, companion `ws = floor(w 2^64 / q)`.
///
/// The high half of `y * ws` is assembled from three 32x32-bit products; dropping the low-by-low
/// product and the carries makes the quotient short by at most 2 (besides Shoup's 1), so the
/// remainder is `< 4q` (`< 2^64`, hence exact from the wrapping low halves). The NTT keeps it
/// there when `q < 2^61` (its butterfly values then stay below `8q < 2^64`).
#[inline]
#[target_feature(enable = "avx512f,avx512dq")]
pub(crate) fn mul_shoup64_lazy(c: Consts, y: __m512i, w: __m512i, ws: __m512i) -> __m512i {
    let y_hi = _mm512_shuffle_epi32::<0xF5>(y);
    let ws_hi = _mm512_shuffle_epi32::<0xF5>(ws);
    let hh = _mm512_mul_epu32(y_hi, ws_hi);
    let lh = _mm512_mul_epu32(y, ws_hi);
    let hl = _mm512_mul_epu32(y_hi, ws);
    let quot = _mm512_add_epi64(
        hh,
        _mm512_add_epi64(_mm512_srli_epi64::<32>(lh), _mm512_srli_epi64::<32>(hl)),
    );
    _mm512_sub_epi64(_mm512_mullo_epi64(y, w), _mm512_mullo_epi64(quot, c.q))
}

/// [`mul_shoup64_lazy`] brought to `[0, 2q)` by one conditional subtraction.
#[inline]
#[target_feature(enable = "avx512f,avx512dq")]
pub(crate) fn mul_shoup64(c: Consts, y: __m512i, w: __m512i, ws: __m512i) -> __m512i {
    reduce(mul_shoup64_lazy(c, y, w, ws), c.two_q)
}

#[inline]
#[target_feature(enable = "avx512f")]
pub(crate) fn load(s: &[u64]) -> __m512i {
    assert!(s.len() >= 8);
    // SAFETY: the slice holds at least eight u64 (checked above); unaligned loads are allowed.
    unsafe { _mm512_loadu_si512(s.as_ptr().cast()) }
}

#[inline]
#[target_feature(enable = "avx512f")]
pub(crate) fn store(s: &mut [u64], v: __m512i) {
    assert!(s.len() >= 8);
    // SAFETY: the slice holds at least eight u64 (checked above); unaligned stores are allowed.
    unsafe { _mm512_storeu_si512(s.as_mut_ptr().cast(), v) }
}

/// Barrett constants of a vector product for one modulus.
#[derive(Clone, Copy)]
struct Barrett {
    mu: __m512i,
    /// Right shift of the product before the multiplication by `mu`.
    s1: __m128i,
    /// Left shift of the high IFMA half (`53 - k`), or the right shift after the multiplication
    /// by `mu` (32-bit kind).
    s2: __m128i,
}

/// `mu = floor(2^(51 + k) / q) < 2^52` for the IFMA kind (`q` not a power of two, `k <= 50`):
/// `t = floor(P / 2^(k-1)) < 2^51`, `quot = madd52hi(t, mu)` is short by at most 2.
fn barrett52_mu(q: u64, k: u32) -> u64 {
    ((1u128 << (51 + k)) / q as u128) as u64
}

/// Whether vector products serve this modulus (else `mul_assign` stays scalar).
///
/// Both Barrett variants need `q > 2^(k-1)` (so that `mu` fits its lane), which excludes only
/// powers of two.
pub(crate) fn vector_products(m: &Modulus) -> bool {
    !m.q().is_power_of_two() && matches!(m.kind(), MulKind::Ifma52 | MulKind::Shoup32)
}

#[inline]
#[target_feature(enable = "avx512f,avx512ifma")]
fn mul_barrett52(c: Consts, b: Barrett, x: __m512i, y: __m512i) -> __m512i {
    let zero = _mm512_setzero_si512();
    let lo = madd52lo(zero, x, y);
    let hi = madd52hi(zero, x, y);
    let t = _mm512_or_si512(_mm512_srl_epi64(lo, b.s1), _mm512_sll_epi64(hi, b.s2));
    let quot = madd52hi(zero, t, b.mu);
    let r = _mm512_and_si512(madd52lo(lo, quot, c.neg_q52), c.mask52);
    reduce(reduce(r, c.two_q), c.q)
}

#[inline]
#[target_feature(enable = "avx512f")]
fn mul_barrett32(c: Consts, b: Barrett, x: __m512i, y: __m512i) -> __m512i {
    let p = _mm512_mul_epu32(x, y);
    let t = _mm512_srl_epi64(p, b.s1);
    let quot = _mm512_srl_epi64(_mm512_mul_epu32(t, b.mu), b.s2);
    let r = _mm512_sub_epi64(p, _mm512_mul_epu32(quot, c.q));
    let four_q = _mm512_add_epi64(c.two_q, c.two_q);
    reduce(reduce(reduce(r, four_q), c.two_q), c.q)
}

/// Generates the slice operations for one set of features and one vector product.
macro_rules! slice_ops {
    ($name:ident, $features:literal, $product:ident, $barrett:expr, $mul:ident) => {
        pub(crate) mod $name {
            use super::*;

            #[target_feature(enable = $features)]
            pub(crate) fn mul_assign(a: &mut [u64], b: &[u64], m: &Modulus) {
                let (c, br) = (consts(m.q()), $barrett(m));
                let mut xs = a.chunks_exact_mut(8);
                let mut ys = b.chunks_exact(8);
                for (x, y) in (&mut xs).zip(&mut ys) {
                    store(x, $product(c, br, load(x), load(y)));
                }
                scalar::mul_assign(xs.into_remainder(), ys.remainder(), m);
            }

            #[target_feature(enable = $features)]
            pub(crate) fn mul_add_assign(acc: &mut [u64], b: &[u64], d: &[u64], m: &Modulus) {
                let (c, br) = (consts(m.q()), $barrett(m));
                let mut xs = acc.chunks_exact_mut(8);
                let mut ys = b.chunks_exact(8);
                let mut zs = d.chunks_exact(8);
                for ((x, y), z) in (&mut xs).zip(&mut ys).zip(&mut zs) {
                    let p = $product(c, br, load(y), load(z));
                    store(x, reduce(_mm512_add_epi64(load(x), p), c.q));
                }
                scalar::mul_add_assign(xs.into_remainder(), ys.remainder(), zs.remainder(), m);
            }

            /// `a = s a` with the kind's Shoup companion `s_shoup` of `s`.
            #[target_feature(enable = $features)]
            pub(crate) fn scalar_mul_assign(a: &mut [u64], s: u64, s_shoup: u64, m: &Modulus) {
                let c = consts(m.q());
                let (w, ws) = (
                    _mm512_set1_epi64(s as i64),
                    _mm512_set1_epi64((s_shoup >> m.kind().companion_shift()) as i64),
                );
                let mut xs = a.chunks_exact_mut(8);
                for x in &mut xs {
                    store(x, reduce($mul(c, load(x), w, ws), c.q));
                }
                scalar::scalar_mul_assign(xs.into_remainder(), s, s_shoup, m.q());
            }
        }
    };
}

#[inline]
#[target_feature(enable = "avx512f")]
fn barrett52(m: &Modulus) -> Barrett {
    let k = m.bits();
    Barrett {
        mu: _mm512_set1_epi64(barrett52_mu(m.q(), k) as i64),
        s1: _mm_cvtsi64_si128((k - 1) as i64),
        s2: _mm_cvtsi64_si128((53 - k) as i64),
    }
}

#[inline]
#[target_feature(enable = "avx512f")]
fn barrett32(m: &Modulus) -> Barrett {
    let (mu, s1, s2) = super::barrett32_params(m.q(), m.bits());
    Barrett {
        mu: _mm512_set1_epi64(mu as i64),
        s1: _mm_cvtsi64_si128(s1 as i64),
        s2: _mm_cvtsi64_si128(s2 as i64),
    }
}

slice_ops!(
    ifma,
    "avx512f,avx512dq,avx512ifma",
    mul_barrett52,
    barrett52,
    mul_ifma
);
slice_ops!(
    shoup32,
    "avx512f,avx512dq",
    mul_barrett32,
    barrett32,
    mul_shoup32
);

/// `a = s a` for the `Shoup64` kind (any `q < 2^62`).
#[target_feature(enable = "avx512f,avx512dq")]
pub(crate) fn scalar_mul_assign_shoup64(a: &mut [u64], s: u64, s_shoup: u64, q: u64) {
    let c = consts(q);
    let (w, ws) = (
        _mm512_set1_epi64(s as i64),
        _mm512_set1_epi64(s_shoup as i64),
    );
    let mut xs = a.chunks_exact_mut(8);
    for x in &mut xs {
        store(x, reduce(mul_shoup64(c, load(x), w, ws), c.q));
    }
    scalar::scalar_mul_assign(xs.into_remainder(), s, s_shoup, q);
}

/// `a += b` mod q.
#[target_feature(enable = "avx512f")]
pub(crate) fn add_assign(a: &mut [u64], b: &[u64], q: u64) {
    let c = consts(q);
    let mut xs = a.chunks_exact_mut(8);
    let mut ys = b.chunks_exact(8);
    for (x, y) in (&mut xs).zip(&mut ys) {
        store(x, reduce(_mm512_add_epi64(load(x), load(y)), c.q));
    }
    scalar::add_assign(xs.into_remainder(), ys.remainder(), q);
}

/// `a -= b` mod q: the wrapped difference of lanes with `a < b` is the larger of `d` and `d + q`.
#[target_feature(enable = "avx512f")]
pub(crate) fn sub_assign(a: &mut [u64], b: &[u64], q: u64) {
    let c = consts(q);
    let mut xs = a.chunks_exact_mut(8);
    let mut ys = b.chunks_exact(8);
    for (x, y) in (&mut xs).zip(&mut ys) {
        let d = _mm512_sub_epi64(load(x), load(y));
        store(x, _mm512_min_epu64(d, _mm512_add_epi64(d, c.q)));
    }
    scalar::sub_assign(xs.into_remainder(), ys.remainder(), q);
}

/// `a = -a` mod q: `q - a`, with `q` itself (from `a = 0`) brought to 0.
#[target_feature(enable = "avx512f")]
pub(crate) fn neg_assign(a: &mut [u64], q: u64) {
    let c = consts(q);
    let mut xs = a.chunks_exact_mut(8);
    for x in &mut xs {
        store(x, reduce(_mm512_sub_epi64(c.q, load(x)), c.q));
    }
    scalar::neg_assign(xs.into_remainder(), q);
}
