//! Tests of the coefficient encoding: products decrypt to negacyclic products at the selected
//! coefficients, the wire formats round-trip and refuse damage, the plan fits the presets, and
//! a distinguisher sees the weights exactly when the flood is missing or too small.

use super::tests::{SMALL_N, small};
use super::*;
use crate::prg::Prg;
use crate::wire::{Encode, WireError, decode_exact};

/// Schoolbook product of `a` (residues) and small signed `w` in `Z_p[X]/(X^N + 1)`.
fn negacyclic_mul_signed(a: &[u64], w: &[i64], p: u64) -> Vec<u64> {
    let n = a.len();
    let mut out = vec![0i128; n];
    for (i, &ai) in a.iter().enumerate() {
        for (j, &wj) in w.iter().enumerate() {
            let prod = ai as i128 * wj as i128;
            if i + j < n {
                out[i + j] += prod;
            } else {
                out[i + j - n] -= prod;
            }
        }
    }
    out.into_iter()
        .map(|v| v.rem_euclid(p as i128) as u64)
        .collect()
}

fn weights(prg: &mut Prg, n: usize, terms: usize, bits: u32) -> Vec<i64> {
    let max = 1i64 << bits;
    let mut w = vec![0i64; n];
    for x in w.iter_mut().take(terms) {
        *x = (prg.uniform_below(2 * max as u64 + 1) as i64) - max;
    }
    w
}

/// `terms` weights of magnitude exactly `min(2^bits, (p − 1)/2)` (the largest a weight lifted
/// centred from `Z_p` can have), random signs: the worst case of the plan's bound.
fn extreme_weights(prg: &mut Prg, params: &Params, terms: usize, bits: u32) -> Vec<i64> {
    let max = (1i64 << bits).min((params.p() as i64 - 1) / 2);
    let mut w = vec![0i64; params.n()];
    for x in w.iter_mut().take(terms) {
        *x = if prg.next_u64() & 1 == 0 { max } else { -max };
    }
    w
}

fn weight_plaintext(params: &Params, w: &[i64]) -> PreparedPlaintext {
    let p = params.p() as i64;
    let coeffs = w.iter().map(|&x| x.rem_euclid(p) as u64).collect();
    params.prepare(&params.plaintext_from_coeffs(coeffs).unwrap())
}

/// `channels` products summed, shared on `sel`, flooded, switched, extracted and decrypted: the
/// client's share plus the mask is the sum of negacyclic products at the selected coefficients.
/// The weights are `terms` per product, uniform within `±2^weight_bits`, or all at `±2^weight_bits`
/// if `extreme`; the plan is for that bound.
fn product_sum_round_trip(
    params: &Params,
    (channels, terms): (usize, usize),
    (weight_bits, extreme): (u32, bool),
    seed: u8,
) -> CoeffPlan {
    let mut prg = Prg::from_seed([seed; 16]);
    let sk = SecretKey::generate(params, &mut prg);
    let pk = PublicKey::generate(&sk, &mut prg);
    let ev = Evaluator::new(params);
    let (n, p) = (params.n(), params.p());
    let plan = params
        .coeff_plan((channels * terms) as u64, weight_bits)
        .unwrap();
    let mut expected = vec![0u64; n];
    let mut acc: Option<Ciphertext> = None;
    for _ in 0..channels {
        let mut x = vec![0u64; n];
        prg.fill_uniform_below(&mut x, p);
        let w = if extreme {
            extreme_weights(&mut prg, params, terms, weight_bits)
        } else {
            weights(&mut prg, n, terms, weight_bits)
        };
        for (e, v) in expected.iter_mut().zip(negacyclic_mul_signed(&x, &w, p)) {
            *e = (*e + v) % p;
        }
        let up = sk.encrypt_coeffs(&x, plan.upload_level, &mut prg).unwrap();
        let bytes = up.to_bytes();
        assert_eq!(bytes.len(), params.coeff_upload_len(plan.upload_level));
        let ct = decode_exact::<CoeffUpload>(&bytes, params)
            .unwrap()
            .expand();
        let wp = weight_plaintext(params, &w);
        match &mut acc {
            None => {
                let mut c = ct;
                ev.mul_plain_assign(&mut c, &wp).unwrap();
                acc = Some(c);
            }
            Some(a) => ev.mul_plain_add_assign(a, &ct, &wp).unwrap(),
        }
    }
    let indices: Vec<u32> = (0..n as u32).filter(|i| i % 3 != 1).collect();
    let sel = Selection::new(params, indices).unwrap();
    let mut mask = vec![0u64; sel.len()];
    prg.fill_uniform_below(&mut mask, p);
    let resp = ev
        .finalize_coeffs(acc.unwrap(), &sel, &mask, &plan, &pk, &mut prg)
        .unwrap();
    assert_eq!(resp.level(), plan.return_level);
    let bytes = resp.to_bytes();
    assert_eq!(
        bytes.len(),
        params.coeff_response_len(
            plan.return_level,
            sel.len(),
            plan.drop_bits,
            plan.a_drop_bits
        )
    );
    let ctx = CoeffResponseContext {
        params: params.clone(),
        count: sel.len(),
        drop_bits: plan.drop_bits,
        a_drop_bits: plan.a_drop_bits,
    };
    let resp = decode_exact::<CoeffResponse>(&bytes, &ctx).unwrap();
    let share = sk.decrypt_coeffs(&resp, &sel).unwrap();
    for ((&j, &s), &m) in sel.indices().iter().zip(&share).zip(&mask) {
        assert_eq!((s + m) % p, expected[j as usize], "coefficient {j}");
    }
    plan
}

