//! x86-64 VAES engine on 512-bit registers: 4 blocks per register, 8 registers (32 blocks) in
//! flight per iteration, so both AES ports stay busy; the tail uses masked loads and stores.
#![cfg(target_arch = "x86_64")]

use std::arch::x86_64::*;

use super::GateTweaks;

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

/// Lane mask of the 64-bit words of the first `blocks` (0–4) blocks of a register.
fn word_mask(blocks: usize) -> __mmask8 {
    ((1u32 << (2 * blocks)) - 1) as u8
}

/// One half-tree level: `lo[j] ← H(lo[j], tweak)`, `hi[j] ← lo[j] ⊕ H(lo[j], tweak)` (the
/// parent read once); returns the XORs of the new `lo` and `hi`. The caller checked equal
/// lengths. Runs of 32 blocks through 8 registers; the last run's missing lanes are masked
/// off loads, stores and sums (their hashes are computed and dropped).
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,aes,vaes")]
pub(super) fn half_tree_level(
    rk: &[u128; 11],
    lo: &mut [u128],
    hi: &mut [u128],
    tweak: u128,
) -> [u128; 2] {
    let k = load_keys(rk);
    let tw = _mm512_broadcast_i32x4(_mm_set_epi64x(
        (tweak >> 64) as u64 as i64,
        tweak as u64 as i64,
    ));
    let (mut sum_lo, mut sum_hi) = (_mm512_setzero_si512(), _mm512_setzero_si512());
    for (l, h) in lo
        .chunks_mut(REGS * PER_REG)
        .zip(hi.chunks_mut(REGS * PER_REG))
    {
        let mut x = [_mm512_setzero_si512(); REGS];
        let mut s = [_mm512_setzero_si512(); REGS];
        let mut masks = [0 as __mmask8; REGS];
        for i in 0..REGS {
            let blocks = l.len().saturating_sub(PER_REG * i).min(PER_REG);
            masks[i] = word_mask(blocks);
            // SAFETY: the mask selects the 2·blocks 64-bit words of blocks `4i..4i + blocks` of
            // `l` (all in bounds); masked-off lanes are neither read nor faulted on.
            x[i] = unsafe {
                _mm512_maskz_loadu_epi64(masks[i], l.as_ptr().wrapping_add(PER_REG * i).cast())
            };
            s[i] = sigma(x[i]);
        }
        let y = hash_regs::<REGS>(&k, s, [tw; REGS]);
        for i in 0..REGS {
            let right = _mm512_xor_si512(x[i], y[i]);
            // SAFETY: as the loads: the mask keeps the stores inside `l` and `h` (same length).
            unsafe {
                _mm512_mask_storeu_epi64(
                    l.as_mut_ptr().wrapping_add(PER_REG * i).cast(),
                    masks[i],
                    y[i],
                );
                _mm512_mask_storeu_epi64(
                    h.as_mut_ptr().wrapping_add(PER_REG * i).cast(),
                    masks[i],
                    right,
                );
            }
            sum_lo = _mm512_mask_xor_epi64(sum_lo, masks[i], sum_lo, y[i]);
            sum_hi = _mm512_mask_xor_epi64(sum_hi, masks[i], sum_hi, right);
        }
    }
    [fold_lanes(sum_lo), fold_lanes(sum_hi)]
}

