//! Nonlinear layers on shares through `crypto::nonlinear`, both backends side by side in one
//! run (GC: IDs `k=..,mem`; OT: IDs `k=..,mem,backend=ot`): secure ReLUs, 2×2 max pools and
//! two-class argmaxes per second, two parties as two threads (one rayon thread each) over the
//! in-memory channel and, for the ReLU at k = 32, over loopback TCP. Everything on the wire is
//! counted: for GC Bob's IKNP columns for his label OTs and Alice's garbled tables; for OT the
//! silent-OT trees, corrections, openings and re-sharing (set-up excluded).
//!
//! After each benchmark a line reports bytes per item and each party's CPU time per item
//! ([`bunet_benches::bench_nonlinear_block`]).

use std::time::{Duration, Instant};

use bunet_benches::{bench_nonlinear_block, nonlinear_sessions, one_thread_pool};
use bunet_crypto::nonlinear::{self, Backend, Block, Call, Config, DEFAULT_PRECOMPUTE_BUDGET};
use bunet_crypto::prg::Prg;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

/// Online time of a secure ReLU (k = 32, shift 4, `m` per iteration) after
/// `Nonlinear::precompute` (untimed, run before each iteration) against the streaming path,
/// in one group; prints online and offline bytes per ReLU.
fn bench_precomputed_relu(c: &mut Criterion) {
    let (k, p, m) = (32u32, 4_294_967_291u64, 1usize << 14);
    let config = Config::new(Backend::Gc, k, p).expect("valid");
    let mut prg = Prg::from_seed([5; 16]);
    let xa: Vec<u64> = (0..m).map(|_| prg.uniform_below(p)).collect();
    let xb: Vec<u64> = (0..m).map(|_| prg.uniform_below(p)).collect();
    let calls = [Call {
        block: Block::Relu,
        instances: m,
        shift: 4,
    }];
    let (pool_a, pool_b) = (one_thread_pool(), one_thread_pool());
    let mut g = c.benchmark_group("nonlinear_offline");
    g.sample_size(10);
    g.throughput(Throughput::Elements(m as u64));
    for precompute in [true, false] {
        let (mut sa, mut ca, mut sb, mut cb) = nonlinear_sessions(config, "mem");
        let before = (
            nonlinear::traffic(ca.meter(), Block::Relu),
            ca.meter().get(Block::Relu.offline_label()),
        );
        let mut items = 0u64;
        let param = if precompute {
            "k=32,precomputed"
        } else {
            "k=32,streaming"
        };
        g.bench_function(BenchmarkId::new("relu_online", param), |b| {
            b.iter_custom(|iters| {
                let mut online = Duration::ZERO;
                for _ in 0..iters {
                    let barrier = std::sync::Barrier::new(2);
                    std::thread::scope(|s| {
                        let h = s.spawn(|| {
                            pool_b.install(|| {
                                if precompute {
                                    sb.precompute(&mut cb, &calls, DEFAULT_PRECOMPUTE_BUDGET)
                                        .expect("bob precompute");
                                }
                                barrier.wait();
                                black_box(sb.relu_rescale(&mut cb, &xb, 4).expect("bob"));
                            })
                        });
                        pool_a.install(|| {
                            if precompute {
                                sa.precompute(&mut ca, &calls, DEFAULT_PRECOMPUTE_BUDGET)
                                    .expect("alice precompute");
                            }
                            // The online part starts when both parties are done offline.
                            barrier.wait();
                            let t = Instant::now();
                            black_box(sa.relu_rescale(&mut ca, &xa, 4).expect("alice"));
                            online += t.elapsed();
                        });
                        h.join().expect("bob thread");
                    });
                    items += m as u64;
                }
                online
            })
        });
        if items > 0 {
            let on = nonlinear::traffic(ca.meter(), Block::Relu);
            let off = ca.meter().get(Block::Relu.offline_label());
            let per = |x: u64| x as f64 / items as f64;
            println!(
                "nonlinear_offline/relu_online/{param}: bytes/ReLU online {:.1}, offline {:.1}",
                per(on.bytes_sent + on.bytes_received
                    - before.0.bytes_sent
                    - before.0.bytes_received),
                per(off.bytes_sent + off.bytes_received
                    - before.1.bytes_sent
                    - before.1.bytes_received),
            );
        }
    }
    g.finish();
}

fn bench_nonlinear(c: &mut Criterion) {
    println!("{}", bunet_benches::backend_banner());
    let m = 1 << 16;
    let mut bench = |backend: Backend, block: Block, k: u32, p: u64, transport: &str, m: usize| {
        let param = match backend {
            Backend::Gc => format!("k={k},{transport}"),
            _ => format!("k={k},{transport},backend={}", backend.name()),
        };
        let id = ("nonlinear", block.name(), param.as_str());
        bench_nonlinear_block(c, id, backend, block, k, p, 4, transport, m);
    };
    for (k, p) in [(24u32, 16_777_213u64), (32, 4_294_967_291)] {
        for &backend in Backend::ALL {
            bench(backend, Block::Relu, k, p, "mem", m);
            bench(backend, Block::MaxPool, k, p, "mem", m / 4);
            bench(backend, Block::Argmax, k, p, "mem", m);
        }
    }
    for &backend in Backend::ALL {
        bench(backend, Block::Relu, 32, 4_294_967_291, "tcp", m);
    }
    // The secure UNet's ReLUs rescale by the weights' 12 fractional bits (q32).
    for &backend in Backend::ALL {
        let param = format!("k=32,shift=12,mem,backend={}", backend.name());
        let id = ("nonlinear", Block::Relu.name(), param.as_str());
        bench_nonlinear_block(c, id, backend, Block::Relu, 32, 4_294_967_291, 12, "mem", m);
    }
}

criterion_group!(benches, bench_nonlinear, bench_precomputed_relu);
criterion_main!(benches);
