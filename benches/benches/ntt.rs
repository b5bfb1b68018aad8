//! NTT benches: ours beside concrete-ntt 0.2 (its stable AVX2 path) in the same criterion group.
//!
//! Run: `cargo bench -p bunet-benches --bench ntt -- --measurement-time 2`; with
//! `cargo +nightly bench -p bunet-benches --features fhe-tfhe-ntt-nightly --bench ntt` it also
//! runs ours beside tfhe-ntt's AVX-512 path (the NTT goal of ANCHORS.md).
//! (filter with a group name, e.g. `ntt/fwd/n=8192`; `ntt/kinds` compares the multiplication
//! kinds of one backend, e.g. AVX2's `Shoup64` and `Fma50`, with the scalar reference).

use std::time::Duration;

use bunet_kernels::modarith::MulKind;
use bunet_kernels::ntt::{AlignedVec, CyclicPlan, Plan};
use bunet_kernels::primes::primes_congruent_one;
use bunet_kernels::{Backend, Modulus};
use criterion::{Bencher, BenchmarkId, Criterion, Throughput, criterion_group};

const LENGTHS: [usize; 3] = [4096, 8192, 16384];
/// Prime sizes: ~32 bits (the plaintext prime regime), 50 bits (IFMA52), 60 bits (Shoup64).
const BITS: [u32; 3] = [32, 50, 60];

fn input(n: usize, q: u64) -> Vec<u64> {
    (0..n as u64)
        .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15) % q)
        .collect()
}