/// The XOR of a register's four blocks.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,aes,vaes")]
fn fold_lanes(v: __m512i) -> u128 {
    let mut b = [0u128; PER_REG];
    store4(&mut b, v);
    b[0] ^ b[1] ^ b[2] ^ b[3]
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

/// The low 64-bit half of every 128-bit lane set to 1: xor makes the odd tweak `j'` = `j + 1`
/// of an even `j`, and `test` against it reads the colour bit of every label.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,aes,vaes")]
fn one_lo() -> __m512i {
    _mm512_set_epi64(0, 1, 0, 1, 0, 1, 0, 1)
}

/// Mask of both 64-bit halves of every 128-bit lane whose label has colour bit 1.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,aes,vaes")]
fn colour(x: __m512i, one: __m512i) -> __mmask8 {
    let k = _mm512_test_epi64_mask(x, one);
    k | (k << 1)
}

/// Even tweaks `2·(first + (i + l)·stride)` of lanes `l = 0..4` (low halves; high halves 0).
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,aes,vaes")]
fn tweak_lanes(t: GateTweaks, i: usize) -> (__m512i, __m512i) {
    let j = |l: usize| {
        t.first
            .wrapping_add(((i + l) as u64).wrapping_mul(t.stride))
            .wrapping_mul(2) as i64
    };
    let v = _mm512_set_epi64(0, j(3), 0, j(2), 0, j(1), 0, j(0));
    let step = (t.stride.wrapping_mul(8)) as i64;
    (v, _mm512_set_epi64(0, step, 0, step, 0, step, 0, step))
}

/// Groups of 4 instances garbled per iteration (each 4 AES states: 32 blocks in flight).
const GARBLE_GROUPS: usize = 2;
/// Groups of 4 instances evaluated per iteration (each 2 AES states: 32 blocks in flight).
const EVAL_GROUPS: usize = 4;

/// Half-gates garbling of the first `4·GARBLE_GROUPS·⌊n / (4·GARBLE_GROUPS)⌋` instances (see
/// `FixedKeyHash::garble_and`); returns how many were done. Slices have equal lengths.
#[allow(clippy::too_many_arguments)] // mirrors FixedKeyHash::garble_and
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,aes,vaes")]
pub(super) fn garble_and(
    rk: &[u128; 11],
    delta: u128,
    a0: &[u128],
    b0: &[u128],
    tweaks: GateTweaks,
    out: &mut [u128],
    tg: &mut [u128],
    te: &mut [u128],
) -> usize {
    const STEP: usize = 4 * GARBLE_GROUPS;
    let k = load_keys(rk);
    let one = one_lo();
    let d = _mm512_broadcast_i32x4(_mm_set_epi64x(
        (delta >> 64) as u64 as i64,
        delta as u64 as i64,
    ));
    let sd = sigma(d);
    let (mut tw, step) = tweak_lanes(tweaks, 0);
    let n = a0.len() / STEP * STEP;
    for base in (0..n).step_by(STEP) {
        let mut a = [_mm512_setzero_si512(); GARBLE_GROUPS];
        let mut b = [_mm512_setzero_si512(); GARBLE_GROUPS];
        let mut s = [_mm512_setzero_si512(); 4 * GARBLE_GROUPS];
        let mut x = [_mm512_setzero_si512(); 4 * GARBLE_GROUPS];
        for g in 0..GARBLE_GROUPS {
            let i = base + 4 * g;
            a[g] = load4(&a0[i..i + 4]);
            b[g] = load4(&b0[i..i + 4]);
            let sa = sigma(a[g]);
            let sb = sigma(b[g]);
            // σ is linear: σ(A0 ⊕ Δ) = σ(A0) ⊕ σ(Δ).
            s[4 * g] = sa;
            s[4 * g + 1] = _mm512_xor_si512(sa, sd);
            s[4 * g + 2] = sb;
            s[4 * g + 3] = _mm512_xor_si512(sb, sd);
            let t1 = _mm512_xor_si512(tw, one);
            x[4 * g] = _mm512_ternarylogic_epi64::<0x96>(s[4 * g], tw, k[0]);
            x[4 * g + 1] = _mm512_ternarylogic_epi64::<0x96>(s[4 * g + 1], tw, k[0]);
            x[4 * g + 2] = _mm512_ternarylogic_epi64::<0x96>(s[4 * g + 2], t1, k[0]);
            x[4 * g + 3] = _mm512_ternarylogic_epi64::<0x96>(s[4 * g + 3], t1, k[0]);
            tw = _mm512_add_epi64(tw, step);
        }
        for key in &k[1..10] {
            for xi in x.iter_mut() {
                *xi = _mm512_aesenc_epi128(*xi, *key);
            }
        }
        for g in 0..GARBLE_GROUPS {
            let i = base + 4 * g;
            let h: [__m512i; 4] = std::array::from_fn(|r| {
                _mm512_aesenclast_epi128(x[4 * g + r], _mm512_xor_si512(k[10], s[4 * g + r]))
            });
            let ka = colour(a[g], one);
            let kb = colour(b[g], one);
            let h01 = _mm512_xor_si512(h[0], h[1]);
            let tgv = _mm512_mask_xor_epi64(h01, kb, h01, d);
            let wg = _mm512_mask_xor_epi64(h[0], ka, h[0], tgv);
            let h23 = _mm512_xor_si512(h[2], h[3]);
            let tev = _mm512_xor_si512(h23, a[g]);
            let we = _mm512_mask_xor_epi64(h[2], kb, h[2], h23);
            store4(&mut tg[i..i + 4], tgv);
            store4(&mut te[i..i + 4], tev);
            store4(&mut out[i..i + 4], _mm512_xor_si512(wg, we));
        }
    }
    n
}

/// Half-gates evaluation of the first `4·EVAL_GROUPS·⌊n / (4·EVAL_GROUPS)⌋` instances (see
/// `FixedKeyHash::evaluate_and`); returns how many were done. Slices have equal lengths.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,aes,vaes")]
pub(super) fn evaluate_and(
    rk: &[u128; 11],
    a: &[u128],
    b: &[u128],
    tg: &[u128],
    te: &[u128],
    tweaks: GateTweaks,
    out: &mut [u128],
) -> usize {
    const STEP: usize = 4 * EVAL_GROUPS;
    let k = load_keys(rk);
    let one = one_lo();
    let (mut tw, step) = tweak_lanes(tweaks, 0);
    let n = a.len() / STEP * STEP;
    for base in (0..n).step_by(STEP) {
        let mut av = [_mm512_setzero_si512(); EVAL_GROUPS];
        let mut bv = [_mm512_setzero_si512(); EVAL_GROUPS];
        let mut s = [_mm512_setzero_si512(); 2 * EVAL_GROUPS];
        let mut x = [_mm512_setzero_si512(); 2 * EVAL_GROUPS];
        for g in 0..EVAL_GROUPS {
            let i = base + 4 * g;
            av[g] = load4(&a[i..i + 4]);
            bv[g] = load4(&b[i..i + 4]);
            s[2 * g] = sigma(av[g]);
            s[2 * g + 1] = sigma(bv[g]);
            let t1 = _mm512_xor_si512(tw, one);
            x[2 * g] = _mm512_ternarylogic_epi64::<0x96>(s[2 * g], tw, k[0]);
            x[2 * g + 1] = _mm512_ternarylogic_epi64::<0x96>(s[2 * g + 1], t1, k[0]);
            tw = _mm512_add_epi64(tw, step);
        }
        for key in &k[1..10] {
            for xi in x.iter_mut() {
                *xi = _mm512_aesenc_epi128(*xi, *key);
            }
        }
        for g in 0..EVAL_GROUPS {
            let i = base + 4 * g;
            let ha = _mm512_aesenclast_epi128(x[2 * g], _mm512_xor_si512(k[10], s[2 * g]));
            let hb = _mm512_aesenclast_epi128(x[2 * g + 1], _mm512_xor_si512(k[10], s[2 * g + 1]));
            let ka = colour(av[g], one);
            let kb = colour(bv[g], one);
            let tgv = load4(&tg[i..i + 4]);
            let tev = load4(&te[i..i + 4]);
            let wg = _mm512_mask_xor_epi64(ha, ka, ha, tgv);
            let we = _mm512_mask_xor_epi64(hb, kb, hb, _mm512_xor_si512(tev, av[g]));
            store4(&mut out[i..i + 4], _mm512_xor_si512(wg, we));
        }
    }
    n
}
