use std::sync::OnceLock;

use bunet_kernels::primes::primes_congruent_one;
use proptest::prelude::*;

use super::*;
use crate::prg::Prg;
use crate::wire::{Encode, decode_exact};

/// The ring degree of the small insecure test parameters.
pub(super) const SMALL_N: usize = 256;

/// Small insecure parameters (N = 256, a 20-bit p, three 50-bit primes), built once.
pub(super) fn small() -> &'static Params {
    static P: OnceLock<Params> = OnceLock::new();
    P.get_or_init(|| {
        let two_n = 2 * SMALL_N as u64;
        let p = primes_congruent_one(20, two_n, 1)[0];
        let q = primes_congruent_one(50, two_n, 3);
        Params::insecure_for_tests(SMALL_N, p, &q).unwrap()
    })
}

fn q32() -> &'static Params {
    static P: OnceLock<Params> = OnceLock::new();
    P.get_or_init(Params::q32)
}

fn q24() -> &'static Params {
    static P: OnceLock<Params> = OnceLock::new();
    P.get_or_init(Params::q24)
}

/// `acc += ct ⊙ wp` (the first product starts the sum): HomConv's inner loop.
fn multiply_accumulate(
    ev: &Evaluator,
    acc: &mut Option<Ciphertext>,
    ct: Ciphertext,
    wp: &PreparedPlaintext,
) {
    match acc {
        None => {
            let mut c = ct;
            ev.mul_plain_assign(&mut c, wp).unwrap();
            *acc = Some(c);
        }
        Some(a) => ev.mul_plain_add_assign(a, &ct, wp).unwrap(),
    }
}

struct Keys {
    sk: SecretKey,
    pk: PublicKey,
    gk: GaloisKeys,
}

fn small_keys() -> &'static Keys {
    static K: OnceLock<Keys> = OnceLock::new();
    K.get_or_init(|| {
        let mut prg = Prg::from_seed([1; 16]);
        let sk = SecretKey::generate(small(), &mut prg);
        let pk = PublicKey::generate(&sk, &mut prg);
        let gk = GaloisKeys::generate(&sk, &[1, 2, 4, 8, 16, 32, 64, 5, -3], true, &mut prg);
        Keys { sk, pk, gk }
    })
}

fn slots(params: &Params, prg: &mut Prg) -> Vec<u64> {
    random_mask(params, prg)
}

/// Schoolbook product in `Z_p[X]/(X^N + 1)`.
fn negacyclic_mul(a: &[u64], b: &[u64], p: u64) -> Vec<u64> {
    let n = a.len();
    let mut out = vec![0u128; n];
    let p128 = p as u128;
    for (i, &ai) in a.iter().enumerate() {
        for (j, &bj) in b.iter().enumerate() {
            let prod = ai as u128 * bj as u128 % p128;
            let k = i + j;
            if k < n {
                out[k] = (out[k] + prod) % p128;
            } else {
                out[k - n] = (out[k - n] + p128 - prod) % p128;
            }
        }
    }
    out.into_iter().map(|v| v as u64).collect()
}

/// `a(X^g)` in `Z_p[X]/(X^N + 1)`.
fn automorphism(a: &[u64], g: u64, p: u64) -> Vec<u64> {
    let n = a.len() as u64;
    let mut out = vec![0u64; a.len()];
    for (i, &c) in a.iter().enumerate() {
        let e = i as u64 * g % (2 * n);
        if e < n {
            out[e as usize] = (out[e as usize] + c) % p;
        } else {
            out[(e - n) as usize] = (out[(e - n) as usize] + p - c) % p;
        }
    }
    out
}

fn rotate_rows_plain(x: &[u64], k: i64) -> Vec<u64> {
    let half = x.len() / 2;
    let k = k.rem_euclid(half as i64) as usize;
    let mut out = vec![0; x.len()];
    for r in 0..2 {
        for j in 0..half {
            out[r * half + j] = x[r * half + (j + k) % half];
        }
    }
    out
}

fn decrypt_slots(sk: &SecretKey, ct: &Ciphertext) -> Vec<u64> {
    sk.params().decode(&sk.decrypt(ct).unwrap())
}

