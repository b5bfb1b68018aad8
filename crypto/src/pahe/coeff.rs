//! Coefficient encoding for convolutions (Cheetah: Huang, Lu, Hong, Ding, USENIX Security 2022,
//! §4.1 "HomConv" and §3.3 on extraction): no slots and no rotations.
//!
//! # Encoding
//! The client's plaintext is a polynomial `m(X) = Σ m_j X^j` whose *coefficients* are the values
//! (mod `p`), encrypted with the precise BFV scaling `round(Q_ℓ·m/p) + e`. The server's weights
//! are a polynomial `w(X)` with small centred integer coefficients (`|w_j| ≤ 2^b`, the layer's
//! public weight bound below), lifted to every RNS prime and transformed once
//! ([`Params::prepare`] lifts centred, so a residue `w mod p` becomes the small signed `w`).
//! `ct ⊙ w` is then the negacyclic product `m·w` under encryption, computed pointwise in the NTT
//! domain of the RNS primes; the convolution layouts (in `bunet-unet`) place input and kernel so
//! that chosen coefficients of the product are the convolution's outputs.
//!
//! # Noise
//! With `c0 + c1·s = Q·m/p + ε` (`|ε| ≤ η + 1/2`), `(c0 + c1·s)·w = Q·(m·w)/p + ε·w`, and
//! `Q·(m·w)/p ≡ Q·[m·w]_p/p (mod Q)`, so a product's noise is `|ε·w|_∞ ≤ ||w||_1·(η + 1/2)`
//! (not `N·p/2` as for slot encoding). Summed over the products of one output with `t` weight
//! terms in all (`t = ` ℓ1 count of every kernel polynomial that enters it), each
//! `|w| ≤ W = min(2^b, (p − 1)/2)` for the layer's public weight bound `b`, the noise before
//! the return is at most `B = t·W·(η + 1/2) + 1/2` (the last term: the HSS mask, also scaled
//! precisely; `(p − 1)/2` because the weights are lifted centred from `Z_p`).
//!
//! # The weight bound: public, per layer
//! The flood hides the noise `μ` only if it is sized for a bound on `|μ|` that the client may
//! know, so the bound must not depend on the weights: were it the weights' actual magnitude, the
//! plan (upload level, flood, return level, all visible on the wire) would tell the client how
//! large the server's weights are. `b` is therefore a public function of the layer's position in
//! the architecture, fixed before any model is seen (in `bunet-unet`,
//! `secure::homconv::coeff_weight_bits`): [`COEFF_WEIGHT_BITS`] (`2^16`, 16.0 at 12 fractional
//! bits) for every conv but the model's first, and `2^24` (the quantiser's largest weight: never
//! refused) for the first, the one conv into which calibration folds the activation scale
//! `2^k` (`k ≤ 4` in the harness), by the quantisation conventions. A model whose other convs exceed `2^16`
//! is refused (the DFT backend takes it). The first conv pays for its wider bound with 8 more
//! flood bits, which its few input channels make cheap (the layout search picks the level and
//! the packing under the bound). The circuit-privacy argument below is per returned
//! coefficient with that coefficient's own `B`, so per-layer bounds compose over a volume as a
//! single bound does.
//!
//! # Return path and circuit privacy
//! [`Evaluator::finalize_coeffs`]: (1) HSS `Share` on the needed coefficients only (subtract
//! `round(Q·M/p)` for a uniform mask `M` placed at the [`Selection`]); (2) re-randomise with a
//! public-key encryption of zero whose `c0` error is the smooth flood (a centred sum of three
//! uniforms of `[0, 2^f)`, `|flood| ≤ 3·2^(f−1)`), `f = ⌈log2 B⌉ + 63`
//! ([`CoeffPlan::flood_bits`]); (3) switch the modulus down to the
//! smallest level that still decrypts ([`CoeffPlan::return_level`]); (4) send `a = c1` whole
//! (coefficient domain, each coefficient rounded at random to its high bits,
//! [`CoeffPlan::a_drop_bits`]: at q32 6 of the 50 bits go, by a probabilistic bound with
//! failure `≤ 2^-85` per returned coefficient) but of `b = c0` only the needed coefficients,
//! each rounded to its high bits (`round(b_j / 2^t)`, [`CoeffPlan::drop_bits`]: at q32 16 of
//! the 50 bits go, since the rounding error `2^(t−1)` is below the decryption margin).
//!
//! *Why the flood is `2^63·B`:* the flood is `⌊V⌋` for `V` a sum of three continuous
//! uniforms, so shifting it by the integer noise `μ` (`|μ| ≤ B`) is post-processing of
//! shifting `V`; `V`'s density has Fisher information `≈ 4.562/2^(2f)`, so one coefficient's
//! squared Hellinger distance is `≤ μ²·4.562/(8·2^(2f))`; these add up over everything the
//! server returns for a 512³ volume (at most `2^44` noisy coefficients,
//! [`super::VOLUME_RETURNED_COEFFS_LOG2`]: the coefficient backend returns one per output,
//! about `2^34`; the DFT backend's whole ciphertexts at most `2^40.2`), also when the client
//! adapts its inputs, and the statistical distance of the whole transcript from a simulation
//! from the outputs alone is `≤ 1.068·B·2^22/2^f ≤ 2^-40` (the full derivation is at the
//! private `params::flood_exponent`). A uniform flood would need `2^84·B` (a union bound over
//! `2^44` coefficients at `2^-84` each): 20.4 more bits on the upload modulus. The `a` half
//! is a fresh RLWE sample after re-randomisation (`a_pk·u + e_2` added, `u` secret), so it
//! carries nothing of `w` under RLWE. The same exponent rule sizes the DFT backend's flood
//! ([`Params::flood_bits`]).
//!
//! *Why the unneeded coefficients of `b` must not be sent:* they hold the other coefficients
//! of `m·w` — partial and cross-channel sums of products of the client's input with single
//! kernel taps — masked by nothing (the HSS mask covers only the outputs) and flooded only
//! statistically against the noise, not against the message: the client would decrypt
//! linear functions of the weights it could solve for. Cheetah removes them by extracting LWE
//! samples of the needed coefficients (or zeroing the rest before the return); sending the
//! whole `a` with a subset of `b` is that extraction without re-packing: each needed
//! coefficient `j` decrypts as `b_j + (a·s)_j`, the LWE sample `(b_j, coefficients of a
//! rotated for j)` Cheetah would send, sharing one `a` among all of them.
//!
//! # Encrypted weights: the roles swapped ([`Params::coeff_share_plan`])
//! The same operations serve a second HomConv in which the *server* encrypts: it holds a key
//! pair of its own (fresh per session), sends `Enc_S(w)` — its kernel polynomials, coefficient
//! encoded exactly as above but encrypted ([`SecretKey::encrypt_coeffs`], seeded, at the plan's
//! upload level) — once per layer and session, and the client computes
//! `Σ_g Enc_S(w_g) ⊙ x_g` with its own share `x` lifted centred as the plaintext
//! ([`Params::prepare_at`]), then [`Evaluator::finalize_coeffs`] with the *server's* public key
//! (mask `M`, re-randomisation, flood, switch, extraction); the server decrypts
//! ([`SecretKey::decrypt_coeffs`]) `conv(x) − M` and the client keeps `M`. Per run only the
//! responses travel. Mirrored derivation:
//! - *Noise.* `c0 + c1·s_S = Q·w/p + ε` with `|ε| ≤ η + 1/2`, so the product with the centred
//!   share is `Q·(w·x)/p + ε·x` and its noise is `|ε·x|_∞ ≤ t·X·(η + 1/2)` for `t` the number
//!   of share coefficients entering a product sum (every coefficient of `x` meets one of `ε`'s
//!   at each output) and `X = (p − 1)/2`: the bound of the section above with the share in the
//!   weights' place — [`Params::coeff_plan`] with the bound `(p − 1)/2`, one planner for both
//!   modes. It no longer depends on the weights, so this mode takes any weight (no public
//!   weight bound), but it is larger: at the ANCHORS layer in one tile (`t = 64·58·58`, q32)
//!   `B ≈ 2^53`, `f = 117` (the layout's tiles of 28×19 outputs: `t = 64·30·21`, `f = 114`),
//!   and the upload level is four primes (173 bits) instead of three.
//! - *What the client sees:* RLWE ciphertexts under the server's key (seeded, fresh), nothing
//!   else of `w`: semantic security of RLWE at the presets' 128-bit parameters (the same
//!   HomomorphicEncryption.org check; the modulus is a preset's).
//! - *What the server sees:* per returned coefficient `j` its decryption `[w·x]_j − M_j` plus
//!   the flooded noise `(ε·x)_j + flood_j` — `M_j` uniform hides the value, the smooth flood
//!   `2^f ≥ 2^63·B` hides `ε·x` (which depends on the client's share) with the same Hellinger
//!   sum as above, `≤ 2^-40` over the `≤ 2^44` coefficients of a volume; `c1` is
//!   `Σ a_g·x_g + a_pk·u + e_2`, fresh under RLWE in the client's `u`, so it tells nothing of
//!   `x`; the unneeded coefficients of `b` are not sent (they would carry `w·x` unmasked).
//!
//! # Parameters
//! The presets (`N = 8192`, primes of 50 + 41 + 41 + 41 bits at q32 and 50 + 37 + 37 + 41 at
//! q24, 128-bit by the HomomorphicEncryption.org table) serve both backends with one key
//! pair. The coefficient backend uploads at the smallest level whose modulus carries its
//! flood (three primes, 132 bits at q32 and 124 at q24, for the layers whose ℓ1 count is up
//! to about `2^11`; four beyond, [`Params::coeff_plan`]) and returns at one prime
//! (`q_1 ≈ 2^50`): the re-randomised flood leaves invariant noise `≤ 2^-3`, and switching to
//! `q_1` adds `≤ (3/2)·p·(N+1)/q_1 ≈ 2^-4.4` at q32.

