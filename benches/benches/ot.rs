//! OT extension and triple benches: two parties on two threads (one core each) over the
//! in-memory channel. Throughput is per OT (or triple); bytes per item are printed once per
//! bench, counted by the channel meter (frame headers included, both directions).

use std::hint::black_box;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use bunet_crypto::channel::{Channel, ChannelConfig};
use bunet_crypto::ot::{Receiver, Sender, pack_choices};
use bunet_crypto::prg::Prg;
use bunet_crypto::silent;
use bunet_crypto::triples::{Role, Session, SquarePairs};
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};

type Job<S> = Box<dyn FnOnce(&mut S) + Send>;

/// The other party of the triple benches: channel end, session, square pairs made ahead.
type TripleState = (Channel, Session, Option<SquarePairs>);

/// The receiving party: its channel end, session and output buffer.
type RecvState = (Channel, Receiver, Vec<u128>);

/// The other party, on its own thread, running one job per request.
struct Peer<S> {
    jobs: mpsc::Sender<Job<S>>,
    done: mpsc::Receiver<u64>,
}

impl<S: 'static> Peer<S> {
    fn spawn(init: impl FnOnce() -> S + Send + 'static) -> Self {
        let (jobs, rx) = mpsc::channel::<Job<S>>();
        let (done_tx, done) = mpsc::channel();
        thread::spawn(move || {
            let mut state = init();
            done_tx.send(thread_cpu_ns()).unwrap();
            while let Ok(job) = rx.recv() {
                job(&mut state);
                done_tx.send(thread_cpu_ns()).unwrap();
            }
        });
        Self { jobs, done }
    }

    fn start(&self, job: impl FnOnce(&mut S) + Send + 'static) {
        self.jobs.send(Box::new(job)).unwrap();
    }

    /// Waits for the current job; returns the peer thread's CPU time so far (ns).
    fn wait(&self) -> u64 {
        self.done.recv().unwrap()
    }
}

/// The sender's channel and session here, the receiver's on a peer thread.
fn ot_session(n: usize) -> (Channel, Sender, Peer<RecvState>) {
    let (mut a, mut b) = Channel::in_memory_pair(ChannelConfig::default());
    let peer = Peer::spawn(move || {
        let r = Receiver::setup(&mut b, &mut Prg::from_os_entropy()).unwrap();
        (b, r, vec![0u128; n])
    });
    let mut prg = Prg::from_os_entropy();
    let delta = prg.next_u128() | 1;
    let s = Sender::setup(&mut a, delta, &mut prg).unwrap();
    let _ = peer.wait();
    (a, s, peer)
}

/// Whether the bench `id` matches the command line's filter (criterion's first free argument,
/// read as `|`-separated substrings), so that the one-off byte and CPU reports of benches that
/// were filtered out do not run.
fn selected(id: &str) -> bool {
    const WITH_VALUE: [&str; 8] = [
        "--measurement-time",
        "--warm-up-time",
        "--profile-time",
        "--sample-size",
        "--save-baseline",
        "--baseline",
        "--noise-threshold",
        "--output-format",
    ];
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if WITH_VALUE.contains(&a.as_str()) {
            i += 2;
            continue;
        }
        if !a.starts_with('-') {
            return a.split('|').any(|f| id.contains(f) || f.contains(id));
        }
        i += 1;
    }
    true
}

/// CPU time of the calling thread in ns (Linux schedstat; 0 where unavailable). On this shared
/// 2-core machine wall time depends on the other jobs; CPU time per item does much less.
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Runs `rounds` rounds of (`mine`, `theirs`) and prints each party's CPU time per item and
/// the rate one core per party would reach at that cost.
fn cpu_per_item<S: 'static, M: FnMut()>(
    what: &str,
    items: u64,
    rounds: u64,
    peer: &Peer<S>,
    mine: &mut M,
    theirs: impl Fn() -> Job<S>,
) {
    peer.jobs.send(Box::new(|_: &mut S| {})).unwrap();
    let peer_start = peer.wait();
    let start = thread_cpu_ns();
    let wall = time_rounds(rounds, peer, mine, theirs);
    let me = (thread_cpu_ns() - start) as f64 / (items * rounds) as f64;
    peer.jobs.send(Box::new(|_: &mut S| {})).unwrap();
    let them = (peer.wait() - peer_start) as f64 / (items * rounds) as f64;
    eprintln!(
        "{what}: CPU ns/item: this party {me:.2}, peer {them:.2} -> {:.2} M/s at one free core per party (wall {:.2} M/s)",
        1e3 / me.max(them),
        (items * rounds) as f64 / wall.as_secs_f64() / 1e6
    );
}

