//! Garbled circuits: free-XOR, half-gates (two ciphertexts per AND gate), point-and-permute,
//! 128-bit labels under a caller-supplied global Δ.
//!
//! - [`circuit`]: circuits are written once against a [`Builder`] and compiled into AND layers;
//!   interpreters: plain evaluation and gate counting there, garbling and evaluation in
//!   [`half_gates`].
//! - [`half_gates`]: the garbler and evaluator of Zahur–Rosulek–Evans ("Two halves make a whole",
//!   EUROCRYPT 2015, Fig. 2), hashing with the fixed-key tweakable hash of Guo–Katz–Wang–Yu
//!   ([`bunet_kernels::aes_hash`]) one whole layer of many instances at a time, streaming the
//!   garbled tables through a [`crate::channel::Channel`] in bounded frames.
//! - [`bristol`]: a reader of Bristol Fashion circuit files.
//! - [`fixed_point`]: the protocol circuits over shares in Z_p (ReLU, rescaling, 2×2 max pool,
//!   two-class argmax, each with re-sharing) and their two-party batch API.
//!
//! # Security
//! Semi-honest security of Yao's protocol with half-gates, assuming the hash is tweakable
//! circular correlation robust (fixed-key AES as an ideal permutation). Δ must have its least
//! significant bit set (point-and-permute) and must never be revealed; every AND gate garbled
//! under one Δ needs its own tweak, which [`Garbler`] and [`Evaluator`] guarantee by counting
//! gates over their whole lifetime — use one garbler per Δ. The evaluator's input labels come
//! from correlated oblivious transfer under the same Δ (receiver gets `L0 ⊕ b·Δ`).

pub mod bristol;
pub mod circuit;
pub mod fixed_point;
pub mod half_gates;
#[cfg(test)]
mod tests;

pub use circuit::{Bit, Builder, Circuit, GateCounts, Party};
pub use half_gates::{Delta, Evaluator, Garbler};

/// Message kinds of the garbled-circuit protocol (area 0x02xx).
pub mod kind {
    /// Garbler → evaluator: garbler input labels and garbled tables of one sub-batch, in frames
    /// of at most [`super::half_gates::FRAME_BYTES`].
    pub const GARBLED: u16 = 0x0201;
    /// Evaluator → garbler: colour bits of the outputs the garbler learns.
    pub const OUTPUT_COLOURS: u16 = 0x0202;
    /// Garbler → evaluator: decoding bits of the outputs of one sub-batch that the evaluator
    /// learns.
    pub const OUTPUT_DECODING: u16 = 0x0203;
}

/// Errors of garbled-circuit construction, inputs and peer data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GcError {
    /// Δ must have least significant bit 1 (point-and-permute).
    #[error("delta has least significant bit 0: expected 1 (point-and-permute)")]
    DeltaLsbZero,
    /// An input slice has the wrong length.
    #[error("{what}: expected {expected} entries, found {found}")]
    InputLength {
        /// What was measured.
        what: &'static str,
        /// The length required by the circuit and the instance count.
        expected: usize,
        /// The length given.
        found: usize,
    },
    /// A value is not a residue mod p.
    #[error("value {value} is not below the modulus {p}")]
    ValueOutOfRange {
        /// The rejected value.
        value: u64,
        /// The modulus.
        p: u64,
    },
    /// Fixed-point parameters are unusable.
    #[error("invalid fixed-point parameters: {0}")]
    InvalidParams(&'static str),
    /// A Bristol circuit file is malformed.
    #[error("bristol circuit, line {line}: {reason}")]
    Bristol {
        /// 1-based line number.
        line: usize,
        /// What was expected.
        reason: String,
    },
    /// The peer's data is inconsistent with the protocol (wrong frame size, nonzero padding).
    #[error("malformed garbled-circuit message: {0}")]
    Malformed(#[source] crate::wire::WireError),
}

/// Reports a message that did not decode as a garbled-circuit protocol error (the GC's callers
/// tell a garbled-circuit peer fault from other wire faults); other errors pass unchanged.
pub(crate) fn malformed(e: crate::Error) -> crate::Error {
    match e {
        crate::Error::Wire(w) => GcError::Malformed(w).into(),
        other => other,
    }
}
