//! x86-64 AES-NI engine: 128-bit registers, 8 independent blocks per iteration so that the
//! AES unit's latency (4 cycles) is hidden behind its throughput (1 per cycle).
#![cfg(target_arch = "x86_64")]

use std::arch::x86_64::*;

/// Blocks in flight per iteration.
const LANES: usize = 8;

#[target_feature(enable = "aes,sse4.1")]
fn load(x: &u128) -> __m128i {
    // SAFETY: `x` is a valid, readable 16-byte location; `loadu` has no alignment requirement.
    unsafe { _mm_loadu_si128(std::ptr::from_ref(x).cast()) }
}

#[target_feature(enable = "aes,sse4.1")]
fn store(x: &mut u128, v: __m128i) {
    // SAFETY: `x` is a valid, writable 16-byte location; `storeu` has no alignment requirement.
    unsafe { _mm_storeu_si128(std::ptr::from_mut(x).cast(), v) }
}

#[target_feature(enable = "aes,sse4.1")]
fn load_keys(rk: &[u128; 11]) -> [__m128i; 11] {
    let mut k = [_mm_setzero_si128(); 11];
    for (k, r) in k.iter_mut().zip(rk) {
        *k = load(r);
    }
    k
}

/// σ(x_L ‖ x_R) = (x_L ⊕ x_R) ‖ x_L on one register (low 64-bit lane = x_R).
#[target_feature(enable = "aes,sse4.1")]
fn sigma(x: __m128i) -> __m128i {
    let swapped = _mm_shuffle_epi32::<0b01_00_11_10>(x);
    _mm_xor_si128(swapped, _mm_unpackhi_epi64(_mm_setzero_si128(), x))
}

/// `N` blocks: `H(x, t) = AES(σ(x) ⊕ t) ⊕ σ(x)`, the final xor folded into the last round key.
#[target_feature(enable = "aes,sse4.1")]
fn hash_n<const N: usize>(k: &[__m128i; 11], blocks: &mut [u128], tweaks: &[u128]) {
    // σ(x) is recomputed after the rounds rather than kept: 16 registers hold 8 states and
    // the round keys, not 8 more σ values.
    let mut x = [_mm_setzero_si128(); N];
    for i in 0..N {
        let s = sigma(load(&blocks[i]));
        x[i] = _mm_xor_si128(_mm_xor_si128(s, load(&tweaks[i])), k[0]);
    }
    for key in &k[1..10] {
        for xi in x.iter_mut() {
            *xi = _mm_aesenc_si128(*xi, *key);
        }
    }
    for i in 0..N {
        let last = _mm_xor_si128(k[10], sigma(load(&blocks[i])));
        store(&mut blocks[i], _mm_aesenclast_si128(x[i], last));
    }
}

#[target_feature(enable = "aes,sse4.1")]
fn encrypt_n<const N: usize>(k: &[__m128i; 11], blocks: &mut [u128]) {
    let mut x = [_mm_setzero_si128(); N];
    for i in 0..N {
        x[i] = _mm_xor_si128(load(&blocks[i]), k[0]);
    }
    for key in &k[1..10] {
        for xi in x.iter_mut() {
            *xi = _mm_aesenc_si128(*xi, *key);
        }
    }
    for i in 0..N {
        store(&mut blocks[i], _mm_aesenclast_si128(x[i], k[10]));
    }
}

block_drivers!("aes,sse4.1");