/// Runs `iters` rounds of (`mine`, `theirs`) and returns the wall time.
fn time_rounds<S: 'static, M>(
    iters: u64,
    peer: &Peer<S>,
    mine: &mut M,
    theirs: impl Fn() -> Job<S>,
) -> Duration
where
    M: FnMut(),
{
    let start = Instant::now();
    for _ in 0..iters {
        peer.jobs.send(theirs()).unwrap();
        mine();
        let _ = peer.wait();
    }
    start.elapsed()
}

/// One bench of a two-party operation on `items` items per round: unless the command line
/// filters `what` out, one round for the bytes per `unit` and `cpu_rounds` rounds for each
/// party's CPU time per item; then criterion's wall time per round under `id`. `mine` runs
/// this party's side on the channel, `theirs` makes the peer's job.
#[allow(clippy::too_many_arguments)] // one bench's whole set-up
fn paired<S: 'static>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    (what, id, unit): (&str, &str, &str),
    items: u64,
    cpu_rounds: u64,
    ch: &mut Channel,
    peer: &Peer<S>,
    mine: &mut impl FnMut(&mut Channel),
    theirs: impl Fn() -> Job<S>,
) {
    if selected(what) {
        let bytes = |ch: &Channel| {
            let t = ch.meter().total();
            t.bytes_sent + t.bytes_received
        };
        let before = bytes(ch);
        time_rounds(1, peer, &mut || mine(ch), &theirs);
        let per_item = (bytes(ch) - before) as f64 / items as f64;
        eprintln!("{what}: {per_item:.3} bytes/{unit}");
        cpu_per_item(what, items, cpu_rounds, peer, &mut || mine(ch), &theirs);
    }
    group.bench_function(id, |bch| {
        bch.iter_custom(|iters| time_rounds(iters, peer, &mut || mine(ch), &theirs))
    });
}

fn bench_ot(c: &mut Criterion) {
    eprintln!("{}", bunet_benches::bench_start());
    let n: usize = 1 << 20;
    let mut group = c.benchmark_group("ot");
    group.sample_size(10);
    group.throughput(Throughput::Elements(n as u64));

    group.throughput(Throughput::Elements(128));
    let mut rows = [0u128; 128];
    let mut prg = Prg::from_os_entropy();
    rows.iter_mut().for_each(|r| *r = prg.next_u128());
    group.bench_function("transpose/128x128", |bch| {
        bch.iter(|| bunet_crypto::ot::transpose_128(black_box(&mut rows)))
    });
    group.throughput(Throughput::Elements(n as u64));

    let (mut ch, mut s, peer) = ot_session(n);
    let mut prg = Prg::from_os_entropy();
    let bools: Vec<bool> = (0..n).map(|_| prg.next_u64() & 1 == 1).collect();
    let packed = std::sync::Arc::new(pack_choices(&bools));
    let bools = std::sync::Arc::new(bools);
    let msgs: Vec<[u128; 2]> = (0..n).map(|_| [prg.next_u128(), prg.next_u128()]).collect();

    let mut q = vec![0u128; n];
    let cot_peer = || -> Job<RecvState> {
        let packed = packed.clone();
        Box::new(move |(ch, r, t): &mut RecvState| {
            r.receive_correlated_packed(ch, &packed, t).unwrap();
            black_box(&t);
        })
    };
    paired(
        &mut group,
        ("ot/cot", "cot/n=2^20", "OT"),
        n as u64,
        8,
        &mut ch,
        &peer,
        &mut |ch| s.send_correlated(ch, &mut q).unwrap(),
        cot_peer,
    );
    let rot_peer = || -> Job<RecvState> {
        let bools = bools.clone();
        Box::new(move |(ch, r, _): &mut RecvState| {
            black_box(r.receive_random(ch, &bools).unwrap());
        })
    };
    paired(
        &mut group,
        ("ot/random_ot", "random_ot/n=2^20", "OT"),
        n as u64,
        8,
        &mut ch,
        &peer,
        &mut |ch| drop(black_box(s.send_random(ch, n).unwrap())),
        rot_peer,
    );
    let chosen_peer = || -> Job<RecvState> {
        let bools = bools.clone();
        Box::new(move |(ch, r, _): &mut RecvState| {
            black_box(r.receive_chosen(ch, &bools).unwrap());
        })
    };
    paired(
        &mut group,
        ("ot/chosen_ot", "chosen_ot/k=128,n=2^20", "OT"),
        n as u64,
        8,
        &mut ch,
        &peer,
        &mut |ch| s.send_chosen(ch, &msgs).unwrap(),
        chosen_peer,
    );

    group.throughput(Throughput::Elements(128));
    group.bench_function("setup/base_ots=128", |bch| {
        bch.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                peer.start(|(ch, r, _): &mut RecvState| {
                    *r = Receiver::setup(ch, &mut Prg::from_os_entropy()).unwrap();
                });
                s = Sender::setup(&mut ch, s.delta(), &mut Prg::from_os_entropy()).unwrap();
                let _ = peer.wait();
            }
            start.elapsed()
        })
    });
    group.finish();
}

