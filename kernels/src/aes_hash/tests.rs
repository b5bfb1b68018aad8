use super::*;
use aes::Aes128;
use aes::cipher::{BlockCipherEncrypt, KeyInit};
use proptest::prelude::*;

fn hex16(s: &str) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
    }
    out
}

fn block(s: &str) -> u128 {
    u128::from_le_bytes(hex16(s))
}

/// Engines this CPU runs; the others are reported as skipped.
fn engines() -> Vec<Engine> {
    for e in Engine::ALL {
        if !e.is_available() {
            eprintln!("aes_hash: engine {e} unavailable on this CPU: skipped");
        }
    }
    Engine::available()
}

/// Naive reference: one block at a time through the `aes` crate, σ by its definition.
fn reference_hash(x: u128, tweak: u128) -> u128 {
    let x_l = (x >> 64) as u64;
    let x_r = x as u64;
    let s = (u128::from(x_l ^ x_r) << 64) | u128::from(x_l);
    let cipher = Aes128::new(&FIXED_KEY.into());
    let mut b: aes::Block = (s ^ tweak).to_le_bytes().into();
    cipher.encrypt_block(&mut b);
    u128::from_le_bytes(b.into()) ^ s
}

#[test]
fn sbox_and_key_expansion_match_fips197_appendix_a1() {
    assert_eq!(SBOX[0x00], 0x63);
    assert_eq!(SBOX[0x53], 0xed);
    assert_eq!(SBOX[0xff], 0x16);
    let rk = expand_key(hex16("2b7e151628aed2a6abf7158809cf4f3c"));
    assert_eq!(rk[1], block("a0fafe1788542cb123a339392a6c7605"));
    assert_eq!(rk[10], block("d014f9a8c9ee2589e13f0cc8b6630ca6"));
}

#[test]
fn raw_encryption_matches_fips197_known_answers_on_every_engine() {
    let vectors = [
        // FIPS-197 Appendix B.
        (
            "2b7e151628aed2a6abf7158809cf4f3c",
            "3243f6a8885a308d313198a2e0370734",
            "3925841d02dc09fbdc118597196a0b32",
        ),
        // FIPS-197 Appendix C.1.
        (
            "000102030405060708090a0b0c0d0e0f",
            "00112233445566778899aabbccddeeff",
            "69c4e0d86a7b0430d8cdb78070b4c55a",
        ),
    ];
    for engine in engines() {
        for (key, pt, ct) in vectors {
            let h = FixedKeyHash::with_key(hex16(key), engine).unwrap();
            // Every length up to two full VAES iterations, so each tail path runs.
            for len in 1..=70 {
                let mut blocks = vec![block(pt); len];
                h.encrypt_blocks(&mut blocks);
                assert!(
                    blocks.iter().all(|&b| b == block(ct)),
                    "engine {engine}, len {len}"
                );
            }
        }
    }
}

#[test]
fn sigma_is_the_gkwy_orthomorphism() {
    let x = (0x0123_4567_89ab_cdefu128 << 64) | 0xfedc_ba98_7654_3210;
    let expected =
        ((0x0123_4567_89ab_cdefu128 ^ 0xfedc_ba98_7654_3210) << 64) | 0x0123_4567_89ab_cdef;
    assert_eq!(sigma(x), expected);
    // σ(x) ⊕ x is also a permutation: σ is an orthomorphism.
    assert_eq!(
        sigma(x) ^ x,
        ((0xfedc_ba98_7654_3210u128) << 64) | 0xfedc_ba98_7654_3210 ^ 0x0123_4567_89ab_cdef
    );
}

#[test]
fn hash_matches_naive_reference_on_edges_every_engine() {
    let edges = [0u128, 1, u128::MAX, 1 << 64, (1 << 64) - 1, 1 << 127];
    for engine in engines() {
        let h = FixedKeyHash::with_engine(engine).unwrap();
        for &x in &edges {
            for &t in &edges {
                assert_eq!(h.hash(x, t), reference_hash(x, t), "engine {engine}");
            }
        }
    }
}

#[test]
fn distinct_tweaks_give_distinct_outputs() {
    let h = FixedKeyHash::new();
    let x = 0x5555_aaaa_0000_ffff_1234_5678_9abc_def0u128;
    let tweaks: Vec<u128> = (0..1000).collect();
    let mut blocks = vec![x; tweaks.len()];
    h.hash_many(&mut blocks, &tweaks);
    let mut sorted = blocks.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), blocks.len());
    // And the hash is not the untweaked π(x) ⊕ x.
    let mut raw = [x];
    h.encrypt_blocks(&mut raw);
    assert_ne!(blocks[0], raw[0] ^ x);
}

#[test]
fn unavailable_engine_is_a_typed_error() {
    for e in Engine::ALL {
        let r = FixedKeyHash::with_engine(e);
        assert_eq!(r.is_ok(), e.is_available());
        if let Err(err) = r {
            assert_eq!(err, Error::AesEngineUnavailable(e));
        }
    }
}