use rayon::prelude::*;
use zeroize::Zeroize;

use super::ciphertext::{Ciphertext, SeededCiphertext};
use super::error::{PaheError, ParamError};
use super::eval::Evaluator;
use super::keys::{PublicKey, SecretKey, precise_offsets};
use super::params::{CBD_ETA, Params, RETURN_MARGIN_BITS, flood_exponent};
use super::poly;
use crate::prg::Prg;

/// The public bound on the server's integer weights of the coefficient backend for every conv
/// but a model's first: `|w| ≤ 2^16` (16.0 at 12 fractional bits, 64.0 at 10). The bound is a
/// parameter of [`Params::coeff_plan`], chosen per layer from the architecture alone (module
/// docs, "The weight bound"); it enters the flood, so a layer beyond its bound is refused
/// rather than under-flooded.
pub const COEFF_WEIGHT_BITS: u32 = 16;

/// The coefficients of a product the client needs: distinct indices `< N`, in increasing
/// order. Both parties derive it from the public layout; it never travels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    indices: Vec<u32>,
}

impl Selection {
    /// A selection of `indices` for `params`.
    ///
    /// # Errors
    /// [`PaheError::Slots`] unless the indices are strictly increasing and below `N`.
    pub fn new(params: &Params, indices: Vec<u32>) -> Result<Self, PaheError> {
        let n = params.n();
        let ok = indices.windows(2).all(|w| w[0] < w[1])
            && indices.last().is_none_or(|&i| (i as usize) < n);
        if !ok {
            return Err(PaheError::Slots {
                expected: n,
                p: params.p(),
                len: indices.len(),
            });
        }
        Ok(Self { indices })
    }

