//! Writes at a secret position that touch every position alike: the memory accesses and the
//! branches depend only on the slice's length, never on the position. The receiver of a
//! silent-OT tree keeps its punctured leaf this way (its position is the receiver's LPN noise).
//! Scalar reference plus AVX2 and AVX-512 backends that agree with it bit for bit.

#[cfg(all(target_arch = "x86_64", not(miri)))]
mod avx2;
#[cfg(all(target_arch = "x86_64", not(miri)))]
mod avx512;
#[cfg(test)]
mod tests;

use std::hint::black_box;
use std::sync::OnceLock;

use crate::Backend;

/// The backend of the free functions of this module (detected once).
fn backend() -> Backend {
    static DETECTED: OnceLock<Backend> = OnceLock::new();
    *DETECTED.get_or_init(Backend::detect)
}

/// `blocks[index] ^= value`, reading and writing every block of `blocks` the same way whatever
/// `index` is; nothing changes if `index ≥ blocks.len()`.
pub fn xor_at(blocks: &mut [u128], index: usize, value: u128) {
    xor_at_with(backend(), blocks, index, value);
}

/// [`xor_at`] on a given backend.
pub fn xor_at_with(backend: Backend, blocks: &mut [u128], index: usize, value: u128) {
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    if backend == Backend::Avx512 && backend.is_available() {
        // SAFETY: AVX-512 F is present.
        unsafe { avx512::xor_at(blocks, index, value) };
        return;
    }
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    if backend == Backend::Avx2 && backend.is_available() {
        // SAFETY: AVX2 is present.
        unsafe { avx2::xor_at(blocks, index, value) };
        return;
    }
    #[cfg(not(all(target_arch = "x86_64", not(miri))))]
    let _ = backend;
    scalar_xor_at(blocks, 0, index, value);
}

/// The reference, on blocks numbered from `first` (the vector backends' tails).
fn scalar_xor_at(blocks: &mut [u128], first: usize, index: usize, value: u128) {
    for (j, b) in blocks.iter_mut().enumerate() {
        *b ^= value & eq_mask(first + j, index);
    }
}

/// All ones if `a == b`, else zero, without a branch: the top bit of `d | −d` is 1 exactly when
/// `d ≠ 0`; the opaque bit keeps the compiler from turning the mask back into a branch.
fn eq_mask(a: usize, b: usize) -> u128 {
    let d = (a ^ b) as u64;
    let equal = ((d | d.wrapping_neg()) >> 63) ^ 1;
    u128::from(black_box(equal)).wrapping_neg()
}
