//! Conv kernels (`bunet_kernels::conv`) per backend at a representative UNet layer: 3×3 "same"
//! conv, 128×128, 32 → 32 channels, on ONE thread (every block run in turn), so the throughput
//! (multiply-accumulates per second) is per core. f32 is the float reference's arithmetic,
//! `exact` the fixed-point reference's (integers mod a 32-bit prime, exact in f64).

use std::time::Duration;

use bunet_kernels::Backend;
use bunet_kernels::conv::{ExactPlan, Geometry, Kind, Plan};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

const P: u64 = 4_294_967_291;

fn conv(c: &mut Criterion) {
    println!("{}", bunet_benches::bench_start());
    let (side, ch) = (128usize, 32usize);
    let g = Geometry {
        kind: Kind::Same,
        c_in: ch,
        c_out: ch,
        kernel: [1, 3, 3],
    };
    let dims = [1, side, side];
    let plane = side * side;
    let n_w = ch * ch * 9;
    let mut s = 1u64;
    let mut next = move || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        s >> 33
    };
    let wf: Vec<f32> = (0..n_w).map(|_| next() as f32 / 2e9 - 0.5).collect();
    let xf: Vec<f32> = (0..ch * plane).map(|_| next() as f32 / 2e9 - 0.5).collect();
    // q32-like magnitudes: weights of 8 fractional bits, inputs anywhere in Z_p.
    let wi: Vec<i32> = (0..n_w).map(|_| (next() % 512) as i32 - 256).collect();
    let xi: Vec<u64> = (0..ch * plane).map(|_| next() % P).collect();
    let bf = vec![0.1f32; ch];
    let bi = vec![7i64; ch];

    let mut group = c.benchmark_group("conv");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_millis(500))
        .throughput(Throughput::Elements((n_w * plane) as u64));
    for backend in Backend::ALL {
        let Ok(plan) = Plan::with_backend(g, &wf, &bf, backend) else {
            println!("conv: backend {backend} unavailable, skipped");
            continue;
        };
        let padded = plan.pad(&xf, dims).expect("input fits");
        let mut out = vec![0.0f32; ch * plane];
        group.bench_function(
            BenchmarkId::new("same3x3_f32", format!("backend={backend},hw={side},c={ch}")),
            |b| {
                b.iter(|| {
                    for (i, o) in out.chunks_mut(plan.block_len() * plane).enumerate() {
                        plan.run_block(&padded, i, o).expect("block fits");
                    }
                })
            },
        );
        let plan = ExactPlan::with_backend(g, &wi, &bi, P, backend).expect("available");
        let padded = plan.pad(&xi, dims).expect("residues fit");
        let mut out = vec![0u64; ch * plane];
        group.bench_function(
            BenchmarkId::new(
                "same3x3_exact",
                format!("backend={backend},hw={side},c={ch}"),
            ),
            |b| {
                b.iter(|| {
                    for (i, o) in out.chunks_mut(plan.block_len() * plane).enumerate() {
                        plan.run_block(&padded, i, o).expect("block fits");
                    }
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, conv);
criterion_main!(benches);