#[test]
fn presets_are_secure_and_return_at_one_prime() {
    for params in [q32(), q24()] {
        assert!(params.is_secure());
        assert_eq!(params.n(), 8192);
        assert_eq!(params.p() % (2 * 8192), 1);
        assert!(params.log2_q() <= max_log2_q_128(8192).unwrap() as f64);
        assert!(params.moduli().iter().all(|&q| q < 1 << 50));
        assert_eq!(params.return_level(), 1);
    }
    assert!(q32().p() < 1 << 32 && q32().p() > 1 << 31);
    assert!(q24().p() < 1 << 24 && q24().p() > 1 << 23);
    assert_ne!(q32().fingerprint(), q24().fingerprint());
    assert_eq!(q32().fingerprint(), Params::q32().fingerprint());
}

#[test]
fn insecure_and_malformed_parameter_sets_are_refused() {
    let two_n = 2 * 8192;
    let p = primes_congruent_one(32, two_n, 1)[0];
    let q = primes_congruent_one(50, two_n, 5); // 250 bits > 218
    assert!(matches!(
        Params::new(8192, p, &q),
        Err(PaheError::Param(ParamError::Insecure {
            max_log2_q: 218,
            ..
        }))
    ));
    assert!(Params::new(8192, p, &q[..4]).is_ok());
    let q4096 = primes_congruent_one(50, 8192, 3); // 150 bits > 109
    let p4096 = primes_congruent_one(20, 8192, 1)[0];
    assert!(matches!(
        Params::new(4096, p4096, &q4096),
        Err(PaheError::Param(ParamError::Insecure { .. }))
    ));
    assert!(matches!(
        Params::new(2048, p, &q[..1]),
        Err(PaheError::Param(ParamError::Degree { .. }))
    ));
    assert!(matches!(
        Params::new(8192, p + 2, &q[..4]),
        Err(PaheError::Param(ParamError::NotNttPrime { .. }))
    ));
    assert!(matches!(
        Params::new(8192, p, &[q[0], q[0]]),
        Err(PaheError::Param(ParamError::PrimeCount { .. }))
    ));
    assert!(matches!(
        Params::new(8192, p, &[]),
        Err(PaheError::Param(ParamError::PrimeCount { .. }))
    ));
    // One 50-bit prime is secure but cannot hold the worst HomConv.
    assert!(matches!(
        Params::new(8192, p, &q[..1]),
        Err(PaheError::Param(ParamError::NoiseBudget { .. }))
    ));
}