#[test]
fn coefficient_products_decrypt_to_negacyclic_products_at_the_selection() {
    product_sum_round_trip(small(), (3, SMALL_N), (COEFF_WEIGHT_BITS, false), 1);
    product_sum_round_trip(small(), (2, 9), (COEFF_WEIGHT_BITS, false), 2);
}

/// The worst layer of the UNet at the q32 preset (ℓ1 count 256 channels × 27 taps of the
/// largest weights): exact after flooding and switching down.
#[test]
fn worst_coefficient_layer_survives_at_q32() {
    product_sum_round_trip(
        &Params::q32(),
        (2, 256 * 27 / 2),
        (COEFF_WEIGHT_BITS, false),
        3,
    );
}

/// A model's first conv at the bound of 24 bits (the quantiser's largest weight, into which
/// calibration folds the activation scale), every weight at `±2^24` (at q24, `±(p − 1)/2`,
/// the largest below `p/2`): exact after flooding and
/// switching down at both presets, for a 1-channel conv of 16 outputs per product (ℓ1 count
/// 16·9) and the 5-channel inputs of a multi-window model (5·16·9). The plan pays for the
/// wider bound with 8 more flood bits than at 16 bits.
#[test]
fn first_conv_at_24_bits_survives_at_the_extreme_weights() {
    for params in [Params::q32(), Params::q24()] {
        for (channels, seed) in [(1, 21), (5, 22)] {
            let plan = product_sum_round_trip(&params, (channels, 16 * 9), (24, true), seed);
            let narrow = params
                .coeff_plan((channels * 16 * 9) as u64, COEFF_WEIGHT_BITS)
                .unwrap();
            eprintln!("{} {channels}×16×9 at 24 bits: {plan:?}", params.name());
            // q24's p < 2^24: its weights are below (p − 1)/2 < 2^23, one bit fewer.
            let extra = if params.p() < 1 << 24 { 7 } else { 8 };
            assert_eq!(plan.flood_bits, narrow.flood_bits + extra, "{plan:?}");
            assert_eq!(plan.return_level, 1);
        }
    }
}

#[test]
fn plans_fit_the_presets() {
    for params in [Params::q32(), Params::q24()] {
        for (l1, bits, up) in [
            (64 * 9, COEFF_WEIGHT_BITS, 3),
            (16 * 9, COEFF_WEIGHT_BITS, 3),
            (9, 24, 3),
            (16 * 9, 24, 4),
        ] {
            let plan = params.coeff_plan(l1, bits).unwrap();
            eprintln!("{} l1 {l1} at {bits} bits: {plan:?}", params.name());
            assert_eq!(plan.upload_level, up);
            assert_eq!(plan.return_level, 1);
            assert!(plan.drop_bits >= if params.p() < 1 << 24 { 23 } else { 15 });
            assert_eq!(plan.a_drop_bits, if params.p() < 1 << 24 { 14 } else { 6 });
        }
        let worst = params.coeff_plan(256 * 27 * 4, COEFF_WEIGHT_BITS).unwrap();
        assert!(worst.upload_level <= params.max_level());
        // The first conv of a 5-channel model at its 24-bit bound, 64 outputs per product.
        let first = params.coeff_plan(5 * 64 * 9, 24).unwrap();
        assert!(first.upload_level <= params.max_level());
    }
}