    /// The indices.
    pub fn indices(&self) -> &[u32] {
        &self.indices
    }

    /// Number of indices.
    pub fn len(&self) -> usize {
        self.indices.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }
}

/// The public noise plan of one coefficient-encoded product sum (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoeffPlan {
    /// The level the client encrypts (uploads) at.
    pub upload_level: usize,
    /// `f`: the flood is a centred sum of three uniforms of `[0, 2^f)` (`|flood| ≤ 3·2^(f−1)`).
    pub flood_bits: u32,
    /// The level the response is switched down to.
    pub return_level: usize,
    /// Low bits of each returned `b` coefficient dropped before sending (only at return level
    /// 1): `t = ⌊log2 q_1 − log2 p⌋ − 2`, so the rounding (`≤ 2^(t−1)`) adds at most `2^-3` to
    /// the invariant noise, which the plan keeps below `2^-3`: decryption stays correct
    /// (`< 1/2`) with one bit to spare.
    pub drop_bits: u32,
    /// Low bits of each coefficient of `a` (sent in the coefficient domain) dropped by
    /// randomised rounding before sending (only at return level 1; see
    /// [`Params::coeff_plan`]).
    pub a_drop_bits: u32,
}

impl Params {
    /// The plan for outputs whose kernel polynomials hold `l1_terms` weights in all, each
    /// `|w| ≤ 2^weight_bits` (the layer's public bound, module docs): noise bound
    /// `B = l1_terms·W·(η + 1/2) + 1/2` with `W = min(2^weight_bits, (p − 1)/2)` (the weights
    /// are lifted centred from `Z_p`, so no bound beyond `(p − 1)/2` is needed), flood
    /// `f = ⌈log2 B⌉ + 63`, then the smallest upload level whose worst-case invariant noise after
    /// flooding (plus the zero-encryption's own `2Nη + η`) and switching down stays below
    /// `2^-(1 + RETURN_MARGIN_BITS)`, and the smallest return level that keeps it there.
    ///
    /// # Errors
    /// [`ParamError::NoiseBudget`] if even the top level does not carry the flood (only for
    /// secure sets; insecure test sets fall back to the top level).
    pub fn coeff_plan(&self, l1_terms: u64, weight_bits: u32) -> Result<CoeffPlan, ParamError> {
        let inner = &self.inner;
        let (nf, pf, eta) = (inner.n as f64, inner.p.q() as f64, CBD_ETA as f64);
        let w_max = ((inner.p.q() - 1) / 2).min(1u64 << weight_bits.min(63)) as f64;
        let b = l1_terms.max(1) as f64 * w_max * (eta + 0.5) + 0.5;
        let flood_bits = flood_exponent(b);
        let total = b + 1.5 * 2f64.powi(flood_bits as i32) + 2.0 * nf * eta + eta;
        let needed = -(1 + RETURN_MARGIN_BITS) as f64;
        let k = self.max_level();
        let mut best_top = f64::INFINITY;
        for up in 1..=k {
            let log2_nu = pf.log2() + total.log2() - self.log2_q_at(up);
            best_top = best_top.min(log2_nu);
            for ret in 1..=up {
                let switch = 1.5 * pf * (1.0 + nf) / 2f64.powf(self.log2_q_at(ret));
                let nu = 2f64.powf(log2_nu) + if ret < up { switch } else { 0.0 };
                if nu.log2() <= needed {
                    return Ok(CoeffPlan {
                        upload_level: up,
                        flood_bits,
                        return_level: ret,
                        drop_bits: self.drop_bits(ret),
                        a_drop_bits: self.a_drop_bits(ret),
                    });
                }
            }
        }
        if inner.secure {
            Err(ParamError::NoiseBudget {
                log2_noise: best_top,
                needed: -(1 + RETURN_MARGIN_BITS),
            })
        } else {
            Ok(CoeffPlan {
                upload_level: k,
                flood_bits,
                return_level: k,
                drop_bits: self.drop_bits(k),
                a_drop_bits: self.a_drop_bits(k),
            })
        }
    }