#[test]
fn slot_encoding_turns_products_into_hadamard_and_automorphisms_into_row_rotations() {
    let params = small();
    let p = params.p();
    let mut prg = Prg::from_seed([2; 16]);
    let a = slots(params, &mut prg);
    let b = slots(params, &mut prg);
    let pa = params.encode(&a).unwrap();
    let pb = params.encode(&b).unwrap();
    assert_eq!(params.decode(&pa), a);
    let prod = negacyclic_mul(pa.coeffs(), pb.coeffs(), p);
    let got = params.decode(&params.plaintext_from_coeffs(prod).unwrap());
    let want: Vec<u64> = a
        .iter()
        .zip(&b)
        .map(|(&x, &y)| (x as u128 * y as u128 % p as u128) as u64)
        .collect();
    assert_eq!(got, want);
    for k in [1i64, 3, -1, 100] {
        let g = params.rotation_element(k);
        let rotated = automorphism(pa.coeffs(), g, p);
        let got = params.decode(&params.plaintext_from_coeffs(rotated).unwrap());
        assert_eq!(got, rotate_rows_plain(&a, k), "k = {k}");
    }
    let swapped = automorphism(pa.coeffs(), params.row_swap_element(), p);
    let got = params.decode(&params.plaintext_from_coeffs(swapped).unwrap());
    let half = SMALL_N / 2;
    assert_eq!(&got[..half], &a[half..]);
    assert_eq!(&got[half..], &a[..half]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn decrypt_inverts_secret_and_public_key_encryption(seed in any::<[u8; 16]>()) {
        let keys = small_keys();
        let params = small();
        let mut prg = Prg::from_seed(seed);
        let x = slots(params, &mut prg);
        let pt = params.encode(&x).unwrap();
        let ct = keys.sk.encrypt(&pt, &mut prg);
        prop_assert_eq!(decrypt_slots(&keys.sk, &ct), x.clone());
        let ct = keys.pk.encrypt(&pt, &mut prg);
        prop_assert_eq!(decrypt_slots(&keys.sk, &ct), x.clone());
        let many = keys.sk.encrypt_seeded_many(&[pt.clone(), pt], &mut prg);
        prop_assert_ne!(&many[0], &many[1]);
        for ct in &many {
            prop_assert_eq!(decrypt_slots(&keys.sk, &ct.expand()), x.clone());
        }
    }

    #[test]
    fn homomorphic_ops_agree_with_plain_ops_mod_p(seed in any::<[u8; 16]>(), k in -200i64..200) {
        let keys = small_keys();
        let params = small();
        let ev = Evaluator::new(params);
        let p = params.p();
        let mut prg = Prg::from_seed(seed);
        let x = slots(params, &mut prg);
        let y = slots(params, &mut prg);
        let w = slots(params, &mut prg);
        let cx = keys.sk.encrypt(&params.encode(&x).unwrap(), &mut prg);
        let cy = keys.pk.encrypt(&params.encode(&y).unwrap(), &mut prg);
        let add = |a: u64, b: u64| (a + b) % p;
        let sub = |a: u64, b: u64| (a + p - b) % p;
        let mul = |a: u64, b: u64| (a as u128 * b as u128 % p as u128) as u64;
        let zip = |a: &[u64], b: &[u64], f: &dyn Fn(u64, u64) -> u64| -> Vec<u64> {
            a.iter().zip(b).map(|(&s, &t)| f(s, t)).collect()
        };

        let mut c = cx.clone();
        ev.add_assign(&mut c, &cy).unwrap();
        prop_assert_eq!(decrypt_slots(&keys.sk, &c), zip(&x, &y, &add));
        let mut c = cx.clone();
        ev.sub_assign(&mut c, &cy).unwrap();
        prop_assert_eq!(decrypt_slots(&keys.sk, &c), zip(&x, &y, &sub));
        let mut c = cx.clone();
        ev.add_plain_assign(&mut c, &params.encode(&w).unwrap()).unwrap();
        prop_assert_eq!(decrypt_slots(&keys.sk, &c), zip(&x, &w, &add));
        let mut c = cx.clone();
        ev.sub_plain_assign(&mut c, &params.encode(&w).unwrap()).unwrap();
        prop_assert_eq!(decrypt_slots(&keys.sk, &c), zip(&x, &w, &sub));
        let mut c = cx.clone();
        ev.negate_assign(&mut c).unwrap();
        prop_assert_eq!(decrypt_slots(&keys.sk, &c), zip(&x, &x, &|a, _| (p - a) % p));
        let prepared = params.prepare(&params.encode(&w).unwrap());
        let mut c = cx.clone();
        ev.mul_plain_assign(&mut c, &prepared).unwrap();
        prop_assert_eq!(decrypt_slots(&keys.sk, &c), zip(&x, &w, &mul));
        let mut acc = cy.clone();
        ev.mul_plain_add_assign(&mut acc, &cx, &prepared).unwrap();
        let xw = zip(&x, &w, &mul);
        prop_assert_eq!(decrypt_slots(&keys.sk, &acc), zip(&y, &xw, &add));
        let r = ev.rotate_rows(&cx, k, &keys.gk).unwrap();
        prop_assert_eq!(decrypt_slots(&keys.sk, &r), rotate_rows_plain(&x, k));
        let s = ev.swap_rows(&cx, &keys.gk).unwrap();
        let half = SMALL_N / 2;
        let mut swapped = x[half..].to_vec();
        swapped.extend_from_slice(&x[..half]);
        prop_assert_eq!(decrypt_slots(&keys.sk, &s), swapped);
    }

    #[test]
    fn modulus_switching_preserves_the_message(seed in any::<[u8; 16]>(), target in 1usize..=3) {
        let keys = small_keys();
        let params = small();
        let ev = Evaluator::new(params);
        let mut prg = Prg::from_seed(seed);
        let x = slots(params, &mut prg);
        let mut ct = keys.pk.encrypt(&params.encode(&x).unwrap(), &mut prg);
        ev.mod_switch_to(&mut ct, target).unwrap();
        prop_assert_eq!(ct.level(), target);
        prop_assert_eq!(decrypt_slots(&keys.sk, &ct), x.clone());
        // Operations keep working at the lower level.
        let r = ev.rotate_rows(&ct, 1, &keys.gk);
        if target >= 2 {
            prop_assert_eq!(decrypt_slots(&keys.sk, &r.unwrap()), rotate_rows_plain(&x, 1));
        }
    }

    #[test]
    fn reconstruct_of_decrypted_share_and_mask_is_the_value(seed in any::<[u8; 16]>()) {
        let keys = small_keys();
        let params = small();
        let ev = Evaluator::new(params);
        let mut prg = Prg::from_seed(seed);
        let x = slots(params, &mut prg);
        let s_b = random_mask(params, &mut prg);
        let mut ct = keys.sk.encrypt(&params.encode(&x).unwrap(), &mut prg);
        ev.share(&mut ct, &s_b).unwrap();
        let s_a = decrypt_slots(&keys.sk, &ct);
        prop_assert_eq!(reconstruct(params, &s_a, &s_b).unwrap(), x.clone());
        let ct = keys.sk.encrypt(&params.encode(&x).unwrap(), &mut prg);
        let back = ev.finalize_for_return(ct, &s_b, &keys.pk, &mut prg).unwrap();
        prop_assert_eq!(back.level(), params.return_level());
        let s_a = decrypt_slots(&keys.sk, &back);
        prop_assert_eq!(reconstruct(params, &s_a, &s_b).unwrap(), x);
    }

    #[test]
    fn wire_round_trips_and_damage_is_rejected_or_valid(seed in any::<[u8; 16]>(), flips in proptest::collection::vec(any::<usize>(), 16)) {
        let keys = small_keys();
        let params = small();
        let ev = Evaluator::new(params);
        let mut prg = Prg::from_seed(seed);
        let x = slots(params, &mut prg);
        let pt = params.encode(&x).unwrap();
        let seeded = keys.sk.encrypt_seeded(&pt, &mut prg);
        let mut ct = seeded.expand();
        let bytes = seeded.to_bytes();
        let back: SeededCiphertext = decode_exact(&bytes, params).unwrap();
        prop_assert_eq!(&back, &seeded);
        prop_assert_eq!(decrypt_slots(&keys.sk, &back.expand()), x.clone());
        let full = ct.to_bytes();
        prop_assert!(bytes.len() * 2 < full.len() + 40);
        let back: Ciphertext = decode_exact(&full, params).unwrap();
        prop_assert_eq!(&back, &ct);
        ev.mod_switch_to(&mut ct, 1).unwrap();
        let small_bytes = ct.to_bytes();
        prop_assert!(small_bytes.len() * 2 < full.len());
        prop_assert_eq!(&decode_exact::<Ciphertext>(&small_bytes, params).unwrap(), &ct);
        let pk_bytes = keys.pk.to_bytes();
        prop_assert_eq!(&decode_exact::<PublicKey>(&pk_bytes, params).unwrap(), &keys.pk);

        for bytes in [&bytes, &full, &small_bytes, &pk_bytes] {
            // Truncations.
            for cut in [0, 1, 16, 17, bytes.len() / 2, bytes.len() - 1] {
                prop_assert!(decode_exact::<Ciphertext>(&bytes[..cut], params).is_err()
                    || cut == bytes.len());
                prop_assert!(decode_exact::<SeededCiphertext>(&bytes[..cut], params).is_err());
                prop_assert!(decode_exact::<PublicKey>(&bytes[..cut], params).is_err());
            }
            // Bit flips: rejected, or a valid object that re-encodes to the same bytes.
            for &f in &flips {
                let mut damaged = bytes.clone();
                let bit = f % (damaged.len() * 8);
                damaged[bit / 8] ^= 1 << (bit % 8);
                if let Ok(c) = decode_exact::<Ciphertext>(&damaged, params) {
                    prop_assert_eq!(c.to_bytes(), damaged.clone());
                }
                if let Ok(c) = decode_exact::<SeededCiphertext>(&damaged, params) {
                    prop_assert_eq!(c.to_bytes(), damaged.clone());
                }
                if let Ok(c) = decode_exact::<PublicKey>(&damaged, params) {
                    prop_assert_eq!(c.to_bytes(), damaged.clone());
                }
            }
        }
    }

    #[test]
    fn decoders_never_panic_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let params = small();
        let _ = decode_exact::<Ciphertext>(&bytes, params);
        let _ = decode_exact::<SeededCiphertext>(&bytes, params);
        let _ = decode_exact::<PublicKey>(&bytes, params);
        let _ = decode_exact::<GaloisKeys>(&bytes, params);
    }
}

