//! PAHE (BFV) benches: our scheme at each preset, and side by side with fhe.rs 0.1 BFV at the same
//! ring degree and the very same RNS primes (N = 8192, log q ≈ 218 in 5 primes of 43–44 bits,
//! a 20-bit plaintext prime), so one run gives the ratio.
//!
//! Run: `RAYON_NUM_THREADS=1 cargo bench -p bunet-benches --bench bfv -- --measurement-time 3`
//! (one thread makes the comparison with the single-threaded fhe.rs fair).

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bunet_crypto::pahe::{
    Ciphertext, Evaluator, GaloisKeys, Params, PublicKey, SecretKey, random_mask,
};
use bunet_crypto::prg::Prg;
use bunet_crypto::wire::Encode;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use fhe::bfv::{self, BfvParameters, BfvParametersBuilder, Encoding, EvaluationKeyBuilder};
use fhe_traits::{FheDecrypter, FheEncoder, FheEncrypter, Serialize};

type Group<'a> = BenchmarkGroup<'a, criterion::measurement::WallTime>;

fn ours(group: &mut Group<'_>, params: &Params, label: &str) {
    let mut prg = Prg::from_os_entropy();
    let ev = Evaluator::new(params);
    let sk = SecretKey::generate(params, &mut prg);
    let pk = PublicKey::generate(&sk, &mut prg);
    let gk = GaloisKeys::generate(&sk, &[1], false, &mut prg);
    let x = random_mask(params, &mut prg);
    let w = random_mask(params, &mut prg);
    let pt = params.encode(&x).unwrap();
    let wpt = params.encode(&w).unwrap();
    let prepared = params.prepare(&wpt);
    let seeded = sk.encrypt_seeded(&pt, &mut prg);
    let ct = seeded.expand();
    let ct2 = pk.encrypt(&pt, &mut prg);
    let mut switched = ct.clone();
    ev.mod_switch_to(&mut switched, params.return_level())
        .unwrap();
    let mask = random_mask(params, &mut prg);
    let returned = ev
        .finalize_for_return(ct.clone(), &mask, &pk, &mut prg)
        .unwrap();
    println!(
        "bunet {label}: n={} p={} log2q={:.1} primes={} flood_bits={} return_level={} | bytes: \
         seeded ct {}, full ct {}, returned ct (level {}) {}, public key {}, galois key (1 element) {}",
        params.n(),
        params.p(),
        params.log2_q(),
        params.max_level(),
        params.flood_bits(),
        params.return_level(),
        seeded.to_bytes().len(),
        ct.to_bytes().len(),
        returned.level(),
        returned.to_bytes().len(),
        pk.to_bytes().len(),
        gk.to_bytes().len(),
    );
    group.throughput(Throughput::Elements(params.n() as u64));
    let id = |op: &str| format!("{op}/impl=bunet,{label}");

    group.bench_function(id("keygen_sk"), |b| {
        b.iter(|| SecretKey::generate(params, &mut prg))
    });
    group.bench_function(id("keygen_pk"), |b| {
        b.iter(|| PublicKey::generate(&sk, &mut prg))
    });
    group.bench_function(id("keygen_galois_1"), |b| {
        b.iter(|| GaloisKeys::generate(&sk, &[1], false, &mut prg))
    });
    group.bench_function(id("encode"), |b| {
        b.iter(|| params.encode(black_box(&x)).unwrap())
    });
    group.bench_function(id("prepare_pt"), |b| b.iter(|| params.prepare(&wpt)));
    group.bench_function(id("encrypt_sk_seeded"), |b| {
        b.iter(|| sk.encrypt_seeded(&pt, &mut prg))
    });
    group.bench_function(id("encrypt_pk"), |b| b.iter(|| pk.encrypt(&pt, &mut prg)));
    group.bench_function(id("decrypt"), |b| b.iter(|| sk.decrypt(&ct).unwrap()));
    let mut acc = ct.clone();
    group.bench_function(id("add_ct"), |b| {
        b.iter(|| ev.add_assign(&mut acc, &ct2).unwrap())
    });
    let mut acc = ct.clone();
    group.bench_function(id("mul_pt_prepared"), |b| {
        b.iter(|| ev.mul_plain_assign(&mut acc, &prepared).unwrap())
    });
    let mut acc = ct.clone();
    group.bench_function(id("mul_pt_add"), |b| {
        b.iter(|| ev.mul_plain_add_assign(&mut acc, &ct2, &prepared).unwrap())
    });
    group.bench_function(id("rotate_1"), |b| {
        b.iter(|| ev.rotate_rows(&ct, 1, &gk).unwrap())
    });
    group.bench_function(id("mod_switch_to_return"), |b| {
        b.iter_batched(
            || ct.clone(),
            |mut c: Ciphertext| ev.mod_switch_to(&mut c, params.return_level()).unwrap(),
            criterion::BatchSize::LargeInput,
        )
    });
    group.bench_function(id("finalize_for_return"), |b| {
        b.iter_batched(
            || ct.clone(),
            |c: Ciphertext| ev.finalize_for_return(c, &mask, &pk, &mut prg).unwrap(),
            criterion::BatchSize::LargeInput,
        )
    });
    let _ = switched;
}