    /// The plan of the encrypted-weights mode (module docs, "Encrypted weights"): the client's
    /// share, `share_terms` coefficients in all entering each product sum, each
    /// `|x| ≤ (p − 1)/2`, takes the weights' place in [`Params::coeff_plan`].
    ///
    /// # Errors
    /// As [`Params::coeff_plan`].
    pub fn coeff_share_plan(&self, share_terms: u64) -> Result<CoeffPlan, ParamError> {
        // A bound of 2^63 is capped at (p − 1)/2 by the planner: a full-range share.
        self.coeff_plan(share_terms, u64::BITS - 1)
    }

    fn drop_bits(&self, level: usize) -> u32 {
        if level != 1 {
            return 0;
        }
        let q1 = self.inner.q[0].q() as f64;
        let t = (q1.log2() - (self.inner.p.q() as f64).log2()).floor() as i64 - 2;
        t.clamp(0, 40) as u32
    }

    /// Low bits of `a` dropped at `level` (only level 1), by randomised rounding: each
    /// coefficient `a_i` becomes `⌊a_i/2^t⌋ + [u_i < a_i mod 2^t]` for a fresh uniform `u_i` of
    /// `[0, 2^t)`, so the error `δ_i = 2^t·a'_i − a_i` lies in `(−2^t, 2^t)`, has mean zero and
    /// the `δ_i` are independent given `a`. Decryption then adds `(δ·s)_j`, a sum of at most
    /// `N` independent terms in `(−2^t, 2^t)` for ternary `s`; by Hoeffding
    /// `P[|(δ·s)_j| ≥ x] ≤ 2·exp(−x²/(2N·4^t)) = ε` at `x = 2^t·√(2N·ln(2/ε))`. With
    /// `ε = 2^-(40 + 44 + 1)` per returned coefficient (so `≤ 2^-41` over the `2^44` of a volume,
    /// [`super::VOLUME_RETURNED_COEFFS_LOG2`]), `t` is the largest with `p·x/q_1 < 1/4`: the
    /// plan keeps the invariant noise before the return `≤ 2^-3`, dropping the low bits of `b`
    /// adds `≤ 2^-3` ([`CoeffPlan::drop_bits`]), so decryption (`< 1/2`) fails with probability
    /// `≤ 2^-85` per coefficient. This is the one probabilistic correctness bound of the
    /// backend (the rest is worst case): at q32 it drops 6 of the 50 bits (worst case,
    /// `N·2^(t−1)·||s||_∞`, would allow 3).
    fn a_drop_bits(&self, level: usize) -> u32 {
        if level != 1 {
            return 0;
        }
        let q1 = (self.inner.q[0].q() as f64).log2();
        let p = (self.inner.p.q() as f64).log2();
        let eps_log2 = -((super::params::STATISTICAL_SECURITY_BITS
            + super::params::VOLUME_RETURNED_COEFFS_LOG2
            + 1) as f64);
        let ln_2_over_eps = (1.0 - eps_log2) * std::f64::consts::LN_2;
        let spread = (2.0 * self.inner.n as f64 * ln_2_over_eps).sqrt().log2();
        // Strictly below 1/4: the largest t with q1 − p − 2 − spread − t > 0.
        let t = (q1 - p - 2.0 - spread - 1e-9).floor() as i64;
        t.clamp(0, 40) as u32
    }

