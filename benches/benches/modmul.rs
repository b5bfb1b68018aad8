//! Vector modular arithmetic throughput: Hadamard products (`mul_assign`), fused multiply-add
//! (`mul_add_assign`) and scalar products, every multiplication kind of every available backend
//! (e.g. AVX2's `Shoup32`/`Shoup64`/`Fma50`) beside the scalar reference.
//!
//! Run: `cargo bench -p bunet-benches --bench modmul -- --measurement-time 2`

use std::time::Duration;

use bunet_kernels::modarith::MulKind;
use bunet_kernels::{Backend, Modulus};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

const LEN: usize = 8192;

fn input(q: u64, salt: u64) -> Vec<u64> {
    (0..LEN as u64)
        .map(|i| (i ^ salt).wrapping_mul(0x9e37_79b9_7f4a_7c15) % q)
        .collect()
}

fn modmul(c: &mut Criterion) {
    // ~24-bit and ~32-bit plaintext primes, a 50-bit (IFMA) and a 60-bit RNS prime.
    let moduli = [
        (24, (1u64 << 24) - 3),
        (32, (1 << 32) - 5),
        (50, (1 << 50) - 27),
        (60, (1 << 60) - 93),
    ];
    let backends = Backend::available();
    for (bits, q) in moduli {
        for op in ["mul_assign", "mul_add_assign", "scalar_mul_assign"] {
            let mut group = c.benchmark_group(format!("modmul/{op}/q={bits}bit"));
            group.throughput(Throughput::Elements(LEN as u64));
            for (backend, kind) in backends
                .iter()
                .flat_map(|&b| MulKind::supported(q, b).into_iter().map(move |k| (b, k)))
            {
                let m = Modulus::with_backend(q, backend)
                    .and_then(|m| m.with_kind(kind))
                    .expect("available backend and kind");
                let (mut a, b, d) = (input(q, 1), input(q, 2), input(q, 3));
                group.bench_function(
                    BenchmarkId::new(format!("{backend}/{kind:?}"), LEN),
                    |bench| match op {
                        "mul_assign" => bench.iter(|| m.mul_assign(&mut a, &b)),
                        "mul_add_assign" => bench.iter(|| m.mul_add_assign(&mut a, &b, &d)),
                        _ => bench.iter(|| m.scalar_mul_assign(&mut a, q / 3)),
                    },
                );
            }
            group.finish();
        }
    }
}

fn config() -> Criterion {
    println!("{}", bunet_benches::bench_start());
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = modmul
}
criterion_main!(benches);
