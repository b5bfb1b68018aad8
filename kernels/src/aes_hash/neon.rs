//! aarch64 engine: the ARMv8 cryptography extension (`AESE` + `AESMC`) on 128-bit NEON
//! registers, 8 independent blocks per iteration so that the AES unit's latency is hidden.
//!
//! `vaeseq_u8(x, k)` is AddRoundKey then SubBytes and ShiftRows, `vaesmcq_u8` MixColumns; so
//! AES-128 is nine `AESE`+`AESMC` pairs under round keys 0..8, one `AESE` under key 9 and an xor
//! with key 10 (x86's `aesenc` instead adds the key last). The hash's final xor with σ(x) is folded
//! into that last key.
#![cfg(target_arch = "aarch64")]

use core::arch::aarch64::*;

/// Blocks in flight per iteration.
const LANES: usize = 8;

#[inline]
#[target_feature(enable = "neon,aes")]
fn load(x: &u128) -> uint8x16_t {
    // SAFETY: `x` is a valid, readable 16-byte location; `vld1q_u8` has no alignment requirement.
    // Its bytes in memory are the little-endian bytes of the block, the AES input order.
    unsafe { vld1q_u8(std::ptr::from_ref(x).cast()) }
}

#[inline]
#[target_feature(enable = "neon,aes")]
fn store(x: &mut u128, v: uint8x16_t) {
    // SAFETY: `x` is a valid, writable 16-byte location; `vst1q_u8` has no alignment requirement.
    unsafe { vst1q_u8(std::ptr::from_mut(x).cast(), v) }
}

#[inline]
#[target_feature(enable = "neon,aes")]
fn load_keys(rk: &[u128; 11]) -> [uint8x16_t; 11] {
    let mut k = [vdupq_n_u8(0); 11];
    for (k, r) in k.iter_mut().zip(rk) {
        *k = load(r);
    }
    k
}

/// σ(x_L ‖ x_R) = (x_L ⊕ x_R) ‖ x_L on one register (64-bit lane 0 = x_R, lane 1 = x_L).
#[inline]
#[target_feature(enable = "neon,aes")]
fn sigma(x: uint8x16_t) -> uint8x16_t {
    let x = vreinterpretq_u64_u8(x);
    // [x_L, x_R] ⊕ [0, x_L] = [x_L, x_R ⊕ x_L].
    let swapped = vextq_u64::<1>(x, x);
    let high = vtrn2q_u64(vdupq_n_u64(0), x);
    vreinterpretq_u8_u64(veorq_u64(swapped, high))
}

/// `AESMC` then `AESE` under keys 1..=9, on `N` states that already went through `AESE` under
/// key 0: what remains is the xor with key 10.
#[inline]
#[target_feature(enable = "neon,aes")]
fn middle_rounds<const N: usize>(k: &[uint8x16_t; 11], x: &mut [uint8x16_t; N]) {
    for key in &k[1..10] {
        for xi in x.iter_mut() {
            *xi = vaeseq_u8(vaesmcq_u8(*xi), *key);
        }
    }
}

/// `N` blocks: `H(x, t) = AES(σ(x) ⊕ t) ⊕ σ(x)`.
#[inline]
#[target_feature(enable = "neon,aes")]
fn hash_n<const N: usize>(k: &[uint8x16_t; 11], blocks: &mut [u128], tweaks: &[u128]) {
    let mut x = [vdupq_n_u8(0); N];
    for i in 0..N {
        let s = sigma(load(&blocks[i]));
        x[i] = vaeseq_u8(veorq_u8(s, load(&tweaks[i])), k[0]);
    }
    middle_rounds(k, &mut x);
    for i in 0..N {
        let last = veorq_u8(k[10], sigma(load(&blocks[i])));
        store(&mut blocks[i], veorq_u8(x[i], last));
    }
}

/// `N` blocks encrypted in place.
#[inline]
#[target_feature(enable = "neon,aes")]
fn encrypt_n<const N: usize>(k: &[uint8x16_t; 11], blocks: &mut [u128]) {
    let mut x = [vdupq_n_u8(0); N];
    for i in 0..N {
        x[i] = vaeseq_u8(load(&blocks[i]), k[0]);
    }
    middle_rounds(k, &mut x);
    for i in 0..N {
        store(&mut blocks[i], veorq_u8(x[i], k[10]));
    }
}

block_drivers!("neon,aes");

#[cfg(test)]
mod tests {
    use super::super::{Engine, FixedKeyHash};

    /// On aarch64 with the AES extension the ARMv8 engine is the detected one. The aarch64 CI
    /// (qemu `-cpu max`) sets `BUNET_REQUIRE_ARM_AES=1` so that a missing extension fails the
    /// run instead of silently testing only the scalar engine.
    #[test]
    fn arm_aes_engine_is_detected_where_the_extension_exists() {
        if std::env::var_os("BUNET_REQUIRE_ARM_AES").is_some_and(|v| v == "1") {
            assert!(
                Engine::ArmAes.is_available(),
                "the AES extension is required"
            );
        }
        if !Engine::ArmAes.is_available() {
            eprintln!("aes_hash: no ARMv8 AES extension on this CPU: ArmAes skipped");
            return;
        }
        if std::env::var_os("BUNET_FORCE_SCALAR").is_some_and(|v| v == "1") {
            assert_eq!(Engine::detect(), Engine::Scalar);
        } else {
            assert_eq!(Engine::detect(), Engine::ArmAes);
        }
    }

    /// Sanity timing of `hash_many` on the ARMv8 engine against the scalar one (minimum of 50
    /// interleaved rounds, 4096 blocks). Under qemu this measures the emulator, not a CPU. Run:
    /// `cargo test -p bunet-kernels --release --target aarch64-unknown-linux-gnu -- --ignored
    /// --nocapture arm_aes_side_by_side`
    #[test]
    #[ignore]
    fn arm_aes_side_by_side() {
        if !Engine::ArmAes.is_available() {
            return;
        }
        let hashes =
            [Engine::ArmAes, Engine::Scalar].map(|e| FixedKeyHash::with_engine(e).unwrap());
        let tweaks: Vec<u128> = (0..4096u128).collect();
        let mut blocks: Vec<u128> = (0..4096u128).map(|i| i * 0x9e37_79b9_7f4a_7c15).collect();
        let mut best = [f64::MAX; 2];
        for _ in 0..50 {
            for (b, h) in best.iter_mut().zip(&hashes) {
                let t = std::time::Instant::now();
                h.hash_many(&mut blocks, &tweaks);
                *b = b.min(t.elapsed().as_secs_f64() * 1e6);
            }
        }
        eprintln!(
            "hash_many 4096 blocks: armaes {:.1} us, scalar {:.1} us (min)",
            best[0], best[1]
        );
    }
}
