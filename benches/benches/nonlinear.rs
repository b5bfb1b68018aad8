//! Nonlinear layers on shares through `crypto::nonlinear`, both backends side by side in one
//! run (GC: IDs `k=..,mem`; OT: IDs `k=..,mem,backend=ot`): secure ReLUs, 2×2 max pools and
//! two-class argmaxes per second, two parties as two threads (one rayon thread each) over the
//! in-memory channel and, for the ReLU at k = 32, over loopback TCP, at the presets' `p` (the
//! UNet's; until issue #20's fused carries, `2^24 − 3` and `2^32 − 5`). Everything on the wire is
//! counted: for GC Bob's IKNP columns for his label OTs and Alice's garbled tables; for OT the
//! silent-OT trees, corrections, openings and re-sharing (set-up excluded).
//!
//! After each benchmark a line reports bytes per item and each party's CPU time per item
//! ([`bunet_benches::bench_nonlinear_block`]).
//!
//! Group `nonlinear_ot_variants` (issue #20) runs the OT backend's millionaires' variants
//! ([`Millionaires`]: issue #9's wire format, the trimmed one of handshake versions 7–8, fused
//! carries, the default with low digits shared too, other digit sizes) and Ferret sets side by
//! side in one run, at the q32 preset's `p` (`≡ 1 mod 2^14`, so the carries fuse), IDs
//! `<block>/k=32,shift=..,m=..,<shared|fused|trimmed|issue9>,<set>`.

use std::time::{Duration, Instant};

use bunet_benches::{bench_nonlinear_block, nonlinear_sessions, one_thread_pool, thread_cpu};
use bunet_crypto::channel::{Channel, ChannelConfig};
use bunet_crypto::nonlinear::ot::{Millionaires, OtSession};
use bunet_crypto::nonlinear::{
    self, Backend, Block, Call, Config, DEFAULT_PRECOMPUTE_BUDGET, Nonlinear, Role,
};
use bunet_crypto::pahe::Params;
use bunet_crypto::prg::Prg;
use bunet_crypto::silent::Params as FerretParams;
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

/// The UNet's plaintext moduli (the PAHE presets' `p`, `≡ 1 mod 2^14`, where the OT backend's
/// rescaling fuses its carries and shares its low digits), with their widths.
fn preset_moduli() -> [(u32, u64); 2] {
    [(24, Params::q24().p()), (32, Params::q32().p())]
}

fn bench_nonlinear(c: &mut Criterion) {
    println!("{}", bunet_benches::bench_start());
    let m = 1 << 16;
    let [_, (_, p32)] = preset_moduli();
    let mut bench = |backend: Backend, block: Block, k: u32, p: u64, transport: &str, m: usize| {
        let param = match backend {
            Backend::Gc => format!("k={k},{transport}"),
            _ => format!("k={k},{transport},backend={}", backend.name()),
        };
        let id = ("nonlinear", block.name(), param.as_str());
        bench_nonlinear_block(c, id, backend, block, k, p, 4, transport, m);
    };
    for (k, p) in preset_moduli() {
        for &backend in Backend::ALL {
            bench(backend, Block::Relu, k, p, "mem", m);
            bench(backend, Block::MaxPool, k, p, "mem", m / 4);
            bench(backend, Block::Argmax, k, p, "mem", m);
        }
    }
    for &backend in Backend::ALL {
        bench(backend, Block::Relu, 32, p32, "tcp", m);
    }
    // The secure UNet's ReLUs rescale by the weights' 12 fractional bits (q32).
    for &backend in Backend::ALL {
        let param = format!("k=32,shift=12,mem,backend={}", backend.name());
        let id = ("nonlinear", Block::Relu.name(), param.as_str());
        bench_nonlinear_block(c, id, backend, Block::Relu, 32, p32, 12, "mem", m);
    }
}

/// Both parties' OT sessions in memory with Ferret set `params`, running `mill`.
fn ot_sessions(
    config: Config,
    params: FerretParams,
    mill: Millionaires,
) -> (OtSession, Channel, OtSession, Channel) {
    let (mut ca, mut cb) = Channel::in_memory_pair(ChannelConfig::default());
    ca.raise_max_frame_len(config.max_message_len());
    cb.raise_max_frame_len(config.max_message_len());
    let (sa, sb) = std::thread::scope(|s| {
        let h = s.spawn(|| {
            OtSession::setup_with(&mut cb, Role::Bob, config, Prg::from_os_entropy(), params)
                .and_then(|s| s.with_millionaires(mill))
                .expect("bob")
        });
        let sa =
            OtSession::setup_with(&mut ca, Role::Alice, config, Prg::from_os_entropy(), params)
                .and_then(|s| s.with_millionaires(mill))
                .expect("alice");
        (sa, h.join().expect("bob thread"))
    });
    (sa, ca, sb, cb)
}

