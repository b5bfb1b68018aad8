//! Keys: secret, public and Galois; encryption, decryption and exact noise measurement.

use std::collections::BTreeMap;

use rayon::prelude::*;
use zeroize::Zeroize;

use super::bigint;
use super::ciphertext::{Ciphertext, Plaintext, SeededCiphertext};
use super::error::PaheError;
use super::params::{CBD_ETA, Params};
use super::poly;
use crate::prg::Prg;

/// The secret key: a uniform ternary polynomial `s`, kept in the NTT domain of every RNS prime.
///
/// # Security
/// Erased on drop; prints as `SecretKey { .. }`.
#[derive(Clone)]
pub struct SecretKey {
    pub(crate) params: Params,
    pub(crate) s_ntt: Vec<u64>,
    /// `−s`, so that `t − a·s` is one fused multiply-add.
    pub(crate) s_neg_ntt: Vec<u64>,
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey { .. }")
    }
}

impl Drop for SecretKey {
    fn drop(&mut self) {
        self.s_ntt.zeroize();
        self.s_neg_ntt.zeroize();
    }
}

/// `t += a·(−s)` limb by limb (all in the NTT domain).
fn minus_a_s(params: &Params, t: &mut [u64], a: &[u64], s_neg_ntt: &[u64]) {
    let inner = &params.inner;
    let n = inner.n;
    poly::for_each_limb(t, n, |i, t| {
        let limb = i * n..(i + 1) * n;
        inner.q[i].mul_add_assign(t, &a[limb.clone()], &s_neg_ntt[limb]);
    });
}

/// A fresh RLWE sample under `sk` in the NTT domain: the seed of `a` (uniform, expanded from
/// it), `a` and `b = e − a·s` with `e` CBD. The public key is one; a key-switching key adds a
/// gadget multiple of the source secret to `b` (draws the seed first, then `e`, from `prg`).
fn rlwe_sample(sk: &SecretKey, prg: &mut Prg) -> ([u8; 16], Vec<u64>, Vec<u64>) {
    let params = &sk.params;
    let inner = &params.inner;
    let n = inner.n;
    let seed = prg.next_seed();
    let a = poly::uniform_from_seed(seed, &inner.q, n);
    let mut e = poly::cbd(prg, n);
    let mut b = poly::lift_small(&inner.q, &e);
    e.zeroize();
    poly::forward(&inner.plans, &mut b, n);
    minus_a_s(params, &mut b, &a, &sk.s_neg_ntt);
    (seed, a, b)
}

/// Coefficients per chunk of decryption's scale-and-round (parallel work items).
const DECRYPT_CHUNK: usize = 1024;

impl SecretKey {
    /// A fresh uniform ternary secret.
    pub fn generate(params: &Params, prg: &mut Prg) -> Self {
        let inner = &params.inner;
        let mut s = poly::ternary(prg, inner.n);
        let mut s_ntt = poly::lift_small(&inner.q, &s);
        s.zeroize();
        poly::forward(&inner.plans, &mut s_ntt, inner.n);
        let mut s_neg_ntt = s_ntt.clone();
        for (limb, m) in s_neg_ntt.chunks_mut(inner.n).zip(&inner.q) {
            m.neg_assign(limb);
        }
        Self {
            params: params.clone(),
            s_ntt,
            s_neg_ntt,
        }
    }

    /// The parameter set of this key.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// Encrypts with the secret key at the top level; the uniform half is a fresh PRG seed, so
    /// the result is half the size of a full ciphertext.
    ///
    /// # Security
    /// RLWE with ternary secret, CBD(21) error; the seed is public and uniform.
    pub fn encrypt_seeded(&self, pt: &Plaintext, prg: &mut Prg) -> SeededCiphertext {
        self.encrypt_seeded_at(pt, self.params.max_level(), prg)
    }

