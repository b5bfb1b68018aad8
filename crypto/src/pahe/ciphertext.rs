//! Ciphertexts and plaintexts, and the slot encoding.

use rayon::prelude::*;

use super::error::PaheError;
use super::params::Params;
use super::poly;
use crate::secret::{redacted_debug, zeroize_on_drop};

/// A BFV ciphertext `(c0, c1)` at level `ℓ` (modulus `q_1 ⋯ q_ℓ`), both halves in the NTT domain
/// of every RNS prime, limb-major (`ℓ·N` words each).
#[derive(Clone, PartialEq, Eq)]
pub struct Ciphertext {
    pub(crate) params: Params,
    pub(crate) level: usize,
    pub(crate) c0: Vec<u64>,
    pub(crate) c1: Vec<u64>,
}

impl std::fmt::Debug for Ciphertext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ciphertext")
            .field("level", &self.level)
            .finish_non_exhaustive()
    }
}

impl Ciphertext {
    /// The level `ℓ`: the number of RNS primes of the modulus this ciphertext lives under.
    pub fn level(&self) -> usize {
        self.level
    }

    /// The parameter set.
    pub fn params(&self) -> &Params {
        &self.params
    }
}

/// A fresh secret-key ciphertext at the top level whose uniform half `c1` is given by the 16-byte
/// seed it is expanded from: half the size of a [`Ciphertext`] on the wire.
#[derive(Clone, PartialEq, Eq)]
pub struct SeededCiphertext {
    pub(crate) params: Params,
    /// `k` for the DFT HomConv's uploads; lower for coefficient-encoded ones.
    pub(crate) level: usize,
    pub(crate) seed: [u8; 16],
    pub(crate) c0: Vec<u64>,
}

impl std::fmt::Debug for SeededCiphertext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeededCiphertext").finish_non_exhaustive()
    }
}

impl SeededCiphertext {
    /// The full ciphertext: `c1` expanded from the seed.
    pub fn expand(&self) -> Ciphertext {
        let inner = &self.params.inner;
        Ciphertext {
            params: self.params.clone(),
            level: self.level,
            c0: self.c0.clone(),
            c1: poly::uniform_from_seed(self.seed, &inner.q[..self.level], inner.n),
        }
    }

    /// The level `ℓ` the ciphertext was encrypted at.
    pub fn level(&self) -> usize {
        self.level
    }
}

/// A plaintext polynomial of `Z_p[X]/(X^N + 1)` (coefficient domain, values `< p`), holding
/// `N` slots (see [`Params::encode`]).
#[derive(Clone, PartialEq, Eq)]
pub struct Plaintext {
    pub(crate) coeffs: Vec<u64>,
}

redacted_debug!(Plaintext);
// A decrypted plaintext holds the client's masked shares; an encoded one its input.
zeroize_on_drop!(Plaintext { coeffs });

impl Plaintext {
    /// The coefficients `< p`.
    pub fn coeffs(&self) -> &[u64] {
        &self.coeffs
    }
}

/// A plaintext prepared once for products with many ciphertexts: its centred lift in the NTT
/// domain of every RNS prime (`k·N` words), so `ct ⊙ pt` costs only pointwise work.
#[derive(Clone, PartialEq, Eq)]
pub struct PreparedPlaintext {
    pub(crate) ntt: Vec<u64>,
}

redacted_debug!(PreparedPlaintext);
// The server's prepared filters are its weights.
zeroize_on_drop!(PreparedPlaintext { ntt });

impl Params {
    /// Encodes `N` slot values `< p` into a plaintext polynomial: slot `r·N/2 + j` is the
    /// evaluation at `ζ^(±3^j)` (inverse negacyclic NTT mod `p`), so polynomial products are
    /// slot-wise products and `X ↦ X^(3^k)` rotates each row of `N/2` slots left by `k`.
    ///
    /// # Errors
    /// [`PaheError::Slots`] unless `slots.len() == N` and every value is `< p`.
    pub fn encode(&self, slots: &[u64]) -> Result<Plaintext, PaheError> {
        let inner = &self.inner;
        let p = inner.p.q();
        if slots.len() != inner.n || slots.iter().any(|&v| v >= p) {
            return Err(PaheError::Slots {
                expected: inner.n,
                p,
                len: slots.len(),
            });
        }
        let mut coeffs = vec![0u64; inner.n];
        for (&v, &pos) in slots.iter().zip(&inner.slot_pos) {
            coeffs[pos as usize] = v;
        }
        inner.p_plan.inverse(&mut coeffs);
        Ok(Plaintext { coeffs })
    }