    /// Encoded length of a [`CoeffUpload`] at `level`.
    pub fn coeff_upload_len(&self, level: usize) -> usize {
        1 + 16 + super::wire::poly_len(self, level)
    }

    /// Encoded length of a [`CoeffResponse`] at `level` with `count` coefficients of `b`,
    /// `drop_bits` low bits of each dropped, and `a` with `a_drop_bits` low bits dropped.
    pub fn coeff_response_len(
        &self,
        level: usize,
        count: usize,
        drop_bits: u32,
        a_drop_bits: u32,
    ) -> usize {
        1 + super::wire::rounded_poly_len(self, level, a_drop_bits)
            + super::wire::coeffs_len(self, level, count, drop_bits)
    }
}

/// A seeded secret-key ciphertext of a coefficient-encoded plaintext at a level below the top
/// (wire: `level u8 · seed [16] · c0` of `ℓ` limbs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoeffUpload(pub(crate) SeededCiphertext);

impl CoeffUpload {
    /// The full ciphertext (`c1` expanded from the seed).
    pub fn expand(&self) -> Ciphertext {
        self.0.expand()
    }

    /// The level.
    pub fn level(&self) -> usize {
        self.0.level
    }
}

impl SecretKey {
    /// Encrypts the coefficients `values` (each `< p`, at most `N`, the rest zero) at `level`:
    /// the client's upload of the coefficient-encoded HomConv.
    ///
    /// # Errors
    /// [`PaheError::Slots`] for more than `N` values or a value `≥ p`; [`PaheError::Level`]
    /// for a level outside `1..=k`.
    pub fn encrypt_coeffs(
        &self,
        values: &[u64],
        level: usize,
        prg: &mut Prg,
    ) -> Result<CoeffUpload, PaheError> {
        let params = self.params();
        if level == 0 || level > params.max_level() {
            return Err(PaheError::Level {
                expected: params.max_level(),
                found: level,
            });
        }
        let mut coeffs = values.to_vec();
        if coeffs.len() > params.n() {
            return Err(PaheError::Slots {
                expected: params.n(),
                p: params.p(),
                len: coeffs.len(),
            });
        }
        coeffs.resize(params.n(), 0);
        let mut pt = params.plaintext_from_coeffs(coeffs)?;
        let ct = self.encrypt_seeded_at(&pt, level, prg);
        pt.coeffs.zeroize();
        Ok(CoeffUpload(ct))
    }