fn triple_session(p: u64) -> (Channel, Session, Peer<TripleState>) {
    let (mut a, mut b) = Channel::in_memory_pair(ChannelConfig::default());
    let peer = Peer::spawn(move || {
        let s = Session::setup(&mut b, Role::Bob, p, Prg::from_os_entropy()).unwrap();
        (b, s, None)
    });
    let s = Session::setup(&mut a, Role::Alice, p, Prg::from_os_entropy()).unwrap();
    let _ = peer.wait();
    (a, s, peer)
}

fn bench_triples(c: &mut Criterion) {
    let n: usize = 1 << 16;
    let mut group = c.benchmark_group("triples");
    group.sample_size(10);
    group.throughput(Throughput::Elements(n as u64));
    for (p, name) in [(16_777_213u64, "24bit"), (4_294_967_291, "32bit")] {
        let (mut ch, mut s, peer) = triple_session(p);
        paired(
            &mut group,
            (
                &format!("triples/gen/p={name}"),
                &format!("gen/p={name},n=2^16"),
                "triple",
            ),
            n as u64,
            2,
            &mut ch,
            &peer,
            &mut |ch| drop(black_box(s.triples(ch, n).unwrap())),
            || {
                Box::new(move |(ch, s, _): &mut TripleState| {
                    drop(black_box(s.triples(ch, n).unwrap()))
                })
            },
        );
        paired(
            &mut group,
            (
                &format!("triples/square_pairs/p={name}"),
                &format!("square_pairs/p={name},n=2^16"),
                "pair",
            ),
            n as u64,
            2,
            &mut ch,
            &peer,
            &mut |ch| drop(black_box(s.square_pairs(ch, n).unwrap())),
            || {
                Box::new(move |(ch, s, _): &mut TripleState| {
                    drop(black_box(s.square_pairs(ch, n).unwrap()))
                })
            },
        );

        bench_square(&mut group, (&mut ch, &mut s, &peer), (p, name), n);
    }
    group.finish();
}

/// The online square protocol alone (pairs made beforehand, untimed) mod `p`, `n` squares.
fn bench_square(
    group: &mut BenchmarkGroup<'_, WallTime>,
    (ch, s, peer): (&mut Channel, &mut Session, &Peer<TripleState>),
    (p, name): (u64, &str),
    n: usize,
) {
    let bytes = |ch: &Channel| {
        let t = ch.meter().total();
        t.bytes_sent + t.bytes_received
    };
    // The online square protocol alone (pairs made beforehand, untimed).
    let v: std::sync::Arc<Vec<u64>> =
        std::sync::Arc::new((0..n as u64).map(|i| i * 7919 % p).collect());
    let prepare = |ch: &mut Channel, s: &mut Session| {
        peer.start(move |(ch, s, slot): &mut TripleState| {
            *slot = Some(s.square_pairs(ch, n).unwrap())
        });
        let pairs = s.square_pairs(ch, n).unwrap();
        let _ = peer.wait();
        pairs
    };
    let square_peer = || -> Job<TripleState> {
        let v = v.clone();
        Box::new(move |(ch, s, slot): &mut TripleState| {
            let pairs = slot.take().unwrap();
            black_box(s.square(ch, &v, pairs).unwrap());
        })
    };
    if selected("triples/square/") {
        let pairs = prepare(ch, s);
        let before = bytes(ch);
        time_rounds(
            1,
            peer,
            &mut || drop(s.square(ch, &v, pairs.clone()).unwrap()),
            square_peer,
        );
        eprintln!(
            "triples/square/p={name}: {:.1} bytes/square (online)",
            (bytes(ch) - before) as f64 / n as f64
        );
    }
    group.bench_function(format!("square/p={name},n=2^16"), |bch| {
        bch.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let pairs = prepare(ch, s);
                let mut pairs = Some(pairs);
                total += time_rounds(
                    1,
                    peer,
                    &mut || drop(black_box(s.square(ch, &v, pairs.take().unwrap()).unwrap())),
                    square_peer,
                );
            }
            total
        })
    });
}

/// The silent side: a Ferret receiver with its own one-thread pool.
type SilentState = (Channel, silent::Receiver, Vec<u128>, rayon::ThreadPool);