    /// The slot values of a plaintext (inverse of [`Params::encode`]).
    pub fn decode(&self, pt: &Plaintext) -> Vec<u64> {
        let inner = &self.inner;
        let mut ev = pt.coeffs.clone();
        inner.p_plan.forward(&mut ev);
        inner.slot_pos.iter().map(|&pos| ev[pos as usize]).collect()
    }

    /// A plaintext from its coefficients.
    ///
    /// # Errors
    /// [`PaheError::Slots`] unless there are `N` coefficients `< p`.
    pub fn plaintext_from_coeffs(&self, coeffs: Vec<u64>) -> Result<Plaintext, PaheError> {
        let p = self.p();
        if coeffs.len() != self.n() || coeffs.iter().any(|&v| v >= p) {
            return Err(PaheError::Slots {
                expected: self.n(),
                p,
                len: coeffs.len(),
            });
        }
        Ok(Plaintext { coeffs })
    }

    /// Prepares a plaintext for [`super::Evaluator::mul_plain_assign`]: centred lift to every
    /// RNS prime and forward NTT (done once per filter, reused for every ciphertext).
    pub fn prepare(&self, pt: &Plaintext) -> PreparedPlaintext {
        self.prepare_at(pt, self.inner.q.len())
    }

    /// [`Params::prepare`] for products at `level` and below only: the first `level` limbs
    /// (the coefficient backend's kernels, whose inputs live below the top level).
    ///
    /// # Panics
    /// If `level` is not in `1..=k` (levels come from the parameters).
    pub fn prepare_at(&self, pt: &Plaintext, level: usize) -> PreparedPlaintext {
        let inner = &self.inner;
        assert!((1..=inner.q.len()).contains(&level), "level {level}");
        let n = inner.n;
        let p = inner.p.q();
        let mut ntt = vec![0u64; level * n];
        ntt.par_chunks_mut(n)
            .zip(inner.q.par_iter().zip(inner.plans.par_iter()))
            .for_each(|(limb, (m, plan))| {
                poly::lift_centered(&pt.coeffs, p, m, limb);
                plan.forward(limb);
            });
        PreparedPlaintext { ntt }
    }

    /// `Δ_ℓ · m` in the NTT domain of the first `level` primes.
    pub(crate) fn scaled_ntt(&self, pt: &Plaintext, level: usize) -> Vec<u64> {
        let inner = &self.inner;
        let n = inner.n;
        let delta = &self.level(level).delta;
        let mut out = vec![0u64; level * n];
        out.par_chunks_mut(n)
            .zip(inner.q[..level].par_iter())
            .zip(delta.par_iter().zip(inner.plans[..level].par_iter()))
            .for_each(|((limb, m), (&d, plan))| {
                let d_shoup = m.shoup(d);
                for (o, &c) in limb.iter_mut().zip(&pt.coeffs) {
                    *o = m.mul_shoup(c, d, d_shoup);
                }
                plan.forward(limb);
            });
        out
    }
}

/// Checks that `ct` belongs to `params` and has a valid level and shape.
pub(crate) fn check(params: &Params, ct: &Ciphertext) -> Result<(), PaheError> {
    if ct.params != *params {
        return Err(PaheError::ParamsMismatch {
            expected: params.fingerprint(),
            found: ct.params.fingerprint(),
        });
    }
    let k = params.max_level();
    let n = params.n();
    if ct.level == 0 || ct.level > k || ct.c0.len() != ct.level * n || ct.c1.len() != ct.c0.len() {
        return Err(PaheError::Level {
            expected: k,
            found: ct.level,
        });
    }
    Ok(())
}