/// One call of `block` on `x`; returns the output length.
fn ot_call(s: &mut OtSession, ch: &mut Channel, block: Block, x: &[u64], shift: u32) -> usize {
    match block {
        Block::Relu => s.relu_rescale(ch, x, shift).expect("relu").len(),
        Block::Rescale => s.rescale(ch, x, shift).expect("rescale").len(),
        Block::MaxPool => s.max4_rescale(ch, x, shift).expect("maxpool").len(),
        Block::Argmax => s.argmax2(ch, x).expect("argmax").len(),
    }
}

/// The OT backend's variants side by side (issue #20): per block and shift, issue #9's wire
/// format, the trimmed 4-bit digits with two carry comparisons and with fused carries against
/// the default (low digits shared) with digits of 4, 3 and 2 bits on `FERRET_COMPACT`, and the default's digits on
/// the `FERRET` set (8× fewer bytes per COT, slower) at the UNet's shift; at the q32 preset's
/// `p`; prints bytes per item, items per second of wall time over all iterations and each
/// party's CPU time per item, as [`bench_nonlinear_block`] does.
fn bench_ot_variants(c: &mut Criterion) {
    let [_, (k, p)] = preset_moduli();
    let m = 1usize << 16;
    let config = Config::new(Backend::Ot, k, p).expect("valid");
    let compact = ("compact", FerretParams::FERRET_COMPACT);
    let ferret = ("ferret", FerretParams::FERRET);
    let fused = |digit_bits| Millionaires::DEFAULT.with_digits(digit_bits);
    let old = [
        Millionaires::ISSUE_9,
        Millionaires::TRIMMED,
        Millionaires::FUSED,
    ];
    let mut runs: Vec<(Block, u32, Millionaires, (&str, FerretParams))> = Vec::new();
    for shift in [12u32, 4] {
        for mill in old.into_iter().chain([fused(4), fused(3), fused(2)]) {
            runs.push((Block::Relu, shift, mill, compact));
        }
    }
    for mill in [fused(4), fused(3), fused(2)] {
        runs.push((Block::Relu, 12, mill, ferret));
    }
    for block in [Block::MaxPool, Block::Argmax] {
        let shift = if block == Block::Argmax { 0 } else { 12 };
        for mill in old.into_iter().chain([fused(4), fused(3)]) {
            runs.push((block, shift, mill, compact));
        }
    }
    let (pool_a, pool_b) = (one_thread_pool(), one_thread_pool());
    let mut g = c.benchmark_group("nonlinear_ot_variants");
    g.sample_size(10);
    for (block, shift, mill, (set, params)) in runs {
        let values = match block {
            Block::MaxPool => 4,
            Block::Argmax => 2,
            _ => 1,
        };
        let items = if block == Block::MaxPool { m / 4 } else { m };
        let mut prg = Prg::from_seed([3; 16]);
        let xa: Vec<u64> = (0..items * values).map(|_| prg.uniform_below(p)).collect();
        let xb: Vec<u64> = (0..items * values).map(|_| prg.uniform_below(p)).collect();
        let (mut sa, mut ca, mut sb, mut cb) = ot_sessions(config, params, mill);
        let wire = match mill {
            m if m.shared_low_digits => "shared",
            m if m.fused_carries => "fused",
            m if m.trimmed => "trimmed",
            _ => "issue9",
        };
        let param = format!("k={k},shift={shift},m={},{wire},{set}", mill.digit_bits);
        let before = nonlinear::traffic(ca.meter(), block);
        let (mut cpu_a, mut cpu_b, mut done, mut wall) =
            (Duration::ZERO, Duration::ZERO, 0u64, Duration::ZERO);
        g.throughput(Throughput::Elements(items as u64));
        g.bench_function(BenchmarkId::new(block.name(), &param), |b| {
            b.iter(|| {
                let start = Instant::now();
                std::thread::scope(|s| {
                    let h = s.spawn(|| {
                        pool_b.install(|| {
                            let t = thread_cpu();
                            black_box(ot_call(&mut sb, &mut cb, block, &xb, shift));
                            thread_cpu() - t
                        })
                    });
                    cpu_a += pool_a.install(|| {
                        let t = thread_cpu();
                        black_box(ot_call(&mut sa, &mut ca, block, &xa, shift));
                        thread_cpu() - t
                    });
                    cpu_b += h.join().expect("bob thread");
                });
                done += items as u64;
                wall += start.elapsed();
            })
        });
        if done > 0 {
            let after = nonlinear::traffic(ca.meter(), block);
            let bytes = (after.bytes_sent + after.bytes_received
                - before.bytes_sent
                - before.bytes_received) as f64
                / done as f64;
            println!(
                "nonlinear_ot_variants/{}/{param}: bytes/item {bytes:.1}; {:.0} items/s over \
                 all iterations; CPU/item: Alice {:.2} µs, Bob {:.2} µs ({done} items)",
                block.name(),
                done as f64 / wall.as_secs_f64(),
                cpu_a.as_secs_f64() * 1e6 / done as f64,
                cpu_b.as_secs_f64() * 1e6 / done as f64,
            );
        }
    }
    g.finish();
}

criterion_group!(
    benches,
    bench_nonlinear,
    bench_precomputed_relu,
    bench_ot_variants
);
criterion_main!(benches);