    /// Encrypts with the secret key at `level` (modulus `q_1 ⋯ q_level`), seeded as
    /// [`SecretKey::encrypt_seeded`]: a ciphertext that needs less than the full modulus (the
    /// coefficient-encoded HomConv, whose products grow the noise by `||w||_1` only) is
    /// uploaded with `level` limbs instead of `k`.
    ///
    /// # Panics
    /// If `level` is not in `1..=k` (a caller's bug: levels come from the parameters).
    ///
    /// # Security
    /// As [`SecretKey::encrypt_seeded`]; RLWE at a smaller modulus with the same `N` and
    /// error is at least as hard.
    pub fn encrypt_seeded_at(
        &self,
        pt: &Plaintext,
        level: usize,
        prg: &mut Prg,
    ) -> SeededCiphertext {
        let inner = &self.params.inner;
        let n = inner.n;
        assert!(
            (1..=inner.q.len()).contains(&level),
            "encryption level {level} outside 1..={}",
            inner.q.len()
        );
        let seed = prg.next_seed();
        let a = poly::uniform_from_seed(seed, &inner.q[..level], n);
        let mut e = poly::cbd(prg, n);
        let mut c0 = self.scaled_plus_small(pt, &e, level);
        e.zeroize();
        poly::forward(&inner.plans[..level], &mut c0, n);
        minus_a_s(&self.params, &mut c0, &a, &self.s_neg_ntt[..level * n]);
        SeededCiphertext {
            params: self.params.clone(),
            level,
            seed,
            c0,
        }
    }

    /// Encrypts many plaintexts in parallel (rayon), each with a child PRG seeded from `prg`.
    pub fn encrypt_seeded_many(&self, pts: &[Plaintext], prg: &mut Prg) -> Vec<SeededCiphertext> {
        let seeds: Vec<[u8; 16]> = pts.iter().map(|_| prg.next_seed()).collect();
        pts.par_iter()
            .zip(seeds.par_iter())
            .map(|(pt, &seed)| self.encrypt_seeded(pt, &mut Prg::from_seed(seed)))
            .collect()
    }

    /// Encrypts with the secret key and expands the seed: a full ciphertext.
    pub fn encrypt(&self, pt: &Plaintext, prg: &mut Prg) -> Ciphertext {
        self.encrypt_seeded(pt, prg).expand()
    }

    /// `round(Q_ℓ·m/p) + e` in the coefficient domain of the first `level` primes.
    fn scaled_plus_small(&self, pt: &Plaintext, e: &[i64], level: usize) -> Vec<u64> {
        scaled_plus_small(&self.params, pt, e, level)
    }

    /// `c0 + c1·s` in the coefficient domain (residues of the first `ct.level` primes).
    fn phase(&self, ct: &Ciphertext) -> Vec<u64> {
        let inner = &self.params.inner;
        let n = inner.n;
        let mut v = ct.c0.clone();
        poly::for_each_limb(&mut v, n, |i, v| {
            let limb = i * n..(i + 1) * n;
            inner.q[i].mul_add_assign(v, &ct.c1[limb.clone()], &self.s_ntt[limb]);
        });
        poly::inverse(&inner.plans[..ct.level], &mut v, n);
        v
    }

    /// Decrypts: `m = round(p·(c0 + c1·s)/Q_ℓ) mod p`, by the RNS scale-and-round of
    /// Halevi–Polyakov–Shoup with 104-bit fractions (`kernels::rns::ScaleRound`: exact unless
    /// the invariant noise is within `ℓ·max q_i·2^-104` of `1/2`, where decryption fails
    /// anyway).
    ///
    /// # Errors
    /// [`PaheError::Level`] if the ciphertext's level is outside this key's parameters.
    pub fn decrypt(&self, ct: &Ciphertext) -> Result<Plaintext, PaheError> {
        self.check(ct)?;
        let inner = &self.params.inner;
        let n = inner.n;
        let l = ct.level;
        let mut v = self.phase(ct);
        let scale = &self.params.level(l).scale_round;
        let mut coeffs = vec![0u64; n];
        // Chunks of coefficients (every limb's residues of a chunk at stride N).
        poly::for_each_limb(&mut coeffs, DECRYPT_CHUNK.min(n), |c, chunk| {
            scale.round(&v[c * DECRYPT_CHUNK..], n, chunk);
        });
        v.zeroize();
        Ok(Plaintext { coeffs })
    }

