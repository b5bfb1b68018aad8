//! The secure layers at representative sizes, two parties as two threads over
//! `Channel::in_memory_pair`, IDs `secure/<layer>/<param>`:
//!
//! - `secure/homconv/...`: one HomConv (`unet::secure::homconv`) at the real `q32` preset — a 2D
//!   3×3 conv on a 512×512 image with 16 → 16 channels, the ANCHORS.md layer (56×56, 64 → 64,
//!   Cheetah's figure) and a 3D 3×3×3 conv on a 64×64×16 volume with 16 → 16 channels. Both
//!   parties share the process's rayon pool. Throughput: output values. Timed: the protocol
//!   (`HomConvClient::run` ∥ `HomConvServer::run`); Bob's filter preparation (once per model when
//!   the filters fit `PREPARED_FILTER_BUDGET`) is timed once and printed; the ANCHORS layer runs
//!   twice, with its filters prepared once and streamed per batch of groups in every run. After each bench a line gives the packing, the ciphertexts and bytes
//!   per direction per run, wall and process CPU time per run (both parties: robust to other
//!   processes' load, unlike wall time), and the last run's output is checked bit for bit
//!   against `fixed::conv`.
//! - `secure/relu/...`: 2^20 secure ReLUs (with the shift-4 rescale) through
//!   `crypto::nonlinear`'s GC backend at k = 32 mod the q32 p and k = 24 mod the q24 p, one rayon
//!   thread per party ([`bunet_benches::bench_nonlinear_block`] prints bytes per ReLU and CPU
//!   time per ReLU).

use std::time::{Duration, Instant};

use bunet_benches::{
    Tally, bench_nonlinear_block, check_conv, conv_model, two_parties, uniform_share,
};
use bunet_crypto::channel::{Channel, ChannelConfig};
use bunet_crypto::nonlinear::{Backend, Block};
use bunet_crypto::pahe::{Params, PublicKey, SecretKey};
use bunet_crypto::prg::Prg;
use bunet_unet::arch::Dims;
use bunet_unet::secure::homconv::{LABEL, PREPARED_FILTER_BUDGET};
use bunet_unet::secure::{HomConvClient, HomConvServer, Layout};
use bunet_unet::{Quant, QuantModel};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

