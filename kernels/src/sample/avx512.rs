//! AVX-512 backend of [`super`]: eight words per step; tails go to the scalar reference.

use core::arch::x86_64::*;

/// [`super::cbd`] with `vpopcntq`.
///
/// # Safety
/// The CPU runs AVX-512 F and VPOPCNTDQ; `1 ≤ eta ≤ 32`; `words.len() == out.len()`.
#[target_feature(enable = "avx512f,avx512vpopcntdq")]
pub(super) unsafe fn cbd(words: &[u64], eta: u32, out: &mut [i64]) {
    let mask = _mm512_set1_epi64((u64::MAX >> (64 - eta)) as i64);
    let shift = _mm512_set1_epi64(eta as i64);
    let mut os = out.chunks_exact_mut(8);
    let mut ws = words.chunks_exact(8);
    for (o, w) in (&mut os).zip(&mut ws) {
        // SAFETY: both chunks hold eight 64-bit values; unaligned loads and stores are allowed.
        unsafe {
            let v = _mm512_loadu_si512(w.as_ptr().cast());
            let lo = _mm512_popcnt_epi64(_mm512_and_si512(v, mask));
            let hi = _mm512_popcnt_epi64(_mm512_and_si512(_mm512_srlv_epi64(v, shift), mask));
            _mm512_storeu_si512(o.as_mut_ptr().cast(), _mm512_sub_epi64(lo, hi));
        }
    }
    super::scalar_cbd(ws.remainder(), eta, os.into_remainder());
}

/// [`super::accept_below`]: masks and compares eight words at a time, packs the accepted ones
/// to the low lanes (`vpcompressq` into a register, order kept) and stores all eight lanes while
/// eight more fit in `out` (the next step overwrites the unused ones). The memory form of
/// `vpcompressq` is microcoded on AMD Zen 4 (several times slower than the whole loop).
///
/// # Safety
/// The CPU runs AVX-512 F.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn accept_below(words: &[u64], mask: u64, q: u64, out: &mut [u64]) -> usize {
    let maskv = _mm512_set1_epi64(mask as i64);
    let qv = _mm512_set1_epi64(q as i64);
    let mut filled = 0;
    let mut used = 0;
    while used + 8 <= words.len() && filled + 8 <= out.len() {
        // SAFETY: `used + 8 ≤ words.len()` and `filled + 8 ≤ out.len()`: eight-word unaligned
        // load and store in bounds.
        unsafe {
            let v = _mm512_and_si512(_mm512_loadu_si512(words[used..].as_ptr().cast()), maskv);
            let keep = _mm512_cmplt_epu64_mask(v, qv);
            let packed = _mm512_maskz_compress_epi64(keep, v);
            _mm512_storeu_si512(out[filled..].as_mut_ptr().cast(), packed);
            filled += keep.count_ones() as usize;
        }
        used += 8;
    }
    filled + super::scalar_accept_below(&words[used..], mask, q, &mut out[filled..])
}

/// [`super::scale_u32`]: sixteen words per step, the even lanes' products by `vpmuludq` on the
/// words, the odd lanes' on the words shifted down; the high halves blend back in order.
///
/// # Safety
/// The CPU runs AVX-512 F; `words.len() == out.len()`.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn scale_u32(words: &[u32], k: u32, out: &mut [u32]) {
    let kv = _mm512_set1_epi64(i64::from(k));
    let mut os = out.chunks_exact_mut(16);
    let mut ws = words.chunks_exact(16);
    for (o, w) in (&mut os).zip(&mut ws) {
        // SAFETY: both chunks hold sixteen 32-bit values; unaligned loads and stores allowed.
        unsafe {
            let v = _mm512_loadu_si512(w.as_ptr().cast());
            // Even lanes: the product's high half sits in the odd 32-bit lane; odd lanes: the
            // product of the shifted word, whose high half sits there too.
            let even = _mm512_srli_epi64::<32>(_mm512_mul_epu32(v, kv));
            let odd = _mm512_mul_epu32(_mm512_srli_epi64::<32>(v), kv);
            let r = _mm512_mask_blend_epi32(0xAAAA, even, odd);
            _mm512_storeu_si512(o.as_mut_ptr().cast(), r);
        }
    }
    super::scalar_scale_u32(ws.remainder(), k, os.into_remainder());
}
