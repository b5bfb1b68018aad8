//! Slot-automorphism glue of RNS ring arithmetic: gathering every limb through one index
//! permutation (an automorphism `X ↦ X^g` in the NTT domain) and lifting centred residues from one
//! prime to another (the RNS digits of a key switch). Scalar reference plus an AVX-512 backend
//! that agrees with it bit for bit.

#[cfg(target_arch = "x86_64")]
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

/// `dst[l·n + i] = src[l·n + perm[i]]` for every limb `l` of `n = perm.len()` words.
///
/// # Panics
/// If `dst` and `src` differ in length, their length is not a multiple of `perm.len()`, or an
/// index of `perm` is `≥ perm.len()`.
pub fn permute_limbs(dst: &mut [u64], src: &[u64], perm: &[u32]) {
    permute_limbs_with(backend(), dst, src, perm);
}

/// [`permute_limbs`] on a given backend (unavailable or unimplemented backends fall back to the
/// scalar reference).
///
/// # Panics
/// As [`permute_limbs`].
pub fn permute_limbs_with(backend: Backend, dst: &mut [u64], src: &[u64], perm: &[u32]) {
    let n = perm.len();
    assert_eq!(dst.len(), src.len(), "slice lengths differ");
    assert!(
        n > 0 && dst.len().is_multiple_of(n),
        "length is not a multiple of the permutation"
    );
    assert!(
        perm.iter().all(|&i| (i as usize) < n),
        "permutation index out of range"
    );
    match backend {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: checked that this CPU runs AVX-512 F; indices are below `n` (checked above).
        Backend::Avx512 if backend.is_available() => unsafe {
            avx512::permute_limbs(dst, src, perm)
        },
        _ => scalar_permute_limbs(dst, src, perm),
    }
}

fn scalar_permute_limbs(dst: &mut [u64], src: &[u64], perm: &[u32]) {
    let n = perm.len();
    for (d, s) in dst.chunks_exact_mut(n).zip(src.chunks_exact(n)) {
        for (o, &i) in d.iter_mut().zip(perm) {
            *o = s[i as usize];
        }
    }
}

/// Residues mod `to` of the centred representatives (in `(−from/2, from/2]`) of `src`, values
/// `< from`: `x` when `x ≤ from/2`, else `x + to − from`. For primes of similar size, no
/// reduction is needed: requires `from/2 < to`.
///
/// # Panics
/// If `from / 2 ≥ to`, or `src` and `out` differ in length.
pub fn lift_centered(src: &[u64], from: u64, to: u64, out: &mut [u64]) {
    lift_centered_with(backend(), src, from, to, out);
}

/// [`lift_centered`] on a given backend.
///
/// # Panics
/// As [`lift_centered`].
pub fn lift_centered_with(backend: Backend, src: &[u64], from: u64, to: u64, out: &mut [u64]) {
    assert!(from / 2 < to, "lift needs from/2 < to");
    assert_eq!(src.len(), out.len(), "slice lengths differ");
    match backend {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: checked that this CPU runs AVX-512 F.
        Backend::Avx512 if backend.is_available() => unsafe {
            avx512::lift_centered(src, from, to, out)
        },
        _ => scalar_lift_centered(src, from, to, out),
    }
}

fn scalar_lift_centered(src: &[u64], from: u64, to: u64, out: &mut [u64]) {
    let half = from / 2;
    let shift = to.wrapping_sub(from);
    for (o, &x) in out.iter_mut().zip(src) {
        // Branch-free (the sign of a digit is random).
        let negative = 0u64.wrapping_sub((x > half) as u64);
        *o = x.wrapping_add(shift & negative);
    }
}