    fn check(&self, ct: &Ciphertext) -> Result<(), PaheError> {
        super::ciphertext::check(&self.params, ct)
    }

    /// `log2 |[p·(c0 + c1·s)]_Q|` for every coefficient, computed exactly (multi-precision CRT):
    /// this is `log2 (Q·|ν|)` for the invariant noise `ν`. For tests and reports.
    ///
    /// # Errors
    /// [`PaheError::Level`] as [`SecretKey::decrypt`].
    pub fn invariant_noise_log2(&self, ct: &Ciphertext) -> Result<Vec<f64>, PaheError> {
        self.check(ct)?;
        let inner = &self.params.inner;
        let n = inner.n;
        let l = ct.level;
        let mut v = self.phase(ct);
        for (limb, m) in v.chunks_mut(n).zip(&inner.q) {
            m.scalar_mul_assign(limb, m.reduce(inner.p.q()));
        }
        let moduli: Vec<u64> = inner.q[..l].iter().map(|m| m.q()).collect();
        let crt = bigint::Crt::new(&moduli);
        Ok((0..n)
            .into_par_iter()
            .map(|j| {
                let residues: Vec<u64> = (0..l).map(|i| v[i * n + j]).collect();
                crt.centered_log2(&residues)
            })
            .collect())
    }

    /// The invariant noise budget in bits, `log2 Q_ℓ − 1 − log2 max_j |[p·(c0+c1·s)]_Q|`
    /// (SEAL's definition): decryption is correct while it is positive.
    ///
    /// # Errors
    /// [`PaheError::Level`] as [`SecretKey::decrypt`].
    pub fn noise_budget(&self, ct: &Ciphertext) -> Result<f64, PaheError> {
        let noise = self.invariant_noise_log2(ct)?;
        let max = noise.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        Ok(self.params.log2_q_at(ct.level) - 1.0 - max.max(0.0))
    }
}

/// `round(Q_ℓ·m/p) + e` in the coefficient domain of the first `level` primes.
pub(crate) fn scaled_plus_small(
    params: &Params,
    pt: &Plaintext,
    e: &[i64],
    level: usize,
) -> Vec<u64> {
    let inner = &params.inner;
    let n = inner.n;
    let lv = params.level(level);
    let p = inner.p.q();
    // round(r·m/p) ≤ r < p: the precise scaling round(Q·m/p) = Δ·m + round(r·m/p) keeps the
    // noise of a plaintext product at ||w||_1·(η + 1/2) instead of ||w||_1·(η + p). With the
    // error, y = round(r·m/p) + e is one small signed polynomial, |y| < p + η.
    let mut frac = precise_offsets(&pt.coeffs, lv.r_mod_p, p);
    let mut y: Vec<i64> = frac.iter().zip(e).map(|(&f, &x)| f as i64 + x).collect();
    frac.zeroize();
    let mut out = vec![0u64; level * n];
    poly::for_each_limb(&mut out, n, |i, limb| {
        bunet_kernels::rns::scale_add_signed(
            &inner.q[i],
            lv.delta[i],
            &pt.coeffs,
            p,
            &y,
            p + CBD_ETA + 1,
            limb,
        );
    });
    y.zeroize();
    out
}

/// `round(r·m_j/p)` for every coefficient `m_j < p` (each `≤ r < p`).
pub(crate) fn precise_offsets(m: &[u64], r: u64, p: u64) -> Vec<u64> {
    let mut out = vec![0u64; m.len()];
    bunet_kernels::rns::precise_offsets(m, r, p, &mut out);
    out
}

