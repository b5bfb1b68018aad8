//! The tweakable circular correlation-robust hash that turns correlated OTs into random ones.
//!
//! Local to the OT module until `kernels::aes_hash` (built in parallel) lands; the two should be
//! deduplicated then.

use aes::Aes128;
use aes::cipher::{BlockCipherEncrypt, KeyInit};
use zeroize::Zeroize;

/// Public fixed key of the hash ("nothing up my sleeve": the ASCII of its purpose).
const FIXED_KEY: [u8; 16] = *b"BUNET OT TCCR v1";

/// Blocks hashed per AES call: enough to keep the pipeline full, small enough for L1.
const CHUNK: usize = 256;

/// `H(x, i) = π(σ(x) ⊕ i) ⊕ σ(x)` with `π` fixed-key AES-128 and the linear orthomorphism
/// `σ(x_L ‖ x_R) = (x_L ⊕ x_R) ‖ x_L` (`x_L` the high 64 bits).
///
/// # Security
/// Tweakable circular correlation-robust in the ideal-permutation model for fixed-key AES
/// (Guo, Katz, Wang, Yu: "Efficient and secure multiparty computation from fixed-key block
/// ciphers", S&P 2020, §7.3): for a secret uniform `Δ`, the values `H(x_i ⊕ b_i Δ, i)` look
/// random as long as each tweak `i` is used with at most one `x`.
#[derive(Clone)]
pub struct Tccr {
    cipher: Aes128,
}

impl std::fmt::Debug for Tccr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tccr { fixed key }")
    }
}

impl Default for Tccr {
    fn default() -> Self {
        Self::new()
    }
}

#[inline(always)]
fn sigma(x: u128) -> u128 {
    let hi = (x >> 64) as u64;
    let lo = x as u64;
    (u128::from(hi ^ lo) << 64) | u128::from(hi)
}

impl Tccr {
    /// The hash with the protocol's public fixed key.
    pub fn new() -> Self {
        Self {
            cipher: Aes128::new(&FIXED_KEY.into()),
        }
    }

    /// `H(x, tweak)` for one input.
    pub fn hash(&self, x: u128, tweak: u64) -> u128 {
        let mut out = [0u128];
        self.hash_many(&[x], tweak, 1, &mut out);
        out[0]
    }

    /// `out[k] = H(xs[k], first_tweak + k / tweak_repeat)`: `tweak_repeat` consecutive inputs
    /// share a tweak (2 for the two messages of one OT, 1 otherwise).
    ///
    /// # Panics
    /// If `xs` and `out` differ in length or `tweak_repeat` is zero (caller bugs).
    pub fn hash_many(&self, xs: &[u128], first_tweak: u64, tweak_repeat: usize, out: &mut [u128]) {
        assert_eq!(xs.len(), out.len(), "hash input and output lengths differ");
        assert!(tweak_repeat > 0, "tweak_repeat must be positive");
        self.hash_indexed(out, |k| {
            (xs[k], first_tweak.wrapping_add((k / tweak_repeat) as u64))
        });
    }

    /// The two messages of correlated OTs: `out[2i] = H(q_i, t + i)` and
    /// `out[2i + 1] = H(q_i ⊕ Δ, t + i)` with `t = first_tweak`.
    ///
    /// # Panics
    /// If `out.len() != 2 * q.len()` (a caller bug).
    pub fn hash_pairs(&self, q: &[u128], delta: u128, first_tweak: u64, out: &mut [u128]) {
        assert_eq!(
            2 * q.len(),
            out.len(),
            "hash output must hold two per input"
        );
        self.hash_indexed(out, |k| {
            let mask = 0u128.wrapping_sub((k & 1) as u128);
            (
                q[k / 2] ^ (delta & mask),
                first_tweak.wrapping_add((k / 2) as u64),
            )
        });
    }

    /// `out[k] = H(input(k))` where `input(k)` gives the value and its tweak.
    #[inline(always)]
    fn hash_indexed(&self, out: &mut [u128], input: impl Fn(usize) -> (u128, u64)) {
        let mut buf = [[0u8; 16]; CHUNK];
        let mut sig = [0u128; CHUNK];
        for (c, out) in out.chunks_mut(CHUNK).enumerate() {
            let base = c * CHUNK;
            for (k, (b, s)) in buf
                .iter_mut()
                .zip(sig.iter_mut())
                .take(out.len())
                .enumerate()
            {
                let (x, tweak) = input(base + k);
                *s = sigma(x);
                *b = (*s ^ u128::from(tweak)).to_le_bytes();
            }
            let blocks = aes::Block::cast_slice_from_core_mut(&mut buf[..out.len()]);
            self.cipher.encrypt_blocks(blocks);
            for ((o, b), s) in out.iter_mut().zip(buf.iter()).zip(sig.iter()) {
                *o = u128::from_le_bytes(*b) ^ s;
            }
        }
        sig.zeroize();
        buf.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batched_hash_equals_one_at_a_time_and_tweaks_matter() {
        let h = Tccr::new();
        let xs: Vec<u128> = (0..600u128)
            .map(|i| i * 0x9e37_79b9_7f4a_7c15_f39c)
            .collect();
        let mut out = vec![0; xs.len()];
        h.hash_many(&xs, 1000, 2, &mut out);
        for (k, (&x, &o)) in xs.iter().zip(&out).enumerate() {
            assert_eq!(o, h.hash(x, 1000 + (k / 2) as u64));
        }
        let mut pairs = vec![0; 2 * xs.len()];
        h.hash_pairs(&xs, 77, 9, &mut pairs);
        for (k, &x) in xs.iter().enumerate() {
            assert_eq!(pairs[2 * k], h.hash(x, 9 + k as u64));
            assert_eq!(pairs[2 * k + 1], h.hash(x ^ 77, 9 + k as u64));
        }
        assert_ne!(h.hash(5, 1), h.hash(5, 2));
        assert_ne!(h.hash(5, 1), h.hash(6, 1));
        // Known answer: sigma(0) = 0, so H(0, 0) = AES_k(0).
        let mut block = aes::Block::from([0u8; 16]);
        h.cipher.encrypt_block(&mut block);
        assert_eq!(h.hash(0, 0), u128::from_le_bytes(block.into()));
    }
}
