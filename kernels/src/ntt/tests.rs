// Index loops mirror the schoolbook formulas they check against.
#![allow(clippy::needless_range_loop)]

use super::*;
use crate::primes::primes_congruent_one;
use proptest::prelude::*;

/// Schoolbook product in `Z_q[X]/(X^n + 1)`.
fn naive_negacyclic(a: &[u64], b: &[u64], q: u64) -> Vec<u64> {
    let n = a.len();
    let mut c = vec![0u128; n];
    let qq = q as u128;
    for i in 0..n {
        for j in 0..n {
            let prod = a[i] as u128 * b[j] as u128 % qq;
            let k = (i + j) % n;
            c[k] = if i + j < n {
                (c[k] + prod) % qq
            } else {
                (c[k] + qq - prod) % qq
            };
        }
    }
    c.into_iter().map(|x| x as u64).collect()
}

/// Schoolbook cyclic convolution mod q.
fn naive_cyclic(a: &[u64], b: &[u64], q: u64) -> Vec<u64> {
    let n = a.len();
    let mut c = vec![0u128; n];
    for i in 0..n {
        for j in 0..n {
            c[(i + j) % n] = (c[(i + j) % n] + a[i] as u128 * b[j] as u128) % q as u128;
        }
    }
    c.into_iter().map(|x| x as u64).collect()
}

fn prime(bits: u32, n: usize) -> u64 {
    primes_congruent_one(bits, 2 * n as u64, 1)[0]
}

fn random_vec(n: usize, q: u64, seed: u64) -> Vec<u64> {
    // splitmix64: deterministic test data without a dependency.
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            (z ^ (z >> 31)) % q
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn ntt_product_equals_schoolbook_negacyclic_product(log_n in 1u32..7, bits in prop::sample::select(vec![20u32, 32, 50, 60, 62]), seed in any::<u64>()) {
        let n = 1 << log_n;
        let q = prime(bits, n);
        let (a, b) = (random_vec(n, q, seed), random_vec(n, q, !seed));
        for backend in Backend::available() {
            let plan = Plan::with_backend(n, q, backend).unwrap();
            let (mut fa, mut fb) = (a.clone(), b.clone());
            plan.forward(&mut fa);
            plan.forward(&mut fb);
            plan.modulus().mul_assign(&mut fa, &fb);
            plan.inverse(&mut fa);
            prop_assert_eq!(&fa, &naive_negacyclic(&a, &b, q), "backend {}", backend);
        }
    }

    #[test]
    fn cyclic_product_equals_schoolbook_cyclic_convolution(log_n in 1u32..7, bits in prop::sample::select(vec![20u32, 24, 32, 60]), seed in any::<u64>()) {
        let n = 1 << log_n;
        let q = prime(bits, n);
        let (a, b) = (random_vec(n, q, seed), random_vec(n, q, !seed));
        for backend in Backend::available() {
            let plan = CyclicPlan::with_backend(n, q, backend).unwrap();
            let (mut fa, mut fb) = (a.clone(), b.clone());
            plan.forward(&mut fa);
            plan.forward(&mut fb);
            plan.modulus().mul_assign(&mut fa, &fb);
            plan.inverse(&mut fa);
            prop_assert_eq!(&fa, &naive_cyclic(&a, &b, q), "backend {}", backend);
        }
    }
}

#[test]
fn forward_then_inverse_is_identity_for_every_supported_length() {
    for log_n in 1..=16 {
        let n = 1usize << log_n;
        for bits in [24, 32, 50, 60, 62] {
            let q = prime(bits, n);
            let a = random_vec(n, q, log_n as u64 * 1000 + bits as u64);
            for backend in Backend::available() {
                let plan = Plan::with_backend(n, q, backend).unwrap();
                let mut b = a.clone();
                plan.forward(&mut b);
                assert!(b.iter().all(|&x| x < q));
                plan.inverse(&mut b);
                assert_eq!(a, b, "negacyclic n={n} bits={bits} backend={backend}");
                let cyclic = CyclicPlan::with_backend(n, q, backend).unwrap();
                let mut b = a.clone();
                cyclic.forward(&mut b);
                assert!(b.iter().all(|&x| x < q));
                cyclic.inverse(&mut b);
                assert_eq!(a, b, "cyclic n={n} bits={bits} backend={backend}");
            }
        }
    }
}

#[test]
fn edge_values_round_trip() {
    let n = 1024;
    let q = prime(62, n);
    for fill in [0, 1, q - 1] {
        let a = vec![fill; n];
        let plan = Plan::new(n, q).unwrap();
        let mut b = a.clone();
        plan.forward(&mut b);
        plan.inverse(&mut b);
        assert_eq!(a, b);
    }
}

#[test]
fn unfriendly_parameters_are_refused() {
    assert!(matches!(
        Plan::new(1000, 12289),
        Err(Error::LengthUnsupported { .. })
    ));
    assert!(matches!(
        Plan::new(1 << 17, 12289),
        Err(Error::LengthUnsupported { .. })
    ));
    // 12289 = 3 * 2^12 + 1 serves negacyclic length 2048 but not 4096.
    assert!(Plan::new(2048, 12289).is_ok());
    assert!(matches!(
        Plan::new(4096, 12289),
        Err(Error::NotNttFriendly { .. })
    ));
    assert!(matches!(
        Plan::new(1024, 40961 * 3),
        Err(Error::NotNttFriendly { .. })
    ));
    assert!(CyclicPlan::new(4096, 12289).is_ok());
    assert!(Plan::new(4096, prime(30, 4096)).is_ok());
}
