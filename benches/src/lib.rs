//! Shared helpers of the criterion benches (`cargo bench` at the workspace root runs them all).

use std::hint::black_box;
use std::time::Duration;

use bunet_crypto::channel::{Channel, ChannelConfig};
use bunet_crypto::gc::fixed_point::{Gadget, Op, Params};
use bunet_crypto::nonlinear::{self, Backend, Block, Config, Nonlinear, Role};
use bunet_crypto::prg::Prg;
use bunet_unet::arch::{Activation, Architecture, Dims, Pooling};
use bunet_unet::{Quant, QuantModel, Tensor, Weights};
use criterion::{BenchmarkId, Criterion, Throughput};

/// Sets the process up as `bunet` runs (the heap keeps freed memory for reuse,
/// [`bunet_kernels::memory`]) and returns the line every bench prints first: which CPU backend
/// the kernels chose and whether that heap policy applies.
pub fn bench_start() -> String {
    let retained = bunet_kernels::memory::retain_freed_memory();
    format!(
        "bunet kernels backend: {} (IFMA52: {}); heap keeps freed memory: {retained}",
        bunet_kernels::Backend::detect(),
        bunet_kernels::Backend::has_ifma()
    )
}

/// The CPU model as `lscpu` names it (`model name` of `/proc/cpuinfo`), or `unknown`.
pub fn cpu_model() -> String {
    bunet_kernels::cpu_model().unwrap_or_else(|| "unknown".into())
}

/// CPU time (user + system) of the calling thread, from `/proc/thread-self/stat` (10 ms ticks;
/// zero where that file does not exist).
pub fn thread_cpu() -> Duration {
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

/// CPU time (user + system) of the whole process, every thread included, from `/proc/self/stat`
/// (10 ms ticks; zero where that file does not exist).
pub fn process_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let ticks: u64 = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|x| x.parse::<u64>().ok())
        .sum();
    Duration::from_millis(ticks * 10)
}

/// Two channel ends connected over loopback TCP: `(server side, client side)`.
///
/// # Panics
/// If loopback networking fails (a bench set-up error).
pub fn tcp_pair() -> (Channel, Channel) {
    Channel::loopback_pair(ChannelConfig::default()).expect("loopback TCP channels")
}

/// A rayon pool of one thread (one core per party).
///
/// # Panics
/// If the pool cannot be built.
pub fn one_thread_pool() -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("pool")
}

