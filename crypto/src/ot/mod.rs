//! Oblivious transfer: base OT on ristretto255 and IKNP OT extension.
//!
//! - [`base`]: Masny–Rindal endemic 1-out-of-2 random OT over the Ristretto group (128 of them
//!   seed an extension session).
//! - [`Sender`] / [`Receiver`]: one IKNP OT-extension session per direction, set up once with
//!   base OTs and then extended as often as needed, in bounded batches over a
//!   [`Channel`](crate::channel::Channel). One session delivers
//!   * correlated OT with a global `Δ` chosen by the sender (the free-XOR `Δ` of a garbled
//!     circuit can be this `Δ`),
//!   * random OT (correlation broken by a tweakable correlation-robust hash),
//!   * chosen-message OT of 128-bit strings and of values modulo `p`,
//!   * additively correlated OT modulo `p` (Gilboa multiplication, see [`crate::triples`]).
//!
//! # Security
//! Semi-honest (honest-but-curious) parties, static corruption. Base OT: endemic OT of Masny and
//! Rindal (CCS 2019) in the random-oracle model, CDH hard in ristretto255; SHA-512 is the random
//! oracle. Extension: IKNP (Ishai, Kilian, Nissim, Petrank, CRYPTO 2003) with κ = 128 base
//! OTs; AES-128 is a PRG in counter mode for the columns and fixed-key AES is modelled as a
//! tweakable circular correlation-robust hash (Guo, Katz, Wang, Yu, S&P 2020) to break the
//! correlation. The receiver's choices are hidden from the sender by the pseudorandom pads of
//! the columns it sends; the message the receiver did not choose is hidden by the hash, as long
//! as `Δ` stays secret (128-bit computational security; mod-`p` pads are within statistical
//! distance `p / 2^128` of uniform). Nothing here resists a malicious party: a deviating peer can make outputs wrong or learn a
//! bit of `Δ` per wrong column, which is outside the semi-honest model the design fixes.

pub mod base;
mod hash;
mod iknp;
pub(crate) mod transpose;

pub use iknp::{BATCH, Receiver, Sender};
pub use transpose::transpose_128;

/// Message kinds of the OT area (0x03xx).
pub mod kind {
    /// Base OT: the sender's public point.
    pub const BASE_SENDER: u16 = 0x0300;
    /// Base OT: the receiver's pairs of points.
    pub const BASE_RECEIVER: u16 = 0x0301;
    /// IKNP: the receiver's masked columns for one batch.
    pub const EXTEND: u16 = 0x0310;
    /// Chosen-message OT of 128-bit strings: the sender's two ciphertexts per OT.
    pub const CHOSEN: u16 = 0x0311;
    /// OT modulo `p`: the sender's ciphertexts or corrections, `⌈log2 p⌉` bits each.
    pub const MOD_P: u16 = 0x0312;
}

/// [`OtError::LengthMismatch`] unless `found == expected`.
pub(crate) fn check_len(what: &'static str, expected: usize, found: usize) -> Result<(), OtError> {
    if expected != found {
        return Err(OtError::LengthMismatch {
            what,
            expected,
            found,
        });
    }
    Ok(())
}

/// Why an OT or triple protocol step refused its inputs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OtError {
    /// Two inputs that must have equal lengths do not.
    #[error("{what}: expected {expected} items, found {found}")]
    LengthMismatch {
        /// Which input.
        what: &'static str,
        /// The length required.
        expected: usize,
        /// The length given.
        found: usize,
    },
    /// The modulus is outside the supported range.
    #[error("modulus {p} is outside the supported range 2..2^62")]
    ModulusOutOfRange {
        /// The modulus given.
        p: u64,
    },
    /// A value is not reduced modulo `p`.
    #[error("{what}: value {found} is not below the modulus {p}")]
    NotReduced {
        /// Which input.
        what: &'static str,
        /// The value found.
        found: u64,
        /// The modulus.
        p: u64,
    },
}

/// Packs choice bits: bit `k` of word `w` is `choices[128 w + k]`; the last word is padded with
/// zeros.
pub fn pack_choices(choices: &[bool]) -> Vec<u128> {
    choices
        .chunks(128)
        .map(|c| {
            c.iter()
                .enumerate()
                .fold(0u128, |w, (k, &b)| w | (u128::from(b) << k))
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests;
