//! Differential tests (every available backend against the scalar reference) and exactness
//! against integer arithmetic.

use proptest::prelude::*;

use super::*;
use crate::primes::primes_congruent_one;

/// A xorshift stream for test data.
fn stream(mut seed: u64) -> impl FnMut() -> u64 {
    seed |= 1;
    move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    }
}

/// `ℓ` distinct primes of `bits` bits (odd ones just below `2^bits`, from `skip` on).
fn primes(bits: u32, l: usize, skip: usize) -> Vec<u64> {
    primes_congruent_one(bits, 2, l + skip)[skip..].to_vec()
}

/// Residues of random `X`, limb-major with stride `stride`.
fn residues(q: &[u64], stride: usize, seed: u64) -> Vec<u64> {
    let mut next = stream(seed);
    let mut x = vec![0u64; q.len() * stride];
    for (limb, &qi) in x.chunks_mut(stride).zip(q) {
        for v in limb {
            *v = next() % qi;
        }
    }
    x
}

proptest! {
    #[test]
    fn scale_round_matches_scalar(
        q_bits in 20u32..=62,
        l in 1usize..=17,
        p_bits in 2u32..=61,
        len in 0usize..80,
        pad in 0usize..5,
        seed in any::<u64>(),
    ) {
        let q = primes(q_bits, l, 1);
        let p = primes(p_bits.min(q_bits - 1), 1, 0)[0];
        let stride = len + pad;
        let x = residues(&q, stride.max(1), seed);
        let stride = stride.max(1);
        let reference = ScaleRound::with_backend(&q, p, Backend::Scalar).unwrap();
        let mut want = vec![0u64; len];
        reference.round(&x, stride, &mut want);
        for (j, &w) in want.iter().enumerate() {
            prop_assert_eq!(w, reference.round_one((0..l).map(|i| x[i * stride + j])));
            prop_assert!(w < p);
        }
        for b in Backend::available() {
            let sr = ScaleRound::with_backend(&q, p, b).unwrap();
            let mut got = vec![u64::MAX; len];
            sr.round(&x, stride, &mut got);
            prop_assert_eq!(&got, &want, "{:?}", b);
        }
    }

    #[test]
    fn scale_round_is_round_p_x_over_q(
        q_bits in 16u32..=30,
        l in 1usize..=2,
        p_bits in 2u32..=28,
        seed in any::<u64>(),
    ) {
        // Q < 2^60 and p < 2^28: p·X fits in 128 bits, so the exact value is at hand.
        let q = primes(q_bits, l, 0);
        let p = primes(p_bits.min(q_bits - 1), 1, 0)[0];
        let big_q: u128 = q.iter().map(|&v| v as u128).product();
        let sr = ScaleRound::new(&q, p).unwrap();
        let mut next = stream(seed);
        for _ in 0..64 {
            let x = (next() as u128 * next() as u128) % big_q;
            let num = p as u128 * x;
            // Skip values within 2^-40 of a half (the documented approximation).
            let twice = (2 * num) % (2 * big_q);
            let dist = twice.abs_diff(big_q);
            if dist << 40 < 2 * big_q {
                continue;
            }
            let want = ((2 * num + big_q) / (2 * big_q)) % p as u128;
            let got = sr.round_one(q.iter().map(|&qi| (x % qi as u128) as u64));
            prop_assert_eq!(got as u128, want);
        }
    }

    #[test]
    fn precise_offsets_match_scalar(
        p_bits in 2u32..=61,
        len in 0usize..80,
        seed in any::<u64>(),
    ) {
        let p = primes(p_bits, 1, 0)[0];
        let mut next = stream(seed);
        let r = next() % p;
        let mut m: Vec<u64> = (0..len).map(|_| next() % p).collect();
        if let Some(v) = m.first_mut() {
            *v = p - 1;
        }
        let mut want = vec![0u64; len];
        precise_offsets_with(Backend::Scalar, &m, r, p, &mut want);
        for (&w, &c) in want.iter().zip(&m) {
            // Exactly round-half-up of r·c/p.
            let num = r as u128 * c as u128;
            prop_assert_eq!(w as u128, (2 * num + p as u128) / (2 * p as u128));
        }
        for b in Backend::available() {
            let mut got = vec![u64::MAX; len];
            precise_offsets_with(b, &m, r, p, &mut got);
            prop_assert_eq!(&got, &want, "{:?}", b);
        }
    }

    #[test]
    fn scale_add_signed_matches_scalar(
        q_bits in 3u32..=61,
        m_bits in 1u32..=52,
        wide in any::<bool>(),
        len in 0usize..80,
        seed in any::<u64>(),
    ) {
        let q = Modulus::with_backend(primes(q_bits, 1, 0)[0], Backend::Scalar).unwrap();
        let mut next = stream(seed);
        let d = next() % q.q();
        let m_bound = 1u64 << m_bits;
        let m: Vec<u64> = (0..len).map(|_| next() % m_bound).collect();
        // |y| < q, or (wide) anything up to 2^62.
        let y_bound = if wide { 1u64 << 62 } else { q.q() };
        let y: Vec<i64> = (0..len)
            .map(|_| ((next() % (2 * y_bound - 1)) as i64) - (y_bound as i64 - 1))
            .collect();
        let mut want = vec![0u64; len];
        scale_add_signed_with(Backend::Scalar, &q, d, &m, m_bound, &y, y_bound, &mut want);
        for ((&w, &c), &v) in want.iter().zip(&m).zip(&y) {
            let exact = (d as i128 * c as i128 + v as i128).rem_euclid(q.q() as i128);
            prop_assert_eq!(w as i128, exact);
        }
        for b in Backend::available() {
            let qb = Modulus::with_backend(q.q(), b).unwrap();
            let mut got = vec![u64::MAX; len];
            scale_add_signed_with(b, &qb, d, &m, m_bound, &y, y_bound, &mut got);
            prop_assert_eq!(&got, &want, "{:?}", b);
        }
    }
}

