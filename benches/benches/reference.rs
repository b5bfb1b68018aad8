//! Plaintext references of the seed's UNet (5 → 16 … 256, depth 4, ReLU, average pool) per 2D
//! slice: float (f32) and fixed point (q32, exact mod p). Throughput is in multiply-accumulates
//! of the convolutions, so GMAC/s reads directly; 512×512 is extrapolated from these sizes
//! (the work is linear in the pixel count), see docs/PERFORMANCE.md.

use std::time::Duration;

use bunet_unet::quant::{Quant, QuantModel};
use bunet_unet::synthetic::smooth_image;
use bunet_unet::{Architecture, Weights, fixed, float};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

fn reference(c: &mut Criterion) {
    println!("{}", bunet_benches::bench_start());
    let arch = Architecture::seed();
    let model = Weights::random_trained_like(&arch, 1)
        .expect("the seed architecture is valid")
        .fold();
    let qm = QuantModel::new(&model, Quant::q32()).expect("q32 fits trained-like weights");
    let mut g = c.benchmark_group("reference");
    g.sample_size(10).measurement_time(Duration::from_secs(8));
    for side in [64usize, 128] {
        let input = smooth_image(5, [1, side, side], 2);
        g.throughput(Throughput::Elements(arch.macs([1, side, side])));
        g.bench_with_input(
            BenchmarkId::new("float_slice", format!("side={side}")),
            &input,
            |b, x| b.iter(|| float::segment(&model, x.clone()).expect("valid input")),
        );
        g.bench_with_input(
            BenchmarkId::new("q32_slice", format!("side={side}")),
            &input,
            |b, x| b.iter(|| fixed::segment(&qm, x).expect("valid input")),
        );
    }
    g.finish();
}

criterion_group!(benches, reference);
criterion_main!(benches);