/// The criterion routine of `fwd` (if `forward`) or `inv` on `a` in place.
fn direction<'a, T>(
    a: &'a mut [T],
    forward: bool,
    fwd: impl Fn(&mut [T]) + 'a,
    inv: impl Fn(&mut [T]) + 'a,
) -> impl FnMut(&mut Bencher<'_>) + 'a {
    move |b| {
        if forward {
            b.iter(|| fwd(&mut *a))
        } else {
            b.iter(|| inv(&mut *a))
        }
    }
}

fn negacyclic(c: &mut Criterion) {
    for (op, forward) in [("fwd", true), ("inv", false)] {
        for n in LENGTHS {
            for bits in BITS {
                // 32-bit primes for concrete-ntt's prime32 plan must stay below 2^32.
                let q = primes_congruent_one(bits, 2 * n as u64, 1)[0];
                let mut group = c.benchmark_group(format!("ntt/{op}/n={n},q={bits}bit"));
                group.throughput(Throughput::Elements(n as u64));
                let plan = Plan::new(n, q).expect("an NTT prime");
                let mut a = input(n, q);
                let id = BenchmarkId::new("bunet", plan.backend());
                let (fwd, inv) = (
                    |a: &mut [u64]| plan.forward(a),
                    |a: &mut [u64]| plan.inverse(a),
                );
                group.bench_function(id, direction(&mut a, forward, fwd, inv));
                if bits <= 32 {
                    let peer = concrete_ntt::prime32::Plan::try_new(n, q as u32)
                        .expect("concrete-ntt accepts the prime");
                    let mut a: Vec<u32> = input(n, q).into_iter().map(|x| x as u32).collect();
                    // Ours scales by 1/n inside the inverse; the peer needs `normalize`.
                    let inv = |a: &mut [u32]| {
                        peer.inv(a);
                        peer.normalize(a)
                    };
                    let fwd = |a: &mut [u32]| peer.fwd(a);
                    group.bench_function(
                        "concrete-ntt-prime32",
                        direction(&mut a, forward, fwd, inv),
                    );
                }
                let peer = concrete_ntt::prime64::Plan::try_new(n, q)
                    .expect("concrete-ntt accepts the prime");
                let mut a = input(n, q);
                let inv = |a: &mut [u64]| {
                    peer.inv(a);
                    peer.normalize(a)
                };
                let fwd = |a: &mut [u64]| peer.fwd(a);
                group.bench_function("concrete-ntt-prime64", direction(&mut a, forward, fwd, inv));
                group.finish();
            }
        }
    }
}

fn cyclic(c: &mut Criterion) {
    for n in LENGTHS {
        // A ~32-bit plaintext prime p = 1 mod n for HomConv's DFT over Z_p.
        let p = primes_congruent_one(32, n as u64, 1)[0];
        let plan = CyclicPlan::new(n, p).expect("an NTT prime");
        let mut group = c.benchmark_group(format!("ntt/cyclic/n={n},p=32bit"));
        group.throughput(Throughput::Elements(n as u64));
        let mut a = input(n, p);
        group.bench_function(BenchmarkId::new("fwd", plan.backend()), |b| {
            b.iter(|| plan.forward(&mut a))
        });
        group.bench_function(BenchmarkId::new("inv", plan.backend()), |b| {
            b.iter(|| plan.inverse(&mut a))
        });
        group.finish();
    }
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

/// Interleaved minima (µs) of ours and a peer at one length and prime.
struct Minima {
    /// Ours, forward, on a 64-byte aligned buffer.
    fwd: f64,
    /// Ours, forward, on a plain `Vec<u64>`.
    fwd_vec: f64,
    /// Ours, inverse (scaling by 1/n included), aligned.
    inv: f64,
    /// The peer's forward, aligned.
    peer_fwd: f64,
    /// The peer's inverse followed by its `normalize` (the scaling by 1/n), aligned.
    peer_inv: f64,
}

/// Minimum-of-many timings of ours and a peer (`peer_fwd`, `peer_inv`) at length `n` modulo `q`,
/// over `rounds` rounds that each run every transform once (ours, peer, ours, ...): on a shared,
/// loaded machine the minimum of alternating runs is a steadier ratio than two medians. Both
/// sides run on 64-byte aligned buffers (the peers' own benches align theirs); ours is also
/// timed on a plain `Vec<u64>`.
fn interleaved(
    n: usize,
    q: u64,
    rounds: usize,
    peer_fwd: impl Fn(&mut [u64]),
    peer_inv: impl Fn(&mut [u64]),
) -> Minima {
    let ours = Plan::new(n, q).expect("an NTT prime");
    let mut a = input(n, q);
    let mut aligned = AlignedVec::from_slice(&a);
    let mut b = AlignedVec::from_slice(&a);
    let mut best = [f64::MAX; 5];
    for _ in 0..rounds {
        for (i, best) in best.iter_mut().enumerate() {
            let t = std::time::Instant::now();
            match i {
                0 => ours.forward(&mut a),
                1 => peer_fwd(&mut b),
                2 => ours.inverse(&mut aligned),
                3 => ours.forward(&mut aligned),
                _ => peer_inv(&mut b),
            }
            *best = best.min(t.elapsed().as_secs_f64() * 1e6);
        }
    }
    Minima {
        fwd: best[3],
        fwd_vec: best[0],
        inv: best[2],
        peer_fwd: best[1],
        peer_inv: best[4],
    }
}

/// Prints one line of [`interleaved`]'s minima for `peer`.
fn print_minima(label: &str, peer: &str, m: &Minima) {
    println!(
        "  {label} fwd: bunet {:.2} (on a Vec: {:.2}) {peer} {:.2} ratio {:.2} | inv: bunet {:.2} {peer} {:.2} ratio {:.2}",
        m.fwd,
        m.fwd_vec,
        m.peer_fwd,
        m.fwd / m.peer_fwd,
        m.inv,
        m.peer_inv,
        m.inv / m.peer_inv
    );
}

/// [`interleaved`] against a peer plan of concrete-ntt's `prime64` API (concrete-ntt and its
/// successor tfhe-ntt share it, in different types): forward, and inverse + normalize, 400
/// rounds.
macro_rules! interleaved_with_peer {
    ($peer:expr, $n:expr, $q:expr) => {
        interleaved(
            $n,
            $q,
            400,
            |a| $peer.fwd(a),
            |a| {
                $peer.inv(a);
                $peer.normalize(a)
            },
        )
    };
}

/// Ours beside concrete-ntt (its stable AVX2 path) at N = 8192, 400 interleaved rounds.
fn side_by_side() {
    let n = 8192;
    println!("ntt/side-by-side n={n}: min over 400 interleaved runs (µs)");
    for bits in BITS {
        let q = primes_congruent_one(bits, 2 * n as u64, 1)[0];
        let peer = concrete_ntt::prime64::Plan::try_new(n, q).expect("concrete-ntt accepts it");
        let m = interleaved_with_peer!(peer, n, q);
        print_minima(&format!("q={bits}bit"), "concrete-ntt", &m);
    }
}

/// Ours beside tfhe-ntt's AVX-512 path (`nightly` feature; its IFMA52 code for `q < 2^50` on
/// CPUs with IFMA, else its 64-bit Shoup code), the NTT goal of ANCHORS.md (issue #14), at
/// every bench length for 50- and 60-bit primes, 400 interleaved rounds.
#[cfg(feature = "fhe-tfhe-ntt-nightly")]
fn tfhe_side_by_side() {
    println!("ntt/tfhe-ntt side-by-side: min over 400 interleaved runs (µs)");
    for n in LENGTHS {
        for bits in [50, 60] {
            let q = primes_congruent_one(bits, 2 * n as u64, 1)[0];
            let peer = tfhe_ntt::prime64::Plan::try_new(n, q).expect("tfhe-ntt accepts it");
            let m = interleaved_with_peer!(peer, n, q);
            let label = format!("n={n} q={bits}bit (tfhe-ntt IFMA: {})", peer.use_ifma());
            print_minima(&label, "tfhe-ntt", &m);
        }
    }
}

/// Prime sizes of the kinds comparison: the presets' 50-bit and 41-bit primes' sizes.
const KIND_BITS: [u32; 2] = [50, 41];

/// Plans at N = 8192 for every multiplication kind of every backend of this CPU for `q`, the
/// scalar reference first, labelled `backend kind`.
fn kind_plans(n: usize, q: u64) -> Vec<(String, Plan)> {
    let mut out = vec![(
        "scalar".to_string(),
        Plan::with_backend(n, q, Backend::Scalar).expect("an NTT prime"),
    )];
    for backend in Backend::available() {
        if backend == Backend::Scalar {
            continue;
        }
        for kind in MulKind::supported(q, backend) {
            let m = Modulus::with_backend(q, backend)
                .expect("an available backend")
                .with_kind(kind)
                .expect("a supported kind");
            let plan = Plan::with_modulus(n, m).expect("an NTT prime");
            out.push((format!("{backend} {kind:?}"), plan));
        }
    }
    out
}

/// Criterion groups `ntt/kinds/{fwd,inv}/n=8192,q=<bits>bit`: every kind side by side.
fn kinds(c: &mut Criterion) {
    let n = 8192;
    for bits in KIND_BITS {
        let q = primes_congruent_one(bits, 2 * n as u64, 1)[0];
        let plans = kind_plans(n, q);
        for (op, forward) in [("fwd", true), ("inv", false)] {
            let mut group = c.benchmark_group(format!("ntt/kinds/{op}/n={n},q={bits}bit"));
            group.throughput(Throughput::Elements(n as u64));
            for (label, plan) in &plans {
                let mut a = AlignedVec::from_slice(&input(n, q));
                let (fwd, inv) = (
                    |a: &mut [u64]| plan.forward(a),
                    |a: &mut [u64]| plan.inverse(a),
                );
                group.bench_function(label.as_str(), direction(&mut a, forward, fwd, inv));
            }
            group.finish();
        }
    }
}

/// Interleaved minimum-of-many timings of every kind at N = 8192 (forward and inverse,
/// negacyclic and cyclic), the steady ratio on a loaded machine.
fn kinds_side_by_side() {
    let n = 8192;
    println!("ntt/kinds side-by-side n={n}: min over 300 interleaved runs (µs)");
    for bits in KIND_BITS {
        let q = primes_congruent_one(bits, 2 * n as u64, 1)[0];
        let plans: Vec<(String, Plan, CyclicPlan)> = kind_plans(n, q)
            .into_iter()
            .map(|(label, plan)| {
                let cyclic = CyclicPlan::with_modulus(n, *plan.modulus()).expect("q = 1 mod n");
                (label, plan, cyclic)
            })
            .collect();
        let mut best = vec![[f64::MAX; 4]; plans.len()];
        let mut a = AlignedVec::from_slice(&input(n, q));
        for _ in 0..300 {
            for ((_, plan, cyclic), best) in plans.iter().zip(&mut best) {
                for (j, best) in best.iter_mut().enumerate() {
                    let t = std::time::Instant::now();
                    match j {
                        0 => plan.forward(&mut a),
                        1 => plan.inverse(&mut a),
                        2 => cyclic.forward(&mut a),
                        _ => cyclic.inverse(&mut a),
                    }
                    *best = best.min(t.elapsed().as_secs_f64() * 1e6);
                }
            }
        }
        let scalar = best[0];
        for ((label, _, _), b) in plans.iter().zip(&best) {
            println!(
                "  q={bits}bit (q = {q}) {label:<16} fwd {:7.2} ({:.2}x scalar) inv {:7.2} ({:.2}x) | cyclic fwd {:7.2} inv {:7.2}",
                b[0],
                b[0] / scalar[0],
                b[1],
                b[1] / scalar[1],
                b[2],
                b[3]
            );
        }
    }
}

criterion_group! {
    name = benches;
    config = config();
    targets = negacyclic, cyclic, kinds
}

fn main() {
    println!("{}", bunet_benches::bench_start());
    side_by_side();
    #[cfg(feature = "fhe-tfhe-ntt-nightly")]
    tfhe_side_by_side();
    kinds_side_by_side();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
