//! AVX2 backend of [`super`]: eight words per step; tails go to the scalar reference.

use core::arch::x86_64::*;

/// [`super::scale_u32`]: as the AVX-512 backend, on eight words.
///
/// # Safety
/// The CPU runs AVX2; `words.len() == out.len()`.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn scale_u32(words: &[u32], k: u32, out: &mut [u32]) {
    let kv = _mm256_set1_epi64x(i64::from(k));
    let mut os = out.chunks_exact_mut(8);
    let mut ws = words.chunks_exact(8);
    for (o, w) in (&mut os).zip(&mut ws) {
        // SAFETY: both chunks hold eight 32-bit values; unaligned loads and stores allowed.
        unsafe {
            let v = _mm256_loadu_si256(w.as_ptr().cast());
            let even = _mm256_srli_epi64::<32>(_mm256_mul_epu32(v, kv));
            let odd = _mm256_mul_epu32(_mm256_srli_epi64::<32>(v), kv);
            let r = _mm256_blend_epi32::<0b1010_1010>(even, odd);
            _mm256_storeu_si256(o.as_mut_ptr().cast(), r);
        }
    }
    super::scalar_scale_u32(ws.remainder(), k, os.into_remainder());
}
