//! AVX-512 IFMA52 backend of [`super`]: eight coefficients per step; tails go to the scalar
//! reference.

use core::arch::x86_64::*;

use super::ScaleRound;
use crate::modarith::avx512::{consts, load, mul_ifma, reduce, store};

/// The IFMA word mask.
const MASK52: u64 = (1 << 52) - 1;

/// [`ScaleRound::round`]: per lane, the 208-bit sum `Σ_i x_i·(w_i·2^104 + hi_i·2^52 + lo_i)` in
/// four 52-bit columns (`vpmadd52{l,h}uq` put each 104-bit product's low word in one column and
/// its high word in the next; a column collects at most `2ℓ ≤ 30` words, far below `2^64`), then
/// `+ 2^103`, the carries, and `(c3·2^52 + c2) mod p` by two Shoup products.
///
/// # Safety
/// The CPU runs AVX-512 F and IFMA52; `sr.vector` holds (every `q_i < 2^50`, `p < 2^50`,
/// `ℓ ≤ 15`); `x.len() ≥ (ℓ − 1)·stride + out.len()`, `out.len() ≤ stride`; every residue is
/// below its prime.
#[target_feature(enable = "avx512f,avx512ifma")]
pub(super) unsafe fn scale_round(sr: &ScaleRound, x: &[u64], stride: usize, out: &mut [u64]) {
    let zero = _mm512_setzero_si512();
    let mask = _mm512_set1_epi64(MASK52 as i64);
    let half = _mm512_set1_epi64(1 << 51);
    let p = sr.p.q();
    let pc = consts(p);
    // 2^52 mod p and 1, with their 52-bit Shoup companions floor(w·2^52/p).
    let k52 = (1u64 << 52) % p;
    let k52v = _mm512_set1_epi64(k52 as i64);
    let k52s = _mm512_set1_epi64((((k52 as u128) << 52) / p as u128) as i64);
    let one = _mm512_set1_epi64(1);
    let ones = _mm512_set1_epi64(((1u128 << 52) / p as u128) as i64);
    let l = sr.w.len();
    let full = out.len() / 8 * 8;
    for j in (0..full).step_by(8) {
        let (mut c0, mut c1, mut c2, mut c3) = (zero, zero, zero, zero);
        for i in 0..l {
            let xi = load(&x[i * stride + j..]);
            let (w, _) = sr.w[i];
            let (hi, lo) = sr.frac[i];
            let (w, hi, lo) = (
                _mm512_set1_epi64(w as i64),
                _mm512_set1_epi64(hi as i64),
                _mm512_set1_epi64(lo as i64),
            );
            c0 = _mm512_madd52lo_epu64(c0, xi, lo);
            c1 = _mm512_madd52hi_epu64(c1, xi, lo);
            c1 = _mm512_madd52lo_epu64(c1, xi, hi);
            c2 = _mm512_madd52hi_epu64(c2, xi, hi);
            c2 = _mm512_madd52lo_epu64(c2, xi, w);
            c3 = _mm512_madd52hi_epu64(c3, xi, w);
        }
        c1 = _mm512_add_epi64(_mm512_add_epi64(c1, _mm512_srli_epi64::<52>(c0)), half);
        c2 = _mm512_add_epi64(c2, _mm512_srli_epi64::<52>(c1));
        c3 = _mm512_add_epi64(c3, _mm512_srli_epi64::<52>(c2));
        c2 = _mm512_and_si512(c2, mask);
        // c3 < 2^52 (ℓ ≤ 15 high words < 2^48 plus carries) and c2 < 2^52: Shoup's range.
        let r = _mm512_add_epi64(mul_ifma(pc, c3, k52v, k52s), mul_ifma(pc, c2, one, ones));
        store(&mut out[j..], reduce(reduce(r, pc.two_q), pc.q));
    }
    sr.round_scalar(x, stride, full, &mut out[full..]);
}

/// [`super::precise_offsets`]: the quotient of `r·m` by `p` from Shoup's estimate
/// `floor(m·floor(r·2^52/p)/2^52)` (short by at most 1), corrected, then rounded half up.
///
/// # Safety
/// The CPU runs AVX-512 F and IFMA52; `r < p < 2^50`; `m.len() == out.len()`; `m[j] < p`.
#[target_feature(enable = "avx512f,avx512ifma")]
pub(super) unsafe fn precise_offsets(m: &[u64], r: u64, p: u64, out: &mut [u64]) {
    let zero = _mm512_setzero_si512();
    let c = consts(p);
    let rv = _mm512_set1_epi64(r as i64);
    let rs = _mm512_set1_epi64((((r as u128) << 52) / p as u128) as i64);
    let one = _mm512_set1_epi64(1);
    // rem + floor(p/2) ≥ p ⟺ rem ≥ p − floor(p/2).
    let up_from = _mm512_set1_epi64((p - p / 2) as i64);
    let full = m.len() / 8 * 8;
    for j in (0..full).step_by(8) {
        let mv = load(&m[j..]);
        let quot = _mm512_madd52hi_epu64(zero, mv, rs);
        let rem = _mm512_madd52lo_epu64(_mm512_madd52lo_epu64(zero, mv, rv), quot, c.neg_q52);
        let rem = _mm512_and_si512(rem, c.mask52);
        let ge = _mm512_cmpge_epu64_mask(rem, c.q);
        let quot = _mm512_mask_add_epi64(quot, ge, quot, one);
        let rem = _mm512_mask_sub_epi64(rem, ge, rem, c.q);
        let up = _mm512_cmpge_epu64_mask(rem, up_from);
        store(&mut out[j..], _mm512_mask_add_epi64(quot, up, quot, one));
    }
    super::scalar_precise_offsets(&m[full..], r, p, &mut out[full..]);
}

