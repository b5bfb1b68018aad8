//! Each party's heavy blocks with 1 and 2 threads (issue #16, "use every core"): the two parties
//! as two threads over `Channel::in_memory_pair`, each running inside a rayon pool of its own
//! with `threads` threads, IDs `threads/<block>/<param>,threads=T`:
//!
//! - `threads/homconv/128x128,c=16to16,q32`: one HomConv of a 3×3 conv on a 128×128 image at
//!   the real q32 preset (the emulated-link runs' slice size; Bob's filters prepared once,
//!   outside the timed loop). Alice encrypts and decrypts in parallel over ciphertexts, Bob
//!   multiplies and re-randomises in parallel over output groups.
//! - `threads/relu/n=2^18,k=32,q32,backend=ot`: 2^18 secure ReLUs with rescale on the silent-OT
//!   backend (one layer of a 128×128 slice at its largest, one chunk).
//!
//! After each bench a line gives wall per run and each party's CPU per run, summed over its
//! pool's threads (`ThreadPool::broadcast` of the per-thread CPU clock before and after), so the
//! speed-up from a second thread reads as wall(1) / wall(2) and the parallel efficiency as
//! CPU(2) / CPU(1). On a machine shared with other work, compare the two lines of one run.
//! The line also gives each party's busiest pool thread's CPU per run: a party can finish no
//! sooner than that thread, so busiest / total is the wall fraction a party on cores of its own
//! would need at best (1 with one thread, 1/2 for perfectly split work on two) — a measure of
//! how much of its work the second thread takes. Other load on the machine (which, on 2 shared
//! cores holding both parties, makes the walls noisy) moves it less, and only upward: a
//! descheduled worker steals fewer tasks.

use std::hint::black_box;
use std::time::{Duration, Instant};

use bunet_benches::{nonlinear_sessions, thread_cpu};
use bunet_crypto::nonlinear::{Backend, Config};
use bunet_crypto::pahe::{Params, PublicKey, SecretKey};
use bunet_crypto::prg::Prg;
use bunet_unet::arch::{Activation, Architecture, Dims, Pooling};
use bunet_unet::secure::{HomConvClient, HomConvServer, Layout};
use bunet_unet::{Quant, QuantModel, Tensor, Weights};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("pool")
}

/// CPU time used so far by each thread of `pool`, in thread-index order.
fn pool_cpu(pool: &rayon::ThreadPool) -> Vec<Duration> {
    pool.broadcast(|_| thread_cpu())
}

/// The total CPU of a pool's threads between two readings and that of its busiest thread.
fn spent(before: &[Duration], after: &[Duration]) -> (Duration, Duration) {
    let each = after.iter().zip(before).map(|(a, b)| a.saturating_sub(*b));
    (each.clone().sum(), each.max().unwrap_or_default())
}

/// Per-run totals of a two-party bench.
#[derive(Default)]
struct Totals {
    runs: u32,
    wall: Duration,
    alice: Duration,
    bob: Duration,
    /// CPU of each party's busiest pool thread, summed over runs.
    alice_busiest: Duration,
    bob_busiest: Duration,
}

impl Totals {
    fn print(&self, id: &str) {
        if self.runs == 0 {
            return;
        }
        let per = |d: Duration| d.as_secs_f64() * 1e3 / f64::from(self.runs);
        println!(
            "{id}: {:.1} ms/run wall; CPU per run: Alice {:.1} ms, Bob {:.1} ms; busiest thread \
             per run: Alice {:.1} ms, Bob {:.1} ms ({} runs)",
            per(self.wall),
            per(self.alice),
            per(self.bob),
            per(self.alice_busiest),
            per(self.bob_busiest),
            self.runs
        );
    }
}

/// Runs `alice` in `pa` and `bob` in `pb` at once (two threads), adding wall and each pool's
/// CPU to `t`.
fn two_party<A: Send, B: Send>(
    (pa, pb): (&rayon::ThreadPool, &rayon::ThreadPool),
    t: &mut Totals,
    alice: impl FnOnce() -> A + Send,
    bob: impl FnOnce() -> B + Send,
) -> (A, B) {
    let (ca, cb) = (pool_cpu(pa), pool_cpu(pb));
    let start = Instant::now();
    let out = std::thread::scope(|s| {
        let h = s.spawn(|| pb.install(bob));
        let a = pa.install(alice);
        (a, h.join().expect("bob thread"))
    });
    t.wall += start.elapsed();
    let ((alice, alice_busiest), (bob, bob_busiest)) =
        (spent(&ca, &pool_cpu(pa)), spent(&cb, &pool_cpu(pb)));
    t.alice += alice;
    t.bob += bob;
    t.alice_busiest += alice_busiest;
    t.bob_busiest += bob_busiest;
    t.runs += 1;
    out
}

