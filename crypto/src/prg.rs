//! The cryptographic pseudorandom generator: AES-128 in counter mode.
//!
//! Every random value of the protocol (secret keys, encryption randomness, masks, labels, OT
//! choices) is drawn from a [`Prg`] seeded by the operating system ([`Prg::from_os_entropy`]),
//! or expanded from a seed that the protocol itself chose at random ([`Prg::from_seed`]).
//!
//! [`Prg`] speaks the ecosystem's interface too: it implements `rand_core`'s `TryRng` and
//! `TryCryptoRng` with an infallible error, hence `rand_core::Rng` and `rand_core::CryptoRng`
//! (rand_core 0.10's names for `RngCore` + `CryptoRng`), so curve25519-dalek and any other crate
//! draw from it directly (`Scalar::random(&mut prg)`).

use aes::Aes128;
use aes::cipher::{BlockCipherEncrypt, KeyInit};
use zeroize::Zeroize;

use crate::secret::{redacted_debug, zeroize_on_drop};

/// Counter blocks encrypted per refill: enough to keep the AES pipeline full.
const BUFFER_BLOCKS: usize = 32;

/// AES-128-CTR keystream generator.
///
/// # Security
/// Outputs are indistinguishable from uniform as long as AES-128 is a pseudorandom permutation
/// and fewer than 2^64 blocks are drawn from one seed. The key is erased on drop.
pub struct Prg {
    cipher: Aes128,
    counter: u128,
    buffer: [u8; 16 * BUFFER_BLOCKS],
    used: usize,
}

redacted_debug!(Prg);
// The AES key schedule erases itself (the `aes` crate's `zeroize` feature).
zeroize_on_drop!(Prg { buffer, counter });

impl Prg {
    /// A generator seeded with 128 bits from the operating system.
    ///
    /// # Panics
    /// If the operating system has no randomness to give: nothing secure can proceed then.
    pub fn from_os_entropy() -> Self {
        let mut seed = [0u8; 16];
        getrandom::fill(&mut seed).expect("the operating system must provide randomness");
        let prg = Self::from_seed(seed);
        seed.zeroize();
        prg
    }

    /// A generator whose whole output is determined by `seed`. The seed must itself be uniformly
    /// random and secret (drawn from another `Prg`) unless the output is meant to be public.
    pub fn from_seed(seed: [u8; 16]) -> Self {
        Self {
            cipher: Aes128::new(&seed.into()),
            counter: 0,
            buffer: [0; 16 * BUFFER_BLOCKS],
            used: 16 * BUFFER_BLOCKS,
        }
    }

    fn refill(&mut self) {
        // Encrypted in place in the buffer (erased on drop): no copy of the keystream is left
        // elsewhere, e.g. in a stack array, and nothing extra to erase per refill.
        encrypt_counters(&self.cipher, &mut self.counter, &mut self.buffer);
        self.used = 0;
    }

    /// Fills `out` with pseudorandom bytes.
    ///
    /// Whole blocks requested while the buffer is empty are encrypted in place in `out` (the
    /// same counters in the same order, so the same keystream as through the buffer): no copy,
    /// and long runs of blocks per call keep the AES pipeline full.
    pub fn fill_bytes(&mut self, mut out: &mut [u8]) {
        while !out.is_empty() {
            if self.used == self.buffer.len() {
                if out.len() >= 16 * BUFFER_BLOCKS {
                    let whole = out.len() / 16 * 16;
                    let (direct, rest) = out.split_at_mut(whole);
                    encrypt_counters(&self.cipher, &mut self.counter, direct);
                    out = rest;
                    continue;
                }
                self.refill();
            }
            let take = out.len().min(self.buffer.len() - self.used);
            out[..take].copy_from_slice(&self.buffer[self.used..self.used + take]);
            self.used += take;
            out = &mut out[take..];
        }
    }

    /// A uniform 64-bit word.
    pub fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }

    /// A uniform 128-bit block.
    pub fn next_u128(&mut self) -> u128 {
        let mut b = [0u8; 16];
        self.fill_bytes(&mut b);
        u128::from_le_bytes(b)
    }

    /// A fresh 128-bit seed for a child generator.
    pub fn next_seed(&mut self) -> [u8; 16] {
        let mut b = [0u8; 16];
        self.fill_bytes(&mut b);
        b
    }

    /// A uniform value of `[0, q)`, by rejection sampling on the smallest power of two above
    /// `q` (the number of rejections is independent of the returned value).
    ///
    /// # Panics
    /// If `q == 0`.
    pub fn uniform_below(&mut self, q: u64) -> u64 {
        assert!(q > 0, "uniform_below needs a positive bound");
        let mask = u64::MAX >> (q - 1).leading_zeros().min(63);
        loop {
            let x = self.next_u64() & mask;
            if x < q {
                return x;
            }
        }
    }

    /// Fills `out` with uniform values of `[0, q)`.
    pub fn fill_uniform_below(&mut self, out: &mut [u64], q: u64) {
        for x in out {
            *x = self.uniform_below(q);
        }
    }
}