/// CPU time (ns) spent inside the two parties' one-thread pools.
static SILENT_CPU: [std::sync::atomic::AtomicU64; 2] = [
    std::sync::atomic::AtomicU64::new(0),
    std::sync::atomic::AtomicU64::new(0),
];

/// Runs `f` on `pool` and adds the pool thread's CPU time to `SILENT_CPU[party]`.
fn on_pool<R: Send>(pool: &rayon::ThreadPool, party: usize, f: impl FnOnce() -> R + Send) -> R {
    pool.install(|| {
        let t = thread_cpu_ns();
        let r = f();
        SILENT_CPU[party].fetch_add(thread_cpu_ns() - t, std::sync::atomic::Ordering::Relaxed);
        r
    })
}

/// Ferret silent random COT with the 128-bit parameters, one rayon thread per party, in memory:
/// COTs per second in steady state (set-up excluded) and bytes per COT over two full rounds.
fn bench_silent(c: &mut Criterion) {
    bench_silent_with(c, silent::Params::FERRET, "ferret");
    bench_silent_with(c, silent::Params::FERRET_COMPACT, "ferret_compact");
    // The default until issue #18 (k = 36,288, below 128 bits by tools/lpn_estimate.py), kept
    // here to measure what the re-estimate cost in the same run.
    let old = silent::Lpn {
        k: 36_288,
        t: 1_269,
        log_bin: 9,
    };
    let old_compact = silent::Params {
        pre: old,
        main: old,
    };
    bench_silent_with(c, old_compact, "ferret_compact_k36288");
    bench_silent_with(c, silent::Params::FERRET_B13, "ferret_b13");
    bench_silent_with(c, silent::Params::FERRET_B11, "ferret_b11");
}

fn bench_silent_with(c: &mut Criterion, params: silent::Params, name: &str) {
    let n: usize = 1 << 22;
    let (mut a, mut b) = Channel::in_memory_pair(ChannelConfig::default());
    let peer = Peer::spawn(move || {
        let r = silent::Receiver::setup(&mut b, params, Prg::from_os_entropy()).unwrap();
        (b, r, vec![0u128; n], bunet_benches::one_thread_pool())
    });
    let mut s = silent::Sender::setup(&mut a, params, Prg::from_os_entropy()).unwrap();
    let _ = peer.wait();
    let pool = bunet_benches::one_thread_pool();
    let mut q = vec![0u128; n];
    let cot_peer = || -> Job<SilentState> {
        Box::new(|(ch, r, t, pool): &mut SilentState| {
            on_pool(pool, 1, || r.receive_cot(ch, t).unwrap());
            black_box(&t);
        })
    };
    let id = format!("silent_cot/{name},n=2^22");
    if selected(&format!("ot/{id}")) {
        // Two full main rounds, after the bootstrap round's leftovers are drawn.
        let rounds = (2 * params.per_round()).div_ceil(n) as u64;
        let before = a.meter().total();
        let cpu = |p: usize| SILENT_CPU[p].load(std::sync::atomic::Ordering::Relaxed);
        let (c0, c1) = (cpu(0), cpu(1));
        let wall = time_rounds(
            rounds,
            &peer,
            &mut || on_pool(&pool, 0, || s.send_cot(&mut a, &mut q).unwrap()),
            cot_peer,
        );
        let t = a.meter().total();
        let bytes = t.bytes_sent + t.bytes_received - before.bytes_sent - before.bytes_received;
        let items = rounds * n as u64;
        let (s_ns, r_ns) = (
            (cpu(0) - c0) as f64 / items as f64,
            (cpu(1) - c1) as f64 / items as f64,
        );
        eprintln!(
            "ot/{id}: {:.4} bytes/COT ({:.3} bits), {:.1} M COT/s wall over {items} COTs; \
             CPU ns/COT: sender {s_ns:.2}, receiver {r_ns:.2} -> {:.1} M/s at one free core per party",
            bytes as f64 / items as f64,
            8.0 * bytes as f64 / items as f64,
            items as f64 / wall.as_secs_f64() / 1e6,
            1e3 / s_ns.max(r_ns),
        );
    }
    let mut group = c.benchmark_group("ot");
    group.sample_size(10);
    group.throughput(Throughput::Elements(n as u64));
    group.bench_function(&id, |bch| {
        bch.iter_custom(|iters| {
            time_rounds(
                iters,
                &peer,
                &mut || on_pool(&pool, 0, || s.send_cot(&mut a, &mut q).unwrap()),
                cot_peer,
            )
        })
    });
    group.finish();
}

criterion_group!(benches, bench_ot, bench_silent, bench_triples);
criterion_main!(benches);
