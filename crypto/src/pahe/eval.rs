//! Homomorphic operations, modulus switching, homomorphic secret sharing and the return path
//! (re-randomisation, noise flooding, modulus switching).

use bunet_kernels::automorph;
use bunet_kernels::primes::inv_mod_prime;
use rayon::prelude::*;
use zeroize::Zeroize;

use super::ciphertext::{Ciphertext, Plaintext, PreparedPlaintext};
use super::error::PaheError;
use super::keys::{GaloisKey, GaloisKeys, PublicKey};
use super::params::Params;
use super::poly;
use crate::prg::Prg;

/// Runs homomorphic operations for one parameter set. Independent RNS limbs run in parallel
/// (rayon); independent ciphertexts can be processed in parallel by the caller.
#[derive(Debug, Clone)]
pub struct Evaluator {
    params: Params,
}

thread_local! {
    /// Scratch for a key switch's lifted digits (`(ℓ−1)·N` words of public ciphertext data),
    /// kept per thread: a fresh allocation of this size per call is returned to the system on
    /// free and page-faults back in on the next call, which cost more than the products.
    static DIGITS: std::cell::RefCell<Vec<u64>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl Evaluator {
    /// An evaluator for `params`.
    pub fn new(params: &Params) -> Self {
        Self {
            params: params.clone(),
        }
    }

    /// The parameter set.
    pub fn params(&self) -> &Params {
        &self.params
    }

    fn check(&self, ct: &Ciphertext) -> Result<(), PaheError> {
        super::ciphertext::check(&self.params, ct)
    }

    fn check_pair(&self, a: &Ciphertext, b: &Ciphertext) -> Result<(), PaheError> {
        self.check(a)?;
        self.check(b)?;
        if a.level != b.level {
            return Err(PaheError::Level {
                expected: a.level,
                found: b.level,
            });
        }
        Ok(())
    }

    /// `f(modulus, limb of a, limb of b)` over the `2ℓ` limbs of `(c0 ‖ c1)` in one pass. These
    /// ops are memory-bound (one add per 24 bytes moved), so at one rayon thread they run inline:
    /// handing a 40 µs pass to the pool costs a cross-thread wake-up per call and buys nothing.
    fn limbwise(
        &self,
        a: &mut Ciphertext,
        b0: &[u64],
        b1: Option<&[u64]>,
        f: impl Fn(&bunet_kernels::Modulus, &mut [u64], &[u64]) + Sync + Copy,
    ) {
        let inner = &self.params.inner;
        let q = &inner.q[..a.level];
        let n = inner.n;
        match b1 {
            Some(b1) => poly::zip_limbs2(q, (&mut a.c0, &mut a.c1), (b0, b1), n, f),
            None => poly::zip_limbs(q, &mut a.c0, b0, n, f),
        }
    }

    /// `a ⊞= b`.
    ///
    /// # Errors
    /// [`PaheError::Level`] if the levels differ or are invalid.
    pub fn add_assign(&self, a: &mut Ciphertext, b: &Ciphertext) -> Result<(), PaheError> {
        self.check_pair(a, b)?;
        self.limbwise(a, &b.c0, Some(&b.c1), |m, x, y| m.add_assign(x, y));
        Ok(())
    }

    /// `a ⊟= b`.
    ///
    /// # Errors
    /// [`PaheError::Level`] if the levels differ or are invalid.
    pub fn sub_assign(&self, a: &mut Ciphertext, b: &Ciphertext) -> Result<(), PaheError> {
        self.check_pair(a, b)?;
        self.limbwise(a, &b.c0, Some(&b.c1), |m, x, y| m.sub_assign(x, y));
        Ok(())
    }

    /// `a = ⊟a`.
    ///
    /// # Errors
    /// [`PaheError::Level`] for an invalid ciphertext.
    pub fn negate_assign(&self, a: &mut Ciphertext) -> Result<(), PaheError> {
        self.check(a)?;
        let inner = &self.params.inner;
        let q = &inner.q[..a.level];
        if rayon::current_num_threads() == 1 {
            for c in [&mut a.c0, &mut a.c1] {
                c.chunks_mut(inner.n)
                    .zip(q)
                    .for_each(|(x, m)| m.neg_assign(x));
            }
        } else {
            for c in [&mut a.c0, &mut a.c1] {
                c.par_chunks_mut(inner.n)
                    .zip(q.par_iter())
                    .for_each(|(x, m)| m.neg_assign(x));
            }
        }
        Ok(())
    }

    /// `a ⊞= pt` (adds `Δ_ℓ·m` to `c0`; `ℓ` forward NTTs).
    ///
    /// # Errors
    /// [`PaheError::Level`] for an invalid ciphertext.
    pub fn add_plain_assign(&self, a: &mut Ciphertext, pt: &Plaintext) -> Result<(), PaheError> {
        self.check(a)?;
        let t = self.params.scaled_ntt(pt, a.level);
        self.limbwise(a, &t, None, |m, x, y| m.add_assign(x, y));
        Ok(())
    }

    /// `a ⊟= pt`.
    ///
    /// # Errors
    /// [`PaheError::Level`] for an invalid ciphertext.
    pub fn sub_plain_assign(&self, a: &mut Ciphertext, pt: &Plaintext) -> Result<(), PaheError> {
        self.check(a)?;
        let t = self.params.scaled_ntt(pt, a.level);
        self.limbwise(a, &t, None, |m, x, y| m.sub_assign(x, y));
        Ok(())
    }

    /// `a ⊙= w`: slot-wise product with a prepared plaintext (pointwise only, no NTT).
    /// The invariant noise grows by at most a factor `N·p/2`.
    ///
    /// # Errors
    /// [`PaheError::Level`] for an invalid ciphertext.
    pub fn mul_plain_assign(
        &self,
        a: &mut Ciphertext,
        w: &PreparedPlaintext,
    ) -> Result<(), PaheError> {
        self.check(a)?;
        let n = self.params.n();
        check_prepared(w, a.level, n)?;
        let w = &w.ntt[..a.level * n];
        self.limbwise(a, w, Some(w), |m, x, y| m.mul_assign(x, y));
        Ok(())
    }

    /// `acc ⊞= a ⊙ w`, fused (the inner loop of HomConv: one filter tap per input channel).
    ///
    /// # Errors
    /// [`PaheError::Level`] if the levels differ or are invalid.
    pub fn mul_plain_add_assign(
        &self,
        acc: &mut Ciphertext,
        a: &Ciphertext,
        w: &PreparedPlaintext,
    ) -> Result<(), PaheError> {
        self.check_pair(acc, a)?;
        let inner = &self.params.inner;
        let n = inner.n;
        let l = a.level;
        check_prepared(w, l, n)?;
        for (dst, src) in [(&mut acc.c0, &a.c0), (&mut acc.c1, &a.c1)] {
            if rayon::current_num_threads() == 1 {
                dst.chunks_mut(n)
                    .zip(src.chunks(n))
                    .zip(w.ntt[..l * n].chunks(n).zip(&inner.q))
                    .for_each(|((d, s), (w, m))| m.mul_add_assign(d, s, w));
            } else {
                dst.par_chunks_mut(n)
                    .zip(src.par_chunks(n))
                    .zip(w.ntt[..l * n].par_chunks(n).zip(inner.q.par_iter()))
                    .for_each(|((d, s), (w, m))| m.mul_add_assign(d, s, w));
            }
        }
        Ok(())
    }

    /// `acc ⊞= Σ_k a_k ⊙ w_k` over `terms = [(a_k, w_k)]`: HomConv's multiply-accumulate of many
    /// uploads in one pass per limb, with the kernels' lazy sum
    /// ([`bunet_kernels::Modulus::mul_sum_add_assign`]: products summed exactly in 128 bits,
    /// one reduction per coefficient instead of one per product, and one pass over `acc`
    /// instead of one per term). Equal to [`Evaluator::mul_plain_add_assign`] term by term.
    ///
    /// # Errors
    /// [`PaheError::Level`] if a level differs from `acc`'s or a plaintext is prepared below it.
    pub fn mul_plain_sum_add_assign(
        &self,
        acc: &mut Ciphertext,
        terms: &[(&Ciphertext, &PreparedPlaintext)],
    ) -> Result<(), PaheError> {
        self.check(acc)?;
        let n = self.params.n();
        for (a, w) in terms {
            self.check_pair(acc, a)?;
            check_prepared(w, acc.level, n)?;
        }
        if terms.is_empty() {
            return Ok(());
        }
        let q = &self.params.inner.q[..acc.level];
        let limb = |half: usize, i: usize, dst: &mut [u64]| {
            let pairs: Vec<(&[u64], &[u64])> = terms
                .iter()
                .map(|(a, w)| {
                    let src = if half == 0 { &a.c0 } else { &a.c1 };
                    (&src[i * n..(i + 1) * n], &w.ntt[i * n..(i + 1) * n])
                })
                .collect();
            q[i].mul_sum_add_assign(dst, &pairs);
        };
        if rayon::current_num_threads() == 1 {
            for (half, c) in [&mut acc.c0, &mut acc.c1].into_iter().enumerate() {
                for (i, dst) in c.chunks_mut(n).enumerate() {
                    limb(half, i, dst);
                }
            }
        } else {
            acc.c0
                .par_chunks_mut(n)
                .enumerate()
                .map(|(i, d)| (0, i, d))
                .chain(acc.c1.par_chunks_mut(n).enumerate().map(|(i, d)| (1, i, d)))
                .for_each(|(half, i, dst)| limb(half, i, dst));
        }
        Ok(())
    }

    /// `Σ_k a_k ⊙ w_k` ([`Evaluator::mul_plain_sum_add_assign`] onto zero): equal to
    /// [`Evaluator::mul_plain_assign`] on the first term and
    /// [`Evaluator::mul_plain_add_assign`] with the rest.
    ///
    /// # Errors
    /// As [`Evaluator::mul_plain_sum_add_assign`]; [`PaheError::Level`] for no terms.
    pub fn mul_plain_sum(
        &self,
        terms: &[(&Ciphertext, &PreparedPlaintext)],
    ) -> Result<Ciphertext, PaheError> {
        let Some((first, _)) = terms.first() else {
            return Err(PaheError::Level {
                expected: self.params.max_level(),
                found: 0,
            });
        };
        self.check(first)?;
        let len = first.level * self.params.n();
        let mut acc = Ciphertext {
            params: self.params.clone(),
            level: first.level,
            c0: vec![0; len],
            c1: vec![0; len],
        };
        self.mul_plain_sum_add_assign(&mut acc, terms)?;
        Ok(acc)
    }

    /// Rotates each row of `N/2` slots left by `k` (right for negative `k`):
    /// slot `j` of a row receives slot `j + k mod N/2` of the same row. Uses the key for
    /// `3^k` if present, else composes power-of-two rotations.
    ///
    /// # Errors
    /// [`PaheError::MissingGaloisKey`] if a needed key is absent; [`PaheError::Level`].
    pub fn rotate_rows(
        &self,
        ct: &Ciphertext,
        k: i64,
        keys: &GaloisKeys,
    ) -> Result<Ciphertext, PaheError> {
        self.check(ct)?;
        let half = (self.params.n() / 2) as i64;
        let k = k.rem_euclid(half);
        if k == 0 {
            return Ok(ct.clone());
        }
        let g = self.params.rotation_element(k);
        if let Some(key) = keys.get(g) {
            return Ok(self.apply_galois(ct, key));
        }
        let mut out = ct.clone();
        for bit in 0..half.trailing_zeros() {
            if k >> bit & 1 == 1 {
                let g = self.params.rotation_element(1 << bit);
                let key = keys.get(g).ok_or(PaheError::MissingGaloisKey { g })?;
                out = self.apply_galois(&out, key);
            }
        }
        Ok(out)
    }

    /// Exchanges the two rows of slots (`X ↦ X^(2N−1)`).
    ///
    /// # Errors
    /// [`PaheError::MissingGaloisKey`]; [`PaheError::Level`].
    pub fn swap_rows(&self, ct: &Ciphertext, keys: &GaloisKeys) -> Result<Ciphertext, PaheError> {
        self.check(ct)?;
        let g = self.params.row_swap_element();
        let key = keys.get(g).ok_or(PaheError::MissingGaloisKey { g })?;
        Ok(self.apply_galois(ct, key))
    }

    /// `σ_g` then key switching from `σ_g(s)` to `s`, RNS digit decomposition (one centred
    /// digit per prime): `ℓ` inverse and `ℓ(ℓ−1)` forward NTTs.
    fn apply_galois(&self, ct: &Ciphertext, key: &GaloisKey) -> Ciphertext {
        let inner = &self.params.inner;
        let n = inner.n;
        let l = ct.level;
        let permute = |src: &[u64]| {
            let mut out = vec![0u64; src.len()];
            if rayon::current_num_threads() == 1 {
                automorph::permute_limbs(&mut out, src, &key.perm);
            } else {
                out.par_chunks_mut(n)
                    .zip(src.par_chunks(n))
                    .for_each(|(dst, limb)| automorph::permute_limbs(dst, limb, &key.perm));
            }
            out
        };
        let mut c0 = permute(&ct.c0);
        let c1_ntt = permute(&ct.c1);
        let mut c1_coeff = c1_ntt.clone();
        poly::inverse(&inner.plans[..l], &mut c1_coeff, n);
        let mut c1 = vec![0u64; l * n];
        poly::for_each_limb2(&mut c0, &mut c1, n, |j, out0, out1| {
            let mj = &inner.q[j];
            let plan = &inner.plans[j];
            let limb = j * n..(j + 1) * n;
            DIGITS.with_borrow_mut(|lifted| {
                // The digits i ≠ j lifted to q_j and transformed; digit j is c1's own limb.
                lifted.resize((l - 1) * n, 0);
                for (i, digit) in (0..l).filter(|&i| i != j).zip(lifted.chunks_mut(n)) {
                    let qi = inner.q[i].q();
                    poly::lift_centered(&c1_coeff[i * n..(i + 1) * n], qi, mj, digit);
                    plan.forward(digit);
                }
                let mut others = lifted.chunks(n);
                let digits: Vec<&[u64]> = (0..l)
                    .map(|i| {
                        if i == j {
                            &c1_ntt[limb.clone()]
                        } else {
                            others.next().expect("one lifted digit per other prime")
                        }
                    })
                    .collect();
                let bs: Vec<&[u64]> = key.b[..l].iter().map(|b| &b[limb.clone()]).collect();
                let as_: Vec<&[u64]> = key.a[..l].iter().map(|a| &a[limb.clone()]).collect();
                bunet_kernels::rns::mul_sum_pair_add(mj, &digits, &bs, &as_, out0, out1);
            });
        });
        Ciphertext {
            params: self.params.clone(),
            level: l,
            c0,
            c1,
        }
    }

    /// Switches the modulus down to `Q_target = q_1 ⋯ q_target`: `c ↦ round(c · Q_target/Q_ℓ)`
    /// (dropped primes converted by a fast base conversion with a centred correction computed
    /// in floating point; the rounding error per coefficient is at most 1/2, or 3/2 in the
    /// rare case the correction lands on the other side of a half). The invariant noise grows
    /// by at most `(3/2)·p·(1 + N)/Q_target`; the message is preserved while the budget lasts.
    ///
    /// # Errors
    /// [`PaheError::Level`] unless `1 ≤ target ≤ ct.level`.
    pub fn mod_switch_to(&self, ct: &mut Ciphertext, target: usize) -> Result<(), PaheError> {
        self.check(ct)?;
        let l = ct.level;
        if target == 0 || target > l {
            return Err(PaheError::Level {
                expected: l,
                found: target,
            });
        }
        if target == l {
            return Ok(());
        }
        let consts = SwitchConsts::new(&self.params, l, target);
        for c in [&mut ct.c0, &mut ct.c1] {
            self.switch_poly(c, l, target, &consts, true);
        }
        ct.level = target;
        Ok(())
    }

    /// [`Evaluator::mod_switch_to`]'s work on one polynomial `c` of `l` limbs, in the NTT
    /// domain (`ntt`) or in the coefficient domain (the coefficient backend's return path,
    /// which leaves it there: no transform of the kept limbs' correction and no inverse
    /// transform of the dropped limbs, the same residues).
    pub(crate) fn switch_poly(
        &self,
        c: &mut Vec<u64>,
        l: usize,
        target: usize,
        k: &SwitchConsts,
        ntt: bool,
    ) {
        let inner = &self.params.inner;
        let n = inner.n;
        let kept = &inner.q[..target];
        let dropped = &inner.q[target..l];
        let mut y = c[target * n..l * n].to_vec();
        if ntt {
            poly::inverse(&inner.plans[target..l], &mut y, n);
        }
        y.par_chunks_mut(n)
            .zip(dropped.par_iter().zip(k.phat_inv.par_iter()))
            .for_each(|(limb, (m, &h))| m.scalar_mul_assign(limb, h));
        let u: Vec<u64> = (0..n)
            .into_par_iter()
            .with_min_len(1024)
            .map(|x| {
                let s: f64 = (0..dropped.len())
                    .map(|i| y[i * n + x] as f64 * k.inv_q[i])
                    .sum();
                s.round() as u64
            })
            .collect();
        c[..target * n]
            .par_chunks_mut(n)
            .zip(kept.par_iter().zip(inner.plans[..target].par_iter()))
            .zip(k.kept.par_iter())
            .for_each(|((cj, (mj, plan)), k)| {
                let mut corr = vec![0u64; n];
                for (x, o) in corr.iter_mut().enumerate() {
                    let mut acc = mj.mul_shoup(u[x], k.p_neg.0, k.p_neg.1);
                    for (i, &(h, h_shoup)) in k.phat.iter().enumerate() {
                        acc = mj.add(acc, mj.mul_shoup(y[i * n + x], h, h_shoup));
                    }
                    *o = acc;
                }
                if ntt {
                    plan.forward(&mut corr);
                }
                mj.sub_assign(cj, &corr);
                mj.scalar_mul_assign(cj, k.p_inv);
            });
        c.truncate(target * n);
    }

    /// HSS `Share([x], s_B) = [x] ⊟ s_B` (seed eq. 1): the client will decrypt `x − s_B mod p`.
    ///
    /// # Errors
    /// [`PaheError::Slots`] for a malformed mask; [`PaheError::Level`].
    pub fn share(&self, ct: &mut Ciphertext, mask: &[u64]) -> Result<(), PaheError> {
        let pt = self.params.encode(mask)?;
        self.sub_plain_assign(ct, &pt)
    }

    /// Circuit privacy: adds a fresh public-key encryption of zero (re-randomising `(c0, c1)`
    /// under RLWE) whose `c0` error is the smooth flood of `f = `[`Params::flood_bits`] (a sum
    /// of three uniforms of `[0, 2^f)`, centred, `|flood| ≤ 3·2^(f−1)`), which hides noise of
    /// magnitude `B ≤ 2^(f − 63)` in everything returned for a volume with statistical
    /// distance `≤ 2^-40` (Hellinger composition, see [`Params::flood_bits`]).
    ///
    /// # Errors
    /// [`PaheError::Level`]; [`PaheError::ParamsMismatch`] if `pk` is for another set.
    pub fn rerandomize_and_flood(
        &self,
        ct: &mut Ciphertext,
        pk: &PublicKey,
        prg: &mut Prg,
    ) -> Result<(), PaheError> {
        self.rerandomize_and_flood_with(ct, pk, self.params.inner.flood_bits, prg)
    }

    /// [`Evaluator::rerandomize_and_flood`] with the flood of exponent `bits` (the
    /// coefficient-encoded HomConv sizes its flood per layer, [`Params::coeff_plan`]).
    ///
    /// # Errors
    /// As [`Evaluator::rerandomize_and_flood`].
    pub fn rerandomize_and_flood_with(
        &self,
        ct: &mut Ciphertext,
        pk: &PublicKey,
        bits: u32,
        prg: &mut Prg,
    ) -> Result<(), PaheError> {
        self.check(ct)?;
        if pk.params != self.params {
            return Err(PaheError::ParamsMismatch {
                expected: self.params.fingerprint(),
                found: pk.params.fingerprint(),
            });
        }
        let t = self.flood_noise(ct.level, bits, prg);
        let zero = pk.encrypt_raw(t, ct.level, prg);
        self.add_assign(ct, &zero)
    }

    /// The flood of [`super::params::flood_exponent`] (module docs there): per coefficient
    /// `D_1 + D_2 + D_3 + J − 3·2^(f−1)` with `D_i` uniform in `[0, 2^f)` and `J ∈ {0, 1, 2}`
    /// with probabilities `(1/6, 2/3, 1/6)` — exactly `⌊V⌋` for `V` the sum of three continuous
    /// uniforms on `[0, 2^f)` (write each as `D_i + F_i`, `F_i` uniform in `[0, 1)`: `J =
    /// ⌊F_1 + F_2 + F_3⌋`), centred, so `|flood| ≤ 3·2^(f−1)`. As residues (coefficient
    /// domain) of `level` primes. No branch depends on a sampled value: `J` comes from a
    /// rejection-sampled uniform of `[0, 6)` (the number of rejections is independent of the
    /// value) and comparisons without branches; the reductions are the kernels' branch-free
    /// ones.
    pub(crate) fn flood_noise(&self, level: usize, bits: u32, prg: &mut Prg) -> Vec<u64> {
        self.flood_noise_with(level, bits, prg, true)
    }

    /// [`Evaluator::flood_noise`], with `wide` allowing the one-reduction-per-prime path of
    /// floods up to `2^`[`FLOOD_WIDE_BITS`] (tests compare it with the word-by-word one).
    pub(crate) fn flood_noise_with(
        &self,
        level: usize,
        bits: u32,
        prg: &mut Prg,
        wide: bool,
    ) -> Vec<u64> {
        let inner = &self.params.inner;
        let n = inner.n;
        let f = bits.max(1) as usize;
        let words = f.div_ceil(64);
        let top_mask = if f.is_multiple_of(64) {
            u64::MAX
        } else {
            (1u64 << (f % 64)) - 1
        };
        // Three f-bit uniforms per coefficient, then J.
        let mut raw = vec![0u64; 3 * n * words];
        // The keystream straight into the words (little-endian, as `from_le_bytes` read it):
        // no second buffer to fill, copy and erase.
        prg.fill_bytes(bytemuck::cast_slice_mut(&mut raw));
        for w in raw.iter_mut() {
            *w = u64::from_le(*w);
        }
        let mut j = vec![0u64; n];
        prg.fill_uniform_below(&mut j, 6);
        for v in j.iter_mut() {
            // 0 → 0, 1..=4 → 1, 5 → 2.
            *v = u64::from(*v >= 1) + u64::from(*v >= 5);
        }
        let mut out = vec![0u64; level * n];
        if wide && f <= FLOOD_WIDE_BITS {
            // The centred sum fits an i128 (`3·2^f + 2 < 2^127`): form it once per coefficient
            // and reduce it once per prime (two Shoup products, `reduce_wide`), instead of a
            // Horner reduction of every word of every uniform for every prime.
            let mut mag = vec![0u128; n];
            let mut neg = vec![0u64; n];
            let shift = 3i128 << (f - 1);
            for (((m, s), big), &jv) in mag
                .iter_mut()
                .zip(neg.iter_mut())
                .zip(raw.chunks_exact(3 * words))
                .zip(&j)
            {
                let mut v = jv as u128;
                for d in big.chunks_exact(words) {
                    let mut x = 0u128;
                    for (t, &w) in d.iter().enumerate() {
                        let w = if t == words - 1 { w & top_mask } else { w };
                        x |= (w as u128) << (64 * t);
                    }
                    v += x;
                }
                let c = v as i128 - shift;
                // All ones when negative: |c| and the sign without a branch.
                let sign = c >> 127;
                *m = ((c ^ sign) - sign) as u128;
                *s = sign as u64;
            }
            out.par_chunks_mut(n)
                .zip(inner.q[..level].par_iter())
                .for_each(|(limb, q)| {
                    for ((o, &m), &s) in limb.iter_mut().zip(&mag).zip(&neg) {
                        let r = q.reduce_wide(m);
                        *o = r ^ ((r ^ q.neg(r)) & s);
                    }
                });
            mag.zeroize();
            neg.zeroize();
            raw.zeroize();
            j.zeroize();
            return out;
        }
        out.par_chunks_mut(n)
            .zip(inner.q[..level].par_iter())
            .for_each(|(limb, m)| {
                let two64 = m.reduce(1u64 << 32);
                let two64 = m.mul(two64, two64);
                let two64_shoup = m.shoup(two64);
                let one = m.shoup(1);
                // 3·2^(f−1) mod q.
                let shift = m.mul(m.reduce(3), m.pow(2, f as u64 - 1));
                for ((o, big), &jv) in limb.iter_mut().zip(raw.chunks_exact(3 * words)).zip(&j) {
                    let mut acc = m.reduce(jv);
                    for d in big.chunks_exact(words) {
                        let mut r = 0u64;
                        for (t, &w) in d.iter().enumerate().rev() {
                            let w = if t == words - 1 { w & top_mask } else { w };
                            r = m.add(
                                m.mul_shoup(r, two64, two64_shoup),
                                poly::reduce_word(m, one, w),
                            );
                        }
                        acc = m.add(acc, r);
                    }
                    *o = m.sub(acc, shift);
                }
            });
        raw.zeroize();
        j.zeroize();
        out
    }

    /// The server's return path for HomConv (seed §4.3): `Share` with `mask` (the server keeps
    /// `mask` as its share), [`Evaluator::rerandomize_and_flood`], then switch down to
    /// [`Params::return_level`].
    ///
    /// # Errors
    /// As [`Evaluator::share`] and [`Evaluator::rerandomize_and_flood`].
    pub fn finalize_for_return(
        &self,
        mut ct: Ciphertext,
        mask: &[u64],
        pk: &PublicKey,
        prg: &mut Prg,
    ) -> Result<Ciphertext, PaheError> {
        self.share(&mut ct, mask)?;
        self.rerandomize_and_flood(&mut ct, pk, prg)?;
        self.mod_switch_to(&mut ct, self.params.return_level())?;
        Ok(ct)
    }
}

/// The constants of a modulus switch from level `l` down to `target` (dropping `P = q_{target+1}
/// ⋯ q_l`): `(P/q_i)^-1 mod q_i` and `1/q_i` for the dropped primes, and per kept prime `q_j`
/// the `P/q_i mod q_j`, `−P mod q_j` (with Shoup companions) and `P^-1 mod q_j`.
pub(crate) struct SwitchConsts {
    phat_inv: Vec<u64>,
    inv_q: Vec<f64>,
    kept: Vec<KeptConsts>,
}

struct KeptConsts {
    /// `(P/q_i mod q_j, Shoup companion)` per dropped `i`.
    phat: Vec<(u64, u64)>,
    /// `−P mod q_j` with its Shoup companion.
    p_neg: (u64, u64),
    p_inv: u64,
}

impl SwitchConsts {
    pub(crate) fn new(params: &Params, l: usize, target: usize) -> Self {
        let inner = &params.inner;
        let kept = &inner.q[..target];
        let dropped = &inner.q[target..l];
        let phat_inv: Vec<u64> = dropped
            .iter()
            .enumerate()
            .map(|(i, mi)| {
                let hat = dropped
                    .iter()
                    .enumerate()
                    .filter(|&(t, _)| t != i)
                    .fold(1u64, |acc, (_, mt)| mi.mul(acc, mi.reduce(mt.q())));
                inv_mod_prime(hat, mi.q()).expect("distinct primes")
            })
            .collect();
        let inv_q: Vec<f64> = dropped.iter().map(|m| 1.0 / m.q() as f64).collect();
        let kept = kept
            .iter()
            .map(|mj| {
                let phat = (0..dropped.len())
                    .map(|i| {
                        dropped
                            .iter()
                            .enumerate()
                            .filter(|&(t, _)| t != i)
                            .fold(1u64, |acc, (_, mt)| mj.mul(acc, mj.reduce(mt.q())))
                    })
                    .map(|h| (h, mj.shoup(h)))
                    .collect();
                let p_mod = dropped
                    .iter()
                    .fold(1u64, |acc, mt| mj.mul(acc, mj.reduce(mt.q())));
                let p_inv = inv_mod_prime(p_mod, mj.q()).expect("distinct primes");
                let neg = mj.neg(p_mod);
                KeptConsts {
                    phat,
                    p_neg: (neg, mj.shoup(neg)),
                    p_inv,
                }
            })
            .collect();
        Self {
            phat_inv,
            inv_q,
            kept,
        }
    }
}

/// Largest flood exponent whose centred sum of three `f`-bit uniforms fits an `i128`
/// (`3·2^f + 2 < 2^127`), so that [`Evaluator::flood_noise`] forms it exactly once per
/// coefficient.
const FLOOD_WIDE_BITS: usize = 125;

/// A plaintext prepared at a level below the ciphertext's ([`Params::prepare_at`]) cannot
/// multiply it.
fn check_prepared(w: &PreparedPlaintext, level: usize, n: usize) -> Result<(), PaheError> {
    if w.ntt.len() < level * n {
        return Err(PaheError::Level {
            expected: w.ntt.len() / n,
            found: level,
        });
    }
    Ok(())
}

/// A uniform mask `s_B ∈ Z_p^N` for HSS `Share`.
pub fn random_mask(params: &Params, prg: &mut Prg) -> Vec<u64> {
    let mut mask = vec![0u64; params.n()];
    prg.fill_uniform_below(&mut mask, params.p());
    mask
}

/// `Rec(s_A, s_B) = s_A + s_B mod p`, slot-wise (seed eq. 2).
///
/// # Errors
/// [`PaheError::Slots`] unless both have `N` values `< p`.
pub fn reconstruct(params: &Params, s_a: &[u64], s_b: &[u64]) -> Result<Vec<u64>, PaheError> {
    let p = params.p();
    for s in [s_a, s_b] {
        if s.len() != params.n() || s.iter().any(|&v| v >= p) {
            return Err(PaheError::Slots {
                expected: params.n(),
                p,
                len: s.len(),
            });
        }
    }
    let m = &params.inner.p;
    Ok(s_a.iter().zip(s_b).map(|(&a, &b)| m.add(a, b)).collect())
}
