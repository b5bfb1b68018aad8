//! Nonlinear layers on shares through `crypto::nonlinear`, both backends side by side in one
//! run (GC: IDs `k=..,mem`; OT: IDs `k=..,mem,backend=ot`): secure ReLUs, 2×2 max pools and
//! two-class argmaxes per second, two parties as two threads (one rayon thread each) over the
//! in-memory channel and, for the ReLU at k = 32, over loopback TCP. Everything on the wire is
//! counted: for GC Bob's IKNP columns for his label OTs and Alice's garbled tables; for OT the
//! silent-OT trees, corrections, openings and re-sharing (set-up excluded).
//!
//! After each benchmark a line reports bytes per item (OT part, GC part, total, bytes per AND)
//! and the CPU time per item of each party's thread (`/proc/thread-self/stat`, 10 ms ticks,
//! summed over every iteration criterion ran), which the load of other processes on the
//! machine does not inflate as it does wall time.

use bunet_crypto::channel::{Channel, ChannelConfig};
use bunet_crypto::gc::fixed_point::{Gadget, Op, Params};
use bunet_crypto::nonlinear::{self, Backend, Block, Config, Nonlinear, Role};
use bunet_crypto::prg::Prg;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::Duration;

/// CPU time (user + system) of the calling thread, from `/proc/thread-self/stat`.
fn thread_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|x| x.parse().ok())
        .collect();
    let ticks = f.iter().sum::<u64>();
    Duration::from_millis(ticks * 10)
}

fn tcp_pair() -> (Channel, Channel) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let addr = listener.local_addr().expect("local address");
    let client = std::thread::spawn(move || std::net::TcpStream::connect(addr).expect("connect"));
    let (server, _) = listener.accept().expect("accept");
    let client = client.join().expect("connect thread");
    (
        Channel::tcp(server, ChannelConfig::default()).expect("tcp channel"),
        Channel::tcp(client, ChannelConfig::default()).expect("tcp channel"),
    )
}

fn pool() -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("pool")
}

/// Both parties' sessions over `transport`, set up in two threads.
fn sessions(
    config: Config,
    transport: &str,
) -> (Box<dyn Nonlinear>, Channel, Box<dyn Nonlinear>, Channel) {
    let (mut ca, mut cb) = if transport == "tcp" {
        tcp_pair()
    } else {
        Channel::in_memory_pair(ChannelConfig::default())
    };
    let (sa, sb) = std::thread::scope(|s| {
        let h = s.spawn(|| {
            nonlinear::setup(&mut cb, Role::Bob, config, Prg::from_os_entropy()).expect("bob")
        });
        let sa =
            nonlinear::setup(&mut ca, Role::Alice, config, Prg::from_os_entropy()).expect("alice");
        (sa, h.join().expect("bob thread"))
    });
    (sa, ca, sb, cb)
}

/// Runs one call of `block` on `x` (this party's shares).
fn call(s: &mut dyn Nonlinear, ch: &mut Channel, block: Block, x: &[u64]) -> usize {
    match block {
        Block::Relu => s.relu_rescale(ch, x, 4).expect("relu").len(),
        Block::Rescale => s.rescale(ch, x, 4).expect("rescale").len(),
        Block::MaxPool => s.max4_rescale(ch, x, 4).expect("maxpool").len(),
        Block::Argmax => s.argmax2(ch, x).expect("argmax").len(),
    }
}

fn bench_block(
    c: &mut Criterion,
    backend: Backend,
    block: Block,
    k: u32,
    p: u64,
    transport: &str,
    m: usize,
) {
    let (op, values) = match block {
        Block::Relu => (Op::ReluRescaleReshare, 1),
        Block::Rescale => (Op::RescaleReshare, 1),
        Block::MaxPool => (Op::Max4RescaleReshare, 4),
        Block::Argmax => (Op::Argmax2, 2),
    };
    let ands = Gadget::new(Params::new(k, p, 4).expect("valid"), op)
        .circuit()
        .counts()
        .and;
    let config = Config::new(backend, k, p).expect("valid");
    let tag = match backend {
        Backend::Gc => format!("k={k},{transport}"),
        _ => format!("k={k},{transport},backend={}", backend.name()),
    };
    let (mut sa, mut ca, mut sb, mut cb) = sessions(config, transport);
    let mut prg = Prg::from_seed([3; 16]);
    let xa: Vec<u64> = (0..m * values).map(|_| prg.uniform_below(p)).collect();
    let xb: Vec<u64> = (0..m * values).map(|_| prg.uniform_below(p)).collect();
    let (pool_a, pool_b) = (pool(), pool());
    let mut g = c.benchmark_group("nonlinear");
    g.sample_size(10);
    g.throughput(Throughput::Elements(m as u64));
    let (mut cpu_a, mut cpu_b, mut items) = (Duration::ZERO, Duration::ZERO, 0u64);
    let before = nonlinear::traffic(ca.meter(), block);
    g.bench_function(BenchmarkId::new(block.name(), &tag), |b| {
        b.iter(|| {
            std::thread::scope(|s| {
                let h = s.spawn(|| {
                    pool_b.install(|| {
                        let t = thread_cpu();
                        black_box(call(&mut *sb, &mut cb, block, &xb));
                        thread_cpu() - t
                    })
                });
                let da = pool_a.install(|| {
                    let t = thread_cpu();
                    black_box(call(&mut *sa, &mut ca, block, &xa));
                    thread_cpu() - t
                });
                cpu_a += da;
                cpu_b += h.join().expect("bob thread");
                items += m as u64;
            });
        })
    });
    g.finish();
    let after = nonlinear::traffic(ca.meter(), block);
    let per = |x: u64| x as f64 / items as f64;
    let ot = ca.meter().get(block.ot_label());
    let gc = ca.meter().get(block.gc_label());
    let sent = after.bytes_sent - before.bytes_sent;
    let received = after.bytes_received - before.bytes_received;
    let total = per(sent + received);
    println!(
        "nonlinear/{}/{tag}: {ands} AND/item (GC circuit); bytes/item: OT {:.1}, GC {:.1} \
         (both ways), total {total:.1} ({:.2} B/GC-AND); CPU/item: Alice {:.2} µs, Bob {:.2} µs \
         ({} items)",
        block.name(),
        per(ot.bytes_received + ot.bytes_sent),
        per(gc.bytes_sent + gc.bytes_received),
        total / ands as f64,
        cpu_a.as_secs_f64() * 1e6 / items as f64,
        cpu_b.as_secs_f64() * 1e6 / items as f64,
        items,
    );
}

fn bench_nonlinear(c: &mut Criterion) {
    println!("{}", bunet_benches::backend_banner());
    let m = 1 << 16;
    for (k, p) in [(24u32, 16_777_213u64), (32, 4_294_967_291)] {
        for &backend in Backend::ALL {
            bench_block(c, backend, Block::Relu, k, p, "mem", m);
            bench_block(c, backend, Block::MaxPool, k, p, "mem", m / 4);
            bench_block(c, backend, Block::Argmax, k, p, "mem", m);
        }
    }
    for &backend in Backend::ALL {
        bench_block(c, backend, Block::Relu, 32, 4_294_967_291, "tcp", m);
    }
}

criterion_group!(benches, bench_nonlinear);
criterion_main!(benches);