    /// Decrypts the selected coefficients of a [`CoeffResponse`]: `round(p·(b_j + (a·s)_j)/Q_ℓ)
    /// mod p` for each index `j` of `sel`, in order.
    ///
    /// # Errors
    /// [`PaheError::Level`] / [`PaheError::ParamsMismatch`] for a response of other parameters;
    /// [`PaheError::Slots`] if its coefficient count is not `sel.len()`.
    pub fn decrypt_coeffs(
        &self,
        resp: &CoeffResponse,
        sel: &Selection,
    ) -> Result<Vec<u64>, PaheError> {
        let params = self.params();
        if resp.params != *params {
            return Err(PaheError::ParamsMismatch {
                expected: params.fingerprint(),
                found: resp.params.fingerprint(),
            });
        }
        let inner = &params.inner;
        let (n, l, count) = (inner.n, resp.level, sel.len());
        if l == 0 || l > inner.q.len() || resp.a.len() != l * n {
            return Err(PaheError::Level {
                expected: inner.q.len(),
                found: l,
            });
        }
        if resp.b.len() != l * count {
            return Err(PaheError::Slots {
                expected: count,
                p: params.p(),
                len: resp.b.len() / l,
            });
        }
        let mut as_: Vec<u64> = resp
            .a
            .chunks(n)
            .zip(&inner.q[..l])
            .flat_map(|(limb, m)| {
                limb.iter()
                    .map(|&v| lift_dropped(m.q(), v, resp.a_drop_bits))
            })
            .collect();
        poly::forward(&inner.plans[..l], &mut as_, n);
        poly::zip_limbs(
            &inner.q[..l],
            &mut as_,
            &self.s_ntt[..l * n],
            n,
            |m, x, y| m.mul_assign(x, y),
        );
        poly::inverse(&inner.plans[..l], &mut as_, n);
        let scale = &params.level(l).scale_round;
        let out = sel
            .indices()
            .par_iter()
            .enumerate()
            .map(|(t, &j)| {
                let residues = (0..l).map(|i| {
                    let m = &inner.q[i];
                    m.add(
                        lift_dropped(m.q(), resp.b[i * count + t], resp.drop_bits),
                        as_[i * n + j as usize],
                    )
                });
                scale.round_one(residues)
            })
            .collect();
        as_.zeroize();
        Ok(out)
    }
}

/// `b' · 2^t mod q` for a coefficient sent as `b' = round(b / 2^t)` or rounded at random
/// (`b' ≤ ⌊(q − 1)/2^t⌋ + 1`, so `b'·2^t < 2q`: one conditional subtraction).
fn lift_dropped(q: u64, v: u64, t: u32) -> u64 {
    let x = v << t;
    if x >= q { x - q } else { x }
}

/// `round(b / 2^t)` for `b < q`.
pub(crate) fn drop_low(b: u64, t: u32) -> u64 {
    if t == 0 { b } else { (b + (1 << (t - 1))) >> t }
}

/// `⌊a/2^t⌋ + [u < a mod 2^t]` for `u` uniform in `[0, 2^t)`: rounding to a multiple of
/// `2^t` with mean-zero error (see `Params::a_drop_bits`), without a branch on `a` or `u`.
pub(crate) fn drop_low_random(a: u64, t: u32, u: u64) -> u64 {
    if t == 0 {
        return a;
    }
    let mask = (1u64 << t) - 1;
    (a >> t) + u64::from((u & mask) < (a & mask))
}

/// The server's answer for one coefficient-encoded product sum: the whole `a = c1` (coefficient
/// domain, `ℓ` limbs, each coefficient rounded at random to drop `a_drop_bits` low bits) and
/// of `b = c0` only the coefficients of a [`Selection`] (coefficient domain, limb-major,
/// `ℓ × count`).
#[derive(Clone, PartialEq, Eq)]
pub struct CoeffResponse {
    pub(crate) params: Params,
    pub(crate) level: usize,
    /// `b` holds `round(b_j / 2^drop_bits)` (only at level 1).
    pub(crate) drop_bits: u32,
    /// `a` holds `a_i` rounded at random to a multiple of `2^a_drop_bits`, divided by it (only
    /// at level 1).
    pub(crate) a_drop_bits: u32,
    pub(crate) a: Vec<u64>,
    pub(crate) b: Vec<u64>,
}

