//! Nonlinear layers on shares through `crypto::nonlinear`, both backends side by side in one
//! run (GC: IDs `k=..,mem`; OT: IDs `k=..,mem,backend=ot`): secure ReLUs, 2×2 max pools and
//! two-class argmaxes per second, two parties as two threads (one rayon thread each) over the
//! in-memory channel and, for the ReLU at k = 32, over loopback TCP. Everything on the wire is
//! counted: for GC Bob's IKNP columns for his label OTs and Alice's garbled tables; for OT the
//! silent-OT trees, corrections, openings and re-sharing (set-up excluded).
//!
//! After each benchmark a line reports bytes per item and each party's CPU time per item
//! ([`bunet_benches::bench_nonlinear_block`]).

use bunet_benches::bench_nonlinear_block;
use bunet_crypto::nonlinear::{Backend, Block};
use criterion::{Criterion, criterion_group, criterion_main};

fn bench_nonlinear(c: &mut Criterion) {
    println!("{}", bunet_benches::backend_banner());
    let m = 1 << 16;
    let mut bench = |backend: Backend, block: Block, k: u32, p: u64, transport: &str, m: usize| {
        let param = match backend {
            Backend::Gc => format!("k={k},{transport}"),
            _ => format!("k={k},{transport},backend={}", backend.name()),
        };
        let id = ("nonlinear", block.name(), param.as_str());
        bench_nonlinear_block(c, id, backend, block, k, p, transport, m);
    };
    for (k, p) in [(24u32, 16_777_213u64), (32, 4_294_967_291)] {
        for &backend in Backend::ALL {
            bench(backend, Block::Relu, k, p, "mem", m);
            bench(backend, Block::MaxPool, k, p, "mem", m / 4);
            bench(backend, Block::Argmax, k, p, "mem", m);
        }
    }
    for &backend in Backend::ALL {
        bench(backend, Block::Relu, 32, 4_294_967_291, "tcp", m);
    }
}

criterion_group!(benches, bench_nonlinear);
criterion_main!(benches);
