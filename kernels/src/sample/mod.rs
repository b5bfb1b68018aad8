//! Samplers' inner loops over pseudorandom words: the centred binomial distribution (popcount
//! differences), rejection sampling of uniform residues and multiply-shift scaling of 32-bit
//! words to a range (Ferret's LPN indices). The words come from the caller's
//! cryptographic generator; these kernels only shape them, without branches on the kept values.
//! Scalar reference plus an AVX-512 backend that agrees with it bit for bit.

#[cfg(all(target_arch = "x86_64", not(miri)))]
mod avx2;
#[cfg(all(target_arch = "x86_64", not(miri)))]
mod avx512;
#[cfg(test)]
mod tests;

use std::sync::OnceLock;

use crate::Backend;

/// The backend of the free functions of this module (detected once).
fn backend() -> Backend {
    static DETECTED: OnceLock<Backend> = OnceLock::new();
    *DETECTED.get_or_init(Backend::detect)
}

/// Whether AVX-512 VPOPCNTDQ (vector popcount) runs on `backend` here.
#[cfg(all(target_arch = "x86_64", not(miri)))]
fn has_vpopcnt(backend: Backend) -> bool {
    backend == Backend::Avx512
        && backend.is_available()
        && std::arch::is_x86_feature_detected!("avx512vpopcntdq")
}

/// `out[j] = popcount(w_j mod 2^η) − popcount(⌊w_j / 2^η⌋ mod 2^η)`: one centred binomial
/// sample of parameter `η` per 64-bit word (`2η ≤ 64` bits of it are read).
///
/// # Panics
/// If `eta` is not in `1..=32` or the slices differ in length.
pub fn cbd(words: &[u64], eta: u32, out: &mut [i64]) {
    cbd_with(backend(), words, eta, out);
}

/// [`cbd`] on a given backend.
///
/// # Panics
/// As [`cbd`].
pub fn cbd_with(backend: Backend, words: &[u64], eta: u32, out: &mut [i64]) {
    assert!((1..=32).contains(&eta), "η must be in 1..=32");
    assert_eq!(words.len(), out.len(), "slice lengths differ");
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    if has_vpopcnt(backend) {
        // SAFETY: AVX-512 F and VPOPCNTDQ are present; lengths checked.
        unsafe { avx512::cbd(words, eta, out) };
        return;
    }
    #[cfg(not(all(target_arch = "x86_64", not(miri))))]
    let _ = backend;
    scalar_cbd(words, eta, out);
}

fn scalar_cbd(words: &[u64], eta: u32, out: &mut [i64]) {
    let mask = u64::MAX >> (64 - eta);
    for (o, &w) in out.iter_mut().zip(words) {
        *o = (w & mask).count_ones() as i64 - ((w >> eta) & mask).count_ones() as i64;
    }
}

/// Rejection sampling below `q`: appends `w & mask` to `out` for each word `w` in order whose
/// masked value is `< q`, until `out` is full; returns how many values were written. With
/// `mask = 2^⌈log2 q⌉ − 1` every kept value is uniform below `q`, and which words are rejected
/// is independent of the kept values. Entries of `out` past the returned count may be
/// overwritten (the vector backend stores whole registers).
///
/// # Panics
/// If `q > mask + 1` (values below `q` would be lost to the mask).
pub fn accept_below(words: &[u64], mask: u64, q: u64, out: &mut [u64]) -> usize {
    accept_below_with(backend(), words, mask, q, out)
}

/// [`accept_below`] on a given backend.
///
/// # Panics
/// As [`accept_below`].
pub fn accept_below_with(
    backend: Backend,
    words: &[u64],
    mask: u64,
    q: u64,
    out: &mut [u64],
) -> usize {
    assert!(q.saturating_sub(1) <= mask, "q must not exceed mask + 1");
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    if backend == Backend::Avx512 && backend.is_available() {
        // SAFETY: AVX-512 F is present.
        return unsafe { avx512::accept_below(words, mask, q, out) };
    }
    #[cfg(not(all(target_arch = "x86_64", not(miri))))]
    let _ = backend;
    scalar_accept_below(words, mask, q, out)
}

fn scalar_accept_below(words: &[u64], mask: u64, q: u64, out: &mut [u64]) -> usize {
    let mut filled = 0;
    for &w in words {
        if filled == out.len() {
            break;
        }
        let x = w & mask;
        if x < q {
            out[filled] = x;
            filled += 1;
        }
    }
    filled
}

/// `out[j] = ⌊w_j · k / 2^32⌋`: each 32-bit word scaled to `[0, k)` by a multiply and a shift
/// (Lemire's reduction without its rejection step: for uniform words, each value below `k`
/// has probability `⌊2^32/k⌋/2^32` or `⌈2^32/k⌉/2^32`; callers that need exact uniformity must
/// reject themselves). Ferret's LPN rows take their indices this way.
///
/// # Panics
/// If the slices differ in length.
pub fn scale_u32(words: &[u32], k: u32, out: &mut [u32]) {
    scale_u32_with(backend(), words, k, out);
}

/// [`scale_u32`] on a given backend.
///
/// # Panics
/// As [`scale_u32`].
pub fn scale_u32_with(backend: Backend, words: &[u32], k: u32, out: &mut [u32]) {
    assert_eq!(words.len(), out.len(), "slice lengths differ");
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    if backend == Backend::Avx512 && backend.is_available() {
        // SAFETY: AVX-512 F is present; lengths checked.
        unsafe { avx512::scale_u32(words, k, out) };
        return;
    }
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    if backend == Backend::Avx2 && backend.is_available() {
        // SAFETY: AVX2 is present; lengths checked.
        unsafe { avx2::scale_u32(words, k, out) };
        return;
    }
    #[cfg(not(all(target_arch = "x86_64", not(miri))))]
    let _ = backend;
    scalar_scale_u32(words, k, out);
}

fn scalar_scale_u32(words: &[u32], k: u32, out: &mut [u32]) {
    for (o, &w) in out.iter_mut().zip(words) {
        *o = ((u64::from(w) * u64::from(k)) >> 32) as u32;
    }
}
