//! Portable engine: the RustCrypto `aes` crate (constant-time bit-sliced software AES, or the
//! CPU's AES instructions when that crate detects them).

use aes::Aes128;
use aes::cipher::{BlockCipherEncrypt, KeyInit};

/// Blocks converted and encrypted per call of the `aes` crate.
const CHUNK: usize = 64;

/// AES-128 with a fixed key, on `u128` blocks (little-endian bytes).
#[derive(Clone)]
pub(super) struct Cipher(Aes128);

impl Cipher {
    pub(super) fn new(key: [u8; 16]) -> Self {
        Self(Aes128::new(&key.into()))
    }

    /// Encrypts every block in place.
    pub(super) fn encrypt(&self, blocks: &mut [u128]) {
        let mut buf = [aes::Block::default(); CHUNK];
        for chunk in blocks.chunks_mut(CHUNK) {
            let buf = &mut buf[..chunk.len()];
            for (b, x) in buf.iter_mut().zip(chunk.iter()) {
                *b = x.to_le_bytes().into();
            }
            self.0.encrypt_blocks(buf);
            for (x, b) in chunk.iter_mut().zip(buf.iter()) {
                *x = u128::from_le_bytes((*b).into());
            }
        }
    }
}
