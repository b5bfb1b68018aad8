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

/// The SIMD backends this CPU runs; the others are reported as skipped.
///
/// Under Miri (which interprets AVX-512 where the host lacks it: `RUSTFLAGS="-C
/// target-feature=+avx512f,+avx512bw,+avx512dq,+avx512vl,+avx512ifma" cargo +nightly miri test -p
/// bunet-kernels ntt::tests::simd_backends_agree_with_scalar_in_every_schedule_regime`) only AVX-512
/// runs: the native run checks the others far faster.
fn simd_backends() -> Vec<Backend> {
    let mut out = Vec::new();
    for b in Backend::ALL {
        if b == Backend::Scalar || (cfg!(miri) && b != Backend::Avx512) {
            continue;
        }
        if b.is_available() {
            out.push(b);
        } else {
            eprintln!("skipped: backend {b} is not available on this CPU");
        }
    }
    out
}

/// Forward and inverse transforms of every backend agree bit for bit with the scalar reference.
fn assert_agrees_with_scalar(n: usize, q: u64, inputs: &[Vec<u64>]) {
    let reference = Plan::with_backend(n, q, Backend::Scalar).unwrap();
    let reference_cyclic = CyclicPlan::with_backend(n, q, Backend::Scalar).unwrap();
    for backend in simd_backends() {
        for kind in crate::modarith::MulKind::supported(q, backend) {
            let m = Modulus::with_backend(q, backend)
                .unwrap()
                .with_kind(kind)
                .unwrap();
            let plan = Plan::with_modulus(n, m).unwrap();
            let cyclic = CyclicPlan::with_modulus(n, m).unwrap();
            for a in inputs {
                let run = |f: &dyn Fn(&mut [u64]), g: &dyn Fn(&mut [u64]), what: &str| {
                    let (mut x, mut y) = (a.clone(), a.clone());
                    f(&mut x);
                    g(&mut y);
                    assert_eq!(x, y, "{what} n={n} q={q} backend={backend} kind={kind:?}");
                };
                run(
                    &|x| plan.forward(x),
                    &|x| reference.forward(x),
                    "negacyclic forward",
                );
                run(
                    &|x| plan.inverse(x),
                    &|x| reference.inverse(x),
                    "negacyclic inverse",
                );
                run(
                    &|x| cyclic.forward(x),
                    &|x| reference_cyclic.forward(x),
                    "cyclic forward",
                );
                run(
                    &|x| cyclic.inverse(x),
                    &|x| reference_cyclic.inverse(x),
                    "cyclic inverse",
                );
            }
        }
    }
}

#[test]
fn simd_backends_agree_with_scalar_on_edges_for_every_length() {
    // Under Miri up to 2^13: the lengths past `BLOCK` (2^11) that add whole-array sweeps.
    let max_log_n = if cfg!(miri) { 13 } else { 16 };
    for log_n in 1..=max_log_n {
        let n = 1usize << log_n;
        for bits in [20, 24, 31, 32, 50, 60, 61, 62] {
            let q = prime(bits, n);
            let mut inputs = vec![vec![0; n], vec![1; n], vec![q - 1; n]];
            let mut alternating = vec![0; n];
            for (i, x) in alternating.iter_mut().enumerate() {
                *x = if i % 2 == 0 { q - 1 } else { 1 };
            }
            inputs.push(alternating);
            if n <= 1 << 12 {
                inputs.push(random_vec(n, q, n as u64 ^ q));
            }
            assert_agrees_with_scalar(n, q, &inputs);
        }
    }
}

/// One input per regime of the shared stage schedule (`schedule.rs`): tails only (16), blockwise
/// and elementwise stages below `BLOCK` (64), and a whole-array sweep past `BLOCK` (4096), with a
/// prime below 2^32 so that every multiplication kind runs. Small enough for Miri, which runs the
/// AVX-512 instantiation on machines without AVX-512 (see [`simd_backends`]).
#[test]
fn simd_backends_agree_with_scalar_in_every_schedule_regime() {
    for n in [16, 64, 4096] {
        let q = prime(30, n);
        assert_agrees_with_scalar(n, q, &[random_vec(n, q, n as u64)]);
    }
}