/// Encrypts the next `bytes.len() / 16` counter blocks in place in `bytes` (whole blocks),
/// advancing `counter`.
fn encrypt_counters(cipher: &Aes128, counter: &mut u128, bytes: &mut [u8]) {
    let (blocks, rest) = aes::Block::slice_as_chunks_mut(bytes);
    debug_assert!(rest.is_empty(), "whole blocks only");
    for block in blocks.iter_mut() {
        block.copy_from_slice(&counter.to_le_bytes());
        *counter += 1;
    }
    cipher.encrypt_blocks(blocks);
}

/// `rand_core`'s view of the keystream: the same bytes as the inherent methods, in the same
/// order (`try_next_u64` is [`Prg::next_u64`], `try_fill_bytes` is [`Prg::fill_bytes`]).
impl rand_core::TryRng for Prg {
    type Error = core::convert::Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        Ok(self.next_u64())
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        self.fill_bytes(dst);
        Ok(())
    }
}

/// AES-128-CTR under a secret uniform key is a cryptographic generator (see [`Prg`]).
impl rand_core::TryCryptoRng for Prg {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rand_core_view_is_the_same_keystream() {
        use rand_core::Rng;
        let mut a = Prg::from_seed([3; 16]);
        let mut b = Prg::from_seed([3; 16]);
        let mut x = [0u8; 20];
        a.fill_bytes(&mut x);
        let mut y = [0u8; 20];
        Rng::fill_bytes(&mut b, &mut y);
        assert_eq!(x, y);
        assert_eq!(a.next_u64(), Rng::next_u64(&mut b));
        let lo = a.next_u64();
        assert_eq!(lo as u32, Rng::next_u32(&mut b));
        // A CryptoRng bound is met (curve25519-dalek's samplers take one).
        fn crypto<R: rand_core::CryptoRng>(r: &mut R) -> u32 {
            r.next_u32()
        }
        let _ = crypto(&mut a);
    }

    #[test]
    fn same_seed_same_stream_other_seed_other_stream() {
        let mut a = Prg::from_seed([7; 16]);
        let mut b = Prg::from_seed([7; 16]);
        let mut c = Prg::from_seed([8; 16]);
        let (x, y, z) = (a.next_u128(), b.next_u128(), c.next_u128());
        assert_eq!(x, y);
        assert_ne!(x, z);
    }

    #[test]
    fn keystream_is_aes_ctr() {
        // First block of AES-128(key = 0) on counter 0 (FIPS-197-style known answer).
        let mut prg = Prg::from_seed([0; 16]);
        let mut out = [0u8; 16];
        prg.fill_bytes(&mut out);
        assert_eq!(
            out,
            [
                0x66, 0xe9, 0x4b, 0xd4, 0xef, 0x8a, 0x2c, 0x3b, 0x88, 0x4c, 0xfa, 0x59, 0xca, 0x34,
                0x2b, 0x2e
            ]
        );
    }

    #[test]
    fn keystream_is_aes_ctr_across_refills() {
        // Nine buffers and a bit, against AES-128 of the little-endian counters block by
        // block (the buffer is encrypted in place: this checks its block order and counters).
        let seed = [0x5a; 16];
        let mut prg = Prg::from_seed(seed);
        // Reads of every kind: inside the buffer, across refills, and long ones encrypted in
        // place (from an empty buffer, with a partial block after them).
        let len = 9 * 16 * BUFFER_BLOCKS + 5;
        let mut out = vec![0u8; len];
        let mut at = 0;
        for take in [
            7,
            16 * BUFFER_BLOCKS - 7,
            3 * 16 * BUFFER_BLOCKS + 9,
            1,
            16 * BUFFER_BLOCKS,
        ] {
            prg.fill_bytes(&mut out[at..at + take]);
            at += take;
        }
        prg.fill_bytes(&mut out[at..]);
        let cipher = Aes128::new(&seed.into());
        let mut expected = Vec::with_capacity(len + 16);
        for i in 0..len.div_ceil(16) as u128 {
            let mut block: aes::Block = i.to_le_bytes().into();
            cipher.encrypt_block(&mut block);
            expected.extend_from_slice(&block);
        }
        assert_eq!(out, expected[..len]);
    }

    #[test]
    fn uniform_below_stays_below_and_covers() {
        let mut prg = Prg::from_os_entropy();
        let mut seen = [false; 7];
        for _ in 0..1000 {
            let x = prg.uniform_below(7);
            seen[x as usize] = true;
        }
        assert!(seen.iter().all(|&s| s));
        assert!((0..1000).all(|_| prg.uniform_below(u64::MAX) < u64::MAX));
        assert!((0..1000).all(|_| prg.uniform_below(1) == 0));
    }
}