#[test]
fn selections_and_levels_are_checked() {
    let params = small();
    assert!(Selection::new(params, vec![1, 1]).is_err());
    assert!(Selection::new(params, vec![3, 2]).is_err());
    assert!(Selection::new(params, vec![SMALL_N as u32]).is_err());
    assert!(Selection::new(params, vec![0, SMALL_N as u32 - 1]).is_ok());
    let mut prg = Prg::from_seed([4; 16]);
    let sk = SecretKey::generate(params, &mut prg);
    assert!(sk.encrypt_coeffs(&[0; 4], 0, &mut prg).is_err());
    assert!(sk.encrypt_coeffs(&[0; 4], 4, &mut prg).is_err());
    assert!(sk.encrypt_coeffs(&[params.p()], 1, &mut prg).is_err());
    assert!(
        sk.encrypt_coeffs(&vec![0; SMALL_N + 1], 1, &mut prg)
            .is_err()
    );
}

#[test]
fn coefficient_wire_formats_refuse_damage() {
    let params = small();
    let mut prg = Prg::from_seed([5; 16]);
    let sk = SecretKey::generate(params, &mut prg);
    let pk = PublicKey::generate(&sk, &mut prg);
    let ev = Evaluator::new(params);
    let up = sk.encrypt_coeffs(&[1, 2, 3], 2, &mut prg).unwrap();
    let bytes = up.to_bytes();
    assert_eq!(decode_exact::<CoeffUpload>(&bytes, params).unwrap(), up);
    for cut in [0, 1, 17, bytes.len() - 1] {
        assert!(decode_exact::<CoeffUpload>(&bytes[..cut], params).is_err());
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(decode_exact::<CoeffUpload>(&longer, params).is_err());
    for bad_level in [0u8, 4] {
        let mut b = bytes.clone();
        b[0] = bad_level;
        assert!(decode_exact::<CoeffUpload>(&b, params).is_err());
    }
    // A residue ≥ q: all ones in the first packed limb word.
    let mut b = bytes.clone();
    for x in &mut b[17..24] {
        *x = 0xff;
    }
    assert!(matches!(
        decode_exact::<CoeffUpload>(&b, params),
        Err(WireError::OutOfRange { .. })
    ));

    let sel = Selection::new(params, vec![0, 5, 200]).unwrap();
    let plan = params.coeff_plan(1, COEFF_WEIGHT_BITS).unwrap();
    let resp = ev
        .finalize_coeffs(up.expand(), &sel, &[1, 2, 3], &plan, &pk, &mut prg)
        .unwrap();
    let bytes = resp.to_bytes();
    let ctx = CoeffResponseContext {
        params: params.clone(),
        count: 3,
        drop_bits: plan.drop_bits,
        a_drop_bits: plan.a_drop_bits,
    };
    assert_eq!(decode_exact::<CoeffResponse>(&bytes, &ctx).unwrap(), resp);
    for cut in [0, 1, bytes.len() - 1] {
        assert!(decode_exact::<CoeffResponse>(&bytes[..cut], &ctx).is_err());
    }
    let wrong = CoeffResponseContext {
        params: params.clone(),
        count: 2,
        drop_bits: plan.drop_bits,
        a_drop_bits: plan.a_drop_bits,
    };
    assert!(decode_exact::<CoeffResponse>(&bytes, &wrong).is_err());
    let huge = CoeffResponseContext {
        params: params.clone(),
        count: SMALL_N + 1,
        drop_bits: plan.drop_bits,
        a_drop_bits: plan.a_drop_bits,
    };
    assert!(matches!(
        decode_exact::<CoeffResponse>(&bytes, &huge),
        Err(WireError::TooLong { .. })
    ));
    // A response of another count does not decrypt against this selection.
    let other = Selection::new(params, vec![0, 5]).unwrap();
    assert!(sk.decrypt_coeffs(&resp, &other).is_err());
}

/// The KS distance between the invariant noise (log2, per coefficient) of `cts ⊙ x[0]` and
/// `cts ⊙ x[1]` after the return path's share (a zero mask on every coefficient) and, unless
/// `flood` is `None`, a re-randomisation with a flood of that many bits: what a distinguisher
/// holding `keys.0` sees of the plaintext factor.
fn flood_distance(
    params: &Params,
    keys: (&SecretKey, &PublicKey),
    cts: &[Ciphertext],
    x: [&PreparedPlaintext; 2],
    flood: Option<u32>,
    prg: &mut Prg,
) -> f64 {
    let (sk, pk) = keys;
    let ev = Evaluator::new(params);
    let n = params.n();
    let sel = Selection::new(params, (0..n as u32).collect()).unwrap();
    let mask = vec![0u64; n];
    let mut noise = |x: &PreparedPlaintext| -> Vec<f64> {
        cts.iter()
            .flat_map(|ct| {
                let mut c = ct.clone();
                ev.mul_plain_assign(&mut c, x).unwrap();
                ev.share_coeffs(&mut c, &sel, &mask).unwrap();
                if let Some(bits) = flood {
                    ev.rerandomize_and_flood_with(&mut c, pk, bits, prg)
                        .unwrap();
                }
                sk.invariant_noise_log2(&c).unwrap()
            })
            .collect()
    };
    let a = noise(x[0]);
    let b = noise(x[1]);
    crate::test_support::ks_statistic(&a, &b)
}

/// The two-sample KS critical value at α ≈ 10^-6 for two samples of `m` each.
fn ks_critical(m: usize) -> f64 {
    2.76 * (2.0 / m as f64).sqrt()
}

/// A distinguisher who knows the secret key compares the noise magnitudes of products with
/// two weight polynomials of the same shape — all ones against full-range weights — after the
/// server's return path: it must tell them apart without a flood or with one of about the
/// noise's own size, and must not with the planned flood (KS test at α ≈ 10^-6).
#[test]
fn distinguisher_sees_the_weights_only_without_enough_flooding() {
    let params = small();
    let n = params.n();
    let mut prg = Prg::from_seed([6; 16]);
    let sk = SecretKey::generate(params, &mut prg);
    let pk = PublicKey::generate(&sk, &mut prg);
    let plan = params.coeff_plan(n as u64, COEFF_WEIGHT_BITS).unwrap();
    let ones = weight_plaintext(params, &vec![1; n]);
    let full = weight_plaintext(params, &weights(&mut prg, n, n, COEFF_WEIGHT_BITS));
    let rounds = 16;
    let inputs: Vec<Ciphertext> = (0..rounds)
        .map(|_| {
            let mut x = vec![0u64; n];
            prg.fill_uniform_below(&mut x, params.p());
            sk.encrypt_coeffs(&x, plan.upload_level, &mut prg)
                .unwrap()
                .expand()
        })
        .collect();
    let mut distance = |flood: Option<u32>| {
        flood_distance(params, (&sk, &pk), &inputs, [&ones, &full], flood, &mut prg)
    };
    let critical = ks_critical(inputs.len() * n);
    let none = distance(None);
    // Full-range weights give noise of about 2^(16 + 4 + 1.7) here: a flood of 2^21 is of
    // the noise's own size.
    let small_flood = distance(Some(21));
    let planned = distance(Some(plan.flood_bits));
    eprintln!(
        "KS distance: no flood {none:.3}, 2^21 flood {small_flood:.3}, planned 2^{} flood {planned:.4}, critical {critical:.4}",
        plan.flood_bits
    );
    assert!(none > 0.5, "unflooded noise must reveal the weights");
    assert!(
        small_flood > critical,
        "a noise-sized flood must not hide the weights"
    );
    assert!(
        planned < critical,
        "the planned flood must hide the weights"
    );
}

/// Randomised rounding of `a`: the error `2^t·a' − a` stays in `(−2^t, 2^t)`, averages to zero
/// (it is unbiased for every `a`), the rounded value stays below the wire bound and lifts back
/// modulo `q` with the same error.
#[test]
fn randomised_rounding_of_a_is_unbiased_and_bounded() {
    use super::coeff::drop_low_random;
    use super::wire::random_dropped_bound;
    let q = Params::q32().moduli()[0];
    let t = 6u32;
    let mut prg = Prg::from_seed([11; 16]);
    for a in [
        0,
        1,
        31,
        32,
        33,
        63,
        q - 64,
        q - 33,
        q - 1,
        prg.uniform_below(q),
    ] {
        let trials = 20_000;
        let mut sum = 0f64;
        for _ in 0..trials {
            let r = drop_low_random(a, t, prg.next_u64());
            assert!(r < random_dropped_bound(q, t), "a = {a}");
            let err = (r << t) as i128 - a as i128;
            assert!(err.abs() < 1 << t, "a = {a}: error {err}");
            let lifted = if r << t >= q { (r << t) - q } else { r << t };
            assert_eq!(
                (lifted as i128 - a as i128).rem_euclid(q as i128),
                err.rem_euclid(q as i128)
            );
            sum += err as f64;
        }
        let mean = sum / trials as f64;
        // Standard deviation of the error is at most 2^(t−1) = 32: the mean of 20,000 is
        // within 6 standard errors (1.4) of zero.
        assert!(mean.abs() < 1.5, "a = {a}: mean error {mean}");
    }
}

/// The flood formed once per coefficient in 128 bits (`f ≤ 125`) is the word-by-word one,
/// residue for residue, from the same PRG draws.
#[test]
fn wide_flood_equals_the_word_by_word_flood() {
    let params = Params::q32();
    let ev = Evaluator::new(&params);
    for f in [1u32, 2, 20, 63, 64, 65, 93, 124, 125] {
        for level in [1, 3] {
            let seed = [f as u8 ^ level as u8; 16];
            let wide = ev.flood_noise_with(level, f, &mut Prg::from_seed(seed), true);
            let words = ev.flood_noise_with(level, f, &mut Prg::from_seed(seed), false);
            assert_eq!(wide, words, "f = {f}, level {level}");
        }
    }
}

/// The lazy multi-term multiply-accumulate equals products added one by one.
#[test]
fn product_sums_equal_products_added_one_by_one() {
    let params = Params::q32();
    let n = params.n();
    let mut prg = Prg::from_seed([12; 16]);
    let sk = SecretKey::generate(&params, &mut prg);
    let ev = Evaluator::new(&params);
    let level = 3;
    let cts: Vec<Ciphertext> = (0..9)
        .map(|_| {
            let mut x = vec![0u64; n];
            prg.fill_uniform_below(&mut x, params.p());
            sk.encrypt_coeffs(&x, level, &mut prg).unwrap().expand()
        })
        .collect();
    let ws: Vec<PreparedPlaintext> = (0..9)
        .map(|_| weight_plaintext(&params, &weights(&mut prg, n, 40, COEFF_WEIGHT_BITS)))
        .collect();
    let mut want = cts[0].clone();
    ev.mul_plain_assign(&mut want, &ws[0]).unwrap();
    for (ct, w) in cts.iter().zip(&ws).skip(1) {
        ev.mul_plain_add_assign(&mut want, ct, w).unwrap();
    }
    let terms: Vec<_> = cts.iter().zip(&ws).collect();
    assert_eq!(ev.mul_plain_sum(&terms).unwrap(), want);
    let mut got = ev.mul_plain_sum(&terms[..4]).unwrap();
    ev.mul_plain_sum_add_assign(&mut got, &terms[4..]).unwrap();
    assert_eq!(got, want);
    assert!(ev.mul_plain_sum(&[]).is_err());
}

/// The fused return path (`finalize_coeffs`) gives the response of its definition: share,
/// re-randomise and flood, switch down, inverse transforms, extraction — the same bytes from
/// the same PRG draws.
#[test]
fn fused_return_path_equals_its_definition() {
    for (params, l1) in [
        (Params::q32(), 64 * 9),
        (Params::q24(), 16 * 9),
        (small().clone(), 9),
    ] {
        let n = params.n();
        let mut prg = Prg::from_seed([13; 16]);
        let sk = SecretKey::generate(&params, &mut prg);
        let pk = PublicKey::generate(&sk, &mut prg);
        let ev = Evaluator::new(&params);
        let plan = params.coeff_plan(l1, COEFF_WEIGHT_BITS).unwrap();
        let mut x = vec![0u64; n];
        prg.fill_uniform_below(&mut x, params.p());
        let mut ct = sk
            .encrypt_coeffs(&x, plan.upload_level, &mut prg)
            .unwrap()
            .expand();
        let w = weight_plaintext(&params, &weights(&mut prg, n, 9, COEFF_WEIGHT_BITS));
        ev.mul_plain_assign(&mut ct, &w).unwrap();
        let sel = Selection::new(&params, (0..n as u32).filter(|i| i % 5 == 2).collect()).unwrap();
        let mut mask = vec![0u64; sel.len()];
        prg.fill_uniform_below(&mut mask, params.p());
        let seed = prg.next_seed();
        let fused = ev
            .finalize_coeffs(
                ct.clone(),
                &sel,
                &mask,
                &plan,
                &pk,
                &mut Prg::from_seed(seed),
            )
            .unwrap();
        let mut prg = Prg::from_seed(seed);
        let mut c = ct;
        ev.share_coeffs(&mut c, &sel, &mask).unwrap();
        ev.rerandomize_and_flood_with(&mut c, &pk, plan.flood_bits, &mut prg)
            .unwrap();
        let target = plan.return_level.min(c.level);
        ev.mod_switch_to(&mut c, target).unwrap();
        let l = c.level;
        let inner = &params.inner;
        let (mut c0, mut c1) = (c.c0.clone(), c.c1.clone());
        poly::inverse(&inner.plans[..l], &mut c0, n);
        poly::inverse(&inner.plans[..l], &mut c1, n);
        let bits = if l == 1 {
            (plan.drop_bits, plan.a_drop_bits)
        } else {
            (0, 0)
        };
        let defined = ev.extract((c0, c1), l, &sel, bits, &mut prg);
        assert_eq!(fused, defined, "{}", params.name());
        assert_eq!(fused.to_bytes(), defined.to_bytes());
    }
}

/// The encrypted-weights mode (module docs of `coeff`, "Encrypted weights"): the server
/// encrypts `channels` weight polynomials (uniform residues: any weight) under its own key,
/// they travel as seeded ciphertexts, the client multiplies each by a share polynomial of
/// `terms` coefficients (uniform in `Z_p`, lifted centred; all at `±(p − 1)/2` if `extreme`),
/// sums, and returns with the server's public key; the server's decryption plus the client's
/// mask is the sum of negacyclic products at the selected coefficients. The plan is for
/// `plan_terms` share coefficients (at least `channels · terms`).
fn encrypted_weights_round_trip(
    params: &Params,
    (channels, terms, plan_terms): (usize, usize, u64),
    extreme: bool,
    seed: [u8; 16],
) -> CoeffPlan {
    assert!(plan_terms >= (channels * terms) as u64);
    let mut prg = Prg::from_seed(seed);
    // The server's key pair.
    let sk = SecretKey::generate(params, &mut prg);
    let pk = PublicKey::generate(&sk, &mut prg);
    let ev = Evaluator::new(params);
    let (n, p) = (params.n(), params.p());
    let plan = params.coeff_share_plan(plan_terms).unwrap();
    let half = (p - 1) / 2;
    let mut expected = vec![0u64; n];
    let mut terms_list = Vec::new();
    let mut cts = Vec::new();
    for _ in 0..channels {
        let mut w = vec![0u64; n];
        prg.fill_uniform_below(&mut w, p);
        let mut x = vec![0u64; n];
        for v in x.iter_mut().take(terms) {
            *v = if extreme {
                if prg.next_u64() & 1 == 0 {
                    half
                } else {
                    p - half
                }
            } else {
                prg.uniform_below(p)
            };
        }
        let signed: Vec<i64> = x
            .iter()
            .map(|&v| {
                if v > half {
                    v as i64 - p as i64
                } else {
                    v as i64
                }
            })
            .collect();
        for (e, v) in expected
            .iter_mut()
            .zip(negacyclic_mul_signed(&w, &signed, p))
        {
            *e = (*e + v) % p;
        }
        // The set-up message: one seeded ciphertext per weight polynomial.
        let enc = sk.encrypt_coeffs(&w, plan.upload_level, &mut prg).unwrap();
        let bytes = enc.to_bytes();
        assert_eq!(bytes.len(), params.coeff_upload_len(plan.upload_level));
        cts.push(
            decode_exact::<CoeffUpload>(&bytes, params)
                .unwrap()
                .expand(),
        );
        let pt = params.plaintext_from_coeffs(x).unwrap();
        terms_list.push(params.prepare_at(&pt, plan.upload_level));
    }
    let terms: Vec<_> = cts.iter().zip(&terms_list).collect();
    let acc = ev.mul_plain_sum(&terms).unwrap();
    let sel = Selection::new(params, (0..n as u32).filter(|i| i % 4 != 3).collect()).unwrap();
    let mut mask = vec![0u64; sel.len()];
    prg.fill_uniform_below(&mut mask, p);
    let resp = ev
        .finalize_coeffs(acc, &sel, &mask, &plan, &pk, &mut prg)
        .unwrap();
    let ctx = CoeffResponseContext {
        params: params.clone(),
        count: sel.len(),
        drop_bits: plan.drop_bits,
        a_drop_bits: plan.a_drop_bits,
    };
    let resp = decode_exact::<CoeffResponse>(&resp.to_bytes(), &ctx).unwrap();
    let share = sk.decrypt_coeffs(&resp, &sel).unwrap();
    for ((&j, &s), &m) in sel.indices().iter().zip(&share).zip(&mask) {
        assert_eq!((s + m) % p, expected[j as usize], "coefficient {j}");
    }
    plan
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(12))]

    /// Any weights, any share, any number of channels and share terms: the swapped roles give
    /// the products exactly.
    #[test]
    fn encrypted_weights_products_decrypt_exactly(
        seed in proptest::prelude::any::<[u8; 16]>(),
        channels in 1usize..4,
        terms in 1usize..=SMALL_N,
        extreme in proptest::prelude::any::<bool>(),
    ) {
        let plan_terms = (channels * terms) as u64;
        encrypted_weights_round_trip(small(), (channels, terms, plan_terms), extreme, seed);
    }
}

