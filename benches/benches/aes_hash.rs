//! Fixed-key AES hashing for garbling: hashed blocks per second on one core for each engine this
//! CPU runs, beside the raw permutation and the `aes` crate's own `encrypt_blocks` (the peer).

use aes::Aes128;
use aes::cipher::{BlockCipherEncrypt, KeyInit};
use bunet_kernels::aes_hash::{Engine, FIXED_KEY, FixedKeyHash};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

/// Blocks per call: one garbled layer chunk of 1024 AND gates (4 hashes each), L1/L2 resident.
const BLOCKS: usize = 4096;

fn bench(c: &mut Criterion) {
    println!("{}", bunet_benches::bench_start());
    let mut g = c.benchmark_group("aes_hash");
    g.throughput(Throughput::Elements(BLOCKS as u64));
    let tweaks: Vec<u128> = (0..BLOCKS as u128).map(|i| i / 2).collect();
    for engine in Engine::ALL {
        let Ok(h) = FixedKeyHash::with_engine(engine) else {
            println!("aes_hash: engine {engine} unavailable on this CPU: skipped");
            continue;
        };
        let mut blocks: Vec<u128> = (0..BLOCKS as u128).map(|i| i * 0x9e37_79b9).collect();
        g.bench_function(BenchmarkId::new("hash", format!("engine={engine}")), |b| {
            b.iter(|| h.hash_many(black_box(&mut blocks), black_box(&tweaks)))
        });
        g.bench_function(BenchmarkId::new("raw", format!("engine={engine}")), |b| {
            b.iter(|| h.encrypt_blocks(black_box(&mut blocks)))
        });
    }
    let cipher = Aes128::new(&FIXED_KEY.into());
    let mut blocks = vec![aes::Block::default(); BLOCKS];
    g.bench_function(
        BenchmarkId::new("raw", "peer=aes-0.9-encrypt_blocks"),
        |b| b.iter(|| cipher.encrypt_blocks(black_box(&mut blocks))),
    );
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30);
    targets = bench
}
criterion_main!(benches);
