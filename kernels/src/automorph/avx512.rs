//! AVX-512 backend of [`super`]: eight 64-bit lanes; tails go to the scalar reference.

use core::arch::x86_64::*;

/// Gathers eight words per step through the permutation.
///
/// # Safety
/// The CPU runs AVX-512 F; every index of `perm` is below `perm.len()`; `dst.len() == src.len()`
/// is a multiple of `perm.len()`.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn permute_limbs(dst: &mut [u64], src: &[u64], perm: &[u32]) {
    let n = perm.len();
    for (d, s) in dst.chunks_exact_mut(n).zip(src.chunks_exact(n)) {
        let mut ds = d.chunks_exact_mut(8);
        let mut ps = perm.chunks_exact(8);
        for (o, p) in (&mut ds).zip(&mut ps) {
            // SAFETY: `p` holds eight u32 (unaligned load allowed); every index is below
            // `n = s.len()` (caller), so the gather reads inside `s`; `o` holds eight u64.
            unsafe {
                let idx = _mm256_loadu_si256(p.as_ptr().cast());
                let v = _mm512_i32gather_epi64::<8>(idx, s.as_ptr().cast());
                _mm512_storeu_si512(o.as_mut_ptr().cast(), v);
            }
        }
        for (o, &i) in ds.into_remainder().iter_mut().zip(ps.remainder()) {
            *o = s[i as usize];
        }
    }
}

/// `x + (to − from)` in the lanes with `x > from/2`, else `x`.
///
/// # Safety
/// The CPU runs AVX-512 F; `src.len() == out.len()`.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn lift_centered(src: &[u64], from: u64, to: u64, out: &mut [u64]) {
    let half = _mm512_set1_epi64((from / 2) as i64);
    let shift = _mm512_set1_epi64(to.wrapping_sub(from) as i64);
    let mut os = out.chunks_exact_mut(8);
    let mut xs = src.chunks_exact(8);
    for (o, x) in (&mut os).zip(&mut xs) {
        // SAFETY: both chunks hold eight u64; unaligned loads and stores are allowed.
        unsafe {
            let v = _mm512_loadu_si512(x.as_ptr().cast());
            let neg = _mm512_cmpgt_epu64_mask(v, half);
            let r = _mm512_mask_add_epi64(v, neg, v, shift);
            _mm512_storeu_si512(o.as_mut_ptr().cast(), r);
        }
    }
    super::scalar_lift_centered(xs.remainder(), from, to, os.into_remainder());
}