/// The public key `(b, a) = (−a·s + e, a)` at the top level, `a` expanded from a public seed.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    pub(crate) params: Params,
    pub(crate) seed: [u8; 16],
    pub(crate) b: Vec<u64>,
    pub(crate) a: Vec<u64>,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublicKey").finish_non_exhaustive()
    }
}

impl PublicKey {
    /// The public key of `sk`.
    pub fn generate(sk: &SecretKey, prg: &mut Prg) -> Self {
        let (seed, a, b) = rlwe_sample(sk, prg);
        Self {
            params: sk.params.clone(),
            seed,
            b,
            a,
        }
    }

    /// The parameter set of this key.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// Encrypts at the top level: `(b·u + e1 + Δ·m, a·u + e2)` with `u` ternary, `e1, e2` CBD.
    pub fn encrypt(&self, pt: &Plaintext, prg: &mut Prg) -> Ciphertext {
        let inner = &self.params.inner;
        let k = inner.q.len();
        let mut e1 = poly::cbd(prg, inner.n);
        let t = scaled_plus_small(&self.params, pt, &e1, k);
        e1.zeroize();
        self.encrypt_raw(t, k, prg)
    }

    /// The randomness of an encryption of zero at `level`: `u` ternary (NTT domain) and `e_2`
    /// CBD (coefficient domain), drawn in this order ([`PublicKey::encrypt_raw`]'s draws).
    pub(crate) fn zero_parts(&self, level: usize, prg: &mut Prg) -> (Vec<u64>, Vec<u64>) {
        let inner = &self.params.inner;
        let n = inner.n;
        let q = &inner.q[..level];
        let mut u = poly::ternary(prg, n);
        let mut u_ntt = poly::lift_small(q, &u);
        u.zeroize();
        let mut e2 = poly::cbd(prg, n);
        let e2_lifted = poly::lift_small(q, &e2);
        e2.zeroize();
        poly::forward(&inner.plans[..level], &mut u_ntt, n);
        (u_ntt, e2_lifted)
    }

    /// `(b·u + t, a·u + e2)` at `level`, with `t` given in the coefficient domain.
    pub(crate) fn encrypt_raw(&self, mut t: Vec<u64>, level: usize, prg: &mut Prg) -> Ciphertext {
        let inner = &self.params.inner;
        let n = inner.n;
        let plans = &inner.plans[..level];
        let q = &inner.q[..level];
        let (mut u_ntt, mut c1) = self.zero_parts(level, prg);
        poly::forward(plans, &mut t, n);
        poly::forward(plans, &mut c1, n);
        for (half, key) in [(&mut t, &self.b), (&mut c1, &self.a)] {
            poly::for_each_limb(half, n, |i, x| {
                let limb = i * n..(i + 1) * n;
                q[i].mul_add_assign(x, &key[limb.clone()], &u_ntt[limb]);
            });
        }
        u_ntt.zeroize();
        Ciphertext {
            params: self.params.clone(),
            level,
            c0: t,
            c1,
        }
    }
}

/// A key-switching key from `σ_g(s)` to `s` for one Galois element `g`: one RLWE sample per RNS
/// digit, `b_i = −a_i·s + e_i + g_i·σ_g(s)` with `g_i` the CRT idempotent of `q_i`.
#[derive(Clone, PartialEq, Eq)]
pub struct GaloisKey {
    pub(crate) g: u64,
    pub(crate) perm: Vec<u32>,
    pub(crate) seeds: Vec<[u8; 16]>,
    pub(crate) b: Vec<Vec<u64>>,
    pub(crate) a: Vec<Vec<u64>>,
}

impl std::fmt::Debug for GaloisKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GaloisKey")
            .field("g", &self.g)
            .finish_non_exhaustive()
    }
}

impl GaloisKey {
    /// The Galois element `g` of the automorphism `X ↦ X^g`.
    pub fn element(&self) -> u64 {
        self.g
    }

