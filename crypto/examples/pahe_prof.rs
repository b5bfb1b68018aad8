//! One PAHE operation in a loop at fhe.rs's shape (N = 8192, 5 primes of 43–44 bits, a 20-bit
//! p), minimum time: the loop `perf record` profiles (docs/PERFORMANCE.md, "Against fhe.rs on
//! tfhe-ntt's AVX-512 NTT"). `RAYON_NUM_THREADS=1 cargo run --release -p bunet-crypto --example
//! pahe_prof -- [sk|pk|dec|rot|all] [iterations]`.

use bunet_crypto::pahe::{Evaluator, GaloisKeys, Params, PublicKey, SecretKey, random_mask};
use bunet_crypto::prg::Prg;
use std::time::Instant;
fn main() {
    let which = std::env::args().nth(1).unwrap_or("all".into());
    let iters: usize = std::env::args()
        .nth(2)
        .map(|s| s.parse().unwrap())
        .unwrap_or(2000);
    let p20 = bunet_kernels::primes::primes_congruent_one(20, 2 * 8192, 1)[0];
    // fhe.rs's primes: 44,44,44,43,43
    let mut q = bunet_kernels::primes::primes_congruent_one(44, 16384, 3);
    q.extend(bunet_kernels::primes::primes_congruent_one(43, 16384, 2));
    let params = Params::new(8192, p20, &q).unwrap();
    let mut prg = Prg::from_os_entropy();
    let sk = SecretKey::generate(&params, &mut prg);
    let pk = PublicKey::generate(&sk, &mut prg);
    let x = random_mask(&params, &mut prg);
    let pt = params.encode(&x).unwrap();
    let ct = sk.encrypt(&pt, &mut prg);
    let ev = Evaluator::new(&params);
    let gk = GaloisKeys::generate(&sk, &[1], false, &mut prg);
    for op in ["sk", "pk", "dec", "rot"] {
        if which != "all" && which != op {
            continue;
        }
        let mut best = f64::MAX;
        for _ in 0..iters {
            let t = Instant::now();
            match op {
                "sk" => drop(std::hint::black_box(sk.encrypt_seeded(&pt, &mut prg))),
                "pk" => drop(std::hint::black_box(pk.encrypt(&pt, &mut prg))),
                "rot" => drop(std::hint::black_box(ev.rotate_rows(&ct, 1, &gk).unwrap())),
                _ => drop(std::hint::black_box(sk.decrypt(&ct).unwrap())),
            }
            best = best.min(t.elapsed().as_secs_f64());
        }
        println!("{op}: {:.1} us", best * 1e6);
    }
}
