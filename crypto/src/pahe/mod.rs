//! Packed additive homomorphic encryption (PAHE): a BFV-style RLWE scheme with slot packing,
//! plaintext–ciphertext Hadamard products, slot rotations, modulus switching and homomorphic
//! secret sharing (the seed's §4.1 PAHE and §4.3 HomConv; Brakerski 2012, Fan–Vercauteren 2012).
//!
//! # The scheme
//! * Ring `R_q = Z_q[X]/(X^N + 1)`, `N` a power of two (4096..=32768 for secure sets), `q` a
//!   product of NTT-friendly RNS primes `q_1 … q_k` (each `≡ 1 mod 2N`, at most 62 bits; the
//!   presets use primes of 37 to 50 bits, which the kernels' IFMA52 path serves fastest).
//! * Plaintext modulus `p`, a prime `≡ 1 mod 2N`: a plaintext polynomial packs `N` slots of
//!   `Z_p` (CRT / "batching"). Slot values are the evaluations of the plaintext polynomial at the
//!   primitive `2N`-th roots of unity mod `p`; slot `r·N/2 + j` (row `r ∈ {0,1}`, column
//!   `j < N/2`) is the evaluation at `ζ^(±3^j)` (`+` for row 0). Products of plaintext
//!   polynomials are therefore slot-wise (Hadamard) products, and the Galois automorphism
//!   `X ↦ X^(3^k)` rotates both rows left by `k`.
//! * Secret `s` uniform ternary; errors centred binomial with `η = 21` (`σ ≈ 3.24`, `|e| ≤ 21`).
//! * A ciphertext `(c0, c1)` at level `ℓ` (modulus `Q_ℓ = q_1 ⋯ q_ℓ`) decrypts to
//!   `m = round(p·(c0 + c1·s)/Q_ℓ) mod p`; it is stored in the NTT (evaluation) domain of every
//!   RNS prime, so plaintext products are pointwise and automorphisms are permutations.
//! * All randomness comes from [`crate::prg::Prg`]. A fresh secret-key ciphertext carries its
//!   uniform half `c1 = a` as the 16-byte PRG seed it was expanded from ([`SeededCiphertext`]),
//!   which halves the upload.
//!
//! # Rotations
//! BFV's Galois group acts on the slots as a `2 × (N/2)` hypercube. [`Evaluator::rotate_rows`]
//! implements **row rotation**: both halves of `N/2` slots rotate left by `k` independently,
//! `rot(x, k) = (x_k, …, x_{N/2−1}, x_0, …, x_{k−1})` in each row, which is the seed's `rot`
//! applied to each half. [`Evaluator::swap_rows`] exchanges the two halves (`X ↦ X^(2N−1)`).
//! A whole-vector rotation of `N` slots is not a single automorphism and is not offered.
//!
//! # Key switching
//! Galois keys use RNS digit decomposition with one digit per RNS prime (no special prime):
//! `c1 = Σ_i [c1]_{q_i} · g_i (mod Q)` with `g_i` the CRT idempotent of `q_i`, each digit centred in
//! `(−q_i/2, q_i/2]`. A key switch costs `ℓ²` NTTs at level `ℓ` and adds noise of at most
//! `ℓ·N·(q_max/2)·η`, about 70 bits at the presets — far below the budget of a fresh ciphertext
//! at the top level. Rotate before switching the modulus down.
//!
//! # Circuit privacy and the return path
//! Before a ciphertext leaves the server, [`Evaluator::finalize_for_return`] (1) subtracts the
//! server's mask (HSS `Share`), (2) adds a fresh public-key encryption of zero whose `c0` error is
//! a smooth flood (a centred sum of three uniforms of `[0, 2^f)`) — re-randomisation makes
//! `(c0, c1)` fresh under RLWE and the flood hides the old noise statistically: `2^f ≥
//! 2^63 · B` ([`FLOOD_MARGIN_BITS`]), where `B` bounds the noise of the worst HomConv
//! ([`Params::flood_bits`]); the Hellinger distances of the returned coefficients add up, so
//! over the `≤ 2^44` coefficients returned for a whole 512³ volume
//! ([`VOLUME_RETURNED_COEFFS_LOG2`]) the statistical distance is at most `2^−40` — and (3)
//! switches the modulus down to the return level
//! ([`Params::return_level`], the smallest that still decrypts with margin in the worst case).
//!
//! Encryption uses the precise scaling `round(Q·m/p)` (not `⌊Q/p⌋·m`), so a plaintext product's
//! noise grows by the plaintext's ℓ1 norm only, without a `p`-sized term.
//!
//! # Coefficient encoding
//! The `coeff` module adds Cheetah's coefficient encoding beside the slots: plaintext
//! coefficients as values, small centred weights, a response carrying only the needed
//! coefficients, its own per-layer flood and upload level (see [`CoeffPlan`]).
//!
//! # Security
//! Every parameter set built by [`Params::new`] is checked against the HomomorphicEncryption.org
//! 128-bit classical table for ternary secrets (max `log2 q` = 109, 218, 438, 881 for
//! `N` = 4096 … 32768); smaller sets exist only through [`Params::insecure_for_tests`].
//! Semi-honest model: the client holds the secret key; the server sees ciphertexts only.

mod bigint;
mod ciphertext;
mod coeff;
mod error;
mod eval;
mod keys;
mod params;
mod poly;
mod wire;

#[cfg(test)]
mod coeff_tests;
#[cfg(test)]
mod tests;

pub use ciphertext::{Ciphertext, Plaintext, PreparedPlaintext, SeededCiphertext};
pub use coeff::{COEFF_WEIGHT_BITS, CoeffPlan, CoeffResponse, CoeffUpload, Selection};
pub use error::{PaheError, PahePrimeRole, ParamError};
pub use eval::{Evaluator, random_mask, reconstruct};
pub use keys::{GaloisKey, GaloisKeys, PublicKey, SecretKey};
pub use params::{
    CBD_ETA, FLOOD_MARGIN_BITS, HOMCONV_MAX_CHANNELS, MAX_PRIMES, Params, RETURN_MARGIN_BITS,
    ROTATION_ALLOWANCE, STATISTICAL_SECURITY_BITS, VOLUME_RETURNED_COEFFS_LOG2, max_log2_q_128,
};
pub use wire::{
    CoeffResponseContext, KIND_CIPHERTEXT, KIND_COEFF_RESPONSE, KIND_COEFF_UPLOAD,
    KIND_GALOIS_KEYS, KIND_PUBLIC_KEY, KIND_SEEDED_CIPHERTEXT, MAX_GALOIS_KEYS,
};
