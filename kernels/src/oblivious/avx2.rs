//! AVX2 backend of [`super`]: two blocks per step (four 64-bit lanes); the tail goes to the
//! scalar reference.

use core::arch::x86_64::*;

/// [`super::xor_at`]: each step compares the steps' block numbers (each twice, one per half of
/// a block) with `index` and XORs `value` under the comparison's all-ones lanes.
///
/// # Safety
/// The CPU runs AVX2.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn xor_at(blocks: &mut [u128], index: usize, value: u128) {
    let target = _mm256_set1_epi64x(index as i64);
    let (lo, hi) = (value as u64 as i64, (value >> 64) as u64 as i64);
    let v = _mm256_set_epi64x(hi, lo, hi, lo);
    let step = _mm256_set1_epi64x(2);
    let mut at = _mm256_set_epi64x(1, 1, 0, 0);
    let first = blocks.len() / 2 * 2;
    let mut chunks = blocks.chunks_exact_mut(2);
    for c in &mut chunks {
        // SAFETY: the chunk holds two 16-byte blocks (32 bytes); unaligned loads and stores
        // are allowed.
        unsafe {
            let x = _mm256_loadu_si256(c.as_ptr().cast());
            let hit = _mm256_cmpeq_epi64(at, target);
            let y = _mm256_xor_si256(x, _mm256_and_si256(hit, v));
            _mm256_storeu_si256(c.as_mut_ptr().cast(), y);
        }
        at = _mm256_add_epi64(at, step);
    }
    super::scalar_xor_at(chunks.into_remainder(), first, index, value);
}
