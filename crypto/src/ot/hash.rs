//! The tweakable circular correlation-robust hash that turns correlated OTs into random ones:
//! the fixed-key AES hash of [`bunet_kernels::aes_hash`] (the one garbling uses, VAES where the
//! CPU has it), under tweaks of the OT domain.
//!
//! # Security
//! `H(x, i) = π(σ(x) ⊕ i) ⊕ σ(x)` is tweakable circular correlation robust (Guo, Katz, Wang,
//! Yu, S&P 2020, §7.3) as long as each tweak is used with at most one pair of related inputs.
//! Garbling uses tweaks below `2^64` (two per gate index); OT tweaks carry bit 64
//! ([`OT_DOMAIN`]), so the two never share a tweak even when an OT session and a garbler hold
//! the same Δ.

use bunet_kernels::aes_hash::FixedKeyHash;

/// Tweak bit that separates OT hashing from garbling (whose tweaks stay below `2^64`).
pub(crate) const OT_DOMAIN: u128 = 1 << 64;

/// Blocks hashed per kernel call: enough to keep 32 blocks in flight, small enough for L1.
const CHUNK: usize = 256;

/// `out[k] = H(xs[k], OT_DOMAIN | (first_tweak + k))`.
///
/// # Panics
/// If `xs` and `out` differ in length (a caller bug).
pub(crate) fn hash_many(hash: &FixedKeyHash, xs: &[u128], first_tweak: u64, out: &mut [u128]) {
    assert_eq!(xs.len(), out.len(), "hash input and output lengths differ");
    let mut tweaks = [0u128; CHUNK];
    for (c, (xs, out)) in xs.chunks(CHUNK).zip(out.chunks_mut(CHUNK)).enumerate() {
        let base = first_tweak.wrapping_add((c * CHUNK) as u64);
        for (k, t) in tweaks[..xs.len()].iter_mut().enumerate() {
            *t = OT_DOMAIN | u128::from(base.wrapping_add(k as u64));
        }
        hash.hash_into(xs, &tweaks[..xs.len()], out);
    }
}

/// The two messages of correlated OTs: `out[2i] = H(q_i, t_i)` and `out[2i + 1] = H(q_i ⊕ Δ,
/// t_i)` with `t_i = OT_DOMAIN | (first_tweak + i)`.
///
/// # Panics
/// If `out.len() != 2 * q.len()` (a caller bug).
pub(crate) fn hash_pairs(
    hash: &FixedKeyHash,
    q: &[u128],
    delta: u128,
    first_tweak: u64,
    out: &mut [u128],
) {
    assert_eq!(
        2 * q.len(),
        out.len(),
        "hash output must hold two per input"
    );
    let mut tweaks = [0u128; CHUNK];
    for (c, (q, out)) in q.chunks(CHUNK / 2).zip(out.chunks_mut(CHUNK)).enumerate() {
        let base = first_tweak.wrapping_add((c * CHUNK / 2) as u64);
        for (i, &x) in q.iter().enumerate() {
            let t = OT_DOMAIN | u128::from(base.wrapping_add(i as u64));
            tweaks[2 * i] = t;
            tweaks[2 * i + 1] = t;
            out[2 * i] = x;
            out[2 * i + 1] = x ^ delta;
        }
        hash.hash_many(out, &tweaks[..out.len()]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batched_hash_equals_one_at_a_time_and_tweaks_are_in_the_ot_domain() {
        let h = FixedKeyHash::new();
        let xs: Vec<u128> = (0..600u128)
            .map(|i| i * 0x9e37_79b9_7f4a_7c15_f39c)
            .collect();
        let mut out = vec![0; xs.len()];
        hash_many(&h, &xs, 1000, &mut out);
        for (k, (&x, &o)) in xs.iter().zip(&out).enumerate() {
            assert_eq!(o, h.hash(x, OT_DOMAIN | (1000 + k as u128)));
            // A garbling tweak (below 2^64) gives another value.
            assert_ne!(o, h.hash(x, 1000 + k as u128));
        }
        let mut pairs = vec![0; 2 * xs.len()];
        hash_pairs(&h, &xs, 77, 9, &mut pairs);
        for (k, &x) in xs.iter().enumerate() {
            let t = OT_DOMAIN | (9 + k as u128);
            assert_eq!(pairs[2 * k], h.hash(x, t));
            assert_eq!(pairs[2 * k + 1], h.hash(x ^ 77, t));
        }
        // Known answer: σ(0) = 0, so H(0, t) = π(t) for the kernel's fixed-key π.
        let mut block = [OT_DOMAIN];
        h.encrypt_blocks(&mut block);
        let mut one = [0u128];
        hash_many(&h, &[0], 0, &mut one);
        assert_eq!(one[0], block[0]);
    }
}
