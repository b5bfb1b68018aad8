//! Side-by-side timings of the `rns` and `sample` kernels, AVX-512 against the scalar reference
//! (interleaved minima; the figures of kernels/BACKENDS.md "BFV scaling and samplers"):
//! `cargo run --release -p bunet-kernels --example rns_prof`.

use bunet_kernels::primes::primes_congruent_one;
use bunet_kernels::{Backend, Modulus, rns, sample};
use std::time::Instant;
fn min_pair(rounds: usize, mut a: impl FnMut(), mut b: impl FnMut()) -> (f64, f64) {
    let (mut x, mut y) = (f64::MAX, f64::MAX);
    for _ in 0..rounds {
        let t = Instant::now();
        a();
        x = x.min(t.elapsed().as_secs_f64());
        let t = Instant::now();
        b();
        y = y.min(t.elapsed().as_secs_f64());
    }
    (x * 1e6, y * 1e6)
}
fn main() {
    let n = 8192;
    let mut q = primes_congruent_one(44, 16384, 3);
    q.extend(primes_congruent_one(43, 16384, 2));
    let p = primes_congruent_one(20, 16384, 1)[0];
    let mut s = 0x9e3779b97f4a7c15u64;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let x: Vec<u64> = (0..5 * n).map(|i| next() % q[i / n]).collect();
    let sr_s = rns::ScaleRound::with_backend(&q, p, Backend::Scalar).unwrap();
    let sr_v = rns::ScaleRound::with_backend(&q, p, Backend::Avx512).unwrap();
    let (mut o1, mut o2) = (vec![0u64; n], vec![0u64; n]);
    let (v, sc) = min_pair(
        300,
        || sr_v.round(&x, n, &mut o1),
        || sr_s.round(&x, n, &mut o2),
    );
    println!(
        "scale_round (5 primes, N=8192): avx512 {v:.2} us, scalar {sc:.2} us, {:.1}x",
        sc / v
    );
    let m: Vec<u64> = (0..n).map(|_| next() % p).collect();
    let r = next() % p;
    let (v, sc) = min_pair(
        300,
        || rns::precise_offsets_with(Backend::Avx512, &m, r, p, &mut o1),
        || rns::precise_offsets_with(Backend::Scalar, &m, r, p, &mut o2),
    );
    println!(
        "precise_offsets (N=8192): avx512 {v:.2} us, scalar {sc:.2} us, {:.1}x",
        sc / v
    );
    let qm_v = Modulus::with_backend(q[0], Backend::Avx512).unwrap();
    let qm_s = Modulus::with_backend(q[0], Backend::Scalar).unwrap();
    let y: Vec<i64> = (0..n)
        .map(|_| (next() % (2 * p)) as i64 - p as i64)
        .collect();
    let d = next() % q[0];
    let (v, sc) = min_pair(
        300,
        || rns::scale_add_signed_with(Backend::Avx512, &qm_v, d, &m, p, &y, p + 1, &mut o1),
        || rns::scale_add_signed_with(Backend::Scalar, &qm_s, d, &m, p, &y, p + 1, &mut o2),
    );
    println!(
        "scale_add_signed (one 44-bit limb, N=8192): avx512 {v:.2} us, scalar {sc:.2} us, {:.1}x",
        sc / v
    );
    let limbs: Vec<Vec<u64>> = (0..15)
        .map(|_| (0..n).map(|_| next() % q[0]).collect())
        .collect();
    let refs: Vec<&[u64]> = limbs.iter().map(Vec::as_slice).collect();
    let (mut a0, mut a1, mut b0, mut b1) =
        (vec![0u64; n], vec![0u64; n], vec![0u64; n], vec![0u64; n]);
    let (v, sc) = min_pair(
        300,
        || {
            rns::mul_sum_pair_add_with(
                Backend::Avx512,
                &qm_v,
                &refs[0..5],
                &refs[5..10],
                &refs[10..15],
                &mut a0,
                &mut a1,
            )
        },
        || {
            rns::mul_sum_pair_add_with(
                Backend::Scalar,
                &qm_s,
                &refs[0..5],
                &refs[5..10],
                &refs[10..15],
                &mut b0,
                &mut b1,
            )
        },
    );
    println!(
        "mul_sum_pair_add (5 digits, one 44-bit limb, N=8192): avx512 {v:.2} us, scalar {sc:.2} us, {:.1}x",
        sc / v
    );
    let (mut c1, mut c2) = (vec![0u64; n], vec![0u64; n]);
    let (v, _) = min_pair(
        300,
        || {
            for i in 0..5 {
                qm_v.mul_add_assign(&mut c1, refs[i], refs[5 + i]);
                qm_v.mul_add_assign(&mut c2, refs[i], refs[10 + i]);
            }
        },
        || {},
    );
    println!("  (the same with 10 Modulus::mul_add_assign on avx512: {v:.2} us)");
    let words: Vec<u64> = (0..n).map(|_| next()).collect();
    let mut e1 = vec![0i64; n];
    let mut e2 = vec![0i64; n];
    let (v, sc) = min_pair(
        300,
        || sample::cbd_with(Backend::Avx512, &words, 21, &mut e1),
        || sample::cbd_with(Backend::Scalar, &words, 21, &mut e2),
    );
    println!(
        "cbd (eta 21, N=8192): avx512 {v:.2} us, scalar {sc:.2} us, {:.1}x",
        sc / v
    );
    let mask = (1u64 << 44) - 1;
    let (v, sc) = min_pair(
        300,
        || {
            sample::accept_below_with(Backend::Avx512, &words, mask, q[0], &mut o1);
        },
        || {
            sample::accept_below_with(Backend::Scalar, &words, mask, q[0], &mut o2);
        },
    );
    println!(
        "accept_below (8192 words, 44-bit q): avx512 {v:.2} us, scalar {sc:.2} us, {:.1}x",
        sc / v
    );
}