fn fhe_rs(group: &mut Group<'_>, par: &Arc<BfvParameters>, label: &str) {
    let mut rng = rand::rng();
    let sk = bfv::SecretKey::random(par, &mut rng);
    let pk = bfv::PublicKey::new(&sk, &mut rng);
    let ek = EvaluationKeyBuilder::new(&sk)
        .unwrap()
        .enable_column_rotation(1)
        .unwrap()
        .build(&mut rng)
        .unwrap();
    let n = par.degree();
    let values: Vec<u64> = (0..n as u64).map(|i| i % par.plaintext()).collect();
    let pt = bfv::Plaintext::try_encode(&values, Encoding::simd(), par).unwrap();
    let ct: bfv::Ciphertext = sk.try_encrypt(&pt, &mut rng).unwrap();
    let ct2: bfv::Ciphertext = pk.try_encrypt(&pt, &mut rng).unwrap();
    let mut full = ct.clone();
    full += &ct2; // drops the seed
    println!(
        "fhe.rs {label}: bytes: seeded ct {}, full ct {}",
        ct.to_bytes().len(),
        full.to_bytes().len()
    );
    group.throughput(Throughput::Elements(n as u64));
    let id = |op: &str| format!("{op}/impl=fhe.rs,{label}");
    group.bench_function(id("encrypt_sk_seeded"), |b| {
        b.iter(|| -> bfv::Ciphertext { sk.try_encrypt(&pt, &mut rng).unwrap() })
    });
    group.bench_function(id("encrypt_pk"), |b| {
        b.iter(|| -> bfv::Ciphertext { pk.try_encrypt(&pt, &mut rng).unwrap() })
    });
    group.bench_function(id("decrypt"), |b| b.iter(|| sk.try_decrypt(&ct).unwrap()));
    let mut acc = full.clone();
    group.bench_function(id("add_ct"), |b| b.iter(|| acc += &ct2));
    let mut acc = full.clone();
    group.bench_function(id("mul_pt_prepared"), |b| b.iter(|| acc *= &pt));
    group.bench_function(id("rotate_1"), |b| {
        b.iter(|| ek.rotates_columns_by(&full, 1).unwrap())
    });
}

/// Interleaved timing, minimum of `rounds` runs of each closure: on a loaded machine the minimum
/// is the steadiest estimate of the uncontended cost, and interleaving exposes both sides to the
/// same load.
fn interleaved_min(rounds: usize, mut a: impl FnMut(), mut b: impl FnMut()) -> (f64, f64) {
    let (mut best_a, mut best_b) = (f64::MAX, f64::MAX);
    for _ in 0..rounds {
        let t = Instant::now();
        a();
        best_a = best_a.min(t.elapsed().as_secs_f64());
        let t = Instant::now();
        b();
        best_b = best_b.min(t.elapsed().as_secs_f64());
    }
    (best_a * 1e6, best_b * 1e6)
}

/// Back-to-back timing, minimum of `rounds` runs of `a` then of `b` (each side's working set stays
/// in cache between its runs: the warm-cache figure of a memory-bound op, where interleaving makes
/// both sides refetch from L3).
fn warm_min(rounds: usize, a: impl FnMut(), b: impl FnMut()) -> (f64, f64) {
    fn one(rounds: usize, mut f: impl FnMut()) -> f64 {
        f();
        (0..rounds)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64()
            })
            .fold(f64::MAX, f64::min)
            * 1e6
    }
    (one(rounds, a), one(rounds, b))
}