#[test]
fn galois_keys_round_trip_and_reject_bad_elements() {
    let keys = small_keys();
    let params = small();
    let bytes = keys.gk.to_bytes();
    let back: GaloisKeys = decode_exact(&bytes, params).unwrap();
    assert_eq!(back, keys.gk);
    for cut in [0, 1, 2, 5, bytes.len() / 3, bytes.len() - 1] {
        assert!(decode_exact::<GaloisKeys>(&bytes[..cut], params).is_err());
    }
    // First element replaced by an even one, then by a duplicate of the second.
    let mut bad = bytes.clone();
    bad[2] = 2;
    bad[3..6].fill(0);
    assert!(decode_exact::<GaloisKeys>(&bad, params).is_err());
    let mut huge = bytes.clone();
    huge[0..2].copy_from_slice(&u16::MAX.to_le_bytes());
    assert!(matches!(
        decode_exact::<GaloisKeys>(&huge, params),
        Err(crate::wire::WireError::TooLong { .. })
    ));
}

#[test]
fn objects_of_another_parameter_set_are_refused() {
    let keys = small_keys();
    let mut prg = Prg::from_seed([3; 16]);
    let sk = SecretKey::generate(q24(), &mut prg);
    let ct = keys
        .sk
        .encrypt(&small().encode(&vec![0; SMALL_N]).unwrap(), &mut prg);
    assert!(matches!(
        sk.decrypt(&ct),
        Err(PaheError::ParamsMismatch { .. })
    ));
    let ev = Evaluator::new(q24());
    let mut c = ct.clone();
    assert!(ev.add_assign(&mut c, &ct).is_err());
    assert!(matches!(
        small().encode(&[1, 2, 3]),
        Err(PaheError::Slots { .. })
    ));
}