#[test]
fn simd_backends_agree_with_scalar_for_primes_at_the_regime_bounds() {
    // `prime(bits, n)` is the largest NTT prime below 2^bits: these stress the lazy bounds of
    // each multiplication kind (4q just below 2^64, 8q just below 2^64 for AVX-512 `Shoup64`'s
    // lazy products, 2^52, 2^34 and 2^32).
    for (bits, n) in [
        (62, 1 << 12),
        (61, 1 << 12),
        (50, 1 << 10),
        (49, 1 << 6),
        (32, 1 << 8),
        (30, 1 << 8),
    ] {
        let q = prime(bits, n);
        let inputs = vec![vec![q - 1; n], vec![q / 2; n], random_vec(n, q, 7)];
        assert_agrees_with_scalar(n, q, &inputs);
    }
}

/// Both IFMA52 products of the AVX-512 transforms (the dispatch runs one per CPU vendor) agree
/// with the scalar reference, at the largest primes below `2^50` and `2^32` and a random one.
#[cfg(target_arch = "x86_64")]
#[test]
#[cfg_attr(
    miri,
    ignore = "Miri runs the HEXL form only (no CPUID, IFMA modelled)"
)]
fn both_ifma_products_agree_with_scalar() {
    if !Backend::has_ifma() {
        eprintln!("skipped: no AVX-512 IFMA52 on this CPU");
        return;
    }
    for log_n in [5, 6, 11, 12, 13] {
        let n = 1usize << log_n;
        for bits in [32, 45, 50] {
            let q = prime(bits, n);
            let m = Modulus::with_backend(q, Backend::Avx512)
                .unwrap()
                .with_kind(crate::modarith::MulKind::Ifma52)
                .unwrap();
            let (plan, cyclic) = (
                Plan::with_modulus(n, m).unwrap(),
                CyclicPlan::with_modulus(n, m).unwrap(),
            );
            let reference = Plan::with_backend(n, q, Backend::Scalar).unwrap();
            let reference_cyclic = CyclicPlan::with_backend(n, q, Backend::Scalar).unwrap();
            for a in [vec![q - 1; n], random_vec(n, q, q ^ n as u64)] {
                type Transform = unsafe fn(&mut [u64], &Tables, u64);
                let variants: [[Transform; 4]; 2] = [
                    [
                        avx512::ifma::negacyclic_forward,
                        avx512::ifma::negacyclic_inverse,
                        avx512::ifma::cyclic_forward,
                        avx512::ifma::cyclic_inverse,
                    ],
                    [
                        avx512::ifma_mullo::negacyclic_forward,
                        avx512::ifma_mullo::negacyclic_inverse,
                        avx512::ifma_mullo::cyclic_forward,
                        avx512::ifma_mullo::cyclic_inverse,
                    ],
                ];
                for (v, [fwd, inv, cfwd, cinv]) in variants.into_iter().enumerate() {
                    let run = |f: Transform, tables: &Tables, r: &dyn Fn(&mut [u64])| {
                        let (mut x, mut y) = (a.clone(), a.clone());
                        // SAFETY: `has_ifma()` checked AVX-512 F/BW/DQ/VL and IFMA52 above.
                        unsafe { f(&mut x, tables, q) };
                        r(&mut y);
                        assert_eq!(x, y, "variant {v} n={n} q={q}");
                    };
                    run(fwd, &plan.simd_forward, &|x| reference.forward(x));
                    run(inv, &plan.simd_inverse, &|x| reference.inverse(x));
                    run(cfwd, &cyclic.simd_forward, &|x| reference_cyclic.forward(x));
                    run(cinv, &cyclic.simd_inverse, &|x| reference_cyclic.inverse(x));
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn simd_backends_agree_with_scalar_on_random_inputs(log_n in 1u32..12, bits in prop::sample::select(vec![20u32, 24, 32, 50, 60, 61, 62]), seed in any::<u64>()) {
        let n = 1 << log_n;
        let q = prime(bits, n);
        assert_agrees_with_scalar(n, q, &[random_vec(n, q, seed)]);
    }
}

/// The presets' RNS primes (`bunet_crypto::pahe::Params::q32` / `q24`: N = 8192, the largest
/// primes `≡ 1 mod 2N` below `2^50`, `2^41` (three) and `2^37` (two)), all below `2^50`, so
/// that AVX2 runs them with `Fma50`; each against the scalar reference at N = 8192 and on the
/// lengths around the schedule's regimes.
#[test]
fn presets_primes_agree_with_scalar() {
    let n = 8192;
    let mut primes = primes_congruent_one(50, 2 * n as u64, 1);
    primes.extend(primes_congruent_one(41, 2 * n as u64, 3));
    primes.extend(primes_congruent_one(37, 2 * n as u64, 2));
    for q in primes {
        assert!(q < 1 << 50);
        for len in [8, 16, 2048, 4096, n] {
            let mut inputs = vec![vec![q - 1; len], vec![0; len], random_vec(len, q, q ^ 5)];
            inputs.push(
                (0..len as u64)
                    .map(|i| if i % 3 == 0 { q - 1 } else { i % q })
                    .collect(),
            );
            assert_agrees_with_scalar(len, q, &inputs);
        }
    }
}

/// The largest NTT-friendly primes below `2^50` for N = 2^16 (`≡ 1 mod 2^17`, so they serve
/// every length) at every SIMD length, with the inputs that make the lazy values largest.
#[test]
fn primes_just_below_2_50_agree_with_scalar_at_every_length() {
    for q in primes_congruent_one(50, 1 << 17, 3) {
        for log_n in 3..=16 {
            let n = 1usize << log_n;
            let mut alternating = vec![q - 1; n];
            for x in alternating.iter_mut().step_by(2) {
                *x = 1;
            }
            let inputs = vec![vec![q - 1; n], alternating, random_vec(n, q, q ^ n as u64)];
            assert_agrees_with_scalar(n, q, &inputs);
        }
    }
}

/// `Fma50` is offered only on AVX2 with FMA and only below `2^50`; a new modulus gets it
/// exactly there; `with_kind` refuses it elsewhere.
#[test]
fn fma50_only_with_fma_and_below_2_50() {
    use crate::modarith::MulKind;
    let qs = [
        17,
        (1 << 24) - 3,
        (1 << 32) - 5,
        (1 << 32) + 15,
        primes_congruent_one(41, 1 << 14, 1)[0],
        primes_congruent_one(50, 1 << 14, 1)[0],
        (1 << 50) - 1,
        1 << 50,
        (1 << 50) + 55,
        primes_congruent_one(60, 1 << 14, 1)[0],
    ];
    for backend in Backend::available() {
        for q in qs {
            let allowed = backend == Backend::Avx2 && Backend::has_fma() && q < 1 << 50;
            assert_eq!(
                MulKind::supported(q, backend).contains(&MulKind::Fma50),
                allowed,
                "q={q} backend={backend}"
            );
            let m = Modulus::with_backend(q, backend).unwrap();
            assert_eq!(
                m.kind() == MulKind::Fma50,
                allowed,
                "q={q} backend={backend}"
            );
            assert_eq!(
                m.with_kind(MulKind::Fma50).is_ok(),
                allowed,
                "q={q} backend={backend}"
            );
        }
    }
    #[cfg(target_arch = "x86_64")]
    assert_eq!(
        Backend::has_fma(),
        Backend::Avx2.is_available() && std::arch::is_x86_feature_detected!("fma")
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Every kind (so `Fma50` where the CPU has it) against the scalar reference for primes of
    /// 17 to 50 bits (one of the four largest of the size) at lengths 8 to 2^14.
    #[test]
    fn kinds_agree_with_scalar_for_primes_up_to_50_bits(log_n in 3u32..=14, bits in 17u32..=50, which in 0usize..4, seed in any::<u64>()) {
        let n = 1 << log_n;
        // 65537 = 2^16 + 1 serves every length here, so there is at least one prime.
        let primes = primes_congruent_one(bits, 2 * n as u64, which + 1);
        let q = primes[which.min(primes.len() - 1)];
        let mut edges = random_vec(n, q, seed);
        for (i, x) in edges.iter_mut().enumerate() {
            if (seed >> (i % 64)) & 1 == 1 {
                *x = if i % 2 == 0 { q - 1 } else { 0 };
            }
        }
        assert_agrees_with_scalar(n, q, &[random_vec(n, q, seed), edges]);
    }
}

type Transform<'a> = &'a dyn Fn(&mut [u64]);

/// Times every multiplication kind side by side (interleaved, minimum of many rounds), to choose
/// between them on a noisy shared machine. Run:
/// `cargo test -p bunet-kernels --release -- --ignored --nocapture kinds_side_by_side`
#[test]
#[ignore]
fn kinds_side_by_side() {
    use crate::modarith::MulKind;
    let n = 8192;
    for bits in [24, 30, 32, 50, 60] {
        let q = prime(bits, n);
        for backend in simd_backends().into_iter().chain([Backend::Scalar]) {
            let kinds = match backend {
                Backend::Scalar => vec![MulKind::Shoup64],
                _ => MulKind::supported(q, backend),
            };
            let plans: Vec<(MulKind, Plan, CyclicPlan)> = kinds
                .iter()
                .map(|&k| {
                    let m = Modulus::with_backend(q, backend)
                        .unwrap()
                        .with_kind(k)
                        .unwrap();
                    (
                        k,
                        Plan::with_modulus(n, m).unwrap(),
                        CyclicPlan::with_modulus(n, m).unwrap(),
                    )
                })
                .collect();
            let mut best = vec![[f64::MAX; 4]; plans.len()];
            let mut a = random_vec(n, q, 1);
            for _ in 0..150 {
                for (i, (_, plan, cyclic)) in plans.iter().enumerate() {
                    let ops: [Transform<'_>; 4] = [
                        &|x| plan.forward(x),
                        &|x| plan.inverse(x),
                        &|x| cyclic.forward(x),
                        &|x| cyclic.inverse(x),
                    ];
                    for (j, op) in ops.iter().enumerate() {
                        let t = std::time::Instant::now();
                        op(&mut a);
                        best[i][j] = best[i][j].min(t.elapsed().as_secs_f64() * 1e6);
                    }
                }
            }
            for ((k, _, _), b) in plans.iter().zip(&best) {
                eprintln!(
                    "n={n} q={bits}bit {backend} {k:?}: fwd {:.2} inv {:.2} cyclic fwd {:.2} inv {:.2} (us, min)",
                    b[0], b[1], b[2], b[3]
                );
            }
        }
    }
}

#[test]
fn aligned_vec_is_aligned_and_transforms_like_a_vec() {
    let n = 1024;
    let q = prime(50, n);
    let a = random_vec(n, q, 3);
    let mut b = AlignedVec::from_slice(&a);
    assert_eq!(b.as_ptr() as usize % 64, 0);
    assert_eq!(&b[..], &a[..]);
    assert_eq!(AlignedVec::zeroed(13).len(), 13);
    let plan = Plan::new(n, q).unwrap();
    let mut c = a.clone();
    plan.forward(&mut b);
    plan.forward(&mut c);
    assert_eq!(&b[..], &c[..]);
}