proptest! {
    #[test]
    fn every_engine_equals_scalar_on_random_inputs(
        data in prop::collection::vec((any::<u128>(), any::<u128>()), 0..100),
    ) {
        let (xs, ts): (Vec<u128>, Vec<u128>) = data.into_iter().unzip();
        let scalar = FixedKeyHash::with_engine(Engine::Scalar).unwrap();
        let mut expected = xs.clone();
        scalar.hash_many(&mut expected, &ts);
        for (x, (t, e)) in xs.iter().zip(ts.iter().zip(&expected)) {
            prop_assert_eq!(*e, reference_hash(*x, *t));
        }
        for engine in Engine::available() {
            let h = FixedKeyHash::with_engine(engine).unwrap();
            let mut got = vec![0; xs.len()];
            h.hash_into(&xs, &ts, &mut got);
            prop_assert_eq!(&got, &expected, "engine {}", engine);
            let mut raw = xs.clone();
            let mut raw_scalar = xs.clone();
            h.encrypt_blocks(&mut raw);
            scalar.encrypt_blocks(&mut raw_scalar);
            prop_assert_eq!(&raw, &raw_scalar, "engine {}", engine);
        }
    }
}

proptest! {
    /// Every engine's half-tree level equals the definition, parent by parent, on every level
    /// size around the 32-block runs of the VAES engine (and on the empty level).
    #[test]
    fn half_tree_level_matches_definition_on_every_engine(
        parents in prop::collection::vec(any::<u128>(), 0..100),
        tweak in any::<u128>(),
    ) {
        let half = parents.len();
        let left: Vec<u128> = parents.iter().map(|&x| reference_hash(x, tweak)).collect();
        let right: Vec<u128> = parents.iter().zip(&left).map(|(&x, &l)| x ^ l).collect();
        let sums = [left.iter().fold(0, |a, &x| a ^ x), right.iter().fold(0, |a, &x| a ^ x)];
        for engine in engines() {
            let h = FixedKeyHash::with_engine(engine).unwrap();
            let mut nodes = parents.clone();
            nodes.extend(std::iter::repeat_n(u128::MAX, half));
            let got = h.half_tree_level(&mut nodes, tweak);
            prop_assert_eq!(&nodes[..half], &left[..], "engine {}", engine);
            prop_assert_eq!(&nodes[half..], &right[..], "engine {}", engine);
            prop_assert_eq!(got, sums, "engine {}", engine);
        }
    }
}

#[test]
#[should_panic(expected = "two children per parent")]
fn half_tree_level_refuses_an_odd_level() {
    FixedKeyHash::new().half_tree_level(&mut [0u128; 3], 0);
}

/// Half-gates by its definition, one instance at a time with [`reference_hash`].
fn reference_garble(delta: u128, a: u128, b: u128, t: GateTweaks, i: usize) -> (u128, u128, u128) {
    let (j, j1) = t.of(i);
    let (h0, h1) = (reference_hash(a, j), reference_hash(a ^ delta, j));
    let (h2, h3) = (reference_hash(b, j1), reference_hash(b ^ delta, j1));
    let pa = a & 1 == 1;
    let pb = b & 1 == 1;
    let tg = h0 ^ h1 ^ if pb { delta } else { 0 };
    let te = h2 ^ h3 ^ a;
    let wg = h0 ^ if pa { tg } else { 0 };
    let we = h2 ^ if pb { te ^ a } else { 0 };
    (wg ^ we, tg, te)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn half_gates_kernels_match_definition_and_compute_and(
        delta in any::<u128>(),
        labels in prop::collection::vec((any::<u128>(), any::<u128>(), any::<bool>(), any::<bool>()), 0..41),
        first in any::<u64>(), stride in 0u64..1000,
    ) {
        let delta = delta | 1;
        let t = GateTweaks { first: first >> 2, stride };
        let a0: Vec<u128> = labels.iter().map(|l| l.0).collect();
        let b0: Vec<u128> = labels.iter().map(|l| l.1).collect();
        let n = a0.len();
        for engine in Engine::available() {
            let h = FixedKeyHash::with_engine(engine).unwrap();
            let (mut out, mut tg, mut te) = (vec![0; n], vec![0; n], vec![0; n]);
            h.garble_and(delta, &a0, &b0, t, &mut out, &mut tg, &mut te);
            for i in 0..n {
                prop_assert_eq!((out[i], tg[i], te[i]), reference_garble(delta, a0[i], b0[i], t, i), "engine {} i {}", engine, i);
            }
            // Evaluating with active labels of bits (x, y) yields the label of x ∧ y.
            let a: Vec<u128> = labels.iter().map(|l| if l.2 { l.0 ^ delta } else { l.0 }).collect();
            let b: Vec<u128> = labels.iter().map(|l| if l.3 { l.1 ^ delta } else { l.1 }).collect();
            let mut c = vec![0; n];
            h.evaluate_and(&a, &b, &tg, &te, t, &mut c);
            for i in 0..n {
                let want = if labels[i].2 && labels[i].3 { out[i] ^ delta } else { out[i] };
                prop_assert_eq!(c[i], want, "engine {} i {}", engine, i);
            }
        }
    }
}