/// The worst HomConv of the seed's UNet at a real preset: 256 input channels, each a fresh
/// secret-key ciphertext times a full-range plaintext, summed, plus the server's own share,
/// then Share, flooding and modulus switching to the return level. Decryption must be exact
/// and the measured budget at least the preset's margin.
fn worst_homconv_survives(params: &Params) {
    let mut prg = Prg::from_seed([4; 16]);
    let sk = SecretKey::generate(params, &mut prg);
    let pk = PublicKey::generate(&sk, &mut prg);
    let ev = Evaluator::new(params);
    let p = params.p();
    let n = params.n();
    let channels = HOMCONV_MAX_CHANNELS as usize;
    let mut expected = vec![0u64; n];
    let mut acc: Option<Ciphertext> = None;
    for _ in 0..channels {
        let x = slots(params, &mut prg);
        let w = slots(params, &mut prg);
        for ((e, &a), &b) in expected.iter_mut().zip(&x).zip(&w) {
            *e = ((*e as u128 + a as u128 * b as u128) % p as u128) as u64;
        }
        let ct = sk
            .encrypt_seeded(&params.encode(&x).unwrap(), &mut prg)
            .expand();
        let wp = params.prepare(&params.encode(&w).unwrap());
        multiply_accumulate(&ev, &mut acc, ct, &wp);
    }
    let mut acc = acc.unwrap();
    let own = slots(params, &mut prg);
    ev.add_plain_assign(&mut acc, &params.encode(&own).unwrap())
        .unwrap();
    for (e, &o) in expected.iter_mut().zip(&own) {
        *e = (*e + o) % p;
    }
    let before = sk.noise_budget(&acc).unwrap();
    let mask = random_mask(params, &mut prg);
    let back = ev.finalize_for_return(acc, &mask, &pk, &mut prg).unwrap();
    assert_eq!(back.level(), params.return_level());
    let budget = sk.noise_budget(&back).unwrap();
    eprintln!(
        "{}: budget before return {before:.1} bits, after flood + switch to level {} {budget:.1} bits",
        params.name(),
        back.level()
    );
    let s_a = decrypt_slots(&sk, &back);
    assert_eq!(reconstruct(params, &s_a, &mask).unwrap(), expected);
    assert!(budget >= RETURN_MARGIN_BITS as f64, "budget {budget}");
}

