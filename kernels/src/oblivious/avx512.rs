//! AVX-512 backend of [`super`]: four blocks per step (eight 64-bit lanes); the tail goes to
//! the scalar reference.

use core::arch::x86_64::*;

/// [`super::xor_at`]: each step compares the steps' block numbers (each twice, one per half of
/// a block) with `index` and XORs `value` into the lanes that match, by a lane mask.
///
/// # Safety
/// The CPU runs AVX-512 F.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn xor_at(blocks: &mut [u128], index: usize, value: u128) {
    let target = _mm512_set1_epi64(index as i64);
    let (lo, hi) = (value as u64 as i64, (value >> 64) as u64 as i64);
    let v = _mm512_set_epi64(hi, lo, hi, lo, hi, lo, hi, lo);
    let step = _mm512_set1_epi64(4);
    let mut at = _mm512_set_epi64(3, 3, 2, 2, 1, 1, 0, 0);
    let first = blocks.len() / 4 * 4;
    let mut chunks = blocks.chunks_exact_mut(4);
    for c in &mut chunks {
        // SAFETY: the chunk holds four 16-byte blocks (64 bytes); unaligned loads and stores
        // are allowed.
        unsafe {
            let x = _mm512_loadu_si512(c.as_ptr().cast());
            let hit = _mm512_cmpeq_epi64_mask(at, target);
            _mm512_storeu_si512(c.as_mut_ptr().cast(), _mm512_mask_xor_epi64(x, hit, x, v));
        }
        at = _mm512_add_epi64(at, step);
    }
    super::scalar_xor_at(chunks.into_remainder(), first, index, value);
}