impl std::fmt::Debug for CoeffResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoeffResponse")
            .field("level", &self.level)
            .field("count", &(self.b.len() / self.level.max(1)))
            .finish_non_exhaustive()
    }
}

impl CoeffResponse {
    /// The level.
    pub fn level(&self) -> usize {
        self.level
    }

    /// Number of coefficients of `b` carried.
    pub fn count(&self) -> usize {
        self.b.len() / self.level.max(1)
    }
}

impl Evaluator {
    /// HSS `Share` on the selected coefficients: `ct ⊟ round(Q_ℓ·M/p)` with `mask[t]` placed at
    /// coefficient `sel[t]` (zero elsewhere); the client will decrypt `x_j − M_t` there.
    ///
    /// # Errors
    /// [`PaheError::Slots`] unless `mask` has `sel.len()` values `< p`; [`PaheError::Level`].
    pub fn share_coeffs(
        &self,
        ct: &mut Ciphertext,
        sel: &Selection,
        mask: &[u64],
    ) -> Result<(), PaheError> {
        let params = self.params();
        super::ciphertext::check(params, ct)?;
        let p = params.p();
        if mask.len() != sel.len() || mask.iter().any(|&v| v >= p) {
            return Err(PaheError::Slots {
                expected: sel.len(),
                p,
                len: mask.len(),
            });
        }
        let inner = &params.inner;
        let (n, l) = (inner.n, ct.level);
        let lv = params.level(l);
        let frac = precise_offsets(mask, lv.r_mod_p, p);
        let mut t = vec![0u64; l * n];
        t.par_chunks_mut(n)
            .zip(inner.q[..l].par_iter().zip(lv.delta.par_iter()))
            .for_each(|(limb, (m, &d))| {
                let d_shoup = m.shoup(d);
                for ((&j, &v), &f) in sel.indices().iter().zip(mask).zip(&frac) {
                    limb[j as usize] = m.add(m.mul_shoup(v, d, d_shoup), f);
                }
            });
        poly::forward(&inner.plans[..l], &mut t, n);
        poly::zip_limbs(&inner.q[..l], &mut ct.c0, &t, n, |m, x, y| {
            m.sub_assign(x, y)
        });
        Ok(())
    }