#[test]
fn worst_homconv_survives_flooding_and_switching_q32() {
    worst_homconv_survives(q32());
}

#[test]
fn worst_homconv_survives_flooding_and_switching_q24() {
    worst_homconv_survives(q24());
}

/// The smooth flood: centred, within `±3·2^(f−1)`, with the variance of a sum of three
/// uniforms of `[0, 2^f)` (`2^(2f)/4`, against `3·2^(2f)/4` for one uniform of the same
/// range), the same integer in every limb — for an exponent within one word and one beyond
/// (the multi-word path the presets' floods take).
#[test]
fn the_smooth_flood_has_its_range_and_variance() {
    let params = q32();
    let ev = Evaluator::new(params);
    let mut prg = Prg::from_seed([9; 16]);
    let n = params.n();
    let q = params.moduli();
    let (q0, q1) = (q[0] as i128, q[1] as i128);
    // q0^-1 mod q1, for the CRT of the two limbs (q0·q1 ≈ 2^91 holds a flood of 2^71).
    let q0_inv = {
        let (mut t, mut new_t, mut r, mut new_r) = (0i128, 1i128, q1, q0 % q1);
        while new_r != 0 {
            let k = r / new_r;
            (t, new_t) = (new_t, t - k * new_t);
            (r, new_r) = (new_r, r - k * new_r);
        }
        t.rem_euclid(q1)
    };
    for f in [20u32, 70] {
        let u = 2f64.powi(f as i32);
        let (mut sum, mut sq, mut max) = (0f64, 0f64, 0f64);
        let rounds = 8;
        for _ in 0..rounds {
            let flood = ev.flood_noise(2, f, &mut prg);
            for i in 0..n {
                let (r0, r1) = (flood[i] as i128, flood[n + i] as i128);
                let x = r0 + q0 * ((r1 - r0).rem_euclid(q1) * q0_inv % q1);
                let c = if x > q0 * q1 / 2 { x - q0 * q1 } else { x } as f64;
                sum += c;
                sq += c * c;
                max = f64::max(max, c.abs());
            }
        }
        let count = (rounds * n) as f64;
        let var = sq / count - (sum / count).powi(2);
        eprintln!(
            "f = {f}: mean / U {:.4}, variance / (U²/4) {:.4}, max / (3U/2) {:.4}",
            sum / count / u,
            var / (u * u / 4.0),
            max / (1.5 * u)
        );
        assert!(max <= 1.5 * u, "range");
        assert!(max > 1.2 * u, "the range is used");
        assert!((sum / count).abs() < 0.02 * u, "centred");
        assert!((var / (u * u / 4.0) - 1.0).abs() < 0.03, "variance U²/4");
    }
}

/// Circuit privacy: the ciphertexts a server returns for two very different weight sets (all
/// ones vs. full-range) have indistinguishable decrypted-noise distributions once flooded, and
/// clearly different ones without flooding (so the check can fail).
#[test]
fn flooding_hides_the_weights_in_the_noise() {
    let params = q32();
    let mut prg = Prg::from_seed([5; 16]);
    let sk = SecretKey::generate(params, &mut prg);
    let pk = PublicKey::generate(&sk, &mut prg);
    let ev = Evaluator::new(params);
    let n = params.n();
    let inputs: Vec<Ciphertext> = (0..2)
        .map(|_| {
            let x = slots(params, &mut prg);
            sk.encrypt(&params.encode(&x).unwrap(), &mut prg)
        })
        .collect();
    let ones = params.prepare(&params.encode(&vec![1; n]).unwrap());
    let full: Vec<PreparedPlaintext> = (0..2)
        .map(|_| params.prepare(&params.encode(&slots(params, &mut prg)).unwrap()))
        .collect();
    let conv = |w: &[&PreparedPlaintext]| {
        let mut acc = inputs[0].clone();
        ev.mul_plain_assign(&mut acc, w[0]).unwrap();
        ev.mul_plain_add_assign(&mut acc, &inputs[1], w[1]).unwrap();
        acc
    };
    let ct_ones = conv(&[&ones, &ones]);
    let ct_full = conv(&[&full[0], &full[1]]);

    let noise = |ct: &Ciphertext| sk.invariant_noise_log2(ct).unwrap();
    let critical = 2.76 * (2.0 / n as f64).sqrt(); // KS at α ≈ 1e-6
    let d_plain = crate::test_support::ks_statistic(&noise(&ct_ones), &noise(&ct_full));
    let mut f_ones = ct_ones.clone();
    let mut f_full = ct_full.clone();
    ev.rerandomize_and_flood(&mut f_ones, &pk, &mut prg)
        .unwrap();
    ev.rerandomize_and_flood(&mut f_full, &pk, &mut prg)
        .unwrap();
    let d_flooded = crate::test_support::ks_statistic(&noise(&f_ones), &noise(&f_full));
    eprintln!(
        "KS distance: unflooded {d_plain:.3}, flooded {d_flooded:.4}, critical {critical:.4}"
    );
    assert!(d_plain > 0.5, "unflooded noise should reveal the weights");
    assert!(
        d_flooded < critical,
        "flooded noise must not reveal the weights"
    );
}

