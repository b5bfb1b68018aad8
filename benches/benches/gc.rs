//! Garbled circuits: AND gates per second garbled and evaluated on one core (layer-batched,
//! in memory: emp's "null channel" measurement), and the fixed-point ReLU two-party over an
//! in-memory channel and over loopback TCP (one thread per party) with its bytes per ReLU.

use bunet_crypto::channel::{Channel, ChannelConfig};
use bunet_crypto::gc::fixed_point::{self, Gadget, Op, Params};
use bunet_crypto::gc::half_gates::{self, Delta, Evaluator, Garbler};
use bunet_crypto::gc::{Circuit, Party, bristol};
use bunet_crypto::prg::Prg;
use bunet_kernels::aes_hash::FixedKeyHash;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

const AES128: &str = include_str!("../../crypto/testdata/bristol/aes_128.txt");

fn labels(prg: &mut Prg, n: usize) -> Vec<u128> {
    (0..n).map(|_| prg.next_u128()).collect()
}

/// Garble and evaluate `m` instances of `circuit` in memory on one core.
fn bench_core(c: &mut Criterion, name: &str, circuit: &Circuit, m: usize) {
    let mut g = c.benchmark_group("gc");
    g.sample_size(20);
    let ands = circuit.counts().and * m;
    g.throughput(Throughput::Elements(ands as u64));
    let mut prg = Prg::from_seed([1; 16]);
    let delta = Delta::random(&mut prg);
    let hash = FixedKeyHash::new();
    let gz = labels(&mut prg, m * circuit.n_garbler_inputs());
    let ez = labels(&mut prg, m * circuit.n_evaluator_inputs());
    let mut tables = vec![0u128; 2 * ands];
    g.bench_function(BenchmarkId::new("garble", format!("{name},m={m}")), |b| {
        b.iter(|| {
            half_gates::garble_instances(
                circuit,
                &hash,
                &delta,
                0,
                m,
                &gz,
                &ez,
                black_box(&mut tables),
            )
        })
    });
    // Active labels of the all-zero input.
    g.bench_function(BenchmarkId::new("evaluate", format!("{name},m={m}")), |b| {
        b.iter(|| {
            half_gates::evaluate_instances(circuit, &hash, 0, m, &gz, &ez, black_box(&tables))
        })
    });
    g.finish();
}

fn bench_core_all(c: &mut Criterion) {
    println!("{}", bunet_benches::bench_start());
    println!("aes engine: {}", FixedKeyHash::new().engine());
    let aes = bristol::parse(AES128, 1, Party::Evaluator).expect("aes_128.txt parses");
    bench_core(c, "circuit=aes128", &aes, 1);
    bench_core(c, "circuit=aes128", &aes, 16);
    for (k, p) in [(24u32, 16_777_213u64), (32, 4_294_967_291)] {
        let gadget = Gadget::new(Params::new(k, p, 4).expect("valid"), Op::ReluRescaleReshare);
        let m = half_gates::sub_batch_size(gadget.circuit());
        bench_core(c, &format!("circuit=relu,k={k}"), gadget.circuit(), m);
    }
}

/// Two parties over an in-memory channel, one rayon thread each: ReLUs per second, and the
/// bytes the garbler sends per ReLU.
fn bench_relu_two_party(c: &mut Criterion) {
    let mut g = c.benchmark_group("gc");
    g.sample_size(10);
    let m = 8192;
    g.throughput(Throughput::Elements(m as u64));
    for ((k, p), transport) in [
        ((24u32, 16_777_213u64), "mem"),
        ((32, 4_294_967_291), "mem"),
        ((32, 4_294_967_291), "tcp"),
    ] {
        let prm = Params::new(k, p, 4).expect("valid");
        let gadget = Gadget::new(prm, Op::ReluRescaleReshare);
        let mut prg = Prg::from_seed([2; 16]);
        let sa: Vec<u64> = (0..m).map(|_| prg.uniform_below(p)).collect();
        let sb: Vec<u64> = (0..m).map(|_| prg.uniform_below(p)).collect();
        let r: Vec<u64> = (0..m).map(|_| prg.uniform_below(p)).collect();
        let (pool_a, pool_b) = (
            bunet_benches::one_thread_pool(),
            bunet_benches::one_thread_pool(),
        );
        let mut garbler = Garbler::new(Delta::random(&mut prg));
        let mut evaluator = Evaluator::new();
        let (mut ca, mut cb) = if transport == "tcp" {
            bunet_benches::tcp_pair()
        } else {
            Channel::in_memory_pair(ChannelConfig::default())
        };
        let mut bytes_per_relu = 0.0;
        g.bench_function(
            BenchmarkId::new("relu_two_party", format!("k={k},{transport}")),
            |b| {
                b.iter(|| {
                    let zero = garbler.evaluator_zero_labels(gadget.circuit(), m);
                    // Stand-in for correlated OT (measured separately): L0 ⊕ b·Δ.
                    let d = garbler.delta().expose();
                    let bits = gadget.evaluator_bits(m, &sb).expect("valid");
                    let lab: Vec<u128> = zero
                        .iter()
                        .zip(&bits)
                        .map(|(&z, &x)| if x { z ^ d } else { z })
                        .collect();
                    let before = ca.meter().get("gc/relu").bytes_sent;
                    std::thread::scope(|s| {
                        let h = s.spawn(|| {
                            pool_b.install(|| {
                                fixed_point::evaluate_batch(
                                    &mut evaluator,
                                    &mut cb,
                                    &gadget,
                                    m,
                                    &lab,
                                )
                                .expect("evaluate")
                            })
                        });
                        pool_a.install(|| {
                            fixed_point::garble_batch(
                                &mut garbler,
                                &mut ca,
                                &gadget,
                                m,
                                &sa,
                                &r,
                                &zero,
                            )
                            .expect("garble")
                        });
                        black_box(h.join().expect("evaluator thread"));
                    });
                    bytes_per_relu =
                        (ca.meter().get("gc/relu").bytes_sent - before) as f64 / m as f64;
                })
            },
        );
        println!(
            "gc/relu_two_party/k={k},{transport}: {} AND/ReLU, {bytes_per_relu:.2} bytes/ReLU sent by the garbler ({:.3} bytes/AND)",
            gadget.circuit().counts().and,
            bytes_per_relu / gadget.circuit().counts().and as f64
        );
    }
    g.finish();
}

criterion_group!(benches, bench_core_all, bench_relu_two_party);
criterion_main!(benches);