    /// The coefficient backend's return path (module docs): `Share` with `mask` on `sel`,
    /// re-randomise with a flood of `plan.flood_bits`, switch to `plan.return_level`, and keep
    /// `a` whole and `b` only at `sel`.
    ///
    /// Computed as [`Evaluator::share_coeffs`], [`Evaluator::rerandomize_and_flood_with`],
    /// [`Evaluator::mod_switch_to`] and inverse transforms would, with the same PRG draws and
    /// the same residues, but in fewer transforms: the share's `round(Q_ℓ·M/p)` is subtracted
    /// from the flood, and the flood and the zero-encryption's `e_2` are added, in the
    /// coefficient domain after one inverse transform of the sum's NTT-domain part
    /// (`ct + (b·u, a·u)`), and the switch stays in the coefficient domain (the NTT being
    /// linear, `NTT⁻¹(x + NTT(t)) = NTT⁻¹(x) + t`): `ℓ` forward and `2ℓ` inverse transforms per
    /// response instead of `4ℓ + 2` forward and `2ℓ + 2` inverse.
    ///
    /// # Errors
    /// As [`Evaluator::share_coeffs`], [`Evaluator::rerandomize_and_flood_with`] and
    /// [`Evaluator::mod_switch_to`].
    pub fn finalize_coeffs(
        &self,
        mut ct: Ciphertext,
        sel: &Selection,
        mask: &[u64],
        plan: &CoeffPlan,
        pk: &PublicKey,
        prg: &mut Prg,
    ) -> Result<CoeffResponse, PaheError> {
        let params = self.params();
        super::ciphertext::check(params, &ct)?;
        let p = params.p();
        if mask.len() != sel.len() || mask.iter().any(|&v| v >= p) {
            return Err(PaheError::Slots {
                expected: sel.len(),
                p,
                len: mask.len(),
            });
        }
        if pk.params != *params {
            return Err(PaheError::ParamsMismatch {
                expected: params.fingerprint(),
                found: pk.params.fingerprint(),
            });
        }
        let inner = &params.inner;
        let (n, l) = (inner.n, ct.level);
        let lv = params.level(l);
        // t = flood − round(Q_ℓ·M/p) at the selection (coefficient domain).
        let mut frac = precise_offsets(mask, lv.r_mod_p, p);
        let mut t = self.flood_noise(l, plan.flood_bits, prg);
        t.par_chunks_mut(n)
            .zip(inner.q[..l].par_iter().zip(lv.delta.par_iter()))
            .for_each(|(limb, (m, &d))| {
                let d_shoup = m.shoup(d);
                for ((&j, &v), &f) in sel.indices().iter().zip(mask).zip(&frac) {
                    let share = m.add(m.mul_shoup(v, d, d_shoup), f);
                    limb[j as usize] = m.sub(limb[j as usize], share);
                }
            });
        frac.zeroize();
        // The encryption of zero `(b·u + t, a·u + e_2)`, its NTT-domain part added first.
        let (mut u_ntt, mut e2) = pk.zero_parts(l, prg);
        ct.c0
            .par_chunks_mut(n)
            .zip(ct.c1.par_chunks_mut(n))
            .zip(u_ntt.par_chunks(n))
            .zip(
                pk.b.par_chunks(n)
                    .zip(pk.a.par_chunks(n))
                    .zip(inner.q.par_iter()),
            )
            .for_each(|(((c0, c1), u), ((b, a), m))| {
                m.mul_add_assign(c0, b, u);
                m.mul_add_assign(c1, a, u);
            });
        u_ntt.zeroize();
        let mut c0 = std::mem::take(&mut ct.c0);
        let mut c1 = std::mem::take(&mut ct.c1);
        poly::inverse(&inner.plans[..l], &mut c0, n);
        poly::inverse(&inner.plans[..l], &mut c1, n);
        poly::zip_limbs(&inner.q[..l], &mut c0, &t, n, |m, x, y| m.add_assign(x, y));
        poly::zip_limbs(&inner.q[..l], &mut c1, &e2, n, |m, x, y| m.add_assign(x, y));
        t.zeroize();
        e2.zeroize();
        let target = plan.return_level.clamp(1, l);
        if target < l {
            let consts = super::eval::SwitchConsts::new(params, l, target);
            self.switch_poly(&mut c0, l, target, &consts, false);
            self.switch_poly(&mut c1, l, target, &consts, false);
        }
        let (drop_bits, a_drop_bits) = if target == 1 {
            (plan.drop_bits, plan.a_drop_bits)
        } else {
            (0, 0)
        };
        Ok(self.extract((c0, c1), target, sel, (drop_bits, a_drop_bits), prg))
    }

    /// `a` whole, `b` at `sel`, from `(c0, c1)` in the coefficient domain at `l` limbs, low
    /// bits dropped.
    pub(crate) fn extract(
        &self,
        (c0, mut a): (Vec<u64>, Vec<u64>),
        l: usize,
        sel: &Selection,
        (drop_bits, a_drop_bits): (u32, u32),
        prg: &mut Prg,
    ) -> CoeffResponse {
        let n = self.params().n();
        let count = sel.len();
        let mut b = vec![0u64; l * count];
        for (dst, src) in b.chunks_mut(count.max(1)).zip(c0.chunks(n)) {
            for (d, &j) in dst.iter_mut().zip(sel.indices()) {
                *d = drop_low(src[j as usize], drop_bits);
            }
        }
        if a_drop_bits > 0 {
            let mut u = vec![0u64; a.len()];
            prg.fill_bytes(bytemuck::cast_slice_mut(&mut u));
            for (v, &r) in a.iter_mut().zip(&u) {
                *v = drop_low_random(*v, a_drop_bits, u64::from_le(r));
            }
            u.zeroize();
        }
        CoeffResponse {
            params: self.params().clone(),
            level: l,
            drop_bits,
            a_drop_bits,
            a,
            b,
        }
    }
}