/// The HomConv message flow between two parties, over an in-memory pair and over TCP: the client
/// sends its public key and seeded ciphertexts, the server multiplies by its filters, sums, adds
/// its own share, masks, floods and switches down, and the shares reconstruct the result.
#[test]
fn two_party_homconv_flow_over_memory_and_tcp() {
    use crate::channel::{Channel, ChannelConfig};
    use std::net::{TcpListener, TcpStream};
    use std::thread;

    let tcp = || {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let client = thread::spawn(move || TcpStream::connect(addr).unwrap());
        let (server, _) = listener.accept().unwrap();
        (
            Channel::tcp(server, ChannelConfig::default()).unwrap(),
            Channel::tcp(client.join().unwrap(), ChannelConfig::default()).unwrap(),
        )
    };
    for (mut server, mut client) in [Channel::in_memory_pair(ChannelConfig::default()), tcp()] {
        let params = small().clone();
        let channels = 3;
        let mut prg = Prg::from_seed([6; 16]);
        let inputs: Vec<Vec<u64>> = (0..channels).map(|_| slots(&params, &mut prg)).collect();
        let filters: Vec<Vec<u64>> = (0..channels).map(|_| slots(&params, &mut prg)).collect();
        let own = slots(&params, &mut prg);
        let p = params.p();
        let mut expected = own.clone();
        for (x, w) in inputs.iter().zip(&filters) {
            for ((e, &a), &b) in expected.iter_mut().zip(x).zip(w) {
                *e = ((*e as u128 + a as u128 * b as u128) % p as u128) as u64;
            }
        }

        let server_params = params.clone();
        let bob = thread::spawn(move || {
            let params = server_params;
            let mut prg = Prg::from_seed([7; 16]);
            server.set_label("pahe");
            let pk: PublicKey = server
                .recv_message(KIND_PUBLIC_KEY, params.public_key_len(), &params)
                .unwrap();
            let ev = Evaluator::new(&params);
            let mut acc: Option<Ciphertext> = None;
            for w in &filters {
                let ct: SeededCiphertext = server
                    .recv_message(
                        KIND_SEEDED_CIPHERTEXT,
                        params.seeded_ciphertext_len(),
                        &params,
                    )
                    .unwrap();
                let wp = params.prepare(&params.encode(w).unwrap());
                let ct = ct.expand();
                multiply_accumulate(&ev, &mut acc, ct, &wp);
            }
            let mut acc = acc.unwrap();
            ev.add_plain_assign(&mut acc, &params.encode(&own).unwrap())
                .unwrap();
            let s_b = random_mask(&params, &mut prg);
            let back = ev.finalize_for_return(acc, &s_b, &pk, &mut prg).unwrap();
            server.send_message(KIND_CIPHERTEXT, &back).unwrap();
            server.flush().unwrap();
            (s_b, server.meter().get("pahe"))
        });

        client.set_label("pahe");
        let sk = SecretKey::generate(&params, &mut prg);
        let pk = PublicKey::generate(&sk, &mut prg);
        client.send_message(KIND_PUBLIC_KEY, &pk).unwrap();
        for x in &inputs {
            let ct = sk.encrypt_seeded(&params.encode(x).unwrap(), &mut prg);
            client.send_message(KIND_SEEDED_CIPHERTEXT, &ct).unwrap();
        }
        client.flush().unwrap();
        let back: Ciphertext = client
            .recv_message(
                KIND_CIPHERTEXT,
                params.ciphertext_len(params.max_level()),
                &params,
            )
            .unwrap();
        assert_eq!(back.to_bytes().len(), params.ciphertext_len(back.level()));
        let s_a = decrypt_slots(&sk, &back);
        let (s_b, bob_traffic) = bob.join().unwrap();
        assert_eq!(reconstruct(&params, &s_a, &s_b).unwrap(), expected);
        let alice_traffic = client.meter().get("pahe");
        assert_eq!(alice_traffic.bytes_sent, bob_traffic.bytes_received);
        let payload = params.public_key_len() + channels * params.seeded_ciphertext_len();
        assert!(alice_traffic.bytes_sent >= payload as u64);
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Frozen vectors of format version 1: a deterministic seeded ciphertext and public key at the
/// small test set, and the preset fingerprints. A change here is a wire-format change.
#[test]
fn encodings_and_fingerprints_are_frozen_for_format_version_1() {
    let params = small();
    let mut prg = Prg::from_seed([9; 16]);
    let sk = SecretKey::generate(params, &mut prg);
    let pk = PublicKey::generate(&sk, &mut prg);
    let pt = params
        .encode(&(0..SMALL_N as u64).collect::<Vec<_>>())
        .unwrap();
    let ct = sk.encrypt_seeded(&pt, &mut prg);
    let got = [
        fnv1a(&ct.to_bytes()),
        fnv1a(&pk.to_bytes()),
        Params::q32().fingerprint(),
        Params::q24().fingerprint(),
    ];
    eprintln!("frozen: {got:#018x?}");
    assert_eq!(got, FROZEN);
}

// Refrozen when encryption moved to the precise scaling round(Q·m/p) (the seeded
// ciphertext's c0) and the flood to the volume-level bound (the preset fingerprints), and
// again when the smooth flood shrank the presets' primes (the preset fingerprints).
const FROZEN: [u64; 4] = [
    0x4e99_c952_6ba6_3369,
    0x5f4a_8589_1b7b_0a01,
    0x9242_bdef_d0f8_d439,
    0xbaf3_128d_0989_3d31,
];

/// The evaluator runs its limb loops inline in a one-thread pool and through rayon otherwise:
/// both paths give identical ciphertexts (and encryption/decryption agree across them).
#[test]
fn one_thread_and_pool_paths_agree() {
    let params = small();
    let keys = small_keys();
    let ev = Evaluator::new(params);
    let mut prg = Prg::from_seed([7; 16]);
    let x = slots(params, &mut prg);
    let w = slots(params, &mut prg);
    let ca = keys.sk.encrypt(&params.encode(&x).unwrap(), &mut prg);
    let cb = keys.pk.encrypt(&params.encode(&w).unwrap(), &mut prg);
    let prepared = params.prepare(&params.encode(&w).unwrap());
    let run = || {
        let mut s = ca.clone();
        ev.add_assign(&mut s, &cb).unwrap();
        ev.sub_assign(&mut s, &ca).unwrap();
        ev.negate_assign(&mut s).unwrap();
        let mut m = ca.clone();
        ev.mul_plain_assign(&mut m, &prepared).unwrap();
        ev.mul_plain_add_assign(&mut m, &cb, &prepared).unwrap();
        let r = ev.rotate_rows(&m, 5, &keys.gk).unwrap();
        let d = decrypt_slots(&keys.sk, &r);
        (s, m, r, d)
    };
    let pools: Vec<_> = [1, 2]
        .into_iter()
        .map(|t| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(t)
                .build()
                .unwrap()
                .install(run)
        })
        .collect();
    assert!(pools[0] == pools[1]);
    // And the result is right: −(x + w − x) = −w, then x⊙w + w⊙w rotated by 5.
    let p = params.p();
    let neg_w: Vec<u64> = w.iter().map(|&v| (p - v) % p).collect();
    assert_eq!(decrypt_slots(&keys.sk, &pools[0].0), neg_w);
    let prod: Vec<u64> = x
        .iter()
        .zip(&w)
        .map(|(&a, &b)| ((a as u128 * b as u128 + b as u128 * b as u128) % p as u128) as u64)
        .collect();
    assert_eq!(pools[0].3, rotate_rows_plain(&prod, 5));
}