#[test]
fn scale_round_extremes_match_scalar() {
    // Largest residues at the fhe.rs shape (5 primes of 43–44 bits, a 20-bit p) and at 50 bits
    // with 15 primes (the vector path's column bounds).
    for (bits, l, p_bits) in [(44, 5, 20), (50, 15, 49), (50, 4, 32)] {
        let q = primes(bits, l, 0);
        let p = primes(p_bits, 1, 0)[0];
        let n = 24;
        let mut x = vec![0u64; l * n];
        for (limb, &qi) in x.chunks_mut(n).zip(&q) {
            for (j, v) in limb.iter_mut().enumerate() {
                *v = if j % 3 == 0 {
                    qi - 1
                } else {
                    qi - 1 - j as u64
                };
            }
        }
        let reference = ScaleRound::with_backend(&q, p, Backend::Scalar).unwrap();
        let mut want = vec![0u64; n];
        reference.round(&x, n, &mut want);
        for b in Backend::available() {
            let sr = ScaleRound::with_backend(&q, p, b).unwrap();
            let mut got = vec![0u64; n];
            sr.round(&x, n, &mut got);
            assert_eq!(got, want, "{b:?} bits {bits} l {l}");
        }
    }
}

#[test]
fn vector_path_serves_the_bfv_shapes_where_ifma_runs() {
    // The differential tests above compare something only if the IFMA path is taken.
    let q = primes(44, 5, 0);
    let sr = ScaleRound::with_backend(&q, primes(20, 1, 0)[0], Backend::Avx512).unwrap();
    assert_eq!(sr.vector, ifma(Backend::Avx512));
    let sr = ScaleRound::with_backend(&q, primes(20, 1, 0)[0], Backend::Scalar).unwrap();
    assert!(!sr.vector);
}

proptest! {
    #[test]
    fn mul_sum_pair_add_matches_scalar(
        q_bits in 3u32..=61,
        terms in 0usize..=18,
        len in 0usize..40,
        seed in any::<u64>(),
    ) {
        let q = Modulus::with_backend(primes(q_bits, 1, 0)[0], Backend::Scalar).unwrap();
        let mut next = stream(seed);
        let mut vecs = |count: usize| -> Vec<Vec<u64>> {
            (0..count)
                .map(|_| (0..len).map(|_| if next().is_multiple_of(5) { q.q() - 1 } else { next() % q.q() }).collect())
                .collect()
        };
        let (d, b, a) = (vecs(terms), vecs(terms), vecs(terms));
        let start = vecs(2);
        fn refs(v: &[Vec<u64>]) -> Vec<&[u64]> {
            v.iter().map(Vec::as_slice).collect()
        }
        let (dr, br, ar) = (refs(&d), refs(&b), refs(&a));
        let (mut want0, mut want1) = (start[0].clone(), start[1].clone());
        mul_sum_pair_add_with(Backend::Scalar, &q, &dr, &br, &ar, &mut want0, &mut want1);
        for e in 0..len {
            let exact = |k: &Vec<Vec<u64>>, init: u64| {
                (0..terms).fold(init as u128, |acc, i| {
                    (acc + d[i][e] as u128 * k[i][e] as u128) % q.q() as u128
                }) as u64
            };
            prop_assert_eq!(want0[e], exact(&b, start[0][e]));
            prop_assert_eq!(want1[e], exact(&a, start[1][e]));
        }
        for be in Backend::available() {
            let qb = Modulus::with_backend(q.q(), be).unwrap();
            let (mut got0, mut got1) = (start[0].clone(), start[1].clone());
            mul_sum_pair_add_with(be, &qb, &dr, &br, &ar, &mut got0, &mut got1);
            prop_assert_eq!(&got0, &want0, "{:?}", be);
            prop_assert_eq!(&got1, &want1, "{:?}", be);
        }
    }
}
