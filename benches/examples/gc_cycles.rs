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

/// User + system CPU time of this process, from /proc/self/stat (clock ticks of 10 ms).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|x| x.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|x| x.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}