/// Benches conv 0 of `qm` on images of extents `dims` under `params` as `secure/homconv/param`.
/// Bob keeps at most `budget` bytes of prepared filters ([`HomConvServer::with_filter_budget`]).
fn bench_homconv(
    c: &mut Criterion,
    param: &str,
    params: &Params,
    (qm, budget): (&QuantModel, usize),
    dims: [usize; 3],
) {
    let p = params.p();
    let spec = &qm.convs()[0].spec;
    let layout = Layout::new(params, spec, dims, None).expect("supported layer");
    let mut prg = Prg::from_os_entropy();
    let sk = SecretKey::generate(params, &mut prg);
    let pk = PublicKey::generate(&sk, &mut prg);
    let x_a = uniform_share(spec.c_in, dims, p, &mut prg);
    let x_b = uniform_share(spec.c_in, dims, p, &mut prg);
    // Built on the first call only, so that `--list` or a filter that excludes this bench does
    // not prepare hundreds of MB of filters.
    let mut parties: Option<(HomConvServer, HomConvClient, Duration)> = None;
    let (mut s_ch, mut c_ch) = Channel::in_memory_pair(ChannelConfig::default());
    let outputs = spec.c_out * layout.out_dims().iter().product::<usize>();
    let mut g = c.benchmark_group("secure");
    g.sample_size(10);
    g.warm_up_time(Duration::from_secs(1));
    g.throughput(Throughput::Elements(outputs as u64));
    let mut tally = Tally::default();
    let mut last = None;
    g.bench_function(BenchmarkId::new("homconv", param), |b| {
        let (server, client, _) = parties.get_or_insert_with(|| {
            let start = Instant::now();
            let server = HomConvServer::with_filter_budget(params, qm, 0, layout.clone(), budget)
                .expect("server");
            let prepare = start.elapsed();
            let client = HomConvClient::new(params, layout.clone()).expect("client");
            (server, client, prepare)
        });
        let (server, client) = (&*server, &*client);
        b.iter(|| {
            last = Some(tally.time(|| {
                two_parties(
                    (&mut s_ch, &mut c_ch),
                    |ch, prg| server.run(ch, &pk, &x_b, prg).expect("server run"),
                    |ch, prg| client.run(ch, &sk, &x_a, prg).expect("client run"),
                )
            }));
        })
    });
    g.finish();
    let (Some((y_a, y_b)), Some((server, _, prepare))) = (last, parties) else {
        return;
    };
    check_conv((qm, 0), (&x_a, &x_b), (&y_a, &y_b), "HomConv");
    let t = c_ch.meter().get(LABEL);
    let group_bytes = spec.c_in * params.moduli().len() * params.n() * 8;
    let group_mb = group_bytes as f64 / 1e6;
    let filters = if server.streams_filters() {
        let batch = (budget / group_bytes).clamp(1, layout.groups());
        format!(
            "filters streamed in batches of {batch} of {} groups ({:.0} MB each; set-up {:.0} ms)",
            layout.groups(),
            batch as f64 * group_mb,
            prepare.as_secs_f64() * 1e3
        )
    } else {
        format!(
            "filters prepared once in {:.0} ms ({:.0} MB)",
            prepare.as_secs_f64() * 1e3,
            layout.groups() as f64 * group_mb
        )
    };
    println!(
        "secure/homconv/{param}: m = {}, r = {}, tile {:?}, {} tiles; per run: client → server \
         {} ct, {:.2} MB; server → client {} ct, {:.2} MB; {:.1} ms/run wall, {:.1} ms/run CPU (both parties, all threads) over {} runs; \
         {filters}; output checked against fixed::conv",
        layout.dft_len(),
        layout.replicas(),
        layout.tile(),
        layout.tiles(),
        layout.upload_ciphertexts(),
        t.bytes_sent as f64 / tally.runs as f64 / 1e6,
        layout.return_ciphertexts(),
        t.bytes_received as f64 / tally.runs as f64 / 1e6,
        tally.ms_per_run().0,
        tally.ms_per_run().1,
        tally.runs,
    );
}

fn bench_secure_layers(c: &mut Criterion) {
    println!("{}", bunet_benches::bench_start());
    println!("cpu: {}", bunet_benches::cpu_model());
    let q32 = Params::q32();
    let budget = PREPARED_FILTER_BUDGET;
    let m2 = conv_model(Dims::Two, 16, Quant::q32());
    let id = "512x512,c=16to16,k=3x3,q32";
    bench_homconv(c, id, &q32, (&m2, budget), [1, 512, 512]);
    // The ANCHORS.md layer (Cheetah: 650 ms, 6.97 MB): its 537 MB of prepared filters exceed the
    // default budget; once with every filter prepared ahead, once streamed.
    let anchors = conv_model(Dims::Two, 64, Quant::q32());
    let id = "56x56,c=64to64,k=3x3,q32,filters=once";
    bench_homconv(c, id, &q32, (&anchors, usize::MAX), [1, 56, 56]);
    let id = "56x56,c=64to64,k=3x3,q32,filters=streamed";
    bench_homconv(c, id, &q32, (&anchors, budget), [1, 56, 56]);
    let m3 = conv_model(Dims::Three, 16, Quant::q32());
    let id = "64x64x16,c=16to16,k=3x3x3,q32";
    bench_homconv(c, id, &q32, (&m3, budget), [16, 64, 64]);
    let m = 1 << 20;
    for (k, quant, name) in [(32u32, Quant::q32(), "q32"), (24, Quant::q24(), "q24")] {
        let param = format!("k={k},p={name},n=2^20");
        let id = ("secure", "relu", param.as_str());
        bench_nonlinear_block(c, id, Backend::Gc, Block::Relu, k, quant.p, 4, "mem", m);
    }
}

criterion_group!(benches, bench_secure_layers);
criterion_main!(benches);
