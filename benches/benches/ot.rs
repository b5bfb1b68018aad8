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
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

type Job<S> = Box<dyn FnOnce(&mut S) + Send>;

/// The receiving party: its channel end, session and output buffer.
type RecvState = (Channel, Receiver, Vec<u128>);

/// The other party, on its own thread, running one job per request.
struct Peer<S> {
    jobs: mpsc::Sender<Job<S>>,
    done: mpsc::Receiver<()>,
}

impl<S: 'static> Peer<S> {
    fn spawn(init: impl FnOnce() -> S + Send + 'static) -> Self {
        let (jobs, rx) = mpsc::channel::<Job<S>>();
        let (done_tx, done) = mpsc::channel();
        thread::spawn(move || {
            let mut state = init();
            done_tx.send(()).unwrap();
            while let Ok(job) = rx.recv() {
                job(&mut state);
                done_tx.send(()).unwrap();
            }
        });
        Self { jobs, done }
    }

    fn start(&self, job: impl FnOnce(&mut S) + Send + 'static) {
        self.jobs.send(Box::new(job)).unwrap();
    }

    fn wait(&self) {
        self.done.recv().unwrap();
    }
}

/// The sender's channel and session here, the receiver's on a peer thread.
fn ot_session() -> (Channel, Sender, Peer<RecvState>) {
    let (mut a, mut b) = Channel::in_memory_pair(ChannelConfig::default());
    let peer = Peer::spawn(move || {
        let r = Receiver::setup(&mut b, &mut Prg::from_os_entropy()).unwrap();
        (b, r, vec![0u128; 1 << 20])
    });
    let mut prg = Prg::from_os_entropy();
    let delta = prg.next_u128() | 1;
    let s = Sender::setup(&mut a, delta, &mut prg).unwrap();
    peer.wait();
    (a, s, peer)
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
        peer.wait();
    }
    start.elapsed()
}

fn bench_ot(c: &mut Criterion) {
    eprintln!("{}", bunet_benches::backend_banner());
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

    let (mut ch, mut s, peer) = ot_session();
    let mut prg = Prg::from_os_entropy();
    let bools: Vec<bool> = (0..n).map(|_| prg.next_u64() & 1 == 1).collect();
    let packed = std::sync::Arc::new(pack_choices(&bools));
    let bools = std::sync::Arc::new(bools);
    let msgs: Vec<[u128; 2]> = (0..n).map(|_| [prg.next_u128(), prg.next_u128()]).collect();

    let mut q = vec![0u128; n];
    let report = |what: &str, ch: &Channel, before: u64| {
        let t = ch.meter().total();
        let bytes = t.bytes_sent + t.bytes_received - before;
        eprintln!("ot/{what}: {:.3} bytes/OT", bytes as f64 / n as f64);
    };

    let cot_peer = || -> Job<RecvState> {
        let packed = packed.clone();
        Box::new(move |(ch, r, t): &mut RecvState| {
            r.receive_correlated_packed(ch, &packed, t).unwrap();
            black_box(&t);
        })
    };
    let before = ch.meter().total();
    time_rounds(
        1,
        &peer,
        &mut || s.send_correlated(&mut ch, &mut q).unwrap(),
        cot_peer,
    );
    report("cot", &ch, before.bytes_sent + before.bytes_received);
    group.bench_function("cot/n=2^20", |bch| {
        bch.iter_custom(|iters| {
            time_rounds(
                iters,
                &peer,
                &mut || s.send_correlated(&mut ch, &mut q).unwrap(),
                cot_peer,
            )
        })
    });

    let rot_peer = || -> Job<RecvState> {
        let bools = bools.clone();
        Box::new(move |(ch, r, _): &mut RecvState| {
            black_box(r.receive_random(ch, &bools).unwrap());
        })
    };
    let before = ch.meter().total();
    time_rounds(
        1,
        &peer,
        &mut || drop(black_box(s.send_random(&mut ch, n).unwrap())),
        rot_peer,
    );
    report("random_ot", &ch, before.bytes_sent + before.bytes_received);
    group.bench_function("random_ot/n=2^20", |bch| {
        bch.iter_custom(|iters| {
            time_rounds(
                iters,
                &peer,
                &mut || drop(black_box(s.send_random(&mut ch, n).unwrap())),
                rot_peer,
            )
        })
    });

    let chosen_peer = || -> Job<RecvState> {
        let bools = bools.clone();
        Box::new(move |(ch, r, _): &mut RecvState| {
            black_box(r.receive_chosen(ch, &bools).unwrap());
        })
    };
    let before = ch.meter().total();
    time_rounds(
        1,
        &peer,
        &mut || s.send_chosen(&mut ch, &msgs).unwrap(),
        chosen_peer,
    );
    report("chosen_ot", &ch, before.bytes_sent + before.bytes_received);
    group.bench_function("chosen_ot/k=128,n=2^20", |bch| {
        bch.iter_custom(|iters| {
            time_rounds(
                iters,
                &peer,
                &mut || s.send_chosen(&mut ch, &msgs).unwrap(),
                chosen_peer,
            )
        })
    });

    group.throughput(Throughput::Elements(128));
    group.bench_function("setup/base_ots=128", |bch| {
        bch.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                peer.start(|(ch, r, _): &mut RecvState| {
                    *r = Receiver::setup(ch, &mut Prg::from_os_entropy()).unwrap();
                });
                s = Sender::setup(&mut ch, s.delta(), &mut Prg::from_os_entropy()).unwrap();
                peer.wait();
            }
            start.elapsed()
        })
    });
    group.finish();
}

criterion_group!(benches, bench_ot);
criterion_main!(benches);
