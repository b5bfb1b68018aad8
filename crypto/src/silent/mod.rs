//! Silent oblivious transfer: Ferret random correlated OT ([`ferret`]) and what is built on it —
//! chosen-message 1-out-of-2 OT of 128-bit strings, 1-out-of-N OT of short messages, correlated
//! OT modulo any `m < 2^62`, and boolean AND triples ([`Duplex`]).
//!
//! A silent COT costs 0.037 bytes of traffic with [`Params::FERRET`] and 0.31 with
//! [`Params::FERRET_COMPACT`] (the half-tree's one block per level, amortised over its bin;
//! measured, `docs/PERFORMANCE.md`) instead of IKNP's 16; everything derived here adds only what
//! the derivation must send (choice corrections, ciphertexts).
//!
//! Derivations from a random COT `(q, t = q ⊕ b·Δ)` (`b = lsb t`), with `H` the tweakable
//! fixed-key hash under a fresh tweak per COT (both sides draw tweaks in the same order):
//! - **chosen 1-of-2** (Beaver's derandomisation): the receiver sends `e = c ⊕ b`, the sender
//!   `y_j = m_j ⊕ H(q ⊕ (j ⊕ e)·Δ)`; the receiver outputs `y_c ⊕ H(t)`.
//! - **1-of-N**, `N = 2^ν`, `ℓ`-bit messages, `N·ℓ ≤ 128` (Naor–Pinkas from `ν` 1-of-2 OTs with a
//!   PRF per key): from `ν` COTs the sender holds key pairs `(H(q_i), H(q_i ⊕ Δ))`, the receiver
//!   one key per pair; the pad of message `x` is `⊕_i F(k_i^{x_i ⊕ e_i}, x)` with
//!   `F(k, x) = bits [xℓ, xℓ + ℓ)` of `k` (a PRF on the domain `[0, N)` since each key is a fresh
//!   hash output used for one OT only).
//! - **correlated mod `m`**: the receiver sends `e = c ⊕ b`; pads `k_j = ⌊H(q ⊕ (j ⊕ e)·Δ)·m /
//!   2^128⌋`; the sender outputs `−k_0` and sends `y = x + k_0 − k_1 mod m`; the receiver outputs
//!   `k_c + c·y`, so the two outputs sum to `c·x mod m`. Several moduli per OT (one choice bit,
//!   one pad each) serve a multiplexer of values in two rings.
//! - **AND triples** (no traffic beyond the COTs): a COT in each direction gives random OTs
//!   `(m_0, m_1)`, `m_b`; then `x_A = m_0 ⊕ m_1`, `y_B = b`, `x_A·y_B = m_0 ⊕ m_b`, and the
//!   same the other way; `z = x_A y_A ⊕ x_B y_B ⊕ (cross terms)`. With `ℓ`-bit random OTs
//!   (bit `l` of each hashed pad) the same two COTs give `ℓ` triples sharing their first operand
//!   (the choice bits): [`Duplex::and_shared`] ANDs one value with `ℓ` others at half the COTs
//!   and `(1 + ℓ)/2ℓ` of the openings of `ℓ` plain ANDs.
//!
//! Pads are hashed in blocks of a few hundred, so a derivation's scratch stays in L1 whatever
//! its batch; the 1-of-N sender takes its messages packed ([`Sender::send_one_of_n_packed`]).
//!
//! # Message kinds
//! This module owns `0x0320..=0x033f` of the OT area ([`kind`]); the OT backend of
//! [`crate::nonlinear`] owns `0x0340..=0x035f`.
//!
//! # Security
//! Semi-honest, 128-bit computational (see [`ferret`] for the LPN parameters). Pads hash each
//! COT once, under a tweak with [`ferret`]'s `SILENT_DOMAIN` bit and a per-session serial, so no
//! tweak is reused with related inputs; correlated-OT pads mod `m` are within statistical
//! distance `m / 2^128` of uniform.

mod and;
mod derived;
pub mod ferret;
mod pads;
#[cfg(test)]
mod tests;

pub use and::{BitTriples, Duplex, SharedTriples};
pub use ferret::{Lpn, Params, Receiver, Sender};

/// Message kinds of silent OT (`0x0320..=0x033f`).
pub mod kind {
    /// Ferret set-up: the public LPN matrix seed.
    pub const SEED: u16 = 0x0320;
    /// Ferret: the half-tree level messages of one chunk of trees.
    pub const TREES: u16 = 0x0321;
    /// Choice corrections `c ⊕ b` of derived OTs (receiver → sender).
    pub const FIX: u16 = 0x0330;
    /// Chosen 1-of-2 OT: the sender's two ciphertexts per OT.
    pub const CHOSEN: u16 = 0x0331;
    /// 1-of-N OT: the sender's `N·ℓ` ciphertext bits per OT.
    pub const ONE_OF_N: u16 = 0x0332;
    /// Correlated OT mod `m`: the sender's corrections.
    pub const CORRELATED: u16 = 0x0333;
    /// Beaver AND: one party's openings `(x ⊕ a, y ⊕ b)`.
    pub const AND: u16 = 0x0334;
}