/// Side-by-side minimum times with fhe.rs, printed as a table (`bfv/cmp` lines).
fn side_by_side(params: &Params, par: &Arc<BfvParameters>, label: &str) {
    let rounds: usize = std::env::var("BFV_CMP_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    let mut prg = Prg::from_os_entropy();
    let ev = Evaluator::new(params);
    let sk = SecretKey::generate(params, &mut prg);
    let pk = PublicKey::generate(&sk, &mut prg);
    let gk = GaloisKeys::generate(&sk, &[1], false, &mut prg);
    let x = random_mask(params, &mut prg);
    let pt = params.encode(&x).unwrap();
    let prepared = params.prepare(&pt);
    let ct = sk.encrypt(&pt, &mut prg);
    let ct2 = pk.encrypt(&pt, &mut prg);

    let mut rng = rand::rng();
    let fsk = bfv::SecretKey::random(par, &mut rng);
    let fpk = bfv::PublicKey::new(&fsk, &mut rng);
    let fek = EvaluationKeyBuilder::new(&fsk)
        .unwrap()
        .enable_column_rotation(1)
        .unwrap()
        .build(&mut rng)
        .unwrap();
    let values: Vec<u64> = (0..par.degree() as u64)
        .map(|i| i % par.plaintext())
        .collect();
    let fpt = bfv::Plaintext::try_encode(&values, Encoding::simd(), par).unwrap();
    let fct: bfv::Ciphertext = fsk.try_encrypt(&fpt, &mut rng).unwrap();
    let fct2: bfv::Ciphertext = fpk.try_encrypt(&fpt, &mut rng).unwrap();
    let mut ffull = fct.clone();
    ffull += &fct2;

    let mut acc = ct.clone();
    let mut facc = ffull.clone();
    let mut macc = ct.clone();
    let mut fmacc = ffull.clone();
    let rows: Vec<(&str, (f64, f64))> = vec![
        (
            "encrypt_sk_seeded",
            interleaved_min(
                rounds,
                || drop(black_box(sk.encrypt_seeded(&pt, &mut prg))),
                || {
                    drop(black_box::<bfv::Ciphertext>(
                        fsk.try_encrypt(&fpt, &mut rng).unwrap(),
                    ))
                },
            ),
        ),
        (
            "encrypt_pk",
            interleaved_min(
                rounds,
                || drop(black_box(pk.encrypt(&pt, &mut prg))),
                || {
                    drop(black_box::<bfv::Ciphertext>(
                        fpk.try_encrypt(&fpt, &mut rng).unwrap(),
                    ))
                },
            ),
        ),
        (
            "decrypt",
            interleaved_min(
                rounds,
                || drop(black_box(sk.decrypt(&ct).unwrap())),
                || drop(black_box(fsk.try_decrypt(&fct).unwrap())),
            ),
        ),
        (
            "add_ct",
            interleaved_min(
                rounds,
                || ev.add_assign(&mut acc, &ct2).unwrap(),
                || facc += &fct2,
            ),
        ),
        (
            "add_ct_warm",
            warm_min(
                rounds,
                || ev.add_assign(&mut acc, &ct2).unwrap(),
                || facc += &fct2,
            ),
        ),
        (
            "mul_pt_prepared",
            interleaved_min(
                rounds,
                || ev.mul_plain_assign(&mut macc, &prepared).unwrap(),
                || fmacc *= &fpt,
            ),
        ),
        (
            "rotate_1",
            interleaved_min(
                rounds,
                || drop(black_box(ev.rotate_rows(&ct, 1, &gk).unwrap())),
                || drop(black_box(fek.rotates_columns_by(&ffull, 1).unwrap())),
            ),
        ),
    ];
    for (op, (ours, theirs)) in rows {
        println!(
            "bfv/cmp/{op}/{label}: bunet {ours:.1} us, fhe.rs {theirs:.1} us, ratio {:.2} (min of {rounds} {} runs)",
            ours / theirs,
            if op.ends_with("_warm") {
                "back-to-back"
            } else {
                "interleaved"
            }
        );
    }
}

fn bench(c: &mut Criterion) {
    println!("{}", bunet_benches::bench_start());
    println!(
        "rayon threads: {} (set RAYON_NUM_THREADS=1 for the single-core comparison)",
        rayon_threads()
    );
    let mut group = c.benchmark_group("bfv");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500));

    // Side by side at fhe.rs's shape, on fhe.rs's own primes.
    let p20 = bunet_kernels::primes::primes_congruent_one(20, 2 * 8192, 1)[0];
    let par = BfvParametersBuilder::new()
        .set_degree(8192)
        .set_plaintext_modulus(p20)
        .set_moduli_sizes(&[44, 44, 44, 43, 43])
        .build_arc()
        .unwrap();
    let cmp = Params::new(8192, p20, par.moduli()).unwrap();
    let label = format!("n=8192,logq={:.0},k=5", cmp.log2_q());
    side_by_side(&cmp, &par, &label);
    ours(&mut group, &cmp, &label);
    fhe_rs(&mut group, &par, &label);

    for (name, params) in [("q32", Params::q32()), ("q24", Params::q24())] {
        let label = format!("preset={name},n={},logq={:.0}", params.n(), params.log2_q());
        ours(&mut group, &params, &label);
    }
    group.finish();
}

fn rayon_threads() -> String {
    std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "default (all cores)".into())
}

criterion_group!(benches, bench);
criterion_main!(benches);