/// [`super::scale_add_signed`]: `d·m` by Shoup on IFMA52 (in `[0, 2q)`), plus `y` lifted
/// (`y + q` where negative, by the sign mask), then two conditional subtractions.
///
/// # Safety
/// The CPU runs AVX-512 F and IFMA52; `d < q < 2^50`; `m[j] < 2^52`, `|y[j]| < q`; the three
/// slices have one length.
#[target_feature(enable = "avx512f,avx512ifma")]
pub(super) unsafe fn scale_add_signed(
    q: &crate::Modulus,
    d: u64,
    m: &[u64],
    y: &[i64],
    out: &mut [u64],
) {
    let c = consts(q.q());
    let dv = _mm512_set1_epi64(d as i64);
    let ds = _mm512_set1_epi64((((d as u128) << 52) / q.q() as u128) as i64);
    let full = m.len() / 8 * 8;
    for j in (0..full).step_by(8) {
        let prod = mul_ifma(c, load(&m[j..]), dv, ds);
        // SAFETY: `j + 8 ≤ y.len()`; an unaligned load of eight i64.
        let yv = unsafe { _mm512_loadu_si512(y[j..j + 8].as_ptr().cast()) };
        let lifted = _mm512_add_epi64(yv, _mm512_and_si512(_mm512_srai_epi64::<63>(yv), c.q));
        let s = _mm512_add_epi64(prod, lifted);
        store(&mut out[j..], reduce(reduce(s, c.two_q), c.q));
    }
    super::scalar_scale_add_signed(q, d, &m[full..], &y[full..], q.q(), &mut out[full..]);
}

/// [`super::mul_sum_pair_add`]: per lane, the 104-bit products' low and high words summed in
/// separate columns (at most 16 terms: the low column `< 2^56`, the high one `< 2^52` after the
/// low column's carry), then `hi·(2^52 mod q) + lo` by two IFMA Shoup products plus the old
/// output, in `[0, 5q)`, and three conditional subtractions.
///
/// # Safety
/// The CPU runs AVX-512 F and IFMA52; `q < 2^50`; at most 16 terms; every slice as long as
/// `out0` and `out1`; every value below `q`.
#[target_feature(enable = "avx512f,avx512ifma")]
pub(super) unsafe fn mul_sum_pair_add(
    q: &crate::Modulus,
    d: &[&[u64]],
    b: &[&[u64]],
    a: &[&[u64]],
    out0: &mut [u64],
    out1: &mut [u64],
) {
    let zero = _mm512_setzero_si512();
    let mask = _mm512_set1_epi64(MASK52 as i64);
    let c = consts(q.q());
    let k52 = (1u64 << 52) % q.q();
    let k52v = _mm512_set1_epi64(k52 as i64);
    let k52s = _mm512_set1_epi64((((k52 as u128) << 52) / q.q() as u128) as i64);
    let one = _mm512_set1_epi64(1);
    let ones = _mm512_set1_epi64(((1u128 << 52) / q.q() as u128) as i64);
    let finish = |lo: __m512i, hi: __m512i, old: __m512i| {
        let hi = _mm512_add_epi64(hi, _mm512_srli_epi64::<52>(lo));
        let lo = _mm512_and_si512(lo, mask);
        let r = _mm512_add_epi64(mul_ifma(c, hi, k52v, k52s), mul_ifma(c, lo, one, ones));
        let r = _mm512_add_epi64(r, old);
        reduce(reduce(reduce(r, c.two_q), c.two_q), c.q)
    };
    let full = out0.len() / 8 * 8;
    for j in (0..full).step_by(8) {
        let (mut lo0, mut hi0, mut lo1, mut hi1) = (zero, zero, zero, zero);
        for ((di, bi), ai) in d.iter().zip(b).zip(a) {
            let x = load(&di[j..]);
            let kb = load(&bi[j..]);
            let ka = load(&ai[j..]);
            lo0 = _mm512_madd52lo_epu64(lo0, x, kb);
            hi0 = _mm512_madd52hi_epu64(hi0, x, kb);
            lo1 = _mm512_madd52lo_epu64(lo1, x, ka);
            hi1 = _mm512_madd52hi_epu64(hi1, x, ka);
        }
        let r0 = finish(lo0, hi0, load(&out0[j..]));
        store(&mut out0[j..], r0);
        let r1 = finish(lo1, hi1, load(&out1[j..]));
        store(&mut out1[j..], r1);
    }
    super::scalar_mul_sum_pair_add(q, d, b, a, full, &mut out0[full..], &mut out1[full..]);
}