    pub(crate) fn generate(sk: &SecretKey, g: u64, prg: &mut Prg) -> Self {
        let params = &sk.params;
        let inner = &params.inner;
        let n = inner.n;
        let k = inner.q.len();
        let perm = params.galois_perm(g);
        let mut s_g = vec![0u64; k * n];
        bunet_kernels::automorph::permute_limbs(&mut s_g, &sk.s_ntt, &perm);
        let mut seeds = Vec::with_capacity(k);
        let mut bs = Vec::with_capacity(k);
        let mut as_ = Vec::with_capacity(k);
        for i in 0..k {
            let (seed, a, mut b) = rlwe_sample(sk, prg);
            inner.q[i].add_assign(&mut b[i * n..(i + 1) * n], &s_g[i * n..(i + 1) * n]);
            seeds.push(seed);
            bs.push(b);
            as_.push(a);
        }
        s_g.zeroize();
        Self {
            g,
            perm,
            seeds,
            b: bs,
            a: as_,
        }
    }
}

/// A set of Galois keys, by Galois element.
#[derive(Clone, PartialEq, Eq)]
pub struct GaloisKeys {
    pub(crate) params: Params,
    pub(crate) keys: BTreeMap<u64, GaloisKey>,
}

impl std::fmt::Debug for GaloisKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GaloisKeys")
            .field("elements", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl GaloisKeys {
    /// Keys for row rotations by each of `steps` (left by `k`; negative is right) and, if
    /// `row_swap`, for exchanging the two rows.
    pub fn generate(sk: &SecretKey, steps: &[i64], row_swap: bool, prg: &mut Prg) -> Self {
        let params = &sk.params;
        let mut elements: Vec<u64> = steps.iter().map(|&k| params.rotation_element(k)).collect();
        if row_swap {
            elements.push(params.row_swap_element());
        }
        elements.sort_unstable();
        elements.dedup();
        elements.retain(|&g| g != 1);
        let keys = elements
            .into_iter()
            .map(|g| (g, GaloisKey::generate(sk, g, prg)))
            .collect();
        Self {
            params: params.clone(),
            keys,
        }
    }

    /// Keys for rotations by every power of two below `N/2` and the row swap: any row rotation
    /// is then a composition of at most `log2(N/2)` key switches.
    pub fn power_of_two(sk: &SecretKey, prg: &mut Prg) -> Self {
        let half = sk.params.n() / 2;
        let steps: Vec<i64> = (0..half.trailing_zeros()).map(|b| 1i64 << b).collect();
        Self::generate(sk, &steps, true, prg)
    }

    /// The Galois elements present.
    pub fn elements(&self) -> Vec<u64> {
        self.keys.keys().copied().collect()
    }

    pub(crate) fn get(&self, g: u64) -> Option<&GaloisKey> {
        self.keys.get(&g)
    }
}

impl Params {
    /// The Galois element `3^k mod 2N` that rotates each row left by `k` (taken mod `N/2`).
    pub fn rotation_element(&self, k: i64) -> u64 {
        let half = (self.n() / 2) as i64;
        let two_n = 2 * self.n() as u64;
        let e = k.rem_euclid(half) as u64;
        bunet_kernels::primes::pow_mod(3, e, two_n)
    }

    /// The Galois element `2N − 1` that exchanges the two rows.
    pub fn row_swap_element(&self) -> u64 {
        2 * self.n() as u64 - 1
    }

    /// The NTT-domain permutation of `X ↦ X^g`: `out[i] = in[perm[i]]`.
    pub(crate) fn galois_perm(&self, g: u64) -> Vec<u32> {
        let inner = &self.inner;
        let two_n = 2 * inner.n as u64;
        inner
            .ntt_exp
            .iter()
            .map(|&t| inner.ntt_pos[(t as u64 * g % two_n) as usize])
            .collect()
    }
}