fn homconv(c: &mut Criterion, threads: usize) {
    let params = Params::q32();
    let arch = Architecture {
        in_channels: 16,
        base_features: 16,
        depth: 1,
        activation: Activation::Relu,
        pooling: Pooling::Max,
        dims: Dims::Two,
        classes: 2,
    };
    let folded = Weights::random_trained_like(&arch, 1)
        .expect("valid architecture")
        .fold();
    let qm = QuantModel::new(&folded, Quant::q32()).expect("quantizes");
    let dims = [1, 128, 128];
    let spec = &qm.convs()[0].spec;
    let layout = Layout::new(&params, spec, dims, None).expect("supported layer");
    let mut prg = Prg::from_os_entropy();
    let sk = SecretKey::generate(&params, &mut prg);
    let pk = PublicKey::generate(&sk, &mut prg);
    let p = params.p();
    let share = |prg: &mut Prg| {
        let data = (0..spec.c_in * 128 * 128)
            .map(|_| prg.uniform_below(p))
            .collect();
        Tensor::from_vec(spec.c_in, dims, data).expect("shape")
    };
    let (x_a, x_b) = (share(&mut prg), share(&mut prg));
    let mut parties = None;
    let (mut s_ch, mut c_ch) = bunet_crypto::channel::Channel::in_memory_pair(Default::default());
    let (pa, pb) = (pool(threads), pool(threads));
    let mut t = Totals::default();
    let param = format!("128x128,c=16to16,q32,threads={threads}");
    let mut g = c.benchmark_group("threads");
    g.sample_size(10);
    g.throughput(Throughput::Elements((spec.c_out * 128 * 128) as u64));
    g.bench_function(BenchmarkId::new("homconv", &param), |b| {
        let (server, client) = parties.get_or_insert_with(|| {
            (
                HomConvServer::new(&params, &qm, 0, layout.clone()).expect("server"),
                HomConvClient::new(&params, layout.clone()).expect("client"),
            )
        });
        let (server, client) = (&*server, &*client);
        b.iter(|| {
            black_box(two_party(
                (&pa, &pb),
                &mut t,
                || {
                    let mut prg = Prg::from_os_entropy();
                    client.run(&mut c_ch, &sk, &x_a, &mut prg).expect("client")
                },
                || {
                    let mut prg = Prg::from_os_entropy();
                    server.run(&mut s_ch, &pk, &x_b, &mut prg).expect("server")
                },
            ))
        })
    });
    g.finish();
    t.print(&format!("threads/homconv/{param}"));
}

fn relu(c: &mut Criterion, threads: usize) {
    let quant = Quant::q32();
    let (k, m, shift) = (32, 1usize << 18, 4);
    let config = Config::new(Backend::Ot, k, quant.p)
        .and_then(|c| c.with_chunk(m))
        .expect("valid");
    let (mut sa, mut ca, mut sb, mut cb) = nonlinear_sessions(config, "mem");
    let mut prg = Prg::from_seed([3; 16]);
    let xa: Vec<u64> = (0..m).map(|_| prg.uniform_below(quant.p)).collect();
    let xb: Vec<u64> = (0..m).map(|_| prg.uniform_below(quant.p)).collect();
    let (pa, pb) = (pool(threads), pool(threads));
    let mut t = Totals::default();
    let param = format!("n=2^18,k=32,q32,backend=ot,threads={threads}");
    let mut g = c.benchmark_group("threads");
    g.sample_size(10);
    g.throughput(Throughput::Elements(m as u64));
    g.bench_function(BenchmarkId::new("relu", &param), |b| {
        b.iter(|| {
            black_box(two_party(
                (&pa, &pb),
                &mut t,
                || sa.relu_rescale(&mut ca, &xa, shift).expect("alice"),
                || sb.relu_rescale(&mut cb, &xb, shift).expect("bob"),
            ))
        })
    });
    g.finish();
    t.print(&format!("threads/relu/{param}"));
}

fn bench_threads(c: &mut Criterion) {
    println!("{}", bunet_benches::bench_start());
    println!("cpu: {}", bunet_benches::cpu_model());
    for threads in [1, 2] {
        homconv(c, threads);
    }
    for threads in [1, 2] {
        relu(c, threads);
    }
}

criterion_group!(benches, bench_threads);
criterion_main!(benches);