/// Both parties' nonlinear sessions over `transport` (`"tcp"` or in memory), set up in two
/// threads: `(Alice, her channel, Bob, his channel)`.
///
/// # Panics
/// If the set-up fails (a bench set-up error).
pub fn nonlinear_sessions(
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
fn call(s: &mut dyn Nonlinear, ch: &mut Channel, block: Block, x: &[u64], shift: u32) -> usize {
    match block {
        Block::Relu => s.relu_rescale(ch, x, shift).expect("relu").len(),
        Block::Rescale => s.rescale(ch, x, shift).expect("rescale").len(),
        Block::MaxPool => s.max4_rescale(ch, x, shift).expect("maxpool").len(),
        Block::Argmax => s.argmax2(ch, x).expect("argmax").len(),
    }
}

/// One nonlinear bench: `m` instances of `block` (rescaling by `shift`) at `k` bits mod `p` through
/// `backend`, two parties as two threads with one rayon thread each over `transport`, benched as
/// `group/name/param` with `Throughput::Elements(m)`.
///
/// Afterwards prints bytes per item (OT part, GC part, total, bytes per AND), items per second
/// of wall time over all iterations, and each party's CPU time per item
/// (`/proc/thread-self/stat`, summed over every iteration criterion ran, which the load of
/// other processes does not inflate as it does wall time). Prints nothing when criterion ran no
/// iteration (`--list`, or the bench filtered out).
///
/// # Panics
/// If the parameters are invalid or a party fails (a bench set-up error).
#[allow(clippy::too_many_arguments)]
pub fn bench_nonlinear_block(
    c: &mut Criterion,
    (group, name, param): (&str, &str, &str),
    backend: Backend,
    block: Block,
    k: u32,
    p: u64,
    shift: u32,
    transport: &str,
    m: usize,
) {
    let (op, values) = match block {
        Block::Relu => (Op::ReluRescaleReshare, 1),
        Block::Rescale => (Op::RescaleReshare, 1),
        Block::MaxPool => (Op::Max4RescaleReshare, 4),
        Block::Argmax => (Op::Argmax2, 2),
    };
    let ands = Gadget::new(Params::new(k, p, shift).expect("valid"), op)
        .circuit()
        .counts()
        .and;
    let config = Config::new(backend, k, p).expect("valid");
    let (mut sa, mut ca, mut sb, mut cb) = nonlinear_sessions(config, transport);
    let mut prg = Prg::from_seed([3; 16]);
    let xa: Vec<u64> = (0..m * values).map(|_| prg.uniform_below(p)).collect();
    let xb: Vec<u64> = (0..m * values).map(|_| prg.uniform_below(p)).collect();
    let (pool_a, pool_b) = (one_thread_pool(), one_thread_pool());
    let mut g = c.benchmark_group(group);
    g.sample_size(10);
    g.throughput(Throughput::Elements(m as u64));
    let (mut cpu_a, mut cpu_b, mut items) = (Duration::ZERO, Duration::ZERO, 0u64);
    let mut wall = Duration::ZERO;
    let before = nonlinear::traffic(ca.meter(), block);
    g.bench_function(BenchmarkId::new(name, param), |b| {
        b.iter(|| {
            let start = std::time::Instant::now();
            std::thread::scope(|s| {
                let h = s.spawn(|| {
                    pool_b.install(|| {
                        let t = thread_cpu();
                        black_box(call(&mut *sb, &mut cb, block, &xb, shift));
                        thread_cpu() - t
                    })
                });
                let da = pool_a.install(|| {
                    let t = thread_cpu();
                    black_box(call(&mut *sa, &mut ca, block, &xa, shift));
                    thread_cpu() - t
                });
                cpu_a += da;
                cpu_b += h.join().expect("bob thread");
                items += m as u64;
            });
            wall += start.elapsed();
        })
    });
    g.finish();
    if items == 0 {
        return;
    }
    let after = nonlinear::traffic(ca.meter(), block);
    let per = |x: u64| x as f64 / items as f64;
    let ot = ca.meter().get(block.ot_label());
    let gc = ca.meter().get(block.gc_label());
    let sent = after.bytes_sent - before.bytes_sent;
    let received = after.bytes_received - before.bytes_received;
    let total = per(sent + received);
    println!(
        "{group}/{name}/{param}: {ands} AND/item; bytes/item: OT {:.1} (Bob→Alice), GC {:.1} \
         (both ways), total {total:.1} ({:.2} B/AND); {:.0} items/s over all iterations; \
         CPU/item: Alice {:.2} µs, Bob {:.2} µs ({items} items)",
        per(ot.bytes_received + ot.bytes_sent),
        per(gc.bytes_sent + gc.bytes_received),
        total / ands as f64,
        items as f64 / wall.as_secs_f64(),
        cpu_a.as_secs_f64() * 1e6 / items as f64,
        cpu_b.as_secs_f64() * 1e6 / items as f64,
    );
}

/// A model whose first conv is a 3×3 (3×3×3 in 3D) `c → c` conv with trained-like weights: the
/// layer the linear benches run.
///
/// # Panics
/// If the architecture is invalid (a bench set-up error).
pub fn conv_model(dims: Dims, c: usize, quant: Quant) -> QuantModel {
    let arch = Architecture {
        in_channels: c,
        base_features: c,
        depth: 1,
        activation: Activation::Relu,
        pooling: Pooling::Max,
        dims,
        classes: 2,
    };
    let folded = Weights::random_trained_like(&arch, 1)
        .expect("valid architecture")
        .fold();
    QuantModel::new(&folded, quant).expect("quantizes")
}

/// A uniform share of `channels` planes of extents `dims` mod `p`.
///
/// # Panics
/// Never for a non-empty shape.
pub fn uniform_share(channels: usize, dims: [usize; 3], p: u64, prg: &mut Prg) -> Tensor<u64> {
    let len = channels * dims.iter().product::<usize>();
    let data = (0..len).map(|_| prg.uniform_below(p)).collect();
    Tensor::from_vec(channels, dims, data).expect("shape")
}

/// The value two shares reconstruct: `a + b mod p`, element by element.
pub fn add_shares(a: &Tensor<u64>, b: &Tensor<u64>, p: u64) -> Vec<u64> {
    a.data()
        .iter()
        .zip(b.data())
        .map(|(&x, &y)| (x + y) % p)
        .collect()
}

/// Runs one two-party step: `server` on a scoped thread over `s_ch`, `client` here over `c_ch`,
/// each with a fresh PRG. Returns `(client's output, server's output)`.
///
/// # Panics
/// If the server thread panics.
pub fn two_parties<T: Send>(
    (s_ch, c_ch): (&mut Channel, &mut Channel),
    server: impl FnOnce(&mut Channel, &mut Prg) -> T + Send,
    client: impl FnOnce(&mut Channel, &mut Prg) -> T,
) -> (T, T) {
    std::thread::scope(|s| {
        let bob = s.spawn(|| server(s_ch, &mut Prg::from_os_entropy()));
        let mine = client(c_ch, &mut Prg::from_os_entropy());
        (mine, bob.join().expect("server thread"))
    })
}

/// Checks that the output shares `y` of conv `conv` of `qm` on the input shares `x` reconstruct
/// the fixed-point reference bit for bit.
///
/// # Panics
/// If they do not (`what` names the bench).
pub fn check_conv(
    (qm, conv): (&QuantModel, usize),
    (x_a, x_b): (&Tensor<u64>, &Tensor<u64>),
    (y_a, y_b): (&Tensor<u64>, &Tensor<u64>),
    what: &str,
) {
    let p = qm.quant().p;
    let x = Tensor::from_vec(x_a.channels(), x_a.dims(), add_shares(x_a, x_b, p)).expect("shape");
    assert_eq!(
        add_shares(y_a, y_b, p),
        bunet_unet::fixed::conv(qm, conv, &x).data(),
        "{what} output differs from the fixed-point reference"
    );
}

/// Wall time and process CPU time (every thread, both parties) summed over the runs of a bench.
#[derive(Debug, Default, Clone, Copy)]
pub struct Tally {
    /// Runs timed.
    pub runs: u64,
    /// Their wall time.
    pub wall: Duration,
    /// Their process CPU time.
    pub cpu: Duration,
}

impl Tally {
    /// Runs `f` once, adding its wall and CPU time.
    pub fn time<T>(&mut self, f: impl FnOnce() -> T) -> T {
        let (start, cpu) = (std::time::Instant::now(), process_cpu());
        let out = f();
        self.wall += start.elapsed();
        self.cpu += process_cpu().saturating_sub(cpu);
        self.runs += 1;
        out
    }

    /// Milliseconds of wall time and of CPU time per run.
    pub fn ms_per_run(&self) -> (f64, f64) {
        let runs = self.runs.max(1) as f64;
        (
            self.wall.as_secs_f64() * 1e3 / runs,
            self.cpu.as_secs_f64() * 1e3 / runs,
        )
    }
}
