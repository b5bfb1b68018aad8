//! Fixed work timed by wall clock and by process CPU time (on a shared, oversubscribed machine
//! CPU time excludes the time the scheduler gave to others):
//! `cargo run -p bunet-benches --release --example gc_cycles -- <garble|evaluate|hash> <circuit: aes|relu32|relu24> <iters>`.

use bunet_crypto::gc::fixed_point::{Gadget, Op, Params};
use bunet_crypto::gc::half_gates::{self, Delta};
use bunet_crypto::gc::{Party, bristol};
use bunet_crypto::prg::Prg;
use bunet_kernels::aes_hash::FixedKeyHash;
use std::hint::black_box;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let what = args.get(1).map_or("garble", String::as_str);
    let which = args.get(2).map_or("relu32", String::as_str);
    let iters: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(100);
    let circuit = match which {
        "aes" => bristol::parse(
            include_str!("../../crypto/testdata/bristol/aes_128.txt"),
            1,
            Party::Evaluator,
        )
        .expect("parses"),
        "relu24" => Gadget::new(
            Params::new(24, 16_777_213, 4).expect("ok"),
            Op::ReluRescaleReshare,
        )
        .circuit()
        .clone(),
        _ => Gadget::new(
            Params::new(32, 4_294_967_291, 4).expect("ok"),
            Op::ReluRescaleReshare,
        )
        .circuit()
        .clone(),
    };
    let m = half_gates::sub_batch_size(&circuit);
    let mut prg = Prg::from_seed([1; 16]);
    let delta = Delta::random(&mut prg);
    let hash = FixedKeyHash::new();
    let gz: Vec<u128> = (0..m * circuit.n_garbler_inputs())
        .map(|_| prg.next_u128())
        .collect();
    let ez: Vec<u128> = (0..m * circuit.n_evaluator_inputs())
        .map(|_| prg.next_u128())
        .collect();
    let ands = circuit.counts().and * m;
    let mut tables = vec![0u128; 2 * ands];
    let start = std::time::Instant::now();
    let cpu0 = cpu_seconds();
    match what {
        "two_party" => {
            two_party(which, iters);
            return;
        }
        "hash" => {
            let mut blocks = vec![0u128; 4 * ands];
            let tweaks: Vec<u128> = (0..4 * ands as u128).collect();
            for _ in 0..iters {
                hash.hash_many(black_box(&mut blocks), &tweaks);
            }
        }
        "evaluate" => {
            half_gates::garble_instances(&circuit, &hash, &delta, 0, m, &gz, &ez, &mut tables);
            for _ in 0..iters {
                black_box(half_gates::evaluate_instances(
                    &circuit, &hash, 0, m, &gz, &ez, &tables,
                ));
            }
        }
        _ => {
            for _ in 0..iters {
                black_box(half_gates::garble_instances(
                    &circuit,
                    &hash,
                    &delta,
                    0,
                    m,
                    &gz,
                    &ez,
                    &mut tables,
                ));
            }
        }
    }
    let t = start.elapsed();
    println!(
        "{what} {which}: m={m}, slots={}, {} AND gates x {iters}: {:.2} ns/AND wall",
        circuit.n_wires(),
        ands,
        t.as_nanos() as f64 / (ands * iters) as f64
    );
    let cpu = cpu_seconds() - cpu0;
    println!(
        "  {:.2} ns/AND of process CPU time (user+sys, /proc/self/stat)",
        cpu * 1e9 / (ands * iters) as f64
    );
}

/// `iters` batches of 8192 ReLUs between two threads over loopback TCP (one rayon thread per
/// party); CPU time is that of both parties together.
fn two_party(which: &str, iters: usize) {
    use bunet_crypto::channel::{Channel, ChannelConfig};
    use bunet_crypto::gc::fixed_point;
    use bunet_crypto::gc::half_gates::{Evaluator, Garbler};
    let (k, p) = if which == "relu24" {
        (24, 16_777_213)
    } else {
        (32, 4_294_967_291)
    };
    let gadget = Gadget::new(Params::new(k, p, 4).expect("ok"), Op::ReluRescaleReshare);
    let m = 8192;
    let mut prg = Prg::from_seed([2; 16]);
    let sa: Vec<u64> = (0..m).map(|_| prg.uniform_below(p)).collect();
    let sb: Vec<u64> = (0..m).map(|_| prg.uniform_below(p)).collect();
    let r: Vec<u64> = (0..m).map(|_| prg.uniform_below(p)).collect();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let client = std::thread::spawn(move || std::net::TcpStream::connect(addr).expect("connect"));
    let (server, _) = listener.accept().expect("accept");
    let mut ca = Channel::tcp(server, ChannelConfig::default()).expect("tcp");
    let mut cb = Channel::tcp(client.join().expect("join"), ChannelConfig::default()).expect("tcp");
    let mut garbler = Garbler::new(Delta::random(&mut prg));
    let mut evaluator = Evaluator::new();
    let (pool_a, pool_b) = (
        bunet_benches::one_thread_pool(),
        bunet_benches::one_thread_pool(),
    );
    let d = garbler.delta().expose();
    let bits = gadget.evaluator_bits(m, &sb).expect("valid");
    let zero = garbler.evaluator_zero_labels(gadget.circuit(), m);
    let lab: Vec<u128> = zero
        .iter()
        .zip(&bits)
        .map(|(&z, &x)| if x { z ^ d } else { z })
        .collect();
    let start = std::time::Instant::now();
    let cpu0 = cpu_seconds();
    for _ in 0..iters {
        std::thread::scope(|s| {
            let h = s.spawn(|| {
                pool_b.install(|| {
                    fixed_point::evaluate_batch(&mut evaluator, &mut cb, &gadget, m, &lab)
                        .expect("eval")
                })
            });
            pool_a.install(|| {
                fixed_point::garble_batch(&mut garbler, &mut ca, &gadget, m, &sa, &r, &zero)
                    .expect("garble")
            });
            black_box(h.join().expect("join"));
        });
    }
    let t = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    let n = (m * iters) as f64;
    let ands = gadget.circuit().counts().and as f64;
    println!(
        "two_party {which} over tcp: {:.0} ReLU/s wall; {:.2} µs CPU per ReLU for both parties \
         ({:.2} ns CPU per AND); {:.1} bytes/ReLU sent by the garbler",
        n / t,
        cpu * 1e6 / n,
        cpu * 1e9 / (n * ands),
        ca.meter().get("gc/relu").bytes_sent as f64 / n
    );
}

/// User + system CPU time of this process, from /proc/self/stat (clock ticks of 10 ms).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|x| x.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|x| x.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}