/// The ANCHORS layer's plan in the encrypted-weights mode (64 channels of a 58×58 region at
/// q32): four primes, `f = 117`, returned at one prime; and two full polynomials of
/// extreme shares decrypt exactly under it at both presets.
#[test]
fn encrypted_weights_survive_at_the_presets() {
    let anchors = 64 * 58 * 58;
    let plan = Params::q32().coeff_share_plan(anchors).unwrap();
    eprintln!("q32 ANCHORS encrypted weights: {plan:?}");
    assert_eq!(plan.flood_bits, 117);
    assert_eq!(plan.upload_level, 4);
    assert_eq!(plan.return_level, 1);
    for (params, seed) in [(Params::q32(), 31u8), (Params::q24(), 32)] {
        let n = params.n();
        let plan = encrypted_weights_round_trip(&params, (2, n, anchors), true, [seed; 16]);
        assert_eq!(plan.return_level, 1, "{}", params.name());
    }
}

/// The distinguisher of `distinguisher_sees_the_weights_only_without_enough_flooding` with
/// the roles swapped: the server holds the secret key and compares the noise of products of
/// its encrypted weights with two client shares of the same shape — all ones against
/// full-range values. It must tell them apart without a flood or with a noise-sized one, and
/// must not with the planned flood.
#[test]
fn distinguisher_sees_the_share_only_without_enough_flooding() {
    let params = small();
    let (n, p) = (params.n(), params.p());
    let mut prg = Prg::from_seed([7; 16]);
    let sk = SecretKey::generate(params, &mut prg);
    let pk = PublicKey::generate(&sk, &mut prg);
    let plan = params.coeff_share_plan(n as u64).unwrap();
    let share = |values: Vec<u64>| {
        let pt = params.plaintext_from_coeffs(values).unwrap();
        params.prepare_at(&pt, plan.upload_level)
    };
    let ones = share(vec![1; n]);
    let mut full = vec![0u64; n];
    prg.fill_uniform_below(&mut full, p);
    let full = share(full);
    let rounds = 16;
    let weights: Vec<Ciphertext> = (0..rounds)
        .map(|_| {
            let mut w = vec![0u64; n];
            prg.fill_uniform_below(&mut w, p);
            sk.encrypt_coeffs(&w, plan.upload_level, &mut prg)
                .unwrap()
                .expand()
        })
        .collect();
    let mut distance = |flood: Option<u32>| {
        flood_distance(
            params,
            (&sk, &pk),
            &weights,
            [&ones, &full],
            flood,
            &mut prg,
        )
    };
    let critical = ks_critical(weights.len() * n);
    let none = distance(None);
    // Full-range shares give noise of about 2^(19 + 4 + 2.2) here (256 terms of ≤ 2^19 times
    // a CBD error): a flood of 2^25 is of the noise's own size.
    let small_flood = distance(Some(25));
    let planned = distance(Some(plan.flood_bits));
    eprintln!(
        "KS distance: no flood {none:.3}, 2^25 flood {small_flood:.3}, planned 2^{} flood {planned:.4}, critical {critical:.4}",
        plan.flood_bits
    );
    assert!(none > 0.5, "unflooded noise must reveal the share");
    assert!(
        small_flood > critical,
        "a noise-sized flood must not hide the share"
    );
    assert!(planned < critical, "the planned flood must hide the share");
}
