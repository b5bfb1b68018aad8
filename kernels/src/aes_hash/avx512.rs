//! x86-64 VAES engine on 512-bit registers: 4 blocks per register, 8 registers (32 blocks) in
//! flight per iteration, so both AES ports stay busy; the tail uses masked loads and stores.
#![cfg(target_arch = "x86_64")]

use std::arch::x86_64::*;

/// Registers in flight per iteration.
const REGS: usize = 8;
/// Blocks per register.
const PER_REG: usize = 4;

#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,aes,vaes")]
fn load4(x: &[u128]) -> __m512i {
    debug_assert_eq!(x.len(), PER_REG);
    // SAFETY: `x` holds 4 readable blocks = 64 bytes; `loadu` has no alignment requirement.
    unsafe { _mm512_loadu_si512(x.as_ptr().cast()) }
}

#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,aes,vaes")]
fn store4(x: &mut [u128], v: __m512i) {
    debug_assert_eq!(x.len(), PER_REG);
    // SAFETY: `x` holds 4 writable blocks = 64 bytes; `storeu` has no alignment requirement.
    unsafe { _mm512_storeu_si512(x.as_mut_ptr().cast(), v) }
}

/// Loads `x.len() < 4` blocks into the low lanes (the others zero).
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,aes,vaes")]
fn load_partial(x: &[u128]) -> __m512i {
    debug_assert!(x.len() < PER_REG);
    let mask: __mmask8 = ((1u32 << (2 * x.len())) - 1) as u8;
    // SAFETY: the mask selects exactly the 2·len 64-bit words of `x`; masked-off lanes are
    // neither read nor faulted on.
    unsafe { _mm512_maskz_loadu_epi64(mask, x.as_ptr().cast()) }
}

#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,aes,vaes")]
fn store_partial(x: &mut [u128], v: __m512i) {
    debug_assert!(x.len() < PER_REG);
    let mask: __mmask8 = ((1u32 << (2 * x.len())) - 1) as u8;
    // SAFETY: the mask selects exactly the 2·len 64-bit words of `x`; nothing else is written.
    unsafe { _mm512_mask_storeu_epi64(x.as_mut_ptr().cast(), mask, v) }
}

#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,aes,vaes")]
fn load_keys(rk: &[u128; 11]) -> [__m512i; 11] {
    let mut k = [_mm512_setzero_si512(); 11];
    for (k, r) in k.iter_mut().zip(rk) {
        let lo = *r as u64 as i64;
        let hi = (*r >> 64) as u64 as i64;
        *k = _mm512_broadcast_i32x4(_mm_set_epi64x(hi, lo));
    }
    k
}

/// σ(x_L ‖ x_R) = (x_L ⊕ x_R) ‖ x_L in each 128-bit lane: swap the 64-bit halves, then xor the
/// original high half into the high half only.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,aes,vaes")]
fn sigma(x: __m512i) -> __m512i {
    let swapped = _mm512_shuffle_epi32::<0b01_00_11_10>(x);
    _mm512_mask_xor_epi64(swapped, 0b1010_1010, swapped, x)
}

/// `N` registers of 4 blocks each, the final xor with σ folded into the last round key.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,aes,vaes")]
fn hash_regs<const N: usize>(k: &[__m512i; 11], s: [__m512i; N], t: [__m512i; N]) -> [__m512i; N] {
    let mut x = [_mm512_setzero_si512(); N];
    for i in 0..N {
        x[i] = _mm512_ternarylogic_epi64::<0x96>(s[i], t[i], k[0]);
    }
    for key in &k[1..10] {
        for xi in x.iter_mut() {
            *xi = _mm512_aesenc_epi128(*xi, *key);
        }
    }
    for i in 0..N {
        x[i] = _mm512_aesenclast_epi128(x[i], _mm512_xor_si512(k[10], s[i]));
    }
    x
}

#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,aes,vaes")]
fn encrypt_regs<const N: usize>(k: &[__m512i; 11], mut x: [__m512i; N]) -> [__m512i; N] {
    for xi in x.iter_mut() {
        *xi = _mm512_xor_si512(*xi, k[0]);
    }
    for key in &k[1..10] {
        for xi in x.iter_mut() {
            *xi = _mm512_aesenc_epi128(*xi, *key);
        }
    }
    for xi in x.iter_mut() {
        *xi = _mm512_aesenclast_epi128(*xi, k[10]);
    }
    x
}

/// `blocks[j] ← H(blocks[j], tweaks[j])`; the caller checked equal lengths.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,aes,vaes")]
pub(super) fn hash_many(rk: &[u128; 11], blocks: &mut [u128], tweaks: &[u128]) {
    let k = load_keys(rk);
    let mut bc = blocks.chunks_exact_mut(REGS * PER_REG);
    let mut tc = tweaks.chunks_exact(REGS * PER_REG);
    for (b, t) in (&mut bc).zip(&mut tc) {
        let mut s = [_mm512_setzero_si512(); REGS];
        let mut tw = [_mm512_setzero_si512(); REGS];
        for i in 0..REGS {
            s[i] = sigma(load4(&b[PER_REG * i..PER_REG * (i + 1)]));
            tw[i] = load4(&t[PER_REG * i..PER_REG * (i + 1)]);
        }
        let h = hash_regs::<REGS>(&k, s, tw);
        for i in 0..REGS {
            store4(&mut b[PER_REG * i..PER_REG * (i + 1)], h[i]);
        }
    }
    let b = bc.into_remainder();
    let t = tc.remainder();
    let mut bc = b.chunks_exact_mut(PER_REG);
    let mut tc = t.chunks_exact(PER_REG);
    for (b, t) in (&mut bc).zip(&mut tc) {
        let h = hash_regs::<1>(&k, [sigma(load4(b))], [load4(t)]);
        store4(b, h[0]);
    }
    let b = bc.into_remainder();
    if !b.is_empty() {
        let t = tc.remainder();
        let h = hash_regs::<1>(&k, [sigma(load_partial(b))], [load_partial(t)]);
        store_partial(b, h[0]);
    }
}

/// `blocks[j] ← AES_k(blocks[j])`.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,aes,vaes")]
pub(super) fn encrypt_blocks(rk: &[u128; 11], blocks: &mut [u128]) {
    let k = load_keys(rk);
    let mut bc = blocks.chunks_exact_mut(REGS * PER_REG);
    for b in &mut bc {
        let mut x = [_mm512_setzero_si512(); REGS];
        for i in 0..REGS {
            x[i] = load4(&b[PER_REG * i..PER_REG * (i + 1)]);
        }
        let y = encrypt_regs::<REGS>(&k, x);
        for i in 0..REGS {
            store4(&mut b[PER_REG * i..PER_REG * (i + 1)], y[i]);
        }
    }
    let b = bc.into_remainder();
    let mut bc = b.chunks_exact_mut(PER_REG);
    for b in &mut bc {
        let y = encrypt_regs::<1>(&k, [load4(b)]);
        store4(b, y[0]);
    }
    let b = bc.into_remainder();
    if !b.is_empty() {
        let y = encrypt_regs::<1>(&k, [load_partial(b)]);
        store_partial(b, y[0]);
    }
}
